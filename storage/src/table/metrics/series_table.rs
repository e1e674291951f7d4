//! Series tables: each metrics file's distinct series and the rows they occupy, decoded once and
//! kept in memory.
//!
//! A metrics file is immutable and its rows are sorted by (cluster, metric, labels, timestamp)
//! ([`crate::schema`]), so each series occupies one run of consecutive rows. A table records every
//! series' full label set and, per run, its rows and its first and last timestamp. With it:
//! - a select runs its matchers in memory and reads only the `timestamp` and `value` columns of
//!   the rows of matching series (no label column decoded, no label JSON parsed);
//! - `/api/v1/series` and label listings do not read the file at all, and are exact to the run's
//!   time span rather than to a page's.
//!
//! Building a table decodes the file's `cluster`, `metric`, `labels` and `timestamp` columns whole,
//! once; each distinct `labels` dictionary value is parsed once per dictionary. A file in another
//! row order (not our writer's) still reads correctly: a series then has several runs, or
//! unsorted timestamps within a run, and is marked so its samples are sorted after reading.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, Weak};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType};
use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray};
use parking_lot::Mutex;

use super::listing::FileLabels;
use crate::schema;
use crate::table::series::{Keyed, SeriesList};
use crate::types::{self, Label, Labels, Matcher, SeriesId, SeriesIdSet, TimeRange, TimestampMs};
use crate::{Error, Result};

/// One series of a file.
#[derive(Debug)]
pub(super) struct TableSeries {
    /// Shared with every other cached table holding the series ([`Interner`]).
    pub labels: Arc<Labels>,
    /// [`Labels::series_id`] of `labels`: finds the series again across files.
    pub id: SeriesId,
}

/// A [`Run`] while its table is built.
#[derive(Debug)]
struct BuildRun {
    start: usize,
    end: usize,
    series: u32,
    min_ts: TimestampMs,
    max_ts: TimestampMs,
}

/// Consecutive rows of one series. Kept small (20 bytes): a long range over many series holds
/// one per series per hourly file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    /// Absolute row numbers in the file, `start..end`.
    pub start: u32,
    pub end: u32,
    /// Index into [`SeriesTable::series`].
    pub series: u32,
    /// Smallest and largest timestamp of the run's rows, in milliseconds after the table's
    /// `base`. Offsets past `u32` range are widened (the smallest down, the largest to
    /// [`u32::MAX`], read as "no bound"), so a span is never narrower than the run's.
    min: u32,
    max: u32,
}

/// `t` as a [`Run`] time offset from `base`: 0 before it, [`u32::MAX`] past the `u32` range
/// (a run's span is widened, never narrowed; a range's end stays past every run it covers).
fn offset(base: TimestampMs, t: TimestampMs) -> u32 {
    u32::try_from(t.saturating_sub(base).max(0)).unwrap_or(u32::MAX)
}

