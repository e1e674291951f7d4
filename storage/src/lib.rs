//! Tributary's stored format and everything that reads it back.
//!
//! Owns: the domain types shared by ingest and query ([`types`], [`signals`]), the read
//! contracts ([`read::Source`], [`read::LogSource`]), the object-store key layout ([`layout`])
//! and the Parquet tables: their schemas, how they are written and how they are read back.
//!
//! Must not: know any wire protocol (no `proto` dependency), speak HTTP, or evaluate PromQL.
//! `ingest` writes through this crate; `query` reads through [`read::Source`] and
//! [`read::LogSource`].
//!
//! # Rooms
//! - [`Storage`] (here): the facade. [`Storage::open`] builds the object store from
//!   [`StorageConfig`] and loads the manifest into the catalogs; every write goes through one
//!   generic write path (the table's plan, encode off the runtime, upload) into a
//!   [`Transaction`], whose commit makes its files live in one manifest version (so a reader
//!   never sees a file that isn't fully stored, and a flush's files become live together with
//!   the WAL mark they cover); [`Storage::source`] and [`Storage::log_source`] hand out the
//!   readers.
//! - `manifest`: which files are live, as a log of versions in the object store (changes,
//!   checkpoints, conditional creates); the on-disk contract and its protocol are documented
//!   there. [`compactor`]: rounds of retention, merging, rollups and deletion, one compactor
//!   at a time (a lease in the object store).
//! - `table`: the table abstraction (`ParquetTable`: schema, partitioning, encode, reader) and
//!   the tables, siblings that never import one another: `metrics`, `logs`, `histograms`,
//!   `exemplars`, `metadata`, `spans`, plus `series`, the kit the series-keyed tables share.
//! - `parquet_io`: the one way Parquet is read from the object store (ranged reads, one footer
//!   cache sized by `storage.metadata_cache_files` for every table, row-group and page planning).
//! - `source`: the metrics, exemplars and metadata readers composed into one [`read::Source`].
//! - [`read`]: the read contracts, with what their answers are made of that every source
//!   shares (log volume sums; log patterns: Drain clustering, the level rule and the chunked
//!   scan, so a file summary written at flush and a read of the head cluster alike);
//!   [`layout`]: object keys, built and parsed only there;
//!   `catalog`: the in-memory file list per table; `schema`: the metrics schema (whose first
//!   five columns every series-keyed table shares); `writer`: writer options, the Parquet
//!   encoder and the metrics file plan, over [`SeriesInput`] (series whose samples the plan
//!   asks for a file part at a time: a flush hands it the head's compressed series); `store`: URL → object store, metered by request class.
//! - [`election`]: HA-pair elections (which replica of a cluster's Prometheus pair is
//!   accepted), one object per term under `_ha/`, changed by conditional creates; the on-disk
//!   contract and its protocol are documented there. `ingest` decides and caches.
//! - [`auth`]: the token table both tiers consult (`[auth]`, the token file re-read on
//!   change, the `Authorization` parser); [`scope`]: cluster globs (one `glob` for retention
//!   rules and token scopes) and the `cluster=~` matcher a read scope adds to every selection.
//! - [`remote`]: the internal read API's wire format (how a query process reads an ingester's
//!   head through the same contracts): calls, answers as Arrow IPC streams or JSON, both ends'
//!   encoders and decoders; no HTTP (the ingester serves it, the querier posts it).
//! - [`rollup`]: the bucket convention and bucket arithmetic of the rollup tables
//!   (`table::rollups`: `metrics_5m`, `metrics_1h`, `metrics_1d`) that [`read::Source::select_buckets`] serves
//!   (and [`read::Source::select_window`], whole days as one summary each).
//! - [`xor_chunk`]: Prometheus's XOR chunk encoding of samples, the head's compressed form and
//!   remote-read's wire form (one encoder and reader for both).
//! - [`test_util`] (feature `test-util`): the reference sources (`MemSource`, `MemLogSource`)
//!   and the conformance suites every implementation of a read contract must pass.
//!
//! Files are immutable and never rewritten. The same rows stored twice (files of several
//! ingesters overlapping) are harmless because every reader defines which copy wins (samples:
//! the later file's) or returns equal records once (logs, exemplars, metadata), and compaction
//! keeps exactly that copy ([`table`]'s `IDENTITY` columns).
//!
//! # Adding a table
//! 1. Add a variant to [`layout::Table`] (its key prefix).
//! 2. Write `table/<name>.rs`: its schema (documented as an on-disk contract), a
//!    `ParquetTable` impl (properties, identity columns, plan: rows → one file per hour and
//!    cluster, encode: rows → `RecordBatch`; series-keyed rows get all of this from
//!    `table::series`) and a reader that reads through `parquet_io`; add its `pub mod` line in
//!    `table.rs`.
//! 3. Add its catalog to `Catalogs`, a one-line `write_<name>` (`self.stage::<T>(rows)`) to
//!    [`Transaction`], and one `merge_table::<T>` line to the compactor's round.

