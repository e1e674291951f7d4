//! [`ParquetSource`]: the [`Source`] over the metrics Parquet files in the object store.
//!
//! Every file's series are known from its series table (`read/series_table.rs`): decoded once
//! from the file's label columns, then kept in memory within a byte budget. A select runs its
//! matchers on the table, keeps the runs of matching series whose time span meets the range and
//! whose pages the page index does not rule out ([`super::prune`]), and decodes only the
//! `timestamp` and `value` columns of those rows. `/api/v1/series` and label listings answer from
//! the tables without reading the files again.
//!
//! A big read of a query that touches fewer files than there are cores is cut into parts decoded
//! in parallel and stitched back in order.
//!
//! Files are merged in write order (UUID v7 in the key): when two files hold the same series
//! and timestamp, the later file's sample wins. Series are matched across files by their
//! [`crate::types::SeriesId`], computed once per series when its table is built.
//!
//! The tables beside metrics are read through `read_table_files` (footers, pruning and ranged
//! reads shared with the metrics scan); their modules (`crate::histograms`, `crate::exemplars`,
//! `crate::metadata`) decode the rows.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::prune::{self, ReadPlan};
use super::{SelectRequest, SeriesSize, Source};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::Table;
use crate::metadata::KnownMetadata;
use crate::schema::{self, col};
use crate::signals::{ExemplarSeries, MetricMetadata};
use crate::types::{self, Labels, Matcher, Sample, Series, SeriesId, SeriesIdSet, TimeRange, sort_dedup_samples};
use crate::{Error, Result};

/// Rows per decoded batch: large enough to amortise per-batch work, small enough to stay in cache.
const BATCH_ROWS: usize = 8192;
/// A file read of more rows than this is cut into parts decoded in parallel, when the query reads
/// too few files to keep the cores busy (four pages of the default 65,536 rows: a cut inside a
/// page costs at most a quarter more of decoding)...
const PART_ROWS: usize = 256 << 10;
/// ...into at most this many parts.
const MAX_PARTS: usize = 8;
/// Most footers (with our small page indexes) fit, so metadata usually costs one request.
const FOOTER_HINT_BYTES: usize = 64 << 10;
/// Memory for per-file label listings (a 30,000-series file lists in well under 1 MiB).
const LABEL_CACHE_BYTES: usize = 64 << 20;
/// Default memory for series tables (a 30,000-series file's table takes about 20 MiB).
pub const SERIES_CACHE_BYTES: usize = 1 << 30;

#[path = "file_cache.rs"]
mod file_cache;
#[path = "listing.rs"]
mod listing;
#[path = "series_table.rs"]
mod series_table;

use file_cache::FileCache;
pub use file_cache::FileCacheStats;
use listing::FileLabels;
use series_table::{Interner, Keyed, SeriesList, SeriesTable, TableBuilder};

/// Parsed footers (with page indexes) of recently read files, keyed by file UUID; and, keyed by
/// object key, the files' series tables and label listings.
#[derive(Debug)]
pub struct MetadataCache {
    capacity: usize,
    map: Mutex<HashMap<Uuid, ArrowReaderMetadata>>,
    labels: FileCache<FileLabels>,
    tables: FileCache<SeriesTable>,
    interner: Interner,
}

impl MetadataCache {
    /// Keeps up to `capacity` footers, label listings within a fixed memory budget and series
    /// tables within [`SERIES_CACHE_BYTES`] (nothing when `capacity` is 0: caching is off).
    pub fn new(capacity: usize) -> Self {
        Self::with_series_bytes(capacity, SERIES_CACHE_BYTES)
    }

    /// As [`MetadataCache::new`], with series tables kept within `series_bytes`.
    pub fn with_series_bytes(capacity: usize, series_bytes: usize) -> Self {
        let on = |bytes| if capacity == 0 { 0 } else { bytes };
        Self {
            capacity,
            map: Mutex::new(HashMap::new()),
            labels: FileCache::new(on(LABEL_CACHE_BYTES)),
            tables: FileCache::new(on(series_bytes)),
            interner: Interner::default(),
        }
    }

