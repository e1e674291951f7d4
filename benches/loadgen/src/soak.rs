//! The soak benchmark's traffic (`tributary-loadgen soak`, driven by `benches/compare/soak.sh`,
//! which also kills and restarts the server): well-behaved clusters write samples (remote-write)
//! and log lines (Loki push) at a steady rate and, like Prometheus and Promtail, retry every
//! batch until it is acknowledged (connection errors, 5xx and 429 are retried with backoff; any
//! other 4xx is counted as refused and never retried), while an optional misbehaving cluster
//! bursts over its rate limit with a new series in every sample and some garbage bodies, never
//! honouring `Retry-After`.
//!
//! The output is a ledger: per cluster the samples and log lines the server acknowledged, so the
//! script can require every one of them to be read back exactly once, plus the well-behaved
//! clusters' write latency (successful attempts: a request cut by a kill is not a latency) and
//! acknowledged rate.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tokio::sync::Mutex;

use crate::fairness::{body, now_ms, post, quantile};

/// `tributary-loadgen soak` arguments.
#[derive(Debug, Parser)]
#[command(about = "Soak traffic: steady well-behaved clusters that retry until acked, an optional bad one")]
struct Args {
    /// The server's base URL (`http://127.0.0.1:9201`).
    #[arg(long)]
    url: String,
    /// Well-behaved clusters (`good-0`, `good-1`, ...).
    #[arg(long, default_value_t = 4)]
    good_clusters: usize,
    /// Series per well-behaved cluster; each sends one sample of each every `--interval-ms`.
    #[arg(long, default_value_t = 2000)]
    good_series: usize,
    /// Log lines per well-behaved cluster per interval.
    #[arg(long, default_value_t = 50)]
    good_log_lines: usize,
    /// How often each well-behaved cluster writes.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Connections of the misbehaving cluster `bad-0` (0 = no bad cluster).
    #[arg(long, default_value_t = 0)]
    bad_connections: usize,
    /// Samples per request of the misbehaving cluster (each a new series).
    #[arg(long, default_value_t = 2000)]
    bad_batch: usize,
    /// Writes per second per bad connection (0 = as fast as answers come).
    #[arg(long, default_value_t = 0)]
    bad_rate: u64,
    /// How long to produce new batches; batches in flight are then retried until acked.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
    /// Give up retrying a batch after this long (the run then reports it unacknowledged).
    #[arg(long, default_value_t = 300)]
    give_up_secs: u64,
}

/// What one well-behaved cluster had acknowledged.
#[derive(Debug, Default)]
struct Ledger {
    samples: AtomicU64,
    log_lines: AtomicU64,
    refused: AtomicU64,
    given_up: AtomicU64,
    retries: AtomicU64,
}

