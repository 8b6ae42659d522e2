//! In-process measurements: step cost (wasm vs native), S3 requests per hour, scale.

use super::stats::Row;
use s3lect::runtime::{ComponentElector, HostIo, Runtime};
use s3lect::storage::{CountingStorage, MemoryStorage};
use s3lect::{Elector, ElectorConfig, HealthServer, HealthServerConfig, S3Storage, Storage};
use s3lect_cli::local_s3::LocalS3;
use s3lect_guest::{Clock, Io, Object, ProbeReply, StorageError};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The native core's I/O: answered from a map of its own (the same work the component's imports
/// do), or through the storage the component's step uses.
struct BenchIo {
    store: Store,
    origin: Instant,
}

enum Store {
    /// Objects and the count that makes etags unique; the wall clock fixed.
    Map(HashMap<String, Object>, u64),
    /// The host's `MemoryStorage` behind `Arc<dyn Storage>`, each request within a timeout and
    /// both clocks read, as the host's driver does (less its stop-flag check): with the same
    /// work outside the core on both sides, the native and the wasm step differ by the wasm.
    Host(Arc<dyn Storage>),
}

impl BenchIo {
    fn map() -> BenchIo {
        BenchIo { store: Store::Map(HashMap::new(), 0), origin: Instant::now() }
    }

    fn host() -> BenchIo {
        BenchIo { store: Store::Host(Arc::new(MemoryStorage::new())), origin: Instant::now() }
    }
}

/// A request to the in-memory storage, which answers at its first poll, before any timeout.
fn answered<T>(request: impl std::future::Future<Output = Result<T, tokio::time::error::Elapsed>>) -> T {
    s3lect_guest::conformance::block_on_ready(request).expect("in-memory storage answers at once")
}

impl Io for BenchIo {
    fn now(&mut self) -> Clock {
        let mono_ns = self.origin.elapsed().as_nanos() as u64;
        let wall_ns = match self.store {
            Store::Map(..) => 1_800_000_000_000_000_000,
            Store::Host(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128,
        };
        Clock { mono_ns, wall_ns }
    }
    fn get(&mut self, key: &str, ms: u64) -> Result<Object, StorageError> {
        match &self.store {
            Store::Map(objects, _) => objects.get(key).cloned().ok_or(StorageError::NotFound),
            Store::Host(s) => answered(tokio::time::timeout(Duration::from_millis(ms), s.get_object(key))),
        }
    }
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>, ms: u64) -> Result<String, StorageError> {
        let (objects, n) = match &mut self.store {
            Store::Map(objects, n) => (objects, n),
            Store::Host(s) => {
                let put = s.put_if_match(key, data, s3lect::Condition::from_etag(etag));
                return answered(tokio::time::timeout(Duration::from_millis(ms), put));
            }
        };
        match (objects.get(key), etag) {
            (None, None) => {}
            (Some(o), Some(e)) if o.etag == e => {}
            _ => return Err(StorageError::PreconditionFailed),
        }
        *n += 1;
        let etag = format!("\"m{n}\"");
        objects.insert(key.into(), Object { data: data.to_vec(), etag: etag.clone(), server_clock: None });
        Ok(etag)
    }
    fn probe(&mut self, _: &str, _: &str, _: u64, _: Option<&str>) -> Result<ProbeReply, String> {
        Err("none".into())
    }
    fn acquire_hook(&mut self, _: u64, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn lose_hook(&mut self, _: u64, _: &str) -> Result<(), String> {
        Ok(())
    }
}

fn core_config() -> s3lect_guest::Config {
    s3lect_guest::Config { lockfile_path: "bench/step.json".into(), server_id: "a".into(), ..Default::default() }
}

/// µs per call of `f`, over ten batches of `steps / 10` calls.
async fn batches<F: FnMut() -> Fut, Fut: std::future::Future<Output = ()>>(steps: usize, mut f: F) -> Vec<f64> {
    let mut out = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..steps / 10 {
            f().await;
        }
        out.push(t.elapsed().as_nanos() as f64 / (steps / 10) as f64 / 1e3);
    }
    out
}

/// The native step, then the status and health a host publishes (what the wasm step returns).
async fn with_outcome(steps: usize, e: &mut s3lect_guest::Elector, io: &mut BenchIo) -> Vec<f64> {
    batches(steps, || {
        s3lect_guest::drive_step(e, io);
        let now = io.now();
        std::hint::black_box((e.status(now), e.health(now)));
        std::future::ready(())
    })
    .await
}

