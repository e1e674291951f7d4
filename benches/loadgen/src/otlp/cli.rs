//! `tributary-loadgen otlp`: generate an OTLP workload, pre-encode it, replay it against an
//! OTLP/HTTP or OTLP/gRPC receiver and print a JSON summary (items/s, and with `--server-pid`
//! the receiver's CPU seconds per million items and peak RSS).
//!
//! Exit status: 0 when every item was acknowledged; 2 (`EXIT_NOT_CLEAN`) when any request failed,
//! any item was rejected in `partial_success`, or the time ran out (stderr says which).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::json;

use super::{Compression, Config, Signal, Transport, prepare, requests, send};
use crate::{Error, process};

/// Exit status when not every item was acknowledged.
pub(crate) const EXIT_NOT_CLEAN: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "tributary-loadgen otlp",
    about = "Replay realistic OpenTelemetry Collector traffic (metrics, logs or traces) over OTLP/HTTP or OTLP/gRPC"
)]
struct Args {
    /// Receiver base URL without path: the OTLP/HTTP listener (e.g. http://127.0.0.1:4318)
    /// or the OTLP/gRPC one (e.g. http://127.0.0.1:4317).
    #[arg(long)]
    endpoint: String,
    #[arg(long, value_enum)]
    transport: Transport,
    #[arg(long, value_enum)]
    signal: Signal,
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// Instrumented pods per cluster [metrics: 300, logs and traces: 200].
    #[arg(long)]
    pods: Option<usize>,
    /// Metrics: export rounds [60]. Logs and traces: ticks [120].
    #[arg(long)]
    rounds: Option<usize>,
    /// Metrics: the SDK export interval [15000]. Logs and traces: the tick [1000].
    #[arg(long)]
    interval_ms: Option<u64>,
    /// Logs: records per second per cluster. Traces: spans per second per cluster.
    #[arg(long, default_value_t = 5000.0)]
    records_per_second: f64,
    /// Collectors per cluster (each batches its pods' exports); defaults to --connections, so
    /// every connection carries one Collector of every cluster.
    #[arg(long)]
    collectors: Option<usize>,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// The batch processor's send_batch_size.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// The batch processor's send_batch_max_size (0: unbounded).
    #[arg(long, default_value_t = 2000)]
    batch_max_size: usize,
    /// Metrics: chance that a histogram point with new observations carries an exemplar.
    #[arg(long, default_value_t = 0.3)]
    exemplar_fraction: f64,
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    compression: Compression,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of round 0 in ms; defaults to the interval-aligned start that makes the last
    /// round fall just before now (receivers reject data outside their window).
    #[arg(long)]
    start_ms: Option<i64>,
    /// PID of the receiver: report its CPU seconds and peak RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Extra request header / gRPC metadata `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// Give up sending after this long; unsent items are reported.
    #[arg(long, default_value_t = 3600)]
    max_duration_secs: u64,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Runs `tributary-loadgen otlp ARGS` (`args` starts with the subcommand name); returns the
/// exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Result<i32, Error> {
    let a = Args::parse_from(args);
    if a.connections == 0 {
        return Err(Error::InvalidConfig("--connections must be positive".into()));
    }
    if a.transport == Transport::Loki && a.signal != Signal::Logs {
        return Err(Error::InvalidConfig("--transport loki carries logs only".into()));
    }
    let reference = Config::reference(a.signal);
    let mut cfg = Config {
        signal: a.signal,
        clusters: a.clusters,
        pods_per_cluster: a.pods.unwrap_or(reference.pods_per_cluster),
        rounds: a.rounds.unwrap_or(reference.rounds),
        interval_ms: a.interval_ms.unwrap_or(reference.interval_ms),
        log_records_per_second: a.records_per_second,
        start_ms: 0,
        seed: a.seed,
        collectors_per_cluster: a.collectors.unwrap_or(a.connections),
        batch_size: a.batch_size,
        batch_max_size: a.batch_max_size,
        exemplar_fraction: a.exemplar_fraction,
    };
    cfg.start_ms = match a.start_ms {
        Some(ms) => ms,
        None => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            cfg.start_ending_before(now)
        }
    };
    let headers = a
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Error::Header(h.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = send::Options::new(a.endpoint.clone(), a.transport, a.signal, a.compression);
    opts.timeout = Duration::from_secs(a.timeout_secs);
    opts.max_retries = a.max_retries;
    opts.max_duration = Duration::from_secs(a.max_duration_secs);
    opts.headers = headers;

    let prepared = prepare(requests(&cfg)?, a.compression, a.transport, a.connections)?;
    let mut log = std::io::stderr().lock();
    let _ = writeln!(
        log,
        "pre-encoded {} requests, {} {}, {} B protobuf, {} B on the wire in {:.1} s",
        prepared.requests,
        prepared.items,
        item_name(a.signal),
        prepared.raw_bytes,
        prepared.body_bytes,
        prepared.seconds
    );
    drop(log);

    let ticks = process::clock_ticks_per_second();
    let self_before = process::usage(std::process::id(), ticks)?;
    let server_before = a.server_pid.map(|pid| process::usage(pid, ticks)).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let queues = prepared.queues;
    let mut outcome = runtime.block_on(send::replay(queues, &opts))?;
    let server_after = a.server_pid.map(|pid| process::usage(pid, ticks)).transpose()?;
    let self_after = process::usage(std::process::id(), ticks)?;

    let wall = outcome.wall.as_secs_f64();
    let acked = outcome.items_acked;
    let per_million = |cpu: f64| (acked > 0).then(|| cpu / acked as f64 * 1e6);
    // Samples acked, assuming rejected items (if any) were average ones.
    let samples_acked = if prepared.items > 0 {
        prepared.samples as f64 * acked as f64 / prepared.items as f64
    } else {
        0.0
    };
    let server = match (a.server_pid, server_before, server_after) {
        (Some(pid), Some(before), Some(after)) => {
            let cpu = after.cpu_seconds - before.cpu_seconds;
            json!({
                "pid": pid,
                "clk_tck": ticks,
                "cpu_seconds_before": before.cpu_seconds,
                "cpu_seconds_after": after.cpu_seconds,
                "cpu_seconds": cpu,
                "cpu_seconds_per_million_items": per_million(cpu),
                "cpu_seconds_per_million_samples": (samples_acked > 0.0).then(|| cpu / samples_acked * 1e6),
                "peak_rss_bytes": after.peak_rss_bytes,
                "rss_bytes": after.rss_bytes,
            })
        }
        _ => serde_json::Value::Null,
    };
    let items = prepared.items.max(1) as f64;
    let summary = json!({
        "endpoint": a.endpoint,
        "transport": a.transport,
        "signal": a.signal,
        "item": item_name(a.signal),
        "compression": a.compression,
        "workload": {
            "clusters": cfg.clusters,
            "pods_per_cluster": cfg.pods_per_cluster,
            "rounds": cfg.rounds,
            "interval_ms": cfg.interval_ms,
            "log_records_per_second": (a.signal == Signal::Logs).then_some(cfg.log_records_per_second),
            "spans_per_second": (a.signal == Signal::Traces).then_some(cfg.log_records_per_second),
            "start_ms": cfg.start_ms,
            "seed": cfg.seed,
            "collectors_per_cluster": cfg.collectors_per_cluster,
            "batch_size": cfg.batch_size,
            "batch_max_size": cfg.batch_max_size,
            "exemplar_fraction": (a.signal == Signal::Metrics).then_some(cfg.exemplar_fraction),
        },
        "connections": a.connections,
        "pregenerated": {
            "requests": prepared.requests,
            "items": prepared.items,
            "samples": prepared.samples,
            "items_per_request": prepared.items as f64 / prepared.requests.max(1) as f64,
            "raw_protobuf_bytes": prepared.raw_bytes,
            "body_bytes": prepared.body_bytes,
            "raw_bytes_per_item": prepared.raw_bytes as f64 / items,
            "body_bytes_per_item": prepared.body_bytes as f64 / items,
            "seconds": prepared.seconds,
        },
        "requests": outcome.requests,
        "requests_ok": outcome.requests_ok,
        "requests_failed": outcome.requests_failed,
        "retries": outcome.retries,
        "items_acked": acked,
        "items_rejected": outcome.items_rejected,
        "items_failed": outcome.items_failed,
        "items_unsent": outcome.items_unsent,
        "samples_acked": samples_acked,
        "warnings": outcome.warnings,
        "errors_by_status": outcome.errors_by_status,
        "error_examples": outcome.error_examples,
        "wall_seconds": wall,
        "acked_items_per_second": if wall > 0.0 { acked as f64 / wall } else { 0.0 },
        "acked_samples_per_second": if wall > 0.0 { samples_acked / wall } else { 0.0 },
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
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Report(e.to_string()))?;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    if let Some(path) = &a.output {
        std::fs::write(path, format!("{text}\n")).map_err(|source| Error::File {
            path: path.display().to_string(),
            source,
        })?;
    }
    if !outcome.clean() || acked != prepared.items {
        let _ = writeln!(
            std::io::stderr().lock(),
            "OTLP RUN NOT CLEAN: {acked} of {} {} acknowledged; {} rejected in partial_success, {} in failed \
             requests, {} unsent; errors {:?}; examples: {:#?}",
            prepared.items,
            item_name(a.signal),
            outcome.items_rejected,
            outcome.items_failed,
            outcome.items_unsent,
            outcome.errors_by_status,
            outcome.error_examples
        );
        return Ok(EXIT_NOT_CLEAN);
    }
    Ok(0)
}

fn item_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Metrics => "data points",
        Signal::Logs => "log records",
        Signal::Traces => "spans",
    }
}
