use super::*;
use crate::Error;
use crate::catalog::FileMeta;
use crate::config::StorageConfig;
use crate::layout::FileKey;
use crate::table::metrics::scan::Scanned;
use crate::test_util::workload::Workload;
use crate::types::Label;
use crate::types::MatchOp;
use crate::types::{Matcher, Sample};
use crate::writer::{WriterOptions, encode_batch, encode_metrics};
use arrow_array::RecordBatch;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, StringArray, TimestampMillisecondArray, UInt64Array,
};
use object_store::ObjectStoreExt;
use object_store::PutPayload;
use object_store::memory::InMemory;
use std::collections::BTreeSet;

struct Fixture {
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    files: Vec<Arc<FileMeta>>,
}

async fn fixture(series: &[Series], opts: &WriterOptions) -> Fixture {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = Arc::new(Catalog::new());
    for f in encode_metrics(series, opts).unwrap() {
        store
            .put(&f.key.path(), PutPayload::from(f.bytes.clone()))
            .await
            .unwrap();
        catalog.insert(FileMeta::new(f.key, f.bytes.len() as u64));
    }
    let files = catalog.files(Table::Metrics, TimeRange::ALL, |_| true);
    Fixture { store, catalog, files }
}

fn query(matchers: Vec<Matcher>, range: TimeRange, max_parts: usize) -> Arc<Query> {
    Arc::new(Query {
        matchers,
        range,
        only: None,
        samples: AtomicUsize::new(0),
        max_samples: usize::MAX,
        max_parts,
    })
}

fn small_pages() -> WriterOptions {
    WriterOptions {
        row_group_rows: 20_000,
        page_rows: 1_000,
        ..WriterOptions::from_config(&StorageConfig::default())
    }
}

#[tokio::test]
async fn exact_metric_and_time_read_a_fraction_of_the_file() {
    let w = Workload {
        nodes: 4,
        samples: 200,
        ..Workload::default()
    };
    let series = w.series();
    // Pages shorter than a series, so pages also have narrow time spans.
    let fx = fixture(
        &series,
        &WriterOptions {
            page_rows: 50,
            ..small_pages()
        },
    )
    .await;
    let file = fx.files.iter().max_by_key(|f| f.key.rows).unwrap().clone();
    let total = file.key.rows as usize;
    let cache = Arc::new(MetricsCache::new(8));
    let run = |q: Arc<Query>| scan_file(fx.store.clone(), cache.clone(), file.clone(), q);

    let all = run(query(vec![], TimeRange::ALL, MAX_PARTS)).await.unwrap();
    assert_eq!(all.planned_rows, total);

    let load = vec![Matcher::equal("__name__", "node_load1")];
    let one = run(query(load.clone(), TimeRange::ALL, MAX_PARTS)).await.unwrap();
    assert_eq!(one.series.len(), 4);
    assert!(
        one.planned_rows * 10 < total,
        "metric pruning read {} of {total} rows",
        one.planned_rows
    );

    // A range at the end of the file prunes pages of every series by timestamp.
    let tail = TimeRange::new(file.key.max_ts - 10 * w.interval_ms, file.key.max_ts);
    let late = run(query(vec![], tail, MAX_PARTS)).await.unwrap();
    assert!(
        late.planned_rows < total,
        "time pruning read {} of {total} rows",
        late.planned_rows
    );
    assert!(
        late.series
            .iter()
            .all(|f| f.samples.iter().all(|p| tail.contains(p.timestamp)))
    );

    // A metric outside the file's statistics reads nothing.
    let none = run(query(
        vec![Matcher::equal("__name__", "zzz")],
        TimeRange::ALL,
        MAX_PARTS,
    ))
    .await
    .unwrap();
    assert_eq!((none.planned_rows, none.series.len()), (0, 0));
}

