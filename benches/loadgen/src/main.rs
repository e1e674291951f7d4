//! `tributary-loadgen`: replay a realistic multi-cluster remote-write workload against a
//! receiver and print a JSON summary (throughput, errors, and with `--server-pid` the
//! receiver's CPU seconds per million samples and peak RSS). `tributary-loadgen query ...`
//! runs the query-latency benchmark instead (see `tributary_loadgen::query`), and
//! `tributary-loadgen otlp ...` replays OTLP metrics or logs (see `tributary_loadgen::otlp`).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;
use tokio::sync::mpsc;
use tributary_loadgen::process;
use tributary_loadgen::replay::{self, Options, Prepared};
use tributary_loadgen::workload::{self, Config};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Replay realistic Kubernetes remote-write traffic against a receiver"
)]
struct Args {
    /// Remote-write endpoint, e.g. http://127.0.0.1:9090/api/v1/write; several, comma-separated,
    /// spread the connections over them (connection i to URL i mod n).
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// Series per cluster.
    #[arg(long, default_value_t = 30_000)]
    series: usize,
    /// Samples per series (scrape rounds).
    #[arg(long, default_value_t = 240)]
    samples: usize,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval_secs: u64,
    /// Concurrent connections. Each carries whole (cluster, shard) streams, in order.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Remote-write shards per cluster; defaults to --connections so every connection
    /// carries one shard of every cluster.
    #[arg(long)]
    shards_per_cluster: Option<usize>,
    #[arg(long, default_value_t = 2000)]
    max_samples_per_request: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of the first round in ms; defaults to the interval-aligned start that makes
    /// the last sample fall just before now (receivers reject data outside their window).
    #[arg(long)]
    start_ms: Option<i64>,
    /// Generate every body before the clock starts, so generation CPU is not measured
    /// (needs ~30 B/sample of memory). Without it, a thread generates while sending.
    #[arg(long)]
    pregenerate: bool,
    /// PID of the receiver: report its CPU seconds and peak RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Extra request header `Name: value` (repeatable), e.g. `X-Tributary-Cluster: a`.
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// Give up sending after this long; unsent samples are reported.
    #[arg(long, default_value_t = 3600)]
    max_duration_secs: u64,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

/// Exit status when the run completed but not every sample was acknowledged.
const EXIT_UNACKED: i32 = 2;

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "query") {
        std::process::exit(tributary_loadgen::query::cli::main(std::env::args_os().skip(1))?);
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "fairness") {
        std::process::exit(tributary_loadgen::fairness::main(std::env::args_os().skip(1))?);
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "soak") {
        std::process::exit(tributary_loadgen::soak::main(std::env::args_os().skip(1))?);
    }
    if std::env::args_os().nth(1).is_some_and(|a| a == "otlp") {
        std::process::exit(tributary_loadgen::otlp::cli::main(std::env::args_os().skip(1))?);
    }
    let args = Args::parse();
    if args.connections == 0 {
        bail!("--connections must be positive");
    }
    let mut cfg = Config {
        clusters: args.clusters,
        series_per_cluster: args.series,
        samples_per_series: args.samples,
        interval_ms: args.interval_secs.saturating_mul(1000),
        start_ms: 0,
        seed: args.seed,
        max_samples_per_request: args.max_samples_per_request,
        shards_per_cluster: args.shards_per_cluster.unwrap_or(args.connections),
    };
    cfg.start_ms = match args.start_ms {
        Some(ms) => ms,
        None => cfg.start_ending_before(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64),
    };
    cfg.validate()?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("--header {h:?}: expected `Name: value`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = Options {
        url: args.url.clone(),
        timeout: Duration::from_secs(args.timeout_secs),
        max_retries: args.max_retries,
        max_duration: Duration::from_secs(args.max_duration_secs),
        headers,
        ..Options::default()
    };

    let ticks = process::clock_ticks_per_second();
    let (queues, generated) = if args.pregenerate {
        let (queues, generated) = pregenerate(&cfg, args.connections);
        eprintln!(
            "pre-generated {} requests, {} samples, {} B in {:.1} s",
            generated.requests,
            generated.samples,
            generated.body_bytes,
            generated.seconds.unwrap_or_default()
        );
        (queues, Some(generated))
    } else {
        (stream(&cfg, args.connections), None)
    };

    // Taken after pre-generation, so the figure is the sending cost only (with --pregenerate).
    let self_before = process::usage(std::process::id(), ticks)?;
    let server_before = args.server_pid.map(|pid| process::usage(pid, ticks)).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut outcome = runtime.block_on(replay::replay(queues, &opts))?;
    let server_after = args.server_pid.map(|pid| process::usage(pid, ticks)).transpose()?;
    let self_after = process::usage(std::process::id(), ticks)?;

    let wall = outcome.wall.as_secs_f64();
    let acked = outcome.samples_acked;
    let per_million = |cpu: f64| {
        if acked > 0 {
            json!(cpu / acked as f64 * 1e6)
        } else {
            json!(null)
        }
    };
    let server = match (args.server_pid, server_before, server_after) {
        (Some(pid), Some(before), Some(after)) => {
            let cpu = after.cpu_seconds - before.cpu_seconds;
            json!({
                "pid": pid,
                "clk_tck": ticks,
                "cpu_seconds_before": before.cpu_seconds,
                "cpu_seconds_after": after.cpu_seconds,
                "cpu_seconds": cpu,
                "cpu_seconds_per_million_samples": per_million(cpu),
                "peak_rss_bytes": after.peak_rss_bytes,
                "rss_bytes": after.rss_bytes,
            })
        }
        _ => json!(null),
    };
    let summary = json!({
        "url": args.url,
        "workload": {
            "clusters": cfg.clusters,
            "series_per_cluster": cfg.series_per_cluster,
            "samples_per_series": cfg.samples_per_series,
            "interval_ms": cfg.interval_ms,
            "start_ms": cfg.start_ms,
            "seed": cfg.seed,
            "max_samples_per_request": cfg.max_samples_per_request,
            "shards_per_cluster": cfg.shards_per_cluster,
            "samples_total": cfg.total_samples(),
        },
        "connections": args.connections,
        "pregenerated": generated.as_ref().map(|g| json!({
            "requests": g.requests,
            "body_bytes": g.body_bytes,
            "raw_protobuf_bytes": g.raw_bytes,
            "compressed_bytes_per_sample": g.body_bytes as f64 / g.samples.max(1) as f64,
            "raw_bytes_per_sample": g.raw_bytes as f64 / g.samples.max(1) as f64,
            "seconds": g.seconds,
        })),
        "requests": outcome.requests,
        "requests_ok": outcome.requests_ok,
        "requests_failed": outcome.requests_failed,
        "retries": outcome.retries,
        "samples_acked": acked,
        "samples_failed": outcome.samples_failed,
        "samples_unsent": outcome.samples_unsent,
        "errors_by_status": outcome.errors_by_status,
        "error_examples": outcome.error_examples,
        "wall_seconds": wall,
        "acked_samples_per_second": if wall > 0.0 { acked as f64 / wall } else { 0.0 },
        "bytes_sent": outcome.bytes_sent,
        "latency_ms": {
            "p50": outcome.latency_ms(0.5),
            "p90": outcome.latency_ms(0.9),
            "p99": outcome.latency_ms(0.99),
            "max": outcome.latency_ms(1.0),
        },
        "server": server,
        "loadgen_cpu_seconds": self_after.cpu_seconds - self_before.cpu_seconds,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    if let Some(path) = &args.output {
        std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    if acked < cfg.total_samples() {
        eprintln!(
            "{} of {} samples were not acknowledged",
            cfg.total_samples() - acked,
            cfg.total_samples()
        );
        std::process::exit(EXIT_UNACKED);
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Generated {
    requests: u64,
    samples: u64,
    body_bytes: u64,
    raw_bytes: u64,
    seconds: Option<f64>,
}

/// Connection that carries `stream`: whole streams per connection keep each series in order.
fn connection_of(stream: usize, connections: usize) -> usize {
    stream % connections
}

fn pregenerate(cfg: &Config, connections: usize) -> (Vec<mpsc::Receiver<Prepared>>, Generated) {
    let started = Instant::now();
    let mut per_connection: Vec<Vec<Prepared>> = vec![Vec::new(); connections];
    let mut g = Generated::default();
    for req in workload::requests(cfg) {
        g.requests += 1;
        g.samples += req.samples as u64;
        g.body_bytes += req.body.len() as u64;
        g.raw_bytes += req.raw_len as u64;
        per_connection[connection_of(req.stream, connections)].push(Prepared {
            body: Bytes::from(req.body),
            samples: req.samples as u64,
        });
    }
    g.seconds = Some(started.elapsed().as_secs_f64());
    let queues = per_connection
        .into_iter()
        .map(|bodies| {
            let (tx, rx) = mpsc::channel(bodies.len().max(1));
            for b in bodies {
                // Capacity equals the number of bodies, so this cannot fail.
                let _ = tx.try_send(b);
            }
            rx
        })
        .collect();
    (queues, g)
}

/// Generates on a thread while sending; bounded queues keep memory flat.
fn stream(cfg: &Config, connections: usize) -> Vec<mpsc::Receiver<Prepared>> {
    let (senders, queues): (Vec<_>, Vec<_>) = (0..connections).map(|_| mpsc::channel::<Prepared>(32)).unzip();
    let cfg = cfg.clone();
    std::thread::spawn(move || {
        for req in workload::requests(&cfg) {
            let prepared = Prepared {
                body: Bytes::from(req.body),
                samples: req.samples as u64,
            };
            if senders[connection_of(req.stream, senders.len())]
                .blocking_send(prepared)
                .is_err()
            {
                return;
            }
        }
    });
    queues
}
