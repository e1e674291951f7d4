//! OTLP logs (`ExportLogsServiceRequest`) → [`LogRecord`]s, mapped the way Loki's OTLP endpoint
//! maps them, so LogQL written for a Loki fed the same data selects the same streams.
//!
//! - Stream labels: `cluster` plus the configured resource attributes ([`Options::stream_attributes`],
//!   Loki's default index labels by default: [`default_stream_attributes`]) that the resource carries,
//!   names normalised like Prometheus label names (`k8s.pod.name` → `k8s_pod_name`: characters
//!   outside `[a-zA-Z0-9_]` become `_`, a leading digit gets `key_`). Non-string values are
//!   written as text (below). When `service.name` is a stream attribute but the resource has none,
//!   the stream gets `service_name="unknown_service"` ([`Options::unknown_service`]) — unless
//!   `service_name` discovery is on, whose rule then names the service from the other stream
//!   labels (`super::super::log_labels`, applied to every protocol). Configured names that
//!   normalise to `cluster` or `exported_cluster` are ignored: the cluster rule owns those.
//! - Cluster ([`crate::cluster`]): the token's cluster > resource attribute `k8s.cluster.name` >
//!   the header cluster > every record of the resource is refused with a reason saying how to set
//!   one. When the token's cluster and `k8s.cluster.name` disagree the token wins and the
//!   attribute's value is kept as `exported_cluster`.
//! - `timestamp` = `time_unix_nano`, or `observed_time_unix_nano` when that is 0 (the OTLP data
//!   model); a record with neither is refused. Loki would use the receive time, but this
//!   translation must be pure (WAL replay runs it again and must get the same records).
//!   Times beyond `i64::MAX` ns (year 2262) are refused.
//! - Body: a string as is; no body → `""`; int, double and bool as their JSON text; bytes as
//!   standard base64 (no quotes); arrays and maps as JSON.
//! - `attributes`: the scope's attributes, then the record's, as one JSON object (Loki flattens
//!   both into structured metadata); on a repeated key the later value wins, in the first key's
//!   position. `resource_attributes`: every resource attribute, the same way. Values keep their
//!   types: strings, bools, ints (JSON integers, exact), doubles (JSON numbers; NaN and ±∞ as the
//!   strings `"NaN"`, `"Infinity"`, `"-Infinity"`), bytes (base64 strings), arrays and maps
//!   (nested JSON), an empty value `null`.
//! - `trace_id`/`span_id`: lower-case hex, `""` when absent or all zero; any length other than
//!   16/8 bytes refuses the record.
//! - Scope name/version, severity number/text, flags and `event_name` are copied.
//!
//! Limits, per record: at most [`Options::max_attributes`] attributes counting resource, scope
//! and record attributes together, a body of at most [`Options::max_body_bytes`], values nested
//! at most 32 deep (`any_value::MAX_DEPTH`). Every refusal is per record, counted in
//! [`TranslatedLogs::rejected_records`] (OTLP's `partial_success.rejected_log_records`) with a
//! reason, and never stops the rest of the request. Never panics on any request.

use std::sync::Arc;

use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::common::v1::KeyValue;
use tributary_proto::otlp::logs::v1::LogRecord as OtlpLogRecord;
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{CLUSTER, EXPORTED_CLUSTER, Label, Labels};

use super::any_value::{log_text, write_log_attributes};
use super::last_value;
use crate::cluster::ClusterContext;
use crate::decode::{Accepted, Batch, Options as DecodeOptions, Outcome, Prepared, Rejections};
use crate::error::Result;
use crate::head::SignalBlock;
use crate::head::input::{Input, KnownSeries};

/// The resource attribute that names a record's own cluster.
pub const CLUSTER_ATTRIBUTE: &str = "k8s.cluster.name";
/// `service.name`, and the stream label value Loki uses when a resource has none.
const SERVICE_NAME_ATTRIBUTE: &str = "service.name";
const SERVICE_NAME_LABEL: &str = "service_name";
const UNKNOWN_SERVICE: &str = "unknown_service";
/// Reasons kept for the response (the count covers every refusal).
const MAX_REASONS: usize = 10;

/// How records are translated.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Resource attributes that become stream labels (names normalised: `.`/`-` → `_`), Loki's
    /// OTLP defaults in [`default_stream_attributes`].
    pub stream_attributes: &'a [String],
    /// Per record, resource + scope + record attributes together; beyond → the record is refused.
    pub max_attributes: usize,
    /// Per record, bytes of the body as stored; beyond → the record is refused.
    pub max_body_bytes: usize,
    /// Bytes of a stream label's value (a promoted resource attribute); beyond → the resource's
    /// records are refused, as a remote-write series with such a label is.
    pub max_label_value_bytes: usize,
    /// Give a resource without `service.name` the stream label `service_name="unknown_service"`
    /// when `service.name` is a stream attribute. The decode table sets this only when
    /// `service_name` discovery is off (discovery falls back to `unknown_service` itself).
    pub unknown_service: bool,
}

