//! `tributary-loadgen query run|report`: the command line of the query benchmark.
//!
//! Exit status: 0 when everything ran and agreed; 1 when a query failed on some receiver
//! (error, empty or inconsistent answer); 3 (report only) when all ran but some answers
//! differ from the reference's.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::answer::Tolerance;
use super::{Dialect, TargetRun, WorkloadShape, measurement, report, suite};
use crate::Error;
use crate::workload::Config;

/// Exit status when a query failed somewhere.
pub(crate) const EXIT_FAILED: i32 = 1;
/// Exit status when every query ran but answers differ between receivers.
pub(crate) const EXIT_MISMATCH: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "tributary-loadgen query",
    about = "Time a fixed set of Grafana/SLO queries and compare the answers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suite against one receiver holding the workload; write a result file.
    Run(RunArgs),
    /// Compare result files of several receivers; markdown on stdout, warnings on stderr.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Receiver base URL, e.g. http://127.0.0.1:9090
    #[arg(long)]
    url: String,
    /// Receiver kind, e.g. `prometheus`, `victoria-metrics`, `tributary`.
    #[arg(long)]
    target: String,
    /// Unique name in the report; defaults to --target.
    #[arg(long)]
    label: Option<String>,
    /// What the receiver is, for the report, e.g. "prometheus 2.42.0".
    #[arg(long, default_value = "")]
    receiver_version: String,
    /// How the data is held while queried, for the report.
    #[arg(long, default_value = "")]
    state: String,
    #[arg(long, value_enum, default_value_t = Dialect::Promql)]
    dialect: Dialect,
    // The workload, exactly as it was replayed (see `tributary-loadgen --help`).
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    #[arg(long, default_value_t = 30_000)]
    series: usize,
    #[arg(long, default_value_t = 240)]
    samples: usize,
    #[arg(long, default_value_t = 15)]
    interval_secs: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of the workload's first round, as given to the replay.
    #[arg(long)]
    start_ms: i64,
    #[arg(long, default_value_t = 60)]
    step_secs: i64,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// PID of the receiver: report its CPU time per query.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Run only this query of the suite (repeatable; by name, e.g. `error_ratio`); all by default.
    #[arg(long = "only")]
    only: Vec<String>,
    /// Result file (JSON).
    #[arg(long)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Result files written by `query run`.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Label of the receiver whose answers are the reference; the first file's by default.
    #[arg(long)]
    reference: Option<String>,
    /// Receiver kind whose latency is given as ratios to every other receiver (repeatable).
    #[arg(long = "subject")]
    subjects: Vec<String>,
    /// Relative float tolerance between PromQL receivers.
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    /// Absolute float tolerance (for values near zero).
    #[arg(long, default_value_t = 1e-9)]
    absolute_tolerance: f64,
    /// Relative tolerance for a MetricsQL receiver on rate-based queries.
    #[arg(long, default_value_t = 0.05)]
    metricsql_tolerance: f64,
    /// Differences spelled out per query and receiver.
    #[arg(long, default_value_t = 5)]
    max_examples: usize,
    /// Also write the comparison as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs `tributary-loadgen query ...`; `args` starts with `query`. Returns the exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    match Cli::parse_from(args).command {
        Command::Run(a) => run(a),
        Command::Report(a) => report(a),
    }
}

fn run(a: RunArgs) -> Result<i32, Error> {
    let cfg = Config {
        clusters: a.clusters,
        series_per_cluster: a.series,
        samples_per_series: a.samples,
        interval_ms: a.interval_secs.saturating_mul(1000),
        start_ms: a.start_ms,
        seed: a.seed,
        ..Config::default()
    };
    cfg.validate()?;
    let window = suite::Window::for_workload(&cfg, a.step_secs.saturating_mul(1000))?;
    let mut queries = suite::suite();
    if let Some(unknown) = a.only.iter().find(|n| !queries.iter().any(|q| &q.name == *n)) {
        return Err(Error::InvalidConfig(format!(
            "--only {unknown:?}: no such query in the suite"
        )));
    }
    if !a.only.is_empty() {
        queries.retain(|q| a.only.contains(&q.name));
    }
    let settings = measurement::Settings {
        base_url: a.url.clone(),
        warmup: a.warmup,
        runs: a.runs,
        server_pid: a.server_pid,
        timeout: Duration::from_secs(a.timeout_secs),
    };
    let label = a.label.unwrap_or_else(|| a.target.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let results = runtime.block_on(measurement::run_suite(&settings, &window, &queries))?;
    for q in &results {
        match (&q.error, q.stats) {
            (None, Some(s)) => eprintln!(
                "{label}: {:<20} median {:>9.1} ms  min {:>9.1}  p90 {:>9.1}  ({} items, {} points)",
                q.query.name, s.median, s.min, s.p90, q.items, q.points
            ),
            (e, _) => eprintln!(
                "{label}: {:<20} FAILED: {}",
                q.query.name,
                e.as_deref().unwrap_or("no timings")
            ),
        }
    }
    let run = TargetRun {
        label,
        target: a.target,
        version: a.receiver_version,
        state: a.state,
        dialect: a.dialect,
        base_url: a.url,
        workload: WorkloadShape {
            clusters: cfg.clusters,
            series_per_cluster: cfg.series_per_cluster,
            samples_per_series: cfg.samples_per_series,
            interval_ms: cfg.interval_ms,
            start_ms: cfg.start_ms,
            seed: cfg.seed,
        },
        window,
        warmup: a.warmup,
        runs: a.runs,
        queries: results,
    };
    write_json(&a.output, &run)?;
    Ok(if run.failures() > 0 { EXIT_FAILED } else { 0 })
}

fn report(a: ReportArgs) -> Result<i32, Error> {
    let runs = a
        .files
        .iter()
        .map(|path| {
            let text = std::fs::read(path).map_err(|source| Error::File {
                path: path.display().to_string(),
                source,
            })?;
            serde_json::from_slice::<TargetRun>(&text).map_err(|source| Error::ResultFormat {
                path: path.display().to_string(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = report::Settings {
        reference: a.reference,
        subjects: a.subjects,
        tolerance: Tolerance {
            relative: a.tolerance,
            absolute: a.absolute_tolerance,
        },
        metricsql_tolerance: Tolerance {
            relative: a.metricsql_tolerance,
            absolute: a.absolute_tolerance,
        },
        max_examples: a.max_examples,
    };
    let report = report::build(&runs, &settings)?;
    for w in report.warnings() {
        eprintln!("{w}");
    }
    std::io::stdout()
        .lock()
        .write_all(report.markdown().as_bytes())
        .map_err(|source| Error::File {
            path: "stdout".into(),
            source,
        })?;
    if let Some(path) = &a.json {
        write_json(path, &report)?;
    }
    Ok(if report.failures > 0 {
        EXIT_FAILED
    } else if report.mismatches > 0 {
        EXIT_MISMATCH
    } else {
        0
    })
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|source| Error::ResultFormat {
        path: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, format!("{text}\n")).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })
}
