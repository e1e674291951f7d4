use super::*;
use crate::logql::LogqlConfig;
use crate::logql::mem::{MemLogSource, record};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use tributary_storage::signals::LogRecord;

const S: i64 = 1_000_000_000;

fn app() -> Router {
    let a = [("cluster", "prod-1"), ("service_name", "checkout")];
    let b = [("cluster", "dev"), ("service_name", "cart")];
    let records = vec![
        record(&a, S, r#"{"status":500,"msg":"timeout"}"#),
        record(&a, 2 * S, r#"{"status":200,"msg":"ok"}"#),
        record(&b, 3 * S, "level=error msg=boom"),
    ];
    let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default());
    loki_router(Arc::new(engine), Auth::default())
}

fn encode(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn get(path: &str, params: &[(&str, &str)]) -> Request<Body> {
    Request::get(format!("{path}?{}", encode(params)))
        .body(Body::empty())
        .unwrap()
}

async fn call(req: Request<Body>) -> (StatusCode, String, String) {
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

async fn ok_json(req: Request<Body>) -> serde_json::Value {
    let (status, ct, body) = call(req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(ct.starts_with("application/json"));
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn loki_query_range_streams_shape() {
    let v = ok_json(get(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{service_name="checkout"} | json | status >= 500"#),
            ("start", "0"),
            ("end", "10"),
        ],
    ))
    .await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([{
            "stream": {"cluster": "prod-1", "msg": "timeout", "service_name": "checkout", "status": "500"},
            "values": [["1000000000", r#"{"status":500,"msg":"timeout"}"#]]
        }])
    );
    assert_eq!(v["data"]["stats"]["summary"]["totalLinesProcessed"], 2);
    assert_eq!(v["data"]["stats"]["summary"]["totalEntriesReturned"], 1);
}

#[tokio::test]
async fn loki_query_range_direction_limit_and_post_form() {
    let params = [
        ("query", r#"{cluster=~".+"}"#),
        ("start", "1970-01-01T00:00:00Z"),
        ("end", "10000000000"),
        ("limit", "2"),
        ("direction", "FORWARD"),
    ];
    let req = Request::post("/loki/api/v1/query_range")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(encode(&params)))
        .unwrap();
    let v = ok_json(req).await;
    let mut ts: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[0].as_str().unwrap().to_string())
        })
        .collect();
    ts.sort();
    assert_eq!(ts, ["1000000000", "2000000000"]);
    // Backward (the default) takes the newest.
    let v = ok_json(get(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{cluster=~".+"}"#),
            ("start", "0"),
            ("end", "10"),
            ("limit", "1"),
        ],
    ))
    .await;
    assert_eq!(v["data"]["result"][0]["values"][0][0], "3000000000");
}

#[tokio::test]
async fn loki_metric_queries_are_matrix_and_vector() {
    let v = ok_json(get(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"sum by (cluster) (count_over_time({cluster=~".+"}[2s]))"#),
            ("start", "2"),
            ("end", "4"),
            ("step", "2s"),
        ],
    ))
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([
            {"metric": {"cluster": "dev"}, "values": [[4, "1"]]},
            {"metric": {"cluster": "prod-1"}, "values": [[2, "2"]]}
        ])
    );
    let v = ok_json(get(
        "/loki/api/v1/query",
        &[("query", r#"rate({cluster="prod-1"}[4s])"#), ("time", "4.5")],
    ))
    .await;
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([{"metric": {"cluster": "prod-1", "service_name": "checkout"}, "value": [4.5, "0.5"]}])
    );
    let v = ok_json(get("/loki/api/v1/query", &[("query", "1 + 1"), ("time", "1")])).await;
    assert_eq!(v["data"]["result"], serde_json::json!([1, "2"]));
}

