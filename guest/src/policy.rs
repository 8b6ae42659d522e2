//! The election's decisions in one place: given what a node knows and the time, claim, renew,
//! step down (why) or wait (until when). The machine around it only keeps books and asks for
//! I/O. The numbered cases are the ones `docs/design.md` argues safe; a change here must pass
//! the long simulator sweep (see the README, "Where things live").
//!
//! Every instant is on the node's monotonic clock, in nanoseconds; deadlines are named here
//! and nowhere else.

use crate::config::{Config, SERVER_CLOCK_RESOLUTION_MS};
use crate::io::Clock;
use crate::machine::{ABSENT, Lease, Observation};
use crate::problem::Loss;

pub(crate) const MS: u64 = 1_000_000;

/// What a follower does with fresh knowledge of the lock object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FollowerMove {
    /// Write a claim conditioned on `over` (`None`: If-None-Match, the object is absent).
    Claim { over: Option<String>, case: Takeover },
    /// Look again at this instant.
    Wait { until: u64 },
}

/// Which case of [`follower`] allowed a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Takeover {
    F1Recreate,
    F2TrustAbsent,
    F3Resigned,
    F3Resume,
    F4Unchanged,
    F5ServerClock,
    F5Timestamp,
}

/// What a follower knows when it decides.
pub(crate) struct FollowerView<'a> {
    /// The lock object as last seen (`ABSENT` etag while it is missing).
    pub obs: &'a Observation,
    /// The server's clock, if F5 may use it: how far its front-ends may differ (declared, or
    /// assumed once the store has passed `clock_check`).
    pub server_skew_ms: Option<u64>,
    /// This read is the first look: nothing was watched before it.
    pub first_look: bool,
    /// Our own object vanished under our lease.
    pub recreate_now: bool,
    /// A peer probe answered in this step: the leader is watched at the frequent interval.
    pub probe_ok: bool,
    /// The elector lives for one invocation (`set-invocation-budget`): it carries no lease.
    pub one_invocation: bool,
}

/// The follower's rule; the first case that applies wins.
///
/// - **F1** No object, and our own object vanished under our lease → claim at once (nobody
///   else can hold a lease: watchers wait a leader timeout on an absence).
/// - **F2** No object at the first look, with `trust_absent_object` → claim at once.
/// - **F3** The record is resigned → claim over it. Or, in a one-invocation elector at its
///   first look, the record is this node's own live record, left by its previous invocation
///   (which has ended: invocations of one node do not overlap) → resume it: claim over it,
///   keeping its term.
/// - **F4** The etag (or the absence) has stood unchanged for a leader timeout of our
///   monotonic clock → claim over it. If the record revokes this node's own leadership
///   (`s3lect resign`), longer: leader timeout + infrequent + frequent interval, by when any
///   other node present has taken over.
/// - **F5** A clock says the record is older than a leader timeout (F4's longer wait for our
///   own revocation) → claim over it: the storage server's clock (`Date − Last-Modified` of
///   this read, with its skew declared or, checked, assumed: `server_skew_ms`), or the
///   writer's timestamp by ours, beyond the declared skew (timestamp mode).
/// - **F6** Otherwise wait until [`follower_next_at`].
///
/// A claim is further held back by [`claim_blocked_until`].
pub(crate) fn follower(cfg: &Config, v: &FollowerView, now: Clock) -> FollowerMove {
    let o = v.obs;
    let absent = o.etag == ABSENT;
    let over = if absent { None } else { Some(o.etag.clone()) };
    let case = if absent && v.recreate_now {
        Some(Takeover::F1Recreate)
    } else if absent && v.first_look && cfg.trust_absent_object {
        Some(Takeover::F2TrustAbsent)
    } else if matches!(&o.record, Ok(r) if r.is_resigned()) {
        Some(Takeover::F3Resigned)
    } else if v.one_invocation && v.first_look && matches!(&o.record, Ok(r) if r.leader_id == cfg.server_id) {
        Some(Takeover::F3Resume)
    } else {
        stale(cfg, o, v.server_skew_ms, now)
    };
    match case {
        Some(case) => FollowerMove::Claim { over, case },
        None => FollowerMove::Wait { until: follower_next_at(cfg, o, v.server_skew_ms, v.probe_ok, now) },
    }
}

/// F4 and F5: the record's writer may be gone.
pub(crate) fn stale(cfg: &Config, o: &Observation, server_skew_ms: Option<u64>, now: Clock) -> Option<Takeover> {
    if now.mono_ns >= stale_at(cfg, o) {
        return Some(Takeover::F4Unchanged);
    }
    // The server's stamps may make the record look up to a second (resolution) plus the
    // front-ends' skew older than it is; config.rs's rule keeps the lease inside that margin.
    if server_skew_ms.is_some() && o.server_age_ms.is_some_and(|age| age >= timeout_ms(cfg, o)) {
        return Some(Takeover::F5ServerClock);
    }
    stale_wall_at(cfg, o).filter(|&at| now.wall_ns >= at).map(|_| Takeover::F5Timestamp)
}

/// When the record becomes stale by its writer's timestamp, on our wall clock (F5, timestamp
/// mode only).
fn stale_wall_at(cfg: &Config, o: &Observation) -> Option<i128> {
    let (Ok(r), Some(skew)) = (&o.record, cfg.max_clock_skew_ms) else { return None };
    Some(r.last_updated_unix_ns() + i128::from(timeout_ms(cfg, o) + skew) * i128::from(MS))
}

/// When an unchanged etag becomes stale (F4).
pub(crate) fn stale_at(cfg: &Config, o: &Observation) -> u64 {
    o.first_seen + timeout_ms(cfg, o) * MS
}

