//! The `elector-cron` world: one invocation = restore carried state, step, save state.
//!
//! Configuration: the elector's from S3LECT_* variables (`s3lect_guest::env_config`), plus
//! S3LECT_INVOCATION_BUDGET_MS. `invocation` (wasm32 only): the step itself, over `storage`.

#[cfg(target_arch = "wasm32")]
mod invocation;

/// Key of the object that carries one server's elector state between invocations.
pub fn state_key(lockfile_path: &str, server_id: &str) -> String {
    format!("{lockfile_path}.state/{server_id}")
}
