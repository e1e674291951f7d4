//! The manifest: which stored files are live, and how far each writer's WAL is published.
//!
//! # Why
//! Without it, readers learn the files by listing the bucket (slow and paid per request at
//! scale), a file becomes visible the instant its upload completes (so a flush killed after
//! the upload but before its WAL was trimmed publishes the same rows twice), and a compaction
//! cannot swap its inputs for its output in one step.
//!
//! # Format (on-disk contract)
//! Each version is one immutable JSON object, `_manifest/<version>.json` with the version as a
//! 20-digit zero-padded decimal, so any tool can read the live file list:
//!
//! ```json
//! {"format":1,"version":42,"commit":"0193…","written_at":1795269600000,
//!  "files":[{"key":"metrics/2026-11-21/14/eu/1795269600000-1795273185000-86400-0193….parquet","size":123456}],
//!  "writers":{"0193…":{"wal_segment":17,"at":1795269600000}},
//!  "removed":[{"key":"metrics/…parquet","size":99,"at":1795269600000}]}
//! ```
//!
//! - `files`: every live file of every table, by object key ([`crate::layout::FileKey`] says
//!   what a key means: table, span, cluster, time range, rows) and size in bytes. An object
//!   under a table prefix that is not listed here is not data: an upload whose commit never
//!   happened, or a file compaction or retention removed. Readers ignore it.
//! - `writers`: for each ingester (by the id it keeps in its data directory), the WAL segment
//!   below which everything it wrote is in `files` (`wal_segment`), and when that was recorded.
//!   On restart an ingester replays only segments at or above its mark, so a crash between a
//!   commit and the WAL trim never publishes the same rows twice.
//! - `removed`: files dropped from `files` (by compaction or retention) and the time of that
//!   commit. They stay in the object store for `storage.deletion_delay` so queries that
//!   planned with an older version can finish, then the compactor deletes them and forgets
//!   them here.
//! - `commit`: a UUID unique to the commit that wrote the version, so a writer whose create
//!   was retried after a lost response recognises its own version.
//! - `_manifest/_latest` holds the newest version number as decimal text. It is a hint,
//!   written after each commit: readers start there and probe forward.
//!
//! # Protocol
//! - **Commit** (optimistic concurrency): read version N, apply the change to it, create
//!   version N+1 with a conditional put that fails if the object exists (`PutMode::Create`;
//!   S3 `If-None-Match: *`). If another writer created N+1 first, reload and apply the change
//!   again. A change that removes files conflicts when any of them is no longer live (two
//!   compactions, or a compaction and retention, never both win); adds always re-apply. After
//!   the create, the hint is written and version N+1-[`KEEP_VERSIONS`] deleted (best effort).
//! - **Write**: upload the data files first (under their final keys), then commit them. A
//!   crash between leaves unlisted objects, never partly visible data; the compactor deletes
//!   unlisted objects older than `storage.orphan_age`.
//! - **Read**: GET the hint, then GET versions from there until one is missing; the newest is
//!   installed whole, so a reader never sees a compacted file together with its inputs, nor
//!   neither. If the hinted version is gone (a hint lagging by more than `KEEP_VERSIONS`),
//!   list `_manifest/` instead.
//! - **Bootstrap**: a store without a manifest (written by a build before manifests) is listed
//!   once, and every parseable data file becomes version 1.
//!
//! Versions are whole snapshots: simple to read with any tool, at the price of rewriting the
//! list on every commit (about 150 bytes per live file; compaction keeps the count small).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::FileMeta;
use crate::layout::{self, FileKey, Table};
use crate::{Error, Result};

/// The manifest format this build writes and reads.
const FORMAT: u32 = 1;

/// Versions kept behind the newest one (older ones are deleted by the next commits).
pub(crate) const KEEP_VERSIONS: u64 = 16;

/// Conflicting commits retried before giving up (each retry means another writer committed).
const MAX_COMMIT_ATTEMPTS: usize = 64;

/// Sends of one version's create that failed without landing, before the outcome is reported
/// as unknown (object_store already retried each send where that is safe).
const CREATE_ATTEMPTS: usize = 3;

/// One manifest version: the live files and the writers' WAL marks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    format: u32,
    pub(crate) version: u64,
    commit: String,
    written_at: i64,
    files: Vec<LiveFile>,
    #[serde(default)]
    pub(crate) writers: BTreeMap<String, WriterMark>,
    #[serde(default)]
    pub(crate) removed: Vec<Removed>,
}

