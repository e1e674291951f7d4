//! The Logs Drilldown endpoints through the router, with the request shapes the app sends
//! (grafana/logs-drilldown `src/services/datasource.ts`: `index/volume` with `limit=5000` and a
//! `{service_name=~".+"}` selector, `detected_labels` with an empty or selector `query`,
//! `detected_fields`, `patterns` with `step` = the panel interval; start/end as RFC 3339) and the
//! answer shapes of Loki's code (`pkg/querier/queryrange/volume.go` `ToPrometheusResponse`,
//! `pkg/querier/querier.go` `DetectedLabels`/`shouldRejectLabel`,
//! `pkg/querier/queryrange/detected_fields.go`, `pkg/util/marshal/marshal.go`
//! `WriteQueryPatternsResponseJSON`, `pkg/loghttp/query.go` for the parameters).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use tributary_storage::auth::{Auth, AuthConfig, TokenEntry};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::LogRecord;

use super::loki_router;
use crate::logql::mem::{MemLogSource, record};
use crate::logql::{LogqlConfig, LogqlEngine};

const S: i64 = 1_000_000_000;
const A1: &str =
    r#"{"level":"error","status":500,"duration":"250ms","user":{"id":123,"name":"alice"},"size":"2KB","pod":"p"}"#;
const A2: &str = r#"{"level":"info","status":200,"duration":"12ms","user":{"id":456,"name":"bob"},"size":"15000b"}"#;
const B: &str = r#"level=info msg="cart updated" items=3"#;
const C1: &str = "user 17 logged in from 10.0.0.1 ok";
const C2: &str = "user 18 logged in from 10.0.0.2 ok";

fn records() -> Vec<LogRecord> {
    let a = [
        ("cluster", "prod"),
        ("namespace", "shop"),
        ("pod", "checkout-1"),
        ("service_name", "checkout"),
    ];
    let b = [
        ("cluster", "prod"),
        ("namespace", "shop"),
        ("pod", "cart-1"),
        ("request_id", "42"),
        ("service_name", "cart"),
    ];
    let c = [
        ("cluster", "dev"),
        ("namespace", "shop"),
        ("pod", "cart-2"),
        ("request_id", "43"),
        ("service_name", "cart"),
    ];
    let with_metadata = |mut r: LogRecord| {
        r.attributes = r#"{"http_method":"GET","bytes_sent":"1024 KB"}"#.into();
        r
    };
    vec![
        record(&a, 10 * S, A1),
        record(&a, 20 * S, A2),
        record(&b, 15 * S, B),
        record(&b, 75 * S, B),
        with_metadata(record(&c, 30 * S, C1)),
        with_metadata(record(&c, 90 * S, C2)),
    ]
}

fn app_with(records: Vec<LogRecord>, auth: Auth) -> Router {
    let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default());
    loki_router(Arc::new(engine), auth)
}

fn get(path: &str, params: &[(&str, &str)]) -> Request<Body> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Request::get(format!("{path}?{query}")).body(Body::empty()).unwrap()
}

async fn call_app(app: Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn ok(path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = call_app(app_with(records(), Auth::default()), get(path, params)).await;
    assert_eq!(status, StatusCode::OK, "{path} {params:?}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A 400 whose plain-text body contains `reason`.
async fn bad(path: &str, params: &[(&str, &str)], reason: &str) {
    let (status, body) = call_app(app_with(records(), Auth::default()), get(path, params)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {params:?}: {body}");
    assert!(body.contains(reason), "{path} {params:?}: {body:?} lacks {reason:?}");
}

fn len(lines: &[&str]) -> String {
    lines.iter().map(|l| l.len()).sum::<usize>().to_string()
}

const RANGE: [(&str, &str); 2] = [("start", "1970-01-01T00:00:00Z"), ("end", "1970-01-01T00:02:00Z")];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = RANGE.to_vec();
    p.extend_from_slice(extra);
    p
}

#[tokio::test]
async fn volume_is_a_vector_by_the_selectors_labels_largest_first() {
    let p = with(&[("query", r#"{service_name=~".+"}"#), ("limit", "5000")]);
    let v = ok("/loki/api/v1/index/volume", &p).await;
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"service_name": "checkout"}, "value": [120, len(&[A1, A2])]},
            {"metric": {"service_name": "cart"}, "value": [120, len(&[B, B, C1, C2])]},
        ]}})
    );
    // `limit` keeps the largest.
    let v = ok(
        "/loki/api/v1/index/volume",
        &with(&[("query", r#"{service_name=~".+"}"#), ("limit", "1")]),
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["result"][0]["metric"], json!({"service_name": "checkout"}));
    // `targetLabels` replaces the selector's names; `{}` selects everything.
    let v = ok(
        "/loki/api/v1/index/volume",
        &with(&[("query", "{}"), ("targetLabels", "cluster")]),
    )
    .await;
    assert_eq!(
        v["data"]["result"],
        json!([
            {"metric": {"cluster": "prod"}, "value": [120, len(&[A1, A2, B, B])]},
            {"metric": {"cluster": "dev"}, "value": [120, len(&[C1, C2])]},
        ])
    );
    let v = ok("/loki/api/v1/index/volume", &with(&[("query", "{}")])).await;
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [120, len(&[A1, A2, B, B, C1, C2])]}])
    );
}

