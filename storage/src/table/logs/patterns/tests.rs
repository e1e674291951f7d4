use std::sync::Arc;

use super::*;
use crate::read::{Direction, LogRequest, Patterns, record_level};
use crate::signals::LogRecord;
use crate::table::ParquetTable;
use crate::table::logs::Logs;
use crate::types::{Labels, Matcher};
use crate::{Storage, StorageConfig};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;
const S: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * S;

fn rec(cluster: &str, app: &str, ts: i64, level: &str, body: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(&[("cluster", cluster), ("app", app)]).into(),
        timestamp: ts,
        body: body.into(),
        attributes: format!(r#"{{"detected_level":"{level}"}}"#),
        resource_attributes: "{}".into(),
        ..LogRecord::default()
    }
}

/// Three streams in two clusters over two hours, three line templates (their varying parts
/// hold digits, so Drain finds each template however the lines are split up), two levels.
fn records() -> Vec<LogRecord> {
    (0..3_000i64)
        .map(|i| {
            let (cluster, app) = [("eu", "api"), ("eu", "db"), ("us", "api")][(i % 3) as usize];
            let (level, body) = match i % 4 {
                0 => (
                    "error",
                    format!("upstream 10.0.{}.{} timed out after {}ms", i % 7, i % 200, i),
                ),
                1 | 2 => ("info", format!("GET /api/v1/items/{i} 200 took {}ms", i % 90)),
                _ => ("info", format!("user u{i} logged in from session s{}", i * 7)),
            };
            rec(cluster, app, T0 + i * 2_300_000_000, level, &body)
        })
        .collect()
}

fn request(matchers: Vec<Matcher>, start: i64, end: i64, step: i64) -> PatternRequest {
    PatternRequest {
        logs: LogRequest {
            matchers,
            start,
            end,
            line_hints: Vec::new(),
            direction: Direction::Backward,
            limit: None,
        },
        step,
        max_lines: usize::MAX,
    }
}

/// What clustering the matching records themselves gives.
fn clustered(all: &[LogRecord], req: &PatternRequest) -> Patterns {
    let mut sum = PatternSum::default();
    for r in all.iter().rev() {
        if req.logs.start <= r.timestamp
            && r.timestamp < req.logs.end
            && crate::types::matches_all(&req.logs.matchers, &r.labels)
        {
            sum.add_line(record_level(r), &r.body, req.bucket_of(r.timestamp));
        }
    }
    sum.finish()
}

async fn open() -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    (dir, storage)
}

#[tokio::test]
async fn patterns_from_summaries_equal_clustering_the_records_on_minute_edges() {
    let (_dir, storage) = open().await;
    let all = records();
    // Two writes: every hour and cluster has two files, each clustered on its own.
    storage.write_logs(&all[..1_100]).await.unwrap();
    storage.write_logs(&all[1_100..]).await.unwrap();
    let source = storage.log_source();
    let cases = [
        request(vec![], T0, T0 + 3 * 3600 * S, 3600 * S),
        request(
            vec![Matcher::equal("cluster", "eu")],
            T0 + 7 * MINUTE,
            T0 + 95 * MINUTE,
            10 * MINUTE,
        ),
        request(
            vec![Matcher::equal("app", "api")],
            T0 + 30 * MINUTE,
            T0 + 40 * MINUTE,
            MINUTE,
        ),
    ];
    for req in &cases {
        let got = source.log_patterns(req).await.unwrap();
        let want = clustered(&all, req);
        assert_eq!(want.series.len(), 3, "{want:?}");
        assert_eq!(got, want, "{req:?}");
    }
    let got = source.log_patterns(&cases[0]).await.unwrap();
    let texts: Vec<(&str, &str)> = got
        .series
        .iter()
        .map(|s| (s.level.as_str(), s.pattern.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("error", "upstream <_> timed out after <_>"),
            ("info", "GET <_> 200 took <_>"),
            ("info", "user <_> logged in from session <_>"),
        ]
    );
    assert_eq!(got.series.iter().map(|s| s.total()).sum::<u64>(), 3_000);
}