    fn get(&self, id: &Uuid) -> Option<ArrowReaderMetadata> {
        self.map.lock().get(id).cloned()
    }

    /// What the caches hold.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            footers: self.map.lock().len(),
            series_tables: self.tables.stats(),
            label_listings: self.labels.stats(),
            interned_label_sets: self.interner.len(),
        }
    }

    fn insert(&self, id: Uuid, meta: ArrowReaderMetadata) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock();
        if map.len() >= self.capacity {
            // Arbitrary eviction: cheap and good enough for a cache that mostly holds recent hours.
            if let Some(victim) = map.keys().next().copied() {
                map.remove(&victim);
            }
        }
        map.insert(id, meta);
    }
}

/// What [`MetadataCache`] holds, for the server's `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Parquet footers (with page indexes) kept, up to `storage.metadata_cache_files`.
    pub footers: usize,
    /// Series tables, within `storage.series_cache_bytes`.
    pub series_tables: FileCacheStats,
    /// Label listings, within a fixed budget.
    pub label_listings: FileCacheStats,
    /// Label sets the interner knows (live or not yet swept).
    pub interned_label_sets: usize,
}

/// Reads the metrics table through the catalog, and the `exemplars` and `metadata` tables
/// through theirs (see [`ParquetSource::with_signal_tables`]).
#[derive(Debug)]
pub struct ParquetSource {
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    cache: Arc<MetadataCache>,
    concurrency: usize,
    max_samples: usize,
    exemplars: Arc<Catalog>,
    metadata: Arc<Catalog>,
    /// Every metadata entry of the metadata files read so far.
    known_metadata: KnownMetadata,
}