pub mod auth;
pub(crate) mod catalog;
pub mod compactor;
pub mod config;
pub mod election;
pub mod error;
pub mod layout;
pub(crate) mod manifest;
pub(crate) mod parquet_io;
pub mod read;
pub mod remote;
pub mod rollup;
pub(crate) mod schema;
pub mod scope;
pub mod signals;
pub(crate) mod source;
pub(crate) mod store;
pub mod table;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod types;
pub(crate) mod writer;
pub mod xor_chunk;

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

pub use catalog::CatalogStats;
pub use compactor::{CompactionReport, Compactor};
pub use config::StorageConfig;
pub use error::{Error, Result};
pub use manifest::WriterMark;
pub use store::metered::RequestCounts;
pub use table::metrics::{CacheStats, FileCacheStats};
pub use writer::SeriesInput;

use arrow_array::RecordBatch;
use catalog::{Catalog, FileMeta};
use layout::{FileKey, Table};
use manifest::{Change, CommitError, Manifest, ManifestStore};
use parquet::file::properties::WriterProperties;
use parquet_io::{FooterCache, ParquetIo};
use read::{LogSource, Source, TraceSource};
use signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, Span};
use source::ParquetSource;
use table::exemplars::Exemplars;
use table::histograms::Histograms;
use table::logs::Logs;
use table::metadata::Metadata;
use table::metrics::{Metrics, MetricsCache};
use table::rollups::{FiveMinutes, OneDay, OneHour, Rollups};
use table::spans::Spans;
use table::{FilePlan, ParquetTable, ReadContext};
use types::Series;
use writer::WriterOptions;

/// Part size for multipart uploads (S3 needs at least 5 MiB per part but the last).
const MULTIPART_PART_BYTES: usize = 16 << 20;
/// Parts of one multipart upload in flight at once.
const MULTIPART_IN_FLIGHT: usize = 4;
/// Files one write uploads at once. It encodes one file at a time (a file built in parts already
/// keeps two threads busy: one builds the next part while the other encodes), so at most this
/// many encoded files wait for their uploads while the next is encoded.
///
/// Why one file at a time: two files encoded at once were no faster on two cores, and their
/// short-lived buffers, freed on other threads than those that took them, held the all-in-one
/// process's memory through a flush 55–70 MiB higher (BENCHMARKS.md, "Memory through a
/// flush").
const WRITE_CONCURRENCY: usize = 2;
/// Rows of one part of a file built in parts (see [`table::FilePlan::parts`]): a metrics part's
/// Arrow columns are about 1.2 MiB, and up to three parts of the file being encoded are held at
/// once (one built, one queued, one encoded).
const WRITE_PART_ROWS: usize = 1 << 15;

/// One file's rows for [`Storage::store_files`]: built whole, or in parts (file `file` of the
/// write, `rows` rows, each part built by the write's [`PartFn`]). An index, not a borrowed
/// closure: a stream item holding a lifetime makes the write's future not provably `Send`.
enum FileRows {
    Whole(RecordBatch),
    Parts { file: usize, rows: usize },
}

/// Builds rows `range` of file `file` of a write built in parts ([`table::FilePlan::encode_part`]).
type PartFn<'a> = dyn Fn(usize, std::ops::Range<usize>) -> Result<RecordBatch> + Send + Sync + 'a;

/// What a `write_*` stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Object keys of the new files.
    pub files: Vec<String>,
    /// Rows written (samples, records, exemplars, entries).
    pub rows: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// One catalog per table.
