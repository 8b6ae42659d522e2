//! A local S3-compatible server started on free loopback ports, for the demo and the end-to-end
//! tests: SeaweedFS (`weed mini`), or a single-node Ceph RGW (`scripts/ceph.sh`). It is killed
//! when the handle is dropped.

use s3lect::{Condition, S3Config, S3Storage, Storage, StorageError};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "s3lect-test-key";
pub const SECRET_KEY: &str = "s3lect-test-secret";

pub struct LocalS3 {
    server: Server,
    pub endpoint: String,
    pub bucket: String,
    /// The CA clients trust the server by, when it serves HTTPS.
    ca_cert_pem: Option<Vec<u8>>,
    _dir: tempfile::TempDir,
}

/// HTTPS for a SeaweedFS's S3 port: its certificate chain and key, and the CA that signed it
/// (what clients are given to trust it).
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

enum Server {
    Seaweed(Child),
    /// The cluster's folder, for `scripts/ceph.sh stop`.
    Ceph(PathBuf),
}

fn ceph_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ceph.sh")
}

/// Is Ceph installed (`scripts/ceph.sh install`)?
pub fn ceph_installed() -> bool {
    ["radosgw", "ceph-mon", "ceph-osd"].iter().all(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// The `weed` binary: `$S3LECT_WEED`, else `.venv/bin/weed` in the project (as installed by
/// scripts/setup-s3-server.sh), else `weed` on PATH.
pub fn find_weed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("S3LECT_WEED") {
        return Some(PathBuf::from(p));
    }
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join(".venv/bin/weed");
    if project.exists() {
        return Some(project);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join("weed")).find(|p| p.exists())
}

/// A port p with p, p+1, p+10000 and p+20000 free (SeaweedFS binds gRPC at +10000 and more at
/// +20000; Ceph's monitor goes at +1). All four lie below Linux's ephemeral range (32768+), so
/// no client connection of a concurrent test can take one between this check and the bind, and
/// none is handed out twice in a process: tests start servers concurrently, and a port still
/// free here may be another server's until it binds. (Suspected, not shown, in a Ceph test whose
/// RGW answered at start and then refused connections for 60 s while a SeaweedFS test ran
/// beside it: a SeaweedFS on the same port would answer the start script's check, then exit.)
fn free_port() -> Result<u16, String> {
    // Never released: a process starts tens of servers, and there are 2,700 ports to pick from.
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let p = 10_000 + fastrand::u16(..2_700);
        let set = [p, p + 1, p + 10_000, p + 20_000];
        if set.iter().all(|q| !handed_out.contains(q) && TcpListener::bind(("127.0.0.1", *q)).is_ok()) {
            handed_out.extend(set);
            return Ok(p);
        }
    }
    Err("no free port set found on 127.0.0.1".into())
}

impl LocalS3 {
    /// Starts SeaweedFS with `bucket` pre-created and waits until it serves S3 requests.
    pub async fn start(weed: &Path, bucket: &str) -> Result<LocalS3, String> {
        LocalS3::start_accepting(weed, bucket, &[]).await
    }

    /// The same, accepting `extra_keys` (access key, secret) besides the test keys: for
    /// credentials that rotate during a test.
    pub async fn start_accepting(weed: &Path, bucket: &str, extra_keys: &[(&str, &str)]) -> Result<LocalS3, String> {
        LocalS3::start_with(weed, bucket, extra_keys, None).await
    }

    /// The same, serving S3 over HTTPS only, with `tls`'s certificate.
    pub async fn start_https(weed: &Path, bucket: &str, tls: &ServerTls) -> Result<LocalS3, String> {
        LocalS3::start_with(weed, bucket, &[], Some(tls)).await
    }

