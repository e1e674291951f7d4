//! One shard of the head's active part: its series by id, and their postings by metric name
//! and `cluster` value.

use std::collections::HashMap;
use std::sync::Arc;

use nohash_hasher::BuildNoHashHasher;

use super::chunks::SampleChunks;
use tributary_storage::read::SelectRequest;
use tributary_storage::types::{CLUSTER, Labels, METRIC_NAME, Matcher, Sample, SeriesId, TimeRange, TimestampMs};

pub(super) type IdMap<V> = HashMap<u64, V, BuildNoHashHasher<u64>>;

#[derive(Debug)]
pub(super) struct MemSeries {
    pub(super) labels: Arc<Labels>,
    /// In arrival order; `sorted` says whether that is time order with unique timestamps.
    pub(super) samples: SampleChunks,
    pub(super) sorted: bool,
    pub(super) min_t: TimestampMs,
    pub(super) max_t: TimestampMs,
}

impl MemSeries {
    pub(super) fn new(labels: Arc<Labels>) -> Self {
        Self {
            labels,
            samples: SampleChunks::default(),
            sorted: true,
            min_t: TimestampMs::MAX,
            max_t: TimestampMs::MIN,
        }
    }

    pub(super) fn push(&mut self, s: &[Sample]) {
        for x in s {
            if x.timestamp <= self.max_t {
                self.sorted = false;
            }
            self.min_t = self.min_t.min(x.timestamp);
            self.max_t = self.max_t.max(x.timestamp);
        }
        self.samples.push(s);
    }

    /// The samples of `req`'s range ([`MemSeries::read_sorted`]); with its `newest_only` hint,
    /// the newest alone when the series arrived in order and that sample is in range: the
    /// encoder holds it, so nothing is decoded (an instant query reads ~20 samples a series
    /// otherwise, from the start of their chunk).
    pub(super) fn read(&self, req: &SelectRequest) -> Vec<Sample> {
        if req.newest_only && self.sorted && req.range.contains(self.max_t) {
            return self.samples.last().into_iter().collect();
        }
        self.read_sorted(req.range)
    }

    /// The samples in `range`, sorted by time, one per timestamp (the later arrival wins).
    pub(super) fn read_sorted(&self, range: TimeRange) -> Vec<Sample> {
        let mut out = Vec::new();
        self.samples.read(range, &mut out);
        if !self.sorted {
            tributary_storage::types::sort_dedup_samples(&mut out);
        }
        out
    }

    /// Samples in `range` (see [`SampleChunks::count_in`]).
    pub(super) fn count_in(&self, range: TimeRange) -> usize {
        self.samples.count_in(range)
    }

    fn same_labels(&self, pairs: &[(&str, &str)]) -> bool {
        let l = &self.labels;
        l.len() == pairs.len() && l.iter().zip(pairs).all(|(a, (n, v))| a.name == *n && a.value == *v)
    }

    pub(super) fn overlaps(&self, r: &TimeRange) -> bool {
        !self.samples.is_empty() && self.min_t <= r.end && r.start <= self.max_t
    }
}

/// A flush reads a frozen series a file part at a time, decoding only the chunks the part's
/// range meets.
impl tributary_storage::SeriesInput for MemSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn samples_in(&self, range: TimeRange) -> std::borrow::Cow<'_, [Sample]> {
        std::borrow::Cow::Owned(self.read_sorted(range))
    }
}

#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) series: IdMap<MemSeries>,
    /// Series whose 64-bit hash collided with another label set; searched linearly (never in practice).
    pub(super) collided: Vec<MemSeries>,
    /// Metric name → `cluster` value → ids: candidates for a selector with an exact name, and
    /// its `cluster` matchers decided once per cluster instead of once per series.
    pub(super) by_metric: HashMap<String, HashMap<String, Vec<u64>>>,
}

impl Shard {
    /// The series with these labels, created if new. The labels are built only for a new series.
    pub(super) fn get_or_create(&mut self, id: SeriesId, pairs: &[(&str, &str)]) -> &mut MemSeries {
        let build = || Arc::new(Labels::from_sorted_pairs(pairs.iter().copied()));
        if !self.series.contains_key(&id.0) {
            return self.insert(id, build());
        }
        if self.series.get(&id.0).is_some_and(|s| s.same_labels(pairs)) {
            return self.series.get_mut(&id.0).expect("present");
        }
        self.collided_entry(pairs.len(), |s| s.same_labels(pairs), build)
    }

