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
mod functions;
mod histogram_vectors;
mod native_histogram;
mod parts;
mod plan;
mod position;
mod value;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use promql_parser::parser::{Expr, VectorSelector, value::ValueType};
use tributary_storage::auth::Identity;
use tributary_storage::read::{SelectRequest, SeriesSize, Source, sorted_union};
use tributary_storage::rollup::{Bucket, BucketSeries, Resolution};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::HistogramSeries as StoredHistograms;
use tributary_storage::types::{Labels, Matcher, Sample, Series, SeriesIdSet, TimeRange, TimestampMs, is_stale_nan};

use crate::admission::{self, Language, admit, on_deep_stack};
use crate::config::QueryConfig;
use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;
use crate::scope::ScopedSource;
use crate::token_limits::TokenLimits;
pub use annotations::Annotations;
use durations::QueryTimes;
use eval::Guard;
pub use native_histogram::{Bucket as HistogramBucket, NativeHistogram};
use plan::{PlanContext, Selector};
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
}

impl Engine {
    /// An engine reading `source` (the binary hands in the head and Parquet merged).
    pub fn new(source: Arc<dyn Source>, cfg: QueryConfig) -> Self {
        Self {
            source,
            cfg,
            metrics: QueryMetrics::default(),
            token: None,
        }
    }

