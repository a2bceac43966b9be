//! flo2's configuration: defaults, overlaid by an optional TOML file, overlaid by `FLO2_*`
//! environment variables. [`SETTINGS`] is the single list of every setting, its default and its
//! meaning; `flo2 config` prints it and the README's table mirrors it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flo2_core::Secret;

/// One documented setting.
pub struct Setting {
    /// Environment variable name; the TOML key is the same, lowercased, without `FLO2_`.
    pub env: &'static str,
    /// Default as text ("" for none).
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Whether its value is secret (redacted by `flo2 config`).
    pub secret: bool,
}

const fn s(env: &'static str, default: &'static str, doc: &'static str) -> Setting {
    Setting {
        env,
        default,
        doc,
        secret: false,
    }
}

/// Every setting flo2 reads.
pub const SETTINGS: &[Setting] = &[
    s("FLO2_LISTEN", "127.0.0.1:8080", "Address and port to listen on."),
    s("FLO2_DATA_DIR", "./data", "Directory for the embedded SQLite database and the generated master key."),
    s("FLO2_DATABASE_URL", "sqlite:<FLO2_DATA_DIR>/flo2.db", "`sqlite:PATH` or `postgres://user:pass@host:5432/db`."),
    Setting { env: "FLO2_MASTER_KEY", default: "", doc: "32 random bytes, standard base64 (`flo2 master-key generate`). Unset with SQLite: generated into <FLO2_DATA_DIR>/master.key (mode 0600) with a warning. Required with PostgreSQL.", secret: true },
    s("FLO2_MASTER_KEY_FILE", "", "Read the master key from this file instead of FLO2_MASTER_KEY."),
    Setting { env: "FLO2_PREVIOUS_MASTER_KEYS", default: "", doc: "Comma-separated older master keys, still accepted for unwrapping during a rotation.", secret: true },
    s("FLO2_MIGRATE_ON_START", "true", "Apply database migrations at start (`false` when a separate `flo2 migrate` step runs them)."),
    s("FLO2_DB_MAX_CONNECTIONS", "16", "Most database connections per process (SQLite: at most 4)."),
    s("FLO2_WORKER_THREADS", "0", "Serving threads, each a single-threaded runtime that owns its connections; 0 means one per CPU core the process may use."),
    s("FLO2_LOG", "info", "Log filter, e.g. `info` or `info,flo2_gateway=debug`."),
    s("FLO2_LOG_FORMAT", "text", "`text` for people, `json` for log pipelines."),
    s("FLO2_PUBLIC_URL", "http://<FLO2_LISTEN>", "Base URL people reach flo2 at; used in invitation links."),
    s("FLO2_API_MAX_BODY_BYTES", "65536", "Largest accepted /api/v1 request body; larger ones get 413."),
    s("FLO2_SESSION_TTL_SECS", "43200", "Lifetime of management tokens and console sessions."),
    s("FLO2_INVITE_TTL_HOURS", "168", "Default validity of invitation links."),
    s("FLO2_TRUSTED_PROXIES", "", "Comma-separated address blocks (CIDR, e.g. `10.0.0.0/8,::1`) of reverse proxies whose `X-Forwarded-For` names the client; login throttling counts that client instead of the proxy. Empty: the header is ignored."),
    s("FLO2_CHANGE_POLL_MS", "1000", "How often a gateway polls the change log to refresh its caches."),
    s("FLO2_KEY_TOUCH_INTERVAL_MS", "60000", "How often gateway-key last-used times are written."),
    s("FLO2_SHUTDOWN_GRACE_SECS", "25", "Time in-flight requests get to finish at shutdown."),
    s("FLO2_ALLOW_PRIVATE_UPSTREAMS", "false", "Let provider base URLs reach loopback, private, link-local and other non-public addresses (self-hosted models on your network). Off: such base URLs are refused when saved and on the address actually dialled (docs/ssrf.md)."),
    s("FLO2_UPSTREAM_TIMEOUT_SECS", "600", "Whole-call timeout for non-streaming upstream calls."),
    s("FLO2_USAGE_SPILL_DIR", "<FLO2_DATA_DIR>", "Where usage records are spilled (usage-spill.jsonl) while the database is unreachable; replayed in order when it returns and at the next start."),
    s("FLO2_USAGE_MEMORY_RECORDS", "50000", "Usage records held in memory while the writer is behind (the database is up but slow) before further ones go to the spill file. During an outage, or a write that stalls, records are spilled at once."),
    s("FLO2_USAGE_GATHER_MS", "100", "How long the usage writer gathers records into one batch insert. Longer costs the database less in all; shorter spreads its work into smaller bursts."),
    s("FLO2_BREAKER_FAILURES", "5", "Consecutive retryable failures that open a target's or key's circuit breaker (so traffic skips it)."),
    s("FLO2_BREAKER_OPEN_MS", "30000", "How long an open circuit breaker waits before letting one probe request through."),
    s("FLO2_HEDGE_BUDGET_PERCENT", "10", "Hedges (a hedged race's extra racers) an organization may send per replica, as a share of its requests, on top of FLO2_HEDGE_BUDGET_FLOOR_PER_SEC."),
    s("FLO2_HEDGE_BUDGET_FLOOR_PER_SEC", "1", "Hedges an organization may always send per second per replica, however few requests it makes."),
    s("FLO2_GATEWAY_MAX_BODY_BYTES", "33554432", "Largest accepted /v1 request body (images make these large); larger ones get 413."),
    s("FLO2_HEADER_READ_TIMEOUT_SECS", "10", "Time a client has to send a whole request head, from the moment its connection opens or its previous answer was sent; then the connection is closed. Also how long an idle keep-alive connection stays open."),
    s("FLO2_BODY_IDLE_TIMEOUT_SECS", "30", "Longest pause while a request body is arriving; a body that stops longer is answered 408 and its connection closed."),
    s("FLO2_MAX_CONNECTIONS", "10000", "Most client connections open at once; beyond it flo2 stops accepting and new connections wait in the kernel's listen backlog until one closes."),
    s("FLO2_STREAM_IDLE_TIMEOUT_SECS", "120", "Longest silence of an upstream stream after its first token; then the stream is ended with an error event in the caller's format and metered 504."),
    s("FLO2_MAX_INFLIGHT", "2048", "Most /v1 model requests in flight in this process (streams until they end); beyond it requests are refused at once with 503 (Anthropic Messages: 529) and Retry-After."),
    s("FLO2_MAX_INFLIGHT_PER_ORG_PERCENT", "50", "Share of FLO2_MAX_INFLIGHT one organization may hold (at least 1 request), so a tenant flooding the gateway cannot starve the others; 100 for a single-tenant install."),
];

