//! The read scope against every query shape: a token reading `alpha*` must never see a series,
//! label value, metadata entry, exemplar or log line of cluster `beta`, however it asks. Every
//! string of beta's data contains "beta" and no query below does, so "beta" appearing anywhere
//! in an answer is a leak. Each shape is also asked with a token reading `*`, which must see
//! beta: the shape really reaches beta's data, so its scoped answer proves something.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use tributary_storage::auth::{Auth, AuthConfig, TokenEntry};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::{Exemplar, ExemplarSeries, MetricMetadata, MetricType};
use tributary_storage::types::{Labels, Sample, Series};

use crate::config::QueryConfig;
use crate::http;
use crate::logql::LogqlConfig;
use crate::logql::LogqlEngine;
use crate::logql::mem::{MemLogSource, record};
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

/// Evaluation time: samples every 15 s up to here.
const T: i64 = 600_000;
const S: i64 = 1_000_000_000;

fn series(text: &str, value: f64) -> Series {
    Series::new(
        parse_labels(text),
        (0..=T / 15_000)
            .map(|i| Sample::new(i * 15_000, value + i as f64))
            .collect(),
    )
}

fn metrics() -> VecSource {
    let mut all = Vec::new();
    for (c, v) in [("alpha", 1.0), ("beta", 1000.0)] {
        all.push(series(&format!(r#"up{{cluster="{c}",job="api",instance="i-{c}"}}"#), v));
        all.push(series(
            &format!(r#"http_requests_total{{cluster="{c}",job="api",instance="i-{c}",code="200"}}"#),
            v,
        ));
    }
    all.push(series(r#"secret_metric{cluster="beta",job="api",pod="beta-pod"}"#, 7.0));
    let exemplars = ["alpha", "beta"]
        .map(|c| ExemplarSeries {
            labels: parse_labels(&format!(
                r#"http_requests_total{{cluster="{c}",job="api",instance="i-{c}",code="200"}}"#
            )),
            exemplars: vec![Exemplar {
                labels: Labels::from_pairs(&[("trace_id", &format!("{c}-trace"))]),
                value: 1.0,
                timestamp: T - 1000,
            }],
        })
        .to_vec();
    let metadata = ["alpha", "beta"]
        .map(|c| MetricMetadata {
            cluster: c.into(),
            metric: "up".into(),
            kind: MetricType::Gauge,
            help: format!("up as {c} says"),
            unit: String::new(),
        })
        .to_vec();
    VecSource::new(all).with_exemplars(exemplars).with_metadata(metadata)
}

fn logs() -> MemLogSource {
    let mut records = Vec::new();
    for c in ["alpha", "beta"] {
        let pod = format!("{c}-pod");
        let mut stream = vec![("cluster", c), ("job", "app"), ("pod", pod.as_str())];
        if c == "beta" {
            // A label name only beta's streams carry, for the label-name listings.
            stream.push(("beta_team", "x"));
        }
        for i in 1..=5 {
            records.push(record(
                &stream,
                i * S,
                &format!("level=info msg=\"hello from {c}\" n={i}"),
            ));
        }
    }
    MemLogSource::new(records)
}

fn app() -> Router {
    let token = |token: &str, read: &[&str]| TokenEntry {
        token: Some(token.into()),
        read: Some(ClusterScope::new(read.iter().map(|s| s.to_string()).collect())),
        ..TokenEntry::default()
    };
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![
            token("alpha-reader", &["alpha*"]),
            token("fleet-reader", &["*"]),
            TokenEntry {
                token: Some("writer".into()),
                write: Some("alpha".into()),
                ..TokenEntry::default()
            },
        ],
        ..AuthConfig::default()
    })
    .unwrap();
    let engine = Engine::new(Arc::new(metrics()), QueryConfig::default());
    let logql = LogqlEngine::new(Arc::new(logs()), LogqlConfig::default());
    http::router(Arc::new(engine), auth.clone()).merge(http::loki_router(Arc::new(logql), auth))
}

async fn get(app: &Router, path: &str, params: &[(&str, &str)], token: Option<&str>) -> (StatusCode, String) {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let mut req = Request::get(format!("{path}?{query}"));
    if let Some(t) = token {
        req = req.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 22).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// (path, parameters) of every shape.
fn shapes() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let t = (T / 1000).to_string();
    let instant = |q: &str| ("/api/v1/query", vec![("query", q.to_string()), ("time", t.clone())]);
    let mut all: Vec<(&'static str, Vec<(&'static str, String)>)> = [
        "up",
        r#"{__name__=~".+"}"#,
        r#"{cluster=~".+"}"#,
        r#"up{cluster=~"alpha|.*"}"#,
        r#"up{cluster!="alpha"}"#,
        r#"{__name__=~".+", cluster!~"alpha.*"}"#,
        "max_over_time(up[5m:1m])",
        r#"max_over_time({__name__=~".+"}[10m:30s] offset 1m)"#,
        "rate(http_requests_total[5m])",
        r#"label_replace(up, "cluster", "other", "cluster", ".*")"#,
        r#"label_replace({__name__=~".+"}, "instance", "$1", "instance", "(.*)")"#,
        "up or secret_metric",
        "secret_metric or vector(1)",
        HIDDEN_BY_BETA,
        "up unless on(pod) secret_metric",
        "up and on(job) http_requests_total",
        "up + on(instance) group_left http_requests_total",
        "sum(up)",
        "count by (cluster) (up)",
        "count by (cluster, instance) ({__name__=~\".+\"})",
        "sum by (instance) (rate(http_requests_total[5m]))",
        r#"topk(10, {__name__=~".+"})"#,
        r#"count_values("v", up)"#,
        r#"sort_by_label({__name__=~".+"}, "instance")"#,
        "timestamp(secret_metric)",
    ]
    .iter()
    .map(|q| instant(q))
    .collect();
    all.push((
        "/api/v1/query_range",
        vec![
            ("query", r#"{__name__=~".+"}"#.into()),
            ("start", "0".into()),
            ("end", t.clone()),
            ("step", "60".into()),
        ],
    ));
    let every = ("match[]", r#"{__name__=~".+"}"#.to_string());
    all.push(("/api/v1/series", vec![every.clone()]));
    all.push((
        "/api/v1/series",
        vec![("match[]", r#"{job="api", cluster!="alpha"}"#.into())],
    ));
    all.push(("/api/v1/labels", vec![]));
    all.push(("/api/v1/labels", vec![every.clone()]));
    for name in ["cluster", "instance", "pod", "__name__"] {
        let path: &'static str = Box::leak(format!("/api/v1/label/{name}/values").into_boxed_str());
        all.push((path, vec![]));
    }
    all.push(("/api/v1/metadata", vec![]));
    all.push(("/api/v1/metadata", vec![("metric", "up".into())]));
    all.push((
        "/api/v1/query_exemplars",
        vec![
            ("query", r#"{__name__=~".+"}"#.into()),
            ("start", "0".into()),
            ("end", t.clone()),
        ],
    ));
    let loki = |q: &str| {
        (
            "/loki/api/v1/query_range",
            vec![
                ("query", q.to_string()),
                ("start", "0".into()),
                ("end", (10 * S).to_string()),
            ],
        )
    };
    for q in [
        r#"{job="app"}"#,
        r#"{cluster=~".+"} |= "hello""#,
        r#"{job="app"} | logfmt | label_format cluster="other""#,
        r#"{job="app"} | line_format "{{.pod}} {{.cluster}}""#,
        r#"sum by (cluster) (count_over_time({job="app"}[5s]))"#,
        r#"count_over_time({job="app", cluster!="alpha"}[5s])"#,
    ] {
        all.push(loki(q));
    }
    all.push((
        "/loki/api/v1/query",
        vec![
            ("query", r#"sum by (pod) (count_over_time({job="app"}[10s]))"#.into()),
            ("time", (6 * S).to_string()),
        ],
    ));
    let range = || vec![("start", "0".to_string()), ("end", (10 * S).to_string())];
    all.push(("/loki/api/v1/labels", range()));
    all.push(("/loki/api/v1/label/cluster/values", range()));
    all.push(("/loki/api/v1/label/pod/values", range()));
    let mut series = range();
    series.push(("match[]", r#"{job="app"}"#.into()));
    all.push(("/loki/api/v1/series", series));
    let mut stats = range();
    stats.push(("query", r#"{job="app"}"#.into()));
    all.push(("/loki/api/v1/index/stats", stats));
    all
}

/// The shape whose fleet-wide answer is empty because of beta's data.
const HIDDEN_BY_BETA: &str = "up unless on(job) secret_metric";

#[tokio::test]
async fn a_scoped_token_never_sees_another_cluster() {
    let app = app();
    for (path, params) in shapes() {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(
            !params.iter().any(|(_, v)| v.contains("beta")),
            "a query must not name beta"
        );
        let (status, scoped) = get(&app, path, &params, Some("alpha-reader")).await;
        assert_eq!(status, StatusCode::OK, "{path} {params:?}: {scoped}");
        assert!(!scoped.contains("beta"), "{path} {params:?} leaked beta: {scoped}");
        let (status, fleet) = get(&app, path, &params, Some("fleet-reader")).await;
        assert_eq!(status, StatusCode::OK, "{path} {params:?}: {fleet}");
        // The shape reaches beta's data: its fleet answer shows beta's strings, or (for
        // answers without labels: sums, counts, index stats, `unless`) differs from the scoped one.
        assert!(
            fleet.contains("beta") || fleet != scoped,
            "{path} {params:?} never reached beta: {fleet}"
        );
        if params.iter().any(|(_, v)| *v == HIDDEN_BY_BETA) {
            // Beta's series removes alpha's from the fleet's answer; out of scope, it cannot.
            assert!(
                !fleet.contains("alpha") && scoped.contains("i-alpha"),
                "{fleet} / {scoped}"
            );
        }
    }
}

/// Numbers, not just names: aggregates over the scope count only its series, and a metric only
/// another cluster has is absent.
#[tokio::test]
async fn aggregates_and_absent_see_only_the_scope() {
    let app = app();
    let t = (T / 1000).to_string();
    let value = |body: &str| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["data"]["result"].clone()
    };
    let q = |query: &'static str| vec![("query", query), ("time", t.as_str())];
    let (_, body) = get(
        &app,
        "/api/v1/query",
        &q("count({__name__=~\".+\"})"),
        Some("alpha-reader"),
    )
    .await;
    assert_eq!(value(&body)[0]["value"][1], "2", "{body}");
    let (_, body) = get(
        &app,
        "/api/v1/query",
        &q("count({__name__=~\".+\"})"),
        Some("fleet-reader"),
    )
    .await;
    assert_eq!(value(&body)[0]["value"][1], "5", "{body}");
    let (_, body) = get(&app, "/api/v1/query", &q("absent(secret_metric)"), Some("alpha-reader")).await;
    assert_eq!(value(&body)[0]["value"][1], "1", "{body}");
    let (_, body) = get(&app, "/api/v1/query", &q("absent(secret_metric)"), Some("fleet-reader")).await;
    assert_eq!(value(&body), serde_json::json!([]), "{body}");
}

/// 401 without a token (required) or with an unknown one, 403 for a token that may not read,
/// on both APIs, with the reason in the body; endpoints that read no data stay open.
#[tokio::test]
async fn reads_without_a_read_scope_are_refused() {
    let app = app();
    for path in [
        "/api/v1/query",
        "/api/v1/labels",
        "/loki/api/v1/labels",
        "/loki/api/v1/query",
    ] {
        let params = [("query", "up")];
        let (status, body) = get(&app, path, &params, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body.contains("token is required"), "{path}: {body}");
        let (status, body) = get(&app, path, &params, Some("nope")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(body.contains("unknown token"), "{path}: {body}");
        let (status, body) = get(&app, path, &params, Some("writer")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.contains("no read scope"), "{path}: {body}");
    }
    let (status, body) = get(&app, "/api/v1/query", &[("query", "up")], Some("writer")).await;
    assert!(body.contains("\"errorType\":\"forbidden\""), "{status} {body}");
    let (status, _) = get(&app, "/api/v1/status/buildinfo", &[], None).await;
    assert_eq!(status, StatusCode::OK);
}

/// Without `auth.required`, a request without a token reads everything (as before), while a
/// token still holds its reader to its scope.
#[tokio::test]
async fn without_required_auth_anonymous_reads_everything_and_tokens_keep_their_scope() {
    let auth = Auth::open(&AuthConfig {
        tokens: vec![TokenEntry {
            token: Some("alpha-reader".into()),
            read: Some(ClusterScope::new(vec!["alpha".into()])),
            ..TokenEntry::default()
        }],
        ..AuthConfig::default()
    })
    .unwrap();
    let app = http::router(Arc::new(Engine::new(Arc::new(metrics()), QueryConfig::default())), auth);
    let params = [("match[]", r#"{__name__=~".+"}"#)];
    let (_, open) = get(&app, "/api/v1/series", &params, None).await;
    assert!(open.contains("beta"), "{open}");
    let (_, scoped) = get(&app, "/api/v1/series", &params, Some("alpha-reader")).await;
    assert!(scoped.contains("alpha") && !scoped.contains("beta"), "{scoped}");
}
