//! The election algorithm: a pure state machine, (state, clock reading, completion) →
//! (state, action). The rules and their safety argument are in `docs/design.md`.
//!
//! A step starts with [`Elector::begin_step`] and continues with [`Elector::complete`] until it
//! returns [`Action::Done`]. The machine never reads a clock or touches the network.

use crate::clock_check::{AUTO_SKEW_MS, ClockCheck, Reading, Verdict};
use crate::config::{Config, ConfigError};
use crate::io::{Action, Clock, Completion, Object, ProbeReply, StorageError};
use crate::policy::{self, FollowerMove, FollowerView, LeaderMove, MS, Takeover};
use crate::problem::{Loss, Problem, ProblemKind, Recovery};
use crate::record::{HealthReply, LeaderRecord, RecordError};
use std::mem;

/// Pseudo-etag for "the object was there and is gone": watched like any other etag.
pub(crate) const ABSENT: &str = "";
/// Storage and probe calls in one step, at most; protects against a 409/412 ping-pong.
const MAX_OPS_PER_STEP: u32 = 6;
/// Unanswered writes remembered at most. Each costs a failed request, and requests are
/// spaced by backoff, so more than a handful within one lease means the storage is down.
const MAX_UNANSWERED: usize = 8;

/// A lease this instance holds because one of its writes succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lease {
    pub etag: String,
    pub term: u64,
    /// Monotonic send time of the write that produced `etag`.
    pub sent_at: u64,
    /// `sent_at + renew_deadline`: belief in leadership ends here, answered or not.
    pub until: u64,
    /// The acquire hook succeeded: only then does this instance act as leader.
    pub hook_ok: bool,
    /// The lock object was seen to hold this lease's own record. False only for a lease
    /// restored from carried state, which may be stale or forged: until a read shows the
    /// record at `etag` is ours, it is not acted on, renewed or reported.
    pub proven: bool,
    pub record: LeaderRecord,
    /// `record` as written (its JSON): a leader's step returns its health reply, and
    /// serialising the record again for it was ~40 % of a renewal inside the component.
    pub json: Vec<u8>,
}

// One per elector, never moved in bulk: boxing the lease would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Role {
    #[default]
    Follower,
    Leader(Lease),
}

/// The lock object as last seen, and since when (our monotonic clock) its etag is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observation {
    pub etag: String,
    pub first_seen: u64,
    pub record: Result<LeaderRecord, RecordError>,
    /// The etag differs from the previous observation: its writer was alive recently.
    pub changed: bool,
    /// How long the record had stood by the server's clock at the latest read that showed
    /// it (`Date − Last-Modified`), if the server said.
    pub server_age_ms: Option<u64>,
}

/// A write as sent: its bytes, condition, send time and term. Kept while it is in flight, and
/// after a timeout or 5xx (when it may or may not have been applied, perhaps much later) until
/// a read settles it: the read shows it (it was applied: adopt it) or shows an etag other than
/// its condition (it can never apply: every write has unique bytes, so an etag never returns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SentWrite {
    pub data: Vec<u8>,
    /// The etag it was conditioned on; `None` = If-None-Match: *.
    pub condition: Option<String>,
    pub sent_at: u64,
    pub term: u64,
    pub record: LeaderRecord,
    /// A claim (a new term) rather than a renewal.
    pub claim: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteKind {
    Claim,
    Renew,
    Resign { stop: bool },
}

/// What follows a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AfterHook {
    /// The acquire hook: on success the instance acts as leader.
    Lead,
    /// A lose hook, then observe as a follower.
    Observe,
    /// A lose hook, then write the resigned record.
    Resign { etag: String, term: u64, stop: bool },
}

/// Why a step reads the lock object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadFor {
    /// To learn its state (a follower's poll, or a re-read after a 409).
    Observe,
    /// After a 412 to our write conditioned on `condition`: if the object still carries that
    /// etag, the server refused a correct write — a server quirk, not a competitor.
    Refused { condition: Option<String> },
    /// To prove a restored lease: the object must hold that lease's own record.
    Prove,
}

// Each action carries a ticket that the host hands back with the answer. A ticket holds what
// the step does next, so an answer of the wrong kind cannot be expressed; its serial catches an
// answer to an action the machine no longer waits for (a step abandoned for a new one).

/// Handed back with the answer to [`Action::Get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadTicket {
    serial: u64,
    sent_at: u64,
    why: ReadFor,
}

/// Handed back with the answer to [`Action::Put`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteTicket {
    serial: u64,
    kind: WriteKind,
    sent: SentWrite,
}

/// Handed back with the answer to [`Action::Probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTicket {
    serial: u64,
    sent_at: u64,
    /// The etag we asked the leader to hold the answer on until it changes.
    watching: Option<String>,
}

/// Handed back with the answer to a hook action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookTicket {
    serial: u64,
    after: AfterHook,
}

/// Everything the elector reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub server_id: String,
    pub lockfile_path: String,
    pub is_leader: bool,
    pub leader_id: String,
    pub leader_addr: String,
    pub leader_last_seen_unix_ns: Option<i128>,
    pub last_election_unix_ns: Option<i128>,
    pub consecutive_fails: u32,
    pub term: u64,
    pub lease_until: Option<u64>,
    /// The most recent problem's message ([`Elector::problem`] has it as a value).
    pub last_error: Option<String>,
    /// F5 may judge staleness by the storage server's clock (declared, or checked).
    pub server_clock_in_use: bool,
    /// The most recent problem's kind, for hosts that act on it.
    pub problem: Option<ProblemKind>,
    pub stopped: bool,
}

