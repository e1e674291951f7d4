//! The ingester: the one core object every receiver calls, through one write method.
//!
//! Write path ([`Ingester::write`]): unwrap the body (`decode::Body::prepare`: decompress,
//! parse) → take the gate (shared) → decode through the decode table → the HA tracker
//! (`crate::ha_tracker`: drop a non-elected replica's series, remove the replica label; when its
//! cache cannot decide, release the gate, ask the object store, and decode again) → apply the
//! per-cluster limits (`crate::quota`: a rate limit refuses the whole write, the others drop what they refuse
//! and the WAL record notes it) → append the WAL record and
//! wait for its fsync → apply the batch to the head (`apply`) → release the gate → answer with
//! a protocol-neutral [`Outcome`] that each surface maps (`http::error`). Replay
//! (`replay_record`) is the same decode, the record's HA step, the same limit step with the record's refusals instead
//! of the limits, and the same `apply`, from the WAL record.
//!
//! Flush path: freeze the head and rotate the WAL under one gate → upload Parquet → commit the
//! files to the storage manifest together with this ingester's WAL mark (the rotated segment:
//! everything below it is now stored) → drop the frozen blocks → delete the WAL segments below
//! the mark. Replay starts at the mark the manifest holds for this ingester's id (kept in
//! `<data_dir>/ingester-id`), so a crash between the commit and the WAL trim never publishes
//! the same rows twice, and a crash before the commit leaves only unlisted uploads.
//!
//! # The gate
//! It is what makes "nothing acknowledged is lost" hold across flushes: a write holds it
//! (shared) from its WAL append until its data is in the head, and a flush takes it exclusively
//! to freeze and rotate. So every sample in a WAL segment that a flush deletes is in the frozen
//! block that flush wrote to Parquet first. A write also *decodes* under the gate: remote-write
//! 1.0's decoder consults the head's raw index, and only a freeze (exclusive) clears it, so a
//! series found there is still there at the append (the known-span invariant, written down in
//! `head::input`). Every protocol decodes under it, so there is one write path; decoding is
//! short next to the WAL fsync the gate is held across anyway, and shared holders never wait on
//! each other.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Mutex, RwLock};
use tributary_storage::Storage;

use crate::cluster::ClusterContext;
use crate::config::IngestConfig;
use crate::decode::{self, Body, Limits, Options, Outcome, Prepared, Translation};
use crate::error::{Error, ErrorKind, Result};
use crate::fleet::{self, Fleet, FleetSnapshot};
use crate::ha_tracker::{self, Admission, HaTracker};
use crate::head::Head;
use crate::head::input::Input;
use crate::metrics::IngestMetrics;
use crate::quota::{self, Quotas, Refused, Replayed, Tally};
use crate::record;
use crate::rejection::{self, RejectionLog};
use crate::wal::{ReplayProgress, ReplayProgressSnapshot, ReplayStats, SegmentId, Wal};
use flush::Unconfirmed;

/// The file under the data directory holding this ingester's id: the name its WAL mark has
/// in the storage manifest.
const ID_FILE: &str = "ingester-id";

/// What a flush wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlushSummary {
    /// Float series written.
    pub series: usize,
    /// Float samples written.
    pub samples: usize,
    /// Log records written.
    pub log_records: usize,
    /// The Parquet files written.
    pub files: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
    /// How long the flush took.
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
    /// One flush at a time; holds the flush whose commit failed in a way that may still have
    /// landed (its WAL cut and blocks), which the next flush checks before writing again.
    flush_lock: Mutex<Option<Unconfirmed>>,
    /// Wakes the flusher when a write takes the head past a size limit, instead of at its
    /// next tick: at log shippers' rates a second adds hundreds of MiB.
    flush_due: tokio::sync::Notify,
    /// Signalled when a flush has published blocks: writes of logs waiting for room re-check.
    log_room: tokio::sync::Notify,
    metrics: IngestMetrics,
    replay: ReplayStats,
    /// The translation settings every write records (from the configuration, fixed at open).
    translation: Translation,
    /// This ingester's name in the storage manifest's WAL marks.
    id: String,
    /// Per-cluster limits and their state.
    quotas: Arc<Quotas>,
    /// HA pairs: which replica of each cluster is accepted.
    ha: HaTracker,
    /// Rate-limits the log lines of refused writes.
    rejections: RejectionLog,
    /// The last flush's error, cleared by the next flush that succeeds (for `/-/ready`).
    flush_failure: parking_lot::Mutex<Option<String>>,
    /// Per-cluster figures for the fleet status page.
    fleet: Fleet,
    /// `data_dir/wal`, measured for the status page.
    wal_dir: std::path::PathBuf,
    /// The last flush's end and error, for the status page.
    last_flush: parking_lot::Mutex<Option<LastFlush>>,
}

