//! The `metrics` table: float samples, one row per sample, one file per (UTC hour, cluster);
//! schema in [`crate::schema`], encoding in [`crate::writer`]. [`MetricsReader`] reads it
//! through the [`Source`] contract.
//!
//! Every file's series are known from its series table (`series_table.rs`): decoded once
//! from the file's label columns, then kept in memory within a byte budget. A select runs its
//! matchers on the table, keeps the runs of matching series whose time span meets the range and
//! whose pages the page index does not rule out ([`crate::parquet_io::plan`]), and decodes only
//! the `timestamp` and `value` columns of those rows (`scan.rs`). `/api/v1/series` and label
//! listings answer from the tables without reading the files again.
//!
//! A big read of a query that touches fewer files than there are cores is cut into parts decoded
//! in parallel and stitched back in order. A read covering a file only in part (a window's
//! edge, which a rule reads again every minute) keeps the selector's samples of the whole file
//! in memory, within `storage.edge_cache_bytes` (`edges.rs`). A window read at a rollup
//! resolution takes the raw files it holds whole as their buckets, summarised once per (file,
//! selector, resolution) and kept within the same budget (`summaries.rs`).
//!
//! Files are merged in write order (UUID v7 in the key): when two files hold the same series
//! and timestamp, the later file's sample wins. Series are matched across files by their
//! [`crate::types::SeriesId`], computed once per series when its table is built.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use futures::{Stream, StreamExt};
use object_store::ObjectStore;
use parquet::file::properties::WriterProperties;

use super::{FilePlan, ParquetTable, ReadContext};
use crate::catalog::{Catalog, FileMeta, NewestByDay};
use crate::layout::{FileKey, Table};
use crate::parquet_io::plan::cluster_may_match;
use crate::parquet_io::{AbortOnDrop, FooterCache};
use crate::read::{SelectRequest, SeriesSize, Source};
use crate::rollup::{BucketSeries, Covered, Resolution, SeriesPieces};
use crate::types::{self, Labels, Series, TimeRange, sort_dedup_samples};
use crate::writer::{MetricsPlan, WriterOptions};
use crate::{Result, schema};

/// A file read of more rows than this is cut into parts decoded in parallel, when the query reads
/// too few files to keep the cores busy (four pages of the default 65,536 rows: a cut inside a
/// page costs at most a quarter more of decoding)...
const PART_ROWS: usize = 256 << 10;
/// ...into at most this many parts.
const MAX_PARTS: usize = 8;
/// Memory for per-file label listings (a 30,000-series file lists in well under 1 MiB).
const LABEL_CACHE_BYTES: usize = 64 << 20;
/// Default memory for series tables (a 30,000-series file's table takes about 20 MiB).
pub(crate) const SERIES_CACHE_BYTES: usize = 1 << 30;

mod edges;
mod listing;
mod scan;
mod series_table;
mod summaries;

pub use super::file_cache::FileCacheStats;
use super::file_cache::{FileCache, Weighed};

use super::series::{Keyed, SeriesList};
use listing::FileLabels;
use scan::{FileSeries, Query, file_labels, file_table, scan_file};
use series_table::{Interner, SeriesTable};

impl Weighed for series_table::SeriesTable {
    fn bytes(&self) -> usize {
        self.bytes()
    }
}

impl Weighed for listing::FileLabels {
    fn bytes(&self) -> usize {
        self.bytes()
    }
}

/// What the metrics reader derives from files and keeps: the shared footer cache (every
/// table's), and, keyed by object key, the files' series tables and label listings.
#[derive(Debug)]
pub(crate) struct MetricsCache {
    footers: Arc<FooterCache>,
    labels: FileCache<FileLabels>,
    tables: FileCache<SeriesTable>,
    edges: FileCache<edges::EdgeSamples>,
    summaries: FileCache<summaries::FileBuckets>,
    interner: Interner,
}

