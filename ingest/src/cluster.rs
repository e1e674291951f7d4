//! Cluster identity: which cluster every series and log record belongs to.
//!
//! The rule, in order of precedence:
//! 1. the authenticated token's write scope (`[[auth.tokens]] write`):
//!    - one exact cluster name: every series is stamped with it; when the series' own `cluster`
//!      label disagrees, the token wins and the sender's value is kept as `exported_cluster`
//!      (Prometheus's `honor_labels: false` convention);
//!    - a glob (`prod-*`, `eu-?`): the series' own `cluster` label (else the request's header)
//!      is kept when the glob matches it, and the series is refused, with the reason, when it
//!      does not or when neither names a cluster (a fleet-level writer such as a rule evaluator
//!      writes per-cluster results this way);
//! 2. the series' own `cluster` label (Prometheus `external_labels`; OTLP `k8s.cluster.name`);
//! 3. the configured request header (default `X-Tributary-Cluster`);
//! 4. otherwise the series is rejected with a 400 that says how to set one.
//!
//! The write scope travels in the WAL record as `token_cluster`, so replay applies the same rule.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use tributary_storage::auth::{Auth, ClientCertificate};
use tributary_storage::layout::escape_cluster;
use tributary_storage::scope::{glob, is_glob};
use tributary_storage::types::{CLUSTER, EXPORTED_CLUSTER};

/// The longest cluster name accepted from a sender, counted in bytes once percent-escaped into
/// an object-key segment ([`escape_cluster`]). File systems refuse path segments over 255
/// bytes, and a cluster that cannot be written would make every flush fail, so it is refused
/// here, at the edge, with the rest of the request's data kept.
pub const MAX_CLUSTER_SEGMENT_BYTES: usize = 200;

/// Why a cluster name sent by a client (label, attribute or header) cannot be stored, if so.
pub fn check_cluster(value: &str) -> std::result::Result<(), String> {
    let escaped = escape_cluster(value).len();
    if escaped > MAX_CLUSTER_SEGMENT_BYTES {
        return Err(format!(
            "cluster name of {} bytes is too long: at most {MAX_CLUSTER_SEGMENT_BYTES} bytes once percent-escaped \
             for object keys (this one is {escaped})",
            value.len()
        ));
    }
    Ok(())
}

/// What a request says about its cluster, before looking at any series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterContext {
    /// The authenticated token's write scope: one cluster name, or a glob of clusters
    /// ([`is_glob`]).
    pub token_cluster: Option<String>,
    /// The cluster named by the configured header.
    pub header_cluster: Option<String>,
}

/// How one series' labels must change to carry the right cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Stamp<'a> {
    /// The labels already say the right cluster.
    Keep,
    /// Add `cluster`.
    Insert(&'a str),
    /// Overwrite `cluster`, keeping the sender's value as `exported_cluster`.
    Replace {
        /// The cluster the series belongs to.
        cluster: &'a str,
        /// The sender's own value, kept as `exported_cluster`.
        exported: &'a str,
    },
}

impl<'a> Stamp<'a> {
    /// Applies the change to the series whose labels start at `start`. The labels must be
    /// re-sorted afterwards.
    pub fn apply(self, labels: &mut Vec<(&'a str, &'a str)>, start: usize) {
        match self {
            Stamp::Keep => {}
            Stamp::Insert(c) => labels.push((CLUSTER, c)),
            Stamp::Replace { cluster, exported } => {
                for l in labels[start..].iter_mut() {
                    if l.0 == CLUSTER {
                        l.1 = cluster;
                    }
                }
                match labels[start..].iter_mut().find(|l| l.0 == EXPORTED_CLUSTER) {
                    Some(l) => l.1 = exported,
                    None => labels.push((EXPORTED_CLUSTER, exported)),
                }
            }
        }
    }
}

impl ClusterContext {
    /// Reads the token and the connection's verified client certificate (both checked against
    /// `auth`, which decides between them) and the cluster header from a request.
    pub fn from_request(
        headers: &HeaderMap,
        client_cert: Option<&ClientCertificate>,
        cfg: &IngestConfig,
        auth: &Auth,
    ) -> Result<Self> {
        let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token_cluster = auth.write_scope(authorization, client_cert).map_err(Error::from_auth)?;
        let header_cluster = match headers.get(cfg.cluster_header.as_str()) {
            Some(v) => {
                let v = v
                    .to_str()
                    .map_err(|_| Error::InvalidInput(format!("header {} is not valid ASCII", cfg.cluster_header)))?;
                if !v.is_empty() {
                    check_cluster(v).map_err(|r| Error::InvalidInput(format!("header {}: {r}", cfg.cluster_header)))?;
                }
                (!v.is_empty()).then(|| v.to_string())
            }
            None => None,
        };
        Ok(Self {
            token_cluster,
            header_cluster,
        })
    }

