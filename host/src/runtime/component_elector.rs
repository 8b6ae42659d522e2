//! One elector of the component, stepped by the caller: the machine interface's actions
//! performed here, on tokio, between short synchronous calls into a shared instance.

use super::bindings::exports::s3lect::election::machine::{self as wit_machine, Action, Completion};
use super::bindings::exports::s3lect::election::types as wit;
use super::instance::Instance;
use super::{HostIo, Runtime};
use crate::error::{Error, Result};
use s3lect_guest::{Config, ConfigError, Status};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wasmtime::component::ResourceAny;

/// One elector instance of the component, stepped by the caller: for custom schedulers and
/// serverless hosts. [`crate::Elector`] drives one of these on tokio.
pub struct ComponentElector {
    instance: Arc<Instance>,
    handle: ResourceAny,
    io: HostIo,
}

/// The result of one step, in host terms.
pub struct Outcome {
    /// What the elector knows after the step.
    pub status: Status,
    /// When to run the next step.
    pub next_step: Duration,
    /// The health endpoint's body while this instance leads.
    pub health: Option<Vec<u8>>,
}

/// Both clocks, read once per call: the machine never reads a clock itself.
fn now() -> wit_machine::Instant {
    let wall = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    };
    wit_machine::Instant { monotonic_ns: crate::clock::boottime_ns(), wall_unix_ns: wall }
}

s3lect_guest::storage_error_conversions!(wit_machine);
s3lect_guest::probe_reply_conversions!(wit_machine);
s3lect_guest::config_to_wit!(wit);
s3lect_guest::status_from_wit!(wit);

fn from_wit_config_error(e: wit::ConfigError) -> ConfigError {
    ConfigError { rule: e.rule, message: e.message }
}

impl ComponentElector {
    /// A new elector, or one restored from [`ComponentElector::export_state`] bytes.
    pub async fn create(rt: &Runtime, io: HostIo, cfg: &Config, state: Option<&[u8]>) -> Result<ComponentElector> {
        let instance = rt.instance()?;
        let wcfg = config_to_wit(cfg);
        let handle = match state {
            None => instance.call(|m, store| m.call_create(store, &wcfg, now()))?.map_err(|e| Error::Config(from_wit_config_error(e)))?,
            Some(bytes) => {
                instance.call(|m, store| m.call_restore(store, &wcfg, bytes, now()))?.map_err(|message| Error::State { message })?
            }
        };
        Ok(ComponentElector { instance, handle, io })
    }

    /// Replaces what the elector's actions reach (storage, probe, hooks).
    pub fn set_io(&mut self, io: HostIo) {
        self.io = io;
    }

    /// One election step.
    pub async fn step(&mut self) -> Result<Outcome> {
        let handle = self.handle;
        let first = self.instance.call(|m, store| m.call_begin_step(store, handle, now()))?;
        let o = self.perform(first).await?;
        Ok(Outcome { status: status_from_wit(o.status), next_step: Duration::from_millis(o.next_step_in_ms), health: o.health })
    }

    /// Performs actions until the machine says it is done.
    async fn perform(&mut self, first: Action) -> Result<wit::StepOutcome> {
        let io = &self.io;
        let mut action = first;
        loop {
            let completion = match action {
                Action::Done(outcome) => return Ok(outcome),
                Action::Get(r) => Completion::Got(io.get(&r.key, r.timeout_ms).await.map(object_to_wit).map_err(storage_error_to_wit)),
                Action::Put(r) => {
                    Completion::Put(io.put(&r.key, &r.data, r.etag.as_deref(), r.timeout_ms).await.map_err(storage_error_to_wit))
                }
                Action::Probe(r) => {
                    Completion::Probed(io.probe(&r.addr, &r.path, r.timeout_ms, r.pin.as_deref()).await.map(probe_reply_to_wit))
                }
                Action::AcquireHook(h) => Completion::Hook(io.acquire_hook(h.term, h.leader_id).await),
                Action::LoseHook(h) => Completion::Hook(io.lose_hook(h.term, h.leader_id).await),
            };
            let handle = self.handle;
            action = self
                .instance
                .call(|m, store| m.call_complete(store, handle, now(), &completion))?
                // Our own answer refused: a bug on this side of the boundary, reported as such.
                .map_err(|refused| Error::runtime(format!("the component refused the host's answer: {refused}")))?;
        }
    }

    /// The component's status, without a step (one call, no I/O).
    pub async fn status(&mut self) -> Result<Status> {
        let handle = self.handle;
        Ok(status_from_wit(self.instance.call(|m, store| m.call_status(store, handle, now()))?))
    }

    /// Leaves the election (a leader runs its lose hook, then writes the resigned record).
    pub async fn resign(&mut self) -> Result<Status> {
        let handle = self.handle;
        let first = self.instance.call(|m, store| m.call_begin_resign(store, handle, now()))?;
        Ok(status_from_wit(self.perform(first).await?.status))
    }

    /// Validates and applies a configuration from the next step on.
    pub async fn update_config(&mut self, cfg: &Config) -> Result<()> {
        let (handle, wcfg) = (self.handle, config_to_wit(cfg));
        self.instance.call(|m, store| m.call_update_config(store, handle, &wcfg))?.map_err(|e| Error::Config(from_wit_config_error(e)))
    }