impl Run {
    pub(super) fn rows(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(super) fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

/// One file's series and runs.
#[derive(Debug, Default)]
pub(super) struct SeriesTable {
    pub series: Vec<TableSeries>,
    /// In row order, disjoint.
    pub runs: Vec<Run>,
    /// What run time offsets count from: the file's smallest timestamp.
    base: TimestampMs,
    /// Series by metric name, so `__name__` matchers run once per metric.
    metrics: Vec<(String, Vec<u32>)>,
    /// Series indexes by id, for reads that name few series; built on first use. Holds
    /// indexes only (ids are hashes already), about 6 bytes a series.
    by_id: OnceLock<hashbrown::HashTable<u32>>,
    /// Series whose rows are not one run of ascending timestamps (files not in our writer's
    /// order), sorted: their samples must be sorted after reading.
    unsorted: Vec<u32>,
    /// Series `i` has exactly one run, `runs[i]` (our writer's files): a series' runs are
    /// found without visiting the others.
    aligned: bool,
    /// `labels` dictionary values parsed while building (what tests look at).
    pub parsed: usize,
    bytes: usize,
}

impl SeriesTable {
    /// Approximate heap bytes, for the cache budget.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The series all `matchers` accept (and `only` holds, when given), as ascending indexes
    /// into [`SeriesTable::series`]. Sparse: a selective request costs what it matches, not
    /// what the file holds.
    pub(super) fn accepted(&self, matchers: &[Matcher], only: Option<&SeriesIdSet>) -> Vec<u32> {
        let (by_name, rest): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.name == types::METRIC_NAME);
        let groups: Vec<&[u32]> = self
            .metrics
            .iter()
            .filter(|(metric, _)| by_name.iter().all(|m| m.matches(metric)))
            .map(|(_, ids)| ids.as_slice())
            .collect();
        let candidates: usize = groups.iter().map(|ids| ids.len()).sum();
        let mut out = Vec::new();
        if let Some(only) = only
            && only.len() * 4 < candidates
        {
            // A part of a large read names few of the candidates: look them up rather than
            // visit all.
            let id_of = |i: &u32| self.series[*i as usize].id.0;
            let by_id = self.by_id.get_or_init(|| {
                let mut index = hashbrown::HashTable::with_capacity(self.series.len());
                for i in 0..self.series.len() as u32 {
                    index.insert_unique(id_of(&i), i, id_of);
                }
                index
            });
            for id in only {
                if let Some(&i) = by_id.find(id.0, |i| id_of(i) == id.0)
                    && matchers
                        .iter()
                        .all(|m| m.matches_labels(&self.series[i as usize].labels))
                {
                    out.push(i);
                }
            }
            out.sort_unstable();
            return out;
        }
        for ids in &groups {
            out.extend(ids.iter().copied().filter(|&id| {
                let s = &self.series[id as usize];
                only.is_none_or(|only| only.contains(&s.id)) && rest.iter().all(|m| m.matches_labels(&s.labels))
            }));
        }
        // Each metric's ids ascend; several metrics' interleave.
        if groups.len() > 1 {
            out.sort_unstable();
        }
        out
    }

    /// The runs of `accepted` series ([`SeriesTable::accepted`]) whose time span overlaps
    /// `range`, in row order.
    pub(super) fn runs_in(&self, accepted: &[u32], range: &TimeRange) -> Vec<&Run> {
        // The range as offsets from `base`: runs overlap it when `min <= hi && max >= lo`.
        if range.end < self.base || range.start > range.end {
            return Vec::new();
        }
        let (lo, hi) = (offset(self.base, range.start), offset(self.base, range.end));
        let overlaps = |r: &Run| r.min <= hi && r.max >= lo;
        if self.aligned {
            return accepted
                .iter()
                .map(|&i| &self.runs[i as usize])
                .filter(|r| overlaps(r))
                .collect();
        }
        let mut mask = vec![false; self.series.len()];
        for &i in accepted {
            mask[i as usize] = true;
        }
        self.runs
            .iter()
            .filter(|r| mask[r.series as usize] && overlaps(r))
            .collect()
    }

    /// Whether series `i`'s samples may be out of order ([`SeriesTable::unsorted`]).
    pub(super) fn unsorted(&self, i: u32) -> bool {
        self.unsorted.binary_search(&i).is_ok()
    }

    /// Per `accepted` series with rows in [`SeriesTable::runs_in`]: its index and its row count
    /// there, an upper bound of its samples in range. Ascending by index.
    pub(super) fn rows_in(&self, accepted: &[u32], range: &TimeRange) -> Vec<(u32, usize)> {
        let runs = self.runs_in(accepted, range);
        if self.aligned {
            return runs.into_iter().map(|r| (r.series, r.len())).collect();
        }
        let mut rows: HashMap<u32, usize> = HashMap::new();
        for r in runs {
            *rows.entry(r.series).or_default() += r.len();
        }
        let mut out: Vec<(u32, usize)> = rows.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// The file's label listing: every label name with its values, and the cluster values.
    pub(super) fn listing(&self) -> FileLabels {
        let mut values: HashMap<String, HashSet<String>> = HashMap::new();
        let mut clusters = HashSet::new();
        for s in &self.series {
            for l in s.labels.iter() {
                match values.get_mut(l.name) {
                    Some(vs) if vs.contains(l.value) => {}
                    Some(vs) => {
                        vs.insert(l.value.to_string());
                    }
                    None => {
                        values.insert(l.name.to_string(), [l.value.to_string()].into());
                    }
                }
            }
            let cluster = s.labels.get(types::CLUSTER).unwrap_or("");
            if !clusters.contains(cluster) {
                clusters.insert(cluster.to_string());
            }
        }
        FileLabels::new(values, clusters)
    }
}

impl Keyed for TableSeries {
    fn id(&self) -> SeriesId {
        self.id
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
}

/// The dictionary a column's batches share, to notice when a row group brings another.
#[derive(Debug, Default)]
struct Dict(Option<StringArray>);

impl Dict {
    /// Adopts `values`; true when they differ from the dictionary held.
    fn adopt(&mut self, values: &StringArray) -> bool {
        if let Some(v) = &self.0
            && v.len() == values.len()
            && v.offsets().ptr_eq(values.offsets())
            && v.values().ptr_eq(values.values())
        {
            return false;
        }
        self.0 = Some(values.clone());
        true
    }
}

/// Per-dictionary-value results, valid while batches keep sharing one dictionary.
#[derive(Debug, Default)]
struct DictCache<T> {
    dict: Dict,
    entries: Vec<Option<T>>,
}

impl<T> DictCache<T> {
    /// Adopts `values`; true when they differ from the cached dictionary (entries reset).
    fn sync(&mut self, values: &StringArray) -> bool {
        if !self.dict.adopt(values) {
            return false;
        }
        self.entries.clear();
        self.entries.resize_with(values.len(), || None);
        true
    }
}

/// Builds a [`SeriesTable`] from a file's batches, in file order, of the columns `cluster`,
/// `metric`, `labels`, `timestamp` (every row of the file).
pub(super) struct TableBuilder<'k> {
    key: &'k str,
    interner: &'k Interner,
    /// Heap bytes of the label sets this table created (not found in the interner).
    created_bytes: usize,
    /// Per `labels` dictionary value: the parsed labels (without `__name__` and `cluster`).
    labels: DictCache<Vec<Label>>,
    clusters: Dict,
    /// Per `metric` dictionary value: its group in `groups`.
    metrics: DictCache<u32>,
    /// Series by metric name, in first-seen order, and each group by name.
    groups: Vec<(String, Vec<u32>)>,
    group_of: HashMap<String, u32>,
    /// Key triple → series, valid for the current dictionaries.
    triples: HashMap<(i32, i32, i32), u32, ahash::RandomState>,
    list: SeriesList<TableSeries>,
    runs: Vec<BuildRun>,
    /// Per series: has a run already.
    has_run: Vec<bool>,
    /// Per series: its rows are not one run of ascending timestamps.
    unsorted: Vec<bool>,
    /// Absolute row of the next batch's first row.
    row: usize,
    parsed: usize,
}

impl<'k> TableBuilder<'k> {
    pub(super) fn new(key: &'k str, interner: &'k Interner) -> Self {
        Self {
            key,
            interner,
            created_bytes: 0,
            labels: DictCache::default(),
            clusters: Dict::default(),
            metrics: DictCache::default(),
            groups: Vec::new(),
            group_of: HashMap::new(),
            triples: HashMap::default(),
            list: SeriesList::default(),
            runs: Vec::new(),
            has_run: Vec::new(),
            unsorted: Vec::new(),
            row: 0,
            parsed: 0,
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            key: self.key.to_string(),
            reason: reason.into(),
        }
    }

    fn dict<'b>(&self, batch: &'b RecordBatch, i: usize) -> Result<(&'b [i32], &'b StringArray)> {
        let d: &DictionaryArray<Int32Type> = batch
            .column(i)
            .as_dictionary_opt()
            .ok_or_else(|| self.corrupt(format!("column {i} is not a dictionary")))?;
        let values = d
            .values()
            .as_string_opt::<i32>()
            .ok_or_else(|| self.corrupt("dictionary of non-strings"))?;
        if d.keys().null_count() > 0 || d.keys().values().iter().any(|&k| k < 0 || k as usize >= values.len()) {
            return Err(self.corrupt("null or out-of-range dictionary key"));
        }
        Ok((d.keys().values(), values))
    }

    pub(super) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let (ck, cv) = self.dict(batch, 0)?;
        let (mk, mv) = self.dict(batch, 1)?;
        let (lk, lv) = self.dict(batch, 2)?;
        let ts = match batch.column(3).as_primitive_opt::<TimestampMillisecondType>() {
            Some(t) if t.null_count() == 0 => t.values(),
            _ => return Err(self.corrupt("timestamp column has an unexpected type or nulls")),
        };
        if u32::try_from(self.row + batch.num_rows()).is_err() {
            return Err(self.corrupt("more than 2^32 rows"));
        }
        // `|` rather than `||`: every cache must adopt its new dictionary.
        if self.clusters.adopt(cv) | self.metrics.sync(mv) | self.labels.sync(lv) {
            self.triples.clear();
        }
        let (n, mut row) = (batch.num_rows(), 0);
        // Rows come in runs of one series (the file's sort order): resolve once per run.
        while row < n {
            let triple = (ck[row], mk[row], lk[row]);
            let mut end = row + 1;
            while end < n && (ck[end], mk[end], lk[end]) == triple {
                end += 1;
            }
            let id = match self.triples.get(&triple) {
                Some(&id) => id,
                None => {
                    let id = self.resolve(triple, cv, mv, lv)?;
                    self.triples.insert(triple, id);
                    id
                }
            };
            self.add_run(id, self.row + row, &ts[row..end]);
            row = end;
        }
        self.row += n;
        Ok(())
    }

