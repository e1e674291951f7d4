use super::*;
use crate::decode::otlp::any_value::MAX_DEPTH;
use proptest::prelude::*;
use tributary_proto::otlp::common::v1::any_value;
use tributary_proto::otlp::common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValueList};
use tributary_proto::otlp::logs::v1::{ResourceLogs, ScopeLogs};
use tributary_proto::otlp::resource::v1::Resource as OtlpResource;

const T: u64 = 1_767_225_600_123_456_789;

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}

fn av(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        ..KeyValue::default()
    }
}

fn request(
    resource: Vec<KeyValue>,
    scope: Option<InstrumentationScope>,
    records: Vec<OtlpLogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(OtlpResource {
                attributes: resource,
                ..OtlpResource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope,
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

fn line(body: &str) -> OtlpLogRecord {
    OtlpLogRecord {
        time_unix_nano: T,
        body: Some(s(body)),
        ..OtlpLogRecord::default()
    }
}

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.into()),
    }
}

fn run(req: &ExportLogsServiceRequest, ctx: &ClusterContext) -> TranslatedLogs {
    let attrs = default_stream_attributes();
    translate(
        req,
        ctx,
        &Options {
            stream_attributes: &attrs,
            max_attributes: 16,
            max_body_bytes: 64,
            max_label_value_bytes: 2048,
            unknown_service: true,
        },
    )
}

#[test]
fn every_field_is_translated() {
    let resource = vec![
        kv("service.name", s("checkout")),
        kv("k8s.namespace.name", s("shop")),
        kv("k8s.cluster.name", s("prod-eu-1")),
        kv("host.name", s("node-1")),
        kv("k8s.pod.name", av(any_value::Value::IntValue(7))),
    ];
    let scope = InstrumentationScope {
        name: "io.opentelemetry.logback".into(),
        version: "2.1.0".into(),
        attributes: vec![kv("scope.attr", s("x")), kv("shared", s("from scope"))],
        ..InstrumentationScope::default()
    };
    let rec = OtlpLogRecord {
        time_unix_nano: T,
        observed_time_unix_nano: T + 5,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(s("boom ✓")),
        attributes: vec![
            kv("http.method", s("GET")),
            kv("attempt", av(any_value::Value::IntValue(-3))),
            kv("ratio", av(any_value::Value::DoubleValue(0.25))),
            kv("ok", av(any_value::Value::BoolValue(true))),
            kv("raw", av(any_value::Value::BytesValue(vec![0xde, 0xad, 0xbe, 0xef]))),
            kv("shared", s("from record")),
            KeyValue {
                key: "empty".into(),
                value: None,
                ..KeyValue::default()
            },
        ],
        dropped_attributes_count: 0,
        flags: 1,
        trace_id: (1..=16).collect(),
        span_id: vec![0xab; 8],
        event_name: "checkout.failed".into(),
    };
    let out = run(&request(resource, Some(scope), vec![rec]), &ClusterContext::default());
    assert_eq!(out.rejected_records, 0, "{:?}", out.reasons);
    let r = &out.records[0];
    assert_eq!(
        r.labels,
        Labels::from_pairs(&[
            ("cluster", "prod-eu-1"),
            ("service_name", "checkout"),
            ("k8s_namespace_name", "shop"),
            ("k8s_pod_name", "7"),
        ])
        .into()
    );
    assert_eq!(r.timestamp, T as i64);
    assert_eq!(r.observed_timestamp, T as i64 + 5);
    assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "ERROR"));
    assert_eq!(r.body, "boom ✓");
    assert_eq!(r.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(r.span_id, "abababababababab");
    assert_eq!(r.flags, 1);
    assert_eq!(
        r.attributes,
        r#"{"scope.attr":"x","shared":"from record","http.method":"GET","attempt":-3,"ratio":0.25,"ok":true,"raw":"3q2+7w==","empty":null}"#
    );
    assert_eq!(
        r.resource_attributes,
        r#"{"service.name":"checkout","k8s.namespace.name":"shop","k8s.cluster.name":"prod-eu-1","host.name":"node-1","k8s.pod.name":7}"#.into()
    );
    assert_eq!(
        (r.scope_name.as_str(), r.scope_version.as_str()),
        ("io.opentelemetry.logback", "2.1.0")
    );
    assert_eq!(r.event_name, "checkout.failed");
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&r.attributes).unwrap();
}

