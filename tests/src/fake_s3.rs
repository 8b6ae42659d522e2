//! A tiny HTTP endpoint of our own that answers every request with a fixed status, headers and
//! body: a server that ignores conditional headers, or one that answers 409/503/403.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A client configuration for a fake endpoint (credentials are never checked there).
pub fn config_for(endpoint: String) -> s3lect::S3Config {
    s3lect::S3Config {
        bucket: "b".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        path_style: true,
        access_key_id: "k".into(),
        secret_access_key: "s".into(),
        session_token: None,
        ca_cert_pem: None,
        request_timeout: std::time::Duration::from_secs(5),
    }
}

pub struct FakeS3 {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU32>,
}

/// Serves `status` with `body` (and an ETag header) for every request, until the test ends.
pub async fn fake_s3(status: u16, body: &'static str) -> FakeS3 {
    fake_s3_with(status, vec![], body).await
}

/// The same, with `headers` on every answer too (a redirect's `Location`, say).
pub async fn fake_s3_with(status: u16, headers: Vec<(&'static str, String)>, body: &'static str) -> FakeS3 {
    let requests = Arc::new(AtomicU32::new(0));
    let counter = requests.clone();
    let addr = super::serve(move |_req: hyper::Request<Incoming>| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let mut resp = hyper::Response::builder().status(status).header("ETag", format!("\"fake-{n}\""));
        for (name, value) in &headers {
            resp = resp.header(*name, value);
        }
        let resp = resp.body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap();
        async move { Ok::<_, std::convert::Infallible>(resp) }
    })
    .await;
    FakeS3 { addr, requests }
}
