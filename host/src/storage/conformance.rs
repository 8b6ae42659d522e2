//! The start-up check that the server really enforces conditional writes
//! ([`s3lect_guest::conformance`], shared with the components), run on a [`Storage`] with
//! tokio's clock, and the storage to elect on once it passed.

use super::{EtagForm, Storage, StorageError, WithEtagForm};
use s3lect_guest::conformance::CheckIo;
pub use s3lect_guest::conformance::{Conformance, ConformanceError, DEFAULT_STARTUP_BUDGET, Violation, scratch_key};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Runs the check against `lock_key`'s scratch object, `<lock_key>.s3lect-conformance`.
pub async fn check_conditional_writes(storage: &dyn Storage, lock_key: &str, budget: Duration) -> Result<Conformance, ConformanceError> {
    let mut io = HostCheck { storage, start: Instant::now() };
    let found = s3lect_guest::conformance::check_conditional_writes(&mut io, lock_key, budget).await;
    if let Err(ConformanceError::NotEnforced(Violation::IfMatchOnMissingKeyAccepted { key })) = &found
        && let Err(e) = storage.delete(key).await
    {
        tracing::warn!(key = %key, error = %e, "conformance check: could not delete the object the server wrongly created");
    }
    found
}

/// Runs the check, then returns the storage to elect on — sending `If-Match` in the form the
/// server accepts (the quirk logged once) — and that form, for a caller that keeps it.
pub async fn conforming_storage(
    storage: Arc<dyn Storage>,
    lock_key: &str,
    budget: Duration,
) -> Result<(Arc<dyn Storage>, EtagForm), ConformanceError> {
    let found = check_conditional_writes(storage.as_ref(), lock_key, budget).await?;
    if found.if_match == EtagForm::Unquoted {
        tracing::warn!(
            "the storage refuses If-Match with the etag as it returned it (quoted) and accepts it unquoted (a known Ceph RGW quirk); sending etags unquoted"
        );
    }
    Ok((WithEtagForm::wrap(storage, found.if_match), found.if_match))
}

struct HostCheck<'a> {
    storage: &'a dyn Storage,
    start: Instant,
}

impl CheckIo for HostCheck<'_> {
    async fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError> {
        self.storage.get(key).await
    }
    async fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError> {
        self.storage.put_if_match(key, data, super::Condition::from_etag(etag)).await
    }
    async fn sleep(&mut self, pause: Duration) {
        tokio::time::sleep(pause).await
    }
    fn elapsed(&mut self) -> Duration {
        self.start.elapsed()
    }
    fn retrying(&mut self, attempt: u32, error: &StorageError) {
        tracing::warn!(attempt, error = %error, "conformance check: transient storage error, retrying");
    }
}