/// Sends `make()` until a 2xx (true), a non-retryable 4xx or the deadline (false); the latency
/// of the successful attempt goes to `lat`.
async fn until_acked(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    ledger: &Ledger,
    lat: &Mutex<Vec<f64>>,
    give_up: Instant,
) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let mut req = client.post(url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let status = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let _ = r.bytes().await;
                Some(s)
            }
            Err(_) => None,
        };
        match status {
            Some(s) if (200..300).contains(&s) => {
                lat.lock().await.push(started.elapsed().as_secs_f64() * 1000.0);
                return true;
            }
            Some(s) if (400..500).contains(&s) && s != 429 => {
                ledger.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            _ => {}
        }
        if Instant::now() >= give_up {
            ledger.given_up.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        ledger.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn loki_body(cluster: &str, t_ms: i64, lines: usize) -> Vec<u8> {
    let values: Vec<[String; 2]> = (0..lines)
        .map(|i| {
            [
                (t_ms as i128 * 1_000_000 + i as i128).to_string(),
                format!("level=info cluster={cluster} tick={t_ms} line={i}"),
            ]
        })
        .collect();
    serde_json::to_vec(&json!({"streams": [{"stream": {"cluster": cluster, "app": "soak"}, "values": values}]}))
        .unwrap_or_default()
}

/// Runs the traffic; prints one JSON object (the ledger and the latencies).
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<i32> {
    let args = Args::try_parse_from(args)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(args))
}

async fn run(a: Args) -> anyhow::Result<i32> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let end = Instant::now() + Duration::from_secs(a.duration_secs);
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let ledgers: Vec<Arc<Ledger>> = (0..a.good_clusters).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for (c, ledger) in ledgers.iter().enumerate() {
        let (client, base, lat, ledger) = (client.clone(), a.url.clone(), latencies.clone(), ledger.clone());
        let (n, lines, interval) = (
            a.good_series as u64,
            a.good_log_lines,
            Duration::from_millis(a.interval_ms),
        );
        let give_up = Duration::from_secs(a.give_up_secs);
        tasks.push(tokio::spawn(async move {
            let cluster = format!("good-{c}");
            let write = format!("{base}/api/v1/write");
            let push = format!("{base}/loki/api/v1/push");
            let rw_headers = [
                ("Content-Encoding", "snappy"),
                ("Content-Type", "application/x-protobuf"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ];
            let loki_headers = [("Content-Type", "application/json")];
            tokio::time::sleep(interval.mul_f64(c as f64 / 4.0)).await;
            let mut tick = tokio::time::interval(interval);
            // After an outage, carry on from now instead of bursting the missed ticks.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last_t = 0;
            while Instant::now() < end {
                tick.tick().await;
                // Strictly increasing per cluster, so no two batches share a timestamp.
                let t = now_ms().max(last_t + 1);
                last_t = t;
                let deadline = Instant::now() + give_up;
                let samples = body(&cluster, "soak_metric", 0..n, t);
                if until_acked(&client, &write, &rw_headers, &samples, &ledger, &lat, deadline).await {
                    ledger.samples.fetch_add(n, Ordering::Relaxed);
                }
                if lines > 0 {
                    let logs = loki_body(&cluster, t, lines);
                    if until_acked(&client, &push, &loki_headers, &logs, &ledger, &lat, deadline).await {
                        ledger.log_lines.fetch_add(lines as u64, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let statuses = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let next_id = Arc::new(AtomicU64::new(0));
    let bad_acked = Arc::new(AtomicU64::new(0));
    for k in 0..a.bad_connections {
        let (client, url) = (client.clone(), format!("{}/api/v1/write", a.url));
        let (statuses, next_id, bad_acked) = (statuses.clone(), next_id.clone(), bad_acked.clone());
        let (batch, rate) = (a.bad_batch as u64, a.bad_rate);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < end {
                // One body in 20 is garbage.
                let garbage = (sent + k as u64).is_multiple_of(20);
                let b = if garbage {
                    b"not snappy at all".to_vec()
                } else {
                    let from = next_id.fetch_add(batch, Ordering::Relaxed);
                    body("bad-0", "explosion", from..from + batch, now_ms())
                };
                let status = post(&client, &url, b).await;
                if !garbage && status.is_some_and(|s| (200..300).contains(&s)) {
                    bad_acked.fetch_add(batch, Ordering::Relaxed);
                }
                let down = status.is_none();
                let status = status.map_or("error".to_string(), |s| s.to_string());
                *statuses.lock().await.entry(status).or_default() += 1;
                sent += 1;
                if rate > 0 {
                    tokio::time::sleep(Duration::from_secs_f64(1.0 / rate as f64)).await;
                } else if down {
                    // The server is down (killed): do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let clusters: BTreeMap<String, serde_json::Value> = ledgers
        .iter()
        .enumerate()
        .map(|(c, l)| {
            (
                format!("good-{c}"),
                json!({
                    "acked_samples": l.samples.load(Ordering::Relaxed),
                    "acked_log_lines": l.log_lines.load(Ordering::Relaxed),
                    "refused_batches": l.refused.load(Ordering::Relaxed),
                    "given_up_batches": l.given_up.load(Ordering::Relaxed),
                    "retries": l.retries.load(Ordering::Relaxed),
                }),
            )
        })
        .collect();
    let acked: u64 = ledgers.iter().map(|l| l.samples.load(Ordering::Relaxed)).sum();
    let out = json!({
        "good_clusters": a.good_clusters,
        "good_series": a.good_series,
        "bad_connections": a.bad_connections,
        "seconds": secs,
        "good_requests": lat.len(),
        "good_acked_samples_per_s": acked as f64 / secs,
        "good_p50_ms": quantile(&lat, 0.5),
        "good_p99_ms": quantile(&lat, 0.99),
        "good_max_ms": lat.last().copied().unwrap_or(f64::NAN),
        "clusters": clusters,
        "bad_statuses": *statuses.lock().await,
        "bad_series_sent": next_id.load(Ordering::Relaxed),
        "bad_acked_samples": bad_acked.load(Ordering::Relaxed),
    });
    let _ = writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
