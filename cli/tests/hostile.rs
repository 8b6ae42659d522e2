//! Hostile inputs, each as an attacker or a careless operator would supply it, against real
//! processes and a real SeaweedFS: an oversized lock object and an oversized probe reply (memory
//! stays bounded), control characters in `leaderID`, durations that would overflow, keys that
//! servers fold together, a hook that leaves a child behind and would see the AWS keys, a
//! symlink at the state file's temporary name, and a precompiled-component cache that someone
//! else could have written or that does not load.

mod common;

use common::nodes::*;
use common::{seaweed, storage, wait_record};
use s3lect::Condition;
use s3lect::{LeaderRecord, Storage};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_lock_object_is_replaced_without_being_downloaded() {
    let server = seaweed("hostile-big").await;
    let s3 = storage(&server);
    let lock = "hostile/big.json";
    s3.put_if_match(lock, &vec![b' '; 100 << 20], Condition::Absent).await.expect("a 100 MB object");
    let dir = tempfile::tempdir().unwrap();
    let node = start(&server, "b1", lock, dir.path(), &[]);
    let r = wait_record(&s3, lock, "the oversized object replaced", Duration::from_secs(30), |r| r.leader_id == "b1").await;
    assert_eq!(r.term, 1);
    let peak = peak_rss_kib(node.child.id());
    println!("node peak RSS with a 100 MB lock object: {peak} KiB");
    assert!(peak < 80 * 1024, "the node read the whole object: peak {peak} KiB");
    assert!(node.stderr().contains("over the 65536-byte limit"), "{}", node.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_probe_reply_is_refused_with_bounded_memory() {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    let pki = s3lect::tls::generate_pki(&["127.0.0.1"]).unwrap();
    let tls = std::sync::Arc::new(s3lect::tls::server_config(pki.server_cert_pem.as_bytes(), pki.server_key_pem.as_bytes()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    use http_body_util::BodyExt;
                    if req.uri().path() == "/redirect" {
                        // A peer that tries to send the follower elsewhere.
                        let empty = http_body_util::Empty::<Bytes>::new().map_err(|e| match e {}).boxed();
                        let resp = hyper::Response::builder().status(302).header("location", "/internal/admin?action=x");
                        return Ok::<_, std::convert::Infallible>(resp.body(empty).unwrap());
                    }
                    // 100 MB in 1 MB frames, produced lazily.
                    let frames = (0..100).map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b'x'; 1 << 20]))));
                    let body = StreamBody::new(Iter(frames)).boxed();
                    Ok::<_, std::convert::Infallible>(hyper::Response::builder().status(200).body(body).unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
            });
        }
    });
    let probe = s3lect::probe::PeerProbe::new(Some(pki.ca_cert_pem.as_bytes()), false).unwrap();
    let me = std::process::id();
    let before = peak_rss_kib(me);
    let t = Instant::now();
    let r = probe.probe(&addr.to_string(), "/health/leadership", Duration::from_secs(20), None).await;
    let err = r.expect_err("a 100 MB reply is refused").to_string();
    assert!(err.contains("over the 65536-byte limit"), "{err}");
    let grew = peak_rss_kib(me).saturating_sub(before);
    println!("100 MB probe reply refused in {:?}; peak RSS grew {grew} KiB", t.elapsed());
    assert!(grew < 20 * 1024, "the probe read far past the limit: +{grew} KiB");
    let redirected = probe.probe(&addr.to_string(), "/redirect", Duration::from_secs(5), None).await;
    assert!(
        redirected.as_ref().is_err_and(|e| e.to_string().contains("unexpected HTTP 302")),
        "a redirect is not followed: {redirected:?}"
    );
}

