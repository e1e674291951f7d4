//! What of a file a read can skip: whole files (from the key), row groups (from column
//! statistics) and pages (from the page index), for every table.
//!
//! A table states its tests as [`ColumnCheck`]s (a column and what its min/max must allow: a
//! time overlap, a pinned value); [`plan`] keeps the row groups and pages every check allows.
//! Every decision is conservative: missing or unusable statistics keep the data.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection};

use crate::types::{self, Matcher, TimeRange};

/// Can a file with this key hold a row the request wants? The key names the file's one cluster
/// exactly, so every `cluster` matcher (not only equality) is decided by
/// [`cluster_may_match`] (the catalog applies the time part).
#[cfg(test)]
fn file_may_match(key: &crate::layout::FileKey, range: &TimeRange, matchers: &[Matcher]) -> bool {
    range.overlaps(&key.time_range()) && cluster_may_match(&key.cluster, matchers)
}

/// Do all `cluster` matchers accept this cluster value (`""` = none)?
pub(crate) fn cluster_may_match(cluster: &str, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .filter(|m| m.name == types::CLUSTER)
        .all(|m| m.matches(cluster))
}

/// What to read from one file: row groups and, within them, rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadPlan {
    pub(crate) row_groups: Vec<usize>,
    /// Over the concatenated rows of `row_groups`; `None` reads them whole.
    pub(crate) selection: Option<RowSelection>,
    /// Rows the plan reads.
    pub(crate) rows: usize,
}

/// Keeps a row group or page when its statistics `(mins, maxes)` at index `i` may hold a
/// wanted row.
type Keep<'a> = Box<dyn Fn(&ArrayRef, &ArrayRef, usize) -> bool + Send + Sync + 'a>;

/// One statistics test of a [`plan`]: a column and what its min/max must allow.
pub(crate) struct ColumnCheck<'a> {
    conv: StatisticsConverter<'a>,
    keep: Keep<'a>,
}

impl<'a> ColumnCheck<'a> {
    /// A test on `column` (by name); `None` when the file has no such column (nothing pruned).
    pub(crate) fn new(meta: &'a ArrowReaderMetadata, column: &str, keep: Keep<'a>) -> Option<Self> {
        let conv = StatisticsConverter::try_new(column, meta.schema(), meta.parquet_schema()).ok()?;
        Some(Self { conv, keep })
    }

    /// `column` (a millisecond timestamp) may hold a time in `range`.
    pub(crate) fn overlaps_ms(meta: &'a ArrowReaderMetadata, column: &str, range: TimeRange) -> Option<Self> {
        Self::new(
            meta,
            column,
            Box::new(move |mins, maxes, i| ms_overlaps(mins, maxes, i, &range)),
        )
    }

    /// `column` (a nanosecond timestamp) may hold a time in `[start, end]`.
    pub(crate) fn overlaps_ns(meta: &'a ArrowReaderMetadata, column: &str, start: i64, end: i64) -> Option<Self> {
        Self::new(
            meta,
            column,
            Box::new(move |mins, maxes, i| ns_overlaps(mins, maxes, i, start, end)),
        )
    }

    /// `column` (strings, plain or dictionary) may hold `value`.
    pub(crate) fn may_contain(meta: &'a ArrowReaderMetadata, column: &str, value: &'a str) -> Option<Self> {
        Self::new(
            meta,
            column,
            Box::new(move |mins, maxes, i| str_may_contain(mins, maxes, i, value)),
        )
    }
}

impl std::fmt::Debug for ColumnCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnCheck").finish_non_exhaustive()
    }
}

/// Every row group and row of the file.
pub(crate) fn whole(meta: &ArrowReaderMetadata) -> Option<ReadPlan> {
    plan(meta, &[])
}

