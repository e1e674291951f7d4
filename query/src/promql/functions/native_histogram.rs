//! Functions over native histograms: `histogram_count`, `_sum`, `_avg`, `_stddev`, `_stdvar`,
//! `_fraction`, `histogram_quantile` of native histograms (classic buckets beside them keep the
//! classic path), and `rate`, `increase`, `delta`, `irate`, `idelta` of range selectors holding
//! native histograms (Prometheus's `histogramRate` and `instantValue`).

use std::sync::Arc;

use tributary_storage::signals::ResetHint;
use tributary_storage::types::{METRIC_NAME, Sample, is_stale_nan};

use super::over_time::{self, OverTime};
use super::rate::{self, RateKind, extrapolation_factor};
use super::{CallNode, Func, Node, histogram};
use crate::error::Result;
use crate::promql::annotations::Annotations;
use crate::promql::eval::{Evaluator, RangeArg, Window, distinct_series};
use crate::promql::histogram_vectors::{combine, convert};
use crate::promql::native_histogram::{self, NativeHistogram};
use crate::promql::value::{Data, HistogramPoint, Point, StepSeries, drop_name, into_without_name, merge_series};

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
                Some(match (w.floats.is_empty(), w.hists.is_empty()) {
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
    hists: &'a [(i64, Arc<NativeHistogram>)],
    /// Per histogram of `hists`, whether it follows a counter reset after the one before it in
    /// the series (the first's flag looks outside the window); empty unless asked for.
    resets: &'a [bool],
    window: Window,
    name: &'a str,
    position: &'a str,
}

/// A window's answer.
enum WindowValue {
    Float(f64),
    Histogram(NativeHistogram),
}

/// Applies `f` to every non-empty window of every series of a range selector holding native
/// histograms (float-only series included); `__name__` kept only with `keep_name`.
fn per_window(
    ev: &mut Evaluator,
    arg: RangeArg,
    keep_name: bool,
    position: &str,
    with_resets: bool,
    mut f: impl FnMut(&WindowSamples<'_>, &mut Annotations) -> Option<WindowValue>,
) -> Result<Vec<StepSeries>> {
    let steps = ev.steps;
    let RangeArg {
        series,
        histograms,
        range_ms,
        offset_ms,
        at,
    } = arg;
    let hist_labels: std::collections::HashSet<_> = histograms.iter().map(|h| h.labels.clone()).collect();
    let no_hists = tributary_storage::signals::HistogramSeries {
        labels: Default::default(),
        samples: Vec::new(),
    };
    let all = series
        .iter()
        .filter(|s| !hist_labels.contains(&s.labels))
        .map(|s| (&s.labels, &no_hists))
        .chain(histograms.iter().map(|h| (&h.labels, h)));
    let float_index: std::collections::HashMap<&tributary_storage::types::Labels, usize> =
        series.iter().enumerate().map(|(i, s)| (&s.labels, i)).collect();
    let mut out = Vec::new();
    for (labels, hs) in all {
        ev.guard.check()?;
        let floats: Vec<Sample> = float_index.get(labels).map_or_else(Vec::new, |&i| {
            let samples = &series[i].samples;
            samples.iter().copied().filter(|x| !is_stale_nan(x.value)).collect()
        });
        let hists: Vec<(i64, Arc<NativeHistogram>)> =
            convert(hs).into_iter().filter_map(|(t, h)| Some((t, h?))).collect();
        // Decided once per pair of neighbours: overlapping windows would compare each pair's
        // buckets again (it was a third of a native `rate`'s time).
        let resets: Vec<bool> = if with_resets {
            (0..hists.len())
                .map(|i| i > 0 && hists[i].1.detect_reset(&hists[i - 1].1))
                .collect()
        } else {
            Vec::new()
        };
        let name = labels.get(METRIC_NAME).unwrap_or("");
        let mut points = Vec::new();
        let mut hpoints = Vec::new();
        for step in 0..steps.count {
            let end = at.unwrap_or(steps.time(step)).saturating_sub(offset_ms);
            let window = Window { end, range_ms };
            let in_hists = window_range(&hists, |x| x.0, window);
            let w = WindowSamples {
                floats: &floats[window_range(&floats, |x| x.timestamp, window)],
                resets: resets.get(in_hists.clone()).unwrap_or(&[]),
                hists: &hists[in_hists],
                window,
                name,
                position,
            };
            if w.floats.is_empty() && w.hists.is_empty() {
                continue;
            }
            let step = step as u32;
            match f(&w, &mut ev.annotations) {
                Some(WindowValue::Float(value)) => points.push(Point { step, value }),
                Some(WindowValue::Histogram(h)) => hpoints.push(HistogramPoint {
                    step,
                    value: Arc::new(h),
                }),
                None => {}
            }
        }
        let labels = if keep_name {
            labels.clone()
        } else {
            into_without_name(labels.clone())
        };
        out.push(StepSeries::with_histograms(labels, points, hpoints));
    }
    distinct_series(out)
}

/// `last`, `count`, `present`, `sum` and `avg` over time of a window holding histograms; a sum
/// or average over floats and histograms together is nothing, with Prometheus's warning.
fn over_time(kind: OverTime, w: &WindowSamples<'_>, annotations: &mut Annotations) -> Option<WindowValue> {
    let n = w.floats.len() + w.hists.len();
    Some(match kind {
        OverTime::Count => WindowValue::Float(n as f64),
        OverTime::Present => WindowValue::Float(1.0),
        OverTime::Last => match (w.floats.last(), w.hists.last()) {
            (Some(f), Some((t, h))) if *t > f.timestamp => WindowValue::Histogram((**h).clone()),
            (Some(f), _) => WindowValue::Float(f.value),
            (None, Some((_, h))) => WindowValue::Histogram((**h).clone()),
            (None, None) => return None,
        },
        _ if w.hists.is_empty() => WindowValue::Float(over_time::evaluate(kind, w.floats, f64::NAN)),
        _ if !w.floats.is_empty() => {
            annotations.mixed_floats_histograms(w.name, w.position);
            return None;
        }
        _ => {
            let hists: Vec<&NativeHistogram> = w.hists.iter().map(|(_, h)| &**h).collect();
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

fn window_range<T>(samples: &[T], time: impl Fn(&T) -> i64, window: Window) -> std::ops::Range<usize> {
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
    let (w, window, name, position) = (samples.hists, samples.window, samples.name, samples.position);
    // `per_window` decided each neighbour pair's reset once for the rate kinds.
    let reset_at = |i: usize| {
        samples
            .resets
            .get(i)
            .copied()
            .unwrap_or_else(|| w[i].1.detect_reset(&w[i - 1].1))
    };
    match kind {
        RateKind::Irate | RateKind::Idelta => {
            return instant_value(kind == RateKind::Irate, w, name, position, annotations);
        }
        _ => {}
    }
    if w.len() < 2 {
        return None;
    }
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
    result.reset_hint = ResetHint::Gauge;
    result.compact();
    let factor = extrapolation_factor(
        Sample::new(w[0].0, first.count),
        Sample::new(w[w.len() - 1].0, last.count),
        w.len(),
        result.count,
        window,
        is_counter,
        kind == RateKind::Rate,
    );
    result.mul(factor);
    result.reset_hint = ResetHint::Gauge;
    Some(result)
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
