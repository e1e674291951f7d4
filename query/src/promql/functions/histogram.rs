//! `histogram_quantile(φ, buckets)` over classic histograms (`le`-labelled cumulative buckets).
//! Native histograms beside them take `native_histogram`'s path (see `functions::native_histogram`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use tributary_storage::types::{Labels, METRIC_NAME};

use crate::error::Result;
use crate::promql::annotations::Annotations;
use crate::promql::eval::Guard;
use crate::promql::value::{SeriesBuilder, StepCursor, StepSeries, Steps, drop_name};

const BUCKET_LABEL: &str = "le";
/// Relative difference below which neighbouring bucket counts are treated as equal
/// (floating-point noise from e.g. `rate()` over the buckets).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Where `histogram_quantile`'s two arguments start in the query text, for its annotations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Positions<'a> {
    pub(crate) phi: &'a str,
    pub(crate) buckets: &'a str,
}

/// Groups bucket series by their labels without `le`; each group present at a step yields one
/// value, labelled without `le` and `__name__`. Series whose `le` is missing or does not parse
/// are left out with a warning.
pub(crate) fn quantile(
    phi: &[f64],
    input: Vec<StepSeries>,
    steps: &Steps,
    guard: &Guard,
    annotations: &mut Annotations,
    positions: Positions<'_>,
) -> Result<Vec<StepSeries>> {
    let mut ids: HashMap<Labels, usize> = HashMap::new();
    let mut outputs: Vec<Labels> = Vec::new();
    let membership: Vec<Option<(usize, f64)>> = input
        .iter()
        .map(|s| {
            let le = s.labels.get(BUCKET_LABEL).unwrap_or("");
            let Some(upper) = parse_bound(le) else {
                if !s.points.is_empty() {
                    let name = s.labels.get(METRIC_NAME).unwrap_or("");
                    annotations.bad_bucket_label(name, le, positions.buckets);
                }
                return None;
            };
            let mut key = s.labels.clone();
            key.remove(BUCKET_LABEL);
            let group = match ids.entry(key) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    outputs.push(drop_name(e.key()));
                    *e.insert(outputs.len() - 1)
                }
            };
            Some((group, upper))
        })
        .collect();
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); outputs.len()];
    let mut slots: Vec<Option<usize>> = vec![None; outputs.len()];
    let mut builder = SeriesBuilder::default();
    let mut touched = Vec::new();
    let mut cursor = StepCursor::new(&input);
    let mut now = Vec::new();
    for step in 0..steps.count as u32 {
        guard.check()?;
        annotations.quantile_out_of_range(phi[step as usize], positions.phi);
        cursor.at(step, &mut now);
        touched.clear();
        for &(i, count) in &now {
            if let Some((g, upper)) = membership[i] {
                if buckets[g].is_empty() {
                    touched.push(g);
                }
                buckets[g].push(Bucket { upper, count });
            }
        }
        touched.sort_unstable();
        for &g in &touched {
            let (value, forced) = bucket_quantile(phi[step as usize], &mut buckets[g]);
            if forced {
                annotations.forced_monotonicity(positions.buckets);
            }
            buckets[g].clear();
            let slot = *slots[g].get_or_insert_with(|| builder.slot(outputs[g].clone()));
            builder.push(slot, step, value)?;
        }
    }
    Ok(builder.finish())
}

/// Go's `strconv.ParseFloat` accepts `+Inf`, `inf`, `NaN` in any case, as Rust's parser does;
/// neither accepts surrounding spaces.
fn parse_bound(text: &str) -> Option<f64> {
    text.parse::<f64>().ok()
}

