//! Counting object-store requests by the class S3 bills them in.
//!
//! [`MeteredStore`] wraps whatever store `open_store` opened and counts the requests the
//! application asks for, as S3 would perform them, whatever the store underneath:
//!
//! | operation | counted | S3 requests |
//! |---|---|---|
//! | `get` | each `get_opts` without `head` (so `get`, `get_range`; `get_ranges` after coalescing nearby ranges, one per coalesced range) | `GetObject` |
//! | `head` | each `get_opts` with `head` (`head`) | `HeadObject` |
//! | `put` | each `put_opts`; a multipart upload counts its start, each part and its completion | `PutObject`; `CreateMultipartUpload`, `UploadPart`, `CompleteMultipartUpload` (all PUT-class) |
//! | `list` | each `list`/`list_with_offset` stream and `list_with_delimiter` call, plus one per further 1,000 entries returned (S3's page size) | `ListObjectsV2` pages |
//! | `delete` | one per 1,000 paths given to `delete_stream` (`delete` is a stream of one), and each multipart abort | `DeleteObjects` batches, `AbortMultipartUpload` (S3 bills neither) |
//! | `copy` | each `copy_opts`; a rename counts a copy and a delete | `CopyObject` (PUT-class) |
//!
//! Failed requests count too (S3 bills 4xx answers). Retries inside the S3 client are not
//! seen here: a request retried three times counts once.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};

/// Keys S3 returns per `ListObjectsV2` page (and objects per `DeleteObjects` request).
const S3_PAGE: u64 = 1000;

/// Object-store requests made since the store was opened, by the class S3 bills them in
/// ([`crate::Storage::request_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Object reads (whole or ranged).
    pub get: u64,
    /// Metadata reads.
    pub head: u64,
    /// Uploads: single puts, and each start, part and completion of a multipart upload.
    pub put: u64,
    /// Listing pages.
    pub list: u64,
    /// Delete batches and multipart aborts.
    pub delete: u64,
    /// Server-side copies.
    pub copy: u64,
}

impl RequestCounts {
    /// Every count with its operation name (`get`, `head`, `put`, `list`, `delete`, `copy`):
    /// the `operation` label of `tributary_object_store_requests_total`.
    pub fn by_operation(&self) -> [(&'static str, u64); 6] {
        [
            ("get", self.get),
            ("head", self.head),
            ("put", self.put),
            ("list", self.list),
            ("delete", self.delete),
            ("copy", self.copy),
        ]
    }
}

/// The live counters behind [`RequestCounts`], shared by a [`MeteredStore`] and its uploads.
#[derive(Debug, Default)]
pub(crate) struct RequestCounters {
    get: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    copy: AtomicU64,
}

impl RequestCounters {
    /// The counts now.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestCounts {
            get: n(&self.get),
            head: n(&self.head),
            put: n(&self.put),
            list: n(&self.list),
            delete: n(&self.delete),
            copy: n(&self.copy),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// An [`ObjectStore`] that counts the requests made through it (see the module docs).
#[derive(Debug)]
pub(crate) struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<RequestCounters>,
}

impl MeteredStore {
    /// Wraps `inner`; the counters start at zero.
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    /// The counters, to read while the store is in use.
    pub(crate) fn counters(&self) -> Arc<RequestCounters> {
        self.counters.clone()
    }

