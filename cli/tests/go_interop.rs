//! Wire compatibility with Go s3lect: lock objects written by Go's encoding/json (golden files
//! in tests/golden/go, made by tests/go/leaderrecord.go) read correctly here, and ours decode
//! in Go into the seed's LeaderRecord with every field it needs; a lock object Go left behind
//! is taken over by the rules (a leader record after a leader timeout, a resigned one at once).

mod common;

use common::interop::root;
use common::nodes::{LEADER_TIMEOUT_MS, assert_no_overlapping_leadership, start};
use common::{seaweed, storage, wait_record};
use s3lect::Condition;
use s3lect::{LeaderRecord, Storage};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn go(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("go")
        .arg("run")
        .arg(root().join("tests/go/leaderrecord.go"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Go is installed (scripts/setup-interop.sh)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "go run leaderrecord.go {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/golden/go").join(format!("{name}.json"))).unwrap()
}

const AT_NS: i128 = 1_795_843_867_123_456_789; // 2026-11-28T05:31:07.123456789Z

#[test]
fn records_written_by_go_read_correctly() {
    // (file, leader, address, unix ns, resigned)
    let cases: [(&str, &str, &str, i128, bool); 5] = [
        ("leader-nanos", "go-node-1", "10.0.0.7:8443", AT_NS, false),
        ("leader-trimmed", "go-node-1", "10.0.0.7:8443", AT_NS - 23_456_789, false),
        ("leader-whole-second", "go-node-2", "", AT_NS - 123_456_789, false),
        // Go s3lect writes time.Now() in the machine's zone: same instant, other offset.
        ("leader-local-zone", "go-node-3", "[::1]:9443", AT_NS, false),
        ("resigned", "", "", s3lect_guest::record::ZERO_TIME.unix_timestamp_nanos(), true),
    ];
    for (file, id, addr, ns, resigned) in cases {
        let r = LeaderRecord::parse(&golden(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((r.leader_id.as_str(), r.leader_addr.as_str()), (id, addr), "{file}");
        assert_eq!(r.last_updated_unix_ns(), ns, "{file}");
        assert_eq!(r.is_resigned(), resigned, "{file}");
        assert_eq!((r.term, r.nonce), (0, 0), "{file}: Go writes no term or nonce");
    }
}

#[test]
fn golden_files_are_what_go_writes() {
    let dir = tempfile::tempdir().unwrap();
    go(&["encode", dir.path().to_str().unwrap()], b"");
    let mut names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names.len(), 5);
    for name in names {
        let fresh = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(golden(name.trim_end_matches(".json")), fresh, "{name} differs from Go's output");
    }
}

#[test]
fn our_records_decode_in_go_into_the_seed_leader_record() {
    let mut leading = LeaderRecord::leading("rust-node", "127.0.0.1:8443", AT_NS, 7);
    leading.nonce = 0x5eed;
    // Zero-config peer mode's certificate pin: a field Go does not know.
    leading.peer_cert_sha256 = "ab".repeat(32);
    let whole = LeaderRecord::leading("rust-node", "", AT_NS - 123_456_789, 8);
    let resigned = LeaderRecord::resigned(9);
    // `s3lect resign`'s revocation: nobody leads, but the time is real (not a resignation).
    let revoked = LeaderRecord::revocation("rust-node", AT_NS, 9);
    let ours = [&leading, &whole, &resigned, &revoked];
    let input: Vec<u8> = ours.iter().flat_map(|r| [r.to_json(), b"\n".to_vec()].concat()).collect();
    let decoded: Vec<serde_json::Value> = go(&["decode"], &input).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(decoded.len(), ours.len());
    for (r, d) in ours.iter().zip(&decoded) {
        assert_eq!(d["leaderID"], r.leader_id.as_str(), "{d}");
        assert_eq!(d["leaderAddr"], r.leader_addr.as_str(), "{d}");
        assert_eq!(d["isZero"], r.is_resigned(), "Go sees a resignation exactly when we mean one: {d}");
        if !r.is_resigned() {
            assert_eq!(d["unixNano"].as_i64().map(i128::from), Some(r.last_updated_unix_ns()), "{d}");
        }
        assert!(d["fieldsPresent"].as_array().unwrap().contains(&"lastUpdated".into()), "{d}");
    }
    assert_eq!(decoded[0]["rfc3339Nano"], "2026-11-28T05:31:07.123456789Z");
    assert_eq!(decoded[1]["rfc3339Nano"], "2026-11-28T05:31:07Z");
}

/// A lock object left by Go s3lect is an election like any other: a leader record must stand
/// unchanged for a leader timeout before we take over (with term 1: Go has no terms), a
/// resigned one (zero time) is free at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3lect_takes_over_lock_objects_left_by_go_s3lect() {
    let server = seaweed("go-takeover").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    for (file, lock, must_wait) in [("leader-nanos", "go/leader.json", true), ("resigned", "go/resigned.json", false)] {
        s3.put_if_match(lock, &golden(file), Condition::Absent).await.unwrap();
        let started = Instant::now();
        let node = start(&server, &format!("rust-{file}"), lock, dir.path(), &[]);
        let r = wait_record(&s3, lock, "a takeover of the Go record", Duration::from_secs(30), |r| r.leader_id == node.id).await;
        let waited = started.elapsed().as_millis();
        assert_eq!(r.term, 1, "{file}: Go records carry no term; the first of ours is 1");
        if must_wait {
            assert!(waited >= LEADER_TIMEOUT_MS, "{file}: took over after {waited} ms, before a leader timeout");
        } else {
            assert!(waited < LEADER_TIMEOUT_MS, "{file}: a resigned record needs no wait, took {waited} ms");
        }
        assert_no_overlapping_leadership(&[node]);
    }
}
