//! Stateless one-step invocations, run the way a scheduler runs them on fresh workers (CronJob
//! pods, Lambda): three workers each start a new `s3lect step` (no state file) — or a new
//! `wasmtime run` of the composed component — every period. With the storage server's clock
//! as the staleness source a leader keeps its term from invocation to invocation, and when its
//! schedule stops another worker takes over within leader timeout + one period + the margins,
//! never while the old leader's invocation could still lead.

mod common;

use common::interop::{report, stateless_env, wasmtime_run};
use common::nodes::{BIN, s3lect};
use common::seaweed;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(500);
/// S3LECT_LEADER_TIMEOUT_MS of `stateless_env`.
const LEADER_TIMEOUT: Duration = Duration::from_millis(5_000);
/// HTTP dates count whole seconds; one server, so no front-end skew beyond that.
const RESOLUTION: Duration = Duration::from_secs(1);
const WORKERS: [&str; 3] = ["w1", "w2", "w3"];

/// One invocation as its worker saw it.
#[derive(Clone, Debug)]
struct Report {
    worker: &'static str,
    started: Instant,
    ended: Instant,
    leader: bool,
    term: u64,
}

/// Starts one invocation for a worker and reads its report: (is leader, term).
type Invoke = Arc<dyn Fn(&'static str) -> (bool, u64) + Send + Sync>;

/// Runs the three workers until `stop` says so; `halted` workers are no longer scheduled.
struct Scheduler {
    reports: Arc<Mutex<Vec<Report>>>,
    halted: Arc<Mutex<Vec<&'static str>>>,
    /// Workers with an invocation under way.
    busy: Arc<Mutex<Vec<&'static str>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    fn start(invoke: Invoke) -> Scheduler {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let halted = Arc::new(Mutex::new(Vec::<&'static str>::new()));
        let busy = Arc::new(Mutex::new(Vec::<&'static str>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = WORKERS
            .iter()
            .enumerate()
            .map(|(n, &worker)| {
                let (invoke, reports, halted, busy, stop) = (invoke.clone(), reports.clone(), halted.clone(), busy.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Staggered, as independent schedules are.
                    let mut next = Instant::now() + PERIOD * n as u32 / WORKERS.len() as u32;
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                        next += PERIOD;
                        {
                            // Marked busy before the halt is checked: once a halted worker is
                            // seen idle, it never starts again.
                            let mut busy = busy.lock().unwrap();
                            if halted.lock().unwrap().contains(&worker) {
                                continue;
                            }
                            busy.push(worker);
                        }
                        let started = Instant::now();
                        let (leader, term) = invoke(worker);
                        reports.lock().unwrap().push(Report { worker, started, ended: Instant::now(), leader, term });
                        busy.lock().unwrap().retain(|w| *w != worker);
                    }
                })
            })
            .collect();
        Scheduler { reports, halted, busy, stop, threads }
    }

    fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }

    /// Waits until `f` finds something in the reports, or panics after `limit` naming `what`.
    fn wait_for<T>(&self, what: &str, limit: Duration, f: impl Fn(&[Report]) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(&self.reports()) {
                return v;
            }
            assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}: {:#?}", self.reports());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(mut self) -> Vec<Report> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.reports()
    }
}

