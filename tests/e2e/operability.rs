//! What a platform team operates by: the status and cardinality APIs over real HTTP, and log
//! lines a pipeline can read (JSON on request, never colour codes when not on a terminal).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestServer, eventually, free_ports, post_remote_write, remote_write_body};

/// Runs the binary with its stdout and stderr going to files (not a terminal), waits until it
/// is ready, writes one series, stops it with SIGTERM and answers everything it printed.
async fn logs_of_a_run(extra: &[&str]) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    let [http] = free_ports::<1>();
    let out = std::fs::File::create(tmp.path().join("out.log")).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--grpc-listen", "", "--otlp-http-listen", ""])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(out.try_clone().expect("clone")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn tributary");
    let base = format!("http://127.0.0.1:{http}");
    eventually(Duration::from_secs(60), "tributary ready", || async {
        let r = reqwest::get(format!("{base}/-/ready")).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let body = remote_write_body(&[(
        vec![("__name__", "log_probe"), ("cluster", "c")],
        vec![(1_700_000_000_000, 1.0)],
    )]);
    assert_eq!(
        post_remote_write(&format!("{base}/api/v1/write"), body, &[]).await.0,
        204
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            assert!(s.success(), "tributary exited with {s}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "tributary did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::read_to_string(tmp.path().join("out.log")).expect("read the log")
}

#[tokio::test]
async fn json_logs_are_one_json_object_per_line() {
    let text = logs_of_a_run(&["--log-format", "json"]).await;
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "too few log lines:\n{text}");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{text}")))
        .collect();
    assert!(
        parsed
            .iter()
            .any(|v| v["level"] == "INFO" && v["fields"]["message"] == "tributary listening"),
        "{text}"
    );
    assert!(
        parsed.iter().any(|v| v["fields"]["message"] == "stopped cleanly"),
        "{text}"
    );
}

#[tokio::test]
async fn piped_text_logs_carry_no_colour_codes() {
    let text = logs_of_a_run(&[]).await;
    assert!(text.contains("tributary listening"), "{text}");
    assert!(text.contains("stopped cleanly"), "{text}");
    assert!(!text.contains("\u{1b}["), "ANSI escape in piped logs:\n{text}");
}

/// The TSDB status and Mimir's cardinality answer over what was just written, per cluster,
/// and the configuration and runtime facts come from the running process.
#[tokio::test]
async fn status_and_cardinality_apis_answer_from_the_head() {
    let s = TestServer::start().await;
    let now = 1_700_000_000_000;
    let body = remote_write_body(&[
        (
            vec![("__name__", "up"), ("cluster", "a"), ("job", "x")],
            vec![(now, 1.0)],
        ),
        (
            vec![("__name__", "up"), ("cluster", "a"), ("job", "y")],
            vec![(now + 1_000, 1.0)],
        ),
        (
            vec![("__name__", "up"), ("cluster", "b"), ("job", "x")],
            vec![(now + 2_000, 1.0)],
        ),
    ]);
    assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &[]).await.0, 204);
    let get = |path: &str| {
        let url = s.url(path);
        async move {
            let r = reqwest::get(url).await.expect("GET");
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("JSON")
        }
    };
    let tsdb = get("/api/v1/status/tsdb").await;
    let head = &tsdb["data"]["headStats"];
    assert_eq!(
        (head["numSeries"].as_u64(), head["minTime"].as_i64()),
        (Some(3), Some(now))
    );
    assert_eq!(head["maxTime"].as_i64(), Some(now + 2_000));
    assert_eq!(tsdb["data"]["seriesCountByMetricName"][0]["value"], 3);
    let one = get("/api/v1/status/tsdb?cluster=b").await;
    assert_eq!(one["data"]["headStats"]["numSeries"], 1);
    let values = get("/api/v1/cardinality/label_values?label_names[]=cluster").await;
    assert_eq!(values["labels"][0]["cardinality"][0]["label_value"], "a");
    assert_eq!(values["labels"][0]["cardinality"][0]["series_count"], 2);
    let config = get("/api/v1/status/config").await;
    assert!(
        config["data"]["yaml"].as_str().unwrap().contains("[server]"),
        "{config}"
    );
    let flags = get("/api/v1/status/flags").await;
    assert_eq!(flags["data"]["role"], "all-in-one");
    let runtime = get("/api/v1/status/runtimeinfo").await;
    assert_eq!(runtime["data"]["storageRetention"], "unlimited");
    // The flusher, the catalog refresh and the token watch run as tasks.
    assert!(runtime["data"]["goroutineCount"].as_u64().unwrap() > 0, "{runtime}");
}

/// A running binary whose log (JSON lines) goes to a file, killed on drop.
struct Logged {
    child: std::process::Child,
    log: std::path::PathBuf,
    base: String,
    /// The dedicated OTLP/HTTP port's.
    otlp_base: String,
}

