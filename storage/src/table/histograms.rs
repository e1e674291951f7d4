//! The `histograms` table: native-histogram samples ([`HistogramSample`]), one row per sample,
//! one file per (UTC hour, cluster) under `histograms/` (see [`crate::layout`]).
//!
//! # Schema (on-disk contract)
//!
//! Rows are sorted by (`cluster`, `metric`, `labels`, `timestamp`); the first five columns are
//! exactly the metrics table's ([`crate::schema`]), so the same readers and pruning apply.
//!
//! | column             | Arrow type                                    | content                                        |
//! |--------------------|-----------------------------------------------|------------------------------------------------|
//! | `cluster`          | Dictionary(Int32, Utf8)                       | the `cluster` label, `""` when absent          |
//! | `metric`           | Dictionary(Int32, Utf8)                       | the `__name__` label, `""` when absent         |
//! | `labels`           | Dictionary(Int32, Utf8)                       | other labels, canonical JSON object            |
//! | `series_id`        | UInt64                                        | `Labels::series_id` of all labels              |
//! | `timestamp`        | Timestamp(Millisecond, "UTC")                 | sample time                                    |
//! | `count`            | Float64                                       | observation count                              |
//! | `sum`              | Float64                                       | sum of observations                            |
//! | `schema`           | Int32                                         | −4..=8 exponential, −53 custom buckets         |
//! | `zero_threshold`   | Float64                                       | width of the zero bucket                       |
//! | `zero_count`       | Float64                                       | observations in the zero bucket                |
//! | `positive_spans`   | `List<Struct{offset: Int32, length: UInt32}>` | spans of the positive buckets                  |
//! | `positive_buckets` | `List<Float64>`                               | **absolute** positive bucket counts            |
//! | `negative_spans`   | `List<Struct{offset: Int32, length: UInt32}>` | spans of the negative buckets                  |
//! | `negative_buckets` | `List<Float64>`                               | absolute negative bucket counts                |
//! | `reset_hint`       | UInt8                                         | [`ResetHint`]: 0 unknown, 1 yes, 2 no, 3 gauge |
//! | `custom_values`    | `List<Float64>`                               | upper bounds for schema −53, else empty        |
//!
//! No column is nullable; list elements (`item`) are not nullable either. Spans are one list of
//! structs rather than two parallel lists so a span's offset and length cannot disagree in
//! length; DuckDB reads the column as `STRUCT("offset" INTEGER, length UINTEGER)[]`. Floats keep
//! their exact bits. Bucket meaning follows [`HistogramSample`]: spans and bucket lists are
//! stored as given, without re-validation.
//!
//! Reading ([`HistogramsReader::select`], served as `Source::select_histograms`) is a pruned
//! scan: files by time and cluster, row groups and pages by time, pinned cluster and metric.

use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, UInt8Type, UInt32Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, ListArray, RecordBatch, StructArray, UInt8Array};
use arrow_array::{PrimitiveArray, UInt32Array};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use futures::TryStreamExt;
use parquet::basic::Encoding;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::series::{
    self, FileRows, SeriesCollector, SeriesPlan, f64_list_column, keep_last_per_timestamp, key_col, list_column,
    list_range, series_plan,
};
use super::{ParquetTable, ReadContext};
use crate::catalog::Catalog;
use crate::layout::Table;
use crate::parquet_io::ParquetIo;
use crate::parquet_io::plan::cluster_may_match;
use crate::signals::{BucketSpan, HistogramSample, HistogramSeries, ResetHint};
use crate::types::{Matcher, TimeRange};
use crate::writer::WriterOptions;
use crate::{Error, Result};

pub(crate) const COUNT: &str = "count";
pub(crate) const SUM: &str = "sum";
pub(crate) const SCHEMA: &str = "schema";
pub(crate) const ZERO_THRESHOLD: &str = "zero_threshold";
pub(crate) const ZERO_COUNT: &str = "zero_count";
pub(crate) const POSITIVE_SPANS: &str = "positive_spans";
pub(crate) const POSITIVE_BUCKETS: &str = "positive_buckets";
pub(crate) const NEGATIVE_SPANS: &str = "negative_spans";
pub(crate) const NEGATIVE_BUCKETS: &str = "negative_buckets";
pub(crate) const RESET_HINT: &str = "reset_hint";
pub(crate) const CUSTOM_VALUES: &str = "custom_values";

