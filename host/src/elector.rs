//! `Elector`: the Go API's elector. A tokio task owns the guest component and runs one step
//! at a time at the interval the guest asks for; everything else reads a snapshot the task
//! publishes, so status readers never wait behind a slow S3 call or a slow hook.

use crate::clock;
use crate::config::ElectorConfig;
use crate::error::{Error, Result};
use crate::probe::PeerProbe;
use crate::runtime::{ComponentElector, HostIo, Outcome, Runtime, Stopping};
use crate::storage::{Storage, conforming_storage};
use crate::timer_slack;
use s3lect_guest::record::printable;
use s3lect_guest::{HealthReply, ProblemKind, Status};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

/// Detailed leadership status: Go s3lect's eight fields, plus the fencing term, the lease left,
/// and the most recent problem.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadershipStatus {
    /// This instance.
    #[serde(rename = "serverID")]
    pub server_id: String,
    /// The lock object's key.
    pub lockfile_path: String,
    /// True only while the lease is valid and the acquire hook has succeeded.
    pub is_leader: bool,
    /// The leader named by the last record seen; empty if none, or resigned.
    #[serde(rename = "leaderID")]
    pub leader_id: String,
    /// The leader's advertised address.
    pub leader_addr: String,
    /// When the leader was last seen alive (its record changed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub leader_last_seen: Option<time::OffsetDateTime>,
    /// When the last election step ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_election_time: Option<time::OffsetDateTime>,
    /// Storage failures in a row.
    pub consecutive_fails: u32,
    /// Fencing token of the current (or last known) leadership; 0 if none seen.
    pub term: u64,
    /// Milliseconds of lease left, for a leader.
    pub lease_remaining_ms: Option<u64>,
    /// The most recent problem, until what it describes is over.
    pub last_error: Option<String>,
    /// Its kind, for code that acts on it (in JSON, the WIT's name: "no-staleness-source").
    pub problem: Option<ProblemKind>,
    /// A follower may judge staleness by the storage server's clock: declared
    /// (`server_clock_skew`), or checked on this elector's reads (`server_clock_auto`).
    pub server_clock_in_use: bool,
}

impl LeadershipStatus {
    /// From the component's status; `lease_deadline` (host time) decides whether a leader still
    /// leads at `now`.
    pub(crate) fn from_core(st: &Status, now: Instant, lease_deadline: Option<Instant>) -> LeadershipStatus {
        let lease_deadline = lease_deadline.or_else(|| st.lease_until.map(clock::instant_of));
        let leading = st.is_leader && lease_deadline.is_some_and(|d| now < d);
        // A leader whose lease ran out while a step is still in flight knows of no leader.
        let (leader_id, leader_addr) =
            if st.is_leader && !leading { (String::new(), String::new()) } else { (st.leader_id.clone(), st.leader_addr.clone()) };
        LeadershipStatus {
            server_id: st.server_id.clone(),
            lockfile_path: st.lockfile_path.clone(),
            is_leader: leading,
            leader_id,
            leader_addr,
            leader_last_seen: st.leader_last_seen_unix_ns.and_then(wall),
            last_election_time: st.last_election_unix_ns.and_then(wall),
            consecutive_fails: st.consecutive_fails,
            term: st.term,
            lease_remaining_ms: lease_deadline
                .filter(|_| leading)
                .map(|d| u64::try_from(d.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX)),
            last_error: st.last_error.clone(),
            problem: st.problem,
            server_clock_in_use: st.server_clock_in_use,
        }
    }
}

/// Leadership changes of one elector (see [`Elector::watch_leadership`]).
pub struct LeadershipWatch {
    rx: watch::Receiver<Snapshot>,
    leading: bool,
}

impl LeadershipWatch {
    /// Whether this instance led when last observed.
    pub fn is_leader(&self) -> bool {
        self.leading
    }

    /// Waits until leadership starts or ends and returns the new value; [`Error::Stopped`] once
    /// the elector has stopped (after reporting the end of a leadership first).
    pub async fn changed(&mut self) -> Result<bool> {
        loop {
            let (now_leading, stopped, wake) = {
                let s = self.rx.borrow_and_update();
                let now = Instant::now();
                // A lease ends without a new snapshot: wake for that instant too.
                (s.leading(now), s.stopped, s.lease_deadline.filter(|_| s.leading(now)))
            };
            if now_leading != self.leading {
                self.leading = now_leading;
                return Ok(now_leading);
            }
            if stopped {
                return Err(Error::Stopped);
            }
            let changed = self.rx.changed();
            match wake {
                Some(deadline) => {
                    if let Ok(Err(_)) = tokio::time::timeout_at(deadline.into(), changed).await {
                        return Err(Error::Stopped);
                    }
                }
                None => changed.await.map_err(|_| Error::Stopped)?,
            }
        }
    }
}

