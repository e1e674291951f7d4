//! The ingester: the one core object every receiver calls.
//!
//! Write path: decode and validate → append the WAL record and wait for its fsync → add to the
//! head → acknowledge. Flush path: freeze the head and rotate the WAL under one gate → write
//! Parquet → drop the frozen block → delete the WAL segments it covered.
//!
//! The gate is what makes "nothing acknowledged is lost" hold across flushes: a write holds it
//! (shared) from its WAL append until its data is in the head, and a flush takes it exclusively to
//! freeze and rotate. So every sample in a WAL segment that a flush deletes is in the frozen block
//! that flush wrote to Parquet first.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Mutex, RwLock};
use tributary_storage::Storage;

use crate::cluster::ClusterContext;
use crate::config::IngestConfig;
use crate::decode::{self, prom_remote_write};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::metrics::IngestMetrics;
use crate::record::{self, Kind};
use crate::wal::{ReplayStats, Wal};

/// What a successful write stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    pub series: usize,
    pub samples: usize,
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlushSummary {
    pub series: usize,
    pub samples: usize,
    pub files: Vec<String>,
    pub bytes: u64,
    pub seconds: f64,
}

/// Receives, makes durable, holds and flushes. One per process.
#[derive(Debug)]
pub struct Ingester {
    cfg: IngestConfig,
    wal: Wal,
    head: Arc<Head>,
    storage: Arc<Storage>,
    gate: RwLock<()>,
    flush_lock: Mutex<()>,
    metrics: IngestMetrics,
    replay: ReplayStats,
}

impl Ingester {
    /// Opens the WAL under `data_dir/wal`, replays it into a fresh head, and is ready to write.
    pub async fn open(cfg: IngestConfig, data_dir: &Path, storage: Arc<Storage>) -> Result<Arc<Self>> {
        let head = Arc::new(Head::new());
        let wal_dir = data_dir.join("wal");
        let wal_cfg = cfg.wal.clone();
        let replay_head = head.clone();
        let (wal, replay) = tokio::task::spawn_blocking(move || {
            Wal::open(&wal_dir, wal_cfg, |payload| {
                replay_record(&replay_head, payload).map_err(crate::wal::WalError::Replay)
            })
        })
        .await
        .map_err(|e| Error::Unavailable(format!("WAL replay task failed: {e}")))??;
        tracing::info!(
            ?replay,
            head_samples = head.active_samples(),
            "replayed write-ahead log"
        );
        let metrics = IngestMetrics::default();
        Ok(Arc::new(Self {
            cfg,
            wal,
            head,
            storage,
            gate: RwLock::new(()),
            flush_lock: Mutex::new(()),
            metrics,
            replay,
        }))
    }

    pub fn config(&self) -> &IngestConfig {
        &self.cfg
    }

