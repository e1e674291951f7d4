//! End-to-end tests of the OTLP metrics translation: requests built with the generated
//! `opentelemetry-proto` types, checked against what Prometheus's OTLP receiver stores.

use proptest::prelude::*;
use prost::Message;
use tributary_proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tributary_proto::otlp::metrics::v1::exponential_histogram_data_point::Buckets;
use tributary_proto::otlp::metrics::v1::summary_data_point::ValueAtQuantile;
use tributary_proto::otlp::metrics::v1::{
    Exemplar as OtlpExemplar, ExponentialHistogram, Gauge, Histogram, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_storage::signals::BucketSpan;
use tributary_storage::types::is_stale_nan;

use super::*;

const LIMITS: Limits = Limits {
    max_labels_per_series: 30,
    max_label_name_bytes: 1024,
    max_label_value_bytes: 2048,
};
/// 2023-11-14T22:13:20Z in nanoseconds, and in milliseconds.
const T0: u64 = 1_700_000_000_000_000_000;
const MS0: i64 = 1_700_000_000_000;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        key_strindex: 0,
    }
}

fn kvs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.to_string()),
    }
}

fn opts() -> Options<'static> {
    Options {
        promote_resource_attributes: &[],
        add_suffixes: true,
        limits: LIMITS,
    }
}

fn resource(attrs: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: attrs,
            dropped_attributes_count: 0,
            entity_refs: vec![],
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "lib".to_string(),
                version: "1.0".to_string(),
                attributes: vec![],
                dropped_attributes_count: 0,
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

fn request(attrs: &[(&str, &str)], metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![resource(kvs(attrs), metrics)],
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.to_string(),
        description: format!("{name} help"),
        unit: unit.to_string(),
        metadata: vec![],
        data: Some(data),
    }
}

fn num(ts: u64, v: f64, attrs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: kvs(attrs),
        time_unix_nano: ts,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    metric(name, unit, Data::Gauge(Gauge { data_points: points }))
}

fn sum(name: &str, unit: &str, monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        unit,
        Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        }),
    )
}

fn hist_point(ts: u64, bounds: &[f64], counts: &[u64], sum: Option<f64>) -> HistogramDataPoint {
    HistogramDataPoint {
        time_unix_nano: ts,
        count: counts.iter().sum(),
        sum,
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn histogram(name: &str, unit: &str, temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    metric(
        name,
        unit,
        Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        }),
    )
}

fn exemplar(value: f64, trace: u8, attrs: &[(&str, &str)]) -> OtlpExemplar {
    OtlpExemplar {
        filtered_attributes: kvs(attrs),
        time_unix_nano: T0 + 500_000_000,
        span_id: vec![0xAB; 8],
        trace_id: vec![trace; 16],
        value: Some(exemplar::Value::AsDouble(value)),
    }
}

fn pairs(l: &Labels) -> Vec<(&str, &str)> {
    l.iter().map(|l| (l.name, l.value)).collect()
}

fn series<'a>(t: &'a Translated, name: &str) -> Vec<&'a Series> {
    t.series
        .iter()
        .filter(|s| s.labels.metric_name() == Some(name))
        .collect()
}

fn one<'a>(t: &'a Translated, name: &str) -> &'a Series {
    let s = series(t, name);
    assert_eq!(s.len(), 1, "want one {name} series in {:#?}", t.series);
    s[0]
}

fn values(s: &Series) -> Vec<(i64, f64)> {
    s.samples.iter().map(|s| (s.timestamp, s.value)).collect()
}

/// What every translation must guarantee, whatever the input.
fn assert_invariants(t: &Translated) {
    let label_sets = t
        .series
        .iter()
        .map(|s| &s.labels)
        .chain(t.histograms.iter().map(|h| &h.labels))
        .chain(t.exemplars.iter().map(|e| &e.labels));
    for l in label_sets {
        let v = l.clone().into_vec();
        assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "unsorted or duplicate: {l}"
        );
        assert!(v.iter().all(|l| !l.value.is_empty()), "empty value: {l}");
        assert!(l.metric_name().is_some(), "no __name__: {l}");
        assert!(l.get(CLUSTER).is_some(), "no cluster: {l}");
        assert!(
            l.get("k8s_cluster_name").is_none() || l.metric_name() == Some(TARGET_INFO),
            "{l}"
        );
        assert!(v.len() <= LIMITS.max_labels_per_series);
        for label in v {
            let valid = label.name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && label.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            assert!(valid, "invalid label name {:?}", label.name);
        }
        let name = l.metric_name().unwrap_or_default();
        assert!(
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "invalid metric name {name:?}"
        );
    }
    for s in &t.series {
        assert!(!s.samples.is_empty());
        assert!(s.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }
    for h in &t.histograms {
        assert!(!h.samples.is_empty());
        assert!(h.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        for s in &h.samples {
            assert!((-4..=8).contains(&s.schema));
            let spans: u32 = s.positive_spans.iter().map(|s| s.length).sum();
            assert_eq!(spans as usize, s.positive_buckets.len());
            let spans: u32 = s.negative_spans.iter().map(|s| s.length).sum();
            assert_eq!(spans as usize, s.negative_buckets.len());
        }
    }
    assert!(t.rejected_points <= t.points);
    assert!(t.reasons.len() <= MAX_REASONS);
    let mut keys: Vec<_> = t.metadata.iter().map(|m| (&m.cluster, &m.metric)).collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "metadata not unique per (cluster, family)");
}

/// A summary point at `T0`: 100 observations summing to 12.5, p50 0.1 and p99 0.9.
fn summary_p50_p99() -> SummaryDataPoint {
    let q = |quantile, value| ValueAtQuantile { quantile, value };
    SummaryDataPoint {
        time_unix_nano: T0,
        count: 100,
        sum: 12.5,
        quantile_values: vec![q(0.5, 0.1), q(0.99, 0.9)],
        ..Default::default()
    }
}

/// A head that knows a fixed set of raw keys.
struct Knows(std::collections::HashSet<RawKey>);

impl KnownSeries for Knows {
    fn is_known(&self, key: RawKey) -> bool {
        self.0.contains(&key)
    }
}

