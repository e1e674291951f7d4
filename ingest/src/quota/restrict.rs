//! The one step that applies per-cluster limits to a decoded write: counting its usage per
//! cluster, and dropping what the rules refuse. Live writes and replay both go through
//! [`restrict`], with different [`Rules`] ([`super::Live`], [`Replayed`]).

use std::sync::Arc;

use tributary_storage::types::{CLUSTER, Labels, METRIC_NAME, Sample, SeriesId};

use super::{Quotas, Refused};
use crate::decode::{Kind, Outcome};
use crate::head::input::{Input, RawKey, WriteBatch};

/// The labels of a series the head knows by its raw key (a `known` span carries none).
pub(crate) trait LabelsOf {
    /// The head's labels for `key`, if it holds it.
    fn labels_of(&self, key: RawKey) -> Option<Arc<Labels>>;

    /// The index of the `cluster` label of the head's series for `key`, if it holds it (also
    /// in a [`crate::head::input::Placement`]). What usage counts known spans by, on every
    /// write: fetching the labels and scanning them took a third of remote-write's CPU
    /// (BENCHMARKS.md).
    fn cluster_of(&self, key: RawKey) -> Option<u32>;

    /// The cluster name (`""` for series without one) under `index`: looked up once per
    /// cluster of a write, not per series.
    fn cluster_at(&self, index: u32) -> Option<Arc<str>>;
}

/// What one write costs each of its clusters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) clusters: Vec<(String, ClusterUsage)>,
}

/// Samples (floats, histogram samples, exemplars), log line bytes and log lines, span bytes
/// and spans.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClusterUsage {
    pub(crate) samples: u64,
    pub(crate) log_bytes: u64,
    pub(crate) log_lines: u64,
    pub(crate) span_bytes: u64,
    pub(crate) spans: u64,
}

impl ClusterUsage {
    fn samples(n: u64) -> Self {
        Self {
            samples: n,
            ..Self::default()
        }
    }

    /// What each rate limit counts, in the quota's `RATES` order.
    pub(crate) fn amounts(&self) -> [u64; 3] {
        [self.samples, self.log_bytes, self.span_bytes]
    }
}

impl Usage {
    fn add(&mut self, cluster: &str, add: ClusterUsage) {
        let u = match self.clusters.iter_mut().find(|(c, _)| c == cluster) {
            Some((_, u)) => u,
            None => {
                self.clusters.push((cluster.to_string(), ClusterUsage::default()));
                &mut self.clusters.last_mut().expect("just pushed").1
            }
        };
        u.samples += add.samples;
        u.log_bytes += add.log_bytes;
        u.log_lines += add.log_lines;
        u.span_bytes += add.span_bytes;
        u.spans += add.spans;
    }
}

fn cluster_of<'l>(labels: impl IntoIterator<Item = (&'l str, &'l str)>) -> &'l str {
    labels.into_iter().find(|(n, _)| *n == CLUSTER).map_or("", |(_, v)| v)
}

