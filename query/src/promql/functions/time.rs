//! `timestamp()` and `scalar()`; `time()` and `vector()` are one-liners in the dispatcher.

use crate::error::Result;
use crate::promql::eval::Evaluator;
use crate::promql::plan::Node;
use crate::promql::value::{StepCursor, StepSeries, Steps, drop_name, merge_series};

/// `timestamp(v)`: for a plain selector the timestamp of the sample it picked (so
/// `timestamp(up)` shows when `up` was scraped), otherwise the evaluation time.
pub(crate) fn timestamp(ev: &mut Evaluator, arg: &Node) -> Result<Vec<StepSeries>> {
    let input = match arg {
        Node::Vector(sel) => ev.instant_selector(*sel, true)?,
        other => {
            let steps = ev.steps;
            let mut v = ev.vector(other)?;
            for s in &mut v {
                for p in &mut s.points {
                    p.value = steps.time(p.step as usize) as f64 / 1000.0;
                }
            }
            v
        }
    };
    merge_series(
        input
            .into_iter()
            .map(|s| StepSeries::new(drop_name(&s.labels), s.points))
            .collect(),
    )
}

/// `scalar(v)`: the single element's value, or NaN when there are zero or several.
pub(crate) fn scalar(input: &[StepSeries], steps: &Steps) -> Vec<f64> {
    let mut cursor = StepCursor::new(input);
    let mut now = Vec::new();
    (0..steps.count as u32)
        .map(|step| {
            cursor.at(step, &mut now);
            match now.as_slice() {
                [(_, v)] => *v,
                _ => f64::NAN,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::value::Point;
    use tributary_storage::types::Labels;

    #[test]
    fn scalar_needs_exactly_one_element() {
        let a = StepSeries::new(Labels::from_pairs(&[("a", "1")]), vec![Point { step: 0, value: 3.0 }]);
        let b = StepSeries::new(
            Labels::from_pairs(&[("a", "2")]),
            vec![Point { step: 1, value: 4.0 }, Point { step: 2, value: 5.0 }],
        );
        let steps = Steps::range(0, 3, 1);
        let got = scalar(&[a.clone(), b], &steps);
        assert_eq!(got[0], 3.0);
        assert_eq!(got[1], 4.0);
        assert_eq!(got[2], 5.0);
        assert!(got[3].is_nan());
        let both = StepSeries::new(Labels::from_pairs(&[("a", "3")]), vec![Point { step: 0, value: 1.0 }]);
        assert!(scalar(&[a, both], &steps)[0].is_nan());
    }
}
