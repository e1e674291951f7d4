//! The evaluator: walks a [`Plan`]'s nodes once, each node producing its value for every step
//! of the query at once ([`Data`]). Selectors turn fetched samples into step series here;
//! operators live in `binary`, `aggregate` and `functions`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tributary_storage::types::{Sample, Series, is_stale_nan};

use super::plan::{Node, Plan, Selector};
use super::value::{Data, Point, StepSeries, Steps, drop_name, merge_series};
use super::{aggregate, binary, functions};
use crate::error::{Error, Result};

/// Stops evaluation when the query's deadline passes or its caller goes away, and enforces the
/// sample limit. Cheap enough to check once per step.
#[derive(Clone, Debug)]
pub(crate) struct Guard {
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
    max_samples: usize,
}

impl Guard {
    pub fn new(deadline: Instant, cancelled: Arc<AtomicBool>, max_samples: usize) -> Self {
        Self {
            deadline,
            cancelled,
            max_samples,
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(Error::Canceled("expression evaluation"));
        }
        if Instant::now() >= self.deadline {
            return Err(Error::Timeout("expression evaluation"));
        }
        Ok(())
    }

    pub fn check_samples(&self, n: usize) -> Result<()> {
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
    pub end: i64,
    pub range_ms: i64,
}

impl Window {
    pub fn start(&self) -> i64 {
        self.end - self.range_ms
    }
}

#[derive(Debug)]
pub(crate) struct Evaluator {
    pub steps: Steps,
    pub lookback_ms: i64,
    pub guard: Guard,
    selectors: Vec<Selector>,
    /// Fetched series per selector, sorted by labels; taken by the one node that reads them.
    fetched: Vec<Option<Vec<Series>>>,
}

impl Evaluator {
    pub fn new(
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
        }
    }

    /// Evaluates the plan's root (the plan's selectors must be the ones given to `new`).
    pub fn run(mut self, plan_root: &Node) -> Result<Data> {
        self.eval(plan_root)
    }

    pub fn eval(&mut self, node: &Node) -> Result<Data> {
        self.guard.check()?;
        let data = match node {
            Node::Number(v) => Data::Scalar(vec![*v; self.steps.count]),
            Node::String(s) => Data::String(s.clone()),
            Node::Vector(sel) => Data::Vector(self.instant_selector(*sel, false)?),
            Node::Matrix(sel) => Data::Matrix(self.matrix_selector(*sel)?),
            Node::Negate(inner) => match self.eval(inner)? {
                Data::Scalar(v) => Data::Scalar(v.into_iter().map(|x| -x).collect()),
                Data::Vector(v) => Data::Vector(negate(v)?),
                other => return Err(Error::Internal(format!("unary minus on {}", other.type_name()))),
            },
            Node::Binary(b) => {
                let lhs = self.eval(&b.lhs)?;
                let rhs = self.eval(&b.rhs)?;
                binary::evaluate(b, lhs, rhs, &self.steps, &self.guard)?
            }
            Node::Aggregate(a) => {
                let param = match &a.param {
                    aggregate::AggregateParam::Scalar(p) => Some(self.scalar(p)?),
                    _ => None,
                };
                let input = self.vector(&a.expr)?;
                Data::Vector(aggregate::evaluate(
                    a,
                    input,
                    param.as_deref(),
                    &self.steps,
                    &self.guard,
                )?)
            }
            Node::Call(call) => functions::eval_call(self, call)?,
        };
        if let Data::Vector(v) = &data {
            self.guard.check_samples(v.iter().map(|s| s.points.len()).sum())?;
        }
        Ok(data)
    }

    pub fn scalar(&mut self, node: &Node) -> Result<Vec<f64>> {
        self.eval(node)?.into_scalar()
    }

