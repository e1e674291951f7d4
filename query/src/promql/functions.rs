//! PromQL functions: which ones exist here, how a call is planned, and how it is evaluated.
//! Each family lives in its own file; a function not listed in [`plan_call`] is rejected at plan
//! time with an `Unsupported` error naming it.

mod absent;
mod date;
mod histogram;
mod info;
mod label;
mod math;
mod native_histogram;
mod over_time;
mod rate;
mod sort;
mod time;
mod trend;

use promql_parser::parser::{Call, Expr};
use tributary_storage::rollup::BucketFields;
use tributary_storage::types::Labels;

use super::eval::{Evaluator, RangeArg};
use super::plan::{Node, Planner, string_arg};
use super::value::{Data, Point, StepSeries, drop_name, merge_series};
use crate::error::{Error, Result};

pub(crate) use info::admit_selectors as admit_info_selectors;
pub(crate) use over_time::OverTime;
pub(crate) use rate::RateKind;

#[derive(Debug)]
pub(crate) enum Func {
    Rate(RateKind),
    OverTime(OverTime),
    Deriv,
    PredictLinear,
    /// `double_exponential_smoothing` (Prometheus 2's `holt_winters`, which Prometheus 3 no
    /// longer knows, nor does the parser).
    DoubleExponentialSmoothing,
    /// `min_of(a, b)` / `max_of(a, b)` of two scalars.
    MinOf,
    MaxOf,
    Resets,
    Changes,
    /// Carries the labels reported, as `Absent` does.
    AbsentOverTime(Labels),
    Math(math::MathFn),
    Pi,
    Date(date::DateFn),
    Clamp,
    ClampMin,
    ClampMax,
    Round,
    Vector,
    Scalar,
    Time,
    Timestamp,
    /// Carries the labels `absent` reports, derived from the argument's equality matchers.
    Absent(Labels),
    Sort {
        descending: bool,
    },
    SortByLabel {
        descending: bool,
        labels: Vec<String>,
    },
    LabelReplace(label::Replace),
    LabelJoin(label::Join),
    HistogramQuantile,
    /// `info(v, {selector})`: joins info-metric labels (see `info`).
    Info(info::Info),
    /// `histogram_count`, `histogram_sum`, `histogram_fraction`, ...: they read native
    /// histogram samples only and ignore floats (see `native_histogram`).
    NativeHistogramOnly,
}

impl Func {
    /// Whether each output series comes from one input series and that series alone, with
    /// every other argument a constant: what lets a selector be evaluated in parts.
    pub(crate) fn per_series(&self) -> bool {
        matches!(
            self,
            Func::Rate(_)
                | Func::OverTime(_)
                | Func::Deriv
                | Func::PredictLinear
                | Func::DoubleExponentialSmoothing
                | Func::Resets
                | Func::Changes
                | Func::Math(_)
                | Func::Date(_)
                | Func::Clamp
                | Func::ClampMin
                | Func::ClampMax
                | Func::Round
                | Func::Timestamp
        )
    }
}

impl Func {
    /// Whether the summary of a window's samples (rollup buckets combined) answers the
    /// function exactly: `rate`, `increase` and the `avg`, `min`, `max`, `sum`, `count`
    /// aggregations over time.
    pub(crate) fn reads_buckets(&self) -> bool {
        matches!(
            self,
            Func::Rate(RateKind::Rate | RateKind::Increase)
                | Func::OverTime(OverTime::Avg | OverTime::Min | OverTime::Max | OverTime::Sum | OverTime::Count)
        )
    }

    /// The fields of each bucket the function reads from a window summary (a read hint for
    /// [`Func::reads_buckets`] functions): `rate` and `increase` never read `sum`, `min` or
    /// `max` (`rate::from_summary`).
    pub(crate) fn bucket_fields(&self) -> BucketFields {
        match self {
            Func::Rate(_) => BucketFields::Change,
            _ => BucketFields::All,
        }
    }
}

#[derive(Debug)]
pub(crate) struct CallNode {
    /// The function's name, for errors.
    pub(crate) name: &'static str,
    pub(crate) func: Func,
    pub(crate) args: Vec<Node>,
    /// Where each argument starts in the query text (`line:col`, empty when unknown).
    pub(crate) positions: Vec<String>,
}

impl CallNode {
    fn position(&self, arg: usize) -> &str {
        self.positions.get(arg).map_or("", String::as_str)
    }
}

