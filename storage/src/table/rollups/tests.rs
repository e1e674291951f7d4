use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use super::*;
use crate::layout::HOUR_MS;
use crate::read::SelectRequest;
use crate::rollup::buckets_of;
use crate::types::{Sample, Series, SeriesId};
use crate::{Storage, StorageConfig};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn series(cluster: &str, name: &str, points: impl IntoIterator<Item = (i64, f64)>) -> Series {
    Series::new(
        Labels::from_pairs(&[("__name__", name), ("cluster", cluster)]),
        points.into_iter().map(|(t, v)| Sample::new(t, v)).collect(),
    )
}

/// Two clusters, a counter with a reset every ~2h, over 2025-12-31 and 2026-01-01.
fn data() -> Vec<Series> {
    ["a", "b"]
        .into_iter()
        .map(|c| {
            series(
                c,
                "requests_total",
                (0..(2 * 24 * 60)).map(|i| (T0 - DAY_MS + i * 60_000, (i % 130) as f64)),
            )
        })
        .collect()
}

async fn buckets(storage: &Arc<Storage>, res: Resolution, range: TimeRange) -> Vec<BucketSeries> {
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "requests_total")], range);
    let mut got = storage.source().select_buckets(&req, res).await.unwrap().into_series();
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    got
}

/// `data`'s samples before `t`.
fn before(data: &[Series], t: i64) -> Vec<Series> {
    data.iter()
        .map(|s| {
            Series::new(
                s.labels.clone(),
                s.samples.iter().filter(|p| p.timestamp < t).copied().collect(),
            )
        })
        .collect()
}

fn expected(data: &[Series], res: Resolution, range: TimeRange) -> Vec<BucketSeries> {
    data.iter()
        .map(|s| {
            let samples: Vec<Sample> = s
                .samples
                .iter()
                .filter(|p| range.contains(p.timestamp))
                .copied()
                .collect();
            BucketSeries {
                labels: s.labels.clone(),
                buckets: buckets_of(&samples, res),
            }
        })
        .collect()
}

#[tokio::test]
async fn files_are_per_day_and_cluster_and_carry_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let summary = storage.write_rollups(Resolution::OneHour, &data()).await.unwrap();
    // Two days of two clusters; the bucket ending at midnight has a piece in each day's file.
    assert_eq!(summary.files.len(), 4, "{:?}", summary.files);
    // Per cluster and day: the piece of the bucket ending at its first midnight (the midnight
    // sample alone) and 24 hours of buckets, the last ending at the next midnight.
    assert_eq!(summary.rows, 2 * (25 + 25));
    assert!(
        summary.files[0].starts_with("metrics_1h/2025-12-31/day/a/"),
        "{:?}",
        summary.files
    );
    assert!(
        summary.files[3].starts_with("metrics_1h/2026-01-01/day/b/"),
        "{:?}",
        summary.files
    );
    let bytes = std::fs::read(dir.path().join(&summary.files[2])).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    assert_eq!(reader.schema().as_ref(), rollups_schema().as_ref());
    let names: Vec<String> = rollups_schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        [
            "cluster",
            "metric",
            "labels",
            "series_id",
            "timestamp",
            "count",
            "sum",
            "min",
            "max",
            "first",
            "last",
            "first_ts",
            "last_ts",
            "increase"
        ]
    );
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    // Day 2026-01-01 of cluster a: the first row is the midnight sample alone (bucket T0),
    // then the hour ending at 01:00 holds 60 samples of a counter rising by one a minute.
    let times = batch
        .column_by_name(FIRST_TS)
        .unwrap()
        .as_primitive::<arrow_array::types::TimestampMillisecondType>();
    let count = batch.column_by_name(COUNT).unwrap().as_primitive::<UInt64Type>();
    let increase = batch.column_by_name(INCREASE).unwrap().as_primitive::<Float64Type>();
    assert_eq!((times.value(0), count.value(0)), (T0, 1));
    assert_eq!((count.value(1), increase.value(1)), (60, 59.0 + 0.0));
}