/// Prunes row groups by min/max statistics, then pages by the page index, keeping what every
/// check allows. Returns `None` when nothing can match.
pub(crate) fn plan(meta: &ArrowReaderMetadata, checks: &[ColumnCheck<'_>]) -> Option<ReadPlan> {
    let md = meta.metadata();
    let rgs = md.row_groups();
    let mut keep: Vec<bool> = vec![true; rgs.len()];
    for c in checks {
        let (mins, maxes) = (
            c.conv.row_group_mins(rgs.iter()).ok(),
            c.conv.row_group_maxes(rgs.iter()).ok(),
        );
        if let (Some(mins), Some(maxes)) = (mins, maxes) {
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= (c.keep)(&mins, &maxes, i);
            }
        }
    }
    let candidates: Vec<usize> = (0..rgs.len()).filter(|&i| keep[i]).collect();
    if candidates.is_empty() {
        return None;
    }

    // Page level: per row group, the rows of pages every check allows.
    let (Some(col_index), Some(off_index)) = (md.column_index(), md.offset_index()) else {
        let rows = candidates.iter().map(|&i| rgs[i].num_rows() as usize).sum();
        return Some(ReadPlan {
            row_groups: candidates,
            selection: None,
            rows,
        });
    };
    let mut row_groups = Vec::with_capacity(candidates.len());
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut base = 0usize;
    let mut whole = true;
    for rg in candidates {
        let n = rgs[rg].num_rows() as usize;
        let mut local: Vec<Range<usize>> = std::iter::once(0..n).collect();
        for c in checks {
            let pages = || -> Option<Vec<Range<usize>>> {
                let mins = c.conv.data_page_mins(col_index, off_index, [&rg]).ok()?;
                let maxes = c.conv.data_page_maxes(col_index, off_index, [&rg]).ok()?;
                let counts = c.conv.data_page_row_counts(off_index, rgs, [&rg]).ok()??;
                let mut out = Vec::new();
                let mut start = 0usize;
                for p in 0..counts.len() {
                    let len = counts.value(p) as usize;
                    if (c.keep)(&mins, &maxes, p) {
                        push_range(&mut out, start..start + len);
                    }
                    start += len;
                }
                Some(out)
            };
            if let Some(r) = pages() {
                local = intersect(&local, &r);
            }
        }
        if local.is_empty() {
            continue;
        }
        whole &= local.len() == 1 && local[0] == (0..n);
        row_groups.push(rg);
        for r in local {
            push_range(&mut ranges, base + r.start..base + r.end);
        }
        base += n;
    }
    if row_groups.is_empty() {
        return None;
    }
    let rows = ranges.iter().map(|r| r.len()).sum();
    let selection = (!whole).then(|| RowSelection::from_consecutive_ranges(ranges.into_iter(), base));
    Some(ReadPlan {
        row_groups,
        selection,
        rows,
    })
}

impl ReadPlan {
    /// The rows the plan reads, as sorted, disjoint ranges of absolute file rows. `rg_rows[i]` is
    /// row group `i`'s row count.
    pub(crate) fn file_rows(&self, rg_rows: &[usize]) -> Vec<Range<usize>> {
        let starts = row_group_starts(rg_rows);
        // (position in the concatenation of the planned row groups, absolute row) of each one.
        let mut pieces = Vec::with_capacity(self.row_groups.len());
        let mut at = 0usize;
        for &rg in &self.row_groups {
            pieces.push((at, starts[rg], rg_rows[rg]));
            at += rg_rows[rg];
        }
        let mut selected: Vec<Range<usize>> = Vec::new();
        match &self.selection {
            None => selected.push(0..at),
            Some(selection) => {
                let mut pos = 0usize;
                for s in selection.iter() {
                    if !s.skip {
                        push_range(&mut selected, pos..pos + s.row_count);
                    }
                    pos += s.row_count;
                }
            }
        }
        let mut out = Vec::new();
        for r in selected {
            for &(concat, abs, len) in &pieces {
                let (lo, hi) = (r.start.max(concat), r.end.min(concat + len));
                if lo < hi {
                    push_range(&mut out, abs + lo - concat..abs + hi - concat);
                }
            }
        }
        out
    }

