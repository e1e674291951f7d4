//! The `spans` table: trace spans ([`Span`]) as Parquet, one file per (UTC hour of the span's
//! start, cluster), and its reader ([`SpanReader`], the Parquet [`TraceSource`]).
//!
//! # Files (on-disk contract)
//!
//! Keys come from [`crate::layout::FileKey`] with table `spans`:
//! `spans/<YYYY-MM-DD>/<HH>/<cluster>/<min_ms>-<max_ms>-<rows>-<uuid>.parquet`, `<cluster>` the
//! span's cluster (`@none` without one), the hour the UTC hour of every row's `start`.
//! `min_ms`/`max_ms` are the smallest and largest `start` floored to the millisecond, so a reader
//! treats the file's span as `[min_ms · 1e6, max_ms · 1e6 + 999 999]` ns.
//!
//! # Schema (on-disk contract)
//!
//! One row per span. Rows are sorted by (`trace_id`, `span_id`, `start`), recorded as the file's
//! `sorting_columns`: a trace's spans sit together, and each row group's and page's min/max of
//! `trace_id` is the exact range of ids it holds (statistics are kept per page in the page
//! index). Every row group also carries a Parquet bloom filter of its trace ids (1% false
//! positives; any Parquet reader may use it). A lookup by id first asks each file's bloom
//! filters, skipping the files (and row groups) that do not hold the id, then reads the one page
//! range whose bounds hold it.
//!
//! | column                | Arrow type                   | content                                          |
//! |-----------------------|------------------------------|--------------------------------------------------|
//! | `trace_id`            | FixedSizeBinary(16)          | the trace                                        |
//! | `span_id`             | FixedSizeBinary(8)           | the span                                         |
//! | `start`               | Timestamp(Nanosecond, "UTC") | when it started                                  |
//! | `cluster`             | Dictionary(Int32, Utf8)      | its cluster, `""` when unknown                   |
//! | `parent_span_id`      | FixedSizeBinary(8)           | the parent, all zero for a root span             |
//! | `trace_state`         | Utf8                         | W3C trace state                                  |
//! | `name`                | Dictionary(Int32, Utf8)      | the operation name                               |
//! | `kind`                | Int32                        | OTLP `SpanKind` (0..=5)                          |
//! | `duration`            | Int64                        | nanoseconds from start to end                    |
//! | `status_code`         | Int32                        | OTLP `StatusCode` (0 unset, 1 ok, 2 error)       |
//! | `status_message`      | Utf8                         | the status message                               |
//! | `service_name`        | Dictionary(Int32, Utf8)      | the resource's `service.name`                    |
//! | `http_method`         | Dictionary(Int32, Utf8)      | `http.request.method` / `http.method`            |
//! | `http_route`          | Dictionary(Int32, Utf8)      | `http.route`                                     |
//! | `http_status_code`    | Int64                        | `http.response.status_code` / `http.status_code`, 0 when absent |
//! | `flags`               | UInt32                       | OTLP span flags                                  |
//! | `scope_name`          | Dictionary(Int32, Utf8)      | instrumentation scope name                       |
//! | `scope_version`       | Dictionary(Int32, Utf8)      | instrumentation scope version                    |
//! | `attributes`          | Utf8                         | the span's (and scope's) attributes, a JSON object |
//! | `resource_attributes` | Dictionary(Int32, Utf8)      | the resource's attributes, a JSON object         |
//! | `events`              | Utf8                         | the events, a JSON array                         |
//! | `links`               | Utf8                         | the links, a JSON array                          |
//!
//! No column is nullable; absent strings are `""`. The JSON shapes are [`Span`]'s. The
//! attributes live in one JSON column so the schema never widens per attribute; the common
//! semantic-convention ones are also dedicated columns.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    FixedSizeBinaryBuilder, Int32Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampNanosecondBuilder, UInt32Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, FixedSizeBinaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::data_type::FixedLenByteArray;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{FilePlan, ParquetTable, ReadContext, series};
use crate::catalog::{Catalog, FileMeta};
use crate::layout::{FileKey, Hour, Table};
use crate::parquet_io::plan::cluster_may_match;
use crate::parquet_io::plan::{self, ColumnCheck, ReadPlan};
use crate::parquet_io::{ParquetIo, parquet_error, plan_stream};
use crate::read::{SpanHead, SpanRequest, TraceSource, sort_spans};
use crate::signals::{Span, TimestampNs, TraceId};
use crate::types::TimeRange;
use crate::writer::WriterOptions;
use crate::{Error, Result};

