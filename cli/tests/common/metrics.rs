//! Reading a node's Prometheus endpoint (`--metrics-bind 127.0.0.1:0`) in the tests.

use s3lect_cli::cluster::Node;
use s3lect_testkit::eventually;
use std::time::Duration;

/// The address a node logged for its metrics endpoint (it binds port 0).
pub async fn metrics_addr(node: &Node) -> String {
    eventually("the metrics endpoint", Duration::from_secs(20), || async {
        let log = node.stderr();
        let line = log.lines().find(|l| l.contains("metrics endpoint listening"))?;
        Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_string())
    })
    .await
}

/// One plain HTTP/1.0 GET of /metrics (no client library needed for text over loopback).
pub async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// The value of the sample whose line starts with `series` (name and labels).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
