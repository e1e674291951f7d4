//! The ruler against a real Alertmanager (Debian `prometheus-alertmanager`) whose webhook
//! receiver is served by the test: an alert fires after `for` with its labels (cluster and
//! external labels included) and annotations, survives a `kill -9` restart without starting
//! over (its active-since time restored from `ALERTS_FOR_STATE`), and resolves; recording rules
//! keep their input's cluster or get `fleet`; the rules and alerts APIs answer Prometheus's
//! shapes; a broken rule file is refused on reload, naming file and line, and the old rules
//! keep running. LogQL rules (`ruler.logql_rule_files`) over Loki-pushed lines of two clusters
//! record a metric per cluster and fire to the same Alertmanager; `/loki/api/v1/rules` lists
//! their group in YAML. Over HTTPS, an Alertmanager serving a certificate of a private CA and
//! asking for a client certificate receives the alerts too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::Value;

use crate::harness::{
    Proc, TestServer, eventually, free_port, post_remote_write, remote_write_body, require_program, result, wait_ready,
    write_file,
};

const RULES: &str = r#"groups:
  - name: e2e
    rules:
      - record: job:errors:sum
        expr: sum(errors)
      - record: cluster:errors:max
        expr: max by (cluster) (errors)
      - alert: ErrorsHigh
        expr: errors > 5
        for: 2s
        labels:
          severity: page
        annotations:
          summary: errors are high
"#;

/// Loki's ruler format: LogQL metric queries over the lines `push_logs` sends.
const LOGQL_RULES: &str = r#"groups:
  - name: e2e-logs
    rules:
      - record: service:log_errors:count5m
        expr: sum by (cluster, service_name) (count_over_time({service_name="api"} |= "error" [5m]))
      - alert: ApiErrorLogs
        expr: sum by (cluster) (count_over_time({service_name="api"} |= "error" [5m])) > 2
        for: 1s
        labels:
          severity: ticket
        annotations:
          summary: "{{ $labels.cluster }} logged {{ $value }} errors"
"#;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// Serves `POST /hook` on a free port; every body received is kept.
async fn webhook() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |axum::Json(body): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind webhook");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, received)
}

/// Starts Alertmanager routing every alert to the webhook on `hook_port`; `web_config`: its
/// `--web.config.file` (TLS), if any.
fn alertmanager(dir: &Path, hook_port: u16, web_config: Option<&Path>) -> (Proc, u16) {
    let binary = require_program("prometheus-alertmanager", "prometheus-alertmanager");
    let port = free_port();
    let config = write_file(
        dir,
        "alertmanager.yml",
        &format!(
            r#"route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{hook_port}/hook
        send_resolved: true
"#
        ),
    );
    let mut command = Command::new(binary);
    if let Some(web) = web_config {
        command.arg(format!("--web.config.file={}", web.display()));
    }
    let child = command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    (Proc(child), port)
}

/// The first alert named `alertname` that Alertmanager posted to the webhook in a notification
/// of `status` (`firing` or `resolved`), waited for.
async fn notified(received: &Arc<Mutex<Vec<Value>>>, status: &str, alertname: &str, what: &str) -> Value {
    eventually(Duration::from_secs(20), what, || {
        let received = received.clone();
        async move {
            received
                .lock()
                .iter()
                .filter(|b| b["status"] == status)
                .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
                .find(|a| a["labels"]["alertname"] == alertname)
        }
    })
    .await
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.expect("GET");
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.expect("json")
}

async fn get_text(url: &str) -> String {
    let r = reqwest::get(url).await.expect("GET");
    assert_eq!(r.status(), 200, "GET {url}");
    r.text().await.expect("text")
}

async fn push_errors(s: &TestServer, value: f64) {
    let body = remote_write_body(&[(
        vec![("__name__", "errors"), ("cluster", "c1"), ("instance", "a")],
        vec![(now_ms(), value)],
    )]);
    let (status, text) = post_remote_write(&s.url("/api/v1/write"), body, &[]).await;
    assert_eq!(status, 204, "{text}");
}

