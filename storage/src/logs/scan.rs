//! [`ParquetLogSource`]: the [`LogSource`] over the logs table, with the request pushed down
//! into the scan.
//!
//! Work is skipped at every level, cheapest first:
//! 1. **Files** by catalog key: time span, and every `cluster` matcher (regexes included) on the
//!    key's one cluster. No request is made for a skipped file.
//! 2. **Row groups and pages** by `timestamp` statistics (and `service_name` statistics when a
//!    matcher pins it), see `super::read::plan`.
//! 3. **Rows**, before anything is materialised, with Parquet row filters over a few projected
//!    columns: first stream matchers and time on (`cluster`, `labels`, `timestamp`), where the
//!    matchers run once per distinct dictionary value, not per row; then literal line hints on
//!    the Arrow `body` array, searched in one pass over the array's value buffer (a literal
//!    regex is a SIMD `memmem`), so the rest of the columns are decoded only for rows that pass.
//! 4. **Limit**: files are read in the requested direction (newest `max_ts` first for
//!    `Backward`) and each keeps only its best `limit` records. Once `limit` records are known,
//!    their worst timestamp is a cut-off shared with every file still to scan: it narrows their
//!    time window (so statistics prune more), rows beyond it are never materialised, and no
//!    further file is opened once the next one cannot reach it.
//!
//! Files are decoded `read_concurrency` at a time on the runtime's worker threads. Unlimited
//! reads (metric queries) keep the `max_select_samples` guard: more matching records than that
//! fail with [`Error::TooManySamples`] instead of exhausting memory.

use std::cmp::Ordering as CmpOrdering;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_buffer::BooleanBufferBuilder;
use arrow_schema::ArrowError;
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use parking_lot::Mutex;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowPredicate, ArrowReaderMetadata, ArrowReaderOptions, RowFilter};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::file::metadata::PageIndexPolicy;
use regex::bytes::Regex;
use uuid::Uuid;

use super::read::plan;
use super::schema::{self, col};
use super::write::{NS_PER_MS, ms_of};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::{FileKey, Table};
use crate::read::parquet::{AbortOnDrop, ObjectReader, parquet_error};
use crate::read::prune::cluster_may_match;
use crate::read::{Direction, LineHint, LogRequest, LogSource};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::{self, Labels, Matcher, TimeRange};
use crate::{Error, Result};

/// Rows per decoded batch.
const BATCH_ROWS: usize = 8192;
/// Footers kept per source (a logs footer with its page index is a few KiB).
const FOOTER_CACHE_FILES: usize = 4096;
/// A limited read sorts and trims its candidates once this many beyond `limit` piled up.
const TOPK_SLACK: usize = 1024;

/// Columns a selected record is built from (all but the two derived ones).
const RECORD_COLUMNS: [usize; 15] = [
    col::CLUSTER,
    col::LABELS,
    col::TIMESTAMP,
    col::OBSERVED_TIMESTAMP,
    col::SEVERITY_NUMBER,
    col::SEVERITY_TEXT,
    col::BODY,
    col::TRACE_ID,
    col::SPAN_ID,
    col::FLAGS,
    col::ATTRIBUTES,
    col::RESOURCE_ATTRIBUTES,
    col::SCOPE_NAME,
    col::SCOPE_VERSION,
    col::EVENT_NAME,
];

/// What scans did so far, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCounters {
    /// Files whose footer was looked at (after key pruning and the limit cut-off).
    pub files_opened: u64,
    /// Row groups decoded (after statistics pruning).
    pub row_groups: u64,
    /// Rows the read plans selected (after page pruning), before row filters.
    pub rows_planned: u64,
    /// Records built (after row filters and the limit cut-off).
    pub records_built: u64,
}

#[derive(Debug, Default)]
struct Counters {
    files_opened: AtomicU64,
    row_groups: AtomicU64,
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
            rows_planned: self.rows_planned.load(Ordering::Relaxed),
            records_built: self.records_built.load(Ordering::Relaxed),
        }
    }
}

/// Parsed footers (with page indexes) of recently read logs files, keyed by file UUID.
#[derive(Debug, Default)]
struct FooterCache {
    map: Mutex<HashMap<Uuid, ArrowReaderMetadata>>,
}

