//! The head: recently received samples, in memory, readable by the query engine.
//!
//! Writes land in the *active* part, sharded by series hash so concurrent requests rarely contend.
//! A flush *freezes* the active part into an immutable [`Frozen`] block, which stays readable
//! until its Parquet files are in the object store and registered, and is then dropped. So a
//! query always finds every acknowledged sample in the head, in Parquet, or in both (the query
//! engine drops the duplicate timestamps).
//!
//! Lookup is by a hash of the label bytes first ([`SeriesId`]); a label set is allocated only for
//! a series the head has not seen. Beyond that, the head indexes every series of the active part
//! by its *raw* key (the hash of its label bytes as they arrived, see
//! [`prom_remote_write::RawKey`]), so the decoder can skip validating and parsing labels it has
//! already accepted. The raw index is cleared at each freeze, which bounds it to the series of
//! one flush period; the ingester decodes and appends under one gate, so a freeze can never
//! clear a key between the decoder's lookup and the append.
//!
//! The active part and each frozen block also keep a label index (name → value → series
//! count, see `head/label_index.rs`), filled when a series gets its first sample, so label
//! names and values are listed without visiting series. Each shard lists its series by metric
//! name and `cluster` value (postings), so a selector with an exact name visits only that
//! metric's series, of the clusters its `cluster` matchers accept. A big select copies the
//! shards' series out on several threads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use nohash_hasher::BuildNoHashHasher;
use parking_lot::{Mutex, RwLock};
use tributary_storage::read::{Direction, LogRequest, LogSource, SelectRequest, SeriesSize, Source, sorted_union};
use tributary_storage::types::{
    CLUSTER, Label, Labels, METRIC_NAME, Matcher, Sample, Series, SeriesId, TimeRange, TimestampMs, matches_all,
    sort_dedup_samples,
};

use crate::decode::prom_remote_write::{self, KnownSeries, RawKey, WriteBatch};

mod label_index;
pub mod signals;

use label_index::LabelIndex;
use signals::ActiveSignals;
pub use signals::SignalBlock;
use tributary_storage::signals::{ExemplarSeries, LogRecord, MetricMetadata};

const SHARDS: usize = 16;
/// A select that may visit this many series of the active part copies them out on several
/// threads (below it, starting threads costs more than it saves).
const PARALLEL_SELECT_SERIES: usize = 4096;

type IdMap<V> = HashMap<u64, V, BuildNoHashHasher<u64>>;

#[derive(Debug)]
struct MemSeries {
    labels: Arc<Labels>,
    samples: Vec<Sample>,
    sorted: bool,
    min_t: TimestampMs,
    max_t: TimestampMs,
}

impl MemSeries {
    fn new(labels: Arc<Labels>) -> Self {
        Self {
            labels,
            samples: Vec::new(),
            sorted: true,
            min_t: TimestampMs::MAX,
            max_t: TimestampMs::MIN,
        }
    }

    fn push(&mut self, s: &[Sample]) {
        for x in s {
            if x.timestamp <= self.max_t {
                self.sorted = false;
            }
            self.min_t = self.min_t.min(x.timestamp);
            self.max_t = self.max_t.max(x.timestamp);
        }
        self.samples.extend_from_slice(s);
    }

    fn same_labels(&self, pairs: &[(&str, &str)]) -> bool {
        let l = self.labels.as_slice();
        l.len() == pairs.len() && l.iter().zip(pairs).all(|(a, (n, v))| a.name == *n && a.value == *v)
    }

    fn overlaps(&self, r: &TimeRange) -> bool {
        !self.samples.is_empty() && self.min_t <= r.end && r.start <= self.max_t
    }
}

#[derive(Debug, Default)]
struct Shard {
    series: IdMap<MemSeries>,
    /// Series whose 64-bit hash collided with another label set; searched linearly (never in practice).
    collided: Vec<MemSeries>,
    /// Metric name → `cluster` value → ids: candidates for a selector with an exact name, and
    /// its `cluster` matchers decided once per cluster instead of once per series.
    by_metric: HashMap<String, HashMap<String, Vec<u64>>>,
}

impl Shard {
    /// The series with these labels, created if new. The labels are built only for a new series.
    fn get_or_create(&mut self, id: SeriesId, pairs: &[(&str, &str)]) -> &mut MemSeries {
        let build = || {
            Arc::new(Labels::from_sorted(
                pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect(),
            ))
        };
        if !self.series.contains_key(&id.0) {
            return self.insert(id, build());
        }
        if self.series.get(&id.0).is_some_and(|s| s.same_labels(pairs)) {
            return self.series.get_mut(&id.0).expect("present");
        }
        self.collided_entry(pairs.len(), |s| s.same_labels(pairs), build)
    }

