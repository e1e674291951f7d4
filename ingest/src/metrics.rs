//! Ingest's own counters, exposed on the server's `/metrics`.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

/// Distinct `cluster` values `tributary_ingest_limited_total` names; later clusters are counted
/// under [`OTHER_CLUSTER`], so a sender inventing cluster names cannot grow `/metrics` forever.
const MAX_LIMITED_CLUSTERS: usize = 1000;
/// The `cluster` label of clusters beyond [`MAX_LIMITED_CLUSTERS`].
pub(crate) const OTHER_CLUSTER: &str = "_other";

/// Counters the ingest path updates.
#[derive(Debug, Default, Clone)]
pub struct IngestMetrics {
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) samples: Counter,
    pub(crate) rejected_samples: Counter,
    pub(crate) log_records: Counter,
    pub(crate) rejected_log_records: Counter,
    pub(crate) flushes: Family<ResultLabels, Counter>,
    pub(crate) flushed_samples: Counter,
    pub(crate) head_samples: Gauge,
    pub(crate) head_series: Gauge,
    pub(crate) wal_fsyncs: Gauge,
    pub(crate) wal_bytes: Gauge,
    pub(crate) limited: Family<LimitedLabels, Counter>,
    limited_clusters: Arc<Mutex<HashSet<String>>>,
}

impl IngestMetrics {
    /// Counts `n` refusals by a per-cluster `limit` (see `crate::quota`).
    pub(crate) fn limited(&self, cluster: &str, limit: &'static str, n: u64) {
        let cluster = {
            let mut seen = self.limited_clusters.lock();
            if seen.contains(cluster) {
                cluster
            } else if seen.len() < MAX_LIMITED_CLUSTERS {
                seen.insert(cluster.to_string());
                cluster
            } else {
                OTHER_CLUSTER
            }
        };
        self.limited
            .get_or_create(&LimitedLabels {
                cluster: cluster.to_string(),
                limit,
            })
            .inc_by(n);
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
        r.register(
            "tributary_ingest_limited",
            "Writes (rate limits), series or samples refused by a per-cluster limit, by cluster and limit",
            self.limited.clone(),
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