/// Lines of the `api` service: three errors in c1, one in c2 (which stays under the threshold).
async fn push_logs(s: &TestServer) {
    let ns = |back_ms: i64| ((now_ms() - back_ms) * 1_000_000).to_string();
    for (cluster, lines) in [
        (
            "c1",
            vec![
                "GET / error: timeout",
                "GET /a error: refused",
                "GET /b ok",
                "GET /c error: reset",
            ],
        ),
        ("c2", vec!["GET / error: timeout", "GET / ok"]),
    ] {
        let values: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| serde_json::json!([ns(2_000 - i as i64 * 100), l]))
            .collect();
        let body = serde_json::json!({"streams": [{"stream": {"service_name": "api"}, "values": values}]});
        let r = s
            .client()
            .post(s.url("/loki/api/v1/push"))
            .header("X-Tributary-Cluster", cluster)
            .json(&body)
            .send()
            .await
            .expect("loki push");
        assert_eq!(r.status(), 204, "loki push");
    }
}

/// The ErrorsHigh alert of `/api/v1/alerts`, once it is firing.
async fn firing_alert(s: &TestServer) -> Value {
    let url = s.url("/api/v1/alerts");
    eventually(Duration::from_secs(20), "ErrorsHigh firing in /api/v1/alerts", || {
        let url = url.clone();
        async move {
            let v = reqwest::get(&url).await.ok()?.json::<Value>().await.ok()?;
            v["data"]["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "ErrorsHigh" && a["state"] == "firing")
                .cloned()
        }
    })
    .await
}

#[tokio::test]
async fn alerts_reach_alertmanager_survive_a_restart_and_resolve() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (hook_port, received) = webhook().await;
    let (_am, am_port) = alertmanager(tmp.path(), hook_port, None);
    wait_ready(&format!("http://127.0.0.1:{am_port}/-/ready")).await;
    let rules = write_file(tmp.path(), "rules.yml", RULES);
    let logql_rules = write_file(tmp.path(), "logs.yml", LOGQL_RULES);
    let config = write_file(
        tmp.path(),
        "tributary.toml",
        &format!(
            r#"[ruler]
rule_files = ["{}"]
logql_rule_files = ["{}"]
alertmanagers = ["http://127.0.0.1:{am_port}"]
evaluation_interval = "1s"
resend_delay = "1s"
external_url = "http://tributary.example"
for_grace_period = "1s"
[ruler.external_labels]
source = "tributary-e2e"
"#,
            rules.display(),
            logql_rules.display()
        ),
    );
    let mut s = TestServer::start_with(&["--config", config.to_str().expect("utf-8")]).await;
    push_errors(&s, 10.0).await;
    push_logs(&s).await;

    // The alert reaches the webhook through Alertmanager with every label and annotation.
    let firing = notified(&received, "firing", "ErrorsHigh", "a firing notification").await;
    let labels = &firing["labels"];
    assert_eq!(labels["cluster"], "c1", "{firing}");
    assert_eq!(labels["instance"], "a", "{firing}");
    assert_eq!(labels["severity"], "page", "{firing}");
    assert_eq!(labels["source"], "tributary-e2e", "external label: {firing}");
    assert_eq!(firing["annotations"]["summary"], "errors are high", "{firing}");
    assert!(
        firing["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://tributary.example/graph?g0.expr=errors")),
        "{firing}"
    );

    // Recording rules: the input's cluster kept, or `fleet` when aggregated away.
    let t = now_ms() as f64 / 1000.0;
    let sum = s.query("job:errors:sum", t).await;
    assert_eq!(result(&sum)[0]["metric"]["cluster"], "fleet", "{sum}");
    assert_eq!(result(&sum)[0]["value"][1], "10", "{sum}");
    let max = s.query("cluster:errors:max", t).await;
    assert_eq!(result(&max)[0]["metric"]["cluster"], "c1", "{max}");
    let alerts_series = s
        .query("ALERTS{alertname=\"ErrorsHigh\",alertstate=\"firing\"}", t)
        .await;
    assert_eq!(result(&alerts_series).len(), 1, "{alerts_series}");

    // LogQL rules: the recording rule's output per cluster, the alert through Alertmanager.
    let per_cluster = eventually(Duration::from_secs(20), "the LogQL recording rule's output", || {
        let s = &s;
        async move {
            let v = s.query("service:log_errors:count5m", now_ms() as f64 / 1000.0).await;
            let mut got: Vec<(String, String)> = result(&v)
                .iter()
                .map(|r| {
                    let cluster = r["metric"]["cluster"].as_str().unwrap_or_default().to_string();
                    (cluster, r["value"][1].as_str().unwrap_or_default().to_string())
                })
                .collect();
            got.sort();
            (got.len() == 2).then_some(got)
        }
    })
    .await;
    assert_eq!(
        per_cluster,
        [("c1".to_string(), "3".to_string()), ("c2".to_string(), "1".to_string())]
    );
    let log_alert = notified(&received, "firing", "ApiErrorLogs", "a firing LogQL alert").await;
    assert_eq!(log_alert["labels"]["cluster"], "c1", "{log_alert}");
    assert_eq!(log_alert["labels"]["severity"], "ticket", "{log_alert}");
    assert_eq!(log_alert["annotations"]["summary"], "c1 logged 3 errors", "{log_alert}");
    let r = reqwest::get(s.url("/loki/api/v1/rules")).await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/yaml")
    );
    let yaml = r.text().await.expect("body");
    assert!(
        yaml.contains(&format!("{}:", logql_rules.display())) && yaml.contains("name: e2e-logs"),
        "{yaml}"
    );
    assert!(
        yaml.contains("alert: ApiErrorLogs") && !yaml.contains("ErrorsHigh"),
        "{yaml}"
    );

    // The APIs, in Prometheus's shapes.
    let rules_api = get_json(&s.url("/api/v1/rules")).await;
    let group = &rules_api["data"]["groups"][0];
    assert_eq!(group["name"], "e2e");
    assert_eq!(group["file"], rules.display().to_string());
    assert_eq!(group["interval"], 1.0);
    let listed = group["rules"].as_array().expect("rules");
    assert_eq!(listed.len(), 3, "{rules_api}");
    assert_eq!(listed[0]["type"], "recording");
    assert_eq!(listed[0]["health"], "ok", "{rules_api}");
    let alerting = &listed[2];
    assert_eq!(alerting["type"], "alerting");
    assert_eq!(alerting["name"], "ErrorsHigh");
    assert_eq!(alerting["duration"], 2.0);
    assert_eq!(alerting["state"], "firing", "{rules_api}");
    assert_eq!(alerting["alerts"][0]["value"], "1e+01", "{rules_api}");
    for key in [
        "query",
        "labels",
        "annotations",
        "evaluationTime",
        "lastEvaluation",
        "keepFiringFor",
    ] {
        assert!(alerting.get(key).is_some(), "{key} missing: {alerting}");
    }
    let records = get_json(&s.url("/api/v1/rules?type=record")).await;
    assert_eq!(records["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(2));
    let none = get_json(&s.url("/api/v1/rules?rule_group[]=other")).await;
    assert_eq!(none["data"]["groups"], serde_json::json!([]));
    let before = firing_alert(&s).await;
    // Each data source's listing holds its own language's alerts: LogQL ones under Loki's
    // `/prometheus/` path, PromQL ones under Prometheus's.
    let names = |v: &Value| -> Vec<String> {
        let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        alerts
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let loki_path = names(&get_json(&s.url("/prometheus/api/v1/alerts")).await);
    assert!(
        !loki_path.is_empty() && loki_path.iter().all(|n| n == "ApiErrorLogs"),
        "{loki_path:?}"
    );
    let prom_path = names(&get_json(&s.url("/api/v1/alerts")).await);
    assert!(
        !prom_path.is_empty() && prom_path.iter().all(|n| n == "ErrorsHigh"),
        "{prom_path:?}"
    );
    let metrics = get_text(&s.url("/metrics")).await;
    let group_label = format!("rule_group=\"{};e2e\"", rules.display());
    for name in [
        "tributary_ruler_rule_evaluations_total",
        "tributary_ruler_rule_group_last_evaluation_timestamp_seconds",
        "tributary_ruler_rule_group_duration_seconds_bucket",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(name) && l.contains(&group_label)),
            "{name} of the group missing from /metrics"
        );
    }

    // A broken file is refused on reload with its line; the old rules keep running.
    std::fs::write(&rules, RULES.replace("expr: errors > 5", "expr: errors >")).expect("write");
    let r = reqwest::Client::new()
        .post(s.url("/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("body");
    assert!(
        text.contains("rules.yml:8:") && text.contains("could not parse expression"),
        "{text}"
    );
    let still = get_json(&s.url("/api/v1/rules")).await;
    assert_eq!(still["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(3));
    std::fs::write(&rules, RULES).expect("write");

    // kill -9 while firing: the alert comes back firing with its original active-since time.
    s.kill9();
    s.spawn().await;
    let after = firing_alert(&s).await;
    assert_eq!(after["activeAt"], before["activeAt"], "before {before}, after {after}");

    // The condition clears: Alertmanager hears of the resolution.
    push_errors(&s, 0.0).await;
    let resolved = notified(&received, "resolved", "ErrorsHigh", "a resolved notification").await;
    assert_eq!(resolved["labels"]["cluster"], "c1", "{resolved}");
    assert_eq!(resolved["startsAt"], firing["startsAt"], "{resolved}");
}

#[tokio::test]
async fn alerts_reach_an_https_alertmanager_that_requires_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ca = crate::tls::new_ca();
    let server = crate::tls::issue(&ca, "alertmanager", &["localhost", "127.0.0.1"]);
    let client = crate::tls::issue(&ca, "tributary-ruler", &[]);
    let ca_file = write_file(dir, "ca.crt", &ca.pem());
    write_file(dir, "am.crt", &server.cert);
    write_file(dir, "am.key", &server.key);
    let cert_file = write_file(dir, "ruler.crt", &client.cert);
    let key_file = write_file(dir, "ruler.key", &client.key);
    let web = write_file(
        dir,
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: {d}/am.crt\n  key_file: {d}/am.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {d}/ca.crt\n",
            d = dir.display()
        ),
    );
    let (hook_port, received) = webhook().await;
    let (_am, am_port) = alertmanager(dir, hook_port, Some(&web));
    let am = format!("https://127.0.0.1:{am_port}");
    // Ready, over TLS with the same CA and client certificate the ruler is given.
    let probe = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("ca"))
        .identity(reqwest::Identity::from_pem(format!("{}\n{}", client.cert, client.key).as_bytes()).expect("identity"))
        .build()
        .expect("client");
    eventually(Duration::from_secs(20), "Alertmanager ready over HTTPS", || {
        let probe = probe.clone();
        let url = format!("{am}/-/ready");
        async move { probe.get(&url).send().await.ok().filter(|r| r.status() == 200) }
    })
    .await;
    let rules = write_file(
        dir,
        "rules.yml",
        "groups:\n  - name: tls\n    rules:\n      - alert: Always\n        expr: vector(1)\n        labels:\n          severity: info\n",
    );
    let config = write_file(
        dir,
        "tributary.toml",
        &format!(
            "[ruler]\nrule_files = [\"{}\"]\nalertmanagers = [\"{am}\"]\nevaluation_interval = \"1s\"\nalertmanager_ca_file = \"{}\"\nalertmanager_cert_file = \"{}\"\nalertmanager_key_file = \"{}\"\n",
            rules.display(),
            ca_file.display(),
            cert_file.display(),
            key_file.display()
        ),
    );
    let s = TestServer::start_with(&["--config", config.to_str().expect("utf-8")]).await;
    let alert = notified(
        &received,
        "firing",
        "Always",
        "the alert through the HTTPS Alertmanager",
    )
    .await;
    assert_eq!(alert["labels"]["severity"], "info", "{alert}");
    assert_eq!(alert["labels"]["cluster"], "fleet", "{alert}");
    let metrics = get_text(&s.url("/metrics")).await;
    let errors = format!("tributary_ruler_notifications_errors_total{{alertmanager=\"{am}\"}} 0");
    assert!(
        metrics.lines().any(|l| l == errors),
        "no failed post expected: {errors}"
    );
}
