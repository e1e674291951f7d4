//! The read contract: how the query engine reads series, whoever holds them.
//!
//! [`Source`] (series and samples), [`LogSource`] (log records) and [`TraceSource`] (spans, in
//! `read/spans.rs`) are each implemented by the
//! in-memory head (in `ingest`) and by the Parquet tables (here, `crate::source` and
//! `crate::table::logs`); the binary hands both to the query engine, which merges them. This
//! is the seam that keeps `query` from depending on `ingest`. The conformance suites in
//! `test_util` check every implementation against a reference.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

mod patterns;
mod scan;
mod spans;
mod volume;

pub(crate) use patterns::level_of;
pub use patterns::{
    LEVELS, PatternRequest, PatternSeries, PatternSum, Patterns, level_named, record_level, severity_level,
};
pub use scan::{SCAN_CHUNK, scan_logs};
pub use spans::{SPAN_MATCHER_NAMES, SpanFilter, SpanHead, SpanPredicate, SpanRequest, TraceSource, sort_spans};
pub use volume::{BucketVolume, StreamVolume, VolumeRequest, VolumeSum, volume_of_records};

use crate::Result;
use crate::rollup::{BucketFields, BucketRead, Resolution};
use crate::signals::{Exemplar, ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, TimestampNs};
use crate::types::{Labels, Matcher, Series, SeriesIdSet, TimeRange};
use crate::xor_chunk::ChunkedSeries;

/// What to read: every series that satisfies all `matchers` and has at least one sample in `range`.
#[derive(Clone, Debug)]
pub struct SelectRequest {
    /// All must match. An empty list selects every series (only label/series listings do that).
    pub matchers: Vec<Matcher>,
    /// Closed interval, milliseconds.
    pub range: TimeRange,
    /// When set, only matching series whose [`Labels::series_id`] is in the set: how the engine
    /// reads a selector too large to hold at once a part at a time. [`Source::select`] must
    /// honour it; listings may ignore it.
    pub only: Option<Arc<SeriesIdSet>>,
    /// A hint: the caller uses only each series' newest sample in `range` (the engine's
    /// instant selectors evaluated at one time: an instant query, a rule, `@`). A source may
    /// then answer a series with that sample alone, which the head does without decoding its
    /// chunks; it must still include that sample, so ignoring the hint is always correct, and a
    /// merge of sources keeps the newest of their answers.
    pub newest_only: bool,
    /// A hint for bucket reads ([`Source::select_buckets`], [`Source::select_window`]): the
    /// fields of each bucket the caller uses. With [`BucketFields::Change`] a source may answer
    /// NaN for `sum`, `min` and `max` (and skip reading them); other fields and the buckets
    /// answered are as without it, so ignoring the hint is always correct. Raw reads ignore it.
    pub bucket_fields: BucketFields,
}

impl SelectRequest {
    /// Every series matching `matchers` with samples in `range`.
    pub fn new(matchers: Vec<Matcher>, range: TimeRange) -> Self {
        Self {
            matchers,
            range,
            only: None,
            newest_only: false,
            bucket_fields: BucketFields::All,
        }
    }

    /// The same request, restricted to the series in `only`.
    pub fn only(mut self, only: Arc<SeriesIdSet>) -> Self {
        self.only = Some(only);
        self
    }

    /// Whether [`SelectRequest::only`] lets a series with these labels through.
    pub fn admits(&self, labels: &Labels) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&labels.series_id()))
    }
}

/// Packs `items` with their weights, in the order given, into consecutive parts weighing at most
/// `budget` each (an item heavier than the budget is a part of its own; no part is empty): how
/// large reads are cut into parts (series by samples, clusters by rollup rows) in the
/// compactor's rollups and the engine's reads in parts.
pub fn pack<T>(items: impl IntoIterator<Item = (T, usize)>, budget: usize) -> Vec<Vec<T>> {
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut filled = 0usize;
    for (item, weight) in items {
        match parts.last_mut() {
            Some(part) if filled == 0 || filled.saturating_add(weight) <= budget => part.push(item),
            _ => {
                parts.push(vec![item]);
                filled = 0;
            }
        }
        filled = filled.saturating_add(weight);
    }
    parts
}

