use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use super::*;
use crate::QueryConfig;
use crate::logql::LogqlConfig;
use crate::logql::mem::MemLogSource;
use crate::test_source::VecSource;

/// A sink keeping what it is given (the group tests use it too).
#[derive(Debug, Default)]
pub(super) struct Kept(pub(super) Mutex<Vec<RuleSample>>);

#[async_trait::async_trait]
impl RuleSink for Kept {
    async fn write(&self, samples: Vec<RuleSample>) -> std::result::Result<(), String> {
        self.0.lock().extend(samples);
        Ok(())
    }
}

struct Ctx {
    engine: Arc<Engine>,
    logql: Arc<LogqlEngine>,
    sink: Arc<Kept>,
}

impl Ctx {
    /// A ruler of `cfg` over these engines and sink.
    async fn ruler(&self, cfg: RulerConfig) -> Result<Arc<Ruler>> {
        Ruler::new(
            cfg,
            self.engine.clone(),
            self.logql.clone(),
            self.sink.clone(),
            &mut Registry::default(),
        )
        .await
    }
}

/// Engines over no data and a sink keeping what it is given.
fn context() -> Ctx {
    Ctx {
        engine: Arc::new(Engine::new(
            Arc::new(VecSource::new(Vec::new())),
            QueryConfig::default(),
        )),
        logql: Arc::new(LogqlEngine::new(
            Arc::new(MemLogSource::new(Vec::new())),
            LogqlConfig::default(),
        )),
        sink: Arc::new(Kept::default()),
    }
}

#[tokio::test]
async fn a_failed_reload_keeps_the_rules_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.yml");
    std::fs::write(
        &path,
        "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n",
    )
    .expect("write");
    let cfg = RulerConfig {
        rule_files: vec![path.display().to_string()],
        ..RulerConfig::default()
    };
    let ctx = context();
    let ruler = ctx.ruler(cfg).await.expect("loads");
    assert_eq!(ruler.groups().len(), 1);
    std::fs::write(
        &path,
        "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up +\n",
    )
    .expect("write");
    let e = ruler.reload().await.expect_err("refused").to_string();
    assert!(e.starts_with(&format!("{}:4: ", path.display())), "{e}");
    let groups = ruler.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].spec.rules[0].expr, "up", "the old rules stay");
    std::fs::write(
        &path,
        "groups:\n  - name: b\n    rules:\n      - record: x\n        expr: up\n",
    )
    .expect("write");
    ruler.reload().await.expect("reloads");
    assert_eq!(ruler.groups()[0].key.name, "b");
}

#[tokio::test]
async fn a_changed_file_is_reloaded_on_the_next_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.yml");
    std::fs::write(&path, "groups:\n  - name: a\n    rules: []\n").expect("write");
    let cfg = RulerConfig {
        rule_files: vec![format!("{}/*.yml", dir.path().display())],
        reload_interval: Duration::from_millis(50),
        ..RulerConfig::default()
    };
    let ctx = context();
    let ruler = ctx.ruler(cfg).await.expect("loads");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(ruler.clone().run(stop_rx));
    // A new file matching the glob, and a bigger one in place of the old.
    std::fs::write(dir.path().join("s.yml"), "groups:\n  - name: s\n    rules: []\n").expect("write");
    std::fs::write(&path, "groups:\n  - name: a2\n    rules: []\n").expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = ruler.groups().iter().map(|g| g.key.name.clone()).collect();
        if names == ["a2", "s"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not reloaded: {names:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).expect("stop");
    running.await.expect("the watcher stops");
}

#[tokio::test]
async fn an_slo_spec_is_loaded_as_the_rule_file_it_generates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = "version: prometheus/v1\nservice: checkout\nslos:\n  - name: availability\n    objective: 99.9\n    sli:\n      events:\n        error_query: sum by (cluster) (rate(http_requests_total{code=~\"5..\"}[{{.window}}]))\n        total_query: sum by (cluster) (rate(http_requests_total[{{.window}}]))\n    alerting:\n      name: CheckoutAvailability\n";
    let path = dir.path().join("slo.yml");
    std::fs::write(&path, spec).expect("write");
    let cfg = RulerConfig {
        slo_files: vec![path.display().to_string()],
        ..RulerConfig::default()
    };
    assert!(cfg.enabled());
    let ctx = context();
    let ruler = ctx.ruler(cfg).await.expect("loads");
    let generated = crate::slo::generate(spec).expect("generates");
    let expected = file::parse("slo.yml", &generated, Checker::Promql(&ctx.engine))
        .await
        .expect("parses");
    let groups = ruler.groups();
    assert_eq!(groups.len(), expected.len());
    for (g, e) in groups.iter().zip(&expected) {
        assert_eq!(g.key.name, e.name);
        assert_eq!(g.key.file, path.display().to_string());
        let exprs: Vec<&str> = g.spec.rules.iter().map(|r| r.expr.as_str()).collect();
        let want: Vec<&str> = e.rules.iter().map(|r| r.expr.as_str()).collect();
        assert_eq!(exprs, want);
    }
    assert!(
        groups
            .iter()
            .flat_map(|g| &g.spec.rules)
            .any(|r| matches!(r.kind, file::RuleKind::Alerting { .. })),
        "the burn-rate alerts are loaded too"
    );

    // A bad spec is refused naming the file; the rules loaded before keep running.
    std::fs::write(&path, "version: prometheus/v1\nservice: checkout\nslos: []\nbogus: 1\n").expect("write");
    let e = ruler.reload().await.expect_err("refused").to_string();
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    assert_eq!(ruler.groups().len(), expected.len());
}

