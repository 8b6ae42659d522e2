//! What the host does for an elector's actions: storage requests, peer probes and hooks, each
//! bounded by its timeout, counted in the metrics, and cut short by a stop request.

use crate::hooks::{Hook, HookEvent};
use crate::metrics::Metrics;
use crate::probe::PeerProbe;
use crate::storage::{Condition, Storage};
use s3lect_guest::{Object, ProbeReply, StorageError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What an elector's actions reach: storage, the peer probe, the hooks.
#[derive(Clone)]
pub struct HostIo {
    /// Where the lock object lives.
    pub storage: Arc<dyn Storage>,
    /// The peer probe, in peer mode.
    pub probe: Option<Arc<PeerProbe>>,
    /// Runs when this instance won the lock object; an error resigns.
    pub on_acquire: Option<Hook>,
    /// Runs when leadership ends.
    pub on_lose: Option<Hook>,
    /// Longest a hook may run.
    pub hook_timeout: Duration,
    /// Raised when the elector is asked to stop: see [`Stopping`].
    pub stopping: Stopping,
    /// Where requests, probes and hooks are counted, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
}

/// A stop request reaching into a step in flight. While raised, the step sends nothing new —
/// no read, no probe, no write, no acquire hook — and reads and probes in flight are abandoned,
/// so a stopping elector never claims and never starts to lead, and leaves at once. A write
/// already sent is let finish (bounded by its timeout): abandoning it would leave its outcome
/// unknown. The resignation that follows runs with the flag lowered.
#[derive(Clone, Debug)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    /// A flag that is never raised.
    pub fn never() -> Stopping {
        Stopping(tokio::sync::watch::channel(false).1)
    }

    /// A flag and the sender that raises (`true`) or lowers it.
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Stopping) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Stopping(rx))
    }

    fn raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Runs `work` unless the flag is (or gets) raised first; `None` then.
    async fn unless<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        if self.raised() {
            return None;
        }
        let mut rx = self.0.clone();
        let raised = async move {
            // A flag whose sender is gone can never be raised.
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            _ = raised => None,
            r = work => Some(r),
        }
    }
}

const NOT_SENT: &str = "the elector is stopping: request not sent";

fn timed_out(what: &str, ms: u64) -> StorageError {
    StorageError::Unavailable(format!("{what} timed out after {ms} ms"))
}

impl HostIo {
    /// Storage only: no probe, no hooks.
    pub fn new(storage: Arc<dyn Storage>) -> HostIo {
        HostIo {
            storage,
            probe: None,
            on_acquire: None,
            on_lose: None,
            hook_timeout: Duration::from_secs(10),
            stopping: Stopping::never(),
            metrics: None,
        }
    }

    pub(crate) async fn get(&self, key: &str, timeout_ms: u64) -> Result<Object, StorageError> {
        let get = tokio::time::timeout(Duration::from_millis(timeout_ms), self.storage.get_object(key));
        let started = Instant::now();
        let r = match self.stopping.unless(get).await {
            None => return Err(StorageError::Unavailable(NOT_SENT.into())),
            Some(Err(_)) => Err(timed_out("GET", timeout_ms)),
            Some(Ok(r)) => r,
        };
        if let Some(m) = &self.metrics {
            m.request("get", started.elapsed(), &r);
        }
        r
    }

    pub(crate) async fn put(&self, key: &str, data: &[u8], etag: Option<&str>, timeout_ms: u64) -> Result<String, StorageError> {
        if self.stopping.raised() {
            return Err(StorageError::Unavailable(NOT_SENT.into()));
        }
        let put = self.storage.put_if_match(key, data, Condition::from_etag(etag));
        let started = Instant::now();
        let r = match tokio::time::timeout(Duration::from_millis(timeout_ms), put).await {
            Err(_) => Err(timed_out("PUT", timeout_ms)),
            Ok(r) => r,
        };
        if let Some(m) = &self.metrics {
            m.request("put", started.elapsed(), &r);
        }
        r
    }

    pub(crate) async fn probe(&self, addr: &str, path: &str, timeout_ms: u64, pin: Option<&str>) -> Result<ProbeReply, String> {
        let Some(probe) = &self.probe else { return Err("peer mode has no probe configured".into()) };
        let reply = self
            .stopping
            .unless(probe.probe(addr, path, Duration::from_millis(timeout_ms), pin))
            .await
            .map(|r| r.map_err(|e| e.to_string()));
        if let (Some(m), Some(r)) = (&self.metrics, &reply) {
            m.probe(match r {
                Ok(ProbeReply::Leader(_)) => "leader",
                Ok(ProbeReply::NotLeader) => "not_leader",
                Err(_) => "failed",
            });
        }
        reply.unwrap_or_else(|| Err(NOT_SENT.into()))
    }

    pub(crate) async fn acquire_hook(&self, term: u64, leader_id: String) -> Result<(), String> {
        if self.stopping.raised() {
            return Err("the elector is stopping: not taking up leadership".into());
        }
        self.run_hook(self.on_acquire.as_ref(), "acquire", HookEvent { term, leader_id }).await
    }

    pub(crate) async fn lose_hook(&self, term: u64, leader_id: String) -> Result<(), String> {
        self.run_hook(self.on_lose.as_ref(), "lose", HookEvent { term, leader_id }).await
    }

    /// Runs `hook` (labelled `which` in the metrics) within the hook timeout.
    async fn run_hook(&self, hook: Option<&Hook>, which: &'static str, event: HookEvent) -> Result<(), String> {
        let Some(hook) = hook else { return Ok(()) };
        let started = Instant::now();
        let r = match tokio::time::timeout(self.hook_timeout, hook(event)).await {
            Err(_) => Err(format!("hook did not finish within {} ms", self.hook_timeout.as_millis())),
            Ok(r) => r.map_err(|e| crate::error::chain(e.as_ref())),
        };
        if let Some(m) = &self.metrics {
            m.hook(which, started.elapsed(), r.is_ok());
        }
        r
    }
}