    /// The plan that reads exactly `rows` (sorted, disjoint absolute file rows); `None` when
    /// `rows` is empty.
    pub(crate) fn of_rows(rows: &[Range<usize>], rg_rows: &[usize]) -> Option<ReadPlan> {
        let starts = row_group_starts(rg_rows);
        let mut row_groups: Vec<usize> = Vec::new();
        let mut ranges: Vec<Range<usize>> = Vec::new();
        // Where the last planned row group starts in the concatenation.
        let mut base = 0usize;
        for r in rows {
            let mut start = r.start;
            while start < r.end {
                let rg = starts.partition_point(|&s| s <= start) - 1;
                if rg >= rg_rows.len() {
                    break;
                }
                match row_groups.last() {
                    Some(&last) if last == rg => {}
                    Some(&last) => {
                        base += rg_rows[last];
                        row_groups.push(rg);
                    }
                    None => row_groups.push(rg),
                }
                let end = r.end.min(starts[rg] + rg_rows[rg]);
                push_range(&mut ranges, base + start - starts[rg]..base + end - starts[rg]);
                start = end;
            }
        }
        let &last = row_groups.last()?;
        let total = base + rg_rows[last];
        let rows = ranges.iter().map(|r| r.len()).sum();
        let whole = ranges.len() == 1 && ranges[0] == (0..total);
        Some(ReadPlan {
            row_groups,
            selection: (!whole).then(|| RowSelection::from_consecutive_ranges(ranges.into_iter(), total)),
            rows,
        })
    }
}

/// The absolute first row of each row group, and the file's row count last.
fn row_group_starts(rg_rows: &[usize]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(rg_rows.len() + 1);
    starts.push(0);
    for n in rg_rows {
        starts.push(starts.last().copied().unwrap_or(0) + n);
    }
    starts
}

/// Appends `r`, merging it into the last range when they touch.
pub(crate) fn push_range(out: &mut Vec<Range<usize>>, r: Range<usize>) {
    if r.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
        _ => out.push(r),
    }
}

