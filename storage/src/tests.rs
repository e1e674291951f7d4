use super::*;
use crate::read::{SelectRequest, Source};
use crate::rollup::{BucketRead, DAY_MS, Resolution};
use crate::test_util::source_conformance;
use crate::test_util::workload::Workload;
use crate::types::{Labels, Matcher, Sample, TimeRange};
use async_trait::async_trait;
use std::collections::HashSet;

/// A source that keeps its temporary directory (and storage) alive.
#[derive(Debug)]
struct InTempDir {
    _dir: tempfile::TempDir,
    source: Arc<dyn Source>,
}

#[async_trait]
impl Source for InTempDir {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.source.select(req).await
    }
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        self.source.series(req).await
    }
    async fn select_buckets(&self, req: &SelectRequest, res: Resolution) -> Result<BucketRead> {
        self.source.select_buckets(req, res).await
    }
    async fn select_window(&self, req: &SelectRequest, res: Resolution) -> Result<BucketRead> {
        self.source.select_window(req, res).await
    }
    async fn bucket_sizes(&self, req: &SelectRequest, res: Resolution) -> Result<Vec<crate::read::ClusterRows>> {
        self.source.bucket_sizes(req, res).await
    }
}

/// Tiny row groups and pages so every pruning path runs on test-sized data.
fn small() -> StorageConfig {
    StorageConfig {
        row_group_rows: 700,
        page_rows: 64,
        ..StorageConfig::default()
    }
}

/// Writes `series` in order, starting a new write whenever a label set repeats, so repeated
/// series land in different (later) files, as a retried or late flush would.
async fn write_in_loads(storage: &Storage, series: Vec<Series>) {
    let mut load: Vec<Series> = Vec::new();
    let mut seen: HashSet<Labels> = HashSet::new();
    for s in series {
        if !seen.insert(s.labels.clone()) {
            storage.write_metrics(&load).await.unwrap();
            load.clear();
            seen = HashSet::from([s.labels.clone()]);
        }
        load.push(s);
    }
    storage.write_metrics(&load).await.unwrap();
}

#[tokio::test]
async fn parquet_source_passes_the_conformance_suite() {
    source_conformance(|series| async move {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&small(), dir.path()).await.unwrap();
        write_in_loads(&storage, series).await;
        Arc::new(InTempDir {
            _dir: dir,
            source: storage.source(),
        }) as Arc<dyn Source>
    })
    .await;
}

