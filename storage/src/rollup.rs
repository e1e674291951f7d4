//! Rollups: per-series summaries of fixed time buckets (5 minutes, 1 hour, 1 day), from which the
//! engine computes `rate`, `increase` and the `*_over_time` aggregations of long windows
//! without reading every sample.
//!
//! # The bucket convention (a contract: the Parquet tables and the engine depend on it)
//!
//! A bucket of resolution `res` is **labelled by its end** `b` (a multiple of `res` since the
//! Unix epoch) and holds the samples with `b - res < timestamp <= b`: left-open, right-closed,
//! exactly like PromQL's range windows `(t - range, t]`. So a window ending at a multiple `t`
//! of `res` whose range is a multiple of `res` is the union of the buckets labelled
//! `t - range + res, …, t`, and nothing else.
//!
//! A [`Bucket`] summarises the **non-stale** samples of one series in one bucket (Prometheus
//! staleness markers are not samples; any other NaN is). It may summarise only a *piece* of a
//! bucket: stored rollup rows never mix samples of two UTC days (a row of the bucket labelled
//! at midnight holds the samples before midnight; the sample exactly at midnight, which belongs
//! to the next day's raw file, is in the next day's row for the same label). Pieces of one
//! bucket hold disjoint, time-ordered samples, so [`Bucket::append`] combines them exactly:
//! counts and sums add, `min`/`max` combine, `first`/`last` come from the ends, and
//! `increase` adds the jump between the pieces (a drop being a counter reset).
//!
//! `increase` is Prometheus's counter-aware change: the sum over consecutive samples of
//! `cur - prev`, or of `cur` when `cur < prev` (a reset). Prometheus computes the same total as
//! `last - first + Σ prev at resets`; both are exact in floating point when values are
//! integers below 2^53 (event counters), and otherwise differ by rounding only.

use std::collections::HashMap;
use std::sync::Arc;

use crate::layout::{HOUR_MS, Table};
use crate::table::series::{Keyed, SeriesList};
use crate::types::{Labels, Sample, Series, SeriesId, TimeRange, TimestampMs, is_stale_nan};

/// Milliseconds in one UTC day.
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// A rollup resolution: the width of a bucket, and the table its rows are stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    /// 5-minute buckets, table `metrics_5m`.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// 1-hour buckets, table `metrics_1h`.
    #[serde(rename = "1h")]
    OneHour,
    /// 1-day buckets, table `metrics_1d`: a day's summary per series. Not a tier the engine
    /// picks by itself (a window cutting days would read up to two days of raw samples at its
    /// edges); it stands in for whole days of the 1-hour tier in reads of one window
    /// (`Source::select_window`), so a 30-day window reads 30 rows per series, not 720.
    #[serde(rename = "1d")]
    OneDay,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::FiveMinutes, Resolution::OneHour, Resolution::OneDay];

    /// The bucket width in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Resolution::FiveMinutes => 300_000,
            Resolution::OneHour => HOUR_MS,
            Resolution::OneDay => DAY_MS,
        }
    }

    /// Its name: `5m` or `1h` (configuration, the tier header, `/metrics`).
    pub fn name(self) -> &'static str {
        match self {
            Resolution::FiveMinutes => "5m",
            Resolution::OneHour => "1h",
            Resolution::OneDay => "1d",
        }
    }

    /// The table holding its rows.
    pub const fn table(self) -> Table {
        match self {
            Resolution::FiveMinutes => Table::Metrics5m,
            Resolution::OneHour => Table::Metrics1h,
            Resolution::OneDay => Table::Metrics1d,
        }
    }

    /// The label of the bucket holding a sample at `ts`: the first multiple of the width at or
    /// after `ts`.
    pub fn bucket_of(self, ts: TimestampMs) -> TimestampMs {
        let w = self.ms();
        ts.div_euclid(w)
            .saturating_add(i64::from(ts.rem_euclid(w) != 0))
            .saturating_mul(w)
    }

    /// True when `t` is a bucket boundary (a multiple of the width).
    pub fn aligned(self, t: TimestampMs) -> bool {
        t.rem_euclid(self.ms()) == 0
    }

    /// `range` widened to whole buckets: from just after a boundary to a boundary. An empty
    /// (inverted) range stays as it is.
    pub fn widen(self, range: TimeRange) -> TimeRange {
        if range.start > range.end {
            return range;
        }
        let first = self.bucket_of(range.start).saturating_sub(self.ms()).saturating_add(1);
        TimeRange::new(first, self.bucket_of(range.end))
    }

    /// The labels of the buckets whose samples all lie in `range` (whole buckets, as
    /// [`Resolution::widen`] makes them).
    pub(crate) fn labels_within(self, range: TimeRange) -> TimeRange {
        TimeRange::new(range.start.saturating_add(self.ms() - 1), range.end)
    }
}

