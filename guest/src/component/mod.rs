//! wit-bindgen glue: the WIT imports as an [`Io`], the `election` export as a thin wrapper over
//! the state machine driven through them, and (in [`machine`]) the `machine` export, the state
//! machine itself. No election logic lives here.

mod machine;

/// talc instead of std's dlmalloc: allocation was the largest part of the component's own time
/// in a step (records, strings, the canonical ABI's copies), and a renewal step through the
/// machine interface got about 5 % faster with it (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use crate::io::{Clock, Io, Object, ProbeReply, StorageError};
use crate::{Config, ConfigError, Elector, drive_resign, drive_step};
use std::cell::RefCell;

wit_bindgen::generate!({
    path: "wit",
    world: "elector-component",
    generate_all,
});

use exports::s3lect::election::election as wit_election;
use exports::s3lect::election::types as wit;
use s3lect::election::peer as wit_peer;
use s3lect::election::storage as wit_storage;
use wasi::clocks::{monotonic_clock, wall_clock};

struct Component;

struct WitIo;

fn clock() -> Clock {
    let wall = wall_clock::now();
    Clock { mono_ns: monotonic_clock::now(), wall_ns: i128::from(wall.seconds) * 1_000_000_000 + i128::from(wall.nanoseconds) }
}

crate::storage_error_conversions!(wit_storage);
crate::probe_reply_conversions!(wit_peer);
crate::status_to_wit!(wit);

impl Io for WitIo {
    fn now(&mut self) -> Clock {
        clock()
    }
    fn get(&mut self, key: &str, timeout_ms: u64) -> Result<Object, StorageError> {
        wit_storage::get(key, timeout_ms).map(object_from_wit).map_err(storage_error_from_wit)
    }
    fn put(&mut self, key: &str, data: &[u8], etag: Option<&str>, timeout_ms: u64) -> Result<String, StorageError> {
        wit_storage::put_if_match(key, data, etag, timeout_ms).map_err(storage_error_from_wit)
    }
    fn probe(&mut self, addr: &str, path: &str, timeout_ms: u64, pin: Option<&str>) -> Result<ProbeReply, String> {
        wit_peer::probe(addr, path, timeout_ms, pin).map(probe_reply_from_wit)
    }
    fn acquire_hook(&mut self, term: u64, leader_id: &str) -> Result<(), String> {
        s3lect::election::hooks::on_acquire(term, leader_id)
    }
    fn lose_hook(&mut self, term: u64, leader_id: &str) -> Result<(), String> {
        s3lect::election::hooks::on_lose(term, leader_id)
    }
}

crate::config_to_wit!(wit);

fn config_error(e: ConfigError) -> wit::ConfigError {
    wit::ConfigError { rule: e.rule, message: e.message }
}

struct ElectorResource(RefCell<Elector>);

impl wit_election::Guest for Component {
    type Elector = ElectorResource;

    fn default_config() -> wit::Config {
        config_to_wit(&Config::default())
    }

    fn validate_config(config: wit::Config) -> Result<(), wit::ConfigError> {
        config_from_wit(config).validate().map_err(config_error)
    }
}

impl wit_election::GuestElector for ElectorResource {
    fn create(config: wit::Config) -> Result<wit_election::Elector, wit::ConfigError> {
        let e = Elector::new(config_from_wit(config), clock()).map_err(config_error)?;
        Ok(wit_election::Elector::new(ElectorResource(RefCell::new(e))))
    }

    fn restore(config: wit::Config, state: Vec<u8>) -> Result<wit_election::Elector, String> {
        let e = Elector::restore(config_from_wit(config), &state, clock()).map_err(|e| e.to_string())?;
        Ok(wit_election::Elector::new(ElectorResource(RefCell::new(e))))
    }

    fn step(&self) -> wit::StepOutcome {
        let mut e = self.0.borrow_mut();
        let next = drive_step(&mut e, &mut WitIo);
        let now = clock();
        wit::StepOutcome { status: status_to_wit(e.status(now)), next_step_in_ms: next, health: e.health(now) }
    }

    fn status(&self) -> wit::Status {
        status_to_wit(self.0.borrow().status(clock()))
    }

    fn health(&self) -> Option<Vec<u8>> {
        self.0.borrow().health(clock())
    }

    fn update_config(&self, config: wit::Config) -> Result<(), wit::ConfigError> {
        self.0.borrow_mut().update_config(config_from_wit(config)).map_err(config_error)
    }

    fn resign(&self) -> wit::Status {
        let mut e = self.0.borrow_mut();
        drive_resign(&mut e, &mut WitIo);
        status_to_wit(e.status(clock()))
    }

    fn set_invocation_budget(&self, budget_ms: u64) {
        self.0.borrow_mut().set_invocation_budget(budget_ms);
    }

    fn export_state(&self) -> Vec<u8> {
        self.0.borrow().export_state(clock())
    }
}

export!(Component);
