//! Local stand-ins on 127.0.0.1 for where AWS workloads get credentials: the EC2 instance
//! metadata service (IMDSv2: a session token, then the role's credentials) and the ECS / EKS Pod
//! Identity container credentials endpoint. Credentials rotate: the first set is served for
//! `rotate_after`, then the second, each announced as expiring shortly after its successor
//! takes over — so a client that refreshes before expiry moves from one to the other.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub const ROLE: &str = "s3lect-test-role";
pub const IMDS_TOKEN: &str = "imds-session-token";

pub struct StandIn {
    pub addr: SocketAddr,
    /// Credential documents served, by access key.
    pub served: Arc<Mutex<Vec<String>>>,
    /// IMDS requests that came without a session token (IMDSv1): must stay 0.
    pub unauthenticated: Arc<AtomicU32>,
}

impl StandIn {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Serves `keys[0]` until `rotate_after` has passed, then `keys[1]`.
pub async fn credentials_stand_in(keys: [(&'static str, &'static str); 2], rotate_after: Duration) -> StandIn {
    let served: Arc<Mutex<Vec<String>>> = Arc::default();
    let unauthenticated = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let (s, u) = (served.clone(), unauthenticated.clone());
    let addr = super::serve(move |req: hyper::Request<Incoming>| {
        let (s, u) = (s.clone(), u.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(&req, keys, rotate_after, started, &s, &u)) }
    })
    .await;
    StandIn { addr, served, unauthenticated }
}

fn answer(
    req: &hyper::Request<Incoming>,
    keys: [(&'static str, &'static str); 2],
    rotate_after: Duration,
    started: Instant,
    served: &Mutex<Vec<String>>,
    unauthenticated: &AtomicU32,
) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, body: String| hyper::Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap();
    let path = req.uri().path();
    let imds_path = path.starts_with("/latest/meta-data/");
    if path == "/latest/api/token" {
        if req.method() != hyper::Method::PUT {
            return reply(405, String::new());
        }
        let ttl =
            req.headers().get("x-aws-ec2-metadata-token-ttl-seconds").cloned().unwrap_or(hyper::header::HeaderValue::from_static("21600"));
        let mut resp = reply(200, IMDS_TOKEN.into());
        resp.headers_mut().insert("x-aws-ec2-metadata-token-ttl-seconds", ttl);
        return resp;
    }
    if imds_path && req.headers().get("x-aws-ec2-metadata-token").is_none_or(|t| t != IMDS_TOKEN) {
        unauthenticated.fetch_add(1, Ordering::SeqCst);
        return reply(401, String::new());
    }
    match path {
        "/latest/meta-data/iam/security-credentials/" | "/latest/meta-data/iam/security-credentials" => reply(200, ROLE.into()),
        p if p == format!("/latest/meta-data/iam/security-credentials/{ROLE}") || p == "/container-credentials" => {
            let elapsed = started.elapsed();
            let (i, expires_in) = if elapsed < rotate_after {
                // Expires a little after the rotation, plus the client's refresh margin (5 min).
                (0, rotate_after - elapsed + Duration::from_secs(300) + Duration::from_secs(2))
            } else {
                (1, Duration::from_secs(3600))
            };
            let (key, secret) = keys[i];
            served.lock().unwrap().push(key.to_string());
            let expiration =
                time::OffsetDateTime::from(SystemTime::now() + expires_in).format(&time::format_description::well_known::Rfc3339).unwrap();
            reply(
                200,
                format!(
                    r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"session-{key}","Expiration":"{expiration}","LastUpdated":"{expiration}"}}"#
                ),
            )
        }
        _ => reply(404, String::new()),
    }
}
