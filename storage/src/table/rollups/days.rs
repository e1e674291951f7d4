//! Day reads for reads of one window ([`RollupsReader::select_window`]).
//!
//! A caller that folds every bucket of its range into one window (an instant query's range
//! selector: every rule evaluation) does not need a whole day's buckets one by one: the day's
//! rows of a series combined in time order ([`Bucket::append`]) give the same window. So each
//! rollup file whose day lies wholly inside the window is answered as one bucket per series
//! (labelled with the day's last bucket); a file whose day the window cuts gives its rows in the
//! window. Both are kept in memory per (file, matchers) within `storage.rollup_cache_bytes`
//! (files never change): a 30-day window then costs 30 summaries per series instead of 720
//! hourly rows, and a ruler asking the same selectors every minute decodes each file once. A
//! (cluster, day) with two live files (a rollup written again, not yet merged) is read row by
//! row, so copies are resolved exactly as [`RollupsReader::select`] resolves them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use futures::{StreamExt, TryStreamExt};

use tokio::sync::OnceCell;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;

use super::{BucketColumns, RollupsReader, read_columns, rollups_schema};
use crate::catalog::FileMeta;
use crate::parquet_io::{AbortOnDrop, ObjectReader, ParquetIo};
use crate::rollup::{Bucket, BucketFields, BucketSeries, DAY_MS, Resolution, SeriesPieces, sort_buckets_by_key};
use crate::table::file_cache::{FileCache, FileCacheStats, Weighed, matchers_key};
use crate::table::series::{key_col, series_labels, series_plan, series_runs, timestamps};
use crate::types::{Labels, METRIC_NAME, Matcher, SeriesId, TimeRange, matches_all};
use crate::{Error, Result};

/// What one rollup file gives a single-window read, per series: its id (for merging days
/// without hashing label sets), its labels (shared with the other days' entries) and its
/// buckets: the day's summary alone when the day is whole, else every row in time order.
/// `every` entries hold every series of the file (sorted by metric name), for any selector;
/// the others only the series of the matchers they were read for.
#[derive(Debug, Default)]
pub(crate) struct DayBuckets {
    series: Vec<(SeriesId, Arc<Labels>, Vec<Bucket>)>,
    every: bool,
}

impl DayBuckets {
    /// The entry's series `matchers` select (all of them for an entry read for `matchers`),
    /// with their indexes in it.
    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
    ) -> impl Iterator<Item = (usize, &'a (SeriesId, Arc<Labels>, Vec<Bucket>))> {
        let mut series = &self.series[..];
        let mut first = 0;
        // Of an `every` entry, the series of an exact metric name are a slice; the other
        // matchers are checked per series.
        let mut rest: Vec<&Matcher> = Vec::new();
        if self.every {
            rest = matchers.iter().collect();
            let pinned = rest
                .iter()
                .position(|m| m.name == METRIC_NAME && m.exact_value().is_some());
            if let Some(name) = pinned.map(|i| rest.swap_remove(i)).and_then(Matcher::exact_value) {
                let from = series.partition_point(|s| s.1.metric_name().unwrap_or("") < name);
                let to = from + series[from..].partition_point(|s| s.1.metric_name().unwrap_or("") == name);
                series = &series[from..to];
                first = from;
            }
        }
        series
            .iter()
            .enumerate()
            .map(move |(i, s)| (first + i, s))
            .filter(move |(_, s)| rest.iter().all(|m| m.matches_labels(&s.1)))
    }
}

impl Weighed for DayBuckets {
    /// The label sets are shared by every day of a series ([`DayCache`]), so not counted.
    fn bytes(&self) -> usize {
        self.series
            .iter()
            .map(|(_, _, b)| {
                std::mem::size_of::<(SeriesId, Arc<Labels>, Vec<Bucket>)>()
                    + b.capacity() * std::mem::size_of::<Bucket>()
            })
            .sum()
    }
}

/// The day reads kept, and one copy of each series' labels that they share (a series is in 30
/// files of a 30-day window).
#[derive(Debug)]
pub(crate) struct DayCache {
    days: FileCache<DayBuckets>,
    /// Whole files' rows read by range reads ([`DayCache::read_rows`]), kept briefly (an eighth
    /// of the budget, oldest dropped first) so that a query's other selectors reading the
    /// same files at about the same time decode each once.
    recent: FileCache<DayBuckets>,
    /// Reads under way by key, so selectors of one query asking for the same file concurrently
    /// read it once (the second waits for the first's entry).
    loading: Mutex<HashMap<String, Arc<OnceCell<Arc<DayBuckets>>>>>,
    /// Label sets of live entries by series id, with the texts they were parsed from; dead
    /// entries are swept as the map doubles.
    labels: Mutex<(IdMap<Pooled>, usize)>,
}