impl ParquetSource {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        catalog: Arc<Catalog>,
        cache: Arc<MetadataCache>,
        concurrency: usize,
        max_samples: usize,
    ) -> Self {
        Self {
            store,
            catalog,
            cache,
            concurrency: concurrency.max(1),
            max_samples,
            exemplars: Arc::new(Catalog::new()),
            metadata: Arc::new(Catalog::new()),
            known_metadata: KnownMetadata::default(),
        }
    }

    /// Also serves [`Source::exemplars`] and [`Source::metadata`] from these catalogs of the
    /// `exemplars` and `metadata` tables (without them both answer empty).
    pub fn with_signal_tables(mut self, exemplars: Arc<Catalog>, metadata: Arc<Catalog>) -> Self {
        self.exemplars = exemplars;
        self.metadata = metadata;
        self
    }

    /// The metrics files the key does not rule out for `req`, in write order.
    fn files(&self, req: &SelectRequest) -> Vec<Arc<FileMeta>> {
        self.catalog.files(Table::Metrics, req.range, |c| {
            prune::cluster_may_match(c, &req.matchers)
        })
    }

    /// Runs `task` on every one of `files`, `concurrency` at a time, each on its own task;
    /// yields in the order of `files`.
    fn per_file<T, F, Fut>(&self, files: Vec<Arc<FileMeta>>, task: F) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ObjectStore>, Arc<MetadataCache>, Arc<FileMeta>) -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.per_file_cached(files, |_: &MetadataCache, _: &FileMeta| None, task)
    }

    /// [`Self::per_file`], answering from `cached` without a task when it can: a task per file
    /// costs more than a cached answer.
    fn per_file_cached<T, C, F, Fut>(
        &self,
        files: Vec<Arc<FileMeta>>,
        cached: C,
        task: F,
    ) -> impl Stream<Item = Result<T>> + use<T, C, F, Fut>
    where
        T: Send + 'static,
        C: Fn(&MetadataCache, &FileMeta) -> Option<T> + Send,
        F: Fn(Arc<dyn ObjectStore>, Arc<MetadataCache>, Arc<FileMeta>) -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (store, cache) = (self.store.clone(), self.cache.clone());
        futures::stream::iter(files)
            .map(move |file| match cached(&cache, &file) {
                Some(hit) => futures::future::Either::Left(futures::future::ready(Ok(hit))),
                None => {
                    futures::future::Either::Right(AbortOnDrop(tokio::spawn(task(store.clone(), cache.clone(), file))))
                }
            })
            .buffered(self.concurrency)
    }

    /// The series tables of the files `req` may read, cached ones without a task.
    fn tables(&self, req: &SelectRequest) -> impl Stream<Item = Result<Arc<SeriesTable>>> + use<> {
        self.per_file_cached(
            self.files(req),
            |cache, file| cache.tables.get(file.path.as_ref()),
            file_table,
        )
    }

    /// Matching series with data in range, from the series tables, merged across files, each
    /// with its rows in range summed over the files (an upper bound of its samples).
    async fn tabled(&self, req: &SelectRequest) -> Result<(SeriesList<FileSeries>, Vec<usize>)> {
        let (mut list, mut rows) = (SeriesList::default(), Vec::new());
        let mut tables = self.tables(req);
        while let Some(table) = tables.next().await {
            let table = table?;
            let accepted = table.accepted(&req.matchers, req.only.as_deref());
            for (id, n) in table.rows_in(&accepted, &req.range) {
                let s = &table.series[id as usize];
                match list.find(s.id, &s.labels) {
                    Some(i) => rows[i] += n,
                    None => {
                        list.push(FileSeries {
                            table: table.clone(),
                            id,
                            samples: Vec::new(),
                        });
                        rows.push(n);
                    }
                }
            }
        }
        Ok((list, rows))
    }

    /// Label names or values of matching series: from the files' label listings when the
    /// matchers allow it ([`Self::list_from_files`]), else from the matching series.
    async fn list(&self, req: &SelectRequest, name: Option<&str>) -> Result<Vec<String>> {
        if let Some(found) = self.list_from_files(req, name).await? {
            return Ok(found);
        }
        let mut found: HashSet<&str> = HashSet::new();
        let (list, _) = self.tabled(req).await?;
        for s in &list.items {
            let labels = s.labels();
            match name {
                Some(name) => found.extend(labels.get(name)),
                None => found.extend(labels.iter().map(|l| l.name.as_str())),
            }
        }
        let mut out: Vec<String> = found.into_iter().map(str::to_string).collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Answers a listing from each file's label listing when every matcher is on `cluster` or
    /// on the listed label itself, and each file's rows are all or none in the matched
    /// clusters. `None`: the matchers need the series (the caller reads them). As coarse in
    /// time as the files' key spans.
    async fn list_from_files(&self, req: &SelectRequest, name: Option<&str>) -> Result<Option<Vec<String>>> {
        let (mut own_matchers, mut cluster_matchers) = (Vec::new(), Vec::new());
        for m in &req.matchers {
            if Some(m.name.as_str()) == name {
                own_matchers.push(m);
            } else if m.name == types::CLUSTER {
                cluster_matchers.push(m);
            } else {
                return Ok(None);
            }
        }
        let mut listings = self.per_file_cached(
            self.files(req),
            |cache, file| cache.labels.get(file.path.as_ref()),
            file_labels,
        );
        let mut accepted = Vec::new();
        while let Some(labels) = listings.next().await {
            let labels = labels?;
            match labels.clusters_match(&cluster_matchers) {
                Some(true) => accepted.push(labels),
                Some(false) => {}
                None => return Ok(None),
            }
        }
        let lists = accepted.iter().map(|labels| match name {
            Some(name) => labels.values(name, &own_matchers),
            None => labels.names(),
        });
        let out = super::sorted_union(lists).into_iter().map(str::to_string).collect();
        Ok(Some(out))
    }
}

