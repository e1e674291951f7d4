//! The evaluator: walks a [`Plan`]'s nodes once, each node producing its value for every step
//! of the query at once ([`Data`]). Selectors turn fetched samples into step series here;
//! operators live in `binary`, `aggregate` and `functions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tributary_storage::rollup::BucketSeries;
use tributary_storage::signals::HistogramSeries as StoredHistograms;
use tributary_storage::types::{Sample, Series, TimestampMs, is_stale_nan};

use super::aggregate::{AggOp, AggregateParam};
use super::annotations::Annotations;
use super::plan::{Node, Plan, Selector, SubqueryNode};
use super::value::{Data, Point, StepSeries, Steps, into_without_name};
use super::{aggregate, binary, functions, histogram_vectors};
use crate::error::{Error, Result};

mod range;
pub(crate) use range::chunked;

/// Within one series, evaluation asks its [`Guard`] once per this many steps (a check is an
/// atomic load and a clock read).
const STEPS_PER_CHECK: usize = 256;

/// Stops evaluation when the query's deadline passes or its caller goes away, and enforces the
/// sample limit. Cheap enough to check once per step.
#[derive(Clone, Debug)]
pub(crate) struct Guard {
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
    max_samples: usize,
}

impl Guard {
    pub(crate) fn new(deadline: Instant, cancelled: Arc<AtomicBool>, max_samples: usize) -> Self {
        Self {
            deadline,
            cancelled,
            max_samples,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Error::Canceled("expression evaluation"));
        }
        if Instant::now() >= self.deadline {
            return Err(Error::Timeout("expression evaluation"));
        }
        Ok(())
    }

    pub(crate) fn check_samples(&self, n: usize) -> Result<()> {
        if n > self.max_samples {
            Err(Error::TooManySamples)
        } else {
            Ok(())
        }
    }
}

/// The window a range function sees at one step: samples in `(end - range_ms, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) end: i64,
    pub(crate) range_ms: i64,
}

impl Window {
    pub(crate) fn start(&self) -> i64 {
        self.end - self.range_ms
    }
}

/// The argument of a range function: a range selector's samples or a subquery's points, and
/// where each step's window sits (it ends at the step, or the `@` time, minus the offset).
#[derive(Debug)]
pub(crate) struct RangeArg {
    pub(crate) series: Vec<Series>,
    /// Native-histogram series of a range selector (a subquery's are refused), sorted by labels.
    pub(crate) histograms: Vec<StoredHistograms>,
    pub(crate) range_ms: i64,
    pub(crate) offset_ms: i64,
    pub(crate) at: Option<TimestampMs>,
}

/// Metric names Prometheus takes for counters; `rate`/`increase` of anything else earns an info.
const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];

#[derive(Debug)]
pub(crate) struct Evaluator {
    pub(crate) steps: Steps,
    pub(crate) lookback_ms: i64,
    pub(crate) guard: Guard,
    selectors: Vec<Selector>,
    /// Fetched series per selector, sorted by labels; taken by the one node that reads them.
    fetched: Vec<Option<Vec<Series>>>,
    /// Values of [`Node::Evaluated`] nodes, taken by the node.
    evaluated: Vec<Option<Vec<StepSeries>>>,
    /// Fetched buckets per selector read from a rollup tier, sorted by labels.
    buckets: Vec<Option<Vec<BucketSeries>>>,
    /// Fetched native-histogram series per selector, sorted by labels.
    histograms: Vec<Option<Vec<StoredHistograms>>>,
    /// The function or operator whose arguments are being evaluated, named when it refuses
    /// native histograms.
    pub(crate) consumer: String,
    /// A subquery argument already evaluated (to see whether it holds native histograms),
    /// handed to the next [`Evaluator::range_arg`] of a subquery.
    pub(crate) pending_range_arg: Option<RangeArg>,
    pub(crate) annotations: Annotations,
}

impl Evaluator {
    pub(crate) fn new(
        steps: Steps,
        lookback_ms: i64,
        guard: Guard,
        plan_selectors: Vec<Selector>,
        fetched: Vec<Vec<Series>>,
    ) -> Self {
        Self {
            steps,
            lookback_ms,
            guard,
            selectors: plan_selectors,
            fetched: fetched.into_iter().map(Some).collect(),
            evaluated: Vec::new(),
            buckets: Vec::new(),
            histograms: Vec::new(),
            consumer: String::new(),
            pending_range_arg: None,
            annotations: Annotations::default(),
        }
    }

