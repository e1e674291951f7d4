//! The crate's text parsers for the fuzz targets in `query/fuzz/` (feature `test-util`): each
//! is crate-private in production, where the engines and handlers call it.
//!
//! - [`parse_promql`], [`parse_logql`]: a query admitted under a configuration's size and depth
//!   bounds (`admission`), then parsed: the two steps every PromQL and LogQL entry takes.
//!   [`promql_depth`]/[`logql_depth`] are admission's depth bound of a text, which must be at
//!   least the depth of any tree the text parses to.
//! - [`read_params`]: every time, duration, limit and direction parameter of both HTTP APIs,
//!   read from one URL query by `http::params`.
//!
//! Parsing recurses per level of nesting: call the parsers on a thread with a deep stack, as
//! the engines do.

use std::fmt;
use std::time::Duration;

use tributary_storage::read::Direction;
use tributary_storage::types::TimeRange;

use crate::QueryConfig;
use crate::admission::{Language, admit, depth};
use crate::error::Result;
use crate::http::params::Params;
use crate::logql::{LogqlConfig, ast, parser};

/// `text` admitted under `cfg`'s `max_query_bytes`/`max_query_depth`, then parsed, as
/// `Engine::parse_then` and every query evaluation do.
pub fn parse_promql(text: &str, cfg: &QueryConfig) -> Result<promql_parser::parser::Expr> {
    admit(text, Language::Promql, cfg.text_limits())?;
    crate::promql::diagnosis::parse(text, text)
}

/// `text` admitted under `cfg`'s bounds, then parsed, as every LogQL entry does
/// (`LogqlEngine::parse`).
pub fn parse_logql(text: &str, cfg: &LogqlConfig) -> Result<LogqlTree> {
    admit(text, Language::Logql, cfg.text_limits())?;
    parser::parse(text).map(LogqlTree)
}

/// Admission's upper bound of the depth of the PromQL tree `text` parses to.
pub fn promql_depth(text: &str) -> usize {
    depth(text, Language::Promql)
}

/// Admission's upper bound of the depth of the LogQL tree `text` parses to.
pub fn logql_depth(text: &str) -> usize {
    depth(text, Language::Logql)
}

/// A parsed LogQL query. `Display` is the crate's printer, whose text must parse back to an
/// equal tree.
#[derive(Clone, Debug, PartialEq)]
pub struct LogqlTree(ast::Expr);

impl LogqlTree {
    /// The tree's depth: the longest chain of nested metric expressions and label filters (a
    /// leaf is 0), which `logql_depth` of the text must bound.
    pub fn depth(&self) -> usize {
        match &self.0 {
            ast::Expr::Log(l) => log_depth(l),
            ast::Expr::Metric(m) => metric_depth(m),
        }
    }
}

fn metric_depth(m: &ast::MetricExpr) -> usize {
    use ast::MetricExpr as M;
    match m {
        M::Range(r) => {
            let unwrap = r.unwrap.iter().flat_map(|u| &u.filters).map(filter_depth).max();
            1 + log_depth(&r.log).max(unwrap.unwrap_or(0))
        }
        M::Vector(v) => 1 + metric_depth(&v.expr),
        M::Binary(b) => 1 + metric_depth(&b.lhs).max(metric_depth(&b.rhs)),
        M::Paren(inner) => 1 + metric_depth(inner),
        M::Number(_) | M::VectorLiteral(_) => 0,
    }
}

fn log_depth(l: &ast::LogExpr) -> usize {
    let filters = l.stages.iter().filter_map(|s| match s {
        ast::Stage::LabelFilter(f) => Some(filter_depth(f)),
        _ => None,
    });
    filters.max().unwrap_or(0)
}

fn filter_depth(f: &ast::LabelFilter) -> usize {
    use ast::LabelFilter as F;
    match f {
        F::And(a, b) | F::Or(a, b) => 1 + filter_depth(a).max(filter_depth(b)),
        F::Paren(inner) => 1 + filter_depth(inner),
        F::Matcher(_) | F::Compare { .. } => 0,
    }
}

impl fmt::Display for LogqlTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What each parameter accessor of `http::params` reads from one URL query (`key=value&...`).
#[derive(Debug)]
pub struct ParamReadings {
    /// `time` by Prometheus's rules (`prom_time_or`, now when absent), in milliseconds.
    pub prom_time: Result<i64>,
    /// `start`/`end` of a Prometheus listing (unbounded when absent).
    pub prom_range: Result<TimeRange>,
    /// `step` by Prometheus's rules, in milliseconds (required).
    pub prom_step: Result<i64>,
    /// `timeout` by Prometheus's rules.
    pub prom_timeout: Result<Option<Duration>>,
    /// `limit` by Prometheus's rules (0 for none).
    pub prom_limit: Result<usize>,
    /// `limit_per_metric` of the metadata endpoint (`-1` when absent).
    pub prom_signed: Result<i64>,
    /// `time` by Loki's rules, in nanoseconds (0 when absent).
    pub loki_time: Result<i64>,
    /// `step` by Loki's rules, in nanoseconds.
    pub loki_step: Result<Option<i64>>,
    /// `start`/`end`/`since` by Loki's rules, in nanoseconds.
    pub loki_range: Result<(i64, i64)>,
    /// `limit` by Loki's rules (100 when absent).
    pub loki_limit: Result<usize>,
    /// `direction` by Loki's rules.
    pub loki_direction: Result<Direction>,
    /// The tail's `delay_for` with the tail's maximum (5 seconds), in nanoseconds.
    pub loki_delay_for: Result<i64>,
}

/// Every accessor of `http::params` applied to `url_query`, as the handlers read their
/// parameters.
pub fn read_params(url_query: &str) -> ParamReadings {
    let p = Params::from_url(Some(url_query));
    ParamReadings {
        prom_time: p.prom_time_or("time", crate::http::params::now_ms()),
        prom_range: p.prom_time_range(),
        prom_step: p.prom_duration("step"),
        prom_timeout: p.prom_timeout(),
        prom_limit: p.prom_limit(),
        prom_signed: p.prom_signed("limit_per_metric"),
        loki_time: p.loki_time_or("time", || 0),
        loki_step: p.loki_duration("step"),
        loki_range: p.loki_range(),
        loki_limit: p.loki_limit(),
        loki_direction: p.loki_direction(),
        loki_delay_for: p.loki_delay_for(5),
    }
}
