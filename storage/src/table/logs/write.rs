//! Encodes log records into logs Parquet files: one file per (UTC hour, cluster), rows sorted by
//! (stream labels, timestamp).
//!
//! Encoding choices:
//! - `cluster`, `service_name`, `labels`, `stream_id`: dictionary + RLE. Rows are sorted by
//!   stream, so these are long runs of one key; the dictionary page limit is raised for `labels`
//!   and `stream_id` so many streams per row group stay dictionary-encoded.
//! - `timestamp`, `observed_timestamp`: DELTA_BINARY_PACKED (within a stream, times increase).
//! - `body`, `attributes`, `resource_attributes`: zstd does the work; no min/max statistics
//!   (nothing prunes on them, and long strings would bloat the footer).
//! - `trace_id`: a bloom filter per row group, so "every line of this trace" skips row groups
//!   that cannot hold it. `trace_id`/`span_id` min/max are kept per column chunk only.
//! - zstd everywhere; page-level statistics (column + offset index) for the other columns.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    PrimitiveBuilder, StringBuilder, StringDictionaryBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use super::schema::{self, col};
use crate::layout::{FileKey, Hour, Table};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::{self, Labels};
use crate::writer::WriterOptions;
use crate::{Error, Result};

/// Dictionary page limit for the per-stream columns (see the metrics writer's reasoning).
const STREAM_DICT_PAGE_BYTES: usize = 32 << 20;
/// False-positive rate of the `trace_id` bloom filters. The filter is folded down to the
/// distinct ids actually written, so a low rate costs little space.
const TRACE_ID_BLOOM_FPP: f64 = 0.01;
/// Nanoseconds per millisecond: file keys count milliseconds.
pub(super) const NS_PER_MS: i64 = 1_000_000;

/// The millisecond a nanosecond timestamp falls in (floor, also before 1970).
pub(super) fn ms_of(ns: TimestampNs) -> i64 {
    ns.div_euclid(NS_PER_MS)
}

/// The Parquet writer properties of the logs table.
pub(super) fn properties(opts: &WriterOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::InvalidData {
        reason: format!("zstd level {}: {e}", opts.zstd_level),
    })?;
    let column = |name: &str| ColumnPath::from(name);
    let sorting = [col::CLUSTER, col::LABELS, col::TIMESTAMP].map(|i| SortingColumn {
        column_idx: i as i32,
        descending: false,
        nulls_first: false,
    });
    let page_rows = opts.page_rows.max(1);
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows.min(1024))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(sorting.to_vec()))
        .set_column_dictionary_page_size_limit(column(schema::LABELS), STREAM_DICT_PAGE_BYTES)
        .set_column_dictionary_page_size_limit(column(schema::STREAM_ID), STREAM_DICT_PAGE_BYTES)
        .set_column_bloom_filter_enabled(column(schema::TRACE_ID), true)
        .set_column_bloom_filter_fpp(column(schema::TRACE_ID), TRACE_ID_BLOOM_FPP);
    for ts in [schema::TIMESTAMP, schema::OBSERVED_TIMESTAMP] {
        b = b
            .set_column_dictionary_enabled(column(ts), false)
            .set_column_encoding(column(ts), Encoding::DELTA_BINARY_PACKED);
    }
    for text in [schema::BODY, schema::ATTRIBUTES, schema::RESOURCE_ATTRIBUTES] {
        b = b.set_column_statistics_enabled(column(text), EnabledStatistics::None);
    }
    for id in [schema::TRACE_ID, schema::SPAN_ID] {
        b = b.set_column_statistics_enabled(column(id), EnabledStatistics::Chunk);
    }
    Ok(b.build())
}

/// One distinct stream of the input.
#[derive(Debug)]
struct Stream<'a> {
    labels: &'a Labels,
    json: String,
    id: u64,
    /// Position of `json` among all streams' texts: sorting rows by it sorts them by `labels`.
    rank: u32,
}

