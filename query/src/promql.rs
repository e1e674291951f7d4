//! The PromQL engine: parses with `promql-parser`, plans, fetches every selector's samples with
//! one `Source::select` each, then evaluates all steps on a blocking thread. An aggregation over
//! a series-by-series expression of one large selector is read and evaluated a part at a time
//! first (`parts`), so its samples never sit in memory whole.
//!
//! Semantics are Prometheus 3's: left-open lookback `(t - lookback, t]` and range windows
//! `(t - range, t]`, staleness markers ending a series, `offset`, `@ start()/end()`, subqueries
//! aligned to their step and evaluated inside left-open windows. Duration expressions
//! (`x[5m * 2]`, `offset -step()`) are evaluated into plain durations before parsing
//! (`durations`).

mod aggregate;
mod annotations;
mod binary;
mod buckets;
pub(crate) mod diagnosis;
mod durations;
mod eval;
mod fetch;
mod functions;
mod histogram_vectors;
mod native_histogram;
mod parts;
mod plan;
mod position;
mod results_cache;
mod value;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use promql_parser::parser::{Expr, VectorSelector, value::ValueType};
use tributary_storage::auth::Identity;
use tributary_storage::read::{SelectRequest, Source, sorted_union};
use tributary_storage::rollup::Resolution;
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{Labels, Matcher, Sample, Series, TimeRange, TimestampMs};

use crate::admission::{self, Language, admit, on_deep_stack};
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;
use crate::scope::ScopedSource;
use crate::token_limits::TokenLimits;
pub use annotations::Annotations;
use durations::QueryTimes;
use eval::Guard;
use fetch::requests;
pub use native_histogram::{Bucket as HistogramBucket, NativeHistogram};
use plan::{PlanContext, Selector};
use results_cache::ResultsCache;
pub use results_cache::ResultsCacheConfig;
pub(crate) use value::format_value;
use value::{Data, Steps};
pub use value::{HistogramSeries, Value, VectorSample};

/// Prometheus's cap on the points a range query may return per series (enforced by the HTTP
/// API; the engine itself only refuses more steps than `max_samples`).
pub(crate) const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// How many of a listing's requests (one per `match[]` alternative) run concurrently between
/// two checks of the deadline.
const LISTING_BATCH: usize = 16;

/// A query's answer and what Prometheus would say beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The answer.
    pub value: Value,
    /// Warnings and infos about it.
    pub annotations: Annotations,
    /// The coarsest data any of its selectors read.
    pub tier: Tier,
}

/// Which data a selector reads: raw samples or the buckets of a rollup resolution (see
/// `RollupsConfig`, `query.rollups`). Ordered from finest to coarsest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Raw samples.
    #[default]
    Raw,
    /// Rollup buckets of this resolution.
    Rollup(Resolution),
}

impl Tier {
    /// `raw`, `5m` or `1h`: the `X-Tributary-Tier` header and the `tier` label on `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Rollup(r) => r.name(),
        }
    }
}

/// Evaluates PromQL against a [`Source`].
#[derive(Debug, Clone)]
pub struct Engine {
    source: Arc<dyn Source>,
    cfg: QueryConfig,
    metrics: QueryMetrics,
    /// The limits of the request's token tighter than `cfg`'s (already applied to `cfg`): set
    /// by [`Engine::limited`], so refusals can name them.
    token: Option<Arc<TokenLimits>>,
    /// Range answers' settled steps (`query.results_cache`), shared by the scoped and limited
    /// engines; `scope` keys them apart.
    results: Option<Arc<ResultsCache>>,
    /// The read scope, as the results cache keys it (empty: every cluster).
    scope: String,
}

impl Engine {
    /// An engine reading `source` (the binary hands in the head and Parquet merged).
    pub fn new(source: Arc<dyn Source>, cfg: QueryConfig) -> Self {
        Self {
            source,
            results: ResultsCache::new(&cfg.results_cache).map(Arc::new),
            cfg,
            metrics: QueryMetrics::default(),
            token: None,
            scope: String::new(),
        }
    }

