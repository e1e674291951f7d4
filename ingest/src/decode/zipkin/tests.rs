use bytes::Bytes;
use tributary_storage::signals::hex_id;

use super::*;
use crate::decode::{Body, Translation, decode};
use crate::head::input::NothingKnown;

fn decode_json(json: &str, ctx: &ClusterContext, max_attributes: usize) -> (Vec<Span>, Rejections) {
    let body = Body::zipkin(Bytes::from(json.to_string()), "application/json", "").unwrap();
    let prepared = body.prepare(1 << 20).unwrap();
    let t = Translation::default();
    let mut opts = Options::unbounded(&t);
    opts.max_log_attributes = max_attributes;
    let batch = decode(&prepared, ctx, &opts, &NothingKnown).unwrap();
    (batch.input.signals.spans, batch.outcome.rejected)
}

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.into()),
    }
}

#[test]
fn a_zipkin_span_maps_as_the_collectors_receiver_maps_it() {
    let json = r#"[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"352bff9a74ca9ad2",
      "name":"get /api","kind":"SERVER","timestamp":1556604172355737,"duration":1431,
      "localEndpoint":{"serviceName":"backend","ipv4":"192.168.99.1","port":3306},
      "remoteEndpoint":{"serviceName":"frontend","ipv6":"::1","port":61233},
      "annotations":[{"timestamp":1556604172355800,"value":"wr"}],
      "tags":{"http.method":"GET","http.status_code":"500","error":"boom","k8s.cluster.name":"prod-eu"}}]"#;
    let (spans, rejected) = decode_json(json, &ClusterContext::default(), 128);
    assert!(rejected.is_empty(), "{rejected:?}");
    let s = &spans[0];
    assert_eq!(hex_id(&s.trace_id), "00000000000000005af7183fb1d4cf5f");
    assert_eq!(hex_id(&s.span_id), "6b221d5bc9e6496c");
    assert_eq!(hex_id(&s.parent_span_id), "352bff9a74ca9ad2");
    assert_eq!((s.start, s.duration), (1_556_604_172_355_737_000, 1_431_000));
    assert_eq!((s.kind, s.status_code, s.status_message.as_str()), (2, 2, "boom"));
    assert_eq!((s.cluster.as_str(), s.service_name.as_str()), ("prod-eu", "backend"));
    assert_eq!((s.http_method.as_str(), s.http_status_code), ("GET", 500));
    let attrs: serde_json::Value = serde_json::from_str(&s.attributes).unwrap();
    assert_eq!(attrs["peer.service"], "frontend");
    assert_eq!(attrs["net.peer.port"], 61233);
    let events: serde_json::Value = serde_json::from_str(&s.events).unwrap();
    assert_eq!(events[0]["name"], "wr");
    assert_eq!(events[0]["time_unix_nano"], 1_556_604_172_355_800_000_i64);
    assert_eq!(s.resource_attributes, r#"{"service.name":"backend"}"#);
}

#[test]
fn bad_zipkin_spans_are_refused_beside_good_ones() {
    let good = r#"{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","timestamp":1}"#;
    for (bad, reason) in [
        (r#"{"traceId":"xyz","id":"6b221d5bc9e6496c","timestamp":1}"#, "traceId"),
        (
            r#"{"traceId":"0000000000000000","id":"6b221d5bc9e6496c","timestamp":1}"#,
            "all zero",
        ),
        (
            r#"{"traceId":"5af7183fb1d4cf5f","id":"6b22","timestamp":1}"#,
            "id \"6b22\"",
        ),
        (
            r#"{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c"}"#,
            "timestamp is not set",
        ),
        // Zipkin reads 0 as absent (found by the traces fuzz target).
        (
            r#"{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","timestamp":0}"#,
            "timestamp is not set",
        ),
        (
            r#"{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","timestamp":1,"tags":{"a":"1","b":"2","c":"3","d":"4","e":"5"}}"#,
            "over the limit",
        ),
        (
            r#"{"traceId":5,"id":"6b221d5bc9e6496c","timestamp":1}"#,
            "not a Zipkin span",
        ),
    ] {
        let (spans, rejected) = decode_json(&format!("[{good},{bad}]"), &header("c"), 4);
        assert_eq!(spans.len(), 1, "{reason}");
        assert_eq!(rejected.spans, 1, "{reason}");
        assert!(
            rejected.reasons[0].contains(reason) && rejected.reasons[0].starts_with("spans[1]"),
            "{reason}: {:?}",
            rejected.reasons
        );
    }
    let body = Body::zipkin(Bytes::from_static(b"{\"not\":\"an array\"}"), "application/json", "").unwrap();
    let prepared = body.prepare(1 << 20).unwrap();
    let t = Translation::default();
    assert!(decode(&prepared, &header("c"), &Options::unbounded(&t), &NothingKnown).is_err());
    assert!(Body::zipkin(Bytes::new(), "application/x-thrift", "").is_err());
    // Without a cluster, the span is refused saying how to set one.
    let (_, rejected) = decode_json(&format!("[{good}]"), &ClusterContext::default(), 4);
    assert!(rejected.reasons[0].contains("k8s.cluster.name"), "{rejected:?}");
}