/// Loki's default OTLP index labels (resource attributes promoted to stream labels): the
/// default of `ingest.otlp.log_stream_attributes`, defined once, in the configuration.
/// (`k8s.cluster.name`, which Loki also lists, decides `cluster` here instead.)
pub fn default_stream_attributes() -> Vec<String> {
    crate::config::OtlpConfig::default().log_stream_attributes
}

/// The accepted records of one request, in request order, and what was refused.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TranslatedLogs {
    /// The accepted records, in request order.
    pub records: Vec<LogRecord>,
    /// Every refused record (OTLP `partial_success.rejected_log_records`).
    pub rejected_records: u64,
    /// The first few reasons, each naming the record's position in the request.
    pub reasons: Vec<String>,
}

impl TranslatedLogs {
    fn reject(&mut self, count: u64, reason: impl FnOnce() -> String) {
        if count == 0 {
            return;
        }
        self.rejected_records += count;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason());
        }
    }
}

/// The decode table's entry for [`crate::record::Kind::OtlpLogs`], with the record's stream
/// attributes.
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    _: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    let t = translate(
        body.otlp_logs()?,
        ctx,
        &Options {
            stream_attributes: &opts.translation.log_stream_attributes,
            max_attributes: opts.max_log_attributes,
            max_body_bytes: opts.max_log_body_bytes,
            max_label_value_bytes: opts.limits.max_label_value_bytes,
            unknown_service: opts.translation.discover_service_name.is_empty(),
        },
    );
    let accepted = Accepted {
        log_records: t.records.len() as u64,
        ..Accepted::default()
    };
    let rejected = Rejections {
        log_records: t.rejected_records,
        reasons: t.reasons,
        ..Rejections::default()
    };
    Ok(Batch {
        input: Input {
            signals: SignalBlock {
                logs: t.records,
                ..SignalBlock::default()
            },
            ..Input::default()
        },
        outcome: Outcome {
            accepted,
            rejected,
            ..Outcome::default()
        },
    })
}

/// Translates a request. Pure and deterministic: the same request, context and options give
/// the same records.
pub fn translate(req: &ExportLogsServiceRequest, ctx: &ClusterContext, opts: &Options<'_>) -> TranslatedLogs {
    let promoted = promoted_attributes(opts.stream_attributes);
    let wants_service_name = opts.unknown_service && opts.stream_attributes.iter().any(|a| a == SERVICE_NAME_ATTRIBUTE);
    let mut out = TranslatedLogs::default();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        let total: u64 = rl.scope_logs.iter().map(|s| s.log_records.len() as u64).sum();
        let resource_attrs: &[KeyValue] = rl.resource.as_ref().map_or(&[], |r| r.attributes.as_slice());
        let resource = match Resource::new(
            resource_attrs,
            ctx,
            &promoted,
            wants_service_name,
            opts.max_label_value_bytes,
        ) {
            Ok(r) => r,
            Err(reason) => {
                out.reject(total, || {
                    format!("resource_logs[{ri}]: {total} log records refused: {reason}")
                });
                continue;
            }
        };
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let (scope_name, scope_version, scope_attrs) = match &sl.scope {
                Some(s) => (s.name.as_str(), s.version.as_str(), s.attributes.as_slice()),
                None => ("", "", &[][..]),
            };
            for (li, r) in sl.log_records.iter().enumerate() {
                let scope = Scope {
                    name: scope_name,
                    version: scope_version,
                    attributes: scope_attrs,
                };
                match record(r, &resource, resource_attrs.len(), &scope, opts) {
                    Ok(rec) => out.records.push(rec),
                    Err(reason) => out.reject(1, || {
                        format!("resource_logs[{ri}].scope_logs[{si}].log_records[{li}]: {reason}")
                    }),
                }
            }
        }
    }
    out
}

/// Configured stream attributes with their label names, skipping the ones the cluster rule owns
/// and names with no usable character.
fn promoted_attributes(names: &[String]) -> Vec<(&str, String)> {
    names
        .iter()
        .filter(|n| n.as_str() != CLUSTER_ATTRIBUTE)
        .filter_map(|n| {
            let label = label_name(n)?;
            (label != CLUSTER && label != EXPORTED_CLUSTER).then_some((n.as_str(), label))
        })
        .collect()
}

/// A Prometheus-style label name for an attribute key (the rule `otlp_metrics` uses for
/// attribute keys); `None` when nothing usable is left.
pub fn label_name(key: &str) -> Option<String> {
    super::metrics::naming::label_name(key).ok()
}

/// What every record of one resource shares.
#[derive(Debug)]
struct Resource {
    labels: Arc<Labels>,
    attributes_json: Arc<str>,
}

