//! The health endpoint against hostile clients, with a real `s3lect run` process: a flood of
//! silent connections from one address, the process at its file-descriptor limit, slowloris
//! clients, and an HTTP/2 preface. Loopback only; every attack is bounded in count and time.
//! Attackers connect from 127.0.0.2–4, the legitimate peer from 127.0.0.1.

mod common;

use common::nodes::*;
use common::{seaweed, storage, wait_record};
use s3lect::tls;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// RSS (KiB), open file descriptors, and CPU time (clock ticks) of a process.
fn usage(pid: u32) -> (u64, usize, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let cpu = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss, fds, cpu)
}

async fn connect_from(src: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(src.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(to).await
}

/// Raises this test process's own open-file limit, to hold many attacking connections.
fn raise_own_fd_limit() {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on this process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur = rl.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
    }
}

fn set_fd_limit(pid: u32, soft: u64) {
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit on our own child: read the limits, then lower (or restore) the soft one.
    unsafe {
        assert_eq!(libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, std::ptr::null(), &mut cur), 0);
        let new = libc::rlimit { rlim_cur: soft.min(cur.rlim_max), rlim_max: cur.rlim_max };
        assert_eq!(libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()), 0);
    }
}

struct Endpoint {
    addr: SocketAddr,
    client: reqwest::Client,
}

impl Endpoint {
    /// A legitimate probe: status and latency.
    async fn probe(&self) -> (u16, Duration) {
        let t = Instant::now();
        let resp = self.client.get(format!("https://{}/health/leadership", self.addr)).timeout(Duration::from_secs(5)).send().await;
        (resp.map(|r| r.status().as_u16()).unwrap_or(0), t.elapsed())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_endpoint_survives_floods_descriptor_exhaustion_slowloris_and_h2() {
    raise_own_fd_limit();
    let server = seaweed("hardening-health").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::generate_pki(&["127.0.0.1"]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let lock = "hardening/leader.json";
    let mut node = start(
        &server,
        "h1",
        lock,
        dir.path(),
        &["--health-bind", &bind, "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.leader_id == "h1").await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let tls_cfg = tls::client_config(Some(pki.ca_cert_pem.as_bytes()), false).unwrap();
    let ep = Endpoint { addr, client: reqwest::Client::builder().tls_backend_preconfigured(tls_cfg.clone()).build().unwrap() };
    let pid = node.child.id();
    let lines = |n: &Node| n.stderr().lines().count();

    let (status, before_latency) = ep.probe().await;
    assert_eq!(status, 200);
    let (rss0, fds0, _) = usage(pid);
    let lines0 = lines(&node);

    // 1. A flood of 1,100 silent connections from one address.
    let mut flood = vec![];
    for _ in 0..1_100 {
        if let Ok(s) = connect_from("127.0.0.2", addr).await {
            flood.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, flooded_latency) = ep.probe().await;
    let (rss1, fds1, _) = usage(pid);
    let lines1 = lines(&node);
    println!(
        "flood of {} connections: probe {status} in {flooded_latency:?} (before {before_latency:?}); RSS {rss0} -> {rss1} KiB; FDs {fds0} -> {fds1}; log lines {lines0} -> {lines1}",
        flood.len()
    );
    assert_eq!(status, 200, "a legitimate peer is still answered");
    assert!(flooded_latency < Duration::from_secs(1), "{flooded_latency:?}");
    assert!(fds1 <= fds0 + 40, "connections per address are capped: {fds0} -> {fds1}");
    assert!(lines1 <= lines0 + 5, "refusals are logged at a bounded rate: {lines0} -> {lines1}");
    drop(flood);

    // 2. The process at its descriptor limit: accept fails (EMFILE) and must back off, not spin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, fds, cpu_before) = usage(pid);
    set_fd_limit(pid, fds as u64 + 3);
    let mut held = vec![];
    for _ in 0..100 {
        // Past the backlog a connect would wait for SYN retries: bound each one.
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(200), connect_from("127.0.0.3", addr)).await {
            held.push(s);
        }
    }
    let lines_before = lines(&node);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, _, cpu_after) = usage(pid);
    let lines_after = lines(&node);
    println!(
        "at the descriptor limit for 4 s: CPU {} ticks, {} log lines ({} connections held)",
        cpu_after - cpu_before,
        lines_after - lines_before,
        held.len()
    );
    assert!(cpu_after - cpu_before < 100, "the accept loop spun: {} ticks in 4 s", cpu_after - cpu_before);
    assert!(lines_after - lines_before <= 3, "accept failures logged at a bounded rate: {}", lines_after - lines_before);
    let failures_logged = node.stderr().matches("health endpoint accept failed").count();
    assert!((1..=3).contains(&failures_logged), "accept failed (EMFILE) and was logged once per 10 s: {failures_logged}");
    drop(held);
    set_fd_limit(pid, 1024);
    common::eventually("the endpoint to recover", Duration::from_secs(10), || async { (ep.probe().await.0 == 200).then_some(()) }).await;

    // 3. Slowloris: a TLS session that sends one header byte every 2 s is closed by the server.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_cfg));
    let mut slow = vec![];
    for _ in 0..20 {
        let tcp = connect_from("127.0.0.4", addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        slow.push(connector.connect(name, tcp).await.unwrap());
    }
    let started = Instant::now();
    let results = common::join_all(slow.into_iter().map(|mut s| async move {
        for b in b"GET /health/leadership HTTP/1.1\r\nHost: x\r\n".iter() {
            if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
                return Some(Instant::now());
            }
            // A closed connection shows as EOF on read.
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
                Ok(Ok(_)) => return Some(Instant::now()), // an error answer, then close
                Err(_) => {}
            }
        }
        None
    }))
    .await;
    let closed: Vec<Duration> = results.iter().map(|r| r.map(|t| t - started).expect("a slowloris client was held")).collect();
    let worst = closed.iter().max().unwrap();
    println!("slowloris: all 20 closed by the server, the last after {worst:?}");
    assert!(*worst < Duration::from_secs(9), "closed within the header timeout: {worst:?}");

    // 4. An HTTP/2 preface gets no HTTP/2 answer: the endpoint speaks HTTP/1.1 only.
    let tcp = connect_from("127.0.0.1", addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(Some(pki.ca_cert_pem.as_bytes()), false).unwrap()));
    let mut s = connector.connect(rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await.unwrap().unwrap_or(0);
    // An HTTP/2 server would answer with a SETTINGS frame (type 4 at byte 3).
    assert!(n == 0 || buf.starts_with(b"HTTP/1.1"), "answered HTTP/2: {:?}", &buf[..n]);

    assert_eq!(ep.probe().await.0, 200, "still serving");
    node.signal(libc::SIGTERM);
    let _ = node.child.wait();
}
