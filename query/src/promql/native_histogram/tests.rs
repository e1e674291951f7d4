//! Bucket maths against values worked out by hand from Prometheus's definitions.

use tributary_storage::signals::{BucketSpan, HistogramSample, ResetHint};

use super::*;

fn exp(schema: i32, positive: &[(i32, f64)], zero: (f64, f64)) -> NativeHistogram {
    let count = positive.iter().map(|b| b.1).sum::<f64>() + zero.1;
    NativeHistogram {
        schema,
        zero_threshold: zero.0,
        zero_count: zero.1,
        count,
        sum: 0.0,
        positive: positive.to_vec(),
        ..NativeHistogram::default()
    }
}

#[test]
fn spans_expand_to_absolute_indexes() {
    let h = NativeHistogram::from_sample(&HistogramSample {
        positive_spans: vec![
            BucketSpan { offset: -1, length: 2 },
            BucketSpan { offset: 3, length: 1 },
        ],
        positive_buckets: vec![1.0, 2.0, 3.0],
        ..HistogramSample::default()
    });
    assert_eq!(h.positive, vec![(-1, 1.0), (0, 2.0), (4, 3.0)]);
}

#[test]
fn bucket_bounds_follow_the_schema() {
    // Schema 0: bucket i covers (2^(i-1), 2^i]; schema 1 halves each in log space; schema -1
    // doubles it.
    assert_eq!(exponential_bound(0, 0), 1.0);
    assert_eq!(exponential_bound(3, 0), 8.0);
    assert_eq!(exponential_bound(-2, 0), 0.25);
    assert!((exponential_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
    assert_eq!(exponential_bound(2, -1), 16.0);
    // NHCB: custom bounds, -Inf below the first, +Inf above the last.
    let h = NativeHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: vec![1.0, 5.0].into(),
        positive: vec![(0, 1.0), (2, 2.0)],
        count: 3.0,
        ..NativeHistogram::default()
    };
    let b = h.buckets();
    assert_eq!((b[0].lower, b[0].upper), (f64::NEG_INFINITY, 1.0));
    assert_eq!((b[1].lower, b[1].upper), (5.0, f64::INFINITY));
    assert_eq!(b[0].boundary_rule(), 0);
}

#[test]
fn zero_bucket_comes_between_negative_and_positive_buckets_clipped_at_the_threshold() {
    let mut h = exp(0, &[(0, 2.0)], (0.75, 1.0));
    h.negative = vec![(1, 4.0)];
    h.count += 4.0;
    let b = h.buckets();
    assert_eq!((b[0].lower, b[0].upper, b[0].boundary_rule()), (-2.0, -1.0, 1));
    assert_eq!((b[1].lower, b[1].upper, b[1].boundary_rule()), (-0.75, 0.75, 3));
    // (0.5, 1] starts inside the zero bucket: its lower bound is the threshold.
    assert_eq!((b[2].lower, b[2].upper), (0.75, 1.0));
}

#[test]
fn adding_reduces_to_the_coarser_schema_and_the_wider_zero_bucket() {
    // Schema 1 buckets 1 and 2 ((1, √2] and (√2, 2]) merge into schema 0 bucket 1 ((1, 2]).
    let mut a = exp(1, &[(1, 1.0), (2, 2.0)], (0.0, 0.0));
    let b = exp(0, &[(-1, 0.0), (1, 4.0)], (0.0, 0.0));
    assert_eq!(a.add(&b, false), Ok(false));
    assert_eq!(a.schema, 0);
    assert_eq!(a.positive, vec![(-1, 0.0), (1, 7.0)]);
    // A zero bucket of 0.5 swallows bucket 0 at schema 0 ((0.5, 1]) only partly: the threshold
    // widens to 1 and the bucket moves in whole.
    let mut c = exp(0, &[(0, 3.0), (2, 1.0)], (0.0, 0.0));
    let d = exp(0, &[], (0.7, 2.0));
    c.add(&d, false).unwrap();
    assert_eq!((c.zero_threshold, c.zero_count), (1.0, 5.0));
    assert_eq!(c.positive, vec![(2, 1.0)]);
    // Exponential and custom buckets do not add.
    let nhcb = NativeHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        ..NativeHistogram::default()
    };
    assert_eq!(c.add(&nhcb, false), Err(MixedSchemas));
}

