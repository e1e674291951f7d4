//! The Parquet [`LogSource`] against a reference (filter and sort of the same records in
//! memory), and proofs that its pruning skips files, row groups and rows.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::Storage;
use crate::layout::HOUR_MS;
use crate::read::{LineHint, LogRequest};
use crate::types::{Labels, MatchOp, matches_all};
use crate::{Error, StorageConfig};
use arrow_array::{Array, StringArray};
use regex::bytes::Regex;

const HOUR_NS: i64 = HOUR_MS * 1_000_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;

fn cfg(row_group_rows: usize, page_rows: usize, read_concurrency: usize) -> StorageConfig {
    StorageConfig {
        row_group_rows,
        page_rows,
        read_concurrency,
        ..StorageConfig::default()
    }
}

async fn open(cfg: &StorageConfig) -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(cfg, dir.path()).await.unwrap();
    (dir, storage)
}

/// The contract, computed from the input alone.
fn reference(records: &[LogRecord], req: &LogRequest) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = records
        .iter()
        .filter(|r| {
            req.start <= r.timestamp
                && r.timestamp < req.end
                && matches_all(&req.matchers, &r.labels)
                && req.line_hints.iter().all(|h| match h {
                    LineHint::Contains(s) => r.body.contains(s.as_str()),
                    LineHint::NotContains(s) => !r.body.contains(s.as_str()),
                })
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    if req.direction == Direction::Backward {
        out.reverse();
    }
    out.truncate(req.limit.unwrap_or(usize::MAX));
    out
}

fn request(matchers: Vec<Matcher>, start: i64, end: i64) -> LogRequest {
    LogRequest {
        matchers,
        start,
        end,
        line_hints: vec![],
        direction: Direction::Backward,
        limit: None,
    }
}

fn line(i: usize) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(&[("cluster", "c"), ("service_name", "s")]).into(),
        timestamp: T0 + i as i64 * 1_000_000,
        body: format!("line {i}{}", if i % 10 == 3 { " timeout" } else { "" }),
        attributes: "{}".into(),
        ..LogRecord::default()
    }
}

/// One file per hour over six hours, then every file but the newest (Backward) or the oldest
/// (Forward) broken: a limited read must answer from that one file without opening another.
#[tokio::test]
async fn a_limited_read_stops_opening_files_once_the_limit_is_reached() {
    let (dir, storage) = open(&cfg(64, 8, 1)).await;
    let mut files = Vec::new();
    let mut records = Vec::new();
    for h in 0..6 {
        let batch: Vec<LogRecord> = (0..50)
            .map(|i| LogRecord {
                timestamp: T0 + h * HOUR_NS + i * 1_000_000,
                ..line(i as usize)
            })
            .collect();
        files.extend(storage.write_logs(&batch).await.unwrap().files);
        records.extend(batch);
    }
    assert_eq!(files.len(), 6);
    let source = storage.log_scan();
    let all = request(vec![Matcher::equal("service_name", "s")], i64::MIN, i64::MAX);
    let newest_first = LogRequest {
        limit: Some(20),
        ..all.clone()
    };
    let got = source.select_logs(&newest_first).await.unwrap();
    assert_eq!(got, reference(&records, &newest_first));
    assert_eq!(source.counters().files_opened, 1, "{:?}", source.counters());
    let oldest_first = LogRequest {
        direction: Direction::Forward,
        ..newest_first.clone()
    };
    let before = source.counters().files_opened;
    assert_eq!(
        source.select_logs(&oldest_first).await.unwrap(),
        reference(&records, &oldest_first)
    );
    assert_eq!(source.counters().files_opened - before, 1);

    // Broken files prove the others are never read, not just not counted.
    for f in &files[1..5] {
        std::fs::write(dir.path().join(f), b"not parquet").unwrap();
    }
    let fresh = Storage::open(&cfg(64, 8, 1), dir.path()).await.unwrap();
    let source = fresh.log_source();
    assert_eq!(
        source.select_logs(&newest_first).await.unwrap(),
        reference(&records, &newest_first)
    );
    assert_eq!(
        source.select_logs(&oldest_first).await.unwrap(),
        reference(&records, &oldest_first)
    );
    // A limit reaching into the broken files does read them (and fails): nothing is skipped
    // that could hold an answer.
    let deeper = LogRequest {
        limit: Some(60),
        ..newest_first.clone()
    };
    assert!(source.select_logs(&deeper).await.is_err());
    // With concurrent scans too, a limited read opens no file speculatively before it knows
    // its cut-off.
    let concurrent = Storage::open(&cfg(64, 8, 4), dir.path()).await.unwrap().log_scan();
    assert_eq!(
        concurrent.select_logs(&newest_first).await.unwrap(),
        reference(&records, &newest_first)
    );
    assert_eq!(concurrent.counters().files_opened, 1);
    // Time and cluster prune files by key, regexes included.
    let last_hour = LogRequest {
        matchers: vec![Matcher::new(MatchOp::RegexMatch, "cluster", "c|d").unwrap()],
        ..request(vec![], T0 + 5 * HOUR_NS, T0 + 6 * HOUR_NS)
    };
    assert_eq!(source.select_logs(&last_hour).await.unwrap().len(), 50);
    let other_cluster = request(
        vec![Matcher::new(MatchOp::NotEqual, "cluster", "c").unwrap()],
        i64::MIN,
        i64::MAX,
    );
    assert!(source.select_logs(&other_cluster).await.unwrap().is_empty());
    assert!(source.log_streams(&other_cluster).await.unwrap().is_empty());
}