const TRACE_ID: &str = "trace_id";
const SPAN_ID: &str = "span_id";
const START: &str = "start";

/// Column names in schema order.
const COLUMNS: [&str; 22] = [
    TRACE_ID,
    SPAN_ID,
    START,
    "cluster",
    "parent_span_id",
    "trace_state",
    "name",
    "kind",
    "duration",
    "status_code",
    "status_message",
    "service_name",
    "http_method",
    "http_route",
    "http_status_code",
    "flags",
    "scope_name",
    "scope_version",
    "attributes",
    "resource_attributes",
    "events",
    "links",
];

/// False-positive rate of the `trace_id` bloom filters (folded down to the ids written).
const TRACE_ID_BLOOM_FPP: f64 = 0.01;

/// Long strings nothing prunes on: no statistics (they would bloat the footer).
const TEXT: [&str; 5] = ["trace_state", "status_message", "attributes", "events", "links"];

static SPANS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let ty = |name: &str| match name {
        TRACE_ID => DataType::FixedSizeBinary(16),
        SPAN_ID | "parent_span_id" => DataType::FixedSizeBinary(8),
        START => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        "kind" | "status_code" => DataType::Int32,
        "duration" | "http_status_code" => DataType::Int64,
        "flags" => DataType::UInt32,
        "trace_state" | "status_message" | "attributes" | "events" | "links" => DataType::Utf8,
        _ => series::dict_utf8(),
    };
    Arc::new(Schema::new(
        COLUMNS.iter().map(|n| Field::new(*n, ty(n), false)).collect::<Vec<_>>(),
    ))
});

/// The spans table's Arrow schema (also embedded in every file's footer).
pub(crate) fn spans_schema() -> SchemaRef {
    SPANS_SCHEMA.clone()
}

/// The millisecond a nanosecond timestamp falls in.
fn ms_of(ns: TimestampNs) -> i64 {
    ns.div_euclid(1_000_000)
}

/// One write of the spans table: the spans of each (hour, cluster), sorted.
#[derive(Debug)]
pub(crate) struct SpansPlan<'a> {
    files: Vec<Vec<&'a Span>>,
}

impl FilePlan for SpansPlan<'_> {
    fn files(&self) -> usize {
        self.files.len()
    }

    fn encode(&self, i: usize) -> Result<(FileKey, RecordBatch)> {
        let spans = &self.files[i];
        let (first, last) = (spans[0], spans[spans.len() - 1]);
        let min = spans.iter().map(|s| s.start).min().unwrap_or(first.start);
        let max = spans.iter().map(|s| s.start).max().unwrap_or(last.start);
        let key = FileKey::new(Table::Spans, &first.cluster, ms_of(min), ms_of(max), spans.len() as u64)?;
        Ok((key, record_batch(spans)?))
    }
}

/// The spans table.
#[derive(Debug)]
pub(crate) struct Spans;

