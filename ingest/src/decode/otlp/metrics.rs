//! OTLP metrics (`ExportMetricsServiceRequest`) → Tributary's series, native histograms,
//! exemplars and metadata, translated the way Prometheus's own OTLP receiver does it (Prometheus 3,
//! `otlptranslator`, strategy "UnderscoreEscapingWithSuffixes"), so PromQL written for a Prometheus
//! fed the same data works unchanged. `docs/otlp-metrics.md` is the user-facing table; in short:
//!
//! - names: [`naming::metric_name`] (unit and type suffixes), attribute keys via
//!   [`naming::label_name`]; attribute keys that collide once normalised are joined with `;` in
//!   the order of their original keys;
//! - resource: `service.namespace`/`service.name` → `job`, `service.instance.id` → `instance`,
//!   the configured resource attributes are promoted onto every series, and the rest go to a
//!   `target_info` series (value 1, at every distinct timestamp of the resource's accepted points);
//! - scope: `otel_scope_name`, `otel_scope_version`;
//! - cluster: the token's cluster > resource attribute `k8s.cluster.name` > the header cluster >
//!   the resource's points are refused ([`crate::cluster`]); a conflicting own value is kept as
//!   `exported_cluster`;
//! - gauges and cumulative sums → float series (`_total` for monotonic sums), explicit-bucket
//!   histograms → `_bucket{le}`/`_sum`/`_count`, summaries → `{quantile}`/`_sum`/`_count`,
//!   exponential histograms → native histograms; delta temporality is refused with a reason;
//! - `NO_RECORDED_VALUE` → Prometheus's staleness marker.
//!
//! Every refusal is per data point, counted in [`Translated::rejected_points`] (OTLP's
//! `partial_success.rejected_data_points`) with a reason, and never stops the rest of the request.
//! The translation is pure and deterministic — no clock, no I/O, output sorted — because WAL
//! replay calls it again on the same request and must get the same result.
//!
//! Given the head, points of series it already holds skip all of the above: they become samples
//! by raw key (`identity`, the OTLP side of the known-span invariant in [`crate::head::input`]),
//! so steady-state OTLP builds labels only for new series, `target_info` and the series that
//! receive an exemplar.

mod exp_histogram;
mod identity;
pub mod naming;
mod points;
mod rules;

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::common::v1::KeyValue;
use tributary_proto::otlp::metrics::v1::metric::Data;
use tributary_proto::otlp::metrics::v1::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, SummaryDataPoint, exemplar, number_data_point,
};
use tributary_storage::signals::{
    Exemplar, ExemplarSeries, HistogramSample, HistogramSeries, MetricMetadata, MetricType,
};
use tributary_storage::types::{
    CLUSTER, EXPORTED_CLUSTER, Label, Labels, METRIC_NAME, STALE_NAN_BITS, Sample, Series, TimestampMs,
    sort_dedup_samples,
};

use self::naming::{MetricKind, clip, go_float, label_name};
use self::rules::*;
use super::any_value::label_value;
use crate::cluster::ClusterContext;
use crate::decode::limits::{Limits, MAX_STORABLE_MS, MIN_STORABLE_MS};
use crate::decode::{Accepted, Batch, Options as DecodeOptions, Outcome, Prepared, Rejections};
use crate::error::Result;
use crate::head::SignalBlock;
use crate::head::input::{Input, KnownSeries, NothingKnown, RawKey, SeriesSpan};

/// The series carrying a resource's non-identifying attributes.
pub const TARGET_INFO: &str = "target_info";
/// The resource attribute that names a series' own cluster.
pub const K8S_CLUSTER_NAME: &str = "k8s.cluster.name";
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const SCOPE_NAME: &str = "otel_scope_name";
const SCOPE_VERSION: &str = "otel_scope_version";

/// Why delta sums and histograms are refused, and what to do about it.
pub const DELTA_REASON: &str = "delta temporality is not supported; configure the exporter/collector with cumulative \
                                temporality (e.g. deltatocumulative processor)";