/// One file, one stream, 512 records 1 ms apart in row groups of 64 and pages of 8.
#[tokio::test]
async fn time_prunes_row_groups_and_hints_filter_rows_before_records_are_built() {
    let (_dir, storage) = open(&cfg(64, 8, 2)).await;
    let records: Vec<LogRecord> = (0..512).map(line).collect();
    storage.write_logs(&records).await.unwrap();
    let source = storage.log_scan();

    // Records 100..110: row group 1, two pages.
    let window = request(
        vec![Matcher::equal("cluster", "c")],
        T0 + 100 * 1_000_000,
        T0 + 110 * 1_000_000,
    );
    assert_eq!(source.select_logs(&window).await.unwrap(), reference(&records, &window));
    let c = source.counters();
    assert_eq!(
        (c.files_opened, c.row_groups, c.rows_planned, c.records_built),
        (1, 1, 16, 10)
    );

    // A hint: every row is scanned, only the 51 hits are built.
    let hinted = LogRequest {
        line_hints: vec![LineHint::Contains("timeout".into())],
        ..request(vec![Matcher::equal("service_name", "s")], i64::MIN, i64::MAX)
    };
    let got = source.select_logs(&hinted).await.unwrap();
    assert_eq!(got.len(), 51);
    assert_eq!(got, reference(&records, &hinted));
    let d = source.counters();
    assert_eq!(
        (d.row_groups - c.row_groups, d.records_built - c.records_built),
        (8, 51)
    );

    // A stream matcher no stream passes builds nothing; `service_name` statistics skip it all.
    let none = request(
        vec![Matcher::new(MatchOp::RegexMatch, "service_name", "x.*").unwrap()],
        i64::MIN,
        i64::MAX,
    );
    assert!(source.select_logs(&none).await.unwrap().is_empty());
    let e = source.counters();
    assert_eq!(e.records_built, d.records_built);
    let pinned = request(vec![Matcher::equal("service_name", "t")], i64::MIN, i64::MAX);
    assert!(source.select_logs(&pinned).await.unwrap().is_empty());
    assert_eq!(
        source.counters().row_groups,
        e.row_groups,
        "no row group can hold service_name=t"
    );
}

