//! The fair-sharing benchmark (`tributary-loadgen fairness`, driven by
//! `benches/compare/fairness.sh`): well-behaved clusters write at a steady rate while, with
//! `--bad-connections` > 0, one misbehaving cluster sends as fast as it can (far over its rate
//! limit) with a new series in every sample (a cardinality explosion) and some garbage bodies,
//! never honouring `Retry-After`. Reports the well-behaved clusters' write latency (p50, p99,
//! max) and acknowledged rate, and what the bad cluster was answered.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use prost::Message;
use serde_json::json;
use tokio::sync::Mutex;
use tributary_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

/// `tributary-loadgen fairness` arguments.
#[derive(Debug, Parser)]
#[command(about = "Fair sharing: steady well-behaved clusters beside a misbehaving one")]
struct Args {
    /// Remote-write endpoint.
    #[arg(long)]
    url: String,
    /// Well-behaved clusters (`good-0`, `good-1`, ...).
    #[arg(long, default_value_t = 4)]
    good_clusters: usize,
    /// Series per well-behaved cluster; each sends one sample of each every `--interval-ms`.
    #[arg(long, default_value_t = 2000)]
    good_series: usize,
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
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    duration_secs: u64,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn body(cluster: &str, name: &str, ids: std::ops::Range<u64>, t: i64) -> Vec<u8> {
    let timeseries = ids
        .map(|i| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: name.into(),
                },
                Label {
                    name: "cluster".into(),
                    value: cluster.into(),
                },
                Label {
                    name: "id".into(),
                    value: i.to_string(),
                },
            ],
            samples: vec![Sample {
                value: i as f64,
                timestamp: t,
            }],
            ..Default::default()
        })
        .collect();
    let raw = WriteRequest {
        timeseries,
        ..Default::default()
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Option<u16> {
    let r = client
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let _ = r.bytes().await;
    Some(status)
}

pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs the benchmark; prints one JSON object.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<i32> {
    let args = Args::try_parse_from(args)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(args))
}

async fn run(a: Args) -> anyhow::Result<i32> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let end = Instant::now() + Duration::from_secs(a.duration_secs);
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..a.good_clusters {
        let (client, url, lat, acked, failed) = (
            client.clone(),
            a.url.clone(),
            latencies.clone(),
            acked.clone(),
            failed.clone(),
        );
        let (n, interval) = (a.good_series as u64, Duration::from_millis(a.interval_ms));
        tasks.push(tokio::spawn(async move {
            let cluster = format!("good-{c}");
            // Spread the clusters over the interval, as independent Prometheus servers are.
            tokio::time::sleep(interval.mul_f64(c as f64 / 4.0)).await;
            let mut tick = tokio::time::interval(interval);
            while Instant::now() < end {
                tick.tick().await;
                let b = body(&cluster, "fair_metric", 0..n, now_ms());
                let started = Instant::now();
                match post(&client, &url, b).await {
                    Some(s) if (200..300).contains(&s) => {
                        lat.lock().await.push(started.elapsed().as_secs_f64() * 1000.0);
                        acked.fetch_add(n, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let statuses = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let next_id = Arc::new(AtomicU64::new(0));
    for k in 0..a.bad_connections {
        let (client, url, statuses, next_id) = (client.clone(), a.url.clone(), statuses.clone(), next_id.clone());
        let (batch, rate) = (a.bad_batch as u64, a.bad_rate);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < end {
                // One body in 20 is garbage.
                let b = if (sent + k as u64).is_multiple_of(20) {
                    b"not snappy at all".to_vec()
                } else {
                    let from = next_id.fetch_add(batch, Ordering::Relaxed);
                    body("bad-0", "explosion", from..from + batch, now_ms())
                };
                let status = post(&client, &url, b)
                    .await
                    .map_or("error".to_string(), |s| s.to_string());
                *statuses.lock().await.entry(status).or_default() += 1;
                sent += 1;
                if rate > 0 {
                    tokio::time::sleep(Duration::from_secs_f64(1.0 / rate as f64)).await;
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
    let out = json!({
        "good_clusters": a.good_clusters,
        "good_series": a.good_series,
        "bad_connections": a.bad_connections,
        "seconds": secs,
        "good_requests": lat.len(),
        "good_failed_requests": failed.load(Ordering::Relaxed),
        "good_acked_samples_per_s": acked.load(Ordering::Relaxed) as f64 / secs,
        "good_p50_ms": quantile(&lat, 0.5),
        "good_p99_ms": quantile(&lat, 0.99),
        "good_max_ms": lat.last().copied().unwrap_or(f64::NAN),
        "bad_statuses": *statuses.lock().await,
        "bad_series_sent": next_id.load(Ordering::Relaxed),
    });
    let _ = writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
