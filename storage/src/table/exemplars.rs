//! The `exemplars` table: exemplars ([`Exemplar`]) of float and histogram series, one row per
//! exemplar, one file per (UTC hour, cluster) under `exemplars/` (see [`crate::layout`]); and
//! its reader ([`ExemplarsReader`]), which answers [`crate::read::Source::exemplars`] for the
//! Parquet source.
//!
//! # Schema (on-disk contract)
//!
//! Rows are sorted by (`cluster`, `metric`, `labels`, `timestamp`); the first five columns are
//! exactly the metrics table's ([`crate::schema`]) and describe the series the exemplar belongs to.
//!
//! | column            | Arrow type                    | content                                            |
//! |-------------------|-------------------------------|----------------------------------------------------|
//! | `cluster`         | Dictionary(Int32, Utf8)       | the series' `cluster` label, `""` when absent      |
//! | `metric`          | Dictionary(Int32, Utf8)       | the series' `__name__` label, `""` when absent     |
//! | `labels`          | Dictionary(Int32, Utf8)       | the series' other labels, canonical JSON object    |
//! | `series_id`       | UInt64                        | `Labels::series_id` of the series' labels          |
//! | `timestamp`       | Timestamp(Millisecond, "UTC") | exemplar time                                      |
//! | `value`           | Float64                       | exemplar value, exact bits                         |
//! | `exemplar_labels` | Utf8                          | the exemplar's own labels (e.g. `trace_id`), JSON  |
//!
//! `exemplar_labels` holds *every* exemplar label as a JSON object with keys in byte order and
//! no whitespace (`{"span_id":"…","trace_id":"…"}`, `{}` when none); it is plain (not
//! dictionary-encoded) because trace ids rarely repeat. No column is nullable.
//!
//! An exemplar is identified by (series, timestamp, value bits, exemplar labels): writing the
//! same one twice, or in two files, returns it once.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::series::{self, FileRows, SeriesCollector, SeriesPlan, key_col, series_plan};
use super::{ParquetTable, ReadContext};
use crate::catalog::Catalog;
use crate::layout::Table;
use crate::parquet_io::ParquetIo;
use crate::parquet_io::plan::cluster_may_match;
use crate::read::sort_dedup_exemplars;
use crate::schema;
use crate::signals::{Exemplar, ExemplarSeries};
use crate::types::{Labels, Matcher, TimeRange};
use crate::writer::WriterOptions;
use crate::{Error, Result};

pub(crate) const VALUE: &str = "value";
pub(crate) const EXEMPLAR_LABELS: &str = "exemplar_labels";

/// Column positions in [`exemplars_schema`] after the five key columns.
mod col {
    pub(super) const VALUE: usize = 5;
    pub(super) const EXEMPLAR_LABELS: usize = 6;
}

