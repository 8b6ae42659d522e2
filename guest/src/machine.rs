//! The election algorithm: a pure state machine, (state, clock reading, completion) →
//! (state, action). The rules and their safety argument are in `docs/design.md`.
//!
//! A step starts with [`Elector::begin_step`] and continues with [`Elector::complete`] until it
//! returns [`Action::Done`]. The machine never reads a clock or touches the network.

use crate::config::{Config, ConfigError};
use crate::io::{Action, Clock, Completion, Object, ProbeReply, StorageError};
use crate::record::{HealthReply, LeaderRecord, RecordError};
use std::mem;

const MS: u64 = 1_000_000;
/// Pseudo-etag for "the object was there and is gone": watched like any other etag.
const ABSENT: &str = "";
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
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
enum WriteKind {
    Claim,
    Renew,
    Resign { stop: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum AfterLose {
    Observe,
    Resign { etag: String, term: u64, stop: bool },
}

/// Why a step reads the lock object.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ReadFor {
    /// To learn its state (a follower's poll, or a re-read after a 409).
    Observe,
    /// After a 412 to our write conditioned on `condition`: if the object still carries that
    /// etag, the server refused a correct write — a server quirk, not a competitor.
    Refused { condition: Option<String> },
    /// To prove a restored lease: the object must hold that lease's own record.
    Prove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Idle,
    Read(ReadFor),
    /// `watching`: the etag we asked the leader to hold the answer on until it changes.
    Probe {
        sent_at: u64,
        watching: Option<String>,
    },
    Write {
        kind: WriteKind,
        sent: SentWrite,
    },
    AcquireHook,
    LoseHook(AfterLose),
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
    pub last_error: Option<String>,
    pub stopped: bool,
}

/// One participant in one election.
#[derive(Clone, Debug)]
pub struct Elector {
    pub(crate) cfg: Config,
    pub(crate) role: Role,
    pub(crate) obs: Option<Observation>,
    /// Highest term seen in any record or written by us.
    pub(crate) known_term: u64,
    /// Our writes that may have been applied without our knowing (oldest first).
    pub(crate) unanswered: Vec<SentWrite>,
    /// After a failed acquire hook: no competing before this instant.
    pub(crate) backoff_until: Option<u64>,
    pub(crate) fails: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) leader_last_seen: Option<i128>,
    pub(crate) last_election: Option<i128>,
    pub(crate) stopped: bool,
    /// Our own object vanished under our lease: we may recreate it without waiting.
    recreate_now: bool,
    pending: Pending,
    ops: u32,
    probe_failed: bool,
    probe_ok: bool,
    rng: fastrand::Rng,
}