/// What the driver task last published.
#[derive(Clone, Default)]
struct Snapshot {
    status: Option<Status>,
    lease_deadline: Option<Instant>,
    health: Option<HealthBody>,
    last_election: Option<SystemTime>,
    stopped: bool,
}

/// The health body the guest returned with a step, read only when a request needs it: most
/// electors serve no health endpoint, and a leader's body changes with every renewal.
#[derive(Clone)]
struct HealthBody {
    json: Vec<u8>,
    read: std::sync::OnceLock<Option<HealthReply>>,
}

impl HealthBody {
    fn new(json: Vec<u8>) -> HealthBody {
        HealthBody { json, read: std::sync::OnceLock::new() }
    }

    /// The body read (once); none if the guest's JSON does not parse, which would be a bug.
    fn reply(&self) -> Option<&HealthReply> {
        self.read.get_or_init(|| HealthReply::parse(&self.json).ok()).as_ref()
    }
}

impl Snapshot {
    fn leading(&self, now: Instant) -> bool {
        self.status.as_ref().is_some_and(|s| s.is_leader) && self.lease_deadline.is_some_and(|d| now < d)
    }
}

/// State shared with the driver task (which must not keep the elector itself alive: dropping
/// every handle stops the election).
struct Shared {
    snapshot: watch::Sender<Snapshot>,
    config: Mutex<ElectorConfig>,
}

enum Command {
    Update(Box<ElectorConfig>, oneshot::Sender<Result<()>>),
    /// Answered with the resignation's outcome.
    Stop(oneshot::Sender<Result<()>>),
}

struct Running {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

struct Inner {
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    running: tokio::sync::Mutex<Option<Running>>,
}

/// One participant in leader election through a lock object in S3 (or any [`Storage`]); Go
/// s3lect's `Elector`. Cheap to clone: clones share the participant. Cancellation is by
/// dropping a future or wrapping it in `tokio::time::timeout`, where Go passes a context.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> s3lect::Result<()> {
/// use s3lect::{Elector, ElectorConfig, MemoryStorage};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let config = ElectorConfig::new("jobs/leader.json", "node-a")
///     .with_timings(Duration::from_millis(200), Duration::from_millis(800), Duration::from_millis(400))?;
/// let elector = Elector::new(config, Arc::new(MemoryStorage::new()))?;
/// elector.start().await?;
/// elector.wait_for_leadership().await?;
/// assert!(elector.is_leader());
/// assert_eq!(elector.status().term, 1);
/// elector.stop().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Elector {
    inner: Arc<Inner>,
}

