//! The write-ahead log: where an acknowledged write lives until its data is in object storage.
//!
//! The promise is "nothing acknowledged is ever lost": [`Wal::append`] resolves only after the record is
//! written and `fdatasync`ed, and a caller sends its 2xx only after that. Records are opaque bytes here;
//! [`crate::record`] owns what they mean.
//!
//! # On-disk format (version 1) — a contract; changing it needs a new version byte
//!
//! A WAL directory holds:
//! - `LOCK`: an empty file, `flock`ed exclusively while a [`Wal`] has the directory open, so two
//!   processes can never append to the same log.
//! - Segment files named `NNNNNNNNNNNNNNNNNNNN.wal`: the segment id as a decimal `u64` zero-padded to 20
//!   digits, so lexical order is numeric order is append order. Ids only grow and are never reused.
//!   Other files are ignored (with a warning).
//!
//! Each segment is an 8-byte header followed by zero or more records, with nothing between or after them:
//! ```text
//! header:  "TRIBWAL" (7 bytes, ASCII)  u8 version = 1
//! record:  u32 LE  payload length L, 1 ..= 268_435_456 (256 MiB)
//!          u32 LE  crc32c (Castagnoli) of the payload
//!          L bytes payload
//! ```
//! A payload is never empty, so an all-zero record header — what a filesystem leaves after a crash in a
//! file that was extended but not written — is never valid.
//!
//! A segment is created with `O_CREAT|O_EXCL`, its header written and synced, then the directory synced,
//! before any record goes in. Records are written in batches; each batch is followed by one `fdatasync`
//! before any of its appends is acknowledged. A segment is never written again once a later one exists,
//! so only the last segment can hold bytes that were never synced. Removing segments syncs the directory.
//!
//! # Replay ([`Wal::open`])
//! Segments are read oldest first and every valid record goes to the callback in append order. At the
//! first invalid stretch of a segment (a header without the magic, a length of 0 or over 256 MiB, a
//! checksum mismatch, or the file ending inside a record):
//! - In the **last** segment, if the file ends inside that record (as framed by its own length field)
//!   or only zero bytes follow it, it is a *torn tail*: an interrupted, unacknowledged write. It is cut
//!   off the file (or the file removed, if no valid record precedes it), logged at `warn`, and counted in
//!   [`ReplayStats::torn_tail_bytes`]. Not an error.
//! - Anything else is *corruption*: logged at `error`, recorded in [`ReplayStats::corruptions`], the rest
//!   of that segment is skipped (and kept on disk as evidence), and replay continues with the next
//!   segment. `open` still succeeds, so the node keeps serving; the stats are what to alert on.
//!
//! A header with the magic but another version is an error ([`WalError::UnsupportedVersion`]), as is an
//! error returned by the callback: both stop `open`, because skipping would silently drop data. Segments
//! with no records are removed, then `open` starts a new segment above every existing id.
//!
//! # Failures while appending
//! A failed write or sync fails every append of its batch not already acknowledged (callers answer
//! 5xx, so the client retries), and the segment is abandoned: it is cut back to its last synced length
//! and the next append goes to a fresh segment. If even that cut fails, the partial record stays in what
//! is now an older segment, where replay detects it (checksum or length) and reports corruption.
//! Records of a failed batch that did reach the disk may then be replayed although their append failed:
//! the log is at-least-once for failed appends, exactly-once for successful ones.

mod group_commit;
mod replay;
mod segment;

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use group_commit::{Command, Counters, Writer};
pub use replay::{Corruption, CorruptionReason, ReplayProgress, ReplayProgressSnapshot, ReplayStats};
use segment::{MAX_RECORD_BYTES, io_err};

/// Name of the lock file inside a WAL directory.
const LOCK_FILE: &str = "LOCK";