/// Prometheus's `BucketQuantile`: linear interpolation inside the bucket holding rank `q * total`,
/// after merging equal bounds and forcing the counts to be non-decreasing (reported as the
/// second value, for the info annotation). Needs a `+Inf` bucket.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, false);
    }
    coalesce(buckets);
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let n = buckets.len();
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].partition_point(|bucket| bucket.count < rank);
    if b == n - 1 {
        return (buckets[n - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let end = buckets[b].upper;
    let mut start = 0.0;
    let mut count = buckets[b].count;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Merges buckets with the same upper bound (e.g. `le="1"` and `le="1.0"`), adding their counts.
fn coalesce(buckets: &mut Vec<Bucket>) {
    buckets.dedup_by(|next, kept| {
        if next.upper == kept.upper {
            kept.count += next.count;
            true
        } else {
            false
        }
    });
}

/// Ignores insignificant differences between neighbours and removes any decrease, keeping the
/// last accepted count as the reference. True when a real decrease had to be removed.
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let mut previous = buckets[0].count;
    let mut forced = false;
    for bucket in buckets.iter_mut().skip(1) {
        let current = bucket.count;
        if current == previous {
            continue;
        }
        if almost_equal(previous, current, SMALL_DELTA_TOLERANCE) {
            bucket.count = previous;
            continue;
        }
        if current < previous {
            bucket.count = previous;
            forced = true;
            continue;
        }
        previous = current;
    }
    forced
}

/// Prometheus's `almost.Equal`: relative comparison, absolute near zero.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bq(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
        bucket_quantile(q, buckets).0
    }

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    #[test]
    fn interpolates_within_the_bucket_holding_the_rank() {
        // 100 observations: 50 <= 0.1, 80 <= 0.5, 100 <= 1.
        let buckets = b(&[(0.1, 50.0), (0.5, 80.0), (1.0, 100.0), (f64::INFINITY, 100.0)]);
        // Rank 50 lands exactly at the top of the first bucket: 0 + 0.1 * 50/50.
        assert_eq!(bq(0.5, &mut buckets.clone()), 0.1);
        // Rank 90 in (0.5, 1]: 0.5 + 0.5 * (90 - 80) / (100 - 80) = 0.75.
        assert_eq!(bq(0.9, &mut buckets.clone()), 0.75);
        // Rank 65 in (0.1, 0.5]: 0.1 + 0.4 * 15/30 = 0.3.
        assert!((bq(0.65, &mut buckets.clone()) - 0.3).abs() < 1e-15);
    }

    #[test]
    fn edge_cases_follow_prometheus() {
        let buckets = b(&[(1.0, 10.0), (f64::INFINITY, 20.0)]);
        // Rank in the +Inf bucket: the highest finite bound.
        assert_eq!(bq(0.99, &mut buckets.clone()), 1.0);
        assert!(bq(0.5, &mut b(&[(1.0, 10.0), (2.0, 20.0)])).is_nan());
        assert!(bq(0.5, &mut b(&[(1.0, 0.0), (f64::INFINITY, 0.0)])).is_nan());
        assert!(bq(0.5, &mut b(&[(f64::INFINITY, 5.0)])).is_nan());
        assert_eq!(bq(-0.1, &mut buckets.clone()), f64::NEG_INFINITY);
        assert_eq!(bq(1.1, &mut buckets.clone()), f64::INFINITY);
        // A non-positive first bucket returns its bound instead of interpolating from zero.
        assert_eq!(bq(0.1, &mut b(&[(-1.0, 5.0), (f64::INFINITY, 10.0)])), -1.0);
    }

    #[test]
    fn non_monotonic_counts_are_flattened() {
        // The dip at le=0.5 (70 < 80) is raised to 80; without the fix the search would misfire.
        let buckets = b(&[(0.1, 80.0), (0.5, 70.0), (1.0, 100.0), (f64::INFINITY, 100.0)]);
        // Rank 90: (0.1, 0.5] now holds 0, so the quantile is in (0.5, 1]: 0.5 + 0.5 * 10/20.
        assert_eq!(bucket_quantile(0.9, &mut buckets.clone()), (0.75, true));
        // Rounding noise is smoothed silently.
        let noisy = b(&[(0.1, 80.0), (0.5, 80.0 * (1.0 - 1e-14)), (f64::INFINITY, 100.0)]);
        assert!(!bucket_quantile(0.5, &mut noisy.clone()).1);
        // Unsorted input and duplicate bounds are handled too.
        let messy = b(&[(f64::INFINITY, 100.0), (1.0, 50.0), (1.0, 50.0), (0.5, 80.0)]);
        assert_eq!(bq(0.9, &mut messy.clone()), 0.75);
    }

    #[test]
    fn almost_equal_is_relative() {
        assert!(almost_equal(1e6, 1e6 * (1.0 + 1e-14), 1e-12));
        assert!(!almost_equal(1.0, 1.001, 1e-12));
        assert!(almost_equal(0.0, 0.0, 1e-12));
    }
}