impl Elector {
    /// A participant that has not joined yet ([`Elector::start`] joins); checks the config.
    pub fn new(config: ElectorConfig, storage: Arc<dyn Storage>) -> Result<Elector> {
        config.validate()?;
        let (snapshot, _) = watch::channel(Snapshot::default());
        Ok(Elector {
            inner: Arc::new(Inner {
                storage,
                shared: Arc::new(Shared { snapshot, config: Mutex::new(config) }),
                running: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The health endpoint's JSON while this instance leads, with the lease left as of now.
    pub fn health_reply(&self) -> Option<Vec<u8>> {
        let s = self.inner.shared.snapshot.borrow();
        let now = Instant::now();
        if !s.leading(now) {
            return None;
        }
        let mut reply = s.health.as_ref()?.reply()?.clone();
        reply.lease_remaining_ms = u64::try_from(s.lease_deadline?.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX);
        Some(reply.to_json())
    }

    /// A subscription to this instance's leadership: [`LeadershipWatch::changed`] resolves
    /// with the new value each time it starts or ends — lease expiry included, which happens
    /// between steps — so an embedder need not poll [`Elector::is_leader`].
    pub fn watch_leadership(&self) -> LeadershipWatch {
        let rx = self.inner.shared.snapshot.subscribe();
        let leading = rx.borrow().leading(Instant::now());
        LeadershipWatch { rx, leading }
    }

    /// Resolves when this instance's leadership ends, or `margin` before its lease could run
    /// out without another renewal, whichever comes first; at once if it does not lead. Each
    /// renewal moves the lease's end, and the wait follows it. Work stopped within `margin` of
    /// this is over before any other instance can lead.
    pub async fn leadership_ending(&self, margin: Duration) {
        let mut rx = self.inner.shared.snapshot.subscribe();
        loop {
            let fence = {
                let s = rx.borrow_and_update();
                let now = Instant::now();
                match s.lease_deadline.filter(|_| s.leading(now)) {
                    None => return,
                    Some(end) => end.checked_sub(margin).unwrap_or(now),
                }
            };
            match tokio::time::timeout_at(fence.into(), rx.changed()).await {
                Ok(Ok(())) => continue,
                // The fence passed, or the elector is gone.
                Err(_) | Ok(Err(_)) => return,
            }
        }
    }

    /// Waits until this instance leads, then runs `task` with a token that is cancelled when
    /// leadership ends or `margin` before the lease could run out unrenewed
    /// ([`Elector::leadership_ending`]); returns what the task returns. For the task's work to
    /// be over before another instance can lead, it must stop within `margin` of the token
    /// firing. `margin` must be below `renew_deadline − frequent_interval`, or a healthy
    /// leader's task would be cancelled between two renewals.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> s3lect::Result<()> {
    /// # use std::{sync::Arc, time::Duration};
    /// # let config = s3lect::ElectorConfig::new("jobs/leader.json", "a")
    /// #     .with_timings(Duration::from_millis(200), Duration::from_millis(800), Duration::from_millis(500))?;
    /// # let elector = s3lect::Elector::new(config, Arc::new(s3lect::MemoryStorage::new()))?;
    /// # elector.start().await?;
    /// let rounds = elector
    ///     .lead(Duration::from_millis(100), |cancelled| async move {
    ///         let mut rounds = 0;
    ///         while !cancelled.is_cancelled() && rounds < 3 {
    ///             rounds += 1; // one unit of the leader's work
    ///             tokio::time::sleep(Duration::from_millis(10)).await;
    ///         }
    ///         rounds
    ///     })
    ///     .await?;
    /// assert_eq!(rounds, 3);
    /// # elector.stop().await
    /// # }
    /// ```
    pub async fn lead<F, Fut>(&self, margin: Duration, task: F) -> Result<Fut::Output>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future,
    {
        let cfg = self.config();
        let room = cfg.renew_deadline.saturating_sub(cfg.frequent_interval);
        if margin >= room {
            return Err(Error::Config(s3lect_guest::ConfigError {
                rule: "leader-task-margin".into(),
                message: format!(
                    "the margin ({} ms) must be below renew-deadline − frequent-interval ({} ms)",
                    margin.as_millis(),
                    room.as_millis()
                ),
            }));
        }
        self.wait_for_leadership().await?;
        let token = CancellationToken::new();
        let work = task(token.clone());
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => return Ok(out),
            () = self.leadership_ending(margin) => token.cancel(),
        }
        Ok(work.await)
    }

    /// Resolves when the health reply would differ from one for `etag`: a renewal, the end of
    /// leadership (including lease expiry), or after `limit`. Powers the long-poll watch.
    /// True when it changed, false when `limit` passed first.
    pub(crate) async fn wait_for_health_change(&self, etag: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut rx = self.inner.shared.snapshot.subscribe();
        loop {
            let wake = {
                let s = rx.borrow_and_update();
                let now = Instant::now();
                if !s.leading(now) || s.health.as_ref().and_then(HealthBody::reply).is_none_or(|h| h.etag != etag) {
                    return true;
                }
                // The lease can end without a new snapshot: wake for that too.
                s.lease_deadline.map_or(deadline, |d| deadline.min(d.into()))
            };
            if tokio::time::timeout_at(wake, rx.changed()).await.is_err() && tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// The configuration in force (Go's `GetConfig`).
    pub fn config(&self) -> ElectorConfig {
        self.inner.shared.config.lock().unwrap().clone()
    }

    /// Checks the config (and the storage's conditional-write support), then joins the election.
    pub async fn start(&self) -> Result<()> {
        let mut running = self.inner.running.lock().await;
        if running.is_some() {
            return Err(Error::AlreadyStarted);
        }
        let cfg = self.config();
        cfg.validate()?;
        let storage = match cfg.check_conditional_writes {
            true => conforming_storage(self.inner.storage.clone(), &cfg.lockfile_path, cfg.startup_budget).await?.0,
            false => self.inner.storage.clone(),
        };
        let runtime = Runtime::shared()?;
        let (stop, stopping) = Stopping::channel();
        let guest = ComponentElector::create(&runtime, host_io(&cfg, &storage, &stopping)?, &cfg.core(), None).await?;
        let (commands, rx) = mpsc::channel(8);
        self.inner.shared.snapshot.send_modify(|s| s.stopped = false);
        let driver = Driver { shared: self.inner.shared.clone(), storage, runtime, stop, stopping };
        let task = tokio::spawn(driver.drive(guest, rx));
        *running = Some(Running { commands, task });
        Ok(())
    }

    /// Leaves the election; a leader runs its lose hook and resigns so followers take over at
    /// once. An error says the resignation could not be written (followers then wait out the
    /// lease).
    pub async fn stop(&self) -> Result<()> {
        let Some(running) = self.inner.running.lock().await.take() else { return Err(Error::NotStarted) };
        let (reply, done) = oneshot::channel();
        let mut outcome = Ok(());
        if running.commands.send(Command::Stop(reply)).await.is_ok() {
            outcome = done.await.unwrap_or(Ok(()));
        }
        let _ = running.task.await;
        outcome
    }

    /// True only while the lease is valid and the acquire hook has succeeded.
    pub fn is_leader(&self) -> bool {
        self.inner.shared.snapshot.borrow().leading(Instant::now())
    }

    /// Resolves when this instance becomes leader.
    pub async fn wait_for_leadership(&self) -> Result<()> {
        let mut rx = self.inner.shared.snapshot.subscribe();
        loop {
            {
                let s = rx.borrow_and_update();
                if s.leading(Instant::now()) {
                    return Ok(());
                }
                if s.stopped {
                    return Err(Error::Stopped);
                }
            }
            rx.changed().await.map_err(|_| Error::Stopped)?;
        }
    }

    /// Resolves after an election step completes later than `since` (None: the first step).
    /// `since = status().last_election_time` waits for the next step.
    pub async fn wait_for_next_election(&self, since: Option<SystemTime>) -> Result<LeadershipStatus> {
        let mut rx = self.inner.shared.snapshot.subscribe();
        loop {
            {
                let s = rx.borrow_and_update();
                if s.last_election.is_some_and(|t| since.is_none_or(|since| t > since)) {
                    drop(s);
                    return Ok(self.status());
                }
                if s.stopped {
                    return Err(Error::Stopped);
                }
            }
            rx.changed().await.map_err(|_| Error::Stopped)?;
        }
    }

    /// The current leader's identity, empty if none is known.
    pub fn leader_id(&self) -> String {
        self.status().leader_id
    }

    /// Everything this participant knows (Go's `GetLeadershipStatus`).
    pub fn status(&self) -> LeadershipStatus {
        let s = self.inner.shared.snapshot.borrow();
        let now = Instant::now();
        let cfg = self.config();
        let Some(st) = &s.status else {
            return LeadershipStatus {
                server_id: cfg.server_id,
                lockfile_path: cfg.lockfile_path,
                is_leader: false,
                leader_id: String::new(),
                leader_addr: String::new(),
                leader_last_seen: None,
                last_election_time: None,
                consecutive_fails: 0,
                term: 0,
                lease_remaining_ms: None,
                last_error: None,
                problem: None,
                server_clock_in_use: false,
            };
        };
        LeadershipStatus::from_core(st, now, s.lease_deadline)
    }

    /// Turns on peer mode, trusting `ca_cert_pem` for the peers' health endpoints.
    pub async fn enable_peer_mode(&self, ca_cert_pem: &[u8]) -> Result<()> {
        let mut cfg = self.config();
        cfg.peer_mode = true;
        cfg.peer_ca_cert = Some(ca_cert_pem.to_vec());
        self.update_config(cfg).await
    }

    /// Validates and applies a new configuration from the next step on.
    pub async fn update_config(&self, config: ElectorConfig) -> Result<()> {
        config.validate()?;
        let running = self.inner.running.lock().await;
        match running.as_ref() {
            Some(r) => {
                let (reply, result) = oneshot::channel();
                r.commands.send(Command::Update(Box::new(config), reply)).await.map_err(|_| Error::Stopped)?;
                result.await.map_err(|_| Error::Stopped)?
            }
            None => {
                *self.inner.shared.config.lock().unwrap() = config;
                Ok(())
            }
        }
    }
}

fn host_io(cfg: &ElectorConfig, storage: &Arc<dyn Storage>, stopping: &Stopping) -> Result<HostIo> {
    let probe = if cfg.peer_mode { Some(Arc::new(PeerProbe::new(cfg.peer_ca_cert.as_deref(), cfg.peer_allow_plain_http)?)) } else { None };
    Ok(HostIo {
        storage: storage.clone(),
        probe,
        on_acquire: cfg.on_acquire_leadership.clone(),
        on_lose: cfg.on_lose_leadership.clone(),
        hook_timeout: cfg.hook_timeout,
        stopping: stopping.clone(),
        metrics: cfg.metrics.clone(),
    })
}

fn wall(ns: i128) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok()
}

/// What the driver task owns besides the guest.
struct Driver {
    shared: Arc<Shared>,
    storage: Arc<dyn Storage>,
    runtime: Arc<Runtime>,
    /// Raises [`Stopping`] inside a step in flight.
    stop: watch::Sender<bool>,
    stopping: Stopping,
}

impl Driver {
    /// Steps when due and applies config updates between steps. A stop request is heard during
    /// a step too: it cuts the step short (see [`Stopping`]), then the elector resigns.
    async fn drive(self, mut guest: ComponentElector, mut commands: mpsc::Receiver<Command>) {
        let mut due = tokio::time::Instant::now();
        loop {
            // A command between steps, or one heard while the due step ran (`None`: none).
            let command = tokio::select! {
                biased;
                command = commands.recv() => Some(command),
                _ = tokio::time::sleep_until(due) => {
                    let (result, command) = self.step_listening(&mut guest, &mut commands).await;
                    due = self.stepped(&mut guest, result).await;
                    command
                }
            };
            match command {
                Some(Some(Command::Update(cfg, reply))) => {
                    let _ = reply.send(self.apply_config(&mut guest, *cfg).await);
                }
                Some(Some(Command::Stop(reply))) => return self.leave(&mut guest, Some(reply)).await,
                // Every handle to the elector was dropped: leave the election cleanly.
                Some(None) => return self.leave(&mut guest, None).await,
                None => {}
            }
        }
    }

    /// Runs one step while listening for one command; a stop (or every handle dropped) raises
    /// the stop flag at once, other commands wait for the step to end.
    async fn step_listening(
        &self,
        guest: &mut ComponentElector,
        commands: &mut mpsc::Receiver<Command>,
    ) -> (Result<Outcome>, Option<Option<Command>>) {
        let step = guest.step();
        tokio::pin!(step);
        let mut command = None;
        loop {
            tokio::select! {
                result = &mut step => return (result, command),
                c = commands.recv(), if command.is_none() => {
                    if matches!(c, Some(Command::Stop(_)) | None) {
                        self.stop.send_replace(true);
                    }
                    command = Some(c);
                }
            }
        }
    }

    /// Publishes a step's outcome; returns when the next step is due.
    async fn stepped(&self, guest: &mut ComponentElector, result: Result<Outcome>) -> tokio::time::Instant {
        let frequent = self.shared.config.lock().unwrap().frequent_interval;
        match result {
            Ok(outcome) => {
                // Mapped once: what the host reports as the lease's end is what the slack keeps.
                let lease_deadline = outcome.status.lease_until.map(clock::instant_of);
                let due = timer_slack::due(tokio::time::Instant::now(), outcome.next_step, lease_deadline.map(Into::into));
                // A step cut short by a stop reports the request it did not send: not a problem.
                let stopping = *self.stop.borrow();
                publish(&self.shared, outcome, lease_deadline, stopping);
                due
            }
            Err(e) => {
                // A trapped instance cannot be entered again: start a fresh one, which knows
                // nothing and so can only be slower to take over, never faster.
                tracing::error!(error = %e, "election step failed; restarting the component instance");
                let cfg = self.shared.config.lock().unwrap().clone();
                let fresh = match host_io(&cfg, &self.storage, &self.stopping) {
                    Ok(io) => ComponentElector::create(&self.runtime, io, &cfg.core(), None).await,
                    Err(e) => Err(e),
                };
                match fresh {
                    Ok(g) => *guest = g,
                    Err(e) => tracing::error!(error = %e, "could not restart the component instance"),
                }
                self.shared.snapshot.send_modify(|s| {
                    s.lease_deadline = None;
                    if let Some(st) = s.status.as_mut() {
                        st.is_leader = false;
                        st.last_error = Some(format!("election step failed: {e}"));
                    }
                });
                tokio::time::Instant::now() + frequent
            }
        }
    }

    async fn apply_config(&self, guest: &mut ComponentElector, cfg: ElectorConfig) -> Result<()> {
        let io = host_io(&cfg, &self.storage, &self.stopping)?;
        guest.update_config(&cfg.core()).await?;
        guest.set_io(io);
        *self.shared.config.lock().unwrap() = cfg;
        Ok(())
    }

    /// Resigns (with the stop flag lowered: the resignation must be written) and ends.
    async fn leave(self, guest: &mut ComponentElector, reply: Option<oneshot::Sender<Result<()>>>) {
        self.stop.send_replace(false);
        let outcome = resign(&self.shared, guest).await;
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
}

/// Leaves the election; an error if a leader's resignation could not be written (followers
/// then wait out its lease instead of taking over at once).
async fn resign(shared: &Shared, guest: &mut ComponentElector) -> Result<()> {
    let before = guest.status().await.ok().and_then(|s| s.last_error);
    let status = guest.resign().await;
    let outcome = match &status {
        Err(e) => Err(Error::Resign { problem: format!("resigning failed ({})", crate::error::chain(e)) }),
        // The core reports a failed resignation write as its newest problem.
        Ok(st) => match (&st.problem, &st.last_error) {
            (Some(ProblemKind::Resign), Some(e)) if st.last_error != before => Err(Error::Resign { problem: e.clone() }),
            _ => Ok(()),
        },
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "leaving the election");
    }
    shared.snapshot.send_modify(|s| {
        if let Ok(st) = status {
            s.status = Some(st);
        }
        s.lease_deadline = None;
        s.health = None;
        s.stopped = true;
    });
    tracing::info!("left the election");
    outcome
}

/// Publishes `o`, whose lease (if it leads) ends at `lease_deadline` in host time.
fn publish(shared: &Shared, o: Outcome, lease_deadline: Option<Instant>, stopping: bool) {
    let last_election = o.status.last_election_unix_ns.and_then(wall).map(SystemTime::from);
    let metrics = shared.config.lock().unwrap().metrics.clone();
    shared.snapshot.send_modify(|s| {
        let before = s.status.take();
        log_transition(before.as_ref(), &o.status, stopping);
        if let Some(m) = &metrics {
            let was = before.as_ref().is_some_and(|b| b.is_leader);
            let remaining = lease_deadline.map(|d| d.saturating_duration_since(Instant::now()));
            m.leadership(&o.status.lockfile_path, was, &o.status, remaining);
        }
        s.status = Some(o.status);
        s.lease_deadline = lease_deadline;
        s.health = o.health.map(HealthBody::new);
        // The guest's own timestamp, the one `LeadershipStatus::last_election_time` reports:
        // passing that back as `since` then waits for the next step.
        s.last_election = last_election.or_else(|| Some(SystemTime::now()));
    });
}

fn log_transition(before: Option<&Status>, now: &Status, stopping: bool) {
    let was_leader = before.is_some_and(|b| b.is_leader);
    match (was_leader, now.is_leader) {
        (false, true) => tracing::info!(term = now.term, server = %now.server_id, "became leader"),
        (true, false) => tracing::warn!(term = before.map(|b| b.term), server = %now.server_id, "lost leadership"),
        _ => {}
    }
    if !now.is_leader && before.is_none_or(|b| b.leader_id != now.leader_id) && !now.leader_id.is_empty() {
        tracing::info!(leader = %printable(&now.leader_id), term = now.term, "leader observed");
    }
    if now.server_clock_in_use && before.is_none_or(|b| !b.server_clock_in_use) {
        tracing::info!(server = %now.server_id, "judging staleness by the storage server's clock too");
    }
    if now.last_error.is_some() && before.is_none_or(|b| b.last_error != now.last_error) && !stopping {
        tracing::warn!(problem = %printable(now.last_error.as_deref().unwrap_or_default()), "election problem");
    }
}
