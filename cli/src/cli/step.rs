//! `s3lect step`: one election step for cron or serverless schedules, with the elector's state
//! carried in a file, or none (stateless workers). Exit code: 0 leader, 3 follower, 1 error.

use super::fail;
use super::run::with_hooks;
use super::settings::Flags;
use s3lect::oneshot::step_once;
use s3lect::storage::{EtagForm, WithEtagForm, conforming_storage};
use std::path::PathBuf;
use std::process::ExitCode;

pub const FOLLOWER: u8 = 3;

pub async fn step(flags: Flags, state_path: Option<PathBuf>, json: bool) -> ExitCode {
    let s = match flags.resolve() {
        Ok(s) => with_hooks(s),
        Err(e) => return fail(e),
    };
    let state = match state_path.as_deref().map(std::fs::read) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Some(Err(e)) => return fail(format!("cannot read state file {}: {e}", state_path.unwrap_or_default().display())),
    };
    // The conformance check costs requests: once per state file, with what it found out about
    // the server's If-Match (Ceph wants etags unquoted) kept beside the state. Without a state
    // file, every invocation checks.
    let finding_path = state_path.as_ref().map(|p| PathBuf::from(format!("{}.conformance", p.display())));
    let storage = match finding_path.as_deref().and_then(read_finding) {
        Some(form) if state.is_some() || !s.elector.check_conditional_writes => WithEtagForm::wrap(s.storage.clone(), form),
        None if !s.elector.check_conditional_writes => s.storage.clone(),
        _ => match conforming_storage(s.storage.clone(), &s.elector.lockfile_path, s.elector.startup_budget).await {
            Ok((storage, form)) => {
                if let Some(path) = &finding_path
                    && let Err(e) = write_atomically(path, finding_text(form).as_bytes())
                {
                    return fail(format!("cannot write {}: {e}", path.display()));
                }
                storage
            }
            Err(e) => return fail(e),
        },
    };
    let result = match step_once(&s.elector, storage, state.as_deref()).await {
        Ok(r) => r,
        Err(e) => return fail(format!("election step on {} failed: {e}", s.location)),
    };
    if let Some(why) = &result.discarded_state {
        tracing::warn!(file = ?state_path, "carried state not used ({why}); started afresh");
    }
    if let Some(path) = &state_path
        && let Err(e) = write_atomically(path, &result.state)
    {
        return fail(format!("cannot write state file {}: {e}", path.display()));
    }
    let st = &result.status;
    if json {
        println!("{}", serde_json::to_string(st).expect("status serialises"));
    } else {
        let role = if st.is_leader { "leader" } else { "follower" };
        let leader = if st.leader_id.is_empty() { "none known".into() } else { s3lect_guest::record::printable(&st.leader_id) };
        println!("{role}: leader {leader}, term {}, next step in {} ms", st.term, result.next_step.as_millis());
        if let Some(e) = &st.last_error {
            println!("problem: {}", s3lect_guest::record::printable(e));
        }
    }
    if st.problem == Some(s3lect_guest::ProblemKind::NoStalenessSource) {
        // Said on stderr too, in every output mode: this setup can never fail over.
        tracing::warn!(problem = %st.last_error.as_deref().unwrap_or_default(), "this step can never see a leader go");
    }
    if st.is_leader { ExitCode::SUCCESS } else { ExitCode::from(FOLLOWER) }
}

/// Writes `path` whole or not at all: a crash mid-write must not leave a torn file. The temporary
/// file has a random name and is created exclusively (O_EXCL, mode 0600), so a symlink planted
/// at a predictable name cannot redirect the write.
fn write_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".s3lect-state-").tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

fn finding_text(form: EtagForm) -> &'static str {
    match form {
        EtagForm::Unquoted => "if-match-etag unquoted\n",
        _ => "if-match-etag as-returned\n",
    }
}

/// What an earlier invocation's conformance check found; none if unknown (check again).
fn read_finding(path: &std::path::Path) -> Option<EtagForm> {
    match std::fs::read_to_string(path).ok()?.trim() {
        "if-match-etag unquoted" => Some(EtagForm::Unquoted),
        "if-match-etag as-returned" => Some(EtagForm::AsReturned),
        _ => None,
    }
}
