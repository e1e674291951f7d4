//! Functions over native histograms: `histogram_count`, `_sum`, `_avg`, `_stddev`, `_stdvar`,
//! `_fraction`, `histogram_quantile` of native histograms (classic buckets beside them keep the
//! classic path), and `rate`, `increase`, `delta`, `irate`, `idelta` of range selectors holding
//! native histograms (Prometheus's `histogramRate` and `instantValue`).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tributary_storage::signals::{HistogramSeries as StoredHistograms, ResetHint};
use tributary_storage::types::{Labels, METRIC_NAME, Sample, is_stale_nan};

use super::over_time::{self, OverTime};
use super::rate::{self, RateKind, extrapolation_factor};
use super::{CallNode, Func, Node, histogram};
use crate::error::Result;
use crate::promql::annotations::Annotations;
use crate::promql::eval::{Evaluator, RangeArg, Window, chunked, distinct_series};
use crate::promql::histogram_vectors::combine;
use crate::promql::native_histogram::{self, NativeHistogram, StoredSeries};
use crate::promql::value::{
    Data, HistogramPoint, Point, StepSeries, Steps, drop_name, into_without_name, merge_series,
};

/// Evaluates `call` when it is one of this module's: the `histogram_*` functions always, the
/// rate family when its selector found native histograms. `None` leaves it to the float path.
pub(crate) fn eval_call(ev: &mut Evaluator, call: &CallNode) -> Result<Option<Data>> {
    let args = &call.args;
    let steps = ev.steps;
    // A subquery argument shows whether it holds histograms only once evaluated: evaluate it
    // here, and hand it to the float path when it holds none.
    let over_subquery = matches!(args.first(), Some(Node::Subquery(_)))
        && matches!(
            call.func,
            Func::Rate(_)
                | Func::OverTime(OverTime::Last | OverTime::Count | OverTime::Present | OverTime::Sum | OverTime::Avg)
        );
    let mut subquery_histograms = false;
    if over_subquery {
        let arg = ev.range_arg(&args[0])?;
        subquery_histograms = !arg.histograms.is_empty();
        ev.pending_range_arg = Some(arg);
    }
    let reads_histograms = |ev: &Evaluator| subquery_histograms || ev.reads_histograms(&args[0]);
    Ok(Some(match (&call.func, call.name) {
        (Func::Rate(kind), _) if reads_histograms(ev) => {
            let kind = *kind;
            let arg = ev.range_arg(&args[0])?;
            Data::Vector(per_window(ev, arg, false, call.position(0), true, |w, annotations| {
                Some(match (w.floats.is_empty(), w.range.is_empty()) {
                    (false, true) => WindowValue::Float(rate::evaluate(kind, w.floats, w.window)?),
                    (true, false) => WindowValue::Histogram(histogram_rate(kind, w, annotations)?),
                    _ => {
                        annotations.mixed_floats_histograms(w.name, w.position);
                        return None;
                    }
                })
            })?)
        }
        (Func::OverTime(kind), _)
            if reads_histograms(ev)
                && matches!(
                    kind,
                    OverTime::Last | OverTime::Count | OverTime::Present | OverTime::Sum | OverTime::Avg
                ) =>
        {
            let kind = *kind;
            let arg = ev.range_arg(&args[0])?;
            let keep_name = kind == OverTime::Last;
            Data::Vector(per_window(
                ev,
                arg,
                keep_name,
                call.position(0),
                false,
                |w, annotations| over_time(kind, w, annotations),
            )?)
        }
        (Func::NativeHistogramOnly, "histogram_fraction") => {
            let lower = ev.scalar(&args[0])?;
            let upper = ev.scalar(&args[1])?;
            let input = ev.vector_with_histograms(&args[2])?;
            if let Some(s) = input.iter().find(|s| !s.points.is_empty()) {
                return Err(crate::error::Error::unsupported(format!(
                    "histogram_fraction() over classic histograms (the series {} holds floats)",
                    s.labels
                )));
            }
            let mut infos = Vec::new();
            let out = each(input, |h, step, labels| {
                let (v, info) = native_histogram::fraction(lower[step], upper[step], h);
                if let Some(text) = info {
                    infos.push((text, labels.get(METRIC_NAME).unwrap_or("").to_string()));
                }
                v
            })?;
            for (text, name) in infos {
                ev.annotations.histogram_nan_info(text, &name, call.position(0));
            }
            Data::Vector(out)
        }
        (Func::NativeHistogramOnly, name) => {
            let input = ev.vector_with_histograms(&args[0])?;
            let f: fn(&NativeHistogram) -> f64 = match name {
                "histogram_count" => |h| h.count,
                "histogram_sum" => |h| h.sum,
                "histogram_avg" => |h| h.sum / h.count,
                "histogram_stddev" => |h| native_histogram::variance(h).sqrt(),
                _ => native_histogram::variance,
            };
            Data::Vector(each(input, |h, _, _| f(h))?)
        }
        (Func::HistogramQuantile, _) => {
            let phi = ev.scalar(&args[0])?;
            let input = ev.vector_with_histograms(&args[1])?;
            let (floats, hists): (Vec<StepSeries>, Vec<StepSeries>) = split(input);
            if !hists.is_empty() {
                for s in &hists {
                    for h in &s.histograms {
                        ev.annotations
                            .quantile_out_of_range(phi[h.step as usize], call.position(0));
                    }
                }
            }
            let mut infos = Vec::new();
            let mut native = each(hists, |h, step, labels| {
                let (v, info) = native_histogram::quantile(phi[step], h);
                if let Some(text) = info {
                    infos.push((text, labels.get(METRIC_NAME).unwrap_or("").to_string()));
                }
                v
            })?;
            for (text, name) in infos {
                ev.annotations.histogram_nan_info(text, &name, call.position(1));
            }
            let positions = histogram::Positions {
                phi: call.position(0),
                buckets: call.position(1),
            };
            let guard = ev.guard.clone();
            let names: std::collections::HashMap<_, _> = floats
                .iter()
                .map(|s| (s.labels.clone(), s.labels.get(METRIC_NAME).map(str::to_string)))
                .collect();
            let mut classic = if floats.is_empty() {
                Vec::new()
            } else {
                histogram::quantile(&phi, floats, &steps, &guard, &mut ev.annotations, positions)?
            };
            // Classic and native histograms answering for one label set at one step: neither
            // counts, with Prometheus's warning.
            for n in &mut native {
                let Some(c) = classic.iter_mut().find(|c| c.labels == n.labels) else {
                    continue;
                };
                let clash: Vec<u32> = n
                    .points
                    .iter()
                    .filter(|p| c.points.binary_search_by_key(&p.step, |q| q.step).is_ok())
                    .map(|p| p.step)
                    .collect();
                if clash.is_empty() {
                    continue;
                }
                let name = names
                    .iter()
                    .find(|(l, _)| drop_name(l).iter().filter(|x| x.name != "le").eq(n.labels.iter()))
                    .and_then(|(_, name)| name.clone())
                    .unwrap_or_default();
                ev.annotations.mixed_classic_native(&name, call.position(1));
                n.points.retain(|p| !clash.contains(&p.step));
                c.points.retain(|p| !clash.contains(&p.step));
            }
            Data::Vector(merge_series([classic, native].concat())?)
        }
        _ => return Ok(None),
    }))
}