#[tokio::test]
async fn volume_by_labels_names_each_label_with_the_empty_value() {
    let p = with(&[("query", r#"{cluster="prod"}"#), ("aggregateBy", "labels")]);
    let v = ok("/loki/api/v1/index/volume", &p).await;
    let prod = len(&[A1, A2, B, B]);
    assert_eq!(
        v["data"]["result"],
        json!([
            {"metric": {"cluster": ""}, "value": [120, prod]},
            {"metric": {"namespace": ""}, "value": [120, prod]},
            {"metric": {"pod": ""}, "value": [120, prod]},
            {"metric": {"service_name": ""}, "value": [120, prod]},
            {"metric": {"request_id": ""}, "value": [120, len(&[B, B])]},
        ])
    );
    let p = with(&[
        ("query", r#"{cluster="prod"}"#),
        ("aggregateBy", "labels"),
        ("targetLabels", "pod"),
    ]);
    let v = ok("/loki/api/v1/index/volume", &p).await;
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {"pod": ""}, "value": [120, prod]}])
    );
}

#[tokio::test]
async fn volume_range_buckets_end_a_millisecond_before_the_next_step() {
    let p = with(&[("query", r#"{service_name=~".+"}"#), ("step", "60")]);
    let v = ok("/loki/api/v1/index/volume_range", &p).await;
    // Buckets [0, 60s) and [60s, 120s], keyed by their ends as Loki's `util.ForInterval` cuts
    // them; a matrix because one series has two buckets.
    assert_eq!(
        v,
        json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"service_name": "checkout"}, "values": [[59.999, len(&[A1, A2])]]},
            {"metric": {"service_name": "cart"}, "values": [[59.999, len(&[B, C1])], [120, len(&[B, C2])]]},
        ]}})
    );
}