/// What the elector knows beyond one step: exactly what a snapshot saves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Knowledge {
    pub role: Role,
    pub obs: Option<Observation>,
    /// Highest term seen in any record or written by us.
    pub highest_term: u64,
    /// Our writes that may have been applied without our knowing (oldest first).
    pub unanswered: Vec<SentWrite>,
    /// After a failed acquire hook: no competing before this instant.
    pub backoff_until: Option<u64>,
    /// Our own object vanished under our lease: we may recreate it without waiting.
    pub recreate_now: bool,
    pub stopped: bool,
}

/// What the elector tells its host, beyond its knowledge.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub fails: u32,
    pub problem: Option<Problem>,
    pub leader_last_seen: Option<i128>,
    pub last_election: Option<i128>,
    /// Monotonic instant at which the next step is due, set when a step ends.
    pub next_step_at: Option<u64>,
}

/// Scratch of the step in progress, reset when a step begins.
#[derive(Clone, Debug, Default)]
struct StepScratch {
    /// Serial of the outstanding action's ticket.
    serial: u64,
    ops: u32,
    probe_failed: bool,
    probe_ok: bool,
}

/// One participant in one election.
#[derive(Clone, Debug)]
pub struct Elector {
    pub(crate) cfg: Config,
    pub(crate) known: Knowledge,
    pub(crate) report: Report,
    step: StepScratch,
    rng: fastrand::Rng,
    /// Its watches began with this instance: created cold, or restored from state whose
    /// monotonic clock did not continue here.
    pub(crate) fresh_clock: bool,
    /// Whether the server's clock has earned trust (`server-clock-auto`). Not carried in
    /// snapshots: each instance checks afresh.
    clock_check: ClockCheck,
    /// Set for an elector that lives for one invocation of at most this many milliseconds.
    invocation_budget_ms: Option<u64>,
    /// A leader address whose probe failed, and until when it is not probed again: a follower
    /// that cannot reach the leader polls S3 without paying a probe timeout at every poll.
    unreachable: Option<(String, u64)>,
}

/// How many infrequent intervals an unreachable leader address goes unprobed.
const UNREACHABLE_POLLS: u64 = 10;

