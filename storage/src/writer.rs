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
use crate::types::{Labels, Sample, Series, TimeRange, TimestampMs, sort_dedup_samples};
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

/// A series as the metrics writer reads it: its labels, and its samples asked for a time
/// range at a time while a file is built.
///
/// Why not `&[Series]` alone: a flush's series sit in the head as compressed chunks, and
/// decoding them all into `Series` first held 16 bytes a sample beside the head for the whole
/// write. Through this trait the writer decodes one file part's samples at a time (see
/// `FilePlan::parts`), so a flush holds its plan (a few dozen bytes a series) and its parts.
/// [`Series`] implements it over the samples it holds; the head implements it over its chunks.
pub trait SeriesInput: Sync {
    /// The series' labels.
    fn labels(&self) -> &Labels;

    /// Its samples with timestamps in `range`, sorted by time, one per timestamp (of samples
    /// given for one timestamp, the last). Asking twice for one range gives the same samples.
    fn samples_in(&self, range: TimeRange) -> Cow<'_, [Sample]>;
}

impl SeriesInput for Series {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples_in(&self, range: TimeRange) -> Cow<'_, [Sample]> {
        let s = &self.samples;
        if s.windows(2).all(|w| w[0].timestamp < w[1].timestamp) {
            return Cow::Borrowed(sorted_in(s, range));
        }
        let mut owned: Vec<Sample> = s.iter().filter(|x| range.contains(x.timestamp)).copied().collect();
        sort_dedup_samples(&mut owned);
        Cow::Owned(owned)
    }
}

/// The samples of time-sorted `samples` in `range`.
fn sorted_in(samples: &[Sample], range: TimeRange) -> &[Sample] {
    let lo = samples.partition_point(|x| x.timestamp < range.start);
    let hi = samples.partition_point(|x| x.timestamp <= range.end);
    &samples[lo..hi.max(lo)]
}

/// One file's worth of input: a cluster-hour and the series slices that fall in it.
#[derive(Debug)]
pub(crate) struct FileGroup {
    pub hour: Hour,
    pub cluster: String,
    /// Sorted by (metric, labels).
    entries: Vec<Entry>,
}

/// The samples of one series that fall in one file: `rows` of them, from `first` to `last`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    series: usize,
    rows: usize,
    first: TimestampMs,
    last: TimestampMs,
}

impl FileGroup {
    /// The file's rows (samples).
    pub(crate) fn rows(&self) -> usize {
        self.entries.iter().map(|e| e.rows).sum()
    }
}

/// An input series with its small columns precomputed. Its `labels` text is not kept (a few
/// hundred bytes a series, the plan's largest part): it is made again for each part that holds
/// the series.
struct Prepared<'a> {
    input: &'a dyn SeriesInput,
    /// The merged samples of a label set given more than once (the later wins a timestamp).
    merged: Option<Vec<Sample>>,
    metric: &'a str,
    series_id: u64,
}

impl Prepared<'_> {
    fn samples_in(&self, range: TimeRange) -> Cow<'_, [Sample]> {
        match &self.merged {
            Some(all) => Cow::Borrowed(sorted_in(all, range)),
            None => self.input.samples_in(range),
        }
    }
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("labels", self.input.labels())
            .field("merged", &self.merged.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// Input series split into per-(hour, cluster) files, ready to encode.
///
/// Repeated label sets are merged (for a repeated timestamp the later series wins) and unsorted
/// samples are sorted, so any input gives valid files. The plan holds no samples of its own
/// (but a repeated label set's merge): each part decodes its entries' samples when it is built.
#[derive(Debug)]
pub(crate) struct MetricsPlan<'a> {
    series: Vec<Prepared<'a>>,
    groups: Vec<FileGroup>,
}