/// Rollups of every day up to `last_day` (of the data as the reference merges it), at both
/// resolutions: buckets of those days come from the rollup tables, the rest from raw files.
async fn write_rollups_until(storage: &Storage, series: &[Series], last_day: i64) {
    let merged = crate::test_util::MemSource::new(series.to_vec());
    let days: Vec<Series> = merged
        .all()
        .iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .filter(|p| p.timestamp.div_euclid(DAY_MS) <= last_day)
                .copied()
                .collect();
            Series::new(s.labels.clone(), samples)
        })
        .collect();
    for res in Resolution::ALL {
        storage.write_rollups(res, &days).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_source_with_rollups_passes_the_conformance_suite() {
    // Most datasets straddle 2026-01-01T00:00Z: rollups for the days before it (the bucket
    // ending at midnight is then combined from a rollup row and a raw sample), then for all.
    let t0_day = 1_767_225_600_000i64.div_euclid(DAY_MS);
    for last_day in [t0_day - 1, i64::MAX] {
        source_conformance(|series| async move {
            let dir = tempfile::tempdir().unwrap();
            let storage = Storage::open(&small(), dir.path()).await.unwrap();
            write_in_loads(&storage, series.clone()).await;
            write_rollups_until(&storage, &series, last_day).await;
            Arc::new(InTempDir {
                _dir: dir,
                source: storage.source(),
            }) as Arc<dyn Source>
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopened_storage_passes_the_conformance_suite() {
    // The catalog comes from listing, footers from storage (no cache), multipart uploads.
    source_conformance(|series| async move {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            metadata_cache_files: 0,
            multipart_threshold_bytes: 1,
            read_concurrency: 3,
            ..small()
        };
        let storage = Storage::open(&cfg, dir.path()).await.unwrap();
        write_in_loads(&storage, series).await;
        let written = storage.stats();
        drop(storage);
        let storage = Storage::open(&cfg, dir.path()).await.unwrap();
        assert_eq!(storage.stats(), written, "reopening lists exactly the written files");
        Arc::new(InTempDir {
            _dir: dir,
            source: storage.source(),
        }) as Arc<dyn Source>
    })
    .await;
}

#[tokio::test]
async fn writes_report_their_files_and_become_visible_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let source = storage.source();
    let all = SelectRequest::new(vec![], TimeRange::ALL);
    assert!(source.select(&all).await.unwrap().is_empty());
    assert_eq!(storage.write_metrics(&[]).await.unwrap(), WriteSummary::default());

    let series = Workload {
        nodes: 2,
        samples: 300,
        ..Workload::default()
    }
    .series();
    let samples: u64 = series.iter().map(|s| s.samples.len() as u64).sum();
    let summary = storage.write_metrics(&series).await.unwrap();
    assert_eq!(summary.rows, samples);
    assert_eq!(
        summary.files.len(),
        2,
        "300 samples at 15 s from 00:00+offset span two hours"
    );
    for f in &summary.files {
        let on_disk = std::fs::metadata(dir.path().join(f)).unwrap();
        assert!(on_disk.len() > 0);
        assert!(
            f.starts_with("metrics/2026-01-01/0") && f.contains("/prod-eu-1/"),
            "{f}"
        );
    }
    let stats = storage.stats();
    assert_eq!(
        stats,
        CatalogStats {
            files: 2,
            rows: samples,
            bytes: summary.bytes
        }
    );

    // Visible to a source created before the write.
    let got = source.select(&all).await.unwrap();
    assert_eq!(got.len(), series.len());
    let got_samples: usize = got.iter().map(|s| s.samples.len()).sum();
    assert_eq!(got_samples as u64, samples);
    let one = source
        .select(&SelectRequest::new(
            vec![Matcher::equal("__name__", "node_load1")],
            TimeRange::ALL,
        ))
        .await
        .unwrap();
    assert_eq!(one.len(), 2);
    let want = series.iter().find(|s| s.labels == one[0].labels).unwrap();
    assert_eq!(one[0].samples, want.samples);
}

/// Every stored series with all its samples, sorted by labels.
async fn every_series(storage: &Arc<Storage>) -> Vec<Series> {
    let mut got = storage
        .source()
        .select(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap();
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    got
}

#[tokio::test]
async fn a_file_built_in_parts_reads_back_whole_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    // One cluster-hour of 2.5 parts' rows: series of several lengths, so parts cut series.
    let hour = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let mut series = Vec::new();
    let mut rows = 0;
    for i in 0..7usize {
        let n = 7_000 + i * 1_979;
        rows += n;
        let samples = (0..n)
            .map(|j| Sample::new(hour + (j * 11) as i64, (i * 1_000_000 + j) as f64))
            .collect();
        let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "c"), ("i", &i.to_string())]);
        series.push(Series::new(labels, samples));
    }
    assert!(rows > 2 * WRITE_PART_ROWS && rows < 3 * WRITE_PART_ROWS, "{rows} rows");
    let summary = storage.write_metrics(&series).await.unwrap();
    assert_eq!(summary.files.len(), 1, "one cluster-hour, one file");
    assert_eq!(summary.rows, rows as u64);
    assert_eq!(
        every_series(&storage).await,
        series,
        "every sample once, in order, under its series"
    );
}

/// A series read back a range at a time, as the head's series are: it counts the samples it
/// hands out, and can be told to lose one (a source that changed under the write).
struct Lazy {
    series: Series,
    handed: std::sync::atomic::AtomicUsize,
    lose_one: bool,
}

