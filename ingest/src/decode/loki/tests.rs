use super::*;
use proptest::prelude::*;

const OPTS: Options = Options {
    max_line_bytes: 64,
    max_labels: 6,
    max_label_name_bytes: 16,
    max_label_value_bytes: 32,
};

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.to_string()),
    }
}

fn ts(seconds: i64, nanos: i32) -> Option<pb::Timestamp> {
    Some(pb::Timestamp { seconds, nanos })
}

fn entry(t: Option<pb::Timestamp>, line: &[u8], metadata: &[(&str, &str)]) -> pb::EntryAdapter {
    pb::EntryAdapter {
        timestamp: t,
        line: line.to_vec(),
        structured_metadata: metadata
            .iter()
            .map(|(n, v)| pb::LabelPairAdapter {
                name: n.as_bytes().to_vec(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
    }
}

fn stream(labels: &str, entries: Vec<pb::EntryAdapter>) -> pb::StreamAdapter {
    pb::StreamAdapter {
        labels: labels.as_bytes().to_vec(),
        entries,
        hash: 42,
    }
}

fn push(streams: Vec<pb::StreamAdapter>) -> Vec<u8> {
    pb::PushRequest { streams }.encode_to_vec()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

#[test]
fn protobuf_round_trip_with_escapes_metadata_and_clusters() {
    let body = push(vec![
        stream(
            r#"{app="api", msg="say \"hi\"\n\tand\\more \u00e9\xc3\xa9\303\251", cluster="prod-1"}"#,
            vec![
                entry(ts(1_700_000_000, 5), b"first", &[]),
                entry(
                    ts(1_700_000_001, 999_999_999),
                    "second \u{1F600}".as_bytes(),
                    &[
                        ("user", "bob"),
                        ("level", "warn"),
                        ("trace_id", "0AF7651916CD43DD8448EB211C80319C"),
                        ("span_id", "b7ad6b7169203331"),
                        ("user", "alice"),
                    ],
                ),
            ],
        ),
        stream("{app=\"web\",}", vec![entry(ts(-1, 0), b"before the epoch", &[])]),
        stream(
            " { job = `raw\\n\r` , cluster=\"other\" } ",
            vec![entry(None, b"", &[])],
        ),
    ]);
    let d = decode_protobuf(&body, &header("hdr"), &OPTS).unwrap();
    assert!(d.is_clean(), "{}", d.message());
    assert_eq!(d.records.len(), 4);

    let api = labels(&[
        ("app", "api"),
        ("cluster", "prod-1"),
        ("msg", "say \"hi\"\n\tand\\more ééé"),
    ]);
    let r0 = &d.records[0];
    assert_eq!(*r0.labels, api);
    assert_eq!(r0.timestamp, 1_700_000_000_000_000_005);
    assert_eq!(r0.body, "first");
    assert_eq!(r0.attributes, "{}");
    assert_eq!(&*r0.resource_attributes, "{}");
    assert_eq!((r0.severity_text.as_str(), r0.trace_id.as_str()), ("", ""));

    let r1 = &d.records[1];
    assert_eq!(*r1.labels, api);
    assert!(
        std::sync::Arc::ptr_eq(&r0.labels, &r1.labels),
        "a stream's entries share its one label set"
    );
    assert_eq!(r1.timestamp, 1_700_000_001_999_999_999);
    assert_eq!(r1.body, "second \u{1F600}");
    assert_eq!(r1.severity_text, "warn");
    assert_eq!(r1.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(r1.span_id, "b7ad6b7169203331");
    // Sorted by name; the last of a repeated name wins.
    assert_eq!(
        r1.attributes,
        r#"{"level":"warn","span_id":"b7ad6b7169203331","trace_id":"0AF7651916CD43DD8448EB211C80319C","user":"alice"}"#
    );
    assert_eq!((r1.observed_timestamp, r1.severity_number, r1.flags), (0, 0, 0));

    assert_eq!(*d.records[2].labels, labels(&[("app", "web"), ("cluster", "hdr")]));
    assert_eq!(d.records[2].timestamp, -1_000_000_000);
    // Raw strings keep backslashes and drop carriage returns; an absent timestamp is the epoch.
    assert_eq!(*d.records[3].labels, labels(&[("cluster", "other"), ("job", "raw\\n")]));
    assert_eq!((d.records[3].timestamp, d.records[3].body.as_str()), (0, ""));
}

#[test]
fn json_with_and_without_structured_metadata() {
    let body = br#"{"streams":[
        {"stream":{"app":"api","level":"info"},"values":[
            ["1700000000000000001","plain"],
            ["1700000000000000002","with metadata",{"detected_level":"error","k":"v\"q"}],
            [1700000000000000003,"numeric timestamp"],
            ["-4","null metadata",null],
            ["5","empty metadata",{}]
        ]},
        {"stream":{"app":"web","cluster":"own"},"values":[["6","x",{"trace_id":"00000000000000000000000000000000"}]]},
        {"stream":{"app":"empty"},"values":[]},
        {"stream":{"app":"none"}}
    ],"extra":"ignored"}"#;
    let d = decode_json(body, &header("hdr"), &OPTS).unwrap();
    assert!(d.is_clean(), "{}", d.message());
    let got: Vec<(i64, &str, &str, &str)> = d
        .records
        .iter()
        .map(|r| {
            (
                r.timestamp,
                r.body.as_str(),
                r.severity_text.as_str(),
                r.attributes.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1_700_000_000_000_000_001, "plain", "info", "{}"),
            (
                1_700_000_000_000_000_002,
                "with metadata",
                "error",
                r#"{"detected_level":"error","k":"v\"q"}"#
            ),
            (1_700_000_000_000_000_003, "numeric timestamp", "info", "{}"),
            (-4, "null metadata", "info", "{}"),
            (5, "empty metadata", "info", "{}"),
            (6, "x", "", r#"{"trace_id":"00000000000000000000000000000000"}"#),
        ]
    );
    assert_eq!(
        d.records[0].labels,
        labels(&[("app", "api"), ("cluster", "hdr"), ("level", "info")]).into()
    );
    assert_eq!(*d.records[5].labels, labels(&[("app", "web"), ("cluster", "own")]));
    // The all-zero trace id is OpenTelemetry's "no trace".
    assert_eq!(d.records[5].trace_id, "");
    assert_eq!(decode_json(b"{}", &header("h"), &OPTS).unwrap(), DecodedPush::default());
    assert_eq!(
        decode_json(br#"{"streams":null}"#, &header("h"), &OPTS).unwrap(),
        DecodedPush::default()
    );
}

#[test]
fn severity_prefers_metadata_then_stream_and_level_over_detected_level() {
    let body = push(vec![stream(
        r#"{app="a", detected_level="debug", level="info"}"#,
        vec![
            entry(None, b"1", &[("detected_level", "warn"), ("level", "error")]),
            entry(None, b"2", &[("detected_level", "warn")]),
            entry(None, b"3", &[("level", "")]),
        ],
    )]);
    let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
    let sev: Vec<&str> = d.records.iter().map(|r| r.severity_text.as_str()).collect();
    assert_eq!(sev, ["error", "warn", "info"]);
    let body = push(vec![stream(
        r#"{app="a", detected_level="debug"}"#,
        vec![entry(None, b"4", &[])],
    )]);
    let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
    assert_eq!(d.records[0].severity_text, "debug");
}

#[test]
fn trace_and_span_ids_must_be_hex_of_the_right_length() {
    assert_eq!(
        hex_id("0AF7651916CD43DD8448EB211C80319C", 32),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(hex_id("0af7651916cd43dd8448eb211c80319", 32), "");
    assert_eq!(hex_id("zzf7651916cd43dd8448eb211c80319c", 32), "");
    assert_eq!(hex_id("0000000000000000", 16), "");
    assert_eq!(hex_id("b7ad6b7169203331", 16), "b7ad6b7169203331");
    assert_eq!(hex_id("b7ad6b716920333é", 16), "");
}

#[test]
fn cluster_precedence_token_then_own_then_header() {
    let body = push(vec![
        stream(r#"{app="a", cluster="theirs"}"#, vec![entry(None, b"x", &[])]),
        stream(r#"{app="b"}"#, vec![entry(None, b"y", &[])]),
        stream(r#"{app="c", cluster="mine"}"#, vec![entry(None, b"z", &[])]),
        stream(
            r#"{app="d", cluster="", exported_cluster="old"}"#,
            vec![entry(None, b"w", &[])],
        ),
    ]);
    let token = ClusterContext {
        token_cluster: Some("mine".into()),
        header_cluster: Some("hdr".into()),
    };
    let d = decode_protobuf(&body, &token, &OPTS).unwrap();
    let got: Vec<Labels> = d.records.iter().map(|r| Labels::clone(&r.labels)).collect();
    assert_eq!(
        got,
        vec![
            labels(&[("app", "a"), ("cluster", "mine"), ("exported_cluster", "theirs")]),
            labels(&[("app", "b"), ("cluster", "mine")]),
            labels(&[("app", "c"), ("cluster", "mine")]),
            // An empty `cluster` is no cluster: the token's is added, the sender's other labels kept.
            labels(&[("app", "d"), ("cluster", "mine"), ("exported_cluster", "old")]),
        ]
    );

    let d = decode_protobuf(&body, &header("hdr"), &OPTS).unwrap();
    let clusters: Vec<&str> = d
        .records
        .iter()
        .map(|r| r.labels.get("cluster").unwrap_or(""))
        .collect();
    assert_eq!(clusters, ["theirs", "hdr", "mine", "hdr"]);

    // No cluster anywhere: only the streams without their own are rejected, with instructions.
    let d = decode_protobuf(&body, &ClusterContext::default(), &OPTS).unwrap();
    assert_eq!(d.records.len(), 2);
    assert_eq!(d.rejected, 2);
    assert!(d.reasons[0].contains("X-Tributary-Cluster"), "{:?}", d.reasons);
    assert!(d.reasons[0].starts_with(r#"stream {app="b"}"#), "{:?}", d.reasons);
}

/// Each case: one bad stream beside a good one. The good one must survive, the bad one must be
/// counted with a reason containing the needle.
#[test]
fn every_protobuf_rejection_has_a_reason() {
    let long_value = "v".repeat(33);
    let long_name = "n".repeat(17);
    let cases: Vec<(pb::StreamAdapter, u64, &str)> = vec![
        (
            stream(r#"{app="a""#, vec![entry(None, b"x", &[])]),
            1,
            "labels do not parse",
        ),
        (stream(r#"{app!="a"}"#, vec![entry(None, b"x", &[])]), 1, "expected '='"),
        (
            stream(r#"{app.name="a"}"#, vec![entry(None, b"x", &[])]),
            1,
            "invalid label name \"app.name\"",
        ),
        (
            stream(r#"{"0"="a"}"#, vec![entry(None, b"x", &[])]),
            1,
            "invalid label name \"0\"",
        ),
        (
            stream(
                r#"{a="1", a="2"}"#,
                vec![entry(None, b"x", &[]), entry(None, b"y", &[])],
            ),
            2,
            "duplicate label name \"a\"",
        ),
        (
            stream("{}", vec![entry(None, b"x", &[])]),
            1,
            "at least one label pair is required per stream",
        ),
        (
            stream(r#"{a=""}"#, vec![entry(None, b"x", &[])]),
            1,
            "at least one label pair is required",
        ),
        (
            stream(&format!(r#"{{a="{long_value}"}}"#), vec![entry(None, b"x", &[])]),
            1,
            "over the limit of 32",
        ),
        (
            stream(&format!(r#"{{{long_name}="a"}}"#), vec![entry(None, b"x", &[])]),
            1,
            "exceeds the limit of 16",
        ),
        (
            stream(
                r#"{a="1", b="2", c="3", d="4", e="5", f="6"}"#,
                vec![entry(None, b"x", &[])],
            ),
            1,
            "stream has 7 labels, more than the limit of 6",
        ),
        (
            pb::StreamAdapter {
                labels: b"{a=\"\xff\"}".to_vec(),
                entries: vec![entry(None, b"x", &[])],
                hash: 0,
            },
            1,
            "labels are not valid UTF-8",
        ),
        (
            stream(r#"{a="\xff"}"#, vec![entry(None, b"x", &[])]),
            1,
            "escapes to invalid UTF-8",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(None, &[b'x'; 65], &[])]),
            1,
            "line of 65 bytes exceeds the limit of 64",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(None, b"bad \xc3\x28", &[])]),
            1,
            "line is not valid UTF-8",
        ),
        (
            stream(
                r#"{a="b"}"#,
                vec![pb::EntryAdapter {
                    timestamp: None,
                    line: b"x".to_vec(),
                    structured_metadata: vec![pb::LabelPairAdapter {
                        name: b"k".to_vec(),
                        value: b"\xff".to_vec(),
                    }],
                }],
            ),
            1,
            "structured metadata is not valid UTF-8",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(ts(1, -1), b"x", &[])]),
            1,
            "timestamp nanos -1 outside",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(ts(1, 1_000_000_000), b"x", &[])]),
            1,
            "timestamp nanos 1000000000",
        ),
        (
            stream(
                r#"{a="b"}"#,
                vec![entry(ts(i64::MAX / 1_000_000_000 + 1, 0), b"x", &[])],
            ),
            1,
            "outside the range of nanosecond timestamps",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(ts(-62_135_596_800, 0), b"x", &[])]),
            1,
            "outside the range of nanosecond timestamps",
        ),
        (
            stream(
                r#"{a="b"}"#,
                vec![entry(
                    None,
                    b"x",
                    &[
                        ("a", "1"),
                        ("b", "2"),
                        ("c", "3"),
                        ("d", "4"),
                        ("e", "5"),
                        ("f", "6"),
                        ("g", "7"),
                    ],
                )],
            ),
            1,
            "7 structured metadata pairs, more than the limit of 6",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(None, b"x", &[("k-8s", "1")])]),
            1,
            "invalid structured metadata name \"k-8s\"",
        ),
        (
            stream(r#"{a="b"}"#, vec![entry(None, b"x", &[("k", &long_value)])]),
            1,
            "value of structured metadata \"k\" is 33 bytes",
        ),
    ];
    for (bad, n, needle) in cases {
        let good = stream(r#"{ok="yes"}"#, vec![entry(ts(7, 0), b"kept", &[])]);
        let body = push(vec![bad, good]);
        let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
        assert_eq!(d.rejected, n, "{needle}: {:?}", d.reasons);
        assert_eq!(d.reasons.len(), 1, "{needle}: {:?}", d.reasons);
        assert!(
            d.reasons[0].contains(needle),
            "{needle} missing from {:?}",
            d.reasons[0]
        );
        assert!(d.message().contains(needle));
        assert_eq!(d.records.len(), 1, "{needle}");
        assert_eq!(d.records[0].body, "kept");
    }
}

#[test]
fn every_json_rejection_has_a_reason() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"stream":{},"values":[["1","x"]]}"#,
            "at least one label pair is required per stream",
        ),
        (
            r#"{"stream":{"a-b":"c"},"values":[["1","x"]]}"#,
            "invalid label name \"a-b\"",
        ),
        (r#"{"values":[["1","x"]]}"#, "at least one label pair"),
        (
            r#"{"stream":{"a":"b"},"values":[["abc","x"]]}"#,
            "timestamp \"abc\" is not an integer",
        ),
        (r#"{"stream":{"a":"b"},"values":[["1.5","x"]]}"#, "timestamp \"1.5\""),
        (
            r#"{"stream":{"a":"b"},"values":[["9223372036854775808","x"]]}"#,
            "not an integer number of nanoseconds",
        ),
        (
            r#"{"stream":{"a":"b"},"values":[[9223372036854775808,"x"]]}"#,
            "not an integer number of nanoseconds",
        ),
        (
            r#"{"stream":{"a":"b"},"values":[["1","xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]]}"#,
            "line of 65 bytes",
        ),
        (
            r#"{"stream":{"a":"b"},"values":[["1","x",{"":"v"}]]}"#,
            "invalid structured metadata name \"\"",
        ),
    ];
    for (bad, needle) in cases {
        let body = format!(r#"{{"streams":[{bad},{{"stream":{{"ok":"yes"}},"values":[["7","kept"]]}}]}}"#);
        let d = decode_json(body.as_bytes(), &header("c"), &OPTS).unwrap();
        assert_eq!(d.rejected, 1, "{needle}: {:?}", d.reasons);
        assert!(d.reasons[0].contains(needle), "{needle} missing from {:?}", d.reasons);
        assert_eq!(d.records.len(), 1, "{needle}");
        assert_eq!(d.records[0].body, "kept");
    }
}

#[test]
fn malformed_bodies_are_rejected_whole() {
    let ctx = header("c");
    for body in [&b"\xff\xff\xff"[..], b"\x0a\x05ab", b"\x0a\x02\x0a\xff"] {
        match decode_protobuf(body, &ctx, &OPTS) {
            Err(Error::InvalidInput(m)) => assert!(m.contains("logproto.PushRequest"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    for body in [
        &b"not json"[..],
        b"[]",
        br#"{"streams":{}}"#,
        br#"{"streams":[[{"a":"b"},[]]]}"#,
        br#"{"streams":[],"streams":[]}"#,
        br#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},"extra"]]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[[1.5,"x"]]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#,
        br#"{"streams":[{"stream":{"a":"b"},"values":[["1","\ud800"]]}]}"#,
        b"{\"streams\":[{\"stream\":{\"a\":\"\xff\"},\"values\":[]}]}",
    ] {
        match decode_json(body, &ctx, &OPTS) {
            Err(Error::InvalidInput(m)) => assert!(m.contains("Loki JSON push request"), "{m}"),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
}

/// Why the proto structs declare `string` fields as `bytes`: prost validates `string`, and one
/// bad line would fail the whole push.
#[test]
fn prost_strings_would_fail_the_whole_request_on_invalid_utf8() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct StringEntry {
        #[prost(string, tag = "2")]
        line: String,
    }
    let raw = entry(None, b"\xff", &[]).encode_to_vec();
    let err = StringEntry::decode(raw.as_slice()).unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid string value: data is not UTF-8 encoded"),
        "{err}"
    );
}

#[test]
fn nanosecond_timestamps_are_always_storable() {
    for ns in [i64::MIN, i64::MAX] {
        assert!(tributary_storage::layout::storable_timestamp(ns.div_euclid(1_000_000)));
    }
}

#[test]
fn reasons_are_capped() {
    let streams = (0..15).map(|_| stream("{}", vec![entry(None, b"x", &[])])).collect();
    let d = decode_protobuf(&push(streams), &header("c"), &OPTS).unwrap();
    assert_eq!(d.rejected, 15);
    assert_eq!(d.reasons.len(), DecodedPush::MAX_REASONS);
    assert!(d.message().starts_with("rejected 15 log entries"));
    assert!(d.message().ends_with("; ..."));
}

#[test]
fn label_set_syntax() {
    let ok = |s: &str| parse_label_set(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    };
    assert_eq!(ok("{}"), p(&[]));
    assert_eq!(ok(" \t{ }\n"), p(&[]));
    assert_eq!(ok(r#"{a="b",}"#), p(&[("a", "b")]));
    assert_eq!(ok(r#"{b="1", a="2"}"#), p(&[("b", "1"), ("a", "2")]));
    assert_eq!(ok(r#"{"a.b"="1"}"#), p(&[("a.b", "1")]));
    assert_eq!(
        ok(r#"{a="\a\b\f\n\r\t\v\\\"", b="\x41\101\u00e9\U0001F600"}"#),
        p(&[("a", "\x07\x08\x0c\n\r\t\x0b\\\""), ("b", "AAé\u{1F600}")])
    );
    assert_eq!(ok("{a=`x\\\"\r\ny`}"), p(&[("a", "x\\\"\ny")]));
    assert_eq!(ok("{a=\"ü\"}"), p(&[("a", "ü")]));
    for (bad, needle) in [
        ("", "expected '{' at the end"),
        ("a=\"b\"", "expected '{' at byte 0"),
        ("{a=\"b\"", "expected '}' at the end"),
        ("{a=\"b\"} x", "unexpected text after"),
        ("{a=\"b}", "unterminated string"),
        ("{a=`b}", "unterminated raw string"),
        ("{a}", "expected '='"),
        ("{=\"b\"}", "expected a label name"),
        ("{a=b}", "expected a quoted string"),
        ("{a=~\"b\"}", "expected a quoted string"),
        ("{a=\"b\" c=\"d\"}", "expected '}'"),
        ("{a=\"\\q\"}", "unknown escape"),
        ("{a=\"\\'\"}", "unknown escape"),
        ("{a=\"\\x4\"}", "malformed escape"),
        ("{a=\"\\400\"}", "over \\377"),
        ("{a=\"\\12\"}", "malformed escape"),
        ("{a=\"\\ud800\"}", "not a Unicode scalar value"),
        ("{a=\"\\U00110000\"}", "not a Unicode scalar value"),
        ("{a=\"\\", "unterminated escape"),
        ("{a=\"x\ny\"}", "newline in string"),
        ("{a=\"\\xc3\"}", "invalid UTF-8"),
        ("{ü}", "expected '='"),
    ] {
        match parse_label_set(bad) {
            Err(e) => assert!(e.contains(needle), "{bad:?}: {needle} missing from {e}"),
            Ok(v) => panic!("{bad:?} parsed as {v:?}"),
        }
    }
}

/// Quotes `v` as Go would accept it, each character in a style picked by `styles`.
fn go_quote(v: &str, styles: &[u8]) -> String {
    let mut out = String::from("\"");
    for (i, c) in v.chars().enumerate() {
        let style = styles.get(i % styles.len().max(1)).copied().unwrap_or(0) % 6;
        let mut utf8 = [0u8; 4];
        let bytes = c.encode_utf8(&mut utf8).as_bytes().to_vec();
        match (c, style) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('\n', 0) => out.push_str("\\n"),
            (_, 0) => out.push(c),
            (_, 1) if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            (_, 1 | 2) => out.push_str(&format!("\\U{:08X}", c as u32)),
            (_, 3) => bytes.iter().for_each(|b| out.push_str(&format!("\\x{b:02x}"))),
            (_, 4) => bytes.iter().for_each(|b| out.push_str(&format!("\\{b:03o}"))),
            _ => match c {
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x0c' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\x0b' => out.push_str("\\v"),
                _ => out.push(c),
            },
        }
    }
    out.push('"');
    out
}

fn format_set(pairs: &[(String, String)], styles: &[u8], spaces: bool) -> String {
    let sep = if spaces { ", " } else { "," };
    let body: Vec<String> = pairs
        .iter()
        .map(|(n, v)| {
            if spaces {
                format!("{n} = {}", go_quote(v, styles))
            } else {
                format!("{n}={}", go_quote(v, styles))
            }
        })
        .collect();
    format!("{{{}}}", body.join(sep))
}

fn arb_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,12}", any::<String>()), 0..6)
}

/// Bytes near the label-set grammar, so the parser's deeper paths get exercised.
fn arb_grammar_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{", "}", "=", ",", " ", "\"", "`", "\\", "a", "_", "0", "7", "x", "u", "U", "n", "f", "é", "\n", "\r",
            "!", "~", "\\x", "\\u", "\\U00", "\\3", "d8", "ff",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn arb_push() -> impl Strategy<Value = pb::PushRequest> {
    let label_text = prop_oneof![
        arb_pairs().prop_map(|p| format_set(&p, &[0], true)),
        arb_grammar_text(),
        Just(r#"{app="x", cluster="own"}"#.to_string()),
    ];
    let metadata = prop::collection::vec(
        (
            prop_oneof!["[a-z_]{1,5}", Just("level".to_string()), Just("trace_id".to_string())],
            "[0-9a-f]{0,32}|.{0,8}",
        ),
        0..8,
    );
    let entry = (
        prop::option::of((any::<i64>(), prop_oneof![0i32..1_000_000_000, any::<i32>()])),
        prop::collection::vec(any::<u8>(), 0..80),
        metadata,
    )
        .prop_map(|(t, line, md)| pb::EntryAdapter {
            timestamp: t.map(|(seconds, nanos)| pb::Timestamp { seconds, nanos }),
            line,
            structured_metadata: md
                .into_iter()
                .map(|(n, v): (String, String)| pb::LabelPairAdapter {
                    name: n.into_bytes(),
                    value: v.into_bytes(),
                })
                .collect(),
        });
    let stream = (label_text, prop::collection::vec(entry, 0..5), any::<u64>()).prop_map(|(l, entries, hash)| {
        pb::StreamAdapter {
            labels: l.into_bytes(),
            entries,
            hash,
        }
    });
    prop::collection::vec(stream, 0..5).prop_map(|streams| pb::PushRequest { streams })
}

fn check_invariants(d: &DecodedPush, total_entries: u64, opts: &Options) {
    assert_eq!(
        d.records.len() as u64 + d.rejected,
        total_entries,
        "every entry kept or counted"
    );
    assert_eq!(d.reasons.is_empty(), d.rejected == 0);
    for r in &d.records {
        let l = (*r.labels).clone().into_vec();
        assert!(l.windows(2).all(|w| w[0].name < w[1].name), "{:?}", r.labels);
        assert!(r.labels.get("cluster").is_some(), "{:?}", r.labels);
        assert!(l.len() <= opts.max_labels);
        assert!(r.body.len() <= opts.max_line_bytes);
        assert!(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&r.attributes).is_ok());
        assert!(r.trace_id.is_empty() || r.trace_id.len() == 32);
        assert!(r.span_id.is_empty() || r.span_id.len() == 16);
    }
}

proptest! {
    #[test]
    fn label_set_round_trip(
        pairs in arb_pairs(),
        styles in prop::collection::vec(any::<u8>(), 1..8),
        spaces in any::<bool>(),
    ) {
        let text = format_set(&pairs, &styles, spaces);
        prop_assert_eq!(parse_label_set(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?, pairs);
    }

    #[test]
    fn label_set_parser_never_panics(s in any::<String>(), g in arb_grammar_text()) {
        let _ = parse_label_set(&s);
        let _ = parse_label_set(&g);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let ctx = header("c");
        let _ = decode_protobuf(&bytes, &ctx, &OPTS);
        let _ = decode_json(&bytes, &ctx, &OPTS);
    }

    #[test]
    fn arbitrary_push_requests_keep_or_count_every_entry(req in arb_push(), token in any::<bool>()) {
        let ctx = ClusterContext {
            token_cluster: token.then(|| "tok".to_string()),
            header_cluster: None,
        };
        let total: u64 = req.streams.iter().map(|s| s.entries.len() as u64).sum();
        let body = req.encode_to_vec();
        let d = decode_protobuf(&body, &ctx, &OPTS).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_invariants(&d, total, &OPTS);
        if token {
            prop_assert!(d.records.iter().all(|r| r.labels.get("cluster") == Some("tok")));
        }
        // Deterministic: WAL replay decodes the same body again.
        prop_assert_eq!(decode_protobuf(&body, &ctx, &OPTS).ok(), Some(d));
    }

    #[test]
    fn arbitrary_json_pushes_keep_or_count_every_entry(
        streams in prop::collection::vec(
            (
                prop::collection::btree_map("[a-zA-Z_-][a-z0-9]{0,3}", ".{0,6}", 0..4),
                prop::collection::vec(("-?[0-9]{1,20}|x", ".{0,70}", prop::option::of(prop::collection::btree_map("[a-z_]{0,4}", ".{0,4}", 0..8))), 0..4),
            ),
            0..4,
        ),
    ) {
        let total: u64 = streams.iter().map(|(_, v)| v.len() as u64).sum();
        let json = serde_json::json!({
            "streams": streams.iter().map(|(labels, values)| serde_json::json!({
                "stream": labels,
                "values": values.iter().map(|(t, l, md)| match md {
                    Some(md) => serde_json::json!([t, l, md]),
                    None => serde_json::json!([t, l]),
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let body = serde_json::to_vec(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let d = decode_json(&body, &header("h"), &OPTS).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_invariants(&d, total, &OPTS);
    }
}
