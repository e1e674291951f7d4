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
//! by its *raw* key (the hash of its label bytes as they arrived, see [`input::RawKey`]), so the
//! decoder can skip validating and parsing labels it has already accepted. The raw index is
//! cleared at each freeze, which bounds it to the series of one flush period; why that is safe
//! is the known-span invariant, written down once in [`input`].
//!
//! The head owns its input types ([`input`]); decoders produce them, and [`Head::apply`] is the
//! one way a write (live or replayed) changes the head.
//!
//! Samples are held compressed (`head/chunks.rs`: Prometheus XOR chunks, about 2–3.5 bytes a
//! sample instead of 16), in the active part and in frozen blocks alike; a read decodes only
//! the chunks its range meets, and a flush decodes a frozen block a file part at a time
//! ([`Frozen::series_inputs`]), so memory during a flush stays near the compressed head's.
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
use parking_lot::{Mutex, RwLock};
use tributary_storage::SeriesInput;
use tributary_storage::read::{
    LogRequest, LogSource, PatternRequest, PatternSum, Patterns, SelectRequest, SeriesSize, Source, StreamVolume,
    VolumeRequest, VolumeSum, sorted_union,
};
use tributary_storage::types::{
    CLUSTER, Labels, Matcher, Series, SeriesId, TimeRange, TimestampMs, matches_all, sort_dedup_samples,
};
use tributary_storage::xor_chunk::ChunkedSeries;

mod chunks;
pub mod input;
mod label_index;
mod read;
mod shard;
pub mod signals;

use input::{Input, KnownSeries, RawKey, RawKeyMap, WriteBatch};
use label_index::LabelIndex;
use shard::{Lookup, MemSeries, Shard};
use signals::ActiveSignals;
pub use signals::SignalBlock;
use tributary_storage::signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, Span};

const SHARDS: usize = 16;
/// A select that may visit this many series of the active part copies them out on several
/// threads (below it, starting threads costs more than it saves).
const PARALLEL_SELECT_SERIES: usize = 4096;

/// An immutable block of the head, being written to Parquet.
#[derive(Debug)]
pub struct Frozen {
    /// The active part's series as they were, compressed (decoded a file part at a time by
    /// the writer, through [`Frozen::series_inputs`]).
    series: Vec<MemSeries>,
    /// Float samples in `series`.
    pub samples: usize,
    /// Log records, native histograms, exemplars and metadata of the same period.
    pub signals: SignalBlock,
    /// Approximate bytes of `signals`' log records.
    log_bytes: usize,
    /// The active part's label index, as it was at the freeze.
    labels: LabelIndex,
    /// When its flush was committed: from then on it is only kept readable (for
    /// `ingest.head.keep_flushed`) and is never flushed again.
    published: Mutex<Option<std::time::Instant>>,
}

impl Frozen {
    /// Series in the block.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The block's series as the metrics writer's input: each decodes its samples when the
    /// writer builds the file part that holds them, so a flush never holds the block decoded.
    pub fn series_inputs(&self) -> Vec<&dyn SeriesInput> {
        self.series.iter().map(|s| s as &dyn SeriesInput).collect()
    }

    /// The block's series decoded (sorted by time, one sample per timestamp).
    #[cfg(test)]
    pub(crate) fn decoded(&self) -> Vec<Series> {
        self.series
            .iter()
            .map(|s| Series::new((*s.labels).clone(), s.read_sorted(TimeRange::ALL)))
            .collect()
    }
}

/// What the raw index remembers of a series: enough to append without its wire labels.
#[derive(Debug, Clone)]
struct RawEntry {
    id: SeriesId,
    labels: Arc<Labels>,
    /// Its `cluster` label's index in [`Head::clusters`]: per-cluster usage counts a write's
    /// known spans by it and names each cluster once, where scanning the labels cost a cache
    /// miss per label. A placement carries it too.
    cluster: u32,
}

/// How [`Head::append`] finds a span's series in its shard.
#[derive(Debug)]
enum Found {
    /// By the decoder's [`input::Placement`] (its label set's address).
    Placed(usize),
    /// Known: the raw index's labels.
    Known(Arc<Labels>),
    /// By the span's own labels (created if new).
    New,
}

/// A span on its way into the head: (shard, series id, span index, how to find it).
type Placing = (u8, SeriesId, u32, Found);

