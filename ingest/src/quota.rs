//! Per-cluster limits (`[ingest.limits]`): what one cluster may send, so that one cluster over
//! its limits cannot take the ingester from the others.
//!
//! # What each limit counts, and how it answers
//! - **Ingestion rate** (`ingestion_rate`, `ingestion_burst`): float samples + native histogram
//!   samples + exemplars a cluster sends, through a token bucket per cluster; **log bytes**
//!   (`log_bytes_rate`, `log_bytes_burst`): the bytes of log lines (OTLP log bodies, Loki push
//!   lines); **span bytes** (`span_bytes_rate`, `span_bytes_burst`): the spans' sizes as the
//!   head counts them (`Span::size`). A write that would overdraw any of its clusters' buckets is refused **whole**
//!   (nothing of it is written, so a retry cannot duplicate) with a retryable 429 /
//!   `RESOURCE_EXHAUSTED` whose `Retry-After` is the seconds until its tokens are there. A write
//!   larger than the burst is admitted when the bucket is full and leaves it in debt. Metadata
//!   is not counted.
//! - **Active series** (`max_series_per_cluster`, `max_series_per_metric`): *active* means a float
//!   or native histogram series the head received since its last flush (the head's active part:
//!   flushed series are counted again when they next arrive). A new series beyond a cap is refused with its samples;
//!   series already active keep flowing. The rest of the request is stored, and the refusal goes
//!   through the protocol's partial-rejection answer (`http::error::refusal`: remote-write and
//!   Loki 400, OTLP `partial_success`).
//! - **Sample age** (`max_sample_age`, `max_future`): each float sample, histogram sample,
//!   exemplar and log record outside `[now - max_sample_age, now + max_future]` (the receiving
//!   clock) is refused alone, with a reason; a series left with nothing is refused. Spans are
//!   not held to an age: a trace's spans arrive as long after its start as it runs.
//!
//! Each refusal is counted in `tributary_ingest_limited_total{cluster, limit}`.
//!
//! # Replay
//! Replay applies no limit: it restores exactly what was acknowledged. What a limit refused of an
//! acknowledged write ([`Refused`]: the time windows that refused something, the series a cap
//! refused) is kept in its WAL record (`record.rs`, settings tag 4), and replay drops exactly
//! that through the same `restrict` step, while replayed series fill the active-series counts
//! again.

mod bucket;
mod restrict;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tributary_storage::scope::glob;
use tributary_storage::types::SeriesId;
use tributary_storage::types::SeriesIdSet;

use self::bucket::Bucket;
pub(crate) use self::restrict::{LabelsOf, Replayed, Rules, Tally, Usage, restrict, usage};
use crate::config::LimitsConfig;
use crate::error::Error;

/// What the per-cluster limits refused of one acknowledged write, as its WAL record keeps it so
/// replay drops exactly the same and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    /// Per cluster that had an item refused by age: the window `[lo, hi]` (ms) it was held to.
    pub windows: Vec<(String, i64, i64)>,
    /// Float and native histogram series refused whole by a series cap ([`SeriesId`] values).
    pub series: Vec<u64>,
}

impl Refused {
    /// True when no limit refused anything.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty() && self.series.is_empty()
    }
}

/// The quota clock: monotonic time for the buckets, wall time for sample age.
pub(crate) trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic time since an arbitrary start.
    fn elapsed(&self) -> Duration;
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The process's clocks.
#[derive(Debug)]
pub(crate) struct SystemClock(Instant);

impl SystemClock {
    pub(crate) fn new() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// One cluster's limits, resolved from the defaults and the first matching override; 0 is off.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ClusterLimits {
    pub(crate) ingestion_rate: f64,
    pub(crate) ingestion_burst: f64,
    pub(crate) log_bytes_rate: f64,
    pub(crate) log_bytes_burst: f64,
    pub(crate) span_bytes_rate: f64,
    pub(crate) span_bytes_burst: f64,
    pub(crate) max_series_per_cluster: usize,
    pub(crate) max_series_per_metric: usize,
    pub(crate) max_sample_age: Duration,
    pub(crate) max_future: Duration,
}

/// The burst of a rate whose burst is unset: ten seconds of it.
fn burst(rate: f64, burst: u64) -> f64 {
    if burst == 0 { rate * 10.0 } else { burst as f64 }
}

