//! Several receivers' [`TargetRun`]s → one comparison: latency tables with ratios, and every
//! answer checked against the reference receiver's.
//!
//! Comparison rules: a PromQL receiver must match the reference (Prometheus) to
//! `tolerance` on every point. A MetricsQL receiver (VictoriaMetrics) must match the same way
//! on everything that does not depend on `rate()`. On rate-based queries its values are held
//! to `metricsql_tolerance` and only from `data start + rate range + interval` on, since
//! MetricsQL's `rate()` uses the sample before the window and does not extrapolate, which
//! differs by design on partial windows at the start of the data; what still differs there
//! (typically `topk` picking another pod where two rates are within a few per cent) is
//! reported as a dialect difference, apart from the mismatches.

use std::fmt::Write as _;

use serde::Serialize;

use super::answer::{self, Differences, Rules, Tolerance};
use super::measurement::Stats;
use super::{Dialect, TargetRun, Window, WorkloadShape};
use crate::Error;

/// How to compare.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Label of the reference receiver; the first run when `None`.
    pub reference: Option<String>,
    /// Targets (receiver kinds) whose latency is expressed as ratios to every other receiver.
    pub subjects: Vec<String>,
    pub tolerance: Tolerance,
    pub metricsql_tolerance: Tolerance,
    /// Differences spelled out per (query, receiver); all are counted.
    pub max_examples: usize,
}

/// One receiver's figures for one query.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cell {
    pub query: String,
    pub receiver: String,
    pub error: Option<String>,
    pub stats: Option<Stats>,
    pub server_cpu_ms_per_query: Option<f64>,
    pub response_bytes: usize,
    /// Runs whose answer differed from the first run's only in the last bits of a float.
    pub float_noise_runs: usize,
    pub items: usize,
    pub points: usize,
}

/// One receiver's answer to one query held against the reference's.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    pub query: String,
    pub receiver: String,
    pub reference: String,
    pub tolerance: Tolerance,
    pub compare_from_ms: Option<i64>,
    /// A MetricsQL receiver on a rate-based query: differences beyond the loose tolerance
    /// (e.g. `topk` ranking pods differently where their rates are close) follow from the
    /// dialect, not from a bug; they are listed but counted apart from mismatches.
    pub dialect_bound: bool,
    pub differences: Differences,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Receiver {
    pub label: String,
    pub target: String,
    pub version: String,
    pub state: String,
    pub dialect: Dialect,
}

/// The whole comparison; serialises to the JSON report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub reference: String,
    pub workload: WorkloadShape,
    pub window: Window,
    pub warmup: usize,
    pub runs: usize,
    pub tolerance: Tolerance,
    pub metricsql_tolerance: Tolerance,
    pub receivers: Vec<Receiver>,
    pub queries: Vec<super::Query>,
    pub cells: Vec<Cell>,
    pub comparisons: Vec<Comparison>,
    /// (query, receiver) pairs whose answer differs from the reference's where it must not.
    pub mismatches: usize,
    /// (query, receiver) pairs that differ only where the receiver's dialect defines the
    /// answer differently (see [`Comparison::dialect_bound`]).
    pub dialect_differences: usize,
    /// (query, receiver) pairs that failed (error, empty or inconsistent answer).
    pub failures: usize,
    #[serde(skip)]
    subjects: Vec<String>,
}

