//! Object storage with compare-and-swap writes: the trait the elector needs, and its
//! implementations (S3 over SigV4, and a filesystem mock for users' tests).

mod conformance;
mod credentials;
mod etag_form;
mod memory;
mod mock;
mod s3;

pub use conformance::{
    Conformance, ConformanceError, DEFAULT_STARTUP_BUDGET, Violation, check_conditional_writes, conforming_storage, scratch_key,
};
pub use etag_form::{EtagForm, WithEtagForm, unquoted};
pub use memory::{CountingStorage, MemoryStorage};
pub use mock::MockStorage;
pub use s3::{MAX_IN_FLIGHT, S3Config, S3Storage, SharedCredentialsProvider};
pub use s3lect_guest::{Object, ServerClock, StorageError};

use std::future::Future;
use std::pin::Pin;

/// The future a [`Storage`] method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The condition of a conditional write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition<'a> {
    /// `If-None-Match: *`: only if no object exists.
    Absent,
    /// `If-Match: <etag>`: only if the object's etag is this one.
    Matches(&'a str),
}

impl<'a> Condition<'a> {
    /// The etag to match, if any.
    pub fn etag(self) -> Option<&'a str> {
        match self {
            Condition::Absent => None,
            Condition::Matches(e) => Some(e),
        }
    }

    /// `None` → [`Condition::Absent`], `Some(etag)` → [`Condition::Matches`] (the WIT's form).
    pub fn from_etag(etag: Option<&'a str>) -> Condition<'a> {
        etag.map_or(Condition::Absent, Condition::Matches)
    }
}

/// Storage as the elector uses it (Go s3lect's `Storage`, except that `put_if_match` returns
/// the new etag: a leader renews with If-Match on it and never needs to read).
///
/// Implementations must make `put_if_match` atomic: of several writers racing on one
/// condition, exactly one succeeds. `tests/storage_contract.rs` holds every implementation to
/// the same suite.
pub trait Storage: Send + Sync + 'static {
    /// The object's bytes and etag, or [`StorageError::NotFound`].
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>>;

    /// Writes only if `condition` holds. Returns the new etag, or
    /// [`StorageError::PreconditionFailed`] when another write got there first.
    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>>;

    /// Removes an object (not used by the election; kept for tools and tests).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;

    /// [`get`](Storage::get), with the server's clock on the answer when the store has one
    /// (S3's `Last-Modified` and `Date`): what the election reads, for its server-clock
    /// staleness source. The default reports no clock.
    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(async move { self.get(key).await.map(|(data, etag)| Object { data, etag, server_clock: None }) })
    }
}
