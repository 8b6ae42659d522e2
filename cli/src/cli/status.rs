//! `s3lect status` (read the lock object) and `s3lect resign` (revoke a leader).

use super::fail;
use super::settings::Flags;
use s3lect::Condition;
use s3lect::storage::conforming_storage;
use s3lect::{LeaderRecord, StorageError};
use s3lect_guest::record::printable;
use std::process::ExitCode;

pub async fn status(mut flags: Flags, json: bool) -> ExitCode {
    // Reading the lock object needs no identity: the README's `status` has none.
    flags.election.or_given("server_id", "status");
    let s = match flags.resolve() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let (data, etag) = match s.storage.get(&s.elector.lockfile_path).await {
        Ok(o) => o,
        Err(StorageError::NotFound) => {
            if json {
                println!(r#"{{"exists":false}}"#);
            } else {
                println!("no lock object at {}: no election has happened yet", s.location);
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(format!("reading {}: {e}", s.location)),
    };
    let record = match LeaderRecord::parse(&data) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", s.location)),
    };
    // Age by this machine's clock against the writer's: informative only.
    let age_ms = (time::OffsetDateTime::now_utc() - record.last_updated).whole_milliseconds();
    if json {
        let out = serde_json::json!({
            "exists": true,
            "leaderID": record.leader_id,
            "leaderAddr": record.leader_addr,
            "lastUpdated": record.last_updated.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "term": record.term,
            "resigned": record.is_resigned(),
            "ageMs": if record.is_resigned() { None } else { Some(age_ms) },
            "etag": etag,
        });
        println!("{out}");
    } else if record.is_resigned() {
        println!("no leader: the last leader resigned (term {})", record.term);
    } else if record.leader_id.is_empty() {
        println!("no leader: leadership of term {} was revoked {} ms ago", record.term, age_ms);
    } else {
        println!(
            "leader {} ({}), term {}, last renewed {} ms ago by this machine's clock, etag {}",
            printable(&record.leader_id),
            if record.leader_addr.is_empty() { "no address".into() } else { printable(&record.leader_addr) },
            record.term,
            age_ms,
            printable(&etag)
        );
    }
    ExitCode::SUCCESS
}

/// Overwrites the record (If-Match) with one naming nobody but carrying a fresh timestamp:
/// the leader's next renewal fails and it steps down, while followers still wait a full
/// leader timeout before taking over — so there is never a moment with two leaders.
pub async fn resign(flags: Flags) -> ExitCode {
    let s = match flags.resolve() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let id = &s.elector.server_id;
    let key = &s.elector.lockfile_path;
    let (data, etag) = match s.storage.get(key).await {
        Ok(o) => o,
        Err(StorageError::NotFound) => return fail(format!("{id} does not lead: there is no lock object at {}", s.location)),
        Err(e) => return fail(format!("reading {}: {e}", s.location)),
    };
    let record = match LeaderRecord::parse(&data) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", s.location)),
    };
    if record.is_resigned() || record.leader_id != *id {
        let who = if record.is_resigned() || record.leader_id.is_empty() {
            "nobody".to_string()
        } else {
            printable(&record.leader_id).into_owned()
        };
        return fail(format!("{id} does not lead (the lock object names {who})"));
    }
    let now_ns = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let revoked = LeaderRecord { nonce: fastrand::u64(1..), ..LeaderRecord::revocation(id, now_ns, record.term) };
    // The same check as `run`: it refuses a server that would ignore the condition, and finds
    // the If-Match form the server accepts (Ceph RGW 16 wants etags unquoted).
    let storage = match s.elector.check_conditional_writes {
        true => match conforming_storage(s.storage.clone(), key, s.elector.startup_budget).await {
            Ok((storage, _)) => storage,
            Err(e) => return fail(e),
        },
        false => s.storage.clone(),
    };
    match storage.put_if_match(key, &revoked.to_json(), Condition::Matches(&etag)).await {
        Ok(_) => {
            println!(
                "revoked {id}'s leadership of term {}: it steps down at its next renewal; another node takes over after one leader timeout ({id} waits two)",
                record.term
            );
            ExitCode::SUCCESS
        }
        Err(StorageError::PreconditionFailed) => fail("the lock object changed while revoking; run status and try again"),
        Err(e) => fail(format!("writing {}: {e}", s.location)),
    }
}
