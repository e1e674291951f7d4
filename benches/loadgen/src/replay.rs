//! Replays request bodies against a remote-write endpoint the way Prometheus' queue manager
//! does: one queue per connection, each sent strictly in order (so a series' samples never
//! overtake each other), HTTP/1.1 keep-alive, and retries with exponential backoff on 5xx,
//! 429 and transport errors. Other 4xx responses are not retried: Prometheus drops those
//! batches too. Unlike Prometheus, retries and the whole run are bounded so that a broken
//! receiver ends the run instead of hanging it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;

use crate::Error;

/// One body ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The snappy-compressed request body, sent as is.
    pub body: Bytes,
    /// Samples it carries, counted as acknowledged, failed or unsent.
    pub samples: u64,
}

/// How to send.
#[derive(Debug, Clone)]
pub struct Options {
    /// The remote-write endpoint, e.g. `http://127.0.0.1:9201/api/v1/write`.
    pub url: String,
    /// Per-attempt timeout (Prometheus' `remote_timeout`, 30 s by default).
    pub timeout: Duration,
    /// Retries after the first attempt before a request is given up.
    pub max_retries: u32,
    /// Prometheus' `min_backoff` (30 ms): the first retry's wait, doubled per retry.
    pub min_backoff: Duration,
    /// Prometheus' `max_backoff` (5 s): the longest wait between retries.
    pub max_backoff: Duration,
    /// Wall-clock bound of the whole replay; what is not sent by then is counted unsent.
    pub max_duration: Duration,
    /// Extra request headers, e.g. `X-Tributary-Cluster`.
    pub headers: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(30),
            max_retries: 10,
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            max_duration: Duration::from_secs(3600),
            headers: vec![],
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Requests taken from the queues (each counted once, whatever its retries).
    pub requests: u64,
    /// Requests answered 2xx.
    pub requests_ok: u64,
    /// Requests given up: a non-retryable status, or retries or time exhausted.
    pub requests_failed: u64,
    /// Attempts after a request's first.
    pub retries: u64,
    /// Samples of the requests answered 2xx.
    pub samples_acked: u64,
    /// Samples of the failed requests.
    pub samples_failed: u64,
    /// Samples left in the queues when `max_duration` ran out.
    pub samples_unsent: u64,
    /// Body bytes put on the wire, retries included.
    pub bytes_sent: u64,
    /// Every non-2xx attempt by status code, plus `transport` for connection-level failures.
    pub errors_by_status: BTreeMap<String, u64>,
    /// The first few error responses, for diagnosis.
    pub error_examples: Vec<String>,
    /// Latency of each successful request's final attempt, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Wall-clock time from the start of [`replay`] until every queue was drained.
    pub wall: Duration,
}

const MAX_EXAMPLES: usize = 5;

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.requests_ok += other.requests_ok;
        self.requests_failed += other.requests_failed;
        self.retries += other.retries;
        self.samples_acked += other.samples_acked;
        self.samples_failed += other.samples_failed;
        self.samples_unsent += other.samples_unsent;
        self.bytes_sent += other.bytes_sent;
        for (k, v) in other.errors_by_status {
            *self.errors_by_status.entry(k).or_default() += v;
        }
        for e in other.error_examples {
            if self.error_examples.len() < MAX_EXAMPLES {
                self.error_examples.push(e);
            }
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// Latency quantile in milliseconds (`q` in [0, 1]); sorts the samples on first use.
    pub fn latency_ms(&mut self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(self.latencies_us[idx] as f64 / 1000.0)
    }

    fn error(&mut self, key: String, example: impl FnOnce() -> String) {
        *self.errors_by_status.entry(key).or_default() += 1;
        if self.error_examples.len() < MAX_EXAMPLES {
            self.error_examples.push(example());
        }
    }
}

/// Sends every queue on its own connection, concurrently, until all queues are closed and
/// drained (or `max_duration` passes). The clock starts when this is called.
pub async fn replay(queues: Vec<mpsc::Receiver<Prepared>>, opts: &Options) -> Result<Outcome, Error> {
    let mut headers = HeaderMap::new();
    headers.insert("content-encoding", HeaderValue::from_static("snappy"));
    headers.insert("content-type", HeaderValue::from_static("application/x-protobuf"));
    headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static("0.1.0"));
    for (name, value) in &opts.headers {
        let bad = || Error::Header(format!("{name}: {value}"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        headers.insert(name, HeaderValue::from_str(value).map_err(|_| bad())?);
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("tributary-loadgen/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .pool_max_idle_per_host(queues.len())
        .tcp_nodelay(true)
        .timeout(opts.timeout)
        .build()
        .map_err(Error::Client)?;

    let started = Instant::now();
    let deadline = started + opts.max_duration;
    // Several comma-separated URLs: connection i goes to URL i mod n (a load balancer in front
    // of ingest replicas, each connection carrying whole streams).
    let urls: Vec<String> = opts.url.split(',').map(str::to_owned).collect();
    let workers: Vec<_> = queues
        .into_iter()
        .enumerate()
        .map(|(i, queue)| {
            let (client, mut opts) = (client.clone(), opts.clone());
            opts.url = urls[i % urls.len()].clone();
            tokio::spawn(async move { send_queue(client, queue, opts, deadline).await })
        })
        .collect();
    let mut total = Outcome::default();
    for worker in workers {
        // A worker only ends by draining its queue; a panic there is a bug worth surfacing.
        total.merge(worker.await.expect("replay worker panicked"));
    }
    total.wall = started.elapsed();
    Ok(total)
}

async fn send_queue(
    client: reqwest::Client,
    mut queue: mpsc::Receiver<Prepared>,
    opts: Options,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    while let Some(req) = queue.recv().await {
        if Instant::now() >= deadline {
            out.samples_unsent += req.samples;
            continue;
        }
        out.requests += 1;
        let mut backoff = opts.min_backoff;
        let mut attempt = 0u32;
        loop {
            out.bytes_sent += req.body.len() as u64;
            let sent = Instant::now();
            let retry_after = match client.post(&opts.url).body(req.body.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    // Reading the body to its end is what lets the connection be reused.
                    let text = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        out.requests_ok += 1;
                        out.samples_acked += req.samples;
                        out.latencies_us.push(sent.elapsed().as_micros() as u64);
                        break;
                    }
                    out.error(status.as_u16().to_string(), || {
                        format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&text[..text.len().min(300)]).trim()
                        )
                    });
                    if !(status.is_server_error() || status.as_u16() == 429) {
                        out.requests_failed += 1;
                        out.samples_failed += req.samples;
                        break;
                    }
                    retry_after
                }
                Err(e) => {
                    out.error("transport".into(), || format!("transport: {e}"));
                    None
                }
            };
            if attempt >= opts.max_retries || Instant::now() >= deadline {
                out.requests_failed += 1;
                out.samples_failed += req.samples;
                break;
            }
            attempt += 1;
            out.retries += 1;
            tokio::time::sleep(
                retry_after
                    .map_or(backoff, |r| r.max(backoff))
                    .min(opts.max_backoff * 6),
            )
            .await;
            backoff = (backoff * 2).min(opts.max_backoff);
        }
    }
    out
}

#[cfg(test)]
mod tests;
