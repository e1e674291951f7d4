//! `deriv`, `predict_linear` (least-squares regression over the window), `resets`, `changes` and
//! `double_exponential_smoothing` (Prometheus 2's `holt_winters`, renamed in 3).

use tributary_storage::types::{Sample, TimestampMs};

use crate::statistics::kahan_sum_inc;

/// `deriv(v[range])`: the regression slope per second; needs two samples.
pub(crate) fn deriv(samples: &[Sample]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    // Prometheus regresses around the first sample's time to keep the sums small.
    Some(linear_regression(samples, samples[0].timestamp).0)
}

/// `predict_linear(v[range], t)`: the regression line's value `t` seconds after the evaluation
/// time (`step_time`, not the window end: with `offset` the prediction still starts at the step).
pub(crate) fn predict_linear(samples: &[Sample], step_time: TimestampMs, seconds: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, step_time);
    Some(slope * seconds + intercept)
}

/// `double_exponential_smoothing(v[range], sf, tf)`: Holt's linear smoothing of the window with
/// smoothing factor `sf` and trend factor `tf` (both checked by the caller to lie in (0, 1));
/// needs two samples. Prometheus's recurrence: the trend starts as the first difference, and
/// each later sample updates the level from the previous level plus trend.
pub(crate) fn double_exponential_smoothing(samples: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (mut previous, mut level) = (0.0, samples[0].value);
    let mut trend = samples[1].value - samples[0].value;
    for (i, s) in samples.iter().enumerate().skip(1) {
        // The trend of the first step is the initial difference itself.
        if i > 1 {
            trend = tf * (level - previous) + (1.0 - tf) * trend;
        }
        (previous, level) = (level, sf * s.value + (1.0 - sf) * (level + trend));
    }
    Some(level)
}

/// `resets(v[range])`: how often a sample is lower than the one before.
pub(crate) fn resets(samples: &[Sample]) -> f64 {
    samples.windows(2).filter(|w| w[1].value < w[0].value).count() as f64
}

/// `changes(v[range])`: how often a sample differs from the one before (NaN to NaN is no change).
pub(crate) fn changes(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .filter(|w| w[1].value != w[0].value && !(w[1].value.is_nan() && w[0].value.is_nan()))
        .count() as f64
}

/// Prometheus's `linearRegression`: least squares with `x` in seconds from `intercept_time`,
/// every sum Kahan-compensated. Returns the slope and the line's value at `intercept_time`.
/// A constant window has slope 0 exactly (NaN for a constant infinity), instead of the rounding
/// noise the formula would give.
fn linear_regression(samples: &[Sample], intercept_time: TimestampMs) -> (f64, f64) {
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let first = samples[0].value;
    let mut constant = true;
    let mut n = 0.0;
    for (i, s) in samples.iter().enumerate() {
        if constant && i > 0 && s.value != first {
            constant = false;
        }
        n += 1.0;
        let x = (s.timestamp - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(s.value, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * s.value, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if constant {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Vec<Sample> {
        points.iter().map(|&(t, v)| Sample::new(t * 1000, v)).collect()
    }

    #[test]
    fn regression_on_a_line_is_exact() {
        // v = 3 + 2t.
        let line = s(&[(10, 23.0), (20, 43.0), (30, 63.0), (40, 83.0)]);
        assert_eq!(deriv(&line), Some(2.0));
        // At t = 40 plus 60 seconds: 3 + 2 * 100.
        assert_eq!(predict_linear(&line, 40_000, 60.0), Some(203.0));
        assert_eq!(deriv(&line[..1]), None);
    }

    #[test]
    fn constant_windows_have_zero_slope() {
        assert_eq!(deriv(&s(&[(0, 5.0), (10, 5.0)])), Some(0.0));
        assert_eq!(predict_linear(&s(&[(0, 5.0), (10, 5.0)]), 100_000, 1e6), Some(5.0));
        assert!(deriv(&s(&[(0, f64::INFINITY), (10, f64::INFINITY)])).unwrap().is_nan());
    }

    #[test]
    fn resets_and_changes_count_transitions() {
        let w = s(&[
            (0, 1.0),
            (1, 5.0),
            (2, 2.0),
            (3, 2.0),
            (4, f64::NAN),
            (5, f64::NAN),
            (6, 0.0),
        ]);
        assert_eq!(resets(&w), 1.0);
        // 1->5, 5->2, 2->NaN, NaN->0; NaN->NaN is not a change.
        assert_eq!(changes(&w), 4.0);
        assert_eq!(changes(&w[..1]), 0.0);
    }
}
