//! One invocation of the `elector-cron` world: restore the carried state, check the storage
//! (unless a carried finding still holds), step (more than once only within the configured
//! budget), save the state, report.

use crate::{Carried, Checked, state_key, storage_identity};
use s3lect_guest::conformance::{CheckIo, DEFAULT_STARTUP_BUDGET, EtagForm, block_on_ready, check_conditional_writes};
use s3lect_guest::env_config::{config_from_vars, ms_var};
use s3lect_guest::{Clock, Elector, Io, Object, ProbeReply, Status, StorageError, drive_step};
use std::time::Duration;

wit_bindgen::generate!({
    path: "../../wit",
    world: "elector-cron",
    generate_all,
});

use exports::s3lect::election::cron as wit_cron;
use exports::s3lect::election::types as wit;
use fermyon::spin_cron::cron_types as spin_cron;
use s3lect::election::storage as wit_storage;
use wasi::clocks::{monotonic_clock, wall_clock};

struct Component;

fn clock() -> Clock {
    let wall = wall_clock::now();
    Clock { mono_ns: monotonic_clock::now(), wall_ns: i128::from(wall.seconds) * 1_000_000_000 + i128::from(wall.nanoseconds) }
}

s3lect_guest::storage_error_conversions!(wit_storage);
s3lect_guest::status_to_wit!(wit);

fn get(key: &str, timeout_ms: u64) -> Result<Object, StorageError> {
    wit_storage::get(key, timeout_ms).map(object_from_wit).map_err(storage_error_from_wit)
}

fn put(key: &str, data: &[u8], etag: Option<&str>, timeout_ms: u64) -> Result<String, StorageError> {
    wit_storage::put_if_match(key, data, etag, timeout_ms).map_err(storage_error_from_wit)
}

/// The election's I/O in this world: storage only, with `If-Match` in the form the server
/// accepts. The invocation's report is the "hook": the caller acts on `status.is-leader`.
struct CronIo {
    form: EtagForm,
}

impl Io for CronIo {
    fn now(&mut self) -> Clock {
        clock()
    }
    fn get(&mut self, key: &str, timeout_ms: u64) -> Result<Object, StorageError> {
        get(key, timeout_ms)
    }
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>, timeout_ms: u64) -> Result<String, StorageError> {
        put(key, data, etag.map(|e| self.form.apply(e)), timeout_ms)
    }
    fn probe(&mut self, _: &str, _: &str, _: u64, _: Option<&str>) -> Result<ProbeReply, String> {
        Err("peer mode is not available to a cron invocation".into())
    }
    fn acquire_hook(&mut self, _: u64, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn lose_hook(&mut self, _: u64, _: &str) -> Result<(), String> {
        Ok(())
    }
}

/// The conformance check's I/O: the blocking storage imports, the monotonic clock, a sleep.
struct CronCheck {
    timeout_ms: u64,
}

impl CheckIo for CronCheck {
    async fn get(&mut self, key: &str) -> Result<(Vec<u8>, String), StorageError> {
        get(key, self.timeout_ms).map(|o| (o.data, o.etag))
    }
    async fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>) -> Result<String, StorageError> {
        put(key, data, etag, self.timeout_ms)
    }
    async fn sleep(&mut self, pause: Duration) {
        std::thread::sleep(pause)
    }
    fn elapsed(&mut self) -> Duration {
        Duration::from_nanos(monotonic_clock::now())
    }
}

struct Report {
    status: Status,
    steps: u32,
    restored: bool,
    next_step_in_ms: u64,
    lease_remaining_ms: Option<u64>,
}

