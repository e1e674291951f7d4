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
