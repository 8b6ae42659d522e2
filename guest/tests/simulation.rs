//! Deterministic simulation of the election core: N electors (the real state machine) against a
//! simulated, strongly consistent S3 with conditional writes, on simulated time.
//!
//! Faults: crashes and restarts (state lost), GC-like pauses longer than the lease, partitions
//! from S3 (requests lost, or applied with the reply lost), writes applied long after the
//! client gave up on them, slow replies, injected 409/500/503,
//! corrupt lock objects written by an outsider, per-elector clock rates within the configured
//! drift bound, wall-clock offsets and jumps, failing and slow hooks.
//!
//! Server clocks: on some seeds the store stamps `Last-Modified` and `Date` (whole seconds)
//! from front-ends whose clocks differ within the declared bound, and electors judge staleness
//! by them (server-clock mode); on some of those, every node is stateless — a fresh elector per
//! scheduled invocation, one step each, no carried state. On others the electors declare no
//! skew and use the clock only once their reads have checked it (`server_clock_auto`), against
//! stores that restamp each rewrite and stores that keep the first write's stamp.
//!
//! Not deletion of the lock object by an outsider: it is outside what any protocol on S3 can
//! guarantee. Absence has no version, so an `If-None-Match: *` sent before a deletion can land
//! after it and create a second lease while the first still runs (found by this simulator:
//! seed 1001347 of an earlier build, with `trust_absent_object: false`). Corruption, by
//! contrast, is a new version with a new etag, and every conditional write sees it.
//!
//! Invariants, checked at every simulated event:
//! - at most one elector believes it leads at any real instant (beliefs only start at events,
//!   so checking at events is exhaustive);
//! - terms in the object never decrease, and each term has at most one leader;
//! - an elector leads only after its acquire hook succeeded, and runs its lose hook by the end
//!   of the step after its leadership ended;
//! - after faults heal, some elector leads within `liveness_bound` (derived below);
//! - no false step-down: an elector that says "another instance wrote" was shown an object
//!   that it did not write itself;
//! - no false alarm: the server-clock check refuses no store that restamps every rewrite
//!   (whatever the delays, pauses and clock rates).
//!
//! A violation panics with the seed and the recent event log; rerun that seed to replay it.

use s3lect_guest::{
    Action, Clock, Completion, Config, Elector, HookTicket, LeaderRecord, Object, ProbeReply, ProbeTicket, ReadTicket, ServerClock,
    StorageError, WriteTicket,
};
use s3lect_guest::{Loss, Problem};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Broken {
    /// The real core.
    None,
    /// A leader that believes until told otherwise, ignoring its renew deadline (Go s3lect).
    IgnoreDeadline,
    /// Timestamp staleness with a declared skew of 0 while wall clocks are seconds apart.
    SkewBeyondBound,
    /// Server-clock staleness while the store's front-ends' clocks differ by seconds more
    /// than the declared bound.
    ServerSkewBeyondBound,
    /// A failover run whose electors count on the server's clock while the store sends no
    /// stamps: no read can prove the record stale, so F6 cannot schedule the proving read.
    NoServerStamps,
    /// The server's clock declared (trusted unchecked) on a store that keeps the first
    /// write's Last-Modified on every rewrite: what `server-clock-auto`'s check guards against.
    UncheckedFrozenStamps,
}

#[derive(Clone)]
struct Params {
    nodes: usize,
    duration: u64,
    peer_mode: bool,
    /// Runs with `trust_absent_object: false`: every absence must stand a leader timeout.
    cautious_absence: bool,
    /// The store sends its clock and electors use it (`server_clock_skew_ms`).
    server_clock: bool,
    /// The store sends its clock and electors use it once checked (`server_clock_auto`, no
    /// declared skew); otherwise they have it off.
    auto_clock: bool,
    /// The store's rewrites keep the first write's Last-Modified.
    frozen_stamps: bool,
    /// Every node runs one step per scheduled invocation, with no carried state.
    stateless: bool,
    /// A failover run instead of the faults: default timings, and the leader killed once.
    failover: bool,
    broken: Broken,
}

/// The declared bound on the store's front-ends' clock differences, and the largest the
/// simulator makes them (within the bound, unless the rule is broken on purpose).
const SERVER_SKEW_MS: u64 = 400;
const BROKEN_SERVER_SKEW_MS: u64 = 4_000;
/// The store's clocks: front-ends answering requests at random.
const FRONT_ENDS: usize = 3;
/// Stateless nodes are invoked this often (real time, jittered).
const INVOCATION_PERIOD_MS: std::ops::Range<u64> = 300..1_500;
/// How long an invocation works after its step.
const INVOCATION_WORK_MS: u64 = 1_000;

fn config(id: usize, p: &Params) -> Config {
    if p.failover {
        return Config {
            lockfile_path: "sim/leader.json".into(),
            server_id: format!("n{id}"),
            server_addr: format!("n{id}:1"),
            peer_mode: p.peer_mode,
            server_clock_skew_ms: p.server_clock.then_some(FAILOVER_SERVER_SKEW_MS),
            server_clock_auto: p.auto_clock,
            ..Config::default()
        };
    }
    Config {
        lockfile_path: "sim/leader.json".into(),
        server_id: format!("n{id}"),
        server_addr: format!("n{id}:1"),
        frequent_interval_ms: 1_000,
        infrequent_interval_ms: 3_000,
        renew_deadline_ms: 2_500,
        leader_timeout_ms: leader_timeout_ms(p),
        peer_mode: p.peer_mode,
        peer_timeout_ms: 500,
        max_clock_drift_ppm: DRIFT_PPM,
        max_clock_skew_ms: if p.broken == Broken::SkewBeyondBound { Some(0) } else { None },
        server_clock_skew_ms: p.server_clock.then_some(SERVER_SKEW_MS),
        server_clock_auto: p.auto_clock,
        trust_absent_object: !p.cautious_absence,
        ..Config::default()
    }
}

