//! Issue 17's SLO target: the rules `tributary slo generate` makes for one 30-day SLO over 100
//! clusters, each group evaluated as the ruler evaluates it (every rule's query at one instant
//! through the same [`Engine`], in order), timed per group, cold and warm.
//!
//! The history is `slo_burn_rate`'s (`common/slo_history.rs`): raw files and the rollups of every
//! resolution, one transaction per UTC day. One service per cluster: `SLO_RULES_SERIES` series
//! (default 40: 20 instances, each with `requests_total` and `errors_total`), scraped every 60 s
//! for `SLO_RULES_DAYS` days (default 30) over `SLO_RULES_CLUSTERS` clusters (default 100).
//! `SLO_RULES_DIR` keeps the data directory (a later run with the same settings skips the write);
//! `SLO_RULES_WARM_RUNS` (default 3) warm passes.
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

/// One pass: every group's rules in order at `t`; per group the summed time, the series
/// answered, and the first error.
fn pass(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    groups: &[Group],
    t: i64,
) -> Vec<(Duration, usize, Option<String>)> {
    groups
        .iter()
        .map(|g| {
            let mut total = Duration::ZERO;
            let mut series = 0;
            let mut error = None;
            for expr in &g.exprs {
                let started = Instant::now();
                // One step: planned as the instant query the ruler runs (same tier choice).
                let answer = rt.block_on(engine.range_query(expr, t, t, 60_000, None));
                total += started.elapsed();
                match answer {
                    Ok(a) => {
                        if let tributary_query::Value::Matrix(m) = a.value {
                            series += m.len();
                        }
                    }
                    Err(e) => {
                        error.get_or_insert_with(|| format!("{expr}: {e}"));
                    }
                }
            }
            (total, series, error)
        })
        .collect()
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let clusters = env("SLO_RULES_CLUSTERS", 100);
    let series = env("SLO_RULES_SERIES", 40);
    let days = env("SLO_RULES_DAYS", 30);
    let warm_runs = env("SLO_RULES_WARM_RUNS", 3).max(1) as usize;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var("SLO_RULES_DIR").map_or_else(|_| temp.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(&dir).expect("data dir");
    write_history(&rt, &dir, Write::All, [clusters, series, 60_000, days]);

    let groups = groups();
    for g in &groups {
        eprintln!("slo_rules: group {} has {} rules", g.name, g.exprs.len());
    }
    let lifted = QueryConfig {
        max_samples: usize::MAX,
        timeout: Duration::from_secs(3600),
        ..QueryConfig::default()
    };
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
            let mut warm: Vec<Vec<(Duration, usize, Option<String>)>> =
                (0..warm_runs).map(|_| pass(&rt, &engine, &groups, t)).collect();
            for (i, g) in groups.iter().enumerate() {
                warm.sort_by_key(|w| w[i].0);
                let (c, n, error) = &cold[i];
                eprintln!(
                    "slo_rules: {instant:9} {config:7} {:40} cold {:7.3}s warm median {:7.3}s min {:7.3}s series {n:4}{}",
                    g.name,
                    c.as_secs_f64(),
                    warm[warm.len() / 2][i].0.as_secs_f64(),
                    warm[0][i].0.as_secs_f64(),
                    error.as_ref().map_or(String::new(), |e| format!(" ERROR {e}")),
                );
            }
            eprintln!("slo_rules: peak RSS so far {} MiB", peak_rss_mib());
            if cold.iter().all(|(_, _, e)| e.is_none()) {
                // Nothing refused: the lifted limits would time the same work again.
                break;
            }
        }
    }
}
