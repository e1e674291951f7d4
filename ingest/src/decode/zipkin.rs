//! Zipkin v2 JSON (`POST /api/v2/spans`, a JSON array of spans) → [`Span`]s, mapped the way the
//! OpenTelemetry Collector's Zipkin receiver maps them, so a trace sent either way reads the same.
//!
//! - Ids: `traceId` 16 or 32 hex digits (a 64-bit id is the low half), `id` and `parentId` 16;
//!   all-zero or malformed ids refuse the span.
//! - Times: `timestamp` and `duration` are microseconds; a span without `timestamp` (or with 0)
//!   is refused.
//! - `localEndpoint.serviceName` is `service.name` (a resource attribute); `remoteEndpoint`
//!   becomes `peer.service`, `net.peer.ip` and `net.peer.port` span attributes.
//! - `kind` `SERVER`/`CLIENT`/`PRODUCER`/`CONSUMER` map to OTLP's kinds, absent to internal.
//! - `tags` are string span attributes. A tag `error` makes the status error, its value the
//!   message (the Collector's rule); `otel.status_code`/`otel.status_description` are honoured.
//! - `annotations` are events named by their `value`.
//! - Cluster: the token's cluster > a `k8s.cluster.name` tag > the header cluster (Zipkin has
//!   no resource); without one the span is refused with how to set one.
//!
//! Limits as OTLP spans: at most `ingest.otlp.max_log_attributes` tags and annotations per span.
//! Every refusal is per span and never stops the rest; a body that is not a JSON array of
//! objects is refused whole.

use std::collections::BTreeMap;

use serde::Deserialize;
use tributary_storage::signals::{Span, parse_trace_id};

use crate::cluster::{ClusterContext, Stamp};
use crate::decode::{Accepted, Batch, Options, Outcome, Prepared, Rejections};
use crate::error::{Error, Result};
use crate::head::SignalBlock;
use crate::head::input::{Input, KnownSeries};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Annotation {
    #[serde(default)]
    timestamp: u64,
    #[serde(default)]
    value: String,
}

/// The decode table's entry for [`crate::record::Kind::ZipkinJson`].
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &Options<'_>,
    _: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    let (out, rejected) = translate(body.bytes()?, ctx, opts.max_log_attributes)?;
    Ok(Batch {
        outcome: Outcome {
            accepted: Accepted {
                spans: out.len() as u64,
                ..Accepted::default()
            },
            rejected,
            ..Outcome::default()
        },
        input: Input {
            signals: SignalBlock {
                spans: out,
                ..SignalBlock::default()
            },
            ..Input::default()
        },
    })
}

/// Translates a (decompressed) body: the accepted spans in body order, and what was refused.
/// `Err` only when the body is not a JSON array. Pure: replay gives the same spans.
pub fn translate(json: &[u8], ctx: &ClusterContext, max_attributes: usize) -> Result<(Vec<Span>, Rejections)> {
    let spans: Vec<serde_json::Value> = serde_json::from_slice(json)
        .map_err(|e| Error::InvalidInput(format!("body is not a Zipkin v2 JSON array of spans: {e}")))?;
    let mut out = Vec::with_capacity(spans.len());
    let mut rejected = Rejections::default();
    for (i, raw) in spans.into_iter().enumerate() {
        let result = serde_json::from_value::<ZipkinSpan>(raw)
            .map_err(|e| format!("not a Zipkin span: {e}"))
            .and_then(|z| span(z, ctx, max_attributes));
        match result {
            Ok(s) => out.push(s),
            Err(reason) => {
                rejected.spans += 1;
                rejected.add(format!("spans[{i}]: {reason}"));
            }
        }
    }
    Ok((out, rejected))
}

fn id<const N: usize>(hex: &str, what: &str) -> std::result::Result<[u8; N], String> {
    let ok = hex.len() == 2 * N || (N == 16 && hex.len() == 16);
    let full = parse_trace_id(hex)
        .filter(|_| ok)
        .ok_or_else(|| format!("{what} {hex:?} is not {} hex digits", 2 * N))?;
    let id: [u8; N] = full[16 - N..].try_into().map_err(|_| format!("{what} {hex:?}"))?;
    if id == [0; N] {
        return Err(format!("{what} must not be all zero"));
    }
    Ok(id)
}

