//! Query results ([`Value`]) and the step-indexed series the evaluator passes between nodes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use tributary_storage::types::{LabelRef, Labels, METRIC_NAME, Sample, Series, TimestampMs};

use super::native_histogram::NativeHistogram;

use crate::error::{Error, Result};

/// One element of an instant vector: a series' labels and its value at the evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    /// The series' labels (without `__name__` once an operation changed the value).
    pub labels: Labels,
    /// The evaluation time, in milliseconds.
    pub timestamp: TimestampMs,
    /// The value at that time (0 for a native histogram).
    pub value: f64,
    /// The native-histogram value at that time, if the value is one.
    pub histogram: Option<Arc<NativeHistogram>>,
}

/// One series of a range query's answer holding native histograms (`histograms` in the API).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its float values.
    pub floats: Vec<Sample>,
    /// Its native-histogram values with their times.
    pub histograms: Vec<(TimestampMs, Arc<NativeHistogram>)>,
}

/// The result of a query, shaped like Prometheus's `resultType`s.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number (`scalar`).
    Scalar {
        /// The evaluation time, in milliseconds.
        timestamp: TimestampMs,
        /// The number.
        value: f64,
    },
    /// A string literal (`string`).
    String {
        /// The evaluation time, in milliseconds.
        timestamp: TimestampMs,
        /// The text.
        value: String,
    },
    /// Instant query results, in evaluation order (`sort()` and `topk()` orders are kept).
    Vector(Vec<VectorSample>),
    /// Range query results and instant range-vector selectors, sorted by label set.
    Matrix(Vec<Series>),
    /// A matrix in which some series hold native histograms, sorted by label set.
    HistogramMatrix(Vec<HistogramSeries>),
}

impl Value {
    /// Prometheus's `resultType`.
    pub(crate) fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) | Value::HistogramMatrix(_) => "matrix",
        }
    }
}

/// The evaluation timestamps of a query: `start, start + step, ..., <= end`. An instant query
/// is a single step with a zero interval (a range query over one step still returns a matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steps {
    pub(crate) start: TimestampMs,
    pub(crate) end: TimestampMs,
    pub(crate) interval: i64,
    pub(crate) count: usize,
}

impl Steps {
    pub(crate) fn instant(t: TimestampMs) -> Self {
        Self {
            start: t,
            end: t,
            interval: 0,
            count: 1,
        }
    }

    /// `interval` must be positive and `end >= start` (checked by the engine).
    pub(crate) fn range(start: TimestampMs, end: TimestampMs, interval: i64) -> Self {
        let count = ((end - start) / interval) as usize + 1;
        Self {
            start,
            end,
            interval,
            count,
        }
    }

    /// `start, start + interval, ...` up to `end` inclusive, ending at the last step actually
    /// taken; no steps at all when `end < start` (a subquery window holding no aligned time).
    pub(crate) fn aligned(start: TimestampMs, end: TimestampMs, interval: i64) -> Self {
        if end < start {
            return Self::empty();
        }
        let count = ((end - start) / interval) as usize + 1;
        Self {
            start,
            end: start + (count as i64 - 1) * interval,
            interval,
            count,
        }
    }

    /// No steps: every node evaluates to nothing.
    pub(crate) fn empty() -> Self {
        Self {
            start: 0,
            end: -1,
            interval: 1,
            count: 0,
        }
    }

    pub(crate) fn time(&self, step: usize) -> TimestampMs {
        self.start + step as i64 * self.interval
    }

    pub(crate) fn is_instant(&self) -> bool {
        self.interval == 0
    }
}

/// A value at one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub(crate) step: u32,
    pub(crate) value: f64,
}

/// A native-histogram value at one step.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistogramPoint {
    pub(crate) step: u32,
    pub(crate) value: Arc<NativeHistogram>,
}

/// A series over the query's steps; `points` are sorted by step with at most one per step, and
/// so are `histograms` (native-histogram values), never at a step that has a float point.
/// Operators that do not evaluate native histograms refuse a series carrying any (see
/// `Evaluator::vector`), so none is dropped silently.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<Point>,
    pub(crate) histograms: Vec<HistogramPoint>,
}

impl StepSeries {
    pub(crate) fn new(labels: Labels, points: Vec<Point>) -> Self {
        Self {
            labels,
            points,
            histograms: Vec::new(),
        }
    }

    pub(crate) fn with_histograms(labels: Labels, points: Vec<Point>, histograms: Vec<HistogramPoint>) -> Self {
        Self {
            labels,
            points,
            histograms,
        }
    }

    /// Whether the series holds no value at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty() && self.histograms.is_empty()
    }
}