#[test]
fn cluster_precedence_and_exported_cluster() {
    let own = vec![kv("k8s.cluster.name", s("own"))];
    let req = request(own.clone(), None, vec![line("x")]);
    let token = ClusterContext {
        token_cluster: Some("tok".into()),
        header_cluster: Some("hdr".into()),
    };
    let r = &run(&req, &token).records[0];
    assert_eq!(r.labels.get("cluster"), Some("tok"));
    assert_eq!(r.labels.get("exported_cluster"), Some("own"));
    let same = ClusterContext {
        token_cluster: Some("own".into()),
        header_cluster: None,
    };
    let r = &run(&req, &same).records[0];
    assert_eq!(
        (r.labels.get("cluster"), r.labels.get("exported_cluster")),
        (Some("own"), None)
    );
    let r = &run(&req, &header("hdr")).records[0];
    assert_eq!(r.labels.get("cluster"), Some("own"), "own attribute beats the header");
    let bare = request(vec![], None, vec![line("a"), line("b")]);
    let r = &run(&bare, &token).records[0];
    assert_eq!(
        (r.labels.get("cluster"), r.labels.get("exported_cluster")),
        (Some("tok"), None)
    );
    let r = &run(&bare, &header("hdr")).records[0];
    assert_eq!(r.labels.get("cluster"), Some("hdr"));
    let out = run(&bare, &ClusterContext::default());
    assert!(out.records.is_empty());
    assert_eq!(out.rejected_records, 2);
    assert_eq!(out.reasons.len(), 1);
    assert!(out.reasons[0].contains("k8s.cluster.name") && out.reasons[0].contains("X-Tributary-Cluster"));
}

#[test]
fn stream_labels_follow_loki() {
    let attrs = vec![
        "service.name".to_string(),
        "k8s.cluster.name".to_string(),
        "cluster".to_string(),
        "my-attr.x".to_string(),
        "1st".to_string(),
        "...".to_string(),
    ];
    let opts = Options {
        stream_attributes: &attrs,
        max_attributes: 100,
        max_body_bytes: 100,
        max_label_value_bytes: 2048,
        unknown_service: true,
    };
    let req = request(
        vec![
            kv("cluster", s("spoof")),
            kv("my-attr.x", s("v")),
            kv("1st", av(any_value::Value::BoolValue(false))),
            kv("...", s("dots")),
            kv("k8s.cluster.name", s("c")),
        ],
        None,
        vec![line("x")],
    );
    let r = &translate(&req, &ClusterContext::default(), &opts).records[0];
    assert_eq!(
        r.labels,
        Labels::from_pairs(&[
            ("cluster", "c"),
            ("my_attr_x", "v"),
            ("key_1st", "false"),
            ("service_name", "unknown_service"),
        ])
        .into()
    );
    // Without `service.name` configured there is no default service_name.
    let none: Vec<String> = vec![];
    let opts = Options {
        stream_attributes: &none,
        ..opts
    };
    let r = &translate(&req, &header("h"), &opts).records[0];
    assert_eq!(*r.labels, Labels::from_pairs(&[("cluster", "c")]));
}

