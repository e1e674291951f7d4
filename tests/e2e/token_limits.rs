//! Query limits per token against the real server: the same query is answered for an unlimited
//! token and refused, naming the token and its limit, for a limited one; a token at its
//! concurrency limit gets a 429 while another token is served; refusals show on `/metrics` by
//! token name and limit.

use serde_json::Value;

use crate::harness::{TestServer, post_remote_write, remote_write_body, write_file};

const T0: i64 = 1_700_000_000_000;

fn config(dir: &std::path::Path) -> String {
    let text = r#"
[auth]
required = true

[[auth.tokens]]
token = "free-token"
write = "c"
read = ["*"]

[[auth.tokens]]
token = "tight-token"
name = "dashboards"
read = ["*"]
max_samples = 1000
max_series = 5
query_timeout = "1s"

[[auth.tokens]]
token = "single-token"
name = "one-at-a-time"
read = ["*"]
max_concurrent_queries = 1
"#;
    write_file(dir, "tributary.toml", text).to_string_lossy().into_owned()
}

async fn get(s: &TestServer, path: &str, params: &[(&str, &str)], token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(s.url(path))
        .query(params)
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn a_limited_token_is_refused_what_an_unlimited_one_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(&["--config", &config(dir.path())]).await;
    let series: Vec<(String, Vec<(i64, f64)>)> = (0..10)
        .map(|i| {
            (
                i.to_string(),
                (0..60).map(|k| (T0 - 3_600_000 + (k + 1) * 60_000, 1.0)).collect(),
            )
        })
        .collect();
    let body = remote_write_body(
        &series
            .iter()
            .map(|(i, samples)| (vec![("__name__", "tl_m"), ("i", i.as_str())], samples.clone()))
            .collect::<Vec<_>>(),
    );
    let auth = [("Authorization", "Bearer free-token")];
    let (status, reason) = post_remote_write(&s.url("/api/v1/write"), body, &auth).await;
    assert_eq!(status, 204, "{reason}");

    let time = (T0 / 1000).to_string();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 3] = [
        (
            "/api/v1/query",
            vec![("query", "tl_m"), ("time", &time)],
            "max_series = 5",
        ),
        ("/api/v1/series", vec![("match[]", "tl_m")], "max_series = 5"),
        (
            "/api/v1/query",
            vec![("query", "count_over_time(tl_m[1h:1s])"), ("time", &time)],
            "max_samples = 1000",
        ),
    ];
    for (path, params, limit) in &cases {
        let (status, v) = get(&s, path, params, "free-token").await;
        assert_eq!(status, 200, "{path} {params:?}: {v}");
        let data = if v["data"]["result"].is_array() {
            &v["data"]["result"]
        } else {
            &v["data"]
        };
        assert_eq!(data.as_array().unwrap().len(), 10, "{v}");
        let (status, v) = get(&s, path, params, "tight-token").await;
        assert_eq!(status, 422, "{path} {params:?}: {v}");
        assert_eq!(v["errorType"], "execution", "{v}");
        let message = v["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(r#"token "dashboards""#) && message.contains(limit),
            "{message}"
        );
    }
    // Within its bounds the limited token is answered.
    let (status, v) = get(
        &s,
        "/api/v1/query",
        &[("query", "count(tl_m)"), ("time", &time)],
        "tight-token",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "10");

    // A token at its concurrency limit: a query running (a heavy one, bounded by its own
    // `timeout`) holds the one permit; the next is refused with 429, another token is served.
    // How long the heavy query runs depends on the machine and its load: it is sent again
    // until a probe lands while it runs (a probe before it holds the permit, or after it ended,
    // is simply answered).
    let send_heavy = || {
        let url = s.url("/api/v1/query");
        let time = time.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .query(&[
                    ("query", "count_over_time(tl_m[30d:1ms])"),
                    ("time", time.as_str()),
                    ("timeout", "5s"),
                ])
                .bearer_auth("single-token")
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let started = std::time::Instant::now();
    let mut heavy = send_heavy();
    let refused = loop {
        let (status, v) = get(&s, "/api/v1/labels", &[], "single-token").await;
        if status == 429 {
            break v;
        }
        assert_eq!(status, 200, "{v}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no 429 while a heavy query of the same token ran"
        );
        if heavy.is_finished() {
            let status = heavy.await.unwrap().expect("heavy query");
            // 429: a probe held the permit when it arrived.
            assert!(matches!(status, 200 | 422 | 429 | 503), "heavy query answered {status}");
            heavy = send_heavy();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(refused["errorType"], "too_many_requests", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_concurrent_queries = 1"),
        "{refused}"
    );
    let (status, _) = get(&s, "/api/v1/labels", &[], "free-token").await;
    assert_eq!(status, 200);
    // Its own answer depends on the machine's speed (done within its 5 s, or timed out): only
    // that it ran while the 429 was answered matters here.
    let heavy_status = heavy.await.unwrap().expect("heavy query");
    assert!(
        matches!(heavy_status, 200 | 422 | 503),
        "heavy query answered {heavy_status}"
    );
    let (status, _) = get(&s, "/api/v1/labels", &[], "single-token").await;
    assert_eq!(status, 200, "the permit is back once the heavy query ended");

    let metrics = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    for (token, limit) in [
        ("dashboards", "max_series"),
        ("dashboards", "max_samples"),
        ("one-at-a-time", "max_concurrent_queries"),
    ] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("tributary_query_token_refusals_total")
                    && l.contains(&format!(r#"token="{token}""#))
                    && l.contains(&format!(r#"limit="{limit}""#))
            })
            .unwrap_or_else(|| panic!("no refusal counter for {token}/{limit}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
    assert!(
        !metrics.contains("tight-token") && !metrics.contains("single-token"),
        "no token on /metrics"
    );
}