fn split(input: Vec<StepSeries>) -> (Vec<StepSeries>, Vec<StepSeries>) {
    let mut floats = Vec::new();
    let mut hists = Vec::new();
    for s in input {
        if !s.points.is_empty() {
            floats.push(StepSeries::new(s.labels.clone(), s.points));
        }
        if !s.histograms.is_empty() {
            hists.push(StepSeries::with_histograms(s.labels, Vec::new(), s.histograms));
        }
    }
    (floats, hists)
}

/// A float per native-histogram value (floats in the input are ignored, as in Prometheus),
/// `__name__` dropped.
fn each(
    input: Vec<StepSeries>,
    mut f: impl FnMut(&NativeHistogram, usize, &tributary_storage::types::Labels) -> f64,
) -> Result<Vec<StepSeries>> {
    merge_series(
        input
            .into_iter()
            .filter(|s| !s.histograms.is_empty())
            .map(|s| {
                let points = s
                    .histograms
                    .iter()
                    .map(|h| Point {
                        step: h.step,
                        value: f(&h.value, h.step as usize, &s.labels),
                    })
                    .collect();
                StepSeries::new(drop_name(&s.labels), points)
            })
            .collect(),
    )
}

/// One step's window of one series: its non-stale floats and histograms, oldest first.
struct WindowSamples<'a> {
    floats: &'a [Sample],
    /// The series' histograms; the window holds those of `range`.
    hists: &'a StoredSeries<'a>,
    range: Range<usize>,
    /// Per histogram of `range`, whether it follows a counter reset after the one before it in
    /// the series (the first's flag looks outside the window); empty unless asked for.
    resets: &'a [bool],
    window: Window,
    name: &'a str,
    position: &'a str,
}

