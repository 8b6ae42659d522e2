//! The wasmtime side of the component: bindings, the host state that implements its imports,
//! and a handle to one guest elector. The engine and the compiled component are made once per
//! process and shared by every elector.

use crate::clock::BootClock;
use crate::error::{Error, Result};
use crate::hooks::{Hook, HookEvent};
use crate::metrics::Metrics;
use crate::probe::PeerProbe;
use crate::storage::Condition;
use crate::storage::Storage;
use s3lect_guest::StorageError;
use s3lect_guest::{Config, ConfigError, Status};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The generated bindings stay private: the API is the types below.
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "elector-component",
        with: { "wasi": wasmtime_wasi::p2::bindings },
        imports: { default: async },
        exports: { default: async },
    });
}

use bindings::exports::s3lect::election::types as wit;
use bindings::s3lect::election::peer as wit_peer;
use bindings::s3lect::election::storage as wit_storage;
use bindings::{ElectorComponent, ElectorComponentPre};

/// The election component, built from `guest/` by build.rs.
pub static COMPONENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/s3lect_guest.wasm"));

/// What the component's imports reach: storage, the peer probe, the hooks.
#[derive(Clone)]
pub struct HostIo {
    /// Where the lock object lives.
    pub storage: Arc<dyn Storage>,
    /// The peer probe, in peer mode.
    pub probe: Option<Arc<PeerProbe>>,
    /// Runs when this instance won the lock object; an error resigns.
    pub on_acquire: Option<Hook>,
    /// Runs when leadership ends.
    pub on_lose: Option<Hook>,
    /// Longest a hook may run.
    pub hook_timeout: Duration,
    /// Raised when the elector is asked to stop: see [`Stopping`].
    pub stopping: Stopping,
    /// Where requests, probes and hooks are counted, if anywhere.
    pub metrics: Option<Arc<Metrics>>,
}

/// A stop request reaching into a step in flight. While raised, the step sends nothing new —
/// no read, no probe, no write, no acquire hook — and reads and probes in flight are abandoned,
/// so a stopping elector never claims and never starts to lead, and leaves at once. A write
/// already sent is let finish (bounded by its timeout): abandoning it would leave its outcome
/// unknown. The resignation that follows runs with the flag lowered.
#[derive(Clone, Debug)]
pub struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    /// A flag that is never raised.
    pub fn never() -> Stopping {
        Stopping(tokio::sync::watch::channel(false).1)
    }

    /// A flag and the sender that raises (`true`) or lowers it.
    pub fn channel() -> (tokio::sync::watch::Sender<bool>, Stopping) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Stopping(rx))
    }

    fn raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Runs `work` unless the flag is (or gets) raised first; `None` then.
    async fn unless<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        if self.raised() {
            return None;
        }
        let mut rx = self.0.clone();
        let raised = async move {
            // A flag whose sender is gone can never be raised.
            if rx.wait_for(|s| *s).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            _ = raised => None,
            r = work => Some(r),
        }
    }
}

const NOT_SENT: &str = "the elector is stopping: request not sent";

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: wasmtime::StoreLimits,
    pub io: HostIo,
}

/// Linear memory one guest instance may grow to. The election needs well under 4 MiB.
const GUEST_MEMORY_BYTES: usize = 64 << 20;
/// Fuel for one export call: the core's own work per step is a few hundred thousand wasm
/// instructions; this many (about a second of CPU) only runs out in a runaway loop, which
/// then traps instead of hanging the host. Host calls (S3, hooks) consume none.
const FUEL_PER_CALL: u64 = 2_000_000_000;

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

s3lect_guest::storage_error_conversions!(wit_storage);

fn timed_out(what: &str, ms: u64) -> StorageError {
    StorageError::Unavailable(format!("{what} timed out after {ms} ms"))
}

impl HostIo {
    /// Storage only: no probe, no hooks.
    pub fn new(storage: Arc<dyn Storage>) -> HostIo {
        HostIo {
            storage,
            probe: None,
            on_acquire: None,
            on_lose: None,
            hook_timeout: Duration::from_secs(10),
            stopping: Stopping::never(),
            metrics: None,
        }
    }
}

/// The component's monotonic clock (CLOCK_BOOTTIME nanoseconds): what `Status::lease_until`
/// is measured against.
pub fn monotonic_now_ns() -> u64 {
    crate::clock::boottime_ns()
}

