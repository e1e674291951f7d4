//! The rollup tables `metrics_5m`, `metrics_1h` and `metrics_1d`: one row per series per
//! bucket (or per piece of a bucket, see [`crate::rollup`]), one file per (UTC day, cluster)
//! under `metrics_5m/`, `metrics_1h/` and `metrics_1d/` (see [`crate::layout`]).
//!
//! # Schema (on-disk contract)
//!
//! Rows are sorted by (`cluster`, `metric`, `labels`, `timestamp`, `first_ts`); the first five
//! columns are exactly the metrics table's ([`crate::schema`]).
//!
//! | column      | Arrow type                    | content                                                  |
//! |-------------|-------------------------------|----------------------------------------------------------|
//! | `cluster`   | Dictionary(Int32, Utf8)       | the `cluster` label, `""` when absent                    |
//! | `metric`    | Dictionary(Int32, Utf8)       | the `__name__` label, `""` when absent                   |
//! | `labels`    | Dictionary(Int32, Utf8)       | other labels, canonical JSON object                      |
//! | `series_id` | UInt64                        | `Labels::series_id` of all labels                        |
//! | `timestamp` | Timestamp(Millisecond, "UTC") | bucket label `b`, its **end**: samples in `(b - res, b]` |
//! | `count`     | UInt64                        | non-stale samples summarised (≥ 1)                       |
//! | `sum`       | Float64                       | sum of their values                                      |
//! | `min`       | Float64                       | smallest value (NaN only if all are NaN)                 |
//! | `max`       | Float64                       | largest value (NaN only if all are NaN)                  |
//! | `first`     | Float64                       | value of the first sample                                |
//! | `last`      | Float64                       | value of the last sample                                 |
//! | `first_ts`  | Timestamp(Millisecond, "UTC") | time of the first sample                                 |
//! | `last_ts`   | Timestamp(Millisecond, "UTC") | time of the last sample                                  |
//! | `increase`  | Float64                       | counter-aware increase from first to last (resets: +new) |
//!
//! No column is nullable. A row summarises samples of one UTC day only, the day of its file:
//! the bucket ending at midnight has up to two rows (in the two days' files), each summarising
//! its part; a reader combines them in `first_ts` order ([`crate::rollup::Bucket::append`]).
//! The file key's `min_ts`/`max_ts` are the smallest `first_ts` and largest `last_ts`: the
//! sample times the file summarises. A rollup file stands for **every** sample of its cluster
//! in its UTC day: readers serving buckets use it instead of that day's raw files. Two rows
//! for the same series, bucket and day are copies (a rollup written again); the later file's
//! wins.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, TimestampMillisecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, TimestampMillisecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::series::{self, FileRows, SeriesKey, key_col};
use super::{FilePlan, ParquetTable, ReadContext};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::{FileKey, Hour, Table, storable_timestamp};
use crate::parquet_io::plan::cluster_may_match;
use crate::parquet_io::{AbortOnDrop, ParquetIo};
use crate::rollup::{Bucket, BucketFields, BucketSeries, DAY_MS, Resolution, same_day, sort_buckets_by_key};
use crate::schema;
use crate::types::{Labels, Matcher, TimeRange};
use crate::writer::WriterOptions;
use crate::{Error, Result};

const COUNT: &str = "count";
const SUM: &str = "sum";
const MIN: &str = "min";
const MAX: &str = "max";
const FIRST: &str = "first";
const LAST: &str = "last";
const FIRST_TS: &str = "first_ts";
const LAST_TS: &str = "last_ts";
const INCREASE: &str = "increase";

/// Positions of the columns a read for [`BucketFields::Change`] leaves out (other columns are
/// found by name, as a projected batch holds fewer).
mod col {
    pub(super) const SUM: usize = 6;
    pub(super) const MIN: usize = 7;
    pub(super) const MAX: usize = 8;
}

static ROLLUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = series::key_fields();
    fields.extend([
        Field::new(COUNT, DataType::UInt64, false),
        Field::new(SUM, DataType::Float64, false),
        Field::new(MIN, DataType::Float64, false),
        Field::new(MAX, DataType::Float64, false),
        Field::new(FIRST, DataType::Float64, false),
        Field::new(LAST, DataType::Float64, false),
        Field::new(FIRST_TS, schema::timestamp_type(), false),
        Field::new(LAST_TS, schema::timestamp_type(), false),
        Field::new(INCREASE, DataType::Float64, false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The rollup tables' Arrow schema (every resolution; embedded in every file's footer).
pub(crate) fn rollups_schema() -> SchemaRef {
    ROLLUPS_SCHEMA.clone()
}

/// Which resolution a [`Rollups`] table stores.
pub(crate) trait Width: Send + Sync + 'static {
    const RESOLUTION: Resolution;
    /// Written with Snappy instead of the configured zstd. Parquet sets up a zstd compressor and
    /// decompressor for every column chunk it reads (14 per rollup file); for a file of one row
    /// per series that setup costs more than the read itself.
    const SNAPPY: bool = false;
}

/// Marker: the `metrics_5m` table.
#[derive(Debug)]
pub(crate) struct FiveMinutes;
impl Width for FiveMinutes {
    const RESOLUTION: Resolution = Resolution::FiveMinutes;
}

/// Marker: the `metrics_1h` table.
#[derive(Debug)]
pub(crate) struct OneHour;
impl Width for OneHour {
    const RESOLUTION: Resolution = Resolution::OneHour;
    /// Long range queries read every hourly row of their range (72 million for a 30-day range
    /// query over 100,000 series): Snappy cut that query's time by a tenth for 1.6x the bytes
    /// of this table (a few percent of the whole store; BENCHMARKS "30-day burn rate on
    /// rollups"). LZ4 measured no faster than Snappy.
    const SNAPPY: bool = true;
}

/// Marker: the `metrics_1d` table.
#[derive(Debug)]
pub(crate) struct OneDay;
impl Width for OneDay {
    const RESOLUTION: Resolution = Resolution::OneDay;
    /// A long window reads every day file whole (30 per cluster for a 30-day window); they are
    /// a tenth of the hourly table, so the 1.4x bytes of Snappy over zstd cost little.
    const SNAPPY: bool = true;
}

/// A rollup table of resolution `W`.
#[derive(Debug)]
pub(crate) struct Rollups<W>(PhantomData<W>);

impl<W: Width> ParquetTable for Rollups<W> {
    const KIND: Table = W::RESOLUTION.table();
    /// One row per series and bucket in a day's files (the later file's copy wins).
    const IDENTITY: &'static [&'static str] = &[schema::CLUSTER, schema::METRIC, schema::LABELS, schema::TIMESTAMP];
    type Input = [BucketSeries];
    type Plan<'a> = RollupPlan;
    type Reader = RollupsReader;

    fn schema() -> SchemaRef {
        rollups_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        series::table_properties(
            writer,
            &[key_col::CLUSTER, key_col::METRIC, key_col::LABELS, key_col::TIMESTAMP],
            |b| {
                let b = if W::SNAPPY {
                    b.set_compression(Compression::SNAPPY)
                } else {
                    b
                };
                // A series' first and last sample times step by about one bucket from row to
                // row, so their deltas pack into a few bits. Left to the default, nearly every
                // row's time is a dictionary entry of its own: half of an hourly file's bytes.
                let values = [SUM, MIN, MAX, FIRST, LAST, INCREASE].map(|name| (name, Encoding::BYTE_STREAM_SPLIT));
                let times = [FIRST_TS, LAST_TS].map(|name| (name, Encoding::DELTA_BINARY_PACKED));
                values.into_iter().chain(times).fold(b, |b, (name, encoding)| {
                    b.set_column_dictionary_enabled(ColumnPath::from(name), false)
                        .set_column_encoding(ColumnPath::from(name), encoding)
                })
            },
        )
    }

    /// Rows are grouped per (UTC day of their samples, cluster); repeated label sets merged;
    /// of two rows for one series, bucket and first sample, the one given later wins.
    fn plan(input: &[BucketSeries]) -> Result<RollupPlan> {
        RollupPlan::new(W::RESOLUTION.table(), input)
    }

    fn reader(ctx: ReadContext) -> RollupsReader {
        RollupsReader {
            io: ctx.io,
            catalog: ctx.catalog,
            resolution: W::RESOLUTION,
            days: ctx.rollup_days,
        }
    }
}

/// A write of a rollup table: one file per (UTC day, cluster).
#[derive(Debug)]
pub(crate) struct RollupPlan {
    table: Table,
    files: Vec<FileRows<Bucket>>,
}