impl FooterCache {
    async fn load(&self, reader: &mut ObjectReader, file: &FileMeta) -> Result<ArrowReaderMetadata> {
        if let Some(m) = self.map.lock().get(&file.key.id) {
            return Ok(m.clone());
        }
        let options = ArrowReaderOptions::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .with_schema(schema::logs_schema());
        let meta = ArrowReaderMetadata::load_async(reader, options)
            .await
            .map_err(|source| Error::Parquet {
                op: "read footer",
                key: file.path.to_string(),
                source,
            })?;
        let mut map = self.map.lock();
        if map.len() >= FOOTER_CACHE_FILES
            && let Some(victim) = map.keys().next().copied()
        {
            // Arbitrary eviction: cheap, and the cache mostly holds the recent hours anyway.
            map.remove(&victim);
        }
        map.insert(file.key.id, meta.clone());
        Ok(meta)
    }
}

/// The [`LogSource`] over every file in the logs catalog (including files written later).
#[derive(Debug)]
pub struct ParquetLogSource {
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    footers: Arc<FooterCache>,
    concurrency: usize,
    max_records: usize,
    counters: Arc<Counters>,
}

/// The total order of records: `(timestamp, labels)` as the contract says, then every other
/// field, so ties are broken the same way by every source and equal records are adjacent.
pub fn record_order(a: &LogRecord, b: &LogRecord) -> CmpOrdering {
    a.timestamp
        .cmp(&b.timestamp)
        .then_with(|| a.labels.cmp(&b.labels))
        .then_with(|| a.body.cmp(&b.body))
        .then_with(|| a.attributes.cmp(&b.attributes))
        .then_with(|| a.observed_timestamp.cmp(&b.observed_timestamp))
        .then_with(|| a.severity_number.cmp(&b.severity_number))
        .then_with(|| a.severity_text.cmp(&b.severity_text))
        .then_with(|| a.trace_id.cmp(&b.trace_id))
        .then_with(|| a.span_id.cmp(&b.span_id))
        .then_with(|| a.flags.cmp(&b.flags))
        .then_with(|| a.resource_attributes.cmp(&b.resource_attributes))
        .then_with(|| a.scope_name.cmp(&b.scope_name))
        .then_with(|| a.scope_version.cmp(&b.scope_version))
        .then_with(|| a.event_name.cmp(&b.event_name))
}

/// A read in the scan's own terms: a closed time range (the trait's is half-open, the old
/// [`super::LogSelect`] closed).
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
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        catalog: Arc<Catalog>,
        concurrency: usize,
        max_records: usize,
    ) -> Self {
        Self {
            store,
            catalog,
            footers: Arc::new(FooterCache::default()),
            concurrency: concurrency.max(1),
            max_records,
            counters: Arc::new(Counters::default()),
        }
    }

    /// What this source's scans did so far.
    pub fn counters(&self) -> ScanCounters {
        self.counters.snapshot()
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
        let query = Arc::new(Query::new(&req, hints, self.max_records, false));
        let mut top = TopK::new(req.direction, req.limit);
        let spawn = |file: Arc<FileMeta>| {
            let task = scan_file(
                self.store.clone(),
                self.footers.clone(),
                self.counters.clone(),
                file,
                query.clone(),
            );
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
            .buffered(self.concurrency);
        // `buffered` yields in file order, so after file `i` the next candidate is `i + 1`.
        // Breaking out drops the stream, which aborts the scans already under way.
        while let Some((i, out)) = scans.try_next().await? {
            if done_after(&mut top, &query, &files, i, out) {
                break;
            }
        }
        Ok(top.finish())
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
                let task = scan_file(
                    self.store.clone(),
                    self.footers.clone(),
                    self.counters.clone(),
                    file,
                    query.clone(),
                );
                AbortOnDrop(tokio::spawn(task))
            })
            .buffer_unordered(self.concurrency);
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

/// Compiled literal line hints. `None` from [`Hints::compile`]: nothing can match.
#[derive(Debug, Default)]
struct Hints {
    /// (needle, wanted): `wanted` rows contain the needle, the others must not.
    needles: Vec<(Regex, bool)>,
}

