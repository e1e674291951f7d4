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
//! Failed requests count too (S3 bills 4xx answers), and are told apart by the `outcome` label
//! (`success` or `error`) of `tributary_object_store_requests_total`. Retries inside the S3
//! client are not seen here: a request retried three times counts once.
//!
//! Each call is also timed, by the same operation, into
//! `tributary_object_store_request_duration_seconds`: a call returning a value until it returns
//! (for `get`, until the answer's headers: reading the body is the caller's), a listing or delete
//! stream from the call until its end, a multipart upload's part and completion each on its own.
//! A listing counts one failure when its stream yields an error; a stream dropped before its end
//! is not timed.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result, UploadPart,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::histogram::Histogram;

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

/// The request classes, in the order of [`RequestCounts::by_operation`].
#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Head,
    Put,
    List,
    Delete,
    Copy,
}

/// The operation names, indexed by [`Op`].
const OPERATIONS: [&str; 6] = ["get", "head", "put", "list", "delete", "copy"];

/// Latency buckets of `tributary_object_store_request_duration_seconds`: a local disk answers in
/// well under a millisecond, S3 in tens of milliseconds, a large upload or a retried request in
/// seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

/// The live counters behind [`RequestCounts`] and the metrics of the module docs, shared by a
/// [`MeteredStore`] and its uploads.
#[derive(Debug)]
pub(crate) struct RequestCounters {
    counts: [AtomicU64; 6],
    failed: [AtomicU64; 6],
    durations: [Histogram; 6],
}

impl Default for RequestCounters {
    fn default() -> Self {
        Self {
            counts: Default::default(),
            failed: Default::default(),
            durations: std::array::from_fn(|_| Histogram::new(DURATION_BUCKETS)),
        }
    }
}

impl RequestCounters {
    /// The counts now.
    pub(crate) fn snapshot(&self) -> RequestCounts {
        let n = |op: Op| self.counts[op as usize].load(Ordering::Relaxed);
        RequestCounts {
            get: n(Op::Get),
            head: n(Op::Head),
            put: n(Op::Put),
            list: n(Op::List),
            delete: n(Op::Delete),
            copy: n(Op::Copy),
        }
    }

