//! `s3lect demo`: a local election with no cloud account. Starts SeaweedFS on loopback (or
//! falls back to MockStorage), runs three `s3lect run` processes, SIGKILLs the leader, shows
//! the takeover with the term going up, then stops the new leader gracefully.

use super::fail;
use clap::Args;
use s3lect::{LeaderRecord, MockStorage, S3Storage, Storage};
use s3lect_cli::cluster::{Node, server_flags};
use s3lect_cli::local_s3::{self, LocalS3};
use s3lect_cli::{node_metrics, wait};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DemoArgs {
    /// SeaweedFS `weed` binary (default: $S3LECT_WEED, .venv/bin/weed, then PATH).
    #[arg(long)]
    weed: Option<PathBuf>,
    /// Use the filesystem MockStorage instead of a local S3 server.
    #[arg(long)]
    mock: bool,
}

const LOCK: &str = "demo/leader.json";
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
/// How often the demo looks at the lock object and the follower's metrics.
const POLL: Duration = Duration::from_millis(50);
/// Short timings so the demo takes seconds: lease 2.5 s, takeover after 3 s unchanged.
const TIMINGS: [(&str, &str); 4] =
    [("--frequent-ms", "1000"), ("--infrequent-ms", "2000"), ("--leader-timeout-ms", "3000"), ("--renew-deadline-ms", "2500")];
/// What a follower's metrics count when the leader answers its probe.
const PROBES_ANSWERED: &str = "s3lect_probes_total{outcome=\"leader\"}";

async fn read_record(storage: &dyn Storage) -> Option<(LeaderRecord, String)> {
    let (data, etag) = storage.get(LOCK).await.ok()?;
    Some((LeaderRecord::parse(&data).ok()?, etag))
}

/// Polls the lock object until `pred` holds, or fails after `limit`.
async fn watch(storage: &dyn Storage, limit: Duration, pred: impl Fn(&LeaderRecord) -> bool) -> Result<LeaderRecord, String> {
    wait::until(limit, POLL, || async { read_record(storage).await.map(|(r, _)| r).filter(|r| pred(r)) })
        .await
        .ok_or_else(|| format!("the demo election did not reach the expected state within {limit:?}"))
}

pub async fn demo(args: DemoArgs) -> ExitCode {
    match run_demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn run_demo(args: DemoArgs) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the s3lect binary: {e}"))?;
    let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let weed = if args.mock { None } else { args.weed.or_else(local_s3::find_weed) };
    let _server;
    let (storage, backend_args, backend): (Arc<dyn Storage>, Vec<String>, String) = match weed {
        Some(weed) => {
            println!("starting a local S3 server (SeaweedFS, {}) ...", weed.display());
            let server = LocalS3::start(&weed, "s3lect-demo").await?;
            let storage = Arc::new(S3Storage::new(server.s3_config()).map_err(|e| e.to_string())?);
            let args = server_flags(&server);
            let desc = format!("S3 (SeaweedFS) at {}, bucket {}", server.endpoint, server.bucket);
            _server = Some(server);
            (storage, args, desc)
        }
        None => {
            println!("no SeaweedFS binary found (run scripts/setup-s3-server.sh): using MockStorage");
            let dir = logs.path().join("mock");
            let storage = Arc::new(MockStorage::new(&dir).map_err(|e| e.to_string())?);
            _server = None;
            (storage, vec!["--mock-dir".into(), dir.display().to_string()], format!("MockStorage in {}", dir.display()))
        }
    };
    println!("lock object: {LOCK} on {backend}");
    println!("timings: renew every 1 s, lease 2.5 s, takeover after 3 s unchanged\n");

    // Metrics, so the demo can see the follower watch the new leader.
    let mut timings: Vec<&str> = TIMINGS.iter().flat_map(|(k, v)| [*k, *v]).collect();
    timings.extend(["--metrics-bind", "127.0.0.1:0"]);
    let mut nodes = Vec::new();
    for id in NODES {
        let node = Node::start_with(&exe, &backend_args, id, LOCK, logs.path(), &timings).map_err(|e| format!("starting {id}: {e}"))?;
        println!("started {id} (pid {})", node.child.id());
        nodes.push(node);
    }
    let result = script(storage.as_ref(), &mut nodes).await;
    for n in &mut nodes {
        n.signal(libc::SIGTERM);
    }
    for n in &mut nodes {
        let _ = n.child.wait();
    }
    if result.is_err() {
        for n in &nodes {
            eprintln!("--- {} log ---\n{}", n.id, n.stderr());
        }
    }
    result
}

