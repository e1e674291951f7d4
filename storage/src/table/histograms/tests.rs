use super::*;
use crate::StorageConfig;
use crate::layout::{FileKey, HOUR_MS};
use crate::types::{Labels, MatchOp, STALE_NAN_BITS};
use crate::{Storage, WriteSummary};
use object_store::path::Path;

/// The table's answer through the read contract.
async fn read_histograms(
    storage: &Arc<Storage>,
    matchers: &[Matcher],
    range: TimeRange,
) -> Result<Vec<HistogramSeries>> {
    let req = crate::read::SelectRequest::new(matchers.to_vec(), range);
    storage.source().select_histograms(&req).await
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn labels(cluster: &str, name: &str, job: &str) -> Labels {
    Labels::from_pairs(&[("__name__", name), ("cluster", cluster), ("job", job)])
}

/// A sample exercising every field; `i` varies them.
fn sample(timestamp: i64, i: u32) -> HistogramSample {
    let f = f64::from(i);
    HistogramSample {
        timestamp,
        count: 10.0 + f,
        sum: 2.5 * f,
        schema: (i % 13) as i32 - 4,
        zero_threshold: 1e-128,
        zero_count: f,
        positive_spans: vec![
            BucketSpan { offset: -2, length: 2 },
            BucketSpan {
                offset: i as i32,
                length: 1,
            },
        ],
        positive_buckets: vec![1.0, 2.0 + f, 3.0],
        negative_spans: if i.is_multiple_of(2) {
            vec![]
        } else {
            vec![BucketSpan { offset: 0, length: 1 }]
        },
        negative_buckets: if i.is_multiple_of(2) { vec![] } else { vec![f] },
        reset_hint: ResetHint::from_u8((i % 4) as u8).unwrap(),
        custom_values: vec![],
    }
}

/// Two clusters, two metrics, samples every 20 minutes over three hours (three files per cluster).
fn fleet() -> Vec<HistogramSeries> {
    let mut out = Vec::new();
    for (c, cluster) in ["prod", "dev"].into_iter().enumerate() {
        for (m, name) in ["http_duration_seconds", "rpc_duration_seconds"]
            .into_iter()
            .enumerate()
        {
            let samples = (0..9u32)
                .map(|k| sample(T0 + i64::from(k) * 1_200_000 + 7, k + (c * 2 + m) as u32 * 9))
                .collect();
            out.push(HistogramSeries {
                labels: labels(cluster, name, "api"),
                samples,
            });
        }
    }
    out
}

fn sorted(mut series: Vec<HistogramSeries>) -> Vec<HistogramSeries> {
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series
}

async fn open(dir: &tempfile::TempDir) -> Arc<Storage> {
    Storage::open(&StorageConfig::default(), dir.path()).await.unwrap()
}

#[tokio::test]
async fn every_field_round_trips_across_clusters_and_hours() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let mut input = fleet();
    // Exact float bits survive (a NaN payload, an infinity, a negative zero), as does a
    // custom-buckets (NHCB) sample with a gauge hint.
    input[0].samples[0].sum = f64::from_bits(STALE_NAN_BITS);
    input[0].samples[1].zero_threshold = f64::INFINITY;
    input[0].samples[2].count = -0.0;
    input[1].samples[3] = HistogramSample {
        schema: -53,
        custom_values: vec![0.1, 0.5, 1.0, f64::INFINITY],
        positive_spans: vec![BucketSpan { offset: 0, length: 4 }],
        positive_buckets: vec![1.0, 0.0, 3.0, 1.0],
        reset_hint: ResetHint::Gauge,
        ..input[1].samples[3].clone()
    };
    let summary = storage.write_histograms(&input).await.unwrap();
    assert_eq!(summary.rows, 36);
    assert_eq!(
        summary.files.len(),
        6,
        "two clusters x three hours: {:?}",
        summary.files
    );
    for f in &summary.files {
        let key = FileKey::parse(&Path::from(f.as_str())).unwrap();
        assert_eq!(key.table, Table::Histograms);
        assert!(f.starts_with("histograms/2026-01-01/0"), "{f}");
        assert!(dir.path().join(f).is_file(), "{f}");
    }

    let got = sorted(read_histograms(&storage, &[], TimeRange::ALL).await.unwrap());
    // NaN != NaN: check the bit-exact fields first, then compare everything by value.
    let first = got.iter().position(|s| s.labels == input[0].labels).unwrap();
    assert_eq!(got[first].samples[0].sum.to_bits(), STALE_NAN_BITS);
    assert_eq!(got[first].samples[2].count.to_bits(), (-0.0f64).to_bits());
    let blank = |mut v: Vec<HistogramSeries>| {
        for s in v.iter_mut().flat_map(|s| s.samples.iter_mut()) {
            if s.sum.is_nan() {
                s.sum = 0.0;
            }
        }
        v
    };
    assert_eq!(blank(got), blank(sorted(input)));

    // A reopened store lists the files and reads the same.
    drop(storage);
    let storage = open(&dir).await;
    let again = read_histograms(&storage, &[], TimeRange::ALL).await.unwrap();
    assert_eq!(again.len(), 4);
    assert_eq!(again.iter().map(|s| s.samples.len()).sum::<usize>(), 36);
}

