//! SLO specs in, rules and dashboards out: `tributary slo generate` on the committed example
//! spec, checked by Debian's `promtool check rules` and evaluated against a running Tributary
//! holding hand-computable traffic; and every expression of the Grafana dashboards in
//! `deploy/grafana/dashboards/` parsed and answered with data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::harness::{
    TestServer, post_remote_write, remote_write_body, require_program, result, values_close, write_file,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn slo_generate(spec: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["slo", "generate"])
        .arg(spec)
        .output()
        .expect("run tributary slo generate")
}

/// The generated rule file of the example spec.
fn example_rules() -> String {
    let out = slo_generate(&repo("deploy/slo/example.yml"));
    assert!(
        out.status.success(),
        "slo generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 rules")
}

/// `(group, rule)` for every rule of a rule file, in file order.
fn rules_of(yaml: &str) -> Vec<Value> {
    let file: Value = serde_yaml_ng::from_str(yaml).expect("rule file is YAML");
    file["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

/// The dataset's last sample time, in whole seconds (the time every check evaluates at).
fn dataset_end() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    now - now % 60
}

/// Twenty minutes of `http_requests_total` from two clusters, every 15 s, counters starting at
/// 0 at the same instant: cluster `a` serves 100 requests a minute with 1 % errors, `b` 300 a
/// minute with 3 %. Every window's error ratio is then exactly 0.01 for `a`, 0.03 for `b` and
/// (1 + 9) / (100 + 300) = 0.025 for the fleet (the same extrapolation applies to every series).
async fn push_requests(s: &TestServer, end: i64) {
    let start = end - 1200;
    let counter = |per_minute: f64| -> Vec<(i64, f64)> {
        (0..=80)
            .map(|i| ((start + i * 15) * 1000, per_minute * (i as f64) / 4.0))
            .collect()
    };
    let mut series = vec![
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "checkout"),
                ("code", "200"),
                ("cluster", "a"),
            ],
            counter(99.0),
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "checkout"),
                ("code", "500"),
                ("cluster", "a"),
            ],
            counter(1.0),
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "checkout"),
                ("code", "200"),
                ("cluster", "b"),
            ],
            counter(291.0),
        ),
        (
            vec![
                ("__name__", "http_requests_total"),
                ("job", "checkout"),
                ("code", "503"),
                ("cluster", "b"),
            ],
            counter(9.0),
        ),
    ];
    // What each cluster's Prometheus records about its own scrapes, for the fleet dashboard.
    let scrapes = |samples: f64| -> Vec<(i64, f64)> { (0..=80).map(|i| ((start + i * 15) * 1000, samples)).collect() };
    let up: Vec<(i64, f64)> = (0..=80).map(|i| ((start + i * 15) * 1000, 1.0)).collect();
    series.extend([
        (
            vec![("__name__", "up"), ("job", "checkout"), ("cluster", "a")],
            up.clone(),
        ),
        (vec![("__name__", "up"), ("job", "checkout"), ("cluster", "b")], up),
        (
            vec![
                ("__name__", "scrape_samples_post_metric_relabeling"),
                ("job", "checkout"),
                ("cluster", "a"),
            ],
            scrapes(2.0),
        ),
        (
            vec![
                ("__name__", "scrape_samples_post_metric_relabeling"),
                ("job", "checkout"),
                ("cluster", "b"),
            ],
            scrapes(2.0),
        ),
    ]);
    let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
    assert_eq!(status, 204, "remote write: {body}");
}

