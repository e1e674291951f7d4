//! [`ParquetSource`]: the [`Source`] over the metrics Parquet files in the object store.
//!
//! A read prunes files by key (time span, cluster), row groups by statistics and pages by the
//! page index ([`super::prune`]), then decodes only the projected columns. `cluster`, `metric`
//! and `labels` arrive as Arrow dictionaries whose values are shared by every batch of a column
//! chunk, so matchers run and label JSON is parsed once per distinct dictionary value, and the
//! per-row work is a key comparison plus a sample push.
//!
//! Within a file, rows come in runs of one series (the sort order), so a run is resolved once and
//! its samples in range are copied in one go. A big read of a query that touches fewer files than
//! there are cores is cut into parts ([`prune::ReadPlan::split`]) decoded in parallel and
//! stitched back in order.
//!
//! Files are merged in write order (UUID v7 in the key): when two files hold the same series
//! and timestamp, the later file's sample wins. Series are matched across files by the hash of
//! their label set, computed once per series when a file is decoded.
//!
//! Label names and values come from per-file listings (`read/label_cache.rs`): each file's
//! distinct labels are read once, then served from memory while the file stays cached.
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
use arrow_array::types::{Float64Type, Int32Type, TimestampMillisecondType};
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
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

use super::prune;
use super::{SelectRequest, Source};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::Table;
use crate::metadata::KnownMetadata;
use crate::schema::{self, col};
use crate::signals::{ExemplarSeries, MetricMetadata};
use crate::types::{self, Label, Labels, Matcher, Sample, Series, TimeRange, sort_dedup_samples};
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

#[path = "label_cache.rs"]
mod label_cache;

use label_cache::{FileLabels, LabelCache};

/// Parsed footers (with page indexes) of recently read files, keyed by file UUID, and the
/// files' label listings, keyed by object key.
#[derive(Debug)]
pub struct MetadataCache {
    capacity: usize,
    map: Mutex<HashMap<Uuid, ArrowReaderMetadata>>,
    labels: LabelCache,
}