#[test]
fn timestamps_and_ids() {
    let rec = |time: u64, observed: u64| OtlpLogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: observed,
        ..OtlpLogRecord::default()
    };
    let req = request(
        vec![],
        None,
        vec![
            rec(0, 42),
            rec(0, 0),
            rec(u64::MAX, 0),
            rec(1, u64::MAX),
            OtlpLogRecord {
                trace_id: vec![0; 16],
                span_id: vec![0; 8],
                ..rec(5, 0)
            },
            OtlpLogRecord {
                trace_id: vec![1; 15],
                ..rec(5, 0)
            },
            OtlpLogRecord {
                span_id: vec![1; 16],
                ..rec(5, 0)
            },
        ],
    );
    let out = run(&req, &header("h"));
    assert_eq!(out.records.len(), 2);
    assert_eq!((out.records[0].timestamp, out.records[0].observed_timestamp), (42, 42));
    assert_eq!(
        (out.records[1].trace_id.as_str(), out.records[1].span_id.as_str()),
        ("", "")
    );
    assert_eq!(out.rejected_records, 5);
    let reasons = out.reasons.join("\n");
    for want in [
        "log_records[1]: neither time_unix_nano",
        "log_records[2]: timestamp",
        "log_records[3]: observed timestamp",
        "log_records[5]: trace_id has 15 bytes",
        "log_records[6]: span_id has 16 bytes",
    ] {
        assert!(reasons.contains(want), "{want} in {reasons}");
    }
}

#[test]
fn bodies_of_every_kind() {
    use any_value::Value as V;
    let kvlist = V::KvlistValue(KeyValueList {
        values: vec![kv("a", s("x")), kv("n", av(V::IntValue(1))), kv("a", s("y"))],
    });
    let array = V::ArrayValue(ArrayValue {
        values: vec![
            av(V::DoubleValue(1.5)),
            av(V::BoolValue(true)),
            AnyValue { value: None },
            av(kvlist.clone()),
        ],
    });
    let cases: Vec<(Option<AnyValue>, &str)> = vec![
        (None, ""),
        (Some(AnyValue { value: None }), ""),
        (Some(s("plain \"text\"\n")), "plain \"text\"\n"),
        (Some(av(V::IntValue(i64::MIN))), "-9223372036854775808"),
        (Some(av(V::DoubleValue(2.0))), "2.0"),
        (Some(av(V::DoubleValue(f64::NAN))), "\"NaN\""),
        (Some(av(V::DoubleValue(f64::NEG_INFINITY))), "\"-Infinity\""),
        (Some(av(V::BoolValue(false))), "false"),
        (Some(av(V::BytesValue(vec![0, 1, 2]))), "AAEC"),
        (Some(av(kvlist)), r#"{"a":"y","n":1}"#),
        (Some(av(array)), r#"[1.5,true,null,{"a":"y","n":1}]"#),
    ];
    for (body, want) in cases {
        let req = request(
            vec![],
            None,
            vec![OtlpLogRecord {
                time_unix_nano: T,
                body: body.clone(),
                ..OtlpLogRecord::default()
            }],
        );
        let out = run(&req, &header("h"));
        assert_eq!(out.records[0].body, want, "{body:?}");
    }
}

#[test]
fn limits_refuse_records_not_requests() {
    let resource: Vec<KeyValue> = (0..10).map(|i| kv(&format!("r{i}"), s("v"))).collect();
    let scope = InstrumentationScope {
        attributes: (0..4).map(|i| kv(&format!("s{i}"), s("v"))).collect(),
        ..InstrumentationScope::default()
    };
    let mut nested = s("leaf");
    for _ in 0..=MAX_DEPTH {
        nested = av(any_value::Value::ArrayValue(ArrayValue { values: vec![nested] }));
    }
    let records = vec![
        line("fits"),
        OtlpLogRecord {
            attributes: vec![kv("a", s("1")), kv("b", s("2")), kv("c", s("3"))],
            ..line("one attribute too many")
        },
        OtlpLogRecord {
            attributes: vec![kv("a", s("1")), kv("b", s("2"))],
            ..line("exactly the limit")
        },
        line(&"x".repeat(65)),
        line(&"x".repeat(64)),
        OtlpLogRecord {
            body: Some(nested),
            ..line("")
        },
    ];
    let out = run(&request(resource, Some(scope), records), &header("h"));
    let bodies: Vec<&str> = out.records.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["fits", "exactly the limit", &"x".repeat(64)]);
    assert_eq!(out.rejected_records, 3);
    assert!(out.reasons[0].contains("17 attributes (resource 10, scope 4, record 3), the limit is 16"));
    assert!(out.reasons[1].contains("body is 65 bytes, the limit is 64"));
    assert!(out.reasons[2].contains("nested deeper"));
}

#[test]
fn reasons_are_capped_but_counts_are_not() {
    let records = (0..50).map(|_| OtlpLogRecord::default()).collect();
    let out = run(&request(vec![], None, records), &header("h"));
    assert_eq!(out.rejected_records, 50);
    assert_eq!(out.reasons.len(), MAX_REASONS);
}

#[test]
fn otlp_json_requests_translate_like_protobuf_ones() {
    let json = br#"{"resourceLogs":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"api"}},
        {"key":"k8s.cluster.name","value":{"stringValue":"c1"}}]},
      "scopeLogs":[{"scope":{"name":"s"},"logRecords":[{
        "timeUnixNano":"1767225600000000001","severityNumber":9,"severityText":"INFO",
        "body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"hi"}}]}},
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "attributes":[{"key":"n","value":{"intValue":"12"}}]}]}]}]}"#;
    let req: ExportLogsServiceRequest =
        crate::decode::otlp::parse(json, crate::decode::otlp::BodyFormat::Json).unwrap();
    let out = run(&req, &ClusterContext::default());
    let r = &out.records[0];
    assert_eq!(
        r.labels,
        Labels::from_pairs(&[("cluster", "c1"), ("service_name", "api")]).into()
    );
    assert_eq!(r.timestamp, 1_767_225_600_000_000_001);
    assert_eq!(r.body, r#"{"msg":"hi"}"#);
    assert_eq!(r.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(r.span_id, "eee19b7ec3c1b174");
    assert_eq!(r.attributes, r#"{"n":12}"#);
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        Just(AnyValue { value: None }),
        any::<String>().prop_map(|v| av(V::StringValue(v))),
        any::<bool>().prop_map(|v| av(V::BoolValue(v))),
        any::<i64>().prop_map(|v| av(V::IntValue(v))),
        any::<f64>().prop_map(|v| av(V::DoubleValue(v))),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|v| av(V::BytesValue(v))),
        any::<i32>().prop_map(|v| av(V::StringValueStrindex(v))),
    ];
    leaf.prop_recursive(6, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|values| av(V::ArrayValue(ArrayValue { values }))),
            proptest::collection::vec(("[a-c.]{0,3}", inner), 0..4).prop_map(|kvs| av(V::KvlistValue(KeyValueList {
                values: kvs.into_iter().map(|(k, v)| kv(&k, v)).collect(),
            }))),
        ]
    })
}