#[tokio::test]
async fn volume_bad_parameters_are_400s_with_the_reason() {
    let sel = ("query", r#"{service_name=~".+"}"#);
    bad(
        "/loki/api/v1/index/volume",
        &with(&[sel, ("aggregateBy", "pods")]),
        "invalid aggregation option",
    )
    .await;
    bad(
        "/loki/api/v1/index/volume",
        &with(&[sel, ("limit", "-1")]),
        "limit must be a positive value",
    )
    .await;
    bad(
        "/loki/api/v1/index/volume",
        &with(&[sel, ("limit", "many")]),
        "invalid syntax",
    )
    .await;
    bad("/loki/api/v1/index/volume", &with(&[]), "parse error").await;
    bad(
        "/loki/api/v1/index/volume",
        &with(&[("query", r#"{a="b"} |= "x""#)]),
        "parse error",
    )
    .await;
    bad(
        "/loki/api/v1/index/volume_range",
        &with(&[sel, ("step", "0")]),
        "zero or negative",
    )
    .await;
    bad(
        "/loki/api/v1/index/volume_range",
        &with(&[sel, ("step", "1ms")]),
        "11,000 points",
    )
    .await;
    let backwards = [sel, ("start", "100"), ("end", "10")];
    bad(
        "/loki/api/v1/index/volume",
        &backwards,
        "end timestamp must not be before",
    )
    .await;
}

#[tokio::test]
async fn detected_labels_leave_out_id_like_labels_but_keep_static_ones() {
    let v = ok("/loki/api/v1/detected_labels", &with(&[("query", "")])).await;
    // `request_id` has only numbers (ids): rejected. `namespace` has one value: kept.
    assert_eq!(
        v,
        json!({"detectedLabels": [
            {"label": "cluster", "cardinality": 2},
            {"label": "namespace", "cardinality": 1},
            {"label": "pod", "cardinality": 3},
            {"label": "service_name", "cardinality": 2},
        ]})
    );
    let v = ok(
        "/loki/api/v1/detected_labels",
        &with(&[("query", r#"{service_name="checkout"}"#)]),
    )
    .await;
    assert_eq!(v["detectedLabels"].as_array().unwrap().len(), 4);
    assert!(
        v["detectedLabels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cardinality"] == 1)
    );
    // Nothing matches: Loki's `omitempty` leaves the list out.
    let v = ok(
        "/loki/api/v1/detected_labels",
        &with(&[("query", r#"{service_name="none"}"#)]),
    )
    .await;
    assert_eq!(v, json!({}));
    bad(
        "/loki/api/v1/detected_labels",
        &with(&[("query", "{service_name=}")]),
        "parse error",
    )
    .await;
}

#[tokio::test]
async fn detected_fields_parse_json_logfmt_and_structured_metadata() {
    let v = ok(
        "/loki/api/v1/detected_fields",
        &with(&[("query", r#"{service_name="checkout"}"#)]),
    )
    .await;
    assert_eq!(
        v,
        json!({"fields": [
            {"label": "duration", "type": "duration", "cardinality": 2, "parsers": ["json"], "jsonPath": ["duration"]},
            {"label": "level", "type": "string", "cardinality": 2, "parsers": ["json"], "jsonPath": ["level"]},
            // A JSON key that is also a stream label, renamed as Loki's parsers rename it.
            {"label": "pod_extracted", "type": "string", "cardinality": 1, "parsers": ["json"], "jsonPath": ["pod"]},
            {"label": "size", "type": "bytes", "cardinality": 2, "parsers": ["json"], "jsonPath": ["size"]},
            {"label": "status", "type": "int", "cardinality": 2, "parsers": ["json"], "jsonPath": ["status"]},
            {"label": "user_id", "type": "int", "cardinality": 2, "parsers": ["json"], "jsonPath": ["user", "id"]},
            {"label": "user_name", "type": "string", "cardinality": 2, "parsers": ["json"], "jsonPath": ["user", "name"]},
        ], "limit": 1000})
    );
    let v = ok(
        "/loki/api/v1/detected_fields",
        &with(&[("query", r#"{service_name="cart", cluster="prod"}"#)]),
    )
    .await;
    assert_eq!(
        v["fields"],
        json!([
            {"label": "items", "type": "int", "cardinality": 1, "parsers": ["logfmt"]},
            {"label": "level", "type": "string", "cardinality": 1, "parsers": ["logfmt"]},
            {"label": "msg", "type": "string", "cardinality": 1, "parsers": ["logfmt"]},
        ])
    );
    // Plain lines have no fields; structured metadata has `parsers: null`.
    let v = ok(
        "/loki/api/v1/detected_fields",
        &with(&[("query", r#"{cluster="dev"}"#)]),
    )
    .await;
    assert_eq!(
        v["fields"],
        json!([
            {"label": "bytes_sent", "type": "bytes", "cardinality": 1, "parsers": null},
            {"label": "http_method", "type": "string", "cardinality": 1, "parsers": null},
        ])
    );
}

/// Loki's `TestNestedJSONFieldDetection` (pkg/querier/queryrange/detected_fields_test.go): types
/// and JSON paths of nested fields.
#[tokio::test]
async fn detected_fields_of_nested_json_carry_types_and_paths() {
    let labels = [("cluster", "test-cluster"), ("job", "json-test")];
    let lines = [
        r#"{"user":{"id":123,"name":"alice","settings":{"theme":"dark","notifications":true}},"app":{"version":"1.0","metrics":{"cpu":45.6,"memory":"1.5GB"}}}"#,
        r#"{"user":{"id":456,"name":"bob","settings":{"theme":"light","notifications":false}},"app":{"version":"1.0","metrics":{"cpu":32.1,"memory":"2.0GB"}}}"#,
    ];
    let recs = vec![record(&labels, S, lines[0]), record(&labels, 2 * S, lines[1])];
    let req = get(
        "/loki/api/v1/detected_fields",
        &with(&[("query", r#"{job="json-test"}"#)]),
    );
    let (status, body) = call_app(app_with(recs, Auth::default()), req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let got: Vec<(String, String, Value)> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["label"].as_str().unwrap().into(),
                f["type"].as_str().unwrap().into(),
                f["jsonPath"].clone(),
            )
        })
        .collect();
    let want = [
        ("app_metrics_cpu", "float", json!(["app", "metrics", "cpu"])),
        ("app_metrics_memory", "bytes", json!(["app", "metrics", "memory"])),
        ("app_version", "float", json!(["app", "version"])),
        ("user_id", "int", json!(["user", "id"])),
        ("user_name", "string", json!(["user", "name"])),
        (
            "user_settings_notifications",
            "boolean",
            json!(["user", "settings", "notifications"]),
        ),
        ("user_settings_theme", "string", json!(["user", "settings", "theme"])),
    ];
    let want: Vec<(String, String, Value)> = want.into_iter().map(|(l, t, p)| (l.into(), t.into(), p)).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn detected_fields_follow_the_pipeline_and_the_limits() {
    // The query's pipeline keeps one line.
    let q = r#"{service_name="checkout"} | json | status >= 500"#;
    let v = ok("/loki/api/v1/detected_fields", &with(&[("query", q)])).await;
    let level = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "level")
        .unwrap()
        .clone();
    assert_eq!(
        level,
        json!({"label": "level", "type": "string", "cardinality": 1, "parsers": ["json"], "jsonPath": ["level"]})
    );
    // `line_limit=1` looks at the newest line only; `limit=2` answers the first two fields.
    let p = with(&[
        ("query", r#"{service_name="checkout"}"#),
        ("line_limit", "1"),
        ("limit", "2"),
    ]);
    let v = ok("/loki/api/v1/detected_fields", &p).await;
    let labels: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["duration", "level"]);
    assert_eq!(v["fields"][1]["cardinality"], 1);
    assert_eq!(v["limit"], 2);
    let sel = ("query", r#"{service_name="checkout"}"#);
    bad(
        "/loki/api/v1/detected_fields",
        &with(&[sel, ("line_limit", "0")]),
        "limit must be a positive value",
    )
    .await;
    bad(
        "/loki/api/v1/detected_fields",
        &with(&[sel, ("limit", "-3")]),
        "limit must be a positive value",
    )
    .await;
    let metric = ("query", r#"rate({service_name="checkout"}[1m])"#);
    bad("/loki/api/v1/detected_fields", &with(&[metric]), "only log queries").await;
    bad(
        "/loki/api/v1/detected_fields",
        &with(&[sel, ("line_limit", "6000")]),
        "max entries limit",
    )
    .await;
    bad("/loki/api/v1/detected_fields", &with(&[]), "parse error").await;
}

#[tokio::test]
async fn detected_field_values_are_distinct_sorted_and_bytes_normalized() {
    let sel = ("query", r#"{service_name="checkout"}"#);
    let v = ok("/loki/api/v1/detected_field/status/values", &with(&[sel])).await;
    assert_eq!(v, json!({"values": ["200", "500"], "limit": 1000}));
    // Parsed byte sizes as Loki rewrites them (`humanize.Bytes`, space removed).
    let v = ok("/loki/api/v1/detected_field/size/values", &with(&[sel])).await;
    assert_eq!(v["values"], json!(["15kB", "2.0kB"]));
    // Structured metadata as it is.
    let v = ok(
        "/loki/api/v1/detected_field/bytes_sent/values",
        &with(&[("query", r#"{cluster="dev"}"#)]),
    )
    .await;
    assert_eq!(v["values"], json!(["1024 KB"]));
    let v = ok("/loki/api/v1/detected_field/nothing/values", &with(&[sel])).await;
    assert_eq!(v, json!({}));
    let v = ok(
        "/loki/api/v1/detected_field/status/values",
        &with(&[sel, ("limit", "1")]),
    )
    .await;
    assert_eq!(v["values"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn patterns_cluster_lines_with_counts_per_step() {
    let p = with(&[("query", r#"{service_name="cart"}"#), ("step", "60s")]);
    let v = ok("/loki/api/v1/patterns", &p).await;
    assert_eq!(
        v,
        json!({"status": "success", "data": [
            {"pattern": B, "level": "unknown", "samples": [[0, 1], [60, 1]]},
            {"pattern": "user <_> logged in from <_> ok", "level": "unknown", "samples": [[0, 1], [60, 1]]},
        ]})
    );
    // Steps under 10 s are 10 s (Loki's sample resolution); empty steps between are zeros.
    let p = with(&[("query", r#"{service_name="cart", cluster="prod"}"#), ("step", "1s")]);
    let v = ok("/loki/api/v1/patterns", &p).await;
    assert_eq!(
        v["data"][0]["samples"],
        json!([[10, 1], [20, 0], [30, 0], [40, 0], [50, 0], [60, 0], [70, 1]])
    );
    let v = ok("/loki/api/v1/patterns", &with(&[("query", r#"{service_name="none"}"#)])).await;
    assert_eq!(v, json!({"status": "success", "data": []}));
}

#[tokio::test]
async fn patterns_group_by_level() {
    let recs = (0..6)
        .map(|i| {
            let level = if i % 2 == 0 { "error" } else { "info" };
            let mut r = record(
                &[("service_name", "api")],
                i * S,
                &format!("request {i} finished with code {}", 200 + i),
            );
            r.attributes = format!(r#"{{"detected_level":"{level}"}}"#);
            r
        })
        .collect();
    let req = get(
        "/loki/api/v1/patterns",
        &with(&[("query", r#"{service_name="api"}"#), ("step", "60")]),
    );
    let (status, body) = call_app(app_with(recs, Auth::default()), req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"],
        json!([
            {"pattern": "request <_> finished with code <_>", "level": "error", "samples": [[0, 3]]},
            {"pattern": "request <_> finished with code <_>", "level": "info", "samples": [[0, 3]]},
        ])
    );
}

#[tokio::test]
async fn patterns_bad_parameters_are_400s_with_the_reason() {
    let sel = ("query", r#"{service_name="cart"}"#);
    bad(
        "/loki/api/v1/patterns",
        &with(&[sel, ("step", "0")]),
        "zero or negative",
    )
    .await;
    bad(
        "/loki/api/v1/patterns",
        &with(&[sel, ("step", "soon")]),
        "invalid parameter \"step\"",
    )
    .await;
    bad(
        "/loki/api/v1/patterns",
        &with(&[("query", r#"{service_name="cart"} |= "x""#)]),
        "parse error",
    )
    .await;
    bad("/loki/api/v1/patterns", &with(&[]), "parse error").await;
}

/// Every Drilldown endpoint reads under the token's scope, as `series` and `index/stats` do:
/// a token for `prod` sees nothing of `dev`, and no token is a 401 when tokens are required.
#[tokio::test]
async fn drilldown_endpoints_read_under_the_token_scope() {
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![TokenEntry {
            token: Some("prod-reader".into()),
            read: Some(ClusterScope::new(vec!["prod".into()])),
            ..TokenEntry::default()
        }],
        ..AuthConfig::default()
    })
    .unwrap();
    let app = app_with(records(), auth);
    let send = |req: Request<Body>, token: bool| {
        let app = app.clone();
        async move {
            let mut req = req;
            if token {
                req.headers_mut()
                    .insert("authorization", "Bearer prod-reader".parse().unwrap());
            }
            call_app(app, req).await
        }
    };
    let cases: [(&str, &str); 5] = [
        ("/loki/api/v1/index/volume", "{}"),
        ("/loki/api/v1/index/volume_range", "{}"),
        ("/loki/api/v1/detected_labels", ""),
        ("/loki/api/v1/detected_fields", r#"{service_name="cart"}"#),
        ("/loki/api/v1/patterns", r#"{service_name="cart"}"#),
    ];
    for (path, query) in cases {
        let (status, _) = send(get(path, &with(&[("query", query)])), false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, body) = send(get(path, &with(&[("query", query), ("targetLabels", "cluster")])), true).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            !body.contains("dev") && !body.contains("user <_>") && !body.contains("http_method"),
            "{path}: {body}"
        );
    }
    let (_, body) = send(
        get(
            "/loki/api/v1/index/volume",
            &with(&[("query", "{}"), ("targetLabels", "cluster")]),
        ),
        true,
    )
    .await;
    assert!(body.contains(r#"{"cluster":"prod"}"#), "{body}");
}

/// Without a line-dropping pipeline, field detection asks the source for `line_limit` records
/// and no more; with one, it reads on in chunks until enough lines pass.
#[tokio::test]
async fn detected_fields_read_only_the_lines_they_need() {
    let source = Arc::new(MemLogSource::new(records()));
    let engine = LogqlEngine::new(source.clone(), LogqlConfig::default());
    let app = loki_router(Arc::new(engine), Auth::default());
    let p = with(&[("query", r#"{cluster="prod"}"#), ("line_limit", "2")]);
    let (status, body) = call_app(app.clone(), get("/loki/api/v1/detected_fields", &p)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let limits: Vec<Option<usize>> = source.requests.lock().unwrap().iter().map(|r| r.limit).collect();
    assert_eq!(limits, [Some(2)]);
    source.requests.lock().unwrap().clear();
    let p = with(&[("query", r#"{cluster="prod"} |= "cart""#), ("line_limit", "2")]);
    let v: Value = serde_json::from_str(&call_app(app, get("/loki/api/v1/detected_fields", &p)).await.1).unwrap();
    assert_eq!(v["fields"][0]["label"], "items", "{v}");
    let seen = source.requests.lock().unwrap().clone();
    assert!(seen.iter().all(|r| r.limit >= Some(2)), "{seen:?}");
}