impl ClusterLimits {
    /// The limits of `cluster`.
    pub(crate) fn resolve(cfg: &LimitsConfig, cluster: &str) -> Self {
        let o = cfg.overrides.iter().find(|o| glob(&o.clusters, cluster));
        let rate = o.and_then(|o| o.ingestion_rate).unwrap_or(cfg.ingestion_rate);
        let log_rate = o.and_then(|o| o.log_bytes_rate).unwrap_or(cfg.log_bytes_rate);
        let span_rate = o.and_then(|o| o.span_bytes_rate).unwrap_or(cfg.span_bytes_rate);
        Self {
            ingestion_rate: rate,
            ingestion_burst: burst(rate, o.and_then(|o| o.ingestion_burst).unwrap_or(cfg.ingestion_burst)),
            log_bytes_rate: log_rate,
            log_bytes_burst: burst(
                log_rate,
                o.and_then(|o| o.log_bytes_burst).unwrap_or(cfg.log_bytes_burst),
            ),
            span_bytes_rate: span_rate,
            span_bytes_burst: burst(
                span_rate,
                o.and_then(|o| o.span_bytes_burst).unwrap_or(cfg.span_bytes_burst),
            ),
            max_series_per_cluster: o
                .and_then(|o| o.max_series_per_cluster)
                .unwrap_or(cfg.max_series_per_cluster),
            max_series_per_metric: o
                .and_then(|o| o.max_series_per_metric)
                .unwrap_or(cfg.max_series_per_metric),
            max_sample_age: o.and_then(|o| o.max_sample_age).unwrap_or(cfg.max_sample_age),
            max_future: o.and_then(|o| o.max_future).unwrap_or(cfg.max_future),
        }
    }

    /// Each rate the cluster is held to, in [`RATES`] order: (rate, burst).
    fn rates(&self) -> [(f64, f64); 3] {
        [
            (self.ingestion_rate, self.ingestion_burst),
            (self.log_bytes_rate, self.log_bytes_burst),
            (self.span_bytes_rate, self.span_bytes_burst),
        ]
    }

    fn caps_series(&self) -> bool {
        self.max_series_per_cluster > 0 || self.max_series_per_metric > 0
    }

    /// The accepted window `[lo, hi]` in ms at wall time `now`.
    fn window(&self, now: i64) -> (i64, i64) {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let lo = if self.max_sample_age.is_zero() {
            i64::MIN
        } else {
            now.saturating_sub(ms(self.max_sample_age))
        };
        let hi = if self.max_future.is_zero() {
            i64::MAX
        } else {
            now.saturating_add(ms(self.max_future))
        };
        (lo, hi)
    }
}

/// The active series of one cluster since the last flush.
#[derive(Debug, Default)]
struct Active {
    ids: SeriesIdSet,
    by_metric: HashMap<String, usize>,
}

/// The rate limits, in the order of [`ClusterLimits::rates`] and [`ClusterQuota::buckets`]:
/// the option (the `limit` label) and the unit a write is counted in.
const RATES: [(&str, &str); 3] = [
    ("ingestion_rate", "samples"),
    ("log_bytes_rate", "bytes"),
    ("span_bytes_rate", "span bytes"),
];

/// One cluster's state.
#[derive(Debug)]
struct ClusterQuota {
    limits: ClusterLimits,
    /// A token bucket per rate, in [`RATES`] order.
    buckets: [Mutex<Bucket>; 3],
    active: Mutex<Active>,
}

/// Every cluster's limits and state. One per ingester.
#[derive(Debug)]
pub(crate) struct Quotas {
    cfg: LimitsConfig,
    clock: Arc<dyn Clock>,
    clusters: Mutex<HashMap<String, Arc<ClusterQuota>>>,
    /// Whether any cluster has a rate limit (else usage is not even counted).
    any_rate: bool,
    /// Whether any cluster has a series cap (else series are not tracked).
    any_cap: bool,
    /// The narrowest sample window any cluster may have, relative to now: a write whose every
    /// item is inside it needs no per-cluster window check.
    narrowest: (Duration, Duration),
}

/// A limit a write hit: its name (the `limit` label) and the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) cluster: String,
    pub(crate) limit: &'static str,
    pub(crate) count: u64,
}

