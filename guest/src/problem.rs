//! What went wrong, as a value. The elector keeps the most recent problem for its status; each
//! kind says by type when it is over (see `Problem::cleared_by`), so nothing is cleared by
//! matching message text. The WIT carries the kind and the rendered message.

use crate::io::StorageError;
use crate::record::{RecordError, printable};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A problem the elector reports. `Display` gives the message operators read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Problem {
    /// A storage call failed; over when one succeeds.
    Storage(StorageError),
    /// The server answered 412 to a write conditioned on the etag the object still carries:
    /// it does not honour If-Match as sent. Over when a storage call succeeds.
    RefusedCorrectWrite { etag: String },
    /// The lock object holds something that is not a leader record; over when a record reads.
    Record { key: String, error: RecordError },
    /// The lock object was deleted under a record we watched; over when a record reads.
    Deleted { key: String },
    /// Our leadership of `term` ended.
    Lost { term: u64, why: Loss },
    /// The acquire hook failed: the elector resigned and stays out for a leader timeout.
    AcquireHook(String),
    /// The lose hook failed (leadership ended anyway).
    LoseHook(String),
    /// The resigned record could not be written: followers take over when the lease runs out.
    Resign(StorageError),
    /// This elector lives for one invocation that starts without a continuing clock (no carried
    /// state, or state from another clock) and ends before a record could stand a leader
    /// timeout: without timestamp mode it can never conclude that a leader is gone. Over when
    /// that no longer holds.
    NoStalenessSource { budget_ms: u64, leader_timeout_ms: u64 },
    /// The storage server's clock, used without a declared skew (`server-clock-auto`), broke a
    /// promise on one of our reads: it is not used again by this elector.
    ServerClockDistrusted { why: String },
}

/// Why a leadership ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Loss {
    /// A read showed a record written by another instance.
    OtherWriter,
    /// No renewal succeeded before the renew deadline.
    LeaseExpired,
    /// A renewal succeeded, but only after the lease had ended.
    RenewedTooLate,
    /// The lock object was deleted.
    Deleted,
    /// Carried state named a lease the lock object does not hold.
    CarriedLeaseNotHeld,
}

/// Kinds of [`Problem`], for hosts that act on them: the WIT's `problem-kind`, case for case
/// (exhaustive: a new kind is a contract change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    Storage,
    RefusedCorrectWrite,
    Record,
    Deleted,
    Lost,
    AcquireHook,
    LoseHook,
    Resign,
    NoStalenessSource,
    ServerClockDistrusted,
}

/// Events that end problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// A storage call succeeded.
    StorageAnswered,
    /// A read showed a valid leader record.
    RecordRead,
}

impl Problem {
    pub fn kind(&self) -> ProblemKind {
        match self {
            Problem::Storage(_) => ProblemKind::Storage,
            Problem::RefusedCorrectWrite { .. } => ProblemKind::RefusedCorrectWrite,
            Problem::Record { .. } => ProblemKind::Record,
            Problem::Deleted { .. } => ProblemKind::Deleted,
            Problem::Lost { .. } => ProblemKind::Lost,
            Problem::AcquireHook(_) => ProblemKind::AcquireHook,
            Problem::LoseHook(_) => ProblemKind::LoseHook,
            Problem::Resign(_) => ProblemKind::Resign,
            Problem::NoStalenessSource { .. } => ProblemKind::NoStalenessSource,
            Problem::ServerClockDistrusted { .. } => ProblemKind::ServerClockDistrusted,
        }
    }

    /// Whether `event` ends this problem. The rest stay until a newer problem replaces them:
    /// they describe something that happened, not a condition that persists.
    pub(crate) fn cleared_by(&self, event: Recovery) -> bool {
        match event {
            Recovery::StorageAnswered => matches!(self, Problem::Storage(_) | Problem::RefusedCorrectWrite { .. }),
            Recovery::RecordRead => matches!(self, Problem::Record { .. } | Problem::Deleted { .. }),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Storage(e) => write!(f, "{e}"),
            Problem::RefusedCorrectWrite { etag } => write!(
                f,
                "storage refused a conditional write with the lock object's current etag {}: the server does not honour If-Match as sent (a server quirk; the start-up conformance check detects it)",
                printable(etag)
            ),
            Problem::Record { key, error } => write!(f, "lock object {}: {error}", printable(key)),
            Problem::Deleted { key } => write!(f, "lock object {} was deleted; recreating it after one leader timeout", printable(key)),
            Problem::Lost { term, why } => write!(f, "lost leadership of term {term}: {why}"),
            Problem::AcquireHook(e) => write!(f, "acquire hook failed, resigned: {e}"),
            Problem::LoseHook(e) => write!(f, "lose hook failed: {e}"),
            Problem::Resign(e) => write!(f, "writing the resigned record failed: {e}"),
            Problem::NoStalenessSource { budget_ms, leader_timeout_ms } => write!(
                f,
                "this invocation cannot see a leader go: it starts without a continuing clock (no carried state, or state from another clock) and lasts {budget_ms} ms, less than the leader timeout ({leader_timeout_ms} ms), so as a follower it never takes over. Use the storage server's clock (server-clock-skew-ms, with a server that sends Date and Last-Modified), carry the state between invocations on one machine, let an invocation run longer than the leader timeout, or opt into timestamp mode (max-clock-skew-ms)"
            ),
            Problem::ServerClockDistrusted { why } => write!(
                f,
                "not judging staleness by the storage server's clock from now on: {why}. Followers here wait out a leader timeout of their own clock instead, as with server-clock-auto false; a restart checks the server's clock again"
            ),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::OtherWriter => "another instance wrote the lock object",
            Loss::LeaseExpired => "lease expired before a renewal succeeded",
            Loss::RenewedTooLate => "renewal succeeded only after the lease had expired",
            Loss::Deleted => "the lock object was deleted",
            Loss::CarriedLeaseNotHeld => "the carried state names a lease the lock object does not hold",
        })
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Problem::Storage(e) | Problem::Resign(e) => Some(e),
            Problem::Record { error, .. } => Some(error),
            _ => None,
        }
    }
}
