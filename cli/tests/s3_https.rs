//! S3 over HTTPS, as every real deployment has it: SeaweedFS serving its S3 port with the
//! certificate of a private CA. The client trusts what it is told to (`[s3] ca_cert`, else
//! `AWS_CA_BUNDLE`) and nothing else, keeps the storage contract over TLS, and reaches the
//! server through an `HTTPS_PROXY` tunnel (CONNECT), as networks that allow no direct route
//! require. The composed component, whose TLS is its host's, names a refused handshake.

mod common;

use common::connect_proxy::{ConnectProxy, connect_proxy};
use common::nodes::{Node, TIMINGS, s3lect_at};
use common::{record, storage, wait_record};
use s3lect::{Condition, S3Config, S3Storage, Storage, StorageError, tls};
use s3lect_cli::local_s3::{LocalS3, ServerTls, find_weed};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A name that resolves nowhere: only the proxy, which sends every tunnel to the server, can
/// deliver a request addressed to it.
const PROXIED_HOST: &str = "s3.example.invalid";

async fn https_seaweed(bucket: &str) -> (LocalS3, tls::GeneratedPki) {
    let weed = find_weed().expect("SeaweedFS not found: run scripts/setup-s3-server.sh");
    let pki = tls::generate_pki(&["127.0.0.1", PROXIED_HOST]).unwrap();
    let server_tls =
        ServerTls { cert_pem: pki.server_cert_pem.clone(), key_pem: pki.server_key_pem.clone(), ca_pem: pki.ca_cert_pem.clone() };
    let server = LocalS3::start_https(&weed, bucket, &server_tls).await.expect("SeaweedFS starts with TLS");
    assert!(server.endpoint.starts_with("https://"), "{}", server.endpoint);
    (server, pki)
}