    pub fn vector(&mut self, node: &Node) -> Result<Vec<StepSeries>> {
        self.eval(node)?.into_vector()
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
    pub fn instant_selector(&mut self, sel: usize, sample_time: bool) -> Result<Vec<StepSeries>> {
        let steps = self.steps;
        let lookback = self.lookback_ms;
        let guard = self.guard.clone();
        let (series, selector) = self.take(sel)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            guard.check()?;
            let mut points = Vec::new();
            // Index of the first sample after the reference time; reference times never decrease.
            let mut next = 0usize;
            for step in 0..steps.count {
                let reference = selector.reference_time(steps.time(step), &steps);
                while next < s.samples.len() && s.samples[next].timestamp <= reference {
                    next += 1;
                }
                let Some(latest) = next.checked_sub(1).map(|i| s.samples[i]) else {
                    continue;
                };
                if latest.timestamp <= reference.saturating_sub(lookback) || is_stale_nan(latest.value) {
                    continue;
                }
                let value = if sample_time {
                    latest.timestamp as f64 / 1000.0
                } else {
                    latest.value
                };
                points.push(Point {
                    step: step as u32,
                    value,
                });
            }
            if !points.is_empty() {
                out.push(StepSeries::new(s.labels, points));
            }
        }
        Ok(out)
    }

    /// Applies a range function to every series of a range selector at every step. The function
    /// sees the non-stale samples in `(ref - range, ref]`, never an empty window; returning `None`
    /// leaves the step empty. Output keeps `__name__` only when `keep_name`.
    pub fn range_function(
        &mut self,
        sel: usize,
        keep_name: bool,
        mut f: impl FnMut(&[Sample], Window, usize) -> Option<f64>,
    ) -> Result<Vec<StepSeries>> {
        let steps = self.steps;
        let guard = self.guard.clone();
        let (series, selector) = self.take(sel)?;
        let range_ms = selector.range_ms;
        let mut out = Vec::with_capacity(series.len());
        for mut s in series {
            guard.check()?;
            s.samples.retain(|x| !is_stale_nan(x.value));
            let samples = &s.samples;
            let mut points = Vec::new();
            let (mut lo, mut hi) = (0usize, 0usize);
            for step in 0..steps.count {
                let end = selector.reference_time(steps.time(step), &steps);
                let window = Window { end, range_ms };
                while hi < samples.len() && samples[hi].timestamp <= end {
                    hi += 1;
                }
                while lo < hi && samples[lo].timestamp <= window.start() {
                    lo += 1;
                }
                if lo == hi {
                    continue;
                }
                if let Some(value) = f(&samples[lo..hi], window, step) {
                    points.push(Point {
                        step: step as u32,
                        value,
                    });
                }
            }
            let labels = if keep_name { s.labels } else { drop_name(&s.labels) };
            out.push(StepSeries::new(labels, points));
        }
        merge_series(out)
    }

    /// A range selector as a query result (instant queries only): the raw non-stale samples of
    /// each series in its window.
    fn matrix_selector(&mut self, sel: usize) -> Result<Vec<Series>> {
        let steps = self.steps;
        let (series, selector) = self.take(sel)?;
        let end = selector.reference_time(steps.start, &steps);
        let window = Window {
            end,
            range_ms: selector.range_ms,
        };
        Ok(series
            .into_iter()
            .map(|mut s| {
                s.samples
                    .retain(|x| x.timestamp > window.start() && x.timestamp <= end && !is_stale_nan(x.value));
                s
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }
}

/// Unary minus on a vector: values negated, `__name__` dropped.
fn negate(v: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    merge_series(
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
                StepSeries::new(drop_name(&s.labels), points)
            })
            .collect(),
    )
}

/// Convenience for callers that hold a plan: splits it so the evaluator owns the selectors.
pub(crate) fn evaluate(
    plan: Plan,
    steps: Steps,
    lookback_ms: i64,
    guard: Guard,
    fetched: Vec<Vec<Series>>,
) -> Result<Data> {
    let Plan { root, selectors } = plan;
    Evaluator::new(steps, lookback_ms, guard, selectors, fetched).run(&root)
}