    fn add_run(&mut self, id: u32, start: usize, ts: &[TimestampMs]) {
        let sorted = ts.is_sorted();
        let (min_ts, max_ts) = if sorted {
            (ts[0], ts[ts.len() - 1])
        } else {
            let min = ts.iter().copied().min().unwrap_or_default();
            (min, ts.iter().copied().max().unwrap_or_default())
        };
        let end = start + ts.len();
        if self.has_run.len() <= id as usize {
            self.has_run.resize(id as usize + 1, false);
            self.unsorted.resize(id as usize + 1, false);
        }
        let unsorted = &mut self.unsorted[id as usize];
        *unsorted |= !sorted;
        match self.runs.last_mut() {
            // The same series continued across a batch or row-group boundary.
            Some(last) if last.series == id && last.end == start => {
                *unsorted |= min_ts < last.max_ts;
                last.end = end;
                last.min_ts = last.min_ts.min(min_ts);
                last.max_ts = last.max_ts.max(max_ts);
            }
            _ => {
                // A series met again after another one: not our writer's order.
                *unsorted |= std::mem::replace(&mut self.has_run[id as usize], true);
                self.runs.push(BuildRun {
                    start,
                    end,
                    series: id,
                    min_ts,
                    max_ts,
                });
            }
        }
    }

