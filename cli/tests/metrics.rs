//! `--metrics-bind`: Prometheus text scraped from real `s3lect run` processes during an
//! election and across a failover.

mod common;

use common::metrics::{metrics_addr, sample, scrape};
use common::nodes::*;
use common::{eventually, seaweed};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_an_election_and_a_failover() {
    let server = seaweed("metrics").await;
    let dir = tempfile::tempdir().unwrap();
    let lock = "metrics/leader.json";
    let args = ["--metrics-bind", "127.0.0.1:0"];
    let mut a = start(&server, "a", lock, dir.path(), &args);
    let a_addr = metrics_addr(&a).await;
    let leader = format!("s3lect_is_leader{{lock=\"{lock}\"}}");
    eventually("a to lead", Duration::from_secs(20), || async { (sample(&scrape(&a_addr).await, &leader) == Some(1.0)).then_some(()) })
        .await;
    let b = start(&server, "b", lock, dir.path(), &args);
    let b_addr = metrics_addr(&b).await;
    eventually("b to follow", Duration::from_secs(20), || async {
        let text = scrape(&b_addr).await;
        (sample(&text, &leader) == Some(0.0) && sample(&text, "s3lect_s3_requests_total{operation=\"get\",outcome=\"ok\"}") > Some(0.0))
            .then_some(())
    })
    .await;
    let renewed = "s3lect_s3_requests_total{operation=\"put\",outcome=\"ok\"}";
    let text = eventually("a's first renewal", Duration::from_secs(10), || async {
        let text = scrape(&a_addr).await;
        (sample(&text, renewed) >= Some(2.0)).then_some(text)
    })
    .await;
    println!(
        "leader a, before the failover:\n{}",
        text.lines().filter(|l| !l.starts_with('#') && !l.contains("_bucket")).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(sample(&text, &format!("s3lect_term{{lock=\"{lock}\"}}")), Some(1.0));
    assert!(sample(&text, &format!("s3lect_lease_remaining_seconds{{lock=\"{lock}\"}}")) > Some(0.0), "{text}");
    assert!(sample(&text, "s3lect_hook_duration_seconds_count{hook=\"acquire\"}") == Some(1.0), "{text}");
    // Not in use here: a leader reads nothing to check it by, and these short timings leave no
    // room for its assumed skew anyway (servers.rs sees the gauge at 1 where they do).
    assert_eq!(sample(&text, &format!("s3lect_server_clock_in_use{{lock=\"{lock}\"}}")), Some(0.0), "{text}");
    assert!(text.contains("s3lect_s3_request_duration_seconds_bucket{"), "{text}");
    a.kill9();
    let text = eventually("b to take over", Duration::from_secs(20), || async {
        let text = scrape(&b_addr).await;
        (sample(&text, &leader) == Some(1.0)).then_some(text)
    })
    .await;
    println!(
        "leader b, after the failover:\n{}",
        text.lines().filter(|l| !l.starts_with('#') && !l.contains("_bucket")).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(sample(&text, &format!("s3lect_leadership_transitions_total{{lock=\"{lock}\",change=\"acquired\"}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("s3lect_term{{lock=\"{lock}\"}}")), Some(2.0));
}
