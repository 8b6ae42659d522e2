//! Local multi-process clusters of `s3lect run` for the demo, the end-to-end tests and the
//! benchmarks: each process's hooks append `event term wall-ns` lines to a log, so callers
//! can time transitions and check that leadership never overlapped.

use crate::local_s3::{ACCESS_KEY, LocalS3, SECRET_KEY};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// The flags that point `s3lect` at a local server's bucket.
pub fn server_flags(server: &LocalS3) -> Vec<String> {
    vec!["--bucket".into(), server.bucket.clone(), "--endpoint".into(), server.endpoint.clone()]
}

/// `s3lect SUB` pointed at an endpoint and bucket, with the local server's credentials.
pub fn command_at(bin: &Path, endpoint: &str, bucket: &str, sub: &str, id: &str, lock: &str) -> Command {
    command_with(bin, &["--bucket".into(), bucket.into(), "--endpoint".into(), endpoint.into()], sub, id, lock)
}

/// `s3lect SUB` with `backend` flags (a bucket and endpoint, or `--mock-dir`), carrying the
/// local server's credentials.
pub fn command_with(bin: &Path, backend: &[String], sub: &str, id: &str, lock: &str) -> Command {
    command_via(Command::new(bin), backend, sub, id, lock)
}

/// The same through `cmd`: the binary, or a program that runs it (valgrind, given the binary
/// as its last argument).
pub fn command_via(mut cmd: Command, backend: &[String], sub: &str, id: &str, lock: &str) -> Command {
    cmd.arg(sub)
        .args(["--server-id", id, "--lockfile", lock])
        .args(backend)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", "us-east-1")
        // Tests never ask a metadata service: there is none on loopback.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nor does the machine's CA bundle serve a loopback server: a system's (144
        // certificates here) cost each node 0.55 MiB and a cold step 0.7–2.5 ms (measured),
        // which would only move the measurements. A test that wants one sets it again.
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::null());
    cmd
}

/// The `event number wall-ns` lines of a log file (hooks' logs; scripts that log alike).
pub fn read_log(path: &Path) -> Vec<(String, u64, u128)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// One `s3lect run` process.
pub struct Node {
    pub id: String,
    pub child: Child,
    pub hook_log: PathBuf,
    pub stderr_log: PathBuf,
    /// Set when it was SIGKILLed: its leadership ended then.
    pub killed_at_ns: Option<u128>,
}

impl Node {
    /// Starts `s3lect run` for `id` on `lock` at a local server, logging into `dir`; `args`
    /// adds timings etc.
    pub fn start(bin: &Path, server: &LocalS3, id: &str, lock: &str, dir: &Path, args: &[&str]) -> std::io::Result<Node> {
        Node::start_with(bin, &server_flags(server), id, lock, dir, args)
    }

    /// The same on any backend (`server_flags`, or `--mock-dir DIR`).
    pub fn start_with(bin: &Path, backend: &[String], id: &str, lock: &str, dir: &Path, args: &[&str]) -> std::io::Result<Node> {
        Node::spawn(command_with(bin, backend, "run", id, lock), id, dir, args)
    }

    /// Starts `run`, an `s3lect run` command for `id` built by the caller (an environment of
    /// its own, say), logging into `dir` as [`Node::start`] does.
    pub fn spawn(mut run: Command, id: &str, dir: &Path, args: &[&str]) -> std::io::Result<Node> {
        let hook_log = dir.join(format!("{id}.hooks"));
        let stderr_log = dir.join(format!("{id}.stderr"));
        let log = |event: &str| format!("echo {event} $S3LECT_TERM $(date +%s%N) >> {}", hook_log.display());
        let child = run
            .args(["--on-acquire", &log("acquire"), "--on-lose", &log("lose")])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_log)?)
            .spawn()?;
        Ok(Node { id: id.to_string(), child, hook_log, stderr_log, killed_at_ns: None })
    }

    pub fn kill9(&mut self) {
        self.killed_at_ns = Some(now_ns());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// (event, term, wall ns) lines its hooks wrote.
    pub fn transitions(&self) -> Vec<(String, u64, u128)> {
        read_log(&self.hook_log)
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