impl MetadataCache {
    /// Keeps up to `capacity` footers, and label listings within a fixed memory budget (none
    /// when `capacity` is 0: caching is off).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: Mutex::new(HashMap::new()),
            labels: LabelCache::new(if capacity == 0 { 0 } else { LABEL_CACHE_BYTES }),
        }
    }

    fn get(&self, id: &Uuid) -> Option<ArrowReaderMetadata> {
        self.map.lock().get(id).cloned()
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

    /// Reads every matching series; without samples when `with_samples` is false.
    async fn scan(&self, req: &SelectRequest, with_samples: bool) -> Result<Merged> {
        Ok(self.scan_with(req, with_samples, None).await?.0)
    }

    /// Label names or values of matching series: from the files' label listings when the
    /// matchers allow it ([`Self::list_from_files`]), else from the label columns'
    /// dictionaries: each distinct label set is looked at once per file and no series is built.
    async fn list(&self, req: &SelectRequest, listing: Listing) -> Result<Vec<String>> {
        if let Some(found) = self.list_from_files(req, &listing).await? {
            return Ok(found);
        }
        let found = self.scan_with(req, false, Some(listing)).await?.1;
        let mut out: Vec<String> = found.into_iter().collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Answers a listing from each file's label listing (cached, or read once now) when every
    /// matcher is on `cluster` or on the listed label itself, and each file's rows are all or
    /// none in the matched clusters. `None`: the matchers need the series (the caller scans).
    /// As coarse in time as the files' key spans.
    async fn list_from_files(&self, req: &SelectRequest, listing: &Listing) -> Result<Option<Vec<String>>> {
        let own = match listing {
            Listing::Values(name) => Some(name.as_str()),
            Listing::Names | Listing::Index => None,
        };
        let (mut own_matchers, mut cluster_matchers) = (Vec::new(), Vec::new());
        for m in &req.matchers {
            if Some(m.name.as_str()) == own {
                own_matchers.push(m);
            } else if m.name == types::CLUSTER {
                cluster_matchers.push(m);
            } else {
                return Ok(None);
            }
        }
        let files = self.catalog.files(Table::Metrics, req.range, |c| {
            prune::cluster_may_match(c, &req.matchers)
        });
        let mut listings = futures::stream::iter(files)
            .map(|file| {
                let (store, cache) = (self.store.clone(), self.cache.clone());
                AbortOnDrop(tokio::spawn(file_labels(store, cache, file)))
            })
            .buffered(self.concurrency);
        let mut found: HashSet<String> = HashSet::new();
        while let Some(labels) = listings.next().await {
            let labels = labels?;
            match labels.clusters_match(&cluster_matchers) {
                Some(true) => {}
                Some(false) => continue,
                None => return Ok(None),
            }
            match own {
                Some(name) => labels.values_into(name, &own_matchers, &mut found),
                None => labels.names_into(&mut found),
            }
        }
        let mut out: Vec<String> = found.into_iter().collect();
        out.sort_unstable();
        Ok(Some(out))
    }

    async fn scan_with(
        &self,
        req: &SelectRequest,
        with_samples: bool,
        listing: Option<Listing>,
    ) -> Result<(Merged, HashSet<String>)> {
        let files = self.catalog.files(Table::Metrics, req.range, |c| {
            prune::cluster_may_match(c, &req.matchers)
        });
        // Each part decodes the dictionary pages of its row groups again, so files are cut only
        // when there are too few of them to keep every core busy.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max_parts = (2 * cores).div_ceil(files.len().max(1)).min(MAX_PARTS);
        let query = Arc::new(Query {
            matchers: req.matchers.clone(),
            range: req.range,
            with_samples,
            listing,
            samples: AtomicUsize::new(0),
            max_samples: self.max_samples,
            hasher: ahash::RandomState::new(),
            max_parts,
        });
        let mut scans = futures::stream::iter(files)
            .map(|file| {
                let (store, cache, query) = (self.store.clone(), self.cache.clone(), query.clone());
                AbortOnDrop(tokio::spawn(scan_file(store, cache, file, query)))
            })
            .buffered(self.concurrency);
        // `buffered` yields in file (write) order, so later files' samples are appended later.
        let mut merged = Merged::default();
        let mut listed: HashSet<String> = HashSet::new();
        let (mut rows, mut parsed) = (0, 0);
        while let Some(found) = scans.next().await {
            let found = found?;
            rows += found.planned_rows;
            parsed += found.parsed;
            if listed.is_empty() {
                listed = found.listed;
            } else {
                listed.extend(found.listed);
            }
            merged.add(found.series);
        }
        tracing::debug!(
            rows,
            parsed,
            series = merged.overlapping.len(),
            with_samples,
            "parquet scan"
        );
        Ok((merged, listed))
    }
}

/// Series in first-seen order, found again by label set through the hashes they carry (the
/// index holds positions, so it copies no labels and hashes no label set again).
#[derive(Debug, Default)]
struct SeriesList {
    series: Vec<FileSeries>,
    index: hashbrown::HashTable<usize>,
}

impl SeriesList {
    /// The position of the series with `labels`, whose hash is `hash`.
    fn find(&self, hash: u64, labels: &Labels) -> Option<usize> {
        self.index.find(hash, |&i| self.series[i].labels == *labels).copied()
    }

    /// Adds a series [`SeriesList::find`] did not find; returns its position.
    fn push(&mut self, found: FileSeries) -> usize {
        let (series, at) = (&self.series, self.series.len());
        self.index.insert_unique(found.hash, at, |&i| series[i].hash);
        self.series.push(found);
        at
    }
}

/// The series of a scan, merged across files.
#[derive(Debug, Default)]
struct Merged {
    list: SeriesList,
    /// Per series: files contributed samples that overlap in time, so they need sorting and
    /// deduplicating.
    overlapping: Vec<bool>,
}

impl Merged {
    fn add(&mut self, rows: FileRows) {
        for found in rows {
            match self.list.find(found.hash, &found.labels) {
                Some(i) => {
                    let into = &mut self.list.series[i].samples;
                    // Files of later hours (or later flushes) usually continue a series: only
                    // samples that do not start after the last one can need sorting.
                    if let (Some(last), Some(first)) = (into.last(), found.samples.first()) {
                        self.overlapping[i] |= first.timestamp <= last.timestamp;
                    }
                    into.extend(found.samples);
                }
                None => {
                    self.list.push(found);
                    self.overlapping.push(false);
                }
            }
        }
    }
}

#[async_trait]
impl Source for ParquetSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        let merged = self.scan(req, true).await?;
        Ok(merged
            .list
            .series
            .into_iter()
            .zip(merged.overlapping)
            .filter(|(s, _)| !s.samples.is_empty())
            .map(|(mut s, overlapping)| {
                if overlapping {
                    // Keeps the last-written sample per timestamp.
                    sort_dedup_samples(&mut s.samples);
                }
                Series::new(s.labels, s.samples)
            })
            .collect())
    }

    /// Answers from the label columns only: time is pruned by file, row-group and page
    /// statistics, so a series with a sample near (not in) the range may be included.
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        Ok(self
            .scan(req, false)
            .await?
            .list
            .series
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    /// As coarse in time as [`Source::series`] (file, row-group and page statistics).
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.list(req, Listing::Names).await
    }

    /// As coarse in time as [`Source::series`] (file, row-group and page statistics).
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.list(req, Listing::Values(name.to_string())).await
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

