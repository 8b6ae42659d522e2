//! The peer health endpoint over real TLS (a CA and certificate generated with rcgen), the
//! embeddable handler, and peer mode: followers probe the leader instead of reading S3.

use s3lect_testkit as common;

use common::{seaweed, storage, wait_until};
use s3lect::tls::{self, GeneratedPki};
use s3lect::{Elector, ElectorConfig, HealthServer, HealthServerConfig, LeaderRecord, MockStorage, Storage, leadership_handler};
use s3lect_guest::HealthReply;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(id: &str, lock: &str) -> ElectorConfig {
    ElectorConfig {
        lockfile_path: lock.into(),
        server_id: id.into(),
        frequent_interval: Duration::from_millis(1000),
        infrequent_interval: Duration::from_millis(1000),
        renew_deadline: Duration::from_millis(2500),
        leader_timeout: Duration::from_millis(3000),
        peer_timeout: Duration::from_millis(500),
        ..ElectorConfig::default()
    }
}

fn client(ca: Option<&str>) -> reqwest::Client {
    let cfg = tls::client_config(ca.map(str::as_bytes), false).unwrap();
    reqwest::Client::builder().tls_backend_preconfigured(cfg).build().unwrap()
}

/// An elector with its HTTPS health server bound to a free port, advertising that address.
async fn node(
    id: &str,
    lock: &str,
    storage: Arc<dyn Storage>,
    pki: &GeneratedPki,
    tune: impl FnOnce(&mut ElectorConfig),
) -> (Elector, HealthServer, String) {
    let mut cfg = config(id, lock);
    tune(&mut cfg);
    let elector = Elector::new(cfg.clone(), storage).unwrap();
    let server = HealthServer::new(HealthServerConfig {
        bind_address: "127.0.0.1:0".into(),
        cert_pem: pki.server_cert_pem.clone().into_bytes(),
        key_pem: pki.server_key_pem.clone().into_bytes(),
        elector: elector.clone(),
    })
    .unwrap();
    let addr = server.start().await.unwrap().to_string();
    cfg.server_addr = addr.clone();
    elector.update_config(cfg).await.unwrap();
    (elector, server, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoint_answers_200_for_the_leader_404_for_a_follower_405_for_other_methods() {
    let pki = tls::generate_pki(&["127.0.0.1", "localhost"]).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(MockStorage::new_mock().unwrap());
    let (a, _sa, addr_a) = node("a", "g/h.json", storage.clone(), &pki, |_| {}).await;
    a.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), a.wait_for_leadership()).await.expect("a leads").unwrap();
    let (b, _sb, addr_b) = node("b", "g/h.json", storage.clone(), &pki, |_| {}).await;
    b.start().await.unwrap();

    let https = client(Some(&pki.ca_cert_pem));
    let resp = https.get(format!("https://{addr_a}/health/leadership")).send().await.expect("TLS handshake with our CA");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let reply = HealthReply::parse(&resp.bytes().await.unwrap()).expect("health JSON");
    assert_eq!((reply.record.leader_id.as_str(), reply.record.term), ("a", 1));
    assert!(reply.lease_remaining_ms > 0 && reply.lease_remaining_ms <= 2500, "{}", reply.lease_remaining_ms);
    let (data, etag) = storage.get("g/h.json").await.unwrap();
    assert_eq!(LeaderRecord::parse(&data).unwrap().leader_id, "a");
    assert!(!reply.etag.is_empty() && (reply.etag == etag || reply.etag.starts_with('"')), "reports the etag of a completed write");

    assert_eq!(https.get(format!("https://{addr_b}/health/leadership")).send().await.unwrap().status(), 404, "follower");
    assert_eq!(https.post(format!("https://{addr_a}/health/leadership")).send().await.unwrap().status(), 405);
    assert_eq!(https.get(format!("https://{addr_a}/elsewhere")).send().await.unwrap().status(), 404);
    // Without our CA the certificate is not trusted.
    let untrusted = client(None).get(format!("https://{addr_a}/health/leadership")).send().await;
    assert!(untrusted.is_err(), "a client without the peer CA must fail the handshake");

    a.stop().await.unwrap();
    assert_eq!(https.get(format!("https://{addr_a}/health/leadership")).send().await.unwrap().status(), 404, "stopped leader");
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_mode_follower_probes_over_tls_instead_of_reading_s3_and_takes_over_fast_on_stop() {
    let server = seaweed("peer-mode").await;
    let s3: Arc<dyn Storage> = Arc::new(storage(&server));
    let pki = tls::generate_pki(&["127.0.0.1"]).unwrap();
    let lock = "g/peer.json";
    let (a, _sa, _) = node("a", lock, s3.clone(), &pki, |_| {}).await;
    a.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), a.wait_for_leadership()).await.unwrap().unwrap();

    let counted = s3lect::storage::CountingStorage::new(s3.clone());
    let (b, _sb, _) = node("b", lock, counted.clone(), &pki, |_| {}).await;
    b.enable_peer_mode(pki.ca_cert_pem.as_bytes()).await.unwrap();
    assert!(b.config().peer_mode);
    b.start().await.unwrap();
    wait_until(&b, Duration::from_secs(10), |s| s.leader_id == "a").await.unwrap();
    // Over the next several steps the follower learns of the leader only by probing it.
    let gets_before = counted.gets();
    let mut since = None;
    for _ in 0..4 {
        let st = tokio::time::timeout(Duration::from_secs(5), b.wait_for_next_election(since)).await.unwrap().unwrap();
        assert_eq!(st.leader_id, "a");
        since = Some(std::time::SystemTime::now());
    }
    assert_eq!(counted.gets(), gets_before, "no S3 GET while the leader answers probes");

    a.stop().await.unwrap();
    let stopped = Instant::now();
    wait_until(&b, Duration::from_secs(10), |s| s.is_leader).await.unwrap();
    let handover = stopped.elapsed().as_millis();
    println!("peer-mode graceful handover: {handover} ms");
    assert!(handover <= 1000 + 1000, "a failed probe reads S3 at once: took {handover} ms");
    assert_eq!(b.status().term, 2);
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_handler_mounts_in_a_users_own_http_server() {
    let storage: Arc<dyn Storage> = Arc::new(MockStorage::new_mock().unwrap());
    let elector = Elector::new(config("a", "g/embed.json"), storage).unwrap();
    let handler = leadership_handler(elector.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let resp = match req.uri().path() {
                        "/health/leadership" => handler.respond(&req),
                        _ => hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"app"))),
                    };
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await;
            });
        }
    });
    let plain = client(None);
    let get = |path: &'static str| plain.get(format!("http://{addr}{path}")).send();
    assert_eq!(get("/health/leadership").await.unwrap().status(), 404, "not started: not leader");
    assert_eq!(get("/app").await.unwrap().text().await.unwrap(), "app", "the user's own routes still work");
    elector.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), elector.wait_for_leadership()).await.unwrap().unwrap();
    let resp = get("/health/leadership").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(HealthReply::parse(&body).unwrap().record.leader_id, "a");
    // The peer probe over plain HTTP (explicitly allowed) reads the same endpoint.
    let probe = s3lect::probe::PeerProbe::new(None, true).unwrap();
    match probe.probe(&addr.to_string(), "/health/leadership", Duration::from_secs(2), None).await.unwrap() {
        s3lect_guest::ProbeReply::Leader(body) => assert_eq!(HealthReply::parse(&body).unwrap().record.term, 1),
        other => panic!("{other:?}"),
    }
    elector.stop().await.unwrap();
}