    /// The series with labels the raw index already holds.
    fn get_or_create_known(&mut self, id: SeriesId, labels: &Arc<Labels>) -> &mut MemSeries {
        if !self.series.contains_key(&id.0) {
            return self.insert(id, labels.clone());
        }
        let same = |s: &MemSeries| Arc::ptr_eq(&s.labels, labels) || *s.labels == **labels;
        if self.series.get(&id.0).is_some_and(same) {
            return self.series.get_mut(&id.0).expect("present");
        }
        self.collided_entry(labels.len(), same, || labels.clone())
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
    fn candidates(&self, lookup: &Lookup) -> usize {
        let listed = match lookup.name {
            Some(name) => self.by_metric.get(name).map_or(0, |c| c.values().map(Vec::len).sum()),
            None => self.series.len(),
        };
        listed + self.collided.len()
    }

    /// Calls `f` with every series that may match, and the matchers it must still check. With
    /// an exact metric name the candidates come from the name's postings, only of clusters
    /// every `cluster` matcher accepts, and those matchers are not asked again per series.
    fn for_each_candidate(&self, lookup: &Lookup, mut f: impl FnMut(&MemSeries, &[&Matcher])) {
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
struct Lookup<'m> {
    name: Option<&'m str>,
    clusters: Vec<&'m Matcher>,
    rest: Vec<&'m Matcher>,
    all: Vec<&'m Matcher>,
}

impl<'m> Lookup<'m> {
    fn new(matchers: &'m [Matcher]) -> Self {
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

/// An immutable block of the head, being written to Parquet.
#[derive(Debug)]
pub struct Frozen {
    /// Samples sorted by time, one per timestamp.
    pub series: Vec<Series>,
    pub samples: usize,
    /// Log records, native histograms, exemplars and metadata of the same period.
    pub signals: SignalBlock,
    /// The active part's label index, as it was at the freeze.
    labels: LabelIndex,
}

/// What the raw index remembers of a series: enough to append without its wire labels.
#[derive(Debug, Clone)]
struct RawEntry {
    id: SeriesId,
    labels: Arc<Labels>,
}

/// Recent data in memory. See the module docs for the lifecycle.
#[derive(Debug)]
pub struct Head {
    shards: Box<[Mutex<Shard>]>,
    raw: Box<[RwLock<HashMap<RawKey, RawEntry>>]>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    /// Labels of the active part's series with samples, and their span (see [`label_index`]).
    /// One for all shards, so a listing is one pass over distinct values; appends lock it once
    /// per batch, and only add to it for series getting their first sample.
    labels: Mutex<LabelIndex>,
    active_samples: AtomicUsize,
    active_series: AtomicUsize,
    signals: ActiveSignals,
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            raw: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            frozen: RwLock::new(Vec::new()),
            labels: Mutex::new(LabelIndex::default()),
            active_samples: AtomicUsize::new(0),
            active_series: AtomicUsize::new(0),
            signals: ActiveSignals::default(),
        }
    }

    fn shard_of(id: SeriesId) -> usize {
        (id.0 >> 40) as usize % SHARDS
    }

    fn raw_shard(key: RawKey) -> usize {
        (key >> 100) as usize % SHARDS
    }

    /// Adds a decoded batch. Each shard is locked once per batch.
    ///
    /// Returns how many samples could not be placed: those of a `known` span whose raw key is no
    /// longer indexed. The ingester's gate makes that impossible; if it ever happens the caller
    /// must not acknowledge the request (it answers a retryable error instead).
    #[must_use = "unplaced samples must fail the request"]
    pub fn append(&self, batch: &WriteBatch<'_>) -> usize {
        let mut unplaced = 0;
        // (shard, id, span index, labels from the raw index for known series)
        let mut order: Vec<(u8, SeriesId, u32, Option<Arc<Labels>>)> = Vec::with_capacity(batch.series.len());
        for (i, s) in batch.series.iter().enumerate() {
            let known = match (s.known, s.raw_key) {
                (true, Some(k)) => self.raw[Self::raw_shard(k)].read().get(&k).cloned(),
                _ => None,
            };
            let (id, labels) = match known {
                Some(e) => (e.id, Some(e.labels)),
                // The ingester's gate keeps a known key in the index until the append; a miss
                // here would mean a span without labels, which we must not store wrongly.
                None if s.known => {
                    unplaced += batch.series_samples(s).len();
                    continue;
                }
                None => (SeriesId::of(batch.series_labels(s).iter().copied()), None),
            };
            order.push((Self::shard_of(id) as u8, id, i as u32, labels));
        }
        order.sort_unstable_by_key(|o| o.0);
        let mut new_series = 0;
        let mut learned: Vec<(RawKey, RawEntry)> = Vec::new();
        // Series that got their first sample, and the batch's span, for the label index.
        let mut first: Vec<Arc<Labels>> = Vec::new();
        let (mut min_t, mut max_t) = (TimestampMs::MAX, TimestampMs::MIN);
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[run[0].0 as usize].lock();
            let before = shard.series.len() + shard.collided.len();
            for (_, id, i, labels) in run {
                let span = &batch.series[*i as usize];
                let ms = match labels {
                    Some(l) => shard.get_or_create_known(*id, l),
                    None => shard.get_or_create(*id, batch.series_labels(span)),
                };
                let was_empty = ms.samples.is_empty();
                ms.push(batch.series_samples(span));
                min_t = min_t.min(ms.min_t);
                max_t = max_t.max(ms.max_t);
                // Indexed once, when the series gets its first sample: a creation, not an append.
                if was_empty && !ms.samples.is_empty() {
                    first.push(ms.labels.clone());
                }
                if let (false, Some(k)) = (span.known, span.raw_key) {
                    learned.push((
                        k,
                        RawEntry {
                            id: *id,
                            labels: ms.labels.clone(),
                        },
                    ));
                }
            }
            new_series += shard.series.len() + shard.collided.len() - before;
        }
        {
            let mut index = self.labels.lock();
            index.cover(min_t, max_t);
            for labels in &first {
                index.add(labels);
            }
        }
        if !learned.is_empty() {
            learned.sort_unstable_by_key(|(k, _)| Self::raw_shard(*k));
            for run in learned.chunk_by(|a, b| Self::raw_shard(a.0) == Self::raw_shard(b.0)) {
                let mut raw = self.raw[Self::raw_shard(run[0].0)].write();
                for (k, e) in run {
                    raw.insert(*k, e.clone());
                }
            }
        }
        self.active_samples
            .fetch_add(batch.sample_count() - unplaced, Ordering::Relaxed);
        self.active_series.fetch_add(new_series, Ordering::Relaxed);
        unplaced
    }

    /// Adds already-built series (tests and other decoders' paths).
    pub fn append_series(&self, series: &[Series]) {
        let mut batch = WriteBatch::default();
        for s in series {
            let l0 = batch.labels.len() as u32;
            let s0 = batch.samples.len() as u32;
            batch
                .labels
                .extend(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
            batch.samples.extend_from_slice(&s.samples);
            batch.series.push(prom_remote_write::SeriesSpan {
                labels: l0..batch.labels.len() as u32,
                samples: s0..batch.samples.len() as u32,
                raw_key: None,
                known: false,
            });
        }
        let unplaced = self.append(&batch);
        debug_assert_eq!(unplaced, 0, "built series are never `known`");
    }

    /// Samples in the active part (the part a flush would freeze).
    pub fn active_samples(&self) -> usize {
        self.active_samples.load(Ordering::Relaxed)
    }

    pub fn active_series(&self) -> usize {
        self.active_series.load(Ordering::Relaxed)
    }

    /// Samples held in memory, active and frozen.
    pub fn total_samples(&self) -> usize {
        self.active_samples() + self.frozen.read().iter().map(|f| f.samples).sum::<usize>()
    }

    /// Adds log records, native histograms, exemplars and metadata (see [`signals`]).
    pub fn append_signals(&self, block: SignalBlock) {
        self.signals.append(block);
    }

    /// Histogram samples, exemplars and log records in the active part.
    pub fn active_signal_items(&self) -> usize {
        self.signals.items()
    }

    /// Approximate bytes of log records in the active part.
    pub fn active_log_bytes(&self) -> usize {
        self.signals.log_bytes()
    }

    /// True when a freeze would produce an empty block.
    pub fn active_is_empty(&self) -> bool {
        self.active_samples() == 0 && self.signals.is_empty()
    }

    /// Moves the active part into a new frozen block and returns it. Callers must ensure no
    /// append runs concurrently if they need a clean cut (the ingester's gate does).
    pub fn freeze(&self) -> Arc<Frozen> {
        for raw in self.raw.iter() {
            raw.write().clear();
        }
        let mut series = Vec::new();
        let labels = std::mem::take(&mut *self.labels.lock());
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock());
            for ms in taken.series.into_values().chain(taken.collided) {
                let mut samples = ms.samples;
                if !ms.sorted {
                    sort_dedup_samples(&mut samples);
                }
                let labels = Arc::try_unwrap(ms.labels).unwrap_or_else(|shared| (*shared).clone());
                series.push(Series::new(labels, samples));
            }
        }
        let samples = series.iter().map(|s| s.samples.len()).sum();
        self.active_samples.store(0, Ordering::Relaxed);
        self.active_series.store(0, Ordering::Relaxed);
        let signals = self.signals.take();
        let frozen = Arc::new(Frozen {
            series,
            samples,
            signals,
            labels,
        });
        self.frozen.write().push(frozen.clone());
        frozen
    }

