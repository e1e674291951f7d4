//! Range functions: a function of each series' window at every step, over raw samples (split
//! over threads for many series, `chunked`) or over rollup buckets (`buckets`), and the checks
//! every range function's output shares (distinct label sets, "might not be a counter").

use tributary_storage::rollup::Bucket;
use tributary_storage::types::{METRIC_NAME, Sample, Series, TimestampMs, is_stale_nan};

use super::{COUNTER_SUFFIXES, Evaluator, Guard, RangeArg, STEPS_PER_CHECK, Window, distinct_series};
use crate::error::{Error, Result};
use crate::promql::buckets::BucketWindows;
use crate::promql::plan::Node;
use crate::promql::value::{Point, StepSeries, Steps, into_without_name};

impl Evaluator {
    /// Whether `node` is a range selector read from a rollup tier.
    pub(crate) fn bucketed(&self, node: &Node) -> bool {
        matches!(node, Node::Matrix(sel) if self.selectors[*sel].tier.is_some())
    }

    /// A range function of a selector read from a rollup tier: `f` sees each step's window
    /// summary (see `buckets`). With `counter_info`, as in [`Evaluator::range_function`].
    pub(crate) fn bucket_function(
        &mut self,
        node: &Node,
        counter_info: Option<&str>,
        f: impl Fn(&Bucket, Window) -> Option<f64>,
    ) -> Result<Vec<StepSeries>> {
        let Node::Matrix(sel) = node else {
            return Err(Error::Internal(format!(
                "expected a bucketed range selector, got {node:?}"
            )));
        };
        let series =
            self.buckets.get_mut(*sel).and_then(Option::take).ok_or_else(|| {
                Error::Internal(format!("buckets of selector {sel} evaluated twice or never fetched"))
            })?;
        let selector = &self.selectors[*sel];
        let windows = BucketWindows {
            steps: self.steps,
            range_ms: selector.range_ms,
            offset_ms: selector.offset_ms,
            at: selector.at,
            keep_name: false,
        };
        let first = series.first().and_then(|s| s.labels.get(METRIC_NAME));
        let one_name = series.iter().all(|s| s.labels.get(METRIC_NAME) == first);
        let mut not_counters = Vec::new();
        let out = windows.apply(
            series,
            &self.guard,
            &f,
            counter_info.is_some().then_some(&mut not_counters),
            |name| COUNTER_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)),
        )?;
        let part = Windowed { out, not_counters };
        self.finish_range_function(vec![part], one_name, counter_info)
    }

    /// Applies a range function to every series of a range argument at every step. The function
    /// sees the non-stale samples in `(end - range, end]` (window ends never decrease), never an
    /// empty window; returning `None` leaves the step empty. Output keeps `__name__` only when
    /// `keep_name`; two outputs left with the same labels are an error even where their steps do
    /// not overlap, as in Prometheus 3 (which merges only instant-vector results). With
    /// `counter_info` (the argument's position), a series named unlike a counter that produced a
    /// value earns Prometheus's "might not be a counter" info.
    pub(crate) fn range_function(
        &mut self,
        arg: RangeArg,
        keep_name: bool,
        counter_info: Option<&str>,
        mut f: impl FnMut(&[Sample], Window, usize) -> Option<f64>,
    ) -> Result<Vec<StepSeries>> {
        self.floats_only(&arg)?;
        let (spec, series) = WindowSpec::split(arg, self.steps, keep_name, counter_info.is_some());
        let one_name = keep_name || one_metric_name(&series);
        let windowed = spec.apply(series, &self.guard, &mut f)?;
        self.finish_range_function(vec![windowed], one_name, counter_info)
    }

    /// [`Evaluator::range_function`] for a function that needs no state across windows: large
    /// arguments are split into contiguous chunks evaluated on parallel threads (the output
    /// keeps the input's order, so results do not depend on the number of threads).
    pub(crate) fn range_function_par(
        &mut self,
        arg: RangeArg,
        keep_name: bool,
        counter_info: Option<&str>,
        f: impl Fn(&[Sample], Window, usize) -> Option<f64> + Sync,
    ) -> Result<Vec<StepSeries>> {
        self.floats_only(&arg)?;
        let (spec, series) = WindowSpec::split(arg, self.steps, keep_name, counter_info.is_some());
        let one_name = keep_name || one_metric_name(&series);
        let guard = &self.guard;
        let f = &f;
        let results = chunked(series, |chunk| spec.apply(chunk, guard, &mut &*f));
        let parts = results.into_iter().collect::<Result<Vec<_>>>()?;
        self.finish_range_function(parts, one_name, counter_info)
    }

    /// Refuses a range argument holding native histograms (for functions over floats only).
    fn floats_only(&self, arg: &RangeArg) -> Result<()> {
        match arg.histograms.first() {
            Some(h) => Err(self.refuse_histograms(&h.labels)),
            None => Ok(()),
        }
    }

    pub(crate) fn finish_range_function(
        &mut self,
        parts: Vec<Windowed>,
        one_name: bool,
        counter_info: Option<&str>,
    ) -> Result<Vec<StepSeries>> {
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.out.len()).sum());
        for part in parts {
            out.extend(part.out);
            if let Some(position) = counter_info {
                for name in part.not_counters {
                    self.annotations.possible_non_counter(&name, position);
                }
            }
        }
        if one_name { Ok(out) } else { distinct_series(out) }
    }
}

