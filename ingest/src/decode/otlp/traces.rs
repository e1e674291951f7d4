//! OTLP traces (`ExportTraceServiceRequest`) → [`Span`]s.
//!
//! - Cluster ([`crate::cluster`]): the rule logs follow — the token's cluster > resource
//!   attribute `k8s.cluster.name` > the header cluster; with none, every span of the resource is
//!   refused with a reason saying how to set one.
//! - Ids: `trace_id` 16 bytes and `span_id` 8 bytes, neither all zero (the OTLP spec calls
//!   those invalid); `parent_span_id` empty (a root) or 8 bytes; link ids the same. Anything
//!   else refuses the span.
//! - Times: `start_time_unix_nano` must be set (not 0) and `end_time_unix_nano` not before it;
//!   times beyond `i64::MAX` ns (year 2262) are refused.
//! - Attributes: the scope's, then the span's, as one JSON object (the span's value wins a
//!   repeated key), typed as log attributes are (`super::any_value`); the resource's as another.
//!   At most `ingest.otlp.max_log_attributes` attributes per span, counting resource, scope,
//!   span, event and link attributes together (one limit for every OTLP record).
//! - `service.name`, `http.request.method` (or `http.method`), `http.route` and
//!   `http.response.status_code` (or `http.status_code`) are copied into their columns.
//!
//! Every refusal is per span, counted in `partial_success.rejected_spans` with a reason, and
//! never stops the rest of the request. Never panics on any request.

use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tributary_proto::otlp::common::v1::{KeyValue, any_value};
use tributary_proto::otlp::trace::v1::Span as OtlpSpan;
use tributary_storage::signals::{Span, hex_id};

use super::any_value::{log_text, write_log_attributes};
use super::last_value;
use crate::cluster::ClusterContext;
use crate::decode::{Accepted, Batch, Options as DecodeOptions, Outcome, Prepared, Rejections};
use crate::error::Result;
use crate::head::SignalBlock;
use crate::head::input::{Input, KnownSeries};

