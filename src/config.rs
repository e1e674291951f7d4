//! The root configuration: one serde tree, read from TOML, then overridden by environment
//! variables and flags (defaults < file < env < flags).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::{Deserialize, Serialize};
use tributary_ingest::IngestConfig;
use tributary_query::QueryConfig;
use tributary_query::ruler::RulerConfig;
use tributary_storage::auth::AuthConfig;
use tributary_storage::config::StorageConfig;

/// Everything Tributary can be told. `deploy/config/tributary.example.toml` is generated from
/// `Config::default()` and a test keeps it current.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`: listen addresses, data directory, role, log filter.
    pub server: ServerConfig,
    /// `[ingest]`: receiver limits, cluster identity, head, WAL and OTLP translation.
    pub ingest: IngestConfig,
    /// `[storage]`: the object store and the Parquet layout and read caches.
    pub storage: StorageConfig,
    /// `[query]`: PromQL and LogQL limits.
    pub query: QueryConfig,
    /// `[auth]`: tokens and what each may write, read and administer.
    pub auth: AuthConfig,
    /// `[ruler]`: rule files, Alertmanagers and evaluation settings (the all-in-one and `ruler`
    /// roles).
    pub ruler: RulerConfig,
}

/// Process-level settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP address: receivers, query APIs, `/metrics`.
    pub http_listen: SocketAddr,
    /// OTLP/gRPC address; empty disables.
    pub grpc_listen: String,
    /// Dedicated OTLP/HTTP address (`/v1/metrics`, `/v1/logs`; the paths also answer on
    /// `http_listen`); empty disables.
    pub otlp_http_listen: String,
    /// WAL directory, and the Parquet files when `storage.url` is unset.
    pub data_dir: PathBuf,
    /// Which tiers this process runs: `all-in-one` (ingest + query, head queryable), `ingest`,
    /// `query`, `compactor` or `ruler`.
    pub role: Role,
    /// Log filter in `tracing` env-filter syntax (`RUST_LOG` overrides).
    pub log: String,
    /// Log line format: `text` (one line a person reads; coloured only when stdout is a
    /// terminal) or `json` (one JSON object a line, for log pipelines). Default `text`.
    pub log_format: LogFormat,
    /// On SIGTERM/SIGINT, how long requests still running (a heavy query, a write) may take to
    /// finish once the listener has stopped accepting; those still running then are cancelled
    /// (nothing they did is acknowledged) and the head is flushed. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: std::time::Duration,
    /// `[server.tls]`: TLS on every listener (HTTP API, OTLP/gRPC, OTLP/HTTP), optionally with
    /// client certificates.
    pub tls: TlsConfig,
}

/// `[server.tls]`. Setting both `cert_file` and `key_file` turns TLS on for every listener the
/// process opens; the files are re-read when they change, so certificates rotate without a
/// restart (a new file that fails to load is logged and the previous one stays in force).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain, PEM (leaf first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The server certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates are verified against. Set: clients are
    /// asked for a certificate, and a verified one identifies its request by the
    /// `[[auth.tokens]] client_cert` naming its common name or a SAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: `optional` (a client without a certificate may still connect and
    /// authenticate with a token) or `required` (the handshake fails without a valid one).
    /// Default `optional`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// How often the certificate, key and client CA files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: std::time::Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            client_auth: None,
            reload_interval: std::time::Duration::from_secs(30),
        }
    }
}

impl TlsConfig {
    /// Whether TLS is on (both the certificate and the key are set).
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// Whether a client certificate is required (`[server.tls] client_auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// Asked for and verified when presented; a client without one may connect.
    #[default]
    Optional,
    /// The handshake fails without a certificate the client CA signed.
    Required,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_listen: "0.0.0.0:9201".parse().expect("valid address"),
            grpc_listen: "0.0.0.0:4317".to_string(),
            otlp_http_listen: "0.0.0.0:4318".to_string(),
            data_dir: PathBuf::from("./data"),
            role: Role::AllInOne,
            log: "info".to_string(),
            log_format: LogFormat::Text,
            shutdown_timeout: std::time::Duration::from_secs(30),
            tls: TlsConfig::default(),
        }
    }
}

/// How log lines are written (`server.log_format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `span`).
    Json,
}

