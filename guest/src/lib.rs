//! s3lect's election core.
//!
//! - [`machine`]: the election algorithm as a sans-IO state machine; its decisions are in
//!   `policy` (numbered cases), what it reports wrong in [`problem`].
//! - [`config`], [`record`]: configuration rules and the lock object's JSON.
//! - [`env_config`]: configuration from S3LECT_* environment variables (for components).
//! - [`io`]: the actions the machine asks for and the completions it is fed.
//! - [`snapshot`]: state export/import for hosts that keep no instance alive.
//! - `wit_glue`: macros for the conversions every binding of our WIT needs.
//! - `component` (wasm32, feature `component`): the wit-bindgen glue that makes this a WASI
//!   component, exporting the machine both driven through imports (`election`) and bare (`machine`).

mod clock_check;
pub mod config;
pub mod conformance;
pub mod contract;
pub mod env_config;
pub mod io;
pub mod machine;
mod policy;
pub mod problem;
pub mod record;
pub mod settings;
pub mod snapshot;
mod wit_glue;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

#[cfg(test)]
mod machine_tests;

pub use clock_check::AUTO_SKEW_MS;
pub use config::{Config, ConfigError, SETTINGS};
pub use io::{Action, Clock, Completion, Io, Object, ProbeReply, ServerClock, StorageError};
pub use machine::{Elector, HookTicket, ProbeTicket, ReadTicket, Status, WriteTicket};
pub use problem::{Loss, Problem, ProblemKind};
pub use record::{HealthReply, LeaderRecord};
pub use settings::Setting;
pub use snapshot::StateError;

/// Runs actions through `io` until the machine says the step is done; returns the delay before
/// the next step, in milliseconds. Each completion is stamped with a fresh clock reading.
pub fn drive(elector: &mut Elector, io: &mut impl Io, first: Action) -> u64 {
    let mut action = first;
    loop {
        let completion = match action {
            Action::Done { next_step_in_ms } => return next_step_in_ms,
            Action::Get { key, timeout_ms, ticket } => Completion::Got(ticket, io.get(&key, timeout_ms)),
            Action::Put { key, data, etag, timeout_ms, ticket } => {
                Completion::Put(ticket, io.put(&key, &data, etag.as_deref(), timeout_ms))
            }
            Action::Probe { addr, path, timeout_ms, pin, ticket } => {
                Completion::Probed(ticket, io.probe(&addr, &path, timeout_ms, pin.as_deref()))
            }
            Action::AcquireHook { term, leader_id, ticket } => Completion::Hook(ticket, io.acquire_hook(term, &leader_id)),
            Action::LoseHook { term, leader_id, ticket } => Completion::Hook(ticket, io.lose_hook(term, &leader_id)),
        };
        let now = io.now();
        action = elector.complete(now, completion);
    }
}

/// One election step.
pub fn drive_step(elector: &mut Elector, io: &mut impl Io) -> u64 {
    let now = io.now();
    let first = elector.begin_step(now);
    drive(elector, io, first)
}

/// Leave the election (graceful stop).
pub fn drive_resign(elector: &mut Elector, io: &mut impl Io) {
    let now = io.now();
    let first = elector.begin_resign(now);
    drive(elector, io, first);
}