/// Everything that can go wrong in the WAL. Wrapped by the crate's [`crate::Error`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum WalError {
    /// A file-system operation failed; `op` says which.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// To which file or directory.
        path: PathBuf,
        /// The error.
        source: Arc<std::io::Error>,
    },
    /// Another open [`Wal`] (in this or another process) holds the directory.
    #[error("WAL directory {} is in use by another open write-ahead log", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A segment written by a newer format version; replaying it partially would lose data.
    #[error("WAL segment {} has format version {found}, this build reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// Its version.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// Payloads must be 1 ..= 256 MiB.
    #[error("WAL record of {len} bytes rejected: payloads must be 1..={max} bytes")]
    RecordSize {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `remove_before` was asked to delete the segment being written (or a later one).
    #[error("cannot remove WAL segments before {requested}: segment {active} is the one being written")]
    RemoveActive {
        /// The segment asked for.
        requested: SegmentId,
        /// The segment being written.
        active: SegmentId,
    },
    /// Only reachable if someone plants a segment named `18446744073709551615.wal`.
    #[error("WAL segment ids are exhausted")]
    IdsExhausted,
    /// The log was closed; the append was not written.
    #[error("the write-ahead log is closed")]
    Closed,
    /// The replay callback rejected a record (it could not be decoded or applied).
    #[error("replaying a WAL record: {0}")]
    Replay(String),
}

/// WAL tuning. Both limits are soft for single oversized records, which are written whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Start a new segment before a write would grow the current one past this many bytes (header and
    /// framing included). Segments are the unit of deletion after a flush, so this bounds how much
    /// already-flushed data can linger on disk. Default 64 MiB.
    pub segment_bytes: u64,
    /// Most record bytes (framing included) one group commit writes before its fsync. Caps the latency a
    /// huge batch adds to the appends queued behind it. Default 16 MiB.
    pub max_batch_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_batch_bytes: 16 << 20,
        }
    }
}

/// A segment's id: its file name, and its position in append order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Counters since [`Wal::open`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Appends acknowledged.
    pub appends: u64,
    /// Bytes those appends wrote, framing included.
    pub bytes: u64,
    /// `fdatasync`/`fsync` calls on segments and the directory.
    pub fsyncs: u64,
    /// Segment files in the directory.
    pub segments: u64,
    /// The segment appends currently go to.
    pub current_segment: SegmentId,
    /// Batches that failed to write or sync.
    pub write_errors: u64,
}

/// A handle to an open write-ahead log; clones share it. Dropping the last handle without
/// [`close`](Wal::close) still writes everything already queued, and blocks until the writer thread
/// has stopped, so the directory can be reopened right after.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    // Dropped before `_writer` (field order), so the writer thread sees the channel close and exits before the join.
    tx: mpsc::Sender<Command>,
    _writer: JoinOnDrop,
    counters: Arc<Counters>,
    dir: PathBuf,
    #[cfg(test)]
    faults: Arc<group_commit::Faults>,
}