impl RollupPlan {
    fn new(table: Table, input: &[BucketSeries]) -> Result<Self> {
        let mut merged: HashMap<&Labels, Vec<Bucket>> = HashMap::new();
        for s in input {
            merged.entry(&s.labels).or_default().extend_from_slice(&s.buckets);
        }
        let mut groups: HashMap<(i64, String), Vec<series::SeriesItems<Bucket>>> = HashMap::new();
        for (labels, mut buckets) in merged {
            if let Some(bad) = buckets
                .iter()
                .find(|b| ![b.timestamp, b.first_ts, b.last_ts].into_iter().all(storable_timestamp))
            {
                return Err(Error::InvalidData {
                    reason: format!(
                        "rollup of {labels} has timestamp {}, outside years 0000-9999",
                        bad.timestamp
                    ),
                });
            }
            if let Some(bad) = buckets
                .iter()
                .find(|b| b.first_ts.div_euclid(DAY_MS) != b.last_ts.div_euclid(DAY_MS) || b.count == 0)
            {
                return Err(Error::InvalidData {
                    reason: format!(
                        "rollup row of {labels} at {} is empty or spans two UTC days ({}..={})",
                        bad.timestamp, bad.first_ts, bad.last_ts
                    ),
                });
            }
            // Stable: of equal (label, first sample), the later given comes last and is kept.
            buckets.sort_by_key(|b| (b.timestamp, b.first_ts));
            buckets.reverse();
            buckets.dedup_by_key(|b| (b.timestamp, b.first_ts));
            buckets.reverse();
            // One row per (bucket, day), as readers expect: disjoint pieces are combined, and of
            // overlapping ones (copies) the later given is kept.
            let mut rows: Vec<Bucket> = Vec::with_capacity(buckets.len());
            for b in buckets {
                match rows.last_mut() {
                    Some(prev) if prev.timestamp == b.timestamp && same_day(prev.first_ts, b.first_ts) => {
                        if prev.last_ts < b.first_ts {
                            prev.append(&b);
                        } else {
                            *prev = b;
                        }
                    }
                    _ => rows.push(b),
                }
            }
            let buckets = rows;
            let key = Arc::new(SeriesKey::of(labels));
            let mut by_day: HashMap<i64, Vec<Bucket>> = HashMap::new();
            for b in buckets {
                by_day.entry(b.first_ts.div_euclid(DAY_MS)).or_default().push(b);
            }
            for (day, rows) in by_day {
                groups
                    .entry((day, key.cluster.clone()))
                    .or_default()
                    .push((key.clone(), rows));
            }
        }
        let mut files: Vec<FileRows<Bucket>> = groups
            .into_iter()
            .map(|((day, cluster), mut series)| {
                series.sort_unstable_by(|(a, _), (b, _)| (&a.metric, &a.labels_json).cmp(&(&b.metric, &b.labels_json)));
                FileRows {
                    hour: Hour(day * 24),
                    cluster,
                    series,
                }
            })
            .collect();
        files.sort_unstable_by(|a, b| (a.hour, &a.cluster).cmp(&(b.hour, &b.cluster)));
        Ok(Self { table, files })
    }
}

impl FilePlan for RollupPlan {
    fn files(&self) -> usize {
        self.files.len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, RecordBatch)> {
        let f = &self.files[i];
        let lo = f.items().map(|b| b.first_ts).min().unwrap_or(0);
        let hi = f.items().map(|b| b.last_ts).max().unwrap_or(0);
        let key = FileKey::new(self.table, &f.cluster, lo, hi, f.rows() as u64)?;
        Ok((key, record_batch(f)?))
    }
}

fn record_batch(file: &FileRows<Bucket>) -> Result<RecordBatch> {
    let mut columns = file.key_columns(|b| b.timestamp)?;
    let f64s =
        |get: fn(&Bucket) -> f64| -> ArrayRef { Arc::new(Float64Array::from_iter_values(file.items().map(get))) };
    let times = |get: fn(&Bucket) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from_iter_values(file.items().map(get)).with_timezone("UTC"))
    };
    columns.push(Arc::new(UInt64Array::from_iter_values(file.items().map(|b| b.count))));
    columns.push(f64s(|b| b.sum));
    columns.push(f64s(|b| b.min));
    columns.push(f64s(|b| b.max));
    columns.push(f64s(|b| b.first));
    columns.push(f64s(|b| b.last));
    columns.push(times(|b| b.first_ts));
    columns.push(times(|b| b.last_ts));
    columns.push(f64s(|b| b.increase));
    RecordBatch::try_new(rollups_schema(), columns).map_err(|source| Error::Arrow {
        op: "assemble rollups batch",
        source,
    })
}

