//! One election, two unrelated hosts: `s3lect run` (the election component in wasmtime, native
//! S3 client) and Node.js running the composed cron component through jco (S3 over wasi:http,
//! SigV4 inside wasm). They share one lock object on a real SeaweedFS; each takes over when
//! the other is killed with SIGKILL, and leadership never overlaps.

mod common;

use common::interop::{component_env, node_host};
use common::nodes::*;
use common::{eventually, seaweed, storage, wait_record};
use std::path::Path;
use std::time::{Duration, Instant};

/// A Node.js process hosting the composed component; its reports go to `<dir>/<log>.out`.
fn start_node_js(server: &s3lect_cli::local_s3::LocalS3, id: &str, lock: &str, dir: &Path, log: &str) -> (Node, std::path::PathBuf) {
    let hook_log = dir.join(format!("{log}.hooks"));
    let stderr_log = dir.join(format!("{log}.stderr"));
    let out = dir.join(format!("{log}.out"));
    let child = node_host(&component_env(server, id, lock), &["--hook-log", hook_log.to_str().unwrap()])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&stderr_log).unwrap())
        .spawn()
        .expect("node runs");
    (Node { id: id.to_string(), child, hook_log, stderr_log, killed_at_ns: None }, out)
}

/// The last report a Node.js host printed, if any.
fn last_report(out: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(out).ok()?;
    serde_json::from_str(text.lines().last()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasmtime_node_and_a_node_js_node_share_one_election() {
    let server = seaweed("cross-host").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "cross/leader.json";

    // Node.js first: it creates the lock object.
    let (mut js, js_out) = start_node_js(&server, "js", lock, dir.path(), "js-1");
    wait_record(&s3, lock, "the Node.js host to lead", Duration::from_secs(30), |r| r.leader_id == "js" && r.term == 1).await;
    let mut wt = start(&server, "wt", lock, dir.path(), &[]);
    eventually("the wasmtime node to follow the Node.js leader", Duration::from_secs(30), || async {
        wt.stderr().lines().any(|l| l.contains("leader observed") && l.contains("leader=js")).then_some(())
    })
    .await;
    // Three renewals by the Node.js leader pass (four invocations as leader, the first being the
    // acquisition); the wasmtime node, watching, stays out.
    eventually("three renewals by the Node.js leader", Duration::from_secs(30), || async {
        let reports = std::fs::read_to_string(&js_out).unwrap_or_default();
        (reports.lines().filter(|l| l.contains("\"isLeader\":true")).count() >= 4).then_some(())
    })
    .await;
    assert!(wt.transitions().is_empty(), "the wasmtime node never acquired while Node.js led");

    js.kill9();
    let killed = Instant::now();
    wait_record(&s3, lock, "the wasmtime node to take over", Duration::from_secs(30), |r| r.leader_id == "wt" && r.term == 2).await;
    println!("wasmtime took over from Node.js {} ms after SIGKILL", killed.elapsed().as_millis());

    // Node.js comes back with its carried state: its renewal loses, it follows.
    let (mut js2, js2_out) = start_node_js(&server, "js", lock, dir.path(), "js-2");
    let r = eventually("the restarted Node.js host to follow", Duration::from_secs(30), || async {
        last_report(&js2_out).filter(|r| r["leaderID"] == "wt")
    })
    .await;
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64(), r["restored"].as_bool()), (Some(false), Some(2), Some(true)), "{r}");

    wt.kill9();
    let killed = Instant::now();
    wait_record(&s3, lock, "the Node.js host to take over", Duration::from_secs(30), |r| r.leader_id == "js" && r.term == 3).await;
    println!("Node.js took over from wasmtime {} ms after SIGKILL", killed.elapsed().as_millis());
    eventually("the Node.js host to report leadership", Duration::from_secs(10), || async {
        last_report(&js2_out).filter(|r| r["isLeader"] == true && r["term"] == 3)
    })
    .await;

    js2.kill9();
    assert_no_overlapping_leadership(&[js, wt, js2]);
}