/// Counts a write's usage by cluster, read from each item's stamped `cluster` label.
pub(crate) fn usage(input: &Input<'_>, known: &dyn LabelsOf) -> Usage {
    let mut u = Usage::default();
    let f = &input.floats;
    // Samples of known spans (no labels on them) by their cluster's index, named once each
    // below; the placement carries the index, else the raw index answers it.
    let mut by_index: Vec<(Option<u32>, u64)> = Vec::new();
    for span in &f.series {
        let n = span.samples.len() as u64;
        if !span.known {
            u.add(
                cluster_of(f.series_labels(span).iter().copied()),
                ClusterUsage::samples(n),
            );
            continue;
        }
        let ix = match span.placed {
            Some(p) => Some(p.cluster),
            None => span.raw_key.and_then(|k| known.cluster_of(k)),
        };
        match by_index.iter_mut().find(|(i, _)| *i == ix) {
            Some((_, total)) => *total += n,
            None => by_index.push((ix, n)),
        }
    }
    for (ix, n) in by_index {
        let name = ix.and_then(|ix| known.cluster_at(ix));
        u.add(name.as_deref().unwrap_or(""), ClusterUsage::samples(n));
    }
    for s in &input.series {
        u.add(
            s.labels.get(CLUSTER).unwrap_or(""),
            ClusterUsage::samples(s.samples.len() as u64),
        );
    }
    let sig = &input.signals;
    for h in &sig.histograms {
        u.add(
            h.labels.get(CLUSTER).unwrap_or(""),
            ClusterUsage::samples(h.samples.len() as u64),
        );
    }
    for e in &sig.exemplars {
        u.add(
            e.labels.get(CLUSTER).unwrap_or(""),
            ClusterUsage::samples(e.exemplars.len() as u64),
        );
    }
    // A stream's records come in runs sharing one label set: its cluster is looked up once a run.
    let mut run: Option<(&Arc<Labels>, ClusterUsage)> = None;
    for r in &sig.logs {
        match &mut run {
            Some((labels, usage)) if Arc::ptr_eq(labels, &r.labels) => {
                usage.log_bytes += r.body.len() as u64;
                usage.log_lines += 1;
            }
            _ => {
                if let Some((labels, usage)) = run.take() {
                    u.add(labels.get(CLUSTER).unwrap_or(""), usage);
                }
                let usage = ClusterUsage {
                    log_bytes: r.body.len() as u64,
                    log_lines: 1,
                    ..ClusterUsage::default()
                };
                run = Some((&r.labels, usage));
            }
        }
    }
    if let Some((labels, usage)) = run {
        u.add(labels.get(CLUSTER).unwrap_or(""), usage);
    }
    for s in &sig.spans {
        let span = ClusterUsage {
            span_bytes: s.size() as u64,
            spans: 1,
            ..ClusterUsage::default()
        };
        u.add(&s.cluster, span);
    }
    u
}

/// What a limit step may refuse.
pub(crate) trait Rules {
    /// A window every cluster's window contains: items inside it need no per-cluster check.
    fn narrowest(&self) -> (i64, i64);
    /// Whether new float series must be offered to [`Rules::admit_series`].
    fn caps_series(&self) -> bool;
    /// The window `[lo, hi]` (ms) of `cluster`'s items.
    fn window(&mut self, cluster: &str) -> (i64, i64);
    /// Notes that `window` refused `n` items of `cluster` (too old, or too far in the future).
    fn refused_by_window(&mut self, cluster: &str, window: (i64, i64), too_old: bool, n: u64);
    /// Admits a float series not known to be active, or says why not.
    fn admit_series(&mut self, cluster: &str, metric: &str, id: SeriesId) -> Result<(), String>;
}

/// What [`restrict`] refused, in neutral units; [`Tally::record`] maps it onto a protocol's
/// [`Outcome`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) series: usize,
    pub(crate) samples: usize,
    pub(crate) histograms: usize,
    pub(crate) exemplars: usize,
    pub(crate) logs: u64,
    pub(crate) reasons: Vec<String>,
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.series == 0 && self.samples == 0 && self.histograms == 0 && self.exemplars == 0 && self.logs == 0
    }

    /// Moves what was refused from accepted to rejected, in `kind`'s units.
    pub(crate) fn record(self, kind: Kind, o: &mut Outcome) {
        if self.is_empty() {
            return;
        }
        let (a, r) = (&mut o.accepted, &mut o.rejected);
        match kind {
            Kind::PromRemoteWriteV1 | Kind::PromRemoteWriteV2 => {
                r.series += self.series;
                r.samples += self.samples;
                r.histograms += self.histograms;
                r.exemplars += self.exemplars;
                a.series = a.series.saturating_sub(self.series);
                a.samples = a.samples.saturating_sub(self.samples);
                a.histograms = a.histograms.saturating_sub(self.histograms);
                a.exemplars = a.exemplars.saturating_sub(self.exemplars);
            }
            // OTLP counts data points; a refused sample or histogram sample is one point.
            Kind::OtlpMetrics => {
                let n = (self.samples + self.histograms) as u64;
                r.points += n;
                a.points = a.points.saturating_sub(n);
            }
            Kind::OtlpLogs | Kind::LokiPushProtobuf | Kind::LokiPushJson => {
                r.log_records += self.logs;
                a.log_records = a.log_records.saturating_sub(self.logs);
            }
            // Spans are held to no age or series cap; their rate refuses a write whole.
            Kind::OtlpTraces | Kind::ZipkinJson => {}
        }
        for reason in self.reasons {
            r.add(reason);
        }
    }

    fn reason(&mut self, reason: String) {
        // `Rejections` keeps the first few; no need to build thousands here.
        if self.reasons.len() < 16 {
            self.reasons.push(reason);
        }
    }
}