/// The summary of the non-stale samples of one series in one bucket, or in a piece of one
/// (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// The bucket's label: its end (samples in `(timestamp - res, timestamp]`).
    pub timestamp: TimestampMs,
    /// Samples summarised (at least one).
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value; NaN only when every value is NaN (as `min_over_time`).
    pub min: f64,
    /// Largest value; NaN only when every value is NaN (as `max_over_time`).
    pub max: f64,
    /// Value of the first sample.
    pub first: f64,
    /// Value of the last sample.
    pub last: f64,
    /// Timestamp of the first sample.
    pub first_ts: TimestampMs,
    /// Timestamp of the last sample.
    pub last_ts: TimestampMs,
    /// Counter-aware increase from the first to the last sample (resets adjusted).
    pub increase: f64,
}

/// `min`/`max` as `*_over_time` fold them: NaN is replaced by anything, else `better` wins.
fn extreme(best: f64, v: f64, better: impl Fn(f64, f64) -> bool) -> f64 {
    if better(v, best) || best.is_nan() { v } else { best }
}

/// The counter-aware change from `prev` to `cur`: a drop is a reset, counting from zero.
pub fn counter_step(prev: f64, cur: f64) -> f64 {
    if cur < prev { cur } else { cur - prev }
}

impl Bucket {
    /// A piece of bucket `timestamp` holding one sample.
    pub fn of(timestamp: TimestampMs, s: Sample) -> Self {
        Self {
            timestamp,
            count: 1,
            sum: s.value,
            min: s.value,
            max: s.value,
            first: s.value,
            last: s.value,
            first_ts: s.timestamp,
            last_ts: s.timestamp,
            increase: 0.0,
        }
    }

    /// Adds a sample later than every sample summarised so far.
    pub fn push(&mut self, s: Sample) {
        self.count += 1;
        self.sum += s.value;
        self.min = extreme(self.min, s.value, |a, b| a < b);
        self.max = extreme(self.max, s.value, |a, b| a > b);
        self.increase += counter_step(self.last, s.value);
        self.last = s.value;
        self.last_ts = s.timestamp;
    }

    /// Adds a summary of samples all later than this one's (a later piece of the same bucket,
    /// or the next buckets of a window): exact for count, min, max, first, last and the
    /// timestamps; `sum` and `increase` add (so may round differently from a sample-by-sample
    /// sum).
    pub fn append(&mut self, later: &Bucket) {
        self.count += later.count;
        self.sum += later.sum;
        self.min = extreme(self.min, later.min, |a, b| a < b);
        self.max = extreme(self.max, later.max, |a, b| a > b);
        self.increase += counter_step(self.last, later.first) + later.increase;
        self.last = later.last;
        self.last_ts = later.last_ts;
        self.timestamp = self.timestamp.max(later.timestamp);
    }
}

/// Which fields of each [`Bucket`] a bucket read's caller uses: a hint
/// ([`crate::read::SelectRequest::bucket_fields`]) that lets a source leave columns of stored
/// rollups unread. Ignoring it is always correct.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BucketFields {
    /// Every field.
    #[default]
    All,
    /// `count`, `first`, `last`, `first_ts`, `last_ts` and `increase`: what `rate` and
    /// `increase` read. `sum`, `min` and `max` may then be NaN. A 30-day range query at a 1 h
    /// step reads every hourly row of its range, so three columns fewer is a tenth of its work.
    Change,
}

/// Sorts `buckets` stably by `key` unless they are in order already. A stable sort allocates
/// scratch room for half the slice before it looks at the order, and read rows nearly always
/// come in order: a 30-day range read sorted 100,000 series of 720 rows each, per selector,
/// into fresh memory.
pub(crate) fn sort_buckets_by_key<K: Ord>(buckets: &mut [Bucket], key: impl Fn(&Bucket) -> K) {
    if !buckets.is_sorted_by_key(&key) {
        buckets.sort_by_key(key);
    }
}

