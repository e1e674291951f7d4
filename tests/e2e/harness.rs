//! Starting and stopping real processes for tests. Every helper fails loudly: a missing external
//! dependency is a test failure, never a skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::Value;
use tributary_proto::prometheus as pb;

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct ports nobody listens on right now (all held open until every one is chosen, so
/// they cannot repeat).
pub(crate) fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind :0"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("addr").port())
}

/// Polls `f` until it returns `Some`, or panics after `deadline` with `what`.
pub(crate) async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `tributary` process on free loopback ports with its own data dir.
///
/// Every start passes free ports for all three listeners (`--http-listen`, `--grpc-listen`,
/// `--otlp-http-listen`), so tests running in parallel never collide on the OTLP defaults
/// 4317/4318. A test that sets one of those flags (or its environment variable) itself keeps its
/// value, and the matching port field is then 0.
#[derive(Debug)]
pub(crate) struct TestServer {
    /// The main HTTP port (`--http-listen`): receivers, query APIs, `/metrics`.
    pub port: u16,
    /// The OTLP/gRPC port (`--grpc-listen`).
    pub grpc_port: u16,
    /// The dedicated OTLP/HTTP port (`--otlp-http-listen`).
    pub otlp_port: u16,
    pub data_dir: PathBuf,
    pub extra_args: Vec<String>,
    pub envs: Vec<(String, String)>,
    /// The CA (PEM) that signed the server's certificate, when its config turns TLS on: URLs
    /// are then `https://` and [`TestServer::client`] trusts it.
    pub tls_ca: Option<PathBuf>,
    child: Option<Child>,
    /// Set by [`TestServer::respawn_on_same_port`]: the next start keeps the HTTP port.
    keep_port: bool,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub(crate) async fn start_with(extra_args: &[&str]) -> Self {
        Self::start_with_env(extra_args, &[]).await
    }

    pub(crate) async fn start_with_env(extra_args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_inner(extra_args, envs, None).await
    }

    /// A server whose config (in `extra_args`) turns TLS on with a certificate `ca` signed.
    pub(crate) async fn start_tls(extra_args: &[&str], ca: &Path) -> Self {
        Self::start_inner(extra_args, &[], Some(ca.to_path_buf())).await
    }