/// Compares `runs`; errors only when they cannot be compared at all.
pub(crate) fn build(runs: &[TargetRun], settings: &Settings) -> Result<Report, Error> {
    let first = runs.first().ok_or_else(|| Error::Report("no result files".into()))?;
    for r in runs {
        if r.window != first.window || r.workload != first.workload {
            return Err(Error::Report(format!(
                "{} ran over a different workload or window than {}; rerun all receivers together",
                r.label, first.label
            )));
        }
        let names = |t: &TargetRun| t.queries.iter().map(|q| q.query.clone()).collect::<Vec<_>>();
        if names(r) != names(first) {
            return Err(Error::Report(format!(
                "{} and {} ran different query suites",
                r.label, first.label
            )));
        }
        if runs.iter().filter(|o| o.label == r.label).count() > 1 {
            return Err(Error::Report(format!("two result files are labelled {}", r.label)));
        }
    }
    let reference = match &settings.reference {
        Some(label) => runs
            .iter()
            .find(|r| &r.label == label)
            .ok_or_else(|| Error::Report(format!("reference {label} is not among the results")))?,
        None => first,
    };
    let mut cells = vec![];
    let mut comparisons = vec![];
    for (i, query) in first.queries.iter().map(|q| &q.query).enumerate() {
        for r in runs {
            let q = &r.queries[i];
            cells.push(Cell {
                query: query.name.clone(),
                receiver: r.label.clone(),
                error: (!q.ok()).then(|| q.error.clone().unwrap_or_else(|| "no answer".into())),
                stats: q.stats,
                server_cpu_ms_per_query: q.server_cpu_ms_per_query,
                response_bytes: q.response_bytes,
                float_noise_runs: q.float_noise_runs,
                items: q.items,
                points: q.points,
            });
        }
        let Some(expected) = &reference.queries[i].answer else {
            continue;
        };
        for r in runs.iter().filter(|r| r.label != reference.label) {
            let Some(got) = &r.queries[i].answer else {
                continue;
            };
            let loose = r.dialect == Dialect::Metricsql && query.rate_range_ms.is_some();
            let rules = Rules {
                tolerance: if loose {
                    settings.metricsql_tolerance
                } else {
                    settings.tolerance
                },
                compare_from_ms: query
                    .rate_range_ms
                    .filter(|_| loose)
                    .map(|range| first.window.data_start_ms + range + first.window.interval_ms),
            };
            let differences = answer::compare(
                expected,
                got,
                &rules,
                (&reference.label, &r.label),
                settings.max_examples,
            );
            comparisons.push(Comparison {
                query: query.name.clone(),
                receiver: r.label.clone(),
                reference: reference.label.clone(),
                tolerance: rules.tolerance,
                compare_from_ms: rules.compare_from_ms,
                dialect_bound: loose,
                differences,
            });
        }
    }
    Ok(Report {
        reference: reference.label.clone(),
        workload: first.workload,
        window: first.window,
        warmup: first.warmup,
        runs: first.runs,
        tolerance: settings.tolerance,
        metricsql_tolerance: settings.metricsql_tolerance,
        receivers: runs
            .iter()
            .map(|r| Receiver {
                label: r.label.clone(),
                target: r.target.clone(),
                version: r.version.clone(),
                state: r.state.clone(),
                dialect: r.dialect,
            })
            .collect(),
        queries: first.queries.iter().map(|q| q.query.clone()).collect(),
        mismatches: comparisons
            .iter()
            .filter(|c| c.differences.count > 0 && !c.dialect_bound)
            .count(),
        dialect_differences: comparisons
            .iter()
            .filter(|c| c.differences.count > 0 && c.dialect_bound)
            .count(),
        failures: cells.iter().filter(|c| c.error.is_some()).count(),
        cells,
        comparisons,
        subjects: settings.subjects.clone(),
    })
}

