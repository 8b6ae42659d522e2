//! Component instances that electors share. An elector is a resource of its instance, so many
//! electors share one instance's code, memory and store: a few KiB each instead of an instance
//! each. Calls into the `machine` interface do no I/O and return in microseconds, so a plain
//! mutex serialises them; it is never held across an await.

use super::bindings::exports::s3lect::election::machine::GuestMachine;
use super::bindings::{ElectorComponent, ElectorComponentPre};
use crate::error::{Error, Result};
use std::sync::Mutex;
use wasmtime::Store;

/// Linear memory one instance may grow to: a few KiB per elector, and at most
/// [`ELECTORS_PER_INSTANCE`] electors.
const GUEST_MEMORY_BYTES: usize = 64 << 20;

/// How often the engine's epoch advances. A thread wakes this often for as long as the
/// engine lives: ten wake-ups a second, whatever the number of electors.
pub(super) const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// A call's deadline, in ticks: a call's work takes microseconds, so only a runaway loop
/// reaches 0.9–1 s, and it then traps instead of hanging the host.
const DEADLINE_TICKS: u64 = 10;

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
pub(super) fn start_epoch_ticker(engine: &wasmtime::Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new().name("s3lect-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    })?;
    Ok(())
}

/// Electors per instance. Sharing is what makes ten thousand groups per process cheap; the cap
/// bounds what one trap (a bug in the core) takes down: every elector of that instance, each
/// of which then restarts knowing nothing.
pub(super) const ELECTORS_PER_INSTANCE: usize = 256;

/// The store's data: the machine interface needs nothing from the host but memory limits.
pub(crate) struct HostState {
    limits: wasmtime::StoreLimits,
}

struct Entered {
    store: Store<HostState>,
    bindings: ElectorComponent,
    /// Why a call failed: the instance is not entered again.
    failed: Option<String>,
}

pub(crate) struct Instance {
    entered: Mutex<Entered>,
}

impl Instance {
    pub(super) fn new(pre: &ElectorComponentPre<HostState>) -> Result<Instance> {
        let limits = wasmtime::StoreLimitsBuilder::new().memory_size(GUEST_MEMORY_BYTES).instances(16).tables(64).build();
        let mut store = Store::new(pre.engine(), HostState { limits });
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(DEADLINE_TICKS);
        let bindings = pre.instantiate(&mut store).map_err(Error::runtime)?;
        Ok(Instance { entered: Mutex::new(Entered { store, bindings, failed: None }) })
    }

    /// False once a call has failed.
    pub(super) fn usable(&self) -> bool {
        self.lock().failed.is_none()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entered> {
        // A panic while locked leaves nothing half-written on our side; the instance's own
        // state is guarded by `failed`.
        self.entered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls into the machine interface with a fresh deadline. A failed call (a trap) ends
    /// the instance: its electors' later calls fail too, and their drivers start afresh.
    pub(super) fn call<R>(&self, f: impl FnOnce(GuestMachine<'_>, &mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R> {
        self.enter(true, f)
    }

    fn enter<R>(&self, fresh_deadline: bool, f: impl FnOnce(GuestMachine<'_>, &mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R> {
        let mut guard = self.lock();
        let entered = &mut *guard;
        if let Some(why) = &entered.failed {
            return Err(Error::runtime(format!("the component instance failed earlier: {why}")));
        }
        if fresh_deadline {
            entered.store.set_epoch_deadline(DEADLINE_TICKS);
        }
        match f(entered.bindings.s3lect_election_machine().machine(), &mut entered.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                entered.failed = Some(format!("{e:#}"));
                Err(Error::runtime(e))
            }
        }
    }

    /// Makes the instance trap the way a bug would (tests): the `election` interface's
    /// constructor reads a clock import, which this host links as a trap.
    #[cfg(test)]
    pub(super) fn trap(&self, cfg: &super::bindings::exports::s3lect::election::types::Config) {
        let mut guard = self.lock();
        let entered = &mut *guard;
        let election = entered.bindings.s3lect_election_election().elector();
        let Err(e) = election.call_create(&mut entered.store, cfg) else { panic!("the clock import traps") };
        entered.failed = Some(format!("{e:#}"));
    }

    /// [`Instance::call`] without a fresh deadline (tests).
    #[cfg(test)]
    pub(super) fn call_keeping_deadline<R>(
        &self,
        f: impl FnOnce(GuestMachine<'_>, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.enter(false, f)
    }

    /// Frees an elector's resource (best effort: a failed instance is dropped whole).
    pub(super) fn drop_resource(&self, handle: wasmtime::component::ResourceAny) {
        let mut guard = self.lock();
        let entered = &mut *guard;
        if entered.failed.is_none() {
            entered.store.set_epoch_deadline(DEADLINE_TICKS);
            let _ = handle.resource_drop(&mut entered.store);
        }
    }
}
