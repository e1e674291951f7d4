//! Reading segments back at startup, and deciding what an unreadable stretch means: a torn tail
//! (writes that were never acknowledged) or corruption (acknowledged data that rotted).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::segment::{self, HEADER_LEN, MAGIC, MAX_RECORD_BYTES, RECORD_HEADER_LEN, VERSION, io_err};
use super::{SegmentId, WalError};

/// What [`crate::wal::Wal::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Segment files read.
    pub segments: u64,
    /// Records handed to the replay callback.
    pub records: u64,
    /// Sum of those records' payload lengths.
    pub payload_bytes: u64,
    /// Bytes cut from the end of the last segment: a write that was in progress when the process stopped.
    /// Never acknowledged, so dropping them loses nothing.
    pub torn_tail_bytes: u64,
    /// Unreadable stretches in segments; each one skipped the rest of its segment. Non-empty means data
    /// that may have been acknowledged was lost: alert on it.
    pub corruptions: Vec<Corruption>,
    /// Segments deleted without replay because their records were already published (below the
    /// mark the storage manifest holds for this ingester).
    pub published_segments: u64,
}

/// How far a replay has come, shared with whoever reports it (log lines, `/-/ready`) while the
/// replay runs on its own thread. Totals are known once the directory is listed; `done` is
/// updated after each segment.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    total_segments: AtomicU64,
    total_bytes: AtomicU64,
    done_segments: AtomicU64,
    done_bytes: AtomicU64,
    finished: AtomicBool,
}

/// A consistent-enough reading of [`ReplayProgress`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayProgressSnapshot {
    /// Segments to replay (those below the published mark are not counted).
    pub total_segments: u64,
    /// Their bytes on disk.
    pub total_bytes: u64,
    /// Segments replayed so far.
    pub done_segments: u64,
    /// Their bytes on disk.
    pub done_bytes: u64,
    /// The replay ended (successfully or not).
    pub finished: bool,
}

impl ReplayProgress {
    /// Where the replay stands now.
    pub fn snapshot(&self) -> ReplayProgressSnapshot {
        ReplayProgressSnapshot {
            total_segments: self.total_segments.load(Ordering::Relaxed),
            total_bytes: self.total_bytes.load(Ordering::Relaxed),
            done_segments: self.done_segments.load(Ordering::Relaxed),
            done_bytes: self.done_bytes.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Acquire),
        }
    }

    /// Marks the replay as over (also when it failed), so reporters stop.
    pub(crate) fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }
}

/// One segment that stopped making sense before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// The segment.
    pub segment: SegmentId,
    /// Byte offset in the segment file where the unreadable stretch starts.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file, all skipped.
    pub skipped_bytes: u64,
    /// What was wrong.
    pub reason: CorruptionReason,
}

/// Why a segment stopped making sense.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptionReason {
    /// The file is shorter than the 8-byte header or does not start with the magic.
    BadHeader,
    /// A length field of 0 or above the record size limit.
    BadLength(u32),
    /// The file ends inside a record.
    Truncated,
    /// The payload's crc32c differs from the stored one.
    ChecksumMismatch,
}

impl fmt::Display for CorruptionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionReason::BadHeader => f.write_str("bad segment header"),
            CorruptionReason::BadLength(n) => write!(f, "impossible record length {n}"),
            CorruptionReason::Truncated => f.write_str("file ends inside a record"),
            CorruptionReason::ChecksumMismatch => f.write_str("record checksum mismatch"),
        }
    }
}

/// Where a segment stopped parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub offset: u64,
    pub reason: CorruptionReason,
    /// Where the bad record would end if its length field were true (saturating).
    pub framed_end: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub records: u64,
    pub payload_bytes: u64,
    pub invalid: Option<Invalid>,
}

type Callback<'a> = &'a mut dyn FnMut(&[u8]) -> Result<(), WalError>;

