//! The rules, source by source; cases after Loki's `pkg/distributor` level-detection and
//! service-name tests.

use tributary_storage::signals::LogRecord;
use tributary_storage::types::Labels;

use super::*;
use crate::config::IngestConfig;

fn rec(labels: &[(&str, &str)], line: &str, attributes: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(labels).into(),
        body: line.to_string(),
        attributes: attributes.to_string(),
        resource_attributes: "{}".into(),
        ..LogRecord::default()
    }
}

fn defaults() -> Translation {
    Translation::from_config(&IngestConfig::default())
}

fn level_of(r: &LogRecord) -> Option<String> {
    detected_level(r).map(|l| l.into_owned())
}

#[test]
fn service_name_comes_from_the_first_configured_label_present() {
    let list = defaults().discover_service_name;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("service", "s"), ("app", "a")], "s"),
        (&[("app", "a"), ("job", "j")], "a"),
        (&[("application", "ap"), ("name", "n")], "ap"),
        (&[("name", "n"), ("container", "c")], "n"),
        (&[("app_kubernetes_io_name", "k"), ("container", "c")], "k"),
        (&[("container", "c"), ("component", "co")], "c"),
        (&[("container_name", "cn"), ("job", "j")], "cn"),
        (&[("k8s_container_name", "kc"), ("job", "j")], "kc"),
        (&[("component", "co"), ("workload", "w")], "co"),
        (&[("workload", "w"), ("job", "j")], "w"),
        (&[("job", "j")], "j"),
        (&[("k8s_job_name", "kj")], "kj"),
        (&[("cluster", "a"), ("pod", "p")], UNKNOWN_SERVICE),
    ];
    for (labels, want) in cases {
        assert_eq!(service_name(&Labels::from_pairs(labels), &list), *want, "{labels:?}");
    }
}

#[test]
fn discover_adds_service_name_only_when_missing_and_when_configured() {
    let mut records = vec![
        rec(&[("cluster", "a"), ("app", "foo")], "x", "{}"),
        rec(&[("cluster", "a"), ("app", "foo")], "y", "{}"),
        rec(&[("cluster", "a"), ("app", "foo"), ("service_name", "own")], "z", "{}"),
        rec(&[("cluster", "a")], "w", "{}"),
    ];
    let t = Translation {
        discover_log_levels: false,
        ..defaults()
    };
    discover(&mut records, &t);
    let names: Vec<_> = records.iter().map(|r| r.labels.get(SERVICE_NAME).unwrap()).collect();
    assert_eq!(names, ["foo", "foo", "own", UNKNOWN_SERVICE]);
    assert!(records.iter().all(|r| r.attributes == "{}"), "levels are off");

    let mut off = vec![rec(&[("cluster", "a"), ("app", "foo")], "x", "{}")];
    discover(&mut off, &Translation::default());
    assert_eq!(*off[0].labels, Labels::from_pairs(&[("cluster", "a"), ("app", "foo")]));
    assert_eq!(off[0].attributes, "{}");
}