impl Quotas {
    pub(crate) fn new(cfg: &LimitsConfig, clock: Arc<dyn Clock>) -> Self {
        // Off (0) is the widest; the narrowest window is the smallest bound anyone has.
        let narrowest = |default: Duration, overrides: &mut dyn Iterator<Item = Option<Duration>>| {
            std::iter::once(default)
                .chain(overrides.flatten())
                .filter(|d| !d.is_zero())
                .min()
                .unwrap_or(Duration::ZERO)
        };
        let on = |r: Option<f64>| r.is_some_and(|r| r > 0.0);
        let any_rate = cfg.ingestion_rate > 0.0
            || cfg.log_bytes_rate > 0.0
            || cfg.span_bytes_rate > 0.0
            || cfg
                .overrides
                .iter()
                .any(|o| on(o.ingestion_rate) || on(o.log_bytes_rate) || on(o.span_bytes_rate));
        let any_cap = cfg.max_series_per_cluster > 0
            || cfg.max_series_per_metric > 0
            || cfg.overrides.iter().any(|o| {
                o.max_series_per_cluster.is_some_and(|n| n > 0) || o.max_series_per_metric.is_some_and(|n| n > 0)
            });
        Self {
            narrowest: (
                narrowest(cfg.max_sample_age, &mut cfg.overrides.iter().map(|o| o.max_sample_age)),
                narrowest(cfg.max_future, &mut cfg.overrides.iter().map(|o| o.max_future)),
            ),
            cfg: cfg.clone(),
            clock,
            clusters: Mutex::new(HashMap::new()),
            any_rate,
            any_cap,
        }
    }

    fn cluster(&self, name: &str) -> Arc<ClusterQuota> {
        let mut map = self.clusters.lock();
        if let Some(q) = map.get(name) {
            return q.clone();
        }
        let limits = ClusterLimits::resolve(&self.cfg, name);
        let now = self.clock.elapsed();
        let q = Arc::new(ClusterQuota {
            buckets: limits
                .rates()
                .map(|(rate, burst)| Mutex::new(Bucket::new(rate, burst, now))),
            limits,
            active: Mutex::new(Active::default()),
        });
        map.insert(name.to_string(), q.clone());
        q
    }

    /// Whether [`Quotas::admit`] needs the write's usage.
    pub(crate) fn counts_usage(&self) -> bool {
        self.any_rate
    }

    /// Takes each cluster's tokens for a write, or refuses it whole: `Err` names the limit and
    /// the cluster and says when to retry; nothing was taken then.
    pub(crate) fn admit(&self, usage: &Usage) -> Result<(), Box<(Error, Hit)>> {
        let now = self.clock.elapsed();
        // What was taken, to give back when a later cluster or rate refuses the write.
        let mut taken: Vec<(Arc<ClusterQuota>, usize, f64)> = Vec::new();
        for (cluster, u) in &usage.clusters {
            let q = self.cluster(cluster);
            let rates = q.limits.rates();
            for (i, n) in u.amounts().into_iter().enumerate() {
                let (rate, burst) = rates[i];
                if rate <= 0.0 || n == 0 {
                    continue;
                }
                let wait = match q.buckets[i].lock().take(n as f64, now) {
                    Ok(()) => {
                        taken.push((q.clone(), i, n as f64));
                        continue;
                    }
                    Err(wait) => wait,
                };
                for (q, i, n) in &taken {
                    q.buckets[*i].lock().refund(*n);
                }
                let (limit, unit) = RATES[i];
                let hit = Hit {
                    cluster: cluster.clone(),
                    limit,
                    count: 1,
                };
                return Err(Box::new((
                    Error::RateLimited {
                        message: format!(
                            "cluster {cluster:?} is over its {limit} limit ({rate} {unit}/s, burst {burst}): this write \
                             of {n} {unit} was refused whole; retry after the Retry-After delay"
                        ),
                        retry_after: wait,
                    },
                    hit,
                )));
            }
        }
        Ok(())
    }