/// Reads records from the start of a segment, calling `f` for each valid one, until the end of the file or
/// the first invalid record. `file_len` bounds allocations, so a garbage length never allocates more than
/// the file holds. I/O errors, an unknown format version and errors from `f` are returned; anything
/// else is reported in `Scan::invalid`.
pub(crate) fn scan_segment<R: Read>(r: &mut R, file_len: u64, path: &Path, f: Callback<'_>) -> Result<Scan, WalError> {
    let read_err = io_err("read segment", path);
    let mut scan = Scan::default();
    let mut header = [0u8; HEADER_LEN as usize];
    let n = read_full(r, &mut header).map_err(read_err)?;
    if n < header.len() || header[..MAGIC.len()] != MAGIC {
        scan.invalid = Some(Invalid {
            offset: 0,
            reason: CorruptionReason::BadHeader,
            framed_end: HEADER_LEN,
        });
        return Ok(scan);
    }
    if header[MAGIC.len()] != VERSION {
        // Not corruption: a newer build wrote this. Skipping it would drop acknowledged data.
        return Err(WalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: header[MAGIC.len()],
            supported: VERSION,
        });
    }
    let mut pos = HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let mut rh = [0u8; RECORD_HEADER_LEN];
        let n = read_full(r, &mut rh).map_err(io_err("read segment", path))?;
        if n == 0 {
            return Ok(scan);
        }
        let len = u32::from_le_bytes([rh[0], rh[1], rh[2], rh[3]]);
        let crc = u32::from_le_bytes([rh[4], rh[5], rh[6], rh[7]]);
        let framed_end = pos
            .saturating_add(RECORD_HEADER_LEN as u64)
            .saturating_add(u64::from(len));
        let bad = |reason| {
            Some(Invalid {
                offset: pos,
                reason,
                framed_end,
            })
        };
        if n < RECORD_HEADER_LEN {
            scan.invalid = bad(CorruptionReason::Truncated);
            return Ok(scan);
        }
        if len == 0 || len as usize > MAX_RECORD_BYTES {
            scan.invalid = bad(CorruptionReason::BadLength(len));
            return Ok(scan);
        }
        if framed_end > file_len {
            scan.invalid = bad(CorruptionReason::Truncated);
            return Ok(scan);
        }
        payload.resize(len as usize, 0);
        if read_full(r, &mut payload).map_err(io_err("read segment", path))? < payload.len() {
            scan.invalid = bad(CorruptionReason::Truncated);
            return Ok(scan);
        }
        if crc32c::crc32c(&payload) != crc {
            scan.invalid = bad(CorruptionReason::ChecksumMismatch);
            return Ok(scan);
        }
        f(&payload)?;
        scan.records += 1;
        scan.payload_bytes += u64::from(len);
        pos = framed_end;
    }
}

/// Is the invalid stretch shaped like an interrupted write rather than rot? Only the last segment can
/// hold unsynced bytes, and a crash leaves them as a prefix of what was being written, possibly padded
/// with zeros by the filesystem. So: the file ends inside the bad record (as framed by its own length
/// field), or only zeros follow it. A bad record followed by anything else is treated as corruption,
/// because acknowledged records may follow it.
pub(crate) fn is_torn_tail<R: Read + Seek>(r: &mut R, file_len: u64, inv: &Invalid) -> io::Result<bool> {
    let from = match inv.reason {
        CorruptionReason::BadHeader if file_len < HEADER_LEN => return Ok(true),
        CorruptionReason::BadHeader => 0,
        _ if inv.framed_end >= file_len => return Ok(true),
        _ => inv.framed_end,
    };
    r.seek(SeekFrom::Start(from))?;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The result of replaying a directory.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub stats: ReplayStats,
    /// The highest segment id seen, even if its file was removed: new ids must be above it.
    pub last_id: Option<SegmentId>,
    /// Segment files left in the directory.
    pub remaining: u64,
}

