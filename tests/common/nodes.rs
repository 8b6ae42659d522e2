//! Real `s3lect` processes for the end-to-end tests, with hooks that log every transition
//! (event, term, wall-clock ns) so a test can check that leadership never overlapped.
#![allow(dead_code)]

use s3lect::local_s3::{ACCESS_KEY, LocalS3, SECRET_KEY};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_s3lect");
/// Seconds-scale timings (SeaweedFS makes race losers wait in 1 s steps): renew every 1 s,
/// lease 2.5 s, takeover after 3 s; followers poll every 1 s.
pub const TIMINGS: [&str; 8] =
    ["--frequent-ms", "1000", "--infrequent-ms", "1000", "--renew-deadline-ms", "2500", "--leader-timeout-ms", "3000"];
pub const LEADER_TIMEOUT_MS: u128 = 3000;
pub const FREQUENT_MS: u128 = 1000;
pub const INFREQUENT_MS: u128 = 1000;

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The command line that points a subcommand at `server`.
pub fn s3lect(server: &LocalS3, sub: &str, id: &str, lock: &str) -> Command {
    s3lect_at(&server.endpoint, &server.bucket, sub, id, lock)
}

/// The same, at any endpoint.
pub fn s3lect_at(endpoint: &str, bucket: &str, sub: &str, id: &str, lock: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg(sub)
        .args(["--server-id", id, "--lockfile", lock, "--bucket", bucket, "--endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        .env("S3LECT_LOG", "info")
        .stdin(Stdio::null());
    cmd
}

pub fn output(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    cmd.borrow_mut().output().expect("s3lect runs")
}

pub struct Node {
    pub id: String,
    pub child: Child,
    pub hook_log: PathBuf,
    pub stderr_log: PathBuf,
    /// Set when the test SIGKILLed it: its leadership ended then.
    pub killed_at_ns: Option<u128>,
}

impl Node {
    pub fn start(server: &LocalS3, id: &str, lock: &str, dir: &Path, extra: &[&str]) -> Node {
        let hook_log = dir.join(format!("{id}.hooks"));
        let stderr_log = dir.join(format!("{id}.stderr"));
        let log = |event: &str| format!("echo {event} $S3LECT_TERM $(date +%s%N) >> {}", hook_log.display());
        let child = s3lect(server, "run", id, lock)
            .args(TIMINGS)
            .args(["--on-acquire", &log("acquire"), "--on-lose", &log("lose")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("spawn s3lect run");
        Node { id: id.to_string(), child, hook_log, stderr_log, killed_at_ns: None }
    }

    pub fn kill9(&mut self) {
        self.killed_at_ns = Some(now_ns());
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// (event, term, ns) lines its hooks wrote.
    pub fn transitions(&self) -> Vec<(String, u64, u128)> {
        std::fs::read_to_string(&self.hook_log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