/// The scenario, for any way of invoking a step. Returns the measured takeover time.
fn leader_keeps_its_term_then_another_worker_takes_over(invoke: Invoke) -> Duration {
    let scheduler = Scheduler::start(invoke);
    // A leader that keeps its term across four invocations of its own: it resumes its record.
    let (leader, term) = scheduler.wait_for("a leader re-elected by four of its invocations in a row", Duration::from_secs(60), |rs| {
        WORKERS.iter().find_map(|&w| {
            let mine: Vec<&Report> = rs.iter().filter(|r| r.worker == w).collect();
            let last4 = mine.get(mine.len().checked_sub(4)?..)?;
            let term = last4[0].term;
            last4.iter().all(|r| r.leader && r.term == term).then_some((w, term))
        })
    });
    {
        let _busy = scheduler.busy.lock().unwrap();
        scheduler.halted.lock().unwrap().push(leader);
    }
    // Its invocation in flight, if any, finishes: its end is when the leader was last seen.
    scheduler.wait_for("the halted leader's last invocation to end", Duration::from_secs(30), |_| {
        (!scheduler.busy.lock().unwrap().contains(&leader)).then_some(())
    });
    let last_seen = scheduler.reports().iter().filter(|r| r.worker == leader).map(|r| r.ended).max().unwrap();
    let takeover = scheduler.wait_for("another worker to take over", Duration::from_secs(60), |rs| {
        rs.iter().filter(|r| r.worker != leader && r.leader && r.started > last_seen).map(|r| r.ended).min()
    });
    let reports = scheduler.finish();
    let took = takeover - last_seen;
    let slowest = reports.iter().map(|r| r.ended - r.started).max().unwrap();
    println!(
        "{} invocations; leader {leader} held term {term}; takeover {took:?} after its last invocation ended (slowest invocation {slowest:?})",
        reports.len()
    );
    // Leaderships never overlap: no two workers' leading invocations run at the same time.
    let leading: Vec<&Report> = reports.iter().filter(|r| r.leader).collect();
    for a in &leading {
        for b in &leading {
            assert!(a.worker == b.worker || a.ended <= b.started || b.ended <= a.started, "overlapping leaders: {a:?} and {b:?}");
        }
    }
    let new_term = reports.iter().filter(|r| r.leader && r.worker != leader).map(|r| r.term).min().unwrap();
    assert_eq!(new_term, term + 1, "the takeover is the next term");
    // The old leader's last write was in its last invocation; by the server's clock the record
    // must stand a leader timeout, which can look up to RESOLUTION shorter than it was.
    assert!(took + slowest >= LEADER_TIMEOUT - RESOLUTION, "took over too early: {took:?}");
    let bound = LEADER_TIMEOUT + PERIOD + RESOLUTION + slowest;
    assert!(took <= bound, "took over after {took:?}, beyond {bound:?}");
    took
}

/// `s3lect step` with no `--state` (a fresh worker each time), configured by the same variables
/// as the composed component.
fn cli_invoke(envs: Vec<Vec<(String, String)>>) -> Invoke {
    Arc::new(move |worker| {
        let env = &envs[WORKERS.iter().position(|w| *w == worker).unwrap()];
        let out = Command::new(BIN).arg("step").arg("--json").envs(env.iter().cloned()).output().expect("s3lect runs");
        assert!(matches!(out.status.code(), Some(0 | 3)), "step failed: {}", String::from_utf8_lossy(&out.stderr));
        let st: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON status");
        assert!(st["problem"].is_null(), "a stateless step with the server's clock is not blind: {st}");
        (st["isLeader"].as_bool().unwrap(), st["term"].as_u64().unwrap())
    })
}

fn envs(server: &s3lect_cli::local_s3::LocalS3, lock: &str) -> Vec<Vec<(String, String)>> {
    WORKERS.iter().map(|w| stateless_env(server, w, lock)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_s3lect_steps_keep_a_leader_and_fail_over_by_the_servers_clock() {
    let server = seaweed("stateless-cli").await;
    let invoke = cli_invoke(envs(&server, "stateless/leader.json"));
    let took = tokio::task::spawn_blocking(move || leader_keeps_its_term_then_another_worker_takes_over(invoke)).await.unwrap();
    println!("stateless s3lect step: takeover {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_staleness_source_a_stateless_step_says_it_can_never_fail_over() {
    let server = seaweed("stateless-blind").await;
    let lock = "blind/leader.json";
    assert_eq!(s3lect(&server, "step", "a", lock).output().unwrap().status.code(), Some(0));
    let out = s3lect(&server, "step", "b", lock).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["problem"], "no-staleness-source", "{st}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can never see a leader go") && stderr.contains("server-clock-skew-ms"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_wasmtime_runs_of_the_composed_component_fail_over_by_the_servers_clock() {
    let server = seaweed("stateless-wasmtime").await;
    let envs = envs(&server, "stateless/leader.json");
    let invoke: Invoke = Arc::new(move |worker| {
        let env = &envs[WORKERS.iter().position(|w| *w == worker).unwrap()];
        let out = wasmtime_run(env, &[]).output().expect("wasmtime runs");
        assert!(out.status.success(), "wasmtime run failed: {}", String::from_utf8_lossy(&out.stderr));
        let r = report(&out.stdout);
        (r["isLeader"].as_bool().unwrap(), r["term"].as_u64().unwrap())
    });
    let took = tokio::task::spawn_blocking(move || leader_keeps_its_term_then_another_worker_takes_over(invoke)).await.unwrap();
    println!("stateless wasmtime run: takeover {took:?}");
}
