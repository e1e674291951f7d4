//! HA pairs (`[ingest.ha_tracker]`): a cluster runs two Prometheus replicas that differ only in a
//! replica label (`__replica__`, `prometheus_replica`); of the series carrying one, only the
//! elected replica's are stored, with the replica label removed, so both replicas' series are
//! the same series. Mimir's HA tracker, not query-time deduplication (README, "HA pairs").
//!
//! # The decision, per (cluster, replica) of a write
//! - no replica elected for the cluster: elect this one, accept;
//! - this replica is elected: accept (its `received_at` in the store is refreshed when older
//!   than `update_timeout`);
//! - another replica is elected and was last received more than `failover_timeout` ago: take
//!   over, accept;
//! - otherwise drop its series; remote-write answers 202, so the sender does not retry, and
//!   `tributary_ha_dropped_samples_total{cluster}` counts them.
//!
//! Series without a replica label pass through untouched. The elections are shared by every
//! ingester through the object store (`tributary_storage::election`: one term per change,
//! conditional creates; a lost race is read back and decided again).
//!
//! # No object-store round trip per request
//! Each cluster's election is cached with the time it was read or written. A write decides from
//! the cache while it is younger than `update_timeout` (and, for another replica, while the
//! elected one is not yet overdue); otherwise `HaTracker::sync` reads the store, refreshes,
//! elects or takes over, and caches the result. The ingester does that with its gate released
//! (no I/O while holding it) and decodes the write again, so a cluster costs one read (plus a
//! create when refreshing) per `update_timeout` per ingester. When the store fails, a cached
//! election keeps deciding (no takeover) for another `update_timeout`; without one the write
//! fails with a retryable error.
//!
//! # Where in the write path
//! After decode and cluster stamping, before the per-cluster limits and the WAL append: the WAL
//! record keeps the body as received, so it also keeps what this step did ([`Replicas`]: the
//! replica labels removed, the pairs dropped), and replay repeats exactly that. A write dropped
//! whole writes no record. Remote-write 1.0, 2.0 and OTLP metrics go through it; logs do not.
//!
//! # Known spans
//! Remote-write 1.0 sends a series the head already holds without decoding its labels (the
//! known-span invariant in `head::input`), so its replica is not in the write. This tracker
//! remembers the replica of every raw key it saw with labels, and while it is on the decoder
//! treats a raw key as known only when both the head and this memory hold it (`Narrowed`).
//! The memory is cleared with the head's raw index, at a freeze, under the exclusive gate.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use tributary_storage::election::{Election, Elections, Proposal};
use tributary_storage::types::{CLUSTER, Labels};

use crate::config::HaTrackerConfig;
use crate::decode::{Batch, Kind};
use crate::error::{Error, Result};
use crate::head::input::{Input, KnownSeries, Lookup, RawKey, RawKeyMap};
use crate::metrics::IngestMetrics;
use crate::quota::Clock;

/// A cluster and one of its replicas.
pub(crate) type Pair = (String, String);

/// What a write's replicas are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Store its series (without the replica label).
    Accept,
    /// Drop its series: another replica is elected.
    Drop,
}

/// What the HA tracker did to one write, as its WAL record keeps it (`record.rs`, settings tag
/// 5) so replay does exactly the same: the replica labels removed from every series, and the
/// (cluster, replica) pairs whose series were dropped. Empty when no series carried a replica
/// label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replicas {
    /// The replica label names, in the order they were looked for.
    pub labels: Vec<String>,
    /// (cluster, replica) pairs whose series were dropped.
    pub dropped: Vec<(String, String)>,
}