#[tokio::test]
async fn each_tier_is_written_with_its_documented_codec_and_encodings() {
    // storage/README.md: the tables long reads decode whole (hourly rows, day summaries) are
    // Snappy, the 5-minute tier zstd like the raw table; sample times are delta-packed and
    // values byte-stream-split in every tier, never dictionary-encoded.
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    for (res, codec) in [
        (Resolution::FiveMinutes, "ZSTD"),
        (Resolution::OneHour, "SNAPPY"),
        (Resolution::OneDay, "SNAPPY"),
    ] {
        let summary = storage.write_rollups(res, &data()).await.unwrap();
        let bytes = bytes::Bytes::from(std::fs::read(dir.path().join(&summary.files[0])).unwrap());
        let meta = ArrowReaderMetadata::load(&bytes, Default::default()).unwrap();
        for column in meta.metadata().row_group(0).columns() {
            let got = format!("{:?}", column.compression());
            assert!(got.starts_with(codec), "{res:?} {}: {got}", column.column_path());
            let want = match column.column_path().string().as_str() {
                schema::TIMESTAMP | FIRST_TS | LAST_TS => Encoding::DELTA_BINARY_PACKED,
                SUM | MIN | MAX | FIRST | LAST | INCREASE => Encoding::BYTE_STREAM_SPLIT,
                _ => continue,
            };
            let got: Vec<Encoding> = column.encodings().collect();
            assert!(
                got.contains(&want) && !got.contains(&Encoding::RLE_DICTIONARY),
                "{res:?} {}: {got:?}",
                column.column_path()
            );
        }
    }
}

#[tokio::test]
async fn a_read_for_rates_leaves_sum_min_and_max_unread_and_apart_from_full_reads() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    storage.write_rollups(Resolution::OneHour, &data()).await.unwrap();
    let range = TimeRange::new(T0 - DAY_MS + 1, T0 + DAY_MS);
    let read = |fields: BucketFields| {
        let storage = storage.clone();
        async move {
            let req = SelectRequest {
                bucket_fields: fields,
                ..SelectRequest::new(vec![Matcher::equal("__name__", "requests_total")], range)
            };
            let mut got = storage
                .source()
                .select_buckets(&req, Resolution::OneHour)
                .await
                .unwrap()
                .into_series();
            got.sort_by(|a, b| a.labels.cmp(&b.labels));
            got
        }
    };
    let want = expected(&data(), Resolution::OneHour, range);
    // Twice each way, in turn: the second of each is answered from the recent reads, which
    // must keep a read of fewer columns apart from a read of all.
    for _ in 0..2 {
        let change = read(BucketFields::Change).await;
        assert_eq!(change.len(), want.len());
        for (g, w) in change.iter().zip(&want) {
            assert_eq!(g.labels, w.labels);
            assert_eq!(g.buckets.len(), w.buckets.len());
            for (a, b) in g.buckets.iter().zip(&w.buckets) {
                assert!(a.sum.is_nan() && a.min.is_nan() && a.max.is_nan(), "not read: {a:?}");
                let rest = |b: &Bucket| (b.timestamp, b.count, b.first, b.last, b.first_ts, b.last_ts, b.increase);
                assert_eq!(rest(a), rest(b));
            }
        }
        assert_eq!(read(BucketFields::All).await, want, "every field of a full read");
    }
}

#[tokio::test]
async fn buckets_come_from_rollups_alone_once_raw_data_is_gone() {
    // Raw data past its retention: only the rollups were ever written here.
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    for res in Resolution::ALL {
        storage.write_rollups(res, &data()).await.unwrap();
    }
    assert_eq!(storage.stats().files, 0, "no raw file");
    for res in Resolution::ALL {
        for range in [
            TimeRange::new(T0 - DAY_MS + 1, T0 + DAY_MS),
            TimeRange::new(T0 - 3 * HOUR_MS + 1, T0 + 2 * HOUR_MS),
        ] {
            let got = buckets(&storage, res, range).await;
            assert_eq!(got, expected(&data(), res, res.widen(range)), "{res:?} {range:?}");
        }
    }
}

