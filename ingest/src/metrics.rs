//! Ingest's own counters, exposed on the server's `/metrics`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::fleet::{ClusterTotals, MAX_CLUSTERS};
use crate::ingester::Ingester;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) protocol: &'static str,
    pub(crate) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    pub(crate) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitedLabels {
    pub(crate) cluster: String,
    pub(crate) limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ClusterLabels {
    pub(crate) cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReplicaLabels {
    pub(crate) cluster: String,
    pub(crate) replica: String,
}

/// Distinct `cluster` values `tributary_ingest_limited_total` names; later clusters are counted
/// under [`OTHER_CLUSTER`], so a sender inventing cluster names cannot grow `/metrics` forever.
const MAX_LIMITED_CLUSTERS: usize = 1000;
/// The `cluster` label of clusters beyond [`MAX_LIMITED_CLUSTERS`] (and beyond the fleet
/// tracker's [`MAX_CLUSTERS`] in `tributary_cluster_*`).
pub(crate) const OTHER_CLUSTER: &str = "_other";

/// Counters the ingest path updates.
#[derive(Debug, Default, Clone)]
pub struct IngestMetrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) samples: Counter,
    pub(crate) rejected_samples: Counter,
    pub(crate) log_records: Counter,
    pub(crate) rejected_log_records: Counter,
    pub(crate) spans: Counter,
    pub(crate) rejected_spans: Counter,
    pub(crate) flushes: Family<ResultLabels, Counter>,
    pub(crate) flushed_samples: Counter,
    pub(crate) head_samples: Gauge,
    pub(crate) head_series: Gauge,
    pub(crate) wal_fsyncs: Gauge,
    pub(crate) wal_bytes: Gauge,
    pub(crate) limited: Family<LimitedLabels, Counter>,
    limited_clusters: Arc<Mutex<HashSet<String>>>,
    ha_dropped: Family<ClusterLabels, Counter>,
    ha_failovers: Family<ClusterLabels, Counter>,
    ha_elected: Family<ReplicaLabels, Gauge>,
}

impl IngestMetrics {
    /// The `cluster` label value for `cluster`: itself, or [`OTHER_CLUSTER`] beyond the first
    /// [`MAX_LIMITED_CLUSTERS`] names.
    fn bounded(&self, cluster: &str) -> String {
        let mut seen = self.limited_clusters.lock();
        if seen.contains(cluster) {
            cluster.to_string()
        } else if seen.len() < MAX_LIMITED_CLUSTERS {
            seen.insert(cluster.to_string());
            cluster.to_string()
        } else {
            OTHER_CLUSTER.to_string()
        }
    }

    /// Counts `n` refusals by a per-cluster `limit` (see `crate::quota`).
    pub(crate) fn limited(&self, cluster: &str, limit: &'static str, n: u64) {
        self.limited
            .get_or_create(&LimitedLabels {
                cluster: self.bounded(cluster),
                limit,
            })
            .inc_by(n);
    }

    /// Counts `n` samples of a non-elected HA replica dropped (see `crate::ha_tracker`).
    pub(crate) fn ha_dropped(&self, cluster: &str, n: u64) {
        let cluster = self.bounded(cluster);
        self.ha_dropped.get_or_create(&ClusterLabels { cluster }).inc_by(n);
    }

    /// Counts a takeover of `cluster`'s election by another replica.
    pub(crate) fn ha_failover(&self, cluster: &str) {
        let cluster = self.bounded(cluster);
        self.ha_failovers.get_or_create(&ClusterLabels { cluster }).inc();
    }

    /// `cluster`'s elected replica changed (as this ingester last saw it).
    pub(crate) fn ha_elected(&self, cluster: &str, before: Option<&str>, after: Option<&str>) {
        let cluster = self.bounded(cluster);
        if let Some(b) = before {
            self.ha_elected.remove(&ReplicaLabels {
                cluster: cluster.clone(),
                replica: b.to_string(),
            });
        }
        if let Some(a) = after {
            self.ha_elected
                .get_or_create(&ReplicaLabels {
                    cluster,
                    replica: a.to_string(),
                })
                .set(1);
        }
    }

