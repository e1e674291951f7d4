//! Tributary's stored format and everything that reads it back.
//!
//! Owns: the domain types shared by ingest and query ([`types`]), the read contract
//! ([`read::Source`]), the Parquet schemas ([`schema`]), the object-store key layout
//! ([`layout`]), writing flushed data ([`writer`]) and pruned scans over it
//! ([`read::parquet::ParquetSource`]).
//!
//! Must not: know any wire protocol (no `proto` dependency), speak HTTP, or evaluate PromQL.
//! `ingest` writes through this crate; `query` reads through [`read::Source`].
//!
//! # Shape
//! [`Storage`] is the facade: [`Storage::open`] builds the object store from [`StorageConfig`]
//! and lists it into the in-memory [`catalog::Catalog`]; [`Storage::write_metrics`] encodes
//! series into one Parquet file per (UTC hour, cluster), uploads each and only then registers it
//! in the catalog, so a reader never sees a file that isn't fully stored; [`Storage::source`]
//! gives the [`read::Source`] over those files. Files are immutable and never rewritten; the same
//! sample written twice (a retried flush) is harmless because readers keep one sample per
//! timestamp, the last written.
//!
//! With the `test-util` feature, [`test_util`] offers `MemSource` (the reference semantics of
//! [`read::Source`]) and the `Source` conformance suite every implementation must pass.

pub mod catalog;
pub mod config;
pub mod error;
pub mod exemplars;
pub mod histograms;
pub mod layout;
pub mod logs;
pub mod metadata;
pub mod read;
pub mod schema;
pub mod signals;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod types;
pub mod writer;

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

pub use catalog::CatalogStats;
pub use config::StorageConfig;
pub use error::{Error, Result};

use arrow_array::RecordBatch;
use catalog::{Catalog, FileMeta};
use layout::{FileKey, Table};
use parquet::file::properties::WriterProperties;
use read::parquet::{MetadataCache, ParquetSource};
use types::Series;
use writer::{MetricsPlan, WriterOptions};

/// Part size for multipart uploads (S3 needs at least 5 MiB per part but the last).
const MULTIPART_PART_BYTES: usize = 16 << 20;
/// Parts of one multipart upload in flight at once.
const MULTIPART_IN_FLIGHT: usize = 4;
/// Files encoded and uploaded at once by one write.
const WRITE_CONCURRENCY: usize = 2;

/// What [`Storage::write_metrics`] stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Object keys of the new files.
    pub files: Vec<String>,
    /// Samples written.
    pub rows: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

/// One catalog per table beside metrics.
#[derive(Debug)]
struct TableCatalogs {
    logs: Arc<Catalog>,
    histograms: Arc<Catalog>,
    exemplars: Arc<Catalog>,
    metadata: Arc<Catalog>,
}

impl TableCatalogs {
    fn all(&self) -> [(Table, &Arc<Catalog>); 4] {
        [
            (Table::Logs, &self.logs),
            (Table::Histograms, &self.histograms),
            (Table::Exemplars, &self.exemplars),
            (Table::Metadata, &self.metadata),
        ]
    }
}

/// The storage facade: object store, catalog, writer and reader.
#[derive(Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    /// Catalogs of the tables beside metrics, each written and read by its own module.
    tables: TableCatalogs,
    cache: Arc<MetadataCache>,
    writer: WriterOptions,
    multipart_threshold: usize,
    read_concurrency: usize,
    max_select_samples: usize,
}

impl Storage {
    /// Opens the configured store (creating a local root if needed) and lists it into the catalog.
    pub async fn open(cfg: &StorageConfig, data_dir: &FsPath) -> Result<Arc<Storage>> {
        let store = store::open_store(cfg.url.as_deref(), data_dir, &cfg.options)?;
        let writer = WriterOptions::from_config(cfg);
        writer.properties()?; // reject a bad zstd level at startup, not at the first flush
        let catalog = Arc::new(Catalog::load(store.as_ref(), Table::Metrics).await?);
        let stats = catalog.stats();
        tracing::info!(
            files = stats.files,
            rows = stats.rows,
            bytes = stats.bytes,
            "storage catalog loaded"
        );
        let tables = TableCatalogs {
            logs: Arc::new(Catalog::load(store.as_ref(), Table::Logs).await?),
            histograms: Arc::new(Catalog::load(store.as_ref(), Table::Histograms).await?),
            exemplars: Arc::new(Catalog::load(store.as_ref(), Table::Exemplars).await?),
            metadata: Arc::new(Catalog::load(store.as_ref(), Table::Metadata).await?),
        };
        Ok(Arc::new(Storage {
            store,
            catalog,
            tables,
            cache: Arc::new(MetadataCache::with_series_bytes(
                cfg.metadata_cache_files,
                cfg.series_cache_bytes,
            )),
            writer,
            multipart_threshold: cfg.multipart_threshold_bytes.max(1),
            read_concurrency: cfg.read_concurrency,
            max_select_samples: cfg.max_select_samples,
        }))
    }

