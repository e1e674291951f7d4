//! Issue 17's SLO target: the rules `tributary slo generate` makes for one 30-day SLO over 100
//! clusters, each group evaluated as the ruler evaluates it (every rule's query at one instant
//! through the same [`Engine`], in order), timed per group, cold and warm.
//!
//! The history is `slo_burn_rate`'s (`common/slo_history.rs`): raw files and the rollups of every
//! resolution, one transaction per UTC day. One service per cluster: `SLO_RULES_SERIES` series
//! (default 40: 20 instances, each with `requests_total` and `errors_total`), scraped every 60 s
//! for `SLO_RULES_DAYS` days (default 30) over `SLO_RULES_CLUSTERS` clusters (default 100).
//! `SLO_RULES_DIR` keeps the data directory (a later run with the same settings skips the write);
//! `SLO_RULES_WARM_RUNS` (default 3) warm passes. `SLO_RULES_RAW_DAYS` (default 0) leaves the
//! last days without rollups, as a live store holds them (the compactor rolls a day up once it
//! is older than `storage.rollups.after`, 24 h: at the unaligned instant, the last two days).
//!
//! The spec is Sloth's `prometheus/v1` with `sum by (cluster) (rate(x[{{.window}}]))` queries and
//! both alerts; its rules come from [`tributary_query::slo::generate`], exactly what the ruler
//! loads. Recording-rule outputs are not written back, so the meta and alert groups read no
//! SLI series: their figures are the cost of their selectors over an empty result only.
//!
//! Two evaluation instants: **aligned** (midnight, the end of the history: every window ends on
//! an hour, so the planner may read rollups) and **unaligned** (37 s before it: where a ruler's
//! evaluation lands unless its group's phase happens to fall on the hour; rollup tiers need every
//! window end on a multiple of their width, so every selector there reads raw samples). Each
//! instant is run with the default `QueryConfig` (a refusal is printed as the rule's result) and,
//! when something was refused, again with `max_samples` and `timeout` lifted, for the time.
//! Cold: a fresh `Storage` opened on the directory (no cache of this process; the OS page cache
//! is not dropped), the first pass over every group; warm: the same engine again (median).
//! **minutely** (first, or alone with the filter `minutely`): a ruler's hour up to the unaligned
//! instant, one evaluation a minute after a first one not counted, with each group's median,
//! p99 and the evaluation right after the hour boundary (new edge files, a new raw hour).
//!
//! `cargo bench --bench slo_rules` (`-- aligned` or `-- unaligned` for one instant).

#[path = "common/slo_history.rs"]
mod slo_history;

use std::time::{Duration, Instant};

use tributary_query::{Engine, QueryConfig};
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;

use slo_history::{END, Write, env, peak_rss_mib, write_history};

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SPEC: &str = r#"
version: "prometheus/v1"
service: "checkout"
labels: {team: shop}
slos:
  - name: "requests-availability"
    objective: 99.9
    period: 30d
    sli:
      events:
        error_query: sum by (cluster) (rate(errors_total[{{.window}}]))
        total_query: sum by (cluster) (rate(requests_total[{{.window}}]))
    alerting:
      name: CheckoutAvailability
      page_alert: {labels: {severity: page}}
      ticket_alert: {labels: {severity: ticket}}
"#;

/// A generated group: its name and its rules' expressions, in order.
struct Group {
    name: String,
    exprs: Vec<String>,
}

fn groups() -> Vec<Group> {
    let text = tributary_query::slo::generate(SPEC).expect("the spec generates");
    let file: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("generated YAML");
    file["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .map(|g| Group {
            name: g["name"].as_str().expect("name").to_string(),
            exprs: g["rules"]
                .as_sequence()
                .expect("rules")
                .iter()
                .map(|r| r["expr"].as_str().expect("expr").to_string())
                .collect(),
        })
        .collect()
}

/// What one rule's evaluation took and answered (series), or its error.
type Timed = (Duration, usize, Option<String>);

/// One pass: every group's rules in order at `t`.
fn pass(rt: &tokio::runtime::Runtime, engine: &Engine, groups: &[Group], t: i64) -> Vec<Vec<Timed>> {
    groups
        .iter()
        .map(|g| {
            g.exprs
                .iter()
                .map(|expr| {
                    let started = Instant::now();
                    // One step: planned as the instant query the ruler runs (same tier choice).
                    let answer = rt.block_on(engine.range_query(expr, t, t, 60_000, None));
                    let took = started.elapsed();
                    match answer {
                        Ok(a) => match a.value {
                            tributary_query::Value::Matrix(m) => (took, m.len(), None),
                            _ => (took, 0, None),
                        },
                        Err(e) => (took, 0, Some(e.to_string())),
                    }
                })
                .collect()
        })
        .collect()
}

