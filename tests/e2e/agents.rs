//! The agent configurations in `deploy/agents/`: the ones that run here run for real against
//! Tributary with a token (Debian's Prometheus, after `promtool check config`; vmagent from
//! Debian's `victoria-metrics`), and their samples are queried back; the ones that cannot be
//! installed here (the OpenTelemetry Collector, Grafana Alloy, Promtail, Fluent Bit, and the
//! remote-write 2.0 file, which needs Prometheus ≥ 2.54) are checked for the ports, paths and
//! auth headers they name against the listeners' defaults and the routes Tributary serves.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Proc, TestServer, eventually, free_port, require_program, result, write_file};

fn agent_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/agents").join(name)
}

fn read_agent(name: &str) -> String {
    std::fs::read_to_string(agent_file(name)).unwrap_or_else(|e| panic!("deploy/agents/{name}: {e}"))
}

/// A shipped file with its placeholder host and token swapped for the test's.
fn localised(text: &str, port: u16, token: &str) -> String {
    let swapped = text
        .replace("http://tributary.example:9201", &format!("http://127.0.0.1:{port}"))
        .replace("TRIBUTARY_TOKEN", token);
    assert_ne!(swapped, text, "the file names neither the placeholder host nor token");
    swapped
}

fn tributary_config(dir: &Path) -> String {
    let text = r#"[auth]
required = true

[[auth.tokens]]
token = "prom-writer"
write = "prom"

[[auth.tokens]]
token = "vm-writer"
write = "vm"

[[auth.tokens]]
token = "reader"
read = ["*"]
"#;
    write_file(dir, "tributary.toml", text).to_string_lossy().into_owned()
}