#[test]
fn detected_level_is_appended_to_structured_metadata_not_to_stream_labels() {
    let mut records = vec![
        rec(&[("cluster", "a")], "level=error msg=boom", "{}"),
        rec(&[("cluster", "a")], "hello", r#"{"k":"v"}"#),
        rec(&[("cluster", "a")], "hello", r#"{"detected_level":"custom"}"#),
    ];
    let t = Translation {
        discover_service_name: Vec::new(),
        ..defaults()
    };
    discover(&mut records, &t);
    assert_eq!(records[0].attributes, r#"{"detected_level":"error"}"#);
    assert_eq!(records[1].attributes, r#"{"k":"v","detected_level":"unknown"}"#);
    assert_eq!(
        records[2].attributes, r#"{"detected_level":"custom"}"#,
        "the sender's own wins"
    );
    assert!(records.iter().all(|r| r.labels.get(DETECTED_LEVEL).is_none()));
}

#[test]
fn a_level_stream_label_wins_normalised_or_as_sent() {
    let r = rec(
        &[("cluster", "a"), ("level", "WARNING")],
        "level=error",
        r#"{"level":"debug"}"#,
    );
    assert_eq!(level_of(&r).as_deref(), Some("warn"));
    let r = rec(&[("cluster", "a"), ("lvl", "dbg")], "", "{}");
    assert_eq!(level_of(&r).as_deref(), Some("debug"));
    let r = rec(&[("cluster", "a"), ("severity", "notice")], "", "{}");
    assert_eq!(
        level_of(&r).as_deref(),
        Some("notice"),
        "unknown words are kept, as Loki does"
    );
}

#[test]
fn structured_metadata_then_otlp_severity() {
    let r = rec(
        &[("cluster", "a")],
        "level=error",
        r#"{"a":1,"severity":"Err","level":"info"}"#,
    );
    assert_eq!(level_of(&r).as_deref(), Some("info"), "earliest in the field list");
    let r = rec(&[("cluster", "a")], "", r#"{"log.level":"TRACE"}"#);
    assert_eq!(level_of(&r).as_deref(), Some("trace"));
    let r = rec(&[("cluster", "a")], "", r#"{"level":3}"#);
    assert_eq!(level_of(&r).as_deref(), Some("unknown"), "only strings name a level");

    let mut r = rec(&[("cluster", "a")], "level=debug", "{}");
    r.severity_text = "Fatal".into();
    r.severity_number = 9;
    assert_eq!(level_of(&r).as_deref(), Some("fatal"), "the text first");
    r.severity_text.clear();
    assert_eq!(level_of(&r).as_deref(), Some("info"));
    for (n, want) in [(1, "trace"), (8, "debug"), (13, "warn"), (20, "error"), (24, "fatal")] {
        r.severity_number = n;
        assert_eq!(level_of(&r).as_deref(), Some(want), "severity number {n}");
    }
    r.severity_number = 0;
    assert_eq!(level_of(&r).as_deref(), Some("debug"), "unspecified: the line decides");
}

#[test]
fn levels_from_the_line() {
    let cases = [
        // JSON: the first level key in document order, two objects deep.
        (r#"{"msg":"x","level":"WARN"}"#, "warn"),
        (r#"  {"SEVERITY":"critical"}  "#, "critical"),
        (r#"{"log":{"lvl":"err"}}"#, "error"),
        (r#"{"a":{"b":{"level":"error"}}, "msg":"INFO here"}"#, "info"),
        (r#"{"level":"nonsense","msg":"[ERROR] x"}"#, "error"),
        (r#"{"level": 5}"#, "unknown"),
        // logfmt: case-insensitive keys, the earliest field in the list wins.
        ("ts=1 LEVEL=Error msg=x", "error"),
        ("ts=1 severity=debug level=info", "info"),
        (r#"ts=1 lvl="warn" msg="a b""#, "warn"),
        ("ts=1 msg=hello", "unknown"),
        ("a=b c=debug", "debug"),
        // Words.
        ("2024 INFO started", "info"),
        ("[ERROR] it broke", "error"),
        ("err: disk", "error"),
        ("this is a warning", "warn"),
        ("CRITICAL: fire", "critical"),
        ("some DEBUG text", "debug"),
        ("an error without brackets", "unknown"),
        ("", "unknown"),
    ];
    for (line, want) in cases {
        assert_eq!(line_level(line), want, "{line:?}");
    }
}

#[test]
fn malformed_text_never_panics() {
    for line in [
        "{",
        "{]",
        "{\"level\":",
        "level=\"unterminated",
        "=",
        "\"=x",
        "a=\\",
        "{\"a\":[1,{\"level\":\"x\"}]}",
    ] {
        let _ = line_level(line);
        let r = rec(&[("cluster", "a")], line, line);
        let _ = detected_level(&r);
    }
}

/// Both protocols pass the rules through the decode table, live or replayed alike.
mod through_the_decode_table {
    use bytes::Bytes;
    use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    use tributary_proto::otlp::logs::v1::{LogRecord as OtlpLogRecord, ResourceLogs, ScopeLogs};
    use tributary_proto::otlp::resource::v1::Resource;

    use super::*;
    use crate::cluster::ClusterContext;
    use crate::decode::{Form, Kind, Options, Prepared, decode};
    use crate::head::input::NothingKnown;

    fn decoded(body: &Prepared, t: &Translation) -> Vec<LogRecord> {
        let ctx = ClusterContext::default();
        decode(body, &ctx, &Options::unbounded(t), &NothingKnown)
            .unwrap()
            .input
            .signals
            .logs
    }

    fn otlp() -> Prepared {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..KeyValue::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("k8s.cluster.name", "c"), kv("k8s.container.name", "web")],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![OtlpLogRecord {
                        time_unix_nano: 1,
                        severity_number: 17,
                        attributes: vec![kv("user", "u")],
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("INFO but the severity wins".into())),
                        }),
                        ..OtlpLogRecord::default()
                    }],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        Prepared::new(Kind::OtlpLogs, Form::OtlpLogs(Box::new(req)))
    }

    #[test]
    fn otlp_without_service_name_follows_the_same_rule() {
        let r = &decoded(&otlp(), &defaults())[0];
        assert_eq!(r.labels.get(SERVICE_NAME), Some("web"), "from k8s_container_name");
        assert_eq!(r.attributes, r#"{"user":"u","detected_level":"error"}"#);

        // Discovery off: the OTLP rule of old, `unknown_service`, and no level.
        let r = &decoded(&otlp(), &Translation::from_config(&IngestConfig::default()).off())[0];
        assert_eq!(r.labels.get(SERVICE_NAME), Some(UNKNOWN_SERVICE));
        assert_eq!(r.attributes, r#"{"user":"u"}"#);
    }

    #[test]
    fn loki_push_streams_get_both() {
        let json = r#"{"streams":[{"stream":{"cluster":"c","app":"foo"},"values":[["1","level=warn x"]]}]}"#;
        let body = Prepared::new(Kind::LokiPushJson, Form::Bytes(Bytes::from_static(json.as_bytes())));
        let r = &decoded(&body, &defaults())[0];
        assert_eq!(
            r.labels,
            Labels::from_pairs(&[("cluster", "c"), ("app", "foo"), ("service_name", "foo")]).into()
        );
        assert_eq!(r.attributes, r#"{"detected_level":"warn"}"#);
    }

    impl Translation {
        fn off(self) -> Self {
            Self {
                discover_service_name: Vec::new(),
                discover_log_levels: false,
                ..self
            }
        }
    }
}
