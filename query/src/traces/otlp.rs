//! A trace as OTLP: spans grouped into `ResourceSpans` (by cluster and resource attributes) and
//! `ScopeSpans` (by scope), attributes turned back from JSON into `AnyValue`s. What Tempo's
//! trace-by-id answers carry (`tempopb.Trace` is wire-compatible with OTLP's `TracesData`).
//!
//! JSON gives values back their types except bytes, which the store keeps as base64 text.

use std::collections::BTreeMap;

use tributary_proto::otlp::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_proto::otlp::trace::v1::span::{Event, Link};
use tributary_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, TracesData};
use tributary_storage::signals::{Span, parse_trace_id};

/// OTLP `SpanKind`'s TraceQL name.
pub(crate) fn kind_name(kind: i32) -> &'static str {
    ["unspecified", "internal", "server", "client", "producer", "consumer"]
        .get(kind as usize)
        .copied()
        .unwrap_or("unspecified")
}

/// JSON (as stored) → `AnyValue`.
pub(crate) fn any_value(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        J::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        J::String(s) => Some(any_value::Value::StringValue(s.clone())),
        J::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(any_value).collect(),
        })),
        J::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: key_values_of(m),
        })),
    };
    AnyValue { value }
}

fn key_values_of(m: &serde_json::Map<String, serde_json::Value>) -> Vec<KeyValue> {
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(any_value(v)),
            ..KeyValue::default()
        })
        .collect()
}

/// A stored JSON object's attributes.
pub(crate) fn key_values(json: &str) -> Vec<KeyValue> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
        .map(|m| key_values_of(&m))
        .unwrap_or_default()
}

fn id_bytes(hex: &str, len: usize) -> Vec<u8> {
    parse_trace_id(hex).map_or_else(Vec::new, |id| id[16 - len..].to_vec())
}

/// One span as OTLP.
pub(crate) fn span(s: &Span) -> OtlpSpan {
    let events: Vec<serde_json::Value> = serde_json::from_str(&s.events).unwrap_or_default();
    let links: Vec<serde_json::Value> = serde_json::from_str(&s.links).unwrap_or_default();
    let attrs = |v: &serde_json::Value| v["attributes"].as_object().map(key_values_of).unwrap_or_default();
    OtlpSpan {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: if s.parent_span_id == [0; 8] {
            Vec::new()
        } else {
            s.parent_span_id.to_vec()
        },
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind,
        start_time_unix_nano: s.start as u64,
        end_time_unix_nano: s.end() as u64,
        attributes: key_values(&s.attributes),
        events: events
            .iter()
            .map(|e| Event {
                time_unix_nano: e["time_unix_nano"].as_u64().unwrap_or(0),
                name: e["name"].as_str().unwrap_or("").to_string(),
                attributes: attrs(e),
                ..Event::default()
            })
            .collect(),
        links: links
            .iter()
            .map(|l| Link {
                trace_id: id_bytes(l["trace_id"].as_str().unwrap_or(""), 16),
                span_id: id_bytes(l["span_id"].as_str().unwrap_or(""), 8),
                trace_state: l["trace_state"].as_str().unwrap_or("").to_string(),
                attributes: attrs(l),
                ..Link::default()
            })
            .collect(),
        status: (s.status_code != 0 || !s.status_message.is_empty()).then(|| Status {
            message: s.status_message.clone(),
            code: s.status_code,
        }),
        ..OtlpSpan::default()
    }
}

/// Spans by (scope name, version).
type ByScope<'a> = BTreeMap<(&'a str, &'a str), Vec<OtlpSpan>>;

/// A trace's spans grouped by resource and scope, in span order within each group.
pub(crate) fn traces_data(spans: &[Span]) -> TracesData {
    let mut by_resource: BTreeMap<(&str, &str), ByScope<'_>> = BTreeMap::new();
    for s in spans {
        by_resource
            .entry((&s.cluster, &s.resource_attributes))
            .or_default()
            .entry((&s.scope_name, &s.scope_version))
            .or_default()
            .push(span(s));
    }
    TracesData {
        resource_spans: by_resource
            .into_iter()
            .map(|((_, resource), scopes)| ResourceSpans {
                resource: Some(Resource {
                    attributes: key_values(resource),
                    ..Resource::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|((name, version), spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: name.to_string(),
                            version: version.to_string(),
                            ..InstrumentationScope::default()
                        }),
                        spans,
                        ..ScopeSpans::default()
                    })
                    .collect(),
                ..ResourceSpans::default()
            })
            .collect(),
    }
}