const LOGQL_RULES: &str = r#"groups:
  - name: logs
    interval: 30s
    rules:
      - record: service:log_errors:count5m
        expr: sum by (cluster, service_name) (count_over_time({service_name="api"} |= "error" [5m]))
      - alert: ApiErrorLogs
        expr: sum by (cluster) (count_over_time({service_name="api"} |= "error" [5m])) > 2
        for: 0s
        labels: {severity: page}
        annotations: {summary: "{{ $labels.cluster }} logged {{ $value }} errors"}
"#;

/// Log lines of the `api` service: three errors in c1, one in c2, the last at 590 s.
fn log_lines() -> Vec<tributary_storage::signals::LogRecord> {
    let line = |cluster: &str, s: i64, text: &str| {
        crate::logql::mem::record(
            &[("cluster", cluster), ("service_name", "api")],
            s * 1_000_000_000,
            text,
        )
    };
    vec![
        line("c1", 500, "GET / error: timeout"),
        line("c1", 540, "GET /a error: refused"),
        line("c1", 560, "GET /b ok"),
        line("c1", 590, "GET /c error: reset"),
        line("c2", 550, "GET / error: timeout"),
        line("c2", 560, "GET / ok"),
    ]
}

/// A ruler loading `text` as a LogQL rule file, its engines over `log_lines`.
async fn logql_ruler(text: &str) -> (Result<Arc<Ruler>>, Arc<Kept>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs.yml");
    std::fs::write(&path, text).expect("write");
    let cfg = RulerConfig {
        logql_rule_files: vec![path.display().to_string()],
        ..RulerConfig::default()
    };
    assert!(cfg.enabled());
    let mut ctx = context();
    ctx.logql = Arc::new(LogqlEngine::new(
        Arc::new(MemLogSource::new(log_lines())),
        LogqlConfig::default(),
    ));
    let ruler = ctx.ruler(cfg).await;
    (ruler, ctx.sink, dir)
}

#[tokio::test]
async fn a_logql_rule_file_loads_as_logql_groups() {
    let (ruler, _, dir) = logql_ruler(LOGQL_RULES).await;
    let groups = ruler.expect("loads").groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].spec.language, file::Language::Logql);
    assert_eq!(groups[0].key.file, dir.path().join("logs.yml").display().to_string());
    assert_eq!(groups[0].interval_ms, 30_000);
    let names: Vec<&str> = groups[0].spec.rules.iter().map(|r| r.name()).collect();
    assert_eq!(names, ["service:log_errors:count5m", "ApiErrorLogs"]);
}

