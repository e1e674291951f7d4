//! `rate`, `increase`, `delta` (extrapolated) and `irate`, `idelta` (last two samples).

use tributary_storage::rollup::Bucket;
use tributary_storage::types::Sample;

use crate::promql::eval::Window;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RateKind {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
}

/// `samples` are the non-stale samples of one window, oldest first, never empty.
pub(crate) fn evaluate(kind: RateKind, samples: &[Sample], window: Window) -> Option<f64> {
    match kind {
        RateKind::Rate => extrapolated_rate(samples, window, true, true),
        RateKind::Increase => extrapolated_rate(samples, window, true, false),
        RateKind::Delta => extrapolated_rate(samples, window, false, false),
        RateKind::Irate => instant_value(samples, true),
        RateKind::Idelta => instant_value(samples, false),
    }
}

/// Prometheus's `extrapolatedRate`: the change between the first and last sample (counter resets
/// added back for counters), extrapolated towards the window's edges. An edge is reached only if
/// the gap to it is under 1.1x the average sample interval; otherwise the extrapolation stops half
/// an interval out. Counters are never extrapolated below zero.
fn extrapolated_rate(samples: &[Sample], window: Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let mut result = last.value - first.value;
    // Counters seldom reset: a branch-free scan for any decrease (which the compiler vectorises)
    // decides whether the in-order sum of the values before resets, as Prometheus adds them, is
    // needed at all. The result is the same to the bit either way.
    if is_counter && any_decrease(samples) {
        for pair in samples.windows(2) {
            if pair[1].value < pair[0].value {
                result += pair[0].value;
            }
        }
    }
    Some(extrapolate(
        first,
        last,
        samples.len(),
        result,
        window,
        is_counter,
        is_rate,
    ))
}

/// Whether any sample's value is below its predecessor's (NaNs compare false, as in the sum).
fn any_decrease(samples: &[Sample]) -> bool {
    samples
        .windows(2)
        .fold(false, |any, pair| any | (pair[1].value < pair[0].value))
}

/// `rate`/`increase` of a window from its summary (the buckets of a rollup tier combined):
/// everything Prometheus's extrapolation reads is in it, the first and last samples, their
/// count and the reset-adjusted increase.
pub(crate) fn from_summary(kind: RateKind, w: &Bucket, window: Window) -> Option<f64> {
    let is_rate = match kind {
        RateKind::Rate => true,
        RateKind::Increase => false,
        RateKind::Delta | RateKind::Irate | RateKind::Idelta => return None,
    };
    if w.count < 2 {
        return None;
    }
    let first = Sample::new(w.first_ts, w.first);
    let last = Sample::new(w.last_ts, w.last);
    Some(extrapolate(
        first,
        last,
        w.count as usize,
        w.increase,
        window,
        true,
        is_rate,
    ))
}

/// The extrapolation of `extrapolatedRate`, given the window's first and last samples, how many
/// samples it holds (at least two) and their change `result`.
fn extrapolate(
    first: Sample,
    last: Sample,
    count: usize,
    result: f64,
    window: Window,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    result * extrapolation_factor(first, last, count, result, window, is_counter, is_rate)
}

/// What [`extrapolate`] multiplies the change by (native histograms scale by it, with the
/// samples' and the change's observation counts as values).
pub(crate) fn extrapolation_factor(
    first: Sample,
    last: Sample,
    count: usize,
    result: f64,
    window: Window,
    is_counter: bool,
    is_rate: bool,
) -> f64 {
    let mut to_start = (first.timestamp - window.start()) as f64 / 1000.0;
    let mut to_end = (window.end - last.timestamp) as f64 / 1000.0;
    let sampled_interval = (last.timestamp - first.timestamp) as f64 / 1000.0;
    let average_interval = sampled_interval / (count - 1) as f64;
    let threshold = average_interval * 1.1;
    if to_start >= threshold {
        to_start = average_interval / 2.0;
    }
    if is_counter {
        let to_zero = if result > 0.0 && first.value >= 0.0 {
            sampled_interval * (first.value / result)
        } else {
            to_start
        };
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_interval / 2.0;
    }
    let mut factor = (sampled_interval + to_start + to_end) / sampled_interval;
    if is_rate {
        factor /= window.range_ms as f64 / 1000.0;
    }
    factor
}

