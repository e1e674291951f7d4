//! One metrics file's part of a select: its series table (built once, cached), the rows of the
//! matching runs the page index keeps, and their `timestamp` and `value` columns decoded (in
//! parts, in parallel, for a big read).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use futures::TryStreamExt;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::edges::{self, EdgeSamples};
use super::listing::FileLabels;
use super::series_table::{SeriesTable, TableBuilder};
use super::{MetricsCache, PART_ROWS};
use crate::catalog::FileMeta;
use crate::parquet_io::plan::{self, ColumnCheck, ReadPlan};
use crate::parquet_io::{AbortOnDrop, BATCH_ROWS, ObjectReader, load_footer, parquet_error, plan_stream};
use crate::schema::{self, col};
use crate::table::series::Keyed;
use crate::types::{Labels, Matcher, Sample, SeriesId, SeriesIdSet, TimeRange};
use crate::{Error, Result};

/// One select, shared by the per-file reads.
#[derive(Debug)]
pub(super) struct Query {
    pub(super) matchers: Vec<Matcher>,
    pub(super) range: TimeRange,
    pub(super) only: Option<Arc<SeriesIdSet>>,
    pub(super) samples: AtomicUsize,
    pub(super) max_samples: usize,
    /// Most parts one file's read is cut into.
    pub(super) max_parts: usize,
}

impl Query {
    /// Every sample of the series `matchers` accept, whatever their time, without a limit: a
    /// whole file read to be kept (an edge, a summary).
    pub(super) fn whole_file(matchers: Vec<Matcher>, max_parts: usize) -> Arc<Self> {
        Arc::new(Self {
            matchers,
            range: TimeRange::ALL,
            only: None,
            samples: AtomicUsize::new(0),
            max_samples: usize::MAX,
            max_parts,
        })
    }

    /// Counts `added` samples against the limit.
    pub(super) fn count(&self, added: usize) -> Result<()> {
        let total = self.samples.fetch_add(added, Ordering::Relaxed) + added;
        if total > self.max_samples {
            return Err(Error::TooManySamples {
                limit: self.max_samples,
            });
        }
        Ok(())
    }
}

/// One series found in a file (a row of its table), with its samples in range.
#[derive(Debug)]
pub(super) struct FileSeries {
    pub(super) table: Arc<SeriesTable>,
    pub(super) id: u32,
    pub(super) samples: Vec<Sample>,
}

impl Keyed for FileSeries {
    fn id(&self) -> SeriesId {
        self.table.series[self.id as usize].id
    }
    fn labels(&self) -> &Labels {
        &self.table.series[self.id as usize].labels
    }
}

/// What one file contributed, with the counter tests and tracing look at.
#[derive(Debug, Default)]
pub(in crate::table::metrics) struct Scanned {
    pub(super) series: Vec<FileSeries>,
    /// Rows read (after matching and pruning).
    pub(super) planned_rows: usize,
}

/// `file`'s series table: from the cache, or built from the file's label and timestamp columns
/// (every row) and cached.
pub(super) async fn file_table(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetricsCache>,
    file: Arc<FileMeta>,
) -> Result<Arc<SeriesTable>> {
    let key = file.path.as_ref();
    if let Some(t) = cache.tables.get(key) {
        return Ok(t);
    }
    let mut reader = ObjectReader::new(store, &file);
    let meta = load_footer(&mut reader, Some(&cache.footers), &file, schema::metrics_schema()).await?;
    let mask = ProjectionMask::roots(
        meta.parquet_schema(),
        [col::CLUSTER, col::METRIC, col::LABELS, col::TIMESTAMP],
    );
    let pq_err = |op| parquet_error(op, key);
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq_err("open stream"))?;
    let mut builder = TableBuilder::new(key, &cache.interner);
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        builder.push(&batch)?;
    }
    let table = Arc::new(builder.finish());
    tracing::debug!(
        key,
        series = table.series.len(),
        runs = table.runs.len(),
        parsed = table.parsed,
        "series table built"
    );
    cache.tables.insert(key, table.clone());
    Ok(table)
}