/// Per file of a read, in order: the time the files from it on cover for its cluster (within
/// `range`), as a multiple of its own. A series' samples are usually spread evenly over its
/// cluster's hourly files, so this many times a file's samples is what the whole read holds.
fn files_ahead(files: &[Arc<FileMeta>], range: &TimeRange) -> Vec<f64> {
    let span = |f: &FileMeta| (f.key.max_ts.min(range.end) - f.key.min_ts.max(range.start)).max(0) as f64 + 1.0;
    let mut covered: HashMap<&str, f64> = HashMap::new();
    let mut out: Vec<f64> = files
        .iter()
        .rev()
        .map(|f| {
            let total = covered.entry(f.key.cluster.as_str()).or_default();
            *total += span(f);
            *total / span(f)
        })
        .collect();
    out.reverse();
    out
}

/// The series of a read, merged across files.
#[derive(Debug, Default)]
struct Merged {
    list: SeriesList<FileSeries>,
    /// Per series: its samples may be out of order (files overlap in time, or a file is not in
    /// our writer's order), so they need sorting and deduplicating.
    overlapping: Vec<bool>,
}

impl Merged {
    /// Adds one file's series. `ahead` is how many times this file's share of the range the
    /// files still to come (this one included) cover for its cluster: a series met for the
    /// first time gets room for that many times its samples, so it is not grown (and its pages
    /// faulted in again) file after file.
    fn add(&mut self, rows: impl IntoIterator<Item = FileSeries>, ahead: f64) {
        for mut found in rows {
            let unsorted = found.table.unsorted(found.id);
            match self.list.find(found.id(), found.labels()) {
                Some(i) => {
                    let into = &mut self.list.items[i].samples;
                    // Files of later hours (or later flushes) usually continue a series: only
                    // samples that do not start after the last one can need sorting.
                    if let (Some(last), Some(first)) = (into.last(), found.samples.first()) {
                        self.overlapping[i] |= first.timestamp <= last.timestamp;
                    }
                    self.overlapping[i] |= unsorted;
                    into.extend(found.samples);
                }
                None => {
                    let more = (found.samples.len() as f64 * (ahead - 1.0)).ceil();
                    if more >= 1.0 {
                        found.samples.reserve_exact(more as usize);
                    }
                    self.list.push(found);
                    self.overlapping.push(unsorted);
                }
            }
        }
    }
}

