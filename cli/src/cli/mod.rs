//! The CLI's subcommands.

pub mod auto_peer;
pub mod demo;
pub mod metrics_server;
pub mod run;
pub mod settings;
pub mod shell_hooks;
pub mod status;
pub mod step;
pub mod supervise;

use std::process::ExitCode;

/// Prints one error line and returns the failure exit code.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("s3lect: error: {message}");
    ExitCode::from(1)
}