/// The union of sorted, duplicate-free lists, itself sorted and duplicate-free: how listings
/// ([`Source::label_names`], [`Source::label_values`]) of several files, sources or selectors
/// combine. Merges pairwise (O(n log k) comparisons, no hashing); a single non-empty list is
/// returned as it is.
pub fn sorted_union<T: Ord>(lists: impl IntoIterator<Item = Vec<T>>) -> Vec<T> {
    let mut lists: Vec<Vec<T>> = lists.into_iter().filter(|l| !l.is_empty()).collect();
    while lists.len() > 1 {
        let mut next = Vec::with_capacity(lists.len().div_ceil(2));
        let mut pairs = lists.into_iter();
        while let Some(a) = pairs.next() {
            next.push(match pairs.next() {
                Some(b) => merge_unique(a, b),
                None => a,
            });
        }
        lists = next;
    }
    lists.pop().unwrap_or_default()
}

fn merge_unique<T: Ord>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    b.next();
                    a.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}

/// Sorts exemplars by (timestamp, value, labels) and keeps one of each (timestamp, value bits,
/// labels): the order and uniqueness [`Source::exemplars`] promises, used by every source.
pub fn sort_dedup_exemplars(exemplars: &mut Vec<Exemplar>) {
    exemplars.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then(a.value.total_cmp(&b.value))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    exemplars
        .dedup_by(|a, b| a.timestamp == b.timestamp && a.value.to_bits() == b.value.to_bits() && a.labels == b.labels);
}

/// One series of [`Source::series_samples`]: its labels and at most how many samples it holds
/// in the requested range.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSize {
    /// The series.
    pub labels: Labels,
    /// At most this many samples in the requested range.
    pub samples: usize,
}

impl SeriesSize {
    /// One size per label set, those of equal label sets folded with `combine` (a sum for
    /// sources that hold parts of a series, a maximum for answers that may repeat one); in no
    /// particular order.
    pub fn merge(sizes: impl IntoIterator<Item = SeriesSize>, combine: impl Fn(usize, usize) -> usize) -> Vec<Self> {
        let mut merged: HashMap<Labels, usize> = HashMap::new();
        for size in sizes {
            merged
                .entry(size.labels)
                .and_modify(|n| *n = combine(*n, size.samples))
                .or_insert(size.samples);
        }
        merged
            .into_iter()
            .map(|(labels, samples)| SeriesSize { labels, samples })
            .collect()
    }
}

/// What [`Source::select_within`] found: the count it made and, when that count was within the
/// budget, the series.
#[derive(Clone, Debug, PartialEq)]
pub struct Within {
    /// An upper bound of the samples [`Source::select`] returns, as [`Source::count_samples`]
    /// counts with the budget as its limit (so it may stop past the budget).
    pub counted: usize,
    /// [`Source::select`]'s answer when `counted` is at most the budget; `None` past it (the
    /// samples were not read).
    pub series: Option<Vec<Series>>,
}

impl Default for Within {
    /// A source with nothing to read: no sample counted, an empty answer.
    fn default() -> Self {
        Self {
            counted: 0,
            series: Some(Vec::new()),
        }
    }
}

impl Within {
    /// Answers to one `budget` (of several sources, or of a selector's alternatives) as one:
    /// their counts added, and their series joined by `join` only when every answer holds them
    /// and the added counts are still within the budget.
    pub fn join(answers: Vec<Within>, budget: usize, join: impl FnOnce(Vec<Vec<Series>>) -> Vec<Series>) -> Within {
        let counted = answers.iter().fold(0usize, |n, a| n.saturating_add(a.counted));
        let series = answers
            .into_iter()
            .map(|a| a.series)
            .collect::<Option<Vec<_>>>()
            .filter(|_| counted <= budget)
            .map(join);
        Within { counted, series }
    }
}

/// One `cluster` label value of [`Source::bucket_sizes`] (`""`: series without one) and at most
/// how many rows a bucket read of it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRows {
    /// The `cluster` label value.
    pub cluster: String,
    /// At most this many rows (stored bucket rows and raw samples).
    pub rows: usize,
}

