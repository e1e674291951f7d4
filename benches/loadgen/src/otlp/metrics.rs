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

use tributary_proto::otlp::common::v1::{InstrumentationScope, KeyValue};
use tributary_proto::otlp::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use tributary_proto::otlp::resource::v1::Resource as OtlpResource;

use super::batch::Slice;
use super::catalog::{Cluster, Deployment, Pod, Role, Runtime, kv, kv_bool, kv_int};
use crate::workload::shape::{Rng, mix, unit};

/// OTel semantic conventions' advice for `http.server.request.duration`.
const DURATION_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The SDKs' default explicit bucket boundaries (used for sizes and anything without advice).
const DEFAULT_BOUNDS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0, 10000.0,
];
const GC_BOUNDS: &[f64] = &[0.01, 0.1, 1.0, 10.0];
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

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

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Monotonic cumulative sum.
    Counter,
    /// Non-monotonic cumulative sum (UpDownCounter).
    UpDown,
    Gauge,
    Histogram(&'static [f64]),
}

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
    Histogram(Box<Hist>),
}

/// A cumulative explicit-bucket histogram of log-normally distributed observations.
#[derive(Debug)]
struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    per_round: f64,
    /// ln of the median observation, and the log-space spread.
    mu: f64,
    sigma: f64,
    /// Share of observations that are exactly 0 (e.g. request bodies of GETs).
    zeros: f64,
    /// Chance that a round with observations records an exemplar.
    exemplar_p: f64,
    /// Exemplars are recorded within this many ms before the export.
    window_ms: u64,
    /// The exemplar recorded this round, if any: (value, ms before the export, trace seed).
    exemplar: Option<(f64, u64, u64)>,
}

#[derive(Debug)]
struct Point {
    attrs: Vec<KeyValue>,
    seed: u64,
    model: Model,
}

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

fn ms_to_ns(ms: i64) -> u64 {
    (ms.max(0) as u64).saturating_mul(1_000_000)
}

impl Point {
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

    fn histogram(&self, start_ns: u64, time_ms: i64) -> HistogramDataPoint {
        let Model::Histogram(h) = &self.model else {
            return HistogramDataPoint::default();
        };
        let exemplars = h
            .exemplar
            .map(|(value, before_ms, trace_seed)| Exemplar {
                filtered_attributes: vec![],
                time_unix_nano: ms_to_ns(time_ms - before_ms as i64),
                span_id: mix(trace_seed ^ 1).to_be_bytes().to_vec(),
                trace_id: [mix(trace_seed).to_be_bytes(), mix(trace_seed ^ 2).to_be_bytes()].concat(),
                value: Some(exemplar::Value::AsDouble(value)),
            })
            .into_iter()
            .collect();
        HistogramDataPoint {
            attributes: self.attrs.clone(),
            start_time_unix_nano: start_ns,
            time_unix_nano: ms_to_ns(time_ms),
            count: h.count,
            sum: Some(h.sum),
            bucket_counts: h.counts.clone(),
            explicit_bounds: h.bounds.to_vec(),
            exemplars,
            flags: 0,
            min: (h.count > 0).then_some(h.min),
            max: (h.count > 0).then_some(h.max),
        }
    }
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26; error below 1.5e-7).
fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// CDF at `x` of a mix of `zeros` exact zeros and a log-normal(mu, sigma).
fn cdf(x: f64, mu: f64, sigma: f64, zeros: f64) -> f64 {
    if x < 0.0 {
        0.0
    } else if x == 0.0 {
        zeros
    } else {
        zeros + (1.0 - zeros) * normal_cdf((x.ln() - mu) / sigma)
    }
}

/// Distribution of a histogram's observations.
#[derive(Debug, Clone, Copy)]
struct HistShape {
    bounds: &'static [f64],
    median: f64,
    sigma: f64,
    zeros: f64,
}