    /// The same engine reading only the clusters `scope` admits: every selection it makes
    /// carries the scope (see `scope`), whatever the query. Shares the counters.
    pub fn scoped(&self, scope: &ClusterScope) -> Self {
        Self {
            source: Arc::new(ScopedSource::new(self.source.clone(), scope.clone())),
            scope: format!("{scope:?}"),
            ..self.clone()
        }
    }

    /// The same engine under the query limits of the token `id` (see `token_limits`): each
    /// one tighter than `query.*` replaces it, and refusals by one of them name the token.
    pub fn limited(&self, id: &Identity) -> Self {
        let limits = TokenLimits::new(id, self.cfg.max_samples, self.cfg.timeout, self.metrics.clone());
        let mut cfg = self.cfg.clone();
        cfg.max_samples = limits.samples(cfg.max_samples);
        cfg.timeout = limits.timeout(cfg.timeout);
        Self {
            cfg,
            token: Some(Arc::new(limits)),
            ..self.clone()
        }
    }

    /// `e`, as the token's refusal when one of its limits was the one hit.
    fn attribute(&self, e: Error, requested_timeout: Option<Duration>) -> Error {
        match &self.token {
            Some(t) => t.attribute(e, requested_timeout),
            None => e,
        }
    }

    /// Refuses an answer of `n` series when the request's token may receive fewer (its
    /// `max_series`); `what` names the answer (`query result`, `series listing`).
    pub(crate) fn check_series(&self, n: usize, what: &str) -> Result<()> {
        self.token.as_ref().map_or(Ok(()), |t| t.check_series(n, what))
    }

    /// `query.max_listing_items`: the most entries a listing may answer with.
    pub(crate) fn max_listing_items(&self) -> usize {
        self.cfg.max_listing_items
    }

    /// `query.max_samples` (or the token's): the most samples a raw read (remote-read,
    /// `/federate`) may load.
    pub(crate) fn max_samples(&self) -> usize {
        self.cfg.max_samples
    }

    /// `query.lookback_delta` in milliseconds: how far back `/federate` looks for a series'
    /// latest sample.
    pub(crate) fn lookback_ms(&self) -> i64 {
        duration_ms(self.cfg.lookback_delta)
    }

    /// The engine's counters (register them to expose them).
    pub fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    /// The source queries read (the HTTP API reads exemplars and metadata from it directly).
    pub(crate) fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Evaluates `query` at one instant, with its annotations (what the HTTP API serves).
    pub(crate) async fn instant_query(
        &self,
        query: &str,
        time_ms: TimestampMs,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let answer = self.run(query, Steps::instant(time_ms), timeout).await;
        answer.map_err(|e| self.attribute(e, timeout))
    }

    /// Evaluates `query` at `start, start + step, ... <= end`, with its annotations.
    pub async fn range_query(
        &self,
        query: &str,
        start_ms: TimestampMs,
        end_ms: TimestampMs,
        step_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        let answer = self.run_range(query, start_ms, end_ms, step_ms, timeout).await;
        answer.map_err(|e| self.attribute(e, timeout))
    }