/// `file`'s label listing: from the cache, or derived from its series table and cached.
pub(super) async fn file_labels(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetricsCache>,
    file: Arc<FileMeta>,
) -> Result<Arc<FileLabels>> {
    let key = file.path.as_ref();
    if let Some(l) = cache.labels.get(key) {
        return Ok(l);
    }
    let labels = Arc::new(file_table(store, cache.clone(), file.clone()).await?.listing());
    cache.labels.insert(key, labels.clone());
    Ok(labels)
}

/// Rows `start..end` of the file, all of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start: usize,
    end: usize,
    series: u32,
}

/// The samples in range of the series `query` matches in `file`.
pub(super) async fn scan_file(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetricsCache>,
    file: Arc<FileMeta>,
    query: Arc<Query>,
) -> Result<Scanned> {
    let table = file_table(store.clone(), cache.clone(), file.clone()).await?;
    let accepted = table.accepted(&query.matchers, query.only.as_deref());
    let Some(key) = edges::key(&file, &accepted, &query) else {
        return scan_rows(store, cache, file, table, &accepted, query).await;
    };
    if let Some(hit) = cache.edges.get(&key) {
        return hit.select(&query);
    }
    if !edges::fits(&cache.edges, &table, &accepted) {
        return scan_rows(store, cache, file, table, &accepted, query).await;
    }
    // The rows of `accepted`: no matcher is needed.
    let whole = Query::whole_file(Vec::new(), query.max_parts);
    let read = scan_rows(store, cache.clone(), file, table.clone(), &accepted, whole).await?;
    let entry = Arc::new(EdgeSamples::new(table, read));
    cache.edges.insert(&key, entry.clone());
    entry.select(&query)
}

/// The samples in range of the `accepted` series of `file` (whose series table is `table`).
async fn scan_rows(
    store: Arc<dyn ObjectStore>,
    cache: Arc<MetricsCache>,
    file: Arc<FileMeta>,
    table: Arc<SeriesTable>,
    accepted: &[u32],
    query: Arc<Query>,
) -> Result<Scanned> {
    let mut reader = ObjectReader::new(store, &file);
    let meta = load_footer(&mut reader, Some(&cache.footers), &file, schema::metrics_schema()).await?;
    // Pages whose timestamps miss the range are skipped even inside a run.
    let time = ColumnCheck::overlaps_ms(&meta, schema::TIMESTAMP, query.range);
    let Some(plan) = plan::plan(&meta, time.as_slice()) else {
        return Ok(Scanned::default());
    };
    let rg_rows: Vec<usize> = meta
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect();
    let planned = plan.file_rows(&rg_rows);
    let mut segments = Vec::new();
    let mut next = 0;
    for run in table.runs_in(accepted, &query.range) {
        let rows = run.rows();
        while next < planned.len() && planned[next].end <= rows.start {
            next += 1;
        }
        for p in planned[next..].iter().take_while(|p| p.start < rows.end) {
            let (start, end) = (rows.start.max(p.start), rows.end.min(p.end));
            if start < end {
                segments.push(Segment {
                    start,
                    end,
                    series: run.series,
                });
            }
        }
    }
    let rows: usize = segments.iter().map(|s| s.end - s.start).sum();
    if rows == 0 {
        return Ok(Scanned::default());
    }
    // A short query reads few files: cutting a big read into parts lets every core decode.
    let parts = (rows / PART_ROWS).clamp(1, query.max_parts);
    let tasks: Vec<_> = cut(segments, rows.div_ceil(parts))
        .into_iter()
        .map(|part| {
            let (reader, meta, query, rg_rows) = (reader.clone(), meta.clone(), query.clone(), rg_rows.clone());
            AbortOnDrop(tokio::spawn(read_samples(reader, meta, rg_rows, part, query)))
        })
        .collect();
    let mut series: Vec<FileSeries> = Vec::new();
    for part in futures::future::try_join_all(tasks).await? {
        let mut part = part.into_iter();
        // Parts are consecutive in row order: only a series cut at a part boundary continues
        // into the next part.
        if let (Some(last), Some((id, _))) = (series.last_mut(), part.as_slice().first())
            && last.id == *id
        {
            last.samples.extend(part.next().expect("first").1);
        }
        series.extend(part.map(|(id, samples)| FileSeries {
            table: table.clone(),
            id,
            samples,
        }));
    }
    tracing::trace!(key = file.path.as_ref(), rows, series = series.len(), "scanned");
    Ok(Scanned {
        series,
        planned_rows: rows,
    })
}