#[tokio::test]
async fn each_label_set_is_parsed_once_per_dictionary() {
    // 300 series x 100 samples: 30k rows in one row group, decoded in several 8k-row batches.
    let series: Vec<Series> = (0..300)
        .map(|i| {
            let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "c"), ("pod", &format!("p{i:03}"))]);
            Series::new(
                labels,
                (0..100).map(|t| Sample::new(1_000 + t * 10, t as f64)).collect(),
            )
        })
        .collect();
    let opts = WriterOptions {
        row_group_rows: 1 << 20,
        ..small_pages()
    };
    let fx = fixture(&series, &opts).await;
    assert_eq!(fx.files.len(), 1);
    let cache = Arc::new(MetricsCache::new(8));
    let table = file_table(fx.store.clone(), cache.clone(), fx.files[0].clone())
        .await
        .unwrap();
    assert_eq!(
        table.parsed, 300,
        "labels JSON parsed once per distinct value, not per row or batch"
    );
    assert_eq!((table.series.len(), table.runs.len()), (300, 300), "one run per series");
    let got = scan_file(
        fx.store.clone(),
        cache.clone(),
        fx.files[0].clone(),
        query(vec![], TimeRange::ALL, MAX_PARTS),
    )
    .await
    .unwrap();
    assert_eq!(got.series.len(), 300);
    assert!(Arc::ptr_eq(&got.series[0].table, &table), "the cached table is used");
    assert!(got.series.iter().all(|f| f.samples.len() == 100));
}

#[tokio::test]
async fn label_matchers_and_series_listing_use_only_label_columns() {
    let series = Workload {
        nodes: 2,
        samples: 20,
        ..Workload::default()
    }
    .series();
    let fx = fixture(&series, &small_pages()).await;
    let source = MetricsReader::new(
        fx.store.clone(),
        fx.catalog.clone(),
        Arc::new(MetricsCache::new(8)),
        2,
        1000,
    );
    let idle = vec![
        Matcher::equal("__name__", "node_cpu_seconds_total"),
        Matcher::new(MatchOp::RegexMatch, "mode", "idle|user").unwrap(),
        Matcher::equal("cpu", "3"),
    ];
    let got = source.series(&SelectRequest::new(idle, TimeRange::ALL)).await.unwrap();
    assert_eq!(got.len(), 4, "{got:?}");
    // series() needs no samples, so the select limit (1000 < 2 x 390 x 20) does not apply.
    let all = source
        .series(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap();
    assert_eq!(all.len(), series.len());
}

#[tokio::test]
async fn malformed_files_are_reported_as_corrupt() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = Arc::new(Catalog::new());
    let dict = |v: &str| -> ArrayRef {
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![0]), Arc::new(StringArray::from(vec![v])))
                .unwrap(),
        )
    };
    let batch = RecordBatch::try_new(
        schema::metrics_schema(),
        vec![
            dict("c"),
            dict("m"),
            dict("{not json"),
            Arc::new(UInt64Array::from(vec![1u64])),
            Arc::new(TimestampMillisecondArray::from(vec![5i64]).with_timezone("UTC")),
            Arc::new(Float64Array::from(vec![1.0])),
        ],
    )
    .unwrap();
    let props = WriterOptions::from_config(&StorageConfig::default())
        .properties()
        .unwrap();
    let key = FileKey::new(Table::Metrics, "c", 5, 5, 1).unwrap();
    let bytes = encode_batch(&batch, props, "test", Vec::new(), |_| Ok(Vec::new())).unwrap();
    store.put(&key.path(), PutPayload::from(bytes.clone())).await.unwrap();
    catalog.insert(FileMeta::new(key.clone(), bytes.len() as u64));
    let source = MetricsReader::new(
        store.clone(),
        catalog.clone(),
        Arc::new(MetricsCache::new(8)),
        2,
        usize::MAX,
    );
    let err = source
        .select(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { key: k, .. } if k == key.path().as_ref()),
        "{err}"
    );

    // A file that isn't Parquet at all.
    let junk = FileKey::new(Table::Metrics, "d", 7, 7, 1).unwrap();
    store
        .put(&junk.path(), PutPayload::from_static(b"definitely not parquet"))
        .await
        .unwrap();
    let empty = Arc::new(Catalog::new());
    empty.insert(FileMeta::new(junk, 22));
    let source = MetricsReader::new(store, empty, Arc::new(MetricsCache::new(8)), 2, usize::MAX);
    let err = source
        .select(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Parquet { op: "read footer", .. }), "{err}");
}