impl ClusterRows {
    /// One entry per cluster, the rows of equal clusters added; sorted by cluster.
    pub fn sum(rows: impl IntoIterator<Item = (String, usize)>) -> Vec<Self> {
        Self::merge(rows, usize::saturating_add)
    }

    /// One entry per cluster, the rows of equal clusters folded with `combine` (a sum for
    /// sources that hold parts of a cluster, a maximum for reads of the same files); sorted by
    /// cluster.
    pub fn merge(
        rows: impl IntoIterator<Item = (String, usize)>,
        combine: impl Fn(usize, usize) -> usize,
    ) -> Vec<Self> {
        let mut per: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for (cluster, n) in rows {
            per.entry(cluster)
                .and_modify(|total| *total = combine(*total, n))
                .or_insert(n);
        }
        per.into_iter().map(|(cluster, rows)| Self { cluster, rows }).collect()
    }
}

/// A readable set of series: the head, the Parquet files, or a merge of them.
///
/// # Contract
/// Every implementation must satisfy, and the conformance suite in `test_util` checks:
/// - [`Source::select`] returns each matching series once, with only the samples whose timestamp
///   lies in `req.range`, sorted by timestamp, one sample per timestamp. Series with no sample
///   in range are left out. The order of series is unspecified. With
///   [`SelectRequest::newest_only`] it may return, per series, any sorted part of that answer
///   that keeps its newest sample (the same series either way).
/// - Sample values keep their exact bits: a staleness marker stays a staleness marker.
/// - [`Source::series`] returns the label sets `select` would return, without samples. An
///   implementation may answer from coarser metadata (e.g. a whole file's time span), so it may
///   include a series whose samples lie just outside `range`, never leave one out.
/// - Matchers follow Prometheus: a missing label matches as `""`; regexes are anchored.
/// - The same data gives the same answers from the head and from Parquet; merging sources
///   never returns a timestamp twice for one series.
#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Series with their samples in range.
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>>;

    /// The answer of [`Source::select`] (its matchers, range and `only`) as XOR chunks, from a
    /// source that holds its samples compressed (the head): the internal read API ships them
    /// as they are and the querier decodes them, instead of the source decoding and copying
    /// 16 bytes a sample ([`ChunkedSeries`] says what the chunks may hold). Each series once;
    /// [`ChunkedSeries::samples_in`] of `req.range` gives exactly `select`'s samples (the
    /// conformance suite checks it); a series whose chunks hold no sample in range may be
    /// left in. `None`, the default: this source holds no chunks; call `select`.
    async fn select_chunks(&self, req: &SelectRequest) -> Result<Option<Vec<ChunkedSeries>>> {
        let _ = req;
        Ok(None)
    }

    /// Label sets of matching series that have data in range (no samples read).
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>>;

    /// An upper bound of the samples [`Source::select`] would return, without building
    /// series: what the engine checks before it plans a read in parts. The bound may be loose
    /// while it is at most `limit` (a source holding fewer samples than `limit` in all may say
    /// so at once), and counting may stop as soon as it exceeds `limit`.
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        let _ = limit;
        Ok(self.series_samples(req).await?.iter().map(|s| s.samples).sum())
    }

    /// [`Source::count_samples`] with `budget` as its limit, then [`Source::select`] when the
    /// count is within `budget`: what the engine does before it reads a selector it could read
    /// in parts. One method so that a remote source (an ingester behind a querier) answers both
    /// in one round trip. An implementation must answer exactly what the two calls would: the
    /// default makes them; a merge of sources may read each of its sources within the budget
    /// and drop the answers when their counts add up past it (so it holds at most one budget's
    /// samples per source).
    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        let counted = self.count_samples(req, budget).await?;
        let series = if counted <= budget {
            Some(self.select(req).await?)
        } else {
            None
        };
        Ok(Within { counted, series })
    }

    /// The series [`Source::series`] lists, each once, with an upper bound of its samples in
    /// range (exact where cheap): what the engine plans a large read with. Sources that can
    /// count without reading samples override the default, which reads them.
    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        Ok(self
            .select(req)
            .await?
            .into_iter()
            .map(|s| SeriesSize {
                samples: s.samples.len(),
                labels: s.labels,
            })
            .collect())
    }

    /// Sorted, unique label names of matching series.
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        Ok(names_of(&self.series(req).await?))
    }

    /// Sorted, unique values of label `name` among matching series.
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        Ok(values_of(&self.series(req).await?, name))
    }

    /// Exemplars of the series matching any of `selectors` (each a list of matchers that must all
    /// match), with timestamps in `range`. Each series once, exemplars sorted by timestamp, one
    /// per (timestamp, value, labels). Sources that hold no exemplars answer empty.
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let _ = (selectors, range);
        Ok(Vec::new())
    }

    /// Native-histogram series matching `req` (its matchers, closed range and `only`), the
    /// float-sample contract of [`Source::select`] applied to histogram samples:
    /// - each matching series once, with only the samples whose timestamp lies in `req.range`,
    ///   sorted by timestamp, one sample per timestamp (for a timestamp written twice, the later
    ///   write wins); series with no sample in range are left out; series order unspecified;
    /// - every field of a sample kept exactly (schema, zero bucket, spans, absolute bucket
    ///   counts, custom bounds, reset hint);
    /// - the same data gives the same answer from the head and from Parquet, and merging
    ///   sources never returns a timestamp twice for one series.
    ///
    /// A series holds float samples or histogram samples at a given time, never both; the two
    /// reads are separate so that float-only queries pay nothing for histograms. Sources that
    /// hold no native histograms answer empty. `test_util::histogram_source_conformance`
    /// checks every implementation.
    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        let _ = req;
        Ok(Vec::new())
    }

    /// Metric metadata, optionally of one metric family only; each distinct (cluster, metric,
    /// type, help, unit) once. Sources that hold no metadata answer empty.
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let _ = metric;
        Ok(Vec::new())
    }

    /// The samples of the series matching `req` (matchers and `only`) in `req.range` widened to
    /// whole buckets of `resolution` ([`Resolution::widen`]), as material for buckets (see
    /// [`crate::rollup`] for the bucket convention): summaries read from stored rollups where
    /// the source holds them, with the spans they stand for, and raw samples elsewhere.
    /// [`BucketRead::into_series`] turns the answer into buckets.
    ///
    /// Contract (checked by `test_util::source_conformance` against the reference, which
    /// answers from raw samples):
    /// - `into_series` gives, per matching series with a non-stale sample in the widened range,
    ///   the buckets of those samples: `count`, `min`, `max`, `first`, `last`, `first_ts`,
    ///   `last_ts` exactly as computed from the raw samples, `sum` and `increase` within
    ///   floating-point summation order (exact for integer values below 2^53);
    /// - stored rollups stand for every sample of their (cluster, UTC day) while they are at
    ///   least as new as that day's newest raw file: raw samples there are not counted (raw
    ///   samples may even be gone, past their retention); a day with a newer raw file (late
    ///   data, not yet rolled up again by the compactor) is answered from raw samples;
    /// - a source merging others merges their raw samples as [`Source::select`] does before
    ///   any is summarised, so a sample two sources hold counts once.
    ///
    /// The default answers from [`Source::select`]'s raw samples.
    async fn select_buckets(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        let req = SelectRequest {
            range: resolution.widen(req.range),
            newest_only: false,
            ..req.clone()
        };
        Ok(BucketRead::raw(resolution, self.select(&req).await?))
    }

    /// Per `cluster` label value among the series [`Source::select_buckets`] would answer for
    /// `req`, an upper bound of the rows that read holds for them (stored bucket rows and raw
    /// samples; a bucket comes from at least one row). Each cluster once, any order; a
    /// cluster with no row may be left out. What the engine cuts a large bucket read by: a
    /// part is a set of clusters, read with a `cluster` matcher, so that each part opens only
    /// its clusters' files (rollup files are per cluster and day).
    ///
    /// The default counts [`Source::series_samples`] over the widened range. A source that
    /// holds stored rollups must override it: its raw samples do not list the clusters whose
    /// raw files are gone (past their retention) while their rollups remain.
    async fn bucket_sizes(&self, req: &SelectRequest, resolution: Resolution) -> Result<Vec<ClusterRows>> {
        let req = SelectRequest {
            range: resolution.widen(req.range),
            newest_only: false,
            ..req.clone()
        };
        let sizes = self.series_samples(&req).await?;
        Ok(ClusterRows::sum(sizes.into_iter().map(|s| {
            (s.labels.get(crate::types::CLUSTER).unwrap_or("").to_string(), s.samples)
        })))
    }

    /// [`Source::select_buckets`] for a caller that folds every bucket of the answer into one
    /// window (an instant query's range selector, as every rule evaluation is): the same
    /// answer, except that the buckets of a stored rollup day lying wholly in the range may
    /// come combined into one, labelled with the day's last bucket. Folding each series'
    /// buckets from `into_series` in time order ([`crate::rollup::Bucket::append`]) gives what
    /// folding [`Source::select_buckets`]'s gives (checked by `test_util::source_conformance`):
    /// a 30-day window then reads 30 summaries per series instead of 720 hourly rows.
    ///
    /// A source merging others asks each of them for its window. The default answers
    /// [`Source::select_buckets`]'s buckets.
    async fn select_window(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        self.select_buckets(req, resolution).await
    }
}