impl ParquetTable for Spans {
    const KIND: Table = Table::Spans;
    /// Every column: readers return spans differing in any field apart, so compaction keeps
    /// them apart too and collapses exact copies only.
    const IDENTITY: &'static [&'static str] = &COLUMNS;
    type Input = [Span];
    type Plan<'a> = SpansPlan<'a>;
    type Reader = SpanReader;

    fn schema() -> SchemaRef {
        spans_schema()
    }

    fn properties(writer: &WriterOptions) -> Result<WriterProperties> {
        series::table_properties(writer, &[0, 1, 2], |mut b| {
            for name in TEXT {
                b = b.set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::None);
            }
            b.set_column_bloom_filter_enabled(ColumnPath::from(TRACE_ID), true)
                .set_column_bloom_filter_fpp(ColumnPath::from(TRACE_ID), TRACE_ID_BLOOM_FPP)
        })
    }

    /// One file per (UTC hour of `start`, cluster), rows sorted by (trace, span, start).
    fn plan(input: &[Span]) -> Result<SpansPlan<'_>> {
        let mut files: BTreeMap<(Hour, &str), Vec<&Span>> = BTreeMap::new();
        // Every i64 nanosecond (years 1677-2262) is a storable time.
        for s in input {
            files.entry((Hour::of(ms_of(s.start)), &s.cluster)).or_default().push(s);
        }
        let files = files
            .into_values()
            .map(|mut spans| {
                spans.sort_unstable();
                spans
            })
            .collect();
        Ok(SpansPlan { files })
    }

    fn reader(ctx: ReadContext) -> SpanReader {
        SpanReader {
            io: ctx.io,
            catalog: ctx.catalog,
            max_rows: ctx.max_rows,
            blooms: ctx.trace_blooms,
        }
    }
}

/// Builds the batch of one file's spans (sorted).
fn record_batch(spans: &[&Span]) -> Result<RecordBatch> {
    let n = spans.len();
    let fixed = |size: i32, get: fn(&Span) -> &[u8]| -> Result<ArrayRef> {
        let mut b = FixedSizeBinaryBuilder::with_capacity(n, size);
        for s in spans {
            b.append_value(get(s)).map_err(|source| Error::Arrow {
                op: "build id column",
                source,
            })?;
        }
        Ok(Arc::new(b.finish()))
    };
    let dict = |get: fn(&Span) -> &str| -> ArrayRef {
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        for s in spans {
            b.append_value(get(s));
        }
        Arc::new(b.finish())
    };
    let text = |get: fn(&Span) -> &str| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, spans.iter().map(|s| get(s).len()).sum());
        for s in spans {
            b.append_value(get(s));
        }
        Arc::new(b.finish())
    };
    let int32 = |get: fn(&Span) -> i32| -> ArrayRef {
        let mut b = Int32Builder::with_capacity(n);
        spans.iter().for_each(|s| b.append_value(get(s)));
        Arc::new(b.finish())
    };
    let int64 = |get: fn(&Span) -> i64| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(n);
        spans.iter().for_each(|s| b.append_value(get(s)));
        Arc::new(b.finish())
    };
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    spans.iter().for_each(|s| start.append_value(s.start));
    let mut flags = UInt32Builder::with_capacity(n);
    spans.iter().for_each(|s| flags.append_value(s.flags));
    let columns: Vec<ArrayRef> = vec![
        fixed(16, |s| &s.trace_id)?,
        fixed(8, |s| &s.span_id)?,
        Arc::new(start.finish()),
        dict(|s| &s.cluster),
        fixed(8, |s| &s.parent_span_id)?,
        text(|s| &s.trace_state),
        dict(|s| &s.name),
        int32(|s| s.kind),
        int64(|s| s.duration),
        int32(|s| s.status_code),
        text(|s| &s.status_message),
        dict(|s| &s.service_name),
        dict(|s| &s.http_method),
        dict(|s| &s.http_route),
        int64(|s| s.http_status_code),
        Arc::new(flags.finish()),
        dict(|s| &s.scope_name),
        dict(|s| &s.scope_version),
        text(|s| &s.attributes),
        dict(|s| &s.resource_attributes),
        text(|s| &s.events),
        text(|s| &s.links),
    ];
    RecordBatch::try_new(spans_schema(), columns).map_err(|source| Error::Arrow {
        op: "assemble spans batch",
        source,
    })
}

