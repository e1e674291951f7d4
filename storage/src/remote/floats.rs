//! The JSON mirrors of native histograms and exemplars: floats as their bits, because JSON
//! has no NaN or infinities and a staleness marker must keep its bits.

use super::*;

/// A float as its bits (JSON has no NaN or infinities; a staleness marker keeps its bits).
fn bits(v: f64) -> u64 {
    v.to_bits()
}

fn all_bits(vs: &[f64]) -> Vec<u64> {
    vs.iter().map(|&v| v.to_bits()).collect()
}

fn from_bits(vs: Vec<u64>) -> Vec<f64> {
    vs.into_iter().map(f64::from_bits).collect()
}

#[derive(Serialize, Deserialize)]
pub(super) struct WireHistogramSeries {
    labels: Pairs,
    samples: Vec<WireHistogram>,
}

#[derive(Serialize, Deserialize)]
struct WireHistogram {
    t: i64,
    count: u64,
    sum: u64,
    schema: i32,
    zero_threshold: u64,
    zero_count: u64,
    positive_spans: Vec<(i32, u32)>,
    positive_buckets: Vec<u64>,
    negative_spans: Vec<(i32, u32)>,
    negative_buckets: Vec<u64>,
    reset_hint: ResetHint,
    custom_values: Vec<u64>,
}

fn spans_out(spans: &[BucketSpan]) -> Vec<(i32, u32)> {
    spans.iter().map(|s| (s.offset, s.length)).collect()
}

fn spans_in(spans: Vec<(i32, u32)>) -> Vec<BucketSpan> {
    spans
        .into_iter()
        .map(|(offset, length)| BucketSpan { offset, length })
        .collect()
}

impl WireHistogramSeries {
    pub(super) fn of(s: &HistogramSeries) -> Self {
        Self {
            labels: pairs(&s.labels),
            samples: s
                .samples
                .iter()
                .map(|h| WireHistogram {
                    t: h.timestamp,
                    count: bits(h.count),
                    sum: bits(h.sum),
                    schema: h.schema,
                    zero_threshold: bits(h.zero_threshold),
                    zero_count: bits(h.zero_count),
                    positive_spans: spans_out(&h.positive_spans),
                    positive_buckets: all_bits(&h.positive_buckets),
                    negative_spans: spans_out(&h.negative_spans),
                    negative_buckets: all_bits(&h.negative_buckets),
                    reset_hint: h.reset_hint,
                    custom_values: all_bits(&h.custom_values),
                })
                .collect(),
        }
    }

    pub(super) fn into_series(self) -> HistogramSeries {
        HistogramSeries {
            labels: labels_in(self.labels),
            samples: self
                .samples
                .into_iter()
                .map(|h| HistogramSample {
                    timestamp: h.t,
                    count: f64::from_bits(h.count),
                    sum: f64::from_bits(h.sum),
                    schema: h.schema,
                    zero_threshold: f64::from_bits(h.zero_threshold),
                    zero_count: f64::from_bits(h.zero_count),
                    positive_spans: spans_in(h.positive_spans),
                    positive_buckets: from_bits(h.positive_buckets),
                    negative_spans: spans_in(h.negative_spans),
                    negative_buckets: from_bits(h.negative_buckets),
                    reset_hint: h.reset_hint,
                    custom_values: from_bits(h.custom_values),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct WireExemplarSeries {
    labels: Pairs,
    exemplars: Vec<(Pairs, u64, i64)>,
}

impl WireExemplarSeries {
    pub(super) fn of(s: &ExemplarSeries) -> Self {
        Self {
            labels: pairs(&s.labels),
            exemplars: s
                .exemplars
                .iter()
                .map(|e| (pairs(&e.labels), bits(e.value), e.timestamp))
                .collect(),
        }
    }

    pub(super) fn into_series(self) -> ExemplarSeries {
        ExemplarSeries {
            labels: labels_in(self.labels),
            exemplars: self
                .exemplars
                .into_iter()
                .map(|(labels, value, timestamp)| Exemplar {
                    labels: labels_in(labels),
                    value: f64::from_bits(value),
                    timestamp,
                })
                .collect(),
        }
    }
}
