//! The series-keyed table kit, for any table whose rows belong to series (`histograms` and
//! `exemplars` and `rollups`): splitting per-series rows into one file per (UTC hour,
//! cluster) ([`split_series`], [`FileRows`], [`SeriesPlan`]), the key columns every
//! series-keyed file starts with, their read plan ([`series_plan`]), and turning the key columns
//! of read batches back into label sets ([`SeriesCollector`]); plus the column helpers other
//! tables share (dictionary and list columns, [`table_properties`]).
//!
//! Series-keyed files start with the metrics table's first five columns — `cluster`, `metric`,
//! `labels`, `series_id`, `timestamp`, same types, same canonical `labels` JSON
//! ([`schema::labels_json`]) — and sort rows by `(cluster, metric, labels, timestamp)`. So the
//! writer properties and the pruning of [`series_plan`] apply to them unchanged.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_array::{Float64Array, ListArray, UInt64Array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, FieldRef};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};

use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use super::FilePlan;
use crate::layout::{FileKey, Hour, Table, storable_timestamp};
use crate::parquet_io::plan::{ColumnCheck, ReadPlan, plan};
use crate::schema;
use crate::types::{self, Label, Labels, Matcher, SeriesId, TimeRange, TimestampMs, matches_all};
use crate::writer::WriterOptions;
use crate::{Error, Result};

/// Positions of the key columns every series-keyed file starts with.
pub(crate) mod key_col {
    pub(crate) const CLUSTER: usize = 0;
    pub(crate) const METRIC: usize = 1;
    pub(crate) const LABELS: usize = 2;
    pub(crate) const SERIES_ID: usize = 3;
    pub(crate) const TIMESTAMP: usize = 4;
}

/// `Dictionary(Int32, Utf8)`, the type of the key string columns.
pub(crate) fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The five key columns, as in the metrics table.
pub(crate) fn key_fields() -> Vec<Field> {
    vec![
        Field::new(schema::CLUSTER, dict_utf8(), false),
        Field::new(schema::METRIC, dict_utf8(), false),
        Field::new(schema::LABELS, dict_utf8(), false),
        Field::new(schema::SERIES_ID, DataType::UInt64, false),
        Field::new(schema::TIMESTAMP, schema::timestamp_type(), false),
    ]
}

/// The element field of a non-null list column of non-null `item`s.
pub(crate) fn list_item(item: DataType) -> FieldRef {
    Arc::new(Field::new("item", item, false))
}

/// Writer properties for a table beside metrics: the metrics table's (compression, row group
/// and page sizes, statistics, per-column encodings by name) with the table's own sort order
/// and `adjust` applied on top.
pub(crate) fn table_properties(
    writer: &WriterOptions,
    sorted_by: &[usize],
    adjust: impl FnOnce(WriterPropertiesBuilder) -> WriterPropertiesBuilder,
) -> Result<WriterProperties> {
    let sorting = sorted_by
        .iter()
        .map(|&i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: false,
        })
        .collect();
    let builder = writer.properties()?.into_builder().set_sorting_columns(Some(sorting));
    Ok(adjust(builder).build())
}

/// A series' key columns, computed once per write.
#[derive(Debug)]
pub(crate) struct SeriesKey {
    pub cluster: String,
    pub metric: String,
    pub labels_json: String,
    pub series_id: u64,
}

impl SeriesKey {
    pub(crate) fn of(labels: &Labels) -> Self {
        Self {
            cluster: labels.get(types::CLUSTER).unwrap_or("").to_string(),
            metric: labels.metric_name().unwrap_or("").to_string(),
            labels_json: schema::labels_json(labels),
            series_id: labels.series_id().0,
        }
    }
}

/// A series' key and its items in one file.
pub(crate) type SeriesItems<T> = (Arc<SeriesKey>, Vec<T>);

/// One file's rows: series of one cluster within one UTC hour, sorted by (metric, labels), each
/// with its items in time order.
#[derive(Debug)]
pub(crate) struct FileRows<T> {
    pub hour: Hour,
    pub cluster: String,
    pub series: Vec<SeriesItems<T>>,
}

impl<T> FileRows<T> {
    pub(crate) fn rows(&self) -> usize {
        self.series.iter().map(|(_, items)| items.len()).sum()
    }

