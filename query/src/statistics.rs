//! Numeric building blocks of both engines' aggregations and `*_over_time` functions, written to
//! give the same floating-point results as Prometheus and Loki (Go's `math` package semantics
//! included).

use std::cmp::Ordering;

/// One step of Kahan-Babuska-Neumaier summation: returns the new sum and compensation.
/// The compensation is reset when the sum overflows, so `+Inf` stays `+Inf`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The φ-quantile of `values` (sorted in place) by linear interpolation between the closest
/// ranks: NaN for an empty input or a NaN `q`, `-Inf`/`+Inf` for `q` below 0 / above 1.
///
/// NaN values sort first, so a NaN is the smallest value and a quantile interpolated towards it
/// is NaN. One function serves PromQL's `quantile` and `quantile_over_time` and LogQL's
/// `quantile_over_time` because the upstreams agree: Prometheus's `quantile` (`promql/quantile.go`)
/// sorts a `vectorByValueHeap` whose `Less` puts NaN first, and Loki's `Quantile`
/// (`pkg/logql/range_vector.go`) is the same code over `vector.HeapByMaxValue`, with the same
/// `Less`. (Loki does not special-case a NaN `q`; its parser never produces one.)
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Ascending order with NaN before everything (Prometheus's `vectorByValueHeap` order).
pub(crate) fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// Go's `math.Max`: NaN wins over everything but `+Inf`; `+0` beats `-0`.
pub(crate) fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`: NaN wins over everything but `-Inf`; `-0` beats `+0`.
pub(crate) fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// Go's `math.Frexp`: `x = frac * 2^exp` with `|frac|` in `[0.5, 1)`.
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || x.is_nan() || x.is_infinite() {
        return (x, 0);
    }
    let (mut x, mut exp) = (x, 0);
    if x.abs() < f64::MIN_POSITIVE {
        x *= (1u64 << 52) as f64;
        exp = -52;
    }
    let bits = x.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

/// Go's `math.Log2`, which Prometheus's `log2()` uses: exact for powers of two, otherwise
/// `ln(frac) * log2(e) + exp` (which can differ from a correctly rounded log2 in the last bit).
pub(crate) fn go_log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    frac.ln() * std::f64::consts::LOG2_E + f64::from(exp)
}

/// Go's `math.Log10` (`log2(x) * log10(2)`), so results match Prometheus to the bit, e.g.
/// `log10(5)` is `0.6989700043360187` where a correctly rounded log10 gives `...189`.
pub(crate) fn go_log10(x: f64) -> f64 {
    go_log2(x) * std::f64::consts::LOG10_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_between_ranks() {
        assert_eq!(quantile(0.5, &mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(quantile(0.0, &mut [4.0, 1.0]), 1.0);
        assert_eq!(quantile(1.0, &mut [4.0, 1.0]), 4.0);
        assert_eq!(quantile(0.9, &mut [10.0]), 10.0);
        assert_eq!(quantile(-1.0, &mut [1.0]), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
        // NaN sorts first: the 0-quantile of {NaN, 1} is NaN, the 1-quantile is 1.
        assert!(quantile(0.0, &mut [1.0, f64::NAN]).is_nan());
        assert_eq!(quantile(1.0, &mut [1.0, f64::NAN]), 1.0);
        assert!(quantile(f64::NAN, &mut [1.0, 2.0]).is_nan());
    }

    /// Prometheus's `promql/promqltest/testdata/aggregators.test` ("Tests for quantile"): the
    /// `NaN sample` group {0, 1, NaN} treats NaN as the smallest value.
    #[test]
    fn quantile_matches_prometheus_with_a_nan_among_the_values() {
        let nan_sample = || [0.0, 1.0, f64::NAN];
        assert!((quantile(0.8, &mut nan_sample()) - 0.6).abs() < 1e-12);
        // "A quantile between NaN and 0 is interpolated as NaN."
        assert!(quantile(0.2, &mut nan_sample()).is_nan());
        assert!(quantile(0.0, &mut nan_sample()).is_nan());
        assert_eq!(quantile(1.0, &mut nan_sample()), 1.0);
        // Wherever the NaN starts, it sorts first.
        assert_eq!(quantile(0.5, &mut [f64::NAN, 1.0, 0.0]), 0.0);
        assert_eq!(quantile(0.5, &mut [1.0, f64::NAN, 0.0]), 0.0);
        // The other groups of the same test.
        assert!((quantile(0.8, &mut [0.0, 1.0]) - 0.8).abs() < 1e-12);
        assert!((quantile(0.8, &mut [0.0, 1.0, 2.0]) - 1.6).abs() < 1e-12);
        assert!((quantile(0.8, &mut [0.0, 1.0, 4.0]) - 2.8).abs() < 1e-12);
    }

    /// Prometheus's `functions.test` ("Tests for quantile_over_time"): q = -1 and q = 2 answer
    /// -Inf and +Inf whatever the values; a single value is every quantile.
    #[test]
    fn quantile_outside_zero_one_and_of_a_single_value() {
        for values in [vec![0.0, 1.0], vec![0.0, 1.0, 2.0], vec![0.0, 1.0, 4.0]] {
            assert_eq!(quantile(-1.0, &mut values.clone()), f64::NEG_INFINITY);
            assert_eq!(quantile(2.0, &mut values.clone()), f64::INFINITY);
        }
        assert_eq!(quantile(0.75, &mut [0.0, 1.0, 4.0]), 2.5);
        for q in [0.0, 0.3, 0.5, 1.0] {
            assert_eq!(quantile(q, &mut [7.0]), 7.0);
        }
        assert!(quantile(0.5, &mut [f64::NAN]).is_nan());
    }

    #[test]
    fn kahan_sum_recovers_lost_low_bits() {
        let (mut s, mut c) = (0.0, 0.0);
        for v in [1e100, 1.0, -1e100] {
            (s, c) = kahan_sum_inc(v, s, c);
        }
        assert_eq!(s + c, 1.0);
        let (s, c) = kahan_sum_inc(f64::INFINITY, 1.0, 0.5);
        assert_eq!((s, c), (f64::INFINITY, 0.0));
    }

    #[test]
    fn go_min_max_semantics() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
        assert_eq!(go_max(2.0, 3.0), 3.0);
        assert_eq!(go_min(2.0, 3.0), 2.0);
    }

    #[test]
    fn go_logs_match_go_bit_for_bit_on_known_cases() {
        assert_eq!(go_log2(8.0), 3.0);
        assert_eq!(go_log2(0.25), -2.0);
        assert_eq!(go_log10(1000.0), 3.0);
        assert_eq!(go_log10(100.0), 2.0);
        assert_eq!(go_log10(5.0), 0.6989700043360187);
        assert_eq!(go_log2(0.0), f64::NEG_INFINITY);
        assert!(go_log2(-1.0).is_nan());
        assert_eq!(go_log2(f64::INFINITY), f64::INFINITY);
        let tiny = f64::from_bits(1); // smallest subnormal: 2^-1074
        assert_eq!(go_log2(tiny), -1074.0);
    }
}
