//! Reading a node's Prometheus endpoint in the tests: the shared reader, failing the test
//! where the demo reports an error.

use s3lect_cli::cluster::Node;
use std::time::Duration;

pub use s3lect_cli::node_metrics::sample;

/// The address a node logged for its metrics endpoint (it binds port 0).
pub async fn metrics_addr(node: &Node) -> String {
    s3lect_cli::node_metrics::metrics_addr(node, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no metrics endpoint logged within 20 s:\n{}", node.stderr()))
}

/// One GET of /metrics.
pub async fn scrape(addr: &str) -> String {
    s3lect_cli::node_metrics::scrape(addr).await.unwrap()
}
