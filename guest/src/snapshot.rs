//! An elector's knowledge as bytes, so a host that keeps no instance alive between invocations
//! (cron, serverless) can carry it from one step to the next.
//!
//! Monotonic instants only mean something on the clock that produced them. On restore we check
//! that the monotonic clock advanced in step with the wall clock since the export; if not (new
//! process, other machine, reboot), every instant is reset so the restored elector can only be
//! slower to take over than a fresh watch would be, never faster.

use crate::config::Config;
use crate::io::Clock;
use crate::machine::{Elector, Lease, Observation, Role, SentWrite};
use crate::problem::Problem;
use crate::record::{LeaderRecord, RecordError};
use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;
const MS: u64 = 1_000_000;
/// Slack allowed between the two clocks' progress, on top of the configured drift.
const CONTINUITY_SLACK_NS: u64 = 1_000 * MS;

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    server_id: String,
    lockfile_path: String,
    mono_ns: u64,
    wall_ns: i128,
    lease: Option<SavedLease>,
    observation: Option<SavedObservation>,
    known_term: u64,
    /// Unanswered writes, oldest first (`ambiguous` held one, before this was a list).
    #[serde(default, alias = "ambiguous", deserialize_with = "one_or_many")]
    unanswered: Vec<SavedSentWrite>,
    backoff_until: Option<u64>,
    fails: u32,
    /// Older states saved the problem's text as `last_error`; it is not read back (a message
    /// is not a problem the elector can reason about).
    #[serde(default)]
    problem: Option<Problem>,
    leader_last_seen: Option<i128>,
    stopped: bool,
}

#[derive(Serialize, Deserialize)]
struct SavedLease {
    etag: String,
    term: u64,
    sent_at: u64,
    until: u64,
    hook_ok: bool,
    record: LeaderRecord,
}

#[derive(Serialize, Deserialize)]
struct SavedObservation {
    etag: String,
    first_seen: u64,
    record: Option<LeaderRecord>,
    error: Option<String>,
    changed: bool,
}

#[derive(Serialize, Deserialize)]
struct SavedSentWrite {
    data: Vec<u8>,
    #[serde(default)]
    claim: bool,
    #[serde(default)]
    condition: Option<String>,
    sent_at: u64,
    term: u64,
    record: LeaderRecord,
}

impl Elector {
    pub fn export_state(&self, now: Clock) -> Vec<u8> {
        let lease = match &self.known.role {
            Role::Leader(l) => Some(SavedLease {
                etag: l.etag.clone(),
                term: l.term,
                sent_at: l.sent_at,
                until: l.until,
                hook_ok: l.hook_ok,
                record: l.record.clone(),
            }),
            Role::Follower => None,
        };
        let saved = Saved {
            version: VERSION,
            server_id: self.cfg.server_id.clone(),
            lockfile_path: self.cfg.lockfile_path.clone(),
            mono_ns: now.mono_ns,
            wall_ns: now.wall_ns,
            lease,
            observation: self.known.obs.as_ref().map(|o| SavedObservation {
                etag: o.etag.clone(),
                first_seen: o.first_seen,
                record: o.record.as_ref().ok().cloned(),
                error: o.record.as_ref().err().map(|e| e.to_string()),
                changed: o.changed,
            }),
            known_term: self.known.highest_term,
            unanswered: self
                .known
                .unanswered
                .iter()
                .map(|a| SavedSentWrite {
                    data: a.data.clone(),
                    claim: a.claim,
                    condition: a.condition.clone(),
                    sent_at: a.sent_at,
                    term: a.term,
                    record: a.record.clone(),
                })
                .collect(),
            backoff_until: self.known.backoff_until,
            fails: self.report.fails,
            problem: self.report.problem.clone(),
            leader_last_seen: self.report.leader_last_seen,
            stopped: self.known.stopped,
        };
        serde_json::to_vec(&saved).expect("state always serialises")
    }