/// The tiers one process runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Ingest and query in one process (the head is queryable).
    #[default]
    AllInOne,
    /// Receivers, WAL, head and flush only.
    Ingest,
    /// Query APIs over the object store only (recent, unflushed data is not visible).
    Query,
    /// Compaction, retention and garbage deletion over the object store only. At most one
    /// compactor works at a time (a lease in the object store); `all-in-one` compacts too.
    Compactor,
    /// The rule evaluator alone: reads like a query process (`query.ingesters` and the object
    /// store), writes rule output to the ingest tier by remote-write (`ruler.remote_write_url`),
    /// holds nothing durable. One per deployment (see the README).
    Ruler,
}

/// Command-line flags. Each has an environment variable; both override the file.
#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "A central telemetry store for a fleet of Kubernetes clusters"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address (server.http_listen).
    #[arg(long, env = "TRIBUTARY_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// OTLP/gRPC listen address (server.grpc_listen); empty disables.
    #[arg(long, env = "TRIBUTARY_GRPC_LISTEN")]
    pub grpc_listen: Option<String>,
    /// OTLP/HTTP listen address (server.otlp_http_listen); empty disables.
    #[arg(long, env = "TRIBUTARY_OTLP_HTTP_LISTEN")]
    pub otlp_http_listen: Option<String>,
    /// Data directory (server.data_dir).
    #[arg(long, env = "TRIBUTARY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Object storage URL (storage.url): `file:///path` or `s3://bucket/prefix`.
    #[arg(long, env = "TRIBUTARY_STORAGE")]
    pub storage: Option<String>,
    /// Which tiers to run (server.role).
    #[arg(long, env = "TRIBUTARY_ROLE", value_enum)]
    pub role: Option<Role>,
    /// Ingesters a query process reads unflushed data from (query.ingesters), comma-separated:
    /// `http://host:port` or `dns+host:port`.
    #[arg(long, env = "TRIBUTARY_INGESTERS", value_delimiter = ',')]
    pub ingesters: Option<Vec<String>>,
    /// Log line format (server.log_format): `text` or `json`.
    #[arg(long, env = "TRIBUTARY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// A tool to run instead of the server (none: run the server).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `tributary <command>`: tools that run and exit instead of starting the server.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// SLO specs (Sloth's `prometheus/v1` format).
    #[command(subcommand)]
    Slo(SloCommand),
}

/// `tributary slo <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum SloCommand {
    /// Print the Prometheus rule file generated from an SLO spec (SLI recording rules,
    /// error-budget series, burn-rate alerts; per cluster and fleet-wide).
    Generate {
        /// The spec file (YAML).
        file: PathBuf,
    },
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or names an unknown option.
    #[error("parsing config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, with its position.
        source: Box<toml::de::Error>,
    },
    /// The options parsed but contradict each other or are out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServerConfig {
    /// An optional listen address (validated by [`Config::validate`]); `None` when disabled.
    pub(crate) fn optional_addr(addr: &str) -> Option<SocketAddr> {
        addr.parse().ok()
    }
}