    /// Writes these series (any clusters, any times) as Parquet files partitioned by hour and cluster;
    /// returns only after every file is in the object store AND registered in the catalog (visible to readers).
    ///
    /// Samples are sorted and deduplicated per series (for repeated timestamps the later sample wins,
    /// also across repeated label sets). Timestamps must lie in years 0000-9999
    /// ([`layout::storable_timestamp`]); otherwise nothing is written. On an upload error some files
    /// may already be stored and visible; writing the same series again is safe.
    pub async fn write_metrics(&self, series: &[Series]) -> Result<WriteSummary> {
        let plan = MetricsPlan::new(series)?;
        let props = self.writer.properties()?;
        // Index, not `&FileGroup`: a closure taking a borrowed argument makes the future not
        // provably `Send` (rustc's higher-ranked closure limitation), which axum handlers require.
        let files = (0..plan.groups().len()).map(|i| {
            let group = &plan.groups()[i];
            plan.file_key(group)
                .and_then(|key| Ok((key, plan.record_batch(group)?)))
        });
        self.store_files(&self.catalog, files, props).await
    }

    /// Encodes and uploads one table's files, registering each in `catalog` once stored. `files`
    /// is pulled lazily, at most [`WRITE_CONCURRENCY`] ahead of the uploads, so a flush holds only
    /// that many record batches; the costly encode runs off the runtime.
    pub(crate) async fn store_files(
        &self,
        catalog: &Catalog,
        files: impl Iterator<Item = Result<(FileKey, RecordBatch)>> + Send,
        props: WriterProperties,
    ) -> Result<WriteSummary> {
        let written: Vec<(String, u64, u64)> = futures::stream::iter(files)
            .map(|prepared| {
                let props = props.clone();
                async move {
                    let (key, batch) = prepared?;
                    let path = key.path();
                    let name = path.to_string();
                    let bytes = tokio::task::spawn_blocking(move || writer::encode_batch(&batch, props, &name))
                        .await
                        .map_err(|e| Error::Task {
                            op: "encode parquet file",
                            reason: e.to_string(),
                        })??;
                    let size = bytes.len() as u64;
                    self.upload(&path, bytes).await?;
                    let rows = key.rows;
                    catalog.insert(FileMeta::new(key, size));
                    Ok::<_, Error>((path.to_string(), rows, size))
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut summary = WriteSummary::default();
        for (file, rows, bytes) in written {
            summary.files.push(file);
            summary.rows += rows;
            summary.bytes += bytes;
        }
        summary.files.sort();
        Ok(summary)
    }

    async fn upload(&self, path: &Path, bytes: bytes::Bytes) -> Result<()> {
        let err = |op| {
            move |source| Error::ObjectStore {
                op,
                key: path.to_string(),
                source,
            }
        };
        if bytes.len() < self.multipart_threshold {
            self.store
                .put(path, PutPayload::from(bytes))
                .await
                .map_err(err("put"))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(err("start multipart upload"))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES);
        let mut rest = bytes;
        while !rest.is_empty() {
            // Bounded in-flight parts keep a huge file from opening unbounded concurrent requests.
            w.wait_for_capacity(MULTIPART_IN_FLIGHT)
                .await
                .map_err(err("upload part"))?;
            w.put(rest.split_to(rest.len().min(MULTIPART_PART_BYTES)));
        }
        w.finish().await.map_err(err("finish multipart upload"))?;
        Ok(())
    }

    /// What the read caches hold (footers, series tables, label listings).
    pub fn cache_stats(&self) -> read::parquet::CacheStats {
        self.cache.stats()
    }

    /// The reader over every file in the catalog (including files written later).
    pub fn source(self: &Arc<Self>) -> Arc<dyn read::Source> {
        Arc::new(
            ParquetSource::new(
                self.store.clone(),
                self.catalog.clone(),
                self.cache.clone(),
                self.read_concurrency,
                self.max_select_samples,
            )
            .with_signal_tables(self.tables.exemplars.clone(), self.tables.metadata.clone()),
        )
    }

    /// Adds files other processes wrote since open (or the last refresh); returns how many.
    pub async fn refresh(&self) -> Result<usize> {
        let mut added = self.catalog.refresh(self.store.as_ref(), Table::Metrics).await?;
        for (table, catalog) in self.tables.all() {
            added += catalog.refresh(self.store.as_ref(), table).await?;
        }
        Ok(added)
    }

    /// Files, rows and bytes in the catalog.
    pub fn stats(&self) -> CatalogStats {
        self.catalog.stats()
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