    /// An elector that continues from `state` (what [`Elector::export_state`] returned), as far
    /// as the clocks allow (see the module documentation).
    pub fn restore(cfg: Config, state: &[u8], now: Clock) -> Result<Elector, StateError> {
        let saved: Saved = serde_json::from_slice(state).map_err(|e| StateError::Unreadable(e.to_string()))?;
        if saved.version != VERSION {
            return Err(StateError::Version { found: saved.version, reads: VERSION });
        }
        if saved.server_id != cfg.server_id || saved.lockfile_path != cfg.lockfile_path {
            return Err(StateError::NotOurs {
                server_id: saved.server_id,
                lockfile_path: saved.lockfile_path,
                ours: (cfg.server_id, cfg.lockfile_path),
            });
        }
        let continuous = clock_continued(&saved, now, cfg.max_clock_drift_ppm);
        let mut e = Elector::new(cfg, now).map_err(StateError::Config)?;
        e.fresh_clock = !continuous;
        // Without a continuous clock, past instants are replaced: leases as expired, watches
        // as starting now, backoffs as starting now.
        let past = |t: u64| if continuous { t } else { 0 };
        let since = |t: u64| if continuous { t } else { now.mono_ns };
        let timeout = e.cfg.leader_timeout_ms * MS;
        e.known.role = match saved.lease {
            Some(l) => Role::Leader(Lease {
                etag: l.etag,
                term: l.term,
                sent_at: past(l.sent_at),
                until: past(l.until),
                // A leader that cannot prove its lease continued must renew and re-acquire.
                hook_ok: l.hook_ok && continuous,
                // Carried state may be stale or forged: the record must prove it first.
                proven: false,
                json: l.record.to_json(),
                record: l.record,
            }),
            None => Role::Follower,
        };
        e.known.obs = saved.observation.map(|o| Observation {
            etag: o.etag,
            first_seen: since(o.first_seen),
            record: match o.record {
                Some(r) => Ok(r),
                None => Err(RecordError::Invalid(o.error.unwrap_or_default())),
            },
            changed: o.changed,
            // Not carried: the next read tells it again (leaving it out can only delay).
            server_age_ms: None,
        });
        e.known.highest_term = saved.known_term;
        e.known.unanswered = saved
            .unanswered
            .into_iter()
            .map(|a| SentWrite {
                data: a.data,
                condition: a.condition,
                sent_at: past(a.sent_at),
                term: a.term,
                record: a.record,
                claim: a.claim,
            })
            .collect();
        e.known.backoff_until = saved.backoff_until.map(|b| if continuous { b } else { now.mono_ns + timeout });
        e.report.fails = saved.fails;
        e.report.problem = saved.problem;
        e.report.leader_last_seen = saved.leader_last_seen;
        e.known.stopped = saved.stopped;
        Ok(e)
    }
}

/// Why carried state cannot be restored. Starting cold instead is always safe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// Not the JSON an elector exports.
    Unreadable(String),
    /// Exported by a build with another state format.
    Version { found: u32, reads: u32 },
    /// Exported by another server id, or for another lock object.
    NotOurs { server_id: String, lockfile_path: String, ours: (String, String) },
    /// The configuration is invalid.
    Config(crate::ConfigError),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Unreadable(e) => write!(f, "elector state is unreadable: {e}"),
            StateError::Version { found, reads } => write!(f, "elector state has version {found}, this build reads {reads}"),
            StateError::NotOurs { server_id, lockfile_path, ours } => {
                write!(f, "elector state belongs to server {server_id:?} on {lockfile_path:?}, not {:?} on {:?}", ours.0, ours.1)
            }
            StateError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StateError {}

/// The monotonic clock is the same one as at export if it moved forward by as much as the wall
/// clock did, within drift and a second of slack.
fn clock_continued(saved: &Saved, now: Clock, drift_ppm: u32) -> bool {
    if now.mono_ns < saved.mono_ns {
        return false;
    }
    let mono_elapsed = i128::from(now.mono_ns - saved.mono_ns);
    let wall_elapsed = now.wall_ns - saved.wall_ns;
    if wall_elapsed < 0 {
        return false;
    }
    let allowed = i128::from(CONTINUITY_SLACK_NS) + wall_elapsed * i128::from(drift_ppm) / 1_000_000;
    (mono_elapsed - wall_elapsed).abs() <= allowed
}

/// Reads a list, or the single object (or null) that version 1 states saved as `ambiguous`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SavedSentWrite>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<SavedSentWrite>),
        One(Option<SavedSentWrite>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(o) => o.into_iter().collect(),
    })
}
