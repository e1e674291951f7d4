//! OTLP exponential histogram data points → Prometheus native histogram samples.
//!
//! The two formats share the bucket layout: at OTLP `scale` s, bucket `i` covers
//! `(2^(i·2^-s), 2^((i+1)·2^-s)]`, and at Prometheus `schema` s bucket `i` covers
//! `(2^((i-1)·2^-s), 2^(i·2^-s)]` — so OTLP index `i` is Prometheus index `i + 1`.
//! Prometheus supports schemas −4..=8: a finer OTLP scale is reduced to 8 by merging each run of
//! `2^(scale-8)` adjacent buckets (OTLP index `i` lands in Prometheus index `(i >> (scale-8)) + 1`,
//! an arithmetic shift, so negative indices round towards −∞ as the bucket bounds require); a
//! coarser scale than −4 cannot be represented and the point is refused.
//!
//! Dense OTLP counts become Prometheus spans: zero buckets are left out, except that gaps of up
//! to two buckets between populated ones are filled with explicit zeros rather than opening a new
//! span (the rule Prometheus's client and OTLP translator use). The bucket counts are absolute
//! floats, as [`HistogramSample`] requires.

use tributary_proto::otlp::metrics::v1::ExponentialHistogramDataPoint;
use tributary_proto::otlp::metrics::v1::exponential_histogram_data_point::Buckets;
use tributary_storage::signals::{BucketSpan, HistogramSample, ResetHint};
use tributary_storage::types::{STALE_NAN_BITS, TimestampMs};

/// The finest exponential schema Prometheus supports.
pub(crate) const MAX_SCHEMA: i32 = 8;
/// The coarsest exponential schema Prometheus supports.
pub(crate) const MIN_SCHEMA: i32 = -4;
/// Prometheus's zero threshold for OTLP histograms that do not set one (its OTLP translator
/// always uses this value).
pub(crate) const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// Converts one data point taken at `timestamp`. `stale` (the point's `NO_RECORDED_VALUE` flag)
/// gives a staleness marker: sum and count are Prometheus's stale NaN and there are no buckets.
pub(crate) fn convert(
    p: &ExponentialHistogramDataPoint,
    timestamp: TimestampMs,
    stale: bool,
) -> Result<HistogramSample, String> {
    if p.scale < MIN_SCHEMA {
        return Err(format!(
            "exponential histogram scale {} is below {MIN_SCHEMA}, the coarsest schema Prometheus supports",
            p.scale
        ));
    }
    let zero_threshold = if p.zero_threshold.is_finite() && p.zero_threshold > 0.0 {
        p.zero_threshold
    } else {
        DEFAULT_ZERO_THRESHOLD
    };
    let schema = p.scale.min(MAX_SCHEMA);
    if stale {
        let stale = f64::from_bits(STALE_NAN_BITS);
        return Ok(HistogramSample {
            timestamp,
            count: stale,
            sum: stale,
            schema,
            zero_threshold,
            reset_hint: ResetHint::Unknown,
            ..HistogramSample::default()
        });
    }
    // OTLP allows scales up to 20; anything shifted by 63 or more already lands in bucket 0 or -1.
    let scale_down = (p.scale - schema).clamp(0, 63) as u32;
    let (positive_spans, positive_buckets) = buckets(p.positive.as_ref(), scale_down)?;
    let (negative_spans, negative_buckets) = buckets(p.negative.as_ref(), scale_down)?;
    Ok(HistogramSample {
        timestamp,
        count: p.count as f64,
        // An absent sum (allowed when values can be negative) is unknown, not zero.
        sum: p.sum.unwrap_or(f64::NAN),
        schema,
        zero_threshold,
        zero_count: p.zero_count as f64,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        reset_hint: ResetHint::Unknown,
        custom_values: Vec::new(),
    })
}

