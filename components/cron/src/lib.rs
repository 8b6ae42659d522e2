//! The `elector-cron` world: one invocation = restore carried state, check the storage (once
//! per storage), step, save state.
//!
//! Configuration: the elector's from S3LECT_* variables (`s3lect_guest::env_config`), plus
//! S3LECT_INVOCATION_BUDGET_MS. `invocation` (wasm32 only): the step itself, over `storage`.

#[cfg(target_arch = "wasm32")]
mod invocation;

use s3lect_guest::conformance::EtagForm;
use serde::{Deserialize, Serialize};

/// Key of the object that carries one server's elector state between invocations.
pub fn state_key(lockfile_path: &str, server_id: &str) -> String {
    format!("{lockfile_path}.state/{server_id}")
}

/// How long a passed conformance check is trusted: a server upgraded in place is checked again
/// within a day.
pub const CHECK_VALID_S: i64 = 24 * 3600;

/// What the carried-state object holds: the elector's state, and what the conformance check
/// found about the storage — so that a check costs requests once per storage and day, not per
/// invocation. Objects from earlier releases hold the elector's state alone; they read as such.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// The elector's `export-state` (JSON).
    pub elector: serde_json::Value,
    /// The check that passed against this storage, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked: Option<Checked>,
}

/// A passed conformance check: against which storage, when, and the `If-Match` form found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub storage: String,
    pub at_unix_s: i64,
    pub if_match: EtagForm,
}

impl Carried {
    /// Reads a carried-state object (an envelope, or an earlier release's bare state).
    pub fn parse(data: &[u8]) -> Result<Carried, String> {
        let value: serde_json::Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
        if value.get("elector").is_some() {
            return serde_json::from_value(value).map_err(|e| e.to_string());
        }
        Ok(Carried { elector: value, checked: None })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("JSON values serialise")
    }
}

impl Checked {
    /// Still valid for `storage` at `now_unix_s`: the same endpoint, region and bucket, within
    /// a day. Anything else — a moved endpoint, a clock gone backwards — checks again.
    pub fn holds_for(&self, storage: &str, now_unix_s: i64) -> bool {
        self.storage == storage && (0..CHECK_VALID_S).contains(&(now_unix_s - self.at_unix_s))
    }
}

/// Which storage the composed S3 component talks to, from the variables it reads: endpoint,
/// region and bucket.
pub fn storage_identity(var: impl Fn(&str) -> Option<String>) -> String {
    let first = |names: &[&str]| names.iter().find_map(|n| var(n).filter(|v| !v.is_empty())).unwrap_or_default();
    let endpoint = first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]);
    let region = first(&["AWS_REGION", "AWS_DEFAULT_REGION"]);
    format!("{} {} {}", if endpoint.is_empty() { "aws" } else { &endpoint }, region, first(&["S3LECT_BUCKET"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_releases_bare_state_reads_without_a_check() {
        let bare = br#"{"v":1,"knownTerm":3}"#;
        let c = Carried::parse(bare).unwrap();
        assert_eq!((c.elector["knownTerm"].as_u64(), c.checked), (Some(3), None));
        let checked = Checked { storage: "aws eu-west-1 b".into(), at_unix_s: 100, if_match: EtagForm::Unquoted };
        let bytes = Carried { elector: c.elector, checked: Some(checked.clone()) }.to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""ifMatch":"unquoted""#), "the names S3LECT_IF_MATCH_ETAG takes");
        assert_eq!(Carried::parse(&bytes).unwrap().checked, Some(checked));
        assert!(Carried::parse(b"garbage").is_err());
    }

    #[test]
    fn a_check_holds_for_its_storage_for_a_day() {
        let vars = |endpoint: &'static str| {
            move |k: &str| match k {
                "AWS_ENDPOINT_URL" => Some(endpoint.to_string()),
                "AWS_REGION" => Some("eu-west-1".to_string()),
                "S3LECT_BUCKET" => Some("b".to_string()),
                _ => None,
            }
        };
        let here = storage_identity(vars("http://127.0.0.1:9000"));
        assert_eq!(here, "http://127.0.0.1:9000 eu-west-1 b");
        assert_eq!(storage_identity(vars("")), "aws eu-west-1 b");
        let c = Checked { storage: here.clone(), at_unix_s: 1_000, if_match: EtagForm::AsReturned };
        assert!(c.holds_for(&here, 1_000 + CHECK_VALID_S - 1));
        assert!(!c.holds_for(&here, 1_000 + CHECK_VALID_S), "a day later: check again");
        assert!(!c.holds_for(&here, 999), "a clock gone backwards: check again");
        assert!(!c.holds_for(&storage_identity(vars("http://other:9000")), 1_000), "another endpoint: check again");
    }
}
