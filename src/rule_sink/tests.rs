//! The remote-write sink against a loopback HTTP server playing an ingester: what it sends, what
//! it retries and what it does not.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use prost::Message;
use tributary_proto::prometheus as pb;
use tributary_query::ruler::{RuleSample, RuleSink, RulerConfig};
use tributary_storage::types::Labels;

use super::RemoteWriteSink;

/// Serves `POST /api/v1/write`, answering the statuses of `answers` in turn (the last one
/// forever); every request's headers and body are kept.
async fn ingester(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let app = Router::new().route(
        "/api/v1/write",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            let answers = answers.clone();
            async move {
                let n = {
                    let mut kept = kept.lock();
                    kept.push((headers, body.to_vec()));
                    kept.len()
                };
                let (status, text) = answers[(n - 1).min(answers.len() - 1)];
                (StatusCode::from_u16(status).expect("status"), text)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/api/v1/write", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn sink_to(url: &str, token: Option<&str>) -> (RemoteWriteSink, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = RulerConfig {
        remote_write_url: url.to_string(),
        ..RulerConfig::default()
    };
    if let Some(t) = token {
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{t}\n")).expect("token file");
        cfg.remote_write_token_file = path;
    }
    let mut sink = RemoteWriteSink::new(&cfg).expect("sink");
    sink.backoff = vec![Duration::from_millis(1); 3];
    (sink, dir)
}

fn samples() -> Vec<RuleSample> {
    ["east", "fleet"]
        .iter()
        .map(|cluster| RuleSample {
            labels: Labels::from_pairs(&[("__name__", "job:errors:sum"), ("cluster", cluster)]),
            timestamp_ms: 1_700_000_000_000,
            value: 3.5,
        })
        .collect()
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_body_is_remote_write_with_the_token() {
    let (url, seen) = ingester(vec![(503, "busy"), (500, "oops"), (204, "")]).await;
    let (sink, _dir) = sink_to(&url, Some("ruler-token"));
    sink.write(samples()).await.expect("stored on the third attempt");
    let seen = seen.lock();
    assert_eq!(seen.len(), 3);
    let (headers, body) = &seen[2];
    assert_eq!(headers["authorization"], "Bearer ruler-token");
    assert_eq!(headers["content-encoding"], "snappy");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let raw = snap::raw::Decoder::new().decompress_vec(body).expect("snappy");
    let request = pb::WriteRequest::decode(raw.as_slice()).expect("protobuf");
    let clusters: Vec<_> = request
        .timeseries
        .iter()
        .map(|ts| {
            assert_eq!(
                ts.samples,
                vec![pb::Sample {
                    value: 3.5,
                    timestamp: 1_700_000_000_000
                }]
            );
            ts.labels
                .iter()
                .find(|l| l.name == "cluster")
                .expect("cluster")
                .value
                .clone()
        })
        .collect();
    assert_eq!(clusters, ["east", "fleet"]);
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_names_the_status_and_reason() {
    for (status, reason) in [
        (401, "unauthorized: unknown token"),
        (400, "series cluster \"x\" is outside"),
    ] {
        let (url, seen) = ingester(vec![(status, reason), (204, "")]).await;
        let (sink, _dir) = sink_to(&url, Some("wrong"));
        let err = sink.write(samples()).await.expect_err("refused");
        assert_eq!(seen.lock().len(), 1, "{status} is not retried");
        assert!(
            err.contains(&status.to_string()) && err.contains(reason) && err.contains(&url),
            "{err}"
        );
    }
}

#[tokio::test]
async fn retries_are_bounded_and_a_429_is_retried() {
    let (url, seen) = ingester(vec![(429, "too many requests")]).await;
    let (sink, _dir) = sink_to(&url, None);
    let err = sink.write(samples()).await.expect_err("never stored");
    assert_eq!(seen.lock().len(), 4);
    assert!(
        seen.lock()[0].0.get("authorization").is_none(),
        "no token configured, none sent"
    );
    assert!(err.contains("429") && err.contains("gave up after 4 attempts"), "{err}");

    // Nobody listening: a connection error, retried as often, saying why.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (sink, _dir) = sink_to(&format!("http://127.0.0.1:{port}/api/v1/write"), None);
    let err = sink.write(samples()).await.expect_err("no ingester");
    assert!(
        err.contains("gave up after 4 attempts") && err.to_lowercase().contains("connect"),
        "{err}"
    );
}

#[test]
fn a_missing_token_file_fails_startup_naming_the_option() {
    let cfg = RulerConfig {
        remote_write_url: "http://127.0.0.1:1/api/v1/write".into(),
        remote_write_token_file: "/nonexistent/ruler.token".into(),
        ..RulerConfig::default()
    };
    let err = RemoteWriteSink::new(&cfg).expect_err("no file").to_string();
    assert!(
        err.contains("ruler.remote_write_token_file /nonexistent/ruler.token"),
        "{err}"
    );
}
