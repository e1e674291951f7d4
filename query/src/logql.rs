//! The LogQL engine: parses LogQL (`parse`), runs log queries into streams and metric queries
//! into vectors/matrices, and answers the Loki listing endpoints, all over one
//! [`LogSource`] (the binary hands in the merge of the head and the Parquet logs table).
//!
//! # Supported LogQL
//! - stream selectors with `= != =~ !~` (at least one matcher must not match the empty string);
//! - line filters `|= != |~ !~` and the pattern filters `|> !>`, chained, with `or` alternatives;
//! - parsers `json` (with `label="path"` parameters), `logfmt` (with parameters), `regexp`,
//!   `pattern`, `unpack`; `decolorize`;
//! - label filters: strings `= != =~ !~`, numbers `== != > >= < <=`, durations (`> 250ms`) and
//!   byte sizes (`> 2KB`), combined with `and`, `or`, `,`, spaces and parentheses;
//! - `line_format` and `label_format` (a Go `text/template` subset, see `template`), `drop`, `keep`;
//! - range aggregations `count_over_time rate bytes_over_time bytes_rate sum_over_time
//!   avg_over_time max_over_time min_over_time first_over_time last_over_time stddev_over_time
//!   stdvar_over_time quantile_over_time absent_over_time` with `[range]`, `offset` and
//!   `| unwrap x`, `| unwrap duration(x)`, `| unwrap bytes(x)` (then label filters);
//! - vector aggregations `sum avg min max count stddev stdvar topk bottomk` with `by`/`without`
//!   before or after; binary operators `+ - * / % ^ == != > >= < <=` (with `bool`), `and or
//!   unless`, `on(...)`/`ignoring(...)`; number literals and `vector(n)`.
//!
//! Loki semantics kept: parser failures add `__error__`/`__error_details__` labels (and drop
//! nothing), `| __error__=""` filters them, a metric query over lines with an error fails with
//! Loki's "pipeline error"; extracted labels that collide with stream labels get `_extracted`;
//! structured metadata (the record's attributes' top-level scalars, `trace_id`, `span_id`) are
//! labels too (ingest adds Loki 3's `detected_level` there); a record stored without one gets it
//! from its OTLP severity when the stream has no `level` label.
//!
//! Not supported: `label_replace`, `group_left`/`group_right`, `ip()` filters, `rate_counter`,
//! `sort`, `| logfmt --strict`, subqueries, and template actions (`if`, `range`, `printf`).

pub(crate) mod ast;
mod drilldown;
mod eval;
pub(crate) mod parser;
mod pipeline;
mod template;
pub(crate) mod units;

#[cfg(test)]
pub(crate) mod mem;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tributary_storage::auth::Identity;
use tributary_storage::read::{Direction, LogRequest, LogSource};
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{Labels, Matcher, Sample, Series};

use crate::admission::{Language, TextLimits, admit, on_deep_stack, on_deep_stack_async};
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;
use crate::promql::VectorSample;
use crate::scope::ScopedLogSource;
use crate::token_limits::TokenLimits;
use ast::{Expr, MetricExpr};
use parser::parse_selector;

pub(crate) use drilldown::{DetectedField, PATTERN_MAX_LINES, PatternSeries, VolumeBy, VolumeQuery, VolumeSeries};

/// Loki's cap on points per series of a range query.
pub(crate) const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Settings of [`LogqlEngine`]; every field has Loki's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogqlConfig {
    /// The most lines one log query may return (Loki's `max_entries_limit_per_query`). Default 5000.
    pub max_entries_limit: usize,
    /// The longest a query may run. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Records read per request when a pipeline may drop lines, so `limit` cannot be handed to
    /// the source. Default 1000.
    pub fetch_chunk: usize,
    /// The most records one range aggregation may read. Default 50000000.
    pub max_records: usize,
    /// The longest LogQL query text accepted, in bytes; a longer one is refused with a 400
    /// naming this option before it is parsed. Default `262144`.
    pub max_query_bytes: usize,
    /// The deepest LogQL query accepted, counted as `query.max_query_depth` counts PromQL's
    /// (each parenthesis, bracket, brace, unary sign and chained operator or label filter is a
    /// level); a deeper one is refused with a 400 naming this option before it is parsed.
    /// Default `128`.
    pub max_query_depth: usize,
    /// The most bytes the lines of one log query's answer may hold, after its pipeline: a
    /// `line_format` can grow every line to the 1 MiB bound of one formatted line, and a query
    /// whose lines would add up to more fails with a 400 naming this option as soon as they do,
    /// instead of holding and sending them all. Default `67108864` (64 MiB).
    pub max_response_bytes: usize,
}