    /// The same engine reading only the clusters `scope` admits: every selection it makes
    /// carries the scope (see `scope`), whatever the query. Shares the counters.
    pub fn scoped(&self, scope: &ClusterScope) -> Self {
        Self {
            source: Arc::new(ScopedSource::new(self.source.clone(), scope.clone())),
            cfg: self.cfg.clone(),
            metrics: self.metrics.clone(),
            token: self.token.clone(),
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
            source: self.source.clone(),
            cfg,
            metrics: self.metrics.clone(),
            token: Some(Arc::new(limits)),
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
        self.run(query, Steps::range(start_ms, end_ms, step_ms), timeout).await
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
            // Native histograms and the splittable aggregations' sizes in one round trip to
            // each source (an ingester behind a querier), not one after the other.
            let splittable = Self::splittable(&mut plan);
            let (histograms, counts) = tokio::join!(
                self.fetch_histograms(&plan.selectors, &guard),
                self.count_splittable(&plan.selectors, &splittable)
            );
            let (histograms, counts) = (histograms?, counts?);
            // Rollup buckets summarise floats only: a selector holding histograms reads raw.
            for (sel, found) in plan.selectors.iter_mut().zip(&histograms) {
                if !found.is_empty() {
                    sel.tier = None;
                }
            }
            let mut annotations = Annotations::default();
            let evaluated = self
                .evaluate_in_parts(
                    &mut plan,
                    steps,
                    lookback_ms,
                    &guard,
                    &mut annotations,
                    (&histograms, &counts),
                )
                .await?;
            let tier = self.count_tiers(&plan.selectors);
            let (fetched, buckets) = self.fetch(&plan.selectors, &guard).await?;
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

    /// Evaluates, a part at a time, every aggregation of `plan` that [`parts`] can split and
    /// whose selector holds more than `part_samples` samples; each is replaced in the plan by
    /// [`plan::Node::Evaluated`] (an index into the returned values) and its selector is no
    /// longer fetched. Takes each selector's native histograms and the sizes
    /// [`Engine::count_splittable`] counted.
    async fn evaluate_in_parts(
        &self,
        plan: &mut plan::Plan,
        steps: Steps,
        lookback_ms: i64,
        guard: &Guard,
        annotations: &mut Annotations,
        (histograms, counts): (&[Vec<StoredHistograms>], &HashMap<usize, usize>),
    ) -> Result<Vec<Vec<value::StepSeries>>> {
        let mut evaluated = Vec::new();
        let plan::Plan { root, selectors } = plan;
        for (node, sel) in parts::candidates(root) {
            // Buckets are few: a selector read from rollups is read whole.
            let Some(range) = selectors[sel].fetch.filter(|_| selectors[sel].tier.is_none()) else {
                continue;
            };
            // Parts read floats only: a selector holding native histograms is read whole.
            if !histograms[sel].is_empty() {
                continue;
            }
            // Counting is cheaper than listing: most selectors fit, and are then read whole.
            let budget = self.cfg.part_samples;
            let count = match counts.get(&sel) {
                Some(&count) => count,
                None => self.count_samples(&selectors[sel], range, budget).await?,
            };
            if count <= budget {
                continue;
            }
            let sizes = self.series_samples(&selectors[sel], range).await?;
            if sizes.iter().map(|s| s.samples).sum::<usize>() <= budget {
                continue;
            }
            let regroup = parts::regroup(node).ok_or_else(|| Error::Internal("a part is not an aggregation".into()))?;
            let aggregation = Arc::new(std::mem::replace(node, plan::Node::Evaluated(evaluated.len())));
            let mut partials = Vec::new();
            self.metrics.part_aggregations.inc();
            for part in parts::cut(sizes, self.cfg.part_samples) {
                self.metrics.parts.inc();
                let only: SeriesIdSet = part.iter().map(Labels::series_id).collect();
                let series = self
                    .fetch_selector(&selectors[sel], range, Some(Arc::new(only)), guard)
                    .await?;
                let mut fetched: Vec<Vec<Series>> = selectors.iter().map(|_| Vec::new()).collect();
                fetched[sel] = series;
                let (aggregation, selectors, guard) = (aggregation.clone(), selectors.clone(), guard.clone());
                let (partial, more) =
                    blocking(move || eval::evaluate_node(&aggregation, selectors, steps, lookback_ms, guard, fetched))
                        .await?;
                partials.extend(partial);
                annotations.extend(more);
            }
            let guard = guard.clone();
            let merged = blocking(move || aggregate::evaluate(&regroup, partials, None, &steps, &guard)).await?;
            tracing::debug!(selector = sel, series = merged.len(), "aggregation evaluated in parts");
            evaluated.push(merged);
            selectors[sel].fetch = None;
        }
        Ok(evaluated)
    }

    /// Every selector's native-histogram series ([`Source::select_histograms`]), sorted by
    /// labels, a series matching several alternatives once. A selector that finds any reads raw
    /// samples: rollup buckets summarise floats only.
    async fn fetch_histograms(&self, selectors: &[Selector], guard: &Guard) -> Result<Vec<Vec<StoredHistograms>>> {
        let fetched = in_batches(selectors, &|| guard.check(), |sel| async move {
            let Some(range) = sel.fetch else {
                return Ok::<_, Error>(Vec::new());
            };
            let requests = requests(&sel.matcher_sets, range, None);
            let answers = in_batches(&requests, &|| guard.check(), |r| self.source.select_histograms(r)).await?;
            let mut all: Vec<StoredHistograms> = answers.into_iter().flatten().collect();
            all.sort_by(|a, b| a.labels.cmp(&b.labels));
            all.dedup_by(|later, kept| later.labels == kept.labels);
            Ok(all)
        })
        .await?;
        let total: usize = fetched.iter().flatten().map(|s| s.samples.len()).sum();
        if total > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(fetched)
    }

    /// The selectors (with their fetched range) of the aggregations [`parts`] could split that
    /// read raw samples: what [`Engine::evaluate_in_parts`] counts.
    fn splittable(plan: &mut plan::Plan) -> Vec<(usize, TimeRange)> {
        let plan::Plan { root, selectors } = plan;
        parts::candidates(root)
            .into_iter()
            .filter_map(|(_, sel)| Some((sel, selectors[sel].fetch.filter(|_| selectors[sel].tier.is_none())?)))
            .collect()
    }

    /// [`Engine::count_samples`] of every `(selector, range)`, concurrently, capped at
    /// `query.part_samples`.
    async fn count_splittable(
        &self,
        selectors: &[Selector],
        which: &[(usize, TimeRange)],
    ) -> Result<HashMap<usize, usize>> {
        let budget = self.cfg.part_samples;
        let counts = try_join_all(
            which
                .iter()
                .map(|&(sel, range)| self.count_samples(&selectors[sel], range, budget)),
        )
        .await?;
        Ok(which.iter().map(|&(sel, _)| sel).zip(counts).collect())
    }

    /// At most how many samples a selector reads in `range` (a series matching several
    /// alternatives counts once per alternative).
    async fn count_samples(&self, sel: &Selector, range: TimeRange, limit: usize) -> Result<usize> {
        let requests = requests(&sel.matcher_sets, range, None);
        let counts = try_join_all(requests.iter().map(|r| self.source.count_samples(r, limit))).await?;
        Ok(counts.into_iter().sum())
    }

    /// The series a selector reads in `range`, each once, with at most how many samples each.
    async fn series_samples(&self, sel: &Selector, range: TimeRange) -> Result<Vec<SeriesSize>> {
        let requests = requests(&sel.matcher_sets, range, None);
        let answers = try_join_all(requests.iter().map(|r| self.source.series_samples(r))).await?;
        // A series matching several alternatives is one series.
        Ok(SeriesSize::merge(answers.into_iter().flatten(), usize::max))
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

    /// One `select` per selector (per `or` alternative), concurrently; results are merged by label
    /// set and sorted, so evaluation order is deterministic whatever the source returns. Selectors
    /// read from a rollup tier get their buckets instead (second list; the first is then empty),
    /// each bucket counting as a sample towards `query.max_samples`.
    async fn fetch(&self, selectors: &[Selector], guard: &Guard) -> Result<(Vec<Vec<Series>>, Vec<Vec<BucketSeries>>)> {
        // A selector the query holds twice (the generated SLO ratio `(sum(E) or 0 * sum(T)) /
        // sum(T)` reads `T` twice) is read once and copied: with the reads' files cached, what is
        // left of a read is merging pieces, which a copy does not repeat.
        let mut unique: Vec<&Selector> = Vec::new();
        let slot: Vec<usize> = selectors
            .iter()
            .map(|sel| {
                unique.iter().position(|u| same_read(u, sel)).unwrap_or_else(|| {
                    unique.push(sel);
                    unique.len() - 1
                })
            })
            .collect();
        let fetched = in_batches(&unique, &|| guard.check(), |&sel| async move {
            match (sel.fetch, sel.tier) {
                (Some(range), Some(res)) if sel.edges => {
                    Ok((Vec::new(), self.fetch_edged(sel, range.end, res, guard).await?))
                }
                (Some(range), Some(res)) => Ok((Vec::new(), self.fetch_buckets(sel, range, res, guard).await?)),
                (Some(range), None) => Ok((self.fetch_selector(sel, range, None, guard).await?, Vec::new())),
                (None, _) => Ok::<_, Error>((Vec::new(), Vec::new())),
            }
        })
        .await?;
        // Each selector's answer: its first copy's, moved by the last selector using it.
        let mut answers: Vec<Option<(Vec<Series>, Vec<BucketSeries>)>> = fetched.into_iter().map(Some).collect();
        let mut uses = vec![0usize; answers.len()];
        slot.iter().for_each(|&k| uses[k] += 1);
        let (mut fetched, mut buckets) = (Vec::with_capacity(selectors.len()), Vec::with_capacity(selectors.len()));
        for k in slot {
            uses[k] -= 1;
            let (series, pieces) = if uses[k] == 0 {
                answers[k].take().expect("moved by its last user only")
            } else {
                answers[k].clone().expect("not moved yet")
            };
            fetched.push(series);
            buckets.push(pieces);
        }
        let total: usize = fetched.iter().flatten().map(|s| s.samples.len()).sum::<usize>()
            + buckets.iter().flatten().map(|s| s.buckets.len()).sum::<usize>();
        if total > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok((fetched, buckets))
    }

    /// One selector's buckets of `res` in `range` (whole buckets, as the planner chose the tier),
    /// a series matching several alternatives once, sorted by labels. A selector with one
    /// window reads it with `Source::select_window`: whole rollup days may come as one bucket.
    async fn fetch_buckets(
        &self,
        sel: &Selector,
        range: TimeRange,
        res: Resolution,
        guard: &Guard,
    ) -> Result<Vec<BucketSeries>> {
        let requests = requests(&sel.matcher_sets, range, None);
        let answers = in_batches(&requests, &|| guard.check(), |r| async move {
            if sel.one_window {
                self.source.select_window(r, res).await
            } else {
                self.source.select_buckets(r, res).await
            }
        })
        .await?;
        let mut all: Vec<BucketSeries> = answers.into_iter().flat_map(|a| a.into_series()).collect();
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        all.dedup_by(|later, kept| later.labels == kept.labels);
        Ok(all)
    }

    /// The buckets of a selector's one window `(end - range, end]` (`end`: its fetched range's
    /// end) whose end is not on a
    /// boundary of `res` (see `plan::Planner::choose_tier`): the whole buckets inside it from
    /// the tier, and before and after them a piece summarising the raw samples of each partial
    /// bucket, labelled so that the window holds it (the first piece by its bucket's end, which
    /// is after the window's start; the last by the window's end). [`Bucket::append`] combines
    /// pieces and whole buckets exactly, so the window's summary is the one its raw samples give.
    async fn fetch_edged(
        &self,
        sel: &Selector,
        end: TimestampMs,
        res: Resolution,
        guard: &Guard,
    ) -> Result<Vec<BucketSeries>> {
        let start = end.saturating_sub(sel.range_ms);
        let first_boundary = res.bucket_of(start);
        let last_boundary = end - end.rem_euclid(res.ms());
        let whole = TimeRange::new(first_boundary.saturating_add(1), last_boundary);
        let (inside, head, tail) = futures::try_join!(
            async {
                if whole.start > whole.end {
                    return Ok(Vec::new());
                }
                self.fetch_buckets(sel, whole, res, guard).await
            },
            self.fetch_selector(
                sel,
                TimeRange::new(start.saturating_add(1), first_boundary),
                None,
                guard
            ),
            self.fetch_selector(sel, TimeRange::new(last_boundary.saturating_add(1), end), None, guard),
        )?;
        let mut by_labels: BTreeMap<Labels, Vec<Bucket>> = BTreeMap::new();
        for s in inside {
            by_labels.entry(s.labels).or_default().extend(s.buckets);
        }
        for (series, label, at_front) in [(head, first_boundary, true), (tail, end, false)] {
            for s in series {
                let mut samples = s.samples.iter().filter(|p| !is_stale_nan(p.value));
                let Some(&first) = samples.next() else {
                    continue;
                };
                let mut piece = Bucket::of(label, first);
                samples.for_each(|&p| piece.push(p));
                let buckets = by_labels.entry(s.labels).or_default();
                if at_front {
                    buckets.insert(0, piece);
                } else {
                    buckets.push(piece);
                }
            }
        }
        Ok(by_labels
            .into_iter()
            .map(|(labels, buckets)| BucketSeries { labels, buckets })
            .collect())
    }

    /// One selector's series in `range` (only those in `only`, when given), sorted by labels.
    async fn fetch_selector(
        &self,
        sel: &Selector,
        range: TimeRange,
        only: Option<Arc<SeriesIdSet>>,
        guard: &Guard,
    ) -> Result<Vec<Series>> {
        let mut requests = requests(&sel.matcher_sets, range, only);
        for r in &mut requests {
            r.newest_only = sel.newest_only;
        }
        let answers = in_batches(&requests, &|| guard.check(), |r| self.source.select(r)).await?;
        let series = union_by_labels(answers);
        if series.iter().map(|s| s.samples.len()).sum::<usize>() > self.cfg.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(series)
    }
}

/// Whether two selectors read the same data: same matchers, window, range, tier and read kind.
fn same_read(a: &Selector, b: &Selector) -> bool {
    a.matcher_sets == b.matcher_sets
        && a.fetch == b.fetch
        && a.range_ms == b.range_ms
        && a.tier == b.tier
        && a.edges == b.edges
        && a.one_window == b.one_window
        && a.newest_only == b.newest_only
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

/// One request per matcher alternative, each limited to `only` when given.
fn requests(matcher_sets: &[Vec<Matcher>], range: TimeRange, only: Option<Arc<SeriesIdSet>>) -> Vec<SelectRequest> {
    matcher_sets
        .iter()
        .map(|m| SelectRequest {
            only: only.clone(),
            ..SelectRequest::new(m.clone(), range)
        })
        .collect()
}

/// Merges the answers of a selector's alternatives (a series may match several) and sorts by
/// labels, the order Prometheus's storage returns.
fn union_by_labels(mut answers: Vec<Vec<Series>>) -> Vec<Series> {
    if answers.len() == 1 {
        // One answer holds each label set once (the `Source` contract): order only.
        let mut all = answers.pop().unwrap_or_default();
        all.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        return all;
    }
    let mut all: Vec<Series> = answers.into_iter().flatten().collect();
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    all.dedup_by(|later, kept| later.labels == kept.labels);
    all
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
