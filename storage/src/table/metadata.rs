//! The `metadata` table: what senders said about metric families ([`MetricMetadata`]: type,
//! help, unit, per cluster), and its reader ([`MetadataReader`]), which answers
//! [`crate::read::Source::metadata`] for the Parquet source.
//!
//! Each write stores one small file per cluster under `metadata/` holding the distinct entries
//! it was given (a flush writes what it saw since the previous one). Metadata has no time of its
//! own: the key's time span is the moment of the write (see [`crate::layout`]). Readers read
//! every metadata file once and keep the union of their entries in memory ([`MetadataReader`]),
//! so the table's size on disk grows with flushes while the memory it takes grows only with
//! distinct entries.
//!
//! # Schema (on-disk contract)
//!
//! Rows are distinct and sorted by (`cluster`, `metric`).
//!
//! | column    | Arrow type              | content                                                       |
//! |-----------|-------------------------|---------------------------------------------------------------|
//! | `cluster` | Dictionary(Int32, Utf8) | the cluster the metadata came from, `""` when unknown          |
//! | `metric`  | Utf8                    | the metric family name (no `_bucket`/`_sum`/`_count` suffix)   |
//! | `type`    | Utf8                    | `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or `unknown` |
//! | `help`    | Utf8                    | the help text, `""` when none                                  |
//! | `unit`    | Utf8                    | the unit, `""` when none                                       |
//!
//! No column is nullable.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use parking_lot::Mutex;
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

use super::{FilePlan, ParquetTable, ReadContext, series};
use crate::catalog::Catalog;
use crate::layout::{self, FileKey, Table};
use crate::parquet_io::{ParquetIo, plan};
use crate::signals::{MetricMetadata, MetricType};
use crate::types::TimeRange;
use crate::writer::WriterOptions;
use crate::{Error, Result};

pub(crate) const CLUSTER: &str = "cluster";
pub(crate) const METRIC: &str = "metric";
pub(crate) const TYPE: &str = "type";
pub(crate) const HELP: &str = "help";
pub(crate) const UNIT: &str = "unit";

/// Column positions in [`metadata_schema`].
mod col {
    pub(super) const CLUSTER: usize = 0;
    pub(super) const METRIC: usize = 1;
    pub(super) const TYPE: usize = 2;
    pub(super) const HELP: usize = 3;
    pub(super) const UNIT: usize = 4;
}

static METADATA_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(CLUSTER, series::dict_utf8(), false),
        Field::new(METRIC, DataType::Utf8, false),
        Field::new(TYPE, DataType::Utf8, false),
        Field::new(HELP, DataType::Utf8, false),
        Field::new(UNIT, DataType::Utf8, false),
    ]))
});

/// The metadata table's Arrow schema (also embedded in every file's footer).
pub(crate) fn metadata_schema() -> SchemaRef {
    METADATA_SCHEMA.clone()
}

/// One write of the metadata table: the distinct entries per cluster, keyed by the time of
/// the write.
#[derive(Debug)]
pub(crate) struct MetadataPlan<'a> {
    now: i64,
    clusters: Vec<(&'a str, BTreeSet<&'a MetricMetadata>)>,
}

impl FilePlan for MetadataPlan<'_> {
    fn files(&self) -> usize {
        self.clusters.len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, RecordBatch)> {
        let (cluster, entries) = &self.clusters[i];
        let key = FileKey::new(Table::Metadata, cluster, self.now, self.now, entries.len() as u64)?;
        Ok((key, record_batch(cluster, entries)?))
    }
}

/// The metadata table.
#[derive(Debug)]
pub(crate) struct Metadata;

