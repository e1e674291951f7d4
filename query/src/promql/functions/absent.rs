//! `absent(v)`: a single `1` at the steps where `v` is empty.

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use tributary_storage::types::{Label, Labels, METRIC_NAME};

use crate::promql::plan::unwrap_parens;
use crate::promql::value::{Point, StepSeries, Steps};

/// The labels `absent` reports: the argument selector's equality matchers, except that a label
/// matched more than once (or by any other kind of matcher) is left out. Anything but a plain
/// selector reports no labels.
pub(crate) fn labels_for(arg: Option<&Expr>) -> Labels {
    let vs = match arg.map(unwrap_parens) {
        Some(Expr::VectorSelector(vs)) => vs,
        Some(Expr::MatrixSelector(ms)) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut labels: Vec<Label> = Vec::new();
    // Names set by an equality matcher; a later matcher on the same name removes the label.
    let mut set: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        labels.retain(|l| l.name != m.name);
        if m.op == MatchOp::Equal && !set.contains(&m.name.as_str()) {
            labels.push(Label::new(m.name.clone(), m.value.clone()));
            set.push(&m.name);
        }
    }
    Labels::new(labels)
}

pub(crate) fn evaluate(input: &[StepSeries], labels: &Labels, steps: &Steps) -> Vec<StepSeries> {
    let mut present = vec![false; steps.count];
    for s in input {
        for p in &s.points {
            present[p.step as usize] = true;
        }
    }
    let points: Vec<Point> = present
        .iter()
        .enumerate()
        .filter(|(_, here)| !**here)
        .map(|(step, _)| Point {
            step: step as u32,
            value: 1.0,
        })
        .collect();
    if points.is_empty() {
        Vec::new()
    } else {
        vec![StepSeries::new(labels.clone(), points)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(q: &str) -> Labels {
        let expr = promql_parser::parser::parse(q).unwrap();
        match &expr {
            Expr::Call(c) => labels_for(c.args.args.first().map(|a| a.as_ref())),
            _ => panic!("not a call"),
        }
    }

    #[test]
    fn absent_labels_come_from_equality_matchers() {
        assert_eq!(
            labels(r#"absent(nonexistent{job="myjob"})"#),
            Labels::from_pairs(&[("job", "myjob")])
        );
        assert_eq!(
            labels(r#"absent(nonexistent{job="myjob", instance=~".*"})"#),
            Labels::from_pairs(&[("job", "myjob")])
        );
        assert_eq!(
            labels(r#"absent(x{job="a", job="b", foo="bar"})"#),
            Labels::from_pairs(&[("foo", "bar")])
        );
        assert_eq!(labels(r#"absent(sum(nonexistent{job="myjob"}))"#), Labels::default());
        assert_eq!(labels(r#"absent((up{job="a"}))"#), Labels::from_pairs(&[("job", "a")]));
        assert_eq!(
            labels(r#"absent(up{job=~"x", job="a"})"#),
            Labels::from_pairs(&[("job", "a")])
        );
    }

    #[test]
    fn absent_fills_only_empty_steps() {
        let s = StepSeries::new(Labels::default(), vec![Point { step: 1, value: 5.0 }]);
        let out = evaluate(&[s], &Labels::from_pairs(&[("job", "x")]), &Steps::range(0, 2, 1));
        assert_eq!(out[0].points.iter().map(|p| p.step).collect::<Vec<_>>(), vec![0, 2]);
        let full = StepSeries::new(Labels::default(), vec![Point { step: 0, value: 5.0 }]);
        assert!(evaluate(&[full], &Labels::default(), &Steps::instant(0)).is_empty());
    }
}