    async fn run_range(
        &self,
        query: &str,
        start_ms: TimestampMs,
        end_ms: TimestampMs,
        step_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<QueryResult> {
        if end_ms < start_ms {
            return Err(Error::BadData("end timestamp must not be before start time".into()));
        }
        if step_ms <= 0 {
            return Err(Error::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        // In i128: the difference of two timestamps may not fit an i64.
        let count = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) + 1;
        if count > self.cfg.max_samples as i128 || count >= i128::from(u32::MAX) {
            return Err(Error::TooManySamples);
        }
        let cache = self
            .results
            .as_ref()
            .and_then(|c| results_cache::Key::of(query, start_ms, step_ms, &self.scope).map(|key| (c, key)));
        let Some((cache, key)) = cache else {
            return self.run(query, Steps::range(start_ms, end_ms, step_ms), timeout).await;
        };
        // Warnings of ingesters not answering go to the request's collector, not the answer.
        let remote_warnings = || crate::remote::current_warnings().map_or(0, |w| w.lock().len());
        let warned = remote_warnings();
        let answer = match cache.get(&key, start_ms) {
            // The cached steps from `start`, and only the later ones evaluated.
            Some(hit) => {
                let upto = hit.to.min(end_ms);
                let head = results_cache::slice(&hit.series, start_ms, upto);
                if upto == end_ms {
                    self.metrics.results_cache("hit");
                    QueryResult {
                        value: Value::Matrix(head),
                        annotations: hit.annotations,
                        tier: hit.tier,
                    }
                } else {
                    let tail = self
                        .run(query, Steps::range(upto + step_ms, end_ms, step_ms), timeout)
                        .await?;
                    let Value::Matrix(later) = tail.value else {
                        // Native histograms are not cached: evaluate the whole range.
                        return self.run(query, Steps::range(start_ms, end_ms, step_ms), timeout).await;
                    };
                    self.metrics.results_cache("partial");
                    let mut annotations = hit.annotations;
                    annotations.extend(tail.annotations);
                    QueryResult {
                        value: Value::Matrix(results_cache::merge(head, later)),
                        annotations,
                        tier: hit.tier.max(tail.tier),
                    }
                }
            }
            None => {
                self.metrics.results_cache("miss");
                self.run(query, Steps::range(start_ms, end_ms, step_ms), timeout)
                    .await?
            }
        };
        if remote_warnings() == warned
            && let Some(settled) = cache.settled_until(start_ms, end_ms, step_ms)
        {
            cache.put(key, start_ms, settled, &answer.value, &answer.annotations, answer.tier);
        }
        Ok(answer)
    }

    /// Label sets of the series matching any of `matcher_sets` with data in `range`, sorted.
    /// `query.timeout` counts from `arrived` (when the request came in: parsing thousands of
    /// `match[]` takes its share), as for every listing.
    pub async fn series(
        &self,
        matcher_sets: &[Vec<Matcher>],
        range: TimeRange,
        arrived: Instant,
    ) -> Result<Vec<Labels>> {
        let requests = requests(matcher_sets, range, None);
        let answers = self.each_request(&requests, arrived, |r| self.source.series(r)).await?;
        let mut all: Vec<Labels> = answers.into_iter().flatten().collect();
        // Equal label sets are identical, so an unstable sort orders them the same.
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Label names of matching series (of all series when `matcher_sets` is empty), sorted.
    pub async fn label_names(
        &self,
        matcher_sets: &[Vec<Matcher>],
        range: TimeRange,
        arrived: Instant,
    ) -> Result<Vec<String>> {
        let requests = requests_or_everything(matcher_sets, range);
        let answers = self
            .each_request(&requests, arrived, |r| self.source.label_names(r))
            .await?;
        Ok(sorted_union(answers))
    }

    /// Values of label `name` among matching series (all series when `matcher_sets` is empty).
    pub async fn label_values(
        &self,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        range: TimeRange,
        arrived: Instant,
    ) -> Result<Vec<String>> {
        let requests = requests_or_everything(matcher_sets, range);
        let answers = self
            .each_request(&requests, arrived, |r| self.source.label_values(name, r))
            .await?;
        Ok(sorted_union(answers))
    }

    /// Runs `fut` within `query.timeout`: a listing, exemplar or metadata read past it answers
    /// [`Error::Timeout`], and its work stops with the dropped future.
    pub(crate) async fn within_timeout<T, E: Into<Error>>(
        &self,
        fut: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        let answer = match tokio::time::timeout(self.cfg.timeout, fut).await {
            Ok(answer) => answer.map_err(Into::into),
            Err(_) => Err(Error::Timeout("query execution")),
        };
        answer.map_err(|e| self.attribute(e, None))
    }

    /// `one` for every request of a listing (a `match[]` each) within `query.timeout` from
    /// `arrived` (see [`in_batches`]).
    async fn each_request<'a, T, Fut>(
        &self,
        requests: &'a [SelectRequest],
        arrived: Instant,
        one: impl Fn(&'a SelectRequest) -> Fut,
    ) -> Result<Vec<T>>
    where
        Fut: Future<Output = tributary_storage::Result<T>>,
    {
        let deadline = arrived + self.cfg.timeout;
        let stop = || {
            if Instant::now() >= deadline {
                Err(Error::Timeout("query execution"))
            } else {
                Ok(())
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = match tokio::time::timeout(left, in_batches(requests, &stop, one)).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Timeout("query execution")),
        };
        answer.map_err(|e| self.attribute(e, None))
    }

    /// Parses `text` once it is admitted under the configured size and depth bounds (see
    /// `admission`), and hands the expression to `then`, both on a deep stack (parsing, walking,
    /// printing and dropping the tree recurse per level): every PromQL expression the API reads
    /// besides the queries it evaluates enters here.
    pub(crate) async fn parse_then<T: Send + 'static>(
        &self,
        text: &str,
        then: impl FnOnce(Expr) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        admit(text, Language::Promql, self.cfg.text_limits())?;
        // No query times here: an expression needing them (`[step()]`) is left to the parser.
        let original = text.to_string();
        let text = durations::rewrite(text, QueryTimes::default()).map_or_else(|_| text.to_string(), Cow::into_owned);
        on_deep_stack(move || then(diagnosis::parse(&original, &text)?)).await
    }

    async fn run(&self, query: &str, steps: Steps, timeout: Option<Duration>) -> Result<QueryResult> {
        let timeout = timeout.map_or(self.cfg.timeout, |t| t.min(self.cfg.timeout));
        let deadline = Instant::now() + timeout;
        admit(query, Language::Promql, self.cfg.text_limits())?;
        let lookback_ms = duration_ms(self.cfg.lookback_delta);
        let default_subquery_step_ms = duration_ms(self.cfg.default_subquery_step);
        let tiers = self.tiers();
        let times = QueryTimes {
            step_ms: if steps.start == steps.end { 0 } else { steps.interval },
            range_ms: steps.end - steps.start,
        };
        let original = query.to_string();
        let text = durations::rewrite(query, times)?;
        let text = functions::admit_info_selectors(&text).into_owned();
        // Parsing, planning and dropping the syntax tree recurse per level: on a deep stack.
        // Parsing and planning thousands of selectors takes its share of the timeout too.
        let planned = on_deep_stack(move || {
            let expr = diagnosis::parse(&original, &text)?;
            check_result_type(&expr, &steps)?;
            let ctx = PlanContext {
                query: &text,
                steps,
                lookback_ms,
                default_subquery_step_ms,
                tiers: &tiers,
            };
            plan::plan(&expr, ctx)
        });
        let mut plan = match tokio::time::timeout_at(deadline.into(), planned).await {
            Ok(plan) => plan?,
            Err(_) => return Err(Error::Timeout("query preparation")),
        };
        // Evaluation runs on a blocking thread that outlives this future if the caller goes away;
        // the flag (set on drop) tells it to stop.
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let guard = Guard::new(deadline, cancelled, self.cfg.max_samples);
        let work = async {
            // Native histograms and the raw float reads (those of splittable aggregations
            // counted first, in the same call) in one round trip to each source (an ingester
            // behind a querier), not one after the other.
            let splittable = Self::splittable(&mut plan);
            let (histograms, prefetched) = tokio::join!(
                self.fetch_histograms(&plan.selectors, &guard),
                self.prefetch(&plan.selectors, &splittable, &guard)
            );
            let (histograms, prefetched) = (histograms?, prefetched?);
            // Rollup buckets summarise floats only: a selector holding histograms reads raw.
            for (sel, found) in plan.selectors.iter_mut().zip(&histograms) {
                if !found.is_empty() {
                    sel.tier = None;
                }
            }
            // Counted before parts take their selectors out of the plan's fetch.
            let tier = self.count_tiers(&plan.selectors);
            let mut annotations = Annotations::default();
            let evaluated = self
                .evaluate_in_parts(
                    &mut plan,
                    steps,
                    lookback_ms,
                    &guard,
                    &mut annotations,
                    (&histograms, &prefetched.counts),
                )
                .await?;
            let (fetched, buckets) = self.fetch(&plan.selectors, &prefetched, &guard).await?;
            let metrics = self.metrics.clone();
            let (data, more) = blocking(move || {
                let inputs = eval::Inputs {
                    fetched,
                    buckets,
                    evaluated,
                    histograms,
                };
                let evaluated = eval::evaluate(plan, steps, lookback_ms, guard, inputs);
                if let Err(Error::Canceled(_)) = &evaluated {
                    metrics.evaluations_cancelled.inc();
                }
                evaluated
            })
            .await?;
            annotations.extend(more);
            Ok(QueryResult {
                value: into_value(data, &steps),
                annotations,
                tier,
            })
        };
        match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout("query execution")),
        }
    }