/// Which end of the time range log results start from (Loki's `direction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}

/// A literal line filter a source may apply early (LogQL `|= "x"` / `!= "x"`, case-sensitive).
/// Only a hint: the engine applies every filter itself, so a source may ignore any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineHint {
    /// Keep lines containing the text.
    Contains(String),
    /// Keep lines not containing the text.
    NotContains(String),
}

/// What to read from logs: records of streams matching all `matchers`, with `start <= timestamp < end`
/// (Loki's half-open range).
#[derive(Clone, Debug)]
pub struct LogRequest {
    /// On stream labels; all must match. Never empty in a LogQL query (Loki requires one matcher).
    pub matchers: Vec<Matcher>,
    /// First nanosecond, included.
    pub start: TimestampNs,
    /// End of the range, excluded.
    pub end: TimestampNs,
    /// Literal line filters a source may apply early.
    pub line_hints: Vec<LineHint>,
    /// Which end results start from (and `limit` counts from).
    pub direction: Direction,
    /// At most this many records, taken from the `direction` end. `None`: all (metric queries).
    pub limit: Option<usize>,
}

/// Sorts records in the order [`LogSource::select_logs`] promises: `LogRecord`'s total order
/// (`(timestamp, labels)`, then every other field), descending for [`Direction::Backward`].
/// Every log source sorts with this one function, so equal records end up adjacent (and
/// `dedup` removes the copies) in every source and in any merge of them.
pub fn sort_logs(records: &mut [LogRecord], direction: Direction) {
    match direction {
        Direction::Forward => records.sort_unstable(),
        Direction::Backward => records.sort_unstable_by(|a, b| b.cmp(a)),
    }
}

