//! What the status APIs (`tributary_query::http::status_router`) say about this process: the
//! effective configuration with its secrets redacted, the flags, the start time.

use std::collections::BTreeMap;
use std::time::Duration;

use tributary_query::http::StatusInfo;

use crate::config::{Cli, Config, Role};

/// What redacted values read as (Prometheus's own word for them).
const SECRET: &str = "<secret>";

/// The facts of this process at startup. `flags` are the command-line flags as
/// [`flags`] renders them.
pub(crate) fn info(cfg: &Config, flags: BTreeMap<String, String>) -> StatusInfo {
    let retention = cfg.storage.retention.default.map_or_else(
        || "unlimited".to_string(),
        |d| humantime::format_duration(d).to_string(),
    );
    StatusInfo {
        config_text: redacted_toml(cfg),
        flags,
        start_time_ms: chrono::Utc::now().timestamp_millis(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        storage_retention: retention,
        // A process with a head reports what is in memory now; a query process has no head of
        // its own and reads the last hour of what it can reach (the ingesters' heads, Parquet).
        window: match cfg.server.role {
            Role::AllInOne | Role::Ingest => None,
            Role::Query | Role::Compactor | Role::Ruler => Some(Duration::from_secs(3600)),
        },
    }
}

/// Every flag with the value in force (the configuration's, when the flag was not given), by
/// its long name, as Prometheus lists its flags.
pub fn flags(cli: &Cli, cfg: &Config) -> BTreeMap<String, String> {
    let role = serde_json::to_value(cfg.server.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let log_format = serde_json::to_value(cfg.server.log_format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    [
        (
            "config",
            cli.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        ),
        ("http-listen", cfg.server.http_listen.to_string()),
        ("grpc-listen", cfg.server.grpc_listen.clone()),
        ("otlp-http-listen", cfg.server.otlp_http_listen.clone()),
        ("data-dir", cfg.server.data_dir.display().to_string()),
        (
            "storage",
            cfg.storage.url.as_deref().map(redact_url).unwrap_or_default(),
        ),
        ("role", role),
        ("ingesters", cfg.query.ingesters.join(",")),
        ("log-format", log_format),
        ("print-config", cli.print_config.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The configuration as `--print-config` prints it, with every secret replaced by
/// `<secret>`: token values (`[[auth.tokens]] token`, the keys of the deprecated
/// `[ingest.auth.tokens]`), credentials among `storage.options` (keys, secrets, passwords,
/// session tokens) and a user/password in `storage.url`. File paths and SHA-256 digests stay:
/// they hold no secret.
pub(crate) fn redacted_toml(cfg: &Config) -> String {
    let mut value = match toml::Value::try_from(cfg) {
        Ok(v) => v,
        Err(e) => return format!("# the configuration could not be rendered: {e}\n"),
    };
    redact(&mut value, &[]);
    toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# the configuration could not be rendered: {e}\n"))
}

/// Replaces the secrets under `value`, found at `path` (the keys leading to it).
fn redact(value: &mut toml::Value, path: &[&str]) {
    match value {
        toml::Value::Table(table) => {
            if path == ["ingest", "auth", "tokens"] {
                // The token is the key: number them so the entries stay distinct.
                let entries = std::mem::take(table);
                for (i, (_, cluster)) in entries.into_iter().enumerate() {
                    table.insert(format!("{SECRET} {}", i + 1), cluster);
                }
                return;
            }
            for (key, v) in table.iter_mut() {
                let mut inner = path.to_vec();
                inner.push(key);
                if is_secret(&inner) {
                    if let toml::Value::String(s) = v {
                        *s = SECRET.to_string();
                    }
                } else if inner == ["storage", "url"] {
                    if let toml::Value::String(s) = v {
                        *s = redact_url(s);
                    }
                } else if inner == ["ruler", "alertmanagers"] {
                    // An Alertmanager URL may carry basic-auth credentials.
                    if let toml::Value::Array(urls) = v {
                        for url in urls.iter_mut() {
                            if let toml::Value::String(s) = url {
                                *s = redact_url(s);
                            }
                        }
                    }
                } else {
                    redact(v, &inner);
                }
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                redact(item, path);
            }
        }
        _ => {}
    }
}

/// Whether the option at `path` holds a secret.
fn is_secret(path: &[&str]) -> bool {
    match path {
        ["auth", "tokens", "token"] => true,
        ["storage", "options", key] => {
            let key = key.to_ascii_lowercase();
            ["secret", "password", "token", "access_key", "key_id", "credential"]
                .iter()
                .any(|word| key.contains(word))
        }
        _ => false,
    }
}

/// `url` without a password (`s3://user:pass@host/…` → `s3://user:<secret>@host/…`).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        None => url.to_string(),
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:{SECRET}{}", &rest[at..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens, S3 credentials and a URL password never reach `/api/v1/status/config`; what
    /// holds no secret (paths, digests, other options) is shown as configured.
    #[test]
    fn the_config_text_has_its_secrets_redacted() {
        let cfg: Config = toml::from_str(
            "[storage]\nurl = \"s3://AKIAUSER:hunter2@bucket/prefix\"\n\
             [storage.options]\naws_access_key_id = \"AKIAEXAMPLE\"\naws_secret_access_key = \"s3cr3t\"\n\
             aws_session_token = \"s3ss10n-value\"\naws_region = \"eu-west-1\"\n\
             [ingest.auth.tokens]\n\"legacy-token\" = \"team-a\"\n\"other-token\" = \"team-b\"\n\
             [auth]\ntoken_file = \"/etc/tributary/tokens.toml\"\n\
             [[auth.tokens]]\ntoken = \"plain-token\"\nread = [\"*\"]\n\
             [[auth.tokens]]\ntoken_sha256 = \"abc123\"\nwrite = \"x\"\n\
             [ruler]\nalertmanagers = [\"http://am:amp4ss@alertmanager:9093\", \"http://plain:9093\"]\n",
        )
        .unwrap();
        let text = redacted_toml(&cfg);
        for secret in [
            "hunter2",
            "AKIAEXAMPLE",
            "s3cr3t",
            "s3ss10n-value",
            "legacy-token",
            "other-token",
            "plain-token",
            "amp4ss",
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        for kept in [
            "eu-west-1",
            "/etc/tributary/tokens.toml",
            "abc123",
            "team-a",
            "team-b",
            "s3://AKIAUSER:<secret>@bucket/prefix",
            "http://am:<secret>@alertmanager:9093",
            "http://plain:9093",
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
        // Still the configuration: it parses back with the same shape.
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.auth.tokens.len(), 2);
        assert_eq!(back.ingest.auth.tokens.len(), 2);
        let cli = <Cli as clap::Parser>::parse_from(["tributary"]);
        assert_eq!(flags(&cli, &cfg)["storage"], "s3://AKIAUSER:<secret>@bucket/prefix");
    }
}
