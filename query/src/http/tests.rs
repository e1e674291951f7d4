//! The HTTP API end to end through the router: exact JSON shapes and error codes.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use tributary_storage::auth::Auth;
use tributary_storage::signals::{Exemplar, ExemplarSeries, MetricMetadata, MetricType};
use tributary_storage::types::{Labels, Sample, Series};

use super::router;
use crate::config::QueryConfig;
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

fn app() -> Router {
    let series = vec![
        Series::new(
            parse_labels(r#"up{job="a"}"#),
            vec![Sample::new(0, 0.5), Sample::new(60_000, 1.0)],
        ),
        Series::new(parse_labels(r#"down{job="a"}"#), vec![Sample::new(60_000, 2.0)]),
    ];
    let source = VecSource::new(series)
        .with_exemplars(exemplar_fixture())
        .with_metadata(metadata_fixture());
    router(
        Arc::new(Engine::new(Arc::new(source), QueryConfig::default())),
        Auth::default(),
    )
}

fn exemplar(timestamp: i64, value: f64, labels: &[(&str, &str)]) -> Exemplar {
    Exemplar {
        labels: Labels::from_pairs(labels),
        value,
        timestamp,
    }
}

/// The example of Prometheus's API documentation, and a second series.
fn exemplar_fixture() -> Vec<ExemplarSeries> {
    vec![
        ExemplarSeries {
            labels: parse_labels(
                r#"test_exemplar_metric_total{instance="localhost:8090",job="prometheus",service="bar"}"#,
            ),
            exemplars: vec![
                exemplar(1_600_096_945_479, 6.0, &[("trace_id", "EpTxMJ40fUus7aGY")]),
                exemplar(1_600_096_955_479, 19.0, &[("trace_id", "Olp9XHlq763ccsfa")]),
                exemplar(1_600_096_965_489, 17.0, &[("trace_id", "hCtjygkIHwAN9vs4")]),
            ],
        },
        ExemplarSeries {
            labels: parse_labels(r#"other_seconds_bucket{le="0.5"}"#),
            exemplars: vec![exemplar(1_600_096_960_000, 0.25, &[])],
        },
    ]
}

fn metadata_fixture() -> Vec<MetricMetadata> {
    let md = |cluster: &str, metric: &str, kind, help: &str, unit: &str| MetricMetadata {
        cluster: cluster.into(),
        metric: metric.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    };
    vec![
        md(
            "prod",
            "http_requests_total",
            MetricType::Counter,
            "Requests served.",
            "",
        ),
        // The same entry from another cluster is one entry; a different help text is another.
        md(
            "dev",
            "http_requests_total",
            MetricType::Counter,
            "Requests served.",
            "",
        ),
        md("dev", "http_requests_total", MetricType::Counter, "All requests.", ""),
        md(
            "prod",
            "node_memory_bytes",
            MetricType::Gauge,
            "Memory \"used\".",
            "bytes",
        ),
        md("prod", "up", MetricType::Gauge, "", ""),
    ]
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

fn post_form(path: &str, params: &[(&str, &str)]) -> Request<Body> {
    Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(encode(params)))
        .unwrap()
}

async fn call(req: Request<Body>) -> (StatusCode, String) {
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    assert_eq!(resp.headers().get(CONTENT_TYPE).unwrap(), "application/json");
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn error_of(req: Request<Body>) -> (StatusCode, String, String) {
    let (status, body) = call(req).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error", "{body}");
    (
        status,
        v["errorType"].as_str().unwrap().to_string(),
        v["error"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn instant_query_has_prometheus_shape() {
    let (status, body) = call(get("/api/v1/query", &[("query", "up"), ("time", "60")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[60,"1"]}]}}"#
    );
    let (_, body) = call(post_form(
        "/api/v1/query",
        &[("query", "up / 4"), ("time", "1970-01-01T00:01:00.5Z")],
    ))
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[60.500,"0.25"]}]}}"#
    );
    let (_, body) = call(get("/api/v1/query", &[("query", "1/0"), ("time", "1")])).await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#
    );
}

