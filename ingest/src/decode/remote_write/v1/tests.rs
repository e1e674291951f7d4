use super::*;
use tributary_storage::signals::{BucketSpan, HistogramSample, MetricType, ResetHint};
use tributary_storage::types::Labels;

use crate::decode::remote_write::histogram::CUSTOM_BUCKETS_SCHEMA;
use crate::decode::{MAX_STORABLE_MS, MIN_STORABLE_MS};
use crate::head::input::{NothingKnown, RawKey};
use proptest::prelude::*;
use prost::Message;
use tributary_proto::prometheus as pb;
use tributary_storage::types::STALE_NAN_BITS;

const LIMITS: Limits = Limits {
    max_labels_per_series: 30,
    max_label_name_bytes: 1024,
    max_label_value_bytes: 2048,
};

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> pb::TimeSeries {
    pb::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| pb::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| pb::Sample { timestamp: t, value: v })
            .collect(),
        exemplars: vec![],
        histograms: vec![],
    }
}

fn encode(ts: Vec<pb::TimeSeries>) -> Vec<u8> {
    pb::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec()
}

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.to_string()),
    }
}

#[test]
fn decodes_series_and_stamps_cluster() {
    let buf = encode(vec![
        series(
            &[("__name__", "up"), ("job", "node")],
            &[(1000, 1.0), (2000, f64::from_bits(STALE_NAN_BITS))],
        ),
        series(&[("__name__", "up"), ("cluster", "own"), ("job", "x")], &[(1000, 0.0)]),
    ]);
    let ctx = header("h");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert!(d.rejected.is_empty());
    assert_eq!(d.batch.series.len(), 2);
    let s0 = &d.batch.series[0];
    assert_eq!(
        d.batch.series_labels(s0),
        &[("__name__", "up"), ("cluster", "h"), ("job", "node")]
    );
    assert_eq!(d.batch.series_samples(s0)[1].value.to_bits(), STALE_NAN_BITS);
    // A series' own cluster label wins over the header.
    assert_eq!(d.batch.series_labels(&d.batch.series[1])[1], ("cluster", "own"));
    assert_eq!(d.batch.series_samples(&d.batch.series[1]), &[Sample::new(1000, 0.0)]);
}