/// How many distinct reasons [`Translated::reasons`] keeps.
pub const MAX_REASONS: usize = 10;
/// OpenMetrics' limit on an exemplar's label runes; filtered attributes that would exceed it are
/// left out (trace and span ids are always kept), as Prometheus does.
const MAX_EXEMPLAR_RUNES: usize = 128;

/// How to translate.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// Resource attributes copied onto every series as labels (names normalised), e.g.
    /// `["k8s.namespace.name", "k8s.pod.name"]`. `k8s.cluster.name` is never promoted: the
    /// `cluster` label already carries it.
    pub promote_resource_attributes: &'a [String],
    /// Append unit and type suffixes (`_seconds`, `_bytes`, `_total`, `_ratio`...) — Prometheus's
    /// default "UnderscoreEscapingWithSuffixes".
    pub add_suffixes: bool,
    /// Max labels per series, max label name and value bytes.
    pub limits: Limits,
}

/// The result of translating one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translated {
    /// Float series: labels sorted, validated and cluster-stamped; samples sorted by time with
    /// unique timestamps (the last of equal timestamps wins). Sorted by labels. Only the series
    /// the head does not know (all of them without a head).
    pub series: Vec<Series>,
    /// Per entry of `series`: the raw key the head learns it under (`None`: not learnt, e.g.
    /// `target_info`, or a label set two keys lead to). See `identity`.
    pub keys: Vec<Option<RawKey>>,
    /// Samples of series the head knows, by raw key, in arrival order (see `identity`).
    pub known: Vec<(RawKey, Sample)>,
    /// Native histograms, from exponential histograms. Same guarantees as `series`.
    pub histograms: Vec<HistogramSeries>,
    /// Exemplars, keyed by the final labels of the series they belong to; sorted by time.
    pub exemplars: Vec<ExemplarSeries>,
    /// One entry per (cluster, metric family) with at least one accepted point.
    pub metadata: Vec<MetricMetadata>,
    /// Data points seen.
    pub points: u64,
    /// Data points refused (OTLP `partial_success.rejected_data_points`).
    pub rejected_points: u64,
    /// The first [`MAX_REASONS`] distinct reasons, for `partial_success.error_message`.
    pub reasons: Vec<String>,
}

impl Translated {
    /// One line for `partial_success.error_message`; empty when nothing was refused.
    pub fn message(&self) -> String {
        if self.rejected_points == 0 && self.reasons.is_empty() {
            return String::new();
        }
        let mut m = format!(
            "rejected {} of {} data points; the rest were stored",
            self.rejected_points, self.points
        );
        for r in &self.reasons {
            m.push_str("; ");
            m.push_str(r);
        }
        m
    }
}

/// The decode table's entry for [`crate::record::Kind::OtlpMetrics`], with the record's naming
/// and promotion settings. A request with nothing valid is refused whole (OTLP answers 400), so
/// none of it is stored.
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    known: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    let t = translate_known(
        body.otlp_metrics()?,
        ctx,
        &Options {
            promote_resource_attributes: &opts.translation.promote_resource_attributes,
            add_suffixes: opts.translation.add_metric_suffixes,
            limits: opts.limits,
        },
        known,
    );
    let accepted = Accepted {
        series: t.series.len() + t.known.len(),
        samples: t.series.iter().map(|s| s.samples.len()).sum::<usize>() + t.known.len(),
        points: t.points - t.rejected_points,
        ..Accepted::default()
    };
    let rejected = Rejections {
        points: t.rejected_points,
        reasons: t.reasons,
        ..Rejections::default()
    };
    let input = if accepted.points == 0 && rejected.points > 0 {
        Input::default()
    } else {
        let mut floats = crate::head::input::WriteBatch::default();
        for (key, sample) in t.known {
            let at = floats.samples.len() as u32;
            floats.samples.push(sample);
            floats.series.push(SeriesSpan {
                labels: 0..0,
                samples: at..at + 1,
                raw_key: Some(key),
                known: true,
                placed: None,
            });
        }
        Input {
            floats,
            series: t.series,
            series_keys: t.keys,
            signals: SignalBlock {
                histograms: t.histograms,
                exemplars: t.exemplars,
                metadata: t.metadata.into_iter().collect(),
                ..SignalBlock::default()
            },
        }
    };
    Ok(Batch {
        input,
        outcome: Outcome {
            accepted,
            rejected,
            ..Outcome::default()
        },
    })
}