#[tokio::test]
async fn range_query_has_prometheus_shape() {
    let params = [("query", "up"), ("start", "0"), ("end", "60"), ("step", "30s")];
    let (status, body) = call(get("/api/v1/query_range", &params)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[0,"0.5"],[30,"0.5"],[60,"1"]]}]}}"#
    );
    let (_, post_body) = call(post_form("/api/v1/query_range", &params)).await;
    assert_eq!(post_body, body);
}

#[tokio::test]
async fn errors_map_to_prometheus_types_and_codes() {
    let (status, kind, message) = error_of(get("/api/v1/query", &[("query", "sum(")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(
        message,
        r#"invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#
    );

    let (status, kind, message) = error_of(get(
        "/api/v1/query",
        &[("query", r#"{__name__=~"up|down"} * 2"#), ("time", "60")],
    ))
    .await;
    assert_eq!((status, kind.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "execution"));
    assert_eq!(message, "vector cannot contain metrics with the same labelset");

    let (status, kind, message) = error_of(get("/api/v1/query", &[("query", "up"), ("time", "abc")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(
        message,
        r#"invalid parameter "time": Invalid time value for 'time': cannot parse "abc" to a valid timestamp"#
    );

    let (status, kind, _) = error_of(get("/api/v1/query", &[("query", "up"), ("timeout", "0s")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "timeout"));

    let (status, _, message) = error_of(get("/api/v1/query", &[("query", "start_timestamp(up)")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("start_timestamp()"), "{message}");
}

#[tokio::test]
async fn range_query_parameters_are_validated() {
    let too_many = [("query", "up"), ("start", "0"), ("end", "20000"), ("step", "1")];
    let (status, _, message) = error_of(get("/api/v1/query_range", &too_many)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    // The widest times the parser accepts (found with the `params` fuzz target's range
    // checks): their difference does not fit an i64, which must neither panic nor wrap around
    // into an accepted range.
    let widest = [
        ("query", "up"),
        ("start", "-292273086-05-16T16:47:06Z"),
        ("end", "292277025-08-18T07:12:54.999999999Z"),
        ("step", "9000000000"),
    ];
    let (status, _) = call(get("/api/v1/query_range", &widest)).await;
    assert_eq!(status, StatusCode::OK);
    let beyond = [("query", "up"), ("start", "-9e15"), ("end", "0"), ("step", "1e9")];
    let (status, _, message) = error_of(get("/api/v1/query_range", &beyond)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message,
        r#"invalid parameter "start": cannot parse "-9e15" to a valid timestamp"#
    );
    let backwards = [("query", "up"), ("start", "60"), ("end", "0"), ("step", "1")];
    let (_, _, message) = error_of(get("/api/v1/query_range", &backwards)).await;
    assert_eq!(
        message,
        r#"invalid parameter "end": end timestamp must not be before start time"#
    );
    let zero = [("query", "up"), ("start", "0"), ("end", "60"), ("step", "0")];
    let (_, _, message) = error_of(get("/api/v1/query_range", &zero)).await;
    assert!(
        message.starts_with(r#"invalid parameter "step": zero or negative query resolution step widths"#),
        "{message}"
    );
    let bad_step = [("query", "up"), ("start", "0"), ("end", "60"), ("step", "x")];
    let (_, _, message) = error_of(get("/api/v1/query_range", &bad_step)).await;
    assert_eq!(
        message,
        r#"invalid parameter "step": cannot parse "x" to a valid duration"#
    );
    let matrix = [("query", "up[1m]"), ("start", "0"), ("end", "60"), ("step", "30")];
    let (status, kind, _) = error_of(get("/api/v1/query_range", &matrix)).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
}

#[tokio::test]
async fn series_and_label_listings() {
    let (status, body) = call(get("/api/v1/series", &[("match[]", "up"), ("match[]", "down")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"down","job":"a"},{"__name__":"up","job":"a"}]}"#
    );
    let (_, body) = call(post_form(
        "/api/v1/series",
        &[("match[]", r#"{job="a"}"#), ("start", "30"), ("end", "90")],
    ))
    .await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"down","job":"a"},{"__name__":"up","job":"a"}]}"#
    );
    let (status, _, message) = error_of(get("/api/v1/series", &[])).await;
    assert_eq!(
        (status, message.as_str()),
        (StatusCode::BAD_REQUEST, "no match[] parameter provided")
    );
    let (status, _, message) = error_of(get("/api/v1/series", &[("match[]", "up{")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.starts_with(r#"invalid parameter "match[]":"#), "{message}");

    let (_, body) = call(get("/api/v1/labels", &[])).await;
    assert_eq!(body, r#"{"status":"success","data":["__name__","job"]}"#);
    let (_, body) = call(get("/api/v1/label/__name__/values", &[])).await;
    assert_eq!(body, r#"{"status":"success","data":["down","up"]}"#);
    let (_, body) = call(get("/api/v1/label/__name__/values", &[("match[]", "up")])).await;
    assert_eq!(body, r#"{"status":"success","data":["up"]}"#);
    let (_, body) = call(get("/api/v1/label/missing/values", &[])).await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}

#[tokio::test]
async fn static_endpoints() {
    let (status, body) = call(get("/api/v1/status/buildinfo", &[])).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["version"], "2.53.0");
    assert_eq!(v["data"]["tributaryVersion"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn metadata_has_prometheus_shape_and_limits() {
    let (status, body) = call(get("/api/v1/metadata", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        concat!(
            r#"{"status":"success","data":{"#,
            r#""http_requests_total":[{"type":"counter","help":"All requests.","unit":""},"#,
            r#"{"type":"counter","help":"Requests served.","unit":""}],"#,
            r#""node_memory_bytes":[{"type":"gauge","help":"Memory \"used\".","unit":"bytes"}],"#,
            r#""up":[{"type":"gauge","help":"","unit":""}]}}"#
        )
    );
    let (_, body) = call(get("/api/v1/metadata", &[("metric", "up")])).await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"up":[{"type":"gauge","help":"","unit":""}]}}"#
    );
    let (_, body) = call(get("/api/v1/metadata", &[("metric", "missing")])).await;
    assert_eq!(body, r#"{"status":"success","data":{}}"#);

    let data = |body: String| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"].clone()
    };
    let (_, body) = call(get("/api/v1/metadata", &[("limit", "2")])).await;
    let keys: Vec<String> = data(body).as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["http_requests_total", "node_memory_bytes"]);
    // As in Prometheus: `limit=0` answers no metric, a negative limit every metric.
    let (_, body) = call(get("/api/v1/metadata", &[("limit", "0")])).await;
    assert_eq!(body, r#"{"status":"success","data":{}}"#);
    let (_, body) = call(get("/api/v1/metadata", &[("limit", "-1")])).await;
    assert_eq!(data(body).as_object().unwrap().len(), 3);
    let (_, body) = call(get("/api/v1/metadata", &[("limit_per_metric", "1")])).await;
    assert_eq!(
        data(body)["http_requests_total"],
        serde_json::json!([{"type": "counter", "help": "All requests.", "unit": ""}])
    );
    let (_, body) = call(get("/api/v1/metadata", &[("limit_per_metric", "0")])).await;
    assert_eq!(data(body)["http_requests_total"].as_array().unwrap().len(), 2);

    let (status, kind, message) = error_of(get("/api/v1/metadata", &[("limit", "x")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(message, "limit must be a number");
    let (_, _, message) = error_of(get("/api/v1/metadata", &[("limit_per_metric", "1.5")])).await;
    assert_eq!(message, "limit_per_metric must be a number");
}

#[tokio::test]
async fn query_exemplars_has_prometheus_shape() {
    let params = [
        ("query", "test_exemplar_metric_total"),
        ("start", "1600096900"),
        ("end", "1600096960.000"),
    ];
    let (status, body) = call(get("/api/v1/query_exemplars", &params)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        concat!(
            r#"{"status":"success","data":[{"seriesLabels":{"__name__":"test_exemplar_metric_total","#,
            r#""instance":"localhost:8090","job":"prometheus","service":"bar"},"exemplars":["#,
            r#"{"labels":{"trace_id":"EpTxMJ40fUus7aGY"},"value":"6","timestamp":1600096945.479},"#,
            r#"{"labels":{"trace_id":"Olp9XHlq763ccsfa"},"value":"19","timestamp":1600096955.479}]}]}"#
        )
    );
    let (_, post_body) = call(post_form("/api/v1/query_exemplars", &params)).await;
    assert_eq!(post_body, body);

    // Every selector of the expression counts, inside functions, range selectors and
    // subqueries; without start and end, all time.
    let query =
        r#"sum(rate(test_exemplar_metric_total{job="prometheus"}[5m])) / max_over_time(other_seconds_bucket[1h:1m])"#;
    let (_, body) = call(post_form("/api/v1/query_exemplars", &[("query", query)])).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = v["data"].as_array().unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0]["seriesLabels"]["__name__"], "other_seconds_bucket");
    assert_eq!(
        series[0]["exemplars"],
        serde_json::json!([{"labels": {}, "value": "0.25", "timestamp": 1600096960}])
    );
    assert_eq!(series[1]["exemplars"].as_array().unwrap().len(), 3);

    let (_, body) = call(get("/api/v1/query_exemplars", &[("query", r#"up{job="a"}"#)])).await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}

#[tokio::test]
async fn query_exemplars_errors() {
    // No selector in the query: Prometheus answers 204 without a body.
    let resp = app()
        .oneshot(get("/api/v1/query_exemplars", &[("query", "1 + 1")]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(to_bytes(resp.into_body(), 1024).await.unwrap().is_empty());

    let (status, kind, message) = error_of(get("/api/v1/query_exemplars", &[("query", "sum(")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(
        message,
        r#"invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#
    );
    let (status, _, _) = error_of(get("/api/v1/query_exemplars", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty query does not parse");
    let backwards = [("query", "up"), ("start", "60"), ("end", "0")];
    let (status, kind, message) = error_of(get("/api/v1/query_exemplars", &backwards)).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(message, "end timestamp must not be before start timestamp");
    let (_, _, message) = error_of(get("/api/v1/query_exemplars", &[("query", "up"), ("start", "x")])).await;
    assert_eq!(
        message,
        r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#
    );
}

#[tokio::test]
async fn annotations_are_served_as_warnings_and_infos() {
    // `up` is not named like a counter: Prometheus 3 answers the rate with an info.
    let (status, body) = call(get("/api/v1/query", &[("query", "rate(up[2m])"), ("time", "60")])).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["infos"],
        serde_json::json!([
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"up\" (1:6)"
        ])
    );
    assert!(v.get("warnings").is_none(), "{body}");
    let (_, body) = call(get(
        "/api/v1/query_range",
        &[
            ("query", "quantile(1.5, up)"),
            ("start", "0"),
            ("end", "60"),
            ("step", "30"),
        ],
    ))
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["warnings"],
        serde_json::json!(["PromQL warning: quantile value should be between 0 and 1, got 1.5 (1:10)"])
    );
    // Answers without anything to remark carry neither field.
    let (_, body) = call(get("/api/v1/query", &[("query", "up"), ("time", "60")])).await;
    assert!(!body.contains("warnings") && !body.contains("infos"), "{body}");
}

#[tokio::test]
async fn limit_cuts_listings_and_results_with_a_warning() {
    let (_, body) = call(get("/api/v1/series", &[("match[]", r#"{job="a"}"#), ("limit", "1")])).await;
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"down","job":"a"}],"warnings":["results truncated due to limit"]}"#
    );
    let (_, body) = call(get("/api/v1/labels", &[("limit", "1")])).await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__"],"warnings":["results truncated due to limit"]}"#
    );
    let (_, body) = call(get("/api/v1/label/__name__/values", &[("limit", "2")])).await;
    assert_eq!(body, r#"{"status":"success","data":["down","up"]}"#);
    let (_, body) = call(get(
        "/api/v1/query",
        &[("query", r#"{job="a"}"#), ("time", "60"), ("limit", "1")],
    ))
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"][0], "results truncated due to limit");
    let (status, kind, message) = error_of(get("/api/v1/labels", &[("limit", "x")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(
        message,
        r#"invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax"#
    );
    let (_, _, message) = error_of(get("/api/v1/series", &[("match[]", "up"), ("limit", "-1")])).await;
    assert_eq!(message, r#"invalid parameter "limit": limit must be non-negative"#);
}

/// `query.max_listing_items` bounds a listing answered without a cut: `limit=1000000000000`
/// (or none) over a longer listing fails naming the option, a limit within it still cuts.
#[tokio::test]
async fn listings_longer_than_the_bound_fail_unless_a_limit_cuts_them() {
    let series = vec![
        Series::new(parse_labels(r#"up{job="a"}"#), vec![Sample::new(0, 1.0)]),
        Series::new(parse_labels(r#"up{job="b"}"#), vec![Sample::new(0, 1.0)]),
        Series::new(parse_labels(r#"up{job="c"}"#), vec![Sample::new(0, 1.0)]),
    ];
    let cfg = QueryConfig {
        max_listing_items: 2,
        ..QueryConfig::default()
    };
    let app = || {
        router(
            Arc::new(Engine::new(Arc::new(VecSource::new(series.clone())), cfg.clone())),
            Auth::default(),
        )
    };
    let send = |req: Request<Body>| {
        let app = app();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    for limit in [None, Some("1000000000000"), Some("3")] {
        let mut params = vec![("match[]", "up")];
        params.extend(limit.map(|l| ("limit", l)));
        let (status, body) = send(get("/api/v1/series", &params)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limit:?}: {body}");
        assert!(body.contains("query.max_listing_items = 2"), "{body}");
        let (status, _) = send(get("/api/v1/label/job/values", &params[1..])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limit:?}");
    }
    let (status, body) = send(get("/api/v1/series", &[("match[]", "up"), ("limit", "2")])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("results truncated due to limit"), "{body}");
    let (status, _) = send(get("/api/v1/labels", &[])).await;
    assert_eq!(status, StatusCode::OK, "two names fit");
}

#[tokio::test]
async fn format_and_parse_query() {
    let (status, body) = call(get("/api/v1/format_query", &[("query", "sum(up)by(job)")])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"success","data":"sum by (job) (up)"}"#);
    let (_, body) = call(post_form("/api/v1/format_query", &[("query", "rate( x[5m] )")])).await;
    assert_eq!(body, r#"{"status":"success","data":"rate(x[5m])"}"#);
    let (status, kind, message) = error_of(get("/api/v1/format_query", &[("query", "sum(")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert_eq!(
        message,
        r#"invalid parameter "query": 1:5: parse error: unclosed left parenthesis"#
    );
    let (status, body) = call(get("/api/v1/parse_query", &[("query", "up offset 1m")])).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["type"], "vectorSelector");
    assert_eq!(v["data"]["name"], "up");
    assert_eq!(v["data"]["offset"], 60_000);
}

#[tokio::test]
async fn bad_match_selectors_are_bad_data() {
    let (status, kind, message) = error_of(get("/api/v1/labels", &[("match[]", "up{")])).await;
    assert_eq!((status, kind.as_str()), (StatusCode::BAD_REQUEST, "bad_data"));
    assert!(!message.starts_with("invalid parameter"), "{message}");
    let (_, _, message) = error_of(get("/api/v1/series", &[("match[]", "up{")])).await;
    assert!(message.starts_with(r#"invalid parameter "match[]":"#), "{message}");
}

#[tokio::test]
async fn query_answers_name_the_tier_that_served_them() {
    let tier = |req: Request<Body>| async move {
        let resp = app().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.headers()
            .get(super::prom_api::TIER_HEADER)
            .map(|v| v.to_str().unwrap().to_string())
    };
    // A day-long aligned window reads 1-hour rollups; a short one raw samples.
    let day = [("query", "max_over_time(up[1d])"), ("time", "86400")];
    assert_eq!(tier(get("/api/v1/query", &day)).await.as_deref(), Some("1h"));
    assert_eq!(tier(post_form("/api/v1/query", &day)).await.as_deref(), Some("1h"));
    let short = [("query", "up"), ("time", "60")];
    assert_eq!(tier(get("/api/v1/query", &short)).await.as_deref(), Some("raw"));
    let range = [
        ("query", "count_over_time(up[2h])"),
        ("start", "0"),
        ("end", "7200"),
        ("step", "300"),
    ];
    assert_eq!(tier(get("/api/v1/query_range", &range)).await.as_deref(), Some("5m"));
}

/// A token's own query limits (`[[auth.tokens]]`) refuse, naming the token and the limit, what
/// the same request with an unlimited token is answered; a token at its concurrency limit gets a
/// 429 until one of its queries ends. Refusals are counted by token name and limit.
#[tokio::test]
async fn token_query_limits_refuse_what_an_unlimited_token_is_answered() {
    use tributary_storage::auth::{AuthConfig, TokenEntry};
    use tributary_storage::scope::ClusterScope;

    use crate::token_limits::TokenLimit;

    let series: Vec<Series> = ["a", "b", "c"]
        .iter()
        .map(|job| {
            let labels = parse_labels(&format!(r#"up{{cluster="c",job="{job}"}}"#));
            Series::new(labels, (0..10).map(|i| Sample::new(i * 15_000, 1.0)).collect())
        })
        .collect();
    let token = |token: &str, limits: TokenEntry| TokenEntry {
        token: Some(token.into()),
        read: Some(ClusterScope::new(vec!["*".into()])),
        ..limits
    };
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![
            token("free", TokenEntry::default()),
            token(
                "tight",
                TokenEntry {
                    name: Some("dashboards".into()),
                    max_concurrent_queries: Some(1),
                    max_samples: Some(100),
                    max_series: Some(2),
                    ..TokenEntry::default()
                },
            ),
        ],
        ..AuthConfig::default()
    })
    .unwrap();
    let engine = Arc::new(Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default()));
    let app = router(engine.clone(), auth.clone());
    let send = |token: &str, req: Request<Body>| {
        let (app, token) = (app.clone(), format!("Bearer {token}"));
        async move {
            let mut req = req;
            req.headers_mut().insert("authorization", token.parse().unwrap());
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        }
    };
    let cases = [
        (
            get("/api/v1/query", &[("query", "up"), ("time", "120")]),
            get("/api/v1/query", &[("query", "up"), ("time", "120")]),
            "max_series = 2",
        ),
        (
            get("/api/v1/series", &[("match[]", "up")]),
            get("/api/v1/series", &[("match[]", "up")]),
            "max_series = 2",
        ),
        (
            get(
                "/api/v1/query",
                &[("query", "count_over_time(up[5m:1s])"), ("time", "120")],
            ),
            get(
                "/api/v1/query",
                &[("query", "count_over_time(up[5m:1s])"), ("time", "120")],
            ),
            "max_samples = 100",
        ),
    ];
    for (for_free, for_tight, limit) in cases {
        let (status, v) = send("free", for_free).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["data"]["result"].as_array().map_or(3, Vec::len), 3, "{v}");
        let (status, v) = send("tight", for_tight).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errorType"], "execution", "{v}");
        let message = v["error"].as_str().unwrap();
        assert!(
            message.contains(r#"token "dashboards""#) && message.contains(limit),
            "{message}"
        );
    }
    // Within the token's bounds, or cut by `limit` below them, it is answered.
    let (status, v) = send(
        "tight",
        get("/api/v1/query", &[("query", "up"), ("time", "120"), ("limit", "2")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["warnings"][0], "results truncated due to limit", "{v}");

    // A query already running holds the token's one permit.
    let running = auth
        .reader(Some("Bearer tight"), None)
        .unwrap()
        .unwrap()
        .query
        .slots
        .clone()
        .unwrap();
    let held = running.try_acquire_owned().unwrap();
    let (status, v) = send("tight", get("/api/v1/labels", &[])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["errorType"], "too_many_requests", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("max_concurrent_queries = 1"),
        "{v}"
    );
    let (status, _) = send("free", get("/api/v1/labels", &[])).await;
    assert_eq!(status, StatusCode::OK, "another token is not held back");
    drop(held);
    let (status, v) = send("tight", get("/api/v1/labels", &[])).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let m = engine.metrics();
    assert_eq!(m.token_refusals("dashboards", TokenLimit::Series), 2);
    assert_eq!(m.token_refusals("dashboards", TokenLimit::Samples), 1);
    assert_eq!(m.token_refusals("dashboards", TokenLimit::ConcurrentQueries), 1);
}

/// `/federate`: the latest sample of each selected series, in the text format, with its own
/// timestamp; a series whose latest sample is a staleness marker, or older than the lookback,
/// is left out.
#[tokio::test]
async fn federate_answers_latest_samples_in_text_format() {
    use tributary_storage::types::STALE_NAN_BITS;

    let now = super::params::now_ms();
    let series = vec![
        Series::new(
            parse_labels(r#"up{cluster="b",job="x"}"#),
            vec![Sample::new(now - 20_000, 1.0), Sample::new(now - 5_000, 2.0)],
        ),
        Series::new(
            parse_labels(r#"up{cluster="a",job="x"}"#),
            vec![Sample::new(now - 7_000, 1e6)],
        ),
        Series::new(
            parse_labels(r#"up{cluster="c",job="x"}"#),
            vec![
                Sample::new(now - 7_000, 1.0),
                Sample::new(now - 6_000, f64::from_bits(STALE_NAN_BITS)),
            ],
        ),
        Series::new(
            parse_labels(r#"up{cluster="d",job="x"}"#),
            vec![Sample::new(now - 600_000, 1.0)],
        ),
        Series::new(
            parse_labels(r#"a_metric{cluster="a"}"#),
            vec![Sample::new(now - 1_000, 0.5)],
        ),
    ];
    let app = router(
        Arc::new(Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default())),
        Auth::default(),
    );
    // Two alternatives selecting `up` twice: each series once.
    let req = get(
        "/federate",
        &[("match[]", "up"), ("match[]", r#"{job="x"}"#), ("match[]", "a_metric")],
    );
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
    let body = String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    let expected = format!(
        "# TYPE a_metric untyped\na_metric{{cluster=\"a\"}} 0.5 {}\n\
         # TYPE up untyped\nup{{cluster=\"a\",job=\"x\"}} 1e+06 {}\nup{{cluster=\"b\",job=\"x\"}} 2 {}\n",
        now - 1_000,
        now - 7_000,
        now - 5_000
    );
    assert_eq!(body, expected);

    let resp = app.oneshot(get("/federate", &[])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// `/federate` reads under the sample limit: more samples in the lookback than
/// `query.max_samples` fail with Prometheus's wording instead of being loaded.
#[tokio::test]
async fn federate_is_held_to_the_sample_limit() {
    let now = super::params::now_ms();
    let series = vec![Series::new(
        parse_labels(r#"busy{cluster="a"}"#),
        (0..50).map(|i| Sample::new(now - 1_000 * (50 - i), 1.0)).collect(),
    )];
    let cfg = QueryConfig {
        max_samples: 10,
        ..QueryConfig::default()
    };
    let app = router(
        Arc::new(Engine::new(Arc::new(VecSource::new(series)), cfg)),
        Auth::default(),
    );
    let resp = app.oneshot(get("/federate", &[("match[]", "busy")])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["errorType"], "execution");
    assert!(v["error"].as_str().unwrap().contains("too many samples"), "{v}");
}

/// What no route answers (no such path, or a path without the method) has the API's error
/// body: Prometheus's JSON envelope, or Loki's plain text under `/loki/`.
#[tokio::test]
async fn unrouted_requests_answer_in_the_apis_error_shape() {
    let app = app().layer(axum::middleware::from_fn(super::unrouted_bodies));
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let (status, headers) = (resp.status(), resp.headers().clone());
            let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, headers, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, headers, body) = send(get("/api/v1/nope", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "not_found");
    assert!(v["error"].as_str().unwrap().contains("/api/v1/nope"), "{v}");

    let (status, headers, body) = send(Request::delete("/api/v1/query").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert!(headers.contains_key("allow"), "{headers:?}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["errorType"], "method_not_allowed");

    let (status, headers, body) = send(get("/loki/api/v1/nope", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(body, "no such endpoint: /loki/api/v1/nope\n");

    // A handler's own answer passes untouched.
    let (status, _, body) = send(get("/api/v1/query", &[("query", "up"), ("time", "60")])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Mimir's and Loki's tenant header is accepted and has no effect: the token decides what a
/// request reads (README, "Authentication").
#[tokio::test]
async fn x_scope_org_id_is_accepted_and_ignored() {
    let mut req = get("/api/v1/query", &[("query", "up"), ("time", "60")]);
    req.headers_mut().insert("x-scope-orgid", "tenant-1".parse().unwrap());
    let (status, with) = call(req).await;
    assert_eq!(status, StatusCode::OK);
    let (_, without) = call(get("/api/v1/query", &[("query", "up"), ("time", "60")])).await;
    assert_eq!(with, without);
}

/// Typical PromQL mistakes answer 400 `bad_data` with Prometheus's own message: where
/// (`line:column`) and what was expected. Each expected message is the one Debian's Prometheus
/// (2.42) answers for the same query.
#[tokio::test]
async fn parse_errors_say_where_and_what_was_expected() {
    let table = [
        (
            "sum by cluster (up)",
            r#"1:8: parse error: unexpected identifier "cluster" in grouping opts, expected "(""#,
        ),
        ("sum(rate(up[5m])", "1:17: parse error: unclosed left parenthesis"),
        ("sum(up))", "1:9: parse error: unexpected right parenthesis ')'"),
        (
            r#"up{job="a""#,
            "1:11: parse error: unexpected end of input inside braces",
        ),
        (r#"up{job="a"}}"#, "1:12: parse error: unexpected character: '}'"),
        ("rate(up[5m]", "1:12: parse error: unclosed left parenthesis"),
        ("up[5m", "1:6: parse error: unclosed left bracket"),
        (
            "up{job=a}",
            r#"1:8: parse error: unexpected identifier "a" in label matching, expected string"#,
        ),
        (
            r#"up{job~"a"}"#,
            "1:7: parse error: unexpected character inside braces: '~'",
        ),
        (
            "up{job=}",
            r#"1:8: parse error: unexpected "}" in label matching, expected string"#,
        ),
        (
            "up{job=~5}",
            "1:9: parse error: unexpected character inside braces: '5'",
        ),
        (
            "up offset",
            "1:10: parse error: unexpected end of input in offset, expected duration",
        ),
        (
            "sum(up) by cluster",
            r#"1:12: parse error: unexpected identifier "cluster" in grouping opts, expected "(""#,
        ),
        (
            "foo_bar(up)",
            r#"1:1: parse error: unknown function with name "foo_bar""#,
        ),
        (
            "rate(up)",
            r#"1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
        ),
        ("rate(up[5x])", r#"1:9: parse error: bad duration syntax: "5""#),
        (
            r#"sum("up")"#,
            "1:5: parse error: expected type instant vector in aggregation expression, got string",
        ),
        (
            r#"rate("up")"#,
            r#"1:6: parse error: expected type range vector in call to function "rate", got string"#,
        ),
        (r#"up{job="a}"#, "1:8: parse error: unterminated quoted string"),
        ("up *", "1:5: parse error: unexpected end of input"),
    ];
    for (query, expected) in table {
        for path in ["/api/v1/query", "/api/v1/query_range"] {
            let params = [
                ("query", query),
                ("start", "0"),
                ("end", "60"),
                ("step", "30s"),
                ("time", "60"),
            ];
            let (status, kind, message) = error_of(get(path, &params)).await;
            assert_eq!(
                (status, kind.as_str()),
                (StatusCode::BAD_REQUEST, "bad_data"),
                "{query}"
            );
            assert_eq!(
                message,
                format!("invalid parameter \"query\": {expected}"),
                "{path} {query}"
            );
        }
    }
}
