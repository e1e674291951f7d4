//! Tokens and what each may do: the `[auth]` section, the token table both tiers consult, and
//! the token file re-read on change.
//!
//! # The contract
//! - A request presents its token as `Authorization: Bearer <token>` or as the password of
//!   `Authorization: Basic` (Prometheus's `basic_auth`, Grafana's basic auth and its custom
//!   `Authorization` header all take one of these two forms). [`token_from_authorization`] is
//!   the one parser.
//! - A token is configured in clear (`token`) or as the hex SHA-256 of the token
//!   (`token_sha256`), so a config or token file need hold no secret. The table keeps only the
//!   digests: a presented token is hashed and looked up.
//! - Each token carries an [`Identity`]: the clusters it may write (one name, or a glob), the
//!   clusters it may read ([`ClusterScope`], none when absent) and whether it may call the
//!   admin endpoints, and its query limits ([`QueryLimits`]): each, when set, tightens the
//!   global `query.*` bound for that token's reads and never loosens it.
//! - An entry may instead (or also) name a client certificate (`client_cert`): a subject common
//!   name, a DNS SAN or a URI SAN. A request over a TLS connection whose client certificate the
//!   TLS layer verified (`[server.tls] client_ca_file`) and that presents no token gets the
//!   identity of the entry naming one of the certificate's names ([`ClientCertificate`]). **An
//!   explicit token wins**: a request carrying `Authorization` (Bearer or Basic) is judged by
//!   its token alone, whatever certificate its connection presented, so a proxy or a tool can
//!   act with a token of its own over an mTLS connection. A certificate whose names match no
//!   entry is refused like an unknown token.
//! - No token and no certificate: allowed (unrestricted) only when `auth.required = false`. An
//!   unknown token is always refused; a known token is always held to its scopes, required or
//!   not.
//! - The token file (`auth.token_file`, the same `[[tokens]]` entries) is polled for a new
//!   modification time or size every `auth.token_file_poll`; a file that fails to parse keeps
//!   the previous table (and logs why), so a half-written rotation never locks everyone out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::scope::ClusterScope;

/// The `[auth]` section: who may write, read and administer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When true, every write and every read needs a known token (admin endpoints a token with
    /// `admin = true`); when false (the default), requests without a token are served
    /// unrestricted, and a warning says so at startup.
    pub required: bool,
    /// A TOML file of `[[tokens]]` entries (the same fields as `[[auth.tokens]]`), read at
    /// startup and re-read when it changes, so tokens rotate without a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// How often the token file's modification time and size are checked.
    #[serde(with = "humantime_serde")]
    pub token_file_poll: Duration,
    /// Tokens and their scopes.
    pub tokens: Vec<TokenEntry>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: false,
            token_file: None,
            token_file_poll: Duration::from_secs(5),
            tokens: Vec::new(),
        }
    }
}

/// One `[[auth.tokens]]` entry.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenEntry {
    /// The token in clear. At most one of `token` and `token_sha256` is set, and one of them
    /// or `client_cert` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// A verified client certificate's subject common name, DNS SAN or URI SAN: a request over
    /// such a connection without a token gets this entry's scopes (needs `[server.tls]
    /// client_ca_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// The clusters this token may write: one cluster name (series are stamped with it, a
    /// different own `cluster` label kept as `exported_cluster`) or a glob (a series' own
    /// cluster is kept when it matches, and the series refused when it does not). Absent: no
    /// writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write: Option<String>,
    /// Cluster globs this token may read. Absent: no reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<ClusterScope>,
    /// May call the admin endpoints (flush, compact).
    pub admin: bool,
    /// A name for the token, shown on `/metrics` and in refusals instead of the token (default
    /// `sha256:` and the first 8 hex digits of its digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The most queries this token may run at once (a listing, metadata or exemplar read counts
    /// as one); one more is refused with a 429. Absent: no per-token bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_queries: Option<usize>,
    /// The most samples one query of this token may load (tightens `query.max_samples`; for
    /// LogQL, `query.logql.max_records`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_samples: Option<usize>,
    /// The most series (PromQL), streams or series (LogQL) one query or series listing of this
    /// token may answer with; a bigger answer fails with a 422 naming this limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_series: Option<usize>,
    /// The longest one query of this token may run (tightens `query.timeout` and
    /// `query.logql.timeout`).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub query_timeout: Option<Duration>,
}

