//! The fleet status page at `/`, loaded in headless Chromium after real remote-write traffic
//! from two clusters and one refused write: the clusters, their figures and the refusal's
//! reason are in the page the script built, and a screenshot is kept as a test artifact.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{TestServer, eventually, post_remote_write, remote_write_body, require_program};

/// Runs Chromium headless with `args` and `url`; its stdout. coreutils' `timeout` ends it
/// (failing the test) after 60 s.
fn chromium(program: &Path, profile: &Path, args: &[&str], url: &str) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(program)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.join("profile").display()))
        .args(args)
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium exited with {} (124: it did not finish within 60 s)",
        out.status
    );
    String::from_utf8(out.stdout).expect("chromium's output is UTF-8")
}

/// The `<tr data-cluster="name">` row of the DOM.
fn row<'a>(dom: &'a str, cluster: &str) -> Option<&'a str> {
    let start = dom.find(&format!("<tr data-cluster=\"{cluster}\">"))?;
    let end = dom[start..].find("</tr>")?;
    Some(&dom[start..start + end])
}

/// The text of the `data-field="name"` cell of a row.
fn field<'a>(row: &'a str, name: &str) -> &'a str {
    let at = row
        .find(&format!("data-field=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} cell in {row}"));
    let open = at + row[at..].find('>').expect("cell opens") + 1;
    let close = open + row[open..].find("</td>").expect("cell closes");
    &row[open..close]
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("e2e-artifacts")
}

