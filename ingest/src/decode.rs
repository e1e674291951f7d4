//! The edge: wire bytes in, one domain `Batch` out, through one decode table.
//!
//! Every protocol decodes here and only here, in two steps that every write and every WAL replay
//! share:
//!
//! 1. **Unwrap** (`Body::prepare` for a live request, `Prepared::from_wal` for a WAL record):
//!    check the content type and encoding a surface received, undo the compression (snappy,
//!    gzip) under a size limit, and parse what must be parsed before validation (OTLP/JSON).
//!    This happens before the ingester takes its gate.
//! 2. **Decode** (`decode::decode`): the decode table sends the unwrapped body to its protocol's decoder,
//!    chosen by the record [`Kind`], which validates everything a sender controls and returns
//!    one `Batch`: the head's [`Input`](crate::head::input::Input) (float series — zero-copy
//!    for remote-write —, native histograms, exemplars, metadata, log records) plus the
//!    protocol-neutral [`Outcome`] (accepted counts, and every rejection with a reason). Valid
//!    data beside a bad series is kept: a remote-write 400 is not retried.
//!
//! Every decoded log record then passes [`log_labels`] (Loki 3's `service_name` and
//! `detected_level`), whatever its protocol, live or replayed.
//!
//! How a body decodes is decided by its [`Kind`], the cluster context, the [`Limits`] (unbounded
//! on replay) and the [`Translation`] settings, which the WAL record stores so replay reproduces
//! what was acknowledged.
//!
//! Protocol types (`tributary_proto`) never leave this module. The one exception at its API
//! surface is OTLP/gRPC: tonic hands the service a decoded request struct, and re-encoding it to
//! protobuf only to parse it again would cost CPU for nothing, so the gRPC service passes the
//! struct to [`Body::otlp_metrics_request`] / [`Body::otlp_logs_request`]. A [`Body`] is opaque,
//! so the ingester and the head never see a protocol type.
//!
//! # Adding a protocol
//! 1. Give it a [`Kind`] with the next number in `record.rs` (and its line in the record
//!    format's table there).
//! 2. Add its decoder as one file under `decode/`, ending in a
//!    `fn decode_batch(&Prepared, &ClusterContext, &Options, &dyn KnownSeries) -> Result<Batch>`.
//! 3. Add its line to the decode table (`decoder`) and, if it is unwrapped differently from a
//!    snappy block, to `Body::prepare` / `Prepared::from_wal`.
//! 4. Give it a [`Body`] constructor and a route in `http` or `grpc`, and its answer in
//!    `http::error`.

pub mod batch;
pub mod compression;
pub mod limits;
pub mod log_labels;
pub mod loki;
pub mod otlp;
pub mod remote_write;
pub mod wire;
pub mod zipkin;

use std::borrow::Cow;

use bytes::Bytes;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

pub(crate) use self::batch::Batch;
pub use self::batch::{Accepted, Outcome, Rejections};
pub use self::compression::snappy_block;
pub use self::limits::{Limits, MAX_STORABLE_MS, MIN_STORABLE_MS};
use self::otlp::BodyFormat;
use crate::cluster::ClusterContext;
use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::head::input::KnownSeries;
pub use crate::record::Kind;

/// Everything beyond the validation limits that decides how a body translates into series and
/// streams. Fixed when a record is acknowledged and stored in it (WAL record format version 2),
/// so replay translates the record exactly as the write did, whatever the configuration is now.
///
/// A record stores only the fields its [`Kind`] reads; the others are their defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translation {
    /// OTLP metrics: append unit and type suffixes to metric names.
    pub add_metric_suffixes: bool,
    /// OTLP metrics: resource attributes copied onto every series as labels.
    pub promote_resource_attributes: Vec<String>,
    /// OTLP logs: resource attributes that become a record's stream labels.
    pub log_stream_attributes: Vec<String>,
    /// Every log kind: the stream labels `service_name` is taken from (see [`log_labels`]);
    /// empty = off.
    pub discover_service_name: Vec<String>,
    /// Every log kind: derive `detected_level` (see [`log_labels`]).
    pub discover_log_levels: bool,
}

impl Translation {
    /// The settings the configuration asks for now.
    pub fn from_config(cfg: &IngestConfig) -> Self {
        Self {
            add_metric_suffixes: cfg.otlp.add_metric_suffixes,
            promote_resource_attributes: cfg.otlp.promote_resource_attributes.clone(),
            log_stream_attributes: cfg.otlp.log_stream_attributes.clone(),
            discover_service_name: cfg.logs.discover_service_name.clone(),
            discover_log_levels: cfg.logs.discover_log_levels,
        }
    }
}