    /// Every row's item, in row order.
    pub(crate) fn items(&self) -> impl Iterator<Item = &T> + Clone {
        self.series.iter().flat_map(|(_, items)| items.iter())
    }

    /// A fresh key for this file of `table`.
    pub(crate) fn file_key(&self, table: Table, ts: impl Fn(&T) -> TimestampMs) -> Result<FileKey> {
        let (lo, hi) = self
            .items()
            .map(&ts)
            .fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        FileKey::new(table, &self.cluster, lo, hi, self.rows() as u64)
    }

    /// The five key columns of every row (see [`key_fields`]).
    pub(crate) fn key_columns(&self, ts: impl Fn(&T) -> TimestampMs) -> Result<Vec<ArrayRef>> {
        let rows = self.rows();
        let mut metrics: Vec<&str> = Vec::new();
        let mut label_ids: HashMap<&str, i32> = HashMap::new();
        let mut label_values: Vec<&str> = Vec::new();
        let (mut metric_keys, mut label_keys) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        let mut ids = Vec::with_capacity(rows);
        let mut times = Vec::with_capacity(rows);
        for (key, items) in &self.series {
            // Series are sorted by metric: equal metrics are adjacent.
            if metrics.last() != Some(&key.metric.as_str()) {
                metrics.push(&key.metric);
            }
            let m = (metrics.len() - 1) as i32;
            let next = label_values.len() as i32;
            let l = *label_ids.entry(&key.labels_json).or_insert(next);
            if l == next {
                label_values.push(&key.labels_json);
            }
            metric_keys.extend(std::iter::repeat_n(m, items.len()));
            label_keys.extend(std::iter::repeat_n(l, items.len()));
            ids.extend(std::iter::repeat_n(key.series_id, items.len()));
            times.extend(items.iter().map(&ts));
        }
        Ok(vec![
            dict_column(vec![0; rows], vec![self.cluster.as_str()])?,
            dict_column(metric_keys, metrics)?,
            dict_column(label_keys, label_values)?,
            Arc::new(UInt64Array::from(ids)),
            Arc::new(TimestampMillisecondArray::from(times).with_timezone("UTC")),
        ])
    }
}

fn dict_column(keys: Vec<i32>, values: Vec<&str>) -> Result<ArrayRef> {
    let array = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(StringArray::from(values)))
        .map_err(|source| Error::Arrow {
            op: "build dictionary column",
            source,
        })?;
    Ok(Arc::new(array))
}

/// A non-null `List<item>` column: row `i` holds `lists[i]`'s elements, flattened into `values`.
pub(crate) fn list_column(
    item: DataType,
    lengths: impl IntoIterator<Item = usize>,
    values: ArrayRef,
) -> Result<ArrayRef> {
    let offsets = OffsetBuffer::<i32>::from_lengths(lengths);
    let list = ListArray::try_new(list_item(item), offsets, values, None).map_err(|source| Error::Arrow {
        op: "build list column",
        source,
    })?;
    Ok(Arc::new(list))
}

/// A `List<Float64>` column, one list per item.
pub(crate) fn f64_list_column<'a, T: 'a>(
    items: impl Iterator<Item = &'a T> + Clone,
    list: impl Fn(&T) -> &[f64],
) -> Result<ArrayRef> {
    let values: Vec<f64> = items.clone().flat_map(|i| list(i).iter().copied()).collect();
    list_column(
        DataType::Float64,
        items.map(|i| list(i).len()),
        Arc::new(Float64Array::from(values)),
    )
}

