//! Per-file label listings: each metrics file's distinct label names and values.
//!
//! Files are immutable, so a file's listing never goes stale: label names and values requests
//! whose matchers are on `cluster` or on the listed label only answer from it, without visiting
//! every series. A listing covers the whole file, so it is as coarse in time as the file's key
//! span (the [`Source`](super::Source) contract allows that for listings). It is derived from the
//! file's series table and cached beside it ([`crate::table::file_cache`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::types::Matcher;

/// One file's distinct labels, sorted, so that the listings of many files merge without
/// hashing ([`super::super::sorted_union`]).
#[derive(Debug, Default)]
pub(super) struct FileLabels {
    /// Label name (in order) → the sorted distinct non-empty values rows of the file hold
    /// (`__name__` and `cluster` included). An empty value is no label, so it is not listed.
    values: BTreeMap<String, Vec<String>>,
    /// Distinct values of the `cluster` column, `""` included when present: what cluster
    /// matchers are run on.
    clusters: Vec<String>,
}

impl FileLabels {
    pub(super) fn new(values: HashMap<String, HashSet<String>>, clusters: HashSet<String>) -> Self {
        let sorted = |set: HashSet<String>| {
            let mut v: Vec<String> = set.into_iter().collect();
            v.sort_unstable();
            v
        };
        Self {
            values: values.into_iter().map(|(n, v)| (n, sorted(v))).collect(),
            clusters: clusters.into_iter().collect(),
        }
    }

    /// Approximate heap bytes, for the cache budget.
    pub(super) fn bytes(&self) -> usize {
        const STRING: usize = std::mem::size_of::<String>();
        let strings = |v: &[String]| v.iter().map(|s| s.len() + STRING).sum::<usize>();
        self.values
            .iter()
            .map(|(n, v)| n.len() + 2 * STRING + strings(v))
            .sum::<usize>()
            + strings(&self.clusters)
    }

    /// Whether `matchers` (all on `cluster`) accept every row of the file (`Some(true)`), none
    /// (`Some(false)`), or some only (`None`: the listing cannot answer for the file).
    pub(super) fn clusters_match(&self, matchers: &[&Matcher]) -> Option<bool> {
        let accepted = self
            .clusters
            .iter()
            .filter(|c| matchers.iter().all(|m| m.matches(c)))
            .count();
        match accepted {
            0 => Some(false),
            n if n == self.clusters.len() => Some(true),
            _ => None,
        }
    }

    /// The label names, sorted.
    pub(super) fn names(&self) -> Vec<&str> {
        self.values.keys().map(String::as_str).collect()
    }

    /// The values of `name` that every one of `matchers` (all on `name`) accepts, sorted.
    pub(super) fn values(&self, name: &str, matchers: &[&Matcher]) -> Vec<&str> {
        self.values
            .get(name)
            .into_iter()
            .flatten()
            .filter(|v| matchers.iter().all(|m| m.matches(v)))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MatchOp;

    fn labels(pairs: &[(&str, &[&str])], clusters: &[&str]) -> FileLabels {
        let values = pairs
            .iter()
            .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect();
        FileLabels::new(values, clusters.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn listings_filter_by_matchers_and_clusters() {
        let l = labels(&[("pod", &["c", "a", "b"]), ("cluster", &["x"])], &["x"]);
        let m = Matcher::new(MatchOp::RegexMatch, "pod", "a|c").unwrap();
        assert_eq!(l.values("pod", &[&m]), ["a", "c"]);
        assert_eq!(l.values("pod", &[]), ["a", "b", "c"]);
        assert_eq!(l.names(), ["cluster", "pod"]);
        let x = Matcher::equal("cluster", "x");
        let y = Matcher::equal("cluster", "y");
        assert_eq!(l.clusters_match(&[&x]), Some(true));
        assert_eq!(l.clusters_match(&[&y]), Some(false));
        assert_eq!(l.clusters_match(&[]), Some(true));
        let two = labels(&[], &["x", "y"]);
        assert_eq!(two.clusters_match(&[&x]), None);
    }
}
