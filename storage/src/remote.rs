//! The internal read API: how a query process reads an ingester's head (issue "past one
//! machine"). One contract, two ends that share this module: the ingester answers a [`Call`]
//! with [`answer`] over its head; the querier encodes calls and decodes answers with
//! [`Call::to_json`] and [`decode`] (its client lives in `query::remote`). Both ends speak
//! through the [`Source`], [`LogSource`] and [`TraceSource`] contracts, so a remote head is just one more source
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
//! - **Float series as XOR chunks**: a `select` call with `"chunks":true` may be answered with
//!   `names`, `values`, `chunks` (`List<Binary>`: Prometheus XOR chunks, oldest first, see
//!   [`crate::xor_chunk`]) and `sorted` (`Boolean`), one row per series, when the source holds
//!   its samples so ([`Source::select_chunks`]: the head). The chunks may hold samples outside
//!   the range and, without `sorted`, out of order and repeated (the last written wins): the
//!   client decodes, cuts and sorts them ([`crate::xor_chunk::ChunkedSeries`]). Why: a regular
//!   series costs 1–2 bytes a sample in chunks against 16 decoded, and the ingester neither
//!   decodes nor copies samples. The client asks for chunks except for `newest_only` reads
//!   (one sample a series), and reads either answer by its columns' names.
//! - **Counted reads**: a `select_within` call (a `select` with a `budget`) counts the samples
//!   first ([`Source::count_samples`]) and is answered as `select` is, the count in the Arrow
//!   schema's metadata under [`COUNTED`]; past the budget the stream holds no batch. Why: the
//!   engine counts a selector it could read in parts before reading it, and this makes count
//!   and read one round trip to each ingester instead of two.
//! - **Every other answer** (listings, counts, series sizes, metadata, native histograms,
//!   exemplars, spans: a JSON array of [`crate::signals::Span`]s, ids as byte arrays) is JSON (`application/json`); floats inside histograms and exemplars travel as
//!   their IEEE-754 bits (`u64`), because JSON has no NaN and no infinities.
//! - **Errors**: a non-2xx status with a JSON [`WireError`]: `kind` `too_many_samples` (with
//!   `limit`: the querier fails the query with the same 422 all-in-one gives), `bad_request`
//!   (400), `unauthorized` (401/403) or `internal` (500).
//!
//! Adding a read method to the contracts: one [`Call`] variant, one arm in [`answer`], one
//! method in the querier's client.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, UInt32Builder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::read::{
    Direction, LineHint, LogRequest, LogSource, PatternRequest, SelectRequest, SeriesSize, Source, SpanRequest,
    TraceSource, VolumeRequest,
};
use crate::signals::{
    BucketSpan, Exemplar, ExemplarSeries, HistogramSample, HistogramSeries, LogRecord, MetricMetadata, ResetHint,
    TraceId,
};
use crate::types::{Label, Labels, MatchOp, Matcher, Sample, Series, SeriesId, SeriesIdSet, TimeRange};
use crate::xor_chunk::ChunkedSeries;
use crate::{Error, Result};

mod arrow;
mod client;
mod floats;
mod pool;
use arrow::{encode_chunks, encode_logs, encode_series};
pub use client::{RemoteSource, Transport};
use floats::{WireExemplarSeries, WireHistogramSeries};

/// The path every call is posted to.
pub const PATH: &str = "/internal/v1/read";
/// Content type of the Arrow IPC stream answers.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
/// Content type of the JSON answers and errors.
pub const JSON: &str = "application/json";
/// Most rows (series or log records) in one Arrow batch of an answer.
pub const BATCH_ROWS: usize = 4096;
/// The schema metadata key of a [`Call::SelectWithin`] answer: the samples counted (decimal).
pub const COUNTED: &str = "counted";

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
    /// [`Source::select_within`]: answered as `select` is, the count in the Arrow schema's
    /// metadata ([`COUNTED`]); past the budget, with no batch.
    SelectWithin {
        /// The request (`chunks` as for `select`).
        #[serde(flatten)]
        select: WireSelect,
        /// The samples are read only when at most this many are counted.
        budget: usize,
    },
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
    /// [`LogSource::log_volume`]: answered as JSON `[[labels pairs, [[bucket, bytes, lines], ...]], ...]`.
    LogVolume {
        /// Matchers and range (direction, limit and hints are ignored).
        #[serde(flatten)]
        logs: WireLogs,
        /// [`VolumeRequest::origin`].
        origin: i64,
        /// [`VolumeRequest::step`].
        step: i64,
    },
    /// [`LogSource::log_patterns`]: answered as JSON [`crate::read::Patterns`]
    /// (`{"series":[{"level":..,"pattern":..,"samples":[[bucket start, lines],..]},..],"truncated":..}`),
    /// so an ingester clusters its own lines and only patterns cross the wire.
    LogPatterns {
        /// Matchers and range (direction, limit and hints are ignored).
        #[serde(flatten)]
        logs: WireLogs,
        /// [`PatternRequest::step`].
        step: i64,
        /// [`PatternRequest::max_lines`].
        max_lines: usize,
    },
    /// [`LogSource::log_label_values`].
    LogLabelValues {
        /// The label.
        name: String,
        /// The request.
        #[serde(flatten)]
        logs: WireLogs,
    },
    /// [`TraceSource::select_spans`].
    SelectSpans(WireSpans),
}