impl LogqlConfig {
    /// The bounds a LogQL query's text is admitted under.
    pub(crate) fn text_limits(&self) -> TextLimits {
        TextLimits {
            max_bytes: self.max_query_bytes,
            max_depth: self.max_query_depth,
            section: "query.logql",
        }
    }
}

impl Default for LogqlConfig {
    fn default() -> Self {
        Self {
            max_entries_limit: 5000,
            timeout: Duration::from_secs(120),
            fetch_chunk: 1000,
            max_records: 50_000_000,
            max_query_bytes: crate::config::DEFAULT_MAX_QUERY_BYTES,
            max_query_depth: crate::config::DEFAULT_MAX_QUERY_DEPTH,
            max_response_bytes: 64 << 20,
        }
    }
}

/// One line of a stream.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogEntry {
    /// Nanoseconds since the epoch.
    pub(crate) timestamp: i64,
    pub(crate) line: String,
}

/// Lines sharing one label set (stream labels plus structured metadata and extracted labels).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Stream {
    pub(crate) labels: Labels,
    /// Where the names in `labels` came from, for answers that keep them apart (Loki's
    /// `categorize-labels`); the lines of one `Stream` share it.
    pub(crate) origins: LabelOrigins,
    /// In the query's direction.
    pub(crate) entries: Vec<LogEntry>,
}

/// Which labels of a line are structured metadata and which the pipeline extracted (parsers,
/// `label_format`, `__error__`); every other label is a stream label.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LabelOrigins {
    pub(crate) structured_metadata: BTreeSet<String>,
    pub(crate) parsed: BTreeSet<String>,
}

impl Stream {
    /// The labels split by origin: (stream labels, structured metadata, parsed).
    pub(crate) fn categorized(&self) -> (Labels, Labels, Labels) {
        let (metadata, parsed) = (&self.origins.structured_metadata, &self.origins.parsed);
        (
            self.labels
                .filtered(|l| !metadata.contains(l.name) && !parsed.contains(l.name)),
            self.labels.filtered(|l| metadata.contains(l.name)),
            self.labels
                .filtered(|l| !metadata.contains(l.name) && parsed.contains(l.name)),
        )
    }
}

/// A LogQL answer. Matrix and vector timestamps are milliseconds, as in the Prometheus encoding
/// Loki uses for them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LogqlValue {
    Streams(Vec<Stream>),
    Matrix(Vec<Series>),
    Vector(Vec<VectorSample>),
    Scalar { timestamp: i64, value: f64 },
}

impl LogqlValue {
    pub(crate) fn result_type(&self) -> &'static str {
        match self {
            LogqlValue::Streams(_) => "streams",
            LogqlValue::Matrix(_) => "matrix",
            LogqlValue::Vector(_) => "vector",
            LogqlValue::Scalar { .. } => "scalar",
        }
    }
}

/// What a query read and returned (Loki's `stats.summary`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct QueryStats {
    pub(crate) lines_processed: u64,
    pub(crate) bytes_processed: u64,
    pub(crate) entries_returned: u64,
    pub(crate) exec_time: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogqlResult {
    pub(crate) value: LogqlValue,
    pub(crate) stats: QueryStats,
}

/// A range query (`/loki/api/v1/query_range`); times in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RangeQuery {
    pub(crate) query: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Metric queries only; must be positive.
    pub(crate) step: i64,
    /// Log queries only: the most lines returned.
    pub(crate) limit: usize,
    pub(crate) direction: Direction,
}

/// `/loki/api/v1/index/stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexStats {
    pub(crate) streams: u64,
    /// The source exposes no chunks; each stream counts as one.
    pub(crate) chunks: u64,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
}

/// Evaluates LogQL against a [`LogSource`].
#[derive(Debug, Clone)]
pub struct LogqlEngine {
    source: Arc<dyn LogSource>,
    cfg: LogqlConfig,
    /// `query.max_listing_items`: the most entries a listing may answer with.
    max_listing_items: usize,
    metrics: QueryMetrics,
    /// The limits of the request's token tighter than `cfg`'s (already applied to `cfg`), as
    /// in [`crate::promql::Engine`].
    token: Option<Arc<TokenLimits>>,
}

impl LogqlEngine {
    /// An engine reading `source` (the binary hands in the head and Parquet merged).
    pub fn new(source: Arc<dyn LogSource>, cfg: LogqlConfig) -> Self {
        Self {
            source,
            cfg,
            max_listing_items: QueryConfig::default().max_listing_items,
            metrics: QueryMetrics::default(),
            token: None,
        }
    }

