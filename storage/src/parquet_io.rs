//! Reading Parquet from the object store, for every table.
//!
//! One reader per file ([`ObjectReader`]: ranged reads; the size comes from the catalog, so a
//! footer and its page index usually arrive in a single read of the file's tail), one footer
//! cache shared by every table ([`FooterCache`], sized by `storage.metadata_cache_files`), the
//! row-group and page planning ([`plan`]) and the stream that decodes a plan
//! ([`ParquetIo::stream`]). Tables decide *what* to read (their plan's statistics checks, their
//! projection and row filters) and decode the batches; how bytes get from the store into a
//! decoder lives only here.
//!
//! Why not parquet's `ParquetObjectReader`: in parquet 59.2 (we build 59.3) it is deprecated in
//! favour of "implement `AsyncFileReader` directly" (apache/arrow-rs#10308), which is what
//! [`ObjectReader`] does, in the shape of parquet's own `examples/object_store.rs`: `get_range`/
//! `get_ranges` for data pages, and a footer read with a prefetch hint and the catalog's file
//! size (bounded ranges only, no suffix request, no `HEAD`).

pub(crate) mod index;
pub(crate) mod plan;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{
    FileMetaData, KeyValue, PageIndexPolicy, ParquetMetaData, ParquetMetaDataBuilder, ParquetMetaDataReader,
};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::catalog::FileMeta;
use crate::{Error, Result};
use plan::ReadPlan;

/// Rows per decoded batch: large enough to amortise per-batch work, small enough to stay in cache.
pub(crate) const BATCH_ROWS: usize = 8192;
/// Most footers (with our small page indexes) fit, so metadata usually costs one request.
const FOOTER_HINT_BYTES: usize = 64 << 10;

/// Ranged reads of one object for the Parquet decoder.
#[derive(Clone, Debug)]
pub(crate) struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    /// The object's last bytes as the footer read fetched them, and the offset they start at.
    /// A file no larger than [`FOOTER_HINT_BYTES`] (a day's rollup file, a small flush) is read
    /// whole by that one request, so its pages are served from here instead of fetched again:
    /// one GET per cold read of a small file, not two.
    tail: Option<(u64, Bytes)>,
}

impl ObjectReader {
    /// A reader of `file` (its size from the catalog).
    pub(crate) fn new(store: Arc<dyn ObjectStore>, file: &FileMeta) -> Self {
        Self {
            store,
            path: file.path.clone(),
            size: file.size,
            tail: None,
        }
    }

    /// `range` from the kept tail, when it lies inside it.
    fn kept(&self, range: &Range<u64>) -> Option<Bytes> {
        let (start, bytes) = self.tail.as_ref()?;
        let end = start + bytes.len() as u64;
        (range.start >= *start && range.end <= end && range.start <= range.end)
            .then(|| bytes.slice((range.start - start) as usize..(range.end - start) as usize))
    }

    /// The object key read.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn store_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            if let Some(hit) = self.kept(&range) {
                return Ok(hit);
            }
            let bytes = self
                .store
                .get_range(&self.path, range.clone())
                .await
                .map_err(store_err)?;
            if range.end == self.size {
                self.tail = Some((range.start, bytes.clone()));
            }
            Ok(bytes)
        }
        .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            if let Some(hits) = ranges.iter().map(|r| self.kept(r)).collect::<Option<Vec<_>>>() {
                return Ok(hits);
            }
            self.store.get_ranges(&self.path, &ranges).await.map_err(store_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_HINT_BYTES))
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// Parsed footers (with page indexes) of recently read files of every table, keyed by file
/// UUID; the oldest inserted is dropped first once `capacity` are held (files are immutable,
/// so an entry never goes stale). Capacity 0 turns caching off.
#[derive(Debug)]
pub(crate) struct FooterCache {
    capacity: usize,
    inner: Mutex<Footers>,
}

#[derive(Debug, Default)]
struct Footers {
    map: HashMap<Uuid, ArrowReaderMetadata>,
    /// Insertion order, for eviction.
    order: VecDeque<Uuid>,
}

