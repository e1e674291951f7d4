//! The internal read API: how a query process reads an ingester's head (issue "past one
//! machine"). One contract, two ends that share this module: the ingester answers a [`Call`]
//! with [`answer`] over its head; the querier encodes calls and decodes answers with
//! [`Call::to_json`] and [`decode`] (its client lives in `query::remote`). Both ends speak
//! through the [`Source`] and [`LogSource`] contracts, so a remote head is just one more source
//! in the querier's merge, exactly as the local head is in all-in-one.
//!
//! # Wire format (contract)
//! - **Request**: `POST /internal/v1/read` with a JSON [`Call`], e.g.
//!   `{"method":"select","matchers":[["__name__","=","up"]],"start":0,"end":60000,"only":null}`.
//!   Matchers are `[name, op, value]` with `op` one of `=`, `!=`, `=~`, `!~`; metric times are
//!   milliseconds (closed range), log times nanoseconds (`start` included, `end` excluded).
//!   The bearer token (when `auth.required`) must be one whose read scope is `*`.
//! - **Answers that carry samples or log records** (`select`, `select_logs`) are an Arrow IPC
//!   *stream* (`application/vnd.apache.arrow.stream`) of batches of at most
//!   [`BATCH_ROWS`] rows: columnar, binary-exact (a staleness marker keeps its NaN bits), and
//!   decodable batch by batch. Float series: one row per series, columns `names` and `values`
//!   (`List<Utf8>`, the label pairs), `timestamps` (`List<Int64>`) and `samples`
//!   (`List<Float64>`). Log records: one row per record, `names`/`values` for the stream labels
//!   and one column per other [`LogRecord`] field, named as the field.
//! - **Every other answer** (listings, counts, series sizes, metadata, native histograms,
//!   exemplars) is JSON (`application/json`); floats inside histograms and exemplars travel as
//!   their IEEE-754 bits (`u64`), because JSON has no NaN and no infinities.
//! - **Errors**: a non-2xx status with a JSON [`WireError`]: `kind` `too_many_samples` (with
//!   `limit`: the querier fails the query with the same 422 all-in-one gives), `bad_request`
//!   (400), `unauthorized` (401/403) or `internal` (500).
//!
//! Adding a read method to the contracts: one [`Call`] variant, one arm in [`answer`], one
//! method in the querier's client.

use std::io::Cursor;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, Int64Builder, ListBuilder, StringBuilder, UInt32Builder};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::read::{Direction, LineHint, LogRequest, LogSource, SelectRequest, SeriesSize, Source};
use crate::signals::{
    BucketSpan, Exemplar, ExemplarSeries, HistogramSample, HistogramSeries, LogRecord, MetricMetadata, ResetHint,
};
use crate::types::{Label, Labels, MatchOp, Matcher, Sample, Series, SeriesId, SeriesIdSet, TimeRange};
use crate::{Error, Result};

mod client;
pub use client::{RemoteSource, Transport};

/// The path every call is posted to.
pub const PATH: &str = "/internal/v1/read";
/// Content type of the Arrow IPC stream answers.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Content type of the JSON answers and errors.
pub const JSON: &str = "application/json";
/// Most rows (series or log records) in one Arrow batch of an answer.
pub const BATCH_ROWS: usize = 4096;

/// One matcher on the wire: `[name, op, value]`.
pub type WireMatcher = (String, String, String);