impl DayCache {
    /// Keeps entries within `budget` bytes (0 keeps none).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            // Each evaluation of a long window sweeps its day files in order.
            days: FileCache::evicting_at_random(budget),
            recent: FileCache::new(budget / 8),
            loading: Mutex::new(HashMap::new()),
            labels: Mutex::new((IdMap::default(), 0)),
        }
    }

    pub(crate) fn stats(&self) -> FileCacheStats {
        self.days.stats()
    }

    pub(crate) fn recent_stats(&self) -> FileCacheStats {
        self.recent.stats()
    }

    /// The entry under `key`: from the cache, from a read of it under way, or from `load`.
    pub(super) async fn get_or_load(
        &self,
        key: &str,
        load: impl Future<Output = Result<DayBuckets>>,
    ) -> Result<Arc<DayBuckets>> {
        self.get_or_load_in(&self.days, key, load).await
    }

    /// [`DayCache::get_or_load`] through `cache`.
    async fn get_or_load_in(
        &self,
        cache: &FileCache<DayBuckets>,
        key: &str,
        load: impl Future<Output = Result<DayBuckets>>,
    ) -> Result<Arc<DayBuckets>> {
        if let Some(hit) = cache.get(key) {
            return Ok(hit);
        }
        let cell = self.loading.lock().entry(key.to_string()).or_default().clone();
        // A load that ended between the look-up above and taking the cell has put its entry in
        // the cache (before leaving `loading`): looked up again, it is not read twice.
        let out = cell
            .get_or_try_init(|| async {
                match cache.get(key) {
                    Some(hit) => Ok(hit),
                    None => load.await.map(Arc::new),
                }
            })
            .await
            .cloned();
        if let Ok(entry) = &out {
            cache.insert(key, entry.clone());
        }
        let mut loading = self.loading.lock();
        if loading.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(key);
        }
        out
    }

    /// `file`'s rows for `matchers` whose bucket label lies in `range`, per series in the order
    /// first met. Each series' labels come through the pool: a series an earlier file already
    /// parsed costs a lookup by the row's stored `series_id` and a comparison of its key texts,
    /// not a parse and a copy of its label set (that was a quarter of a cold 30-day read).
    pub(super) async fn read_day(
        &self,
        io: &ParquetIo,
        file: &FileMeta,
        matchers: &[Matcher],
        range: TimeRange,
        fields: BucketFields,
        reader: Option<ObjectReader>,
    ) -> Result<Vec<DaySeries>> {
        let reader = reader.unwrap_or_else(|| io.reader(file));
        let batches = io
            .read_file_with(reader, file, rollups_schema(), read_columns(fields), true, |m| {
                series_plan(m, range, matchers)
            })
            .await?;
        let key = file.path.as_ref();
        let corrupt = |reason: String| Error::Corrupt {
            key: key.to_string(),
            reason,
        };
        let mut out: Vec<DaySeries> = Vec::new();
        // Output slot by the shared labels' address: one per distinct series of the file.
        let mut slots: HashMap<usize, usize> = HashMap::new();
        for batch in &batches {
            let ids = batch
                .column(key_col::SERIES_ID)
                .as_primitive_opt::<UInt64Type>()
                .filter(|a| a.null_count() == 0)
                .ok_or_else(|| corrupt("series_id column has an unexpected type or nulls".into()))?;
            let columns = BucketColumns::of(batch, key, fields)?;
            let times = timestamps(batch, key)?;
            let runs = series_runs(batch, key, |row, texts| {
                let id = SeriesId(ids.value(row));
                // Locked per series, not per file: concurrent day reads walk their rows at once.
                let labels = shared_labels(&mut self.labels.lock().0, id, texts)?;
                Ok(matches_all(matchers, &labels).then(|| {
                    *slots.entry(Arc::as_ptr(&labels) as usize).or_insert_with(|| {
                        out.push((id, labels, Vec::new()));
                        out.len() - 1
                    })
                }))
            })?;
            for (slot, rows) in runs {
                if let Some(slot) = slot {
                    columns.push_run(rows, times.values(), range, key, &mut out[slot].2)?;
                }
            }
        }
        let mut pool = self.labels.lock();
        if pool.0.len() > 2 * pool.1.max(1024) {
            pool.0.retain(|_, p| p.labels.strong_count() > 0);
            pool.1 = pool.0.len();
        }
        Ok(out)
    }

    /// What [`DayCache::read_day`] answers for a range read (`labels`: the bucket labels it
    /// keeps), through the recent reads: when the read prunes no page of `file` (a rollup
    /// file of up to `storage.page_rows` rows has one page per column), it decodes every row
    /// anyway, so every series is kept a while and the query's other selectors (the two sides
    /// of a burn rate, read a part at a time together) take their rows from memory, where each
    /// decoded the whole file again for its own rows.
    pub(super) async fn read_rows(
        &self,
        io: &ParquetIo,
        file: &FileMeta,
        matchers: &[Matcher],
        labels: TimeRange,
        fields: BucketFields,
    ) -> Result<Vec<(SeriesId, Arc<Labels>, Rows)>> {
        let owned = |series: Vec<DaySeries>| {
            series
                .into_iter()
                .map(|(id, labels, rows)| (id, labels, Rows::Owned(rows)))
                .collect()
        };
        if self.recent.budget() == 0 {
            return Ok(owned(self.read_day(io, file, matchers, labels, fields, None).await?));
        }
        let key = format!("{}|rows|{fields:?}", file.path);
        let load = self.every_entry(io, file, matchers, labels, None, fields);
        let entry = self.get_or_load_in(&self.recent, &key, load).await?;
        if !entry.every {
            return Ok(owned(self.read_day(io, file, matchers, labels, fields, None).await?));
        }
        // Each series' rows in `labels` are a slice of its sorted rows, taken in place.
        Ok(entry
            .matching(matchers)
            .filter_map(|(i, (id, shared, buckets))| {
                // Most days lie wholly in the range: two reads, not two searches through
                // rows a cache line apart.
                let inside = |b: Option<&Bucket>| b.is_some_and(|b| labels.contains(b.timestamp));
                let (from, to) = if inside(buckets.first()) && inside(buckets.last()) {
                    (0, buckets.len())
                } else {
                    (
                        buckets.partition_point(|b| b.timestamp < labels.start),
                        buckets.partition_point(|b| b.timestamp <= labels.end),
                    )
                };
                (from < to).then(|| (*id, shared.clone(), Rows::Shared(entry.clone(), i, from..to)))
            })
            .collect())
    }

    /// The entry of every series of `file` (its rows as they are, or with `whole` as
    /// [`DayCache::entry`] folds them at `grain`) when a read for `matchers` in `range` prunes
    /// no page of it: the read decodes every row anyway, so it keeps every series for the
    /// query's other selectors (and, in the day cache, for queries to come). Else an empty
    /// entry (`every` false) that says so. Loaded through [`DayCache::get_or_load`], the footer
    /// check included, so a selector asking for the file while another reads it waits for
    /// that read instead of fetching the footer again; the reader that read the footer reads
    /// the rows (a small file's footer read fetched all of it).
    async fn every_entry(
        &self,
        io: &ParquetIo,
        file: &FileMeta,
        matchers: &[Matcher],
        range: TimeRange,
        whole: Option<Resolution>,
        fields: BucketFields,
    ) -> Result<DayBuckets> {
        let (every, reader) = whole_file_read(io, file, matchers, range).await?;
        if !every {
            return Ok(DayBuckets::default());
        }
        let day = day_of(file);
        let rows = self
            .read_day(io, file, &[], TimeRange::new(day, day + DAY_MS), fields, Some(reader))
            .await?;
        let grain = whole.unwrap_or(Resolution::OneDay);
        Ok(DayCache::entry(rows, day, whole.is_some(), grain, true))
    }

    /// `series` (from [`DayCache::read_day`]) with each one's buckets in time order; when
    /// `whole`, every bucket after the day's first millisecond combined into one summary, the
    /// bucket labelled with that millisecond (a sample exactly at midnight, which a window
    /// starting at midnight leaves out) kept apart. The summary is labelled with the bucket of
    /// `grain` holding its last sample: the label folding `grain`'s rows gives, whether the rows
    /// are of `grain` or a day's summary. `every`: the rows are every series of the file (see
    /// [`DayBuckets`]).
    fn entry(series: Vec<DaySeries>, day: i64, whole: bool, grain: Resolution, every: bool) -> DayBuckets {
        let mut series: Vec<DaySeries> = series
            .into_iter()
            .filter_map(|(id, labels, mut rows)| {
                sort_buckets_by_key(&mut rows, |b| (b.timestamp, b.first_ts));
                let buckets = if whole {
                    let mut out: Vec<Bucket> = Vec::with_capacity(1);
                    for b in rows {
                        match out.last_mut() {
                            Some(summary) if summary.timestamp > day => summary.append(&b),
                            _ => out.push(b),
                        }
                    }
                    if let Some(summary) = out.last_mut().filter(|b| b.timestamp > day) {
                        summary.timestamp = grain.bucket_of(summary.last_ts);
                    }
                    out.shrink_to_fit();
                    out
                } else {
                    rows
                };
                (!buckets.is_empty()).then_some((id, labels, buckets))
            })
            .collect();
        if every {
            // Files are sorted by metric already; the sort only checks it.
            series.sort_by(|a, b| a.1.metric_name().cmp(&b.1.metric_name()));
        }
        DayBuckets { series, every }
    }
}