/// A [`SpanRequest`] on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireSpans {
    /// On `cluster` and `service_name`; all must match.
    pub matchers: Vec<WireMatcher>,
    /// First nanosecond, included.
    pub start: i64,
    /// End, excluded.
    pub end: i64,
    /// One trace only (its 16 bytes).
    #[serde(default)]
    pub trace_id: Option<TraceId>,
    /// Shortest span, in nanoseconds.
    #[serde(default)]
    pub min_duration: i64,
    /// At most this many spans ([`SpanRequest::limit`]).
    #[serde(default)]
    pub limit: Option<usize>,
}

impl WireSpans {
    /// `req` on the wire.
    pub fn of(req: &SpanRequest) -> Self {
        Self {
            matchers: to_wire_matchers(&req.matchers),
            start: req.start,
            end: req.end,
            trace_id: req.trace_id,
            min_duration: req.min_duration,
            // The server answers before the filter (which stays here): its answer is bounded
            // by its own row limit, the filtered one by the request's (checked by the client).
            limit: if req.filter.is_some() { None } else { req.limit },
        }
    }

    fn request(&self) -> Result<SpanRequest> {
        Ok(SpanRequest {
            matchers: from_wire_matchers(&self.matchers)?,
            start: self.start,
            end: self.end,
            trace_id: self.trace_id,
            min_duration: self.min_duration,
            // The filter stays with the caller (see `RemoteSource::select_spans`).
            filter: None,
            limit: self.limit,
        })
    }
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
    /// [`SelectRequest::newest_only`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub newest_only: bool,
    /// For `select`: the caller takes the samples as XOR chunks (see the module docs). A
    /// server that does not know the field answers samples, which the client reads as well.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chunks: bool,
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
            newest_only: req.newest_only,
            chunks: false,
        }
        // `bucket_fields` stays home: an ingester answers bucket reads with raw samples (the
        // trait's default), which the hint does not change.
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
        req.newest_only = self.newest_only;
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
            Call::SelectWithin { .. } => "select_within",
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
            Call::LogVolume { .. } => "log_volume",
            Call::LogPatterns { .. } => "log_patterns",
            Call::LogLabelValues { .. } => "log_label_values",
            Call::SelectSpans(_) => "select_spans",
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
    pub body: bytes::Bytes,
}

impl Answer {
    fn json<T: Serialize>(value: &T) -> Result<Self> {
        Ok(Self {
            content_type: JSON,
            body: serde_json::to_vec(value)
                .map_err(|e| Error::Task {
                    op: "encoding an internal read answer",
                    reason: e.to_string(),
                })?
                .into(),
        })
    }

    fn arrow(batches: Vec<RecordBatch>, schema: SchemaRef) -> Result<Self> {
        // Sized up front: growing a body of megabytes copies it again at every doubling.
        let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let mut body = pool::ANSWERS.buffer(size + 4096);
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut body, &schema).map_err(arrow_err)?;
        for b in &batches {
            w.write(b).map_err(arrow_err)?;
        }
        w.finish().map_err(arrow_err)?;
        drop(w);
        Ok(Self {
            content_type: ARROW_STREAM,
            body: pool::ANSWERS.bytes(body),
        })
    }
}

fn arrow_err(source: arrow_schema::ArrowError) -> Error {
    Error::Arrow {
        op: "internal read answer",
        source,
    }
}

/// Answers `call` from `source`, `logs` and `traces` (the ingester's end of the API).
pub async fn answer(
    call: &Call,
    source: &dyn Source,
    logs: &dyn LogSource,
    traces: &dyn TraceSource,
) -> Result<Answer> {
    match call {
        Call::Select(s) => select_answer(source, s, None).await,
        Call::SelectWithin { select, budget } => {
            let counted = source.count_samples(&select.request()?, *budget).await?;
            if counted > *budget {
                return encode_series(&[], Some(counted));
            }
            select_answer(source, select, Some(counted)).await
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
        Call::LogVolume { logs: l, origin, step } => {
            let req = VolumeRequest {
                logs: l.request()?,
                origin: *origin,
                step: *step,
            };
            let volumes = logs.log_volume(&req).await?;
            Answer::json(
                &volumes
                    .iter()
                    .map(|v| {
                        let buckets: Vec<(u32, u64, u64)> =
                            v.buckets.iter().map(|b| (b.bucket, b.bytes, b.lines)).collect();
                        (pairs(&v.labels), buckets)
                    })
                    .collect::<Vec<_>>(),
            )
        }
        Call::LogPatterns {
            logs: l,
            step,
            max_lines,
        } => {
            let req = PatternRequest {
                logs: l.request()?,
                step: *step,
                max_lines: *max_lines,
            };
            Answer::json(&logs.log_patterns(&req).await?)
        }
        Call::LogLabelValues { name, logs: l } => Answer::json(&logs.log_label_values(name, &l.request()?).await?),
        Call::SelectSpans(s) => Answer::json(&traces.select_spans(&s.request()?).await?),
    }
}

/// A `select` answer (chunks when asked for and held), `counted` in its schema when given.
async fn select_answer(source: &dyn Source, s: &WireSelect, counted: Option<usize>) -> Result<Answer> {
    let req = s.request()?;
    if s.chunks
        && let Some(series) = source.select_chunks(&req).await?
    {
        return encode_chunks(&series, counted);
    }
    encode_series(&source.select(&req).await?, counted)
}

type Pairs = Vec<(String, String)>;

fn pairs(labels: &Labels) -> Pairs {
    labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

fn labels_in(pairs: Pairs) -> Labels {
    Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect())
}

fn labels_out(sets: Vec<Labels>) -> Vec<Pairs> {
    sets.iter().map(pairs).collect()
}

/// What the querier makes of an answer's body.
pub mod decode;

#[cfg(test)]
mod tests;
