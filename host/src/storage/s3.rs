//! S3 storage: GetObject and conditional PutObject, signed with SigV4, over HTTPS (rustls) or
//! plain HTTP for a local endpoint. Every S3 answer is mapped to the error the election needs.

use super::{BoxFuture, Storage, StorageError};
use crate::tls;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

/// Where the bucket is and how to sign for it.
#[derive(Clone, Debug)]
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
    /// Extra CA (PEM) trusted besides the webpki roots, for private endpoints.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Upper bound on one request; the election passes tighter deadlines per call.
    pub request_timeout: Duration,
}

impl S3Config {
    /// Reads the usual AWS variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`), `AWS_ENDPOINT_URL`.
    pub fn from_env(bucket: &str) -> Result<S3Config, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let access_key_id = var("AWS_ACCESS_KEY_ID").ok_or("AWS_ACCESS_KEY_ID is not set")?;
        let secret_access_key = var("AWS_SECRET_ACCESS_KEY").ok_or("AWS_SECRET_ACCESS_KEY is not set")?;
        let endpoint = var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL"));
        Ok(S3Config {
            bucket: bucket.to_string(),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into()),
            path_style: endpoint.is_some(),
            endpoint,
            access_key_id,
            secret_access_key,
            session_token: var("AWS_SESSION_TOKEN"),
            ca_cert_pem: None,
            request_timeout: Duration::from_secs(30),
        })
    }
}

pub struct S3Storage {
    cfg: S3Config,
    client: reqwest::Client,
    base: reqwest::Url,
}

/// S3's URI encoding: everything but unreserved characters; '/' separates key segments.
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct S3ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl S3Storage {
    pub fn new(cfg: S3Config) -> Result<S3Storage, String> {
        if cfg.bucket.is_empty() {
            return Err("S3 bucket name is empty".into());
        }
        let endpoint = cfg.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region));
        let mut base = reqwest::Url::parse(&endpoint).map_err(|e| format!("S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(format!("S3 endpoint {endpoint:?} must be an http:// or https:// URL with a host"));
        }
        if !cfg.path_style {
            let host = format!("{}.{}", cfg.bucket, base.host_str().unwrap());
            base.set_host(Some(&host)).map_err(|e| format!("virtual-hosted address {host}: {e}"))?;
        }
        let tls = tls::client_config(cfg.ca_cert_pem.as_deref(), true)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("building the S3 HTTP client: {e}"))?;
        Ok(S3Storage { cfg, client, base })
    }

    fn url(&self, key: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        let key = utf8_percent_encode(key, KEY_SET).to_string();
        let path = if self.cfg.path_style {
            format!("{}/{}/{key}", url.path().trim_end_matches('/'), self.cfg.bucket)
        } else {
            format!("{}/{key}", url.path().trim_end_matches('/'))
        };
        url.set_path(&path);
        url
    }

    /// Builds, signs and sends one request; answers the status and body.
    async fn call(
        &self,
        method: Method,
        key: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, bytes::Bytes), StorageError> {
        let mut req = reqwest::Request::new(method, self.url(key));
        for (name, value) in headers {
            let v = HeaderValue::from_str(value).map_err(|e| StorageError::Invalid(format!("header {name}: {e}")))?;
            req.headers_mut().insert(HeaderName::from_static(name), v);
        }
        self.sign(&mut req, body)?;
        *req.body_mut() = Some(reqwest::Body::from(body.to_vec()));
        let resp = self.client.execute(req).await.map_err(|e| StorageError::Unavailable(describe(&e)))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| StorageError::Unavailable(describe(&e)))?;
        Ok((status, headers, body))
    }

    fn sign(&self, req: &mut reqwest::Request, body: &[u8]) -> Result<(), StorageError> {
        let identity = Credentials::new(
            &self.cfg.access_key_id,
            &self.cfg.secret_access_key,
            self.cfg.session_token.clone(),
            None,
            "s3lect",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.cfg.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| StorageError::Invalid(format!("SigV4 parameters: {e}")))?
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let signable = SignableRequest::new(
            req.method().as_str(),
            req.url().as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| StorageError::Invalid(format!("SigV4 request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| StorageError::Invalid(format!("SigV4 signing: {e}")))?
            .into_parts();
        for (name, value) in instructions.headers() {
            let v = HeaderValue::from_str(value).map_err(|e| StorageError::Invalid(format!("signed header {name}: {e}")))?;
            req.headers_mut().insert(HeaderName::from_bytes(name.as_bytes()).expect("sigv4 header names are valid"), v);
        }
        Ok(())
    }

    /// Maps an S3 error answer to what the election does about it.
    fn classify(&self, status: StatusCode, body: &[u8]) -> StorageError {
        let err: S3ErrorBody = quick_xml::de::from_str(&String::from_utf8_lossy(body)).unwrap_or_default();
        let detail = match (err.code.is_empty(), err.message.is_empty()) {
            (true, _) => format!("HTTP {status}"),
            (false, true) => format!("{} (HTTP {status})", err.code),
            (false, false) => format!("{}: {} (HTTP {status})", err.code, err.message),
        };
        match status.as_u16() {
            404 if err.code == "NoSuchBucket" => {
                StorageError::Invalid(format!("bucket {:?} does not exist: {detail}", self.cfg.bucket))
            }
            404 => StorageError::NotFound,
            412 => StorageError::PreconditionFailed,
            409 => StorageError::Conflict,
            401 | 403 => StorageError::Denied(detail),
            408 | 429 | 500..=599 => StorageError::Unavailable(detail),
            _ => StorageError::Invalid(detail),
        }
    }
}

fn etag_of(headers: &reqwest::header::HeaderMap) -> Result<String, StorageError> {
    headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| StorageError::Invalid("the server's reply carries no ETag header".into()))
}

/// reqwest's Display hides the cause chain; the cause is what tells a user what to fix.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "request timed out".to_string() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Storage for S3Storage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        Box::pin(async move {
            let (status, headers, body) = self.call(Method::GET, key, &[], &[]).await?;
            if status != StatusCode::OK {
                return Err(self.classify(status, &body));
            }
            Ok((body.to_vec(), etag_of(&headers)?))
        })
    }

    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        data: &'a [u8],
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, StorageError>> {
        Box::pin(async move {
            let condition = match etag {
                None => ("if-none-match", "*".to_string()),
                Some(e) => ("if-match", e.to_string()),
            };
            let headers = [condition, ("content-type", "application/json".to_string())];
            let (status, headers, body) = self.call(Method::PUT, key, &headers, data).await?;
            if !status.is_success() {
                return Err(self.classify(status, &body));
            }
            etag_of(&headers)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let (status, _, body) = self.call(Method::DELETE, key, &[], &[]).await?;
            if status.is_success() || status == StatusCode::NOT_FOUND { Ok(()) } else { Err(self.classify(status, &body)) }
        })
    }
}