impl<'a> MetricsPlan<'a> {
    /// Fails (writing nothing) when a timestamp lies outside the years keys can name
    /// (see [`storable_timestamp`]).
    pub(crate) fn new(input: impl IntoIterator<Item = &'a dyn SeriesInput>) -> Result<Self> {
        let input = input.into_iter();
        let n = input.size_hint().0;
        let mut first: HashMap<&Labels, usize> = HashMap::with_capacity(n);
        let mut series: Vec<Prepared<'a>> = Vec::with_capacity(n);
        let mut repeated = Vec::new();
        for s in input {
            let labels = s.labels();
            if let Some(&i) = first.get(labels) {
                repeated.push((i, s));
                continue;
            }
            first.insert(labels, series.len());
            series.push(Prepared {
                input: s,
                merged: None,
                metric: labels.metric_name().unwrap_or(""),
                series_id: labels.series_id().0,
            });
        }
        for (i, s) in repeated {
            let p = &mut series[i];
            let mut all = match p.merged.take() {
                Some(all) => all,
                None => p.input.samples_in(TimeRange::ALL).into_owned(),
            };
            // Appending then stable-sorting keeps the later series' sample for a shared timestamp.
            all.extend_from_slice(&s.samples_in(TimeRange::ALL));
            sort_dedup_samples(&mut all);
            p.merged = Some(all);
        }

        let mut groups: HashMap<(Hour, &str), Vec<Entry>> = HashMap::new();
        for (i, p) in series.iter().enumerate() {
            // Decoded once here to cut it by hour, and again a file part at a time.
            let samples = p.samples_in(TimeRange::ALL);
            let Some((lo, hi)) = samples.first().zip(samples.last()) else {
                continue;
            };
            if !storable_timestamp(lo.timestamp) || !storable_timestamp(hi.timestamp) {
                return Err(Error::InvalidData {
                    reason: format!("series {} has a timestamp outside years 0000-9999", p.input.labels()),
                });
            }
            let cluster = p.input.labels().get(crate::types::CLUSTER).unwrap_or("");
            let mut start = 0;
            while start < samples.len() {
                let hour = Hour::of(samples[start].timestamp);
                let hour_end = hour.end_ms();
                let len = samples[start..].partition_point(|s| s.timestamp <= hour_end);
                groups.entry((hour, cluster)).or_default().push(Entry {
                    series: i,
                    rows: len,
                    first: samples[start].timestamp,
                    last: samples[start + len - 1].timestamp,
                });
                start += len;
            }
        }

        let mut groups: Vec<FileGroup> = groups
            .into_iter()
            .map(|((hour, cluster), entries)| {
                // The file's row order; the labels texts live only while its entries are sorted.
                let mut keyed: Vec<(&str, String, Entry)> = entries
                    .into_iter()
                    .map(|e| {
                        let p = &series[e.series];
                        (p.metric, schema::labels_json(p.input.labels()), e)
                    })
                    .collect();
                keyed.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                let entries = keyed.into_iter().map(|(_, _, e)| e).collect();
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
        // Series of different metrics share a labels text (it leaves out `__name__`).
        let mut label_ids: HashMap<String, i32> = HashMap::new();
        let mut label_values: Vec<String> = Vec::new();
        let mut metric_keys = Vec::with_capacity(rows);
        let mut label_keys = Vec::with_capacity(rows);
        let mut ids = Vec::with_capacity(rows);
        let mut ts = Vec::with_capacity(rows);
        let mut values = Vec::with_capacity(rows);
        // Each entry's rows, cut to the wanted ones (offsets within the entry).
        let mut at = 0;
        let entries = group.entries.iter().filter_map(|e| {
            let (first, next) = (at, at + e.rows);
            at = next;
            let (lo, hi) = (first.max(wanted.start), next.min(wanted.end));
            (lo < hi).then(|| (e, lo - first..hi - first))
        });
        for (e, cut) in entries {
            let p = &self.series[e.series];
            let samples = p.samples_in(TimeRange::new(e.first, e.last));
            if samples.len() != e.rows {
                return Err(Error::InvalidData {
                    reason: format!(
                        "series {} gave {} samples for a range that held {} when the write was planned",
                        p.input.labels(),
                        samples.len(),
                        e.rows
                    ),
                });
            }
            // Entries are sorted by metric, so equal metrics are adjacent.
            if metric_values.last() != Some(&p.metric) {
                metric_values.push(p.metric);
            }
            let m = (metric_values.len() - 1) as i32;
            let text = schema::labels_json(p.input.labels());
            let l = match label_ids.get(&text) {
                Some(&l) => l,
                None => {
                    let l = label_values.len() as i32;
                    label_ids.insert(text.clone(), l);
                    label_values.push(text);
                    l
                }
            };
            let n = cut.len();
            metric_keys.extend(std::iter::repeat_n(m, n));
            label_keys.extend(std::iter::repeat_n(l, n));
            ids.extend(std::iter::repeat_n(p.series_id, n));
            for s in &samples[cut] {
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
            dict(label_keys, label_values.iter().map(String::as_str).collect())?,
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
        let lo = group.entries.iter().map(|e| e.first).min().unwrap_or(0);
        let hi = group.entries.iter().map(|e| e.last).max().unwrap_or(0);
        debug_assert!(hi - lo < HOUR_MS);
        FileKey::new(Table::Metrics, &group.cluster, lo, hi, group.rows() as u64)
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
    expected_bytes: usize,
) -> Result<Bytes> {
    let mut encoder = PartsEncoder::new(schema, props, key, expected_bytes)?;
    while let Some(batch) = parts.blocking_recv() {
        encoder.write(&batch)?;
    }
    encoder.finish()
}

/// One Parquet file in memory, written a part at a time (a table with no footer metadata or
/// row-group indexes): the flush's parts ([`encode_parts`]) and the compactor's merge in parts.
pub(crate) struct PartsEncoder {
    writer: ArrowWriter<Vec<u8>>,
    key: String,
}

impl PartsEncoder {
    /// `expected_bytes`: about the file's size. The file is written into a buffer of that
    /// capacity, so it is not grown by doubling, each larger copy faulting in fresh pages while
    /// the smaller ones wait to be purged (the allocator keeps freed memory a second outside
    /// the `ingest` role): that was a fifth of the pages a flush faulted in. Pages of the
    /// buffer left unwritten are never touched, so too large a guess costs no memory.
    pub(crate) fn new(
        schema: arrow_schema::SchemaRef,
        props: WriterProperties,
        key: &str,
        expected_bytes: usize,
    ) -> Result<Self> {
        let sink = Vec::with_capacity(expected_bytes);
        let writer = ArrowWriter::try_new(sink, schema, Some(props)).map_err(|source| Error::Parquet {
            op: "encode",
            key: key.to_string(),
            source,
        })?;
        Ok(Self {
            writer,
            key: key.to_string(),
        })
    }

    pub(crate) fn write(&mut self, part: &RecordBatch) -> Result<()> {
        self.writer.write(part).map_err(|source| self.error(source))
    }

    pub(crate) fn finish(self) -> Result<Bytes> {
        let key = self.key;
        let bytes = self.writer.into_inner().map_err(|source| Error::Parquet {
            op: "encode",
            key,
            source,
        })?;
        Ok(Bytes::from(bytes))
    }

    fn error(&self, source: parquet::errors::ParquetError) -> Error {
        Error::Parquet {
            op: "encode",
            key: self.key.clone(),
            source,
        }
    }
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
    let plan = MetricsPlan::new(series.iter().map(|s| s as &dyn SeriesInput))?;
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

pub(crate) mod encode_thread;

#[cfg(test)]
mod tests;
