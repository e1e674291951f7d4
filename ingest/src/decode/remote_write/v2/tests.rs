use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use prost::Message;
use tributary_proto::prometheus::{self as pb, v2 as w};
use tributary_storage::signals::BucketSpan;
use tributary_storage::types::{Label, Labels, STALE_NAN_BITS};

use super::*;
use crate::decode::remote_write::histogram::CUSTOM_BUCKETS_SCHEMA;
use crate::decode::{MAX_STORABLE_MS, MIN_STORABLE_MS};

const LIMITS: Limits = Limits {
    max_labels_per_series: 8,
    max_label_name_bytes: 64,
    max_label_value_bytes: 64,
};

/// Builds a 2.0 request, interning every string into its symbol table as a sender does.
struct Req {
    symbols: Vec<String>,
    index: HashMap<String, u32>,
    series: Vec<w::TimeSeries>,
}

impl Req {
    fn new() -> Self {
        let mut r = Self {
            symbols: vec![],
            index: HashMap::new(),
            series: vec![],
        };
        r.sym("");
        r
    }

    fn sym(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.symbols.len() as u32;
        self.symbols.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    fn refs(&mut self, pairs: &[(&str, &str)]) -> Vec<u32> {
        let mut refs = vec![];
        for (n, v) in pairs {
            refs.push(self.sym(n));
            refs.push(self.sym(v));
        }
        refs
    }

    fn series(&mut self, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> &mut w::TimeSeries {
        let labels_refs = self.refs(labels);
        self.series.push(w::TimeSeries {
            labels_refs,
            samples: samples
                .iter()
                .map(|&(timestamp, value)| pb::Sample { value, timestamp })
                .collect(),
            ..Default::default()
        });
        self.series.last_mut().expect("just pushed")
    }

    fn metadata(&mut self, kind: pb::MetricType, help: &str, unit: &str) -> Option<w::Metadata> {
        Some(w::Metadata {
            r#type: kind as i32,
            help_ref: self.sym(help),
            unit_ref: self.sym(unit),
        })
    }

    fn exemplar(&mut self, labels: &[(&str, &str)], value: f64, timestamp: i64) -> w::Exemplar {
        w::Exemplar {
            labels_refs: self.refs(labels),
            value,
            timestamp,
        }
    }

    fn encode(&self) -> Vec<u8> {
        w::Request {
            symbols: self.symbols.clone(),
            timeseries: self.series.clone(),
        }
        .encode_to_vec()
    }
}

fn header(c: &str) -> ClusterContext {
    ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.to_string()),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

/// count 6 = zero 1 + buckets [2, 1, 2] (deltas 2, -1, 1), spans {0, 2}, {3, 1}.
fn int_histogram(timestamp: i64) -> w::Histogram {
    w::Histogram {
        count: Some(w::histogram::Count::CountInt(6)),
        sum: 10.0,
        schema: 2,
        zero_threshold: 0.001,
        zero_count: Some(w::histogram::ZeroCount::ZeroCountInt(1)),
        positive_spans: vec![
            w::BucketSpan { offset: 0, length: 2 },
            w::BucketSpan { offset: 3, length: 1 },
        ],
        positive_deltas: vec![2, -1, 1],
        timestamp,
        ..Default::default()
    }
}

#[test]
fn samples_and_labels_round_trip_through_symbols() {
    let mut r = Req::new();
    r.series(
        &[("__name__", "up"), ("job", "node")],
        &[(1000, 1.0), (2000, f64::from_bits(STALE_NAN_BITS))],
    );
    r.series(&[("__name__", "up"), ("cluster", "own"), ("job", "")], &[(1000, 0.5)]);
    // Metadata-only series: accepted, nothing in the batch.
    r.series(&[("__name__", "up")], &[]);
    let buf = r.encode();
    let ctx = header("h");
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert!(d.rejected.is_empty(), "{}", d.rejected.message());
    assert_eq!(d.batch.series.len(), 2);
    let (s0, s1) = (&d.batch.series[0], &d.batch.series[1]);
    assert_eq!(
        d.batch.series_labels(s0),
        &[("__name__", "up"), ("cluster", "h"), ("job", "node")]
    );
    assert_eq!(d.batch.series_samples(s0)[1].value.to_bits(), STALE_NAN_BITS);
    assert_eq!((s0.raw_key, s0.known), (None, false));
    // The series' own cluster wins over the header; the empty value means "no label".
    assert_eq!(d.batch.series_labels(s1), &[("__name__", "up"), ("cluster", "own")]);
    assert_eq!(d.batch.series_samples(s1), &[Sample::new(1000, 0.5)]);
    assert_eq!(
        (d.samples_written, d.histograms_written, d.exemplars_written),
        (3, 0, 0)
    );
    assert!(d.metadata.is_empty() && d.histograms.is_empty() && d.exemplars.is_empty());
}

#[test]
fn histograms_keep_int_and_float_counts_as_absolute_floats() {
    let mut r = Req::new();
    let float = w::Histogram {
        count: Some(w::histogram::Count::CountFloat(2.5)),
        sum: 3.0,
        schema: -53,
        positive_spans: vec![w::BucketSpan { offset: 0, length: 2 }],
        positive_counts: vec![1.5, 1.0],
        custom_values: vec![0.5],
        reset_hint: 3,
        timestamp: 900,
        ..Default::default()
    };
    r.series(&[("__name__", "lat_seconds")], &[]).histograms = vec![int_histogram(1000), float];
    let buf = r.encode();
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert!(d.rejected.is_empty(), "{}", d.rejected.message());
    assert!(d.batch.series.is_empty());
    assert_eq!(d.histograms_written, 2);
    assert_eq!(
        d.histograms,
        [HistogramSeries {
            labels: labels(&[("__name__", "lat_seconds"), ("cluster", "c")]),
            samples: vec![
                HistogramSample {
                    timestamp: 900,
                    count: 2.5,
                    sum: 3.0,
                    schema: CUSTOM_BUCKETS_SCHEMA,
                    positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
                    positive_buckets: vec![1.5, 1.0],
                    custom_values: vec![0.5],
                    reset_hint: ResetHint::Gauge,
                    ..Default::default()
                },
                HistogramSample {
                    timestamp: 1000,
                    count: 6.0,
                    sum: 10.0,
                    schema: 2,
                    zero_threshold: 0.001,
                    zero_count: 1.0,
                    positive_spans: vec![BucketSpan { offset: 0, length: 2 }, BucketSpan { offset: 3, length: 1 }],
                    positive_buckets: vec![2.0, 1.0, 2.0],
                    ..Default::default()
                },
            ],
        }]
    );
}

#[test]
fn exemplars_resolve_their_label_refs() {
    let mut r = Req::new();
    let e = r.exemplar(&[("trace_id", "4bf92f"), ("span_id", "00f0")], 0.12, 1500);
    let unset = r.exemplar(&[], 7.0, 0);
    r.series(&[("__name__", "req_total"), ("job", "api")], &[(1500, 42.0)])
        .exemplars = vec![e, unset];
    let buf = r.encode();
    let ctx = ClusterContext {
        token_cluster: Some("tok".into()),
        header_cluster: None,
    };
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert!(d.rejected.is_empty(), "{}", d.rejected.message());
    assert_eq!((d.samples_written, d.exemplars_written), (1, 2));
    assert_eq!(
        d.exemplars,
        [ExemplarSeries {
            labels: labels(&[("__name__", "req_total"), ("cluster", "tok"), ("job", "api")]),
            exemplars: vec![
                Exemplar {
                    labels: labels(&[("span_id", "00f0"), ("trace_id", "4bf92f")]),
                    value: 0.12,
                    timestamp: 1500,
                },
                // Timestamp 0 means "not set"; kept as is, like Prometheus.
                Exemplar {
                    labels: Labels::default(),
                    value: 7.0,
                    timestamp: 0,
                },
            ],
        }]
    );
}

#[test]
fn metadata_is_kept_per_cluster_and_family() {
    let mut r = Req::new();
    let counter = r.metadata(pb::MetricType::Counter, "Requests served.", "");
    let histogram = r.metadata(pb::MetricType::Histogram, "Latency.", "seconds");
    let summary = r.metadata(pb::MetricType::Summary, "RPCs.", "");
    r.series(&[("__name__", "http_requests_total")], &[(1, 1.0)]).metadata = counter.clone();
    r.series(&[("__name__", "http_requests_total"), ("job", "b")], &[(1, 1.0)])
        .metadata = counter.clone();
    r.series(&[("__name__", "http_requests_total"), ("cluster", "own")], &[(1, 1.0)])
        .metadata = counter;
    for name in [
        "lat_seconds_bucket",
        "lat_seconds_sum",
        "lat_seconds_count",
        "lat_seconds",
    ] {
        r.series(&[("__name__", name)], &[(1, 1.0)]).metadata = histogram.clone();
    }
    r.series(&[("__name__", "rpc_count")], &[(1, 1.0)]).metadata = summary;
    // No metadata at all (the sender did not know any): nothing added.
    r.series(&[("__name__", "mystery")], &[(1, 1.0)]).metadata = Some(w::Metadata::default());
    let buf = r.encode();
    let ctx = header("h");
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert!(d.rejected.is_empty(), "{}", d.rejected.message());
    let m = |cluster: &str, metric: &str, kind, help: &str, unit: &str| MetricMetadata {
        cluster: cluster.into(),
        metric: metric.into(),
        kind,
        help: help.into(),
        unit: unit.into(),
    };
    assert_eq!(
        d.metadata,
        [
            m("h", "http_requests_total", MetricType::Counter, "Requests served.", ""),
            m("h", "lat_seconds", MetricType::Histogram, "Latency.", "seconds"),
            m("h", "rpc", MetricType::Summary, "RPCs.", ""),
            m(
                "own",
                "http_requests_total",
                MetricType::Counter,
                "Requests served.",
                ""
            ),
        ]
    );
    assert_eq!(metric_family("_count", MetricType::Summary), "_count");
    assert_eq!(metric_family("x_gsum", MetricType::GaugeHistogram), "x");
    assert_eq!(metric_family("x_total", MetricType::Counter), "x_total");
}

#[test]
fn created_timestamps_insert_a_zero_before_counters_and_histograms() {
    let mut r = Req::new();
    let counter = r.metadata(pb::MetricType::Counter, "", "");
    let gauge = r.metadata(pb::MetricType::Gauge, "", "");
    let histogram = r.metadata(pb::MetricType::Histogram, "", "");
    let mut add = |name: &str, meta: &Option<w::Metadata>, created: i64, samples: &[(i64, f64)]| {
        let s = r.series(&[("__name__", name)], samples);
        s.metadata = meta.clone();
        s.created_timestamp = created;
    };
    add("a_total", &counter, 500, &[(1000, 3.0), (2000, 4.0)]);
    add("b_total", &counter, 1000, &[(1000, 3.0)]); // not before the first sample
    add("c", &gauge, 500, &[(1000, 3.0)]); // a gauge never starts at zero
    add("d_total", &counter, 0, &[(1000, 3.0)]); // unset
    add("e_total", &counter, 500, &[]); // no sample: nothing to precede
    let h = r.series(&[("__name__", "lat")], &[]);
    h.metadata = histogram;
    h.created_timestamp = 700;
    h.histograms = vec![int_histogram(1000)];
    let buf = r.encode();
    let ctx = header("c");
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert!(d.rejected.is_empty(), "{}", d.rejected.message());
    let samples: Vec<Vec<Sample>> = d
        .batch
        .series
        .iter()
        .map(|s| d.batch.series_samples(s).to_vec())
        .collect();
    assert_eq!(
        samples,
        [
            vec![Sample::new(500, 0.0), Sample::new(1000, 3.0), Sample::new(2000, 4.0)],
            vec![Sample::new(1000, 3.0)],
            vec![Sample::new(1000, 3.0)],
            vec![Sample::new(1000, 3.0)],
        ]
    );
    // Inserted zeros are not "written" samples of the request.
    assert_eq!((d.samples_written, d.histograms_written), (5, 1));
    let hs = &d.histograms[0].samples;
    assert_eq!(hs.len(), 2);
    assert_eq!(
        hs[0],
        HistogramSample {
            timestamp: 700,
            schema: 2,
            zero_threshold: 0.001,
            reset_hint: ResetHint::Yes,
            ..Default::default()
        }
    );
    assert_eq!(hs[1].timestamp, 1000);
}

/// One request per case, each with one bad item (and, where it matters, a good series beside it).
#[test]
fn every_rejection_says_why() {
    fn check(buf: &[u8], ctx: &ClusterContext, want: &str, counts: (usize, usize, usize, usize)) {
        let d = decode(buf, ctx, &LIMITS).unwrap();
        let r = &d.rejected;
        assert_eq!(
            (r.series, r.histograms, r.exemplars, r.metadata),
            counts,
            "{want}: {}",
            r.message()
        );
        assert!(r.message().contains(want), "{want:?} missing from {}", r.message());
    }
    let ctx = header("c");
    let series_case = |pairs: &[(&str, &str)], samples: &[(i64, f64)], want: &str| {
        let mut r = Req::new();
        r.series(pairs, samples);
        r.series(&[("__name__", "fine")], &[(1, 1.0)]);
        let buf = r.encode();
        let d = decode(&buf, &ctx, &LIMITS).unwrap();
        assert_eq!(d.batch.series.len(), 1, "{want}");
        assert_eq!(d.rejected.samples, samples.len(), "{want}");
        check(&buf, &ctx, want, (1, 0, 0, 0));
    };
    series_case(
        &[("job", "x"), ("__name__", "a")],
        &[(1, 1.0)],
        "not sorted by name at \"__name__\"",
    );
    series_case(
        &[("__name__", "a"), ("j", "1"), ("j", "2")],
        &[(1, 1.0)],
        "duplicate label name \"j\"",
    );
    series_case(
        &[("__name__", "a"), ("bad.name", "1")],
        &[(1, 1.0)],
        "invalid label name \"bad.name\"",
    );
    series_case(&[("__name__", "a-b")], &[(1, 1.0)], "invalid metric name \"a-b\"");
    series_case(&[("job", "x")], &[(1, 1.0)], "no __name__ label");
    series_case(
        &[("__name__", "a"), ("job", &"v".repeat(65))],
        &[(1, 1.0)],
        "over the limit of 64",
    );
    series_case(
        &[
            ("__name__", "a"),
            ("a", "1"),
            ("b", "1"),
            ("c", "1"),
            ("d", "1"),
            ("e", "1"),
            ("f", "1"),
            ("g", "1"),
        ],
        &[(1, 1.0)],
        "series has 9 labels, more than the limit of 8",
    );
    series_case(
        &[("__name__", "a")],
        &[(1, 1.0), (MIN_STORABLE_MS - 1, 1.0)],
        "sample timestamp",
    );

    // No cluster anywhere.
    let mut r = Req::new();
    r.series(&[("__name__", "a")], &[(1, 1.0)]);
    check(
        &r.encode(),
        &ClusterContext::default(),
        "series has no cluster",
        (1, 0, 0, 0),
    );

    // Label refs: odd, out of range (including above u32::MAX, unpacked).
    let mut r = Req::new();
    r.series(&[("__name__", "a")], &[(1, 1.0)]).labels_refs.push(1);
    check(&r.encode(), &ctx, "3 label refs, not (name, value) pairs", (1, 0, 0, 0));
    let mut r = Req::new();
    r.series(&[("__name__", "a")], &[(1, 1.0)]).labels_refs[1] = 99;
    check(
        &r.encode(),
        &ctx,
        "label ref 99 is out of range of the 3 symbols",
        (1, 0, 0, 0),
    );
    let mut buf = Req::new().encode();
    // TimeSeries { labels_refs: [2^32] } written unpacked: field 1, varint.
    let ts = [0x08, 0x80, 0x80, 0x80, 0x80, 0x10];
    buf.extend([0x2a, ts.len() as u8]);
    buf.extend(ts);
    check(&buf, &ctx, "1 label refs", (1, 0, 0, 0));

    // The symbol table must start with "".
    let mut r = Req::new();
    r.symbols[0] = "oops".into();
    r.series(&[("__name__", "a")], &[(1, 1.0)]);
    check(
        &r.encode(),
        &ctx,
        "must start with the empty string, not \"oops\"",
        (1, 0, 0, 0),
    );

    // A symbol that is not UTF-8 (appended by hand: prost will not encode one).
    let mut r = Req::new();
    r.sym("__name__");
    r.sym("a");
    r.sym("job");
    r.series.push(w::TimeSeries {
        labels_refs: vec![1, 2, 3, 4],
        samples: vec![pb::Sample {
            value: 1.0,
            timestamp: 1,
        }],
        ..Default::default()
    });
    let mut buf = r.encode();
    buf.extend([0x22, 2, 0xff, 0xfe]);
    check(&buf, &ctx, "value of label \"job\" is not valid UTF-8", (1, 0, 0, 0));

    // A bad histogram, exemplar or metadata is refused alone; the samples stay.
    let mut r = Req::new();
    let bad_exemplars = vec![
        r.exemplar(&[("trace_id", "x")], 1.0, 1),
        w::Exemplar {
            labels_refs: vec![1],
            value: 1.0,
            timestamp: 1,
        },
        w::Exemplar {
            labels_refs: vec![1, 1000],
            value: 1.0,
            timestamp: 1,
        },
        r.exemplar(&[("trace.id", "x")], 1.0, 1),
        r.exemplar(&[], 1.0, MAX_STORABLE_MS + 1),
    ];
    let s = r.series(&[("__name__", "a")], &[(1, 1.0)]);
    s.histograms = vec![
        int_histogram(1),
        w::Histogram {
            schema: 9,
            ..int_histogram(2)
        },
        w::Histogram {
            positive_deltas: vec![2, -3, 1],
            ..int_histogram(3)
        },
    ];
    s.exemplars = bad_exemplars;
    s.metadata = Some(w::Metadata {
        r#type: 1,
        help_ref: 500,
        unit_ref: 0,
    });
    let buf = r.encode();
    let d = decode(&buf, &ctx, &LIMITS).unwrap();
    assert_eq!(
        (d.samples_written, d.histograms_written, d.exemplars_written),
        (1, 1, 1)
    );
    assert!(d.metadata.is_empty());
    for want in [
        "native histogram sample: unsupported schema 9",
        "native histogram sample: positive bucket 1 has a negative count (-1)",
        "exemplar: 1 label refs, not (name, value) pairs",
        "exemplar: label ref 1000 is out of range",
        "exemplar: invalid label name \"trace.id\"",
        "exemplar: timestamp 253402300800000 ms is outside",
        "metadata: help_ref 500 or unit_ref 0 is out of range",
    ] {
        check(&buf, &ctx, want, (0, 2, 4, 1));
    }

    // A 1.0 WriteRequest sent as 2.0.
    let v1 = pb::WriteRequest {
        timeseries: vec![pb::TimeSeries {
            labels: vec![pb::Label {
                name: "__name__".into(),
                value: "up".into(),
            }],
            samples: vec![pb::Sample {
                value: 1.0,
                timestamp: 1,
            }],
            exemplars: vec![],
            histograms: vec![],
        }],
        metadata: vec![],
    }
    .encode_to_vec();
    check(
        &v1,
        &ctx,
        "remote-write 1.0 (prometheus.WriteRequest) but the request was sent as 2.0",
        (1, 0, 0, 0),
    );
}

#[test]
fn truncated_protobuf_is_a_wire_error() {
    let mut r = Req::new();
    r.series(&[("__name__", "up")], &[(1, 1.0)]).histograms = vec![int_histogram(1)];
    let buf = r.encode();
    let ctx = header("c");
    assert!(decode(&buf[..buf.len() - 2], &ctx, &LIMITS).is_err());
}

/// (timestamp, schema, float counts?, first span offset, buckets as (gap before, count)).
type GenHistogram = (i64, i32, bool, i32, Vec<(u8, u32)>);

/// Exemplar series with values as bits (NaN-safe equality).
type ExemplarBits = (Labels, Vec<(Labels, u64, i64)>);

/// A generated valid series: labels besides `__name__`, float samples, integer or float
/// histograms (buckets as (gap before, absolute count)), exemplars.
#[derive(Clone, Debug)]
struct Gen {
    name: String,
    labels: BTreeMap<String, String>,
    samples: Vec<(i64, u64)>,
    histograms: Vec<GenHistogram>,
    exemplars: Vec<(BTreeMap<String, String>, u64, i64)>,
}

fn gen_series() -> impl Strategy<Value = Gen> {
    let ts = MIN_STORABLE_MS..=MAX_STORABLE_MS;
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[ -~]{1,8}", 0..4),
        proptest::collection::vec((ts.clone(), any::<u64>()), 0..4),
        proptest::collection::vec(
            (
                ts.clone(),
                -4i32..=8,
                any::<bool>(),
                -5i32..5,
                proptest::collection::vec((0u8..4, 0u32..1000), 0..5),
            ),
            0..3,
        ),
        proptest::collection::vec(
            (
                proptest::collection::btree_map("[a-z_]{1,10}", "[a-z0-9]{1,16}", 0..3),
                any::<u64>(),
                ts,
            ),
            0..3,
        ),
    )
        .prop_map(|(name, mut labels, samples, histograms, exemplars)| {
            labels.remove("cluster");
            Gen {
                name,
                labels,
                samples,
                histograms,
                exemplars,
            }
        })
}

/// The histogram a generated one encodes, and what the decoder must make of it.
fn gen_histogram(
    &(t, schema, float, first, ref buckets): &(i64, i32, bool, i32, Vec<(u8, u32)>),
) -> (w::Histogram, HistogramSample) {
    let spans: Vec<BucketSpan> = buckets
        .iter()
        .enumerate()
        .map(|(i, &(gap, _))| BucketSpan {
            offset: if i == 0 { first } else { i32::from(gap) },
            length: 1,
        })
        .collect();
    let counts: Vec<f64> = buckets.iter().map(|&(_, c)| f64::from(c)).collect();
    let total: u64 = buckets.iter().map(|&(_, c)| u64::from(c)).sum::<u64>() + 3;
    let mut h = w::Histogram {
        sum: 1.5,
        schema,
        zero_threshold: 0.01,
        positive_spans: spans
            .iter()
            .map(|s| w::BucketSpan {
                offset: s.offset,
                length: s.length,
            })
            .collect(),
        timestamp: t,
        ..Default::default()
    };
    if float {
        h.count = Some(w::histogram::Count::CountFloat(total as f64));
        h.zero_count = Some(w::histogram::ZeroCount::ZeroCountFloat(3.0));
        h.positive_counts = counts.clone();
    } else {
        h.count = Some(w::histogram::Count::CountInt(total));
        h.zero_count = Some(w::histogram::ZeroCount::ZeroCountInt(3));
        let mut prev = 0i64;
        h.positive_deltas = buckets
            .iter()
            .map(|&(_, c)| {
                let d = i64::from(c) - prev;
                prev = i64::from(c);
                d
            })
            .collect();
    }
    let want = HistogramSample {
        timestamp: t,
        count: total as f64,
        sum: 1.5,
        schema,
        zero_threshold: 0.01,
        zero_count: 3.0,
        positive_spans: spans,
        positive_buckets: counts,
        ..Default::default()
    };
    (h, want)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let ctx = header("c");
        let _ = decode(&buf, &ctx, &LIMITS);
    }

