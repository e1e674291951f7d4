//! A real Prometheus remote-writes into Tributary; then both answer the same PromQL with the same
//! series and values. `promtool` (a real client of the HTTP API) queries both as well.
//!
//! To hold identical data, Prometheus scrapes (itself and Tributary) with remote_write on, then
//! stops gracefully (flushing its remote-write queue) and restarts with no targets on the same
//! TSDB: from then on neither store changes. Query windows are placed so that no sample lies
//! exactly on a window boundary, where Prometheus 2.42 (closed windows) and Prometheus 3 semantics,
//! which Tributary follows (left-open windows), legitimately differ.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{
    Proc, TestServer, eventually, prom_query_range, require_program, result, start_prometheus_ready, values_close,
    write_file,
};

const PROMTOOL_QUERY: &str = "sum by (job) (scrape_samples_scraped)";

const QUERIES: &[&str] = &[
    "up",
    "up{job=\"prometheus\"}",
    "up{job!=\"prometheus\"}",
    "up{job=~\"trib.*\"}",
    "up{job!~\"prom.*\"}",
    "scrape_samples_scraped",
    "prometheus_http_requests_total{handler=\"/metrics\"}",
    "rate(prometheus_http_requests_total{handler=\"/metrics\"}[5s])",
    "irate(prometheus_http_requests_total{handler=\"/metrics\"}[5s])",
    "increase(prometheus_http_requests_total{handler=\"/metrics\"}[10s])",
    "rate(process_cpu_seconds_total[10s])",
    "sum(up)",
    "count by (job) (up)",
    "sum by (job) (scrape_samples_scraped)",
    "avg without (instance) (scrape_duration_seconds)",
    "max by (job) (scrape_series_added)",
    "min(scrape_samples_scraped)",
    "scrape_samples_scraped * 2 + 1",
    "scrape_samples_scraped > 10",
    "go_goroutines > bool 5",
    "process_resident_memory_bytes / 1024 / 1024",
    "up offset 3s",
    "sum by (job) (rate(scrape_duration_seconds[10s]))",
    "scrape_samples_scraped - scrape_series_added",
    "-scrape_samples_scraped",
    "1 - up",
];

fn prom_config(dir: &Path, prom_port: u16, trib_port: u16, with_scrape: bool) -> std::path::PathBuf {
    let text = if with_scrape {
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels:
    cluster: parity
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
  - job_name: tributary
    static_configs: [{{targets: ["127.0.0.1:{trib_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{trib_port}/api/v1/write
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 2000
"#
        )
    } else {
        "global:\n  scrape_interval: 1h\n".to_string()
    };
    write_file(dir, if with_scrape { "scrape.yml" } else { "idle.yml" }, &text)
}

/// A ready Prometheus (see `harness::start_prometheus_ready`) with the config `cfg(port)`
/// writes, and its port.
async fn start_prometheus(bin: &Path, cfg: impl Fn(u16) -> std::path::PathBuf, tsdb: &Path) -> (Proc, u16) {
    start_prometheus_ready(|port| {
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg(port).display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Proc(child)
    })
    .await
}

/// series labels (without `cluster`) → [(t, v)], for comparing results whatever their order.
fn canonical(v: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for s in result(v) {
        let mut m: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
        m.remove("cluster");
        let points: Vec<(String, String)> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].to_string(), p[1].as_str().unwrap().to_string()))
            .collect();
        out.insert(format!("{m:?}"), points);
    }
    out
}

