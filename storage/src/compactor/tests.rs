use super::*;
use crate::read::SelectRequest;
use crate::signals::LogRecord;
use crate::test_util::{histogram_source_conformance, log_source_conformance, source_conformance};
use crate::types::{Labels, Matcher, Sample, Series};
use std::time::Duration;

/// Every file settles at once and garbage is deleted at once: what tests need.
fn eager() -> StorageConfig {
    let mut cfg = StorageConfig {
        row_group_rows: 700,
        page_rows: 64,
        ..StorageConfig::default()
    };
    cfg.compaction.settle = Duration::ZERO;
    cfg.compaction.deletion_delay = Duration::ZERO;
    cfg.compaction.orphan_age = Duration::ZERO;
    cfg
}

async fn compact(storage: &Arc<Storage>, cfg: &StorageConfig) -> CompactionReport {
    let c = Compactor::new(storage.clone(), cfg, "test".into()).unwrap();
    let report = c.run_once(false).await.unwrap();
    assert!(report.ran && report.failures.is_empty(), "{report:?}");
    report
}

/// Ten hours (2023-11-14 22:00 → 2023-11-15 07:00 UTC): two days, several hours each.
const T0: i64 = 1_700_000_000_000;

fn series(cluster: &str, name: &str, start: i64, n: i64, value: f64) -> Series {
    Series::new(
        Labels::from_pairs(&[("__name__", name), ("cluster", cluster)]),
        (0..n)
            .map(|i| Sample::new(start + i * 600_000, value + i as f64))
            .collect(),
    )
}

fn live_keys(storage: &Storage, table: Table) -> Vec<FileKey> {
    storage
        .catalog(table)
        .files(table, TimeRange::ALL, |_| true)
        .iter()
        .map(|f| f.key.clone())
        .collect()
}

#[tokio::test]
async fn a_settled_day_becomes_one_file_per_cluster_with_duplicates_collapsed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    for round in 0..3 {
        // Overlapping flushes: round 2 rewrites round 1's samples with new values.
        let v = if round == 2 { 100.0 } else { 0.0 };
        storage
            .write_metrics(&[
                series("eu", "up", T0, 60, v),
                series("us", "up", T0 + round * 1_000, 30, v),
            ])
            .await
            .unwrap();
    }
    let before = storage.stats();
    assert!(before.files > 10, "{before:?}");
    let report = compact(&storage, &cfg).await;
    assert_eq!(report.files_in, before.files);
    let keys = live_keys(&storage, Table::Metrics);
    let per_day: HashSet<(String, i64)> = keys.iter().map(|k| (k.cluster.clone(), k.hour.day_start().0)).collect();
    assert_eq!(keys.len(), per_day.len(), "one file per cluster and day: {keys:?}");
    assert!(
        keys.iter()
            .all(|k| k.span == Span::Day || k.min_ts / HOUR_MS == k.max_ts / HOUR_MS)
    );
    // eu: 60 distinct samples; us: three shifted copies of 30 timestamps.
    assert_eq!(storage.stats().rows, 60 + 90, "identical series+timestamp rows are one");
    assert_eq!(report.rows_in - report.rows_out, 60 + 30 * 3 + 60 * 2 - 150);
    let got = storage
        .source()
        .select(&SelectRequest::new(
            vec![Matcher::equal("cluster", "eu")],
            TimeRange::ALL,
        ))
        .await
        .unwrap();
    assert_eq!(got[0].samples[0].value, 100.0, "the later file's value won");
    assert_eq!(got[0].samples.len(), 60);

    // Inputs were deleted (deletion delay 0) and the manifest forgot them.
    let objects = list_parquet(&storage).await;
    assert_eq!(objects.len(), keys.len(), "{objects:?}");
    assert!(storage.manifest.current().removed.is_empty());
    // A second round finds nothing to do.
    let again = compact(&storage, &cfg).await;
    assert_eq!(again.merges, 0, "{again:?}");
}

/// Every object under the raw tables' prefixes (rollup tables apart).
async fn list_parquet(storage: &Storage) -> Vec<String> {
    let mut out = Vec::new();
    for t in Table::ALL
        .into_iter()
        .filter(|t| !matches!(t, Table::Metrics5m | Table::Metrics1h | Table::Metrics1d))
    {
        let objects: Vec<_> = storage.io.store.list(Some(&t.prefix())).try_collect().await.unwrap();
        out.extend(objects.into_iter().map(|o| o.location.to_string()));
    }
    out
}