#[derive(Debug)]
struct Catalogs {
    metrics: Arc<Catalog>,
    logs: Arc<Catalog>,
    histograms: Arc<Catalog>,
    exemplars: Arc<Catalog>,
    metadata: Arc<Catalog>,
    metrics_5m: Arc<Catalog>,
    metrics_1h: Arc<Catalog>,
    metrics_1d: Arc<Catalog>,
    spans: Arc<Catalog>,
}

impl Catalogs {
    fn new() -> Self {
        let empty = || Arc::new(Catalog::new());
        Self {
            metrics: empty(),
            logs: empty(),
            histograms: empty(),
            exemplars: empty(),
            metadata: empty(),
            metrics_5m: empty(),
            metrics_1h: empty(),
            metrics_1d: empty(),
            spans: empty(),
        }
    }

    /// Makes `manifest`'s live files every table's file set; returns how many are new.
    fn install(&self, manifest: &Manifest) -> usize {
        let mut by_table: std::collections::HashMap<Table, Vec<FileMeta>> = Default::default();
        for f in manifest.files() {
            by_table.entry(f.key.table).or_default().push(f);
        }
        self.all()
            .into_iter()
            .map(|(t, c)| c.replace(by_table.remove(&t).unwrap_or_default()))
            .sum()
    }

    fn get(&self, table: Table) -> &Arc<Catalog> {
        match table {
            Table::Metrics => &self.metrics,
            Table::Logs => &self.logs,
            Table::Histograms => &self.histograms,
            Table::Exemplars => &self.exemplars,
            Table::Metadata => &self.metadata,
            Table::Metrics5m => &self.metrics_5m,
            Table::Metrics1h => &self.metrics_1h,
            Table::Metrics1d => &self.metrics_1d,
            Table::Spans => &self.spans,
        }
    }

    fn all(&self) -> [(Table, &Arc<Catalog>); 9] {
        Table::ALL.map(|t| (t, self.get(t)))
    }
}

/// The storage facade: object store, catalogs, writer and readers.
#[derive(Debug)]
pub struct Storage {
    io: ParquetIo,
    manifest: ManifestStore,
    catalogs: Catalogs,
    metrics_cache: Arc<MetricsCache>,
    rollup_days: Arc<table::rollups::DayCache>,
    log_summaries: Arc<table::logs::SummaryCache>,
    trace_blooms: Arc<table::spans::blooms::BloomCache>,
    writer: WriterOptions,
    multipart_threshold: usize,
    max_select_samples: usize,
    requests: Arc<store::metered::RequestCounters>,
}

impl Storage {
    /// Opens the configured store (creating a local root if needed) and loads the newest
    /// manifest into the catalogs (creating it from a listing on first use).
    pub async fn open(cfg: &StorageConfig, data_dir: &FsPath) -> Result<Arc<Storage>> {
        let (store, requests) = store::open_store(cfg, data_dir)?;
        let writer = WriterOptions::from_config(cfg);
        writer.properties()?; // reject a bad zstd level at startup, not at the first flush
        let manifest = ManifestStore::open(store.clone()).await?;
        let catalogs = Catalogs::new();
        catalogs.install(&manifest.current());
        let stats = catalogs.metrics.stats();
        tracing::info!(
            manifest_version = manifest.current().version,
            files = stats.files,
            rows = stats.rows,
            bytes = stats.bytes,
            "storage catalog loaded"
        );
        let footers = Arc::new(FooterCache::new(cfg.metadata_cache_files));
        Ok(Arc::new(Storage {
            metrics_cache: Arc::new(MetricsCache::with_footers(
                footers.clone(),
                cfg.metadata_cache_files > 0,
                cfg.series_cache_bytes,
                cfg.edge_cache_bytes,
            )),
            rollup_days: Arc::new(table::rollups::DayCache::new(cfg.rollup_cache_bytes)),
            log_summaries: Arc::new(table::logs::SummaryCache::new()),
            trace_blooms: Arc::new(table::spans::blooms::BloomCache::new(cfg.trace_bloom_cache_bytes)),
            io: ParquetIo::new(store, footers, cfg.read_concurrency),
            manifest,
            catalogs,
            writer,
            multipart_threshold: cfg.multipart_threshold_bytes.max(1),
            max_select_samples: cfg.max_select_samples,
            requests,
        }))
    }

    /// The HA-pair elections in this store.
    pub fn elections(&self) -> election::Elections {
        election::Elections::new(self.io.store.clone())
    }

