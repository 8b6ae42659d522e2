//! What the scale section's conditional PUTs cost without the election: the same number of
//! lock objects, each renewed once a frequent interval, through the library's S3 client alone,
//! and then written by hand over bare HTTP/1.1 keep-alive connections (signed the same way):
//! no HTTP library, so what is left is signing, the runtime and the kernel. The scale row minus
//! the first is what the election adds; the first minus the second, what the HTTP client adds.

use super::cost::cpu_split;
use super::stats::Row;
use s3lect::storage::Condition;
use s3lect::{S3Storage, Storage};
use s3lect_cli::local_s3::LocalS3;
use s3lect_s3::{Bucket, Request};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The leader's renewal interval at the defaults.
const RENEW: Duration = Duration::from_secs(5);

/// Connections of the hand-written client: the library's cap on requests in flight.
const CONNECTIONS: usize = s3lect::storage::MAX_IN_FLIGHT;

/// A record of a leader's size.
const RECORD: &[u8] = br#"{"leaderId":"host-1","leaderAddr":"","lastUpdated":"2026-12-07T06:00:00.000000000Z","term":1}"#;

/// Renewals that succeeded and that failed, over the whole run.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Counts {
    fn record(&self, ok: bool) {
        if ok { &self.ok } else { &self.failed }.fetch_add(1, Ordering::Relaxed);
    }
}

/// Both rows, on one SeaweedFS: `keys` lock objects, each PUT once every [`RENEW`] with its
/// last etag, measured over `secs` after every key has been written once.
pub async fn rows(weed: &Path, keys: usize, secs: u64) -> Vec<Row> {
    let server = LocalS3::start(weed, "bench-floor").await.unwrap();
    let weed_pid = server.pid().expect("the floor runs on SeaweedFS");
    let s3: Arc<dyn Storage> = Arc::new(S3Storage::new(server.s3_config()).unwrap());
    let counts = Arc::new(Counts::default());
    let mut tasks = JoinSet::new();
    for k in 0..keys {
        let (s3, counts) = (s3.clone(), counts.clone());
        let first = Instant::now() + phase(k, keys);
        tasks.spawn(async move { client_renewals(&*s3, format!("bench/client/{k}.json"), first, &counts).await });
    }
    let client =
        measure("through the library's S3 client (reqwest, hyper, aws-sigv4), a task per object", keys, secs, weed_pid, &counts).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}

    let bucket = Arc::new(Bucket::new(server.s3_config()).unwrap());
    let authority = server.endpoint.trim_start_matches("http://").to_string();
    let counts = Arc::new(Counts::default());
    for c in 0..CONNECTIONS.min(keys) {
        let (bucket, authority, counts) = (bucket.clone(), authority.clone(), counts.clone());
        tasks.spawn(async move { bare_renewals(&bucket, &authority, c, keys, &counts).await });
    }
    let bare = measure(
        &format!("written by hand on {} keep-alive connections, signed by the same code, no HTTP library", CONNECTIONS.min(keys)),
        keys,
        secs,
        weed_pid,
        &counts,
    )
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    vec![client, bare]
}

/// Where in the interval object `k` of `n` renews: evenly spread, as independent electors are.
fn phase(k: usize, n: usize) -> Duration {
    RENEW * u32::try_from(k).unwrap() / u32::try_from(n).unwrap()
}

