//! [`ParquetLogSource`]: the [`LogSource`] over the logs table, with the request pushed down
//! into the scan.
//!
//! Work is skipped at every level, cheapest first:
//! 1. **Files** by catalog key: time span, and every `cluster` matcher (regexes included) on the
//!    key's one cluster. No request is made for a skipped file.
//! 2. **Row groups and pages** by `timestamp` statistics (and `service_name` statistics when a
//!    matcher pins it), see `super::plan`.
//! 3. **Row groups by the line index** when a literal line hint has a word piece of 8 bytes or
//!    more: a row group whose `body_grams` filter lacks one of its grams cannot hold a match
//!    and is not read (see `super::grams`; one small ranged read per file).
//! 4. **Rows**, before anything is materialised, with Parquet row filters over a few projected
//!    columns: first stream matchers and time on (`cluster`, `labels`, `timestamp`), where the
//!    matchers run once per distinct dictionary value, not per row; then literal line hints on
//!    the Arrow `body` array, searched in one pass over the array's value buffer (a literal
//!    regex is a SIMD `memmem`), so the rest of the columns are decoded only for rows that pass.
//! 5. **Limit**: files are read in the requested direction (newest `max_ts` first for
//!    `Backward`) and each keeps only its best `limit` records. Once `limit` records are known,
//!    their worst timestamp is a cut-off shared with every file still to scan: it narrows their
//!    time window (so statistics prune more), rows beyond it are never materialised, and no
//!    further file is opened once the next one cannot reach it.
//!
//! Files are decoded `read_concurrency` at a time on the runtime's worker threads. Unlimited
//! reads (metric queries) keep the `max_select_samples` guard: more matching records than that
//! fail with [`Error::TooManySamples`] instead of exhausting memory.

mod filter;

use std::cmp::Ordering as CmpOrdering;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicate, RowFilter};

use super::grams::Probes;
use super::plan::plan;
use super::schema::{self, col};
use super::summary::SummaryCache;
use super::write::{NS_PER_MS, ms_of};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::{FileKey, Table};
use crate::parquet_io::plan::cluster_may_match;
use crate::parquet_io::{AbortOnDrop, ParquetIo, parquet_error, plan_stream};
use crate::read::{
    Direction, LineHint, LogRequest, LogSource, PatternRequest, PatternSum, Patterns, StreamVolume, VolumeRequest,
    VolumeSum,
};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::{self, Labels, Matcher, TimeRange};
use crate::{Error, Result};
#[cfg(test)]
use filter::contains_rows;
use filter::{DictFlags, HintFilter, Hints, RECORD_COLUMNS, StreamCache, StreamFilter, build_records, corrupt, dict};

/// One file's part of a summary read: the file, the request and the file's span (see
/// `ParquetLogSource::per_summary`).
type SummaryRead<R, Fut> = fn(ParquetIo, Arc<SummaryCache>, Arc<FileMeta>, R, (TimestampNs, TimestampNs)) -> Fut;

/// A limited read sorts and trims its candidates once this many beyond `limit` piled up.
const TOPK_SLACK: usize = 1024;

/// What scans did so far, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCounters {
    /// Files whose footer was looked at (after key pruning and the limit cut-off).
    pub files_opened: u64,
    /// Row groups decoded (after statistics and line-index pruning).
    pub row_groups: u64,
    /// Row groups the line index ruled out (after statistics pruning).
    pub row_groups_skipped_by_index: u64,
    /// Rows the read plans selected (after page pruning), before row filters.
    pub rows_planned: u64,
    /// Records built (after row filters and the limit cut-off).
    pub records_built: u64,
}