    /// Starts a write that makes its files live together, in one manifest commit.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            storage: self,
            staged: Vec::new(),
        }
    }

    /// Writes these series and commits them ([`Transaction::write_metrics`]); returns once
    /// they are visible to readers.
    pub async fn write_metrics(&self, series: &[Series]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_metrics(series).await?;
        tx.commit(None).await
    }

    /// Writes log records and commits them ([`Transaction::write_logs`]).
    pub async fn write_logs(&self, records: &[LogRecord]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_logs(records).await?;
        tx.commit(None).await
    }

    /// Writes spans and commits them ([`Transaction::write_spans`]).
    pub async fn write_spans(&self, spans: &[Span]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_spans(spans).await?;
        tx.commit(None).await
    }

    /// Writes native-histogram series and commits them ([`Transaction::write_histograms`]).
    pub async fn write_histograms(&self, series: &[HistogramSeries]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_histograms(series).await?;
        tx.commit(None).await
    }

    /// Writes exemplar series and commits them ([`Transaction::write_exemplars`]).
    pub async fn write_exemplars(&self, series: &[ExemplarSeries]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_exemplars(series).await?;
        tx.commit(None).await
    }

    /// Writes metadata entries and commits them ([`Transaction::write_metadata`]).
    pub async fn write_metadata(&self, metadata: &[MetricMetadata]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_metadata(metadata).await?;
        tx.commit(None).await
    }

    /// How far `writer`'s WAL is published (`None`: nothing it wrote was ever committed), as of
    /// the newest manifest this process knows. An ingester replays only segments at or above it.
    pub fn writer_mark(&self, writer: &str) -> Option<WriterMark> {
        self.manifest.current().writers.get(writer).copied()
    }

    /// The newest manifest version this process knows.
    pub fn manifest_version(&self) -> u64 {
        self.manifest.current().version
    }

    /// Writes the rollups of `series` at `resolution` ([`rollup::rollup`]) to its table
    /// (`metrics_5m`, `metrics_1h`, `metrics_1d`), one file per (UTC day, cluster); returns once every file is
    /// stored and visible. A rollup file stands for every sample of its cluster in its UTC day
    /// (readers of buckets stop reading that day's raw files), so `series` must hold all the
    /// raw samples of each (cluster, day) it touches, as a compaction of a completed day does.
    pub async fn write_rollups(&self, resolution: rollup::Resolution, series: &[Series]) -> Result<WriteSummary> {
        let mut tx = self.transaction();
        tx.write_rollups(resolution, series).await?;
        tx.commit(None).await
    }

    /// The reader over every file of the metrics, histograms, exemplars and metadata tables
    /// (including files written later).
    pub fn source(self: &Arc<Self>) -> Arc<dyn Source> {
        Arc::new(ParquetSource {
            metrics: self.reader::<Metrics>(),
            histograms: self.reader::<Histograms>(),
            exemplars: self.reader::<Exemplars>(),
            metadata: self.reader::<Metadata>(),
            rollups_5m: self.reader::<Rollups<FiveMinutes>>(),
            rollups_1h: self.reader::<Rollups<OneHour>>(),
            rollups_1d: self.reader::<Rollups<OneDay>>(),
        })
    }

    /// The [`LogSource`] over every file of the logs table (including files written later).
    pub fn log_source(self: &Arc<Self>) -> Arc<dyn LogSource> {
        Arc::new(self.reader::<Logs>())
    }

    /// The spans table as a [`TraceSource`].
    pub fn trace_source(self: &Arc<Self>) -> Arc<dyn TraceSource> {
        Arc::new(self.reader::<Spans>())
    }

    /// Loads the newest manifest if another process committed since open (or the last
    /// refresh); returns how many files became visible.
    pub async fn refresh(&self) -> Result<usize> {
        Ok(match self.manifest.refresh().await? {
            Some(m) => self.catalogs.install(&m),
            None => 0,
        })
    }

    /// Commits `change` and installs the version written into the catalogs.
    async fn commit(&self, change: &Change) -> Result<Arc<Manifest>> {
        match self.manifest.commit(change).await {
            Ok(m) => {
                self.catalogs.install(&m);
                Ok(m)
            }
            Err(CommitError::Conflict) => Err(Error::Conflict {
                reason:
                    "a file this commit removes is no longer live (another compaction or retention committed first)"
                        .into(),
            }),
            Err(CommitError::Store(e)) => Err(e),
        }
    }

    /// Files, rows and bytes of the metrics table.
    pub fn stats(&self) -> CatalogStats {
        self.catalogs.metrics.stats()
    }

    /// Files, rows and bytes of every table, as the newest manifest this process knows lists
    /// them.
    pub fn table_stats(&self) -> Vec<(Table, CatalogStats)> {
        self.catalogs.all().into_iter().map(|(t, c)| (t, c.stats())).collect()
    }

    /// Object-store requests made since open, by the class S3 bills them in.
    pub fn request_counts(&self) -> RequestCounts {
        self.requests.snapshot()
    }

    /// Registers the object-store request counts (by operation and outcome) and latencies
    /// (`tributary_object_store_*`, see `store::metered`) in `r`, read at each scrape.
    pub fn register_metrics(&self, r: &mut prometheus_client::registry::Registry) {
        r.register_collector(Box::new(store::metered::RequestMetrics(self.requests.clone())));
    }

    /// What the read caches hold (footers, series tables, label listings).
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            rollup_days: self.rollup_days.stats(),
            rollup_rows: self.rollup_days.recent_stats(),
            ..self.metrics_cache.stats()
        }
    }

    /// Records of streams matching `req.matchers` with `start_ns <= timestamp <= end_ns` (a
    /// closed range), in `LogRecord`'s order; records equal in every field once; with a limit,
    /// the oldest `limit`. The same scan as [`Storage::log_source`]; without a limit, more than
    /// `max_select_samples` matching records fail with [`Error::TooManySamples`].
    #[cfg(any(test, feature = "test-util"))]
    pub async fn read_logs(&self, req: &table::logs::LogSelect) -> Result<Vec<LogRecord>> {
        self.reader::<Logs>().select_closed(req).await
    }

    /// [`Storage::log_source`] as its concrete type, whose `counters` tell what its scans
    /// skipped (tests, benchmarks).
    #[cfg(any(test, feature = "test-util"))]
    pub fn log_scan(self: &Arc<Self>) -> Arc<table::logs::scan::ParquetLogSource> {
        Arc::new(self.reader::<Logs>())
    }

    /// Files, rows and bytes of the logs table.
    #[cfg(any(test, feature = "test-util"))]
    pub fn logs_stats(&self) -> CatalogStats {
        self.catalogs.logs.stats()
    }

    /// The object store (tests).
    #[cfg(test)]
    pub(crate) fn object_store(&self) -> Arc<dyn object_store::ObjectStore> {
        self.io.store.clone()
    }

    /// A table's catalog.
    fn catalog(&self, table: Table) -> &Arc<Catalog> {
        self.catalogs.get(table)
    }

    /// A reader of table `T` over its catalog, sharing this storage's footer cache.
    fn reader<T: ParquetTable>(&self) -> T::Reader {
        T::reader(ReadContext {
            io: self.io.clone(),
            catalog: self.catalog(T::KIND).clone(),
            max_rows: self.max_select_samples,
            metrics_cache: self.metrics_cache.clone(),
            rollup_days: self.rollup_days.clone(),
            log_summaries: self.log_summaries.clone(),
            trace_blooms: self.trace_blooms.clone(),
        })
    }

    /// The one write path: a plan of table `T`'s files (`T::plan` of its input, or for the
    /// metrics table a plan over [`SeriesInput`]s); each file is encoded and uploaded
    /// ([`Storage::store_files`]). The files are not live until a [`Transaction`] commits them.
    async fn write<T: ParquetTable>(&self, plan: &T::Plan<'_>) -> Result<Vec<FileMeta>> {
        let props = T::properties(&self.writer)?;
        // Index, not `&File`: a closure taking a borrowed argument makes the future not
        // provably `Send` (rustc's higher-ranked closure limitation), which axum handlers require.
        let files = (0..plan.files()).map(move |i| match plan.parts(i) {
            None => plan.encode(i).map(|(key, batch)| (key, FileRows::Whole(batch))),
            Some(parts) => parts.map(|(key, rows)| (key, FileRows::Parts { file: i, rows })),
        });
        let part = move |i, rows| plan.encode_part(i, rows);
        self.store_files::<T>(files, &part, props).await
    }

    /// Encodes and uploads one table's files. `files` is pulled lazily and encoded one at a
    /// time, only while fewer than [`WRITE_CONCURRENCY`] uploads are in flight, so a flush holds
    /// one file's record batch (or parts in flight) and that many encoded files; the costly
    /// encode runs off the runtime.
    async fn store_files<T: ParquetTable>(
        &self,
        files: impl Iterator<Item = Result<(FileKey, FileRows)>> + Send,
        part: &PartFn<'_>,
        props: WriterProperties,
    ) -> Result<Vec<FileMeta>> {
        // The table's contract: every file has the table's schema.
        let checked = |batch: RecordBatch| {
            if batch.schema() == T::schema() {
                Ok(batch)
            } else {
                Err(Error::InvalidData {
                    reason: format!("a {} file's rows do not have the table's schema", T::KIND.dir()),
                })
            }
        };
        let task = |e: tokio::task::JoinError| Error::Task {
            op: "encode parquet file",
            reason: e.to_string(),
        };
        futures::stream::iter(files)
            .map(|prepared| {
                let props = props.clone();
                let opts = self.writer.clone();
                async move {
                    let (key, rows) = prepared?;
                    let path = key.path();
                    let name = path.to_string();
                    let bytes = match rows {
                        FileRows::Whole(batch) => {
                            let batch = checked(batch)?;
                            tokio::task::spawn_blocking(move || {
                                let metadata = T::footer_metadata(&batch, &name)?;
                                writer::encode_batch(&batch, props, &name, metadata, |row_groups| {
                                    T::row_group_indexes(&batch, row_groups, &opts)
                                })
                            })
                            .await
                            .map_err(task)??
                        }
                        FileRows::Parts { file, rows } => {
                            // The next part is built here while the encoder writes the last one.
                            let (tx, rx) = tokio::sync::mpsc::channel(1);
                            // Metrics take ~2 B a row; a guess past the file's size costs nothing.
                            let expected = rows.saturating_mul(4).saturating_add(1 << 16);
                            let encoder = writer::encode_thread::run(move || {
                                writer::encode_parts(rx, T::schema(), props, &name, expected)
                            });
                            let mut start = 0;
                            while start < rows {
                                let end = rows.min(start + WRITE_PART_ROWS);
                                // A closed channel means the encoder failed: its error follows.
                                if tx.send(checked(part(file, start..end)?)?).await.is_err() {
                                    break;
                                }
                                start = end;
                            }
                            drop(tx);
                            encoder.await?
                        }
                    };
                    Ok::<_, Error>((key, path, bytes))
                }
            })
            .buffered(1)
            .map_ok(|(key, path, bytes)| self.upload_file(key, path, bytes))
            .try_buffer_unordered(WRITE_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Uploads one encoded file (a method, not a closure in `store_files`: a closure's future
    /// borrowing `self` is not provably `Send`).
    async fn upload_file(&self, key: FileKey, path: Path, bytes: bytes::Bytes) -> Result<FileMeta> {
        let size = bytes.len() as u64;
        self.upload(&path, bytes).await?;
        Ok(FileMeta::new(key, size))
    }

    async fn upload(&self, path: &Path, bytes: bytes::Bytes) -> Result<()> {
        let err = |op| {
            move |source| Error::ObjectStore {
                op,
                key: path.to_string(),
                source,
            }
        };
        if bytes.len() < self.multipart_threshold {
            self.io
                .store
                .put(path, PutPayload::from(bytes))
                .await
                .map_err(err("put"))?;
            return Ok(());
        }
        let upload = self
            .io
            .store
            .put_multipart(path)
            .await
            .map_err(err("start multipart upload"))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES);
        let mut rest = bytes;
        while !rest.is_empty() {
            // Bounded in-flight parts keep a huge file from opening unbounded concurrent requests.
            w.wait_for_capacity(MULTIPART_IN_FLIGHT)
                .await
                .map_err(err("upload part"))?;
            w.put(rest.split_to(rest.len().min(MULTIPART_PART_BYTES)));
        }
        w.finish().await.map_err(err("finish multipart upload"))?;
        Ok(())
    }
}

/// Files uploaded but not yet live, made live together by [`Transaction::commit`].
///
/// Dropping a transaction without committing leaves its uploads as unlisted objects: never
/// visible, deleted later by the compactor's orphan sweep. A flush commits its files together
/// with the WAL position they cover, so a replay after a crash never publishes them twice.
#[derive(Debug)]
pub struct Transaction<'a> {
    storage: &'a Storage,
    staged: Vec<FileMeta>,
}

