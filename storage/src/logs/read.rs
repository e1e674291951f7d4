//! The read plan of one logs-table file (`plan`): row groups and pages kept by `timestamp`
//! statistics (and `service_name` when a matcher pins it). Ranged object reads are the metrics
//! reader's `ObjectReader`.
//!
//! The scan itself ([`super::scan`]) decides which files to open and decodes the rows.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, RowSelection};

use super::schema;
use crate::read::prune::{ReadPlan, intersect, push_range};
use crate::signals::TimestampNs;
use crate::types::Matcher;

/// Keeps the row groups and pages whose `timestamp` statistics overlap the request and whose
/// `service_name` statistics can hold a pinned value, for the closed range `[start, end]`.
/// Missing statistics keep the data.
pub(super) fn plan(
    meta: &ArrowReaderMetadata,
    start: TimestampNs,
    end: TimestampNs,
    matchers: &[Matcher],
) -> Option<ReadPlan> {
    let md = meta.metadata();
    let conv = |name| StatisticsConverter::try_new(name, meta.schema(), meta.parquet_schema()).ok();
    let ts = conv(schema::TIMESTAMP);
    let service_pin = matchers
        .iter()
        .find(|m| m.name == schema::SERVICE_NAME_LABEL)
        .and_then(Matcher::exact_value);
    let service = service_pin.and_then(|v| Some((conv(schema::SERVICE_NAME)?, v)));
    let keep = |mins: &ArrayRef, maxes: &ArrayRef, i: usize, is_ts: bool, pin: &str| {
        if is_ts {
            ts_overlaps(mins, maxes, i, start, end)
        } else {
            str_may_contain(mins, maxes, i, pin)
        }
    };
    let checks: Vec<(&StatisticsConverter, bool, &str)> = ts
        .iter()
        .map(|c| (c, true, ""))
        .chain(service.as_ref().map(|(c, v)| (c, false, *v)))
        .collect();

    let rgs = md.row_groups();
    let candidates: Vec<usize> = (0..rgs.len())
        .filter(|&i| {
            checks.iter().all(
                |(c, is_ts, pin)| match (c.row_group_mins(rgs.iter()), c.row_group_maxes(rgs.iter())) {
                    (Ok(mins), Ok(maxes)) => keep(&mins, &maxes, i, *is_ts, pin),
                    _ => true,
                },
            )
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
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
        for (c, is_ts, pin) in &checks {
            let pages = || -> Option<Vec<Range<usize>>> {
                let mins = c.data_page_mins(col_index, off_index, [&rg]).ok()?;
                let maxes = c.data_page_maxes(col_index, off_index, [&rg]).ok()?;
                let counts = c.data_page_row_counts(off_index, rgs, [&rg]).ok()??;
                let mut out = Vec::new();
                let mut start = 0usize;
                for p in 0..counts.len() {
                    let len = counts.value(p) as usize;
                    if keep(&mins, &maxes, p, *is_ts, pin) {
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

/// Does `[mins[i], maxes[i]]` overlap `[start, end]`? Unknown statistics say yes.
fn ts_overlaps(mins: &ArrayRef, maxes: &ArrayRef, i: usize, start: TimestampNs, end: TimestampNs) -> bool {
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

/// Can a chunk with string statistics `[mins[i], maxes[i]]` hold `v`? Truncated statistics are
/// still bounds, so this stays conservative. Dictionary columns report their values' statistics.
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

/// What the table tests look at: the read plan's row groups and selected row count.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn plan(
        meta: &ArrowReaderMetadata,
        start: TimestampNs,
        end: TimestampNs,
        matchers: &[Matcher],
    ) -> Option<(Vec<usize>, usize)> {
        let p = super::plan(meta, start, end, matchers)?;
        Some((p.row_groups, p.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of one range are the point here
    fn range_lists_intersect_and_merge() {
        assert_eq!(intersect(&[0..10, 20..30], &[5..25]), vec![5..10, 20..25]);
        assert_eq!(intersect(&[0..10], &[10..20]), Vec::<Range<usize>>::new());
        let mut v = vec![];
        push_range(&mut v, 0..5);
        push_range(&mut v, 5..7);
        push_range(&mut v, 9..9);
        assert_eq!(v, vec![0..7]);
    }
}