fn key_values() -> impl Strategy<Value = Vec<KeyValue>> {
    let key = prop_oneof![
        Just("service.name".to_string()),
        Just("k8s.cluster.name".to_string()),
        Just("k8s.pod.name".to_string()),
        any::<String>(),
    ];
    proptest::collection::vec((key, proptest::option::of(any_value())), 0..5).prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value,
                ..KeyValue::default()
            })
            .collect()
    })
}

fn otlp_record() -> impl Strategy<Value = OtlpLogRecord> {
    let time = prop_oneof![Just(0u64), any::<u64>(), Just(T)];
    let id = |n: usize| {
        prop_oneof![
            Just(vec![]),
            Just(vec![0; n]),
            proptest::collection::vec(any::<u8>(), 0..20)
        ]
    };
    (
        (time.clone(), time),
        any::<i32>(),
        any::<String>(),
        proptest::option::of(any_value()),
        key_values(),
        any::<u32>(),
        (id(16), id(8)),
        any::<String>(),
    )
        .prop_map(
            |((t, o), severity_number, severity_text, body, attributes, flags, (trace_id, span_id), event_name)| {
                OtlpLogRecord {
                    time_unix_nano: t,
                    observed_time_unix_nano: o,
                    severity_number,
                    severity_text,
                    body,
                    attributes,
                    dropped_attributes_count: 0,
                    flags,
                    trace_id,
                    span_id,
                    event_name,
                }
            },
        )
}