    /// The series of one key triple, added when new. A series another table already holds is
    /// taken from the interner without parsing its labels.
    fn resolve(
        &mut self,
        (c, m, l): (i32, i32, i32),
        cv: &StringArray,
        mv: &StringArray,
        lv: &StringArray,
    ) -> Result<u32> {
        let (cluster, metric, text) = (cv.value(c as usize), mv.value(m as usize), lv.value(l as usize));
        let key = Interner::key(cluster, metric, text);
        let (labels, id) = match self.interner.get(key, cluster, metric, text) {
            Some(found) => found,
            None => {
                let l = l as usize;
                if self.labels.entries[l].is_none() {
                    let parsed =
                        schema::parse_labels_json(text).map_err(|e| self.corrupt(format!("labels {text:?}: {e}")))?;
                    self.parsed += 1;
                    self.labels.entries[l] = Some(parsed);
                }
                let mut full = self.labels.entries[l].clone().unwrap_or_default();
                full.push(Label::new(types::METRIC_NAME, metric));
                full.push(Label::new(types::CLUSTER, cluster));
                let labels = Arc::new(Labels::new(full));
                let id = labels.series_id();
                self.interner.insert(key, (cluster, metric, text), &labels, id);
                self.created_bytes += std::mem::size_of::<Labels>() + labels.heap_bytes();
                (labels, id)
            }
        };
        let at = match self.list.find(id, &labels) {
            Some(at) => return Ok(at as u32),
            None => self.list.push(TableSeries { id, labels }),
        };
        let at = u32::try_from(at).map_err(|_| self.corrupt("more than 2^32 series"))?;
        let group = match self.metrics.entries[m as usize] {
            Some(g) => g,
            None => {
                let g = *self.group_of.entry(metric.to_string()).or_insert_with(|| {
                    self.groups.push((metric.to_string(), Vec::new()));
                    self.groups.len() as u32 - 1
                });
                self.metrics.entries[m as usize] = Some(g);
                g
            }
        };
        self.groups[group as usize].1.push(at);
        Ok(at)
    }