impl bindings::s3lect::election::storage::Host for HostState {
    async fn get(&mut self, key: String, timeout_ms: u64) -> Result<wit_storage::Object, wit_storage::StorageError> {
        let get = tokio::time::timeout(Duration::from_millis(timeout_ms), self.io.storage.get_object(&key));
        let started = std::time::Instant::now();
        let r = match self.io.stopping.unless(get).await {
            None => return Err(wit_storage::StorageError::Unavailable(NOT_SENT.into())),
            Some(Err(_)) => Err(timed_out("GET", timeout_ms)),
            Some(Ok(r)) => r,
        };
        if let Some(m) = &self.io.metrics {
            m.request("get", started.elapsed(), &r);
        }
        r.map(object_to_wit).map_err(storage_error_to_wit)
    }

    async fn put_if_match(
        &mut self,
        key: String,
        data: Vec<u8>,
        etag: Option<String>,
        timeout_ms: u64,
    ) -> Result<String, wit_storage::StorageError> {
        if self.io.stopping.raised() {
            return Err(wit_storage::StorageError::Unavailable(NOT_SENT.into()));
        }
        let put = self.io.storage.put_if_match(&key, &data, Condition::from_etag(etag.as_deref()));
        let started = std::time::Instant::now();
        let r = match tokio::time::timeout(Duration::from_millis(timeout_ms), put).await {
            Err(_) => Err(timed_out("PUT", timeout_ms)),
            Ok(r) => r,
        };
        if let Some(m) = &self.io.metrics {
            m.request("put", started.elapsed(), &r);
        }
        r.map_err(storage_error_to_wit)
    }
}

impl bindings::s3lect::election::peer::Host for HostState {
    async fn probe(&mut self, addr: String, path: String, timeout_ms: u64, pin: Option<String>) -> Result<wit_peer::ProbeReply, String> {
        let Some(probe) = self.io.probe.clone() else { return Err("peer mode has no probe configured".into()) };
        let reply = self
            .io
            .stopping
            .unless(probe.probe(&addr, &path, Duration::from_millis(timeout_ms), pin.as_deref()))
            .await
            .map(|r| r.map_err(|e| e.to_string()));
        if let (Some(m), Some(r)) = (&self.io.metrics, &reply) {
            m.probe(match r {
                Ok(s3lect_guest::ProbeReply::Leader(_)) => "leader",
                Ok(s3lect_guest::ProbeReply::NotLeader) => "not_leader",
                Err(_) => "failed",
            });
        }
        reply.unwrap_or_else(|| Err(NOT_SENT.into())).map(|r| match r {
            s3lect_guest::ProbeReply::Leader(body) => wit_peer::ProbeReply::Leader(body),
            s3lect_guest::ProbeReply::NotLeader => wit_peer::ProbeReply::NotLeader,
        })
    }
}

/// Runs `hook` (labelled `which` in the metrics) within the hook timeout.
async fn run_hook(io: &HostIo, hook: Option<&Hook>, which: &'static str, event: HookEvent) -> Result<(), String> {
    let Some(hook) = hook else { return Ok(()) };
    let started = std::time::Instant::now();
    let r = match tokio::time::timeout(io.hook_timeout, hook(event)).await {
        Err(_) => Err(format!("hook did not finish within {} ms", io.hook_timeout.as_millis())),
        Ok(r) => r.map_err(|e| crate::error::chain(e.as_ref())),
    };
    if let Some(m) = &io.metrics {
        m.hook(which, started.elapsed(), r.is_ok());
    }
    r
}

impl bindings::s3lect::election::hooks::Host for HostState {
    async fn on_acquire(&mut self, term: u64, leader_id: String) -> Result<(), String> {
        if self.io.stopping.raised() {
            return Err("the elector is stopping: not taking up leadership".into());
        }
        run_hook(&self.io, self.io.on_acquire.as_ref(), "acquire", HookEvent { term, leader_id }).await
    }

    async fn on_lose(&mut self, term: u64, leader_id: String) -> Result<(), String> {
        run_hook(&self.io, self.io.on_lose.as_ref(), "lose", HookEvent { term, leader_id }).await
    }
}

/// The engine and the pre-linked component; one per process is enough for any number of
/// electors.
pub struct Runtime {
    engine: Engine,
    pre: ElectorComponentPre<HostState>,
}

fn rt_err(e: wasmtime::Error) -> Error {
    Error::runtime(e)
}

impl Runtime {
    /// The process-wide runtime for the embedded component, compiled on first use.
    pub fn shared() -> Result<Arc<Runtime>> {
        static SHARED: OnceLock<std::result::Result<Arc<Runtime>, String>> = OnceLock::new();
        SHARED.get_or_init(|| Runtime::load().map(Arc::new).map_err(|e| e.to_string())).clone().map_err(Error::runtime)
    }