/// A live file: its key and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LiveFile {
    key: String,
    size: u64,
}

/// How far one writer's WAL is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterMark {
    /// Every record in WAL segments below this id is in the live files.
    pub wal_segment: u64,
    /// When the mark was recorded (ms since the epoch).
    pub at: i64,
}

/// A file no longer live, awaiting deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Removed {
    pub(crate) key: String,
    pub(crate) size: u64,
    /// When the commit that removed it was written (ms since the epoch).
    pub(crate) at: i64,
}

/// What one commit changes. Applied to whichever version is newest when it commits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Change {
    /// Files to make live.
    pub(crate) add: Vec<FileMeta>,
    /// Files to drop; the commit conflicts if any is not live.
    pub(crate) remove: Vec<Path>,
    /// A writer's new WAL mark (a mark never moves back).
    pub(crate) writer: Option<(String, u64)>,
    /// Removed files now deleted from the object store.
    pub(crate) forget: Vec<String>,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.writer.is_none() && self.forget.is_empty()
    }
}

impl Manifest {
    /// The live files, parsed; keys that do not parse (a newer layout) are skipped with a warning.
    pub(crate) fn files(&self) -> impl Iterator<Item = FileMeta> + '_ {
        self.files.iter().filter_map(|f| {
            // Keys are stored as object_store renders them (already escaped): parse, not from.
            let key = Path::parse(&f.key).ok().and_then(|p| FileKey::parse(&p));
            if key.is_none() {
                tracing::warn!(key = %f.key, "manifest lists a key this build cannot parse; ignoring it");
            }
            key.map(|k| FileMeta::new(k, f.size))
        })
    }

    /// Version N+1: `change` applied to this one. `None` when a removed file is not live.
    fn apply(&self, change: &Change, now: i64) -> Option<Manifest> {
        let mut files: BTreeMap<String, u64> = self.files.iter().map(|f| (f.key.clone(), f.size)).collect();
        let mut removed = self.removed.clone();
        for path in &change.remove {
            let size = files.remove(path.as_ref())?;
            removed.push(Removed {
                key: path.to_string(),
                size,
                at: now,
            });
        }
        for f in &change.add {
            files.insert(f.path.to_string(), f.size);
        }
        let forget: BTreeSet<&str> = change.forget.iter().map(String::as_str).collect();
        removed.retain(|r| !forget.contains(r.key.as_str()));
        let mut writers = self.writers.clone();
        if let Some((id, segment)) = &change.writer {
            let mark = writers.entry(id.clone()).or_insert(WriterMark {
                wal_segment: 0,
                at: now,
            });
            mark.wal_segment = mark.wal_segment.max(*segment);
            mark.at = now;
        }
        Some(Manifest {
            format: FORMAT,
            version: self.version + 1,
            commit: Uuid::now_v7().to_string(),
            written_at: now,
            files: files.into_iter().map(|(key, size)| LiveFile { key, size }).collect(),
            writers,
            removed,
        })
    }

    fn encode(&self) -> Result<Bytes> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(|e| Error::InvalidData {
                reason: format!("encoding manifest version {}: {e}", self.version),
            })
    }

    fn decode(bytes: &[u8], key: &Path) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::InvalidData {
            reason: format!("manifest {key} is not valid: {e}"),
        })?;
        if m.format > FORMAT {
            return Err(Error::InvalidData {
                reason: format!(
                    "manifest {key} has format {}, this build reads up to {FORMAT}; upgrade Tributary",
                    m.format
                ),
            });
        }
        Ok(m)
    }
}

/// Why a commit did not happen.
#[derive(Debug)]
pub(crate) enum CommitError {
    /// A file the change removes is no longer live (another compaction or retention won).
    Conflict,
    /// The object store failed.
    Store(Error),
}

impl From<Error> for CommitError {
    fn from(e: Error) -> Self {
        CommitError::Store(e)
    }
}

/// The newest manifest this process knows, and the one way to read and write versions.
#[derive(Debug)]
pub(crate) struct ManifestStore {
    store: Arc<dyn ObjectStore>,
    current: RwLock<Arc<Manifest>>,
    /// One commit at a time from this process (others are handled by the conditional put).
    commit_lock: tokio::sync::Mutex<()>,
}