impl FooterCache {
    /// Keeps up to `capacity` footers.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Footers::default()),
        }
    }

    fn get(&self, id: &Uuid) -> Option<ArrowReaderMetadata> {
        self.inner.lock().map.get(id).cloned()
    }

    fn insert(&self, id: Uuid, meta: ArrowReaderMetadata) {
        if self.capacity == 0 {
            return;
        }
        let mut f = self.inner.lock();
        if f.map.insert(id, meta).is_some() {
            return;
        }
        f.order.push_back(id);
        while f.order.len() > self.capacity {
            if let Some(old) = f.order.pop_front() {
                f.map.remove(&old);
            }
        }
    }

    /// Footers held.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map.len()
    }
}

/// Footer key-value entries under this prefix are a table's summaries (the logs table's
/// volume summary), read by their own readers, which keep what they parse: the footer cache
/// holds footers without them, so its memory does not grow with the summaries (row-group index
/// locations, under [`index::INDEX_KEY_PREFIX`], are kept).
pub(crate) const SUMMARY_KEY_PREFIX: &str = "tributary.";

/// `meta` without its [`SUMMARY_KEY_PREFIX`] entries (`meta` itself when it has none).
fn without_summaries(meta: ArrowReaderMetadata, options: ArrowReaderOptions) -> ArrowReaderMetadata {
    let md = meta.metadata();
    let file = md.file_metadata();
    let Some(kv) = file.key_value_metadata() else {
        return meta;
    };
    // Row-group index locations are small and read by every filtered scan: they stay.
    let summary = |e: &KeyValue| e.key.starts_with(SUMMARY_KEY_PREFIX) && !e.key.starts_with(index::INDEX_KEY_PREFIX);
    if !kv.iter().any(summary) {
        return meta;
    }
    let kept: Vec<KeyValue> = kv.iter().filter(|e| !summary(e)).cloned().collect();
    let stripped = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        Some(kept),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let rebuilt = ParquetMetaDataBuilder::new(stripped)
        .set_row_groups(md.row_groups().to_vec())
        .set_column_index(md.column_index().cloned())
        .set_offset_index(md.offset_index().cloned())
        .build();
    // Rebuilding from the same parts cannot fail where the original loaded; keep it if it does.
    ArrowReaderMetadata::try_new(Arc::new(rebuilt), options).unwrap_or(meta)
}

/// A file's footer (with its page index, when written) read as `schema`, from `cache` when it
/// holds it; a footer read from the store is added to `cache` without its summaries
/// ([`SUMMARY_KEY_PREFIX`]; the caller gets them).
pub(crate) async fn load_footer(
    reader: &mut ObjectReader,
    cache: Option<&FooterCache>,
    file: &FileMeta,
    schema: SchemaRef,
) -> Result<ArrowReaderMetadata> {
    if let Some(m) = cache.and_then(|c| c.get(&file.key.id)) {
        return Ok(m);
    }
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .with_schema(schema);
    let m = ArrowReaderMetadata::load_async(reader, options.clone())
        .await
        .map_err(parquet_error("read footer", file.path.as_ref()))?;
    if let Some(c) = cache {
        c.insert(file.key.id, without_summaries(m.clone(), options));
    }
    Ok(m)
}

/// Rows per batch when a whole file is read ([`ParquetIo::read_whole_file`]).
const WHOLE_FILE_BATCH_ROWS: usize = 1 << 20;

/// The stream builder that decodes `plan`'s row groups and rows of a file, in batches of
/// [`BATCH_ROWS`]; the caller adds its projection and row filters.
pub(crate) fn plan_stream(
    reader: ObjectReader,
    meta: ArrowReaderMetadata,
    plan: ReadPlan,
) -> ParquetRecordBatchStreamBuilder<ObjectReader> {
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_row_groups(plan.row_groups)
        .with_batch_size(BATCH_ROWS);
    match plan.selection {
        Some(selection) => builder.with_row_selection(selection),
        None => builder,
    }
}

/// The object store, the shared footer cache and how many files a read decodes at once: what
/// every table reads through.
#[derive(Clone, Debug)]
pub(crate) struct ParquetIo {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) footers: Arc<FooterCache>,
    pub(crate) concurrency: usize,
}