/// Output format of the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (SQLite file, generated master key).
    pub data_dir: PathBuf,
    /// Database URL; `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// Master key, base64.
    pub master_key: Option<Secret<String>>,
    /// File holding the master key.
    pub master_key_file: Option<PathBuf>,
    /// Older master keys accepted during a rotation.
    pub previous_master_keys: Vec<Secret<String>>,
    /// Apply migrations at start.
    pub migrate_on_start: bool,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Serving threads; `None` means one per available core.
    pub worker_threads: Option<usize>,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Public base URL.
    pub public_url: Option<String>,
    /// Management API body limit.
    pub api_max_body_bytes: usize,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Invitation validity.
    pub invite_ttl: Duration,
    /// Reverse proxies trusted to name the client in `X-Forwarded-For`.
    pub trusted_proxies: Vec<flo2_console::client_address::Cidr>,
    /// Change-log poll interval.
    pub change_poll: Duration,
    /// Last-used flush interval.
    pub key_touch_interval: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Allow non-public upstream addresses.
    pub allow_private_upstreams: bool,
    /// Non-streaming upstream timeout.
    pub upstream_timeout: Duration,
    /// `/v1` body limit.
    pub gateway_max_body_bytes: usize,
    /// Spill directory for usage records.
    pub usage_spill_dir: Option<PathBuf>,
    /// Usage records held in memory before spilling.
    pub usage_memory_records: usize,
    /// How long a usage batch gathers.
    pub usage_gather: Duration,
    /// Consecutive failures that open a circuit breaker.
    pub breaker_failures: u32,
    /// How long a breaker stays open before a probe.
    pub breaker_open: Duration,
    /// Hedges per request, percent (per organization and replica).
    pub hedge_budget_percent: u64,
    /// Hedges always allowed per second (per organization and replica).
    pub hedge_budget_floor_per_sec: u64,
    /// Time to send a whole request head (also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Longest pause inside a request body.
    pub body_idle_timeout: Duration,
    /// Most open client connections.
    pub max_connections: usize,
    /// Longest silence of a stream after its first token.
    pub stream_idle_timeout: Duration,
    /// Most `/v1` model requests in flight.
    pub max_inflight: u32,
    /// One organization's share of `max_inflight`, in percent.
    pub max_inflight_per_org_percent: u32,
}