/// A needle in one line of 2,048 reads only its row group; the answer is the reference's,
/// with the index or without it (files written with `log_line_index` off are read in full).
#[tokio::test]
async fn the_line_index_reads_only_row_groups_that_can_hold_a_rare_needle() {
    let records: Vec<LogRecord> = (0..2048)
        .map(|i| LogRecord {
            body: format!(
                "GET /item/{i} request_id={:016x} rt=0.{:03}",
                (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                i % 1000
            ),
            ..line(i)
        })
        .collect();
    let needle = format!("{:016x}", 1234u64.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let inner = needle[3..13].to_string();
    for index in [true, false] {
        let (_dir, storage) = open(&StorageConfig {
            log_line_index: index,
            ..cfg(256, 64, 2)
        })
        .await;
        storage.write_logs(&records).await.unwrap();
        let source = storage.log_scan();
        for (hint, limit) in [
            (&needle, None),
            (&inner, Some(100)),
            (&"request_id=00c0ffee00c0ffee".to_string(), None),
        ] {
            let before = source.counters();
            let req = LogRequest {
                line_hints: vec![LineHint::Contains(hint.clone())],
                limit,
                ..request(vec![Matcher::equal("cluster", "c")], i64::MIN, i64::MAX)
            };
            let got = source.select_logs(&req).await.unwrap();
            assert_eq!(got, reference(&records, &req), "{hint}");
            let c = source.counters();
            let (read, skipped) = (
                c.row_groups - before.row_groups,
                c.row_groups_skipped_by_index - before.row_groups_skipped_by_index,
            );
            let want_read = usize::from(!got.is_empty()) as u64;
            match index {
                true => assert_eq!((read, skipped), (want_read, 8 - want_read), "{hint}"),
                false => assert_eq!((read, skipped), (8, 0), "{hint}"),
            }
        }
        assert_eq!(
            source
                .select_logs(&LogRequest {
                    line_hints: vec![LineHint::Contains(needle.clone())],
                    ..request(vec![Matcher::equal("cluster", "c")], i64::MIN, i64::MAX)
                })
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn listings_come_from_the_stream_columns_and_the_catalog() {
    let (_dir, storage) = open(&cfg(64, 8, 2)).await;
    let mk = |pairs: &[(&str, &str)], h: i64| LogRecord {
        labels: Labels::from_pairs(pairs).into(),
        timestamp: T0 + h * HOUR_NS,
        body: "x".into(),
        ..LogRecord::default()
    };
    let records = vec![
        mk(&[("cluster", "a"), ("service_name", "s1"), ("k8s_pod_name", "p")], 0),
        mk(&[("cluster", "b"), ("service_name", "s2")], 0),
        mk(&[("service_name", "s3")], 1),
        mk(&[("cluster", "a"), ("service_name", "s4")], 2),
    ];
    storage.write_logs(&records).await.unwrap();
    let source = storage.log_source();
    let first_two_hours = request(
        vec![Matcher::new(MatchOp::RegexMatch, "service_name", ".+").unwrap()],
        T0,
        T0 + 2 * HOUR_NS,
    );
    let streams = source.log_streams(&first_two_hours).await.unwrap();
    assert_eq!(
        streams,
        vec![
            Labels::clone(&records[0].labels),
            Labels::clone(&records[1].labels),
            Labels::clone(&records[2].labels)
        ]
    );
    assert_eq!(
        source.log_label_names(&first_two_hours).await.unwrap(),
        ["cluster", "k8s_pod_name", "service_name"]
    );
    assert_eq!(
        source.log_label_values("service_name", &first_two_hours).await.unwrap(),
        ["s1", "s2", "s3"]
    );
    // `cluster` values from file keys alone; the no-cluster file adds no value.
    let by_cluster = request(
        vec![Matcher::new(MatchOp::NotEqual, "cluster", "b").unwrap()],
        T0,
        T0 + 3 * HOUR_NS,
    );
    assert_eq!(source.log_label_values("cluster", &by_cluster).await.unwrap(), ["a"]);
    let empty = request(vec![], T0, T0);
    assert!(source.log_label_values("cluster", &empty).await.unwrap().is_empty());
    assert!(source.log_streams(&empty).await.unwrap().is_empty());
}

#[tokio::test]
async fn unlimited_reads_keep_the_record_guard_and_limited_ones_do_not_need_it() {
    let cfg = StorageConfig {
        max_select_samples: 100,
        ..cfg(64, 8, 2)
    };
    let (_dir, storage) = open(&cfg).await;
    let records: Vec<LogRecord> = (0..300).map(line).collect();
    storage.write_logs(&records).await.unwrap();
    let source = storage.log_source();
    let all = request(vec![Matcher::equal("cluster", "c")], i64::MIN, i64::MAX);
    let err = source.select_logs(&all).await.unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 100 }), "{err}");
    let limited = LogRequest {
        limit: Some(150),
        ..all
    };
    assert_eq!(
        source.select_logs(&limited).await.unwrap(),
        reference(&records, &limited)
    );
}

fn record_strategy() -> impl Strategy<Value = LogRecord> {
    let cluster = prop_oneof![Just(""), Just("prod-a"), Just("prod-b"), Just("dev")];
    let service = prop_oneof![Just(""), Just("checkout"), Just("cart")];
    let pod = prop_oneof![Just(""), Just("p-1"), Just("p-2")];
    // Three hours and a bit, on a coarse grid so that equal timestamps (ties) happen, plus
    // nanosecond offsets right at the millisecond edges of file keys.
    let ts = (0i64..36, prop_oneof![Just(0i64), Just(999_999), Just(1)])
        .prop_map(|(k, off)| T0 - HOUR_NS / 2 + k * (HOUR_NS / 10) + off);
    let body = prop_oneof![
        Just("GET /api 200"),
        Just("upstream timeout after 30s"),
        Just("error: timeout"),
        Just("time out"),
        Just(""),
        Just("ünïcode ✓ timeout"),
        Just("request_id=00c0ffee00c0ffee done"),
        Just("request_id=7f3a9c2e01ab done"),
    ];
    (cluster, service, pod, ts, body, 0i32..3).prop_map(|(c, s, p, ts, body, sev)| LogRecord {
        labels: Labels::from_pairs(&[("cluster", c), ("service_name", s), ("k8s_pod_name", p)]).into(),
        timestamp: ts,
        severity_number: sev,
        body: body.into(),
        attributes: format!(r#"{{"sev":{sev}}}"#),
        ..LogRecord::default()
    })
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let name = prop_oneof![
        Just("cluster"),
        Just("service_name"),
        Just("k8s_pod_name"),
        Just("nope")
    ];
    let value = prop_oneof![
        Just(""),
        Just("prod-a"),
        Just("prod-.*"),
        Just("checkout"),
        Just("p-1"),
        Just(".+"),
        Just("cart|dev")
    ];
    let op = prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::RegexMatch),
        Just(MatchOp::RegexNoMatch)
    ];
    (name, op, value).prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap())
}