/// When the last flush ended and how.
#[derive(Clone, Debug, Serialize)]
pub struct LastFlush {
    /// When it ended, ms since the epoch.
    pub at_ms: i64,
    /// Its error (`None`: it committed).
    pub error: Option<String>,
    /// Files it wrote.
    pub files: usize,
    /// Bytes it wrote.
    pub bytes: u64,
}

/// The head and WAL figures of the status page.
#[derive(Clone, Debug, Serialize)]
pub struct HeadStatus {
    /// Series in the active part.
    pub active_series: usize,
    /// Samples in the active part.
    pub active_samples: usize,
    /// Samples in memory, active and frozen.
    pub total_samples: usize,
    /// Log line bytes in the active part.
    pub active_log_bytes: usize,
    /// Bytes of the WAL's segment files on disk now.
    pub wal_bytes: u64,
    /// The WAL's segment files.
    pub wal_segments: u64,
    /// The last flush since start.
    pub last_flush: Option<LastFlush>,
}

/// How often replay progress is logged.
const REPLAY_REPORT_EVERY: Duration = Duration::from_secs(5);

/// Longest a write of logs waits for a flush to make room before it is refused (below the
/// shippers' request timeouts: 5 s for the OpenTelemetry Collector, 10 s for Promtail).
const LOG_ROOM_WAIT: Duration = Duration::from_secs(3);

/// Times one write may decode again after asking the object store for HA elections.
const HA_ROUNDS: usize = 3;

impl Ingester {
    /// Opens the WAL under `data_dir/wal`, replays it into a fresh head, and is ready to write.
    pub async fn open(cfg: IngestConfig, data_dir: &Path, storage: Arc<Storage>) -> Result<Arc<Self>> {
        Self::open_reporting(cfg, data_dir, storage, Arc::new(ReplayProgress::default())).await
    }

    /// [`Ingester::open`], with the replay's progress in `progress` as it runs (for `/-/ready`)
    /// and in a log line every few seconds (segments and bytes done, rate, time left).
    pub async fn open_reporting(
        cfg: IngestConfig,
        data_dir: &Path,
        storage: Arc<Storage>,
        progress: Arc<ReplayProgress>,
    ) -> Result<Arc<Self>> {
        let head = Arc::new(Head::new());
        let id = ingester_id(data_dir)?;
        // Segments below the manifest's mark are already in the store: replaying them would
        // publish their rows a second time.
        let published = SegmentId(storage.writer_mark(&id).map_or(0, |m| m.wal_segment));
        let wal_dir = data_dir.join("wal");
        let wal_cfg = cfg.wal.clone();
        let replay_head = head.clone();
        let replay_cfg = cfg.clone();
        let quotas = Arc::new(Quotas::new(&cfg.limits, Arc::new(quota::SystemClock::new())));
        let replay_quotas = quotas.clone();
        let reporter = tokio::spawn(report_replay(progress.clone()));
        let replay_progress = progress.clone();
        let replayed = tokio::task::spawn_blocking(move || {
            Wal::open_after(&wal_dir, wal_cfg, published, &replay_progress, |payload| {
                replay_record(&replay_head, &replay_cfg, &replay_quotas, payload).map_err(crate::wal::WalError::Replay)
            })
        })
        .await;
        reporter.abort();
        let (wal, replay) = replayed.map_err(|e| Error::Unavailable(format!("WAL replay task failed: {e}")))??;
        tracing::info!(
            ?replay,
            head_samples = head.active_samples(),
            "replayed write-ahead log"
        );
        let metrics = IngestMetrics::default();
        let translation = Translation::from_config(&cfg);
        let ha = HaTracker::new(
            &cfg.ha_tracker,
            storage.elections(),
            Arc::new(quota::SystemClock::new()),
        );
        Ok(Arc::new(Self {
            ha,
            translation,
            id,
            cfg,
            wal,
            head,
            storage,
            gate: RwLock::new(()),
            flush_lock: Mutex::new(None),
            flush_due: tokio::sync::Notify::new(),
            log_room: tokio::sync::Notify::new(),
            metrics,
            replay,
            quotas,
            rejections: RejectionLog::default(),
            flush_failure: parking_lot::Mutex::new(None),
            fleet: Fleet::default(),
            wal_dir: data_dir.join("wal"),
            last_flush: parking_lot::Mutex::new(None),
        }))
    }