/// Plans a function call. The parser has already checked arity and argument types.
pub(crate) fn plan_call(planner: &mut Planner, call: &Call) -> Result<Node> {
    let name = call.func.name;
    let positions = planner.claim_call(name);
    let raw: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    let strings_from = |first: usize| raw[first..].iter().map(|e| string_arg(e)).collect::<Result<Vec<_>>>();
    let func = match name {
        "rate" => Func::Rate(RateKind::Rate),
        "increase" => Func::Rate(RateKind::Increase),
        "delta" => Func::Rate(RateKind::Delta),
        "irate" => Func::Rate(RateKind::Irate),
        "idelta" => Func::Rate(RateKind::Idelta),
        "avg_over_time" => Func::OverTime(OverTime::Avg),
        "min_over_time" => Func::OverTime(OverTime::Min),
        "max_over_time" => Func::OverTime(OverTime::Max),
        "sum_over_time" => Func::OverTime(OverTime::Sum),
        "count_over_time" => Func::OverTime(OverTime::Count),
        "last_over_time" => Func::OverTime(OverTime::Last),
        "first_over_time" => Func::OverTime(OverTime::First),
        "mad_over_time" => Func::OverTime(OverTime::Mad),
        "ts_of_min_over_time" => Func::OverTime(OverTime::TsOfMin),
        "ts_of_max_over_time" => Func::OverTime(OverTime::TsOfMax),
        "ts_of_first_over_time" => Func::OverTime(OverTime::TsOfFirst),
        "ts_of_last_over_time" => Func::OverTime(OverTime::TsOfLast),
        "double_exponential_smoothing" => Func::DoubleExponentialSmoothing,
        "min_of" => Func::MinOf,
        "max_of" => Func::MaxOf,
        // Constants of the query, folded here as Prometheus folds them.
        "start" | "end" | "range" | "step" => {
            let value = planner.query_constant(name);
            return value
                .map(Node::Number)
                .ok_or_else(|| Error::Internal(format!("{name}() is no constant")));
        }
        "info" => Func::Info(info::Info::plan(planner, &raw)?),
        "present_over_time" => Func::OverTime(OverTime::Present),
        "stddev_over_time" => Func::OverTime(OverTime::Stddev),
        "stdvar_over_time" => Func::OverTime(OverTime::Stdvar),
        "quantile_over_time" => Func::OverTime(OverTime::Quantile),
        "deriv" => Func::Deriv,
        "predict_linear" => Func::PredictLinear,
        "resets" => Func::Resets,
        "changes" => Func::Changes,
        "absent_over_time" => Func::AbsentOverTime(absent::labels_for(raw.first().copied())),
        "pi" => Func::Pi,
        "clamp" => Func::Clamp,
        "clamp_min" => Func::ClampMin,
        "clamp_max" => Func::ClampMax,
        "round" => Func::Round,
        "vector" => Func::Vector,
        "scalar" => Func::Scalar,
        "time" => Func::Time,
        "timestamp" => Func::Timestamp,
        "absent" => Func::Absent(absent::labels_for(raw.first().copied())),
        "sort" => Func::Sort { descending: false },
        "sort_desc" => Func::Sort { descending: true },
        "sort_by_label" | "sort_by_label_desc" => Func::SortByLabel {
            descending: name == "sort_by_label_desc",
            labels: strings_from(1)?,
        },
        "histogram_quantile" => Func::HistogramQuantile,
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar"
        | "histogram_fraction" => Func::NativeHistogramOnly,
        "label_replace" => {
            let strings = strings_from(1)?;
            Func::LabelReplace(label::Replace::new(&strings[0], &strings[1], &strings[2], &strings[3])?)
        }
        "label_join" => {
            let strings = strings_from(1)?;
            Func::LabelJoin(label::Join::new(&strings[0], &strings[1], &strings[2..])?)
        }
        other => match (math::MathFn::from_name(other), date::DateFn::from_name(other)) {
            (Some(f), _) => Func::Math(f),
            (_, Some(f)) => Func::Date(f),
            _ => return Err(Error::unsupported(format!("the function {other}()"))),
        },
    };
    // String arguments were consumed into `func`; the rest become nodes.
    let node_args: Vec<&Expr> = match &func {
        // `info`'s selector was planned into `func`.
        Func::LabelReplace(_) | Func::LabelJoin(_) | Func::SortByLabel { .. } | Func::Info(_) => raw[..1].to_vec(),
        _ => raw,
    };
    let args = node_args
        .into_iter()
        .map(|arg| planner.node(arg))
        .collect::<Result<Vec<_>>>()?;
    if func.reads_buckets()
        && let Some(Node::Matrix(sel)) = args.first()
    {
        planner.choose_tier(*sel, func.bucket_fields());
    }
    Ok(Node::Call(Box::new(CallNode {
        name,
        func,
        args,
        positions,
    })))
}