/// How to decode: limits (what a sender may send) and translation (how it maps).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options<'a> {
    /// Label limits of every series and stream.
    pub(crate) limits: Limits,
    /// Most attributes (resource, scope and record together) one OTLP log record may carry.
    pub(crate) max_log_attributes: usize,
    /// Longest OTLP log body or Loki line, in bytes.
    pub(crate) max_log_body_bytes: usize,
    /// How OTLP translates.
    pub(crate) translation: &'a Translation,
}

impl<'a> Options<'a> {
    /// What replay uses: every limit unbounded (data accepted under older limits must not be lost
    /// when an operator lowers them), with the record's translation.
    pub(crate) fn unbounded(translation: &'a Translation) -> Self {
        Self {
            limits: Limits::UNBOUNDED,
            max_log_attributes: usize::MAX,
            max_log_body_bytes: usize::MAX,
            translation,
        }
    }
}

/// A protocol's entry in the decode table.
pub(crate) type Decoder =
    for<'a> fn(&'a Prepared, &'a ClusterContext, &Options<'_>, &dyn KnownSeries) -> Result<Batch<'a>>;

/// The decode table: one decoder per protocol.
pub(crate) fn decoder(kind: Kind) -> Decoder {
    match kind {
        Kind::PromRemoteWriteV1 => remote_write::v1::decode_batch,
        Kind::PromRemoteWriteV2 => remote_write::v2::decode_batch,
        Kind::OtlpMetrics => otlp::metrics::decode_batch,
        Kind::OtlpLogs => otlp::logs::decode_batch,
        Kind::LokiPushProtobuf => loki::decode_protobuf_batch,
        Kind::LokiPushJson => loki::decode_json_batch,
        Kind::OtlpTraces => otlp::traces::decode_batch,
        Kind::ZipkinJson => zipkin::decode_batch,
    }
}

/// Decodes an unwrapped body through the decode table. `known` answers the remote-write fast
/// path's lookups (see [`crate::head::input`]); `Err` only when the body cannot be trusted at all.
pub(crate) fn decode<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &Options<'_>,
    known: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    let mut batch = decoder(body.kind)(body, ctx, opts, known)?;
    // The one place every log record passes, whatever its protocol, live or replayed.
    log_labels::discover(&mut batch.input.signals.logs, opts.translation);
    Ok(batch)
}

/// A request body as a surface received it, with its protocol: opaque, so the ingester never
/// sees a protocol type.
#[derive(Debug)]
pub struct Body {
    kind: Kind,
    content: Content,
}

#[derive(Debug)]
enum Content {
    /// Bytes as received: a snappy block for remote-write and Loki protobuf, otherwise plain or
    /// gzip-compressed (`gzip`) in the kind's own format (OTLP: `format`).
    Wire {
        bytes: Bytes,
        gzip: bool,
        format: BodyFormat,
    },
    /// An OTLP/gRPC request tonic has already decoded.
    OtlpMetrics(Box<ExportMetricsServiceRequest>),
    /// An OTLP/gRPC request tonic has already decoded.
    OtlpLogs(Box<ExportLogsServiceRequest>),
    /// An OTLP/gRPC request tonic has already decoded.
    OtlpTraces(Box<ExportTraceServiceRequest>),
}

/// The `proto` parameter that selects remote-write 2.0.
const RW2_MESSAGE: &str = "io.prometheus.write.v2.Request";

impl Body {
    /// A remote-write body: 1.0 is snappy-compressed `prometheus.WriteRequest`; 2.0 is
    /// negotiated by the content type's `proto` parameter. Any other message, or an encoding
    /// other than snappy, gets the 415 the 2.0 spec asks for.
    pub fn remote_write(bytes: Bytes, content_type: Option<&str>, content_encoding: Option<&str>) -> Result<Self> {
        let mut kind = Kind::PromRemoteWriteV1;
        if let Some(ct) = content_type {
            let proto = ct.split(';').map(str::trim).find_map(|p| p.strip_prefix("proto="));
            match proto {
                None | Some("prometheus.WriteRequest") => {}
                Some(RW2_MESSAGE) => kind = Kind::PromRemoteWriteV2,
                Some(other) => {
                    return Err(Error::UnsupportedMediaType(format!(
                        "remote-write message {other} is not supported; send prometheus.WriteRequest (1.0) or {RW2_MESSAGE} (2.0)"
                    )));
                }
            }
        }
        if let Some(enc) = content_encoding
            && !enc.eq_ignore_ascii_case("snappy")
        {
            return Err(Error::UnsupportedMediaType(format!(
                "content encoding {enc:?} is not supported; remote-write bodies are snappy block-compressed"
            )));
        }
        Ok(Self::wire(kind, bytes, false, BodyFormat::Protobuf))
    }

