//! The compactor: merges small files, enforces retention, and deletes what no manifest needs.
//!
//! # Compaction protocol
//! One round ([`Compactor::run_once`]), run by whichever compactor holds the lease
//! (`lease`):
//! 1. **Retention.** Live files whose newest row is past their table's and cluster's retention
//!    (`storage.retention`) are removed from the manifest in one commit. Whole files only: a
//!    query wholly past retention finds no files and answers empty.
//! 2. **Merge.** Each table's live files are grouped by cluster and UTC day. A day whose end is
//!    `settle` in the past becomes one day file (`<date>/day/…`); in a younger day, each hour
//!    whose end is `settle` in the past becomes one hour file. A group is merged only if it has
//!    two files or more; groups bigger than `max_input_bytes` become several outputs. Merging
//!    orders rows by the table's identity columns and keeps one row per identity, the copy from
//!    the latest file, which is the copy every reader returns (`merge`: k-way over the sorted
//!    inputs a batch at a time, or whole for log files). The output's id sorts
//!    just after its newest input's (`FileKey::after_in_write_order`): a merged rollup still
//!    counts as older than raw data flushed after it was computed, so step 4 rolls that day up
//!    again.
//! 3. **Swap.** Outputs are uploaded first, then one manifest commit adds them and removes
//!    their inputs. Readers see the inputs or the output, never both and never neither. If
//!    another commit removed an input meanwhile, the commit conflicts and the output is
//!    deleted; the inputs stay as they were.
//! 4. **Rollups.** For each cluster's completed day older than `storage.rollups.after` that has
//!    raw metrics and no rollup newer than its newest raw file, every sample of that (cluster,
//!    day) is read and its `metrics_5m` / `metrics_1h` / `metrics_1d` rows written in one commit
//!    (late data makes a newer raw file, so the day is rolled up again; the newer rollup file
//!    wins; until then readers answer that day from raw samples). A cluster-day holding more
//!    than `ROLLUP_PART_SAMPLES` (20 million) samples is read a part of its series at a time,
//!    each part's rows a file of their own in the same commit (the next round merges them).
//! 5. **Delete.** Files removed at least `deletion_delay` ago are deleted, then forgotten by
//!    the manifest; objects no manifest lists that are older than `orphan_age` (uploads whose
//!    commit never happened) are deleted; manifest versions past the kept window are deleted.
//!
//! A crash at any step leaves either the old version (outputs unlisted, deleted later as
//! orphans) or the new one (inputs listed as removed, deleted later): nothing acknowledged is
//! lost and no row is visible twice.

mod lease;
mod merge;
mod retention;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;

use crate::catalog::{FileMeta, newest_per_day};
use crate::config::{CompactionConfig, RetentionConfig, RollupsConfig, StorageConfig};
use crate::layout::{FileKey, HOUR_MS, Hour, Span, Table};
use crate::manifest::Change;
use crate::read::SelectRequest;
use crate::table::ParquetTable;
use crate::table::exemplars::Exemplars;
use crate::table::histograms::Histograms;
use crate::table::logs::Logs;
use crate::table::metadata::Metadata;
use crate::table::metrics::Metrics;
use crate::types::Matcher;
use crate::types::TimeRange;
use crate::{Error, Result, Storage};

const DAY_MS: i64 = 24 * HOUR_MS;

/// Most samples a rollup pass reads at once (and at most `storage.max_select_samples`): about
/// 16 bytes each decoded, plus the series' labels. A cluster-day holding more is rolled up a
/// part of its series at a time.
pub(crate) const ROLLUP_PART_SAMPLES: usize = 20_000_000;