impl std::fmt::Debug for TokenEntry {
    /// Never prints the token itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_sha256", &self.token_sha256)
            .field("client_cert", &self.client_cert)
            .field("write", &self.write)
            .field("read", &self.read)
            .field("admin", &self.admin)
            .field("name", &self.name)
            .field("max_concurrent_queries", &self.max_concurrent_queries)
            .field("max_samples", &self.max_samples)
            .field("max_series", &self.max_series)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

/// The token file's shape: `[[tokens]]` entries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

/// What a token may do.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// The token's name: the entry's `name`, or `sha256:` and the first 8 hex digits of its
    /// digest. Never the token.
    pub name: String,
    /// The clusters it may write: one name, or a glob (see [`crate::scope::is_glob`]).
    pub write: Option<String>,
    /// The clusters it may read (empty: none).
    pub read: ClusterScope,
    /// Whether it may call the admin endpoints.
    pub admin: bool,
    /// Its query limits (none set: only the global ones apply).
    pub query: QueryLimits,
}

/// A token's own query limits; each one that is set tightens the global `query.*` bound of the
/// same name for this token's reads (the smaller of the two applies) and never loosens it.
#[derive(Clone, Debug, Default)]
pub struct QueryLimits {
    /// At most this many of the token's queries at once.
    pub max_concurrent_queries: Option<usize>,
    /// At most this many samples (LogQL: records) loaded per query.
    pub max_samples: Option<usize>,
    /// At most this many series (LogQL: streams or series) answered per query or series
    /// listing.
    pub max_series: Option<usize>,
    /// At most this long per query.
    pub query_timeout: Option<Duration>,
    /// The permits of `max_concurrent_queries`, shared by every request with the token (and
    /// kept across token-file reloads while the limit stays the same, so a reload never hands
    /// out fresh permits to queries already running).
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
}

type Digest32 = [u8; 32];

/// The names of a client certificate the TLS layer verified against `[server.tls]
/// client_ca_file`: its subject common name, then its DNS and URI subject alternative names.
/// The TLS layer puts one in the extensions of every request on a TLS connection (HTTP
/// requests and gRPC calls alike); no names (no certificate presented, or one naming nothing)
/// identifies no one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCertificate {
    names: Vec<String>,
}

impl ClientCertificate {
    /// A verified certificate's names (empty: none presented).
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// The certificate's names, common name first.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Token digests and client-certificate names → identities.
#[derive(Debug, Default)]
struct TokenTable {
    by_digest: HashMap<Digest32, Arc<Identity>>,
    by_cert_name: HashMap<String, Arc<Identity>>,
}

impl TokenTable {
    /// Builds the table, refusing entries that name neither a token nor a certificate, both
    /// token forms, a malformed digest, an empty write scope, a zero query limit, or a token or
    /// certificate name twice; `origin` says where the entries came from. An entry of
    /// `previous` (same token, or same certificate name) keeps its concurrency permits when its
    /// limit is unchanged.
    fn build<'a>(entries: impl IntoIterator<Item = (&'a TokenEntry, &'a str)>, previous: &TokenTable) -> Result<Self> {
        let mut table = Self::default();
        for (i, (e, origin)) in entries.into_iter().enumerate() {
            let bad = |reason: String| Error::InvalidAuth {
                reason: format!("{origin}: token entry {}: {reason}", i + 1),
            };
            let digest = match (&e.token, &e.token_sha256) {
                (Some(t), None) if !t.is_empty() => Some(digest(t)),
                (None, Some(h)) => {
                    Some(parse_digest(h).ok_or_else(|| bad("token_sha256 must be 64 hex digits".into()))?)
                }
                (Some(_), Some(_)) => return Err(bad("set token or token_sha256, not both".into())),
                (None, None) if e.client_cert.as_deref().is_some_and(|c| !c.is_empty()) => None,
                _ => {
                    return Err(bad(
                        "needs token or token_sha256 (or client_cert, a client certificate name)".into(),
                    ));
                }
            };
            if e.write.as_deref() == Some("") {
                return Err(bad("write must name a cluster or a glob".into()));
            }
            let zero = [
                ("max_concurrent_queries", e.max_concurrent_queries),
                ("max_samples", e.max_samples),
                ("max_series", e.max_series),
            ]
            .into_iter()
            .find(|(_, v)| *v == Some(0));
            if let Some((option, _)) = zero {
                return Err(bad(format!(
                    "{option} must be at least 1 (leave it out for no per-token bound)"
                )));
            }
            if e.query_timeout == Some(Duration::ZERO) {
                return Err(bad("query_timeout must be longer than zero".into()));
            }
            let old = match (&digest, &e.client_cert) {
                (Some(d), _) => previous.by_digest.get(d),
                (None, Some(name)) => previous.by_cert_name.get(name),
                (None, None) => None,
            };
            let slots = e.max_concurrent_queries.map(|n| {
                let kept = old
                    .filter(|old| old.query.max_concurrent_queries == Some(n))
                    .and_then(|old| old.query.slots.clone());
                kept.unwrap_or_else(|| Arc::new(tokio::sync::Semaphore::new(n)))
            });
            let name = match (&e.name, &digest, &e.client_cert) {
                (Some(n), _, _) => n.clone(),
                (None, Some(d), _) => format!("sha256:{}", hex::encode(&d[..4])),
                (None, None, c) => format!("cert:{}", c.as_deref().unwrap_or_default()),
            };
            let identity = Arc::new(Identity {
                name,
                write: e.write.clone(),
                read: e.read.clone().unwrap_or_default(),
                admin: e.admin,
                query: QueryLimits {
                    max_concurrent_queries: e.max_concurrent_queries,
                    max_samples: e.max_samples,
                    max_series: e.max_series,
                    query_timeout: e.query_timeout,
                    slots,
                },
            });
            if let Some(d) = digest
                && table.by_digest.insert(d, identity.clone()).is_some()
            {
                return Err(bad("the same token is configured twice".into()));
            }
            if let Some(name) = &e.client_cert {
                if name.is_empty() {
                    return Err(bad("client_cert must name a certificate's common name or SAN".into()));
                }
                if table.by_cert_name.insert(name.clone(), identity).is_some() {
                    return Err(bad(format!("client_cert {name:?} is configured twice")));
                }
            }
        }
        Ok(table)
    }