async fn compare(prom: &str, trib: &str, start: f64, end: f64) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for step in [1.0, 2.0, 5.0] {
        for q in QUERIES {
            let p = canonical(&prom_query_range(prom, q, start, end, step).await);
            let t = canonical(&prom_query_range(trib, q, start, end, step).await);
            checked += 1;
            if p.is_empty() {
                failures.push(format!("{q} step {step}: Prometheus returned nothing (bad test query)"));
                continue;
            }
            if p.keys().collect::<Vec<_>>() != t.keys().collect::<Vec<_>>() {
                failures.push(format!(
                    "{q} step {step}: series differ\n  prometheus {:?}\n  tributary  {:?}",
                    p.keys(),
                    t.keys()
                ));
                continue;
            }
            for (k, pv) in &p {
                let tv = &t[k];
                let same =
                    pv.len() == tv.len() && pv.iter().zip(tv).all(|(a, b)| a.0 == b.0 && values_close(&a.1, &b.1));
                if !same {
                    failures.push(format!(
                        "{q} step {step} {k}:\n  prometheus {pv:?}\n  tributary  {tv:?}"
                    ));
                }
            }
        }
    }
    (checked, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_and_both_answer_the_same() {
    let prometheus = require_program("prometheus", "prometheus");
    let promtool = require_program("promtool", "prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let trib = TestServer::start().await;
    let tsdb = tmp.path().join("tsdb");

    // Phase 1: scrape (itself among others) with remote_write.
    let (mut p, _) = start_prometheus(
        &prometheus,
        |port| prom_config(tmp.path(), port, trib.port, true),
        &tsdb,
    )
    .await;
    eventually(Duration::from_secs(90), "30 s of remote-written samples", || {
        let url = trib.url("/api/v1/query");
        async move {
            let v: Value = reqwest::Client::new()
                .get(url)
                .query(&[("query", "count_over_time(up{job=\"prometheus\"}[10m])")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
            (n >= 30.0).then_some(())
        }
    })
    .await;
    // Graceful stop flushes the remote-write queue.
    Command::new("kill")
        .arg("-TERM")
        .arg(p.0.id().to_string())
        .status()
        .unwrap();
    let status = p.0.wait().unwrap();
    assert!(status.success(), "prometheus exited with {status}");
    drop(p);

    // Phase 2: same TSDB, no targets: neither store changes from here on.
    let (_p, prom_port) = start_prometheus(
        &prometheus,
        |port| prom_config(tmp.path(), port, trib.port, false),
        &tsdb,
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Raw sample timestamps, to place windows off every sample.
    let raw = reqwest::Client::new()
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", "up[1h]")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut ts: Vec<i64> = result(&raw)
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
        })
        .collect();
    ts.sort();
    let residues: std::collections::HashSet<i64> = ts.iter().map(|t| t.rem_euclid(1000)).collect();
    let offset = (0..1000)
        .map(|o| (o * 37 + 500) % 1000)
        .find(|o| !residues.contains(o))
        .unwrap();
    let first = ts[0] / 1000 + 12;
    let last = *ts.last().unwrap() / 1000 - 1;
    let (start, end) = (
        (first * 1000 + offset) as f64 / 1000.0,
        (last * 1000 + offset) as f64 / 1000.0,
    );
    assert!(end - start >= 10.0, "too little data: {start}..{end}");

    let (n, failures) = compare(&prom, &trib.url(""), start, end).await;
    assert!(
        failures.is_empty(),
        "{} of {n} query results differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The same answers once the data lives in Parquet.
    trib.flush().await;
    let (n, failures) = compare(&prom, &trib.url(""), start, end).await;
    assert!(
        failures.is_empty(),
        "after flush, {} of {n} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // promtool is a real client of the HTTP API: the same text output from both servers.
    let promtool_query = |server: &str, args: &[String]| {
        let out = Command::new(&promtool)
            .arg("query")
            .args(args)
            .arg(server)
            .arg(PROMTOOL_QUERY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "promtool {args:?} against {server} failed: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in [
        vec!["instant".to_string(), format!("--time={end}")],
        vec![
            "range".to_string(),
            format!("--start={start}"),
            format!("--end={end}"),
            "--step=5s".to_string(),
        ],
    ] {
        let from_prom = promtool_query(&prom, &args);
        let from_trib = promtool_query(&trib.url(""), &args);
        assert!(from_trib.contains("job=\"prometheus\""), "{from_trib}");
        assert_eq!(from_prom, from_trib, "promtool {args:?} output differs");
    }
    let out = Command::new(&promtool)
        .args(["query", "labels"])
        .arg(trib.url(""))
        .arg("job")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool labels: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let labels = String::from_utf8_lossy(&out.stdout);
    assert!(
        labels.contains("prometheus") && labels.contains("tributary"),
        "{labels}"
    );
    let out = Command::new(&promtool)
        .args(["query", "series", "--match=up"])
        .arg(trib.url(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool series: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cluster=\"parity\""));
}
