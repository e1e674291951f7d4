//! Encodes series into metrics Parquet files: one file per (UTC hour, cluster).
//!
//! Encoding choices (sizes measured by `bytes_per_sample_on_node_exporter_like_data`):
//! - `cluster`, `metric`, `labels`, `series_id`: dictionary + RLE. Rows are sorted by series,
//!   so each column is long runs of one key; the dictionary page limit is raised for `labels`
//!   and `series_id` so tens of thousands of series per row group stay dictionary-encoded
//!   instead of falling back to plain strings.
//! - `timestamp`: DELTA_BINARY_PACKED. Regular scrape intervals give constant deltas.
//! - `value`: BYTE_STREAM_SPLIT. Splitting the 8 bytes of each f64 into 8 streams puts the
//!   slowly changing sign/exponent/high-mantissa bytes together, which zstd then shrinks.
//! - zstd on every page; statistics at page level (column + offset index) for pruning.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use crate::config::StorageConfig;
use crate::layout::{FileKey, HOUR_MS, Hour, Table, storable_timestamp};
use crate::parquet_io::index::RowGroupIndex;
use crate::schema::{self, col};
use crate::types::{Labels, Sample, Series, sort_dedup_samples};
use crate::{Error, Result};

/// Dictionary page limit for the per-series columns: ~30k label sets of a few hundred bytes
/// each must stay dictionary-encoded (the default 1 MiB would fall back to plain strings).
const SERIES_DICT_PAGE_BYTES: usize = 32 << 20;

/// How files are encoded; derived from [`StorageConfig`].
#[derive(Clone, Debug)]
pub(crate) struct WriterOptions {
    pub row_group_rows: usize,
    pub page_rows: usize,
    pub zstd_level: i32,
    /// The logs table stores its `body_grams` row-group index (`storage.log_line_index`).
    pub log_line_index: bool,
}

impl WriterOptions {
    pub(crate) fn from_config(cfg: &StorageConfig) -> Self {
        Self {
            row_group_rows: cfg.row_group_rows,
            page_rows: cfg.page_rows,
            zstd_level: cfg.zstd_level,
            log_line_index: cfg.log_line_index,
        }
    }

    /// The Parquet writer properties for the metrics table.
    pub(crate) fn properties(&self) -> Result<WriterProperties> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| Error::InvalidData {
            reason: format!("zstd level {}: {e}", self.zstd_level),
        })?;
        let column = |name: &str| ColumnPath::from(name);
        let sorting = [col::CLUSTER, col::METRIC, col::LABELS, col::TIMESTAMP].map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: false,
        });
        let page_rows = self.page_rows.max(1);
        Ok(WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_data_page_row_count_limit(page_rows)
            .set_write_batch_size(page_rows.min(1024))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_sorting_columns(Some(sorting.to_vec()))
            .set_column_dictionary_page_size_limit(column(schema::LABELS), SERIES_DICT_PAGE_BYTES)
            .set_column_dictionary_page_size_limit(column(schema::SERIES_ID), SERIES_DICT_PAGE_BYTES)
            .set_column_dictionary_enabled(column(schema::TIMESTAMP), false)
            .set_column_encoding(column(schema::TIMESTAMP), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(column(schema::VALUE), false)
            .set_column_encoding(column(schema::VALUE), Encoding::BYTE_STREAM_SPLIT)
            // Min/max of float values prunes nothing PromQL asks for.
            .set_column_statistics_enabled(column(schema::VALUE), EnabledStatistics::None)
            .build())
    }
}

/// One file's worth of input: a cluster-hour and the series slices that fall in it.
#[derive(Debug)]
pub(crate) struct FileGroup {
    pub hour: Hour,
    pub cluster: String,
    /// Sorted by (metric, labels).
    entries: Vec<Entry>,
}

/// A series index in the plan and the range of its samples that falls in one file.
type Entry = (usize, Range<usize>);

impl FileGroup {
    /// The file's rows (samples).
    pub(crate) fn rows(&self) -> usize {
        self.entries.iter().map(|(_, r)| r.len()).sum()
    }
}

/// A normalised input series: samples sorted and unique, its columns precomputed.
#[derive(Debug)]
struct Prepared<'a> {
    labels: &'a Labels,
    samples: Cow<'a, [Sample]>,
    metric: &'a str,
    labels_json: String,
    series_id: u64,
}

/// Input series split into per-(hour, cluster) files, ready to encode.
///
/// Repeated label sets are merged (for a repeated timestamp the later series wins) and unsorted
/// samples are sorted, so any `&[Series]` gives valid files.
#[derive(Debug)]
pub(crate) struct MetricsPlan<'a> {
    series: Vec<Prepared<'a>>,
    groups: Vec<FileGroup>,
}