    /// Evaluates the plan's root (the plan's selectors must be the ones given to `new`).
    pub(crate) fn run(mut self, plan_root: &Node) -> Result<(Data, Annotations)> {
        let data = self.eval(plan_root)?;
        Ok((data, self.annotations))
    }

    pub(crate) fn eval(&mut self, node: &Node) -> Result<Data> {
        self.guard.check()?;
        let data = match node {
            Node::Number(v) => Data::Scalar(vec![*v; self.steps.count]),
            Node::String(s) => Data::String(s.clone()),
            Node::Vector(sel) => Data::Vector(self.instant_selector(*sel, false)?),
            Node::Matrix(sel) => self.matrix_selector(*sel)?,
            Node::Subquery(sq) => {
                let (mut series, histograms) = self.subquery_series(sq)?;
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
                if histograms.is_empty() {
                    Data::Matrix(series)
                } else {
                    // The subquery's points are its window already.
                    let all = Window {
                        end: i64::MAX / 2,
                        range_ms: i64::MAX,
                    };
                    Data::HistogramMatrix(histogram_vectors::matrix(series, histograms, all))
                }
            }
            Node::Negate(inner) => match self.eval(inner)? {
                Data::Scalar(v) => Data::Scalar(v.into_iter().map(|x| -x).collect()),
                Data::Vector(v) if v.iter().any(|s| !s.histograms.is_empty()) => {
                    Data::Vector(distinct_series(histogram_vectors::negate(v))?)
                }
                Data::Vector(v) => Data::Vector(negate(v)?),
                other => return Err(Error::Internal(format!("unary minus on {}", other.type_name()))),
            },
            Node::Binary(b) => {
                let lhs = self.eval(&b.lhs)?;
                let rhs = self.eval(&b.rhs)?;
                if histogram_vectors::holds_histograms(&lhs) || histogram_vectors::holds_histograms(&rhs) {
                    histogram_vectors::binary(self, b, lhs, rhs)?
                } else {
                    binary::evaluate(b, lhs, rhs, &self.steps, &self.guard)?
                }
            }
            Node::Aggregate(a) => {
                let param = match &a.param {
                    AggregateParam::Scalar(p) => Some(self.scalar(p)?),
                    _ => None,
                };
                if a.op == AggOp::Quantile
                    && let Some((min, max)) = param.as_deref().and_then(|p| aggregate::Param(p).range())
                {
                    // Prometheus warns of a NaN anywhere, else of the largest above 1 and the
                    // smallest below 0, over all steps.
                    let (above, below) = (max.is_nan() || max > 1.0, min < 0.0);
                    for (q, out) in [(max, above), (min, below)] {
                        if out {
                            self.annotations.quantile_out_of_range(q, &a.param_position);
                        }
                    }
                }
                if a.op == AggOp::LimitRatio
                    && let Some((min, max)) = param.as_deref().and_then(|p| aggregate::Param(p).range())
                {
                    // Prometheus warns of the largest above 1 and the smallest below -1.
                    for (r, cap) in [(max, 1.0), (min, -1.0)] {
                        if (cap > 0.0 && r > cap) || (cap < 0.0 && r < cap) {
                            self.annotations.ratio_out_of_range(r, cap, &a.param_position);
                        }
                    }
                }
                let outer = std::mem::replace(&mut self.consumer, format!("the {} aggregation", a.op.name()));
                let input = self.eval(&a.expr).and_then(Data::into_vector);
                self.consumer = outer;
                let input = input?;
                if input.iter().any(|s| !s.histograms.is_empty()) {
                    return Ok(Data::Vector(histogram_vectors::aggregate(self, a, input)?));
                }
                Data::Vector(aggregate::evaluate(
                    a,
                    input,
                    param.as_deref(),
                    &self.steps,
                    &self.guard,
                )?)
            }
            Node::Call(call) => {
                let outer = std::mem::replace(&mut self.consumer, format!("{}()", call.name));
                let data = functions::eval_call(self, call);
                self.consumer = outer;
                data?
            }
            Node::Evaluated(i) => Data::Vector(
                self.evaluated
                    .get_mut(*i)
                    .and_then(Option::take)
                    .ok_or_else(|| Error::Internal(format!("evaluated value {i} missing or read twice")))?,
            ),
        };
        if let Data::Vector(v) = &data {
            self.guard
                .check_samples(v.iter().map(|s| s.points.len() + s.histograms.len()).sum())?;
        }
        Ok(data)
    }