#[tokio::test]
async fn an_unsettled_day_merges_settled_hours_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = eager();
    cfg.compaction.settle = Duration::from_secs(600);
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    let now = now_ms();
    let this_hour = Hour::of(now).start_ms();
    let last_hour = this_hour - HOUR_MS;
    for _ in 0..2 {
        storage
            .write_metrics(&[
                series("eu", "a", last_hour, 3, 1.0),
                series("eu", "b", this_hour, 1, 1.0),
            ])
            .await
            .unwrap();
    }
    let report = compact(&storage, &cfg).await;
    let today = Hour::of(now).day_start() == Hour::of(last_hour).day_start();
    let last_hour_settled = last_hour + HOUR_MS - 1 + 600_000 < now;
    let keys = live_keys(&storage, Table::Metrics);
    if today && last_hour_settled {
        assert_eq!(report.merges, 1, "{report:?}");
        assert_eq!(keys.iter().filter(|k| k.hour.start_ms() == last_hour).count(), 1);
    }
    assert_eq!(
        keys.iter().filter(|k| k.hour.start_ms() == this_hour).count(),
        2,
        "the current hour is not settled: {keys:?}"
    );
    // Forced, the whole (current) day becomes one file.
    let c = Compactor::new(storage.clone(), &cfg, "test".into()).unwrap();
    let forced = c.run_once(true).await.unwrap();
    assert!(forced.failures.is_empty(), "{forced:?}");
    assert_eq!(live_keys(&storage, Table::Metrics).len(), if today { 1 } else { 2 });
}

#[tokio::test]
async fn retention_drops_whole_files_and_old_queries_answer_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = eager();
    cfg.retention.rules.push(crate::config::RetentionRule {
        clusters: "dev-*".into(),
        table: None,
        keep: Duration::from_secs(86_400),
    });
    cfg.retention.tables.insert("logs".into(), Duration::from_secs(3_600));
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    // Noon of the day three days ago: prod-1's two old samples never straddle a day (a run just
    // after midnight put them in two day files).
    let old = (now_ms() - 3 * 86_400_000).div_euclid(86_400_000) * 86_400_000 + 43_200_000;
    let recent = now_ms() - 60_000;
    storage
        .write_metrics(&[
            series("dev-1", "up", old, 1, 1.0),
            series("prod-1", "up", old, 2, 1.0),
            series("dev-1", "up", recent, 1, 1.0),
        ])
        .await
        .unwrap();
    let log = |ts_ms: i64| LogRecord {
        labels: Labels::from_pairs(&[("cluster", "prod-1")]).into(),
        timestamp: ts_ms * 1_000_000,
        body: "hello".into(),
        ..LogRecord::default()
    };
    storage.write_logs(&[log(old), log(recent)]).await.unwrap();
    let report = compact(&storage, &cfg).await;
    // dev-1's one old sample and the old log line: one file each (prod-1's two old samples,
    // kept, may straddle an hour).
    assert_eq!(report.expired_files, 2, "{report:?}");
    let src = storage.source();
    let at_old = SelectRequest::new(
        vec![Matcher::equal("__name__", "up")],
        TimeRange::new(old, old + 600_000),
    );
    let got = src.select(&at_old).await.unwrap();
    assert_eq!(got.len(), 1, "prod keeps its old data, dev's is gone: {got:?}");
    assert_eq!(got[0].labels.get("cluster"), Some("prod-1"));
    let at_recent = SelectRequest::new(vec![Matcher::equal("cluster", "dev-1")], TimeRange::new(recent, recent));
    assert_eq!(src.select(&at_recent).await.unwrap().len(), 1, "recent dev data stays");
    assert_eq!(storage.logs_stats().rows, 1, "logs older than an hour are gone");
    assert_eq!(list_parquet(&storage).await.len(), 3, "expired files are deleted");
}

#[tokio::test]
async fn a_merge_whose_inputs_are_gone_conflicts_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    for _ in 0..2 {
        storage.write_metrics(&[series("eu", "up", T0, 2, 1.0)]).await.unwrap();
    }
    let inputs = storage
        .catalog(Table::Metrics)
        .files(Table::Metrics, TimeRange::ALL, |_| true);
    let c = Compactor::new(storage.clone(), &cfg, "a".into()).unwrap();
    let mut report = CompactionReport::default();
    c.merge_chunk::<Metrics>(&inputs, &mut report).await.unwrap();
    assert_eq!(report.merges, 1);
    // A second compactor that planned with the old file list loses.
    c.merge_chunk::<Metrics>(&inputs, &mut report).await.unwrap();
    assert_eq!((report.merges, report.conflicts), (1, 1));
    assert_eq!(storage.stats().files, 1);
    assert_eq!(storage.stats().rows, 2);
    let objects = list_parquet(&storage).await;
    assert_eq!(
        objects.len(),
        3,
        "the two inputs awaiting deletion and the one output: {objects:?}"
    );
}

