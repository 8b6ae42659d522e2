//! The test kit (not published): real S3 servers to test against (SeaweedFS, Ceph RGW), the
//! storage contract every `Storage` must keep, fault-injecting and CONNECT proxies, stand-ins for AWS's
//! credential endpoints, and bounded waits. Used by the tests of `host/` and `cli/`.

use s3lect::{LeaderRecord, S3Storage, Storage};
use s3lect_cli::local_s3::{LocalS3, find_weed};
pub use s3lect_cli::{cluster, local_s3};
use std::future::Future;
use std::time::Duration;

pub mod aws_stand_in;
pub mod connect_proxy;
pub mod contract;
pub mod fake_s3;
pub mod fault_proxy;
pub mod session_front;

/// Starts a SeaweedFS server with a fresh bucket. Fails loudly if the binary is missing: these
/// tests are about the real server, so there is no fallback.
pub async fn seaweed(bucket: &str) -> LocalS3 {
    let weed = find_weed().expect("SeaweedFS not found: run scripts/setup-s3-server.sh (or set S3LECT_WEED)");
    LocalS3::start(&weed, bucket).await.expect("SeaweedFS did not start")
}

pub fn storage(server: &LocalS3) -> S3Storage {
    S3Storage::new(server.s3_config()).expect("S3 client")
}

/// Polls `f` every 20 ms until it yields a value, or panics after `limit` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    s3lect_cli::wait::until(limit, Duration::from_millis(20), f)
        .await
        .unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Polls the lock object until its record satisfies `pred`, or panics after `limit` naming
/// `what`.
pub async fn wait_record(s3: &dyn Storage, lock: &str, what: &str, limit: Duration, pred: impl Fn(&LeaderRecord) -> bool) -> LeaderRecord {
    eventually(what, limit, || async { record(s3, lock).await.filter(|r| pred(r)) }).await
}

/// The lock object's record, if it exists and parses.
pub async fn record(storage: &dyn Storage, key: &str) -> Option<LeaderRecord> {
    let (data, _) = storage.get(key).await.ok()?;
    LeaderRecord::parse(&data).ok()
}

/// A CA bundle as systems build them: a certificate no TLS client can use as an anchor (this
/// machine's bundle holds such), then `ca_pem`.
pub fn bundle_with_unusable_cert(ca_pem: &str) -> String {
    format!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{ca_pem}")
}

/// moto's server mode on a free loopback port, for its STS (`AssumeRoleWithWebIdentity`).
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn moto_sts() -> Moto {
    moto_sts_over(None).await
}

/// moto over HTTPS with the given certificate and key (PEM files), else over HTTP.
pub async fn moto_sts_over(tls: Option<(&std::path::Path, &std::path::Path)>) -> Moto {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    assert!(bin.exists(), "moto not found: run scripts/setup-s3-server.sh (it installs moto[server] into .venv)");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    if let Some((cert, key)) = tls {
        cmd.arg("-c").arg(cert).arg("-k").arg(key);
    }
    let child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("moto_server starts");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let moto = Moto { child, endpoint: format!("{scheme}://127.0.0.1:{port}") };
    eventually("moto to listen", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
    })
    .await;
    moto
}

/// Runs futures concurrently on the calling task and returns their outputs in order (no extra
/// crate for `join_all`).
pub async fn join_all<F: Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// Serves HTTP/1.1 on a fresh loopback port with `handler`, until the test ends; returns the
/// address. Every stand-in server of the tests is one of these.
pub async fn serve<F, Fut, B, E>(handler: F) -> std::net::SocketAddr
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<hyper::Response<B>, E>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handler);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tcp), service).await;
            });
        }
    });
    addr
}

/// A bounded wait: resolves when `f` holds for the elector's status, checked every 20 ms
/// (leases end between steps, so there is no event to wait on for every change).
pub async fn wait_until(
    elector: &s3lect::Elector,
    limit: Duration,
    f: impl Fn(&s3lect::LeadershipStatus) -> bool,
) -> Result<s3lect::LeadershipStatus, String> {
    let mut last = None;
    let met = s3lect_cli::wait::until(limit, Duration::from_millis(20), || {
        let st = elector.status();
        let met = f(&st).then(|| st.clone());
        last = Some(st);
        std::future::ready(met)
    })
    .await;
    // `until` asks at least once, so there is a last status.
    met.ok_or_else(|| format!("condition not met within {limit:?}; last status: {:?}", last.expect("asked once")))
}
