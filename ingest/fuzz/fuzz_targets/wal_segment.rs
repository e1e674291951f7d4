//! A WAL segment file found on disk at startup: `Wal::open` must replay it or report it, never panic.
//!
//! The first input byte picks how the rest becomes `00000000000000000000.wal`:
//! - 0: the bytes as they are (bad magic, short files, a newer format version);
//! - 1: a valid header, then the bytes;
//! - 2: a valid header, then records framed with correct checksums from `[len u8][len bytes]...`
//!   (a `len` of 0 ends the records and whatever follows is appended raw; a record cut short by the
//!   input's end keeps what it has), so replay gets past the CRC.
//!
//! Checked for every input:
//! - `open` fails only with `UnsupportedVersion`, and only for a header with the magic and another
//!   version byte;
//! - the callback saw exactly `stats.records` payloads of `stats.payload_bytes` bytes, and in mode 2
//!   the framed records come first, in order;
//! - every byte is accounted for: header + replayed framing and payloads + torn tail + bytes skipped as
//!   corruption = the file's length;
//! - the repair is durable: opening again replays the same records, cuts no torn tail and reports the
//!   same corruptions.
#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tributary_ingest::wal::{ReplayStats, Wal, WalConfig, WalError};

const HEADER: &[u8; 8] = b"TRIBWAL\x01";
const SEGMENT: &str = "00000000000000000000.wal";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = Vec::new();
    let mut framed = Vec::new();
    match mode % 3 {
        0 => file.extend_from_slice(rest),
        1 => file.extend_from_slice(&[&HEADER[..], rest].concat()),
        _ => {
            file.extend_from_slice(HEADER);
            let mut rest = rest;
            while let Some((&len, tail)) = rest.split_first().filter(|(l, t)| **l > 0 && !t.is_empty()) {
                let payload = &tail[..tail.len().min(usize::from(len))];
                file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                file.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
                file.extend_from_slice(payload);
                framed.push(payload.to_vec());
                rest = &tail[payload.len()..];
            }
            file.extend_from_slice(rest.get(1..).unwrap_or_default());
        }
    }

    // tmpfs when there is one: replay fsyncs, and a disk would make each run take milliseconds.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("temp dir");
    fs::write(tmp.path().join(SEGMENT), &file).expect("write segment");

    let first = open(tmp.path());
    let newer_version = file.len() >= 8 && file[..7] == HEADER[..7] && file[7] != HEADER[7];
    let (records, stats) = match first {
        Err(WalError::UnsupportedVersion { found, .. }) if newer_version => {
            assert_eq!(found, file[7]);
            return;
        }
        Err(e) => panic!("open failed on a segment it should replay or report: {e}"),
        Ok(_) if newer_version => panic!("replayed a segment of format version {}", file[7]),
        Ok(ok) => ok,
    };
    assert!(
        records.starts_with(&framed),
        "framed records were not replayed first, in order"
    );

    let header = if file.starts_with(HEADER) { 8 } else { 0 };
    let replayed: u64 = records.iter().map(|r| 8 + r.len() as u64).sum();
    let skipped: u64 = stats.corruptions.iter().map(|c| c.skipped_bytes).sum();
    assert_eq!(
        header + replayed + stats.torn_tail_bytes + skipped,
        file.len() as u64,
        "bytes unaccounted for: {stats:?}"
    );

    let (again, stats2) = open(tmp.path()).expect("reopen after replay");
    assert_eq!(again, records, "a second replay read different records");
    assert_eq!(stats2.torn_tail_bytes, 0, "the torn tail was not cut durably");
    assert_eq!(
        stats2.corruptions, stats.corruptions,
        "corruption reports changed on reopen"
    );
});

/// Opens the WAL, collecting replayed payloads, and closes it again (dropping the handle joins the writer).
fn open(dir: &Path) -> Result<(Vec<Vec<u8>>, ReplayStats), WalError> {
    let mut records = Vec::new();
    let (wal, stats) = Wal::open(dir, WalConfig::default(), |p| {
        records.push(p.to_vec());
        Ok(())
    })?;
    drop(wal);
    assert_eq!(stats.records, records.len() as u64);
    assert_eq!(stats.payload_bytes, records.iter().map(|r| r.len() as u64).sum::<u64>());
    Ok((records, stats))
}