fn request_strategy() -> impl Strategy<Value = LogRequest> {
    // On the records' grid, so that range ends fall on, just before and just after records.
    let edge = (
        0i64..37,
        prop_oneof![Just(0i64), Just(1), Just(2), Just(-1), Just(999_999), Just(1_000_000)],
    )
        .prop_map(|(k, off)| T0 - HOUR_NS / 2 + k * (HOUR_NS / 10) + off);
    let hint = prop_oneof![
        Just(LineHint::Contains("timeout".into())),
        Just(LineHint::NotContains("timeout".into())),
        Just(LineHint::Contains("t".into())),
        Just(LineHint::Contains("✓".into())),
        Just(LineHint::Contains(String::new())),
        Just(LineHint::NotContains("GET".into())),
        // Needles the line index can test (a word piece of 8 bytes or more): held inside a
        // longer word, held whole, across words, in no line.
        Just(LineHint::Contains("upstream".into())),
        Just(LineHint::Contains("ünïcode".into())),
        Just(LineHint::Contains("7f3a9c2e".into())),
        Just(LineHint::Contains("id=00c0ffee00c0ffee d".into())),
        Just(LineHint::Contains("0c0ffee00c0ffee01".into())),
    ];
    let limit = prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(1)),
        Just(Some(2)),
        Just(Some(3)),
        Just(Some(17))
    ];
    let direction = prop_oneof![Just(Direction::Backward), Just(Direction::Forward)];
    (
        prop_oneof![
            Just(vec![Matcher::new(MatchOp::RegexMatch, "cluster", ".*").unwrap()]),
            proptest::collection::vec(matcher_strategy(), 1..3),
        ],
        prop_oneof![Just((i64::MIN, i64::MAX)), (edge.clone(), edge)],
        proptest::collection::vec(hint, 0..3),
        direction,
        limit,
    )
        .prop_map(|(matchers, (a, b), line_hints, direction, limit)| LogRequest {
            matchers,
            start: a.min(b),
            end: a.max(b),
            line_hints,
            direction,
            limit,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Records written in up to three flushes (so one cluster-hour has several files, and a
    /// repeated flush stores duplicates), read with random requests and configurations.
    #[test]
    fn parquet_log_source_agrees_with_the_reference(
        records in proptest::collection::vec(record_strategy(), 0..120),
        flushes in 1usize..4,
        repeat_first in any::<bool>(),
        layout in prop_oneof![Just((16usize, 4usize)), Just((64, 8)), Just((1 << 20, 65_536))],
        concurrency in prop_oneof![Just(1usize), Just(3)],
        requests in proptest::collection::vec(request_strategy(), 1..6),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        let results = rt.block_on(async {
            let (_dir, storage) = open(&cfg(layout.0, layout.1, concurrency)).await;
            let chunk = records.len().div_ceil(flushes).max(1);
            for part in records.chunks(chunk) {
                storage.write_logs(part).await.unwrap();
            }
            if repeat_first && !records.is_empty() {
                storage.write_logs(&records[..chunk.min(records.len())]).await.unwrap();
            }
            let source = storage.log_source();
            let mut out = Vec::new();
            for req in &requests {
                let got = source.select_logs(req).await.unwrap();
                let streams = source.log_streams(req).await.unwrap();
                let services = source.log_label_values("service_name", req).await.unwrap();
                let clusters = source.log_label_values("cluster", req).await.unwrap();
                out.push((got, streams, services, clusters));
            }
            out
        });
        for (req, (got, streams, services, clusters)) in requests.iter().zip(results) {
            prop_assert_eq!(&got, &reference(&records, req), "{:?}", req);
            // Listings may be coarse in time (whole pages) but never leave a stream out, and
            // never list a stream the matchers reject.
            let in_range = LogRequest { line_hints: vec![], limit: None, ..req.clone() };
            let mut want: Vec<Labels> = reference(&records, &in_range).into_iter().map(|r| Labels::clone(&r.labels)).collect();
            want.sort();
            want.dedup();
            for l in &want {
                prop_assert!(streams.contains(l), "missing stream {:?} for {:?}", l, req);
                if let Some(s) = l.get("service_name") {
                    prop_assert!(services.iter().any(|v| v == s));
                }
                if let Some(c) = l.get("cluster") {
                    prop_assert!(clusters.iter().any(|v| v == c));
                }
            }
            for l in &streams {
                prop_assert!(matches_all(&req.matchers, l), "{:?} listed for {:?}", l, req);
            }
        }
    }
}

fn hits(lines: &[&str], needle: &str) -> Vec<bool> {
    let a = StringArray::from(lines.to_vec());
    let re = Regex::new(&regex::escape(needle)).unwrap();
    let mut out = vec![false; a.len()];
    contains_rows(&a, &re, &mut out);
    out
}

#[test]
fn buffer_search_maps_hits_to_rows_and_ignores_hits_across_rows() {
    assert_eq!(hits(&["ab", "cd", "abcd"], "bc"), [false, false, true]);
    assert_eq!(
        hits(&["xtime", "out", "timeout", "", "timeouttimeout"], "timeout"),
        [false, false, true, false, true]
    );
    assert_eq!(hits(&["aaa", "aa", "a"], "aa"), [true, true, false]);
    assert_eq!(hits(&["é✓", "✓"], "✓"), [true, true]);
    assert_eq!(hits(&[], "x"), Vec::<bool>::new());
    // A sliced array keeps its offsets into the shared buffer.
    let a = StringArray::from(vec!["x1", "no", "x2", "nox"]);
    let s = a.slice(1, 3);
    let mut out = vec![false; 3];
    contains_rows(&s, &Regex::new("x").unwrap(), &mut out);
    assert_eq!(out, [false, true, true]);
}

#[test]
fn topk_keeps_the_best_distinct_records_and_knows_its_cut() {
    let r = |ts: i64, body: &str| LogRecord {
        timestamp: ts,
        body: body.into(),
        ..LogRecord::default()
    };
    let mut top = TopK::new(Direction::Backward, Some(2));
    top.extend(vec![r(1, "a"), r(3, "a"), r(3, "a"), r(2, "a")]);
    assert_eq!(top.cut(), Some(2), "duplicates do not count towards the limit");
    assert!(top.admits(2) && !top.admits(1));
    assert_eq!(top.finish(), vec![r(3, "a"), r(2, "a")]);
    let mut top = TopK::new(Direction::Forward, None);
    top.extend(vec![r(2, "b"), r(1, "a"), r(2, "a"), r(2, "b")]);
    assert_eq!(top.cut(), None);
    assert_eq!(top.finish(), vec![r(1, "a"), r(2, "a"), r(2, "b")]);
}

#[test]
fn empty_hints_keep_everything_or_nothing() {
    assert!(Hints::compile(&[LineHint::Contains(String::new())]).is_some_and(|h| h.needles.is_empty()));
    assert!(Hints::compile(&[LineHint::NotContains(String::new())]).is_none());
    let h = Hints::compile(&[LineHint::Contains("a.b(".into())]).unwrap();
    assert!(h.needles[0].0.is_match(b"xa.b(") && !h.needles[0].0.is_match(b"axb("));
}

/// The Parquet logs table passes the `LogSource` conformance suite, with each dataset written
/// in three flushes (so copies of a record sit in different files) through small row groups
/// and pages (so pruning and the limit cut-off are exercised).
#[tokio::test]
async fn parquet_logs_pass_the_log_source_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    crate::test_util::log_source_conformance(|records| {
        let dirs = dirs.clone();
        async move {
            let (dir, storage) = open(&cfg(4, 2, 2)).await;
            let third = records.len().div_ceil(3).max(1);
            for part in records.chunks(third) {
                storage.write_logs(part).await.unwrap();
            }
            dirs.lock().push(dir);
            storage.log_source()
        }
    })
    .await;
}