/// Replays every segment in `dir` from `published` on in order, repairs a torn tail of the last one,
/// and removes segments that hold no records (they are only left by restarts and crashes, and would
/// pile up otherwise) or lie below `published` (their records are stored elsewhere already).
pub(crate) fn replay_dir(
    dir: &Path,
    published: SegmentId,
    progress: &ReplayProgress,
    f: Callback<'_>,
) -> Result<Replayed, WalError> {
    let ids = segment::list(dir)?;
    let (mut total_segments, mut total_bytes) = (0, 0);
    for &id in ids.iter().filter(|&&id| id >= published) {
        total_segments += 1;
        // A segment that vanished between listing and statting fails below, when opened.
        total_bytes += fs::metadata(segment::path(dir, id)).map_or(0, |m| m.len());
    }
    progress.total_segments.store(total_segments, Ordering::Relaxed);
    progress.total_bytes.store(total_bytes, Ordering::Relaxed);
    let mut stats = ReplayStats::default();
    let mut remaining = 0;
    let mut removed = false;
    for (i, &id) in ids.iter().enumerate() {
        if id < published {
            let path = segment::path(dir, id);
            fs::remove_file(&path).map_err(io_err("remove published segment", &path))?;
            stats.published_segments += 1;
            removed = true;
            continue;
        }
        let is_last = i + 1 == ids.len();
        let path = segment::path(dir, id);
        let file = File::open(&path).map_err(io_err("open segment", &path))?;
        let file_len = file.metadata().map_err(io_err("stat segment", &path))?.len();
        let mut r = BufReader::with_capacity(1 << 16, file);
        let scan = scan_segment(&mut r, file_len, &path, f)?;
        slow_replay_for_tests();
        progress.done_segments.fetch_add(1, Ordering::Relaxed);
        progress.done_bytes.fetch_add(file_len, Ordering::Relaxed);
        stats.segments += 1;
        stats.records += scan.records;
        stats.payload_bytes += scan.payload_bytes;
        let keep = match scan.invalid {
            None => scan.records > 0,
            Some(inv) if is_last && is_torn_tail(&mut r, file_len, &inv).map_err(io_err("read segment", &path))? => {
                let dropped = file_len - inv.offset.min(file_len);
                tracing::warn!(segment = %id, offset = inv.offset, dropped_bytes = dropped, reason = %inv.reason,
                    "WAL: cutting an interrupted write from the end of the log");
                stats.torn_tail_bytes += dropped;
                if scan.records > 0 {
                    truncate(&path, inv.offset)?;
                }
                scan.records > 0
            }
            Some(inv) => {
                let skipped = file_len - inv.offset.min(file_len);
                tracing::error!(segment = %id, offset = inv.offset, skipped_bytes = skipped, reason = %inv.reason,
                    last_segment = is_last, "WAL corruption: skipping the rest of the segment; acknowledged data may be lost");
                stats.corruptions.push(Corruption {
                    segment: id,
                    offset: inv.offset,
                    skipped_bytes: skipped,
                    reason: inv.reason,
                });
                true
            }
        };
        if keep {
            remaining += 1;
        } else {
            fs::remove_file(&path).map_err(io_err("remove empty segment", &path))?;
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(dir)?;
    }
    Ok(Replayed {
        stats,
        last_id: ids.last().copied(),
        remaining,
    })
}

/// With the `test-util` feature, `TRIBUTARY_TEST_REPLAY_SEGMENT_DELAY_MS` makes each segment's
/// replay take that much longer, so end-to-end tests can observe a server that is replaying.
#[cfg_attr(
    feature = "test-util",
    expect(clippy::disallowed_methods, reason = "the hook's whole job is to make replay slow")
)]
fn slow_replay_for_tests() {
    #[cfg(feature = "test-util")]
    if let Some(ms) = std::env::var("TRIBUTARY_TEST_REPLAY_SEGMENT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Cuts the segment at `len` durably, so the next start does not see the torn tail again in what will
/// then be an older segment (where it would count as corruption).
fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err("open segment", path))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(io_err("truncate torn tail", path))
}

#[cfg(test)]
mod tests;
