use std::sync::Arc;

use super::*;
use crate::read::{Direction, LogRequest, volume_of_records};
use crate::signals::LogRecord;
use crate::table::ParquetTable;
use crate::table::logs::Logs;
use crate::types::{Labels, Matcher};
use crate::{Storage, StorageConfig};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;
const S: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * S;

fn rec(cluster: &str, app: &str, ts: i64, body: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(&[("cluster", cluster), ("app", app)]).into(),
        timestamp: ts,
        body: body.into(),
        attributes: "{}".into(),
        resource_attributes: "{}".into(),
        ..LogRecord::default()
    }
}

/// Three streams in two clusters over two hours, bodies of varying length, no copies.
fn records() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for i in 0..2_000i64 {
        let (cluster, app) = [("eu", "api"), ("eu", "db"), ("us", "api")][(i % 3) as usize];
        out.push(rec(
            cluster,
            app,
            T0 + i * 3_700_000_000,
            &"x".repeat((i % 17) as usize + 1),
        ));
    }
    out
}

fn logs(matchers: Vec<Matcher>, start: i64, end: i64) -> LogRequest {
    LogRequest {
        matchers,
        start,
        end,
        line_hints: Vec::new(),
        direction: Direction::Forward,
        limit: None,
    }
}

async fn open() -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    (dir, storage)
}

#[tokio::test]
async fn volumes_from_summaries_equal_counting_the_records_on_minute_edges() {
    let (_dir, storage) = open().await;
    let all = records();
    // Two writes: every hour and cluster has two files to add up.
    storage.write_logs(&all[..900]).await.unwrap();
    storage.write_logs(&all[900..]).await.unwrap();
    let source = storage.log_source();
    let in_range = |req: &VolumeRequest| {
        let want: Vec<&LogRecord> = all
            .iter()
            .filter(|r| {
                req.logs.start <= r.timestamp
                    && r.timestamp < req.logs.end
                    && crate::types::matches_all(&req.logs.matchers, &r.labels)
            })
            .collect();
        volume_of_records(req, want)
    };
    let cases = [
        VolumeRequest::whole(logs(vec![], T0, T0 + 3 * 3600 * S)),
        VolumeRequest {
            logs: logs(vec![Matcher::equal("cluster", "eu")], T0 + 7 * MINUTE, T0 + 95 * MINUTE),
            origin: T0,
            step: 10 * MINUTE,
        },
        VolumeRequest {
            logs: logs(vec![Matcher::equal("app", "api")], T0 + 30 * MINUTE, T0 + 40 * MINUTE),
            origin: T0 + 30 * MINUTE,
            step: MINUTE,
        },
    ];
    for req in &cases {
        let got = source.log_volume(req).await.unwrap();
        assert!(!got.is_empty());
        assert_eq!(got, in_range(req), "{req:?}");
    }
}

#[tokio::test]
async fn a_summary_bucket_partly_in_range_adds_the_share_of_its_time_inside() {
    let (_dir, storage) = open().await;
    // One record a second through one whole minute, 10 bytes each.
    let minute: Vec<LogRecord> = (0..60).map(|i| rec("eu", "api", T0 + i * S, "0123456789")).collect();
    storage.write_logs(&minute).await.unwrap();
    let source = storage.log_source();
    // The second half of the minute: the summary knows only the minute, so half of it.
    let req = VolumeRequest::whole(logs(vec![], T0 + 30 * S, T0 + 60 * S));
    let got = source.log_volume(&req).await.unwrap();
    assert_eq!(got.len(), 1);
    let b = got[0].buckets[0];
    // The file spans [T0, T0 + 59 s]: 30 of its 59 seconds (and a millisecond) are inside.
    assert!((29..=31).contains(&b.lines) && (290..=310).contains(&b.bytes), "{b:?}");
    // 15-second buckets over the minute split it evenly.
    let req = VolumeRequest {
        logs: logs(vec![], T0, T0 + MINUTE),
        origin: T0,
        step: 15 * S,
    };
    let got = source.log_volume(&req).await.unwrap();
    let lines: Vec<u64> = got[0].buckets.iter().map(|b| b.lines).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| (14..=16).contains(l)), "{lines:?}");
}

#[test]
fn many_streams_coarsen_the_buckets_to_bound_the_footer() {
    // 400 streams over a whole hour: 24,000 (stream, minute) pairs, more than the bound (and
    // 4,800 five-minute pairs, within it).
    let mut input = Vec::new();
    for s in 0..400 {
        for m in 0..60 {
            input.push(rec("eu", &format!("app{s:03}"), T0 + m * MINUTE + s, "line"));
        }
    }
    let plan = Logs::plan(&input).unwrap();
    let (_, batch) = crate::table::FilePlan::encode(&plan, 0).unwrap();
    let summary = Summary::of(&batch, "test").unwrap();
    assert_eq!(summary.bucket_s, 300);
    assert!(summary.entries() <= MAX_ENTRIES);
    assert_eq!(summary.streams.len(), 400);
    let (lines, bytes) = summary
        .streams
        .iter()
        .flat_map(|s| &s.2)
        .fold((0, 0), |(l, b), e| (l + e.1, b + e.2));
    assert_eq!((lines, bytes), (24_000, 24_000 * 4), "coarsening keeps every record");
}