#[tokio::test]
async fn orphans_are_swept_and_a_busy_lease_skips_the_round() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    storage.write_metrics(&[series("eu", "up", T0, 2, 1.0)]).await.unwrap();
    let mut tx = storage.transaction();
    tx.write_metrics(&[series("eu", "up", T0, 2, 5.0)]).await.unwrap();
    drop(tx); // a flush that died before its commit
    let foreign = Path::from("metrics/notes.txt");
    storage
        .io
        .store
        .put(&foreign, bytes::Bytes::from_static(b"x").into())
        .await
        .unwrap();
    assert_eq!(list_parquet(&storage).await.len(), 3);

    let other = Compactor::new(storage.clone(), &cfg, "other".into()).unwrap();
    let mut held = cfg.clone();
    held.compaction.lease_ttl = Duration::from_secs(3600);
    let holder = Compactor::new(storage.clone(), &held, "holder".into()).unwrap();
    assert!(holder.run_once(false).await.unwrap().ran);
    let skipped = other.run_once(false).await.unwrap();
    assert!(!skipped.ran);
    assert_eq!(skipped.lease_holder.as_deref(), Some("holder"));
    holder.release().await.unwrap();
    assert!(other.run_once(false).await.unwrap().ran, "a released lease is free");

    let left = list_parquet(&storage).await;
    assert_eq!(
        left.len(),
        2,
        "the orphan is gone, the live file and the foreign object stay: {left:?}"
    );
    assert!(left.contains(&foreign.to_string()));
    assert_eq!(storage.stats().rows, 2);
}

#[test]
fn chunks_respect_the_size_cap() {
    let f = |size| Arc::new(FileMeta::new(FileKey::new(Table::Metrics, "c", 0, 0, 1).unwrap(), size));
    let sizes = |c: &[Vec<Arc<FileMeta>>]| {
        c.iter()
            .map(|r| r.iter().map(|f| f.size).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sizes(&chunks(vec![f(4), f(4), f(4), f(9), f(1)], 8)),
        vec![vec![4, 4]],
        "runs of one are left alone"
    );
    assert_eq!(sizes(&chunks(vec![f(4), f(4), f(4)], 100)), vec![vec![4, 4, 4]]);
}

/// Compacted stores keep every read contract: each suite's data is written in several loads
/// (so copies of rows sit in different files), then compacted, then read.
#[tokio::test]
async fn compacted_metrics_pass_the_source_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    source_conformance(|series| {
        let dirs = dirs.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let cfg = eager();
            let storage = Storage::open(&cfg, dir.path()).await.unwrap();
            let half = series.len() / 2;
            storage.write_metrics(&series[..half]).await.unwrap();
            storage.write_metrics(&series[half..]).await.unwrap();
            storage.write_metrics(&series[half..]).await.unwrap();
            compact(&storage, &cfg).await;
            dirs.lock().push(dir);
            storage.source()
        }
    })
    .await;
}

#[tokio::test]
async fn compacted_logs_pass_the_log_source_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    log_source_conformance(|records| {
        let dirs = dirs.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let cfg = eager();
            let storage = Storage::open(&cfg, dir.path()).await.unwrap();
            let third = records.len().div_ceil(3).max(1);
            for part in records.chunks(third) {
                storage.write_logs(part).await.unwrap();
                storage.write_logs(part).await.unwrap();
            }
            compact(&storage, &cfg).await;
            dirs.lock().push(dir);
            storage.log_source()
        }
    })
    .await;
}

#[tokio::test]
async fn compacted_histograms_pass_the_histogram_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    histogram_source_conformance(|data| {
        let dirs = dirs.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let cfg = eager();
            let storage = Storage::open(&cfg, dir.path()).await.unwrap();
            let mid = data.len() / 2;
            for part in [&data[..mid], &data[mid..]] {
                if !part.is_empty() {
                    storage.write_histograms(part).await.unwrap();
                }
            }
            compact(&storage, &cfg).await;
            dirs.lock().push(dir);
            storage.source()
        }
    })
    .await;
}

