//! The stored-count path of a native `rate` (`plain_rate`) against the path that converts every
//! sample (`converted_rate`): the same answers, value for value, and the same annotations.

use tributary_storage::signals::{BucketSpan, HistogramSample, HistogramSeries, ResetHint};
use tributary_storage::types::Labels;

use super::*;
use crate::promql::tests::Lcg as Dice;

/// Samples every 15 s of one layout: counts grow, with resets, hints and a stale marker.
fn series(dice: &mut Dice, custom: bool) -> HistogramSeries {
    let len = 4;
    let mut counts = vec![0.0; len];
    let mut negative = [0.0; 2];
    let mut zero = 0.0;
    let mut samples = Vec::new();
    for i in 0..40 {
        if dice.next(8) == 0 {
            counts.iter_mut().for_each(|c| *c = 0.0);
            negative = [0.0; 2];
            zero = 0.0;
        }
        for c in &mut counts {
            *c += dice.next(4) as f64;
        }
        if !custom {
            negative[dice.next(2) as usize] += 1.0;
            zero += dice.next(2) as f64;
        }
        let count = counts.iter().sum::<f64>() + negative.iter().sum::<f64>() + zero;
        let reset_hint = match dice.next(12) {
            0 => ResetHint::Yes,
            1 => ResetHint::No,
            2 => ResetHint::Gauge,
            _ => ResetHint::Unknown,
        };
        let stale = dice.next(30) == 0;
        samples.push(HistogramSample {
            timestamp: i * 15_000,
            count,
            sum: if stale {
                f64::from_bits(tributary_storage::types::STALE_NAN_BITS)
            } else {
                count * 0.25
            },
            schema: if custom { -53 } else { 1 },
            zero_threshold: if custom { 0.0 } else { 0.001 },
            zero_count: zero,
            positive_spans: vec![BucketSpan { offset: 1, length: 2 }, BucketSpan { offset: 1, length: 2 }],
            positive_buckets: counts.clone(),
            negative_spans: if custom {
                Vec::new()
            } else {
                vec![BucketSpan { offset: 2, length: 2 }]
            },
            negative_buckets: if custom { Vec::new() } else { negative.to_vec() },
            reset_hint,
            custom_values: if custom {
                vec![0.1, 0.5, 1.0, 5.0, 10.0]
            } else {
                Vec::new()
            },
        });
    }
    HistogramSeries {
        labels: Labels::from_pairs(&[("__name__", "h")]),
        samples,
    }
}

#[test]
fn stored_counts_rate_as_converted_histograms_do() {
    let mut dice = Dice(7);
    for case in 0..20 {
        let custom = case % 2 == 0;
        let hs = series(&mut dice, custom);
        let stored = StoredSeries::new(&hs);
        let resets = stored.resets();
        for (i, &reset) in resets.iter().enumerate().skip(1) {
            let converted = stored.get(i).detect_reset(&stored.get(i - 1));
            assert_eq!(reset, converted, "case {case}, sample {i}: reset");
        }
        for kind in [RateKind::Rate, RateKind::Increase, RateKind::Delta] {
            for lo in 0..stored.len() {
                for hi in lo + 2..=stored.len().min(lo + 25) {
                    assert!(stored.one_plain_layout(lo..hi), "case {case}: one layout");
                    let w = WindowSamples {
                        floats: &[],
                        hists: &stored,
                        range: lo..hi,
                        resets: &resets[lo..hi],
                        window: Window {
                            end: stored.timestamp(hi - 1) + 7_000,
                            range_ms: 400_000,
                        },
                        name: "h",
                        position: "",
                    };
                    let (mut a, mut b) = (Annotations::default(), Annotations::default());
                    let plain = plain_rate(kind, &w, &mut a);
                    let converted = converted_rate(kind, &w, &mut b);
                    assert_eq!(
                        format!("{plain:?}"),
                        format!("{converted:?}"),
                        "case {case}, {kind:?}, samples {lo}..{hi}"
                    );
                    assert_eq!(a, b, "case {case}, {kind:?}, samples {lo}..{hi}: annotations");
                }
            }
        }
    }
}

#[test]
fn a_layout_change_or_a_bucket_inside_the_zero_bucket_is_not_plain() {
    let mut dice = Dice(3);
    let mut hs = series(&mut dice, false);
    hs.samples.iter_mut().for_each(|s| s.sum = 1.0);
    // A finer layout from sample 10 on: runs split there.
    for s in &mut hs.samples[10..] {
        s.positive_spans = vec![BucketSpan { offset: 1, length: 4 }];
    }
    let stored = StoredSeries::new(&hs);
    assert!(stored.one_plain_layout(0..10));
    assert!(stored.one_plain_layout(10..40));
    assert!(!stored.one_plain_layout(9..11));
    // Schema 1, threshold 2: bucket 1 covers (1, √2], within the zero bucket.
    for s in &mut hs.samples {
        s.zero_threshold = 2.0;
    }
    let stored = StoredSeries::new(&hs);
    assert!(!stored.one_plain_layout(0..2));
    // Spans covering fewer counts than stored are not plain either.
    hs.samples[0].zero_threshold = 0.001;
    hs.samples[0].positive_buckets.push(1.0);
    let stored = StoredSeries::new(&hs);
    assert!(!stored.one_plain_layout(0..1));
}