struct JoinOnDrop(Option<JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take()
            && handle.join().is_err()
        {
            tracing::error!("WAL writer thread panicked");
        }
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Wal {
    /// Replays every record in `dir` in append order by calling `f(payload)`, tolerating a torn tail, then
    /// opens a new segment for appends. Creates `dir` if needed. Blocking: call it from
    /// `spawn_blocking` in async code. See the module docs for exactly what replay tolerates.
    pub fn open(
        dir: &Path,
        cfg: WalConfig,
        f: impl FnMut(&[u8]) -> Result<(), WalError>,
    ) -> Result<(Wal, ReplayStats), WalError> {
        Self::open_after(dir, cfg, SegmentId(0), &ReplayProgress::default(), f)
    }

    /// [`Wal::open`] for a log whose segments below `published` are already stored elsewhere
    /// (the storage manifest's mark for this ingester): those are deleted without replay, and
    /// new segments get ids at or above `published`, so a later mark never covers unpublished
    /// records even if the directory was emptied. `progress` follows the replay as it runs and
    /// is marked finished when `open_after` returns, whatever the result.
    pub fn open_after(
        dir: &Path,
        cfg: WalConfig,
        published: SegmentId,
        progress: &ReplayProgress,
        mut f: impl FnMut(&[u8]) -> Result<(), WalError>,
    ) -> Result<(Wal, ReplayStats), WalError> {
        let prepared = prepare(dir, cfg, published, progress, &mut f);
        progress.finish();
        let (writer, stats) = prepared?;
        let counters = writer.counters.clone();
        #[cfg(test)]
        let faults = writer.faults.clone();
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err("spawn writer thread for", dir))?;
        let inner = Inner {
            tx,
            _writer: JoinOnDrop(Some(handle)),
            counters,
            dir: dir.to_path_buf(),
            #[cfg(test)]
            faults,
        };
        Ok((Wal { inner: Arc::new(inner) }, stats))
    }

    /// Appends one record. Resolves only after it is written and fdatasync'ed; concurrent appends share
    /// one sync. Dropping the future does not withdraw the record.
    pub async fn append(&self, payload: Bytes) -> Result<(), WalError> {
        if payload.is_empty() || payload.len() > MAX_RECORD_BYTES {
            return Err(WalError::RecordSize {
                len: payload.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        self.request(|done| Command::Append { payload, done }).await
    }

    /// Seals the current segment and starts a new one; every append that completed before this call
    /// returned is in a segment below the returned id. If the current segment holds no records it is
    /// returned itself, which keeps that promise without making an empty file.
    pub async fn rotate(&self) -> Result<SegmentId, WalError> {
        self.request(|done| Command::Rotate { done }).await
    }

    /// Deletes every segment below `id` and syncs the directory. Call it only once their data is durable
    /// elsewhere. `id` may not exceed the segment being written.
    pub async fn remove_before(&self, id: SegmentId) -> Result<(), WalError> {
        self.request(|done| Command::RemoveBefore { id, done }).await
    }

    /// Counters of the writer (fsyncs, bytes).
    pub fn stats(&self) -> WalStats {
        self.inner.counters.snapshot()
    }

    /// Writes everything queued before it, then stops the writer thread and releases the directory.
    /// Later appends fail with [`WalError::Closed`]. Closing twice is fine.
    pub async fn close(&self) -> Result<(), WalError> {
        match self.request(|done| Command::Close { done }).await {
            Err(WalError::Closed) => Ok(()),
            other => other,
        }
    }

    async fn request<T>(&self, cmd: impl FnOnce(group_commit::Reply<T>) -> Command) -> Result<T, WalError> {
        let (done, rx) = oneshot::channel();
        self.inner.tx.send(cmd(done)).map_err(|_| WalError::Closed)?;
        rx.await.map_err(|_| WalError::Closed)?
    }

    #[cfg(test)]
    fn faults(&self) -> &group_commit::Faults {
        &self.inner.faults
    }
}

/// Everything `open` does before the writer thread starts: directory, lock, replay, first segment.
fn prepare(
    dir: &Path,
    cfg: WalConfig,
    published: SegmentId,
    progress: &ReplayProgress,
    f: &mut dyn FnMut(&[u8]) -> Result<(), WalError>,
) -> Result<(Writer, ReplayStats), WalError> {
    create_dir(dir)?;
    let lock = lock_dir(dir)?;
    let replayed = replay::replay_dir(dir, published, progress, f)?;
    let next_id = match replayed.last_id {
        Some(id) => id.0.checked_add(1).ok_or(WalError::IdsExhausted)?,
        None => 0,
    }
    .max(published.0);
    let writer = Writer::start(dir, cfg, next_id, replayed.remaining, lock)?;
    Ok((writer, replayed.stats))
}

fn create_dir(dir: &Path) -> Result<(), WalError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    // The new directory's own entry must survive a crash too.
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    segment::sync_dir(parent)
}

fn lock_dir(dir: &Path) -> Result<File, WalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(WalError::Locked { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
    }
}

#[cfg(test)]
mod tests;
