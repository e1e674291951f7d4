use super::*;
use axum::body::Body;
use axum::routing::get;
use tower::ServiceExt;

fn app(m: &RequestMetrics) -> axum::Router {
    let router = axum::Router::new()
        .route("/ok/{name}", get(|| async { "fine" }))
        .route("/bad", get(|| async { (StatusCode::BAD_REQUEST, "no") }))
        .route("/broken", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }))
        .route("/gone", get(|| async { (StatusCode::from_u16(499).unwrap(), "left") }))
        .route("/hang", get(std::future::pending::<&'static str>));
    m.measure("prometheus", router)
}

async fn call(app: &axum::Router, path: &str) -> Option<StatusCode> {
    let req = axum::http::Request::get(path).body(Body::empty()).unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_millis(50), app.clone().oneshot(req)).await;
    answer.ok().map(|r| r.unwrap().status())
}

fn encoded(m: &RequestMetrics) -> String {
    let mut r = Registry::default();
    m.register(&mut r);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
    out
}

/// Each answer counts under its route's template and outcome; a request dropped unanswered
/// counts as canceled; a path no route matches is not counted.
#[tokio::test]
async fn requests_count_by_route_template_and_outcome() {
    let m = RequestMetrics::default();
    let app = app(&m);
    assert_eq!(call(&app, "/ok/a").await, Some(StatusCode::OK));
    assert_eq!(call(&app, "/ok/b").await, Some(StatusCode::OK));
    assert_eq!(call(&app, "/bad").await, Some(StatusCode::BAD_REQUEST));
    assert_eq!(call(&app, "/broken").await, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(call(&app, "/gone").await.map(|s| s.as_u16()), Some(499));
    assert_eq!(call(&app, "/hang").await, None);
    assert_eq!(call(&app, "/nowhere").await, Some(StatusCode::NOT_FOUND));
    let text = encoded(&m);
    for line in [
        r#"tributary_query_requests_total{api="prometheus",endpoint="/ok/{name}",outcome="success"} 2"#,
        r#"tributary_query_requests_total{api="prometheus",endpoint="/bad",outcome="client_error"} 1"#,
        r#"tributary_query_requests_total{api="prometheus",endpoint="/broken",outcome="server_error"} 1"#,
        r#"tributary_query_requests_total{api="prometheus",endpoint="/gone",outcome="canceled"} 1"#,
        r#"tributary_query_requests_total{api="prometheus",endpoint="/hang",outcome="canceled"} 1"#,
        r#"tributary_query_request_duration_seconds_count{api="prometheus",endpoint="/ok/{name}"} 2"#,
        r#"tributary_query_request_duration_seconds_bucket{le="120.0",api="prometheus",endpoint="/bad"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("nowhere"), "{text}");
}