/// The pool's labels for a row with `id` and key `texts` (cluster, metric, labels JSON), parsed
/// and pooled when the pool holds none for them.
fn shared_labels(
    pool: &mut IdMap<Pooled>,
    id: SeriesId,
    texts: (&str, &str, &str),
) -> std::result::Result<Arc<Labels>, String> {
    let (cluster, metric, rest) = texts;
    if let Some(p) = pool.get(&id)
        && (&*p.cluster, &*p.metric, &*p.rest) == texts
        && let Some(known) = p.labels.upgrade()
    {
        return Ok(known);
    }
    let fresh = Arc::new(series_labels(cluster, metric, rest)?);
    pool.insert(
        id,
        Pooled {
            labels: Arc::downgrade(&fresh),
            cluster: cluster.into(),
            metric: metric.into(),
            rest: rest.into(),
        },
    );
    Ok(fresh)
}

/// One series' shared labels and the key texts of the rows they were parsed from: a row with
/// the same `series_id` and the same texts has these labels.
#[derive(Debug)]
struct Pooled {
    labels: Weak<Labels>,
    cluster: Box<str>,
    metric: Box<str>,
    rest: Box<str>,
}

/// A day read's series: id, shared labels, buckets in row order.
type DaySeries = (SeriesId, Arc<Labels>, Vec<Bucket>);

