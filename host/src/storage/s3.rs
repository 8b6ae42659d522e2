//! S3 storage for the native host: the requests `s3lect-s3` builds and signs (SigV4), sent
//! with reqwest over HTTPS (rustls) or plain HTTP for a local endpoint.

use super::Condition;
use super::credentials::Signer;
use super::{BoxFuture, Object, ServerClock, Storage, StorageError};
use crate::tls;
pub use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use s3lect_s3::Request;
pub use s3lect_s3::S3Config;
use std::time::{Duration, SystemTime};

/// S3 (or an S3-compatible server) with SigV4-signed requests over HTTPS (rustls), or plain HTTP
/// for a loopback endpoint.
pub struct S3Storage {
    signer: Signer,
    client: reqwest::Client,
    /// Permits for requests in flight: see [`MAX_IN_FLIGHT`].
    in_flight: tokio::sync::Semaphore,
    /// The bucket's origin, parsed once: parsing each request's whole URL (the host through
    /// IDNA) was about 1 % of the CPU of a process of thousands of groups.
    origin: (String, reqwest::Url),
}

/// Requests one storage client has in flight at most; more wait their turn, within their
/// timeout. Thousands of electors sharing a client (one process, many groups) would otherwise
/// open a connection each when they step together — and hit the open-file limit.
pub const MAX_IN_FLIGHT: usize = 256;

fn client(context: String) -> crate::Error {
    crate::Error::Client { context, source: None }
}

/// One answer: its status, ETag header, body, and the server's clock on it.
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
    server_clock: Option<ServerClock>,
}

impl S3Storage {
    /// Signs with the fixed keys in `cfg`.
    pub fn new(cfg: S3Config) -> crate::Result<S3Storage> {
        let signer = Signer::fixed(cfg.clone()).map_err(client)?;
        S3Storage::with_signer(cfg, signer)
    }

    /// Signs with AWS's default credential chain (the keys in `cfg` are ignored): environment,
    /// `AWS_PROFILE` with the shared config and credentials files, web identity (EKS IRSA),
    /// container credentials (ECS, EKS Pod Identity), EC2 IMDSv2, SSO. Temporary credentials
    /// are fetched again five minutes before they expire. The chain's HTTPS requests also trust
    /// the CA bundle `AWS_CA_BUNDLE` names (S3's own trust is `cfg`'s).
    pub fn with_default_credentials(cfg: S3Config) -> crate::Result<S3Storage> {
        let signer = Signer::refreshing(cfg.clone(), None).map_err(client)?;
        S3Storage::with_signer(cfg, signer)
    }

    /// Signs with credentials from `provider`, refreshed like the default chain's.
    pub fn with_credentials_provider(cfg: S3Config, provider: SharedCredentialsProvider) -> crate::Result<S3Storage> {
        let signer = Signer::refreshing(cfg.clone(), Some(provider)).map_err(client)?;
        S3Storage::with_signer(cfg, signer)
    }