impl Replicas {
    /// True when the write carried no replica label.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The answer of [`HaTracker::admit`].
#[derive(Debug)]
pub(crate) enum Admission {
    /// Decided and applied: what to keep in the WAL record.
    Applied(Replicas),
    /// These pairs need [`HaTracker::sync`] first (I/O: release the gate, then decode again).
    Sync(Vec<Pair>),
}

/// A cluster's cached election.
#[derive(Debug)]
struct Cached {
    election: Option<Election>,
    /// When it was read or written (ms, the tracker's clock).
    checked_at: i64,
    /// The store failed: decide from it without taking over until it is stale.
    degraded: bool,
}

#[derive(Debug, Default)]
struct ClusterState {
    cached: Mutex<Option<Cached>>,
    /// One sync per cluster at a time; the others then find the cache fresh.
    sync: tokio::sync::Mutex<()>,
}

/// The HA tracker of one ingester.
#[derive(Debug)]
pub(crate) struct HaTracker {
    cfg: HaTrackerConfig,
    update_ms: i64,
    failover_ms: i64,
    elections: Elections,
    clock: Arc<dyn Clock>,
    clusters: Mutex<HashMap<String, Arc<ClusterState>>>,
    /// The replica of every raw key seen with labels (`None`: no replica label).
    raw: RwLock<RawKeyMap<Option<Arc<Pair>>>>,
}

/// Changes of an election one sync may chase (each lost race is one) before giving up.
const SYNC_ROUNDS: usize = 4;

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl HaTracker {
    pub(crate) fn new(cfg: &HaTrackerConfig, elections: Elections, clock: Arc<dyn Clock>) -> Self {
        Self {
            update_ms: ms(cfg.update_timeout),
            failover_ms: ms(cfg.failover_timeout),
            cfg: cfg.clone(),
            elections,
            clock,
            clusters: Mutex::new(HashMap::new()),
            raw: RwLock::new(RawKeyMap::default()),
        }
    }

    /// Whether writes of `kind` go through the tracker.
    pub(crate) fn applies(&self, kind: Kind) -> bool {
        self.cfg.enabled
            && matches!(
                kind,
                Kind::PromRemoteWriteV1 | Kind::PromRemoteWriteV2 | Kind::OtlpMetrics
            )
    }

    /// The head narrowed to the raw keys whose replica this tracker knows, for the decoder.
    pub(crate) fn narrow<'h>(&'h self, head: &'h dyn KnownSeries) -> Narrowed<'h> {
        Narrowed {
            head,
            raw: self.raw.read(),
        }
    }

    /// Forgets every raw key: the head's raw index was cleared (a freeze, under the exclusive gate).
    pub(crate) fn forget_raw_keys(&self) {
        self.raw.write().clear();
    }

    fn state(&self, cluster: &str) -> Arc<ClusterState> {
        let mut map = self.clusters.lock();
        map.entry(cluster.to_string()).or_default().clone()
    }

    /// The decision the cache allows without I/O, if it allows one.
    fn cached(&self, state: &ClusterState, replica: &str, now: i64) -> Option<Decision> {
        let c = state.cached.lock();
        let c = c.as_ref()?;
        if now.saturating_sub(c.checked_at) >= self.update_ms {
            return None;
        }
        let e = c.election.as_ref()?;
        if e.replica == replica {
            Some(Decision::Accept)
        } else if c.degraded || now.saturating_sub(e.received_at) <= self.failover_ms {
            Some(Decision::Drop)
        } else {
            None
        }
    }

    /// Decides a decoded write (under the gate, no I/O): every (cluster, replica) it carries is
    /// decided from `decided` (what a sync just answered) or the cache; when all are, drops the
    /// series of dropped pairs, removes the replica labels from the rest, and moves the dropped
    /// items out of the outcome's accepted counts. `Err` only when a known span's replica is not
    /// remembered, which the narrowed decode rules out (see the module docs).
    pub(crate) fn admit(
        &self,
        kind: Kind,
        batch: &mut Batch<'_>,
        decided: &HashMap<Pair, Decision>,
        metrics: &IngestMetrics,
    ) -> Result<Admission> {
        if !self.applies(kind) {
            return Ok(Admission::Applied(Replicas::default()));
        }
        let pairs = self.pairs(&batch.input)?;
        if pairs.is_empty() {
            return Ok(Admission::Applied(Replicas::default()));
        }
        let now = self.clock.now_ms();
        let mut dropped = Vec::new();
        let mut unsure = Vec::new();
        for p in pairs {
            let d = decided
                .get(&p)
                .copied()
                .or_else(|| self.cached(&self.state(&p.0), &p.1, now));
            match d {
                Some(Decision::Accept) => {}
                Some(Decision::Drop) => dropped.push(p),
                None => unsure.push(p),
            }
        }
        if !unsure.is_empty() {
            return Ok(Admission::Sync(unsure));
        }
        let replicas = Replicas {
            labels: self.cfg.replica_labels.clone(),
            dropped,
        };
        let raw = self.raw.read();
        let gone = rewrite(&mut batch.input, &replicas, &|k| raw.get(&k).cloned().flatten());
        gone.record(kind, &mut batch.outcome, metrics);
        Ok(Admission::Applied(replicas))
    }

    /// The distinct (cluster, replica) pairs of a write; remembers the replica of every raw key
    /// seen with labels.
    fn pairs(&self, input: &Input<'_>) -> Result<Vec<Pair>> {
        let names = &self.cfg.replica_labels;
        let mut out: Vec<Pair> = Vec::new();
        let mut add = |c: &str, r: &str| {
            if !out.iter().any(|(oc, or)| oc == c && or == r) {
                out.push((c.to_string(), r.to_string()));
            }
        };
        let f = &input.floats;
        let mut learned = Vec::new();
        {
            let raw = self.raw.read();
            for span in &f.series {
                if span.known {
                    let key = span.raw_key.unwrap_or_default();
                    match raw.get(&key) {
                        Some(Some(p)) => add(&p.0, &p.1),
                        Some(None) => {}
                        None => return Err(unremembered()),
                    }
                    continue;
                }
                let pair = replica_of_pairs(f.series_labels(span), names);
                if let Some((c, r)) = pair {
                    add(c, r);
                }
                if let Some(k) = span.raw_key
                    && !raw.contains_key(&k)
                {
                    learned.push((k, pair.map(|(c, r)| Arc::new((c.to_string(), r.to_string())))));
                }
            }
        }
        if !learned.is_empty() {
            self.raw.write().extend(learned);
        }
        let owned = input
            .series
            .iter()
            .map(|s| &s.labels)
            .chain(input.signals.histograms.iter().map(|h| &h.labels))
            .chain(input.signals.exemplars.iter().map(|e| &e.labels));
        for labels in owned {
            if let Some((c, r)) = replica_of(labels, names) {
                add(c, r);
            }
        }
        Ok(out)
    }

    /// Decides one (cluster, replica) with the object store: reads the election when the cache
    /// is not enough, then elects, refreshes or takes over as the module docs say, chasing lost
    /// races; caches the result. Called with no gate held.
    pub(crate) async fn sync(&self, pair: &Pair, metrics: &IngestMetrics) -> Result<Decision> {
        let (cluster, replica) = (pair.0.as_str(), pair.1.as_str());
        let state = self.state(cluster);
        let _one = state.sync.lock().await;
        let now = self.clock.now_ms();
        if let Some(d) = self.cached(&state, replica, now) {
            return Ok(d);
        }
        match self.decide(cluster, replica, &state, now, metrics).await {
            Ok(d) => Ok(d),
            Err(e) => {
                let mut c = state.cached.lock();
                let Some(c) = c.as_mut() else {
                    return Err(Error::Unavailable(format!(
                        "the HA election of cluster {cluster:?} cannot be read: {e}"
                    )));
                };
                tracing::warn!(error = %e, cluster, "HA election unreachable; deciding from the cached one");
                c.checked_at = now;
                c.degraded = true;
                let elected = c.election.as_ref().is_none_or(|e| e.replica == replica);
                Ok(if elected { Decision::Accept } else { Decision::Drop })
            }
        }
    }

    async fn decide(
        &self,
        cluster: &str,
        replica: &str,
        state: &ClusterState,
        now: i64,
        metrics: &IngestMetrics,
    ) -> Result<Decision> {
        // The elected replica's own ingester proposes its refresh from the cached term directly:
        // if nobody changed the election meanwhile that saves the read.
        let cached = state
            .cached
            .lock()
            .as_ref()
            .and_then(|c| c.election.clone())
            .filter(|e| e.replica == replica);
        let mut election = match cached {
            Some(e) => Some(e),
            None => self.elections.read(cluster).await?,
        };
        for _ in 0..SYNC_ROUNDS {
            let (propose, decision) = match &election {
                None => (true, Decision::Accept),
                Some(e) if e.replica == replica => {
                    (now.saturating_sub(e.received_at) > self.update_ms, Decision::Accept)
                }
                Some(e) if now.saturating_sub(e.received_at) > self.failover_ms => (true, Decision::Accept),
                Some(_) => (false, Decision::Drop),
            };
            if !propose {
                self.cache(state, cluster, election, now, metrics);
                return Ok(decision);
            }
            let before = election.as_ref().map(|e| e.replica.clone());
            match self.elections.propose(cluster, election.as_ref(), replica, now).await? {
                Proposal::Won(e) => {
                    match before {
                        Some(b) if b != replica => {
                            tracing::info!(cluster, from = %b, to = replica, "HA failover: another replica elected");
                            metrics.ha_failover(cluster);
                        }
                        None => tracing::info!(cluster, replica, "HA replica elected"),
                        Some(_) => {}
                    }
                    self.cache(state, cluster, Some(e), now, metrics);
                    return Ok(Decision::Accept);
                }
                Proposal::Lost(newest) => election = newest,
            }
        }
        Err(Error::Unavailable(format!(
            "the HA election of cluster {cluster:?} kept changing under this ingester; retry"
        )))
    }

    fn cache(
        &self,
        state: &ClusterState,
        cluster: &str,
        election: Option<Election>,
        now: i64,
        metrics: &IngestMetrics,
    ) {
        let mut c = state.cached.lock();
        let before = c.as_ref().and_then(|c| c.election.as_ref()).map(|e| e.replica.clone());
        let after = election.as_ref().map(|e| e.replica.clone());
        if before != after {
            metrics.ha_elected(cluster, before.as_deref(), after.as_deref());
        }
        *c = Some(Cached {
            election,
            checked_at: now,
            degraded: false,
        });
    }
}

fn unremembered() -> Error {
    Error::Unavailable("a series sent by raw key has no remembered replica; retry the request".into())
}

/// The decoder's known-series check while the tracker is on: known to the head *and* to the
/// tracker, so every known span's replica can be looked up.
pub(crate) struct Narrowed<'h> {
    head: &'h dyn KnownSeries,
    raw: RwLockReadGuard<'h, RawKeyMap<Option<Arc<Pair>>>>,
}