impl Hist {
    fn new(shape: HistShape, per_round: f64, age_rounds: f64, exemplar_p: f64, window_ms: u64) -> Self {
        let HistShape {
            bounds,
            median,
            sigma,
            zeros,
        } = shape;
        let mu = median.max(1e-9).ln();
        // Met mid-life: the expected counts of the process' history so far.
        let n = (per_round * age_rounds).floor();
        let mut counts = vec![0u64; bounds.len() + 1];
        let mut prev = 0u64;
        for (k, &b) in bounds.iter().enumerate() {
            let cum = ((n * cdf(b, mu, sigma, zeros)).floor() as u64).max(prev);
            counts[k] = cum - prev;
            prev = cum;
        }
        counts[bounds.len()] = (n as u64).saturating_sub(prev);
        let count = n as u64;
        Self {
            bounds,
            counts,
            count,
            sum: n * (1.0 - zeros) * (mu + sigma * sigma / 2.0).exp(),
            min: if zeros > 0.0 { 0.0 } else { (mu - 3.0 * sigma).exp() },
            max: (mu + 3.0 * sigma).exp(),
            per_round,
            mu,
            sigma,
            zeros,
            exemplar_p,
            window_ms,
            exemplar: None,
        }
    }

    fn advance(&mut self, seed: u64, round: u64) {
        self.exemplar = None;
        let n = (self.per_round * (0.5 + unit(seed, round, SALT_COUNT)) + unit(seed, round, SALT_ROUND)).floor();
        if n < 1.0 {
            return;
        }
        // Latency drifts a little from round to round.
        let mu = self.mu + 0.3 * (unit(seed, round, SALT_SHIFT) - 0.5);
        let mut prev = 0u64;
        let total = n as u64;
        for (k, &b) in self.bounds.iter().enumerate() {
            let u = unit(seed, round, SALT_BUCKET + k as u64);
            let cum = ((n * cdf(b, mu, self.sigma, self.zeros) + u).floor() as u64).clamp(prev, total);
            self.counts[k] += cum - prev;
            prev = cum;
        }
        let last = self.bounds.len();
        self.counts[last] += total - prev;
        self.count += total;
        let mean = (1.0 - self.zeros) * (mu + self.sigma * self.sigma / 2.0).exp();
        self.sum += n * mean * (0.8 + 0.4 * unit(seed, round, SALT_SUM));
        let low = if self.zeros > 0.0 {
            0.0
        } else {
            (mu - 2.5 * self.sigma).exp() * (0.5 + unit(seed, round, SALT_MIN))
        };
        self.min = self.min.min(low);
        self.max = self
            .max
            .max((mu + 2.5 * self.sigma).exp() * (0.5 + unit(seed, round, SALT_MAX)));
        if unit(seed, round, SALT_EXEMPLAR) < self.exemplar_p {
            let z = 3.0 * (unit(seed, round, SALT_EXEMPLAR_AT) - 0.5);
            let value = (mu + self.sigma * z).exp();
            let before_ms = (unit(seed, round, SALT_EXEMPLAR_AT ^ 0xFF) * self.window_ms as f64) as u64;
            self.exemplar = Some((value, before_ms, mix(seed ^ round.wrapping_mul(0x9E37))));
        }
    }
}

/// Shapes of the histograms used below.
fn duration(median: f64) -> HistShape {
    HistShape {
        bounds: DURATION_BOUNDS,
        median,
        sigma: 0.9,
        zeros: 0.0,
    }
}

