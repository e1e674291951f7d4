//! The `ruler` role on loopback: an ingester, a ruler reading it through `--ingesters` and
//! writing rule output back to it by remote-write with a fleet token (`write = "*"`), and a
//! querier to read the results. Recording-rule output keeps its input's `cluster` (or gets
//! `fleet`) and becomes readable within seconds; the ruler's APIs show its rules healthy and
//! its alert firing; after `kill -9` it comes back with its rules and the alert's active-since
//! time restored from `ALERTS_FOR_STATE`, read through the ingester. A ruler whose token the
//! ingester refuses keeps running and shows the refusal as each rule's `lastError`; a token
//! bound to one cluster still cannot write another's series.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{TestServer, eventually, post_remote_write, remote_write_body, write_file};

const AUTH: &str = r#"
[auth]
required = true
[[auth.tokens]]
token = "east-token"
name = "east"
write = "east"
[[auth.tokens]]
token = "ruler-token"
name = "ruler"
write = "*"
read = ["*"]
[[auth.tokens]]
token = "reader-token"
name = "reader"
read = ["*"]
admin = true
"#;

const RULES: &str = r#"groups:
  - name: role
    rules:
      - record: cluster:errors:max
        expr: max by (cluster) (errors)
      - record: fleet:errors:sum
        expr: sum(errors)
      - alert: ErrorsHigh
        expr: errors > 5
        for: 2s
