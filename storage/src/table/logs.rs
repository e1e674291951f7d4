//! The `logs` table: log records ([`LogRecord`]) as Parquet, one file per (UTC hour, cluster).
//!
//! Owns the table's schema (`schema`), writing (`write`: [`crate::Storage::write_logs`]) and
//! reading: [`scan::ParquetLogSource`] is the [`crate::read::LogSource`] LogQL reads through
//! ([`crate::Storage::log_source`]), with matchers, time, line hints and limit pushed down into
//! the scan; `Storage::read_logs` (feature `test-util`) is a plain closed-range select over
//! the same scan.
//!
//! # Files (on-disk contract)
//!
//! Keys come from [`crate::layout::FileKey`] with table `logs`:
//! `logs/<YYYY-MM-DD>/<HH>/<cluster>/<min_ms>-<max_ms>-<rows>-<uuid>.parquet`. `<cluster>` is the
//! stream's `cluster` label (`@none` without one) and the hour is the UTC hour of every row.
//! Record timestamps are nanoseconds but keys count milliseconds: `min_ms`/`max_ms` are the
//! smallest and largest `timestamp` floored to the millisecond (`floor(ns / 1e6)`), so a reader
//! must treat the file's span as `[min_ms · 1e6, max_ms · 1e6 + 999 999]` ns.
//!
//! # Schema (on-disk contract)
//!
//! One row per record. Rows are sorted by (`cluster`, `labels`, `timestamp`), recorded as the
//! file's `sorting_columns`; records with equal stream and time keep their write order.
//!
//! | column                | Arrow type                     | content                                                        |
//! |-----------------------|--------------------------------|----------------------------------------------------------------|
//! | `cluster`             | Dictionary(Int32, Utf8)        | the stream's `cluster` label, `""` when absent                 |
//! | `service_name`        | Dictionary(Int32, Utf8)        | the stream's `service_name` label, `""` when absent (a copy)   |
//! | `labels`              | Dictionary(Int32, Utf8)        | every other stream label as canonical JSON (below)             |
//! | `stream_id`           | UInt64                         | [`crate::types::Labels::series_id`] of all stream labels       |
//! | `timestamp`           | Timestamp(Nanosecond, "UTC")   | when the event happened                                        |
//! | `observed_timestamp`  | Timestamp(Nanosecond, "UTC")?  | when a collector saw it; null when unknown (0 in OTLP)         |
//! | `severity_number`     | Int32                          | OTLP `SeverityNumber` (0 unspecified, 1..=24 TRACE..FATAL4)    |
//! | `severity_text`       | Dictionary(Int32, Utf8)        | as sent, `""` when absent                                      |
//! | `body`                | Utf8                           | the line (a structured OTLP body as JSON)                      |
//! | `trace_id`            | Utf8?                          | 32 lower-case hex digits; null when absent                     |
//! | `span_id`             | Utf8?                          | 16 lower-case hex digits; null when absent                     |
//! | `flags`               | UInt32                         | OTLP log record flags (W3C trace flags in the low byte)        |
//! | `attributes`          | Utf8                           | the record's attributes, a JSON object text (Loki: structured metadata) |
//! | `resource_attributes` | Utf8                           | every resource attribute, a JSON object text                   |
//! | `scope_name`          | Dictionary(Int32, Utf8)        | instrumentation scope name, `""` when absent                   |
//! | `scope_version`       | Dictionary(Int32, Utf8)        | instrumentation scope version, `""` when absent                |
//! | `event_name`          | Dictionary(Int32, Utf8)        | OTLP `event_name`, `""` when absent                            |
//!
//! (`?` = nullable; every other column is never null.)
//!
//! The footer's key-value metadata carries the file's summaries: its volume (body bytes and
//! records per stream per minute) under `tributary.log_volume`, documented in `volume`, and
//! its patterns (Drain patterns per stream and level, lines per minute) under
//! `tributary.log_patterns`, documented in `patterns`. A new summary is one file implementing
//! `summary::FileSummary` and one line in `summary::footer_metadata`.
//!
//! - `labels` follows the metrics table's convention (`{"k":"v",...}`, keys in byte order, no
//!   whitespace, `serde_json` escaping, `{}` when empty) and leaves out only `cluster`. The
//!   stream labels of a row are `labels` plus `cluster` (when non-empty). `service_name` is a
//!   convenience copy for SQL and row-group pruning; it is also inside `labels`.
//! - Timestamps are Parquet `TIMESTAMP(NANOS, isAdjustedToUTC=true)` rather than bare integers:
//!   DuckDB reads them as `TIMESTAMPTZ_NS` and Arrow-based readers (pandas, Polars) as
//!   nanosecond UTC timestamps, without loss, so SQL can compare them with date literals and
//!   `epoch_ns(timestamp)` gives the exact integer back.
//! - `attributes` and `resource_attributes` are stored exactly as the receiver produced them
//!   (the OTLP decoder writes a JSON object preserving value types: ints as numbers, bytes as
//!   base64 strings, arrays and maps nested); readers must accept `""` as "no attributes".
//! - `trace_id` carries a bloom filter in every row group; `timestamp` and the dictionary
//!   columns carry page-level statistics (column and offset index).
//! - Unless `storage.log_line_index` is off, each row group has a line index (bloom filters
//!   of the 8-byte runs inside the words of `body`), stored after the row groups and located
//!   from the footer entry `tributary.index.body_grams`; the format is documented in `grams`.
//! - Files are zstd-compressed; row group and page sizes come from `StorageConfig`.
//!
//! A write stores a record equal in every field to another of the same write once (a client's
//! retry of a batch whose answer it lost, both copies in one head); copies in two files (the
//! retry landed after a flush) are collapsed by compaction (the table's `IDENTITY` is
//! every column), and readers return records equal in every field once meanwhile.

