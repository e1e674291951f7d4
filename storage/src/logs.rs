//! The `logs` table: log records ([`LogRecord`]) as Parquet, one file per (UTC hour, cluster).
//!
//! Owns the table's schema ([`schema`]), writing ([`Storage::write_logs`], [`mod@write`]) and
//! reading: [`Storage::log_source`] is the [`crate::read::LogSource`] LogQL reads through
//! ([`scan::ParquetLogSource`], with matchers, time, line hints and limit pushed down into the
//! scan), [`Storage::read_logs`] a plain closed-range select over the same scan.
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
//! - Files are zstd-compressed; row group and page sizes come from `StorageConfig`.
//!
//! Nothing is deduplicated on write. The same record written twice (a retried flush) is two
//! rows; [`Storage::read_logs`] returns records equal in every field once.

pub mod read;
pub mod scan;
pub mod schema;
pub mod write;

use std::sync::Arc;

use crate::read::{Direction, LogSource};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::Matcher;
use crate::{Result, Storage, WriteSummary};

/// What [`Storage::read_logs`] selects.
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

impl Storage {
    /// Writes log records (any clusters, any times) as Parquet files partitioned by hour and
    /// cluster (the `cluster` stream label, `""` when absent); returns only after every file is
    /// in the object store AND registered in the catalog. `rows` counts records.
    ///
    /// On an upload error some files may already be stored and visible; writing the same records
    /// again is safe (readers return a record stored twice once).
    pub async fn write_logs(&self, records: &[LogRecord]) -> Result<WriteSummary> {
        let plan = write::LogsPlan::new(records)?;
        let props = write::properties(&self.writer)?;
        // Index, not `&LogGroup`: see `write_metrics` (keeps the future `Send`).
        let files = (0..plan.groups().len()).map(|i| {
            let group = &plan.groups()[i];
            plan.file_key(group)
                .and_then(|key| Ok((key, plan.record_batch(group)?)))
        });
        self.store_files(&self.tables.logs, files, props).await
    }

    /// Records of streams matching `req.matchers` with `start_ns <= timestamp <= end_ns`, sorted
    /// by (timestamp, stream labels, then the other fields); records equal in every field are
    /// returned once; with a limit, the oldest `limit`.
    ///
    /// The same scan as [`Storage::log_source`] (files pruned by key, row groups and pages by
    /// statistics, rows filtered before they are built). Without a limit, more than
    /// `max_select_samples` matching records fail with [`Error::TooManySamples`](crate::Error::TooManySamples) instead of
    /// exhausting memory; a limited read holds at most about `limit` records per file in flight.
    pub async fn read_logs(&self, req: &LogSelect) -> Result<Vec<LogRecord>> {
        self.new_log_scan()
            .select(scan::ScanRequest {
                matchers: req.matchers.clone(),
                start: req.start_ns,
                end: req.end_ns,
                hints: Vec::new(),
                direction: Direction::Forward,
                limit: req.limit,
            })
            .await
    }

    /// The [`LogSource`] over every file of the logs table (including files written later).
    pub fn log_source(self: &Arc<Self>) -> Arc<dyn LogSource> {
        self.log_scan()
    }

    /// [`Storage::log_source`] as its concrete type, whose [`scan::ParquetLogSource::counters`]
    /// tell what its scans skipped (tests, benchmarks).
    pub fn log_scan(self: &Arc<Self>) -> Arc<scan::ParquetLogSource> {
        Arc::new(self.new_log_scan())
    }

    fn new_log_scan(&self) -> scan::ParquetLogSource {
        scan::ParquetLogSource::new(
            self.store.clone(),
            self.tables.logs.clone(),
            self.read_concurrency,
            self.max_select_samples,
        )
    }

    /// Files, rows and bytes of the logs table.
    pub fn logs_stats(&self) -> crate::CatalogStats {
        self.tables.logs.stats()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod scan_tests;