#[tokio::test]
async fn later_files_win_for_the_same_timestamp() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = Arc::new(Catalog::new());
    let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "c")]);
    let opts = WriterOptions::from_config(&StorageConfig::default());
    for value in [1.0, 2.0, 3.0] {
        let s = Series::new(
            labels.clone(),
            vec![Sample::new(10, value), Sample::new(10 + value as i64, value)],
        );
        for f in encode_metrics(&[s], &opts).unwrap() {
            store
                .put(&f.key.path(), PutPayload::from(f.bytes.clone()))
                .await
                .unwrap();
            catalog.insert(FileMeta::new(f.key, f.bytes.len() as u64));
        }
    }
    let source = MetricsReader::new(store, catalog, Arc::new(MetricsCache::new(8)), 3, usize::MAX);
    let got = source
        .select(&SelectRequest::new(vec![], TimeRange::ALL))
        .await
        .unwrap();
    let want = vec![
        Sample::new(10, 3.0),
        Sample::new(11, 1.0),
        Sample::new(12, 2.0),
        Sample::new(13, 3.0),
    ];
    assert_eq!(got, vec![Series::new(labels, want)]);
}

#[tokio::test]
async fn label_listings_read_each_file_once_and_match_the_series() {
    let mut series = Workload {
        nodes: 2,
        samples: 20,
        ..Workload::default()
    }
    .series();
    series.extend(
        Workload {
            cluster: "prod-us-2".into(),
            nodes: 1,
            samples: 20,
            seed: 7,
            ..Workload::default()
        }
        .series(),
    );
    let fx = fixture(&series, &small_pages()).await;
    let cache = Arc::new(MetricsCache::new(8));
    let source = MetricsReader::new(fx.store.clone(), fx.catalog.clone(), cache.clone(), 2, usize::MAX);
    let sorted = |v: BTreeSet<String>| v.into_iter().collect::<Vec<_>>();
    let names_of = |ls: &[&Series]| {
        sorted(
            ls.iter()
                .flat_map(|s| s.labels.iter().map(|l| l.name.to_string()))
                .collect(),
        )
    };
    let values_of =
        |ls: &[&Series], n: &str| sorted(ls.iter().filter_map(|s| s.labels.get(n).map(str::to_string)).collect());
    let all: Vec<&Series> = series.iter().collect();
    let us: Vec<&Series> = series
        .iter()
        .filter(|s| s.labels.get("cluster") == Some("prod-us-2"))
        .collect();
    let everything = SelectRequest::new(vec![], TimeRange::ALL);
    let in_us = SelectRequest::new(vec![Matcher::equal("cluster", "prod-us-2")], TimeRange::ALL);
    let mode = Matcher::new(MatchOp::RegexMatch, "mode", "idle|user").unwrap();
    let check = || async {
        assert_eq!(source.label_names(&everything).await.unwrap(), names_of(&all));
        assert_eq!(source.label_names(&in_us).await.unwrap(), names_of(&us));
        for name in ["__name__", "cluster", "mode", "cpu", "absent"] {
            assert_eq!(
                source.label_values(name, &everything).await.unwrap(),
                values_of(&all, name)
            );
            assert_eq!(source.label_values(name, &in_us).await.unwrap(), values_of(&us, name));
        }
        let own = SelectRequest::new(vec![mode.clone()], TimeRange::ALL);
        assert_eq!(source.label_values("mode", &own).await.unwrap(), ["idle", "user"]);
    };
    check().await;
    assert_eq!(cache.labels.len(), fx.files.len());
    // The listings are cached, so the files are not read again (here: they are gone).
    for f in &fx.files {
        fx.store.delete(&f.path).await.unwrap();
    }
    check().await;
    // A matcher on another label needs the series: the cached series tables answer.
    let cpu = SelectRequest::new(vec![Matcher::equal("cpu", "1")], TimeRange::ALL);
    let with_cpu: Vec<&Series> = series.iter().filter(|s| s.labels.get("cpu") == Some("1")).collect();
    assert!(!with_cpu.is_empty());
    assert_eq!(
        source.label_values("mode", &cpu).await.unwrap(),
        values_of(&with_cpu, "mode")
    );
    assert_eq!(source.label_names(&cpu).await.unwrap(), names_of(&with_cpu));
    // Samples are not cached: a select reads the (deleted) files.
    assert!(source.select(&cpu).await.is_err());
}