fn json_object(pairs: impl IntoIterator<Item = (String, serde_json::Value)>) -> String {
    serde_json::Value::Object(pairs.into_iter().collect()).to_string()
}

fn span(z: ZipkinSpan, ctx: &ClusterContext, max_attributes: usize) -> std::result::Result<Span, String> {
    if z.tags.len() + z.annotations.len() > max_attributes {
        return Err(format!(
            "{} tags and annotations, over the limit of {max_attributes}",
            z.tags.len() + z.annotations.len()
        ));
    }
    let trace_id: [u8; 16] = id(&z.trace_id, "traceId")?;
    let span_id: [u8; 8] = id(&z.id, "id")?;
    let parent_span_id = match z.parent_id.as_deref() {
        None | Some("") => [0; 8],
        Some(p) => id(p, "parentId")?,
    };
    let us =
        |v: u64, what: &str| i64::try_from(v.saturating_mul(1_000)).map_err(|_| format!("{what} is beyond year 2262"));
    // Zipkin's own model reads 0 as absent, as OTLP's decoder reads a zero start.
    let start = us(
        z.timestamp.filter(|&t| t > 0).ok_or("timestamp is not set")?,
        "timestamp",
    )?;
    let duration = us(z.duration.unwrap_or(0), "duration")?;
    let own = z.tags.get("k8s.cluster.name").filter(|c| !c.is_empty()).cloned();
    let cluster = match ctx.decide(own.as_deref())? {
        Some(Stamp::Keep) => own.unwrap_or_default(),
        Some(Stamp::Insert(c)) | Some(Stamp::Replace { cluster: c, .. }) => c.to_string(),
        None => {
            return Err(
                "no cluster: add a k8s.cluster.name tag, send the X-Tributary-Cluster header (or the \
                        configured cluster_header), or authenticate with a token mapped to a cluster"
                    .into(),
            );
        }
    };
    let local = z.local_endpoint.unwrap_or_default();
    let service_name = local.service_name.unwrap_or_default();
    let (mut status_code, mut status_message) = (0, String::new());
    if let Some(e) = z.tags.get("error") {
        (status_code, status_message) = (2, e.clone());
    }
    match z.tags.get("otel.status_code").map(String::as_str) {
        Some("ERROR") => status_code = 2,
        Some("OK") => status_code = 1,
        _ => {}
    }
    if let Some(d) = z.tags.get("otel.status_description") {
        status_message = d.clone();
    }
    let mut attrs: Vec<(String, serde_json::Value)> =
        z.tags.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    if let Some(r) = z.remote_endpoint {
        attrs.extend(r.service_name.map(|s| ("peer.service".to_string(), s.into())));
        attrs.extend(r.ipv4.or(r.ipv6).map(|ip| ("net.peer.ip".to_string(), ip.into())));
        attrs.extend(r.port.map(|p| ("net.peer.port".to_string(), i64::from(p).into())));
    }
    let mut events = Vec::with_capacity(z.annotations.len());
    for a in &z.annotations {
        events.push(serde_json::json!({
            "time_unix_nano": us(a.timestamp, "annotation timestamp")?,
            "name": a.value,
            "attributes": {},
        }));
    }
    let tag = |k: &str| z.tags.get(k).cloned().unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        start,
        cluster,
        parent_span_id,
        trace_state: String::new(),
        name: z.name.unwrap_or_default(),
        kind: match z.kind.as_deref() {
            Some("SERVER") => 2,
            Some("CLIENT") => 3,
            Some("PRODUCER") => 4,
            Some("CONSUMER") => 5,
            _ => 1,
        },
        duration,
        status_code,
        status_message,
        http_method: [tag("http.request.method"), tag("http.method")]
            .into_iter()
            .find(|v| !v.is_empty())
            .unwrap_or_default(),
        http_route: tag("http.route"),
        http_status_code: [tag("http.response.status_code"), tag("http.status_code")]
            .iter()
            .find_map(|v| v.parse().ok())
            .unwrap_or(0),
        flags: 0,
        scope_name: String::new(),
        scope_version: String::new(),
        attributes: json_object(attrs),
        resource_attributes: json_object(
            (!service_name.is_empty()).then(|| ("service.name".to_string(), service_name.clone().into())),
        ),
        service_name,
        events: serde_json::Value::Array(events).to_string(),
        links: "[]".into(),
    })
}

#[cfg(test)]
mod tests;
