//! The host's error type: every failure names what went wrong and, where it can, what to do;
//! the underlying cause stays reachable through [`std::error::Error::source`].

pub use crate::storage::ConformanceError;
pub use crate::tls::TlsError;
pub use s3lect_guest::{ConfigError, StorageError};

/// A cause of any type, as libraries report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a call into the library failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid (the rule and the values are named).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Carried elector state (one step per invocation) could not be restored.
    #[error("{message}")]
    State {
        /// Why, as the core said it.
        message: String,
    },
    /// A storage call failed.
    #[error("{context}: {source}")]
    Storage {
        /// What was being done.
        context: String,
        /// What the storage answered.
        #[source]
        source: StorageError,
    },
    /// Leaving the election did not write the resigned record: followers take over only when
    /// the lease runs out.
    #[error("{problem}; followers take over when the lease runs out")]
    Resign {
        /// The problem the core reported.
        problem: String,
    },
    /// The S3 client could not be set up (credentials, HTTP client).
    #[error("S3 client: {context}")]
    Client {
        /// What was being set up.
        context: String,
        /// The underlying failure, where there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The storage does not enforce conditional writes, or could not be checked.
    #[error(transparent)]
    Conformance(#[from] ConformanceError),
    /// The election component failed (compiling, instantiating, or trapping).
    #[error("wasm component: {source}")]
    Runtime {
        /// wasmtime's error, with its own causes.
        #[source]
        source: BoxError,
    },
    /// TLS could not be set up (certificates, keys).
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `stop` or `update_config`-while-running on an elector that was never started.
    #[error("the elector is not running (call start first)")]
    NotStarted,
    /// `start` on an elector that is running.
    #[error("the elector is already running")]
    AlreadyStarted,
    /// The elector left the election while the call waited.
    #[error("the elector was stopped")]
    Stopped,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn runtime(e: impl Into<BoxError>) -> Error {
        Error::Runtime { source: e.into() }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }
}

/// An error with its causes, `outer: cause: root cause`: many libraries' `Display` shows only the
/// outermost layer, while the cause is what tells a user what to fix. A cause the text already
/// shows is not repeated.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
