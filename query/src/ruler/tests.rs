use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use super::*;
use crate::QueryConfig;
use crate::test_source::VecSource;

/// Keeps what it is given.
#[derive(Debug, Default)]
struct Kept(Mutex<Vec<RuleSample>>);

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