/// A read big enough to be cut into parts (`PART_ROWS`) returns exactly what one decoder
/// returns: every series once, its samples whole and in order, wherever the cuts fall (inside
/// series, pages and row groups), for the whole file and for a time slice of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_cut_into_parts_equal_one_read() {
    let (n_series, n_samples) = (2_100usize, 300i64);
    let series: Vec<Series> = (0..n_series)
        .map(|i| {
            let labels = Labels::new(vec![
                Label::new("__name__", if i % 3 == 0 { "a_total" } else { "b_total" }),
                Label::new("cluster", "c1"),
                Label::new("i", format!("{i:05}")),
            ]);
            let samples = (0..n_samples)
                .map(|t| Sample::new(1_700_000_000_000 + t * 1_000, (i as i64 * 1_000 + t) as f64))
                .collect();
            Series::new(labels, samples)
        })
        .collect();
    assert!(n_series * n_samples as usize > 2 * PART_ROWS);
    let fx = fixture(&series, &small_pages()).await;
    assert_eq!(fx.files.len(), 1, "one hour, one cluster");
    let file = fx.files[0].clone();
    let cache = Arc::new(MetricsCache::new(8));
    for range in [
        TimeRange::ALL,
        TimeRange::new(1_700_000_000_000 + 17_500, 1_700_000_000_000 + 250_000),
    ] {
        let run = |parts| {
            scan_file(
                fx.store.clone(),
                cache.clone(),
                file.clone(),
                query(vec![], range, parts),
            )
        };
        let parted = run(MAX_PARTS).await.unwrap();
        let single = run(1).await.unwrap();
        let ids = |s: &Scanned| s.series.iter().map(|f| (f.id, f.samples.clone())).collect::<Vec<_>>();
        assert_eq!(ids(&parted), ids(&single));
        assert_eq!(parted.planned_rows, single.planned_rows);
        assert_eq!(parted.series.len(), n_series, "every series once");
        let inputs: HashMap<&Labels, &Vec<Sample>> = series.iter().map(|s| (&s.labels, &s.samples)).collect();
        for found in &parted.series {
            let expected: Vec<Sample> = inputs[found.labels()]
                .iter()
                .filter(|s| range.contains(s.timestamp))
                .copied()
                .collect();
            assert_eq!(found.samples, expected, "{:?}", found.labels());
        }
    }
}

/// A file in another writer's row order (a series met again after another one, timestamps
/// unsorted and repeated within a run) reads like a sorted one: each series once, its samples
/// sorted with one per timestamp.
#[tokio::test]
async fn files_in_another_row_order_read_sorted() {
    let rows: [(&str, i64, f64); 7] = [
        ("{\"pod\":\"a\"}", 30, 3.0),
        ("{\"pod\":\"a\"}", 10, 1.0),
        ("{\"pod\":\"b\"}", 10, 7.0),
        ("{\"pod\":\"a\"}", 20, 2.0),
        ("{\"pod\":\"a\"}", 10, 1.5),
        ("{\"pod\":\"b\"}", 40, 8.0),
        ("{\"pod\":\"c\"}", 90, 9.0),
    ];
    let n = rows.len();
    let batch = super::series_table::tests::batch_of_rows(&rows);
    let props = WriterOptions::from_config(&StorageConfig::default())
        .properties()
        .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let catalog = Arc::new(Catalog::new());
    let key = FileKey::new(Table::Metrics, "c", 10, 90, n as u64).unwrap();
    let bytes = encode_batch(&batch, props, "test", Vec::new(), |_| Ok(Vec::new())).unwrap();
    store.put(&key.path(), PutPayload::from(bytes.clone())).await.unwrap();
    catalog.insert(FileMeta::new(key, bytes.len() as u64));
    let source = MetricsReader::new(store, catalog, Arc::new(MetricsCache::new(8)), 2, usize::MAX);
    let pod = |p: &str| Labels::from_pairs(&[("__name__", "m"), ("cluster", "c"), ("pod", p)]);
    let mut got = source
        .select(&SelectRequest::new(
            vec![Matcher::equal("__name__", "m")],
            TimeRange::new(0, 50),
        ))
        .await
        .unwrap();
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    let want = vec![
        Series::new(
            pod("a"),
            vec![Sample::new(10, 1.5), Sample::new(20, 2.0), Sample::new(30, 3.0)],
        ),
        Series::new(pod("b"), vec![Sample::new(10, 7.0), Sample::new(40, 8.0)]),
    ];
    assert_eq!(got, want);
    // `c` has its one sample after the range: the table's run span leaves it out of the listing.
    let mut listed = source
        .series(&SelectRequest::new(vec![], TimeRange::new(0, 50)))
        .await
        .unwrap();
    listed.sort();
    assert_eq!(listed, vec![pod("a"), pod("b")]);
}

