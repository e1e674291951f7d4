//! The `metadata` table: what senders said about metric families ([`MetricMetadata`]: type,
//! help, unit, per cluster), and its read path behind [`crate::read::Source::metadata`] of
//! `ParquetSource`.
//!
//! Each write stores one small file per cluster under `metadata/` holding the distinct entries
//! it was given (a flush writes what it saw since the previous one). Metadata has no time of its
//! own: the key's time span is the moment of the write (see [`crate::layout`]). Readers read
//! every metadata file once and keep the union of their entries in memory (`KnownMetadata`),
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
use object_store::ObjectStore;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::histograms::table;
use crate::layout::Table;
use crate::read::parquet::read_table_files;
use crate::signals::{MetricMetadata, MetricType};
use crate::types::TimeRange;
use crate::{Error, Result, Storage, WriteSummary, layout};

pub const CLUSTER: &str = "cluster";
pub const METRIC: &str = "metric";
pub const TYPE: &str = "type";
pub const HELP: &str = "help";
pub const UNIT: &str = "unit";

/// Column positions in [`metadata_schema`].
mod col {
    pub const CLUSTER: usize = 0;
    pub const METRIC: usize = 1;
    pub const TYPE: usize = 2;
    pub const HELP: usize = 3;
    pub const UNIT: usize = 4;
}

static METADATA_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(CLUSTER, table::dict_utf8(), false),
        Field::new(METRIC, DataType::Utf8, false),
        Field::new(TYPE, DataType::Utf8, false),
        Field::new(HELP, DataType::Utf8, false),
        Field::new(UNIT, DataType::Utf8, false),
    ]))
});

/// The metadata table's Arrow schema (also embedded in every file's footer).
pub fn metadata_schema() -> SchemaRef {
    METADATA_SCHEMA.clone()
}

impl Storage {
    /// Writes the distinct entries of `metadata` to the `metadata` table, one file per cluster,
    /// keyed by the current time; returns once every file is stored and visible to readers.
    pub async fn write_metadata(&self, metadata: &[MetricMetadata]) -> Result<WriteSummary> {
        let mut by_cluster: BTreeMap<&str, BTreeSet<&MetricMetadata>> = BTreeMap::new();
        for m in metadata {
            by_cluster.entry(&m.cluster).or_default().insert(m);
        }
        let now = chrono::Utc::now().timestamp_millis();
        if !layout::storable_timestamp(now) {
            return Err(Error::InvalidData {
                reason: format!("the clock says {now} ms, outside years 0000-9999"),
            });
        }
        let batches = by_cluster
            .into_iter()
            .map(|(cluster, entries)| {
                let key = layout::FileKey::new(Table::Metadata, cluster, now, now, entries.len() as u64)?;
                Ok((key, record_batch(cluster, &entries)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let props = table::table_properties(self, &[col::CLUSTER, col::METRIC], |b| b)?;
        self.store_files(&self.tables.metadata, batches.into_iter().map(Ok), props)
            .await
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

/// The entries of every metadata file read so far, and which files those were: a reader's
/// in-memory copy of the (small, append-only) metadata table.
#[derive(Debug, Default)]
pub(crate) struct KnownMetadata {
    inner: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    files: HashSet<Uuid>,
    entries: BTreeSet<MetricMetadata>,
}

impl KnownMetadata {
    /// [`crate::read::Source::metadata`]: first reads the files of `catalog` not read before,
    /// then answers from memory, sorted by (cluster, metric, type, help, unit).
    pub(crate) async fn read(
        &self,
        store: &Arc<dyn ObjectStore>,
        catalog: &Catalog,
        metric: Option<&str>,
        concurrency: usize,
    ) -> Result<Vec<MetricMetadata>> {
        let mut files = catalog.files(Table::Metadata, TimeRange::ALL, |_| true);
        {
            let known = self.inner.lock();
            files.retain(|f| !known.files.contains(&f.key.id));
        }
        // Footers are not cached: each file is read once.
        let mut reads = read_table_files(store, None, files, metadata_schema(), TimeRange::ALL, &[], concurrency);
        while let Some((file, batches)) = reads.try_next().await? {
            let mut entries = Vec::new();
            for batch in &batches {
                decode_batch(batch, file.path.as_ref(), &mut entries)?;
            }
            let mut known = self.inner.lock();
            known.entries.extend(entries);
            known.files.insert(file.key.id);
        }
        let known = self.inner.lock();
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
    let (cluster_keys, clusters) = table::dict_keys(batch, col::CLUSTER).map_err(corrupt)?;
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
