use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tributary_storage::Storage;
use tributary_storage::types::{Label, Sample, Series};

use super::*;
use crate::decode::Outcome;
use crate::head::input::{SeriesSpan, WriteBatch};

/// A wall clock tests move by hand.
#[derive(Debug)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn advance(&self, d: Duration) {
        self.0.fetch_add(ms(d), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn elapsed(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed) as u64)
    }
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn cfg() -> HaTrackerConfig {
    HaTrackerConfig {
        enabled: true,
        ..HaTrackerConfig::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    storage: Arc<Storage>,
    clock: Arc<ManualClock>,
    metrics: IngestMetrics,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
        Self {
            _dir: dir,
            storage,
            clock: Arc::new(ManualClock(AtomicI64::new(1_800_000_000_000))),
            metrics: IngestMetrics::default(),
        }
    }

    /// A tracker (an ingester) on the shared store and clock.
    fn tracker(&self) -> HaTracker {
        HaTracker::new(&cfg(), self.storage.elections(), self.clock.clone())
    }

    /// What the write path decides for one (cluster, replica): the cache, else a sync.
    async fn decide(&self, t: &HaTracker, cluster: &str, replica: &str) -> Decision {
        let now = self.clock.now_ms();
        match t.cached(&t.state(cluster), replica, now) {
            Some(d) => d,
            None => t
                .sync(&(cluster.to_string(), replica.to_string()), &self.metrics)
                .await
                .unwrap(),
        }
    }

    fn requests(&self) -> u64 {
        let r = self.storage.request_counts();
        r.get + r.put + r.list + r.delete + r.head
    }

    async fn stored(&self, cluster: &str) -> Option<(String, i64)> {
        self.storage
            .elections()
            .read(cluster)
            .await
            .unwrap()
            .map(|e| (e.replica, e.received_at))
    }
}

#[tokio::test]
async fn the_first_replica_is_elected_and_the_other_is_dropped() {
    let f = Fixture::new().await;
    let t = f.tracker();
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    assert_eq!(f.decide(&t, "c1", "b").await, Decision::Drop);
    assert_eq!(f.stored("c1").await, Some(("a".into(), f.clock.now_ms())));
    // Another cluster has its own election.
    assert_eq!(f.decide(&t, "c2", "b").await, Decision::Accept);
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
}

#[tokio::test]
async fn the_elected_replica_is_refreshed_at_most_once_per_update_timeout() {
    let f = Fixture::new().await;
    let t = f.tracker();
    let elected_at = f.clock.now_ms();
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    let before = f.requests();
    for _ in 0..14 {
        f.clock.advance(Duration::from_secs(1));
        assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
        assert_eq!(f.decide(&t, "c1", "b").await, Decision::Drop);
    }
    assert_eq!(f.requests(), before, "decided from the cache: no object-store request");
    assert_eq!(f.stored("c1").await, Some(("a".into(), elected_at)));
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    let refreshed = f.clock.now_ms();
    assert_eq!(
        f.stored("c1").await,
        Some(("a".into(), refreshed)),
        "received_at refreshed"
    );
    let before = f.requests();
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    assert_eq!(f.requests(), before, "one refresh, then the cache again");
}

#[tokio::test]
async fn another_replica_takes_over_once_the_elected_one_is_overdue() {
    let f = Fixture::new().await;
    let t = f.tracker();
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    // "a" stops. Until failover_timeout has passed since it was last received, "b" is dropped.
    f.clock.advance(Duration::from_secs(20));
    assert_eq!(f.decide(&t, "c1", "b").await, Decision::Drop);
    f.clock.advance(Duration::from_secs(10));
    assert_eq!(
        f.decide(&t, "c1", "b").await,
        Decision::Drop,
        "30 s is not yet over 30 s"
    );
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.decide(&t, "c1", "b").await, Decision::Accept, "failover");
    assert_eq!(f.stored("c1").await.map(|s| s.0), Some("b".into()));
    // "a" comes back: it is now the other replica.
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Drop);
}

