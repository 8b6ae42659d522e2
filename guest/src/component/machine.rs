//! The `machine` export: the core's actions and completions, one for one. The ticket of the
//! outstanding action stays on this side, so that a host's answer meets the continuation it
//! belongs to and a mismatched answer is refused rather than misread.

use super::exports::s3lect::election::machine as wit_machine;
use super::{Component, config_error, config_from_wit, status_to_wit, wit};
use crate::Elector;
use crate::io::{Action, Clock, Completion};
use crate::machine::{HookTicket, ProbeTicket, ReadTicket, WriteTicket};
use std::cell::RefCell;
use wit_machine::{Action as WitAction, Completion as WitCompletion, Instant};

/// The ticket of the action a host is performing.
enum Outstanding {
    Read(ReadTicket),
    Write(WriteTicket),
    Probe(ProbeTicket),
    Hook(HookTicket),
}

impl Outstanding {
    fn describe(outstanding: Option<&Outstanding>) -> &'static str {
        match outstanding {
            None => "no outstanding action",
            Some(Outstanding::Read(_)) => "an outstanding get",
            Some(Outstanding::Write(_)) => "an outstanding put",
            Some(Outstanding::Probe(_)) => "an outstanding probe",
            Some(Outstanding::Hook(_)) => "an outstanding hook",
        }
    }
}

fn answer_kind(c: &WitCompletion) -> &'static str {
    match c {
        WitCompletion::Got(_) => "got",
        WitCompletion::Put(_) => "put",
        WitCompletion::Probed(_) => "probed",
        WitCompletion::Hook(_) => "hook",
    }
}

crate::storage_error_conversions!(wit_machine);

crate::probe_reply_conversions!(wit_machine);

struct Driven {
    elector: Elector,
    outstanding: Option<Outstanding>,
}

pub struct MachineResource(RefCell<Driven>);

fn clock(now: Instant) -> Clock {
    Clock { mono_ns: now.monotonic_ns, wall_ns: i128::from(now.wall_unix_ns) }
}

impl Driven {
    /// The core's action in WIT terms, keeping its ticket.
    fn hand_out(&mut self, action: Action, now: Clock) -> WitAction {
        let hook = |term, leader_id| wit_machine::HookRequest { term, leader_id };
        let (outstanding, action) = match action {
            Action::Done { next_step_in_ms } => {
                let e = &self.elector;
                let status = status_to_wit(e.status(now));
                (None, WitAction::Done(wit::StepOutcome { status, next_step_in_ms, health: e.health(now) }))
            }
            Action::Get { key, timeout_ms, ticket } => {
                (Some(Outstanding::Read(ticket)), WitAction::Get(wit_machine::GetRequest { key, timeout_ms }))
            }
            Action::Put { key, data, etag, timeout_ms, ticket } => {
                (Some(Outstanding::Write(ticket)), WitAction::Put(wit_machine::PutRequest { key, data, etag, timeout_ms }))
            }
            Action::Probe { addr, path, timeout_ms, pin, ticket } => {
                (Some(Outstanding::Probe(ticket)), WitAction::Probe(wit_machine::ProbeRequest { addr, path, timeout_ms, pin }))
            }
            Action::AcquireHook { term, leader_id, ticket } => {
                (Some(Outstanding::Hook(ticket)), WitAction::AcquireHook(hook(term, leader_id)))
            }
            Action::LoseHook { term, leader_id, ticket } => (Some(Outstanding::Hook(ticket)), WitAction::LoseHook(hook(term, leader_id))),
        };
        self.outstanding = outstanding;
        action
    }
}

impl wit_machine::Guest for Component {
    type Machine = MachineResource;
}

impl MachineResource {
    fn new(elector: Elector) -> wit_machine::Machine {
        wit_machine::Machine::new(MachineResource(RefCell::new(Driven { elector, outstanding: None })))
    }
}

impl wit_machine::GuestMachine for MachineResource {
    fn create(config: wit::Config, now: Instant) -> Result<wit_machine::Machine, wit::ConfigError> {
        Elector::new(config_from_wit(config), clock(now)).map(MachineResource::new).map_err(config_error)
    }

    fn restore(config: wit::Config, state: Vec<u8>, now: Instant) -> Result<wit_machine::Machine, String> {
        Elector::restore(config_from_wit(config), &state, clock(now)).map(MachineResource::new).map_err(|e| e.to_string())
    }

    fn begin_step(&self, now: Instant) -> WitAction {
        let mut d = self.0.borrow_mut();
        let action = d.elector.begin_step(clock(now));
        d.hand_out(action, clock(now))
    }

    fn begin_resign(&self, now: Instant) -> WitAction {
        let mut d = self.0.borrow_mut();
        let action = d.elector.begin_resign(clock(now));
        d.hand_out(action, clock(now))
    }

    fn complete(&self, now: Instant, completion: WitCompletion) -> Result<WitAction, String> {
        let mut d = self.0.borrow_mut();
        let completion = match (d.outstanding.take(), completion) {
            (Some(Outstanding::Read(t)), WitCompletion::Got(r)) => {
                Completion::Got(t, r.map(object_from_wit).map_err(storage_error_from_wit))
            }
            (Some(Outstanding::Write(t)), WitCompletion::Put(r)) => Completion::Put(t, r.map_err(storage_error_from_wit)),
            (Some(Outstanding::Probe(t)), WitCompletion::Probed(r)) => Completion::Probed(t, r.map(probe_reply_from_wit)),
            (Some(Outstanding::Hook(t)), WitCompletion::Hook(r)) => Completion::Hook(t, r),
            (outstanding, c) => {
                return Err(format!(
                    "a `{}` answer to {}: the step is abandoned",
                    answer_kind(&c),
                    Outstanding::describe(outstanding.as_ref())
                ));
            }
        };
        let action = d.elector.complete(clock(now), completion);
        Ok(d.hand_out(action, clock(now)))
    }

    fn status(&self, now: Instant) -> wit::Status {
        status_to_wit(self.0.borrow().elector.status(clock(now)))
    }

    fn health(&self, now: Instant) -> Option<Vec<u8>> {
        self.0.borrow().elector.health(clock(now))
    }

    fn update_config(&self, config: wit::Config) -> Result<(), wit::ConfigError> {
        self.0.borrow_mut().elector.update_config(config_from_wit(config)).map_err(config_error)
    }

    fn set_invocation_budget(&self, budget_ms: u64) {
        self.0.borrow_mut().elector.set_invocation_budget(budget_ms);
    }

    fn export_state(&self, now: Instant) -> Vec<u8> {
        self.0.borrow().elector.export_state(clock(now))
    }
}
