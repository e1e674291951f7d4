//! The notifier against small receivers served by the test (batching, fan-out, a dead or hung
//! Alertmanager, a full queue) and against a real Alertmanager (Debian `prometheus-alertmanager`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::{Alert, MAX_BATCH, Notifier, NotifierMetrics, QUEUE_CAPACITY, client};
use crate::ruler::RulerConfig;

/// The posts a receiver got, each a JSON array of alerts.
type Posts = Arc<Mutex<Vec<Vec<serde_json::Value>>>>;

/// A receiver of `POST /api/v2/alerts` on loopback. It records each post, then answers once
/// `open` holds true (false: it hangs, like a stuck Alertmanager).
async fn receiver(open: bool) -> (String, Posts, watch::Sender<bool>) {
    let posts: Posts = Arc::default();
    let (gate, _) = watch::channel(open);
    let app = axum::Router::new()
        .route(
            "/api/v2/alerts",
            post(
                |State((posts, gate)): State<(Posts, watch::Sender<bool>)>,
                 axum::Json(batch): axum::Json<Vec<serde_json::Value>>| async move {
                    posts.lock().push(batch);
                    let mut open = gate.subscribe();
                    let _ = open.wait_for(|o| *o).await;
                    "ok"
                },
            ),
        )
        .with_state((posts.clone(), gate.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posts, gate)
}

fn alert(name: &str) -> Alert {
    Alert {
        labels: BTreeMap::from([("alertname".into(), name.into()), ("cluster".into(), "c1".into())]),
        annotations: BTreeMap::from([("summary".into(), format!("{name} fired"))]),
        starts_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        ends_at: None,
        generator_url: "http://tributary.test/graph?g0.expr=up".into(),
    }
}

fn alerts(range: std::ops::Range<usize>) -> Vec<Alert> {
    range.map(|i| alert(&format!("a{i}"))).collect()
}

/// The `alertname`s a receiver got, in order.
fn names(posts: &Posts) -> Vec<String> {
    posts
        .lock()
        .iter()
        .flatten()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("a{i}")).collect()
}