fn describe(cluster: &str, metric: &str) -> String {
    format!("series {metric}{{cluster={cluster:?}}}")
}

/// Refuses by window: keeps `items` inside `cluster`'s window and answers how many went.
fn by_window<T>(
    items: &mut Vec<T>,
    ts: impl Fn(&T) -> i64,
    cluster: &str,
    rules: &mut dyn Rules,
    what: &str,
    t: &mut Tally,
) -> usize {
    let w = rules.window(cluster);
    let before = items.len();
    let too_old = items.iter().any(|i| ts(i) < w.0);
    items.retain(|i| (w.0..=w.1).contains(&ts(i)));
    let n = before - items.len();
    if n > 0 {
        rules.refused_by_window(cluster, w, too_old, n as u64);
        let limit = if too_old { "max_sample_age" } else { "max_future" };
        t.reason(format!(
            "{n} {what} of cluster {cluster:?} outside the accepted time range [{}, {}] ms ({limit})",
            w.0, w.1
        ));
    }
    n
}

/// Applies `rules` to a decoded write: items outside their cluster's window and new series a cap
/// refuses are dropped from `input` and counted in `t`. Known spans are active already, so they
/// are only checked by time.
pub(crate) fn restrict(input: &mut Input<'_>, known: &dyn LabelsOf, rules: &mut dyn Rules, t: &mut Tally) {
    let nw = rules.narrowest();
    let out = move |ts: i64| ts < nw.0 || ts > nw.1;
    restrict_floats(&mut input.floats, known, rules, t, &out);
    let caps = rules.caps_series();
    input.retain_series(|s| {
        let cluster = s.labels.get(CLUSTER).unwrap_or("");
        let metric = s.labels.get(METRIC_NAME).unwrap_or("");
        if s.samples.iter().any(|x| out(x.timestamp)) {
            let n = by_window(&mut s.samples, |x| x.timestamp, cluster, rules, "samples", t);
            t.samples += n;
            if s.samples.is_empty() {
                t.series += 1;
                return false;
            }
        }
        if caps && let Err(reason) = rules.admit_series(cluster, metric, s.labels.series_id()) {
            t.series += 1;
            t.samples += s.samples.len();
            t.reason(format!("{}: {reason}", describe(cluster, metric)));
            return false;
        }
        true
    });
    let sig = &mut input.signals;
    sig.histograms.retain_mut(|h| {
        let cluster = h.labels.get(CLUSTER).unwrap_or("");
        if h.samples.iter().any(|x| out(x.timestamp)) {
            t.histograms += by_window(&mut h.samples, |x| x.timestamp, cluster, rules, "histogram samples", t);
        }
        if h.samples.is_empty() {
            return false;
        }
        // Native histogram series count towards the same caps as float series: a cardinality
        // explosion must not pass by sending histograms.
        let metric = h.labels.get(METRIC_NAME).unwrap_or("");
        if caps && let Err(reason) = rules.admit_series(cluster, metric, h.labels.series_id()) {
            t.series += 1;
            t.histograms += h.samples.len();
            t.reason(format!("{}: {reason}", describe(cluster, metric)));
            return false;
        }
        true
    });
    sig.exemplars.retain_mut(|e| {
        if e.exemplars.iter().any(|x| out(x.timestamp)) {
            let cluster = e.labels.get(CLUSTER).unwrap_or("");
            t.exemplars += by_window(&mut e.exemplars, |x| x.timestamp, cluster, rules, "exemplars", t);
        }
        !e.exemplars.is_empty()
    });
    let ms = |ns: i64| ns.div_euclid(1_000_000);
    if sig.logs.iter().any(|r| out(ms(r.timestamp))) {
        // Log records of one write mostly share a stream: group the check by cluster.
        let mut logs = std::mem::take(&mut sig.logs);
        let mut clusters: Vec<String> = logs
            .iter()
            .filter(|r| out(ms(r.timestamp)))
            .map(|r| r.labels.get(CLUSTER).unwrap_or("").to_string())
            .collect();
        clusters.sort();
        clusters.dedup();
        for c in clusters {
            let (mut theirs, rest): (Vec<_>, Vec<_>) =
                logs.into_iter().partition(|r| r.labels.get(CLUSTER).unwrap_or("") == c);
            t.logs += by_window(&mut theirs, |r| ms(r.timestamp), &c, rules, "log records", t) as u64;
            logs = rest;
            logs.extend(theirs);
        }
        sig.logs = logs;
    }
}