#[tokio::test]
async fn completed_old_days_get_rollups_once_and_again_after_late_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    let day = (now_ms() / DAY_MS - 3) * DAY_MS;
    storage
        .write_metrics(&[series("eu", "requests_total", day + 60_000, 100, 0.0)])
        .await
        .unwrap();
    let report = compact(&storage, &cfg).await;
    assert_eq!(report.rollup_days, 1, "{report:?}");
    assert_eq!(live_keys(&storage, Table::Metrics5m).len(), 1);
    assert_eq!(live_keys(&storage, Table::Metrics1h).len(), 1);
    assert_eq!(live_keys(&storage, Table::Metrics1d).len(), 1);
    let again = compact(&storage, &cfg).await;
    assert_eq!(again.rollup_days, 0, "nothing new: {again:?}");

    // Rollups answer bucket reads for that day, even with the raw files gone.
    let req = SelectRequest::new(
        vec![Matcher::equal("cluster", "eu")],
        TimeRange::new(day, day + DAY_MS - 1),
    );
    let from_raw = storage
        .source()
        .select_buckets(&req, crate::rollup::Resolution::OneHour)
        .await
        .unwrap();
    assert!(!from_raw.rolled.is_empty(), "served from rollups");

    // Late data for the day: the day is merged and rolled up again.
    storage
        .write_metrics(&[series("eu", "requests_total", day + 7_200_000, 1, 500.0)])
        .await
        .unwrap();
    // Until the compactor rolls the day up again, its rollups are stale: the day is read raw,
    // late sample included.
    let counted = |read: crate::rollup::BucketRead| -> u64 {
        read.into_series()
            .iter()
            .flat_map(|s| &s.buckets)
            .map(|b| b.count)
            .sum()
    };
    let before = storage
        .source()
        .select_buckets(&req, crate::rollup::Resolution::OneHour)
        .await
        .unwrap();
    assert!(before.rolled.is_empty(), "stale rollups are not served: {before:?}");
    assert_eq!(counted(before), 101);
    let late = compact(&storage, &cfg).await;
    assert_eq!((late.merges >= 1, late.rollup_days), (true, 1), "{late:?}");
    let after = storage
        .source()
        .select_buckets(&req, crate::rollup::Resolution::OneHour)
        .await
        .unwrap();
    assert!(!after.rolled.is_empty(), "served from the new rollups");
    assert_eq!(counted(after), 101);
    let last = compact(&storage, &cfg).await;
    assert_eq!(last.rollup_days, 0, "{last:?}");
    assert_eq!(
        live_keys(&storage, Table::Metrics5m).len(),
        1,
        "the old rollup was merged away"
    );
}

/// A day rolled up twice (a compactor killed between two rounds' commits), then late data:
/// merging the two rollup files must not make them look newer than the late raw file, or the
/// day would never be rolled up again and bucket reads would leave the late data out.
#[tokio::test]
async fn merged_rollups_stay_older_than_late_data_and_the_day_is_rolled_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    let day = (now_ms() / DAY_MS - 3) * DAY_MS;
    let early = series("eu", "requests_total", day + 60_000, 100, 0.0);
    storage.write_metrics(std::slice::from_ref(&early)).await.unwrap();
    assert_eq!(compact(&storage, &cfg).await.rollup_days, 1);
    // The same rollups once more: two rollup files of the day in each table.
    for res in crate::rollup::Resolution::ALL {
        storage.write_rollups(res, std::slice::from_ref(&early)).await.unwrap();
    }
    storage
        .write_metrics(&[series("eu", "requests_total", day + 7_200_000, 1, 500.0)])
        .await
        .unwrap();
    let round = compact(&storage, &cfg).await;
    assert_eq!(round.rollup_days, 1, "the late data is rolled up: {round:?}");
    for res in crate::rollup::Resolution::ALL {
        let req = SelectRequest::new(
            vec![Matcher::equal("cluster", "eu")],
            TimeRange::new(day, day + DAY_MS - 1),
        );
        let read = storage.source().select_buckets(&req, res).await.unwrap();
        assert!(!read.rolled.is_empty(), "{res:?} served from rollups");
        let count: u64 = read
            .into_series()
            .iter()
            .flat_map(|s| &s.buckets)
            .map(|b| b.count)
            .sum();
        assert_eq!(count, 101, "{res:?}: every sample, the late one included");
    }
}

