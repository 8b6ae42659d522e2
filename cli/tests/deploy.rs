//! The deployment files in deploy/ checked with the validators the package registries carry
//! (installed by scripts/setup-validators.sh): systemd-analyze for the units, yamllint and
//! kubernetes-validate for the manifest, dockerfile-utils for the Dockerfile. Each validator is
//! first shown a broken copy, to prove it can fail. The IAM policy must name exactly the keys
//! the election writes.

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
    let out = run(Command::new(&yamllint).args(["-d", "relaxed"]).arg(&manifest));
    assert!(out.status.success(), "yamllint: {}", String::from_utf8_lossy(&out.stdout));
    let out = run(Command::new(&kv).arg(&manifest));
    assert!(out.status.success(), "kubernetes-validate: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
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
