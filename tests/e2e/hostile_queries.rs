//! Hostile queries against one real server loaded with a modest dataset (300 series, 1,000 log
//! lines): the nesting shapes that used to overflow the stack and abort the process (issue 16's
//! measured crash depths), catastrophic and huge regexes, 1-second steps over 30 days,
//! thousands of `match[]`, huge and amplifying templates, huge `topk`/`quantile`/`limit`
//! parameters and over-long query texts are each answered with a clear 4xx naming the reason
//! (or a correct, bounded answer) within the query timeout, TraceQL's included; the process stays alive with its
//! peak RSS under [`PEAK_RSS_BOUND`], and still ingests and answers afterwards.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestServer, peak_rss_bytes, post_remote_write, remote_write_body, result, write_file};

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

/// The server's query timeout (both languages): every hostile query answers within it (plus
/// [`SLACK`]).
const TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(5);
/// The server's peak resident memory after every hostile query.
const PEAK_RSS_BOUND: u64 = 1 << 30;
const SERIES: usize = 300;
/// The server's `query.max_samples`: the dataset's 300 series seen at every second of their hour
/// (1.08 million points) pass it, one of them does not.
const MAX_SAMPLES: usize = 1_000_000;

#[tokio::test]
async fn hostile_queries_are_refused_or_bounded_and_the_server_keeps_ingesting() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "[query]\ntimeout = \"{0}s\"\nmax_samples = {1}\n[query.logql]\ntimeout = \"{0}s\"\n",
        TIMEOUT.as_secs(),
        MAX_SAMPLES
    );
    let cfg = write_file(dir.path(), "hostile.toml", &cfg);
    let s = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    load(&s).await;
    let began = Instant::now();
    deeply_nested_queries_are_refused(&s).await;
    regexes_are_linear_and_bounded(&s).await;
    one_second_steps_over_30_days_fail_early(&s).await;
    thousands_of_match_params_answer_within_the_timeout(&s).await;
    templates_are_bounded(&s).await;
    huge_parameters_answer_correctly(&s).await;
    over_long_query_texts_are_refused(&s).await;
    let took = began.elapsed();

    let pid = s.pid().expect("running");
    let peak = peak_rss_bytes(pid);
    eprintln!("hostile queries: {took:?}, server peak RSS {} MiB", peak >> 20);
    assert!(peak < PEAK_RSS_BOUND, "peak RSS {} MiB", peak >> 20);

    // Still alive, still ingesting (both receivers), still answering correctly.
    let body = remote_write_body(&[(vec![("__name__", "after_hostile"), ("cluster", "c")], vec![(T0, 42.0)])]);
    let (status, reason) = post_remote_write(&s.url("/api/v1/write"), body, &[]).await;
    assert_eq!(status, 204, "{reason}");
    push_lines(&s, "after", 1).await;
    let v = s.query("abs(after_hostile)", T0 as f64 / 1000.0).await;
    assert_eq!(result(&v)[0]["value"][1], "42", "{v}");
    let v = s.query("sum(hostile_m)", T0 as f64 / 1000.0).await;
    assert_eq!(
        result(&v)[0]["value"][1],
        (SERIES * (SERIES - 1) / 2).to_string(),
        "{v}"
    );
    let (status, body) = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("query", r#"sum(count_over_time({service_name=~"amp|after"}[1h]))"#),
            ("time", &t0_ns()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1001", "{v}");
}

/// `SERIES` series `hostile_m{i="<n>"}` of value n, every 15 s over the hour before `T0`, and
/// 1,000 log lines of 100 `a`s.
async fn load(s: &TestServer) {
    let values: Vec<String> = (0..SERIES).map(|i| i.to_string()).collect();
    for chunk in values.chunks(50) {
        let series: Vec<_> = chunk
            .iter()
            .map(|i| {
                let v: f64 = i.parse().unwrap();
                let samples = (0..240).map(|k| (T0 - 3_600_000 + (k + 1) * 15_000, v)).collect();
                (
                    vec![("__name__", "hostile_m"), ("cluster", "c"), ("i", i.as_str())],
                    samples,
                )
            })
            .collect();
        let (status, reason) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
        assert_eq!(status, 204, "{reason}");
    }
    push_lines(s, "amp", 1000).await;
}

/// Pushes `n` lines of 100 `a`s, one millisecond apart before `T0`, to stream `service`.
async fn push_lines(s: &TestServer, service: &str, n: i64) {
    let values: Vec<_> = (0..n)
        .map(|k| serde_json::json!([((T0 - k) * 1_000_000).to_string(), "a".repeat(100)]))
        .collect();
    let push =
        serde_json::json!({"streams": [{"stream": {"cluster": "c", "service_name": service}, "values": values}]});
    let r = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .json(&push)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
}

fn t0_ns() -> String {
    (T0 * 1_000_000).to_string()
}

/// GETs `path` with `params`; the status and body, after checking it came within the timeout.
async fn get(s: &TestServer, path: &str, params: &[(&str, &str)]) -> (u16, String) {
    let began = Instant::now();
    let r = reqwest::Client::new()
        .get(s.url(path))
        .query(params)
        .send()
        .await
        .expect("get");
    let answer = (r.status().as_u16(), r.text().await.unwrap_or_default());
    assert!(began.elapsed() < TIMEOUT + SLACK, "{path} took {:?}", began.elapsed());
    answer
}

/// POSTs `params` as a form to `path`; as [`get`].
async fn post(s: &TestServer, path: &str, params: &[(&str, &str)]) -> (u16, String) {
    let began = Instant::now();
    let r = reqwest::Client::new()
        .post(s.url(path))
        .form(params)
        .send()
        .await
        .expect("post");
    let answer = (r.status().as_u16(), r.text().await.unwrap_or_default());
    assert!(began.elapsed() < TIMEOUT + SLACK, "{path} took {:?}", began.elapsed());
    answer
}

/// `GET target` written on a connection of its own; the status and body.
async fn raw_get(s: &TestServer, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let began = Instant::now();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .expect("connect");
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    assert!(began.elapsed() < TIMEOUT + SLACK, "GET took {:?}", began.elapsed());
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// A Prometheus API success's `data.result` (or `data`).
fn ok(what: &str, (status, body): (u16, String)) -> Value {
    assert_eq!(status, 200, "{what}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    if v["data"]["result"].is_array() {
        v["data"]["result"].clone()
    } else {
        v["data"].clone()
    }
}

/// A refusal with `status` whose body names `reason`.
fn refused(what: &str, (status, body): (u16, String), expected: u16, reason: &str) {
    assert_eq!(status, expected, "{what}: {body}");
    assert!(body.contains(reason), "{what}: expected {reason:?} in {body}");
}

fn instant(q: &str) -> Vec<(&str, String)> {
    vec![("query", q.to_string()), ("time", (T0 / 1000).to_string())]
}

fn pairs<'a>(p: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Rust's regex engine has no backtracking: "catastrophic" patterns run in linear time and
/// answer correctly; a pattern whose compiled program is too big is refused naming it.
async fn regexes_are_linear_and_bounded(s: &TestServer) {
    let q = instant(r#"{__name__=~"(a+)+$"}"#);
    assert_eq!(
        ok("(a+)+$", post(s, "/api/v1/query", &pairs(&q)).await)
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let q = instant(r#"hostile_m{i=~"(0|00)+$"}"#);
    assert_eq!(
        ok("(0|00)+$", post(s, "/api/v1/query", &pairs(&q)).await)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let alternation: Vec<String> = (1..20_000).map(|i| i.to_string()).collect();
    let huge = format!(r#"hostile_m{{i=~"{}"}}"#, alternation.join("|"));
    let q = instant(&huge);
    let found = ok("20,000 alternatives", post(s, "/api/v1/query", &pairs(&q)).await);
    assert_eq!(found.as_array().unwrap().len(), SERIES - 1);
    let found = ok(
        "series with 20,000 alternatives",
        post(s, "/api/v1/series", &[("match[]", huge.as_str())]).await,
    );
    assert_eq!(found.as_array().unwrap().len(), SERIES - 1);
    let found = ok(
        "series (a+)+$",
        get(s, "/api/v1/series", &[("match[]", r#"{__name__=~"(a+)+$"}"#)]).await,
    );
    assert_eq!(found.as_array().unwrap().len(), 0);
    let q = instant(r#"{__name__=~"((a{1000}){1000}){1000}"}"#);
    let (status, body) = post(s, "/api/v1/query", &pairs(&q)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("regex"), "{body}");

    let range = |q: &str| {
        vec![
            ("query", q.to_string()),
            ("start", ((T0 - 3_600_000) * 1_000_000).to_string()),
            ("end", ((T0 + 1) * 1_000_000).to_string()),
            ("limit", "5000".into()),
        ]
    };
    let q = range(r#"{service_name="amp"} |~ "(a+)+$""#);
    let (status, body) = get(s, "/loki/api/v1/query_range", &pairs(&q)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["result"][0]["values"].as_array().unwrap().len(),
        1000,
        "every line is a+"
    );
    let q = range(r#"{service_name="amp"} |~ "((a{1000}){1000}){1000}""#);
    let (status, body) = get(s, "/loki/api/v1/query_range", &pairs(&q)).await;
    assert_eq!(status, 400, "{body}");
}

/// `m[30d:1s]` and 1-second steps over 30 days fail at Prometheus's bounds before their points
/// are built, or, within them, answer correctly.
async fn one_second_steps_over_30_days_fail_early(s: &TestServer) {
    for q in [
        "count_over_time(hostile_m[30d:1s])",
        "count_over_time(vector(1)[30d:1s])",
    ] {
        refused(
            q,
            post(s, "/api/v1/query", &pairs(&instant(q))).await,
            422,
            "query processing would load too many samples into memory",
        );
    }
    // One series: every second from its first sample (T0 - 3585 s) to T0 sees one.
    let q = instant(r#"count_over_time(hostile_m{i="7"}[30d:1s])"#);
    let found = ok("one series [30d:1s]", post(s, "/api/v1/query", &pairs(&q)).await);
    assert_eq!(found[0]["value"][1], "3586", "{found}");
    let month = [
        ("query", "hostile_m".to_string()),
        ("start", (T0 / 1000 - 30 * 86_400).to_string()),
        ("end", (T0 / 1000).to_string()),
        ("step", "1".into()),
    ];
    refused(
        "query_range 30d step 1s",
        get(s, "/api/v1/query_range", &pairs(&month)).await,
        400,
        "exceeded maximum resolution of 11,000 points per timeseries",
    );
    let loki_month = [
        ("query", r#"count_over_time({service_name="amp"}[1m])"#.to_string()),
        ("start", ((T0 - 30 * 86_400_000) * 1_000_000).to_string()),
        ("end", t0_ns()),
        ("step", "1s".into()),
    ];
    refused(
        "loki query_range 30d step 1s",
        get(s, "/loki/api/v1/query_range", &pairs(&loki_month)).await,
        400,
        "exceeded maximum resolution of 11,000 points per timeseries",
    );
}

/// 5,000 `match[]` on the series and label listings answer correctly, within the timeout.
async fn thousands_of_match_params_answer_within_the_timeout(s: &TestServer) {
    let matchers: Vec<String> = (0..5000).map(|i| format!(r#"hostile_m{{i="{i}"}}"#)).collect();
    let params: Vec<(&str, &str)> = matchers.iter().map(|m| ("match[]", m.as_str())).collect();
    let found = ok("series with 5,000 match[]", post(s, "/api/v1/series", &params).await);
    assert_eq!(found.as_array().unwrap().len(), SERIES);
    let names = ok("labels with 5,000 match[]", post(s, "/api/v1/labels", &params).await);
    assert_eq!(names, serde_json::json!(["__name__", "cluster", "i"]));
    let loki: Vec<String> = (0..5000).map(|i| format!(r#"{{service_name="s{i}"}}"#)).collect();
    let params: Vec<(&str, &str)> = loki.iter().map(|m| ("match[]", m.as_str())).collect();
    let (status, body) = post(s, "/loki/api/v1/series", &params).await;
    assert!(status == 200 || status == 504, "{status}: {body}");
}

/// A template longer than the query bound is refused before it is parsed; templates that
/// amplify lines, one line or many, fail naming their bound instead of building gigabytes.
async fn templates_are_bounded(s: &TestServer) {
    let range = |q: String| {
        vec![
            ("query", q),
            ("start", ((T0 - 3_600_000) * 1_000_000).to_string()),
            ("end", ((T0 + 1) * 1_000_000).to_string()),
            ("limit", "5000".into()),
        ]
    };
    let huge = range(format!(
        r#"{{service_name="amp"}} | line_format "{}""#,
        "x".repeat(1 << 20)
    ));
    refused(
        "1 MiB line_format",
        post(s, "/loki/api/v1/query_range", &pairs(&huge)).await,
        400,
        "query.logql.max_query_bytes",
    );
    let grow = |stage: &str, from: &str, to: &str, n: usize| {
        format!(
            r#"{stage} "{{{{ replace \"{from}\" \"{}\" __line__ }}}}""#,
            to.repeat(n)
        )
    };
    let label_grow = |from: &str, to: &str| {
        format!(
            r#"label_format big="{{{{ replace \"{from}\" \"{}\" .big }}}}""#,
            to.repeat(1000)
        )
    };
    let amplify = range(format!(
        r#"{{service_name="amp"}} | label_format big="{{{{ __line__ }}}}" | {} | {}"#,
        label_grow("a", "x"),
        label_grow("x", "y")
    ));
    refused(
        "label_format amplifying 10^6-fold",
        get(s, "/loki/api/v1/query_range", &pairs(&amplify)).await,
        400,
        "1048576 bytes",
    );
    // Each line grows to 200 KB, under the per-line bound: 1,000 of them would be 200 MB.
    let wide = range(format!(
        r#"{{service_name="amp"}} | {}"#,
        grow("line_format", "a", "x", 2000)
    ));
    let (status, body) = get(s, "/loki/api/v1/query_range", &pairs(&wide)).await;
    assert_eq!(status, 400, "{} bytes: {}", body.len(), &body[..body.len().min(300)]);
    assert!(body.contains("query.logql.max_response_bytes"), "{body}");
}

/// `topk(1e12, m)` (and `limitk`) is every series, not none; `quantile(1e12, m)` is +Inf with
/// Prometheus's warning; `limit=1e12` on a listing is no cut.
async fn huge_parameters_answer_correctly(s: &TestServer) {
    for q in [
        "topk(1e12, hostile_m)",
        "bottomk(1e12, hostile_m)",
        "limitk(1e12, hostile_m)",
    ] {
        let found = ok(q, post(s, "/api/v1/query", &pairs(&instant(q))).await);
        assert_eq!(found.as_array().unwrap().len(), SERIES, "{q}");
    }
    let found = ok(
        "count(topk(1e12, hostile_m))",
        post(s, "/api/v1/query", &pairs(&instant("count(topk(1e12, hostile_m))"))).await,
    );
    assert_eq!(found[0]["value"][1], SERIES.to_string());
    let (status, body) = post(s, "/api/v1/query", &pairs(&instant("quantile(1e12, hostile_m)"))).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "+Inf", "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("quantile value should be between 0 and 1"),
        "{v}"
    );
    let found = ok(
        "series limit=1e12",
        get(
            s,
            "/api/v1/series",
            &[("match[]", "hostile_m"), ("limit", "1000000000000")],
        )
        .await,
    );
    assert_eq!(found.as_array().unwrap().len(), SERIES);
    let found = ok(
        "label values limit=1e12",
        get(s, "/api/v1/label/i/values", &[("limit", "1000000000000")]).await,
    );
    assert_eq!(found.as_array().unwrap().len(), SERIES);
    let (status, body) = get(s, "/api/v1/series", &[("match[]", "hostile_m"), ("limit", "1e12")]).await;
    assert!(status == 200 || status == 400, "{status}: {body}");
    if status == 400 {
        assert!(body.contains("limit"), "{body}");
    }
}

/// A query text over the size bound is refused, by GET or POST, before it is parsed.
async fn over_long_query_texts_are_refused(s: &TestServer) {
    let long = format!("hostile_m{}", " + hostile_m".repeat(30_000));
    let q = instant(&long);
    refused(
        "long query by POST",
        post(s, "/api/v1/query", &pairs(&q)).await,
        400,
        "query.max_query_bytes",
    );
    // HTTP clients refuse URLs this long (reqwest stops at 64 KiB): written by hand.
    let url = reqwest::Url::parse_with_params(&s.url("/api/v1/query"), pairs(&q)).expect("url");
    let target = format!("/api/v1/query?{}", url.query().unwrap_or_default());
    let (status, body) = raw_get(s, &target).await;
    assert!((400..500).contains(&status), "{status}: {body}");
    if status == 400 {
        assert!(body.contains("query.max_query_bytes"), "{body}");
    }
    let logql = format!(r#"{{service_name="amp"}} |= "{}""#, "a".repeat(300_000));
    let q = instant(&logql);
    refused(
        "long LogQL by POST",
        post(s, "/loki/api/v1/query", &pairs(&q)).await,
        400,
        "query.logql.max_query_bytes",
    );
}

async fn deeply_nested_queries_are_refused(s: &TestServer) {
    let promql = [
        ("abs at depth 898", nested("abs(", 898, "x", ")")),
        ("unary minus at depth 1328", nested("-(", 1328, "x", ")")),
        ("parentheses at depth 2656", nested("(", 2656, "x", ")")),
        ("2656 terms of x+", vec!["x"; 2656].join("+")),
    ];
    for (what, query) in &promql {
        let (status, body) = post_query(s, "/api/v1/query", query).await;
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
        let (status, body) = post_query(s, "/loki/api/v1/query", query).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert!(
            body.starts_with("query exceeds query.logql.max_query_depth = "),
            "{what}: {body}"
        );
    }
    // TraceQL (Tempo's search; a URL holds at most 64 KiB): nesting is refused before parsing
    // (5,000 levels overflowed the stack before), a long flat chain is answered.
    let (status, body) = get(
        s,
        "/api/search",
        &[("q", &format!("{{ {} }}", nested("(", 5_000, "name = \"x\"", ")")))],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("query exceeds query.traces.max_query_depth = "), "{body}");
    let chain = vec![r#"name != "x""#; 1_500].join(" && ");
    let (status, body) = get(s, "/api/search", &[("q", &format!("{{ {chain} }}"))]).await;
    assert_eq!(status, 200, "{body}");

    // A template that amplifies every line 10^6-fold fails naming its bound, before it is built.
    let push = serde_json::json!({"streams": [{
        "stream": {"cluster": "c", "service_name": "amp1"},
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
    let amplify = format!(r#"{{service_name="amp1"}} | {} | {}"#, grow("a", "x"), grow("x", "y"));
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
}
