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
pub use replay::{Corruption, CorruptionReason, ReplayStats};
use segment::{MAX_RECORD_BYTES, io_err};

/// Name of the lock file inside a WAL directory.
const LOCK_FILE: &str = "LOCK";

/// Everything that can go wrong in the WAL. Wrapped by the crate's [`crate::Error`].
#[derive(Clone, Debug, thiserror::Error)]
pub enum WalError {
    /// A file-system operation failed; `op` says which.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// Another open [`Wal`] (in this or another process) holds the directory.
    #[error("WAL directory {} is in use by another open write-ahead log", dir.display())]
    Locked { dir: PathBuf },
    /// A segment written by a newer format version; replaying it partially would lose data.
    #[error("WAL segment {} has format version {found}, this build reads version {supported}", path.display())]
    UnsupportedVersion { path: PathBuf, found: u8, supported: u8 },
    /// Payloads must be 1 ..= 256 MiB.
    #[error("WAL record of {len} bytes rejected: payloads must be 1..={max} bytes")]
    RecordSize { len: usize, max: usize },
    /// `remove_before` was asked to delete the segment being written (or a later one).
    #[error("cannot remove WAL segments before {requested}: segment {active} is the one being written")]
    RemoveActive { requested: SegmentId, active: SegmentId },
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
        mut f: impl FnMut(&[u8]) -> Result<(), WalError>,
    ) -> Result<(Wal, ReplayStats), WalError> {
        let (writer, stats) = prepare(dir, cfg, &mut f)?;
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
    f: &mut dyn FnMut(&[u8]) -> Result<(), WalError>,
) -> Result<(Writer, ReplayStats), WalError> {
    create_dir(dir)?;
    let lock = lock_dir(dir)?;
    let replayed = replay::replay_dir(dir, f)?;
    let next_id = match replayed.last_id {
        Some(id) => id.0.checked_add(1).ok_or(WalError::IdsExhausted)?,
        None => 0,
    };
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
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::segment::HEADER_LEN;
    use super::*;

    fn open_collect(dir: &Path, cfg: WalConfig) -> (Wal, Vec<Vec<u8>>, ReplayStats) {
        let mut out = Vec::new();
        let (wal, stats) = Wal::open(dir, cfg, |p| {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.records, out.len() as u64);
        (wal, out, stats)
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        segment::list(dir).unwrap().into_iter().map(|s| s.0).collect()
    }

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    async fn append_all(wal: &Wal, records: &[&str]) {
        for r in records {
            wal.append(Bytes::copy_from_slice(r.as_bytes())).await.unwrap();
        }
    }

    /// Polls `cond` until it holds or a generous deadline passes.
    async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn handles_are_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Wal>();
        check::<WalError>();
    }

    #[test]
    fn config_fields_default_individually() {
        use serde::de::value::{Error, MapDeserializer};
        let empty: Vec<(&str, u64)> = Vec::new();
        let cfg = WalConfig::deserialize(MapDeserializer::<_, Error>::new(empty.into_iter())).unwrap();
        assert_eq!(
            cfg,
            WalConfig {
                segment_bytes: 64 << 20,
                max_batch_bytes: 16 << 20
            }
        );
        let one = vec![("segment_bytes", 4096u64)];
        let cfg = WalConfig::deserialize(MapDeserializer::<_, Error>::new(one.into_iter())).unwrap();
        assert_eq!(
            cfg,
            WalConfig {
                segment_bytes: 4096,
                ..WalConfig::default()
            }
        );
    }

    #[tokio::test]
    async fn append_then_reopen_replays_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/wal");
        let (wal, records, stats) = open_collect(&dir, WalConfig::default());
        assert!(records.is_empty());
        assert_eq!(stats, ReplayStats::default());
        append_all(&wal, &["one", "two", "three"]).await;
        let s = wal.stats();
        assert_eq!((s.appends, s.bytes, s.segments), (3, 3 * 8 + 11, 1));
        wal.close().await.unwrap();
        assert!(matches!(
            wal.append(Bytes::from_static(b"late")).await,
            Err(WalError::Closed)
        ));
        wal.close().await.unwrap();

        let (wal, records, stats) = open_collect(&dir, WalConfig::default());
        assert_eq!(records, vec![v("one"), v("two"), v("three")]);
        assert_eq!((stats.segments, stats.payload_bytes, stats.torn_tail_bytes), (1, 11, 0));
        append_all(&wal, &["four"]).await;
        drop(wal);
        let (wal, records, _) = open_collect(&dir, WalConfig::default());
        assert_eq!(records, vec![v("one"), v("two"), v("three"), v("four")]);
        assert_eq!(segment_files(&dir), vec![0, 1, 2]);
        drop(wal);
        // Segment 2 got no records; the next open removes it instead of keeping empty files forever.
        let (_wal, records, _) = open_collect(&dir, WalConfig::default());
        assert_eq!(records.len(), 4);
        assert_eq!(segment_files(&dir), vec![0, 1, 3]);
    }

    #[tokio::test]
    async fn rejects_empty_and_oversized_payloads() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(tmp.path(), WalConfig::default());
        let err = wal.append(Bytes::new()).await.unwrap_err();
        assert!(matches!(err, WalError::RecordSize { len: 0, .. }));
        let huge = Bytes::from(vec![0u8; MAX_RECORD_BYTES + 1]);
        assert!(matches!(wal.append(huge).await, Err(WalError::RecordSize { .. })));
        assert_eq!(wal.stats().appends, 0);
    }

    #[tokio::test]
    async fn one_open_wal_per_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(tmp.path(), WalConfig::default());
        let err = Wal::open(tmp.path(), WalConfig::default(), |_| Ok(())).unwrap_err();
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
        wal.close().await.unwrap();
        let (second, _) = Wal::open(tmp.path(), WalConfig::default(), |_| Ok(())).unwrap();
        drop(second);
        Wal::open(tmp.path(), WalConfig::default(), |_| Ok(())).unwrap();
    }

    #[tokio::test]
    async fn a_failing_callback_fails_open_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(tmp.path(), WalConfig::default());
        append_all(&wal, &["good", "undecodable", "never reached"]).await;
        wal.close().await.unwrap();
        let before = segment_files(tmp.path());
        let mut seen = Vec::new();
        let err = Wal::open(tmp.path(), WalConfig::default(), |p| {
            seen.push(p.to_vec());
            if p == b"undecodable" {
                Err(WalError::Replay("unknown record kind 9".into()))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(
            matches!(&err, WalError::Replay(m) if m == "unknown record kind 9"),
            "{err}"
        );
        assert_eq!(seen, vec![v("good"), v("undecodable")]);
        assert_eq!(segment_files(tmp.path()), before);
        let (_wal, records, _) = open_collect(tmp.path(), WalConfig::default());
        assert_eq!(records.len(), 3);
    }

    #[tokio::test]
    async fn torn_tail_at_every_offset_of_the_last_record() {
        let src = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(src.path(), WalConfig::default());
        let last = "the last record, long enough to tear in many places";
        append_all(&wal, &["first", "second", last]).await;
        wal.close().await.unwrap();
        let seg = segment::path(src.path(), SegmentId(0));
        let orig = fs::read(&seg).unwrap();
        let last_start = orig.len() - 8 - last.len();

        for cut in last_start..orig.len() {
            for garbage in [&[][..], &[0u8; 13][..], &[0xA5u8; 13][..]] {
                let ctx = format!(
                    "cut at {} of the last record, {} garbage bytes {:?}",
                    cut - last_start,
                    garbage.len(),
                    garbage.first()
                );
                let tmp = tempfile::tempdir().unwrap();
                let torn = segment::path(tmp.path(), SegmentId(0));
                fs::write(&torn, [&orig[..cut], garbage].concat()).unwrap();
                let tail = (cut + garbage.len() - last_start) as u64;

                let (wal, records, stats) = open_collect(tmp.path(), WalConfig::default());
                assert_eq!(records, vec![v("first"), v("second")], "{ctx}");
                // Non-zero bytes after a complete-looking bad record might be rot, not a torn write.
                let rot = garbage.first() == Some(&0xA5) && cut + garbage.len() > orig.len();
                if rot {
                    assert_eq!(stats.torn_tail_bytes, 0, "{ctx}");
                    let expect = Corruption {
                        segment: SegmentId(0),
                        offset: last_start as u64,
                        skipped_bytes: tail,
                        reason: CorruptionReason::ChecksumMismatch,
                    };
                    assert_eq!(stats.corruptions, vec![expect], "{ctx}");
                } else {
                    assert_eq!(stats.torn_tail_bytes, tail, "{ctx}");
                    assert!(stats.corruptions.is_empty(), "{ctx}");
                    assert_eq!(
                        fs::metadata(&torn).unwrap().len(),
                        last_start as u64,
                        "{ctx}: cut durably"
                    );
                }
                append_all(&wal, &["after restart"]).await;
                wal.close().await.unwrap();

                let (_wal, records, stats) = open_collect(tmp.path(), WalConfig::default());
                assert_eq!(records, vec![v("first"), v("second"), v("after restart")], "{ctx}");
                assert_eq!(stats.torn_tail_bytes, 0, "{ctx}: the repair must not be needed twice");
                assert_eq!(stats.corruptions.len(), usize::from(rot), "{ctx}");
            }
        }
    }

    #[tokio::test]
    async fn corruption_in_an_older_segment_is_reported_and_later_segments_replay() {
        for (what, flip_at) in [("payload byte", 8 + 1), ("length high byte", 3)] {
            let tmp = tempfile::tempdir().unwrap();
            let (wal, _, _) = open_collect(tmp.path(), WalConfig::default());
            append_all(&wal, &["a0", "a1", "a2", "a3"]).await;
            assert_eq!(wal.rotate().await.unwrap(), SegmentId(1));
            append_all(&wal, &["b0", "b1"]).await;
            assert_eq!(wal.rotate().await.unwrap(), SegmentId(2));
            append_all(&wal, &["c0"]).await;
            wal.close().await.unwrap();

            let seg0 = segment::path(tmp.path(), SegmentId(0));
            let mut bytes = fs::read(&seg0).unwrap();
            let a2 = HEADER_LEN as usize + 2 * 10;
            bytes[a2 + flip_at] ^= 0x80;
            fs::write(&seg0, &bytes).unwrap();

            let (_wal, records, stats) = open_collect(tmp.path(), WalConfig::default());
            assert_eq!(records, ["a0", "a1", "b0", "b1", "c0"].map(v), "{what}");
            assert_eq!(stats.corruptions.len(), 1, "{what}");
            let c = &stats.corruptions[0];
            assert_eq!(
                (c.segment, c.offset, c.skipped_bytes),
                (SegmentId(0), a2 as u64, 20),
                "{what}"
            );
            let reason = if flip_at == 3 {
                CorruptionReason::BadLength(0x8000_0002)
            } else {
                CorruptionReason::ChecksumMismatch
            };
            assert_eq!(c.reason, reason, "{what}");
            assert_eq!(stats.torn_tail_bytes, 0);
            assert_eq!(fs::read(&seg0).unwrap(), bytes, "corrupt data is kept as evidence");
        }
    }

    #[tokio::test]
    async fn rotate_and_remove_before_delete_exactly_the_older_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(tmp.path(), WalConfig::default());
        append_all(&wal, &["x0"]).await;
        assert_eq!(wal.rotate().await.unwrap(), SegmentId(1));
        append_all(&wal, &["x1"]).await;
        assert_eq!(wal.rotate().await.unwrap(), SegmentId(2));
        assert_eq!(
            wal.rotate().await.unwrap(),
            SegmentId(2),
            "an empty segment is already sealed-equivalent"
        );
        append_all(&wal, &["x2"]).await;
        assert_eq!(segment_files(tmp.path()), vec![0, 1, 2]);
        assert_eq!(wal.stats().segments, 3);

        let err = wal.remove_before(SegmentId(3)).await.unwrap_err();
        assert!(matches!(
            err,
            WalError::RemoveActive {
                requested: SegmentId(3),
                active: SegmentId(2)
            }
        ));
        wal.remove_before(SegmentId(1)).await.unwrap();
        assert_eq!(segment_files(tmp.path()), vec![1, 2]);
        wal.remove_before(SegmentId(2)).await.unwrap();
        assert_eq!(segment_files(tmp.path()), vec![2]);
        wal.remove_before(SegmentId(2)).await.unwrap();
        assert_eq!((wal.stats().segments, wal.stats().current_segment), (1, SegmentId(2)));
        wal.close().await.unwrap();

        let (_wal, records, _) = open_collect(tmp.path(), WalConfig::default());
        assert_eq!(records, vec![v("x2")]);
    }

    #[tokio::test]
    async fn rotates_automatically_at_segment_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        // Exactly three 100-byte records fit a segment.
        let cfg = WalConfig {
            segment_bytes: HEADER_LEN + 3 * 108,
            ..WalConfig::default()
        };
        let (wal, _, _) = open_collect(tmp.path(), cfg.clone());
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
        for p in &payloads {
            wal.append(Bytes::from(p.clone())).await.unwrap();
        }
        assert_eq!(segment_files(tmp.path()), vec![0, 1, 2, 3]);
        let sizes: Vec<u64> = (0..4)
            .map(|i| fs::metadata(segment::path(tmp.path(), SegmentId(i))).unwrap().len())
            .collect();
        assert_eq!(sizes, vec![332, 332, 332, 116]);
        assert_eq!((wal.stats().segments, wal.stats().current_segment), (4, SegmentId(3)));
        // A record larger than a segment gets one to itself rather than being refused.
        wal.append(Bytes::from(vec![9u8; 1000])).await.unwrap();
        assert_eq!(
            fs::metadata(segment::path(tmp.path(), SegmentId(4))).unwrap().len(),
            HEADER_LEN + 1008
        );
        wal.close().await.unwrap();

        let (_wal, records, stats) = open_collect(tmp.path(), cfg);
        assert_eq!(&records[..10], &payloads[..]);
        assert_eq!(records[10], vec![9u8; 1000]);
        assert_eq!(stats.segments, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_without_close_keeps_every_acknowledged_append() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(
            tmp.path(),
            WalConfig {
                segment_bytes: 2048,
                ..WalConfig::default()
            },
        );
        let acked = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for t in 0..16 {
            let (wal, acked) = (wal.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let rec = format!("{t}:{i}");
                    wal.append(Bytes::from(rec.clone())).await.unwrap();
                    acked.lock().push(rec);
                }
            }));
        }
        eventually("200 acknowledged appends", || acked.lock().len() >= 200).await;
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        let acked = acked.lock().clone();
        drop(wal); // the last handle: joins the writer, which releases the lock

        let (_wal, records, stats) = open_collect(tmp.path(), WalConfig::default());
        assert!(stats.corruptions.is_empty() && stats.torn_tail_bytes == 0, "{stats:?}");
        let replayed: HashSet<String> = records.into_iter().map(|r| String::from_utf8(r).unwrap()).collect();
        let missing: Vec<_> = acked.iter().filter(|r| !replayed.contains(*r)).collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    }

    /// A crash at an arbitrary moment, approximated by copying the directory while appends are in flight:
    /// the copy's last segment may end mid-write. Every append acknowledged before the copy started must
    /// replay from it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_taken_mid_write_replays_every_acknowledged_append() {
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _, _) = open_collect(
            tmp.path(),
            WalConfig {
                segment_bytes: 8192,
                ..WalConfig::default()
            },
        );
        let acked = Arc::new(parking_lot::Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (wal, acked, stop) = (wal.clone(), acked.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let rec = format!("{t}:{i}:{}", "x".repeat(i % 97));
                    wal.append(Bytes::from(rec.clone())).await.unwrap();
                    acked.lock().insert(rec);
                    i += 1;
                }
            }));
        }
        for round in 0..5 {
            eventually("more acknowledged appends", || acked.lock().len() >= 100 * (round + 1)).await;
            let before: HashSet<String> = acked.lock().clone();
            let copy = tempfile::tempdir().unwrap();
            for id in segment::list(tmp.path()).unwrap() {
                fs::copy(segment::path(tmp.path(), id), segment::path(copy.path(), id)).unwrap();
            }
            let (_copy_wal, records, stats) = open_collect(copy.path(), WalConfig::default());
            assert!(stats.corruptions.is_empty(), "round {round}: {stats:?}");
            let replayed: HashSet<String> = records.into_iter().map(|r| String::from_utf8(r).unwrap()).collect();
            let lost = before.difference(&replayed).count();
            assert_eq!(
                lost, 0,
                "round {round}: {lost} acknowledged appends missing from the copy"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        wal.close().await.unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn arbitrary_payload_sequences_round_trip(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..600), 0..24),
            segment_bytes in 16u64..2048,
            max_batch_bytes in 0usize..4096,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let tmp = tempfile::tempdir().unwrap();
            let cfg = WalConfig { segment_bytes, max_batch_bytes };
            let (wal, _, _) = open_collect(tmp.path(), cfg.clone());
            rt.block_on(async {
                for p in &payloads {
                    wal.append(Bytes::from(p.clone())).await.unwrap();
                }
                wal.close().await.unwrap();
            });
            let (_wal, records, stats) = open_collect(tmp.path(), cfg);
            prop_assert_eq!(records, payloads);
            prop_assert!(stats.corruptions.is_empty());
            prop_assert_eq!(stats.torn_tail_bytes, 0);
        }
    }
}