    /// The identity of a verified client certificate: the entry naming one of its names, in
    /// the certificate's order (common name, DNS SANs, URI SANs). `None` when nothing matches.
    fn by_certificate(&self, cert: &ClientCertificate) -> Option<Arc<Identity>> {
        cert.names.iter().find_map(|n| self.by_cert_name.get(n).cloned())
    }
}

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_digest(hex_text: &str) -> Option<Digest32> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut out).ok()?;
    Some(out)
}

/// The token a request presents in its `Authorization` header value: `Bearer <token>`, or the
/// password of `Basic base64(user:password)`. `None` for any other form.
pub fn token_from_authorization(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let t = rest.trim();
        return (!t.is_empty()).then(|| t.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    s.split_once(':').map(|(_, p)| p.to_string())
}

/// The token table, shared by every receiver and read API, and re-read from the token file
/// when it changes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Auth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    required: bool,
    inline: Vec<TokenEntry>,
    file: Option<PathBuf>,
    poll: Duration,
    table: RwLock<Arc<TokenTable>>,
    /// The token file's (modification time, size) when last read.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl Default for Auth {
    /// No tokens, nothing required: every request is served unrestricted.
    fn default() -> Self {
        Self::open(&AuthConfig::default()).expect("an empty table is valid")
    }
}

impl Auth {
    /// Builds the table from the configured tokens and the token file (read now: a missing or
    /// invalid file fails startup).
    pub fn open(cfg: &AuthConfig) -> Result<Self> {
        let inner = Inner {
            required: cfg.required,
            inline: cfg.tokens.clone(),
            file: cfg.token_file.clone(),
            poll: cfg.token_file_poll,
            table: RwLock::new(Arc::default()),
            stamp: Mutex::new(None),
        };
        let auth = Self { inner: Arc::new(inner) };
        auth.reload()?;
        Ok(auth)
    }

    /// Whether requests without a token are refused.
    pub fn required(&self) -> bool {
        self.inner.required
    }

    /// Who presents this `Authorization` header value over a connection with this verified
    /// client certificate: the token's identity when there is a token (it wins over the
    /// certificate), else the certificate's. `None` for neither when tokens are not required;
    /// [`Error::Unauthenticated`] for neither when required, for an unknown token and for a
    /// certificate no entry names.
    pub fn identify(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&ClientCertificate>,
    ) -> Result<Option<Arc<Identity>>> {
        let Some(token) = authorization.and_then(token_from_authorization) else {
            if let Some(cert) = client_cert.filter(|c| !c.names.is_empty()) {
                return match self.inner.table.read().by_certificate(cert) {
                    Some(identity) => Ok(Some(identity)),
                    None => Err(Error::Unauthenticated {
                        reason: format!(
                            "the client certificate ({}) is not mapped to any [[auth.tokens]] client_cert; \
                             send a token instead",
                            cert.names.join(", ")
                        ),
                    }),
                };
            }
            if !self.inner.required {
                return Ok(None);
            }
            let reason = match authorization {
                Some(_) => {
                    "the Authorization header is neither Bearer <token> nor Basic auth with the token as password"
                }
                None => {
                    "a token is required: send Authorization: Bearer <token> (or basic auth with the token as password)"
                }
            };
            return Err(Error::Unauthenticated { reason: reason.into() });
        };
        match self.inner.table.read().by_digest.get(&digest(&token)) {
            Some(identity) => Ok(Some(identity.clone())),
            None => Err(Error::Unauthenticated {
                reason: "unknown token".into(),
            }),
        }
    }