#[tokio::test]
async fn a_logql_rule_file_with_a_log_query_or_a_bad_expr_is_refused_with_file_and_line() {
    let cases = [
        // A log (stream) query yields lines, not samples.
        (
            r#"{service_name="api"} |= "error""#,
            "a LogQL rule needs a metric query",
        ),
        (r#"sum(rate({service_name="api"}[5m])"#, "could not parse expression: "),
        // PromQL is not LogQL.
        ("up == 0", "could not parse expression: "),
        (r#"rate({service_name="api"}[5m]) >"#, "could not parse expression: "),
    ];
    for (expr, reason) in cases {
        let text = LOGQL_RULES.replace(
            r#"sum by (cluster) (count_over_time({service_name="api"} |= "error" [5m])) > 2"#,
            &format!("'{expr}'"),
        );
        let (ruler, _, dir) = logql_ruler(&text).await;
        let e = ruler.expect_err(expr).to_string();
        let at = format!(
            "{}:7: group \"logs\", rule 2: {reason}",
            dir.path().join("logs.yml").display()
        );
        assert!(e.starts_with(&at), "{expr}: {e}");
    }
}

#[tokio::test]
async fn a_file_named_as_both_promql_and_logql_rules_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.yml");
    std::fs::write(&path, "groups: []\n").expect("write");
    let cfg = RulerConfig {
        rule_files: vec![path.display().to_string()],
        logql_rule_files: vec![format!("{}/*.yml", dir.path().display())],
        ..RulerConfig::default()
    };
    let ctx = context();
    let e = ctx.ruler(cfg).await.expect_err("refused").to_string();
    assert!(
        e.contains("named by ruler.logql_rule_files and by ruler.rule_files"),
        "{e}"
    );
}

#[tokio::test]
async fn logql_recording_and_alerting_rules_evaluate_over_log_lines() {
    let (ruler, sink, _dir) = logql_ruler(LOGQL_RULES).await;
    let ruler = ruler.expect("loads");
    let group = ruler.groups()[0].clone();
    group.state.lock().rules[1].alerts.restored = true;
    group::evaluate(&group, &ruler.context(), 600_000).await;
    let state = group.state.lock();
    assert!(
        state.rules.iter().all(|r| r.last_result == Some(Ok(()))),
        "{:?}",
        state.rules
    );
    let mut written: Vec<(String, f64)> = sink.0.lock().iter().map(|s| (s.labels.to_string(), s.value)).collect();
    written.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = [
        (
            r#"ALERTS_FOR_STATE{alertname="ApiErrorLogs", cluster="c1", severity="page"}"#,
            600.0,
        ),
        (
            r#"ALERTS{alertname="ApiErrorLogs", alertstate="firing", cluster="c1", severity="page"}"#,
            1.0,
        ),
        (r#"service:log_errors:count5m{cluster="c1", service_name="api"}"#, 3.0),
        (r#"service:log_errors:count5m{cluster="c2", service_name="api"}"#, 1.0),
    ];
    let expected: Vec<(String, f64)> = expected.iter().map(|(l, v)| (l.to_string(), *v)).collect();
    assert_eq!(written, expected);
    let alert = state.rules[1].alerts.active.values().next().expect("an alert");
    assert_eq!(alert.annotations["summary"], "c1 logged 3 errors");
    assert_eq!(alert.state, alert::AlertState::Firing);
}

/// `method path` through the rules router: (status, content type, body).
async fn call(app: &axum::Router, method: &str, path: &str) -> (u16, String, String) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("answer");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn lokis_ruler_api_lists_logql_groups_in_yaml_and_refuses_changes() {
    let (ruler, _, dir) = logql_ruler(LOGQL_RULES).await;
    let app = router(Some(ruler.expect("loads")), tributary_storage::auth::Auth::default());
    let file = dir.path().join("logs.yml").display().to_string();
    let ns: String = form_urlencoded::byte_serialize(file.as_bytes()).collect();

    let (status, ctype, body) = call(&app, "GET", "/loki/api/v1/rules").await;
    assert_eq!((status, ctype.as_str()), (200, "application/yaml"), "{body}");
    let all: serde_yaml_ng::Value = serde_yaml_ng::from_str(&body).expect("YAML");
    let group = &all[file.as_str()][0];
    assert_eq!(group["name"].as_str(), Some("logs"), "{body}");
    assert_eq!(group["interval"].as_str(), Some("30s"), "{body}");
    assert_eq!(group["rules"][0]["record"].as_str(), Some("service:log_errors:count5m"));
    assert_eq!(group["rules"][1]["alert"].as_str(), Some("ApiErrorLogs"));
    assert_eq!(group["rules"][1]["labels"]["severity"].as_str(), Some("page"));
    assert!(
        group["rules"][1]["expr"].as_str().is_some_and(|e| e.ends_with("> 2")),
        "{body}"
    );
    // What it answers is a rule file the ruler loads again.
    let text = serde_yaml_ng::to_string(&serde_yaml_ng::Value::Mapping(
        [("groups".into(), all[file.as_str()].clone())].into_iter().collect(),
    ))
    .expect("YAML");
    let (again, _, _dir) = logql_ruler(&text).await;
    assert_eq!(again.expect("reloads").groups()[0].spec.rules.len(), 2);

    let (status, _, body) = call(&app, "GET", &format!("/loki/api/v1/rules/{ns}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("name: logs"), "{body}");
    let (status, _, body) = call(&app, "GET", &format!("/loki/api/v1/rules/{ns}/logs")).await;
    assert_eq!(status, 200, "{body}");
    let one: serde_yaml_ng::Value = serde_yaml_ng::from_str(&body).expect("YAML");
    assert_eq!(one["name"].as_str(), Some("logs"), "{body}");
    assert_eq!(one["rules"].as_sequence().map(Vec::len), Some(2), "{body}");

    let (status, _, body) = call(&app, "GET", "/loki/api/v1/rules/other.yml").await;
    assert_eq!((status, body.trim()), (404, "no rule groups found"));
    let (status, _, body) = call(&app, "GET", &format!("/loki/api/v1/rules/{ns}/other")).await;
    assert_eq!((status, body.trim()), (404, "group does not exist"));
    for (method, path) in [
        ("POST", format!("/loki/api/v1/rules/{ns}")),
        ("DELETE", format!("/loki/api/v1/rules/{ns}")),
        ("DELETE", format!("/loki/api/v1/rules/{ns}/logs")),
    ] {
        let (status, _, body) = call(&app, method, &path).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert!(body.contains("read-only"), "{body}");
    }

    // Loki's Prometheus-shaped listing (under `/prometheus/`) holds the LogQL rules and
    // filters them by type; Prometheus's own (`/api/v1/`) does not show them.
    let (status, _, body) = call(&app, "GET", "/prometheus/api/v1/rules?type=alert").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let rules = &v["data"]["groups"][0]["rules"];
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(rules[0]["name"], "ApiErrorLogs");
    assert_eq!(rules[0]["type"], "alerting");
    for path in ["/api/v1/rules", "/api/v1/alerts"] {
        let (status, _, body) = call(&app, "GET", path).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("ApiErrorLogs"), "{path} lists a LogQL rule: {body}");
    }
    // Without LogQL rules, Loki's "nothing here".
    let ctx = context();
    let ruler = ctx.ruler(RulerConfig::default()).await;
    let app = router(
        Some(ruler.expect("empty ruler")),
        tributary_storage::auth::Auth::default(),
    );
    let (status, _, body) = call(&app, "GET", "/loki/api/v1/rules").await;
    assert_eq!((status, body.trim()), (404, "no rule groups found"));
}

#[tokio::test]
async fn a_reload_ends_the_series_of_removed_groups_and_rules_with_staleness_markers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.yml");
    std::fs::write(
        &path,
        "groups:\n  - name: a\n    rules:\n      - record: kept\n        expr: vector(1)\n      - record: dropped\n        expr: vector(2)\n      - record: changed\n        expr: vector(3)\n  - name: b\n    rules:\n      - record: gone\n        expr: vector(4)\n",
    )
    .expect("write");
    let cfg = RulerConfig {
        rule_files: vec![path.display().to_string()],
        ..RulerConfig::default()
    };
    let ctx = context();
    let ruler = ctx.ruler(cfg).await.expect("loads");
    for g in ruler.groups() {
        group::evaluate(&g, &ruler.context(), 60_000).await;
    }
    assert_eq!(ctx.sink.0.lock().drain(..).count(), 4, "one sample per rule");

    // Group b goes, rule `dropped` goes, rule `changed` gets another expression.
    std::fs::write(
        &path,
        "groups:\n  - name: a\n    rules:\n      - record: kept\n        expr: vector(1)\n      - record: changed\n        expr: vector(5)\n",
    )
    .expect("write");
    let before = crate::http::params::now_ms();
    ruler.reload().await.expect("reloads");
    let written: Vec<RuleSample> = ctx.sink.0.lock().drain(..).collect();
    let names: Vec<String> = written
        .iter()
        .map(|s| s.labels.get("__name__").unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["changed", "dropped", "gone"], "{written:?}");
    for s in &written {
        assert_eq!(s.value.to_bits(), tributary_storage::types::STALE_NAN_BITS, "{s:?}");
        assert!(s.timestamp_ms >= before, "marked at the reload: {s:?}");
        assert_eq!(s.labels.get("cluster"), Some("fleet"), "the series as written: {s:?}");
    }

    // The carried-over rule writes on without a marker; the changed one starts afresh.
    let a = ruler.groups().into_iter().next().expect("group a");
    group::evaluate(&a, &ruler.context(), 120_000).await;
    let next: Vec<(String, f64)> = ctx
        .sink
        .0
        .lock()
        .drain(..)
        .map(|s| (s.labels.get("__name__").unwrap_or_default().to_string(), s.value))
        .collect();
    assert_eq!(next, [("kept".to_string(), 1.0), ("changed".to_string(), 5.0)]);

    // A reload that removes nothing marks nothing.
    ruler.reload().await.expect("reloads");
    assert!(ctx.sink.0.lock().is_empty());
}