    async fn start_inner(extra_args: &[&str], envs: &[(&str, &str)], tls_ca: Option<PathBuf>) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut s = Self {
            port: 0,
            grpc_port: 0,
            otlp_port: 0,
            data_dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tls_ca,
            child: None,
            keep_port: false,
            _tmp: Some(tmp),
        };
        s.spawn().await;
        s
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{}", self.scheme(), self.port, path)
    }

    fn scheme(&self) -> &'static str {
        if self.tls_ca.is_some() { "https" } else { "http" }
    }

    /// An HTTP client for this server (trusting its CA when it serves TLS).
    pub(crate) fn client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder();
        if let Some(ca) = &self.tls_ca {
            let pem = std::fs::read(ca).expect("read the test CA");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"));
        }
        b.build().expect("client")
    }

    /// A URL on the dedicated OTLP/HTTP listener.
    pub(crate) fn otlp_url(&self, path: &str) -> String {
        assert_ne!(
            self.otlp_port, 0,
            "this server's OTLP/HTTP listener was set by the test"
        );
        format!("{}://127.0.0.1:{}{}", self.scheme(), self.otlp_port, path)
    }

    /// `host:port` of the OTLP/gRPC listener.
    pub(crate) fn grpc_endpoint(&self) -> String {
        assert_ne!(
            self.grpc_port, 0,
            "this server's OTLP/gRPC listener was set by the test"
        );
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// The process id, while running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Does the test itself set this listener (as a flag or through the environment)?
    fn sets_listener(&self, flag: &str, env: &str) -> bool {
        self.extra_args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
            || self.envs.iter().any(|(k, _)| k == env)
    }

    /// Starts the process (again, on the same data dir, on new ports) and waits until it answers.
    ///
    /// A port found free can be taken before the process binds it (by another test's listener,
    /// or as the local port of an outgoing connection): a start that fails binding is retried,
    /// on new ports (the kept HTTP port stays, after a pause).
    pub(crate) async fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let keep_port = std::mem::take(&mut self.keep_port);
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            if self.try_spawn(keep_port).await {
                return;
            }
            assert!(attempt < ATTEMPTS, "tributary found its ports taken {ATTEMPTS} times");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One start: true once it answers, false when it exited because a port was taken.
    async fn try_spawn(&mut self, keep_port: bool) -> bool {
        let [http, grpc, otlp] = free_ports::<3>();
        let http = if keep_port { self.port } else { http };
        self.port = http;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tributary"));
        cmd.arg("--http-listen").arg(format!("127.0.0.1:{http}"));
        self.grpc_port = 0;
        if !self.sets_listener("--grpc-listen", "TRIBUTARY_GRPC_LISTEN") {
            self.grpc_port = grpc;
            cmd.arg("--grpc-listen").arg(format!("127.0.0.1:{grpc}"));
        }
        self.otlp_port = 0;
        if !self.sets_listener("--otlp-http-listen", "TRIBUTARY_OTLP_HTTP_LISTEN") {
            self.otlp_port = otlp;
            cmd.arg("--otlp-http-listen").arg(format!("127.0.0.1:{otlp}"));
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tributary");
        // The process's log goes on to the test's stderr, watched for a taken port.
        let stderr = child.stderr.take().expect("piped stderr");
        let port_taken = std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let mut taken = false;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                taken |= line.contains("Address already in use");
                let _ = writeln!(std::io::stderr(), "{line}");
            }
            taken
        });
        self.child = Some(child);
        let url = self.url("/-/ready");
        let client = self.client();
        let start = Instant::now();
        loop {
            let child = self.child.as_mut().expect("child");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                if port_taken.join().unwrap_or(false) {
                    return false;
                }
                panic!("tributary exited during startup: {status}");
            }
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "tributary did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts the process again on the same data dir and the same HTTP port (what other
    /// processes know it by, e.g. a querier's `--ingesters`).
    pub(crate) async fn respawn_on_same_port(&mut self) {
        self.keep_port = true;
        self.spawn().await;
    }

    /// SIGKILL: no shutdown path runs.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()
                .expect("kill -TERM");
            assert!(status.success());
            let start = Instant::now();
            loop {
                if let Some(s) = c.try_wait().expect("wait") {
                    assert!(s.success(), "tributary exited with {s} on SIGTERM");
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "tributary did not stop on SIGTERM"
                );
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
    }

    pub(crate) async fn flush(&self) -> Value {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/admin/flush"))
            .send()
            .await
            .expect("flush");
        assert_eq!(r.status(), 200, "flush failed: {}", r.text().await.unwrap_or_default());
        r.json().await.expect("flush json")
    }

    /// `GET /api/v1/query`; panics unless the status is success.
    /// `POST /api/v1/admin/compact`: the status and the round's report (or the error text).
    pub(crate) async fn compact(&self) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/admin/compact"))
            .send()
            .await
            .expect("compact");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn query(&self, q: &str, time: f64) -> Value {
        let r = reqwest::Client::new()
            .get(self.url("/api/v1/query"))
            .query(&[("query", q), ("time", &time.to_string())])
            .send()
            .await
            .expect("query");
        let status = r.status();
        let body: Value = r.json().await.expect("json");
        assert_eq!(status, 200, "query {q} failed: {body}");
        body
    }

    pub(crate) async fn query_range(&self, q: &str, start: f64, end: f64, step: f64) -> Value {
        prom_query_range(&self.url(""), q, start, end, step).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `GET /api/v1/query_range` against any Prometheus-compatible base URL.
pub(crate) async fn prom_query_range(base: &str, q: &str, start: f64, end: f64, step: f64) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/query_range"))
        .query(&[
            ("query", q),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", &step.to_string()),
        ])
        .send()
        .await
        .expect("query_range");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "query_range {q} at {base} failed: {body}");
    body
}