impl SeriesInput for Lazy {
    fn labels(&self) -> &Labels {
        &self.series.labels
    }

    fn samples_in(&self, range: TimeRange) -> std::borrow::Cow<'_, [Sample]> {
        let mut out = self.series.samples_in(range).into_owned();
        if self.lose_one && range != TimeRange::ALL {
            out.pop();
        }
        self.handed.fetch_add(out.len(), std::sync::atomic::Ordering::Relaxed);
        std::borrow::Cow::Owned(out)
    }
}

/// `write_series` (series decoded a file part at a time, what a flush uses) stores what
/// `write_metrics` stores for the same series: one file per cluster-hour, every sample once.
/// Each sample is asked for once to plan the files and once to build them, not once per part.
/// A series that gives other samples than it gave when the write was planned fails the write.
#[tokio::test]
async fn series_read_a_part_at_a_time_store_what_held_series_store() {
    let hour = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    // Three clusters, series crossing an hour boundary (after 600 samples), and the second
    // hour's files longer than two parts, so parts cut series.
    let mut series = Vec::new();
    for c in ["a", "b", "c"] {
        for i in 0..40usize {
            let n = 1_600 + i * 37;
            let samples = (0..n)
                .map(|j| Sample::new(hour + 3_000_000 + (j * 1_000) as i64, (i * 10_000 + j) as f64))
                .collect();
            let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", c), ("i", &i.to_string())]);
            series.push(Series::new(labels, samples));
        }
    }
    let rows: usize = series.iter().map(|s| s.samples.len()).sum();
    let second_hour: usize = series[..40].iter().map(|s| s.samples.len() - 600).sum();
    assert!(second_hour > 2 * WRITE_PART_ROWS, "{second_hour} rows");
    let lazy: Vec<Lazy> = series
        .iter()
        .map(|s| Lazy {
            series: s.clone(),
            handed: Default::default(),
            lose_one: false,
        })
        .collect();
    let inputs: Vec<&dyn SeriesInput> = lazy.iter().map(|l| l as &dyn SeriesInput).collect();

    let (held_dir, lazy_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let held = Storage::open(&StorageConfig::default(), held_dir.path()).await.unwrap();
    let streamed = Storage::open(&StorageConfig::default(), lazy_dir.path()).await.unwrap();
    let a = held.write_metrics(&series).await.unwrap();
    let mut tx = streamed.transaction();
    tx.write_series(&inputs).await.unwrap();
    let b = tx.commit(None).await.unwrap();
    assert_eq!(b.files.len(), 6, "3 clusters × 2 hours");
    assert_eq!((a.files.len(), a.rows), (b.files.len(), b.rows));
    assert_eq!(b.rows, rows as u64);
    let handed: usize = lazy
        .iter()
        .map(|l| l.handed.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    // Once to plan, once to build; a series cut by a part boundary again for each part it is
    // in (here 3 second-hour files of 3 parts: 6 boundaries).
    let longest = series.iter().map(|s| s.samples.len()).max().unwrap();
    assert!(
        handed >= 2 * rows && handed <= 2 * rows + 6 * longest,
        "{handed} for {rows}"
    );
    let mut want = series.clone();
    want.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(every_series(&held).await, want);
    assert_eq!(every_series(&streamed).await, want);

    let changed = [Lazy {
        series: series[0].clone(),
        handed: Default::default(),
        lose_one: true,
    }];
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let mut tx = storage.transaction();
    let err = tx.write_series(&[&changed[0] as &dyn SeriesInput]).await.unwrap_err();
    assert!(err.to_string().contains("when the write was planned"), "{err}");
}

#[tokio::test]
async fn refresh_picks_up_files_written_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let reader = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let writer = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let s = Series::new(
        Labels::from_pairs(&[("__name__", "x"), ("cluster", "c")]),
        vec![Sample::new(1_000, 1.0)],
    );
    writer.write_metrics(&[s]).await.unwrap();
    assert_eq!(reader.stats().files, 0);
    assert_eq!(reader.refresh().await.unwrap(), 1);
    assert_eq!(reader.stats(), writer.stats());
}

#[tokio::test]
async fn oversized_selects_fail_instead_of_exhausting_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        max_select_samples: 100,
        ..StorageConfig::default()
    };
    let storage = Storage::open(&cfg, dir.path()).await.unwrap();
    let series = Workload {
        nodes: 1,
        samples: 10,
        ..Workload::default()
    }
    .series();
    storage.write_metrics(&series).await.unwrap();
    let source = storage.source();
    let err = source
        .select(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooManySamples { limit: 100 }), "{err}");
    let few = SelectRequest::new(vec![Matcher::equal("__name__", "node_load1")], TimeRange::ALL);
    assert_eq!(source.select(&few).await.unwrap().len(), 1);
    // Listing series reads no samples, so the limit does not apply.
    assert_eq!(
        source
            .series(&SelectRequest::new(vec![], TimeRange::ALL))
            .await
            .unwrap()
            .len(),
        series.len()
    );
}