    fn engine() -> Result<Engine> {
        // The host does not rely on the component bounding its own work: fuel bounds each call.
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        Engine::new(&config).map_err(rt_err)
    }

    /// Compiles the embedded component, reusing a precompiled copy from the user cache
    /// directory when one matches this engine (a cold `step` then skips compilation).
    fn load() -> Result<Runtime> {
        let engine = Runtime::engine()?;
        let component = match cache_path(&engine) {
            Some(path) => load_cached(&engine, &path)?,
            None => Component::new(&engine, COMPONENT_WASM).map_err(rt_err)?,
        };
        Runtime::link(engine, component)
    }

    fn link(engine: Engine, component: Component) -> Result<Runtime> {
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(rt_err)?;
        bindings::s3lect::election::storage::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(rt_err)?;
        bindings::s3lect::election::peer::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(rt_err)?;
        bindings::s3lect::election::hooks::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(rt_err)?;
        let pre = linker.instantiate_pre(&component).map_err(rt_err)?;
        let pre = ElectorComponentPre::new(pre).map_err(rt_err)?;
        Ok(Runtime { engine, pre })
    }

    async fn instantiate(&self, io: HostIo) -> Result<(Store<HostState>, ElectorComponent)> {
        let wasi = WasiCtx::builder().monotonic_clock(BootClock).inherit_stderr().build();
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(GUEST_MEMORY_BYTES).instances(16).tables(64).build();
        let mut store = Store::new(&self.engine, HostState { wasi, table: ResourceTable::new(), limits, io });
        store.limiter(|s| &mut s.limits);
        store.set_fuel(FUEL_PER_CALL).map_err(rt_err)?;
        let bindings = self.pre.instantiate_async(&mut store).await.map_err(rt_err)?;
        Ok((store, bindings))
    }
}

static CACHE_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Keeps the compiled component in `dir` (created private), so a later process skips
/// compiling it — what makes a cold `s3lect step` fast. Off unless asked for, here or by
/// `S3LECT_CACHE_DIR` (which wins): a library should not write to a user's home on its own.
/// Call it before the first elector is created (the component is compiled once per process);
/// false if a directory was already chosen.
pub fn cache_compiled_component_in(dir: std::path::PathBuf) -> bool {
    CACHE_DIR.set(dir).is_ok()
}

fn cache_path(engine: &Engine) -> Option<std::path::PathBuf> {
    use std::hash::{Hash, Hasher};
    let base = std::env::var_os("S3LECT_CACHE_DIR").map(std::path::PathBuf::from).or_else(|| CACHE_DIR.get().cloned())?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    COMPONENT_WASM.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    Some(base.join(format!("component-{:016x}.cwasm", h.finish())))
}

fn load_cached(engine: &Engine, path: &std::path::Path) -> Result<Component> {
    if path.exists() {
        match trusted(path) {
            // SAFETY: the file is one we wrote from this exact component and engine
            // configuration (its name hashes both), in a place only we can write; wasmtime also
            // checks the engine compatibility header.
            Ok(()) => {
                if let Ok(c) = unsafe { Component::deserialize_file(engine, path) } {
                    return Ok(c);
                }
            }
            Err(why) => tracing::warn!(path = %path.display(), "not loading the precompiled component: {why}; compiling instead"),
        }
    }
    let bytes = engine.precompile_component(COMPONENT_WASM).map_err(rt_err)?;
    if let Some(dir) = path.parent() {
        // Caching is an optimisation: a read-only home directory must not stop the elector.
        let _ = write_cache(dir, path, &bytes);
    }
    // SAFETY: these bytes were produced by `precompile_component` on this very engine.
    unsafe { Component::deserialize(engine, &bytes) }.map_err(rt_err)
}

/// Precompiled code is loaded as native code: only from a file and folder that belong to us
/// and that nobody else may write (what another local user could plant, we would run).
pub(crate) fn trusted(path: &std::path::Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for p in [path, path.parent().unwrap_or(path)] {
        let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.file_type().is_symlink() {
            return Err(format!("{} is a symlink", p.display()));
        }
        if m.uid() != me {
            return Err(format!("{} belongs to uid {}, not {me}", p.display(), m.uid()));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!("{} is writable by others (mode {:o})", p.display(), m.mode() & 0o777));
        }
    }
    Ok(())
}

