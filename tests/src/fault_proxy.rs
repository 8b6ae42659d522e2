//! An HTTP proxy between S3 clients and a real S3 server that injects faults: answers of its
//! own (500, 503, 409), writes forwarded and applied whose reply is then cut, delays, bodies cut
//! short, connections reset before forwarding, and a server that refuses quoted If-Match etags
//! (Ceph RGW 16's quirk). Requests are forwarded byte for byte, Host header included, so SigV4
//! signatures made for the proxy's address still verify upstream.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Pass,
    /// Answer this status and S3 error code without forwarding.
    Answer(u16, &'static str),
    /// Forward (the server applies it), then close the connection instead of replying.
    ApplyThenCut,
    /// Wait, then forward.
    Delay(Duration),
    /// Forward, then send only the first half of the reply body and reset.
    Truncate,
    /// Close the connection without forwarding.
    Reset,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Answer(500, _) => "500",
            Fault::Answer(503, _) => "503",
            Fault::Answer(409, _) => "409",
            Fault::Answer(..) => "answer",
            Fault::ApplyThenCut => "applied, reply cut",
            Fault::Delay(_) => "delayed",
            Fault::Truncate => "truncated body",
            Fault::Reset => "reset",
        }
    }
}

/// Picks the fault for a request: method, path and headers are what it sees.
pub type Plan = Arc<dyn Fn(&http::request::Parts) -> Fault + Send + Sync>;

pub struct FaultProxy {
    pub addr: SocketAddr,
    /// Requests by the fault applied to them.
    pub counts: Arc<Mutex<BTreeMap<&'static str, u32>>>,
    /// Refuse If-Match etags in quotes with 412, as Ceph RGW 16 does (unquoted ones pass).
    pub ceph_quirk: Arc<std::sync::atomic::AtomicBool>,
}

impl FaultProxy {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u32> {
        self.counts.lock().unwrap().clone()
    }
}

/// Starts a proxy to `upstream` (host:port) on a free loopback port.
pub async fn fault_proxy(upstream: SocketAddr, plan: Plan) -> FaultProxy {
    let counts: Arc<Mutex<BTreeMap<&'static str, u32>>> = Arc::default();
    let ceph_quirk = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (c, q) = (counts.clone(), ceph_quirk.clone());
    let addr = super::serve(move |req: hyper::Request<Incoming>| {
        let (plan, counts, quirk) = (plan.clone(), c.clone(), q.clone());
        async move { handle(upstream, req, plan, counts, quirk).await }
    })
    .await;
    FaultProxy { addr, counts, ceph_quirk }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|e: Infallible| match e {}).boxed()
}

async fn handle(
    upstream: SocketAddr,
    req: hyper::Request<Incoming>,
    plan: Plan,
    counts: Arc<Mutex<BTreeMap<&'static str, u32>>>,
    quirk: Arc<std::sync::atomic::AtomicBool>,
) -> Result<hyper::Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let quoted = parts.headers.get("if-match").is_some_and(|v| v.as_bytes().starts_with(b"\""));
    let fault =
        if quirk.load(std::sync::atomic::Ordering::SeqCst) && quoted { Fault::Answer(412, "PreconditionFailed") } else { plan(&parts) };
    *counts.lock().unwrap().entry(fault.name()).or_default() += 1;
    let answer = |status: u16, code: &str| {
        let xml = format!("<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>");
        Ok(hyper::Response::builder().status(status).body(full(Bytes::from(xml))).unwrap())
    };
    match fault {
        Fault::Answer(status, code) => return answer(status, code),
        Fault::Reset => return Err(std::io::Error::other("reset by the fault proxy")),
        Fault::Delay(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let (status, headers, reply) = forward(upstream, parts, body).await?;
    match fault {
        Fault::ApplyThenCut => Err(std::io::Error::other("reply cut by the fault proxy")),
        Fault::Truncate => {
            let half = reply.slice(..reply.len() / 2);
            let frames: Vec<Result<Frame<Bytes>, std::io::Error>> =
                vec![Ok(Frame::data(half)), Err(std::io::Error::other("body cut by the fault proxy"))];
            let mut resp = hyper::Response::builder().status(status);
            for (k, v) in headers.iter().filter(|(k, _)| *k != http::header::TRANSFER_ENCODING) {
                resp = resp.header(k, v);
            }
            // Announce the whole length, deliver half: the client sees a short body.
            Ok(resp.body(StreamBody::new(futures_stream(frames)).boxed()).unwrap())
        }
        _ => {
            let mut resp = hyper::Response::builder().status(status);
            for (k, v) in headers.iter().filter(|(k, _)| *k != http::header::TRANSFER_ENCODING && *k != http::header::CONTENT_LENGTH) {
                resp = resp.header(k, v);
            }
            Ok(resp.body(full(reply)).unwrap())
        }
    }
}

pub async fn forward(
    upstream: SocketAddr,
    parts: http::request::Parts,
    body: Bytes,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), std::io::Error> {
    let tcp = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = hyper::Request::from_parts(parts, Full::new(body));
    let resp = sender.send_request(req).await.map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    Ok((parts.status, parts.headers, bytes))
}

/// A stream over ready frames, without pulling in a stream crate.
fn futures_stream(
    frames: Vec<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync + 'static {
    struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, std::io::Error>>);
    impl futures_core::Stream for Frames {
        type Item = Result<Frame<Bytes>, std::io::Error>;
        fn poll_next(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
    Frames(frames.into())
}