    /// The rollup tiers selectors may read (`query.rollups`), coarsest first.
    fn tiers(&self) -> Vec<(Resolution, i64)> {
        let r = &self.cfg.rollups;
        if !r.enabled {
            return Vec::new();
        }
        vec![
            (Resolution::OneHour, duration_ms(r.min_range_1h)),
            (Resolution::FiveMinutes, duration_ms(r.min_range_5m)),
        ]
    }

    /// Counts each selector that reads data under its tier; returns the coarsest.
    fn count_tiers(&self, selectors: &[Selector]) -> Tier {
        let mut coarsest = Tier::Raw;
        for sel in selectors.iter().filter(|s| s.fetch.is_some()) {
            let tier = sel.tier.map_or(Tier::Raw, Tier::Rollup);
            self.metrics.tier_selected(tier);
            coarsest = coarsest.max(tier);
        }
        coarsest
    }
}

/// `one` for every item, [`LISTING_BATCH`] at a time, asking `stop` before each batch and
/// yielding after it. A source answers a request without yielding when its data is in memory
/// (the head), so thousands of regex `match[]` (or of selectors) would run as one uninterrupted
/// poll that no timer and no disconnect can interrupt; between batches `stop` ends the work past
/// its deadline, and the yield lets a timer fire and a closed connection drop the future.
async fn in_batches<'a, I: 'a, T, E, Fut>(
    items: &'a [I],
    stop: &(dyn Fn() -> Result<()> + Sync),
    one: impl Fn(&'a I) -> Fut,
) -> Result<Vec<T>>
where
    Fut: Future<Output = std::result::Result<T, E>>,
    E: Into<Error>,
{
    let mut answers = Vec::with_capacity(items.len());
    for batch in items.chunks(LISTING_BATCH) {
        stop()?;
        answers.extend(try_join_all(batch.iter().map(&one)).await.map_err(Into::into)?);
        tokio::task::yield_now().await;
    }
    Ok(answers)
}

/// Runs `f` off the runtime's threads (evaluation is CPU-bound) on a stack deep enough for any
/// admitted query (evaluation recurses per level).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    on_deep_stack(f).await
}

