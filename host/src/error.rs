//! The host's error type: every failure names what went wrong and, where it can, what to do.

pub use s3lect_guest::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Storage(String),
    #[error(transparent)]
    Conformance(#[from] crate::storage::ConformanceError),
    #[error("wasm component: {0}")]
    Runtime(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the elector is not running (call start first)")]
    NotStarted,
    #[error("the elector is already running")]
    AlreadyStarted,
    #[error("the elector was stopped")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