const DRIFT_PPM: u32 = 10_000;
const MAX_DELAY_MS: u64 = 300;
const SLOW_REPLY_MS: u64 = 4_000;
const HOOK_MAX_MS: u64 = 400;
/// After the last fault: a request in flight may take a request timeout (renew deadline) to
/// fail, a failure backs off up to a frequent interval, a healthy-looking record is re-read
/// after an infrequent interval, must then stand for a leader timeout, and the claim takes a
/// step with network delays and an acquire hook — all stretched by the worst clock rate. A
/// failed acquire hook costs one more leader timeout of backoff, and a crash-restart up to 10 s.
const fn liveness_bound(leader_timeout_ms: u64) -> u64 {
    let local = 2_500 + 1_000 + 3_000 + leader_timeout_ms + 1_000 + leader_timeout_ms + 1_000;
    (local * (1_000_000 + DRIFT_PPM as u64) / 1_000_000 + 4 * MAX_DELAY_MS + 2 * HOOK_MAX_MS + 10_000) * MS
}

/// The fault runs' leader timeout: 4 s, or 5 s where the electors rely on the server's clock
/// with `server_clock_auto`'s assumed skew of 1 s, which needs the room (2.5 s · 1.01 <
/// (5 − 1 − 1) s · 0.99).
fn leader_timeout_ms(p: &Params) -> u64 {
    if p.auto_clock { 5_000 } else { 4_000 }
}

/// Failover runs: the electors' defaults (renewal every 5 s, infrequent interval 30 s, leader
/// timeout 15 s), with the skew this project advises declaring for a single store.
const DEFAULT_LEADER_TIMEOUT_MS: u64 = 15_000; // Config::default().leader_timeout_ms, which a test checks
const FAILOVER_SERVER_SKEW_MS: u64 = 1_000;
/// From the killed leader's last write until another node leads (docs/design.md, "Liveness
/// and cost"), then a claim's round trip and an acquire hook, with the worst clock rates:
/// - observed (F4): the last write is seen within min(infrequent, leader timeout), a round
///   trip late, and stands a leader timeout;
/// - the server's clock (F5): a read shows the record a leader timeout old once that, a second
///   of the stamps' truncation and the front-ends' real spread have passed; a read a second
///   short (drift eats the declared skew's margin) is followed one second and the skew later.
const FAILOVER_BOUND_OBSERVED: u64 = failover_bound(DEFAULT_LEADER_TIMEOUT_MS + 2 * MAX_DELAY_MS + DEFAULT_LEADER_TIMEOUT_MS);
const FAILOVER_BOUND_SERVER_CLOCK: u64 = failover_bound(DEFAULT_LEADER_TIMEOUT_MS + 2 * 1_000 + SERVER_SKEW_MS + FAILOVER_SERVER_SKEW_MS);
const fn failover_bound(local_ms: u64) -> u64 {
    (local_ms * (1_000_000 + 2 * DRIFT_PPM as u64) / 1_000_000 + 2 * MAX_DELAY_MS + HOOK_MAX_MS) * MS
}

/// What becomes of a write's reply.
#[derive(Debug, PartialEq)]
enum Reply {
    Delivered,
    /// Lost silently: the client's timeout answers.
    Lost,
    /// The connection is cut after the write was applied: the client sees an error at once.
    Reset,
}

#[derive(Debug)]
enum Ev {
    Step(usize),
    /// Completion for node, valid only if the node's generation still matches.
    Deliver(usize, u64, Answer),
    Apply {
        node: usize,
        epoch: u64,
        key_etag: Option<String>,
        data: Vec<u8>,
        reply: Reply,
        reply_delay: u64,
    },
    Crash(usize),
    Restart(usize),
    /// Failover runs: the leader is killed for good, once.
    KillLeader,
    Pause(usize, u64),
    Partition(usize, u64),
    Corrupt,
    WallJump(usize, i128),
    /// A stateless invocation, its step done, finishes its work and exits (if its epoch holds).
    EndInvocation(usize, u64),
}

struct Node {
    elector: Option<Elector>,
    ppm: i64,
    mono_offset: u64,
    wall_offset: i128,
    paused_until: u64,
    partitioned_until: u64,
    /// Bumped whenever the outstanding action is abandoned (crash): stale completions drop.
    epoch: u64,
    /// Outstanding action and its timeout (real time).
    waiting: Option<(u64, u64)>,
    /// The outstanding action's ticket, handed back with its answer.
    ticket: Option<Ticket>,
    /// Term of a successful acquire not yet followed by a lose (or a crash).
    acquired: Option<u64>,
    pending_acquire: Option<u64>,
    pending_lose: bool,
    /// For Broken::IgnoreDeadline: believes from acquire until a lose hook.
    sticky_belief: bool,
    ended_without_lose: bool,
    /// Every record this incarnation sent: a read showing one of them is its own write.
    written: std::collections::HashSet<Vec<u8>>,
    /// The term of this incarnation's last acquisition: each one must be a new term.
    last_acquired: Option<u64>,
    /// Stateless nodes: when the next invocation is due (none while crashed or running).
    invocation_due: Option<u64>,
}