impl ParquetIo {
    /// Reads through `store`, caching footers in `footers`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, footers: Arc<FooterCache>, concurrency: usize) -> Self {
        Self {
            store,
            footers,
            concurrency: concurrency.max(1),
        }
    }

    /// A reader of `file`.
    pub(crate) fn reader(&self, file: &FileMeta) -> ObjectReader {
        ObjectReader::new(self.store.clone(), file)
    }

    /// `file`'s footer as `schema` with its summaries, read from the store (the cache holds
    /// footers without them).
    pub(crate) async fn footer_with_summaries(
        &self,
        file: &FileMeta,
        schema: SchemaRef,
    ) -> Result<ArrowReaderMetadata> {
        load_footer(&mut self.reader(file), None, file, schema).await
    }

    /// `file`'s footer as `schema`, through the shared cache (without its summaries on a hit).
    pub(crate) async fn footer(
        &self,
        reader: &mut ObjectReader,
        file: &FileMeta,
        schema: SchemaRef,
    ) -> Result<ArrowReaderMetadata> {
        load_footer(reader, Some(&self.footers), file, schema).await
    }

    /// Reads one file as `schema`, every column, the rows `plan` keeps (`None` from it: none).
    /// `cache_footer: false` leaves the footer out of the cache (files read once).
    pub(crate) async fn read_file(
        &self,
        file: &FileMeta,
        schema: SchemaRef,
        cache_footer: bool,
        plan: impl FnOnce(&ArrowReaderMetadata) -> Option<ReadPlan>,
    ) -> Result<Vec<RecordBatch>> {
        self.read_file_with(self.reader(file), file, schema, None, cache_footer, plan)
            .await
    }

    /// [`ParquetIo::read_file`] through `reader`, a reader of `file` that may hold the file's
    /// bytes already (a small file whose footer it read: see [`ObjectReader`]), and only the
    /// top-level columns `columns` (by position in `schema`; `None`: every column). The
    /// batches then hold those columns alone, in schema order.
    pub(crate) async fn read_file_with(
        &self,
        mut reader: ObjectReader,
        file: &FileMeta,
        schema: SchemaRef,
        columns: Option<&[usize]>,
        cache_footer: bool,
        plan: impl FnOnce(&ArrowReaderMetadata) -> Option<ReadPlan>,
    ) -> Result<Vec<RecordBatch>> {
        let cache = cache_footer.then_some(self.footers.as_ref());
        let meta = load_footer(&mut reader, cache, file, schema).await?;
        let Some(plan) = plan(&meta) else {
            return Ok(Vec::new());
        };
        let pq_err = |op| parquet_error(op, file.path.as_ref());
        let mask = columns.map(|c| ProjectionMask::roots(meta.parquet_schema(), c.iter().copied()));
        let mut builder = plan_stream(reader, meta, plan);
        if let Some(mask) = mask {
            builder = builder.with_projection(mask);
        }
        let stream = builder.build().map_err(pq_err("open stream"))?;
        stream.try_collect().await.map_err(pq_err("decode"))
    }

    /// Every row of one file in batches of up to a row group: what compaction merges whole.
    /// Large batches matter there: each batch carries its own copy of a row group's
    /// dictionaries (30,000 label sets are ~3 MB), so the query-sized batches would hold
    /// hundreds of copies.
    pub(crate) async fn read_whole_file(&self, file: &FileMeta, schema: SchemaRef) -> Result<Vec<RecordBatch>> {
        let pq_err = |op| parquet_error(op, file.path.as_ref());
        match self.stream_whole_file(file, schema, WHOLE_FILE_BATCH_ROWS).await? {
            Some(stream) => stream.try_collect().await.map_err(pq_err("decode")),
            None => Ok(Vec::new()),
        }
    }

    /// Every row of one file as a stream of batches of `batch_rows` (`None`: the file has no
    /// rows): what a merge in parts reads, one batch of each input at a time.
    pub(crate) async fn stream_whole_file(
        &self,
        file: &FileMeta,
        schema: SchemaRef,
        batch_rows: usize,
    ) -> Result<Option<ParquetRecordBatchStream<ObjectReader>>> {
        let mut reader = self.reader(file);
        let meta = load_footer(&mut reader, None, file, schema).await?;
        let Some(plan) = plan::whole(&meta) else {
            return Ok(None);
        };
        plan_stream(reader, meta, plan)
            .with_batch_size(batch_rows)
            .build()
            .map(Some)
            .map_err(parquet_error("open stream", file.path.as_ref()))
    }

    /// [`ParquetIo::read_file`] over `files`, [`ParquetIo::concurrency`] at a time, yielding
    /// each file's batches in the order of `files` (write order, from the catalog), so later
    /// writes are seen later.
    pub(crate) fn read_files<'a, P>(
        &'a self,
        files: Vec<Arc<FileMeta>>,
        schema: SchemaRef,
        cache_footer: bool,
        plan: P,
    ) -> impl futures::Stream<Item = Result<(Arc<FileMeta>, Vec<RecordBatch>)>> + Send + 'a
    where
        P: Fn(&ArrowReaderMetadata) -> Option<ReadPlan> + Send + Sync + 'a,
    {
        let plan = Arc::new(plan);
        futures::stream::iter(files)
            .map(move |file| {
                let (schema, plan) = (schema.clone(), plan.clone());
                async move {
                    let batches = self.read_file(&file, schema, cache_footer, |m| plan(m)).await?;
                    Ok((file, batches))
                }
            })
            .buffered(self.concurrency)
    }
}