fn size(median: f64, zeros: f64) -> HistShape {
    HistShape {
        bounds: DEFAULT_BOUNDS,
        median,
        sigma: 1.1,
        zeros,
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
    Walk {
        lo: f64,
        hi: f64,
        step: f64,
    },
    Constant(f64),
    /// Observations per second and their distribution.
    Observe(f64, HistShape),
}

impl Builder {
    fn scope(&mut self, name: &'static str, version: &'static str) -> usize {
        self.scopes.push((name, version));
        self.scopes.len() - 1
    }

    fn rounds_per_second(&self) -> f64 {
        self.interval_ms as f64 / 1000.0
    }

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

    /// (method, status code, requests per second) of every route × method × status served.
    fn http_mix(&mut self, d: &Deployment) -> Vec<(&'static str, &'static str, i64, f64)> {
        let mut out = vec![];
        for &route in &d.routes {
            let rps = (self.rng.range_f64(-1.5, 2.0) * std::f64::consts::LN_10).exp();
            let mut methods = vec![if route.ends_with("checkout") || route.ends_with("capture") {
                "POST"
            } else {
                "GET"
            }];
            if route.contains('{') && self.rng.chance(0.4) {
                methods.push(*self.rng.pick(&["PUT", "DELETE", "PATCH"]));
            } else if route == "/api/v1/orders" || route == "/api/v1/cart" {
                methods.push("POST");
            }
            for (mi, &method) in methods.iter().enumerate() {
                let share = if mi == 0 { 1.0 } else { 0.2 };
                let ok = if method == "POST" { 201 } else { 200 };
                out.push((route, method, ok, rps * share));
                for &(code, p, err_share) in &[
                    (304, 0.1, 0.05),
                    (400, 0.2, 0.01),
                    (401, 0.1, 0.005),
                    (404, 0.25, 0.02),
                    (500, 0.25, 0.002),
                    (503, 0.05, 0.001),
                ] {
                    if (code != 304 || method == "GET") && self.rng.chance(p) {
                        out.push((route, method, code, rps * share * err_share));
                    }
                }
            }
        }
        out
    }

    fn http(&mut self, d: &Deployment, pod: &Pod) {
        let mix = self.http_mix(d);
        let latency = self.rng.range_f64(0.004, 0.15);
        let attrs = |route: &'static str, method: &'static str, code: i64, go: bool| {
            let mut a = vec![
                kv("http.request.method", method),
                kv_int("http.response.status_code", code),
                kv("http.route", route),
                kv("network.protocol.name", "http"),
                kv("network.protocol.version", "1.1"),
                kv("url.scheme", "http"),
            ];
            if go {
                a.push(kv("server.address", pod.ip.as_str()));
                a.push(kv_int("server.port", 8080));
            }
            if code >= 500 {
                a.push(kv("error.type", code.to_string()));
            }
            a
        };
        let go = d.runtime == Runtime::Go;
        let scope = if go {
            self.scope(
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.54.0",
            )
        } else {
            self.scope("io.opentelemetry.tomcat-10.0", "2.10.0-alpha")
        };
        let durations = mix
            .iter()
            .map(|&(r, m, c, rps)| {
                let median = if c == 304 || c == 401 || c == 404 {
                    latency * 0.2
                } else {
                    latency
                };
                (attrs(r, m, c, go), Spec::Observe(rps, duration(median)))
            })
            .collect();
        self.metric(
            scope,
            "http.server.request.duration",
            "Duration of HTTP server requests.",
            "s",
            Kind::Histogram(DURATION_BOUNDS),
            false,
            durations,
        );
        if go {
            let requests = mix
                .iter()
                .map(|&(r, m, c, rps)| {
                    let zeros = if m == "GET" || m == "DELETE" { 1.0 } else { 0.05 };
                    (attrs(r, m, c, go), Spec::Observe(rps, size(350.0, zeros)))
                })
                .collect();
            self.metric(
                scope,
                "http.server.request.body.size",
                "Size of HTTP server request bodies.",
                "By",
                Kind::Histogram(DEFAULT_BOUNDS),
                false,
                requests,
            );
            let responses = mix
                .iter()
                .map(|&(r, m, c, rps)| {
                    let median = if c == 200 { 1800.0 } else { 90.0 };
                    (attrs(r, m, c, go), Spec::Observe(rps, size(median, 0.0)))
                })
                .collect();
            self.metric(
                scope,
                "http.server.response.body.size",
                "Size of HTTP server response bodies.",
                "By",
                Kind::Histogram(DEFAULT_BOUNDS),
                false,
                responses,
            );
        } else {
            self.metric(
                scope,
                "http.server.active_requests",
                "Number of active HTTP server requests.",
                "{request}",
                Kind::UpDown,
                true,
                vec![(
                    vec![kv("http.request.method", "GET"), kv("url.scheme", "http")],
                    Spec::Walk {
                        lo: 0.0,
                        hi: 12.0,
                        step: 3.0,
                    },
                )],
            );
            let hikari = self.scope("io.opentelemetry.hikaricp-3.0", "2.10.0-alpha");
            let pool = || kv("pool.name", "HikariPool-1");
            self.metric(
                hikari,
                "db.client.connections.usage",
                "The number of connections that are currently in state described by the state attribute",
                "{connection}",
                Kind::UpDown,
                true,
                vec![
                    (
                        vec![pool(), kv("state", "idle")],
                        Spec::Walk {
                            lo: 2.0,
                            hi: 10.0,
                            step: 2.0,
                        },
                    ),
                    (
                        vec![pool(), kv("state", "used")],
                        Spec::Walk {
                            lo: 0.0,
                            hi: 8.0,
                            step: 2.0,
                        },
                    ),
                ],
            );
            for (name, description, v) in [
                (
                    "db.client.connections.max",
                    "The maximum number of open connections allowed",
                    10.0,
                ),
                (
                    "db.client.connections.idle.min",
                    "The minimum number of idle open connections allowed",
                    10.0,
                ),
                (
                    "db.client.connections.pending_requests",
                    "The number of pending requests for an open connection, cumulative for the entire pool",
                    0.0,
                ),
            ] {
                self.metric(
                    hikari,
                    name,
                    description,
                    "{connection}",
                    Kind::UpDown,
                    true,
                    vec![(vec![pool()], Spec::Constant(v))],
                );
            }
            let queries = mix.iter().map(|m| m.3).sum::<f64>() * 2.0;
            for (name, description, median) in [
                (
                    "db.client.connections.use_time",
                    "The time between borrowing a connection and returning it to the pool",
                    8.0,
                ),
                (
                    "db.client.connections.wait_time",
                    "The time it took to obtain an open connection from the pool",
                    0.3,
                ),
            ] {
                self.metric(
                    hikari,
                    name,
                    description,
                    "ms",
                    Kind::Histogram(DEFAULT_BOUNDS),
                    false,
                    vec![(vec![pool()], Spec::Observe(queries, size(median, 0.0)))],
                );
            }
        }
    }

    fn worker(&mut self, d: &Deployment) {
        let scope = match d.runtime {
            Runtime::Go => self.scope("github.com/IBM/sarama/otelsarama", "0.54.0"),
            Runtime::Java => self.scope("io.opentelemetry.kafka-clients-2.6", "2.10.0-alpha"),
            Runtime::Python => self.scope("opentelemetry.instrumentation.confluent_kafka", "0.48b0"),
        };
        let base = |d: &Deployment| {
            vec![
                kv("messaging.system", "kafka"),
                kv("messaging.destination.name", d.topic),
                kv("messaging.consumer.group.name", d.name.as_str()),
                kv("messaging.operation.name", "process"),
            ]
        };
        let rate = self.rng.range_f64(0.5, 80.0);
        let latency = self.rng.range_f64(0.002, 0.5);
        let mut failed = base(d);
        failed.push(kv("error.type", "TimeoutException"));
        self.metric(
            scope,
            "messaging.process.duration",
            "Duration of processing operation.",
            "s",
            Kind::Histogram(DURATION_BOUNDS),
            false,
            vec![
                (base(d), Spec::Observe(rate, duration(latency))),
                (failed, Spec::Observe(rate * 0.003, duration(latency * 4.0))),
            ],
        );
        let partitions = self.rng.range(1, 4);
        let consumed = (0..partitions)
            .map(|p| {
                let mut a = base(d);
                a.push(kv("messaging.destination.partition.id", p.to_string()));
                (a, Spec::Count(rate / partitions as f64))
            })
            .collect();
        self.metric(
            scope,
            "messaging.client.consumed.messages",
            "Number of messages that were delivered to the application.",
            "{message}",
            Kind::Counter,
            true,
            consumed,
        );
        let app = self.scope("app", "");
        let lag = (0..partitions)
            .map(|p| {
                (
                    vec![
                        kv("messaging.destination.name", d.topic),
                        kv("messaging.destination.partition.id", p.to_string()),
                    ],
                    Spec::Walk {
                        lo: 0.0,
                        hi: 5000.0,
                        step: 300.0,
                    },
                )
            })
            .collect();
        self.metric(
            app,
            "app.consumer.lag",
            "Messages not yet consumed, per partition.",
            "{message}",
            Kind::Gauge,
            true,
            lag,
        );
    }

    fn go_runtime(&mut self) {
        let s = self.scope("go.opentelemetry.io/contrib/instrumentation/runtime", "0.54.0");
        let heap = self.rng.range_f64(20e6, 400e6);
        let walk = |lo: f64, hi: f64| Spec::Walk {
            lo,
            hi,
            step: (hi - lo) * 0.1,
        };
        self.metric(
            s,
            "go.memory.used",
            "Memory used by the Go runtime.",
            "By",
            Kind::UpDown,
            true,
            vec![
                (vec![kv("go.memory.type", "stack")], walk(400e3, 2e6)),
                (vec![kv("go.memory.type", "other")], walk(heap * 0.6, heap * 1.4)),
            ],
        );
        let memory = [
            (
                "go.memory.limit",
                "Go runtime memory limit configured by the user, if a limit exists.",
                "By",
                Spec::Constant(536_870_912.0),
            ),
            (
                "go.memory.gc.goal",
                "Heap size target for the end of the GC cycle.",
                "By",
                walk(heap, heap * 2.0),
            ),
            (
                "go.goroutine.count",
                "Count of live goroutines.",
                "{goroutine}",
                walk(20.0, 400.0),
            ),
            (
                "go.processor.limit",
                "The number of OS threads that can execute user-level Go code simultaneously.",
                "{thread}",
                Spec::Constant(2.0),
            ),
            (
                "go.config.gogc",
                "Heap size target percentage configured by the user, otherwise 100.",
                "%",
                Spec::Constant(100.0),
            ),
        ];
        for (name, description, unit, spec) in memory {
            self.metric(s, name, description, unit, Kind::UpDown, true, vec![(vec![], spec)]);
        }
        let alloc_rate = self.rng.range_f64(1e5, 5e7);
        self.metric(
            s,
            "go.memory.allocated",
            "Memory allocated to the heap by the application.",
            "By",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(alloc_rate))],
        );
        self.metric(
            s,
            "go.memory.allocations",
            "Count of allocations to the heap by the application.",
            "{allocation}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(alloc_rate / 180.0))],
        );
        let schedules = self.rng.range_f64(50.0, 3000.0);
        self.metric(
            s,
            "go.schedule.duration",
            "The time goroutines have spent in the scheduler in a runnable state before actually running.",
            "s",
            Kind::Histogram(DEFAULT_BOUNDS),
            false,
            vec![(
                vec![],
                Spec::Observe(
                    schedules,
                    HistShape {
                        bounds: DEFAULT_BOUNDS,
                        median: 2e-6,
                        sigma: 1.5,
                        zeros: 0.3,
                    },
                ),
            )],
        );
    }

    fn jvm(&mut self) {
        let s = self.scope("io.opentelemetry.runtime-telemetry-java8", "2.10.0-alpha");
        const POOLS: &[(&str, &str, f64, bool)] = &[
            ("G1 Eden Space", "heap", 300e6, false),
            ("G1 Old Gen", "heap", 900e6, true),
            ("G1 Survivor Space", "heap", 30e6, false),
            ("Metaspace", "non_heap", 120e6, false),
            ("CodeHeap 'non-nmethods'", "non_heap", 3e6, true),
            ("CodeHeap 'profiled nmethods'", "non_heap", 30e6, true),
            ("CodeHeap 'non-profiled nmethods'", "non_heap", 20e6, true),
            ("Compressed Class Space", "non_heap", 15e6, true),
        ];
        let pool_attrs = |name: &str, ty: &str| vec![kv("jvm.memory.pool.name", name), kv("jvm.memory.type", ty)];
        let walk = |v: f64| Spec::Walk {
            lo: v * 0.3,
            hi: v,
            step: v * 0.08,
        };
        let used = POOLS.iter().map(|&(n, t, v, _)| (pool_attrs(n, t), walk(v))).collect();
        self.metric(
            s,
            "jvm.memory.used",
            "Measure of memory used.",
            "By",
            Kind::UpDown,
            true,
            used,
        );
        let committed = POOLS
            .iter()
            .map(|&(n, t, v, _)| (pool_attrs(n, t), Spec::Constant(v * 1.1)))
            .collect();
        self.metric(
            s,
            "jvm.memory.committed",
            "Measure of memory committed.",
            "By",
            Kind::UpDown,
            true,
            committed,
        );
        let limit = POOLS
            .iter()
            .filter(|p| p.3)
            .map(|&(n, t, v, _)| (pool_attrs(n, t), Spec::Constant(v * 2.0)))
            .collect();
        self.metric(
            s,
            "jvm.memory.limit",
            "Measure of max obtainable memory.",
            "By",
            Kind::UpDown,
            true,
            limit,
        );
        let after_gc = POOLS
            .iter()
            .filter(|p| p.1 == "heap")
            .map(|&(n, t, v, _)| (pool_attrs(n, t), walk(v * 0.4)))
            .collect();
        self.metric(
            s,
            "jvm.memory.used_after_last_gc",
            "Measure of memory used, as measured after the most recent garbage collection event on this pool.",
            "By",
            Kind::UpDown,
            true,
            after_gc,
        );
        let gc = |action: &str, name: &str| vec![kv("jvm.gc.action", action), kv("jvm.gc.name", name)];
        let gc_shape = |median| HistShape {
            bounds: GC_BOUNDS,
            median,
            sigma: 0.7,
            zeros: 0.0,
        };
        self.metric(
            s,
            "jvm.gc.duration",
            "Duration of JVM garbage collection actions.",
            "s",
            Kind::Histogram(GC_BOUNDS),
            false,
            vec![
                (
                    gc("end of minor GC", "G1 Young Generation"),
                    Spec::Observe(0.2, gc_shape(0.012)),
                ),
                (
                    gc("end of major GC", "G1 Old Generation"),
                    Spec::Observe(0.001, gc_shape(0.4)),
                ),
            ],
        );
        let threads = [
            (true, "runnable", 12.0),
            (true, "waiting", 20.0),
            (true, "timed_waiting", 15.0),
            (false, "runnable", 3.0),
            (false, "waiting", 2.0),
            (false, "timed_waiting", 4.0),
            (false, "blocked", 1.0),
        ]
        .iter()
        .map(|&(daemon, state, n)| {
            (
                vec![kv_bool("jvm.thread.daemon", daemon), kv("jvm.thread.state", state)],
                Spec::Walk {
                    lo: 0.0,
                    hi: n * 2.0,
                    step: 2.0,
                },
            )
        })
        .collect();
        self.metric(
            s,
            "jvm.thread.count",
            "Number of executing platform threads.",
            "{thread}",
            Kind::UpDown,
            true,
            threads,
        );
        let classes = self.rng.range_f64(12_000.0, 30_000.0);
        self.metric(
            s,
            "jvm.class.loaded",
            "Number of classes loaded since JVM start.",
            "{class}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(0.02))],
        );
        self.metric(
            s,
            "jvm.class.unloaded",
            "Number of classes unloaded since JVM start.",
            "{class}",
            Kind::Counter,
            true,
            vec![(vec![], Spec::Count(0.001))],
        );
        self.metric(
            s,
            "jvm.class.count",
            "Number of classes currently loaded.",
            "{class}",
            Kind::UpDown,
            true,
            vec![(
                vec![],
                Spec::Walk {
                    lo: classes,
                    hi: classes + 50.0,
                    step: 2.0,
                },
            )],
        );
        let cpu = self.rng.range_f64(0.01, 1.2);
        self.metric(
            s,
            "jvm.cpu.time",
            "CPU time used by the process as reported by the JVM.",
            "s",
            Kind::Counter,
            false,
            vec![(vec![], Spec::Seconds(cpu))],
        );
        self.metric(
            s,
            "jvm.cpu.count",
            "Number of processors available to the Java virtual machine.",
            "{cpu}",
            Kind::UpDown,
            true,
            vec![(vec![], Spec::Constant(2.0))],
        );
        self.metric(
            s,
            "jvm.cpu.recent_utilization",
            "Recent CPU utilization for the process as reported by the JVM.",
            "1",
            Kind::Gauge,
            false,
            vec![(
                vec![],
                Spec::Walk {
                    lo: 0.0,
                    hi: (cpu / 2.0).min(1.0),
                    step: 0.05,
                },
            )],
        );
    }

    fn cpython(&mut self) {
        let s = self.scope("opentelemetry.instrumentation.system_metrics", "0.48b0");
        let rss = self.rng.range_f64(60e6, 600e6);
        let walk = |lo: f64, hi: f64| Spec::Walk {
            lo,
            hi,
            step: (hi - lo) * 0.05,
        };
        self.metric(
            s,
            "process.runtime.cpython.memory",
            "Runtime cpython memory",
            "By",
            Kind::UpDown,
            true,
            vec![
                (vec![kv("type", "rss")], walk(rss * 0.9, rss)),
                (vec![kv("type", "vms")], walk(rss * 3.0, rss * 3.1)),
            ],
        );
        let cpu = self.rng.range_f64(0.01, 0.9);
        self.metric(
            s,
            "process.runtime.cpython.cpu_time",
            "Runtime cpython CPU time",
            "s",
            Kind::Counter,
            false,
            vec![
                (vec![kv("type", "user")], Spec::Seconds(cpu * 0.85)),
                (vec![kv("type", "system")], Spec::Seconds(cpu * 0.15)),
            ],
        );
        let gc = (0..3)
            .map(|g| {
                (
                    vec![kv("count", g.to_string())],
                    Spec::Count(5.0 / (1 << (3 * g)) as f64),
                )
            })
            .collect();
        self.metric(
            s,
            "process.runtime.cpython.gc_count",
            "Runtime cpython GC count",
            "By",
            Kind::Counter,
            true,
            gc,
        );
        self.metric(
            s,
            "process.runtime.cpython.thread_count",
            "Runtime active threads count",
            "{thread}",
            Kind::UpDown,
            true,
            vec![(vec![], walk(4.0, 16.0))],
        );
        self.metric(
            s,
            "process.runtime.cpython.context_switches",
            "Runtime context switches",
            "{switch}",
            Kind::Counter,
            true,
            vec![
                (vec![kv("type", "voluntary")], Spec::Count(120.0)),
                (vec![kv("type", "involuntary")], Spec::Count(6.0)),
            ],
        );
        self.metric(
            s,
            "process.runtime.cpython.cpu.utilization",
            "Runtime CPU utilization",
            "1",
            Kind::Gauge,
            false,
            vec![(vec![], walk(0.0, (cpu / 2.0).min(1.0)))],
        );
    }
}