fn invocation() -> Result<Report, String> {
    let var = |k: &str| std::env::var(k).ok();
    let cfg = config_from_vars(var)?;
    if cfg.peer_mode {
        return Err("S3LECT_PEER_MODE: a cron invocation serves no health endpoint and probes none".into());
    }
    cfg.validate().map_err(|e| e.to_string())?;
    // How long this invocation may keep stepping (0: exactly one step).
    let budget_ms = ms_var(&var, "S3LECT_INVOCATION_BUDGET_MS", 0)?;
    let key = state_key(&cfg.lockfile_path, &cfg.server_id);
    let timeout_ms = cfg.renew_deadline_ms;
    let (carried, state_etag) = match get(&key, timeout_ms) {
        Ok(obj) => (Some(obj.data), Some(obj.etag)),
        Err(StorageError::NotFound) => (None, None),
        Err(e) => return Err(format!("reading the carried state {key}: {e}")),
    };
    let carried = carried
        .and_then(|data| Carried::parse(&data).map_err(|why| eprintln!("s3lect-cron: ignoring the carried state in {key}: {why}")).ok());
    // The server must enforce conditional writes, as the native host checks at start: once per
    // storage (endpoint, region, bucket) and day, the finding carried with the state.
    let storage = storage_identity(var);
    let now_unix_s = (clock().wall_ns / 1_000_000_000) as i64;
    let checked = match carried.as_ref().and_then(|c| c.checked.clone()).filter(|c| c.holds_for(&storage, now_unix_s)) {
        Some(c) => Some(c),
        None if var("S3LECT_CHECK_CONDITIONAL_WRITES").as_deref() == Some("false") => None,
        None => {
            let found = block_on_ready(check_conditional_writes(&mut CronCheck { timeout_ms }, &cfg.lockfile_path, DEFAULT_STARTUP_BUDGET))
                .map_err(|e| e.to_string())?;
            Some(Checked { storage, at_unix_s: now_unix_s, if_match: found.if_match })
        }
    };
    let form = checked.as_ref().map(|c| c.if_match).unwrap_or_default();
    // A cold start is always safe (the elector may only conclude what the record proves), so
    // carried state that cannot be used is reported and dropped, never trusted.
    let restored = carried.and_then(|c| {
        Elector::restore(cfg.clone(), &serde_json::to_vec(&c.elector).expect("JSON values serialise"), clock())
            .map_err(|why| eprintln!("s3lect-cron: ignoring the carried state in {key}: {why}"))
            .ok()
    });
    let was_restored = restored.is_some();
    let mut elector = match restored {
        Some(e) => e,
        None => Elector::new(cfg, clock()).map_err(|e| e.to_string())?,
    };
    elector.set_invocation_budget(budget_ms);
    let started = clock().mono_ns;
    let mut steps = 0;
    let next_step_in_ms = loop {
        let next = drive_step(&mut elector, &mut CronIo { form });
        steps += 1;
        let elapsed_ms = (clock().mono_ns - started) / 1_000_000;
        if elapsed_ms + next > budget_ms {
            break next;
        }
        std::thread::sleep(Duration::from_millis(next));
    };
    let state = serde_json::from_slice(&elector.export_state(clock())).expect("the elector exports JSON");
    let state_etag = state_etag.as_deref().map(|e| form.apply(e));
    match put(&key, &Carried { elector: state, checked }.to_bytes(), state_etag, timeout_ms) {
        Ok(_) => {}
        Err(StorageError::PreconditionFailed | StorageError::NotFound) => {
            return Err(format!(
                "another invocation of server {:?} changed {key} during this one: run one invocation per server id at a time",
                elector.status(clock()).server_id
            ));
        }
        // The next invocation starts from older state or cold: slower, never unsafe.
        Err(e) => return Err(format!("saving the carried state {key}: {e}")),
    }
    let now = clock();
    let status = elector.status(now);
    let lease_remaining_ms = status.lease_until.filter(|_| status.is_leader).map(|until| until.saturating_sub(now.mono_ns) / 1_000_000);
    Ok(Report { status, steps, restored: was_restored, next_step_in_ms, lease_remaining_ms })
}

/// The report as one JSON line on stdout, for logs and for hosts that only see output.
fn print(r: &Report) {
    let line = serde_json::json!({
        "serverID": r.status.server_id,
        "isLeader": r.status.is_leader,
        "leaderID": r.status.leader_id,
        "term": r.status.term,
        "steps": r.steps,
        "restored": r.restored,
        "nextStepInMs": r.next_step_in_ms,
        "leaseRemainingMs": r.lease_remaining_ms,
        "lastError": r.status.last_error,
    });
    println!("{line}");
}

fn run_and_print() -> Result<(), String> {
    let report = invocation()?;
    print(&report);
    Ok(())
}

/// Spin's cron trigger calls this, once per scheduled tick.
impl Guest for Component {
    fn handle_cron_event(_: spin_cron::Metadata) -> Result<(), spin_cron::Error> {
        run_and_print().map_err(spin_cron::Error::Other)
    }
}

impl wit_cron::Guest for Component {
    fn step_once() -> Result<wit_cron::InvocationReport, String> {
        let r = invocation()?;
        Ok(wit_cron::InvocationReport {
            steps: r.steps,
            restored: r.restored,
            next_step_in_ms: r.next_step_in_ms,
            lease_remaining_ms: r.lease_remaining_ms,
            status: status_to_wit(r.status),
        })
    }
}

impl exports::wasi::cli::run::Guest for Component {
    fn run() -> Result<(), ()> {
        run_and_print().map_err(|e| eprintln!("s3lect-cron: {e}"))
    }
}

export!(Component);