    fn with_signer(cfg: S3Config, signer: Signer) -> crate::Result<S3Storage> {
        // Rotated credentials sign for the same bucket: the origin does not change with them.
        let origin = s3lect_s3::Bucket::new(cfg.clone()).map_err(client)?.origin();
        let parsed = reqwest::Url::parse(&origin).map_err(|e| client(format!("S3 endpoint {origin:?}: {e}")))?;
        let origin = (origin, parsed);
        let tls = tls::client_config(cfg.ca_cert_pem.as_deref(), true)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            // As many idle connections as requests can be in flight: a burst's connections
            // are reused rather than closed and opened again — a TLS handshake each on real
            // S3. Capped at 64, a process of 10,000 groups kept opening connections (718 in 10 s
            // under strace, on loopback); at 256 it opened none.
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            // A redirect is an S3 error answer (wrong region, wrong endpoint): reported with
            // the server's words. Followed, the request would go wherever it names with its
            // body and session token (reqwest drops only `Authorization` across hosts).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::Error::Client { context: "building the S3 HTTP client".into(), source: Some(e.into()) })?;
        Ok(S3Storage { signer, client, in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT), origin })
    }

    /// The request's URL: its path on the parsed origin, or the whole URL parsed if the request
    /// goes elsewhere (not built by this storage's bucket).
    fn url(&self, req: &Request) -> Result<reqwest::Url, StorageError> {
        let (origin, parsed) = &self.origin;
        let same_origin = origin.strip_prefix(req.scheme.as_str()).and_then(|o| o.strip_prefix("://")) == Some(req.authority.as_str());
        if same_origin && req.path.starts_with('/') {
            let mut url = parsed.clone();
            url.set_path(&req.path);
            return Ok(url);
        }
        reqwest::Url::parse(&req.url()).map_err(|e| StorageError::Invalid(format!("request URL: {e}")))
    }

    async fn send(&self, req: Request) -> Result<Answer, StorageError> {
        // Built before the wait for a permit: a request that cannot be built fails without one.
        let request = self.http_request(req)?;
        // Held until the body is read: the connection is busy until then. Never closed.
        let _permit = self.in_flight.acquire().await.map_err(|_| StorageError::Unavailable("storage client closed".into()))?;
        let resp = self.client.execute(request).await.map_err(|e| classify(&e))?;
        let status = resp.status().as_u16();
        let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok());
        let etag = header(reqwest::header::ETAG).map(str::to_string);
        let server_clock = s3lect_s3::server_clock(header(reqwest::header::LAST_MODIFIED), header(reqwest::header::DATE));
        let body = read_capped(resp, MAX_BODY_BYTES).await?;
        Ok(Answer { status, etag, body, server_clock })
    }

    /// [`Storage::get_object`]'s work, as a future of its own type (its size is tested).
    async fn get_unboxed(&self, key: &str) -> Result<Object, StorageError> {
        let b = self.signer.bucket().await?;
        let a = self.send(b.get(key, SystemTime::now())?).await?;
        let (data, etag) = b.got(a.status, a.etag.as_deref(), a.body)?;
        Ok(Object { data, etag, server_clock: a.server_clock })
    }

    /// [`Storage::put_if_match`]'s work, as a future of its own type (its size is tested).
    async fn put_unboxed(&self, key: &str, data: &[u8], condition: Condition<'_>) -> Result<String, StorageError> {
        let b = self.signer.bucket().await?;
        let a = self.send(b.put_if_match(key, data, condition.etag(), SystemTime::now())?).await?;
        b.put_answer(a.status, a.etag.as_deref(), &a.body)
    }

    fn http_request(&self, req: Request) -> Result<reqwest::Request, StorageError> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).expect("S3 methods are valid");
        let mut request = reqwest::Request::new(method, self.url(&req)?);
        let body = shared_parts(req.headers, req.body, request.headers_mut())?;
        *request.body_mut() = Some(body.into());
        Ok(request)
    }
}

/// Puts `headers` into `map` and returns the body, every value and the body slices of one
/// shared buffer. reqwest clones a request's headers for its redirect and retry policies, and
/// its body for retries: a value copied on its own costs an allocation at its first clone, a
/// slice of a shared buffer only a reference count (BENCHMARKS.md, "Fewer allocations per
/// request").
fn shared_parts(headers: Vec<(String, String)>, body: Vec<u8>, map: &mut HeaderMap) -> Result<Bytes, StorageError> {
    let invalid = |name: &str, why: &dyn std::fmt::Display| StorageError::Invalid(format!("header {name}: {why}"));
    let mut buf = Vec::with_capacity(headers.iter().map(|(_, v)| v.len()).sum::<usize>() + body.len());
    for (_, value) in &headers {
        buf.extend_from_slice(value.as_bytes());
    }
    buf.extend_from_slice(&body);
    let buf = Bytes::from(buf);
    // Sized once, with room for the `accept` header the client adds: at thousands of requests
    // a second, growing the map was a visible share of the CPU.
    map.reserve(headers.len() + 1);
    let mut at = 0;
    for (name, value) in headers {
        // `from_str` took ASCII only; from bytes, `http` also passes what is not (its own check
        // refuses control characters).
        if !value.is_ascii() {
            return Err(invalid(&name, &"not ASCII"));
        }
        let v = HeaderValue::from_maybe_shared(buf.slice(at..at + value.len())).map_err(|e| invalid(&name, &e))?;
        at += value.len();
        map.append(header_name(&name).map_err(|e| invalid(&name, &e))?, v);
    }
    Ok(buf.slice(at..))
}