/// One call of the internal read API: a method of [`Source`] or [`LogSource`] with its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Call {
    /// [`Source::select`].
    Select(WireSelect),
    /// [`Source::series`].
    Series(WireSelect),
    /// [`Source::count_samples`].
    CountSamples {
        /// The request.
        #[serde(flatten)]
        select: WireSelect,
        /// Counting may stop past it.
        limit: usize,
    },
    /// [`Source::series_samples`].
    SeriesSamples(WireSelect),
    /// [`Source::label_names`].
    LabelNames(WireSelect),
    /// [`Source::label_values`].
    LabelValues {
        /// The label.
        name: String,
        /// The request.
        #[serde(flatten)]
        select: WireSelect,
    },
    /// [`Source::select_histograms`].
    SelectHistograms(WireSelect),
    /// [`Source::exemplars`].
    Exemplars {
        /// Series matching any of these.
        selectors: Vec<Vec<WireMatcher>>,
        /// First millisecond, included.
        start: i64,
        /// Last millisecond, included.
        end: i64,
    },
    /// [`Source::metadata`].
    Metadata {
        /// One metric family only.
        metric: Option<String>,
    },
    /// [`LogSource::select_logs`].
    SelectLogs(WireLogs),
    /// [`LogSource::log_streams`].
    LogStreams(WireLogs),
    /// [`LogSource::log_label_names`].
    LogLabelNames(WireLogs),
    /// [`LogSource::log_label_values`].
    LogLabelValues {
        /// The label.
        name: String,
        /// The request.
        #[serde(flatten)]
        logs: WireLogs,
    },
}

/// A [`SelectRequest`] on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireSelect {
    /// All must match.
    pub matchers: Vec<WireMatcher>,
    /// First millisecond, included.
    pub start: i64,
    /// Last millisecond, included.
    pub end: i64,
    /// [`SelectRequest::only`]: series ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<u64>>,
}

/// A [`LogRequest`] on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireLogs {
    /// All must match.
    pub matchers: Vec<WireMatcher>,
    /// First nanosecond, included.
    pub start: i64,
    /// End, excluded.
    pub end: i64,
    /// Literal line filters: `[true, text]` contains, `[false, text]` does not.
    #[serde(default)]
    pub line_hints: Vec<(bool, String)>,
    /// `true`: oldest first.
    pub forward: bool,
    /// At most this many records.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// An error answer's body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// `too_many_samples`, `bad_request`, `unauthorized` or `internal`.
    pub kind: String,
    /// For `too_many_samples`: the limit.
    #[serde(default)]
    pub limit: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl WireError {
    /// The error answer for `e`, with its HTTP status.
    pub fn of(e: &Error) -> (u16, Self) {
        let (status, kind, limit) = match e {
            Error::TooManySamples { limit } => (422, "too_many_samples", Some(*limit)),
            Error::InvalidData { .. } => (400, "bad_request", None),
            Error::Unauthenticated { .. } => (401, "unauthorized", None),
            Error::Forbidden { .. } => (403, "unauthorized", None),
            _ => (500, "internal", None),
        };
        (
            status,
            Self {
                kind: kind.into(),
                limit,
                message: e.to_string(),
            },
        )
    }

    /// The error the querier reports for this answer from `peer`: the sample limit as the
    /// same limit (the query fails as it would in all-in-one), anything else as the peer being
    /// unavailable.
    pub fn into_error(self, peer: &str) -> Error {
        match (self.kind.as_str(), self.limit) {
            ("too_many_samples", Some(limit)) => Error::TooManySamples { limit },
            _ => Error::Unavailable {
                peer: peer.to_string(),
                reason: self.message,
            },
        }
    }
}

fn op_text(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::RegexMatch => "=~",
        MatchOp::RegexNoMatch => "!~",
    }
}

fn to_wire_matchers(matchers: &[Matcher]) -> Vec<WireMatcher> {
    matchers
        .iter()
        .map(|m| (m.name.clone(), op_text(m.op).to_string(), m.value.clone()))
        .collect()
}

fn from_wire_matchers(matchers: &[WireMatcher]) -> Result<Vec<Matcher>> {
    matchers
        .iter()
        .map(|(name, op, value)| {
            let op = match op.as_str() {
                "=" => MatchOp::Equal,
                "!=" => MatchOp::NotEqual,
                "=~" => MatchOp::RegexMatch,
                "!~" => MatchOp::RegexNoMatch,
                other => return Err(invalid(format!("unknown matcher operator {other:?}"))),
            };
            Matcher::new(op, name.clone(), value.clone()).map_err(|e| invalid(format!("matcher {name}{op:?}: {e}")))
        })
        .collect()
}

fn invalid(reason: String) -> Error {
    Error::InvalidData { reason }
}