    /// The cluster of the request as a whole (what request-level data such as remote-write
    /// 1.0 metadata is filed under): the token's one cluster, else the header's (when a glob
    /// scope admits it).
    pub fn request_cluster(&self) -> Option<&str> {
        let token = self.token_cluster.as_deref().filter(|t| !t.is_empty());
        match token {
            Some(t) if !is_glob(t) => Some(t),
            Some(g) => self.header_cluster.as_deref().filter(|h| glob(g, h)),
            None => self.header_cluster.as_deref(),
        }
    }

    /// Decides the cluster of one series from its (sorted) labels.
    pub fn stamp<'a>(&'a self, labels: &[(&'a str, &'a str)]) -> Result<Stamp<'a>, String> {
        let own = labels.iter().find(|(n, _)| *n == CLUSTER).map(|(_, v)| *v);
        self.decide(own)?.ok_or_else(|| {
            "series has no cluster: set `cluster` in Prometheus's global.external_labels, send the \
             X-Tributary-Cluster header (or the configured cluster_header), or authenticate with a token \
             mapped to a cluster"
                .to_string()
        })
    }

    /// The rule of this module for a series (or resource) whose own cluster is `own`: how to stamp it, `Ok(None)` when nothing names a cluster (the caller
    /// words that for its protocol), or why it is refused.
    pub fn decide<'a>(&'a self, own: Option<&'a str>) -> Result<Option<Stamp<'a>>, String> {
        let token = self.token_cluster.as_deref().filter(|t| !t.is_empty());
        match (token, own) {
            (Some(t), own) if is_glob(t) => match own {
                Some(o) if glob(t, o) => check_cluster(o).map(|()| Some(Stamp::Keep)),
                Some(o) => Err(format!(
                    "series cluster {o:?} is outside this token's write scope {t:?}"
                )),
                None => match self.header_cluster.as_deref() {
                    Some(h) if glob(t, h) => Ok(Some(Stamp::Insert(h))),
                    Some(h) => Err(format!(
                        "cluster {h:?} (from the request header) is outside this token's write scope {t:?}"
                    )),
                    None => Err(format!(
                        "series has no cluster, and this token may write several ({t:?}): set the series' \
                         own cluster label (or the cluster header) to one of them"
                    )),
                },
            },
            (Some(t), Some(o)) if t == o => Ok(Some(Stamp::Keep)),
            (Some(t), Some(o)) => Ok(Some(Stamp::Replace {
                cluster: t,
                exported: o,
            })),
            (Some(t), None) => Ok(Some(Stamp::Insert(t))),
            (None, Some(o)) => check_cluster(o).map(|()| Some(Stamp::Keep)),
            (None, None) => Ok(self
                .header_cluster
                .as_deref()
                .filter(|h| !h.is_empty())
                .map(Stamp::Insert)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    use tributary_storage::auth::{AuthConfig, TokenEntry};

    fn cfg() -> IngestConfig {
        IngestConfig::default()
    }

    fn auth_with(required: bool) -> Auth {
        let token = |token: &str, write: Option<&str>| TokenEntry {
            token: Some(token.into()),
            write: write.map(String::from),
            ..TokenEntry::default()
        };
        Auth::open(&AuthConfig {
            required,
            tokens: vec![token("s3cret", Some("prod-1")), token("reader", None)],
            ..AuthConfig::default()
        })
        .unwrap()
    }

    fn auth() -> Auth {
        auth_with(false)
    }

    #[test]
    fn token_then_header() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        h.insert("x-tributary-cluster", HeaderValue::from_static("hdr"));
        let ctx = ClusterContext::from_request(&h, None, &cfg(), &auth()).unwrap();
        assert_eq!(ctx.token_cluster.as_deref(), Some("prod-1"));
        assert_eq!(ctx.header_cluster.as_deref(), Some("hdr"));
    }

    #[test]
    fn basic_auth_password_is_the_token() {
        let mut h = HeaderMap::new();
        // "prometheus:s3cret"
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic cHJvbWV0aGV1czpzM2NyZXQ="),
        );
        let ctx = ClusterContext::from_request(&h, None, &cfg(), &auth()).unwrap();
        assert_eq!(ctx.token_cluster.as_deref(), Some("prod-1"));
    }

    #[test]
    fn unknown_or_missing_required_token_is_unauthorized() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert!(matches!(
            ClusterContext::from_request(&h, None, &cfg(), &auth()),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            ClusterContext::from_request(&HeaderMap::new(), None, &cfg(), &auth_with(true)),
            Err(Error::Unauthorized(_))
        ));
        // A known token without a write scope is refused with 403, not 401.
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer reader"));
        assert!(matches!(
            ClusterContext::from_request(&h, None, &cfg(), &auth()),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn stamping_rules() {
        let tok = ClusterContext {
            token_cluster: Some("t".into()),
            header_cluster: Some("h".into()),
        };
        let hdr = ClusterContext {
            token_cluster: None,
            header_cluster: Some("h".into()),
        };
        let none = ClusterContext::default();
        let own = [("__name__", "up"), ("cluster", "o")];
        let bare = [("__name__", "up")];
        assert_eq!(
            tok.stamp(&own).unwrap(),
            Stamp::Replace {
                cluster: "t",
                exported: "o"
            }
        );
        assert_eq!(tok.stamp(&[("cluster", "t")]).unwrap(), Stamp::Keep);
        assert_eq!(tok.stamp(&bare).unwrap(), Stamp::Insert("t"));
        assert_eq!(hdr.stamp(&own).unwrap(), Stamp::Keep);
        assert_eq!(hdr.stamp(&bare).unwrap(), Stamp::Insert("h"));
        assert!(none.stamp(&bare).is_err());
    }

    /// A glob write scope keeps a series' own cluster when it matches and refuses the series,
    /// saying why, when it does not or when nothing names a cluster; the header stands in for a
    /// missing label only when the scope admits it.
    #[test]
    fn glob_write_scopes_keep_matching_clusters_and_refuse_the_rest() {
        let ctx = |header: Option<&str>| ClusterContext {
            token_cluster: Some("prod-*".into()),
            header_cluster: header.map(String::from),
        };
        let fleet = ctx(None);
        assert_eq!(fleet.stamp(&[("cluster", "prod-eu")]).unwrap(), Stamp::Keep);
        let outside = fleet.stamp(&[("__name__", "up"), ("cluster", "dev-1")]).unwrap_err();
        assert!(outside.contains("\"dev-1\"") && outside.contains("prod-*"), "{outside}");
        assert!(fleet.stamp(&[("__name__", "up")]).unwrap_err().contains("no cluster"));
        assert_eq!(
            ctx(Some("prod-us")).stamp(&[("__name__", "up")]).unwrap(),
            Stamp::Insert("prod-us")
        );
        assert!(
            ctx(Some("dev"))
                .stamp(&[("__name__", "up")])
                .unwrap_err()
                .contains("header")
        );
        // The own label wins over the header, and is still checked against the scope.
        assert_eq!(
            ctx(Some("prod-us")).stamp(&[("cluster", "prod-eu")]).unwrap(),
            Stamp::Keep
        );
        assert!(ctx(Some("prod-us")).stamp(&[("cluster", "dev")]).is_err());
        // `?` is one character.
        let one = ClusterContext {
            token_cluster: Some("eu-?".into()),
            header_cluster: None,
        };
        assert_eq!(one.stamp(&[("cluster", "eu-1")]).unwrap(), Stamp::Keep);
        assert!(one.stamp(&[("cluster", "eu-12")]).is_err());
        // Request-level data (remote-write 1.0 metadata) goes to the one cluster the request names.
        assert_eq!(fleet.request_cluster(), None);
        assert_eq!(ctx(Some("prod-us")).request_cluster(), Some("prod-us"));
        assert_eq!(ctx(Some("dev")).request_cluster(), None);
        let exact = ClusterContext {
            token_cluster: Some("t".into()),
            header_cluster: Some("h".into()),
        };
        assert_eq!(exact.request_cluster(), Some("t"));
    }

    /// A cluster is a path segment of every object key; one too long for a file system would
    /// make every flush fail, so it is refused per series, and in a header for the request.
    #[test]
    fn overlong_clusters_are_refused_at_the_edge() {
        let ok = "c".repeat(MAX_CLUSTER_SEGMENT_BYTES);
        assert!(check_cluster(&ok).is_ok());
        assert!(check_cluster(&"c".repeat(MAX_CLUSTER_SEGMENT_BYTES + 1)).is_err());
        // Escaping triples non-ASCII bytes: 70 two-byte runes are 420 bytes escaped.
        let escaped = "é".repeat(70);
        assert!(check_cluster(&escaped).unwrap_err().contains("percent-escaped"));
        let none = ClusterContext::default();
        let long = "x".repeat(300);
        assert!(none.stamp(&[("cluster", long.as_str())]).is_err());
        assert_eq!(none.stamp(&[("cluster", ok.as_str())]).unwrap(), Stamp::Keep);
        let mut h = HeaderMap::new();
        h.insert("x-tributary-cluster", long.parse().unwrap());
        assert!(matches!(
            ClusterContext::from_request(&h, None, &cfg(), &auth()),
            Err(Error::InvalidInput(_))
        ));
    }
}