impl Elector {
    pub fn new(cfg: Config, now: Clock) -> Result<Self, ConfigError> {
        cfg.validate()?;
        // Jitter only needs to differ between electors, not to be unpredictable.
        let seed =
            cfg.server_id.bytes().fold(now.mono_ns ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Ok(Elector {
            cfg,
            role: Role::Follower,
            obs: None,
            known_term: 0,
            unanswered: Vec::new(),
            backoff_until: None,
            fails: 0,
            last_error: None,
            leader_last_seen: None,
            last_election: None,
            stopped: false,
            recreate_now: false,
            pending: Pending::Idle,
            ops: 0,
            probe_failed: false,
            probe_ok: false,
            rng: fastrand::Rng::with_seed(seed),
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
        matches!(&self.role, Role::Leader(l) if l.hook_ok && l.proven && now.mono_ns < l.until)
    }

    pub fn status(&self, now: Clock) -> Status {
        let (leader_id, leader_addr, term) = match (&self.role, &self.obs) {
            (Role::Leader(l), _) => (self.cfg.server_id.clone(), self.cfg.server_addr.clone(), l.term),
            (Role::Follower, Some(Observation { record: Ok(r), .. })) if !r.is_resigned() => {
                (r.leader_id.clone(), r.leader_addr.clone(), self.known_term)
            }
            _ => (String::new(), String::new(), self.known_term),
        };
        let is_leader = self.is_leader(now);
        Status {
            server_id: self.cfg.server_id.clone(),
            lockfile_path: self.cfg.lockfile_path.clone(),
            is_leader,
            leader_id,
            leader_addr,
            leader_last_seen_unix_ns: if is_leader { Some(now.wall_ns) } else { self.leader_last_seen },
            last_election_unix_ns: self.last_election,
            consecutive_fails: self.fails,
            term,
            lease_until: match &self.role {
                Role::Leader(l) if is_leader => Some(l.until),
                _ => None,
            },
            last_error: self.last_error.clone(),
            stopped: self.stopped,
        }
    }

    /// The health endpoint's body, while this instance leads.
    pub fn health(&self, now: Clock) -> Option<Vec<u8>> {
        match &self.role {
            Role::Leader(l) if self.is_leader(now) => Some(
                HealthReply { record: l.record.clone(), etag: l.etag.clone(), lease_remaining_ms: (l.until - now.mono_ns) / MS }.to_json(),
            ),
            _ => None,
        }
    }

    // ---- step entry points -------------------------------------------------------------

    pub fn begin_step(&mut self, now: Clock) -> Action {
        self.pending = Pending::Idle;
        self.ops = 0;
        self.probe_failed = false;
        self.probe_ok = false;
        if self.stopped {
            return self.done(now, self.cfg.infrequent_interval_ms);
        }
        match &self.role {
            // A lease from carried state: read first, act only on what the record proves.
            Role::Leader(l) if !l.proven => {
                self.ops += 1;
                self.read(ReadFor::Prove)
            }
            Role::Leader(_) => self.renew(now),
            Role::Follower => self.observe(now),
        }
    }

    /// Leaves the election. A leader runs its lose hook, then writes the resigned record.
    pub fn begin_resign(&mut self, now: Clock) -> Action {
        self.pending = Pending::Idle;
        self.ops = 0;
        if self.stopped {
            return self.done(now, self.cfg.infrequent_interval_ms);
        }
        match mem::replace(&mut self.role, Role::Follower) {
            // An unproven (carried) lease writes nothing: its etag may be someone else's.
            Role::Leader(l) if !l.proven => {
                self.stopped = true;
                self.done(now, self.cfg.infrequent_interval_ms)
            }
            Role::Leader(l) => {
                if l.hook_ok {
                    self.lose_hook(l.term, AfterLose::Resign { etag: l.etag, term: l.term, stop: true })
                } else {
                    self.write_resigned(now, l.etag, l.term, true)
                }
            }
            Role::Follower => {
                self.stopped = true;
                self.done(now, self.cfg.infrequent_interval_ms)
            }
        }
    }

    pub fn complete(&mut self, now: Clock, completion: Completion) -> Action {
        match (mem::replace(&mut self.pending, Pending::Idle), completion) {
            (Pending::Read(why), Completion::Got(r)) => self.on_read(now, why, r),
            (Pending::Probe { sent_at, watching }, Completion::Probed(r)) => self.on_probe(now, sent_at, watching, r),
            (Pending::Write { kind, sent }, Completion::Put(r)) => match kind {
                WriteKind::Claim => self.on_claim(now, sent, r),
                WriteKind::Renew => self.on_renew(now, sent, r),
                WriteKind::Resign { stop } => self.on_resigned(now, sent.term, stop, r),
            },
            (Pending::AcquireHook, Completion::Hook(r)) => self.on_acquire_hook(now, r),
            (Pending::LoseHook(after), Completion::Hook(r)) => self.on_lose_hook(now, after, r),
            (pending, completion) => {
                self.last_error = Some(format!("host bug: answered {completion:?} while waiting for {pending:?}"));
                self.done(now, self.cfg.frequent_interval_ms)
            }
        }
    }

    // ---- followers -----------------------------------------------------------------------

    fn observe(&mut self, now: Clock) -> Action {
        if self.ops >= MAX_OPS_PER_STEP {
            return self.done(now, self.cfg.frequent_interval_ms);
        }
        self.ops += 1;
        if self.cfg.peer_mode
            && !self.probe_failed
            && self.unanswered.is_empty()
            && let Some(addr) = self.probe_target()
        {
            // A long poll ("watch"): the leader answers when its etag changes, when it stops
            // leading, or after `wait`; a crashed leader's connection breaks at once.
            let watching = self.obs.as_ref().map(|o| o.etag.clone());
            let (path, timeout_ms) = match &watching {
                Some(etag) => (
                    format!("{}?wait={}&etag={}", self.cfg.peer_health_path, self.cfg.frequent_interval_ms, hex(etag)),
                    self.cfg.frequent_interval_ms + self.cfg.peer_timeout_ms,
                ),
                None => (self.cfg.peer_health_path.clone(), self.cfg.peer_timeout_ms),
            };
            self.pending = Pending::Probe { sent_at: now.mono_ns, watching };
            return Action::Probe { addr, path, timeout_ms };
        }
        self.read(ReadFor::Observe)
    }

    fn read(&mut self, why: ReadFor) -> Action {
        self.pending = Pending::Read(why);
        Action::Get { key: self.cfg.lockfile_path.clone(), timeout_ms: self.request_timeout_ms() }
    }

    /// The leader to probe: a live-looking record naming someone else with an address that is
    /// a plain `host:port` (anything else is not probed: S3 is read instead).
    fn probe_target(&self) -> Option<String> {
        match &self.obs {
            Some(Observation { record: Ok(r), .. }) if !r.is_resigned() && r.leader_id != self.cfg.server_id => {
                r.probe_addr().map(str::to_string)
            }
            _ => None,
        }
    }

    fn on_read(&mut self, now: Clock, why: ReadFor, r: Result<Object, StorageError>) -> Action {
        match r {
            Ok(obj) => {
                self.succeeded();
                if let Some(mine) = self.settle(&obj) {
                    // One of our unanswered writes was applied after all: it is ours, and its
                    // send time bounds the lease it gave us.
                    self.note(now, &obj);
                    return match &mut self.role {
                        Role::Leader(lease) => {
                            lease.proven = true;
                            lease.etag = obj.etag;
                            lease.sent_at = mine.sent_at;
                            lease.until = mine.sent_at + self.cfg.renew_deadline_ms * MS;
                            lease.record = mine.record;
                            self.renew(now)
                        }
                        // Our claim was applied: the lease it won is ours, first acquired now.
                        Role::Follower if mine.claim => self.hold(now, obj.etag, mine.term, mine.sent_at, mine.record),
                        // A renewal of a leadership that has since ended: that leadership is
                        // not resumed (its lose hook ran). The record is ours, so claim a new
                        // term on top of it at once; success proves nobody wrote since.
                        Role::Follower => self.claim(now, Some(obj.etag)),
                    };
                }
                if why == ReadFor::Prove {
                    return self.prove(now, obj);
                }
                if matches!(&why, ReadFor::Refused { condition: Some(c) } if *c == obj.etag) {
                    self.note(now, &obj);
                    return self.refused_correct_write(now, &obj.etag);
                }
                if let Role::Leader(lease) = &self.role {
                    if obj.etag == lease.etag {
                        // A 409 on our renewal, and nothing changed: renew again.
                        return self.renew(now);
                    }
                    self.note(now, &obj);
                    return self.lose(now, "another instance wrote the lock object");
                }
                self.note(now, &obj);
                self.decide(now)
            }
            Err(StorageError::NotFound) => {
                self.unanswered.retain(|w| w.condition.is_none());
                match self.role {
                    Role::Leader(_) => self.lose_deleted(now),
                    Role::Follower => self.on_absent(now),
                }
            }
            Err(StorageError::Conflict) => self.reread(now, ReadFor::Observe),
            Err(e) => self.failed(now, e),
        }
    }

    /// A restored lease meets the object: it stands only if the object at its etag is its own
    /// record (a forged or stale state naming another writer's etag is caught here, before any
    /// write or hook).
    fn prove(&mut self, now: Clock, obj: Object) -> Action {
        let Role::Leader(lease) = &mut self.role else { return self.observe(now) };
        let ours = obj.etag == lease.etag
            && lease.record.leader_id == self.cfg.server_id
            && LeaderRecord::parse(&obj.data).is_ok_and(|r| r == lease.record);
        self.note(now, &obj);
        if ours {
            if let Role::Leader(lease) = &mut self.role {
                lease.proven = true;
            }
            return self.renew(now);
        }
        self.lose(now, "the carried state names a lease the lock object does not hold")
    }

    /// Settles our unanswered writes against the object a read returned: the one it shows, if
    /// any, is returned; those conditioned on another etag can never apply and are forgotten.
    fn settle(&mut self, obj: &Object) -> Option<SentWrite> {
        if let Some(i) = self.unanswered.iter().position(|w| w.data == obj.data) {
            let mine = self.unanswered.swap_remove(i);
            self.unanswered.clear();
            return Some(mine);
        }
        self.unanswered.retain(|w| w.condition.as_deref() == Some(obj.etag.as_str()));
        None
    }

    /// The server answered 412 to a write conditioned on the etag the object still has. No
    /// competitor did that: the server does not honour If-Match as we send it. Report it as
    /// what it is and retry with backoff; a leader keeps its lease until it runs out.
    fn refused_correct_write(&mut self, now: Clock, etag: &str) -> Action {
        self.fails = self.fails.saturating_add(1);
        self.last_error = Some(format!(
            "storage refused a conditional write with the lock object's current etag {etag}: the server does not honour If-Match as sent (a server quirk; the start-up conformance check detects it)"
        ));
        let wait = self.backoff_ms(now);
        self.done(now, wait)
    }

    /// No lock object (a GET's 404, or a 404 on our If-Match). If we were watching a record,
    /// someone deleted it — perhaps under a leader whose lease still runs — so the absence
    /// must stand for a leader timeout like any record. We create it at once only if we held
    /// the last lease ourselves, or, with `trust_absent_object`, if we have watched nothing.
    fn on_absent(&mut self, now: Clock) -> Action {
        if std::mem::take(&mut self.recreate_now) || (self.obs.is_none() && self.cfg.trust_absent_object) {
            self.obs = None;
            return self.claim(now, None);
        }
        let first_seen = match &self.obs {
            None => now.mono_ns,
            Some(o) if o.etag == ABSENT => o.first_seen,
            Some(_) => {
                self.last_error =
                    Some(format!("lock object {} was deleted; recreating it after one leader timeout", self.cfg.lockfile_path));
                now.mono_ns
            }
        };
        self.obs = Some(Observation {
            etag: ABSENT.into(),
            first_seen,
            record: Err(RecordError::Invalid("deleted".into())),
            changed: first_seen == now.mono_ns,
        });
        if now.mono_ns - first_seen >= self.cfg.leader_timeout_ms * MS {
            return self.claim(now, None);
        }
        let wait = self.follower_wait_ms(now);
        self.done(now, wait)
    }

    /// Records what a read (or a probe) showed; resets the watch when the etag changed.
    fn note_record(&mut self, now: Clock, etag: &str, record: Result<LeaderRecord, RecordError>) {
        if let Ok(r) = &record {
            self.known_term = self.known_term.max(r.term);
        }
        match &record {
            Err(e) => self.last_error = Some(format!("lock object {}: {e}", self.cfg.lockfile_path)),
            Ok(_) if self.last_error.as_deref().is_some_and(|e| e.starts_with("lock object")) => self.last_error = None,
            Ok(_) => {}
        }
        let changed = match &self.obs {
            Some(o) if o.etag == etag => {
                self.obs.as_mut().unwrap().record = record;
                self.obs.as_mut().unwrap().changed = false;
                return;
            }
            Some(_) => true,
            None => false,
        };
        if changed || self.obs.is_none() {
            self.leader_last_seen = Some(now.wall_ns);
        }
        self.obs = Some(Observation { etag: etag.to_string(), first_seen: now.mono_ns, record, changed });
    }

    fn note(&mut self, now: Clock, obj: &Object) {
        self.note_record(now, &obj.etag, LeaderRecord::parse(&obj.data));
    }

    /// A follower has fresh knowledge of the object: take over, or wait.
    fn decide(&mut self, now: Clock) -> Action {
        let Some(o) = &self.obs else { return self.claim(now, None) };
        let etag = o.etag.clone();
        let takeover = match &o.record {
            Ok(r) if r.is_resigned() => true,
            _ => self.is_stale(now, o),
        };
        if takeover {
            self.claim(now, Some(etag))
        } else {
            let wait = self.follower_wait_ms(now);
            self.done(now, wait)
        }
    }

    /// The etag has stood unchanged for a whole leader-timeout of our own clock — or, in the
    /// opt-in timestamp mode, the writer's timestamp is older than leader-timeout plus skew.
    fn is_stale(&self, now: Clock, o: &Observation) -> bool {
        if now.mono_ns.saturating_sub(o.first_seen) >= self.cfg.leader_timeout_ms * MS {
            return true;
        }
        match (&o.record, self.cfg.max_clock_skew_ms) {
            (Ok(r), Some(skew)) => {
                let age_ns = now.wall_ns - r.last_updated_unix_ns();
                age_ns >= i128::from(self.cfg.leader_timeout_ms + skew) * i128::from(MS)
            }
            _ => false,
        }
    }

    /// When to look again: at the moment the current etag could become stale, and no later
    /// than the frequent interval — or the infrequent one while a live leader is known.
    fn follower_wait_ms(&self, now: Clock) -> u64 {
        let Some(o) = &self.obs else { return self.cfg.frequent_interval_ms };
        let healthy = o.changed && matches!(&o.record, Ok(r) if !r.is_resigned());
        let base =
            if healthy && !(self.cfg.peer_mode && self.probe_ok) { self.cfg.infrequent_interval_ms } else { self.cfg.frequent_interval_ms };
        let stale_at = o.first_seen + self.cfg.leader_timeout_ms * MS;
        let until_stale = stale_at.saturating_sub(now.mono_ns).div_ceil(MS);
        if healthy { base } else { base.min(until_stale.max(1)) }
    }

    fn on_probe(&mut self, now: Clock, sent_at: u64, watching: Option<String>, r: Result<ProbeReply, String>) -> Action {
        let reply = match r {
            Ok(ProbeReply::Leader(body)) => HealthReply::parse(&body).map_err(|e| e.to_string()),
            Ok(ProbeReply::NotLeader) => Err("peer says it is not leader".to_string()),
            Err(e) => Err(e),
        };
        match reply {
            // A leader reports only the etag of a completed renewal: as good as reading it.
            Ok(h) if !h.record.is_resigned() && h.lease_remaining_ms > 0 => {
                self.probe_ok = true;
                self.note_record(now, &h.etag, Ok(h.record));
                let o = self.obs.as_ref().expect("just noted");
                if self.is_stale(now, o) {
                    let etag = o.etag.clone();
                    return self.claim(now, Some(etag));
                }
                // An answer that brings news, or that was held for a while, means the leader
                // supports watching: watch again at once. One that came back at once with
                // nothing new is from a peer that does not: probe at the normal interval.
                let news = watching.as_deref() != Some(o.etag.as_str());
                let held = now.mono_ns - sent_at >= self.cfg.frequent_interval_ms * MS / 2;
                if watching.is_some() && (news || held) {
                    return self.done(now, 0);
                }
                // Trust extends no further than the lease the leader reported.
                let wait = self.follower_wait_ms(now).min(h.lease_remaining_ms.max(1));
                self.done(now, wait)
            }
            // Failed probe: read S3 now, and poll frequently until things settle.
            _ => {
                self.probe_failed = true;
                self.observe(now)
            }
        }
    }

    fn claim(&mut self, now: Clock, etag: Option<String>) -> Action {
        if let Some(b) = self.backoff_until {
            if now.mono_ns < b {
                return self.done(now, (b - now.mono_ns).div_ceil(MS));
            }
            self.backoff_until = None;
        }
        if self.ops >= MAX_OPS_PER_STEP {
            return self.done(now, self.cfg.frequent_interval_ms);
        }
        self.ops += 1;
        let term = self.known_term + 1;
        let record = LeaderRecord::leading(&self.cfg.server_id, &self.cfg.server_addr, now.wall_ns, term);
        self.write(now, WriteKind::Claim, etag, term, record)
    }

    fn write(&mut self, now: Clock, kind: WriteKind, etag: Option<String>, term: u64, mut record: LeaderRecord) -> Action {
        // Unique bytes per write, so content-hash etags change on every write (see record.rs).
        record.nonce = self.rng.u64(1..);
        let data = record.to_json();
        let timeout_ms = match (&self.role, kind) {
            // A renewal that answers after the lease is useless: give up at the deadline.
            (Role::Leader(l), WriteKind::Renew) if l.until > now.mono_ns => (l.until - now.mono_ns).div_ceil(MS),
            _ => self.request_timeout_ms(),
        };
        let claim = kind == WriteKind::Claim;
        let sent = SentWrite { data: data.clone(), condition: etag.clone(), sent_at: now.mono_ns, term, record, claim };
        self.pending = Pending::Write { kind, sent };
        Action::Put { key: self.cfg.lockfile_path.clone(), data, etag, timeout_ms }
    }

    fn on_claim(&mut self, now: Clock, sent: SentWrite, r: Result<String, StorageError>) -> Action {
        match r {
            Ok(etag) => {
                self.succeeded();
                self.hold(now, etag, sent.term, sent.sent_at, sent.record)
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
        if self.unanswered.len() == MAX_UNANSWERED {
            self.unanswered.remove(0);
        }
        self.unanswered.push(write);
        self.failed(now, e)
    }

    fn reread(&mut self, now: Clock, why: ReadFor) -> Action {
        if self.ops >= MAX_OPS_PER_STEP {
            return self.done(now, self.cfg.frequent_interval_ms);
        }
        self.ops += 1;
        self.read(why)
    }

    /// Our write `etag`, sent at `sent_at`, succeeded: we hold the lease. Run the acquire hook
    /// before acting as leader; if the lease ran out while we waited, renew first.
    fn hold(&mut self, now: Clock, etag: String, term: u64, sent_at: u64, record: LeaderRecord) -> Action {
        self.known_term = self.known_term.max(term);
        // A write of ours succeeded: every earlier one was conditioned on an etag that is gone.
        self.unanswered.clear();
        self.note_record(now, &etag, Ok(record.clone()));
        let until = sent_at + self.cfg.renew_deadline_ms * MS;
        self.role = Role::Leader(Lease { etag, term, sent_at, until, hook_ok: false, proven: true, record });
        if now.mono_ns >= until {
            return self.renew(now);
        }
        self.run_acquire_hook(term)
    }

    /// Asks for the acquire hook; the instance acts as leader only once it succeeded.
    fn run_acquire_hook(&mut self, term: u64) -> Action {
        self.pending = Pending::AcquireHook;
        Action::AcquireHook { term, leader_id: self.cfg.server_id.clone() }
    }

    fn on_acquire_hook(&mut self, now: Clock, r: Result<(), String>) -> Action {
        let Role::Leader(lease) = &mut self.role else {
            return self.done(now, self.cfg.frequent_interval_ms);
        };
        match r {
            Ok(()) => {
                lease.hook_ok = true;
                // A hook that outlasted the lease: nobody saw us lead yet, so instead of giving
                // up, renew at once — success proves nobody wrote meanwhile; a 412 loses.
                if now.mono_ns >= lease.until {
                    return self.send_renewal(now);
                }
                let wait = self.leader_wait_ms(now);
                self.done(now, wait)
            }
            Err(e) => {
                // Resign, and stay out for a leader-timeout so we do not loop acquire → resign.
                let (etag, term) = (lease.etag.clone(), lease.term);
                self.last_error = Some(format!("acquire hook failed, resigned: {e}"));
                self.role = Role::Follower;
                self.backoff_until = Some(now.mono_ns + self.cfg.leader_timeout_ms * MS);
                self.write_resigned(now, etag, term, false)
            }
        }
    }

    // ---- leaders -------------------------------------------------------------------------

    fn renew(&mut self, now: Clock) -> Action {
        let Role::Leader(lease) = &self.role else { return self.observe(now) };
        if !lease.proven {
            return self.reread(now, ReadFor::Prove);
        }
        if now.mono_ns >= lease.until && lease.hook_ok {
            return self.lose(now, "lease expired before a renewal succeeded");
        }
        self.send_renewal(now)
    }

    fn send_renewal(&mut self, now: Clock) -> Action {
        let Role::Leader(lease) = &self.role else { return self.observe(now) };
        if self.ops >= MAX_OPS_PER_STEP {
            let wait = self.leader_wait_ms(now);
            return self.done(now, wait);
        }
        self.ops += 1;
        let (etag, term) = (lease.etag.clone(), lease.term);
        let record = LeaderRecord::leading(&self.cfg.server_id, &self.cfg.server_addr, now.wall_ns, term);
        self.write(now, WriteKind::Renew, Some(etag), term, record)
    }

    fn on_renew(&mut self, now: Clock, sent: SentWrite, r: Result<String, StorageError>) -> Action {
        let Role::Leader(lease) = &mut self.role else { return self.done(now, self.cfg.frequent_interval_ms) };
        match r {
            Ok(etag) => {
                let record = sent.record;
                lease.etag = etag.clone();
                lease.sent_at = sent.sent_at;
                lease.until = sent.sent_at + self.cfg.renew_deadline_ms * MS;
                lease.record = record.clone();
                let hook_ok = lease.hook_ok;
                self.succeeded();
                self.unanswered.clear();
                self.note_record(now, &etag, Ok(record));
                if !hook_ok {
                    // The lease was won while its hook could not run (it had already lapsed).
                    return self.run_acquire_hook(sent.term);
                }
                if now.mono_ns >= self.lease_until() {
                    return self.lose(now, "renewal succeeded only after the lease had expired");
                }
                let wait = self.leader_wait_ms(now);
                self.done(now, wait)
            }
            // Someone wrote since our last renewal — or our own unanswered write was applied,
            // or the server refused a correct write. Only a read can tell which.
            Err(StorageError::PreconditionFailed) => self.reread(now, ReadFor::Refused { condition: sent.condition }),
            Err(StorageError::Conflict) => self.reread(now, ReadFor::Observe),
            Err(StorageError::NotFound) if !self.unanswered.is_empty() => self.reread(now, ReadFor::Observe),
            Err(StorageError::NotFound) => self.lose_deleted(now),
            Err(e @ StorageError::Unavailable(_)) => self.unanswered(now, sent, e),
            Err(e) => self.failed(now, e),
        }
    }

    /// Leadership ends now. The lose hook runs if the acquire hook had run.
    fn lose(&mut self, now: Clock, why: &str) -> Action {
        let Role::Leader(lease) = mem::replace(&mut self.role, Role::Follower) else {
            return self.observe(now);
        };
        self.last_error = Some(format!("lost leadership of term {}: {why}", lease.term));
        if lease.hook_ok { self.lose_hook(lease.term, AfterLose::Observe) } else { self.observe(now) }
    }

    /// Our object vanished under our lease: nobody else can hold one (watchers wait a leader
    /// timeout on an absence), so we may recreate it at once.
    fn lose_deleted(&mut self, now: Clock) -> Action {
        self.recreate_now = true;
        self.lose(now, "the lock object was deleted")
    }

    fn lose_hook(&mut self, term: u64, after: AfterLose) -> Action {
        self.pending = Pending::LoseHook(after);
        Action::LoseHook { term, leader_id: self.cfg.server_id.clone() }
    }

    fn on_lose_hook(&mut self, now: Clock, after: AfterLose, r: Result<(), String>) -> Action {
        if let Err(e) = r {
            self.last_error = Some(format!("lose hook failed: {e}"));
        }
        match after {
            AfterLose::Observe => self.observe(now),
            AfterLose::Resign { etag, term, stop } => self.write_resigned(now, etag, term, stop),
        }
    }

    fn write_resigned(&mut self, now: Clock, etag: String, term: u64, stop: bool) -> Action {
        self.write(now, WriteKind::Resign { stop }, Some(etag), term, LeaderRecord::resigned(term))
    }

    fn on_resigned(&mut self, now: Clock, term: u64, stop: bool, r: Result<String, StorageError>) -> Action {
        self.stopped = stop;
        match r {
            Ok(etag) => {
                self.succeeded();
                self.note_record(now, &etag, Ok(LeaderRecord::resigned(term)));
            }
            // Best effort: if it failed, followers take over when the lease runs out.
            Err(e) => {
                self.fails += 1;
                self.last_error = Some(format!("writing the resigned record failed: {e}"));
            }
        }
        let wait = match self.backoff_until {
            Some(b) if b > now.mono_ns => (b - now.mono_ns).div_ceil(MS),
            _ => self.cfg.frequent_interval_ms,
        };
        self.done(now, wait)
    }

    // ---- shared helpers --------------------------------------------------------------------

    fn lease_until(&self) -> u64 {
        match &self.role {
            Role::Leader(l) => l.until,
            Role::Follower => 0,
        }
    }

    /// Next renewal one frequent interval after the last successful send, before the deadline.
    fn leader_wait_ms(&self, now: Clock) -> u64 {
        let Role::Leader(l) = &self.role else { return self.cfg.frequent_interval_ms };
        let next = (l.sent_at + self.cfg.frequent_interval_ms * MS).min(l.until);
        next.saturating_sub(now.mono_ns).div_ceil(MS).max(1)
    }

    fn request_timeout_ms(&self) -> u64 {
        self.cfg.renew_deadline_ms
    }

    fn succeeded(&mut self) {
        self.fails = 0;
        if self.last_error.as_deref().is_some_and(|e| e.starts_with("storage")) {
            self.last_error = None;
        }
    }

    /// A storage call failed: report it and retry with exponential backoff and jitter — for a
    /// leader, always before its lease runs out.
    fn failed(&mut self, now: Clock, e: StorageError) -> Action {
        self.fails = self.fails.saturating_add(1);
        self.last_error = Some(e.to_string());
        let wait = self.backoff_ms(now);
        self.done(now, wait)
    }

    /// Exponential in the failures in a row, jittered, capped at the frequent interval and,
    /// for a leader, at its lease's end.
    fn backoff_ms(&mut self, now: Clock) -> u64 {
        let base = (self.cfg.frequent_interval_ms / 8).max(1);
        let backoff = base.saturating_mul(1 << self.fails.min(10).saturating_sub(1)).min(self.cfg.frequent_interval_ms);
        let jittered = backoff / 2 + self.rng.u64(0..=backoff / 2);
        let wait = match &self.role {
            Role::Leader(l) => jittered.min(l.until.saturating_sub(now.mono_ns).div_ceil(MS)),
            Role::Follower => jittered,
        };
        wait.max(1)
    }

    fn done(&mut self, now: Clock, next_step_in_ms: u64) -> Action {
        self.pending = Pending::Idle;
        self.last_election = Some(now.wall_ns);
        Action::Done { next_step_in_ms }
    }
}

/// Etags carry quotes and arbitrary bytes; hex keeps them safe in a query string.
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