/// A readable set of log records: the head's, the Parquet logs table's, or a merge.
///
/// # Contract
/// Every implementation must satisfy, and the conformance suite in `test_util`
/// (`log_source_conformance`) checks against the reference `MemLogSource`:
/// - [`LogSource::select_logs`] returns the records of streams matching every matcher (a
///   missing label matches as `""`) with `start <= timestamp < end`, in [`sort_logs`] order for
///   the requested direction. Records equal in every field are returned once (a record stored
///   twice by a retried flush, or held by the head and by Parquet during a flush), while
///   look-alikes that differ in any field (attributes, observed time...) are all kept.
/// - With a `limit`, the first `limit` records of that answer, exactly (ties at the cut are
///   broken by the total order, not arbitrarily).
/// - Line hints: a record whose body fails a hint is never returned; every record that passes
///   is (the engine filters again, but a limit counts only records that pass).
/// - Listings ([`LogSource::log_streams`] and the label listings) answer over streams with
///   records in `[start, end)`; an implementation may answer from coarser metadata (a whole
///   file's span), so it may include a stream whose records lie just outside, never leave one
///   out. Streams are listed once, sorted; names and values sorted and unique.
/// - [`LogSource::log_volume`] sums body bytes and records per stream and bucket, sorted by
///   labels. Counted from the records (the default), it is exact. A source answering from
///   summaries (the Parquet table: per stream per minute, see `table::logs`) is exact for
///   buckets and ranges on its summary's bucket edges; a summary bucket only partly inside a
///   requested bucket or range adds the share of its time inside (Loki prorates chunk
///   statistics the same way). A record stored twice (a retried write in two files, or in the
///   head and a file during a flush) may be counted twice; never is a record left out.
/// - [`LogSource::log_patterns`] clusters the lines of matching streams per level (see
///   [`record_level`]) with Drain, counting lines per bucket. Drain is approximate by nature (a
///   line joins the most similar pattern; rare patterns may be evicted), so the contract is on
///   counts: clustered from the records (the default), every line of the newest
///   `max_lines` with 4 to 80 tokens is counted once, in its bucket. A source answering from
///   summaries made as files were written (the Parquet table: per stream per minute, see
///   `table::logs`) counts every line of the range with no `max_lines` bound, spreading a
///   summary bucket over the requested buckets it overlaps by time share (as volume
///   prorates), and may count a record stored twice twice.
#[async_trait]
pub trait LogSource: Send + Sync + std::fmt::Debug {
    /// Matching records in the requested order, at most `limit` (see the contract above).
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>>;

