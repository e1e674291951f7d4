//! The fleet tracker: per cluster, what this ingester received and refused, for the fleet
//! status page and its JSON (`GET /api/v1/status/fleet`, served by the binary).
//!
//! Fed from the one write path ([`crate::Ingester::write`]), so every protocol counts the same
//! way. The contract:
//! - at most [`MAX_CLUSTERS`] clusters are tracked (the first ones seen since start); writes of
//!   later clusters are counted in [`FleetSnapshot::untracked_writes`] and, all together, in one
//!   overflow track (`/metrics` shows it as `cluster="_other"`), so a sender inventing cluster
//!   names cannot grow memory, the page or `/metrics` without bound;
//! - rates are rolling counters: items received in the last 60 one-second slots divided by 60
//!   (`per_second_1m`), and in the last 60 one-minute slots divided by 3,600 (`per_second_1h`),
//!   so a cluster seen for 10 s shows a 1 h rate 1/360 of its current one, as a Prometheus
//!   `increase(…[1h]) / 3600` without extrapolation would;
//! - rejected items are counted by reason (a fixed set of keys: an error class such as
//!   `invalid_input`, or `invalid_items` for items refused inside an accepted request), each with
//!   the latest reason text (cut to [`MAX_REASON_BYTES`]). A refused request is attributed to the
//!   cluster its header or token names, else to the cluster of its items, else to `""`;
//! - unauthenticated requests never reach it (they are refused before the write path).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use parking_lot::Mutex;
use serde::Serialize;

use crate::metrics::OTHER_CLUSTER;
use crate::record::Kind;

/// Clusters tracked at most (see the module docs).
pub const MAX_CLUSTERS: usize = 1000;
/// The longest reason text kept per (cluster, reason).
pub const MAX_REASON_BYTES: usize = 500;

/// Slots of each rolling window.
const SLOTS: usize = 60;

/// See the module docs.
#[derive(Debug, Default)]
pub struct Fleet {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    clusters: HashMap<String, Track>,
    untracked_writes: u64,
    /// Everything of the clusters beyond the cap, together.
    other: Track,
}

#[derive(Debug, Default)]
struct Track {
    last_sample_ms: Option<i64>,
    last_log_ms: Option<i64>,
    last_span_ms: Option<i64>,
    samples_total: u64,
    log_lines_total: u64,
    spans_total: u64,
    minute: Rolling<1>,
    hour: Rolling<60>,
    rejected: BTreeMap<&'static str, Rejected>,
    protocols: BTreeSet<&'static str>,
}

/// Counts per slot of `WIDTH` seconds, the last [`SLOTS`] of them.
#[derive(Debug)]
struct Rolling<const WIDTH: i64> {
    slots: [Slot; SLOTS],
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    index: i64,
    samples: u64,
    logs: u64,
    spans: u64,
}

impl<const WIDTH: i64> Default for Rolling<WIDTH> {
    fn default() -> Self {
        Self {
            slots: [Slot {
                index: i64::MIN,
                ..Slot::default()
            }; SLOTS],
        }
    }
}

