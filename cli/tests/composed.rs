//! The composed component (elector-cron world + S3 storage over wasi:http, joined by wac) in
//! the wasmtime CLI: a generic runner that knows nothing of s3lect, giving it only WASI.
//! One `wasmtime run` is one scheduled invocation; state is carried in object storage.

mod common;

use common::interop::{built_component, component_env, composed_component, report, wasmtime_run, wasmtime_run_file};
use common::{record, seaweed, storage};
use s3lect::Condition;
use s3lect::Storage;
use std::process::{Output, Stdio};

fn invoke(env: &[(String, String)]) -> (Output, serde_json::Value) {
    let out = wasmtime_run(env, &[]).output().expect("wasmtime runs");
    assert!(out.status.success(), "wasmtime run failed: {}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out.stdout);
    (out, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composed_component_elects_one_step_per_wasmtime_run() {
    let server = seaweed("composed-cli").await;
    let s3 = storage(&server);
    let lock = "cron/leader.json";
    let a = component_env(&server, "cli-a", lock);
    let b = component_env(&server, "cli-b", lock);

    // Cold start on an absent lock: creates it.
    let (_, r) = invoke(&a);
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64(), r["restored"].as_bool()), (Some(true), Some(1), Some(false)), "{r}");
    let lease = r["leaseRemainingMs"].as_u64().expect("a leader's report says how long its lease lasts");
    assert!(lease > 0 && lease <= 2500, "at most the renew deadline: {r}");
    let (_, e1) = s3.get(lock).await.unwrap();
    // The next run restores the carried state and renews (new etag, same term).
    let (_, r) = invoke(&a);
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64(), r["restored"].as_bool()), (Some(true), Some(1), Some(true)), "{r}");
    let (_, e2) = s3.get(lock).await.unwrap();
    assert_ne!(e1, e2, "the leader's run renewed the lock object");
    let rec = record(&s3, lock).await.unwrap();
    assert_eq!((rec.leader_id.as_str(), rec.term), ("cli-a", 1));
    let state = format!("{lock}.state/cli-a");
    assert!(s3.get(&state).await.is_ok(), "state carried beside the lock object");

    // Without its carried state, the leader's next invocation is cold: the record names it, and
    // invocations of one server never overlap, so it resumes that record — a conditional write
    // on its etag (success proves nobody wrote since), same term.
    s3.delete(&state).await.unwrap();
    let (_, r) = invoke(&a);
    assert_eq!((r["isLeader"].as_bool(), r["restored"].as_bool(), r["term"].as_u64()), (Some(true), Some(false), Some(1)), "{r}");
    assert_ne!(s3.get(lock).await.unwrap().1, e2, "the cold invocation resumed with a write");

    // Spin's cron entry point runs the same invocation.
    let out = wasmtime_run(&a, &["--invoke", "handle-cron-event({timestamp: 1})"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(report(&out.stdout)["restored"], true, "handle-cron-event carried the state on");

    // A second server, cold: follows; one step proves nothing about the leader's liveness.
    let (_, r) = invoke(&b);
    assert_eq!((r["isLeader"].as_bool(), r["leaderID"].as_str()), (Some(false), Some("cli-a")), "{r}");
    assert!(r["leaseRemainingMs"].is_null(), "followers hold no lease: {r}");
    // … and says so: every `wasmtime run` starts a new clock, and one step is below the leader
    // timeout, so as configured this server could never take over.
    assert!(r["lastError"].as_str().is_some_and(|e| e.contains("cannot see a leader go")), "{r}");

    // cli-a stops being scheduled. Each `wasmtime run` starts its monotonic clock anew, so
    // carried watch times are discarded: only an invocation with a budget above the leader
    // timeout can see the lease run out, and it takes over within that one invocation.
    let mut budget = b.clone();
    budget.push(("S3LECT_INVOCATION_BUDGET_MS".into(), "6000".into()));
    let (_, r) = invoke(&budget);
    assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64()), (Some(true), Some(2)), "{r}");
    assert!(r["steps"].as_u64().unwrap() > 1, "watched over several steps: {r}");
    assert!(r["lastError"].is_null(), "a budget above the leader timeout is a staleness source: {r}");
    let rec = record(&s3, lock).await.unwrap();
    assert_eq!((rec.leader_id.as_str(), rec.term), ("cli-b", 2));

    // cli-a comes back with its old state: its renewal loses, it follows cli-b.
    let (_, r) = invoke(&a);
    assert_eq!((r["isLeader"].as_bool(), r["leaderID"].as_str(), r["term"].as_u64()), (Some(false), Some("cli-b"), Some(2)), "{r}");
    assert_eq!(record(&s3, lock).await.unwrap().leader_id, "cli-b", "the returning server wrote nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_the_run_naming_the_problem() {
    let server = seaweed("composed-bad").await;
    let s3 = storage(&server);
    let lock = "cron/bad.json";
    // (variable removed, variables set, what stderr must say)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        ("S3LECT_SERVER_ID", &[], "S3LECT_SERVER_ID is not set"),
        ("", &[("S3LECT_RENEW_DEADLINE_MS", "9000")], "renew"),
        ("S3LECT_BUCKET", &[], "S3LECT_BUCKET is not set"),
        (
            "",
            &[("S3LECT_PEER_MODE", "true"), ("S3LECT_SERVER_ADDR", "127.0.0.1:9")],
            "S3LECT_PEER_MODE: a cron invocation serves no health endpoint",
        ),
    ];
    for (removed, set, expected) in cases {
        let replaced = |k: &str| k == removed || set.iter().any(|(s, _)| *s == k);
        let mut env: Vec<(String, String)> = component_env(&server, "bad", lock).into_iter().filter(|(k, _)| !replaced(k)).collect();
        env.extend(set.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let out = wasmtime_run(&env, &[]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expected}: the run must fail");
        assert!(stderr.contains(expected), "stderr should say {expected:?}: {stderr}");
    }
    assert!(s3.get(lock).await.is_err(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_invocations_of_one_server_are_detected() {
    let server = seaweed("composed-overlap").await;
    let mut env = component_env(&server, "twin", "cron/overlap.json");
    // Each invocation keeps stepping for 2 s, so the two certainly overlap.
    env.push(("S3LECT_INVOCATION_BUDGET_MS".into(), "2000".into()));
    let first = wasmtime_run(&env, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let second = wasmtime_run(&env, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let outs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];
    let failed: Vec<String> =
        outs.iter().filter(|o| !o.status.success()).map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    assert_eq!(failed.len(), 1, "exactly one of the two saves its state: {failed:?}");
    assert!(failed[0].contains("another invocation of server \"twin\""), "{}", failed[0]);
}

/// The names a component imports and exports.
fn interface_names(path: std::path::PathBuf) -> (Vec<String>, Vec<String>) {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::from_file(&engine, path).unwrap();
    let ty = component.component_type();
    let names = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<String>>();
    (names(&mut ty.imports(&engine).map(|(n, _)| n.to_string())), names(&mut ty.exports(&engine).map(|(n, _)| n.to_string())))
}

#[test]
fn the_composition_imports_only_wasi_and_exports_every_entry_point() {
    let (imports, exports) = interface_names(composed_component());
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@")), "{imports:?}");
    // Spin's world `use`s its types interface, which declares types only: nothing to supply.
    let foreign: Vec<&String> = imports.iter().filter(|i| !i.starts_with("wasi:") && *i != "fermyon:spin-cron/cron-types@2.0.0").collect();
    assert!(foreign.is_empty(), "only standard WASI may remain to be supplied: {foreign:?}");
    for wanted in ["s3lect:election/cron@0.1.0", "wasi:cli/run@0.2.12", "handle-cron-event"] {
        assert!(exports.iter().any(|e| e == wanted), "{wanted} not in {exports:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_server_makes_the_invocation_give_up_at_its_deadline() {
    let server = seaweed("composed-frozen").await;
    let env = component_env(&server, "frozen", "cron/frozen.json");
    server.suspend();
    let started = std::time::Instant::now();
    let out = wasmtime_run(&env, &[]).output().unwrap();
    let took = started.elapsed();
    server.resume();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "no answer is a failed invocation");
    // The storage component bounds each request by the call's timeout (the renew deadline,
    // 2.5 s here): through the host's request options, or its own poll deadline.
    assert!(stderr.contains("storage unavailable") && stderr.to_lowercase().contains("time"), "{stderr}");
    assert!(took < std::time::Duration::from_secs(10), "gave up after {took:?}");
    println!("frozen server: gave up after {} ms: {}", took.as_millis(), stderr.trim());
}

#[test]
fn the_library_elector_composition_imports_only_wasi() {
    let (imports, exports) = interface_names(built_component("s3lect-elector.wasm"));
    let foreign: Vec<&String> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert!(foreign.is_empty(), "storage, peer and hooks are plugged in: {foreign:?}");
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@")), "{imports:?}");
    for wanted in ["s3lect:election/election@0.1.0", "s3lect:election/types@0.1.0"] {
        assert!(exports.iter().any(|e| e == wanted), "{wanted} not in {exports:?}");
    }
}

/// A user's own component (components/example-app) imports `cron`; wac plugs the composed
/// elector into it, and the result runs in the wasmtime CLI: only the leader does its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_component_composed_with_s3lect_works_only_while_it_leads() {
    let server = seaweed("composed-app").await;
    let app = built_component("example-app.wasm");
    let run = |id: &str| {
        let out = wasmtime_run_file(&app, &component_env(&server, id, "app/leader.json"), &[]).output().unwrap();
        assert!(out.status.success(), "{id}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(run("app-1").starts_with("leader of term 1: doing the scheduled work"));
    assert!(run("app-1").starts_with("leader of term 1: doing the scheduled work"), "renewed on the next run");
    assert_eq!(run("app-2"), "follower: \"app-1\" leads term 1; skipping the work\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_carried_state_is_dropped_for_a_cold_start() {
    let server = seaweed("composed-garbage").await;
    let s3 = storage(&server);
    let lock = "cron/garbage.json";
    s3.put_if_match(&format!("{lock}.state/g"), b"not elector state", Condition::Absent).await.unwrap();
    let env = component_env(&server, "g", lock);
    let (out, r) = invoke(&env);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignoring the carried state"), "the drop is reported");
    assert_eq!((r["restored"].as_bool(), r["isLeader"].as_bool()), (Some(false), Some(true)), "cold, and the absent lock is created: {r}");
    // The garbage was replaced (If-Match on its etag): the next run restores.
    let (_, r) = invoke(&env);
    assert_eq!(r["restored"].as_bool(), Some(true), "{r}");
}

/// The composed component reads at most 64 KiB + 1 byte of an answer (wasi-http client): a
/// 100 MB lock object is reported as oversized from what was read, never downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_lock_object_is_not_downloaded_by_the_composed_component() {
    let server = seaweed("composed-big").await;
    let s3 = storage(&server);
    let lock = "cron/big.json";
    s3.put_if_match(lock, &vec![b' '; 100 << 20], Condition::Absent).await.unwrap();
    let started = std::time::Instant::now();
    let (_, r) = invoke(&component_env(&server, "big", lock));
    let problem = r["lastError"].as_str().unwrap_or_default().to_string();
    assert!(problem.contains("over the 65536-byte limit (at least 65537 bytes)"), "{r}");
    println!("100 MB lock object: invocation took {} ms: {problem}", started.elapsed().as_millis());
}

/// The storage contract that every Rust storage passes (tests/src/contract.rs), run inside wasm
/// by `components/storage-contract` composed with the S3 storage component, against SeaweedFS;
/// and against a server that ignores conditions, where it must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_storage_component_keeps_the_storage_contract() {
    let server = seaweed("contract-component").await;
    let runner = built_component("storage-contract-s3.wasm");
    let mut env = component_env(&server, "unused", "unused.json");
    env.push(("S3LECT_CONTRACT_PREFIX".into(), "component".into()));
    let out = wasmtime_run_file(&runner, &env, &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("storage contract: ok"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // A store that keeps objects but ignores If-None-Match and If-Match.
    let ignorant = common::serve(|req: hyper::Request<hyper::body::Incoming>| {
        use http_body_util::BodyExt;
        static OBJECTS: std::sync::Mutex<Vec<(String, Vec<u8>, String)>> = std::sync::Mutex::new(Vec::new());
        async move {
            let key = req.uri().path().to_string();
            let put = req.method() == hyper::Method::PUT;
            let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
            let mut objects = OBJECTS.lock().unwrap();
            let found = objects.iter().position(|(k, ..)| *k == key);
            let resp = hyper::Response::builder();
            let resp = match (put, found) {
                (true, at) => {
                    let etag = format!("\"e{}\"", fastrand::u32(..));
                    if let Some(i) = at {
                        objects.remove(i);
                    }
                    objects.push((key, body, etag.clone()));
                    resp.status(200).header("ETag", etag).body(http_body_util::Full::new(bytes::Bytes::new()))
                }
                (false, Some(i)) => resp
                    .status(200)
                    .header("ETag", objects[i].2.clone())
                    .body(http_body_util::Full::new(bytes::Bytes::from(objects[i].1.clone()))),
                (false, None) => {
                    resp.status(404).body(http_body_util::Full::new(bytes::Bytes::from_static(b"<Error><Code>NoSuchKey</Code></Error>")))
                }
            };
            Ok::<_, std::convert::Infallible>(resp.unwrap())
        }
    })
    .await;
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), format!("http://{ignorant}")));
    let out = wasmtime_run_file(&runner, &env, &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("storage contract: FAILED: a second create is refused"), "{stdout}");
}

/// Precompiled: `wasmtime compile` once, then every invocation runs the .cwasm with
/// `--allow-precompiled` (no compiling per run; s3lect-bench measures both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_precompiled_component_runs_the_same_invocation() {
    let server = seaweed("composed-precompiled").await;
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("s3lect-cron-s3.cwasm");
    let out = std::process::Command::new(common::interop::wasmtime_cli())
        .arg("compile")
        .arg(composed_component())
        .arg("-o")
        .arg(&cwasm)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = component_env(&server, "pre-a", "precompiled/leader.json");
    for (n, term_leader) in [(0, "created"), (1, "renewed")] {
        let out = wasmtime_run_file(&cwasm, &env, &["--allow-precompiled"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r = report(&out.stdout);
        assert_eq!((r["isLeader"].as_bool(), r["term"].as_u64()), (Some(true), Some(1)), "run {n} ({term_leader}): {r}");
    }
    // Without the flag wasmtime refuses precompiled code: it is trusted native code.
    let out = wasmtime_run_file(&cwasm, &env, &[]).output().unwrap();
    assert!(!out.status.success());
}

/// The composed component checks the server as the native host does: one that ignores the
/// conditions is refused before any election write; a conforming one is checked once, and the
/// finding is carried with the state, so the next invocation spends no request on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_composed_component_refuses_storage_that_ignores_conditions_and_checks_once() {
    let fake = common::fake_s3::fake_s3(200, "").await;
    let server = seaweed("composed-checked").await;
    let lock = "cron/checked.json";
    let mut ignorant = component_env(&server, "c", lock);
    for (k, v) in ignorant.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = format!("http://{}", fake.addr);
        }
    }
    let out = wasmtime_run(&ignorant, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("does not enforce conditional writes"), "{stderr}");

    let s3 = storage(&server);
    let scratch = s3lect::storage::scratch_key(lock);
    let (_, r) = invoke(&component_env(&server, "c", lock));
    assert_eq!(r["isLeader"].as_bool(), Some(true), "{r}");
    let (_, checked) = s3.get(&scratch).await.expect("the first invocation checked the server");
    let (state, _) = s3.get(&format!("{lock}.state/c")).await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(&state).unwrap();
    assert_eq!(state["checked"]["ifMatch"], "as-returned", "{state}");
    assert!(state["checked"]["storage"].as_str().unwrap().starts_with(&server.endpoint), "{state}");
    let (_, r) = invoke(&component_env(&server, "c", lock));
    assert_eq!(r["isLeader"].as_bool(), Some(true), "{r}");
    assert_eq!(s3.get(&scratch).await.unwrap().1, checked, "the second invocation trusted the carried finding");
}
