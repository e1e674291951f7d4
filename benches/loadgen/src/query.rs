//! Query-latency benchmark: the same fixed set of Grafana/SLO queries against every receiver
//! that holds the reference workload, timed, and every answer compared with the reference
//! receiver's (a fast wrong answer is not a result).
//!
//! * `suite`: the queries and the `Window` they cover, derived from the workload
//!   [`Config`](crate::workload::Config) alone so every receiver is asked the same thing.
//! * `measurement`: warm-up + timed runs against one receiver; every response must be
//!   `status: success`, non-empty, and identical to the first one.
//! * `answer`: responses reduced to a canonical form, and compared with a tolerance.
//! * `report`: results of several receivers → markdown tables, ratios and mismatches.
//! * [`cli`]: `tributary-loadgen query run|report`, driven by `benches/compare/query.sh`.
//!
//! # The result file contract
//!
//! `query run` writes one `TargetRun` as JSON per receiver (or per variant of one, such as
//! Tributary with its head still full and after a flush); `query report` reads several. The
//! file holds every canonical answer, so mismatches can be investigated after the servers
//! are gone. `query report` refuses files whose windows or suites differ.

pub(crate) mod answer;
pub mod cli;
pub(crate) mod measurement;
pub(crate) mod report;
pub(crate) mod suite;

use serde::{Deserialize, Serialize};

pub(crate) use measurement::QueryRun;
pub(crate) use suite::{Query, Window};

/// Which query language the receiver actually implements; decides how its answers are
/// compared with the reference's (see [`report`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Dialect {
    /// Prometheus semantics (Prometheus, Tributary): answers must match to float tolerance.
    Promql,
    /// VictoriaMetrics' MetricsQL: `rate()` neither extrapolates nor ignores the sample
    /// before the window, so rate-based answers get a looser tolerance.
    Metricsql,
}

/// The workload a receiver held, as far as the queries depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorkloadShape {
    pub clusters: usize,
    pub series_per_cluster: usize,
    pub samples_per_series: usize,
    pub interval_ms: u64,
    pub start_ms: i64,
    pub seed: u64,
}

/// Everything measured against one receiver (one result file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TargetRun {
    /// Unique name in the report, e.g. `tributary-head`.
    pub label: String,
    /// Receiver kind, e.g. `tributary`; variants of one receiver share it.
    pub target: String,
    /// What the receiver says it is, e.g. `prometheus 2.42.0`.
    pub version: String,
    /// How the data was stored when queried, e.g. `Parquet after POST /api/v1/admin/flush`.
    pub state: String,
    pub dialect: Dialect,
    pub base_url: String,
    pub workload: WorkloadShape,
    pub window: Window,
    pub warmup: usize,
    pub runs: usize,
    pub queries: Vec<QueryRun>,
}

impl TargetRun {
    pub(crate) fn failures(&self) -> usize {
        self.queries.iter().filter(|q| !q.ok()).count()
    }
}

#[cfg(test)]
mod tests;