fn port(server: &LocalS3) -> u16 {
    server.endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_contract_holds_over_https_trusting_only_the_configured_ca() {
    let (server, _pki) = https_seaweed("https-contract").await;
    common::contract::storage_contract(Arc::new(storage(&server)), "contract").await;

    // Not given the CA, the client refuses the server (the Mozilla roots do not vouch for it),
    // and the error says it was the certificate.
    let untrusting = S3Storage::new(S3Config { ca_cert_pem: None, ..server.s3_config() }).unwrap();
    // Invalid, not unavailable: no retry can change it, and a start fails at once.
    match untrusting.get("contract/contract.json").await {
        Err(StorageError::Invalid(why)) => assert!(why.contains("certificate is not trusted") && why.contains("ca_cert"), "{why}"),
        other => panic!("a server signed by an unknown CA was not refused as untrusted: {other:?}"),
    }
    // Plain HTTP to the HTTPS port writes nothing: a create that would succeed over HTTP fails,
    // and the object is not there.
    let plain = S3Storage::new(S3Config { endpoint: Some(format!("http://127.0.0.1:{}", port(&server))), ..server.s3_config() }).unwrap();
    let written = plain.put_if_match("plain.json", b"{}", Condition::Absent).await;
    assert!(written.is_err(), "plain HTTP was served on the HTTPS port: {written:?}");
    assert_eq!(storage(&server).get("plain.json").await, Err(StorageError::NotFound));
}

/// TLS SeaweedFS that only a CONNECT proxy reaches (at [`PROXIED_HOST`]), and a config file
/// trusting its CA.
struct Proxied {
    server: LocalS3,
    pki: tls::GeneratedPki,
    proxy: ConnectProxy,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Proxied {
    async fn start(bucket: &str) -> Proxied {
        let (server, pki) = https_seaweed(bucket).await;
        let proxy = connect_proxy(SocketAddr::from(([127, 0, 0, 1], port(&server)))).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("s3-ca.pem");
        std::fs::write(&ca, &pki.ca_cert_pem).unwrap();
        let config = dir.path().join("s3lect.toml");
        std::fs::write(&config, format!("[s3]\nca_cert = {:?}\n", ca.display().to_string())).unwrap();
        Proxied { server, pki, proxy, dir, config }
    }

    /// `s3lect SUB` at the proxied name, through the proxy (the config file not given).
    fn command(&self, sub: &str, id: &str, lock: &str) -> std::process::Command {
        let mut cmd = s3lect_at(&format!("https://{PROXIED_HOST}:{}", port(&self.server)), &self.server.bucket, sub, id, lock);
        cmd.env("HTTPS_PROXY", format!("http://{}", self.proxy.addr)).env_remove("NO_PROXY").env_remove("no_proxy");
        cmd
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reaches_https_s3_through_a_connect_proxy() {
    let proxied = Proxied::start("https-proxy").await;
    let Proxied { server, pki, proxy, dir, config } = &proxied;
    let lock = "proxied/leader.json";
    let step_with = |id: &str, with_config: bool, ca_bundle: Option<&std::path::Path>| {
        let mut cmd = proxied.command("step", id, lock);
        // `s3lect_at` removes the machine's AWS_CA_BUNDLE: the only bundle is the one given.
        if let Some(path) = ca_bundle {
            cmd.env("AWS_CA_BUNDLE", path);
        }
        if with_config {
            cmd.arg("--config").arg(config);
        }
        cmd.output().expect("s3lect runs")
    };
    let step = |id: &str, with_config: bool| step_with(id, with_config, None);

    let out = step("a", true);
    assert_eq!(out.status.code(), Some(0), "step through the proxy did not lead: {}", String::from_utf8_lossy(&out.stderr));
    let asked = proxy.asked.lock().unwrap().clone();
    assert!(!asked.is_empty(), "no tunnel was opened: the requests did not go through the proxy");
    assert!(asked.iter().all(|a| *a == format!("{PROXIED_HOST}:{}", port(server))), "tunnels asked for {asked:?}");
    let written = record(&storage(server), lock).await.expect("the record was written");
    assert_eq!(written.leader_id, "a");

    // Through the same tunnel but without the CA, the step fails at once (a certificate is
    // not a passing outage to retry through the start-up budget), names the certificate and
    // says where a CA goes; the record is untouched.
    let tunnels = proxy.asked.lock().unwrap().len();
    let started = std::time::Instant::now();
    let out = step("b", false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate is not trusted") && stderr.contains("[s3] ca_cert"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20), "refused only after {:?}: {stderr}", started.elapsed());
    assert!(proxy.asked.lock().unwrap().len() > tunnels, "the refused attempt did not use the proxy");
    assert_eq!(record(&storage(server), lock).await.unwrap(), written, "the refused step changed the record");

    // AWS_CA_BUNDLE, as AWS's own tools read it, serves where the file says nothing: a bundle
    // as systems build them (a certificate webpki cannot use as an anchor among the rest) with
    // the private CA in it. Step "a" renews, so the term stays and the write shows.
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, common::bundle_with_unusable_cert(&pki.ca_cert_pem)).unwrap();
    let out = step_with("a", false, Some(&bundle));
    assert_eq!(out.status.code(), Some(0), "step trusting AWS_CA_BUNDLE did not lead: {}", String::from_utf8_lossy(&out.stderr));
    let renewed = record(&storage(server), lock).await.unwrap();
    assert_eq!((renewed.leader_id.as_str(), renewed.term), ("a", written.term));
    assert_ne!(renewed, written, "the step trusting AWS_CA_BUNDLE did not renew the record");
    // A bundle that is not there names the variable and the path.
    let missing = dir.path().join("missing.pem");
    let out = step_with("a", false, Some(&missing));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("AWS_CA_BUNDLE") && stderr.contains("missing.pem"), "{stderr}");
}

/// `run` with no peer setting, behind a proxy, where the storage's name resolves nowhere: it
/// still serves peer mode, on the address of its route to the proxy (loopback here), where it
/// had fallen back to S3 polling for want of a route to the storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_peer_mode_behind_a_proxy_where_the_storage_does_not_resolve() {
    let proxied = Proxied::start("https-proxy-run").await;
    let (server, dir) = (&proxied.server, &proxied.dir);
    let lock = "proxied/run.json";
    let mut cmd = proxied.command("run", "a", lock);
    cmd.arg("--config").arg(&proxied.config);
    let node = Node::spawn(cmd, "a", dir.path(), &TIMINGS).expect("s3lect runs");

    let record = wait_record(&storage(server), lock, "a to lead through the proxy", Duration::from_secs(20), |r| r.leader_id == "a").await;
    let said = node.stderr();
    let addr: SocketAddr =
        record.leader_addr.parse().unwrap_or_else(|_| panic!("no peer address in the record {record:?}; the node said:\n{said}"));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "not the route to the proxy: {addr}");
    assert_eq!(record.peer_cert_sha256.len(), 64, "no certificate pin in the record: {record:?}");
    assert!(!said.contains("peer mode off"), "{said}");
}

/// The composed component in the wasmtime CLI, whose `wasi:http` trusts the Mozilla roots
/// only: the private CA's server is refused at the handshake, and the run fails at once saying
/// so and that nothing was sent, not as an outage to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composed_component_names_a_failed_tls_handshake() {
    let (server, _pki) = https_seaweed("https-component").await;
    let lock = "cron/https.json";
    let started = std::time::Instant::now();
    let out = common::interop::wasmtime_run(&common::interop::component_env(&server, "c", lock), &[]).output().expect("wasmtime runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an untrusted server was used: {stderr}");
    assert!(stderr.contains("TLS handshake with 127.0.0.1") && stderr.contains("nothing was sent"), "{stderr}");
    assert!(!stderr.contains("storage unavailable"), "a refused handshake was reported as an outage: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed only after {:?}", started.elapsed());
    assert_eq!(storage(&server).get(lock).await, Err(StorageError::NotFound));
}