#[tokio::test]
async fn generated_rules_pass_promtool_and_compute_the_ratios_by_hand() {
    let promtool = require_program("promtool", "prometheus");
    let rules = example_rules();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = write_file(tmp.path(), "slo-rules.yml", &rules);
    let check = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check rules refused the generated file:\n{}{}\n{rules}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let s = TestServer::start().await;
    let end = dataset_end();
    push_requests(&s, end).await;
    let sli: Vec<Value> = rules_of(&rules)
        .into_iter()
        .filter(|r| {
            r["record"]
                .as_str()
                .is_some_and(|n| n.starts_with("slo:sli_error:ratio_rate"))
        })
        .collect();
    assert_eq!(sli.len(), 16, "8 windows, per cluster and fleet");
    for rule in &sli {
        let expr = rule["expr"].as_str().expect("expr");
        let answer = s.query(expr, end as f64).await;
        let mut got: BTreeMap<String, String> = result(&answer)
            .iter()
            .map(|r| {
                let cluster = r["metric"]["cluster"].as_str().unwrap_or("").to_string();
                (cluster, r["value"][1].as_str().expect("value").to_string())
            })
            .collect();
        let want: BTreeMap<String, String> = if rule["labels"]["slo_scope"] == "cluster" {
            BTreeMap::from([("a".into(), "0.01".into()), ("b".into(), "0.03".into())])
        } else {
            BTreeMap::from([(String::new(), "0.025".into())])
        };
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{expr}: {answer}"
        );
        for (cluster, value) in want {
            let v = got.remove(&cluster).expect("value");
            assert!(values_close(&v, &value), "{expr} for {cluster:?}: {v}, want {value}");
        }
    }
}

#[tokio::test]
async fn a_bad_spec_exits_2_naming_the_field() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = std::fs::read_to_string(repo("deploy/slo/example.yml")).expect("example spec");
    let bad = write_file(
        tmp.path(),
        "bad.yml",
        &spec.replace("objective: 99.9", "objective: 140"),
    );
    let out = slo_generate(&bad);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yml") && stderr.contains("slos[0] (requests-availability).objective"),
        "{stderr}"
    );
    let out = slo_generate(&tmp.path().join("missing.yml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yml"));
}

/// A series to write with owned labels (sorted) and its samples.
type OwnedSeries = (Vec<(String, String)>, Vec<(i64, f64)>);

/// Stores what the ruler would: each recording rule evaluated every minute over the dataset's
/// last ten minutes, its rule labels on top, `cluster="fleet"` where the result has none (the
/// ruler's default), in file order so the metadata rules read the SLI series before them.
async fn record(s: &TestServer, rules: &[Value], end: i64) {
    for rule in rules {
        let Some(name) = rule["record"].as_str() else { continue };
        let answer = s
            .query_range(
                rule["expr"].as_str().expect("expr"),
                (end - 600) as f64,
                end as f64,
                60.0,
            )
            .await;
        let mut owned: Vec<OwnedSeries> = Vec::new();
        for series in result(&answer) {
            let mut labels: BTreeMap<String, String> = series["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label").to_string()))
                .collect();
            for (k, v) in rule["labels"].as_object().into_iter().flatten() {
                labels.insert(k.clone(), v.as_str().expect("label").to_string());
            }
            labels.insert("__name__".into(), name.into());
            labels.entry("cluster".into()).or_insert_with(|| "fleet".into());
            let samples = series["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().expect("t") * 1000.0) as i64,
                        p[1].as_str().expect("v").parse().expect("f64"),
                    )
                })
                .collect();
            owned.push((labels.into_iter().collect(), samples));
        }
        assert!(!owned.is_empty(), "rule {name} recorded nothing");
        let series: Vec<_> = owned
            .iter()
            .map(|(l, v)| (l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(), v.clone()))
            .collect();
        let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
        assert_eq!(status, 204, "writing {name}: {body}");
    }
}

/// Log lines of both clusters, and Tributary's own refusal counter as a scraping Prometheus of
/// cluster `ops` would write it (the refused cluster under `exported_cluster`).
async fn push_logs_and_self_metrics(s: &TestServer, end: i64) {
    let values = |n: i64| -> Vec<Value> {
        (0..n)
            .map(|i| {
                json!([
                    ((end - 300 + i * 10) * 1_000_000_000).to_string(),
                    format!("GET /cart {i} 200")
                ])
            })
            .collect()
    };
    let body = json!({"streams": [
        {"stream": {"app": "checkout", "cluster": "a"}, "values": values(20)},
        {"stream": {"app": "checkout", "cluster": "b"}, "values": values(30)},
    ]});
    let r = s
        .client()
        .post(s.url("/loki/api/v1/push"))
        .json(&body)
        .send()
        .await
        .expect("loki push");
    assert_eq!(r.status(), 204, "loki push: {}", r.text().await.unwrap_or_default());
    let limited: Vec<(i64, f64)> = (0..=40)
        .map(|i| ((end - 600 + i * 15) * 1000, (i * 3) as f64))
        .collect();
    let rejected: Vec<(i64, f64)> = (0..=40).map(|i| ((end - 600 + i * 15) * 1000, i as f64)).collect();
    let series = vec![
        (
            vec![
                ("__name__", "tributary_ingest_limited_total"),
                ("cluster", "ops"),
                ("exported_cluster", "a"),
                ("limit", "samples_per_second"),
            ],
            limited,
        ),
        (
            vec![
                ("__name__", "tributary_ingest_rejected_samples_total"),
                ("cluster", "ops"),
            ],
            rejected,
        ),
    ];
    let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
    assert_eq!(status, 204, "remote write: {body}");
}