/// Reads the spans table: the Parquet [`TraceSource`].
#[derive(Debug)]
pub(crate) struct SpanReader {
    io: ParquetIo,
    catalog: Arc<Catalog>,
    max_rows: usize,
    blooms: Arc<blooms::BloomCache>,
}

#[async_trait]
impl TraceSource for SpanReader {
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>> {
        if req.start >= req.end {
            return Ok(Vec::new());
        }
        let range = TimeRange {
            start: ms_of(req.start),
            end: ms_of(req.end - 1),
        };
        let files = self
            .catalog
            .files(Table::Spans, range, |c| cluster_may_match(c, &req.matchers));
        let (start, last) = (req.start, req.end - 1);
        let max_rows = req.bound(self.max_rows);
        let mut out = Vec::new();
        if let Some(id) = req.trace_id {
            // A lookup: each file's bloom filters first, so files without the id cost one small
            // read and decode nothing.
            let (io, blooms) = (&self.io, &*self.blooms);
            let mut reads = futures::stream::iter(files)
                .map(|file| async move {
                    let batches = read_trace(io, blooms, &file, id, start, last).await?;
                    Ok::<_, Error>((file, batches))
                })
                .buffer_unordered(self.io.concurrency);
            while let Some((file, batches)) = reads.try_next().await? {
                for batch in &batches {
                    decode_batch(batch, file.path.as_ref(), req, &mut out)?;
                }
            }
        } else {
            // A scan: the narrow columns decide which rows the wide ones are decoded for.
            let io = &self.io;
            let mut reads = futures::stream::iter(files)
                .map(|file| async move {
                    let batches = scan_file(io, &file, req).await?;
                    Ok::<_, Error>((file, batches))
                })
                .buffered(self.io.concurrency);
            while let Some((file, batches)) = reads.try_next().await? {
                for batch in &batches {
                    decode_batch(batch, file.path.as_ref(), req, &mut out)?;
                }
                if out.len() > max_rows {
                    // Copies of a span in several files count once: over the bound only if
                    // still over it without them.
                    sort_spans(&mut out);
                    if out.len() > max_rows {
                        return Err(Error::TooManySamples { limit: max_rows });
                    }
                }
            }
        }
        sort_spans(&mut out);
        if out.len() > max_rows {
            return Err(Error::TooManySamples { limit: max_rows });
        }
        Ok(out)
    }
}

/// The rows of `file` that can hold trace `id` with a start in `[start, last]`: the row groups
/// whose bloom filter may hold the id (all of them when a row group has none), narrowed to the
/// pages `read_plan` keeps. Filters come from `cache` when it holds them.
async fn read_trace(
    io: &ParquetIo,
    cache: &blooms::BloomCache,
    file: &FileMeta,
    id: TraceId,
    start: i64,
    last: i64,
) -> Result<Vec<RecordBatch>> {
    let pq_err = |op| parquet_error(op, file.path.as_ref());
    let mut reader = io.reader(file);
    let meta = io.footer(&mut reader, file, spans_schema()).await?;
    let Some(plan) = read_plan(&meta, start, last, Some(id)) else {
        return Ok(Vec::new());
    };
    let file_id = file.key.id;
    let mut reads = None;
    let mut kept = Vec::with_capacity(plan.row_groups.len());
    for &rg in &plan.row_groups {
        let bloom = match cache.get(file_id, rg) {
            Some(bloom) => bloom,
            None => {
                let blooms = reads.get_or_insert_with(|| {
                    ParquetRecordBatchStreamBuilder::new_with_metadata(io.reader(file), meta.clone())
                });
                let bloom = blooms
                    .get_row_group_column_bloom_filter(rg, 0)
                    .await
                    .map_err(pq_err("read trace_id bloom filter"))?
                    .map(Arc::new);
                let on_disk = meta.metadata().row_group(rg).column(0).bloom_filter_length();
                cache.insert(file_id, rg, bloom.clone(), on_disk.map_or(0, |n| n.max(0) as usize));
                bloom
            }
        };
        if bloom.is_none_or(|b| b.check(&FixedLenByteArray::from(id.to_vec()))) {
            kept.push(rg);
        }
    }
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let plan = if kept.len() == plan.row_groups.len() {
        plan
    } else {
        let rg_rows: Vec<usize> = meta
            .metadata()
            .row_groups()
            .iter()
            .map(|r| r.num_rows() as usize)
            .collect();
        let starts: Vec<usize> = rg_rows
            .iter()
            .scan(0, |at, &n| Some(std::mem::replace(at, *at + n)))
            .collect();
        // Each planned range, cut at row group boundaries, kept where its row group is.
        let mut rows: Vec<std::ops::Range<usize>> = Vec::new();
        for r in plan.file_rows(&rg_rows) {
            let mut at = r.start;
            while at < r.end {
                let rg = starts.partition_point(|&s| s <= at) - 1;
                let end = r.end.min(starts[rg] + rg_rows[rg]);
                if kept.contains(&rg) {
                    rows.push(at..end);
                }
                at = end;
            }
        }
        match ReadPlan::of_rows(&rows, &rg_rows) {
            Some(p) => p,
            None => return Ok(Vec::new()),
        }
    };
    let stream = plan_stream(io.reader(file), meta, plan)
        .build()
        .map_err(pq_err("open stream"))?;
    stream.try_collect().await.map_err(pq_err("decode"))
}

