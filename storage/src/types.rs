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
///
/// Packed: every name and value back to back in one string, with where each ends in a second
/// allocation. The head holds one label set per series for as long as the series lives, and as
/// owned `(String, String)` pairs a typical Kubernetes series (nine labels, ~220 bytes of text)
/// took ~800 bytes in ~20 allocations; packed it takes ~350 in two. Equality and order are
/// those of the label pairs in name order, as before; `Hash` hashes the packed form.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// `name0 value0 name1 value1 …`, no separators.
    text: Box<str>,
    /// Where each name and value ends in `text`: `ends[2i]` is label `i`'s name's end,
    /// `ends[2i + 1]` its value's.
    ends: Box<[u32]>,
}

/// One label of a [`Labels`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelRef<'a> {
    /// The label name.
    pub name: &'a str,
    /// The label value.
    pub value: &'a str,
}

impl From<LabelRef<'_>> for Label {
    fn from(l: LabelRef<'_>) -> Self {
        Label::new(l.name, l.value)
    }
}

/// The labels of a [`Labels`] in name order.
#[derive(Clone, Debug)]
pub struct LabelsIter<'a> {
    labels: &'a Labels,
    next: std::ops::Range<usize>,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        self.next.next().map(|i| self.labels.at(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.next.size_hint()
    }
}

impl ExactSizeIterator for LabelsIter<'_> {}

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
        Self::from_sorted(labels)
    }

    /// Builds from pairs the caller guarantees are sorted, unique and non-empty (checked in debug builds).
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        Self::from_sorted_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// Builds from borrowed pairs the caller guarantees are sorted, unique and non-empty
    /// (checked in debug builds).
    pub fn from_sorted_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let (mut count, mut len) = (0, 0);
        for (n, v) in pairs.clone() {
            count += 1;
            len += n.len() + v.len();
        }
        let mut text = String::with_capacity(len);
        let mut ends = Vec::with_capacity(2 * count);
        // Every protocol caps a label set far below 4 GiB; past it an end would wrap.
        assert!(u32::try_from(len).is_ok(), "a label set of {len} bytes");
        for (n, v) in pairs {
            debug_assert!(!v.is_empty(), "empty label value");
            text.push_str(n);
            ends.push(text.len() as u32);
            text.push_str(v);
            ends.push(text.len() as u32);
        }
        let l = Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        };
        debug_assert!(
            l.iter().zip(l.iter().skip(1)).all(|(a, b)| a.name < b.name),
            "labels not sorted/unique"
        );
        l
    }

    /// Convenience for tests and literals: `Labels::from_pairs(&[("__name__", "up"), ("job", "x")])`.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self::new(pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect())
    }

    /// Label `i` (in name order); `i < len()`.
    fn at(&self, i: usize) -> LabelRef<'_> {
        let (start, name, value) = self.bounds(i);
        LabelRef {
            name: &self.text[start..name],
            value: &self.text[name..value],
        }
    }

    /// Where label `i`'s name starts, where it ends (its value starts) and where its value ends
    /// in `text`; `i < len()`. The one reading of the `ends` layout.
    fn bounds(&self, i: usize) -> (usize, usize, usize) {
        let start = if i == 0 { 0 } else { self.ends[2 * i - 1] as usize };
        (start, self.ends[2 * i] as usize, self.ends[2 * i + 1] as usize)
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).ok().map(|i| self.at(i).value)
    }

    /// Label `name`'s index, or where it would go (a binary search).
    fn position(&self, name: &str) -> Result<usize, usize> {
        // `__name__`, what the engine asks for most, sorts before every lower-case name, so it
        // is usually first: one comparison, where the search touches several names.
        if self.is_empty() {
            return Err(0);
        }
        match self.at(0).name.cmp(name) {
            std::cmp::Ordering::Equal => return Ok(0),
            std::cmp::Ordering::Greater => return Err(0),
            std::cmp::Ordering::Less => {}
        }
        let (mut lo, mut hi) = (1, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at(mid).name.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(mid),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Err(lo)
    }

    /// The `__name__` label, if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// The labels in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            labels: self,
            next: 0..self.len(),
        }
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// No labels at all.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Only the labels `keep` keeps, in one copy (no string allocated on its own).
    pub fn filtered(&self, keep: impl Fn(&LabelRef<'_>) -> bool) -> Labels {
        Self::from_sorted_pairs(self.iter().filter(|l| keep(l)).map(|l| (l.name, l.value)))
    }

    /// The bytes the label set holds on the heap (its text and its ends).
    pub fn heap_bytes(&self) -> usize {
        self.text.len() + std::mem::size_of_val(&*self.ends)
    }

    /// The labels, sorted by name, owned.
    pub fn into_vec(self) -> Vec<Label> {
        self.iter().map(Label::from).collect()
    }

    /// Sets (or, with an empty value, removes) one label.
    /// Decided before anything is copied: removing an absent label or setting the value a
    /// label has already costs nothing (what a loop over several names mostly does).
    pub fn set(&mut self, name: &str, value: &str) {
        // The labels before the changed place, the new label if any, and those after it.
        let (at, skip) = match self.position(name) {
            Ok(i) if self.at(i).value == value => return,
            Ok(i) => (i, 1),
            Err(_) if value.is_empty() => return,
            Err(i) => (i, 0),
        };
        let new = (!value.is_empty()).then_some((name, value));
        fn pair(l: LabelRef<'_>) -> (&str, &str) {
            (l.name, l.value)
        }
        let pairs = self
            .iter()
            .take(at)
            .map(pair)
            .chain(new)
            .chain(self.iter().skip(at + skip).map(pair));
        let set = Self::from_sorted_pairs(pairs);
        *self = set;
    }

    /// Removes one label, if present.
    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// The stable 64-bit identity of this label set (also stored in Parquet as `series_id`).
    pub fn series_id(&self) -> SeriesId {
        SeriesId::of(self.byte_pairs())
    }

    /// The (name, value) pairs as bytes: what the hot comparisons and hashes walk, without the
    /// `str` slicing's boundary checks.
    fn byte_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let text = self.text.as_bytes();
        (0..self.len()).map(move |i| {
            let (start, name, value) = self.bounds(i);
            (&text[start..name], &text[name..value])
        })
    }
}

