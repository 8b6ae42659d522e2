//! Real `s3lect` processes for the end-to-end tests, with hooks that log every transition
//! (event, term, wall-clock ns) so a test can check that leadership never overlapped.
#![allow(dead_code)]

use s3lect_cli::local_s3::LocalS3;
use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_s3lect");
/// Seconds-scale timings (SeaweedFS makes race losers wait in 1 s steps): renew every 1 s,
/// lease 2.5 s, takeover after 3 s; followers poll every 1 s.
pub const TIMINGS: [&str; 8] =
    ["--frequent-ms", "1000", "--infrequent-ms", "1000", "--renew-deadline-ms", "2500", "--leader-timeout-ms", "3000"];
pub const LEADER_TIMEOUT_MS: u128 = 3000;
pub const FREQUENT_MS: u128 = 1000;
pub const INFREQUENT_MS: u128 = 1000;

/// The command line that points a subcommand at `server`.
pub fn s3lect(server: &LocalS3, sub: &str, id: &str, lock: &str) -> Command {
    s3lect_at(&server.endpoint, &server.bucket, sub, id, lock)
}

/// The same, at any endpoint.
pub fn s3lect_at(endpoint: &str, bucket: &str, sub: &str, id: &str, lock: &str) -> Command {
    let mut cmd = s3lect_cli::cluster::command_at(Path::new(BIN), endpoint, bucket, sub, id, lock);
    cmd.env("S3LECT_LOG", "info");
    cmd
}

pub fn output(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("s3lect runs")
}

#[allow(unused_imports)]
pub use s3lect_cli::cluster::{Node, now_ns};

/// Starts `s3lect run` with the test timings (callers add more flags).
pub fn start(server: &LocalS3, id: &str, lock: &str, dir: &Path, extra: &[&str]) -> Node {
    let mut args: Vec<&str> = TIMINGS.to_vec();
    args.extend_from_slice(extra);
    Node::start(Path::new(BIN), server, id, lock, dir, &args).expect("spawn s3lect run")
}

/// Leadership intervals from the hook logs: [acquire, lose) — or until the kill, or open.
/// Panics if two overlap, or if terms do not strictly increase across acquisitions.
pub fn assert_no_overlapping_leadership(nodes: &[Node]) {
    check_leadership_log(nodes, true)
}

/// The same, for runs where an outsider destroyed the record (and with it the term history).
pub fn assert_no_overlap_after_record_destroyed(nodes: &[Node]) {
    check_leadership_log(nodes, false)
}

fn check_leadership_log(nodes: &[Node], terms_increase: bool) {
    let mut intervals = vec![];
    for n in nodes {
        let mut open: Option<(u64, u128)> = None;
        for (event, term, at) in n.transitions() {
            match event.as_str() {
                "acquire" => {
                    assert!(open.is_none(), "{} acquired twice without losing", n.id);
                    open = Some((term, at));
                }
                "lose" => {
                    let (t, start) = open.take().unwrap_or_else(|| panic!("{} lost without acquiring", n.id));
                    assert_eq!(t, term, "{} lost another term than it acquired", n.id);
                    intervals.push((start, at, term, n.id.clone()));
                }
                other => panic!("unknown hook event {other}"),
            }
        }
        if let Some((term, start)) = open {
            intervals.push((start, n.killed_at_ns.unwrap_or(u128::MAX), term, n.id.clone()));
        }
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.1 <= b.0, "leadership overlapped: {} (term {}) until {} and {} (term {}) from {}", a.3, a.2, a.1, b.3, b.2, b.0);
        assert!(!terms_increase || b.2 > a.2, "terms must increase: {} then {}", a.2, b.2);
    }
}