/// What a plan node evaluates to over all steps.
#[derive(Debug)]
pub(crate) enum Data {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<StepSeries>),
    /// Raw samples of a range-vector selector (instant queries only).
    Matrix(Vec<Series>),
    /// Raw samples of a range-vector selector holding native histograms (instant queries only).
    HistogramMatrix(Vec<HistogramSeries>),
}

impl Data {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Data::Scalar(_) => "scalar",
            Data::String(_) => "string",
            Data::Vector(_) => "instant vector",
            Data::Matrix(_) | Data::HistogramMatrix(_) => "range vector",
        }
    }

    pub(crate) fn into_vector(self) -> Result<Vec<StepSeries>> {
        match self {
            Data::Vector(v) => Ok(v),
            other => Err(Error::Internal(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub(crate) fn into_scalar(self) -> Result<Vec<f64>> {
        match self {
            Data::Scalar(v) => Ok(v),
            other => Err(Error::Internal(format!("expected scalar, got {}", other.type_name()))),
        }
    }
}

/// Collects step-major output (every step of every series before the next step) into series,
/// merging equal label sets and rejecting two values for one label set at one step, as
/// Prometheus's `rangeEval` does.
#[derive(Debug, Default)]
pub(crate) struct SeriesBuilder {
    index: HashMap<Labels, usize>,
    series: Vec<StepSeries>,
}

impl SeriesBuilder {
    /// The slot for `labels`, created (in first-seen order) if new.
    pub(crate) fn slot(&mut self, labels: Labels) -> usize {
        match self.index.entry(labels) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                self.series.push(StepSeries::new(e.key().clone(), Vec::new()));
                *e.insert(self.series.len() - 1)
            }
        }
    }

    /// Appends a value; steps must be pushed in non-decreasing order per slot.
    pub(crate) fn push(&mut self, slot: usize, step: u32, value: f64) -> Result<()> {
        let points = &mut self.series[slot].points;
        if points.last().is_some_and(|p| p.step == step) {
            return Err(Error::duplicate_labelset());
        }
        points.push(Point { step, value });
        Ok(())
    }

    /// The series that received at least one value, in slot order.
    pub(crate) fn finish(self) -> Vec<StepSeries> {
        self.series.into_iter().filter(|s| !s.points.is_empty()).collect()
    }
}

/// Merges series-major output whose label sets collided (e.g. after dropping `__name__`):
/// points of equal label sets are interleaved, and two points at one step are an error.
/// Keeps first-seen order, and drops series without points.
pub(crate) fn merge_series(series: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        if s.is_empty() {
            continue;
        }
        match index.entry(s.labels) {
            Entry::Vacant(e) => {
                out.push(StepSeries::with_histograms(e.key().clone(), s.points, s.histograms));
                e.insert(out.len() - 1);
            }
            Entry::Occupied(e) => {
                let target = &mut out[*e.get()];
                target.points = merge_points(std::mem::take(&mut target.points), s.points)?;
                if !s.histograms.is_empty() {
                    let all = &mut target.histograms;
                    all.extend(s.histograms);
                    all.sort_by_key(|h| h.step);
                    let floats = &target.points;
                    if all.windows(2).any(|w| w[0].step == w[1].step)
                        || all
                            .iter()
                            .any(|h| floats.binary_search_by_key(&h.step, |p| p.step).is_ok())
                    {
                        return Err(Error::duplicate_labelset());
                    }
                }
            }
        }
    }
    Ok(out)
}

fn merge_points(a: Vec<Point>, b: Vec<Point>) -> Result<Vec<Point>> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].step.cmp(&b[j].step) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => return Err(Error::duplicate_labelset()),
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    Ok(out)
}

/// Walks many step-sorted series in step order: `at(step)` yields the `(series index, value)`
/// of every series that has a point at `step`. Steps must be visited in increasing order.
#[derive(Debug)]
pub(crate) struct StepCursor<'a> {
    series: &'a [StepSeries],
    pos: Vec<usize>,
}

impl<'a> StepCursor<'a> {
    pub(crate) fn new(series: &'a [StepSeries]) -> Self {
        Self {
            series,
            pos: vec![0; series.len()],
        }
    }

    pub(crate) fn at(&mut self, step: u32, out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (i, s) in self.series.iter().enumerate() {
            let p = &mut self.pos[i];
            while *p < s.points.len() && s.points[*p].step < step {
                *p += 1;
            }
            if let Some(point) = s.points.get(*p).filter(|point| point.step == step) {
                out.push((i, point.value));
            }
        }
    }
}

/// The label set without `__name__`, as every value-changing operation produces.
pub(crate) fn drop_name(labels: &Labels) -> Labels {
    if labels.get(METRIC_NAME).is_none() {
        return labels.clone();
    }
    labels.filtered(|l| l.name != METRIC_NAME)
}

