//! The peer probe is traffic between the nodes of one group: it goes straight to the leader's
//! address, never through the proxy the environment names for outside traffic (S3's). Its own
//! test binary, because the test sets process-wide proxy variables.

use s3lect::{Elector, ElectorConfig, HealthServer, HealthServerConfig, MockStorage, Storage, tls};
use s3lect_guest::ProbeReply;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn the_probe_ignores_the_proxy_the_environment_names() {
    // A proxy that refuses every connection: a probe sent through it fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        // SAFETY: the only test in this binary, and set before any thread that could read the
        // environment (the runtime's) exists.
        unsafe { std::env::set_var(var, format!("http://{closed}")) };
    }
    tokio::runtime::Runtime::new().unwrap().block_on(async {
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