/// [`restrict`] for the borrowed float series: rebuilt only when something may be refused.
fn restrict_floats(
    f: &mut WriteBatch<'_>,
    known: &dyn LabelsOf,
    rules: &mut dyn Rules,
    t: &mut Tally,
    out: &dyn Fn(i64) -> bool,
) {
    let caps = rules.caps_series();
    if !caps && !f.samples.iter().any(|s| out(s.timestamp)) {
        return;
    }
    let all = std::mem::take(&mut f.samples);
    let spans = std::mem::take(&mut f.series);
    let mut samples: Vec<Sample> = Vec::with_capacity(all.len());
    let mut kept = Vec::with_capacity(spans.len());
    for mut span in spans {
        let src = &all[span.samples.start as usize..span.samples.end as usize];
        let any_out = src.iter().any(|s| out(s.timestamp));
        let capped = caps && !span.known;
        let mut mine = std::borrow::Cow::Borrowed(src);
        if any_out || capped {
            let from_head = match (span.known, span.raw_key) {
                (true, Some(k)) => known.labels_of(k),
                _ => None,
            };
            let labels = f.series_labels(&span);
            let get = |name: &str| match &from_head {
                Some(l) => l.get(name).unwrap_or("").to_string(),
                None => labels
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(String::new(), |(_, v)| v.to_string()),
            };
            let (cluster, metric) = (get(CLUSTER), get(METRIC_NAME));
            if any_out {
                t.samples += by_window(mine.to_mut(), |s| s.timestamp, &cluster, rules, "samples", t);
                if mine.is_empty() {
                    t.series += 1;
                    continue;
                }
            }
            if capped && let Err(reason) = rules.admit_series(&cluster, &metric, SeriesId::of(labels.iter().copied())) {
                t.series += 1;
                t.samples += mine.len();
                t.reason(format!("{}: {reason}", describe(&cluster, &metric)));
                continue;
            }
        }
        let s0 = samples.len() as u32;
        samples.extend_from_slice(&mine);
        span.samples = s0..samples.len() as u32;
        kept.push(span);
    }
    f.samples = samples;
    f.series = kept;
}

/// Replay's rules: drop exactly what the record says the limits refused, and count the replayed
/// series as active again.
#[derive(Debug)]
pub(crate) struct Replayed<'r> {
    pub(crate) refused: &'r Refused,
    pub(crate) quotas: &'r Quotas,
}

impl Rules for Replayed<'_> {
    fn narrowest(&self) -> (i64, i64) {
        self.refused
            .windows
            .iter()
            .fold((i64::MIN, i64::MAX), |(lo, hi), w| (lo.max(w.1), hi.min(w.2)))
    }

    fn caps_series(&self) -> bool {
        self.quotas.any_cap || !self.refused.series.is_empty()
    }

    fn window(&mut self, cluster: &str) -> (i64, i64) {
        self.refused
            .windows
            .iter()
            .find(|w| w.0 == cluster)
            .map_or((i64::MIN, i64::MAX), |w| (w.1, w.2))
    }

    fn refused_by_window(&mut self, _: &str, _: (i64, i64), _: bool, _: u64) {}

    fn admit_series(&mut self, cluster: &str, metric: &str, id: SeriesId) -> Result<(), String> {
        if self.refused.series.contains(&id.0) {
            return Err("refused by a series limit when written".to_string());
        }
        self.quotas.note_replayed(cluster, metric, id);
        Ok(())
    }
}