/// Flushed files are sorted by the metrics table's identity as the row format orders it, so
/// compaction merges them in parts (not whole, which holds every row): label texts with
/// escapes and non-ASCII values, repeated series, overlapping flushes.
#[tokio::test]
async fn flushed_metrics_merge_in_parts_as_they_merge_whole() {
    use crate::table::metrics::Metrics;
    let dir = tempfile::tempdir().unwrap();
    let cfg = eager();
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    let mut series = crate::test_util::workload::Workload {
        nodes: 3,
        samples: 30,
        start_ms: T0,
        ..Default::default()
    }
    .series();
    for (i, s) in series.iter_mut().enumerate().step_by(7) {
        let odd = ["a\"quoted\\value", "ünïcode", "Zed", "a b"][i % 4];
        s.labels = Labels::from_pairs(
            &s.labels
                .iter()
                .map(|l| (l.name, if l.name == "pod" { odd } else { l.value }))
                .collect::<Vec<_>>(),
        );
    }
    let third = series.len() / 3;
    storage.write_metrics(&series[..2 * third]).await.unwrap();
    storage.write_metrics(&series[third..]).await.unwrap();
    storage.write_metrics(&series[..third]).await.unwrap();
    let files = storage
        .catalog(Table::Metrics)
        .files(Table::Metrics, TimeRange::ALL, |_| true);
    assert!(files.len() >= 3, "{files:?}");
    let props = Metrics::properties(&storage.writer).unwrap();
    let parts = merge::merge_in_parts::<Metrics>(&storage.io, &files, props)
        .await
        .unwrap()
        .expect("flushed metrics files are sorted by their identity");
    let whole = merge::read_and_merge::<Metrics>(&storage.io, &files).await.unwrap();
    assert_eq!(parts.rows, whole.num_rows() as u64);
    assert_eq!(parts.rows, series.iter().map(|s| s.samples.len() as u64).sum::<u64>());
    let read: Vec<arrow_array::RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(parts.bytes, 1 << 20)
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
    let read = arrow_select::concat::concat_batches(&Metrics::schema(), &read).unwrap();
    assert_eq!(read, whole, "same rows in the same order as the whole merge");
}

/// A cluster-day holding more samples than one read may (`storage.max_select_samples`) is
/// rolled up a part of its series at a time: the same rollups as one read gives, in one commit
/// of several files per table, which the next round merges.
#[tokio::test]
async fn a_day_larger_than_one_read_is_rolled_up_in_parts_of_series() {
    let day = (now_ms() / DAY_MS - 3) * DAY_MS;
    let data: Vec<Series> = (0..12)
        .map(|i| {
            series(
                "eu",
                &format!("m{}_total", i % 5),
                day + 60_000 + i * 1_000,
                100,
                i as f64,
            )
        })
        .map(|mut s| {
            s.labels = Labels::from_pairs(&[
                ("__name__", s.labels.metric_name().unwrap()),
                ("cluster", "eu"),
                ("pod", &format!("pod-{}", s.samples[0].timestamp % 7_000)),
            ]);
            s
        })
        .collect();
    let whole_day = SelectRequest::new(
        vec![Matcher::equal("cluster", "eu")],
        TimeRange::new(day, day + DAY_MS - 1),
    );
    let rolled_up = |max_select_samples| {
        let data = data.clone();
        let req = whole_day.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let cfg = StorageConfig {
                max_select_samples,
                ..eager()
            };
            let storage = Storage::open(&cfg, dir.path()).await.unwrap();
            storage.write_metrics(&data).await.unwrap();
            let too_many = storage.source().select(&req).await;
            let report = compact(&storage, &cfg).await;
            assert_eq!(report.rollup_days, 1, "{report:?}");
            let files: Vec<usize> = [Table::Metrics5m, Table::Metrics1h, Table::Metrics1d]
                .into_iter()
                .map(|t| live_keys(&storage, t).len())
                .collect();
            let mut rows = Vec::new();
            for res in crate::rollup::Resolution::ALL {
                let read = storage.source().select_buckets(&req, res).await.unwrap();
                assert!(!read.rolled.is_empty(), "served from rollups");
                let mut series = read.into_series();
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                rows.push(series);
            }
            compact(&storage, &cfg).await;
            let merged: Vec<usize> = [Table::Metrics5m, Table::Metrics1h, Table::Metrics1d]
                .into_iter()
                .map(|t| live_keys(&storage, t).len())
                .collect();
            (too_many.is_err(), files, merged, rows)
        }
    };
    let (whole_refused, whole_files, _, whole_rows) = rolled_up(10_000).await;
    let (parts_refused, parts_files, merged, parts_rows) = rolled_up(300).await;
    assert!(!whole_refused);
    assert!(parts_refused, "one read of the day is over the limit");
    assert_eq!(whole_files, [1, 1, 1]);
    assert_eq!(
        parts_files,
        [4, 4, 4],
        "12 series of 100 samples in parts of at most 300"
    );
    assert_eq!(merged, [1, 1, 1], "the next round merges the parts' files");
    assert_eq!(parts_rows, whole_rows, "the same rollups");
}
