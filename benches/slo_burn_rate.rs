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
//! resolution), `rollups` (rollups of every resolution, no raw files) or `1h` (only the rollups
//! this query reads, 1-hour rows and 1-day summaries: the full-size history without 4.3
//! billion raw samples stored);
//! `SLO_BENCH_DIR` keeps the data directory, so later runs with the same settings skip the
//! write; `SLO_BENCH_WARM_RUNS` (default 5) warm repetitions (the `rollups+results_cache` side
//! with `query.results_cache` on: its warm runs are answered from the cache, and
//! `SLO_BENCH_SLIDES` (default 4) last runs of the range query, each a step later than the one
//! before as a dashboard's refresh, evaluate one step each); `SLO_BENCH_QUERY` (`instant` or
//! `range`) runs one query alone.
//!
//! Each side and query is timed **cold** (a fresh `Storage` opened on the directory: manifest
//! loaded, no footer or other cache of this process; the OS page cache is not dropped) and
//! then **warm** (the same engine again, median and fastest of the warm runs). The peak RSS is
//! printed after each side, and the object-store GET requests of the cold run and of each warm
//! run (what a query costs on S3).
//!
//! `cargo bench --bench slo_burn_rate` (`-- raw` or `-- rollups` for one side).

#[path = "common/slo_history.rs"]
mod slo_history;

use std::time::{Duration, Instant};

use tributary_query::{Engine, QueryConfig, Value};
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;

use slo_history::{Write, env, peak_rss_mib, write_history};

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DAY_MS: i64 = slo_history::DAY_MS;
const HOUR_MS: i64 = 3_600_000;
const END: i64 = slo_history::END;

const BURN_RATE: &str = "sum by (cluster) (rate(errors_total[30d])) / sum by (cluster) (rate(requests_total[30d]))";

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
    let slides = env("SLO_BENCH_SLIDES", 4);
    let write = match std::env::var("SLO_BENCH_WRITE").as_deref() {
        Ok("rollups") => Write::Rollups,
        Ok("1h") => Write::OneHour,
        _ => Write::All,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("SLO_BENCH_DIR").map_or_else(|_| temp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).expect("data dir");
    write_history(&rt, &dir, write, [clusters, series, interval_ms, days, 0]);

    let mut raw_cfg = QueryConfig::default();
    raw_cfg.rollups.enabled = false;
    raw_cfg.max_samples = usize::MAX;
    // The raw 30-day range takes longer than the default two minutes at 10 clusters already.
    raw_cfg.timeout = Duration::from_secs(3600);
    // The rollups side runs with the defaults: at full size the range query reads 75 million
    // buckets, above `query.max_samples` (50 million), but a cluster at a time
    // (`query.part_samples`), each part under the limit.
    let rollups_cfg = QueryConfig::default();
    // The same with the results cache on (`query.results_cache`): warm runs repeat the query
    // as a dashboard's refresh does; a last run slides the range one step later.
    let mut cached_cfg = rollups_cfg.clone();
    cached_cfg.results_cache.max_bytes = 256 << 20;
    let sides = [
        ("rollups", rollups_cfg),
        ("rollups+results_cache", cached_cfg),
        ("raw", raw_cfg),
    ];
    let only_query = std::env::var("SLO_BENCH_QUERY").ok();
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
            if only_query.as_deref().is_some_and(|q| !query.contains(q)) {
                continue;
            }
            let storage = rt
                .block_on(Storage::open(&StorageConfig::default(), &dir))
                .expect("storage");
            let engine = Engine::new(storage.source(), cfg.clone());
            let run_at = |start: i64, end: i64| {
                let t = Instant::now();
                let r = rt
                    .block_on(engine.range_query(BURN_RATE, start, end, HOUR_MS, None))
                    .expect("query");
                (t.elapsed(), r)
            };
            let run = || run_at(start, END);
            let gets = || storage.request_counts().get;
            let before = gets();
            let (cold, first) = run();
            let cold_gets = gets() - before;
            let before = gets();
            let mut warm: Vec<Duration> = (0..warm_runs).map(|_| run().0).collect();
            let warm_gets = (gets() - before) / warm_runs as u64;
            warm.sort();
            let (n, points, total) = shape(&first.value);
            eprintln!(
                "slo_burn_rate: {name:7} {query:20} tier {:3} series {n:3} points {points:6} sum {total:.6} \
                 cold {} ({cold_gets} GET) warm median {} min {} ({warm_runs} runs, {warm_gets} GET each)",
                first.tier.name(),
                secs(cold),
                secs(warm[warm.len() / 2]),
                secs(warm[0]),
            );
            if name.contains("results_cache") && start < END {
                // As a dashboard refreshes: one step later (the first reads the day summaries),
                // then another, and so on.
                for k in 1..=slides {
                    let before = gets();
                    let (slid, _) = run_at(start + k * HOUR_MS, END + k * HOUR_MS);
                    eprintln!(
                        "slo_burn_rate: {name:7} {query:20} slid {k} step(s) later: {} ({} GET)",
                        secs(slid),
                        gets() - before
                    );
                }
            }
        }
        eprintln!("slo_burn_rate: {name}: peak RSS so far {} MiB", peak_rss_mib());
    }
}
