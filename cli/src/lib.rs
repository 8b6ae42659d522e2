//! Shared by the `s3lect` command's demo, the benchmark harness and the test kit: local S3
//! servers to elect on, and `s3lect` processes to elect with. Not an API for users: that is
//! the `s3lect` crate.

pub mod cluster;
pub mod local_s3;
pub mod node_metrics;
pub mod wait;

/// Where scripts/setup-interop.sh and scripts/setup-validators.sh install their tools (wac,
/// the wasmtime CLI, npm tools): `$S3LECT_TOOLS`, else `~/.cache/s3lect/tools`.
pub fn tools_dir() -> std::path::PathBuf {
    std::env::var_os("S3LECT_TOOLS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/s3lect/tools"))
}