impl WindowSamples<'_> {
    /// The window's histograms, converted (each sample of the series once).
    fn converted(&self) -> Vec<(i64, Arc<NativeHistogram>)> {
        self.range
            .clone()
            .map(|i| (self.hists.timestamp(i), self.hists.get(i)))
            .collect()
    }
}

/// A window's answer.
enum WindowValue {
    Float(f64),
    Histogram(NativeHistogram),
}

/// Where each step's window of a range argument sits, and what its output keeps.
#[derive(Clone, Copy)]
struct Windows<'a> {
    steps: Steps,
    range_ms: i64,
    offset_ms: i64,
    at: Option<i64>,
    keep_name: bool,
    position: &'a str,
    with_resets: bool,
}

/// Applies `f` to every non-empty window of every series of a range selector holding native
/// histograms (float-only series included); `__name__` kept only with `keep_name`. Many series
/// are split over parallel threads, as the float functions' are (`eval::chunked`).
fn per_window(
    ev: &mut Evaluator,
    arg: RangeArg,
    keep_name: bool,
    position: &str,
    with_resets: bool,
    f: impl Fn(&WindowSamples<'_>, &mut Annotations) -> Option<WindowValue> + Sync,
) -> Result<Vec<StepSeries>> {
    let RangeArg {
        series,
        histograms,
        range_ms,
        offset_ms,
        at,
    } = arg;
    let spec = Windows {
        steps: ev.steps,
        range_ms,
        offset_ms,
        at,
        keep_name,
        position,
        with_resets,
    };
    let hist_labels: HashSet<&Labels> = histograms.iter().map(|h| &h.labels).collect();
    let no_hists = StoredHistograms {
        labels: Labels::default(),
        samples: Vec::new(),
    };
    let all: Vec<(&Labels, &StoredHistograms)> = series
        .iter()
        .filter(|s| !hist_labels.contains(&&s.labels))
        .map(|s| (&s.labels, &no_hists))
        .chain(histograms.iter().map(|h| (&h.labels, h)))
        .collect();
    let float_index: HashMap<&Labels, usize> = series.iter().enumerate().map(|(i, s)| (&s.labels, i)).collect();
    let guard = &ev.guard;
    let parts = chunked(all, |chunk| -> Result<(Vec<StepSeries>, Annotations)> {
        let mut annotations = Annotations::default();
        let mut out = Vec::with_capacity(chunk.len());
        for (labels, hs) in chunk {
            guard.check()?;
            let floats: Vec<Sample> = float_index.get(labels).map_or_else(Vec::new, |&i| {
                let samples = &series[i].samples;
                samples.iter().copied().filter(|x| !is_stale_nan(x.value)).collect()
            });
            out.push(spec.series(labels, &floats, hs, &f, &mut annotations));
        }
        Ok((out, annotations))
    });
    let mut out = Vec::new();
    for part in parts {
        let (series, annotations) = part?;
        out.extend(series);
        ev.annotations.extend(annotations);
    }
    distinct_series(out)
}

impl Windows<'_> {
    /// One series' output.
    fn series(
        &self,
        labels: &Labels,
        floats: &[Sample],
        hs: &StoredHistograms,
        f: &impl Fn(&WindowSamples<'_>, &mut Annotations) -> Option<WindowValue>,
        annotations: &mut Annotations,
    ) -> StepSeries {
        let hists = StoredSeries::new(hs);
        let times: Vec<i64> = hists.timestamps().collect();
        // Decided once per pair of neighbours: overlapping windows would compare each pair's
        // buckets again (it was a third of a native `rate`'s time).
        let resets = if self.with_resets { hists.resets() } else { Vec::new() };
        let name = labels.get(METRIC_NAME).unwrap_or("");
        let mut points = Vec::new();
        let mut hpoints = Vec::new();
        for step in 0..self.steps.count {
            let end = self.at.unwrap_or(self.steps.time(step)).saturating_sub(self.offset_ms);
            let window = Window {
                end,
                range_ms: self.range_ms,
            };
            let range = window_range(&times, |t| *t, window);
            let w = WindowSamples {
                floats: &floats[window_range(floats, |x| x.timestamp, window)],
                resets: resets.get(range.clone()).unwrap_or(&[]),
                hists: &hists,
                range,
                window,
                name,
                position: self.position,
            };
            if w.floats.is_empty() && w.range.is_empty() {
                continue;
            }
            let step = step as u32;
            match f(&w, annotations) {
                Some(WindowValue::Float(value)) => points.push(Point { step, value }),
                Some(WindowValue::Histogram(h)) => hpoints.push(HistogramPoint {
                    step,
                    value: Arc::new(h),
                }),
                None => {}
            }
        }
        let labels = if self.keep_name {
            labels.clone()
        } else {
            into_without_name(labels.clone())
        };
        StepSeries::with_histograms(labels, points, hpoints)
    }
}

/// `last`, `count`, `present`, `sum` and `avg` over time of a window holding histograms; a sum
/// or average over floats and histograms together is nothing, with Prometheus's warning.
fn over_time(kind: OverTime, w: &WindowSamples<'_>, annotations: &mut Annotations) -> Option<WindowValue> {
    let n = w.floats.len() + w.range.len();
    let last = w.range.clone().last();
    Some(match kind {
        OverTime::Count => WindowValue::Float(n as f64),
        OverTime::Present => WindowValue::Float(1.0),
        OverTime::Last => match (w.floats.last(), last) {
            (Some(f), Some(i)) if w.hists.timestamp(i) > f.timestamp => WindowValue::Histogram(w.hists.to_histogram(i)),
            (Some(f), _) => WindowValue::Float(f.value),
            (None, Some(i)) => WindowValue::Histogram(w.hists.to_histogram(i)),
            (None, None) => return None,
        },
        _ if w.range.is_empty() => WindowValue::Float(over_time::evaluate(kind, w.floats, f64::NAN)),
        _ if !w.floats.is_empty() => {
            annotations.mixed_floats_histograms(w.name, w.position);
            return None;
        }
        _ => {
            let converted = w.converted();
            let hists: Vec<&NativeHistogram> = converted.iter().map(|(_, h)| &**h).collect();
            match combine(&hists, kind == OverTime::Avg) {
                Ok((mut h, reconciled)) => {
                    if reconciled {
                        annotations.reconciled_custom_buckets("aggregation", w.position);
                    }
                    h.compact();
                    WindowValue::Histogram(h)
                }
                Err(_) => {
                    annotations.mixed_exponential_custom(w.name, w.position);
                    return None;
                }
            }
        }
    })
}

fn window_range<T>(samples: &[T], time: impl Fn(&T) -> i64, window: Window) -> Range<usize> {
    let lo = samples.partition_point(|x| time(x) <= window.start());
    let hi = samples.partition_point(|x| time(x) <= window.end);
    lo..hi.max(lo)
}

/// One window of native histograms (oldest first, never empty) through `kind`.
fn histogram_rate(
    kind: RateKind,
    samples: &WindowSamples<'_>,
    annotations: &mut Annotations,
) -> Option<NativeHistogram> {
    let (name, position) = (samples.name, samples.position);
    if matches!(kind, RateKind::Irate | RateKind::Idelta) {
        let r = samples.range.clone();
        let last_two: Vec<_> = (r.start.max(r.end.saturating_sub(2))..r.end)
            .map(|i| (samples.hists.timestamp(i), samples.hists.get(i)))
            .collect();
        return instant_value(kind == RateKind::Irate, &last_two, name, position, annotations);
    }
    if samples.range.len() < 2 {
        return None;
    }
    if samples.hists.one_plain_layout(samples.range.clone()) {
        plain_rate(kind, samples, annotations)
    } else {
        converted_rate(kind, samples, annotations)
    }
}

/// [`histogram_rate`] of a window of at least two histograms, each converted.
fn converted_rate(
    kind: RateKind,
    samples: &WindowSamples<'_>,
    annotations: &mut Annotations,
) -> Option<NativeHistogram> {
    let (window, name, position) = (samples.window, samples.name, samples.position);
    let converted = samples.converted();
    let w = converted.as_slice();
    // `per_window` decided each neighbour pair's reset once for the rate kinds.
    let reset_at = |i: usize| {
        samples
            .resets
            .get(i)
            .copied()
            .unwrap_or_else(|| w[i].1.detect_reset(&w[i - 1].1))
    };
    let is_counter = kind != RateKind::Delta;
    let (first, last) = (&w[0].1, &w[w.len() - 1].1);
    if is_counter && (first.reset_hint == ResetHint::Gauge || last.reset_hint == ResetHint::Gauge) {
        annotations.histogram_not_counter(name, position);
    }
    // After a reset between the first two samples the first one's layout does not matter.
    let empty;
    let prev: &NativeHistogram = if is_counter && reset_at(1) {
        empty = NativeHistogram {
            schema: w[1].1.schema,
            custom_values: w[1].1.custom_values.clone(),
            ..NativeHistogram::default()
        };
        &empty
    } else {
        first
    };
    let custom = prev.uses_custom_buckets();
    if last.uses_custom_buckets() != custom || w.iter().skip(1).any(|(_, h)| h.uses_custom_buckets() != custom) {
        annotations.mixed_exponential_custom(name, position);
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    if is_counter {
        for (_, h) in &w[1..w.len() - 1] {
            if h.reset_hint == ResetHint::Gauge {
                annotations.histogram_not_counter(name, position);
            }
            min_schema = min_schema.min(h.schema);
        }
    }
    let mut result = (**last).clone();
    result.reduce_to(min_schema);
    if result.add(prev, true).ok()? {
        annotations.reconciled_custom_buckets("subtraction", position);
    }
    if is_counter {
        // The second histogram follows `prev` (the first, or nothing after a reset between
        // them): no reset there adds anything. Each later one after a reset adds its
        // predecessor back.
        for i in 2..w.len() {
            if reset_at(i) && result.add(&w[i - 1].1, false).ok()? {
                annotations.reconciled_custom_buckets("addition", position);
            }
        }
    } else if first.reset_hint != ResetHint::Gauge || last.reset_hint != ResetHint::Gauge {
        annotations.histogram_not_gauge(name, position);
    }
    Some(extrapolated(
        kind,
        result,
        (w[0].0, first.count),
        (w[w.len() - 1].0, last.count),
        w.len(),
        window,
    ))
}

/// [`histogram_rate`] of a window whose samples share one plain layout: the same arithmetic on
/// the stored counts, converting only the last sample (the answer's starting point). With one
/// layout no schema is reduced, no bounds reconciled and no custom and exponential buckets mix.
fn plain_rate(kind: RateKind, w: &WindowSamples<'_>, annotations: &mut Annotations) -> Option<NativeHistogram> {
    let (series, lo, hi) = (w.hists, w.range.start, w.range.end - 1);
    let reset_at = |k: usize| {
        w.resets
            .get(k)
            .copied()
            .unwrap_or_else(|| series.get(lo + k).detect_reset(&series.get(lo + k - 1)))
    };
    let is_counter = kind != RateKind::Delta;
    let (first, last) = (series.sample(lo), series.sample(hi));
    if is_counter && (first.reset_hint == ResetHint::Gauge || last.reset_hint == ResetHint::Gauge) {
        annotations.histogram_not_counter(w.name, w.position);
    }
    let reset_after_first = is_counter && reset_at(1);
    if is_counter && (lo + 1..hi).any(|i| series.sample(i).reset_hint == ResetHint::Gauge) {
        annotations.histogram_not_counter(w.name, w.position);
    }
    let mut result = series.to_histogram(hi);
    // After a reset between the first two samples, nothing is subtracted.
    if !reset_after_first {
        series.add_counts(&mut result, lo, -1.0);
    }
    if is_counter {
        for k in 2..w.range.len() {
            if reset_at(k) {
                series.add_counts(&mut result, lo + k - 1, 1.0);
            }
        }
    } else if first.reset_hint != ResetHint::Gauge || last.reset_hint != ResetHint::Gauge {
        annotations.histogram_not_gauge(w.name, w.position);
    }
    Some(extrapolated(
        kind,
        result,
        (first.timestamp, first.count),
        (last.timestamp, last.count),
        w.range.len(),
        w.window,
    ))
}

/// The increase `result` (of `n` samples from `first` to `last`, as time and count) extrapolated
/// to the window as Prometheus's `histogramRate` does, per second for `rate`.
fn extrapolated(
    kind: RateKind,
    mut result: NativeHistogram,
    first: (i64, f64),
    last: (i64, f64),
    n: usize,
    window: Window,
) -> NativeHistogram {
    result.reset_hint = ResetHint::Gauge;
    result.compact();
    let factor = extrapolation_factor(
        Sample::new(first.0, first.1),
        Sample::new(last.0, last.1),
        n,
        result.count,
        window,
        kind != RateKind::Delta,
        kind == RateKind::Rate,
    );
    result.mul(factor);
    result.reset_hint = ResetHint::Gauge;
    result
}

/// `irate`/`idelta` of the last two histograms.
fn instant_value(
    is_rate: bool,
    w: &[(i64, Arc<NativeHistogram>)],
    name: &str,
    position: &str,
    annotations: &mut Annotations,
) -> Option<NativeHistogram> {
    let [.., (t0, h0), (t1, h1)] = w else { return None };
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    if is_rate && (h1.reset_hint == ResetHint::Gauge || h0.reset_hint == ResetHint::Gauge) {
        annotations.histogram_not_counter(name, position);
    }
    if !is_rate && (h1.reset_hint != ResetHint::Gauge || h0.reset_hint != ResetHint::Gauge) {
        annotations.histogram_not_gauge(name, position);
    }
    let mut result = (**h1).clone();
    if !is_rate || !h1.detect_reset(h0) {
        match result.add(h0, true) {
            Ok(true) => annotations.reconciled_custom_buckets("subtraction", position),
            Ok(false) => {}
            Err(_) => {
                annotations.mixed_exponential_custom(name, position);
                return None;
            }
        }
    }
    result.reset_hint = ResetHint::Gauge;
    result.compact();
    if is_rate {
        result.div(interval as f64 / 1000.0);
    }
    Some(result)
}

#[cfg(test)]
mod tests;