#[derive(Debug, Default)]
struct Counters {
    files_opened: AtomicU64,
    row_groups: AtomicU64,
    row_groups_skipped_by_index: AtomicU64,
    rows_planned: AtomicU64,
    records_built: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: usize) {
        c.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ScanCounters {
        ScanCounters {
            files_opened: self.files_opened.load(Ordering::Relaxed),
            row_groups: self.row_groups.load(Ordering::Relaxed),
            row_groups_skipped_by_index: self.row_groups_skipped_by_index.load(Ordering::Relaxed),
            rows_planned: self.rows_planned.load(Ordering::Relaxed),
            records_built: self.records_built.load(Ordering::Relaxed),
        }
    }
}

/// The [`LogSource`] over every file in the logs catalog (including files written later).
#[derive(Debug)]
pub struct ParquetLogSource {
    io: ParquetIo,
    catalog: Arc<Catalog>,
    max_records: usize,
    counters: Arc<Counters>,
    summaries: Arc<SummaryCache>,
    /// Reads consult files' line indexes (off only to measure what they save).
    line_index: bool,
}

/// A read in the scan's own terms: a closed time range (the trait's is half-open,
/// `LogSelect`'s closed).
#[derive(Clone, Debug)]
pub(crate) struct ScanRequest {
    pub matchers: Vec<Matcher>,
    pub start: TimestampNs,
    pub end: TimestampNs,
    pub hints: Vec<LineHint>,
    pub direction: Direction,
    pub limit: Option<usize>,
}

impl ScanRequest {
    /// `None` when the half-open range is empty.
    fn from_log_request(req: &LogRequest) -> Option<Self> {
        (req.start < req.end).then(|| Self {
            matchers: req.matchers.clone(),
            start: req.start,
            end: req.end - 1,
            hints: req.line_hints.clone(),
            direction: req.direction,
            limit: req.limit,
        })
    }
}

impl ParquetLogSource {
    /// Reads `catalog`'s files through `io`; an unlimited read of more than `max_records`
    /// records fails.
    pub(crate) fn new(io: ParquetIo, catalog: Arc<Catalog>, max_records: usize, summaries: Arc<SummaryCache>) -> Self {
        Self {
            io,
            catalog,
            max_records,
            summaries,
            counters: Arc::new(Counters::default()),
            line_index: true,
        }
    }

    /// This source, reading every row group a line hint's other tests keep, as before the line
    /// index (benchmarks compare both).
    #[cfg(any(test, feature = "test-util"))]
    pub fn without_line_index(mut self) -> Self {
        self.line_index = false;
        self
    }

    /// What this source's scans did so far.
    pub fn counters(&self) -> ScanCounters {
        self.counters.snapshot()
    }