mod grams;
mod patterns;
mod plan;
pub mod scan;
pub(crate) mod schema;
mod summary;
mod volume;
mod write;

use arrow_schema::SchemaRef;
use parquet::file::properties::WriterProperties;

use super::{FilePlan, ParquetTable, ReadContext};
use crate::Result;
use crate::layout::{FileKey, Table};
use crate::signals::LogRecord;
use crate::writer::WriterOptions;
use scan::ParquetLogSource;
#[cfg(any(test, feature = "test-util"))]
pub use select::LogSelect;
pub(crate) use summary::SummaryCache;
use write::LogsPlan;

/// A closed-range select (`Storage::read_logs`), for tests.
#[cfg(any(test, feature = "test-util"))]
mod select {
    use crate::signals::TimestampNs;
    use crate::types::Matcher;

    /// What `Storage::read_logs` selects.
    #[derive(Clone, Debug, Default)]
    pub struct LogSelect {
        /// On stream labels (`cluster` included); all must match. A missing label matches as `""`.
        pub matchers: Vec<Matcher>,
        /// First nanosecond, included.
        pub start_ns: TimestampNs,
        /// Last nanosecond, included (a closed range).
        pub end_ns: TimestampNs,
        /// At most this many records: the oldest ones.
        pub limit: Option<usize>,
    }
}

impl FilePlan for LogsPlan<'_> {
    fn files(&self) -> usize {
        self.groups().len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, arrow_array::RecordBatch)> {
        let group = &self.groups()[i];
        Ok((self.file_key(group)?, self.record_batch(group)?))
    }
}

/// The logs table.
#[derive(Debug)]
pub(crate) struct Logs;

impl ParquetTable for Logs {
    const KIND: Table = Table::Logs;
    /// Every column: readers return records equal in every field once.
    const IDENTITY: &'static [&'static str] = &[
        schema::CLUSTER,
        schema::LABELS,
        schema::TIMESTAMP,
        schema::SERVICE_NAME,
        schema::STREAM_ID,
        schema::OBSERVED_TIMESTAMP,
        schema::SEVERITY_NUMBER,
        schema::SEVERITY_TEXT,
        schema::BODY,
        schema::TRACE_ID,
        schema::SPAN_ID,
        schema::FLAGS,
        schema::ATTRIBUTES,
        schema::RESOURCE_ATTRIBUTES,
        schema::SCOPE_NAME,
        schema::SCOPE_VERSION,
        schema::EVENT_NAME,
    ];
    /// The summaries and the line index are built over a file's rows at once.
    const MERGE_IN_PARTS: bool = false;
    type Input = [LogRecord];
    type Plan<'a> = LogsPlan<'a>;
    type Reader = ParquetLogSource;

    fn schema() -> SchemaRef {
        schema::logs_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        write::properties(writer)
    }

    /// The volume and pattern summaries (see `summary`).
    fn footer_metadata(batch: &arrow_array::RecordBatch, key: &str) -> Result<Vec<parquet::file::metadata::KeyValue>> {
        summary::footer_metadata(batch, key)
    }

    /// The line index (see `grams`), unless `storage.log_line_index` is off.
    fn row_group_indexes(
        batch: &arrow_array::RecordBatch,
        row_groups: &[std::ops::Range<usize>],
        writer: &WriterOptions,
    ) -> Result<Vec<crate::parquet_io::index::RowGroupIndex>> {
        Ok(if writer.log_line_index {
            vec![grams::build(batch, row_groups)?]
        } else {
            Vec::new()
        })
    }

    /// Partitions by the `cluster` stream label (`""` when absent) and the UTC hour; records are
    /// never merged or dropped (two identical lines are two rows).
    fn plan(input: &[LogRecord]) -> Result<LogsPlan<'_>> {
        LogsPlan::new(input)
    }

    fn reader(ctx: ReadContext) -> ParquetLogSource {
        ParquetLogSource::new(ctx.io, ctx.catalog, ctx.max_rows, ctx.log_summaries)
    }
}

#[cfg(test)]
mod tests;
