//! Conversions that every binding of our WIT needs. Each component (and the host) generates
//! its own bindings of the same interfaces: the types differ by path, never by shape, so one
//! macro writes the conversions for whichever module it is given.

/// `storage_error_conversions!(m)`, where `m` is a generated `storage` module in scope, defines
/// `storage_error_from_wit(m::StorageError) -> StorageError`,
/// `storage_error_to_wit(StorageError) -> m::StorageError`, and `object_from_wit` /
/// `object_to_wit` between `m::Object` and [`Object`](crate::Object).
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
        fn object_from_wit(o: $m::Object) -> $crate::Object {
            let server_clock =
                o.server_clock.map(|c| $crate::ServerClock { written_unix_s: c.written_unix_s, answered_unix_s: c.answered_unix_s });
            $crate::Object { data: o.data, etag: o.etag, server_clock }
        }

        #[allow(dead_code)]
        fn object_to_wit(o: $crate::Object) -> $m::Object {
            let server_clock =
                o.server_clock.map(|c| $m::ServerClock { written_unix_s: c.written_unix_s, answered_unix_s: c.answered_unix_s });
            $m::Object { data: o.data, etag: o.etag, server_clock }
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

/// `probe_reply_conversions!(m)`, where `m` is a generated module with a `ProbeReply` (`peer`'s
/// or `machine`'s), defines `probe_reply_from_wit` and `probe_reply_to_wit`.
#[macro_export]
macro_rules! probe_reply_conversions {
    ($m:ident) => {
        #[allow(dead_code)]
        fn probe_reply_from_wit(r: $m::ProbeReply) -> $crate::ProbeReply {
            match r {
                $m::ProbeReply::Leader(body) => $crate::ProbeReply::Leader(body),
                $m::ProbeReply::NotLeader => $crate::ProbeReply::NotLeader,
            }
        }

        #[allow(dead_code)]
        fn probe_reply_to_wit(r: $crate::ProbeReply) -> $m::ProbeReply {
            match r {
                $crate::ProbeReply::Leader(body) => $m::ProbeReply::Leader(body),
                $crate::ProbeReply::NotLeader => $m::ProbeReply::NotLeader,
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
                server_clock_in_use: s.server_clock_in_use,
                problem: s.problem.map(|k| $crate::problem_kind_as!(k, $crate::ProblemKind => $m::ProblemKind)),
                stopped: s.stopped,
            }
        }
    };
}

/// `problem_kind_as!(k, A => B)`: the kind `k` of enum `A` as the same-named kind of `B` (the
/// core's `ProblemKind` and a binding's, either way). The kinds are listed here once.
#[doc(hidden)]
#[macro_export]
macro_rules! problem_kind_as {
    ($k:expr, $from:path => $to:path) => {{
        use $from as From;
        use $to as To;
        match $k {
            From::Storage => To::Storage,
            From::RefusedCorrectWrite => To::RefusedCorrectWrite,
            From::Record => To::Record,
            From::Deleted => To::Deleted,
            From::Lost => To::Lost,
            From::AcquireHook => To::AcquireHook,
            From::LoseHook => To::LoseHook,
            From::Resign => To::Resign,
            From::NoStalenessSource => To::NoStalenessSource,
            From::ServerClockDistrusted => To::ServerClockDistrusted,
        }
    }};
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
                server_clock_in_use: s.server_clock_in_use,
                problem: s.problem.map(|k| $crate::problem_kind_as!(k, $m::ProblemKind => $crate::ProblemKind)),
                stopped: s.stopped,
            }
        }
    };
}

/// `config_to_wit!(m)`, where `m` is a generated `types` module in scope, defines
/// `config_to_wit(&Config) -> m::Config` and `config_from_wit(m::Config) -> Config`, field for
/// field from the settings table.
#[macro_export]
macro_rules! config_to_wit {
    ($m:ident) => {
        $crate::for_each_setting!($crate::config_wit_conversions, $m);
    };
}

/// The body of [`config_to_wit!`], called with the settings table.
#[doc(hidden)]
#[macro_export]
macro_rules! config_wit_conversions {
    (($m:ident) $( $(#[doc = $doc:literal])* $name:ident / $host:ident : $kind:ident = $default:expr, $flag:literal, $var:literal; )*) => {
        #[allow(dead_code)]
        fn config_to_wit(c: &$crate::Config) -> $m::Config {
            $m::Config { $( $name: c.$name.clone(), )* }
        }

        #[allow(dead_code)]
        fn config_from_wit(c: $m::Config) -> $crate::Config {
            $crate::Config { $( $name: c.$name, )* }
        }
    };
}