impl ManifestStore {
    /// Loads the newest version, bootstrapping version 1 from a listing if there is none.
    pub(crate) async fn open(store: Arc<dyn ObjectStore>) -> Result<Self> {
        let latest = match find_latest(store.as_ref(), 0).await? {
            Some(m) => m,
            None => bootstrap(store.as_ref()).await?,
        };
        Ok(Self {
            store,
            current: RwLock::new(Arc::new(latest)),
            commit_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The newest version known to this process.
    pub(crate) fn current(&self) -> Arc<Manifest> {
        self.current.read().clone()
    }

    /// Loads a newer version if there is one; returns it.
    pub(crate) async fn refresh(&self) -> Result<Option<Arc<Manifest>>> {
        let known = self.current().version;
        match find_latest(self.store.as_ref(), known).await? {
            Some(m) if m.version > known => Ok(Some(self.install(m))),
            _ => Ok(None),
        }
    }

    fn install(&self, m: Manifest) -> Arc<Manifest> {
        let mut cur = self.current.write();
        if m.version > cur.version {
            *cur = Arc::new(m);
        }
        cur.clone()
    }

    /// Commits `change` on top of the newest version; returns the version written.
    pub(crate) async fn commit(&self, change: &Change) -> std::result::Result<Arc<Manifest>, CommitError> {
        let _one = self.commit_lock.lock().await;
        if change.is_empty() {
            return Ok(self.current());
        }
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let base = self.current();
            let next = base
                .apply(change, chrono::Utc::now().timestamp_millis())
                .ok_or(CommitError::Conflict)?;
            match self.create(&next).await? {
                None => {}
                Some(theirs) => {
                    // Another writer took this version: apply the change to the newest one.
                    self.install(theirs);
                    self.refresh().await?;
                    continue;
                }
            }
            let version = next.version;
            let installed = self.install(next);
            self.after_commit(version).await;
            return Ok(installed);
        }
        Err(CommitError::Store(Error::Task {
            op: "commit manifest",
            reason: format!("{MAX_COMMIT_ATTEMPTS} attempts lost to concurrent commits"),
        }))
    }

    /// Creates `next`'s version object; `None` when it is ours, `Some` with the version another
    /// writer created first.
    ///
    /// A create whose answer is lost (a timeout, a reset) may still have landed, and object_store
    /// does not retry it; a retried one may find its own first attempt (`AlreadyExists`). So
    /// after any failure the version is read back and recognised by its commit id, and a create
    /// that did not land is sent again with the same bytes (a late first attempt then fails, or
    /// is found to be ours). Only when the version cannot be read is the outcome unknown.
    async fn create(&self, next: &Manifest) -> Result<Option<Manifest>> {
        let key = layout::manifest_path(next.version);
        let body = next.encode()?;
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            let opts = PutOptions::from(PutMode::Create);
            let err = match self.store.put_opts(&key, PutPayload::from(body.clone()), opts).await {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            match read_version(self.store.as_ref(), next.version).await {
                Ok(Some(m)) if m.commit == next.commit => return Ok(None),
                Ok(Some(m)) => return Ok(Some(m)),
                Ok(None) => last = Some(err),
                Err(_) => {
                    return Err(Error::CommitUncertain {
                        key: key.to_string(),
                        source: err,
                    });
                }
            }
        }
        Err(Error::CommitUncertain {
            key: key.to_string(),
            source: last.unwrap_or_else(|| object_store::Error::Generic {
                store: "manifest",
                source: "no create attempt was made".into(),
            }),
        })
    }

    /// Writes the hint and deletes the version that fell out of the kept window (best effort:
    /// a failure only costs readers a probe, or leaves one old object for a later cleanup).
    async fn after_commit(&self, version: u64) {
        let hint = PutPayload::from(version.to_string().into_bytes());
        if let Err(e) = self.store.put(&layout::manifest_hint_path(), hint).await {
            tracing::warn!(error = %e, version, "writing the manifest hint failed");
        }
        if let Some(old) = version.checked_sub(KEEP_VERSIONS).filter(|v| *v > 0) {
            let key = layout::manifest_path(old);
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => tracing::warn!(error = %e, %key, "deleting an old manifest version failed"),
            }
        }
    }

    /// Deletes manifest versions older than the kept window that earlier commits failed to
    /// delete; returns how many.
    pub(crate) async fn delete_stale_versions(&self) -> Result<usize> {
        let keep_from = self.current().version.saturating_sub(KEEP_VERSIONS);
        let stale: Vec<Path> = list_versions(self.store.as_ref())
            .await?
            .into_iter()
            .filter(|(v, _)| *v < keep_from)
            .map(|(_, p)| p)
            .collect();
        for p in &stale {
            match self.store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(Error::ObjectStore {
                        op: "delete manifest version",
                        key: p.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(stale.len())
    }
}

/// GETs one version; `None` if it does not exist.
async fn read_version(store: &dyn ObjectStore, version: u64) -> Result<Option<Manifest>> {
    let key = layout::manifest_path(version);
    match store.get(&key).await {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|source| Error::ObjectStore {
                op: "read manifest",
                key: key.to_string(),
                source,
            })?;
            Manifest::decode(&bytes, &key).map(Some)
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(Error::ObjectStore {
            op: "read manifest",
            key: key.to_string(),
            source,
        }),
    }
}

/// The newest version at or after `known` (0: none known), or `None` when the store has no
/// manifest at all.
async fn find_latest(store: &dyn ObjectStore, known: u64) -> Result<Option<Manifest>> {
    let hint = read_hint(store).await?;
    let mut from = hint.unwrap_or(0).max(known);
    let mut latest = None;
    if from > 0 {
        latest = read_version(store, from).await?;
        if latest.is_none() {
            // The hint (or what this process knew) points at a version deleted since: only a
            // listing says what exists now.
            from = 0;
        }
    }
    if from == 0 {
        let Some(&(v, _)) = list_versions(store).await?.last() else {
            return Ok(None);
        };
        from = v;
        latest = read_version(store, v).await?;
    }
    // Probe forward: versions are dense, so the first missing one ends the walk.
    while let Some(next) = read_version(store, from + 1).await? {
        from += 1;
        latest = Some(next);
    }
    Ok(latest)
}

async fn read_hint(store: &dyn ObjectStore) -> Result<Option<u64>> {
    let key = layout::manifest_hint_path();
    match store.get(&key).await {
        Ok(r) => {
            let bytes = r.bytes().await.map_err(|source| Error::ObjectStore {
                op: "read manifest hint",
                key: key.to_string(),
                source,
            })?;
            Ok(std::str::from_utf8(&bytes).ok().and_then(|s| s.trim().parse().ok()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(Error::ObjectStore {
            op: "read manifest hint",
            key: key.to_string(),
            source,
        }),
    }
}

/// Every manifest version object, oldest first.
async fn list_versions(store: &dyn ObjectStore) -> Result<Vec<(u64, Path)>> {
    let prefix = layout::manifest_prefix();
    let mut out: Vec<(u64, Path)> = store
        .list(Some(&prefix))
        .try_collect::<Vec<_>>()
        .await
        .map_err(|source| Error::ObjectStore {
            op: "list manifest versions",
            key: prefix.to_string(),
            source,
        })?
        .into_iter()
        .filter_map(|o| layout::parse_manifest_path(&o.location).map(|v| (v, o.location)))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Creates version 1 from a listing of every table (a store written before manifests, or an
/// empty one). If another process bootstraps first, its version wins.
async fn bootstrap(store: &dyn ObjectStore) -> Result<Manifest> {
    let mut files = Vec::new();
    for table in Table::ALL {
        let prefix = table.prefix();
        let objects: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| Error::ObjectStore {
                op: "list",
                key: prefix.to_string(),
                source,
            })?;
        for o in objects {
            match FileKey::parse(&o.location) {
                Some(key) if key.table == table => files.push(LiveFile {
                    key: o.location.to_string(),
                    size: o.size,
                }),
                _ => tracing::debug!(key = %o.location, "ignoring object that is not a Tributary data file"),
            }
        }
    }
    files.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let first = Manifest {
        format: FORMAT,
        version: 1,
        commit: Uuid::now_v7().to_string(),
        written_at: chrono::Utc::now().timestamp_millis(),
        files,
        writers: BTreeMap::new(),
        removed: Vec::new(),
    };
    let key = layout::manifest_path(1);
    let opts = PutOptions::from(PutMode::Create);
    match store.put_opts(&key, PutPayload::from(first.encode()?), opts).await {
        Ok(_) => {
            tracing::info!(files = first.files.len(), "created the storage manifest from a listing");
            Ok(first)
        }
        Err(object_store::Error::AlreadyExists { .. }) => {
            find_latest(store, 1).await?.ok_or_else(|| Error::InvalidData {
                reason: "manifest version 1 exists but cannot be read".into(),
            })
        }
        Err(source) => Err(Error::ObjectStore {
            op: "create manifest version",
            key: key.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;
