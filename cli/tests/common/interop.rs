//! The composed cron component outside our host: in the wasmtime CLI and in Node.js (jco).
//! Paths come from scripts/build-components.sh and scripts/setup-interop.sh; a missing piece
//! fails the test with the command that makes it, never skips it.
#![allow(dead_code)]

use s3lect_cli::local_s3::LocalS3;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn required(path: PathBuf, how: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: run {how}", path.display());
    path
}

/// The wac composition of the cron world with the S3 storage component.
pub fn composed_component() -> PathBuf {
    built_component("s3lect-cron-s3.wasm")
}

pub fn wasmtime_cli() -> PathBuf {
    required(s3lect_cli::tools_dir().join("bin/wasmtime"), "scripts/setup-interop.sh")
}

/// The same timings as the `s3lect run` nodes of the tests (tests/common/nodes.rs).
pub const CRON_TIMINGS: [(&str, &str); 4] = [
    ("S3LECT_FREQUENT_INTERVAL_MS", "1000"),
    ("S3LECT_INFREQUENT_INTERVAL_MS", "1000"),
    ("S3LECT_RENEW_DEADLINE_MS", "2500"),
    ("S3LECT_LEADER_TIMEOUT_MS", "3000"),
];

/// Everything the composed component reads from its environment, for `server`.
pub fn component_env(server: &LocalS3, id: &str, lock: &str) -> Vec<(String, String)> {
    env_with(server, id, lock, &CRON_TIMINGS)
}

/// `server`'s storage variables, then `timings`.
fn env_with(server: &LocalS3, id: &str, lock: &str, timings: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = server.component_env(id, lock);
    env.extend(timings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

/// Timings for stateless steps judged by the server's clock: the renew deadline must leave a
/// second of date resolution and the declared skew below the leader timeout.
pub const STATELESS_TIMINGS: [(&str, &str); 5] = [
    ("S3LECT_FREQUENT_INTERVAL_MS", "1000"),
    ("S3LECT_INFREQUENT_INTERVAL_MS", "1000"),
    ("S3LECT_RENEW_DEADLINE_MS", "2500"),
    ("S3LECT_LEADER_TIMEOUT_MS", "5000"),
    ("S3LECT_SERVER_CLOCK_SKEW_MS", "1000"),
];

/// Everything a stateless step reads from its environment (the composed component, and
/// `s3lect step`, which falls back to the same variables), for `server`.
pub fn stateless_env(server: &LocalS3, id: &str, lock: &str) -> Vec<(String, String)> {
    env_with(server, id, lock, &STATELESS_TIMINGS)
}

/// `wasmtime run -S http ARGS` of the composed component with exactly `env` (nothing inherited).
pub fn wasmtime_run(env: &[(String, String)], args: &[&str]) -> Command {
    wasmtime_run_file(&composed_component(), env, args)
}

/// The same for any component file.
pub fn wasmtime_run_file(component: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(wasmtime_cli());
    cmd.args(["run", "-S", "http"]).args(args);
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(component).stdin(Stdio::null());
    cmd
}

/// A component that scripts/build-components.sh made, by file name.
pub fn built_component(name: &str) -> PathBuf {
    required(root().join("target/components").join(name), "scripts/build-components.sh")
}

/// `node node/elector.mjs ARGS` with `env`: the composed component transpiled by jco.
pub fn node_host(env: &[(String, String)], args: &[&str]) -> Command {
    required(root().join("node/gen/s3lect-cron.js"), "scripts/build-components.sh");
    let mut cmd = Command::new("node");
    cmd.arg(root().join("node/elector.mjs"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .envs(env.iter().cloned())
        .stdin(Stdio::null());
    cmd
}

/// One invocation's report line (the JSON the component prints).
pub fn report(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no report in output: {text}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report {line:?}: {e}"))
}