/// `name` as a header name. SigV4's own names are unknown to `http`: from static text, their
/// clones copy nothing.
fn header_name(name: &str) -> Result<HeaderName, reqwest::header::InvalidHeaderName> {
    const SIGV4: [&str; 3] = ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];
    match SIGV4.into_iter().find(|n| *n == name) {
        Some(n) => Ok(HeaderName::from_static(n)),
        None => HeaderName::from_bytes(name.as_bytes()),
    }
}

/// The most of any S3 answer read: one byte over the record limit is enough for the election
/// to see an oversized lock object (and replace it); reading a 300 MB object would cost every
/// node 300 MB. Error answers are small XML.
const MAX_BODY_BYTES: usize = s3lect_guest::record::MAX_RECORD_BYTES + 1;

/// Reads at most `cap` bytes of a body, stopping (and dropping the connection) past it.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, StorageError> {
    let mut body = Vec::with_capacity(resp.content_length().map_or(1024, |n| usize::try_from(n).unwrap_or(cap).min(cap)));
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e))? {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == cap {
            break;
        }
    }
    Ok(body)
}

/// A failed exchange as the election sees it. Most failures are the network's and pass
/// (unavailable: retried); a certificate this client does not trust is its configuration's,
/// and retrying cannot change it (invalid: a start fails at once and says what to give).
/// Messages carry the cause chain, which reqwest's Display hides: it tells a user what to fix.
fn classify(e: &reqwest::Error) -> StorageError {
    if e.is_timeout() {
        return StorageError::Unavailable("request timed out".into());
    }
    match crate::tls::refused_certificate(e) {
        Some(why) => StorageError::Invalid(format!(
            "the S3 server's certificate is not trusted ({why}); a private CA is given with S3Config::ca_cert_pem (the command reads `[s3] ca_cert` in its config file, else AWS_CA_BUNDLE)"
        )),
        None => StorageError::Unavailable(crate::error::chain(e)),
    }
}

impl S3Storage {
    /// Creates the bucket (path-style test servers start empty). An existing bucket of ours
    /// counts as created.
    pub async fn create_bucket(&self) -> Result<(), StorageError> {
        let b = self.signer.bucket().await?;
        let Answer { status, body, .. } = self.send(b.create_bucket(SystemTime::now())?).await?;
        match status {
            200..=299 => Ok(()),
            _ if String::from_utf8_lossy(&body).contains("BucketAlreadyOwnedByYou") => Ok(()),
            _ => Err(b.classify(status, &body)),
        }
    }
}

