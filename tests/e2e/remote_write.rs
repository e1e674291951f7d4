//! Remote-write 1.0 semantics over real HTTP: statuses, reasons, cluster stamping, staleness,
//! duplicates, and identical answers before and after a flush to Parquet.

use serde_json::Value;

use crate::harness::{TestServer, post_remote_write, remote_write_body, result};

const T0: i64 = 1_700_000_000_000;

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[tokio::test]
async fn statuses_and_reasons_follow_remote_write_semantics() {
    let s = TestServer::start_with(&["--config", &token_config()]).await;
    let url = s.url("/api/v1/write");
    let good = remote_write_body(&[(vec![("__name__", "ok_metric"), ("job", "a")], vec![(T0, 1.0)])]);

    // No cluster anywhere: 400 that says how to set one.
    let (st, body) = post_remote_write(&url, good.clone(), &[]).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("external_labels") && body.contains("X-Tributary-Cluster"),
        "{body}"
    );

    let hdr = [("X-Tributary-Cluster", "c1")];
    assert_eq!(post_remote_write(&url, good.clone(), &hdr).await.0, 204);

    // Not snappy, not protobuf.
    let (st, body) = post_remote_write(&url, b"definitely not snappy".to_vec(), &hdr).await;
    assert_eq!(st, 400);
    assert!(body.contains("snappy"), "{body}");
    let garbage = snap::raw::Encoder::new().compress_vec(&[0x0a, 0x50, 0x01]).unwrap();
    let (st, body) = post_remote_write(&url, garbage, &hdr).await;
    assert_eq!(st, 400);
    assert!(body.contains("WriteRequest"), "{body}");

    // One bad series among good ones: 400 naming it, the good one stored.
    let mixed = remote_write_body(&[
        (vec![("__name__", "mixed_good"), ("job", "a")], vec![(T0, 7.0)]),
        (vec![("__name__", "mixed_bad"), ("0bad", "x")], vec![(T0, 1.0)]),
    ]);
    let (st, body) = post_remote_write(&url, mixed, &hdr).await;
    assert_eq!(st, 400);
    assert!(body.contains("invalid label name \"0bad\""), "{body}");
    let v = s.query("mixed_good", secs(T0)).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert_eq!(result(&v)[0]["value"][1], "7");

    // The message is negotiated by content type: an unknown one gets the spec's 415.
    let r = reqwest::Client::new()
        .post(&url)
        .header("Content-Encoding", "snappy")
        .header(
            "Content-Type",
            "application/x-protobuf;proto=io.prometheus.write.v9.Request",
        )
        .header("X-Tributary-Cluster", "c1")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // Oversized body: 413 with the limit, not a dropped connection.
    let (st, body) = post_remote_write(&url, vec![0u8; 33 << 20], &hdr).await;
    assert_eq!(st, 413, "{body}");

    // Tokens: unknown → 401; known → token cluster wins, sender's value kept as exported_cluster.
    let (st, _) = post_remote_write(&url, good.clone(), &[("Authorization", "Bearer wrong")]).await;
    assert_eq!(st, 401);
    let theirs = remote_write_body(&[(
        vec![("__name__", "tok_metric"), ("cluster", "claimed")],
        vec![(T0, 3.0)],
    )]);
    let (st, body) = post_remote_write(&url, theirs, &[("Authorization", "Bearer team-a-token")]).await;
    assert_eq!(st, 204, "{body}");
    let v = s.query("tok_metric", secs(T0)).await;
    let m = &result(&v)[0]["metric"];
    assert_eq!(m["cluster"], "team-a");
    assert_eq!(m["exported_cluster"], "claimed");

    // The /api/v1/push alias (Mimir's path) works too.
    assert_eq!(post_remote_write(&s.url("/api/v1/push"), good, &hdr).await.0, 204);

    // Our own counters, in the Prometheus text format Prometheus scrapes.
    let metrics = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        "tributary_ingest_samples_total 4",
        "tributary_ingest_rejected_samples_total 2",
        "tributary_ingest_requests_total{protocol=\"prometheus_remote_write\",status=\"400\"}",
        "tributary_wal_fsyncs ",
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line:?}:\n{metrics}");
    }
}

fn token_config() -> String {
    let dir = std::env::temp_dir().join(format!("tributary-token-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("tributary.toml");
    std::fs::write(&p, "[ingest.auth.tokens]\n\"team-a-token\" = \"team-a\"\n").unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn cluster_label_stamping_and_answers_survive_flush() {
    let s = TestServer::start().await;
    let url = s.url("/api/v1/write");
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    // Two clusters sending the same series; one goes stale.
    for (cluster, base) in [("east", 10.0), ("west", 100.0)] {
        let mut samples: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 15_000, base + i as f64)).collect();
        if cluster == "west" {
            samples.push((T0 + 20 * 15_000, stale));
        }
        let body = remote_write_body(&[(vec![("__name__", "reqs_total"), ("cluster", cluster)], samples)]);
        assert_eq!(post_remote_write(&url, body, &[]).await.0, 204);
    }
    // A client retry resends a sample: it must not be counted twice.
    let retry = remote_write_body(&[(vec![("__name__", "reqs_total"), ("cluster", "east")], vec![(T0, 10.0)])]);
    assert_eq!(post_remote_write(&url, retry, &[]).await.0, 204);

    let queries = [
        ("reqs_total", T0 + 19 * 15_000),
        ("reqs_total", T0 + 21 * 15_000), // west is stale here, east still within lookback
        ("count_over_time(reqs_total[10m])", T0 + 19 * 15_000),
        ("sum by (cluster) (rate(reqs_total[2m]))", T0 + 10 * 15_000),
        ("reqs_total{cluster=~\"we.*\"} * 2", T0 + 5 * 15_000),
        ("reqs_total offset 1m", T0 + 19 * 15_000),
        ("max(reqs_total) - min(reqs_total)", T0 + 19 * 15_000),
    ];
    let mut before = Vec::new();
    for (q, t) in queries {
        before.push(s.query(q, secs(t)).await);
    }
    let range_before = s
        .query_range("reqs_total", secs(T0), secs(T0 + 25 * 15_000), 15.0)
        .await;

    let at19 = result(&before[0]);
    assert_eq!(at19.len(), 2);
    let at21 = result(&before[1]);
    assert_eq!(at21.len(), 1, "stale series must disappear: {at21:?}");
    assert_eq!(at21[0]["metric"]["cluster"], "east");
    for r in result(&before[2]) {
        assert_eq!(r["value"][1], "20", "each timestamp counted once: {r}");
    }

    let flushed = s.flush().await;
    assert!(flushed["samples"].as_u64().unwrap() >= 41, "{flushed}");
    let parquet: Vec<_> = walk(&s.data_dir.join("metrics"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    assert!(!parquet.is_empty(), "no parquet files after flush");

    for ((q, t), b) in queries.iter().zip(&before) {
        let after = s.query(q, secs(*t)).await;
        assert_eq!(sorted(&after), sorted(b), "{q} changed after flush");
    }
    let range_after = s
        .query_range("reqs_total", secs(T0), secs(T0 + 25 * 15_000), 15.0)
        .await;
    assert_eq!(sorted(&range_after), sorted(&range_before));
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The result list in a canonical order (series order is unspecified).
pub(crate) fn sorted(v: &Value) -> Vec<String> {
    let mut r: Vec<String> = result(v).iter().map(|x| x.to_string()).collect();
    r.sort();
    r
}