/// Intersection of two sorted lists of disjoint ranges.
pub(crate) fn intersect(a: &[Range<usize>], b: &[Range<usize>]) -> Vec<Range<usize>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let (lo, hi) = (a[i].start.max(b[j].start), a[i].end.min(b[j].end));
        push_range(&mut out, lo..hi.max(lo));
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Does `[mins[i], maxes[i]]` (milliseconds) overlap `range`? Unknown statistics (nulls,
/// other types) say yes.
fn ms_overlaps(mins: &ArrayRef, maxes: &ArrayRef, i: usize, range: &TimeRange) -> bool {
    let (Some(mins), Some(maxes)) = (
        mins.as_primitive_opt::<TimestampMillisecondType>(),
        maxes.as_primitive_opt::<TimestampMillisecondType>(),
    ) else {
        return true;
    };
    let lo = if mins.is_valid(i) { mins.value(i) } else { i64::MIN };
    let hi = if maxes.is_valid(i) { maxes.value(i) } else { i64::MAX };
    range.overlaps(&TimeRange::new(lo, hi))
}

/// Does `[mins[i], maxes[i]]` (nanoseconds) overlap `[start, end]`? Unknown statistics say yes.
fn ns_overlaps(mins: &ArrayRef, maxes: &ArrayRef, i: usize, start: i64, end: i64) -> bool {
    let (Some(mins), Some(maxes)) = (
        mins.as_primitive_opt::<TimestampNanosecondType>(),
        maxes.as_primitive_opt::<TimestampNanosecondType>(),
    ) else {
        return true;
    };
    let lo = if mins.is_valid(i) { mins.value(i) } else { i64::MIN };
    let hi = if maxes.is_valid(i) { maxes.value(i) } else { i64::MAX };
    lo <= end && start <= hi
}

/// Can a chunk with string statistics `[mins[i], maxes[i]]` contain `v`? Truncated statistics
/// are still bounds (parquet truncates min down and max up), so the test stays conservative.
/// Dictionary columns report their values' statistics.
fn str_may_contain(mins: &ArrayRef, maxes: &ArrayRef, i: usize, v: &str) -> bool {
    let as_str = |a: &ArrayRef| -> Option<Option<String>> {
        if let Some(s) = a.as_string_opt::<i32>() {
            return Some(s.is_valid(i).then(|| s.value(i).to_string()));
        }
        let d = a.as_dictionary_opt::<Int32Type>()?;
        let values = d.values().as_string_opt::<i32>()?;
        Some(
            d.is_valid(i)
                .then(|| values.value(d.keys().value(i) as usize).to_string()),
        )
    };
    let (Some(lo), Some(hi)) = (as_str(mins), as_str(maxes)) else {
        return true;
    };
    lo.is_none_or(|lo| lo.as_str() <= v) && hi.is_none_or(|hi| v <= hi.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of one range are the point here
    fn range_lists_intersect_and_merge() {
        assert_eq!(intersect(&[0..10, 20..30], &[5..25]), vec![5..10, 20..25]);
        assert_eq!(intersect(&[0..10], &[10..20]), Vec::<Range<usize>>::new());
        assert_eq!(intersect(&[0..10, 10..20], &[0..20]), vec![0..20]);
        let mut v = vec![];
        push_range(&mut v, 0..5);
        push_range(&mut v, 5..7);
        push_range(&mut v, 9..9);
        push_range(&mut v, 10..12);
        assert_eq!(v, vec![0..7, 10..12]);
    }

    /// The selected rows of a plan as absolute file rows, one by one, in read order.
    fn rows_of(plan: &ReadPlan, rg_rows: &[usize]) -> Vec<usize> {
        let starts = row_group_starts(rg_rows);
        let all: Vec<usize> = plan
            .row_groups
            .iter()
            .flat_map(|&rg| starts[rg]..starts[rg] + rg_rows[rg])
            .collect();
        match &plan.selection {
            None => all,
            Some(sel) => {
                let mut out = Vec::new();
                let mut at = 0;
                for s in sel.iter() {
                    if !s.skip {
                        out.extend_from_slice(&all[at..at + s.row_count]);
                    }
                    at += s.row_count;
                }
                out
            }
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of one range are the point here
    fn plans_and_file_rows_convert_both_ways() {
        let rg_rows = [100usize, 50, 80, 30];
        let whole = ReadPlan {
            row_groups: vec![0, 2, 3],
            selection: None,
            rows: 210,
        };
        let partial = ReadPlan {
            row_groups: vec![0, 1, 3],
            selection: Some(RowSelection::from_consecutive_ranges(
                [5..40, 90..130, 150..180].into_iter(),
                180,
            )),
            rows: 105,
        };
        for plan in [whole, partial] {
            let expected = rows_of(&plan, &rg_rows);
            let rows = plan.file_rows(&rg_rows);
            let flat: Vec<usize> = rows.iter().flat_map(|r| r.clone()).collect();
            assert_eq!(flat, expected);
            let back = ReadPlan::of_rows(&rows, &rg_rows).unwrap();
            assert_eq!(rows_of(&back, &rg_rows), expected);
            assert_eq!(back.rows, plan.rows);
        }
        // Ranges across row-group boundaries, a whole row group, and nothing.
        let rows = [95..160, 230..260];
        let plan = ReadPlan::of_rows(&rows, &rg_rows).unwrap();
        assert_eq!(plan.row_groups, vec![0, 1, 2, 3]);
        let flat: Vec<usize> = rows.iter().flat_map(|r| r.clone()).collect();
        assert_eq!(rows_of(&plan, &rg_rows), flat);
        let one = ReadPlan::of_rows(&[100..150], &rg_rows).unwrap();
        assert_eq!(
            (one.row_groups.clone(), one.selection.is_none(), one.rows),
            (vec![1], true, 50)
        );
        assert_eq!(ReadPlan::of_rows(&[], &rg_rows), None);
    }

    #[test]
    fn file_pruning_decides_every_cluster_matcher() {
        use crate::layout::{FileKey, Table};
        use crate::types::MatchOp;
        let k = FileKey::new(Table::Metrics, "prod", 1_000, 2_000, 1).unwrap();
        let none = FileKey::new(Table::Metrics, "", 1_000, 2_000, 1).unwrap();
        let re = |v: &str| vec![Matcher::new(MatchOp::RegexMatch, "cluster", v).unwrap()];
        assert!(file_may_match(&k, &TimeRange::new(2_000, 3_000), &[]));
        assert!(!file_may_match(&k, &TimeRange::new(2_001, 3_000), &[]));
        assert!(file_may_match(&k, &TimeRange::ALL, &re("pr.*")));
        assert!(!file_may_match(&k, &TimeRange::ALL, &re("pro")));
        assert!(!file_may_match(&none, &TimeRange::ALL, &re(".+")));
        assert!(file_may_match(&none, &TimeRange::ALL, &[Matcher::equal("cluster", "")]));
        assert!(!file_may_match(&k, &TimeRange::ALL, &[Matcher::equal("cluster", "")]));
    }
}
