//! The engine end to end over the in-memory source: every LogQL feature with asserted results.

use std::sync::Arc;

use tributary_storage::read::{Direction, LineHint};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::Labels;

use super::mem::{MemLogSource, record};
use super::*;

const S: i64 = 1_000_000_000;

fn fixture() -> Vec<LogRecord> {
    let p1 = [("cluster", "prod-1"), ("service_name", "checkout")];
    let p2 = [("cluster", "prod-2"), ("service_name", "checkout")];
    let dev = [("cluster", "dev"), ("service_name", "cart")];
    vec![
        record(
            &p1,
            S,
            r#"{"level":"error","status":500,"msg":"timeout calling db","latency":"250ms","size":"2KB"}"#,
        ),
        record(
            &p1,
            2 * S,
            r#"{"level":"info","status":200,"msg":"ok","latency":"50ms","size":"512B"}"#,
        ),
        record(
            &p1,
            3 * S,
            r#"{"level":"error","status":503,"msg":"timeout upstream","latency":"1.5s","size":"3KB"}"#,
        ),
        record(&p1, 4 * S, "not json timeout"),
        record(
            &p2,
            2 * S,
            r#"level=error status=502 msg="upstream timeout" duration=300ms"#,
        ),
        record(&p2, 5 * S, "level=info status=200 msg=ok duration=10ms"),
        record(&dev, 3 * S, r#"10.0.0.1 - - [x] "GET /cart HTTP/1.1" 200 512"#),
        record(&dev, 6 * S, r#"10.0.0.2 - - [x] "POST /cart HTTP/1.1" 500 1024"#),
    ]
}

fn engine_with(records: Vec<LogRecord>, cfg: LogqlConfig) -> (LogqlEngine, Arc<MemLogSource>) {
    let source = Arc::new(MemLogSource::new(records));
    (LogqlEngine::new(source.clone(), cfg), source)
}

fn engine() -> LogqlEngine {
    engine_with(fixture(), LogqlConfig::default()).0
}

async fn logs(e: &LogqlEngine, query: &str, limit: usize, direction: Direction) -> Vec<Stream> {
    let q = RangeQuery {
        query: query.into(),
        start: 0,
        end: 100 * S,
        step: S,
        limit,
        direction,
    };
    match e
        .query_range(&q)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
        .value
    {
        LogqlValue::Streams(s) => s,
        other => panic!("{query}: not streams: {other:?}"),
    }
}

/// `(seconds, line)` of every entry, streams in label order.
async fn lines(query: &str) -> Vec<(i64, String)> {
    logs(&engine(), query, 100, Direction::Forward)
        .await
        .into_iter()
        .flat_map(|s| s.entries)
        .map(|e| (e.timestamp / S, e.line))
        .collect()
}

async fn seconds(query: &str) -> Vec<i64> {
    let mut v: Vec<i64> = lines(query).await.into_iter().map(|(t, _)| t).collect();
    v.sort();
    v
}

async fn instant(e: &LogqlEngine, query: &str, t: i64) -> Vec<(Labels, f64)> {
    match e
        .query_instant(query, t)
        .await
        .unwrap_or_else(|err| panic!("{query}: {err}"))
        .value
    {
        LogqlValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.value)).collect(),
        other => panic!("{query}: not a vector: {other:?}"),
    }
}