/// Writes the cache file privately (folder 0700, file 0600, exclusive random temporary name).
fn write_cache(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".component-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

/// One elector instance of the component, stepped by the caller: for custom schedulers and
/// serverless hosts. [`crate::Elector`] drives one of these on tokio.
pub struct ComponentElector {
    store: Store<HostState>,
    bindings: ElectorComponent,
    handle: ResourceAny,
}

/// The result of one step, in host terms.
pub struct Outcome {
    /// What the elector knows after the step.
    pub status: Status,
    /// When to run the next step.
    pub next_step: Duration,
    /// The health endpoint's body while this instance leads.
    pub health: Option<Vec<u8>>,
}

impl ComponentElector {
    /// A new elector, or one restored from [`ComponentElector::export_state`] bytes.
    pub async fn create(rt: &Runtime, io: HostIo, cfg: &Config, state: Option<&[u8]>) -> Result<ComponentElector> {
        let (mut store, bindings) = rt.instantiate(io).await?;
        let iface = bindings.s3lect_election_election().elector();
        let wcfg = config_to_wit(cfg);
        let handle = match state {
            None => iface.call_create(&mut store, &wcfg).await.map_err(rt_err)?.map_err(|e| Error::Config(from_wit_config_error(e)))?,
            Some(bytes) => {
                iface.call_restore(&mut store, &wcfg, bytes).await.map_err(rt_err)?.map_err(|message| Error::State { message })?
            }
        };
        Ok(ComponentElector { store, bindings, handle })
    }

    /// Replaces what the component's imports reach (storage, probe, hooks).
    pub fn set_io(&mut self, io: HostIo) {
        self.store.data_mut().io = io;
    }

    /// Each export call gets a fresh allowance of fuel.
    fn refuel(&mut self) -> Result<()> {
        self.store.set_fuel(FUEL_PER_CALL).map_err(rt_err)
    }

    /// One election step.
    pub async fn step(&mut self) -> Result<Outcome> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        let o = iface.call_step(&mut self.store, self.handle).await.map_err(rt_err)?;
        Ok(Outcome { status: status_from_wit(o.status), next_step: Duration::from_millis(o.next_step_in_ms), health: o.health })
    }

    /// The component's status, without a step (one export call, no I/O).
    pub async fn status(&mut self) -> Result<Status> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        Ok(status_from_wit(iface.call_status(&mut self.store, self.handle).await.map_err(rt_err)?))
    }

    /// Leaves the election (a leader runs its lose hook, then writes the resigned record).
    pub async fn resign(&mut self) -> Result<Status> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        Ok(status_from_wit(iface.call_resign(&mut self.store, self.handle).await.map_err(rt_err)?))
    }

    /// Validates and applies a configuration from the next step on.
    pub async fn update_config(&mut self, cfg: &Config) -> Result<()> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        iface
            .call_update_config(&mut self.store, self.handle, &config_to_wit(cfg))
            .await
            .map_err(rt_err)?
            .map_err(|e| Error::Config(from_wit_config_error(e)))
    }

    /// Declares a one-invocation elector (see the core's `Elector::set_invocation_budget`).
    pub async fn set_invocation_budget(&mut self, budget: Duration) -> Result<()> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        let ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        iface.call_set_invocation_budget(&mut self.store, self.handle, ms).await.map_err(rt_err)
    }

    /// The elector's knowledge as bytes, for [`ComponentElector::create`] in a later process.
    pub async fn export_state(&mut self) -> Result<Vec<u8>> {
        self.refuel()?;
        let iface = self.bindings.s3lect_election_election().elector();
        iface.call_export_state(&mut self.store, self.handle).await.map_err(rt_err)
    }
}

s3lect_guest::config_to_wit!(wit);

fn from_wit_config_error(e: wit::ConfigError) -> ConfigError {
    ConfigError { rule: e.rule, message: e.message }
}

s3lect_guest::status_from_wit!(wit);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    /// The guest runs metered: a step spends fuel (so a runaway loop would run out and trap),
    /// and a real step leaves the allowance almost whole.
    #[tokio::test]
    async fn each_call_is_metered_with_ample_headroom() {
        let rt = Runtime::shared().unwrap();
        let cfg = Config { lockfile_path: "fuel/leader.json".into(), server_id: "f".into(), ..Config::default() };
        let mut e = ComponentElector::create(&rt, HostIo::new(Arc::new(MemoryStorage::new())), &cfg, None).await.unwrap();
        e.step().await.unwrap();
        let left = e.store.get_fuel().unwrap();
        let spent = FUEL_PER_CALL - left;
        assert!(spent > 0, "fuel is consumed");
        assert!(spent < FUEL_PER_CALL / 100, "a step needs a small part of its allowance: {spent}");
    }
}