/// Two ingesters share the store: one receives replica "a", the other "b". Whoever elects first
/// wins on both; the refreshes of one keep the other from taking over; when the elected
/// replica's ingester stops hearing from it, the other takes over, and the first follows.
#[tokio::test]
async fn two_trackers_sharing_a_store_converge_on_one_replica() {
    let f = Fixture::new().await;
    let (x, y) = (f.tracker(), f.tracker());
    // Both decide from "no election" at the same moment: exactly one create wins.
    let (dx, dy) = tokio::join!(f.decide(&x, "c1", "a"), f.decide(&y, "c1", "b"));
    assert_ne!(dx, dy, "exactly one replica is accepted");
    let (winner, elected, loser) = if dx == Decision::Accept {
        (&x, "a", "b")
    } else {
        (&y, "b", "a")
    };
    let other = if dx == Decision::Accept { &y } else { &x };
    assert_eq!(f.stored("c1").await.map(|s| s.0).as_deref(), Some(elected));
    // Two minutes of both replicas sending every 5 s: the winner's refreshes keep it elected.
    for _ in 0..24 {
        f.clock.advance(Duration::from_secs(5));
        assert_eq!(f.decide(winner, "c1", elected).await, Decision::Accept);
        assert_eq!(f.decide(other, "c1", loser).await, Decision::Drop);
    }
    // The elected replica dies: only the loser sends, to the other ingester.
    let mut took_over = None;
    for i in 1..=10 {
        f.clock.advance(Duration::from_secs(5));
        if f.decide(other, "c1", loser).await == Decision::Accept {
            took_over = Some(i * 5);
            break;
        }
    }
    let after = took_over.expect("the other replica takes over");
    assert!((30..=50).contains(&after), "took over {after} s after the last write");
    // The first ingester learns it from the store and drops the old replica when it returns.
    f.clock.advance(Duration::from_secs(16));
    assert_eq!(f.decide(winner, "c1", elected).await, Decision::Drop);
    assert_eq!(f.decide(winner, "c1", loser).await, Decision::Accept);
}

/// Two ingesters race to take over from the same overdue term: one wins, the other reads the
/// newer term back and decides again.
#[tokio::test]
async fn a_lost_takeover_race_is_decided_again_from_the_newer_term() {
    let f = Fixture::new().await;
    let (x, y) = (f.tracker(), f.tracker());
    assert_eq!(f.decide(&x, "c1", "a").await, Decision::Accept);
    assert_eq!(f.decide(&y, "c1", "b").await, Decision::Drop);
    f.clock.advance(Duration::from_secs(31));
    // x hears "a" again (a refresh) while y hears "b" (a takeover), both from term 1.
    let (dx, dy) = tokio::join!(f.decide(&x, "c1", "a"), f.decide(&y, "c1", "b"));
    assert_ne!(dx, dy, "{dx:?} {dy:?}");
    let stored = f.stored("c1").await.unwrap().0;
    assert_eq!(stored == "a", dx == Decision::Accept);
}

#[tokio::test]
async fn an_unreachable_store_falls_back_to_the_cache_or_fails_retryably() {
    let f = Fixture::new().await;
    let t = f.tracker();
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept);
    // A damaged term makes every read fail.
    let dir = f._dir.path().join("_ha");
    for cluster in ["c1", "c2"] {
        std::fs::create_dir_all(dir.join(cluster)).unwrap();
        std::fs::write(dir.join(cluster).join("00000000000000000009.json"), b"{").unwrap();
    }
    f.clock.advance(Duration::from_secs(40));
    assert_eq!(f.decide(&t, "c1", "a").await, Decision::Accept, "the cached election");
    assert_eq!(
        f.decide(&t, "c1", "b").await,
        Decision::Drop,
        "no takeover without the store"
    );
    let err = t.sync(&("c2".into(), "a".into()), &f.metrics).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
}

/// A float series of the borrowed batch.
fn push<'a>(b: &mut WriteBatch<'a>, labels: &[(&'a str, &'a str)], raw_key: u128, known: bool) {
    let l0 = b.labels.len() as u32;
    if !known {
        b.labels.extend_from_slice(labels);
    }
    let s0 = b.samples.len() as u32;
    b.samples.push(Sample::new(1, 1.0));
    b.series.push(SeriesSpan {
        labels: l0..b.labels.len() as u32,
        samples: s0..b.samples.len() as u32,
        raw_key: Some(raw_key),
        known,
        placed: None,
    });
}