/// The narrow columns a scan decides rows on before the wide ones are decoded.
const NARROW: [&str; 7] = [
    START,
    "cluster",
    "name",
    "kind",
    "duration",
    "status_code",
    "service_name",
];

/// The rows of `file` in `req`'s range whose narrow columns `req` admits (time, duration,
/// matchers, and what its filter can tell from them): Parquet decodes the other columns only
/// for those rows (late materialisation), so a search over an hour decodes the attributes of
/// its candidates, not of every span.
async fn scan_file(io: &ParquetIo, file: &FileMeta, req: &SpanRequest) -> Result<Vec<RecordBatch>> {
    let pq_err = |op| parquet_error(op, file.path.as_ref());
    let mut reader = io.reader(file);
    let meta = io.footer(&mut reader, file, spans_schema()).await?;
    let Some(plan) = read_plan(&meta, req.start, req.end - 1, None) else {
        return Ok(Vec::new());
    };
    let mask = ProjectionMask::columns(meta.parquet_schema(), NARROW);
    let (req, key) = (req.clone(), file.path.to_string());
    let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        narrow_rows(&batch, &req).map_err(|reason| arrow_schema::ArrowError::ParseError(format!("{key}: {reason}")))
    });
    let stream = plan_stream(reader, meta, plan)
        .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
        .build()
        .map_err(pq_err("open stream"))?;
    stream.try_collect().await.map_err(pq_err("decode"))
}

/// A string dictionary column's value of every row.
fn dict_strs<'a>(batch: &'a RecordBatch, name: &str) -> std::result::Result<Vec<&'a str>, String> {
    let d = batch
        .column_by_name(name)
        .ok_or_else(|| format!("{name} is missing"))?
        .as_dictionary_opt::<Int32Type>()
        .ok_or_else(|| format!("{name} is not a string dictionary"))?;
    let values = d
        .values()
        .as_string_opt::<i32>()
        .ok_or_else(|| format!("{name} has no string values"))?;
    Ok(d.keys().values().iter().map(|&k| values.value(k as usize)).collect())
}

/// The [`NARROW`] columns of a batch: what decides whether a row can be admitted before the
/// wide columns are decoded (the scan's row filter and [`decode_batch`] both read them).
struct Narrow<'a> {
    starts: &'a arrow_array::TimestampNanosecondArray,
    durations: &'a arrow_array::Int64Array,
    clusters: Vec<&'a str>,
    names: Vec<&'a str>,
    services: Vec<&'a str>,
    kinds: &'a arrow_array::Int32Array,
    statuses: &'a arrow_array::Int32Array,
}

