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
use crate::decode::{self, loki, otlp, otlp_logs, otlp_metrics, prom_remote_write, prom_remote_write_v2};
use crate::error::{Error, Result};
use crate::head::Head;
use crate::head::SignalBlock;
use crate::metrics::IngestMetrics;
use crate::record::{self, Kind};
use crate::wal::{ReplayStats, Wal};
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;

/// What a successful write stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    pub series: usize,
    pub samples: usize,
}

/// What a remote-write 2.0 request stored (the `X-Prometheus-Remote-Write-*-Written` headers),
/// and why part of it was refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct V2Outcome {
    pub samples: usize,
    pub histograms: usize,
    pub exemplars: usize,
    /// Set when some series were invalid: the 400's reason (the rest was stored).
    pub rejected: Option<String>,
}

/// What an OTLP export stored: the parts of OTLP's `partial_success`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OtlpOutcome {
    pub accepted: u64,
    /// Data points or log records refused as invalid.
    pub rejected: u64,
    /// Why, when `rejected > 0`.
    pub message: String,
}

/// How a Loki push body is serialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LokiFormat {
    /// Snappy-compressed protobuf `logproto.PushRequest`.
    Protobuf,
    /// `{"streams":[{"stream":{...},"values":[["<ns>","line"]]}]}`
    Json,
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlushSummary {
    pub series: usize,
    pub samples: usize,
    pub log_records: usize,
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
        let replay_cfg = cfg.clone();
        let (wal, replay) = tokio::task::spawn_blocking(move || {
            Wal::open(&wal_dir, wal_cfg, |payload| {
                replay_record(&replay_head, &replay_cfg, payload).map_err(crate::wal::WalError::Replay)
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
        let prom_remote_write::Decoded {
            batch,
            histograms,
            exemplars,
            metadata,
            rejected,
            ..
        } = decoded;
        let summary = WriteSummary {
            series: batch.series.len(),
            samples: batch.sample_count(),
        };
        let signals = SignalBlock {
            histograms,
            exemplars,
            metadata: metadata.into_iter().collect(),
            ..Default::default()
        };
        if summary.samples > 0 || !signals.is_empty() {
            self.commit(Kind::PromRemoteWriteV1, &ctx, &body, || {
                let unplaced = self.head.append(&batch);
                self.head.append_signals(signals);
                unplaced
            })
            .await?;
        }
        drop(shared);
        self.metrics.samples.inc_by(summary.samples as u64);
        if !rejected.is_empty() {
            self.metrics.rejected_samples.inc_by(rejected.samples as u64);
            return Err(Error::InvalidInput(rejected.message()));
        }
        Ok(summary)
    }

    /// Makes one record durable and puts its data in the head. The caller holds the gate (shared).
    async fn commit(
        &self,
        kind: Kind,
        ctx: &ClusterContext,
        body: &[u8],
        append: impl FnOnce() -> usize,
    ) -> Result<()> {
        self.check_pressure()?;
        let rec = record::encode(kind, ctx, body).map_err(|e| Error::InvalidInput(e.to_string()))?;
        self.wal.append(rec).await?;
        let unplaced = append();
        if unplaced > 0 {
            return Err(Error::Unavailable(format!(
                "{unplaced} samples could not be placed in the head; retry the request"
            )));
        }
        Ok(())
    }

    fn check_body(&self, len: usize) -> Result<()> {
        if len > self.cfg.max_body_bytes {
            return Err(Error::PayloadTooLarge {
                what: "body",
                actual: len,
                limit: self.cfg.max_body_bytes,
            });
        }
        Ok(())
    }

    /// One Prometheus remote-write 2.0 request (`io.prometheus.write.v2.Request`, snappy body).
    /// Stores every valid series durably; the outcome names what was refused.
    pub async fn write_prom_v2(&self, ctx: ClusterContext, body: Bytes) -> Result<V2Outcome> {
        self.check_body(body.len())?;
        let raw = decode::snappy_block(&body, self.cfg.max_decompressed_bytes)?;
        let decoded = prom_remote_write_v2::decode(&raw, &ctx, &self.limits())
            .map_err(|e| Error::InvalidInput(format!("body is not a valid io.prometheus.write.v2.Request: {e}")))?;
        let signals = SignalBlock {
            histograms: decoded.histograms,
            exemplars: decoded.exemplars,
            metadata: decoded.metadata.into_iter().collect(),
            ..Default::default()
        };
        let outcome = V2Outcome {
            samples: decoded.samples_written,
            histograms: decoded.histograms_written,
            exemplars: decoded.exemplars_written,
            rejected: (!decoded.rejected.is_empty()).then(|| decoded.rejected.message()),
        };
        if decoded.batch.sample_count() > 0 || !signals.is_empty() {
            let _shared = self.gate.read().await;
            self.commit(Kind::PromRemoteWriteV2, &ctx, &body, || {
                let unplaced = self.head.append(&decoded.batch);
                self.head.append_signals(signals);
                unplaced
            })
            .await?;
        }
        self.metrics.samples.inc_by(outcome.samples as u64);
        self.metrics.rejected_samples.inc_by(decoded.rejected.samples as u64);
        Ok(outcome)
    }

    fn otlp_metrics_options(&self) -> otlp_metrics::Options<'_> {
        otlp_metrics::Options {
            promote_resource_attributes: &self.cfg.otlp.promote_resource_attributes,
            add_suffixes: self.cfg.otlp.add_metric_suffixes,
            limits: self.limits(),
        }
    }

    fn otlp_logs_options(&self) -> otlp_logs::Options<'_> {
        otlp_logs::Options {
            stream_attributes: &self.cfg.otlp.log_stream_attributes,
            max_attributes: self.cfg.otlp.max_log_attributes,
            max_body_bytes: self.cfg.otlp.max_log_body_bytes,
            max_label_value_bytes: self.cfg.max_label_value_bytes,
        }
    }

    /// One OTLP metrics export. Valid points are stored durably; invalid ones are counted and
    /// explained in the outcome (OTLP's `partial_success`). A request with nothing valid is an
    /// `InvalidInput` error (400: retrying cannot help).
    pub async fn write_otlp_metrics(
        &self,
        ctx: ClusterContext,
        req: ExportMetricsServiceRequest,
    ) -> Result<OtlpOutcome> {
        let t = otlp_metrics::translate(&req, &ctx, &self.otlp_metrics_options());
        let outcome = OtlpOutcome {
            accepted: t.points - t.rejected_points,
            rejected: t.rejected_points,
            message: t.reasons.join("; "),
        };
        if outcome.accepted == 0 && outcome.rejected > 0 {
            return Err(Error::InvalidInput(format!(
                "every data point was rejected ({}): {}",
                outcome.rejected, outcome.message
            )));
        }
        let samples: usize = t.series.iter().map(|s| s.samples.len()).sum();
        let signals = SignalBlock {
            histograms: t.histograms,
            exemplars: t.exemplars,
            metadata: t.metadata.into_iter().collect(),
            ..Default::default()
        };
        if samples > 0 || !signals.is_empty() {
            let body = otlp::to_wal_body(&req)?;
            let _shared = self.gate.read().await;
            self.commit(Kind::OtlpMetrics, &ctx, &body, || {
                self.head.append_series(&t.series);
                self.head.append_signals(signals);
                0
            })
            .await?;
        }
        self.metrics.samples.inc_by(samples as u64);
        self.metrics.rejected_samples.inc_by(outcome.rejected);
        Ok(outcome)
    }

    /// One OTLP logs export; the same contract as [`Ingester::write_otlp_metrics`].
    pub async fn write_otlp_logs(&self, ctx: ClusterContext, req: ExportLogsServiceRequest) -> Result<OtlpOutcome> {
        let t = otlp_logs::translate(&req, &ctx, &self.otlp_logs_options());
        let outcome = OtlpOutcome {
            accepted: t.records.len() as u64,
            rejected: t.rejected_records,
            message: t.reasons.join("; "),
        };
        if outcome.accepted == 0 && outcome.rejected > 0 {
            return Err(Error::InvalidInput(format!(
                "every log record was rejected ({}): {}",
                outcome.rejected, outcome.message
            )));
        }
        if !t.records.is_empty() {
            let body = otlp::to_wal_body(&req)?;
            let _shared = self.gate.read().await;
            self.commit(Kind::OtlpLogs, &ctx, &body, || {
                self.head.append_signals(SignalBlock {
                    logs: t.records,
                    ..Default::default()
                });
                0
            })
            .await?;
        }
        self.metrics.log_records.inc_by(outcome.accepted);
        self.metrics.rejected_log_records.inc_by(outcome.rejected);
        Ok(outcome)
    }

    /// One Loki push request: `body` as received (snappy protobuf `logproto.PushRequest`, or JSON
    /// already un-gzipped). Valid entries are stored durably; the outcome counts the refused ones.
    pub async fn write_loki_push(&self, ctx: ClusterContext, body: Bytes, format: LokiFormat) -> Result<OtlpOutcome> {
        self.check_body(body.len())?;
        let opts = self.loki_options();
        let (decoded, kind, wal_body) = match format {
            LokiFormat::Protobuf => {
                let raw = decode::snappy_block(&body, self.cfg.max_decompressed_bytes)?;
                let d = loki::decode_protobuf(&raw, &ctx, &opts)?;
                (d, Kind::LokiPushProtobuf, body.clone())
            }
            LokiFormat::Json => {
                let d = loki::decode_json(&body, &ctx, &opts)?;
                let compressed = snap::raw::Encoder::new()
                    .compress_vec(&body)
                    .map_err(|e| Error::InvalidInput(format!("cannot compress request for the WAL: {e}")))?;
                (d, Kind::LokiPushJson, Bytes::from(compressed))
            }
        };
        let outcome = OtlpOutcome {
            accepted: decoded.records.len() as u64,
            rejected: decoded.rejected,
            message: decoded.reasons.join("; "),
        };
        if !decoded.records.is_empty() {
            let _shared = self.gate.read().await;
            self.commit(kind, &ctx, &wal_body, || {
                self.head.append_signals(SignalBlock {
                    logs: decoded.records,
                    ..Default::default()
                });
                0
            })
            .await?;
        }
        self.metrics.log_records.inc_by(outcome.accepted);
        self.metrics.rejected_log_records.inc_by(outcome.rejected);
        Ok(outcome)
    }

    fn loki_options(&self) -> loki::Options {
        loki::Options {
            max_line_bytes: self.cfg.otlp.max_log_body_bytes,
            max_labels: self.cfg.max_labels_per_series,
            max_label_name_bytes: self.cfg.max_label_name_bytes,
            max_label_value_bytes: self.cfg.max_label_value_bytes,
        }
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
            if !self.head.active_is_empty() {
                self.head.freeze();
            }
            seg
        };
        let mut summary = FlushSummary::default();
        // Earlier failed flushes left their blocks frozen; write them too, oldest first.
        for block in self.head.frozen() {
            match self.write_block(&block).await {
                Ok(w) => {
                    summary.series += block.series.len();
                    summary.samples += block.samples;
                    summary.log_records += block.signals.logs.len();
                    summary.files.extend(w.files);
                    summary.bytes += w.bytes;
                    self.head.drop_frozen(&block);
                }
                Err(e) => {
                    self.metrics
                        .flushes
                        .get_or_create(&crate::metrics::ResultLabels { result: "error" })
                        .inc();
                    return Err(e);
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

    /// Writes every table of one frozen block. Each write is idempotent for readers (a retried
    /// flush rewrites the same rows, which reads deduplicate), so a partial failure just retries.
    async fn write_block(&self, block: &crate::head::Frozen) -> Result<tributary_storage::WriteSummary> {
        let mut all = tributary_storage::WriteSummary::default();
        let mut add = |w: tributary_storage::WriteSummary| {
            all.files.extend(w.files);
            all.rows += w.rows;
            all.bytes += w.bytes;
        };
        if !block.series.is_empty() {
            add(self.storage.write_metrics(&block.series).await?);
        }
        let sig = &block.signals;
        if !sig.histograms.is_empty() {
            add(self.storage.write_histograms(&sig.histograms).await?);
        }
        if !sig.exemplars.is_empty() {
            add(self.storage.write_exemplars(&sig.exemplars).await?);
        }
        if !sig.metadata.is_empty() {
            let metadata: Vec<_> = sig.metadata.iter().cloned().collect();
            add(self.storage.write_metadata(&metadata).await?);
        }
        if !sig.logs.is_empty() {
            add(self.storage.write_logs(&sig.logs).await?);
        }
        Ok(all)
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
                || self.head.active_samples() >= self.cfg.head.max_samples
                || self.head.active_signal_items() >= self.cfg.head.max_samples
                || self.head.active_log_bytes() >= self.cfg.head.max_log_bytes;
            if due && (!self.head.active_is_empty() || !self.head.frozen().is_empty()) {
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
        if !self.head.active_is_empty() || !self.head.frozen().is_empty() {
            self.flush().await?;
        }
        self.wal.close().await?;
        Ok(())
    }
}

/// Applies one WAL record to the head during replay, with the decoders and translation options
/// the write used (limits unbounded: data accepted under older limits must not be lost when an
/// operator lowers them).
fn replay_record(head: &Head, cfg: &IngestConfig, payload: &[u8]) -> std::result::Result<(), String> {
    let rec = record::decode(payload).map_err(|e| e.to_string())?;
    // Never trust the claimed length: snappy expands at most ~21x (a 3-byte copy of 64
    // bytes), so this bound refuses no body any earlier limit accepted.
    let bound = rec.body.len().saturating_mul(22).saturating_add(64);
    let unbounded = prom_remote_write::Limits {
        max_labels_per_series: usize::MAX,
        max_label_name_bytes: usize::MAX,
        max_label_value_bytes: usize::MAX,
    };
    let unplaced = match rec.kind {
        Kind::PromRemoteWriteV1 => {
            let raw = decode::snappy_block(rec.body, bound).map_err(|e| e.to_string())?;
            let decoded = prom_remote_write::decode(&raw, &rec.ctx, &unbounded, head).map_err(|e| e.to_string())?;
            let unplaced = head.append(&decoded.batch);
            head.append_signals(SignalBlock {
                histograms: decoded.histograms,
                exemplars: decoded.exemplars,
                metadata: decoded.metadata.into_iter().collect(),
                ..Default::default()
            });
            unplaced
        }
        Kind::PromRemoteWriteV2 => {
            let raw = decode::snappy_block(rec.body, bound).map_err(|e| e.to_string())?;
            let decoded = prom_remote_write_v2::decode(&raw, &rec.ctx, &unbounded).map_err(|e| e.to_string())?;
            let unplaced = head.append(&decoded.batch);
            head.append_signals(SignalBlock {
                histograms: decoded.histograms,
                exemplars: decoded.exemplars,
                metadata: decoded.metadata.into_iter().collect(),
                ..Default::default()
            });
            unplaced
        }
        Kind::OtlpMetrics => {
            let req: ExportMetricsServiceRequest = otlp::from_wal_body(rec.body, bound).map_err(|e| e.to_string())?;
            let opts = otlp_metrics::Options {
                promote_resource_attributes: &cfg.otlp.promote_resource_attributes,
                add_suffixes: cfg.otlp.add_metric_suffixes,
                limits: unbounded,
            };
            let t = otlp_metrics::translate(&req, &rec.ctx, &opts);
            head.append_series(&t.series);
            head.append_signals(SignalBlock {
                histograms: t.histograms,
                exemplars: t.exemplars,
                metadata: t.metadata.into_iter().collect(),
                ..Default::default()
            });
            0
        }
        Kind::LokiPushProtobuf | Kind::LokiPushJson => {
            let raw = decode::snappy_block(rec.body, bound).map_err(|e| e.to_string())?;
            let opts = loki::Options {
                max_line_bytes: usize::MAX,
                max_labels: usize::MAX,
                max_label_name_bytes: usize::MAX,
                max_label_value_bytes: usize::MAX,
            };
            let d = if rec.kind == Kind::LokiPushProtobuf {
                loki::decode_protobuf(&raw, &rec.ctx, &opts)
            } else {
                loki::decode_json(&raw, &rec.ctx, &opts)
            }
            .map_err(|e| e.to_string())?;
            head.append_signals(SignalBlock {
                logs: d.records,
                ..Default::default()
            });
            0
        }
        Kind::OtlpLogs => {
            let req: ExportLogsServiceRequest = otlp::from_wal_body(rec.body, bound).map_err(|e| e.to_string())?;
            let opts = otlp_logs::Options {
                stream_attributes: &cfg.otlp.log_stream_attributes,
                max_attributes: usize::MAX,
                max_body_bytes: usize::MAX,
                max_label_value_bytes: usize::MAX,
            };
            let t = otlp_logs::translate(&req, &rec.ctx, &opts);
            head.append_signals(SignalBlock {
                logs: t.records,
                ..Default::default()
            });
            0
        }
    };
    if unplaced > 0 {
        return Err(format!(
            "{unplaced} samples of a WAL record could not be placed in the head"
        ));
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
        let err = replay_record(
            &head,
            &IngestConfig::default(),
            &[1, 1, 0, 0, 0, 0, 218, 194, 204, 204, 14],
        )
        .unwrap_err();
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