/// Column positions in [`histograms_schema`] after the five key columns.
mod col {
    pub(super) const COUNT: usize = 5;
    pub(super) const SUM: usize = 6;
    pub(super) const SCHEMA: usize = 7;
    pub(super) const ZERO_THRESHOLD: usize = 8;
    pub(super) const ZERO_COUNT: usize = 9;
    pub(super) const POSITIVE_SPANS: usize = 10;
    pub(super) const POSITIVE_BUCKETS: usize = 11;
    pub(super) const NEGATIVE_SPANS: usize = 12;
    pub(super) const NEGATIVE_BUCKETS: usize = 13;
    pub(super) const RESET_HINT: usize = 14;
    pub(super) const CUSTOM_VALUES: usize = 15;
}

fn span_fields() -> Fields {
    Fields::from(vec![
        Field::new("offset", DataType::Int32, false),
        Field::new("length", DataType::UInt32, false),
    ])
}

fn spans_type() -> DataType {
    DataType::List(series::list_item(DataType::Struct(span_fields())))
}

fn f64_list_type() -> DataType {
    DataType::List(series::list_item(DataType::Float64))
}

static HISTOGRAMS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = series::key_fields();
    fields.extend([
        Field::new(COUNT, DataType::Float64, false),
        Field::new(SUM, DataType::Float64, false),
        Field::new(SCHEMA, DataType::Int32, false),
        Field::new(ZERO_THRESHOLD, DataType::Float64, false),
        Field::new(ZERO_COUNT, DataType::Float64, false),
        Field::new(POSITIVE_SPANS, spans_type(), false),
        Field::new(POSITIVE_BUCKETS, f64_list_type(), false),
        Field::new(NEGATIVE_SPANS, spans_type(), false),
        Field::new(NEGATIVE_BUCKETS, f64_list_type(), false),
        Field::new(RESET_HINT, DataType::UInt8, false),
        Field::new(CUSTOM_VALUES, f64_list_type(), false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The histograms table's Arrow schema (also embedded in every file's footer).
pub(crate) fn histograms_schema() -> SchemaRef {
    HISTOGRAMS_SCHEMA.clone()
}

/// The histograms table.
#[derive(Debug)]
pub(crate) struct Histograms;

impl ParquetTable for Histograms {
    const KIND: Table = Table::Histograms;
    const IDENTITY: &'static [&'static str] = &[
        crate::schema::CLUSTER,
        crate::schema::METRIC,
        crate::schema::LABELS,
        crate::schema::TIMESTAMP,
    ];
    type Input = [HistogramSeries];
    type Plan<'a> = SeriesPlan<HistogramSample>;
    type Reader = HistogramsReader;

    fn schema() -> SchemaRef {
        histograms_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        series::table_properties(
            writer,
            &[key_col::CLUSTER, key_col::METRIC, key_col::LABELS, key_col::TIMESTAMP],
            |b| {
                // Float columns: no dictionary; split bytes compress like the metrics `value`.
                [COUNT, SUM, ZERO_THRESHOLD, ZERO_COUNT].into_iter().fold(b, |b, name| {
                    b.set_column_dictionary_enabled(ColumnPath::from(name), false)
                        .set_column_encoding(ColumnPath::from(name), Encoding::BYTE_STREAM_SPLIT)
                })
            },
        )
    }

    /// Repeated label sets are merged and samples sorted; for a repeated timestamp the sample
    /// given later wins.
    fn plan(input: &[HistogramSeries]) -> Result<SeriesPlan<HistogramSample>> {
        let ts = |s: &HistogramSample| s.timestamp;
        let files = series::split_series(input.iter().map(|s| (&s.labels, s.samples.as_slice())), ts, |samples| {
            keep_last_per_timestamp(samples, ts)
        })?;
        Ok(SeriesPlan {
            table: Table::Histograms,
            files,
            ts,
            batch: record_batch,
        })
    }

    fn reader(ctx: ReadContext) -> HistogramsReader {
        HistogramsReader {
            io: ctx.io,
            catalog: ctx.catalog,
        }
    }
}

/// Reads native-histogram series back from the histograms table.
#[derive(Debug)]
pub(crate) struct HistogramsReader {
    io: ParquetIo,
    catalog: std::sync::Arc<Catalog>,
}

impl HistogramsReader {
    /// Native-histogram series matching all `matchers` with samples in `range` (closed), each
    /// once, samples sorted by time; for a timestamp stored twice, the later file's sample.
    pub(crate) async fn select(&self, matchers: &[Matcher], range: TimeRange) -> Result<Vec<HistogramSeries>> {
        let files = self
            .catalog
            .files(Table::Histograms, range, |c| cluster_may_match(c, matchers));
        let selectors = [matchers.to_vec()];
        let mut collect = SeriesCollector::new(&selectors);
        let mut reads = self
            .io
            .read_files(files, histograms_schema(), true, |m| series_plan(m, range, matchers));
        while let Some((file, batches)) = reads.try_next().await? {
            for batch in &batches {
                decode_batch(&mut collect, batch, file.path.as_ref(), range)?;
            }
        }
        Ok(collect
            .out
            .into_iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(labels, mut samples)| {
                keep_last_per_timestamp(&mut samples, |s| s.timestamp);
                HistogramSeries { labels, samples }
            })
            .collect())
    }
}

