//! The flush path (see the module docs of [`super`]): when the head is due, freezing it under
//! the gate, writing its blocks, committing them with the WAL mark, and trimming the WAL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{FlushSummary, Ingester, LastFlush, now_ms};
use crate::error::{Error, Result};
use crate::wal::SegmentId;

/// A flush whose manifest commit failed without a clear answer.
#[derive(Debug)]
pub(super) struct Unconfirmed {
    cut: SegmentId,
    blocks: Vec<Arc<crate::head::Frozen>>,
}

impl Ingester {
    /// The active part is over a size limit that makes it due for a flush.
    pub(super) fn over_size_limit(&self) -> bool {
        let h = &self.cfg.head;
        self.head.active_samples() >= h.max_samples
            || self.head.active_signal_items() >= h.max_samples
            || self.head.active_log_bytes() >= h.max_log_bytes
    }

    /// Writes everything in the head to Parquet; returns once the files are committed to the
    /// manifest (with the WAL mark they cover) and the WAL segments below it are deleted. One
    /// flush runs at a time. On failure nothing is published and the blocks stay frozen for
    /// the next flush.
    pub async fn flush(&self) -> Result<FlushSummary> {
        let result = self.flush_once().await;
        *self.flush_failure.lock() = result.as_ref().err().map(ToString::to_string);
        result
    }

    async fn flush_once(&self) -> Result<FlushSummary> {
        let mut unconfirmed = self.flush_lock.lock().await;
        let started = Instant::now();
        let failed = |e: Error| {
            self.metrics
                .flushes
                .get_or_create(&crate::metrics::ResultLabels { result: "error" })
                .inc();
            *self.last_flush.lock() = Some(LastFlush {
                at_ms: now_ms(),
                error: Some(e.to_string()),
                files: 0,
                bytes: 0,
            });
            e
        };
        // A commit whose answer was lost may have landed: if the manifest now holds that flush's
        // mark its blocks are stored, and writing them again would store their rows twice. If
        // the manifest cannot be read, nothing is written until it can.
        if let Some(u) = unconfirmed.take() {
            if let Err(e) = self.storage.refresh().await {
                *unconfirmed = Some(u);
                return Err(failed(e.into()));
            }
            if self
                .storage
                .writer_mark(&self.id)
                .is_some_and(|m| m.wal_segment >= u.cut.0)
            {
                tracing::info!(segment = %u.cut, "an earlier flush's commit had landed; not writing its blocks again");
                for block in &u.blocks {
                    self.head.published(block);
                }
                self.wal.remove_before(u.cut).await?;
            }
        }
        let cut = {
            let _exclusive = self.gate.write().await;
            let seg = self.wal.rotate().await?;
            if !self.head.active_is_empty() {
                self.head.freeze();
            }
            // The head's raw index is gone: so is what the HA tracker knew of its raw keys.
            self.ha.forget_raw_keys();
            // Active series are those since the last freeze (see `crate::quota`).
            self.quotas.reset_active();
            seg
        };
        let mut summary = FlushSummary::default();
        // Earlier failed flushes left their blocks frozen; write them too, in one commit.
        let blocks = self.head.frozen();
        tracing::info!(
            blocks = blocks.len(),
            samples = blocks.iter().map(|b| b.samples).sum::<usize>(),
            wal_segment = %cut,
            "flushing head to parquet"
        );
        let written = match self.write_blocks(&blocks, cut).await {
            Ok(w) => w,
            Err(e) => {
                if matches!(e, Error::Storage(tributary_storage::Error::CommitUncertain { .. })) {
                    *unconfirmed = Some(Unconfirmed { cut, blocks });
                }
                return Err(failed(e));
            }
        };
        for block in &blocks {
            summary.series += block.series_count();
            summary.samples += block.samples;
            summary.log_records += block.signals.logs.len();
            self.head.published(block);
        }
        self.log_room.notify_waiters();
        self.head.expire_published(self.cfg.head.keep_flushed);
        summary.files = written.files;
        summary.bytes = written.bytes;
        self.wal.remove_before(cut).await?;
        summary.seconds = started.elapsed().as_secs_f64();
        self.metrics
            .flushes
            .get_or_create(&crate::metrics::ResultLabels { result: "ok" })
            .inc();
        self.metrics.flushed_samples.inc_by(summary.samples as u64);
        *self.last_flush.lock() = Some(LastFlush {
            at_ms: now_ms(),
            error: None,
            files: summary.files.len(),
            bytes: summary.bytes,
        });
        tracing::info!(
            series = summary.series,
            samples = summary.samples,
            log_records = summary.log_records,
            files = summary.files.len(),
            bytes = summary.bytes,
            seconds = summary.seconds,
            "flushed head to parquet"
        );
        Ok(summary)
    }

    /// Uploads every table of the frozen blocks and commits them, with the WAL mark `cut`, in
    /// one manifest commit: all of them become visible, or none (a failed flush leaves only
    /// unlisted uploads, and the next one writes the blocks again).
    async fn write_blocks(
        &self,
        blocks: &[Arc<crate::head::Frozen>],
        cut: SegmentId,
    ) -> Result<tributary_storage::WriteSummary> {
        let mut tx = self.storage.transaction();
        for block in blocks {
            // Decoded a file part at a time by the writer, not here.
            tx.write_series(&block.series_inputs()).await?;
            let sig = &block.signals;
            if !sig.histograms.is_empty() {
                tx.write_histograms(&sig.histograms).await?;
            }
            if !sig.exemplars.is_empty() {
                tx.write_exemplars(&sig.exemplars).await?;
            }
            if !sig.metadata.is_empty() {
                let metadata: Vec<_> = sig.metadata.iter().cloned().collect();
                tx.write_metadata(&metadata).await?;
            }
            for batch in sig.log_batches(self.cfg.head.flush_batch_bytes) {
                tx.write_logs(batch).await?;
            }
            for batch in sig.span_batches(self.cfg.head.flush_batch_bytes) {
                tx.write_spans(batch).await?;
            }
        }
        Ok(tx.commit(Some((&self.id, cut.0))).await?)
    }

    /// Flushes on the configured interval, or early when the head is large, until `stop` fires.
    pub async fn run_flusher(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut last = Instant::now();
        let tick = Duration::from_secs(1).min(self.cfg.head.flush_interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = self.flush_due.notified() => {}
                _ = stop.changed() => return,
            }
            self.refresh_gauges();
            self.head.expire_published(self.cfg.head.keep_flushed);
            let due = last.elapsed() >= self.cfg.head.flush_interval || self.over_size_limit();
            if due && (!self.head.active_is_empty() || !self.head.frozen().is_empty()) {
                if let Err(e) = self.flush().await {
                    tracing::error!(error = %e, "periodic flush failed; will retry");
                    // Not before the next tick, however many writes ask: the store is failing.
                    tokio::select! {
                        _ = tokio::time::sleep(tick) => {}
                        _ = stop.changed() => return,
                    }
                    continue;
                }
                last = Instant::now();
            } else if due {
                last = Instant::now();
            }
        }
    }
}