    pub(super) fn finish(self) -> SeriesTable {
        let base = self.runs.iter().map(|r| r.min_ts).min().unwrap_or_default();
        let runs: Vec<Run> = self
            .runs
            .iter()
            .map(|r| Run {
                start: r.start as u32,
                end: r.end as u32,
                series: r.series,
                min: offset(base, r.min_ts),
                max: offset(base, r.max_ts),
            })
            .collect();
        let unsorted: Vec<u32> = (0..self.unsorted.len() as u32)
            .filter(|&i| self.unsorted[i as usize])
            .collect();
        let metrics = self.groups;
        const STRING: usize = std::mem::size_of::<String>();
        // Label sets another table already held cost this one a pointer only. `by_id` is
        // counted whether or not it gets built.
        let bytes = self.created_bytes
            + self.list.items.len() * (std::mem::size_of::<TableSeries>() + 6)
            + runs.len() * std::mem::size_of::<Run>()
            + unsorted.len() * 4
            + metrics
                .iter()
                .map(|(m, ids)| m.len() + STRING + 4 * ids.len())
                .sum::<usize>();
        let aligned =
            runs.len() == self.list.items.len() && runs.iter().enumerate().all(|(i, r)| r.series as usize == i);
        SeriesTable {
            aligned,
            base,
            series: self.list.items,
            runs,
            metrics,
            by_id: OnceLock::new(),
            unsorted,
            parsed: self.parsed,
            bytes,
        }
    }
}

/// One copy of each label set among the cached tables: a series lives in a file per hour, so a
/// long range would otherwise hold (and parse) its labels once per file. Keyed by a hash of the
/// series as files store it (`cluster`, `metric`, `labels` text), so a known series is found
/// before its JSON is parsed; a hit is checked against the text, so a hash collision only costs
/// a parse. Entries are weak: a label set goes when the last table holding it is evicted, and
/// dead entries are swept as the map grows.
#[derive(Debug, Default)]
pub(super) struct Interner {
    state: Mutex<InternerState>,
}

#[derive(Debug, Default)]
struct InternerState {
    by_key: HashMap<u64, Interned, ahash::RandomState>,
    /// Entries after the last sweep.
    swept: usize,
}