    /// The series with labels the raw index already holds.
    pub(super) fn get_or_create_known(&mut self, id: SeriesId, labels: &Arc<Labels>) -> &mut MemSeries {
        if !self.series.contains_key(&id.0) {
            return self.insert(id, labels.clone());
        }
        let same = |s: &MemSeries| Arc::ptr_eq(&s.labels, labels) || *s.labels == **labels;
        if self.series.get(&id.0).is_some_and(same) {
            return self.series.get_mut(&id.0).expect("present");
        }
        self.collided_entry(labels.len(), same, || labels.clone())
    }

    /// Reads the series under `ids` back to back before they are appended to: the look-ups
    /// do not depend on each other, so the CPU overlaps their cache misses, where the appends,
    /// one series at a time, each waited for their own (most of an append's time).
    pub(super) fn touch(&self, ids: impl Iterator<Item = SeriesId>) {
        let mut seen = 0usize;
        for id in ids {
            if let Some(s) = self.series.get(&id.0) {
                seen ^= s.samples.len();
            }
        }
        std::hint::black_box(seen);
    }

    /// The series under `id` whose shared label set is at address `labels` (a
    /// [`super::input::Placement`]); `None` when the series there is another one or none.
    pub(super) fn placed(&mut self, id: SeriesId, labels: usize) -> Option<&mut MemSeries> {
        self.series
            .get_mut(&id.0)
            .filter(|s| Arc::as_ptr(&s.labels).addr() == labels)
    }

    fn insert(&mut self, id: SeriesId, labels: Arc<Labels>) -> &mut MemSeries {
        if let Some(name) = labels.metric_name() {
            let cluster = labels.get(CLUSTER).unwrap_or("");
            let by_cluster = self.by_metric.entry(name.to_string()).or_default();
            match by_cluster.get_mut(cluster) {
                Some(ids) => ids.push(id.0),
                None => {
                    by_cluster.insert(cluster.to_string(), vec![id.0]);
                }
            }
        }
        self.series.entry(id.0).or_insert(MemSeries::new(labels))
    }

    /// A series whose 64-bit id collided with another label set's (never seen in practice).
    fn collided_entry(
        &mut self,
        _len: usize,
        same: impl Fn(&MemSeries) -> bool,
        build: impl FnOnce() -> Arc<Labels>,
    ) -> &mut MemSeries {
        match self.collided.iter().position(same) {
            Some(i) => &mut self.collided[i],
            None => {
                self.collided.push(MemSeries::new(build()));
                self.collided.last_mut().expect("just pushed")
            }
        }
    }

    /// The series [`Shard::for_each_candidate`] would visit for `lookup`.
    pub(super) fn candidates(&self, lookup: &Lookup) -> usize {
        let listed = match lookup.name {
            Some(name) => self.by_metric.get(name).map_or(0, |c| c.values().map(Vec::len).sum()),
            None => self.series.len(),
        };
        listed + self.collided.len()
    }

    /// Calls `f` with every series that may match, and the matchers it must still check. With
    /// an exact metric name the candidates come from the name's postings, only of clusters
    /// every `cluster` matcher accepts, and those matchers are not asked again per series.
    pub(super) fn for_each_candidate(&self, lookup: &Lookup, mut f: impl FnMut(&MemSeries, &[&Matcher])) {
        match lookup.name {
            Some(name) => {
                for (cluster, ids) in self.by_metric.get(name).into_iter().flatten() {
                    if !lookup.clusters.iter().all(|m| m.matches(cluster)) {
                        continue;
                    }
                    for id in ids {
                        if let Some(s) = self.series.get(id) {
                            f(s, &lookup.rest);
                        }
                    }
                }
            }
            None => self.series.values().for_each(|s| f(s, &lookup.all)),
        }
        self.collided.iter().for_each(|s| f(s, &lookup.all));
    }
}

/// A selector split for the shards' postings, once per select: the exact metric name to look
/// up (if any), the `cluster` matchers decided per cluster, and the matchers left for each
/// series (`rest` with postings, `all` without).
#[derive(Debug)]
pub(super) struct Lookup<'m> {
    name: Option<&'m str>,
    clusters: Vec<&'m Matcher>,
    rest: Vec<&'m Matcher>,
    all: Vec<&'m Matcher>,
}

impl<'m> Lookup<'m> {
    pub(super) fn new(matchers: &'m [Matcher]) -> Self {
        let exact = matchers
            .iter()
            .position(|m| m.name == METRIC_NAME && m.exact_value().is_some());
        let rest = matchers
            .iter()
            .enumerate()
            .filter(|&(j, m)| Some(j) != exact && m.name != CLUSTER)
            .map(|(_, m)| m)
            .collect();
        Self {
            name: exact.and_then(|i| matchers[i].exact_value()),
            clusters: matchers.iter().filter(|m| m.name == CLUSTER).collect(),
            rest,
            all: matchers.iter().collect(),
        }
    }
}