struct Sim {
    seed: u64,
    p: Params,
    rng: fastrand::Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<Node>,
    object: Option<Object>,
    /// The lock object's `Last-Modified`, by the front-end that took the write.
    written_at: i64,
    etags: u64,
    last_term: u64,
    /// Who wrote each term, since the last outside interference.
    term_leaders: BTreeMap<u64, String>,
    heal_at: u64,
    first_leader_after_heal: Option<u64>,
    log: Vec<String>,
    pub steps: u64,
    /// Each front-end's clock offset from real time, ns.
    front_ends: Vec<i128>,
    /// Failover runs: who was killed, when its last write applied, and when another led.
    killed: Option<Killed>,
    /// When the last write applied (real time).
    last_write: u64,
}

struct Killed {
    id: String,
    last_write: u64,
    takeover: Option<u64>,
}

impl Sim {
    fn new(seed: u64, p: Params) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        let skewed = p.broken == Broken::SkewBeyondBound;
        let nodes = (0..p.nodes)
            .map(|_| Node {
                elector: None,
                ppm: rng.i64(-(DRIFT_PPM as i64)..=DRIFT_PPM as i64),
                mono_offset: rng.u64(0..1_000_000 * S),
                wall_offset: if skewed { rng.i128(-5 * S as i128..=5 * S as i128) } else { rng.i128(-(S as i128)..=S as i128) },
                paused_until: 0,
                partitioned_until: 0,
                epoch: 0,
                waiting: None,
                ticket: None,
                acquired: None,
                pending_acquire: None,
                pending_lose: false,
                sticky_belief: false,
                ended_without_lose: false,
                written: Default::default(),
                last_acquired: None,
                invocation_due: None,
            })
            .collect();
        let spread = if p.broken == Broken::ServerSkewBeyondBound { BROKEN_SERVER_SKEW_MS } else { SERVER_SKEW_MS } as i128 * MS as i128;
        let front_ends = (0..FRONT_ENDS).map(|_| rng.i128(-spread / 2..=spread / 2)).collect();
        let heal_at = if p.failover { 0 } else { p.duration * 6 / 10 };
        let mut sim = Sim {
            seed,
            p,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            object: None,
            written_at: 0,
            etags: 0,
            last_term: 0,
            term_leaders: BTreeMap::new(),
            heal_at,
            first_leader_after_heal: None,
            log: vec![],
            steps: 0,
            front_ends,
            killed: None,
            last_write: 0,
        };
        for i in 0..sim.p.nodes {
            sim.start_node(i);
        }
        if sim.p.failover {
            // At any phase of the renewals and of the followers' reads.
            let at = sim.rng.u64(40 * S..70 * S);
            sim.push(at, Ev::KillLeader);
        } else {
            sim.schedule_faults();
        }
        sim
    }

    fn clock(&self, i: usize) -> Clock {
        let n = &self.nodes[i];
        let t = self.now as i128;
        Clock {
            mono_ns: n.mono_offset + (t + t * n.ppm as i128 / 1_000_000) as u64,
            wall_ns: 1_800_000_000 * S as i128 + t + n.wall_offset,
        }
    }

    /// Real time at which node i's clock will have advanced by `local_ms`.
    fn real_after(&self, i: usize, local_ms: u64) -> u64 {
        let local = local_ms as u128 * MS as u128;
        self.now + (local * 1_000_000 / (1_000_000 + self.nodes[i].ppm) as u128) as u64
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn note(&mut self, s: String) {
        self.log.push(format!("{:>9.3}s {s}", self.now as f64 / S as f64));
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&String> = self.log.iter().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "seed {} ({:?}, {} nodes, peer mode {}, cautious absence {}, server clock {}, checked server clock {}, frozen stamps {}, stateless {}, failover {}): {what}\nreplay: SIM_SEED={} cargo test -p s3lect-guest --test simulation replay -- --nocapture\n{}",
            self.seed,
            self.p.broken,
            self.p.nodes,
            self.p.peer_mode,
            self.p.cautious_absence,
            self.p.server_clock,
            self.p.auto_clock,
            self.p.frozen_stamps,
            self.p.stateless,
            self.p.failover,
            self.seed,
            tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }

    fn start_node(&mut self, i: usize) {
        if self.p.stateless {
            self.nodes[i].invocation_due = Some(self.now);
        } else {
            self.new_incarnation(i);
        }
        self.push(self.now, Ev::Step(i));
    }

    /// A fresh elector: a (re)started process, or a stateless invocation.
    fn new_incarnation(&mut self, i: usize) {
        let cfg = config(i, &self.p);
        let now = self.clock(i);
        let mut elector = Elector::new(cfg, now).expect("valid config");
        if self.p.stateless {
            elector.set_invocation_budget(0);
        }
        self.nodes[i].elector = Some(elector);
        self.nodes[i].written.clear();
        self.nodes[i].last_acquired = None;
    }

    /// A stateless invocation ended: the process is gone, and its belief with it.
    fn end_invocation(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.elector = None;
        n.acquired = None;
        n.sticky_belief = false;
        n.ended_without_lose = false;
        let at = self.now + self.rng.u64(INVOCATION_PERIOD_MS) * MS;
        self.nodes[i].invocation_due = Some(at);
        self.push(at, Ev::Step(i));
    }

    /// The store's clock as one front-end reads it now, in whole seconds.
    fn server_seconds(&mut self) -> i64 {
        let offset = self.front_ends[self.rng.usize(0..FRONT_ENDS)];
        ((1_800_000_000 * S as i128 + self.now as i128 + offset) / S as i128) as i64
    }

    fn schedule_faults(&mut self) {
        let faults = self.rng.usize(5..25);
        for _ in 0..faults {
            let at = self.rng.u64(5 * S..self.heal_at);
            let i = self.rng.usize(0..self.p.nodes);
            let ev = match self.rng.u8(0..7) {
                0 => Ev::Crash(i),
                1 | 2 => Ev::Pause(i, self.rng.u64(500..12_000) * MS),
                3 | 4 => Ev::Partition(i, self.rng.u64(500..12_000) * MS),
                5 => Ev::Corrupt,
                _ => Ev::WallJump(i, self.rng.i128(-60 * S as i128..=60 * S as i128)),
            };
            self.push(at, ev);
        }
    }

    fn believes(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        match (&n.elector, self.p.broken) {
            (None, _) => false,
            (Some(_), Broken::IgnoreDeadline) => n.sticky_belief,
            (Some(e), _) => e.is_leader(self.clock(i)),
        }
    }

    fn check(&mut self) {
        let believers: Vec<usize> = (0..self.p.nodes).filter(|&i| self.believes(i)).collect();
        if believers.len() > 1 {
            self.fail(format!("two leaders at once: {believers:?}"));
        }
        for &i in &believers {
            let term = self.nodes[i].elector.as_ref().unwrap().status(self.clock(i)).term;
            if self.nodes[i].acquired != Some(term) {
                self.fail(format!("n{i} leads term {term} without a successful acquire hook"));
            }
        }
        if !believers.is_empty() && self.now >= self.heal_at && self.first_leader_after_heal.is_none() {
            self.first_leader_after_heal = Some(self.now);
        }
        if let Some(k) = &self.killed
            && k.takeover.is_none()
            && !believers.is_empty()
        {
            // Checked, the server's clock is trusted once a follower has read a rewrite: not
            // in peer mode, where followers probe the leader instead of reading.
            let checked = self.p.auto_clock && !self.p.frozen_stamps && !self.p.peer_mode;
            let (bound, source) = if self.p.server_clock || checked {
                (FAILOVER_BOUND_SERVER_CLOCK, "the server's clock")
            } else {
                (FAILOVER_BOUND_OBSERVED, "observed")
            };
            let after = self.now - k.last_write;
            if after > bound {
                self.fail(format!(
                    "failover {} ms after the killed leader's last write, beyond the bound ({source}) of {} ms",
                    after / MS,
                    bound / MS
                ));
            }
            self.note(format!("TAKEOVER {} ms after the killed leader's last write", after / MS));
            self.killed.as_mut().unwrap().takeover = Some(self.now);
        }
    }

    fn run(&mut self) {
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > self.p.duration {
                break;
            }
            self.now = at;
            let ev = self.events.remove(&seq).unwrap();
            self.handle(ev);
            self.check();
        }
        let bound = liveness_bound(leader_timeout_ms(&self.p));
        let deadline = self.heal_at + bound;
        assert!(self.p.duration > deadline, "simulation too short to check liveness");
        match self.first_leader_after_heal {
            Some(t) if t <= deadline => {}
            other => {
                self.fail(format!("no leader within {} ms after faults healed at {} ms (first: {other:?})", bound / MS, self.heal_at / MS))
            }
        }
        if self.p.failover && self.killed.as_ref().is_none_or(|k| k.takeover.is_none()) {
            self.fail("the killed leader was not replaced".into());
        }
    }

    fn faulty(&self) -> bool {
        self.now < self.heal_at
    }

    fn handle(&mut self, ev: Ev) {
        // Events for a paused node wait for it.
        let node_of = match &ev {
            Ev::Step(i) | Ev::Deliver(i, ..) | Ev::EndInvocation(i, _) => Some(*i),
            _ => None,
        };
        if let Some(i) = node_of
            && self.nodes[i].paused_until > self.now
        {
            let at = self.nodes[i].paused_until;
            self.push(at, ev);
            return;
        }
        match ev {
            Ev::Step(i) => {
                if self.p.stateless {
                    // Only the invocation due runs; a step left over from before a crash does not.
                    if self.nodes[i].elector.is_some() || self.nodes[i].invocation_due.is_none_or(|d| d > self.now) {
                        return;
                    }
                    self.nodes[i].invocation_due = None;
                    self.new_incarnation(i);
                }
                if self.nodes[i].elector.is_none() || self.nodes[i].waiting.is_some() {
                    return;
                }
                let now = self.clock(i);
                let action = self.nodes[i].elector.as_mut().unwrap().begin_step(now);
                self.steps += 1;
                self.perform(i, action);
            }
            Ev::Deliver(i, epoch, completion) => {
                if self.nodes[i].epoch != epoch || self.nodes[i].elector.is_none() || self.nodes[i].waiting.is_none() {
                    return;
                }
                self.nodes[i].waiting = None;
                self.nodes[i].epoch += 1;
                if std::env::var("SIM_TRACE").is_ok() {
                    self.note(format!("n{i} <- {}", format!("{completion:?}").chars().take(90).collect::<String>()));
                }
                let ticket = self.nodes[i].ticket.take().expect("a node waits only with a ticket");
                self.complete(i, ticket.answer(completion));
            }
            Ev::Apply { node, epoch, key_etag, data, reply, reply_delay } => {
                let result = self.apply(key_etag, data);
                self.note(format!("n{node} write applied? {:?}, reply {reply:?}", result.as_ref().map(|_| "ok")));
                let result = match reply {
                    Reply::Lost => return,
                    Reply::Reset => Err(StorageError::Unavailable("connection reset".into())),
                    Reply::Delivered => result,
                };
                self.push(self.now + reply_delay, Ev::Deliver(node, epoch, Answer::Put(result)));
            }
            Ev::Crash(i) => {
                if self.crash(i) {
                    let restart = self.now + self.rng.u64(500..10_000) * MS;
                    self.push(restart, Ev::Restart(i));
                }
            }
            Ev::KillLeader => {
                let Some(i) = (0..self.p.nodes).find(|&i| self.believes(i)) else { self.fail("no leader to kill".into()) };
                self.crash(i);
                let last_write = self.last_write;
                self.killed = Some(Killed { id: format!("n{i}"), last_write, takeover: None });
            }
            Ev::EndInvocation(i, epoch) => {
                if self.nodes[i].epoch == epoch && self.nodes[i].elector.is_some() {
                    self.end_invocation(i);
                }
            }
            Ev::Restart(i) => {
                self.note(format!("n{i} restart"));
                self.start_node(i);
            }
            Ev::Pause(i, d) => {
                self.note(format!("n{i} PAUSE {} ms", d / MS));
                self.nodes[i].paused_until = self.nodes[i].paused_until.max(self.now + d);
            }
            Ev::Partition(i, d) => {
                self.note(format!("n{i} PARTITION {} ms", d / MS));
                self.nodes[i].partitioned_until = self.nodes[i].partitioned_until.max(self.now + d);
            }
            Ev::Corrupt => {
                self.note("lock object CORRUPTED".into());
                self.write_external(b"{garbage".to_vec());
            }
            Ev::WallJump(i, j) => {
                self.note(format!("n{i} wall clock jumps {} s", j / S as i128));
                self.nodes[i].wall_offset += j;
            }
        }
    }

    /// A process dies: its state, belief and outstanding action are gone. Whether it ran.
    fn crash(&mut self, i: usize) -> bool {
        let between_invocations = self.nodes[i].invocation_due.take().is_some();
        if self.nodes[i].elector.take().is_none() && !between_invocations {
            return false;
        }
        self.note(format!("n{i} CRASH"));
        let n = &mut self.nodes[i];
        n.epoch += 1;
        n.waiting = None;
        n.acquired = None;
        n.sticky_belief = false;
        n.ended_without_lose = false;
        true
    }

    fn write_external(&mut self, data: Vec<u8>) {
        self.etags += 1;
        let existed = self.object.is_some();
        self.object = Some(Object { data, etag: format!("\"x{}\"", self.etags), server_clock: None });
        self.stamp_write(existed);
        // Outside interference erases history: terms restart from what electors remember, so
        // term uniqueness is checked within the history since the last interference.
        self.last_term = 0;
        self.term_leaders.clear();
    }

    fn apply(&mut self, etag: Option<String>, data: Vec<u8>) -> Result<String, StorageError> {
        match (&self.object, &etag) {
            (None, None) => {}
            (Some(o), Some(e)) if &o.etag == e => {}
            (None, Some(_)) => return Err(StorageError::NotFound),
            _ => return Err(StorageError::PreconditionFailed),
        }
        if let Ok(r) = LeaderRecord::parse(&data) {
            // A write the killed leader sent before it died may still land.
            if let Some(k) = self.killed.as_mut().filter(|k| k.id == r.leader_id) {
                k.last_write = self.now;
            }
            if r.term < self.last_term {
                self.fail(format!("term decreased: {} after {}", r.term, self.last_term));
            }
            self.last_term = r.term;
            if !r.leader_id.is_empty()
                && let Some(prev) = self.term_leaders.insert(r.term, r.leader_id.clone())
                && prev != r.leader_id
            {
                self.fail(format!("term {} written by {prev} and {}", r.term, r.leader_id));
            }
        }
        self.etags += 1;
        self.last_write = self.now;
        let new = format!("\"e{}\"", self.etags);
        let existed = self.object.is_some();
        self.object = Some(Object { data, etag: new.clone(), server_clock: None });
        self.stamp_write(existed);
        Ok(new)
    }

    /// Last-Modified of a write: now by some front-end, unless the store keeps a rewritten
    /// object's first stamp.
    fn stamp_write(&mut self, rewrite: bool) {
        if !(rewrite && self.p.frozen_stamps) {
            self.written_at = self.server_seconds();
        }
    }

    /// A GET's answer: the object as of now, with the server's stamps if it sends them.
    fn read_object(&mut self) -> Result<Object, StorageError> {
        let mut obj = self.object.clone().ok_or(StorageError::NotFound)?;
        if (self.p.server_clock || self.p.auto_clock) && self.p.broken != Broken::NoServerStamps {
            let answered = self.server_seconds();
            obj.server_clock = Some(ServerClock { written_unix_s: self.written_at, answered_unix_s: answered });
        }
        Ok(obj)
    }

    fn delay(&mut self) -> u64 {
        let slow = self.faulty() && self.rng.u8(0..20) == 0;
        if slow { self.rng.u64(0..SLOW_REPLY_MS) * MS } else { self.rng.u64(0..MAX_DELAY_MS) * MS }
    }

    fn perform(&mut self, i: usize, action: Action) {
        if std::env::var("SIM_TRACE").is_ok() {
            let lead = self.nodes[i].elector.as_ref().is_some_and(|e| e.is_leader(self.clock(i)));
            self.note(format!("n{i} -> {:?} (leader {lead})", short(&action)));
        }
        let epoch = self.nodes[i].epoch;
        self.nodes[i].ticket = Ticket::of(&action);
        let timeout_ms = match &action {
            Action::Get { timeout_ms, .. } | Action::Put { timeout_ms, .. } | Action::Probe { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        };
        if let Some(t) = timeout_ms {
            let at = self.real_after(i, t);
            self.nodes[i].waiting = Some((epoch, at));
            self.push(at, Ev::Deliver(i, epoch, timeout_completion(&action)));
        } else if !matches!(action, Action::Done { .. }) {
            self.nodes[i].waiting = Some((epoch, u64::MAX));
        }
        let partitioned = self.nodes[i].partitioned_until > self.now;
        let fault = if self.faulty() { self.rng.u8(0..30) } else { 255 };
        match action {
            Action::Done { next_step_in_ms } => {
                if self.p.stateless {
                    // The invocation works a while (as leader, if it leads), then exits.
                    let at = self.now + self.rng.u64(0..INVOCATION_WORK_MS) * MS;
                    return self.push(at, Ev::EndInvocation(i, epoch));
                }
                self.on_done(i);
                let at = self.real_after(i, next_step_in_ms);
                self.push(at, Ev::Step(i));
            }
            Action::Get { .. } => {
                let (d1, d2) = (self.delay(), self.delay());
                if partitioned || fault == 0 {
                    return; // request or reply lost: the timeout answers
                }
                let reply = match fault {
                    1 => Err(StorageError::Conflict),
                    2 => Err(StorageError::Unavailable("503 SlowDown".into())),
                    _ => self.read_object(),
                };
                self.push(self.now + d1 + d2, Ev::Deliver(i, epoch, Answer::Got(reply)));
            }
            Action::Put { data, etag, timeout_ms, .. } => {
                self.nodes[i].written.insert(data.clone());
                let (d1, d2) = (self.delay(), self.delay());
                if partitioned && self.rng.bool() || fault == 0 {
                    return; // request lost
                }
                match fault {
                    // Applied long after the client gave up (a request stuck in a queue).
                    4 => {
                        let at = self.real_after(i, timeout_ms) + self.rng.u64(1..3_000) * MS;
                        self.push(at, Ev::Apply { node: i, epoch, key_etag: etag, data, reply: Reply::Lost, reply_delay: 0 });
                    }
                    1 => self.push(self.now + d1 + d2, Ev::Deliver(i, epoch, Answer::Put(Err(StorageError::Conflict)))),
                    2 => self.push(self.now + d1 + d2, Ev::Deliver(i, epoch, Answer::Put(Err(StorageError::Unavailable("500".into()))))),
                    // Applied, but the reply is lost (always so while partitioned), or the
                    // connection is cut before it.
                    _ => {
                        let reply = match fault {
                            _ if partitioned => Reply::Lost,
                            3 => Reply::Lost,
                            5 | 6 => Reply::Reset,
                            _ => Reply::Delivered,
                        };
                        self.push(self.now + d1, Ev::Apply { node: i, epoch, key_etag: etag, data, reply, reply_delay: d2 });
                    }
                }
            }
            Action::Probe { addr, .. } => {
                let d = self.delay();
                if partitioned {
                    return;
                }
                let target = addr.trim_start_matches('n').trim_end_matches(":1").parse::<usize>().ok();
                let reply = match target {
                    Some(t) if t < self.p.nodes && self.nodes[t].elector.is_some() && self.nodes[t].paused_until <= self.now => {
                        match self.nodes[t].elector.as_ref().unwrap().health(self.clock(t)) {
                            Some(body) => Ok(ProbeReply::Leader(body)),
                            None => Ok(ProbeReply::NotLeader),
                        }
                    }
                    _ => Err("connection refused".to_string()),
                };
                self.push(self.now + 2 * d, Ev::Deliver(i, epoch, Answer::Probed(reply)));
            }
            Action::AcquireHook { term, .. } => {
                let ok = !(self.faulty() && self.rng.u8(0..15) == 0);
                self.nodes[i].pending_acquire = ok.then_some(term);
                let d = self.rng.u64(0..HOOK_MAX_MS) * MS;
                let result = if ok { Ok(()) } else { Err("hook failed".to_string()) };
                self.push(self.now + d, Ev::Deliver(i, epoch, Answer::Hook(result)));
            }
            Action::LoseHook { term, .. } => {
                self.nodes[i].pending_lose = true;
                self.note(format!("n{i} lose hook term {term}"));
                let d = self.rng.u64(0..HOOK_MAX_MS) * MS;
                self.push(self.now + d, Ev::Deliver(i, epoch, Answer::Hook(Ok(()))));
            }
        }
    }

    fn complete(&mut self, i: usize, completion: Completion) {
        let n = &mut self.nodes[i];
        if matches!(completion, Completion::Hook(..)) {
            if let Some(term) = n.pending_acquire.take() {
                if n.last_acquired.is_some_and(|t| t >= term) {
                    let prev = n.last_acquired;
                    self.fail(format!("n{i} acquired term {term} after term {prev:?}: a leadership must not be resumed"));
                }
                let n = &mut self.nodes[i];
                n.last_acquired = Some(term);
                n.acquired = Some(term);
                n.sticky_belief = true;
                n.ended_without_lose = false;
                self.note(format!("n{i} ACQUIRED term {term}"));
            } else if std::mem::take(&mut n.pending_lose) {
                n.acquired = None;
                n.sticky_belief = false;
                n.ended_without_lose = false;
            }
        }
        let now = self.clock(i);
        let elector = self.nodes[i].elector.as_mut().unwrap();
        let error_before = elector.problem().cloned();
        let shown = match &completion {
            Completion::Got(_, Ok(obj)) => Some(obj.data.clone()),
            _ => None,
        };
        let action = elector.complete(now, completion);
        let error_after = elector.problem().cloned();
        if error_after != error_before && matches!(error_after, Some(Problem::Lost { why: Loss::OtherWriter, .. })) {
            match shown {
                Some(data) if !self.nodes[i].written.contains(&data) => {}
                _ => self.fail(format!("n{i} stepped down for another instance's write, but the object was its own")),
            }
        }
        // The check may refuse only a store that breaks a promise: this one's front-ends agree
        // within the assumed skew, so only a frozen stamp may end the trust.
        if let Some(Problem::ServerClockDistrusted { why }) = error_after.as_ref().filter(|_| error_after != error_before)
            && !self.p.frozen_stamps
        {
            self.fail(format!("n{i} distrusted a store that keeps the server clock's promises: {why}"));
        }
        self.perform(i, action);
    }

    /// At the end of each step: a node whose leadership ended must have run its lose hook by
    /// the end of the following step.
    fn on_done(&mut self, i: usize) {
        let ended = self.nodes[i].acquired.is_some() && !self.nodes[i].elector.as_ref().unwrap().is_leader(self.clock(i));
        if ended && self.nodes[i].ended_without_lose {
            self.fail(format!("n{i}'s leadership ended but its lose hook did not run"));
        }
        self.nodes[i].ended_without_lose = ended;
    }
}

