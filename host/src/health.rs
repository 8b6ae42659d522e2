//! The peer health endpoint: a standalone HTTPS server (rustls) and a handler users mount in
//! their own HTTP server. Answers come from the elector's published snapshot, never from the
//! election itself, so a slow S3 call cannot delay them.

use crate::admission::{Admission, Limits, RateLimitedWarning, accept_backoff};
use crate::elector::Elector;
use crate::error::{Error, Result};
use crate::tls;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The leadership endpoint as a plain function of a request: mount it at the configured
/// `peer_health_path` in hyper, axum or any `http`-based server.
#[derive(Clone)]
pub struct LeadershipHandler {
    elector: Elector,
}

/// Go s3lect's `NewLeadershipHandler`.
pub fn leadership_handler(elector: Elector) -> LeadershipHandler {
    LeadershipHandler { elector }
}

/// Longest a watch is held, whatever the client asks.
const MAX_WATCH: std::time::Duration = std::time::Duration::from_secs(60);

/// `?wait=MS&etag=HEX` of a watching probe.
fn watch_params(query: Option<&str>) -> Option<(std::time::Duration, String)> {
    let (mut wait, mut etag) = (None, None);
    for pair in query?.split('&') {
        match pair.split_once('=') {
            Some(("wait", v)) => wait = v.parse::<u64>().ok(),
            Some(("etag", v)) => etag = unhex(v),
            _ => {}
        }
    }
    Some((std::time::Duration::from_millis(wait?).min(MAX_WATCH), etag?))
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

impl LeadershipHandler {
    /// Like [`LeadershipHandler::respond`], but honours a watching probe
    /// (`?wait=MS&etag=HEX`): the answer is held until the leader's etag differs from `etag`,
    /// leadership ends, or `wait` passes. Followers then learn of a renewal, a resignation or a
    /// crash (the connection breaks) at once, without polling S3.
    pub async fn respond_watching<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() == Method::GET
            && let Some((wait, etag)) = watch_params(req.uri().query())
        {
            let _ = self.elector.wait_for_health_change(&etag, wait).await;
        }
        self.respond(req)
    }

    /// 200 + the leader's record, term, etag and remaining lease when leader; 404 when not;
    /// 405 for anything but GET and HEAD.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, body: Vec<u8>, json: bool| {
            let mut r = Response::builder().status(status).header(header::CACHE_CONTROL, "no-store");
            if json {
                r = r.header(header::CONTENT_TYPE, "application/json");
            }
            if status == StatusCode::METHOD_NOT_ALLOWED {
                r = r.header(header::ALLOW, "GET, HEAD");
            }
            r.body(Full::new(Bytes::from(body))).expect("static response parts are valid")
        };
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, b"method not allowed\n".to_vec(), false);
        }
        match self.elector.health_reply() {
            Some(body) => reply(StatusCode::OK, if req.method() == Method::HEAD { vec![] } else { body }, true),
            None => reply(StatusCode::NOT_FOUND, b"not leader\n".to_vec(), false),
        }
    }
}

/// Go s3lect's `HealthServerConfig`, with the certificate as PEM.
pub struct HealthServerConfig {
    /// `host:port` to listen on (port 0: any free port).
    pub bind_address: String,
    /// The endpoint's certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Its private key, PEM.
    pub key_pem: Vec<u8>,
    /// The elector whose leadership the endpoint reports.
    pub elector: Elector,
}

/// A dedicated HTTPS server for the leadership endpoint.
pub struct HealthServer {
    bind_address: String,
    tls: Arc<rustls::ServerConfig>,
    handler: LeadershipHandler,
    path: String,
    shutdown: watch::Sender<bool>,
    limits: Limits,
}

impl HealthServer {
    /// Checks the certificate and key; [`HealthServer::start`] listens.
    pub fn new(config: HealthServerConfig) -> Result<HealthServer> {
        let tls = tls::server_config(&config.cert_pem, &config.key_pem).map_err(Error::Tls)?;
        let path = config.elector.config().peer_health_path;
        Ok(HealthServer {
            bind_address: config.bind_address,
            tls: Arc::new(tls),
            handler: leadership_handler(config.elector),
            path,
            shutdown: watch::channel(false).0,
            limits: Limits::default(),
        })
    }

    /// Replaces the connection limits (before `start`).
    pub fn with_limits(mut self, limits: Limits) -> HealthServer {
        self.limits = limits;
        self
    }

    /// Binds and serves in the background; returns the bound address (port 0 picks a free one).
    pub async fn start(&self) -> Result<SocketAddr> {
        let listener = TcpListener::bind(&self.bind_address)
            .await
            .map_err(|e| Error::io(format!("binding the health endpoint to {}", self.bind_address), e))?;
        self.serve(listener)
    }

    /// Serves on a socket bound already (when its address had to be known before the elector,
    /// to go into the records it writes); `bind_address` is then only for messages.
    pub fn start_on(&self, listener: std::net::TcpListener) -> Result<SocketAddr> {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map_err(|e| Error::io(format!("serving the health endpoint on {}", self.bind_address), e))?;
        self.serve(listener)
    }

    fn serve(&self, listener: TcpListener) -> Result<SocketAddr> {
        let addr = listener.local_addr().map_err(|e| Error::io("reading the health endpoint's address", e))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let (handler, path) = (self.handler.clone(), self.path.clone());
        let mut stop = self.shutdown.subscribe();
        let admission = Admission::new(self.limits.clone());
        tokio::spawn(async move {
            let mut failures = 0;
            let mut accept_warning = RateLimitedWarning::new("health endpoint accept failed", std::time::Duration::from_secs(10));
            let mut refused_warning =
                RateLimitedWarning::new("health endpoint at its connection limit", std::time::Duration::from_secs(10));
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = stop.changed() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            accept_warning.warn(&e);
                            let pause = accept_backoff(failures);
                            failures = failures.saturating_add(1);
                            tokio::select! {
                                _ = stop.changed() => return,
                                _ = tokio::time::sleep(pause) => continue,
                            }
                        }
                    },
                };
                failures = 0;
                // Over a cap: close at once, so the backlog does not fill with waiting clients.
                let Some(ticket) = admission.admit(peer.ip()) else {
                    refused_warning.warn(&peer.ip());
                    continue;
                };
                let (acceptor, handler, path, limits) = (acceptor.clone(), handler.clone(), path.clone(), admission.limits().clone());
                tokio::spawn(async move {
                    let _ticket = ticket;
                    // A client that never finishes its handshake must not hold a slot for long.
                    let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    };
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (handler, path) = (handler.clone(), path.clone());
                        async move {
                            let resp = if req.uri().path() == path {
                                handler.respond_watching(&req).await
                            } else {
                                Response::builder()
                                    .status(StatusCode::NOT_FOUND)
                                    .body(Full::new(Bytes::from_static(b"not found\n")))
                                    .unwrap()
                            };
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    // HTTP/1.1 only (what the endpoint advertises in ALPN); the timer is what makes
                    // hyper enforce the header timeout, also between kept-alive requests.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_timeout)
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(addr)
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The query of a request from anyone who reaches the port: never a panic, and a
        /// watch is never held longer than `MAX_WATCH`, whatever `wait` says.
        #[test]
        fn any_query_is_parsed_safely(query in ".{0,200}", wait in any::<u64>(), etag in "[0-9a-fA-F]{0,40}") {
            let _ = watch_params(Some(&query));
            let _ = unhex(&query);
            if let Some((w, _)) = watch_params(Some(&format!("wait={wait}&etag={etag}"))) {
                prop_assert!(w <= MAX_WATCH);
            }
        }
    }
}
