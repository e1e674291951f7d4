//! The fixed set of Grafana/SLO queries and the time window they run over.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::workload::{Config, cluster_name};

/// The time range every range query covers, derived from the workload alone so that every
/// receiver is asked exactly the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Window {
    /// Timestamp of the workload's first scrape round (before per-target offsets).
    pub data_start_ms: i64,
    pub interval_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

/// The range of `rate()` in the suite; also what [`Query::rate_range_ms`] reports.
pub(crate) const RATE_RANGE_MS: i64 = 5 * 60 * 1000;

impl Window {
    /// The whole workload span (`samples_per_series * interval`, an hour by default) at
    /// `step_ms`, starting at the data's first round plus the smallest shift that no series
    /// uses as its scrape offset.
    ///
    /// Why the shift: Prometheus 2 closes range windows and the lookback on the left
    /// (`[t-5m, t]`), Prometheus 3 and Tributary leave them open (`(t-5m, t]`). The answers
    /// differ only when a sample sits exactly on `t - 5m`. When the step and the 5 m range
    /// are multiples of the scrape interval, every evaluation time and window boundary is
    /// congruent to the shift modulo the interval, while samples are congruent to their
    /// target's offset, so with the shift off every offset no boundary touches a sample.
    pub(crate) fn for_workload(cfg: &Config, step_ms: i64) -> Result<Self, Error> {
        let interval = cfg.interval_ms as i64;
        if step_ms <= 0 || interval <= 0 || cfg.samples_per_series == 0 {
            return Err(Error::InvalidConfig(format!(
                "query window needs a positive step ({step_ms} ms), interval ({interval} ms) and sample count"
            )));
        }
        let span = cfg.samples_per_series as i64 * interval;
        if span < step_ms {
            return Err(Error::InvalidConfig(format!(
                "the workload spans {span} ms, less than one query step of {step_ms} ms"
            )));
        }
        let offsets = cfg.scrape_offsets();
        let shift = (0..interval)
            .find(|d| !offsets.contains(&(*d as u64)))
            .ok_or_else(|| Error::InvalidConfig("every millisecond of the interval is a scrape offset".into()))?;
        let start_ms = cfg.start_ms + shift;
        Ok(Self {
            data_start_ms: cfg.start_ms,
            interval_ms: interval,
            start_ms,
            end_ms: start_ms + span / step_ms * step_ms,
            step_ms,
        })
    }

    /// Evaluation steps of a range query over the window.
    pub(crate) fn points(&self) -> i64 {
        (self.end_ms - self.start_ms) / self.step_ms + 1
    }
}

/// One HTTP request of the suite, in Prometheus HTTP API terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Request {
    /// `GET /api/v1/query_range` over the whole window.
    Range { expr: String },
    /// `GET /api/v1/query` at the window's end.
    Instant { expr: String },
    /// `GET /api/v1/label/<label>/values` limited to the window.
    LabelValues { label: String },
    /// `GET /api/v1/series?match[]=<matcher>` limited to the window.
    Series { matcher: String },
}

impl Request {
    /// Path and query parameters of the request over `window`.
    pub(crate) fn http(&self, window: &Window) -> (String, Vec<(&'static str, String)>) {
        let start = seconds(window.start_ms);
        let end = seconds(window.end_ms);
        match self {
            Request::Range { expr } => (
                "/api/v1/query_range".into(),
                vec![
                    ("query", expr.clone()),
                    ("start", start),
                    ("end", end),
                    ("step", seconds(window.step_ms)),
                ],
            ),
            Request::Instant { expr } => ("/api/v1/query".into(), vec![("query", expr.clone()), ("time", end)]),
            Request::LabelValues { label } => (
                format!("/api/v1/label/{label}/values"),
                vec![("start", start), ("end", end)],
            ),
            Request::Series { matcher } => (
                "/api/v1/series".into(),
                vec![("match[]", matcher.clone()), ("start", start), ("end", end)],
            ),
        }
    }

    /// The request as a human reads it (the expression, or the API call).
    pub(crate) fn display(&self) -> String {
        match self {
            Request::Range { expr } => expr.clone(),
            Request::Instant { expr } => format!("{expr} (instant)"),
            Request::LabelValues { label } => format!("/api/v1/label/{label}/values"),
            Request::Series { matcher } => format!("/api/v1/series?match[]={matcher}"),
        }
    }
}

/// One query of the suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Query {
    /// Short stable identifier, used as the key in results.
    pub name: String,
    pub request: Request,
    /// The `rate()` range when the answer depends on rate semantics, which MetricsQL
    /// defines differently from PromQL (no extrapolation, the sample before the window
    /// counts); see the report's comparison rules.
    pub rate_range_ms: Option<i64>,
}

/// The fixed suite: what a Kubernetes/SLO Grafana dashboard asks when it opens, using metric
/// names the workload generates (see `workload/catalog.rs`).
pub(crate) fn suite() -> Vec<Query> {
    let rate = |name: &str, expr: &str| Query {
        name: name.into(),
        request: Request::Range { expr: expr.into() },
        rate_range_ms: Some(RATE_RANGE_MS),
    };
    vec![
        rate(
            "error_ratio",
            r#"sum by (cluster) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (cluster) (rate(http_requests_total[5m]))"#,
        ),
        rate(
            "p99_latency",
            "histogram_quantile(0.99, sum by (le, cluster) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        rate(
            "topk_cpu",
            "topk(5, sum by (pod) (rate(container_cpu_usage_seconds_total[5m])))",
        ),
        Query {
            name: "count_buckets".into(),
            request: Request::Range {
                expr: "count by (cluster) (http_request_duration_seconds_bucket)".into(),
            },
            rate_range_ms: None,
        },
        Query {
            name: "memory_by_namespace".into(),
            request: Request::Instant {
                expr: "sum by (cluster, namespace) (container_memory_working_set_bytes)".into(),
            },
            rate_range_ms: None,
        },
        Query {
            name: "pod_values".into(),
            request: Request::LabelValues { label: "pod".into() },
            rate_range_ms: None,
        },
        Query {
            name: "pod_info_series".into(),
            request: Request::Series {
                matcher: format!(r#"kube_pod_info{{cluster="{}"}}"#, cluster_name(0)),
            },
            rate_range_ms: None,
        },
    ]
}

/// `ms` as the decimal seconds the Prometheus API takes, exact to the millisecond.
pub(crate) fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}
