//! Every setting of the election core, once: name, kind, default, CLI flag, `S3LECT_*`
//! variable and help. [`Config`](crate::Config) and its defaults, the TOML keys (the names, in
//! kebab-case), the `S3LECT_*` reader (`env_config.rs`), the WIT conversions (`wit_glue.rs`),
//! the host's `ElectorConfig` and the CLI's flags are all derived from this table. Adding a
//! setting: a line here, its field in `wit/election.wit`'s `config` record, and its rule (if
//! any) in `config.rs`'s `validate`.

/// Calls `$callback! { ($($extra)*) <each setting> }`. A setting reads
/// `/// help` `name / host_name: Kind = default, "flag", "VARIABLE";`: `name` in the core's
/// `Config` (milliseconds), `host_name` in the host's `ElectorConfig` (a `Duration` where the
/// core has milliseconds); Kind is one of `Text` (String), `Ms` (u64 milliseconds), `OptMs`
/// (`Option<u64>` milliseconds), `Flag` (bool), `Ppm` (u32).
#[macro_export]
macro_rules! for_each_setting {
    ($callback:path $(, $($extra:tt)*)?) => {
        $callback! { ($($($extra)*)?)
            /// S3 key of the lock object, e.g. leader/my-group.json.
            lockfile_path / lockfile_path: Text = String::new(), "lockfile", "S3LECT_LOCKFILE_PATH";
            /// This instance's unique identity.
            server_id / server_id: Text = String::new(), "server-id", "S3LECT_SERVER_ID";
            /// host:port that followers probe in peer mode.
            server_addr / server_addr: Text = String::new(), "server-addr", "S3LECT_SERVER_ADDR";
            /// Step interval during transitions, and the leader's renewals.
            frequent_interval_ms / frequent_interval: Ms = 5_000, "frequent-ms", "S3LECT_FREQUENT_INTERVAL_MS";
            /// Follower polling interval while a healthy leader is known.
            infrequent_interval_ms / infrequent_interval: Ms = 30_000, "infrequent-ms", "S3LECT_INFREQUENT_INTERVAL_MS";
            /// A follower takes over after watching one record unchanged this long.
            leader_timeout_ms / leader_timeout: Ms = 15_000, "leader-timeout-ms", "S3LECT_LEADER_TIMEOUT_MS";
            /// A leader stops believing it leads this long after its last successful renewal was sent.
            renew_deadline_ms / renew_deadline: Ms = 10_000, "renew-deadline-ms", "S3LECT_RENEW_DEADLINE_MS";
            /// Probe the leader's health endpoint instead of reading S3 while it answers.
            peer_mode / peer_mode: Flag = false, "peer-mode", "S3LECT_PEER_MODE";
            /// Path of the leader's health endpoint.
            peer_health_path / peer_health_path: Text = $crate::config::DEFAULT_PEER_HEALTH_PATH.to_string(), "peer-health-path", "S3LECT_PEER_HEALTH_PATH";
            /// Timeout of one peer probe; in peer mode it must be below the frequent interval (the `s3lect` command, when it is not given, takes half the frequent interval where that is shorter).
            peer_timeout_ms / peer_timeout: Ms = 3_000, "peer-timeout-ms", "S3LECT_PEER_TIMEOUT_MS";
            /// Bound on clock-rate drift between processes, parts per million (10000 = 1 %).
            max_clock_drift_ppm / max_clock_drift_ppm: Ppm = 10_000, "max-clock-drift-ppm", "S3LECT_MAX_CLOCK_DRIFT_PPM";
            /// Opt-in: also treat a record as stale by its writer's timestamp, trusting other machines' clocks to within this skew.
            max_clock_skew_ms / max_clock_skew: OptMs = None, "max-clock-skew-ms", "S3LECT_MAX_CLOCK_SKEW_MS";
            /// Opt-in: also treat a record as stale once it has stood a leader timeout by the storage server's own clock (Date − Last-Modified), with this bound on how far the server's front-end clocks differ (1000 suits AWS S3 and single-server stores). What makes stateless one-step invocations fail over.
            server_clock_skew_ms / server_clock_skew: OptMs = None, "server-clock-skew-ms", "S3LECT_SERVER_CLOCK_SKEW_MS";
            /// Without server-clock-skew-ms: judge staleness by the storage server's clock too, assuming its front-ends agree within 1000 ms, once this node's own reads have shown it stamping a rewrite anew and keeping time with ours (never again after a reading contradicts that). Used only where the timings leave room for that skew. false: trust no clock but this node's own.
            server_clock_auto / server_clock_auto: Flag = true, "server-clock-auto", "S3LECT_SERVER_CLOCK_AUTO";
            /// Create an absent lock object at once when nothing was watched (a fast first election); false makes every absence stand for a leader timeout.
            trust_absent_object / trust_absent_object: Flag = true, "trust-absent-object", "S3LECT_TRUST_ABSENT_OBJECT";
            /// SHA-256 (hex) of this node's health-endpoint certificate, published in the records it writes: followers accept exactly that certificate (zero-config peer mode).
            peer_cert_sha256 / peer_cert_sha256: Text = String::new(), "peer-cert-sha256", "S3LECT_PEER_CERT_SHA256";
        }
    };
}

