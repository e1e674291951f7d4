//! The row filters of a logs scan (stream matchers and time; literal line hints) and the
//! building of records from the rows that pass, per dictionary value rather than per row.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampNanosecondType, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_buffer::BooleanBufferBuilder;
use arrow_schema::ArrowError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowPredicate;
use regex::bytes::Regex;
use std::sync::Arc;

use super::super::schema::{self, col};
use super::{Query, TopK};
use crate::read::LineHint;
use crate::signals::LogRecord;
use crate::types::{self, Labels, Matcher};
use crate::{Error, Result};

/// Columns a selected record is built from (all but the two derived ones).
pub(super) const RECORD_COLUMNS: [usize; 15] = [
    col::CLUSTER,
    col::LABELS,
    col::TIMESTAMP,
    col::OBSERVED_TIMESTAMP,
    col::SEVERITY_NUMBER,
    col::SEVERITY_TEXT,
    col::BODY,
    col::TRACE_ID,
    col::SPAN_ID,
    col::FLAGS,
    col::ATTRIBUTES,
    col::RESOURCE_ATTRIBUTES,
    col::SCOPE_NAME,
    col::SCOPE_VERSION,
    col::EVENT_NAME,
];

/// Compiled literal line hints. `None` from [`Hints::compile`]: nothing can match.
#[derive(Debug, Default)]
pub(super) struct Hints {
    /// (needle, wanted): `wanted` rows contain the needle, the others must not.
    pub(super) needles: Vec<(Regex, bool)>,
}

impl Hints {
    pub(super) fn compile(hints: &[LineHint]) -> Option<Self> {
        let mut needles = Vec::new();
        for h in hints {
            let (s, wanted) = match h {
                LineHint::Contains(s) => (s, true),
                LineHint::NotContains(s) => (s, false),
            };
            if s.is_empty() {
                // Every line contains "": `|= ""` keeps all, `!= ""` none.
                if wanted {
                    continue;
                }
                return None;
            }
            // A hint may be ignored (the engine filters again): a needle too large for the regex
            // size limit is simply not pushed down.
            if let Ok(re) = Regex::new(&regex::escape(s)) {
                needles.push((re, wanted));
            }
        }
        Some(Self { needles })
    }
}

/// Marks the rows of `body` that contain the needle of `re` (a literal), searching the array's
/// value buffer in one pass rather than row by row: the search runs at `memmem` speed across
/// rows and only hits are mapped back to rows. A hit that spans two rows is no hit.
pub(super) fn contains_rows(body: &StringArray, re: &Regex, hits: &mut [bool]) {
    let offsets = body.value_offsets();
    let data = body.value_data();
    let n = body.len();
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.get(n)) else {
        return;
    };
    let hay = &data[..last as usize];
    let mut pos = first as usize;
    let mut row = 0usize;
    while pos < hay.len() {
        let Some(m) = re.find_at(hay, pos) else { break };
        while row < n && (offsets[row + 1] as usize) <= m.start() {
            row += 1;
        }
        if row >= n {
            break;
        }
        let row_end = offsets[row + 1] as usize;
        if m.end() <= row_end {
            hits[row] = true;
        }
        // Any later hit starting in this row also ends past it: go on with the next row.
        pos = row_end.max(m.start() + 1);
    }
}

pub(super) fn corrupt(key: &str, reason: String) -> Error {
    Error::Corrupt {
        key: key.to_string(),
        reason,
    }
}

/// A dictionary column of one batch: per-row keys (checked in range) and the shared values.
pub(super) struct Dict<'b> {
    pub(super) keys: &'b [i32],
    pub(super) values: &'b StringArray,
}

impl<'b> Dict<'b> {
    pub(super) fn value(&self, key: i32) -> &'b str {
        self.values.value(key as usize)
    }
}

pub(super) fn dict(batch: &RecordBatch, i: usize) -> std::result::Result<Dict<'_>, String> {
    let d = batch
        .column(i)
        .as_dictionary_opt::<Int32Type>()
        .filter(|d| d.null_count() == 0)
        .ok_or_else(|| {
            format!(
                "column {} is not a non-null string dictionary",
                batch.schema().field(i).name()
            )
        })?;
    let values = d.values().as_string_opt::<i32>().ok_or_else(|| {
        format!(
            "column {} has non-string dictionary values",
            batch.schema().field(i).name()
        )
    })?;
    let keys = d.keys().values();
    let len = values.len();
    if keys.iter().any(|&k| k < 0 || k as usize >= len) {
        return Err(format!(
            "column {} has dictionary keys out of range",
            batch.schema().field(i).name()
        ));
    }
    Ok(Dict { keys, values })
}