/// One side's dense OTLP buckets → Prometheus spans and absolute counts, merging `2^scale_down`
/// adjacent buckets into one.
fn buckets(b: Option<&Buckets>, scale_down: u32) -> Result<(Vec<BucketSpan>, Vec<f64>), String> {
    let Some(b) = b else {
        return Ok((Vec::new(), Vec::new()));
    };
    // Populated Prometheus buckets in index order, counts merged.
    let mut populated: Vec<(i64, f64)> = Vec::new();
    for (i, &count) in b.bucket_counts.iter().enumerate() {
        let otlp_index = i64::from(b.offset) + i as i64;
        let index = (otlp_index >> scale_down) + 1;
        if count == 0 {
            continue;
        }
        match populated.last_mut() {
            Some((last, sum)) if *last == index => *sum += count as f64,
            _ => populated.push((index, count as f64)),
        }
    }
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut counts = Vec::with_capacity(populated.len());
    let mut prev: Option<i64> = None;
    for (index, count) in populated {
        if i32::try_from(index).is_err() {
            return Err(format!(
                "exponential histogram bucket index {index} is outside the range Prometheus can store"
            ));
        }
        match (prev, spans.last_mut()) {
            (Some(p), Some(span)) if index - p - 1 <= 2 => {
                // A short gap: explicit zero buckets are cheaper than a new span.
                counts.extend(std::iter::repeat_n(0.0, (index - p - 1) as usize));
                span.length += (index - p) as u32;
            }
            (Some(p), _) => spans.push(BucketSpan {
                offset: i32::try_from(index - p - 1)
                    .map_err(|_| format!("exponential histogram bucket gap before index {index} is too large"))?,
                length: 1,
            }),
            (None, _) => spans.push(BucketSpan {
                offset: index as i32,
                length: 1,
            }),
        }
        counts.push(count);
        prev = Some(index);
    }
    Ok((spans, counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: i32, offset: i32, counts: &[u64]) -> ExponentialHistogramDataPoint {
        ExponentialHistogramDataPoint {
            scale,
            count: counts.iter().sum(),
            sum: Some(10.0),
            positive: Some(Buckets {
                offset,
                bucket_counts: counts.to_vec(),
            }),
            ..Default::default()
        }
    }

    /// Expands spans into `(prometheus index, count)` pairs, zero buckets dropped.
    fn expand(spans: &[BucketSpan], counts: &[f64]) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut idx = 0i64;
        let mut it = counts.iter();
        // The first offset is absolute; later ones count from the end of the previous span.
        for s in spans {
            idx += i64::from(s.offset);
            for _ in 0..s.length {
                let c = *it.next().expect("counts shorter than spans");
                if c != 0.0 {
                    out.push((idx, c));
                }
                idx += 1;
            }
        }
        assert!(it.next().is_none(), "counts longer than spans");
        out
    }

    /// Upper bound of Prometheus bucket `i` at `schema`.
    fn upper(schema: i32, i: i64) -> f64 {
        2f64.powf(i as f64 * 2f64.powi(-schema))
    }

    #[test]
    fn same_scale_shifts_indices_by_one() {
        let h = convert(&point(3, -2, &[1, 2, 0, 4]), 7, false).unwrap();
        assert_eq!(h.schema, 3);
        assert_eq!(h.timestamp, 7);
        assert_eq!(h.count, 7.0);
        assert_eq!(h.sum, 10.0);
        assert_eq!(h.zero_threshold, DEFAULT_ZERO_THRESHOLD);
        assert_eq!(h.reset_hint, ResetHint::Unknown);
        // OTLP indices -2, -1, 1 → Prometheus -1, 0, 2 (the one-bucket gap is filled with a zero).
        assert_eq!(h.positive_spans, vec![BucketSpan { offset: -1, length: 4 }]);
        assert_eq!(h.positive_buckets, vec![1.0, 2.0, 0.0, 4.0]);
        assert!(h.negative_spans.is_empty() && h.negative_buckets.is_empty());
    }

    #[test]
    fn long_gaps_open_new_spans() {
        let h = convert(&point(0, 0, &[1, 0, 0, 0, 5]), 0, false).unwrap();
        assert_eq!(
            h.positive_spans,
            vec![BucketSpan { offset: 1, length: 1 }, BucketSpan { offset: 3, length: 1 }]
        );
        assert_eq!(h.positive_buckets, vec![1.0, 5.0]);
        assert_eq!(expand(&h.positive_spans, &h.positive_buckets), vec![(1, 1.0), (5, 5.0)]);
    }

    /// Scale 10 → schema 8 merges runs of 4 buckets; every OTLP observation must land in the
    /// schema-8 bucket whose bounds contain the OTLP bucket.
    #[test]
    fn scale_10_downscales_to_schema_8_by_merging() {
        let offset = -7;
        let counts: Vec<u64> = (1..=13).collect();
        let h = convert(&point(10, offset, &counts), 0, false).unwrap();
        assert_eq!(h.schema, 8);
        let got = expand(&h.positive_spans, &h.positive_buckets);
        // Expected by brute force over bucket bounds.
        let mut want: Vec<(i64, f64)> = Vec::new();
        for (i, c) in counts.iter().enumerate() {
            let otlp = i64::from(offset) + i as i64;
            // OTLP bucket (2^(otlp/1024), 2^((otlp+1)/1024)]; find the schema-8 bucket containing it.
            let lo = 2f64.powf(otlp as f64 / 1024.0);
            let hi = 2f64.powf((otlp + 1) as f64 / 1024.0);
            let prom = (-100..100)
                .find(|&j| upper(8, j - 1) <= lo * (1.0 + 1e-12) && hi <= upper(8, j) * (1.0 + 1e-12))
                .expect("containing bucket");
            match want.last_mut() {
                Some((j, s)) if *j == prom => *s += *c as f64,
                _ => want.push((prom, *c as f64)),
            }
        }
        assert_eq!(got, want);
        // -7..=5 → (-7>>2)+1 = -1 ... (5>>2)+1 = 2: buckets -1, 0, 1, 2.
        assert_eq!(got.iter().map(|p| p.0).collect::<Vec<_>>(), vec![-1, 0, 1, 2]);
        assert_eq!(got.iter().map(|p| p.1).sum::<f64>(), counts.iter().sum::<u64>() as f64);
        // Indices -7..=-5 (counts 1,2,3) merge into -1; -4..=-1 (4..=7) into 0; 0..=3 into 1; 4,5 into 2.
        assert_eq!(got, vec![(-1, 6.0), (0, 22.0), (1, 38.0), (2, 25.0)]);
    }

    #[test]
    fn negative_buckets_zero_bucket_and_threshold() {
        let mut p = point(1, 0, &[3]);
        p.negative = Some(Buckets {
            offset: -3,
            bucket_counts: vec![2, 0, 1],
        });
        p.zero_count = 4;
        p.zero_threshold = 0.001;
        let h = convert(&p, 0, false).unwrap();
        assert_eq!(h.zero_count, 4.0);
        assert_eq!(h.zero_threshold, 0.001);
        assert_eq!(h.negative_spans, vec![BucketSpan { offset: -2, length: 3 }]);
        assert_eq!(h.negative_buckets, vec![2.0, 0.0, 1.0]);
    }

    #[test]
    fn scale_below_minus_4_is_refused_and_absent_sum_is_nan() {
        assert!(convert(&point(-5, 0, &[1]), 0, false).unwrap_err().contains("below -4"));
        let mut p = point(-4, 0, &[1]);
        p.sum = None;
        let h = convert(&p, 0, false).unwrap();
        assert_eq!(h.schema, -4);
        assert!(h.sum.is_nan() && h.sum.to_bits() != STALE_NAN_BITS);
    }

    #[test]
    fn stale_points_are_markers() {
        let h = convert(&point(20, 0, &[1]), 5, true).unwrap();
        assert_eq!(h.sum.to_bits(), STALE_NAN_BITS);
        assert_eq!(h.count.to_bits(), STALE_NAN_BITS);
        assert_eq!(h.schema, 8);
        assert!(h.positive_buckets.is_empty());
    }

    #[test]
    fn extreme_offsets_do_not_panic() {
        for (scale, offset) in [
            (20, i32::MAX),
            (20, i32::MIN),
            (0, i32::MAX),
            (0, i32::MIN),
            (i32::MAX, -1),
        ] {
            let r = convert(&point(scale, offset, &[1, 1, 1]), 0, false);
            if let Ok(h) = r {
                assert_eq!(h.positive_buckets.iter().sum::<f64>(), 3.0);
            }
        }
    }
}
