//! The range-query results cache (`[query.results_cache]`), as Mimir's and Thanos's query
//! frontends keep one: a dashboard refreshing a 30-day panel every minute asks for the same
//! steps again, and all but the newest are settled.
//!
//! # The contract
//! - A range query's answer is the same at every step whatever the query's start and end, so
//!   the steps of an earlier answer can stand for the same steps of a later query: same text,
//!   step and phase (`start mod step`), and the same read scope. Queries whose answer at a
//!   step depends on the range — `@` (`start()`, `end()`), `step()` and `range()` duration
//!   expressions — are never cached.
//! - Only steps older than `freshness` (default 10 minutes) are kept: later ones may still
//!   receive samples (agents retry, ingesters replay). A sample written later than that for an
//!   older time — a backfill — is seen once the entry expires (`ttl`), as in Mimir. So are
//!   files retention dropped.
//! - An answer with a warning (an ingester not answering, a PromQL warning) or holding native
//!   histograms is not kept.
//! - A lookup uses an entry only when the entry starts at or before the query's start; the
//!   query then evaluates only the steps after the entry's end, and the entry is replaced by
//!   the merged answer's settled steps. Entries are evicted oldest first past `max_bytes`.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tributary_storage::types::Series;

use super::{Annotations, Tier, Value};

/// The `[query.results_cache]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsCacheConfig {
    /// The most bytes of answers kept (labels and 16 bytes a point); `0` turns the cache off.
    /// Default `0` (off).
    pub max_bytes: usize,
    /// Steps newer than this are computed every time, never kept. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub freshness: Duration,
    /// How long an entry serves before it is computed again (the bound on how stale a backfill
    /// leaves it). Default `1h`.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for ResultsCacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 0,
            freshness: Duration::from_secs(600),
            ttl: Duration::from_secs(3600),
        }
    }
}

/// What identifies answers whose steps can stand for each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    query: String,
    step_ms: i64,
    phase_ms: i64,
    scope: String,
}

impl Key {
    /// The key of a range query, or `None` when its answer depends on its range.
    pub(crate) fn of(query: &str, start_ms: i64, step_ms: i64, scope: &str) -> Option<Self> {
        let depends_on_range = query.contains('@') || query.contains("range(") || query.contains("step(");
        (!depends_on_range).then(|| Key {
            query: query.to_string(),
            step_ms,
            phase_ms: start_ms.rem_euclid(step_ms),
            scope: scope.to_string(),
        })
    }
}

/// The settled steps `[from, to]` of one answer.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) series: Vec<Series>,
    pub(crate) annotations: Annotations,
    pub(crate) tier: Tier,
    bytes: usize,
    stored: Instant,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct ResultsCache {
    cfg: ResultsCacheConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl ResultsCache {
    /// A cache under `cfg`, or `None` when it is off.
    pub(crate) fn new(cfg: &ResultsCacheConfig) -> Option<Self> {
        (cfg.max_bytes > 0).then(|| Self {
            cfg: cfg.clone(),
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The entry for `key` usable by a query starting at `start`: starting at or before it,
    /// reaching it, not expired.
    pub(crate) fn get(&self, key: &Key, start: i64) -> Option<Entry> {
        let mut entries = self.entries.lock();
        let e = entries.get(key)?;
        if e.stored.elapsed() > self.cfg.ttl {
            entries.remove(key);
            return None;
        }
        (e.from <= start && e.to >= start).then(|| e.clone())
    }

    /// The last step at or before `end` old enough to keep (steps are `start + k * step`), if
    /// any is at or after `start`.
    pub(crate) fn settled_until(&self, start: i64, end: i64, step: i64) -> Option<i64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let limit = end.min(now - self.cfg.freshness.as_millis() as i64);
        (limit >= start).then(|| start + (limit - start) / step * step)
    }

    /// Keeps the steps `[from, to]` of an answer (a matrix without warnings).
    pub(crate) fn put(&self, key: Key, from: i64, to: i64, value: &Value, annotations: &Annotations, tier: Tier) {
        let Value::Matrix(all) = value else { return };
        if !annotations.warnings.is_empty() {
            return;
        }
        let series = slice(all, from, to);
        let bytes = series
            .iter()
            .map(|s| 64 + s.samples.len() * 16 + s.labels.heap_bytes())
            .sum::<usize>();
        if bytes > self.cfg.max_bytes {
            return;
        }
        let mut entries = self.entries.lock();
        entries.remove(&key);
        let mut held: usize = entries.values().map(|e| e.bytes).sum();
        while held + bytes > self.cfg.max_bytes {
            let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.stored).map(|(k, _)| k.clone()) else {
                break;
            };
            held -= entries.remove(&oldest).map_or(0, |e| e.bytes);
        }
        entries.insert(
            key,
            Entry {
                from,
                to,
                series,
                annotations: annotations.clone(),
                tier,
                bytes,
                stored: Instant::now(),
            },
        );
    }
}

/// The points of `all` in `[from, to]`; series left without any dropped.
pub(crate) fn slice(all: &[Series], from: i64, to: i64) -> Vec<Series> {
    all.iter()
        .filter_map(|s| {
            let samples: Vec<_> = s
                .samples
                .iter()
                .filter(|p| p.timestamp >= from && p.timestamp <= to)
                .copied()
                .collect();
            (!samples.is_empty()).then(|| Series::new(s.labels.clone(), samples))
        })
        .collect()
}

/// `head` (earlier steps) and `tail` (later steps) as one matrix sorted by labels.
pub(crate) fn merge(head: Vec<Series>, tail: Vec<Series>) -> Vec<Series> {
    let mut by_labels: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
    for s in head.into_iter().chain(tail) {
        by_labels.entry(s.labels).or_default().extend(s.samples);
    }
    by_labels
        .into_iter()
        .map(|(labels, samples)| Series::new(labels, samples))
        .collect()
}

#[cfg(test)]
mod tests;