/// Splits series into per-(hour, cluster) files. Repeated label sets are merged (their items
/// appended in input order), then `normalize` sorts each series' items by time (and removes
/// duplicates). Fails, naming the series, when a timestamp lies outside the years keys can name.
pub(crate) fn split_series<'a, T: Clone + 'a>(
    input: impl IntoIterator<Item = (&'a Labels, &'a [T])>,
    ts: impl Fn(&T) -> TimestampMs,
    normalize: impl Fn(&mut Vec<T>),
) -> Result<Vec<FileRows<T>>> {
    let mut index: HashMap<&Labels, usize> = HashMap::new();
    let mut merged: Vec<(&Labels, Vec<T>)> = Vec::new();
    for (labels, items) in input {
        if items.is_empty() {
            continue;
        }
        match index.get(labels) {
            Some(&i) => merged[i].1.extend_from_slice(items),
            None => {
                index.insert(labels, merged.len());
                merged.push((labels, items.to_vec()));
            }
        }
    }
    let mut groups: HashMap<(Hour, String), Vec<SeriesItems<T>>> = HashMap::new();
    for (labels, mut items) in merged {
        normalize(&mut items);
        if let Some(bad) = items.iter().map(&ts).find(|&t| !storable_timestamp(t)) {
            return Err(Error::InvalidData {
                reason: format!("series {labels} has timestamp {bad}, outside years 0000-9999"),
            });
        }
        let key = Arc::new(SeriesKey::of(labels));
        let mut rest = items.as_slice();
        while let Some(first) = rest.first() {
            let hour = Hour::of(ts(first));
            let end = hour.end_ms();
            let len = rest.partition_point(|i| ts(i) <= end);
            groups
                .entry((hour, key.cluster.clone()))
                .or_default()
                .push((key.clone(), rest[..len].to_vec()));
            rest = &rest[len..];
        }
    }
    let mut files: Vec<FileRows<T>> = groups
        .into_iter()
        .map(|((hour, cluster), mut series)| {
            series.sort_unstable_by(|(a, _), (b, _)| (&a.metric, &a.labels_json).cmp(&(&b.metric, &b.labels_json)));
            FileRows { hour, cluster, series }
        })
        .collect();
    files.sort_unstable_by(|a, b| (a.hour, &a.cluster).cmp(&(b.hour, &b.cluster)));
    Ok(files)
}

/// Stable-sorts by time and keeps the last item given for each timestamp (a later write wins).
pub(crate) fn keep_last_per_timestamp<T>(items: &mut Vec<T>, ts: impl Fn(&T) -> TimestampMs) {
    if items.windows(2).all(|w| ts(&w[0]) < ts(&w[1])) {
        return;
    }
    items.reverse();
    // Stable: among equal timestamps the last given now comes first, and dedup keeps it.
    items.sort_by_key(&ts);
    items.dedup_by_key(|i| ts(i));
}

/// The read plan of a series-keyed file: row groups and pages whose `timestamp` meets `range`
/// and whose `metric` and `cluster` statistics can hold the values `matchers` pin exactly.
pub(crate) fn series_plan(meta: &ArrowReaderMetadata, range: TimeRange, matchers: &[Matcher]) -> Option<ReadPlan> {
    let pin = |name: &str| matchers.iter().find(|m| m.name == name).and_then(Matcher::exact_value);
    let checks: Vec<ColumnCheck<'_>> = [ColumnCheck::overlaps_ms(meta, schema::TIMESTAMP, range)]
        .into_iter()
        .chain(pin(types::METRIC_NAME).map(|v| ColumnCheck::may_contain(meta, schema::METRIC, v)))
        .chain(pin(types::CLUSTER).map(|v| ColumnCheck::may_contain(meta, schema::CLUSTER, v)))
        .flatten()
        .collect();
    plan(meta, &checks)
}

/// A write of a series-keyed table: its files' rows, encoded one file at a time by `batch`.
#[derive(Debug)]
pub(crate) struct SeriesPlan<T> {
    pub(crate) table: Table,
    pub(crate) files: Vec<FileRows<T>>,
    pub(crate) ts: fn(&T) -> TimestampMs,
    pub(crate) batch: fn(&FileRows<T>) -> Result<RecordBatch>,
}

impl<T: Sync> FilePlan for SeriesPlan<T> {
    fn files(&self) -> usize {
        self.files.len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, RecordBatch)> {
        let f = &self.files[i];
        Ok((f.file_key(self.table, self.ts)?, (self.batch)(f)?))
    }
}

/// Gathers the rows of read batches into series: each row's (cluster, metric, labels) key is
/// resolved to a full label set and checked against the selectors once per distinct key per
/// batch; rows of series no selector accepts are skipped.
#[derive(Debug)]
pub(crate) struct SeriesCollector<'s, T> {
    /// A series is kept when every matcher of any one selector accepts it.
    selectors: &'s [Vec<Matcher>],
    index: HashMap<Labels, usize>,
    pub out: Vec<(Labels, Vec<T>)>,
}