/// One file's worth of input: a cluster-hour and its records, in file order.
#[derive(Debug)]
pub(crate) struct LogGroup {
    pub hour: Hour,
    pub cluster: String,
    /// Record indexes sorted by (stream labels text, timestamp, input order).
    rows: Vec<u32>,
}

/// Input records split into per-(hour, cluster) files, ready to encode. A record equal in every
/// field to an earlier one (a batch a client sent again after losing the answer, both copies
/// in one head) is written once; anything else, two identical lines with different
/// attributes for instance, stays two rows.
#[derive(Debug)]
pub(crate) struct LogsPlan<'a> {
    records: &'a [LogRecord],
    streams: Vec<Stream<'a>>,
    /// Per record: its index in `streams`.
    stream_of: Vec<u32>,
    groups: Vec<LogGroup>,
}

/// Removes from `rows` (record indexes sorted by stream, then time, then input order) every
/// record equal in every field to an earlier one, keeping the first. Copies share stream and
/// time, so only runs of equal (stream, time) are searched; a long run (many lines stamped with
/// one time) is searched through a hash of its records, so the pass stays linear.
fn drop_copies(rows: &mut Vec<u32>, records: &[LogRecord]) {
    use std::hash::BuildHasher;
    let rec = |i: u32| &records[i as usize];
    let hasher = std::collections::hash_map::RandomState::new();
    let hash = |r: &LogRecord| {
        hasher.hash_one((
            &r.body,
            &r.attributes,
            r.observed_timestamp,
            r.severity_number,
            &r.trace_id,
        ))
    };
    let mut kept: Vec<u32> = Vec::with_capacity(rows.len());
    let mut start = 0;
    while start < rows.len() {
        let first = rec(rows[start]);
        let mut end = start + 1;
        while end < rows.len() && rec(rows[end]).timestamp == first.timestamp && rec(rows[end]).labels == first.labels {
            end += 1;
        }
        let run = &rows[start..end];
        if run.len() <= 16 {
            let from = kept.len();
            for &i in run {
                if !kept[from..].iter().any(|&k| rec(k) == rec(i)) {
                    kept.push(i);
                }
            }
        } else {
            let mut seen: HashMap<u64, Vec<u32>> = HashMap::new();
            for &i in run {
                let same = seen.entry(hash(rec(i))).or_default();
                if !same.iter().any(|&k| rec(k) == rec(i)) {
                    same.push(i);
                    kept.push(i);
                }
            }
        }
        start = end;
    }
    *rows = kept;
}

impl<'a> LogsPlan<'a> {
    pub(crate) fn new(records: &'a [LogRecord]) -> Result<Self> {
        if records.len() > u32::MAX as usize {
            return Err(Error::InvalidData {
                reason: format!("{} log records in one write; split it", records.len()),
            });
        }
        let mut index: HashMap<&'a Labels, u32> = HashMap::new();
        let mut streams: Vec<Stream<'a>> = Vec::new();
        let mut stream_of = Vec::with_capacity(records.len());
        for r in records {
            let next = streams.len() as u32;
            let s = *index.entry(&r.labels).or_insert(next);
            if s == next {
                streams.push(Stream {
                    labels: &r.labels,
                    json: schema::stream_labels_json(&r.labels),
                    id: r.labels.series_id().0,
                    rank: 0,
                });
            }
            stream_of.push(s);
        }
        let mut order: Vec<u32> = (0..streams.len() as u32).collect();
        order.sort_unstable_by(|a, b| streams[*a as usize].json.cmp(&streams[*b as usize].json));
        for (rank, s) in order.into_iter().enumerate() {
            streams[s as usize].rank = rank as u32;
        }

        let mut groups: HashMap<(Hour, &'a str), Vec<u32>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            let cluster = r.labels.get(types::CLUSTER).unwrap_or("");
            let hour = Hour::of(ms_of(r.timestamp));
            groups.entry((hour, cluster)).or_default().push(i as u32);
        }
        let mut groups: Vec<LogGroup> = groups
            .into_iter()
            .map(|((hour, cluster), mut rows)| {
                rows.sort_unstable_by_key(|&i| {
                    let rank = streams[stream_of[i as usize] as usize].rank;
                    (rank, records[i as usize].timestamp, i)
                });
                drop_copies(&mut rows, records);
                LogGroup {
                    hour,
                    cluster: cluster.to_string(),
                    rows,
                }
            })
            .collect();
        groups.sort_unstable_by(|a, b| (a.hour, &a.cluster).cmp(&(b.hour, &b.cluster)));
        Ok(Self {
            records,
            streams,
            stream_of,
            groups,
        })
    }