    /// The error of the last flush, when it failed (`/-/ready`); `None` once one succeeds.
    pub fn flush_failure(&self) -> Option<String> {
        self.flush_failure.lock().clone()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &IngestConfig {
        &self.cfg
    }

    /// The head, readable by the query engines.
    pub fn head(&self) -> Arc<Head> {
        self.head.clone()
    }

    /// Its own metrics.
    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// What the WAL replay at open found.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    /// What a live write may send.
    fn options(&self) -> Options<'_> {
        Options {
            limits: Limits {
                max_labels_per_series: self.cfg.max_labels_per_series,
                max_label_name_bytes: self.cfg.max_label_name_bytes,
                max_label_value_bytes: self.cfg.max_label_value_bytes,
            },
            max_log_attributes: self.cfg.otlp.max_log_attributes,
            max_log_body_bytes: self.cfg.otlp.max_log_body_bytes,
            translation: &self.translation,
        }
    }

    /// Who sends a write of `kind` and which cluster it names ([`ClusterContext::from_request`]),
    /// for every receiver. A refusal for authentication (401) or authorisation (403) gets its
    /// rate-limited line in the rejection log like any refused write, under the token's name
    /// when the token is known, else `unauthenticated` (never the token itself).
    pub fn authenticate(
        &self,
        kind: decode::Kind,
        headers: &axum::http::HeaderMap,
        client_cert: Option<&tributary_storage::auth::ClientCertificate>,
        auth: &tributary_storage::auth::Auth,
    ) -> Result<ClusterContext> {
        ClusterContext::from_request(headers, client_cert, &self.cfg, auth).inspect_err(|e| {
            let refused = e.kind();
            if matches!(refused, ErrorKind::Unauthorized | ErrorKind::Forbidden) {
                let authorization = headers
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let who = auth.identify(authorization, client_cert).ok().flatten();
                let who = rejection::subject(who.as_ref().map(|id| id.name.as_str()));
                self.rejections
                    .log(who, rejection::protocol(kind), refused.name(), &e.to_string());
            }
        })
    }

    /// The one write path, for every protocol: stores every valid item of `body` durably before
    /// returning, and answers what was accepted and what was refused (with reasons) for the
    /// surface to map. `Err` when nothing could be stored: the body cannot be trusted (invalid
    /// input, too large, unsupported) or our own state refuses it (pressure, WAL).
    /// Every refused request gets a log line naming its cluster, protocol and reason
    /// (rate-limited per cluster and reason, `rejection.rs`).
    pub async fn write(&self, ctx: ClusterContext, body: Body) -> Result<Outcome> {
        let kind = body.kind();
        let named = ctx.request_cluster().unwrap_or_default().to_string();
        let result = self.write_once(ctx, body).await;
        let cluster = if named.is_empty() { "-" } else { named.as_str() };
        let protocol = rejection::protocol(kind);
        match &result {
            Err(e) => {
                self.fleet.rejected(
                    &named,
                    fleet::protocol(kind),
                    e.kind().name(),
                    1,
                    &e.to_string(),
                    now_ms(),
                );
                self.rejections.log(cluster, protocol, e.kind().name(), &e.to_string());
            }
            Ok(o) if !o.rejected.is_empty() => {
                self.rejections
                    .log(cluster, protocol, rejection::REFUSED_ITEMS, &o.rejected.reasons_text())
            }
            Ok(_) => {}
        }
        result
    }