/// Is `values` the same dictionary as `cached` (same buffers)? Batches of one column chunk
/// share it, so per-value results carry over between them.
pub(super) fn same_values(cached: &Option<StringArray>, values: &StringArray) -> bool {
    cached.as_ref().is_some_and(|v| {
        v.len() == values.len() && v.offsets().ptr_eq(values.offsets()) && v.values().ptr_eq(values.values())
    })
}

/// One verdict per dictionary value, valid while batches share the dictionary.
#[derive(Debug, Default)]
pub(super) struct DictFlags {
    values: Option<StringArray>,
    flags: Vec<Option<bool>>,
}

impl DictFlags {
    fn sync(&mut self, values: &StringArray) {
        if !same_values(&self.values, values) {
            self.values = Some(values.clone());
            self.flags.clear();
            self.flags.resize(values.len(), None);
        }
    }

    fn get(
        &mut self,
        key: i32,
        decide: impl FnOnce() -> std::result::Result<bool, String>,
    ) -> std::result::Result<bool, String> {
        let slot = &mut self.flags[key as usize];
        if let Some(f) = *slot {
            return Ok(f);
        }
        let f = decide()?;
        *slot = Some(f);
        Ok(f)
    }
}

/// Row filter 1: stream matchers and the time window, on (`cluster`, `labels`, `timestamp`).
/// `cluster` matchers run once per `cluster` dictionary value and the others once per `labels`
/// value (stream labels are `labels` plus `cluster`, so the two sets are independent).
pub(super) struct StreamFilter {
    pub(super) projection: ProjectionMask,
    pub(super) query: Arc<Query>,
    pub(super) key: String,
    pub(super) clusters: DictFlags,
    pub(super) labels: DictFlags,
}

impl StreamFilter {
    fn mask(&mut self, batch: &RecordBatch) -> std::result::Result<BooleanArray, String> {
        let cluster = dict(batch, 0)?;
        let labels = dict(batch, 1)?;
        let ts = batch
            .column(2)
            .as_primitive_opt::<TimestampNanosecondType>()
            .filter(|t| t.null_count() == 0)
            .ok_or("timestamp is not a non-null nanosecond timestamp")?
            .values();
        self.clusters.sync(cluster.values);
        self.labels.sync(labels.values);
        let (lo, hi) = self.query.window();
        let q = &self.query;
        let mut out = BooleanBufferBuilder::new(batch.num_rows());
        let mut prev: Option<((i32, i32), bool)> = None;
        for row in 0..batch.num_rows() {
            let pair = (cluster.keys[row], labels.keys[row]);
            let stream_ok = match prev {
                Some((p, ok)) if p == pair => ok,
                _ => {
                    let ok = self.clusters.get(pair.0, || {
                        Ok(q.cluster_matchers.iter().all(|m| m.matches(cluster.value(pair.0))))
                    })? && self.labels.get(pair.1, || {
                        if q.label_matchers.is_empty() {
                            return Ok(true);
                        }
                        let text = labels.value(pair.1);
                        let parsed =
                            schema::parse_stream_labels(text, "").map_err(|e| format!("labels {text:?}: {e}"))?;
                        Ok(q.label_matchers.iter().all(|m| m.matches_labels(&parsed)))
                    })?;
                    prev = Some((pair, ok));
                    ok
                }
            };
            let t = ts[row];
            out.append(stream_ok && lo <= t && t <= hi);
        }
        Ok(BooleanArray::new(out.finish(), None))
    }
}

impl ArrowPredicate for StreamFilter {
    fn projection(&self) -> &ProjectionMask {
        &self.projection
    }

    fn evaluate(&mut self, batch: RecordBatch) -> std::result::Result<BooleanArray, ArrowError> {
        self.mask(&batch)
            .map_err(|reason| ArrowError::ExternalError(Box::new(corrupt(&self.key, reason))))
    }
}

/// Row filter 2: the literal line hints, on `body` (only rows that passed filter 1 are decoded).
pub(super) struct HintFilter {
    pub(super) projection: ProjectionMask,
    pub(super) query: Arc<Query>,
}

impl ArrowPredicate for HintFilter {
    fn projection(&self) -> &ProjectionMask {
        &self.projection
    }

    fn evaluate(&mut self, batch: RecordBatch) -> std::result::Result<BooleanArray, ArrowError> {
        let n = batch.num_rows();
        let body = batch
            .column(0)
            .as_string_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError("body is not a string column".into()))?;
        let mut keep = vec![true; n];
        let mut hits = vec![false; n];
        for (re, wanted) in &self.query.hints.needles {
            hits.fill(false);
            contains_rows(body, re, &mut hits);
            for (k, h) in keep.iter_mut().zip(&hits) {
                *k &= *h == *wanted;
            }
        }
        for (row, k) in keep.iter_mut().enumerate() {
            *k &= body.is_valid(row);
        }
        Ok(BooleanArray::from(keep))
    }
}

