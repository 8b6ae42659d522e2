//! The wasm component itself — not the native core — loaded in wasmtime with in-memory storage:
//! three instances run a full election (acquire, renew, crash of the leader, takeover with
//! term 2). Real time, short leases; every wait has a deadline.

use s3lect::runtime::{ComponentElector, HostIo, Runtime, monotonic_now_ns};
use s3lect::storage::MemoryStorage;
use s3lect::{LeaderRecord, Storage, hook};
use s3lect_guest::Config;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "leader/component-test.json";

fn config(id: &str) -> Config {
    Config {
        lockfile_path: KEY.into(),
        server_id: id.into(),
        server_addr: format!("{id}:1"),
        frequent_interval_ms: 50,
        infrequent_interval_ms: 100,
        renew_deadline_ms: 200,
        leader_timeout_ms: 300,
        ..Config::default()
    }
}

struct Node {
    id: &'static str,
    elector: Option<ComponentElector>,
    due: Instant,
    /// Monotonic instant until which this node believes it leads (from its last step).
    lease_until: Option<u64>,
    term: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_component_instances_elect_one_leader_and_fail_over_with_term_2() {
    let runtime = Runtime::shared().expect("the embedded component compiles and links");
    let storage = Arc::new(MemoryStorage::new());
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        let mut io = HostIo::new(storage.clone());
        let l = log.clone();
        io.on_acquire = Some(hook(move |ev| {
            let l = l.clone();
            async move {
                l.lock().unwrap().push(format!("{} acquire {}", ev.leader_id, ev.term));
                Ok(())
            }
        }));
        let elector = ComponentElector::create(&runtime, io, &config(id), None).await.expect("create");
        nodes.push(Node { id, elector: Some(elector), due: Instant::now(), lease_until: None, term: 0 });
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut crashed: Option<&str> = None;
    let mut renewals_seen = 0;
    let mut first_leader_etags = std::collections::HashSet::new();
    loop {
        assert!(Instant::now() < deadline, "election did not complete in time; log {:?}", log.lock().unwrap());
        // Step whichever live node is due.
        let next = nodes.iter().filter(|n| n.elector.is_some()).map(|n| n.due).min().unwrap();
        tokio::time::sleep_until(next.into()).await;
        for n in nodes.iter_mut().filter(|n| n.elector.is_some() && n.due <= Instant::now()) {
            let o = n.elector.as_mut().unwrap().step().await.expect("step");
            n.lease_until = if o.status.is_leader { o.status.lease_until } else { None };
            n.term = o.status.term;
            n.due = Instant::now() + o.next_step;
        }
        // Safety: at this instant, at most one node (crashed ones included, until their lease
        // would have ended) believes it leads.
        let now = monotonic_now_ns();
        let leaders: Vec<&Node> = nodes.iter().filter(|n| n.lease_until.is_some_and(|u| now < u)).collect();
        assert!(leaders.len() <= 1, "two leaders at once: {:?}", leaders.iter().map(|n| n.id).collect::<Vec<_>>());

        let (data, etag) = match storage.get(KEY).await {
            Ok(o) => o,
            Err(_) => continue,
        };
        let record = LeaderRecord::parse(&data).expect("the component writes valid records");
        match crashed {
            None if record.term == 1 => {
                first_leader_etags.insert(etag);
                renewals_seen = first_leader_etags.len();
                // After several renewals by the first leader, crash it: drop its instance.
                if renewals_seen >= 4 {
                    let victim = nodes.iter_mut().find(|n| n.id == record.leader_id).unwrap();
                    victim.elector = None;
                    crashed = Some(victim.id);
                }
            }
            None => panic!("term moved past 1 before any crash: {record:?}"),
            Some(dead) if record.term == 2 && !record.leader_id.is_empty() => {
                assert_ne!(record.leader_id, dead);
                let winner = nodes.iter().find(|n| n.id == record.leader_id).unwrap();
                if winner.lease_until.is_some() {
                    break;
                }
            }
            Some(_) => assert!(record.term <= 2, "unexpected term {record:?}"),
        }
    }
    assert!(renewals_seen >= 4, "the leader renewed (new etag each time) before the crash");
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "one acquire per term: {log:?}");
    assert!(log[0].ends_with(" acquire 1") && log[1].ends_with(" acquire 2"), "{log:?}");
    assert_ne!(log[0].split(' ').next(), log[1].split(' ').next(), "a different node leads term 2");
}

#[tokio::test]
async fn component_rejects_bad_config_and_bad_state_with_named_errors() {
    let runtime = Runtime::shared().unwrap();
    let io = HostIo::new(Arc::new(MemoryStorage::new()));
    let bad = Config { renew_deadline_ms: 400, ..config("a") };
    let err = ComponentElector::create(&runtime, io.clone(), &bad, None).await.err().expect("rejected");
    assert!(err.to_string().contains("renew-deadline-below-leader-timeout"), "{err}");
    let err = ComponentElector::create(&runtime, io, &config("a"), Some(b"not state")).await.err().expect("rejected");
    assert!(err.to_string().contains("unreadable"), "{err}");
}

#[tokio::test]
async fn component_state_round_trips_through_export() {
    let runtime = Runtime::shared().unwrap();
    let storage = Arc::new(MemoryStorage::new());
    let mut a = ComponentElector::create(&runtime, HostIo::new(storage.clone()), &config("a"), None).await.unwrap();
    assert!(a.step().await.unwrap().status.is_leader);
    let state = a.export_state().await.unwrap();
    drop(a);
    // Same machine, same boot clock: the restored leader still holds its lease and renews.
    let mut a2 = ComponentElector::create(&runtime, HostIo::new(storage.clone()), &config("a"), Some(&state)).await.unwrap();
    let o = a2.step().await.unwrap();
    assert!(o.status.is_leader, "{:?}", o.status);
    assert_eq!(o.status.term, 1);
}