"#;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// GET with the reader's token; `None` unless the answer is 200 JSON.
async fn get(s: &TestServer, path: &str, params: &[(&str, String)]) -> Option<Value> {
    let r = reqwest::Client::new()
        .get(s.url(path))
        .query(params)
        .bearer_auth("reader-token")
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// The instant vector of `query` at now, as (metric, value) pairs.
async fn vector(s: &TestServer, query: &str) -> Vec<(Value, String)> {
    let v = get(
        s,
        "/api/v1/query",
        &[
            ("query", query.into()),
            ("time", (now_ms() as f64 / 1000.0).to_string()),
        ],
    )
    .await
    .unwrap_or_else(|| panic!("query {query} failed"));
    v["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The ErrorsHigh alert of the ruler's `/api/v1/alerts`, once it fires.
async fn firing(ruler: &TestServer) -> Value {
    eventually(Duration::from_secs(20), "ErrorsHigh firing on the ruler", || async {
        get(ruler, "/api/v1/alerts", &[]).await?["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "ErrorsHigh" && a["state"] == "firing")
            .cloned()
    })
    .await
}

/// The ruler's rules, once every one has been evaluated.
async fn evaluated_rules(ruler: &TestServer) -> Vec<Value> {
    eventually(Duration::from_secs(20), "every rule evaluated", || async {
        let v = get(ruler, "/api/v1/rules", &[]).await?;
        let rules = v["data"]["groups"][0]["rules"].as_array()?.clone();
        rules.iter().all(|r| r["health"] != "unknown").then_some(rules)
    })
    .await
}

fn ruler_config(dir: &Path, name: &str, ingester: &TestServer, rules: &Path, write_token: &str) -> String {
    let read_token = write_file(dir, "read.token", "ruler-token\n");
    let write_token = write_file(dir, &format!("{name}.token"), &format!("{write_token}\n"));
    let cfg = write_file(
        dir,
        &format!("{name}.toml"),
        &format!(
            "{AUTH}\n[query]\ningester_token_file = {:?}\n[ruler]\nrule_files = [{:?}]\nevaluation_interval = \"1s\"\n\
             for_grace_period = \"1s\"\nremote_write_url = {:?}\nremote_write_token_file = {:?}\n",
            read_token.display().to_string(),
            rules.display().to_string(),
            ingester.url("/api/v1/write"),
            write_token.display().to_string(),
        ),
    );
    cfg.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ruler_role_writes_to_the_ingest_tier_survives_kill9_and_shows_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = format!("file://{}", dir.path().join("store").display());
    let auth = write_file(dir.path(), "auth.toml", AUTH).display().to_string();
    let rules = write_file(dir.path(), "rules.yml", RULES);
    let ingester = TestServer::start_with(&["--role", "ingest", "--storage", &storage, "--config", &auth]).await;
    let ingesters = format!("http://127.0.0.1:{}", ingester.port);

    // East's samples, and a series of east's token claiming to be west's.
    let body = remote_write_body(&[
        (
            vec![("__name__", "errors"), ("cluster", "east"), ("instance", "a")],
            vec![(now_ms(), 10.0)],
        ),
        (
            vec![("__name__", "spoof_probe"), ("cluster", "west")],
            vec![(now_ms(), 1.0)],
        ),
    ]);
    let (status, text) = post_remote_write(
        &ingester.url("/api/v1/write"),
        body,
        &[("Authorization", "Bearer east-token")],
    )
    .await;
    assert_eq!(status, 204, "{text}");

    let good = ruler_config(dir.path(), "ruler", &ingester, &rules, "ruler-token");
    let bad = ruler_config(dir.path(), "bad-ruler", &ingester, &rules, "not-a-token");
    let ruler_args = |cfg: &str| {
        vec![
            "--role".to_string(),
            "ruler".into(),
            "--storage".into(),
            storage.clone(),
            "--config".into(),
            cfg.to_string(),
            "--ingesters".into(),
            ingesters.clone(),
        ]
    };
    let args = ruler_args(&good);
    let mut ruler = TestServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let args = ruler_args(&bad);
    let refused = TestServer::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let querier_cfg = write_file(
        dir.path(),
        "querier.toml",
        &format!(
            "{AUTH}\n[query]\ningester_token_file = {:?}\n",
            dir.path().join("read.token").display().to_string()
        ),
    );
    let querier = TestServer::start_with(&[
        "--role",
        "query",
        "--storage",
        &storage,
        "--config",
        querier_cfg.to_str().expect("utf-8"),
        "--ingesters",
        &ingesters,
    ])
    .await;

    // The recorded series reach the ingester (read back through a querier): east's cluster
    // kept, the aggregate under `fleet`.
    let recorded = eventually(Duration::from_secs(20), "recording-rule output readable", || async {
        let max = vector(&querier, "cluster:errors:max").await;
        let sum = vector(&querier, "fleet:errors:sum").await;
        (!max.is_empty() && !sum.is_empty()).then_some((max, sum))
    })
    .await;
    assert_eq!(recorded.0.len(), 1, "{recorded:?}");
    assert_eq!(recorded.0[0].0["cluster"], "east", "{recorded:?}");
    assert_eq!(recorded.0[0].1, "10", "{recorded:?}");
    assert_eq!(recorded.1[0].0["cluster"], "fleet", "{recorded:?}");
    assert_eq!(recorded.1[0].1, "10", "{recorded:?}");

    // A cluster-bound token cannot write another cluster's series: east's stamp wins.
    let spoof = vector(&querier, "spoof_probe").await;
    assert_eq!(spoof.len(), 1, "{spoof:?}");
    assert_eq!(spoof[0].0["cluster"], "east", "{spoof:?}");
    assert_eq!(spoof[0].0["exported_cluster"], "west", "{spoof:?}");

    // The ruler's own APIs: every rule healthy, the alert firing.
    let listed = evaluated_rules(&ruler).await;
    assert_eq!(listed.len(), 3);
    for r in &listed {
        assert_eq!(r["health"], "ok", "{r}");
    }
    let before = firing(&ruler).await;
    assert_eq!(before["labels"]["cluster"], "east", "{before}");
    assert!(get(&ruler, "/prometheus/api/v1/rules", &[]).await.is_some());
    let metrics = reqwest::get(ruler.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("tributary_ruler_rule_evaluations_total{"),
        "ruler counters on /metrics"
    );
    // Reload (admin) and the status page's figures answer as on any role.
    let reload = reqwest::Client::new()
        .post(ruler.url("/-/reload"))
        .bearer_auth("reader-token")
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status(), 200, "{}", reload.text().await.unwrap_or_default());
    let fleet = get(&ruler, "/api/v1/status/fleet", &[]).await.expect("fleet status");
    assert_eq!(fleet["data"]["role"], "ruler", "{fleet}");
    let apis = fleet["data"]["apis"].as_array().expect("apis");
    assert!(
        apis.contains(&"/api/v1/rules".into()) && !apis.contains(&"/api/v1/query".into()),
        "{fleet}"
    );
    // It stores nothing and serves no queries.
    let query = reqwest::Client::new()
        .get(ruler.url("/api/v1/query?query=1"))
        .bearer_auth("reader-token")
        .send()
        .await
        .expect("GET");
    assert_eq!(query.status(), 404);
    let write = post_remote_write(
        &ruler.url("/api/v1/write"),
        remote_write_body(&[]),
        &[("Authorization", "Bearer ruler-token")],
    )
    .await;
    assert_eq!(write.0, 404, "{}", write.1);

    // kill -9 and back: the rules load again, the alert fires with its original active-since
    // time (restored from ALERTS_FOR_STATE in the ingester's head) and output resumes.
    ruler.kill9();
    let restarted = now_ms();
    ruler.spawn().await;
    assert_eq!(
        get(&ruler, "/api/v1/rules", &[]).await.expect("rules")["data"]["groups"][0]["rules"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let after = firing(&ruler).await;
    assert_eq!(after["activeAt"], before["activeAt"], "before {before}, after {after}");
    eventually(
        Duration::from_secs(20),
        "recording output written after the restart",
        || async {
            let t = vector(&querier, "timestamp(fleet:errors:sum)").await;
            let newest: f64 = t.first()?.1.parse().ok()?;
            (newest * 1000.0 >= restarted as f64).then_some(())
        },
    )
    .await;
    for r in evaluated_rules(&ruler).await {
        assert_eq!(r["health"], "ok", "{r}");
    }

    // The ruler whose token the ingester does not know: each rule shows the 401 and its reason.
    for r in evaluated_rules(&refused).await {
        let error = r["lastError"].as_str().unwrap_or_default();
        assert_eq!(r["health"], "err", "{r}");
        assert!(
            error.contains("401") && error.contains("unknown token") && error.contains(&ingester.url("/api/v1/write")),
            "{r}"
        );
    }
    let healthy = reqwest::get(refused.url("/-/healthy")).await.expect("healthy");
    assert_eq!(healthy.status(), 200, "the refused ruler keeps running");

    // Without the ingester, an evaluation would miss its samples: it fails naming the ingester
    // (not a write: the read fails first) instead of recording a wrong value.
    let ingester_addr = format!("127.0.0.1:{}", ingester.port);
    let mut ingester = ingester;
    ingester.kill9();
    eventually(
        Duration::from_secs(20),
        "rules failing on the missing ingester",
        || async {
            let v = get(&ruler, "/api/v1/rules", &[]).await?;
            let rules = v["data"]["groups"][0]["rules"].as_array()?.clone();
            rules
                .iter()
                .all(|r| {
                    let error = r["lastError"].as_str().unwrap_or_default();
                    r["health"] == "err" && error.contains(&ingester_addr) && !error.contains("writing")
                })
                .then_some(())
        },
    )
    .await;
}