impl MetricsCache {
    /// Its own footer cache of up to `capacity` footers, label listings within a fixed memory
    /// budget and series tables within [`SERIES_CACHE_BYTES`] (nothing when `capacity` is 0:
    /// caching is off), and no window edges (reads prune as they would without a cache).
    #[cfg(test)]
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_footers(
            Arc::new(FooterCache::new(capacity)),
            capacity > 0,
            SERIES_CACHE_BYTES,
            0,
        )
    }

    /// Shares `footers`; keeps series tables within `series_bytes` and window edges within
    /// `edge_bytes` (no derived entry unless `on`).
    pub(crate) fn with_footers(footers: Arc<FooterCache>, on: bool, series_bytes: usize, edge_bytes: usize) -> Self {
        let on = |bytes| if on { bytes } else { 0 };
        Self {
            footers,
            labels: FileCache::new(on(LABEL_CACHE_BYTES)),
            tables: FileCache::new(on(series_bytes)),
            // Half for edges, half for whole files' summaries: both serve window reads.
            edges: FileCache::new(on(edge_bytes / 2)),
            summaries: FileCache::new(on(edge_bytes / 2)),
            interner: Interner::default(),
        }
    }

    /// What the caches hold.
    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            footers: self.footers.len(),
            series_tables: self.tables.stats(),
            label_listings: self.labels.stats(),
            window_edges: self.edges.stats(),
            window_summaries: self.summaries.stats(),
            interned_label_sets: self.interner.len(),
            rollup_days: FileCacheStats::default(),
            rollup_rows: FileCacheStats::default(),
        }
    }
}

/// What the read caches hold, for the server's `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Parquet footers (with page indexes) kept, up to `storage.metadata_cache_files`.
    pub footers: usize,
    /// Series tables, within `storage.series_cache_bytes`.
    pub series_tables: FileCacheStats,
    /// Label listings, within a fixed budget.
    pub label_listings: FileCacheStats,
    /// Raw samples of files reads covered in part, within half of `storage.edge_cache_bytes`.
    pub window_edges: FileCacheStats,
    /// Whole raw files summarised into buckets for window reads, within the other half.
    pub window_summaries: FileCacheStats,
    /// Label sets the interner knows (live or not yet swept).
    pub interned_label_sets: usize,
    /// Rollup day summaries, within `storage.rollup_cache_bytes`.
    pub rollup_days: FileCacheStats,
    /// Whole rollup files' rows kept briefly for a range query's other selectors, within an
    /// eighth of `storage.rollup_cache_bytes`.
    pub rollup_rows: FileCacheStats,
}

/// The [`Source`] over the metrics table: every file in its catalog (including files written
/// later). Holds no exemplars or metadata (those tables have their own readers).
#[derive(Debug)]
pub(crate) struct MetricsReader {
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    cache: Arc<MetricsCache>,
    concurrency: usize,
    max_samples: usize,
}