#[tokio::test]
async fn a_rollup_written_again_counts_once_and_a_late_raw_file_is_read_until_rolled_again() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let all = data();
    storage.write_metrics(&all).await.unwrap();
    // The first day rolled up twice (a retried compaction), from slightly wrong data the first
    // time: the later file wins.
    let first_day = before(&all, T0);
    let wrong: Vec<Series> = first_day
        .iter()
        .map(|s| {
            Series::new(
                s.labels.clone(),
                s.samples.iter().map(|p| Sample::new(p.timestamp, 1.0)).collect(),
            )
        })
        .collect();
    storage.write_rollups(Resolution::FiveMinutes, &wrong).await.unwrap();
    storage
        .write_rollups(Resolution::FiveMinutes, &first_day)
        .await
        .unwrap();
    let range = TimeRange::new(T0 - DAY_MS + 1, T0 + DAY_MS);
    assert_eq!(
        buckets(&storage, Resolution::FiveMinutes, range).await,
        expected(&all, Resolution::FiveMinutes, range)
    );
    // A late raw file for the rolled-up day, newer than its rollups: the rollups are stale and
    // the day is read raw, late sample included, until the compactor rolls it up again.
    let late = vec![series("a", "requests_total", [(T0 - 1_000, 1e6)])];
    storage.write_metrics(&late).await.unwrap();
    let mut with_late = all.clone();
    let s = with_late.iter_mut().find(|s| s.labels == late[0].labels).unwrap();
    s.samples.extend(late[0].samples.iter().copied());
    s.samples.sort_by_key(|p| p.timestamp);
    assert_eq!(
        buckets(&storage, Resolution::FiveMinutes, range).await,
        expected(&with_late, Resolution::FiveMinutes, range)
    );
    // Rolled up again from every sample of the day: the new rollup answers, equal to raw.
    let first_day_again = before(&with_late, T0);
    storage
        .write_rollups(Resolution::FiveMinutes, &first_day_again)
        .await
        .unwrap();
    assert_eq!(
        buckets(&storage, Resolution::FiveMinutes, range).await,
        expected(&with_late, Resolution::FiveMinutes, range)
    );
}

/// `buckets` folded into one summary, in time order (what a window function does).
fn fold(buckets: &[Bucket]) -> Option<Bucket> {
    let mut it = buckets.iter();
    let mut total = *it.next()?;
    it.for_each(|b| total.append(b));
    Some(total)
}

/// A counter of clusters a and b, every minute for four days from `start`.
fn four_days(start: i64) -> Vec<Series> {
    ["a", "b"]
        .into_iter()
        .map(|c| {
            series(
                c,
                "requests_total",
                (0..(4 * 24 * 60)).map(|i| (start + i * 60_000, (i % 130) as f64 * 1.5)),
            )
        })
        .collect()
}

/// The samples of `data` in the UTC day starting at `T0`.
fn day_of_t0(data: &[Series]) -> Vec<Series> {
    data.iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .filter(|p| p.timestamp.div_euclid(DAY_MS) == T0 / DAY_MS);
            Series::new(s.labels.clone(), samples.copied().collect())
        })
        .collect()
}

/// Asserts a window's summary equals the raw answer's: exact but for `sum` and `increase`,
/// which may round differently (see [`Bucket::append`]).
fn assert_same_window(got: &Bucket, want: &Bucket, ctx: &str) {
    let exact = |b: &Bucket| {
        (
            b.count,
            b.first,
            b.last,
            b.first_ts,
            b.last_ts,
            b.min,
            b.max,
            b.timestamp,
        )
    };
    assert_eq!(exact(got), exact(want), "{ctx}");
    assert!(
        (got.sum - want.sum).abs() <= 1e-9 * want.sum.abs()
            && (got.increase - want.increase).abs() <= 1e-9 * want.increase.abs(),
        "{ctx}: {got:?} vs {want:?}"
    );
}