/// Proves the long-poll watch: a probe naming the current etag is held until the leader renews
/// (about one frequent interval), one naming an old etag is answered at once, and a held watch
/// is answered 404 as soon as the leader stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_probe_is_held_until_the_leader_renews_or_stops() {
    let pki = tls::generate_pki(&["127.0.0.1"]).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(MockStorage::new_mock().unwrap());
    let (a, _sa, addr) = node("a", "g/watch.json", storage, &pki, |_| {}).await;
    a.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), a.wait_for_leadership()).await.unwrap().unwrap();
    let https = client(Some(&pki.ca_cert_pem));
    let url = |etag: &str| format!("https://{addr}/health/leadership?wait=5000&etag={}", s3lect_guest::machine::hex(etag));
    let current =
        HealthReply::parse(&https.get(format!("https://{addr}/health/leadership")).send().await.unwrap().bytes().await.unwrap()).unwrap();

    let t = Instant::now();
    let renewed = HealthReply::parse(&https.get(url(&current.etag)).send().await.unwrap().bytes().await.unwrap()).unwrap();
    let held = t.elapsed();
    assert_ne!(renewed.etag, current.etag, "answered with the renewal");
    assert!(held >= Duration::from_millis(100) && held <= Duration::from_millis(1_500), "held {held:?}, frequent interval is 1 s");

    let t = Instant::now();
    let resp = https.get(url("\"stale\"")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(300), "an old etag is answered at once");

    // Right after a renewal (the next is a frequent interval away), watch the new etag: the
    // request must still be held 200 ms later, and be answered 404 once the leader stops.
    let fresh = HealthReply::parse(&https.get(url(&renewed.etag)).send().await.unwrap().bytes().await.unwrap()).unwrap();
    let mut watch = tokio::spawn({
        let (https, u) = (https.clone(), url(&fresh.etag));
        async move { https.get(u).send().await.unwrap().status() }
    });
    assert!(tokio::time::timeout(Duration::from_millis(200), &mut watch).await.is_err(), "the watch is held");
    let stopping = Instant::now();
    a.stop().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(5), watch).await.expect("answered").unwrap();
    assert_eq!(status, 404, "a held watch learns of the resignation");
    assert!(stopping.elapsed() < Duration::from_millis(1_000), "answered {:?} after stop", stopping.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_mode_follower_stopped_while_its_leader_resigns_never_claims_and_exits_at_once() {
    let server = seaweed("peer-stop").await;
    let s3: Arc<dyn Storage> = Arc::new(storage(&server));
    let pki = tls::generate_pki(&["127.0.0.1"]).unwrap();
    // Long watches: the follower's probe is held for a frequent interval (3 s).
    let tune = |c: &mut ElectorConfig| {
        c.frequent_interval = Duration::from_millis(3000);
        c.infrequent_interval = Duration::from_millis(3000);
        c.renew_deadline = Duration::from_millis(6000);
        c.leader_timeout = Duration::from_millis(8000);
        c.check_conditional_writes = false;
    };
    let mut exits = vec![];
    for round in 0..5 {
        let lock = format!("g/stop-{round}.json");
        let (a, _sa, _) = node("a", &lock, s3.clone(), &pki, tune).await;
        a.start().await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), a.wait_for_leadership()).await.unwrap().unwrap();
        let acquired = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = acquired.clone();
        let (b, _sb, _) = node("b", &lock, s3.clone(), &pki, move |c| {
            tune(c);
            c.on_acquire_leadership = Some(s3lect::hook(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Ok(()) }
            }));
        })
        .await;
        b.enable_peer_mode(pki.ca_cert_pem.as_bytes()).await.unwrap();
        b.start().await.unwrap();
        wait_until(&b, Duration::from_secs(10), |s| s.leader_id == "a").await.unwrap();
        // Two steps later the follower is watching: each watch is answered at a renewal and
        // the next one starts at once. Stop both at a varying point of a watch: the leader's
        // resignation answers the follower's watch at the moment it is told to stop.
        // (`since` = the reported `last_election_time` waits for the next step, not at once.)
        let mut since = None;
        for _ in 0..2 {
            let st = tokio::time::timeout(Duration::from_secs(10), b.wait_for_next_election(since)).await.unwrap().unwrap();
            let this = st.last_election_time.map(std::time::SystemTime::from);
            assert!(since.is_none() || this > since, "the next step, not the same one again");
            since = this;
        }
        tokio::time::sleep(Duration::from_millis(100 + 300 * round)).await;
        let started = Instant::now();
        let (ra, rb) = tokio::join!(a.stop(), async {
            let r = b.stop().await;
            (r, started.elapsed())
        });
        ra.unwrap();
        rb.0.unwrap();
        exits.push(rb.1.as_millis());
        assert_eq!(acquired.load(std::sync::atomic::Ordering::SeqCst), 0, "round {round}: a stopping follower ran its acquire hook");
        let (data, _) = s3.get(&lock).await.unwrap();
        let r = LeaderRecord::parse(&data).unwrap();
        assert!(r.is_resigned() && r.term == 1, "round {round}: a stopping follower claimed: {r:?}");
    }
    println!("stopped follower exit times (ms): {exits:?}");
    assert!(exits.iter().all(|&ms| ms < 500), "a stop must not wait for the watch: {exits:?} ms");
}