/// Below this many series a range function runs on the evaluating thread alone.
const PARALLEL_MIN_SERIES: usize = 2048;
/// Threads one range function may use.
const MAX_THREADS: usize = 4;

/// `f` over `items` in contiguous chunks, on parallel threads when there are enough items to pay
/// for them (range functions over many series), else on this thread; the answers come in the
/// items' order, so results do not depend on the number of threads.
pub(crate) fn chunked<T: Send, R: Send>(mut items: Vec<T>, f: impl Fn(Vec<T>) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads < 2 || items.len() < PARALLEL_MIN_SERIES {
        return vec![f(items)];
    }
    let per_chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    while items.len() > per_chunk {
        let rest = items.split_off(per_chunk);
        chunks.push(std::mem::replace(&mut items, rest));
    }
    chunks.push(items);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks.into_iter().map(|chunk| scope.spawn(move || f(chunk))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// True when every series carries the same `__name__` (or none does): distinct label sets then
/// stay distinct after dropping it.
fn one_metric_name(series: &[Series]) -> bool {
    let first = series.first().and_then(|s| s.labels.get(METRIC_NAME));
    series.iter().all(|s| s.labels.get(METRIC_NAME) == first)
}

/// The output of a range function over some series.
#[derive(Debug, Default)]
pub(crate) struct Windowed {
    out: Vec<StepSeries>,
    /// Names of series that produced a value but are not named like counters.
    not_counters: Vec<String>,
}

/// Everything a range function needs to place each step's window, shared by parallel chunks.
#[derive(Clone, Copy, Debug)]
struct WindowSpec {
    steps: Steps,
    range_ms: i64,
    offset_ms: i64,
    at: Option<TimestampMs>,
    keep_name: bool,
    counter_info: bool,
}

impl WindowSpec {
    fn split(arg: RangeArg, steps: Steps, keep_name: bool, counter_info: bool) -> (Self, Vec<Series>) {
        let spec = Self {
            steps,
            range_ms: arg.range_ms,
            offset_ms: arg.offset_ms,
            at: arg.at,
            keep_name,
            counter_info,
        };
        (spec, arg.series)
    }

    fn apply(
        self,
        series: Vec<Series>,
        guard: &Guard,
        f: &mut impl FnMut(&[Sample], Window, usize) -> Option<f64>,
    ) -> Result<Windowed> {
        let steps = self.steps;
        let range_ms = self.range_ms;
        let mut w = Windowed {
            out: Vec::with_capacity(series.len()),
            not_counters: Vec::new(),
        };
        // Points held so far, checked against `query.max_samples` as they are made.
        let mut held = 0usize;
        for mut s in series {
            guard.check()?;
            s.samples.retain(|x| !is_stale_nan(x.value));
            let samples = &s.samples;
            let mut points = Vec::with_capacity(steps.count.min(samples.len() + 1));
            let (mut lo, mut hi) = (0usize, 0usize);
            for step in 0..steps.count {
                // A window's function can cost as much as its samples (quantiles sort them):
                // one series alone may take minutes, so the guard is asked within it too.
                if step % STEPS_PER_CHECK == 0 {
                    guard.check()?;
                    guard.check_samples(held + points.len())?;
                }
                let end = self.at.unwrap_or(steps.time(step)).saturating_sub(self.offset_ms);
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
            held += points.len();
            guard.check_samples(held)?;
            if points.is_empty() {
                continue;
            }
            if self.counter_info
                && let Some(name) = s.labels.get(METRIC_NAME)
                && !COUNTER_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
            {
                w.not_counters.push(name.to_string());
            }
            let labels = if self.keep_name {
                s.labels
            } else {
                into_without_name(s.labels)
            };
            w.out.push(StepSeries::new(labels, points));
        }
        Ok(w)
    }
}