impl KnownSeries for Narrowed<'_> {
    fn is_known(&self, key: RawKey) -> bool {
        self.raw.contains_key(&key) && self.head.is_known(key)
    }

    fn look_up(&self, keys: &[RawKey], out: &mut Vec<Lookup>) {
        let start = out.len();
        self.head.look_up(keys, out);
        for (k, found) in keys.iter().zip(&mut out[start..]) {
            if !self.raw.contains_key(k) {
                *found = Lookup::Unknown;
            }
        }
    }
}

/// The replica (first name of `names` present) and cluster of a borrowed series.
fn replica_of_pairs<'a>(labels: &[(&'a str, &'a str)], names: &[String]) -> Option<(&'a str, &'a str)> {
    let replica = names
        .iter()
        .find_map(|n| labels.iter().find(|(k, _)| k == n).map(|(_, v)| *v))?;
    let cluster = labels.iter().find(|(k, _)| *k == CLUSTER).map_or("", |(_, v)| *v);
    Some((cluster, replica))
}

/// The same for owned labels.
fn replica_of<'l>(labels: &'l Labels, names: &[String]) -> Option<(&'l str, &'l str)> {
    let replica = names.iter().find_map(|n| labels.get(n))?;
    Some((labels.get(CLUSTER).unwrap_or(""), replica))
}