/// The Rust type of a setting's kind.
#[macro_export]
macro_rules! setting_type {
    (Text) => { String };
    (Ms) => { u64 };
    (OptMs) => { Option<u64> };
    (Flag) => { bool };
    (Ppm) => { u32 };
}

/// One setting, as tools list it.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The field of [`Config`](crate::Config), and in kebab-case the TOML key and WIT field.
    pub name: &'static str,
    /// The CLI flag, without `--`.
    pub flag: &'static str,
    /// The environment variable the components (and the CLI) read.
    pub var: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Parses a setting's text (a flag, a variable, a TOML value) as its kind; the error says
/// what was expected.
pub trait SettingValue: Sized {
    /// The value, or what was expected.
    fn parse_setting(text: &str) -> Result<Self, &'static str>;
    /// The value as a flag or variable would spell it.
    fn show_setting(&self) -> String;
}

impl SettingValue for String {
    fn parse_setting(text: &str) -> Result<Self, &'static str> {
        Ok(text.to_string())
    }
    fn show_setting(&self) -> String {
        self.clone()
    }
}

impl SettingValue for u64 {
    fn parse_setting(text: &str) -> Result<Self, &'static str> {
        text.trim().parse().map_err(|_| "is not a whole number")
    }
    fn show_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for u32 {
    fn parse_setting(text: &str) -> Result<Self, &'static str> {
        text.trim().parse().map_err(|_| "is not a whole number")
    }
    fn show_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for Option<u64> {
    fn parse_setting(text: &str) -> Result<Self, &'static str> {
        u64::parse_setting(text).map(Some)
    }
    fn show_setting(&self) -> String {
        self.map_or_else(|| "unset".into(), |v| v.to_string())
    }
}

impl SettingValue for bool {
    fn parse_setting(text: &str) -> Result<Self, &'static str> {
        match text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err("must be true or false"),
        }
    }
    fn show_setting(&self) -> String {
        self.to_string()
    }
}

/// Defines `Config`, its `Default`, `SETTINGS`, `Config::set` and `Config::get`.
macro_rules! define_config {
    (() $( $(#[doc = $doc:literal])* $name:ident / $host:ident : $kind:ident = $default:expr, $flag:literal, $var:literal; )*) => {
        /// Configuration of one elector. Durations are milliseconds (the WIT contract's unit).
        /// Each field is a line of the settings table (`settings.rs`).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $crate::setting_type!($kind), )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $name: $default, )* }
            }
        }

        /// Every setting, in table order.
        pub const SETTINGS: &[Setting] = &[
            $( Setting { name: stringify!($name), flag: $flag, var: $var, help: concat!($($doc),*) }, )*
        ];

        impl Config {
            /// Sets the setting `name` (a field name) from its text. `Ok(false)`: no such setting.
            pub fn set(&mut self, name: &str, text: &str) -> Result<bool, &'static str> {
                match name {
                    $( stringify!($name) => self.$name = SettingValue::parse_setting(text)?, )*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// The setting `name` as text (for help and listings).
            pub fn get(&self, name: &str) -> Option<String> {
                match name {
                    $( stringify!($name) => Some(self.$name.show_setting()), )*
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use define_config;
