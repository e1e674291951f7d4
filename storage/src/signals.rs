//! Domain types for the signals beside float samples: native histograms, exemplars, metric
//! metadata, log records and trace spans. Every receiver converts its protocol's messages into these at the
//! edge (`ingest::decode`); storage writes them to their own tables; query reads them back.
//!
//! They are plain data with public fields: the contracts live in the docs below, and each table's
//! module (`histograms`, `exemplars`, `metadata`, `logs`, `spans`) documents how it stores them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::types::{Labels, TimestampMs};

/// Nanoseconds since the Unix epoch (OTLP and Loki timestamps).
pub type TimestampNs = i64;

/// `length` consecutive buckets starting `offset` buckets after the end of the previous span (the
/// first span's offset counts from bucket index 0). Prometheus's `BucketSpan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSpan {
    /// Buckets skipped after the previous span (or from index 0 for the first span).
    pub offset: i32,
    /// Consecutive buckets in this span.
    pub length: u32,
}

/// Prometheus's counter-reset hint of a native histogram sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum ResetHint {
    /// Unknown: the reader must compare with the previous sample.
    #[default]
    Unknown = 0,
    /// This sample follows a counter reset.
    Yes = 1,
    /// Certainly no reset since the previous sample.
    No = 2,
    /// A gauge histogram: resets do not apply.
    Gauge = 3,
}

impl ResetHint {
    /// The hint stored as `v`; `None` for an unknown value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Unknown,
            1 => Self::Yes,
            2 => Self::No,
            3 => Self::Gauge,
            _ => return None,
        })
    }
}

/// One native-histogram sample, the shape PromQL evaluates (Prometheus's `FloatHistogram`).
///
/// - Bucket counts are **absolute** (not the wire's deltas) and floats; integer-count histograms
///   convert exactly up to 2^53.
/// - `schema` −4..=8 is exponential: bucket `i` has upper bound `2^(i · 2^-schema)`. Schema −53
///   is "custom buckets" (NHCB): `custom_values` are the upper bounds and only positive buckets
///   are used.
/// - OpenTelemetry exponential histograms map onto this directly: `scale` → `schema` (clamped
///   down to 8 by merging buckets), `offset` → a span starting at `offset + 1` (OTLP's bucket
///   `i` covers `(base^i, base^(i+1)]`, Prometheus's `(base^(i-1), base^i]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSample {
    /// Sample time (ms).
    pub timestamp: TimestampMs,
    /// Observation count.
    pub count: f64,
    /// Sum of observations.
    pub sum: f64,
    /// Bucket schema: −4..=8 exponential, −53 custom buckets.
    pub schema: i32,
    /// Width of the zero bucket.
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    pub zero_count: f64,
    /// Spans of the positive buckets.
    pub positive_spans: Vec<BucketSpan>,
    /// Absolute counts of the positive buckets.
    pub positive_buckets: Vec<f64>,
    /// Spans of the negative buckets.
    pub negative_spans: Vec<BucketSpan>,
    /// Absolute counts of the negative buckets.
    pub negative_buckets: Vec<f64>,
    /// The counter-reset hint.
    pub reset_hint: ResetHint,
    /// Upper bounds for schema −53 (custom buckets); empty otherwise.
    pub custom_values: Vec<f64>,
}

/// A native-histogram series: labels final (validated, cluster-stamped), samples sorted by time.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples, sorted by time.
    pub samples: Vec<HistogramSample>,
}

/// One exemplar: its own labels (e.g. `trace_id`), value and time.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// The exemplar's own labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
    /// Its time (ms).
    pub timestamp: TimestampMs,
}

/// The exemplars of one series (`labels` are the series' final labels, `cluster` included).
#[derive(Clone, Debug, PartialEq)]
pub struct ExemplarSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its exemplars.
    pub exemplars: Vec<Exemplar>,
}

/// Prometheus's metric types, as `/api/v1/metadata` spells them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    #[default]
    /// No type given.
    Unknown,
    /// A monotonic counter.
    Counter,
    /// A gauge.
    Gauge,
    /// A classic or native histogram.
    Histogram,
    /// A gauge histogram.
    GaugeHistogram,
    /// A summary.
    Summary,
    /// An info metric.
    Info,
    /// A state set.
    StateSet,
}