impl Resource {
    fn new(
        attrs: &[KeyValue],
        ctx: &ClusterContext,
        promoted: &[(&str, String)],
        wants_service_name: bool,
        max_label_value_bytes: usize,
    ) -> Result<Self, String> {
        let (cluster, exported) = super::resource_cluster(attrs, ctx)?;
        let mut labels: Vec<Label> = Vec::with_capacity(promoted.len() + 2);
        labels.push(Label::new(CLUSTER, cluster));
        if let Some(exported) = exported {
            labels.push(Label::new(EXPORTED_CLUSTER, exported));
        }
        // Promoted labels first so a repeated normalised name keeps the later attribute's value;
        // cluster labels are pushed again last so nothing can override them.
        let cluster_labels = labels.clone();
        let mut stream: Vec<Label> = Vec::with_capacity(promoted.len() + 3);
        for (attr, label) in promoted {
            if let Some(v) = last_value(attrs, attr) {
                let value = log_text(v).unwrap_or_default();
                if value.len() > max_label_value_bytes {
                    return Err(format!(
                        "resource attribute {attr:?} is {} bytes, over the stream label limit of {}",
                        value.len(),
                        max_label_value_bytes
                    ));
                }
                stream.push(Label::new(label.as_str(), value));
            }
        }
        if wants_service_name
            && !stream
                .iter()
                .any(|l| l.name == SERVICE_NAME_LABEL && !l.value.is_empty())
        {
            stream.push(Label::new(SERVICE_NAME_LABEL, UNKNOWN_SERVICE));
        }
        stream.extend(cluster_labels);
        let mut attributes_json = String::with_capacity(32 * attrs.len() + 2);
        write_log_attributes(&mut attributes_json, &[attrs]).map_err(|e| format!("resource attributes: {e}"))?;
        Ok(Self {
            labels: Arc::new(Labels::new(stream)),
            attributes_json: attributes_json.into(),
        })
    }
}

/// The instrumentation scope of a group of records.
#[derive(Debug)]
struct Scope<'a> {
    name: &'a str,
    version: &'a str,
    attributes: &'a [KeyValue],
}

fn record(
    r: &OtlpLogRecord,
    resource: &Resource,
    resource_attr_count: usize,
    scope: &Scope<'_>,
    opts: &Options<'_>,
) -> Result<LogRecord, String> {
    let count = resource_attr_count
        .saturating_add(scope.attributes.len())
        .saturating_add(r.attributes.len());
    if count > opts.max_attributes {
        return Err(format!(
            "{count} attributes (resource {resource_attr_count}, scope {}, record {}), the limit is {}",
            scope.attributes.len(),
            r.attributes.len(),
            opts.max_attributes
        ));
    }
    let time = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    if time == 0 {
        return Err("neither time_unix_nano nor observed_time_unix_nano is set".to_string());
    }
    let timestamp = i64::try_from(time).map_err(|_| format!("timestamp {time} ns is after the year 2262"))?;
    let observed_timestamp = i64::try_from(r.observed_time_unix_nano).map_err(|_| {
        format!(
            "observed timestamp {} ns is after the year 2262",
            r.observed_time_unix_nano
        )
    })?;
    let trace_id = hex_id(&r.trace_id, 16).map_err(|n| format!("trace_id has {n} bytes, OTLP requires 16"))?;
    let span_id = hex_id(&r.span_id, 8).map_err(|n| format!("span_id has {n} bytes, OTLP requires 8"))?;
    let body = match &r.body {
        Some(v) => log_text(v).map_err(|e| format!("body: {e}"))?,
        None => String::new(),
    };
    if body.len() > opts.max_body_bytes {
        return Err(format!(
            "body is {} bytes, the limit is {}",
            body.len(),
            opts.max_body_bytes
        ));
    }
    let mut attributes = String::with_capacity(2 + 32 * (scope.attributes.len() + r.attributes.len()));
    write_log_attributes(&mut attributes, &[scope.attributes, &r.attributes])
        .map_err(|e| format!("attributes: {e}"))?;
    Ok(LogRecord {
        // The resource's one copy of each (see `LogRecord`).
        labels: resource.labels.clone(),
        timestamp,
        observed_timestamp,
        severity_number: r.severity_number,
        severity_text: r.severity_text.clone(),
        body,
        trace_id,
        span_id,
        flags: r.flags,
        attributes,
        resource_attributes: resource.attributes_json.clone(),
        scope_name: scope.name.to_string(),
        scope_version: scope.version.to_string(),
        event_name: r.event_name.clone(),
    })
}

/// Lower-case hex of an id of `len` bytes; `""` when empty or all zero (OTLP's "no id").
/// `Err(actual length)` for any other length.
fn hex_id(id: &[u8], len: usize) -> Result<String, usize> {
    if id.is_empty() || (id.len() == len && id.iter().all(|b| *b == 0)) {
        return Ok(String::new());
    }
    if id.len() != len {
        return Err(id.len());
    }
    Ok(hex::encode(id))
}

#[cfg(test)]
mod tests;
