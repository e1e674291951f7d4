//! OTLP load: deterministic, realistic OpenTelemetry traffic from a fleet of Kubernetes clusters,
//! and its replay over OTLP/HTTP and OTLP/gRPC (`tributary-loadgen otlp`).
//!
//! # The traffic contract
//!
//! * `clusters` clusters of `pods_per_cluster` instrumented pods each (see `catalog`); every
//!   resource carries `k8s.cluster.name`, so receivers need no cluster header.
//! * **Metrics** (`metrics`): every pod's SDK exports all of its metrics once per round
//!   (`interval_ms`, 15 s by default), cumulative, at its own offset within the interval.
//!   **Logs** (`logs`): every pod's records of one tick (`interval_ms`, 1 s by default) form one
//!   export; the cluster logs `log_records_per_second` in total, shared unevenly by its pods.
//! * Each cluster runs `collectors_per_cluster` Collectors; a pod's telemetry always goes
//!   through the same one (by a hash of the pod). A *stream* is one (cluster, collector); stream
//!   `s` belongs to cluster `s / collectors_per_cluster`. Each Collector batches its pods' exports
//!   like the `batch` processor (`batch_size`, `batch_max_size`; see `batch`); metrics batches
//!   are flushed at the end of every round, logs batches carry over between ticks.
//! * Requests are yielded round by round (tick by tick), the streams interleaved within a round.
//!   Within a stream a data point's (a record's) timestamps strictly increase, so replaying each
//!   stream on one connection in order never sends a receiver out-of-order data.
//! * Same `Config` ⇒ byte-identical protobuf bodies.
//!
//! `prepare` compresses (gzip, as the Collector's exporters do by default) and frames them for
//! the chosen transport before any clock starts; `send` replays them and checks every answer.

mod batch;
mod catalog;
pub mod cli;
mod logs;
mod loki;
mod metrics;
pub(crate) mod send;
mod traces;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

use bytes::Bytes;
use prost::Message;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;

use self::batch::{Batcher, Slice};
use crate::Error;
use crate::workload::shape::mix;

/// Which OTLP signal to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Signal {
    Metrics,
    Logs,
    Traces,
}

/// How bodies are compressed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Compression {
    None,
    Gzip,
}

/// OTLP/HTTP (`POST /v1/...`), OTLP/gRPC, or (logs only) the Loki push API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Http,
    Grpc,
    /// `POST /loki/api/v1/push`, snappy-compressed protobuf whatever `--compression` says
    /// (see `loki`).
    Loki,
}

/// What to generate. See the module docs for the contract.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    pub signal: Signal,
    pub clusters: usize,
    pub pods_per_cluster: usize,
    /// Metrics: export rounds. Logs: ticks.
    pub rounds: usize,
    /// Metrics: the SDKs' export interval. Logs: the tick.
    pub interval_ms: u64,
    /// Logs: records per second per cluster. Traces: spans per second per cluster.
    pub log_records_per_second: f64,
    /// Timestamp (ms since the epoch) of round 0.
    pub start_ms: i64,
    pub seed: u64,
    pub collectors_per_cluster: usize,
    /// The batch processor's `send_batch_size` / `send_batch_max_size` (0: unbounded).
    pub batch_size: usize,
    pub batch_max_size: usize,
    /// Metrics only: chance that a histogram point with new observations carries an exemplar.
    pub exemplar_fraction: f64,
}

impl Config {
    /// The reference workload of `benches/compare/otlp.sh` for `signal`.
    pub(crate) fn reference(signal: Signal) -> Self {
        let (pods, rounds, interval_ms) = match signal {
            Signal::Metrics => (300, 60, 15_000),
            Signal::Logs | Signal::Traces => (200, 120, 1000),
        };
        Self {
            signal,
            clusters: 3,
            pods_per_cluster: pods,
            rounds,
            interval_ms,
            log_records_per_second: 5000.0,
            // 2023-11-14T22:13:20Z: fixed so that the reference workload is reproducible.
            start_ms: 1_700_000_000_000,
            seed: 1,
            collectors_per_cluster: 4,
            batch_size: 1000,
            batch_max_size: 2000,
            exemplar_fraction: 0.3,
        }
    }

    /// Rejects configurations that cannot describe Collector traffic.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::InvalidConfig(what.to_owned()));
        if self.interval_ms == 0 {
            return bad("interval must be positive");
        }
        if self.collectors_per_cluster == 0 {
            return bad("collectors per cluster must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch size must be positive");
        }
        if self.batch_max_size != 0 && self.batch_max_size < self.batch_size {
            return bad("batch max size must be 0 (unbounded) or at least the batch size");
        }
        if !(0.0..=1.0).contains(&self.exemplar_fraction) {
            return bad("exemplar fraction must be within [0, 1]");
        }
        if !(self.log_records_per_second.is_finite() && self.log_records_per_second >= 0.0) {
            return bad("log records per second must be a non-negative number");
        }
        Ok(())
    }

    pub(crate) fn streams(&self) -> usize {
        self.clusters * self.collectors_per_cluster.max(1)
    }

    /// The `start_ms` that makes the last round end one interval before `now_ms`, aligned to
    /// the interval (receivers reject data outside their window).
    pub(crate) fn start_ending_before(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms.max(1) as i64;
        let span = (self.rounds as i64 + 1) * interval;
        (now_ms - span).div_euclid(interval) * interval
    }
}