/// The decode table's entry for [`crate::record::Kind::OtlpTraces`].
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    _: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    let (spans, rejected) = translate(body.otlp_traces()?, ctx, opts.max_log_attributes);
    let accepted = Accepted {
        spans: spans.len() as u64,
        ..Accepted::default()
    };
    Ok(Batch {
        input: Input {
            signals: SignalBlock {
                spans,
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

/// Translates a request: the accepted spans in request order, and what was refused. Pure: the
/// same request and context give the same spans (replay depends on it).
pub fn translate(
    req: &ExportTraceServiceRequest,
    ctx: &ClusterContext,
    max_attributes: usize,
) -> (Vec<Span>, Rejections) {
    let mut spans = Vec::new();
    let mut rejected = Rejections::default();
    for (ri, rs) in req.resource_spans.iter().enumerate() {
        let attrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| r.attributes.as_slice());
        let total: u64 = rs.scope_spans.iter().map(|s| s.spans.len() as u64).sum();
        let resource = match Resource::new(attrs, ctx) {
            Ok(r) => r,
            Err(reason) => {
                if total > 0 {
                    rejected.spans += total;
                    rejected.add(format!("resource_spans[{ri}]: {total} spans refused: {reason}"));
                }
                continue;
            }
        };
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            let (scope_name, scope_version, scope_attrs) = match &ss.scope {
                Some(s) => (s.name.as_str(), s.version.as_str(), s.attributes.as_slice()),
                None => ("", "", &[][..]),
            };
            for (pi, s) in ss.spans.iter().enumerate() {
                let counted = attrs.len()
                    + scope_attrs.len()
                    + s.attributes.len()
                    + s.events.iter().map(|e| e.attributes.len()).sum::<usize>()
                    + s.links.iter().map(|l| l.attributes.len()).sum::<usize>();
                let span = if counted > max_attributes {
                    Err(format!("{counted} attributes, over the limit of {max_attributes}"))
                } else {
                    span(s, &resource, scope_attrs).map(|mut span| {
                        span.scope_name = scope_name.to_string();
                        span.scope_version = scope_version.to_string();
                        span
                    })
                };
                match span {
                    Ok(span) => spans.push(span),
                    Err(reason) => {
                        rejected.spans += 1;
                        rejected.add(format!("resource_spans[{ri}].scope_spans[{si}].spans[{pi}]: {reason}"));
                    }
                }
            }
        }
    }
    (spans, rejected)
}

/// What every span of one resource shares.
#[derive(Debug)]
struct Resource {
    cluster: String,
    service_name: String,
    attributes_json: String,
}

impl Resource {
    fn new(attrs: &[KeyValue], ctx: &ClusterContext) -> std::result::Result<Self, String> {
        // The sender's own value, when a token overrides it, stays in the resource attributes.
        let (cluster, _) = super::resource_cluster(attrs, ctx)?;
        let mut attributes_json = String::with_capacity(32 * attrs.len() + 2);
        write_log_attributes(&mut attributes_json, &[attrs]).map_err(|e| format!("resource attributes: {e}"))?;
        Ok(Self {
            cluster,
            service_name: last_value(attrs, "service.name")
                .map(|v| log_text(v).unwrap_or_default())
                .unwrap_or_default(),
            attributes_json,
        })
    }
}

/// A string attribute's text, or an int's digits (`http.status_code` is an int, a method a string).
fn attr_text(attrs: &[KeyValue], keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| last_value(attrs, k))
        .map(|v| log_text(v).unwrap_or_default())
        .unwrap_or_default()
}

fn attr_int(attrs: &[KeyValue], keys: &[&str]) -> i64 {
    match keys
        .iter()
        .find_map(|k| last_value(attrs, k))
        .and_then(|v| v.value.as_ref())
    {
        Some(any_value::Value::IntValue(i)) => *i,
        Some(any_value::Value::StringValue(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn id<const N: usize>(bytes: &[u8], what: &str) -> std::result::Result<[u8; N], String> {
    let id: [u8; N] = bytes
        .try_into()
        .map_err(|_| format!("{what} has {} bytes, not {N}", bytes.len()))?;
    Ok(id)
}

fn time(ns: u64, what: &str) -> std::result::Result<i64, String> {
    i64::try_from(ns).map_err(|_| format!("{what} {ns} is beyond year 2262"))
}

fn span(s: &OtlpSpan, resource: &Resource, scope_attrs: &[KeyValue]) -> std::result::Result<Span, String> {
    let trace_id: [u8; 16] = id(&s.trace_id, "trace_id")?;
    let span_id: [u8; 8] = id(&s.span_id, "span_id")?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return Err("trace_id and span_id must not be all zero".into());
    }
    let parent_span_id = if s.parent_span_id.is_empty() {
        [0; 8]
    } else {
        id(&s.parent_span_id, "parent_span_id")?
    };
    if s.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is not set".into());
    }
    let start = time(s.start_time_unix_nano, "start_time_unix_nano")?;
    let end = time(s.end_time_unix_nano, "end_time_unix_nano")?;
    if end < start {
        return Err(format!(
            "end_time_unix_nano {end} is before start_time_unix_nano {start}"
        ));
    }
    let mut attributes = String::with_capacity(32 * (scope_attrs.len() + s.attributes.len()) + 2);
    write_log_attributes(&mut attributes, &[scope_attrs, &s.attributes]).map_err(|e| format!("attributes: {e}"))?;
    let mut events = String::from("[");
    for (i, e) in s.events.iter().enumerate() {
        if i > 0 {
            events.push(',');
        }
        let t = time(e.time_unix_nano, "event time_unix_nano")?;
        events.push_str(&format!(
            r#"{{"time_unix_nano":{t},"name":{},"attributes":"#,
            json_string(&e.name)
        ));
        write_log_attributes(&mut events, &[&e.attributes]).map_err(|err| format!("events[{i}]: {err}"))?;
        events.push('}');
    }
    events.push(']');
    let mut links = String::from("[");
    for (i, l) in s.links.iter().enumerate() {
        if i > 0 {
            links.push(',');
        }
        let trace: [u8; 16] = id(&l.trace_id, "link trace_id")?;
        let span: [u8; 8] = id(&l.span_id, "link span_id")?;
        links.push_str(&format!(
            r#"{{"trace_id":"{}","span_id":"{}","trace_state":{},"attributes":"#,
            hex_id(&trace),
            hex_id(&span),
            json_string(&l.trace_state)
        ));
        write_log_attributes(&mut links, &[&l.attributes]).map_err(|err| format!("links[{i}]: {err}"))?;
        links.push('}');
    }
    links.push(']');
    let (message, code) = s
        .status
        .as_ref()
        .map_or((String::new(), 0), |st| (st.message.clone(), st.code));
    Ok(Span {
        trace_id,
        span_id,
        start,
        cluster: resource.cluster.clone(),
        parent_span_id,
        trace_state: s.trace_state.clone(),
        name: s.name.clone(),
        kind: s.kind.clamp(0, 5),
        duration: end - start,
        status_code: code.clamp(0, 2),
        status_message: message,
        service_name: resource.service_name.clone(),
        http_method: attr_text(&s.attributes, &["http.request.method", "http.method"]),
        http_route: attr_text(&s.attributes, &["http.route"]),
        http_status_code: attr_int(&s.attributes, &["http.response.status_code", "http.status_code"]),
        flags: s.flags,
        scope_name: String::new(),
        scope_version: String::new(),
        attributes,
        resource_attributes: resource.attributes_json.clone(),
        events,
        links,
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests;