impl<const WIDTH: i64> Rolling<WIDTH> {
    fn add(&mut self, now_ms: i64, n: Accepted) {
        let index = now_ms.div_euclid(1000 * WIDTH);
        let slot = &mut self.slots[index.rem_euclid(SLOTS as i64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        slot.samples += n.samples;
        slot.logs += n.log_lines;
        slot.spans += n.spans;
    }

    /// (samples/s, log lines/s, spans/s) over the window ending at `now_ms`.
    fn rates(&self, now_ms: i64) -> (f64, f64, f64) {
        let current = now_ms.div_euclid(1000 * WIDTH);
        let (mut s, mut l, mut p) = (0u64, 0u64, 0u64);
        for slot in &self.slots {
            if slot.index <= current && slot.index > current - SLOTS as i64 {
                s += slot.samples;
                l += slot.logs;
                p += slot.spans;
            }
        }
        let window = (SLOTS as i64 * WIDTH) as f64;
        (s as f64 / window, l as f64 / window, p as f64 / window)
    }
}

#[derive(Debug, Default)]
struct Rejected {
    items: u64,
    last_ms: i64,
    last_text: String,
}

/// One cluster's figures, as the JSON shows them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClusterStatus {
    /// The cluster name (`""`: a refused request that named none).
    pub cluster: String,
    /// When a sample (float, histogram sample, exemplar) was last accepted, ms since the epoch.
    pub last_sample_ms: Option<i64>,
    /// When a log line was last accepted, ms since the epoch.
    pub last_log_ms: Option<i64>,
    /// When a span was last accepted, ms since the epoch.
    pub last_span_ms: Option<i64>,
    /// Samples accepted since start.
    pub samples_total: u64,
    /// Log lines accepted since start.
    pub log_lines_total: u64,
    /// Spans accepted since start.
    pub spans_total: u64,
    /// Samples per second over the last minute.
    pub samples_per_second_1m: f64,
    /// Samples per second over the last hour.
    pub samples_per_second_1h: f64,
    /// Log lines per second over the last minute.
    pub log_lines_per_second_1m: f64,
    /// Log lines per second over the last hour.
    pub log_lines_per_second_1h: f64,
    /// Spans per second over the last minute.
    pub spans_per_second_1m: f64,
    /// Spans per second over the last hour.
    pub spans_per_second_1h: f64,
    /// Series in the head's active part (since the last flush); filled by the ingester.
    pub active_series: u64,
    /// Rejected items by reason.
    pub rejected: Vec<RejectedStatus>,
    /// Protocols seen: `remote_write_1`, `remote_write_2`, `otlp`, `loki`, `zipkin`.
    pub protocols: Vec<&'static str>,
}

/// Rejected items of one reason.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RejectedStatus {
    /// The reason key (see the module docs).
    pub reason: &'static str,
    /// Items refused (for a refused request: the request, counted as 1).
    pub items: u64,
    /// When, ms since the epoch.
    pub last_ms: i64,
    /// The latest reason text.
    pub last_text: String,
}

/// One cluster's running totals, as `/metrics` shows them (`crate::metrics::ClusterMetrics`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterTotals {
    /// The cluster, or [`OTHER_CLUSTER`] for every cluster beyond the cap.
    pub(crate) cluster: String,
    /// Samples accepted since start.
    pub(crate) samples: u64,
    /// Log lines accepted since start.
    pub(crate) log_lines: u64,
    /// Spans accepted since start.
    pub(crate) spans: u64,
    /// Items refused since start, by reason key.
    pub(crate) rejected: Vec<(&'static str, u64)>,
}

/// Every tracked cluster, sorted by name.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FleetSnapshot {
    /// The clusters.
    pub clusters: Vec<ClusterStatus>,
    /// [`MAX_CLUSTERS`].
    pub max_clusters: usize,
    /// Writes of clusters beyond the cap, not tracked.
    pub untracked_writes: u64,
}

/// The protocol name a write kind shows as.
pub fn protocol(kind: Kind) -> &'static str {
    match kind {
        Kind::PromRemoteWriteV1 => "remote_write_1",
        Kind::PromRemoteWriteV2 => "remote_write_2",
        Kind::OtlpMetrics | Kind::OtlpLogs | Kind::OtlpTraces => "otlp",
        Kind::LokiPushProtobuf | Kind::LokiPushJson => "loki",
        Kind::ZipkinJson => "zipkin",
    }
}

/// What one write of a cluster stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accepted {
    /// Float samples, histogram samples and exemplars.
    pub samples: u64,
    /// Log lines.
    pub log_lines: u64,
    /// Spans.
    pub spans: u64,
}