impl Storage for S3Storage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(Vec<u8>, String), StorageError>> {
        Box::pin(async move { self.get_object(key).await.map(|o| (o.data, o.etag)) })
    }

    fn get_object<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Object, StorageError>> {
        Box::pin(self.get_unboxed(key))
    }

    fn put_if_match<'a>(&'a self, key: &'a str, data: &'a [u8], condition: Condition<'a>) -> BoxFuture<'a, Result<String, StorageError>> {
        Box::pin(self.put_unboxed(key, data, condition))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let b = self.signer.bucket().await?;
            let Answer { status, body, .. } = self.send(b.delete(key, SystemTime::now())?).await?;
            b.deleted(status, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    /// The URL built on the parsed origin is the one parsing the whole URL gives, for keys
    /// that need escaping and endpoints with a path, a port, an upper-case host or an IPv6 address.
    #[test]
    fn a_request_url_on_the_parsed_origin_is_the_whole_url_parsed() {
        let keys = ["lock.json", "a b/ç/ü?x#y", "100%/x+y=z&q", "dir//x", "a/./b", "~_-.", "ключ/🔒"];
        for (endpoint, path_style) in [
            ("http://127.0.0.1:8333", true),
            ("https://s3.example.com/prefix/", true),
            ("http://S3.Example.COM:9000", false),
            ("https://[::1]:8443/", true),
        ] {
            let cfg = S3Config {
                endpoint: Some(endpoint.into()),
                path_style,
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                ..S3Config::for_bucket("my-bucket")
            };
            let s3 = S3Storage::new(cfg.clone()).unwrap();
            let bucket = s3lect_s3::Bucket::new(cfg).unwrap();
            for key in keys {
                let req = bucket.get(key, SystemTime::now()).unwrap();
                let whole = reqwest::Url::parse(&req.url()).unwrap();
                assert_eq!(s3.url(&req).unwrap(), whole, "{endpoint} {key:?}");
            }
        }
    }

    /// Every header arrives with its value, the body after them, all of them views of one
    /// buffer (a copied value would sit elsewhere), and SigV4's names are the parsed ones.
    #[test]
    fn headers_and_body_are_slices_of_one_buffer() {
        let headers: Vec<(String, String)> = [
            ("if-match", "\"abc\""),
            ("x-amz-date", "20261207T180000Z"),
            ("x-amz-security-token", "tok"),
            ("x-amz-content-sha256", "e3b0"),
            ("authorization", "AWS4 x"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .into();
        let mut map = HeaderMap::new();
        let body = shared_parts(headers.clone(), b"{\"a\":1}".to_vec(), &mut map).unwrap();
        assert_eq!(&body[..], b"{\"a\":1}");
        let mut at = body.as_ptr() as usize - headers.iter().map(|(_, v)| v.len()).sum::<usize>();
        for (name, value) in &headers {
            let got = map.get(HeaderName::from_bytes(name.as_bytes()).unwrap()).unwrap();
            assert_eq!(got.as_bytes(), value.as_bytes(), "{name}");
            assert_eq!(got.as_bytes().as_ptr() as usize, at, "{name} is not a view of the shared buffer");
            at += value.len();
        }
        assert_eq!(map.len(), headers.len());
    }

    /// A value `http` would refuse from a string is refused by name, not sent as raw bytes.
    #[test]
    fn a_header_value_that_is_not_visible_ascii_is_refused_by_name() {
        for (value, why) in [("\"é\"", "not ASCII"), ("a\nb", "failed to parse header value"), ("\x7f", "failed to parse header value")] {
            let headers = vec![("if-match".to_string(), value.to_string())];
            let err = shared_parts(headers, Vec::new(), &mut HeaderMap::new()).unwrap_err().to_string();
            assert!(err.contains("header if-match") && err.contains(why), "{value:?}: {err}");
        }
    }

    /// A request's future is allocated per request. glibc keeps freed chunks under 1,008 bytes
    /// in per-size lists; a larger request takes its slow path, which first consolidates the
    /// freed small chunks of its fast bins (the PUT's future was 5,592 bytes while a refresh of
    /// credentials was inline in it).
    #[test]
    fn a_request_future_stays_small() {
        let cfg = S3Config { endpoint: Some("http://127.0.0.1:8333".into()), path_style: true, ..S3Config::for_bucket("b") };
        for s3 in [S3Storage::new(cfg.clone()).unwrap(), S3Storage::with_default_credentials(cfg).unwrap()] {
            let put = std::mem::size_of_val(&s3.put_unboxed("k", b"{}", Condition::Matches("e")));
            let get = std::mem::size_of_val(&s3.get_unboxed("k"));
            assert!(put < 1008 && get < 1008, "PUT {put} bytes, GET {get}");
        }
    }

    /// A request for another origin is not put on this one.
    #[test]
    fn a_request_for_another_origin_keeps_its_own() {
        let cfg = S3Config { endpoint: Some("http://127.0.0.1:8333".into()), path_style: true, ..S3Config::for_bucket("b") };
        let s3 = S3Storage::new(cfg.clone()).unwrap();
        let other = S3Config { endpoint: Some("http://127.0.0.1:9999".into()), ..cfg };
        let req = s3lect_s3::Bucket::new(other).unwrap().get("k", SystemTime::now()).unwrap();
        assert_eq!(s3.url(&req).unwrap().as_str(), "http://127.0.0.1:9999/b/k");
    }
}