fn short(a: &Action) -> String {
    match a {
        Action::Put { etag, timeout_ms, .. } => format!("Put(if-match {etag:?}, {timeout_ms} ms)"),
        Action::Get { .. } => "Get".into(),
        other => format!("{other:?}"),
    }
}

fn timeout_completion(action: &Action) -> Answer {
    let e = StorageError::Unavailable("timed out".into());
    match action {
        Action::Get { .. } => Answer::Got(Err(e)),
        Action::Put { .. } => Answer::Put(Err(e)),
        _ => Answer::Probed(Err("timed out".into())),
    }
}

fn params(seed: u64, broken: Broken) -> Params {
    let mut r = fastrand::Rng::with_seed(seed ^ 0xabcdef);
    let server_clock = matches!(broken, Broken::ServerSkewBeyondBound | Broken::UncheckedFrozenStamps) || r.bool();
    let stateless = server_clock && r.bool();
    // A stateless node cannot watch an absence for a leader timeout (a 404 has no
    // Last-Modified): cautious absence would never elect, and says so (a core unit test).
    let cautious_absence = !stateless && r.bool();
    let (nodes, peer_mode) = (r.usize(3..=7), r.bool());
    // Without a declared skew, half the runs leave server-clock-auto on, and a third of those
    // give it a store that keeps the first stamp on a rewrite.
    let auto_clock = !server_clock && r.bool();
    let frozen_stamps = broken == Broken::UncheckedFrozenStamps || (auto_clock && r.u8(0..3) == 0);
    // A quarter of the seeds are failover runs: no faults, long-running nodes.
    if broken == Broken::NoServerStamps || (broken == Broken::None && r.u8(0..4) == 0) {
        let server_clock = broken == Broken::NoServerStamps || server_clock;
        return Params {
            nodes,
            duration: 120 * S,
            peer_mode,
            cautious_absence: false,
            server_clock,
            auto_clock: auto_clock && !server_clock,
            frozen_stamps,
            stateless: false,
            failover: true,
            broken,
        };
    }
    Params {
        nodes,
        duration: 240 * S,
        peer_mode,
        cautious_absence,
        server_clock,
        auto_clock,
        frozen_stamps,
        stateless,
        failover: false,
        broken,
    }
}

