//! The library elector composed without any host support: `s3lect-elector.wasm` (the election
//! component with s3-storage and peer-http plugged in) inside a user's long-running service
//! (components/example-service), run by the wasmtime CLI — a generic runner that supplies only
//! WASI. Two services elect one leader; SIGKILL hands over; the peer probe goes over wasi:http.

mod common;

use common::fake_s3::fake_s3;
use common::interop::{built_component, component_env, wasmtime_run_file};
use common::{eventually, record, seaweed, storage, wait_record};
use s3lect::Condition;
use s3lect::{LeaderRecord, Storage};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Service {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Service {
    fn start(env: &[(String, String)], dir: &Path, name: &str) -> Service {
        let (out, err) = (dir.join(format!("{name}.out")), dir.join(format!("{name}.err")));
        let child = wasmtime_run_file(&built_component("example-service.wasm"), env, &[])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("wasmtime runs");
        Service { child, out, err }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_composed_services_elect_one_leader_and_hand_over_on_kill() {
    let server = seaweed("service-kill").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "svc/leader.json";

    let mut first = Service::start(&component_env(&server, "svc-1", lock), dir.path(), "svc-1");
    wait_record(&s3, lock, "the first service to lead", Duration::from_secs(30), |r| r.leader_id == "svc-1" && r.term == 1).await;
    eventually("svc-1 to start its work", Duration::from_secs(10), || async {
        first.stdout().contains("leader of term 1: starting the work").then_some(())
    })
    .await;
    assert!(first.stderr().contains("svc-1 acquired leadership, term 1"), "the plugged-in hooks report: {}", first.stderr());

    let second = Service::start(&component_env(&server, "svc-2", lock), dir.path(), "svc-2");
    // Three renewals by svc-1 while svc-2 runs: svc-2 stays out.
    let mut etags = vec![s3.get(lock).await.unwrap().1];
    while etags.len() < 4 {
        let (_, e) = eventually("a renewal", Duration::from_secs(10), || async {
            s3.get(lock).await.ok().filter(|(_, e)| e != etags.last().unwrap())
        })
        .await;
        etags.push(e);
    }
    assert_eq!(record(&s3, lock).await.unwrap().leader_id, "svc-1");
    assert_eq!(second.stdout(), "", "svc-2 never started the work while svc-1 led");

    let _ = first.child.kill();
    let _ = first.child.wait();
    wait_record(&s3, lock, "svc-2 to take over", Duration::from_secs(30), |r| r.leader_id == "svc-2" && r.term == 2).await;
    eventually("svc-2 to start its work", Duration::from_secs(10), || async {
        second.stdout().contains("leader of term 2: starting the work").then_some(())
    })
    .await;
}

/// A follower in peer mode probes the leader named in the record, over wasi:http; a peer that
/// answers 404 ("not leader") sends it back to S3, where the record, standing unchanged for a
/// leader timeout, is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_probe_goes_over_wasi_http_to_the_advertised_leader() {
    let server = seaweed("service-peer").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "svc/peer.json";
    let peer = fake_s3(404, "").await;
    let now_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
    let ghost = LeaderRecord::leading("ghost", &peer.addr.to_string(), now_ns, 5);
    s3.put_if_match(lock, &ghost.to_json(), Condition::Absent).await.unwrap();

    let mut env = component_env(&server, "svc-peer", lock);
    env.extend(
        [
            ("S3LECT_PEER_MODE", "true"),
            ("S3LECT_PEER_SCHEME", "http"),
            ("S3LECT_PEER_TIMEOUT_MS", "500"),
            ("S3LECT_SERVER_ADDR", "127.0.0.1:9"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let service = Service::start(&env, dir.path(), "svc-peer");
    eventually("a probe at the advertised address", Duration::from_secs(15), || async {
        (peer.requests.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let r = wait_record(&s3, lock, "the takeover from the silent ghost", Duration::from_secs(30), |r| r.leader_id == "svc-peer").await;
    assert_eq!(r.term, 6, "one above the ghost's term");
    assert!(service.stdout().contains("leader of term 6"), "{}", service.stdout());
}