static EXEMPLARS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = series::key_fields();
    fields.extend([
        Field::new(VALUE, DataType::Float64, false),
        Field::new(EXEMPLAR_LABELS, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The exemplars table's Arrow schema (also embedded in every file's footer).
pub(crate) fn exemplars_schema() -> SchemaRef {
    EXEMPLARS_SCHEMA.clone()
}

/// The `exemplar_labels` text of a label set: every label, keys in byte order.
fn exemplar_labels_json(labels: &Labels) -> String {
    let map: BTreeMap<&str, &str> = labels.iter().map(|l| (l.name, l.value)).collect();
    // A map of strings always serialises.
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// The exemplars table.
#[derive(Debug)]
pub(crate) struct Exemplars;

impl ParquetTable for Exemplars {
    const KIND: Table = Table::Exemplars;
    const IDENTITY: &'static [&'static str] = &[
        schema::CLUSTER,
        schema::METRIC,
        schema::LABELS,
        schema::TIMESTAMP,
        VALUE,
        EXEMPLAR_LABELS,
    ];
    type Input = [ExemplarSeries];
    type Plan<'a> = SeriesPlan<Exemplar>;
    type Reader = ExemplarsReader;

    fn schema() -> SchemaRef {
        exemplars_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        series::table_properties(
            writer,
            &[key_col::CLUSTER, key_col::METRIC, key_col::LABELS, key_col::TIMESTAMP],
            |b| b.set_column_dictionary_enabled(ColumnPath::from(EXEMPLAR_LABELS), false),
        )
    }

    /// Repeated series are merged and repeated exemplars stored once.
    fn plan(input: &[ExemplarSeries]) -> Result<SeriesPlan<Exemplar>> {
        let ts = |e: &Exemplar| e.timestamp;
        let files = series::split_series(
            input.iter().map(|s| (&s.labels, s.exemplars.as_slice())),
            ts,
            sort_dedup_exemplars,
        )?;
        Ok(SeriesPlan {
            table: Table::Exemplars,
            files,
            ts,
            batch: record_batch,
        })
    }

    fn reader(ctx: ReadContext) -> ExemplarsReader {
        ExemplarsReader {
            io: ctx.io,
            catalog: ctx.catalog,
        }
    }
}

/// One file's rows as a batch in [`exemplars_schema`].
fn record_batch(file: &FileRows<Exemplar>) -> Result<RecordBatch> {
    let mut columns = file.key_columns(|e| e.timestamp)?;
    columns.push(Arc::new(Float64Array::from_iter_values(file.items().map(|e| e.value))) as ArrayRef);
    let texts: Vec<String> = file.items().map(|e| exemplar_labels_json(&e.labels)).collect();
    columns.push(Arc::new(StringArray::from(texts)));
    RecordBatch::try_new(exemplars_schema(), columns).map_err(|source| Error::Arrow {
        op: "assemble exemplars batch",
        source,
    })
}

/// Reads exemplars back from the exemplars table.
#[derive(Debug)]
pub(crate) struct ExemplarsReader {
    io: ParquetIo,
    catalog: Arc<Catalog>,
}

impl ExemplarsReader {
    /// [`crate::read::Source::exemplars`] over the `exemplars` table: exemplars in `range` of
    /// the series matching any of `selectors`, each series once (sorted by labels), its
    /// exemplars per [`sort_dedup_exemplars`].
    pub(crate) async fn select(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let files = self.catalog.files(Table::Exemplars, range, |c| {
            selectors.iter().any(|s| cluster_may_match(c, s))
        });
        // Row groups and pages are pruned by the pins of a lone selector; with several, by time only.
        let pins: &[Matcher] = match selectors {
            [one] => one,
            _ => &[],
        };
        let mut collect = SeriesCollector::new(selectors);
        let mut reads = self
            .io
            .read_files(files, exemplars_schema(), true, |m| series_plan(m, range, pins));
        while let Some((file, batches)) = reads.try_next().await? {
            for batch in &batches {
                decode_batch(&mut collect, batch, file.path.as_ref(), range)?;
            }
        }
        let mut out: Vec<ExemplarSeries> = collect
            .out
            .into_iter()
            .filter(|(_, exemplars)| !exemplars.is_empty())
            .map(|(labels, mut exemplars)| {
                sort_dedup_exemplars(&mut exemplars);
                ExemplarSeries { labels, exemplars }
            })
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// Appends the selected rows of one batch (in time `range`) to their series.
fn decode_batch(
    collect: &mut SeriesCollector<'_, Exemplar>,
    batch: &RecordBatch,
    key: &str,
    range: TimeRange,
) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_string(),
        reason,
    };
    let rows = collect.rows(batch, key)?;
    let values = batch
        .column(col::VALUE)
        .as_primitive_opt::<Float64Type>()
        .filter(|v| v.null_count() == 0)
        .ok_or_else(|| corrupt("exemplars column value has an unexpected type or nulls".into()))?;
    let labels = batch
        .column(col::EXEMPLAR_LABELS)
        .as_string_opt::<i32>()
        .filter(|v| v.null_count() == 0)
        .ok_or_else(|| corrupt("exemplars column exemplar_labels has an unexpected type or nulls".into()))?;
    for (row, (slot, timestamp)) in rows.into_iter().enumerate() {
        let Some(slot) = slot.filter(|_| range.contains(timestamp)) else {
            continue;
        };
        let text = labels.value(row);
        let parsed = schema::parse_labels_json(text).map_err(|e| corrupt(format!("exemplar_labels {text:?}: {e}")))?;
        collect.out[slot].1.push(Exemplar {
            labels: Labels::new(parsed),
            value: values.value(row),
            timestamp,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