/// A leader's renewal step (one conditional PUT answered in memory), repeated: the native core
/// alone, the native core with the outcome a host publishes (status and health, what the wasm
/// step returns), that again through the host's storage, and the component through the host's
/// `machine` driver.
// `batches` runs one future at a time: the RefCell borrow held across an await is never
// contended, and a lock would add its own cost to what is measured.
#[allow(clippy::await_holding_refcell_ref)]
pub async fn step_cost(steps: usize) -> Vec<Row> {
    let mut io = BenchIo::map();
    let mut e = s3lect_guest::Elector::new(core_config(), io.now()).unwrap();
    s3lect_guest::drive_step(&mut e, &mut io);
    let native = batches(steps, || {
        s3lect_guest::drive_step(&mut e, &mut io);
        std::future::ready(())
    })
    .await;
    let native_outcome = with_outcome(steps, &mut e, &mut io).await;
    let mut hio = BenchIo::host();
    let mut h = s3lect_guest::Elector::new(core_config(), hio.now()).unwrap();
    s3lect_guest::drive_step(&mut h, &mut hio);
    let native_host = with_outcome(steps, &mut h, &mut hio).await;
    let rt = Runtime::shared().unwrap();
    let mut c = ComponentElector::create(&rt, HostIo::new(Arc::new(MemoryStorage::new())), &core_config(), None).await.unwrap();
    assert!(c.step().await.unwrap().status.is_leader);
    let c = std::cell::RefCell::new(c);
    let wasm = batches(steps, || async {
        c.borrow_mut().step().await.unwrap();
    })
    .await;
    // The fixed price of one call that does no I/O: a floor for any step.
    let boundary = batches(steps, || async {
        c.borrow_mut().status().await.unwrap();
    })
    .await;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ratio = |over: &[f64]| mean(&wasm) / mean(over);
    let (ratio, ratio_outcome, ratio_host) = (ratio(&native), ratio(&native_outcome), ratio(&native_host));
    vec![
        Row::new("step cost, native core", "leader renewal, storage in memory; 10 batches", "µs", native, "–"),
        Row::new(
            "step cost, native core + outcome",
            "the same step, then status and health (what the wasm step returns)",
            "µs",
            native_outcome,
            "–",
        ),
        Row::new(
            "step cost, native core + outcome, host's storage",
            "the same, its requests through the host's in-memory storage and timeouts and both clocks read, as the wasm step's are",
            "µs",
            native_host,
            "–",
        ),
        Row::new(
            "step cost, wasm component",
            &format!(
                "same, through the `machine` interface (synchronous calls); wasm/native = {ratio:.1}× ({ratio_outcome:.1}× with outcome, {ratio_host:.1}× with outcome and the host's storage)"
            ),
            "µs",
            wasm,
            "< 50 µs, ≤ 2× native",
        ),
        Row::new("one call into the component", "`status()`: no I/O, synchronous wasmtime call", "µs", boundary, "–"),
    ]
}

/// Default intervals divided by 10, so a minute measures ten minutes of steady state.
fn scaled(id: &str, lock: &str) -> ElectorConfig {
    ElectorConfig {
        lockfile_path: lock.into(),
        server_id: id.into(),
        frequent_interval: Duration::from_millis(500),
        infrequent_interval: Duration::from_millis(3_000),
        renew_deadline: Duration::from_millis(1_000),
        leader_timeout: Duration::from_millis(1_500),
        peer_timeout: Duration::from_millis(200),
        check_conditional_writes: false,
        ..ElectorConfig::default()
    }
}