/// Waits for a first write of every key, then takes the process's and the server's CPU over
/// `secs`.
async fn measure(how: &str, keys: usize, secs: u64, weed_pid: u32, counts: &Counts) -> Row {
    let deadline = Instant::now() + RENEW * 6;
    while counts.ok.load(Ordering::Relaxed) < keys as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let me = std::process::id();
    // Also the moment to attach a profiler.
    eprintln!("scale floor: {keys} objects {how}: measuring for {secs} s (pid {me})");
    let ((u0, s0), (wu0, ws0), t0) = (cpu_split(me), cpu_split(weed_pid), Instant::now());
    let (ok0, failed0) = (counts.ok.load(Ordering::Relaxed), counts.failed.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let ((u1, s1), (wu1, ws1)) = (cpu_split(me), cpu_split(weed_pid));
    let (ok, failed) = (counts.ok.load(Ordering::Relaxed) - ok0, counts.failed.load(Ordering::Relaxed) - failed0);
    let pct = |v: f64| v / elapsed * 100.0;
    let cpu = pct(u1 - u0 + s1 - s0);
    let per_put = (u1 - u0 + s1 - s0) / (ok + failed).max(1) as f64 * 1e6;
    let alloc = super::allocator::name();
    Row::new(
        "scale: the same PUTs without the election",
        &format!(
            "{keys} objects, each PUT If-Match every 5 s, a current-thread runtime, {alloc}, {how}; {ok} PUTs succeeded and {failed} failed in {secs} s; {per_put:.0} µs of CPU each (user {:.1} %, system {:.1} %); SeaweedFS meanwhile {:.0} %",
            pct(u1 - u0),
            pct(s1 - s0),
            pct(wu1 - wu0 + ws1 - ws0),
        ),
        "% CPU",
        vec![cpu],
        "–",
    )
}

/// One object renewed through [`S3Storage`], as an elector's leader does.
async fn client_renewals(s3: &dyn Storage, key: String, first: Instant, counts: &Counts) {
    let mut etag: Option<String> = None;
    let mut due = first;
    loop {
        tokio::time::sleep_until(due).await;
        let condition = etag.as_deref().map_or(Condition::Absent, Condition::Matches);
        let written = s3.put_if_match(&key, RECORD, condition).await;
        counts.record(written.is_ok());
        // Lost (a timeout that was applied): the next renewal starts from the current etag.
        etag = match written {
            Ok(e) => Some(e),
            Err(_) => s3.get(&key).await.ok().map(|(_, e)| e),
        };
        due += RENEW;
    }
}

/// Connection `c`'s share of the objects, renewed over one keep-alive connection.
async fn bare_renewals(bucket: &Bucket, authority: &str, c: usize, keys: usize, counts: &Counts) {
    let mut conn = tokio::net::TcpStream::connect(authority).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let mine: Vec<usize> = (c..keys).step_by(CONNECTIONS).collect();
    let mut etags: Vec<Option<String>> = vec![None; mine.len()];
    let mut buf = Vec::with_capacity(8192);
    let start = Instant::now();
    for round in 0u32.. {
        for (i, k) in mine.iter().enumerate() {
            tokio::time::sleep_until(start + RENEW * round + phase(*k, keys)).await;
            let key = format!("bench/bare/{k}.json");
            let req = bucket.put_if_match(&key, RECORD, etags[i].as_deref(), SystemTime::now()).unwrap();
            let (status, etag) = exchange(&mut conn, &mut buf, req).await;
            counts.record(status == 200);
            etags[i] = match (status, etag) {
                (200, Some(e)) => Some(e),
                _ => exchange(&mut conn, &mut buf, bucket.get(&key, SystemTime::now()).unwrap()).await.1,
            };
        }
    }
}

/// One request and its answer on `conn`: the status and the ETag header. Enough HTTP/1.1 for
/// SeaweedFS's answers to these requests (a Content-Length body, no chunking).
async fn exchange(conn: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, req: Request) -> (u16, Option<String>) {
    use std::io::Write;
    let mut out = Vec::with_capacity(1024 + req.body.len());
    write!(out, "{} {} HTTP/1.1\r\n", req.method, req.path).unwrap();
    for (name, value) in &req.headers {
        write!(out, "{name}: {value}\r\n").unwrap();
    }
    write!(out, "content-length: {}\r\n\r\n", req.body.len()).unwrap();
    out.extend_from_slice(&req.body);
    conn.write_all(&out).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "SeaweedFS closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("an HTTP head");
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).expect("an HTTP status line");
    let header = |name: &str| {
        head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
    };
    let length: usize = header("content-length").map_or(0, |v| v.parse().expect("a Content-Length"));
    let etag = header("etag");
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "SeaweedFS closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, etag)
}
