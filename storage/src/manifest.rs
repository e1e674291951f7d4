//! The manifest: which stored files are live, and how far each writer's WAL is published.
//!
//! # Why
//! Without it, readers learn the files by listing the bucket (slow and paid per request at
//! scale), a file becomes visible the instant its upload completes (so a flush killed after
//! the upload but before its WAL was trimmed publishes the same rows twice), and a compaction
//! cannot swap its inputs for its output in one step.
//!
//! # Format (on-disk contract)
//! The manifest is a log of versions. Version `v`'s **change** is one immutable JSON object,
//! `_manifest/<v>.json` (20-digit zero-padded), created with a conditional put:
//!
//! ```json
//! {"format":2,"version":42,"commit":"0193…","written_at":1795269600000,
//!  "add":[{"key":"metrics/2026-11-21/14/eu/1795269600000-1795273185000-86400-0193….parquet","size":123456}],
//!  "remove":["metrics/2026-11-21/13/eu/…parquet"],
//!  "writers":{"0193…":17},
//!  "forget":["metrics/2026-11-20/13/eu/…parquet"]}
//! ```
//!
//! - `add`: files (key, size in bytes) that become live. `remove`: live files that stop being
//!   live (compaction inputs, expired files); they are kept in the state's `removed` list with
//!   the change's `written_at` until deleted. `forget`: removed files now deleted from the store.
//! - `writers`: ingester id → WAL segment: everything that ingester wrote below the segment is
//!   in live files. A mark never moves back.
//! - `commit`: unique per commit, so a writer whose create was retried after a lost answer
//!   recognises its own version.
//!
//! Every [`CHECKPOINT_EVERY`] versions the whole **state** is also written,
//! `_manifest/<v>.checkpoint.json`:
//!
//! ```json
//! {"format":2,"version":64,"written_at":1795269600000,
//!  "files":[{"key":"…","size":123456}],
//!  "writers":{"0193…":{"wal_segment":17,"at":1795269600000}},
//!  "removed":[{"key":"…","size":99,"at":1795269600000}]}
//! ```
//!
//! and `_manifest/_last_checkpoint` holds its version as text (a hint: it may lag). The state at
//! `v` is the newest checkpoint at or below `v` with the changes after it applied in order; an
//! empty store is version 0 with nothing live. An object under a table prefix that the state
//! does not list is not data: an upload whose commit never happened, or a removed file.
//!
//! # Protocol
//! - **Commit** (optimistic concurrency): apply the change to the newest known state N (a
//!   change that removes a file no longer live conflicts: two compactions, or compaction and
//!   retention, never both win), then create `N+1.json` with a conditional put that fails if the
//!   object exists (`PutMode::Create`; S3 `If-None-Match: *`). If another writer created N+1
//!   first, read the changes since N and try again on top of them. A create whose answer was
//!   lost is read back and recognised by its commit id, or sent again with the same bytes.
//! - **Checkpoint**: the writer of a version divisible by [`CHECKPOINT_EVERY`] writes that
//!   version's checkpoint, then the hint, then deletes the changes and checkpoint that fell two
//!   checkpoints behind (a reader lagging further reloads from the newest checkpoint).
//! - **Write**: upload the data files first (under their final keys), then commit them. A crash
//!   between leaves unlisted objects, never partly visible data; the compactor deletes unlisted
//!   objects older than `storage.compaction.orphan_age`.
//! - **Read**: GET the hint; when it names a checkpoint newer than the state held, load it; then
//!   GET changes from the next version on until one is missing. An idle refresh costs two GETs;
//!   a cold start one GET for the hint, one for the checkpoint and at most
//!   [`CHECKPOINT_EVERY`] small ones. A reader installs each state whole, so it never sees a
//!   compacted file together with its inputs, nor neither. Without a usable hint, `_manifest/`
//!   is listed once.
//! - **Bootstrap**: a store without a manifest (written by a build before manifests) is listed
//!   once, and every parseable data file is added by version 1.

mod objects;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalog::FileMeta;
use crate::layout::FileKey;
use crate::{Error, Result};
use objects::Objects;

/// The manifest format this build writes and reads.
const FORMAT: u32 = 2;

/// A checkpoint is written at every version divisible by this.
pub(crate) const CHECKPOINT_EVERY: u64 = 32;

/// Conflicting commits retried before giving up (each retry means another writer committed).
const MAX_COMMIT_ATTEMPTS: usize = 64;

/// The state at one version: the live files and the writers' WAL marks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) version: u64,
    /// Live file key → size.
    files: BTreeMap<String, u64>,
    pub(crate) writers: BTreeMap<String, WriterMark>,
    pub(crate) removed: Vec<Removed>,
}

/// A live file in a checkpoint or a change.
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
    /// When the change that removed it was written (ms since the epoch).
    pub(crate) at: i64,
}

/// `_manifest/<v>.checkpoint.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    format: u32,
    version: u64,
    written_at: i64,
    files: Vec<LiveFile>,
    #[serde(default)]
    writers: BTreeMap<String, WriterMark>,
    #[serde(default)]
    removed: Vec<Removed>,
}

