//! Fault tests with real processes and a real SeaweedFS server. Each test says what it proves;
//! each checks the hooks' transition log (or the lease arithmetic) for overlapping leadership.

mod common;

use common::fake_s3::fake_s3;
use common::nodes::*;
use common::{eventually, record, seaweed, storage, wait_record};
use s3lect::Condition;
use s3lect::{LeaderRecord, Storage};
use std::time::{Duration, Instant};

const RENEW_DEADLINE_NS: u128 = 2_500_000_000;

/// Proves: a leader frozen (SIGSTOP) past its lease is replaced; when it thaws it knows at
/// once that it no longer leads (health endpoint 404 before its next step), runs its lose
/// hook, and never writes over the new leader. Its lease ended before the new leader acquired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_frozen_past_its_lease_steps_down_on_thaw_and_never_overwrites_the_new_leader() {
    let server = seaweed("fault-sigstop").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let pki = s3lect::tls::generate_pki(&["127.0.0.1"]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.server_cert_pem).unwrap();
    std::fs::write(&key, &pki.server_key_pem).unwrap();
    let lock = "group/stop.json";
    let ports: Vec<u16> = (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let nodes: Vec<Node> = ["f1", "f2"]
        .iter()
        .zip(&ports)
        .map(|(id, port)| {
            let bind = format!("127.0.0.1:{port}");
            start(
                &server,
                id,
                lock,
                dir.path(),
                &["--health-bind", &bind, "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
            )
        })
        .collect();
    let tls = s3lect::tls::client_config(Some(pki.ca_cert_pem.as_bytes()), false).unwrap();
    let https = reqwest::Client::builder().tls_backend_preconfigured(tls).build().unwrap();
    let first = wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.term == 1 && !r.leader_id.is_empty()).await;
    let li = nodes.iter().position(|n| n.id == first.leader_id).unwrap();
    let health = format!("https://127.0.0.1:{}/health/leadership", ports[li]);
    eventually("the leader's health endpoint", Duration::from_secs(5), || async {
        https.get(&health).send().await.ok().filter(|r| r.status() == 200)
    })
    .await;

    nodes[li].signal(libc::SIGSTOP);
    // Follow every version until the takeover: a write already sent may still land after the
    // freeze, and the last one the frozen leader made is what its lease is measured from. The
    // takeover comes a full leader timeout after it, so 20 ms polling sees every version.
    let mut last_write: Option<LeaderRecord> = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        assert!(Instant::now() < deadline, "no takeover while the leader was frozen");
        match record(&s3, lock).await {
            Some(r) if r.leader_id == first.leader_id => last_write = Some(r),
            Some(r) if r.term == 2 && !r.leader_id.is_empty() => break r,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let last_write = last_write.expect("the frozen leader's last write was seen");
    assert_ne!(second.leader_id, first.leader_id);

    nodes[li].signal(libc::SIGCONT);
    let resp = https.get(&health).send().await.expect("the thawed process answers");
    assert_eq!(resp.status(), 404, "the thawed leader knows at once that its lease is over");
    eventually("the thawed leader's lose hook", Duration::from_secs(10), || async {
        nodes[li].transitions().iter().any(|t| t.0 == "lose" && t.1 == 1).then_some(())
    })
    .await;
    // The new leader keeps the object: renewals go on under its name, term 2.
    let (_, e) = s3.get(lock).await.unwrap();
    eventually("two renewals by the new leader", Duration::from_secs(10), || async {
        let (d, e2) = s3.get(lock).await.ok()?;
        let r = LeaderRecord::parse(&d).ok()?;
        assert_eq!((r.leader_id.as_str(), r.term), (second.leader_id.as_str(), 2), "the thawed leader wrote over the new one");
        (e2 != e).then_some(())
    })
    .await;
    // Safety arithmetic: the frozen leader's belief ended renew_deadline after its last write
    // was made; the new leader acquired later (both timestamps from this machine's clock).
    let acquired = nodes.iter().find(|n| n.id == second.leader_id).unwrap().transitions()[0].2;
    let belief_end = last_write.last_updated_unix_ns() as u128 + RENEW_DEADLINE_NS;
    assert!(acquired > belief_end, "new leader acquired {} ms before the old lease ended", (belief_end - acquired) / 1_000_000);
}

/// Proves: when S3 stops answering for longer than the lease, the leader fences itself on
/// time (lose hook within the renew deadline of its last renewal, give or take a step), nobody
/// leads during the outage, and after it one leader is elected with no overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_s3_outage_the_leader_fences_itself_on_time_and_the_election_resumes_after() {
    let server = seaweed("fault-outage").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/outage.json";
    let nodes: Vec<Node> = ["o1", "o2"].iter().map(|id| start(&server, id, lock, dir.path(), &[])).collect();
    let first = wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.term == 1 && !r.leader_id.is_empty()).await;
    let leader = nodes.iter().find(|n| n.id == first.leader_id).unwrap();

    server.suspend();
    let frozen_at = now_ns();
    let lost = eventually("the leader fencing itself", Duration::from_secs(10), || async {
        leader.transitions().iter().find(|t| t.0 == "lose").map(|t| t.2)
    })
    .await;
    let fenced_after_ms = (lost - frozen_at) / 1_000_000;
    println!("leader fenced itself {fenced_after_ms} ms after S3 froze");
    // Its last renewal was sent at most a frequent interval before the freeze.
    assert!(fenced_after_ms <= 2_500 + 500, "fenced {fenced_after_ms} ms after the freeze");
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage lasts longer than the lease
    server.resume();
    let back =
        wait_record(&s3, lock, "a leader after the outage", Duration::from_secs(30), |r| r.term >= 2 && !r.leader_id.is_empty()).await;
    eventually("its acquire hook", Duration::from_secs(5), || async {
        nodes
            .iter()
            .find(|n| n.id == back.leader_id)
            .unwrap()
            .transitions()
            .iter()
            .any(|t| t.0 == "acquire" && t.1 == back.term)
            .then_some(())
    })
    .await;
    assert_no_overlapping_leadership(&nodes);
}