/// `count by (cluster) (up{job=...})` as the reader sees it.
async fn up_clusters(s: &TestServer, job: &str) -> Vec<String> {
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[("query", format!("count by (cluster) (up{{job=\"{job}\"}})"))])
        .bearer_auth("reader")
        .send()
        .await
        .expect("query");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    result(&v)
        .iter()
        .map(|r| r["metric"]["cluster"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_vmagent_configs_write_with_their_tokens() {
    let prometheus = require_program("prometheus", "prometheus");
    let promtool = require_program("promtool", "prometheus");
    require_program("vmagent", "victoria-metrics");
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(&["--config", &tributary_config(tmp.path())]).await;

    // The shipped Prometheus file as it is, then with a scrape of Prometheus itself and the
    // test's address and token.
    let out = Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(agent_file("prometheus-remote-write.yml"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prom_port = free_port();
    let text = localised(&read_agent("prometheus-remote-write.yml"), s.port, "prom-writer")
        .replace("global:\n", "global:\n  scrape_interval: 1s\n")
        .replace("queue_config:\n", "queue_config:\n      batch_send_deadline: 1s\n")
        + &format!(
            "scrape_configs:\n  - job_name: prometheus\n    static_configs: [{{targets: [\"127.0.0.1:{prom_port}\"]}}]\n"
        );
    let cfg = write_file(tmp.path(), "prometheus.yml", &text);
    let out = Command::new(&promtool)
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _prom = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // The shipped vmagent script, scraping vmagent itself.
    let vm_port = free_port();
    let scrape = write_file(
        tmp.path(),
        "vmagent-scrape.yml",
        &format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: vmagent\n    static_configs: [{{targets: [\"127.0.0.1:{vm_port}\"]}}]\n"
        ),
    );
    let _vmagent = Proc(
        Command::new("sh")
            .arg(agent_file("vmagent.sh"))
            .env("TRIBUTARY_URL", format!("http://127.0.0.1:{}", s.port))
            .env("TRIBUTARY_TOKEN", "vm-writer")
            .env("VMAGENT_SCRAPE", &scrape)
            .env("VMAGENT_DATA", tmp.path().join("vmagent"))
            .env("VMAGENT_LISTEN", format!("127.0.0.1:{vm_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vmagent"),
    );

    // Each token's write scope named the cluster of what its agent wrote.
    eventually(
        Duration::from_secs(60),
        "Prometheus's up, stamped by its token",
        || async { (up_clusters(&s, "prometheus").await == ["prom"]).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "vmagent's up, stamped by its token",
        || async { (up_clusters(&s, "vmagent").await == ["vm"]).then_some(()) },
    )
    .await;
}

/// The `host:port` and path of every `http://tributary.example...` URL in `text`.
fn urls(text: &str) -> Vec<(u16, String)> {
    text.match_indices("http://tributary.example:")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let end = rest.find(|c: char| c == '"' || c.is_whitespace()).unwrap_or(rest.len());
            let (port, path) = rest[..end].split_once('/').map_or((&rest[..end], ""), |(p, r)| (p, r));
            (port.parse().expect("port"), format!("/{path}"))
        })
        .collect()
}

/// Listener ports from the example config (the defaults `--print-config` prints).
fn default_port(key: &str) -> u16 {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/tributary.example.toml"))
            .expect("example config");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} in the example config"));
    line.trim_end_matches('"')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("port")
}

#[tokio::test]
async fn other_agent_configs_name_served_ports_paths_and_headers() {
    let http = default_port("http_listen");
    let grpc = default_port("grpc_listen");
    let otlp_http = default_port("otlp_http_listen");
    assert_eq!((http, grpc, otlp_http), (9201, 4317, 4318), "the ports the files name");

    // Every URL a file names is on the HTTP port and at a path Tributary serves.
    let expected: &[(&str, &[&str])] = &[
        ("prometheus-remote-write.yml", &["/api/v1/write"]),
        ("prometheus-remote-write-v2.yml", &["/api/v1/write"]),
        ("alloy.alloy", &["/api/v1/write", "/loki/api/v1/push"]),
        ("promtail.yml", &["/loki/api/v1/push"]),
    ];
    let s = TestServer::start().await;
    for (file, paths) in expected {
        let found = urls(&read_agent(file));
        let found_paths: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(&found_paths, paths, "{file}");
        for (port, path) in &found {
            assert_eq!(*port, http, "{file}: {path}");
            // An empty body is a bad request, not an unknown route.
            let st = reqwest::Client::new().post(s.url(path)).send().await.unwrap().status();
            assert!(
                st.is_client_error() && st != 404 && st != 405,
                "{file}: POST {path} answered {st}"
            );
        }
    }

    let v2 = read_agent("prometheus-remote-write-v2.yml");
    assert!(v2.contains("protobuf_message: io.prometheus.write.v2.Request"), "{v2}");
    for (file, auth) in [
        ("prometheus-remote-write.yml", "credentials: TRIBUTARY_TOKEN"),
        ("prometheus-remote-write-v2.yml", "credentials: TRIBUTARY_TOKEN"),
        ("alloy.alloy", "bearer_token = \"TRIBUTARY_TOKEN\""),
        ("promtail.yml", "bearer_token: TRIBUTARY_TOKEN"),
        ("fluent-bit.conf", "Bearer_Token TRIBUTARY_TOKEN"),
        ("vmagent.sh", "-remoteWrite.bearerToken="),
    ] {
        assert!(read_agent(file).contains(auth), "{file} names no token ({auth})");
    }

    // Fluent Bit's Loki output names host, port and path separately.
    let fb = read_agent("fluent-bit.conf");
    let field = |name: &str| {
        fb.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("fluent-bit.conf has no {name}"))
    };
    assert_eq!(field("Name         "), "loki");
    assert_eq!(field("Port"), http.to_string());
    let uri = field("Uri");
    let st = reqwest::Client::new().post(s.url(uri)).send().await.unwrap().status();
    assert!(
        st.is_client_error() && st != 404 && st != 405,
        "POST {uri} answered {st}"
    );

    // The Collector: OTLP/gRPC on 4317, OTLP/HTTP on 4318 (whose exporter appends /v1/metrics
    // and /v1/logs, which the dedicated listener serves), a bearer header on each exporter, and
    // k8s.cluster.name set by the resource processor in both pipelines.
    let otel = read_agent("otel-collector.yaml");
    for needle in [
        format!("endpoint: tributary.example:{grpc}"),
        format!("endpoint: http://tributary.example:{otlp_http}"),
        "authorization: \"Bearer TRIBUTARY_TOKEN\"".into(),
        "Authorization: \"Bearer TRIBUTARY_TOKEN\"".into(),
        "- key: k8s.cluster.name".into(),
        "action: upsert".into(),
    ] {
        assert!(otel.contains(&needle), "otel-collector.yaml lacks {needle}");
    }
    assert_eq!(
        otel.matches("processors: [resource/cluster, batch]").count(),
        2,
        "{otel}"
    );
    for path in ["/v1/metrics", "/v1/logs"] {
        let st = reqwest::Client::new()
            .post(s.otlp_url(path))
            .header("content-type", "application/x-protobuf")
            .body(vec![0xff])
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            st.is_client_error() && st != 404 && st != 405,
            "POST {path} answered {st}"
        );
    }
}