/// What a listing scan collects instead of series.
#[derive(Debug, Clone, PartialEq)]
enum Listing {
    Names,
    Values(String),
    /// Every label name with its values, and the cluster column's values (a file's listing).
    Index,
}

/// One request, shared by the per-file scans.
#[derive(Debug)]
struct Query {
    matchers: Vec<Matcher>,
    range: TimeRange,
    with_samples: bool,
    /// Collect label names or values of matching series instead of the series.
    listing: Option<Listing>,
    samples: AtomicUsize,
    max_samples: usize,
    /// Hashes label sets for every merge of this query.
    hasher: ahash::RandomState,
    /// Most parts one file's read is cut into.
    max_parts: usize,
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

/// One series found in a file, with its samples in range and the hash of its labels under the
/// query's hasher (computed once, reused by the per-file and cross-file merges).
#[derive(Debug, PartialEq)]
struct FileSeries {
    labels: Labels,
    samples: Vec<Sample>,
    hash: u64,
}

type FileRows = Vec<FileSeries>;

/// What one file contributed, with counters tests and tracing look at.
#[derive(Debug, Default)]
struct Scanned {
    series: FileRows,
    /// Rows the read plan selected (after pruning).
    planned_rows: usize,
    /// `labels` dictionary values parsed.
    parsed: usize,
    /// Label names or values found, for a listing.
    listed: HashSet<String>,
    /// The file's listing, for [`Listing::Index`].
    labels: Option<FileLabels>,
}

/// `file`'s label listing: from the cache, or read from the file's label columns (every row,
/// whatever the request's range) and cached.
async fn file_labels(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    file: Arc<FileMeta>,
) -> Result<Arc<FileLabels>> {
    let key = file.path.as_ref();
    if let Some(l) = cache.labels.get(key) {
        return Ok(l);
    }
    let query = Arc::new(Query {
        matchers: Vec::new(),
        range: TimeRange::ALL,
        with_samples: false,
        listing: Some(Listing::Index),
        samples: AtomicUsize::new(0),
        max_samples: usize::MAX,
        hasher: ahash::RandomState::new(),
        max_parts: 1,
    });
    let scanned = scan_file(store, cache.clone(), file.clone(), query).await?;
    let labels = Arc::new(scanned.labels.unwrap_or_default());
    cache.labels.insert(key, labels.clone());
    Ok(labels)
}

async fn scan_file(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetadataCache>,
    file: Arc<FileMeta>,
    query: Arc<Query>,
) -> Result<Scanned> {
    let mut reader = ObjectReader {
        store,
        path: file.path.clone(),
        size: file.size,
    };
    let meta = load_footer(&mut reader, Some(cache.as_ref()), &file, schema::metrics_schema()).await?;
    let Some(plan) = prune::plan(&meta, &query.range, &query.matchers) else {
        return Ok(Scanned::default());
    };
    let planned_rows = plan.rows;
    // A short query reads few files: cutting a big read into parts lets every core decode.
    let parts = if query.with_samples {
        (plan.rows / PART_ROWS).clamp(1, query.max_parts)
    } else {
        1
    };
    let mut scanned = if parts == 1 {
        scan_part(reader, meta, plan, query, file).await?
    } else {
        let rg_rows = |rg: usize| meta.metadata().row_group(rg).num_rows() as usize;
        let tasks: Vec<_> = plan
            .split(parts, rg_rows)
            .into_iter()
            .map(|part| {
                let (reader, meta, query, file) = (reader.clone(), meta.clone(), query.clone(), file.clone());
                AbortOnDrop(tokio::spawn(scan_part(reader, meta, part, query, file)))
            })
            .collect();
        let mut whole = Scanned::default();
        for part in futures::future::try_join_all(tasks).await? {
            whole.parsed += part.parsed;
            let mut series = part.series.into_iter();
            // Parts are consecutive in the file's (series, time) order: only a series cut at a
            // part boundary continues into the next part.
            if let (Some(last), Some(first)) = (whole.series.last_mut(), series.as_slice().first())
                && last.labels == first.labels
            {
                last.samples.extend(series.next().expect("first").samples);
            }
            whole.series.extend(series);
        }
        whole
    };
    scanned.planned_rows = planned_rows;
    Ok(scanned)
}

/// Decodes the rows of `plan` from one file.
async fn scan_part(
    reader: ObjectReader,
    meta: ArrowReaderMetadata,
    plan: prune::ReadPlan,
    query: Arc<Query>,
    file: Arc<FileMeta>,
) -> Result<Scanned> {
    let key = file.path.as_ref();
    let pq_err = |op| parquet_error(op, key);
    let columns: &[usize] = if query.with_samples {
        &[col::CLUSTER, col::METRIC, col::LABELS, col::TIMESTAMP, col::VALUE]
    } else {
        &[col::CLUSTER, col::METRIC, col::LABELS]
    };
    let mask = ProjectionMask::roots(meta.parquet_schema(), columns.iter().copied());
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_projection(mask)
        .with_row_groups(plan.row_groups)
        .with_batch_size(BATCH_ROWS);
    if let Some(selection) = plan.selection {
        builder = builder.with_row_selection(selection);
    }
    let mut stream = builder.build().map_err(pq_err("open stream"))?;
    let mut decoder = Decoder::new(&query, key);
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        decoder.push(&batch)?;
    }
    tracing::trace!(
        key,
        rows = plan.rows,
        series = decoder.out.series.len(),
        parsed = decoder.parsed,
        "scanned"
    );
    let labels =
        (query.listing == Some(Listing::Index)).then(|| FileLabels::new(decoder.index_values, decoder.index_clusters));
    Ok(Scanned {
        series: decoder.out.series,
        planned_rows: plan.rows,
        parsed: decoder.parsed,
        listed: decoder.listed,
        labels,
    })
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

/// Per-dictionary-value results, valid while batches keep sharing one dictionary.
#[derive(Debug)]
struct DictCache<T> {
    values: Option<StringArray>,
    entries: Vec<Option<T>>,
}

impl<T> DictCache<T> {
    fn new() -> Self {
        Self {
            values: None,
            entries: Vec::new(),
        }
    }