/// Steady-state S3 requests of 3 and 10 electors, with and without peer mode, counted at the
/// storage client of each elector; s3lect's figure computed from its algorithm.
pub async fn requests_per_hour(weed: &Path, secs: u64) -> Vec<Row> {
    let server = LocalS3::start(weed, "bench-requests").await.unwrap();
    let s3: Arc<dyn Storage> = Arc::new(S3Storage::new(server.s3_config()).unwrap());
    let pki = s3lect::tls::generate_pki(&["127.0.0.1"]).unwrap();
    let mut rows = vec![];
    for nodes in [3u64, 10] {
        for peer in [false, true] {
            let lock = format!("bench/requests-{nodes}-{peer}.json");
            let counter = CountingStorage::new(s3.clone());
            let mut electors = vec![];
            let mut servers = vec![];
            for i in 0..nodes {
                let mut cfg = scaled(&format!("n{i}"), &lock);
                let e = Elector::new(cfg.clone(), counter.clone()).unwrap();
                if peer {
                    let hs = HealthServer::new(HealthServerConfig {
                        bind_address: "127.0.0.1:0".into(),
                        cert_pem: pki.server_cert_pem.clone().into_bytes(),
                        key_pem: pki.server_key_pem.clone().into_bytes(),
                        elector: e.clone(),
                    })
                    .unwrap();
                    cfg.server_addr = hs.start().await.unwrap().to_string();
                    cfg.peer_mode = true;
                    cfg.peer_ca_cert = Some(pki.ca_cert_pem.clone().into_bytes());
                    e.update_config(cfg).await.unwrap();
                    servers.push(hs);
                }
                e.start().await.unwrap();
                electors.push(e);
            }
            // Warm up: a leader, then a few intervals for followers to settle.
            tokio::time::timeout(Duration::from_secs(30), async {
                while !electors.iter().any(|e| e.is_leader()) {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
            })
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (g0, p0) = (counter.gets(), counter.puts());
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let (g, p) = (counter.gets() - g0, counter.puts() - p0);
            // 10× faster intervals: per hour at default intervals = count × 3600 / secs / 10.
            let per_hour = |c: u64| c as f64 * 3600.0 / secs as f64 / 10.0;
            // Library electors: peer mode with a CA here, where `run` pins a self-signed
            // certificate; which of the two changes no request.
            let mode = if peer {
                "peer mode (CA-configured; `run`'s default pins instead)"
            } else {
                "S3 polling by the nodes' own clocks (these timings leave no room for the server clock's skew)"
            };
            rows.push(requests_row(&format!("{nodes} nodes, {mode}"), nodes, per_hour(g), per_hour(p)));
            for e in &electors {
                e.stop().await.unwrap();
            }
        }
    }
    rows.extend(default_requests_per_hour(&s3, secs * 5).await);
    rows
}

/// The same count for S3 polling as configured by default, where followers use the server's
/// clock once checked, at the default intervals themselves: scaled ones leave no room for its
/// skew. 3 and 10 electors measured side by side, each group on a lock of its own, for `secs`.
async fn default_requests_per_hour(s3: &Arc<dyn Storage>, secs: u64) -> Vec<Row> {
    let group = |nodes: u64| async move {
        let lock = format!("bench/requests-{nodes}-defaults.json");
        let counter = CountingStorage::new(s3.clone());
        let mut electors = vec![];
        for i in 0..nodes {
            let cfg = ElectorConfig {
                lockfile_path: lock.clone(),
                server_id: format!("n{i}"),
                check_conditional_writes: false,
                ..ElectorConfig::default()
            };
            let e = Elector::new(cfg, counter.clone()).unwrap();
            e.start().await.unwrap();
            electors.push(e);
        }
        // Settled: every follower has read the leader's record at least once.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (g0, p0) = (counter.gets(), counter.puts());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (g, p) = (counter.gets() - g0, counter.puts() - p0);
        for e in &electors {
            e.stop().await.unwrap();
        }
        let per_hour = |c: u64| c as f64 * 3600.0 / secs as f64;
        let config =
            format!("{nodes} nodes, S3 polling as configured by default (the server's clock once checked), default intervals for {secs} s");
        requests_row(&config, nodes, per_hour(g), per_hour(p))
    };
    let (three, ten) = tokio::join!(group(3), group(10));
    vec![three, ten]
}

/// One row of the requests section: GETs and PUTs an hour against Go s3lect's, computed from
/// its algorithm (every node GETs each 5 s tick, the leader also PUTs).
fn requests_row(config: &str, nodes: u64, gets: f64, puts: f64) -> Row {
    let go = (nodes * 720 + 720) as f64;
    Row::new(
        "S3 requests per hour, steady state",
        &format!(
            "{config}: GET {gets:.0} + PUT {puts:.0}; Go s3lect {go:.0} (GET {} + PUT 720) = {:.1}× ours",
            nodes * 720,
            go / (gets + puts)
        ),
        "req/h",
        vec![gets + puts],
        "≤ ½ of Go's (3 nodes), ≤ ¼ (10 nodes)",
    )
    .go(format!("{go:.0} req/h (every node reads every 5 s, the leader also writes)"))
}

fn rss_mib() -> f64 {
    super::cluster_runs::rss_mib(std::process::id())
}

/// CPU time (user and system, all threads) process `pid` has used, in seconds; 0 if it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    let (user, system) = cpu_split(pid);
    user + system
}