impl WireSelect {
    /// `req` on the wire.
    pub fn of(req: &SelectRequest) -> Self {
        Self {
            matchers: to_wire_matchers(&req.matchers),
            start: req.range.start,
            end: req.range.end,
            only: req.only.as_ref().map(|ids| ids.iter().map(|id| id.0).collect()),
        }
    }

    fn request(&self) -> Result<SelectRequest> {
        let mut req = SelectRequest::new(
            from_wire_matchers(&self.matchers)?,
            TimeRange::new(self.start, self.end),
        );
        if let Some(ids) = &self.only {
            let set: SeriesIdSet = ids.iter().map(|&id| SeriesId(id)).collect();
            req = req.only(Arc::new(set));
        }
        Ok(req)
    }
}

impl WireLogs {
    /// `req` on the wire.
    pub fn of(req: &LogRequest) -> Self {
        Self {
            matchers: to_wire_matchers(&req.matchers),
            start: req.start,
            end: req.end,
            line_hints: req
                .line_hints
                .iter()
                .map(|h| match h {
                    LineHint::Contains(t) => (true, t.clone()),
                    LineHint::NotContains(t) => (false, t.clone()),
                })
                .collect(),
            forward: req.direction == Direction::Forward,
            limit: req.limit,
        }
    }

    fn request(&self) -> Result<LogRequest> {
        Ok(LogRequest {
            matchers: from_wire_matchers(&self.matchers)?,
            start: self.start,
            end: self.end,
            line_hints: self
                .line_hints
                .iter()
                .map(|(contains, t)| {
                    if *contains {
                        LineHint::Contains(t.clone())
                    } else {
                        LineHint::NotContains(t.clone())
                    }
                })
                .collect(),
            direction: if self.forward {
                Direction::Forward
            } else {
                Direction::Backward
            },
            limit: self.limit,
        })
    }
}

impl Call {
    /// The method's name, as the JSON `method` field spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Select(_) => "select",
            Call::Series(_) => "series",
            Call::CountSamples { .. } => "count_samples",
            Call::SeriesSamples(_) => "series_samples",
            Call::LabelNames(_) => "label_names",
            Call::LabelValues { .. } => "label_values",
            Call::SelectHistograms(_) => "select_histograms",
            Call::Exemplars { .. } => "exemplars",
            Call::Metadata { .. } => "metadata",
            Call::SelectLogs(_) => "select_logs",
            Call::LogStreams(_) => "log_streams",
            Call::LogLabelNames(_) => "log_label_names",
            Call::LogLabelValues { .. } => "log_label_values",
        }
    }

    /// The request body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a call always serialises")
    }

    /// A request body back; a malformed one is [`Error::InvalidData`].
    pub fn from_json(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| invalid(format!("internal read call: {e}")))
    }
}

/// An encoded answer: its content type and body.
#[derive(Debug)]
pub struct Answer {
    /// [`ARROW_STREAM`] or [`JSON`].
    pub content_type: &'static str,
    /// The bytes.
    pub body: Vec<u8>,
}

impl Answer {
    fn json<T: Serialize>(value: &T) -> Result<Self> {
        Ok(Self {
            content_type: JSON,
            body: serde_json::to_vec(value).map_err(|e| Error::Task {
                op: "encoding an internal read answer",
                reason: e.to_string(),
            })?,
        })
    }

    fn arrow(batches: Vec<RecordBatch>, schema: SchemaRef) -> Result<Self> {
        // Sized up front: growing a body of megabytes copies it again at every doubling.
        let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let mut body = Vec::with_capacity(size + 4096);
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut body, &schema).map_err(arrow_err)?;
        for b in &batches {
            w.write(b).map_err(arrow_err)?;
        }
        w.finish().map_err(arrow_err)?;
        drop(w);
        Ok(Self {
            content_type: ARROW_STREAM,
            body,
        })
    }
}

fn arrow_err(source: arrow_schema::ArrowError) -> Error {
    Error::Arrow {
        op: "internal read answer",
        source,
    }
}