    async fn start_with(weed: &Path, bucket: &str, extra_keys: &[(&str, &str)], tls: Option<&ServerTls>) -> Result<LocalS3, String> {
        // Another test may take a port between our check and SeaweedFS's bind: try again.
        let mut last = String::new();
        for _ in 0..3 {
            match LocalS3::start_once(weed, bucket, extra_keys, tls).await {
                Ok(s) => return Ok(s),
                Err(e) if port_taken(&e) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn start_once(weed: &Path, bucket: &str, extra_keys: &[(&str, &str)], tls: Option<&ServerTls>) -> Result<LocalS3, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // Given a certificate, SeaweedFS serves its S3 port over HTTPS (and nothing else there).
        let mut tls_args = Vec::new();
        if let Some(t) = tls {
            for (flag, file, pem) in [("-s3.cert.file", "s3-cert.pem", &t.cert_pem), ("-s3.key.file", "s3-key.pem", &t.key_pem)] {
                let path = dir.path().join(file);
                std::fs::write(&path, pem).map_err(|e| e.to_string())?;
                tls_args.push(format!("{flag}={}", path.display()));
            }
        }
        let identities = dir.path().join("s3.json");
        let credentials: Vec<String> = [(ACCESS_KEY, SECRET_KEY)]
            .iter()
            .chain(extra_keys)
            .map(|(k, s)| format!(r#"{{"accessKey":"{k}","secretKey":"{s}"}}"#))
            .collect();
        let config = format!(
            r#"{{"identities":[{{"name":"s3lect","credentials":[{}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#,
            credentials.join(",")
        );
        std::fs::write(&identities, config).map_err(|e| e.to_string())?;
        let ports = (0..5).map(|_| free_port()).collect::<Result<Vec<u16>, String>>()?;
        let log = std::fs::File::create(dir.path().join("weed.log")).map_err(|e| e.to_string())?;
        let child = Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            // `weed mini` sizes its volumes from the disk's free space; a test server holds a few
            // small objects, so fix the sizes and stay independent of how full the disk is.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=16"])
            .arg(format!("-s3.port={}", ports[0]))
            .arg(format!("-master.port={}", ports[1]))
            .arg(format!("-volume.port={}", ports[2]))
            .arg(format!("-filer.port={}", ports[3]))
            .arg(format!("-admin.port={}", ports[4]))
            .arg(format!("-bucket={bucket}"))
            .arg(format!("-s3.config={}", identities.display()))
            .args(&tls_args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", weed.display()))?;
        let mut server = LocalS3 {
            server: Server::Seaweed(child),
            endpoint: format!("{}://127.0.0.1:{}", if tls.is_some() { "https" } else { "http" }, ports[0]),
            bucket: bucket.into(),
            ca_cert_pem: tls.map(|t| t.ca_pem.clone().into_bytes()),
            _dir: dir,
        };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// Starts a single-node Ceph RGW (about 15 s) with `bucket` created.
    pub async fn start_ceph(bucket: &str) -> Result<LocalS3, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let cluster = dir.path().join("ceph");
        // S3 on the port, the monitor on the next one (free_port checks both).
        let port = free_port()?;
        let out = Command::new("bash")
            .arg(ceph_script())
            .arg("start")
            .arg(&cluster)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running scripts/ceph.sh: {e}"))?;
        let mut server = LocalS3 {
            server: Server::Ceph(cluster),
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.into(),
            ca_cert_pem: None,
            _dir: dir,
        };
        if !out.status.success() {
            return Err(format!("Ceph did not start: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let storage = S3Storage::new(server.s3_config()).map_err(|e| e.to_string())?;
        let start = Instant::now();
        // RGW may answer before its pools are writable: retry the bucket's creation a while.
        loop {
            match storage.create_bucket().await {
                Ok(()) => break,
                Err(e) if start.elapsed() > Duration::from_secs(60) => {
                    return Err(format!("creating bucket {bucket} on Ceph: {e}; {}", server.log_report()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    fn name(&self) -> &'static str {
        match self.server {
            Server::Seaweed(_) => "SeaweedFS",
            Server::Ceph(_) => "Ceph RGW",
        }
    }

    /// The server's log, for an error that says why it did not serve.
    fn log_report(&self) -> String {
        let log = match &self.server {
            Server::Seaweed(_) => self._dir.path().join("weed.log"),
            Server::Ceph(cluster) => cluster.join("log/client.rgw.log"),
        };
        log_report(&std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// Ready means: the bucket answers a GET of a missing key with NoSuchKey, and takes a write
    /// (SeaweedFS assigns its first volume on the first write; a server that cannot is not
    /// ready, and its log says why).
    async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        const PROBE: &str = "s3lect-readiness-probe";
        let storage =
            S3Storage::new(S3Config { request_timeout: Duration::from_secs(5), ..self.s3_config() }).map_err(|e| e.to_string())?;
        let start = Instant::now();
        loop {
            // A server that exited (a port taken after all) will not become ready.
            let exited = match &mut self.server {
                Server::Seaweed(child) => child.try_wait().ok().flatten().is_some(),
                Server::Ceph(_) => false,
            };
            let answer = match storage.get(PROBE).await {
                Err(StorageError::NotFound) => match storage.put_if_match(PROBE, b"ready", Condition::Absent).await {
                    Ok(_) => storage.delete(PROBE).await,
                    Err(e) => Err(e),
                },
                other => other.map(|_| ()),
            };
            match answer {
                Ok(()) => return Ok(()),
                other if exited || start.elapsed() > limit => {
                    let why = if exited { "exited".to_string() } else { format!("not ready after {limit:?}") };
                    return Err(format!("{} {why} (last answer {other:?}); {}", self.name(), self.log_report()));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The environment a storage component (or the composed cron component) needs to reach
    /// this server as server `id` on `lock`.
    pub fn component_env(&self, id: &str, lock: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("S3LECT_BUCKET", &self.bucket),
            ("S3LECT_LOCKFILE_PATH", lock),
            ("S3LECT_SERVER_ID", id),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn s3_config(&self) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
            ca_cert_pem: self.ca_cert_pem.clone(),
            request_timeout: Duration::from_secs(20),
        }
    }

    /// The SeaweedFS process (none for Ceph, which runs as several daemons).
    pub fn pid(&self) -> Option<u32> {
        match &self.server {
            Server::Seaweed(child) => Some(child.id()),
            Server::Ceph(_) => None,
        }
    }

    /// Freezes the server (SIGSTOP): requests hang, as in an outage with no answers.
    pub fn suspend(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a suspended server (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        match &self.server {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            Server::Seaweed(child) => unsafe {
                libc::kill(child.id() as libc::pid_t, sig);
            },
            Server::Ceph(_) => panic!("suspending is only implemented for SeaweedFS"),
        }
    }
}

/// Did SeaweedFS fail to start because a port was taken (another test's server took it
/// between our check and its bind)? Then starting again on other ports is the remedy.
fn port_taken(start_error: &str) -> bool {
    start_error.contains("Port allocation failed") || start_error.contains("address already in use")
}

/// What a failed start's log says: its fatal lines (glog's `F` level, `F1206 03:59:32.62 s3.go:448]
/// …`), which come before the stacks of every goroutine and so can be missing from the tail,
/// then its last 15 lines.
fn log_report(log: &str) -> String {
    let fatal: Vec<&str> =
        log.lines().filter(|l| l.strip_prefix('F').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))).collect();
    let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
    format!("fatal: {fatal:?}; log tail:\n{}", tail.join("\n"))
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Seaweed(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Server::Ceph(dir) => {
                let _ = Command::new("bash").arg(ceph_script()).arg("stop").arg(dir.as_path()).output();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_taken_at_bind_is_seen_though_goroutine_stacks_fill_the_tail() {
        let mut log = String::from(
            "I1206 03:59:31.100000 mini.go:1473 starting services\n\
             F1206 03:59:32.625408 s3.go:448] S3 API Server listener on 127.0.0.1:12088 error: listen tcp 127.0.0.1:12088: bind: address already in use\n",
        );
        for i in 0..40 {
            log.push_str(&format!("goroutine {i} [running]:\n\tgithub.com/seaweedfs/seaweedfs/weed/glog.Fatalf(...)\n"));
        }
        let report = log_report(&log);
        assert!(port_taken(&report), "{report}");
        assert!(!log.lines().rev().take(15).any(|l| l.contains("address already in use")), "the tail alone would miss it");
    }

    #[test]
    fn no_port_is_handed_out_twice_in_a_process() {
        // Picked at random alone, two of 300 would often be a port apart (3 in 2,700 a pair).
        let mut seen = std::collections::HashSet::new();
        for _ in 0..300 {
            let p = free_port().unwrap();
            for q in [p, p + 1, p + 10_000, p + 20_000] {
                assert!(seen.insert(q), "port {q} handed out twice");
            }
        }
    }

    #[test]
    fn other_lines_starting_with_f_are_not_fatal() {
        let report = log_report("Failed to start debug server: address already in use\nF: not glog\n");
        assert!(report.starts_with("fatal: []"), "{report}");
    }
}