/// Proves: a corrupt, an oversized and a deleted lock object each make the leader step down
/// (its renewal fails), are reported, and are replaced by a valid record naming a new leader,
/// with no overlapping leadership at any point. (Destroying the record destroys the term
/// history: a node that never saw it numbers from what it remembers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_oversized_and_deleted_lock_objects_are_replaced_without_overlap() {
    let server = seaweed("fault-objects").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    let lock = "group/objects.json";
    let nodes: Vec<Node> = ["c1", "c2", "c3"].iter().map(|id| start(&server, id, lock, dir.path(), &[])).collect();
    wait_record(&s3, lock, "a leader", Duration::from_secs(60), |r| r.term == 1 && !r.leader_id.is_empty()).await;
    let mut term = 1;
    let oversized = vec![b'x'; 70 * 1024];
    for (what, bytes) in [("corrupt", Some(b"{\"leaderID\": broken".to_vec())), ("oversized", Some(oversized)), ("deleted", None)] {
        let (_, etag) = s3.get(lock).await.unwrap();
        match &bytes {
            Some(b) => {
                s3.put_if_match(lock, b, Condition::Matches(&etag)).await.unwrap();
                let st = output(s3lect(&server, "status", "x", lock));
                assert_eq!(st.status.code(), Some(1), "status reports the {what} object as an error");
                assert!(String::from_utf8_lossy(&st.stderr).contains("lock object"), "{}", String::from_utf8_lossy(&st.stderr));
            }
            None => s3.delete(lock).await.unwrap(),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let replaced = loop {
            if let Some(r) = record(&s3, lock).await.filter(|r| !r.leader_id.is_empty()) {
                break r;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = nodes.iter().map(|n| format!("--- {}\n{}", n.id, n.stderr())).collect();
                panic!("no new leader after the {what} object\n{}", logs.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!("{what} object replaced: term {} -> {} by {}", term, replaced.term, replaced.leader_id);
        assert!(replaced.term >= 1);
        term = replaced.term;
    }
    eventually("acquire hooks of the last term", Duration::from_secs(5), || async {
        nodes.iter().any(|n| n.transitions().iter().any(|t| t.0 == "acquire" && t.1 == term)).then_some(())
    })
    .await;
    assert_no_overlap_after_record_destroyed(&nodes);
}

/// Proves: an acquire hook that fails, hangs past the hook timeout, or crashes makes the node
/// resign (resigned record), and another node leads instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_hooks_that_fail_hang_or_crash_resign_and_another_node_leads() {
    let server = seaweed("fault-hooks").await;
    let s3 = storage(&server);
    let dir = tempfile::tempdir().unwrap();
    for (case, hook) in [("fails", "exit 3"), ("hangs", "sleep 30"), ("crashes", "kill -9 $$")] {
        let lock = format!("group/hook-{case}.json");
        let out = dir.path().join(format!("bad-{case}.stderr"));
        let mut bad = s3lect(&server, "run", "bad", &lock)
            .args(TIMINGS)
            .args(["--on-acquire", hook, "--hook-timeout-ms", "1000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let resigned = wait_record(&s3, &lock, &format!("the resignation after a hook that {case}"), Duration::from_secs(60), |r| {
            r.is_resigned() && r.term == 1
        })
        .await;
        assert_eq!(resigned.term, 1);
        if case == "hangs" {
            assert!(started.elapsed() >= Duration::from_millis(1000), "the hook was given its full timeout");
        }
        let good = start(&server, "good", &lock, dir.path(), &[]);
        wait_record(&s3, &lock, "the other node leading", Duration::from_secs(20), |r| r.leader_id == "good" && r.term == 2).await;
        let _ = bad.kill();
        let _ = bad.wait();
        let log = std::fs::read_to_string(&out).unwrap();
        assert!(log.contains("acquire hook failed"), "the failure is logged: {log}");
        drop(good);
    }
}

/// Proves: a wrong bucket and a wrong region each end in one clear line naming the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bucket_and_wrong_region_are_named() {
    let server = seaweed("fault-config").await;
    let out = output(s3lect_at(&server.endpoint, "no-such-bucket", "run", "a", "group/x.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("bucket \"no-such-bucket\" does not exist"), "{stderr}");
    // AWS's answer to a request signed for the wrong region, from our own endpoint.
    let aws = fake_s3(
        400,
        "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'eu-west-9' is wrong; expecting 'us-east-1'</Message></Error>",
    )
    .await;
    let out = output(s3lect_at(&format!("http://{}", aws.addr), "b", "run", "a", "group/x.json").args(["--region", "eu-west-9"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let line: Vec<&str> = stderr.lines().filter(|l| l.starts_with("s3lect: error:")).collect();
    assert_eq!(line.len(), 1, "{stderr}");
    assert!(line[0].contains("region 'eu-west-9' is wrong; expecting 'us-east-1'"), "{}", line[0]);
}