/// The order of the label pairs in name order (what `Vec<Label>`'s derived order was): label by
/// label, name then value, a set that is a prefix of another first. The engine sorts every
/// selector's answer by it (a querier each ingester's too), so it compares bytes in place rather
/// than through the iterator's `str` slices.
impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // `str` orders by its bytes.
        self.byte_pairs().cmp(other.byte_pairs())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Hashes the packed form as it is (equal label sets pack alike). In-memory maps only: what is
/// stored is [`Labels::series_id`].
impl std::hash::Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
        self.ends.hash(state);
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
        for l in self.iter().filter(|l| l.name != METRIC_NAME) {
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
    type Item = LabelRef<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The stable identity of a label set: xxh3-64 over `name 0xff value 0xff` for each label in
/// name order. Stored on disk, so the function must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub u64);

impl SeriesId {
    /// Hashes `(name, value)` pairs (text or its bytes) that are already in name order.
    pub fn of<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for (n, v) in pairs {
            h.write(n.as_ref());
            h.write_u8(0xff);
            h.write(v.as_ref());
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
        assert_eq!(l.clone().into_vec(), [Label::new("a", "3"), Label::new("b", "1")]);
        assert_eq!(l.get("a"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    /// A label set as the plain sorted `Vec<Label>` the packed form replaced: what every answer
    /// of the packed form is checked against.
    fn plain(pairs: &[(String, String)]) -> Vec<Label> {
        // Empty values are dropped first; of the rest, the last value of a name wins.
        let mut v: Vec<Label> = Vec::new();
        for (n, val) in pairs.iter().filter(|(_, val)| !val.is_empty()) {
            v.retain(|l| &l.name != n);
            v.push(Label::new(n.clone(), val.clone()));
        }
        v.sort();
        v
    }

    fn hash_of<T: std::hash::Hash>(t: &T) -> u64 {
        use std::hash::BuildHasher;
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(t)
    }

    proptest::proptest! {
        /// Names and values from one tiny alphabet, the second set a variation of the first:
        /// packed texts alike for long runs, or alike with other bounds (`a`=`bb` against
        /// `ab`=`b`), still order as the pairs do.
        #[test]
        fn order_is_the_pairs_order_when_texts_run_alike(
            a in proptest::collection::vec(("[ab]{1,3}", "[ab]{1,3}"), 0..6),
            edit in proptest::collection::vec(("[ab]{1,3}", "[ab]{1,3}"), 0..3),
            keep in 0usize..6,
        ) {
            let mut b = a.clone();
            b.truncate(keep);
            b.extend(edit);
            let (pa, pb) = (plain(&a), plain(&b));
            let build = |p: &[Label]| Labels::new(p.to_vec());
            let (la, lb) = (build(&pa), build(&pb));
            proptest::prop_assert_eq!(la.cmp(&lb), pa.cmp(&pb));
            proptest::prop_assert_eq!(lb.cmp(&la), pb.cmp(&pa));
            proptest::prop_assert_eq!(la.cmp(&la.clone()), std::cmp::Ordering::Equal);
        }

        #[test]
        fn packed_labels_answer_as_the_plain_pairs_do(
            a in proptest::collection::vec(("[a-d_]{1,3}", "[xé0-9]{0,3}"), 0..8),
            b in proptest::collection::vec(("[a-d_]{1,3}", "[xé0-9]{0,3}"), 0..8),
            probe in "[a-d_]{1,3}",
            value in "[xé0-9]{0,3}",
        ) {
            let (pa, pb) = (plain(&a), plain(&b));
            let build = |p: &[(String, String)]| {
                Labels::new(p.iter().map(|(n, v)| Label::new(n.clone(), v.clone())).collect())
            };
            let (la, lb) = (build(&a), build(&b));
            proptest::prop_assert_eq!(la.clone().into_vec(), pa.clone());
            proptest::prop_assert_eq!(la.len(), pa.len());
            for l in &pa {
                proptest::prop_assert_eq!(la.get(&l.name), Some(l.value.as_str()));
            }
            let want = pa.iter().find(|l| l.name == probe).map(|l| l.value.as_str());
            proptest::prop_assert_eq!(la.get(&probe), want);
            // Order and equality are the plain pairs' own; equal sets hash alike.
            proptest::prop_assert_eq!(la.cmp(&lb), pa.cmp(&pb));
            proptest::prop_assert_eq!(la.iter().cmp(lb.iter()), pa.cmp(&pb));
            proptest::prop_assert_eq!(la == lb, pa == pb);
            proptest::prop_assert_eq!(hash_of(&la), hash_of(&build(&a)));
            if la == lb {
                proptest::prop_assert_eq!(hash_of(&la), hash_of(&lb));
            }
            proptest::prop_assert_eq!(
                la.series_id(),
                SeriesId::of(pa.iter().map(|l| (l.name.as_str(), l.value.as_str())))
            );
            // `set` (and removal by an empty value) as on the plain pairs.
            let mut set = la.clone();
            set.set(&probe, &value);
            let mut with: Vec<(String, String)> = pa.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            with.retain(|(n, _)| *n != probe);
            with.push((probe.clone(), value.clone()));
            proptest::prop_assert_eq!(set, build(&with));
        }
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
