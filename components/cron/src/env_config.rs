//! Configuration of a cron invocation from environment variables.

use s3lect_guest::Config;

/// Configuration of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronConfig {
    pub elector: Config,
    /// How long one invocation may keep stepping (0: exactly one step).
    pub budget_ms: u64,
}

/// Reads S3LECT_* variables through `var`; unset variables keep s3lect's defaults.
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<CronConfig, String> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    let ms = |k: &str, default: u64| -> Result<u64, String> {
        match var(k) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| format!("{k}={v:?} is not a whole number of milliseconds")),
        }
    };
    let required = |k: &str| var(k).ok_or_else(|| format!("{k} is not set (the cron world is configured by environment variables)"));
    let d = Config::default();
    let elector = Config {
        lockfile_path: required("S3LECT_LOCKFILE_PATH")?,
        server_id: required("S3LECT_SERVER_ID")?,
        server_addr: var("S3LECT_SERVER_ADDR").unwrap_or_default(),
        frequent_interval_ms: ms("S3LECT_FREQUENT_INTERVAL_MS", d.frequent_interval_ms)?,
        infrequent_interval_ms: ms("S3LECT_INFREQUENT_INTERVAL_MS", d.infrequent_interval_ms)?,
        leader_timeout_ms: ms("S3LECT_LEADER_TIMEOUT_MS", d.leader_timeout_ms)?,
        renew_deadline_ms: ms("S3LECT_RENEW_DEADLINE_MS", d.renew_deadline_ms)?,
        // An invocation serves no health endpoint and probes none.
        peer_mode: false,
        max_clock_drift_ppm: match var("S3LECT_MAX_CLOCK_DRIFT_PPM") {
            None => d.max_clock_drift_ppm,
            Some(v) => v.trim().parse().map_err(|_| format!("S3LECT_MAX_CLOCK_DRIFT_PPM={v:?} is not a whole number"))?,
        },
        max_clock_skew_ms: match var("S3LECT_MAX_CLOCK_SKEW_MS") {
            None => None,
            Some(_) => Some(ms("S3LECT_MAX_CLOCK_SKEW_MS", 0)?),
        },
        trust_absent_object: match var("S3LECT_TRUST_ABSENT_OBJECT").as_deref() {
            None => d.trust_absent_object,
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(v) => return Err(format!("S3LECT_TRUST_ABSENT_OBJECT={v:?} must be true or false")),
        },
        ..d
    };
    elector.validate().map_err(|e| format!("configuration rule {} is broken: {}", e.rule, e.message))?;
    Ok(CronConfig { elector, budget_ms: ms("S3LECT_INVOCATION_BUDGET_MS", 0)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 2] = [("S3LECT_LOCKFILE_PATH", "g/leader.json"), ("S3LECT_SERVER_ID", "a")];

    #[test]
    fn defaults_apply_and_variables_override_them() {
        let c = from_env(env(&BASE)).unwrap();
        assert_eq!(c.elector, Config { lockfile_path: "g/leader.json".into(), server_id: "a".into(), ..Config::default() });
        assert_eq!(c.budget_ms, 0);
        let mut vars = BASE.to_vec();
        vars.extend([
            ("S3LECT_LEADER_TIMEOUT_MS", "3000"),
            ("S3LECT_RENEW_DEADLINE_MS", "2000"),
            ("S3LECT_FREQUENT_INTERVAL_MS", "500"),
            ("S3LECT_MAX_CLOCK_SKEW_MS", "250"),
            ("S3LECT_TRUST_ABSENT_OBJECT", "false"),
            ("S3LECT_INVOCATION_BUDGET_MS", "9000"),
        ]);
        let c = from_env(env(&vars)).unwrap();
        assert_eq!((c.elector.leader_timeout_ms, c.elector.renew_deadline_ms, c.elector.frequent_interval_ms), (3000, 2000, 500));
        assert_eq!(c.elector.max_clock_skew_ms, Some(250));
        assert!(!c.elector.trust_absent_object);
        assert_eq!(c.budget_ms, 9000);
    }

    #[test]
    fn errors_name_the_variable_or_the_rule() {
        assert!(from_env(env(&BASE[..1])).unwrap_err().contains("S3LECT_SERVER_ID is not set"));
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_LEADER_TIMEOUT_MS", "15s"));
        assert!(from_env(env(&vars)).unwrap_err().contains("S3LECT_LEADER_TIMEOUT_MS=\"15s\""));
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_RENEW_DEADLINE_MS", "20000"));
        let e = from_env(env(&vars)).unwrap_err();
        assert!(e.contains("rule") && e.contains("20000"), "{e}");
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_TRUST_ABSENT_OBJECT", "maybe"));
        assert!(from_env(env(&vars)).unwrap_err().contains("true or false"));
    }
}
