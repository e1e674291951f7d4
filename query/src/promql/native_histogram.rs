//! Native histograms as PromQL evaluates them (Prometheus's `FloatHistogram`): bucket maths,
//! the `histogram_*` estimators and the API's bucket listing. Buckets are held by absolute index
//! (sorted, one entry per index) rather than spans: every operation here is a merge by index.
//!
//! Exponential schemas −4..=8: positive bucket `i` covers `(2^((i−1)·2^−s), 2^(i·2^−s)]`,
//! negative bucket `i` its mirror; observations within the zero threshold count in the zero
//! bucket. Schema −53 (NHCB) uses `custom_values` as upper bounds: bucket `i` covers
//! `(bound[i−1], bound[i]]` with `bound[−1] = −Inf` and `bound[len] = +Inf`.

mod estimate;
mod ops;
mod stored;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use tributary_storage::signals::{BucketSpan, HistogramSample, ResetHint};

pub(crate) use estimate::{fraction, quantile, variance};
pub(crate) use ops::MixedSchemas;
pub(crate) use stored::StoredSeries;

/// The schema of custom-bucket (NHCB) histograms.
pub(crate) const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// One native-histogram value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NativeHistogram {
    pub(crate) schema: i32,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: f64,
    pub(crate) count: f64,
    pub(crate) sum: f64,
    /// `(index, count)`, sorted by index.
    pub(crate) positive: Vec<(i32, f64)>,
    /// `(index, count)`, sorted by index (index grows with the magnitude).
    pub(crate) negative: Vec<(i32, f64)>,
    pub(crate) custom_values: Arc<[f64]>,
    pub(crate) reset_hint: ResetHint,
}

/// One bucket with its bounds, as Prometheus's bucket iterators yield them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Whether `lower` belongs to the bucket.
    pub lower_inclusive: bool,
    /// Whether `upper` belongs to the bucket.
    pub upper_inclusive: bool,
    /// Observations in it.
    pub count: f64,
}

impl Bucket {
    /// The API's boundary rule: 0 left-open, 1 right-open, 2 open, 3 closed.
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 0,
            (false, false) => 2,
        }
    }
}

impl NativeHistogram {
    /// The stored sample, its spans expanded to absolute indexes.
    #[cfg(test)]
    pub(crate) fn from_sample(s: &HistogramSample) -> Self {
        Self::from_sample_sharing(s, &mut None)
    }

    /// Like [`NativeHistogram::from_sample`], reusing `bounds` for custom bounds equal to them
    /// (a series' samples share one copy) and keeping the last ones there.
    pub(crate) fn from_sample_sharing(s: &HistogramSample, bounds: &mut Option<Arc<[f64]>>) -> Self {
        let custom_values = match bounds {
            Some(b) if **b == *s.custom_values => b.clone(),
            _ => {
                let fresh: Arc<[f64]> = s.custom_values.clone().into();
                *bounds = Some(fresh.clone());
                fresh
            }
        };
        Self {
            schema: s.schema,
            zero_threshold: s.zero_threshold,
            zero_count: s.zero_count,
            count: s.count,
            sum: s.sum,
            positive: expand(&s.positive_spans, &s.positive_buckets),
            negative: expand(&s.negative_spans, &s.negative_buckets),
            custom_values,
            reset_hint: s.reset_hint,
        }
    }

    /// The stored form at `timestamp`: runs of consecutive indexes become spans.
    pub(crate) fn to_sample(&self, timestamp: i64) -> HistogramSample {
        HistogramSample {
            timestamp,
            count: self.count,
            sum: self.sum,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count,
            positive_spans: spans(&self.positive),
            positive_buckets: self.positive.iter().map(|b| b.1).collect(),
            negative_spans: spans(&self.negative),
            negative_buckets: self.negative.iter().map(|b| b.1).collect(),
            reset_hint: self.reset_hint,
            custom_values: self.custom_values.to_vec(),
        }
    }

    pub(crate) fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Upper bound of bucket `index` in this histogram's schema.
    fn bound(&self, index: i32) -> f64 {
        if self.uses_custom_buckets() {
            let len = self.custom_values.len() as i32;
            return match index {
                i if i >= len => f64::INFINITY,
                i if i < 0 => f64::NEG_INFINITY,
                i => self.custom_values[i as usize],
            };
        }
        exponential_bound(index, self.schema)
    }

    /// Every bucket from the lowest to the highest: negative ones, the zero bucket (when it
    /// holds observations), positive ones; bounds of buckets overlapping the zero bucket are cut
    /// at the threshold. Empty buckets within the spans are included.
    pub fn buckets(&self) -> Vec<Bucket> {
        let t = self.zero_threshold;
        let mut out = Vec::with_capacity(self.positive.len() + self.negative.len() + 1);
        for &(i, count) in self.negative.iter().rev() {
            let mut upper = -self.bound(i - 1);
            if upper < 0.0 && upper > -t {
                upper = -t;
            }
            out.push(Bucket {
                lower: -self.bound(i),
                upper,
                lower_inclusive: true,
                upper_inclusive: false,
                count,
            });
        }
        if self.zero_count > 0.0 && !self.uses_custom_buckets() {
            out.push(Bucket {
                lower: -t,
                upper: t,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
            });
        }
        for &(i, count) in &self.positive {
            let mut lower = self.bound(i - 1);
            if lower > 0.0 && lower < t {
                lower = t;
            }
            out.push(Bucket {
                lower,
                upper: self.bound(i),
                lower_inclusive: false,
                upper_inclusive: true,
                count,
            });
        }
        out
    }
}

/// `2^(index · 2^−schema)`, with the last finite bucket capped at `f64::MAX` as Prometheus does.
pub(crate) fn exponential_bound(index: i32, schema: i32) -> f64 {
    if schema <= 0 {
        let exp = i64::from(index) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        2f64.powi(exp.clamp(-2000, 2000) as i32)
    } else {
        let per = 1i64 << schema;
        let idx = i64::from(index);
        let frac = idx.rem_euclid(per);
        let exp = idx.div_euclid(per);
        if frac == 0 && exp == 1024 {
            return f64::MAX;
        }
        2f64.powf(frac as f64 / per as f64) * 2f64.powi(exp.clamp(-2000, 2000) as i32)
    }
}

fn spans(buckets: &[(i32, f64)]) -> Vec<BucketSpan> {
    let mut out: Vec<BucketSpan> = Vec::new();
    let mut next = 0i32;
    for (n, &(i, _)) in buckets.iter().enumerate() {
        match out.last_mut() {
            Some(last) if i == next => last.length += 1,
            _ => out.push(BucketSpan {
                offset: if n == 0 { i } else { i - next },
                length: 1,
            }),
        }
        next = i + 1;
    }
    out
}

fn expand(spans: &[BucketSpan], buckets: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx = 0i32;
    let mut counts = buckets.iter();
    for (n, span) in spans.iter().enumerate() {
        idx = if n == 0 { span.offset } else { idx + span.offset };
        for _ in 0..span.length {
            let Some(&c) = counts.next() else { return out };
            out.push((idx, c));
            idx += 1;
        }
    }
    out
}
