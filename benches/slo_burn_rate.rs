//! The 30-day burn rate of issue 14, raw samples against rollups:
//! `sum by (cluster) (rate(errors_total[30d])) / sum by (cluster) (rate(requests_total[30d]))`,
//! as an instant query and as a 30-day `query_range` at a 1 h step.
//!
//! The history is written straight through the storage writer, one (cluster, UTC day) at a
//! time, as a compaction of completed days would leave it: the raw files and the rollups of
//! every resolution (`Storage::write_metrics`, `Storage::write_rollups`). Each cluster has
//! `SLO_BENCH_SERIES` series (default 1,000: half `requests_total`, half `errors_total`, by
//! `instance`), scraped every `SLO_BENCH_INTERVAL_S` seconds (default 60) for `SLO_BENCH_DAYS`
//! days (default 30), over `SLO_BENCH_CLUSTERS` clusters (default 100); counters rise by small
//! integers and reset about once a day. At the defaults that is 4.3 billion raw samples: the
//! write takes long and needs disk; smaller settings show the shape of the result quickly.
//!
//! `cargo bench --bench slo_burn_rate` (`-- raw` or `-- rollups` for one side).

use std::time::Instant;

use criterion::Criterion;
use tributary_query::{Engine, QueryConfig};
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::rollup::Resolution;
use tributary_storage::types::{Labels, Sample, Series};

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z: the history ends here.
const END: i64 = 1_767_225_600_000;

const BURN_RATE: &str = "sum by (cluster) (rate(errors_total[30d])) / sum by (cluster) (rate(requests_total[30d]))";

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One cluster's series over one UTC day.
fn day_of(cluster: usize, series: i64, interval_ms: i64, day_start: i64) -> Vec<Series> {
    (0..series)
        .map(|i| {
            let name = if i % 2 == 0 { "requests_total" } else { "errors_total" };
            let instance = (i / 2).to_string();
            let cluster = format!("cluster-{cluster:03}");
            let labels = Labels::from_pairs(&[("__name__", name), ("cluster", &cluster), ("instance", &instance)]);
            let step = if i % 2 == 0 { 7 } else { 1 };
            let mut state = (cluster.len() as i64 * 31 + i * 17 + day_start / DAY_MS) as u64;
            let mut value = 0.0;
            let samples = (0..DAY_MS / interval_ms)
                .map(|k| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    value = if (state >> 40).is_multiple_of(1_440) {
                        0.0
                    } else {
                        value + ((state >> 33) % step) as f64
                    };
                    Sample::new(day_start + k * interval_ms + (i % 1000), value)
                })
                .collect();
            Series::new(labels, samples)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let clusters = env("SLO_BENCH_CLUSTERS", 100) as usize;
    let series = env("SLO_BENCH_SERIES", 1_000);
    let interval_ms = env("SLO_BENCH_INTERVAL_S", 60) * 1000;
    let days = env("SLO_BENCH_DAYS", 30);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir.path()))
        .expect("storage");
    let started = Instant::now();
    for d in 0..days {
        let day_start = END - (days - d) * DAY_MS;
        for cluster in 0..clusters {
            let day = day_of(cluster, series, interval_ms, day_start);
            rt.block_on(storage.write_metrics(&day)).expect("write raw");
            for res in Resolution::ALL {
                rt.block_on(storage.write_rollups(res, &day)).expect("write rollups");
            }
        }
    }
    eprintln!(
        "slo_burn_rate: {clusters} clusters x {series} series x {days} days written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut raw_cfg = QueryConfig::default();
    raw_cfg.rollups.enabled = false;
    raw_cfg.max_samples = usize::MAX;
    let sides = [("rollups", QueryConfig::default()), ("raw", raw_cfg)];
    for (name, cfg) in sides {
        let engine = Engine::new(storage.source(), cfg);
        let once = rt
            .block_on(engine.range_query(BURN_RATE, END, END, HOUR_MS, None))
            .expect("query");
        eprintln!("slo_burn_rate: {name} reads tier {}", once.tier.name());
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        g.bench_function("burn_rate_instant", |b| {
            b.iter(|| {
                rt.block_on(engine.range_query(BURN_RATE, END, END, HOUR_MS, None))
                    .expect("query")
            })
        });
        g.bench_function("burn_rate_30d_range_1h", |b| {
            b.iter(|| {
                rt.block_on(engine.range_query(BURN_RATE, END - 30 * DAY_MS, END, HOUR_MS, None))
                    .expect("query")
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