/// Answers `call` from `source` and `logs` (the ingester's end of the API).
pub async fn answer(call: &Call, source: &dyn Source, logs: &dyn LogSource) -> Result<Answer> {
    match call {
        Call::Select(s) => {
            let series = source.select(&s.request()?).await?;
            encode_series(&series)
        }
        Call::Series(s) => Answer::json(&labels_out(source.series(&s.request()?).await?)),
        Call::CountSamples { select, limit } => Answer::json(&source.count_samples(&select.request()?, *limit).await?),
        Call::SeriesSamples(s) => {
            let sizes = source.series_samples(&s.request()?).await?;
            Answer::json(
                &sizes
                    .into_iter()
                    .map(|s| (pairs(&s.labels), s.samples))
                    .collect::<Vec<_>>(),
            )
        }
        Call::LabelNames(s) => Answer::json(&source.label_names(&s.request()?).await?),
        Call::LabelValues { name, select } => Answer::json(&source.label_values(name, &select.request()?).await?),
        Call::SelectHistograms(s) => {
            let series = source.select_histograms(&s.request()?).await?;
            Answer::json(&series.iter().map(WireHistogramSeries::of).collect::<Vec<_>>())
        }
        Call::Exemplars { selectors, start, end } => {
            let selectors = selectors
                .iter()
                .map(|m| from_wire_matchers(m))
                .collect::<Result<Vec<_>>>()?;
            let series = source.exemplars(&selectors, TimeRange::new(*start, *end)).await?;
            Answer::json(&series.iter().map(WireExemplarSeries::of).collect::<Vec<_>>())
        }
        Call::Metadata { metric } => Answer::json(&source.metadata(metric.as_deref()).await?),
        Call::SelectLogs(l) => encode_logs(&logs.select_logs(&l.request()?).await?),
        Call::LogStreams(l) => Answer::json(&labels_out(logs.log_streams(&l.request()?).await?)),
        Call::LogLabelNames(l) => Answer::json(&logs.log_label_names(&l.request()?).await?),
        Call::LogLabelValues { name, logs: l } => Answer::json(&logs.log_label_values(name, &l.request()?).await?),
    }
}

type Pairs = Vec<(String, String)>;

fn pairs(labels: &Labels) -> Pairs {
    labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
}

fn labels_in(pairs: Pairs) -> Labels {
    Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
}

fn labels_out(sets: Vec<Labels>) -> Vec<Pairs> {
    sets.iter().map(pairs).collect()
}

/// What the querier makes of an answer's body.
pub mod decode {
    use super::*;

    /// A [`Call::Select`] answer.
    pub fn series(body: &[u8]) -> Result<Vec<Series>> {
        let mut out = Vec::new();
        for batch in batches(body)? {
            let (names, values) = (list(&batch, 0)?, list(&batch, 1)?);
            let (ts, vs) = (list(&batch, 2)?, list(&batch, 3)?);
            for row in 0..batch.num_rows() {
                let labels = labels_at(names, values, row)?;
                let t = ts.value(row);
                let t = prim::<Int64Array>(&t)?;
                let v = vs.value(row);
                let v = prim::<Float64Array>(&v)?;
                if t.len() != v.len() {
                    return Err(corrupt("timestamps and samples of a series differ in length"));
                }
                let samples = t
                    .values()
                    .iter()
                    .zip(v.values())
                    .map(|(&t, &v)| Sample::new(t, v))
                    .collect();
                out.push(Series::new(labels, samples));
            }
        }
        Ok(out)
    }