    /// The engine with `query.max_listing_items` (the bound every listing of both APIs shares)
    /// and the counters refusals are counted on (the PromQL engine's, registered once).
    pub fn with_listings_and_metrics(mut self, max_listing_items: usize, metrics: QueryMetrics) -> Self {
        self.max_listing_items = max_listing_items;
        self.metrics = metrics;
        self
    }

    /// The same engine reading only the clusters `scope` admits: every selection, listing and
    /// tail carries the scope (see `scope`), whatever the query.
    pub fn scoped(&self, scope: &ClusterScope) -> Self {
        Self {
            source: Arc::new(ScopedLogSource::new(self.source.clone(), scope)),
            ..self.clone()
        }
    }

    /// The same engine under the query limits of the token `id` (see `token_limits`): its
    /// `max_samples` bounds the records a query reads (`max_records`), its `query_timeout` the
    /// query's time, each only when tighter.
    pub fn limited(&self, id: &Identity) -> Self {
        let limits = TokenLimits::new(id, self.cfg.max_records, self.cfg.timeout, self.metrics.clone());
        let mut cfg = self.cfg.clone();
        cfg.max_records = limits.samples(cfg.max_records);
        cfg.timeout = limits.timeout(cfg.timeout);
        Self {
            cfg,
            token: Some(Arc::new(limits)),
            ..self.clone()
        }
    }

    /// Where refusals are counted.
    pub(crate) fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    /// `query.max_listing_items`.
    pub(crate) fn max_listing_items(&self) -> usize {
        self.max_listing_items
    }

    /// `answer`, or its error as the token's refusal when one of its limits was the one hit.
    fn attribute<T>(&self, answer: Result<T>) -> Result<T> {
        match &self.token {
            Some(t) => answer.map_err(|e| t.attribute(e, None)),
            None => answer,
        }
    }

    /// Refuses an answer of `n` streams or series when the token may receive fewer.
    fn check_series(&self, n: usize, what: &str) -> Result<()> {
        self.token.as_ref().map_or(Ok(()), |t| t.check_series(n, what))
    }

    /// Refuses a query answer with more streams or series than the token may receive.
    fn check_result(&self, r: Result<LogqlResult>) -> Result<LogqlResult> {
        let r = self.attribute(r)?;
        let n = match &r.value {
            LogqlValue::Streams(s) => s.len(),
            LogqlValue::Matrix(m) => m.len(),
            LogqlValue::Vector(v) => v.len(),
            LogqlValue::Scalar { .. } => 1,
        };
        self.check_series(n, "query result")?;
        Ok(r)
    }

    /// Parses `text` once it is admitted under the configured size and depth bounds (see
    /// `admission`): every query of the Loki API enters here. Recursive: call it on a deep stack
    /// ([`LogqlEngine::parse_then`] does).
    pub(crate) fn parse(&self, text: &str) -> Result<Expr> {
        admit(text, Language::Logql, self.cfg.text_limits())?;
        parser::parse(text)
    }