#[async_trait]
impl Source for ParquetSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        // Each part decodes the pages at its cuts again, so files are cut only when there are
        // too few of them to keep every core busy.
        let files = self.files(req);
        let ahead = files_ahead(&files, &req.range);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let query = Arc::new(Query {
            matchers: req.matchers.clone(),
            range: req.range,
            only: req.only.clone(),
            samples: AtomicUsize::new(0),
            max_samples: self.max_samples,
            max_parts: (2 * cores).div_ceil(files.len().max(1)).min(MAX_PARTS),
        });
        let mut scans = self.per_file(files, move |store, cache, file| {
            scan_file(store, cache, file, query.clone())
        });
        // `per_file` yields in file (write) order, so later files' samples are appended later.
        let mut merged = Merged::default();
        let mut rows = 0;
        let mut ahead = ahead.into_iter();
        while let Some(found) = scans.next().await {
            let found = found?;
            rows += found.planned_rows;
            merged.add(found.series, ahead.next().unwrap_or(1.0));
        }
        tracing::debug!(rows, series = merged.overlapping.len(), "parquet select");
        Ok(merged
            .list
            .items
            .into_iter()
            .zip(merged.overlapping)
            .filter(|(s, _)| !s.samples.is_empty())
            .map(|(s, overlapping)| {
                let mut samples = s.samples;
                if overlapping {
                    // Keeps the last-written sample per timestamp.
                    sort_dedup_samples(&mut samples);
                }
                Series::new(Labels::clone(&s.table.series[s.id as usize].labels), samples)
            })
            .collect())
    }

    /// Answers from the series tables: a series is listed when one of its runs in a file spans
    /// a time that meets the range (so it may have no sample exactly in range).
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        let (list, _) = self.tabled(req).await?;
        Ok(list.items.iter().map(|s| Labels::clone(s.labels())).collect())
    }

    /// The rows of the matching runs that meet the range, without reading samples; stops at
    /// the first file that takes the count past `limit`.
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        let mut total = 0;
        let mut tables = self.tables(req);
        while total <= limit
            && let Some(table) = tables.next().await
        {
            let table = table?;
            let accepted = table.accepted(&req.matchers, req.only.as_deref());
            total += table
                .runs_in(&accepted, &req.range)
                .into_iter()
                .map(|r| r.len())
                .sum::<usize>();
        }
        Ok(total)
    }

    /// Counts the rows of each series' runs that meet the range (all of a run's rows, so an
    /// upper bound), without reading samples.
    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        let (list, rows) = self.tabled(req).await?;
        Ok(list
            .items
            .iter()
            .zip(rows)
            .map(|(s, samples)| SeriesSize {
                labels: Labels::clone(s.labels()),
                samples,
            })
            .collect())
    }

    /// As coarse in time as [`Source::series`], or as the files' key spans.
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.list(req, None).await
    }

    /// As coarse in time as [`Source::series`], or as the files' key spans.
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.list(req, Some(name)).await
    }

    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        crate::exemplars::read_exemplars(
            &self.store,
            &self.cache,
            &self.exemplars,
            selectors,
            range,
            self.concurrency,
        )
        .await
    }

    /// Reads each metadata file once (later calls read only files written since).
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        self.known_metadata
            .read(&self.store, &self.metadata, metric, self.concurrency)
            .await
    }
}

/// One select, shared by the per-file reads.
#[derive(Debug)]
struct Query {
    matchers: Vec<Matcher>,
    range: TimeRange,
    only: Option<Arc<SeriesIdSet>>,
    samples: AtomicUsize,
    max_samples: usize,
    /// Most parts one file's read is cut into.
    max_parts: usize,
}

impl Query {
    /// Counts `added` samples against the limit.
    fn count(&self, added: usize) -> Result<()> {
        let total = self.samples.fetch_add(added, Ordering::Relaxed) + added;
        if total > self.max_samples {
            return Err(Error::TooManySamples {
                limit: self.max_samples,
            });
        }
        Ok(())
    }
}

/// Aborts the scan when the query is dropped or fails early; propagates scan panics.
pub(crate) struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<Result<T>> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Task {
                op: "scan parquet file",
                reason: e.to_string(),
            }),
        })
    }
}

/// One series found in a file (a row of its table), with its samples in range.
#[derive(Debug)]
struct FileSeries {
    table: Arc<SeriesTable>,
    id: u32,
    samples: Vec<Sample>,
}

impl Keyed for FileSeries {
    fn id(&self) -> SeriesId {
        self.table.series[self.id as usize].id
    }
    fn labels(&self) -> &Labels {
        &self.table.series[self.id as usize].labels
    }
}

/// What one file contributed, with the counter tests and tracing look at.
#[derive(Debug, Default)]
struct Scanned {
    series: Vec<FileSeries>,
    /// Rows read (after matching and pruning).
    planned_rows: usize,
}

