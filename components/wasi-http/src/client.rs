//! The exchange over `wasi:http`.

use crate::{Answer, Exchange, HttpError};

wit_bindgen::generate!({
    path: "../../wit",
    world: "http-client",
    generate_all,
});

use wasi::clocks::monotonic_clock;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wasi::io::streams::StreamError;

/// The most of an answer read: one byte over s3lect's 64 KiB record limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024 + 1;

/// Sends `req` and reads the answer (at most `MAX_BODY_BYTES` of it), giving up `timeout_ms`
/// after the start.
pub fn send(req: &Exchange, timeout_ms: u64) -> Result<Answer, HttpError> {
    let unavailable = |what: &str, e: &dyn std::fmt::Debug| HttpError::Unavailable(format!("{what}: {e:?}"));
    let invalid = |what: &str| HttpError::Invalid(format!("the host rejected the request's {what}"));
    let deadline_ns = timeout_ms.saturating_mul(1_000_000);
    // Host is forbidden in wasi:http fields; the authority produces the same header.
    let fields: Vec<(String, Vec<u8>)> =
        req.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")).map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
    let headers = Fields::from_list(&fields).map_err(|e| HttpError::Invalid(format!("request headers: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match req.method {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    let scheme = if req.scheme == "https" { Scheme::Https } else { Scheme::Http };
    outgoing.set_method(&method).map_err(|_| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|_| invalid("scheme"))?;
    outgoing.set_authority(Some(req.authority)).map_err(|_| invalid("authority"))?;
    outgoing.set_path_with_query(Some(req.path)).map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;
    // Hosts that do not support a timeout option refuse to set it; our poll deadline still holds.
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(deadline_ns));
    let _ = options.set_first_byte_timeout(Some(deadline_ns));
    let _ = options.set_between_bytes_timeout(Some(deadline_ns));
    let started = monotonic_clock::now();
    let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| failed(req.authority, code))?;
    {
        let stream = body.write().map_err(|_| invalid("body stream"))?;
        for chunk in req.body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| unavailable("writing the request body", &e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| unavailable("finishing the request body", &e))?;
    let ready = pending.subscribe();
    let timer = monotonic_clock::subscribe_instant(started.saturating_add(deadline_ns));
    // `get` hands the answer over once: keep what it returns.
    let answer = loop {
        if let Some(answer) = pending.get() {
            break answer;
        }
        wasi::io::poll::poll(&[&ready, &timer]);
        if timer.ready() && !ready.ready() {
            return Err(HttpError::Unavailable(format!("request timed out after {timeout_ms} ms")));
        }
    };
    drop(ready);
    let response = match answer {
        Ok(Ok(r)) => r,
        Ok(Err(code)) => return Err(failed(req.authority, code)),
        Err(()) => return Err(HttpError::Invalid("the host's answer was already taken".into())),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response.consume().map_err(|_| invalid("response body"))?;
    // Read under the same deadline, and no more than `MAX_BODY_BYTES`: one byte over the
    // record limit tells the election the object is oversized; the rest is never fetched.
    let mut data = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| invalid("response body stream"))?;
        let readable = stream.subscribe();
        let timer = monotonic_clock::subscribe_instant(started.saturating_add(deadline_ns));
        while data.len() < MAX_BODY_BYTES {
            match stream.read((MAX_BODY_BYTES - data.len()) as u64) {
                Ok(chunk) if chunk.is_empty() => {
                    wasi::io::poll::poll(&[&readable, &timer]);
                    if timer.ready() && !readable.ready() {
                        return Err(HttpError::Unavailable(format!("reading the answer timed out after {timeout_ms} ms")));
                    }
                }
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(unavailable("reading the response body", &e)),
            }
        }
    }
    // An answer cut short at the cap is dropped, not drained.
    if data.len() < MAX_BODY_BYTES {
        drop(IncomingBody::finish(incoming));
    }
    Ok(Answer { status, headers, body: data })
}

/// Why the host gave no answer. A TLS handshake that failed and a request the host's policy
/// refused sent nothing, and retrying does not change them: invalid (not applied, and the
/// message says what to fix), where unavailable would say the write may have been applied.
/// wasmtime reports every TLS failure as a protocol error, a refused certificate included.
fn failed(authority: &str, code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::TlsCertificateError | ErrorCode::TlsProtocolError | ErrorCode::TlsAlertReceived(_) => HttpError::Invalid(format!(
            "the TLS handshake with {authority} failed ({code:?}), so nothing was sent; the host running the component \
             decides which certificates are trusted (the wasmtime CLI: the Mozilla roots only)"
        )),
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => HttpError::Invalid(format!(
            "the host refused to send a request to {authority} ({code:?}); its outbound policy must allow it \
             (Spin: allowed_outbound_hosts)"
        )),
        other => HttpError::Unavailable(format!("HTTP request failed: {other:?}")),
    }
}