/// Four days of two clusters, every day rolled up (one file per cluster and day), plus a day
/// rolled up twice for cluster b (its copies resolved row by row): single-window reads, which
/// take whole days as summaries (kept in memory), fold to what the raw samples give, at every
/// resolution, over windows that start and end on and between days, cold and then cached.
#[tokio::test]
async fn a_single_window_folds_whole_day_summaries_to_the_raw_answer() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let start = T0 - 2 * DAY_MS;
    let all = four_days(start);
    storage.write_metrics(&all).await.unwrap();
    for res in Resolution::ALL {
        storage.write_rollups(res, &all).await.unwrap();
        let day = day_of_t0(&all[1..]);
        storage.write_rollups(res, &day).await.unwrap();
    }
    let source = storage.source();
    for res in Resolution::ALL {
        let r = res.ms();
        for (from, to) in [
            (start, start + 4 * DAY_MS - 1),
            (start + r, T0 + DAY_MS),
            (start + 5 * r + 1, T0 + DAY_MS + 7 * r),
            (T0 - DAY_MS, T0 + DAY_MS - 1),
            (T0 + 1, T0 + 2 * DAY_MS - 1),
            // An instant query at midnight: `(end - 2d, end]`, the midnight samples at its
            // start left out, the days inside whole.
            (T0 - DAY_MS + 1, T0 + DAY_MS),
        ] {
            let req = SelectRequest::new(
                vec![Matcher::equal("__name__", "requests_total")],
                TimeRange::new(from, to),
            );
            let want: Vec<(Labels, Option<Bucket>)> = expected(&all, res, res.widen(req.range))
                .into_iter()
                .map(|s| (s.labels, fold(&s.buckets)))
                .filter(|(_, b)| b.is_some())
                .collect();
            for pass in ["cold", "cached"] {
                let read = source.select_window(&req, res).await.unwrap();
                let rows: usize = read.rolled.iter().map(|s| s.buckets.len()).sum();
                let mut got = read.into_series();
                got.sort_by(|a, b| a.labels.cmp(&b.labels));
                let got: Vec<(Labels, Option<Bucket>)> =
                    got.into_iter().map(|s| (s.labels, fold(&s.buckets))).collect();
                assert_eq!(got.len(), want.len(), "{res:?} {from}..{to} {pass}");
                for ((gl, g), (wl, w)) in got.iter().zip(&want) {
                    let (g, w) = (g.unwrap(), w.unwrap());
                    assert_eq!(gl, wl);
                    assert_same_window(&g, &w, &format!("{res:?} {from}..{to} {pass} {gl}"));
                }
                if (from, to) == (T0 - DAY_MS + 1, T0 + DAY_MS) {
                    // Two whole days per cluster (b's twice-written day row by row): summaries,
                    // and the midnight pieces inside the window.
                    let per_day = (DAY_MS / r) as usize;
                    assert!(rows <= 2 * 2 + 2 + (per_day + 1) + 2, "{res:?}: {rows} rows read");
                }
                if (from, to) == (start, start + 4 * DAY_MS - 1) {
                    // Cluster a: four day summaries; cluster b: three, and its twice-written
                    // day row by row; the midnight pieces of the days after the first.
                    let per_day = (DAY_MS / r) as usize;
                    assert!(rows <= 4 + 3 + 2 * 3 + 2 * (per_day + 1), "{res:?}: {rows} rows read");
                }
            }
        }
    }
    assert!(storage.cache_stats().rollup_days.entries > 0, "day summaries are kept");
}

/// Whole days of a one-window read at 1 h come from `metrics_1d` when it holds the
/// (cluster, day) once and is as fresh as its raw files; a day rolled up twice at 1 d is read
/// from `metrics_1h`, and a day with raw data newer than its rollups is read raw. Every 1 h
/// file but the twice-rolled day's is deleted before the read: a read of any other would fail.
#[tokio::test]
async fn whole_days_of_one_window_are_read_from_the_day_table() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let start = T0 - 2 * DAY_MS;
    let mut all = four_days(start);
    storage.write_metrics(&all).await.unwrap();
    for res in [Resolution::OneHour, Resolution::OneDay] {
        storage.write_rollups(res, &all).await.unwrap();
    }
    let b_day = day_of_t0(&all[1..]);
    storage.write_rollups(Resolution::OneDay, &b_day).await.unwrap();
    let late = Sample::new(T0 + DAY_MS + 30_000, 7.0);
    storage
        .write_metrics(&[Series::new(all[0].labels.clone(), vec![late])])
        .await
        .unwrap();
    all[0].samples.push(late);
    all[0].samples.sort_by_key(|p| p.timestamp);
    drop(storage);

    let kept = |p: &std::path::Path| p.to_string_lossy().contains("2026-01-01/day/b/");
    let mut deleted = 0;
    for day in std::fs::read_dir(dir.path().join("metrics_1h")).unwrap() {
        for entry in walk(&day.unwrap().path()) {
            if !kept(&entry) {
                std::fs::remove_file(&entry).unwrap();
                deleted += 1;
            }
        }
    }
    assert_eq!(deleted, 7, "a's four days and b's other three");

    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let req = SelectRequest::new(
        vec![Matcher::equal("__name__", "requests_total")],
        TimeRange::new(start, start + 4 * DAY_MS - 1),
    );
    let want: Vec<(Labels, Bucket)> = expected(&all, Resolution::OneHour, Resolution::OneHour.widen(req.range))
        .into_iter()
        .map(|s| (s.labels, fold(&s.buckets).unwrap()))
        .collect();
    let read = storage.source().select_window(&req, Resolution::OneHour).await.unwrap();
    assert!(
        read.raw.iter().any(|s| s.samples.contains(&late)),
        "a's late day is read raw"
    );
    let mut got = read.into_series();
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(got.len(), want.len());
    for (g, (wl, w)) in got.iter().zip(&want) {
        assert_same_window(&fold(&g.buckets).unwrap(), w, &wl.to_string());
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn selectors_asking_for_one_day_file_at_once_read_it_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Budget 0: nothing is kept, so only the read under way can be shared.
    for budget in [0, 1 << 20] {
        let cache = DayCache::new(budget);
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(days::DayBuckets::default())
        };
        let (a, b) = tokio::join!(cache.get_or_load("f|*", load()), cache.get_or_load("f|*", load()));
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        assert_eq!(loads.load(Ordering::SeqCst), 1, "budget {budget}");
        // Once done, a later read is served from the cache (or read again with nothing kept).
        cache.get_or_load("f|*", load()).await.unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), if budget == 0 { 2 } else { 1 });
    }
}

