//! Elector configuration, its defaults and the named rules it must satisfy.

use std::fmt;

use crate::settings::{Setting, SettingValue, define_config};

crate::for_each_setting!(define_config);

pub const DEFAULT_PEER_HEALTH_PATH: &str = "/health/leadership";
/// S3's limit on key length, in bytes.
const MAX_KEY_BYTES: usize = 1024;

/// A broken configuration rule: `rule` is a stable name, `message` explains with the values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub rule: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config ({}): {}", self.rule, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn broken(rule: &'static str, message: String) -> Result<(), ConfigError> {
    Err(ConfigError { rule: rule.to_string(), message })
}

impl Config {
    /// Checks every rule; returns the first one broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server_id.trim().is_empty() {
            return broken("server-id-required", "server-id must not be empty".into());
        }
        validate_key(&self.lockfile_path)?;
        let durations = [
            ("frequent-interval-ms", self.frequent_interval_ms),
            ("infrequent-interval-ms", self.infrequent_interval_ms),
            ("leader-timeout-ms", self.leader_timeout_ms),
            ("renew-deadline-ms", self.renew_deadline_ms),
            ("peer-timeout-ms", self.peer_timeout_ms),
        ];
        for (name, value) in durations {
            if value == 0 {
                return broken("durations-positive", format!("{name} must be greater than 0"));
            }
            // Every rule computes in nanoseconds: bounded values cannot overflow there.
            if value > MAX_DURATION_MS {
                return broken("durations-bounded", format!("{name} ({value}) must be at most {MAX_DURATION_MS} (30 days)"));
            }
        }
        for (name, value) in [("max-clock-skew-ms", self.max_clock_skew_ms), ("server-clock-skew-ms", self.server_clock_skew_ms)] {
            if value.is_some_and(|s| s > MAX_DURATION_MS) {
                return broken("durations-bounded", format!("{name} must be at most {MAX_DURATION_MS} (30 days)"));
            }
        }
        if self.frequent_interval_ms >= self.renew_deadline_ms {
            return broken(
                "frequent-below-renew-deadline",
                format!(
                    "frequent-interval-ms ({}) must be below renew-deadline-ms ({}) so a renewal can be retried before the lease ends",
                    self.frequent_interval_ms, self.renew_deadline_ms
                ),
            );
        }
        if self.infrequent_interval_ms < self.frequent_interval_ms {
            return broken(
                "infrequent-not-below-frequent",
                format!(
                    "infrequent-interval-ms ({}) must not be below frequent-interval-ms ({})",
                    self.infrequent_interval_ms, self.frequent_interval_ms
                ),
            );
        }
        if self.max_clock_drift_ppm >= 500_000 {
            return broken("clock-drift-bound", format!("max-clock-drift-ppm ({}) must be below 500000 (50 %)", self.max_clock_drift_ppm));
        }
        // renew·(1+ρ) < timeout·(1−ρ), in integers: renew·(10⁶+ppm) < timeout·(10⁶−ppm).
        let ppm = u128::from(self.max_clock_drift_ppm);
        if u128::from(self.renew_deadline_ms) * (1_000_000 + ppm) >= u128::from(self.leader_timeout_ms) * (1_000_000 - ppm) {
            return broken(
                "renew-deadline-below-leader-timeout",
                format!(
                    "renew-deadline-ms ({}) × (1 + drift) must be below leader-timeout-ms ({}) × (1 − drift) with drift {} ppm, or an old leader could still believe it leads when a follower takes over",
                    self.renew_deadline_ms, self.leader_timeout_ms, self.max_clock_drift_ppm
                ),
            );
        }
        // By the server's clock a record may look a resolution step plus the front-ends' skew
        // older than it is (docs/design.md, "Server clock"): the lease must end before that.
        if let Some(skew) = self.server_clock_skew_ms
            && !self.server_clock_fits(skew)
        {
            return broken(
                "renew-deadline-below-server-clock-timeout",
                format!(
                    "with server-clock-skew-ms ({skew}), renew-deadline-ms ({}) × (1 + drift) must be below (leader-timeout-ms ({}) − {SERVER_CLOCK_RESOLUTION_MS} ms date resolution − {skew} ms skew) × (1 − drift) with drift {} ppm, or a record could look stale by the server's clock while its writer still believes it leads",
                    self.renew_deadline_ms, self.leader_timeout_ms, self.max_clock_drift_ppm
                ),
            );
        }
        // A probe must answer within a step; without peer mode the timeout is unused.
        if self.peer_mode && self.peer_timeout_ms >= self.frequent_interval_ms {
            return broken(
                "peer-timeout-below-frequent",
                format!("peer-timeout-ms ({}) must be below frequent-interval-ms ({})", self.peer_timeout_ms, self.frequent_interval_ms),
            );
        }
        if !self.peer_health_path.starts_with('/') {
            return broken("peer-health-path-absolute", format!("peer-health-path ({:?}) must start with '/'", self.peer_health_path));
        }
        if !self.peer_cert_sha256.is_empty() && !is_sha256_hex(&self.peer_cert_sha256) {
            return broken(
                "peer-cert-sha256-hex",
                format!("peer-cert-sha256 ({:?}) must be 64 lowercase hex digits", self.peer_cert_sha256),
            );
        }
        if self.peer_mode && self.server_addr.trim().is_empty() {
            return broken("server-addr-required-for-peer-mode", "peer-mode needs server-addr, the address followers probe".into());
        }
        Ok(())
    }

    /// Whether a lease ends before its record can look a leader timeout old by a server clock
    /// whose front-ends differ by up to `skew_ms` (the rule above; `server-clock-auto` is used
    /// only where it holds for its assumed skew).
    pub(crate) fn server_clock_fits(&self, skew_ms: u64) -> bool {
        let ppm = u128::from(self.max_clock_drift_ppm.min(999_999));
        let seen = self.leader_timeout_ms.saturating_sub(SERVER_CLOCK_RESOLUTION_MS.saturating_add(skew_ms));
        u128::from(self.renew_deadline_ms) * (1_000_000 + ppm) < u128::from(seen) * (1_000_000 - ppm)
    }
}

