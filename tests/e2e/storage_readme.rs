//! The DuckDB examples of `storage/README.md` run against files a real server wrote: metrics and
//! logs pushed, flushed, and compacted into rollups; every `sql` statement of the file must run
//! and return rows (`tests/e2e/python/readme_sql.py`, DuckDB from PyPI).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::harness::{TestServer, post_remote_write, remote_write_body, run_python};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_readme_duckdb_examples_return_rows_on_written_files() {
    let s = TestServer::start().await;
    // Two and a half days ago: the day is complete and old enough for rollups (`rollups.after`
    // is 1d), so one compaction round writes `metrics_5m`, `metrics_1h` and `metrics_1d` too.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let t0 = now_ms - 60 * 3_600_000;
    let samples = |step: f64| (0..40).map(|i| (t0 + i * 60_000, i as f64 * step)).collect::<Vec<_>>();
    let body = remote_write_body(&[
        (
            vec![
                ("__name__", "requests_total"),
                ("cluster", "east"),
                ("instance", "a:9100"),
                ("job", "api"),
            ],
            samples(2.0),
        ),
        (
            vec![
                ("__name__", "requests_total"),
                ("cluster", "west"),
                ("instance", "b:9100"),
                ("job", "api"),
            ],
            samples(3.0),
        ),
        (
            vec![("__name__", "up"), ("cluster", "east"), ("job", "api")],
            samples(0.0),
        ),
    ]);
    let (st, text) = post_remote_write(&s.url("/api/v1/write"), body, &[]).await;
    assert_eq!(st, 204, "{text}");

    let records: Vec<_> = (0..5i64)
        .map(|i| {
            let severity = ["INFO", "WARN", "ERROR"][(i % 3) as usize];
            json!({
                "timeUnixNano": ((t0 + i * 1_000) * 1_000_000).to_string(),
                "severityNumber": 9 + 4 * (i % 3),
                "severityText": severity,
                "body": {"stringValue": format!("line {i}")},
                "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
            })
        })
        .collect();
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "k8s.cluster.name", "value": {"stringValue": "east"}},
            {"key": "k8s.namespace.name", "value": {"stringValue": "shop"}},
        ]},
        "scopeLogs": [{"logRecords": records}],
    }]});
    let r = reqwest::Client::new()
        .post(s.url("/v1/logs"))
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    let now_ns = (now_ms * 1_000_000).to_string();
    let end_ns = ((now_ms + 250) * 1_000_000).to_string();
    let spans = json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "k8s.cluster.name", "value": {"stringValue": "east"}},
        ]},
        "scopeSpans": [{"spans": [{
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
            "name": "GET /cart", "kind": 2, "startTimeUnixNano": now_ns, "endTimeUnixNano": end_ns,
            "status": {"code": 2},
            "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}},
                           {"key": "http.response.status_code", "value": {"intValue": "503"}}],
        }]}],
    }]});
    let r = reqwest::Client::new()
        .post(s.url("/v1/traces"))
        .json(&spans)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    s.flush().await;
    let (st, report) = s.compact().await;
    assert_eq!(st, 200, "{report}");
    for table in ["metrics", "logs", "spans", "metrics_5m", "metrics_1h", "metrics_1d"] {
        assert!(
            s.data_dir.join(table).is_dir(),
            "no {table}/ after flush and compaction: {report}"
        );
    }

    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/storage/README.md");
    let run = run_python("readme_sql.py", &[readme, s.data_dir.to_str().unwrap()]);
    assert!(run.success, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["errors"], json!([]), "{out}");
    let stmts = out["statements"].as_array().unwrap();
    // The two rollup queries, two metrics queries and three logs queries.
    assert!(stmts.len() >= 7, "{out}");
    for st in stmts {
        assert!(st["rows"].as_u64().unwrap() > 0, "returned no rows: {st}");
    }
}