/// One request before compression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRequest {
    /// Protobuf `ExportMetricsServiceRequest` or `ExportLogsServiceRequest`.
    pub body: Vec<u8>,
    /// Data points or log records.
    pub items: u64,
    /// Prometheus samples the data points become (histogram points: buckets + sum + count);
    /// equal to `items` for logs.
    pub samples: u64,
    pub stream: usize,
    pub cluster: usize,
    pub round: usize,
}

/// Generates the workload; see the module docs for the ordering contract.
pub(crate) fn requests(cfg: &Config) -> Result<Requests, Error> {
    cfg.validate()?;
    let collectors = cfg.collectors_per_cluster;
    let mut streams = Vec::with_capacity(cfg.streams());
    let generator = match cfg.signal {
        Signal::Metrics => {
            let clusters: Vec<Vec<metrics::Resource>> = (0..cfg.clusters)
                .map(|c| {
                    let cluster = catalog::build(cfg.seed, c, cfg.pods_per_cluster, cfg.interval_ms, false);
                    metrics::resources(&cluster, cfg.start_ms, cfg.interval_ms, cfg.exemplar_fraction)
                })
                .collect();
            for (c, resources) in clusters.iter().enumerate() {
                for k in 0..collectors {
                    let mut members: Vec<usize> = (0..resources.len())
                        .filter(|&i| (resources[i].collector_key % collectors as u64) as usize == k)
                        .collect();
                    // A Collector receives its pods' exports as they happen within the interval.
                    members.sort_by_key(|&i| (resources[i].offset_ms, i));
                    streams.push(Stream::new(cfg, c, members));
                }
            }
            Generator::Metrics(clusters)
        }
        Signal::Logs => {
            let clusters: Vec<Vec<logs::Source>> = (0..cfg.clusters)
                .map(|c| {
                    let cluster = catalog::build(cfg.seed, c, cfg.pods_per_cluster, cfg.interval_ms, true);
                    logs::sources(&cluster, cfg.log_records_per_second)
                })
                .collect();
            for (c, sources) in clusters.iter().enumerate() {
                for k in 0..collectors {
                    let members = (0..sources.len())
                        .filter(|&i| (mix(sources[i].collector_key) % collectors as u64) as usize == k)
                        .collect();
                    streams.push(Stream::new(cfg, c, members));
                }
            }
            Generator::Logs(clusters)
        }
        Signal::Traces => {
            let clusters: Vec<Vec<traces::Source>> = (0..cfg.clusters)
                .map(|c| {
                    let cluster = catalog::build(cfg.seed, c, cfg.pods_per_cluster, cfg.interval_ms, true);
                    traces::sources(&cluster, cfg.log_records_per_second)
                })
                .collect();
            for (c, sources) in clusters.iter().enumerate() {
                for k in 0..collectors {
                    let members = (0..sources.len())
                        .filter(|&i| (mix(sources[i].collector_key) % collectors as u64) as usize == k)
                        .collect();
                    streams.push(Stream::new(cfg, c, members));
                }
            }
            Generator::Traces(clusters)
        }
    };
    Ok(Requests {
        cfg: cfg.clone(),
        generator,
        streams,
        round: 0,
        finished: false,
        queue: VecDeque::new(),
    })
}

#[derive(Debug)]
enum Generator {
    Metrics(Vec<Vec<metrics::Resource>>),
    Logs(Vec<Vec<logs::Source>>),
    Traces(Vec<Vec<traces::Source>>),
}

/// One Collector: its pods (indices into the cluster's resources/sources) and batch queue.
#[derive(Debug)]
struct Stream {
    cluster: usize,
    members: Vec<usize>,
    batcher: Batcher,
    /// Logs only: exports queued in the batcher, by export id (`first_export` is the oldest).
    exports: VecDeque<(usize, logs::Export)>,
    first_export: usize,
    next_export: usize,
}

impl Stream {
    fn new(cfg: &Config, cluster: usize, members: Vec<usize>) -> Self {
        Self {
            cluster,
            members,
            batcher: Batcher::new(cfg.batch_size, cfg.batch_max_size),
            exports: VecDeque::new(),
            first_export: 0,
            next_export: 0,
        }
    }
}