/// Series listings answer to the time span of each series' rows, not the file's: a series that
/// stopped early in the hour is not listed for a range after it.
#[tokio::test]
async fn series_listings_follow_each_series_time_span() {
    let labels = |p: &str| Labels::from_pairs(&[("__name__", "m"), ("cluster", "c"), ("pod", p)]);
    let early = Series::new(labels("early"), (0..10).map(|t| Sample::new(t * 1_000, 1.0)).collect());
    let late = Series::new(labels("late"), (0..600).map(|t| Sample::new(t * 1_000, 1.0)).collect());
    let fx = fixture(&[early, late], &small_pages()).await;
    assert_eq!(fx.files.len(), 1);
    let source = MetricsReader::new(fx.store, fx.catalog, Arc::new(MetricsCache::new(8)), 2, usize::MAX);
    let at = |start, end| SelectRequest::new(vec![], TimeRange::new(start, end));
    assert_eq!(source.series(&at(0, 5_000)).await.unwrap().len(), 2);
    assert_eq!(source.series(&at(9_000, 9_000)).await.unwrap().len(), 2);
    assert_eq!(source.series(&at(9_001, 700_000)).await.unwrap(), vec![labels("late")]);
    assert_eq!(
        source.label_values("pod", &at(20_000, 30_000)).await.unwrap(),
        ["early", "late"],
        "a listing without series matchers is as coarse as the file"
    );
    let on_m = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::new(20_000, 30_000));
    assert_eq!(source.label_values("pod", &on_m).await.unwrap(), ["late"]);
}

/// A series in a file per hour keeps one copy of its labels among the cached tables, and the
/// second table's budget counts no labels it shares.
#[tokio::test]
async fn tables_of_consecutive_hours_share_label_sets() {
    let hour = 3_600_000i64;
    let series: Vec<Series> = (0..50)
        .map(|i| {
            let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "c"), ("pod", &format!("p{i}"))]);
            Series::new(labels, (0..4).map(|k| Sample::new(k * hour / 2, 1.0)).collect())
        })
        .collect();
    let fx = fixture(&series, &small_pages()).await;
    assert_eq!(fx.files.len(), 2, "two hours");
    let cache = Arc::new(MetricsCache::new(8));
    let first = file_table(fx.store.clone(), cache.clone(), fx.files[0].clone())
        .await
        .unwrap();
    let second = file_table(fx.store.clone(), cache.clone(), fx.files[1].clone())
        .await
        .unwrap();
    assert_eq!((first.series.len(), second.series.len()), (50, 50));
    for s in &second.series {
        let twin = first.series.iter().find(|f| f.id == s.id).expect("same series");
        assert!(Arc::ptr_eq(&twin.labels, &s.labels), "{}", s.labels);
    }
    assert!(
        second.bytes() < first.bytes(),
        "{} vs {}",
        second.bytes(),
        first.bytes()
    );
    assert_eq!(cache.interner.len(), 50);
}

/// A read reserves room for a series from the time its cluster's later files cover.
#[test]
fn files_ahead_measure_the_rest_of_each_cluster() {
    let hour = 3_600_000i64;
    let file = |cluster: &str, from: i64, to: i64| {
        Arc::new(FileMeta::new(
            FileKey::new(Table::Metrics, cluster, from, to, 1).unwrap(),
            1,
        ))
    };
    let files = vec![
        file("a", 0, hour - 1),
        file("b", 0, hour - 1),
        file("a", hour, 2 * hour - 1),
        file("a", 2 * hour, 2 * hour + hour / 2 - 1),
    ];
    let ahead = files_ahead(&files, &TimeRange::new(0, 10 * hour));
    assert_eq!(ahead, [2.5, 1.0, 1.5, 1.0]);
    // The range cuts the first file in half: the rest counts twice as much (2 h after 0.5 h).
    let ahead = files_ahead(&files, &TimeRange::new(hour / 2, 10 * hour));
    assert_eq!(ahead[0], 4.0);
}

