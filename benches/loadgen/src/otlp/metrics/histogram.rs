//! Explicit-bucket histograms: the bucket layouts the instrumentations use, the distribution of
//! a stream's observations ([`HistShape`]) and the cumulative state that evolves from it
//! ([`Hist`]), including the exemplar a round may record.

use tributary_proto::otlp::common::v1::KeyValue;
use tributary_proto::otlp::metrics::v1::{Exemplar, HistogramDataPoint, exemplar};

use super::{
    SALT_BUCKET, SALT_COUNT, SALT_EXEMPLAR, SALT_EXEMPLAR_AT, SALT_MAX, SALT_MIN, SALT_ROUND, SALT_SHIFT, SALT_SUM,
    ms_to_ns,
};
use crate::workload::shape::{mix, unit};

/// OTel semantic conventions' advice for `http.server.request.duration`.
pub(crate) const DURATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The SDKs' default explicit bucket boundaries (used for sizes and anything without advice).
pub(crate) const DEFAULT_BOUNDS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0,
];
/// The JVM instrumentation's advice for `jvm.gc.duration`.
pub(crate) const GC_BOUNDS: &[f64] = &[0.01, 0.1, 1.0, 10.0];

/// A cumulative explicit-bucket histogram of log-normally distributed observations.
#[derive(Debug)]
pub(crate) struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    per_round: f64,
    /// ln of the median observation, and the log-space spread.
    mu: f64,
    sigma: f64,
    /// Share of observations that are exactly 0 (e.g. request bodies of GETs).
    zeros: f64,
    /// Chance that a round with observations records an exemplar.
    exemplar_p: f64,
    /// Exemplars are recorded within this many ms before the export.
    window_ms: u64,
    /// The exemplar recorded this round, if any: (value, ms before the export, trace seed).
    exemplar: Option<(f64, u64, u64)>,
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26; error below 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// CDF at `x` of a mix of `zeros` exact zeros and a log-normal(mu, sigma).
fn cdf(x: f64, mu: f64, sigma: f64, zeros: f64) -> f64 {
    if x < 0.0 {
        0.0
    } else if x == 0.0 {
        zeros
    } else {
        zeros + (1.0 - zeros) * normal_cdf((x.ln() - mu) / sigma)
    }
}

/// Distribution of a histogram's observations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistShape {
    /// Upper bounds of the buckets.
    pub(crate) bounds: &'static [f64],
    /// Median of the non-zero observations.
    pub(crate) median: f64,
    /// Log-space spread of the non-zero observations.
    pub(crate) sigma: f64,
    /// Share of observations that are exactly 0.
    pub(crate) zeros: f64,
}

impl Hist {
    /// A histogram met mid-life: it already holds the expected counts of `age_rounds` rounds.
    pub(crate) fn new(shape: HistShape, per_round: f64, age_rounds: f64, exemplar_p: f64, window_ms: u64) -> Self {
        let HistShape {
            bounds,
            median,
            sigma,
            zeros,
        } = shape;
        let mu = median.max(1e-9).ln();
        // Met mid-life: the expected counts of the process' history so far.
        let n = (per_round * age_rounds).floor();
        let mut counts = vec![0u64; bounds.len() + 1];
        let mut prev = 0u64;
        for (k, &b) in bounds.iter().enumerate() {
            let cum = ((n * cdf(b, mu, sigma, zeros)).floor() as u64).max(prev);
            counts[k] = cum - prev;
            prev = cum;
        }
        counts[bounds.len()] = (n as u64).saturating_sub(prev);
        let count = n as u64;
        Self {
            bounds,
            counts,
            count,
            sum: n * (1.0 - zeros) * (mu + sigma * sigma / 2.0).exp(),
            min: if zeros > 0.0 { 0.0 } else { (mu - 3.0 * sigma).exp() },
            max: (mu + 3.0 * sigma).exp(),
            per_round,
            mu,
            sigma,
            zeros,
            exemplar_p,
            window_ms,
            exemplar: None,
        }
    }