impl Config {
    /// Reads a TOML file over the defaults (options it leaves out keep theirs); no validation.
    pub(crate) fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            source: Box::new(e),
        })
    }

    /// Layers the file (if any) and the flags/env over the defaults, then validates.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let mut cfg = match &cli.config {
            Some(p) => Self::from_file(p)?,
            None => Self::default(),
        };
        if let Some(a) = cli.http_listen {
            cfg.server.http_listen = a;
        }
        if let Some(a) = &cli.grpc_listen {
            cfg.server.grpc_listen = a.clone();
        }
        if let Some(a) = &cli.otlp_http_listen {
            cfg.server.otlp_http_listen = a.clone();
        }
        if let Some(d) = &cli.data_dir {
            cfg.server.data_dir = d.clone();
        }
        if let Some(s) = &cli.storage {
            cfg.storage.url = Some(s.clone());
        }
        if let Some(f) = cli.log_format {
            cfg.server.log_format = f;
        }
        if let Some(r) = cli.role {
            cfg.server.role = r;
        }
        if let Some(i) = &cli.ingesters {
            cfg.query.ingesters = i.iter().filter(|s| !s.is_empty()).cloned().collect();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: listen addresses, head limits, a non-empty cluster header.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, addr) in [
            ("server.grpc_listen", &self.server.grpc_listen),
            ("server.otlp_http_listen", &self.server.otlp_http_listen),
        ] {
            if !addr.is_empty() && addr.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{name} = {addr:?} is not an address like 0.0.0.0:4317 (or empty to disable)"
                )));
            }
        }
        let h = &self.ingest.head;
        if h.max_samples == 0 || h.hard_limit_samples < h.max_samples {
            return Err(ConfigError::Invalid(
                "ingest.head.hard_limit_samples must be >= ingest.head.max_samples > 0".into(),
            ));
        }
        if h.max_log_bytes == 0 || h.hard_limit_log_bytes < h.max_log_bytes {
            return Err(ConfigError::Invalid(
                "ingest.head.hard_limit_log_bytes must be >= ingest.head.max_log_bytes > 0".into(),
            ));
        }
        if h.flush_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "ingest.head.flush_interval must be positive".into(),
            ));
        }
        self.ruler.validate().map_err(ConfigError::Invalid)?;
        self.validate_ruler_role()?;
        let tls = &self.server.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls.cert_file and server.tls.key_file are set together (both: TLS on; neither: off)".into(),
            ));
        }
        if tls.client_ca_file.is_some() && !tls.enabled() {
            return Err(ConfigError::Invalid(
                "server.tls.client_ca_file needs server.tls.cert_file and key_file".into(),
            ));
        }
        if tls.client_auth.is_some() && tls.client_ca_file.is_none() {
            return Err(ConfigError::Invalid(
                "server.tls.client_auth needs server.tls.client_ca_file (the CA client certificates are verified against)"
                    .into(),
            ));
        }
        if tls.enabled() && tls.reload_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "server.tls.reload_interval must be positive".into(),
            ));
        }
        for i in &self.query.ingesters {
            let ok = match i.strip_prefix("dns+") {
                Some(host_port) => host_port
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
                None => (i.starts_with("http://") || i.starts_with("https://")) && i.len() > "https://".len(),
            };
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "query.ingesters entry {i:?} is neither http://host:port nor dns+host:port"
                )));
            }
        }
        if self.query.ingester_timeout.is_zero() || self.query.ingester_resolve_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "query.ingester_timeout and query.ingester_resolve_interval must be positive".into(),
            ));
        }
        if self.ingest.cluster_header.is_empty() {
            return Err(ConfigError::Invalid("ingest.cluster_header must not be empty".into()));
        }
        if let Some(problem) = self.ingest.ha_tracker.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        Ok(())
    }

    /// Which role evaluates rules and how: the all-in-one role writes to its own ingester, the
    /// `ruler` role to the ingest tier (so it needs the URL) and reads through the ingesters'
    /// heads (so it needs them); the other roles evaluate nothing and refuse rule files.
    fn validate_ruler_role(&self) -> Result<(), ConfigError> {
        let r = &self.ruler;
        let invalid = |why: &str| Err(ConfigError::Invalid(why.to_string()));
        match self.server.role {
            Role::Ruler if !r.enabled() => invalid(
                "the ruler role needs rules to evaluate: set ruler.rule_files, ruler.slo_files or ruler.logql_rule_files",
            ),
            Role::Ruler if r.remote_write_url.is_empty() => invalid(
                "the ruler role writes rule output to the ingest tier: set ruler.remote_write_url \
                 (e.g. http://tributary-ingester:9201/api/v1/write)",
            ),
            Role::Ruler if self.query.ingesters.is_empty() => invalid(
                "the ruler role reads recent samples from the ingesters' heads: set query.ingesters (--ingesters)",
            ),
            Role::Ruler => Ok(()),
            Role::AllInOne if !r.remote_write_url.is_empty() || !r.remote_write_token_file.as_os_str().is_empty() => {
                invalid(
                    "ruler.remote_write_url, ruler.remote_write_token_file: for the ruler role only (all-in-one \
                     writes rule output to its own ingester)",
                )
            }
            Role::AllInOne => Ok(()),
            Role::Ingest | Role::Query | Role::Compactor if r.enabled() => invalid(
                "ruler.rule_files, ruler.slo_files, ruler.logql_rule_files: rules are evaluated by the all-in-one and ruler roles only",
            ),
            Role::Ingest | Role::Query | Role::Compactor => Ok(()),
        }
    }

    /// The `[auth]` section with the deprecated `[ingest.auth]` folded in (its tokens write
    /// their one cluster and read nothing; its `required` sets `auth.required`), and the
    /// warnings to log at startup about either.
    pub(crate) fn effective_auth(&self) -> (AuthConfig, Vec<String>) {
        let mut auth = self.auth.clone();
        let mut warnings = Vec::new();
        let legacy = &self.ingest.auth;
        if legacy.is_set() {
            warnings.push(
                "[ingest.auth] is deprecated: its tokens are used as [[auth.tokens]] entries that write their one \
                 cluster and read nothing; move them to [auth] (see the README)"
                    .to_string(),
            );
            if legacy.required && !auth.required {
                auth.required = true;
                warnings.push(
                    "ingest.auth.required = true sets auth.required: reads now need a token with a `read` scope too"
                        .to_string(),
                );
            }
            auth.tokens.extend(legacy.to_entries());
        }
        if !auth.required {
            warnings.push(
                "auth.required = false: requests without a token write and read every cluster and may call the \
                 admin endpoints; set [auth] required = true to refuse them"
                    .to_string(),
            );
        }
        if !self.server.tls.enabled() && (!auth.tokens.is_empty() || auth.token_file.is_some()) {
            warnings.push(
                "tokens are configured but TLS is off: they cross the network in clear text; set [server.tls] \
                 cert_file and key_file (or terminate TLS in front of Tributary)"
                    .to_string(),
            );
        }
        if self.server.tls.client_ca_file.is_none() && auth.tokens.iter().any(|t| t.client_cert.is_some()) {
            warnings.push(
                "[[auth.tokens]] entries name a client_cert, but [server.tls] client_ca_file is unset: no client \
                 certificate is asked for, so they match nothing"
                    .to_string(),
            );
        }
        (auth, warnings)
    }

    /// The configuration as TOML, every option included (what `--print-config` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }
}