async fn value(query: &str, t: i64) -> f64 {
    let v = instant(&engine(), query, t).await;
    assert_eq!(v.len(), 1, "{query}: {v:?}");
    v[0].1
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

#[tokio::test]
async fn logql_issue_example_with_loki_error_semantics() {
    let q = r#"{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500"#;
    let streams = logs(&engine(), q, 100, Direction::Backward).await;
    // The lines that are not JSON get an `__error__` label and no `status`: Loki 3's numeric
    // filter drops a line without the label, error or not (Loki 2 let errored lines through).
    let errors: Vec<&Stream> = streams
        .iter()
        .filter(|s| s.labels.get("__error__") == Some("JSONParserErr"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // A label that is there but not a number keeps the line, marked LabelFilterErr unless an
    // earlier stage's error is already on it.
    let marked = logs(
        &engine(),
        r#"{cluster=~"prod-.*"} | json | msg > 1"#,
        100,
        Direction::Backward,
    )
    .await;
    assert!(!marked.is_empty());
    for s in &marked {
        let err = s.labels.get("__error__");
        assert!(matches!(err, Some("LabelFilterErr") | Some("JSONParserErr")), "{s:?}");
    }
    let ok: Vec<i64> = streams
        .iter()
        .filter(|s| s.labels.get("__error__").is_none())
        .flat_map(|s| s.entries.iter().map(|e| e.timestamp / S))
        .collect();
    assert_eq!(ok, [3, 1]);
    let with_status = streams.iter().find(|s| s.labels.get("status") == Some("503")).unwrap();
    assert_eq!(with_status.labels.get("msg"), Some("timeout upstream"));
    assert_eq!(with_status.labels.get("cluster"), Some("prod-1"));
    assert_eq!(seconds(&format!(r#"{q} | __error__="""#)).await, [1, 3]);
}

#[tokio::test]
async fn logql_line_filters_are_chained_hinted_and_or_ed() {
    let (e, source) = engine_with(fixture(), LogqlConfig::default());
    let streams = logs(
        &e,
        r#"{service_name="checkout"} |= "timeout" != "db""#,
        100,
        Direction::Forward,
    )
    .await;
    let got: Vec<i64> = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.timestamp / S))
        .collect();
    assert_eq!(got, [3, 4, 2]);
    let req = source.requests.lock().unwrap()[0].clone();
    assert_eq!(
        req.line_hints,
        vec![LineHint::Contains("timeout".into()), LineHint::NotContains("db".into())]
    );
    assert_eq!(seconds(r#"{cluster="prod-1"} |~ "time.*(db|up)""#).await, [1, 3]);
    assert_eq!(
        seconds(r#"{cluster="prod-1"} !~ "timeout|ok""#).await,
        Vec::<i64>::new()
    );
    assert_eq!(seconds(r#"{cluster="prod-1"} |= "db" or "upstream""#).await, [1, 3]);
    assert_eq!(seconds(r#"{cluster="prod-1"} != "db" or "upstream""#).await, [2, 4]);
    assert_eq!(seconds(r#"{service_name="cart"} |> "<_> \"POST <_>""#).await, [6]);
    assert_eq!(seconds(r#"{service_name="cart"} !> "<_> \"POST <_>""#).await, [3]);
    // A filter after line_format applies to the formatted line, so it is not hinted.
    let (e, source) = engine_with(fixture(), LogqlConfig::default());
    logs(
        &e,
        r#"{cluster="dev"} | line_format "x" |= "x""#,
        10,
        Direction::Forward,
    )
    .await;
    assert!(source.requests.lock().unwrap()[0].line_hints.is_empty());
}

#[tokio::test]
async fn logql_parsers_extract_labels() {
    let s = logs(
        &engine(),
        r#"{cluster="prod-2"} | logfmt | duration > 100ms"#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].labels,
        l(&[
            ("cluster", "prod-2"),
            ("duration", "300ms"),
            ("level", "error"),
            ("msg", "upstream timeout"),
            ("service_name", "checkout"),
            ("status", "502")
        ])
    );
    assert_eq!(seconds(r#"{cluster="prod-2"} | logfmt | level="info""#).await, [5]);
    assert_eq!(
        seconds(r#"{cluster="prod-2"} | logfmt lvl="level" | lvl="error""#).await,
        [2]
    );
    let s = logs(
        &engine(),
        r#"{service_name="cart"} | regexp `(?P<ip>\S+) .* (?P<status>\d+) (?P<size>\d+)$` | status == 500"#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(s[0].labels.get("ip"), Some("10.0.0.2"));
    assert_eq!(s[0].entries.len(), 1);
    let s = logs(
        &engine(),
        r#"{service_name="cart"} | pattern `<ip> - - [<_>] "<method> <path> <_>" <status> <size>` | method="POST""#,
        10,
        Direction::Forward,
    )
    .await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels.get("path"), Some("/cart"));
    assert_eq!(s[0].labels.get("size"), Some("1024"));
    assert_eq!(
        seconds(r#"{cluster="prod-1"} | json level="level" | level="info""#).await,
        [2]
    );
}

#[tokio::test]
async fn logql_label_filters_compare_numbers_durations_and_bytes() {
    let ok = r#"{cluster="prod-1"} | json | __error__="""#;
    assert_eq!(seconds(&format!("{ok} | size > 2KB")).await, [3]);
    assert_eq!(seconds(&format!("{ok} | size >= 2KB")).await, [1, 3]);
    assert_eq!(seconds(&format!("{ok} | latency <= 250ms")).await, [1, 2]);
    assert_eq!(seconds(&format!("{ok} | status != 200")).await, [1, 3]);
    assert_eq!(seconds(&format!("{ok} | status == 200")).await, [2]);
    assert_eq!(seconds(&format!(r#"{ok} | status = "200""#)).await, [2]);
    assert_eq!(seconds(&format!(r#"{ok} | level =~ "err.*""#)).await, [1, 3]);
    assert_eq!(seconds(&format!(r#"{ok} | level !~ "err.*""#)).await, [2]);
    assert_eq!(
        seconds(&format!(r#"{ok} | (status == 200 or level="error") and latency < 1s"#)).await,
        [1, 2]
    );
    assert_eq!(seconds(&format!(r#"{ok} | status >= 500, latency > 1s"#)).await, [3]);
    assert_eq!(seconds(&format!(r#"{ok} | status >= 500 latency < 1s"#)).await, [1]);
    // A value that does not convert marks the line instead of dropping it.
    let s = logs(
        &engine(),
        r#"{cluster="prod-1"} | json | msg > 5"#,
        10,
        Direction::Forward,
    )
    .await;
    let marked: Vec<&str> = s.iter().filter_map(|s| s.labels.get("__error__")).collect();
    assert!(marked.contains(&"LabelFilterErr"), "{s:?}");
    // A missing label drops the line in a numeric comparison.
    assert_eq!(seconds(&format!("{ok} | nope > 1")).await, Vec::<i64>::new());
}

#[tokio::test]
async fn logql_formatting_stages() {
    let mut got =
        lines(r#"{cluster="prod-1"} | json | __error__="" | line_format "{{.level | ToUpper}} {{ .msg }}""#).await;
    got.sort();
    assert_eq!(
        got.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
        ["ERROR timeout calling db", "INFO ok", "ERROR timeout upstream"]
    );
    let s = logs(
        &engine(),
        r#"{cluster="prod-1"} | json | __error__="" | label_format lvl=level, code="{{.status}}!" | keep lvl, code"#,
        10,
        Direction::Forward,
    )
    .await;
    let labels: Vec<Labels> = s.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(
        labels,
        [
            l(&[("code", "200!"), ("lvl", "info")]),
            l(&[("code", "500!"), ("lvl", "error")]),
            l(&[("code", "503!"), ("lvl", "error")])
        ]
    );
    let s = logs(
        &engine(),
        r#"{cluster="prod-2"} | logfmt | drop msg, duration, status, level="info""#,
        10,
        Direction::Forward,
    )
    .await;
    let labels: Vec<Labels> = s.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(
        labels,
        [
            l(&[("cluster", "prod-2"), ("level", "error"), ("service_name", "checkout")]),
            l(&[("cluster", "prod-2"), ("service_name", "checkout")]),
        ]
    );
    let colored = vec![record(&[("a", "b")], S, "\x1b[31mred\x1b[0m text")];
    let (e, _) = engine_with(colored, LogqlConfig::default());
    let s = logs(&e, r#"{a="b"} | decolorize"#, 10, Direction::Forward).await;
    assert_eq!(s[0].entries[0].line, "red text");
    let packed = vec![record(&[("a", "b")], S, r#"{"_entry":"the line","pod":"p1","n":3}"#)];
    let (e, _) = engine_with(packed, LogqlConfig::default());
    let s = logs(&e, r#"{a="b"} | unpack"#, 10, Direction::Forward).await;
    assert_eq!(s[0].entries[0].line, "the line");
    assert_eq!(s[0].labels, l(&[("a", "b"), ("pod", "p1")]));
}

#[tokio::test]
async fn logql_direction_limit_and_chunked_reads() {
    let q = r#"{service_name="checkout"}"#;
    let (e, source) = engine_with(fixture(), LogqlConfig::default());
    let s = logs(&e, q, 2, Direction::Backward).await;
    let got: Vec<i64> = s
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.timestamp / S))
        .collect();
    assert_eq!(got, [4, 5]);
    // Nothing can drop a line after the source, so the source gets the limit.
    assert_eq!(source.requests.lock().unwrap()[0].limit, Some(2));
    let s = logs(&e, q, 3, Direction::Forward).await;
    let mut got: Vec<i64> = s
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.timestamp / S))
        .collect();
    got.sort();
    assert_eq!(got, [1, 2, 2]);

    // A regex filter can drop lines: reads go in chunks of 1 and still find every match, even
    // with many records at one timestamp.
    let mut records = fixture();
    for i in 0..5 {
        records.push(record(
            &[("cluster", "prod-1"), ("service_name", "checkout")],
            4 * S,
            &format!("same ts timeout {i}"),
        ));
    }
    let cfg = LogqlConfig {
        fetch_chunk: 1,
        ..LogqlConfig::default()
    };
    let (e, source) = engine_with(records, cfg.clone());
    for direction in [Direction::Forward, Direction::Backward] {
        let s = logs(&e, r#"{cluster="prod-1"} |~ "time.ut""#, 100, direction).await;
        let mut got: Vec<String> = s
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.line.clone()))
            .collect();
        assert_eq!(got.len(), 8, "{direction:?}: {got:?}");
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8);
    }
    let s = logs(&e, r#"{cluster="prod-1"} |~ "time.ut""#, 3, Direction::Backward).await;
    assert_eq!(s.iter().map(|s| s.entries.len()).sum::<usize>(), 3);
    assert!(source.requests.lock().unwrap().iter().all(|r| r.limit.is_some()));

    // A filter that keeps nothing: chunks grow (doubling, up to 64 × fetch_chunk) instead of
    // one scan per chunk of the configured size.
    let many: Vec<_> = (0..200)
        .map(|i| record(&[("cluster", "big")], (i + 1) * S, &format!("line {i}")))
        .collect();
    let (e, source) = engine_with(many, cfg);
    let s = logs(&e, r#"{cluster="big"} |~ "never""#, 10, Direction::Backward).await;
    assert!(s.is_empty());
    let limits: Vec<usize> = source
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.limit.unwrap())
        .collect();
    assert_eq!(limits[..4], [10, 20, 40, 64], "{limits:?}");
    assert!(limits.iter().all(|l| *l <= 64), "{limits:?}");
    assert!(limits.len() < 12, "{} scans for 200 records: {limits:?}", limits.len());
    // Above the configured maximum, Loki's error.
    let q = RangeQuery {
        query: r#"{a="b"}"#.into(),
        start: 0,
        end: S,
        step: S,
        limit: 5001,
        direction: Direction::Backward,
    };
    assert!(
        engine()
            .query_range(&q)
            .await
            .unwrap_err()
            .to_string()
            .contains("max entries limit")
    );
}

#[tokio::test]
async fn logql_structured_metadata_is_labels() {
    let mut r = record(&[("cluster", "a"), ("service_name", "s")], S, "hello");
    r.attributes = r#"{"user.name":"bob","code":7,"ok":true,"nested":{"x":1},"cluster":"ignored"}"#.into();
    r.trace_id = "0af7651916cd43dd8448eb211c80319c".into();
    let mut r2 = record(&[("cluster", "a"), ("service_name", "s")], 2 * S, "bye");
    r2.attributes = r#"{"user.name":"alice"}"#.into();
    let (e, _) = engine_with(vec![r, r2], LogqlConfig::default());
    let s = logs(&e, r#"{cluster="a"} | user_name="bob""#, 10, Direction::Forward).await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].labels,
        l(&[
            ("cluster", "a"),
            ("code", "7"),
            ("ok", "true"),
            ("service_name", "s"),
            ("trace_id", "0af7651916cd43dd8448eb211c80319c"),
            ("user_name", "bob")
        ])
    );
    let v = instant(&e, r#"sum by (user_name) (count_over_time({cluster="a"}[10s]))"#, 5 * S).await;
    assert_eq!(
        v,
        [(l(&[("user_name", "alice")]), 1.0), (l(&[("user_name", "bob")]), 1.0)]
    );
}

#[tokio::test]
async fn logql_count_over_time_range_query_uses_left_open_windows() {
    let q = RangeQuery {
        query: r#"count_over_time({service_name="checkout"}[2s])"#.into(),
        start: 2 * S,
        end: 6 * S,
        step: 2 * S,
        limit: 100,
        direction: Direction::Backward,
    };
    let LogqlValue::Matrix(m) = engine().query_range(&q).await.unwrap().value else {
        panic!()
    };
    type Points = Vec<(i64, f64)>;
    let got: Vec<(Option<&str>, Points)> = m
        .iter()
        .map(|s| {
            (
                s.labels.get("cluster"),
                s.samples.iter().map(|p| (p.timestamp, p.value)).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("prod-1"), vec![(2000, 2.0), (4000, 2.0)]),
            (Some("prod-2"), vec![(2000, 1.0), (6000, 1.0)]),
        ]
    );
}

#[tokio::test]
async fn logql_issue_slo_query() {
    let v = instant(
        &engine(),
        r#"sum by (cluster) (rate({service_name="checkout"} |= "error" [5m]))"#,
        10 * S,
    )
    .await;
    assert_eq!(
        v,
        [
            (l(&[("cluster", "prod-1")]), 2.0 / 300.0),
            (l(&[("cluster", "prod-2")]), 1.0 / 300.0)
        ]
    );
}

#[tokio::test]
async fn logql_unwrapped_range_aggregations() {
    // Each line has its own labels; grouping by cluster aggregates them all.
    let sel = r#"{cluster="prod-1"} | json | __error__="""#;
    let t = 10 * S;
    let value = |q: String| async move { value(&format!("{q} by (cluster)"), 10 * S).await };
    assert_eq!(
        value(format!("sum_over_time({sel} | unwrap status [10s])")).await,
        1203.0
    );
    assert_eq!(
        value(format!("avg_over_time({sel} | unwrap duration(latency) [10s])")).await,
        0.6
    );
    assert_eq!(
        value(format!("max_over_time({sel} | unwrap bytes(size) [10s])")).await,
        3000.0
    );
    assert_eq!(
        value(format!("min_over_time({sel} | unwrap bytes(size) [10s])")).await,
        512.0
    );
    assert_eq!(
        value(format!("first_over_time({sel} | unwrap status [10s])")).await,
        500.0
    );
    assert_eq!(
        value(format!("last_over_time({sel} | unwrap status [10s])")).await,
        503.0
    );
    assert_eq!(
        value(format!("quantile_over_time(0.5, {sel} | unwrap status [10s])")).await,
        500.0
    );
    let sd = value(format!("stddev_over_time({sel} | unwrap status [10s])")).await;
    let mean = 1203.0 / 3.0;
    let want = (([500.0f64, 200.0, 503.0]
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum::<f64>())
        / 3.0)
        .sqrt();
    assert!((sd - want).abs() < 1e-9, "{sd} vs {want}");
    assert_eq!(value(format!("rate({sel} | unwrap status [10s])")).await, 120.3);
    assert_eq!(
        value(format!("count_over_time({sel} | unwrap status [10s])")).await,
        3.0
    );
    // Grouping on the range aggregation merges series before the function.
    let v = instant(
        &engine(),
        &format!("sum_over_time({sel} | unwrap status [10s]) by (level)"),
        t,
    )
    .await;
    assert_eq!(
        v,
        [(l(&[("level", "error")]), 1003.0), (l(&[("level", "info")]), 200.0)]
    );
    // A filter after the unwrap drops what does not convert.
    let q = r#"sum_over_time({cluster="prod-1"} | json | unwrap msg | __error__="" [10s])"#;
    assert!(instant(&engine(), q, t).await.is_empty());
}

#[tokio::test]
async fn logql_pipeline_errors_fail_metric_queries() {
    let q = r#"sum_over_time({cluster="prod-1"} | json | unwrap status [10s])"#;
    let err = engine().query_instant(q, 10 * S).await.unwrap_err().to_string();
    assert!(err.starts_with("pipeline error: 'JSONParserErr'"), "{err}");
    let q = r#"sum_over_time({cluster="prod-1"} | json | __error__="" | unwrap msg [10s])"#;
    let err = engine().query_instant(q, 10 * S).await.unwrap_err().to_string();
    assert!(err.starts_with("pipeline error: 'SampleExtractionErr'"), "{err}");
}

#[tokio::test]
async fn logql_bytes_absent_and_offset() {
    let q = r#"bytes_over_time({cluster="prod-2"}[10s])"#;
    let want = ("level=error status=502 msg=\"upstream timeout\" duration=300ms".len()
        + "level=info status=200 msg=ok duration=10ms".len()) as f64;
    assert_eq!(value(q, 10 * S).await, want);
    assert_eq!(
        value(r#"bytes_rate({cluster="prod-2"}[10s])"#, 10 * S).await,
        want / 10.0
    );
    let v = instant(
        &engine(),
        r#"absent_over_time({service_name="nope", x=~"y"}[5m])"#,
        10 * S,
    )
    .await;
    assert_eq!(v, [(l(&[("service_name", "nope")]), 1.0)]);
    assert!(
        instant(&engine(), r#"absent_over_time({service_name="cart"}[5m])"#, 10 * S)
            .await
            .is_empty()
    );
    // At 8s with offset 4s the window is (2s, 4s]: prod-1's lines at 3s and 4s.
    assert_eq!(
        value(r#"count_over_time({cluster="prod-1"}[2s] offset 4s)"#, 8 * S).await,
        2.0
    );
    assert_eq!(
        value(
            r#"count_over_time({cluster="prod-1"} |= "timeout" [2s] offset 4s)"#,
            8 * S
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn logql_vector_aggregations() {
    let inner = r#"count_over_time({cluster=~".+"}[10s])"#;
    let t = 10 * S;
    assert_eq!(value(&format!("sum({inner})"), t).await, 8.0);
    assert_eq!(value(&format!("avg({inner})"), t).await, 8.0 / 3.0);
    assert_eq!(value(&format!("min({inner})"), t).await, 2.0);
    assert_eq!(value(&format!("max({inner})"), t).await, 4.0);
    assert_eq!(value(&format!("count({inner})"), t).await, 3.0);
    let sd = value(&format!("stddev({inner})"), t).await;
    assert!((sd - (8.0f64 / 9.0).sqrt()).abs() < 1e-9);
    let v = instant(&engine(), &format!("sum by (service_name) ({inner})"), t).await;
    assert_eq!(
        v,
        [
            (l(&[("service_name", "cart")]), 2.0),
            (l(&[("service_name", "checkout")]), 6.0)
        ]
    );
    let after = instant(&engine(), &format!("sum({inner}) by (service_name)"), t).await;
    assert_eq!(after, v);
    let without = instant(&engine(), &format!("sum without (cluster) ({inner})"), t).await;
    assert_eq!(without, v);
    let top = instant(&engine(), &format!("topk(1, {inner})"), t).await;
    assert_eq!(top, [(l(&[("cluster", "prod-1"), ("service_name", "checkout")]), 4.0)]);
    let bottom = instant(&engine(), &format!("bottomk(2, {inner})"), t).await;
    assert_eq!(bottom.iter().map(|p| p.1).collect::<Vec<_>>(), [2.0, 2.0]);
    let top_by = instant(&engine(), &format!("topk by (service_name) (1, {inner})"), t).await;
    assert_eq!(top_by.len(), 2);
    // A k beyond the number of series keeps them all, never none.
    let all = instant(&engine(), inner, t).await;
    assert_eq!(all.len(), 3);
    for k in ["1e12", "9999999999", "1e300"] {
        let mut top = instant(&engine(), &format!("topk({k}, {inner})"), t).await;
        top.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(top, all, "topk({k})");
    }
}

#[tokio::test]
async fn logql_binary_operators() {
    let t = 10 * S;
    let c = |sel: &str| format!(r#"sum by (cluster) (count_over_time({sel}[10s]))"#);
    let prod = c(r#"{service_name="checkout"}"#);
    let errors = c(r#"{service_name="checkout"} |= "error" |= "level""#);
    // Division matches series on all labels.
    let v = instant(&engine(), &format!("{errors} / {prod}"), t).await;
    assert_eq!(
        v,
        [(l(&[("cluster", "prod-1")]), 0.5), (l(&[("cluster", "prod-2")]), 0.5)]
    );
    let v = instant(&engine(), &format!("{prod} * 2 + 1"), t).await;
    assert_eq!(v.iter().map(|p| p.1).collect::<Vec<_>>(), [9.0, 5.0]);
    let v = instant(&engine(), &format!("{prod} - 1"), t).await;
    assert_eq!(v.iter().map(|p| p.1).collect::<Vec<_>>(), [3.0, 1.0]);
    let v = instant(&engine(), &format!("{prod} % 3 ^ 1"), t).await;
    assert_eq!(v.iter().map(|p| p.1).collect::<Vec<_>>(), [1.0, 2.0]);
    let v = instant(&engine(), &format!("{prod} > 2"), t).await;
    assert_eq!(v, [(l(&[("cluster", "prod-1")]), 4.0)]);
    let v = instant(&engine(), &format!("{prod} > bool 2"), t).await;
    assert_eq!(v.iter().map(|p| p.1).collect::<Vec<_>>(), [1.0, 0.0]);
    let v = instant(&engine(), &format!("3 < {prod}"), t).await;
    assert_eq!(v, [(l(&[("cluster", "prod-1")]), 4.0)]);
    let v = instant(&engine(), &format!("{prod} == {prod}"), t).await;
    assert_eq!(v.len(), 2);
    let v = instant(&engine(), &format!("{prod} != bool {prod}"), t).await;
    assert_eq!(v.iter().map(|p| p.1).collect::<Vec<_>>(), [0.0, 0.0]);
    let v = instant(&engine(), &format!(r#"{prod} and {}"#, c(r#"{cluster="prod-2"}"#)), t).await;
    assert_eq!(v, [(l(&[("cluster", "prod-2")]), 2.0)]);
    let v = instant(
        &engine(),
        &format!(r#"{prod} unless {}"#, c(r#"{cluster="prod-2"}"#)),
        t,
    )
    .await;
    assert_eq!(v, [(l(&[("cluster", "prod-1")]), 4.0)]);
    let v = instant(&engine(), &format!(r#"{} or {prod}"#, c(r#"{cluster="dev"}"#)), t).await;
    assert_eq!(v.len(), 3);
    let v = instant(
        &engine(),
        &format!(
            r#"sum by (cluster, service_name) (count_over_time({{cluster="prod-1"}}[10s])) / on (cluster) {prod}"#
        ),
        t,
    )
    .await;
    assert_eq!(v, [(l(&[("cluster", "prod-1")]), 1.0)]);
    let v = instant(&engine(), "vector(3) * 2", t).await;
    assert_eq!(v, [(Labels::default(), 6.0)]);
    match engine().query_instant("1 + 2 * 3", t).await.unwrap().value {
        LogqlValue::Scalar { timestamp, value } => assert_eq!((timestamp, value), (10_000, 7.0)),
        other => panic!("{other:?}"),
    }
    match engine().query_instant("2 > bool 1", t).await.unwrap().value {
        LogqlValue::Scalar { value, .. } => assert_eq!(value, 1.0),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn logql_query_entry_points_check_their_inputs() {
    let e = engine();
    let err = e.query_instant(r#"{a="b"}"#, S).await.unwrap_err().to_string();
    assert!(err.contains("log queries are not supported as an instant query type"));
    let mut q = RangeQuery {
        query: r#"count_over_time({a="b"}[1m])"#.into(),
        start: 0,
        end: 100 * S,
        step: 0,
        limit: 10,
        direction: Direction::Backward,
    };
    assert!(e.query_range(&q).await.unwrap_err().to_string().contains("step"));
    q.step = 1;
    assert!(
        e.query_range(&q)
            .await
            .unwrap_err()
            .to_string()
            .contains("11,000 points")
    );
    q.step = S;
    q.end = -1;
    assert!(e.query_range(&q).await.is_err());
    // A scalar over a range is one series without labels.
    q.end = 2 * S;
    q.query = "1".into();
    let LogqlValue::Matrix(m) = e.query_range(&q).await.unwrap().value else {
        panic!()
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].samples.len(), 3);
}

#[tokio::test]
async fn logql_listings_and_stats() {
    let e = engine();
    assert_eq!(e.labels(0, 100 * S, None).await.unwrap(), ["cluster", "service_name"]);
    assert_eq!(
        e.label_values("cluster", 0, 100 * S, Some(r#"{service_name="checkout"}"#))
            .await
            .unwrap(),
        ["prod-1", "prod-2"]
    );
    assert_eq!(e.label_values("cluster", 0, 2 * S, None).await.unwrap(), ["prod-1"]);
    let series = e
        .series(
            &[r#"{cluster="dev"}"#.into(), r#"{cluster="prod-2"}"#.into()],
            0,
            100 * S,
        )
        .await
        .unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(e.series(&[], 0, 100 * S).await.unwrap().len(), 3);
    let stats = e.stats(r#"{service_name="cart"}"#, 0, 100 * S).await.unwrap();
    assert_eq!(stats.streams, 1);
    assert_eq!(stats.entries, 2);
    assert_eq!(
        stats.bytes,
        (r#"10.0.0.1 - - [x] "GET /cart HTTP/1.1" 200 512"#.len()
            + r#"10.0.0.2 - - [x] "POST /cart HTTP/1.1" 500 1024"#.len()) as u64
    );
    assert!(e.labels(0, S, Some("{bad")).await.is_err());
    let metric = e
        .stats(
            r#"sum(rate({service_name="cart"} |= "x" [1m])) / count_over_time({cluster="prod-2"}[1m])"#,
            0,
            100 * S,
        )
        .await
        .unwrap();
    assert_eq!((metric.streams, metric.entries), (2, 4));
    assert!(e.stats("{bad", 0, S).await.is_err());
}

/// Loki's `quantile_over_time` sorts NaN first, as Prometheus does (`vector.HeapByMaxValue`):
/// over {0, 1, NaN} the 0.8-quantile is 0.6 and the 0.2-quantile, between NaN and 0, is NaN.
#[tokio::test]
async fn logql_quantile_over_time_treats_nan_as_the_smallest_value() {
    let labels = [("cluster", "q")];
    let records = vec![
        record(&labels, S, "v=0"),
        record(&labels, 2 * S, "v=NaN"),
        record(&labels, 3 * S, "v=1"),
    ];
    let (e, _) = engine_with(records, LogqlConfig::default());
    let q = |phi: f64| format!(r#"quantile_over_time({phi}, {{cluster="q"}} | logfmt | unwrap v [10s]) by (cluster)"#);
    let v = instant(&e, &q(0.8), 5 * S).await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert!((v[0].1 - 0.6).abs() < 1e-12, "{v:?}");
    let v = instant(&e, &q(0.2), 5 * S).await;
    assert!(v[0].1.is_nan(), "{v:?}");
    let v = instant(&e, &q(1.0), 5 * S).await;
    assert_eq!(v[0].1, 1.0);
}

/// A source busy for [`SLOW_SELECT`] on every `select_logs` (as a large in-memory scan is),
/// counting them.
#[derive(Debug)]
struct SlowLogSource {
    inner: MemLogSource,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

const SLOW_SELECT: std::time::Duration = std::time::Duration::from_millis(20);

#[async_trait::async_trait]
impl LogSource for SlowLogSource {
    async fn select_logs(
        &self,
        req: &tributary_storage::read::LogRequest,
    ) -> tributary_storage::Result<Vec<LogRecord>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let until = Instant::now() + SLOW_SELECT;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.inner.select_logs(req).await
    }

    async fn log_streams(&self, req: &tributary_storage::read::LogRequest) -> tributary_storage::Result<Vec<Labels>> {
        self.inner.log_streams(req).await
    }
}

/// Selects in the slow-source query below: 1.2 s of work at [`SLOW_SELECT`] each.
const SLOW_TERMS: usize = 60;

fn slow_engine(timeout: std::time::Duration) -> (LogqlEngine, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let source = SlowLogSource {
        inner: MemLogSource::new(fixture()),
        calls: calls.clone(),
    };
    let cfg = LogqlConfig {
        timeout,
        ..LogqlConfig::default()
    };
    (LogqlEngine::new(Arc::new(source), cfg), calls)
}

/// `count_over_time(...) + count_over_time(...) + ...`: [`SLOW_TERMS`] selects, one after another.
fn slow_query() -> String {
    vec![r#"count_over_time({cluster="prod-1"}[10s])"#; SLOW_TERMS].join(" + ")
}

/// Asserts the source sees no further select once the one in flight is done.
async fn assert_selects_stopped(calls: &std::sync::atomic::AtomicUsize) {
    // The select running when the query was dropped may finish (nothing interrupts it).
    tokio::time::sleep(3 * SLOW_SELECT).await;
    let seen = calls.load(std::sync::atomic::Ordering::Relaxed);
    assert!(seen < SLOW_TERMS, "all {seen} selects ran: nothing stopped the query");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::Relaxed),
        seen,
        "the query went on after its answer"
    );
}

#[tokio::test]
async fn a_query_past_its_timeout_answers_timeout_and_its_thread_stops() {
    let (e, calls) = slow_engine(std::time::Duration::from_millis(200));
    let began = Instant::now();
    let answer = e.query_instant(&slow_query(), 20 * S).await;
    assert!(matches!(answer, Err(Error::Timeout(_))), "{answer:?}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert_selects_stopped(&calls).await;
}

#[tokio::test]
async fn a_dropped_query_stops_its_thread() {
    let (e, calls) = slow_engine(std::time::Duration::from_secs(120));
    let task = tokio::spawn(async move { e.query_instant(&slow_query(), 20 * S).await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    // What axum does when the client disconnects: the handler's future is dropped.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_selects_stopped(&calls).await;
}

/// Chained `line_format` stages that grow every line geometrically (the issue's 10^7-fold
/// amplification) fail naming the bound, in a log query and in a metric query, instead of
/// building the lines; a modest format still answers.
#[tokio::test]
async fn logql_amplifying_templates_fail_naming_the_bound() {
    let grow = |from: &str, to: char| {
        format!(
            r#"line_format "{{{{ replace \"{from}\" \"{}\" __line__ }}}}""#,
            to.to_string().repeat(1000)
        )
    };
    // Stage one: each character becomes 1,000 `x`; stage two: each `x` becomes 1,000 `y`.
    let stages = format!("{} | {}", grow("", 'x'), grow("x", 'y'));
    let log_query = format!(r#"{{cluster="prod-1"}} | {stages}"#);
    let q = RangeQuery {
        query: log_query.clone(),
        start: 0,
        end: 100 * S,
        step: S,
        limit: 100,
        direction: Direction::Forward,
    };
    let err = engine().query_range(&q).await.unwrap_err().to_string();
    assert!(err.contains("renders") && err.contains("1048576 bytes"), "{err}");
    let metric = format!(r#"count_over_time({{cluster="prod-1"}} | {stages} [100s])"#);
    let err = engine().query_instant(&metric, 100 * S).await.unwrap_err().to_string();
    assert!(err.contains("1048576 bytes"), "{err}");
    assert!(
        !lines(&format!(r#"{{cluster="prod-1"}} | {}"#, grow("", 'x')))
            .await
            .is_empty()
    );
}

/// Lines that each stay under the per-line template bound but add up past
/// `query.logql.max_response_bytes` fail naming the option, as soon as they pass it, instead of
/// being held and sent: 50 lines grown to 10 KB each are 500 KB against a bound of 100 KB.
#[tokio::test]
async fn a_log_answer_is_bounded_in_bytes_after_the_pipeline() {
    let records: Vec<_> = (0..50)
        .map(|i| record(&[("cluster", "c")], (i + 1) * S, &"a".repeat(10)))
        .collect();
    let cfg = LogqlConfig {
        max_response_bytes: 100_000,
        ..LogqlConfig::default()
    };
    let (e, _) = engine_with(records, cfg);
    let grow = format!(
        r#"{{cluster="c"}} | line_format "{{{{ replace \"a\" \"{}\" __line__ }}}}""#,
        "x".repeat(1000)
    );
    let q = RangeQuery {
        query: grow,
        start: 0,
        end: 100 * S,
        step: S,
        limit: 5000,
        direction: Direction::Forward,
    };
    let err = e.query_range(&q).await.unwrap_err();
    assert!(matches!(err, Error::QueryLimit { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("query.logql.max_response_bytes = 100000"), "{text}");
    assert!(text.contains("its first 11 lines hold 110000"), "{text}");
    // The same lines unformatted fit.
    assert_eq!(
        logs(&e, r#"{cluster="c"}"#, 5000, Direction::Forward).await[0]
            .entries
            .len(),
        50
    );
}