/// Wraps a decoder error of operation `op` on object `key`.
pub(crate) fn parquet_error<'k>(op: &'static str, key: &'k str) -> impl FnOnce(ParquetError) -> Error + 'k {
    move |source| Error::Parquet {
        op,
        key: key.to_string(),
        source,
    }
}

/// A spawned per-file task that is aborted when the read is dropped or fails early; propagates
/// the task's panics.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<Result<T>> {
    type Output = Result<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Task {
                op: "scan parquet file",
                reason: e.to_string(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_cache_drops_the_oldest_first_and_can_be_off() {
        let meta = |_| -> ArrowReaderMetadata {
            let batch = RecordBatch::try_from_iter([(
                "a",
                Arc::new(arrow_array::Int32Array::from(vec![1])) as arrow_array::ArrayRef,
            )])
            .unwrap();
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            ArrowReaderMetadata::load(&Bytes::from(buf), ArrowReaderOptions::new()).unwrap()
        };
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let cache = FooterCache::new(2);
        for id in &ids {
            cache.insert(*id, meta(id));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&ids[0]).is_none() && cache.get(&ids[1]).is_some() && cache.get(&ids[2]).is_some());
        let off = FooterCache::new(0);
        off.insert(ids[0], meta(&ids[0]));
        assert_eq!(off.len(), 0);
    }

    #[tokio::test]
    async fn cached_footers_leave_out_summaries_and_the_caller_gets_them() {
        let batch = RecordBatch::try_from_iter([(
            "a",
            Arc::new(arrow_array::Int32Array::from(vec![1, 2, 3])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.append_key_value_metadata(KeyValue::new("tributary.test".into(), "x".repeat(10_000)));
        w.append_key_value_metadata(KeyValue::new("other".into(), "kept".to_string()));
        w.close().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let key = crate::layout::FileKey::new(crate::layout::Table::Logs, "c", 0, 0, 3).unwrap();
        let size = buf.len() as u64;
        store.put(&key.path(), Bytes::from(buf).into()).await.unwrap();
        let file = FileMeta::new(key, size);
        let io = ParquetIo::new(store, Arc::new(FooterCache::new(4)), 1);
        let keys = |m: &ArrowReaderMetadata| -> Vec<String> {
            let kv = m
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .cloned()
                .unwrap_or_default();
            kv.into_iter().map(|e| e.key).collect()
        };
        let first = io.footer(&mut io.reader(&file), &file, batch.schema()).await.unwrap();
        assert!(
            keys(&first).contains(&"tributary.test".to_string()),
            "the reader of the store gets every entry"
        );
        let cached = io.footers.get(&file.key.id).unwrap();
        assert!(!keys(&cached).iter().any(|k| k.starts_with(SUMMARY_KEY_PREFIX)));
        assert!(keys(&cached).contains(&"other".to_string()));
        assert_eq!(cached.metadata().file_metadata().num_rows(), 3);
        assert_eq!(cached.schema(), first.schema());
        // Reads through the cache still decode the file.
        let rows: usize = io
            .read_file(&file, batch.schema(), true, plan::whole)
            .await
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 3);
        let again = io.footer_with_summaries(&file, batch.schema()).await.unwrap();
        assert!(keys(&again).contains(&"tributary.test".to_string()));
    }
}