/// Polls `cond` until it holds; fails naming `what` after `within`.
async fn eventually(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_alertmanager_gets_every_alert_in_batches() {
    let (a, posts_a, _gate_a) = receiver(true).await;
    let (b, posts_b, _gate_b) = receiver(true).await;
    let metrics = NotifierMetrics::default();
    let n = Notifier::new(
        vec![a.clone(), format!("{b}/")],
        with_timeout(Duration::from_secs(5)),
        metrics.clone(),
    );
    n.send(alerts(0..100));
    n.send(alerts(100..150));
    n.flush().await;
    for (url, posts) in [(&a, &posts_a), (&b, &posts_b)] {
        assert_eq!(names(posts), expected(0..150), "{url}");
        assert!(posts.lock().iter().all(|p| !p.is_empty() && p.len() <= MAX_BATCH));
        assert!(posts.lock().len() >= 3, "150 alerts take at least three posts");
    }
    assert_eq!(metrics.sent(&a), 150);
    assert_eq!(metrics.sent(&format!("{b}/")), 150);
    assert_eq!(metrics.errors(&a), 0);
    // Alertmanager's postable alert: its field names, no `endsAt` while firing.
    let first = posts_a.lock()[0][0].clone();
    assert_eq!(
        first,
        serde_json::json!({
            "labels": {"alertname": "a0", "cluster": "c1"},
            "annotations": {"summary": "a0 fired"},
            "startsAt": "2023-11-14T22:13:20Z",
            "generatorURL": "http://tributary.test/graph?g0.expr=up",
        })
    );
    let mut resolved = alert("r");
    resolved.ends_at = Some(chrono::DateTime::from_timestamp(1_700_000_060, 0).unwrap());
    n.send(vec![resolved]);
    n.flush().await;
    assert_eq!(posts_b.lock().last().unwrap()[0]["endsAt"], "2023-11-14T22:14:20Z");
}

#[tokio::test]
async fn a_dead_or_hung_alertmanager_does_not_hold_up_the_others() {
    let (good, posts_good, _gate_good) = receiver(true).await;
    let (hung, posts_hung, _gate_hung) = receiver(false).await;
    // Port 1: nothing listens there and no unprivileged process (another test) can bind it, so
    // the connection is refused every time (a port freed by this test could be taken again).
    let dead = "http://127.0.0.1:1".to_string();
    let metrics = NotifierMetrics::default();
    let n = Notifier::new(
        vec![hung.clone(), dead.clone(), good.clone()],
        with_timeout(Duration::from_secs(60)),
        metrics.clone(),
    );
    n.send(alerts(0..100));
    n.send(alerts(100..130));
    eventually(
        "the good Alertmanager to get all 130 alerts",
        Duration::from_secs(10),
        || names(&posts_good).len() == 130,
    )
    .await;
    assert_eq!(names(&posts_good), expected(0..130));
    eventually(
        "the dead Alertmanager's failures to be counted",
        Duration::from_secs(10),
        || metrics.errors(&dead) == 130,
    )
    .await;
    // The hung one is still on its first batch (whose request may arrive after the others').
    eventually("the hung Alertmanager's first batch", Duration::from_secs(10), || {
        posts_hung.lock().len() == 1
    })
    .await;
    // A batch counts as sent once its answer is read, after the receiver has kept it.
    eventually(
        "the good Alertmanager's batches counted",
        Duration::from_secs(10),
        || metrics.sent(&good) == 130,
    )
    .await;
    assert_eq!(posts_hung.lock().len(), 1);
    assert_eq!(metrics.sent(&hung), 0);
    assert_eq!(metrics.sent(&dead), 0);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest() {
    let (url, posts, gate) = receiver(false).await;
    let metrics = NotifierMetrics::default();
    let n = Notifier::new(
        vec![url.clone()],
        with_timeout(Duration::from_secs(60)),
        metrics.clone(),
    );
    n.send(alerts(0..1));
    // Once the first post is in flight, everything else waits in the queue.
    eventually("the first post", Duration::from_secs(10), || posts.lock().len() == 1).await;
    n.send(alerts(1..QUEUE_CAPACITY - 9));
    n.send(alerts(QUEUE_CAPACITY - 9..QUEUE_CAPACITY + 51));
    assert_eq!(metrics.dropped(&url), 50);
    gate.send_replace(true);
    n.flush().await;
    let mut want = expected(0..1);
    want.extend(expected(51..QUEUE_CAPACITY + 51));
    assert_eq!(names(&posts), want);
    assert_eq!(metrics.sent(&url), QUEUE_CAPACITY as u64 + 1);
}

#[tokio::test]
async fn stopping_sends_what_is_queued_first() {
    let (url, posts, _gate) = receiver(true).await;
    let n = Notifier::new(
        vec![url],
        with_timeout(Duration::from_secs(5)),
        NotifierMetrics::default(),
    );
    n.send(alerts(0..70));
    let weak = Arc::downgrade(&n);
    drop(n);
    assert!(weak.upgrade().is_none());
    eventually(
        "the queued alerts after the notifier was dropped",
        Duration::from_secs(10),
        || names(&posts).len() == 70,
    )
    .await;
}

/// The path of `program`, or a failed test saying how to install it.
fn require_program(program: &str, debian_package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{program} is required by this test: apt-get install -y {debian_package} (scripts/test.sh installs it)"
            )
        })
}

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_real_alertmanager_shows_the_alert_and_forgets_it_once_resolved() {
    let bin = require_program("prometheus-alertmanager", "prometheus-alertmanager");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = free_port();
    let _am = Child(
        std::process::Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus-alertmanager"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.get(format!("{url}/-/ready")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ => assert!(Instant::now() < deadline, "Alertmanager on {url} never became ready"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let active = || async {
        let all: Vec<serde_json::Value> = client
            .get(format!("{url}/api/v2/alerts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == "TributaryNotifierTest")
            .collect::<Vec<_>>()
    };

    let metrics = NotifierMetrics::default();
    let n = Notifier::new(vec![url.clone()], with_timeout(Duration::from_secs(5)), metrics.clone());
    let starts_at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 60, 0).unwrap();
    let mut firing = alert("TributaryNotifierTest");
    firing.starts_at = starts_at;
    firing.labels.insert("severity".into(), "page".into());
    n.send(vec![firing.clone()]);
    n.flush().await;
    assert_eq!(metrics.sent(&url), 1);
    assert_eq!(metrics.errors(&url), 0);
    let got = active().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let labels: BTreeMap<String, String> = serde_json::from_value(got[0]["labels"].clone()).unwrap();
    let annotations: BTreeMap<String, String> = serde_json::from_value(got[0]["annotations"].clone()).unwrap();
    assert_eq!(labels, firing.labels);
    assert_eq!(annotations, firing.annotations);
    let seen: chrono::DateTime<chrono::Utc> = got[0]["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(seen, starts_at);
    assert_eq!(got[0]["status"]["state"], "active");
    assert_eq!(got[0]["generatorURL"], firing.generator_url);

    let mut resolved = firing;
    resolved.ends_at = Some(chrono::Utc::now() - chrono::Duration::seconds(1));
    n.send(vec![resolved]);
    n.flush().await;
    assert_eq!(metrics.sent(&url), 2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !active().await.is_empty() {
        assert!(Instant::now() < deadline, "the resolved alert is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_are_exposed_by_alertmanager() {
    let (url, _posts, _gate) = receiver(true).await;
    let metrics = NotifierMetrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let n = Notifier::new(vec![url.clone()], with_timeout(Duration::from_secs(5)), metrics);
    n.send(alerts(0..3));
    n.flush().await;
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        format!("tributary_ruler_notifications_sent_total{{alertmanager=\"{url}\"}} 3"),
        format!("tributary_ruler_notifications_queue_length{{alertmanager=\"{url}\"}} 0"),
        format!("tributary_ruler_notifications_latency_seconds_count{{alertmanager=\"{url}\"}} 1"),
        format!("tributary_ruler_notifications_errors_total{{alertmanager=\"{url}\"}} 0"),
        format!("tributary_ruler_notifications_dropped_total{{alertmanager=\"{url}\"}} 0"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

/// The notifier's client with this per-request timeout and no TLS options.
fn with_timeout(timeout: Duration) -> reqwest::Client {
    client(&RulerConfig {
        notification_timeout: timeout,
        ..RulerConfig::default()
    })
    .expect("builds")
}

#[test]
fn bad_tls_files_are_refused_naming_the_option_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let refused = |cfg: RulerConfig| client(&cfg).expect_err("refused");
    let e = refused(RulerConfig {
        alertmanager_ca_file: Some(missing.clone()),
        ..RulerConfig::default()
    });
    assert!(
        e.starts_with("ruler.alertmanager_ca_file ") && e.contains("missing.pem"),
        "{e}"
    );
    let e = refused(RulerConfig {
        alertmanager_ca_file: Some(empty.clone()),
        ..RulerConfig::default()
    });
    assert!(e.contains("empty.pem: no PEM certificate"), "{e}");
    let e = refused(RulerConfig {
        alertmanager_cert_file: Some(empty.clone()),
        alertmanager_key_file: Some(empty),
        ..RulerConfig::default()
    });
    assert!(e.starts_with("ruler.alertmanager_cert_file "), "{e}");
    let lone = RulerConfig {
        alertmanager_cert_file: Some(missing),
        ..RulerConfig::default()
    };
    assert!(lone.validate().expect_err("refused").contains("go together"));
}