    /// Frozen blocks not yet dropped (a failed flush leaves them here to retry).
    pub fn frozen(&self) -> Vec<Arc<Frozen>> {
        self.frozen.read().clone()
    }

    /// Forgets a frozen block once its data is readable from Parquet.
    pub fn drop_frozen(&self, block: &Arc<Frozen>) {
        self.frozen.write().retain(|f| !Arc::ptr_eq(f, block));
    }

    /// Visits every series (frozen blocks first, oldest first, then the active part) that
    /// matches `req.matchers` and has a sample in `req.range`, with its samples in range; the
    /// flag says whether they are sorted with unique timestamps. A label set may be visited more
    /// than once (once per block holding it). Shard locks are held only while a shard is visited.
    fn for_each_match(&self, req: &SelectRequest, mut f: impl FnMut(&Labels, &[Sample], bool)) {
        for block in self.frozen.read().iter() {
            for s in &block.series {
                let r = sorted_in_range(&s.samples, req.range);
                if !r.is_empty() && matches_all(&req.matchers, &s.labels) && req.admits(&s.labels) {
                    f(&s.labels, &s.samples[r], true);
                }
            }
        }
        Self::for_each_active_match(&self.shards, req, f);
    }

    /// [`Head::for_each_match`] over some shards of the active part.
    fn for_each_active_match(
        shards: &[Mutex<Shard>],
        req: &SelectRequest,
        mut f: impl FnMut(&Labels, &[Sample], bool),
    ) {
        let range = req.range;
        let lookup = Lookup::new(&req.matchers);
        let mut unsorted: Vec<Sample> = Vec::new();
        for shard in shards {
            let shard = shard.lock();
            shard.for_each_candidate(&lookup, |s, undecided| {
                if !s.overlaps(&range)
                    || !undecided.iter().all(|m| m.matches_labels(&s.labels))
                    || !req.admits(&s.labels)
                {
                    return;
                }
                if s.sorted {
                    let r = sorted_in_range(&s.samples, range);
                    if !r.is_empty() {
                        f(&s.labels, &s.samples[r], true);
                    }
                } else {
                    unsorted.clear();
                    unsorted.extend(s.samples.iter().filter(|x| range.contains(x.timestamp)));
                    if !unsorted.is_empty() {
                        f(&s.labels, &unsorted, false);
                    }
                }
            });
        }
    }

    /// Visits the label index of every block (frozen, then the active part) whose span
    /// overlaps `range`.
    fn for_each_label_index(&self, range: &TimeRange, mut f: impl FnMut(&LabelIndex)) {
        for block in self.frozen.read().iter() {
            if block.labels.overlaps(range) {
                f(&block.labels);
            }
        }
        let active = self.labels.lock();
        if active.overlaps(range) {
            f(&active);
        }
    }

    /// The series of [`Source::select`]. Without frozen blocks every label set is visited once,
    /// so series are built directly; otherwise blocks are merged by label set.
    fn select_series(&self, req: &SelectRequest) -> Vec<Series> {
        if self.frozen.read().is_empty() {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(SHARDS);
            let lookup = Lookup::new(&req.matchers);
            let candidates: usize = self.shards.iter().map(|s| s.lock().candidates(&lookup)).sum();
            if threads > 1 && candidates >= PARALLEL_SELECT_SERIES {
                return self.select_active_parallel(req, threads);
            }
            return Self::select_active(&self.shards, req);
        }
        let mut out: Vec<Series> = Vec::new();
        // Whether the series' samples may need sorting (unsorted input, or several blocks).
        let mut unsorted: Vec<bool> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        self.for_each_match(req, |labels, samples, sorted| {
            if let Some(&i) = index.get(labels) {
                out[i].samples.extend_from_slice(samples);
                unsorted[i] = true;
                return;
            }
            index.insert(labels.clone(), out.len());
            out.push(Series::new(labels.clone(), samples.to_vec()));
            unsorted.push(!sorted);
        });
        for (s, unsorted) in out.iter_mut().zip(unsorted) {
            if unsorted {
                // Older data was pushed first, so on equal timestamps the newer write wins.
                sort_dedup_samples(&mut s.samples);
            }
        }
        out
    }