/// A group's evaluation time (its rules' sum), series answered and first error.
fn total(rules: &[Timed]) -> Timed {
    (
        rules.iter().map(|r| r.0).sum(),
        rules.iter().map(|r| r.1).sum(),
        rules.iter().find_map(|r| r.2.clone()),
    )
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let clusters = env("SLO_RULES_CLUSTERS", 100);
    let series = env("SLO_RULES_SERIES", 40);
    let days = env("SLO_RULES_DAYS", 30);
    let raw_days = env("SLO_RULES_RAW_DAYS", 0).clamp(0, days);
    let warm_runs = env("SLO_RULES_WARM_RUNS", 3).max(1) as usize;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("SLO_RULES_DIR").map_or_else(|_| temp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).expect("data dir");
    write_history(&rt, &dir, Write::All, [clusters, series, 60_000, days, raw_days]);

    let groups = groups();
    for g in &groups {
        eprintln!("slo_rules: group {} has {} rules", g.name, g.exprs.len());
    }
    let lifted = QueryConfig {
        max_samples: usize::MAX,
        timeout: Duration::from_secs(3600),
        ..QueryConfig::default()
    };
    if filter.is_empty() || filter.iter().any(|f| f == "minutely") {
        minutely(&rt, &dir, &groups);
    }
    for (instant, t) in [("aligned", END), ("unaligned", END - 37_000)] {
        if !filter.is_empty() && !filter.iter().any(|f| instant == f.as_str()) {
            continue;
        }
        for (config, cfg) in [("default", QueryConfig::default()), ("lifted", lifted.clone())] {
            let storage = rt
                .block_on(Storage::open(&StorageConfig::default(), &dir))
                .expect("storage");
            let engine = Engine::new(storage.source(), cfg);
            let cold = pass(&rt, &engine, &groups, t);
            let warm: Vec<Vec<Vec<Timed>>> = (0..warm_runs).map(|_| pass(&rt, &engine, &groups, t)).collect();
            for (i, g) in groups.iter().enumerate() {
                let (c, n, error) = total(&cold[i]);
                let w: Vec<Duration> = warm.iter().map(|p| total(&p[i]).0).collect();
                eprintln!(
                    "slo_rules: {instant:9} {config:7} {:56} cold {:7.3}s warm median {:7.3}s min {:7.3}s series {n:4}{}",
                    g.name,
                    c.as_secs_f64(),
                    median(w.clone()).as_secs_f64(),
                    w.iter().min().copied().unwrap_or_default().as_secs_f64(),
                    error.map_or(String::new(), |e| format!(" ERROR {e}")),
                );
                // Where a group's time goes: each rule, cold and warm median.
                for (j, expr) in g.exprs.iter().enumerate() {
                    let w: Vec<Duration> = warm.iter().map(|p| p[i][j].0).collect();
                    eprintln!(
                        "slo_rules:     rule {j:2} cold {:7.3}s warm {:7.3}s  {}",
                        cold[i][j].0.as_secs_f64(),
                        median(w).as_secs_f64(),
                        expr.chars().take(110).collect::<String>(),
                    );
                }
            }
            eprintln!("slo_rules: peak RSS so far {} MiB", peak_rss_mib());
            if cold.iter().flatten().all(|(_, _, e)| e.is_none()) {
                // Nothing refused: the lifted limits would time the same work again.
                break;
            }
        }
    }
}

/// A ruler's hour: after a first (cold, not counted) evaluation, one every minute for 61
/// minutes at the unaligned phase, ending where the `unaligned` instant is. The second crosses
/// into the next hour, where every window's edges fall in new files and the hour just ended is
/// a new raw file to summarise; the others move within the same files.
fn minutely(rt: &tokio::runtime::Runtime, dir: &std::path::Path, groups: &[Group]) {
    let storage = rt
        .block_on(Storage::open(&StorageConfig::default(), dir))
        .expect("storage");
    let engine = Engine::new(storage.source(), QueryConfig::default());
    let first = END - 37_000 - 61 * 60_000;
    pass(rt, &engine, groups, first);
    let mut per_group: Vec<Vec<Duration>> = vec![Vec::new(); groups.len()];
    for k in 1..=61 {
        for (i, g) in pass(rt, &engine, groups, first + k * 60_000).iter().enumerate() {
            let (took, _, error) = total(g);
            if let Some(e) = error {
                eprintln!("slo_rules: minutely {} ERROR {e}", groups[i].name);
            }
            per_group[i].push(took);
        }
    }
    for (g, times) in groups.iter().zip(per_group) {
        // 22:59:23 -> 23:00:23: the evaluation after the hour boundary.
        let rollover = times[1];
        let mut sorted = times.clone();
        sorted.sort();
        eprintln!(
            "slo_rules: minutely  {:56} median {:7.3}s p99 {:7.3}s max {:7.3}s at the hour {:7.3}s ({} evaluations)",
            g.name,
            sorted[sorted.len() / 2].as_secs_f64(),
            sorted[(sorted.len() * 99).div_ceil(100) - 1].as_secs_f64(),
            sorted[sorted.len() - 1].as_secs_f64(),
            rollover.as_secs_f64(),
            sorted.len(),
        );
    }
    eprintln!("slo_rules: peak RSS so far {} MiB", peak_rss_mib());
}
