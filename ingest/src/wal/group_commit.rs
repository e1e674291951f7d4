//! The writer thread: the only code that writes, syncs, creates or removes segment files after open.
//!
//! Group commit: the thread blocks for one command; if it is an append it drains every append already
//! queued (up to `max_batch_bytes`), writes them with one `write`, syncs once, and only then completes
//! them. Appends that arrive during the sync form the next batch, so the fsync rate adapts to the load
//! instead of capping it. Commands are handled strictly in queue order.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::segment::{self, Segment, io_err};
use super::{SegmentId, WalConfig, WalError, WalStats};

pub(crate) type Reply<T> = oneshot::Sender<Result<T, WalError>>;

#[derive(Debug)]
pub(crate) enum Command {
    Append { payload: Bytes, done: Reply<()> },
    Rotate { done: Reply<SegmentId> },
    RemoveBefore { id: SegmentId, done: Reply<()> },
    Close { done: Reply<()> },
}

/// Counters shared with the handles, read by `Wal::stats`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub segments: AtomicU64,
    pub current_segment: AtomicU64,
    pub write_errors: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> WalStats {
        WalStats {
            appends: self.appends.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            segments: self.segments.load(Ordering::Relaxed),
            current_segment: SegmentId(self.current_segment.load(Ordering::Relaxed)),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Test-only fault injection, so the error paths run against real files.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Fail this many upcoming batch writes after writing half of their bytes.
    pub torn_writes: AtomicU64,
    /// Make the cleanup after a failed write fail too, leaving the half record on disk.
    pub fail_cleanup: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl Faults {
    fn take_torn_write(&self) -> bool {
        self.torn_writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

struct Pending {
    payload: Bytes,
    done: Option<Reply<()>>,
}

impl Pending {
    fn complete(&mut self, result: Result<(), WalError>) {
        if let Some(done) = self.done.take() {
            // The caller may have stopped waiting; the record's fate is the same either way.
            let _ = done.send(result);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    cfg: WalConfig,
    /// `None` after a write error until the next segment is created successfully.
    current: Option<Segment>,
    /// The id the next created segment gets; ids are never reused, even for segments that failed creation.
    next_id: u64,
    pub counters: Arc<Counters>,
    /// Held for the writer's lifetime so a second `Wal` cannot open the same directory.
    lock: Option<File>,
    buf: Vec<u8>,
    #[cfg(test)]
    pub faults: Arc<Faults>,
}

impl Writer {
    /// A writer whose first segment (id `next_id`) is already created; `segments` files exist before it.
    pub(super) fn start(
        dir: &Path,
        cfg: WalConfig,
        next_id: u64,
        segments: u64,
        lock: File,
    ) -> Result<Writer, WalError> {
        let counters = Arc::new(Counters::default());
        counters.segments.store(segments, Ordering::Relaxed);
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            cfg,
            current: None,
            next_id,
            counters,
            lock: Some(lock),
            buf: Vec::new(),
            #[cfg(test)]
            faults: Arc::default(),
        };
        writer.roll()?;
        Ok(writer)
    }

    pub(super) fn run(mut self, rx: Receiver<Command>) {
        let mut carried: Option<Command> = None;
        loop {
            let cmd = match carried.take() {
                Some(cmd) => cmd,
                // Disconnected: every handle is gone and the queue is drained (mpsc delivers what was
                // sent before reporting disconnection), so nothing is left to write.
                None => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => return,
                },
            };
            match cmd {
                Command::Append { payload, done } => {
                    let mut bytes = segment::framed_len(&payload);
                    let mut batch = vec![Pending {
                        payload,
                        done: Some(done),
                    }];
                    while bytes < self.cfg.max_batch_bytes {
                        match rx.try_recv() {
                            Ok(Command::Append { payload, done }) => {
                                let n = segment::framed_len(&payload);
                                if bytes + n > self.cfg.max_batch_bytes {
                                    carried = Some(Command::Append { payload, done });
                                    break;
                                }
                                bytes += n;
                                batch.push(Pending {
                                    payload,
                                    done: Some(done),
                                });
                            }
                            Ok(other) => {
                                carried = Some(other);
                                break;
                            }
                            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                        }
                    }
                    self.commit(&mut batch);
                }
                Command::Rotate { done } => {
                    let _ = done.send(self.rotate());
                }
                Command::RemoveBefore { id, done } => {
                    let _ = done.send(self.remove_before(id));
                }
                Command::Close { done } => {
                    // Release the segment and the directory lock before answering, so the caller may
                    // reopen the directory as soon as close returns.
                    self.current = None;
                    self.lock = None;
                    let _ = done.send(Ok(()));
                    return;
                }
            }
        }
    }

    /// Writes a batch as few units as segment boundaries allow, one sync per unit, completing each
    /// unit's appends after its sync. After a failure, every append not yet completed fails.
    fn commit(&mut self, batch: &mut [Pending]) {
        let mut i = 0;
        while i < batch.len() {
            if let Err(e) = self.ensure_segment() {
                fail_all(&mut batch[i..], &e);
                return;
            }
            let seg = self.current.as_ref().expect("ensure_segment succeeded");
            self.buf.clear();
            let start = i;
            while i < batch.len() {
                let n = segment::framed_len(&batch[i].payload) as u64;
                let holds_records = !seg.is_empty() || i > start;
                if holds_records && seg.len + self.buf.len() as u64 + n > self.cfg.segment_bytes {
                    break;
                }
                segment::encode_record(&mut self.buf, &batch[i].payload);
                i += 1;
            }
            if i == start {
                // The current segment is full; the next loop turn writes into a fresh one.
                if let Err(e) = self.roll() {
                    fail_all(&mut batch[i..], &e);
                    return;
                }
                continue;
            }
            match self.write_unit() {
                Ok(()) => {
                    Counters::add(&self.counters.appends, (i - start) as u64);
                    Counters::add(&self.counters.bytes, self.buf.len() as u64);
                    for p in &mut batch[start..i] {
                        p.complete(Ok(()));
                    }
                }
                Err(e) => {
                    Counters::add(&self.counters.write_errors, 1);
                    self.abandon_segment();
                    fail_all(&mut batch[start..], &e);
                    return;
                }
            }
        }
        // A very large batch must not pin its peak size in memory forever.
        if self.buf.capacity() > 2 * self.cfg.max_batch_bytes.max(1 << 20) {
            self.buf = Vec::new();
        }
    }

    fn write_unit(&mut self) -> Result<(), WalError> {
        let seg = self.current.as_mut().expect("commit checked the segment");
        #[cfg(test)]
        if self.faults.take_torn_write() {
            let half = self.buf.len() / 2;
            seg.file
                .write_all(&self.buf[..half])
                .map_err(io_err("write", &seg.path))?;
            return Err(io_err("write", &seg.path)(std::io::Error::other("injected torn write")));
        }
        seg.file.write_all(&self.buf).map_err(io_err("write", &seg.path))?;
        seg.file.sync_data().map_err(io_err("fdatasync", &seg.path))?;
        Counters::add(&self.counters.fsyncs, 1);
        seg.len += self.buf.len() as u64;
        Ok(())
    }

    /// After a failed write or sync the file may end in a partial record. Cut it back to the last synced
    /// length so the segment stays clean, and never write to it again: a later append must not land after
    /// bytes whose fate is unknown. If the cut fails too, replay reports the partial record as corruption
    /// of that (then older) segment and still reads every segment after it.
    fn abandon_segment(&mut self) {
        let Some(seg) = self.current.take() else { return };
        #[cfg(test)]
        if self.faults.fail_cleanup.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = seg.file.set_len(seg.len).and_then(|()| seg.file.sync_all()) {
            tracing::error!(segment = %seg.id, error = %e,
                "WAL: could not cut a failed write from a segment; replay will report it as corruption");
        }
    }

    fn ensure_segment(&mut self) -> Result<(), WalError> {
        if self.current.is_none() { self.roll() } else { Ok(()) }
    }

    /// Starts the next segment. The current one needs no sealing: every byte in it is already synced.
    fn roll(&mut self) -> Result<(), WalError> {
        let id = SegmentId(self.next_id);
        self.next_id = self.next_id.checked_add(1).ok_or(WalError::IdsExhausted)?;
        let seg = Segment::create(&self.dir, id)?;
        Counters::add(&self.counters.fsyncs, 2);
        Counters::add(&self.counters.segments, 1);
        self.counters.current_segment.store(id.0, Ordering::Relaxed);
        self.current = Some(seg);
        Ok(())
    }

    /// An empty current segment already satisfies rotate's promise, so no new file is made for it; this
    /// keeps idle periodic flushes from filling the directory with empty segments.
    fn rotate(&mut self) -> Result<SegmentId, WalError> {
        match &self.current {
            Some(seg) if seg.is_empty() => return Ok(seg.id),
            _ => self.roll()?,
        }
        Ok(self.current.as_ref().expect("roll succeeded").id)
    }

    fn remove_before(&mut self, id: SegmentId) -> Result<(), WalError> {
        let active = self.current.as_ref().map_or(SegmentId(self.next_id), |s| s.id);
        if id > active {
            return Err(WalError::RemoveActive { requested: id, active });
        }
        let mut removed = 0;
        for old in segment::list(&self.dir)?.into_iter().take_while(|&s| s < id) {
            let path = segment::path(&self.dir, old);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove segment", &path)(e)),
            }
        }
        if removed > 0 {
            self.counters.segments.fetch_sub(removed, Ordering::Relaxed);
            segment::sync_dir(&self.dir)?;
            Counters::add(&self.counters.fsyncs, 1);
        }
        Ok(())
    }
}

fn fail_all(pending: &mut [Pending], e: &WalError) {
    for p in pending {
        p.complete(Err(e.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    use super::super::segment::HEADER_LEN;
    use super::super::{Wal, WalConfig};
    use super::*;

    fn collect(dir: &std::path::Path) -> (Vec<Vec<u8>>, crate::wal::ReplayStats) {
        let mut out = Vec::new();
        let (wal, stats) = Wal::open(dir, WalConfig::default(), |p| {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        drop(wal);
        (out, stats)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_share_fsyncs_and_all_replay() {
        const TASKS: usize = 64;
        const PER_TASK: usize = 100;
        let tmp = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(tmp.path(), WalConfig::default(), |_| Ok(())).unwrap();
        let before = wal.stats();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            let wal = wal.clone();
            tasks.spawn(async move {
                for i in 0..PER_TASK {
                    wal.append(Bytes::from(format!("{t}:{i}"))).await.unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let stats = wal.stats();
        let appends = stats.appends - before.appends;
        let fsyncs = stats.fsyncs - before.fsyncs;
        assert_eq!(appends, (TASKS * PER_TASK) as u64);
        assert!(
            fsyncs < appends,
            "group commit must share fsyncs: {fsyncs} fsyncs for {appends} appends"
        );
        eprintln!(
            "group commit: {appends} appends, {fsyncs} fsyncs, {:.3} fsyncs/append, {:.1} appends/fsync",
            fsyncs as f64 / appends as f64,
            appends as f64 / fsyncs as f64
        );
        wal.close().await.unwrap();

        let (records, replay) = collect(tmp.path());
        assert!(replay.corruptions.is_empty());
        assert_eq!(records.len(), TASKS * PER_TASK);
        // Each task awaited its appends one by one, so its records must appear in its own order.
        let mut next: HashMap<usize, usize> = HashMap::new();
        for r in records {
            let s = String::from_utf8(r).unwrap();
            let (t, i) = s.split_once(':').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            let expected = next.entry(t).or_default();
            assert_eq!(i, *expected, "task {t} out of order");
            *expected += 1;
        }
        assert_eq!(next.len(), TASKS);
        assert!(next.values().all(|&n| n == PER_TASK));
    }

    /// Queues commands before the writer runs, then runs it on this thread: what one drain sees is
    /// deterministic, so the batching itself can be checked exactly.
    fn drive(cfg: WalConfig, cmds: Vec<Option<Bytes>>) -> (Vec<Vec<u8>>, u64, Vec<SegmentId>) {
        let tmp = tempfile::tempdir().unwrap();
        let (writer, _) = crate::wal::prepare(
            tmp.path(),
            cfg,
            crate::wal::SegmentId(0),
            &Default::default(),
            &mut |_| Ok(()),
        )
        .unwrap();
        let counters = writer.counters.clone();
        let before = counters.fsyncs.load(Ordering::Relaxed);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut appends = Vec::new();
        let mut rotations = Vec::new();
        for cmd in cmds {
            let sent = match cmd {
                Some(payload) => {
                    let (done, r) = oneshot::channel();
                    appends.push(r);
                    tx.send(Command::Append { payload, done })
                }
                None => {
                    let (done, r) = oneshot::channel();
                    rotations.push(r);
                    tx.send(Command::Rotate { done })
                }
            };
            sent.unwrap();
        }
        let (done, mut closed) = oneshot::channel();
        tx.send(Command::Close { done }).unwrap();
        writer.run(rx);
        closed.try_recv().unwrap().unwrap();
        for mut r in appends {
            r.try_recv().unwrap().unwrap();
        }
        let rotated = rotations
            .into_iter()
            .map(|mut r| r.try_recv().unwrap().unwrap())
            .collect();
        let syncs = counters.fsyncs.load(Ordering::Relaxed) - before;
        (collect(tmp.path()).0, syncs, rotated)
    }

    #[test]
    fn one_sync_per_drained_batch_split_by_the_byte_cap() {
        let payloads: Vec<Option<Bytes>> = (0..10u8).map(|i| Some(Bytes::from(vec![i; 40]))).collect();
        let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        // Each record is 48 bytes framed: a 100-byte cap fits 2 per batch, a cap of 0 still writes 1.
        for (cap, syncs) in [(16 << 20, 1), (100, 5), (0, 10)] {
            let cfg = WalConfig {
                max_batch_bytes: cap,
                ..WalConfig::default()
            };
            let (records, got, _) = drive(cfg, payloads.clone());
            assert_eq!(records, expected, "cap {cap}");
            assert_eq!(got, syncs, "cap {cap}");
        }
    }

    #[test]
    fn a_queued_rotate_splits_the_batch_in_order() {
        let b = |s: &'static str| Some(Bytes::from_static(s.as_bytes()));
        let (records, syncs, rotated) = drive(WalConfig::default(), vec![b("a"), b("b"), None, b("c"), None, None]);
        assert_eq!(records, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        // a+b, then a new segment (file + directory), then c, then another new segment; the last rotate
        // finds that segment empty and returns it without making a file.
        assert_eq!(syncs, 1 + 2 + 1 + 2);
        assert_eq!(rotated, vec![SegmentId(1), SegmentId(2), SegmentId(2)]);
    }

    #[tokio::test]
    async fn a_torn_write_fails_its_batch_and_later_appends_go_to_a_fresh_segment() {
        for fail_cleanup in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let (wal, _) = Wal::open(tmp.path(), WalConfig::default(), |_| Ok(())).unwrap();
            wal.append(Bytes::from_static(b"before")).await.unwrap();
            let first = wal.stats().current_segment;
            wal.faults().torn_writes.store(1, Ordering::SeqCst);
            wal.faults().fail_cleanup.store(fail_cleanup, Ordering::SeqCst);
            let err = wal.append(Bytes::from(vec![b'x'; 1000])).await.unwrap_err();
            assert!(matches!(&err, WalError::Io { op: "write", .. }), "{err}");
            assert_eq!(wal.stats().write_errors, 1);
            wal.append(Bytes::from_static(b"after")).await.unwrap();
            assert!(
                wal.stats().current_segment > first,
                "the failed segment must not be written again"
            );
            wal.close().await.unwrap();

            let (records, replay) = collect(tmp.path());
            assert_eq!(
                records,
                vec![b"before".to_vec(), b"after".to_vec()],
                "fail_cleanup={fail_cleanup}"
            );
            if fail_cleanup {
                // The half record stays in an older segment: reported, and the later segment still replays.
                assert_eq!(replay.corruptions.len(), 1);
                assert_eq!(replay.corruptions[0].segment, first);
                assert_eq!(replay.corruptions[0].offset, HEADER_LEN + 8 + 6);
            } else {
                assert!(replay.corruptions.is_empty(), "{replay:?}");
            }
        }
    }
}
