//! Configuration for the CLI: a TOML file and/or flags (flags win), resolved into an
//! `ElectorConfig`, a storage, and the optional health endpoint. The election's settings come
//! from the core's settings table (`guest/src/settings.rs`): one flag, one variable and one
//! TOML key each, with the same help and default everywhere.

use super::auto_peer;
use clap::{Arg, ArgMatches, Args, FromArgMatches};
use s3lect::{ElectorConfig, MockStorage, S3Config, S3Storage, Storage};
use s3lect_guest::{Config, SETTINGS};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// Flags win over the environment, which wins over the config file, which wins over the
// defaults. The S3LECT_* names are the ones the wasm components read (guest/src/env_config.rs).
#[derive(Args, Clone, Default)]
pub struct Flags {
    /// TOML config file (sections: election, s3, health, peer, hooks).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub election: ElectionFlags,
    /// S3 bucket of the lock object.
    #[arg(long, env = "S3LECT_BUCKET")]
    pub bucket: Option<String>,
    /// S3 endpoint URL [default: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// AWS region [default: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
    /// Path-style addressing [default: true with a custom endpoint].
    #[arg(long)]
    pub path_style: Option<bool>,
    /// Use the filesystem MockStorage in this directory instead of S3.
    #[arg(long)]
    pub mock_dir: Option<PathBuf>,
    /// Serve the HTTPS health endpoint on this address (needs --tls-cert and --tls-key).
    #[arg(long)]
    pub health_bind: Option<String>,
    /// Certificate chain (PEM) of the health endpoint.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of the health endpoint.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Enable peer mode, trusting this CA (PEM) for the leader's health endpoint.
    #[arg(long)]
    pub peer_ca: Option<PathBuf>,
    /// `run`: no peer mode by default; followers poll S3 (by default a node serves its health
    /// endpoint on a free port of the address it reaches the storage from, and followers watch it).
    #[arg(long, env = "S3LECT_NO_PEER")]
    pub no_peer: bool,
    /// Shell command run on acquiring leadership (non-zero exit resigns).
    #[arg(long)]
    pub on_acquire: Option<String>,
    /// Shell command run on losing leadership.
    #[arg(long)]
    pub on_lose: Option<String>,
    /// Longest a hook may run; an acquire hook that overruns counts as failed [default: 10000].
    #[arg(long)]
    pub hook_timeout_ms: Option<u64>,
    /// Pass the AWS credential variables on to hooks (by default they are removed).
    #[arg(long)]
    pub hooks_keep_aws_env: bool,
    /// Skip the start-up check that the server enforces conditional writes.
    #[arg(long)]
    pub no_conformance_check: bool,
    /// How long the start-up check retries transient storage errors [default: 60000].
    #[arg(long)]
    pub startup_budget_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    /// The election's settings (kebab-case or snake_case names of the settings table), plus
    /// `check-conditional-writes` and `startup-budget-ms`.
    #[serde(default)]
    election: toml::Table,
    #[serde(default)]
    s3: S3,
    #[serde(default)]
    health: Health,
    #[serde(default)]
    peer: Peer,
    #[serde(default)]
    hooks: Hooks,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct S3 {
    bucket: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    path_style: Option<bool>,
    ca_cert: Option<PathBuf>,
    request_timeout_ms: Option<u64>,
    mock_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Health {
    bind: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    path: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Peer {
    ca_cert: Option<PathBuf>,
    allow_plain_http: Option<bool>,
    /// `false`: the same as `--no-peer`.
    auto: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Hooks {
    on_acquire: Option<String>,
    on_lose: Option<String>,
    timeout_ms: Option<u64>,
    keep_aws_env: Option<bool>,
}

pub struct HealthSettings {
    pub bind: String,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Already bound (default peer mode: the address had to be known before the elector).
    pub listener: Option<std::net::TcpListener>,
}

pub struct Settings {
    pub elector: ElectorConfig,
    pub storage: Arc<dyn Storage>,
    pub health: Option<HealthSettings>,
    pub on_acquire: Option<String>,
    pub on_lose: Option<String>,
    /// Hooks see the AWS credential variables.
    pub hooks_keep_aws_env: bool,
    /// Where the lock object lives, for messages.
    pub location: String,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

impl Flags {
    /// Merges the file (if any) and the flags, and builds the storage.
    pub fn resolve(&self) -> Result<Settings, String> {
        self.resolve_with(false)
    }

    /// The same for `run`, whose node serves peer mode unless told not to.
    pub fn resolve_for_run(&self) -> Result<Settings, String> {
        self.resolve_with(true)
    }

    fn resolve_with(&self, default_peer: bool) -> Result<Settings, String> {
        let file: File = match &self.config {
            Some(p) => {
                let text = String::from_utf8(read(p, "config file")?).map_err(|_| format!("{} is not UTF-8", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("config file {}: {e}", p.display()))?
            }
            None => File::default(),
        };
        let mut core = Config::default();
        let mut check_conditional_writes = true;
        let mut startup_budget_ms = None;
        for (key, value) in &file.election {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("[election] {key} = {other}: expected a string, a number or true/false")),
            };
            let name = key.replace('-', "_");
            let bad = |problem: &str| format!("[election] {key} = {text:?} {problem}");
            match name.as_str() {
                "check_conditional_writes" => check_conditional_writes = text.parse().map_err(|_| bad("must be true or false"))?,
                "startup_budget_ms" => startup_budget_ms = Some(text.parse::<u64>().map_err(|_| bad("is not a whole number"))?),
                _ => {
                    if !core.set(&name, &text).map_err(bad)? {
                        return Err(format!("[election] {key}: no such setting (`s3lect run --help` lists them)"));
                    }
                }
            }
        }
        self.election.apply(&mut core)?;
        let mut c = ElectorConfig::from_core(core);
        let ms = |flag: Option<u64>, file: Option<u64>, default: Duration| flag.or(file).map_or(default, Duration::from_millis);
        c.hook_timeout = ms(self.hook_timeout_ms, file.hooks.timeout_ms, c.hook_timeout);
        c.check_conditional_writes = !self.no_conformance_check && check_conditional_writes;
        c.startup_budget = ms(self.startup_budget_ms, startup_budget_ms, c.startup_budget);
        if let Some(path) = &file.health.path {
            c.peer_health_path = path.clone();
        }
        if let Some(ca) = self.peer_ca.as_ref().or(file.peer.ca_cert.as_ref()) {
            c.peer_mode = true;
            c.peer_ca_cert = Some(read(ca, "peer CA certificate")?);
        }
        if file.peer.allow_plain_http == Some(true) {
            c.peer_mode = true;
            c.peer_allow_plain_http = true;
        }
        let health = match (
            self.health_bind.clone().or(file.health.bind.clone()),
            self.tls_cert.as_ref().or(file.health.cert.as_ref()),
            self.tls_key.as_ref().or(file.health.key.as_ref()),
        ) {
            (None, _, _) => None,
            (Some(bind), Some(cert), Some(key)) => {
                Some(HealthSettings { bind, cert_pem: read(cert, "TLS certificate")?, key_pem: read(key, "TLS key")?, listener: None })
            }
            (Some(bind), None, None) => {
                let host = c.server_addr.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])).unwrap_or_default().to_string();
                if host.is_empty() {
                    return Err(
                        "--health-bind without --tls-cert/--tls-key needs --server-addr HOST:PORT, the address followers probe".into()
                    );
                }
                Some(pinned_endpoint(&mut c, &host, bind, None)?)
            }
            (Some(_), _, _) => return Err("the health endpoint needs both --tls-cert and --tls-key (PEM files), or neither".into()),
        };
        let no_peer = self.no_peer || file.peer.auto == Some(false);
        if no_peer && c.peer_mode {
            return Err("--no-peer (or [peer] auto = false) contradicts the peer mode that --peer-ca, [peer] allow-plain-http or --health-bind without a certificate turn on".into());
        }

        let backend = match self.mock_dir.clone().or(file.s3.mock_dir.clone()) {
            Some(dir) => Backend::Mock(dir),
            None => Backend::S3(self.s3_config(&file)?),
        };
        // Peer mode by default, unless anything about peers or the health endpoint was said.
        let health = match health {
            None if default_peer && !no_peer && !c.peer_mode && c.server_addr.trim().is_empty() => {
                let endpoint = match &backend {
                    Backend::Mock(_) => None,
                    Backend::S3(s3) => Some(s3.endpoint_url()),
                };
                match auto_peer::bind(endpoint.as_deref()) {
                    Ok(b) => {
                        c.server_addr = b.addr.to_string();
                        Some(pinned_endpoint(&mut c, &b.addr.ip().to_string(), b.addr.to_string(), Some(b.listener))?)
                    }
                    Err(e) => {
                        tracing::warn!("peer mode off, followers poll S3: {e}");
                        None
                    }
                }
            }
            health => health,
        };
        // A probe must end within a step: without a peer timeout of its own, a short frequent
        // interval gets half of it.
        let timeout_given = self.election.given.iter().any(|(n, _)| *n == "peer_timeout_ms")
            || file.election.keys().any(|k| k.replace('-', "_") == "peer_timeout_ms");
        if c.peer_mode && !timeout_given && c.peer_timeout >= c.frequent_interval {
            c.peer_timeout = (c.frequent_interval / 2).max(Duration::from_millis(1));
        }
        c.validate().map_err(|e| e.to_string())?;

        let (storage, location): (Arc<dyn Storage>, String) = match backend {
            Backend::Mock(dir) => (
                Arc::new(MockStorage::new(&dir).map_err(|e| e.to_string())?),
                format!("mock storage {}/{}", dir.display(), c.lockfile_path),
            ),
            Backend::S3(s3) => {
                let location = format!("s3://{}/{} at {}", s3.bucket, c.lockfile_path, s3.endpoint.as_deref().unwrap_or("AWS"));
                (Arc::new(S3Storage::with_default_credentials(s3).map_err(|e| e.to_string())?), location)
            }
        };
        Ok(Settings {
            elector: c,
            storage,
            health,
            on_acquire: self.on_acquire.clone().or(file.hooks.on_acquire),
            on_lose: self.on_lose.clone().or(file.hooks.on_lose),
            hooks_keep_aws_env: self.hooks_keep_aws_env || file.hooks.keep_aws_env == Some(true),
            location,
        })
    }
}

/// Where the lock object lives.
enum Backend {
    Mock(PathBuf),
    S3(S3Config),
}

impl Flags {
    /// Where the lock object lives on S3, from the flags, the file and the environment.
    fn s3_config(&self, file: &File) -> Result<S3Config, String> {
        let bucket =
            self.bucket.clone().or(file.s3.bucket.clone()).ok_or("no bucket: pass --bucket or set [s3] bucket in the config file")?;
        let mut s3 = S3Config::for_bucket(&bucket);
        if let Some(r) = self.region.clone().or(file.s3.region.clone()) {
            s3.region = r;
        }
        if let Some(ep) = self.endpoint.clone().or(file.s3.endpoint.clone()) {
            s3.endpoint = Some(ep);
            s3.path_style = true;
        }
        if let Some(ps) = self.path_style.or(file.s3.path_style) {
            s3.path_style = ps;
        }
        // The file's CA, else the one AWS's own tools read: a user whose `aws s3` trusts a
        // private endpoint through AWS_CA_BUNDLE expects this command to trust it too.
        if let Some(ca) = &file.s3.ca_cert {
            s3.ca_cert_pem = Some(read(ca, "S3 CA certificate")?);
        } else if let Some(bundle) = s3lect::tls::aws_ca_bundle()? {
            s3.ca_cert_pem = Some(bundle);
        }
        if let Some(t) = file.s3.request_timeout_ms {
            s3.request_timeout = Duration::from_millis(t);
        }
        Ok(s3)
    }
}

/// Zero-config peer mode: a fresh key and self-signed certificate for `host`, whose SHA-256 the
/// records this node writes carry; followers accept exactly that certificate.
fn pinned_endpoint(
    c: &mut ElectorConfig,
    host: &str,
    bind: String,
    listener: Option<std::net::TcpListener>,
) -> Result<HealthSettings, String> {
    let cert = s3lect::tls::self_signed(&[host]).map_err(|e| e.to_string())?;
    c.peer_cert_sha256 = cert.sha256;
    c.peer_mode = true;
    Ok(HealthSettings { bind, cert_pem: cert.cert_pem.into_bytes(), key_pem: cert.key_pem.into_bytes(), listener })
}

/// The election's settings as flags, one per line of the settings table, each falling back to
/// its `S3LECT_*` variable and showing its default.
#[derive(Clone, Default)]
pub struct ElectionFlags {
    /// (setting name, text) of each flag or variable given.
    given: Vec<(&'static str, String)>,
}

impl ElectionFlags {
    /// Gives setting `name` the value `text` unless a flag or variable did.
    pub fn or_given(&mut self, name: &'static str, text: &str) {
        if !self.given.iter().any(|(n, _)| *n == name) {
            self.given.push((name, text.to_string()));
        }
    }

    /// Sets what was given on `core`; an error names the flag.
    fn apply(&self, core: &mut Config) -> Result<(), String> {
        for (name, text) in &self.given {
            let s = SETTINGS.iter().find(|s| s.name == *name).expect("flags come from the table");
            core.set(name, text).map_err(|problem| format!("--{} {text:?} (or {}) {problem}", s.flag, s.var))?;
        }
        Ok(())
    }
}

impl FromArgMatches for ElectionFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let given = SETTINGS.iter().filter_map(|s| m.get_one::<String>(s.name).map(|v| (s.name, v.clone()))).collect();
        Ok(ElectionFlags { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = ElectionFlags::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for ElectionFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = Config::default();
        SETTINGS.iter().fold(cmd, |cmd, s| {
            let default = defaults.get(s.name).filter(|d| !d.is_empty()).map(|d| format!(" [default: {d}]")).unwrap_or_default();
            cmd.arg(Arg::new(s.name).long(s.flag).env(s.var).value_name("VALUE").help(format!("{}{default}", s.help.trim())))
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        ElectionFlags::augment_args(cmd)
    }
}