    async fn write_once(&self, ctx: ClusterContext, body: Body) -> Result<Outcome> {
        if let Some(len) = body.received_len() {
            self.check_body(len)?;
        }
        if body.kind().carries_logs() {
            self.wait_for_log_room().await;
        }
        let prepared = body.prepare(self.cfg.max_decompressed_bytes)?;
        let kind = prepared.kind();
        let mut decided = std::collections::HashMap::new();
        for _ in 0..HA_ROUNDS {
            let shared = self.gate.read().await;
            let mut batch = if self.ha.applies(kind) {
                let known = self.ha.narrow(&*self.head);
                decode::decode(&prepared, &ctx, &self.options(), &known)?
            } else {
                decode::decode(&prepared, &ctx, &self.options(), &*self.head)?
            };
            let replicas = match self.ha.admit(kind, &mut batch, &decided, &self.metrics)? {
                Admission::Applied(r) => r,
                Admission::Sync(pairs) => {
                    // Never hold the gate across object-store I/O: a flush waits for it.
                    drop(batch);
                    drop(shared);
                    for p in pairs {
                        let d = self.ha.sync(&p, &self.metrics).await?;
                        decided.insert(p, d);
                    }
                    continue;
                }
            };
            let (refused, admitted) = self.limit(kind, &mut batch)?;
            // What is stored, by cluster, for the fleet page (a pass over the kept items, unless
            // the limits counted them and refused none).
            let stored = admitted.unwrap_or_else(|| quota::usage(&batch.input, &*self.head));
            if !batch.input.is_empty() {
                self.check_pressure(!batch.input.signals.logs.is_empty() || !batch.input.signals.spans.is_empty())?;
                let rec = record::encode(
                    kind,
                    &ctx,
                    &self.translation,
                    &refused,
                    &replicas,
                    &prepared.wal_body()?,
                )
                .map_err(|e| Error::InvalidInput(e.to_string()))?;
                self.wal.append(rec).await?;
                apply(&self.head, batch.input).map_err(Error::Unavailable)?;
                if self.over_size_limit() {
                    self.flush_due.notify_one();
                }
            }
            drop(shared);
            let Outcome { accepted, rejected, .. } = &batch.outcome;
            self.metrics.samples.inc_by(accepted.samples as u64);
            self.metrics.log_records.inc_by(accepted.log_records);
            self.metrics
                .rejected_samples
                .inc_by(rejected.samples as u64 + rejected.points);
            self.metrics.rejected_log_records.inc_by(rejected.log_records);
            self.metrics.spans.inc_by(accepted.spans);
            self.metrics.rejected_spans.inc_by(rejected.spans);
            self.track(&ctx, kind, &stored, rejected);
            return Ok(batch.outcome);
        }
        Err(Error::Unavailable(
            "the HA elections of this write kept changing; retry".into(),
        ))
    }

    /// Feeds the fleet tracker with a write's stored items and the items it refused (which
    /// count against the request's cluster, else the one cluster its items name, else `""`).
    fn track(&self, ctx: &ClusterContext, kind: decode::Kind, stored: &quota::Usage, rejected: &decode::Rejections) {
        let now = now_ms();
        let protocol = fleet::protocol(kind);
        for (cluster, u) in &stored.clusters {
            let n = fleet::Accepted {
                samples: u.samples,
                log_lines: u.log_lines,
                spans: u.spans,
            };
            self.fleet.accepted(cluster, protocol, n, now);
        }
        if !rejected.is_empty() {
            let cluster = match (ctx.request_cluster(), stored.clusters.as_slice()) {
                (Some(c), _) => c,
                (None, [(c, _)]) => c.as_str(),
                _ => "",
            };
            let items = (rejected.samples + rejected.histograms + rejected.exemplars + rejected.metadata) as u64
                + rejected.points
                + rejected.log_records
                + rejected.spans;
            let text = rejected.reasons.last().map_or("", String::as_str);
            self.fleet
                .rejected(cluster, protocol, "invalid_items", items.max(1), text, now);
        }
    }

    /// Per-cluster figures since start, with each cluster's active series (the head's active
    /// part: series since the last flush).
    pub fn fleet_status(&self) -> FleetSnapshot {
        let mut snapshot = self.fleet.snapshot(now_ms());
        let series = self.head.active_series_by_cluster();
        for c in &mut snapshot.clusters {
            c.active_series = series.get(c.cluster.as_str()).copied().unwrap_or(0);
        }
        snapshot
    }

