use std::sync::Arc;

use super::*;
use crate::compactor::Compactor;
use crate::test_util::trace_source::{SUITE_START_NS, suite_spans, trace_id};
use crate::test_util::trace_source_conformance;
use crate::{Storage, StorageConfig};

/// Tiny row groups and pages, so lookups by id prune inside files; compaction at once.
fn small() -> StorageConfig {
    let mut cfg = StorageConfig {
        row_group_rows: 8,
        page_rows: 4,
        ..StorageConfig::default()
    };
    cfg.compaction.settle = std::time::Duration::ZERO;
    cfg.compaction.deletion_delay = std::time::Duration::ZERO;
    cfg
}

/// Writes `spans` in three loads, each twice (a retried flush), into a fresh store.
async fn stored(spans: &[Span]) -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&small(), dir.path()).await.unwrap();
    for part in spans.chunks(spans.len().div_ceil(3)) {
        storage.write_spans(part).await.unwrap();
        storage.write_spans(part).await.unwrap();
    }
    (dir, storage)
}

#[tokio::test]
async fn stored_spans_pass_the_trace_source_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = dirs.clone();
    trace_source_conformance(|spans| async move {
        let (dir, storage) = stored(&spans).await;
        keep.lock().push(dir);
        storage.trace_source()
    })
    .await;
}

#[tokio::test]
async fn compacted_spans_pass_the_trace_source_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let keep = dirs.clone();
    trace_source_conformance(|spans| async move {
        let (dir, storage) = stored(&spans).await;
        let before = storage.catalog(Table::Spans).stats().files;
        let c = Compactor::new(storage.clone(), &small(), "test".into()).unwrap();
        let report = c.run_once(false).await.unwrap();
        assert!(report.ran && report.failures.is_empty(), "{report:?}");
        let after = storage.catalog(Table::Spans).stats().files;
        assert!(after < before, "compaction merged span files: {before} -> {after}");
        keep.lock().push(dir);
        storage.trace_source()
    })
    .await;
}

#[tokio::test]
async fn a_lookup_by_id_reads_only_the_pages_that_can_hold_it() {
    // 200 traces of 5 spans in one hour and cluster: one file, 125 row groups of 8 rows.
    let mut spans = Vec::new();
    for t in 0..200u64 {
        for s in 0..5u64 {
            spans.push(Span {
                trace_id: trace_id(t),
                span_id: (t * 10 + s).to_be_bytes(),
                start: SUITE_START_NS + (t * 5 + s) as i64 * 1_000_000,
                cluster: "c".into(),
                attributes: "{}".into(),
                resource_attributes: "{}".into(),
                events: "[]".into(),
                links: "[]".into(),
                ..Span::default()
            });
        }
    }
    let (_dir, storage) = stored(&spans).await;
    let files = storage
        .catalog(Table::Spans)
        .files(Table::Spans, TimeRange::ALL, |_| true);
    assert!(!files.is_empty());
    let mut rows_read = 0;
    for f in &files {
        let meta = storage
            .io
            .footer(&mut storage.io.reader(f), f, spans_schema())
            .await
            .unwrap();
        if let Some(p) = read_plan(&meta, i64::MIN, i64::MAX, Some(trace_id(117))) {
            rows_read += p.rows;
        }
    }
    // Each file holds the trace once (5 rows, written twice in one load of the three); pages of
    // 4 rows: at most 2 pages a row group, 2 row groups a file.
    assert!(
        rows_read <= 16 * files.len(),
        "read {rows_read} rows of {} files",
        files.len()
    );
    let got = storage
        .trace_source()
        .select_spans(&SpanRequest {
            trace_id: Some(trace_id(117)),
            ..SpanRequest::range(i64::MIN, i64::MAX)
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|s| s.trace_id == trace_id(117)));
}