impl Logged {
    fn spawn(data: &std::path::Path, log: std::path::PathBuf, envs: &[(&str, &str)]) -> Self {
        let [http, otlp] = free_ports::<2>();
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["--http-listen", &format!("127.0.0.1:{http}")])
            .args(["--otlp-http-listen", &format!("127.0.0.1:{otlp}")])
            .args(["--grpc-listen", "", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::from(out.try_clone().expect("clone")))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("spawn tributary");
        Self {
            child,
            log,
            base: format!("http://127.0.0.1:{http}"),
            otlp_base: format!("http://127.0.0.1:{otlp}"),
        }
    }

    /// An empty OTLP/HTTP metrics export to the dedicated port: its status and `Retry-After`.
    async fn otlp_export(&self) -> (u16, Option<String>) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/metrics", self.otlp_base))
            .header("Content-Type", "application/x-protobuf")
            .body(Vec::new())
            .send()
            .await
            .expect("the OTLP/HTTP port answers");
        let retry = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        (r.status().as_u16(), retry)
    }

    async fn status(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
        Some((r.status().as_u16(), r.text().await.ok()?))
    }

    /// The log lines with this message.
    fn lines(&self, message: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .expect("read the log")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port answers while the WAL replays: healthy yes, ready and the receivers not yet (503,
/// which remote-write retries), then ready once the replay is over. The replay is slowed by the
/// `test-util` hook so the window is seconds long on any machine.
#[tokio::test]
async fn health_answers_during_wal_replay_and_ready_waits_for_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let first = Logged::spawn(&data, tmp.path().join("first.log"), &[]);
    eventually(Duration::from_secs(60), "first start ready", || async {
        (first.status("/-/ready").await?.0 == 200).then_some(())
    })
    .await;
    let body = remote_write_body(&[(
        vec![("__name__", "replayed"), ("cluster", "c")],
        vec![(1_700_000_000_000, 1.0)],
    )]);
    assert_eq!(
        post_remote_write(&format!("{}/api/v1/write", first.base), body.clone(), &[])
            .await
            .0,
        204
    );
    // SIGKILL: the sample stays in the WAL only, to be replayed.
    drop(first);

    let second = Logged::spawn(
        &data,
        tmp.path().join("second.log"),
        &[("TRIBUTARY_TEST_REPLAY_SEGMENT_DELAY_MS", "4000")],
    );
    eventually(Duration::from_secs(30), "healthy during replay", || async {
        (second.status("/-/healthy").await?.0 == 200).then_some(())
    })
    .await;
    let (status, text) = second.status("/-/ready").await.expect("ready answers");
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("replaying WAL: 0 of "), "{text}");
    let (status, text) = post_remote_write(&format!("{}/api/v1/write", second.base), body, &[]).await;
    assert_eq!(status, 503, "{text}");
    // The OTLP/HTTP port is bound too, and asks to retry rather than refusing the connection.
    assert_eq!(second.otlp_export().await, (503, Some("5".to_string())));
    eventually(Duration::from_secs(60), "ready after replay", || async {
        (second.status("/-/ready").await?.0 == 200).then_some(())
    })
    .await;
    let (status, _) = second.otlp_export().await;
    assert!(status == 200 || status == 400, "OTLP/HTTP after startup: {status}");
    let replayed = second.lines("replayed write-ahead log");
    assert_eq!(replayed.len(), 1, "{replayed:?}");
}

/// A refused write is logged once per cluster and reason in a window, naming both, inside the
/// request's span with the request id the answer carries.
#[tokio::test]
async fn a_rejected_write_is_logged_once_per_window() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Logged::spawn(&tmp.path().join("data"), tmp.path().join("out.log"), &[]);
    eventually(Duration::from_secs(60), "ready", || async {
        (s.status("/-/ready").await?.0 == 200).then_some(())
    })
    .await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = client
            .post(format!("{}/api/v1/write", s.base))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Tributary-Cluster", "edge-7")
            .body("not snappy at all")
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 400);
        let id = r.headers()["x-request-id"].to_str().expect("ASCII id").to_string();
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1]);
    // The first line is written before its answer; the second request is suppressed.
    let lines = s.lines("write rejected");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(
        (f["cluster"].as_str(), f["protocol"].as_str(), f["reason"].as_str()),
        (Some("edge-7"), Some("prometheus_remote_write"), Some("invalid_input")),
        "{lines:?}"
    );
    let spans = lines[0]["spans"].as_array().expect("spans");
    assert!(
        spans.iter().any(|s| s["request_id"].as_str() == Some(ids[0].as_str())),
        "{lines:?}"
    );
}

