//! The SLO benches' history: `requests_total` and `errors_total` counters by `instance` per
//! cluster, written straight through the storage writer one (cluster, UTC day) at a time, as a
//! compaction of completed days would leave them (raw files and the rollups of every
//! resolution, or only some). Included by `slo_burn_rate` and `slo_rules` with `#[path]`.

use std::time::Instant;

use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::rollup::Resolution;
use tributary_storage::types::{Labels, Sample, Series};

pub(crate) const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z: the history ends here.
pub(crate) const END: i64 = 1_767_225_600_000;

/// An integer setting from the environment, `default` when unset or not a number.
pub(crate) fn env(name: &str, default: i64) -> i64 {
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
#[allow(
    dead_code,
    reason = "slo_rules writes everything; only slo_burn_rate picks the others"
)]
pub(crate) enum Write {
    All,
    Rollups,
    OneHour,
}

/// The process's peak resident set (VmHWM), in MiB.
pub(crate) fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

/// Writes `size` = `[clusters, series per cluster, scrape interval ms, days, raw days]` of
/// history ending at [`END`] into `dir`, one transaction per UTC day; the last `raw days` get no
/// rollups (as a live store holds them: the compactor rolls up a day once it is older than
/// `storage.rollups.after`, 24 h by default). A marker file skips the write when `dir` already
/// holds the same history, and any other content of `dir` is deleted first.
pub(crate) fn write_history(rt: &tokio::runtime::Runtime, dir: &std::path::Path, write: Write, size: [i64; 5]) {
    let [clusters, series, interval_ms, days, raw_days] = size;
    // Day summaries (`metrics_1d`) beside the hourly rows, as the compactor writes them.
    let resolutions: &[Resolution] = match write {
        Write::OneHour => &[Resolution::OneHour, Resolution::OneDay],
        _ => &Resolution::ALL,
    };
    let marker = dir.join("slo_bench.done");
    let want = match raw_days {
        0 => format!("{:?} {write:?} {resolutions:?}", &size[..4]),
        _ => format!("{size:?} {write:?} {resolutions:?}"),
    };
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        eprintln!("slo history: reusing the history in {}", dir.display());
        return;
    }
    // Another history (or a write cut short): writing beside it would double every day.
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("clear the old history");
        std::fs::create_dir_all(dir).expect("history dir");
    }
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir))
        .expect("storage");
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
            for &res in resolutions.iter().filter(|_| d < days - raw_days) {
                rt.block_on(tx.write_rollups(res, &day)).expect("write rollups");
            }
        }
        rt.block_on(tx.commit(None)).expect("commit");
    }
    eprintln!(
        "slo history: {clusters} clusters x {series} series x {days} days ({write:?}) written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, want).expect("marker");
}