/// What [`rewrite`] dropped: per protocol unit and per cluster.
#[derive(Debug, Default)]
pub(crate) struct Gone {
    series: usize,
    samples: usize,
    histograms: usize,
    exemplars: usize,
    by_cluster: Vec<(String, u64)>,
}

impl Gone {
    fn add(&mut self, cluster: &str, n: u64) {
        match self.by_cluster.iter_mut().find(|(c, _)| c == cluster) {
            Some((_, m)) => *m += n,
            None => self.by_cluster.push((cluster.to_string(), n)),
        }
    }

    /// Takes what was dropped out of the accepted counts (it is neither stored nor refused) and
    /// counts it.
    fn record(self, kind: Kind, o: &mut crate::decode::Outcome, metrics: &IngestMetrics) {
        let a = &mut o.accepted;
        let n = (self.samples + self.histograms + self.exemplars) as u64;
        match kind {
            Kind::OtlpMetrics => a.points = a.points.saturating_sub((self.samples + self.histograms) as u64),
            _ => {
                a.series = a.series.saturating_sub(self.series);
                a.samples = a.samples.saturating_sub(self.samples);
                a.histograms = a.histograms.saturating_sub(self.histograms);
                a.exemplars = a.exemplars.saturating_sub(self.exemplars);
            }
        }
        o.deduplicated += n;
        for (cluster, n) in &self.by_cluster {
            metrics.ha_dropped(cluster, *n);
        }
    }
}

