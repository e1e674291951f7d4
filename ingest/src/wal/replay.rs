//! Reading segments back at startup, and deciding what an unreadable stretch means: a torn tail
//! (writes that were never acknowledged) or corruption (acknowledged data that rotted).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

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
}

/// One segment that stopped making sense before its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    pub segment: SegmentId,
    /// Byte offset in the segment file where the unreadable stretch starts.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file, all skipped.
    pub skipped_bytes: u64,
    pub reason: CorruptionReason,
}

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

/// Replays every segment in `dir` in order, repairs a torn tail of the last one, and removes segments
/// that hold no records (they are only left by restarts and crashes, and would pile up otherwise).
pub(crate) fn replay_dir(dir: &Path, f: Callback<'_>) -> Result<Replayed, WalError> {
    let ids = segment::list(dir)?;
    let mut stats = ReplayStats::default();
    let mut remaining = 0;
    let mut removed = false;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let path = segment::path(dir, id);
        let file = File::open(&path).map_err(io_err("open segment", &path))?;
        let file_len = file.metadata().map_err(io_err("stat segment", &path))?.len();
        let mut r = BufReader::with_capacity(1 << 16, file);
        let scan = scan_segment(&mut r, file_len, &path, f)?;
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
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::segment::{HEADER, encode_record};
    use super::*;

    fn encode_segment(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut buf = HEADER.to_vec();
        for p in payloads {
            encode_record(&mut buf, p);
        }
        buf
    }

    /// Payloads replayed, where the segment stopped parsing, and the torn-tail verdict for that stop.
    type Outcome = (Vec<Vec<u8>>, Option<Invalid>, Option<bool>);

    /// Scans `bytes` as a whole (last) segment.
    fn scan_bytes(bytes: &[u8]) -> Result<Outcome, WalError> {
        let mut out = Vec::new();
        let mut r = Cursor::new(bytes);
        let scan = scan_segment(&mut r, bytes.len() as u64, Path::new("mem"), &mut |p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        assert_eq!(scan.records, out.len() as u64);
        let torn = scan
            .invalid
            .map(|inv| is_torn_tail(&mut r, bytes.len() as u64, &inv).unwrap());
        Ok((out, scan.invalid, torn))
    }

    #[test]
    fn valid_segment_replays_everything() {
        let payloads = vec![b"one".to_vec(), vec![7; 1000], b"three".to_vec()];
        let (out, invalid, _) = scan_bytes(&encode_segment(&payloads)).unwrap();
        assert_eq!(out, payloads);
        assert_eq!(invalid, None);
    }

    #[test]
    fn every_truncation_is_a_torn_tail_after_the_complete_records() {
        let payloads = vec![b"first".to_vec(), b"second record".to_vec()];
        let full = encode_segment(&payloads);
        let second_at = full.len() - framed(&payloads[1]);
        for cut in 0..full.len() {
            let (out, invalid, torn) = scan_bytes(&full[..cut]).unwrap();
            let expect = usize::from(cut >= second_at);
            assert_eq!(out.len(), expect, "cut at {cut}");
            if cut == HEADER_LEN as usize || cut == second_at {
                assert_eq!(invalid, None, "cut at a record boundary is a clean end");
            } else {
                let inv = invalid.unwrap_or_else(|| panic!("cut at {cut} must be invalid"));
                assert_eq!(torn, Some(true), "cut at {cut}: {inv:?}");
            }
        }
    }

    #[test]
    fn zero_filled_tail_is_torn_but_data_after_a_bad_record_is_corruption() {
        let payloads = vec![b"alpha".to_vec(), b"beta".to_vec(), b"gamma".to_vec()];
        let mut zeros = encode_segment(&payloads[..1]);
        zeros.extend_from_slice(&[0; 100]);
        let (out, invalid, torn) = scan_bytes(&zeros).unwrap();
        assert_eq!(out, payloads[..1]);
        assert_eq!(invalid.unwrap().reason, CorruptionReason::BadLength(0));
        assert_eq!(torn, Some(true));

        // Flip a payload byte of the middle record: a valid record follows, so this is rot.
        let mut rotten = encode_segment(&payloads);
        let middle = HEADER_LEN as usize + framed(&payloads[0]) + RECORD_HEADER_LEN;
        rotten[middle] ^= 0x40;
        let (out, invalid, torn) = scan_bytes(&rotten).unwrap();
        assert_eq!(out, payloads[..1]);
        let inv = invalid.unwrap();
        assert_eq!(
            (inv.offset, inv.reason),
            (middle as u64 - 8, CorruptionReason::ChecksumMismatch)
        );
        assert_eq!(torn, Some(false));

        // The same flip in the last record is indistinguishable from a partially persisted write.
        let mut last = encode_segment(&payloads);
        let n = last.len();
        last[n - 1] ^= 1;
        let (out, _, torn) = scan_bytes(&last).unwrap();
        assert_eq!(out, payloads[..2]);
        assert_eq!(torn, Some(true));
    }

    #[test]
    fn headers_bad_magic_short_or_newer_version() {
        let (_, invalid, torn) = scan_bytes(b"TRIB").unwrap();
        assert_eq!(
            (invalid.unwrap().reason, torn),
            (CorruptionReason::BadHeader, Some(true))
        );
        let (_, _, torn) = scan_bytes(&[0; 64]).unwrap();
        assert_eq!(torn, Some(true), "a zero-filled new file is an interrupted creation");
        let (_, invalid, torn) = scan_bytes(b"NOTAWAL!and more").unwrap();
        assert_eq!(
            (invalid.unwrap().reason, torn),
            (CorruptionReason::BadHeader, Some(false))
        );
        let mut newer = encode_segment(&[b"x".to_vec()]);
        newer[7] = VERSION + 1;
        assert!(matches!(
            scan_bytes(&newer),
            Err(WalError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
    }

    #[test]
    fn oversized_length_is_rejected_without_allocating_it() {
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&(MAX_RECORD_BYTES as u32 + 1).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let (_, invalid, torn) = scan_bytes(&bytes).unwrap();
        assert_eq!(
            invalid.unwrap().reason,
            CorruptionReason::BadLength(MAX_RECORD_BYTES as u32 + 1)
        );
        assert_eq!(torn, Some(true));
        // A plausible length larger than the file must not allocate the claimed size either.
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&(200u32 << 20).to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        let (_, invalid, _) = scan_bytes(&bytes).unwrap();
        assert_eq!(invalid.unwrap().reason, CorruptionReason::Truncated);
    }

    #[test]
    fn callback_errors_stop_replay() {
        let bytes = encode_segment(&[b"a".to_vec(), b"b".to_vec()]);
        let mut seen = 0;
        let err = scan_segment(
            &mut Cursor::new(&bytes),
            bytes.len() as u64,
            Path::new("mem"),
            &mut |_| {
                seen += 1;
                Err(WalError::Replay("undecodable".into()))
            },
        )
        .unwrap_err();
        assert!(matches!(err, WalError::Replay(m) if m == "undecodable"));
        assert_eq!(seen, 1);
    }

    fn framed(p: &[u8]) -> usize {
        segment::framed_len(p)
    }

    fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..12)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), with_header in any::<bool>()) {
            let bytes = if with_header { [HEADER.as_slice(), &bytes].concat() } else { bytes };
            match scan_bytes(&bytes) {
                Ok((out, invalid, torn)) => {
                    prop_assert_eq!(invalid.is_some(), torn.is_some());
                    prop_assert!(out.iter().all(|p| !p.is_empty()));
                }
                Err(e) => prop_assert!(matches!(e, WalError::UnsupportedVersion { .. }), "{e}"),
            }
        }

        #[test]
        fn valid_records_then_junk_replay_the_records_first(ps in payloads(), junk in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = encode_segment(&ps);
            bytes.extend_from_slice(&junk);
            let (out, _, _) = scan_bytes(&bytes).unwrap();
            prop_assert!(out.len() >= ps.len());
            prop_assert_eq!(&out[..ps.len()], &ps[..]);
        }

        #[test]
        fn truncated_valid_segment_is_a_prefix_and_torn(ps in payloads(), cut_frac in 0.0..1.0f64) {
            let bytes = encode_segment(&ps);
            let cut = (bytes.len() as f64 * cut_frac) as usize;
            let (out, invalid, torn) = scan_bytes(&bytes[..cut]).unwrap();
            prop_assert_eq!(&out[..], &ps[..out.len()]);
            prop_assert_eq!(invalid.is_some(), torn.is_some());
            prop_assert_ne!(torn, Some(false));
        }

        /// The same, through real files: a garbage segment as the last one and as an older one.
        #[test]
        fn arbitrary_segment_files_never_panic_replay(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            with_header in any::<bool>(),
            last in any::<bool>(),
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let bytes = if with_header { [HEADER.as_slice(), &bytes].concat() } else { bytes };
            fs::write(segment::path(tmp.path(), SegmentId(1)), bytes).unwrap();
            if !last {
                fs::write(segment::path(tmp.path(), SegmentId(2)), encode_segment(&[b"after".to_vec()])).unwrap();
            }
            let mut out = Vec::new();
            let res = replay_dir(tmp.path(), &mut |p| { out.push(p.to_vec()); Ok(()) });
            match res {
                Ok(r) => {
                    prop_assert_eq!(r.last_id, Some(SegmentId(if last { 1 } else { 2 })));
                    if !last {
                        prop_assert_eq!(out.last().map(Vec::as_slice), Some(b"after".as_slice()));
                    }
                    prop_assert_eq!(r.stats.records, out.len() as u64);
                    if last {
                        prop_assert!(r.stats.corruptions.len() <= 1);
                    }
                    // Repair is idempotent: a second replay finds no new torn tail.
                    let again = replay_dir(tmp.path(), &mut |_| Ok(())).unwrap();
                    prop_assert_eq!(again.stats.torn_tail_bytes, 0);
                    prop_assert_eq!(again.stats.records, r.stats.records);
                }
                Err(e) => prop_assert!(matches!(e, WalError::UnsupportedVersion { .. }), "{e}"),
            }
        }
    }
}
