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
//! Further knobs: `SLO_BENCH_WRITE` = `all` (default: raw files and the rollups of every
//! resolution), `rollups` (rollups of every resolution, no raw files) or `1h` (only the 1-hour
//! rollups this query reads: the full-size history without 4.3 billion raw samples stored);
//! `SLO_BENCH_DIR` keeps the data directory, so later runs with the same settings skip the
//! write; `SLO_BENCH_WARM_RUNS` (default 5) warm repetitions.
//!
//! Each side and query is timed **cold** (a fresh `Storage` opened on the directory: manifest
//! loaded, no footer or other cache of this process; the OS page cache is not dropped) and
//! then **warm** (the same engine again, median and fastest of the warm runs). The peak RSS is
//! printed after each side.
//!
//! `cargo bench --bench slo_burn_rate` (`-- raw` or `-- rollups` for one side).

use std::time::{Duration, Instant};

use tributary_query::{Engine, QueryConfig, Value};
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
            // Per scrape, requests rise by 0..=6 and errors by 0 or 1.
            let step = if i % 2 == 0 { 7 } else { 2 };
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

/// What the benchmark writes (`SLO_BENCH_WRITE`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Write {
    All,
    Rollups,
    OneHour,
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn write_history(rt: &tokio::runtime::Runtime, dir: &std::path::Path, write: Write, size: [i64; 4]) {
    let [clusters, series, interval_ms, days] = size;
    let marker = dir.join("slo_bench.done");
    let want = format!("{size:?} {write:?}");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        eprintln!("slo_burn_rate: reusing the history in {}", dir.display());
        return;
    }
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir))
        .expect("storage");
    let resolutions: &[Resolution] = match write {
        Write::OneHour => &[Resolution::OneHour],
        _ => &Resolution::ALL,
    };
    let started = Instant::now();
    for d in 0..days {
        let day_start = END - (days - d) * DAY_MS;
        // One manifest commit per day, as a compaction of that day would make.
        let mut tx = storage.transaction();
        for cluster in 0..clusters as usize {
            let day = day_of(cluster, series, interval_ms, day_start);
            if write == Write::All {
                rt.block_on(tx.write_metrics(&day)).expect("write raw");
            }
            for &res in resolutions {
                rt.block_on(tx.write_rollups(res, &day)).expect("write rollups");
            }
        }
        rt.block_on(tx.commit(None)).expect("commit");
    }
    eprintln!(
        "slo_burn_rate: {clusters} clusters x {series} series x {days} days ({write:?}) written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, want).expect("marker");
}

/// Series and points of an answer, and the sum of its values (to compare raw with rollups).
fn shape(v: &Value) -> (usize, usize, f64) {
    match v {
        Value::Matrix(m) => (
            m.len(),
            m.iter().map(|s| s.samples.len()).sum(),
            m.iter().flat_map(|s| &s.samples).map(|p| p.value).sum(),
        ),
        _ => (0, 0, f64::NAN),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let clusters = env("SLO_BENCH_CLUSTERS", 100);
    let series = env("SLO_BENCH_SERIES", 1_000);
    let interval_ms = env("SLO_BENCH_INTERVAL_S", 60) * 1000;
    let days = env("SLO_BENCH_DAYS", 30);
    let warm_runs = env("SLO_BENCH_WARM_RUNS", 5).max(1) as usize;
    let write = match std::env::var("SLO_BENCH_WRITE").as_deref() {
        Ok("rollups") => Write::Rollups,
        Ok("1h") => Write::OneHour,
        _ => Write::All,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("SLO_BENCH_DIR").map_or_else(|_| temp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).expect("data dir");
    write_history(&rt, &dir, write, [clusters, series, interval_ms, days]);

    let mut raw_cfg = QueryConfig::default();
    raw_cfg.rollups.enabled = false;
    raw_cfg.max_samples = usize::MAX;
    // The raw 30-day range takes longer than the default two minutes at 10 clusters already.
    raw_cfg.timeout = Duration::from_secs(3600);
    // At full size the rollups side reads 75 million buckets, above the default
    // `query.max_samples` (50 million), which each bucket counts towards.
    let rollups_cfg = QueryConfig {
        max_samples: usize::MAX,
        ..QueryConfig::default()
    };
    let sides = [("rollups", rollups_cfg), ("raw", raw_cfg)];
    let queries = [("instant", END), ("30d range, 1h step", END - 30 * DAY_MS)];
    for (name, cfg) in sides {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if name == "raw" && write != Write::All {
            eprintln!("slo_burn_rate: raw: no raw files written (SLO_BENCH_WRITE={write:?}), skipped");
            continue;
        }
        for (query, start) in queries {
            let storage = rt
                .block_on(Storage::open(&StorageConfig::default(), &dir))
                .expect("storage");
            let engine = Engine::new(storage.source(), cfg.clone());
            let run = || {
                let t = Instant::now();
                let r = rt
                    .block_on(engine.range_query(BURN_RATE, start, END, HOUR_MS, None))
                    .expect("query");
                (t.elapsed(), r)
            };
            let (cold, first) = run();
            let mut warm: Vec<Duration> = (0..warm_runs).map(|_| run().0).collect();
            warm.sort();
            let (n, points, total) = shape(&first.value);
            eprintln!(
                "slo_burn_rate: {name:7} {query:20} tier {:3} series {n:3} points {points:6} sum {total:.6} \
                 cold {} warm median {} min {} ({warm_runs} runs)",
                first.tier.name(),
                secs(cold),
                secs(warm[warm.len() / 2]),
                secs(warm[0]),
            );
        }
        eprintln!("slo_burn_rate: {name}: peak RSS so far {} MiB", peak_rss_mib());
    }
}
