//! The start-up conformance check against a real SeaweedFS, directly and behind the fault proxy:
//! it passes through transient weather, detects Ceph's quoted-etag quirk and adapts, and fails
//! only for definite misbehaviour, naming it.

use s3lect_testkit as common;

use common::fake_s3::fake_s3;
use common::fault_proxy::{Fault, Plan, fault_proxy};
use common::{seaweed, storage};
use s3lect::Condition;
use s3lect::storage::{ConformanceError, EtagForm, Violation, check_conditional_writes};
use s3lect::{S3Config, S3Storage, Storage, StorageError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const LOCK: &str = "group/leader.json";
const BUDGET: Duration = Duration::from_secs(30);

fn upstream(server: &common::local_s3::LocalS3) -> SocketAddr {
    server.endpoint.trim_start_matches("http://").parse().unwrap()
}

fn via(server: &common::local_s3::LocalS3, endpoint: String) -> S3Storage {
    let cfg = S3Config { endpoint: Some(endpoint), request_timeout: Duration::from_secs(2), ..server.s3_config() };
    S3Storage::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_passes_with_etags_as_returned_and_keeps_one_scratch_object() {
    let server = seaweed("conformance-pass").await;
    let s3 = storage(&server);
    for _ in 0..2 {
        let found = check_conditional_writes(&s3, LOCK, BUDGET).await.expect("SeaweedFS enforces conditional writes");
        assert_eq!(found.if_match, EtagForm::AsReturned);
    }
    assert_eq!(s3.get(LOCK).await, Err(StorageError::NotFound), "the lock object is not touched");
    assert!(s3.get(&format!("{LOCK}.s3lect-conformance")).await.is_ok(), "one fixed scratch key, reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_quoted_etags_is_detected_and_the_unquoted_form_chosen() {
    let server = seaweed("conformance-ceph").await;
    let proxy = fault_proxy(upstream(&server), Arc::new(|_: &http::request::Parts| Fault::Pass) as Plan).await;
    proxy.ceph_quirk.store(true, Ordering::SeqCst);
    let s3 = via(&server, proxy.endpoint());
    let found = check_conditional_writes(&s3, LOCK, BUDGET).await.expect("usable once etags go unquoted");
    assert_eq!(found.if_match, EtagForm::Unquoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_every_correct_if_match_is_refused_by_name() {
    let server = seaweed("conformance-stall").await;
    let plan: Plan = Arc::new(
        |p: &http::request::Parts| {
            if p.headers.contains_key("if-match") { Fault::Answer(412, "PreconditionFailed") } else { Fault::Pass }
        },
    );
    let proxy = fault_proxy(upstream(&server), plan).await;
    let s3 = via(&server, proxy.endpoint());
    let err = check_conditional_writes(&s3, LOCK, BUDGET).await.unwrap_err();
    assert!(matches!(err, ConformanceError::NotEnforced(Violation::CorrectIfMatchRefused { .. })), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refused If-Match with the object's current etag") && text.contains("both quoted and unquoted"), "{text}");
}

#[tokio::test]
async fn a_server_that_ignores_conditions_is_refused_by_name() {
    let fake = fake_s3(200, "").await;
    let s3 = S3Storage::new(common::fake_s3::config_for(format!("http://{}", fake.addr))).unwrap();
    let err = check_conditional_writes(&s3, LOCK, BUDGET).await.unwrap_err();
    assert!(matches!(err, ConformanceError::NotEnforced(Violation::SecondCreateAccepted)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not enforce conditional writes") && text.contains("If-None-Match"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_of_every_kind_are_retried_within_the_budget() {
    let server = seaweed("conformance-weather").await;
    // The first requests each meet a different fault; then the weather clears.
    let faults = [
        Fault::Answer(500, "InternalError"),
        Fault::Answer(503, "SlowDown"),
        Fault::Answer(409, "ConditionalRequestConflict"),
        Fault::Reset,
        Fault::Truncate,
        Fault::ApplyThenCut,
        Fault::Delay(Duration::from_millis(2_500)),
        Fault::ApplyThenCut,
        Fault::Answer(503, "SlowDown"),
        Fault::Reset,
    ];
    let n = Arc::new(AtomicU32::new(0));
    let plan: Plan =
        Arc::new(move |_: &http::request::Parts| faults.get(n.fetch_add(1, Ordering::SeqCst) as usize).cloned().unwrap_or(Fault::Pass));
    let proxy = fault_proxy(upstream(&server), plan).await;
    let s3 = via(&server, proxy.endpoint());
    let start = Instant::now();
    let found = check_conditional_writes(&s3, LOCK, BUDGET).await.expect("weather is not a verdict");
    assert_eq!(found.if_match, EtagForm::AsReturned);
    println!("passed through {:?} in {:?}", proxy.counts(), start.elapsed());
    assert!(proxy.counts().len() >= 8, "every kind of fault was met: {:?}", proxy.counts());
}

/// A transient error on the second create (which a correct server refuses) must not read as
/// "accepted": the object then holds the first create's bytes, which are ours but not this
/// write's. (Seen in the bad-weather test as a refused, conforming SeaweedFS.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_second_create_is_not_mistaken_for_an_accepted_one() {
    let server = seaweed("conformance-second-create").await;
    let creates = Arc::new(AtomicU32::new(0));
    let plan: Plan = Arc::new(move |p: &http::request::Parts| {
        let create = p.method == http::Method::PUT && p.headers.contains_key("if-none-match");
        if create && creates.fetch_add(1, Ordering::SeqCst) == 1 { Fault::Answer(503, "SlowDown") } else { Fault::Pass }
    });
    let proxy = fault_proxy(upstream(&server), plan).await;
    let s3 = via(&server, proxy.endpoint());
    let found = check_conditional_writes(&s3, LOCK, BUDGET).await.expect("a conforming server behind one 503");
    assert_eq!(found.if_match, EtagForm::AsReturned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stays_down_is_reported_as_down_after_the_budget_not_as_nonconforming() {
    let server = seaweed("conformance-down").await;
    let proxy = fault_proxy(upstream(&server), Arc::new(|_: &http::request::Parts| Fault::Answer(503, "SlowDown")) as Plan).await;
    let s3 = via(&server, proxy.endpoint());
    let start = Instant::now();
    let err = check_conditional_writes(&s3, LOCK, Duration::from_secs(3)).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "gave up at its budget: {:?}", start.elapsed());
    let text = err.to_string();
    assert!(matches!(err, ConformanceError::GaveUp { .. }), "{err:?}");
    assert!(text.contains("kept failing") && text.contains("SlowDown") && !text.contains("does not enforce"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_on_one_lock_object_all_pass() {
    let server = seaweed("conformance-concurrent").await;
    let s3 = Arc::new(storage(&server));
    let checks: Vec<_> = (0..6)
        .map(|_| {
            let s3 = s3.clone();
            tokio::spawn(async move { check_conditional_writes(s3.as_ref(), LOCK, BUDGET).await })
        })
        .collect();
    for c in checks {
        let found = c.await.unwrap().expect("a concurrent check is not a misbehaving server");
        assert_eq!(found.if_match, EtagForm::AsReturned);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_at_once_with_the_servers_words() {
    let server = seaweed("conformance-denied").await;
    let cfg = S3Config { secret_access_key: "wrong".into(), ..server.s3_config() };
    let s3 = S3Storage::new(cfg).unwrap();
    let start = Instant::now();
    let err = check_conditional_writes(&s3, LOCK, BUDGET).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "no retrying a definite error");
    assert!(matches!(err, ConformanceError::Storage { source: StorageError::Denied(_), .. }), "{err:?}");
    assert!(err.to_string().contains("cannot read the lock object"), "{err}");
}

/// Old MinIO releases created the object on `If-Match` when the key did not exist: a storage
/// with that bug, over the in-memory store.
struct CreatesOnIfMatch(s3lect::storage::MemoryStorage);

impl Storage for CreatesOnIfMatch {
    fn get<'a>(&'a self, key: &'a str) -> s3lect::storage::BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        self.0.get(key)
    }
    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        data: &'a [u8],
        condition: Condition<'a>,
    ) -> s3lect::storage::BoxFuture<'a, Result<String, StorageError>> {
        Box::pin(async move {
            match self.0.put_if_match(key, data, condition).await {
                Err(StorageError::NotFound) => self.0.put_if_match(key, data, Condition::Absent).await,
                other => other,
            }
        })
    }
    fn delete<'a>(&'a self, key: &'a str) -> s3lect::storage::BoxFuture<'a, Result<(), StorageError>> {
        self.0.delete(key)
    }
}

#[tokio::test]
async fn a_server_that_creates_objects_on_if_match_is_refused_by_name() {
    let s = CreatesOnIfMatch(s3lect::storage::MemoryStorage::new());
    let err = check_conditional_writes(&s, LOCK, BUDGET).await.unwrap_err();
    assert!(matches!(err, ConformanceError::NotEnforced(Violation::IfMatchOnMissingKeyAccepted { .. })), "{err:?}");
    assert!(err.to_string().contains("If-Match on a key that does not exist"), "{err}");
    // Honest storage passes the same check.
    let ok = s3lect::storage::MemoryStorage::new();
    assert_eq!(check_conditional_writes(&ok, LOCK, BUDGET).await.unwrap().if_match, EtagForm::AsReturned);
}
