//! `[auth]` with real clients: a real Prometheus remote-writes with a bearer token and with
//! basic auth, a Loki push carries a token from the token file, `promtool` reads with a token
//! scoped to one cluster and sees only it (a live Loki tail too), admin endpoints refuse tokens without `admin`, and
//! a rotated token file takes effect without a restart.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    Proc, TestServer, eventually, free_port, post_remote_write, remote_write_body, require_program, result, write_file,
};

/// `printf %s prom-basic-token | sha256sum`: the basic-auth token is configured hashed.
const PROM_BASIC_SHA256: &str = "5ea3d309bf66a73a0b00f7d9d0d4a5ebe02de736a2bb3f3fd474e546f336a32e";

fn config(dir: &Path) -> String {
    write_file(
        dir,
        "tokens.toml",
        "[[tokens]]\ntoken = \"loki-writer\"\nwrite = \"east\"\n",
    );
    let text = format!(
        r#"[auth]
required = true
token_file = "{dir}/tokens.toml"
token_file_poll = "100ms"

[[auth.tokens]]
token = "prom-bearer"
write = "east"

[[auth.tokens]]
token_sha256 = "{PROM_BASIC_SHA256}"
write = "west"

[[auth.tokens]]
token = "fleet-writer"
write = "*"

[[auth.tokens]]
token = "east-reader"
read = ["east"]

[[auth.tokens]]
token = "admin"
admin = true
read = ["*"]
"#,
        dir = dir.display()
    );
    write_file(dir, "tributary.toml", &text).to_string_lossy().into_owned()
}

fn prometheus_config(dir: &Path, prom_port: u16, trib_port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"global:
  scrape_interval: 1s
  external_labels:
    cluster: claimed
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{trib_port}/api/v1/write
    authorization:
      credentials: prom-bearer
    queue_config: {{batch_send_deadline: 1s}}
  - url: http://127.0.0.1:{trib_port}/api/v1/write
    basic_auth:
      username: prometheus
      password: prom-basic-token
    queue_config: {{batch_send_deadline: 1s}}
"#
    );
    write_file(dir, "prometheus.yml", &text)
}