    /// Declares a one-invocation elector (see the core's `Elector::set_invocation_budget`).
    pub async fn set_invocation_budget(&mut self, budget: Duration) -> Result<()> {
        let (handle, ms) = (self.handle, u64::try_from(budget.as_millis()).unwrap_or(u64::MAX));
        self.instance.call(|m, store| m.call_set_invocation_budget(store, handle, ms))
    }

    /// The elector's knowledge as bytes, for [`ComponentElector::create`] in a later process.
    pub async fn export_state(&mut self) -> Result<Vec<u8>> {
        let handle = self.handle;
        self.instance.call(|m, store| m.call_export_state(store, handle, now()))
    }

    /// Whether both electors live in one component instance (tests).
    #[cfg(test)]
    pub(super) fn shares_instance_with(&self, other: &ComponentElector) -> bool {
        Arc::ptr_eq(&self.instance, &other.instance)
    }
}

impl Drop for ComponentElector {
    fn drop(&mut self) {
        self.instance.drop_resource(self.handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    /// An answer of the wrong kind, or to no action, is refused by name and ends the step;
    /// the next step runs normally.
    #[tokio::test]
    async fn a_mismatched_answer_is_refused_by_name() {
        let rt = Runtime::shared().unwrap();
        let cfg = Config { lockfile_path: "runtime/mismatch.json".into(), server_id: "m".into(), ..Config::default() };
        let mut e = ComponentElector::create(&rt, HostIo::new(Arc::new(MemoryStorage::new())), &cfg, None).await.unwrap();
        let handle = e.handle;
        let first = e.instance.call(|m, store| m.call_begin_step(store, handle, now())).unwrap();
        assert!(matches!(first, Action::Get(_)), "a fresh elector reads first");
        let wrong = Completion::Put(Ok("\"e1\"".into()));
        let refused = e.instance.call(|m, store| m.call_complete(store, handle, now(), &wrong)).unwrap().unwrap_err();
        assert_eq!(refused, "a `put` answer to an outstanding get: the step is abandoned");
        let refused = e.instance.call(|m, store| m.call_complete(store, handle, now(), &wrong)).unwrap().unwrap_err();
        assert_eq!(refused, "a `put` answer to no outstanding action: the step is abandoned");
        assert!(e.step().await.unwrap().status.is_leader);
    }

    /// A trap ends its instance: its electors' calls fail, naming why, and a new elector
    /// gets a fresh instance.
    #[tokio::test]
    async fn a_trap_ends_the_instance_and_the_next_elector_gets_a_fresh_one() {
        let rt = Runtime { pre: Runtime::shared().unwrap().pre.clone(), current: std::sync::Mutex::new(None) };
        let io = HostIo::new(Arc::new(MemoryStorage::new()));
        let cfg = |id: &str| Config { lockfile_path: format!("runtime/trap-{id}.json"), server_id: id.into(), ..Config::default() };
        let mut a = ComponentElector::create(&rt, io.clone(), &cfg("a"), None).await.unwrap();
        assert!(a.step().await.unwrap().status.is_leader);
        a.instance.trap(&config_to_wit(&cfg("x")));
        let err = a.step().await.err().expect("the instance is gone").to_string();
        assert!(err.contains("the component instance failed earlier") && err.contains("unknown import"), "{err}");
        let mut b = ComponentElector::create(&rt, io, &cfg("b"), None).await.unwrap();
        assert!(!b.shares_instance_with(&a));
        assert!(b.step().await.unwrap().status.is_leader);
        drop(a);
    }

    /// A call that overruns its deadline traps instead of holding the instance: the ticker
    /// advances the epoch with no call running, so a deadline set and then waited past stops
    /// the next call at its first check, and the instance is not entered again. (Each real
    /// call gets a fresh deadline; this test keeps one.)
    #[tokio::test]
    async fn a_call_past_its_deadline_traps() {
        let rt = Runtime { pre: Runtime::shared().unwrap().pre.clone(), current: std::sync::Mutex::new(None) };
        let cfg = Config { lockfile_path: "runtime/deadline.json".into(), server_id: "d".into(), ..Config::default() };
        let mut e = ComponentElector::create(&rt, HostIo::new(Arc::new(MemoryStorage::new())), &cfg, None).await.unwrap();
        assert!(e.step().await.unwrap().status.is_leader, "a call well inside its deadline runs");
        let handle = e.handle;
        // One tick from now.
        e.instance
            .call_keeping_deadline(|_, store| {
                store.set_epoch_deadline(1);
                Ok(())
            })
            .unwrap();
        let waited = std::time::Instant::now();
        let trap = loop {
            match e.instance.call_keeping_deadline(|m, store| m.call_status(store, handle, now())) {
                Err(trap) => break crate::error::chain(&trap),
                Ok(_) if waited.elapsed() < Duration::from_secs(10) => std::thread::sleep(crate::runtime::instance::EPOCH_TICK / 4),
                Ok(_) => panic!("no call trapped in 10 s: the epoch does not advance"),
            }
        };
        assert!(trap.contains("interrupt"), "{trap}");
        let err = e.step().await.err().expect("the instance is gone").to_string();
        assert!(err.contains("the component instance failed earlier") && err.contains("interrupt"), "{err}");
    }
}
