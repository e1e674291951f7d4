//! `sort()` and `sort_desc()` order an instant query's result by value (NaN last);
//! `sort_by_label()` and `sort_by_label_desc()` by the given labels' values in natural order
//! (digit runs compared as numbers), then by the whole label set. Range query results are always
//! ordered by labels, so there they change nothing.

use std::cmp::Ordering;

use tributary_storage::types::Labels;

use crate::promql::value::{StepSeries, Steps};

/// `sort_by_label(v, names...)`: labels unchanged (the metric name kept), order by `names`.
pub(crate) fn by_label(
    mut input: Vec<StepSeries>,
    names: &[String],
    descending: bool,
    steps: &Steps,
) -> Vec<StepSeries> {
    if steps.is_instant() {
        input.sort_by(|a, b| label_order(&a.labels, &b.labels, names, descending));
    }
    input
}

fn label_order(a: &Labels, b: &Labels, names: &[String], descending: bool) -> Ordering {
    for name in names {
        let (x, y) = (a.get(name).unwrap_or(""), b.get(name).unwrap_or(""));
        if x == y {
            continue;
        }
        let ascending = if natural_less(x, y) {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        return if descending { ascending.reverse() } else { ascending };
    }
    let whole = a.cmp(b);
    if descending { whole.reverse() } else { whole }
}

/// `natsort.Compare` (github.com/facette/natsort), which Prometheus uses: the strings are cut
/// into runs of ASCII digits and of other characters; runs that both parse as 64-bit integers
/// compare as numbers, others as strings. Its quirks (a shared prefix that ends one string
/// compares as "less") are kept, since they decide Prometheus's order.
fn natural_less(a: &str, b: &str) -> bool {
    let (chunks_a, chunks_b) = (chunks(a), chunks(b));
    for (i, x) in chunks_a.iter().enumerate() {
        let Some(y) = chunks_b.get(i) else {
            return false;
        };
        let last_a = i == chunks_a.len() - 1;
        let last_b = i == chunks_b.len() - 1;
        if let (Some(p), Some(q)) = (go_atoi(x), go_atoi(y)) {
            if p == q {
                if last_a {
                    return true;
                } else if last_b {
                    return false;
                }
                continue;
            }
            return p < q;
        }
        if x == y {
            if last_a {
                return true;
            } else if last_b {
                return false;
            }
            continue;
        }
        return x < y;
    }
    false
}

/// Maximal runs of ASCII digits and of anything else (Go's `(\d+|\D+)`).
fn chunks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut digits = None;
    for (i, c) in s.char_indices() {
        let is_digit = c.is_ascii_digit();
        if digits.is_some_and(|d| d != is_digit) {
            out.push(&s[start..i]);
            start = i;
        }
        digits = Some(is_digit);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Go's `strconv.Atoi` on a chunk: digits only here, `None` when out of the 64-bit range.
fn go_atoi(s: &str) -> Option<i64> {
    if s.bytes().all(|c| c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

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
    fn natural_order_compares_digit_runs_as_numbers() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("a", "b"));
        assert!(natural_less("x-9", "x-10"));
        // Go's quirks: an empty string is never less; a string ending on a shared chunk is.
        assert!(!natural_less("", "a"));
        assert!(natural_less("a1", "a01"));
        assert_eq!(chunks("ab12c3"), vec!["ab", "12", "c", "3"]);
        assert_eq!(go_atoi("99999999999999999999"), None);
    }

    #[test]
    fn sorts_by_labels_then_by_the_whole_set() {
        let series =
            |pairs: &[(&str, &str)]| StepSeries::new(Labels::from_pairs(pairs), vec![Point { step: 0, value: 1.0 }]);
        let input = vec![
            series(&[("i", "10"), ("x", "b")]),
            series(&[("i", "9"), ("x", "a")]),
            series(&[("i", "10"), ("x", "a")]),
        ];
        let names = ["i".to_string()];
        let order = |v: Vec<StepSeries>| v.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>();
        assert_eq!(
            order(by_label(input.clone(), &names, false, &Steps::instant(0))),
            [r#"{i="9", x="a"}"#, r#"{i="10", x="a"}"#, r#"{i="10", x="b"}"#]
        );
        assert_eq!(
            order(by_label(input, &names, true, &Steps::instant(0))),
            [r#"{i="10", x="b"}"#, r#"{i="10", x="a"}"#, r#"{i="9", x="a"}"#]
        );
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
