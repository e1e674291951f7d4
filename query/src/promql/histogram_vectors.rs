//! Vectors holding native histograms: selectors reading them, `sum`/`avg`/`count`/`group`,
//! unary minus and the arithmetic Prometheus 3 defines on them (`h * s`, `s * h`, `h / s`,
//! `h + h`, `h - h`). Every other operator refuses a native histogram, naming itself.
//! Float values beside histograms keep the float operators' semantics.

use std::collections::HashMap;
use std::sync::Arc;

use tributary_storage::signals::HistogramSeries as StoredHistograms;
use tributary_storage::types::{Labels, METRIC_NAME, Series, is_stale_nan};

use super::aggregate::{AggOp, AggregateNode};
use super::binary::{self, BinOp, BinaryNode, Cardinality};
use super::eval::{Evaluator, Guard, Window};
use super::native_histogram::{MixedSchemas, NativeHistogram};
use super::plan::Selector;
use super::value::{
    Data, HistogramPoint, HistogramSeries, Point, StepSeries, Steps, into_without_name, keep_labels, merge_series,
    without_labels,
};
use crate::error::{Error, Result};

impl AggOp {
    /// The operator's PromQL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Count => "count",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::Quantile => "quantile",
            AggOp::CountValues => "count_values",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }
}

/// Whether `data` is a vector with a native-histogram value.
pub(crate) fn holds_histograms(data: &Data) -> bool {
    matches!(data, Data::Vector(v) if v.iter().any(|s| !s.histograms.is_empty()))
}

/// Samples of stored histograms converted once, shared by every step that sees them.
pub(crate) fn convert(series: &StoredHistograms) -> Vec<(i64, Option<Arc<NativeHistogram>>)> {
    let mut bounds = None;
    series
        .samples
        .iter()
        .map(|s| {
            let h = (!is_stale_nan(s.sum)).then(|| Arc::new(NativeHistogram::from_sample_sharing(s, &mut bounds)));
            (s.timestamp, h)
        })
        .collect()
}

/// How an instant selector reads (see `Evaluator::instant_selector`).
pub(crate) struct InstantRead<'a> {
    pub(crate) selector: &'a Selector,
    pub(crate) steps: &'a Steps,
    pub(crate) lookback: i64,
    pub(crate) guard: &'a Guard,
    /// `timestamp(selector)`: the sample's time instead of its value.
    pub(crate) sample_time: bool,
}