impl<'a> Narrow<'a> {
    fn of(batch: &'a RecordBatch) -> std::result::Result<Self, String> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .filter(|c| c.null_count() == 0)
                .ok_or_else(|| format!("{name} is missing or has nulls"))
        };
        let int = |name: &str| {
            column(name)?
                .as_primitive_opt::<Int32Type>()
                .ok_or_else(|| format!("{name} is not Int32"))
        };
        let dict = |name: &str| {
            column(name)?;
            dict_strs(batch, name)
        };
        Ok(Self {
            starts: column(START)?
                .as_primitive_opt::<TimestampNanosecondType>()
                .ok_or("start is not a nanosecond timestamp")?,
            durations: column("duration")?
                .as_primitive_opt::<arrow_array::types::Int64Type>()
                .ok_or("duration is not Int64")?,
            clusters: dict("cluster")?,
            names: dict("name")?,
            services: dict("service_name")?,
            kinds: int("kind")?,
            statuses: int("status_code")?,
        })
    }

    /// Row `row` is in `req`'s range, long enough, matched by its matchers and possibly by its
    /// filter (which the wide columns then decide).
    fn may_admit(&self, row: usize, req: &SpanRequest) -> bool {
        let head = SpanHead {
            name: self.names[row],
            service_name: self.services[row],
            kind: self.kinds.value(row),
            status_code: self.statuses.value(row),
            duration: self.durations.value(row),
        };
        (req.start..req.end).contains(&self.starts.value(row))
            && head.duration >= req.min_duration
            && req.matchers.iter().all(|m| match m.name.as_str() {
                crate::types::CLUSTER => m.matches(self.clusters[row]),
                "service_name" => m.matches(self.services[row]),
                _ => false,
            })
            && req.filter.as_ref().is_none_or(|f| f.0.may_match(&head))
    }
}

/// Which rows of `batch` (the [`NARROW`] columns) `req` can admit.
fn narrow_rows(batch: &RecordBatch, req: &SpanRequest) -> std::result::Result<BooleanArray, String> {
    let narrow = Narrow::of(batch)?;
    Ok((0..batch.num_rows())
        .map(|row| Some(narrow.may_admit(row, req)))
        .collect())
}

/// Keeps the row groups and pages whose `start` overlaps `[start, last]` and, for a lookup,
/// whose `trace_id` bounds hold the id.
fn read_plan(meta: &ArrowReaderMetadata, start: i64, last: i64, trace_id: Option<TraceId>) -> Option<ReadPlan> {
    let checks: Vec<ColumnCheck<'_>> = [ColumnCheck::overlaps_ns(meta, START, start, last)]
        .into_iter()
        .chain(trace_id.map(|id| {
            ColumnCheck::new(
                meta,
                TRACE_ID,
                Box::new(move |mins: &ArrayRef, maxes: &ArrayRef, i| id_may_be_within(mins, maxes, i, &id)),
            )
        }))
        .flatten()
        .collect();
    plan::plan(meta, &checks)
}

/// Can a chunk whose `trace_id` statistics are `[mins[i], maxes[i]]` hold `id`? Missing
/// statistics keep the chunk.
fn id_may_be_within(mins: &ArrayRef, maxes: &ArrayRef, i: usize, id: &TraceId) -> bool {
    let bound = |a: &ArrayRef| -> Option<Vec<u8>> {
        let a = a.as_fixed_size_binary_opt()?;
        a.is_valid(i).then(|| a.value(i).to_vec())
    };
    match (bound(mins), bound(maxes)) {
        (Some(lo), Some(hi)) => lo.as_slice() <= id.as_slice() && id.as_slice() <= hi.as_slice(),
        _ => true,
    }
}