/// Waits until a probe of `follower`'s is answered by a leader: its count of such answers grows
/// (the one leader it could have probed before, the killed one, answers no more).
async fn watching(follower: &Node, limit: Duration) -> Result<(), String> {
    let addr = node_metrics::metrics_addr(follower, limit).await.ok_or_else(|| format!("{} logged no metrics endpoint", follower.id))?;
    let answered = || async { Ok::<_, String>(node_metrics::sample(&node_metrics::scrape(&addr).await?, PROBES_ANSWERED).unwrap_or(0.0)) };
    let before = answered().await?;
    let grew = || async {
        match answered().await {
            Ok(n) if n > before => Some(Ok(())),
            Ok(_) => None,
            // A failed scrape ends the wait at once, with its error.
            Err(e) => Some(Err(e)),
        }
    };
    wait::until(limit, POLL, grew).await.unwrap_or_else(|| Err(format!("{} did not probe the new leader within {limit:?}", follower.id)))
}

async fn script(storage: &dyn Storage, nodes: &mut [Node]) -> Result<(), String> {
    let t0 = Instant::now();
    let first = watch(storage, Duration::from_secs(60), |r| !r.is_resigned() && !r.leader_id.is_empty()).await?;
    println!("[{:>6} ms] {} leads, term {}", t0.elapsed().as_millis(), first.leader_id, first.term);

    // Let it renew a few times: the etag changes each renewal.
    let (_, etag_before) = read_record(storage).await.ok_or("lock object vanished")?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (still, etag_after) = read_record(storage).await.ok_or("lock object vanished")?;
    println!("[{:>6} ms] {} renewed its lease (etag {} -> {})", t0.elapsed().as_millis(), still.leader_id, etag_before, etag_after);

    let victim = nodes.iter_mut().find(|n| n.id == first.leader_id).ok_or("leader is not one of the demo nodes")?;
    victim.kill9();
    let killed_at = Instant::now();
    println!("[{:>6} ms] SIGKILL {} (no resignation: the others must wait out the lease)", t0.elapsed().as_millis(), first.leader_id);
    let second = watch(storage, Duration::from_secs(30), |r| r.term > first.term && !r.leader_id.is_empty()).await?;
    let crash_failover = killed_at.elapsed();
    println!(
        "[{:>6} ms] {} took over, term {} ({} ms after the kill)",
        t0.elapsed().as_millis(),
        second.leader_id,
        second.term,
        crash_failover.as_millis()
    );

    // A follower learns of a new leader at its next read of the lock object, and from then on
    // watches the leader's health endpoint (peer mode, `run`'s default), where a resignation
    // reaches it at once. Stopped before that, the handover would wait for that read.
    let follower = nodes.iter().find(|n| n.id != first.leader_id && n.id != second.leader_id).ok_or("no follower is left")?;
    watching(follower, Duration::from_secs(20)).await?;
    println!("[{:>6} ms] {} watches {} (the leader answered its probe)", t0.elapsed().as_millis(), follower.id, second.leader_id);
    let leader = nodes.iter().find(|n| n.id == second.leader_id).ok_or("new leader is not a demo node")?;
    leader.signal(libc::SIGTERM);
    let stopped_at = Instant::now();
    println!("[{:>6} ms] SIGTERM {} (graceful: it resigns)", t0.elapsed().as_millis(), second.leader_id);
    let third = watch(storage, Duration::from_secs(30), |r| r.term > second.term && !r.leader_id.is_empty()).await?;
    let handover = stopped_at.elapsed();
    println!(
        "[{:>6} ms] {} took over, term {} ({} ms after the stop)",
        t0.elapsed().as_millis(),
        third.leader_id,
        third.term,
        handover.as_millis()
    );

    println!("\nsummary");
    println!("  term {}: {}", first.term, first.leader_id);
    println!(
        "  term {}: {}  crash failover {} ms (bound: lease timeout 3000 ms + polling)",
        second.term,
        second.leader_id,
        crash_failover.as_millis()
    );
    println!(
        "  term {}: {}  graceful handover {} ms (the follower was watching the leader)",
        third.term,
        third.leader_id,
        handover.as_millis()
    );
    Ok(())
}