/// A dashboard expression with Grafana's variables replaced by what Grafana would send here.
fn substitute(expr: &str) -> String {
    [
        ("$__rate_interval", "1m"),
        ("$__interval", "1m"),
        ("$__range", "10m"),
        ("$__auto", "1m"),
        ("$cluster", ".+"),
        ("$service", "checkout"),
        ("$slo", "requests-availability"),
    ]
    .iter()
    .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

#[tokio::test]
async fn every_dashboard_expression_parses_and_returns_data() {
    let s = TestServer::start().await;
    let end = dataset_end();
    push_requests(&s, end).await;
    record(&s, &rules_of(&example_rules()), end).await;
    push_logs_and_self_metrics(&s, end).await;

    // The generated metadata rules, checked on what they recorded: the period's ratio is 0.025
    // fleet-wide, so the budget of 0.001 burns 25 times over and 1 - 25 of it remains.
    let remaining = s
        .query(
            r#"slo:period_error_budget_remaining:ratio{slo_scope="fleet"}"#,
            end as f64,
        )
        .await;
    assert!(
        values_close(result(&remaining)[0]["value"][1].as_str().expect("value"), "-24"),
        "{remaining}"
    );

    let mut checked = 0;
    for name in ["fleet-overview.json", "slo.json"] {
        let path = repo("deploy/grafana/dashboards").join(name);
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
        assert!(dashboard["schemaVersion"].as_i64().is_some_and(|v| v >= 36), "{name}");
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = substitute(target["expr"].as_str().expect("expr"));
                let (kind, uid) = (&target["datasource"]["type"], &target["datasource"]["uid"]);
                let answer: Value = match (kind.as_str(), uid.as_str()) {
                    (Some("prometheus"), Some("tributary-prometheus")) => {
                        s.query_range(&expr, (end - 600) as f64, end as f64, 60.0).await
                    }
                    (Some("loki"), Some("tributary-loki")) => {
                        let r = s
                            .client()
                            .get(s.url("/loki/api/v1/query_range"))
                            .query(&[
                                ("query", expr.as_str()),
                                ("start", &((end - 600) * 1_000_000_000).to_string()),
                                ("end", &((end + 1) * 1_000_000_000).to_string()),
                                ("step", "60"),
                            ])
                            .send()
                            .await
                            .expect("loki query");
                        assert_eq!(r.status(), 200, "{name}: {expr}");
                        r.json().await.expect("json")
                    }
                    other => panic!("{name}: panel {} uses data source {other:?}", panel["title"]),
                };
                assert!(
                    !result(&answer).is_empty(),
                    "{name}: {} returned no data: {expr}",
                    panel["title"]
                );
                checked += 1;
            }
        }
        for variable in dashboard["templating"]["list"].as_array().expect("variables") {
            let query = substitute(variable["definition"].as_str().expect("definition"));
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable query {query}"));
            let (selector, label) = inner.rsplit_once(", ").unwrap_or(("", inner));
            let mut req = s.client().get(s.url(&format!("/api/v1/label/{label}/values")));
            if !selector.is_empty() {
                req = req.query(&[("match[]", selector)]);
            }
            let answer: Value = req.send().await.expect("label values").json().await.expect("json");
            assert!(
                answer["data"].as_array().is_some_and(|v| !v.is_empty()),
                "{name}: variable {query}: {answer}"
            );
        }
    }
    assert!(checked >= 14, "checked only {checked} targets");
}
