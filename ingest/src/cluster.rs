//! Cluster identity: which cluster every series and log record belongs to.
//!
//! The rule, in order of precedence:
//! 1. the authenticated token's cluster (a token may only write its own cluster);
//! 2. the series' own `cluster` label (Prometheus `external_labels`; OTLP `k8s.cluster.name`);
//! 3. the configured request header (default `X-Tributary-Cluster`);
//! 4. otherwise the series is rejected with a 400 that says how to set one.
//!
//! When a token's cluster and a series' own label disagree, the token wins and the sender's
//! value is kept as `exported_cluster` — Prometheus's `honor_labels: false` convention.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use tributary_storage::layout::escape_cluster;
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
    /// The cluster the authenticated token is bound to.
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
    /// Reads the token and the header from a request.
    pub fn from_request(headers: &HeaderMap, cfg: &IngestConfig) -> Result<Self> {
        let token_cluster = match bearer_or_basic_token(headers) {
            Some(token) => match cfg.auth.tokens.get(&token) {
                Some(cluster) => Some(cluster.clone()),
                None => return Err(Error::Unauthorized("unknown token".to_string())),
            },
            None if cfg.auth.required => {
                return Err(Error::Unauthorized(
                    "a bearer token is required (Authorization: Bearer <token>)".to_string(),
                ));
            }
            None => None,
        };
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

    /// Decides the cluster of one series from its (sorted) labels.
    pub fn stamp<'a>(&'a self, labels: &[(&'a str, &'a str)]) -> Result<Stamp<'a>, String> {
        let own = labels.iter().find(|(n, _)| *n == CLUSTER).map(|(_, v)| *v);
        match (&self.token_cluster, own) {
            (Some(t), Some(o)) if t == o => Ok(Stamp::Keep),
            (Some(t), Some(o)) => Ok(Stamp::Replace {
                cluster: t,
                exported: o,
            }),
            (Some(t), None) => Ok(Stamp::Insert(t)),
            (None, Some(o)) => check_cluster(o).map(|()| Stamp::Keep),
            (None, None) => match &self.header_cluster {
                Some(h) => Ok(Stamp::Insert(h)),
                None => Err(
                    "series has no cluster: set `cluster` in Prometheus's global.external_labels, send the \
                     X-Tributary-Cluster header (or the configured cluster_header), or authenticate with a token \
                     mapped to a cluster"
                        .to_string(),
                ),
            },
        }
    }
}

fn bearer_or_basic_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
        return Some(t.trim().to_string());
    }
    // Basic auth: the password is the token (Prometheus's basic_auth, Grafana Agent).
    let b = v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(b.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    s.split_once(':').map(|(_, p)| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cfg() -> IngestConfig {
        let mut c = IngestConfig::default();
        c.auth.tokens.insert("s3cret".into(), "prod-1".into());
        c
    }

    #[test]
    fn token_then_header() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        h.insert("x-tributary-cluster", HeaderValue::from_static("hdr"));
        let ctx = ClusterContext::from_request(&h, &cfg()).unwrap();
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
        let ctx = ClusterContext::from_request(&h, &cfg()).unwrap();
        assert_eq!(ctx.token_cluster.as_deref(), Some("prod-1"));
    }

    #[test]
    fn unknown_or_missing_required_token_is_unauthorized() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert!(matches!(
            ClusterContext::from_request(&h, &cfg()),
            Err(Error::Unauthorized(_))
        ));
        let mut c = cfg();
        c.auth.required = true;
        assert!(matches!(
            ClusterContext::from_request(&HeaderMap::new(), &c),
            Err(Error::Unauthorized(_))
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
            ClusterContext::from_request(&h, &cfg()),
            Err(Error::InvalidInput(_))
        ));
    }
}