fn outcome(samples: usize) -> Outcome {
    Outcome {
        accepted: crate::decode::Accepted {
            series: samples,
            samples,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The step on a decoded write: undecided pairs ask for a sync; then the dropped replica's
/// series go (also one sent by raw key, decided by its remembered replica), the rest lose the
/// replica label, series without one pass, and the outcome says what was deduplicated.
#[tokio::test]
async fn admit_drops_the_other_replica_and_removes_the_label() {
    let f = Fixture::new().await;
    let t = f.tracker();
    let a = [
        ("__name__", "up"),
        ("__replica__", "a"),
        ("cluster", "c1"),
        ("job", "x"),
    ];
    let b = [
        ("__name__", "up"),
        ("__replica__", "b"),
        ("cluster", "c1"),
        ("job", "x"),
    ];
    let plain = [("__name__", "up"), ("cluster", "c1"), ("job", "y")];
    let mut first = Batch::default();
    push(&mut first.input.floats, &a, 1, false);
    push(&mut first.input.floats, &b, 2, false);
    first.outcome = outcome(2);
    let decided = HashMap::new();
    let Admission::Sync(pairs) = t
        .admit(Kind::PromRemoteWriteV1, &mut first, &decided, &f.metrics)
        .unwrap()
    else {
        panic!("nothing is cached yet")
    };
    assert_eq!(
        pairs,
        [("c1".to_string(), "a".to_string()), ("c1".to_string(), "b".to_string())]
    );
    let mut decided = HashMap::new();
    for p in pairs {
        decided.insert(p.clone(), t.sync(&p, &f.metrics).await.unwrap());
    }

    // Decoded again: a known span of "b" (raw key 2, remembered above), "a", and a plain one.
    let mut batch = Batch::default();
    push(&mut batch.input.floats, &b, 2, true);
    push(&mut batch.input.floats, &a, 1, false);
    push(&mut batch.input.floats, &plain, 3, false);
    batch.input.series.push(Series::new(
        Labels::from_pairs(&[("__name__", "z"), ("cluster", "c1"), ("prometheus_replica", "b")]),
        vec![Sample::new(1, 2.0), Sample::new(2, 2.0)],
    ));
    batch.outcome = outcome(5);
    let Admission::Applied(replicas) = t
        .admit(Kind::PromRemoteWriteV1, &mut batch, &decided, &f.metrics)
        .unwrap()
    else {
        panic!("decided")
    };
    assert_eq!(replicas.dropped, [("c1".to_string(), "b".to_string())]);
    let f2 = &batch.input.floats;
    let kept: Vec<Vec<(&str, &str)>> = f2.series.iter().map(|s| f2.series_labels(s).to_vec()).collect();
    assert_eq!(
        kept,
        [
            vec![("__name__", "up"), ("cluster", "c1"), ("job", "x")],
            vec![("__name__", "up"), ("cluster", "c1"), ("job", "y")]
        ]
    );
    assert_eq!(f2.samples.len(), 2);
    assert!(batch.input.series.is_empty(), "prometheus_replica names a replica too");
    assert_eq!(batch.outcome.deduplicated, 3);
    assert_eq!((batch.outcome.accepted.series, batch.outcome.accepted.samples), (3, 2));

    // Replay repeats it from the record alone.
    let mut replayed = Batch::default();
    push(&mut replayed.input.floats, &b, 2, false);
    push(&mut replayed.input.floats, &a, 1, false);
    let gone = rewrite(&mut replayed.input, &replicas, &|_| None);
    assert_eq!(gone.samples, 1);
    let r = &replayed.input.floats;
    assert_eq!(
        r.series.iter().map(|s| r.series_labels(s).to_vec()).collect::<Vec<_>>(),
        [vec![("__name__", "up"), ("cluster", "c1"), ("job", "x")]]
    );
    let _ = Label::new("", "");
}

#[test]
fn failover_must_be_above_update_timeout() {
    let mut c = cfg();
    assert_eq!(c.problem(), None);
    c.failover_timeout = c.update_timeout;
    assert!(c.problem().unwrap().contains("failover_timeout"));
    let mut c = cfg();
    c.replica_labels = vec!["cluster".into()];
    assert!(c.problem().is_some());
    c.enabled = false;
    assert_eq!(c.problem(), None, "a disabled tracker is not checked");
}