/// What one append gathers across shards, applied once the shards are unlocked.
#[derive(Debug)]
struct Appended {
    new_series: usize,
    /// Raw keys of fully decoded spans, for the raw index.
    learned: Vec<(RawKey, RawEntry)>,
    /// Series that got their first sample, for the label index.
    first: Vec<Arc<Labels>>,
    min_t: TimestampMs,
    max_t: TimestampMs,
}

impl Default for Appended {
    fn default() -> Self {
        Self {
            new_series: 0,
            learned: Vec::new(),
            first: Vec::new(),
            min_t: TimestampMs::MAX,
            max_t: TimestampMs::MIN,
        }
    }
}

/// Recent data in memory. See the module docs for the lifecycle.
#[derive(Debug)]
pub struct Head {
    shards: Box<[Mutex<Shard>]>,
    raw: Box<[RwLock<RawKeyMap<RawEntry>>]>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    /// Labels of the active part's series with samples, and their span (see [`label_index`]).
    /// One for all shards, so a listing is one pass over distinct values; appends lock it once
    /// per batch, and only add to it for series getting their first sample.
    labels: Mutex<LabelIndex>,
    active_samples: AtomicUsize,
    active_series: AtomicUsize,
    signals: ActiveSignals,
    /// Cluster names by [`RawEntry::cluster`] index; never shrinks (a fleet's cluster names, a
    /// few hundred strings), so an index names one cluster for good.
    clusters: Mutex<ClusterNames>,
}

impl crate::quota::LabelsOf for Head {
    fn labels_of(&self, key: RawKey) -> Option<Arc<Labels>> {
        self.labels_of_raw(key)
    }

    fn cluster_of(&self, key: RawKey) -> Option<u32> {
        self.raw[Self::raw_shard(key)].read().get(&key).map(|e| e.cluster)
    }

    fn cluster_at(&self, index: u32) -> Option<Arc<str>> {
        self.clusters.lock().by_index.get(index as usize).cloned()
    }
}

