//! A series' stored histogram samples read as they are, without expanding every one into a
//! [`NativeHistogram`].
//!
//! Consecutive samples of one scrape target almost always share one bucket layout (schema, zero
//! threshold, spans, custom bounds): only the counts change. Within such a run, a counter reset
//! is a comparison of the stored count arrays, and the difference of two samples is one array
//! minus the other, so a `rate` needs one conversion per window (its answer) instead of one per
//! sample. Samples are converted on demand, each at most once, for everything else.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use tributary_storage::signals::{BucketSpan, HistogramSample, HistogramSeries, ResetHint};
use tributary_storage::types::is_stale_nan;

use super::{CUSTOM_BUCKETS_SCHEMA, NativeHistogram, exponential_bound};

/// The non-stale samples of one stored series, oldest first, with their layout runs.
pub(crate) struct StoredSeries<'a> {
    samples: Vec<&'a HistogramSample>,
    /// Per sample, its run in `runs`.
    run_of: Vec<u32>,
    runs: Vec<Run>,
    converted: RefCell<Vec<Option<Arc<NativeHistogram>>>>,
}

/// Consecutive samples with one layout.
struct Run {
    /// The custom bounds every sample of the run shares (one copy).
    bounds: Arc<[f64]>,
    /// Whether counts can be compared and subtracted index by index: the spans cover exactly the
    /// stored counts, and no bucket of an exponential schema reaches into the zero bucket (which
    /// adding a histogram with another threshold would reshape).
    plain: bool,
}

impl<'a> StoredSeries<'a> {
    pub(crate) fn new(series: &'a HistogramSeries) -> Self {
        let samples: Vec<&HistogramSample> = series.samples.iter().filter(|s| !is_stale_nan(s.sum)).collect();
        let mut run_of = Vec::with_capacity(samples.len());
        let mut runs: Vec<Run> = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            if i == 0 || !same_layout(samples[i - 1], s) {
                runs.push(Run {
                    bounds: s.custom_values.as_slice().into(),
                    plain: plain(s),
                });
            }
            run_of.push((runs.len() - 1) as u32);
        }
        let converted = RefCell::new(vec![None; samples.len()]);
        Self {
            samples,
            run_of,
            runs,
            converted,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn timestamps(&self) -> impl Iterator<Item = i64> + '_ {
        self.samples.iter().map(|s| s.timestamp)
    }

    pub(crate) fn timestamp(&self, i: usize) -> i64 {
        self.samples[i].timestamp
    }

    pub(crate) fn sample(&self, i: usize) -> &HistogramSample {
        self.samples[i]
    }

    /// Sample `i` as a histogram, converted once and shared.
    pub(crate) fn get(&self, i: usize) -> Arc<NativeHistogram> {
        let mut converted = self.converted.borrow_mut();
        converted[i]
            .get_or_insert_with(|| Arc::new(self.to_histogram(i)))
            .clone()
    }

    /// Sample `i` as a histogram of its own.
    pub(crate) fn to_histogram(&self, i: usize) -> NativeHistogram {
        let mut bounds = Some(self.runs[self.run_of[i] as usize].bounds.clone());
        NativeHistogram::from_sample_sharing(self.samples[i], &mut bounds)
    }

    /// Whether the samples of `range` (not empty) share one layout whose counts subtract index by
    /// index (see [`StoredSeries::add_counts`]).
    pub(crate) fn one_plain_layout(&self, range: Range<usize>) -> bool {
        let run = self.run_of[range.start];
        run == self.run_of[range.end - 1] && self.runs[run as usize].plain
    }

    /// Per sample, whether it follows a counter reset after the one before it (the first's flag
    /// is `false`): Prometheus's `DetectReset`, on the stored counts within a plain run.
    pub(crate) fn resets(&self) -> Vec<bool> {
        (0..self.len())
            .map(|i| {
                if i == 0 {
                    return false;
                }
                if !self.one_plain_layout(i - 1..i + 1) {
                    return self.get(i).detect_reset(&self.get(i - 1));
                }
                let (now, before) = (self.samples[i], self.samples[i - 1]);
                match now.reset_hint {
                    ResetHint::Yes => return true,
                    ResetHint::No => return false,
                    _ => {}
                }
                let decreased = |a: &[f64], b: &[f64]| a.iter().zip(b).any(|(x, y)| x < y);
                if now.count < before.count || decreased(&now.positive_buckets, &before.positive_buckets) {
                    return true;
                }
                // Custom buckets have no zero bucket and no negative side to compare.
                now.schema != CUSTOM_BUCKETS_SCHEMA
                    && (now.zero_count < before.zero_count
                        || decreased(&now.negative_buckets, &before.negative_buckets))
            })
            .collect()
    }

    /// Adds `sign` times sample `i`'s counts to `h`, which has sample `i`'s plain layout (made
    /// from a sample of its run, buckets not compacted): what [`NativeHistogram::add`] does to
    /// the counts of histograms of one layout, on the stored arrays. The counter-reset hint is
    /// left as it is: the one caller, a rate, sets the answer's hint itself.
    pub(crate) fn add_counts(&self, h: &mut NativeHistogram, i: usize, sign: f64) {
        let s = self.samples[i];
        h.count += sign * s.count;
        h.sum += sign * s.sum;
        h.zero_count += sign * s.zero_count;
        for (b, c) in h.positive.iter_mut().zip(&s.positive_buckets) {
            b.1 += sign * c;
        }
        for (b, c) in h.negative.iter_mut().zip(&s.negative_buckets) {
            b.1 += sign * c;
        }
    }
}

fn same_layout(a: &HistogramSample, b: &HistogramSample) -> bool {
    a.schema == b.schema
        && a.zero_threshold == b.zero_threshold
        && a.positive_spans == b.positive_spans
        && a.negative_spans == b.negative_spans
        && a.custom_values == b.custom_values
        && a.positive_buckets.len() == b.positive_buckets.len()
        && a.negative_buckets.len() == b.negative_buckets.len()
}

/// See [`Run::plain`].
fn plain(s: &HistogramSample) -> bool {
    let covers = |spans: &[BucketSpan], counts: &[f64]| {
        spans.iter().map(|sp| u64::from(sp.length)).sum::<u64>() == counts.len() as u64
    };
    if !covers(&s.positive_spans, &s.positive_buckets) || !covers(&s.negative_spans, &s.negative_buckets) {
        return false;
    }
    if s.schema == CUSTOM_BUCKETS_SCHEMA {
        return true;
    }
    if !(-4..=8).contains(&s.schema) {
        return false;
    }
    // Buckets grow with the index: the lowest one on each side tells whether any reaches below
    // the threshold.
    let clear = |spans: &[BucketSpan]| match lowest_index(spans) {
        None => true,
        Some(i) => i32::try_from(i - 1).is_ok_and(|below| exponential_bound(below, s.schema) >= s.zero_threshold),
    };
    clear(&s.positive_spans) && clear(&s.negative_spans)
}

/// The index of the first bucket the spans hold, as `NativeHistogram`'s expansion counts them.
fn lowest_index(spans: &[BucketSpan]) -> Option<i64> {
    let mut idx = 0i64;
    for (n, sp) in spans.iter().enumerate() {
        idx = if n == 0 {
            i64::from(sp.offset)
        } else {
            idx + i64::from(sp.offset)
        };
        if sp.length > 0 {
            return Some(idx);
        }
    }
    None
}