#[derive(Debug)]
struct Interned {
    labels: Weak<Labels>,
    id: SeriesId,
    /// What the key hashed: `cluster`, `metric` and the labels text, concatenated, with the
    /// lengths of the first two. A hit is checked against it (a comparison, not a rendering).
    source: Box<str>,
    cluster_len: u32,
    metric_len: u32,
}

impl Interned {
    fn is(&self, cluster: &str, metric: &str, text: &str) -> bool {
        let (c, m) = (self.cluster_len as usize, self.metric_len as usize);
        self.source.len() == c + m + text.len()
            && &self.source[..c] == cluster
            && &self.source[c..c + m] == metric
            && &self.source[c + m..] == text
    }
}

impl Interner {
    fn key(cluster: &str, metric: &str, text: &str) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for part in [cluster, metric, text] {
            h.update(part.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// The live label set stored as (`cluster`, `metric`, `text`), with its id.
    fn get(&self, key: u64, cluster: &str, metric: &str, text: &str) -> Option<(Arc<Labels>, SeriesId)> {
        let state = self.state.lock();
        let found = state.by_key.get(&key)?;
        if !found.is(cluster, metric, text) {
            return None;
        }
        Some((found.labels.upgrade()?, found.id))
    }

    fn insert(&self, key: u64, (cluster, metric, text): (&str, &str, &str), labels: &Arc<Labels>, id: SeriesId) {
        let entry = Interned {
            labels: Arc::downgrade(labels),
            id,
            source: [cluster, metric, text].concat().into_boxed_str(),
            cluster_len: cluster.len() as u32,
            metric_len: metric.len() as u32,
        };
        let mut state = self.state.lock();
        state.by_key.insert(key, entry);
        if state.by_key.len() > 2 * state.swept.max(1 << 16) {
            state.by_key.retain(|_, e| e.labels.strong_count() > 0);
            state.swept = state.by_key.len();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.state.lock().by_key.len()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use arrow_array::{ArrayRef, Float64Array, Int32Array, TimestampMillisecondArray, UInt64Array};

    use super::*;

    const DAY: i64 = 86_400_000;

    /// A metrics batch of rows (`labels` text, timestamp, value), all of cluster `c`, metric
    /// `m`, in the order given (not necessarily our writer's).
    pub(in crate::table::metrics) fn batch_of_rows(rows: &[(&str, i64, f64)]) -> RecordBatch {
        let n = rows.len();
        let dict = |values: Vec<&str>| -> ArrayRef {
            let keys: Vec<i32> = (0..values.len() as i32).collect();
            Arc::new(
                DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(StringArray::from(values)))
                    .unwrap(),
            )
        };
        RecordBatch::try_new(
            schema::metrics_schema(),
            vec![
                dict(vec!["c"; n]),
                dict(vec!["m"; n]),
                dict(rows.iter().map(|r| r.0).collect()),
                Arc::new(UInt64Array::from(vec![0u64; n])),
                Arc::new(
                    TimestampMillisecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC"),
                ),
                Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    /// A table of one batch of rows (`labels` text, timestamp).
    fn table(rows: &[(&str, i64)]) -> SeriesTable {
        let rows: Vec<(&str, i64, f64)> = rows.iter().map(|&(l, t)| (l, t, 1.0)).collect();
        let batch = batch_of_rows(&rows);
        let interner = Interner::default();
        let mut builder = TableBuilder::new("test", &interner);
        // What a table is built from: `cluster`, `metric`, `labels`, `timestamp`.
        builder.push(&batch.project(&[0, 1, 2, 4]).unwrap()).unwrap();
        builder.finish()
    }

    fn pods(t: &SeriesTable, range: TimeRange) -> Vec<String> {
        let all = t.accepted(&[], None);
        t.runs_in(&all, &range)
            .iter()
            .map(|r| t.series[r.series as usize].labels.get("pod").unwrap().to_string())
            .collect()
    }

    /// Run spans are offsets from the file's first timestamp; a file spanning more than `u32`
    /// milliseconds (about 49.7 days, never one of ours) still finds every run a range meets,
    /// with spans widened, never narrowed.
    #[test]
    fn run_spans_are_exact_within_u32_offsets_and_widened_past_them() {
        let t = table(&[
            (r#"{"pod":"a"}"#, 1_000),
            (r#"{"pod":"a"}"#, 1_010),
            (r#"{"pod":"b"}"#, 1_000),
            (r#"{"pod":"b"}"#, 1_000 + 100 * DAY),
            (r#"{"pod":"c"}"#, 1_000 + 60 * DAY),
            (r#"{"pod":"c"}"#, 1_000 + 61 * DAY),
        ]);
        assert!(t.aligned);
        assert_eq!(pods(&t, TimeRange::new(1_005, 1_005)), ["a", "b"]);
        assert_eq!(pods(&t, TimeRange::new(1_011, 2_000)), ["b"], "exact: a ends at 1010");
        assert_eq!(
            pods(&t, TimeRange::new(0, 999)),
            Vec::<String>::new(),
            "exact: all start at 1000"
        );
        assert_eq!(pods(&t, TimeRange::new(0, 1_000)), ["a", "b"]);
        // Past the offsets' range: b and c are kept (widened), a is not.
        assert_eq!(pods(&t, TimeRange::new(1_000 + 60 * DAY, 1_000 + 60 * DAY)), ["b", "c"]);
        assert_eq!(pods(&t, TimeRange::new(200 * DAY, 300 * DAY)), ["b", "c"]);
        assert_eq!(pods(&t, TimeRange::new(-DAY, -1)), Vec::<String>::new());
    }

    /// Reads naming few series find them through the id order; series met again or out of
    /// order are marked unsorted, and their runs still come in row order.
    #[test]
    fn named_series_and_unsorted_runs() {
        let mut rows: Vec<(String, i64)> = (0..40).map(|i| (format!(r#"{{"pod":"p{i:02}"}}"#), 10)).collect();
        rows.push((r#"{"pod":"p03"}"#.into(), 5));
        rows.push((r#"{"pod":"p07"}"#.into(), 20));
        rows.push((r#"{"pod":"p07"}"#.into(), 15));
        let rows: Vec<(&str, i64)> = rows.iter().map(|(l, t)| (l.as_str(), *t)).collect();
        let t = table(&rows);
        assert!(!t.aligned);
        let id = |p: &str| t.series.iter().find(|s| s.labels.get("pod") == Some(p)).unwrap().id;
        let only: SeriesIdSet = [id("p03"), id("p07"), SeriesId(12345)].into_iter().collect();
        let accepted = t.accepted(&[], Some(&only));
        let named: Vec<&str> = accepted
            .iter()
            .map(|&i| t.series[i as usize].labels.get("pod").unwrap())
            .collect();
        assert_eq!(named, ["p03", "p07"]);
        let runs = t.runs_in(&accepted, &TimeRange::new(0, 100));
        assert_eq!(runs.len(), 4);
        assert!(runs.windows(2).all(|w| w[0].start < w[1].start), "row order");
        assert_eq!(
            t.rows_in(&accepted, &TimeRange::new(0, 100))
                .iter()
                .map(|r| r.1)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        let unsorted: Vec<&str> = (0..t.series.len() as u32)
            .filter(|&i| t.unsorted(i))
            .map(|i| t.series[i as usize].labels.get("pod").unwrap())
            .collect();
        assert_eq!(unsorted, ["p03", "p07"]);
        let m = Matcher::new(types::MatchOp::RegexMatch, "pod", "p0[0-4]").unwrap();
        assert_eq!(t.accepted(std::slice::from_ref(&m), None), [0, 1, 2, 3, 4]);
    }
}
