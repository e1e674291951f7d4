//! Tributary's query side: the PromQL, LogQL and trace engines and the Prometheus, Loki, Tempo
//! and Jaeger HTTP APIs.
//!
//! Owns: PromQL evaluation ([`promql::Engine`], Prometheus 3 semantics), LogQL evaluation
//! ([`logql::LogqlEngine`]), merging the readable sources into one ([`source::MergedSource`],
//! [`log_source::MergedLogSource`], [`traces::MergedTraceSource`]), trace reads
//! ([`traces::TraceEngine`]), and the endpoints Grafana calls: `/api/v1/...`
//! ([`http::router`]), `/loki/api/v1/...` ([`http::loki_router`]), Tempo's `/api/traces`,
//! `/api/search`... ([`http::tempo_router`]) and Jaeger's under `/jaeger` ([`http::jaeger_router`]).
//!
//! Reads only through [`tributary_storage::read::Source`], `LogSource` and `TraceSource`. Must not know how data was ingested
//! (no `ingest` dependency) or how it is stored (no Parquet or object-store code): the binary
//! hands in the head and the Parquet reader as `Source`s.
//!
//! # Rooms
//!
//! - `admission`: a query's text is admitted before any parser sees it: its length and nesting
//!   depth bounded (`query.max_query_bytes`, `query.max_query_depth`, and LogQL's own), because
//!   parsing and evaluating recurse once per level and a stack overflow aborts the process.
//! - `config`: [`QueryConfig`] (and the LogQL engine's [`logql::LogqlConfig`]), one serde tree.
//! - `error`: the crate's one [`Error`], each of which is one kind (Prometheus's `errorType`).
//! - `source`, `log_source`: one `Source`/`LogSource` over the head and Parquet.
//! - `scope`: a token's read scope wrapped around those sources ([`Engine::scoped`],
//!   [`logql::LogqlEngine::scoped`]), so every selection carries `cluster=~"<scope>"`.
//! - `statistics`: the numeric kernels both engines share (`quantile`, Kahan sums, Go's `math`).
//! - `metrics`: the engine's own counters.
//! - [`traces`]: spans read back ([`traces::MergedTraceSource`], [`traces::TraceEngine`]):
//!   trace by id, the TraceQL subset (`traces::traceql`), tag listings, OTLP rendering; served
//!   by [`http::tempo_router`] and [`http::jaeger_router`].
//! - `token_limits`: a token's own query limits (`[[auth.tokens]]`), tightening the global ones
//!   for its requests ([`Engine::limited`], [`logql::LogqlEngine::limited`]) and naming the token
//!   when they refuse.
//! - `ruler`: Prometheus rule files evaluated on schedule through the [`Engine`], and Loki's
//!   LogQL rule files through the [`logql::LogqlEngine`]: `file` (load and validate, each file
//!   in its language), `group` (schedule, evaluation, counters), `alert` (the alert state
//!   machine and its restore), `api` (`/api/v1/rules`, `/api/v1/alerts`, `/-/reload`, Loki's
//!   read-only `/loki/api/v1/rules`),
//!   `template` (annotation templates) and `notifier` (Alertmanager). What rules produce leaves
//!   through [`ruler::RuleSink`], which the binary implements with the ingester.
//! - `slo`: SLO specs (Sloth's `prometheus/v1`) in, Prometheus rule files out
//!   ([`slo::generate`]): SLI ratios over exact windows, error-budget series and multi-window
//!   burn-rate alerts, per cluster and fleet-wide; `rules` builds the groups.
//! - `test_util` (feature `test-util`): the crate's text parsers (queries and request
//!   parameters) for the fuzz targets in `query/fuzz/`.
//! - `promql`: the PromQL engine: `plan` (syntax tree to selectors and steps), `eval`,
//!   `aggregate`, `binary`, `functions/` (one file per family), `parts` (aggregating a large
//!   selector a part at a time), `value`, `annotations`, `position`.
//! - `logql`: the LogQL engine: `ast`, `parser` (with `lexer` and `metric` expressions),
//!   `pipeline` (with Loki's line `parsers`), `template`, `units`, `eval`, `drilldown` (what Logs
//!   Drilldown asks beyond LogQL: volumes, detected labels, detected `fields`, patterns; the
//!   Drain clustering behind patterns is storage's, `tributary_storage::read::PatternSum`).
//! - `http`: the four APIs. `prom_api` and `loki_api` (with `tail`, and `volume`, `detected`,
//!   `patterns` for Logs Drilldown), `tempo_api` and `jaeger_api` hold the handlers, `params`
//!   reads every request parameter for all of them (each API's time, duration and limit formats),
//!   `error` maps every error kind to each API's status once and renders each API's error body
//!   (Tempo's is Loki's plain text and status column; Jaeger's JSON envelope is `jaeger_api`'s),
//!   `render` writes the JSON; `remote_read` and `federate` serve raw samples to Prometheus;
//!   `status` (with `cardinality`) answers Prometheus's status and Mimir's cardinality APIs from
//!   a series listing, under its own router (`http::status_router`).
//!
//! # Adding an API endpoint
//!
//! 1. Write the handler beside its siblings in `http/prom_api.rs` or `http/loki_api.rs`: read
//!    parameters only through `http::params::Params` (a format neither API reads yet goes into
//!    `http/params.rs`, with a test in `http/params/tests.rs`), call one engine method, render
//!    with `http/render.rs`, and return errors with `?` (`PromError`/`LokiError`).
//! 2. Add one `.route(...)` line: [`http::router`] in `http.rs`, or [`http::loki_router`] in
//!    `http/loki_api.rs`.
//! 3. Never choose a status in a handler: a new failure is an [`Error`] variant with its kind in
//!    `Error::kind` (`error.rs`), and the status comes from the table in `http/error.rs`.
//! 4. Test it through the router (`http/tests.rs` or `http/loki_api/tests.rs`); an error
//!    Prometheus also answers goes into `BAD_REQUESTS` of `tests/e2e/promql_conformance.rs`.
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
//! - aggregations `sum avg min max count group stddev stdvar topk bottomk quantile count_values
//!   limitk limit_ratio` with `by`/`without` (`limit_ratio` keeps the series a stock Prometheus
//!   keeps: the same hash of the label set);
//! - range functions `rate increase delta irate idelta deriv predict_linear resets changes
//!   absent_over_time double_exponential_smoothing` and `avg min max sum count last first
//!   present stddev stdvar quantile mad` `_over_time`, `ts_of_min ts_of_max ts_of_first
//!   ts_of_last` `_over_time`;
//! - `info` (Prometheus 3's info-metric join, `promql/functions/info.rs`), the query's own
//!   `start() end() range() step()` and `min_of max_of`;
//! - duration expressions in ranges, subquery steps and after `offset` (`x[5m * 2]`,
//!   `x offset -step()`), evaluated before parsing (`promql/durations.rs`);
//! - `abs ceil floor exp ln log2 log10 sqrt sgn round clamp clamp_min clamp_max`, the
//!   trigonometric and hyperbolic functions, `deg rad pi`;
//! - `minute hour day_of_week day_of_month day_of_year days_in_month month year` (with a vector
//!   argument or of the evaluation time), computed as Go's calendar does, overflow included;
//! - `time timestamp vector scalar absent sort sort_desc sort_by_label sort_by_label_desc
//!   label_replace label_join histogram_quantile` (classic `le` buckets);
//! - `histogram_count histogram_sum histogram_avg histogram_stddev histogram_stdvar
//!   histogram_fraction` (native histograms; floats are ignored, as in Prometheus).
//!
//! Native histograms (read through [`tributary_storage::read::Source::select_histograms`],
//! exponential and custom-bucket schemas) are values like floats: selectors answer them,
//! `rate increase delta irate idelta` (counter resets detected, the coarsest schema of the
//! window), `sum avg count group`, `h * s`, `s * h`, `h / s`, `h + h`, `h - h` (one-to-one),
//! unary minus, `and or unless`, `last_over_time count_over_time present_over_time
//! sum_over_time avg_over_time` and the `histogram_*` functions evaluate them, with Prometheus 3's warnings for
//! mixed inputs. Any other function or operator given one fails with an `execution` error naming
//! itself and the series, never an answer that leaves it out.
//!
//! Not supported, answered with an `execution` error naming the feature (never a guess):
//! `histogram_quantiles`, `start_timestamp`, `integral` (which `promql-parser` knows and
//! Prometheus does not) and the `fill` binary modifiers. `holt_winters` is unknown to the
//! parser, as it is to Prometheus 3.
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
//! Prometheus's JSON shapes, error types and status codes; `POST /api/v1/read` (remote-read,
//! sampled and streamed XOR chunks) and `/federate` (text exposition).

mod admission;
pub mod config;
pub mod error;
pub mod http;
pub mod log_source;
pub mod logql;
pub mod metrics;
pub mod promql;
pub mod remote;
pub mod ruler;
mod scope;
pub mod slo;
pub mod source;
mod statistics;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod token_limits;
pub mod traces;

#[cfg(test)]
mod test_source;

pub use config::QueryConfig;
pub use error::{Error, Result};
pub use promql::{Annotations, Engine, QueryResult, Tier, Value, VectorSample};
pub use source::MergedSource;