impl ParquetTable for Metadata {
    const KIND: Table = Table::Metadata;
    const IDENTITY: &'static [&'static str] = &[CLUSTER, METRIC, TYPE, HELP, UNIT];
    type Input = [MetricMetadata];
    type Plan<'a> = MetadataPlan<'a>;
    type Reader = MetadataReader;

    fn schema() -> SchemaRef {
        metadata_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        series::table_properties(writer, &[col::CLUSTER, col::METRIC], |b| b)
    }

    /// One file per cluster of its distinct entries, keyed by the current time.
    fn plan(input: &[MetricMetadata]) -> Result<MetadataPlan<'_>> {
        let mut by_cluster: BTreeMap<&str, BTreeSet<&MetricMetadata>> = BTreeMap::new();
        for m in input {
            by_cluster.entry(&m.cluster).or_default().insert(m);
        }
        let now = chrono::Utc::now().timestamp_millis();
        if !layout::storable_timestamp(now) {
            return Err(Error::InvalidData {
                reason: format!("the clock says {now} ms, outside years 0000-9999"),
            });
        }
        Ok(MetadataPlan {
            now,
            clusters: by_cluster.into_iter().collect(),
        })
    }

    fn reader(ctx: ReadContext) -> MetadataReader {
        MetadataReader {
            io: ctx.io,
            catalog: ctx.catalog,
            known: Mutex::default(),
        }
    }
}

/// One cluster's entries (sorted by metric) as a batch in [`metadata_schema`].
fn record_batch(cluster: &str, entries: &BTreeSet<&MetricMetadata>) -> Result<RecordBatch> {
    let strings = |get: fn(&MetricMetadata) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(entries.iter().map(|m| get(m))))
    };
    let clusters = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(vec![0; entries.len()]),
        Arc::new(StringArray::from(vec![cluster])),
    )
    .map_err(|source| Error::Arrow {
        op: "build dictionary column",
        source,
    })?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(clusters),
        strings(|m| &m.metric),
        strings(|m| m.kind.as_str()),
        strings(|m| &m.help),
        strings(|m| &m.unit),
    ];
    RecordBatch::try_new(metadata_schema(), columns).map_err(|source| Error::Arrow {
        op: "assemble metadata batch",
        source,
    })
}

/// Reads the metadata table: keeps the entries of every metadata file read so far, and which
/// files those were (a reader's in-memory copy of the small, append-only table).
#[derive(Debug)]
pub(crate) struct MetadataReader {
    io: ParquetIo,
    catalog: Arc<Catalog>,
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    files: HashSet<Uuid>,
    entries: BTreeSet<MetricMetadata>,
}

impl MetadataReader {
    /// [`crate::read::Source::metadata`]: first reads the files of the catalog not read before,
    /// then answers from memory, sorted by (cluster, metric, type, help, unit).
    pub(crate) async fn read(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let mut files = self.catalog.files(Table::Metadata, TimeRange::ALL, |_| true);
        {
            let known = self.known.lock();
            files.retain(|f| !known.files.contains(&f.key.id));
        }
        // Footers are not cached: each file is read once.
        let mut reads = self.io.read_files(files, metadata_schema(), false, plan::whole);
        while let Some((file, batches)) = reads.try_next().await? {
            let mut entries = Vec::new();
            for batch in &batches {
                decode_batch(batch, file.path.as_ref(), &mut entries)?;
            }
            let mut known = self.known.lock();
            known.entries.extend(entries);
            known.files.insert(file.key.id);
        }
        let known = self.known.lock();
        Ok(known
            .entries
            .iter()
            .filter(|m| metric.is_none_or(|name| m.metric == name))
            .cloned()
            .collect())
    }
}

fn decode_batch(batch: &RecordBatch, key: &str, out: &mut Vec<MetricMetadata>) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_string(),
        reason,
    };
    let (cluster_keys, clusters) = series::dict_keys(batch, col::CLUSTER).map_err(corrupt)?;
    let strings = |i: usize, name: &str| {
        batch
            .column(i)
            .as_string_opt::<i32>()
            .filter(|s| s.null_count() == 0)
            .ok_or_else(|| corrupt(format!("metadata column {name} has an unexpected type or nulls")))
    };
    let (metric, kind, help, unit) = (
        strings(col::METRIC, METRIC)?,
        strings(col::TYPE, TYPE)?,
        strings(col::HELP, HELP)?,
        strings(col::UNIT, UNIT)?,
    );
    for (row, &c) in cluster_keys.iter().enumerate() {
        let k = kind.value(row);
        out.push(MetricMetadata {
            cluster: clusters.value(c as usize).to_string(),
            metric: metric.value(row).to_string(),
            kind: MetricType::parse(k).ok_or_else(|| corrupt(format!("unknown metric type {k:?}")))?,
            help: help.value(row).to_string(),
            unit: unit.value(row).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