/// One series' rows of a range read ([`DayCache::read_rows`]): its own, or a slice of a series'
/// rows in a kept entry (series index, rows), so they are copied once, into the answer.
pub(super) enum Rows {
    Owned(Vec<Bucket>),
    Shared(Arc<DayBuckets>, usize, std::ops::Range<usize>),
}

impl Rows {
    pub(super) fn as_slice(&self) -> &[Bucket] {
        match self {
            Rows::Owned(rows) => rows,
            Rows::Shared(entry, i, rows) => &entry.series[*i].2[rows.clone()],
        }
    }
}

/// Maps by series id, which is a hash already (hashing it again was ~5 % of a cold read).
pub(super) type IdMap<V> = HashMap<SeriesId, V, nohash_hasher::BuildNoHashHasher<SeriesId>>;

/// The UTC day (its first millisecond) a rollup file summarises.
fn day_of(file: &FileMeta) -> i64 {
    file.key.min_ts.div_euclid(DAY_MS) * DAY_MS
}

impl RollupsReader {
    /// [`RollupsReader::select`] for a caller that folds every bucket of `range` into one
    /// window: the same rows, except that a file whose day lies wholly in `range` (and is its
    /// (cluster, day)'s only file among `files`) gives one bucket per series, its rows combined;
    /// single files are read through the cache. `summaries` are coarser rollup files (the
    /// `metrics_1d` table) standing for whole days in `range` that `files` leave out: each is
    /// read like a whole single file, so its rows are the same summaries, read instead of folded.
    pub(crate) async fn select_window(
        &self,
        files: Vec<Arc<FileMeta>>,
        summaries: Vec<Arc<FileMeta>>,
        matchers: &[Matcher],
        range: TimeRange,
        admits: impl Fn(&Labels) -> bool,
    ) -> Result<Vec<BucketSeries>> {
        let labels = self.resolution.labels_within(range);
        let mut per_day: HashMap<(&str, i64), usize> = HashMap::new();
        for f in &files {
            *per_day.entry((f.key.cluster.as_str(), day_of(f))).or_default() += 1;
        }
        // A day's file holds labels from its first millisecond (a sample exactly at midnight)
        // to the next midnight; whole: every label after the first is in the window (the first
        // is kept apart in the entry, and filtered like any row).
        let res = self.resolution.ms();
        let whole = |f: &FileMeta| {
            let day = day_of(f);
            labels.start <= day + res && day + DAY_MS <= labels.end
        };
        let (single, copies): (Vec<_>, Vec<_>) = files
            .iter()
            .cloned()
            .partition(|f| per_day[&(f.key.cluster.as_str(), day_of(f))] == 1);
        let out = self
            .select(copies, matchers, range, BucketFields::All, |_| true)
            .await?;

        let matchers_key = matchers_key(matchers);
        let selectors = Arc::new([matchers.to_vec()]);
        let mut reads: Vec<(bool, Arc<FileMeta>)> = single
            .into_iter()
            .map(|f| (whole(&f), f))
            .chain(summaries.into_iter().map(|f| (true, f)))
            .collect();
        // A cluster's days one after another (each (cluster, day) has one file here, so the
        // order changes no answer): its series' pieces are then gathered while they are in the
        // CPU's caches, where files in write order visit every cluster's series each day (that
        // was a quarter of a warm 30-day read over 100,000 series, in cache misses), and each
        // series is given room for its cluster's days at once.
        reads.sort_by(|(_, a), (_, b)| (a.key.cluster.as_str(), day_of(a)).cmp(&(b.key.cluster.as_str(), day_of(b))));
        let mut days_of: HashMap<&str, usize> = HashMap::new();
        for (_, f) in &reads {
            *days_of.entry(f.key.cluster.as_str()).or_default() += 1;
        }
        let rooms: Vec<usize> = reads.iter().map(|(_, f)| days_of[f.key.cluster.as_str()]).collect();
        let grain = self.resolution;
        let tasks = reads.iter().cloned().map(|(whole, file)| {
            let (io, cache, selectors) = (self.io.clone(), self.days.clone(), selectors.clone());
            // A day file (`summaries`) serves every finer reader: its labels are theirs.
            let prefix = format!("{}|{whole}|{}|", file.path, grain.name());
            let key = format!("{prefix}{matchers_key}");
            let every_key = format!("{prefix}*");
            // A task per file costs more than a cached answer (a rule reads thousands of days,
            // all cached after its first evaluation): only a miss gets one.
            let hit = whole
                .then(|| cache.days.get(&every_key))
                .flatten()
                .filter(|e| e.every)
                .or_else(|| cache.days.get(&key));
            if let Some(hit) = hit {
                return futures::future::Either::Left(futures::future::ready(Ok(hit)));
            }
            futures::future::Either::Right(AbortOnDrop(tokio::spawn(async move {
                // The whole day either way: a cut day is cached for the windows that follow.
                let day = day_of(&file);
                let day_range = TimeRange::new(day, day + DAY_MS);
                if whole && cache.days.get(&key).is_none() {
                    // A day file sorted by metric in one page, a cluster's few metrics: every
                    // series kept, for the other selectors and queries to come.
                    let load = cache.every_entry(&io, &file, &selectors[0], day_range, Some(grain), BucketFields::All);
                    let entry = cache.get_or_load(&every_key, load).await?;
                    if entry.every {
                        return Ok(entry);
                    }
                }
                let load = async {
                    let rows = cache
                        .read_day(&io, &file, &selectors[0], day_range, BucketFields::All, None)
                        .await?;
                    Ok(DayCache::entry(rows, day, whole, grain, false))
                };
                cache.get_or_load(&key, load).await
            })))
        });
        let mut days = futures::stream::iter(tasks).buffered(self.io.concurrency);
        let mut pieces = SeriesPieces::new(out);
        let mut rooms = rooms.into_iter();
        while let Some(day) = days.try_next().await? {
            let room = rooms.next().unwrap_or(0);
            for (_, (id, shared, buckets)) in day.matching(matchers) {
                let inside = buckets.iter().filter(|b| labels.contains(b.timestamp)).copied();
                pieces.add(*id, shared, inside, room);
            }
        }
        let mut out = pieces.into_series();
        out.retain(|s| admits(&s.labels));
        for s in &mut out {
            sort_buckets_by_key(&mut s.buckets, |b| (b.timestamp, b.first_ts));
        }
        Ok(out)
    }
}

/// Whether reading `file` for `matchers` in `range` reads every row of it: its footer's
/// statistics prune no row group and no page. With the reader that read the footer.
async fn whole_file_read(
    io: &ParquetIo,
    file: &FileMeta,
    matchers: &[Matcher],
    range: TimeRange,
) -> Result<(bool, ObjectReader)> {
    let mut reader = io.reader(file);
    let meta = io.footer(&mut reader, file, rollups_schema()).await?;
    let groups = meta.metadata().num_row_groups();
    let every =
        series_plan(&meta, range, matchers).is_some_and(|p| p.selection.is_none() && p.row_groups.len() == groups);
    Ok((every, reader))
}
