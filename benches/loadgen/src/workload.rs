//! Deterministic, realistic Kubernetes remote-write traffic.
//!
//! # The traffic contract
//!
//! * `clusters` clusters, each with exactly `series_per_cluster` series (see `catalog` for
//!   their shapes) carrying a `cluster` external label, observed for `samples_per_series`
//!   scrape rounds `interval_ms` apart starting at `start_ms` (each target at its own
//!   offset inside the interval, as scrapes are spread out in real Prometheus).
//! * Each cluster's Prometheus shards its series over `shards_per_cluster` queues by a hash
//!   of their labels. A *stream* is one (cluster, shard) queue; stream `s` belongs to cluster
//!   `s / shards_per_cluster`.
//! * Requests are what Prometheus' queue manager sends: per round, each stream's series in
//!   scrape order, cut into requests of at most `max_samples_per_request` series with one
//!   sample each. Requests are yielded round by round, and within a round the streams are
//!   interleaved (request 0 of every stream, then request 1 of every stream, ...).
//! * Within a stream a series' samples appear in strictly increasing time order. Replaying
//!   every stream on one connection, in yield order, therefore never sends a receiver an
//!   out-of-order sample; replaying the whole sequence in yield order does not either.
//! * Same [`Config`] ⇒ byte-identical bodies.
//!
//! Bodies are the snappy block encoding of a `prometheus.WriteRequest`, byte-identical to
//! what `prost` would encode for [`tributary_proto::prometheus::WriteRequest`]; they are
//! assembled from pre-encoded label bytes because re-encoding every label for every sample
//! would make generation slower than the receivers under test.

mod catalog;
pub(crate) mod shape;

use prost::Message;
use tributary_proto::prometheus::{Sample, field};

use crate::Error;

pub use catalog::cluster_name;

/// What to generate. [`Default`] is the reference workload of the peer comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Clusters, each with its own Prometheus (its own `cluster` label and streams).
    pub clusters: usize,
    /// Series each cluster's Prometheus scrapes.
    pub series_per_cluster: usize,
    /// Scrape rounds, i.e. samples per series.
    pub samples_per_series: usize,
    /// Scrape interval.
    pub interval_ms: u64,
    /// Timestamp (ms since the epoch) of round 0, before each target's scrape offset.
    pub start_ms: i64,
    /// Seed of every random choice; one seed, one workload, byte for byte.
    pub seed: u64,
    /// Prometheus' `queue_config.max_samples_per_send`.
    pub max_samples_per_request: usize,
    /// Prometheus' number of remote-write shards, per cluster.
    pub shards_per_cluster: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clusters: 3,
            series_per_cluster: 30_000,
            samples_per_series: 240,
            interval_ms: 15_000,
            // 2023-11-14T22:13:20Z: fixed so that the default workload is reproducible.
            start_ms: 1_700_000_000_000,
            seed: 1,
            max_samples_per_request: 2000,
            shards_per_cluster: 4,
        }
    }
}

impl Config {
    /// Rejects configurations that cannot describe Prometheus traffic.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::InvalidConfig(what.to_owned()));
        if self.interval_ms == 0 {
            return bad("interval must be positive");
        }
        if self.max_samples_per_request == 0 {
            return bad("max samples per request must be positive");
        }
        if self.shards_per_cluster == 0 {
            return bad("shards per cluster must be positive");
        }
        Ok(())
    }

    /// Samples the whole workload carries.
    pub fn total_samples(&self) -> u64 {
        self.clusters as u64 * self.series_per_cluster as u64 * self.samples_per_series as u64
    }

    /// Number of (cluster, shard) streams; see the module docs.
    pub fn streams(&self) -> usize {
        self.clusters * self.shards_per_cluster.max(1)
    }

    /// The `start_ms` that makes the last round fall one interval before `now_ms`, aligned to
    /// the interval — for receivers that reject samples outside their retention or head window.
    pub fn start_ending_before(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms.max(1) as i64;
        let span = (self.samples_per_series as i64 + 1) * interval;
        (now_ms - span).div_euclid(interval) * interval
    }

    /// Every scrape offset (ms within the interval) that some series of the workload uses:
    /// sample timestamps are `start_ms + round * interval_ms + offset`. Query benchmarks pick
    /// evaluation times off these, so no range-window boundary lands exactly on a sample.
    pub fn scrape_offsets(&self) -> std::collections::BTreeSet<u64> {
        (0..self.clusters)
            .flat_map(|c| catalog::build(self.seed, c, self.series_per_cluster, self.interval_ms))
            .map(|s| s.offset_ms)
            .collect()
    }
}

/// One remote-write request body and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    /// Snappy block-compressed `prometheus.WriteRequest`.
    pub body: Vec<u8>,
    /// Samples in the request (= series, one sample each).
    pub samples: usize,
    /// Size of the protobuf before compression.
    pub raw_len: usize,
    /// The (cluster, shard) stream; see the module docs.
    pub stream: usize,
    /// Index of the cluster that sent it (see [`cluster_name`]).
    pub cluster: usize,
    /// Scrape round of every sample in the request.
    pub round: usize,
}

/// Generates the workload; see the module docs for the ordering contract.
pub fn requests(cfg: &Config) -> Requests {
    Requests::new(cfg)
}