impl Hints {
    fn compile(hints: &[LineHint]) -> Option<Self> {
        let mut needles = Vec::new();
        for h in hints {
            let (s, wanted) = match h {
                LineHint::Contains(s) => (s, true),
                LineHint::NotContains(s) => (s, false),
            };
            if s.is_empty() {
                // Every line contains "": `|= ""` keeps all, `!= ""` none.
                if wanted {
                    continue;
                }
                return None;
            }
            // A hint may be ignored (the engine filters again): a needle too large for the regex
            // size limit is simply not pushed down.
            if let Ok(re) = Regex::new(&regex::escape(s)) {
                needles.push((re, wanted));
            }
        }
        Some(Self { needles })
    }
}

/// Marks the rows of `body` that contain the needle of `re` (a literal), searching the array's
/// value buffer in one pass rather than row by row: the search runs at `memmem` speed across
/// rows and only hits are mapped back to rows. A hit that spans two rows is no hit.
fn contains_rows(body: &StringArray, re: &Regex, hits: &mut [bool]) {
    let offsets = body.value_offsets();
    let data = body.value_data();
    let n = body.len();
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.get(n)) else {
        return;
    };
    let hay = &data[..last as usize];
    let mut pos = first as usize;
    let mut row = 0usize;
    while pos < hay.len() {
        let Some(m) = re.find_at(hay, pos) else { break };
        while row < n && (offsets[row + 1] as usize) <= m.start() {
            row += 1;
        }
        if row >= n {
            break;
        }
        let row_end = offsets[row + 1] as usize;
        if m.end() <= row_end {
            hits[row] = true;
        }
        // Any later hit starting in this row also ends past it: go on with the next row.
        pos = row_end.max(m.start() + 1);
    }
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
            Direction::Forward => record_order(a, b),
            Direction::Backward => record_order(b, a),
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

async fn scan_file(
    store: Arc<dyn ObjectStore>,
    footers: Arc<FooterCache>,
    counters: Arc<Counters>,
    file: Arc<FileMeta>,
    query: Arc<Query>,
) -> Result<FileOut> {
    // Other files may have raised the cut since this one was listed.
    let (lo, hi) = query.window();
    if lo > hi || !file_overlaps(&file.key, lo, hi) {
        return Ok(FileOut::default());
    }
    let key = file.path.as_ref();
    let pq_err = |op| parquet_error(op, key);
    let mut reader = ObjectReader {
        store,
        path: file.path.clone(),
        size: file.size,
    };
    Counters::add(&counters.files_opened, 1);
    let meta = footers.load(&mut reader, &file).await?;
    let Some(plan) = plan(&meta, lo, hi, &query.matchers) else {
        return Ok(FileOut::default());
    };
    Counters::add(&counters.row_groups, plan.row_groups.len());
    Counters::add(&counters.rows_planned, plan.rows);
    let pq_schema = meta.parquet_schema().clone();
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(plan.row_groups)
        .with_batch_size(BATCH_ROWS);
    if let Some(selection) = plan.selection {
        builder = builder.with_row_selection(selection);
    }
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
                    out.streams.insert(l.clone());
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

fn corrupt(key: &str, reason: String) -> Error {
    Error::Corrupt {
        key: key.to_string(),
        reason,
    }
}

/// A dictionary column of one batch: per-row keys (checked in range) and the shared values.
struct Dict<'b> {
    keys: &'b [i32],
    values: &'b StringArray,
}

impl<'b> Dict<'b> {
    fn value(&self, key: i32) -> &'b str {
        self.values.value(key as usize)
    }
}

fn dict(batch: &RecordBatch, i: usize) -> std::result::Result<Dict<'_>, String> {
    let d = batch
        .column(i)
        .as_dictionary_opt::<Int32Type>()
        .filter(|d| d.null_count() == 0)
        .ok_or_else(|| {
            format!(
                "column {} is not a non-null string dictionary",
                batch.schema().field(i).name()
            )
        })?;
    let values = d.values().as_string_opt::<i32>().ok_or_else(|| {
        format!(
            "column {} has non-string dictionary values",
            batch.schema().field(i).name()
        )
    })?;
    let keys = d.keys().values();
    let len = values.len();
    if keys.iter().any(|&k| k < 0 || k as usize >= len) {
        return Err(format!(
            "column {} has dictionary keys out of range",
            batch.schema().field(i).name()
        ));
    }
    Ok(Dict { keys, values })
}

