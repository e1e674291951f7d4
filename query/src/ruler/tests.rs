use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use super::*;
use crate::QueryConfig;
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
    sink: Arc<Kept>,
}

/// An engine over no data and a sink keeping what it is given.
fn context() -> Ctx {
    Ctx {
        engine: Arc::new(Engine::new(
            Arc::new(VecSource::new(Vec::new())),
            QueryConfig::default(),
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
    let ruler = Ruler::new(cfg, ctx.engine.clone(), ctx.sink.clone(), &mut Registry::default())
        .await
        .expect("loads");
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
    let ruler = Ruler::new(cfg, ctx.engine.clone(), ctx.sink.clone(), &mut Registry::default())
        .await
        .expect("loads");
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
    let ruler = Ruler::new(cfg, ctx.engine.clone(), ctx.sink.clone(), &mut Registry::default())
        .await
        .expect("loads");
    let generated = crate::slo::generate(spec).expect("generates");
    let expected = file::parse("slo.yml", &generated, &ctx.engine).await.expect("parses");
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
    let ruler = Ruler::new(cfg, ctx.engine.clone(), ctx.sink.clone(), &mut Registry::default())
        .await
        .expect("loads");
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
