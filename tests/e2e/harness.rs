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
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("addr")
        .port()
}

/// Polls `f` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
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

/// A `tributary` process on a free loopback port with its own data dir.
#[derive(Debug)]
pub struct TestServer {
    pub port: u16,
    pub data_dir: PathBuf,
    pub extra_args: Vec<String>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra_args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut s = Self {
            port: 0,
            data_dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            _tmp: Some(tmp),
        };
        s.spawn().await;
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Starts the process (again, on the same data dir) and waits until it answers.
    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        self.port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tributary");
        self.child = Some(child);
        let url = self.url("/-/ready");
        let child = self.child.as_mut().expect("child");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tributary exited during startup: {status}");
            }
            if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "tributary did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("reap");
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
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

    pub async fn flush(&self) -> Value {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/admin/flush"))
            .send()
            .await
            .expect("flush");
        assert_eq!(r.status(), 200, "flush failed: {}", r.text().await.unwrap_or_default());
        r.json().await.expect("flush json")
    }

    /// `GET /api/v1/query`; panics unless the status is success.
    pub async fn query(&self, q: &str, time: f64) -> Value {
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

    pub async fn query_range(&self, q: &str, start: f64, end: f64, step: f64) -> Value {
        prom_query_range(&self.url(""), q, start, end, step).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `GET /api/v1/query_range` against any Prometheus-compatible base URL.
pub async fn prom_query_range(base: &str, q: &str, start: f64, end: f64, step: f64) -> Value {
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

/// Encodes series as a snappy-compressed remote-write 1.0 body.
pub fn remote_write_body(series: &[(Vec<(&str, &str)>, Vec<(i64, f64)>)]) -> Vec<u8> {
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
pub async fn post_remote_write(url: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> (u16, String) {
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
pub fn require_program(program: &str, debian_package: &str) -> PathBuf {
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
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// `data.result` of a Prometheus API answer.
pub fn result(v: &Value) -> &Vec<Value> {
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no data.result in {v}"))
}
