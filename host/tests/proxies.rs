//! Which traffic uses the proxy the environment names: S3 requests do (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`, as any HTTP client), peer probes do not — they are traffic between
//! the nodes of one group, and go straight to the leader's address. A test binary of its own,
//! because the test sets process-wide variables.

use s3lect::{Condition, Elector, ElectorConfig, HealthServer, HealthServerConfig, MockStorage, S3Storage, Storage, tls};
use s3lect_guest::ProbeReply;
use s3lect_testkit::fake_s3::config_for;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn s3_requests_use_the_environments_proxy_and_peer_probes_do_not() {
    // For plain HTTP, a proxy that answers as S3 would and records the request lines it got;
    // for HTTPS, a proxy that refuses every connection (a probe sent through it fails).
    let http_proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let vars = [("HTTP_PROXY", http_proxy.local_addr().unwrap()), ("HTTPS_PROXY", closed), ("ALL_PROXY", closed)];
    for (var, addr) in vars {
        // SAFETY: the only test in this binary, and set before any thread that could read the
        // environment (the runtime's) exists.
        unsafe {
            std::env::set_var(var, format!("http://{addr}"));
            std::env::set_var(var.to_lowercase(), format!("http://{addr}"));
        }
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let proxied = Arc::new(Mutex::new(Vec::<String>::new()));
        tokio::spawn(answer_as_s3(tokio::net::TcpListener::from_std(nonblocking(http_proxy)).unwrap(), proxied.clone()));
        // No such host: only the proxy can deliver this request.
        let s3 = S3Storage::new(config_for("http://s3.example.invalid:9000".into())).unwrap();
        assert_eq!(s3.put_if_match("k", b"x", Condition::Absent).await, Ok("\"proxied\"".into()));
        let lines = proxied.lock().unwrap().clone();
        assert_eq!(lines, ["PUT http://s3.example.invalid:9000/b/k HTTP/1.1"], "the S3 request went through the proxy");

        let storage: Arc<dyn Storage> = Arc::new(MockStorage::new_mock().unwrap());
        let cert = tls::self_signed(&["127.0.0.1"]).unwrap();
        let cfg = ElectorConfig {
            lockfile_path: "g/proxy.json".into(),
            server_id: "a".into(),
            peer_cert_sha256: cert.sha256.clone(),
            ..ElectorConfig::default()
        };
        let elector = Elector::new(cfg, storage).unwrap();
        let server = HealthServer::new(HealthServerConfig {
            bind_address: "127.0.0.1:0".into(),
            cert_pem: cert.cert_pem.clone().into_bytes(),
            key_pem: cert.key_pem.clone().into_bytes(),
            elector: elector.clone(),
        })
        .unwrap();
        let addr = server.start().await.unwrap().to_string();
        elector.start().await.unwrap();
        tokio::time::timeout(Duration::from_secs(20), elector.wait_for_leadership()).await.expect("a leads").unwrap();
        let probe = s3lect::probe::PeerProbe::new(None, false).unwrap();
        match probe.probe(&addr, "/health/leadership", Duration::from_secs(5), Some(&cert.sha256)).await {
            Ok(ProbeReply::Leader(_)) => {}
            other => panic!("the probe reached the leader directly: {other:?}"),
        }
        elector.stop().await.unwrap();
    });
}

fn nonblocking(l: std::net::TcpListener) -> std::net::TcpListener {
    l.set_nonblocking(true).unwrap();
    l
}

/// Reads each request's head, records its request line, and answers 200 with an ETag.
async fn answer_as_s3(listener: tokio::net::TcpListener, lines: Arc<Mutex<Vec<String>>>) {
    while let Ok((mut socket, _)) = listener.accept().await {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&head);
        lines.lock().unwrap().push(text.lines().next().unwrap_or_default().to_string());
        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nETag: \"proxied\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    }
}