    /// `Storage::read_logs`: a closed-range, oldest-first select without hints.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) async fn select_closed(&self, req: &super::LogSelect) -> Result<Vec<LogRecord>> {
        self.select(ScanRequest {
            matchers: req.matchers.clone(),
            start: req.start_ns,
            end: req.end_ns,
            hints: Vec::new(),
            direction: Direction::Forward,
            limit: req.limit,
        })
        .await
    }

    /// Files that can hold rows of the request, in the order the direction reads them.
    fn files(
        &self,
        matchers: &[Matcher],
        start: TimestampNs,
        end: TimestampNs,
        direction: Direction,
    ) -> Vec<Arc<FileMeta>> {
        let range = TimeRange::new(ms_of(start), ms_of(end));
        let mut files = self
            .catalog
            .files(Table::Logs, range, |c| cluster_may_match(c, matchers));
        // Ties keep write order (the catalog's), reversed for Backward: newest data first.
        match direction {
            Direction::Backward => {
                files.reverse();
                files.sort_by_key(|f| std::cmp::Reverse(f.key.max_ts));
            }
            Direction::Forward => files.sort_by_key(|f| f.key.min_ts),
        }
        files
    }

    /// Matching records in `req.direction` order, at most `req.limit`, records equal in every
    /// field once.
    pub(crate) async fn select(&self, req: ScanRequest) -> Result<Vec<LogRecord>> {
        if req.start > req.end || req.limit == Some(0) {
            return Ok(Vec::new());
        }
        let Some(hints) = Hints::compile(&req.hints) else {
            return Ok(Vec::new());
        };
        let files = self.files(&req.matchers, req.start, req.end, req.direction);
        let mut query = Query::new(&req, hints, self.max_records, false);
        if !self.line_index {
            query.grams = Probes::default();
        }
        let query = Arc::new(query);
        let mut top = TopK::new(req.direction, req.limit);
        let spawn = |file: Arc<FileMeta>| {
            let task = scan_file(self.io.clone(), self.counters.clone(), file, query.clone());
            AbortOnDrop(tokio::spawn(task))
        };
        // A limited read scans its first file alone: that file often holds the whole answer,
        // and the cut-off it yields keeps the next files from being opened speculatively.
        let mut first = 0;
        if req.limit.is_some()
            && let Some(file) = files.first()
        {
            let out = spawn(file.clone()).await?;
            first = 1;
            if done_after(&mut top, &query, &files, 0, out) {
                return Ok(top.finish());
            }
        }
        let mut scans = futures::stream::iter(files.iter().cloned().enumerate().skip(first))
            .map(|(i, file)| {
                let scan = spawn(file);
                async move { scan.await.map(|out| (i, out)) }
            })
            .buffered(self.io.concurrency);
        // `buffered` yields in file order, so after file `i` the next candidate is `i + 1`.
        // Breaking out drops the stream, which aborts the scans already under way.
        while let Some((i, out)) = scans.try_next().await? {
            if done_after(&mut top, &query, &files, i, out) {
                break;
            }
        }
        Ok(top.finish())
    }

    /// `per_file`'s answer for every file that may hold streams `logs` matches in its range,
    /// `read_concurrency` at a time, in file order (so the same files always give the same
    /// answer), each given the file's span: what the summary reads (volume, patterns) share.
    fn per_summary<'a, R, T, Fut>(
        &'a self,
        logs: &LogRequest,
        req: &'a R,
        per_file: SummaryRead<R, Fut>,
    ) -> impl futures::Stream<Item = Result<T>> + 'a
    where
        R: Clone + Send + 'static,
        T: Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let (start, end) = (logs.start, logs.end);
        let files = if start < end {
            self.files(&logs.matchers, start, end, Direction::Forward)
        } else {
            Vec::new()
        };
        futures::stream::iter(files.into_iter().filter(move |f| file_overlaps(&f.key, start, end)))
            .map(move |file| {
                let span = key_span(&file.key);
                AbortOnDrop(tokio::spawn(per_file(
                    self.io.clone(),
                    self.summaries.clone(),
                    file,
                    req.clone(),
                    span,
                )))
            })
            .buffered(self.io.concurrency)
    }

    /// Distinct label sets of matching streams in files, row groups and pages overlapping the
    /// range (time is decided from statistics only: no timestamp is decoded).
    async fn streams(&self, req: &LogRequest) -> Result<HashSet<Labels>> {
        let Some(req) = ScanRequest::from_log_request(req) else {
            return Ok(HashSet::new());
        };
        let files = self.files(&req.matchers, req.start, req.end, req.direction);
        let query = Arc::new(Query::new(&req, Hints::default(), self.max_records, true));
        let mut scans = futures::stream::iter(files)
            .map(|file| {
                let task = scan_file(self.io.clone(), self.counters.clone(), file, query.clone());
                AbortOnDrop(tokio::spawn(task))
            })
            .buffer_unordered(self.io.concurrency);
        let mut all = HashSet::new();
        while let Some(out) = scans.try_next().await? {
            all.extend(out.streams);
        }
        Ok(all)
    }
}

