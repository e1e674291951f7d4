//! PromQL evaluation and metadata listings over the reference workload shape (kube-prometheus-like
//! series, 15 s interval, 3 clusters), read from the head and from Parquet: the queries of
//! `benches/compare/query.sh`, each a 60 s-step range query over the whole window.
//!
//! The head group also answers `p99_native`: the p99 over native histograms carrying the same
//! observations as the classic `http_request_duration_seconds_bucket` series (one custom-bucket
//! histogram per classic histogram, bounds = its `le` values), to compare with `p99`.
//!
//! `cargo bench --bench promql_eval` (3 x 10,000 series x 240 samples by default;
//! `PROMQL_BENCH_SERIES` and `PROMQL_BENCH_SAMPLES` change the series per cluster and the samples
//! per series). To profile one query: `cargo bench --bench promql_eval -- --profile-time 20 head/p99`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

mod common;

use criterion::Criterion;
use tributary_ingest::head::SignalBlock;
use tributary_ingest::head::input::Input;
use tributary_loadgen::workload;
use tributary_query::{Engine, QueryConfig, promql::parse_series_selector};
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::read::{SelectRequest, Source};
use tributary_storage::signals::{BucketSpan, HistogramSample, HistogramSeries};
use tributary_storage::types::{Labels, TimeRange};

const STEP_MS: i64 = 60_000;

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The range queries of the comparison suite (`benches/loadgen/src/query/suite.rs`).
const RANGE_QUERIES: [(&str, &str); 4] = [
    (
        "error_ratio",
        r#"sum by (cluster) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (cluster) (rate(http_requests_total[5m]))"#,
    ),
    (
        "p99",
        "histogram_quantile(0.99, sum by (le, cluster) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "topk_cpu",
        "topk(5, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))",
    ),
    (
        "count_buckets",
        "count by (cluster) (http_request_duration_seconds_bucket)",
    ),
];

/// The p99 of the native histograms `native_histograms` derives, as the issue's target states it.
const NATIVE_P99: &str = "histogram_quantile(0.99, sum by (cluster, le) (rate(http_request_duration_seconds[5m])))";

/// One custom-bucket (NHCB) native histogram series per classic histogram of `all`: at each
/// timestamp the `le` series' cumulative counts become the buckets (bounds: the finite `le`s).
fn native_histograms(all: &[tributary_storage::types::Series]) -> Vec<HistogramSeries> {
    let mut groups: BTreeMap<Labels, Vec<(f64, &tributary_storage::types::Series)>> = BTreeMap::new();
    for s in all {
        if s.labels.get("__name__") != Some("http_request_duration_seconds_bucket") {
            continue;
        }
        let Some(le) = s.labels.get("le").and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let mut key = s.labels.clone();
        key.remove("le");
        key.remove("__name__");
        groups.entry(key).or_default().push((le, s));
    }
    let mut out = Vec::new();
    for (key, mut buckets) in groups {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let bounds: Vec<f64> = buckets.iter().map(|b| b.0).filter(|le| le.is_finite()).collect();
        let samples = (0..buckets[0].1.samples.len())
            .filter_map(|i| {
                let cumulative: Vec<f64> = buckets
                    .iter()
                    .map(|b| b.1.samples.get(i).map(|x| x.value))
                    .collect::<Option<_>>()?;
                let mut previous = 0.0;
                let counts: Vec<f64> = cumulative
                    .iter()
                    .map(|&c| {
                        let n = (c - previous).max(0.0);
                        previous = c;
                        n
                    })
                    .collect();
                Some(HistogramSample {
                    timestamp: buckets[0].1.samples[i].timestamp,
                    count: *cumulative.last()?,
                    schema: -53,
                    positive_spans: vec![BucketSpan {
                        offset: 0,
                        length: counts.len() as u32,
                    }],
                    positive_buckets: counts,
                    custom_values: bounds.clone(),
                    ..HistogramSample::default()
                })
            })
            .collect();
        let mut labels = key;
        labels.set("__name__", "http_request_duration_seconds");
        out.push(HistogramSeries { labels, samples });
    }
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bench(c: &mut Criterion) {
    let cfg = workload::Config {
        clusters: 3,
        series_per_cluster: env_usize("PROMQL_BENCH_SERIES", 10_000),
        samples_per_series: env_usize("PROMQL_BENCH_SAMPLES", 240),
        ..Default::default()
    };
    let started = Instant::now();
    let head = Arc::new(common::loaded_head(&cfg));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let all = rt
        .block_on(head.select(&SelectRequest::new(Vec::new(), TimeRange::ALL)))
        .expect("select all");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir.path()))
        .expect("storage");
    rt.block_on(storage.write_metrics(&all)).expect("write");
    let samples: usize = all.iter().map(|s| s.samples.len()).sum();
    eprintln!(
        "promql_eval: {} series, {samples} samples loaded in {:.1}s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    let histograms = native_histograms(&all);
    eprintln!("promql_eval: {} native histogram series derived", histograms.len());
    let unplaced = head.apply(Input {
        signals: SignalBlock {
            histograms,
            ..SignalBlock::default()
        },
        ..Input::default()
    });
    assert_eq!(unplaced, 0, "every histogram sample placed");
    drop(all);

    // A few ms past the first round, as the comparison does, so no sample sits on a boundary.
    let start = cfg.start_ms + 7;
    let end = cfg.start_ms + (cfg.samples_per_series as i64 - 1) * cfg.interval_ms as i64;
    let range = TimeRange::new(start, end);
    let sources: [(&str, Arc<dyn Source>); 2] = [("head", head.clone()), ("parquet", storage.source())];
    for (name, source) in sources {
        let engine = Engine::new(source, QueryConfig::default());
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        for (query_name, query) in RANGE_QUERIES {
            g.bench_function(query_name, |b| {
                b.iter(|| {
                    rt.block_on(engine.range_query(query, start, end, STEP_MS, None))
                        .expect("query")
                })
            });
        }
        if name == "head" {
            g.bench_function("p99_native", |b| {
                b.iter(|| {
                    rt.block_on(engine.range_query(NATIVE_P99, start, end, STEP_MS, None))
                        .expect("query")
                })
            });
        }
        g.bench_function("pod_values", |b| {
            b.iter(|| {
                rt.block_on(engine.label_values("pod", &[], range, std::time::Instant::now()))
                    .expect("values")
            })
        });
        g.bench_function("label_names", |b| {
            b.iter(|| {
                rt.block_on(engine.label_names(&[], range, std::time::Instant::now()))
                    .expect("names")
            })
        });
        let selector = format!(r#"kube_pod_info{{cluster="{}"}}"#, workload::cluster_name(0));
        let matchers = parse_series_selector(&selector).expect("selector");
        g.bench_function("pod_info_series", |b| {
            b.iter(|| {
                rt.block_on(engine.series(&matchers, range, std::time::Instant::now()))
                    .expect("series")
            })
        });
        g.finish();
    }
}

// `criterion_group!` would declare an undocumented `pub fn` (missing_docs); this is its and
// `criterion_main!`'s expansion.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