impl Transaction<'_> {
    /// Uploads these series as Parquet files partitioned by hour and cluster.
    ///
    /// Samples are sorted and deduplicated per series (for repeated timestamps the later sample
    /// wins, also across repeated label sets). Timestamps must lie in years 0000-9999
    /// ([`layout::storable_timestamp`]); otherwise nothing is written.
    pub async fn write_metrics(&mut self, series: &[Series]) -> Result<()> {
        self.stage::<Metrics>(series).await
    }

    /// [`Transaction::write_metrics`] for series whose samples are decoded as each file part
    /// is built ([`SeriesInput`]): a flush writes its whole head through it, holding one part
    /// of decoded samples rather than all of them.
    pub async fn write_series(&mut self, series: &[&dyn SeriesInput]) -> Result<()> {
        self.stage_plan::<Metrics>(&writer::MetricsPlan::new(series.iter().copied())?)
            .await
    }

    /// Uploads log records to the `logs` table, one file per (UTC hour, `cluster` stream label).
    pub async fn write_logs(&mut self, records: &[LogRecord]) -> Result<()> {
        self.stage::<Logs>(records).await
    }

    /// Uploads spans to the `spans` table, one file per (UTC hour of their start, cluster).
    pub async fn write_spans(&mut self, spans: &[Span]) -> Result<()> {
        self.stage::<Spans>(spans).await
    }

    /// Uploads native-histogram series, one file per (UTC hour, cluster). Repeated label sets
    /// are merged; for a repeated timestamp the sample given later wins. Timestamps must lie
    /// in years 0000-9999, otherwise nothing is written.
    pub async fn write_histograms(&mut self, series: &[HistogramSeries]) -> Result<()> {
        self.stage::<Histograms>(series).await
    }

    /// Uploads exemplar series, one file per (UTC hour, cluster). Repeated series are merged
    /// and repeated exemplars stored once.
    pub async fn write_exemplars(&mut self, series: &[ExemplarSeries]) -> Result<()> {
        self.stage::<Exemplars>(series).await
    }

    /// Uploads the distinct entries of `metadata`, one file per cluster, keyed by the current time.
    pub async fn write_metadata(&mut self, metadata: &[MetricMetadata]) -> Result<()> {
        self.stage::<Metadata>(metadata).await
    }

    /// Uploads the rollups of `series` at `resolution` ([`rollup::rollup`]), one file per
    /// (UTC day, cluster); see [`Storage::write_rollups`] for what `series` must hold.
    pub async fn write_rollups(&mut self, resolution: rollup::Resolution, series: &[Series]) -> Result<()> {
        let rows = rollup::rollup(series, resolution);
        match resolution {
            rollup::Resolution::FiveMinutes => self.stage::<Rollups<FiveMinutes>>(&rows).await,
            rollup::Resolution::OneHour => self.stage::<Rollups<OneHour>>(&rows).await,
            rollup::Resolution::OneDay => self.stage::<Rollups<OneDay>>(&rows).await,
        }
    }

    async fn stage<T: ParquetTable>(&mut self, input: &T::Input) -> Result<()> {
        self.stage_plan::<T>(&T::plan(input)?).await
    }

    /// [`Transaction::stage`] from a plan already made (the metrics table's plan over
    /// [`SeriesInput`]s).
    async fn stage_plan<T: ParquetTable>(&mut self, plan: &T::Plan<'_>) -> Result<()> {
        let files = self.storage.write::<T>(plan).await?;
        self.staged.extend(files);
        Ok(())
    }

    /// Makes every staged file live in one manifest commit, with `writer`'s WAL mark
    /// (`(writer id, segment)`: everything it wrote below that segment is now stored) when
    /// given. Returns once readers of this process see the files.
    pub async fn commit(self, writer: Option<(&str, u64)>) -> Result<WriteSummary> {
        let mut summary = WriteSummary::default();
        for f in &self.staged {
            summary.files.push(f.path.to_string());
            summary.rows += f.key.rows;
            summary.bytes += f.size;
        }
        summary.files.sort();
        let change = Change {
            add: self.staged,
            writer: writer.map(|(id, seg)| (id.to_string(), seg)),
            ..Change::default()
        };
        self.storage.commit(&change).await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests;
