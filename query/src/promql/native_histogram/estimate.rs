//! What the `histogram_*` functions estimate from one native histogram, following
//! Prometheus's `HistogramQuantile`, `HistogramFraction` and `histogramVariance`:
//! exponential buckets interpolate on a log scale, custom buckets and the zero bucket linearly.

use super::{Bucket, NativeHistogram};

/// Why an estimate is NaN or skewed: NaN observations (Prometheus's info texts).
pub(crate) const QUANTILE_NAN: &str = "input to histogram_quantile has NaN observations, result is NaN";
pub(crate) const QUANTILE_SKEWED: &str = "input to histogram_quantile has NaN observations, result is skewed higher";
pub(crate) const FRACTION_NAN: &str =
    "input to histogram_fraction has NaN observations, which are excluded from all fractions";

/// The φ-quantile, and the info to give about it, if any.
pub(crate) fn quantile(q: f64, h: &NativeHistogram) -> (f64, Option<&'static str>) {
    let mut info = None;
    let v = quantile_value(q, h, &mut info);
    (v, info)
}

fn quantile_value(q: f64, h: &NativeHistogram, info: &mut Option<&'static str>) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let mut all = h.buckets();
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward { q * h.count } else { (1.0 - q) * h.count };
    if !forward {
        all.reverse();
    }
    let mut count = 0.0;
    let mut seen = 0;
    let mut bucket = Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
    };
    for b in &all {
        seen += 1;
        if b.count == 0.0 {
            continue;
        }
        bucket = *b;
        count += b.count;
        if count >= rank {
            break;
        }
    }
    let custom = h.uses_custom_buckets();
    if !custom && bucket.lower < 0.0 && bucket.upper > 0.0 {
        if h.negative.is_empty() && !h.positive.is_empty() {
            bucket.lower = 0.0;
        } else if h.positive.is_empty() && !h.negative.is_empty() {
            bucket.upper = 0.0;
        }
    } else if custom {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return bucket.upper;
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return bucket.lower;
        }
    }
    count = count.min(h.count);
    if count < rank {
        if h.sum.is_nan() {
            *info = Some(QUANTILE_NAN);
            return f64::NAN;
        }
        return bucket.upper;
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() && count + all[seen.min(all.len())..].iter().map(|b| b.count).sum::<f64>() < h.count {
        *info = Some(QUANTILE_SKEWED);
    }
    let fraction = rank / bucket.count;
    if custom || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return bucket.lower + (bucket.upper - bucket.lower) * fraction;
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        return (log_lower + (log_upper - log_lower) * fraction).exp2();
    }
    -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
}

/// The fraction of `b`'s width at or below `v` (strictly inside its finite bounds).
fn fraction_below(b: &Bucket, v: f64, linear: bool) -> f64 {
    if linear {
        return (v - b.lower) / (b.upper - b.lower);
    }
    let (log_lower, log_upper, log_v) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
    if v > 0.0 {
        (log_v - log_lower) / (log_upper - log_lower)
    } else {
        1.0 - (log_v - log_upper) / (log_lower - log_upper)
    }
}

/// The estimated fraction of observations between `lower` and `upper`, and the info to give
/// about it, if any.
pub(crate) fn fraction(lower: f64, upper: f64, h: &NativeHistogram) -> (f64, Option<&'static str>) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, None);
    }
    if lower >= upper {
        return (0.0, None);
    }
    let mut info = None;
    let custom = h.uses_custom_buckets();
    let all = h.buckets();
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut count = 0.0;
    let mut seen = 0;
    for b in &all {
        seen += 1;
        let mut b = *b;
        count += b.count;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative.is_empty() && !h.positive.is_empty() {
                b.lower = 0.0;
            } else if h.positive.is_empty() && !h.negative.is_empty() {
                b.upper = 0.0;
            }
        }
        let linear = custom || zero_bucket;
        let interpolate = |v: f64| {
            if linear && b.lower == f64::NEG_INFINITY {
                b.count
            } else {
                rank + b.count * fraction_below(&b, v, linear)
            }
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        count += all[seen.min(all.len())..].iter().map(|b| b.count).sum::<f64>();
        if count < h.count {
            info = Some(FRACTION_NAN);
        }
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, info)
}

/// The estimated variance of the observations: each bucket's observations sit at its geometric
/// mean (arithmetic for custom buckets, zero in the zero bucket).
pub(crate) fn variance(h: &NativeHistogram) -> f64 {
    let mean = h.sum / h.count;
    let mut variance = 0.0;
    for b in h.buckets().iter().filter(|b| b.count != 0.0) {
        let value = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -v } else { v }
        };
        let delta = value - mean;
        variance += b.count * delta * delta;
    }
    variance / h.count
}