/// `segments` (in row order) cut into consecutive lists of at most `target` rows each.
fn cut(segments: Vec<Segment>, target: usize) -> Vec<Vec<Segment>> {
    let mut parts: Vec<Vec<Segment>> = vec![Vec::new()];
    let mut filled = 0;
    for mut s in segments {
        while s.start < s.end {
            if filled == target {
                parts.push(Vec::new());
                filled = 0;
            }
            let take = (target - filled).min(s.end - s.start);
            parts.last_mut().expect("one part").push(Segment {
                end: s.start + take,
                ..s
            });
            s.start += take;
            filled += take;
        }
    }
    parts
}

/// Decodes the `timestamp` and `value` columns of `segments` (consecutive, in row order); returns
/// each series' samples in range, in row order (a series with several runs appears once per run).
async fn read_samples(
    reader: ObjectReader,
    meta: ArrowReaderMetadata,
    rg_rows: Vec<usize>,
    segments: Vec<Segment>,
    query: Arc<Query>,
) -> Result<Vec<(u32, Vec<Sample>)>> {
    let path = reader.path().clone();
    let key = path.as_ref();
    let corrupt = |reason: &str| Error::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let rows: Vec<Range<usize>> = segments.iter().fold(Vec::new(), |mut out, s| {
        plan::push_range(&mut out, s.start..s.end);
        out
    });
    let Some(plan) = ReadPlan::of_rows(&rows, &rg_rows) else {
        return Ok(Vec::new());
    };
    let pq_err = |op| parquet_error(op, key);
    let mask = ProjectionMask::roots(meta.parquet_schema(), [col::TIMESTAMP, col::VALUE]);
    let mut stream = plan_stream(reader, meta, plan)
        .with_projection(mask)
        .build()
        .map_err(pq_err("open stream"))?;
    let range = query.range;
    let mut out: Vec<(u32, Vec<Sample>)> = Vec::new();
    // The segment the next row belongs to, and how many of its rows were read.
    let (mut seg, mut done) = (0usize, 0usize);
    while let Some(batch) = stream.try_next().await.map_err(pq_err("decode"))? {
        let ts = batch.column(0).as_primitive_opt::<TimestampMillisecondType>();
        let vs = batch.column(1).as_primitive_opt::<Float64Type>();
        let (ts, vs) = match (ts, vs) {
            (Some(t), Some(v)) if t.null_count() == 0 && v.null_count() == 0 => (t.values(), v.values()),
            _ => return Err(corrupt("timestamp/value columns have unexpected types or nulls")),
        };
        let (n, mut row) = (batch.num_rows(), 0);
        let mut added = 0;
        while row < n {
            let s = segments.get(seg).ok_or_else(|| corrupt("more rows than planned"))?;
            let take = (s.end - s.start - done).min(n - row);
            let (ts, vs) = (&ts[row..row + take], &vs[row..row + take]);
            if !matches!(out.last(), Some((id, _)) if *id == s.series) {
                out.push((s.series, Vec::with_capacity(s.end - s.start - done)));
            }
            let samples = &mut out.last_mut().expect("pushed").1;
            let before = samples.len();
            if ts.is_sorted() {
                let lo = ts.partition_point(|&t| t < range.start);
                let hi = ts.partition_point(|&t| t <= range.end).max(lo);
                samples.extend(ts[lo..hi].iter().zip(&vs[lo..hi]).map(|(&t, &v)| Sample::new(t, v)));
            } else {
                // Not our writer's order; every row still counts.
                let rows = ts.iter().zip(vs).filter(|(t, _)| range.contains(**t));
                samples.extend(rows.map(|(&t, &v)| Sample::new(t, v)));
            }
            added += samples.len() - before;
            (row, done) = (row + take, done + take);
            if done == s.end - s.start {
                (seg, done) = (seg + 1, 0);
            }
        }
        if added > 0 {
            query.count(added)?;
        }
    }
    // A series whose rows in range were all outside it adds nothing.
    out.retain(|(_, samples)| !samples.is_empty());
    Ok(out)
}
