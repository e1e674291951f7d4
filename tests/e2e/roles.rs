//! Roles: an ingest-only process and a query-only process sharing one object store. The query
//! process finds the files the ingest process flushed (it refreshes its catalog periodically).

use std::time::Duration;

use crate::harness::{TestServer, eventually, post_remote_write, remote_write_body};

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_query_roles_share_the_object_store() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("file://{}", shared.path().display());
    let ingest = TestServer::start_with(&["--role", "ingest", "--storage", &url]).await;
    let query = TestServer::start_with(&["--role", "query", "--storage", &url]).await;

    // The ingest role does not serve queries; the query role does not accept writes.
    let r = reqwest::get(ingest.url("/api/v1/query?query=1")).await.unwrap();
    assert_eq!(r.status(), 404);
    let body = remote_write_body(&[(vec![("__name__", "role_probe"), ("cluster", "r")], vec![(T0, 42.0)])]);
    assert_eq!(
        post_remote_write(&query.url("/api/v1/write"), body.clone(), &[])
            .await
            .0,
        404
    );

    assert_eq!(post_remote_write(&ingest.url("/api/v1/write"), body, &[]).await.0, 204);
    ingest.flush().await;
    let t = T0 as f64 / 1000.0;
    let url = query.url("/api/v1/query");
    eventually(
        Duration::from_secs(60),
        "the query role to see the flushed file",
        || {
            let url = url.clone();
            async move {
                let v: serde_json::Value = reqwest::Client::new()
                    .get(url)
                    .query(&[("query", "role_probe"), ("time", &t.to_string())])
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (v["data"]["result"][0]["value"][1] == "42").then_some(())
            }
        },
    )
    .await;
    // The fleet status: the query process has no head, so no per-cluster figures, only the
    // storage the ingester's flush filled.
    let fleet: serde_json::Value = reqwest::get(query.url("/api/v1/status/fleet"))
        .await
        .expect("fleet status")
        .json()
        .await
        .expect("fleet json");
    assert!(
        fleet["data"]["clusters"].is_null() && fleet["data"]["head"].is_null(),
        "{fleet}"
    );
    let metrics = fleet["data"]["storage"]
        .as_array()
        .expect("storage")
        .iter()
        .find(|t| t["table"] == "metrics")
        .expect("metrics table");
    assert!(metrics["files"].as_u64().expect("files") > 0, "{fleet}");
}
