//! Loki 3's derived labels, end to end over the Loki push API with the default configuration:
//! streams pushed as `{app="foo"}` or `{job="bar"}` are found by `service_name`, and every line
//! gets a `detected_level` (structured metadata, from a `level` label or field, or the line) that
//! `sum by (detected_level)` groups by and `| detected_level="..."` filters on. With Grafana's
//! `X-Loki-Response-Encoding-Flags: categorize-labels`, answers keep stream labels, structured
//! metadata and parsed labels apart.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::TestServer;

const SEC: i64 = 1_000_000_000;

/// Pushes three streams of cluster `a` as one JSON body, the lines `dt` seconds after `t0`.
async fn push(s: &TestServer, t0: i64) {
    let ts = |dt: i64| (t0 + dt * SEC).to_string();
    let body = json!({"streams": [
        {"stream": {"cluster": "a", "app": "foo"}, "values": [
            [ts(1), "level=error msg=boom"],
            [ts(2), r#"{"level":"info","msg":"ok","user":"u1"}"#],
            [ts(3), "WARN: careful"],
        ]},
        {"stream": {"cluster": "a", "job": "bar"}, "values": [
            [ts(4), "plain line", {"level": "DBG", "user": "u2"}],
        ]},
        {"stream": {"cluster": "a", "service_name": "own", "level": "critical"}, "values": [
            [ts(5), "level=info but the label wins"],
        ]},
    ]});
    let r = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .expect("push");
    let status = r.status().as_u16();
    assert_eq!(status, 204, "push: {}", r.text().await.unwrap_or_default());
}

/// `query_range` over `t0 ± 1m`, with optional request headers; asserts 200.
async fn query_range(s: &TestServer, t0: i64, q: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = reqwest::Client::new().get(s.url("/loki/api/v1/query_range")).query(&[
        ("query", q.to_string()),
        ("start", (t0 - 60 * SEC).to_string()),
        ("end", (t0 + 60 * SEC).to_string()),
        ("step", "60".to_string()),
    ]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("query_range");
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, 200, "{q}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{q}: not JSON ({e}): {text}"))
}

/// A streams answer as (stream labels, line) pairs, sorted.
fn lines(q: &str, v: &Value) -> Vec<(BTreeMap<String, String>, String)> {
    assert_eq!(v["data"]["resultType"], "streams", "{q}: {v}");
    let mut out = Vec::new();
    for st in v["data"]["result"].as_array().expect("result") {
        let labels: BTreeMap<String, String> = serde_json::from_value(st["stream"].clone()).expect("labels");
        for e in st["values"].as_array().expect("values") {
            out.push((labels.clone(), e[1].as_str().expect("line").to_string()));
        }
    }
    out.sort();
    out
}

fn lbl(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn service_name_and_detected_level_are_derived_at_ingest() {
    let s = TestServer::start().await;
    let t0 = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        - 60)
        * SEC;
    push(&s, t0).await;

    // service_name from `app`, from `job`, or kept; detected_level beside the stream labels.
    let q = r#"{service_name="foo"}"#;
    let foo = |level: &str| {
        lbl(&[
            ("cluster", "a"),
            ("app", "foo"),
            ("service_name", "foo"),
            ("detected_level", level),
        ])
    };
    assert_eq!(
        lines(q, &query_range(&s, t0, q, &[]).await),
        vec![
            (foo("error"), "level=error msg=boom".to_string()),
            (foo("info"), r#"{"level":"info","msg":"ok","user":"u1"}"#.to_string()),
            (foo("warn"), "WARN: careful".to_string()),
        ]
    );
    let q = r#"{service_name="bar"}"#;
    assert_eq!(
        lines(q, &query_range(&s, t0, q, &[]).await),
        vec![(
            lbl(&[
                ("cluster", "a"),
                ("job", "bar"),
                ("service_name", "bar"),
                ("detected_level", "debug"),
                ("level", "DBG"),
                ("user", "u2")
            ]),
            "plain line".to_string()
        )]
    );

    // Grouping and filtering by the derived level.
    let q = r#"sum by (detected_level) (count_over_time({cluster="a"}[5m]))"#;
    let v = s
        .client()
        .get(s.url("/loki/api/v1/query"))
        .query(&[("query", q), ("time", &(t0 / SEC + 30).to_string())]);
    let v: Value = v.send().await.expect("query").json().await.expect("json");
    let mut got: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: {v}"))
        .iter()
        .map(|r| {
            (
                r["metric"]["detected_level"].as_str().unwrap_or("").to_string(),
                r["value"][1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = ["critical", "debug", "error", "info", "warn"]
        .iter()
        .map(|l| (l.to_string(), "1".to_string()))
        .collect();
    assert_eq!(got, want, "{q}: {v}");

    let q = r#"{cluster="a"} | detected_level="error""#;
    let got: Vec<String> = lines(q, &query_range(&s, t0, q, &[]).await)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(got, ["level=error msg=boom"], "{q}");

    // Grafana's header: the stream is the stream, the rest beside each line.
    let categorize = [("X-Loki-Response-Encoding-Flags", "categorize-labels")];
    let q = r#"{service_name="foo"} |= "user" | json"#;
    let v = query_range(&s, t0, q, &categorize).await;
    assert_eq!(v["data"]["encodingFlags"], json!(["categorize-labels"]), "{v}");
    assert_eq!(
        v["data"]["result"],
        json!([{
            "stream": {"cluster": "a", "app": "foo", "service_name": "foo"},
            "values": [[(t0 + 2 * SEC).to_string(), r#"{"level":"info","msg":"ok","user":"u1"}"#, {
                "structuredMetadata": {"detected_level": "info"},
                "parsed": {"level": "info", "msg": "ok", "user": "u1"},
            }]],
        }]),
        "{q}"
    );
    let q = r#"{service_name="bar"}"#;
    let v = query_range(&s, t0, q, &categorize).await;
    assert_eq!(
        v["data"]["result"],
        json!([{
            "stream": {"cluster": "a", "job": "bar", "service_name": "bar"},
            "values": [[(t0 + 4 * SEC).to_string(), "plain line", {
                "structuredMetadata": {"detected_level": "debug", "level": "DBG", "user": "u2"},
            }]],
        }]),
        "{q}"
    );
}