/// Zero-config peer mode, the probe's side: a leader's self-signed certificate is accepted
/// exactly when its SHA-256 is the pin from the record, whatever signed it — and refused
/// otherwise, or without a pin (no CA is configured).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_accepts_exactly_the_certificate_the_record_pins() {
    let storage: Arc<dyn Storage> = Arc::new(MockStorage::new_mock().unwrap());
    let own = tls::self_signed(&["127.0.0.1"]).unwrap();
    let other = tls::self_signed(&["127.0.0.1"]).unwrap();
    let mut cfg = config("a", "g/pinned.json");
    cfg.peer_cert_sha256 = own.sha256.clone();
    let elector = Elector::new(cfg, storage.clone()).unwrap();
    let server = HealthServer::new(HealthServerConfig {
        bind_address: "127.0.0.1:0".into(),
        cert_pem: own.cert_pem.clone().into_bytes(),
        key_pem: own.key_pem.clone().into_bytes(),
        elector: elector.clone(),
    })
    .unwrap();
    let addr = server.start().await.unwrap().to_string();
    elector.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), elector.wait_for_leadership()).await.expect("a leads").unwrap();
    let record = common::record(storage.as_ref(), "g/pinned.json").await.unwrap();
    assert_eq!(record.peer_cert_sha256, own.sha256, "the leader publishes its certificate's pin");

    let probe = s3lect::probe::PeerProbe::new(None, false).unwrap();
    let path = "/health/leadership";
    match probe.probe(&addr, path, Duration::from_secs(5), Some(&own.sha256)).await {
        Ok(s3lect_guest::ProbeReply::Leader(body)) => assert_eq!(HealthReply::parse(&body).unwrap().record.leader_id, "a"),
        other => panic!("the pinned certificate is accepted: {other:?}"),
    }
    let wrong = probe.probe(&addr, path, Duration::from_secs(5), Some(&other.sha256)).await.expect_err("another pin is refused");
    assert!(wrong.to_string().contains("not the one its lock record names"), "{wrong}");
    probe.probe(&addr, path, Duration::from_secs(5), None).await.expect_err("no pin, no CA: refused");
    elector.stop().await.unwrap();
}
