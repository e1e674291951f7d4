//! The logs workload as a Loki client sends it (`--transport loki`): the same records, pushed
//! to `POST /loki/api/v1/push` as a snappy-compressed `logproto.PushRequest`, the body Promtail
//! and Grafana Alloy's `loki.write` send.
//!
//! Each record's stream is labelled the way Kubernetes discovery labels a container's log file:
//! `cluster`, `namespace`, `pod`, `container`, `app`, `job` (`namespace/app`) and `stream`
//! (stdout or stderr), from the resource attributes the OTLP form carries. The line is the
//! record's body; its trace and span ids, when it has them, travel as structured metadata
//! (`trace_id`, `span_id`), as Alloy's `stage.structured_metadata` puts them. A stream's entries
//! are in time order, within a request and across a connection's requests, as a log file's.

use prost::Message;
use tributary_proto::loki as pb;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};

/// The Loki push body (protobuf, snappy block format) carrying the records of one encoded
/// `ExportLogsServiceRequest`. Panics on bytes that are not one: they come from this generator.
pub(crate) fn push_body(otlp: &[u8]) -> Vec<u8> {
    let req = ExportLogsServiceRequest::decode(otlp).expect("the generator's own OTLP logs request");
    let mut streams: Vec<pb::StreamAdapter> = Vec::new();
    for rl in req.resource_logs {
        let attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
        let get = |key: &str| string_attr(&attrs, key).unwrap_or_default();
        let app = string_attr(&attrs, "service.name").unwrap_or_default();
        let container = string_attr(&attrs, "k8s.container.name").unwrap_or_else(|| app.clone());
        let namespace = get("k8s.namespace.name");
        let base = [
            ("app", app.clone()),
            ("cluster", get("k8s.cluster.name")),
            ("container", container),
            ("job", format!("{namespace}/{app}")),
            ("namespace", namespace.clone()),
            ("pod", get("k8s.pod.name")),
        ];
        for sl in rl.scope_logs {
            for rec in sl.log_records {
                let stream = string_attr(&rec.attributes, "log.iostream").unwrap_or_else(|| "stdout".into());
                let mut labels = String::from("{");
                for (i, (name, value)) in base.iter().chain([&("stream", stream)]).enumerate() {
                    if i > 0 {
                        labels.push_str(", ");
                    }
                    labels.push_str(&format!("{name}={value:?}"));
                }
                labels.push('}');
                let mut metadata = Vec::new();
                if !rec.trace_id.is_empty() {
                    metadata.push(pair("trace_id", hex(&rec.trace_id)));
                }
                if !rec.span_id.is_empty() {
                    metadata.push(pair("span_id", hex(&rec.span_id)));
                }
                let line = match rec.body.and_then(|b| b.value) {
                    Some(any_value::Value::StringValue(s)) => s,
                    _ => String::new(),
                };
                let entry = pb::EntryAdapter {
                    timestamp: Some(pb::Timestamp {
                        seconds: (rec.time_unix_nano / 1_000_000_000) as i64,
                        nanos: (rec.time_unix_nano % 1_000_000_000) as i32,
                    }),
                    line: line.into_bytes(),
                    structured_metadata: metadata,
                };
                let labels = labels.into_bytes();
                match streams.iter_mut().rev().find(|s| s.labels == labels) {
                    Some(s) => s.entries.push(entry),
                    None => streams.push(pb::StreamAdapter {
                        labels,
                        entries: vec![entry],
                        hash: 0,
                    }),
                }
            }
        }
    }
    // The OTLP form groups a resource's records by scope (a Java pod's loggers); a log file,
    // and so a Loki client, has them in time order.
    for s in &mut streams {
        s.entries
            .sort_by_key(|e| e.timestamp.as_ref().map(|t| (t.seconds, t.nanos)));
    }
    let protobuf = pb::PushRequest { streams }.encode_to_vec();
    // Compressing into a Vec cannot fail but for a body over snappy's 4 GiB limit.
    snap::raw::Encoder::new()
        .compress_vec(&protobuf)
        .expect("a push body under 4 GiB")
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(s)),
        }) => Some(s.clone()),
        _ => None,
    })
}

fn pair(name: &str, value: String) -> pb::LabelPairAdapter {
    pb::LabelPairAdapter {
        name: name.as_bytes().to_vec(),
        value: value.into_bytes(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