/// How long the observed record must stand: a leader timeout — and for a record that revokes
/// this node's own leadership, as long as any other node may need to notice it (a poll of a
/// live-looking leader comes an infrequent interval apart), wait it out, and claim (a step).
fn timeout_ms(cfg: &Config, o: &Observation) -> u64 {
    match &o.record {
        Ok(r) if !r.revoked_id.is_empty() && r.revoked_id == cfg.server_id => {
            cfg.leader_timeout_ms + cfg.infrequent_interval_ms + cfg.frequent_interval_ms
        }
        _ => cfg.leader_timeout_ms,
    }
}

/// F6: when a waiting follower looks again: never later than the instant the etag it watches
/// can become stale — so a crashed leader's last record is seen within
/// min(infrequent interval, leader timeout) and waited out within one more leader timeout —
/// nor than the instant one read can prove it stale by a clock F5 trusts ([`proof_at`]), and
/// otherwise after the frequent interval, or the infrequent one while the leader is seen alive
/// (its etag just changed) and no peer probe watches it.
pub(crate) fn follower_next_at(cfg: &Config, o: &Observation, server_skew_ms: Option<u64>, probe_ok: bool, now: Clock) -> u64 {
    let healthy = o.changed && matches!(&o.record, Ok(r) if !r.is_resigned());
    let interval = match healthy {
        true if !(cfg.peer_mode && probe_ok) => cfg.infrequent_interval_ms,
        _ => cfg.frequent_interval_ms,
    };
    let at = (now.mono_ns + interval * MS).min(stale_at(cfg, o));
    proof_at(cfg, o, server_skew_ms, now).map_or(at, |p| at.min(p)).max(now.mono_ns + MS)
}

/// When a read can first show the watched record a leader timeout old by a clock F5 trusts,
/// if one is in use: the read then proves a dead leader's record stale, so the takeover comes
/// about a leader timeout after its last write, however the earlier reads fell.
fn proof_at(cfg: &Config, o: &Observation, server_skew_ms: Option<u64>, now: Clock) -> Option<u64> {
    // The stamps count whole seconds, and the next read may be stamped by a front-end up to
    // the declared skew apart from this one's: the rest of the timeout rounded up to a whole
    // second, plus the skew, and that read shows at least the timeout.
    let by_server = server_skew_ms.zip(o.server_age_ms).map(|(skew, age)| {
        let rest = timeout_ms(cfg, o).saturating_sub(age).div_ceil(SERVER_CLOCK_RESOLUTION_MS) * SERVER_CLOCK_RESOLUTION_MS;
        now.mono_ns + (rest + skew) * MS
    });
    // F5Timestamp's instant on our wall clock, carried over to the monotonic one.
    let by_writer =
        stale_wall_at(cfg, o).map(|at| now.mono_ns.saturating_add(u64::try_from((at - now.wall_ns).max(0)).unwrap_or(u64::MAX)));
    by_server.into_iter().chain(by_writer).min()
}

/// F0: after a failed acquire hook a node does not compete until its backoff ends.
pub(crate) fn claim_blocked_until(backoff_until: Option<u64>, now: Clock) -> Option<u64> {
    backoff_until.filter(|&b| now.mono_ns < b)
}

/// What a leader does at the start of a step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LeaderMove {
    /// Read the object first: the lease came from carried state.
    Prove,
    /// Leadership is over.
    StepDown(Loss),
    /// Write a renewal conditioned on the lease's etag.
    Renew,
}

/// The leader's rule; the first case that applies wins.
///
/// - **L1** A lease restored from carried state is not acted on until a read shows the
///   object holds its record → read.
/// - **L2** The lease ran out (its acquire hook had run) before a renewal succeeded → step
///   down. A lease whose hook has not run yet is renewed instead: nobody saw it lead, and a
///   successful renewal proves nobody wrote meanwhile.
/// - **L3** Otherwise renew.
///
/// After a renewal: **L4** it succeeded only after the lease's end → step down
/// ([`renewed_in_time`]); otherwise wait until [`renew_at`].
pub(crate) fn leader(lease: &Lease, now: Clock) -> LeaderMove {
    if !lease.proven {
        LeaderMove::Prove
    } else if now.mono_ns >= lease.until && lease.hook_ok {
        LeaderMove::StepDown(Loss::LeaseExpired)
    } else {
        LeaderMove::Renew
    }
}

/// L4.
pub(crate) fn renewed_in_time(lease: &Lease, now: Clock) -> bool {
    now.mono_ns < lease.until
}

/// A lease won by a write sent at `sent_at` ends here, answered or not: the renew deadline
/// counts from the send, so no delay of the answer can stretch it.
pub(crate) fn lease_until(cfg: &Config, sent_at: u64) -> u64 {
    sent_at + cfg.renew_deadline_ms * MS
}

/// The next renewal: one frequent interval after the last successful send, before the lease
/// ends.
pub(crate) fn renew_at(cfg: &Config, lease: &Lease) -> u64 {
    (lease.sent_at + cfg.frequent_interval_ms * MS).min(lease.until)
}

/// Retry after a failure: exponential in the failures in a row (`fails` ≥ 1), jittered,
/// capped at the frequent interval and, for a leader, at its lease's end.
pub(crate) fn retry_at(cfg: &Config, fails: u32, rng: &mut fastrand::Rng, lease: Option<&Lease>, now: Clock) -> u64 {
    let base = (cfg.frequent_interval_ms / 8).max(1);
    let backoff = base.saturating_mul(1 << fails.min(10).saturating_sub(1)).min(cfg.frequent_interval_ms);
    let jittered = backoff / 2 + rng.u64(0..=backoff / 2);
    let at = now.mono_ns + jittered * MS;
    let at = match lease {
        Some(l) => at.min(l.until.max(now.mono_ns)),
        None => at,
    };
    at.max(now.mono_ns + MS)
}