    /// Body bytes and records per matching stream and bucket (see the contract above and
    /// [`VolumeRequest`]). The default reads the records through [`LogSource::select_logs`].
    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        volume::volume_by_select(self, req).await
    }

    /// Lines per pattern, level and bucket (see the contract above and [`PatternRequest`]). The
    /// default clusters the records read through [`LogSource::select_logs`].
    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        patterns::patterns_by_select(self, req).await
    }

    /// Distinct stream label sets matching `req.matchers` with records in range (no records read).
    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>>;

    /// Sorted, unique stream label names.
    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        Ok(names_of(&self.log_streams(req).await?))
    }

    /// Sorted, unique values of stream label `name`.
    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        Ok(values_of(&self.log_streams(req).await?, name))
    }
}

/// The sorted, unique label names of `sets`: the listings' default answer.
fn names_of(sets: &[Labels]) -> Vec<String> {
    let mut names: Vec<String> = sets.iter().flat_map(|l| l.iter().map(|l| l.name.to_string())).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The sorted, unique values of label `name` among `sets`.
fn values_of(sets: &[Labels], name: &str) -> Vec<String> {
    let mut values: Vec<String> = sets.iter().filter_map(|l| l.get(name).map(str::to_string)).collect();
    values.sort_unstable();
    values.dedup();
    values
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::{pack, sorted_union};

    proptest! {
        /// Parts keep the order, hold every item once, weigh at most the budget unless one item
        /// (after weightless ones) is heavier, and each part but the last could not take the next
        /// part's first item.
        #[test]
        fn pack_fills_parts_in_order_within_the_budget(weights in prop::collection::vec(0usize..50, 0..40), budget in 0usize..100) {
            let parts = pack(weights.iter().copied().enumerate(), budget);
            let flat: Vec<usize> = parts.iter().flatten().copied().collect();
            prop_assert_eq!(flat, (0..weights.len()).collect::<Vec<_>>());
            let weight = |p: &[usize]| p.iter().map(|&i| weights[i]).sum::<usize>();
            for (k, p) in parts.iter().enumerate() {
                prop_assert!(!p.is_empty());
                let before_last = weight(&p[..p.len() - 1]);
                prop_assert!(before_last == 0 || weight(p) <= budget, "part {:?} over {}", p, budget);
                if let Some(next) = parts.get(k + 1) {
                    prop_assert!(weight(p) > 0 && weight(p) + weights[next[0]] > budget);
                }
            }
        }

        #[test]
        fn sorted_union_is_the_sorted_set_union(sets in prop::collection::vec(prop::collection::btree_set("[a-d]{0,2}", 0..8), 0..7)) {
            let expected: Vec<String> = sets.iter().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect();
            let lists = sets.into_iter().map(|s| s.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(sorted_union(lists), expected);
        }
    }
}