#[tokio::test]
async fn day_reads_share_one_label_set_per_series_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let all = four_days(T0 - 2 * DAY_MS);
    storage.write_rollups(Resolution::OneHour, &all).await.unwrap();
    let files = storage
        .catalog(Table::Metrics1h)
        .files(Table::Metrics1h, TimeRange::ALL, |c| c == "a");
    assert_eq!(files.len(), 4, "one file per day");
    let cache = DayCache::new(1 << 20);
    let matchers = [Matcher::equal("__name__", "requests_total")];
    let mut seen: Vec<Arc<Labels>> = Vec::new();
    for f in &files {
        let day = f.key.min_ts.div_euclid(DAY_MS) * DAY_MS;
        let series = cache
            .read_day(
                &storage.io,
                f,
                &matchers,
                TimeRange::new(day, day + DAY_MS),
                BucketFields::All,
                None,
            )
            .await
            .unwrap();
        assert_eq!(series.len(), 1);
        let (id, labels, buckets) = &series[0];
        assert_eq!(**labels, all[0].labels);
        assert_eq!(*id, all[0].labels.series_id());
        assert!(buckets.len() >= 24, "{} buckets", buckets.len());
        seen.push(labels.clone());
    }
    assert!(
        seen.iter().all(|l| Arc::ptr_eq(l, &seen[0])),
        "every day of the series shares the first day's labels"
    );
    // A matcher the series fails leaves it out, though its labels are pooled.
    let f = &files[0];
    let none = cache
        .read_day(
            &storage.io,
            f,
            &[Matcher::equal("cluster", "b")],
            TimeRange::ALL,
            BucketFields::All,
            None,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn range_reads_of_one_file_by_two_selectors_decode_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    // Two metrics of one cluster over one day: one file, one page per column.
    let day = T0;
    let points = |scale: f64| (0..(24 * 60)).map(move |i| (day + i * 60_000, (i % 130) as f64 * scale));
    let data = vec![
        series("a", "errors_total", points(0.5)),
        series("a", "requests_total", points(2.0)),
    ];
    storage.write_rollups(Resolution::OneHour, &data).await.unwrap();
    let files = storage
        .catalog(Table::Metrics1h)
        .files(Table::Metrics1h, TimeRange::ALL, |_| true);
    assert_eq!(files.len(), 1);
    let f = &files[0];
    // A range cutting the day: its rows are filtered from the whole file kept.
    let labels = TimeRange::new(day + 6 * HOUR_MS, day + 18 * HOUR_MS);
    let sorted = |mut series: Vec<(SeriesId, Arc<Labels>, Vec<Bucket>)>| {
        series.sort_by(|a, b| a.1.cmp(&b.1));
        for s in &mut series {
            s.2.sort_by_key(|b| (b.timestamp, b.first_ts));
        }
        series
            .into_iter()
            .map(|(id, l, b)| (id, Labels::clone(&l), b))
            .collect::<Vec<_>>()
    };
    let owned = |series: Vec<(SeriesId, Arc<Labels>, days::Rows)>| {
        series
            .into_iter()
            .map(|(id, l, rows)| (id, l, rows.as_slice().to_vec()))
            .collect::<Vec<_>>()
    };
    let cache = DayCache::new(1 << 24);
    let uncached = DayCache::new(0);
    for (i, name) in ["requests_total", "errors_total"].into_iter().enumerate() {
        let matchers = [Matcher::equal("__name__", name)];
        let gets = storage.request_counts().get;
        let got = cache
            .read_rows(&storage.io, f, &matchers, labels, BucketFields::All)
            .await
            .unwrap();
        let read = storage.request_counts().get - gets;
        assert!(
            got.iter().all(|s| matches!(s.2, days::Rows::Shared(..))),
            "{name}: rows taken in place from the file's kept rows"
        );
        let got = owned(got);
        if i == 0 {
            assert!(read >= 1, "the first selector reads the file");
        } else {
            assert_eq!(read, 0, "the second selector takes its rows from the first's read");
        }
        let want = uncached
            .read_day(&storage.io, f, &matchers, labels, BucketFields::All, None)
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "{name}: its series only");
        assert_eq!(got[0].1.metric_name(), Some(name));
        assert_eq!(got[0].2.len(), 13, "{name}: the buckets labelled 6h to 18h");
        assert_eq!(sorted(got), sorted(want), "{name}");
        // With nothing kept, a range read is the plain read.
        let plain = owned(
            uncached
                .read_rows(&storage.io, f, &matchers, labels, BucketFields::All)
                .await
                .unwrap(),
        );
        assert_eq!(
            sorted(plain),
            sorted(
                uncached
                    .read_day(&storage.io, f, &matchers, labels, BucketFields::All, None)
                    .await
                    .unwrap()
            )
        );
    }
}

