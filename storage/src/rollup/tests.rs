use proptest::prelude::*;

use super::*;
use crate::types::STALE_NAN_BITS;

const FIVE: i64 = 300_000;

fn samples(points: &[(i64, f64)]) -> Vec<Sample> {
    points.iter().map(|&(t, v)| Sample::new(t, v)).collect()
}

#[test]
fn buckets_are_labelled_by_their_end_and_left_open() {
    let r = Resolution::FiveMinutes;
    assert_eq!(
        r.bucket_of(0),
        0,
        "a sample on a boundary closes the bucket ending there"
    );
    assert_eq!(r.bucket_of(1), FIVE);
    assert_eq!(r.bucket_of(FIVE), FIVE);
    assert_eq!(r.bucket_of(FIVE + 1), 2 * FIVE);
    assert_eq!(r.bucket_of(-1), 0);
    assert_eq!(r.bucket_of(-FIVE), -FIVE);
    assert_eq!(Resolution::OneHour.bucket_of(1), HOUR_MS);
    assert!(r.aligned(-FIVE) && !r.aligned(1));
    // A PromQL window (t - range, t] read as a closed range is [t - range + 1, t].
    assert_eq!(r.widen(TimeRange::new(1, 2 * FIVE)), TimeRange::new(1, 2 * FIVE));
    assert_eq!(r.widen(TimeRange::new(7, FIVE + 3)), TimeRange::new(1, 2 * FIVE));
    assert_eq!(r.widen(TimeRange::new(0, 0)), TimeRange::new(-FIVE + 1, 0));
    assert_eq!(r.widen(TimeRange::new(9, 3)), TimeRange::new(9, 3), "empty stays empty");
    let all = r.widen(TimeRange::ALL);
    assert!(all.start <= i64::MIN + 1 && all.end == i64::MAX);
}

#[test]
fn a_bucket_summarises_non_stale_samples_with_counter_resets() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let s = samples(&[
        (FIVE, 1.0),
        (FIVE + 10, 10.0),
        (FIVE + 20, stale),
        (FIVE + 30, 20.0),
        (FIVE + 40, 5.0),
        (FIVE + 50, 15.0),
        (2 * FIVE + 1, f64::NAN),
    ]);
    let b = buckets_of(&s, Resolution::FiveMinutes);
    assert_eq!(b.len(), 3);
    assert_eq!((b[0].timestamp, b[0].count, b[0].increase), (FIVE, 1, 0.0));
    let mid = b[1];
    assert_eq!(mid.timestamp, 2 * FIVE);
    assert_eq!(mid.count, 4, "the staleness marker is not a sample");
    assert_eq!((mid.sum, mid.min, mid.max), (50.0, 5.0, 20.0));
    assert_eq!(
        (mid.first, mid.last, mid.first_ts, mid.last_ts),
        (10.0, 15.0, FIVE + 10, FIVE + 50)
    );
    // 10 -> 20 (+10), 20 -> 5 (a reset: +5), 5 -> 15 (+10).
    assert_eq!(mid.increase, 25.0);
    assert!(
        b[2].sum.is_nan() && b[2].min.is_nan(),
        "a NaN that is not a marker is a sample"
    );
    assert_eq!(b[2].timestamp, 3 * FIVE);
}

#[test]
fn min_and_max_replace_nan_as_over_time_does() {
    let b = buckets_of(&samples(&[(1, f64::NAN), (2, 3.0), (3, 1.0)]), Resolution::FiveMinutes)[0];
    assert_eq!((b.min, b.max), (1.0, 3.0));
}

#[test]
fn rollup_rows_never_mix_two_utc_days() {
    let day = DAY_MS;
    let labels = Labels::from_pairs(&[("__name__", "x_total"), ("cluster", "c")]);
    let s = Series::new(
        labels.clone(),
        samples(&[(day - 20_000, 1.0), (day - 10_000, 2.0), (day, 4.0), (day + 5, 5.0)]),
    );
    let rows = rollup(std::slice::from_ref(&s), Resolution::FiveMinutes);
    let b = &rows[0].buckets;
    assert_eq!(b.len(), 3, "{b:?}");
    assert_eq!((b[0].timestamp, b[0].count, b[0].last_ts), (day, 2, day - 10_000));
    assert_eq!(
        (b[1].timestamp, b[1].count, b[1].first_ts),
        (day, 1, day),
        "the midnight sample: next day's piece"
    );
    assert_eq!((b[2].timestamp, b[2].count), (day + FIVE, 1));
    // Combined, the pieces are the bucket of the raw samples.
    let read = BucketRead {
        resolution: Resolution::FiveMinutes,
        rolled: rows,
        covered: Vec::new(),
        raw: Vec::new(),
    };
    let got = read.into_series();
    assert_eq!(got[0].buckets, buckets_of(&s.samples, Resolution::FiveMinutes));
}

