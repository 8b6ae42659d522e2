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

/// An error with its causes, `outer: cause: root cause`: many libraries' `Display` shows only the
/// outermost layer, while the cause is what tells a user what to fix.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
