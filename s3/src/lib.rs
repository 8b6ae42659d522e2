//! S3 without I/O: where a request goes, how it is signed (SigV4), and what an answer means to
//! the election. The native host sends these requests with reqwest, the wasm storage component
//! with `wasi:http`; both share every byte of protocol here.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Uri;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
pub use s3lect_guest::conformance::{EtagForm, unquoted};
pub use s3lect_guest::{ServerClock, StorageError};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// Where the bucket is and how to sign for it. `Debug` shows no secret.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:8333`. None: AWS (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    /// Path-style (`endpoint/bucket/key`) instead of virtual-hosted (`bucket.endpoint/key`).
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Extra CA (PEM) trusted besides the webpki roots, for private endpoints (the `s3lect`
    /// command reads `[s3] ca_cert`, else the file `AWS_CA_BUNDLE` names). Native host only: in
    /// wasm, TLS belongs to the host's `wasi:http` implementation.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Upper bound on one request; the election passes tighter deadlines per call.
    pub request_timeout: Duration,
}

impl S3Config {
    /// Reads the usual AWS variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL_S3` (or
    /// `AWS_ENDPOINT_URL`). A custom endpoint implies path-style addressing.
    pub fn from_env(bucket: &str) -> Result<S3Config, String> {
        let access_key_id = env_var("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?;
        let secret_access_key = env_var("AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?;
        Ok(S3Config { access_key_id, secret_access_key, session_token: env_var("AWS_SESSION_TOKEN"), ..S3Config::for_bucket(bucket) })
    }

    /// Where `bucket` is, from the environment as [`S3Config::from_env`] reads it, with no
    /// credentials: for a signer that gets them elsewhere (the native host's AWS credential
    /// chain).
    pub fn for_bucket(bucket: &str) -> S3Config {
        let endpoint = env_var("AWS_ENDPOINT_URL_S3").or_else(|| env_var("AWS_ENDPOINT_URL"));
        S3Config {
            bucket: bucket.to_string(),
            region: env_var("AWS_REGION").or_else(|| env_var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into()),
            path_style: endpoint.is_some(),
            endpoint,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: None,
            ca_cert_pem: None,
            request_timeout: Duration::from_secs(30),
        }
    }

    /// The endpoint requests go to: the configured one, or AWS's for the region.
    pub fn endpoint_url(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region))
    }

    /// The same place, signed with other credentials (rotated ones).
    pub fn with_credentials(&self, access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> S3Config {
        S3Config {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.map(str::to_string),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("session_token", &self.session_token.as_ref().map(|_| "** redacted **"))
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|c| format!("{} bytes", c.len())))
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), if k.eq_ignore_ascii_case("x-amz-security-token") { "** redacted **" } else { v.as_str() }))
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url())
            .field("headers", &headers)
            .field("body", &format!("{} bytes", self.body.len()))
            .finish()
    }
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("cfg", &self.cfg).field("authority", &self.authority).field("prefix", &self.prefix).finish()
    }
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// One signed request, ready for any HTTP client. `Debug` shows no session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub scheme: String,
    /// `host[:port]`
    pub authority: String,
    /// Percent-encoded path (no query).
    pub path: String,
    /// Every header to send, signature included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }
}