fn run_seed(seed: u64, broken: Broken) -> u64 {
    let mut sim = Sim::new(seed, params(seed, broken));
    sim.run();
    sim.steps
}

/// Runs `seeds` with one rule broken and asserts that the checker catches it as two leaders.
fn assert_caught_as_two_leaders(seeds: std::ops::Range<u64>, broken: Broken, what: &str) {
    assert_caught(seeds, broken, what, "two leaders at once");
}

/// Runs `seeds` with one rule broken and asserts that the checker catches it, saying `says`.
fn assert_caught(seeds: std::ops::Range<u64>, broken: Broken, what: &str, says: &str) {
    std::panic::set_hook(Box::new(|_| {}));
    let found = seeds.into_iter().find_map(|seed| {
        let e = std::panic::catch_unwind(|| run_seed(seed, broken)).err()?;
        Some((seed, e.downcast_ref::<String>().cloned().unwrap_or_default()))
    });
    let _ = std::panic::take_hook();
    let (seed, msg) = found.unwrap_or_else(|| panic!("{what} must be caught"));
    assert!(msg.contains(says), "seed {seed}: {msg}");
}

#[test]
fn fixed_seeds_hold_every_invariant() {
    let start = std::time::Instant::now();
    let (mut steps, mut failover) = (0, 0);
    for seed in 0..40 {
        steps += run_seed(seed, Broken::None);
        failover += usize::from(params(seed, Broken::None).failover);
    }
    println!("40 seeds ({failover} of them failover runs), {steps} election steps, in {:?}", start.elapsed());
}