    /// Parses `text` and hands the expression to `then`, both on a deep stack (for the endpoints
    /// that only look at the expression: `format_query`, `tail`).
    pub(crate) async fn parse_then<T: Send + 'static>(
        &self,
        text: &str,
        then: impl FnOnce(Expr) -> T + Send + 'static,
    ) -> Result<T> {
        admit(text, Language::Logql, self.cfg.text_limits())?;
        let text = text.to_string();
        on_deep_stack(move || parser::parse(&text).map(then)).await
    }

    /// A log query over `[start, end)`, or a metric query at `start, start + step, ... <= end`.
    /// Parsed and evaluated on a deep stack (both recurse per level).
    pub(crate) async fn query_range(&self, q: &RangeQuery) -> Result<LogqlResult> {
        admit(&q.query, Language::Logql, self.cfg.text_limits())?;
        let (engine, q) = (self.clone(), q.clone());
        let answer = self
            .timed(on_deep_stack_async(async move { engine.query_range_here(&q).await }))
            .await;
        self.check_result(answer)
    }

    async fn query_range_here(&self, q: &RangeQuery) -> Result<LogqlResult> {
        if q.end < q.start {
            return Err(Error::BadData("end timestamp must not be before start time".into()));
        }
        let expr = self.parse(&q.query)?;
        let began = Instant::now();
        let mut stats = QueryStats::default();
        let value = match expr {
            Expr::Log(log) => {
                let limit = self.check_limit(q.limit)?;
                let window = eval::LogWindow {
                    start: q.start,
                    end: q.end,
                    limit,
                    direction: q.direction,
                    chunk: self.cfg.fetch_chunk,
                    max_bytes: self.cfg.max_response_bytes,
                };
                let fut = eval::select_streams(&self.source, &log, &window, &mut stats);
                LogqlValue::Streams(self.timed(fut).await?)
            }
            Expr::Metric(m) => {
                if q.step <= 0 {
                    return Err(Error::BadData(
                        "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
                    ));
                }
                // In i128: the difference of two timestamps may not fit an i64.
                let last = (i128::from(q.end) - i128::from(q.start)) / i128::from(q.step);
                if last > i128::from(MAX_POINTS_PER_SERIES) {
                    return Err(Error::BadData(
                        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
                    ));
                }
                // Every step is within [start, end]; `i * step` alone may not fit an i64.
                let steps: Vec<i64> = (0..=last)
                    .map(|i| (i128::from(q.start) + i * i128::from(q.step)) as i64)
                    .collect();
                let val = self.metric(&m, &steps, &mut stats).await?;
                to_matrix(val, &steps)
            }
        };
        stats.exec_time = began.elapsed();
        Ok(LogqlResult { value, stats })
    }

    /// A metric query at one instant (ns). Loki refuses log queries here. Parsed and evaluated
    /// on a deep stack (both recurse per level).
    pub(crate) async fn query_instant(&self, query: &str, time: i64) -> Result<LogqlResult> {
        admit(query, Language::Logql, self.cfg.text_limits())?;
        let (engine, query) = (self.clone(), query.to_string());
        let answer = self
            .timed(on_deep_stack_async(async move {
                engine.query_instant_here(&query, time).await
            }))
            .await;
        self.check_result(answer)
    }

    async fn query_instant_here(&self, query: &str, time: i64) -> Result<LogqlResult> {
        let began = Instant::now();
        let mut stats = QueryStats::default();
        let value = match self.parse(query)? {
            Expr::Log(_) => {
                return Err(Error::BadData(
                    "log queries are not supported as an instant query type, please change your query to a range query type"
                        .into(),
                ));
            }
            Expr::Metric(m) => {
                let steps = [time];
                match self.metric(&m, &steps, &mut stats).await? {
                    eval::Val::Scalar(v) => LogqlValue::Scalar {
                        timestamp: ns_to_ms(time),
                        value: v,
                    },
                    eval::Val::Vectors(mut vs) => {
                        let mut points = vs.pop().unwrap_or_default();
                        points.sort_by(|a, b| a.labels.cmp(&b.labels));
                        LogqlValue::Vector(
                            points
                                .into_iter()
                                .map(|p| VectorSample {
                                    labels: p.labels,
                                    timestamp: ns_to_ms(time),
                                    value: p.value,
                                    histogram: None,
                                })
                                .collect(),
                        )
                    }
                }
            }
        };
        stats.exec_time = began.elapsed();
        Ok(LogqlResult { value, stats })
    }

    /// Sorted stream label names with records in `[start, end)`, of streams matching `selector`.
    pub(crate) async fn labels(&self, start: i64, end: i64, selector: Option<&str>) -> Result<Vec<String>> {
        let req = listing(selector_matchers(selector)?, start, end);
        self.attribute(self.timed(self.source.log_label_names(&req)).await)
    }

    /// Sorted values of stream label `name`.
    pub(crate) async fn label_values(
        &self,
        name: &str,
        start: i64,
        end: i64,
        selector: Option<&str>,
    ) -> Result<Vec<String>> {
        let req = listing(selector_matchers(selector)?, start, end);
        self.attribute(self.timed(self.source.log_label_values(name, &req)).await)
    }

    /// Stream label sets matching any of `selectors` (all streams when there is none).
    pub(crate) async fn series(&self, selectors: &[String], start: i64, end: i64) -> Result<Vec<Labels>> {
        // One deadline for all selectors, and a yield between them so that a timer or a closed
        // connection can stop thousands of them.
        let all = self.timed(async {
            let mut all = BTreeSet::new();
            if selectors.is_empty() {
                all.extend(self.source.log_streams(&listing(Vec::new(), start, end)).await?);
            }
            for s in selectors {
                let req = listing(parse_selector(s)?, start, end);
                all.extend(self.source.log_streams(&req).await?);
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>(all.into_iter().collect::<Vec<_>>())
        });
        let all = self.attribute(all.await)?;
        self.check_series(all.len(), "series listing")?;
        Ok(all)
    }

    /// Streams, entries and bytes of the streams matching the query's selectors in `[start, end)`
    /// (a bare selector, a log query, or every selector of a metric query; pipelines ignored).
    pub(crate) async fn stats(&self, query: &str, start: i64, end: i64) -> Result<IndexStats> {
        admit(query, Language::Logql, self.cfg.text_limits())?;
        let (engine, query) = (self.clone(), query.to_string());
        let answer = self
            .timed(on_deep_stack_async(async move {
                engine.stats_here(&query, start, end).await
            }))
            .await;
        self.attribute(answer)
    }

    async fn stats_here(&self, query: &str, start: i64, end: i64) -> Result<IndexStats> {
        let mut selectors: Vec<Vec<Matcher>> = Vec::new();
        match self.parse(query) {
            Ok(Expr::Log(l)) => selectors.push(l.matchers),
            Ok(Expr::Metric(m)) => collect_selectors(&m, &mut selectors),
            Err(e @ Error::QueryLimit { .. }) => return Err(e),
            Err(_) => selectors.push(parse_selector(query)?),
        }
        selectors.dedup();
        let mut streams: BTreeSet<Labels> = BTreeSet::new();
        let mut out = IndexStats::default();
        for matchers in selectors {
            let mut req = listing(matchers, start, end);
            req.limit = Some(self.cfg.max_records);
            tokio::task::yield_now().await;
            let records = self.timed(self.source.select_logs(&req)).await?;
            out.entries += records.len() as u64;
            out.bytes += records.iter().map(|r| r.body.len() as u64).sum::<u64>();
            streams.extend(records.iter().map(|r| Labels::clone(&r.labels)));
        }
        out.streams = streams.len() as u64;
        out.chunks = out.streams;
        Ok(out)
    }

    fn check_limit(&self, limit: usize) -> Result<usize> {
        if limit > self.cfg.max_entries_limit {
            return Err(Error::BadData(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                limit, self.cfg.max_entries_limit
            )));
        }
        Ok(limit)
    }

    async fn metric(&self, m: &MetricExpr, steps: &[i64], stats: &mut QueryStats) -> Result<eval::Val> {
        let mut ctx = eval::MetricCtx {
            source: &self.source,
            steps,
            max_records: self.cfg.max_records,
            stats,
        };
        self.timed(eval::eval_metric(&mut ctx, m)).await
    }

    /// Runs `fut` within `query.logql.timeout`, answering [`Error::Timeout`] past it. A whole
    /// query is timed (so its parts cannot add up past the deadline), and so is each read inside
    /// it; dropping a query's future, past its deadline or when the client goes away, stops its
    /// thread at its next await (`on_deep_stack_async`).
    async fn timed<T, E: Into<Error>>(&self, fut: impl Future<Output = std::result::Result<T, E>>) -> Result<T> {
        match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(r) => r.map_err(Into::into),
            Err(_) => Err(Error::Timeout("query execution")),
        }
    }
}

