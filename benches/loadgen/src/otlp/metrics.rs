//! OTLP metrics as OpenTelemetry SDKs export them through a Collector: every pod's SDK exports
//! all its metrics once per interval (cumulative temporality, process start time as
//! `start_time_unix_nano`), and each cluster's Collectors batch those exports into requests.
//!
//! The metric set follows the instrumentation libraries' semantic conventions: `otelhttp` and
//! the Go runtime instrumentation for Go services, the Java agent's Tomcat, HikariCP and JVM
//! runtime metrics for Java services, Kafka consumer and CPython system metrics for workers. So
//! the mix is realistic: mostly small integer sums and gauges with 1–4 attributes, plus
//! explicit-bucket histograms (HTTP and messaging durations, body sizes, GC pauses) that carry
//! most of the bytes; a fraction of histogram points carry an exemplar with a trace id, as the
//! SDKs' default trace-based exemplar filter produces.
//!
//! Values evolve like [`crate::workload`]'s: every draw is a hash of (point seed, round, salt),
//! so a point's value depends only on its own history, never on generation order.

mod histogram;
mod http;
mod messaging;
mod runtime;

use tributary_proto::otlp::common::v1::{InstrumentationScope, KeyValue};
use tributary_proto::otlp::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, metric, number_data_point,
};
use tributary_proto::otlp::resource::v1::Resource as OtlpResource;

use self::histogram::{Hist, HistShape};
use super::batch::Slice;
use super::catalog::{Cluster, Deployment, Pod, Role, Runtime};
use crate::workload::shape::{Rng, mix, unit};

/// Semantic conventions version the instrumentations follow.
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

// Salts of the independent draws one point makes per round (see `unit`), the histogram's
// included: kept together so that they stay distinct.
const SALT_STEP: u64 = 1;
const SALT_ROUND: u64 = 2;
const SALT_COUNT: u64 = 3;
const SALT_SHIFT: u64 = 4;
const SALT_SUM: u64 = 5;
const SALT_MIN: u64 = 6;
const SALT_MAX: u64 = 7;
const SALT_EXEMPLAR: u64 = 8;
const SALT_EXEMPLAR_AT: u64 = 9;
const SALT_BUCKET: u64 = 100;

/// The OTLP data type a stream is exported as.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Monotonic cumulative sum.
    Counter,
    /// Non-monotonic cumulative sum (UpDownCounter).
    UpDown,
    /// Last value.
    Gauge,
    /// Cumulative explicit-bucket histogram with these bounds.
    Histogram(&'static [f64]),
}

/// How a point's value evolves from round to round.
#[derive(Debug)]
enum Model {
    /// Grows by `per_round` ± `jitter` (relative) each round.
    Counter {
        value: f64,
        per_round: f64,
        jitter: f64,
        int: bool,
    },
    /// Random walk within [lo, hi]; `step` 0 keeps it constant.
    Level {
        value: f64,
        lo: f64,
        hi: f64,
        step: f64,
        int: bool,
    },
    /// A histogram of observations.
    Histogram(Box<Hist>),
}

/// One data point stream: its attributes, its own seed and its value.
#[derive(Debug)]
struct Point {
    attrs: Vec<KeyValue>,
    seed: u64,
    model: Model,
}

/// One metric of a resource: its identity, OTLP type and every point it exports.
#[derive(Debug)]
struct MetricStream {
    scope: usize,
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
    int: bool,
    points: Vec<Point>,
}

/// One pod's SDK: its resource and every metric stream it exports.
#[derive(Debug)]
pub(crate) struct Resource {
    attrs: Vec<KeyValue>,
    scopes: Vec<(&'static str, &'static str)>,
    metrics: Vec<MetricStream>,
    /// Data points per export.
    pub(crate) points: usize,
    pub(crate) offset_ms: u64,
    pub(crate) collector_key: u64,
    start_ms: i64,
}