#[tokio::test]
async fn a_summary_minute_is_spread_over_finer_steps_and_prorated_at_the_range_edges() {
    let (_dir, storage) = open().await;
    // One line a second through one whole minute.
    let minute: Vec<LogRecord> = (0..60)
        .map(|i| rec("eu", "api", T0 + i * S, "info", &format!("job {i} done in {i}ms")))
        .collect();
    storage.write_logs(&minute).await.unwrap();
    let source = storage.log_source();
    // 10-second steps: the minute's 60 lines, 10 in each (the file spans 59 s and a
    // millisecond of the minute, so a step holds 9 to 11).
    let got = source
        .log_patterns(&request(vec![], T0, T0 + MINUTE, 10 * S))
        .await
        .unwrap();
    assert_eq!(got.series.len(), 1);
    let s = &got.series[0];
    assert_eq!(s.pattern, "job <_> done in <_>");
    assert_eq!(s.total(), 60, "{s:?}");
    assert_eq!(s.samples.len(), 6);
    assert!(s.samples.iter().all(|(_, n)| (9..=11).contains(n)), "{s:?}");
    // The second half of the minute: about half of it.
    let got = source
        .log_patterns(&request(vec![], T0 + 30 * S, T0 + MINUTE, MINUTE))
        .await
        .unwrap();
    let n = got.series[0].total();
    assert!((29..=31).contains(&n), "{n}");
}

#[test]
fn many_patterns_coarsen_then_keep_the_largest_to_bound_the_footer() {
    // 500 streams over a whole hour with a pattern each (one line a minute), and a few
    // one-line patterns of their own shape: 30,000 (pattern, minute) pairs coarsen to 6,000
    // five-minute pairs.
    let mut input = Vec::new();
    for s in 0..500 {
        for m in 0..60 {
            input.push(rec(
                "eu",
                &format!("app{s:03}"),
                T0 + m * MINUTE + s,
                "info",
                &format!("tick {m} of stream {s}"),
            ));
        }
    }
    let plan = Logs::plan(&input).unwrap();
    let (_, batch) = crate::table::FilePlan::encode(&plan, 0).unwrap();
    let summary = Summary::of(&batch, "test").unwrap();
    assert_eq!(summary.bucket_s, 300);
    assert!(summary.entries() <= MAX_ENTRIES);
    let lines: u64 = summary
        .streams
        .iter()
        .flat_map(|s| &s.2)
        .flat_map(|p| &p.2)
        .map(|b| b.1)
        .sum();
    assert_eq!(lines, 30_000, "coarsening keeps every line");

    // Past the bound even in hourly buckets: the patterns with the most lines are kept.
    let mut summary = Summary {
        format: FORMAT,
        bucket_s: 3600,
        streams: (0..MAX_ENTRIES + 10)
            .map(|i| {
                let lines = if i < 5 { 1_000 } else { 1 };
                (
                    "eu".into(),
                    "{}".into(),
                    vec![("info".into(), format!("p{i} a b c"), vec![(0, lines)])],
                )
            })
            .collect(),
    };
    summary.bound();
    assert!(summary.entries() <= MAX_ENTRIES);
    let big = summary
        .streams
        .iter()
        .flat_map(|s| &s.2)
        .filter(|p| p.2[0].1 == 1_000)
        .count();
    assert_eq!(big, 5, "the largest patterns are kept");
}

#[test]
fn the_summary_groups_lines_by_level_per_stream() {
    let input = vec![
        rec("eu", "api", T0, "error", "disk 1 is full on node n1"),
        rec("eu", "api", T0 + S, "error", "disk 2 is full on node n2"),
        rec("eu", "api", T0 + 2 * S, "info", "disk 3 is full on node n3"),
        rec("eu", "db", T0 + 3 * S, "warning", "disk 4 is full on node n4"),
        rec("eu", "db", T0 + 4 * S, "error", "too short"),
    ];
    let plan = Logs::plan(&input).unwrap();
    let (_, batch) = crate::table::FilePlan::encode(&plan, 0).unwrap();
    let summary = Summary::of(&batch, "test").unwrap();
    let minute = T0 / MINUTE;
    assert_eq!(
        summary.streams,
        [
            (
                "eu".to_string(),
                r#"{"app":"api"}"#.to_string(),
                vec![
                    ("error".into(), "disk <_> is full on node <_>".into(), vec![(minute, 2)]),
                    ("info".into(), "disk 3 is full on node n3".into(), vec![(minute, 1)]),
                ]
            ),
            (
                "eu".to_string(),
                r#"{"app":"db"}"#.to_string(),
                // "warning" is Loki's "warn"; a line of 2 tokens is in no pattern.
                vec![("warn".into(), "disk 4 is full on node n4".into(), vec![(minute, 1)])]
            ),
        ]
    );
}