impl Elector {
    pub fn new(cfg: Config, now: Clock) -> Result<Self, ConfigError> {
        cfg.validate()?;
        // Jitter only needs to differ between electors, not to be unpredictable.
        let seed =
            cfg.server_id.bytes().fold(now.mono_ns ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Ok(Elector {
            cfg,
            known: Knowledge::default(),
            report: Report::default(),
            step: StepScratch::default(),
            rng: fastrand::Rng::with_seed(seed),
            fresh_clock: true,
            invocation_budget_ms: None,
            unreachable: None,
            clock_check: ClockCheck::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Takes effect from the next step. The identity of the election cannot change under a
    /// running elector: a lease on one object says nothing about another.
    pub fn update_config(&mut self, cfg: Config) -> Result<(), ConfigError> {
        cfg.validate()?;
        if cfg.lockfile_path != self.cfg.lockfile_path || cfg.server_id != self.cfg.server_id {
            return Err(ConfigError {
                rule: "identity-immutable".into(),
                message: "lockfile-path and server-id cannot change on a running elector; create a new one".into(),
            });
        }
        self.cfg = cfg;
        Ok(())
    }

    pub fn is_leader(&self, now: Clock) -> bool {
        matches!(&self.known.role, Role::Leader(l) if l.hook_ok && l.proven && now.mono_ns < l.until)
    }

    pub fn status(&self, now: Clock) -> Status {
        let (leader_id, leader_addr, term) = match (&self.known.role, &self.known.obs) {
            (Role::Leader(l), _) => (self.cfg.server_id.clone(), self.cfg.server_addr.clone(), l.term),
            (Role::Follower, Some(Observation { record: Ok(r), .. })) if !r.is_resigned() => {
                (r.leader_id.clone(), r.leader_addr.clone(), self.known.highest_term)
            }
            _ => (String::new(), String::new(), self.known.highest_term),
        };
        let is_leader = self.is_leader(now);
        Status {
            server_id: self.cfg.server_id.clone(),
            lockfile_path: self.cfg.lockfile_path.clone(),
            is_leader,
            leader_id,
            leader_addr,
            leader_last_seen_unix_ns: if is_leader { Some(now.wall_ns) } else { self.report.leader_last_seen },
            last_election_unix_ns: self.report.last_election,
            consecutive_fails: self.report.fails,
            term,
            lease_until: match &self.known.role {
                Role::Leader(l) if is_leader => Some(l.until),
                _ => None,
            },
            last_error: self.report.problem.as_ref().map(Problem::to_string),
            server_clock_in_use: self.server_skew_ms().is_some(),
            problem: self.report.problem.as_ref().map(Problem::kind),
            stopped: self.known.stopped,
        }
    }

    /// The health endpoint's body, while this instance leads.
    pub fn health(&self, now: Clock) -> Option<Vec<u8>> {
        match &self.known.role {
            Role::Leader(l) if self.is_leader(now) => {
                debug_assert_eq!(l.json, l.record.to_json(), "a lease's bytes are its record's");
                Some(HealthReply::json_with_record(&l.json, &l.etag, (l.until - now.mono_ns) / MS))
            }
            _ => None,
        }
    }

    /// Declares that this elector lives for one invocation of at most `budget_ms` (a scheduled
    /// step; 0 for exactly one). Its status then names the problem when, as a follower, it could
    /// never conclude that a leader is gone ([`Problem::NoStalenessSource`]); and at its first
    /// look it resumes a live record of its own (policy F3: invocations of one server id never
    /// overlap).
    pub fn set_invocation_budget(&mut self, budget_ms: u64) {
        self.invocation_budget_ms = Some(budget_ms);
    }

    /// The most recent problem, until what it describes is over.
    pub fn problem(&self) -> Option<&Problem> {
        self.report.problem.as_ref()
    }

    /// The monotonic instant the last finished step asked to be woken at (in the manner of
    /// quinn-proto's `poll_timeout`); `None` before the first step ends.
    pub fn next_step_at(&self) -> Option<u64> {
        self.report.next_step_at
    }

    // ---- step entry points -------------------------------------------------------------

    pub fn begin_step(&mut self, now: Clock) -> Action {
        self.step = StepScratch { serial: self.step.serial.wrapping_add(1), ..StepScratch::default() };
        if self.known.stopped {
            return self.done(now, now.mono_ns + self.cfg.infrequent_interval_ms * MS);
        }
        match &self.known.role {
            Role::Leader(_) => self.lead(now),
            Role::Follower => self.observe(now),
        }
    }

    /// Leaves the election. A leader runs its lose hook, then writes the resigned record.
    pub fn begin_resign(&mut self, now: Clock) -> Action {
        self.step = StepScratch { serial: self.step.serial.wrapping_add(1), ..StepScratch::default() };
        let quiet = now.mono_ns + self.cfg.infrequent_interval_ms * MS;
        if self.known.stopped {
            return self.done(now, quiet);
        }
        match mem::take(&mut self.known.role) {
            // An unproven (carried) lease writes nothing: its etag may be someone else's.
            Role::Leader(l) if l.proven && l.hook_ok => {
                self.lose_hook(l.term, AfterHook::Resign { etag: l.etag, term: l.term, stop: true })
            }
            Role::Leader(l) if l.proven => self.write_resigned(now, l.etag, l.term, true),
            Role::Leader(_) | Role::Follower => {
                self.known.stopped = true;
                self.done(now, quiet)
            }
        }
    }

    /// Continues the step with the answer to its outstanding action.
    pub fn complete(&mut self, now: Clock, completion: Completion) -> Action {
        if completion.serial() != self.step.serial {
            // An answer to an action of an abandoned step: what it did is unknown here, so
            // end this step too and start afresh (a write it reported is then unknown to us:
            // a later read counts it as someone else's, the safe reading).
            self.step.serial = self.step.serial.wrapping_add(1);
            return self.done(now, now.mono_ns + self.cfg.frequent_interval_ms * MS);
        }
        match completion {
            Completion::Got(t, r) => self.on_read(now, t.sent_at, t.why, r),
            Completion::Probed(t, r) => self.on_probe(now, t.sent_at, t.watching, r),
            Completion::Put(t, r) => match t.kind {
                WriteKind::Claim => self.on_claim(now, t.sent, r),
                WriteKind::Renew => self.on_renew(now, t.sent, r),
                WriteKind::Resign { stop } => self.on_resigned(now, t.sent.term, stop, r),
            },
            Completion::Hook(t, r) => match t.after {
                AfterHook::Lead => self.on_acquire_hook(now, r),
                after => self.on_lose_hook(now, after, r),
            },
        }
    }

    // ---- followers -----------------------------------------------------------------------

    fn observe(&mut self, now: Clock) -> Action {
        if let Some(wait) = self.out_of_ops(now) {
            return wait;
        }
        if self.cfg.peer_mode
            && !self.step.probe_failed
            && self.known.unanswered.is_empty()
            && let Some((addr, pin)) = self.probe_target()
            && !self.unreachable.as_ref().is_some_and(|(a, until)| *a == addr && now.mono_ns < *until)
        {
            // A long poll ("watch"): the leader answers when its etag changes, when it stops
            // leading, or after `wait`; a crashed leader's connection breaks at once.
            let watching = self.known.obs.as_ref().map(|o| o.etag.clone());
            let (path, timeout_ms) = match &watching {
                Some(etag) => (
                    format!("{}?wait={}&etag={}", self.cfg.peer_health_path, self.cfg.frequent_interval_ms, hex(etag)),
                    self.cfg.frequent_interval_ms + self.cfg.peer_timeout_ms,
                ),
                None => (self.cfg.peer_health_path.clone(), self.cfg.peer_timeout_ms),
            };
            let ticket = ProbeTicket { serial: self.issue(), sent_at: now.mono_ns, watching };
            return Action::Probe { addr, path, timeout_ms, pin, ticket };
        }
        self.read(now, ReadFor::Observe)
    }

    fn read(&mut self, now: Clock, why: ReadFor) -> Action {
        let ticket = ReadTicket { serial: self.issue(), sent_at: now.mono_ns, why };
        Action::Get { key: self.cfg.lockfile_path.clone(), timeout_ms: self.request_timeout_ms(), ticket }
    }

    /// The leader to probe, and the certificate pin it published: a live-looking record naming
    /// someone else with an address that is a plain `host:port` (anything else is not probed:
    /// S3 is read instead).
    fn probe_target(&self) -> Option<(String, Option<String>)> {
        match &self.known.obs {
            Some(Observation { record: Ok(r), .. }) if !r.is_resigned() && r.leader_id != self.cfg.server_id => {
                r.probe_addr().map(|a| (a.to_string(), r.probe_pin().map(str::to_string)))
            }
            _ => None,
        }
    }

    fn on_read(&mut self, now: Clock, sent_at: u64, why: ReadFor, r: Result<Object, StorageError>) -> Action {
        let obj = match r {
            Ok(obj) => obj,
            Err(StorageError::NotFound) => {
                self.known.unanswered.retain(|w| w.condition.is_none());
                return match self.known.role {
                    Role::Leader(_) => self.lose_deleted(now),
                    Role::Follower => self.on_absent(now),
                };
            }
            Err(StorageError::Conflict) => return self.reread(now, ReadFor::Observe),
            Err(e) => return self.failed(now, e),
        };
        self.succeeded();
        self.check_server_clock(&obj, sent_at, now);
        if let Some(mine) = self.settle(&obj) {
            // One of our unanswered writes was applied after all: it is ours, and its send
            // time bounds the lease it gave us.
            self.note(now, &obj);
            return match &mut self.known.role {
                Role::Leader(lease) => {
                    lease.proven = true;
                    lease.etag = obj.etag;
                    lease.sent_at = mine.sent_at;
                    lease.until = policy::lease_until(&self.cfg, mine.sent_at);
                    lease.record = mine.record;
                    lease.json = mine.data;
                    self.lead(now)
                }
                // Our claim was applied: the lease it won is ours, first acquired now.
                Role::Follower if mine.claim => self.hold(now, obj.etag, mine),
                // A renewal of a leadership that has since ended: that leadership is not
                // resumed (its lose hook ran). The record is ours, so claim a new term on top
                // of it at once; success proves nobody wrote since.
                Role::Follower => self.claim(now, Some(obj.etag)),
            };
        }
        if why == ReadFor::Prove {
            return self.prove(now, obj);
        }
        if matches!(&why, ReadFor::Refused { condition: Some(c) } if *c == obj.etag) {
            self.note(now, &obj);
            return self.refused_correct_write(now, obj.etag);
        }
        if let Role::Leader(lease) = &self.known.role {
            if obj.etag == lease.etag {
                // A 409 on our renewal, and nothing changed: renew again.
                return self.lead(now);
            }
            self.note(now, &obj);
            return self.lose(now, Loss::OtherWriter);
        }
        let first_look = self.known.obs.is_none();
        self.note(now, &obj);
        self.decide(now, first_look)
    }

    /// A restored lease meets the object: it stands only if the object at its etag is its own
    /// record (a forged or stale state naming another writer's etag is caught here, before any
    /// write or hook).
    fn prove(&mut self, now: Clock, obj: Object) -> Action {
        let Role::Leader(lease) = &self.known.role else { return self.observe(now) };
        let ours = obj.etag == lease.etag
            && lease.record.leader_id == self.cfg.server_id
            && LeaderRecord::parse(&obj.data).is_ok_and(|r| r == lease.record);
        self.note(now, &obj);
        if !ours {
            return self.lose(now, Loss::CarriedLeaseNotHeld);
        }
        if let Role::Leader(lease) = &mut self.known.role {
            lease.proven = true;
        }
        self.lead(now)
    }

    /// Settles our unanswered writes against the object a read returned: the one it shows, if
    /// any, is returned; those conditioned on another etag can never apply and are forgotten.
    fn settle(&mut self, obj: &Object) -> Option<SentWrite> {
        if let Some(i) = self.known.unanswered.iter().position(|w| w.data == obj.data) {
            let mine = self.known.unanswered.swap_remove(i);
            self.known.unanswered.clear();
            return Some(mine);
        }
        self.known.unanswered.retain(|w| w.condition.as_deref() == Some(obj.etag.as_str()));
        None
    }

    /// The server answered 412 to a write conditioned on the etag the object still has. No
    /// competitor did that: the server does not honour If-Match as we send it. Report it as
    /// what it is and retry with backoff; a leader keeps its lease until it runs out.
    fn refused_correct_write(&mut self, now: Clock, etag: String) -> Action {
        self.report.fails = self.report.fails.saturating_add(1);
        self.report.problem = Some(Problem::RefusedCorrectWrite { etag });
        let at = self.retry_at(now);
        self.done(now, at)
    }

    /// No lock object (a GET's 404, or a 404 on our If-Match). If we were watching a record,
    /// someone deleted it — perhaps under a leader whose lease still runs — so the absence
    /// stands for a leader timeout like any record, unless the policy says otherwise (F1, F2).
    fn on_absent(&mut self, now: Clock) -> Action {
        let first_look = self.known.obs.is_none();
        let first_seen = match &self.known.obs {
            None => now.mono_ns,
            Some(o) if o.etag == ABSENT => o.first_seen,
            Some(_) => {
                if !self.known.recreate_now {
                    self.report.problem = Some(Problem::Deleted { key: self.cfg.lockfile_path.clone() });
                }
                now.mono_ns
            }
        };
        self.known.obs = Some(Observation {
            etag: ABSENT.into(),
            first_seen,
            record: Err(RecordError::Invalid("deleted".into())),
            changed: first_seen == now.mono_ns,
            server_age_ms: None,
        });
        self.decide(now, first_look)
    }

    /// Records what a read (or a probe) showed; resets the watch when the etag changed.
    fn note_record(&mut self, now: Clock, etag: &str, record: Result<LeaderRecord, RecordError>, server_age_ms: Option<u64>) {
        match &record {
            Ok(r) => {
                self.known.highest_term = self.known.highest_term.max(r.term);
                // A record stands there now: if it goes, it is not our own object vanishing.
                self.known.recreate_now = false;
                self.recovered(Recovery::RecordRead);
            }
            Err(e) => self.report.problem = Some(Problem::Record { key: self.cfg.lockfile_path.clone(), error: e.clone() }),
        }
        if let Some(o) = self.known.obs.as_mut().filter(|o| o.etag == etag) {
            o.record = record;
            o.changed = false;
            // A record only grows older: a later reading, if any, is the better one.
            o.server_age_ms = server_age_ms.max(o.server_age_ms);
            return;
        }
        // A new etag (or the first look): its writer was alive recently.
        let changed = self.known.obs.is_some();
        self.report.leader_last_seen = Some(now.wall_ns);
        self.known.obs = Some(Observation { etag: etag.to_string(), first_seen: now.mono_ns, record, changed, server_age_ms });
    }

    fn note(&mut self, now: Clock, obj: &Object) {
        self.note_record(now, &obj.etag, LeaderRecord::parse(&obj.data), obj.server_clock.map(|c| c.age_ms()));
    }

    /// A follower has fresh knowledge of the object: the policy's follower rule decides.
    fn decide(&mut self, now: Clock, first_look: bool) -> Action {
        let server_skew_ms = self.server_skew_ms();
        let Some(obs) = &self.known.obs else { return self.claim(now, None) };
        let view = FollowerView {
            obs,
            server_skew_ms,
            first_look,
            recreate_now: self.known.recreate_now,
            probe_ok: self.step.probe_ok,
            one_invocation: self.invocation_budget_ms.is_some(),
        };
        match policy::follower(&self.cfg, &view, now) {
            FollowerMove::Claim { over, case: Takeover::F3Resume } => {
                let term = obs.record.as_ref().map_or(self.known.highest_term, |r| r.term);
                self.claim_term(now, over, term)
            }
            FollowerMove::Claim { over, case } => {
                if matches!(case, Takeover::F1Recreate | Takeover::F2TrustAbsent) {
                    // We create the object as if nothing had been there.
                    self.known.recreate_now = false;
                    self.known.obs = None;
                }
                self.claim(now, over)
            }
            FollowerMove::Wait { until } => self.done(now, until),
        }
    }

    fn on_probe(&mut self, now: Clock, sent_at: u64, watching: Option<String>, r: Result<ProbeReply, String>) -> Action {
        let reply = match r {
            Ok(ProbeReply::Leader(body)) => HealthReply::parse(&body).ok(),
            Ok(ProbeReply::NotLeader) => None,
            Err(_) => {
                if let Some((addr, _)) = self.probe_target() {
                    self.unreachable = Some((addr, now.mono_ns + UNREACHABLE_POLLS * self.cfg.infrequent_interval_ms * MS));
                }
                None
            }
        };
        // A leader reports only the etag of a completed renewal: as good as reading it.
        let Some(h) = reply.filter(|h| !h.record.is_resigned() && h.lease_remaining_ms > 0) else {
            // Failed probe: read S3 now, and poll frequently until things settle.
            self.step.probe_failed = true;
            return self.observe(now);
        };
        self.step.probe_ok = true;
        self.note_record(now, &h.etag, Ok(h.record), None);
        let skew = self.server_skew_ms();
        let o = self.known.obs.as_ref().expect("just noted");
        if policy::stale(&self.cfg, o, skew, now).is_some() {
            let etag = o.etag.clone();
            return self.claim(now, Some(etag));
        }
        // An answer that brings news, or that was held for a while, means the leader supports
        // watching: watch again at once. One that came back at once with nothing new is from a
        // peer that does not: probe at the normal interval.
        let news = watching.as_deref() != Some(o.etag.as_str());
        let held = now.mono_ns - sent_at >= self.cfg.frequent_interval_ms * MS / 2;
        if watching.is_some() && (news || held) {
            return self.done(now, now.mono_ns);
        }
        // Trust extends no further than the lease the leader reported.
        let at = policy::follower_next_at(&self.cfg, o, skew, true, now).min(now.mono_ns + h.lease_remaining_ms.max(1) * MS);
        self.done(now, at)
    }

    fn claim(&mut self, now: Clock, etag: Option<String>) -> Action {
        self.claim_term(now, etag, self.known.highest_term + 1)
    }

    /// A claim for `term`: the next one, or (F3, resuming our own record) the record's own.
    fn claim_term(&mut self, now: Clock, etag: Option<String>, term: u64) -> Action {
        if let Some(until) = policy::claim_blocked_until(self.known.backoff_until, now) {
            return self.done(now, until);
        }
        self.known.backoff_until = None;
        if let Some(wait) = self.out_of_ops(now) {
            return wait;
        }
        let record = LeaderRecord::leading(&self.cfg.server_id, &self.cfg.server_addr, now.wall_ns, term);
        self.write(now, WriteKind::Claim, etag, term, record)
    }

    fn write(&mut self, now: Clock, kind: WriteKind, etag: Option<String>, term: u64, mut record: LeaderRecord) -> Action {
        // Unique bytes per write, so content-hash etags change on every write (see record.rs).
        record.nonce = self.rng.u64(1..);
        if !matches!(kind, WriteKind::Resign { .. }) {
            record.peer_cert_sha256 = self.cfg.peer_cert_sha256.clone();
        }
        let data = record.to_json();
        let timeout_ms = match (&self.known.role, kind) {
            // A renewal that answers after the lease is useless: give up at the deadline.
            (Role::Leader(l), WriteKind::Renew) if l.until > now.mono_ns => (l.until - now.mono_ns).div_ceil(MS),
            _ => self.request_timeout_ms(),
        };
        let claim = kind == WriteKind::Claim;
        let sent = SentWrite { data: data.clone(), condition: etag.clone(), sent_at: now.mono_ns, term, record, claim };
        let ticket = WriteTicket { serial: self.issue(), kind, sent };
        Action::Put { key: self.cfg.lockfile_path.clone(), data, etag, timeout_ms, ticket }
    }

    fn on_claim(&mut self, now: Clock, sent: SentWrite, r: Result<String, StorageError>) -> Action {
        match r {
            Ok(etag) => {
                self.succeeded();
                self.hold(now, etag, sent)
            }
            // Lost the race (or the object appeared): find out who won.
            Err(StorageError::PreconditionFailed) => self.reread(now, ReadFor::Refused { condition: sent.condition }),
            Err(StorageError::Conflict) => self.reread(now, ReadFor::Observe),
            // If-Match on an object that is gone: whoever replaced it may lead and the
            // replacement may have been deleted. Treat it as any absence.
            Err(StorageError::NotFound) => self.on_absent(now),
            Err(e @ StorageError::Unavailable(_)) => self.unanswered(now, sent, e),
            Err(e) => self.failed(now, e),
        }
    }

    /// A write timed out or met a 5xx: it may have been applied, now or later. Remember what
    /// we sent, so a later read can recognise it as ours.
    fn unanswered(&mut self, now: Clock, write: SentWrite, e: StorageError) -> Action {
        if self.known.unanswered.len() == MAX_UNANSWERED {
            self.known.unanswered.remove(0);
        }
        self.known.unanswered.push(write);
        self.failed(now, e)
    }

    fn reread(&mut self, now: Clock, why: ReadFor) -> Action {
        if let Some(wait) = self.out_of_ops(now) {
            return wait;
        }
        self.read(now, why)
    }

    /// Our write `etag`, sent at `sent_at`, succeeded: we hold the lease. Run the acquire hook
    /// before acting as leader; if the lease ran out while we waited, renew first.
    fn hold(&mut self, now: Clock, etag: String, claim: SentWrite) -> Action {
        let SentWrite { term, sent_at, record, data: json, .. } = claim;
        self.known.highest_term = self.known.highest_term.max(term);
        // A write of ours succeeded: every earlier one was conditioned on an etag that is gone.
        self.known.unanswered.clear();
        self.note_record(now, &etag, Ok(record.clone()), None);
        let until = policy::lease_until(&self.cfg, sent_at);
        self.known.role = Role::Leader(Lease { etag, term, sent_at, until, hook_ok: false, proven: true, record, json });
        if now.mono_ns >= until {
            return self.lead(now);
        }
        self.acquire_hook(term)
    }

    /// Asks for the acquire hook; the instance acts as leader only once it succeeded.
    fn acquire_hook(&mut self, term: u64) -> Action {
        let ticket = HookTicket { serial: self.issue(), after: AfterHook::Lead };
        Action::AcquireHook { term, leader_id: self.cfg.server_id.clone(), ticket }
    }

    fn on_acquire_hook(&mut self, now: Clock, r: Result<(), String>) -> Action {
        let Role::Leader(lease) = &mut self.known.role else {
            return self.done(now, now.mono_ns + self.cfg.frequent_interval_ms * MS);
        };
        match r {
            Ok(()) => {
                lease.hook_ok = true;
                // A hook that outlasted the lease: nobody saw us lead yet, so instead of giving
                // up, renew at once — success proves nobody wrote meanwhile; a 412 loses.
                if now.mono_ns >= lease.until {
                    return self.send_renewal(now);
                }
                let at = policy::renew_at(&self.cfg, lease);
                self.done(now, at)
            }
            Err(e) => {
                // Resign, and stay out for a leader-timeout so we do not loop acquire → resign.
                let (etag, term) = (lease.etag.clone(), lease.term);
                self.report.problem = Some(Problem::AcquireHook(e));
                self.known.role = Role::Follower;
                self.known.backoff_until = Some(now.mono_ns + self.cfg.leader_timeout_ms * MS);
                self.write_resigned(now, etag, term, false)
            }
        }
    }

    // ---- leaders -------------------------------------------------------------------------

    /// A leader's step: the policy's leader rule decides.
    fn lead(&mut self, now: Clock) -> Action {
        let Role::Leader(lease) = &self.known.role else { return self.observe(now) };
        match policy::leader(lease, now) {
            LeaderMove::Prove => self.reread(now, ReadFor::Prove),
            LeaderMove::StepDown(why) => self.lose(now, why),
            LeaderMove::Renew => self.send_renewal(now),
        }
    }

    fn send_renewal(&mut self, now: Clock) -> Action {
        if let Some(wait) = self.out_of_ops(now) {
            return wait;
        }
        let Role::Leader(lease) = &self.known.role else { return self.observe(now) };
        let (etag, term) = (lease.etag.clone(), lease.term);
        let record = LeaderRecord::leading(&self.cfg.server_id, &self.cfg.server_addr, now.wall_ns, term);
        self.write(now, WriteKind::Renew, Some(etag), term, record)
    }

    fn on_renew(&mut self, now: Clock, sent: SentWrite, r: Result<String, StorageError>) -> Action {
        let Role::Leader(lease) = &mut self.known.role else {
            return self.done(now, now.mono_ns + self.cfg.frequent_interval_ms * MS);
        };
        match r {
            Ok(etag) => {
                let record = sent.record;
                lease.etag = etag.clone();
                lease.sent_at = sent.sent_at;
                lease.until = policy::lease_until(&self.cfg, sent.sent_at);
                lease.record = record.clone();
                lease.json = sent.data;
                let (hook_ok, in_time, renew_at) = (lease.hook_ok, policy::renewed_in_time(lease, now), policy::renew_at(&self.cfg, lease));
                self.succeeded();
                self.known.unanswered.clear();
                self.note_record(now, &etag, Ok(record), None);
                if !hook_ok {
                    // The lease was won while its hook could not run (it had already lapsed).
                    return self.acquire_hook(sent.term);
                }
                if !in_time {
                    return self.lose(now, Loss::RenewedTooLate);
                }
                self.done(now, renew_at)
            }
            // Someone wrote since our last renewal — or our own unanswered write was applied,
            // or the server refused a correct write. Only a read can tell which.
            Err(StorageError::PreconditionFailed) => self.reread(now, ReadFor::Refused { condition: sent.condition }),
            Err(StorageError::Conflict) => self.reread(now, ReadFor::Observe),
            Err(StorageError::NotFound) if !self.known.unanswered.is_empty() => self.reread(now, ReadFor::Observe),
            Err(StorageError::NotFound) => self.lose_deleted(now),
            Err(e @ StorageError::Unavailable(_)) => self.unanswered(now, sent, e),
            Err(e) => self.failed(now, e),
        }
    }

    /// Leadership ends now. The lose hook runs if the acquire hook had run.
    fn lose(&mut self, now: Clock, why: Loss) -> Action {
        let Role::Leader(lease) = mem::take(&mut self.known.role) else {
            return self.observe(now);
        };
        self.report.problem = Some(Problem::Lost { term: lease.term, why });
        if lease.hook_ok { self.lose_hook(lease.term, AfterHook::Observe) } else { self.observe(now) }
    }

    /// Our object vanished under our lease: we may recreate it at once (policy F1).
    fn lose_deleted(&mut self, now: Clock) -> Action {
        self.known.recreate_now = true;
        self.lose(now, Loss::Deleted)
    }

    fn lose_hook(&mut self, term: u64, after: AfterHook) -> Action {
        let ticket = HookTicket { serial: self.issue(), after };
        Action::LoseHook { term, leader_id: self.cfg.server_id.clone(), ticket }
    }

    fn on_lose_hook(&mut self, now: Clock, after: AfterHook, r: Result<(), String>) -> Action {
        if let Err(e) = r {
            self.report.problem = Some(Problem::LoseHook(e));
        }
        match after {
            AfterHook::Resign { etag, term, stop } => self.write_resigned(now, etag, term, stop),
            AfterHook::Observe | AfterHook::Lead => self.observe(now),
        }
    }

    fn write_resigned(&mut self, now: Clock, etag: String, term: u64, stop: bool) -> Action {
        self.write(now, WriteKind::Resign { stop }, Some(etag), term, LeaderRecord::resigned(term))
    }

    fn on_resigned(&mut self, now: Clock, term: u64, stop: bool, r: Result<String, StorageError>) -> Action {
        self.known.stopped = stop;
        match r {
            Ok(etag) => {
                self.succeeded();
                self.note_record(now, &etag, Ok(LeaderRecord::resigned(term)), None);
            }
            // Best effort: if it failed, followers take over when the lease runs out.
            Err(e) => {
                self.report.fails += 1;
                self.report.problem = Some(Problem::Resign(e));
            }
        }
        let at = policy::claim_blocked_until(self.known.backoff_until, now).unwrap_or(now.mono_ns + self.cfg.frequent_interval_ms * MS);
        self.done(now, at)
    }

    // ---- shared helpers --------------------------------------------------------------------

    /// One-invocation electors: a follower watching a live record, whose watch began in this
    /// invocation and cannot last a leader timeout, with no server clock and no timestamp mode,
    /// can never take over.
    fn check_staleness_source(&mut self) {
        let Some(budget_ms) = self.invocation_budget_ms else { return };
        // A live record, or an absence that must stand a leader timeout (no server stamps it).
        let must_wait_out = match (&self.known.role, &self.known.obs) {
            (Role::Follower, Some(Observation { record: Ok(r), .. })) => !r.is_resigned(),
            (Role::Follower, Some(o)) => o.etag == ABSENT && !self.cfg.trust_absent_object,
            _ => false,
        };
        // The server's clock is a source only if the server sends it.
        let server_clock = self.server_skew_ms().is_some() && self.known.obs.as_ref().is_some_and(|o| o.server_age_ms.is_some());
        let blind = must_wait_out
            && self.fresh_clock
            && budget_ms < self.cfg.leader_timeout_ms
            && self.cfg.max_clock_skew_ms.is_none()
            && !server_clock;
        let reported = matches!(self.report.problem, Some(Problem::NoStalenessSource { .. }));
        // Other problems (a storage failure, say) are shown first; this one returns after them.
        if blind && (self.report.problem.is_none() || reported) {
            self.report.problem = Some(Problem::NoStalenessSource { budget_ms, leader_timeout_ms: self.cfg.leader_timeout_ms });
        } else if !blind && reported {
            self.report.problem = None;
        }
    }

    /// A new ticket serial: the outstanding action is now this one.
    fn issue(&mut self) -> u64 {
        self.step.serial = self.step.serial.wrapping_add(1);
        self.step.serial
    }

    /// Counts one storage or probe call against the step's budget (it guards against a 409/412
    /// ping-pong). Over budget, the step ends: a leader resumes at its renewal instant, a
    /// follower after the frequent interval.
    fn out_of_ops(&mut self, now: Clock) -> Option<Action> {
        if self.step.ops < MAX_OPS_PER_STEP {
            self.step.ops += 1;
            return None;
        }
        let at = match &self.known.role {
            Role::Leader(l) => policy::renew_at(&self.cfg, l),
            Role::Follower => now.mono_ns + self.cfg.frequent_interval_ms * MS,
        };
        Some(self.done(now, at))
    }

    fn request_timeout_ms(&self) -> u64 {
        self.cfg.renew_deadline_ms
    }

    /// The front-ends' skew the follower rule may rely on: the declared one, or the assumed one
    /// once the server's clock has earned trust (`server-clock-auto`, where the timings leave
    /// room for it).
    pub(crate) fn server_skew_ms(&self) -> Option<u64> {
        self.cfg
            .server_clock_skew_ms
            .or_else(|| (self.auto_clock() && *self.clock_check.verdict() == Verdict::Trusted).then_some(AUTO_SKEW_MS))
    }

    fn auto_clock(&self) -> bool {
        self.cfg.server_clock_auto && self.cfg.server_clock_skew_ms.is_none() && self.cfg.server_clock_fits(AUTO_SKEW_MS)
    }

    /// Weighs a read's server stamps for `server-clock-auto`, before anything decides on them.
    fn check_server_clock(&mut self, obj: &Object, sent_at: u64, now: Clock) {
        let Some(stamps) = obj.server_clock.filter(|_| self.auto_clock()) else { return };
        let reading = Reading { etag: obj.etag.clone(), stamps, sent_at, received_at: now.mono_ns };
        if let Some(why) = self.clock_check.observe(reading, self.cfg.max_clock_drift_ppm) {
            self.report.problem = Some(Problem::ServerClockDistrusted { why });
        }
    }

    fn succeeded(&mut self) {
        self.report.fails = 0;
        self.recovered(Recovery::StorageAnswered);
    }

    fn recovered(&mut self, event: Recovery) {
        if self.report.problem.as_ref().is_some_and(|p| p.cleared_by(event)) {
            self.report.problem = None;
        }
    }

    /// A storage call failed: report it and retry with backoff — for a leader, always before
    /// its lease runs out.
    fn failed(&mut self, now: Clock, e: StorageError) -> Action {
        self.report.fails = self.report.fails.saturating_add(1);
        self.report.problem = Some(Problem::Storage(e));
        let at = self.retry_at(now);
        self.done(now, at)
    }

    fn retry_at(&mut self, now: Clock) -> u64 {
        let lease = match &self.known.role {
            Role::Leader(l) => Some(l),
            Role::Follower => None,
        };
        policy::retry_at(&self.cfg, self.report.fails, &mut self.rng, lease, now)
    }

    /// Ends the step; the next is due at the monotonic instant `at` (at once if it has passed).
    fn done(&mut self, now: Clock, at: u64) -> Action {
        self.check_staleness_source();
        self.report.last_election = Some(now.wall_ns);
        self.report.next_step_at = Some(at);
        Action::Done { next_step_in_ms: at.saturating_sub(now.mono_ns).div_ceil(MS) }
    }
}

impl Completion {
    fn serial(&self) -> u64 {
        match self {
            Completion::Got(t, _) => t.serial,
            Completion::Put(t, _) => t.serial,
            Completion::Probed(t, _) => t.serial,
            Completion::Hook(t, _) => t.serial,
        }
    }
}

/// Etags carry quotes and arbitrary bytes; hex keeps them safe in a query string.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