/// Every resource of one cluster that exports metrics.
pub(crate) fn resources(cluster: &Cluster, start_ms: i64, interval_ms: u64, exemplar_fraction: f64) -> Vec<Resource> {
    cluster
        .pods
        .iter()
        .filter(|p| cluster.deployments[p.deployment].role != Role::Ingress)
        .map(|pod| {
            let d = &cluster.deployments[pod.deployment];
            let mut b = Builder {
                rng: Rng::new(pod.seed),
                interval_ms: interval_ms.max(1),
                age_rounds: pod.age_ms as f64 / interval_ms.max(1) as f64,
                exemplar_fraction,
                scopes: vec![],
                metrics: vec![],
            };
            b.pod(d, pod);
            let points = b.metrics.iter().map(|m| m.points.len()).sum();
            Resource {
                attrs: cluster.sdk_resource(pod),
                scopes: b.scopes,
                metrics: b.metrics,
                points,
                offset_ms: pod.offset_ms,
                collector_key: mix(pod.seed ^ 0xC011),
                start_ms: start_ms - pod.age_ms as i64,
            }
        })
        .collect()
}

impl Resource {
    /// Moves every point to `round`'s value.
    pub(crate) fn advance(&mut self, round: u64) {
        for m in &mut self.metrics {
            for p in &mut m.points {
                p.advance(round);
            }
        }
    }

    /// Data points `lo..hi` of this export, in export order, at `time_ms`; and the Prometheus
    /// samples they become.
    pub(crate) fn encode(&self, lo: usize, hi: usize, time_ms: i64) -> (ResourceMetrics, usize) {
        let time_ns = ms_to_ns(time_ms);
        let start_ns = ms_to_ns(self.start_ms);
        let mut scope_metrics: Vec<ScopeMetrics> = vec![];
        let mut last_scope = usize::MAX;
        let mut offset = 0;
        let mut samples = 0;
        for m in &self.metrics {
            let (a, b) = (lo.max(offset), hi.min(offset + m.points.len()));
            offset += m.points.len();
            if a >= b {
                continue;
            }
            let points = &m.points[a - (offset - m.points.len())..b - (offset - m.points.len())];
            if m.scope != last_scope {
                last_scope = m.scope;
                let (name, version) = self.scopes[m.scope];
                scope_metrics.push(ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: name.into(),
                        version: version.into(),
                        ..Default::default()
                    }),
                    metrics: vec![],
                    schema_url: SCHEMA_URL.into(),
                });
            }
            let data = match m.kind {
                Kind::Histogram(bounds) => {
                    samples += points.len() * (bounds.len() + 3);
                    let data_points = points.iter().map(|p| p.histogram(start_ns, time_ms)).collect();
                    metric::Data::Histogram(Histogram {
                        data_points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })
                }
                kind => {
                    samples += points.len();
                    let data_points = points.iter().map(|p| p.number(start_ns, time_ns, m.int)).collect();
                    match kind {
                        Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
                        _ => metric::Data::Sum(Sum {
                            data_points,
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: matches!(kind, Kind::Counter),
                        }),
                    }
                }
            };
            if let Some(sm) = scope_metrics.last_mut() {
                sm.metrics.push(Metric {
                    name: m.name.into(),
                    description: m.description.into(),
                    unit: m.unit.into(),
                    metadata: vec![],
                    data: Some(data),
                });
            }
        }
        let rm = ResourceMetrics {
            resource: Some(OtlpResource {
                attributes: self.attrs.clone(),
                ..Default::default()
            }),
            scope_metrics,
            schema_url: SCHEMA_URL.into(),
        };
        (rm, samples)
    }
}

/// Encodes one batch of a cluster's resources at round time `base_ms`.
pub(crate) fn encode_batch(
    resources: &[Resource],
    batch: &[Slice],
    base_ms: i64,
) -> (
    tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest,
    usize,
) {
    let mut samples = 0;
    let resource_metrics = batch
        .iter()
        .map(|s| {
            let r = &resources[s.resource];
            let (rm, n) = r.encode(s.lo, s.hi, base_ms + r.offset_ms as i64);
            samples += n;
            rm
        })
        .collect();
    (
        tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest { resource_metrics },
        samples,
    )
}

/// Milliseconds since the epoch to OTLP nanoseconds (negative clamps to 0).
fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

impl Point {
    /// Moves the value to `round`'s.
    fn advance(&mut self, round: u64) {
        let seed = self.seed;
        match &mut self.model {
            Model::Counter {
                value,
                per_round,
                jitter,
                ..
            } => {
                let u = unit(seed, round, SALT_STEP);
                *value += (*per_round * (1.0 + *jitter * (2.0 * u - 1.0))).max(0.0);
            }
            Model::Level {
                value, lo, hi, step, ..
            } => {
                let u = unit(seed, round, SALT_STEP);
                *value = (*value + *step * (2.0 * u - 1.0)).clamp(*lo, *hi);
            }
            Model::Histogram(h) => h.advance(seed, round),
        }
    }

