//! Who gets a connection to the health endpoint, and how long they may keep it. The endpoint
//! faces anyone who can reach its port, so: a cap on connections in all and per source address
//! (one client cannot take every slot from the peers), time limits on the TLS handshake and on
//! request headers, and an accept loop that backs off — with a rate-limited warning — when the
//! process runs out of file descriptors instead of spinning.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits of the health endpoint.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Open connections at most (default: a quarter of the file-descriptor limit, 16–1024).
    pub max_connections: usize,
    /// Open connections from one source address at most (default 32).
    pub max_per_address: usize,
    /// Longest a TLS handshake may take (default 5 s).
    pub handshake_timeout: Duration,
    /// Longest a client may take to send a request's headers, also between requests on a
    /// kept-alive connection (default 5 s). A watch is held by the server, not the client,
    /// so it is not limited by this.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: (fd_limit() / 4).clamp(16, 1024),
            max_per_address: 32,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
        }
    }
}

/// The soft limit on open files (RLIMIT_NOFILE), or 1024 if unknown.
fn fd_limit() -> usize {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 { usize::try_from(rl.rlim_cur).unwrap_or(usize::MAX) } else { 1024 }
}

/// Counts open connections; hands out a [`Ticket`] per admitted one.
#[derive(Clone)]
pub(crate) struct Admission {
    limits: Limits,
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
}

/// An admitted connection; dropping it frees its slot.
pub(crate) struct Ticket {
    open: Arc<Mutex<(usize, HashMap<IpAddr, usize>)>>,
    addr: IpAddr,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Admission {
        Admission { limits, open: Arc::default() }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A slot for a connection from `addr`, or none when over a cap.
    pub(crate) fn admit(&self, addr: IpAddr) -> Option<Ticket> {
        let mut open = self.open.lock().unwrap();
        let from = open.1.get(&addr).copied().unwrap_or(0);
        if open.0 >= self.limits.max_connections || from >= self.limits.max_per_address {
            return None;
        }
        open.0 += 1;
        *open.1.entry(addr).or_default() += 1;
        Some(Ticket { open: self.open.clone(), addr })
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.lock().unwrap().0
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap();
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.addr);
            }
        }
    }
}

/// A warning that is logged at most once per interval, with how many were held back.
pub(crate) struct RateLimitedWarning {
    what: &'static str,
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedWarning {
    pub(crate) fn new(what: &'static str, every: Duration) -> RateLimitedWarning {
        RateLimitedWarning { what, every, last: None, suppressed: 0 }
    }

    pub(crate) fn warn(&mut self, detail: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %detail, suppressed = self.suppressed, "{}", self.what);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Pause after a failed accept: doubling from 10 ms to 1 s while failures continue. Failures
/// here (EMFILE, ENFILE, ENOBUFS) persist until something else closes, so retrying at once
/// would only spin.
pub(crate) fn accept_backoff(failures_in_a_row: u32) -> Duration {
    Duration::from_millis(10u64 << failures_in_a_row.min(7)).min(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_apply_in_all_and_per_address_and_free_on_drop() {
        let a = Admission::new(Limits { max_connections: 3, max_per_address: 2, ..Limits::default() });
        let (x, y): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let t1 = a.admit(x).unwrap();
        let _t2 = a.admit(x).unwrap();
        assert!(a.admit(x).is_none(), "per-address cap");
        let _t3 = a.admit(y).unwrap();
        assert!(a.admit(y).is_none(), "total cap");
        drop(t1);
        assert_eq!(a.open(), 2);
        assert!(a.admit(y).is_some());
    }

    #[test]
    fn accept_backoff_grows_to_a_second() {
        assert_eq!(accept_backoff(0), Duration::from_millis(10));
        assert_eq!(accept_backoff(3), Duration::from_millis(80));
        assert_eq!(accept_backoff(30), Duration::from_secs(1));
    }
}
