//! What every client meets whatever the endpoint: 404s and 405s in the API's error shape, gzip
//! when the client accepts it, and Mimir's/Loki's `X-Scope-OrgID` accepted (and ignored).

use std::io::Read;

use serde_json::Value;

use crate::harness::{TestServer, post_remote_write, remote_write_body};

#[tokio::test]
async fn unrouted_requests_answer_in_the_apis_error_shape() {
    let s = TestServer::start().await;
    let client = reqwest::Client::new();
    // Query, ingest and unknown paths alike: Prometheus's JSON envelope.
    for (method, path, status, error_type) in [
        (reqwest::Method::GET, "/api/v1/nope", 404, "not_found"),
        (reqwest::Method::GET, "/nope", 404, "not_found"),
        (reqwest::Method::DELETE, "/api/v1/query", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/api/v1/write", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/api/v1/read", 405, "method_not_allowed"),
    ] {
        let r = client.request(method.clone(), s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["errorType"], error_type, "{v}");
        assert!(v["error"].as_str().unwrap().contains(path), "{v}");
    }
    // Loki's paths: Loki's plain-text error line.
    let r = client.get(s.url("/loki/api/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "no such endpoint: /loki/api/v1/nope\n");
}

#[tokio::test]
async fn answers_are_gzipped_for_clients_that_accept_it() {
    let s = TestServer::start().await;
    let body = remote_write_body(&[(
        vec![("__name__", "gz_metric"), ("cluster", "c")],
        vec![(1_700_000_000_000, 2.5)],
    )]);
    assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &[]).await.0, 204);
    let client = reqwest::Client::new();
    let query = [("query", "gz_metric"), ("time", "1700000000")];
    let plain = client.get(s.url("/api/v1/query")).query(&query).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().await.unwrap();
    let r = client
        .get(s.url("/api/v1/query"))
        .query(&query)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&r.bytes().await.unwrap()[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);
    assert!(plain.contains("\"2.5\""), "{plain}");
}

/// Tributary has no tenants: the token decides the cluster and the read scope. A Mimir or Loki
/// client sending `X-Scope-OrgID` is served as if it had not.
#[tokio::test]
async fn x_scope_org_id_is_accepted_and_ignored() {
    let s = TestServer::start().await;
    let tenant = [("X-Scope-OrgID", "tenant-1")];
    let body = remote_write_body(&[(
        vec![("__name__", "org_metric"), ("cluster", "c")],
        vec![(1_700_000_000_000, 1.0)],
    )]);
    assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &tenant).await.0, 204);
    let client = reqwest::Client::new();
    for (path, query) in [
        ("/api/v1/query", vec![("query", "org_metric"), ("time", "1700000000")]),
        ("/loki/api/v1/labels", vec![]),
    ] {
        let with = client.get(s.url(path)).query(&query).header(tenant[0].0, tenant[0].1);
        let with = with.send().await.unwrap();
        assert_eq!(with.status(), 200, "{path}");
        let without = client.get(s.url(path)).query(&query).send().await.unwrap();
        assert_eq!(with.text().await.unwrap(), without.text().await.unwrap(), "{path}");
    }
}
