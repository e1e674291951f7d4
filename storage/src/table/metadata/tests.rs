use super::*;
use crate::StorageConfig;
use crate::layout::FileKey;
use crate::{Storage, WriteSummary};
use object_store::path::Path;

fn md(cluster: &str, metric: &str, kind: MetricType, help: &str, unit: &str) -> MetricMetadata {
    MetricMetadata {
        cluster: cluster.into(),
        metric: metric.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    }
}

async fn open(dir: &tempfile::TempDir) -> Arc<Storage> {
    Storage::open(&StorageConfig::default(), dir.path()).await.unwrap()
}

#[tokio::test]
async fn every_field_round_trips_one_file_per_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let every_type = [
        MetricType::Unknown,
        MetricType::Counter,
        MetricType::Gauge,
        MetricType::Histogram,
        MetricType::GaugeHistogram,
        MetricType::Summary,
        MetricType::Info,
        MetricType::StateSet,
    ];
    let mut input: Vec<MetricMetadata> = every_type
        .iter()
        .enumerate()
        .map(|(i, &kind)| md("prod", &format!("m{i}"), kind, &format!("help \"{i}\"\n é"), "seconds"))
        .collect();
    input.push(md("dev", "m1", MetricType::Counter, "", ""));
    input.push(md("", "orphan", MetricType::Gauge, "no cluster", ""));
    input.push(input[0].clone()); // repeated: stored once
    let before = chrono::Utc::now().timestamp_millis();
    let summary = storage.write_metadata(&input).await.unwrap();
    assert_eq!(summary.rows, 10);
    assert_eq!(summary.files.len(), 3, "{:?}", summary.files);
    let mut clusters = Vec::new();
    for f in &summary.files {
        let key = FileKey::parse(&Path::from(f.as_str())).unwrap();
        assert_eq!(key.table, Table::Metadata);
        assert!(
            key.min_ts >= before && key.min_ts == key.max_ts,
            "keyed by the write time"
        );
        clusters.push(key.cluster);
    }
    clusters.sort();
    assert_eq!(clusters, ["", "dev", "prod"]);

    let source = storage.source();
    let mut want: Vec<MetricMetadata> = input[..10].to_vec();
    want.sort();
    assert_eq!(source.metadata(None).await.unwrap(), want);
    assert_eq!(
        source.metadata(Some("m1")).await.unwrap(),
        vec![md("dev", "m1", MetricType::Counter, "", ""), input[1].clone()]
    );
    assert!(source.metadata(Some("missing")).await.unwrap().is_empty());
    assert_eq!(storage.write_metadata(&[]).await.unwrap(), WriteSummary::default());

    drop(source);
    drop(storage);
    let storage = open(&dir).await;
    assert_eq!(storage.source().metadata(None).await.unwrap(), want, "after reopening");
}

#[tokio::test]
async fn files_are_read_once_and_later_writes_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(&dir).await;
    let a = md("prod", "up", MetricType::Gauge, "1 if up", "");
    let first = storage.write_metadata(std::slice::from_ref(&a)).await.unwrap();
    let source = storage.source();
    assert_eq!(source.metadata(None).await.unwrap(), vec![a.clone()]);

    // Known files are not read again: deleting one changes nothing.
    std::fs::remove_file(dir.path().join(&first.files[0])).unwrap();
    assert_eq!(source.metadata(None).await.unwrap(), vec![a.clone()]);

    // A later flush repeats an entry and adds one: the union, each entry once.
    let b = md("prod", "up", MetricType::Gauge, "1 if the target is up", "");
    storage.write_metadata(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(source.metadata(Some("up")).await.unwrap(), vec![b, a], "sorted by help");

    // A new reader does read every file, and fails on the deleted one.
    assert!(storage.source().metadata(None).await.is_err());
}