#[tokio::test]
async fn reads_select_by_matchers_and_time_and_skip_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let input = fleet();
    let summary = storage.write_histograms(&input).await.unwrap();

    let prod = Matcher::equal("cluster", "prod");
    let rpc = Matcher::new(MatchOp::RegexMatch, "__name__", "rpc_.*").unwrap();
    let got = read_histograms(&storage, &[prod.clone(), rpc], TimeRange::ALL)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0], input[1]);

    // Closed range inside the second hour: samples at +60m+7ms, +80m+7ms, +100m+7ms.
    let second = TimeRange::new(T0 + HOUR_MS, T0 + HOUR_MS + 3_000_007);
    let got = read_histograms(&storage, std::slice::from_ref(&prod), second)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    for s in &got {
        let times: Vec<i64> = s.samples.iter().map(|x| x.timestamp).collect();
        assert_eq!(times, vec![T0 + 3_600_007, T0 + 4_800_007, T0 + 6_000_007]);
    }
    let none = read_histograms(&storage, &[Matcher::equal("job", "other")], TimeRange::ALL)
        .await
        .unwrap();
    assert!(none.is_empty());

    // Files of other clusters and hours are never opened: deleting them changes nothing.
    for f in summary
        .files
        .iter()
        .filter(|f| f.contains("/dev/") || !f.contains("/01/"))
    {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let got = read_histograms(&storage, &[prod], TimeRange::new(T0 + HOUR_MS, T0 + 2 * HOUR_MS - 1))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|s| s.samples.len()).sum::<usize>(), 6);
    assert!(
        read_histograms(&storage, &[], TimeRange::ALL).await.is_err(),
        "an unpruned read does open the deleted files"
    );
}

#[tokio::test]
async fn later_writes_win_and_repeats_merge() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let l = labels("prod", "h", "a");
    let first = HistogramSeries {
        labels: l.clone(),
        samples: vec![sample(T0 + 2, 1), sample(T0 + 1, 2)],
    };
    let again = HistogramSeries {
        labels: l.clone(),
        samples: vec![sample(T0 + 2, 3)],
    };
    // In one write: merged, sorted, the later sample of a repeated timestamp kept.
    let summary = storage.write_histograms(&[first.clone(), again.clone()]).await.unwrap();
    assert_eq!((summary.files.len(), summary.rows), (1, 2));
    let got = read_histograms(&storage, &[], TimeRange::ALL).await.unwrap();
    assert_eq!(got[0].samples, vec![sample(T0 + 1, 2), sample(T0 + 2, 3)]);

    // Across writes (files): the later file wins.
    storage.write_histograms(&[first]).await.unwrap();
    let got = read_histograms(&storage, &[], TimeRange::ALL).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, vec![sample(T0 + 1, 2), sample(T0 + 2, 1)]);

    assert_eq!(storage.write_histograms(&[]).await.unwrap(), WriteSummary::default());
    let bad = HistogramSeries {
        labels: l,
        samples: vec![sample(i64::MAX, 0)],
    };
    assert!(matches!(
        storage.write_histograms(&[bad]).await,
        Err(Error::InvalidData { .. })
    ));
    assert_eq!(
        storage.catalog(Table::Histograms).stats().files,
        2,
        "a failed write stores nothing"
    );
}

#[tokio::test]
async fn files_carry_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let summary = storage.write_histograms(&fleet()[..1]).await.unwrap();
    let bytes = std::fs::read(dir.path().join(&summary.files[0])).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    assert_eq!(reader.schema().as_ref(), histograms_schema().as_ref());
    let schema = histograms_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
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
            "schema",
            "zero_threshold",
            "zero_count",
            "positive_spans",
            "positive_buckets",
            "negative_spans",
            "negative_buckets",
            "reset_hint",
            "custom_values"
        ]
    );
    let sorting = reader.metadata().row_group(0).sorting_columns().unwrap();
    assert_eq!(
        sorting.iter().map(|s| s.column_idx).collect::<Vec<_>>(),
        vec![0, 1, 2, 4]
    );
    let batch = reader.build().unwrap().next().unwrap().unwrap();
    let labels = batch.column(key_col::LABELS).as_dictionary::<Int32Type>();
    assert_eq!(labels.values().as_string::<i32>().value(0), r#"{"job":"api"}"#);
}

/// The table through [`crate::read::Source::select_histograms`] passes the histogram suite,
/// each dataset written in two flushes (the later half second, so it must win a timestamp).
#[tokio::test]
async fn parquet_histograms_pass_the_histogram_conformance_suite() {
    let dirs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    crate::test_util::histogram_source_conformance(|data| {
        let dirs = dirs.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let storage = open(&dir).await;
            let mid = data.len() / 2;
            for part in [&data[..mid], &data[mid..]] {
                if !part.is_empty() {
                    storage.write_histograms(part).await.unwrap();
                }
            }
            dirs.lock().push(dir);
            storage.source()
        }
    })
    .await;
}
