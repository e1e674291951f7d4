//! Raw files summarised into buckets for window reads: what a rule re-reads every minute from
//! the days not rolled up yet (the compactor rolls a day up once it is older than
//! `storage.rollups.after`, so a 30-day window's last day or two are raw files).
//!
//! A window read at a resolution ([`crate::read::Source::select_window`]) needs each series'
//! buckets, not its samples. A raw file that lies wholly inside the window, and whose cluster
//! has no other file overlapping its time span, is then summarised once per (file, matchers,
//! resolution) — each series' samples as [`crate::rollup::buckets_of`] gives them, pieces of
//! buckets that [`crate::rollup::Bucket::append`] combines exactly with the neighbouring files'
//! — and the summary is kept. It is answered as rollup pieces are, with the file's span as
//! covered for its cluster: the same rule the rollup days follow (a sample another source
//! holds there, such as a late sample still in the head, counts once the flush that stores it
//! writes a file overlapping this one, which makes both files read raw again).

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;

use super::MetricsCache;
use super::scan::{Query, file_table, scan_file};
use super::series_table::SeriesTable;
use crate::Result;
use crate::catalog::FileMeta;
use crate::rollup::{Bucket, Covered, Resolution, buckets_of};
use crate::table::file_cache::{Weighed, matchers_key};
use crate::types::{Labels, Matcher, Sample, SeriesId, TimeRange, sort_dedup_samples};

/// One file's buckets for one selector at one resolution.
#[derive(Debug)]
pub(super) struct FileBuckets {
    table: Arc<SeriesTable>,
    series: Vec<(u32, Vec<Bucket>)>,
}

impl Weighed for FileBuckets {
    fn bytes(&self) -> usize {
        let buckets: usize = self.series.iter().map(|(_, b)| b.len()).sum();
        buckets * std::mem::size_of::<Bucket>() + self.series.len() * 32 + 64
    }
}

impl FileBuckets {
    /// Each series' id, labels (one shared copy across files, see `Interner`) and pieces.
    pub(super) fn series(&self) -> impl Iterator<Item = (SeriesId, &Arc<Labels>, &[Bucket])> + '_ {
        self.series.iter().map(|(id, buckets)| {
            let s = &self.table.series[*id as usize];
            (s.id, &s.labels, buckets.as_slice())
        })
    }
}

/// The cache key of `file`'s summary for `matchers` at `res`.
pub(super) fn key(file: &FileMeta, matchers: &[Matcher], res: Resolution) -> String {
    format!("{}|{}|{}", file.path, res.name(), matchers_key(matchers))
}

/// `file`'s summary for `matchers` at `res`: every sample of its matching series read (a
/// series in several runs, in a file not in our writer's order, sorted and deduplicated
/// first) and bucketed, then kept.
pub(super) async fn file_buckets(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetricsCache>,
    file: Arc<FileMeta>,
    matchers: Arc<Vec<Matcher>>,
    res: Resolution,
) -> Result<Arc<FileBuckets>> {
    let key = key(&file, &matchers, res);
    if let Some(hit) = cache.summaries.get(&key) {
        return Ok(hit);
    }
    let table = file_table(store.clone(), cache.clone(), file.clone()).await?;
    let scanned = scan_file(store, cache.clone(), file, Query::whole_file(matchers.to_vec(), 1)).await?;
    let mut per_series: BTreeMap<u32, (Vec<Sample>, bool)> = BTreeMap::new();
    for f in scanned.series {
        let unsorted = table.unsorted(f.id);
        let entry = per_series.entry(f.id).or_default();
        entry.1 |= unsorted || !entry.0.is_empty();
        entry.0.extend(f.samples);
    }
    let series = per_series
        .into_iter()
        .filter_map(|(id, (mut samples, unsorted))| {
            if unsorted {
                sort_dedup_samples(&mut samples);
            }
            let buckets = buckets_of(&samples, res);
            (!buckets.is_empty()).then_some((id, buckets))
        })
        .collect();
    let entry = Arc::new(FileBuckets { table, series });
    cache.summaries.insert(&key, entry.clone());
    Ok(entry)
}

/// Of `files` (one select's, any order), those a window read over `range` may answer from
/// their summaries (first) and the others (second): a file is summarised when it lies wholly
/// in `range` and no other file of its cluster overlaps its time span.
pub(super) fn partition(files: Vec<Arc<FileMeta>>, range: TimeRange) -> (Vec<Arc<FileMeta>>, Vec<Arc<FileMeta>>) {
    let mut by_cluster: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        by_cluster.entry(f.key.cluster.as_str()).or_default().push(i);
    }
    let mut sole = vec![false; files.len()];
    for indexes in by_cluster.values_mut() {
        indexes.sort_by_key(|&i| (files[i].key.min_ts, files[i].key.max_ts));
        // A file overlaps an earlier one when an earlier one ends at or after its start, and a
        // later one when the next (by start) starts at or before its end.
        let mut earlier_end = i64::MIN;
        for (k, &i) in indexes.iter().enumerate() {
            let key = &files[i].key;
            let later = indexes.get(k + 1).is_some_and(|&j| files[j].key.min_ts <= key.max_ts);
            sole[i] = earlier_end < key.min_ts && !later;
            earlier_end = earlier_end.max(key.max_ts);
        }
    }
    let (mut summarised, mut rest) = (Vec::new(), Vec::new());
    for (f, sole) in files.into_iter().zip(sole) {
        if sole && range.start <= f.key.min_ts && f.key.max_ts <= range.end {
            summarised.push(f);
        } else {
            rest.push(f);
        }
    }
    (summarised, rest)
}

/// The span `file` stands for in a bucket read.
pub(super) fn covered(file: &FileMeta) -> Covered {
    Covered {
        cluster: file.key.cluster.clone(),
        range: TimeRange::new(file.key.min_ts, file.key.max_ts),
    }
}