/// User and system CPU time process `pid` has used, from `/proc/PID/stat`, in seconds of clock
/// ticks (10 ms here: a few hundredths of a point over a 60 s window); 0 if it is gone.
pub fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name's closing parenthesis, utime and stime are the 12th and 13th
    // fields.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut ticks = after_name.split_whitespace().skip(11).map(|v| v.parse::<f64>().unwrap_or(0.0));
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks.next().unwrap_or(0.0) / per_second, ticks.next().unwrap_or(0.0) / per_second)
}

/// `groups` elections (one lock object each) in this process at default intervals.
pub async fn scale(weed: &Path, groups: usize, secs: u64) -> Row {
    let server = LocalS3::start(weed, "bench-scale").await.unwrap();
    let s3: Arc<dyn Storage> = Arc::new(S3Storage::new(server.s3_config()).unwrap());
    // The component loaded first: what is measured after is what the groups cost.
    s3lect::runtime::Runtime::shared().unwrap();
    let rss_before = rss_mib();
    let started = Instant::now();
    let mut electors = vec![];
    for g in 0..groups {
        let cfg = ElectorConfig {
            lockfile_path: format!("bench/scale/{g}.json"),
            server_id: "host-1".into(),
            check_conditional_writes: false,
            ..ElectorConfig::default()
        };
        let e = Elector::new(cfg, s3.clone()).unwrap();
        e.start().await.unwrap();
        electors.push(e);
    }
    let all_elected = tokio::time::timeout(Duration::from_secs(120), async {
        while electors.iter().filter(|e| e.is_leader()).count() < groups {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok();
    // Measured either way: a panic here would lose every row of a full run. Where not all
    // groups elected, the row says so, and the server's share of the cores says why.
    let elected = if all_elected {
        format!("all elected in {:.1} s", started.elapsed().as_secs_f64())
    } else {
        let leading = electors.iter().filter(|e| e.is_leader()).count();
        format!("only {leading} of {groups} elected within 120 s, so not a steady state")
    };
    // Also the moment to attach a profiler: once all have elected, what follows is the steady
    // state.
    eprintln!("scale: {groups} groups, {elected} (pid {})", std::process::id());
    let weed_pid = server.pid().expect("the scale section runs on SeaweedFS");
    let me = std::process::id();
    let (c0, w0, t0) = (cpu_seconds(me), cpu_seconds(weed_pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let cpu = (cpu_seconds(me) - c0) / t0.elapsed().as_secs_f64() * 100.0;
    let weed_cpu = (cpu_seconds(weed_pid) - w0) / t0.elapsed().as_secs_f64() * 100.0;
    let rss = rss_mib();
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let leading = electors.iter().filter(|e| e.is_leader()).count();
    // A resignation can fail on an overloaded machine (seen with a profiler attached: the lock
    // object's etag was no longer the one the elector knew): counted in the row, not a reason
    // to lose the numbers. A hundred at a time: one after another, 10,000 resignations to a
    // saturated server took longer than the whole measurement.
    let mut failed_stops = 0;
    for chunk in electors.chunks(100) {
        let mut stops = tokio::task::JoinSet::new();
        for e in chunk {
            let e = e.clone();
            stops.spawn(async move { e.stop().await });
        }
        while let Some(stopped) = stops.join_next().await {
            if let Err(err) = stopped.expect("a stop task") {
                if failed_stops == 0 {
                    eprintln!("scale: a group's stop failed: {err}");
                }
                failed_stops += 1;
            }
        }
    }
    let alloc = super::allocator::name();
    Row::new(
        "scale: one host process",
        &format!(
            "{groups} election groups, default intervals, a current-thread runtime, {alloc}; {elected}, {leading} leading at the end; RSS {rss:.0} MiB (was {rss_before:.0} before), {fds} open files, CPU {cpu:.1} % of one core over {secs} s (SeaweedFS meanwhile {weed_cpu:.0} %){}",
            if failed_stops > 0 { format!("; {failed_stops} stops could not resign") } else { String::new() }
        ),
        "% CPU",
        vec![cpu],
        "10,000 groups: < 256 MiB, < 10 % CPU",
    )
}
