//! Start-up check that the server really enforces conditional writes, both halves: wrong writes
//! are refused, and a correct `If-Match` — with the etag exactly as the server returned it —
//! succeeds. A server that ignores the conditions would let every elector win; one that refuses
//! correct writes would stall the election. Servers that refuse the quoted etag but accept it
//! unquoted (Ceph RGW 16) are detected and the form that works is reported.
//!
//! Transient errors (5xx, 409, timeouts, resets) are retried with backoff and jitter within a
//! start-up budget; only a definite misbehaviour makes the check fail as "not enforced". The
//! scratch object has one fixed key per lock object and is left in place: deleting it would let
//! a concurrent check on another node see a legitimate second create, and a key that is reused
//! cannot pile up.

use super::Condition;
use super::{EtagForm, Storage, StorageError, WithEtagForm};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the check found out about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conformance {
    /// The `If-Match` form the server accepts.
    pub if_match: EtagForm,
}

/// A conditional write the server got wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A second `If-None-Match: *` on an existing object was accepted.
    SecondCreateAccepted,
    /// `If-Match` with an etag the object never had was accepted.
    StaleIfMatchAccepted,
    /// `If-Match` on a key that does not exist was accepted (and created the object).
    IfMatchOnMissingKeyAccepted,
    /// `If-Match` with the object's current etag was refused, quoted and unquoted.
    /// `If-Match` with the etag as the server returned it was refused.
    CorrectIfMatchRefused {
        /// The etag, as the server returned it.
        etag: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::SecondCreateAccepted => f.write_str("it accepted If-None-Match: * on an existing object"),
            Violation::StaleIfMatchAccepted => f.write_str("it accepted If-Match with an etag the object never had"),
            Violation::IfMatchOnMissingKeyAccepted => f.write_str("it accepted If-Match on a key that does not exist"),
            Violation::CorrectIfMatchRefused { etag } => write!(
                f,
                "it refused If-Match with the object's current etag {etag}, both quoted and unquoted, so an election could only stall"
            ),
        }
    }
}

/// Why the check did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// The server definitely misbehaves: running an election on it would be unsafe or stall.
    #[error(
        "this storage does not enforce conditional writes correctly ({0}); s3lect refuses to run on it (use a server with S3 conditional PUT support)"
    )]
    NotEnforced(Violation),
    /// A definite error that retrying cannot fix: credentials, permissions, a missing bucket.
    #[error("conformance check: {what}: {source}")]
    Storage {
        /// Which write or read of the check.
        what: String,
        /// What the storage answered.
        #[source]
        source: StorageError,
    },
    /// The server kept failing transiently for the whole start-up budget.
    /// Transient errors outlasted the start-up budget.
    #[error("conformance check: the storage kept failing for {budget:?} ({attempts} attempts); last error: {last}")]
    GaveUp {
        /// The start-up budget.
        budget: Duration,
        /// Requests tried.
        attempts: u32,
        /// The last error.
        last: StorageError,
    },
}

/// The default start-up budget: long enough to ride out a server restart or a throttling burst,
/// short enough that a misconfigured deployment fails while someone is watching.
pub const DEFAULT_STARTUP_BUDGET: Duration = Duration::from_secs(60);

/// The object the check writes beside `lock_key` (never deleted: one per lock object). It
/// needs the same permissions as the lock object (deploy/iam/policy.json).
pub fn scratch_key(lock_key: &str) -> String {
    format!("{lock_key}.s3lect-conformance")
}

/// Runs the check against `lock_key`'s scratch object, `<lock_key>.s3lect-conformance`.
pub async fn check_conditional_writes(storage: &dyn Storage, lock_key: &str, budget: Duration) -> Result<Conformance, ConformanceError> {
    let mut c = Check { storage, key: scratch_key(lock_key), retry: Retry::new(budget), sent: Vec::new() };
    // Read first: a wrong bucket, region or credentials is named before anything is written
    // (some servers would create a missing bucket on PUT).
    loop {
        match storage.get(lock_key).await {
            Ok(_) | Err(StorageError::NotFound) => break,
            Err(e) if transient(&e) => c.retry.wait(e).await?,
            Err(source) => return Err(ConformanceError::Storage { what: format!("cannot read the lock object {lock_key}"), source }),
        }
    }
    let mut etag = c.current_or_create().await?;
    if let Written::Applied(_) = c.write(&c.key.clone(), Condition::Absent).await? {
        return Err(ConformanceError::NotEnforced(Violation::SecondCreateAccepted));
    }
    let stale = if etag == "\"s3lect-stale\"" { "\"s3lect-stale-2\"" } else { "\"s3lect-stale\"" };
    if let Written::Applied(_) = c.write(&c.key.clone(), Condition::Matches(stale)).await? {
        return Err(ConformanceError::NotEnforced(Violation::StaleIfMatchAccepted));
    }
    // If-Match on a key that does not exist must be refused (old MinIO releases created it).
    // A random key, so that it never exists on a correct server and nothing piles up.
    let absent = format!("{}-absent-{:016x}", c.key, fastrand::u64(..));
    if let Written::Applied(_) = c.write(&absent, Condition::Matches(stale)).await? {
        if let Err(e) = storage.delete(&absent).await {
            tracing::warn!(key = %absent, error = %e, "conformance check: could not delete the object the server wrongly created");
        }
        return Err(ConformanceError::NotEnforced(Violation::IfMatchOnMissingKeyAccepted));
    }
    // A correct If-Match must succeed. A refusal only counts if the object still has the etag
    // (a concurrent check on another node may have replaced it: then start over from its etag).
    loop {
        for form in [EtagForm::AsReturned, EtagForm::Unquoted] {
            if let Written::Applied(_) = c.write(&c.key.clone(), Condition::Matches(form.apply(&etag))).await? {
                return Ok(Conformance { if_match: form });
            }
            let now = c.current_or_create().await?;
            if now != etag {
                etag = now;
                break;
            }
            if form == EtagForm::Unquoted {
                return Err(ConformanceError::NotEnforced(Violation::CorrectIfMatchRefused { etag }));
            }
        }
        // Another node's check replaced the object: pause (jittered) and try again.
        c.retry.wait(StorageError::Conflict).await?;
    }
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

struct Check<'a> {
    storage: &'a dyn Storage,
    key: String,
    retry: Retry,
    /// Bytes of every write we sent: each is unique, so a read tells whether one was applied.
    sent: Vec<Vec<u8>>,
}

