//! A window's edges: the samples of files a read covers only in part, kept per (file, selector).
//!
//! A rule group evaluates the same windows every minute, each moved on by a minute, so the
//! partial hours at a window's two ends fall in the same files for an hour (and a dashboard's
//! refresh does the same to its range's first file). Such a read costs far more than its few
//! rows: every column chunk opened builds zstd contexts, and every chunk is an object-store
//! request. So the first partial read of a file takes *all* the rows of the selector's series
//! in it (no time pruning: with our writer's layout a page spans many series' whole hours, so
//! pruning by time rarely skips a page anyway) and keeps them; later partial reads of the file
//! with the same matchers slice them in memory.
//!
//! Reads that cover a file wholly never come here (the next read will not be the same), nor do
//! reads restricted to a set of series (`only`: the engine's parts of a huge selector), nor
//! selectors matching more than an eighth of the budget's rows in the file.

use std::sync::Arc;

use super::scan::{FileSeries, Query, Scanned};
use super::series_table::SeriesTable;
use crate::Result;
use crate::catalog::FileMeta;
use crate::table::file_cache::{FileCache, Weighed, matchers_key};
use crate::types::{Sample, TimeRange};

/// Bytes one kept sample costs.
const SAMPLE_BYTES: usize = std::mem::size_of::<Sample>();

/// All the samples of one selector's series in one file.
#[derive(Debug)]
pub(super) struct EdgeSamples {
    table: Arc<SeriesTable>,
    /// Per run of a matching series, in row order: its series and samples, and whether they
    /// ascend (our writer's files), so a range is two binary searches.
    runs: Vec<(u32, Vec<Sample>, bool)>,
}

impl Weighed for EdgeSamples {
    fn bytes(&self) -> usize {
        self.runs
            .iter()
            .map(|(_, s, _)| s.len() * SAMPLE_BYTES + 40)
            .sum::<usize>()
            + 64
    }
}

impl EdgeSamples {
    /// What a read of the whole file (every time, the selector's series) found.
    pub(super) fn new(table: Arc<SeriesTable>, whole: Scanned) -> Self {
        let runs = whole
            .series
            .into_iter()
            .map(|f| {
                let sorted = f.samples.is_sorted_by_key(|s| s.timestamp);
                (f.id, f.samples, sorted)
            })
            .collect();
        Self { table, runs }
    }

    /// The samples in `query`'s range, counted against its limit, as a read of the file would
    /// return them.
    pub(super) fn select(&self, query: &Query) -> Result<Scanned> {
        let range = query.range;
        let mut series = Vec::new();
        let mut rows = 0;
        for (id, samples, sorted) in &self.runs {
            let found: Vec<Sample> = if *sorted {
                let lo = samples.partition_point(|s| s.timestamp < range.start);
                let hi = samples.partition_point(|s| s.timestamp <= range.end).max(lo);
                samples[lo..hi].to_vec()
            } else {
                samples
                    .iter()
                    .filter(|s| range.contains(s.timestamp))
                    .copied()
                    .collect()
            };
            if found.is_empty() {
                continue;
            }
            rows += found.len();
            series.push(FileSeries {
                table: self.table.clone(),
                id: *id,
                samples: found,
            });
        }
        query.count(rows)?;
        Ok(Scanned {
            series,
            planned_rows: rows,
        })
    }
}

/// The cache key of `query`'s read of `file` when it may take the edge path: the file partly
/// in range, no `only`, some series accepted.
pub(super) fn key(file: &FileMeta, accepted: &[u32], query: &Query) -> Option<String> {
    let whole = query.range.start <= file.key.min_ts && file.key.max_ts <= query.range.end;
    if whole || query.only.is_some() || accepted.is_empty() {
        return None;
    }
    Some(format!("{}|{}", file.path, matchers_key(&query.matchers)))
}

/// Whether the `accepted` series' rows of the whole file are few enough to keep (asked on a
/// miss only: a hit needs no count).
pub(super) fn fits(cache: &FileCache<EdgeSamples>, table: &SeriesTable, accepted: &[u32]) -> bool {
    let rows: usize = table.runs_in(accepted, &TimeRange::ALL).iter().map(|r| r.len()).sum();
    rows * SAMPLE_BYTES <= cache.budget() / 8
}
