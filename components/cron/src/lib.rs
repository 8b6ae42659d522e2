//! The `elector-cron` world: one invocation = restore carried state, step, save state.
//!
//! - [`env_config`]: the elector's configuration from environment variables (any WASI host can
//!   set them), with errors that name the variable.
//! - `invocation` (wasm32 only): the step itself, over the imported `storage`.

pub mod env_config;

#[cfg(target_arch = "wasm32")]
mod invocation;

/// Key of the object that carries one server's elector state between invocations.
pub fn state_key(lockfile_path: &str, server_id: &str) -> String {
    format!("{lockfile_path}.state/{server_id}")
}
