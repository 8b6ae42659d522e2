//! The Rust API that mirrors Go s3lect: Elector's lifecycle, status, waiters, config updates,
//! hooks, the leadership watch, and the leader's task with its cancellation token.

use s3lect_testkit as common;

use common::wait_until;

use s3lect::{Elector, ElectorConfig, Error, LeaderRecord, MockStorage, Storage, hook};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn config(id: &str, lock: &str) -> ElectorConfig {
    ElectorConfig {
        lockfile_path: lock.into(),
        server_id: id.into(),
        server_addr: format!("{id}.local:8993"),
        frequent_interval: Duration::from_millis(200),
        infrequent_interval: Duration::from_millis(400),
        renew_deadline: Duration::from_millis(600),
        leader_timeout: Duration::from_millis(800),
        peer_timeout: Duration::from_millis(100),
        ..ElectorConfig::default()
    }
}

fn elector(cfg: ElectorConfig, storage: &Arc<MockStorage>) -> Elector {
    Elector::new(cfg, storage.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elector_lifecycle_status_and_waiters() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let a = elector(config("a", "g/api.json"), &storage);
    assert!(!a.is_leader());
    assert_eq!(a.status().server_id, "a");
    assert!(matches!(a.stop().await, Err(Error::NotStarted)));

    // Many waiters, registered before anything happens, are all woken.
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.wait_for_next_election(None).await })
        })
        .collect();
    let leader_waiter = {
        let a = a.clone();
        tokio::spawn(async move { a.wait_for_leadership().await })
    };
    a.start().await.unwrap();
    assert!(matches!(a.start().await, Err(Error::AlreadyStarted)));
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap().unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), leader_waiter).await.unwrap().unwrap().unwrap();

    let st = a.status();
    assert!(st.is_leader && a.is_leader());
    assert_eq!((st.leader_id.as_str(), st.leader_addr.as_str(), st.term, st.consecutive_fails), ("a", "a.local:8993", 1, 0));
    assert!(st.lease_remaining_ms.is_some_and(|ms| ms <= 600), "{st:?}");
    assert!(st.last_election_time.is_some() && st.leader_last_seen.is_some());
    assert_eq!(a.leader_id(), "a");
    let json = serde_json::to_value(&st).unwrap();
    for field in
        ["serverID", "lockfilePath", "isLeader", "leaderID", "leaderAddr", "leaderLastSeen", "lastElectionTime", "consecutiveFails", "term"]
    {
        assert!(json.get(field).is_some(), "status JSON has Go's field {field}: {json}");
    }

    // wait_for_next_election(since) waits for a step that completes after `since`.
    let since = SystemTime::now();
    let next = tokio::time::timeout(Duration::from_secs(5), a.wait_for_next_election(Some(since))).await.unwrap().unwrap();
    assert!(next.last_election_time.unwrap() >= time::OffsetDateTime::from(since));

    // Config updates are validated, then applied.
    let bad = ElectorConfig { renew_deadline: Duration::from_secs(5), ..config("a", "g/api.json") };
    match a.update_config(bad).await {
        Err(Error::Config(e)) => assert_eq!(e.rule, "renew-deadline-below-leader-timeout"),
        other => panic!("{other:?}"),
    }
    let other_id = config("z", "g/api.json");
    assert!(matches!(a.update_config(other_id).await, Err(Error::Config(e)) if e.rule == "identity-immutable"));
    a.update_config(ElectorConfig { infrequent_interval: Duration::from_millis(500), ..config("a", "g/api.json") }).await.unwrap();
    assert_eq!(a.config().infrequent_interval, Duration::from_millis(500));
    assert!(a.is_leader(), "a config update does not disturb leadership");

    a.stop().await.unwrap();
    assert!(!a.is_leader(), "IsLeader is false after Stop");
    assert!(matches!(a.wait_for_leadership().await, Err(Error::Stopped)));
    let (data, _) = storage.get("g/api.json").await.unwrap();
    assert!(LeaderRecord::parse(&data).unwrap().is_resigned(), "stop resigned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_acquire_hook_resigns_and_another_elector_takes_over() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let mut cfg = config("a", "g/hook.json");
    cfg.on_acquire_leadership = Some(hook(|_| async { Err("cannot attach the network interface".into()) }));
    let a = elector(cfg, &storage);
    a.start().await.unwrap();
    let st = wait_until(&a, Duration::from_secs(10), |s| s.last_error.is_some()).await.unwrap();
    assert!(st.last_error.unwrap().contains("acquire hook failed, resigned: cannot attach the network interface"));
    assert!(!a.is_leader());
    let b = elector(config("b", "g/hook.json"), &storage);
    b.start().await.unwrap();
    wait_until(&b, Duration::from_secs(10), |s| s.is_leader).await.unwrap();
    assert!(!a.is_leader());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_readers_never_wait_behind_a_slow_hook() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let mut cfg = config("a", "g/slow.json");
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
    cfg.on_acquire_leadership = Some(hook(move |_| {
        let entered = entered.clone();
        async move {
            if let Some(tx) = entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Ok(())
        }
    }));
    cfg.hook_timeout = Duration::from_secs(5);
    let a = elector(cfg, &storage);
    a.start().await.unwrap();
    entered_rx.await.unwrap();
    let t = Instant::now();
    for _ in 0..100 {
        let st = a.status();
        assert!(!st.is_leader, "not leader before its acquire hook finished");
    }
    assert!(t.elapsed() < Duration::from_millis(100), "status reads took {:?} while the hook ran", t.elapsed());
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_leadership()).await.unwrap().unwrap();
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_resigns() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let a = elector(config("a", "g/drop.json"), &storage);
    a.start().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), a.wait_for_leadership()).await.unwrap().unwrap();
    drop(a);
    common::eventually("the resigned record", Duration::from_secs(5), || async {
        common::record(storage.as_ref(), "g/drop.json").await.filter(|r| r.is_resigned())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_changes_are_signalled_to_subscribers() {
    let storage = Arc::new(MockStorage::new_mock().unwrap());
    let a = elector(config("a", "g/watch.json"), &storage);
    let b = elector(config("b", "g/watch.json"), &storage);
    let (mut wa, mut wb) = (a.watch_leadership(), b.watch_leadership());
    assert!(!wa.is_leader() && !wb.is_leader());
    a.start().await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(10), wa.changed()).await.unwrap().unwrap(), "a starts leading");
    b.start().await.unwrap();
    // b's subscriber hears nothing while a leads, then b's takeover once a leaves.
    assert!(tokio::time::timeout(Duration::from_millis(1_500), wb.changed()).await.is_err(), "no change for b while a leads");
    let stopping = tokio::spawn({
        let a = a.clone();
        async move { a.stop().await }
    });
    assert!(!tokio::time::timeout(Duration::from_secs(5), wa.changed()).await.unwrap().unwrap(), "a's leadership ends");
    assert!(matches!(tokio::time::timeout(Duration::from_secs(5), wa.changed()).await.unwrap(), Err(Error::Stopped)));
    stopping.await.unwrap().unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(10), wb.changed()).await.unwrap().unwrap(), "b took over");
    assert!(wb.is_leader() && b.is_leader());
    b.stop().await.unwrap();
}