/// Translates a request. Never fails: what cannot be stored is counted and explained in the result.
pub fn translate(req: &ExportMetricsServiceRequest, ctx: &ClusterContext, opts: &Options<'_>) -> Translated {
    translate_known(req, ctx, opts, &NothingKnown)
}

/// [`translate`], sending the points of series `known` holds as samples by raw key
/// (`Translated::known`) instead of building their labels. Must run under the ingester's gate
/// when `known` is the head (see [`crate::head::input`]).
pub(crate) fn translate_known(
    req: &ExportMetricsServiceRequest,
    ctx: &ClusterContext,
    opts: &Options<'_>,
    known: &dyn KnownSeries,
) -> Translated {
    let mut t = Translator {
        ctx,
        opts,
        known,
        request_key: identity::request_key(ctx, opts),
        fast: Vec::new(),
        series: BTreeMap::new(),
        histograms: BTreeMap::new(),
        exemplars: BTreeMap::new(),
        metadata: BTreeMap::new(),
        points: 0,
        rejected_points: 0,
        reasons: Vec::new(),
    };
    for rm in &req.resource_metrics {
        t.resource(rm);
    }
    t.finish()
}

/// The series one data point writes, each with its value; built whole before anything is kept,
/// so a point is stored entirely or refused entirely.
type PointSeries = Vec<(Labels, f64)>;

/// What a resource contributes to every series it produces.
struct ResourceCtx {
    cluster: String,
    /// The resource's own cluster when the token named another one.
    exported_cluster: Option<String>,
    job: Option<String>,
    instance: Option<String>,
    /// Promoted attributes: normalised name and value, in original key order.
    promoted: Vec<(String, String)>,
    /// Timestamps of the accepted points, for `target_info`.
    timestamps: BTreeSet<TimestampMs>,
    /// The resource's part of its points' raw keys.
    key: RawKey,
}

struct ScopeCtx<'a> {
    name: &'a str,
    version: &'a str,
    /// The scope's part of its points' raw keys.
    key: RawKey,
}

/// A float series being built, and the raw key it is learnt under.
#[derive(Default)]
struct SeriesAcc {
    samples: Vec<Sample>,
    key: KeyState,
}

#[derive(Clone, Copy, Default, PartialEq)]
enum KeyState {
    #[default]
    Fresh,
    Keyed(RawKey),
    /// Built without a key, or reached by two: not learnt (its points keep the full path).
    Unkeyed,
}

/// A metric family being translated.
struct Family<'a> {
    /// The original OTLP name, clipped, for reasons.
    otlp_name: Cow<'a, str>,
    /// The Prometheus family name (suffixes included; no `_bucket`/`_sum`/`_count`).
    name: String,
}

struct Translator<'a, 'o> {
    ctx: &'a ClusterContext,
    opts: &'a Options<'o>,
    known: &'a dyn KnownSeries,
    request_key: RawKey,
    /// Samples of known series (see `identity`).
    fast: Vec<(RawKey, Sample)>,
    series: BTreeMap<Labels, SeriesAcc>,
    histograms: BTreeMap<Labels, Vec<HistogramSample>>,
    exemplars: BTreeMap<Labels, Vec<Exemplar>>,
    metadata: BTreeMap<(String, String), MetricMetadata>,
    points: u64,
    rejected_points: u64,
    reasons: Vec<String>,
}

impl Translator<'_, '_> {
    fn reject(&mut self, points: u64, reason: impl FnOnce() -> String) {
        self.rejected_points += points;
        self.note(reason);
    }

    /// Records a reason unless the list is full or already has it (built only when kept).
    fn note(&mut self, reason: impl FnOnce() -> String) {
        if self.reasons.len() < MAX_REASONS {
            let r = reason();
            if !self.reasons.contains(&r) {
                self.reasons.push(r);
            }
        }
    }

