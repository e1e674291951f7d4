use super::*;

fn record(labels: &[(&str, &str)], attributes: &str, severity_number: i32, severity_text: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(labels).into(),
        attributes: attributes.into(),
        severity_number,
        severity_text: severity_text.into(),
        ..LogRecord::default()
    }
}

#[test]
fn a_records_level_follows_detected_level_then_level_then_severity() {
    let cases = [
        // detected_level in structured metadata (where ingest puts it) wins over severity.
        (record(&[], r#"{"detected_level":"ERROR"}"#, 9, "info"), "error"),
        // A stream label wins over structured metadata of the same name.
        (
            record(&[("detected_level", "debug")], r#"{"detected_level":"error"}"#, 0, ""),
            "debug",
        ),
        // `level` when no detected_level; `warning` is `warn`.
        (record(&[("level", "warning")], "{}", 17, "error"), "warn"),
        (record(&[], r#"{"level":"fatal"}"#, 0, ""), "fatal"),
        // A `level` present stops the severity from deciding, even when it is not a level.
        (record(&[], r#"{"level":"loud"}"#, 17, ""), "unknown"),
        (record(&[], r#"{"level":3,"trace_id":"ab"}"#, 17, ""), "unknown"),
        // Escaped text, other fields of any type around it, a repeated key (the last wins).
        (
            record(&[], r#"{"n":{"a":[1,2]},"detected_level":"w\u0061rn"}"#, 0, ""),
            "warn",
        ),
        (
            record(&[], r#"{"detected_level":"info","detected_level":"error"}"#, 0, ""),
            "error",
        ),
        // Not an object: no metadata.
        (record(&[], r#""level""#, 9, ""), "info"),
        // Else the OTLP severity: number first, then text.
        (record(&[], "{}", 18, "info"), "error"),
        (record(&[], "", 0, "WARN"), "warn"),
        (record(&[], "", 0, "chatty"), "unknown"),
        (record(&[], "", 0, ""), "unknown"),
    ];
    for (rec, want) in cases {
        assert_eq!(record_level(&rec), want, "{rec:?}");
    }
    assert_eq!(level_named("Critical"), "critical");
    assert_eq!(level_named("verbose"), "unknown");
}

#[test]
fn patterns_made_apart_merge_into_one_with_their_counts_summed() {
    // Two places (files, sources) each cluster their own lines of one template.
    let mut a = PatternSum::default();
    let mut b = PatternSum::default();
    for i in 0..10 {
        a.add_line("info", &format!("user {i} logged in from 10.0.0.{i}"), 0);
        b.add_line("info", &format!("user {} logged in from 10.0.1.{i}", i + 100), 60);
        b.add_line("error", &format!("disk {i} failed on node n{i}"), 60);
    }
    let mut sum = PatternSum::default();
    sum.absorb(a.finish());
    sum.absorb(b.finish());
    let got = sum.finish();
    assert_eq!(
        got.series,
        [
            PatternSeries {
                level: "error".into(),
                pattern: "disk <_> failed on node <_>".into(),
                samples: vec![(60, 10)],
            },
            PatternSeries {
                level: "info".into(),
                pattern: "user <_> logged in from <_>".into(),
                samples: vec![(0, 10), (60, 10)],
            },
        ]
    );
    assert!(!got.truncated);
}

#[test]
fn a_pattern_shortened_in_print_still_merges_and_keeps_its_placeholders() {
    // "a <_> <_> <_>" prints as "a <_>": two tokens, under Drain's line minimum, yet kept.
    let mut sum = PatternSum::default();
    sum.add_pattern("info", "ping <_>", [(0, 3)]);
    sum.add_pattern("info", "ping <_>", [(0, 2), (10, 1)]);
    let got = sum.finish();
    assert_eq!(got.series.len(), 1);
    assert_eq!(got.series[0].pattern, "ping <_>");
    assert_eq!(got.series[0].samples, [(0, 5), (10, 1)]);
}

#[test]
fn buckets_are_aligned_to_multiples_of_the_step() {
    let req = PatternRequest {
        logs: LogRequest {
            matchers: Vec::new(),
            start: 0,
            end: 100,
            line_hints: Vec::new(),
            direction: Direction::Backward,
            limit: None,
        },
        step: 30,
        max_lines: 1,
    };
    assert_eq!(req.bucket_of(59), 30);
    assert_eq!(req.bucket_of(-1), -30);
    assert!(PatternRequest { step: 0, ..req }.check().is_err());
}