    /// The files this plan writes, in (hour, cluster) order.
    pub(crate) fn groups(&self) -> &[LogGroup] {
        &self.groups
    }

    /// A fresh key for one file (new UUID v7 each call). The key's span is in milliseconds,
    /// floored: the file's last record lies before `max_ts + 1 ms`.
    pub(crate) fn file_key(&self, group: &LogGroup) -> Result<FileKey> {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &i in &group.rows {
            let t = self.records[i as usize].timestamp;
            lo = lo.min(t);
            hi = hi.max(t);
        }
        FileKey::new(
            Table::Logs,
            &group.cluster,
            ms_of(lo),
            ms_of(hi),
            group.rows.len() as u64,
        )
    }

    /// The rows of one file as an Arrow batch in [`schema::logs_schema`], sorted.
    pub(crate) fn record_batch(&self, group: &LogGroup) -> Result<RecordBatch> {
        let n = group.rows.len();
        let dict = || StringDictionaryBuilder::<Int32Type>::new();
        let (mut cluster, mut service, mut labels) = (dict(), dict(), dict());
        let (mut severity_text, mut scope_name, mut scope_version, mut event_name) = (dict(), dict(), dict(), dict());
        let mut stream_id = UInt64Builder::with_capacity(n);
        let mut ts = TimestampNanosecondBuilder::with_capacity(n);
        let mut observed = TimestampNanosecondBuilder::with_capacity(n);
        let mut severity_number = PrimitiveBuilder::<Int32Type>::with_capacity(n);
        let mut flags = UInt32Builder::with_capacity(n);
        let text = || StringBuilder::with_capacity(n, n * 32);
        let (mut body, mut trace_id, mut span_id) = (text(), text(), text());
        let (mut attributes, mut resource_attributes) = (text(), text());
        for &i in &group.rows {
            let r = &self.records[i as usize];
            let s = &self.streams[self.stream_of[i as usize] as usize];
            cluster.append_value(&group.cluster);
            service.append_value(s.labels.get(schema::SERVICE_NAME_LABEL).unwrap_or(""));
            labels.append_value(&s.json);
            stream_id.append_value(s.id);
            ts.append_value(r.timestamp);
            // 0 means "unknown" in OTLP: stored as null so SQL does not see 1970-01-01.
            observed.append_option((r.observed_timestamp != 0).then_some(r.observed_timestamp));
            severity_number.append_value(r.severity_number);
            severity_text.append_value(&r.severity_text);
            body.append_value(&r.body);
            trace_id.append_option((!r.trace_id.is_empty()).then_some(&r.trace_id));
            span_id.append_option((!r.span_id.is_empty()).then_some(&r.span_id));
            flags.append_value(r.flags);
            attributes.append_value(&r.attributes);
            resource_attributes.append_value(&r.resource_attributes);
            scope_name.append_value(&r.scope_name);
            scope_version.append_value(&r.scope_version);
            event_name.append_value(&r.event_name);
        }
        let utc = |b: &mut PrimitiveBuilder<TimestampNanosecondType>| -> ArrayRef {
            Arc::new(b.finish().with_timezone("UTC"))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(cluster.finish()),
            Arc::new(service.finish()),
            Arc::new(labels.finish()),
            Arc::new(stream_id.finish()),
            utc(&mut ts),
            utc(&mut observed),
            Arc::new(severity_number.finish()),
            Arc::new(severity_text.finish()),
            Arc::new(body.finish()),
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(flags.finish()),
            Arc::new(attributes.finish()),
            Arc::new(resource_attributes.finish()),
            Arc::new(scope_name.finish()),
            Arc::new(scope_version.finish()),
            Arc::new(event_name.finish()),
        ];
        RecordBatch::try_new(schema::logs_schema(), columns).map_err(|source| Error::Arrow {
            op: "assemble logs batch",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(labels: &[(&str, &str)], ts: i64) -> LogRecord {
        LogRecord {
            labels: Labels::from_pairs(labels).into(),
            timestamp: ts,
            ..LogRecord::default()
        }
    }

    #[test]
    fn plan_groups_by_hour_and_cluster_and_sorts_by_stream_then_time() {
        let hour_ns = crate::layout::HOUR_MS * NS_PER_MS;
        let records = vec![
            rec(&[("cluster", "a"), ("service_name", "z")], 5),
            rec(&[("cluster", "a"), ("service_name", "b")], 7),
            rec(&[("cluster", "b"), ("service_name", "b")], 1),
            rec(&[("cluster", "a"), ("service_name", "b")], 3),
            rec(&[("cluster", "a"), ("service_name", "b")], hour_ns),
            rec(&[("service_name", "b")], -1),
        ];
        let plan = LogsPlan::new(&records).unwrap();
        let got: Vec<(i64, &str, Vec<u32>)> = plan
            .groups()
            .iter()
            .map(|g| (g.hour.0, g.cluster.as_str(), g.rows.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (-1, "", vec![5]),
                (0, "a", vec![3, 1, 0]),
                (0, "b", vec![2]),
                (1, "a", vec![4]),
            ]
        );
        let key = plan.file_key(&plan.groups()[0]).unwrap();
        assert_eq!((key.min_ts, key.max_ts, key.rows), (-1, -1, 1), "ms are floored");
        let key = plan.file_key(&plan.groups()[1]).unwrap();
        assert_eq!((key.min_ts, key.max_ts, key.rows, key.table), (0, 0, 3, Table::Logs));
        let batch = plan.record_batch(&plan.groups()[1]).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.schema(), schema::logs_schema());
    }

    #[test]
    fn a_record_sent_twice_is_written_once_and_anything_else_kept() {
        let mut other = rec(&[("cluster", "a")], 5);
        other.attributes = r#"{"k":"v"}"#.into();
        let mut records = vec![
            rec(&[("cluster", "a")], 5),
            other.clone(),
            rec(&[("cluster", "a")], 5),
            other,
            rec(&[("cluster", "a")], 6),
        ];
        // A long run: 40 lines at one time, each sent twice, interleaved.
        for _ in 0..2 {
            for i in 0..40 {
                let mut r = rec(&[("cluster", "a")], 9);
                r.body = format!("line {i}");
                records.push(r);
            }
        }
        let plan = LogsPlan::new(&records).unwrap();
        let rows = &plan.groups()[0].rows;
        let mut want = vec![0, 1, 4];
        want.extend(5..45);
        assert_eq!(rows, &want, "the first of each copy kept, in write order");
        assert_eq!(plan.record_batch(&plan.groups()[0]).unwrap().num_rows(), 43);
    }

    #[test]
    fn properties_reject_bad_levels() {
        let opts = WriterOptions {
            row_group_rows: 10,
            page_rows: 10,
            zstd_level: 99,
            log_line_index: true,
        };
        assert!(matches!(properties(&opts), Err(Error::InvalidData { .. })));
    }
}