    /// Records `round`'s observations (and maybe an exemplar) for the point seeded `seed`.
    pub(crate) fn advance(&mut self, seed: u64, round: u64) {
        self.exemplar = None;
        let n = (self.per_round * (0.5 + unit(seed, round, SALT_COUNT)) + unit(seed, round, SALT_ROUND)).floor();
        if n < 1.0 {
            return;
        }
        // Latency drifts a little from round to round.
        let mu = self.mu + 0.3 * (unit(seed, round, SALT_SHIFT) - 0.5);
        let mut prev = 0u64;
        let total = n as u64;
        for (k, &b) in self.bounds.iter().enumerate() {
            let u = unit(seed, round, SALT_BUCKET + k as u64);
            let cum = ((n * cdf(b, mu, self.sigma, self.zeros) + u).floor() as u64).clamp(prev, total);
            self.counts[k] += cum - prev;
            prev = cum;
        }
        let last = self.bounds.len();
        self.counts[last] += total - prev;
        self.count += total;
        let mean = (1.0 - self.zeros) * (mu + self.sigma * self.sigma / 2.0).exp();
        self.sum += n * mean * (0.8 + 0.4 * unit(seed, round, SALT_SUM));
        let low = if self.zeros > 0.0 {
            0.0
        } else {
            (mu - 2.5 * self.sigma).exp() * (0.5 + unit(seed, round, SALT_MIN))
        };
        self.min = self.min.min(low);
        self.max = self
            .max
            .max((mu + 2.5 * self.sigma).exp() * (0.5 + unit(seed, round, SALT_MAX)));
        if unit(seed, round, SALT_EXEMPLAR) < self.exemplar_p {
            let z = 3.0 * (unit(seed, round, SALT_EXEMPLAR_AT) - 0.5);
            let value = (mu + self.sigma * z).exp();
            let before_ms = (unit(seed, round, SALT_EXEMPLAR_AT ^ 0xFF) * self.window_ms as f64) as u64;
            self.exemplar = Some((value, before_ms, mix(seed ^ round.wrapping_mul(0x9E37))));
        }
    }

    /// This histogram as a data point with `attrs` at `time_ms`, cumulative since `start_ns`.
    pub(crate) fn data_point(&self, attrs: &[KeyValue], start_ns: u64, time_ms: i64) -> HistogramDataPoint {
        let exemplars = self
            .exemplar
            .map(|(value, before_ms, trace_seed)| Exemplar {
                filtered_attributes: vec![],
                time_unix_nano: ms_to_ns(time_ms - before_ms as i64),
                span_id: mix(trace_seed ^ 1).to_be_bytes().to_vec(),
                trace_id: [mix(trace_seed).to_be_bytes(), mix(trace_seed ^ 2).to_be_bytes()].concat(),
                value: Some(exemplar::Value::AsDouble(value)),
            })
            .into_iter()
            .collect();
        HistogramDataPoint {
            attributes: attrs.to_vec(),
            start_time_unix_nano: start_ns,
            time_unix_nano: ms_to_ns(time_ms),
            count: self.count,
            sum: Some(self.sum),
            bucket_counts: self.counts.clone(),
            explicit_bounds: self.bounds.to_vec(),
            exemplars,
            flags: 0,
            min: (self.count > 0).then_some(self.min),
            max: (self.count > 0).then_some(self.max),
        }
    }
}

/// A request or processing duration with median `median` seconds.
pub(crate) fn duration(median: f64) -> HistShape {
    HistShape {
        bounds: DURATION_BOUNDS,
        median,
        sigma: 0.9,
        zeros: 0.0,
    }
}

/// A body size with median `median` bytes, `zeros` of them empty.
pub(crate) fn size(median: f64, zeros: f64) -> HistShape {
    HistShape {
        bounds: DEFAULT_BOUNDS,
        median,
        sigma: 1.1,
        zeros,
    }
}
