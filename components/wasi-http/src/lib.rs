//! One blocking HTTP exchange through the host's `wasi:http/outgoing-handler`, bounded by a
//! deadline (the host's request options where it honours them, and our own poll deadline).
//! Shared by the `s3-storage` and `peer-http` components.

/// A request, fully formed (signed, if it needs to be).
pub struct Exchange<'a> {
    pub method: &'a str,
    /// "http" or "https".
    pub scheme: &'a str,
    /// `host[:port]`
    pub authority: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The answer: status, headers (names lower-case), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// Why there is no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum HttpError {
    /// No (complete) answer: connection refused, reset, timed out. The request may have been
    /// applied.
    Unavailable(String),
    /// The host refused to send the request as formed, or sent nothing and will not: a TLS
    /// handshake that failed, an outbound policy that refuses the destination.
    Invalid(String),
}

#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
pub use client::send;