    /// The clusters this request may read: `None` for unrestricted (no token while none is
    /// required); [`Error::Forbidden`] for a token without a read scope.
    pub fn read_scope(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&ClientCertificate>,
    ) -> Result<Option<ClusterScope>> {
        Ok(self.reader(authorization, client_cert)?.map(|id| id.read.clone()))
    }

    /// Who reads with this request (its read scope and query limits): `None` for unrestricted
    /// (no token while none is required); [`Error::Forbidden`] for a token without a read scope.
    pub fn reader(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&ClientCertificate>,
    ) -> Result<Option<Arc<Identity>>> {
        match self.identify(authorization, client_cert)? {
            None => Ok(None),
            Some(id) if id.read.is_empty() => Err(Error::Forbidden {
                reason: "this token has no read scope (set `read` to the cluster globs it may read)".into(),
            }),
            Some(id) => Ok(Some(id)),
        }
    }

    /// The clusters this request may write: `None` for no token while none is required (the
    /// series name their clusters); [`Error::Forbidden`] for a token without a write scope.
    pub fn write_scope(
        &self,
        authorization: Option<&str>,
        client_cert: Option<&ClientCertificate>,
    ) -> Result<Option<String>> {
        match self.identify(authorization, client_cert)? {
            None => Ok(None),
            Some(id) => match &id.write {
                Some(w) => Ok(Some(w.clone())),
                None => Err(Error::Forbidden {
                    reason: "this token has no write scope (set `write` to a cluster or a cluster glob)".into(),
                }),
            },
        }
    }

    /// Whether this request may call an admin endpoint: yes without a token while none is
    /// required, otherwise only with `admin = true`.
    pub fn check_admin(&self, authorization: Option<&str>, client_cert: Option<&ClientCertificate>) -> Result<()> {
        match self.identify(authorization, client_cert)? {
            None => Ok(()),
            Some(id) if id.admin => Ok(()),
            Some(_) => Err(Error::Forbidden {
                reason: "admin endpoints need a token with admin = true".into(),
            }),
        }
    }

    /// Re-reads the token file if its modification time or size changed since the last read;
    /// true when the table was replaced. On an error the previous table stays.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let Some(path) = &self.inner.file else {
            return Ok(false);
        };
        let now = file_stamp(path)?;
        if *self.inner.stamp.lock() == Some(now) {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Reads the token file (if any) and replaces the table.
    fn reload(&self) -> Result<()> {
        let mut from_file = TokenFile::default();
        let mut stamp = None;
        if let Some(path) = &self.inner.file {
            stamp = Some(file_stamp(path)?);
            let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
                op: "read token file",
                path: path.clone(),
                source,
            })?;
            from_file = toml::from_str(&text).map_err(|e| Error::InvalidAuth {
                reason: format!("token file {}: {e}", path.display()),
            })?;
        }
        let file_name = self.inner.file.as_deref().map(Path::display).map(|d| d.to_string());
        let entries = (self.inner.inline.iter().map(|e| (e, "[auth]")))
            .chain(from_file.tokens.iter().map(|e| (e, file_name.as_deref().unwrap_or(""))));
        let previous = self.inner.table.read().clone();
        let table = TokenTable::build(entries, &previous)?;
        *self.inner.table.write() = Arc::new(table);
        *self.inner.stamp.lock() = stamp;
        Ok(())
    }

    /// Polls the token file until `stop` turns true, replacing the table whenever the file
    /// changes. Returns at once when no file is configured.
    pub async fn watch(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.inner.file.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(self.inner.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match self.reload_if_changed() {
                Ok(true) => tracing::info!("token file re-read"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "token file not re-read; the previous tokens stay in force"),
            }
        }
    }
}

fn file_stamp(path: &Path) -> Result<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).map_err(|source| Error::Io {
        op: "stat token file",
        path: path.to_path_buf(),
        source,
    })?;
    let modified = meta.modified().map_err(|source| Error::Io {
        op: "stat token file",
        path: path.to_path_buf(),
        source,
    })?;
    Ok((modified, meta.len()))
}

#[cfg(test)]
mod tests;