/// A setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The file names a setting flo2 does not have.
    #[error("config file {path}: unknown setting `{key}` (see `flo2 config` for the list)")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value does not parse.
    #[error("{name}: {message}")]
    Invalid {
        /// The setting's environment name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<&'static str, String> = SETTINGS
            .iter()
            .map(|s| (s.env, s.default.to_owned()))
            .collect();
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(k, _)| k == "FLO2_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        if let Some(path) = file {
            for (key, value) in read_toml(&path)? {
                let setting = SETTINGS
                    .iter()
                    .find(|s| {
                        s.env
                            .strip_prefix("FLO2_")
                            .is_some_and(|k| k.eq_ignore_ascii_case(&key))
                    })
                    .ok_or_else(|| ConfigError::UnknownKey {
                        path: path.clone(),
                        key: key.clone(),
                    })?;
                values.insert(setting.env, value);
            }
        }
        for setting in SETTINGS {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == setting.env) {
                values.insert(setting.env, value.clone());
            }
        }
        Self::from_values(&values)
    }

    fn from_values(values: &BTreeMap<&'static str, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| values.get(name).map(String::as_str).unwrap_or("").trim();
        let opt = |name: &'static str| {
            let v = get(name);
            (!v.is_empty() && !v.starts_with('<') && !v.contains("<FLO2_")).then(|| v.to_owned())
        };
        let invalid = |name: &'static str, message: &str| ConfigError::Invalid {
            name,
            message: message.to_owned(),
        };
        let num = |name: &'static str| -> Result<u64, ConfigError> {
            get(name)
                .parse::<u64>()
                .map_err(|_| invalid(name, "expected a whole number"))
        };
        let log_format = match get("FLO2_LOG_FORMAT") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid("FLO2_LOG_FORMAT", "expected `text` or `json`")),
        };
        let boolean = |name: &'static str| match get(name).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(invalid(name, "expected true or false")),
        };
        let migrate_on_start = boolean("FLO2_MIGRATE_ON_START")?;
        Ok(Config {
            listen: get("FLO2_LISTEN").parse().map_err(|_| {
                invalid("FLO2_LISTEN", "expected an address such as 127.0.0.1:8080")
            })?,
            data_dir: PathBuf::from(get("FLO2_DATA_DIR")),
            database_url: opt("FLO2_DATABASE_URL"),
            master_key: opt("FLO2_MASTER_KEY").map(Secret::new),
            master_key_file: opt("FLO2_MASTER_KEY_FILE").map(PathBuf::from),
            previous_master_keys: get("FLO2_PREVIOUS_MASTER_KEYS")
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Secret::new(k.to_owned()))
                .collect(),
            migrate_on_start,
            db_max_connections: u32::try_from(num("FLO2_DB_MAX_CONNECTIONS")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("FLO2_DB_MAX_CONNECTIONS", "expected 1 or more"))?,
            worker_threads: usize::try_from(num("FLO2_WORKER_THREADS")?)
                .map_err(|_| invalid("FLO2_WORKER_THREADS", "too large"))
                .map(|n| (n > 0).then_some(n))?,
            log: get("FLO2_LOG").to_owned(),
            log_format,
            public_url: opt("FLO2_PUBLIC_URL"),
            api_max_body_bytes: usize::try_from(num("FLO2_API_MAX_BODY_BYTES")?)
                .map_err(|_| invalid("FLO2_API_MAX_BODY_BYTES", "too large"))?,
            session_ttl: Duration::from_secs(num("FLO2_SESSION_TTL_SECS")?.max(60)),
            invite_ttl: Duration::from_secs(num("FLO2_INVITE_TTL_HOURS")?.clamp(1, 720) * 3600),
            trusted_proxies: flo2_console::client_address::parse_list(get("FLO2_TRUSTED_PROXIES"))
                .map_err(|e| invalid("FLO2_TRUSTED_PROXIES", &e.to_string()))?,
            change_poll: Duration::from_millis(num("FLO2_CHANGE_POLL_MS")?.max(10)),
            key_touch_interval: Duration::from_millis(num("FLO2_KEY_TOUCH_INTERVAL_MS")?.max(10)),
            shutdown_grace: Duration::from_secs(num("FLO2_SHUTDOWN_GRACE_SECS")?),
            allow_private_upstreams: boolean("FLO2_ALLOW_PRIVATE_UPSTREAMS")?,
            upstream_timeout: Duration::from_secs(num("FLO2_UPSTREAM_TIMEOUT_SECS")?.max(1)),
            usage_spill_dir: opt("FLO2_USAGE_SPILL_DIR").map(PathBuf::from),
            usage_memory_records: usize::try_from(num("FLO2_USAGE_MEMORY_RECORDS")?.max(1))
                .map_err(|_| invalid("FLO2_USAGE_MEMORY_RECORDS", "too large"))?,
            usage_gather: Duration::from_millis(num("FLO2_USAGE_GATHER_MS")?.clamp(1, 10_000)),
            gateway_max_body_bytes: usize::try_from(num("FLO2_GATEWAY_MAX_BODY_BYTES")?)
                .map_err(|_| invalid("FLO2_GATEWAY_MAX_BODY_BYTES", "too large"))?,
            breaker_failures: u32::try_from(num("FLO2_BREAKER_FAILURES")?.max(1))
                .map_err(|_| invalid("FLO2_BREAKER_FAILURES", "too large"))?,
            breaker_open: Duration::from_millis(num("FLO2_BREAKER_OPEN_MS")?.max(10)),
            hedge_budget_percent: num("FLO2_HEDGE_BUDGET_PERCENT")?.min(1_000),
            hedge_budget_floor_per_sec: num("FLO2_HEDGE_BUDGET_FLOOR_PER_SEC")?.min(1_000_000),
            header_read_timeout: Duration::from_secs(num("FLO2_HEADER_READ_TIMEOUT_SECS")?.max(1)),
            body_idle_timeout: Duration::from_secs(num("FLO2_BODY_IDLE_TIMEOUT_SECS")?.max(1)),
            max_connections: usize::try_from(num("FLO2_MAX_CONNECTIONS")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("FLO2_MAX_CONNECTIONS", "expected 1 or more"))?,
            stream_idle_timeout: Duration::from_secs(num("FLO2_STREAM_IDLE_TIMEOUT_SECS")?.max(1)),
            max_inflight: u32::try_from(num("FLO2_MAX_INFLIGHT")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("FLO2_MAX_INFLIGHT", "expected 1 to 4294967295"))?,
            max_inflight_per_org_percent: u32::try_from(num("FLO2_MAX_INFLIGHT_PER_ORG_PERCENT")?)
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| invalid("FLO2_MAX_INFLIGHT_PER_ORG_PERCENT", "expected 1 to 100"))?,
        })
    }

    /// The database URL in effect: the configured one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("flo2.db").display()))
    }

    /// True when the database is SQLite (the embedded default included).
    pub fn uses_sqlite(&self) -> bool {
        self.effective_database_url().starts_with("sqlite:")
    }

    /// The public base URL in effect.
    pub fn effective_public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| {
            let host = if self.listen.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                self.listen.ip().to_string()
            };
            format!("http://{host}:{}", self.listen.port())
        })
    }
}

