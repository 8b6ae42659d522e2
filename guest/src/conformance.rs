//! The check that a server really enforces conditional writes, both halves: wrong writes are
//! refused, and a correct `If-Match` — with the etag exactly as the server returned it —
//! succeeds. A server that ignores the conditions would let every elector win; one that refuses
//! correct writes would stall the election. Servers that refuse the quoted etag but accept it
//! unquoted (Ceph RGW 16) are detected and the form that works is reported.
//!
//! One implementation for every runner: it is written against [`CheckIo`], whose methods are
//! `async` so that the native host awaits its S3 client, while a component's blocking storage
//! imports return ready futures that [`block_on_ready`] drives.
//!
//! Transient errors (5xx, 409, timeouts, resets) are retried with backoff and jitter within a
//! start-up budget; only a definite misbehaviour fails the check as "not enforced". The scratch
//! object has one fixed key per lock object and is left in place: deleting it would let a
//! concurrent check on another node see a legitimate second create, and a key that is reused
//! cannot pile up.

use crate::io::StorageError;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How a server wants the etag in `If-Match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EtagForm {
    /// Verbatim, as the server returned it (quoted, per RFC 9110): AWS, SeaweedFS, MinIO, R2.
    #[default]
    AsReturned,
    /// Without the surrounding quotes: Ceph RGW 16 answers 412 to the quoted form.
    Unquoted,
}

impl EtagForm {
    /// The etag as this form sends it.
    pub fn apply<'a>(&self, etag: &'a str) -> &'a str {
        match self {
            EtagForm::AsReturned => etag,
            EtagForm::Unquoted => unquoted(etag),
        }
    }
}

/// `"abc"` → `abc`; an etag without quotes is returned as it is.
pub fn unquoted(etag: &str) -> &str {
    etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(etag)
}

impl std::str::FromStr for EtagForm {
    type Err = String;

    /// `as-returned` or `unquoted`, as `S3LECT_IF_MATCH_ETAG` takes them.
    fn from_str(s: &str) -> Result<EtagForm, String> {
        match s {
            "as-returned" => Ok(EtagForm::AsReturned),
            "unquoted" => Ok(EtagForm::Unquoted),
            other => Err(format!("if-match etag form {other:?} is neither \"as-returned\" nor \"unquoted\"")),
        }
    }
}

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
    /// `If-Match` on a key that does not exist was accepted (and created `key`).
    IfMatchOnMissingKeyAccepted {
        /// The object the server wrongly created.
        key: String,
    },
    /// `If-Match` with the object's current etag was refused, quoted and unquoted.
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
            Violation::IfMatchOnMissingKeyAccepted { .. } => f.write_str("it accepted If-Match on a key that does not exist"),
            Violation::CorrectIfMatchRefused { etag } => write!(
                f,
                "it refused If-Match with the object's current etag {etag}, both quoted and unquoted, so an election could only stall"
            ),
        }
    }
}

/// Why the check did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConformanceError {
    /// The server definitely misbehaves: running an election on it would be unsafe or stall.
    NotEnforced(Violation),
    /// A definite error that retrying cannot fix: credentials, permissions, a missing bucket.
    Storage {
        /// Which write or read of the check.
        what: String,
        /// What the storage answered.
        source: StorageError,
    },
    /// Transient errors outlasted the start-up budget.
    GaveUp {
        /// The start-up budget.
        budget: Duration,
        /// Requests tried.
        attempts: u32,
        /// The last error.
        last: StorageError,
    },
}

impl fmt::Display for ConformanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConformanceError::NotEnforced(v) => write!(
                f,
                "this storage does not enforce conditional writes correctly ({v}); s3lect refuses to run on it (use a server with S3 conditional PUT support)"
            ),
            ConformanceError::Storage { what, source } => write!(f, "conformance check: {what}: {source}"),
            ConformanceError::GaveUp { budget, attempts, last } => {
                write!(f, "conformance check: the storage kept failing for {budget:?} ({attempts} attempts); last error: {last}")
            }
        }
    }
}

impl std::error::Error for ConformanceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConformanceError::Storage { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The default start-up budget: long enough to ride out a server restart or a throttling burst,
/// short enough that a misconfigured deployment fails while someone is watching.
pub const DEFAULT_STARTUP_BUDGET: Duration = Duration::from_secs(60);

/// The object the check writes beside `lock_key` (never deleted: one per lock object). It
/// needs the same permissions as the lock object (deploy/iam/policy.json).
pub fn scratch_key(lock_key: &str) -> String {
    format!("{lock_key}.s3lect-conformance")
}

/// What the check runs on: storage, a clock and a way to wait.
#[allow(async_fn_in_trait)] // every caller names its implementation: no Send bound is lost
pub trait CheckIo {
    /// The object's bytes and etag.
    async fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError>;
    /// Writes only if the etag is `etag` (`None`: only if absent); returns the new etag.
    async fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError>;
    /// Waits this long.
    async fn sleep(&mut self, pause: Duration);
    /// Time elapsed on a monotonic clock (from any origin).
    fn elapsed(&mut self) -> Duration;
    /// A transient error is about to be retried (for logs).
    fn retrying(&mut self, _attempt: u32, _error: &StorageError) {}
}

/// Runs the check against `lock_key`'s scratch object, `<lock_key>.s3lect-conformance`.
pub async fn check_conditional_writes(io: &mut impl CheckIo, lock_key: &str, budget: Duration) -> Result<Conformance, ConformanceError> {
    let key = scratch_key(lock_key);
    let deadline = io.elapsed() + budget;
    let mut c = Check { io, retry: Retry { deadline, budget, attempts: 0 } };
    // Read first: a wrong bucket, region or credentials is named before anything is written
    // (some servers would create a missing bucket on PUT).
    loop {
        match c.io.get(lock_key).await {
            Ok(_) | Err(StorageError::NotFound) => break,
            Err(e) if transient(&e) => c.wait(e).await?,
            Err(source) => return Err(ConformanceError::Storage { what: format!("cannot read the lock object {lock_key}"), source }),
        }
    }
    let mut etag = c.current_or_create(&key).await?;
    if let Written::Applied(_) = c.write(&key, None).await? {
        return Err(ConformanceError::NotEnforced(Violation::SecondCreateAccepted));
    }
    let stale = if etag == "\"s3lect-stale\"" { "\"s3lect-stale-2\"" } else { "\"s3lect-stale\"" };
    if let Written::Applied(_) = c.write(&key, Some(stale)).await? {
        return Err(ConformanceError::NotEnforced(Violation::StaleIfMatchAccepted));
    }
    // If-Match on a key that does not exist must be refused (old MinIO releases created it).
    // A random key, so that it never exists on a correct server and nothing piles up.
    let absent = format!("{key}-absent-{:016x}", fastrand::u64(..));
    if let Written::Applied(_) = c.write(&absent, Some(stale)).await? {
        return Err(ConformanceError::NotEnforced(Violation::IfMatchOnMissingKeyAccepted { key: absent }));
    }
    // A correct If-Match must succeed. A refusal only counts if the object still has the etag
    // (a concurrent check on another node may have replaced it: then start over from its etag).
    loop {
        for form in [EtagForm::AsReturned, EtagForm::Unquoted] {
            if let Written::Applied(_) = c.write(&key, Some(form.apply(&etag))).await? {
                return Ok(Conformance { if_match: form });
            }
            let now = c.current_or_create(&key).await?;
            if now != etag {
                etag = now;
                break;
            }
            if form == EtagForm::Unquoted {
                return Err(ConformanceError::NotEnforced(Violation::CorrectIfMatchRefused { etag }));
            }
        }
        // Another node's check replaced the object: pause (jittered) and try again.
        c.wait(StorageError::Conflict).await?;
    }
}

/// Runs a future whose every await is ready at once — the check over blocking storage — to
/// completion on this thread.
pub fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

struct Check<'a, I> {
    io: &'a mut I,
    retry: Retry,
}

enum Written {
    Applied(String),
    Refused,
}

struct Retry {
    deadline: Duration,
    budget: Duration,
    attempts: u32,
}

impl<I: CheckIo> Check<'_, I> {
    /// The scratch object's etag, creating it if absent.
    async fn current_or_create(&mut self, key: &str) -> Result<String, ConformanceError> {
        loop {
            match self.io.get(key).await {
                Ok((_, etag)) => return Ok(etag),
                Err(StorageError::NotFound) => {
                    if let Written::Applied(etag) = self.write(key, None).await? {
                        return Ok(etag);
                    }
                }
                Err(e) if transient(&e) => self.wait(e).await?,
                Err(source) => return Err(ConformanceError::Storage { what: format!("reading {key}"), source }),
            }
        }
    }

    /// One conditional write, retried through transient errors. An unanswered write is settled
    /// by reading: if the object shows the bytes of one of *this* write's attempts (each is
    /// unique), it was applied. Bytes of an earlier write do not count: the object holds them
    /// whenever a later write was refused, as the second create must be.
    async fn write(&mut self, key: &str, etag: Option<&str>) -> Result<Written, ConformanceError> {
        let mut attempts = Vec::new();
        loop {
            let data = format!("{{\"s3lect-conformance\":{}}}", fastrand::u64(..)).into_bytes();
            attempts.push(data.clone());
            match self.io.put(key, &data, etag).await {
                Ok(etag) => return Ok(Written::Applied(etag)),
                Err(StorageError::PreconditionFailed) => return Ok(Written::Refused),
                // If-Match on a missing key: AWS answers 404, SeaweedFS 412.
                Err(StorageError::NotFound) if etag.is_some() => return Ok(Written::Refused),
                Err(e) if transient(&e) => {
                    if let Some(etag) = self.shows(key, &attempts).await? {
                        return Ok(Written::Applied(etag));
                    }
                    self.wait(e).await?;
                }
                Err(source) => return Err(ConformanceError::Storage { what: format!("writing {key}"), source }),
            }
        }
    }

    /// `key`'s etag if it holds one of `attempts`.
    async fn shows(&mut self, key: &str, attempts: &[Vec<u8>]) -> Result<Option<String>, ConformanceError> {
        loop {
            match self.io.get(key).await {
                Ok((data, etag)) => return Ok(attempts.contains(&data).then_some(etag)),
                Err(StorageError::NotFound) => return Ok(None),
                Err(e) if transient(&e) => self.wait(e).await?,
                Err(source) => return Err(ConformanceError::Storage { what: format!("reading {key}"), source }),
            }
        }
    }

    /// Exponential backoff with jitter before the next attempt, or give up with `last` once
    /// the budget is spent.
    async fn wait(&mut self, last: StorageError) -> Result<(), ConformanceError> {
        let r = &mut self.retry;
        r.attempts += 1;
        let cap = Duration::from_millis(100 << r.attempts.min(6)).min(Duration::from_secs(5));
        let pause = cap / 2 + cap.mul_f64(fastrand::f64() / 2.0);
        if self.io.elapsed() + pause >= r.deadline {
            return Err(ConformanceError::GaveUp { budget: r.budget, attempts: r.attempts, last });
        }
        self.io.retrying(r.attempts, &last);
        self.io.sleep(pause).await;
        Ok(())
    }
}

/// Worth retrying: the server may answer differently in a moment.
fn transient(e: &StorageError) -> bool {
    matches!(e, StorageError::Unavailable(_) | StorageError::Conflict)
}