/// The value of the one line of `/metrics` that starts with `series` (name and labels, as
/// the text format writes them).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// Self-monitoring covers the job: per-cluster ingest figures equal to what was pushed, query
/// requests by API, route and outcome, object-store requests once a flush wrote, and the
/// process's own CPU, memory and files.
#[tokio::test]
async fn metrics_cover_clusters_queries_object_store_and_the_process() {
    let s = TestServer::start().await;
    let now = 1_700_000_000_000;
    let body = remote_write_body(&[
        (
            vec![("__name__", "up"), ("cluster", "east"), ("job", "x")],
            vec![(now, 1.0), (now + 1_000, 1.0)],
        ),
        (
            vec![("__name__", "up"), ("cluster", "east"), ("job", "y")],
            vec![(now, 1.0)],
        ),
        (vec![("__name__", "up"), ("cluster", "west")], vec![(now, 0.0)]),
    ]);
    assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &[]).await.0, 204);
    let client = reqwest::Client::new();
    let query = |q: &'static str| {
        let url = s.url("/api/v1/query");
        let client = client.clone();
        async move {
            let r = client
                .get(url)
                .query(&[("query", q), ("time", "1700000001")])
                .send()
                .await
                .expect("GET");
            r.status().as_u16()
        }
    };
    assert_eq!(query("sum(up)").await, 200);
    assert_eq!(query("sum by cluster (up)").await, 400);
    s.flush().await;
    let text = reqwest::get(s.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text");
    let m = |series: &str| metric(&text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"));

    assert_eq!(m(r#"tributary_cluster_samples_total{cluster="east"}"#), 3.0);
    assert_eq!(m(r#"tributary_cluster_samples_total{cluster="west"}"#), 1.0);
    assert_eq!(m(r#"tributary_cluster_log_records_total{cluster="west"}"#), 0.0);
    // The flush emptied the head's active part.
    assert!(m(r#"tributary_cluster_active_series{cluster="east"}"#) <= 2.0);

    let q = r#"api="prometheus",endpoint="/api/v1/query""#;
    assert_eq!(
        m(&format!("tributary_query_requests_total{{{q},outcome=\"success\"}}")),
        1.0
    );
    assert_eq!(
        m(&format!(
            "tributary_query_requests_total{{{q},outcome=\"client_error\"}}"
        )),
        1.0
    );
    assert_eq!(
        m(&format!("tributary_query_request_duration_seconds_count{{{q}}}")),
        2.0
    );

    assert!(m(r#"tributary_object_store_requests_total{operation="put",outcome="success"}"#) >= 1.0);
    assert!(m(r#"tributary_object_store_request_duration_seconds_count{operation="put"}"#) >= 1.0);

    assert!(m("process_resident_memory_bytes") > 1e6);
    assert!(m("process_virtual_memory_bytes") >= m("process_resident_memory_bytes"));
    assert!(m("process_cpu_seconds_total") > 0.0);
    assert!(m("process_open_fds") >= 3.0 && m("process_threads") >= 2.0);
    let started = m("process_start_time_seconds");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        started > now_s - 600.0 && started <= now_s + 1.0,
        "{started} vs {now_s}"
    );
}

/// An ingester runs with the allocator options that keep its memory near what it holds
/// (`src/allocator.rs`): added to its environment when missing, an operator's own value kept,
/// and the process the operator started is the one serving (the restart keeps its pid). The
/// roles that answer queries take only the option every role runs with (no transparent huge
/// pages) and keep the allocator's purge delay.
#[tokio::test]
async fn an_ingester_runs_with_the_allocators_options_and_an_operators_value_wins() {
    let environ = |server: &TestServer| -> Vec<Vec<u8>> {
        let pid = server.pid().expect("running");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
        environ.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
    };
    let has = |vars: &[Vec<u8>], var: &str| vars.iter().any(|v| v == var.as_bytes());
    let ingester = TestServer::start_with_env(&["--role", "ingest"], &[("MIMALLOC_PURGE_DELAY", "250")]).await;
    let vars = environ(&ingester);
    assert!(has(&vars, "MIMALLOC_ARENA_EAGER_COMMIT=0"), "added when missing");
    assert!(has(&vars, "MIMALLOC_ALLOW_THP=0"), "every role's option added");
    assert!(has(&vars, "MIMALLOC_PURGE_DELAY=250"), "the operator's value kept");
    assert!(!has(&vars, "MIMALLOC_PURGE_DELAY=0"));
    let r = ingester
        .client()
        .get(ingester.url("/-/ready"))
        .send()
        .await
        .expect("ready");
    assert!(r.status().is_success());

    let all_in_one = TestServer::start().await;
    let vars = environ(&all_in_one);
    assert!(has(&vars, "MIMALLOC_ALLOW_THP=0"), "every role's option added");
    assert!(
        !vars
            .iter()
            .any(|v| v.starts_with(b"MIMALLOC_PURGE_DELAY") || v.starts_with(b"MIMALLOC_ARENA_EAGER_COMMIT")),
        "the purge delay kept where queries are answered"
    );
}