/// Parses a series selector such as a `match[]` parameter into its matcher alternatives.
///
/// A selector never nests (its braces are its one level), so deeper text is refused before the
/// parser sees it, whatever its length: a `match[]` cannot carry a hostile expression in.
pub fn parse_series_selector(text: &str) -> Result<Vec<Vec<Matcher>>> {
    let depth = admission::depth(text, Language::Promql);
    if depth > 1 {
        return Err(Error::BadData(format!(
            "expected a series selector, got an expression nested {depth} levels deep"
        )));
    }
    let expr = diagnosis::parse(text, text)?;
    let Expr::VectorSelector(vs) = &expr else {
        return Err(Error::BadData(format!("expected a series selector, got {expr}")));
    };
    selector_matchers(vs)
}

/// A vector selector's matchers, its metric name included, one list per `or` alternative.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let mut base = vs
        .matchers
        .matchers
        .iter()
        .map(plan::convert_matcher)
        .collect::<Result<Vec<_>>>()?;
    if let Some(name) = &vs.name {
        base.push(Matcher::equal(tributary_storage::types::METRIC_NAME, name.clone()));
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|set| {
            let mut all = set.iter().map(plan::convert_matcher).collect::<Result<Vec<_>>>()?;
            all.extend(base.iter().cloned());
            Ok(all)
        })
        .collect()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sets a flag when dropped: the query's future went away (client gone, timeout).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn check_result_type(expr: &Expr, steps: &Steps) -> Result<()> {
    if steps.is_instant() {
        return Ok(());
    }
    match expr.value_type() {
        ValueType::Scalar | ValueType::Vector => Ok(()),
        other => {
            let name = if other == ValueType::Matrix {
                "range vector"
            } else {
                "string"
            };
            Err(Error::BadData(format!(
                "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
            )))
        }
    }
}

