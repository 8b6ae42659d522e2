//! `ElectorConfig`: the Go API's configuration, with durations and hooks, mapped onto the
//! component's configuration.

use crate::hooks::Hook;
use s3lect_guest::{Config, ConfigError};
use std::fmt;
use std::time::Duration;

#[derive(Clone)]
pub struct ElectorConfig {
    /// S3 object key of the lock object, e.g. "leader/my-group.json".
    pub lockfile_path: String,
    /// This instance's unique identity.
    pub server_id: String,
    /// host:port advertised for peer health checks.
    pub server_addr: String,
    /// Steps during transitions and the leader's renewals (default 5 s).
    pub frequent_interval: Duration,
    /// Follower polling while a healthy leader is known (default 30 s).
    pub infrequent_interval: Duration,
    /// Unchanged-etag time after which a follower takes over (default 15 s).
    pub leader_timeout: Duration,
    /// How long after sending its last successful renewal a leader still believes it leads
    /// (default 10 s; must be below leader_timeout allowing for clock drift).
    pub renew_deadline: Duration,
    /// Probe the leader's health endpoint instead of reading S3 while it answers.
    pub peer_mode: bool,
    /// Path of the health endpoint (default "/health/leadership").
    pub peer_health_path: String,
    /// Timeout of one peer probe (default 3 s).
    pub peer_timeout: Duration,
    /// CA certificate (PEM) that peers' health endpoints chain to.
    pub peer_ca_cert: Option<Vec<u8>>,
    /// Probe peers over plain HTTP. Only for trusted networks; off by default.
    pub peer_allow_plain_http: bool,
    /// Bound on clock rate drift between processes, parts per million (default 10 000 = 1 %).
    pub max_clock_drift_ppm: u32,
    /// Opt-in: also treat a record as stale by its wall-clock timestamp, trusting other
    /// machines' clocks to within this skew. None (default) never trusts other clocks.
    pub max_clock_skew: Option<Duration>,
    /// Create an absent lock object at once when nothing was watched (fast first election).
    /// Deleting the lock object during an election is outside what the protocol can make safe;
    /// false narrows that risk by making every absence stand for a leader timeout first.
    pub trust_absent_object: bool,
    /// Longest a hook may run; an acquire hook that overruns counts as failed (default 10 s).
    pub hook_timeout: Duration,
    /// At start, verify that the storage enforces conditional writes (default true), and find
    /// out the form of `If-Match` etag it accepts.
    pub check_conditional_writes: bool,
    /// How long the start-up check may retry transient storage errors (default 60 s).
    pub startup_budget: Duration,
    /// Runs after this instance won the lock object; an error resigns.
    pub on_acquire_leadership: Option<Hook>,
    /// Runs when leadership ends; errors are logged only.
    pub on_lose_leadership: Option<Hook>,
}

impl Default for ElectorConfig {
    fn default() -> Self {
        let core = Config::default();
        ElectorConfig {
            lockfile_path: String::new(),
            server_id: String::new(),
            server_addr: String::new(),
            frequent_interval: Duration::from_millis(core.frequent_interval_ms),
            infrequent_interval: Duration::from_millis(core.infrequent_interval_ms),
            leader_timeout: Duration::from_millis(core.leader_timeout_ms),
            renew_deadline: Duration::from_millis(core.renew_deadline_ms),
            peer_mode: false,
            peer_health_path: core.peer_health_path,
            peer_timeout: Duration::from_millis(core.peer_timeout_ms),
            peer_ca_cert: None,
            peer_allow_plain_http: false,
            max_clock_drift_ppm: core.max_clock_drift_ppm,
            max_clock_skew: None,
            trust_absent_object: core.trust_absent_object,
            hook_timeout: Duration::from_secs(10),
            check_conditional_writes: true,
            startup_budget: crate::storage::DEFAULT_STARTUP_BUDGET,
            on_acquire_leadership: None,
            on_lose_leadership: None,
        }
    }
}

impl fmt::Debug for ElectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ElectorConfig")
            .field("core", &self.core())
            .field("peer_ca_cert", &self.peer_ca_cert.as_ref().map(|c| format!("{} bytes", c.len())))
            .field("peer_allow_plain_http", &self.peer_allow_plain_http)
            .field("hook_timeout", &self.hook_timeout)
            .field("check_conditional_writes", &self.check_conditional_writes)
            .field("startup_budget", &self.startup_budget)
            .field("on_acquire_leadership", &self.on_acquire_leadership.is_some())
            .field("on_lose_leadership", &self.on_lose_leadership.is_some())
            .finish()
    }
}

/// Milliseconds, rounding a nonzero sub-millisecond duration up so it is not mistaken for 0.
fn ms(d: Duration) -> u64 {
    let m = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if m == 0 && !d.is_zero() { 1 } else { m }
}

impl ElectorConfig {
    /// Defaults for every setting, for `server_id` on the lock object `lockfile_path`.
    pub fn new(lockfile_path: impl Into<String>, server_id: impl Into<String>) -> ElectorConfig {
        ElectorConfig { lockfile_path: lockfile_path.into(), server_id: server_id.into(), ..ElectorConfig::default() }
    }

    /// The three timings that must fit together (see `docs/design.md`): how often the leader
    /// renews, how long an unchanged record stands before followers take over, and how long
    /// after its last successful renewal a leader still believes it leads. Checked here.
    pub fn with_timings(
        mut self,
        frequent_interval: Duration,
        leader_timeout: Duration,
        renew_deadline: Duration,
    ) -> Result<Self, ConfigError> {
        self.frequent_interval = frequent_interval;
        self.leader_timeout = leader_timeout;
        self.renew_deadline = renew_deadline;
        self.validate()?;
        Ok(self)
    }

    /// The component's view of this configuration.
    pub fn core(&self) -> Config {
        Config {
            lockfile_path: self.lockfile_path.clone(),
            server_id: self.server_id.clone(),
            server_addr: self.server_addr.clone(),
            frequent_interval_ms: ms(self.frequent_interval),
            infrequent_interval_ms: ms(self.infrequent_interval),
            leader_timeout_ms: ms(self.leader_timeout),
            renew_deadline_ms: ms(self.renew_deadline),
            peer_mode: self.peer_mode,
            peer_health_path: self.peer_health_path.clone(),
            peer_timeout_ms: ms(self.peer_timeout),
            max_clock_drift_ppm: self.max_clock_drift_ppm,
            max_clock_skew_ms: self.max_clock_skew.map(ms),
            trust_absent_object: self.trust_absent_object,
        }
    }

    /// Every rule of the core, plus the host's own.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.core().validate()?;
        if self.hook_timeout.is_zero() {
            return Err(ConfigError { rule: "durations-positive".into(), message: "hook_timeout must be greater than 0".into() });
        }
        if let Some(ca) = &self.peer_ca_cert {
            crate::tls::parse_certs(ca)
                .map_err(|e| ConfigError { rule: "peer-ca-cert-valid".into(), message: format!("peer_ca_cert: {e}") })?;
        }
        Ok(())
    }
}