    /// A [`Call::SelectLogs`] answer.
    pub fn logs(body: &[u8]) -> Result<Vec<LogRecord>> {
        let mut out = Vec::new();
        for batch in batches(body)? {
            let (names, values) = (list(&batch, 0)?, list(&batch, 1)?);
            let int = |i: usize| col::<Int64Array>(&batch, i);
            let text = |i: usize| col::<StringArray>(&batch, i);
            let (timestamp, observed) = (int(2)?, int(3)?);
            let severity_number = col::<Int32Array>(&batch, 4)?;
            let flags = col::<UInt32Array>(&batch, 9)?;
            let [severity_text, body, trace_id, span_id] = [text(5)?, text(6)?, text(7)?, text(8)?];
            let [attributes, resource_attributes, scope_name, scope_version, event_name] =
                [text(10)?, text(11)?, text(12)?, text(13)?, text(14)?];
            for row in 0..batch.num_rows() {
                out.push(LogRecord {
                    labels: labels_at(names, values, row)?,
                    timestamp: timestamp.value(row),
                    observed_timestamp: observed.value(row),
                    severity_number: severity_number.value(row),
                    severity_text: severity_text.value(row).to_string(),
                    body: body.value(row).to_string(),
                    trace_id: trace_id.value(row).to_string(),
                    span_id: span_id.value(row).to_string(),
                    flags: flags.value(row),
                    attributes: attributes.value(row).to_string(),
                    resource_attributes: resource_attributes.value(row).to_string(),
                    scope_name: scope_name.value(row).to_string(),
                    scope_version: scope_version.value(row).to_string(),
                    event_name: event_name.value(row).to_string(),
                });
            }
        }
        Ok(out)
    }

    /// A label-set listing ([`Call::Series`], [`Call::LogStreams`]).
    pub fn label_sets(body: &[u8]) -> Result<Vec<Labels>> {
        Ok(json::<Vec<Pairs>>(body)?.into_iter().map(labels_in).collect())
    }

    /// A [`Call::SeriesSamples`] answer.
    pub fn series_samples(body: &[u8]) -> Result<Vec<SeriesSize>> {
        Ok(json::<Vec<(Pairs, usize)>>(body)?
            .into_iter()
            .map(|(labels, samples)| SeriesSize {
                labels: labels_in(labels),
                samples,
            })
            .collect())
    }

    /// A [`Call::SelectHistograms`] answer.
    pub fn histograms(body: &[u8]) -> Result<Vec<HistogramSeries>> {
        Ok(json::<Vec<WireHistogramSeries>>(body)?
            .into_iter()
            .map(WireHistogramSeries::into_series)
            .collect())
    }

    /// A [`Call::Exemplars`] answer.
    pub fn exemplars(body: &[u8]) -> Result<Vec<ExemplarSeries>> {
        Ok(json::<Vec<WireExemplarSeries>>(body)?
            .into_iter()
            .map(WireExemplarSeries::into_series)
            .collect())
    }

    /// A [`Call::Metadata`] answer.
    pub fn metadata(body: &[u8]) -> Result<Vec<MetricMetadata>> {
        json(body)
    }

    /// Any other JSON answer (names, values, a count) or a [`WireError`].
    pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| corrupt(&format!("JSON answer: {e}")))
    }

    fn batches(body: &[u8]) -> Result<Vec<RecordBatch>> {
        let reader = arrow_ipc::reader::StreamReader::try_new(Cursor::new(body), None).map_err(arrow_err)?;
        reader.collect::<std::result::Result<Vec<_>, _>>().map_err(arrow_err)
    }

    fn corrupt(reason: &str) -> Error {
        Error::Corrupt {
            key: "internal read answer".into(),
            reason: reason.into(),
        }
    }

    fn col<T: 'static>(batch: &RecordBatch, i: usize) -> Result<&T> {
        batch
            .columns()
            .get(i)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| corrupt(&format!("column {i} missing or of the wrong type")))
    }

    fn list(batch: &RecordBatch, i: usize) -> Result<&ListArray> {
        col::<ListArray>(batch, i)
    }

    fn prim<T: 'static>(a: &ArrayRef) -> Result<&T> {
        a.as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| corrupt("list items of the wrong type"))
    }

    fn labels_at(names: &ListArray, values: &ListArray, row: usize) -> Result<Labels> {
        let (n, v) = (names.value(row), values.value(row));
        let (n, v) = (prim::<StringArray>(&n)?, prim::<StringArray>(&v)?);
        if n.len() != v.len() {
            return Err(corrupt("label names and values differ in length"));
        }
        Ok(Labels::new(
            (0..n.len()).map(|i| Label::new(n.value(i), v.value(i))).collect(),
        ))
    }
}

fn str_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn series_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("names", str_list(), false),
        Field::new("values", str_list(), false),
        Field::new(
            "timestamps",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            false,
        ),
        Field::new(
            "samples",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
            false,
        ),
    ]))
}

