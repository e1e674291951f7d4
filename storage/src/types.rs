//! Domain types shared by `ingest` and `query`: a series' labels, its samples, matchers and time ranges.
//!
//! These are Tributary's own types: protocol types never cross into `storage`, and `query` sees only these.

use std::fmt;
use std::hash::Hasher;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, as Prometheus counts them.
pub type TimestampMs = i64;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";
/// The label every stored series and log stream carries: the cluster it came from.
pub const CLUSTER: &str = "cluster";
/// Where a sender's own `cluster` label goes when its token names another cluster
/// (Prometheus's `honor_labels: false` convention, `exported_` prefix).
pub const EXPORTED_CLUSTER: &str = "exported_cluster";

/// The bit pattern Prometheus uses for a staleness marker. It is a NaN, so it must be compared
/// by bits, never by value; it survives the WAL and Parquet unchanged.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is Prometheus's staleness marker (not merely any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One label: a name and a non-empty value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value.
    pub value: String,
}

impl Label {
    /// A label `name=value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A series' identity.
///
/// Invariants (every constructor keeps them): sorted by name, names unique, no empty values
/// (an empty value means "no such label", as in Prometheus).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds a label set from any pairs: sorts them, drops empty values, and keeps the last
    /// value of a repeated name.
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        // Keep the last of equal names: reverse-dedup keeps the first of each run.
        labels.reverse();
        labels.dedup_by(|a, b| a.name == b.name);
        labels.reverse();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        Self(labels)
    }

    /// Builds from pairs the caller guarantees are sorted, unique and non-empty (checked in debug builds).
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(
            labels.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted/unique"
        );
        debug_assert!(labels.iter().all(|l| !l.value.is_empty()), "empty label value");
        Self(labels)
    }

    /// Convenience for tests and literals: `Labels::from_pairs(&[("__name__", "up"), ("job", "x")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        // `__name__`, what the engine asks for most, sorts before every lower-case name, so it
        // is usually first: one comparison, where the search touches several names (each a
        // likely cache miss when many series are scanned).
        if let Some(first) = self.0.first()
            && first.name == name
        {
            return Some(first.value.as_str());
        }
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The `__name__` label, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No labels at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// The labels, sorted by name, owned.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// Sets (or, with an empty value, removes) one label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    /// Removes one label, if present.
    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// The stable 64-bit identity of this label set (also stored in Parquet as `series_id`).
    pub fn series_id(&self) -> SeriesId {
        SeriesId::of(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prometheus's text form: `name{a="b", c="d"}`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.metric_name() {
            f.write_str(n)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The stable identity of a label set: xxh3-64 over `name 0xff value 0xff` for each label in
/// name order. Stored on disk, so the function must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub u64);

impl SeriesId {
    /// Hashes `(name, value)` pairs that are already in name order.
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for (n, v) in pairs {
            h.write(n.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        Self(h.finish())
    }
}

/// A set of [`SeriesId`]s, hashed by the id itself: an id is a hash already, so a lookup costs
/// no hashing (what reads in parts test every candidate series against).
pub type SeriesIdSet = std::collections::HashSet<SeriesId, nohash_hasher::BuildNoHashHasher<SeriesId>>;

/// A [`SeriesId`] hashes as its one `u64`, which is what [`SeriesIdSet`]'s hasher needs.
impl nohash_hasher::IsEnabled for SeriesId {}

/// One float sample. `value` keeps its exact bits (stale markers included).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub timestamp: TimestampMs,
    /// The value, exact bits (a staleness marker stays one).
    pub value: f64,
}

impl Sample {
    /// A sample at `timestamp`.
    pub fn new(timestamp: TimestampMs, value: f64) -> Self {
        Self { timestamp, value }
    }
}

/// A series with its samples, sorted by timestamp with unique timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples.
    pub samples: Vec<Sample>,
}

impl Series {
    /// A series of these samples.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Self {
        Self { labels, samples }
    }
}