#[test]
fn raw_samples_in_covered_spans_and_repeated_pieces_count_once() {
    let labels = Labels::from_pairs(&[("__name__", "x_total"), ("cluster", "c")]);
    let raw = Series::new(labels.clone(), samples(&[(10, 1.0), (20, 2.0), (DAY_MS + 10, 3.0)]));
    let rolled = rollup(
        &[Series::new(labels.clone(), samples(&[(10, 1.0), (20, 2.0)]))],
        Resolution::FiveMinutes,
    );
    let read = BucketRead {
        resolution: Resolution::FiveMinutes,
        rolled: [rolled.clone(), rolled].concat(),
        covered: vec![Covered {
            cluster: "c".into(),
            range: TimeRange::new(0, DAY_MS - 1),
        }],
        raw: vec![raw.clone()],
    };
    let got = read.into_series();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].buckets, buckets_of(&raw.samples, Resolution::FiveMinutes));
    // Another cluster's coverage does not hide this one's raw samples.
    let read = BucketRead {
        resolution: Resolution::FiveMinutes,
        rolled: Vec::new(),
        covered: vec![Covered {
            cluster: "other".into(),
            range: TimeRange::ALL,
        }],
        raw: vec![raw.clone()],
    };
    assert_eq!(
        read.into_series()[0].buckets,
        buckets_of(&raw.samples, Resolution::FiveMinutes)
    );
    // Several spans, overlapping and adjacent ones among them, in any order.
    let every_hour: Vec<Sample> = (0..72).map(|h| Sample::new(h * HOUR_MS + 1, 1.0)).collect();
    let span = |from: i64, to: i64| Covered {
        cluster: "c".into(),
        range: TimeRange::new(from * HOUR_MS, to * HOUR_MS - 1),
    };
    let read = BucketRead {
        resolution: Resolution::OneHour,
        rolled: Vec::new(),
        covered: vec![span(48, 60), span(10, 20), span(20, 24), span(12, 14), span(70, 71)],
        raw: vec![Series::new(labels.clone(), every_hour)],
    };
    let kept: Vec<i64> = read.into_series()[0]
        .buckets
        .iter()
        .map(|b| b.timestamp / HOUR_MS - 1)
        .collect();
    let want: Vec<i64> = (0..72)
        .filter(|h| !((10..24).contains(h) || (48..60).contains(h) || *h == 70))
        .collect();
    assert_eq!(kept, want);
}

proptest! {
    /// Appending the summaries of consecutive runs of samples gives the summary of all of
    /// them, exactly for integer values (counters): what combining pieces and windows relies on.
    #[test]
    fn appending_pieces_equals_summarising_the_whole(
        values in prop::collection::vec(0u32..50, 1..60),
        cuts in prop::collection::btree_set(1usize..60, 0..6),
    ) {
        let s: Vec<Sample> = values.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 + 1, f64::from(v))).collect();
        let whole = buckets_of(&s, Resolution::FiveMinutes)[0];
        let mut bounds: Vec<usize> = cuts.into_iter().filter(|&c| c < s.len()).collect();
        bounds.insert(0, 0);
        bounds.push(s.len());
        let mut combined: Option<Bucket> = None;
        for w in bounds.windows(2) {
            let piece = buckets_of(&s[w[0]..w[1]], Resolution::FiveMinutes)[0];
            match combined.as_mut() {
                Some(c) => c.append(&piece),
                None => combined = Some(piece),
            }
        }
        prop_assert_eq!(combined, Some(whole));
        // Prometheus's total: last - first + the value before each reset.
        let mut prom = s[s.len() - 1].value - s[0].value;
        for p in s.windows(2) {
            if p[1].value < p[0].value {
                prom += p[0].value;
            }
        }
        prop_assert_eq!(whole.increase, prom);
    }
}