/// What one round did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CompactionReport {
    /// False when another compactor holds the lease (nothing was done).
    pub ran: bool,
    /// Who holds the lease when this compactor does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// Groups merged (each one commit).
    pub merges: u64,
    /// Input files merged.
    pub files_in: u64,
    /// Files written by merges.
    pub files_out: u64,
    /// Bytes of the merged inputs.
    pub bytes_in: u64,
    /// Bytes of the outputs.
    pub bytes_out: u64,
    /// Rows read by merges.
    pub rows_in: u64,
    /// Rows written (rows in minus duplicates collapsed).
    pub rows_out: u64,
    /// Files dropped by retention.
    pub expired_files: u64,
    /// (cluster, day) pairs whose rollups were written.
    pub rollup_days: u64,
    /// Removed files deleted from the object store after the deletion delay.
    pub deleted_files: u64,
    /// Unlisted objects deleted.
    pub orphans_deleted: u64,
    /// Merges abandoned because another commit removed an input first.
    pub conflicts: u64,
    /// What failed (the round carries on with the next group).
    pub failures: Vec<String>,
    /// Wall time of the round.
    pub seconds: f64,
}

/// Runs compaction rounds against one [`Storage`].
#[derive(Debug)]
pub struct Compactor {
    storage: Arc<Storage>,
    cfg: CompactionConfig,
    retention: RetentionConfig,
    rollups: RollupsConfig,
    owner: String,
    /// One round at a time in this process (schedule and admin endpoint share it).
    running: tokio::sync::Mutex<()>,
}