/// `_manifest/<v>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Delta {
    format: u32,
    version: u64,
    commit: String,
    written_at: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    add: Vec<LiveFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    remove: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    writers: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    forget: Vec<String>,
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
        self.files.iter().filter_map(|(key, size)| {
            // Keys are stored as object_store renders them (already escaped): parse, not from.
            let parsed = Path::parse(key).ok().and_then(|p| FileKey::parse(&p));
            if parsed.is_none() {
                tracing::warn!(%key, "manifest lists a key this build cannot parse; ignoring it");
            }
            parsed.map(|k| FileMeta::new(k, *size))
        })
    }

    /// The change that makes version N+1 from this one; `None` when a removed file is not live.
    fn delta(&self, change: &Change, now: i64) -> Option<Delta> {
        if change.remove.iter().any(|p| !self.files.contains_key(p.as_ref())) {
            return None;
        }
        Some(Delta {
            format: FORMAT,
            version: self.version + 1,
            commit: Uuid::now_v7().to_string(),
            written_at: now,
            add: change
                .add
                .iter()
                .map(|f| LiveFile {
                    key: f.path.to_string(),
                    size: f.size,
                })
                .collect(),
            remove: change.remove.iter().map(|p| p.to_string()).collect(),
            writers: change.writer.iter().cloned().collect(),
            forget: change.forget.clone(),
        })
    }

    /// This state with the change `d` (the next version) applied.
    fn apply(&mut self, d: &Delta) {
        for key in &d.remove {
            if let Some(size) = self.files.remove(key) {
                self.removed.push(Removed {
                    key: key.clone(),
                    size,
                    at: d.written_at,
                });
            }
        }
        for f in &d.add {
            self.files.insert(f.key.clone(), f.size);
        }
        let forget: BTreeSet<&str> = d.forget.iter().map(String::as_str).collect();
        self.removed.retain(|r| !forget.contains(r.key.as_str()));
        for (id, segment) in &d.writers {
            let mark = self.writers.entry(id.clone()).or_insert(WriterMark {
                wal_segment: 0,
                at: d.written_at,
            });
            mark.wal_segment = mark.wal_segment.max(*segment);
            mark.at = d.written_at;
        }
        self.version = d.version;
    }

    fn checkpoint(&self, now: i64) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            version: self.version,
            written_at: now,
            files: self
                .files
                .iter()
                .map(|(key, size)| LiveFile {
                    key: key.clone(),
                    size: *size,
                })
                .collect(),
            writers: self.writers.clone(),
            removed: self.removed.clone(),
        }
    }

    fn from_checkpoint(c: Checkpoint) -> Self {
        Self {
            version: c.version,
            files: c.files.into_iter().map(|f| (f.key, f.size)).collect(),
            writers: c.writers,
            removed: c.removed,
        }
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

/// The newest state this process knows, and the one way to read and write versions.
#[derive(Debug)]
pub(crate) struct ManifestStore {
    objects: Objects,
    current: RwLock<Arc<Manifest>>,
    /// One commit or refresh at a time from this process (others are handled by the
    /// conditional put).
    lock: tokio::sync::Mutex<()>,
}

impl ManifestStore {
    /// Loads the newest version, bootstrapping version 1 from a listing if there is none.
    pub(crate) async fn open(store: Arc<dyn ObjectStore>) -> Result<Self> {
        let objects = Objects::new(store);
        let mut state = objects.load(None).await?;
        if state.version == 0 {
            let delta = objects.bootstrap().await?;
            if let Some(d) = delta {
                state.apply(&d);
            }
            state = objects.forward(state).await?;
        }
        Ok(Self {
            objects,
            current: RwLock::new(Arc::new(state)),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The newest state known to this process.
    pub(crate) fn current(&self) -> Arc<Manifest> {
        self.current.read().clone()
    }

    /// Loads newer versions if there are any; returns the newest state when it changed.
    pub(crate) async fn refresh(&self) -> Result<Option<Arc<Manifest>>> {
        let _one = self.lock.lock().await;
        self.refresh_locked().await
    }

    async fn refresh_locked(&self) -> Result<Option<Arc<Manifest>>> {
        let known = self.current();
        let next = self.objects.load(Some(&known)).await?;
        if next.version > known.version {
            let next = Arc::new(next);
            *self.current.write() = next.clone();
            Ok(Some(next))
        } else {
            Ok(None)
        }
    }

    /// Commits `change` on top of the newest version; returns the state it made.
    pub(crate) async fn commit(&self, change: &Change) -> std::result::Result<Arc<Manifest>, CommitError> {
        let _one = self.lock.lock().await;
        if change.is_empty() {
            return Ok(self.current());
        }
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let base = self.current();
            let delta = base
                .delta(change, chrono::Utc::now().timestamp_millis())
                .ok_or(CommitError::Conflict)?;
            if !self.objects.create(&delta).await? {
                // Another writer took this version: read what it did and try on top of it.
                self.refresh_locked().await?;
                continue;
            }
            let mut next = (*base).clone();
            next.apply(&delta);
            let next = Arc::new(next);
            *self.current.write() = next.clone();
            if next.version.is_multiple_of(CHECKPOINT_EVERY) {
                self.objects.checkpoint(&next).await;
            }
            return Ok(next);
        }
        Err(CommitError::Store(Error::Task {
            op: "commit manifest",
            reason: format!("{MAX_COMMIT_ATTEMPTS} attempts lost to concurrent commits"),
        }))
    }

    /// Deletes manifest objects two checkpoints behind the newest that earlier commits failed
    /// to delete; returns how many.
    pub(crate) async fn delete_stale_versions(&self) -> Result<usize> {
        self.objects.delete_stale(self.current().version).await
    }
}

#[cfg(test)]
mod tests;