/// Stream labels per (`cluster`, `labels`) key pair, valid while batches share dictionaries.
#[derive(Debug, Default)]
pub(super) struct StreamCache {
    clusters: Option<StringArray>,
    labels: Option<StringArray>,
    pairs: HashMap<(i32, i32), Option<Arc<Labels>>>,
}

impl StreamCache {
    pub(super) fn sync(&mut self, clusters: &StringArray, labels: &StringArray) {
        if !same_values(&self.clusters, clusters) || !same_values(&self.labels, labels) {
            self.clusters = Some(clusters.clone());
            self.labels = Some(labels.clone());
            self.pairs.clear();
        }
    }

    /// The stream's labels when every matcher accepts them.
    pub(super) fn resolve(
        &mut self,
        pair: (i32, i32),
        cluster: &Dict<'_>,
        labels: &Dict<'_>,
        matchers: &[Matcher],
        key: &str,
    ) -> Result<Option<&Arc<Labels>>> {
        let found = match self.pairs.entry(pair) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let text = labels.value(pair.1);
                let parsed = schema::parse_stream_labels(text, cluster.value(pair.0))
                    .map_err(|err| corrupt(key, format!("labels {text:?}: {err}")))?;
                e.insert(types::matches_all(matchers, &parsed).then(|| Arc::new(parsed)))
            }
        };
        Ok(found.as_ref())
    }
}

/// Builds the records of one filtered batch (in [`RECORD_COLUMNS`] order) into `top`, skipping
/// rows the limit cut-off already rules out; returns how many were built.
pub(super) fn build_records(
    batch: &RecordBatch,
    query: &Query,
    streams: &mut StreamCache,
    top: &mut TopK,
    key: &str,
) -> Result<usize> {
    let bad = |r: String| corrupt(key, r);
    let d = |i: usize| dict(batch, i).map_err(bad);
    let (cluster, labels) = (d(0)?, d(1)?);
    let (severity_text, scope_name, scope_version, event_name) = (d(5)?, d(12)?, d(13)?, d(14)?);
    let text = |i: usize, nullable: bool| -> Result<&StringArray> {
        batch
            .column(i)
            .as_string_opt::<i32>()
            .filter(|a| nullable || a.null_count() == 0)
            .ok_or_else(|| {
                bad(format!(
                    "column {} is not a string column",
                    batch.schema().field(i).name()
                ))
            })
    };
    let (body, trace_id, span_id) = (text(6, false)?, text(7, true)?, text(8, true)?);
    let (attributes, resource_attributes) = (text(10, false)?, text(11, false)?);
    let ts_col = |a: &ArrayRef| a.as_primitive_opt::<TimestampNanosecondType>().cloned();
    let (Some(ts), Some(observed), Some(severity_number), Some(flags)) = (
        ts_col(batch.column(2)),
        ts_col(batch.column(3)),
        batch.column(4).as_primitive_opt::<Int32Type>(),
        batch.column(9).as_primitive_opt::<UInt32Type>(),
    ) else {
        return Err(bad("numeric columns have unexpected types".into()));
    };
    if ts.null_count() + severity_number.null_count() + flags.null_count() > 0 {
        return Err(bad("non-nullable numeric columns hold nulls".into()));
    }
    streams.sync(cluster.values, labels.values);
    let opt_text = |a: &StringArray, row: usize| {
        if a.is_valid(row) {
            a.value(row).to_string()
        } else {
            String::new()
        }
    };
    let mut built = 0;
    // A resource's records sit together: consecutive equal texts share one copy.
    let mut resource: Arc<str> = Arc::from("");
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        if !top.admits(t) {
            continue;
        }
        let pair = (cluster.keys[row], labels.keys[row]);
        // The row filter accepted the stream already; resolving again (once per pair) builds
        // the label set and keeps this function correct on its own.
        let Some(stream) = streams.resolve(pair, &cluster, &labels, &query.matchers, key)? else {
            continue;
        };
        top.push(LogRecord {
            labels: stream.clone(),
            timestamp: t,
            observed_timestamp: if observed.is_valid(row) { observed.value(row) } else { 0 },
            severity_number: severity_number.value(row),
            severity_text: severity_text.value(severity_text.keys[row]).to_string(),
            body: body.value(row).to_string(),
            trace_id: opt_text(trace_id, row),
            span_id: opt_text(span_id, row),
            flags: flags.value(row),
            attributes: attributes.value(row).to_string(),
            resource_attributes: {
                let text = resource_attributes.value(row);
                if *resource != *text {
                    resource = Arc::from(text);
                }
                resource.clone()
            },
            scope_name: scope_name.value(scope_name.keys[row]).to_string(),
            scope_version: scope_version.value(scope_version.keys[row]).to_string(),
            event_name: event_name.value(event_name.keys[row]).to_string(),
        });
        built += 1;
    }
    Ok(built)
}
