//! Real `s3lect` processes against a real SeaweedFS server: one leader among three, SIGKILL
//! and graceful-stop takeovers with bounded failover, the one-shot `step`, `status`, `resign`,
//! and clear errors for bad credentials, bad config, and a server without conditional writes.

mod common;

use common::fake_s3::fake_s3;
use common::nodes::*;
use common::{eventually, record, seaweed, storage, wait_record};
use s3lect::{Condition, MockStorage, Storage, StorageError};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_elect_one_leader_and_a_follower_takes_over_after_kill_9() {
    let server = seaweed("procs-kill").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/kill.json";
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"].iter().map(|id| start(&server, id, lock, dir.path(), &[])).collect();

    let first = wait_record(&s3, lock, "a first leader", Duration::from_secs(60), |r| r.term == 1 && !r.leader_id.is_empty()).await;
    // It renews: the etag changes while the term and leader stay.
    let (_, e1) = s3.get(lock).await.unwrap();
    eventually("a renewal", Duration::from_secs(10), || async { s3.get(lock).await.ok().filter(|(_, e)| *e != e1) }).await;
    let same = record(&s3, lock).await.unwrap();
    assert_eq!((same.leader_id.as_str(), same.term), (first.leader_id.as_str(), 1));
    let acquired: Vec<&str> = nodes.iter().filter(|n| !n.transitions().is_empty()).map(|n| n.id.as_str()).collect();
    assert_eq!(acquired, vec![first.leader_id.as_str()], "only the leader ran its acquire hook");

    let victim = nodes.iter_mut().find(|n| n.id == first.leader_id).unwrap();
    victim.kill9();
    let killed = Instant::now();
    let second = wait_record(&s3, lock, "a takeover", Duration::from_secs(30), |r| r.term > 1 && !r.leader_id.is_empty()).await;
    let failover = killed.elapsed().as_millis();
    assert_ne!(second.leader_id, first.leader_id);
    assert_eq!(second.term, 2);
    // Bound: the follower's last observation comes at most one (healthy-leader) polling
    // interval after the kill, the takeover a leader timeout later, plus a step; slack for
    // process scheduling and SeaweedFS's 1 s lock waits.
    let bound = INFREQUENT_MS + LEADER_TIMEOUT_MS + FREQUENT_MS + 1500;
    println!("crash failover: {failover} ms (bound {bound} ms)");
    assert!(failover <= bound, "failover took {failover} ms, bound {bound} ms");
    eventually("the new leader's acquire hook", Duration::from_secs(5), || async {
        nodes.iter().find(|n| n.id == second.leader_id).unwrap().transitions().iter().any(|t| t.0 == "acquire" && t.1 == 2).then_some(())
    })
    .await;
    assert_no_overlapping_leadership(&nodes);
}

/// S3 polling by the server's clock: the follower reads when SeaweedFS's `Date −
/// Last-Modified` can first show the record a leader timeout old, so each SIGKILL is taken over
/// within leader timeout + 1 s (the stamps' whole seconds) + the skew after the leader's last
/// write, wherever that write fell among the follower's reads. Reading by its own clock alone,
/// the follower would first see the last write up to a leader timeout late, and take over up
/// to twice the leader timeout after it: over the bound in about two kills of three, by
/// reckoning (the first kill, 18.1 s, when tried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reading_by_the_servers_clock_takes_over_a_leader_timeout_after_each_kill_9() {
    takeovers_by_the_servers_clock("procs-server-clock", &["--server-clock-skew-ms", "1000"], false).await;
}

/// The same with no clock flag: by default a follower uses the server's clock once its own
/// reads have checked it (SeaweedFS restamps each renewal, and its Date keeps time), and says
/// so on stderr, which the test waits for before the first kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_follower_checks_the_servers_clock_then_takes_over_a_leader_timeout_after_each_kill_9() {
    takeovers_by_the_servers_clock("procs-checked-clock", &[], true).await;
}