impl MetricType {
    /// The name as Prometheus writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
        }
    }

    /// The type named `s` (as [`MetricType::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unknown" => Self::Unknown,
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "gaugehistogram" => Self::GaugeHistogram,
            "summary" => Self::Summary,
            "info" => Self::Info,
            "stateset" => Self::StateSet,
            _ => return None,
        })
    }
}

/// What a sender said about a metric family: type, help and unit, per cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricMetadata {
    /// The cluster the entry came from (`""` unknown).
    pub cluster: String,
    /// The metric family name (for a histogram: without `_bucket`/`_sum`/`_count`).
    pub metric: String,
    /// The metric type.
    pub kind: MetricType,
    /// The help text (`""` none).
    pub help: String,
    /// The unit (`""` none).
    pub unit: String,
}

/// One log record, from OTLP logs or the Loki push API.
///
/// `labels` are the *stream* labels — what LogQL's `{...}` selector matches and what the logs
/// table partitions and sorts by: `cluster` plus the resource attributes promoted to index labels
/// (Loki's OTLP defaults such as `service_name`, `k8s_namespace_name`, `k8s_pod_name`), names
/// normalised to `[a-zA-Z_][a-zA-Z0-9_]*`. Everything else rides along un-indexed (Loki's
/// "structured metadata").
///
/// Records are totally ordered (`Ord`): by `timestamp`, then `labels` (the order
/// [`crate::read::LogSource::select_logs`] promises), then every other field. It is the one
/// order every log source sorts by (see [`crate::read::sort_logs`]), so a record held by two
/// sources, or stored twice, lands next to its copy and deduplicates, whatever look-alikes
/// (same time, stream and line, other attributes) sit beside it.
///
/// The stream labels and the resource attributes are shared (`Arc`): a decoder builds them once
/// per stream (a Loki stream, an OTLP resource) and every record of it points to the same copy,
/// so a record costs its own fields, not its stream's, in the head and in reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRecord {
    /// The stream labels (see above), shared by the stream's records.
    pub labels: Arc<Labels>,
    /// When the event happened; the observed time when the sender left it unset.
    pub timestamp: TimestampNs,
    /// When a collector first saw it (0 when unknown).
    pub observed_timestamp: TimestampNs,
    /// OTLP `SeverityNumber` (0 = unspecified, 1..=24 TRACE..FATAL4).
    pub severity_number: i32,
    /// Severity as the sender spelled it, empty when absent.
    pub severity_text: String,
    /// The line: a string body as is; a structured body (map, array, bytes...) as JSON.
    pub body: String,
    /// Lower-case hex, empty when absent.
    pub trace_id: String,
    /// Lower-case hex, empty when absent.
    pub span_id: String,
    /// OTLP log record flags (W3C trace flags in the low byte).
    pub flags: u32,
    /// The record's own attributes as a JSON object (Loki: structured metadata).
    pub attributes: String,
    /// Every resource attribute as a JSON object, promoted ones included; shared by the
    /// resource's records.
    pub resource_attributes: Arc<str>,
    /// Instrumentation scope name, empty when absent.
    pub scope_name: String,
    /// Instrumentation scope version, empty when absent.
    pub scope_version: String,
    /// OTLP `event_name`, empty when absent.
    pub event_name: String,
}

/// Orders two records' stream labels; one shared copy is equal to itself without a look.
pub fn cmp_stream(a: &Arc<Labels>, b: &Arc<Labels>) -> std::cmp::Ordering {
    if Arc::ptr_eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        a.cmp(b)
    }
}

impl Ord for LogRecord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Every field takes part, so `a.cmp(b) == Equal` exactly when `a == b`.
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| cmp_stream(&self.labels, &other.labels))
            .then_with(|| self.body.cmp(&other.body))
            .then_with(|| self.attributes.cmp(&other.attributes))
            .then_with(|| self.observed_timestamp.cmp(&other.observed_timestamp))
            .then_with(|| self.severity_number.cmp(&other.severity_number))
            .then_with(|| self.severity_text.cmp(&other.severity_text))
            .then_with(|| self.trace_id.cmp(&other.trace_id))
            .then_with(|| self.span_id.cmp(&other.span_id))
            .then_with(|| self.flags.cmp(&other.flags))
            .then_with(|| {
                if Arc::ptr_eq(&self.resource_attributes, &other.resource_attributes) {
                    std::cmp::Ordering::Equal
                } else {
                    self.resource_attributes.cmp(&other.resource_attributes)
                }
            })
            .then_with(|| self.scope_name.cmp(&other.scope_name))
            .then_with(|| self.scope_version.cmp(&other.scope_version))
            .then_with(|| self.event_name.cmp(&other.event_name))
    }
}