/// `file`'s series table: from the cache, or built from the file's label and timestamp columns
/// (every row) and cached.
async fn file_table(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    file: Arc<FileMeta>,
) -> Result<Arc<SeriesTable>> {
    let key = file.path.as_ref();
    if let Some(t) = cache.tables.get(key) {
        return Ok(t);
    }
    let mut reader = ObjectReader {
        store,
        path: file.path.clone(),
        size: file.size,
    };
    let meta = load_footer(&mut reader, Some(cache.as_ref()), &file, schema::metrics_schema()).await?;
    let mask = ProjectionMask::roots(
        meta.parquet_schema(),
        [col::CLUSTER, col::METRIC, col::LABELS, col::TIMESTAMP],
    );
    let pq_err = |op| parquet_error(op, key);
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq_err("open stream"))?;
    let mut builder = TableBuilder::new(key, &cache.interner);
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        builder.push(&batch)?;
    }
    let table = Arc::new(builder.finish());
    tracing::debug!(
        key,
        series = table.series.len(),
        runs = table.runs.len(),
        parsed = table.parsed,
        "series table built"
    );
    cache.tables.insert(key, table.clone());
    Ok(table)
}

/// `file`'s label listing: from the cache, or derived from its series table and cached.
async fn file_labels(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    file: Arc<FileMeta>,
) -> Result<Arc<FileLabels>> {
    let key = file.path.as_ref();
    if let Some(l) = cache.labels.get(key) {
        return Ok(l);
    }
    let labels = Arc::new(file_table(store, cache.clone(), file.clone()).await?.listing());
    cache.labels.insert(key, labels.clone());
    Ok(labels)
}

/// Rows `start..end` of the file, all of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: usize,
    end: usize,
    series: u32,
}

/// The samples in range of the series `query` matches in `file`.
async fn scan_file(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    file: Arc<FileMeta>,
    query: Arc<Query>,
) -> Result<Scanned> {
    let table = file_table(store.clone(), cache.clone(), file.clone()).await?;
    let accepted = table.accepted(&query.matchers, query.only.as_deref());
    let mut reader = ObjectReader {
        store,
        path: file.path.clone(),
        size: file.size,
    };
    let meta = load_footer(&mut reader, Some(cache.as_ref()), &file, schema::metrics_schema()).await?;
    // Pages whose timestamps miss the range are skipped even inside a run.
    let Some(plan) = prune::plan(&meta, &query.range, &[]) else {
        return Ok(Scanned::default());
    };
    let rg_rows: Vec<usize> = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect();
    let planned = plan.file_rows(&rg_rows);
    let mut segments = Vec::new();
    let mut next = 0;
    for run in table.runs_in(&accepted, &query.range) {
        let rows = run.rows();
        while next < planned.len() && planned[next].end <= rows.start {
            next += 1;
        }
        for p in planned[next..].iter().take_while(|p| p.start < rows.end) {
            let (start, end) = (rows.start.max(p.start), rows.end.min(p.end));
            if start < end {
                segments.push(Segment {
                    start,
                    end,
                    series: run.series,
                });
            }
        }
    }
    let rows: usize = segments.iter().map(|s| s.end - s.start).sum();
    if rows == 0 {
        return Ok(Scanned::default());
    }
    // A short query reads few files: cutting a big read into parts lets every core decode.
    let parts = (rows / PART_ROWS).clamp(1, query.max_parts);
    let tasks: Vec<_> = cut(segments, rows.div_ceil(parts))
        .into_iter()
        .map(|part| {
            let (reader, meta, query, rg_rows) = (reader.clone(), meta.clone(), query.clone(), rg_rows.clone());
            AbortOnDrop(tokio::spawn(read_samples(reader, meta, rg_rows, part, query)))
        })
        .collect();
    let mut series: Vec<FileSeries> = Vec::new();
    for part in futures::future::try_join_all(tasks).await? {
        let mut part = part.into_iter();
        // Parts are consecutive in row order: only a series cut at a part boundary continues
        // into the next part.
        if let (Some(last), Some((id, _))) = (series.last_mut(), part.as_slice().first())
            && last.id == *id
        {
            last.samples.extend(part.next().expect("first").1);
        }
        series.extend(part.map(|(id, samples)| FileSeries {
            table: table.clone(),
            id,
            samples,
        }));
    }
    tracing::trace!(key = file.path.as_ref(), rows, series = series.len(), "scanned");
    Ok(Scanned {
        series,
        planned_rows: rows,
    })
}