/// `irate`/`idelta`: from the last two samples only; for `irate` a decrease is a counter reset, so
/// the increase is the last value itself.
fn instant_value(samples: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., previous, last] = samples else { return None };
    let mut result = last.value - previous.value;
    if is_rate && last.value < previous.value {
        result = last.value;
    }
    let interval = last.timestamp - previous.timestamp;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
        points.iter().map(|&(t, v)| Sample::new(t * 1000, v)).collect()
    }

    fn window(end_s: i64, range_s: i64) -> Window {
        Window {
            end: end_s * 1000,
            range_ms: range_s * 1000,
        }
    }

    #[test]
    fn samples_spanning_the_window_extrapolate_to_both_edges() {
        // Window (0, 60], samples at 5..55 every 10s rising 10 per sample from 100.
        let s = samples(&[
            (5, 100.0),
            (15, 110.0),
            (25, 120.0),
            (35, 130.0),
            (45, 140.0),
            (55, 150.0),
        ]);
        // Increase 50 over 50s; 5s to each edge (< 1.1 * 10s) so extrapolate over the full 60s:
        // 50 * 60/50 = 60; rate = 60 / 60 = 1/s. Zero point is 500s back, so no clamp.
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-12);
        assert!(close(evaluate(RateKind::Increase, &s, window(60, 60)), 60.0));
        assert!(close(evaluate(RateKind::Rate, &s, window(60, 60)), 1.0));
        assert!(close(evaluate(RateKind::Delta, &s, window(60, 60)), 60.0));
    }

    #[test]
    fn gaps_larger_than_the_threshold_extrapolate_half_an_interval() {
        // Samples at 30, 40, 50 within (0, 60]: average interval 10s, threshold 11s.
        // Start gap 30s >= 11 -> 5s; end gap 10s < 11 -> 10s. Interval 20s + 5 + 10 = 35s.
        let s = samples(&[(30, 200.0), (40, 210.0), (50, 220.0)]);
        let increase = evaluate(RateKind::Increase, &s, window(60, 60)).unwrap();
        assert!((increase - 20.0 * 35.0 / 20.0).abs() < 1e-12, "{increase}");
        let rate = evaluate(RateKind::Rate, &s, window(60, 60)).unwrap();
        assert!((rate - 35.0 / 60.0).abs() < 1e-12, "{rate}");
    }

    #[test]
    fn counters_do_not_extrapolate_below_zero() {
        // First value 2 with slope 10 per 10s: the zero point is 2s before the first sample,
        // closer than the 10s gap to the window start, so extrapolation stops there.
        let s = samples(&[(10, 2.0), (20, 12.0), (30, 22.0)]);
        // to_start = min(10, 20 * 2/20 = 2) = 2; to_end = 0 (sample at the edge).
        let increase = evaluate(RateKind::Increase, &s, window(30, 30)).unwrap();
        assert!((increase - 20.0 * 22.0 / 20.0).abs() < 1e-12, "{increase}");
        // delta is not a counter: it extrapolates the full 10s.
        let delta = evaluate(RateKind::Delta, &s, window(30, 30)).unwrap();
        assert!((delta - 20.0 * 30.0 / 20.0).abs() < 1e-12, "{delta}");
    }

    #[test]
    fn counter_resets_add_the_value_before_the_reset() {
        // 10 -> 20 -> 5 -> 15: increases 10 + 5 (after reset, from 0) + 10 = 25.
        let s = samples(&[(0, 10.0), (10, 20.0), (20, 5.0), (30, 15.0)]);
        // Window (0, 30]: the sample at 0 is outside, so use the window (-1, 30] instead.
        let w = Window {
            end: 30_000,
            range_ms: 31_000,
        };
        // Gaps: start 1s, end 0s; extrapolated over 31s of a 30s interval; zero point:
        // 30 * 10/25 = 12s > 1s, no clamp.
        let increase = evaluate(RateKind::Increase, &s, w).unwrap();
        assert!((increase - 25.0 * 31.0 / 30.0).abs() < 1e-12, "{increase}");
        // delta ignores resets: 15 - 10 = 5 over the same extrapolation.
        let delta = evaluate(RateKind::Delta, &s, w).unwrap();
        assert!((delta - 5.0 * 31.0 / 30.0).abs() < 1e-12, "{delta}");
    }

    /// The scan that skips the reset sum answers what the plain in-order sum answers, to the
    /// bit: windows with and without resets, NaNs and infinities among the values.
    #[test]
    fn the_reset_scan_changes_no_bit() {
        let mut next = tributary_storage::test_util::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for round in 0..2000 {
            let n = 2 + (next() % 30) as usize;
            let mut v = (next() % 1000) as f64 / 3.0;
            let s: Vec<Sample> = (0..n)
                .map(|i| {
                    v = match next() % 23 {
                        0 => v / 7.0,
                        1 if round % 3 == 0 => f64::NAN,
                        2 if round % 5 == 0 => f64::INFINITY,
                        _ => v + (next() % 50) as f64 / 9.0,
                    };
                    Sample::new(i as i64 * 15_000, v)
                })
                .collect();
            let mut want = s[n - 1].value - s[0].value;
            for pair in s.windows(2) {
                if pair[1].value < pair[0].value {
                    want += pair[0].value;
                }
            }
            let w = window(n as i64 * 15, n as i64 * 15 + 1);
            let want = extrapolate(s[0], s[n - 1], n, want, w, true, false);
            let got = evaluate(RateKind::Increase, &s, w).expect("two samples or more");
            assert_eq!(got.to_bits(), want.to_bits(), "round {round}: {got} against {want}");
        }
    }

    #[test]
    fn fewer_than_two_samples_give_nothing() {
        assert_eq!(evaluate(RateKind::Rate, &samples(&[(10, 1.0)]), window(60, 60)), None);
        assert_eq!(evaluate(RateKind::Irate, &samples(&[(10, 1.0)]), window(60, 60)), None);
    }

    #[test]
    fn irate_uses_the_last_two_samples() {
        let s = samples(&[(0, 1.0), (10, 5.0), (15, 15.0)]);
        assert_eq!(evaluate(RateKind::Irate, &s, window(20, 60)), Some(2.0));
        assert_eq!(evaluate(RateKind::Idelta, &s, window(20, 60)), Some(10.0));
        let reset = samples(&[(0, 10.0), (5, 3.0)]);
        assert_eq!(evaluate(RateKind::Irate, &reset, window(20, 60)), Some(0.6));
        assert_eq!(evaluate(RateKind::Idelta, &reset, window(20, 60)), Some(-7.0));
    }
}