fn otlp_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let scope = (
        proptest::option::of((any::<String>(), any::<String>(), key_values())),
        proptest::collection::vec(otlp_record(), 0..4),
    )
        .prop_map(|(scope, log_records)| ScopeLogs {
            scope: scope.map(|(name, version, attributes)| InstrumentationScope {
                name,
                version,
                attributes,
                ..InstrumentationScope::default()
            }),
            log_records,
            ..ScopeLogs::default()
        });
    let resource = (
        proptest::option::of(key_values()),
        proptest::collection::vec(scope, 0..3),
    )
        .prop_map(|(attrs, scope_logs)| ResourceLogs {
            resource: attrs.map(|attributes| OtlpResource {
                attributes,
                ..OtlpResource::default()
            }),
            scope_logs,
            ..ResourceLogs::default()
        });
    proptest::collection::vec(resource, 0..3).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_requests_never_panic_and_account_for_every_record(
        req in otlp_request(),
        token in proptest::option::of("[a-z]{1,3}"),
        hdr in proptest::option::of("[a-z]{1,3}"),
    ) {
        let ctx = ClusterContext { token_cluster: token, header_cluster: hdr };
        let attrs = default_stream_attributes();
        let opts = Options { stream_attributes: &attrs, max_attributes: 12, max_body_bytes: 200, max_label_value_bytes: 64, unknown_service: true };
        let out = translate(&req, &ctx, &opts);
        let total: usize = req.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
        prop_assert_eq!(out.records.len() as u64 + out.rejected_records, total as u64);
        prop_assert!(out.reasons.len() <= MAX_REASONS);
        prop_assert_eq!(out.rejected_records == 0, out.reasons.is_empty());
        for r in &out.records {
            prop_assert!(r.labels.get(CLUSTER).is_some_and(|c| !c.is_empty()));
            prop_assert!(r.labels.get(SERVICE_NAME_LABEL).is_some());
            prop_assert!(r.timestamp > 0);
            prop_assert!(r.body.len() <= 200);
            prop_assert!(r.trace_id.is_empty() || (r.trace_id.len() == 32 && r.trace_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())));
            prop_assert!(r.span_id.is_empty() || r.span_id.len() == 16);
            for text in [&*r.attributes, &*r.resource_attributes] {
                let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text);
                prop_assert!(parsed.is_ok(), "{text}: {parsed:?}");
            }
            for l in r.labels.iter() {
                prop_assert!(l.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{}", l.name);
                prop_assert!(l.name == CLUSTER || l.name == "exported_cluster" || l.value.len() <= 64, "{l:?}");
            }
        }
        // Deterministic: WAL replay must get the same records.
        prop_assert_eq!(translate(&req, &ctx, &opts), out);
    }
}

/// A promoted resource attribute becomes a stream label on every record: one over the label
/// value limit refuses that resource's records (with the reason), not the request's others.
#[test]
fn overlong_stream_label_values_refuse_their_resource() {
    let attrs = default_stream_attributes();
    let opts = Options {
        stream_attributes: &attrs,
        max_attributes: 100,
        max_body_bytes: 100,
        max_label_value_bytes: 16,
        unknown_service: true,
    };
    let long = request(vec![kv("service.name", s(&"s".repeat(17)))], None, vec![line("a")]);
    let t = translate(&long, &header("h"), &opts);
    assert!(t.records.is_empty());
    assert_eq!(t.rejected_records, 1);
    assert!(t.reasons[0].contains("service.name"), "{:?}", t.reasons);
    let ok = request(vec![kv("service.name", s(&"s".repeat(16)))], None, vec![line("a")]);
    assert_eq!(translate(&ok, &header("h"), &opts).records.len(), 1);
}