fn read_toml(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Toml {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
    table
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .map(|items| items.join(",")),
                other => scalar(other),
            };
            text.map(|t| (key.clone(), t))
                .ok_or_else(|| ConfigError::Toml {
                    path: path.to_owned(),
                    message: format!(
                        "`{key}` must be a string, number, boolean or list of strings"
                    ),
                })
        })
        .collect()
}

fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_parse_and_mean_embedded_sqlite() {
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.effective_database_url(), "sqlite:./data/flo2.db");
        assert!(c.uses_sqlite());
        assert!(c.master_key.is_none());
        assert_eq!(c.effective_public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flo2.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\ndb_max_connections = 4\nprevious_master_keys = [\"a\", \"b\"]\n").unwrap();
        let c = Config::load_from(Some(&path), &env(&[("FLO2_LOG_FORMAT", "text")])).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.db_max_connections, 4);
        assert_eq!(c.previous_master_keys.len(), 2);
        assert_eq!(c.effective_public_url(), "http://localhost:9000");
    }

    #[test]
    fn bad_values_and_unknown_keys_are_named() {
        let err = Config::load_from(None, &env(&[("FLO2_LISTEN", "nope")])).unwrap_err();
        assert!(err.to_string().starts_with("FLO2_LISTEN"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flo2.toml");
        std::fs::write(&path, "lisen = \"x\"").unwrap();
        assert!(matches!(
            Config::load_from(Some(&path), &[]),
            Err(ConfigError::UnknownKey { .. })
        ));
        std::fs::write(&path, "listen = ").unwrap();
        assert!(matches!(
            Config::load_from(Some(&path), &[]),
            Err(ConfigError::Toml { .. })
        ));
    }

    #[test]
    fn the_shipped_example_file_parses_to_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/flo2.example.toml");
        let from_file = Config::load_from(Some(&path), &[]).unwrap();
        let defaults = Config::load_from(None, &[]).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
        // And it mentions every setting.
        let text = std::fs::read_to_string(&path).unwrap();
        for s in SETTINGS {
            let key = s.env.trim_start_matches("FLO2_").to_lowercase();
            assert!(text.contains(&key), "{key} is missing from the example");
        }
    }

    #[test]
    fn worker_threads_default_to_one_per_core() {
        let c = Config::load_from(None, &[]).unwrap();
        assert_eq!(c.worker_threads, None);
        let c = Config::load_from(None, &env(&[("FLO2_WORKER_THREADS", "3")])).unwrap();
        assert_eq!(c.worker_threads, Some(3));
        let err = Config::load_from(None, &env(&[("FLO2_WORKER_THREADS", "many")])).unwrap_err();
        assert!(err.to_string().starts_with("FLO2_WORKER_THREADS"));
    }

    #[test]
    fn trusted_proxies_parse_as_address_blocks() {
        let c = Config::load_from(None, &[]).unwrap();
        assert!(c.trusted_proxies.is_empty());
        let c =
            Config::load_from(None, &env(&[("FLO2_TRUSTED_PROXIES", "10.0.0.0/8, ::1")])).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        let err =
            Config::load_from(None, &env(&[("FLO2_TRUSTED_PROXIES", "10.0.0.0/99")])).unwrap_err();
        assert!(err.to_string().starts_with("FLO2_TRUSTED_PROXIES"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::load_from(None, &env(&[("FLO2_MASTER_KEY", "c2VjcmV0")])).unwrap();
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
    }
}