/// One file's rows as a batch in [`histograms_schema`].
fn record_batch(file: &FileRows<HistogramSample>) -> Result<RecordBatch> {
    let mut columns = file.key_columns(|s| s.timestamp)?;
    let f64s = |get: fn(&HistogramSample) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(file.items().map(get)))
    };
    columns.push(f64s(|s| s.count));
    columns.push(f64s(|s| s.sum));
    columns.push(Arc::new(Int32Array::from_iter_values(file.items().map(|s| s.schema))));
    columns.push(f64s(|s| s.zero_threshold));
    columns.push(f64s(|s| s.zero_count));
    columns.push(spans_column(file.items().map(|s| s.positive_spans.as_slice()))?);
    columns.push(f64_list_column(file.items(), |s| &s.positive_buckets)?);
    columns.push(spans_column(file.items().map(|s| s.negative_spans.as_slice()))?);
    columns.push(f64_list_column(file.items(), |s| &s.negative_buckets)?);
    columns.push(Arc::new(UInt8Array::from_iter_values(
        file.items().map(|s| s.reset_hint as u8),
    )));
    columns.push(f64_list_column(file.items(), |s| &s.custom_values)?);
    RecordBatch::try_new(histograms_schema(), columns).map_err(|source| Error::Arrow {
        op: "assemble histograms batch",
        source,
    })
}

fn spans_column<'a>(rows: impl Iterator<Item = &'a [BucketSpan]> + Clone) -> Result<ArrayRef> {
    let spans: Vec<&BucketSpan> = rows.clone().flatten().collect();
    let offsets: ArrayRef = Arc::new(Int32Array::from_iter_values(spans.iter().map(|s| s.offset)));
    let lengths: ArrayRef = Arc::new(UInt32Array::from_iter_values(spans.iter().map(|s| s.length)));
    let values = StructArray::try_new(span_fields(), vec![offsets, lengths], None).map_err(|source| Error::Arrow {
        op: "build span column",
        source,
    })?;
    list_column(DataType::Struct(span_fields()), rows.map(<[_]>::len), Arc::new(values))
}