const LOG_TEXT_COLUMNS: [&str; 4] = ["severity_text", "body", "trace_id", "span_id"];
const LOG_TAIL_COLUMNS: [&str; 5] = [
    "attributes",
    "resource_attributes",
    "scope_name",
    "scope_version",
    "event_name",
];

fn logs_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("names", str_list(), false),
        Field::new("values", str_list(), false),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("observed_timestamp", DataType::Int64, false),
        Field::new("severity_number", DataType::Int32, false),
    ];
    fields.extend(LOG_TEXT_COLUMNS.iter().map(|n| Field::new(*n, DataType::Utf8, false)));
    fields.push(Field::new("flags", DataType::UInt32, false));
    fields.extend(LOG_TAIL_COLUMNS.iter().map(|n| Field::new(*n, DataType::Utf8, false)));
    Arc::new(Schema::new(fields))
}

fn labels_builders<'a>(labels: impl Iterator<Item = &'a Labels>) -> (ArrayRef, ArrayRef) {
    let (mut names, mut values) = (
        ListBuilder::new(StringBuilder::new()),
        ListBuilder::new(StringBuilder::new()),
    );
    for l in labels {
        for label in l.iter() {
            names.values().append_value(&label.name);
            values.values().append_value(&label.value);
        }
        names.append(true);
        values.append(true);
    }
    (Arc::new(names.finish()), Arc::new(values.finish()))
}

fn encode_series(series: &[Series]) -> Result<Answer> {
    let schema = series_schema();
    let mut batches = Vec::new();
    for chunk in series.chunks(BATCH_ROWS) {
        let (names, values) = labels_builders(chunk.iter().map(|s| &s.labels));
        // The samples dominate: built as plain vectors with one allocation each, no builder.
        let total: usize = chunk.iter().map(|s| s.samples.len()).sum();
        let (mut ts, mut vs) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let mut offsets = Vec::with_capacity(chunk.len() + 1);
        offsets.push(0i32);
        for s in chunk {
            ts.extend(s.samples.iter().map(|x| x.timestamp));
            vs.extend(s.samples.iter().map(|x| x.value));
            let end = i32::try_from(ts.len()).map_err(|_| Error::InvalidData {
                reason: "more than 2^31 samples in one answer batch".into(),
            })?;
            offsets.push(end);
        }
        let offsets = arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets));
        let list = |item: DataType, values: ArrayRef| -> Result<ArrayRef> {
            Ok(Arc::new(
                ListArray::try_new(Arc::new(Field::new("item", item, true)), offsets.clone(), values, None)
                    .map_err(arrow_err)?,
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            names,
            values,
            list(DataType::Int64, Arc::new(Int64Array::from(ts)))?,
            list(DataType::Float64, Arc::new(Float64Array::from(vs)))?,
        ];
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
    }
    Answer::arrow(batches, schema)
}

fn encode_logs(records: &[LogRecord]) -> Result<Answer> {
    let schema = logs_schema();
    let mut batches = Vec::new();
    for chunk in records.chunks(BATCH_ROWS) {
        let (names, values) = labels_builders(chunk.iter().map(|r| &r.labels));
        let int = |f: fn(&LogRecord) -> i64| -> ArrayRef {
            let mut b = Int64Builder::with_capacity(chunk.len());
            chunk.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        };
        let text = |f: fn(&LogRecord) -> &str| -> ArrayRef {
            let mut b = StringBuilder::new();
            chunk.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        };
        let mut severity = Int32Builder::with_capacity(chunk.len());
        let mut flags = UInt32Builder::with_capacity(chunk.len());
        for r in chunk {
            severity.append_value(r.severity_number);
            flags.append_value(r.flags);
        }
        let columns: Vec<ArrayRef> = vec![
            names,
            values,
            int(|r| r.timestamp),
            int(|r| r.observed_timestamp),
            Arc::new(severity.finish()),
            text(|r| &r.severity_text),
            text(|r| &r.body),
            text(|r| &r.trace_id),
            text(|r| &r.span_id),
            Arc::new(flags.finish()),
            text(|r| &r.attributes),
            text(|r| &r.resource_attributes),
            text(|r| &r.scope_name),
            text(|r| &r.scope_version),
            text(|r| &r.event_name),
        ];
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
    }
    Answer::arrow(batches, schema)
}

