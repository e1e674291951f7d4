use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::PageIndexPolicy;
use proptest::prelude::*;

use super::*;
use crate::Storage;
use crate::layout::{HOUR_MS, Table};
use crate::types::Matcher;
use crate::types::{Label, Labels, MatchOp, matches_all};
use crate::{Error, StorageConfig, WriteSummary};

const HOUR_NS: i64 = HOUR_MS * 1_000_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;

/// Tiny row groups and pages so the pruning paths run on test-sized data.
fn small() -> StorageConfig {
    StorageConfig {
        row_group_rows: 64,
        page_rows: 8,
        ..StorageConfig::default()
    }
}

async fn open(cfg: &StorageConfig) -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(cfg, dir.path()).await.unwrap();
    (dir, storage)
}

fn all() -> LogSelect {
    LogSelect {
        matchers: vec![],
        start_ns: i64::MIN,
        end_ns: i64::MAX,
        limit: None,
    }
}

/// What `read_logs` must answer, computed from the input alone: filter, sort by
/// `LogRecord`'s order, drop records equal to an earlier one, limit.
fn expected(records: &[LogRecord], req: &LogSelect) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = records
        .iter()
        .filter(|r| req.start_ns <= r.timestamp && r.timestamp <= req.end_ns && matches_all(&req.matchers, &r.labels))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out.truncate(req.limit.unwrap_or(usize::MAX));
    out
}

/// Field-by-field comparison, so a failure names the field.
fn assert_same(got: &[LogRecord], want: &[LogRecord]) {
    assert_eq!(got.len(), want.len(), "record count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.labels, w.labels, "record {i}: labels");
        assert_eq!(g.timestamp, w.timestamp, "record {i}: timestamp");
        assert_eq!(
            g.observed_timestamp, w.observed_timestamp,
            "record {i}: observed_timestamp"
        );
        assert_eq!(g.severity_number, w.severity_number, "record {i}: severity_number");
        assert_eq!(g.severity_text, w.severity_text, "record {i}: severity_text");
        assert_eq!(g.body, w.body, "record {i}: body");
        assert_eq!(g.trace_id, w.trace_id, "record {i}: trace_id");
        assert_eq!(g.span_id, w.span_id, "record {i}: span_id");
        assert_eq!(g.flags, w.flags, "record {i}: flags");
        assert_eq!(g.attributes, w.attributes, "record {i}: attributes");
        assert_eq!(
            g.resource_attributes, w.resource_attributes,
            "record {i}: resource_attributes"
        );
        assert_eq!(g.scope_name, w.scope_name, "record {i}: scope_name");
        assert_eq!(g.scope_version, w.scope_version, "record {i}: scope_version");
        assert_eq!(g.event_name, w.event_name, "record {i}: event_name");
    }
    assert_eq!(got, want);
}

