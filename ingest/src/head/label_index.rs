//! The head's label index: label name → value → number of series holding it, with the time span
//! those series' samples cover.
//!
//! One index for the active part (kept up to date as series get their first sample), handed
//! to the frozen block at the freeze. It answers label names and values without visiting
//! series, the way Prometheus answers them from its head's postings: every series of a block
//! whose span overlaps the request's range counts, even one whose own samples lie outside it
//! (the [`Source`](tributary_storage::read::Source) contract allows listings that coarse).
//! Series are never removed from the active part (a freeze takes all of it, index included), so
//! the counts only grow until then. One index rather than one per shard: a listing then visits
//! each distinct value once, not once per shard holding it.

use std::collections::HashMap;

use tributary_storage::types::{Labels, Matcher, TimeRange, TimestampMs};

/// See the module docs.
#[derive(Debug)]
pub(super) struct LabelIndex {
    names: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    min_t: TimestampMs,
    max_t: TimestampMs,
}

impl Default for LabelIndex {
    fn default() -> Self {
        Self {
            names: HashMap::new(),
            min_t: TimestampMs::MAX,
            max_t: TimestampMs::MIN,
        }
    }
}

impl LabelIndex {
    /// Counts a series that has just got its first sample. Allocates only for a name or value
    /// the index has not seen.
    pub(super) fn add(&mut self, labels: &Labels) {
        for l in labels {
            let values = match self.names.get_mut(l.name) {
                Some(v) => v,
                None => self.names.entry(l.name.into()).or_default(),
            };
            match values.get_mut(l.value) {
                Some(n) => *n += 1,
                None => {
                    values.insert(l.value.into(), 1);
                }
            }
        }
    }

    /// Widens the span to a series' samples (`min_t > max_t` for a series without samples).
    pub(super) fn cover(&mut self, min_t: TimestampMs, max_t: TimestampMs) {
        if min_t <= max_t {
            self.min_t = self.min_t.min(min_t);
            self.max_t = self.max_t.max(max_t);
        }
    }

    /// True when the span of all counted series' samples overlaps `range` (the index does not
    /// know each series' own span).
    pub(super) fn overlaps(&self, range: &TimeRange) -> bool {
        self.min_t <= self.max_t && self.min_t <= range.end && range.start <= self.max_t
    }

    /// Every label name, sorted.
    pub(super) fn names(&self) -> Vec<String> {
        sorted(self.names.keys().map(|n| n.to_string()).collect())
    }

    /// Every value of label `name` that all `matchers` (each on label `name`) accept, sorted.
    pub(super) fn values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(values) = self.names.get(name) else {
            return Vec::new();
        };
        sorted(
            values
                .keys()
                .filter(|v| matchers.iter().all(|m| m.matches(v)))
                .map(|v| v.to_string())
                .collect(),
        )
    }

    /// Series per value of label `name`.
    pub(super) fn counts(&self, name: &str) -> HashMap<String, u64> {
        self.names.get(name).map_or_else(HashMap::new, |values| {
            values.iter().map(|(v, n)| (v.to_string(), u64::from(*n))).collect()
        })
    }

    /// Every (name, value, count), sorted (tests compare indexes).
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(String, String, u32)> {
        let mut out: Vec<(String, String, u32)> = self
            .names
            .iter()
            .flat_map(|(n, vs)| vs.iter().map(move |(v, c)| (n.to_string(), v.to_string(), *c)))
            .collect();
        out.sort();
        out
    }

    #[cfg(test)]
    pub(super) fn span(&self) -> Option<(TimestampMs, TimestampMs)> {
        (self.min_t <= self.max_t).then_some((self.min_t, self.max_t))
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v
}
