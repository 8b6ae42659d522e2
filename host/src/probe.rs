//! The outbound peer probe: HTTPS GET of the leader's health endpoint, trusting the configured
//! peer CA (or, without one, the public webpki roots). Connections are pooled and reused.

use crate::error::{Error, Result, chain};
use crate::tls;
use s3lect_guest::ProbeReply;
use s3lect_guest::record::MAX_RECORD_BYTES;
use std::time::Duration;

/// Asks a leader's health endpoint whether it leads (HTTPS; plain HTTP only if allowed). A
/// leader that published a certificate pin in its record is verified against exactly that
/// certificate (zero-config peer mode); otherwise against the configured CA.
pub struct PeerProbe {
    client: reqwest::Client,
    scheme: &'static str,
    /// The client for the pin last probed (a leader keeps its certificate for its lifetime).
    pinned: std::sync::Mutex<Option<(String, reqwest::Client)>>,
}

fn client_builder(tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    // A peer is asked for one thing at one address: a redirect elsewhere is not followed, and
    // no proxy is used — `HTTPS_PROXY` is set for outside traffic (S3), and a proxy cannot
    // reach a peer's private address, or would see every probe.
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_backend_preconfigured(tls)
}

impl PeerProbe {
    /// `allow_plain_http` must be set explicitly to probe without TLS.
    pub fn new(ca_cert_pem: Option<&[u8]>, allow_plain_http: bool) -> Result<PeerProbe> {
        // Always hand reqwest our rustls config: it has no crypto provider of its own.
        let tls = tls::client_config(ca_cert_pem, ca_cert_pem.is_none()).map_err(Error::Tls)?;
        let builder = client_builder(tls);
        let (builder, scheme) = if allow_plain_http { (builder, "http") } else { (builder.https_only(true), "https") };
        let client =
            builder.build().map_err(|e| Error::Client { context: "building the peer probe client".into(), source: Some(e.into()) })?;
        Ok(PeerProbe { client, scheme, pinned: std::sync::Mutex::new(None) })
    }

    /// The client for `pin`: built once per pin.
    fn pinned_client(&self, pin: &str) -> std::result::Result<reqwest::Client, String> {
        let mut cached = self.pinned.lock().unwrap();
        if let Some((_, c)) = cached.as_ref().filter(|(p, _)| p == pin) {
            return Ok(c.clone());
        }
        let tls = tls::pinned_client_config(pin).map_err(|e| e.to_string())?;
        let client = client_builder(tls).https_only(true).build().map_err(|e| format!("building a pinned probe client: {e}"))?;
        *cached = Some((pin.to_string(), client.clone()));
        Ok(client)
    }

    /// One probe of `addr` at `path`: the leader's health JSON, not-leader, or why it failed.
    /// `pin`: the SHA-256 (hex) of the certificate the leader published in its record.
    pub async fn probe(&self, addr: &str, path: &str, timeout: Duration, pin: Option<&str>) -> std::result::Result<ProbeReply, ProbeError> {
        self.exchange(addr, path, timeout, pin).await.map_err(ProbeError)
    }

    async fn exchange(&self, addr: &str, path: &str, timeout: Duration, pin: Option<&str>) -> std::result::Result<ProbeReply, String> {
        let (client, scheme) = match pin {
            Some(pin) => (self.pinned_client(pin)?, "https"),
            None => (self.client.clone(), self.scheme),
        };
        let url = format!("{scheme}://{addr}{path}");
        let resp = client.get(&url).timeout(timeout).send().await.map_err(|e| format!("probe {url}: {}", chain(&e)))?;
        match resp.status().as_u16() {
            200 => {
                // Stop reading past the limit: a peer's reply never needs more.
                let mut resp = resp;
                let mut body = Vec::new();
                while let Some(chunk) = resp.chunk().await.map_err(|e| format!("probe {url}: reading body: {}", chain(&e)))? {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_RECORD_BYTES {
                        return Err(format!("probe {url}: reply is over the {MAX_RECORD_BYTES}-byte limit"));
                    }
                }
                Ok(ProbeReply::Leader(body))
            }
            404 => Ok(ProbeReply::NotLeader),
            other => Err(format!("probe {url}: unexpected HTTP {other}")),
        }
    }
}

/// Why a probe got no answer from a leader (the message names the URL and the cause). The
/// election reads S3 instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError(String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}
