//! Which traffic uses the proxy the environment names: S3 requests do (`HTTP_PROXY`,
//! `HTTPS_PROXY`, `NO_PROXY`, as any HTTP client), peer probes do not — they are traffic between
//! the nodes of one group, and go straight to the leader's address. A test binary of its own,
//! because the test sets process-wide variables.

use s3lect::{Condition, Elector, ElectorConfig, HealthServer, HealthServerConfig, MockStorage, S3Storage, Storage, tls};
use s3lect_guest::ProbeReply;
use s3lect_testkit::fake_s3::{config_for, fake_s3};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn s3_requests_use_the_environments_proxy_and_peer_probes_do_not() {
    // A current-thread runtime: while the variables are set, no other thread of this process
    // reads the environment.
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        // For plain HTTP, a fake S3 as the proxy (hyper serves the proxy's absolute-form
        // requests); for HTTPS, a proxy that refuses every connection.
        let proxy = fake_s3(200, "").await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        for (var, addr) in [("HTTP_PROXY", proxy.addr), ("HTTPS_PROXY", closed), ("ALL_PROXY", closed)] {
            // SAFETY: see above.
            unsafe {
                std::env::set_var(var, format!("http://{addr}"));
                std::env::set_var(var.to_lowercase(), format!("http://{addr}"));
            }
        }

        // No such host: only the proxy can deliver this request.
        let s3 = S3Storage::new(config_for("http://s3.example.invalid:9000".into())).unwrap();
        assert_eq!(s3.put_if_match("k", b"x", Condition::Absent).await, Ok("\"fake-0\"".into()));
        assert_eq!(proxy.requests.load(Ordering::SeqCst), 1, "the S3 request went through the proxy");

        // A node's health endpoint; not started, it answers "not leader" — if the probe gets
        // there at all.
        let cert = tls::self_signed(&["127.0.0.1"]).unwrap();
        let cfg = ElectorConfig { lockfile_path: "g/proxy.json".into(), server_id: "a".into(), ..ElectorConfig::default() };
        let elector = Elector::new(cfg, Arc::new(MockStorage::new_mock().unwrap())).unwrap();
        let server = HealthServer::new(HealthServerConfig {
            bind_address: "127.0.0.1:0".into(),
            cert_pem: cert.cert_pem.clone().into_bytes(),
            key_pem: cert.key_pem.clone().into_bytes(),
            elector,
        })
        .unwrap();
        let addr = server.start().await.unwrap().to_string();
        let probe = s3lect::probe::PeerProbe::new(None, false).unwrap();
        let reply = probe.probe(&addr, "/health/leadership", Duration::from_secs(5), Some(&cert.sha256)).await;
        assert_eq!(reply, Ok(ProbeReply::NotLeader), "the probe reached the node directly");
    });
}