enum Written {
    Applied(String),
    Refused,
}

impl Check<'_> {
    /// The scratch object's etag, creating it if absent.
    async fn current_or_create(&mut self) -> Result<String, ConformanceError> {
        loop {
            match self.storage.get(&self.key).await {
                Ok((_, etag)) => return Ok(etag),
                Err(StorageError::NotFound) => {
                    if let Written::Applied(etag) = self.write(&self.key.clone(), Condition::Absent).await? {
                        return Ok(etag);
                    }
                }
                Err(e) if transient(&e) => self.retry.wait(e).await?,
                Err(source) => return Err(ConformanceError::Storage { what: format!("reading {}", self.key), source }),
            }
        }
    }

    /// One conditional write, retried through transient errors. An unanswered write is settled
    /// by reading: if the object shows any write of ours, it was applied.
    async fn write(&mut self, key: &str, condition: Condition<'_>) -> Result<Written, ConformanceError> {
        loop {
            let data = format!("{{\"s3lect-conformance\":{}}}", fastrand::u64(..)).into_bytes();
            self.sent.push(data.clone());
            match self.storage.put_if_match(key, &data, condition).await {
                Ok(etag) => return Ok(Written::Applied(etag)),
                Err(StorageError::PreconditionFailed) => return Ok(Written::Refused),
                // If-Match on a missing key: AWS answers 404, SeaweedFS 412.
                Err(StorageError::NotFound) if condition != Condition::Absent => return Ok(Written::Refused),
                Err(e) if transient(&e) => {
                    if let Some(etag) = self.ours(key).await? {
                        return Ok(Written::Applied(etag));
                    }
                    self.retry.wait(e).await?;
                }
                Err(source) => return Err(ConformanceError::Storage { what: format!("writing {key}"), source }),
            }
        }
    }

    /// `key`'s etag if it holds bytes we sent.
    async fn ours(&mut self, key: &str) -> Result<Option<String>, ConformanceError> {
        loop {
            match self.storage.get(key).await {
                Ok((data, etag)) => return Ok(self.sent.contains(&data).then_some(etag)),
                Err(StorageError::NotFound) => return Ok(None),
                Err(e) if transient(&e) => self.retry.wait(e).await?,
                Err(source) => return Err(ConformanceError::Storage { what: format!("reading {key}"), source }),
            }
        }
    }
}

/// Worth retrying: the server may answer differently in a moment.
fn transient(e: &StorageError) -> bool {
    matches!(e, StorageError::Unavailable(_) | StorageError::Conflict)
}

/// Exponential backoff with jitter, within a budget.
struct Retry {
    deadline: Instant,
    budget: Duration,
    attempts: u32,
}

impl Retry {
    fn new(budget: Duration) -> Retry {
        Retry { deadline: Instant::now() + budget, budget, attempts: 0 }
    }

    /// Sleeps before the next attempt, or gives up with `last` once the budget is spent.
    async fn wait(&mut self, last: StorageError) -> Result<(), ConformanceError> {
        self.attempts += 1;
        let cap = Duration::from_millis(100 << self.attempts.min(6)).min(Duration::from_secs(5));
        let pause = cap / 2 + cap.mul_f64(fastrand::f64() / 2.0);
        if Instant::now() + pause >= self.deadline {
            return Err(ConformanceError::GaveUp { budget: self.budget, attempts: self.attempts, last });
        }
        tracing::warn!(attempt = self.attempts, error = %last, "conformance check: transient storage error, retrying");
        tokio::time::sleep(pause).await;
        Ok(())
    }
}