#[tokio::test]
async fn the_fleet_page_shows_each_cluster_its_figures_and_refusals() {
    let chromium_bin = require_program("chromium", "chromium");
    let server = TestServer::start().await;
    let now = chrono::Utc::now().timestamp_millis();
    let write = server.url("/api/v1/write");
    // alpha: two series, one sample each, named by their cluster label.
    let alpha = remote_write_body(&[
        (
            vec![("__name__", "up"), ("cluster", "alpha"), ("job", "a")],
            vec![(now, 1.0)],
        ),
        (
            vec![("__name__", "up"), ("cluster", "alpha"), ("job", "b")],
            vec![(now, 1.0)],
        ),
    ]);
    assert_eq!(post_remote_write(&write, alpha, &[]).await.0, 204);
    // beta: one series of three samples, named by the request header.
    let beta = remote_write_body(&[(
        vec![("__name__", "up"), ("job", "c")],
        vec![(now - 2000, 1.0), (now - 1000, 1.0), (now, 1.0)],
    )]);
    assert_eq!(
        post_remote_write(&write, beta, &[("X-Tributary-Cluster", "beta")])
            .await
            .0,
        204
    );
    // beta again, with a body that is not snappy: refused whole.
    let (status, refusal) = post_remote_write(
        &write,
        b"not a snappy body".to_vec(),
        &[("X-Tributary-Cluster", "beta")],
    )
    .await;
    assert_eq!(status, 400, "{refusal}");
    // gamma: a trace of three spans over OTLP/HTTP JSON, named by its resource.
    let ns = now * 1_000_000;
    let spans: Vec<Value> = (1..=3)
        .map(|i| {
            serde_json::json!({"traceId": "ab".repeat(16), "spanId": format!("{i:016x}"), "name": "op",
                "startTimeUnixNano": ns.to_string(), "endTimeUnixNano": (ns + 1000).to_string()})
        })
        .collect();
    let export = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "k8s.cluster.name", "value": {"stringValue": "gamma"}}]}, "scopeSpans": [{"spans": spans}]}]});
    let r = server
        .client()
        .post(server.url("/v1/traces"))
        .json(&export)
        .send()
        .await
        .expect("OTLP traces");
    assert_eq!(r.status().as_u16(), 200);

    // The JSON the page reads.
    let json: Value = reqwest::get(server.url("/api/v1/status/fleet"))
        .await
        .expect("fleet status")
        .json()
        .await
        .expect("fleet json");
    let clusters = json["data"]["clusters"]["clusters"].as_array().expect("clusters");
    let names: Vec<&str> = clusters.iter().filter_map(|c| c["cluster"].as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "gamma"], "{json}");
    assert_eq!(
        (&clusters[2]["spans_total"], &clusters[2]["samples_total"]),
        (&serde_json::json!(3), &serde_json::json!(0)),
        "{json}"
    );
    assert_eq!(clusters[0]["samples_total"], 2);
    assert_eq!(clusters[0]["active_series"], 2);
    assert_eq!(clusters[1]["samples_total"], 3);
    assert_eq!(clusters[1]["active_series"], 1);
    assert_eq!(clusters[1]["protocols"], serde_json::json!(["remote_write_1"]));
    let rejected = &clusters[1]["rejected"][0];
    assert_eq!(rejected["reason"], "invalid_input", "{json}");
    assert_eq!(rejected["items"], 1);
    let reason_text = rejected["last_text"].as_str().expect("reason text").to_string();
    assert!(
        !reason_text.is_empty() && refusal.contains(&reason_text),
        "{reason_text:?} vs {refusal:?}"
    );
    assert!(
        json["data"]["head"]["wal_bytes"].as_u64().expect("wal bytes") > 0,
        "{json}"
    );
    let tables: Vec<&str> = json["data"]["storage"]
        .as_array()
        .expect("storage")
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    assert!(tables.contains(&"metrics") && tables.contains(&"logs"), "{tables:?}");

    // The page, after its script ran.
    let tmp = tempfile::tempdir().expect("tempdir");
    let page = server.url("/");
    let dom = eventually(Duration::from_secs(90), "the page to list both clusters", || {
        let dom = chromium(&chromium_bin, tmp.path(), &["--dump-dom"], &page);
        async move { (row(&dom, "alpha").is_some() && row(&dom, "gamma").is_some()).then_some(dom) }
    })
    .await;
    let alpha = row(&dom, "alpha").expect("alpha row");
    assert_eq!(field(alpha, "samples_total"), "2");
    assert_eq!(field(alpha, "active_series"), "2");
    assert_eq!(field(alpha, "samples_1m"), "0.0333", "2 samples over 60 s");
    assert_eq!(field(alpha, "protocols"), "remote_write_1");
    assert_eq!(field(alpha, "rejected"), "none");
    assert!(field(alpha, "last_sample").contains(" s ago"), "{alpha}");
    assert_eq!(field(alpha, "last_log"), "never");
    let beta = row(&dom, "beta").expect("beta row");
    assert_eq!(field(beta, "samples_total"), "3");
    assert_eq!(field(beta, "active_series"), "1");
    assert_eq!(field(beta, "samples_1m"), "0.05", "3 samples over 60 s");
    let rejected = field(beta, "rejected");
    assert!(rejected.contains("data-reason=\"invalid_input\""), "{rejected}");
    assert!(rejected.contains("invalid_input: 1"), "{rejected}");
    let shown_text: String = reason_text
        .chars()
        .take(20)
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect();
    let shown: String = rejected.chars().filter(|c| c.is_alphanumeric() || *c == ' ').collect();
    assert!(shown.contains(&shown_text), "{shown_text:?} not in {rejected}");
    let gamma = row(&dom, "gamma").expect("gamma row");
    assert_eq!(field(gamma, "spans_total"), "3");
    assert_eq!(field(gamma, "spans_1m"), "0.05", "3 spans over 60 s");
    assert_eq!(field(gamma, "protocols"), "otlp");
    assert!(field(gamma, "last_span").contains(" s ago"), "{gamma}");
    assert_eq!(field(alpha, "last_span"), "never");
    assert!(dom.contains("data-table=\"metrics\""), "storage table missing");
    assert!(dom.contains("href=\"api/v1/query_range\""), "API links missing");

    // The screenshot, kept as a test artifact.
    let dir = artifacts();
    std::fs::create_dir_all(&dir).expect("artifact dir");
    let png = dir.join("fleet_page.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        &chromium_bin,
        tmp.path(),
        &[&format!("--screenshot={}", png.display()), "--window-size=1280,900"],
        &page,
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"),
        "{} bytes",
        bytes.len()
    );
}

/// With auth on, the fleet JSON (it names every cluster) needs a token reading `*`: none is
/// 401, a token reading one cluster 403, a token reading `*` 200; the page itself is served.
#[tokio::test]
async fn the_fleet_status_needs_a_token_reading_every_cluster() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = crate::harness::write_file(
        tmp.path(),
        "tributary.toml",
        "[auth]\nrequired = true\n\n[[auth.tokens]]\ntoken = \"east-reader\"\nread = [\"east\"]\n\n\
         [[auth.tokens]]\ntoken = \"fleet-reader\"\nread = [\"*\"]\n",
    );
    let server = TestServer::start_with(&["--config", &config.to_string_lossy()]).await;
    let client = reqwest::Client::new();
    let status = |token: Option<&'static str>| {
        let mut req = client.get(server.url("/api/v1/status/fleet"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.expect("fleet status").status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("east-reader")).await, 403);
    assert_eq!(status(Some("fleet-reader")).await, 200);
    let page = client.get(server.url("/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("page text").contains("api/v1/status/fleet"));
}
