//! Hostile query text against the real server: the nesting shapes that used to overflow the
//! stack and abort the process (issue 16's measured crash depths) are each answered with a 400
//! naming the limit, and the process still ingests and answers afterwards.

use serde_json::Value;

use crate::harness::{TestServer, post_remote_write, remote_write_body, result};

const T0: i64 = 1_700_000_000_000;

fn nested(open: &str, n: usize, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// POSTs `query` as a form to `path`; the status and body.
async fn post_query(s: &TestServer, path: &str, query: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(s.url(path))
        .form(&[("query", query), ("time", &(T0 / 1000).to_string())])
        .send()
        .await
        .expect("query");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn deeply_nested_queries_are_refused_and_the_server_keeps_ingesting() {
    let s = TestServer::start().await;
    let promql = [
        ("abs at depth 898", nested("abs(", 898, "x", ")")),
        ("unary minus at depth 1328", nested("-(", 1328, "x", ")")),
        ("parentheses at depth 2656", nested("(", 2656, "x", ")")),
        ("2656 terms of x+", vec!["x"; 2656].join("+")),
    ];
    for (what, query) in &promql {
        let (status, body) = post_query(&s, "/api/v1/query", query).await;
        assert_eq!(status, 400, "{what}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(v["errorType"], "bad_data", "{what}: {body}");
        let message = v["error"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("query exceeds query.max_query_depth = "),
            "{what}: {message}"
        );
    }
    let range = r#"count_over_time({service_name="x"}[1m])"#;
    let logql = [
        ("sum at depth 1015", nested("sum(", 1015, range, ")")),
        ("parentheses at depth 1015", nested("(", 1015, range, ")")),
    ];
    for (what, query) in &logql {
        let (status, body) = post_query(&s, "/loki/api/v1/query", query).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body.starts_with("query exceeds query.logql.max_query_depth = "),
            "{what}: {body}"
        );
    }

    // A template that amplifies every line 10^6-fold fails naming its bound, before it is built.
    let push = serde_json::json!({"streams": [{
        "stream": {"cluster": "c", "service_name": "amp"},
        "values": [[(T0 * 1_000_000).to_string(), "a".repeat(100)]],
    }]});
    let r = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .json(&push)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    let grow = |from: &str, to: &str| {
        format!(
            r#"line_format "{{{{ replace \"{from}\" \"{}\" __line__ }}}}""#,
            to.repeat(1000)
        )
    };
    let amplify = format!(r#"{{service_name="amp"}} | {} | {}"#, grow("a", "x"), grow("x", "y"));
    let r = reqwest::Client::new()
        .get(s.url("/loki/api/v1/query_range"))
        .query(&[
            ("query", amplify.as_str()),
            ("start", &((T0 - 60_000) * 1_000_000).to_string()),
            ("end", &((T0 + 60_000) * 1_000_000).to_string()),
        ])
        .send()
        .await
        .expect("query_range");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("1048576 bytes"), "{body}");

    // Still alive, still ingesting, still answering.
    let body = remote_write_body(&[(vec![("__name__", "after_hostile"), ("cluster", "c")], vec![(T0, 42.0)])]);
    let (status, reason) = post_remote_write(&s.url("/api/v1/write"), body, &[]).await;
    assert_eq!(status, 204, "{reason}");
    let v = s.query("abs(after_hostile)", T0 as f64 / 1000.0).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert_eq!(result(&v)[0]["value"][1], "42");
}