/// 64 lowercase hex digits: a SHA-256 as the records carry it.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// HTTP dates (`Date`, `Last-Modified`) count whole seconds.
pub const SERVER_CLOCK_RESOLUTION_MS: u64 = 1_000;

/// Upper bound on every duration setting: 30 days, far beyond any sensible lease, far below
/// where milliseconds × 10⁶ would overflow.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3_600_000;

/// A lock object key must be a usable S3 key that means the same on every server.
fn validate_key(key: &str) -> Result<(), ConfigError> {
    let rule = "lockfile-path-valid";
    if key.is_empty() {
        return broken("lockfile-path-required", "lockfile-path must not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return broken(rule, format!("lockfile-path is {} bytes; S3 keys are at most {MAX_KEY_BYTES}", key.len()));
    }
    if key.starts_with('/') {
        return broken(rule, format!("lockfile-path {key:?} must not start with '/'"));
    }
    if key.ends_with('/') {
        return broken(rule, format!("lockfile-path {key:?} names a folder; it must end in an object name"));
    }
    if key.chars().any(char::is_control) {
        return broken(rule, format!("lockfile-path {key:?} contains a control character"));
    }
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        return broken(rule, format!("lockfile-path {key:?} contains a '.' or '..' segment, which some servers normalise away"));
    }
    // SeaweedFS stores a//b, a\b and a/b as one object: two configurations that look different
    // would share a lock.
    if key.contains("//") {
        return broken(rule, format!("lockfile-path {key:?} contains an empty segment ('//'), which some servers normalise away"));
    }
    if key.contains('\\') {
        return broken(rule, format!("lockfile-path {key:?} contains a backslash, which some servers read as '/'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config { lockfile_path: "leader/group.json".into(), server_id: "a".into(), ..Config::default() }
    }

    fn rule_of(c: Config) -> String {
        c.validate().expect_err("config should be rejected").rule
    }

    #[test]
    fn defaults_match_the_seed_and_validate() {
        let c = valid();
        assert_eq!(
            (c.frequent_interval_ms, c.infrequent_interval_ms, c.leader_timeout_ms, c.peer_timeout_ms),
            (5_000, 30_000, 15_000, 3_000)
        );
        assert_eq!(c.peer_health_path, "/health/leadership");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(rule_of(Config { server_id: " ".into(), ..valid() }), "server-id-required");
        assert_eq!(rule_of(Config { lockfile_path: "".into(), ..valid() }), "lockfile-path-required");
        for bad in ["/abs.json", "dir/", "a/../b", "a\nb", &"k".repeat(1025), "a//b", "a\\b"] {
            assert_eq!(rule_of(Config { lockfile_path: bad.into(), ..valid() }), "lockfile-path-valid", "{bad:?}");
        }
        assert_eq!(rule_of(Config { peer_timeout_ms: 0, ..valid() }), "durations-positive");
        // 18446744073710 ms passed validation once, then wrapped to under a millisecond in ns.
        assert_eq!(rule_of(Config { leader_timeout_ms: 18_446_744_073_710, ..valid() }), "durations-bounded");
        assert_eq!(rule_of(Config { max_clock_skew_ms: Some(u64::MAX), ..valid() }), "durations-bounded");
        assert_eq!(rule_of(Config { frequent_interval_ms: 10_000, ..valid() }), "frequent-below-renew-deadline");
        assert_eq!(rule_of(Config { infrequent_interval_ms: 4_000, ..valid() }), "infrequent-not-below-frequent");
        assert_eq!(rule_of(Config { renew_deadline_ms: 15_000, ..valid() }), "renew-deadline-below-leader-timeout");
        assert_eq!(
            rule_of(Config { peer_timeout_ms: 5_000, peer_mode: true, server_addr: "h:1".into(), ..valid() }),
            "peer-timeout-below-frequent"
        );
        assert_eq!(Config { peer_timeout_ms: 5_000, ..valid() }.validate(), Ok(()), "unused without peer mode");
        assert_eq!(rule_of(Config { peer_health_path: "health".into(), ..valid() }), "peer-health-path-absolute");
        assert_eq!(rule_of(Config { peer_mode: true, ..valid() }), "server-addr-required-for-peer-mode");
        assert_eq!(rule_of(Config { max_clock_drift_ppm: 500_000, ..valid() }), "clock-drift-bound");
        assert_eq!(rule_of(Config { server_clock_skew_ms: Some(u64::MAX), ..valid() }), "durations-bounded");
    }

    #[test]
    fn server_clock_rule_leaves_room_for_resolution_and_skew() {
        // Defaults: 10 s · 1.01 < (15 − 1 − 1) s · 0.99.
        assert_eq!(Config { server_clock_skew_ms: Some(1_000), ..valid() }.validate(), Ok(()));
        // (15 − 1 − 4) · 0.99 = 9.9 < 10.1.
        assert_eq!(rule_of(Config { server_clock_skew_ms: Some(4_000), ..valid() }), "renew-deadline-below-server-clock-timeout");
        let msg = Config { server_clock_skew_ms: Some(4_000), ..valid() }.validate().unwrap_err().message;
        assert!(msg.contains("1000 ms date resolution") && msg.contains("4000 ms skew"), "{msg}");
    }

    #[test]
    fn lease_rule_accounts_for_drift() {
        // 10 s / 15 s holds at 1 % and up to 20 %, fails beyond (10·1.2 = 12 = 15·0.8).
        assert_eq!(Config { max_clock_drift_ppm: 190_000, ..valid() }.validate(), Ok(()));
        assert_eq!(rule_of(Config { max_clock_drift_ppm: 200_000, ..valid() }), "renew-deadline-below-leader-timeout");
        // With no drift allowance the bound is strict inequality.
        let tight = Config { renew_deadline_ms: 14_999, max_clock_drift_ppm: 0, ..valid() };
        assert_eq!(tight.validate(), Ok(()));
    }
}
