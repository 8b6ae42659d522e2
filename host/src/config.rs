//! `ElectorConfig`: the Go API's configuration, with durations and hooks, mapped onto the
//! component's configuration.

use crate::hooks::Hook;
use s3lect_guest::{Config, ConfigError};
use std::fmt;
use std::time::Duration;

/// The host's type of a core setting's kind: durations where the core has milliseconds.
macro_rules! host_type {
    (Ms) => { Duration };
    (OptMs) => { Option<Duration> };
    ($kind:ident) => { s3lect_guest::setting_type!($kind) };
}

/// Core value → host value.
macro_rules! to_host {
    (Ms, $v:expr) => {
        Duration::from_millis($v)
    };
    (OptMs, $v:expr) => {
        $v.map(Duration::from_millis)
    };
    ($kind:ident, $v:expr) => {
        $v
    };
}

/// Host value → core value.
macro_rules! to_core {
    (Ms, $v:expr) => {
        ms($v)
    };
    (OptMs, $v:expr) => {
        $v.map(ms)
    };
    ($kind:ident, $v:expr) => {
        $v.clone()
    };
}

/// `ElectorConfig`: the core's settings (from the settings table, `guest/src/settings.rs`)
/// followed by the host's own.
macro_rules! define_elector_config {
    (() $( $(#[doc = $doc:literal])* $name:ident / $host:ident : $kind:ident = $default:expr, $flag:literal, $var:literal; )*) => {
        /// Everything an [`Elector`](crate::Elector) is configured with: the core's settings,
        /// with durations, then the host's (TLS, hooks, start-up check). Start from
        /// [`ElectorConfig::new`].
        #[derive(Clone)]
        pub struct ElectorConfig {
            $( $(#[doc = $doc])* pub $host: host_type!($kind), )*
            /// CA certificate (PEM) that peers' health endpoints chain to.
            pub peer_ca_cert: Option<Vec<u8>>,
            /// Probe peers over plain HTTP. Only for trusted networks; off by default.
            pub peer_allow_plain_http: bool,
            /// Longest a hook may run; an acquire hook that overruns counts as failed (default 10 s).
            pub hook_timeout: Duration,
            /// At start, verify that the storage enforces conditional writes (default true), and
            /// find out the form of `If-Match` etag it accepts.
            pub check_conditional_writes: bool,
            /// How long the start-up check may retry transient storage errors (default 60 s).
            pub startup_budget: Duration,
            /// Runs after this instance won the lock object; an error resigns.
            pub on_acquire_leadership: Option<Hook>,
            /// Runs when leadership ends; errors are logged only.
            pub on_lose_leadership: Option<Hook>,
            /// Where to count requests, probes, hooks and leadership ([`crate::metrics`]).
            pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
        }

        impl Default for ElectorConfig {
            fn default() -> Self {
                let core = Config::default();
                ElectorConfig {
                    $( $host: to_host!($kind, core.$name), )*
                    peer_ca_cert: None,
                    peer_allow_plain_http: false,
                    hook_timeout: Duration::from_secs(10),
                    check_conditional_writes: true,
                    startup_budget: crate::storage::DEFAULT_STARTUP_BUDGET,
                    on_acquire_leadership: None,
                    on_lose_leadership: None,
                    metrics: None,
                }
            }
        }

        impl ElectorConfig {
            /// The core's settings as given, the host's at their defaults.
            pub fn from_core(core: Config) -> ElectorConfig {
                ElectorConfig { $( $host: to_host!($kind, core.$name), )* ..ElectorConfig::default() }
            }

            /// The component's view of this configuration.
            pub fn core(&self) -> Config {
                Config { $( $name: to_core!($kind, self.$host), )* }
            }
        }
    };
}

s3lect_guest::for_each_setting!(define_elector_config);

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
            .field("metrics", &self.metrics.is_some())
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
