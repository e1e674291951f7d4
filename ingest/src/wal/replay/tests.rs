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

/// Progress counts the segments at or above the published mark and their bytes on disk, and
/// ends with everything done.
#[test]
fn progress_covers_the_segments_to_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let published = encode_segment(&[b"stored".to_vec()]);
    let a = encode_segment(&[b"one".to_vec(), b"two".to_vec()]);
    let b = encode_segment(&[b"three".to_vec()]);
    fs::write(segment::path(tmp.path(), SegmentId(1)), &published).unwrap();
    fs::write(segment::path(tmp.path(), SegmentId(2)), &a).unwrap();
    fs::write(segment::path(tmp.path(), SegmentId(3)), &b).unwrap();
    let progress = ReplayProgress::default();
    let mut seen = Vec::new();
    replay_dir(tmp.path(), SegmentId(2), &progress, &mut |_| {
        seen.push(progress.snapshot());
        Ok(())
    })
    .unwrap();
    let total = (a.len() + b.len()) as u64;
    // While the first segment replays, nothing is done yet; by the third record, one segment.
    assert_eq!(
        (seen[0].total_segments, seen[0].total_bytes, seen[0].done_segments),
        (2, total, 0)
    );
    assert_eq!((seen[2].done_segments, seen[2].done_bytes), (1, a.len() as u64));
    let end = progress.snapshot();
    assert_eq!((end.done_segments, end.done_bytes), (2, total));
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
        let res = replay_dir(tmp.path(), SegmentId(0), &ReplayProgress::default(), &mut |p| { out.push(p.to_vec()); Ok(()) });
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
                let again = replay_dir(tmp.path(), SegmentId(0), &ReplayProgress::default(), &mut |_| Ok(())).unwrap();
                prop_assert_eq!(again.stats.torn_tail_bytes, 0);
                prop_assert_eq!(again.stats.records, r.stats.records);
            }
            Err(e) => prop_assert!(matches!(e, WalError::UnsupportedVersion { .. }), "{e}"),
        }
    }
}