#[tokio::test]
async fn bad_configuration_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig {
        zstd_level: 42,
        ..StorageConfig::default()
    };
    assert!(matches!(
        Storage::open(&cfg, dir.path()).await,
        Err(Error::InvalidData { .. })
    ));
    let cfg = StorageConfig {
        url: Some("ftp://x".into()),
        ..StorageConfig::default()
    };
    assert!(matches!(
        Storage::open(&cfg, dir.path()).await,
        Err(Error::InvalidUrl { .. })
    ));
}

/// A file smaller than the footer read's prefetch is read whole by it, and its pages are served
/// from those bytes: a cold read of a small rollup file (fresh storage, no footer cached) is one
/// GET, and of a small metrics file two (its series table and its rows are read by two readers;
/// three before: footer, series table, rows).
#[tokio::test]
async fn a_cold_read_of_a_small_file_reads_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let labels = Labels::from_pairs(&[("__name__", "up"), ("cluster", "a"), ("job", "x")]);
    let samples: Vec<Sample> = (0..100).map(|i| Sample::new(1_000 + i * 15_000, i as f64)).collect();
    let series = [Series::new(labels, samples)];
    storage.write_metrics(&series).await.unwrap();
    let day = TimeRange::new(DAY_MS, 2 * DAY_MS - 1);
    let later: Vec<Series> = series
        .iter()
        .map(|s| {
            Series::new(
                s.labels.clone(),
                s.samples
                    .iter()
                    .map(|p| Sample::new(p.timestamp + DAY_MS, p.value))
                    .collect(),
            )
        })
        .collect();
    for res in [Resolution::OneHour, Resolution::OneDay] {
        storage.write_rollups(res, &later).await.unwrap();
    }
    let up = vec![Matcher::new(crate::types::MatchOp::Equal, "__name__", "up").unwrap()];
    let fresh = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let gets = || fresh.request_counts().get;
    let before = gets();
    let got = fresh
        .source()
        .select(&SelectRequest::new(up.clone(), TimeRange::new(0, DAY_MS - 1)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples.len(), 100);
    assert_eq!(gets() - before, 2, "GETs for a cold read of one small metrics file");
    let before = gets();
    let buckets = fresh
        .source()
        .select_buckets(&SelectRequest::new(up.clone(), day), Resolution::OneHour)
        .await
        .unwrap()
        .into_series();
    assert_eq!(buckets.len(), 1);
    assert_eq!(gets() - before, 1, "GETs for a cold read of one small rollup file");
    // A window over the whole day reads its day file: the footer's reader reads the rows.
    let fresh = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let before = fresh.request_counts().get;
    let window = fresh
        .source()
        .select_window(&SelectRequest::new(up, day), Resolution::OneHour)
        .await
        .unwrap()
        .into_series();
    assert_eq!(window.len(), 1);
    assert_eq!(
        fresh.request_counts().get - before,
        1,
        "GETs for a cold window over a day file"
    );
}
