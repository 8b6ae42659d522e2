//! The S3 adapter against a real SeaweedFS server: SigV4-signed requests, conditional writes,
//! and the mapping of every S3 answer to the error the election acts on.

use s3lect_testkit as common;

use common::fake_s3::{config_for, fake_s3, fake_s3_with};
use common::{seaweed, storage};
use s3lect::Condition;
use s3lect::{S3Storage, Storage, StorageError};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_and_conditional_writes_map_to_the_right_errors() {
    let server = seaweed("s3-mapping").await;
    let s3 = storage(&server);
    let key = "group/leader.json";

    assert_eq!(s3.get(key).await, Err(StorageError::NotFound), "missing key is NotFound (NoSuchKey)");
    let e1 = s3.put_if_match(key, b"one", Condition::Absent).await.expect("signed create accepted");
    assert!(e1.starts_with('"') && e1.ends_with('"'), "etag kept exactly as sent, quotes included: {e1}");
    assert_eq!(s3.get(key).await.unwrap(), (b"one".to_vec(), e1.clone()));
    assert_eq!(s3.put_if_match(key, b"two", Condition::Absent).await, Err(StorageError::PreconditionFailed), "If-None-Match on existing");
    assert_eq!(
        s3.put_if_match(key, b"two", Condition::Matches("\"0123456789abcdef0123456789abcdef\"")).await,
        Err(StorageError::PreconditionFailed),
        "stale If-Match"
    );
    let e2 = s3.put_if_match(key, b"two", Condition::Matches(&e1)).await.expect("If-Match on the current etag");
    assert_ne!(e1, e2);
    assert_eq!(s3.get(key).await.unwrap().0, b"two");
    // AWS answers 404 here, SeaweedFS 412: both mean "not the object you think".
    let missing = s3.put_if_match("group/absent.json", b"x", Condition::Matches(&e2)).await;
    assert!(matches!(missing, Err(StorageError::NotFound | StorageError::PreconditionFailed)), "{missing:?}");
    // Keys with characters that need URI encoding are signed correctly.
    let odd = "group/with space+plus=é.json";
    s3.put_if_match(odd, b"x", Condition::Absent).await.expect("encoded key accepted");
    assert_eq!(s3.get(odd).await.unwrap().0, b"x");
    s3.delete(odd).await.unwrap();
    assert_eq!(s3.get(odd).await, Err(StorageError::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creates_and_replaces_have_exactly_one_winner() {
    let server = seaweed("s3-races").await;
    let s3 = Arc::new(storage(&server));
    for round in 0..8 {
        let key = format!("race/{round}.json");
        let results = futures_join(s3.clone(), key.clone(), None, "create").await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "creates, round {round}: {results:?}");
        let etag = s3.get(&key).await.unwrap().1;
        let results = futures_join(s3.clone(), key, Some(etag), "replace").await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "replaces, round {round}: {results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(_) | Err(StorageError::PreconditionFailed | StorageError::Conflict))));
    }
}

/// Three concurrent writes of distinct bytes. (Distinct from the previous content too: S3
/// etags are content hashes, so rewriting identical bytes would keep the etag and let a second
/// If-Match succeed legitimately — which is why every s3lect record carries a nonce.)
async fn futures_join(s3: Arc<S3Storage>, key: String, etag: Option<String>, what: &'static str) -> Vec<Result<String, StorageError>> {
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (s3, key, etag) = (s3.clone(), key.clone(), etag.clone());
            tokio::spawn(
                async move { s3.put_if_match(&key, format!("{what} {i}").as_bytes(), Condition::from_etag(etag.as_deref())).await },
            )
        })
        .collect();
    let mut out = vec![];
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_missing_bucket_are_named() {
    let server = seaweed("s3-auth").await;
    let mut cfg = server.s3_config();
    cfg.secret_access_key = "wrong-secret".into();
    let bad = S3Storage::new(cfg).unwrap();
    match bad.get("k").await {
        Err(StorageError::Denied(msg)) => assert!(msg.contains("SignatureDoesNotMatch") || msg.contains("AccessDenied"), "{msg}"),
        other => panic!("wrong secret must be Denied, got {other:?}"),
    }
    let mut cfg = server.s3_config();
    cfg.bucket = "no-such-bucket".into();
    let nobucket = S3Storage::new(cfg).unwrap();
    // GET is what an elector does first; SeaweedFS (unlike AWS) would create the bucket on PUT.
    match nobucket.get("k").await {
        Err(StorageError::Invalid(msg)) => assert!(msg.contains("no-such-bucket") && msg.contains("does not exist"), "{msg}"),
        other => panic!("a missing bucket must be named, got {other:?}"),
    }
}

#[tokio::test]
async fn error_answers_map_to_conflict_unavailable_and_denied_with_the_servers_words() {
    let conflict = fake_s3(409, "<Error><Code>ConditionalRequestConflict</Code><Message>retry</Message></Error>").await;
    let s3 = S3Storage::new(config_for(format!("http://{}", conflict.addr))).unwrap();
    assert_eq!(s3.put_if_match("k", b"x", Condition::Matches("\"e\"")).await, Err(StorageError::Conflict));

    let busy = fake_s3(503, "<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>").await;
    let s3 = S3Storage::new(config_for(format!("http://{}", busy.addr))).unwrap();
    assert_eq!(
        s3.get("k").await,
        Err(StorageError::Unavailable("SlowDown: Reduce your request rate (HTTP 503 Service Unavailable)".into()))
    );

    let denied = fake_s3(403, "<Error><Code>AccessDenied</Code><Message>no PutObject for you</Message></Error>").await;
    let s3 = S3Storage::new(config_for(format!("http://{}", denied.addr))).unwrap();
    assert_eq!(
        s3.put_if_match("k", b"x", Condition::Absent).await,
        Err(StorageError::Denied("AccessDenied: no PutObject for you (HTTP 403 Forbidden)".into()))
    );

    // Nothing listens here: a connection error is transient, and says what failed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s3 = S3Storage::new(config_for(format!("http://{closed}"))).unwrap();
    match s3.get("k").await {
        Err(StorageError::Unavailable(msg)) => assert!(msg.to_lowercase().contains("connect"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

/// A redirect (S3 sends 307 for a bucket still settling in its region) is reported as the
/// server's error, and the request is not re-sent to the address it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_reported_and_not_followed() {
    let elsewhere = fake_s3(200, "").await;
    let location = vec![("Location", format!("http://{}/b/k", elsewhere.addr))];
    let body =
        "<Error><Code>TemporaryRedirect</Code><Message>Please re-send this request to the specified temporary endpoint.</Message></Error>";
    let redirecting = fake_s3_with(307, location, body).await;
    let s3 = S3Storage::new(config_for(format!("http://{}", redirecting.addr))).unwrap();
    match s3.put_if_match("k", b"x", Condition::Absent).await {
        Err(StorageError::Invalid(msg)) => assert!(msg.contains("TemporaryRedirect") && msg.contains("307"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(elsewhere.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "the redirect was followed");
}

/// Many electors sharing one client open at most `MAX_IN_FLIGHT` connections: against a server
/// that accepts and never answers, of 300 requests at once the first `MAX_IN_FLIGHT` connect at
/// once and the rest only when those have timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_capped_per_client() {
    use s3lect::storage::MAX_IN_FLIGHT;
    use std::time::{Duration, Instant};
    let timeout = Duration::from_secs(3);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let log = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = listener.accept().await {
            log.lock().unwrap().push(Instant::now());
            held.push(socket);
        }
    });
    let cfg = s3lect::S3Config {
        endpoint: Some(format!("http://{addr}")),
        path_style: true,
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        request_timeout: timeout,
        ..s3lect::S3Config::for_bucket("cap")
    };
    let s3 = Arc::new(S3Storage::new(cfg).unwrap());
    let sent = MAX_IN_FLIGHT + 44;
    let requests: Vec<_> = (0..sent)
        .map(|i| {
            let s3 = s3.clone();
            tokio::spawn(async move { s3.get(&format!("g/{i}.json")).await })
        })
        .collect();
    for r in requests {
        assert!(matches!(r.await.unwrap(), Err(StorageError::Unavailable(_))), "a request to a silent server times out");
    }
    server.abort();
    let accepted = accepted.lock().unwrap();
    assert_eq!(accepted.len(), sent, "every request connected in the end");
    let first_wave = accepted[MAX_IN_FLIGHT - 1] - accepted[0];
    let waited = accepted[MAX_IN_FLIGHT] - accepted[0];
    assert!(first_wave < timeout / 2, "the first {MAX_IN_FLIGHT} connect at once: {first_wave:?}");
    // A permit frees when a first-wave request times out, `timeout` after it was sent.
    assert!(
        waited >= timeout - Duration::from_millis(500),
        "request {} connects only once a permit is free: {waited:?}",
        MAX_IN_FLIGHT + 1
    );
}
