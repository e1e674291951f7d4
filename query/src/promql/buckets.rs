//! Range functions over rollup buckets: each step's window `(end - range, end]` is, when the
//! planner chose a rollup tier for the selector (`plan::Planner::choose_tier`), exactly the
//! buckets labelled `end - range + res, …, end`, combined into one summary of the window's
//! samples ([`Bucket::append`]); `rate`, `increase` and the `*_over_time` aggregations then
//! read the summary (`functions::rate::from_summary`, `functions::over_time::from_summary`).
//!
//! Windows slide with a two-stack queue over the associative `append`, so a range query costs
//! one combination per bucket and step rather than one per bucket of every window.

use tributary_storage::rollup::{Bucket, BucketSeries};
use tributary_storage::types::{Labels, METRIC_NAME, TimestampMs};

use super::eval::{Guard, Window};
use super::value::{Point, StepSeries, Steps, into_without_name};
use crate::error::Result;

/// The windows of one range function over bucketed series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BucketWindows {
    pub(crate) steps: Steps,
    pub(crate) range_ms: i64,
    pub(crate) offset_ms: i64,
    pub(crate) at: Option<TimestampMs>,
    pub(crate) keep_name: bool,
}

impl BucketWindows {
    /// `f` of every series' window summary at every step (a window without buckets is skipped);
    /// with `not_counter`, the names of series that produced a value though not named like
    /// counters go there.
    pub(crate) fn apply(
        self,
        series: Vec<BucketSeries>,
        guard: &Guard,
        f: &impl Fn(&Bucket, Window) -> Option<f64>,
        mut not_counter: Option<&mut Vec<String>>,
        is_counter_name: impl Fn(&str) -> bool,
    ) -> Result<Vec<StepSeries>> {
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            guard.check()?;
            let mut points = Vec::new();
            let mut window = Sliding::default();
            let (mut lo, mut hi) = (0usize, 0usize);
            for step in 0..self.steps.count {
                let end = self.at.unwrap_or(self.steps.time(step)).saturating_sub(self.offset_ms);
                let w = Window {
                    end,
                    range_ms: self.range_ms,
                };
                // Window ends never decrease, except with `@`, where they are all equal.
                while hi < s.buckets.len() && s.buckets[hi].timestamp <= end {
                    window.push(s.buckets[hi]);
                    hi += 1;
                }
                while lo < hi && s.buckets[lo].timestamp <= w.start() {
                    window.pop();
                    lo += 1;
                }
                if let Some(value) = window.total().and_then(|total| f(&total, w)) {
                    points.push(Point {
                        step: step as u32,
                        value,
                    });
                }
            }
            if points.is_empty() {
                continue;
            }
            if let (Some(names), Some(name)) = (not_counter.as_deref_mut(), s.labels.get(METRIC_NAME))
                && !is_counter_name(name)
            {
                names.push(name.to_string());
            }
            let labels: Labels = if self.keep_name {
                s.labels
            } else {
                into_without_name(s.labels)
            };
            out.push(StepSeries::new(labels, points));
        }
        Ok(out)
    }
}

/// A queue of consecutive buckets whose combined summary is known at all times: the newer
/// half keeps its running summary, the older half the summary of each element with all newer
/// ones of that half, so popping the oldest and reading the total are O(1) (amortised).
#[derive(Debug, Default)]
pub(crate) struct Sliding {
    /// Older half: suffix summaries, the last one (the oldest element's) covering all of it.
    older: Vec<Bucket>,
    /// Newer half, in order, and their running summary.
    newer: Vec<Bucket>,
    newer_total: Option<Bucket>,
}

impl Sliding {
    /// Adds a bucket later than every one held.
    pub(crate) fn push(&mut self, b: Bucket) {
        self.newer.push(b);
        match &mut self.newer_total {
            Some(t) => t.append(&b),
            None => self.newer_total = Some(b),
        }
    }

    /// Drops the oldest bucket held.
    pub(crate) fn pop(&mut self) {
        if self.older.is_empty() {
            let mut later: Option<Bucket> = None;
            while let Some(mut b) = self.newer.pop() {
                if let Some(l) = later {
                    b.append(&l);
                }
                self.older.push(b);
                later = Some(b);
            }
            self.newer_total = None;
        }
        self.older.pop();
    }

    /// The summary of every bucket held, oldest first.
    pub(crate) fn total(&self) -> Option<Bucket> {
        match (self.older.last(), &self.newer_total) {
            (Some(o), Some(n)) => {
                let mut t = *o;
                t.append(n);
                Some(t)
            }
            (Some(o), None) => Some(*o),
            (None, n) => *n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_storage::rollup::{Resolution, buckets_of};
    use tributary_storage::types::Sample;

    #[test]
    fn the_sliding_total_is_the_summary_of_the_held_buckets() {
        // A counter with resets, one sample a minute over 10 hours of 5-minute buckets.
        let samples: Vec<Sample> = (1..=600)
            .map(|i| Sample::new(i * 60_000, f64::from((i * 7 % 93) as u32)))
            .collect();
        let buckets = buckets_of(&samples, Resolution::FiveMinutes);
        let mut sliding = Sliding::default();
        let width = 12; // one hour
        for (i, b) in buckets.iter().enumerate() {
            sliding.push(*b);
            if i >= width {
                sliding.pop();
            }
            let from = i.saturating_sub(width - 1);
            let mut want = buckets[from];
            for later in &buckets[from + 1..=i] {
                want.append(later);
            }
            assert_eq!(sliding.total(), Some(want), "window ending at bucket {i}");
        }
        let mut empty = Sliding::default();
        empty.push(buckets[0]);
        empty.pop();
        assert_eq!(empty.total(), None);
    }
}