/// A series to send: its labels (any order) and `(timestamp ms, value)` samples.
pub(crate) type TestSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

/// Encodes series as a snappy-compressed remote-write 1.0 body.
pub(crate) fn remote_write_body(series: &[TestSeries<'_>]) -> Vec<u8> {
    let req = pb::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| {
                let mut labels: Vec<pb::Label> = labels
                    .iter()
                    .map(|(n, v)| pb::Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                pb::TimeSeries {
                    labels,
                    samples: samples
                        .iter()
                        .map(|&(timestamp, value)| pb::Sample { timestamp, value })
                        .collect(),
                    exemplars: vec![],
                    histograms: vec![],
                }
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy")
}

/// POSTs a remote-write body with Prometheus's headers plus `extra`; returns (status, body text).
pub(crate) async fn post_remote_write(url: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("remote write");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// The path of an external program, installing its Debian package when it is missing.
/// Panics (fails the test) when it still cannot be found.
pub(crate) fn require_program(program: &str, debian_package: &str) -> PathBuf {
    let find = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = find() {
        return p;
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(apt-get install -y -qq {debian_package} || (apt-get update -qq && apt-get install -y -qq {debian_package})) >/dev/null 2>&1"
        ))
        .status();
    find().unwrap_or_else(|| {
        panic!("{program} is required (Debian package {debian_package}); installing it failed: {status:?}")
    })
}

/// A child process killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// `data.result` of a Prometheus API answer.
pub(crate) fn result(v: &Value) -> &Vec<Value> {
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no data.result in {v}"))
}

/// Makes sure a Python module is importable, installing its PyPI package when it is not.
/// Panics (fails the test) when it still cannot be imported.
pub(crate) fn require_python_module(module: &str, pip_package: &str) {
    let importable = || {
        Command::new("python3")
            .arg("-c")
            .arg(format!("import {module}"))
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable() {
        return;
    }
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "-q", pip_package])
        .status();
    assert!(
        importable(),
        "python module {module} is required (pip package {pip_package}); installing failed: {status:?}"
    );
}

/// A script under `tests/e2e/python/`.
pub(crate) fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/python")
        .join(name)
}

/// Makes sure every package pinned in `tests/e2e/python/requirements.txt` is installed at its
/// version (the real OpenTelemetry SDK, grpcio, pyarrow), installing them with pip when not.
/// Panics (fails the test) when they still are not: a missing dependency is never a skip.
pub(crate) fn require_python_requirements() {
    let ok = || {
        Command::new("python3")
            .arg(python_script("requirements_ok.py"))
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok() {
        return;
    }
    // Tests run in parallel processes: one pip at a time.
    let status = Command::new("flock")
        .arg(std::env::temp_dir().join("tributary-e2e-pip.lock"))
        .args(["python3", "-m", "pip", "install", "-q", "-r"])
        .arg(python_script("requirements.txt"))
        .status();
    assert!(
        ok(),
        "the Python packages in tests/e2e/python/requirements.txt are required; installing them failed: {status:?}"
    );
}

/// What a finished Python script said.
#[derive(Debug)]
pub(crate) struct PythonRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl PythonRun {
    /// stdout as JSON; panics with both streams when it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "script output is not JSON ({e}):\nstdout: {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `tests/e2e/python/<script> <args>` to completion (after [`require_python_requirements`]).
/// The environment's `OTEL_*` variables are removed so they cannot change what the SDK sends.
pub(crate) fn run_python(script: &str, args: &[&str]) -> PythonRun {
    require_python_requirements();
    let mut cmd = Command::new("python3");
    cmd.arg(python_script(script)).args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
    PythonRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Peak resident memory (`VmHWM`) of a process, in bytes.
pub(crate) fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status:\n{status}"));
    kb * 1024
}

/// moto's S3 server as `python3 -m moto.server` runs it (its app under werkzeug, a thread per
/// request), except that conditional writes (`If-None-Match`, `If-Match`) run one at a time.
/// moto checks the condition and then writes, in two steps: two creates of one key racing
/// through two threads could both succeed there, where S3 lets exactly one win. The manifest's
/// commits and the compactor's lease rely on S3's behaviour, so the stand-in must have it.
const MOTO_SERVER: &str = r#"
import os, sys, threading
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple
os.environ.setdefault("MOTO_PORT", sys.argv[1])
app = DomainDispatcherApplication(create_backend_app)
conditional = threading.Lock()
def serve(environ, start_response):
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ:
        with conditional:
            return list(app(environ, start_response))
    return app(environ, start_response)
run_simple("127.0.0.1", int(sys.argv[1]), serve, threaded=True)
"#;

/// A real S3-compatible server (moto's) on a free loopback port, with one bucket.
#[derive(Debug)]
pub(crate) struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    _proc: Proc,
}

impl S3Server {
    pub(crate) async fn start(bucket: &str) -> Self {
        require_python_module("moto.moto_server.werkzeug_app", "moto[server]>=5,<6");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-c", MOTO_SERVER, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto S3 server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let proc = Proc(child);
        let url = format!("{endpoint}/{bucket}");
        eventually(Duration::from_secs(60), "S3 server accepting CreateBucket", || {
            let url = url.clone();
            async move {
                reqwest::Client::new()
                    .put(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        Self {
            endpoint,
            bucket: bucket.to_string(),
            _proc: proc,
        }
    }

    /// The `AWS_*` environment Tributary's S3 store reads.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// Keys under `prefix`, via the S3 ListObjectsV2 API.
    pub(crate) async fn list(&self, prefix: &str) -> Vec<String> {
        let body = reqwest::Client::new()
            .get(format!("{}/{}", self.endpoint, self.bucket))
            .query(&[("list-type", "2"), ("prefix", prefix)])
            .send()
            .await
            .expect("list objects")
            .text()
            .await
            .expect("list body");
        body.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

/// Waits until `url` answers 2xx (a server's readiness endpoint).
pub(crate) async fn wait_ready(url: &str) {
    eventually(Duration::from_secs(60), &format!("{url} ready"), || async move {
        reqwest::get(url)
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
}

/// Starts a Prometheus with `start(port)` on a free port and waits until it answers its
/// readiness probe as Prometheus. A free port can be taken by another test's server between
/// choosing and binding it; then this Prometheus exits and the probe would be answered by
/// that other server (which later goes away mid-test): so the answer must name Prometheus, and
/// a Prometheus that exited is started again on another port.
pub(crate) async fn start_prometheus_ready(start: impl Fn(u16) -> Proc) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut proc = start(port);
        let url = format!("http://127.0.0.1:{port}/-/ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if proc.0.try_wait().ok().flatten().is_some() {
                break;
            }
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
                && r.text().await.unwrap_or_default().contains("Prometheus")
                && proc.0.try_wait().ok().flatten().is_none()
            {
                return (proc, port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("prometheus did not start on any of 5 free ports");
}

/// Do two Prometheus value strings agree? Equal text, both NaN, or finite and within a
/// relative 1e-9 (absolute 1e-12 near zero): different libm implementations differ in the last bits.
pub(crate) fn values_close(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) else {
        return false;
    };
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    x.is_finite() && y.is_finite() && ((x - y).abs() <= 1e-9 * x.abs().max(y.abs()) || (x - y).abs() <= 1e-12)
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// UTC `(year, month, day, hour, minute, second)` of seconds since the epoch, for tests that
/// write or read dates (chrono's calendar, which the binary already uses).
pub(crate) fn utc_civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::from_timestamp(secs, 0).expect("a time chrono can hold");
    (
        i64::from(t.year()),
        i64::from(t.month()),
        i64::from(t.day()),
        i64::from(t.hour()),
        i64::from(t.minute()),
        i64::from(t.second()),
    )
}
