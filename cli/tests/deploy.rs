//! The deployment files in deploy/ checked with the validators the package registries carry
//! (installed by scripts/setup-validators.sh): systemd-analyze for the units, yamllint and
//! kubernetes-validate for the manifest, dockerfile-utils for the Dockerfile. Each validator is
//! first shown a broken copy, to prove it can fail. The IAM policy must name exactly the keys
//! the election writes; the stateless recipes (CronJob, Spin) must configure a valid election
//! with the server's clock.

mod common;

use common::interop::root;
use common::nodes::BIN;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tool(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} not found: run scripts/setup-validators.sh (scripts/setup.sh does)", path.display());
    path
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Passes only with success and nothing said: systemd-analyze reports bad settings as warnings.
fn clean(out: &Output) -> bool {
    out.status.success() && out.stderr.is_empty()
}

#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    for unit in ["s3lect.service", "s3lect-step.service", "s3lect-step.timer"] {
        let text = std::fs::read_to_string(root().join("deploy/systemd").join(unit)).unwrap();
        // verify checks that ExecStart's binary exists: point it at the one built for the tests.
        std::fs::write(dir.path().join(unit), text.replace("/usr/local/bin/s3lect", BIN)).unwrap();
    }
    let verify = |unit: &Path| run(Command::new("systemd-analyze").arg("verify").arg(unit));
    let broken = dir.path().join("broken.service");
    let text = std::fs::read_to_string(dir.path().join("s3lect.service")).unwrap();
    std::fs::write(&broken, text.replace("Type=exec", "Type=execc")).unwrap();
    assert!(!clean(&verify(&broken)), "systemd-analyze accepts a broken unit: it checks nothing");
    for unit in ["s3lect.service", "s3lect-step.service", "s3lect-step.timer"] {
        let out = verify(&dir.path().join(unit));
        assert!(clean(&out), "{unit}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn kubernetes_manifest_validates() {
    let venv = root().join(".venv/bin");
    let (yamllint, kv) = (tool(venv.join("yamllint")), tool(venv.join("kubernetes-validate")));
    let manifest = root().join("deploy/k8s/deployment.yaml");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, std::fs::read_to_string(&manifest).unwrap().replace("replicas: 3", "replicas: three")).unwrap();
    assert!(!run(Command::new(&kv).arg(&broken)).status.success(), "kubernetes-validate accepts replicas: three");
    for manifest in ["deployment.yaml", "cronjob.yaml"].map(|m| root().join("deploy/k8s").join(m)) {
        let out = run(Command::new(&yamllint).args(["-d", "relaxed"]).arg(&manifest));
        assert!(out.status.success(), "yamllint {}: {}", manifest.display(), String::from_utf8_lossy(&out.stdout));
        let out = run(Command::new(&kv).arg(&manifest));
        assert!(
            out.status.success(),
            "kubernetes-validate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The `S3LECT_*` settings a recipe sets must make a valid configuration, with a staleness
/// source for stateless steps: what the component would refuse, or what could never fail over,
/// must not ship as an example.
fn stateless_settings_hold(what: &str, vars: &std::collections::HashMap<String, String>) {
    let config = s3lect_guest::env_config::config_from_vars(|k| vars.get(k).cloned()).unwrap_or_else(|e| panic!("{what}: {e}"));
    config.validate().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(config.server_clock_skew_ms.is_some(), "{what}: stateless steps need the server's clock");
    // The election's settings, and the storage's own variables.
    let storage = ["S3LECT_BUCKET", "S3LECT_IF_MATCH_ETAG", "S3LECT_INVOCATION_BUDGET_MS"];
    for k in vars.keys().filter(|k| k.starts_with("S3LECT_")) {
        assert!(s3lect_guest::SETTINGS.iter().any(|s| s.var == k) || storage.contains(&k.as_str()), "{what}: {k} is no setting");
    }
}

#[test]
fn the_cronjob_recipe_is_stateless_with_the_servers_clock_and_never_overlaps() {
    let python = tool(root().join(".venv/bin/python"));
    let manifest = root().join("deploy/k8s/cronjob.yaml");
    let out = run(Command::new(&python)
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(&manifest));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid", "ticks of one member must not overlap");
    let container = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let vars = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap().to_string()))
        .collect();
    stateless_settings_hold("deploy/k8s/cronjob.yaml", &vars);
    // A one-minute schedule: a leader's next tick must come before its record goes stale.
    assert!(
        vars["S3LECT_LEADER_TIMEOUT_MS"].parse::<u64>().unwrap() > 60_000 + 20_000,
        "the leader timeout must exceed the schedule and start-up"
    );
}

#[test]
fn the_spin_manifest_runs_the_composed_component_on_the_cron_trigger() {
    let path = root().join("deploy/spin/spin.toml");
    let m: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m["spin_manifest_version"].as_integer(), Some(2));
    let trigger = &m["trigger"]["cron"][0];
    let name = trigger["component"].as_str().unwrap();
    assert!(trigger["cron_expression"].as_str().unwrap().split_whitespace().count() == 6, "Spin's cron expressions have a seconds field");
    let component = &m["component"][name];
    let source = path.parent().unwrap().join(component["source"].as_str().unwrap());
    assert_eq!(source.canonicalize().unwrap(), common::interop::composed_component().canonicalize().unwrap());
    assert!(component["allowed_outbound_hosts"].as_array().is_some_and(|h| !h.is_empty()), "Spin denies outbound HTTP unless allowed");
    let vars = component["environment"].as_table().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    stateless_settings_hold("deploy/spin/spin.toml", &vars);
}

#[test]
fn dockerfile_lints() {
    let lint = tool(s3lect_cli::tools_dir().join("npm/node_modules/.bin/dockerfile-utils"));
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("Dockerfile");
    std::fs::write(&broken, "FROM debian\nCOPY\n").unwrap();
    assert!(!run(Command::new(&lint).arg("lint").arg(&broken)).status.success(), "dockerfile-utils accepts a COPY without arguments");
    let out = run(Command::new(&lint).arg("lint").arg(root().join("deploy/Dockerfile")));
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn iam_policy_names_exactly_the_keys_the_election_writes() {
    let policy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root().join("deploy/iam/policy.json")).unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    let actions: Vec<&str> = statements[0]["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(actions, ["s3:GetObject", "s3:PutObject"], "reads and conditional writes only: no delete, no list");
    let resources: Vec<&str> = statements[0]["Resource"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    let lock = "leader/my-group.json";
    let expected = [
        format!("arn:aws:s3:::my-bucket/{lock}"),
        format!("arn:aws:s3:::my-bucket/{}", s3lect::storage::scratch_key(lock)),
        format!("arn:aws:s3:::my-bucket/{lock}.state/*"),
    ];
    assert_eq!(resources, expected);
}