/// Storage that fails every request while `down` is set.
struct Flaky {
    inner: Arc<MockStorage>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Storage for Flaky {
    fn get<'a>(&'a self, key: &'a str) -> s3lect::storage::BoxFuture<'a, Result<(Vec<u8>, String), s3lect::StorageError>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err(s3lect::StorageError::Unavailable("down".into())) });
        }
        self.inner.get(key)
    }
    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        data: &'a [u8],
        condition: s3lect::Condition<'a>,
    ) -> s3lect::storage::BoxFuture<'a, Result<String, s3lect::StorageError>> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async { Err(s3lect::StorageError::Unavailable("down".into())) });
        }
        self.inner.put_if_match(key, data, condition)
    }
    fn delete<'a>(&'a self, key: &'a str) -> s3lect::storage::BoxFuture<'a, Result<(), s3lect::StorageError>> {
        self.inner.delete(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaders_task_is_cancelled_before_its_lease_can_end() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storage = Arc::new(Flaky { inner: Arc::new(MockStorage::new_mock().unwrap()), down: down.clone() });
    let a = Elector::new(config("a", "g/task.json"), storage.clone()).unwrap();
    // The margin must fit between renewals: renew deadline 600 ms − frequent 200 ms.
    assert!(matches!(a.lead(Duration::from_millis(400), |_| async {}).await, Err(Error::Config(_))));
    a.start().await.unwrap();
    let margin = Duration::from_millis(150);
    let task = {
        let (a, watcher) = (a.clone(), a.clone());
        tokio::spawn(async move {
            a.lead(margin, |cancelled| async move {
                cancelled.cancelled().await;
                // When the token fires, the lease still runs: at least most of the margin.
                watcher.status().lease_remaining_ms
            })
            .await
        })
    };
    a.wait_for_leadership().await.unwrap();
    // Healthy renewals never fire the token: watch five of them go by.
    let (mut etags, deadline) = (vec![], Instant::now() + Duration::from_secs(10));
    while etags.len() < 5 {
        assert!(Instant::now() < deadline, "only {} renewals in 10 s", etags.len());
        let (_, etag) = storage.get("g/task.json").await.unwrap();
        if etags.last() != Some(&etag) {
            etags.push(etag);
        }
        assert!(!task.is_finished(), "cancelled while renewals succeeded ({} seen)", etags.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let left = tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    let left = left.expect("still leading when the token fired");
    println!("token fired with {left} ms of lease left (margin {margin:?})");
    assert!((100..=150).contains(&left), "{left} ms left");
    a.stop().await.ok();
}