/// Sorts samples by timestamp and keeps one sample per timestamp: the last one given, so a
/// client retry that resends a sample can never produce two answers for one instant.
pub fn sort_dedup_samples(samples: &mut Vec<Sample>) {
    if samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp) {
        return;
    }
    // Stable sort keeps arrival order within a timestamp; keep the last arrival.
    samples.sort_by_key(|s| s.timestamp);
    samples.reverse();
    samples.dedup_by_key(|s| s.timestamp);
    samples.reverse();
    samples.sort_by_key(|s| s.timestamp);
}

/// A closed interval of milliseconds: both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    /// First millisecond, included.
    pub start: TimestampMs,
    /// Last millisecond, included.
    pub end: TimestampMs,
}

impl TimeRange {
    /// Every representable time.
    pub const ALL: TimeRange = TimeRange {
        start: i64::MIN,
        end: i64::MAX,
    };

    /// `[start, end]`.
    pub fn new(start: TimestampMs, end: TimestampMs) -> Self {
        Self { start, end }
    }

    /// Does the range hold `t`?
    pub fn contains(&self, t: TimestampMs) -> bool {
        self.start <= t && t <= self.end
    }

    /// Do the two ranges share a millisecond?
    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// The four PromQL/LogQL matcher kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (anchored regex)
    RegexMatch,
    /// `!~` (anchored regex)
    RegexNoMatch,
}

/// A label matcher. A missing label matches as the empty string, as in Prometheus.
/// Regexes are fully anchored and `.` matches newlines (Prometheus 3 semantics).
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The operator.
    pub op: MatchOp,
    /// The value or regex.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// A matcher; fails on an invalid regex.
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(Regex::new(&format!("^(?s:{value})$"))?),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// `name="value"`; never fails.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// Does a label value (`""` when the label is missing) satisfy this matcher?
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Does this matcher accept a series with these labels?
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// True when the matcher selects exactly one value of its label (usable for pruning).
    pub fn exact_value(&self) -> Option<&str> {
        (self.op == MatchOp::Equal && !self.value.is_empty()).then_some(self.value.as_str())
    }
}

/// True when every matcher accepts `labels`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_unique_and_drop_empty_values() {
        let l = Labels::new(vec![
            Label::new("b", "1"),
            Label::new("a", "2"),
            Label::new("c", ""),
            Label::new("a", "3"),
        ]);
        assert_eq!(l.as_slice(), &[Label::new("a", "3"), Label::new("b", "1")]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn series_id_depends_on_every_byte_and_is_stable() {
        let a = Labels::from_pairs(&[("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs(&[("__name__", "up"), ("job", "y")]);
        assert_ne!(a.series_id(), b.series_id());
        // Ambiguity across boundaries must not collide: ("ab","c") vs ("a","bc").
        assert_ne!(SeriesId::of([("ab", "c")]), SeriesId::of([("a", "bc")]));
        // Stored on disk: pin the value.
        assert_eq!(SeriesId::of([("a", "b")]), SeriesId::of([("a", "b")]));
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("job", "api\nx")]);
        assert!(
            Matcher::new(MatchOp::RegexMatch, "job", "api.x")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(
            !Matcher::new(MatchOp::RegexMatch, "job", "api")
                .unwrap()
                .matches_labels(&l)
        );
        assert!(Matcher::new(MatchOp::Equal, "missing", "").unwrap().matches_labels(&l));
        assert!(Matcher::new(MatchOp::NotEqual, "job", "").unwrap().matches_labels(&l));
        assert!(Matcher::new(MatchOp::RegexNoMatch, "job", "a.*").is_ok_and(|m| !m.matches_labels(&l)));
    }

    #[test]
    fn dedup_keeps_the_last_sample_per_timestamp() {
        let mut s = vec![Sample::new(2, 1.0), Sample::new(1, 1.0), Sample::new(2, 5.0)];
        sort_dedup_samples(&mut s);
        assert_eq!(s, vec![Sample::new(1, 1.0), Sample::new(2, 5.0)]);
    }

    #[test]
    fn stale_marker_is_recognised_by_bits() {
        assert!(is_stale_nan(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_nan(f64::NAN));
    }
}