impl Report {
    fn cell(&self, query: &str, receiver: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.query == query && c.receiver == receiver)
    }

    fn median(&self, query: &str, receiver: &str) -> Option<f64> {
        self.cell(query, receiver)
            .filter(|c| c.error.is_none())
            .and_then(|c| c.stats)
            .map(|s| s.median)
    }

    /// (subject, other) receiver label pairs that get a ratio column.
    fn ratio_pairs(&self) -> Vec<(&Receiver, &Receiver)> {
        let is_subject = |r: &Receiver| self.subjects.contains(&r.target);
        let mut pairs = vec![];
        for s in self.receivers.iter().filter(|r| is_subject(r)) {
            for o in self.receivers.iter().filter(|r| !is_subject(r)) {
                pairs.push((s, o));
            }
        }
        pairs
    }

    /// Warnings for stderr: one line per failure and per mismatching (query, receiver).
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = vec![];
        for c in self.cells.iter().filter(|c| c.error.is_some()) {
            out.push(format!(
                "FAILED: {} on {}: {}",
                c.query,
                c.receiver,
                c.error.as_deref().unwrap_or_default()
            ));
        }
        for c in self.comparisons.iter().filter(|c| c.differences.count > 0) {
            out.push(format!(
                "{}: {} on {} differs from {} in {} of {} compared items; first: {}",
                if c.dialect_bound {
                    "DIALECT DIFFERENCE (not counted as a mismatch)"
                } else {
                    "MISMATCH"
                },
                c.query,
                c.receiver,
                c.reference,
                c.differences.count,
                c.differences.compared,
                c.differences.examples.first().map(String::as_str).unwrap_or("-")
            ));
        }
        out
    }

    /// The markdown tables (the caller adds the machine and the command).
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &self.window;
        let wl = &self.workload;
        let _ = writeln!(
            md,
            "{} clusters x {} series x {} samples at {} s; range queries over {} at a {} s step ({} points); \
             median of {} runs after {} warm-up, client wall time until the whole response is read.\n",
            wl.clusters,
            wl.series_per_cluster,
            wl.samples_per_series,
            wl.interval_ms / 1000,
            human_span(w.end_ms - w.start_ms),
            w.step_ms / 1000,
            w.points(),
            self.runs,
            self.warmup
        );
        let pairs = self.ratio_pairs();
        let mut header = String::from("| query |");
        let mut rule = String::from("|---|");
        for r in &self.receivers {
            let _ = write!(header, " {} ms |", r.label);
            rule.push_str("---:|");
        }
        for (s, o) in &pairs {
            let _ = write!(header, " {} / {} |", s.label, o.label);
            rule.push_str("---:|");
        }
        header.push_str(" answers |");
        rule.push_str("---|");
        let _ = writeln!(md, "{header}\n{rule}");
        for q in &self.queries {
            let mut row = format!("| {} |", q.name);
            for r in &self.receivers {
                match self.cell(&q.name, &r.label) {
                    Some(c) if c.error.is_none() => {
                        let _ = write!(row, " {} |", c.stats.map_or("n/a".into(), |s| ms(s.median)));
                    }
                    _ => row.push_str(" **FAILED** |"),
                }
            }
            for (s, o) in &pairs {
                let ratio = match (self.median(&q.name, &s.label), self.median(&q.name, &o.label)) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                    _ => "n/a".into(),
                };
                let _ = write!(row, " {ratio} |");
            }
            let _ = writeln!(row, " {} |", self.verdict(&q.name));
            md.push_str(&row);
        }
        md.push('\n');
        let _ = writeln!(
            md,
            "Ratios below 1 mean the first receiver is faster. Reference for answers: {}.\n",
            self.reference
        );

        md.push_str("Details (ms; server CPU is utime+stime of the receiver per query, mean over the timed runs):\n\n");
        md.push_str(
            "| query | receiver | min | median | p90 | max | server CPU ms | response KiB | series/items | points |\n",
        );
        md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for q in &self.queries {
            for r in &self.receivers {
                let Some(c) = self.cell(&q.name, &r.label) else {
                    continue;
                };
                match (&c.error, c.stats) {
                    (None, Some(s)) => {
                        let _ = writeln!(
                            md,
                            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |",
                            q.name,
                            r.label,
                            ms(s.min),
                            ms(s.median),
                            ms(s.p90),
                            ms(s.max),
                            c.server_cpu_ms_per_query.map_or("n/a".into(), |v| format!("{v:.0}")),
                            c.response_bytes as f64 / 1024.0,
                            c.items,
                            c.points
                        );
                    }
                    (e, _) => {
                        let _ = writeln!(
                            md,
                            "| {} | {} | **FAILED**: {} | | | | | | | |",
                            q.name,
                            r.label,
                            escape(e.as_deref().unwrap_or("no timings"))
                        );
                    }
                }
            }
        }
        let noisy: Vec<String> = self
            .cells
            .iter()
            .filter(|c| c.float_noise_runs > 0)
            .map(|c| {
                format!(
                    "{} on {} ({} of {} runs)",
                    c.query,
                    c.receiver,
                    c.float_noise_runs,
                    self.warmup + self.runs
                )
            })
            .collect();
        if !noisy.is_empty() {
            let _ = writeln!(
                md,
                "\nAnswers that changed between runs only in the last bits of a float (summation order of a \
                 parallel aggregation; accepted within relative 1e-12): {}.",
                noisy.join(", ")
            );
        }
        md.push_str("\nQueries:\n\n");
        for q in &self.queries {
            let _ = writeln!(md, "- `{}`: `{}`", q.name, q.request.display());
        }
        md.push_str("\nReceivers:\n\n");
        for r in &self.receivers {
            let _ = writeln!(md, "- {}: {} ({:?}), {}", r.label, r.version, r.dialect, r.state);
        }
        let _ = writeln!(
            md,
            "\nAnswers: every receiver's answer is compared with {}'s: same series (labels), same timestamps, \
             values within relative {:e} (absolute {:e}); MetricsQL receivers on rate-based queries within \
             relative {:e}, from the first step whose 5 m window is preceded by a sample.\n",
            self.reference, self.tolerance.relative, self.tolerance.absolute, self.metricsql_tolerance.relative
        );
        if self.mismatches == 0 && self.failures == 0 && self.dialect_differences == 0 {
            md.push_str("All answers agree.\n");
        } else {
            let _ = writeln!(
                md,
                "**{} mismatch(es), {} failure(s)**; {} difference(s) explained by the MetricsQL dialect:\n",
                self.mismatches, self.failures, self.dialect_differences
            );
            for c in self.cells.iter().filter(|c| c.error.is_some()) {
                let _ = writeln!(
                    md,
                    "- FAILED `{}` on {}: {}",
                    c.query,
                    c.receiver,
                    escape(c.error.as_deref().unwrap_or_default())
                );
            }
            for c in self.comparisons.iter().filter(|c| c.differences.count > 0) {
                let _ = writeln!(
                    md,
                    "- {} `{}`: {} vs {}, {} of {} compared items differ:",
                    if c.dialect_bound {
                        "dialect difference (MetricsQL rate semantics, not counted)"
                    } else {
                        "**MISMATCH**"
                    },
                    c.query,
                    c.receiver,
                    c.reference,
                    c.differences.count,
                    c.differences.compared
                );
                for e in &c.differences.examples {
                    let _ = writeln!(md, "  - {}", escape(e));
                }
            }
        }
        md
    }

    fn verdict(&self, query: &str) -> String {
        let failed: Vec<&str> = self
            .cells
            .iter()
            .filter(|c| c.query == query && c.error.is_some())
            .map(|c| c.receiver.as_str())
            .collect();
        let mut bad: Vec<String> = self
            .comparisons
            .iter()
            .filter(|c| c.query == query && c.differences.count > 0 && !c.dialect_bound)
            .map(|c| format!("{} ({})", c.receiver, c.differences.count))
            .collect();
        let dialect: Vec<String> = self
            .comparisons
            .iter()
            .filter(|c| c.query == query && c.differences.count > 0 && c.dialect_bound)
            .map(|c| format!("{} ({})", c.receiver, c.differences.count))
            .collect();
        let note = if dialect.is_empty() {
            String::new()
        } else {
            format!("; MetricsQL differs: {}", dialect.join(", "))
        };
        let items = self
            .cell(query, &self.reference)
            .filter(|c| c.error.is_none())
            .map_or("n/a".into(), |c| c.items.to_string());
        let verdict = match (failed.is_empty(), bad.is_empty()) {
            (true, true) => format!("agree ({items})"),
            (true, false) => format!("**MISMATCH**: {}", bad.join(", ")),
            (false, true) => format!("**FAILED**: {}", failed.join(", ")),
            (false, false) => {
                bad.insert(0, format!("**FAILED**: {}", failed.join(", ")));
                format!("{}; **MISMATCH**: {}", bad[0], bad[1..].join(", "))
            }
        };
        format!("{verdict}{note}")
    }
}

/// Milliseconds with a precision that reads well in a table.
fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn human_span(ms: i64) -> String {
    if ms % 3_600_000 == 0 {
        format!("{} h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} s", ms as f64 / 1000.0)
    }
}

/// Keeps a message on one table row / list line.
fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
