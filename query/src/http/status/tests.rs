//! The status and cardinality endpoints through their router: shapes, limits, scopes.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use tributary_storage::auth::{Auth, AuthConfig, TokenEntry};
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{Sample, Series, TimeRange};

use super::{StatusInfo, status_router};
use crate::config::QueryConfig;
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

/// Two clusters: `a` with three `up` series and one `http_requests_total`, `b` with one `up`.
fn app() -> Router {
    let series = [
        (r#"up{cluster="a",job="api",instance="i1"}"#, 1_000),
        (r#"up{cluster="a",job="api",instance="i2"}"#, 2_000),
        (r#"up{cluster="a",job="db",instance="i3"}"#, 3_000),
        (r#"http_requests_total{cluster="a",job="api",instance="i1"}"#, 4_000),
        (r#"up{cluster="b",job="api",instance="i9"}"#, 9_000),
    ]
    .iter()
    .map(|(l, t)| Series::new(parse_labels(l), vec![Sample::new(*t, 1.0), Sample::new(t + 500, 1.0)]))
    .collect();
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![
            TokenEntry {
                token: Some("all".into()),
                read: Some(ClusterScope::new(vec!["*".into()])),
                ..TokenEntry::default()
            },
            TokenEntry {
                token: Some("only-b".into()),
                read: Some(ClusterScope::new(vec!["b".into()])),
                ..TokenEntry::default()
            },
        ],
        ..AuthConfig::default()
    })
    .unwrap();
    let info = StatusInfo {
        config_text: "[server]\nrole = \"all-in-one\"\n".into(),
        flags: [("role".to_string(), "all-in-one".to_string())].into(),
        start_time_ms: 1_700_000_000_000,
        cwd: "/srv".into(),
        storage_retention: "30d".into(),
        window: None,
    };
    let engine = Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default());
    status_router(Arc::new(engine), auth, info)
}

async fn get(app: &Router, token: &str, uri: &str) -> (StatusCode, Value) {
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn tsdb_status_has_prometheus_shape_and_counts() {
    let (status, body) = get(&app(), "all", "/api/v1/status/tsdb").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let data = &body["data"];
    assert_eq!(
        data["headStats"],
        json!({"numSeries": 5, "numLabelPairs": 10, "chunkCount": 0, "minTime": 1_000, "maxTime": 9_500})
    );
    assert_eq!(
        data["seriesCountByMetricName"],
        json!([{"name": "up", "value": 4}, {"name": "http_requests_total", "value": 1}])
    );
    // instance: i1 i2 i3 i9; job: api db; cluster: a b; __name__: two.
    assert_eq!(
        data["labelValueCountByLabelName"],
        json!([
            {"name": "instance", "value": 4},
            {"name": "__name__", "value": 2},
            {"name": "cluster", "value": 2},
            {"name": "job", "value": 2}
        ])
    );
    assert_eq!(
        data["memoryInBytesByLabelName"][0],
        json!({"name": "__name__", "value": 21})
    );
    // Ties in name order; the metric name counts as a pair, as in Prometheus.
    assert_eq!(
        data["seriesCountByLabelValuePair"],
        json!([
            {"name": "__name__=up", "value": 4},
            {"name": "cluster=a", "value": 4},
            {"name": "job=api", "value": 4},
            {"name": "instance=i1", "value": 2},
            {"name": "__name__=http_requests_total", "value": 1},
            {"name": "cluster=b", "value": 1},
            {"name": "instance=i2", "value": 1},
            {"name": "instance=i3", "value": 1},
            {"name": "instance=i9", "value": 1},
            {"name": "job=db", "value": 1}
        ])
    );

    let (_, limited) = get(&app(), "all", "/api/v1/status/tsdb?limit=1&cluster=a").await;
    assert_eq!(limited["data"]["headStats"]["numSeries"], 4);
    assert_eq!(
        limited["data"]["seriesCountByMetricName"],
        json!([{"name": "up", "value": 3}])
    );
    assert_eq!(
        limited["data"]["labelValueCountByLabelName"].as_array().unwrap().len(),
        1
    );
    for bad in ["0", "-1", "ten"] {
        let (status, body) = get(&app(), "all", &format!("/api/v1/status/tsdb?limit={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "limit must be a positive number");
    }
}

/// A token reading cluster `b` only sees `b`'s series, whatever it asks for.
#[tokio::test]
async fn a_scoped_token_sees_its_clusters_only() {
    let app = app();
    let (_, body) = get(&app, "only-b", "/api/v1/status/tsdb").await;
    assert_eq!(body["data"]["headStats"]["numSeries"], 1);
    assert_eq!(body["data"]["headStats"]["minTime"], 9_000);
    assert_eq!(
        body["data"]["seriesCountByLabelValuePair"][1],
        json!({"name": "cluster=b", "value": 1})
    );
    let (_, other) = get(&app, "only-b", "/api/v1/status/tsdb?cluster=a").await;
    assert_eq!(other["data"]["headStats"]["numSeries"], 0);
    let (_, names) = get(&app, "only-b", "/api/v1/cardinality/label_values?label_names[]=cluster").await;
    assert_eq!(
        names["labels"][0]["cardinality"],
        json!([{"label_value": "b", "series_count": 1}])
    );
    let (status, _) = get(&app, "nobody", "/api/v1/status/config").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn mimir_cardinality_shapes() {
    let app = app();
    let (status, body) = get(&app, "all", "/api/v1/cardinality/label_names?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "label_values_count_total": 10,
            "label_names_count": 4,
            "cardinality": [
                {"label_name": "instance", "label_values_count": 4},
                {"label_name": "__name__", "label_values_count": 2}
            ]
        })
    );
    let uri = "/api/v1/cardinality/label_values?label_names[]=job&label_names[]=cluster&selector=up&limit=1";
    let (status, body) = get(&app, "all", uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "series_count_total": 4,
            "labels": [
                {"label_name": "cluster", "label_values_count": 2, "series_count": 4,
                 "cardinality": [{"label_value": "a", "series_count": 3}]},
                {"label_name": "job", "label_values_count": 2, "series_count": 4,
                 "cardinality": [{"label_value": "api", "series_count": 3}]}
            ]
        })
    );
    for bad in [
        "/api/v1/cardinality/label_values",
        "/api/v1/cardinality/label_names?limit=501",
        "/api/v1/cardinality/label_names?count_method=active",
        "/api/v1/cardinality/label_names?selector=%7B",
    ] {
        let (status, body) = get(&app, "all", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{bad}: {body}");
    }
}

#[tokio::test]
async fn config_flags_and_runtime_info() {
    let app = app();
    let (_, config) = get(&app, "all", "/api/v1/status/config").await;
    assert_eq!(
        config,
        json!({"status": "success", "data": {"yaml": "[server]\nrole = \"all-in-one\"\n"}})
    );
    let (_, flags) = get(&app, "all", "/api/v1/status/flags").await;
    assert_eq!(flags["data"], json!({"role": "all-in-one"}));
    let (_, runtime) = get(&app, "all", "/api/v1/status/runtimeinfo").await;
    let data = &runtime["data"];
    assert_eq!(data["startTime"], "2023-11-14T22:13:20.000Z");
    assert_eq!(data["CWD"], "/srv");
    assert_eq!(data["storageRetention"], "30d");
    assert_eq!(data["reloadConfigSuccess"], true);
    assert!(data["GOMAXPROCS"].as_u64().unwrap() >= 1);
    assert!(data["goroutineCount"].as_u64().is_some(), "{data}");
}

/// Read a part at a time (here a series a part), the span is the same as read at once.
#[tokio::test]
async fn the_time_span_read_in_parts_is_the_span_read_at_once() {
    let series = [(r#"a{x="1"}"#, 5_000), (r#"a{x="2"}"#, -3_000), (r#"b{x="3"}"#, 70_000)]
        .iter()
        .map(|(l, t)| Series::new(parse_labels(l), vec![Sample::new(*t, 1.0), Sample::new(t + 10, 2.0)]))
        .collect();
    let engine = Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default());
    let all = [super::every_series()];
    for part in [1, 2, 1_000] {
        let span = super::time_span_in_parts(&engine, &all, TimeRange::ALL, part)
            .await
            .unwrap();
        assert_eq!(span, (-3_000, 70_010), "parts of {part}");
    }
    let none = [tributary_storage::types::Matcher::equal("__name__", "nothing")];
    let span = super::time_span_in_parts(&engine, &none, TimeRange::ALL, 1)
        .await
        .unwrap();
    assert_eq!(span, (0, 0));
}