#[tokio::test]
async fn a_partial_read_keeps_the_whole_file_and_later_partial_reads_slice_it() {
    let w = Workload {
        nodes: 4,
        samples: 200,
        ..Workload::default()
    };
    let fx = fixture(&w.series(), &small_pages()).await;
    let file = fx.files.iter().max_by_key(|f| f.key.rows).unwrap().clone();
    let (lo, hi) = (file.key.min_ts, file.key.max_ts);
    let load = vec![Matcher::equal("__name__", "node_load1")];
    let pruned = Arc::new(MetricsCache::new(8));
    let edged = Arc::new(MetricsCache::with_footers(
        Arc::new(FooterCache::new(8)),
        true,
        SERIES_CACHE_BYTES,
        64 << 20,
    ));
    let read = |cache: &Arc<MetricsCache>, q: Arc<Query>| scan_file(fx.store.clone(), cache.clone(), file.clone(), q);
    let samples = |s: &Scanned| s.series.iter().map(|f| (f.id, f.samples.clone())).collect::<Vec<_>>();
    let edges = [
        TimeRange::new(lo + 10 * w.interval_ms + 1, hi),
        TimeRange::new(lo, lo + 20 * w.interval_ms),
        TimeRange::new(lo + 5 * w.interval_ms, lo + 7 * w.interval_ms - 1),
        TimeRange::new(hi + 1, hi + 3_600_000),
    ];
    let mut wanted = Vec::new();
    for range in edges {
        let want = read(&pruned, query(load.clone(), range, MAX_PARTS)).await.unwrap();
        let got = read(&edged, query(load.clone(), range, MAX_PARTS)).await.unwrap();
        assert_eq!(samples(&got), samples(&want), "{range:?}");
        wanted.push(samples(&want));
    }
    assert!(wanted[..3].iter().all(|w| w.len() == 4) && wanted[3].is_empty());
    assert_eq!(edged.stats().window_edges.entries, 1, "one file, one selector");

    // Later partial reads answer from memory: with the file gone they still do, while a read
    // covering the whole file (which does not keep it) and another selector fail.
    fx.store.delete(&file.path).await.unwrap();
    let again = read(&edged, query(load.clone(), edges[0], MAX_PARTS)).await.unwrap();
    assert_eq!(samples(&again), wanted[0]);
    assert!(
        read(&edged, query(load.clone(), TimeRange::ALL, MAX_PARTS))
            .await
            .is_err()
    );
    let cpu = vec![Matcher::equal("__name__", "node_cpu_seconds_total")];
    assert!(read(&edged, query(cpu, edges[0], MAX_PARTS)).await.is_err());

    // The limit counts the samples in range only.
    let in_range: usize = again.series.iter().map(|f| f.samples.len()).sum();
    let limited = |max_samples| {
        Arc::new(Query {
            max_samples,
            ..Arc::into_inner(query(load.clone(), edges[0], MAX_PARTS)).unwrap()
        })
    };
    assert!(read(&edged, limited(in_range)).await.is_ok());
    assert!(matches!(
        read(&edged, limited(in_range - 1)).await,
        Err(Error::TooManySamples { .. })
    ));
}

#[test]
fn window_reads_summarise_only_whole_files_alone_in_their_span() {
    let file = |cluster: &str, min: i64, max: i64| {
        Arc::new(FileMeta::new(
            FileKey::new(Table::Metrics, cluster, min, max, 1).unwrap(),
            1,
        ))
    };
    let files = vec![
        file("a", 1_000, 1_099), // whole, alone
        file("a", 1_100, 1_199), // overlaps the next
        file("a", 1_150, 1_160), // overlaps the one before
        file("b", 1_100, 1_199), // whole, alone (another cluster)
        file("a", 1_200, 2_000), // alone, but past the range
        file("b", 950, 1_050),   // alone, but before the range
    ];
    let (summarised, rest) = summaries::partition(files, TimeRange::new(1_000, 1_500));
    let spans = |v: &[Arc<FileMeta>]| {
        v.iter()
            .map(|f| (f.key.cluster.clone(), f.key.min_ts))
            .collect::<Vec<_>>()
    };
    assert_eq!(spans(&summarised), [("a".to_string(), 1_000), ("b".to_string(), 1_100)]);
    assert_eq!(rest.len(), 4);
}
