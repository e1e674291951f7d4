//! Ingest configuration: limits, write-ahead log, head, flush, and cluster identity.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wal::WalConfig;

/// Everything the ingest tier can be told.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest accepted request body as sent (compressed), in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted request body after decompression, in bytes. Checked before allocating.
    pub max_decompressed_bytes: usize,
    /// Most labels one series may carry (including `__name__` and `cluster`), as Mimir's default.
    pub max_labels_per_series: usize,
    /// Longest accepted label name, in bytes.
    pub max_label_name_bytes: usize,
    /// Longest accepted label value, in bytes.
    pub max_label_value_bytes: usize,
    /// Request header that names the cluster when neither a token nor a `cluster` label does.
    pub cluster_header: String,
    /// Deprecated: the root `[auth]` section replaces this. Still read: its tokens become
    /// `[[auth.tokens]]` entries that write their one cluster (no read scope), and `required`
    /// sets `auth.required`; a warning says so at startup.
    pub auth: AuthConfig,
    /// The in-memory head and when it is flushed to Parquet.
    pub head: HeadConfig,
    /// The write-ahead log.
    pub wal: WalConfig,
    /// How OTLP metrics and logs map onto Tributary's data model.
    pub otlp: OtlpConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_decompressed_bytes: 128 << 20,
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
            cluster_header: "X-Tributary-Cluster".to_string(),
            auth: AuthConfig::default(),
            head: HeadConfig::default(),
            wal: WalConfig::default(),
            otlp: OtlpConfig::default(),
        }
    }
}

/// Deprecated sender authentication (`[ingest.auth]`), kept as an alias of the root `[auth]`
/// section: see [`AuthConfig::to_entries`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When true, every request must carry a known token (mapped to `auth.required`, which now
    /// covers reads too).
    pub required: bool,
    /// Token → cluster. A token may only write its own cluster.
    pub tokens: BTreeMap<String, String>,
}

impl AuthConfig {
    /// Whether anything is set (the alias is in use).
    pub fn is_set(&self) -> bool {
        self.required || !self.tokens.is_empty()
    }

    /// The tokens as `[[auth.tokens]]` entries: each writes its one cluster, reads nothing and
    /// is no admin, exactly what it could do before.
    pub fn to_entries(&self) -> Vec<tributary_storage::auth::TokenEntry> {
        self.tokens
            .iter()
            .map(|(token, cluster)| tributary_storage::auth::TokenEntry {
                token: Some(token.clone()),
                write: Some(cluster.clone()),
                ..Default::default()
            })
            .collect()
    }
}

/// The head: recent data in memory, flushed to Parquet by age or size.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadConfig {
    /// Flush the head to Parquet this often.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Flush early once the head holds this many samples.
    pub max_samples: usize,
    /// Flush early once the head holds this many bytes of log records.
    pub max_log_bytes: usize,
    /// Refuse writes with 429 (the sender retries) once the head holds this many samples,
    /// which only happens when flushes keep failing.
    pub hard_limit_samples: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(30 * 60),
            max_samples: 50_000_000,
            max_log_bytes: 512 << 20,
            hard_limit_samples: 150_000_000,
        }
    }
}

/// OTLP translation (see `docs/otlp-metrics.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Resource attributes copied onto every metric series as labels (besides `target_info`),
    /// like Prometheus's `otlp.promote_resource_attributes`.
    pub promote_resource_attributes: Vec<String>,
    /// Append unit and type suffixes to metric names (`_seconds`, `_bytes`, `_total`...), as
    /// Prometheus's default translation does.
    pub add_metric_suffixes: bool,
    /// Resource attributes that become a log record's stream labels (what LogQL selects on), as
    /// Loki's default OTLP index labels; names are normalised (`k8s.pod.name` → `k8s_pod_name`).
    pub log_stream_attributes: Vec<String>,
    /// Most attributes (resource, scope and record together) one log record may carry.
    pub max_log_attributes: usize,
    /// Longest accepted log body, in bytes.
    pub max_log_body_bytes: usize,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            promote_resource_attributes: ["k8s.namespace.name", "k8s.pod.name"].map(String::from).to_vec(),
            add_metric_suffixes: true,
            log_stream_attributes: [
                "service.name",
                "service.namespace",
                "service.instance.id",
                "deployment.environment",
                "deployment.environment.name",
                "cloud.region",
                "cloud.availability_zone",
                "container.name",
                "k8s.container.name",
                "k8s.cronjob.name",
                "k8s.daemonset.name",
                "k8s.deployment.name",
                "k8s.job.name",
                "k8s.namespace.name",
                "k8s.pod.name",
                "k8s.replicaset.name",
                "k8s.statefulset.name",
            ]
            .map(String::from)
            .to_vec(),
            max_log_attributes: 128,
            max_log_body_bytes: 256 << 10,
        }
    }
}