impl<'s, T> SeriesCollector<'s, T> {
    pub(crate) fn new(selectors: &'s [Vec<Matcher>]) -> Self {
        Self {
            selectors,
            index: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// Per row of `batch`: the output slot of its series (`None`: not selected) and its timestamp.
    pub(crate) fn rows(&mut self, batch: &RecordBatch, key: &str) -> Result<Vec<(Option<usize>, TimestampMs)>> {
        row_series(batch, key, |_, (cluster, metric, rest)| {
            Ok(self.slot(series_labels(cluster, metric, rest)?))
        })
    }

    fn slot(&mut self, labels: Labels) -> Option<usize> {
        if !self.selectors.iter().any(|m| matches_all(m, &labels)) {
            return None;
        }
        Some(*self.index.entry(labels).or_insert_with_key(|labels| {
            self.out.push((labels.clone(), Vec::new()));
            self.out.len() - 1
        }))
    }
}

/// Per row of `batch` (key columns of the metrics table's layout): the slot `resolve` gives its
/// series and its timestamp. `resolve` is asked once per distinct (cluster, metric, labels) of
/// the batch, with the first such row and the three texts; an `Err` is the file's corruption.
pub(crate) fn row_series(
    batch: &RecordBatch,
    key: &str,
    resolve: impl FnMut(usize, (&str, &str, &str)) -> std::result::Result<Option<usize>, String>,
) -> Result<Vec<(Option<usize>, TimestampMs)>> {
    let times = timestamps(batch, key)?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for (slot, rows) in series_runs(batch, key, resolve)? {
        out.extend(rows.map(|row| (slot, times.value(row))));
    }
    Ok(out)
}

/// [`row_series`] by runs: the rows of `batch` as runs of one series each (rows are sorted by
/// series, so a file's series is one run per batch), each with the slot `resolve` gave it.
/// Callers walking a run at a time skip a per-row look-up and a per-row list.
pub(crate) fn series_runs(
    batch: &RecordBatch,
    key: &str,
    mut resolve: impl FnMut(usize, (&str, &str, &str)) -> std::result::Result<Option<usize>, String>,
) -> Result<Vec<(Option<usize>, Range<usize>)>> {
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_string(),
        reason,
    };
    let (ck, cv) = dict_keys(batch, key_col::CLUSTER).map_err(&corrupt)?;
    let (mk, mv) = dict_keys(batch, key_col::METRIC).map_err(&corrupt)?;
    let (lk, lv) = dict_keys(batch, key_col::LABELS).map_err(&corrupt)?;
    let mut resolved: HashMap<(i32, i32, i32), Option<usize>> = HashMap::new();
    let mut runs: Vec<(Option<usize>, Range<usize>)> = Vec::new();
    let mut row = 0;
    while row < batch.num_rows() {
        let triple = (ck[row], mk[row], lk[row]);
        let end = row
            + 1
            + (row + 1..batch.num_rows())
                .take_while(|&r| (ck[r], mk[r], lk[r]) == triple)
                .count();
        let slot = match resolved.get(&triple) {
            Some(s) => *s,
            None => {
                let texts = (
                    cv.value(triple.0 as usize),
                    mv.value(triple.1 as usize),
                    lv.value(triple.2 as usize),
                );
                let s = resolve(row, texts).map_err(&corrupt)?;
                resolved.insert(triple, s);
                s
            }
        };
        runs.push((slot, row..end));
        row = end;
    }
    Ok(runs)
}

/// The `timestamp` column of a batch of the metrics table's layout.
pub(crate) fn timestamps<'b>(batch: &'b RecordBatch, key: &str) -> Result<&'b TimestampMillisecondArray> {
    batch
        .column(key_col::TIMESTAMP)
        .as_primitive_opt::<TimestampMillisecondType>()
        .filter(|t| t.null_count() == 0)
        .ok_or_else(|| Error::Corrupt {
            key: key.to_string(),
            reason: "timestamp column has an unexpected type or nulls".into(),
        })
}

/// A row's labels from its key columns' texts: `cluster`, `metric` and the `labels` JSON.
pub(crate) fn series_labels(cluster: &str, metric: &str, rest: &str) -> std::result::Result<Labels, String> {
    let mut all: Vec<Label> = schema::parse_labels_json(rest).map_err(|e| format!("labels {rest:?}: {e}"))?;
    all.push(Label::new(types::METRIC_NAME, metric));
    all.push(Label::new(types::CLUSTER, cluster));
    Ok(Labels::new(all))
}