    /// Adopts `values`; true when they differ from the cached dictionary (entries reset).
    fn sync(&mut self, values: &StringArray) -> bool {
        if let Some(v) = &self.values
            && v.len() == values.len()
            && v.offsets().ptr_eq(values.offsets())
            && v.values().ptr_eq(values.values())
        {
            return false;
        }
        self.values = Some(values.clone());
        self.entries.clear();
        self.entries.resize_with(values.len(), || None);
        true
    }
}

/// What a `labels` dictionary value means for this query.
#[derive(Debug)]
enum LabelSet {
    Rejected,
    /// Parsed and accepted, not yet part of a series.
    Accepted(Labels),
    /// Moved into the series at this output slot (another metric or cluster with the same
    /// other labels copies them from there).
    Built(usize),
}

/// Turns batches of one file into series: each distinct (cluster, metric, labels) key triple is
/// resolved to a series once per dictionary, rows then only append samples.
struct Decoder<'q> {
    query: &'q Query,
    key: &'q str,
    cluster_matchers: Vec<&'q Matcher>,
    metric_matchers: Vec<&'q Matcher>,
    label_matchers: Vec<&'q Matcher>,
    clusters: DictCache<bool>,
    metrics: DictCache<bool>,
    labels: DictCache<LabelSet>,
    triples: HashMap<(i32, i32, i32), Option<usize>, ahash::RandomState>,
    /// Output slots, found by label set too: a series may span row groups, whose dictionaries
    /// differ.
    out: SeriesList,
    parsed: usize,
    listed: HashSet<String>,
    /// For [`Listing::Index`]: label name → values, and the `cluster` column's values.
    index_values: HashMap<String, HashSet<String>>,
    index_clusters: HashSet<String>,
}

