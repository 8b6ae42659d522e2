//! Conversions that every binding of our WIT needs. Each component (and the host) generates
//! its own bindings of the same interfaces: the types differ by path, never by shape, so one
//! macro writes the conversions for whichever module it is given.

/// `storage_error_conversions!(m)`, where `m` is a generated `storage` module in scope, defines
/// `storage_error_from_wit(m::StorageError) -> StorageError` and
/// `storage_error_to_wit(StorageError) -> m::StorageError`.
#[macro_export]
macro_rules! storage_error_conversions {
    ($m:ident) => {
        #[allow(dead_code)]
        fn storage_error_from_wit(e: $m::StorageError) -> $crate::StorageError {
            match e {
                $m::StorageError::NotFound => $crate::StorageError::NotFound,
                $m::StorageError::PreconditionFailed => $crate::StorageError::PreconditionFailed,
                $m::StorageError::Conflict => $crate::StorageError::Conflict,
                $m::StorageError::Unavailable(m) => $crate::StorageError::Unavailable(m),
                $m::StorageError::Denied(m) => $crate::StorageError::Denied(m),
                $m::StorageError::Invalid(m) => $crate::StorageError::Invalid(m),
            }
        }

        #[allow(dead_code)]
        fn storage_error_to_wit(e: $crate::StorageError) -> $m::StorageError {
            match e {
                $crate::StorageError::NotFound => $m::StorageError::NotFound,
                $crate::StorageError::PreconditionFailed => $m::StorageError::PreconditionFailed,
                $crate::StorageError::Conflict => $m::StorageError::Conflict,
                $crate::StorageError::Unavailable(m) => $m::StorageError::Unavailable(m),
                $crate::StorageError::Denied(m) => $m::StorageError::Denied(m),
                $crate::StorageError::Invalid(m) => $m::StorageError::Invalid(m),
            }
        }
    };
}

/// `status_to_wit!(m)`, where `m` is a generated `types` module in scope, defines
/// `status_to_wit(Status) -> m::Status`.
#[macro_export]
macro_rules! status_to_wit {
    ($m:ident) => {
        fn status_to_wit(s: $crate::Status) -> $m::Status {
            // Wall times fit i64 nanoseconds until the year 2262.
            let ns64 = |t: i128| i64::try_from(t).unwrap_or(i64::MAX);
            $m::Status {
                server_id: s.server_id,
                lockfile_path: s.lockfile_path,
                is_leader: s.is_leader,
                leader_id: s.leader_id,
                leader_addr: s.leader_addr,
                leader_last_seen_unix_ns: s.leader_last_seen_unix_ns.map(ns64),
                last_election_unix_ns: s.last_election_unix_ns.map(ns64),
                consecutive_fails: s.consecutive_fails,
                term: s.term,
                lease_until: s.lease_until,
                last_error: s.last_error,
                problem: s.problem.map(|k| match k {
                    $crate::ProblemKind::Storage => $m::ProblemKind::Storage,
                    $crate::ProblemKind::RefusedCorrectWrite => $m::ProblemKind::RefusedCorrectWrite,
                    $crate::ProblemKind::Record => $m::ProblemKind::Record,
                    $crate::ProblemKind::Deleted => $m::ProblemKind::Deleted,
                    $crate::ProblemKind::Lost => $m::ProblemKind::Lost,
                    $crate::ProblemKind::AcquireHook => $m::ProblemKind::AcquireHook,
                    $crate::ProblemKind::LoseHook => $m::ProblemKind::LoseHook,
                    $crate::ProblemKind::Resign => $m::ProblemKind::Resign,
                }),
                stopped: s.stopped,
            }
        }
    };
}

/// `status_from_wit!(m)`, where `m` is a generated `types` module in scope, defines
/// `status_from_wit(m::Status) -> Status`.
#[macro_export]
macro_rules! status_from_wit {
    ($m:ident) => {
        fn status_from_wit(s: $m::Status) -> $crate::Status {
            $crate::Status {
                server_id: s.server_id,
                lockfile_path: s.lockfile_path,
                is_leader: s.is_leader,
                leader_id: s.leader_id,
                leader_addr: s.leader_addr,
                leader_last_seen_unix_ns: s.leader_last_seen_unix_ns.map(i128::from),
                last_election_unix_ns: s.last_election_unix_ns.map(i128::from),
                consecutive_fails: s.consecutive_fails,
                term: s.term,
                lease_until: s.lease_until,
                last_error: s.last_error,
                problem: s.problem.map(|k| match k {
                    $m::ProblemKind::Storage => $crate::ProblemKind::Storage,
                    $m::ProblemKind::RefusedCorrectWrite => $crate::ProblemKind::RefusedCorrectWrite,
                    $m::ProblemKind::Record => $crate::ProblemKind::Record,
                    $m::ProblemKind::Deleted => $crate::ProblemKind::Deleted,
                    $m::ProblemKind::Lost => $crate::ProblemKind::Lost,
                    $m::ProblemKind::AcquireHook => $crate::ProblemKind::AcquireHook,
                    $m::ProblemKind::LoseHook => $crate::ProblemKind::LoseHook,
                    $m::ProblemKind::Resign => $crate::ProblemKind::Resign,
                }),
                stopped: s.stopped,
            }
        }
    };
}

/// `config_to_wit!(m)`, where `m` is a generated `types` module in scope, defines
/// `config_to_wit(&Config) -> m::Config`.
#[macro_export]
macro_rules! config_to_wit {
    ($m:ident) => {
        fn config_to_wit(c: &$crate::Config) -> $m::Config {
            $m::Config {
                lockfile_path: c.lockfile_path.clone(),
                server_id: c.server_id.clone(),
                server_addr: c.server_addr.clone(),
                frequent_interval_ms: c.frequent_interval_ms,
                infrequent_interval_ms: c.infrequent_interval_ms,
                leader_timeout_ms: c.leader_timeout_ms,
                renew_deadline_ms: c.renew_deadline_ms,
                peer_mode: c.peer_mode,
                peer_health_path: c.peer_health_path.clone(),
                peer_timeout_ms: c.peer_timeout_ms,
                max_clock_drift_ppm: c.max_clock_drift_ppm,
                max_clock_skew_ms: c.max_clock_skew_ms,
                trust_absent_object: c.trust_absent_object,
            }
        }
    };
}