    /// The matching series of some shards of the active part, where every label set is in one
    /// shard only, so series are built directly.
    fn select_active(shards: &[Mutex<Shard>], req: &SelectRequest) -> Vec<Series> {
        let mut out = Vec::new();
        Self::for_each_active_match(shards, req, |labels, samples, sorted| {
            let mut samples = samples.to_vec();
            if !sorted {
                sort_dedup_samples(&mut samples);
            }
            out.push(Series::new(labels.clone(), samples));
        });
        out
    }

    /// [`Head::select_active`] with the shards split among `threads` threads: copying samples
    /// out is most of a big select, and the shards hold disjoint series.
    fn select_active_parallel(&self, req: &SelectRequest, threads: usize) -> Vec<Series> {
        let per_thread = self.shards.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .shards
                .chunks(per_thread)
                .map(|shards| scope.spawn(move || Self::select_active(shards, req)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

/// The positions of `samples` (sorted by time) that fall in `range`.
fn sorted_in_range(samples: &[Sample], range: TimeRange) -> std::ops::Range<usize> {
    // A range that covers a series' first or last sample (the usual dashboard case) needs no
    // search on that side: only the two ends are read, not a binary search's cache misses.
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 0..0;
    };
    let lo = if first.timestamp >= range.start {
        0
    } else {
        samples.partition_point(|x| x.timestamp < range.start)
    };
    let hi = if last.timestamp <= range.end {
        samples.len()
    } else {
        samples.partition_point(|x| x.timestamp <= range.end)
    };
    lo..hi.max(lo)
}

impl KnownSeries for Head {
    fn is_known(&self, key: RawKey) -> bool {
        self.raw[Self::raw_shard(key)].read().contains_key(&key)
    }
}

#[async_trait]
impl Source for Head {
    async fn select(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Series>> {
        Ok(self.select_series(req))
    }

    async fn series(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Labels>> {
        let mut out: Vec<Labels> = Vec::new();
        self.for_each_match(req, |labels, _, _| out.push(labels.clone()));
        if !self.frozen.read().is_empty() {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    /// Everything the head holds when that is within `limit`; otherwise the matching samples,
    /// counted in place (a series in several blocks counts each block's).
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> tributary_storage::Result<usize> {
        let held = self.total_samples();
        if held <= limit {
            return Ok(held);
        }
        let mut total = 0;
        self.for_each_match(req, |_, samples, _| total += samples.len());
        Ok(total)
    }

    /// Exact: the samples in range, counted in place.
    async fn series_samples(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<SeriesSize>> {
        let mut out: Vec<SeriesSize> = Vec::new();
        self.for_each_match(req, |labels, samples, _| {
            out.push(SeriesSize {
                labels: labels.clone(),
                samples: samples.len(),
            });
        });
        // Without frozen blocks each label set is visited once. With them, a series in several
        // blocks counts each block's samples (they may share a timestamp): still an upper bound.
        if self.frozen.read().is_empty() {
            return Ok(out);
        }
        Ok(SeriesSize::merge(out, |a, b| a + b))
    }

    /// Without matchers, from the label indexes of the blocks overlapping the range (as coarse
    /// in time as a block, like Prometheus' head); otherwise from the matching label sets in
    /// place: no label set is copied, each distinct name once.
    async fn label_names(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        if req.matchers.is_empty() {
            let mut lists = Vec::new();
            self.for_each_label_index(&req.range, |index| lists.push(index.names()));
            return Ok(sorted_union(lists));
        }
        let mut names: HashSet<String> = HashSet::new();
        self.for_each_match(req, |labels, _, _| {
            for l in labels {
                if !names.contains(&l.name) {
                    names.insert(l.name.clone());
                }
            }
        });
        Ok(sorted(names))
    }

    /// When every matcher is on label `name` itself (or there is none), from the label indexes
    /// of the blocks overlapping the range (as coarse in time as a block, like Prometheus'
    /// head); otherwise from the matching label sets in place: no label set is copied, each
    /// distinct value once.
    async fn label_values(&self, name: &str, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        // A series without the label has no value to list, whatever the matchers say of "".
        if req.matchers.iter().all(|m| m.name == name) {
            let mut lists = Vec::new();
            self.for_each_label_index(&req.range, |index| lists.push(index.values(name, &req.matchers)));
            return Ok(sorted_union(lists));
        }
        let mut values: HashSet<String> = HashSet::new();
        self.for_each_match(req, |labels, _, _| {
            if let Some(v) = labels.get(name)
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        });
        Ok(sorted(values))
    }

    async fn exemplars(
        &self,
        selectors: &[Vec<Matcher>],
        range: TimeRange,
    ) -> tributary_storage::Result<Vec<ExemplarSeries>> {
        Ok(self.exemplars_in_memory(selectors, range))
    }

    async fn metadata(&self, metric: Option<&str>) -> tributary_storage::Result<Vec<MetricMetadata>> {
        Ok(self.metadata_in_memory(metric))
    }
}

impl Head {
    fn signal_blocks<R>(&self, mut f: impl FnMut(&SignalBlock) -> R) -> Vec<R> {
        let mut out: Vec<R> = self.frozen.read().iter().map(|b| f(&b.signals)).collect();
        out.push(self.signals.with(f));
        out
    }

    /// Exemplars held in memory (see [`Source::exemplars`]).
    pub fn exemplars_in_memory(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Vec<ExemplarSeries> {
        let mut found = Vec::new();
        self.signal_blocks(|b| b.exemplars_matching(selectors, range, &mut found));
        // The same series may sit in several blocks: merge so each appears once.
        let mut merged: HashMap<Labels, ExemplarSeries> = HashMap::new();
        for s in found {
            match merged.get_mut(&s.labels) {
                Some(m) => m.exemplars.extend(s.exemplars),
                None => {
                    merged.insert(s.labels.clone(), s);
                }
            }
        }
        let mut out: Vec<ExemplarSeries> = merged.into_values().collect();
        for s in &mut out {
            s.exemplars
                .sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.value.total_cmp(&b.value)));
            s.exemplars.dedup();
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Log records held in memory (see [`LogSource::select_logs`]).
    pub fn logs_in_memory(&self, req: &LogRequest) -> Vec<LogRecord> {
        let mut out = Vec::new();
        self.signal_blocks(|b| b.logs_matching(req, &mut out));
        sort_logs(&mut out, req.direction);
        // A client retry may have delivered the same record twice.
        out.dedup();
        if let Some(limit) = req.limit {
            out.truncate(limit);
        }
        out
    }

    /// Metadata held in memory (see [`Source::metadata`]).
    pub fn metadata_in_memory(&self, metric: Option<&str>) -> Vec<MetricMetadata> {
        let mut all = std::collections::BTreeSet::new();
        self.signal_blocks(|b| {
            all.extend(
                b.metadata
                    .iter()
                    .filter(|m| metric.is_none_or(|name| m.metric == name))
                    .cloned(),
            )
        });
        all.into_iter().collect()
    }
}

/// Orders records as [`LogSource::select_logs`] promises (storage's one log-record order).
pub fn sort_logs(records: &mut [LogRecord], direction: Direction) {
    tributary_storage::read::sort_logs(records, direction)
}

#[async_trait]
impl LogSource for Head {
    async fn select_logs(&self, req: &LogRequest) -> tributary_storage::Result<Vec<LogRecord>> {
        Ok(self.logs_in_memory(req))
    }

    async fn log_streams(&self, req: &LogRequest) -> tributary_storage::Result<Vec<Labels>> {
        let mut out = Vec::new();
        self.signal_blocks(|b| b.streams_matching(req, &mut out));
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn sorted(set: HashSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use proptest::prelude::*;
    use tributary_storage::read::LineHint;
    use tributary_storage::types::MatchOp;

    fn s(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
        Series::new(
            Labels::from_pairs(pairs),
            samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        )
    }

    #[tokio::test]
    async fn head_passes_the_source_conformance_suite() {
        tributary_storage::test_util::source_conformance(|data: Vec<Series>| async move {
            let head = Head::new();
            head.append_series(&data);
            Arc::new(head) as Arc<dyn Source>
        })
        .await;
    }

    /// The head's log records pass the `LogSource` suite, split over a frozen and the active
    /// block with the middle third in both (as during a flush).
    #[tokio::test]
    async fn head_passes_the_log_source_conformance_suite() {
        tributary_storage::test_util::log_source_conformance(|records: Vec<LogRecord>| async move {
            let head = Head::new();
            let third = records.len() / 3;
            head.append_signals(SignalBlock {
                logs: records[..2 * third].to_vec(),
                ..Default::default()
            });
            head.freeze();
            head.append_signals(SignalBlock {
                logs: records[third..].to_vec(),
                ..Default::default()
            });
            Arc::new(head) as Arc<dyn LogSource>
        })
        .await;
    }

    #[tokio::test]
    async fn frozen_and_active_parts_merge_and_newest_wins() {
        let head = Head::new();
        head.append_series(&[s(&[("__name__", "m"), ("cluster", "a")], &[(1, 1.0), (2, 2.0)])]);
        let frozen = head.freeze();
        assert_eq!(frozen.samples, 2);
        assert_eq!(head.active_samples(), 0);
        head.append_series(&[s(&[("__name__", "m"), ("cluster", "a")], &[(2, 20.0), (3, 3.0)])]);
        let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::ALL);
        let got = head.select(&req).await.unwrap();
        assert_eq!(got.len(), 1);
        let vals: Vec<(i64, f64)> = got[0].samples.iter().map(|x| (x.timestamp, x.value)).collect();
        assert_eq!(vals, vec![(1, 1.0), (2, 20.0), (3, 3.0)]);
        head.drop_frozen(&frozen);
        assert_eq!(head.select(&req).await.unwrap()[0].samples.len(), 2);
    }

    #[tokio::test]
    async fn out_of_order_samples_are_sorted_on_read_and_freeze() {
        let head = Head::new();
        head.append_series(&[s(&[("__name__", "m")], &[(5, 5.0), (1, 1.0), (3, 3.0), (1, 1.5)])]);
        let req = SelectRequest::new(
            vec![Matcher::new(MatchOp::RegexMatch, "__name__", "m|n").unwrap()],
            TimeRange::new(1, 4),
        );
        let got = head.select(&req).await.unwrap();
        let vals: Vec<(i64, f64)> = got[0].samples.iter().map(|x| (x.timestamp, x.value)).collect();
        assert_eq!(vals, vec![(1, 1.5), (3, 3.0)]);
        let f = head.freeze();
        let ts: Vec<i64> = f.series[0].samples.iter().map(|x| x.timestamp).collect();
        assert_eq!(ts, vec![1, 3, 5]);
    }

    fn rw_body(cluster_label: Option<&str>, t: i64) -> Vec<u8> {
        use prost::Message;
        use tributary_proto::prometheus as pb;
        let mut labels = vec![pb::Label {
            name: "__name__".into(),
            value: "up".into(),
        }];
        if let Some(c) = cluster_label {
            labels.push(pb::Label {
                name: "cluster".into(),
                value: c.into(),
            });
        }
        labels.push(pb::Label {
            name: "job".into(),
            value: "node".into(),
        });
        let ts = pb::TimeSeries {
            labels,
            samples: vec![pb::Sample {
                timestamp: t,
                value: t as f64,
            }],
            exemplars: vec![],
            histograms: vec![],
        };
        pb::WriteRequest {
            timeseries: vec![ts],
            metadata: vec![],
        }
        .encode_to_vec()
    }

    #[tokio::test]
    async fn known_series_take_the_short_path_into_the_same_series() {
        use crate::cluster::ClusterContext;
        use crate::decode::prom_remote_write::{Limits, decode};
        let limits = Limits {
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
        };
        let head = Head::new();
        let a = ClusterContext {
            token_cluster: None,
            header_cluster: Some("a".into()),
        };
        let b = ClusterContext {
            token_cluster: None,
            header_cluster: Some("b".into()),
        };

        let first = rw_body(None, 1000);
        let d = decode(&first, &a, &limits, &head).unwrap();
        assert!(!d.batch.series[0].known);
        assert_eq!(head.append(&d.batch), 0);

        let second = rw_body(None, 2000);
        let d = decode(&second, &a, &limits, &head).unwrap();
        assert!(d.batch.series[0].known, "same labels, same context: short path");
        assert!(d.batch.series_labels(&d.batch.series[0]).is_empty());
        assert_eq!(head.append(&d.batch), 0);

        // The same bytes under another header stamp another cluster: never a hit.
        let d = decode(&second, &b, &limits, &head).unwrap();
        assert!(!d.batch.series[0].known);
        assert_eq!(head.append(&d.batch), 0);
        // Different wire bytes for a different series are not a hit either.
        let own = rw_body(Some("own"), 3000);
        assert!(!decode(&own, &a, &limits, &head).unwrap().batch.series[0].known);

        let req = SelectRequest::new(vec![Matcher::equal("__name__", "up")], TimeRange::ALL);
        let mut got: Vec<(String, usize)> = head
            .select(&req)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.labels.get("cluster").unwrap().to_string(), s.samples.len()))
            .collect();
        got.sort();
        assert_eq!(got, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
        assert_eq!(head.active_series(), 2);

        // A freeze forgets raw keys; the next request takes the full path into a new series.
        head.freeze();
        let d = decode(&second, &a, &limits, &head).unwrap();
        assert!(!d.batch.series[0].known);
        assert_eq!(head.append(&d.batch), 0);
        assert_eq!(head.active_series(), 1);
    }

    #[test]
    fn a_known_span_without_its_raw_entry_is_reported_not_dropped_silently() {
        use crate::cluster::ClusterContext;
        use crate::decode::prom_remote_write::{Limits, decode};
        let limits = Limits {
            max_labels_per_series: 30,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
        };
        let head = Head::new();
        let ctx = ClusterContext {
            token_cluster: None,
            header_cluster: Some("a".into()),
        };
        let body = rw_body(None, 1000);
        assert_eq!(head.append(&decode(&body, &ctx, &limits, &head).unwrap().batch), 0);
        let again = rw_body(None, 2000);
        let d = decode(&again, &ctx, &limits, &head).unwrap();
        assert!(d.batch.series[0].known);
        // Forgetting the key between decode and append is what the ingester's gate prevents.
        head.freeze();
        assert_eq!(head.append(&d.batch), 1);
        assert_eq!(head.active_samples(), 0);
    }

    #[test]
    fn series_are_counted_once() {
        let head = Head::new();
        for _ in 0..3 {
            head.append_series(&[
                s(&[("__name__", "a")], &[(1, 1.0)]),
                s(&[("__name__", "b")], &[(1, 1.0)]),
            ]);
        }
        assert_eq!(head.active_series(), 2);
        assert_eq!(head.active_samples(), 6);
    }

    /// Label names and values over `range` from every stored label set with samples in it.
    fn brute_force(head: &Head, range: TimeRange) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
        let (mut names, mut values) = (BTreeSet::new(), BTreeMap::<String, BTreeSet<String>>::new());
        head.for_each_match(&SelectRequest::new(Vec::new(), range), |labels, _, _| {
            for l in labels {
                names.insert(l.name.clone());
                values.entry(l.name.clone()).or_default().insert(l.value.clone());
            }
        });
        (names, values)
    }

    /// A label index recounted from label sets (those without samples are not counted).
    fn recount<'a>(labels: impl Iterator<Item = (&'a Labels, usize)>) -> Vec<(String, String, u32)> {
        let mut counts: BTreeMap<(String, String), u32> = BTreeMap::new();
        for (labels, samples) in labels {
            if samples > 0 {
                for l in labels {
                    *counts.entry((l.name.clone(), l.value.clone())).or_default() += 1;
                }
            }
        }
        counts.into_iter().map(|((n, v), c)| (n, v, c)).collect()
    }

    /// Every index (active part and frozen blocks) holds exactly the counts and span of its series.
    fn assert_indexes_exact(head: &Head) {
        let shards: Vec<_> = head.shards.iter().map(|s| s.lock()).collect();
        let all = || shards.iter().flat_map(|s| s.series.values().chain(&s.collided));
        let active = head.labels.lock();
        assert_eq!(active.entries(), recount(all().map(|s| (&*s.labels, s.samples.len()))));
        let with_samples = || all().filter(|s| !s.samples.is_empty());
        let span = with_samples()
            .map(|s| s.min_t)
            .min()
            .zip(with_samples().map(|s| s.max_t).max());
        assert_eq!(active.span(), span);
        drop((active, shards));
        for block in head.frozen() {
            assert_eq!(
                block.labels.entries(),
                recount(block.series.iter().map(|s| (&s.labels, s.samples.len())))
            );
            let ts = || block.series.iter().flat_map(|s| s.samples.iter().map(|x| x.timestamp));
            assert_eq!(block.labels.span(), ts().min().zip(ts().max()));
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(Vec<(u8, u8, bool, Vec<i64>)>),
        Freeze,
        DropOldest,
    }

    fn op() -> impl Strategy<Value = Op> {
        let series = (
            0u8..3,
            0u8..6,
            any::<bool>(),
            proptest::collection::vec(0i64..100, 0..4),
        );
        prop_oneof![
            6 => proptest::collection::vec(series, 1..8).prop_map(Op::Append),
            1 => Just(Op::Freeze),
            1 => Just(Op::DropOldest),
        ]
    }

    proptest! {
        /// The positions in range are those a scan finds, whichever ends the range covers.
        #[test]
        fn sorted_in_range_is_what_a_scan_finds(
            mut ts in proptest::collection::vec(0i64..50, 0..20),
            (a, b) in (-5i64..55, -5i64..55),
        ) {
            ts.sort_unstable();
            ts.dedup();
            let samples: Vec<Sample> = ts.iter().map(|&t| Sample::new(t, 1.0)).collect();
            let range = TimeRange::new(a, b);
            let scanned: Vec<usize> = (0..samples.len()).filter(|&i| range.contains(samples[i].timestamp)).collect();
            let found: Vec<usize> = sorted_in_range(&samples, range).collect();
            prop_assert_eq!(found, scanned);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Index answers equal the brute-force ones over all time, lie between the brute-force
        /// answers of the range and of all time otherwise, and the counts stay exact.
        #[test]
        fn label_index_answers_match_brute_force(
            ops in proptest::collection::vec(op(), 1..12),
            range in (0i64..110, 0i64..110),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let head = Head::new();
            for op in ops {
                match op {
                    Op::Append(batch) => {
                        let series: Vec<Series> = batch
                            .iter()
                            .map(|(metric, pod, job, ts)| {
                                let (metric, pod) = (format!("m{metric}"), format!("p{pod}"));
                                let mut pairs = vec![("__name__", metric.as_str()), ("pod", pod.as_str())];
                                if *job {
                                    pairs.push(("job", "j"));
                                }
                                let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
                                s(&pairs, &samples)
                            })
                            .collect();
                        head.append_series(&series);
                    }
                    Op::Freeze => {
                        head.freeze();
                    }
                    Op::DropOldest => {
                        if let Some(oldest) = head.frozen().first() {
                            head.drop_frozen(oldest);
                        }
                    }
                }
                assert_indexes_exact(&head);
            }
            let (all_names, all_values) = brute_force(&head, TimeRange::ALL);
            let names = |r| rt.block_on(head.label_names(&SelectRequest::new(Vec::new(), r))).unwrap();
            let values = |n: &str, m: Vec<Matcher>, r| rt.block_on(head.label_values(n, &SelectRequest::new(m, r))).unwrap();
            let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<String>>();
            prop_assert_eq!(set(names(TimeRange::ALL)), all_names.clone());
            for name in ["__name__", "pod", "job", "absent"] {
                let want = all_values.get(name).cloned().unwrap_or_default();
                prop_assert_eq!(set(values(name, Vec::new(), TimeRange::ALL)), want.clone());
                let m = Matcher::new(MatchOp::RegexMatch, name, "p[0-2]|m1").unwrap();
                let filtered: BTreeSet<String> = want.iter().filter(|v| m.matches(v)).cloned().collect();
                prop_assert_eq!(set(values(name, vec![m], TimeRange::ALL)), filtered);
            }
            let range = TimeRange::new(range.0.min(range.1), range.0.max(range.1));
            let (lower_names, lower_values) = brute_force(&head, range);
            let got = set(names(range));
            prop_assert!(lower_names.is_subset(&got) && got.is_subset(&all_names));
            for name in ["__name__", "pod", "job"] {
                let got = set(values(name, Vec::new(), range));
                let lower = lower_values.get(name).cloned().unwrap_or_default();
                let upper = all_values.get(name).cloned().unwrap_or_default();
                prop_assert!(lower.is_subset(&got) && got.is_subset(&upper), "{name}: {got:?}");
            }
        }
    }

    fn selector_matcher() -> impl Strategy<Value = Matcher> {
        let value = prop_oneof![Just(""), Just("m0"), Just("m1"), Just("c0"), Just("c1"), Just("p1")];
        let op = prop_oneof![
            Just(MatchOp::Equal),
            Just(MatchOp::NotEqual),
            Just(MatchOp::RegexMatch),
            Just(MatchOp::RegexNoMatch)
        ];
        let name = prop_oneof![Just("__name__"), Just("cluster"), Just("pod")];
        (op, name, value, any::<bool>()).prop_map(|(op, name, value, wide)| {
            let value = if wide && matches!(op, MatchOp::RegexMatch | MatchOp::RegexNoMatch) {
                format!("{value}|c2|m2")
            } else {
                value.to_string()
            };
            Matcher::new(op, name, &value).unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Selecting through the name and cluster postings finds exactly the series a walk over
        /// every series with every matcher finds, in the active part and in frozen blocks.
        #[test]
        fn postings_select_what_a_full_walk_selects(
            series in proptest::collection::vec((0u8..3, 0u8..4, 0u8..3), 1..40),
            freeze_after in 0usize..40,
            matchers in proptest::collection::vec(selector_matcher(), 0..4),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let head = Head::new();
            let mut all: BTreeSet<Labels> = BTreeSet::new();
            for (i, (metric, cluster, pod)) in series.into_iter().enumerate() {
                let (metric, cluster, pod) = (format!("m{metric}"), format!("c{cluster}"), format!("p{pod}"));
                let mut pairs = vec![("__name__", metric.as_str()), ("pod", pod.as_str())];
                if cluster != "c3" {
                    // c3 stands for a series without the label.
                    pairs.push(("cluster", cluster.as_str()));
                }
                let one = s(&pairs, &[(i as i64, 1.0)]);
                all.insert(one.labels.clone());
                head.append_series(std::slice::from_ref(&one));
                if i == freeze_after {
                    head.freeze();
                }
            }
            let want: BTreeSet<Labels> = all.into_iter().filter(|l| matches_all(&matchers, l)).collect();
            let req = SelectRequest::new(matchers.clone(), TimeRange::ALL);
            let got: BTreeSet<Labels> = rt.block_on(head.series(&req)).unwrap().into_iter().collect();
            prop_assert_eq!(&got, &want, "{:?}", matchers);
            let selected: BTreeSet<Labels> = rt.block_on(head.select(&req)).unwrap().into_iter().map(|s| s.labels).collect();
            prop_assert_eq!(selected, want);
        }
    }

    /// A select big enough to run on several threads returns what was appended: every series
    /// once, samples in range sorted and deduplicated (also for series appended out of order).
    #[tokio::test]
    async fn big_selects_copy_shards_in_parallel() {
        let head = Head::new();
        let n = PARALLEL_SELECT_SERIES + 500;
        let mut expected: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for i in 0..n {
            let (pod, cluster) = (format!("p{i}"), format!("c{}", i % 3));
            let pairs = [("__name__", "m"), ("cluster", cluster.as_str()), ("pod", pod.as_str())];
            // Every 7th series arrives out of order, with a repeated timestamp (the later wins).
            let samples: Vec<(i64, f64)> = if i % 7 == 0 {
                vec![(30, 3.0), (10, 1.0), (20, 2.0), (20, 2.5)]
            } else {
                vec![(10, 1.0), (20, 2.0), (30, 3.0)]
            };
            let one = s(&pairs, &samples);
            head.append_series(std::slice::from_ref(&one));
            let want = if i % 7 == 0 {
                vec![(10, 1.0), (20, 2.5)]
            } else {
                vec![(10, 1.0), (20, 2.0)]
            };
            expected.insert(one.labels, want.into_iter().map(|(t, v)| Sample::new(t, v)).collect());
        }
        let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::new(0, 25));
        let lookup = Lookup::new(&req.matchers);
        let candidates: usize = head.shards.iter().map(|s| s.lock().candidates(&lookup)).sum();
        assert!(candidates >= PARALLEL_SELECT_SERIES);
        for threads in [2, 3, 16] {
            let got: BTreeMap<Labels, Vec<Sample>> = head
                .select_active_parallel(&req, threads)
                .into_iter()
                .map(|s| (s.labels, s.samples))
                .collect();
            assert_eq!(got.len(), n, "{threads} threads: each series once");
            assert_eq!(got, expected, "{threads} threads");
        }
        let selected = head.select(&req).await.unwrap();
        assert_eq!(selected.len(), n);
        let one_cluster = SelectRequest::new(
            vec![Matcher::equal("__name__", "m"), Matcher::equal("cluster", "c1")],
            TimeRange::new(0, 25),
        );
        let in_c1 = (0..n).filter(|i| i % 3 == 1).count();
        assert_eq!(head.select(&one_cluster).await.unwrap().len(), in_c1);
    }

    #[tokio::test]
    async fn label_listings_with_other_matchers_take_the_exact_path() {
        let head = Head::new();
        head.append_series(&[
            s(&[("__name__", "a"), ("pod", "p1")], &[(1, 1.0)]),
            s(&[("__name__", "b"), ("pod", "p2")], &[(100, 1.0)]),
        ]);
        let req = SelectRequest::new(vec![Matcher::equal("__name__", "a")], TimeRange::ALL);
        assert_eq!(head.label_values("pod", &req).await.unwrap(), ["p1"]);
        assert_eq!(head.label_names(&req).await.unwrap(), ["__name__", "pod"]);
        // Without matchers, the index answers for a whole block when its span overlaps.
        head.freeze();
        let early = SelectRequest::new(Vec::new(), TimeRange::new(0, 10));
        assert_eq!(head.label_values("pod", &early).await.unwrap(), ["p1", "p2"]);
        let before = SelectRequest::new(Vec::new(), TimeRange::new(-10, 0));
        assert!(head.label_values("pod", &before).await.unwrap().is_empty());
        assert!(head.label_names(&before).await.unwrap().is_empty());
    }

    fn log(cluster: &str, t: i64, body: &str) -> LogRecord {
        LogRecord {
            labels: Labels::from_pairs(&[("cluster", cluster), ("service_name", "api")]),
            timestamp: t,
            body: body.to_string(),
            attributes: "{}".into(),
            resource_attributes: "{}".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn logs_are_selected_across_blocks_in_direction_with_limit_and_hints() {
        let head = Head::new();
        head.append_signals(SignalBlock {
            logs: vec![
                log("a", 1, "GET /x 200"),
                log("b", 2, "GET /y 500"),
                log("a", 3, "error: boom"),
            ],
            ..Default::default()
        });
        head.freeze();
        head.append_signals(SignalBlock {
            // A client retry resends record 3; it is returned once.
            logs: vec![
                log("a", 3, "error: boom"),
                log("a", 4, "GET /z 500"),
                log("a", 10, "late"),
            ],
            ..Default::default()
        });
        let req = |matchers: Vec<Matcher>, hints: Vec<LineHint>, direction, limit| LogRequest {
            matchers,
            start: 1,
            end: 10,
            line_hints: hints,
            direction,
            limit,
        };
        let bodies = |r: Vec<LogRecord>| r.into_iter().map(|r| r.body).collect::<Vec<_>>();
        let a = vec![Matcher::equal("cluster", "a")];
        assert_eq!(
            bodies(
                head.select_logs(&req(a.clone(), vec![], Direction::Forward, None))
                    .await
                    .unwrap()
            ),
            ["GET /x 200", "error: boom", "GET /z 500"]
        );
        assert_eq!(
            bodies(
                head.select_logs(&req(a.clone(), vec![], Direction::Backward, Some(2)))
                    .await
                    .unwrap()
            ),
            ["GET /z 500", "error: boom"]
        );
        let hints = vec![LineHint::Contains("GET".into()), LineHint::NotContains("200".into())];
        assert_eq!(
            bodies(
                head.select_logs(&req(vec![], hints, Direction::Forward, None))
                    .await
                    .unwrap()
            ),
            ["GET /y 500", "GET /z 500"]
        );
        let streams = head
            .log_streams(&req(vec![], vec![], Direction::Forward, None))
            .await
            .unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            head.log_label_values("cluster", &req(vec![], vec![], Direction::Forward, None))
                .await
                .unwrap(),
            ["a", "b"]
        );
    }
}
