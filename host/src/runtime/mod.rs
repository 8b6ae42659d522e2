//! The wasmtime side of the component: its bindings, the engine and compiled component (made
//! once per process), the instances electors share (`instance.rs`), what the host does for an
//! elector's actions (`io.rs`: [`HostIo`]) and a handle to one elector ([`ComponentElector`]).
//!
//! The host drives the component's `machine` interface: the component asks for I/O and the
//! host performs it between calls, so calls are synchronous (no fiber per call, no async
//! embedding) and any number of electors can share an instance. The component's imports —
//! which only its `election` interface uses — are linked as traps.

mod component_elector;
mod instance;
mod io;

pub use component_elector::{ComponentElector, Outcome};
pub use io::{HostIo, Stopping};

use crate::error::{Error, Result};
use instance::{ELECTORS_PER_INSTANCE, HostState, Instance};
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The generated bindings stay private: the API is the types above.
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "elector-component",
    });
}

use bindings::ElectorComponentPre;

/// The election component, built from `guest/` by build.rs.
pub static COMPONENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/s3lect_guest.wasm"));

/// The component's monotonic clock (CLOCK_BOOTTIME nanoseconds): what `Status::lease_until`
/// is measured against.
pub fn monotonic_now_ns() -> u64 {
    crate::clock::boottime_ns()
}

/// The engine, the pre-linked component and the instance new electors join; one per process is
/// enough for any number of electors.
pub struct Runtime {
    pre: ElectorComponentPre<HostState>,
    current: Mutex<Option<Arc<Instance>>>,
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

    /// The engine electors run on; `compiler` says whether it can compile too.
    fn engine(compiler: bool) -> Result<Engine> {
        let engine = Engine::new(&engine_config(compiler)).map_err(rt_err)?;
        instance::start_epoch_ticker(&engine).map_err(Error::runtime)?;
        Ok(engine)
    }

    /// Compiles the embedded component, or, when a cache directory is chosen, loads the
    /// precompiled copy kept there (compiling and keeping it the first time): a cold `step`
    /// then skips compilation, and the engine that runs it has no compiler.
    fn load() -> Result<Runtime> {
        let Some(dir) = cache_dir() else {
            let engine = Runtime::engine(true)?;
            let component = compiled(Component::new(&engine, COMPONENT_WASM).map_err(rt_err)?);
            return Runtime::link(engine, component);
        };
        // Building Cranelift alone, with nothing to compile, kept about 0.4 MiB of its code
        // resident in every node (BENCHMARKS.md).
        let engine = Runtime::engine(false)?;
        let component = load_cached(&engine, &cache_path(&dir, &engine))?;
        Runtime::link(engine, component)
    }

    fn link(engine: Engine, component: Component) -> Result<Runtime> {
        let mut linker: Linker<HostState> = Linker::new(&engine);
        // The machine interface calls no import; reaching one is a bug in the component.
        linker.define_unknown_imports_as_traps(&component).map_err(rt_err)?;
        let pre = linker.instantiate_pre(&component).map_err(rt_err)?;
        let pre = ElectorComponentPre::new(pre).map_err(rt_err)?;
        Ok(Runtime { pre, current: Mutex::new(None) })
    }

    /// The instance a new elector joins: the current one, unless it failed or is full.
    fn instance(&self) -> Result<Arc<Instance>> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = current.as_ref() {
            // One reference is ours; the others are its electors.
            if Arc::strong_count(i) <= ELECTORS_PER_INSTANCE && i.usable() {
                return Ok(i.clone());
            }
        }
        let fresh = Arc::new(Instance::new(&self.pre)?);
        *current = Some(fresh.clone());
        Ok(fresh)
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

/// The engine's settings. The host does not rely on the component bounding its own work: each
/// call has a deadline, checked against epochs a thread advances. Fuel did the same at 13 % of
/// a step's cost (BENCHMARKS.md); an epoch check is one compare at function entries and loop
/// heads. Code compiled with `compiler` on runs on an engine with it off.
fn engine_config(compiler: bool) -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.enable_compiler(compiler).epoch_interruption(true);
    config
}

fn cache_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("S3LECT_CACHE_DIR").map(std::path::PathBuf::from).or_else(|| CACHE_DIR.get().cloned())
}

/// The precompiled copy's name hashes the component and `engine`'s settings. An engine without
/// a compiler does not hash the CPU features the code was compiled for; wasmtime checks those
/// against this CPU when it loads the copy, and one that does not match is compiled again.
fn cache_path(dir: &std::path::Path, engine: &Engine) -> std::path::PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("S3LECT_COMPONENT_HASH").hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("component-{:016x}.cwasm", h.finish()))
}

/// The precompiled copy at `path`, loaded into `engine` (which has no compiler); compiled by a
/// short-lived engine that has one, and kept at `path`, when there is none that loads.
fn load_cached(engine: &Engine, path: &std::path::Path) -> Result<Component> {
    if path.exists() {
        match trusted(path) {
            // SAFETY: the file is one we wrote from this exact component and engine
            // configuration (its name hashes both), in a place only we can write; wasmtime also
            // checks the engine compatibility header and this CPU's features.
            Ok(()) => {
                if let Ok(c) = unsafe { Component::deserialize_file(engine, path) } {
                    return Ok(c);
                }
            }
            Err(why) => tracing::warn!(path = %path.display(), "not loading the precompiled component: {why}; compiling instead"),
        }
    }
    let bytes = Engine::new(&engine_config(true)).and_then(|c| c.precompile_component(COMPONENT_WASM)).map_err(rt_err)?;
    if let Some(dir) = path.parent() {
        // Caching is an optimisation: a read-only home directory must not stop the elector.
        let _ = write_cache(dir, path, &bytes);
    }
    // SAFETY: these bytes were produced by `precompile_component` on an engine of the same
    // settings, with a compiler; wasmtime checks that they fit this one.
    unsafe { Component::deserialize(engine, &bytes) }.map_err(rt_err).map(compiled)
}

/// A component just compiled: the compiler's working memory, freed, goes back to the system.
/// glibc keeps freed memory for reuse: a node that compiled at start (no cached copy) held 32 MiB
/// for its whole life, 25 MiB with this, against 11 MiB for one that found the cache.
fn compiled(component: Component) -> Component {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    component
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use s3lect_guest::Config;

    fn config(id: &str) -> Config {
        Config { lockfile_path: format!("runtime/{id}.json"), server_id: id.into(), ..Config::default() }
    }

    /// Electors share an instance up to the cap; the next one gets a fresh instance.
    #[tokio::test]
    async fn electors_share_instances_up_to_the_cap() {
        // A runtime of its own (the shared one's electors would count), reusing its compilation.
        let rt = Runtime { pre: Runtime::shared().unwrap().pre.clone(), current: Mutex::new(None) };
        let io = HostIo::new(Arc::new(MemoryStorage::new()));
        let mut electors = vec![];
        for i in 0..=ELECTORS_PER_INSTANCE {
            electors.push(ComponentElector::create(&rt, io.clone(), &config(&format!("e{i}")), None).await.unwrap());
        }
        let first = &electors[0];
        let sharing = electors.iter().filter(|e| e.shares_instance_with(first)).count();
        assert_eq!(sharing, ELECTORS_PER_INSTANCE);
        assert!(!electors[ELECTORS_PER_INSTANCE].shares_instance_with(first));
        for e in &mut electors {
            assert!(e.step().await.unwrap().status.is_leader, "each elector leads its own group");
        }
    }
}