/// Reads bucket rows back from one rollup table.
#[derive(Debug)]
pub(crate) struct RollupsReader {
    io: ParquetIo,
    catalog: Arc<Catalog>,
    resolution: Resolution,
    /// Day summaries kept by [`RollupsReader::select_window`] (shared by both tables).
    days: Arc<DayCache>,
}

impl RollupsReader {
    /// The table's files that may hold samples of `range` (sample times) for `matchers`, in
    /// write order.
    pub(crate) fn files(&self, range: TimeRange, matchers: &[Matcher]) -> Vec<Arc<FileMeta>> {
        self.catalog
            .files(self.resolution.table(), range, |c| cluster_may_match(c, matchers))
    }

    /// The rows of `files` for series matching `matchers` (and admitted by `admits`) whose
    /// bucket lies wholly in `range` (whole buckets, see [`Resolution::widen`]); copies of a
    /// row (same series, bucket and day) removed, the later file's kept. Pieces of one bucket
    /// are left for [`crate::rollup::BucketRead::into_series`] to combine. Only the columns
    /// `fields` needs are decoded.
    pub(crate) async fn select(
        &self,
        files: Vec<Arc<FileMeta>>,
        matchers: &[Matcher],
        range: TimeRange,
        fields: BucketFields,
        admits: impl Fn(&Labels) -> bool,
    ) -> Result<Vec<BucketSeries>> {
        let labels = self.resolution.labels_within(range);
        let matchers: Arc<[Matcher]> = matchers.into();
        // Each file is read and decoded by a task of its own (decoding is most of the work, and
        // tasks spread it over the runtime's threads); their series are merged in write order.
        // Labels come through the day cache's pool (`DayCache::read_day`): a series met in an
        // earlier file costs a lookup by its stored id, not a parse of its labels.
        let tasks = files.into_iter().map(|file| {
            let (io, days, matchers) = (self.io.clone(), self.days.clone(), matchers.clone());
            AbortOnDrop(tokio::spawn(async move {
                days.read_rows(&io, &file, &matchers, labels, fields).await
            }))
        });
        let mut reads = futures::stream::iter(tasks).buffered(self.io.concurrency);
        // Each series' rows per file, in write order: concatenated once at the end, so rows are
        // copied once more, not at every growth of one vector per series.
        let mut index: IdMap<Vec<usize>> = IdMap::default();
        let mut out: Vec<(Arc<Labels>, Vec<Rows>)> = Vec::new();
        while let Some(series) = reads.try_next().await? {
            for (id, labels, rows) in series {
                let slots = index.entry(id).or_default();
                let known = slots
                    .iter()
                    .copied()
                    .find(|&i| Arc::ptr_eq(&out[i].0, &labels) || out[i].0 == labels);
                match known {
                    Some(i) => out[i].1.push(rows),
                    None => {
                        slots.push(out.len());
                        out.push((labels, vec![rows]));
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .filter(|(labels, files)| files.iter().any(|rows| !rows.as_slice().is_empty()) && admits(labels))
            .map(|(labels, files)| {
                let mut rows: Vec<Bucket> = Vec::with_capacity(files.iter().map(|f| f.as_slice().len()).sum());
                files.iter().for_each(|f| rows.extend_from_slice(f.as_slice()));
                // Usually in order already (files come in day order). Stable, so of two copies
                // of a row (same bucket and day) the later file's comes last, and is kept.
                sort_buckets_by_key(&mut rows, |b| (b.timestamp, b.first_ts.div_euclid(DAY_MS)));
                rows.dedup_by(|later, kept| {
                    let copy = (later.timestamp, later.first_ts.div_euclid(DAY_MS))
                        == (kept.timestamp, kept.first_ts.div_euclid(DAY_MS));
                    if copy {
                        *kept = *later;
                    }
                    copy
                });
                BucketSeries {
                    labels: Labels::clone(&labels),
                    buckets: rows,
                }
            })
            .collect())
    }
}

/// The summary columns of one batch of a rollup file, as slices (a run of rows is read with
/// one bounds check per column, not one per value). `sum`, `min` and `max` are absent from a
/// read for [`BucketFields::Change`] (their buckets hold NaN there).
struct BucketColumns<'b> {
    count: &'b [u64],
    sum: Option<&'b [f64]>,
    min: Option<&'b [f64]>,
    max: Option<&'b [f64]>,
    first: &'b [f64],
    last: &'b [f64],
    increase: &'b [f64],
    first_ts: &'b [i64],
    last_ts: &'b [i64],
}

/// Column `name` of `batch` as a slice of `T`'s values; `None` when absent, of another type
/// or holding nulls.
fn values<'b, T: ArrowPrimitiveType>(batch: &'b RecordBatch, name: &str) -> Option<&'b [T::Native]> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .filter(|a| a.null_count() == 0)
        .map(|a| &a.values()[..])
}

