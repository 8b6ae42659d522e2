//! Spin's cron trigger, without the Spin CLI (it is not installable from the package
//! registries here). A host that binds exactly Spin's world — `spin-cron` of
//! `fermyon:spin-cron@2.0.0`, vendored in `wit/deps/spin-cron` — gives the composed component
//! what Spin gives a component (WASI 0.2 with outgoing `wasi:http`, configuration as
//! environment variables) and calls `handle-cron-event` against SeaweedFS: it elects, renews,
//! hands over, and fails naming a bad setting.

mod common;

use common::interop::{composed_component, report, stateless_env};
use common::seaweed;
use s3lect::Storage;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

mod spin {
    wasmtime::component::bindgen!({
        path: "../wit/deps/spin-cron",
        world: "spin-cron",
        exports: { default: async },
    });
}

use spin::SpinCron;
use spin::fermyon::spin_cron::cron_types::{Error as CronError, Metadata};

struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    outbound: Outbound,
}

/// Spin's `allowed_outbound_hosts`: a request to any other authority is refused before
/// anything is sent (`error-code.http-request-denied`, as Spin's outbound HTTP answers).
struct Outbound {
    allowed: Option<String>,
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SentRequest {
        let authority = request.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        if self.allowed.as_ref().is_some_and(|allowed| *allowed != authority) {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
    }
}

type SentRequest =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>> + Send>;

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// The trigger's side: the component loaded once, one instance per tick, as Spin does.
struct Trigger {
    engine: Engine,
    component: Component,
    linker: Linker<Host>,
}

impl Trigger {
    fn new() -> Trigger {
        let engine = Engine::new(&Config::new()).unwrap();
        let component = Component::from_file(&engine, composed_component()).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        Trigger { engine, component, linker }
    }

    /// One scheduled tick: `handle-cron-event`, and the report line the component printed.
    async fn tick(&self, env: &[(String, String)]) -> (Result<(), CronError>, String) {
        self.tick_allowing(env, None).await
    }

    /// A tick whose outbound requests may go to `allowed` only (None: anywhere).
    async fn tick_allowing(&self, env: &[(String, String)], allowed: Option<&str>) -> (Result<(), CronError>, String) {
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let wasi = WasiCtxBuilder::new().envs(env).stdout(stdout.clone()).inherit_stderr().build();
        let outbound = Outbound { allowed: allowed.map(str::to_string) };
        let mut store = Store::new(&self.engine, Host { wasi, http: WasiHttpCtx::new(), table: ResourceTable::new(), outbound });
        // Instantiating through the world's bindings checks the export's name and type.
        let cron = SpinCron::instantiate_async(&mut store, &self.component, &self.linker).await.expect("the component targets spin-cron");
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let result = cron.call_handle_cron_event(&mut store, Metadata { timestamp: secs }).await.expect("the call traps not");
        drop(store);
        (result, String::from_utf8_lossy(&stdout.contents()).into_owned())
    }

    async fn report(&self, env: &[(String, String)]) -> serde_json::Value {
        let (result, out) = self.tick(env).await;
        assert!(result.is_ok(), "handle-cron-event failed: {result:?}");
        report(out.as_bytes())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_binding_spins_cron_world_elects_renews_and_hands_over() {
    let server = seaweed("spin-cron").await;
    let lock = "spin/leader.json";
    // Spin's ticks are stateless: the server's clock lets a follower see the leader go.
    let (a, b) = (stateless_env(&server, "spin-a", lock), stateless_env(&server, "spin-b", lock));
    let trigger = Trigger::new();

    let r = trigger.report(&a).await;
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64()), (Some(true), Some(1)), "elects: {r}");
    let r = trigger.report(&a).await;
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64()), (Some(true), Some(1)), "renews: {r}");
    let r = trigger.report(&b).await;
    assert_eq!((r["isLeader"].as_bool(), r["leaderID"].as_str()), (Some(false), Some("spin-a")), "{r}");
    assert!(r["lastError"].is_null(), "with the server's clock a tick is not blind: {r}");

    // spin-a's ticks stop; spin-b, ticking every 500 ms, takes over by the server's clock.
    let stopped = Instant::now();
    let r = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = trigger.report(&b).await;
        if r["isLeader"] == true {
            break r;
        }
        assert!(stopped.elapsed() < Duration::from_secs(15), "no handover: {r}");
    };
    let took = stopped.elapsed();
    println!("Spin cron world: handover {took:?} after the leader's last tick");
    assert_eq!(r["term"].as_u64(), Some(2), "{r}");
    assert!(took >= Duration::from_secs(4), "the record must stand a leader timeout by the server's clock: {took:?}");

    // A bad setting is Spin's `error::other`, naming it.
    let mut bad = b.clone();
    bad.retain(|(k, _)| k != "S3LECT_LEADER_TIMEOUT_MS");
    bad.push(("S3LECT_LEADER_TIMEOUT_MS".into(), "soon".into()));
    let (result, _) = trigger.tick(&bad).await;
    match result {
        Err(CronError::Other(msg)) => assert!(msg.contains("S3LECT_LEADER_TIMEOUT_MS"), "{msg}"),
        other => panic!("a bad setting must fail the tick: {other:?}"),
    }

    // A storage the app's outbound policy does not allow fails the tick naming the refusal
    // and where it is lifted, not as an outage; nothing reaches the server.
    let before = common::storage(&server).get(lock).await.unwrap();
    let (result, _) = trigger.tick_allowing(&b, Some("s3.example.com:443")).await;
    match result {
        Err(CronError::Other(msg)) => {
            assert!(msg.contains("refused to send a request") && msg.contains("allowed_outbound_hosts"), "{msg}");
            assert!(!msg.contains("storage unavailable"), "a refused destination was reported as an outage: {msg}");
        }
        other => panic!("a refused destination must fail the tick: {other:?}"),
    }
    assert_eq!(common::storage(&server).get(lock).await.unwrap(), before, "the refused tick changed the lock object");
}