/// Records with every field set (and some deliberately empty), unicode, structured bodies,
/// three clusters (one of them "no cluster") and three hours.
fn rich_records() -> Vec<LogRecord> {
    let streams = [
        Labels::from_pairs(&[
            ("cluster", "prod-eu-1"),
            ("service_name", "checkout"),
            ("k8s_namespace_name", "shop"),
        ]),
        Labels::from_pairs(&[("cluster", "prod-eu-1"), ("service_name", "unknown_service")]),
        Labels::from_pairs(&[("cluster", "ünïcode/clüster ✓"), ("service_name", "日本語")]),
        Labels::from_pairs(&[("service_name", "orphan"), ("__name__", "kept")]),
    ];
    let mut out = Vec::new();
    for i in 0..120i64 {
        let labels = streams[(i % 4) as usize].clone();
        let hour = i % 3;
        let full = i % 5 != 0;
        out.push(LogRecord {
            labels: labels.into(),
            // Nanosecond precision that a millisecond key would lose.
            timestamp: T0 + hour * HOUR_NS + i * 1_000_003 + 7,
            observed_timestamp: if full { T0 + hour * HOUR_NS + i * 1_000_003 + 99 } else { 0 },
            severity_number: (i % 25) as i32,
            severity_text: if full { ["INFO", "WARN", "エラー"][(i % 3) as usize].into() } else { String::new() },
            body: match i % 4 {
                0 => format!("GET /api/v1/items/{i} 200 — ok ✓"),
                1 => format!(r#"{{"msg":"structured","n":{i},"nested":{{"a":[1,2.5,true,null]}},"b64":"AAE="}}"#),
                2 => String::new(),
                _ => "multi\nline\ttext with \"quotes\" and \\ and \u{0}nul".into(),
            },
            trace_id: if full { format!("{:032x}", 0x0123_4567_89ab_cdef_u128 * (i as u128 + 1)) } else { String::new() },
            span_id: if full { format!("{:016x}", 0xfeed_u64 * (i as u64 + 1)) } else { String::new() },
            flags: if full { 1 } else { 0 },
            attributes: if full {
                format!(r#"{{"http.method":"GET","attempt":{i},"ratio":0.5,"ok":true,"raw":"3q2+7w==","tags":["a","b"],"ctx":{{"k":"v"}}}}"#)
            } else {
                "{}".into()
            },
            resource_attributes: if i % 7 == 0 { "".into() } else { r#"{"service.name":"checkout","host.name":"n1"}"#.into() },
            scope_name: if full { "io.opentelemetry.logback".into() } else { String::new() },
            scope_version: if full { "2.1.0".into() } else { String::new() },
            event_name: if i % 6 == 0 { "browser.click".into() } else { String::new() },
        });
    }
    out
}

#[tokio::test]
async fn every_field_round_trips_through_parquet() {
    let (dir, storage) = open(&small()).await;
    let records = rich_records();
    let summary = storage.write_logs(&records).await.unwrap();
    assert_eq!(summary.rows, records.len() as u64);
    // 3 hours × (prod-eu-1, ünïcode, none).
    assert_eq!(summary.files.len(), 9, "{:?}", summary.files);
    for f in &summary.files {
        assert!(f.starts_with("logs/2026-01-01/0"), "{f}");
        assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() > 0);
    }
    assert!(summary.files.iter().any(|f| f.contains("/@none/")));
    assert!(
        summary
            .files
            .iter()
            .any(|f| f.contains("/%C3%BCn%C3%AFcode%2Fcl%C3%BCster%20%E2%9C%93/"))
    );
    assert_eq!(storage.logs_stats().files, 9);
    assert_eq!(storage.stats().files, 0, "the metrics catalog is untouched");

    let got = storage.read_logs(&all()).await.unwrap();
    assert_same(&got, &expected(&records, &all()));

    // A fresh process finds the same files by listing.
    drop(storage);
    let storage = Storage::open(&small(), dir.path()).await.unwrap();
    assert_eq!(storage.logs_stats().rows, records.len() as u64);
    let got = storage.read_logs(&all()).await.unwrap();
    assert_same(&got, &expected(&records, &all()));
}

#[tokio::test]
async fn selects_by_matchers_time_and_limit() {
    let (_dir, storage) = open(&small()).await;
    let records = rich_records();
    storage.write_logs(&records).await.unwrap();
    let re = |name: &str, v: &str| Matcher::new(MatchOp::RegexMatch, name, v).unwrap();
    let ne = |name: &str, v: &str| Matcher::new(MatchOp::NotEqual, name, v).unwrap();
    let t = |k: i64| T0 + k * 1_000_003 + 7;
    let cases = [
        LogSelect {
            matchers: vec![Matcher::equal("cluster", "prod-eu-1")],
            ..all()
        },
        LogSelect {
            matchers: vec![Matcher::equal("cluster", "")],
            ..all()
        },
        LogSelect {
            matchers: vec![re("cluster", ".*clüster.*"), Matcher::equal("service_name", "日本語")],
            ..all()
        },
        LogSelect {
            matchers: vec![Matcher::equal("service_name", "checkout"), ne("k8s_namespace_name", "")],
            ..all()
        },
        LogSelect {
            matchers: vec![Matcher::equal("__name__", "kept")],
            ..all()
        },
        LogSelect {
            matchers: vec![Matcher::equal("service_name", "nope")],
            ..all()
        },
        // Closed range with nanosecond edges: exactly the records at t(3) and t(6) are the ends.
        LogSelect {
            start_ns: t(3),
            end_ns: t(6),
            ..all()
        },
        LogSelect {
            start_ns: t(3) + 1,
            end_ns: t(6) - 1,
            ..all()
        },
        LogSelect {
            start_ns: T0 + HOUR_NS,
            end_ns: T0 + 2 * HOUR_NS - 1,
            limit: Some(5),
            ..all()
        },
        LogSelect {
            start_ns: T0 + HOUR_NS,
            end_ns: T0,
            ..all()
        },
        LogSelect {
            limit: Some(0),
            ..all()
        },
    ];
    for (i, req) in cases.iter().enumerate() {
        let want = expected(&records, req);
        let got = storage.read_logs(req).await.unwrap();
        assert_eq!(got, want, "case {i}: {req:?}");
    }
    assert_eq!(
        expected(&records, &cases[6]).len(),
        2,
        "both ends of the range are included"
    );
    assert_eq!(expected(&records, &cases[7]).len(), 0);
}

#[tokio::test]
async fn files_are_pruned_by_cluster_and_hour() {
    let (dir, storage) = open(&small()).await;
    let records = rich_records();
    let summary = storage.write_logs(&records).await.unwrap();
    // Break every file but prod-eu-1's hour-1 file: a read that opens any other file fails.
    let keep = summary
        .files
        .iter()
        .find(|f| f.starts_with("logs/2026-01-01/01/prod-eu-1/"))
        .unwrap()
        .clone();
    for f in summary.files.iter().filter(|f| **f != keep) {
        std::fs::write(dir.path().join(f), b"not parquet").unwrap();
    }
    let req = LogSelect {
        matchers: vec![Matcher::equal("cluster", "prod-eu-1")],
        start_ns: T0 + HOUR_NS,
        end_ns: T0 + 2 * HOUR_NS - 1,
        limit: None,
    };
    let got = storage.read_logs(&req).await.unwrap();
    assert!(!got.is_empty());
    assert_eq!(got, expected(&records, &req));
    // Any cluster matcher prunes, regexes included.
    let regex = LogSelect {
        matchers: vec![Matcher::new(MatchOp::RegexMatch, "cluster", "prod-.*").unwrap()],
        ..req.clone()
    };
    assert_eq!(storage.read_logs(&regex).await.unwrap(), got);
    // Without the cluster matcher a broken file is opened: the read fails, it does not skip data.
    let unpruned = LogSelect {
        matchers: vec![],
        ..req
    };
    assert!(matches!(storage.read_logs(&unpruned).await, Err(Error::Parquet { .. })));
}

#[tokio::test]
async fn row_groups_and_pages_are_pruned_by_statistics() {
    let (dir, storage) = open(&small()).await;
    // One stream, one hour, 512 records 1 ms apart: 8 row groups of 64, pages of 8.
    let labels = Labels::from_pairs(&[("cluster", "c"), ("service_name", "s")]);
    let records: Vec<LogRecord> = (0..512)
        .map(|i| LogRecord {
            labels: labels.clone().into(),
            timestamp: T0 + i * 1_000_000,
            body: format!("line {i}"),
            trace_id: format!("{i:032x}"),
            ..LogRecord::default()
        })
        .collect();
    let summary = storage.write_logs(&records).await.unwrap();
    assert_eq!(summary.files.len(), 1);
    let bytes = std::fs::read(dir.path().join(&summary.files[0])).unwrap();
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(PageIndexPolicy::Required)
        .with_schema(schema::logs_schema());
    let meta = ArrowReaderMetadata::load(&bytes::Bytes::from(bytes), options).unwrap();
    assert_eq!(meta.metadata().num_row_groups(), 8);
    let rg0 = meta.metadata().row_group(0);
    let trace_col = rg0.column(schema::col::TRACE_ID);
    assert!(trace_col.bloom_filter_offset().is_some(), "trace_id has a bloom filter");
    let sorting = rg0.sorting_columns().unwrap();
    let sorted_by: Vec<i32> = sorting.iter().map(|s| s.column_idx).collect();
    assert_eq!(sorted_by, vec![0, 2, 4], "cluster, labels, timestamp");

    // Records 100..=109 live in row group 1 (rows 64..128), pages 4 (96..104) and 5 (104..112).
    let req = LogSelect {
        start_ns: T0 + 100 * 1_000_000,
        end_ns: T0 + 109 * 1_000_000,
        ..all()
    };
    let plan = plan_of(&meta, req.start_ns, req.end_ns, &req.matchers).unwrap();
    assert_eq!(plan.0, vec![1]);
    assert_eq!(plan.1, 16, "two pages of 8 rows are read");
    assert_eq!(storage.read_logs(&req).await.unwrap(), expected(&records, &req));
    // A pinned service_name that no row has prunes everything; the right one prunes nothing.
    let other = LogSelect {
        matchers: vec![Matcher::equal("service_name", "t")],
        ..all()
    };
    assert!(plan_of(&meta, other.start_ns, other.end_ns, &other.matchers).is_none());
    let same = LogSelect {
        matchers: vec![Matcher::equal("service_name", "s")],
        ..all()
    };
    assert_eq!(
        plan_of(&meta, same.start_ns, same.end_ns, &same.matchers).unwrap(),
        ((0..8).collect(), 512)
    );
}

#[tokio::test]
async fn a_retried_write_is_read_once_and_empty_writes_write_nothing() {
    let (_dir, storage) = open(&StorageConfig::default()).await;
    assert_eq!(storage.write_logs(&[]).await.unwrap(), WriteSummary::default());
    let records = rich_records();
    storage.write_logs(&records[..40]).await.unwrap();
    storage.write_logs(&records[..40]).await.unwrap();
    assert_eq!(storage.logs_stats().rows, 80);
    let got = storage.read_logs(&all()).await.unwrap();
    assert_eq!(got, expected(&records[..40], &all()));
    // Two identical lines in one write are one record too (Loki drops exact duplicates as well).
    let dup = vec![records[1].clone(), records[1].clone()];
    let (_dir2, other) = open(&StorageConfig::default()).await;
    other.write_logs(&dup).await.unwrap();
    assert_eq!(other.read_logs(&all()).await.unwrap(), vec![records[1].clone()]);
}

#[tokio::test]
async fn oversized_reads_fail_instead_of_exhausting_memory() {
    let cfg = StorageConfig {
        max_select_samples: 50,
        ..small()
    };
    let (_dir, storage) = open(&cfg).await;
    storage.write_logs(&rich_records()).await.unwrap();
    let err = storage.read_logs(&all()).await.unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 50 }), "{err}");
    let one_cluster = LogSelect {
        matchers: vec![Matcher::equal("cluster", "")],
        ..all()
    };
    assert_eq!(storage.read_logs(&one_cluster).await.unwrap().len(), 30);
}