    pub(crate) fn scalar(&mut self, node: &Node) -> Result<Vec<f64>> {
        self.eval(node)?.into_scalar()
    }

    /// An instant vector of floats: a native histogram in it is refused, naming the function
    /// or operator consuming it (see [`Evaluator::vector_with_histograms`]).
    pub(crate) fn vector(&mut self, node: &Node) -> Result<Vec<StepSeries>> {
        let v = self.eval(node)?.into_vector()?;
        if let Some(s) = v.iter().find(|s| !s.histograms.is_empty()) {
            return Err(self.refuse_histograms(&s.labels));
        }
        Ok(v)
    }

    /// An instant vector that may hold native histograms.
    pub(crate) fn vector_with_histograms(&mut self, node: &Node) -> Result<Vec<StepSeries>> {
        self.eval(node)?.into_vector()
    }

    /// The error for a native histogram reaching what does not evaluate them.
    pub(crate) fn refuse_histograms(&self, labels: &tributary_storage::types::Labels) -> Error {
        let what = if self.consumer.is_empty() {
            "this expression"
        } else {
            &self.consumer
        };
        Error::unsupported(format!(
            "native histogram samples as input to {what} (the series {labels} holds native histograms)"
        ))
    }

    /// The argument of a range function, read (a selector) or evaluated (a subquery).
    pub(crate) fn range_arg(&mut self, node: &Node) -> Result<RangeArg> {
        match node {
            Node::Matrix(sel) => {
                let (series, selector) = self.take(*sel)?;
                let (range_ms, offset_ms, at) = (selector.range_ms, selector.offset_ms, selector.at);
                let histograms = self.take_histograms(*sel);
                Ok(RangeArg {
                    series,
                    histograms,
                    range_ms,
                    offset_ms,
                    at,
                })
            }
            Node::Subquery(sq) => {
                if let Some(arg) = self.pending_range_arg.take() {
                    return Ok(arg);
                }
                let (series, histograms) = self.subquery_series(sq)?;
                Ok(RangeArg {
                    series,
                    histograms,
                    range_ms: sq.range_ms,
                    offset_ms: sq.offset_ms,
                    at: sq.at,
                })
            }
            other => Err(Error::Internal(format!(
                "expected a range vector argument, got {other:?}"
            ))),
        }
    }

    /// Evaluates a subquery's body at its own steps; its points become samples stamped with
    /// those steps' times, labels (metric name included) unchanged.
    /// Its float series and its native-histogram series.
    fn subquery_series(&mut self, sq: &SubqueryNode) -> Result<(Vec<Series>, Vec<StoredHistograms>)> {
        let outer = std::mem::replace(&mut self.steps, sq.steps);
        let data = self.eval(&sq.inner);
        self.steps = outer;
        let steps = sq.steps;
        let to_samples = |points: &[Point]| -> Vec<Sample> {
            points
                .iter()
                .map(|p| Sample::new(steps.time(p.step as usize), p.value))
                .collect()
        };
        // The parser allows subqueries of instant vectors only.
        let data = data?.into_vector()?;
        let mut histograms = Vec::new();
        let mut series = Vec::with_capacity(data.len());
        for s in data {
            if !s.histograms.is_empty() {
                let samples = s
                    .histograms
                    .iter()
                    .map(|h| h.value.to_sample(steps.time(h.step as usize)))
                    .collect();
                histograms.push(StoredHistograms {
                    labels: s.labels.clone(),
                    samples,
                });
            }
            if !s.points.is_empty() {
                series.push(Series::new(s.labels, to_samples(&s.points)));
            }
        }
        histograms.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok((series, histograms))
    }