/// The head's cluster names, each with the index a [`input::Placement`] carries.
#[derive(Debug, Default)]
struct ClusterNames {
    index: HashMap<Arc<str>, u32>,
    by_index: Vec<Arc<str>>,
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    /// An empty head.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            raw: (0..SHARDS).map(|_| RwLock::new(RawKeyMap::default())).collect(),
            frozen: RwLock::new(Vec::new()),
            labels: Mutex::new(LabelIndex::default()),
            active_samples: AtomicUsize::new(0),
            active_series: AtomicUsize::new(0),
            signals: ActiveSignals::default(),
            clusters: Mutex::new(ClusterNames::default()),
        }
    }

    /// A cluster name's index in [`Head::clusters`], added if new.
    fn cluster_index(&self, name: &str) -> u32 {
        let mut names = self.clusters.lock();
        if let Some(ix) = names.index.get(name) {
            return *ix;
        }
        let fresh: Arc<str> = Arc::from(name);
        let ix = names.by_index.len() as u32;
        names.index.insert(fresh.clone(), ix);
        names.by_index.push(fresh);
        ix
    }

    fn shard_of(id: SeriesId) -> usize {
        (id.0 >> 40) as usize % SHARDS
    }

    fn raw_shard(key: RawKey) -> usize {
        (key >> 100) as usize % SHARDS
    }

    /// Adds a decoded batch. Each shard is locked once per batch (twice for the rare known span
    /// whose placement no longer names its series).
    ///
    /// Returns how many samples could not be placed: those of a `known` span whose raw key is no
    /// longer indexed. The ingester's gate makes that impossible; if it ever happens the caller
    /// must not acknowledge the request (it answers a retryable error instead).
    #[must_use = "unplaced samples must fail the request"]
    pub fn append(&self, batch: &WriteBatch<'_>) -> usize {
        let mut unplaced = 0;
        let mut order: Vec<Placing> = Vec::with_capacity(batch.series.len());
        for (i, s) in batch.series.iter().enumerate() {
            let found = match (s.known, s.placed) {
                (true, Some(p)) => (p.id, Found::Placed(p.labels)),
                (true, _) => match self.known_labels(s.raw_key) {
                    Some((id, labels)) => (id, Found::Known(labels)),
                    // The ingester's gate keeps a known key in the index until the append; a
                    // miss here would mean a span without labels, which we must not store wrongly.
                    None => {
                        unplaced += batch.series_samples(s).len();
                        continue;
                    }
                },
                _ => (SeriesId::of(batch.series_labels(s).iter().copied()), Found::New),
            };
            order.push((Self::shard_of(found.0) as u8, found.0, i as u32, found.1));
        }
        let mut acc = Appended::default();
        let retry = self.place(batch, order, &mut acc);
        // Spans whose placement named another series than the one now under its id: looked up
        // by raw key, as any known span without a placement.
        let mut again: Vec<Placing> = Vec::new();
        for i in retry {
            let s = &batch.series[i as usize];
            match self.known_labels(s.raw_key) {
                Some((id, labels)) => again.push((Self::shard_of(id) as u8, id, i, Found::Known(labels))),
                None => unplaced += batch.series_samples(s).len(),
            }
        }
        if !again.is_empty() {
            let retry = self.place(batch, again, &mut acc);
            debug_assert!(retry.is_empty(), "only placed spans are retried");
        }
        let Appended {
            new_series,
            mut learned,
            first,
            min_t,
            max_t,
        } = acc;
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

    /// The id and labels the raw index holds under a known span's key.
    fn known_labels(&self, key: Option<RawKey>) -> Option<(SeriesId, Arc<Labels>)> {
        let k = key?;
        self.raw[Self::raw_shard(k)]
            .read()
            .get(&k)
            .map(|e| (e.id, e.labels.clone()))
    }

    /// Appends the spans of `order` shard by shard, each shard locked once; returns the spans
    /// whose placement did not name the series under their id, appending nothing of them.
    fn place(&self, batch: &WriteBatch<'_>, mut order: Vec<Placing>, acc: &mut Appended) -> Vec<u32> {
        order.sort_unstable_by_key(|o| o.0);
        let mut retry = Vec::new();
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = self.shards[run[0].0 as usize].lock();
            shard.touch(run.iter().map(|p| p.1));
            let before = shard.series.len() + shard.collided.len();
            for (_, id, i, found) in run {
                let span = &batch.series[*i as usize];
                let ms = match found {
                    Found::Placed(labels) => match shard.placed(*id, *labels) {
                        Some(ms) => ms,
                        None => {
                            retry.push(*i);
                            continue;
                        }
                    },
                    Found::Known(labels) => shard.get_or_create_known(*id, labels),
                    Found::New => shard.get_or_create(*id, batch.series_labels(span)),
                };
                let was_empty = ms.samples.is_empty();
                ms.push(batch.series_samples(span));
                acc.min_t = acc.min_t.min(ms.min_t);
                acc.max_t = acc.max_t.max(ms.max_t);
                // Indexed once, when the series gets its first sample: a creation, not an append.
                if was_empty && !ms.samples.is_empty() {
                    acc.first.push(ms.labels.clone());
                }
                if let (false, Some(k)) = (span.known, span.raw_key) {
                    acc.learned.push((
                        k,
                        RawEntry {
                            id: *id,
                            labels: ms.labels.clone(),
                            cluster: self.cluster_index(ms.labels.get(CLUSTER).unwrap_or("")),
                        },
                    ));
                }
            }
            acc.new_series += shard.series.len() + shard.collided.len() - before;
        }
        retry
    }

    /// Adds already-built series (tests).
    #[cfg(test)]
    pub(crate) fn append_series(&self, series: &[Series]) {
        let mut batch = WriteBatch::default();
        batch.push_series(series, &[]);
        let unplaced = self.append(&batch);
        debug_assert_eq!(unplaced, 0, "built series are never `known`");
    }

    /// Applies one write: its float series and its other signals. The one way a write, live or
    /// replayed, changes the head.
    ///
    /// Returns how many samples could not be placed (see [`Head::append`]): non-zero means the
    /// write must not be acknowledged.
    #[must_use = "unplaced samples must fail the request"]
    pub fn apply(&self, input: Input<'_>) -> usize {
        let Input {
            mut floats,
            series,
            series_keys,
            signals,
        } = input;
        if !series.is_empty() {
            floats.push_series(&series, &series_keys);
        }
        let unplaced = if floats.series.is_empty() {
            0
        } else {
            self.append(&floats)
        };
        if !signals.is_empty() {
            self.append_signals(signals);
        }
        unplaced
    }

    /// The labels of the active series under raw key `key` (what a `known` span stands for).
    pub(crate) fn labels_of_raw(&self, key: RawKey) -> Option<Arc<Labels>> {
        self.raw[Self::raw_shard(key)]
            .read()
            .get(&key)
            .map(|e| e.labels.clone())
    }

    /// Samples in the active part (the part a flush would freeze).
    pub fn active_samples(&self) -> usize {
        self.active_samples.load(Ordering::Relaxed)
    }

    /// Series in the active part.
    pub fn active_series(&self) -> usize {
        self.active_series.load(Ordering::Relaxed)
    }

    /// Series in the active part by `cluster` value (from the label index: no series visited).
    pub fn active_series_by_cluster(&self) -> HashMap<String, u64> {
        self.labels.lock().counts(tributary_storage::types::CLUSTER)
    }

    /// Samples held in memory, active and frozen (published blocks kept readable excluded:
    /// they leave by themselves).
    pub fn total_samples(&self) -> usize {
        self.active_samples() + self.unpublished(|f| f.samples)
    }

    /// `size` summed over the frozen blocks not yet published.
    fn unpublished(&self, size: impl Fn(&Frozen) -> usize) -> usize {
        let frozen = self.frozen.read();
        let unpublished = frozen.iter().filter(|f| f.published.lock().is_none());
        unpublished.map(|f| size(f)).sum()
    }

    /// Adds log records, native histograms, exemplars and metadata (see [`signals`]).
    pub(crate) fn append_signals(&self, block: SignalBlock) {
        self.signals.append(block);
    }

    /// Approximate bytes of log records held and not yet published: the active part's and the
    /// frozen blocks' a flush is writing (or failed to write).
    pub fn total_log_bytes(&self) -> usize {
        self.active_log_bytes() + self.unpublished(|f| f.log_bytes)
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
            series.extend(taken.series.into_values().chain(taken.collided));
        }
        let samples = series.iter().map(|s| s.samples.len()).sum();
        self.active_samples.store(0, Ordering::Relaxed);
        self.active_series.store(0, Ordering::Relaxed);
        let log_bytes = self.signals.log_bytes();
        let signals = self.signals.take();
        let frozen = Arc::new(Frozen {
            series,
            samples,
            signals,
            log_bytes,
            labels,
            published: Mutex::new(None),
        });
        self.frozen.write().push(frozen.clone());
        frozen
    }

    /// Frozen blocks not yet published (a failed flush leaves them here to retry).
    pub fn frozen(&self) -> Vec<Arc<Frozen>> {
        self.frozen
            .read()
            .iter()
            .filter(|f| f.published.lock().is_none())
            .cloned()
            .collect()
    }

    /// Marks a frozen block as published (its flush is committed): it is never flushed again,
    /// and stays readable until [`Head::expire_published`] drops it.
    ///
    /// Why keep it: other processes (queriers) see a commit only at their next manifest
    /// refresh, and until then the head is the only place they can read the block's data
    /// from. Reading it from both places meanwhile is harmless: merges count a sample once.
    pub fn published(&self, block: &Arc<Frozen>) {
        *block.published.lock() = Some(std::time::Instant::now());
    }

    /// Drops the published blocks published at least `keep` ago.
    pub fn expire_published(&self, keep: std::time::Duration) {
        let expired = |f: &Arc<Frozen>| f.published.lock().is_some_and(|at| at.elapsed() >= keep);
        if self.frozen.read().iter().any(expired) {
            self.frozen.write().retain(|f| !expired(f));
        }
    }

    /// Forgets a frozen block at once (published, and not kept readable).
    pub fn drop_frozen(&self, block: &Arc<Frozen>) {
        self.frozen.write().retain(|f| !Arc::ptr_eq(f, block));
    }

    /// Visits every series (frozen blocks first, oldest first, then the active part) that
    /// matches `req.matchers` and whose span overlaps `req.range` (callers that need a sample
    /// in range ask the series: it may have a gap there). A label set may be visited more than
    /// once (once per block holding it). Shard locks are held only while a shard is visited.
    fn for_each_match(&self, req: &SelectRequest, mut f: impl FnMut(&MemSeries)) {
        for block in self.frozen.read().iter() {
            for s in &block.series {
                if s.overlaps(&req.range) && matches_all(&req.matchers, &s.labels) && req.admits(&s.labels) {
                    f(s);
                }
            }
        }
        Self::for_each_active_match(&self.shards, req, f);
    }

    /// [`Head::for_each_match`] over some shards of the active part.
    fn for_each_active_match(shards: &[Mutex<Shard>], req: &SelectRequest, mut f: impl FnMut(&MemSeries)) {
        let range = req.range;
        let lookup = Lookup::new(&req.matchers);
        for shard in shards {
            let shard = shard.lock();
            shard.for_each_candidate(&lookup, |s, undecided| {
                if s.overlaps(&range) && undecided.iter().all(|m| m.matches_labels(&s.labels)) && req.admits(&s.labels)
                {
                    f(s);
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
        // Whether the series' samples may need sorting (in several blocks).
        let mut unsorted: Vec<bool> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        self.for_each_match(req, |s| {
            let samples = s.read(req);
            if samples.is_empty() {
                return;
            }
            if let Some(&i) = index.get(&*s.labels) {
                out[i].samples.extend_from_slice(&samples);
                unsorted[i] = true;
                return;
            }
            index.insert((*s.labels).clone(), out.len());
            out.push(Series::new((*s.labels).clone(), samples));
            unsorted.push(false);
        });
        for (s, unsorted) in out.iter_mut().zip(unsorted) {
            if unsorted {
                // Older data was pushed first, so on equal timestamps the newer write wins.
                sort_dedup_samples(&mut s.samples);
            }
        }
        out
    }

    /// The series of [`Source::select_chunks`]: each matching label set once, with the chunks
    /// meeting the range of every block holding it, oldest block first. A label set found in
    /// several blocks is marked unsorted, so the decoder sorts it and the later write of a
    /// timestamp wins, as [`Head::select_series`] merges them.
    fn select_chunked(&self, req: &SelectRequest) -> Vec<ChunkedSeries> {
        let blocks = !self.frozen.read().is_empty();
        let mut out: Vec<ChunkedSeries> = Vec::new();
        let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
        self.for_each_match(req, |s| {
            let mut chunks = Vec::new();
            s.samples.chunks_meeting(req.range, &mut chunks);
            if chunks.is_empty() {
                return;
            }
            if blocks {
                if let Some(&i) = index.get(&s.labels) {
                    out[i].chunks.extend(chunks);
                    out[i].sorted = false;
                    return;
                }
                index.insert(s.labels.clone(), out.len());
            }
            out.push(ChunkedSeries {
                labels: s.labels.clone(),
                chunks,
                sorted: s.sorted,
            });
        });
        out
    }

    /// The matching series of some shards of the active part, where every label set is in one
    /// shard only, so series are built directly.
    fn select_active(shards: &[Mutex<Shard>], req: &SelectRequest) -> Vec<Series> {
        let mut out = Vec::new();
        Self::for_each_active_match(shards, req, |s| {
            let samples = s.read(req);
            if !samples.is_empty() {
                out.push(Series::new((*s.labels).clone(), samples));
            }
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

impl KnownSeries for Head {
    fn is_known(&self, key: RawKey) -> bool {
        self.raw[Self::raw_shard(key)].read().contains_key(&key)
    }

    /// Shard by shard: the keys' indexes bucketed by raw shard (a counting sort), then each
    /// shard's look-ups under one read lock, back to back.
    fn look_up(&self, keys: &[RawKey], out: &mut Vec<input::Lookup>) {
        let start = out.len();
        out.resize(start + keys.len(), input::Lookup::Unknown);
        let mut ends = [0u32; SHARDS];
        for k in keys {
            ends[Self::raw_shard(*k)] += 1;
        }
        let mut at = 0;
        for end in &mut ends {
            at += *end;
            *end = at;
        }
        let mut order = vec![0u32; keys.len()];
        for (i, k) in keys.iter().enumerate().rev() {
            let end = &mut ends[Self::raw_shard(*k)];
            *end -= 1;
            order[*end as usize] = i as u32;
        }
        // `ends` now holds each shard's first index in `order`.
        for (shard, from) in ends.iter().enumerate() {
            let to = ends.get(shard + 1).copied().unwrap_or(keys.len() as u32);
            if *from == to {
                continue;
            }
            let raw = self.raw[shard].read();
            for &i in &order[*from as usize..to as usize] {
                if let Some(e) = raw.get(&keys[i as usize]) {
                    out[start + i as usize] = input::Lookup::Placed(input::Placement {
                        id: e.id,
                        labels: Arc::as_ptr(&e.labels).addr(),
                        cluster: e.cluster,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
