//! Ingest configuration: limits (per request and per cluster), write-ahead log, head, flush, and
//! cluster identity.

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
    /// What every received log record gains, whatever its protocol: `service_name` and
    /// `detected_level`, as Loki 3 derives them (see `crate::decode::log_labels`).
    pub logs: LogsConfig,
    /// Per-cluster limits: ingestion rate, active series, sample age (see `crate::quota`).
    pub limits: LimitsConfig,
    /// HA pairs: accept one replica of each cluster's Prometheus pair (see `crate::ha_tracker`).
    pub ha_tracker: HaTrackerConfig,
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
            logs: LogsConfig::default(),
            limits: LimitsConfig::default(),
            ha_tracker: HaTrackerConfig::default(),
        }
    }
}

/// The HA tracker (`[ingest.ha_tracker]`): of the series carrying a replica label, only the
/// elected replica's are stored, with the label removed (see `crate::ha_tracker`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HaTrackerConfig {
    /// Whether writes are deduplicated at all.
    pub enabled: bool,
    /// The labels that name a replica; a series carrying the first of them (in this order) is
    /// its replica's, and every one of them is removed from accepted series.
    pub replica_labels: Vec<String>,
    /// The elected replica's `received_at` in the object store is refreshed when older than this.
    #[serde(with = "humantime_serde")]
    pub update_timeout: Duration,
    /// Another replica takes over once the elected one has not been received for this long;
    /// must be above `update_timeout`.
    #[serde(with = "humantime_serde")]
    pub failover_timeout: Duration,
}

impl Default for HaTrackerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            replica_labels: ["__replica__", "prometheus_replica"].map(String::from).to_vec(),
            update_timeout: Duration::from_secs(15),
            failover_timeout: Duration::from_secs(30),
        }
    }
}

impl HaTrackerConfig {
    /// Why the configuration cannot work, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        if self.replica_labels.is_empty() {
            return Some("ingest.ha_tracker.replica_labels must name at least one label".into());
        }
        if let Some(bad) = self.replica_labels.iter().find(|l| {
            l.is_empty()
                || l.as_str() == tributary_storage::types::CLUSTER
                || l.as_str() == tributary_storage::types::METRIC_NAME
                || !l
                    .bytes()
                    .enumerate()
                    .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
        }) {
            return Some(format!(
                "ingest.ha_tracker.replica_labels: {bad:?} is not a label name that can name a replica"
            ));
        }
        if self.update_timeout.is_zero() || self.failover_timeout <= self.update_timeout {
            return Some(format!(
                "ingest.ha_tracker.failover_timeout ({:?}) must be above update_timeout ({:?}) > 0",
                self.failover_timeout, self.update_timeout
            ));
        }
        None
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
    /// Refuse writes carrying log records with 429 (the sender retries) once the head holds
    /// this many bytes of them, counting the blocks a flush is writing: log shippers can send
    /// faster than a flush writes, and the head would otherwise grow until the flush catches
    /// up (3 GiB on the OTLP logs benchmark).
    pub hard_limit_log_bytes: usize,
    /// How long flushed data stays readable in the head after its files are committed, so a
    /// query process (which sees the commit only at its next `storage.refresh_interval`)
    /// never misses it in between. Keep it above the queriers' refresh interval.
    #[serde(with = "humantime_serde")]
    pub keep_flushed: Duration,
    /// A flush writes the head's log records and spans this many bytes at a time, a cluster's
    /// together when they fit, which bounds the flush's memory above the head. A cluster
    /// holding more gets several files per hour until compaction merges them. (Float samples
    /// are decoded from the head's chunks a file part at a time, so they need no such bound.)
    pub flush_batch_bytes: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(30 * 60),
            max_samples: 50_000_000,
            max_log_bytes: 256 << 20,
            hard_limit_samples: 150_000_000,
            hard_limit_log_bytes: 512 << 20,
            keep_flushed: Duration::from_secs(30),
            flush_batch_bytes: 64 << 20,
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
    /// Most attributes (resource, scope and record together) one log record may carry; also
    /// one span (resource, scope, span, event and link attributes together).
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