/// Iterator over the [`RawRequest`]s of a [`Config`].
#[derive(Debug)]
pub(crate) struct Requests {
    cfg: Config,
    generator: Generator,
    streams: Vec<Stream>,
    round: usize,
    finished: bool,
    queue: VecDeque<RawRequest>,
}

impl Iterator for Requests {
    type Item = RawRequest;

    fn next(&mut self) -> Option<RawRequest> {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            let per_stream = if self.round < self.cfg.rounds {
                let round = self.round;
                self.round += 1;
                self.generate(round)
            } else {
                self.finished = true;
                self.finish()
            };
            // Interleave: request 0 of every stream, then request 1, ...
            let mut iters: Vec<_> = per_stream.into_iter().map(Vec::into_iter).collect();
            loop {
                let before = self.queue.len();
                for it in &mut iters {
                    if let Some(r) = it.next() {
                        self.queue.push_back(r);
                    }
                }
                if self.queue.len() == before {
                    break;
                }
            }
        }
    }
}

impl Requests {
    fn generate(&mut self, round: usize) -> Vec<Vec<RawRequest>> {
        let base_ms = self.cfg.start_ms + round as i64 * self.cfg.interval_ms as i64;
        match &mut self.generator {
            Generator::Metrics(clusters) => {
                for resources in clusters.iter_mut() {
                    for r in resources.iter_mut() {
                        r.advance(round as u64);
                    }
                }
                self.streams
                    .iter_mut()
                    .enumerate()
                    .map(|(k, s)| {
                        let resources = &clusters[s.cluster];
                        let mut batches = vec![];
                        for &i in &s.members {
                            s.batcher.push(i, resources[i].points, &mut batches);
                        }
                        s.batcher.flush(&mut batches);
                        batches
                            .iter()
                            .map(|b| metrics_request(resources, b, base_ms, (k, s.cluster, round)))
                            .collect()
                    })
                    .collect()
            }
            Generator::Logs(clusters) => {
                let tick = self.cfg.interval_ms;
                let streams = &mut self.streams;
                streams
                    .iter_mut()
                    .enumerate()
                    .map(|(k, s)| {
                        let sources = &mut clusters[s.cluster];
                        let mut batches = vec![];
                        for &i in &s.members {
                            let export = sources[i].tick(base_ms, tick);
                            if export.is_empty() {
                                continue;
                            }
                            let id = s.next_export;
                            s.next_export += 1;
                            s.batcher.push(id, export.len(), &mut batches);
                            s.exports.push_back((i, export));
                        }
                        logs_requests(s, sources, &batches, (k, round))
                    })
                    .collect()
            }
            Generator::Traces(clusters) => {
                let tick = self.cfg.interval_ms;
                let max = self.cfg.batch_size;
                self.streams
                    .iter()
                    .enumerate()
                    .map(|(k, s)| {
                        let sources = &mut clusters[s.cluster];
                        let exports: Vec<(usize, Vec<_>)> =
                            s.members.iter().map(|&i| (i, sources[i].tick(base_ms, tick))).collect();
                        traces_requests(sources, exports, max, (k, s.cluster, round))
                    })
                    .collect()
            }
        }
    }

    /// The batch processor's last timeout: whatever logs are still queued.
    fn finish(&mut self) -> Vec<Vec<RawRequest>> {
        let round = self.cfg.rounds.saturating_sub(1);
        match &mut self.generator {
            // The span batches are cut every tick (the batch processor's 200 ms timeout is
            // shorter than a tick): nothing is left queued.
            Generator::Metrics(_) | Generator::Traces(_) => vec![],
            Generator::Logs(clusters) => self
                .streams
                .iter_mut()
                .enumerate()
                .map(|(k, s)| {
                    let mut batches = vec![];
                    s.batcher.flush(&mut batches);
                    logs_requests(s, &clusters[s.cluster], &batches, (k, round))
                })
                .collect(),
        }
    }
}

fn metrics_request(
    resources: &[metrics::Resource],
    batch: &[Slice],
    base_ms: i64,
    (stream, cluster, round): (usize, usize, usize),
) -> RawRequest {
    let (req, samples) = metrics::encode_batch(resources, batch, base_ms);
    RawRequest {
        body: req.encode_to_vec(),
        items: batch.iter().map(Slice::len).sum::<usize>() as u64,
        samples: samples as u64,
        stream,
        cluster,
        round,
    }
}