impl<'q> Decoder<'q> {
    fn new(query: &'q Query, key: &'q str) -> Self {
        let by = |name: &str| query.matchers.iter().filter(|m| m.name == name).collect::<Vec<_>>();
        let label_matchers = query
            .matchers
            .iter()
            .filter(|m| m.name != types::CLUSTER && m.name != types::METRIC_NAME)
            .collect();
        Self {
            query,
            key,
            cluster_matchers: by(types::CLUSTER),
            metric_matchers: by(types::METRIC_NAME),
            label_matchers,
            clusters: DictCache::new(),
            metrics: DictCache::new(),
            labels: DictCache::new(),
            triples: HashMap::default(),
            out: SeriesList::default(),
            parsed: 0,
            listed: HashSet::new(),
            index_values: HashMap::new(),
            index_clusters: HashSet::new(),
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            key: self.key.to_string(),
            reason: reason.into(),
        }
    }

    fn dict<'b>(&self, batch: &'b RecordBatch, i: usize) -> Result<(&'b [i32], &'b StringArray)> {
        let d: &DictionaryArray<Int32Type> = batch
            .column(i)
            .as_dictionary_opt()
            .ok_or_else(|| self.corrupt(format!("column {i} is not a dictionary")))?;
        let values = d
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| self.corrupt("dictionary of non-strings"))?;
        if d.keys().null_count() > 0 || d.keys().values().iter().any(|&k| k < 0 || k as usize >= values.len()) {
            return Err(self.corrupt("null or out-of-range dictionary key"));
        }
        Ok((d.keys().values(), values))
    }

    fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let (ck, cv) = self.dict(batch, 0)?;
        let (mk, mv) = self.dict(batch, 1)?;
        let (lk, lv) = self.dict(batch, 2)?;
        let changed = self.clusters.sync(cv) | self.metrics.sync(mv) | self.labels.sync(lv);
        if changed {
            self.triples.clear();
        }
        let samples = if self.query.with_samples {
            let ts = batch.column(3).as_primitive_opt::<TimestampMillisecondType>();
            let vs = batch.column(4).as_primitive_opt::<Float64Type>();
            match (ts, vs) {
                (Some(t), Some(v)) if t.null_count() == 0 && v.null_count() == 0 => Some((t.values(), v.values())),
                _ => return Err(self.corrupt("timestamp/value columns have unexpected types or nulls")),
            }
        } else {
            None
        };

        let range = self.query.range;
        let mut added = 0usize;
        let (n, mut row) = (batch.num_rows(), 0);
        // Rows come in runs of one series (the file's sort order): resolve once per run, then
        // copy the run's samples in range in one go.
        while row < n {
            let triple = (ck[row], mk[row], lk[row]);
            let mut end = row + 1;
            while end < n && (ck[end], mk[end], lk[end]) == triple {
                end += 1;
            }
            let slot = match self.triples.get(&triple) {
                Some(s) => *s,
                None => {
                    let s = self.resolve(triple, cv, mv, lv)?;
                    self.triples.insert(triple, s);
                    s
                }
            };
            if let (Some(slot), Some((ts, vs))) = (slot, samples) {
                let (ts, vs) = (&ts[row..end], &vs[row..end]);
                let out = &mut self.out.series[slot].samples;
                let before = out.len();
                if ts.is_sorted() {
                    let lo = ts.partition_point(|&t| t < range.start);
                    let hi = ts.partition_point(|&t| t <= range.end).max(lo);
                    out.extend(ts[lo..hi].iter().zip(&vs[lo..hi]).map(|(&t, &v)| Sample::new(t, v)));
                } else {
                    // Not our writer's order; every row still counts.
                    let rows = ts.iter().zip(vs).filter(|(t, _)| range.contains(**t));
                    out.extend(rows.map(|(&t, &v)| Sample::new(t, v)));
                }
                added += out.len() - before;
            }
            row = end;
        }
        if added > 0 {
            let total = self.query.samples.fetch_add(added, Ordering::Relaxed) + added;
            if total > self.query.max_samples {
                return Err(Error::TooManySamples {
                    limit: self.query.max_samples,
                });
            }
        }
        Ok(())
    }

    /// Runs the matchers on one key triple; returns its output slot when they all accept it.
    fn resolve(
        &mut self,
        (c, m, l): (i32, i32, i32),
        cv: &StringArray,
        mv: &StringArray,
        lv: &StringArray,
    ) -> Result<Option<usize>> {
        let (c, m, l) = (c as usize, m as usize, l as usize);
        let cluster = cv.value(c);
        let metric = mv.value(m);
        let cms = &self.cluster_matchers;
        if !*self.clusters.entries[c].get_or_insert_with(|| cms.iter().all(|x| x.matches(cluster))) {
            return Ok(None);
        }
        let mms = &self.metric_matchers;
        if !*self.metrics.entries[m].get_or_insert_with(|| mms.iter().all(|x| x.matches(metric))) {
            return Ok(None);
        }
        if let Some(Listing::Values(name)) = &self.query.listing
            && self.label_matchers.is_empty()
            && (name == types::METRIC_NAME || name == types::CLUSTER)
        {
            // The answer is in a column of its own: the labels JSON need not be parsed.
            let v = if name == types::METRIC_NAME { metric } else { cluster };
            insert_new(&mut self.listed, v);
            return Ok(None);
        }
        if self.labels.entries[l].is_none() {
            let text = lv.value(l);
            let parsed = schema::parse_labels_json(text).map_err(|e| self.corrupt(format!("labels {text:?}: {e}")))?;
            self.parsed += 1;
            let rest = Labels::new(parsed);
            let ok = self.label_matchers.iter().all(|x| x.matches_labels(&rest));
            self.labels.entries[l] = Some(if ok {
                LabelSet::Accepted(rest)
            } else {
                LabelSet::Rejected
            });
        }
        if let Some(listing) = &self.query.listing {
            // Listings never build series, so an accepted label set is still here.
            let Some(LabelSet::Accepted(rest)) = &self.labels.entries[l] else {
                return Ok(None);
            };
            match listing {
                Listing::Index => {
                    if !self.index_clusters.contains(cluster) {
                        self.index_clusters.insert(cluster.to_string());
                    }
                    let named = [(types::METRIC_NAME, metric), (types::CLUSTER, cluster)];
                    for (name, v) in rest.iter().map(|l| (l.name.as_str(), l.value.as_str())).chain(named) {
                        match self.index_values.get_mut(name) {
                            Some(values) => insert_new(values, v),
                            None if !v.is_empty() => {
                                self.index_values
                                    .insert(name.to_string(), HashSet::from([v.to_string()]));
                            }
                            None => {}
                        }
                    }
                }
                Listing::Names => {
                    for l in rest {
                        insert_new(&mut self.listed, &l.name);
                    }
                    for (name, v) in [(types::METRIC_NAME, metric), (types::CLUSTER, cluster)] {
                        if !v.is_empty() {
                            insert_new(&mut self.listed, name);
                        }
                    }
                }
                Listing::Values(name) => {
                    let v = match name.as_str() {
                        types::METRIC_NAME => metric,
                        types::CLUSTER => cluster,
                        other => rest.get(other).unwrap_or(""),
                    };
                    insert_new(&mut self.listed, v);
                }
            }
            return Ok(None);
        }
        let mut full: Vec<Label> = match self.labels.entries[l].take() {
            Some(LabelSet::Accepted(rest)) => rest.into_vec(),
            Some(LabelSet::Built(slot)) => {
                self.labels.entries[l] = Some(LabelSet::Built(slot));
                let own = |x: &&Label| x.name != types::METRIC_NAME && x.name != types::CLUSTER;
                self.out.series[slot].labels.iter().filter(own).cloned().collect()
            }
            Some(LabelSet::Rejected) | None => {
                self.labels.entries[l] = Some(LabelSet::Rejected);
                return Ok(None);
            }
        };
        full.push(Label::new(types::METRIC_NAME, metric));
        full.push(Label::new(types::CLUSTER, cluster));
        let full = Labels::new(full);
        let hash = self.query.hasher.hash_one(&full);
        let slot = match self.out.find(hash, &full) {
            Some(s) => s,
            None => self.out.push(FileSeries {
                labels: full,
                samples: Vec::new(),
                hash,
            }),
        };
        if self.labels.entries[l].is_none() {
            self.labels.entries[l] = Some(LabelSet::Built(slot));
        }
        Ok(Some(slot))
    }
}

/// Adds `v` (unless empty: an empty value is no label) without allocating when already present.
fn insert_new(set: &mut HashSet<String>, v: &str) {
    if !v.is_empty() && !set.contains(v) {
        set.insert(v.to_string());
    }
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