#[test]
fn the_checker_catches_a_leader_that_ignores_its_renew_deadline() {
    assert_caught_as_two_leaders(0..200, Broken::IgnoreDeadline, "a leader ignoring its deadline");
}

#[test]
fn the_checker_catches_timestamp_staleness_with_skew_beyond_its_bound() {
    assert_caught_as_two_leaders(0..50, Broken::SkewBeyondBound, "trusting timestamps beyond the real skew");
}

#[test]
fn the_checker_catches_server_clock_staleness_with_front_ends_beyond_the_bound() {
    assert_caught_as_two_leaders(0..100, Broken::ServerSkewBeyondBound, "trusting the server's clock beyond its front-ends' real skew");
}

#[test]
fn failover_runs_take_over_within_their_bounds() {
    assert_eq!(Config::default().leader_timeout_ms, DEFAULT_LEADER_TIMEOUT_MS, "the bounds are derived for the defaults");
    let failover = (0..400).filter(|&seed| params(seed, Broken::None).failover).take(40);
    let (mut runs, mut server_clock, mut checked) = (0, 0, 0);
    for seed in failover {
        run_seed(seed, Broken::None);
        runs += 1;
        let p = params(seed, Broken::None);
        server_clock += usize::from(p.server_clock);
        checked += usize::from(p.auto_clock && !p.frozen_stamps && !p.peer_mode);
    }
    assert!(
        runs == 40 && server_clock >= 10 && checked >= 3,
        "{runs} failover runs, {server_clock} with the server's clock declared, {checked} with it checked"
    );
}