    /// The live write's rules at this moment, for [`restrict`].
    pub(crate) fn live(&self) -> Live<'_> {
        let now = self.clock.now_ms();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let (age, future) = self.narrowest;
        Live {
            quotas: self,
            now,
            narrowest: (
                if age.is_zero() {
                    i64::MIN
                } else {
                    now.saturating_sub(ms(age))
                },
                if future.is_zero() {
                    i64::MAX
                } else {
                    now.saturating_add(ms(future))
                },
            ),
            cache: HashMap::new(),
            refused: Refused::default(),
            hits: Vec::new(),
        }
    }

    /// Counts a replayed series as active (replay applies no limit).
    pub(crate) fn note_replayed(&self, cluster: &str, metric: &str, id: SeriesId) {
        if !self.any_cap {
            return;
        }
        let q = self.cluster(cluster);
        if q.limits.caps_series() {
            let mut a = q.active.lock();
            if a.ids.insert(id) {
                *a.by_metric.entry(metric.to_string()).or_default() += 1;
            }
        }
    }

    /// Forgets the active series: the head froze its active part (under the exclusive gate).
    pub(crate) fn reset_active(&self) {
        if !self.any_cap {
            return;
        }
        for q in self.clusters.lock().values() {
            *q.active.lock() = Active::default();
        }
    }

    /// Active series of `cluster` now (tests and gauges).
    #[cfg(test)]
    pub(crate) fn active(&self, cluster: &str) -> usize {
        self.cluster(cluster).active.lock().ids.len()
    }
}

/// The rules of one live write: each cluster's window at the write's wall time, and its series
/// caps; it remembers what it refused for the WAL record and the counters.
#[derive(Debug)]
pub(crate) struct Live<'q> {
    quotas: &'q Quotas,
    now: i64,
    narrowest: (i64, i64),
    cache: HashMap<String, Arc<ClusterQuota>>,
    pub(crate) refused: Refused,
    pub(crate) hits: Vec<Hit>,
}

impl Live<'_> {
    fn quota(&mut self, cluster: &str) -> Arc<ClusterQuota> {
        if let Some(q) = self.cache.get(cluster) {
            return q.clone();
        }
        let q = self.quotas.cluster(cluster);
        self.cache.insert(cluster.to_string(), q.clone());
        q
    }

    fn hit(&mut self, cluster: &str, limit: &'static str, n: u64) {
        match self.hits.iter_mut().find(|h| h.cluster == cluster && h.limit == limit) {
            Some(h) => h.count += n,
            None => self.hits.push(Hit {
                cluster: cluster.to_string(),
                limit,
                count: n,
            }),
        }
    }
}

impl Rules for Live<'_> {
    fn narrowest(&self) -> (i64, i64) {
        self.narrowest
    }

    fn caps_series(&self) -> bool {
        self.quotas.any_cap
    }

    fn window(&mut self, cluster: &str) -> (i64, i64) {
        let q = self.quota(cluster);
        q.limits.window(self.now)
    }

    fn refused_by_window(&mut self, cluster: &str, (lo, hi): (i64, i64), too_old: bool, n: u64) {
        self.hit(cluster, if too_old { "max_sample_age" } else { "max_future" }, n);
        if !self.refused.windows.iter().any(|w| w.0 == cluster) {
            self.refused.windows.push((cluster.to_string(), lo, hi));
        }
    }

    fn admit_series(&mut self, cluster: &str, metric: &str, id: SeriesId) -> Result<(), String> {
        let q = self.quota(cluster);
        let l = &q.limits;
        if !l.caps_series() {
            return Ok(());
        }
        let mut a = q.active.lock();
        if a.ids.contains(&id) {
            return Ok(());
        }
        let per_metric = a.by_metric.get(metric).copied().unwrap_or(0);
        let refusal = if l.max_series_per_cluster > 0 && a.ids.len() >= l.max_series_per_cluster {
            Some((
                "max_series_per_cluster",
                format!(
                    "cluster {cluster:?} has {} active series, its max_series_per_cluster limit",
                    a.ids.len()
                ),
            ))
        } else if l.max_series_per_metric > 0 && per_metric >= l.max_series_per_metric {
            Some((
                "max_series_per_metric",
                format!(
                    "cluster {cluster:?} has {per_metric} active series of metric {metric:?}, its max_series_per_metric limit"
                ),
            ))
        } else {
            None
        };
        if let Some((limit, reason)) = refusal {
            drop(a);
            self.hit(cluster, limit, 1);
            self.refused.series.push(id.0);
            return Err(format!("{reason}: new series refused, existing series still accepted"));
        }
        a.ids.insert(id);
        *a.by_metric.entry(metric.to_string()).or_default() += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
