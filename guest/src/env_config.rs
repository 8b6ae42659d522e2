//! The elector's configuration from S3LECT_* environment variables, for components that any
//! WASI host can configure (`wasi:cli/environment`); errors name the variable.

use crate::Config;

/// `name`'s value in milliseconds through `var`, or `default` when unset.
pub fn ms_var(var: &impl Fn(&str) -> Option<String>, name: &str, default: u64) -> Result<u64, String> {
    match var(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| format!("{name}={v:?} is not a whole number of milliseconds")),
    }
}

/// Reads the S3LECT_* variables of the settings table (`settings.rs`) through `var`; unset
/// variables keep s3lect's defaults. The result is not yet validated (`Config::validate`, which
/// `Elector::new` also runs): a caller may first refuse what it cannot do, so the user hears
/// about that and not about its settings.
pub fn config_from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut config = Config::default();
    for s in crate::SETTINGS {
        if let Some(value) = var(s.var).filter(|v| !v.is_empty()) {
            config.set(s.name, &value).map_err(|problem| format!("{}={value:?} {problem}", s.var))?;
        }
    }
    for (required, value) in [("S3LECT_LOCKFILE_PATH", &config.lockfile_path), ("S3LECT_SERVER_ID", &config.server_id)] {
        if value.is_empty() {
            return Err(format!("{required} is not set (this component is configured by environment variables)"));
        }
    }
    Ok(config)
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
        let c = config_from_vars(env(&BASE)).unwrap();
        assert_eq!(c, Config { lockfile_path: "g/leader.json".into(), server_id: "a".into(), ..Config::default() });
        let mut vars = BASE.to_vec();
        vars.extend([
            ("S3LECT_LEADER_TIMEOUT_MS", "3000"),
            ("S3LECT_RENEW_DEADLINE_MS", "2000"),
            ("S3LECT_FREQUENT_INTERVAL_MS", "500"),
            ("S3LECT_MAX_CLOCK_SKEW_MS", "250"),
            ("S3LECT_TRUST_ABSENT_OBJECT", "false"),
            ("S3LECT_PEER_MODE", "1"),
            ("S3LECT_SERVER_ADDR", "10.0.0.9:8443"),
            ("S3LECT_PEER_TIMEOUT_MS", "400"),
        ]);
        let c = config_from_vars(env(&vars)).unwrap();
        assert_eq!((c.leader_timeout_ms, c.renew_deadline_ms, c.frequent_interval_ms), (3000, 2000, 500));
        assert_eq!(c.max_clock_skew_ms, Some(250));
        assert!(!c.trust_absent_object);
        assert_eq!((c.peer_mode, c.peer_timeout_ms), (true, 400));
    }

    #[test]
    fn errors_name_the_variable() {
        assert!(config_from_vars(env(&BASE[..1])).unwrap_err().contains("S3LECT_SERVER_ID is not set"));
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_LEADER_TIMEOUT_MS", "15s"));
        assert!(config_from_vars(env(&vars)).unwrap_err().contains("S3LECT_LEADER_TIMEOUT_MS=\"15s\" is not a whole number"));
        // Broken rules are left to validation, which names the rule and the values.
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_RENEW_DEADLINE_MS", "20000"));
        let e = config_from_vars(env(&vars)).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("20000"), "{e}");
        let mut vars = BASE.to_vec();
        vars.push(("S3LECT_TRUST_ABSENT_OBJECT", "maybe"));
        assert!(config_from_vars(env(&vars)).unwrap_err().contains("true or false"));
    }
}
