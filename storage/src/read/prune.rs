//! Deciding what of the metrics files a request can skip: whole files (from the key), row groups
//! (from column statistics) and pages (from the page index).
//!
//! Every decision is conservative: missing or unusable statistics keep the data.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, ArrayRef};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection};

use crate::layout::FileKey;
use crate::schema;
use crate::types::{self, Matcher, TimeRange};

/// Can a file with this key hold a row the request wants? The key names the file's one cluster
/// exactly, so every `cluster` matcher (not only equality) is decided here.
pub fn file_may_match(key: &FileKey, range: &TimeRange, matchers: &[Matcher]) -> bool {
    range.overlaps(&key.time_range()) && cluster_may_match(&key.cluster, matchers)
}

/// Do all `cluster` matchers accept this cluster value (`""` = none)?
pub fn cluster_may_match(cluster: &str, matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .filter(|m| m.name == types::CLUSTER)
        .all(|m| m.matches(cluster))
}

/// What to read from one file: row groups and, within them, rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadPlan {
    pub row_groups: Vec<usize>,
    /// Over the concatenated rows of `row_groups`; `None` reads them whole.
    pub selection: Option<RowSelection>,
    /// Rows the plan reads.
    pub rows: usize,
}

/// The exact values the request pins `cluster`, `metric` and the time range to.
#[derive(Debug, Clone, Default)]
struct Pins<'a> {
    cluster: Option<&'a str>,
    metric: Option<&'a str>,
}

impl<'a> Pins<'a> {
    fn of(matchers: &'a [Matcher]) -> Self {
        let mut p = Pins::default();
        for m in matchers {
            match (m.name.as_str(), m.exact_value()) {
                (types::CLUSTER, Some(v)) => p.cluster = Some(v),
                (types::METRIC_NAME, Some(v)) => p.metric = Some(v),
                _ => {}
            }
        }
        p
    }
}

/// Prunes row groups by min/max statistics, then pages by the page index. Returns `None` when
/// nothing can match.
pub fn plan(meta: &ArrowReaderMetadata, range: &TimeRange, matchers: &[Matcher]) -> Option<ReadPlan> {
    let pins = Pins::of(matchers);
    let md = meta.metadata();
    let arrow = meta.schema();
    let pq = meta.parquet_schema();
    let conv = |name| StatisticsConverter::try_new(name, arrow, pq).ok();
    let (ts_conv, metric_conv, cluster_conv) = (conv(schema::TIMESTAMP), conv(schema::METRIC), conv(schema::CLUSTER));

    let rgs = md.row_groups();
    let all: Vec<usize> = (0..rgs.len()).collect();
    let mut keep: Vec<bool> = vec![true; rgs.len()];
    if let Some(c) = &ts_conv {
        let (mins, maxes) = (c.row_group_mins(rgs.iter()).ok(), c.row_group_maxes(rgs.iter()).ok());
        if let (Some(mins), Some(maxes)) = (mins, maxes) {
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= ts_overlaps(&mins, &maxes, i, range);
            }
        }
    }
    for (conv, pin) in [(&metric_conv, pins.metric), (&cluster_conv, pins.cluster)] {
        let (Some(c), Some(v)) = (conv, pin) else { continue };
        let (mins, maxes) = (c.row_group_mins(rgs.iter()).ok(), c.row_group_maxes(rgs.iter()).ok());
        if let (Some(mins), Some(maxes)) = (mins, maxes) {
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= str_may_contain(&mins, &maxes, i, v);
            }
        }
    }
    let candidates: Vec<usize> = all.into_iter().filter(|&i| keep[i]).collect();
    if candidates.is_empty() {
        return None;
    }

    // Page level: per row group, the rows of pages that can match every pinned column.
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
        let pages = |c: &StatisticsConverter, keep: &dyn Fn(&ArrayRef, &ArrayRef, usize) -> bool| {
            let mins = c.data_page_mins(col_index, off_index, [&rg]).ok()?;
            let maxes = c.data_page_maxes(col_index, off_index, [&rg]).ok()?;
            let counts = c.data_page_row_counts(off_index, rgs, [&rg]).ok()??;
            let mut out = Vec::new();
            let mut start = 0usize;
            for p in 0..counts.len() {
                let len = counts.value(p) as usize;
                if keep(&mins, &maxes, p) {
                    push_range(&mut out, start..start + len);
                }
                start += len;
            }
            Some(out)
        };
        if let Some(c) = &ts_conv
            && let Some(r) = pages(c, &|mins, maxes, p| ts_overlaps(mins, maxes, p, range))
        {
            local = intersect(&local, &r);
        }
        for (conv, pin) in [(&metric_conv, pins.metric), (&cluster_conv, pins.cluster)] {
            let (Some(c), Some(v)) = (conv, pin) else { continue };
            if let Some(r) = pages(c, &|mins, maxes, p| str_may_contain(mins, maxes, p, v)) {
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
    pub fn file_rows(&self, rg_rows: &[usize]) -> Vec<Range<usize>> {
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
    pub fn of_rows(rows: &[Range<usize>], rg_rows: &[usize]) -> Option<ReadPlan> {
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

/// Does `[mins[i], maxes[i]]` overlap `range`? Unknown statistics (nulls, other types) say yes.
fn ts_overlaps(mins: &ArrayRef, maxes: &ArrayRef, i: usize, range: &TimeRange) -> bool {
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

/// Can a chunk with string statistics `[mins[i], maxes[i]]` contain `v`? Truncated statistics
/// are still bounds (parquet truncates min down and max up), so the test stays conservative.
fn str_may_contain(mins: &ArrayRef, maxes: &ArrayRef, i: usize, v: &str) -> bool {
    let (Some(mins), Some(maxes)) = (mins.as_string_opt::<i32>(), maxes.as_string_opt::<i32>()) else {
        return true;
    };
    (mins.is_null(i) || mins.value(i) <= v) && (maxes.is_null(i) || v <= maxes.value(i))
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
        use crate::layout::Table;
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