/// Appends the rows of `batch` that `req` admits.
fn decode_batch(batch: &RecordBatch, key: &str, req: &SpanRequest, out: &mut Vec<Span>) -> Result<()> {
    let corrupt = |reason: String| Error::Corrupt {
        key: key.to_string(),
        reason,
    };
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .filter(|c| c.null_count() == 0)
            .ok_or_else(|| corrupt(format!("spans column {name} is missing or has nulls")))
    };
    let fixed = |name: &str| -> Result<&FixedSizeBinaryArray> {
        column(name)?
            .as_fixed_size_binary_opt()
            .ok_or_else(|| corrupt(format!("spans column {name} is not fixed-size binary")))
    };
    let dict = |name: &str| -> Result<Vec<&str>> {
        column(name)?;
        dict_strs(batch, name).map_err(|e| corrupt(format!("spans column {e}")))
    };
    let text = |name: &str| {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| corrupt(format!("spans column {name} is not a string column")))
    };
    let int64 = |name: &str| {
        column(name)?
            .as_primitive_opt::<arrow_array::types::Int64Type>()
            .ok_or_else(|| corrupt(format!("spans column {name} is not Int64")))
    };
    let (trace_ids, span_ids, parents) = (fixed(TRACE_ID)?, fixed(SPAN_ID)?, fixed("parent_span_id")?);
    let narrow = Narrow::of(batch).map_err(|e| corrupt(format!("spans column {e}")))?;
    // Rows the cheap columns admit, before the wide ones are decoded.
    let admitted: Vec<usize> = (0..batch.num_rows())
        .filter(|&row| req.trace_id.is_none_or(|t| t.as_slice() == trace_ids.value(row)) && narrow.may_admit(row, req))
        .collect();
    if admitted.is_empty() {
        return Ok(());
    }
    let Narrow {
        starts,
        durations,
        clusters,
        names,
        services,
        kinds,
        statuses,
    } = narrow;
    let (methods, routes) = (dict("http_method")?, dict("http_route")?);
    let (scope_names, scope_versions, resources) = (
        dict("scope_name")?,
        dict("scope_version")?,
        dict("resource_attributes")?,
    );
    let (states, messages, attributes, events, links) = (
        text("trace_state")?,
        text("status_message")?,
        text("attributes")?,
        text("events")?,
        text("links")?,
    );
    let http_statuses = int64("http_status_code")?;
    let flags = column("flags")?
        .as_primitive_opt::<arrow_array::types::UInt32Type>()
        .ok_or_else(|| corrupt("spans column flags is not UInt32".into()))?;
    for row in admitted {
        let span = Span {
            trace_id: trace_ids
                .value(row)
                .try_into()
                .map_err(|_| corrupt("a trace_id is not 16 bytes".into()))?,
            span_id: span_ids
                .value(row)
                .try_into()
                .map_err(|_| corrupt("a span_id is not 8 bytes".into()))?,
            start: starts.value(row),
            cluster: clusters[row].to_string(),
            parent_span_id: parents
                .value(row)
                .try_into()
                .map_err(|_| corrupt("a parent_span_id is not 8 bytes".into()))?,
            trace_state: states.value(row).to_string(),
            name: names[row].to_string(),
            kind: kinds.value(row),
            duration: durations.value(row),
            status_code: statuses.value(row),
            status_message: messages.value(row).to_string(),
            service_name: services[row].to_string(),
            http_method: methods[row].to_string(),
            http_route: routes[row].to_string(),
            http_status_code: http_statuses.value(row),
            flags: flags.value(row),
            scope_name: scope_names[row].to_string(),
            scope_version: scope_versions[row].to_string(),
            attributes: attributes.value(row).to_string(),
            resource_attributes: resources[row].to_string(),
            events: events.value(row).to_string(),
            links: links.value(row).to_string(),
        };
        if req.filter.as_ref().is_none_or(|f| f.0.matches(&span)) {
            out.push(span);
        }
    }
    Ok(())
}

pub(crate) mod blooms;

#[cfg(test)]
mod tests;
