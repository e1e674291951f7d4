//! Per-cluster limits over real remote-write HTTP: a cluster over its rate gets 429 with
//! `Retry-After` while another cluster keeps getting 204; a cardinality explosion is capped while
//! the cluster's existing series keep flowing; `/metrics` counts every limit hit.

use crate::harness::{TestServer, post_remote_write, remote_write_body, result, write_file};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn clusters_over_their_limits_are_refused_and_the_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(
        dir.path(),
        "tributary.toml",
        r#"
[ingest.limits]
max_series_per_cluster = 5

[[ingest.limits.overrides]]
clusters = "noisy-*"
ingestion_rate = 10.0
ingestion_burst = 20
max_series_per_cluster = 0
"#,
    );
    let s = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let url = s.url("/api/v1/write");
    let now = now_ms();
    let batch = |name: &str, cluster: &'static str, n: usize, t: i64| {
        let series: Vec<_> = (0..n)
            .map(|i| {
                (
                    vec![
                        ("__name__", "m"),
                        ("cluster", cluster),
                        ("id", Box::leak(i.to_string().into_boxed_str()) as &str),
                        ("w", Box::leak(name.to_string().into_boxed_str()) as &str),
                    ],
                    vec![(t, i as f64)],
                )
            })
            .collect();
        remote_write_body(&series)
    };

    // Rate: the burst (20 samples) passes, the next write is refused whole with Retry-After,
    // while a quiet cluster is not affected.
    assert_eq!(
        post_remote_write(&url, batch("a", "noisy-1", 20, now), &[]).await.0,
        204
    );
    let r = reqwest::Client::new()
        .post(&url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(batch("b", "noisy-1", 4, now + 1))
        .send()
        .await
        .unwrap();
    let status = r.status();
    if status != 429 {
        panic!("{status}: {}", r.text().await.unwrap());
    }
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    // 4 samples at 10/s from an empty bucket: 0.4 s, rounded up.
    assert_eq!(retry, 1);
    let text = r.text().await.unwrap();
    assert!(text.contains("noisy-1") && text.contains("ingestion_rate"), "{text}");
    assert_eq!(post_remote_write(&url, batch("a", "quiet", 3, now), &[]).await.0, 204);
    // After the delay the refused write passes: nothing of it had been stored.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(
        post_remote_write(&url, batch("b", "noisy-1", 4, now + 1), &[]).await.0,
        204
    );

    // Cardinality: "quiet" has 3 active series of its cap of 5; an explosion of 100 new ones
    // stores 2 and refuses 98 (a 400 naming the limit, the rest stored), and its existing series
    // keep flowing.
    let (st, body) = post_remote_write(&url, batch("x", "quiet", 100, now + 2), &[]).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("rejected 98 series") && body.contains("max_series_per_cluster"),
        "{body}"
    );
    let (st, body) = post_remote_write(&url, batch("a", "quiet", 3, now + 3), &[]).await;
    assert_eq!(st, 204, "{body}");
    let v = s.query(r#"count(m{cluster="quiet"})"#, (now + 3) as f64 / 1000.0).await;
    assert_eq!(result(&v)[0]["value"][1], "5", "{v}");

    // Every hit is on /metrics.
    let metrics = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        r#"tributary_ingest_limited_total{cluster="noisy-1",limit="ingestion_rate"} 1"#,
        r#"tributary_ingest_limited_total{cluster="quiet",limit="max_series_per_cluster"} 98"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
}