impl<'a> MetricsPlan<'a> {
    /// Fails (writing nothing) when a timestamp lies outside the years keys can name
    /// (see [`storable_timestamp`]).
    pub(crate) fn new(input: &'a [Series]) -> Result<Self> {
        let mut first: HashMap<&Labels, usize> = HashMap::with_capacity(input.len());
        let mut series: Vec<Prepared<'a>> = Vec::with_capacity(input.len());
        for s in input {
            if s.samples.is_empty() {
                continue;
            }
            if let Some(&i) = first.get(&s.labels) {
                // Appending then stable-sorting keeps the later series' sample for a shared timestamp.
                let merged = series[i].samples.to_mut();
                merged.extend_from_slice(&s.samples);
                continue;
            }
            first.insert(&s.labels, series.len());
            series.push(Prepared {
                labels: &s.labels,
                samples: Cow::Borrowed(&s.samples),
                metric: s.labels.metric_name().unwrap_or(""),
                labels_json: schema::labels_json(&s.labels),
                series_id: s.labels.series_id().0,
            });
        }

        let mut groups: HashMap<(Hour, &str), Vec<Entry>> = HashMap::new();
        for (i, p) in series.iter_mut().enumerate() {
            if !p.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp) {
                let mut owned = p.samples.to_vec();
                sort_dedup_samples(&mut owned);
                p.samples = Cow::Owned(owned);
            }
            let (lo, hi) = (p.samples[0].timestamp, p.samples[p.samples.len() - 1].timestamp);
            if !storable_timestamp(lo) || !storable_timestamp(hi) {
                return Err(Error::InvalidData {
                    reason: format!("series {} has a timestamp outside years 0000-9999", p.labels),
                });
            }
            let cluster = p.labels.get(crate::types::CLUSTER).unwrap_or("");
            let mut start = 0;
            while start < p.samples.len() {
                let hour = Hour::of(p.samples[start].timestamp);
                let hour_end = hour.end_ms();
                let len = p.samples[start..].partition_point(|s| s.timestamp <= hour_end);
                groups.entry((hour, cluster)).or_default().push((i, start..start + len));
                start += len;
            }
        }

        let mut groups: Vec<FileGroup> = groups
            .into_iter()
            .map(|((hour, cluster), mut entries)| {
                entries.sort_unstable_by(|a, b| {
                    let (a, b) = (&series[a.0], &series[b.0]);
                    (a.metric, &a.labels_json).cmp(&(b.metric, &b.labels_json))
                });
                FileGroup {
                    hour,
                    cluster: cluster.to_string(),
                    entries,
                }
            })
            .collect();
        groups.sort_unstable_by(|a, b| (a.hour, &a.cluster).cmp(&(b.hour, &b.cluster)));
        Ok(Self { series, groups })
    }

    /// The files this plan writes, in (hour, cluster) order.
    pub(crate) fn groups(&self) -> &[FileGroup] {
        &self.groups
    }

    /// Rows `wanted` (clamped to the file's rows) of one file as an Arrow batch in
    /// [`schema::metrics_schema`], sorted; consecutive ranges give the file's rows in order.
    pub(crate) fn record_batch(&self, group: &FileGroup, wanted: Range<usize>) -> Result<RecordBatch> {
        let wanted = wanted.start..wanted.end.min(group.rows());
        let rows = wanted.len();
        let mut metric_values: Vec<&str> = Vec::new();
        let mut label_ids: HashMap<&str, i32> = HashMap::new();
        let mut label_values: Vec<&str> = Vec::new();
        let mut metric_keys = Vec::with_capacity(rows);
        let mut label_keys = Vec::with_capacity(rows);
        let mut ids = Vec::with_capacity(rows);
        let mut ts = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(rows);
        // Each entry's rows, cut to the wanted ones.
        let mut at = 0;
        let entries = group.entries.iter().filter_map(|(i, range)| {
            let (first, next) = (at, at + range.len());
            at = next;
            let (lo, hi) = (first.max(wanted.start), next.min(wanted.end));
            (lo < hi).then(|| (i, range.start + (lo - first)..range.start + (hi - first)))
        });
        for (i, range) in entries {
            let p = &self.series[*i];
            // Entries are sorted by metric, so equal metrics are adjacent.
            if metric_values.last() != Some(&p.metric) {
                metric_values.push(p.metric);
            }
            let m = (metric_values.len() - 1) as i32;
            let next = label_values.len() as i32;
            let l = *label_ids.entry(p.labels_json.as_str()).or_insert(next);
            if l == next {
                label_values.push(p.labels_json.as_str());
            }
            let n = range.len();
            metric_keys.extend(std::iter::repeat_n(m, n));
            label_keys.extend(std::iter::repeat_n(l, n));
            ids.extend(std::iter::repeat_n(p.series_id, n));
            for s in &p.samples[range.clone()] {
                ts.push(s.timestamp);
                values.push(s.value);
            }
        }
        let dict = |keys: Vec<i32>, values: Vec<&str>| -> Result<ArrayRef> {
            let array =
                DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(StringArray::from(values)))
                    .map_err(|source| Error::Arrow {
                        op: "build dictionary column",
                        source,
                    })?;
            Ok(Arc::new(array))
        };
        let columns: Vec<ArrayRef> = vec![
            dict(vec![0; rows], vec![group.cluster.as_str()])?,
            dict(metric_keys, metric_values)?,
            dict(label_keys, label_values)?,
            Arc::new(UInt64Array::from(ids)),
            Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
            // Float64Array stores the f64 bit patterns as given: NaN payloads survive.
            Arc::new(Float64Array::from(values)),
        ];
        RecordBatch::try_new(schema::metrics_schema(), columns).map_err(|source| Error::Arrow {
            op: "assemble metrics batch",
            source,
        })
    }

    /// A fresh key for one file (new UUID v7 each call).
    pub(crate) fn file_key(&self, group: &FileGroup) -> Result<FileKey> {
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        let mut rows = 0u64;
        for (i, r) in &group.entries {
            let s = &self.series[*i].samples[r.clone()];
            lo = lo.min(s[0].timestamp);
            hi = hi.max(s[s.len() - 1].timestamp);
            rows += r.len() as u64;
        }
        debug_assert!(hi - lo < HOUR_MS);
        FileKey::new(Table::Metrics, &group.cluster, lo, hi, rows)
    }
}