/// One tick's spans of a Collector's pods (each pod's, in pod order) cut into requests of at
/// most `max` spans, a pod's spans split across two requests when the cut falls inside them.
fn traces_requests(
    sources: &[traces::Source],
    exports: Vec<(usize, Vec<tributary_proto::otlp::trace::v1::Span>)>,
    max: usize,
    (stream, cluster, round): (usize, usize, usize),
) -> Vec<RawRequest> {
    use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    let mut out = Vec::new();
    let mut resource_spans = Vec::new();
    let mut items = 0;
    let mut cut = |resource_spans: &mut Vec<_>, items: &mut usize| {
        if *items > 0 {
            out.push(RawRequest {
                body: ExportTraceServiceRequest {
                    resource_spans: std::mem::take(resource_spans),
                }
                .encode_to_vec(),
                items: *items as u64,
                samples: *items as u64,
                stream,
                cluster,
                round,
            });
            *items = 0;
        }
    };
    for (source, mut spans) in exports {
        while !spans.is_empty() {
            let take = spans.len().min(max.max(1) - items);
            let rest = spans.split_off(take);
            items += take;
            resource_spans.push(sources[source].encode(spans));
            spans = rest;
            if items >= max {
                cut(&mut resource_spans, &mut items);
            }
        }
    }
    cut(&mut resource_spans, &mut items);
    out
}

/// Encodes completed log batches, taking their records out of the stream's queued exports.
fn logs_requests(
    s: &mut Stream,
    sources: &[logs::Source],
    batches: &[Vec<Slice>],
    (stream, round): (usize, usize),
) -> Vec<RawRequest> {
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut resource_logs = Vec::with_capacity(batch.len());
        let mut items = 0;
        for slice in batch {
            let Some((source, export)) = s.exports.get_mut(slice.resource - s.first_export) else {
                continue;
            };
            // Slices of one export come in order, so the batch takes the export's front.
            let records: Vec<_> = export.drain(..slice.len().min(export.len())).collect();
            items += records.len();
            resource_logs.push(sources[*source].encode(records));
        }
        while s.exports.front().is_some_and(|(_, e)| e.is_empty()) {
            s.exports.pop_front();
            s.first_export += 1;
        }
        out.push(RawRequest {
            body: ExportLogsServiceRequest { resource_logs }.encode_to_vec(),
            items: items as u64,
            samples: items as u64,
            stream,
            cluster: s.cluster,
            round,
        });
    }
    out
}

/// Bodies ready to send, one queue per connection, and what they carry.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    pub queues: Vec<Vec<send::Body>>,
    pub requests: u64,
    pub items: u64,
    pub samples: u64,
    /// Protobuf bytes before compression.
    pub raw_bytes: u64,
    /// Bytes on the wire (after compression; gRPC's 5-byte frame header included).
    pub body_bytes: u64,
    pub seconds: f64,
}

/// Compresses (on every core) and frames every request for `transport`, and deals the streams
/// to `connections` queues (stream `s` to connection `s % connections`, keeping its order).
pub(crate) fn prepare(
    requests: Requests,
    compression: Compression,
    transport: Transport,
    connections: usize,
) -> Result<Prepared, Error> {
    let started = std::time::Instant::now();
    let connections = connections.max(1);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let jobs = Mutex::new(requests.enumerate());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize, RawRequest, Bytes)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (jobs, tx) = (&jobs, tx.clone());
            scope.spawn(move || {
                loop {
                    let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((i, mut raw)) = next else { break };
                    let body = frame(&raw.body, compression, transport);
                    let raw_len = raw.body.len();
                    // Only the wire form is kept: the raw bodies of a run do not fit in memory.
                    raw.body = Vec::new();
                    if tx.send((i, raw_len, raw, body)).is_err() {
                        break;
                    }
                }
            });
        }
    });
    drop(tx);
    let mut done: Vec<_> = rx.into_iter().collect();
    done.sort_unstable_by_key(|(i, ..)| *i);
    let mut out = Prepared {
        queues: vec![Vec::new(); connections],
        ..Prepared::default()
    };
    for (_, raw_len, raw, body) in done {
        out.requests += 1;
        out.items += raw.items;
        out.samples += raw.samples;
        out.raw_bytes += raw_len as u64;
        out.body_bytes += body.len() as u64;
        out.queues[raw.stream % connections].push(send::Body { body, items: raw.items });
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The wire form of one protobuf body.
pub(crate) fn frame(protobuf: &[u8], compression: Compression, transport: Transport) -> Bytes {
    if transport == Transport::Loki {
        return Bytes::from(loki::push_body(protobuf));
    }
    let payload = match compression {
        Compression::None => protobuf.to_vec(),
        Compression::Gzip => gzip(protobuf),
    };
    match transport {
        Transport::Http | Transport::Loki => Bytes::from(payload),
        Transport::Grpc => {
            // gRPC length-prefixed message: compressed flag, big-endian length, message.
            let mut framed = Vec::with_capacity(payload.len() + 5);
            framed.push(u8::from(compression == Compression::Gzip));
            framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            framed.extend_from_slice(&payload);
            Bytes::from(framed)
        }
    }
}

/// gzip at the default level (6), like Go's `gzip.NewWriter` in the Collector's exporters.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests;
