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
