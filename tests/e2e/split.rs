//! A split deployment on loopback over a real S3 API (moto): two ingesters, two queriers
//! reading both heads (`--ingesters`), one compactor. The same writes go to an all-in-one
//! server; the queriers must answer the same numbers before and after flush and compaction.
//! Then an ingester is killed with SIGKILL: the queriers answer with a warning naming it, and
//! once it restarts (replaying its WAL) with everything it acknowledged. A querier restarted
//! serves again at once: it holds no state but caches.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{S3Server, TestServer, eventually, post_remote_write, remote_write_body, run_python, write_file};

const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;

/// Counters of three clusters, written to ingester `a` (east, west) or `b` (north).
fn body(cluster: &str, first: i64, n: i64) -> Vec<u8> {
    let series: Vec<_> = ["200", "500"]
        .iter()
        .map(|code| {
            let k = if *code == "200" { 10.0 } else { 1.0 };
            (
                vec![
                    ("__name__", "split_requests_total"),
                    ("cluster", cluster),
                    ("code", *code),
                ],
                (first..first + n)
                    .map(|i| (T0 + i * STEP, i as f64 * k))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    remote_write_body(&series)
}

/// The queries compared, each at one instant and over a range.
const QUERIES: &[&str] = &[
    "sum by (cluster) (rate(split_requests_total[2m]))",
    "count(split_requests_total)",
    "max_over_time(split_requests_total{code=\"500\"}[5m])",
    "split_requests_total",
];

async fn get(base: &TestServer, path: &str, params: &[(&str, String)]) -> Value {
    let r = reqwest::Client::new()
        .get(base.url(path))
        .query(params)
        .send()
        .await
        .expect("query");
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path} {params:?}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Every answer the comparison looks at (results sorted, warnings kept apart).
async fn answers(s: &TestServer, until: i64) -> (Vec<Value>, Vec<String>) {
    let (start, end) = (T0 as f64 / 1000.0, (T0 + until * STEP) as f64 / 1000.0);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for q in QUERIES {
        for v in [
            get(
                s,
                "/api/v1/query",
                &[("query", q.to_string()), ("time", end.to_string())],
            )
            .await,
            get(
                s,
                "/api/v1/query_range",
                &[
                    ("query", q.to_string()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", "60".into()),
                ],
            )
            .await,
        ] {
            warnings.extend(v["warnings"].as_array().into_iter().flatten().map(|w| w.to_string()));
            let mut result = v["data"]["result"].as_array().cloned().unwrap_or_default();
            result.sort_by_key(|r| r["metric"].to_string());
            out.push(Value::Array(result));
        }
    }
    let series = get(
        s,
        "/api/v1/series",
        &[
            ("match[]", "split_requests_total".into()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ],
    )
    .await;
    let mut sets = series["data"].as_array().cloned().unwrap_or_default();
    sets.sort_by_key(|v| v.to_string());
    out.push(Value::Array(sets));
    (out, warnings)
}

fn start_args<'a>(role: &'a str, cfg: &'a str) -> Vec<&'a str> {
    vec!["--role", role, "--storage", "s3://split/fleet", "--config", cfg]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_deployment_answers_like_all_in_one_through_flush_compaction_and_a_crash() {
    let s3 = S3Server::start("split").await;
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    // Queriers see commits within a second; ingesters keep flushed data readable past that.
    let cfg = write_file(
        dir.path(),
        "split.toml",
        "[storage]\nrefresh_interval = \"1s\"\n[ingest.head]\nkeep_flushed = \"5s\"\n",
    );
    let cfg = cfg.to_str().unwrap();

    let mut ing_a = TestServer::start_with_env(&start_args("ingest", cfg), &env).await;
    let ing_b = TestServer::start_with_env(&start_args("ingest", cfg), &env).await;
    let ingesters = format!("http://127.0.0.1:{},http://127.0.0.1:{}", ing_a.port, ing_b.port);
    let mut querier_args = start_args("query", cfg);
    querier_args.extend(["--ingesters", ingesters.as_str()]);
    let q1 = TestServer::start_with_env(&querier_args, &env).await;
    let mut q2 = TestServer::start_with_env(&querier_args, &env).await;
    let compactor = TestServer::start_with_env(&start_args("compactor", cfg), &env).await;
    let all_in_one = TestServer::start().await;

    // Freshness: acknowledged by an ingester, then at once visible through a querier.
    for (ingester, cluster) in [(&ing_a, "east"), (&ing_a, "west"), (&ing_b, "north")] {
        for target in [ingester, &all_in_one] {
            let (status, text) = post_remote_write(&target.url("/api/v1/write"), body(cluster, 0, 20), &[]).await;
            assert_eq!(status, 204, "{text}");
        }
    }
    let acked = Instant::now();
    let reference = answers(&all_in_one, 20).await.0;
    let (fresh, warnings) = answers(&q1, 20).await;
    let visible_after = acked.elapsed();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(fresh, reference, "querier 1 before any flush");
    assert_eq!(answers(&q2, 20).await.0, reference, "querier 2 before any flush");
    eprintln!("acknowledged -> answered by a querier (all queries): {visible_after:?}");

    // Logs through the OpenTelemetry SDK into ingester B: visible through both queriers.
    let t_logs = T0 * 1_000_000;
    let run = run_python(
        "otlp_client.py",
        &[
            "--protocol",
            "http/protobuf",
            "--endpoint",
            &ing_b.otlp_url(""),
            "--cluster",
            "prod-otel",
            "--signals",
            "logs",
            "--log-time-ns",
            &t_logs.to_string(),
        ],
    );
    assert!(run.success, "OTLP export: {}\n{}", run.stdout, run.stderr);
    let sent = run.json()["logs"]["records"].as_array().map_or(0, Vec::len);
    assert!(sent > 0, "the SDK sent no log records: {}", run.stdout);
    for q in [&q1, &q2] {
        let v = get(
            q,
            "/loki/api/v1/query_range",
            &[
                ("query", "{cluster=\"prod-otel\"}".into()),
                ("start", (t_logs - 60_000_000_000).to_string()),
                ("end", (t_logs + 600_000_000_000).to_string()),
                ("limit", "1000".into()),
            ],
        )
        .await;
        let lines: usize = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["values"].as_array().unwrap().len())
            .sum();
        assert_eq!(lines, sent, "{v}");
    }

    // A trace through the SDK into ingester A: found by id through a querier before any flush.
    let run = run_python(
        "trace_client.py",
        &[
            "--protocol",
            "grpc",
            "--endpoint",
            &ing_a.grpc_endpoint(),
            "--cluster",
            "prod-otel",
        ],
    );
    assert!(run.success, "OTLP traces: {}\n{}", run.stdout, run.stderr);
    let trace = run.json()["trace_id"].as_str().unwrap().to_string();
    let v = get(&q2, &format!("/api/traces/{trace}"), &[]).await;
    let spans: usize = v["batches"][0]["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len);
    assert_eq!(spans, 3, "{v}");

    // A live tail through a querier sees lines pushed to either ingester, each once.
    let t = crate::loki_tail::now_ns();
    let url = format!(
        "ws://127.0.0.1:{}/loki/api/v1/tail?query={}&start={}",
        q1.port,
        crate::harness::urlencode(r#"{cluster="tail-1"}"#),
        t - 60_000_000_000
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket upgrade");
    crate::loki_tail::push(&ing_a, t, "from-a", "line via ingester a").await;
    crate::loki_tail::push(&ing_b, t + 1, "from-b", "line via ingester b").await;
    let mut tailed = crate::loki_tail::read_lines(&mut ws, 2).await;
    tailed.sort();
    assert_eq!(
        tailed,
        vec![
            (t, "from-a".to_string(), "line via ingester a".to_string()),
            (t + 1, "from-b".to_string(), "line via ingester b".to_string())
        ]
    );
    drop(ws);

    // Flush both ingesters and compact: the same answers, now from Parquet on S3.
    ing_a.flush().await;
    ing_b.flush().await;
    let (status, report) = compactor.compact().await;
    assert_eq!(status, 200, "{report}");
    for q in [&q1, &q2] {
        assert_eq!(answers(q, 20).await.0, reference, "after flush and compaction");
    }
    // Past keep_flushed and a manifest refresh, the data comes from Parquet alone.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(answers(&q1, 20).await.0, reference, "from Parquet alone");

    // More writes, then ingester A dies before flushing them.
    for cluster in ["east", "west"] {
        for target in [&ing_a, &all_in_one] {
            let (status, text) = post_remote_write(&target.url("/api/v1/write"), body(cluster, 20, 20), &[]).await;
            assert_eq!(status, 204, "{text}");
        }
    }
    let reference = answers(&all_in_one, 40).await.0;
    ing_a.kill9();
    let (partial, warnings) = answers(&q1, 40).await;
    assert_ne!(partial, reference, "A's unflushed samples cannot be there");
    let a_url = format!("127.0.0.1:{}", ing_a.port);
    assert!(
        !warnings.is_empty() && warnings.iter().all(|w| w.contains(&a_url)),
        "every answer names the missing ingester: {warnings:?}"
    );
    let v = get(&q2, "/loki/api/v1/labels", &[]).await;
    assert!(
        v["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().unwrap_or("").contains(&a_url))),
        "Loki answers carry the warning too: {v}"
    );

    // A comes back on the same address, replays its WAL: nothing it acknowledged is lost.
    ing_a.respawn_on_same_port().await;
    let (back, warnings) = answers(&q1, 40).await;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(back, reference, "after ingester A's restart");

    // A querier restart: serving again within seconds, the same answers.
    q2.stop();
    let restarted = Instant::now();
    q2.spawn().await;
    eventually(Duration::from_secs(20), "the restarted querier to answer", || async {
        (answers(&q2, 40).await.0 == reference).then_some(())
    })
    .await;
    eprintln!("querier restart -> same answers: {:?}", restarted.elapsed());
}

/// With tokens required, an ingester's internal read API answers only a token that may read
/// every cluster; a querier holding one reads the head, a querier holding a narrower one
/// answers from the object store with a warning naming the ingester it could not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_read_api_needs_a_token_that_reads_every_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("store").display());
    let cfg = write_file(
        dir.path(),
        "auth.toml",
        r#"
[auth]
required = true
[[auth.tokens]]
token = "writer-token"
write = "east"
[[auth.tokens]]
token = "fleet-token"
name = "querier"
read = ["*"]
[[auth.tokens]]
token = "east-token"
name = "east-reader"
read = ["east"]
"#,
    );
    let cfg = cfg.to_str().unwrap();
    let ingester = TestServer::start_with(&["--role", "ingest", "--storage", &storage, "--config", cfg]).await;
    let (status, text) = post_remote_write(
        &ingester.url("/api/v1/write"),
        body("east", 0, 4),
        &[("Authorization", "Bearer writer-token")],
    )
    .await;
    assert_eq!(status, 204, "{text}");

    let call = r#"{"method":"label_names","matchers":[],"start":0,"end":9223372036854775807}"#;
    for (token, want) in [
        (None, 401),
        (Some("wrong"), 401),
        (Some("east-token"), 403),
        (Some("fleet-token"), 200),
    ] {
        let mut r = reqwest::Client::new()
            .post(ingester.url("/internal/v1/read"))
            .body(call);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            want,
            "token {token:?}: {}",
            r.text().await.unwrap()
        );
    }

    let end = (T0 + 3 * STEP) as f64 / 1000.0;
    for (token, sees_head) in [("fleet-token", true), ("east-token", false)] {
        let token_file = write_file(dir.path(), &format!("{token}.txt"), &format!("{token}\n"));
        let querier_cfg = write_file(
            dir.path(),
            &format!("{token}.toml"),
            &format!(
                "{}\n[query]\ningester_token_file = {:?}\n",
                std::fs::read_to_string(cfg).unwrap(),
                token_file.display().to_string()
            ),
        );
        let ingesters = format!("http://127.0.0.1:{}", ingester.port);
        let querier = TestServer::start_with(&[
            "--role",
            "query",
            "--storage",
            &storage,
            "--config",
            querier_cfg.to_str().unwrap(),
            "--ingesters",
            &ingesters,
        ])
        .await;
        let v: Value = reqwest::Client::new()
            .get(querier.url("/api/v1/query"))
            .query(&[("query", "count(split_requests_total)"), ("time", &end.to_string())])
            .bearer_auth("fleet-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if sees_head {
            assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
            assert!(v["warnings"].is_null(), "{v}");
        } else {
            assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");
            let w = v["warnings"][0].as_str().unwrap_or_default();
            assert!(w.contains(&ingesters) && w.contains("forbidden"), "{v}");
        }
    }
}