    /// Whether `node` is a range selector that found native-histogram series.
    pub(crate) fn reads_histograms(&self, node: &Node) -> bool {
        matches!(node, Node::Matrix(sel) if self.histograms.get(*sel).is_some_and(|h| h.as_ref().is_some_and(|h| !h.is_empty())))
    }

    /// The native-histogram series of selector `sel` (none when it has none).
    fn take_histograms(&mut self, sel: usize) -> Vec<StoredHistograms> {
        self.histograms.get_mut(sel).and_then(Option::take).unwrap_or_default()
    }

    fn take(&mut self, sel: usize) -> Result<(Vec<Series>, &Selector)> {
        let series = self
            .fetched
            .get_mut(sel)
            .and_then(Option::take)
            .ok_or_else(|| Error::Internal(format!("selector {sel} evaluated twice or never fetched")))?;
        Ok((series, &self.selectors[sel]))
    }

    /// An instant vector selector: per step, the latest sample in the left-open lookback window
    /// `(ref - lookback, ref]`, unless that sample is a staleness marker. With `sample_time` the
    /// value is the sample's own timestamp in seconds (what `timestamp(selector)` returns).
    pub(crate) fn instant_selector(&mut self, sel: usize, sample_time: bool) -> Result<Vec<StepSeries>> {
        let steps = self.steps;
        let lookback = self.lookback_ms;
        let guard = self.guard.clone();
        let histograms = self.take_histograms(sel);
        let (mut series, selector) = self.take(sel)?;
        // A label set holding floats and histograms is read by the histogram path, which picks
        // the later of the two at each step.
        let mut both = Vec::new();
        if !histograms.is_empty() {
            let labels: std::collections::HashSet<_> = histograms.iter().map(|h| &h.labels).collect();
            let (mixed, floats): (Vec<Series>, Vec<Series>) =
                series.into_iter().partition(|s| labels.contains(&s.labels));
            series = floats;
            both = mixed;
        }
        let mut out = Vec::with_capacity(series.len());
        // Points held so far: checked as they are made, so a selector evaluated at millions of
        // steps (`m[30d:1s]`) fails at `query.max_samples` instead of after filling memory.
        let mut held = 0usize;
        for s in series {
            guard.check()?;
            let mut points = Vec::new();
            // Index of the first sample after the reference time; reference times never decrease.
            let mut next = 0usize;
            let (mut step, mut visited) = (0usize, 0usize);
            while step < steps.count {
                visited += 1;
                if visited % (STEPS_PER_CHECK * 16) == 0 {
                    guard.check()?;
                    guard.check_samples(held + points.len())?;
                }
                let reference = selector.reference_time(steps.time(step));
                while next < s.samples.len() && s.samples[next].timestamp <= reference {
                    next += 1;
                }
                let latest = next.checked_sub(1).map(|i| s.samples[i]);
                let seen =
                    latest.filter(|l| l.timestamp > reference.saturating_sub(lookback) && !is_stale_nan(l.value));
                let Some(latest) = seen else {
                    // Nothing to see until the next sample: skip the steps before it (a sparse
                    // series under a 1-second subquery over 30 days is millions of them).
                    let upcoming = s.samples.get(next).map_or(i64::MAX, |n| n.timestamp);
                    step = selector
                        .first_step_reaching(&steps, upcoming, step + 1)
                        .unwrap_or(step + 1);
                    continue;
                };
                let value = if sample_time {
                    latest.timestamp as f64 / 1000.0
                } else {
                    latest.value
                };
                points.push(Point {
                    step: step as u32,
                    value,
                });
                step += 1;
            }
            held += points.len();
            guard.check_samples(held)?;
            if !points.is_empty() {
                out.push(StepSeries::new(s.labels, points));
            }
        }
        if !histograms.is_empty() {
            let selector = &self.selectors[sel];
            let read = histogram_vectors::InstantRead {
                selector,
                steps: &steps,
                lookback,
                guard: &guard,
                sample_time,
            };
            read.add_to(&mut out, histograms, both)?;
        }
        Ok(out)
    }