pub(crate) fn eval_call(ev: &mut Evaluator, call: &CallNode) -> Result<Data> {
    if let Some(data) = native_histogram::eval_call(ev, call)? {
        return Ok(data);
    }
    let args = &call.args;
    let steps = ev.steps;
    Ok(match &call.func {
        Func::Rate(kind) if ev.bucketed(&args[0]) => {
            let kind = *kind;
            Data::Vector(ev.bucket_function(&args[0], Some(call.position(0)), |w, window| {
                rate::from_summary(kind, w, window)
            })?)
        }
        Func::OverTime(kind) if ev.bucketed(&args[0]) => {
            let kind = *kind;
            Data::Vector(ev.bucket_function(&args[0], None, |w, _| over_time::from_summary(kind, w))?)
        }
        Func::Rate(kind) => {
            let kind = *kind;
            let arg = ev.range_arg(&args[0])?;
            // Prometheus 3 notes `rate`/`increase` of series not named like counters.
            let counter_info = matches!(kind, RateKind::Rate | RateKind::Increase).then(|| call.position(0));
            Data::Vector(
                ev.range_function_par(arg, false, counter_info, |w, window, _| rate::evaluate(kind, w, window))?,
            )
        }
        Func::OverTime(kind) => {
            let kind = *kind;
            let (phi, arg) = if kind == OverTime::Quantile {
                (ev.scalar(&args[0])?, ev.range_arg(&args[1])?)
            } else {
                (Vec::new(), ev.range_arg(&args[0])?)
            };
            // Like Prometheus, the two that return a sample's own value keep the metric name.
            let keep_name = matches!(kind, OverTime::Last | OverTime::First);
            // Prometheus judges φ only where a window had samples to take the quantile of.
            let mut used_phi = Vec::new();
            let out = ev.range_function(arg, keep_name, None, |w, _, step| {
                let q = phi.get(step).copied().unwrap_or(f64::NAN);
                if kind == OverTime::Quantile {
                    used_phi.push(q);
                }
                Some(over_time::evaluate(kind, w, q))
            })?;
            for q in used_phi {
                ev.annotations.quantile_out_of_range(q, call.position(0));
            }
            Data::Vector(out)
        }
        Func::Deriv => range_values(ev, &args[0], |w, _| trend::deriv(w))?,
        Func::Resets => range_values(ev, &args[0], |w, _| Some(trend::resets(w)))?,
        Func::DoubleExponentialSmoothing => {
            let arg = ev.range_arg(&args[0])?;
            let sf = ev.scalar(&args[1])?;
            let tf = ev.scalar(&args[2])?;
            // Prometheus judges the factors only where a series is evaluated, and fails then.
            let mut invalid = None;
            let out = ev.range_function(arg, false, None, |w, _, step| {
                let (s, t) = (sf[step], tf[step]);
                if s <= 0.0 || s >= 1.0 {
                    invalid.get_or_insert(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {s:.6}"));
                    return None;
                }
                if t <= 0.0 || t >= 1.0 {
                    invalid.get_or_insert(format!("invalid trend factor. Expected: 0 < tf < 1, got: {t:.6}"));
                    return None;
                }
                trend::double_exponential_smoothing(w, s, t)
            })?;
            if let Some(message) = invalid {
                return Err(Error::Execution(message));
            }
            Data::Vector(out)
        }
        Func::MinOf | Func::MaxOf => {
            let (a, b) = (ev.scalar(&args[0])?, ev.scalar(&args[1])?);
            let pick = if matches!(call.func, Func::MinOf) {
                crate::statistics::go_min
            } else {
                crate::statistics::go_max
            };
            Data::Scalar(a.iter().zip(&b).map(|(&x, &y)| pick(x, y)).collect())
        }
        Func::Changes => range_values(ev, &args[0], |w, _| Some(trend::changes(w)))?,
        Func::PredictLinear => {
            let arg = ev.range_arg(&args[0])?;
            let seconds = ev.scalar(&args[1])?;
            Data::Vector(ev.range_function(arg, false, None, |w, _, step| {
                trend::predict_linear(w, steps.time(step), seconds[step])
            })?)
        }
        Func::AbsentOverTime(labels) => {
            let arg = ev.range_arg(&args[0])?;
            // Names are kept so that distinct series never merge; only presence matters.
            let present = ev.range_function(arg, true, None, |_, _, _| Some(1.0))?;
            Data::Vector(absent::evaluate(&present, labels, &steps))
        }
        Func::Math(f) => {
            let f = *f;
            Data::Vector(map_values(ev.vector(&args[0])?, |v, _| Some(f.apply(v)))?)
        }
        Func::Pi => Data::Scalar(vec![std::f64::consts::PI; steps.count]),
        Func::Date(f) => {
            let f = *f;
            match args.first() {
                Some(arg) => Data::Vector(map_values(ev.vector(arg)?, |v, _| Some(f.of_value(v)))?),
                None => {
                    let points = (0..steps.count)
                        .map(|i| Point {
                            step: i as u32,
                            value: f.of_step_time(steps.time(i)),
                        })
                        .collect();
                    Data::Vector(vec![StepSeries::new(Labels::default(), points)])
                }
            }
        }
        Func::Clamp | Func::ClampMin | Func::ClampMax => {
            let input = ev.vector(&args[0])?;
            let bounds: Vec<Vec<f64>> = args[1..].iter().map(|a| ev.scalar(a)).collect::<Result<_>>()?;
            let (min, max) = match &call.func {
                Func::Clamp => (Some(&bounds[0]), Some(&bounds[1])),
                Func::ClampMin => (Some(&bounds[0]), None),
                _ => (None, Some(&bounds[0])),
            };
            Data::Vector(map_values(input, |v, step| {
                let lo = min.map_or(f64::NEG_INFINITY, |m| m[step]);
                let hi = max.map_or(f64::INFINITY, |m| m[step]);
                math::clamp(v, lo, hi)
            })?)
        }
        Func::Round => {
            let input = ev.vector(&args[0])?;
            let to_nearest = match args.get(1) {
                Some(a) => ev.scalar(a)?,
                None => vec![1.0; steps.count],
            };
            Data::Vector(map_values(input, |v, step| Some(math::round(v, to_nearest[step])))?)
        }
        Func::Vector => {
            let values = ev.scalar(&args[0])?;
            let points = values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Point { step: i as u32, value })
                .collect();
            Data::Vector(vec![StepSeries::new(Labels::default(), points)])
        }
        Func::Scalar => Data::Scalar(time::scalar(&ev.vector(&args[0])?, &steps)),
        Func::Time => Data::Scalar((0..steps.count).map(|i| steps.time(i) as f64 / 1000.0).collect()),
        Func::Timestamp => Data::Vector(time::timestamp(ev, &args[0])?),
        Func::Absent(labels) => Data::Vector(absent::evaluate(&ev.vector(&args[0])?, labels, &steps)),
        Func::Sort { descending } => Data::Vector(sort::evaluate(ev.vector(&args[0])?, *descending, &steps)),
        Func::SortByLabel { descending, labels } => {
            Data::Vector(sort::by_label(ev.vector(&args[0])?, labels, *descending, &steps))
        }
        Func::LabelReplace(r) => Data::Vector(r.apply(ev.vector(&args[0])?)?),
        Func::LabelJoin(j) => Data::Vector(j.apply(ev.vector(&args[0])?)?),
        Func::HistogramQuantile => {
            let phi = ev.scalar(&args[0])?;
            let input = ev.vector(&args[1])?;
            let positions = histogram::Positions {
                phi: call.position(0),
                buckets: call.position(1),
            };
            let guard = ev.guard.clone();
            Data::Vector(histogram::quantile(
                &phi,
                input,
                &steps,
                &guard,
                &mut ev.annotations,
                positions,
            )?)
        }
        Func::Info(info) => {
            let base = ev.vector(&args[0])?;
            Data::Vector(info.evaluate(ev, base)?)
        }
        Func::NativeHistogramOnly => return Err(Error::Internal(format!("{} not evaluated", call.name))),
    })
}

/// A range function whose value depends only on the window's samples.
fn range_values(
    ev: &mut Evaluator,
    arg: &Node,
    f: impl Fn(&[tributary_storage::types::Sample], usize) -> Option<f64> + Sync,
) -> Result<Data> {
    let arg: RangeArg = ev.range_arg(arg)?;
    Ok(Data::Vector(ev.range_function_par(
        arg,
        false,
        None,
        |w, _, step| f(w, step),
    )?))
}

/// Maps every value of every series (given its step), dropping `__name__` as value-changing
/// functions do, and merges label sets that collide as a result.
fn map_values(input: Vec<StepSeries>, mut f: impl FnMut(f64, usize) -> Option<f64>) -> Result<Vec<StepSeries>> {
    merge_series(
        input
            .into_iter()
            .map(|s| {
                let points = s
                    .points
                    .into_iter()
                    .filter_map(|p| f(p.value, p.step as usize).map(|value| Point { step: p.step, value }))
                    .collect();
                StepSeries::new(drop_name(&s.labels), points)
            })
            .collect(),
    )
}