#[async_trait]
impl LogSource for ParquetLogSource {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        match ScanRequest::from_log_request(req) {
            Some(r) => self.select(r).await,
            None => Ok(Vec::new()),
        }
    }

    /// From each file's footer summary (per stream per minute; see `super::volume`), files
    /// `read_concurrency` at a time; no record is read.
    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        req.check()?;
        let mut sum = VolumeSum::default();
        let mut parts = self.per_summary(&req.logs, req, super::volume::file_volume);
        while let Some(part) = parts.try_next().await? {
            sum.absorb(part);
        }
        Ok(sum.finish())
    }

    /// From each file's footer summary (Drain patterns per stream and level, lines per minute;
    /// see `super::patterns`), files `read_concurrency` at a time, trained into one Drain per
    /// level; no record is read, so `max_lines` does not apply.
    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        req.check()?;
        let mut sum = PatternSum::default();
        let mut parts = self.per_summary(&req.logs, req, super::patterns::file_patterns);
        while let Some(part) = parts.try_next().await? {
            for (level, pattern, samples) in part {
                sum.add_pattern(level, &pattern, samples);
            }
        }
        Ok(sum.finish())
    }

    /// From the `cluster` and `labels` columns only, as coarse in time as the statistics.
    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        let mut out: Vec<Labels> = self.streams(req).await?.into_iter().collect();
        out.sort_unstable();
        Ok(out)
    }

    /// `cluster` under matchers on `cluster` alone comes from the catalog's keys (no file is
    /// opened); anything else from [`LogSource::log_streams`].
    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        let mut values: Vec<String> = if name == types::CLUSTER && req.matchers.iter().all(|m| m.name == types::CLUSTER)
        {
            let Some(r) = ScanRequest::from_log_request(req) else {
                return Ok(Vec::new());
            };
            self.files(&r.matchers, r.start, r.end, r.direction)
                .iter()
                .filter(|f| !f.key.cluster.is_empty() && file_overlaps(&f.key, r.start, r.end))
                .map(|f| f.key.cluster.clone())
                .collect()
        } else {
            self.streams(req)
                .await?
                .iter()
                .filter_map(|l| l.get(name).map(str::to_string))
                .collect()
        };
        values.sort_unstable();
        values.dedup();
        Ok(values)
    }
}

/// The nanosecond span a key's millisecond span stands for: `[min_ms·1e6, max_ms·1e6 + 999 999]`.
fn key_span(key: &FileKey) -> (TimestampNs, TimestampNs) {
    (
        key.min_ts.saturating_mul(NS_PER_MS),
        key.max_ts.saturating_mul(NS_PER_MS).saturating_add(NS_PER_MS - 1),
    )
}

/// Merges file `i`'s records; true when no later file can place a record in the answer (every
/// later file is at least as far from the requested end as file `i + 1`).
fn done_after(top: &mut TopK, query: &Query, files: &[Arc<FileMeta>], i: usize, out: FileOut) -> bool {
    top.extend(out.records);
    let Some(cut) = top.cut() else { return false };
    query.tighten(cut);
    files.get(i + 1).is_none_or(|next| !query.may_reach(&next.key))
}

fn file_overlaps(key: &FileKey, start: TimestampNs, end: TimestampNs) -> bool {
    let (lo, hi) = key_span(key);
    lo <= end && start <= hi
}

/// One request, shared by the per-file scans and their row filters.
#[derive(Debug)]
struct Query {
    matchers: Vec<Matcher>,
    cluster_matchers: Vec<Matcher>,
    label_matchers: Vec<Matcher>,
    start: TimestampNs,
    end: TimestampNs,
    hints: Hints,
    /// What the line index can test of `hints`.
    grams: Probes,
    direction: Direction,
    limit: Option<usize>,
    /// Listing streams instead of reading records.
    listing: bool,
    /// Limited reads: the timestamp at least `limit` distinct known records reach. Rows beyond
    /// it (older for `Backward`, newer for `Forward`) cannot be in the answer.
    cut: AtomicI64,
    /// Unlimited reads: matching records so far, against `max_records`.
    matched: AtomicUsize,
    max_records: usize,
}