/// S3's URI encoding: everything but unreserved characters; '/' separates key segments.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// A bucket's address and credentials: builds signed requests and reads answers.
#[derive(Clone)]
pub struct Bucket {
    cfg: S3Config,
    scheme: String,
    authority: String,
    /// Path prefix of every object: the endpoint's own path, plus `/bucket` when path-style.
    prefix: String,
    /// The credentials as the signer takes them: built once, not per request.
    identity: Identity,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct S3ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl Bucket {
    pub fn new(cfg: S3Config) -> Result<Bucket, String> {
        if cfg.bucket.is_empty() {
            return Err("S3 bucket name is empty".into());
        }
        let endpoint = cfg.endpoint_url();
        let bad = || format!("S3 endpoint {endpoint:?} must be an http:// or https:// URL with a host");
        let uri: Uri = endpoint.parse().map_err(|e| format!("S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        let scheme = uri.scheme_str().filter(|s| matches!(*s, "http" | "https")).ok_or_else(bad)?.to_string();
        let authority = uri.authority().filter(|a| !a.host().is_empty()).ok_or_else(bad)?.as_str().to_string();
        if uri.query().is_some() || authority.contains('@') {
            return Err(format!("S3 endpoint {endpoint:?} must not carry a query or user info"));
        }
        let mut prefix = uri.path().trim_end_matches('/').to_string();
        let authority = if cfg.path_style {
            prefix = format!("{prefix}/{}", cfg.bucket);
            authority
        } else {
            format!("{}.{authority}", cfg.bucket)
        };
        let identity = Credentials::new(&cfg.access_key_id, &cfg.secret_access_key, cfg.session_token.clone(), None, "s3lect").into();
        Ok(Bucket { cfg, scheme, authority, prefix, identity })
    }

    /// Where every request goes, `scheme://host[:port]`: one origin per bucket, so an HTTP
    /// client can parse it once rather than per request.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// GetObject.
    pub fn get(&self, key: &str, now: SystemTime) -> Result<Request, StorageError> {
        self.signed("GET", key, Vec::new(), Vec::new(), now)
    }

    /// PutObject with If-Match `etag`, or If-None-Match: * when `etag` is none. Always a
    /// single-part PUT: conditional multipart uploads are not atomic on every server.
    pub fn put_if_match(&self, key: &str, data: &[u8], etag: Option<&str>, now: SystemTime) -> Result<Request, StorageError> {
        let condition = match etag {
            None => ("if-none-match".to_string(), "*".to_string()),
            Some(e) => ("if-match".to_string(), e.to_string()),
        };
        let headers = vec![condition, ("content-type".into(), "application/json".into())];
        self.signed("PUT", key, headers, data.to_vec(), now)
    }

    /// DeleteObject.
    pub fn delete(&self, key: &str, now: SystemTime) -> Result<Request, StorageError> {
        self.signed("DELETE", key, Vec::new(), Vec::new(), now)
    }

    /// CreateBucket (path-style only; for test servers that start empty).
    pub fn create_bucket(&self, now: SystemTime) -> Result<Request, StorageError> {
        self.signed_path("PUT", self.prefix.clone(), Vec::new(), Vec::new(), now)
    }

    fn signed(
        &self,
        method: &'static str,
        key: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<Request, StorageError> {
        let path = format!("{}/{}", self.prefix, utf8_percent_encode(key, KEY_SET));
        self.signed_path(method, path, headers, body, now)
    }

    fn signed_path(
        &self,
        method: &'static str,
        path: String,
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
        now: SystemTime,
    ) -> Result<Request, StorageError> {
        let mut req = Request { method, scheme: self.scheme.clone(), authority: self.authority.clone(), path, headers: Vec::new(), body };
        headers.push(("host".into(), self.authority.clone()));
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.cfg.region)
            .name("s3")
            .time(now)
            .settings(settings)
            .build()
            .map_err(|e| StorageError::Invalid(format!("SigV4 parameters: {e}")))?
            .into();
        let url = req.url();
        let signable =
            SignableRequest::new(method, &url, headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), SignableBody::Bytes(&req.body))
                .map_err(|e| StorageError::Invalid(format!("SigV4 request: {e}")))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| StorageError::Invalid(format!("SigV4 signing: {e}")))?.into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_string(), value.to_string()));
        }
        req.headers = headers;
        Ok(req)
    }

    /// The answer to a GetObject: the object, or what went wrong.
    pub fn got(&self, status: u16, etag: Option<&str>, body: Vec<u8>) -> Result<(Vec<u8>, String), StorageError> {
        if status != 200 {
            return Err(self.classify(status, &body));
        }
        Ok((body, etag_of(etag)?))
    }

    /// The answer to a conditional PutObject: the new etag, or what went wrong.
    pub fn put_answer(&self, status: u16, etag: Option<&str>, body: &[u8]) -> Result<String, StorageError> {
        if !(200..300).contains(&status) {
            return Err(self.classify(status, body));
        }
        etag_of(etag)
    }

    /// The answer to a DeleteObject: absent already counts as deleted.
    pub fn deleted(&self, status: u16, body: &[u8]) -> Result<(), StorageError> {
        if (200..300).contains(&status) || status == 404 { Ok(()) } else { Err(self.classify(status, body)) }
    }

    /// Maps an S3 error answer to what the election does about it.
    pub fn classify(&self, status: u16, body: &[u8]) -> StorageError {
        let err: S3ErrorBody = quick_xml::de::from_str(&String::from_utf8_lossy(body)).unwrap_or_default();
        // "503 Service Unavailable": the reason phrase helps whoever reads the log.
        let status_text = http::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
        let detail = match (err.code.is_empty(), err.message.is_empty()) {
            (true, _) => format!("HTTP {status_text}"),
            (false, true) => format!("{} (HTTP {status_text})", err.code),
            (false, false) => format!("{}: {} (HTTP {status_text})", err.code, err.message),
        };
        match status {
            404 if err.code == "NoSuchBucket" => StorageError::Invalid(format!("bucket {:?} does not exist: {detail}", self.cfg.bucket)),
            404 => StorageError::NotFound,
            412 => StorageError::PreconditionFailed,
            409 => StorageError::Conflict,
            401 | 403 => StorageError::Denied(detail),
            408 | 429 | 500..=599 => StorageError::Unavailable(detail),
            _ => StorageError::Invalid(detail),
        }
    }
}

/// The server's clock on an answer, from its `Last-Modified` and `Date` headers (HTTP dates,
/// whole seconds); none unless both are present and valid.
pub fn server_clock(last_modified: Option<&str>, date: Option<&str>) -> Option<ServerClock> {
    let unix_s = |v: Option<&str>| {
        let t = httpdate::parse_http_date(v?.trim()).ok()?;
        i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()
    };
    Some(ServerClock { written_unix_s: unix_s(last_modified)?, answered_unix_s: unix_s(date)? })
}

fn etag_of(etag: Option<&str>) -> Result<String, StorageError> {
    etag.map(str::to_string).ok_or_else(|| StorageError::Invalid("the server's reply carries no ETag header".into()))
}

#[cfg(test)]
mod tests;