#[tokio::test]
async fn loki_errors_are_plain_text_400s() {
    let (status, ct, body) = call(get("/loki/api/v1/query_range", &[("query", "{app=}")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ct, "text/plain; charset=utf-8");
    assert_eq!(
        body,
        "parse error at line 1, col 6: syntax error: unexpected }, expecting STRING\n"
    );
    let (status, _, body) = call(get("/loki/api/v1/query_range", &[("query", r#"{a=~".*"}"#)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("parse error : queries require at least one regexp"),
        "{body}"
    );
    let (status, _, body) = call(get(
        "/loki/api/v1/query_range",
        &[("query", r#"{a="b"}"#), ("start", "yesterday")],
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("cannot parse \"yesterday\" to a valid timestamp"),
        "{body}"
    );
    let (status, _, _) = call(get(
        "/loki/api/v1/query_range",
        &[("query", r#"{a="b"}"#), ("direction", "sideways")],
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(get(
        "/loki/api/v1/query_range",
        &[("query", r#"{a="b"}"#), ("limit", "-1")],
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = call(get(
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sum_over_time({cluster="prod-1"} | logfmt | unwrap msg [1h])"#,
            ),
            ("time", "10"),
        ],
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("pipeline error: 'SampleExtractionErr'"), "{body}");
    let (status, _, body) = call(get("/loki/api/v1/query", &[("query", r#"{a="b"}"#)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("instant query type"));
}

#[tokio::test]
async fn loki_labels_values_and_series() {
    let range = [("start", "0"), ("end", "10")];
    let v = ok_json(get("/loki/api/v1/labels", &range)).await;
    assert_eq!(
        v,
        serde_json::json!({"status": "success", "data": ["cluster", "service_name"]})
    );
    let v = ok_json(get("/loki/api/v1/label/cluster/values", &range)).await;
    assert_eq!(v["data"], serde_json::json!(["dev", "prod-1"]));
    let v = ok_json(get(
        "/loki/api/v1/label/cluster/values",
        &[("start", "0"), ("end", "10"), ("query", r#"{service_name="cart"}"#)],
    ))
    .await;
    assert_eq!(v["data"], serde_json::json!(["dev"]));
    let v = ok_json(get(
        "/loki/api/v1/series",
        &[("start", "0"), ("end", "10"), ("match[]", r#"{service_name="cart"}"#)],
    ))
    .await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"cluster": "dev", "service_name": "cart"}])
    );
    let v = ok_json(get("/loki/api/v1/series", &range)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (status, _, _) = call(get("/loki/api/v1/series", &[("match[]", "{bad")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn loki_index_stats_and_buildinfo() {
    let v = ok_json(get(
        "/loki/api/v1/index/stats",
        &[("query", r#"{service_name="checkout"}"#), ("start", "0"), ("end", "10")],
    ))
    .await;
    let bytes = r#"{"status":500,"msg":"timeout"}"#.len() + r#"{"status":200,"msg":"ok"}"#.len();
    assert_eq!(
        v,
        serde_json::json!({"streams": 1, "chunks": 1, "entries": 2, "bytes": bytes})
    );
    let v = ok_json(get("/loki/api/v1/status/buildinfo", &[])).await;
    assert_eq!(v["version"], LOKI_COMPATIBLE_VERSION);
    let v = ok_json(get(
        "/loki/api/v1/format_query",
        &[("query", r#"sum by(a)(rate({x="y"}|="z"[5m]))"#)],
    ))
    .await;
    assert_eq!(v["data"], r#"sum by (a) (rate({x="y"} |= "z" [5m]))"#);
    let (status, _, _) = call(get("/loki/api/v1/format_query", &[("query", "{")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn default_step_is_a_250th_of_the_range_in_whole_seconds() {
    assert_eq!(default_step(0, 3600 * S), 14 * S);
    assert_eq!(default_step(0, 10 * S), S);
}

/// Loki's listings answer at most `query.max_listing_items` entries, as Prometheus's do: a
/// longer one fails naming the option (Loki's listings take no `limit` to cut them).
#[tokio::test]
async fn loki_listings_honour_max_listing_items() {
    let records = (0..3)
        .map(|i| record(&[("cluster", "c"), ("service_name", &format!("s{i}"))], S, "x"))
        .collect();
    let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default())
        .with_listings_and_metrics(2, crate::metrics::QueryMetrics::default());
    let app = loki_router(Arc::new(engine), Auth::default());
    let range = [("start", "0"), ("end", "10")];
    for (path, fits) in [
        ("/loki/api/v1/series", false),
        ("/loki/api/v1/label/service_name/values", false),
        ("/loki/api/v1/labels", true),
    ] {
        let resp = app.clone().oneshot(get(path, &range)).await.unwrap();
        let status = resp.status();
        let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        if fits {
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(body.contains("query.max_listing_items = 2"), "{path}: {body}");
        }
    }
}

/// A token's `max_series` and `max_samples` (records, for LogQL) refuse a Loki query the same
/// request with an unlimited token is answered.
#[tokio::test]
async fn loki_token_limits_refuse_what_an_unlimited_token_is_answered() {
    use tributary_storage::auth::{AuthConfig, TokenEntry};
    use tributary_storage::scope::ClusterScope;

    let records = (0..3)
        .map(|i| record(&[("cluster", "c"), ("service_name", &format!("s{i}"))], S, "x"))
        .collect();
    let token = |token: &str, limits: TokenEntry| TokenEntry {
        token: Some(token.into()),
        read: Some(ClusterScope::new(vec!["*".into()])),
        ..limits
    };
    let tight = TokenEntry {
        name: Some("logs".into()),
        max_samples: Some(2),
        max_series: Some(2),
        ..TokenEntry::default()
    };
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![token("free", TokenEntry::default()), token("tight", tight)],
        ..AuthConfig::default()
    })
    .unwrap();
    let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default());
    let app = loki_router(Arc::new(engine), auth);
    let send = |token: &str, path: &str, params: &[(&str, &str)]| {
        let mut req = get(path, params);
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let range = [("start", "0"), ("end", "10")];
    let streams = [("query", r#"{cluster="c"}"#), ("start", "0"), ("end", "10")];
    let counts = [("query", r#"sum(count_over_time({cluster="c"}[1m]))"#), ("time", "10")];
    for (path, params, limit) in [
        ("/loki/api/v1/series", &range[..], "max_series = 2"),
        ("/loki/api/v1/query_range", &streams[..], "max_series = 2"),
        ("/loki/api/v1/query", &counts[..], "max_samples = 2"),
    ] {
        let (status, body) = send("free", path, params).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let (status, body) = send("tight", path, params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body.contains(r#"token "logs""#) && body.contains(limit),
            "{path}: {body}"
        );
    }
}

/// The widest times Loki accepts (found with the `params` fuzz target's range checks): their
/// difference does not fit an i64, which must neither panic nor wrap into an accepted range,
/// and nor may a step's offset from the start.
#[tokio::test]
async fn loki_metric_queries_over_the_widest_range() {
    let widest = |step| {
        get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"count_over_time({cluster=~".+"}[1m])"#),
                ("start", "-9000000000000000000"),
                ("end", "9000000000000000000"),
                ("step", step),
            ],
        )
    };
    let (status, _, body) = call(widest("1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("exceeded maximum resolution"), "{body}");
    // 10^18 ns: 19 steps, the last 18 × 10^18 ns from the start.
    let (status, _, body) = call(widest("1000000000")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Records with structured metadata, for the two answer shapes.
fn app_with_metadata() -> Router {
    let a = [("cluster", "prod-1"), ("service_name", "checkout")];
    let b = [("cluster", "dev"), ("service_name", "cart")];
    let with = |pairs: &[(&str, &str)], ts: i64, line: &str, attributes: &str| LogRecord {
        attributes: attributes.into(),
        ..record(pairs, ts, line)
    };
    let records = vec![
        with(
            &a,
            S,
            r#"{"status":500,"msg":"timeout"}"#,
            r#"{"detected_level":"error","user":"u1"}"#,
        ),
        with(
            &a,
            2 * S,
            r#"{"status":200,"msg":"ok"}"#,
            r#"{"detected_level":"info"}"#,
        ),
        with(&b, 3 * S, "plain", "{}"),
    ];
    let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default());
    loki_router(Arc::new(engine), Auth::default())
}

async fn query_with_metadata(query: &str, categorize: bool) -> serde_json::Value {
    let mut req = Request::get(format!(
        "/loki/api/v1/query_range?{}",
        encode(&[
            ("query", query),
            ("start", "0"),
            ("end", "10"),
            ("direction", "forward")
        ])
    ));
    if categorize {
        // Grafana's Loki data source sends exactly this (`LokiDatasource`, `X-Loki-Response-Encoding-Flags`).
        req = req.header("X-Loki-Response-Encoding-Flags", "categorize-labels");
    }
    let resp = app_with_metadata()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn loki_categorize_labels_keeps_stream_labels_metadata_and_parsed_apart() {
    let q = r#"{service_name="checkout"} | json"#;
    let v = query_with_metadata(q, true).await;
    assert_eq!(v["data"]["encodingFlags"], serde_json::json!(["categorize-labels"]));
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([{
            "stream": {"cluster": "prod-1", "service_name": "checkout"},
            "values": [
                ["1000000000", r#"{"status":500,"msg":"timeout"}"#,
                 {"structuredMetadata": {"detected_level": "error", "user": "u1"}, "parsed": {"msg": "timeout", "status": "500"}}],
                ["2000000000", r#"{"status":200,"msg":"ok"}"#,
                 {"structuredMetadata": {"detected_level": "info"}, "parsed": {"msg": "ok", "status": "200"}}],
            ]
        }])
    );
    // A filter on a structured-metadata field selects on it, and the stream stays the stream.
    let v = query_with_metadata(r#"{cluster=~".+"} | detected_level="error""#, true).await;
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([{
            "stream": {"cluster": "prod-1", "service_name": "checkout"},
            "values": [["1000000000", r#"{"status":500,"msg":"timeout"}"#,
                        {"structuredMetadata": {"detected_level": "error", "user": "u1"}}]]
        }])
    );
    // Nothing but stream labels: the third element is there, empty, as Loki writes it.
    let v = query_with_metadata(r#"{service_name="cart"}"#, true).await;
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([{"stream": {"cluster": "dev", "service_name": "cart"}, "values": [["3000000000", "plain", {}]]}])
    );
    // Metric answers keep their shape and say which flags the answer was written with.
    let v = query_with_metadata(
        r#"sum by (detected_level) (count_over_time({cluster=~".+"}[1m]))"#,
        true,
    )
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    assert_eq!(v["data"]["encodingFlags"], serde_json::json!(["categorize-labels"]));
}

#[tokio::test]
async fn loki_without_categorize_labels_every_label_is_a_stream_label() {
    let v = query_with_metadata(r#"{service_name="checkout"} | json"#, false).await;
    assert!(v["data"].get("encodingFlags").is_none(), "{v}");
    assert_eq!(
        v["data"]["result"],
        serde_json::json!([
            {
                "stream": {"cluster": "prod-1", "detected_level": "error", "msg": "timeout", "service_name": "checkout", "status": "500", "user": "u1"},
                "values": [["1000000000", r#"{"status":500,"msg":"timeout"}"#]]
            },
            {
                "stream": {"cluster": "prod-1", "detected_level": "info", "msg": "ok", "service_name": "checkout", "status": "200"},
                "values": [["2000000000", r#"{"status":200,"msg":"ok"}"#]]
            },
        ])
    );
}

#[test]
fn encoding_flags_are_read_from_every_header_value() {
    let mut h = HeaderMap::new();
    assert!(!Encoding::from_request(&h, Direction::Forward).categorize);
    h.append("X-Loki-Response-Encoding-Flags", "other".parse().unwrap());
    assert!(!Encoding::from_request(&h, Direction::Forward).categorize);
    h.append(
        "X-Loki-Response-Encoding-Flags",
        "x, categorize-labels".parse().unwrap(),
    );
    assert!(Encoding::from_request(&h, Direction::Forward).categorize);
}

/// Typical LogQL mistakes answer 400 with Loki's own message: where (`line, col`) and what was
/// expected.
#[tokio::test]
async fn logql_parse_errors_say_where_and_what_was_expected() {
    let table = [
        (
            r#"app="x""#,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"{app="x"} | foo"#,
            "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"{app="x"} |= 5"#,
            "parse error at line 1, col 14: syntax error: unexpected NUMBER, expecting STRING",
        ),
        (
            r#"{app="x"} | = "a""#,
            "parse error at line 1, col 13: syntax error: unexpected =, expecting a parser, a formatter or a label filter",
        ),
        (r#"{app="x}"#, "parse error at line 1, col 6: literal not terminated"),
        (
            r#"{app="x"} |= "a"#,
            "parse error at line 1, col 14: literal not terminated",
        ),
        (
            r#"{app="x""#,
            "parse error at line 1, col 9: syntax error: unexpected $end, expecting , or }",
        ),
        (
            r#"rate({app="x"})"#,
            "parse error at line 1, col 15: syntax error: unexpected ), expecting [",
        ),
    ];
    for (query, expected) in table {
        for path in ["/loki/api/v1/query", "/loki/api/v1/query_range"] {
            let (status, ct, body) = call(get(path, &[("query", query)])).await;
            assert_eq!(
                (status, ct.as_str()),
                (StatusCode::BAD_REQUEST, "text/plain; charset=utf-8"),
                "{path} {query}"
            );
            assert_eq!(body, format!("{expected}\n"), "{path} {query}");
        }
    }
}
