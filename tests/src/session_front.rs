//! A front for SeaweedFS that understands temporary credentials: SeaweedFS rejects session
//! tokens it did not issue itself, so this proxy checks that each request carries the token the
//! credentials stand-in issued for its access key (`session-<key>`), then re-signs it with the
//! same key and no token and forwards it. It notes which access key signed each request. For
//! credentials from an STS it does not know the secrets of (moto's), it can instead accept any
//! request carrying a session token and re-sign it with SeaweedFS's own key.
#![allow(dead_code)]

use super::fault_proxy::forward;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use s3lect::S3Config;
use s3lect_s3::Bucket;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct SessionFront {
    pub addr: SocketAddr,
    /// Access keys that signed requests, each with the token it was issued.
    pub keys: Arc<Mutex<BTreeSet<String>>>,
}

impl SessionFront {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// `upstream` is SeaweedFS, `base` its client configuration, `keys` the (key, secret) pairs
/// SeaweedFS accepts.
pub async fn session_front(upstream: SocketAddr, base: S3Config, keys: &'static [(&'static str, &'static str)]) -> SessionFront {
    front(upstream, base, Tokens::Issued(keys)).await
}

/// Accepts any access key that comes with a session token, re-signing as `base`'s own key.
pub async fn any_session_front(upstream: SocketAddr, base: S3Config) -> SessionFront {
    front(upstream, base, Tokens::Any).await
}

#[derive(Clone, Copy)]
enum Tokens {
    /// Only the stand-in's keys, each with `session-<key>`.
    Issued(&'static [(&'static str, &'static str)]),
    Any,
}

async fn front(upstream: SocketAddr, base: S3Config, tokens: Tokens) -> SessionFront {
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let keys = seen.clone();
    let addr = super::serve(move |req: hyper::Request<Incoming>| {
        let (seen, base) = (keys.clone(), base.clone());
        async move { handle(upstream, base, tokens, seen, req).await }
    })
    .await;
    SessionFront { addr, keys: seen }
}

fn refuse(code: &str) -> hyper::Response<Full<Bytes>> {
    let xml = format!("<Error><Code>{code}</Code><Message>refused by the session front</Message></Error>");
    hyper::Response::builder().status(403).body(Full::new(Bytes::from(xml))).unwrap()
}

async fn handle(
    upstream: SocketAddr,
    base: S3Config,
    tokens: Tokens,
    seen: Arc<Mutex<BTreeSet<String>>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let auth = header("authorization").unwrap_or_default();
    let Some(key) = auth.split("Credential=").nth(1).and_then(|c| c.split('/').next()).map(str::to_string) else {
        return Ok(refuse("MissingSecurityHeader"));
    };
    let token = header("x-amz-security-token").unwrap_or_default();
    let (key, secret) = match tokens {
        Tokens::Issued(keys) => {
            let Some((_, secret)) = keys.iter().find(|(k, _)| *k == key) else { return Ok(refuse("InvalidAccessKeyId")) };
            if token != format!("session-{key}") {
                return Ok(refuse("InvalidToken"));
            }
            seen.lock().unwrap().insert(key.clone());
            (key, secret.to_string())
        }
        Tokens::Any if token.is_empty() => return Ok(refuse("InvalidToken")),
        Tokens::Any => {
            seen.lock().unwrap().insert(key);
            (base.access_key_id.clone(), base.secret_access_key.clone())
        }
    };
    // Re-sign for SeaweedFS: the same request, a key it knows, no token.
    let bucket = Bucket::new(S3Config { access_key_id: key, secret_access_key: secret, session_token: None, ..base.clone() }).unwrap();
    let prefix = format!("/{}/", base.bucket);
    let path = parts.uri.path();
    let object = percent_decode(path.strip_prefix(&prefix).unwrap_or_default());
    let now = SystemTime::now();
    let signed = match parts.method.as_str() {
        "GET" => bucket.get(&object, now),
        "DELETE" => bucket.delete(&object, now),
        "PUT" => bucket.put_if_match(&object, &body, header("if-match").as_deref(), now),
        _ => return Ok(refuse("NotImplemented")),
    }
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut out = hyper::Request::builder().method(parts.method.clone()).uri(&signed.path);
    for (k, v) in &signed.headers {
        out = out.header(k, v);
    }
    let (out_parts, _) = out.body(()).unwrap().into_parts();
    let (status, headers, reply) = forward(upstream, out_parts, Bytes::from(signed.body)).await?;
    let mut resp = hyper::Response::builder().status(status);
    for (k, v) in headers.iter().filter(|(k, _)| *k != http::header::TRANSFER_ENCODING && *k != http::header::CONTENT_LENGTH) {
        resp = resp.header(k, v);
    }
    Ok(resp.body(Full::new(reply)).unwrap())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