/// Is `values` the same dictionary as `cached` (same buffers)? Batches of one column chunk
/// share it, so per-value results carry over between them.
fn same_values(cached: &Option<StringArray>, values: &StringArray) -> bool {
    cached.as_ref().is_some_and(|v| {
        v.len() == values.len() && v.offsets().ptr_eq(values.offsets()) && v.values().ptr_eq(values.values())
    })
}

/// One verdict per dictionary value, valid while batches share the dictionary.
#[derive(Debug, Default)]
struct DictFlags {
    values: Option<StringArray>,
    flags: Vec<Option<bool>>,
}

impl DictFlags {
    fn sync(&mut self, values: &StringArray) {
        if !same_values(&self.values, values) {
            self.values = Some(values.clone());
            self.flags.clear();
            self.flags.resize(values.len(), None);
        }
    }

    fn get(
        &mut self,
        key: i32,
        decide: impl FnOnce() -> std::result::Result<bool, String>,
    ) -> std::result::Result<bool, String> {
        let slot = &mut self.flags[key as usize];
        if let Some(f) = *slot {
            return Ok(f);
        }
        let f = decide()?;
        *slot = Some(f);
        Ok(f)
    }
}

/// Row filter 1: stream matchers and the time window, on (`cluster`, `labels`, `timestamp`).
/// `cluster` matchers run once per `cluster` dictionary value and the others once per `labels`
/// value (stream labels are `labels` plus `cluster`, so the two sets are independent).
struct StreamFilter {
    projection: ProjectionMask,
    query: Arc<Query>,
    key: String,
    clusters: DictFlags,
    labels: DictFlags,
}

impl StreamFilter {
    fn mask(&mut self, batch: &RecordBatch) -> std::result::Result<BooleanArray, String> {
        let cluster = dict(batch, 0)?;
        let labels = dict(batch, 1)?;
        let ts = batch
            .column(2)
            .as_primitive_opt::<TimestampNanosecondType>()
            .filter(|t| t.null_count() == 0)
            .ok_or("timestamp is not a non-null nanosecond timestamp")?
            .values();
        self.clusters.sync(cluster.values);
        self.labels.sync(labels.values);
        let (lo, hi) = self.query.window();
        let q = &self.query;
        let mut out = BooleanBufferBuilder::new(batch.num_rows());
        let mut prev: Option<((i32, i32), bool)> = None;
        for row in 0..batch.num_rows() {
            let pair = (cluster.keys[row], labels.keys[row]);
            let stream_ok = match prev {
                Some((p, ok)) if p == pair => ok,
                _ => {
                    let ok = self.clusters.get(pair.0, || {
                        Ok(q.cluster_matchers.iter().all(|m| m.matches(cluster.value(pair.0))))
                    })? && self.labels.get(pair.1, || {
                        if q.label_matchers.is_empty() {
                            return Ok(true);
                        }
                        let text = labels.value(pair.1);
                        let parsed =
                            schema::parse_stream_labels(text, "").map_err(|e| format!("labels {text:?}: {e}"))?;
                        Ok(q.label_matchers.iter().all(|m| m.matches_labels(&parsed)))
                    })?;
                    prev = Some((pair, ok));
                    ok
                }
            };
            let t = ts[row];
            out.append(stream_ok && lo <= t && t <= hi);
        }
        Ok(BooleanArray::new(out.finish(), None))
    }
}

impl ArrowPredicate for StreamFilter {
    fn projection(&self) -> &ProjectionMask {
        &self.projection
    }

    fn evaluate(&mut self, batch: RecordBatch) -> std::result::Result<BooleanArray, ArrowError> {
        self.mask(&batch)
            .map_err(|reason| ArrowError::ExternalError(Box::new(corrupt(&self.key, reason))))
    }
}