    /// Any valid request a sender can encode decodes to exactly what it says (bits included).
    #[test]
    fn valid_requests_decode_to_their_input(series in proptest::collection::vec(gen_series(), 0..6)) {
        let mut r = Req::new();
        let mut want_histograms = vec![];
        let mut want_exemplars = vec![];
        for g in &series {
            let mut pairs: Vec<(&str, &str)> = vec![("__name__", g.name.as_str())];
            pairs.extend(g.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            pairs.sort();
            let mut final_labels: Vec<Label> = pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect();
            final_labels.push(Label::new("cluster", "c"));
            let final_labels = Labels::new(final_labels);
            let exemplars: Vec<w::Exemplar> = g
                .exemplars
                .iter()
                .map(|(l, v, t)| {
                    let l: Vec<(&str, &str)> = l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    r.exemplar(&l, f64::from_bits(*v), *t)
                })
                .collect();
            let (histograms, mut want_h): (Vec<w::Histogram>, Vec<HistogramSample>) =
                g.histograms.iter().map(gen_histogram).unzip();
            let samples: Vec<(i64, f64)> = g.samples.iter().map(|&(t, b)| (t, f64::from_bits(b))).collect();
            let s = r.series(&pairs, &samples);
            s.histograms = histograms;
            s.exemplars = exemplars;
            if !want_h.is_empty() {
                want_h.sort_by_key(|h| h.timestamp);
                want_histograms.push(HistogramSeries { labels: final_labels.clone(), samples: want_h });
            }
            if !g.exemplars.is_empty() {
                want_exemplars.push(ExemplarSeries {
                    labels: final_labels,
                    exemplars: g
                        .exemplars
                        .iter()
                        .map(|(l, v, t)| Exemplar {
                            labels: Labels::new(l.iter().map(|(n, v)| Label::new(n.as_str(), v.as_str())).collect()),
                            value: f64::from_bits(*v),
                            timestamp: *t,
                        })
                        .collect(),
                });
            }
        }
        let buf = r.encode();
        let ctx = header("c");
        let d = decode(&buf, &ctx, &LIMITS).unwrap();
        prop_assert!(d.rejected.is_empty(), "{}", d.rejected.message());
        let with_samples: Vec<&Gen> = series.iter().filter(|g| !g.samples.is_empty()).collect();
        prop_assert_eq!(d.batch.series.len(), with_samples.len());
        for (span, g) in d.batch.series.iter().zip(&with_samples) {
            let got: Vec<(i64, u64)> = d.batch.series_samples(span).iter().map(|s| (s.timestamp, s.value.to_bits())).collect();
            prop_assert_eq!(&got, &g.samples);
            let labels = d.batch.series_labels(span);
            prop_assert_eq!(labels.iter().find(|l| l.0 == "__name__").map(|l| l.1), Some(g.name.as_str()));
            prop_assert_eq!(labels.len(), g.labels.len() + 2);
            for (n, v) in &g.labels {
                prop_assert!(labels.contains(&(n.as_str(), v.as_str())));
            }
        }
        prop_assert_eq!(d.samples_written, series.iter().map(|g| g.samples.len()).sum::<usize>());
        prop_assert_eq!(d.histograms_written, series.iter().map(|g| g.histograms.len()).sum::<usize>());
        prop_assert_eq!(d.exemplars_written, series.iter().map(|g| g.exemplars.len()).sum::<usize>());
        prop_assert_eq!(d.histograms, want_histograms);
        // Exemplar values are arbitrary bits: compare them as bits.
        let bits = |e: &[ExemplarSeries]| -> Vec<ExemplarBits> {
            e.iter()
                .map(|s| (s.labels.clone(), s.exemplars.iter().map(|x| (x.labels.clone(), x.value.to_bits(), x.timestamp)).collect()))
                .collect()
        };
        prop_assert_eq!(bits(&d.exemplars), bits(&want_exemplars));
    }
}