    /// Registers every metric under `tributary_ingest_*`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_ingest_requests",
            "Write requests by protocol and status",
            self.requests.clone(),
        );
        r.register("tributary_ingest_samples", "Samples acknowledged", self.samples.clone());
        r.register(
            "tributary_ingest_rejected_samples",
            "Samples rejected as invalid",
            self.rejected_samples.clone(),
        );
        r.register(
            "tributary_ingest_log_records",
            "Log records acknowledged",
            self.log_records.clone(),
        );
        r.register(
            "tributary_ingest_rejected_log_records",
            "Log records rejected as invalid",
            self.rejected_log_records.clone(),
        );
        r.register("tributary_ingest_spans", "Spans acknowledged", self.spans.clone());
        r.register(
            "tributary_ingest_rejected_spans",
            "Spans rejected as invalid",
            self.rejected_spans.clone(),
        );
        r.register(
            "tributary_ingest_limited",
            "Writes (rate limits), series or samples refused by a per-cluster limit, by cluster and limit",
            self.limited.clone(),
        );
        r.register(
            "tributary_ha_dropped_samples",
            "Samples, native histogram samples and exemplars of a non-elected HA replica dropped, by cluster",
            self.ha_dropped.clone(),
        );
        r.register(
            "tributary_ha_failovers",
            "Takeovers of a cluster's HA election by another replica, made by this ingester",
            self.ha_failovers.clone(),
        );
        r.register(
            "tributary_ha_elected_replica",
            "1 for each cluster's elected HA replica, as this ingester last saw it",
            self.ha_elected.clone(),
        );
        r.register(
            "tributary_flushes",
            "Head flushes to Parquet by result",
            self.flushes.clone(),
        );
        r.register(
            "tributary_flushed_samples",
            "Samples written to Parquet",
            self.flushed_samples.clone(),
        );
        r.register(
            "tributary_head_samples",
            "Samples in the head's active part",
            self.head_samples.clone(),
        );
        r.register(
            "tributary_head_series",
            "Series in the head's active part",
            self.head_series.clone(),
        );
        r.register(
            "tributary_wal_fsyncs",
            "fdatasync calls of the write-ahead log",
            self.wal_fsyncs.clone(),
        );
        r.register(
            "tributary_wal_bytes",
            "Bytes appended to the write-ahead log",
            self.wal_bytes.clone(),
        );
    }
}

/// `tributary_cluster_*`: per cluster, active series (the head's active part) and what was
/// accepted and refused since start, read at each scrape from the fleet tracker, the one place
/// the write path counts per cluster (so the hot path pays nothing more for them). Bounded like
/// the tracker: at most [`MAX_CLUSTERS`] names, the rest summed under [`OTHER_CLUSTER`].
pub(crate) struct ClusterMetrics(pub(crate) Weak<Ingester>);

impl std::fmt::Debug for ClusterMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterMetrics")
    }
}

impl Collector for ClusterMetrics {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match self.0.upgrade() {
            Some(ing) => {
                let (totals, series) = ing.cluster_figures();
                encode_clusters(encoder, &totals, series)
            }
            None => Ok(()),
        }
    }
}

/// Writes the `tributary_cluster_*` families from the tracker's `totals` and the head's active
/// `series` by cluster. A cluster in the head but not in the tracker (its series were replayed
/// from the WAL; it has not written since start) gets a name while fewer than [`MAX_CLUSTERS`]
/// are reported, else counts under [`OTHER_CLUSTER`].
fn encode_clusters(
    mut encoder: DescriptorEncoder,
    totals: &[ClusterTotals],
    series: HashMap<String, u64>,
) -> Result<(), std::fmt::Error> {
    let mut names: BTreeSet<&str> = totals.iter().map(|t| t.cluster.as_str()).collect();
    let mut active: HashMap<&str, u64> = HashMap::new();
    let mut in_head: Vec<(&String, &u64)> = series.iter().collect();
    in_head.sort();
    for (cluster, n) in in_head {
        let name = if names.contains(cluster.as_str()) || names.len() < MAX_CLUSTERS {
            names.insert(cluster);
            cluster.as_str()
        } else {
            OTHER_CLUSTER
        };
        *active.entry(name).or_default() += n;
    }
    let mut gauge = encoder.encode_descriptor(
        "tributary_cluster_active_series",
        "Series in the head's active part (since the last flush), by cluster",
        None,
        MetricType::Gauge,
    )?;
    for name in names
        .iter()
        .copied()
        .chain(active.contains_key(OTHER_CLUSTER).then_some(OTHER_CLUSTER))
    {
        let n = active.get(name).copied().unwrap_or(0);
        ConstGauge::new(n as i64).encode(gauge.encode_family(&[("cluster", name)])?)?;
    }
    let mut samples = encoder.encode_descriptor(
        "tributary_cluster_samples",
        "Samples (floats, histogram samples, exemplars) accepted since start, by cluster",
        None,
        MetricType::Counter,
    )?;
    for t in totals {
        ConstCounter::new(t.samples).encode(samples.encode_family(&[("cluster", t.cluster.as_str())])?)?;
    }
    let mut logs = encoder.encode_descriptor(
        "tributary_cluster_log_records",
        "Log records accepted since start, by cluster",
        None,
        MetricType::Counter,
    )?;
    for t in totals {
        ConstCounter::new(t.log_lines).encode(logs.encode_family(&[("cluster", t.cluster.as_str())])?)?;
    }
    let mut spans = encoder.encode_descriptor(
        "tributary_cluster_spans",
        "Spans accepted since start, by cluster",
        None,
        MetricType::Counter,
    )?;
    for t in totals {
        ConstCounter::new(t.spans).encode(spans.encode_family(&[("cluster", t.cluster.as_str())])?)?;
    }
    let mut rejected = encoder.encode_descriptor(
        "tributary_cluster_rejected",
        "Items refused since start by cluster and reason (a refused request counts 1; invalid_items: items refused inside an accepted request)",
        None,
        MetricType::Counter,
    )?;
    for t in totals {
        for (reason, n) in &t.rejected {
            let labels = [("cluster", t.cluster.as_str()), ("reason", reason)];
            ConstCounter::new(*n).encode(rejected.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