#[derive(Debug)]
struct SeriesState {
    /// Field 1 (`labels`) of `prometheus.TimeSeries`, already encoded.
    labels_pb: Box<[u8]>,
    evolution: shape::Evolution,
    offset_ms: u64,
}

#[derive(Debug)]
struct ClusterState {
    series: Vec<SeriesState>,
    /// Series indices per shard, in scrape order.
    shards: Vec<Vec<u32>>,
}

/// Iterator over the [`EncodedRequest`]s of a [`Config`].
pub struct Requests {
    cfg: Config,
    clusters: Vec<ClusterState>,
    max_batches: usize,
    round: usize,
    batch: usize,
    stream: usize,
    raw: Vec<u8>,
    compressed: Vec<u8>,
    encoder: snap::raw::Encoder,
}

impl Requests {
    fn new(cfg: &Config) -> Self {
        let per_request = cfg.max_samples_per_request.max(1);
        let shards = cfg.shards_per_cluster.max(1);
        let clusters: Vec<ClusterState> = (0..cfg.clusters)
            .map(|c| {
                let catalog = catalog::build(cfg.seed, c, cfg.series_per_cluster, cfg.interval_ms);
                let mut members = vec![Vec::new(); shards];
                let series = catalog
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut labels_pb = Vec::new();
                        for label in &s.labels {
                            labels_pb.push(key(field::TIMESERIES_LABELS));
                            label
                                .encode_length_delimited(&mut labels_pb)
                                .expect("Vec grows as needed");
                        }
                        members[(shape::mix(fnv1a(&labels_pb)) % shards as u64) as usize].push(i as u32);
                        SeriesState {
                            labels_pb: labels_pb.into(),
                            evolution: s.evolution,
                            offset_ms: s.offset_ms,
                        }
                    })
                    .collect();
                ClusterState {
                    series,
                    shards: members,
                }
            })
            .collect();
        let max_batches = clusters
            .iter()
            .flat_map(|c| c.shards.iter())
            .map(|m| m.len().div_ceil(per_request))
            .max()
            .unwrap_or(0);
        Self {
            cfg: cfg.clone(),
            clusters,
            max_batches,
            round: 0,
            batch: 0,
            stream: 0,
            raw: Vec::new(),
            compressed: Vec::new(),
            encoder: snap::raw::Encoder::new(),
        }
    }

    fn encode(&mut self, cluster: usize, shard: usize, lo: usize, hi: usize) -> EncodedRequest {
        let round = self.round;
        let base_ms = self.cfg.start_ms + round as i64 * self.cfg.interval_ms as i64;
        let state = &mut self.clusters[cluster];
        self.raw.clear();
        for &i in &state.shards[shard][lo..hi] {
            let s = &mut state.series[i as usize];
            if round > 0 {
                s.evolution.advance(round as u64);
            }
            let sample = Sample {
                value: s.evolution.value(),
                timestamp: base_ms + s.offset_ms as i64,
            };
            encode_timeseries(&mut self.raw, &s.labels_pb, &sample);
        }
        self.compressed.resize(snap::raw::max_compress_len(self.raw.len()), 0);
        let n = self
            .encoder
            .compress(&self.raw, &mut self.compressed)
            .expect("snappy accepts any input below 4 GiB");
        EncodedRequest {
            // Copy out so each body's capacity is its length, not the worst-case bound.
            body: self.compressed[..n].to_vec(),
            samples: hi - lo,
            raw_len: self.raw.len(),
            stream: cluster * self.cfg.shards_per_cluster.max(1) + shard,
            cluster,
            round,
        }
    }
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests")
            .field("cfg", &self.cfg)
            .field("round", &self.round)
            .field("batch", &self.batch)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Iterator for Requests {
    type Item = EncodedRequest;

    fn next(&mut self) -> Option<EncodedRequest> {
        let per_request = self.cfg.max_samples_per_request.max(1);
        let shards = self.cfg.shards_per_cluster.max(1);
        loop {
            if self.round >= self.cfg.samples_per_series || self.max_batches == 0 {
                return None;
            }
            if self.batch >= self.max_batches {
                self.round += 1;
                self.batch = 0;
                continue;
            }
            if self.stream >= self.cfg.streams() {
                self.batch += 1;
                self.stream = 0;
                continue;
            }
            let (cluster, shard) = (self.stream / shards, self.stream % shards);
            self.stream += 1;
            let len = self.clusters[cluster].shards[shard].len();
            let lo = self.batch * per_request;
            if lo < len {
                return Some(self.encode(cluster, shard, lo, len.min(lo + per_request)));
            }
        }
    }
}

/// Key byte of a length-delimited field (all field numbers used here are below 16).
fn key(field: u32) -> u8 {
    debug_assert!(field < 16);
    ((field << 3) | 2) as u8
}

/// Appends `WriteRequest.timeseries` = { labels (pre-encoded), samples: [sample] }.
fn encode_timeseries(out: &mut Vec<u8>, labels_pb: &[u8], sample: &Sample) {
    let sample_len = sample.encoded_len();
    let body_len = labels_pb.len() + 1 + prost::length_delimiter_len(sample_len) + sample_len;
    out.push(key(field::WRITE_REQUEST_TIMESERIES));
    prost::encode_length_delimiter(body_len, out).expect("Vec grows as needed");
    out.extend_from_slice(labels_pb);
    out.push(key(field::TIMESERIES_SAMPLES));
    sample.encode_length_delimited(out).expect("Vec grows as needed");
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;