/// The float series a translation stands for once its known samples are put back under the
/// labels `labels_of` gives their keys: what the head ends up holding.
/// Values as bits, so staleness markers (NaN) compare equal.
fn resolved(
    t: &Translated,
    labels_of: &std::collections::HashMap<RawKey, Labels>,
) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for (key, sample) in &t.known {
        out.entry(labels_of[key].clone()).or_default().push(*sample);
    }
    for s in &t.series {
        out.entry(s.labels.clone()).or_default().extend(&s.samples);
    }
    out.into_iter()
        .map(|(labels, mut samples)| {
            sort_dedup_samples(&mut samples);
            (
                labels,
                samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect(),
            )
        })
        .collect()
}

/// What a translation stores, without the raw keys (which depend on attribute order, labels
/// do not).
fn stored(mut t: Translated) -> Translated {
    t.keys.clear();
    t
}

/// The fast path agrees with the full one: translating `req` again once the head knows every
/// key the first translation taught it stores the same series and samples (and the same
/// histograms, exemplars, metadata and counts), building labels only for what it cannot know
/// (`target_info`, points with exemplars). Returns how many samples took the fast path.
fn assert_fast_path_agrees(req: &ExportMetricsServiceRequest, ctx: &ClusterContext, o: &Options<'_>) -> usize {
    let full = translate(req, ctx, o);
    assert!(full.known.is_empty());
    assert_eq!(full.keys.len(), full.series.len());
    let labels_of: std::collections::HashMap<RawKey, Labels> = full
        .keys
        .iter()
        .zip(&full.series)
        .filter_map(|(k, s)| k.map(|k| (k, s.labels.clone())))
        .collect();
    let head = Knows(labels_of.keys().copied().collect());
    let fast = translate_known(req, ctx, o, &head);
    assert_eq!(resolved(&fast, &labels_of), resolved(&full, &labels_of));
    // Debug forms: staleness markers (NaN) defeat PartialEq.
    assert_eq!(
        format!("{:?}", (&fast.histograms, &fast.exemplars, &fast.metadata)),
        format!("{:?}", (&full.histograms, &full.exemplars, &full.metadata))
    );
    assert_eq!(
        (fast.points, fast.rejected_points, &fast.reasons),
        (full.points, full.rejected_points, &full.reasons)
    );
    fast.known.len()
}

#[test]
fn points_of_known_series_skip_their_labels_and_store_the_same_samples() {
    let mut with_exemplar = hist_point(T0 + 1_000_000_000, &[0.5, 1.0], &[1, 2, 3], Some(4.0));
    with_exemplar.exemplars = vec![exemplar(0.7, 0x01, &[])];
    let mut hist = hist_point(T0, &[0.005, 1.0, 10.0], &[1, 2, 3, 4], Some(42.0));
    hist.attributes = kvs(&[("http.route", "/a")]);
    let mut stale = num(T0 + 2_000_000_000, 0.0, &[("state", "used")]);
    stale.flags = DataPointFlags::NoRecordedValueMask as u32;
    let summary = summary_p50_p99();
    let req = request(
        &[
            ("service.name", "api"),
            ("service.instance.id", "i-1"),
            ("host.name", "h"),
        ],
        vec![
            gauge(
                "memory.usage",
                "By",
                vec![
                    num(T0, 1.0, &[("state", "used")]),
                    stale,
                    num(T0, 2.0, &[("state", "free")]),
                ],
            ),
            sum(
                "requests",
                "",
                true,
                CUMULATIVE,
                vec![
                    num(T0, 5.0, &[]),
                    num(T0 + 1_000_000_000, 6.0, &[]),
                    num(T0 + 1_000_000_000, 7.0, &[]),
                ],
            ),
            histogram(
                "http.server.request.duration",
                "s",
                CUMULATIVE,
                vec![hist, with_exemplar],
            ),
            metric(
                "rpc.duration",
                "ms",
                Data::Summary(Summary {
                    data_points: vec![summary],
                }),
            ),
        ],
    );
    // Gauge 3, sum 3 (one timestamp twice: the head keeps the last, as the full path does),
    // histograms 6 (count, sum, 3 buckets, +Inf) and 5 (the point with an exemplar), summary 4
    // (sum, count, 2 quantiles).
    assert_eq!(assert_fast_path_agrees(&req, &header("c"), &opts()), 21);
    // What still builds labels once the head knows everything: target_info (and, for the
    // exemplar, its bucket's labels, which `assert_fast_path_agrees` compared).
    let mut knows = Knows(Default::default());
    let full = translate(&req, &header("c"), &opts());
    knows.0.extend(full.keys.iter().flatten());
    let again = translate_known(&req, &header("c"), &opts(), &knows);
    let built: Vec<&str> = again.series.iter().filter_map(|s| s.labels.metric_name()).collect();
    assert_eq!(built, [TARGET_INFO]);
    assert_eq!(again.exemplars.len(), 1);
    assert_eq!(again.exemplars[0].labels.get("le"), Some("1"));
    // Another cluster context never reuses a key: the same request under another header is
    // all new series.
    let elsewhere = translate_known(&req, &header("d"), &opts(), &knows);
    assert!(elsewhere.known.is_empty());
}