/// Applies `replicas` to a decoded write: drops the series of its dropped pairs and removes the
/// replica labels from every other series. `known` answers a known span's replica by raw key.
/// The one rewrite of the live write and of replay.
pub(crate) fn rewrite(input: &mut Input<'_>, replicas: &Replicas, known: &dyn Fn(RawKey) -> Option<Arc<Pair>>) -> Gone {
    let names = &replicas.labels;
    let is_dropped = |c: &str, r: &str| replicas.dropped.iter().any(|(dc, dr)| dc == c && dr == r);
    let mut gone = Gone::default();
    let f = &mut input.floats;
    let old = std::mem::take(&mut f.labels);
    let spans = std::mem::take(&mut f.series);
    let mut labels = Vec::with_capacity(old.len());
    let mut kept = Vec::with_capacity(spans.len());
    for mut span in spans {
        let own = &old[span.labels.start as usize..span.labels.end as usize];
        let dropped = if span.known {
            span.raw_key
                .and_then(known)
                .filter(|p| is_dropped(&p.0, &p.1))
                .map(|p| p.0.clone())
        } else {
            replica_of_pairs(own, names)
                .filter(|(c, r)| is_dropped(c, r))
                .map(|(c, _)| c.to_string())
        };
        if let Some(cluster) = dropped {
            let n = span.samples.len();
            gone.series += 1;
            gone.samples += n;
            gone.add(&cluster, n as u64);
            continue;
        }
        let l0 = labels.len() as u32;
        labels.extend(own.iter().filter(|(n, _)| !names.iter().any(|x| x == n)));
        span.labels = l0..labels.len() as u32;
        kept.push(span);
    }
    if gone.series > 0 {
        // Keep only the kept spans' samples.
        let all = std::mem::take(&mut f.samples);
        let mut samples = Vec::with_capacity(all.len());
        for span in &mut kept {
            let s0 = samples.len() as u32;
            samples.extend_from_slice(&all[span.samples.start as usize..span.samples.end as usize]);
            span.samples = s0..samples.len() as u32;
        }
        f.samples = samples;
    }
    f.labels = labels;
    f.series = kept;
    let owned = |labels: &mut Labels, n: usize, gone: &mut Gone| -> bool {
        let Some((c, r)) = replica_of(labels, names) else {
            return true;
        };
        if is_dropped(c, r) {
            gone.add(c, n as u64);
            return false;
        }
        for name in names {
            labels.remove(name);
        }
        true
    };
    input.retain_series(|s| {
        let keep = owned(&mut s.labels, s.samples.len(), &mut gone);
        if !keep {
            gone.series += 1;
            gone.samples += s.samples.len();
        }
        keep
    });
    let sig = &mut input.signals;
    sig.histograms.retain_mut(|h| {
        let keep = owned(&mut h.labels, h.samples.len(), &mut gone);
        if !keep {
            gone.histograms += h.samples.len();
        }
        keep
    });
    sig.exemplars.retain_mut(|e| {
        let keep = owned(&mut e.labels, e.exemplars.len(), &mut gone);
        if !keep {
            gone.exemplars += e.exemplars.len();
        }
        keep
    });
    gone
}

#[cfg(test)]
mod tests;