/// `[ingest.logs]`: the labels Loki 3's distributor derives for every log record (Loki's
/// `discover_service_name` and `discover_log_levels` limits, with Loki's defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// A stream with no `service_name` label gets the value of the first of these stream labels
    /// it has, else `unknown_service`; empty turns this off.
    pub discover_service_name: Vec<String>,
    /// Give every record a `detected_level` structured-metadata field (from a level label or
    /// field, the OTLP severity, or the line).
    pub discover_log_levels: bool,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            discover_service_name: [
                "service",
                "app",
                "application",
                "app_name",
                "name",
                "app_kubernetes_io_name",
                "container",
                "container_name",
                "k8s_container_name",
                "component",
                "workload",
                "job",
                "k8s_job_name",
            ]
            .map(String::from)
            .to_vec(),
            discover_log_levels: true,
        }
    }
}

/// Per-cluster limits: global defaults, and overrides for the clusters a glob matches. Every
/// limit is off at 0. See `crate::quota` for what each one counts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Samples per second per cluster (float samples, native histogram samples and exemplars),
    /// refilling a token bucket; a write beyond it is refused whole with 429.
    pub ingestion_rate: f64,
    /// The bucket's size in samples: how far a burst may exceed the rate (0 = 10 s of the rate).
    pub ingestion_burst: u64,
    /// Log line bytes per second per cluster (OTLP log bodies, Loki push lines).
    pub log_bytes_rate: f64,
    /// The log bucket's size in bytes (0 = 10 s of the rate).
    pub log_bytes_burst: u64,
    /// Span bytes per second per cluster (OTLP and Zipkin spans, as the head counts a span's
    /// size; Tempo's `ingestion_rate_limit_bytes`).
    pub span_bytes_rate: f64,
    /// The span bucket's size in bytes (0 = 10 s of the rate).
    pub span_bytes_burst: u64,
    /// Most active series (float and native histogram) per cluster: new series beyond it are refused, existing ones
    /// keep flowing.
    pub max_series_per_cluster: usize,
    /// Most active series (float and native histogram) per cluster and metric name.
    pub max_series_per_metric: usize,
    /// Samples and log records older than this (against the receiving clock) are refused.
    #[serde(with = "humantime_serde")]
    pub max_sample_age: Duration,
    /// Samples and log records further than this in the future are refused.
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
    /// Overrides by cluster glob (`*` any run, `?` one character): the first that matches a
    /// cluster wins, and the fields it leaves unset keep the values above.
    pub overrides: Vec<LimitsOverride>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            ingestion_rate: 0.0,
            ingestion_burst: 0,
            log_bytes_rate: 0.0,
            log_bytes_burst: 0,
            span_bytes_rate: 0.0,
            span_bytes_burst: 0,
            max_series_per_cluster: 0,
            max_series_per_metric: 0,
            max_sample_age: Duration::ZERO,
            // Mimir's creation grace period.
            max_future: Duration::from_secs(600),
            overrides: Vec::new(),
        }
    }
}

/// The limits of the clusters one glob matches; unset fields keep the defaults.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsOverride {
    /// The cluster glob (`prod-*`, `eu-?`).
    pub clusters: String,
    /// See [`LimitsConfig::ingestion_rate`].
    pub ingestion_rate: Option<f64>,
    /// See [`LimitsConfig::ingestion_burst`].
    pub ingestion_burst: Option<u64>,
    /// See [`LimitsConfig::log_bytes_rate`].
    pub log_bytes_rate: Option<f64>,
    /// See [`LimitsConfig::log_bytes_burst`].
    pub log_bytes_burst: Option<u64>,
    /// See [`LimitsConfig::span_bytes_rate`].
    pub span_bytes_rate: Option<f64>,
    /// See [`LimitsConfig::span_bytes_burst`].
    pub span_bytes_burst: Option<u64>,
    /// See [`LimitsConfig::max_series_per_cluster`].
    pub max_series_per_cluster: Option<usize>,
    /// See [`LimitsConfig::max_series_per_metric`].
    pub max_series_per_metric: Option<usize>,
    /// See [`LimitsConfig::max_sample_age`].
    #[serde(with = "humantime_serde")]
    pub max_sample_age: Option<Duration>,
    /// See [`LimitsConfig::max_future`].
    #[serde(with = "humantime_serde")]
    pub max_future: Option<Duration>,
}