    /// Registers the ingest metrics, and the per-cluster ones read from the fleet tracker at
    /// each scrape (`tributary_cluster_*`), in `r`.
    pub fn register_metrics(self: &Arc<Self>, r: &mut prometheus_client::registry::Registry) {
        self.metrics.register(r);
        r.register_collector(Box::new(crate::metrics::ClusterMetrics(Arc::downgrade(self))));
    }

    /// The fleet tracker's running totals and the head's active series by cluster.
    pub(crate) fn cluster_figures(&self) -> (Vec<fleet::ClusterTotals>, std::collections::HashMap<String, u64>) {
        (self.fleet.totals(), self.head.active_series_by_cluster())
    }

    /// The head's and the WAL's figures now.
    pub fn head_status(&self) -> HeadStatus {
        let (mut wal_bytes, mut wal_segments) = (0, 0);
        if let Ok(dir) = std::fs::read_dir(&self.wal_dir) {
            for meta in dir.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()) {
                wal_bytes += meta.len();
                wal_segments += 1;
            }
        }
        HeadStatus {
            active_series: self.head.active_series(),
            active_samples: self.head.active_samples(),
            total_samples: self.head.total_samples(),
            active_log_bytes: self.head.active_log_bytes(),
            wal_bytes,
            wal_segments,
            last_flush: self.last_flush.lock().clone(),
        }
    }

    /// The per-cluster limits of a decoded write: `Err` when a rate limit refuses it whole;
    /// otherwise drops what the other limits refuse (counted in the outcome) and returns it for
    /// the WAL record.
    /// The per-cluster limits: `Err` when a rate refuses the whole write; else what was
    /// refused, and the write's per-cluster usage when it was counted (rates are set) and
    /// nothing was refused, so it is what will be stored.
    fn limit(&self, kind: decode::Kind, batch: &mut decode::Batch<'_>) -> Result<(Refused, Option<quota::Usage>)> {
        let mut usage = None;
        if self.quotas.counts_usage() {
            let counted = quota::usage(&batch.input, &*self.head);
            if let Err(refused) = self.quotas.admit(&counted) {
                let (e, hit) = *refused;
                self.metrics.limited(&hit.cluster, hit.limit, hit.count);
                return Err(e);
            }
            usage = Some(counted);
        }
        let mut live = self.quotas.live();
        let mut tally = Tally::default();
        quota::restrict(&mut batch.input, &*self.head, &mut live, &mut tally);
        tally.record(kind, &mut batch.outcome);
        for h in &live.hits {
            self.metrics.limited(&h.cluster, h.limit, h.count);
        }
        let usage = usage.filter(|_| live.refused.is_empty());
        Ok((live.refused, usage))
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

    fn check_pressure(&self, logs: bool) -> Result<()> {
        let held = self.head.total_samples();
        if held >= self.cfg.head.hard_limit_samples {
            return Err(Error::TooManyRequests(format!(
                "the head holds {held} samples, the limit is {}: flushes to object storage are behind",
                self.cfg.head.hard_limit_samples
            )));
        }
        // Only writes carrying logs pay for the sum (remote-write calls this on every write).
        let log_bytes = if logs { self.head.total_log_bytes() } else { 0 };
        if logs && log_bytes >= self.cfg.head.hard_limit_log_bytes {
            return Err(Error::TooManyRequests(format!(
                "the head holds {log_bytes} bytes of log records, the limit is {}: a flush is writing them, retry",
                self.cfg.head.hard_limit_log_bytes
            )));
        }
        Ok(())
    }

    /// Holds a write of logs (before it takes the gate, which a flush's freeze needs) while the
    /// head is over `hard_limit_log_bytes`, until a flush publishes blocks or
    /// [`LOG_ROOM_WAIT`] passes; then [`Ingester::check_pressure`] decides. Waiting here
    /// instead of refusing at once keeps shippers sending at the flush's pace: refused, they
    /// back off for seconds (the OTLP exporters' first retry waits 5 s).
    async fn wait_for_log_room(&self) {
        let deadline = tokio::time::Instant::now() + LOG_ROOM_WAIT;
        loop {
            let room = self.log_room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.head.total_log_bytes() < self.cfg.head.hard_limit_log_bytes {
                return;
            }
            self.flush_due.notify_one();
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return;
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

/// Logs the replay's progress every [`REPLAY_REPORT_EVERY`] until it finishes (or the task is
/// aborted when `open` returns).
async fn report_replay(progress: Arc<ReplayProgress>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(REPLAY_REPORT_EVERY).await;
        let p = progress.snapshot();
        if p.finished {
            return;
        }
        let (rate, eta) = replay_rate(&p, started.elapsed());
        tracing::info!(
            segments_done = p.done_segments,
            segments_total = p.total_segments,
            bytes_done = p.done_bytes,
            bytes_total = p.total_bytes,
            mib_per_second = format!("{:.1}", rate / (1024.0 * 1024.0)),
            eta_seconds = eta.map(|e| e.as_secs()),
            "replaying write-ahead log"
        );
    }
}

/// Bytes per second so far, and the time left at that rate (`None` before any progress).
fn replay_rate(p: &ReplayProgressSnapshot, elapsed: Duration) -> (f64, Option<Duration>) {
    let rate = p.done_bytes as f64 / elapsed.as_secs_f64().max(1e-3);
    let left = p.total_bytes.saturating_sub(p.done_bytes) as f64;
    let eta = (rate > 0.0).then(|| Duration::from_secs_f64(left / rate));
    (rate, eta)
}

/// This ingester's id: read from `<data_dir>/ingester-id`, or made (a UUID v7) and stored
/// durably on first start. A new data directory is a new ingester: its WAL starts empty, so it
/// must not inherit another directory's mark.
/// Wall-clock milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ingester_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(ID_FILE);
    let io = |op: &str, e: std::io::Error| Error::Unavailable(format!("{op} {}: {e}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("read", e)),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| io("create the directory of", e))?;
    let id = uuid::Uuid::now_v7().to_string();
    let tmp = data_dir.join(format!("{ID_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, id.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| io("write", e))?;
    Ok(id)
}

/// Puts one decoded write into the head: the one apply step of both the write path (after the
/// WAL append, under the gate) and replay. `Err` names samples the head could not place (a known
/// span whose raw key is gone, which the gate rules out): such a write must not be acknowledged.
fn apply(head: &Head, input: Input<'_>) -> std::result::Result<(), String> {
    match head.apply(input) {
        0 => Ok(()),
        unplaced => Err(format!(
            "{unplaced} samples could not be placed in the head; retry the request"
        )),
    }
}

/// Replays one WAL record into the head: the write path's decode and [`apply`], with the
/// translation settings the record was acknowledged with (a version-1 record: the current
/// configuration's) and unbounded limits (data accepted under older limits must not be lost when
/// an operator lowers them); what per-cluster limits refused of it is dropped again, exactly.
fn replay_record(head: &Head, cfg: &IngestConfig, quotas: &Quotas, payload: &[u8]) -> std::result::Result<(), String> {
    let rec = record::decode(payload).map_err(|e| e.to_string())?;
    // Never trust the claimed length: snappy expands at most ~21x (a 3-byte copy of 64
    // bytes), so this bound refuses no body any earlier limit accepted.
    let bound = rec.body.len().saturating_mul(22).saturating_add(64);
    let translation = rec.translation.unwrap_or_else(|| Translation::from_config(cfg));
    let prepared = Prepared::from_wal(rec.kind, rec.body, bound).map_err(|e| e.to_string())?;
    let opts = Options::unbounded(&translation);
    let mut batch = if rec.replicas.is_empty() {
        decode::decode(&prepared, &rec.ctx, &opts, head)
    } else {
        // Known spans carry no labels, hence no replica: decode every series in full.
        decode::decode(&prepared, &rec.ctx, &opts, &crate::head::input::NothingKnown)
    }
    .map_err(|e| e.to_string())?;
    if !rec.replicas.is_empty() {
        ha_tracker::rewrite(&mut batch.input, &rec.replicas, &|_| None);
    }
    let mut rules = Replayed {
        refused: &rec.refused,
        quotas,
    };
    quota::restrict(&mut batch.input, head, &mut rules, &mut Tally::default());
    apply(head, batch.input).map_err(|e| format!("WAL record of kind {:?}: {e}", rec.kind))
}

mod flush;

#[cfg(test)]
mod tests;