    fn resource(&mut self, rm: &ResourceMetrics) {
        let attrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| r.attributes.as_slice());
        let own = attribute(attrs, K8S_CLUSTER_NAME).filter(|v| !v.is_empty());
        let (cluster, exported_cluster) = match decide_cluster(self.ctx, own) {
            Ok(c) => c,
            Err(reason) => {
                let n = count_points(rm);
                self.points += n;
                self.reject(n, || format!("resource {}: {reason}", describe_resource(attrs)));
                return;
            }
        };
        // Prometheus: job is "namespace/name" when both are set; present-but-empty values count.
        let job = attribute(attrs, SERVICE_NAME).map(|name| match attribute(attrs, SERVICE_NAMESPACE) {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let mut promoted: Vec<(&str, String)> = attrs
            .iter()
            .filter(|kv| kv.key != K8S_CLUSTER_NAME && self.opts.promote_resource_attributes.contains(&kv.key))
            .map(|kv| (kv.key.as_str(), label_value(kv.value.as_ref())))
            .collect();
        promoted.sort();
        let promoted = promoted
            .into_iter()
            .filter_map(|(k, v)| label_name(k).ok().filter(|n| !n.starts_with("__")).map(|n| (n, v)))
            .collect();
        let mut res = ResourceCtx {
            cluster,
            exported_cluster,
            job,
            instance: attribute(attrs, SERVICE_INSTANCE_ID),
            promoted,
            timestamps: BTreeSet::new(),
            key: identity::resource_key(self.request_key, attrs),
        };
        for sm in &rm.scope_metrics {
            let (name, version) = sm.scope.as_ref().map_or(("", ""), |s| (&s.name, &s.version));
            let scope = ScopeCtx {
                name,
                version,
                key: identity::scope_key(res.key, name, version),
            };
            for m in &sm.metrics {
                self.metric(m, &scope, &mut res);
            }
        }
        self.target_info(attrs, &res);
    }

    fn metric(&mut self, m: &Metric, scope: &ScopeCtx<'_>, res: &mut ResourceCtx) {
        let Some(data) = &m.data else { return };
        let (kind, points, temporality) = match data {
            Data::Gauge(g) => (MetricKind::Gauge, g.data_points.len(), None),
            Data::Sum(s) => (
                if s.is_monotonic {
                    MetricKind::MonotonicCounter
                } else {
                    MetricKind::NonMonotonicCounter
                },
                s.data_points.len(),
                Some(s.aggregation_temporality),
            ),
            Data::Histogram(h) => (
                MetricKind::Histogram,
                h.data_points.len(),
                Some(h.aggregation_temporality),
            ),
            Data::ExponentialHistogram(h) => (
                MetricKind::ExponentialHistogram,
                h.data_points.len(),
                Some(h.aggregation_temporality),
            ),
            Data::Summary(s) => (MetricKind::Summary, s.data_points.len(), None),
        };
        let points = points as u64;
        self.points += points;
        if points == 0 {
            return;
        }
        if let Some(t) = temporality {
            match AggregationTemporality::try_from(t) {
                Ok(AggregationTemporality::Cumulative) => {}
                Ok(AggregationTemporality::Delta) => {
                    return self.reject(points, || format!("metric {:?}: {DELTA_REASON}", clip(&m.name)));
                }
                _ => {
                    return self.reject(points, || {
                        format!(
                            "metric {:?}: aggregation temporality {t} is not cumulative; configure the \
                             exporter/collector with cumulative temporality",
                            clip(&m.name)
                        )
                    });
                }
            }
        }
        let name = match naming::metric_name(&m.name, &m.unit, kind, self.opts.add_suffixes) {
            Ok(n) => n,
            Err(reason) => return self.reject(points, || reason),
        };
        let family = Family {
            otlp_name: clip(&m.name),
            name,
        };
        let mut accepted = 0u64;
        match data {
            Data::Gauge(g) => {
                for p in &g.data_points {
                    accepted += u64::from(self.number_point(&family, p, scope, res));
                }
            }
            Data::Sum(s) => {
                for p in &s.data_points {
                    accepted += u64::from(self.number_point(&family, p, scope, res));
                }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    accepted += u64::from(self.histogram_point(&family, p, scope, res));
                }
            }
            Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    accepted += u64::from(self.exp_histogram_point(&family, p, scope, res));
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    accepted += u64::from(self.summary_point(&family, p, scope, res));
                }
            }
        }
        if accepted > 0 {
            let kind = match kind {
                MetricKind::Gauge | MetricKind::NonMonotonicCounter => MetricType::Gauge,
                MetricKind::MonotonicCounter => MetricType::Counter,
                MetricKind::Histogram | MetricKind::ExponentialHistogram => MetricType::Histogram,
                MetricKind::Summary => MetricType::Summary,
            };
            let key = (res.cluster.clone(), family.name);
            if let Entry::Vacant(e) = self.metadata.entry(key) {
                let (cluster, metric) = e.key().clone();
                e.insert(MetricMetadata {
                    cluster,
                    metric,
                    kind,
                    help: m.description.clone(),
                    unit: naming::unit_name(&m.unit),
                });
            }
        }
    }

    /// What every point starts with: its timestamp and its labels without `__name__`. Refuses the
    /// point (and returns `None`) when either is unusable.
    fn prelude(
        &mut self,
        family: &Family<'_>,
        time_unix_nano: u64,
        attrs: &[KeyValue],
        scope: &ScopeCtx<'_>,
        res: &ResourceCtx,
    ) -> Option<(TimestampMs, Vec<Label>)> {
        let base = timestamp_ms(time_unix_nano).and_then(|ts| Ok((ts, self.base_labels(attrs, scope, res)?)));
        match base {
            Ok(b) => Some(b),
            Err(reason) => {
                self.reject(1, || format!("metric {:?}: {reason}", family.otlp_name));
                None
            }
        }
    }

    /// A point's labels before `__name__`, in Prometheus's order of precedence: the point's
    /// attributes, then promoted resource attributes (only where the point has no such label),
    /// then the scope, `job`/`instance`, and the cluster, each overriding what came before.
    /// Sorted, empty values dropped.
    fn base_labels(&self, attrs: &[KeyValue], scope: &ScopeCtx<'_>, res: &ResourceCtx) -> Result<Vec<Label>, String> {
        let mut map = normalise_attributes(attrs.iter().filter(|kv| kv.key != K8S_CLUSTER_NAME), true)?;
        for (name, value) in &res.promoted {
            map.entry(name.clone()).or_insert_with(|| value.clone());
        }
        if !scope.name.is_empty() {
            map.insert(SCOPE_NAME.to_string(), scope.name.to_string());
            map.insert(SCOPE_VERSION.to_string(), scope.version.to_string());
        }
        set_identity(&mut map, res);
        Ok(map
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, value)| Label { name, value })
            .collect())
    }

    /// The final labels of one series: `base` plus `__name__` and, for buckets and quantiles,
    /// `le`/`quantile` (which override attributes of those names, as in Prometheus), checked
    /// against the limits.
    fn series_labels(
        &self,
        f: &Family<'_>,
        base: &[Label],
        name: &str,
        extra: Option<(&str, String)>,
    ) -> Result<Labels, String> {
        let mut labels = base.to_vec();
        upsert(&mut labels, METRIC_NAME, name.to_string());
        if let Some((label, value)) = extra {
            upsert(&mut labels, label, value);
        }
        check_limits(&labels, &self.opts.limits).map_err(|r| format!("metric {:?}: {r}", f.otlp_name))?;
        Ok(Labels::from_sorted(labels))
    }

    /// `target_info`: the resource's attributes other than `service.*` identity (and the cluster,
    /// which the `cluster` label carries), with `job`/`instance`, value 1 at every distinct
    /// timestamp of the resource's accepted points. Only when there is something to say and
    /// something to join on (`job` or `instance`), as in Prometheus.
    fn target_info(&mut self, attrs: &[KeyValue], res: &ResourceCtx) {
        if res.timestamps.is_empty() {
            return;
        }
        let rest = attrs.iter().filter(|kv| {
            ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID, K8S_CLUSTER_NAME].contains(&kv.key.as_str())
        });
        // Unusable keys cannot refuse data points here; they are left out of target_info.
        let Ok(mut map) = normalise_attributes(rest, false) else {
            return;
        };
        map.retain(|_, v| !v.is_empty());
        if map.is_empty() {
            return;
        }
        set_identity(&mut map, res);
        let has_identity = ["job", "instance"]
            .iter()
            .any(|k| map.get(*k).is_some_and(|v| !v.is_empty()));
        if !has_identity {
            return;
        }
        let mut labels: Vec<Label> = map
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, value)| Label { name, value })
            .collect();
        upsert(&mut labels, METRIC_NAME, TARGET_INFO.to_string());
        if let Err(reason) = check_limits(&labels, &self.opts.limits) {
            return self.note(|| format!("{TARGET_INFO} of resource {}: {reason}", describe_resource(attrs)));
        }
        let acc = self.series.entry(Labels::from_sorted(labels)).or_default();
        acc.samples
            .extend(res.timestamps.iter().map(|&ts| Sample::new(ts, 1.0)));
        acc.key = KeyState::Unkeyed;
        if let Entry::Vacant(e) = self.metadata.entry((res.cluster.clone(), TARGET_INFO.to_string())) {
            e.insert(MetricMetadata {
                cluster: res.cluster.clone(),
                metric: TARGET_INFO.to_string(),
                kind: MetricType::Gauge,
                help: "Target metadata".to_string(),
                unit: String::new(),
            });
        }
    }

    /// Adds a sample of a point's series, learnt under `key`.
    fn push_sample(&mut self, labels: Labels, sample: Sample, key: RawKey) {
        let acc = self.series.entry(labels).or_default();
        acc.samples.push(sample);
        acc.key = match acc.key {
            KeyState::Fresh => KeyState::Keyed(key),
            KeyState::Keyed(k) if k == key => acc.key,
            _ => KeyState::Unkeyed,
        };
    }

    /// The raw keys of a point's `n` series when the head knows every one of them; `Err` with
    /// the keys otherwise (the full path learns them).
    fn known_keys(&self, point: RawKey, n: usize) -> std::result::Result<Vec<RawKey>, Vec<RawKey>> {
        let keys: Vec<RawKey> = (0..n).map(|j| identity::series_key(point, j)).collect();
        if keys.iter().all(|k| self.known.is_known(*k)) {
            Ok(keys)
        } else {
            Err(keys)
        }
    }

    fn finish(self) -> Translated {
        let mut keys = Vec::with_capacity(self.series.len());
        let series = self
            .series
            .into_iter()
            .map(|(labels, mut acc)| {
                sort_dedup_samples(&mut acc.samples);
                keys.push(match acc.key {
                    KeyState::Keyed(k) => Some(k),
                    _ => None,
                });
                Series::new(labels, acc.samples)
            })
            .collect();
        let histograms = self
            .histograms
            .into_iter()
            .map(|(labels, mut samples)| {
                // As for float samples: sorted, one per timestamp, the last given wins.
                samples.reverse();
                samples.sort_by_key(|s| s.timestamp);
                samples.dedup_by_key(|s| s.timestamp);
                HistogramSeries { labels, samples }
            })
            .collect();
        let exemplars = self
            .exemplars
            .into_iter()
            .map(|(labels, mut exemplars)| {
                exemplars.sort_by_key(|e| e.timestamp);
                ExemplarSeries { labels, exemplars }
            })
            .collect();
        Translated {
            series,
            keys,
            known: self.fast,
            histograms,
            exemplars,
            metadata: self.metadata.into_values().collect(),
            points: self.points,
            rejected_points: self.rejected_points,
            reasons: self.reasons,
        }
    }
}

#[cfg(test)]
mod tests;