/// The comment at the top of the generated example file.
pub const EXAMPLE_HEADER: &str = "# Tributary configuration with every option at its default.\n\
# Generated by `tributary --print-config`; see the README's configuration reference.\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = Config::default().to_toml();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.to_toml(), text);
    }

    #[test]
    fn example_config_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/tributary.example.toml");
        let text = std::fs::read_to_string(&path).expect("deploy/config/tributary.example.toml exists");
        assert_eq!(
            text,
            format!("{}{}", EXAMPLE_HEADER, Config::default().to_toml()),
            "regenerate with: cargo run -- --print-config > deploy/config/tributary.example.toml"
        );
    }

    /// The head's hard limits hold at least what triggers a flush.
    #[test]
    fn head_hard_limits_are_at_least_the_flush_triggers() {
        assert!(Config::default().validate().is_ok());
        for text in [
            "[ingest.head]\nmax_log_bytes = 1000\nhard_limit_log_bytes = 999\n",
            "[ingest.head]\nmax_samples = 10\nhard_limit_samples = 9\n",
        ] {
            let cfg: Config = toml::from_str(text).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains("hard_limit_"), "{text}: {e}");
        }
    }

    /// `[ingest.auth]` still works: its tokens write their one cluster (and nothing else), its
    /// `required` requires tokens everywhere, and both are merged with `[auth]`.
    #[test]
    fn the_deprecated_ingest_auth_maps_into_auth() {
        let cfg: Config = toml::from_str(
            "[ingest.auth]\nrequired = true\n[ingest.auth.tokens]\n\"old\" = \"team-a\"\n\
             [[auth.tokens]]\ntoken = \"new\"\nread = [\"*\"]\n",
        )
        .unwrap();
        let (auth, warnings) = cfg.effective_auth();
        assert!(auth.required);
        assert_eq!(auth.tokens.len(), 2);
        let old = &auth.tokens[1];
        assert_eq!(
            (old.token.as_deref(), old.write.as_deref(), &old.read, old.admin),
            (Some("old"), Some("team-a"), &None, false)
        );
        assert!(warnings.iter().any(|w| w.contains("deprecated")), "{warnings:?}");
        let (open, warnings) = Config::default().effective_auth();
        assert!(!open.required && open.tokens.is_empty());
        assert!(
            warnings.iter().any(|w| w.contains("auth.required = false")),
            "{warnings:?}"
        );
    }

    /// `[server.tls]`: the certificate and key go together, client certificates need both and
    /// `[ruler]`: the defaults, and what it cannot run with.
    #[test]
    fn ruler_options_are_checked() {
        let cfg: Config = toml::from_str("[ruler]\nrule_files = [\"r.yml\"]\nevaluation_interval = \"15s\"\n").unwrap();
        cfg.validate().expect("valid");
        assert!(cfg.ruler.enabled());
        assert_eq!(cfg.ruler.evaluation_interval, std::time::Duration::from_secs(15));
        assert_eq!(cfg.ruler.default_cluster, "fleet");
        let invalid = |text: &str| match toml::from_str::<Config>(text).unwrap().validate() {
            Err(ConfigError::Invalid(why)) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(invalid("[ruler]\nresend_delay = \"0s\"\n").contains("ruler.resend_delay must be positive"));
        assert!(invalid("[ruler.external_labels]\n\"bad-name\" = \"x\"\n").contains("invalid label name"));
        assert!(
            invalid("[server]\nrole = \"query\"\n[ruler]\nrule_files = [\"r.yml\"]\n")
                .contains("all-in-one and ruler roles only")
        );
        // The ruler role: rules, where to write them and the ingesters to read are required.
        let ruler = "[server]\nrole = \"ruler\"\n[query]\ningesters = [\"http://i:9201\"]\n[ruler]\n";
        let full = format!("{ruler}rule_files = [\"r.yml\"]\nremote_write_url = \"http://i:9201/api/v1/write\"\n");
        toml::from_str::<Config>(&full)
            .unwrap()
            .validate()
            .expect("valid ruler role");
        assert!(invalid(ruler).contains("set ruler.rule_files"));
        assert!(invalid(&format!("{ruler}rule_files = [\"r.yml\"]\n")).contains("set ruler.remote_write_url"));
        assert!(
            invalid(&full.replace("[query]\ningesters = [\"http://i:9201\"]\n", "")).contains("set query.ingesters")
        );
        assert!(invalid(&full.replace("http://i:9201/api", "https://i:9201/api")).contains("https is not supported"));
        assert!(
            invalid(&full.replace("role = \"ruler\"", "role = \"all-in-one\"")).contains("for the ruler role only")
        );
        assert!(
            invalid("[server]\nrole = \"query\"\n[ruler]\nlogql_rule_files = [\"r.yml\"]\n")
                .contains("all-in-one and ruler roles only")
        );
    }

    /// a CA; tokens without TLS and open access each warn at startup.
    #[test]
    fn tls_options_are_checked_and_clear_text_tokens_warn() {
        let invalid = |text: &str| match toml::from_str::<Config>(text).unwrap().validate() {
            Err(ConfigError::Invalid(why)) => why,
            other => panic!("{text}: {other:?}"),
        };
        assert!(invalid("[server.tls]\ncert_file = \"c.pem\"\n").contains("together"));
        assert!(invalid("[server.tls]\nkey_file = \"k.pem\"\n").contains("together"));
        assert!(invalid("[server.tls]\nclient_ca_file = \"ca.pem\"\n").contains("needs server.tls.cert_file"));
        assert!(
            invalid("[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_auth = \"required\"\n")
                .contains("client_ca_file")
        );
        assert!(
            invalid("[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nreload_interval = \"0s\"\n")
                .contains("reload_interval")
        );
        let on: Config = toml::from_str(
            "[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\nclient_auth = \"required\"\n\
             [auth]\nrequired = true\n[[auth.tokens]]\ntoken = \"t\"\nwrite = \"a\"\n",
        )
        .unwrap();
        on.validate().unwrap();
        assert!(on.server.tls.enabled());
        assert_eq!(on.server.tls.client_auth, Some(ClientAuth::Required));
        assert!(toml::from_str::<Config>("[server.tls]\nclient_auth = \"sometimes\"\n").is_err());
        let (_, warnings) = on.effective_auth();
        assert!(warnings.is_empty(), "{warnings:?}");
        let mut clear = on;
        clear.server.tls = TlsConfig::default();
        let (_, warnings) = clear.effective_auth();
        assert!(warnings.iter().any(|w| w.contains("TLS is off")), "{warnings:?}");
    }

    #[test]
    fn flags_override_file_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(
            &p,
            "[server]\nhttp_listen = \"127.0.0.1:1\"\ndata_dir = \"/from-file\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["tributary", "--config", p.to_str().unwrap(), "--data-dir", "/from-flag"]);
        let cfg = Config::load(&cli).unwrap();
        assert_eq!(cfg.server.http_listen.port(), 1);
        assert_eq!(cfg.server.data_dir, PathBuf::from("/from-flag"));
        std::fs::write(&p, "[server]\nnope = 1\n").unwrap();
        assert!(matches!(Config::from_file(&p), Err(ConfigError::Parse { .. })));
    }
}
