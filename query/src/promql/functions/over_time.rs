//! `<aggregation>_over_time` functions: aggregate each series' samples within its window.

use tributary_storage::rollup::Bucket;
use tributary_storage::types::Sample;

use crate::statistics::{kahan_sum_inc, quantile};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OverTime {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    First,
    Present,
    Stddev,
    Stdvar,
    Quantile,
    /// Median absolute deviation.
    Mad,
    /// The timestamp (seconds) of the last sample holding the window's minimum.
    TsOfMin,
    /// The timestamp (seconds) of the last sample holding the window's maximum.
    TsOfMax,
    TsOfFirst,
    TsOfLast,
}

/// `samples` is never empty; `phi` is only read by `quantile_over_time`.
pub(crate) fn evaluate(kind: OverTime, samples: &[Sample], phi: f64) -> f64 {
    match kind {
        OverTime::Avg => average(samples),
        OverTime::Min => extreme(samples, |cur, best| cur < best),
        OverTime::Max => extreme(samples, |cur, best| cur > best),
        OverTime::Sum => {
            let (sum, c) = samples
                .iter()
                .fold((0.0, 0.0), |(s, c), x| kahan_sum_inc(x.value, s, c));
            if sum.is_infinite() { sum } else { sum + c }
        }
        OverTime::Count => samples.len() as f64,
        OverTime::Last => samples[samples.len() - 1].value,
        OverTime::First => samples[0].value,
        OverTime::Present => 1.0,
        OverTime::Stdvar => variance(samples),
        OverTime::Stddev => variance(samples).sqrt(),
        OverTime::Quantile => {
            let mut values: Vec<f64> = samples.iter().map(|s| s.value).collect();
            quantile(phi, &mut values)
        }
        OverTime::Mad => median_absolute_deviation(samples),
        // A sample equal to the best so far replaces it: the last one holding it wins.
        OverTime::TsOfMin => seconds(extreme_sample(samples, |cur, best| cur <= best).timestamp),
        OverTime::TsOfMax => seconds(extreme_sample(samples, |cur, best| cur >= best).timestamp),
        OverTime::TsOfFirst => seconds(samples[0].timestamp),
        OverTime::TsOfLast => seconds(samples[samples.len() - 1].timestamp),
    }
}

fn seconds(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// The median of the distances to the median; a NaN anywhere makes it NaN (the median is then
/// undefined), as in Prometheus.
fn median_absolute_deviation(samples: &[Sample]) -> f64 {
    if samples.iter().any(|s| s.value.is_nan()) {
        return f64::NAN;
    }
    let mut values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    quantile(0.5, &mut values)
}

/// The sample [`extreme`] would take its value from.
fn extreme_sample(samples: &[Sample], better: impl Fn(f64, f64) -> bool) -> Sample {
    samples.iter().fold(samples[0], |best, s| {
        if better(s.value, best.value) || best.value.is_nan() {
            *s
        } else {
            best
        }
    })
}

/// `avg`, `min`, `max`, `sum` and `count` of a window from its summary (the buckets of a
/// rollup tier combined); `None` for the others, which a summary cannot answer.
pub(crate) fn from_summary(kind: OverTime, w: &Bucket) -> Option<f64> {
    Some(match kind {
        OverTime::Avg => w.sum / w.count as f64,
        OverTime::Min => w.min,
        OverTime::Max => w.max,
        OverTime::Sum => w.sum,
        OverTime::Count => w.count as f64,
        _ => return None,
    })
}

/// The first value replaced by any value `better` than it; NaN is replaced by anything.
fn extreme(samples: &[Sample], better: impl Fn(f64, f64) -> bool) -> f64 {
    samples.iter().fold(samples[0].value, |best, s| {
        if better(s.value, best) || best.is_nan() {
            s.value
        } else {
            best
        }
    })
}

/// Kahan-summed direct mean, switching to an incremental mean only if the sum would overflow.
fn average(samples: &[Sample]) -> f64 {
    let (mut sum, mut c, mut mean) = (samples[0].value, 0.0, 0.0);
    let mut incremental = false;
    let mut count = 1.0;
    for (i, s) in samples[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_sum_inc(s.value, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_sum_inc(s.value / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

/// Welford's variance with Kahan-compensated running sums.
fn variance(samples: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in samples {
        count += 1.0;
        let delta = s.value - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (s.value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| Sample::new(i as i64, v))
            .collect()
    }

    #[test]
    fn aggregates_over_the_window() {
        let w = s(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(evaluate(OverTime::Avg, &w, 0.0), 5.0);
        assert_eq!(evaluate(OverTime::Sum, &w, 0.0), 40.0);
        assert_eq!(evaluate(OverTime::Min, &w, 0.0), 2.0);
        assert_eq!(evaluate(OverTime::Max, &w, 0.0), 9.0);
        assert_eq!(evaluate(OverTime::Count, &w, 0.0), 8.0);
        assert_eq!(evaluate(OverTime::Last, &w, 0.0), 9.0);
        assert_eq!(evaluate(OverTime::Present, &w, 0.0), 1.0);
        // The classic population-variance example: variance 4, deviation 2.
        assert_eq!(evaluate(OverTime::Stdvar, &w, 0.0), 4.0);
        assert_eq!(evaluate(OverTime::Stddev, &w, 0.0), 2.0);
        assert_eq!(evaluate(OverTime::Quantile, &w, 0.5), 4.5);
        assert_eq!(evaluate(OverTime::First, &w, 0.0), 2.0);
        // Median 4.5; distances 2.5 .5 .5 .5 .5 .5 2.5 4.5: median .5.
        assert_eq!(evaluate(OverTime::Mad, &w, 0.0), 0.5);
        // Timestamps are the indexes, in milliseconds: the last 4 (index 3) is not a maximum.
        assert_eq!(evaluate(OverTime::TsOfMax, &w, 0.0), 0.007);
        assert_eq!(evaluate(OverTime::TsOfMin, &w, 0.0), 0.0);
        assert_eq!(evaluate(OverTime::TsOfFirst, &w, 0.0), 0.0);
        assert_eq!(evaluate(OverTime::TsOfLast, &w, 0.0), 0.007);
    }

    #[test]
    fn nan_is_replaced_by_min_and_max_and_avg_survives_overflow() {
        let w = s(&[f64::NAN, 3.0, 1.0]);
        assert_eq!(evaluate(OverTime::Min, &w, 0.0), 1.0);
        assert_eq!(evaluate(OverTime::Max, &w, 0.0), 3.0);
        let big = s(&[f64::MAX, f64::MAX, f64::MAX]);
        // The sum overflows, so the mean is computed incrementally: finite, within rounding of MAX.
        let avg = evaluate(OverTime::Avg, &big, 0.0);
        assert!(avg.is_finite() && (avg / f64::MAX - 1.0).abs() < 1e-15, "{avg}");
        assert_eq!(evaluate(OverTime::Sum, &big, 0.0), f64::INFINITY);
    }
}