/// The keys (checked against the dictionary) and values of a `Dictionary(Int32, Utf8)` column.
pub(crate) fn dict_keys(batch: &RecordBatch, i: usize) -> Result<(&[i32], &StringArray), String> {
    let d: &DictionaryArray<Int32Type> = batch
        .column(i)
        .as_dictionary_opt()
        .ok_or_else(|| format!("column {i} is not a dictionary"))?;
    let values = d
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("column {i}: dictionary of non-strings"))?;
    if d.keys().null_count() > 0 || d.keys().values().iter().any(|&k| k < 0 || k as usize >= values.len()) {
        return Err(format!("column {i}: null or out-of-range dictionary key"));
    }
    Ok((d.keys().values(), values))
}

/// Row `row` of a non-null list column, as a range into its flattened child values.
pub(crate) fn list_range(list: &ListArray, row: usize) -> std::ops::Range<usize> {
    let offsets = list.value_offsets();
    offsets[row] as usize..offsets[row + 1] as usize
}

/// Series in first-seen order, found again by label set through the ids they carry (the index
/// holds positions and hashes by [`SeriesId`], so it copies no labels and hashes none again).
#[derive(Debug)]
pub(crate) struct SeriesList<T> {
    pub(crate) items: Vec<T>,
    index: hashbrown::HashTable<usize>,
}

impl<T> Default for SeriesList<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: hashbrown::HashTable::new(),
        }
    }
}

/// What a [`SeriesList`] finds its items by.
pub(crate) trait Keyed {
    fn id(&self) -> SeriesId;
    fn labels(&self) -> &Labels;
}

impl<T: Keyed> SeriesList<T> {
    /// The position of the item with `labels`, whose id is `id`.
    pub(crate) fn find(&self, id: SeriesId, labels: &Labels) -> Option<usize> {
        // Interned label sets are usually the very same value.
        let same = |i: &usize| {
            let found = self.items[*i].labels();
            std::ptr::eq(found, labels) || found == labels
        };
        self.index.find(id.0, same).copied()
    }

    /// Adds an item [`SeriesList::find`] did not find; returns its position.
    pub(crate) fn push(&mut self, item: T) -> usize {
        let (items, at) = (&self.items, self.items.len());
        self.index.insert_unique(item.id().0, at, |&i| items[i].id().0);
        self.items.push(item);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Item(i64, u8);

    #[test]
    fn series_split_by_hour_and_cluster_and_merge_repeats() {
        let a = Labels::from_pairs(&[("__name__", "m"), ("cluster", "a"), ("x", "1")]);
        let b = Labels::from_pairs(&[("__name__", "m"), ("cluster", "b")]);
        let hour = crate::layout::HOUR_MS;
        let first = [Item(5, 0), Item(hour + 1, 0)];
        let again = [Item(5, 1), Item(7, 0)];
        let other = [Item(3, 0)];
        let input = [(&a, &first[..]), (&b, &other[..]), (&a, &again[..])];
        let files = split_series(input, |i| i.0, |v| keep_last_per_timestamp(v, |i| i.0)).unwrap();
        let shape: Vec<(i64, &str, usize)> = files.iter().map(|f| (f.hour.0, f.cluster.as_str(), f.rows())).collect();
        assert_eq!(shape, vec![(0, "a", 2), (0, "b", 1), (1, "a", 1)]);
        assert_eq!(
            files[0].series[0].1,
            vec![Item(5, 1), Item(7, 0)],
            "the later write wins"
        );
        assert_eq!(files[0].series[0].0.labels_json, r#"{"x":"1"}"#);
        let key = files[0].file_key(Table::Exemplars, |i| i.0).unwrap();
        assert_eq!((key.min_ts, key.max_ts, key.rows, key.cluster.as_str()), (5, 7, 2, "a"));

        let bad = [Item(i64::MAX, 0)];
        let err = split_series([(&a, &bad[..])], |i| i.0, |_| {}).unwrap_err();
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
    }

    #[test]
    fn keep_last_per_timestamp_is_stable() {
        let mut v = vec![Item(2, 0), Item(1, 0), Item(2, 1), Item(1, 2), Item(3, 0)];
        keep_last_per_timestamp(&mut v, |i| i.0);
        assert_eq!(v, vec![Item(1, 2), Item(2, 1), Item(3, 0)]);
    }
}
