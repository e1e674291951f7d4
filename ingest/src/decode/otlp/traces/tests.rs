use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tributary_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_proto::otlp::trace::v1::span::{Event, Link};
use tributary_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan, Status};

use super::*;

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn otlp_span(trace: u8, span: u8) -> OtlpSpan {
    OtlpSpan {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        parent_span_id: vec![],
        name: "GET /cart".into(),
        kind: 2,
        start_time_unix_nano: 1_764_460_800_000_000_000,
        end_time_unix_nano: 1_764_460_800_250_000_000,
        attributes: vec![
            kv("http.request.method", s("GET")),
            kv("http.route", s("/cart")),
            kv("http.response.status_code", any_value::Value::IntValue(503)),
        ],
        status: Some(Status {
            message: "upstream down".into(),
            code: 2,
        }),
        ..OtlpSpan::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "checkout-lib".into(),
                    version: "1.2".into(),
                    attributes: vec![kv("scope.attr", s("x"))],
                    ..InstrumentationScope::default()
                }),
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn header(cluster: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(cluster.into()),
    }
}

#[test]
fn every_field_of_a_span_is_kept() {
    let mut span = otlp_span(0xab, 0x01);
    span.parent_span_id = vec![0x02; 8];
    span.trace_state = "vendor=1".into();
    span.flags = 0x101;
    span.events = vec![Event {
        time_unix_nano: 1_764_460_800_100_000_000,
        name: "retry \"1\"".into(),
        attributes: vec![kv("attempt", any_value::Value::IntValue(1))],
        ..Event::default()
    }];
    span.links = vec![Link {
        trace_id: vec![0xcd; 16],
        span_id: vec![0x03; 8],
        trace_state: String::new(),
        attributes: vec![kv("why", s("batch"))],
        ..Link::default()
    }];
    let req = request(
        vec![kv("service.name", s("checkout")), kv("k8s.cluster.name", s("prod-eu"))],
        vec![span],
    );
    let (spans, rejected) = translate(&req, &ClusterContext::default(), 128);
    assert!(rejected.is_empty(), "{rejected:?}");
    let got = &spans[0];
    assert_eq!(got.trace_id, [0xab; 16]);
    assert_eq!(got.span_id, [0x01; 8]);
    assert_eq!(got.parent_span_id, [0x02; 8]);
    assert_eq!(got.cluster, "prod-eu");
    assert_eq!(got.service_name, "checkout");
    assert_eq!((got.name.as_str(), got.kind, got.flags), ("GET /cart", 2, 0x101));
    assert_eq!((got.start, got.duration), (1_764_460_800_000_000_000, 250_000_000));
    assert_eq!((got.status_code, got.status_message.as_str()), (2, "upstream down"));
    assert_eq!(
        (got.http_method.as_str(), got.http_route.as_str(), got.http_status_code),
        ("GET", "/cart", 503)
    );
    assert_eq!(
        (got.scope_name.as_str(), got.scope_version.as_str()),
        ("checkout-lib", "1.2")
    );
    assert_eq!(got.trace_state, "vendor=1");
    let attrs: serde_json::Value = serde_json::from_str(&got.attributes).unwrap();
    assert_eq!(attrs["scope.attr"], "x");
    assert_eq!(attrs["http.response.status_code"], 503);
    let resource: serde_json::Value = serde_json::from_str(&got.resource_attributes).unwrap();
    assert_eq!(resource["k8s.cluster.name"], "prod-eu");
    let events: serde_json::Value = serde_json::from_str(&got.events).unwrap();
    assert_eq!(events[0]["name"], "retry \"1\"");
    assert_eq!(events[0]["time_unix_nano"], 1_764_460_800_100_000_000_i64);
    assert_eq!(events[0]["attributes"]["attempt"], 1);
    let links: serde_json::Value = serde_json::from_str(&got.links).unwrap();
    assert_eq!(links[0]["trace_id"], "cd".repeat(16));
    assert_eq!(links[0]["span_id"], "03".repeat(8));
    assert_eq!(links[0]["attributes"]["why"], "batch");
}

#[test]
fn bad_spans_are_refused_one_by_one_and_the_rest_is_kept() {
    let mut cases = Vec::new();
    let mut short = otlp_span(1, 1);
    short.trace_id = vec![1; 15];
    cases.push((short, "trace_id has 15 bytes"));
    let mut zero = otlp_span(0, 1);
    zero.trace_id = vec![0; 16];
    cases.push((zero, "must not be all zero"));
    let mut no_span = otlp_span(1, 1);
    no_span.span_id = vec![];
    cases.push((no_span, "span_id has 0 bytes"));
    let mut parent = otlp_span(1, 1);
    parent.parent_span_id = vec![1; 3];
    cases.push((parent, "parent_span_id has 3 bytes"));
    let mut backwards = otlp_span(1, 1);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    cases.push((backwards, "before start_time_unix_nano"));
    let mut unset = otlp_span(1, 1);
    unset.start_time_unix_nano = 0;
    cases.push((unset, "start_time_unix_nano is not set"));
    let mut far = otlp_span(1, 1);
    far.end_time_unix_nano = u64::MAX;
    cases.push((far, "beyond year 2262"));
    let mut wide = otlp_span(1, 1);
    wide.attributes = (0..200).map(|i| kv(&format!("a{i}"), s("v"))).collect();
    cases.push((wide, "over the limit of 128"));
    for (bad, reason) in cases {
        let req = request(vec![kv("service.name", s("svc"))], vec![otlp_span(7, 7), bad]);
        let (spans, rejected) = translate(&req, &header("c1"), 128);
        assert_eq!(spans.len(), 1, "{reason}: the valid span is kept");
        assert_eq!(spans[0].trace_id, [7; 16]);
        assert_eq!(rejected.spans, 1, "{reason}");
        assert!(
            rejected.reasons[0].contains(reason) && rejected.reasons[0].contains("spans[1]"),
            "{reason}: {:?}",
            rejected.reasons
        );
    }
}

#[test]
fn the_cluster_rule_is_the_logs_rule() {
    let req = |attrs| request(attrs, vec![otlp_span(1, 1)]);
    // Without anything naming a cluster, the resource's spans are refused, saying how to set one.
    let (spans, rejected) = translate(&req(vec![]), &ClusterContext::default(), 128);
    assert!(spans.is_empty());
    assert_eq!(rejected.spans, 1);
    assert!(
        rejected.reasons[0].contains("k8s.cluster.name"),
        "{:?}",
        rejected.reasons
    );
    // The header names it; the resource's own attribute wins over the header.
    let (spans, _) = translate(&req(vec![]), &header("from-header"), 128);
    assert_eq!(spans[0].cluster, "from-header");
    let own = vec![kv("k8s.cluster.name", s("own"))];
    let (spans, _) = translate(&req(own.clone()), &header("from-header"), 128);
    assert_eq!(spans[0].cluster, "own");
    // A token's cluster wins over both.
    let token = ClusterContext {
        token_cluster: Some("token".into()),
        header_cluster: Some("from-header".into()),
    };
    let (spans, _) = translate(&req(own), &token, 128);
    assert_eq!(spans[0].cluster, "token");
}