impl MetricsReader {
    /// Reads `catalog`'s files from `store`, `concurrency` at a time; a select of more than
    /// `max_samples` samples fails.
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        catalog: Arc<Catalog>,
        cache: Arc<MetricsCache>,
        concurrency: usize,
        max_samples: usize,
    ) -> Self {
        Self {
            store,
            catalog,
            cache,
            concurrency: concurrency.max(1),
            max_samples,
        }
    }

    /// The metrics files the key does not rule out for `req`, in write order.
    pub(crate) fn files(&self, req: &SelectRequest) -> Vec<Arc<FileMeta>> {
        self.catalog
            .files(Table::Metrics, req.range, |c| cluster_may_match(c, &req.matchers))
    }

    /// The newest raw file id of each (cluster, UTC day) for the days starting in `days`.
    pub(crate) fn newest_by_day(&self, days: TimeRange) -> NewestByDay {
        self.catalog.newest_by_day(Table::Metrics, days)
    }

    /// [`Source::select`] over `files` (the files `req` may read, in write order).
    async fn select_files(&self, files: Vec<Arc<FileMeta>>, req: &SelectRequest) -> Result<Vec<Series>> {
        // Each part decodes the pages at its cuts again, so files are cut only when there are
        // too few of them to keep every core busy.
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

    /// For a window read at `res` ([`crate::read::Source::select_window`]): the files `req`
    /// reads that lie wholly in its range and alone in their cluster's span, as each series'
    /// bucket pieces (from their cached summaries, `summaries.rs`) with the spans they cover;
    /// then the samples of the other files, as [`Source::select`] answers them.
    pub(crate) async fn select_summarised(
        &self,
        req: &SelectRequest,
        res: Resolution,
    ) -> Result<(Vec<BucketSeries>, Vec<Covered>, Vec<Series>)> {
        let (whole, rest) = summaries::partition(self.files(req), req.range);
        let covered: Vec<Covered> = whole.iter().map(|f| summaries::covered(f)).collect();
        // A series' pieces come from each file of its cluster: room for them all at once.
        let clusters = covered.iter().map(|c| c.cluster.as_str()).collect::<HashSet<_>>().len();
        let files_per_cluster = whole.len().div_ceil(clusters.max(1));
        let matchers = Arc::new(req.matchers.clone());
        let mut reads = self.per_file_cached(
            whole,
            |cache, file| cache.summaries.get(&summaries::key(file, &matchers, res)),
            {
                let matchers = matchers.clone();
                move |store, cache, file| summaries::file_buckets(store, cache, file, matchers.clone(), res)
            },
        );
        let mut pieces = SeriesPieces::default();
        while let Some(file) = reads.next().await {
            for (id, labels, buckets) in file?.series() {
                pieces.add(id, labels, buckets.iter().copied(), buckets.len() * files_per_cluster);
            }
        }
        let raw = self.select_files(rest, req).await?;
        Ok((pieces.into_series(), covered, raw))
    }

    /// Runs `task` on every one of `files`, `concurrency` at a time, each on its own task;
    /// yields in the order of `files`.
    fn per_file<T, F, Fut>(&self, files: Vec<Arc<FileMeta>>, task: F) -> impl Stream<Item = Result<T>> + use<T, F, Fut>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn ObjectStore>, Arc<MetricsCache>, Arc<FileMeta>) -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.per_file_cached(files, |_: &MetricsCache, _: &FileMeta| None, task)
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
        C: Fn(&MetricsCache, &FileMeta) -> Option<T> + Send,
        F: Fn(Arc<dyn ObjectStore>, Arc<MetricsCache>, Arc<FileMeta>) -> Fut + Send,
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
                None => found.extend(labels.iter().map(|l| l.name)),
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
        let out = crate::read::sorted_union(lists)
            .into_iter()
            .map(str::to_string)
            .collect();
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
impl Source for MetricsReader {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.select_files(self.files(req), req).await
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
}

impl FilePlan for MetricsPlan<'_> {
    fn files(&self) -> usize {
        self.groups().len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, arrow_array::RecordBatch)> {
        let group = &self.groups()[i];
        Ok((self.file_key(group)?, self.record_batch(group, 0..usize::MAX)?))
    }

    /// Every metrics file: a flush's hour of a cluster can hold millions of rows.
    fn parts(&self, i: usize) -> Option<Result<(FileKey, usize)>> {
        let group = &self.groups()[i];
        Some(self.file_key(group).map(|key| (key, group.rows())))
    }

    fn encode_part(&self, i: usize, rows: std::ops::Range<usize>) -> Result<arrow_array::RecordBatch> {
        self.record_batch(&self.groups()[i], rows)
    }
}

/// The metrics table.
#[derive(Debug)]
pub(crate) struct Metrics;

impl ParquetTable for Metrics {
    const KIND: Table = Table::Metrics;
    const IDENTITY: &'static [&'static str] = &[
        crate::schema::CLUSTER,
        crate::schema::METRIC,
        crate::schema::LABELS,
        crate::schema::TIMESTAMP,
    ];
    type Input = [Series];
    type Plan<'a> = MetricsPlan<'a>;
    type Reader = MetricsReader;

    fn schema() -> SchemaRef {
        schema::metrics_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        writer.properties()
    }

    fn plan(input: &[Series]) -> Result<MetricsPlan<'_>> {
        MetricsPlan::new(input.iter().map(|s| s as &dyn crate::writer::SeriesInput))
    }

    fn reader(ctx: ReadContext) -> MetricsReader {
        MetricsReader::new(
            ctx.io.store,
            ctx.catalog,
            ctx.metrics_cache,
            ctx.io.concurrency,
            ctx.max_rows,
        )
    }
}

#[cfg(test)]
mod tests;