/// `segments` (in row order) cut into consecutive lists of at most `target` rows each.
fn cut(segments: Vec<Segment>, target: usize) -> Vec<Vec<Segment>> {
    let mut parts: Vec<Vec<Segment>> = vec![Vec::new()];
    let mut filled = 0;
    for mut s in segments {
        while s.start < s.end {
            if filled == target {
                parts.push(Vec::new());
                filled = 0;
            }
            let take = (target - filled).min(s.end - s.start);
            parts.last_mut().expect("one part").push(Segment {
                end: s.start + take,
                ..s
            });
            s.start += take;
            filled += take;
        }
    }
    parts
}

/// Decodes the `timestamp` and `value` columns of `segments` (consecutive, in row order); returns
/// each series' samples in range, in row order (a series with several runs appears once per run).
async fn read_samples(
    reader: ObjectReader,
    meta: ArrowReaderMetadata,
    rg_rows: Vec<usize>,
    segments: Vec<Segment>,
    query: Arc<Query>,
) -> Result<Vec<(u32, Vec<Sample>)>> {
    let path = reader.path.clone();
    let key = path.as_ref();
    let corrupt = |reason: &str| Error::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let rows: Vec<Range<usize>> = segments.iter().fold(Vec::new(), |mut out, s| {
        prune::push_range(&mut out, s.start..s.end);
        out
    });
    let Some(plan) = ReadPlan::of_rows(&rows, &rg_rows) else {
        return Ok(Vec::new());
    };
    let pq_err = |op| parquet_error(op, key);
    let mask = ProjectionMask::roots(meta.parquet_schema(), [col::TIMESTAMP, col::VALUE]);
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_projection(mask)
        .with_row_groups(plan.row_groups)
        .with_batch_size(BATCH_ROWS);
    if let Some(selection) = plan.selection {
        builder = builder.with_row_selection(selection);
    }
    let mut stream = builder.build().map_err(pq_err("open stream"))?;
    let range = query.range;
    let mut out: Vec<(u32, Vec<Sample>)> = Vec::new();
    // The segment the next row belongs to, and how many of its rows were read.
    let (mut seg, mut done) = (0usize, 0usize);
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        let ts = batch.column(0).as_primitive_opt::<TimestampMillisecondType>();
        let vs = batch.column(1).as_primitive_opt::<Float64Type>();
        let (ts, vs) = match (ts, vs) {
            (Some(t), Some(v)) if t.null_count() == 0 && v.null_count() == 0 => (t.values(), v.values()),
            _ => return Err(corrupt("timestamp/value columns have unexpected types or nulls")),
        };
        let (n, mut row) = (batch.num_rows(), 0);
        let mut added = 0;
        while row < n {
            let s = segments.get(seg).ok_or_else(|| corrupt("more rows than planned"))?;
            let take = (s.end - s.start - done).min(n - row);
            let (ts, vs) = (&ts[row..row + take], &vs[row..row + take]);
            if !matches!(out.last(), Some((id, _)) if *id == s.series) {
                out.push((s.series, Vec::with_capacity(s.end - s.start - done)));
            }
            let samples = &mut out.last_mut().expect("pushed").1;
            let before = samples.len();
            if ts.is_sorted() {
                let lo = ts.partition_point(|&t| t < range.start);
                let hi = ts.partition_point(|&t| t <= range.end).max(lo);
                samples.extend(ts[lo..hi].iter().zip(&vs[lo..hi]).map(|(&t, &v)| Sample::new(t, v)));
            } else {
                // Not our writer's order; every row still counts.
                let rows = ts.iter().zip(vs).filter(|(t, _)| range.contains(**t));
                samples.extend(rows.map(|(&t, &v)| Sample::new(t, v)));
            }
            added += samples.len() - before;
            (row, done) = (row + take, done + take);
            if done == s.end - s.start {
                (seg, done) = (seg + 1, 0);
            }
        }
        if added > 0 {
            query.count(added)?;
        }
    }
    // A series whose rows in range were all outside it adds nothing.
    out.retain(|(_, samples)| !samples.is_empty());
    Ok(out)
}