#[test]
fn the_checker_catches_the_servers_clock_trusted_unchecked_on_a_store_that_keeps_first_stamps() {
    assert_caught_as_two_leaders(0..50, Broken::UncheckedFrozenStamps, "trusting a Last-Modified that a rewrite does not move");
}

#[test]
fn the_checker_catches_a_failover_that_no_read_can_prove() {
    assert_caught(
        0..50,
        Broken::NoServerStamps,
        "a follower that cannot read at the proving instant",
        "beyond the bound (the server's clock)",
    );
}

/// `SIM_SEED=n` replays one seed with its event log printed on failure.
#[test]
fn replay() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let steps = run_seed(seed.parse().expect("SIM_SEED is a number"), Broken::None);
        println!("seed {seed}: {steps} steps, no violation");
    }
}

/// The long sweep: `SIM_SEEDS=5000 cargo test --release -p s3lect-guest --test simulation -- --ignored --nocapture`.
#[test]
#[ignore]
fn sweep_many_seeds() {
    let n: u64 = std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let start = std::time::Instant::now();
    let (mut steps, mut simulated) = (0, 0);
    for seed in 0..n {
        steps += run_seed(1_000_000 + seed, Broken::None);
        simulated += params(1_000_000 + seed, Broken::None).duration / S;
    }
    println!("sweep: {n} seeds, {steps} election steps, {simulated} s simulated, 0 violations, in {:?}", start.elapsed());
}