/// Encodes one batch as a complete Parquet file in memory, with `metadata` in its footer and
/// the row-group indexes `indexes` makes from the row groups' row ranges stored after them
/// (see `parquet_io::index`).
pub(crate) fn encode_batch(
    batch: &RecordBatch,
    props: WriterProperties,
    key: &str,
    metadata: Vec<KeyValue>,
    indexes: impl FnOnce(&[Range<usize>]) -> Result<Vec<RowGroupIndex>>,
) -> Result<Bytes> {
    let parquet_err = |source| Error::Parquet {
        op: "encode",
        key: key.to_string(),
        source,
    };
    let mut writer = ArrowWriter::try_new(
        Vec::with_capacity(batch.num_rows() * 2 + 4096),
        batch.schema(),
        Some(props),
    )
    .map_err(parquet_err)?;
    writer.write(batch).map_err(parquet_err)?;
    writer.flush().map_err(parquet_err)?;
    let mut start = 0usize;
    let row_groups: Vec<Range<usize>> = writer
        .flushed_row_groups()
        .iter()
        .map(|rg| {
            let r = start..start + rg.num_rows() as usize;
            start = r.end;
            r
        })
        .collect();
    for index in indexes(&row_groups)? {
        let mut offsets = Vec::with_capacity(index.blobs.len());
        for blob in &index.blobs {
            offsets.push(writer.bytes_written() as u64);
            writer.write_all(blob).map_err(|e| parquet_err(e.into()))?;
        }
        writer.append_key_value_metadata(index.footer_entry(&offsets));
    }
    for kv in metadata {
        writer.append_key_value_metadata(kv);
    }
    Ok(Bytes::from(writer.into_inner().map_err(parquet_err)?))
}

/// Encodes the batches `parts` sends, in order, as one Parquet file in memory (a table with no
/// footer metadata or row-group indexes; see `FilePlan::parts`). Runs on a blocking thread
/// while the sender builds the next part.
pub(crate) fn encode_parts(
    mut parts: tokio::sync::mpsc::Receiver<RecordBatch>,
    schema: arrow_schema::SchemaRef,
    props: WriterProperties,
    key: &str,
) -> Result<Bytes> {
    let parquet_err = |source| Error::Parquet {
        op: "encode",
        key: key.to_string(),
        source,
    };
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(parquet_err)?;
    while let Some(batch) = parts.blocking_recv() {
        writer.write(&batch).map_err(parquet_err)?;
    }
    Ok(Bytes::from(writer.into_inner().map_err(parquet_err)?))
}

/// An encoded file and its key.
#[cfg(test)]
#[derive(Clone, Debug)]
pub(crate) struct EncodedFile {
    pub key: FileKey,
    pub bytes: Bytes,
}

#[cfg(test)]
/// Encodes `series` into Parquet files synchronously (the whole write path minus the upload;
/// what a benchmark measures).
pub(crate) fn encode_metrics(series: &[Series], opts: &WriterOptions) -> Result<Vec<EncodedFile>> {
    let plan = MetricsPlan::new(series)?;
    let props = opts.properties()?;
    plan.groups()
        .iter()
        .map(|g| {
            let key = plan.file_key(g)?;
            let bytes = encode_batch(
                &plan.record_batch(g, 0..usize::MAX)?,
                props.clone(),
                key.path().as_ref(),
                Vec::new(),
                |_| Ok(Vec::new()),
            )?;
            Ok(EncodedFile { key, bytes })
        })
        .collect()
}

#[cfg(test)]
mod tests;