impl Query {
    fn new(req: &ScanRequest, hints: Hints, max_records: usize, listing: bool) -> Self {
        let (cluster_matchers, label_matchers) = req.matchers.iter().cloned().partition(|m| m.name == types::CLUSTER);
        Self {
            matchers: req.matchers.clone(),
            cluster_matchers,
            label_matchers,
            start: req.start,
            end: req.end,
            hints,
            grams: if listing {
                Probes::default()
            } else {
                Probes::of(&req.hints)
            },
            direction: req.direction,
            limit: req.limit,
            listing,
            cut: AtomicI64::new(match req.direction {
                Direction::Backward => i64::MIN,
                Direction::Forward => i64::MAX,
            }),
            matched: AtomicUsize::new(0),
            max_records,
        }
    }

    /// The closed time window still worth reading.
    fn window(&self) -> (TimestampNs, TimestampNs) {
        let cut = self.cut.load(Ordering::Relaxed);
        match self.direction {
            Direction::Backward => (self.start.max(cut), self.end),
            Direction::Forward => (self.start, self.end.min(cut)),
        }
    }

    fn tighten(&self, cut: TimestampNs) {
        match self.direction {
            Direction::Backward => self.cut.fetch_max(cut, Ordering::Relaxed),
            Direction::Forward => self.cut.fetch_min(cut, Ordering::Relaxed),
        };
    }

    fn may_reach(&self, key: &FileKey) -> bool {
        let (lo, hi) = self.window();
        lo <= hi && file_overlaps(key, lo, hi)
    }
}

/// The best `limit` distinct records seen (all of them without a limit).
#[derive(Debug)]
struct TopK {
    direction: Direction,
    limit: Option<usize>,
    items: Vec<LogRecord>,
    /// With `limit` items kept: the worst one's timestamp.
    cut: Option<TimestampNs>,
}

impl TopK {
    fn new(direction: Direction, limit: Option<usize>) -> Self {
        Self {
            direction,
            limit,
            items: Vec::new(),
            cut: None,
        }
    }

    fn order(&self, a: &LogRecord, b: &LogRecord) -> CmpOrdering {
        match self.direction {
            Direction::Forward => a.cmp(b),
            Direction::Backward => b.cmp(a),
        }
    }

    /// Can a record at `ts` still make it? (Ties with the cut can: the labels decide.)
    fn admits(&self, ts: TimestampNs) -> bool {
        match (self.cut, self.direction) {
            (None, _) => true,
            (Some(c), Direction::Backward) => ts >= c,
            (Some(c), Direction::Forward) => ts <= c,
        }
    }

    fn push(&mut self, r: LogRecord) {
        self.items.push(r);
        if let Some(limit) = self.limit
            && self.items.len() >= limit.saturating_add(TOPK_SLACK.max(limit))
        {
            self.compact();
        }
    }