/// A float as its bits (JSON has no NaN or infinities; a staleness marker keeps its bits).
fn bits(v: f64) -> u64 {
    v.to_bits()
}

fn all_bits(vs: &[f64]) -> Vec<u64> {
    vs.iter().map(|&v| v.to_bits()).collect()
}

fn from_bits(vs: Vec<u64>) -> Vec<f64> {
    vs.into_iter().map(f64::from_bits).collect()
}

#[derive(Serialize, Deserialize)]
struct WireHistogramSeries {
    labels: Pairs,
    samples: Vec<WireHistogram>,
}

#[derive(Serialize, Deserialize)]
struct WireHistogram {
    t: i64,
    count: u64,
    sum: u64,
    schema: i32,
    zero_threshold: u64,
    zero_count: u64,
    positive_spans: Vec<(i32, u32)>,
    positive_buckets: Vec<u64>,
    negative_spans: Vec<(i32, u32)>,
    negative_buckets: Vec<u64>,
    reset_hint: ResetHint,
    custom_values: Vec<u64>,
}

fn spans_out(spans: &[BucketSpan]) -> Vec<(i32, u32)> {
    spans.iter().map(|s| (s.offset, s.length)).collect()
}

fn spans_in(spans: Vec<(i32, u32)>) -> Vec<BucketSpan> {
    spans
        .into_iter()
        .map(|(offset, length)| BucketSpan { offset, length })
        .collect()
}

impl WireHistogramSeries {
    fn of(s: &HistogramSeries) -> Self {
        Self {
            labels: pairs(&s.labels),
            samples: s
                .samples
                .iter()
                .map(|h| WireHistogram {
                    t: h.timestamp,
                    count: bits(h.count),
                    sum: bits(h.sum),
                    schema: h.schema,
                    zero_threshold: bits(h.zero_threshold),
                    zero_count: bits(h.zero_count),
                    positive_spans: spans_out(&h.positive_spans),
                    positive_buckets: all_bits(&h.positive_buckets),
                    negative_spans: spans_out(&h.negative_spans),
                    negative_buckets: all_bits(&h.negative_buckets),
                    reset_hint: h.reset_hint,
                    custom_values: all_bits(&h.custom_values),
                })
                .collect(),
        }
    }

    fn into_series(self) -> HistogramSeries {
        HistogramSeries {
            labels: labels_in(self.labels),
            samples: self
                .samples
                .into_iter()
                .map(|h| HistogramSample {
                    timestamp: h.t,
                    count: f64::from_bits(h.count),
                    sum: f64::from_bits(h.sum),
                    schema: h.schema,
                    zero_threshold: f64::from_bits(h.zero_threshold),
                    zero_count: f64::from_bits(h.zero_count),
                    positive_spans: spans_in(h.positive_spans),
                    positive_buckets: from_bits(h.positive_buckets),
                    negative_spans: spans_in(h.negative_spans),
                    negative_buckets: from_bits(h.negative_buckets),
                    reset_hint: h.reset_hint,
                    custom_values: from_bits(h.custom_values),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireExemplarSeries {
    labels: Pairs,
    exemplars: Vec<(Pairs, u64, i64)>,
}

impl WireExemplarSeries {
    fn of(s: &ExemplarSeries) -> Self {
        Self {
            labels: pairs(&s.labels),
            exemplars: s
                .exemplars
                .iter()
                .map(|e| (pairs(&e.labels), bits(e.value), e.timestamp))
                .collect(),
        }
    }

    fn into_series(self) -> ExemplarSeries {
        ExemplarSeries {
            labels: labels_in(self.labels),
            exemplars: self
                .exemplars
                .into_iter()
                .map(|(labels, value, timestamp)| Exemplar {
                    labels: labels_in(labels),
                    value: f64::from_bits(value),
                    timestamp,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
