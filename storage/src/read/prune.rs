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
    /// Cuts the plan into at most `parts` plans of about equal rows, in row order, so one file
    /// can be decoded by several tasks. A cut may fall inside a page; both sides then decode it.
    /// `rg_rows(i)` is row group `i`'s row count.
    pub fn split(&self, parts: usize, rg_rows: impl Fn(usize) -> usize) -> Vec<ReadPlan> {
        if parts <= 1 || self.rows < parts {
            return vec![self.clone()];
        }
        // Row offsets of the planned row groups within their concatenation, as the selection sees it.
        let mut offsets = Vec::with_capacity(self.row_groups.len() + 1);
        offsets.push(0usize);
        for &rg in &self.row_groups {
            offsets.push(offsets.last().copied().unwrap_or(0) + rg_rows(rg));
        }
        let total = offsets.last().copied().unwrap_or(0);
        let mut selected: Vec<Range<usize>> = Vec::new();
        match &self.selection {
            None => selected.push(0..total),
            Some(selection) => {
                let mut at = 0usize;
                for s in selection.iter() {
                    if !s.skip {
                        push_range(&mut selected, at..at + s.row_count);
                    }
                    at += s.row_count;
                }
            }
        }
        let target = self.rows.div_ceil(parts);
        let mut chunks: Vec<Vec<Range<usize>>> = vec![Vec::new()];
        let mut filled = 0usize;
        for r in selected {
            let mut start = r.start;
            while start < r.end {
                let take = (target - filled).min(r.end - start);
                push_range(chunks.last_mut().expect("one chunk"), start..start + take);
                (start, filled) = (start + take, filled + take);
                if filled == target {
                    chunks.push(Vec::new());
                    filled = 0;
                }
            }
        }
        chunks
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(|ranges| {
                let (first, last) = (ranges[0].start, ranges[ranges.len() - 1].end - 1);
                // Row groups `a..=b` hold the chunk: the last offset at or before its first row, etc.
                let a = offsets.partition_point(|&o| o <= first) - 1;
                let b = offsets.partition_point(|&o| o <= last) - 1;
                let base = offsets[a];
                let rows = ranges.iter().map(|r| r.len()).sum();
                let shifted = ranges.into_iter().map(|r| r.start - base..r.end - base);
                ReadPlan {
                    row_groups: self.row_groups[a..=b].to_vec(),
                    selection: Some(RowSelection::from_consecutive_ranges(shifted, offsets[b + 1] - base)),
                    rows,
                }
            })
            .collect()
    }
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

    /// The selected rows of a plan, as (row group, row within it), in read order.
    fn rows_of(plan: &ReadPlan, rg_rows: &[usize]) -> Vec<(usize, usize)> {
        let all: Vec<(usize, usize)> = plan
            .row_groups
            .iter()
            .flat_map(|&rg| (0..rg_rows[rg]).map(move |r| (rg, r)))
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
    fn split_plans_cover_the_same_rows_in_order() {
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
            for parts in [1, 2, 3, 7, 1000] {
                let split = plan.split(parts, |rg| rg_rows[rg]);
                assert!(split.len() <= parts.max(1), "{parts}: {}", split.len());
                let got: Vec<(usize, usize)> = split.iter().flat_map(|p| rows_of(p, &rg_rows)).collect();
                assert_eq!(got, expected, "{parts} parts");
                assert_eq!(split.iter().map(|p| p.rows).sum::<usize>(), plan.rows);
                if parts > 1 && parts <= plan.rows {
                    let most = split.iter().map(|p| p.rows).max().unwrap();
                    assert!(most <= plan.rows.div_ceil(parts), "{parts}: a part of {most}");
                }
            }
        }
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
