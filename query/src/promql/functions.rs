//! PromQL functions: which ones exist here, how a call is planned, and how it is evaluated.
//! Each family lives in its own file; a function not listed in [`plan_call`] is rejected at plan
//! time with an `Unsupported` error naming it.

mod absent;
mod histogram;
mod label;
mod math;
mod over_time;
mod rate;
mod sort;
mod time;

use promql_parser::parser::{Call, Expr};
use tributary_storage::types::Labels;

use super::eval::Evaluator;
use super::plan::{Node, Planner, string_arg, unwrap_parens};
use super::value::{Data, Point, StepSeries, drop_name, merge_series};
use crate::error::{Error, Result};

pub(crate) use over_time::OverTime;
pub(crate) use rate::RateKind;

#[derive(Debug)]
pub(crate) enum Func {
    Rate(RateKind),
    OverTime(OverTime),
    Math(math::MathFn),
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
    LabelReplace(label::Replace),
    LabelJoin(label::Join),
    HistogramQuantile,
}

#[derive(Debug)]
pub(crate) struct CallNode {
    pub func: Func,
    pub args: Vec<Node>,
}

/// Plans a function call. The parser has already checked arity and argument types.
pub(crate) fn plan_call(planner: &mut Planner, call: &Call) -> Result<Node> {
    let name = call.func.name;
    let raw: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
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
        "present_over_time" => Func::OverTime(OverTime::Present),
        "stddev_over_time" => Func::OverTime(OverTime::Stddev),
        "stdvar_over_time" => Func::OverTime(OverTime::Stdvar),
        "quantile_over_time" => Func::OverTime(OverTime::Quantile),
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
        "histogram_quantile" => Func::HistogramQuantile,
        "label_replace" => {
            let strings = raw[1..].iter().map(|e| string_arg(e)).collect::<Result<Vec<_>>>()?;
            Func::LabelReplace(label::Replace::new(&strings[0], &strings[1], &strings[2], &strings[3])?)
        }
        "label_join" => {
            let strings = raw[1..].iter().map(|e| string_arg(e)).collect::<Result<Vec<_>>>()?;
            Func::LabelJoin(label::Join::new(&strings[0], &strings[1], &strings[2..])?)
        }
        other => match math::MathFn::from_name(other) {
            Some(f) => Func::Math(f),
            None => return Err(Error::unsupported(format!("the function {other}()"))),
        },
    };
    // String arguments were consumed into `func`; the rest become nodes.
    let node_args: Vec<&Expr> = match &func {
        Func::LabelReplace(_) | Func::LabelJoin(_) => raw[..1].to_vec(),
        _ => raw,
    };
    let mut args = Vec::with_capacity(node_args.len());
    for arg in node_args {
        if let Expr::Subquery(_) = unwrap_parens(arg) {
            return Err(Error::unsupported("subqueries"));
        }
        args.push(planner.node(arg)?);
    }
    Ok(Node::Call(Box::new(CallNode { func, args })))
}

fn matrix_arg(node: &Node) -> Result<usize> {
    match node {
        Node::Matrix(sel) => Ok(*sel),
        other => Err(Error::Internal(format!(
            "expected a range vector selector argument, got {other:?}"
        ))),
    }
}

pub(crate) fn eval_call(ev: &mut Evaluator, call: &CallNode) -> Result<Data> {
    let args = &call.args;
    let steps = ev.steps;
    Ok(match &call.func {
        Func::Rate(kind) => {
            let kind = *kind;
            Data::Vector(ev.range_function(matrix_arg(&args[0])?, false, |w, window, _| {
                rate::evaluate(kind, w, window)
            })?)
        }
        Func::OverTime(kind) => {
            let kind = *kind;
            let (phi, sel) = if kind == OverTime::Quantile {
                (ev.scalar(&args[0])?, matrix_arg(&args[1])?)
            } else {
                (Vec::new(), matrix_arg(&args[0])?)
            };
            let keep_name = kind == OverTime::Last;
            Data::Vector(ev.range_function(sel, keep_name, |w, _, step| {
                Some(over_time::evaluate(kind, w, phi.get(step).copied().unwrap_or(f64::NAN)))
            })?)
        }
        Func::Math(f) => {
            let f = *f;
            Data::Vector(map_values(ev.vector(&args[0])?, |v, _| Some(f.apply(v)))?)
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
        Func::LabelReplace(r) => Data::Vector(r.apply(ev.vector(&args[0])?)?),
        Func::LabelJoin(j) => Data::Vector(j.apply(ev.vector(&args[0])?)?),
        Func::HistogramQuantile => {
            let phi = ev.scalar(&args[0])?;
            let input = ev.vector(&args[1])?;
            Data::Vector(histogram::quantile(&phi, input, &steps, &ev.guard)?)
        }
    })
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