    /// `stream` with one more `list` counted per [`S3_PAGE`] entries past the first page.
    fn paged<T: Send + 'static>(&self, stream: BoxStream<'static, Result<T>>) -> BoxStream<'static, Result<T>> {
        RequestCounters::add(&self.counters.list);
        let counters = self.counters.clone();
        let mut seen = 0u64;
        stream
            .inspect_ok(move |_| {
                seen += 1;
                if seen > S3_PAGE && seen % S3_PAGE == 1 {
                    RequestCounters::add(&counters.list);
                }
            })
            .boxed()
    }
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        RequestCounters::add(&self.counters.put);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        RequestCounters::add(&self.counters.put);
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(MeteredUpload {
            inner,
            counters: self.counters.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        RequestCounters::add(if options.head {
            &self.counters.head
        } else {
            &self.counters.get
        });
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        // Not forwarded: the local store answers every range from one open file, but S3 makes
        // one request per coalesced range, which is what object_store's default does through
        // `get_opts` (counted there).
        object_store::coalesce_ranges(
            ranges,
            |range| {
                let options = GetOptions {
                    range: Some(range.into()),
                    ..GetOptions::default()
                };
                async move { self.get_opts(location, options).await?.bytes().await }
            },
            object_store::OBJECT_STORE_COALESCE_DEFAULT,
        )
        .await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let counters = self.counters.clone();
        let mut seen = 0u64;
        let counted = locations
            .inspect_ok(move |_| {
                if seen.is_multiple_of(S3_PAGE) {
                    RequestCounters::add(&counters.delete);
                }
                seen += 1;
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paged(self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paged(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        RequestCounters::add(&self.counters.list);
        let listed = self.inner.list_with_delimiter(prefix).await?;
        let entries = (listed.objects.len() + listed.common_prefixes.len()) as u64;
        for _ in 1..entries.div_ceil(S3_PAGE) {
            RequestCounters::add(&self.counters.list);
        }
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        RequestCounters::add(&self.counters.copy);
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        // Forwarded so the local store keeps its atomic rename; S3 renames by copy + delete.
        RequestCounters::add(&self.counters.copy);
        RequestCounters::add(&self.counters.delete);
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload counting each part and the completion as a `put`, an abort as a `delete`.
#[derive(Debug)]
struct MeteredUpload {
    inner: Box<dyn MultipartUpload>,
    counters: Arc<RequestCounters>,
}

#[async_trait]
impl MultipartUpload for MeteredUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        RequestCounters::add(&self.counters.put);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        RequestCounters::add(&self.counters.put);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        RequestCounters::add(&self.counters.delete);
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutMode, WriteMultipart};

    fn metered() -> MeteredStore {
        MeteredStore::new(Arc::new(InMemory::new()))
    }

    fn counts(s: &MeteredStore) -> RequestCounts {
        s.counters().snapshot()
    }

    #[tokio::test]
    async fn each_operation_counts_in_its_class() {
        let s = metered();
        let a = Path::from("t/a");
        s.put(&a, PutPayload::from_static(b"0123456789")).await.unwrap();
        s.put_opts(
            &Path::from("t/b"),
            PutPayload::from_static(b"x"),
            PutMode::Create.into(),
        )
        .await
        .unwrap();
        // A refused conditional create is still a billed request.
        assert!(
            s.put_opts(&a, PutPayload::from_static(b"y"), PutMode::Create.into())
                .await
                .is_err()
        );
        assert_eq!(s.get(&a).await.unwrap().bytes().await.unwrap().as_ref(), b"0123456789");
        assert_eq!(s.get_range(&a, 2..4).await.unwrap().as_ref(), b"23");
        assert_eq!(s.head(&a).await.unwrap().size, 10);
        assert!(s.get(&Path::from("t/missing")).await.is_err());
        assert_eq!(
            s.list(Some(&Path::from("t")))
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(s.list_with_delimiter(None).await.unwrap().common_prefixes.len(), 1);
        s.copy(&a, &Path::from("t/c")).await.unwrap();
        s.rename(&Path::from("t/c"), &Path::from("t/d")).await.unwrap();
        s.delete(&Path::from("t/d")).await.unwrap();
        assert_eq!(
            counts(&s),
            RequestCounts {
                get: 3,
                head: 1,
                put: 3,
                list: 2,
                delete: 2,
                copy: 2,
            }
        );
        let ops: Vec<&str> = counts(&s).by_operation().iter().map(|(op, _)| *op).collect();
        assert_eq!(ops, ["get", "head", "put", "list", "delete", "copy"]);
    }

    #[tokio::test]
    async fn multipart_uploads_count_start_parts_and_completion() {
        let s = metered();
        let upload = s.put_multipart(&Path::from("big")).await.unwrap();
        let mut w = WriteMultipart::new_with_chunk_size(upload, 5);
        w.put(Bytes::from_static(b"0123456789abc")); // three parts of at most 5 bytes
        w.finish().await.unwrap();
        assert_eq!(counts(&s).put, 1 + 3 + 1);
        assert_eq!(
            s.get(&Path::from("big")).await.unwrap().bytes().await.unwrap().len(),
            13
        );

        let mut aborted = s.put_multipart(&Path::from("gone")).await.unwrap();
        aborted.abort().await.unwrap();
        assert_eq!((counts(&s).put, counts(&s).delete), (6, 1));
    }

    #[tokio::test]
    async fn ranged_reads_count_one_get_per_coalesced_range() {
        let s = metered();
        let a = Path::from("f");
        s.put(&a, PutPayload::from(vec![7u8; 4 << 20])).await.unwrap();
        // Two nearby ranges coalesce into one request; one far away needs its own.
        let got = s
            .get_ranges(&a, &[0..10, 20..30, (3 << 20)..(3 << 20) + 5])
            .await
            .unwrap();
        assert_eq!(got.iter().map(Bytes::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(counts(&s).get, 2);
    }

    #[tokio::test]
    async fn listings_and_deletes_count_s3_pages() {
        let s = metered();
        let paths: Vec<Path> = (0..2001).map(|i| Path::from(format!("p/{i:05}"))).collect();
        for p in &paths {
            s.put(p, PutPayload::from_static(b"")).await.unwrap();
        }
        assert_eq!(s.list(None).try_collect::<Vec<_>>().await.unwrap().len(), 2001);
        assert_eq!(counts(&s).list, 3, "2001 keys are three pages of 1000");
        assert_eq!(
            s.list_with_delimiter(Some(&Path::from("p")))
                .await
                .unwrap()
                .objects
                .len(),
            2001
        );
        assert_eq!(counts(&s).list, 6);
        let deleted: Vec<Path> = s
            .delete_stream(futures::stream::iter(paths.into_iter().map(Ok)).boxed())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(deleted.len(), 2001);
        assert_eq!(counts(&s).delete, 3, "S3 deletes in batches of 1000");
        // An empty listing is still one request.
        assert!(s.list(Some(&Path::from("none"))).next().await.is_none());
        assert_eq!(counts(&s).list, 7);
    }
}
