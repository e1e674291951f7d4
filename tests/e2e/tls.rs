//! TLS with real clients, against a server with `[server.tls]` and `auth.required = true`: a
//! real Prometheus remote-writes over HTTPS with a bearer token and with basic auth; the
//! OpenTelemetry Python SDK exports over gRPC+TLS and over HTTPS with a token header; `promtool`
//! reads over HTTPS with a read token; a client certificate mapped to a token entry writes and
//! reads by that entry's scopes with no header, an unknown one is refused, plain HTTP to the TLS
//! port fails; and a rotated server certificate reaches new connections without a restart.
//! The CA and every certificate are made here, with rcgen.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::Value;

use crate::harness::{
    Proc, TestServer, eventually, free_port, remote_write_body, require_program, run_python, write_file,
};

/// A certificate and its key, PEM (the ruler's HTTPS Alertmanager test uses these too).
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
    der: Vec<u8>,
}

pub(crate) fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "tributary e2e CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

pub(crate) fn issue(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, sans: &[&str]) -> Pem {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// Writes through a rename, as a rotation would.
fn replace(dir: &Path, name: &str, text: &str) {
    let tmp = write_file(dir, &format!("{name}.new"), text);
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

fn config(dir: &Path) -> String {
    let text = format!(
        r#"[server.tls]
cert_file = "{dir}/server.crt"
key_file = "{dir}/server.key"
client_ca_file = "{dir}/ca.crt"
reload_interval = "200ms"

[auth]
required = true

[[auth.tokens]]
token = "prom-bearer"
write = "east"

[[auth.tokens]]
token = "prom-basic"
write = "west"

[[auth.tokens]]
token = "otel"
write = "otel-*"

[[auth.tokens]]
token = "reader"
read = ["*"]

[[auth.tokens]]
client_cert = "collector.mtls.example"
write = "mtls"
read = ["mtls"]
"#,
        dir = dir.display()
    );
    write_file(dir, "tributary.toml", &text).to_string_lossy().into_owned()
}

fn prometheus_config(dir: &Path, prom_port: u16, trib_port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
remote_write:
  - url: https://127.0.0.1:{trib_port}/api/v1/write
    tls_config: {{ca_file: {dir}/ca.crt}}
    authorization: {{credentials: prom-bearer}}
    queue_config: {{batch_send_deadline: 1s}}
  - url: https://127.0.0.1:{trib_port}/api/v1/write
    tls_config: {{ca_file: {dir}/ca.crt}}
    basic_auth: {{username: prometheus, password: prom-basic}}
    queue_config: {{batch_send_deadline: 1s}}
"#,
        dir = dir.display()
    );
    write_file(dir, "prometheus.yml", &text)
}

/// The clusters with data (the `cluster` label's values), as `client` (with `token`, if any)
/// sees them.
async fn clusters(s: &TestServer, client: &reqwest::Client, token: Option<&str>) -> (u16, Vec<String>) {
    let mut req = client.get(s.url("/api/v1/label/cluster/values"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("query over TLS");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or_default();
    if status != 200 {
        return (status, vec![]);
    }
    let mut c: Vec<String> = (body["data"].as_array())
        .unwrap_or_else(|| panic!("no data in {body}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    c.sort();
    (status, c)
}

/// The server certificate a fresh connection is shown (DER).
async fn served_certificate(s: &TestServer) -> Vec<u8> {
    let ca = std::fs::read(s.tls_ca.as_ref().unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .tls_info(true)
        .build()
        .unwrap();
    let r = client.get(s.url("/-/healthy")).send().await.expect("healthy over TLS");
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS info");
    info.peer_certificate().expect("a server certificate").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_real_clients_client_certificates_and_rotation() {
    let prometheus = require_program("prometheus", "prometheus");
    let promtool = require_program("promtool", "prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = new_ca();
    let ca_file = write_file(dir, "ca.crt", &ca.pem());
    let server = issue(&ca, "tributary-1", &["localhost", "127.0.0.1"]);
    write_file(dir, "server.crt", &server.cert);
    write_file(dir, "server.key", &server.key);
    let s = TestServer::start_tls(&["--config", &config(dir)], &ca_file).await;
    let https = s.client();

    // A real Prometheus, over HTTPS trusting the CA: bearer token (→ east) and basic auth
    // (password = token, → west).
    let prom_port = free_port();
    let cfg = prometheus_config(dir, prom_port, s.port);
    let _prom = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // The OpenTelemetry SDK over gRPC+TLS and over HTTPS, with a token header.
    let ca_arg = ca_file.to_str().unwrap();
    for (protocol, endpoint, cluster) in [
        ("grpc", s.grpc_endpoint(), "otel-grpc"),
        ("http/protobuf", s.otlp_url(""), "otel-http"),
    ] {
        let run = run_python(
            "otlp_client.py",
            &[
                "--protocol",
                protocol,
                "--endpoint",
                &endpoint,
                "--cluster",
                cluster,
                "--signals",
                "metrics",
                "--ca-file",
                ca_arg,
                "--header",
                "Authorization=Bearer otel",
            ],
        );
        assert!(
            run.success,
            "OTLP {protocol} over TLS failed:\n{}\n{}",
            run.stdout, run.stderr
        );
    }

    // A client certificate mapped to an entry writes and reads by its scopes, no header.
    let collector = issue(&ca, "collector.mtls.example", &[]);
    let identity = |p: &Pem| reqwest::Identity::from_pem(format!("{}{}", p.cert, p.key).as_bytes()).unwrap();
    let mtls = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .identity(identity(&collector))
        .build()
        .unwrap();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let body = remote_write_body(&[(vec![("__name__", "mtls_written")], vec![(t, 1.0)])]);
    let r = mtls
        .post(s.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());

    eventually(Duration::from_secs(60), "every client's data", || async {
        let (_, c) = clusters(&s, &https, Some("reader")).await;
        (c == ["east", "mtls", "otel-grpc", "otel-http", "west"]).then_some(())
    })
    .await;
    // The certificate's read scope is its own cluster only; its token-less request is not
    // anonymous.
    assert_eq!(clusters(&s, &mtls, None).await, (200, vec!["mtls".to_string()]));
    assert_eq!(clusters(&s, &https, None).await.0, 401);
    // A header wins over the certificate: the reader token reads everything over the same
    // mTLS connection.
    assert_eq!(clusters(&s, &mtls, Some("reader")).await.1.len(), 5);

    // An unknown client certificate (the right CA, no entry) is refused; so is one from
    // another CA (at the handshake).
    let stranger = issue(&ca, "stranger.example", &[]);
    let client_with = |p: &Pem| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .identity(identity(p))
            .build()
            .unwrap()
    };
    let (status, _) = clusters(&s, &client_with(&stranger), None).await;
    assert_eq!(status, 401);
    let r = client_with(&stranger)
        .post(s.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let foreign = issue(&new_ca(), "collector.mtls.example", &[]);
    assert!(
        client_with(&foreign).get(s.url("/-/healthy")).send().await.is_err(),
        "a certificate from another CA was accepted"
    );

    // Plain HTTP to the TLS port fails; the listener lives on.
    let plain = tokio::time::timeout(Duration::from_secs(10), async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/-/healthy", s.port))
            .send()
            .await
    })
    .await
    .expect("plain HTTP answered or failed in time");
    assert!(plain.is_err(), "plain HTTP was served: {plain:?}");

    // promtool over HTTPS with a read token. This promtool (2.42) has no --http.config.file:
    // the CA goes through SSL_CERT_FILE (Go's system roots) and the token as the basic-auth
    // password in the URL.
    let out = Command::new(&promtool)
        .env("SSL_CERT_FILE", &ca_file)
        .args([
            "query",
            "instant",
            &format!("https://promtool:reader@127.0.0.1:{}", s.port),
            "count by (cluster) (up)",
        ])
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("cluster=\"east\"") && stdout.contains("cluster=\"west\""),
        "{stdout}"
    );

    // Rotation: a new certificate (another CN and serial) replaces the files; new connections
    // see it without a restart.
    assert_eq!(served_certificate(&s).await, server.der);
    let rotated = issue(&ca, "tributary-2", &["localhost", "127.0.0.1"]);
    replace(dir, "server.key", &rotated.key);
    replace(dir, "server.crt", &rotated.cert);
    let want = rotated.der.clone();
    eventually(Duration::from_secs(10), "the rotated certificate served", || async {
        (served_certificate(&s).await == want).then_some(())
    })
    .await;
    assert_eq!(clusters(&s, &https, Some("reader")).await.0, 200);
}