/// The rollup schema's columns a read for `fields` decodes (positions in [`rollups_schema`];
/// `None`: every column).
fn read_columns(fields: BucketFields) -> Option<&'static [usize]> {
    static CHANGE: LazyLock<Vec<usize>> = LazyLock::new(|| {
        (0..rollups_schema().fields().len())
            .filter(|c| ![col::SUM, col::MIN, col::MAX].contains(c))
            .collect()
    });
    match fields {
        BucketFields::All => None,
        BucketFields::Change => Some(CHANGE.as_slice()),
    }
}

impl<'b> BucketColumns<'b> {
    /// The columns of `batch`, found by name (a projected read holds fewer); `fields` says
    /// which may be absent.
    fn of(batch: &'b RecordBatch, key: &str, fields: BucketFields) -> Result<Self> {
        let corrupt = |what: &str| Error::Corrupt {
            key: key.to_string(),
            reason: format!("rollups column {what} is missing, has an unexpected type or nulls"),
        };
        let f64s = |name: &str| values::<Float64Type>(batch, name).ok_or_else(|| corrupt(name));
        let times = |name: &str| values::<TimestampMillisecondType>(batch, name).ok_or_else(|| corrupt(name));
        let extreme = |name: &str| match fields {
            BucketFields::All => f64s(name).map(Some),
            BucketFields::Change => Ok(None),
        };
        Ok(Self {
            count: values::<UInt64Type>(batch, COUNT).ok_or_else(|| corrupt(COUNT))?,
            sum: extreme(SUM)?,
            min: extreme(MIN)?,
            max: extreme(MAX)?,
            first: f64s(FIRST)?,
            last: f64s(LAST)?,
            increase: f64s(INCREASE)?,
            first_ts: times(FIRST_TS)?,
            last_ts: times(LAST_TS)?,
        })
    }

    /// The columns of `rows` only.
    fn slice(&self, rows: std::ops::Range<usize>) -> Self {
        let part = |c: Option<&'b [f64]>| c.map(|c| &c[rows.clone()]);
        Self {
            count: &self.count[rows.clone()],
            sum: part(self.sum),
            min: part(self.min),
            max: part(self.max),
            first: &self.first[rows.clone()],
            last: &self.last[rows.clone()],
            increase: &self.increase[rows.clone()],
            first_ts: &self.first_ts[rows.clone()],
            last_ts: &self.last_ts[rows],
        }
    }

    /// The buckets of `rows` whose label (`labels[row]`) lies in `range`, onto `out`; a row
    /// summarising nothing is corrupt.
    fn push_run(
        &self,
        rows: std::ops::Range<usize>,
        labels: &[i64],
        range: TimeRange,
        key: &str,
        out: &mut Vec<Bucket>,
    ) -> Result<()> {
        let (c, labels) = (self.slice(rows.clone()), &labels[rows]);
        out.reserve(labels.len());
        let or_nan = |c: Option<&[f64]>, i: usize| c.map_or(f64::NAN, |c| c[i]);
        for (i, &timestamp) in labels.iter().enumerate().filter(|(_, t)| range.contains(**t)) {
            let bucket = Bucket {
                timestamp,
                count: c.count[i],
                sum: or_nan(c.sum, i),
                min: or_nan(c.min, i),
                max: or_nan(c.max, i),
                first: c.first[i],
                last: c.last[i],
                first_ts: c.first_ts[i],
                last_ts: c.last_ts[i],
                increase: c.increase[i],
            };
            if bucket.count == 0 || bucket.first_ts > bucket.last_ts {
                return Err(Error::Corrupt {
                    key: key.to_string(),
                    reason: format!("rollup row at {timestamp} summarises no samples"),
                });
            }
            out.push(bucket);
        }
        Ok(())
    }
}

mod days;
pub(crate) use days::DayCache;
use days::{IdMap, Rows};

#[cfg(test)]
mod tests;