/// Like [`drop_name`], reusing the label set's storage (no string is copied).
pub(crate) fn into_without_name(labels: Labels) -> Labels {
    if labels.get(METRIC_NAME).is_none() {
        return labels;
    }
    labels.filtered(|l| l.name != METRIC_NAME)
}

/// Only the labels named in `names` (which may include `__name__`).
pub(crate) fn keep_labels(labels: &Labels, names: &[String]) -> Labels {
    labels.filtered(|l| names.iter().any(|n| n == l.name))
}

/// Every label except those named in `names` and `__name__`.
pub(crate) fn without_labels(labels: &Labels, names: &[String]) -> Labels {
    labels.filtered(|l| l.name != METRIC_NAME && !names.iter().any(|n| n == l.name))
}

/// Prometheus's `labels.String()` form, used in error messages: `{__name__="up", job="x"}`.
pub(crate) fn labels_string(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|LabelRef { name, value }| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, never an exponent
/// (`count_values` labels, messages).
pub(crate) fn format_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{f}")
    }
}

/// A sample value as the Prometheus HTTP API writes it: shortest round-trip digits, exponent
/// form (`1e-07`, `1.5e+21`) below 1e-6 and from 1e21, and `NaN`, `+Inf`, `-Inf`.
pub(crate) fn format_value(f: f64) -> String {
    let abs = f.abs();
    if !f.is_finite() || abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format_plain(f);
    }
    go_exponent(f)
}

/// Shortest round-trip digits in Go's exponent form: Rust writes `1.5e21` / `1e-7`, Go writes a
/// signed exponent of at least two digits (`1.5e+21`, `1e-07`).
pub(crate) fn go_exponent(f: f64) -> String {
    let formatted = format!("{f:e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(steps: &[u32]) -> Vec<Point> {
        steps
            .iter()
            .map(|&step| Point {
                step,
                value: step as f64,
            })
            .collect()
    }

    #[test]
    fn builder_merges_equal_labels_and_rejects_same_step() {
        let mut b = SeriesBuilder::default();
        let l = Labels::from_pairs(&[("a", "1")]);
        let s = b.slot(l.clone());
        b.push(s, 0, 1.0).unwrap();
        assert_eq!(b.slot(l), s);
        assert!(matches!(b.push(s, 0, 2.0), Err(Error::Execution(_))));
        b.push(s, 1, 2.0).unwrap();
        let empty = b.slot(Labels::from_pairs(&[("a", "2")]));
        assert_ne!(empty, s);
        assert_eq!(b.finish().len(), 1);
    }

    #[test]
    fn merge_interleaves_disjoint_steps_and_rejects_overlap() {
        let l = Labels::from_pairs(&[("a", "1")]);
        let merged = merge_series(vec![
            StepSeries::new(l.clone(), pts(&[0, 2])),
            StepSeries::new(l.clone(), pts(&[1, 3])),
        ])
        .unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0].points.iter().map(|p| p.step).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        let err = merge_series(vec![
            StepSeries::new(l.clone(), pts(&[0, 2])),
            StepSeries::new(l, pts(&[2])),
        ]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "vector cannot contain metrics with the same labelset"
        );
    }

    #[test]
    fn cursor_yields_present_series_per_step() {
        let a = StepSeries::new(Labels::default(), pts(&[0, 2]));
        let b = StepSeries::new(Labels::default(), pts(&[1, 2]));
        let all = [a, b];
        let mut c = StepCursor::new(&all);
        let mut out = Vec::new();
        c.at(0, &mut out);
        assert_eq!(out, vec![(0, 0.0)]);
        c.at(1, &mut out);
        assert_eq!(out, vec![(1, 1.0)]);
        c.at(2, &mut out);
        assert_eq!(out, vec![(0, 2.0), (1, 2.0)]);
    }

    #[test]
    fn label_helpers() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "a"), ("x", "1")]);
        assert_eq!(drop_name(&l), Labels::from_pairs(&[("job", "a"), ("x", "1")]));
        assert_eq!(keep_labels(&l, &["job".into(), "__name__".into()]).len(), 2);
        assert_eq!(without_labels(&l, &["x".into()]), Labels::from_pairs(&[("job", "a")]));
        assert_eq!(labels_string(&l), r#"{__name__="up", job="a", x="1"}"#);
        assert_eq!(Steps::range(0, 10, 5).count, 3);
    }

    #[test]
    fn values_are_formatted_like_prometheus() {
        let cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e-7, "1e-07"),
            (1.5e21, "1.5e+21"),
            (1e300, "1e+300"),
            (123456789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.0, "0"),
            (-0.0, "-0"),
        ];
        for (v, want) in cases {
            assert_eq!(format_value(v), want, "{v}");
        }
        assert_eq!(format_plain(1e-7), "0.0000001");
        assert_eq!(format_plain(1e21), "1000000000000000000000");
    }
}
