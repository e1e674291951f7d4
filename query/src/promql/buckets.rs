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
        // A bucket lies in the windows of at most this many steps.
        let steps_per_bucket = match self.steps.interval {
            i if i > 0 && self.at.is_none() => (self.range_ms / i).unsigned_abs() as usize + 1,
            _ => self.steps.count,
        };
        for s in series {
            guard.check()?;
            let mut points = Vec::with_capacity(self.steps.count.min(s.buckets.len().saturating_mul(steps_per_bucket)));
            let mut window = Sliding::new(&s.buckets);
            for step in 0..self.steps.count {
                let end = self.at.unwrap_or(self.steps.time(step)).saturating_sub(self.offset_ms);
                let w = Window {
                    end,
                    range_ms: self.range_ms,
                };
                // Window ends never decrease, except with `@`, where they are all equal.
                while window.next().is_some_and(|b| b.timestamp <= end) {
                    window.push();
                }
                while window.oldest().is_some_and(|b| b.timestamp <= w.start()) {
                    window.pop();
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

/// A window over consecutive buckets of a series whose combined summary is known at all
/// times: the newer half keeps its running summary, the older half the summary of each element
/// with all newer ones of that half, so popping the oldest and reading the total are O(1)
/// (amortised). The buckets stay where they are: the halves are index ranges of them (the
/// newer half is copied only when it becomes the older one).
#[derive(Debug)]
pub(crate) struct Sliding<'a> {
    buckets: &'a [Bucket],
    /// Older half, `buckets[lo..mid]`: suffix summaries, the last one (the oldest element's)
    /// covering all of it.
    older: Vec<Bucket>,
    lo: usize,
    /// Newer half, `buckets[mid..hi]`, and its running summary.
    mid: usize,
    hi: usize,
    newer_total: Option<Bucket>,
}

impl<'a> Sliding<'a> {
    /// An empty window at the start of `buckets`.
    pub(crate) fn new(buckets: &'a [Bucket]) -> Self {
        Self {
            buckets,
            older: Vec::new(),
            lo: 0,
            mid: 0,
            hi: 0,
            newer_total: None,
        }
    }

    /// The bucket [`Sliding::push`] would add.
    pub(crate) fn next(&self) -> Option<&'a Bucket> {
        self.buckets.get(self.hi)
    }

    /// The oldest bucket held.
    pub(crate) fn oldest(&self) -> Option<&'a Bucket> {
        (self.lo < self.hi).then(|| &self.buckets[self.lo])
    }

    /// Adds the next bucket.
    pub(crate) fn push(&mut self) {
        let b = &self.buckets[self.hi];
        self.hi += 1;
        match &mut self.newer_total {
            Some(t) => t.append(b),
            None => self.newer_total = Some(*b),
        }
    }

    /// Drops the oldest bucket held.
    pub(crate) fn pop(&mut self) {
        if self.lo == self.hi {
            return;
        }
        if self.older.is_empty() {
            for b in self.buckets[self.mid..self.hi].iter().rev() {
                let mut suffix = *b;
                if let Some(later) = self.older.last() {
                    suffix.append(later);
                }
                self.older.push(suffix);
            }
            self.mid = self.hi;
            self.newer_total = None;
        }
        self.older.pop();
        self.lo += 1;
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
        let mut sliding = Sliding::new(&buckets);
        let width = 12; // one hour
        for i in 0..buckets.len() {
            sliding.push();
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
        let mut empty = Sliding::new(&buckets[..1]);
        empty.push();
        empty.pop();
        assert_eq!(empty.total(), None);
    }
}