async fn takeovers_by_the_servers_clock(name: &str, clock: &[&str], checked: bool) {
    let server = seaweed(name).await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/server-clock.json";
    const TIMEOUT_MS: u128 = 10_000;
    const SKEW_MS: u128 = 1_000;
    #[rustfmt::skip]
    let timings = ["--no-peer", "--frequent-ms", "1000", "--infrequent-ms", "30000",
        "--renew-deadline-ms", "2000", "--leader-timeout-ms", "10000"];
    let args = [&timings[..], clock].concat();
    let node = |id: &str| Node::start(Path::new(BIN), &server, id, lock, dir.path(), &args).unwrap();
    let mut nodes = vec![node("c1"), node("c2")];
    let mut leader = wait_record(&s3, lock, "a first leader", Duration::from_secs(30), |r| !r.leader_id.is_empty()).await;
    if checked {
        let follower = nodes.iter().find(|n| n.id != leader.leader_id).unwrap();
        eventually("the follower's check of the server's clock", Duration::from_secs(30), || async {
            follower.stderr().contains("judging staleness by the storage server's clock too").then_some(())
        })
        .await;
    }
    for kill in 0..3 {
        // Some renewals and reads first, at a phase of its own each time.
        tokio::time::sleep(Duration::from_millis(3_000 + 1_700 * kill)).await;
        let victim = nodes.iter_mut().find(|n| n.id == leader.leader_id).unwrap();
        victim.kill9();
        let killed = Instant::now();
        let next = wait_record(&s3, lock, "a takeover", Duration::from_secs(30), |r| r.term > leader.term && !r.leader_id.is_empty()).await;
        let failover = killed.elapsed().as_millis();
        // The last write came before the kill; a claim's round trip, and slack for scheduling.
        let bound = TIMEOUT_MS + 1_000 + SKEW_MS + 1_500;
        println!("kill {kill}: takeover {failover} ms after the kill (bound {bound} ms)");
        assert!(failover <= bound, "kill {kill}: takeover {failover} ms after the kill, bound {bound} ms");
        assert_ne!(next.leader_id, leader.leader_id);
        // A new follower in its place (a new id: each node's hook log is one leadership's).
        nodes.push(node(&format!("c{}", 3 + kill)));
        leader = next;
    }
    assert_no_overlapping_leadership(&nodes);
    // The problem's message, as the host logs it: no node distrusted SeaweedFS's clock.
    for n in &nodes {
        assert!(!n.stderr().contains("not judging staleness"), "{}: the check failed:\n{}", n.id, n.stderr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_runs_the_lose_hook_resigns_and_hands_over_within_one_poll() {
    let server = seaweed("procs-stop").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/stop.json";
    let mut nodes: Vec<Node> = ["s1", "s2"].iter().map(|id| start(&server, id, lock, dir.path(), &[])).collect();
    let first = wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.term == 1 && !r.leader_id.is_empty()).await;
    let leader = nodes.iter_mut().find(|n| n.id == first.leader_id).unwrap();
    leader.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let status = leader.child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0: {status:?}\n{}", leader.stderr());
    assert_eq!(leader.transitions().iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), vec!["acquire", "lose"]);
    let second = wait_record(&s3, lock, "a takeover", Duration::from_secs(20), |r| r.term == 2 && !r.leader_id.is_empty()).await;
    let handover = stopped.elapsed().as_millis();
    let bound = INFREQUENT_MS + FREQUENT_MS + 1000;
    println!("graceful handover: {handover} ms (bound {bound} ms)");
    assert!(handover <= bound, "handover took {handover} ms, bound {bound} ms: the follower must not wait for the lease");
    assert_ne!(second.leader_id, first.leader_id);
    assert_no_overlapping_leadership(&nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_carries_state_between_invocations_and_reports_by_exit_code() {
    let server = seaweed("procs-step").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/step.json";
    let (sa, sb) = (dir.path().join("a.state"), dir.path().join("b.state"));
    let step = |id: &str, state: &std::path::Path| output(s3lect(&server, "step", id, lock).args(TIMINGS).arg("--state").arg(state));
    let a = step("a", &sa);
    assert_eq!(a.status.code(), Some(0), "first step leads: {}", String::from_utf8_lossy(&a.stderr));
    assert!(String::from_utf8_lossy(&a.stdout).starts_with("leader: leader a, term 1"));
    assert!(sa.exists(), "state file written");
    let b = step("b", &sb);
    assert_eq!(b.status.code(), Some(3), "a follower exits 3");
    assert!(String::from_utf8_lossy(&b.stdout).starts_with("follower: leader a, term 1"), "{}", String::from_utf8_lossy(&b.stdout));
    // a renews with its carried state (same boot clock): still leader, same term.
    let a2 = step("a", &sa);
    assert_eq!(a2.status.code(), Some(0), "{}", String::from_utf8_lossy(&a2.stderr));
    // a stops stepping. b, carrying its watch across invocations, takes over after the timeout.
    let started = Instant::now();
    let taken = eventually("b taking over through carried state", Duration::from_secs(20), || async {
        let out = step("b", &sb);
        (out.status.code() == Some(0)).then_some(out)
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(2500), "b must wait out a's lease");
    assert!(String::from_utf8_lossy(&taken.stdout).starts_with("leader: leader b, term 2"));
    // A corrupt state file is reported and replaced, never trusted.
    std::fs::write(&sa, b"garbage").unwrap();
    let a3 = step("a", &sa);
    assert_eq!(a3.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&a3.stderr).contains("carried state not used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_leader_and_resign_revokes_it() {
    let server = seaweed("procs-status").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/status.json";
    let none = output(s3lect(&server, "status", "x", lock));
    assert!(String::from_utf8_lossy(&none.stdout).contains("no election has happened yet"));
    let a = output(s3lect(&server, "step", "a", lock).args(TIMINGS).arg("--state").arg(dir.path().join("a")));
    assert_eq!(a.status.code(), Some(0));
    let plain = output(s3lect(&server, "status", "x", lock));
    assert!(
        String::from_utf8_lossy(&plain.stdout).starts_with("leader a (no address), term 1"),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    let json = output(s3lect(&server, "status", "x", lock).arg("--json"));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    assert_eq!((v["leaderID"].as_str(), v["term"].as_u64(), v["exists"].as_bool()), (Some("a"), Some(1), Some(true)));

    let wrong = output(s3lect(&server, "resign", "b", lock));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("b does not lead (the lock object names a)"));
    let ok = output(s3lect(&server, "resign", "a", lock));
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let after = output(s3lect(&server, "status", "x", lock));
    assert!(String::from_utf8_lossy(&after.stdout).contains("leadership of term 1 was revoked"));
    // The revoked leader cannot renew: its carried etag no longer matches.
    let a2 = output(s3lect(&server, "step", "a", lock).args(TIMINGS).arg("--state").arg(dir.path().join("a")));
    assert_eq!(a2.status.code(), Some(3), "{}", String::from_utf8_lossy(&a2.stdout));
}

/// One `s3lect: error:` line, exit 1, no panic or backtrace.
fn assert_clear_failure(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("s3lect: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {stderr}");
    assert!(errors[0].contains(needle), "error line should mention {needle:?}: {}", errors[0]);
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_bad_config_and_unreachable_endpoints_fail_with_one_clear_line() {
    let server = seaweed("procs-errors").await;
    let out = output(s3lect(&server, "run", "a", "group/e.json").env("AWS_SECRET_ACCESS_KEY", "wrong"));
    assert_clear_failure(&out, "denied access (check credentials");
    let out = output(s3lect(&server, "run", "a", "group/e.json").args(["--renew-deadline-ms", "20000"]));
    assert_clear_failure(&out, "renew-deadline-below-leader-timeout");
    let out = output(s3lect(&server, "run", "a", "/abs.json"));
    assert_clear_failure(&out, "lockfile-path-valid");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // Unreachable: retried for the start-up budget, then reported as down (not as a server
    // that breaks conditional writes).
    let started = Instant::now();
    let out = output(s3lect_at(&format!("http://{closed}"), "b", "run", "a", "group/e.json").args(["--startup-budget-ms", "1500"]));
    assert_clear_failure(&out, "kept failing");
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage unavailable"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // No credentials anywhere in the chain (and no metadata service to ask).
    let out = output(
        s3lect(&server, "run", "a", "group/e.json")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    );
    assert_clear_failure(&out, "no AWS credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_conditional_writes_is_refused_at_start() {
    let fake = fake_s3(200, "").await;
    let cmd = output(s3lect_at(&format!("http://{}", fake.addr), "b", "run", "a", "group/x.json"));
    assert_clear_failure(&cmd, "does not enforce conditional writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resignation_that_cannot_be_written_is_reported_in_the_exit_code() {
    let server = seaweed("procs-resign-fails").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/resign-fails.json";
    let mut node = start(&server, "r1", lock, dir.path(), &[]);
    wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.leader_id == "r1").await;
    server.suspend();
    node.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let status = node.child.wait().unwrap();
    server.resume();
    let stderr = node.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("left the election, but not cleanly") && stderr.contains("writing the resigned record failed"), "{stderr}");
    // Bounded by the in-flight renewal and the resignation's own timeouts (2.5 s each).
    assert!(stopped.elapsed() < Duration::from_secs(8), "exited after {:?}", stopped.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_needs_no_server_id() {
    let server = seaweed("procs-status-anon").await;
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["status", "--bucket", &server.bucket, "--endpoint", &server.endpoint, "--lockfile", "group/anon.json"])
        .env("AWS_ACCESS_KEY_ID", s3lect_cli::local_s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", s3lect_cli::local_s3::SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no election has happened yet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_fall_back_to_the_components_variables_and_logs_can_be_json() {
    let server = seaweed("procs-env-json").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    // The same S3LECT_* variables the wasm components read, and no --bucket/--lockfile/--server-id.
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["step", "--endpoint", &server.endpoint])
        .args(TIMINGS)
        .arg("--state")
        .arg(dir.path().join("state"))
        .env("S3LECT_BUCKET", &server.bucket)
        .env("S3LECT_LOCKFILE_PATH", "group/env.json")
        .env("S3LECT_SERVER_ID", "from-env")
        .env("AWS_ACCESS_KEY_ID", s3lect_cli::local_s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", s3lect_cli::local_s3::SECRET_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = output(cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(record(&s3, "group/env.json").await.unwrap().leader_id, "from-env");

    // JSON logs, with a record whose leaderID carries a newline: one object per line.
    let lock = "group/json.json";
    let hostile = s3lect::LeaderRecord::leading("evil\nforged", "", 0, 3);
    s3.put_if_match(lock, &hostile.to_json(), Condition::Absent).await.unwrap();
    let node = start(&server, "j1", lock, dir.path(), &["--log-format", "json"]);
    wait_record(&s3, lock, "the node replacing the record", Duration::from_secs(30), |r| r.leader_id == "j1").await;
    let log = node.stderr();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))).collect();
    let observed = lines.iter().find(|v| v["fields"]["message"] == "leader observed").expect("a leader-observed event");
    assert_eq!(observed["fields"]["leader"], "evil\\nforged", "escaped: {observed}");
    assert!(lines.iter().all(|v| v["level"].is_string() && v["timestamp"].is_string()), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_storage_conditional_writes_are_atomic_across_threads_and_processes() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = storage.clone();
            tokio::task::spawn_blocking(move || futures_lite(s.put_if_match("k/race", format!("{i}").as_bytes(), Condition::Absent)))
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e, StorageError::PreconditionFailed),
        }
    }
    assert_eq!(wins, 1);

    // Four processes stepping at once on one mock directory: exactly one leader.
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(BIN)
                .args(["step", "--server-id", &format!("p{i}"), "--lockfile", "g/procs.json", "--mock-dir"])
                .arg(dir.path())
                .arg("--state")
                .arg(dir.path().join(format!("p{i}.state")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children.into_iter().map(|c| c.wait_with_output().unwrap().status.code().unwrap()).collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "one leader: {codes:?}");
    assert!(codes.iter().all(|&c| c == 0 || c == 3), "{codes:?}");

    let m = MockStorage::new(dir.path()).unwrap();
    assert!(m.get("g/procs.json").await.is_ok());
    m.cleanup().unwrap();
    assert_eq!(m.get("g/procs.json").await, Err(StorageError::NotFound));
    assert!(matches!(m.get("../escape").await, Err(StorageError::Invalid(_))), "keys cannot leave the directory");
}

/// Runs a future to completion on the current (blocking) thread.
fn futures_lite<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

/// `s3lect resign` hands leadership to another node when one is present: the revoked node
/// waits out the revocation longer than the others can need (three rounds, each revoking
/// whoever leads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_leader_stays_out_while_others_are_present() {
    let server = seaweed("revoke-handover").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/revoke.json";
    // Followers of a live leader poll slowly (as by default: infrequent above the leader
    // timeout), while the revoked leader learns of the revocation at its next renewal: without
    // the longer wait it would usually win.
    let timings = ["--frequent-ms", "1000", "--infrequent-ms", "5000", "--renew-deadline-ms", "2500", "--leader-timeout-ms", "3000"];
    let node = |id| Node::start(Path::new(BIN), &server, id, lock, dir.path(), &timings).unwrap();
    let nodes = [node("a"), node("b")];
    let s3 = storage(&server);
    let mut leader = wait_record(&s3, lock, "a first leader", Duration::from_secs(20), |r| !r.leader_id.is_empty()).await;
    for round in 0..3 {
        let out = output(s3lect(&server, "resign", &leader.leader_id, lock));
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let revoked = leader.leader_id.clone();
        leader =
            wait_record(&s3, lock, "the next leader", Duration::from_secs(20), |r| !r.leader_id.is_empty() && r.term > leader.term).await;
        println!("round {round}: revoked {revoked}, next {} term {}", leader.leader_id, leader.term);
        assert_ne!(leader.leader_id, revoked, "round {round}: the revoked node took its leadership straight back");
    }
    assert_no_overlap_after_record_destroyed(&nodes);
}

/// A `step` that can never see a leader go (no carried state, one step, no timestamp mode)
/// says so on stderr, every time; one that carries its state on this machine does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_step_that_can_never_fail_over_says_so() {
    let server = seaweed("stateless-warning").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/stateless.json";
    let step = |id: &str, state: &str| output(s3lect(&server, "step", id, lock).args(TIMINGS).arg("--state").arg(dir.path().join(state)));
    assert_eq!(step("a", "a").status.code(), Some(0), "a leads");
    for fresh in ["b1", "b2"] {
        let out = step("b", fresh);
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("can never see a leader go") && stderr.contains("never takes over"), "{stderr}");
    }
    step("b", "kept");
    let out = step("b", "kept");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("can never see a leader go"), "carried state continues the watch: {stderr}");
}

/// A stop that cuts a read short is no election problem: no warning at shutdown. The server
/// accepts the node's first read and never answers, so the read is in flight when the stop comes.
#[test]
fn stopping_during_a_read_is_not_reported_as_a_problem() {
    use std::io::Read;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let mut node = s3lect_at(&endpoint, "b", "run", "a", "group/stop-reading.json")
        .args(["--no-peer", "--no-conformance-check"])
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (mut conn, _) = silent.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = vec![];
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).unwrap(), 1, "the request's head arrives");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"GET "), "{}", String::from_utf8_lossy(&head));
    // SAFETY: kill(2) on our own, not yet reaped, child.
    unsafe { libc::kill(node.id() as libc::pid_t, libc::SIGTERM) };
    let status = node.wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("left the election") && !stderr.contains("election problem"), "{stderr}");
}
