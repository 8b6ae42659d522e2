//! AWS credentials beyond static keys, with real `s3lect` processes against SeaweedFS: a named
//! profile from the shared credentials file, and temporary credentials from stand-ins for the
//! EC2 instance metadata service (IMDSv2) and the container credentials endpoint (ECS, EKS Pod
//! Identity) that rotate during a run — the leader keeps leading across the rotation. Web
//! identity from STS (moto), over HTTPS too, trusted through `AWS_CA_BUNDLE`.

mod common;

use common::aws_stand_in::credentials_stand_in;
use common::nodes::{BIN, Node, TIMINGS, output};
use common::session_front::session_front;
use common::{eventually, record, storage};
use s3lect::Storage;
use s3lect_cli::local_s3::{ACCESS_KEY, LocalS3, SECRET_KEY, find_weed};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

static ROTATED: [(&str, &str); 2] = [("s3lect-rotating-a", "secret-a"), ("s3lect-rotating-b", "secret-b")];

/// `s3lect SUB` with no AWS variables but `env`: credentials must come from where `env` says.
fn bare(endpoint: &str, bucket: &str, sub: &str, id: &str, lock: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        // Nothing but the stand-ins may be asked: no real metadata service on this machine.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("S3LECT_LOG", "info")
        .args([sub, "--endpoint", endpoint, "--bucket", bucket, "--lockfile", lock, "--server-id", id])
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_profile_in_the_shared_credentials_file_is_used() {
    let server = common::seaweed("creds-profile").await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::write(&credentials, format!("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[prod]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")).unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile prod]\nregion = us-east-1\n").unwrap();
    let env = |profile: &str| {
        vec![
            ("AWS_PROFILE", profile.to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ]
    };
    let state = dir.path().join("state");
    let out = output(
        bare(&server.endpoint, &server.bucket, "step", "p1", "creds/profile.json", &env("prod")).args(TIMINGS).arg("--state").arg(&state),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "leads with the profile's keys:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The default profile's keys are wrong: SeaweedFS says so, and the message carries it.
    let out = output(bare(&server.endpoint, &server.bucket, "status", "x", "creds/profile.json", &env("default")));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("denied") || stderr.contains("Denied") || stderr.contains("AccessDenied") || stderr.contains("InvalidAccessKeyId"),
        "{stderr}"
    );
    // A profile that does not exist is named.
    let out = output(bare(&server.endpoint, &server.bucket, "status", "x", "creds/profile.json", &env("missing")));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no AWS credentials") && stderr.contains("missing"), "{stderr}");
    // Keys in the environment come first, as in AWS's chain: the wrong profile is not read.
    let mut keys = env("default");
    keys.extend([("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string())]);
    let out = output(bare(&server.endpoint, &server.bucket, "status", "x", "creds/profile.json", &keys));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_v2_credentials_rotate_during_a_run_and_the_leader_keeps_leading() {
    rotating_run("creds-imds", |url| vec![("AWS_EC2_METADATA_DISABLED", "false".into()), ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_credentials_rotate_during_a_run_and_the_leader_keeps_leading() {
    rotating_run("creds-container", |url| vec![("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("{url}/container-credentials"))]).await;
}

async fn rotating_run(bucket: &str, env: impl Fn(String) -> Vec<(&'static str, String)>) {
    let weed = find_weed().expect("SeaweedFS not found: run scripts/setup-s3-server.sh");
    let server = LocalS3::start_accepting(&weed, bucket, &ROTATED).await.expect("SeaweedFS starts");
    // SeaweedFS rejects session tokens it did not issue: a front checks the stand-in's tokens,
    // re-signs without them, and notes which access key signed each request.
    let proxy = session_front(server.endpoint.trim_start_matches("http://").parse().unwrap(), server.s3_config(), &ROTATED).await;
    let keys = proxy.keys.clone();
    let stand_in = credentials_stand_in(ROTATED, Duration::from_secs(6)).await;

    let dir = tempfile::tempdir().unwrap();
    let lock = "creds/rotating.json";
    let hook_log = dir.path().join("r1.hooks");
    let stderr_log = dir.path().join("r1.stderr");
    let log = |event: &str| format!("echo {event} $S3LECT_TERM $(date +%s%N) >> {}", hook_log.display());
    let child = bare(&proxy.endpoint(), &server.bucket, "run", "r1", lock, &env(stand_in.url()))
        .args(TIMINGS)
        .args(["--on-acquire", &log("acquire"), "--on-lose", &log("lose")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_log).unwrap())
        .spawn()
        .unwrap();
    let node = Node { id: "r1".into(), child, hook_log: hook_log.clone(), stderr_log, killed_at_ns: None };

    let s3 = storage(&server);
    let leads = tokio::time::timeout(Duration::from_secs(30), async {
        while record(&s3, lock).await.is_none_or(|r| r.leader_id != "r1") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(leads.await.is_ok(), "the node did not lead:\n{}", node.stderr());
    eventually("requests signed with the rotated key", Duration::from_secs(30), || async {
        keys.lock().unwrap().contains(ROTATED[1].0).then_some(())
    })
    .await;
    // Renewals keep succeeding with the new key.
    let (_, before) = s3.get(lock).await.unwrap();
    eventually("a renewal after the rotation", Duration::from_secs(10), || async { s3.get(lock).await.ok().filter(|(_, e)| *e != before) })
        .await;
    let r = record(&s3, lock).await.unwrap();
    assert_eq!((r.leader_id.as_str(), r.term), ("r1", 1), "the same leadership throughout");
    let events: Vec<String> = node.transitions().into_iter().map(|t| t.0).collect();
    assert_eq!(events, vec!["acquire"], "never lost leadership:\n{}", node.stderr());
    let used = keys.lock().unwrap().clone();
    assert!(used.contains(ROTATED[0].0) && used.contains(ROTATED[1].0), "both keys signed requests: {used:?}");
    assert_eq!(used.len(), 2, "only the stand-in's keys signed requests: {used:?}");
    assert_eq!(stand_in.unauthenticated.load(std::sync::atomic::Ordering::SeqCst), 0, "IMDSv2 only (a session token every time)");
    println!("credential documents served: {:?}; keys that signed requests: {used:?}", stand_in.served.lock().unwrap());
    let _ = Path::new(BIN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_credentials_come_from_sts() {
    let moto = common::moto_sts().await;
    let server = common::seaweed("creds-web-identity").await;
    let front =
        common::session_front::any_session_front(server.endpoint.trim_start_matches("http://").parse().unwrap(), server.s3_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = output(bare(&front.endpoint(), &server.bucket, "status", "x", "creds/web.json", &web_identity(dir.path(), &moto.endpoint)));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_sts_keys_signed(&front.keys.lock().unwrap());
}

/// STS behind a TLS-inspecting proxy answers with a certificate of the proxy's private CA,
/// which users trust through `AWS_CA_BUNDLE`, as AWS's CLI reads it. Here STS (moto) serves a
/// private CA's certificate: refused without the bundle, naming the certificate; trusted with
/// it, in a bundle that also holds a certificate no TLS client can use as an anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_credentials_come_from_sts_trusted_through_aws_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let pki = s3lect::tls::generate_pki(&["127.0.0.1"]).unwrap();
    let (cert, key, bundle) = (dir.path().join("sts.pem"), dir.path().join("sts.key"), dir.path().join("bundle.pem"));
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    std::fs::write(&bundle, common::bundle_with_unusable_cert(&pki.ca_cert_pem)).unwrap();
    let moto = common::moto_sts_over(Some((&cert, &key))).await;
    assert!(moto.endpoint.starts_with("https://"), "{}", moto.endpoint);
    let server = common::seaweed("creds-web-identity-tls").await;
    let front =
        common::session_front::any_session_front(server.endpoint.trim_start_matches("http://").parse().unwrap(), server.s3_config()).await;
    let env = web_identity(dir.path(), &moto.endpoint);

    let out = output(bare(&front.endpoint(), &server.bucket, "status", "x", "creds/web-tls.json", &env));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "STS's certificate was trusted with no CA given: {stderr}");
    assert!(stderr.contains("no AWS credentials") && stderr.contains("AWS_CA_BUNDLE names a CA bundle to trust"), "{stderr}");
    assert!(front.keys.lock().unwrap().is_empty(), "a request was signed with no credentials from STS");

    let mut env = env;
    env.push(("AWS_CA_BUNDLE", bundle.display().to_string()));
    let out = output(bare(&front.endpoint(), &server.bucket, "status", "x", "creds/web-tls.json", &env));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_sts_keys_signed(&front.keys.lock().unwrap());
}

/// The environment of a pod with a web identity (EKS's IRSA), whose STS is at `sts`.
fn web_identity(dir: &Path, sts: &str) -> Vec<(&'static str, String)> {
    let token = dir.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzM2xlY3QifQ.c2lnbmF0dXJl").unwrap();
    vec![
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/s3lect".to_string()),
        ("AWS_ROLE_SESSION_NAME", "s3lect-test".to_string()),
        ("AWS_ENDPOINT_URL_STS", sts.to_string()),
    ]
}

/// The front saw requests signed with one set of temporary credentials, STS's.
fn assert_sts_keys_signed(keys: &std::collections::BTreeSet<String>) {
    assert_eq!(keys.len(), 1, "one set of STS credentials: {keys:?}");
    let key = keys.iter().next().unwrap();
    assert!(key.starts_with("ASIA") && key != ACCESS_KEY, "temporary credentials from AssumeRoleWithWebIdentity: {key}");
}

/// With keys in the environment and no region set, nothing asks EC2's metadata service for a
/// region: off EC2 that costs a timeout and a warning on every `s3lect step`. (The region is the
/// one the S3 configuration already has: us-east-1 by default.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_without_a_region_never_ask_the_metadata_service() {
    let server = common::seaweed("creds-no-region").await;
    let imds = common::fake_s3::fake_s3(404, "").await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://{}", imds.addr)),
    ];
    let mut cmd = bare(&server.endpoint, &server.bucket, "step", "r1", "creds/no-region.json", &env);
    let out = output(cmd.env_remove("AWS_REGION").args(TIMINGS).arg("--state").arg(dir.path().join("state")));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(imds.requests.load(std::sync::atomic::Ordering::SeqCst), 0, "{}", String::from_utf8_lossy(&out.stderr));
}