#[tokio::test]
async fn corrupt_and_foreign_objects() {
    let (dir, storage) = open(&small()).await;
    let store = storage.object_store();
    store
        .put(&Path::from("logs/README.txt"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(storage.refresh().await.unwrap(), 0, "foreign objects are ignored");
    // A metrics file put where a logs file belongs is refused, not misread.
    let metric = crate::types::Series::new(
        Labels::from_pairs(&[("__name__", "up"), ("cluster", "c")]),
        vec![crate::types::Sample::new(T0 / 1_000_000, 1.0)],
    );
    let m = storage.write_metrics(&[metric]).await.unwrap();
    let key = crate::layout::FileKey::new(Table::Logs, "c", T0 / 1_000_000, T0 / 1_000_000, 1).unwrap();
    std::fs::create_dir_all(dir.path().join(key.path().as_ref()).parent().unwrap()).unwrap();
    let size = std::fs::copy(dir.path().join(&m.files[0]), dir.path().join(key.path().as_ref())).unwrap();
    assert_eq!(
        storage.refresh().await.unwrap(),
        0,
        "an object the manifest does not list is not data"
    );
    assert!(storage.read_logs(&all()).await.unwrap().is_empty());
    let change = crate::manifest::Change {
        add: vec![crate::catalog::FileMeta::new(key, size)],
        ..Default::default()
    };
    storage.commit(&change).await.unwrap();
    assert!(storage.read_logs(&all()).await.is_err());
}

fn label_strategy() -> impl Strategy<Value = Labels> {
    let name = prop_oneof![
        Just("cluster".to_string()),
        Just("service_name".to_string()),
        Just("__name__".to_string()),
        "[a-z_]{1,6}",
    ];
    let value = prop_oneof![Just("a".to_string()), Just("b".to_string()), any::<String>()];
    proptest::collection::vec((name, value), 0..4)
        .prop_map(|pairs| Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect()))
}

fn record_strategy() -> impl Strategy<Value = LogRecord> {
    // Times within three hours around T0 (so files split), or anywhere an i64 reaches.
    let ts = prop_oneof![4 => T0 - HOUR_NS..T0 + 2 * HOUR_NS, 1 => any::<i64>()];
    (
        label_strategy(),
        ts,
        any::<i64>(),
        any::<i32>(),
        (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
        any::<u32>(),
        (any::<String>(), any::<String>()),
        (any::<String>(), any::<String>(), any::<String>()),
    )
        .prop_map(
            |(
                labels,
                timestamp,
                observed_timestamp,
                severity_number,
                (severity_text, body, trace_id, span_id),
                flags,
                (attributes, resource_attributes),
                (scope_name, scope_version, event_name),
            )| LogRecord {
                labels: labels.into(),
                timestamp,
                observed_timestamp,
                severity_number,
                severity_text,
                body,
                trace_id,
                span_id,
                flags,
                attributes,
                resource_attributes: resource_attributes.into(),
                scope_name,
                scope_version,
                event_name,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn arbitrary_records_round_trip(
        records in proptest::collection::vec(record_strategy(), 0..40),
        window in (T0 - HOUR_NS..T0 + 2 * HOUR_NS, T0 - HOUR_NS..T0 + 2 * HOUR_NS),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let got = rt.block_on(async {
            let (_dir, storage) = open(&small()).await;
            storage.write_logs(&records).await.unwrap();
            let everything = storage.read_logs(&all()).await.unwrap();
            let (a, b) = window;
            let windowed = LogSelect { start_ns: a.min(b), end_ns: a.max(b), ..all() };
            (everything, storage.read_logs(&windowed).await.unwrap(), windowed)
        });
        prop_assert_eq!(&got.0, &expected(&records, &all()));
        prop_assert_eq!(&got.1, &expected(&records, &got.2));
    }
}

/// The read plan's row groups and selected row count.
fn plan_of(meta: &ArrowReaderMetadata, start: i64, end: i64, matchers: &[Matcher]) -> Option<(Vec<usize>, usize)> {
    let p = plan::plan(meta, start, end, matchers)?;
    Some((p.row_groups, p.rows))
}
