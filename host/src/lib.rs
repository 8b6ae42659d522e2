//! s3lect: leader election on object storage alone, using S3 conditional writes.
//!
//! The election algorithm runs as a WebAssembly component (`guest/`), loaded here with
//! wasmtime. This crate supplies what the component imports and offers the Rust API that
//! mirrors Go s3lect:
//!
//! - [`Elector`], [`ElectorConfig`], [`LeadershipStatus`] — `elector.rs`, `config.rs`
//! - [`Storage`], [`S3Storage`] (SigV4), [`MockStorage`] — `storage/`
//! - [`HealthServer`], [`leadership_handler`] — `health.rs`; TLS set-up in `tls.rs`
//! - the peer probe — `probe.rs`; the wasmtime glue — [`runtime`]
//!
//! # Many groups in one process
//!
//! Each group is an [`Elector`]; up to 256 of them share one instance of the component. Drive
//! them from a current-thread tokio runtime, and give the process an allocator faster than
//! glibc's: with mimalloc as its `#[global_allocator]`, 10,000 groups took 8.9–9.4 % of a core
//! against 9.8–11.8 % with glibc's malloc, in five interleaved pairs (the README's "Many groups
//! in one process"; BENCHMARKS.md, "mimalloc for many groups").

#![warn(missing_docs)]

mod admission;
mod clock;
pub mod config;
pub mod elector;
pub mod error;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod oneshot;
pub mod probe;
pub mod runtime;
pub mod storage;
mod timer_slack;
pub mod tls;

pub use admission::Limits as HealthLimits;
pub use config::ElectorConfig;
pub use elector::{CancellationToken, Elector, LeadershipStatus, LeadershipWatch};
pub use error::{Error, Result};
pub use health::{HealthServer, HealthServerConfig, LeadershipHandler, leadership_handler};
pub use hooks::{Hook, HookEvent, hook};
pub use s3lect_guest::{ConfigError, LeaderRecord};
pub use storage::{Condition, MemoryStorage, MockStorage, S3Config, S3Storage, Storage, StorageError};