#[test]
fn gauge_resource_job_instance_scope_and_target_info() {
    let mut p2 = num(T0, 0.0, &[("state", "free")]);
    p2.value = Some(number_data_point::Value::AsInt(7));
    let req = request(
        &[
            ("service.name", "api"),
            ("service.namespace", "shop"),
            ("service.instance.id", "pod-1"),
            ("host.name", "node-a"),
        ],
        vec![gauge(
            "process.memory.usage",
            "By",
            vec![num(T0 + 1_999_999, 5.5, &[("state", "used")]), p2],
        )],
    );
    let t = translate(&req, &header("prod"), &opts());
    assert_invariants(&t);
    assert_eq!((t.points, t.rejected_points), (2, 0));
    assert!(t.reasons.is_empty() && t.message().is_empty());
    let used = &series(&t, "process_memory_usage_bytes")[1];
    assert_eq!(
        pairs(&used.labels),
        vec![
            ("__name__", "process_memory_usage_bytes"),
            ("cluster", "prod"),
            ("instance", "pod-1"),
            ("job", "shop/api"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0"),
            ("state", "used"),
        ]
    );
    // Nanoseconds are truncated to milliseconds.
    assert_eq!(values(used), vec![(MS0 + 1, 5.5)]);
    assert_eq!(values(series(&t, "process_memory_usage_bytes")[0]), vec![(MS0, 7.0)]);

    let info = one(&t, TARGET_INFO);
    assert_eq!(
        pairs(&info.labels),
        vec![
            ("__name__", "target_info"),
            ("cluster", "prod"),
            ("host_name", "node-a"),
            ("instance", "pod-1"),
            ("job", "shop/api"),
        ]
    );
    assert_eq!(values(info), vec![(MS0, 1.0), (MS0 + 1, 1.0)]);

    let md: Vec<_> = t
        .metadata
        .iter()
        .map(|m| (m.metric.as_str(), m.kind, m.unit.as_str()))
        .collect();
    assert_eq!(
        md,
        vec![
            ("process_memory_usage_bytes", MetricType::Gauge, "bytes"),
            ("target_info", MetricType::Gauge, "")
        ]
    );
    assert_eq!(t.metadata[0].help, "process.memory.usage help");
    assert_eq!(t.metadata[0].cluster, "prod");
}

#[test]
fn sums_become_counters_or_gauges() {
    let req = request(
        &[("service.name", "api")],
        vec![
            sum("http.requests", "{request}", true, CUMULATIVE, vec![num(T0, 10.0, &[])]),
            sum("db.connections", "1", false, CUMULATIVE, vec![num(T0, 3.0, &[])]),
            gauge("cpu.utilization", "1", vec![num(T0, 0.5, &[])]),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!(values(one(&t, "http_requests_total")), vec![(MS0, 10.0)]);
    // Non-monotonic sums are gauges: no _total, and (as in Prometheus) no _ratio either.
    assert_eq!(values(one(&t, "db_connections")), vec![(MS0, 3.0)]);
    assert_eq!(values(one(&t, "cpu_utilization_ratio")), vec![(MS0, 0.5)]);
    let md: Vec<_> = t.metadata.iter().map(|m| (m.metric.as_str(), m.kind)).collect();
    assert_eq!(
        md,
        vec![
            ("cpu_utilization_ratio", MetricType::Gauge),
            ("db_connections", MetricType::Gauge),
            ("http_requests_total", MetricType::Counter),
        ]
    );
    // Only service.name: target_info would carry nothing.
    assert!(series(&t, TARGET_INFO).is_empty());
}

#[test]
fn delta_sums_and_histograms_are_rejected_with_counts() {
    let req = request(
        &[("service.name", "api"), ("host.name", "h")],
        vec![
            sum(
                "requests",
                "",
                true,
                DELTA,
                vec![
                    num(T0, 1.0, &[]),
                    num(T0 + 1_000_000_000, 2.0, &[]),
                    num(T0, 3.0, &[("a", "b")]),
                ],
            ),
            histogram("latency", "s", DELTA, vec![hist_point(T0, &[1.0], &[1, 1], None); 2]),
            sum("ok", "", true, CUMULATIVE, vec![num(T0 + 5_000_000, 1.0, &[])]),
            sum("unspecified", "", true, 0, vec![num(T0, 1.0, &[])]),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!(t.points, 7);
    assert_eq!(t.rejected_points, 6);
    assert!(series(&t, "requests_total").is_empty() && series(&t, "latency_seconds_bucket").is_empty());
    assert_eq!(values(one(&t, "ok_total")), vec![(MS0 + 5, 1.0)]);
    assert_eq!(t.reasons.len(), 3, "{:?}", t.reasons);
    assert!(t.reasons[0].contains("\"requests\"") && t.reasons[0].contains(DELTA_REASON));
    assert!(t.reasons[1].contains("\"latency\"") && t.reasons[1].contains("deltatocumulative"));
    assert!(t.reasons[2].contains("not cumulative"));
    assert!(t.message().starts_with("rejected 6 of 7 data points"));
    // target_info only at the accepted point's time; no metadata for refused families.
    assert_eq!(values(one(&t, TARGET_INFO)), vec![(MS0 + 5, 1.0)]);
    assert_eq!(t.metadata.len(), 2);
}

#[test]
fn explicit_histogram_buckets_sum_count_and_exemplars() {
    let mut p = hist_point(T0, &[0.005, 1.0, 10.0], &[1, 2, 3, 4], Some(42.0));
    p.attributes = kvs(&[("http.route", "/a")]);
    p.exemplars = vec![
        exemplar(0.5, 0x01, &[("user.id", "u1")]),
        exemplar(100.0, 0x02, &[]),
        exemplar(0.005, 0x03, &[]),
    ];
    let req = request(
        &[("service.name", "api")],
        vec![histogram("http.server.request.duration", "s", CUMULATIVE, vec![p])],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    let base = "http_server_request_duration_seconds";
    let buckets: Vec<(&str, f64)> = series(&t, &format!("{base}_bucket"))
        .iter()
        .map(|s| (s.labels.get("le").unwrap_or_default(), s.samples[0].value))
        .collect();
    let mut want = vec![("+Inf", 10.0), ("0.005", 1.0), ("1", 3.0), ("10", 6.0)];
    want.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(buckets, want);
    assert_eq!(values(one(&t, &format!("{base}_sum"))), vec![(MS0, 42.0)]);
    assert_eq!(values(one(&t, &format!("{base}_count"))), vec![(MS0, 10.0)]);
    assert_eq!(one(&t, &format!("{base}_count")).labels.get("http_route"), Some("/a"));
    let md = &t.metadata[0];
    assert_eq!(
        (md.metric.as_str(), md.kind, md.unit.as_str()),
        (base, MetricType::Histogram, "seconds")
    );

    // Exemplars land on the first bucket covering their value.
    let by_le: Vec<(&str, Vec<f64>)> = t
        .exemplars
        .iter()
        .map(|e| {
            (
                e.labels.get("le").unwrap_or_default(),
                e.exemplars.iter().map(|x| x.value).collect(),
            )
        })
        .collect();
    assert_eq!(
        by_le,
        vec![("+Inf", vec![100.0]), ("0.005", vec![0.005]), ("1", vec![0.5])]
    );
    let ex = &t.exemplars[2].exemplars[0];
    assert_eq!(ex.timestamp, MS0 + 500);
    assert_eq!(
        pairs(&ex.labels),
        vec![
            ("span_id", "abababababababab"),
            ("trace_id", "01010101010101010101010101010101"),
            ("user_id", "u1"),
        ]
    );
}

#[test]
fn malformed_histograms_are_rejected() {
    let req = request(
        &[],
        vec![histogram(
            "h",
            "",
            CUMULATIVE,
            vec![
                hist_point(T0, &[1.0, 2.0], &[1, 1], None),
                hist_point(T0, &[2.0, 1.0], &[1, 1, 1], None),
                hist_point(T0, &[1.0, f64::INFINITY], &[1, 1, 1], None),
                // No buckets at all is allowed: just +Inf, count and sum.
                hist_point(T0, &[], &[], Some(1.0)),
            ],
        )],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!((t.points, t.rejected_points), (4, 3));
    assert!(t.reasons[0].contains("2 bucket counts for 2 explicit bounds"));
    assert!(t.reasons[1].contains("strictly increasing"));
    let inf = one(&t, "h_bucket");
    assert_eq!(inf.labels.get("le"), Some("+Inf"));
    assert_eq!(values(one(&t, "h_sum")), vec![(MS0, 1.0)]);
}

#[test]
fn summaries_become_quantile_series() {
    let p = summary_p50_p99();
    let mut odd = p.clone();
    odd.quantile_values.truncate(1);
    let req = request(
        &[],
        vec![
            metric("rpc.duration", "ms", Data::Summary(Summary { data_points: vec![p] })),
            // A summary whose own name ends in _bucket still gets `quantile`, not `le`.
            metric("queue.bucket", "", Data::Summary(Summary { data_points: vec![odd] })),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    let q: Vec<(&str, f64)> = series(&t, "rpc_duration_milliseconds")
        .iter()
        .map(|s| (s.labels.get("quantile").unwrap_or_default(), s.samples[0].value))
        .collect();
    assert_eq!(q, vec![("0.5", 0.1), ("0.99", 0.9)]);
    assert_eq!(values(one(&t, "rpc_duration_milliseconds_sum")), vec![(MS0, 12.5)]);
    assert_eq!(values(one(&t, "rpc_duration_milliseconds_count")), vec![(MS0, 100.0)]);
    assert_eq!(one(&t, "queue_bucket").labels.get("quantile"), Some("0.5"));
    assert_eq!(one(&t, "queue_bucket").labels.get("le"), None);
    assert_eq!(t.metadata[1].kind, MetricType::Summary);
    assert_eq!(t.metadata[1].unit, "milliseconds");
}

#[test]
fn exponential_histograms_become_native_histograms() {
    let p = ExponentialHistogramDataPoint {
        attributes: kvs(&[("route", "/x")]),
        time_unix_nano: T0,
        count: 12,
        sum: Some(3.5),
        scale: 10,
        zero_count: 2,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 2, 3, 4],
        }),
        negative: Some(Buckets {
            offset: 4,
            bucket_counts: vec![1, 1],
        }),
        exemplars: vec![exemplar(1.001, 0x0f, &[])],
        ..Default::default()
    };
    let mut delta = p.clone();
    delta.time_unix_nano += 1;
    let req = request(
        &[("service.name", "api")],
        vec![
            metric(
                "http.server.request.duration",
                "s",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![p],
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
            metric(
                "delta.hist",
                "s",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![delta],
                    aggregation_temporality: DELTA,
                }),
            ),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!((t.points, t.rejected_points), (2, 1));
    assert!(
        t.series.is_empty(),
        "no float series, and no target_info without extra attributes"
    );
    assert_eq!(t.histograms.len(), 1);
    let h = &t.histograms[0];
    assert_eq!(
        pairs(&h.labels),
        vec![
            ("__name__", "http_server_request_duration_seconds"),
            ("cluster", "c"),
            ("job", "api"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0"),
            ("route", "/x"),
        ]
    );
    let s = &h.samples[0];
    assert_eq!(
        (s.timestamp, s.schema, s.count, s.sum, s.zero_count),
        (MS0, 8, 12.0, 3.5, 2.0)
    );
    // OTLP scale-10 buckets 0..=3 all fall in schema-8 bucket 1 (index (i >> 2) + 1).
    assert_eq!(s.positive_spans, vec![BucketSpan { offset: 1, length: 1 }]);
    assert_eq!(s.positive_buckets, vec![10.0]);
    // 4, 5 → (4 >> 2) + 1 = 2.
    assert_eq!(s.negative_spans, vec![BucketSpan { offset: 2, length: 1 }]);
    assert_eq!(s.negative_buckets, vec![2.0]);
    assert_eq!(s.reset_hint, tributary_storage::signals::ResetHint::Unknown);
    assert_eq!(t.metadata[0].kind, MetricType::Histogram);
    // Exemplars hang off the histogram series itself.
    assert_eq!(t.exemplars.len(), 1);
    assert_eq!(t.exemplars[0].labels, h.labels);
    assert_eq!(t.exemplars[0].exemplars[0].value, 1.001);
}

#[test]
fn no_recorded_value_becomes_stale_markers() {
    let flag = DataPointFlags::NoRecordedValueMask as u32;
    let mut g = num(T0, 1.0, &[]);
    g.flags = flag;
    g.value = None;
    g.exemplars = vec![exemplar(1.0, 1, &[])];
    let mut h = hist_point(T0, &[1.0], &[1, 1], Some(3.0));
    h.flags = flag;
    let e = ExponentialHistogramDataPoint {
        time_unix_nano: T0,
        flags: flag,
        count: 1,
        ..Default::default()
    };
    let s = SummaryDataPoint {
        time_unix_nano: T0,
        flags: flag,
        quantile_values: vec![ValueAtQuantile {
            quantile: 0.5,
            value: 1.0,
        }],
        ..Default::default()
    };
    let req = request(
        &[],
        vec![
            gauge("g", "", vec![g]),
            histogram("h", "", CUMULATIVE, vec![h]),
            metric(
                "e",
                "",
                Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![e],
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
            metric("s", "", Data::Summary(Summary { data_points: vec![s] })),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!(t.rejected_points, 0);
    assert_eq!(t.series.len(), 1 + 4 + 3);
    for s in &t.series {
        assert_eq!(s.samples[0].value.to_bits(), STALE_NAN_BITS, "{}", s.labels);
        assert!(is_stale_nan(s.samples[0].value));
    }
    let e = &t.histograms[0].samples[0];
    assert!(is_stale_nan(e.sum) && is_stale_nan(e.count));
    assert!(t.exemplars.is_empty(), "stale points carry no exemplars");
}

#[test]
fn colliding_attribute_names_join_in_original_key_order() {
    let attrs = [("a.b", "dot"), ("a_b", "underscore"), ("a-b", "dash")];
    let req = request(&[], vec![gauge("m", "", vec![num(T0, 1.0, &attrs)])]);
    let t = translate(&req, &header("c"), &opts());
    // "a-b" < "a.b" < "a_b" byte-wise.
    assert_eq!(one(&t, "m").labels.get("a_b"), Some("dash;dot;underscore"));
    // Any order of the same attributes gives the same labels.
    let mut reversed = attrs;
    reversed.reverse();
    let req2 = request(&[], vec![gauge("m", "", vec![num(T0, 1.0, &reversed)])]);
    assert_eq!(stored(translate(&req2, &header("c"), &opts())), stored(t));
}

#[test]
fn reserved_and_unusable_attribute_names() {
    let req = request(
        &[],
        vec![gauge(
            "m",
            "",
            vec![
                num(
                    T0,
                    1.0,
                    &[
                        ("__name__", "evil"),
                        ("__meta", "x"),
                        ("_private", "p"),
                        ("1st", "f"),
                        ("le", "x"),
                    ],
                ),
                num(T0, 2.0, &[("ようこそ", "x")]),
                num(T0, 3.0, &[("", "x")]),
                num(T0, 4.0, &[("empty", "")]),
            ],
        )],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!((t.points, t.rejected_points), (4, 2));
    let s = series(&t, "m");
    // `__name__`/`__meta` attributes are dropped, never overriding the metric name.
    assert_eq!(
        pairs(&s[1].labels),
        vec![
            ("__name__", "m"),
            ("cluster", "c"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0")
        ]
    );
    assert_eq!(values(s[1]), vec![(MS0, 4.0)], "the empty-valued attribute is dropped");
    assert_eq!(values(s[0]), vec![(MS0, 1.0)]);
    assert_eq!(
        pairs(&s[0].labels),
        vec![
            ("__name__", "m"),
            ("cluster", "c"),
            ("key_1st", "f"),
            ("key_private", "p"),
            ("le", "x"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0"),
        ]
    );
    assert!(t.reasons.iter().any(|r| r.contains("ようこそ")));
    assert!(t.reasons.iter().any(|r| r.contains("empty key")));
}

#[test]
fn promoted_resource_attributes_are_on_every_series() {
    let promote: Vec<String> = ["k8s.namespace.name", "k8s.pod.name", "k8s.cluster.name", "absent"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let o = Options {
        promote_resource_attributes: &promote,
        ..opts()
    };
    let req = request(
        &[
            ("service.name", "api"),
            ("k8s.namespace.name", "shop"),
            ("k8s.pod.name", "api-0"),
            ("k8s.cluster.name", "eu-1"),
            ("k8s.node.name", "n1"),
        ],
        vec![
            gauge(
                "g",
                "",
                vec![num(T0, 1.0, &[]), num(T0, 2.0, &[("k8s.pod.name", "from-point")])],
            ),
            histogram("h", "", CUMULATIVE, vec![hist_point(T0, &[1.0], &[1, 1], Some(1.0))]),
        ],
    );
    let t = translate(&req, &ClusterContext::default(), &o);
    assert_invariants(&t);
    for s in t.series.iter().filter(|s| s.labels.metric_name() != Some(TARGET_INFO)) {
        assert_eq!(s.labels.get("k8s_namespace_name"), Some("shop"), "{}", s.labels);
        assert_eq!(s.labels.get("cluster"), Some("eu-1"));
        assert_eq!(s.labels.get("k8s_cluster_name"), None);
        assert_eq!(s.labels.get("k8s_node_name"), None, "not promoted");
    }
    // A point's own attribute wins over a promoted one.
    let pods: Vec<_> = series(&t, "g")
        .iter()
        .map(|s| s.labels.get("k8s_pod_name").unwrap_or_default())
        .collect();
    assert_eq!(pods, vec!["api-0", "from-point"]);
    let info = one(&t, TARGET_INFO);
    assert_eq!(info.labels.get("k8s_node_name"), Some("n1"));
    assert_eq!(
        info.labels.get("k8s_cluster_name"),
        None,
        "the cluster label carries it"
    );
    assert_eq!(info.labels.get("cluster"), Some("eu-1"));
}

#[test]
fn cluster_precedence_and_conflict() {
    let m = || vec![gauge("up", "", vec![num(T0, 1.0, &[])])];
    let with_own = || {
        request(
            &[("service.name", "a"), ("k8s.cluster.name", "own"), ("zone", "z")],
            m(),
        )
    };
    let without_own = || request(&[("service.name", "a"), ("zone", "z")], m());
    let ctx = |token: Option<&str>, hdr: Option<&str>| ClusterContext {
        token_cluster: token.map(str::to_string),
        header_cluster: hdr.map(str::to_string),
    };
    let stamp = |req: &ExportMetricsServiceRequest, c: &ClusterContext| {
        let t = translate(req, c, &opts());
        assert_invariants(&t);
        let s = one(&t, "up");
        let info = one(&t, TARGET_INFO);
        // target_info is stamped the same way.
        assert_eq!(info.labels.get(CLUSTER), s.labels.get(CLUSTER));
        assert_eq!(info.labels.get(EXPORTED_CLUSTER), s.labels.get(EXPORTED_CLUSTER));
        (
            s.labels.get(CLUSTER).map(str::to_string),
            s.labels.get(EXPORTED_CLUSTER).map(str::to_string),
        )
    };
    let some = |s: &str| Some(s.to_string());
    // Token wins; a disagreeing own value is kept as exported_cluster.
    assert_eq!(
        stamp(&with_own(), &ctx(Some("tok"), Some("hdr"))),
        (some("tok"), some("own"))
    );
    assert_eq!(stamp(&with_own(), &ctx(Some("own"), None)), (some("own"), None));
    assert_eq!(
        stamp(&without_own(), &ctx(Some("tok"), Some("hdr"))),
        (some("tok"), None)
    );
    // Then the resource's own cluster, then the header.
    assert_eq!(stamp(&with_own(), &ctx(None, Some("hdr"))), (some("own"), None));
    assert_eq!(stamp(&without_own(), &ctx(None, Some("hdr"))), (some("hdr"), None));
    // Nothing: every point of the resource is refused, with instructions.
    let t = translate(&without_own(), &ctx(None, None), &opts());
    assert_eq!((t.points, t.rejected_points), (1, 1));
    assert!(t.series.is_empty() && t.metadata.is_empty());
    assert!(t.reasons[0].contains("service.name \"a\""), "{}", t.reasons[0]);
    assert!(t.reasons[0].contains("k8s.cluster.name") && t.reasons[0].contains("X-Tributary-Cluster"));
}

#[test]
fn point_cluster_attribute_is_kept_as_exported_cluster() {
    let req = request(
        &[],
        vec![gauge(
            "up",
            "",
            vec![
                num(T0, 1.0, &[("cluster", "theirs")]),
                num(T0, 1.0, &[("cluster", "c"), ("x", "y")]),
            ],
        )],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    let s = series(&t, "up");
    assert_eq!(s[0].labels.get(EXPORTED_CLUSTER), Some("theirs"));
    assert_eq!(s[0].labels.get(CLUSTER), Some("c"));
    assert_eq!(s[1].labels.get(EXPORTED_CLUSTER), None);
}

#[test]
fn limits_reject_the_point_and_keep_the_rest() {
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let long = "v".repeat(3000);
    let long_name = "n".repeat(1500);
    let req = request(
        &[],
        vec![
            gauge(
                "g",
                "",
                vec![
                    num(T0, 1.0, &many),
                    num(T0, 2.0, &[("k", &long)]),
                    num(T0, 3.0, &[(&long_name, "v")]),
                    num(T0, 4.0, &[("ok", "yes")]),
                ],
            ),
            // 28 base labels fit, but a bucket's le makes 31.
            histogram(
                "h",
                "",
                CUMULATIVE,
                vec![{
                    let mut p = hist_point(T0, &[1.0], &[1, 1], None);
                    p.attributes = many[..26].iter().map(|(k, v)| kv(k, v)).collect();
                    p
                }],
            ),
        ],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!((t.points, t.rejected_points), (5, 4));
    assert_eq!(values(one(&t, "g")), vec![(MS0, 4.0)]);
    assert!(series(&t, "h_count").is_empty(), "a point is refused whole");
    let msg = t.message();
    for needle in [
        "more than the limit of 30",
        "over the limit of 2048",
        "over the limit of 1024",
        "metric \"h\": series has 31 labels",
    ] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
    assert!(!msg.contains("metric \"h\": metric"), "{msg}");
}

#[test]
fn timestamps_truncate_and_unset_ones_are_refused() {
    let req = request(
        &[],
        vec![gauge(
            "g",
            "",
            vec![num(0, 1.0, &[]), num(1_500_999_999, 2.0, &[]), num(u64::MAX, 3.0, &[])],
        )],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!(t.rejected_points, 1);
    assert!(t.reasons[0].contains("no timestamp"));
    assert_eq!(
        values(one(&t, "g")),
        vec![(1500, 2.0), ((u64::MAX / 1_000_000) as i64, 3.0)]
    );
    assert!(timestamp_ms(u64::MAX).is_ok(), "every u64 time is storable");
}

#[test]
fn duplicate_timestamps_keep_the_last_value() {
    let req = request(
        &[],
        vec![gauge(
            "g",
            "",
            vec![num(T0 + 2_000_000, 9.0, &[]), num(T0, 1.0, &[]), num(T0, 2.0, &[])],
        )],
    );
    let t = translate(&req, &header("c"), &opts());
    assert_eq!(values(one(&t, "g")), vec![(MS0, 2.0), (MS0 + 2, 9.0)]);
}

#[test]
fn target_info_needs_attributes_and_an_identity() {
    let m = || vec![gauge("up", "", vec![num(T0, 1.0, &[])])];
    let t = translate(
        &request(&[("service.name", "a"), ("service.instance.id", "i")], m()),
        &header("c"),
        &opts(),
    );
    assert!(series(&t, TARGET_INFO).is_empty(), "only identifying attributes");
    let t = translate(&request(&[("host.name", "h")], m()), &header("c"), &opts());
    assert!(series(&t, TARGET_INFO).is_empty(), "nothing to join on");
    let t = translate(
        &request(&[("service.instance.id", "i"), ("host.name", "h")], m()),
        &header("c"),
        &opts(),
    );
    assert_eq!(
        pairs(&one(&t, TARGET_INFO).labels),
        vec![
            ("__name__", "target_info"),
            ("cluster", "c"),
            ("host_name", "h"),
            ("instance", "i")
        ]
    );
}

#[test]
fn number_point_exemplars_and_the_rune_limit() {
    let mut p = num(T0, 5.0, &[]);
    let long = "x".repeat(100);
    p.exemplars = vec![
        exemplar(1.0, 0xCD, &[("http.method", "GET")]),
        exemplar(2.0, 0xEF, &[("big", &long)]),
        OtlpExemplar {
            value: None,
            ..exemplar(3.0, 1, &[])
        },
        OtlpExemplar {
            trace_id: vec![0; 16],
            span_id: vec![],
            time_unix_nano: 0,
            ..exemplar(4.0, 1, &[])
        },
    ];
    let req = request(&[], vec![sum("c", "", true, CUMULATIVE, vec![p])]);
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert_eq!(t.exemplars.len(), 1);
    let es = &t.exemplars[0];
    assert_eq!(es.labels, one(&t, "c_total").labels);
    type Got<'a> = (f64, i64, Vec<(&'a str, &'a str)>);
    let got: Vec<Got<'_>> = es
        .exemplars
        .iter()
        .map(|e| (e.value, e.timestamp, pairs(&e.labels)))
        .collect();
    // Sorted by time: the exemplar without a time takes the point's.
    assert_eq!(got[0], (4.0, MS0, vec![]));
    assert_eq!(
        got[1],
        (
            1.0,
            MS0 + 500,
            vec![
                ("http_method", "GET"),
                ("span_id", "abababababababab"),
                ("trace_id", "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd")
            ]
        )
    );
    // Over 128 runes: the attributes are left out, the ids kept.
    assert_eq!(
        got[2].2.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec!["span_id", "trace_id"]
    );
    assert_eq!(got.len(), 3, "an exemplar without a value is skipped");
}

#[test]
fn names_without_suffixes_and_unusable_names() {
    let o = Options {
        add_suffixes: false,
        ..opts()
    };
    let req = request(
        &[],
        vec![
            sum("http.requests", "1", true, CUMULATIVE, vec![num(T0, 1.0, &[])]),
            gauge("@@@", "", vec![num(T0, 1.0, &[]), num(T0, 1.0, &[])]),
        ],
    );
    let t = translate(&req, &header("c"), &o);
    assert_invariants(&t);
    assert_eq!(values(one(&t, "http_requests")), vec![(MS0, 1.0)]);
    assert_eq!(t.rejected_points, 2);
    assert!(t.reasons[0].contains("\"@@@\""));
}

#[test]
fn scopes_without_a_name_add_no_scope_labels_and_metrics_without_data_are_skipped() {
    let mut req = request(&[], vec![gauge("g", "", vec![num(T0, 1.0, &[])])]);
    req.resource_metrics[0].scope_metrics[0].scope = None;
    req.resource_metrics[0].scope_metrics[0].metrics.push(Metric {
        name: "nothing".into(),
        ..Default::default()
    });
    let t = translate(&req, &header("c"), &opts());
    assert_eq!(pairs(&one(&t, "g").labels), vec![("__name__", "g"), ("cluster", "c")]);
    assert_eq!((t.points, t.rejected_points, t.series.len()), (1, 0, 1));
}

#[test]
fn translation_is_deterministic_and_independent_of_attribute_order() {
    let build = |reverse: bool| {
        let mut res = vec![
            ("service.name", "api"),
            ("host.name", "h"),
            ("os.type", "linux"),
            ("k8s.cluster.name", "eu"),
        ];
        let mut attrs = vec![("b", "2"), ("a", "1"), ("c.d", "3"), ("c_d", "4")];
        if reverse {
            res.reverse();
            attrs.reverse();
        }
        let mut e = ExponentialHistogramDataPoint {
            attributes: kvs(&attrs),
            time_unix_nano: T0,
            count: 3,
            scale: 3,
            positive: Some(Buckets {
                offset: 1,
                bucket_counts: vec![1, 0, 0, 0, 2],
            }),
            ..Default::default()
        };
        e.exemplars = vec![exemplar(1.0, 1, &[("x", "y")])];
        let mut h = hist_point(T0, &[1.0, 2.0], &[1, 2, 3], Some(4.0));
        h.attributes = kvs(&attrs);
        request(
            &res,
            vec![
                gauge("g", "s", vec![num(T0, 1.0, &attrs), num(T0 + 1, f64::NAN, &attrs)]),
                histogram("h", "By", CUMULATIVE, vec![h]),
                metric(
                    "e",
                    "",
                    Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: vec![e],
                        aggregation_temporality: CUMULATIVE,
                    }),
                ),
            ],
        )
    };
    let ctx = ClusterContext {
        token_cluster: Some("tok".into()),
        header_cluster: None,
    };
    let a = translate(&build(false), &ctx, &opts());
    let b = translate(&build(false), &ctx, &opts());
    let c = translate(&build(true), &ctx, &opts());
    assert_invariants(&a);
    // NaN samples defeat PartialEq; the Debug form shows every field, NaNs included. Raw keys
    // follow attribute order (a reordered point takes the full path once more), labels do not.
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(format!("{:?}", stored(a.clone())), format!("{:?}", stored(c)));
    assert_eq!(one(&a, "g_seconds").labels.get("c_d"), Some("3;4"));
    assert_eq!(one(&a, "g_seconds").labels.get(EXPORTED_CLUSTER), Some("eu"));
}

// ---- Never panic, whatever arrives. ----

fn any_kv() -> impl Strategy<Value = KeyValue> {
    let key = prop::sample::select(vec![
        "service.name",
        "service.instance.id",
        "k8s.cluster.name",
        "a.b",
        "a_b",
        "cluster",
        "exported_cluster",
        "__name__",
        "",
        "1x",
        "_",
        "ようこそ",
        "le",
        "job",
        "k8s.pod.name",
    ]);
    let value = prop_oneof![
        "[a-z;]{0,3}".prop_map(any_value::Value::StringValue),
        any::<i64>().prop_map(any_value::Value::IntValue),
        any::<f64>().prop_map(any_value::Value::DoubleValue),
        any::<bool>().prop_map(any_value::Value::BoolValue),
        proptest::collection::vec(any::<u8>(), 0..4).prop_map(any_value::Value::BytesValue),
    ];
    (key, proptest::option::of(value)).prop_map(|(k, v)| KeyValue {
        key: k.to_string(),
        value: Some(AnyValue { value: v }),
        key_strindex: 0,
    })
}

fn any_time() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), any::<u64>(), T0..T0 + 10_000_000_000]
}

fn any_exemplars() -> impl Strategy<Value = Vec<OtlpExemplar>> {
    proptest::collection::vec(
        (
            any::<f64>(),
            any_time(),
            proptest::collection::vec(any::<u8>(), 0..17),
            proptest::collection::vec(any_kv(), 0..2),
        )
            .prop_map(|(v, ts, id, attrs)| OtlpExemplar {
                filtered_attributes: attrs,
                time_unix_nano: ts,
                span_id: id.clone(),
                trace_id: id,
                value: Some(exemplar::Value::AsDouble(v)),
            }),
        0..2,
    )
}

fn any_attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(any_kv(), 0..4)
}

fn any_number_point() -> impl Strategy<Value = NumberDataPoint> {
    (
        any_attrs(),
        any_time(),
        any::<f64>(),
        0u32..3,
        any::<bool>(),
        any_exemplars(),
    )
        .prop_map(
            |(attributes, time_unix_nano, v, flags, has_value, exemplars)| NumberDataPoint {
                attributes,
                time_unix_nano,
                exemplars,
                flags,
                value: has_value.then_some(number_data_point::Value::AsDouble(v)),
                start_time_unix_nano: 0,
            },
        )
}

fn any_data() -> impl Strategy<Value = Data> {
    let points = || proptest::collection::vec(any_number_point(), 0..3);
    let hist = (
        any_attrs(),
        any_time(),
        proptest::collection::vec(-10.0f64..10.0, 0..4),
        proptest::collection::vec(0u64..100, 0..5),
        proptest::option::of(any::<f64>()),
        0u32..3,
        any_exemplars(),
    )
        .prop_map(|(attributes, ts, mut bounds, counts, sum, flags, exemplars)| {
            bounds.sort_by(f64::total_cmp);
            HistogramDataPoint {
                attributes,
                time_unix_nano: ts,
                count: counts.iter().sum(),
                sum,
                bucket_counts: counts,
                explicit_bounds: bounds,
                exemplars,
                flags,
                ..Default::default()
            }
        });
    let buckets = (
        prop_oneof![-20i32..20, any::<i32>()],
        proptest::collection::vec(0u64..1000, 0..8),
    )
        .prop_map(|(offset, bucket_counts)| Buckets { offset, bucket_counts });
    let exp = (
        any_attrs(),
        any_time(),
        prop_oneof![-6i32..22, any::<i32>()],
        proptest::option::of(buckets.clone()),
        proptest::option::of(buckets),
        any::<u64>(),
        any::<f64>(),
        0u32..3,
        any_exemplars(),
    )
        .prop_map(
            |(attributes, ts, scale, positive, negative, zero_count, zero_threshold, flags, exemplars)| {
                ExponentialHistogramDataPoint {
                    attributes,
                    time_unix_nano: ts,
                    count: zero_count,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags,
                    exemplars,
                    zero_threshold,
                    ..Default::default()
                }
            },
        );
    let summary = (
        any_attrs(),
        any_time(),
        proptest::collection::vec((any::<f64>(), any::<f64>()), 0..3),
        0u32..3,
    )
        .prop_map(|(attributes, ts, qs, flags)| SummaryDataPoint {
            attributes,
            time_unix_nano: ts,
            count: 1,
            sum: 1.0,
            quantile_values: qs
                .into_iter()
                .map(|(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            flags,
            ..Default::default()
        });
    prop_oneof![
        points().prop_map(|data_points| Data::Gauge(Gauge { data_points })),
        (points(), any::<bool>(), 0i32..4).prop_map(|(data_points, is_monotonic, aggregation_temporality)| {
            Data::Sum(Sum {
                data_points,
                aggregation_temporality,
                is_monotonic,
            })
        }),
        (proptest::collection::vec(hist, 0..3), 0i32..4).prop_map(|(data_points, aggregation_temporality)| {
            Data::Histogram(Histogram {
                data_points,
                aggregation_temporality,
            })
        }),
        (proptest::collection::vec(exp, 0..3), 0i32..4).prop_map(|(data_points, aggregation_temporality)| {
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality,
            })
        }),
        proptest::collection::vec(summary, 0..3).prop_map(|data_points| Data::Summary(Summary { data_points })),
    ]
}

fn any_metric() -> impl Strategy<Value = Metric> {
    (
        prop::sample::select(vec!["m", "http.server.duration", "@@", "x_total", "3d", "a::b"]),
        prop::sample::select(vec!["", "s", "1", "By/s", "{x}", "%", "/"]),
        proptest::option::of(any_data()),
    )
        .prop_map(|(name, unit, data)| Metric {
            name: name.to_string(),
            description: String::new(),
            unit: unit.to_string(),
            metadata: vec![],
            data,
        })
}

fn any_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let scope = (
        proptest::option::of(prop::sample::select(vec!["", "lib"])),
        proptest::collection::vec(any_metric(), 0..3),
    )
        .prop_map(|(name, metrics)| ScopeMetrics {
            scope: name.map(|n| InstrumentationScope {
                name: n.to_string(),
                version: "v".to_string(),
                attributes: vec![],
                dropped_attributes_count: 0,
            }),
            metrics,
            schema_url: String::new(),
        });
    let rm = (any_attrs(), proptest::collection::vec(scope, 0..2)).prop_map(|(attrs, scope_metrics)| {
        let mut r = resource(attrs, vec![]);
        r.scope_metrics = scope_metrics;
        r
    });
    proptest::collection::vec(rm, 0..3).prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

fn any_ctx() -> impl Strategy<Value = ClusterContext> {
    (
        proptest::option::of(prop::sample::select(vec!["tok", "own", ""])),
        proptest::option::of(prop::sample::select(vec!["hdr", ""])),
    )
        .prop_map(|(t, h)| ClusterContext {
            token_cluster: t.map(str::to_string),
            header_cluster: h.map(str::to_string),
        })
}

// Proptest's default of 256 cases; PROPTEST_CASES raises it for a longer soak.
proptest! {
    /// Arbitrary small requests never panic, always satisfy the output invariants, and translate
    /// the same way every time, including after further protobuf round trips (WAL replay). The
    /// first round trip may turn -0.0 into 0.0 in proto3 implicit-presence doubles (summary sum
    /// and quantile values), which prost does not encode; from then on the bytes are stable.
    #[test]
    fn arbitrary_requests_translate_safely(req in any_request(), ctx in any_ctx(), suffixes in any::<bool>()) {
        let o = Options { add_suffixes: suffixes, ..opts() };
        let t = translate(&req, &ctx, &o);
        assert_invariants(&t);
        prop_assert_eq!(format!("{t:?}"), format!("{:?}", translate(&req, &ctx, &o)));
        let wal = ExportMetricsServiceRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        let live = translate(&wal, &ctx, &o);
        let replayed = ExportMetricsServiceRequest::decode(wal.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(format!("{live:?}"), format!("{:?}", translate(&replayed, &ctx, &o)));
        prop_assert_eq!((live.points, live.rejected_points), (t.points, t.rejected_points));
        assert_fast_path_agrees(&req, &ctx, &o);
    }

    /// Random bytes that happen to decode as a request translate without panicking.
    #[test]
    fn random_bytes_decoded_by_prost_translate_safely(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(req) = ExportMetricsServiceRequest::decode(buf.as_slice()) {
            let t = translate(&req, &header("c"), &opts());
            assert_invariants(&t);
        }
    }
}

#[test]
fn encoded_valid_requests_with_flipped_bytes_translate_safely() {
    // Random bytes rarely decode; mutating a real request explores deeper structures.
    let mut h = hist_point(T0, &[1.0, 2.0], &[1, 2, 3], Some(4.0));
    h.exemplars = vec![exemplar(1.5, 7, &[("a", "b")])];
    let req = request(
        &[("service.name", "api"), ("host.name", "h")],
        vec![
            gauge("g", "s", vec![num(T0, 1.0, &[("x", "y")])]),
            histogram("h", "By", CUMULATIVE, vec![h]),
        ],
    );
    let bytes = req.encode_to_vec();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            if let Ok(r) = ExportMetricsServiceRequest::decode(b.as_slice()) {
                assert_invariants(&translate(&r, &header("c"), &opts()));
            }
        }
    }
}

/// Found by the `otlp_metrics` fuzz target: the rune budget counts label names as stored.
#[test]
fn exemplar_rune_limit_counts_normalised_names() {
    let mut p = num(T0, 5.0, &[]);
    let long = "v".repeat(127);
    p.exemplars = vec![OtlpExemplar {
        trace_id: vec![],
        span_id: vec![],
        ..exemplar(1.0, 0, &[("0", &long)])
    }];
    let req = request(&[], vec![gauge("g", "", vec![p])]);
    let t = translate(&req, &header("c"), &opts());
    assert_invariants(&t);
    assert!(
        t.exemplars[0].exemplars[0].labels.is_empty(),
        "132 runes once named key_0"
    );
}