/// A series and its buckets, sorted by label, one per label.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketSeries {
    /// The series.
    pub labels: Labels,
    /// Its buckets, sorted by [`Bucket::timestamp`], unique.
    pub buckets: Vec<Bucket>,
}

/// The buckets of `res` summarising `samples` (sorted by timestamp, unique), staleness markers
/// left out; one per bucket label holding a sample, in order.
pub fn buckets_of(samples: &[Sample], res: Resolution) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for s in samples.iter().filter(|s| !is_stale_nan(s.value)) {
        let b = res.bucket_of(s.timestamp);
        match out.last_mut() {
            Some(last) if last.timestamp == b => last.push(*s),
            _ => out.push(Bucket::of(b, *s)),
        }
    }
    out
}

/// The rows a rollup table stores for `series`: [`buckets_of`] each series, except that a
/// bucket whose samples lie in two UTC days is stored as two pieces (one per day's file).
/// Series with no non-stale sample give nothing.
pub fn rollup(series: &[Series], res: Resolution) -> Vec<BucketSeries> {
    series
        .iter()
        .filter_map(|s| {
            let mut buckets: Vec<Bucket> = Vec::new();
            for p in s.samples.iter().filter(|p| !is_stale_nan(p.value)) {
                let b = res.bucket_of(p.timestamp);
                match buckets.last_mut() {
                    Some(last) if last.timestamp == b && same_day(last.last_ts, p.timestamp) => last.push(*p),
                    _ => buckets.push(Bucket::of(b, *p)),
                }
            }
            (!buckets.is_empty()).then(|| BucketSeries {
                labels: s.labels.clone(),
                buckets,
            })
        })
        .collect()
}

/// Both timestamps in the same UTC day.
pub(crate) fn same_day(a: TimestampMs, b: TimestampMs) -> bool {
    a.div_euclid(DAY_MS) == b.div_euclid(DAY_MS)
}

/// A span of one cluster whose samples a source serves from stored rollups: raw samples of
/// that cluster in that span are not counted again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Covered {
    /// The `cluster` label value (`""`: series without one).
    pub cluster: String,
    /// The sample times covered (whole UTC days of rollups, or a raw file's span summarised
    /// for a window read).
    pub range: TimeRange,
}

/// What [`crate::read::Source::select_buckets`] answers: buckets summarised from stored
/// rollups where a source holds them, and raw samples elsewhere, so that a merge of sources
/// can merge raw samples before summarising them (a sample held by two sources, such as the
/// head and a flushed file, then counts once). [`BucketRead::into_series`] gives the buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketRead {
    /// The resolution asked for.
    pub resolution: Resolution,
    /// Pieces of buckets read from rollup tables (see [`Bucket`]); copies already removed.
    pub rolled: Vec<BucketSeries>,
    /// Where `rolled` stands for every sample: raw samples there are ignored.
    pub covered: Vec<Covered>,
    /// Raw samples of matching series (stale markers may be among them; they are dropped).
    pub raw: Vec<Series>,
}

impl BucketRead {
    /// An answer from raw samples alone.
    pub fn raw(resolution: Resolution, raw: Vec<Series>) -> Self {
        Self {
            resolution,
            rolled: Vec::new(),
            covered: Vec::new(),
            raw,
        }
    }