#[test]
fn mismatched_custom_bounds_reconcile_to_the_shared_ones() {
    let mut a = NativeHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: vec![1.0, 2.0, 5.0].into(),
        positive: vec![(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)],
        count: 4.0,
        ..NativeHistogram::default()
    };
    let b = NativeHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: vec![2.0, 5.0].into(),
        positive: vec![(0, 2.0)],
        count: 2.0,
        ..NativeHistogram::default()
    };
    assert_eq!(a.add(&b, false), Ok(true));
    assert_eq!(&*a.custom_values, &[2.0, 5.0]);
    assert_eq!(a.positive, vec![(0, 4.0), (1, 1.0), (2, 1.0)]);
}

#[test]
fn resets_are_detected_by_counts_buckets_and_hints() {
    let prev = exp(0, &[(0, 2.0), (1, 3.0)], (0.0, 0.0));
    assert!(!exp(0, &[(0, 2.0), (1, 4.0)], (0.0, 0.0)).detect_reset(&prev));
    // Same count, but one bucket went down.
    assert!(exp(0, &[(0, 1.0), (1, 4.0)], (0.0, 0.0)).detect_reset(&prev));
    // A finer schema is a reset; a coarser one compares merged buckets.
    assert!(exp(1, &[(0, 9.0)], (0.0, 0.0)).detect_reset(&prev));
    assert!(!exp(-1, &[(0, 2.0), (1, 6.0)], (0.0, 0.0)).detect_reset(&prev));
    assert!(exp(-1, &[(1, 6.0)], (0.0, 0.0)).detect_reset(&prev));
    let mut hinted = exp(0, &[(0, 1.0)], (0.0, 0.0));
    hinted.reset_hint = ResetHint::No;
    assert!(!hinted.detect_reset(&prev));
}

#[test]
fn estimates_interpolate_like_prometheus() {
    // 1 in (0.5, 1], 2 in (1, 2], 1 in (2, 4]: the median sits halfway through (1, 2] in log
    // space, √2; a fraction of (1, 2] is exactly the observations in that bucket.
    let h = NativeHistogram {
        sum: 5.0,
        ..exp(0, &[(0, 1.0), (1, 2.0), (2, 1.0)], (0.0, 0.0))
    };
    assert!((quantile(0.5, &h).0 - 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(quantile(1.5, &h).0, f64::INFINITY);
    assert_eq!(fraction(1.0, 2.0, &h).0, 0.5);
    assert_eq!(fraction(0.0, 8.0, &h).0, 1.0);
    // Geometric bucket means: sqrt(0.5), sqrt(2), sqrt(8) around the mean 1.25.
    let means = [0.5f64.sqrt(), 2f64.sqrt(), 8f64.sqrt()];
    let want = [(means[0], 1.0), (means[1], 2.0), (means[2], 1.0)]
        .iter()
        .map(|(v, n)| n * (v - 1.25) * (v - 1.25))
        .sum::<f64>()
        / 4.0;
    assert!((variance(&h) - want).abs() < 1e-12);
    // NaN observations: counted in `count` but no bucket, so the top quantile is NaN with an info.
    let nan = NativeHistogram {
        sum: f64::NAN,
        count: 5.0,
        ..h
    };
    assert_eq!(quantile(0.99, &nan).1, Some(estimate::QUANTILE_NAN));
}

#[test]
fn adding_fewer_or_other_buckets_adds_by_index() {
    let mut a = exp(0, &[(-1, 1.0), (0, 2.0), (2, 3.0), (5, 4.0)], (0.0, 0.0));
    // Every index of the other already here: added in place.
    a.add(&exp(0, &[(0, 10.0), (5, 20.0)], (0.0, 0.0)), false).unwrap();
    assert_eq!(a.positive, vec![(-1, 1.0), (0, 12.0), (2, 3.0), (5, 24.0)]);
    // A new index: merged in.
    a.add(&exp(0, &[(1, 7.0), (5, 4.0)], (0.0, 0.0)), true).unwrap();
    assert_eq!(a.positive, vec![(-1, 1.0), (0, 12.0), (1, -7.0), (2, 3.0), (5, 20.0)]);
    assert_eq!(a.count, 40.0 - 11.0);
}