/// A file's footer (with its page index, when written) read as `schema`, from `cache` when it
/// holds it; a footer read from the store is added to `cache`.
async fn load_footer(
    reader: &mut ObjectReader,
    cache: Option<&MetadataCache>,
    file: &FileMeta,
    schema: SchemaRef,
) -> Result<ArrowReaderMetadata> {
    if let Some(m) = cache.and_then(|c| c.get(&file.key.id)) {
        return Ok(m);
    }
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .with_schema(schema);
    let m = ArrowReaderMetadata::load_async(reader, options)
        .await
        .map_err(|source| Error::Parquet {
            op: "read footer",
            key: file.path.to_string(),
            source,
        })?;
    if let Some(c) = cache {
        c.insert(file.key.id, m.clone());
    }
    Ok(m)
}

/// Reads one file of a table beside metrics (`histograms`, `exemplars`, `metadata`) as `schema`,
/// every column, skipping the row groups and pages [`prune::plan`] rules out for `range` and
/// `matchers` (by the `timestamp`, `metric` and `cluster` columns, where the table has them).
pub(crate) async fn read_table_file(
    store: Arc<dyn ObjectStore>,
    cache: Option<&MetadataCache>,
    file: &FileMeta,
    schema: SchemaRef,
    range: TimeRange,
    matchers: &[Matcher],
) -> Result<Vec<RecordBatch>> {
    let mut reader = ObjectReader {
        store,
        path: file.path.clone(),
        size: file.size,
    };
    let meta = load_footer(&mut reader, cache, file, schema).await?;
    let Some(plan) = prune::plan(&meta, &range, matchers) else {
        return Ok(Vec::new());
    };
    let pq_err = |op| parquet_error(op, file.path.as_ref());
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(plan.row_groups)
        .with_batch_size(BATCH_ROWS);
    if let Some(selection) = plan.selection {
        builder = builder.with_row_selection(selection);
    }
    let stream = builder.build().map_err(pq_err("open stream"))?;
    stream.try_collect().await.map_err(pq_err("decode"))
}

/// [`read_table_file`] over `files`, `concurrency` at a time, yielding each file's batches in
/// the order of `files` (write order, from the catalog), so later writes are seen later.
pub(crate) fn read_table_files<'a>(
    store: &'a Arc<dyn ObjectStore>,
    cache: Option<&'a MetadataCache>,
    files: Vec<Arc<FileMeta>>,
    schema: SchemaRef,
    range: TimeRange,
    matchers: &'a [Matcher],
    concurrency: usize,
) -> impl futures::Stream<Item = Result<(Arc<FileMeta>, Vec<RecordBatch>)>> + Send + 'a {
    futures::stream::iter(files)
        .map(move |file| {
            let (store, schema) = (store.clone(), schema.clone());
            async move {
                let batches = read_table_file(store, cache, &file, schema, range, matchers).await?;
                Ok((file, batches))
            }
        })
        .buffered(concurrency.max(1))
}

/// Wraps a decoder error of operation `op` on object `key`.
pub(crate) fn parquet_error<'k>(op: &'static str, key: &'k str) -> impl FnOnce(ParquetError) -> Error + 'k {
    move |source| Error::Parquet {
        op,
        key: key.to_string(),
        source,
    }
}

/// Ranged reads of one object for the Parquet decoder. The size comes from the catalog, so the
/// footer and page index usually arrive in a single ranged read of the file's tail.
#[derive(Clone, Debug)]
pub(crate) struct ObjectReader {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    pub size: u64,
}

fn store_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(store_err) }.boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(store_err) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_HINT_BYTES))
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
