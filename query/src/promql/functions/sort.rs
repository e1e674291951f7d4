//! `sort()` and `sort_desc()`: order an instant query's result by value (NaN last). Range query
//! results are always ordered by labels, so there they change nothing.

use std::cmp::Ordering;

use crate::promql::value::{StepSeries, Steps};

pub(crate) fn evaluate(mut input: Vec<StepSeries>, descending: bool, steps: &Steps) -> Vec<StepSeries> {
    if !steps.is_instant() {
        return input;
    }
    let value = |s: &StepSeries| s.points.first().map_or(f64::NAN, |p| p.value);
    input.sort_by(|a, b| {
        let (x, y) = (value(a), value(b));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ if descending => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        }
    });
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::Point;
    use tributary_storage::types::Labels;

    fn series(values: &[f64]) -> Vec<StepSeries> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                StepSeries::new(
                    Labels::from_pairs(&[("i", &i.to_string())]),
                    vec![Point { step: 0, value: v }],
                )
            })
            .collect()
    }

    fn values(v: &[StepSeries]) -> Vec<String> {
        v.iter().map(|s| s.points[0].value.to_string()).collect()
    }

    #[test]
    fn sorts_by_value_with_nan_last() {
        let steps = Steps::instant(0);
        assert_eq!(
            values(&evaluate(series(&[2.0, f64::NAN, 1.0, 3.0]), false, &steps)),
            ["1", "2", "3", "NaN"]
        );
        assert_eq!(
            values(&evaluate(series(&[2.0, f64::NAN, 1.0, 3.0]), true, &steps)),
            ["3", "2", "1", "NaN"]
        );
    }
}
