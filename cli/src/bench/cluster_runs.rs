//! Measurements with real `s3lect` processes: crash failover, graceful handover, cold `step`.

use super::stats::Row;
use s3lect::LeaderRecord;
use s3lect::{S3Storage, Storage};
use s3lect_cli::cluster::{Node, command_at, now_ns};
use s3lect_cli::local_s3::LocalS3;
use s3lect_cli::wait;
use std::path::Path;
use std::time::{Duration, Instant};

pub const SHORT: [&str; 8] =
    ["--frequent-ms", "1000", "--infrequent-ms", "1000", "--renew-deadline-ms", "2500", "--leader-timeout-ms", "3000"];

async fn leader(s3: &S3Storage, lock: &str, min_term: u64, limit: Duration) -> Option<LeaderRecord> {
    wait::until(limit, Duration::from_millis(20), || async {
        let (d, _) = s3.get(lock).await.ok()?;
        LeaderRecord::parse(&d).ok().filter(|r| r.term >= min_term && !r.leader_id.is_empty())
    })
    .await
}

/// Time from `t0_ns` until `node` logged acquiring `term` (its acquire hook ran).
async fn acquired_after(node: &Node, term: u64, t0_ns: u128, limit: Duration) -> Option<f64> {
    wait::until(limit, Duration::from_millis(10), || async {
        let t = node.transitions().into_iter().find(|t| t.0 == "acquire" && t.1 == term)?;
        Some(t.2.saturating_sub(t0_ns) as f64 / 1e6)
    })
    .await
}

/// Waits a random time in [1 s, 1 s + `spread_ms`]: kills and stops then land at a random
/// point of the followers' polling cycle, as they would in production — not just after an
/// election, when every follower has just read the leader's first write.
async fn steady_state(rng: &mut fastrand::Rng, spread_ms: u64) {
    tokio::time::sleep(Duration::from_millis(1_000 + rng.u64(0..=spread_ms))).await;
}

/// How the nodes watch their leader: each node is run as a user would run it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Mode {
    /// `--no-peer`: followers read S3 and judge staleness by their own clocks, and by the
    /// store's once their reads have checked it (`server-clock-auto`; where the timings leave
    /// room for its assumed skew of 1 s, which the short ones do not).
    Polling,
    /// `--no-peer --server-clock-auto false`: by their own clocks alone, as before the check.
    OwnClock,
    /// What `s3lect run` does with no flags (a self-signed certificate, pinned through the
    /// record).
    Peer,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Polling, Mode::OwnClock, Mode::Peer];

    fn args(self) -> &'static [&'static str] {
        match self {
            Mode::Polling => &["--no-peer"],
            Mode::OwnClock => &["--no-peer", "--server-clock-auto", "false"],
            Mode::Peer => &[],
        }
    }

    /// How the mode is labelled in the table.
    fn label(self) -> &'static str {
        match self {
            Mode::Polling => "S3 polling (`--no-peer`)",
            Mode::OwnClock => "S3 polling by the nodes' own clocks (`--no-peer --server-clock-auto false`)",
            Mode::Peer => "peer mode (the default: `s3lect run` with no flags)",
        }
    }
}

fn start_node(bin: &Path, server: &LocalS3, id: &str, lock: &str, dir: &Path, timings: &[&str], mode: Mode) -> Node {
    let args = [timings, mode.args()].concat();
    Node::start(bin, server, id, lock, dir, &args).unwrap()
}

/// How the leader is taken away.
#[derive(Clone, Copy, PartialEq)]
pub enum Exit {
    /// SIGKILL: followers must wait out the lease.
    Crash,
    /// SIGTERM: the leader resigns.
    Graceful,
}

