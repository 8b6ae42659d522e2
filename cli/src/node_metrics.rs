//! Reading a running node's Prometheus endpoint (`--metrics-bind 127.0.0.1:0`): what the demo
//! and the tests learn of a node that its lock object does not say (whom it probes).

use crate::cluster::Node;
use std::time::Duration;

/// The address a node logged for its metrics endpoint (it binds port 0), once it has.
pub async fn metrics_addr(node: &Node, limit: Duration) -> Option<String> {
    crate::wait::until(limit, Duration::from_millis(50), || async {
        let log = node.stderr();
        let line = log.lines().find(|l| l.contains("metrics endpoint listening"))?;
        Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_string())
    })
    .await
}

/// One plain HTTP/1.0 GET of /metrics (no client library needed for text over loopback).
pub async fn scrape(addr: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("metrics at {addr}: {e}"))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: metrics\r\n\r\n").await.map_err(|e| format!("metrics at {addr}: {e}"))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.map_err(|e| format!("metrics at {addr}: {e}"))?;
    if !(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")) {
        return Err(format!("metrics at {addr} answered: {reply}"));
    }
    Ok(reply.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

/// The value of the sample whose line starts with `series` (name and labels).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