    /// Adds one file's records. Sorting only pays once `limit` records are held (that sets the
    /// cut that skips later files); below it, `finish` sorts once. Sorting after every file made
    /// metric queries, which read up to `max_records`, sort everything once per file.
    fn extend(&mut self, records: Vec<LogRecord>) {
        if self.items.is_empty() {
            self.items = records;
        } else {
            for r in records {
                if self.admits(r.timestamp) {
                    self.push(r);
                }
            }
        }
        if self.limit.is_some_and(|l| self.items.len() >= l) {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let mut items = std::mem::take(&mut self.items);
        items.sort_by(|a, b| self.order(a, b));
        items.dedup();
        if let Some(limit) = self.limit {
            items.truncate(limit);
            if items.len() == limit {
                self.cut = items.last().map(|r| r.timestamp);
            }
        }
        self.items = items;
    }

    fn cut(&self) -> Option<TimestampNs> {
        self.cut
    }

    fn finish(mut self) -> Vec<LogRecord> {
        self.compact();
        self.items
    }
}

/// What one file contributed.
#[derive(Debug, Default)]
struct FileOut {
    /// Its best `limit` records (all matching without a limit), unordered.
    records: Vec<LogRecord>,
    /// Listing: the accepted streams.
    streams: HashSet<Labels>,
}

async fn scan_file(io: ParquetIo, counters: Arc<Counters>, file: Arc<FileMeta>, query: Arc<Query>) -> Result<FileOut> {
    // Other files may have raised the cut since this one was listed.
    let (lo, hi) = query.window();
    if lo > hi || !file_overlaps(&file.key, lo, hi) {
        return Ok(FileOut::default());
    }
    let key = file.path.as_ref();
    let pq_err = |op| parquet_error(op, key);
    let mut reader = io.reader(&file);
    Counters::add(&counters.files_opened, 1);
    let meta = io.footer(&mut reader, &file, schema::logs_schema()).await?;
    let Some(mut plan) = plan(&meta, lo, hi, &query.matchers) else {
        return Ok(FileOut::default());
    };
    if !query.grams.is_empty() {
        let planned = plan.row_groups.len();
        let kept = query.grams.restrict(&io, &file, &meta, plan).await?;
        let left = kept.as_ref().map_or(0, |p| p.row_groups.len());
        Counters::add(&counters.row_groups_skipped_by_index, planned - left);
        let Some(kept) = kept else {
            return Ok(FileOut::default());
        };
        plan = kept;
    }
    Counters::add(&counters.row_groups, plan.row_groups.len());
    Counters::add(&counters.rows_planned, plan.rows);
    let pq_schema = meta.parquet_schema().clone();
    let builder = plan_stream(reader, meta, plan);
    let mut streams = StreamCache::default();

    if query.listing {
        let builder = builder.with_projection(ProjectionMask::roots(&pq_schema, [col::CLUSTER, col::LABELS]));
        let mut stream = builder.build().map_err(pq_err("open stream"))?;
        let mut out = FileOut::default();
        while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
            let cluster = dict(&batch, 0).map_err(|r| corrupt(key, r))?;
            let labels = dict(&batch, 1).map_err(|r| corrupt(key, r))?;
            streams.sync(cluster.values, labels.values);
            let mut prev = None;
            for row in 0..batch.num_rows() {
                let pair = (cluster.keys[row], labels.keys[row]);
                if prev == Some(pair) {
                    continue;
                }
                prev = Some(pair);
                if let Some(l) = streams.resolve(pair, &cluster, &labels, &query.matchers, key)?
                    && !out.streams.contains(l)
                {
                    out.streams.insert(Labels::clone(l));
                }
            }
        }
        return Ok(out);
    }

    let mut predicates: Vec<Box<dyn ArrowPredicate>> = vec![Box::new(StreamFilter {
        projection: ProjectionMask::roots(&pq_schema, [col::CLUSTER, col::LABELS, col::TIMESTAMP]),
        query: query.clone(),
        key: key.to_string(),
        clusters: DictFlags::default(),
        labels: DictFlags::default(),
    })];
    if !query.hints.needles.is_empty() {
        predicates.push(Box::new(HintFilter {
            projection: ProjectionMask::roots(&pq_schema, [col::BODY]),
            query: query.clone(),
        }));
    }
    let builder = builder
        .with_row_filter(RowFilter::new(predicates))
        .with_projection(ProjectionMask::roots(&pq_schema, RECORD_COLUMNS));
    let mut stream = builder.build().map_err(pq_err("open stream"))?;
    let mut top = TopK::new(query.direction, query.limit);
    let mut built = 0usize;
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        let n = build_records(&batch, &query, &mut streams, &mut top, key)?;
        built += n;
        if query.limit.is_none() && n > 0 {
            let total = query.matched.fetch_add(n, Ordering::Relaxed) + n;
            if total > query.max_records {
                return Err(Error::TooManySamples {
                    limit: query.max_records,
                });
            }
        }
        if let Some(cut) = top.cut() {
            query.tighten(cut);
        }
    }
    Counters::add(&counters.records_built, built);
    Ok(FileOut {
        records: top.finish(),
        streams: HashSet::new(),
    })
}

#[cfg(test)]
mod tests;