    /// A sum or gauge point's data point; `int` forces an integer value.
    fn number(&self, start_ns: u64, time_ns: u64, int: bool) -> NumberDataPoint {
        let v = match self.model {
            Model::Counter { value, int: i, .. } | Model::Level { value, int: i, .. } => {
                if i || int {
                    number_data_point::Value::AsInt(value.round() as i64)
                } else {
                    number_data_point::Value::AsDouble(value)
                }
            }
            Model::Histogram(_) => number_data_point::Value::AsDouble(0.0),
        };
        NumberDataPoint {
            attributes: self.attrs.clone(),
            start_time_unix_nano: start_ns,
            time_unix_nano: time_ns,
            exemplars: vec![],
            flags: 0,
            value: Some(v),
        }
    }

    /// A histogram point's data point; a number point never asks (encoded as the default).
    fn histogram(&self, start_ns: u64, time_ms: i64) -> HistogramDataPoint {
        let Model::Histogram(h) = &self.model else {
            return HistogramDataPoint::default();
        };
        h.data_point(&self.attrs, start_ns, time_ms)
    }
}

/// Builds one pod's metric streams.
struct Builder {
    rng: Rng,
    interval_ms: u64,
    age_rounds: f64,
    exemplar_fraction: f64,
    scopes: Vec<(&'static str, &'static str)>,
    metrics: Vec<MetricStream>,
}

/// One data point stream to add: its attributes and value model.
enum Spec {
    /// Per-second rate; integer-valued.
    Count(f64),
    /// Per-second rate of a float counter (CPU seconds).
    Seconds(f64),
    /// Random walk in [lo, hi], moving by up to `step` per round.
    Walk { lo: f64, hi: f64, step: f64 },
    /// Fixed value.
    Constant(f64),
    /// Observations per second and their distribution.
    Observe(f64, HistShape),
}

impl Builder {
    /// Declares an instrumentation scope; returns its index for [`Builder::metric`].
    fn scope(&mut self, name: &'static str, version: &'static str) -> usize {
        self.scopes.push((name, version));
        self.scopes.len() - 1
    }

    /// Seconds per round, i.e. how many per-second events one round holds.
    fn rounds_per_second(&self) -> f64 {
        self.interval_ms as f64 / 1000.0
    }

    /// Adds a metric stream, one point per (attributes, spec).
    #[allow(clippy::too_many_arguments)]
    fn metric(
        &mut self,
        scope: usize,
        name: &'static str,
        description: &'static str,
        unit: &'static str,
        kind: Kind,
        int: bool,
        points: Vec<(Vec<KeyValue>, Spec)>,
    ) {
        let per_s = self.rounds_per_second();
        let points = points
            .into_iter()
            .map(|(attrs, spec)| {
                let seed = self.rng.next_u64();
                let u = self.rng.next_f64();
                let model = match spec {
                    Spec::Count(rate) | Spec::Seconds(rate) => {
                        let per_round = rate * per_s;
                        Model::Counter {
                            value: (per_round * self.age_rounds * (0.8 + 0.4 * u)).floor(),
                            per_round,
                            jitter: 0.4,
                            int: matches!(spec, Spec::Count(_)),
                        }
                    }
                    Spec::Walk { lo, hi, step } => Model::Level {
                        value: lo + (hi - lo) * u,
                        lo,
                        hi,
                        step,
                        int,
                    },
                    Spec::Constant(v) => Model::Level {
                        value: v,
                        lo: v,
                        hi: v,
                        step: 0.0,
                        int,
                    },
                    Spec::Observe(rate, shape) => Model::Histogram(Box::new(Hist::new(
                        shape,
                        rate * per_s,
                        self.age_rounds,
                        self.exemplar_fraction,
                        self.interval_ms,
                    ))),
                };
                Point { attrs, seed, model }
            })
            .collect();
        self.metrics.push(MetricStream {
            scope,
            name,
            description,
            unit,
            kind,
            int,
            points,
        });
    }

    /// Every metric of `pod`: its role's, then its runtime's.
    fn pod(&mut self, d: &Deployment, pod: &Pod) {
        match d.role {
            Role::Http => self.http(d, pod),
            Role::Worker => self.worker(d),
            Role::Ingress => {}
        }
        match d.runtime {
            Runtime::Go => self.go_runtime(),
            Runtime::Java => self.jvm(),
            Runtime::Python => self.cpython(),
        }
    }
}