async fn get(s: &TestServer, path: &str, params: &[(&str, &str)], token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(s.url(path)).query(params);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn post(s: &TestServer, path: &str, token: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new().post(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request").status().as_u16()
}

/// The clusters of `up` as `token` sees them.
async fn up_clusters(s: &TestServer, token: &str) -> Vec<String> {
    let (status, body) = get(s, "/api/v1/query", &[("query", "count by (cluster) (up)")], Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut clusters: Vec<String> = result(&v)
        .iter()
        .map(|r| r["metric"]["cluster"].as_str().unwrap_or_default().to_string())
        .collect();
    clusters.sort();
    clusters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_scope_writes_reads_and_admin_with_real_clients() {
    let prometheus = require_program("prometheus", "prometheus");
    let promtool = require_program("promtool", "prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(&["--config", &config(tmp.path())]).await;

    // A real Prometheus, one remote_write with a bearer token (→ east), one with basic auth
    // whose password is the token (→ west); its own `cluster` label is overridden by each.
    let prom_port = free_port();
    let cfg = prometheus_config(tmp.path(), prom_port, s.port);
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
    eventually(Duration::from_secs(60), "up from both remote writes", || async {
        (up_clusters(&s, "admin").await == ["east", "west"]).then_some(())
    })
    .await;
    let (_, body) = get(&s, "/api/v1/query", &[("query", "up")], Some("admin")).await;
    assert!(body.contains(r#""exported_cluster":"claimed""#), "{body}");

    // A glob write scope keeps a series' own cluster when it matches, refuses it otherwise.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let fleet = [("Authorization", "Bearer fleet-writer")];
    let url = s.url("/api/v1/write");
    let own = remote_write_body(&[(vec![("__name__", "rule_result"), ("cluster", "north")], vec![(t, 1.0)])]);
    let (st, body) = post_remote_write(&url, own, &fleet).await;
    assert_eq!(st, 204, "{body}");
    let bare = remote_write_body(&[(vec![("__name__", "rule_result")], vec![(t, 1.0)])]);
    let (st, body) = post_remote_write(&url, bare, &fleet).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("may write several"), "{body}");
    // A token without a write scope may not write; no token at all is 401.
    let any = remote_write_body(&[(vec![("__name__", "x"), ("cluster", "east")], vec![(t, 1.0)])]);
    let (st, body) = post_remote_write(&url, any.clone(), &[("Authorization", "Bearer east-reader")]).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(post_remote_write(&url, any, &[]).await.0, 401);

    // Loki push with a token from the token file.
    let now_ns = (t * 1_000_000).to_string();
    let push = json!({"streams": [{"stream": {"job": "app"}, "values": [[now_ns, "hello from east"]]}]});
    let loki_push = |token: &'static str| {
        reqwest::Client::new()
            .post(s.url("/loki/api/v1/push"))
            .bearer_auth(token)
            .json(&push)
            .send()
    };
    assert_eq!(loki_push("loki-writer").await.unwrap().status(), 204);

    // A read token scoped to east sees east only: PromQL, listings, LogQL.
    assert_eq!(up_clusters(&s, "east-reader").await, ["east"]);
    let (_, body) = get(&s, "/api/v1/label/cluster/values", &[], Some("east-reader")).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"],
        json!(["east"]),
        "{body}"
    );
    let (_, body) = get(
        &s,
        "/api/v1/series",
        &[("match[]", r#"{__name__=~".+"}"#)],
        Some("east-reader"),
    )
    .await;
    assert!(body.contains(r#""cluster":"east""#), "{body}");
    for other in ["west", "north"] {
        assert!(!body.contains(&format!(r#""cluster":"{other}""#)), "{body}");
    }
    let start = ((t - 60_000) * 1_000_000).to_string();
    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &[("query", r#"{job="app"}"#), ("start", &start)],
        Some("east-reader"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from east"), "{body}");
    let (_, body) = get(&s, "/api/v1/label/cluster/values", &[], Some("admin")).await;
    assert!(body.contains("north") && body.contains("west"), "{body}");

    // A live tail is scoped like every other read: a west line pushed before an east one never
    // reaches the east reader's websocket.
    {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!(
            "ws://127.0.0.1:{}/loki/api/v1/tail?query={}&start={}",
            s.port,
            crate::harness::urlencode(r#"{job="tail"}"#),
            (t - 60_000) * 1_000_000
        );
        let mut request = url.into_client_request().expect("tail request");
        request
            .headers_mut()
            .insert("Authorization", "Bearer east-reader".parse().expect("header"));
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("tail upgrade");
        for cluster in ["west", "east"] {
            let line = json!({"streams": [{"stream": {"job": "tail", "cluster": cluster},
                "values": [[now_ns.clone(), format!("tail line from {cluster}")]]}]});
            let r = reqwest::Client::new()
                .post(s.url("/loki/api/v1/push"))
                .bearer_auth("fleet-writer")
                .json(&line)
                .send()
                .await
                .expect("push");
            assert_eq!(r.status().as_u16(), 204);
        }
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !seen.contains("tail line from east") {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .unwrap_or_else(|_| panic!("the east line was not tailed within 20 s: {seen}"))
                .expect("socket open")
                .expect("websocket message");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                seen.push_str(&text);
            }
        }
        assert!(!seen.contains("west"), "{seen}");
    }

    // promtool, a real API client. This promtool (2.42) has no --http.config.file, so the token
    // goes as the basic-auth password in the server URL (Go's client sends it as Basic auth).
    let server = format!("http://reader:east-reader@127.0.0.1:{}", s.port);
    let out = Command::new(&promtool)
        .args(["query", "instant", &server, "count by (cluster) ({__name__=~\".+\"})"])
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cluster=\"east\"") && !stdout.contains("cluster=\"west\""),
        "{stdout}"
    );

    // Reads: no token 401, a token that may not read 403.
    assert_eq!(get(&s, "/api/v1/query", &[("query", "up")], None).await.0, 401);
    assert_eq!(
        get(&s, "/api/v1/query", &[("query", "up")], Some("prom-bearer"))
            .await
            .0,
        403
    );
    assert_eq!(get(&s, "/loki/api/v1/labels", &[], None).await.0, 401);

    // Admin endpoints need admin = true.
    for path in ["/api/v1/admin/flush", "/api/v1/admin/compact"] {
        assert_eq!(post(&s, path, None).await, 401, "{path}");
        assert_eq!(post(&s, path, Some("east-reader")).await, 403, "{path}");
    }
    assert_eq!(post(&s, "/api/v1/admin/flush", Some("admin")).await, 200);
    assert!(matches!(
        post(&s, "/api/v1/admin/compact", Some("admin")).await,
        200 | 409
    ));

    // Rotation without a restart: the file now holds another token.
    write_file(
        tmp.path(),
        "tokens.toml",
        "[[tokens]]\ntoken = \"rotated-reader\"\nread = [\"west\"]\n",
    );
    eventually(Duration::from_secs(20), "the rotated token file in force", || async {
        (get(&s, "/api/v1/query", &[("query", "up")], Some("rotated-reader"))
            .await
            .0
            == 200)
            .then_some(())
    })
    .await;
    assert_eq!(up_clusters(&s, "rotated-reader").await, ["west"]);
    assert_eq!(loki_push("loki-writer").await.unwrap().status(), 401);
}