/// An answer as the simulated network delivers it; it meets its ticket on delivery.
#[derive(Debug)]
enum Answer {
    Got(Result<Object, StorageError>),
    Put(Result<String, StorageError>),
    Probed(Result<ProbeReply, String>),
    Hook(Result<(), String>),
}

#[derive(Debug)]
enum Ticket {
    Read(ReadTicket),
    Write(WriteTicket),
    Probe(ProbeTicket),
    Hook(HookTicket),
}

impl Ticket {
    fn of(action: &Action) -> Option<Ticket> {
        Some(match action {
            Action::Get { ticket, .. } => Ticket::Read(ticket.clone()),
            Action::Put { ticket, .. } => Ticket::Write(ticket.clone()),
            Action::Probe { ticket, .. } => Ticket::Probe(ticket.clone()),
            Action::AcquireHook { ticket, .. } | Action::LoseHook { ticket, .. } => Ticket::Hook(ticket.clone()),
            Action::Done { .. } => return None,
        })
    }

    fn answer(self, a: Answer) -> Completion {
        match (self, a) {
            (Ticket::Read(t), Answer::Got(r)) => Completion::Got(t, r),
            (Ticket::Write(t), Answer::Put(r)) => Completion::Put(t, r),
            (Ticket::Probe(t), Answer::Probed(r)) => Completion::Probed(t, r),
            (Ticket::Hook(t), Answer::Hook(r)) => Completion::Hook(t, r),
            (t, a) => panic!("simulator bug: {a:?} delivered for {t:?}"),
        }
    }
}