/// Row filter 2: the literal line hints, on `body` (only rows that passed filter 1 are decoded).
struct HintFilter {
    projection: ProjectionMask,
    query: Arc<Query>,
}

impl ArrowPredicate for HintFilter {
    fn projection(&self) -> &ProjectionMask {
        &self.projection
    }

    fn evaluate(&mut self, batch: RecordBatch) -> std::result::Result<BooleanArray, ArrowError> {
        let n = batch.num_rows();
        let body = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError("body is not a string column".into()))?;
        let mut keep = vec![true; n];
        let mut hits = vec![false; n];
        for (re, wanted) in &self.query.hints.needles {
            hits.fill(false);
            contains_rows(body, re, &mut hits);
            for (k, h) in keep.iter_mut().zip(&hits) {
                *k &= *h == *wanted;
            }
        }
        for (row, k) in keep.iter_mut().enumerate() {
            *k &= body.is_valid(row);
        }
        Ok(BooleanArray::from(keep))
    }
}

/// Stream labels per (`cluster`, `labels`) key pair, valid while batches share dictionaries.
#[derive(Debug, Default)]
struct StreamCache {
    clusters: Option<StringArray>,
    labels: Option<StringArray>,
    pairs: HashMap<(i32, i32), Option<Labels>>,
}

impl StreamCache {
    fn sync(&mut self, clusters: &StringArray, labels: &StringArray) {
        if !same_values(&self.clusters, clusters) || !same_values(&self.labels, labels) {
            self.clusters = Some(clusters.clone());
            self.labels = Some(labels.clone());
            self.pairs.clear();
        }
    }

    /// The stream's labels when every matcher accepts them.
    fn resolve(
        &mut self,
        pair: (i32, i32),
        cluster: &Dict<'_>,
        labels: &Dict<'_>,
        matchers: &[Matcher],
        key: &str,
    ) -> Result<Option<&Labels>> {
        let found = match self.pairs.entry(pair) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let text = labels.value(pair.1);
                let parsed = schema::parse_stream_labels(text, cluster.value(pair.0))
                    .map_err(|err| corrupt(key, format!("labels {text:?}: {err}")))?;
                e.insert(types::matches_all(matchers, &parsed).then_some(parsed))
            }
        };
        Ok(found.as_ref())
    }
}