    /// A Loki push body: snappy protobuf `logproto.PushRequest` (the default, as Promtail marks
    /// nothing), or JSON, plain or gzip-compressed.
    pub fn loki_push(bytes: Bytes, content_type: &str, content_encoding: &str) -> Result<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let kind = match essence.as_str() {
            "application/x-protobuf" | "" => Kind::LokiPushProtobuf,
            "application/json" => Kind::LokiPushJson,
            _ => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content type {content_type:?} is not a Loki push body; send application/x-protobuf (snappy) or application/json"
                )));
            }
        };
        let gzip = match (kind, content_encoding.trim().to_ascii_lowercase().as_str()) {
            (Kind::LokiPushProtobuf, "" | "snappy") | (Kind::LokiPushJson, "" | "identity") => false,
            (Kind::LokiPushJson, "gzip") => true,
            (_, other) => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content encoding {other:?} is not supported for this Loki push body"
                )));
            }
        };
        Ok(Self::wire(kind, bytes, gzip, BodyFormat::Json))
    }

    /// An OTLP/HTTP body for `kind` ([`Kind::OtlpMetrics`], [`Kind::OtlpLogs`] or [`Kind::OtlpTraces`]):
    /// `application/x-protobuf` or `application/json`, plain or gzip-compressed.
    pub fn otlp_http(kind: Kind, bytes: Bytes, content_type: &str, content_encoding: &str) -> Result<Self> {
        debug_assert!(
            matches!(kind, Kind::OtlpMetrics | Kind::OtlpLogs | Kind::OtlpTraces),
            "{kind:?} is not OTLP"
        );
        let format = BodyFormat::from_content_type(content_type).ok_or_else(|| {
            Error::UnsupportedMediaType(format!(
                "content type {content_type:?} is not OTLP/HTTP; send application/x-protobuf or application/json"
            ))
        })?;
        let gzip = match content_encoding.trim() {
            "" | "identity" => false,
            e if e.eq_ignore_ascii_case("gzip") => true,
            other => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content encoding {other:?} is not supported; OTLP/HTTP bodies may be gzip-compressed"
                )));
            }
        };
        Ok(Self::wire(kind, bytes, gzip, format))
    }

    /// An OTLP/gRPC metrics export, as tonic decoded it.
    pub fn otlp_metrics_request(req: ExportMetricsServiceRequest) -> Self {
        Self {
            kind: Kind::OtlpMetrics,
            content: Content::OtlpMetrics(Box::new(req)),
        }
    }

    /// An OTLP/gRPC logs export, as tonic decoded it.
    pub fn otlp_logs_request(req: ExportLogsServiceRequest) -> Self {
        Self {
            kind: Kind::OtlpLogs,
            content: Content::OtlpLogs(Box::new(req)),
        }
    }

    /// A Zipkin v2 JSON body (`application/json`, or none), plain or gzip-compressed.
    pub fn zipkin(bytes: Bytes, content_type: &str, content_encoding: &str) -> Result<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(essence.as_str(), "application/json" | "") {
            return Err(Error::UnsupportedMediaType(format!(
                "content type {content_type:?} is not a Zipkin body; send application/json (Zipkin v2 JSON)"
            )));
        }
        let gzip = match content_encoding.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => false,
            "gzip" => true,
            other => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content encoding {other:?} is not supported; Zipkin bodies may be gzip-compressed"
                )));
            }
        };
        Ok(Self::wire(Kind::ZipkinJson, bytes, gzip, BodyFormat::Json))
    }

    /// An OTLP/gRPC traces export, as tonic decoded it.
    pub fn otlp_traces_request(req: ExportTraceServiceRequest) -> Self {
        Self {
            kind: Kind::OtlpTraces,
            content: Content::OtlpTraces(Box::new(req)),
        }
    }

    fn wire(kind: Kind, bytes: Bytes, gzip: bool, format: BodyFormat) -> Self {
        Self {
            kind,
            content: Content::Wire { bytes, gzip, format },
        }
    }

    /// The protocol.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Bytes as sent, for the body-size limit (`None` for a request tonic decoded, whose size
    /// tonic limits).
    pub fn received_len(&self) -> Option<usize> {
        match &self.content {
            Content::Wire { bytes, .. } => Some(bytes.len()),
            _ => None,
        }
    }

    /// Step 1, unwrap: decompress (refusing more than `limit` bytes) and parse what must be
    /// parsed before validation.
    pub(crate) fn prepare(self, limit: usize) -> Result<Prepared> {
        let kind = self.kind;
        let (bytes, gzip, format) = match self.content {
            Content::OtlpMetrics(req) => return Ok(Prepared::new(kind, Form::OtlpMetrics(req))),
            Content::OtlpLogs(req) => return Ok(Prepared::new(kind, Form::OtlpLogs(req))),
            Content::OtlpTraces(req) => return Ok(Prepared::new(kind, Form::OtlpTraces(req))),
            Content::Wire { bytes, gzip, format } => (bytes, gzip, format),
        };
        let plain = if gzip {
            Bytes::from(compression::gunzip(&bytes, limit)?)
        } else {
            bytes.clone()
        };
        Ok(match kind {
            // Kept in the WAL as received (still snappy): ~27 B per remote-write sample.
            Kind::PromRemoteWriteV1 | Kind::PromRemoteWriteV2 | Kind::LokiPushProtobuf => Prepared {
                kind,
                form: Form::Bytes(compression::snappy_block_reused(&bytes, limit)?),
                received: Some(bytes),
            },
            Kind::LokiPushJson | Kind::ZipkinJson => Prepared::new(kind, Form::Bytes(plain)),
            Kind::OtlpMetrics => Prepared::new(kind, Form::OtlpMetrics(Box::new(otlp::parse(&plain, format)?))),
            Kind::OtlpLogs => Prepared::new(kind, Form::OtlpLogs(Box::new(otlp::parse(&plain, format)?))),
            Kind::OtlpTraces => Prepared::new(kind, Form::OtlpTraces(Box::new(otlp::parse(&plain, format)?))),
        })
    }
}