    /// The buckets: raw samples outside the covered spans summarised, then every piece of a
    /// bucket combined with the others in time order. A piece given twice (same series, label
    /// and first sample) counts once: the first given wins. Series in no particular order.
    pub fn into_series(self) -> Vec<BucketSeries> {
        let res = self.resolution;
        // Per cluster, its covered spans sorted by start: one lookup per series, a binary
        // search per sample.
        let mut covered: HashMap<&str, Vec<TimeRange>> = HashMap::new();
        for c in &self.covered {
            covered.entry(c.cluster.as_str()).or_default().push(c.range);
        }
        for spans in covered.values_mut() {
            spans.sort_unstable_by_key(|r| r.start);
            // Coalesced, so a sample is covered only by the last span starting at or before it.
            let mut merged: Vec<TimeRange> = Vec::with_capacity(spans.len());
            for r in spans.drain(..) {
                match merged.last_mut() {
                    Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
                    _ => merged.push(r),
                }
            }
            *spans = merged;
        }
        // Found again by id, then by labels (no label set hashed by the map or copied as a key).
        let mut pieces: SeriesList<Pieces> = SeriesList::default();
        let mut add = |labels: Labels, buckets: Vec<Bucket>| {
            let id = labels.series_id();
            match pieces.find(id, &labels) {
                Some(i) => pieces.items[i].buckets.extend(buckets),
                None => {
                    pieces.push(Pieces { id, labels, buckets });
                }
            }
        };
        for s in self.rolled {
            add(s.labels, s.buckets);
        }
        for mut s in self.raw {
            if let Some(spans) = covered.get(s.labels.get(crate::types::CLUSTER).unwrap_or("")) {
                s.samples.retain(|p| {
                    let i = spans.partition_point(|r| r.start <= p.timestamp);
                    !(i > 0 && spans[i - 1].contains(p.timestamp))
                });
            }
            let buckets = buckets_of(&s.samples, res);
            if !buckets.is_empty() {
                add(s.labels, buckets);
            }
        }
        pieces
            .items
            .into_iter()
            .filter_map(
                |Pieces {
                     labels, mut buckets, ..
                 }| {
                    // Stable: of two copies of one piece, the first given stays first.
                    sort_buckets_by_key(&mut buckets, |b| (b.timestamp, b.first_ts));
                    buckets
                        .dedup_by(|later, kept| later.timestamp == kept.timestamp && later.first_ts == kept.first_ts);
                    // Pieces of one bucket combined in place, in time order.
                    buckets.dedup_by(|later, kept| {
                        let same = later.timestamp == kept.timestamp;
                        if same {
                            kept.append(later);
                        }
                        same
                    });
                    (!buckets.is_empty()).then_some(BucketSeries { labels, buckets })
                },
            )
            .collect()
    }
}

/// One series' pieces in [`BucketRead::into_series`].
struct Pieces {
    id: SeriesId,
    labels: Labels,
    buckets: Vec<Bucket>,
}

impl Keyed for Pieces {
    fn id(&self) -> SeriesId {
        self.id
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
}

/// Bucket pieces gathered per series across files (rollup days, summarised raw files), in the
/// order they are added. Series are found by id, then by the labels the files share (one copy
/// per series across cached files), so most files' series are matched by pointer, not by
/// comparing label sets.
#[derive(Debug, Default)]
pub(crate) struct SeriesPieces {
    series: Vec<BucketSeries>,
    /// Per series id (a hash already: not hashed again), its places in `series`.
    index: HashMap<SeriesId, Vec<PieceSlot>, nohash_hasher::BuildNoHashHasher<SeriesId>>,
}

/// A series' place in [`SeriesPieces`], with the shared labels it was made from (`None`: a
/// series given to [`SeriesPieces::new`], compared by value).
type PieceSlot = (usize, Option<Arc<Labels>>);

impl SeriesPieces {
    /// Starts from `series` (from a read that shares no labels).
    pub(crate) fn new(series: Vec<BucketSeries>) -> Self {
        let mut out = Self::default();
        for (i, s) in series.iter().enumerate() {
            out.index.entry(s.labels.series_id()).or_default().push((i, None));
        }
        out.series = series;
        out
    }

    /// Appends `buckets` to series `id` with `labels`; a series not met before is added only
    /// with at least one bucket, with room for `room` of them.
    pub(crate) fn add(
        &mut self,
        id: SeriesId,
        labels: &Arc<Labels>,
        buckets: impl IntoIterator<Item = Bucket>,
        room: usize,
    ) {
        let slots = self.index.entry(id).or_default();
        let series = &mut self.series;
        let known = slots.iter().find(|(i, shared)| match shared {
            Some(shared) if Arc::ptr_eq(shared, labels) => true,
            _ => series[*i].labels == **labels,
        });
        match known {
            Some(&(i, _)) => series[i].buckets.extend(buckets),
            None => {
                let mut all = Vec::with_capacity(room);
                all.extend(buckets);
                if !all.is_empty() {
                    slots.push((series.len(), Some(labels.clone())));
                    series.push(BucketSeries {
                        labels: Labels::clone(labels),
                        buckets: all,
                    });
                }
            }
        }
    }

    /// The series, in the order first met.
    pub(crate) fn into_series(self) -> Vec<BucketSeries> {
        self.series
    }
}

#[cfg(test)]
mod tests;