impl Compactor {
    /// A compactor named `owner` (how it appears in the lease) with `cfg`'s compaction and
    /// retention settings. Fails on retention settings that name no table.
    pub fn new(storage: Arc<Storage>, cfg: &StorageConfig, owner: String) -> Result<Self> {
        let unknown = cfg.retention.unknown_tables();
        if !unknown.is_empty() {
            return Err(Error::InvalidData {
                reason: format!(
                    "storage.retention names unknown tables {unknown:?} (tables: metrics, logs, histograms, exemplars, metadata, metrics_5m, metrics_1h, metrics_1d)"
                ),
            });
        }
        Ok(Self {
            storage,
            cfg: cfg.compaction.clone(),
            retention: cfg.retention.clone(),
            rollups: cfg.rollups.clone(),
            owner,
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// The schedule settings.
    pub fn config(&self) -> &CompactionConfig {
        &self.cfg
    }

    /// One round now (see the module docs); returns what it did. `Err` only when the lease or
    /// the manifest cannot be read; failures of single groups are in the report. `force`
    /// treats every day as settled (the current day's files become one day file too, as
    /// VictoriaMetrics' `force_merge` does): for benchmarks and before a planned shutdown; a
    /// later round merges files that arrive for that day afterwards.
    pub async fn run_once(&self, force: bool) -> Result<CompactionReport> {
        let _one = self.running.lock().await;
        let started = Instant::now();
        let store = self.storage.io.store.clone();
        let now = now_ms();
        let ttl = i64::try_from(self.cfg.lease_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut report = CompactionReport::default();
        match lease::acquire(store.as_ref(), &self.owner, now, ttl).await? {
            lease::Lease::Held { .. } => report.ran = true,
            lease::Lease::Busy { owner, expires_at } => {
                tracing::info!(holder = %owner, expires_at, "another compactor holds the lease; skipping this round");
                report.lease_holder = Some(owner);
                return Ok(report);
            }
        }
        self.storage.refresh().await?;
        self.expire(now, &mut report).await;
        // Forced: as if the round ran a day after the newest data settled.
        let horizon = if force { i64::MAX } else { now };
        self.merge_table::<Metrics>(horizon, &mut report).await;
        self.merge_table::<Logs>(horizon, &mut report).await;
        self.merge_table::<Histograms>(horizon, &mut report).await;
        self.merge_table::<Exemplars>(horizon, &mut report).await;
        self.merge_table::<Metadata>(horizon, &mut report).await;
        self.merge_table::<crate::table::spans::Spans>(horizon, &mut report)
            .await;
        self.merge_table::<crate::table::rollups::Rollups<crate::table::rollups::FiveMinutes>>(horizon, &mut report)
            .await;
        self.merge_table::<crate::table::rollups::Rollups<crate::table::rollups::OneHour>>(horizon, &mut report)
            .await;
        self.merge_table::<crate::table::rollups::Rollups<crate::table::rollups::OneDay>>(horizon, &mut report)
            .await;
        self.write_rollups(now, &mut report).await;
        // Removals this round committed count from their commit time, after `now`.
        self.delete_garbage(now_ms(), &mut report).await;
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(?report, "compaction round done");
        Ok(report)
    }

    /// Gives up the lease (graceful shutdown), so another compactor need not wait for it to expire.
    pub async fn release(&self) -> Result<()> {
        lease::release(self.storage.io.store.as_ref(), &self.owner).await
    }

    async fn expire(&self, now: i64, report: &mut CompactionReport) {
        let expired: Vec<Path> = Table::ALL
            .iter()
            .flat_map(|t| self.storage.catalog(*t).files(*t, TimeRange::ALL, |_| true))
            .filter(|f| self.retention.expired(&f.key, now))
            .map(|f| f.path.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let n = expired.len() as u64;
        let change = Change {
            remove: expired,
            ..Change::default()
        };
        match self.storage.commit(&change).await {
            Ok(_) => report.expired_files += n,
            Err(Error::Conflict { .. }) => report.conflicts += 1,
            Err(e) => report.failures.push(format!("retention: {e}")),
        }
    }

    async fn merge_table<T: ParquetTable>(&self, now: i64, report: &mut CompactionReport) {
        let files = self.storage.catalog(T::KIND).files(T::KIND, TimeRange::ALL, |_| true);
        let settle = i64::try_from(self.cfg.settle.as_millis()).unwrap_or(i64::MAX);
        for group in groups(&files, now, settle) {
            for chunk in chunks(group, self.cfg.max_input_bytes) {
                if let Err(e) = self.merge_chunk::<T>(&chunk, report).await {
                    tracing::warn!(error = %e, table = T::KIND.dir(), "merging files failed; they stay as they are");
                    report.failures.push(format!("{}: {e}", T::KIND.dir()));
                }
            }
        }
    }

    /// Merges `inputs` (write order) into one file and swaps it in.
    async fn merge_chunk<T: ParquetTable>(
        &self,
        inputs: &[Arc<FileMeta>],
        report: &mut CompactionReport,
    ) -> Result<()> {
        let min_ts = inputs.iter().map(|f| f.key.min_ts).min().unwrap_or_default();
        let max_ts = inputs.iter().map(|f| f.key.max_ts).max().unwrap_or_default();
        let newest = inputs.iter().map(|f| f.key.id).max().unwrap_or_default();
        let key = |rows| {
            FileKey::new(T::KIND, &inputs[0].key.cluster, min_ts, max_ts, rows).map(|k| k.after_in_write_order(newest))
        };
        let props = T::properties(&self.storage.writer)?;
        let in_parts = match T::MERGE_IN_PARTS {
            true => merge::merge_in_parts::<T>(&self.storage.io, inputs, props.clone()).await?,
            false => None,
        };
        let (outputs, rows) = match in_parts {
            Some(merged) => {
                let key = key(merged.rows)?;
                let size = merged.bytes.len() as u64;
                self.storage.upload(&key.path(), merged.bytes).await?;
                (vec![FileMeta::new(key, size)], merged.rows)
            }
            None => {
                if T::MERGE_IN_PARTS {
                    tracing::debug!(
                        table = T::KIND.dir(),
                        first = %inputs[0].path,
                        "inputs not in identity order: merged whole"
                    );
                }
                let batch = merge::read_and_merge::<T>(&self.storage.io, inputs).await?;
                let rows = batch.num_rows() as u64;
                let outputs = self
                    .storage
                    .store_files::<T>(
                        std::iter::once(Ok((key(rows)?, crate::FileRows::Whole(batch)))),
                        // Never called: a merged file is stored whole.
                        &|_, _| {
                            Err(Error::InvalidData {
                                reason: "a merged file is stored whole".into(),
                            })
                        },
                        props,
                    )
                    .await?;
                (outputs, rows)
            }
        };
        let change = Change {
            add: outputs.clone(),
            remove: inputs.iter().map(|f| f.path.clone()).collect(),
            ..Change::default()
        };
        match self.storage.commit(&change).await {
            Ok(_) => {
                report.merges += 1;
                report.files_in += inputs.len() as u64;
                report.files_out += outputs.len() as u64;
                report.bytes_in += inputs.iter().map(|f| f.size).sum::<u64>();
                report.bytes_out += outputs.iter().map(|f| f.size).sum::<u64>();
                report.rows_in += inputs.iter().map(|f| f.key.rows).sum::<u64>();
                report.rows_out += rows;
                Ok(())
            }
            Err(Error::Conflict { .. }) => {
                // Certainly never committed: the output is garbage now, not data.
                for o in &outputs {
                    if let Err(d) = self.storage.io.store.delete(&o.path).await {
                        tracing::debug!(error = %d, key = %o.path, "deleting an uncommitted output failed; the orphan sweep will");
                    }
                }
                report.conflicts += 1;
                Ok(())
            }
            // The commit may have landed (an unknown outcome): deleting the output could delete
            // live data. Unlisted, the orphan sweep deletes it later.
            Err(e) => Err(e),
        }
    }

    async fn write_rollups(&self, now: i64, report: &mut CompactionReport) {
        if self.rollups.resolutions.is_empty() {
            return;
        }
        let after = i64::try_from(self.rollups.after.as_millis()).unwrap_or(i64::MAX);
        let files = |table: Table| self.storage.catalog(table).files(table, TimeRange::ALL, |_| true);
        let raw_files = files(Table::Metrics);
        let rolled_files: Vec<_> = self
            .rollups
            .resolutions
            .iter()
            .map(|r| (*r, files(r.table())))
            .collect();
        let rolled: Vec<_> = rolled_files.iter().map(|(r, f)| (*r, newest_per_day(f))).collect();
        let source = self.storage.source();
        for ((cluster, day), raw_id) in newest_per_day(&raw_files) {
            let day_end = day + DAY_MS - 1;
            if day_end.saturating_add(after) >= now {
                continue;
            }
            let stale: Vec<_> = rolled
                .iter()
                .filter(|(_, m)| m.get(&(cluster, day)).is_none_or(|id| *id < raw_id))
                .map(|(r, _)| *r)
                .collect();
            if stale.is_empty() {
                continue;
            }
            let req = SelectRequest::new(
                vec![Matcher::equal(crate::schema::CLUSTER, cluster)],
                TimeRange::new(day, day_end),
            );
            let budget = ROLLUP_PART_SAMPLES.min(self.storage.max_select_samples);
            let outcome = async {
                let mut tx = self.storage.transaction();
                for part in rollup_parts(source.as_ref(), &req, budget).await? {
                    let series = source.select(&part).await?;
                    for r in &stale {
                        tx.write_rollups(*r, &series).await?;
                    }
                }
                tx.commit(None).await
            }
            .await;
            match outcome {
                Ok(_) => report.rollup_days += 1,
                Err(e) => report.failures.push(format!("rollups of {cluster:?} {day}: {e}")),
            }
        }
    }

    async fn delete_garbage(&self, now: i64, report: &mut CompactionReport) {
        let store = self.storage.io.store.clone();
        let delay = i64::try_from(self.cfg.deletion_delay.as_millis()).unwrap_or(i64::MAX);
        let manifest = self.storage.manifest.current();
        let due: Vec<String> = manifest
            .removed
            .iter()
            .filter(|r| r.at <= now.saturating_sub(delay))
            .map(|r| r.key.clone())
            .collect();
        let mut forget = Vec::new();
        for key in due {
            let Ok(path) = Path::parse(&key) else {
                forget.push(key);
                continue;
            };
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    report.deleted_files += 1;
                    forget.push(key);
                }
                Err(e) => report.failures.push(format!("delete {key}: {e}")),
            }
        }
        if !forget.is_empty() {
            let change = Change {
                forget,
                ..Change::default()
            };
            if let Err(e) = self.storage.commit(&change).await {
                report.failures.push(format!("forget deleted files: {e}"));
            }
        }
        if let Err(e) = self.delete_orphans(now, report).await {
            report.failures.push(format!("orphan sweep: {e}"));
        }
        if let Err(e) = self.storage.manifest.delete_stale_versions().await {
            report.failures.push(format!("old manifest versions: {e}"));
        }
    }

    /// Deletes data-file objects no manifest lists (live or awaiting deletion) once older than
    /// `orphan_age`: uploads of flushes and merges that never committed.
    async fn delete_orphans(&self, now: i64, report: &mut CompactionReport) -> Result<()> {
        let store = self.storage.io.store.clone();
        let age = i64::try_from(self.cfg.orphan_age.as_millis()).unwrap_or(i64::MAX);
        let manifest = self.storage.manifest.current();
        let known: HashSet<String> = manifest
            .files()
            .map(|f| f.path.to_string())
            .chain(manifest.removed.iter().map(|r| r.key.clone()))
            .collect();
        for table in Table::ALL {
            let prefix = table.prefix();
            let objects: Vec<_> =
                store
                    .list(Some(&prefix))
                    .try_collect()
                    .await
                    .map_err(|source| Error::ObjectStore {
                        op: "list",
                        key: prefix.to_string(),
                        source,
                    })?;
            for o in objects {
                let is_data = FileKey::parse(&o.location).is_some_and(|k| k.table == table);
                let old = o.last_modified.timestamp_millis() <= now.saturating_sub(age);
                if is_data && old && !known.contains(o.location.as_ref()) {
                    match store.delete(&o.location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => report.orphans_deleted += 1,
                        Err(e) => report.failures.push(format!("delete orphan {}: {e}", o.location)),
                    }
                }
            }
        }
        Ok(())
    }
}

/// The reads that together select every series of `req` once, each of at most `budget`
/// samples (a series larger than that is a part of its own): `req` itself when it is within
/// the budget, else parts of series in label order, which is close to the files' row order,
/// so each part decodes its own pages.
async fn rollup_parts(
    source: &dyn crate::read::Source,
    req: &SelectRequest,
    budget: usize,
) -> Result<Vec<SelectRequest>> {
    let mut sizes = source.series_samples(req).await?;
    if sizes.iter().map(|s| s.samples).sum::<usize>() <= budget {
        return Ok(vec![req.clone()]);
    }
    sizes.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    let parts = crate::read::pack(sizes.iter().map(|s| (s.labels.series_id(), s.samples)), budget);
    Ok(parts
        .into_iter()
        .map(|ids| req.clone().only(Arc::new(ids.into_iter().collect())))
        .collect())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The groups of `files` (one table) a round merges: per cluster, a settled day's files
/// together; in a younger day, each settled hour's files. Groups of one file are left alone.
fn groups(files: &[Arc<FileMeta>], now: i64, settle_ms: i64) -> Vec<Vec<Arc<FileMeta>>> {
    let settled = |end: i64| end.saturating_add(settle_ms) < now;
    let mut by_day: BTreeMap<(&str, Hour), Vec<Arc<FileMeta>>> = BTreeMap::new();
    for f in files {
        by_day
            .entry((f.key.cluster.as_str(), f.key.hour.day_start()))
            .or_default()
            .push(f.clone());
    }
    let mut out = Vec::new();
    for ((_, day), files) in by_day {
        if settled(day.start_ms() + DAY_MS - 1) {
            out.push(files);
            continue;
        }
        let mut by_hour: BTreeMap<Hour, Vec<Arc<FileMeta>>> = BTreeMap::new();
        for f in files.into_iter().filter(|f| f.key.span == Span::Hour) {
            by_hour.entry(f.key.hour).or_default().push(f);
        }
        out.extend(by_hour.into_iter().filter(|(h, _)| settled(h.end_ms())).map(|(_, f)| f));
    }
    out.retain(|g| g.len() > 1);
    for g in &mut out {
        g.sort_unstable_by_key(|f| f.key.id);
    }
    out
}

/// Splits a group (write order) into runs of at most `max_bytes` input bytes (a run holds at
/// least one file); runs of one file are dropped (nothing to merge).
fn chunks(group: Vec<Arc<FileMeta>>, max_bytes: u64) -> Vec<Vec<Arc<FileMeta>>> {
    let mut out: Vec<Vec<Arc<FileMeta>>> = Vec::new();
    let mut bytes = 0;
    for f in group {
        match out.last_mut() {
            Some(run) if bytes + f.size <= max_bytes => {
                bytes += f.size;
                run.push(f);
            }
            _ => {
                bytes = f.size;
                out.push(vec![f]);
            }
        }
    }
    out.retain(|r| r.len() > 1);
    out
}

#[cfg(test)]
mod tests;