    pub fn head(&self) -> Arc<Head> {
        self.head.clone()
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    fn limits(&self) -> prom_remote_write::Limits {
        prom_remote_write::Limits {
            max_labels_per_series: self.cfg.max_labels_per_series,
            max_label_name_bytes: self.cfg.max_label_name_bytes,
            max_label_value_bytes: self.cfg.max_label_value_bytes,
        }
    }

    /// One Prometheus remote-write 1.0 request: `body` is the snappy-compressed `WriteRequest`.
    ///
    /// Stores every valid series durably before returning. If some series were invalid, returns
    /// `Err(InvalidInput)` naming them *after* storing the rest (remote-write does not retry a 400).
    pub async fn write_prom_v1(&self, ctx: ClusterContext, body: Bytes) -> Result<WriteSummary> {
        if body.len() > self.cfg.max_body_bytes {
            return Err(Error::PayloadTooLarge {
                what: "body",
                actual: body.len(),
                limit: self.cfg.max_body_bytes,
            });
        }
        let raw = decode::snappy_block(&body, self.cfg.max_decompressed_bytes)?;
        // Decode under the gate: a series the decoder finds in the head's raw index must still be
        // there when it is appended, and only a freeze (exclusive) clears that index.
        let shared = self.gate.read().await;
        let decoded = prom_remote_write::decode(&raw, &ctx, &self.limits(), &*self.head)
            .map_err(|e| Error::InvalidInput(format!("body is not a valid prometheus.WriteRequest: {e}")))?;
        let summary = WriteSummary {
            series: decoded.batch.series.len(),
            samples: decoded.batch.sample_count(),
        };
        if summary.samples > 0 {
            self.check_pressure()?;
            let rec =
                record::encode(Kind::PromRemoteWriteV1, &ctx, &body).map_err(|e| Error::InvalidInput(e.to_string()))?;
            self.wal.append(rec).await?;
            let unplaced = self.head.append(&decoded.batch);
            if unplaced > 0 {
                // The data is in the WAL, so a restart would recover it; the client's retry is
                // deduplicated. Never acknowledge what the head did not take.
                return Err(Error::Unavailable(format!(
                    "{unplaced} samples could not be placed in the head; retry the request"
                )));
            }
        }
        drop(shared);
        self.metrics.samples.inc_by(summary.samples as u64);
        self.metrics.exemplars_dropped.inc_by(decoded.exemplars_ignored as u64);
        if !decoded.rejected.is_empty() {
            self.metrics.rejected_samples.inc_by(decoded.rejected.samples as u64);
            return Err(Error::InvalidInput(decoded.rejected.message()));
        }
        Ok(summary)
    }

    fn check_pressure(&self) -> Result<()> {
        let held = self.head.total_samples();
        if held >= self.cfg.head.hard_limit_samples {
            return Err(Error::TooManyRequests(format!(
                "the head holds {held} samples, the limit is {}: flushes to object storage are behind",
                self.cfg.head.hard_limit_samples
            )));
        }
        Ok(())
    }

    /// Writes everything in the head to Parquet; returns once the files are in the object store
    /// and the WAL segments they cover are deleted. One flush runs at a time.
    pub async fn flush(&self) -> Result<FlushSummary> {
        let _one = self.flush_lock.lock().await;
        let started = Instant::now();
        let cut = {
            let _exclusive = self.gate.write().await;
            let seg = self.wal.rotate().await?;
            if self.head.active_samples() > 0 {
                self.head.freeze();
            }
            seg
        };
        let mut summary = FlushSummary::default();
        // Earlier failed flushes left their blocks frozen; write them too, oldest first.
        for block in self.head.frozen() {
            match self.storage.write_metrics(&block.series).await {
                Ok(w) => {
                    summary.series += block.series.len();
                    summary.samples += block.samples;
                    summary.files.extend(w.files);
                    summary.bytes += w.bytes;
                    self.head.drop_frozen(&block);
                }
                Err(e) => {
                    self.metrics
                        .flushes
                        .get_or_create(&crate::metrics::ResultLabels { result: "error" })
                        .inc();
                    return Err(e.into());
                }
            }
        }
        self.wal.remove_before(cut).await?;
        summary.seconds = started.elapsed().as_secs_f64();
        self.metrics
            .flushes
            .get_or_create(&crate::metrics::ResultLabels { result: "ok" })
            .inc();
        self.metrics.flushed_samples.inc_by(summary.samples as u64);
        tracing::info!(
            series = summary.series,
            samples = summary.samples,
            files = summary.files.len(),
            seconds = summary.seconds,
            "flushed head to parquet"
        );
        Ok(summary)
    }

    /// Flushes on the configured interval, or early when the head is large, until `stop` fires.
    pub async fn run_flusher(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last = Instant::now();
        let tick = Duration::from_secs(1).min(self.cfg.head.flush_interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return,
            }
            self.refresh_gauges();
            let due = last.elapsed() >= self.cfg.head.flush_interval
                || self.head.active_samples() >= self.cfg.head.max_samples;
            if due && (self.head.active_samples() > 0 || !self.head.frozen().is_empty()) {
                if let Err(e) = self.flush().await {
                    tracing::error!(error = %e, "periodic flush failed; will retry");
                    continue;
                }
                last = Instant::now();
            } else if due {
                last = Instant::now();
            }
        }
    }

    /// Updates gauges that mirror state owned elsewhere.
    pub fn refresh_gauges(&self) {
        self.metrics.head_samples.set(self.head.active_samples() as i64);
        self.metrics.head_series.set(self.head.active_series() as i64);
        let w = self.wal.stats();
        self.metrics.wal_fsyncs.set(w.fsyncs as i64);
        self.metrics.wal_bytes.set(w.bytes as i64);
    }

    /// Graceful stop: flush what the head holds, then close the WAL.
    pub async fn shutdown(&self) -> Result<()> {
        if self.head.active_samples() > 0 || !self.head.frozen().is_empty() {
            self.flush().await?;
        }
        self.wal.close().await?;
        Ok(())
    }
}

/// Applies one WAL record to the head during replay.
fn replay_record(head: &Head, payload: &[u8]) -> std::result::Result<(), String> {
    let rec = record::decode(payload).map_err(|e| e.to_string())?;
    match rec.kind {
        Kind::PromRemoteWriteV1 => {
            // Never trust the claimed length: snappy expands at most ~21x (a 3-byte copy of 64
            // bytes), so this bound refuses no body any earlier limit accepted.
            let bound = rec.body.len().saturating_mul(22).saturating_add(64);
            let raw = decode::snappy_block(rec.body, bound).map_err(|e| e.to_string())?;
            let unbounded = prom_remote_write::Limits {
                max_labels_per_series: usize::MAX,
                max_label_name_bytes: usize::MAX,
                max_label_value_bytes: usize::MAX,
            };
            let decoded = prom_remote_write::decode(&raw, &rec.ctx, &unbounded, head).map_err(|e| e.to_string())?;
            let unplaced = head.append(&decoded.batch);
            if unplaced > 0 {
                return Err(format!(
                    "{unplaced} samples of a WAL record could not be placed in the head"
                ));
            }
        }
        other => return Err(format!("WAL record kind {other:?} is not replayed by this build")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `wal_record` fuzz target: a record claiming a 2.8 GB body must not allocate it.
    #[test]
    fn replay_refuses_a_snappy_length_the_body_cannot_hold() {
        let head = Head::new();
        let err = replay_record(&head, &[1, 1, 0, 0, 0, 0, 218, 194, 204, 204, 14]).unwrap_err();
        assert!(err.contains("too large") || err.contains("snappy"), "{err}");
    }

    #[test]
    fn replay_bound_admits_the_densest_snappy() {
        // 1 MiB of zeros compresses to ~48 KiB: well inside the 22x bound.
        let body = snap::raw::Encoder::new().compress_vec(&vec![0u8; 1 << 20]).unwrap();
        let bound = body.len() * 22 + 64;
        assert!(decode::snappy_block(&body, bound).is_ok());
    }
}
