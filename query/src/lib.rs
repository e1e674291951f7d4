//! Tributary's query side: the PromQL and LogQL engines and the Prometheus and Loki HTTP APIs.
//!
//! Owns: PromQL evaluation ([`promql::Engine`], Prometheus 3 semantics), LogQL evaluation
//! ([`logql::LogqlEngine`]), merging the readable sources into one ([`source::MergedSource`],
//! [`log_source::MergedLogSource`]), and the endpoints Grafana calls: `/api/v1/...`
//! ([`http::router`]) and `/loki/api/v1/...` ([`http::loki_router`]).
//!
//! Reads only through [`tributary_storage::read::Source`] and `LogSource`. Must not know how data was ingested
//! (no `ingest` dependency) or how it is stored (no Parquet or object-store code): the binary
//! hands in the head and the Parquet reader as `Source`s.
//!
//! # PromQL
//!
//! Prometheus 3 semantics: left-open lookback `(t - 5m, t]` and range windows `(t - range, t]`,
//! staleness markers end a series, regex matchers are anchored and `.` matches a newline,
//! `offset` (negative too), `@ <time>`/`@ start()`/`@ end()`, subqueries `expr[range:step]`
//! (steps aligned to multiples of the step; without a step, [`QueryConfig::default_subquery_step`]),
//! `__name__` dropped by every value-changing operation (`atan2` included), colliding label sets
//! merged where Prometheus 3 merges them (instant-vector results whose steps never meet) and an
//! error where it rejects them (range-function results, unary minus).
//!
//! Supported:
//! - every binary operator (arithmetic, `atan2`, comparisons with and without `bool`, `and`,
//!   `or`, `unless`) with `on`/`ignoring` and `group_left`/`group_right`;
//! - aggregations `sum avg min max count group stddev stdvar topk bottomk quantile count_values`
//!   with `by`/`without`;
//! - range functions `rate increase delta irate idelta deriv predict_linear resets changes
//!   absent_over_time` and `avg min max sum count last present stddev stdvar quantile` `_over_time`;
//! - `abs ceil floor exp ln log2 log10 sqrt sgn round clamp clamp_min clamp_max`, the
//!   trigonometric and hyperbolic functions, `deg rad pi`;
//! - `minute hour day_of_week day_of_month day_of_year days_in_month month year` (with a vector
//!   argument or of the evaluation time), computed as Go's calendar does, overflow included;
//! - `time timestamp vector scalar absent sort sort_desc sort_by_label sort_by_label_desc
//!   label_replace label_join histogram_quantile` (classic `le` buckets);
//! - `histogram_count histogram_sum histogram_avg histogram_stddev histogram_stdvar`, which read
//!   native histograms only and so answer nothing: native histograms are refused at ingest.
//!
//! Not supported, answered with an `execution` error naming the feature (never a guess):
//! `limitk`, `limit_ratio`, `histogram_fraction`, `info`, the experimental `*_over_time`
//! functions (`first_over_time`, `mad_over_time`, `ts_of_*`), `double_exponential_smoothing`,
//! the `fill` binary modifiers and duration expressions.
//!
//! Annotations are those of Prometheus 3: an info for `rate`/`increase` of a metric not named
//! like a counter, warnings for quantiles outside `[0, 1]` and malformed `le` labels, an info when
//! `histogram_quantile` had to fix non-monotonic buckets.
//!
//! `tests/e2e/promql_conformance.rs` checks all of this against a real Prometheus, query by query.
//!
//! # HTTP API
//!
//! `/api/v1/query` and `/api/v1/query_range` (`timeout`, `limit`; `warnings`/`infos` in the
//! answer), `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` (`match[]`,
//! `start`, `end`, `limit`), `/api/v1/format_query`, `/api/v1/parse_query`,
//! `/api/v1/status/buildinfo`, `/api/v1/metadata` and `/api/v1/query_exemplars` (empty), with
//! Prometheus's JSON shapes, error types and status codes.

pub mod config;
pub mod error;
pub mod http;
pub mod log_source;
pub mod logql;
pub mod metrics;
pub mod promql;
pub mod source;
mod statistics;

#[cfg(test)]
mod test_source;

pub use config::QueryConfig;
pub use error::{Error, Result};
pub use promql::{Annotations, Engine, QueryResult, Value, VectorSample};
pub use source::MergedSource;
