//! Prometheus metrics of the election (`prometheus-client`). Register them once in a registry
//! of your own — [`Metrics::register`] — and hand the same [`Metrics`] to each elector through
//! [`ElectorConfig::metrics`](crate::ElectorConfig::metrics); the `s3lect` command serves them
//! on `--metrics-bind`. Leadership metrics carry the lock object as label `lock`.

use crate::storage::StorageError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use s3lect_guest::Status;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lock {
    lock: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transition {
    lock: String,
    /// `acquired` or `lost`.
    change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    /// `get` or `put`.
    operation: &'static str,
    /// `ok`, `not_found`, `precondition_failed`, `conflict`, `unavailable`, `denied`, `invalid`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    /// Probes: `leader`, `not_leader`, `failed`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabel {
    /// `acquire` or `lose`.
    hook: &'static str,
}

fn latency_buckets() -> Histogram {
    // 1 ms … 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The election's metrics; cheap to share (`Arc`).
pub struct Metrics {
    is_leader: Family<Lock, Gauge>,
    term: Family<Lock, Gauge>,
    lease_remaining: Family<Lock, Gauge<f64, AtomicU64>>,
    server_clock_in_use: Family<Lock, Gauge>,
    transitions: Family<Transition, Counter>,
    requests: Family<Request, Counter>,
    request_seconds: Family<Operation, Histogram, fn() -> Histogram>,
    probes: Family<Outcome, Counter>,
    hook_seconds: Family<HookLabel, Histogram, fn() -> Histogram>,
    hook_failures: Family<HookLabel, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` (names start with `s3lect_`).
    pub fn register(registry: &mut Registry) -> Arc<Metrics> {
        let m = Metrics {
            is_leader: Family::default(),
            term: Family::default(),
            lease_remaining: Family::default(),
            server_clock_in_use: Family::default(),
            transitions: Family::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            probes: Family::default(),
            hook_seconds: Family::new_with_constructor(latency_buckets),
            hook_failures: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("s3lect");
        r.register("is_leader", "1 while this instance leads (lease valid, acquire hook done)", m.is_leader.clone());
        r.register("term", "Fencing term of the current or last known leadership", m.term.clone());
        r.register("lease_remaining_seconds", "Lease left as of the last step, while leading", m.lease_remaining.clone());
        r.register(
            "server_clock_in_use",
            "1 while a follower may judge staleness by the storage server's clock (declared, or checked)",
            m.server_clock_in_use.clone(),
        );
        r.register("leadership_transitions", "Leaderships acquired and lost", m.transitions.clone());
        r.register("s3_requests", "Storage requests by operation and outcome", m.requests.clone());
        r.register("s3_request_duration_seconds", "Storage request latency", m.request_seconds.clone());
        r.register("probes", "Peer probes and watches by outcome", m.probes.clone());
        r.register("hook_duration_seconds", "Hook run time", m.hook_seconds.clone());
        r.register("hook_failures", "Hooks that failed or overran", m.hook_failures.clone());
        Arc::new(m)
    }

    /// A storage request and how it ended.
    pub(crate) fn request<T>(&self, operation: &'static str, took: Duration, r: &Result<T, StorageError>) {
        let outcome = match r {
            Ok(_) => "ok",
            Err(StorageError::NotFound) => "not_found",
            Err(StorageError::PreconditionFailed) => "precondition_failed",
            Err(StorageError::Conflict) => "conflict",
            Err(StorageError::Unavailable(_)) => "unavailable",
            Err(StorageError::Denied(_)) => "denied",
            Err(StorageError::Invalid(_)) => "invalid",
        };
        self.requests.get_or_create(&Request { operation, outcome }).inc();
        self.request_seconds.get_or_create(&Operation { operation }).observe(took.as_secs_f64());
    }

    pub(crate) fn probe(&self, outcome: &'static str) {
        self.probes.get_or_create(&Outcome { outcome }).inc();
    }

    pub(crate) fn hook(&self, hook: &'static str, took: Duration, ok: bool) {
        self.hook_seconds.get_or_create(&HookLabel { hook }).observe(took.as_secs_f64());
        if !ok {
            self.hook_failures.get_or_create(&HookLabel { hook }).inc();
        }
    }

    /// What a step concluded about this instance.
    pub(crate) fn leadership(&self, lock: &str, was_leading: bool, st: &Status, lease_remaining: Option<Duration>) {
        let (leading, term) = (st.is_leader, st.term);
        let l = Lock { lock: lock.to_string() };
        self.server_clock_in_use.get_or_create(&l).set(i64::from(st.server_clock_in_use));
        self.is_leader.get_or_create(&l).set(i64::from(leading));
        self.term.get_or_create(&l).set(i64::try_from(term).unwrap_or(i64::MAX));
        self.lease_remaining.get_or_create(&l).set(lease_remaining.filter(|_| leading).map_or(0.0, |d| d.as_secs_f64()));
        if leading != was_leading {
            let change = if leading { "acquired" } else { "lost" };
            self.transitions.get_or_create(&Transition { lock: lock.to_string(), change }).inc();
        }
    }
}

/// The registry in Prometheus' text format (what a scrape returns).
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("writing to a String cannot fail");
    text
}