/// A rule over a long window reads the same day files at every evaluation. When their entries
/// need a little more than `storage.rollup_cache_bytes`, later evaluations still find most of
/// them: dropping the oldest first would drop each one just before the next sweep asks for it,
/// and every evaluation would read every file again.
#[tokio::test]
async fn repeated_windows_a_little_past_the_budget_read_few_files_again() {
    let start = T0 - 3 * DAY_MS;
    let data: Vec<Series> = (0..40)
        .map(|c| {
            series(
                &format!("c{c:02}"),
                "requests_total",
                (0..(3 * 24 * 12)).map(|i| (start + i * 300_000, (i % 97) as f64)),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    storage.write_rollups(Resolution::OneHour, &data).await.unwrap();
    drop(storage);
    // Three whole days: 120 entries of about one size, read in the same order each time.
    let req = SelectRequest::new(
        vec![Matcher::equal("__name__", "requests_total")],
        TimeRange::new(start + 1, start + 3 * DAY_MS),
    );
    let window = |storage: Arc<Storage>| {
        let req = req.clone();
        async move {
            let gets = storage.request_counts().get;
            let mut got = storage
                .source()
                .select_window(&req, Resolution::OneHour)
                .await
                .unwrap()
                .into_series();
            got.sort_by(|a, b| a.labels.cmp(&b.labels));
            let folded: Vec<Bucket> = got.iter().map(|s| fold(&s.buckets).unwrap()).collect();
            (storage.request_counts().get - gets, folded)
        }
    };
    let roomy = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let (_, want) = window(roomy.clone()).await;
    assert_eq!(want.len(), 40);
    let needed = roomy.cache_stats().rollup_days.bytes;
    let tight = Storage::open(
        &StorageConfig {
            rollup_cache_bytes: needed * 9 / 10,
            ..StorageConfig::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let (first, got) = window(tight.clone()).await;
    assert_eq!(got, want);
    assert!(first >= 120, "every one of the 120 files is read once: {first} GETs");
    for evaluation in 2..=4 {
        let (again, got) = window(tight.clone()).await;
        assert_eq!(got, want, "evaluation {evaluation}");
        assert!(
            again * 2 < first,
            "evaluation {evaluation} read {again} GETs again, the first {first}"
        );
    }
    let stats = tight.cache_stats().rollup_days;
    assert!(stats.bytes <= needed * 9 / 10 && stats.evictions > 0, "{stats:?}");
}