impl InstantRead<'_> {
    /// Adds the native-histogram series of an instant selector to its float output `out`: per
    /// step the latest sample in the lookback window, unless stale. `floats` are the float
    /// samples of label sets that also hold histograms: the later sample of either kind wins.
    pub(crate) fn add_to(
        &self,
        out: &mut Vec<StepSeries>,
        histograms: Vec<StoredHistograms>,
        floats: Vec<Series>,
    ) -> Result<()> {
        for hs in histograms {
            self.guard.check()?;
            let samples = convert(&hs);
            let float_samples = floats
                .iter()
                .find(|s| s.labels == hs.labels)
                .map_or(&[][..], |s| s.samples.as_slice());
            let mut points = Vec::new();
            let mut hpoints = Vec::new();
            let (mut next, mut next_float) = (0usize, 0usize);
            for step in 0..self.steps.count {
                let reference = self.selector.reference_time(self.steps.time(step));
                while next < samples.len() && samples[next].0 <= reference {
                    next += 1;
                }
                while next_float < float_samples.len() && float_samples[next_float].timestamp <= reference {
                    next_float += 1;
                }
                let hist = next.checked_sub(1).map(|i| &samples[i]);
                let float = next_float.checked_sub(1).map(|i| float_samples[i]);
                let step = step as u32;
                let (t, value) = match (hist, float) {
                    (Some((th, h)), Some(f)) if *th >= f.timestamp => (*th, h.clone().map(Value::Histogram)),
                    (_, Some(f)) => (f.timestamp, (!is_stale_nan(f.value)).then_some(Value::Float(f.value))),
                    (Some((th, h)), None) => (*th, h.clone().map(Value::Histogram)),
                    (None, None) => continue,
                };
                let Some(value) = value.filter(|_| t > reference.saturating_sub(self.lookback)) else {
                    continue;
                };
                match value {
                    _ if self.sample_time => points.push(Point {
                        step,
                        value: t as f64 / 1000.0,
                    }),
                    Value::Float(value) => points.push(Point { step, value }),
                    Value::Histogram(value) => hpoints.push(HistogramPoint { step, value }),
                }
            }
            self.guard.check_samples(points.len() + hpoints.len())?;
            if !points.is_empty() || !hpoints.is_empty() {
                out.push(StepSeries::with_histograms(hs.labels, points, hpoints));
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(())
    }
}

/// A range selector's raw samples in `window`, floats and native histograms by series.
pub(crate) fn matrix(series: Vec<Series>, histograms: Vec<StoredHistograms>, window: Window) -> Vec<HistogramSeries> {
    let mut out: Vec<HistogramSeries> = series
        .into_iter()
        .map(|s| HistogramSeries {
            labels: s.labels,
            floats: s.samples,
            histograms: Vec::new(),
        })
        .collect();
    for hs in histograms {
        let samples: Vec<(i64, Arc<NativeHistogram>)> = convert(&hs)
            .into_iter()
            .filter(|(t, _)| *t > window.start() && *t <= window.end)
            .filter_map(|(t, h)| Some((t, h?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        match out.iter_mut().find(|s| s.labels == hs.labels) {
            Some(s) => s.histograms = samples,
            None => out.push(HistogramSeries {
                labels: hs.labels,
                floats: Vec::new(),
                histograms: samples,
            }),
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Unary minus: every value times −1, `__name__` dropped.
pub(crate) fn negate(v: Vec<StepSeries>) -> Vec<StepSeries> {
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
            let histograms = s.histograms.into_iter().map(|h| scaled(h, |x| x.mul(-1.0))).collect();
            StepSeries::with_histograms(into_without_name(s.labels), points, histograms)
        })
        .collect()
}

fn scaled(h: HistogramPoint, f: impl FnOnce(&mut NativeHistogram)) -> HistogramPoint {
    let mut value = Arc::unwrap_or_clone(h.value);
    f(&mut value);
    HistogramPoint {
        step: h.step,
        value: Arc::new(value),
    }
}

/// A value at one step: a float or a native histogram.
#[derive(Clone, Debug)]
enum Value {
    Float(f64),
    Histogram(Arc<NativeHistogram>),
}

/// Every value of `s` by step.
fn values(s: &StepSeries) -> Vec<(u32, Value)> {
    let mut all: Vec<(u32, Value)> = s
        .points
        .iter()
        .map(|p| (p.step, Value::Float(p.value)))
        .chain(s.histograms.iter().map(|h| (h.step, Value::Histogram(h.value.clone()))))
        .collect();
    all.sort_by_key(|v| v.0);
    all
}

/// `sum`, `avg`, `count` and `group` over a vector holding native histograms. A group mixing
/// floats and histograms at a step gives no value there, with Prometheus's warning; so does a
/// group mixing exponential and custom buckets. Values are added into one accumulator per group
/// and step as the series come ([`Tally`]), in the order [`combine`] adds them.
pub(crate) fn aggregate(ev: &mut Evaluator, a: &AggregateNode, input: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    if !matches!(a.op, AggOp::Sum | AggOp::Avg | AggOp::Count | AggOp::Group) {
        let labels = input
            .iter()
            .find(|s| !s.histograms.is_empty())
            .map(|s| s.labels.clone());
        ev.consumer = format!("the {} aggregation", a.op.name());
        return Err(ev.refuse_histograms(&labels.unwrap_or_default()));
    }
    let mean = a.op == AggOp::Avg;
    let values_only = matches!(a.op, AggOp::Count | AggOp::Group);
    // Groups in first-seen order; per group, per step, its tally.
    let mut groups: Vec<(Labels, HashMap<u32, Tally>)> = Vec::new();
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    for (n, s) in input.into_iter().enumerate() {
        if n % 1024 == 0 {
            ev.guard.check()?;
        }
        let key = a.grouping.group_labels(&s.labels);
        let g = match ids.get(&key) {
            Some(&g) => g,
            None => {
                ids.insert(key.clone(), groups.len());
                groups.push((key, HashMap::new()));
                groups.len() - 1
            }
        };
        let tallies = &mut groups[g].1;
        for p in s.points {
            tallies.entry(p.step).or_default().add_float(p.value);
        }
        for h in s.histograms {
            let tally = tallies.entry(h.step).or_default();
            if values_only {
                tally.hists += 1;
            } else {
                tally.add_histogram(h.value, mean);
            }
        }
    }
    let position = a.param_position.as_str();
    let mut out = Vec::with_capacity(groups.len());
    for (labels, tallies) in groups {
        ev.guard.check()?;
        let mut tallies: Vec<(u32, Tally)> = tallies.into_iter().collect();
        tallies.sort_unstable_by_key(|t| t.0);
        let mut points = Vec::new();
        let mut histograms = Vec::new();
        for (step, tally) in tallies {
            let n = (tally.floats + tally.hists) as f64;
            match a.op {
                AggOp::Count => points.push(Point { step, value: n }),
                AggOp::Group => points.push(Point { step, value: 1.0 }),
                _ if tally.floats == 0 => match tally.histogram {
                    Some(Ok(mut acc)) => {
                        if acc.reconciled {
                            ev.annotations.reconciled_custom_buckets("aggregation", position);
                        }
                        let total = acc.sum + acc.c;
                        acc.h.sum = if mean { total / n } else { total };
                        acc.h.compact();
                        histograms.push(HistogramPoint {
                            step,
                            value: Arc::new(acc.h),
                        });
                    }
                    Some(Err(MixedSchemas)) => {
                        let name = labels.get(METRIC_NAME).unwrap_or("");
                        ev.annotations.mixed_exponential_custom(name, position);
                    }
                    None => {}
                },
                _ if tally.hists == 0 => {
                    let total = tally.float_sum + tally.float_c;
                    let value = if mean { total / n } else { total };
                    points.push(Point { step, value });
                }
                _ => ev.annotations.mixed_floats_histograms_aggregation(position),
            }
        }
        if !points.is_empty() || !histograms.is_empty() {
            out.push(StepSeries::with_histograms(labels, points, histograms));
        }
    }
    Ok(out)
}

/// One group's values at one step, added as they come: floats with Kahan compensation,
/// histograms into one accumulator (the first one taken over, not copied, when no one else
/// holds it). Once custom and exponential buckets meet, the histogram answer is that error.
#[derive(Default)]
struct Tally {
    floats: usize,
    float_sum: f64,
    float_c: f64,
    hists: usize,
    histogram: Option<std::result::Result<Accumulated, MixedSchemas>>,
}

/// The histograms of a [`Tally`] so far, as [`combine`] keeps them.
struct Accumulated {
    h: NativeHistogram,
    /// The `sum` fields, with Kahan compensation `c`.
    sum: f64,
    c: f64,
    reconciled: bool,
}

impl Tally {
    fn add_float(&mut self, value: f64) {
        self.floats += 1;
        (self.float_sum, self.float_c) = crate::statistics::kahan_sum_inc(value, self.float_sum, self.float_c);
    }

    fn add_histogram(&mut self, h: Arc<NativeHistogram>, mean: bool) {
        self.hists += 1;
        let n = self.hists;
        match &mut self.histogram {
            None => {
                let h = Arc::unwrap_or_clone(h);
                self.histogram = Some(Ok(Accumulated {
                    sum: h.sum,
                    c: 0.0,
                    h,
                    reconciled: false,
                }));
            }
            Some(Err(MixedSchemas)) => {}
            Some(Ok(acc)) => {
                (acc.sum, acc.c) = crate::statistics::kahan_sum_inc(h.sum, acc.sum, acc.c);
                let added = if mean {
                    // Incrementally, as Prometheus does, so that large counts do not overflow.
                    let count = n as f64;
                    let mut step = Arc::unwrap_or_clone(h);
                    step.div(count);
                    let mut before = acc.h.clone();
                    before.div(count);
                    step.add(&before, true).and_then(|r| Ok(r | acc.h.add(&step, false)?))
                } else {
                    acc.h.add(&h, false)
                };
                match added {
                    Ok(reconciled) => acc.reconciled |= reconciled,
                    Err(e) => self.histogram = Some(Err(e)),
                }
            }
        }
    }
}

/// The sum of `hists` (never empty), or with `mean` their mean, kept incrementally as
/// Prometheus does so that large counts do not overflow; the `sum` fields are added with Kahan
/// compensation. The flag says whether custom bounds were reconciled.
pub(crate) fn combine(
    hists: &[&NativeHistogram],
    mean: bool,
) -> std::result::Result<(NativeHistogram, bool), MixedSchemas> {
    let mut acc = hists[0].clone();
    let mut reconciled = false;
    let (mut sum, mut c) = (hists[0].sum, 0.0);
    for (n, h) in hists.iter().enumerate().skip(1) {
        (sum, c) = crate::statistics::kahan_sum_inc(h.sum, sum, c);
        if mean {
            let count = (n + 1) as f64;
            let mut step = (*h).clone();
            step.div(count);
            let mut before = acc.clone();
            before.div(count);
            reconciled |= step.add(&before, true)?;
            reconciled |= acc.add(&step, false)?;
        } else {
            reconciled |= acc.add(h, false)?;
        }
    }
    acc.sum = if mean { (sum + c) / hists.len() as f64 } else { sum + c };
    Ok((acc, reconciled))
}

/// A binary operation where one side holds native histograms: float pairs keep the float
/// operators' semantics; a histogram takes part in `h * f`, `f * h`, `h / f`, `h + h`, `h - h`
/// only (one-to-one matching), and any other use of one is refused naming the operator.
pub(crate) fn binary(ev: &mut Evaluator, b: &BinaryNode, lhs: Data, rhs: Data) -> Result<Data> {
    let op = b.op;
    if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
        return set_operation(ev, b, lhs, rhs);
    }
    let one_to_one = b.matching.card == Cardinality::OneToOne;
    let with_histogram = |d: &Data| match d {
        Data::Vector(v) => v.iter().find(|s| !s.histograms.is_empty()).map(|s| s.labels.clone()),
        _ => None,
    };
    if !one_to_one {
        let labels = with_histogram(&lhs)
            .or_else(|| with_histogram(&rhs))
            .unwrap_or_default();
        ev.consumer = format!("the binary operator {}", op_name(op, b.matching.card));
        return Err(ev.refuse_histograms(&labels));
    }
    let steps = ev.steps;
    let guard = ev.guard.clone();
    match (lhs, rhs) {
        (Data::Vector(v), Data::Scalar(s)) => {
            let (floats, hists) = split(v);
            let float_out = binary::evaluate(b, Data::Vector(floats), Data::Scalar(s.clone()), &steps, &guard)?;
            let hist_out = scalar_side(ev, b, hists, &s, false);
            Ok(Data::Vector(merge_series(
                [float_out.into_vector()?, hist_out].concat(),
            )?))
        }
        (Data::Scalar(s), Data::Vector(v)) => {
            let (floats, hists) = split(v);
            let float_out = binary::evaluate(b, Data::Scalar(s.clone()), Data::Vector(floats), &steps, &guard)?;
            let hist_out = scalar_side(ev, b, hists, &s, true);
            Ok(Data::Vector(merge_series(
                [float_out.into_vector()?, hist_out].concat(),
            )?))
        }
        (Data::Vector(l), Data::Vector(r)) => vector_vector(ev, b, l, r),
        (l, r) => Err(Error::Internal(format!(
            "binary operation on {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// `and`, `or`, `unless`: they select series by labels and never read values, so each side runs
/// through the float operator with its histograms as placeholders, put back afterwards (the left
/// side's value wins where both sides have one for a label set and step).
fn set_operation(ev: &mut Evaluator, b: &BinaryNode, lhs: Data, rhs: Data) -> Result<Data> {
    let (Data::Vector(l), Data::Vector(r)) = (lhs, rhs) else {
        return Err(Error::Internal("set operation on a scalar".into()));
    };
    type Seen = HashMap<(Labels, u32), Option<Arc<NativeHistogram>>>;
    let flatten = |v: Vec<StepSeries>, seen: &mut Seen| -> Vec<StepSeries> {
        v.into_iter()
            .map(|s| {
                for p in &s.points {
                    seen.insert((s.labels.clone(), p.step), None);
                }
                let mut points = s.points;
                for h in s.histograms {
                    seen.insert((s.labels.clone(), h.step), Some(h.value));
                    points.push(Point {
                        step: h.step,
                        value: 0.0,
                    });
                }
                points.sort_by_key(|p| p.step);
                StepSeries::new(s.labels, points)
            })
            .collect()
    };
    let (mut left, mut right) = (Seen::new(), Seen::new());
    let (l, r) = (flatten(l, &mut left), flatten(r, &mut right));
    let steps = ev.steps;
    let out = binary::evaluate(b, Data::Vector(l), Data::Vector(r), &steps, &ev.guard)?.into_vector()?;
    Ok(Data::Vector(
        out.into_iter()
            .map(|s| {
                let mut points = Vec::new();
                let mut histograms = Vec::new();
                for p in s.points {
                    let key = (s.labels.clone(), p.step);
                    match left.get(&key).or_else(|| right.get(&key)) {
                        Some(Some(h)) => histograms.push(HistogramPoint {
                            step: p.step,
                            value: h.clone(),
                        }),
                        _ => points.push(p),
                    }
                }
                StepSeries::with_histograms(s.labels, points, histograms)
            })
            .collect(),
    ))
}

fn op_name(op: BinOp, card: Cardinality) -> String {
    let name = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "^",
        BinOp::Atan2 => "atan2",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Gt => ">",
        BinOp::Lt => "<",
        BinOp::Ge => ">=",
        BinOp::Le => "<=",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Unless => "unless",
    };
    match card {
        Cardinality::ManyToOne => format!("{name} group_left"),
        Cardinality::OneToMany => format!("{name} group_right"),
        _ => name.to_string(),
    }
}

/// The float-only and the histogram-only halves of a vector.
fn split(v: Vec<StepSeries>) -> (Vec<StepSeries>, Vec<StepSeries>) {
    let mut floats = Vec::new();
    let mut hists = Vec::new();
    for s in v {
        if !s.points.is_empty() {
            floats.push(StepSeries::new(s.labels.clone(), s.points));
        }
        if !s.histograms.is_empty() {
            hists.push(StepSeries::with_histograms(s.labels, Vec::new(), s.histograms));
        }
    }
    (floats, hists)
}

/// Histograms against a scalar: `h * s`, `s * h` and `h / s`; any other operator drops the
/// histogram with Prometheus's info.
fn scalar_side(
    ev: &mut Evaluator,
    b: &BinaryNode,
    hists: Vec<StepSeries>,
    s: &[f64],
    scalar_left: bool,
) -> Vec<StepSeries> {
    let op = b.op;
    if !(op == BinOp::Mul || (op == BinOp::Div && !scalar_left)) {
        if hists.iter().any(|h| !h.histograms.is_empty()) {
            let name = op_name(op, Cardinality::OneToOne);
            let (l, r) = if scalar_left {
                ("float", "histogram")
            } else {
                ("histogram", "float")
            };
            ev.annotations.incompatible_types(l, &name, r, "");
        }
        return Vec::new();
    }
    hists
        .into_iter()
        .map(|series| {
            let histograms = series
                .histograms
                .into_iter()
                .map(|h| {
                    let f = s[h.step as usize];
                    scaled(h, |x| if op == BinOp::Mul { x.mul(f) } else { x.div(f) })
                })
                .collect();
            StepSeries::with_histograms(into_without_name(series.labels), Vec::new(), histograms)
        })
        .collect()
}

/// Whether two histograms are equal (Prometheus's `Equals`: the counter-reset hint and empty
/// buckets aside).
fn equal(a: &NativeHistogram, b: &NativeHistogram) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.compact();
    b.compact();
    a.reset_hint = b.reset_hint;
    a == b
}

/// Vector-to-vector arithmetic with histograms, one-to-one on the matching labels.
fn vector_vector(ev: &mut Evaluator, b: &BinaryNode, l: Vec<StepSeries>, r: Vec<StepSeries>) -> Result<Data> {
    let steps = ev.steps;
    let guard = ev.guard.clone();
    let m = &b.matching;
    let signature = |labels: &Labels| {
        if m.on {
            keep_labels(labels, &m.labels)
        } else {
            without_labels(labels, &m.labels)
        }
    };
    // Float-float pairs: the float operator, on the float halves.
    let (lf, _) = split(l.clone());
    let (rf, _) = split(r.clone());
    let mut out = binary::evaluate(b, Data::Vector(lf), Data::Vector(rf), &steps, &guard)?.into_vector()?;
    // Pairs with a histogram on either side, per step.
    let mut right: HashMap<(Labels, u32), Value> = HashMap::new();
    for s in &r {
        let sig = signature(&s.labels);
        for (step, v) in values(s) {
            if right.insert((sig.clone(), step), v).is_some() {
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {} on the right hand-side of the operation",
                    sig
                )));
            }
        }
    }
    let position = "";
    for s in &l {
        guard.check()?;
        let sig = signature(&s.labels);
        let filter = b.op.is_comparison() && !b.return_bool;
        let labels = match (m.on, filter) {
            (true, _) => keep_labels(&s.labels, &m.labels),
            (false, false) => without_labels(&s.labels, &m.labels),
            // A filtering comparison keeps the left side's name.
            (false, true) => {
                let mut l = s.labels.clone();
                m.labels.iter().for_each(|name| l.remove(name));
                l
            }
        };
        let mut points = Vec::new();
        let mut histograms = Vec::new();
        for (step, lv) in values(s) {
            let Some(rv) = right.get(&(sig.clone(), step)) else {
                continue;
            };
            let result = match (&lv, rv, b.op) {
                (Value::Float(_), Value::Float(_), _) => continue,
                (Value::Histogram(h), Value::Histogram(o), BinOp::Add | BinOp::Sub) => {
                    let mut sum = (**h).clone();
                    match sum.add(o, b.op == BinOp::Sub) {
                        Ok(reconciled) => {
                            if reconciled {
                                let what = if b.op == BinOp::Sub { "subtraction" } else { "addition" };
                                ev.annotations.reconciled_custom_buckets(what, position);
                            }
                            sum.compact();
                            sum
                        }
                        Err(_) => {
                            let name = s.labels.get(METRIC_NAME).unwrap_or("");
                            ev.annotations.mixed_exponential_custom(name, position);
                            continue;
                        }
                    }
                }
                (Value::Histogram(h), Value::Float(f), BinOp::Mul | BinOp::Div) => {
                    let mut x = (**h).clone();
                    if b.op == BinOp::Mul {
                        x.mul(*f)
                    } else {
                        x.div(*f)
                    }
                    x
                }
                (Value::Float(f), Value::Histogram(h), BinOp::Mul) => {
                    let mut x = (**h).clone();
                    x.mul(*f);
                    x
                }
                (Value::Histogram(h), Value::Histogram(o), BinOp::Eq | BinOp::Ne) => {
                    let holds = equal(h, o) == (b.op == BinOp::Eq);
                    if b.return_bool {
                        points.push(Point {
                            step,
                            value: f64::from(u8::from(holds)),
                        });
                        continue;
                    }
                    if !holds {
                        continue;
                    }
                    (**h).clone()
                }
                _ => {
                    let name = op_name(b.op, m.card);
                    ev.annotations.incompatible_types(kind(&lv), &name, kind(rv), position);
                    continue;
                }
            };
            histograms.push(HistogramPoint {
                step,
                value: Arc::new(result),
            });
        }
        points.sort_by_key(|p: &Point| p.step);
        if !histograms.is_empty() || !points.is_empty() {
            out.push(StepSeries::with_histograms(labels, points, histograms));
        }
    }
    Ok(Data::Vector(merge_series(out)?))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Float(_) => "float",
        Value::Histogram(_) => "histogram",
    }
}