#[tokio::test]
async fn a_read_past_the_row_limit_fails_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        max_select_samples: 10,
        ..small()
    };
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    storage.write_spans(&suite_spans()).await.unwrap();
    let err = storage
        .trace_source()
        .select_spans(&SpanRequest::range(i64::MIN, i64::MAX))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 10 }), "{err}");
}

/// A one-span trace `t` in hour `hour` of the suite's day.
fn one_span(t: u64, hour: i64) -> Span {
    Span {
        trace_id: trace_id(t),
        span_id: (t + 1).to_be_bytes(),
        start: SUITE_START_NS + hour * 3_600_000_000_000 + t as i64,
        cluster: "c".into(),
        attributes: "{}".into(),
        resource_attributes: "{}".into(),
        events: "[]".into(),
        links: "[]".into(),
        ..Span::default()
    }
}

#[tokio::test]
async fn a_lookup_skips_the_files_whose_bloom_filters_do_not_hold_the_id() {
    // Two hours of 100 interleaved traces each: every file's trace-id bounds cover the id looked
    // up, but only one file holds it.
    let spans: Vec<Span> = (0..200u64).map(|t| one_span(t, (t % 2) as i64)).collect();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&small(), dir.path()).await.unwrap();
    storage.write_spans(&spans).await.unwrap();
    let files = storage
        .catalog(Table::Spans)
        .files(Table::Spans, TimeRange::ALL, |_| true);
    assert_eq!(files.len(), 2);
    let wanted = trace_id(101); // odd: the second hour's file
    let mut decoded = Vec::new();
    for f in &files {
        let meta = storage
            .io
            .footer(&mut storage.io.reader(f), f, spans_schema())
            .await
            .unwrap();
        assert!(
            read_plan(&meta, i64::MIN, i64::MAX, Some(wanted)).is_some(),
            "the bounds keep both files"
        );
        let batches = read_trace(&storage.io, &storage.trace_blooms, f, wanted, i64::MIN, i64::MAX)
            .await
            .unwrap();
        decoded.push(batches.iter().map(RecordBatch::num_rows).sum::<usize>());
    }
    decoded.sort_unstable();
    assert_eq!(decoded[0], 0, "the file without the id decodes nothing: {decoded:?}");
    assert!(decoded[1] >= 1, "{decoded:?}");
}

/// A lookup reads each file's bloom filters once: looked up again (another id), the files
/// whose filters rule the id out cost no read at all, the footers and filters being cached.
#[tokio::test]
async fn a_second_lookup_reads_no_bloom_filter_again() {
    // Six hours: six files, each with its own ids.
    let spans: Vec<Span> = (0..600u64).map(|t| one_span(t, (t % 6) as i64)).collect();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&small(), dir.path()).await.unwrap();
    storage.write_spans(&spans).await.unwrap();
    let source = storage.trace_source();
    let lookup = |t: u64| {
        let source = source.clone();
        async move {
            let req = SpanRequest {
                trace_id: Some(trace_id(t)),
                ..SpanRequest::range(i64::MIN, i64::MAX)
            };
            source.select_spans(&req).await.unwrap()
        }
    };
    assert_eq!(lookup(7).await.len(), 1);
    let gets = || storage.request_counts().get;
    assert!(storage.trace_blooms.bytes() > 0, "filters kept");
    let before = gets();
    assert_eq!(lookup(13).await.len(), 1);
    let warm = gets() - before;
    // The one file holding the id is read (its pages); the five others cost nothing.
    assert!(warm <= 2, "{warm} GETs for a warm lookup");
    let off = Storage::open(
        &StorageConfig {
            trace_bloom_cache_bytes: 0,
            ..small()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let source = off.trace_source();
    let req = SpanRequest {
        trace_id: Some(trace_id(7)),
        ..SpanRequest::range(i64::MIN, i64::MAX)
    };
    source.select_spans(&req).await.unwrap();
    let before = off.request_counts().get;
    source.select_spans(&req).await.unwrap();
    assert!(
        off.request_counts().get - before >= 6,
        "without the cache every file's filter is read again"
    );
}