fn requests_or_everything(matcher_sets: &[Vec<Matcher>], range: TimeRange) -> Vec<SelectRequest> {
    if matcher_sets.is_empty() {
        vec![SelectRequest::new(Vec::new(), range)]
    } else {
        requests(matcher_sets, range, None)
    }
}

fn into_value(data: Data, steps: &Steps) -> Value {
    let instant = steps.is_instant();
    match data {
        Data::Scalar(v) if instant => Value::Scalar {
            timestamp: steps.start,
            value: v[0],
        },
        Data::Scalar(v) => {
            let samples = v
                .into_iter()
                .enumerate()
                .map(|(i, value)| Sample::new(steps.time(i), value))
                .collect();
            Value::Matrix(vec![Series::new(Labels::default(), samples)])
        }
        Data::String(s) => Value::String {
            timestamp: steps.start,
            value: s,
        },
        Data::Vector(v) if instant => Value::Vector(
            v.into_iter()
                .filter_map(|s| {
                    let (value, histogram) = match (s.points.first(), s.histograms.into_iter().next()) {
                        (Some(p), _) => (p.value, None),
                        (None, Some(h)) => (0.0, Some(h.value)),
                        (None, None) => return None,
                    };
                    Some(VectorSample {
                        labels: s.labels,
                        timestamp: steps.start,
                        value,
                        histogram,
                    })
                })
                .collect(),
        ),
        Data::Vector(v) if v.iter().any(|s| !s.histograms.is_empty()) => {
            let mut series: Vec<HistogramSeries> = v
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| HistogramSeries {
                    labels: s.labels,
                    floats: s
                        .points
                        .iter()
                        .map(|p| Sample::new(steps.time(p.step as usize), p.value))
                        .collect(),
                    histograms: s
                        .histograms
                        .into_iter()
                        .map(|h| (steps.time(h.step as usize), h.value))
                        .collect(),
                })
                .collect();
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::HistogramMatrix(series)
        }
        Data::Vector(v) => {
            let mut series: Vec<Series> = v
                .into_iter()
                .filter(|s| !s.points.is_empty())
                .map(|s| {
                    let samples = s
                        .points
                        .iter()
                        .map(|p| Sample::new(steps.time(p.step as usize), p.value))
                        .collect();
                    Series::new(s.labels, samples)
                })
                .collect();
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(series)
        }
        Data::Matrix(m) => Value::Matrix(m),
        Data::HistogramMatrix(m) => Value::HistogramMatrix(m),
    }
}

/// Entry points of the engine tests: the value without annotations, with or without a timeout.
#[cfg(test)]
impl Engine {
    /// Evaluates `query` at one instant (milliseconds since the epoch).
    pub(crate) async fn instant(&self, query: &str, time_ms: TimestampMs) -> Result<Value> {
        self.instant_with_timeout(query, time_ms, None).await
    }

    /// Like [`Engine::instant`], with a per-request timeout that can only shorten the configured one.
    pub(crate) async fn instant_with_timeout(
        &self,
        query: &str,
        time_ms: TimestampMs,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        Ok(self.instant_query(query, time_ms, timeout).await?.value)
    }

    /// Evaluates `query` at `start, start + step, ... <= end` (milliseconds).
    pub(crate) async fn range(
        &self,
        query: &str,
        start_ms: TimestampMs,
        end_ms: TimestampMs,
        step_ms: i64,
    ) -> Result<Value> {
        self.range_with_timeout(query, start_ms, end_ms, step_ms, None).await
    }

    /// Like [`Engine::range`], with a per-request timeout that can only shorten the configured one.
    pub(crate) async fn range_with_timeout(
        &self,
        query: &str,
        start_ms: TimestampMs,
        end_ms: TimestampMs,
        step_ms: i64,
        timeout: Option<Duration>,
    ) -> Result<Value> {
        Ok(self.range_query(query, start_ms, end_ms, step_ms, timeout).await?.value)
    }
}