/// Appends the selected rows of one batch (in time `range`) to their series.
fn decode_batch(
    collect: &mut SeriesCollector<'_, HistogramSample>,
    batch: &RecordBatch,
    key: &str,
    range: TimeRange,
) -> Result<()> {
    let corrupt = |what: &str| Error::Corrupt {
        key: key.to_string(),
        reason: format!("histograms column {what} has an unexpected type or nulls"),
    };
    let rows = collect.rows(batch, key)?;
    let f64s =
        |i: usize, name: &str| non_null(batch.column(i).as_primitive_opt::<Float64Type>()).ok_or_else(|| corrupt(name));
    let (count, sum) = (f64s(col::COUNT, COUNT)?, f64s(col::SUM, SUM)?);
    let (zero_threshold, zero_count) = (
        f64s(col::ZERO_THRESHOLD, ZERO_THRESHOLD)?,
        f64s(col::ZERO_COUNT, ZERO_COUNT)?,
    );
    let schema_col =
        non_null(batch.column(col::SCHEMA).as_primitive_opt::<Int32Type>()).ok_or_else(|| corrupt(SCHEMA))?;
    let reset =
        non_null(batch.column(col::RESET_HINT).as_primitive_opt::<UInt8Type>()).ok_or_else(|| corrupt(RESET_HINT))?;
    let pos_spans = Spans::of(batch, col::POSITIVE_SPANS).ok_or_else(|| corrupt(POSITIVE_SPANS))?;
    let neg_spans = Spans::of(batch, col::NEGATIVE_SPANS).ok_or_else(|| corrupt(NEGATIVE_SPANS))?;
    let pos = F64Lists::of(batch, col::POSITIVE_BUCKETS).ok_or_else(|| corrupt(POSITIVE_BUCKETS))?;
    let neg = F64Lists::of(batch, col::NEGATIVE_BUCKETS).ok_or_else(|| corrupt(NEGATIVE_BUCKETS))?;
    let custom = F64Lists::of(batch, col::CUSTOM_VALUES).ok_or_else(|| corrupt(CUSTOM_VALUES))?;
    for (row, (slot, timestamp)) in rows.into_iter().enumerate() {
        let Some(slot) = slot.filter(|_| range.contains(timestamp)) else {
            continue;
        };
        let hint = reset.value(row);
        let reset_hint = ResetHint::from_u8(hint).ok_or_else(|| Error::Corrupt {
            key: key.to_string(),
            reason: format!("reset_hint {hint} is not a known counter-reset hint"),
        })?;
        collect.out[slot].1.push(HistogramSample {
            timestamp,
            count: count.value(row),
            sum: sum.value(row),
            schema: schema_col.value(row),
            zero_threshold: zero_threshold.value(row),
            zero_count: zero_count.value(row),
            positive_spans: pos_spans.row(row),
            positive_buckets: pos.row(row),
            negative_spans: neg_spans.row(row),
            negative_buckets: neg.row(row),
            reset_hint,
            custom_values: custom.row(row),
        });
    }
    Ok(())
}

fn non_null<T: arrow_array::ArrowPrimitiveType>(a: Option<&PrimitiveArray<T>>) -> Option<&PrimitiveArray<T>> {
    a.filter(|a| a.null_count() == 0)
}

/// A non-null list column with its non-null child values.
fn list_of(batch: &RecordBatch, i: usize) -> Option<&ListArray> {
    batch
        .column(i)
        .as_list_opt::<i32>()
        .filter(|l| l.null_count() == 0 && l.values().null_count() == 0)
}

/// A `List<Float64>` column.
struct F64Lists<'a> {
    list: &'a ListArray,
    values: &'a Float64Array,
}

impl<'a> F64Lists<'a> {
    fn of(batch: &'a RecordBatch, i: usize) -> Option<Self> {
        let list = list_of(batch, i)?;
        let values = list.values().as_primitive_opt::<Float64Type>()?;
        Some(Self { list, values })
    }

    fn row(&self, row: usize) -> Vec<f64> {
        self.values.values()[list_range(self.list, row)].to_vec()
    }
}

/// A `List<Struct{offset, length}>` column.
struct Spans<'a> {
    list: &'a ListArray,
    offsets: &'a Int32Array,
    lengths: &'a UInt32Array,
}

impl<'a> Spans<'a> {
    fn of(batch: &'a RecordBatch, i: usize) -> Option<Self> {
        let list = list_of(batch, i)?;
        let spans = list.values().as_struct_opt()?;
        let offsets = non_null(spans.column_by_name("offset")?.as_primitive_opt::<Int32Type>())?;
        let lengths = non_null(spans.column_by_name("length")?.as_primitive_opt::<UInt32Type>())?;
        Some(Self { list, offsets, lengths })
    }

    fn row(&self, row: usize) -> Vec<BucketSpan> {
        list_range(self.list, row)
            .map(|i| BucketSpan {
                offset: self.offsets.value(i),
                length: self.lengths.value(i),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
