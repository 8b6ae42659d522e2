//! One scheduled invocation of the composed component (election + S3 storage over wasi:http)
//! in the wasmtime CLI: compiled at every run, as `wasmtime run x.wasm` does, against
//! precompiled once (`wasmtime compile`, then `wasmtime run --allow-precompiled x.cwasm`).

use super::stats::Row;
use s3lect_cli::local_s3::LocalS3;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs `runs` leader invocations each way; empty if the wasmtime CLI or the composed
/// component is missing (scripts/setup.sh and scripts/build-components.sh make them).
pub async fn composed_invocation(weed: &Path, runs: usize) -> Vec<Row> {
    let wasmtime = s3lect_cli::tools_dir().join("bin/wasmtime");
    let component = PathBuf::from("target/components/s3lect-cron-s3.wasm");
    if !wasmtime.exists() || !component.exists() {
        eprintln!("invocation: skipped ({} or {} missing)", wasmtime.display(), component.display());
        return vec![];
    }
    let server = LocalS3::start(weed, "bench-invoke").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let precompiled = dir.path().join("s3lect-cron-s3.cwasm");
    let t = Instant::now();
    let out = Command::new(&wasmtime).arg("compile").arg(&component).arg("-o").arg(&precompiled).output().unwrap();
    assert!(out.status.success(), "wasmtime compile: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("invocation: wasmtime compile took {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let invoke = |file: &Path, extra: &[&str]| {
        let t = Instant::now();
        let out = Command::new(&wasmtime)
            .args(["run", "-S", "http"])
            .args(extra)
            .args(server.component_env("a", "bench/invoke.json").iter().flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")]))
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "wasmtime run: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed().as_secs_f64() * 1e3
    };
    invoke(&component, &[]); // creates the lock object: later runs renew it
    let compiled: Vec<f64> = (0..runs).map(|_| invoke(&component, &[])).collect();
    let cwasm: Vec<f64> = (0..runs).map(|_| invoke(&precompiled, &["--allow-precompiled"])).collect();
    let what = "one scheduled invocation, composed component in `wasmtime run` (start → exit)";
    vec![
        Row::new(what, "component compiled at every run (.wasm)", "ms", compiled, "tens of ms"),
        Row::new(what, "precompiled once (`wasmtime compile`, `--allow-precompiled` .cwasm)", "ms", cwasm, "tens of ms"),
    ]
}