    fn add(&self, op: Op) {
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one call of `op` begun at `started`, and whether it failed.
    fn finished(&self, op: Op, started: Instant, failed: bool) {
        if failed {
            self.failed[op as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.durations[op as usize].observe(started.elapsed().as_secs_f64());
    }

    /// `result` of a call of `op` begun at `started`, recorded.
    fn timed<T>(&self, op: Op, started: Instant, result: Result<T>) -> Result<T> {
        self.finished(op, started, result.is_err());
        result
    }
}

/// `/metrics` families of the store's requests (see the module docs), read at each scrape.
/// Requests of an operation that failed are `outcome="error"`, the rest `outcome="success"`
/// (the billing-class count minus the failures, so both sum to [`RequestCounts`]).
#[derive(Debug)]
pub(crate) struct RequestMetrics(pub(crate) Arc<RequestCounters>);

impl Collector for RequestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), fmt::Error> {
        let c = &self.0;
        let mut requests = encoder.encode_descriptor(
            "tributary_object_store_requests",
            "Object-store requests by S3 billing class (get, head, put incl. multipart parts, list pages, delete, copy) and outcome",
            None,
            MetricType::Counter,
        )?;
        for (i, operation) in OPERATIONS.iter().enumerate() {
            let total = c.counts[i].load(Ordering::Relaxed);
            let failed = c.failed[i].load(Ordering::Relaxed).min(total);
            for (outcome, n) in [("success", total - failed), ("error", failed)] {
                let labels = [("operation", *operation), ("outcome", outcome)];
                ConstCounter::new(n).encode(requests.encode_family(&labels)?)?;
            }
        }
        let mut durations = encoder.encode_descriptor(
            "tributary_object_store_request_duration_seconds",
            "Object-store call latency by operation (a get until its answer's headers, a listing until its last page)",
            None,
            MetricType::Histogram,
        )?;
        for (i, operation) in OPERATIONS.iter().enumerate() {
            let labels = [("operation", *operation)];
            c.durations[i].encode(durations.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `stream`, recording one call of `op` begun at `started` when it ends (a failure if it
/// yielded an error).
fn timed_stream<T: Send + 'static>(
    counters: Arc<RequestCounters>,
    op: Op,
    started: Instant,
    stream: BoxStream<'static, Result<T>>,
) -> BoxStream<'static, Result<T>> {
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_error = failed.clone();
    let end = futures::stream::poll_fn(move |_| {
        counters.finished(op, started, failed.load(Ordering::Relaxed));
        Poll::Ready(None)
    });
    stream
        .inspect_err(move |_| seen_error.store(true, Ordering::Relaxed))
        .chain(end)
        .boxed()
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
        let started = Instant::now();
        self.counters.add(Op::List);
        let counters = self.counters.clone();
        let mut seen = 0u64;
        let stream = stream
            .inspect_ok(move |_| {
                seen += 1;
                if seen > S3_PAGE && seen % S3_PAGE == 1 {
                    counters.add(Op::List);
                }
            })
            .boxed();
        timed_stream(self.counters.clone(), Op::List, started, stream)
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
        let started = Instant::now();
        self.counters.add(Op::Put);
        let result = self.inner.put_opts(location, payload, opts).await;
        self.counters.timed(Op::Put, started, result)
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        self.counters.add(Op::Put);
        let result = self.inner.put_multipart_opts(location, opts).await;
        let inner = self.counters.timed(Op::Put, started, result)?;
        Ok(Box::new(MeteredUpload {
            inner,
            counters: self.counters.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let started = Instant::now();
        let op = if options.head { Op::Head } else { Op::Get };
        self.counters.add(op);
        let result = self.inner.get_opts(location, options).await;
        self.counters.timed(op, started, result)
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
        let started = Instant::now();
        let counters = self.counters.clone();
        let mut seen = 0u64;
        let counted = locations
            .inspect_ok(move |_| {
                if seen.is_multiple_of(S3_PAGE) {
                    counters.add(Op::Delete);
                }
                seen += 1;
            })
            .boxed();
        timed_stream(
            self.counters.clone(),
            Op::Delete,
            started,
            self.inner.delete_stream(counted),
        )
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paged(self.inner.list(prefix))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.paged(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let started = Instant::now();
        self.counters.add(Op::List);
        let result = self.inner.list_with_delimiter(prefix).await;
        let listed = self.counters.timed(Op::List, started, result)?;
        let entries = (listed.objects.len() + listed.common_prefixes.len()) as u64;
        for _ in 1..entries.div_ceil(S3_PAGE) {
            self.counters.add(Op::List);
        }
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let started = Instant::now();
        self.counters.add(Op::Copy);
        let result = self.inner.copy_opts(from, to, options).await;
        self.counters.timed(Op::Copy, started, result)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        // Forwarded so the local store keeps its atomic rename; S3 renames by copy + delete.
        // Timed (and a failure counted) as the copy, the request that does the work.
        let started = Instant::now();
        self.counters.add(Op::Copy);
        self.counters.add(Op::Delete);
        let result = self.inner.rename_opts(from, to, options).await;
        self.counters.timed(Op::Copy, started, result)
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
        let started = Instant::now();
        self.counters.add(Op::Put);
        let counters = self.counters.clone();
        let part = self.inner.put_part(data);
        Box::pin(async move { counters.timed(Op::Put, started, part.await) })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let started = Instant::now();
        self.counters.add(Op::Put);
        let result = self.inner.complete().await;
        self.counters.timed(Op::Put, started, result)
    }

    async fn abort(&mut self) -> Result<()> {
        let started = Instant::now();
        self.counters.add(Op::Delete);
        let result = self.inner.abort().await;
        self.counters.timed(Op::Delete, started, result)
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

    #[tokio::test]
    async fn metrics_split_outcomes_and_time_each_call() {
        let s = metered();
        let a = Path::from("m/a");
        s.put(&a, PutPayload::from_static(b"abc")).await.unwrap();
        s.get(&a).await.unwrap();
        assert!(s.get(&Path::from("m/missing")).await.is_err());
        assert_eq!(
            s.list(Some(&Path::from("m")))
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .len(),
            1
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(RequestMetrics(s.counters())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"tributary_object_store_requests_total{operation="get",outcome="success"} 1"#,
            r#"tributary_object_store_requests_total{operation="get",outcome="error"} 1"#,
            r#"tributary_object_store_requests_total{operation="put",outcome="success"} 1"#,
            r#"tributary_object_store_requests_total{operation="list",outcome="success"} 1"#,
            r#"tributary_object_store_requests_total{operation="copy",outcome="error"} 0"#,
            // Both gets are timed, the failed one too; the listing once its stream ended.
            r#"tributary_object_store_request_duration_seconds_count{operation="get"} 2"#,
            r#"tributary_object_store_request_duration_seconds_count{operation="list"} 1"#,
            r#"tributary_object_store_request_duration_seconds_count{operation="head"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
