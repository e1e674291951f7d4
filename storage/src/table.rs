//! The table abstraction: every Parquet table says, through `ParquetTable`, what its rows are,
//! how a write splits into files (one per UTC hour and cluster, keys built by
//! [`crate::layout`]), how a file's rows encode into a `RecordBatch` of its schema, and what
//! reads it back (its reader, over `crate::parquet_io`).
//!
//! The tables are siblings: `metrics` (float samples, read through the [`crate::read::Source`]
//! contract), [`logs`] (log records, read through [`crate::read::LogSource`]), `histograms`,
//! `exemplars`, `metadata`, `spans` (trace spans, read through [`crate::read::TraceSource`]) and `rollups` (`metrics_5m`, `metrics_1h`, `metrics_1d`). None imports another; `series` is the kit the series-keyed
//! ones share. The facade ([`crate::Storage`]) writes every table through one generic path
//! (`Storage::write::<T>`: plan, encode, upload, register), and `crate::source` composes the
//! readers of `metrics`, `exemplars` and `metadata` into the one `Source` the engine reads.

pub(crate) mod exemplars;
pub(crate) mod file_cache;
pub(crate) mod histograms;
pub mod logs;
pub(crate) mod metadata;
pub(crate) mod metrics;
pub(crate) mod rollups;
pub(crate) mod series;
pub(crate) mod spans;

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::Result;
use crate::catalog::Catalog;
use crate::layout::{self, FileKey};
use crate::parquet_io::ParquetIo;
use crate::parquet_io::index::RowGroupIndex;
use crate::writer::WriterOptions;

/// One write of a table, split into files and encoded one file at a time, so a flush holds
/// only the files being uploaded.
///
/// A file is built whole ([`FilePlan::encode`]), or, for a plan that offers it, in parts
/// ([`FilePlan::parts`], [`FilePlan::encode_part`]): the writer then builds one part's Arrow
/// columns at a time while the previous part is encoded, so a large file costs a part's
/// arrays, not the file's. Parts suit tables whose footer summarises nothing
/// ([`ParquetTable::footer_metadata`] and [`ParquetTable::row_group_indexes`] see the whole
/// batch, so a table with either builds its files whole).
pub(crate) trait FilePlan: Sync {
    /// How many files the write makes.
    fn files(&self) -> usize;

    /// File `i`: a fresh key (a new UUID v7 each call) and its rows in the table's schema.
    fn encode(&self, i: usize) -> Result<(FileKey, RecordBatch)>;

    /// File `i` in parts: a fresh key and its row count, or `None` (the default) to build it
    /// whole with [`FilePlan::encode`].
    fn parts(&self, _i: usize) -> Option<Result<(FileKey, usize)>> {
        None
    }

    /// Rows `rows` of file `i` in the table's schema, in the file's row order; called only for
    /// a file [`FilePlan::parts`] answered, with consecutive ranges covering its rows. A plan
    /// that answers `parts` must implement it.
    fn encode_part(&self, i: usize, _rows: Range<usize>) -> Result<RecordBatch> {
        Err(crate::Error::InvalidData {
            reason: format!("file {i} of this write is built whole, not in parts"),
        })
    }
}

/// What a table's reader is built from.
#[derive(Clone, Debug)]
pub(crate) struct ReadContext {
    /// The shared object store, footer cache and read concurrency.
    pub(crate) io: ParquetIo,
    /// The table's files.
    pub(crate) catalog: Arc<Catalog>,
    /// Most rows (samples, records) one unlimited read may return before it fails with
    /// [`crate::Error::TooManySamples`].
    pub(crate) max_rows: usize,
    /// The metrics table's derived caches (series tables, label listings); other tables ignore it.
    pub(crate) metrics_cache: Arc<metrics::MetricsCache>,
    /// The rollup tables' day summaries (see `rollups::days`); other tables ignore it.
    pub(crate) rollup_days: Arc<rollups::DayCache>,
    /// The logs table's parsed file summaries (see `logs::summary`); other tables ignore it.
    pub(crate) log_summaries: Arc<logs::SummaryCache>,
    /// The spans table's trace-id bloom filters (see `spans::blooms`); other tables ignore it.
    pub(crate) trace_blooms: Arc<spans::blooms::BloomCache>,
}

/// A Parquet table: its on-disk contract and the code that writes and reads it.
///
/// # Contract
/// - Files are keyed by [`layout::FileKey`] under [`ParquetTable::KIND`]'s prefix: one file per
///   (UTC hour, cluster) holding rows of that hour and cluster only (metadata, which has no
///   time, uses the moment of the write), immutable once stored.
/// - Every file's Arrow schema is [`ParquetTable::schema`] (embedded in its footer); the
///   table's module documents the columns and its row order.
/// - A file becomes visible to readers only once committed to the manifest, after its upload.
///   Writing the same rows again is still safe: each reader defines which copy wins or that
///   copies are returned once, and [`ParquetTable::IDENTITY`] says the same to compaction.
///
/// Adding a table: write `table/<name>.rs` implementing this trait (schema, properties, plan,
/// reader), add its `pub mod` line above and its variant to [`layout::Table`]; the facade's
/// `write::<T>` and `reader::<T>` then serve it.
pub(crate) trait ParquetTable {
    /// Which table: key prefix and catalog.
    const KIND: layout::Table;
    /// The columns that identify a row, led by the file's row order (its `sorting_columns`).
    /// Compaction sorts merged rows by them and keeps one row per identity: the one from the
    /// latest file, which is what every reader returns for rows stored twice.
    const IDENTITY: &'static [&'static str];
    /// What one write takes.
    type Input: ?Sized + Sync;
    /// One write, split into files.
    type Plan<'a>: FilePlan + Send
    where
        Self::Input: 'a;
    /// What reads the table back.
    type Reader;

    /// The Arrow schema of every file.
    fn schema() -> SchemaRef;

    /// Parquet writer properties (row groups, encodings, statistics, sort order).
    fn properties(writer: &WriterOptions) -> Result<WriterProperties>;

    /// Whether compaction may merge this table's files a part at a time (`compactor::merge`):
    /// false when [`ParquetTable::footer_metadata`] or [`ParquetTable::row_group_indexes`]
    /// need a file's rows at once, which a merged file is then built from.
    const MERGE_IN_PARTS: bool = true;

    /// Key-value entries for the footer of a file holding `batch` (the logs table's volume
    /// and pattern summaries), computed from the rows being encoded by flushes and compaction alike. None by
    /// default.
    fn footer_metadata(_batch: &RecordBatch, _key: &str) -> Result<Vec<KeyValue>> {
        Ok(Vec::new())
    }

    /// Row-group indexes of a file holding `batch`, whose row groups hold the rows
    /// `row_groups` (see `crate::parquet_io::index`; the logs table's line index). None by
    /// default.
    fn row_group_indexes(
        _batch: &RecordBatch,
        _row_groups: &[Range<usize>],
        _writer: &WriterOptions,
    ) -> Result<Vec<RowGroupIndex>> {
        Ok(Vec::new())
    }

    /// Splits one write into files. Fails, writing nothing, on rows the layout cannot key
    /// (timestamps outside years 0000-9999).
    fn plan(input: &Self::Input) -> Result<Self::Plan<'_>>;

    /// The table's reader.
    fn reader(ctx: ReadContext) -> Self::Reader;
}