impl PartialOrd for LogRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A trace id: 16 bytes, never all zero in a stored span.
pub type TraceId = [u8; 16];
/// A span id: 8 bytes; all zero as a parent means "no parent" (a root span).
pub type SpanId = [u8; 8];

/// One span of a trace, as the OTLP data model defines it, with its resource's cluster.
///
/// - `cluster` follows the rule every signal follows (token, `k8s.cluster.name`, header).
/// - `service_name` is the resource's `service.name` (`""` when absent); `http_method`,
///   `http_route` and `http_status_code` are the span's semantic-convention attributes
///   (`http.request.method` or the older `http.method`; `http.route`;
///   `http.response.status_code` or `http.status_code`; `""`/0 when absent), copied beside the
///   attributes so searches on them read one narrow column. The attributes keep them too.
/// - `attributes` and `resource_attributes` are JSON objects (scope attributes are not kept
///   apart: they join the span's, the span's winning a repeated key), typed as the log
///   records' are (see [`LogRecord`]); `events` and `links` are JSON arrays of
///   `{"time_unix_nano","name","attributes"}` and `{"trace_id","span_id","trace_state",
///   "attributes"}` (ids lower-case hex).
///
/// Spans are totally ordered: by trace id, span id, start, then every other field, so a trace's
/// spans sort together and a span stored twice (a retried flush, head and file during a flush)
/// lands next to its copy and deduplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// The trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
    /// When the span started.
    pub start: TimestampNs,
    /// The cluster it came from.
    pub cluster: String,
    /// The parent span, all zero for a root span.
    pub parent_span_id: SpanId,
    /// W3C trace state, `""` when absent.
    pub trace_state: String,
    /// The operation name.
    pub name: String,
    /// OTLP `SpanKind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    /// Nanoseconds from start to end (never negative).
    pub duration: i64,
    /// OTLP `StatusCode`: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The status message, `""` when absent.
    pub status_message: String,
    /// The resource's `service.name`, `""` when absent.
    pub service_name: String,
    /// The span's HTTP method, `""` when absent.
    pub http_method: String,
    /// The span's HTTP route, `""` when absent.
    pub http_route: String,
    /// The span's HTTP response status code, 0 when absent.
    pub http_status_code: i64,
    /// OTLP span flags (W3C trace flags in the low byte).
    pub flags: u32,
    /// Instrumentation scope name, `""` when absent.
    pub scope_name: String,
    /// Instrumentation scope version, `""` when absent.
    pub scope_version: String,
    /// The span's attributes (and its scope's) as a JSON object.
    pub attributes: String,
    /// Every resource attribute as a JSON object.
    pub resource_attributes: String,
    /// The span's events as a JSON array, `"[]"` when none.
    pub events: String,
    /// The span's links as a JSON array, `"[]"` when none.
    pub links: String,
}

impl Span {
    /// When the span ended.
    pub fn end(&self) -> TimestampNs {
        self.start.saturating_add(self.duration)
    }

    /// Bytes it takes in memory, roughly (the head's accounting).
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.cluster.len()
            + self.trace_state.len()
            + self.name.len()
            + self.status_message.len()
            + self.service_name.len()
            + self.http_method.len()
            + self.http_route.len()
            + self.scope_name.len()
            + self.scope_version.len()
            + self.attributes.len()
            + self.resource_attributes.len()
            + self.events.len()
            + self.links.len()
    }
}

/// Lower-case hex of an id.
pub fn hex_id(id: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(id.len() * 2);
    for b in id {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A trace id from hex, as Tempo and Jaeger accept it: up to 32 hex digits, either case, left
/// padded with zeros (a 64-bit Jaeger id is the low half). `None` for anything else.
pub fn parse_trace_id(s: &str) -> Option<TraceId> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{s:0>32}");
    let mut id = [0u8; 16];
    for (i, out) in id.iter_mut().enumerate() {
        *out = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}
