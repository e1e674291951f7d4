//! Hand-built OTLP request bodies for `requests`: metrics, logs and traces, and the malformed
//! variants the bad-input tests send.

use prost::Message;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use tributary_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tributary_proto::otlp::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

pub(super) fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

pub(super) fn gauge(name: &str, attributes: Vec<KeyValue>, t_ns: u64, v: f64) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes,
                time_unix_nano: t_ns,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

pub(super) fn resource_metrics(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn metrics_request(resources: Vec<ResourceMetrics>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: resources,
    }
}

pub(super) fn log_record(t_ns: u64, body: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: t_ns,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        attributes,
        ..Default::default()
    }
}

pub(super) fn logs_request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Replaces the (unique) ASCII `marker` in an encoded message with bytes of the same length that
/// are not UTF-8, so the protobuf framing stays valid and only the string is wrong.
pub(super) fn with_invalid_utf8(mut encoded: Vec<u8>, marker: &str) -> Vec<u8> {
    let m = marker.as_bytes();
    let at = encoded
        .windows(m.len())
        .position(|w| w == m)
        .expect("marker in the encoding");
    encoded[at] = 0xff;
    encoded[at + 1] = 0xfe;
    encoded
}

/// A span of a fixed trace, distinct per name, with `attributes`.
pub(super) fn span(t: u64, name: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![0x7f; 16],
        span_id: name.bytes().chain(std::iter::repeat(1)).take(8).collect(),
        name: name.into(),
        start_time_unix_nano: t,
        end_time_unix_nano: t + 1_000,
        attributes,
        ..Span::default()
    }
}

pub(super) fn traces_request(spans: Vec<Span>) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

/// 100,000 distinct attributes.
pub(super) fn huge_attributes() -> Vec<KeyValue> {
    (0..100_000).map(|i| kv(&format!("attr_{i}"), "v")).collect()
}