/// An iterator as a `Stream` (no stream crate needed).
struct Iter<I>(I);
impl<I: Iterator + Unpin> futures_core::Stream for Iter<I> {
    type Item = I::Item;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_the_record_never_reach_the_terminal_raw() {
    let server = seaweed("hostile-ansi").await;
    let s3 = storage(&server);
    let lock = "hostile/ansi.json";
    let evil = LeaderRecord::leading("evil\n2026-01-01T00:00:00Z  INFO forged line\u{1b}[2J", "10.0.0.1:1", 0, 3);
    s3.put_if_match(lock, &evil.to_json(), Condition::Absent).await.unwrap();
    let out = output(s3lect(&server, "status", "x", lock));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "an escape sequence reached the terminal: {stdout:?}");
    assert_eq!(stdout.trim_end().lines().count(), 1, "a newline in leaderID forged a line: {stdout:?}");
    assert!(stdout.contains("evil\\n") && stdout.contains("\\u{1b}[2J"), "shown escaped: {stdout:?}");
    // A node's log, too.
    let dir = tempfile::tempdir().unwrap();
    let node = start(&server, "f1", lock, dir.path(), &[]);
    wait_record(&s3, lock, "the node observing (and later replacing) the record", Duration::from_secs(30), |r| r.leader_id == "f1").await;
    let log = node.stderr();
    assert!(!log.contains('\u{1b}') && !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")), "a forged log line: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_that_would_overflow_or_alias_keys_are_refused() {
    let server = seaweed("hostile-config").await;
    let out = output(s3lect(&server, "run", "a", "hostile/x.json").args(["--leader-timeout-ms", "18446744073710"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("durations-bounded"), "{}", String::from_utf8_lossy(&out.stderr));
    for key in ["hostile//x.json", "hostile\\x.json"] {
        let out = output(s3lect(&server, "run", "a", key));
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("lockfile-path-valid"), "{key}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_overruns_dies_with_its_children_and_never_sees_the_aws_keys() {
    let server = seaweed("hostile-hooks").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let (pidfile, envfile) = (dir.path().join("bg.pid"), dir.path().join("env"));
    let hook = format!("env > {env}; sleep 30 & echo $! > {pid}; sleep 30", env = envfile.display(), pid = pidfile.display());
    let lock = "hostile/hooks.json";
    let mut cmd = s3lect(&server, "run", "k1", lock);
    let mut node = cmd
        .args(TIMINGS)
        .args(["--on-acquire", &hook, "--hook-timeout-ms", "1000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = common::eventually("the hook's background child", Duration::from_secs(30), || async {
        std::fs::read_to_string(&pidfile).ok().and_then(|p| p.trim().parse::<u32>().ok())
    })
    .await;
    // The hook times out after 1 s: its whole group goes, the background child included.
    common::eventually("the background child killed", Duration::from_secs(5), || async {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    })
    .await;
    let env = std::fs::read_to_string(&envfile).unwrap();
    assert!(!env.contains("AWS_SECRET_ACCESS_KEY") && !env.contains("AWS_ACCESS_KEY_ID"), "{env}");
    assert!(env.contains("S3LECT_TERM="), "{env}");
    let _ = node.kill();
    let _ = node.wait();
    let _ = s3.get(lock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_at_a_predictable_temporary_name_redirects_nothing() {
    let server = seaweed("hostile-symlink").await;
    let dir = tempfile::tempdir().unwrap();
    let (state, victim) = (dir.path().join("node.state"), dir.path().join("victim"));
    std::fs::write(&victim, "precious").unwrap();
    // The names the state used to be written through.
    std::os::unix::fs::symlink(&victim, dir.path().join("node.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("node.state.tmp")).unwrap();
    let out = output(s3lect(&server, "step", "s1", "hostile/state.json").args(TIMINGS).arg("--state").arg(&state));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::read(&state).unwrap().starts_with(b"{"), "the state was written where it belongs");
}

/// One `s3lect step` (the n-th) that keeps its precompiled component in `dir`/cache, and what
/// it logged. Whatever the cache holds, the step runs (it leads or follows).
fn step_cached(server: &s3lect_cli::local_s3::LocalS3, dir: &std::path::Path, n: u32) -> String {
    let mut cmd = s3lect(server, "step", "c1", "hostile/cache.json");
    cmd.args(TIMINGS).arg("--state").arg(dir.join(format!("s{n}"))).env("S3LECT_CACHE_DIR", dir.join("cache")).env("S3LECT_LOG", "warn");
    let out = output(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 3), "step {n} did not run: {stderr}");
    stderr
}

/// The precompiled component in `dir`/cache.
fn cached_file(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache file")
}

/// Later starts load the precompiled copy the first one kept, on an engine without a compiler,
/// instead of compiling again (which would replace the file); a copy that does not load (here:
/// garbage) is compiled again and replaced, and the step still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_starts_load_the_precompiled_component_and_replace_a_broken_one() {
    use std::os::unix::fs::MetadataExt;
    let server = seaweed("cache-reuse").await;
    let dir = tempfile::tempdir().unwrap();
    step_cached(&server, dir.path(), 1);
    let file = cached_file(dir.path());
    let kept = std::fs::metadata(&file).unwrap().ino();
    step_cached(&server, dir.path(), 2);
    assert_eq!(std::fs::metadata(cached_file(dir.path())).unwrap().ino(), kept, "the second start compiled again: the copy did not load");
    std::fs::write(&file, b"not a precompiled component").unwrap();
    step_cached(&server, dir.path(), 3);
    let replaced = std::fs::metadata(cached_file(dir.path())).unwrap();
    assert!(replaced.ino() != kept && replaced.len() > 100_000, "the broken copy was not replaced: {replaced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precompiled_component_others_can_write_is_not_loaded() {
    let server = seaweed("hostile-cache").await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let step = |n: u32| step_cached(&server, dir.path(), n);
    step(1);
    let file = cached_file(dir.path());
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    // World-writable: anyone could have replaced it with native code of their own.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    // It still runs, compiling instead.
    let stderr = step(2);
    assert!(stderr.contains("not loading the precompiled component") && stderr.contains("writable by others"), "{stderr}");
    // Someone else's file (this test runs as root in CI, so it can hand the file to nobody).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let file = cached_file(dir.path());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&file, Some(65_534), Some(65_534)).unwrap();
        let stderr = step(3);
        assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
    }
}
