//! `s3lect run -- CMD`: the command runs only while its node leads, and is dead before the
//! lease ends — with real processes, a real SeaweedFS, and one node cut off from it.

mod common;

use common::fault_proxy::{Fault, Plan, fault_proxy};
use common::nodes::*;
use common::{eventually, record, seaweed, storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The supervised command: logs `start PID NS` and, on SIGTERM, `stop PID NS`.
fn worker(dir: &Path) -> PathBuf {
    let script = dir.join("worker.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"start $$ $(date +%s%N)\" >> \"$1\"\ntrap 'echo \"stop $$ $(date +%s%N)\" >> \"$1\"; exit 0' TERM\nwhile :; do sleep 0.05; done\n",
    )
    .unwrap();
    script
}

/// The first `event PID NS` line of a worker log.
fn first(log: &Path, event: &str) -> Option<(u32, u128)> {
    s3lect_cli::cluster::read_log(log).into_iter().find(|(e, ..)| e == event).map(|(_, pid, at)| (pid as u32, at))
}

/// Gone, or a zombie nobody reaped yet (it runs no more either way).
fn dead(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

fn with_command<'a>(script: &'a Path, log: &'a Path) -> Vec<&'a str> {
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend(["--", "sh", script.to_str().unwrap(), log.to_str().unwrap()]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_s3_stops_its_command_before_another_starts() {
    let server = seaweed("supervise-cut").await;
    let dir = tempfile::tempdir().unwrap();
    let script = worker(dir.path());
    let cut = Arc::new(AtomicBool::new(false));
    let plan: Plan = {
        let cut = cut.clone();
        Arc::new(move |_| if cut.load(Ordering::SeqCst) { Fault::Reset } else { Fault::Pass })
    };
    let proxy = fault_proxy(server.endpoint.trim_start_matches("http://").parse().unwrap(), plan).await;
    let lock = "supervise/cut.json";
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let via_proxy = vec!["--bucket".into(), server.bucket.clone(), "--endpoint".into(), proxy.endpoint()];
    let bin = Path::new(BIN);
    let a = Node::start_with(bin, &via_proxy, "a", lock, dir.path(), &with_command(&script, &log_a)).unwrap();
    let (a_pid, _) = eventually("a's command to start", Duration::from_secs(20), || async { first(&log_a, "start") }).await;
    let b = Node::start(bin, &server, "b", lock, dir.path(), &with_command(&script, &log_b)).unwrap();
    eventually("b to follow a", Duration::from_secs(20), || async { b.stderr().contains("leader observed").then_some(()) }).await;
    assert!(first(&log_b, "start").is_none(), "b's command must not run while a leads: {}", b.stderr());
    let cut_at = Instant::now();
    cut.store(true, Ordering::SeqCst);
    let (_, b_start) = eventually("b's command to start", Duration::from_secs(20), || async { first(&log_b, "start") }).await;
    let (_, a_stop) = first(&log_a, "stop").unwrap_or_else(|| panic!("a's command got no SIGTERM:\n{}", a.stderr()));
    assert!(dead(a_pid), "a's command still runs");
    let gap_ms = (b_start as i128 - a_stop as i128) as f64 / 1e6;
    println!("cut off → a's command stopped → b's command started: gap {gap_ms:.0} ms (takeover {:?} after the cut)", cut_at.elapsed());
    assert!(gap_ms > 0.0, "b's command started {gap_ms} ms before a's stopped");
    assert!(a.stderr().contains("leadership ending: command stopped"), "{}", a.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_dies_with_s3lect() {
    let server = seaweed("supervise-kill").await;
    let dir = tempfile::tempdir().unwrap();
    let script = worker(dir.path());
    let log = dir.path().join("a.log");
    let mut a = Node::start(Path::new(BIN), &server, "a", "supervise/kill.json", dir.path(), &with_command(&script, &log)).unwrap();
    let (pid, _) = eventually("the command to start", Duration::from_secs(20), || async { first(&log, "start") }).await;
    a.kill9();
    eventually("the command to die with s3lect", Duration::from_secs(5), || async { dead(pid).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_ends_the_leadership_with_its_status() {
    let server = seaweed("supervise-exit").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "supervise/exit.json";
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend(["--", "sh", "-c", "test \"$S3LECT_TERM\" = 1 && exit 7"]);
    let mut a = Node::start(Path::new(BIN), &server, "a", lock, dir.path(), &args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = a.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "s3lect did not exit after its command did: {}", a.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(7), "{}", a.stderr());
    let r = record(&storage(&server), lock).await.unwrap();
    assert!(r.is_resigned(), "the leadership was resigned: {r:?}");
}

#[test]
fn a_grace_period_that_does_not_fit_the_timings_is_refused() {
    let out = output(
        std::process::Command::new(BIN)
            .args(["run", "--server-id", "a", "--lockfile", "x.json", "--mock-dir", "/tmp/unused"])
            .args(TIMINGS)
            .args(["--child-grace-ms", "1400", "--", "true"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("--child-grace-ms (1400 ms)") && err.contains("(1500 ms)"), "{err}");
}