/// Builds the records of one filtered batch (in [`RECORD_COLUMNS`] order) into `top`, skipping
/// rows the limit cut-off already rules out; returns how many were built.
fn build_records(
    batch: &RecordBatch,
    query: &Query,
    streams: &mut StreamCache,
    top: &mut TopK,
    key: &str,
) -> Result<usize> {
    let bad = |r: String| corrupt(key, r);
    let d = |i: usize| dict(batch, i).map_err(bad);
    let (cluster, labels) = (d(0)?, d(1)?);
    let (severity_text, scope_name, scope_version, event_name) = (d(5)?, d(12)?, d(13)?, d(14)?);
    let text = |i: usize, nullable: bool| -> Result<&StringArray> {
        batch
            .column(i)
            .as_string_opt::<i32>()
            .filter(|a| nullable || a.null_count() == 0)
            .ok_or_else(|| {
                bad(format!(
                    "column {} is not a string column",
                    batch.schema().field(i).name()
                ))
            })
    };
    let (body, trace_id, span_id) = (text(6, false)?, text(7, true)?, text(8, true)?);
    let (attributes, resource_attributes) = (text(10, false)?, text(11, false)?);
    let ts_col = |a: &ArrayRef| a.as_primitive_opt::<TimestampNanosecondType>().cloned();
    let (Some(ts), Some(observed), Some(severity_number), Some(flags)) = (
        ts_col(batch.column(2)),
        ts_col(batch.column(3)),
        batch.column(4).as_primitive_opt::<Int32Type>(),
        batch.column(9).as_primitive_opt::<UInt32Type>(),
    ) else {
        return Err(bad("numeric columns have unexpected types".into()));
    };
    if ts.null_count() + severity_number.null_count() + flags.null_count() > 0 {
        return Err(bad("non-nullable numeric columns hold nulls".into()));
    }
    streams.sync(cluster.values, labels.values);
    let opt_text = |a: &StringArray, row: usize| {
        if a.is_valid(row) {
            a.value(row).to_string()
        } else {
            String::new()
        }
    };
    let mut built = 0;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        if !top.admits(t) {
            continue;
        }
        let pair = (cluster.keys[row], labels.keys[row]);
        // The row filter accepted the stream already; resolving again (once per pair) builds
        // the label set and keeps this function correct on its own.
        let Some(stream) = streams.resolve(pair, &cluster, &labels, &query.matchers, key)? else {
            continue;
        };
        top.push(LogRecord {
            labels: stream.clone(),
            timestamp: t,
            observed_timestamp: if observed.is_valid(row) { observed.value(row) } else { 0 },
            severity_number: severity_number.value(row),
            severity_text: severity_text.value(severity_text.keys[row]).to_string(),
            body: body.value(row).to_string(),
            trace_id: opt_text(trace_id, row),
            span_id: opt_text(span_id, row),
            flags: flags.value(row),
            attributes: attributes.value(row).to_string(),
            resource_attributes: resource_attributes.value(row).to_string(),
            scope_name: scope_name.value(scope_name.keys[row]).to_string(),
            scope_version: scope_version.value(scope_version.keys[row]).to_string(),
            event_name: event_name.value(event_name.keys[row]).to_string(),
        });
        built += 1;
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(lines: &[&str], needle: &str) -> Vec<bool> {
        let a = StringArray::from(lines.to_vec());
        let re = Regex::new(&regex::escape(needle)).unwrap();
        let mut out = vec![false; a.len()];
        contains_rows(&a, &re, &mut out);
        out
    }

    #[test]
    fn buffer_search_maps_hits_to_rows_and_ignores_hits_across_rows() {
        assert_eq!(hits(&["ab", "cd", "abcd"], "bc"), [false, false, true]);
        assert_eq!(
            hits(&["xtime", "out", "timeout", "", "timeouttimeout"], "timeout"),
            [false, false, true, false, true]
        );
        assert_eq!(hits(&["aaa", "aa", "a"], "aa"), [true, true, false]);
        assert_eq!(hits(&["é✓", "✓"], "✓"), [true, true]);
        assert_eq!(hits(&[], "x"), Vec::<bool>::new());
        // A sliced array keeps its offsets into the shared buffer.
        let a = StringArray::from(vec!["x1", "no", "x2", "nox"]);
        let s = a.slice(1, 3);
        let mut out = vec![false; 3];
        contains_rows(&s, &Regex::new("x").unwrap(), &mut out);
        assert_eq!(out, [false, true, true]);
    }

    #[test]
    fn topk_keeps_the_best_distinct_records_and_knows_its_cut() {
        let r = |ts: i64, body: &str| LogRecord {
            timestamp: ts,
            body: body.into(),
            ..LogRecord::default()
        };
        let mut top = TopK::new(Direction::Backward, Some(2));
        top.extend(vec![r(1, "a"), r(3, "a"), r(3, "a"), r(2, "a")]);
        assert_eq!(top.cut(), Some(2), "duplicates do not count towards the limit");
        assert!(top.admits(2) && !top.admits(1));
        assert_eq!(top.finish(), vec![r(3, "a"), r(2, "a")]);
        let mut top = TopK::new(Direction::Forward, None);
        top.extend(vec![r(2, "b"), r(1, "a"), r(2, "a"), r(2, "b")]);
        assert_eq!(top.cut(), None);
        assert_eq!(top.finish(), vec![r(1, "a"), r(2, "a"), r(2, "b")]);
    }

    #[test]
    fn empty_hints_keep_everything_or_nothing() {
        assert!(Hints::compile(&[LineHint::Contains(String::new())]).is_some_and(|h| h.needles.is_empty()));
        assert!(Hints::compile(&[LineHint::NotContains(String::new())]).is_none());
        let h = Hints::compile(&[LineHint::Contains("a.b(".into())]).unwrap();
        assert!(h.needles[0].0.is_match(b"xa.b(") && !h.needles[0].0.is_match(b"axb("));
    }
}
