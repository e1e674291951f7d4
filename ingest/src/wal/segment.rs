//! Segment files: naming, the header, record framing, and creating them durably.
//! The byte layout is specified in the [`crate::wal`] module docs; this file is its single implementation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{SegmentId, WalError};

/// The first 7 bytes of every segment.
pub(crate) const MAGIC: [u8; 7] = *b"TRIBWAL";
/// The 8th byte: the format version this build writes and reads.
pub(crate) const VERSION: u8 = 1;
pub(crate) const HEADER: [u8; 8] = [
    MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], MAGIC[4], MAGIC[5], MAGIC[6], VERSION,
];
pub(crate) const HEADER_LEN: u64 = HEADER.len() as u64;
/// `u32 length | u32 crc32c` before every payload.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Longest payload accepted on append or believed on replay; a longer length field is corruption.
pub(crate) const MAX_RECORD_BYTES: usize = 256 << 20;

const SUFFIX: &str = ".wal";
const ID_DIGITS: usize = 20;

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WalError {
    let path = path.to_path_buf();
    move |source| WalError::Io {
        op,
        path,
        source: Arc::new(source),
    }
}

/// `dir/NNNNNNNNNNNNNNNNNNNN.wal`.
pub(crate) fn path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{:0width$}{SUFFIX}", id.0, width = ID_DIGITS))
}

/// The id of a segment file name, or `None` for anything that is not exactly one of ours.
pub(crate) fn parse_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != ID_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

/// Every segment in `dir`, oldest first. Foreign files are left alone (and logged once per listing).
pub(crate) fn list(dir: &Path) -> Result<Vec<SegmentId>, WalError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_name) {
            Some(id) => ids.push(id),
            // Dot files are others' probes (the server's `/-/healthy` checks the directory takes a file).
            None if name == super::LOCK_FILE || name.as_encoded_bytes().starts_with(b".") => {}
            None => tracing::warn!(file = ?entry.path(), "ignoring a file that is not a WAL segment"),
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Makes creations, renames and removals of entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Appends one framed record to `buf`.
pub(crate) fn encode_record(buf: &mut Vec<u8>, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("append checks payloads against MAX_RECORD_BYTES");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

pub(crate) fn framed_len(payload: &[u8]) -> usize {
    RECORD_HEADER_LEN + payload.len()
}

/// The segment the writer appends to.
#[derive(Debug)]
pub(crate) struct Segment {
    pub id: SegmentId,
    pub path: PathBuf,
    pub file: File,
    /// Bytes in the file that are written and synced: the header plus every committed record.
    pub len: u64,
}

impl Segment {
    /// Creates the file (never reusing an existing one), writes and syncs the header, and syncs the
    /// directory, so a crash right after leaves either no file or a valid empty segment.
    /// Costs two fsyncs.
    pub(super) fn create(dir: &Path, id: SegmentId) -> Result<Segment, WalError> {
        let path = path(dir, id);
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        let written = file
            .write_all(&HEADER)
            .and_then(|()| file.sync_all())
            .map_err(io_err("write header", &path));
        if let Err(e) = written.and_then(|()| sync_dir(dir)) {
            // A half-created file would read as corruption later; best effort, the error below is what matters.
            drop(file);
            if fs::remove_file(&path).is_ok() {
                let _ = sync_dir(dir);
            }
            return Err(e);
        }
        Ok(Segment {
            id,
            path,
            file,
            len: HEADER_LEN,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_numerically() {
        let dir = Path::new("/x");
        let ids = [0, 1, 9, 10, 99, 100, 12_345_678_901, u64::MAX];
        let mut names: Vec<String> = ids
            .iter()
            .map(|&i| {
                path(dir, SegmentId(i))
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names[0], "00000000000000000000.wal");
        assert_eq!(names[7], "18446744073709551615.wal");
        for (name, &id) in names.iter().zip(&ids) {
            assert_eq!(parse_name(name), Some(SegmentId(id)));
        }
        names.reverse();
        names.sort();
        let parsed: Vec<u64> = names.iter().map(|n| parse_name(n).unwrap().0).collect();
        assert_eq!(parsed, ids);
    }

    #[test]
    fn foreign_names_are_not_segments() {
        for name in [
            "0.wal",
            "0000000000000000000.wal",
            "000000000000000000000.wal",
            "0000000000000000000a.wal",
            "00000000000000000000.wal.tmp",
            "00000000000000000000",
            "+0000000000000000001.wal",
            "99999999999999999999.wal", // 20 digits but more than u64::MAX
            "LOCK",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
    }

    #[test]
    fn create_writes_a_header_and_refuses_to_reuse_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let seg = Segment::create(tmp.path(), SegmentId(7)).unwrap();
        assert!(seg.is_empty());
        assert_eq!(fs::read(&seg.path).unwrap(), HEADER);
        assert!(matches!(
            Segment::create(tmp.path(), SegmentId(7)),
            Err(WalError::Io {
                op: "create segment",
                ..
            })
        ));
        fs::write(tmp.path().join("notes.txt"), b"x").unwrap();
        Segment::create(tmp.path(), SegmentId(3)).unwrap();
        assert_eq!(list(tmp.path()).unwrap(), vec![SegmentId(3), SegmentId(7)]);
    }

    #[test]
    fn record_framing_is_length_crc_payload() {
        let mut buf = Vec::new();
        encode_record(&mut buf, b"abc");
        assert_eq!(buf.len(), framed_len(b"abc"));
        assert_eq!(&buf[..4], &3u32.to_le_bytes());
        assert_eq!(&buf[4..8], &crc32c::crc32c(b"abc").to_le_bytes());
        assert_eq!(&buf[8..], b"abc");
    }
}