/// A body ready for the decode table: decompressed, and parsed where that must come first.
#[derive(Debug)]
pub(crate) struct Prepared {
    kind: Kind,
    form: Form,
    /// The body as received, when that is what the WAL keeps.
    received: Option<Bytes>,
}

#[derive(Debug)]
enum Form {
    /// What the kind's decoder reads: decompressed protobuf or JSON.
    Bytes(Bytes),
    OtlpMetrics(Box<ExportMetricsServiceRequest>),
    OtlpLogs(Box<ExportLogsServiceRequest>),
    OtlpTraces(Box<ExportTraceServiceRequest>),
}

impl Prepared {
    fn new(kind: Kind, form: Form) -> Self {
        Self {
            kind,
            form,
            received: None,
        }
    }

    /// Step 1 for replay: a WAL record's body (always a snappy block, see `record.rs`),
    /// decompressed to at most `bound` bytes.
    pub(crate) fn from_wal(kind: Kind, body: &[u8], bound: usize) -> Result<Self> {
        let raw = snappy_block(body, bound)?;
        let form = match kind {
            Kind::OtlpMetrics => Form::OtlpMetrics(Box::new(otlp::parse(&raw, BodyFormat::Protobuf)?)),
            Kind::OtlpLogs => Form::OtlpLogs(Box::new(otlp::parse(&raw, BodyFormat::Protobuf)?)),
            Kind::OtlpTraces => Form::OtlpTraces(Box::new(otlp::parse(&raw, BodyFormat::Protobuf)?)),
            _ => Form::Bytes(Bytes::from(raw)),
        };
        Ok(Self::new(kind, form))
    }

    /// The protocol.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// What the WAL record keeps (see `record.rs`): a snappy block, as received when it arrived
    /// as one, else compressed here (OTLP re-encoded as protobuf whatever it arrived as).
    pub(crate) fn wal_body(&self) -> Result<Cow<'_, [u8]>> {
        if let Some(received) = &self.received {
            return Ok(Cow::Borrowed(received));
        }
        Ok(Cow::Owned(match &self.form {
            Form::Bytes(raw) => compression::snappy_compress(raw)?,
            Form::OtlpMetrics(req) => otlp::to_wal_body(req.as_ref())?,
            Form::OtlpLogs(req) => otlp::to_wal_body(req.as_ref())?,
            Form::OtlpTraces(req) => otlp::to_wal_body(req.as_ref())?,
        }))
    }

    /// The decompressed bytes, for decoders that read bytes.
    pub(crate) fn bytes(&self) -> Result<&[u8]> {
        match &self.form {
            Form::Bytes(b) => Ok(b),
            _ => Err(self.mismatch()),
        }
    }

    /// The OTLP metrics request, for its decoder.
    pub(crate) fn otlp_metrics(&self) -> Result<&ExportMetricsServiceRequest> {
        match &self.form {
            Form::OtlpMetrics(r) => Ok(r),
            _ => Err(self.mismatch()),
        }
    }

    /// The OTLP logs request, for its decoder.
    pub(crate) fn otlp_logs(&self) -> Result<&ExportLogsServiceRequest> {
        match &self.form {
            Form::OtlpLogs(r) => Ok(r),
            _ => Err(self.mismatch()),
        }
    }

    /// The OTLP traces request, for its decoder.
    pub(crate) fn otlp_traces(&self) -> Result<&ExportTraceServiceRequest> {
        match &self.form {
            Form::OtlpTraces(r) => Ok(r),
            _ => Err(self.mismatch()),
        }
    }

    /// `prepare` and `from_wal` build the form the kind's decoder reads; reaching this is a bug.
    fn mismatch(&self) -> Error {
        Error::Unavailable(format!(
            "internal: a {:?} body was unwrapped into the wrong form",
            self.kind
        ))
    }
}
