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

/// Fuel for one call: a call's work is under 1 % of this (the runtime's tests check), so this
/// many (about a second of CPU) only runs out in a runaway loop, which then traps instead of
/// hanging the host.
const FUEL_PER_CALL: u64 = 2_000_000_000;

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
        store.set_fuel(FUEL_PER_CALL).map_err(Error::runtime)?;
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

    /// Calls into the machine interface with a fresh allowance of fuel. A failed call (a trap)
    /// ends the instance: its electors' later calls fail too, and their drivers start afresh.
    pub(super) fn call<R>(&self, f: impl FnOnce(GuestMachine<'_>, &mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R> {
        let mut guard = self.lock();
        let entered = &mut *guard;
        if let Some(why) = &entered.failed {
            return Err(Error::runtime(format!("the component instance failed earlier: {why}")));
        }
        entered.store.set_fuel(FUEL_PER_CALL).map_err(Error::runtime)?;
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

    /// Fuel spent by the last call (tests).
    #[cfg(test)]
    pub(super) fn fuel_spent(&self) -> u64 {
        FUEL_PER_CALL - self.lock().store.get_fuel().unwrap_or(0)
    }

    /// Frees an elector's resource (best effort: a failed instance is dropped whole).
    pub(super) fn drop_resource(&self, handle: wasmtime::component::ResourceAny) {
        let mut guard = self.lock();
        let entered = &mut *guard;
        if entered.failed.is_none() && entered.store.set_fuel(FUEL_PER_CALL).is_ok() {
            let _ = handle.resource_drop(&mut entered.store);
        }
    }
}