/// Takes the leader of `nodes` away `runs` times, each at a random point of steady state, and
/// measures until another node's acquire hook runs; the old leader restarts as a follower.
#[allow(clippy::too_many_arguments)] // one benchmark scenario, spelled out at its call sites
pub async fn takeover(bin: &Path, weed: &Path, exit: Exit, label: &str, timings: &[&str], mode: Mode, runs: usize, nodes: usize) -> Row {
    let server = LocalS3::start(weed, "bench-takeover").await.unwrap();
    let s3 = S3Storage::new(server.s3_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let spread = if timings == SHORT { 1_000 } else { 30_000 };
    let lock = format!("bench/takeover-{}.json", now_ns());
    let start = |id: &str| start_node(bin, &server, id, &lock, dir.path(), timings, mode);
    let count = nodes;
    let mut nodes: Vec<Node> = (0..count).map(|i| start(&format!("n{i}"))).collect();
    let mut samples = vec![];
    let mut term = leader(&s3, &lock, 1, Duration::from_secs(120)).await.unwrap().term;
    for run in 0..runs {
        steady_state(&mut rng, spread).await;
        let r = leader(&s3, &lock, term, Duration::from_secs(120)).await.unwrap();
        let i = nodes.iter().position(|n| n.id == r.leader_id).unwrap();
        let t0 = now_ns();
        match exit {
            Exit::Crash => nodes[i].kill9(),
            Exit::Graceful => {
                nodes[i].signal(libc::SIGTERM);
                let _ = nodes[i].child.wait();
            }
        }
        let next = leader(&s3, &lock, r.term + 1, Duration::from_secs(120)).await.expect("takeover");
        let winner = nodes.iter().find(|n| n.id == next.leader_id).unwrap();
        let ms = acquired_after(winner, next.term, t0, Duration::from_secs(10)).await.expect("acquire hook ran");
        eprintln!("{label} {mode:?} {count} nodes run {run}: {ms:.0} ms");
        samples.push(ms);
        term = next.term;
        let id = nodes[i].id.clone();
        nodes[i] = start(&id);
    }
    let mode = mode.label();
    let (what, target) = match exit {
        Exit::Crash => ("crash failover (SIGKILL → acquire hook)", "p99 ≤ 20 s at defaults; peer mode ≤ leader_timeout + 1 s"),
        Exit::Graceful => ("graceful handover (SIGTERM → acquire hook)", "p99 ≤ 5 s at defaults; peer mode < 1 s"),
    };
    Row::new(what, &format!("{count} nodes, {label}, {mode}"), "ms", samples, target).go(go_takeover(exit, timings))
}

/// Go s3lect's takeover under the same timings, from its algorithm: every node polls every
/// frequent interval f and takes over once the record's timestamp is a leader timeout T old. A
/// crash falls up to f after the last renewal and the first poll after T comes up to f later,
/// so takeover comes T − f to T + f after the crash; a resignation is seen at the next poll,
/// within f.
fn go_takeover(exit: Exit, timings: &[&str]) -> String {
    let flag = |name: &str, default: f64| {
        timings.iter().position(|t| *t == name).and_then(|i| timings.get(i + 1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(default)
            / 1e3
    };
    let (f, t) = (flag("--frequent-ms", 5_000.0), flag("--leader-timeout-ms", 15_000.0));
    match exit {
        Exit::Crash => format!("{:.0}–{:.0} s", t - f, t + f),
        Exit::Graceful => format!("0–{f:.0} s"),
    }
}

/// `s3lect step` from process start to exit, component precompiled (cache warmed first).
pub async fn cold_step(bin: &Path, weed: &Path, runs: usize) -> Row {
    let server = LocalS3::start(weed, "bench-step").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let step = || {
        let t = Instant::now();
        let out = command_at(bin, &server.endpoint, &server.bucket, "step", "a", "bench/step.json")
            .arg("--state")
            .arg(&state)
            .arg("--no-conformance-check")
            .output()
            .unwrap();
        assert!(out.status.code() == Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        t.elapsed().as_secs_f64() * 1e3
    };
    step(); // warms the precompiled-component cache
    let samples = (0..runs).map(|_| step()).collect();
    Row::new("cold one-shot `s3lect step` (start → exit)", "leader renewal, loopback S3, cached component", "ms", samples, "< 30 ms")
}

/// Resident memory of `s3lect` nodes (`run`, default timings) once a leader is elected: each
/// node's largest VmRSS, sampled every 500 ms over `secs` (a follower's poll and many
/// renewals); and a second row, each node's largest RssAnon, the part of it that is not pages
/// of mapped files (those are shared with the page cache and reclaimable).
pub async fn node_rss(bin: &Path, weed: &Path, mode: Mode, nodes: usize, secs: u64) -> [Row; 2] {
    let server = LocalS3::start(weed, "bench-rss").await.unwrap();
    let s3 = S3Storage::new(server.s3_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lock = format!("bench/rss-{}.json", now_ns());
    // The precompiled component cached first, as any later start finds it: a node that
    // compiles it stays larger for its whole life (the first-start row measures that).
    let warm = command_at(bin, &server.endpoint, &server.bucket, "step", "warm", &format!("{lock}.warm")).output().unwrap();
    assert!(warm.status.code() == Some(0), "{}", String::from_utf8_lossy(&warm.stderr));
    let nodes: Vec<Node> = (0..nodes).map(|i| start_node(bin, &server, &format!("n{i}"), &lock, dir.path(), &[], mode)).collect();
    leader(&s3, &lock, 1, Duration::from_secs(60)).await.expect("a leader");
    let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
    let (peak, anon) = peak_rss(&pids, secs).await;
    let config = format!("{} nodes, defaults, {}; each node's peak over {secs} s after the election", nodes.len(), mode.label());
    [
        Row::new("RSS per node (`s3lect run`)", &config, "MiB", peak, "≤ Go s3lect's")
            .go("7.3–8.3 MiB (measured for issue 15, not computed)".into()),
        Row::new("RSS per node, anonymous part (RssAnon)", &config, "MiB", anon, "–"),
    ]
}

/// Resident memory of one `s3lect run` (`--no-peer`) that finds no precompiled component and
/// compiles it: a node's first start on a machine. Its peak over `secs` once it leads.
pub async fn first_start_rss(bin: &Path, weed: &Path, secs: u64) -> Row {
    let server = LocalS3::start(weed, "bench-rss-first").await.unwrap();
    let s3 = S3Storage::new(server.s3_config()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let lock = format!("bench/rss-first-{}.json", now_ns());
    let mut child = command_at(bin, &server.endpoint, &server.bucket, "run", "first", &lock)
        .arg("--no-peer")
        .env("S3LECT_CACHE_DIR", cache.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    leader(&s3, &lock, 1, Duration::from_secs(60)).await.expect("a leader");
    let (peak, _) = peak_rss(&[child.id()], secs).await;
    let _ = child.kill();
    let _ = child.wait();
    let compiled = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(compiled, 1, "the node compiled and cached the component");
    Row::new(
        "RSS per node (`s3lect run`), first start",
        &format!(
            "1 node, defaults, `--no-peer`, no precompiled copy yet (it compiles the component); peak over {secs} s after the election"
        ),
        "MiB",
        peak,
        "–",
    )
}

/// Each process's largest VmRSS and largest RssAnon, sampled every 500 ms for `secs`.
async fn peak_rss(pids: &[u32], secs: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rss = vec![0.0f64; pids.len()];
    let mut anon = vec![0.0f64; pids.len()];
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        for (i, pid) in pids.iter().enumerate() {
            rss[i] = rss[i].max(status_mib(*pid, "VmRSS:"));
            anon[i] = anon[i].max(status_mib(*pid, "RssAnon:"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    (rss, anon)
}

/// VmRSS of process `pid`, in MiB (0 if it is gone).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// A kB field of `/proc/PID/status` (`field` with its colon), in MiB; 0 if it is gone.
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 =
        status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    kb / 1024.0
}
