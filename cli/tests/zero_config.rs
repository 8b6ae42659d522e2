//! Zero-config peer mode: `--health-bind` and `--server-addr` are all a node sets, or nothing at
//! all (`run`'s default). It serves its health endpoint with a fresh self-signed certificate and
//! publishes the certificate's SHA-256 in the records it writes; followers pin it, and poll S3
//! when they cannot reach it. Real processes, real SeaweedFS, no CA anywhere.

mod common;

use common::metrics::{metrics_addr, sample, scrape};
use common::nodes::*;
use common::{eventually, seaweed, storage, wait_record};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_mode_works_with_no_certificate_configured() {
    let server = seaweed("zero-config").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "zero/leader.json";
    let node = |id: &str| {
        let addr = format!("127.0.0.1:{}", free_port());
        let extra = ["--health-bind", &addr, "--server-addr", &addr, "--peer-timeout-ms", "500", "--metrics-bind", "127.0.0.1:0"];
        start(&server, id, lock, dir.path(), &extra)
    };
    let mut a = node("a");
    let s3 = storage(&server);
    let first = wait_record(&s3, lock, "a to lead", Duration::from_secs(20), |r| r.leader_id == "a").await;
    assert_eq!(first.peer_cert_sha256.len(), 64, "the record carries the certificate's pin: {first:?}");
    let b = node("b");
    let b_metrics = metrics_addr(&b).await;
    let watched = "s3lect_probes_total{outcome=\"leader\"}";
    eventually("b to watch a over pinned TLS", Duration::from_secs(20), || async {
        (sample(&scrape(&b_metrics).await, watched) >= Some(3.0)).then_some(())
    })
    .await;
    let text = scrape(&b_metrics).await;
    let failed = sample(&text, "s3lect_probes_total{outcome=\"failed\"}").unwrap_or(0.0);
    println!("b's probes of a: {:?} answered by the leader, {failed} failed", sample(&text, watched));
    a.kill9();
    let killed = Instant::now();
    let next = wait_record(&s3, lock, "b to take over", Duration::from_secs(20), |r| r.leader_id == "b").await;
    println!("takeover {:?} after the kill (leader timeout 3 s)", killed.elapsed());
    assert_eq!(next.term, 2);
    assert_eq!(next.peer_cert_sha256.len(), 64);
    assert_ne!(next.peer_cert_sha256, first.peer_cert_sha256, "each node has its own certificate");
    assert_no_overlapping_leadership(&[a, b]);
}

/// `s3lect run` with no peer setting at all: peer mode, on the address the node reaches the
/// storage from (loopback here). `--no-peer`: S3 polling, and nothing in the record to probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_peer_mode_by_default_and_polls_s3_with_no_peer() {
    let server = seaweed("default-peer").await;
    let dir = tempfile::tempdir().unwrap();
    let s3 = storage(&server);
    let metrics = ["--metrics-bind", "127.0.0.1:0"];
    let probes_answered = "s3lect_probes_total{outcome=\"leader\"}";
    let gets = "s3lect_s3_requests_total{operation=\"get\",outcome=\"ok\"}";

    let lock = "default/leader.json";
    let a = start(&server, "a", lock, dir.path(), &metrics);
    let first = wait_record(&s3, lock, "a to lead", Duration::from_secs(20), |r| r.leader_id == "a").await;
    assert_eq!(first.peer_cert_sha256.len(), 64, "a pinned certificate with no flag given: {first:?}");
    let addr: std::net::SocketAddr = first.leader_addr.parse().expect("the record names a host:port");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "the address toward a loopback server: {addr}");
    let b = start(&server, "b", lock, dir.path(), &metrics);
    let b_metrics = metrics_addr(&b).await;
    eventually("b to watch a with no flag given", Duration::from_secs(20), || async {
        (sample(&scrape(&b_metrics).await, probes_answered) >= Some(3.0)).then_some(())
    })
    .await;

    let lock = "no-peer/leader.json";
    let no_peer = ["--no-peer", "--metrics-bind", "127.0.0.1:0"];
    let c = start(&server, "c", lock, dir.path(), &no_peer);
    let record = wait_record(&s3, lock, "c to lead", Duration::from_secs(20), |r| r.leader_id == "c").await;
    assert!(record.leader_addr.is_empty() && record.peer_cert_sha256.is_empty(), "nothing to probe: {record:?}");
    let d = start(&server, "d", lock, dir.path(), &no_peer);
    let d_metrics = metrics_addr(&d).await;
    eventually("d to poll S3", Duration::from_secs(20), || async { (sample(&scrape(&d_metrics).await, gets) >= Some(3.0)).then_some(()) })
        .await;
    let text = scrape(&d_metrics).await;
    assert!(!text.contains("s3lect_probes_total{"), "d probed nobody:\n{text}");
    assert_no_overlapping_leadership(&[a, b]);
    assert_no_overlapping_leadership(&[c, d]);
}

/// A leader whose advertised address answers nobody (here: a closed port): a follower polls S3,
/// and tries the address again only after ten infrequent intervals (10 s at the test timings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_cannot_reach_the_leader_polls_s3_and_stops_probing_it() {
    let server = seaweed("unreachable-peer").await;
    let dir = tempfile::tempdir().unwrap();
    let s3 = storage(&server);
    let lock = "unreachable/leader.json";
    let closed = format!("127.0.0.1:{}", free_port());
    let bind = format!("127.0.0.1:{}", free_port());
    let a = start(&server, "a", lock, dir.path(), &["--health-bind", &bind, "--server-addr", &closed]);
    let record = wait_record(&s3, lock, "a to lead", Duration::from_secs(20), |r| r.leader_id == "a").await;
    assert_eq!(record.leader_addr, closed);
    let b = start(&server, "b", lock, dir.path(), &["--metrics-bind", "127.0.0.1:0"]);
    let b_metrics = metrics_addr(&b).await;
    let (failed, gets) = ("s3lect_probes_total{outcome=\"failed\"}", "s3lect_s3_requests_total{operation=\"get\",outcome=\"ok\"}");
    let started = Instant::now();
    eventually("b to poll S3 for a while", Duration::from_secs(20), || async {
        let text = scrape(&b_metrics).await;
        (sample(&text, gets) >= Some(6.0) && sample(&text, failed).is_some()).then_some(())
    })
    .await;
    let text = scrape(&b_metrics).await;
    assert_eq!(sample(&text, failed), Some(1.0), "one failed probe, then S3 only ({:?} in):\n{text}", started.elapsed());
    eventually("b to try the address again", Duration::from_secs(20), || async {
        (sample(&scrape(&b_metrics).await, failed) >= Some(2.0)).then_some(())
    })
    .await;
    let again = started.elapsed();
    assert!(again >= Duration::from_secs(9), "tried again after {again:?}, not ten infrequent intervals");
    assert_no_overlapping_leadership(&[a, b]);
}

#[test]
fn no_peer_contradicting_peer_mode_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mock = dir.path().to_str().unwrap();
    let out = output(std::process::Command::new(BIN).args([
        "run",
        "--mock-dir",
        mock,
        "--server-id",
        "a",
        "--lockfile",
        "l.json",
        "--no-peer",
        "--health-bind",
        "127.0.0.1:0",
        "--server-addr",
        "127.0.0.1:1",
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--no-peer") && err.contains("contradicts"), "{err}");
}
