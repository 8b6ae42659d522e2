//! The vocabulary between the state machine and whoever performs its I/O: the actions it asks
//! for, and the completions it is fed. Nothing here does I/O.

use crate::machine::{HookTicket, ProbeTicket, ReadTicket, WriteTicket};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A reading of this process's clocks. `mono_ns` drives every timing rule; `wall_ns` (unix
/// nanoseconds) is only written into records and read in the opt-in timestamp mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    pub mono_ns: u64,
    pub wall_ns: i128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub data: Vec<u8>,
    pub etag: String,
    /// The server's own clock on this answer, when it sent one.
    pub server_clock: Option<ServerClock>,
}

/// The storage server's clock on a read: HTTP `Last-Modified` (when the object was written)
/// and `Date` (when the answer was made), in whole seconds since the Unix epoch. Their
/// difference is how long the object had stood, by the server's clock alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerClock {
    pub written_unix_s: i64,
    pub answered_unix_s: i64,
}

impl ServerClock {
    /// How long the object had stood when read, as the two stamps say (never negative).
    pub fn age_ms(&self) -> u64 {
        u64::try_from(self.answered_unix_s.saturating_sub(self.written_unix_s)).unwrap_or(0).saturating_mul(1_000)
    }
}

/// The WIT's `storage-error`, case for case (exhaustive: a new case is a contract change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StorageError {
    NotFound,
    PreconditionFailed,
    Conflict,
    Unavailable(String),
    Denied(String),
    Invalid(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::NotFound => f.write_str("object not found"),
            StorageError::PreconditionFailed => f.write_str("precondition failed"),
            StorageError::Conflict => f.write_str("conflicting conditional write in progress"),
            StorageError::Unavailable(e) => write!(f, "storage unavailable: {e}"),
            StorageError::Denied(e) => write!(f, "storage denied access (check credentials and bucket policy): {e}"),
            StorageError::Invalid(e) => write!(f, "invalid storage request or reply: {e}"),
        }
    }
}

impl std::error::Error for StorageError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeReply {
    /// The leader's health JSON.
    Leader(Vec<u8>),
    NotLeader,
}

/// What the state machine wants done next. Exactly one action is outstanding at a time; its
/// ticket goes back with the answer, in the [`Completion`] of the same kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Get {
        key: String,
        timeout_ms: u64,
        ticket: ReadTicket,
    },
    /// `etag: None` means If-None-Match: *. Send it at once: the lease counts from the moment
    /// this action was produced.
    Put {
        key: String,
        data: Vec<u8>,
        etag: Option<String>,
        timeout_ms: u64,
        ticket: WriteTicket,
    },
    Probe {
        addr: String,
        path: String,
        timeout_ms: u64,
        /// The leader's certificate SHA-256, from its record (see the WIT `peer.probe`).
        pin: Option<String>,
        ticket: ProbeTicket,
    },
    AcquireHook {
        term: u64,
        leader_id: String,
        ticket: HookTicket,
    },
    LoseHook {
        term: u64,
        leader_id: String,
        ticket: HookTicket,
    },
    /// The step is over; run the next one after this delay.
    Done {
        next_step_in_ms: u64,
    },
}

/// The answer to the outstanding action, with the action's ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Got(ReadTicket, Result<Object, StorageError>),
    Put(WriteTicket, Result<String, StorageError>),
    Probed(ProbeTicket, Result<ProbeReply, String>),
    Hook(HookTicket, Result<(), String>),
}

/// Performs actions for [`crate::drive_step`]: the WIT imports in the component, fakes in tests.
pub trait Io {
    fn now(&mut self) -> Clock;
    fn get(&mut self, key: &str, timeout_ms: u64) -> Result<Object, StorageError>;
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>, timeout_ms: u64) -> Result<String, StorageError>;
    fn probe(&mut self, addr: &str, path: &str, timeout_ms: u64, pin: Option<&str>) -> Result<ProbeReply, String>;
    fn acquire_hook(&mut self, term: u64, leader_id: &str) -> Result<(), String>;
    fn lose_hook(&mut self, term: u64, leader_id: &str) -> Result<(), String>;
}