fn collect_selectors(e: &MetricExpr, out: &mut Vec<Vec<Matcher>>) {
    match e {
        MetricExpr::Range(r) => out.push(r.log.matchers.clone()),
        MetricExpr::Vector(v) => collect_selectors(&v.expr, out),
        MetricExpr::Binary(b) => {
            collect_selectors(&b.lhs, out);
            collect_selectors(&b.rhs, out);
        }
        MetricExpr::Paren(inner) => collect_selectors(inner, out),
        MetricExpr::Number(_) | MetricExpr::VectorLiteral(_) => {}
    }
}

fn selector_matchers(selector: Option<&str>) -> Result<Vec<Matcher>> {
    match selector.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parse_selector(s),
        None => Ok(Vec::new()),
    }
}

fn listing(matchers: Vec<Matcher>, start: i64, end: i64) -> LogRequest {
    LogRequest {
        matchers,
        start,
        end,
        line_hints: Vec::new(),
        direction: Direction::Forward,
        limit: None,
    }
}

fn ns_to_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

/// Per-step vectors into series; a scalar becomes one series without labels.
fn to_matrix(val: eval::Val, steps: &[i64]) -> LogqlValue {
    let per_step = match val {
        eval::Val::Scalar(v) => {
            let samples = steps.iter().map(|&t| Sample::new(ns_to_ms(t), v)).collect();
            return LogqlValue::Matrix(vec![Series::new(Labels::default(), samples)]);
        }
        eval::Val::Vectors(v) => v,
    };
    let mut series: std::collections::BTreeMap<Labels, Vec<Sample>> = std::collections::BTreeMap::new();
    for (points, &t) in per_step.into_iter().zip(steps) {
        for p in points {
            series
                .entry(p.labels)
                .or_default()
                .push(Sample::new(ns_to_ms(t), p.value));
        }
    }
    LogqlValue::Matrix(series.into_iter().map(|(l, s)| Series::new(l, s)).collect())
}