#[test]
fn invalid_series_are_rejected_with_reasons_and_the_rest_kept() {
    let buf = encode(vec![
        series(&[("__name__", "ok")], &[(1, 1.0)]),
        series(&[("__name__", "a"), ("bad-name", "x")], &[(1, 1.0)]),
        series(&[("job", "b"), ("__name__", "a")], &[(1, 1.0)]),
        series(&[("__name__", "a"), ("job", "b"), ("job", "c")], &[(1, 1.0), (2, 2.0)]),
        series(&[("job", "no-name")], &[(1, 1.0)]),
        series(&[("__name__", "bad-metric")], &[(1, 1.0)]),
    ]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(d.rejected.series, 5);
    assert_eq!(d.rejected.samples, 6);
    let msg = d.rejected.message();
    for needle in [
        "invalid label name \"bad-name\"",
        "not sorted",
        "duplicate label name \"job\"",
        "no __name__",
        "invalid metric name",
    ] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
}

#[test]
fn missing_cluster_is_rejected_with_instructions() {
    let buf = encode(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
    let ctx = ClusterContext::default();
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.rejected.series, 1);
    assert!(
        d.rejected.message().contains("X-Tributary-Cluster"),
        "{}",
        d.rejected.message()
    );
}

#[test]
fn token_cluster_wins_and_keeps_exported_cluster() {
    let buf = encode(vec![series(
        &[("__name__", "up"), ("cluster", "theirs"), ("zone", "a")],
        &[(1, 1.0)],
    )]);
    let ctx = ClusterContext {
        token_cluster: Some("mine".into()),
        header_cluster: Some("hdr".into()),
    };
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(
        d.batch.series_labels(&d.batch.series[0]),
        &[
            ("__name__", "up"),
            ("cluster", "mine"),
            ("exported_cluster", "theirs"),
            ("zone", "a")
        ]
    );
}

#[test]
fn empty_values_are_dropped_and_limits_enforced() {
    let long = "v".repeat(3000);
    let buf = encode(vec![
        series(&[("__name__", "up"), ("empty", ""), ("job", "j")], &[(1, 1.0)]),
        series(&[("__name__", "up"), ("job", &long)], &[(1, 1.0)]),
    ]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(
        d.batch.series_labels(&d.batch.series[0]),
        &[("__name__", "up"), ("cluster", "c"), ("job", "j")]
    );
    assert!(d.rejected.message().contains("over the limit of 2048"));
}

#[test]
fn invalid_utf8_values_are_rejected() {
    // Build by hand: prost refuses to encode invalid UTF-8 strings.
    let mut label = vec![0x0a, 8];
    label.extend_from_slice(b"__name__");
    label.extend_from_slice(&[0x12, 2, 0xff, 0xfe]);
    let mut ts = vec![0x0a, label.len() as u8];
    ts.extend_from_slice(&label);
    let mut req = vec![0x0a, ts.len() as u8];
    req.extend_from_slice(&ts);
    let ctx = header("c");
    let d = decode(&req, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.rejected.series, 1);
    assert!(d.rejected.message().contains("not valid UTF-8"));
}

#[test]
fn unstorable_timestamps_are_rejected_at_the_edge() {
    use tributary_storage::layout::storable_timestamp;
    assert!(storable_timestamp(MIN_STORABLE_MS) && storable_timestamp(MAX_STORABLE_MS));
    assert!(!storable_timestamp(MIN_STORABLE_MS - 1) && !storable_timestamp(MAX_STORABLE_MS + 1));
    let buf = encode(vec![
        series(&[("__name__", "far_future")], &[(1, 1.0), (i64::MAX, 2.0)]),
        series(&[("__name__", "fine")], &[(MAX_STORABLE_MS, 1.0)]),
    ]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.batch.series.len(), 1);
    assert_eq!(d.rejected.samples, 2);
    assert!(
        d.rejected.message().contains("outside the storable range"),
        "{}",
        d.rejected.message()
    );
}

#[test]
fn truncated_protobuf_is_a_wire_error() {
    let buf = encode(vec![series(&[("__name__", "up")], &[(1, 1.0)])]);
    let ctx = header("c");
    assert!(decode(&buf[..buf.len() - 3], &ctx, &LIMITS, &NothingKnown).is_err());
}

/// A head holding exactly these keys.
struct Knows(Vec<RawKey>);

impl KnownSeries for Knows {
    fn is_known(&self, key: RawKey) -> bool {
        self.0.contains(&key)
    }
}

/// Samples are taken in a first pass over every series; a refused series' samples are dropped
/// from between its neighbours', so each kept series, known or not, has exactly its own.
#[test]
fn series_after_a_refused_one_keep_their_own_samples_known_or_not() {
    let buf = encode(vec![
        series(&[("__name__", "a")], &[(1, 1.0), (2, 2.0)]),
        series(&[("job", "no-name")], &[(1, 10.0), (2, 20.0), (3, 30.0)]),
        series(&[("__name__", "b")], &[(5, 5.0)]),
        series(&[("__name__", "bad-metric")], &[(1, 40.0)]),
        series(&[("__name__", "c")], &[(7, 7.0), (8, 8.0)]),
        series(&[("__name__", "d")], &[]),
    ]);
    let ctx = header("x");
    let first = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    let key_of_b = first.batch.series[1].raw_key.unwrap();
    for (known, b_known) in [(Knows(vec![]), false), (Knows(vec![key_of_b]), true)] {
        let d = decode(&buf, &ctx, &LIMITS, &known).unwrap();
        assert_eq!((d.rejected.series, d.rejected.samples), (2, 4));
        type Kept<'a> = (bool, Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);
        let got: Vec<Kept> = d
            .batch
            .series
            .iter()
            .map(|s| {
                let samples = d.batch.series_samples(s).iter().map(|x| (x.timestamp, x.value));
                (s.known, d.batch.series_labels(s).to_vec(), samples.collect())
            })
            .collect();
        let labels = |name| {
            if name == "b" && b_known {
                vec![]
            } else {
                vec![("__name__", name), ("cluster", "x")]
            }
        };
        assert_eq!(
            got,
            [
                (false, labels("a"), vec![(1, 1.0), (2, 2.0)]),
                (b_known, labels("b"), vec![(5, 5.0)]),
                (false, labels("c"), vec![(7, 7.0), (8, 8.0)]),
            ]
        );
        assert_eq!(d.batch.sample_count(), 5, "refused samples are not counted");
    }
}

/// Every series is "already in the head".
struct AllKnown;

impl KnownSeries for AllKnown {
    fn is_known(&self, _: RawKey) -> bool {
        true
    }
}

fn pb_labels(pairs: &[(&str, &str)]) -> Vec<pb::Label> {
    pairs
        .iter()
        .map(|(n, v)| pb::Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

fn exemplar(labels: &[(&str, &str)], value: f64, timestamp: i64) -> pb::Exemplar {
    pb::Exemplar {
        labels: pb_labels(labels),
        value,
        timestamp,
    }
}

/// An integer histogram: count 7 = zero 1 + buckets [1, 3, 2] (deltas 1, 2, -1) in spans
/// {offset -1, length 2}, {offset 1, length 1}.
fn int_histogram(timestamp: i64) -> pb::Histogram {
    pb::Histogram {
        count: Some(pb::histogram::Count::CountInt(7)),
        sum: 12.5,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: Some(pb::histogram::ZeroCount::ZeroCountInt(1)),
        positive_spans: vec![
            pb::BucketSpan { offset: -1, length: 2 },
            pb::BucketSpan { offset: 1, length: 1 },
        ],
        positive_deltas: vec![1, 2, -1],
        reset_hint: 2,
        timestamp,
        ..Default::default()
    }
}

fn float_histogram(timestamp: i64) -> pb::Histogram {
    pb::Histogram {
        count: Some(pb::histogram::Count::CountFloat(3.5)),
        sum: -1.0,
        schema: 0,
        negative_spans: vec![pb::BucketSpan { offset: 2, length: 2 }],
        negative_counts: vec![0.5, 3.0],
        timestamp,
        ..Default::default()
    }
}

fn decode_one_histogram(h: &pb::Histogram) -> Result<HistogramSample, String> {
    decode_histogram(&h.encode_to_vec()).expect("valid protobuf")
}

#[test]
fn histograms_decode_to_absolute_float_counts() {
    let h = decode_one_histogram(&int_histogram(5)).unwrap();
    assert_eq!(
        h,
        HistogramSample {
            timestamp: 5,
            count: 7.0,
            sum: 12.5,
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: 1.0,
            positive_spans: vec![
                BucketSpan { offset: -1, length: 2 },
                BucketSpan { offset: 1, length: 1 }
            ],
            positive_buckets: vec![1.0, 3.0, 2.0],
            reset_hint: ResetHint::No,
            ..Default::default()
        }
    );
    let f = decode_one_histogram(&float_histogram(6)).unwrap();
    assert_eq!((f.count, f.sum, f.schema), (3.5, -1.0, 0));
    assert_eq!(f.negative_buckets, [0.5, 3.0]);
    assert_eq!(f.negative_spans, [BucketSpan { offset: 2, length: 2 }]);
    // Custom buckets: bounds 1, 2, 5; buckets at indices 0 and 3 (+Inf).
    let nhcb = pb::Histogram {
        count: Some(pb::histogram::Count::CountInt(3)),
        schema: CUSTOM_BUCKETS_SCHEMA,
        positive_spans: vec![
            pb::BucketSpan { offset: 0, length: 1 },
            pb::BucketSpan { offset: 2, length: 1 },
        ],
        positive_deltas: vec![1, 1],
        custom_values: vec![1.0, 2.0, 5.0],
        ..Default::default()
    };
    let c = decode_one_histogram(&nhcb).unwrap();
    assert_eq!(
        (c.positive_buckets.as_slice(), c.custom_values.as_slice()),
        (&[1.0, 2.0][..], &[1.0, 2.0, 5.0][..])
    );
    // A staleness marker: count 0, NaN sum with its exact bits.
    let stale = pb::Histogram {
        sum: f64::from_bits(STALE_NAN_BITS),
        ..Default::default()
    };
    assert_eq!(decode_one_histogram(&stale).unwrap().sum.to_bits(), STALE_NAN_BITS);
}

#[test]
fn invalid_histograms_say_why() {
    let cases: Vec<(pb::Histogram, &str)> = vec![
        (
            pb::Histogram {
                schema: 9,
                ..int_histogram(1)
            },
            "unsupported schema 9",
        ),
        (
            pb::Histogram {
                schema: -5,
                ..int_histogram(1)
            },
            "unsupported schema -5",
        ),
        (
            pb::Histogram {
                positive_deltas: vec![1, 2],
                ..int_histogram(1)
            },
            "positive spans cover 3 buckets but 2 bucket counts were sent",
        ),
        (
            pb::Histogram {
                positive_deltas: vec![1, -2, 4],
                ..int_histogram(1)
            },
            "positive bucket 1 has a negative count (-1)",
        ),
        (
            pb::Histogram {
                positive_deltas: vec![i64::MAX, 1, 0],
                ..int_histogram(1)
            },
            "overflows",
        ),
        (
            pb::Histogram {
                count: Some(pb::histogram::Count::CountInt(8)),
                ..int_histogram(1)
            },
            "count 8 does not match its buckets, which hold 7 observations",
        ),
        (
            pb::Histogram {
                negative_counts: vec![-0.5, 3.0],
                ..float_histogram(1)
            },
            "negative bucket count",
        ),
        (
            pb::Histogram {
                count: Some(pb::histogram::Count::CountFloat(-1.0)),
                ..float_histogram(1)
            },
            "negative count",
        ),
        (
            pb::Histogram {
                positive_counts: vec![1.0],
                ..int_histogram(1)
            },
            "mixes integer and float counts",
        ),
        (
            pb::Histogram {
                positive_spans: vec![
                    pb::BucketSpan { offset: 0, length: 1 },
                    pb::BucketSpan { offset: -2, length: 2 },
                ],
                ..int_histogram(1)
            },
            "positive span 1 has a negative offset (-2)",
        ),
        (
            pb::Histogram {
                custom_values: vec![1.0],
                ..int_histogram(1)
            },
            "custom_values are only for schema -53",
        ),
        (
            pb::Histogram {
                count: Some(pb::histogram::Count::CountInt(0)),
                schema: CUSTOM_BUCKETS_SCHEMA,
                custom_values: vec![2.0, 1.0],
                ..Default::default()
            },
            "strictly increasing",
        ),
        (
            pb::Histogram {
                count: Some(pb::histogram::Count::CountInt(1)),
                schema: CUSTOM_BUCKETS_SCHEMA,
                positive_spans: vec![pb::BucketSpan { offset: 2, length: 1 }],
                positive_deltas: vec![1],
                custom_values: vec![1.0],
                ..Default::default()
            },
            "buckets reach index 2 but there are only 1 custom bounds",
        ),
        (
            pb::Histogram {
                count: Some(pb::histogram::Count::CountInt(1)),
                schema: CUSTOM_BUCKETS_SCHEMA,
                zero_count: Some(pb::histogram::ZeroCount::ZeroCountInt(1)),
                custom_values: vec![1.0],
                ..Default::default()
            },
            "have no zero bucket",
        ),
        (
            pb::Histogram {
                timestamp: MAX_STORABLE_MS + 1,
                ..int_histogram(1)
            },
            "timestamp 253402300800000 ms is outside the storable range",
        ),
    ];
    for (h, want) in cases {
        let got = decode_one_histogram(&h).expect_err(want);
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
}

#[test]
fn native_histograms_are_kept_and_bad_ones_refused_alone() {
    let mut ts = series(&[("__name__", "lat"), ("job", "a")], &[(1, 1.0)]);
    ts.histograms = vec![
        int_histogram(20),
        pb::Histogram {
            schema: 42,
            ..int_histogram(30)
        },
        float_histogram(10),
    ];
    let buf = encode(vec![ts]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.batch.sample_count(), 1);
    assert_eq!(d.histograms.len(), 1);
    let h = &d.histograms[0];
    assert_eq!(
        h.labels,
        Labels::from_pairs(&[("__name__", "lat"), ("cluster", "c"), ("job", "a")])
    );
    // Sorted by time.
    assert_eq!(h.samples.iter().map(|s| s.timestamp).collect::<Vec<_>>(), [10, 20]);
    assert_eq!((d.rejected.series, d.rejected.histograms), (0, 1));
    assert!(
        d.rejected
            .message()
            .contains("series lat{cluster=\"c\", job=\"a\"}: native histogram sample: unsupported schema 42"),
        "{}",
        d.rejected.message()
    );
}

#[test]
fn exemplars_are_kept_under_their_series_labels() {
    let mut with = series(&[("__name__", "req_total"), ("job", "a")], &[(1000, 5.0)]);
    with.exemplars = vec![exemplar(&[("trace_id", "abc"), ("span_id", "01")], 0.25, 990)];
    // Prometheus sends exemplars as series of their own, without samples.
    let mut only = series(&[("__name__", "req_total"), ("job", "b")], &[]);
    only.exemplars = vec![exemplar(&[], 1.0, 995)];
    let plain = series(&[("__name__", "up")], &[(1000, 1.0)]);
    let buf = encode(vec![with, only, plain]);
    let ctx = header("c");
    for (all_known, known) in [(false, &NothingKnown as &dyn KnownSeries), (true, &AllKnown)] {
        let d = decode(&buf, &ctx, &LIMITS, known).unwrap();
        assert!(d.rejected.is_empty(), "{}", d.rejected.message());
        assert_eq!(d.exemplars.len(), 2);
        assert_eq!(
            d.exemplars[0],
            ExemplarSeries {
                labels: Labels::from_pairs(&[("__name__", "req_total"), ("cluster", "c"), ("job", "a")]),
                exemplars: vec![Exemplar {
                    labels: Labels::from_pairs(&[("span_id", "01"), ("trace_id", "abc")]),
                    value: 0.25,
                    timestamp: 990,
                }],
            }
        );
        assert_eq!(d.exemplars[1].labels.get("job"), Some("b"));
        assert!(d.exemplars[1].exemplars[0].labels.is_empty());
        // The series with an exemplar takes the full path even when known; the plain one does not.
        let known_flags: Vec<bool> = d.batch.series.iter().map(|s| s.known).collect();
        assert_eq!(known_flags, [false, all_known]);
    }
}

#[test]
fn invalid_exemplars_are_refused_alone() {
    let long = "x".repeat(121);
    let mut ts = series(&[("__name__", "m")], &[(1, 1.0)]);
    ts.exemplars = vec![
        exemplar(&[("trace-id", "a")], 1.0, 1),
        exemplar(&[("trace_id", &long)], 1.0, 1),
        exemplar(&[("a", "1"), ("a", "2")], 1.0, 1),
        exemplar(&[], 1.0, i64::MIN),
        exemplar(&[("ok", "1")], 1.0, 1),
    ];
    let buf = encode(vec![ts]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(
        (d.rejected.series, d.rejected.exemplars, d.batch.sample_count()),
        (0, 4, 1)
    );
    assert_eq!(d.exemplars[0].exemplars.len(), 1);
    let msg = d.rejected.message();
    for needle in [
        "exemplar: invalid label name \"trace-id\"",
        "labels are 129 characters long, over the limit of 128",
        "duplicate label name \"a\"",
        "exemplar: timestamp -9223372036854775808 ms is outside",
        "4 exemplars",
    ] {
        assert!(msg.contains(needle), "{needle} missing from {msg}");
    }
}

#[test]
fn a_rejected_series_takes_its_histograms_and_exemplars_along() {
    let mut ts = series(&[("__name__", "m"), ("bad-name", "x")], &[(1, 1.0)]);
    ts.histograms = vec![int_histogram(1)];
    ts.exemplars = vec![exemplar(&[], 1.0, 1)];
    let buf = encode(vec![ts]);
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert!(d.histograms.is_empty() && d.exemplars.is_empty());
    assert_eq!(
        (
            d.rejected.series,
            d.rejected.samples,
            d.rejected.histograms,
            d.rejected.exemplars
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn metadata_is_kept_under_the_request_cluster() {
    let md = |t: pb::MetricType, name: &str, help: &str| pb::MetricMetadata {
        r#type: t as i32,
        metric_family_name: name.to_string(),
        help: help.to_string(),
        unit: String::new(),
    };
    let buf = pb::WriteRequest {
        timeseries: vec![],
        metadata: vec![
            md(pb::MetricType::Counter, "http_requests_total", "Requests."),
            md(pb::MetricType::Counter, "http_requests_total", "Requests."),
            md(pb::MetricType::Histogram, "latency_seconds", ""),
            md(pb::MetricType::Gauge, "bad-name", ""),
        ],
    }
    .encode_to_vec();
    let entry = |cluster: &str, metric: &str, kind, help: &str| MetricMetadata {
        cluster: cluster.to_string(),
        metric: metric.to_string(),
        kind,
        help: help.to_string(),
        unit: String::new(),
    };
    for (ctx, cluster) in [
        (header("h"), "h"),
        (
            ClusterContext {
                token_cluster: Some("t".into()),
                header_cluster: Some("h".into()),
            },
            "t",
        ),
        (ClusterContext::default(), ""),
    ] {
        let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
        assert_eq!(
            d.metadata,
            [
                entry(cluster, "http_requests_total", MetricType::Counter, "Requests."),
                entry(cluster, "latency_seconds", MetricType::Histogram, ""),
            ]
        );
        assert_eq!(d.rejected.metadata, 1);
        assert!(d.rejected.message().contains("invalid metric family name \"bad-name\""));
    }
}

#[test]
fn a_v2_request_sent_as_v1_is_refused_with_a_reason() {
    let v2 = pb::v2::Request {
        symbols: vec![String::new(), "__name__".into(), "up".into()],
        timeseries: vec![pb::v2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![pb::Sample {
                value: 1.0,
                timestamp: 1,
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let ctx = header("c");
    let d = decode(&v2, &ctx, &LIMITS, &NothingKnown).unwrap();
    assert_eq!(d.rejected.series, 1);
    assert!(d.rejected.message().contains("proto=io.prometheus.write.v2.Request"));
}

#[test]
fn rejection_messages_count_everything_and_cap_reasons() {
    let mut r = Rejections::default();
    assert!(r.is_empty());
    for i in 0..12 {
        r.reject_metadata(format!("reason {i}"));
    }
    r.exemplars = 2;
    let m = r.message();
    assert!(
        m.starts_with("rejected 0 series (0 samples), 2 exemplars, 12 metadata entries; the rest of the request was stored; reason 0"),
        "{m}"
    );
    assert!(m.ends_with("reason 9; ... and 2 more"), "{m}");
}

proptest! {
    /// Whatever prost encodes, we decode to the same numbers (exact bits) and labels.
    #[test]
    fn round_trips_prost_encoding(
        samples in proptest::collection::vec((MIN_STORABLE_MS..=MAX_STORABLE_MS, any::<u64>()), 0..20),
        value in "[a-z0-9 ]{1,12}",
    ) {
        let s: Vec<(i64, f64)> = samples.iter().map(|&(t, b)| (t, f64::from_bits(b))).collect();
        let buf = encode(vec![series(&[("__name__", "m"), ("v", &value)], &s)]);
        let ctx = header("c");
        let d = decode(&buf, &ctx, &LIMITS, &NothingKnown).unwrap();
        if s.is_empty() {
            prop_assert!(d.batch.series.is_empty());
        } else {
            let got = d.batch.series_samples(&d.batch.series[0]);
            prop_assert_eq!(got.len(), s.len());
            for (g, (t, v)) in got.iter().zip(&s) {
                prop_assert_eq!(g.timestamp, *t);
                prop_assert_eq!(g.value.to_bits(), v.to_bits());
            }
            let labels = d.batch.series_labels(&d.batch.series[0]);
            prop_assert_eq!(labels[2], ("v", value.as_str()));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let ctx = header("c");
        let _ = decode(&buf, &ctx, &LIMITS, &NothingKnown);
    }
}