impl Fleet {
    /// `n` of `cluster` accepted over `protocol` at `now_ms`.
    pub fn accepted(&self, cluster: &str, protocol: &'static str, n: Accepted, now_ms: i64) {
        self.with(cluster, |t| {
            t.protocols.insert(protocol);
            for (count, last) in [
                (n.samples, &mut t.last_sample_ms),
                (n.log_lines, &mut t.last_log_ms),
                (n.spans, &mut t.last_span_ms),
            ] {
                if count > 0 {
                    *last = Some(now_ms);
                }
            }
            t.samples_total += n.samples;
            t.log_lines_total += n.log_lines;
            t.spans_total += n.spans;
            t.minute.add(now_ms, n);
            t.hour.add(now_ms, n);
        });
    }

    /// `items` of `cluster` refused for `reason` (a key) at `now_ms`, `text` saying why.
    pub fn rejected(
        &self,
        cluster: &str,
        protocol: &'static str,
        reason: &'static str,
        items: u64,
        text: &str,
        now_ms: i64,
    ) {
        self.with(cluster, |t| {
            t.protocols.insert(protocol);
            let r = t.rejected.entry(reason).or_default();
            r.items += items;
            r.last_ms = now_ms;
            r.last_text = cut(text, MAX_REASON_BYTES).to_string();
        });
    }

    fn with(&self, cluster: &str, f: impl FnOnce(&mut Track)) {
        let mut inner = self.inner.lock();
        if let Some(t) = inner.clusters.get_mut(cluster) {
            f(t);
        } else if inner.clusters.len() < MAX_CLUSTERS {
            f(inner.clusters.entry(cluster.to_string()).or_default());
        } else {
            inner.untracked_writes += 1;
            f(&mut inner.other);
        }
    }

    /// The running totals of every tracked cluster and, when clusters beyond the cap wrote,
    /// of all of those together under [`OTHER_CLUSTER`] (for `/metrics`, read at each scrape).
    pub(crate) fn totals(&self) -> Vec<ClusterTotals> {
        let inner = self.inner.lock();
        let totals = |cluster: &str, t: &Track| ClusterTotals {
            cluster: cluster.to_string(),
            samples: t.samples_total,
            log_lines: t.log_lines_total,
            spans: t.spans_total,
            rejected: t.rejected.iter().map(|(reason, r)| (*reason, r.items)).collect(),
        };
        let mut out: Vec<ClusterTotals> = inner.clusters.iter().map(|(c, t)| totals(c, t)).collect();
        if inner.untracked_writes > 0 {
            out.push(totals(OTHER_CLUSTER, &inner.other));
        }
        out
    }

    /// The figures at `now_ms`; `active_series` stays 0 (the ingester fills it from the head).
    pub fn snapshot(&self, now_ms: i64) -> FleetSnapshot {
        let inner = self.inner.lock();
        let mut clusters: Vec<ClusterStatus> = inner
            .clusters
            .iter()
            .map(|(name, t)| {
                let (s1m, l1m, p1m) = t.minute.rates(now_ms);
                let (s1h, l1h, p1h) = t.hour.rates(now_ms);
                ClusterStatus {
                    cluster: name.clone(),
                    last_sample_ms: t.last_sample_ms,
                    last_log_ms: t.last_log_ms,
                    last_span_ms: t.last_span_ms,
                    samples_total: t.samples_total,
                    log_lines_total: t.log_lines_total,
                    spans_total: t.spans_total,
                    samples_per_second_1m: s1m,
                    samples_per_second_1h: s1h,
                    log_lines_per_second_1m: l1m,
                    log_lines_per_second_1h: l1h,
                    spans_per_second_1m: p1m,
                    spans_per_second_1h: p1h,
                    active_series: 0,
                    rejected: t
                        .rejected
                        .iter()
                        .map(|(reason, r)| RejectedStatus {
                            reason,
                            items: r.items,
                            last_ms: r.last_ms,
                            last_text: r.last_text.clone(),
                        })
                        .collect(),
                    protocols: t.protocols.iter().copied().collect(),
                }
            })
            .collect();
        clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        FleetSnapshot {
            clusters,
            max_clusters: MAX_CLUSTERS,
            untracked_writes: inner.untracked_writes,
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