    /// A range selector as a query result (instant queries only): the raw non-stale samples of
    /// each series in its window.
    fn matrix_selector(&mut self, sel: usize) -> Result<Data> {
        let steps = self.steps;
        let histograms = self.take_histograms(sel);
        let (series, selector) = self.take(sel)?;
        let end = selector.reference_time(steps.start);
        let window = Window {
            end,
            range_ms: selector.range_ms,
        };
        let series: Vec<Series> = series
            .into_iter()
            .map(|mut s| {
                s.samples
                    .retain(|x| x.timestamp > window.start() && x.timestamp <= end && !is_stale_nan(x.value));
                s
            })
            .filter(|s| !s.samples.is_empty())
            .collect();
        if histograms.is_empty() {
            return Ok(Data::Matrix(series));
        }
        Ok(Data::HistogramMatrix(histogram_vectors::matrix(
            series, histograms, window,
        )))
    }
}

/// Unary minus on a vector: values negated, `__name__` dropped (two results with the same labels
/// are an error, as for range functions).
fn negate(v: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    distinct_series(
        v.into_iter()
            .map(|s| {
                let points = s
                    .points
                    .into_iter()
                    .map(|p| Point {
                        step: p.step,
                        value: -p.value,
                    })
                    .collect();
                StepSeries::new(into_without_name(s.labels), points)
            })
            .collect(),
    )
}

/// The series that have points; an error if two of them share a label set (Prometheus's
/// `ContainsSameLabelset`).
pub(crate) fn distinct_series(series: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    let series: Vec<StepSeries> = series.into_iter().filter(|s| !s.is_empty()).collect();
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    if series.iter().any(|s| !seen.insert(&s.labels)) {
        return Err(Error::duplicate_labelset());
    }
    Ok(series)
}

/// What a plan's evaluation reads, each list indexed like the plan's selectors (`evaluated`
/// like its [`Node::Evaluated`] nodes).
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    /// Float series of each selector read raw.
    pub(crate) fetched: Vec<Vec<Series>>,
    /// Buckets of each selector read from a rollup tier.
    pub(crate) buckets: Vec<Vec<BucketSeries>>,
    /// Values of aggregations evaluated in parts.
    pub(crate) evaluated: Vec<Vec<StepSeries>>,
    /// Native-histogram series of each selector.
    pub(crate) histograms: Vec<Vec<StoredHistograms>>,
}

impl Inputs {
    /// Nothing fetched for any of `selectors` selectors.
    pub(crate) fn empty(selectors: usize) -> Self {
        Self {
            fetched: vec![Vec::new(); selectors],
            buckets: vec![Vec::new(); selectors],
            evaluated: Vec::new(),
            histograms: vec![Vec::new(); selectors],
        }
    }
}

/// Convenience for callers that hold a plan: splits it so the evaluator owns the selectors.
pub(crate) fn evaluate(
    plan: Plan,
    steps: Steps,
    lookback_ms: i64,
    guard: Guard,
    inputs: Inputs,
) -> Result<(Data, Annotations)> {
    let Plan { root, selectors } = plan;
    let mut evaluator = Evaluator::new(steps, lookback_ms, guard, selectors, inputs.fetched);
    evaluator.evaluated = inputs.evaluated.into_iter().map(Some).collect();
    evaluator.buckets = inputs.buckets.into_iter().map(Some).collect();
    evaluator.histograms = inputs.histograms.into_iter().map(Some).collect();
    evaluator.run(&root)
}

/// Evaluates one instant-vector node of a plan (a part of an aggregation, see `parts`) over
/// `inputs`, indexed like `selectors`.
pub(crate) fn evaluate_node(
    node: &Node,
    selectors: Vec<Selector>,
    steps: Steps,
    lookback_ms: i64,
    guard: Guard,
    inputs: Inputs,
) -> Result<(Vec<StepSeries>, Annotations)> {
    let mut evaluator = Evaluator::new(steps, lookback_ms, guard, selectors, inputs.fetched);
    evaluator.evaluated = inputs.evaluated.into_iter().map(Some).collect();
    evaluator.buckets = inputs.buckets.into_iter().map(Some).collect();
    evaluator.histograms = inputs.histograms.into_iter().map(Some).collect();
    let (data, annotations) = evaluator.run(node)?;
    Ok((data.into_vector()?, annotations))
}
