use std::collections::{BTreeMap, BTreeSet};

use super::*;
use proptest::prelude::*;
use tributary_storage::read::{Direction, LineHint};
use tributary_storage::types::{MatchOp, Sample};

fn s(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series::new(
        Labels::from_pairs(pairs),
        samples.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
    )
}

#[tokio::test]
async fn head_passes_the_source_conformance_suite() {
    tributary_storage::test_util::source_conformance(|data: Vec<Series>| async move {
        let head = Head::new();
        head.append_series(&data);
        Arc::new(head) as Arc<dyn Source>
    })
    .await;
}

/// The same suite with the writes split over a frozen block and the active part (as during a
/// flush): the first half of the samples, in the order they were given, frozen. Reads merge
/// the blocks, in samples and in chunks, the later write of a timestamp winning.
#[tokio::test]
async fn head_passes_the_source_conformance_suite_across_blocks() {
    tributary_storage::test_util::source_conformance(|data: Vec<Series>| async move {
        let head = Head::new();
        let mut left = data.iter().map(|s| s.samples.len()).sum::<usize>() / 2;
        let (mut frozen, mut active) = (Vec::new(), Vec::new());
        for s in &data {
            let cut = left.min(s.samples.len());
            left -= cut;
            frozen.push(Series::new(s.labels.clone(), s.samples[..cut].to_vec()));
            active.push(Series::new(s.labels.clone(), s.samples[cut..].to_vec()));
        }
        head.append_series(&frozen);
        head.freeze();
        head.append_series(&active);
        Arc::new(head) as Arc<dyn Source>
    })
    .await;
}

/// The head's log records pass the `LogSource` suite, split over a frozen and the active
/// block with the middle third in both (as during a flush).
#[tokio::test]
async fn head_passes_the_log_source_conformance_suite() {
    tributary_storage::test_util::log_source_conformance(|records: Vec<LogRecord>| async move {
        let head = Head::new();
        let third = records.len() / 3;
        head.append_signals(SignalBlock {
            logs: records[..2 * third].to_vec(),
            ..Default::default()
        });
        head.freeze();
        head.append_signals(SignalBlock {
            logs: records[third..].to_vec(),
            ..Default::default()
        });
        Arc::new(head) as Arc<dyn LogSource>
    })
    .await;
}

/// The histogram read contract, with the older half of each dataset in a frozen block and the
/// newer half in the active part (so the later write of a timestamp must win across blocks).
#[tokio::test]
async fn head_passes_the_histogram_conformance_suite() {
    use tributary_storage::signals::HistogramSeries;
    use tributary_storage::test_util::histogram_source::histogram_source_conformance;
    histogram_source_conformance(|data: Vec<HistogramSeries>| async move {
        let head = Head::new();
        let mid = data.len() / 2;
        head.append_signals(SignalBlock {
            histograms: data[..mid].to_vec(),
            ..Default::default()
        });
        head.freeze();
        for one in &data[mid..] {
            head.append_signals(SignalBlock {
                histograms: vec![one.clone()],
                ..Default::default()
            });
        }
        Arc::new(head) as Arc<dyn Source>
    })
    .await;
}

#[tokio::test]
async fn frozen_and_active_parts_merge_and_newest_wins() {
    let head = Head::new();
    head.append_series(&[s(&[("__name__", "m"), ("cluster", "a")], &[(1, 1.0), (2, 2.0)])]);
    let frozen = head.freeze();
    assert_eq!(frozen.samples, 2);
    assert_eq!(head.active_samples(), 0);
    head.append_series(&[s(&[("__name__", "m"), ("cluster", "a")], &[(2, 20.0), (3, 3.0)])]);
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::ALL);
    let got = head.select(&req).await.unwrap();
    assert_eq!(got.len(), 1);
    let vals: Vec<(i64, f64)> = got[0].samples.iter().map(|x| (x.timestamp, x.value)).collect();
    assert_eq!(vals, vec![(1, 1.0), (2, 20.0), (3, 3.0)]);
    head.drop_frozen(&frozen);
    assert_eq!(head.select(&req).await.unwrap()[0].samples.len(), 2);
}

/// `newest_only`: a series that arrived in order answers with its newest sample alone when
/// that sample is in the range; a range ending before it, or a series that arrived out of
/// order, gets the full answer; across a frozen and the active block the newest still comes
/// last.
#[tokio::test]
async fn newest_only_answers_a_series_with_its_newest_sample() {
    let head = Head::new();
    let (a, b) = (
        [("__name__", "up"), ("cluster", "a")],
        [("__name__", "up"), ("cluster", "b")],
    );
    let scrapes: Vec<(i64, f64)> = (1..=300).map(|i| (i * 1000, i as f64)).collect();
    head.append_series(&[s(&a, &scrapes), s(&b, &[(5000, 5.0), (3000, 3.0), (4000, 4.0)])]);
    let read = |from: i64, to: i64| {
        let req = SelectRequest {
            newest_only: true,
            ..SelectRequest::new(vec![Matcher::equal("__name__", "up")], TimeRange::new(from, to))
        };
        let head = &head;
        async move {
            let mut got = head.select(&req).await.unwrap();
            got.sort_by(|x, y| x.labels.cmp(&y.labels));
            got.into_iter()
                .map(|s| s.samples.iter().map(|p| (p.timestamp, p.value)).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(1, 400_000).await,
        vec![vec![(300_000, 300.0)], vec![(3000, 3.0), (4000, 4.0), (5000, 5.0)]]
    );
    let earlier = read(250_001, 299_999).await;
    assert_eq!(
        earlier[0].len(),
        49,
        "the newest sample is past the range: the full answer"
    );

    head.freeze();
    head.append_series(&[s(&a, &[(301_000, 301.0)])]);
    let across = read(1, 400_000).await;
    assert_eq!(across[0].last(), Some(&(301_000, 301.0)));
    assert!(across[0].len() <= 2, "{:?}", across[0]);
}

#[tokio::test]
async fn out_of_order_samples_are_sorted_on_read_and_freeze() {
    let head = Head::new();
    head.append_series(&[s(&[("__name__", "m")], &[(5, 5.0), (1, 1.0), (3, 3.0), (1, 1.5)])]);
    let req = SelectRequest::new(
        vec![Matcher::new(MatchOp::RegexMatch, "__name__", "m|n").unwrap()],
        TimeRange::new(1, 4),
    );
    let got = head.select(&req).await.unwrap();
    let vals: Vec<(i64, f64)> = got[0].samples.iter().map(|x| (x.timestamp, x.value)).collect();
    assert_eq!(vals, vec![(1, 1.5), (3, 3.0)]);
    let f = head.freeze();
    let frozen: Vec<Series> = f.decoded();
    let ts: Vec<i64> = frozen[0].samples.iter().map(|x| x.timestamp).collect();
    assert_eq!(ts, vec![1, 3, 5]);
}

fn rw_body(cluster_label: Option<&str>, t: i64) -> Vec<u8> {
    use prost::Message;
    use tributary_proto::prometheus as pb;
    let mut labels = vec![pb::Label {
        name: "__name__".into(),
        value: "up".into(),
    }];
    if let Some(c) = cluster_label {
        labels.push(pb::Label {
            name: "cluster".into(),
            value: c.into(),
        });
    }
    labels.push(pb::Label {
        name: "job".into(),
        value: "node".into(),
    });
    let ts = pb::TimeSeries {
        labels,
        samples: vec![pb::Sample {
            timestamp: t,
            value: t as f64,
        }],
        exemplars: vec![],
        histograms: vec![],
    };
    pb::WriteRequest {
        timeseries: vec![ts],
        metadata: vec![],
    }
    .encode_to_vec()
}

/// Decode limits wide enough for every test body.
fn rw_limits() -> crate::decode::Limits {
    crate::decode::Limits {
        max_labels_per_series: 30,
        max_label_name_bytes: 1024,
        max_label_value_bytes: 2048,
    }
}

/// A request whose cluster comes from the header.
fn header(cluster: &str) -> crate::cluster::ClusterContext {
    crate::cluster::ClusterContext {
        token_cluster: None,
        header_cluster: Some(cluster.into()),
    }
}

#[tokio::test]
async fn known_series_take_the_short_path_into_the_same_series() {
    use crate::decode::remote_write::v1::decode;
    let limits = rw_limits();
    let head = Head::new();
    let a = header("a");
    let b = header("b");

    let first = rw_body(None, 1000);
    let d = decode(&first, &a, &limits, &head).unwrap();
    assert!(!d.batch.series[0].known);
    assert_eq!(head.append(&d.batch), 0);

    let second = rw_body(None, 2000);
    let d = decode(&second, &a, &limits, &head).unwrap();
    assert!(d.batch.series[0].known, "same labels, same context: short path");
    assert!(d.batch.series_labels(&d.batch.series[0]).is_empty());
    let placed = d.batch.series[0]
        .placed
        .expect("the head tells where it holds the series");
    assert_eq!(
        placed.id,
        SeriesId::of(
            head.labels_of_raw(d.batch.series[0].raw_key.unwrap())
                .unwrap()
                .iter()
                .map(|l| (l.name, l.value))
        )
    );
    assert_eq!(head.append(&d.batch), 0);

    // The same bytes under another header stamp another cluster: never a hit.
    let d = decode(&second, &b, &limits, &head).unwrap();
    assert!(!d.batch.series[0].known);
    assert_eq!(head.append(&d.batch), 0);
    // Different wire bytes for a different series are not a hit either.
    let own = rw_body(Some("own"), 3000);
    assert!(!decode(&own, &a, &limits, &head).unwrap().batch.series[0].known);

    let req = SelectRequest::new(vec![Matcher::equal("__name__", "up")], TimeRange::ALL);
    let mut got: Vec<(String, usize)> = head
        .select(&req)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.get("cluster").unwrap().to_string(), s.samples.len()))
        .collect();
    got.sort();
    assert_eq!(got, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    assert_eq!(head.active_series(), 2);

    // A freeze forgets raw keys; the next request takes the full path into a new series.
    head.freeze();
    let d = decode(&second, &a, &limits, &head).unwrap();
    assert!(!d.batch.series[0].known);
    assert_eq!(head.append(&d.batch), 0);
    assert_eq!(head.active_series(), 1);
}

/// An OTLP request with a gauge (two attribute sets), a histogram and a summary, at `t` ns.
fn otlp_metrics(t: u64) -> tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
    use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    use tributary_proto::otlp::metrics::v1::summary_data_point::ValueAtQuantile;
    use tributary_proto::otlp::metrics::v1::{
        AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Summary, SummaryDataPoint, metric::Data, number_data_point,
    };
    use tributary_proto::otlp::resource::v1::Resource;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    let num = |state: &str, v: f64| NumberDataPoint {
        attributes: vec![kv("state", state)],
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let metric = |name: &str, data: Data| Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    };
    tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api"), kv("host.name", "h1")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric(
                        "mem",
                        Data::Gauge(Gauge {
                            data_points: vec![num("used", 1.0), num("free", 2.0)],
                        }),
                    ),
                    metric(
                        "latency",
                        Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: t,
                                count: 6,
                                sum: Some(3.5),
                                explicit_bounds: vec![0.1, 1.0],
                                bucket_counts: vec![1, 2, 3],
                                ..Default::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        }),
                    ),
                    metric(
                        "rpc",
                        Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                time_unix_nano: t,
                                count: 4,
                                sum: 2.0,
                                quantile_values: vec![ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 0.4,
                                }],
                                ..Default::default()
                            }],
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// OTLP points of series the head holds are appended by raw key, without labels, into the same
/// series: the head ends up exactly as when every point takes the full path.
#[tokio::test]
async fn otlp_points_of_known_series_take_the_short_path_into_the_same_series() {
    use crate::decode::{Body, Options, Translation, decode};
    use crate::head::input::NothingKnown;
    let translation = Translation::default();
    let opts = Options::unbounded(&translation);
    let ctx = header("a");
    let (fast, full) = (Head::new(), Head::new());
    for (round, t) in [1_700_000_000_000_000_000u64, 1_700_000_015_000_000_000]
        .into_iter()
        .enumerate()
    {
        let prepared = Body::otlp_metrics_request(otlp_metrics(t)).prepare(1 << 20).unwrap();
        let d = decode(&prepared, &ctx, &opts, &fast).unwrap();
        // 2 gauge series, 5 of the histogram (count, sum, 2 buckets, +Inf), 3 of the summary.
        let known = d.input.floats.series.iter().filter(|s| s.known).count();
        let built: Vec<&str> = d.input.series.iter().filter_map(|s| s.labels.metric_name()).collect();
        if round == 0 {
            assert_eq!(known, 0);
            assert_eq!(d.input.series_keys.iter().filter(|k| k.is_some()).count(), 10);
        } else {
            assert_eq!(known, 10, "every float series of the request is known");
            assert_eq!(built, ["target_info"], "only target_info builds labels again");
        }
        assert_eq!(fast.apply(d.input), 0);
        let d = decode(&prepared, &ctx, &opts, &NothingKnown).unwrap();
        assert_eq!(full.apply(d.input), 0);
    }
    let req = SelectRequest::new(
        vec![Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()],
        TimeRange::ALL,
    );
    let (mut a, mut b) = (fast.select(&req).await.unwrap(), full.select(&req).await.unwrap());
    a.sort_by(|x, y| x.labels.cmp(&y.labels));
    b.sort_by(|x, y| x.labels.cmp(&y.labels));
    assert_eq!(a.len(), 11);
    assert!(a.iter().all(|s| s.samples.len() == 2), "{a:?}");
    assert_eq!(a, b);
    assert_eq!(fast.active_series(), full.active_series());
}

/// A write's keys are looked up together, shard by shard: each answer lands at its key's place,
/// after what `out` held, and names where the head holds the series.
#[test]
fn a_writes_keys_are_looked_up_together_each_answer_in_its_place() {
    use crate::head::input::{KnownSeries, Lookup};
    let head = Head::new();
    let series: Vec<Series> = (0..200)
        .map(|i| Series {
            labels: Labels::from_pairs(&[("__name__", "up"), ("cluster", "a"), ("i", &i.to_string())]),
            samples: vec![Sample::new(1000, 1.0)],
        })
        .collect();
    let keys: Vec<input::RawKey> = (0..400u128)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
        .collect();
    // Every other key is learnt, under the series of the same index.
    let mut batch = WriteBatch::default();
    let learnt: Vec<Option<input::RawKey>> = keys.iter().step_by(2).copied().map(Some).collect();
    batch.push_series(&series, &learnt);
    assert_eq!(head.append(&batch), 0);
    assert!(
        (0..SHARDS).all(|s| keys.iter().any(|k| Head::raw_shard(*k) == s)),
        "the keys cover every shard"
    );

    let mut out = vec![Lookup::Known];
    head.look_up(&keys, &mut out);
    assert_eq!(out.len(), 1 + keys.len());
    assert_eq!(out[0], Lookup::Known, "what `out` held stays");
    for (i, found) in out[1..].iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(*found, Lookup::Unknown, "key {i}");
            continue;
        }
        let placed = found.placement().unwrap_or_else(|| panic!("key {i}: {found:?}"));
        let labels = &series[i / 2].labels;
        assert_eq!(
            placed.id,
            SeriesId::of(labels.iter().map(|l| (l.name, l.value))),
            "key {i}"
        );
        assert_eq!(head.is_known(keys[i]), found.is_known());
    }
}

/// Per-cluster usage counts a known span (no labels on it) by the cluster its head entry keeps.
#[test]
fn usage_counts_a_known_span_by_the_cluster_its_entry_keeps() {
    use crate::decode::remote_write::v1::decode;
    let limits = rw_limits();
    let head = Head::new();
    for c in ["a", "b"] {
        let context = header(c);
        let body = rw_body(None, 1000);
        let first = decode(&body, &context, &limits, &head).unwrap();
        assert_eq!(head.append(&first.batch), 0);
    }
    let second = rw_body(None, 2000);
    for c in ["a", "b"] {
        let context = header(c);
        let d = decode(&second, &context, &limits, &head).unwrap();
        assert!(d.batch.series[0].known);
        assert!(d.batch.series[0].placed.is_some());
        let mut input = Input {
            floats: d.batch,
            ..Input::default()
        };
        // By the placement's cluster, and without one (OTLP's known spans) by the raw entry's.
        for _ in 0..2 {
            let usage = crate::quota::usage(&input, &head);
            let counted: Vec<(&str, u64)> = usage.clusters.iter().map(|(c, u)| (c.as_str(), u.samples)).collect();
            assert_eq!(counted, [(c, 1)]);
            input.floats.series[0].placed = None;
        }
    }
}

#[test]
fn a_known_span_without_its_raw_entry_is_reported_not_dropped_silently() {
    use crate::decode::remote_write::v1::decode;
    let limits = rw_limits();
    let head = Head::new();
    let ctx = header("a");
    let body = rw_body(None, 1000);
    assert_eq!(head.append(&decode(&body, &ctx, &limits, &head).unwrap().batch), 0);
    let again = rw_body(None, 2000);
    let d = decode(&again, &ctx, &limits, &head).unwrap();
    assert!(d.batch.series[0].known);
    // Forgetting the key between decode and append is what the ingester's gate prevents.
    head.freeze();
    assert_eq!(head.append(&d.batch), 1);
    assert_eq!(head.active_samples(), 0);
}

/// A placement is a hint: one that names no series, or another series, sends the span through
/// its raw key into its own series.
#[tokio::test]
async fn a_known_span_whose_placement_is_stale_lands_in_its_own_series() {
    use crate::decode::remote_write::v1::decode;
    let limits = rw_limits();
    let head = Head::new();
    let (a, b) = (header("a"), header("b"));
    assert_eq!(
        head.append(&decode(&rw_body(None, 1000), &a, &limits, &head).unwrap().batch),
        0
    );
    let body = rw_body(None, 1000);
    let other = decode(&body, &b, &limits, &head).unwrap();
    assert_eq!(head.append(&other.batch), 0);
    let other_id = SeriesId::of(other.batch.series_labels(&other.batch.series[0]).iter().copied());

    type Stale = fn(input::Placement, SeriesId) -> input::Placement;
    let stale: [Stale; 2] = [
        // The right id, but an address no label set has.
        |p, _| input::Placement { labels: 0, ..p },
        // Another series' id.
        |p, other| input::Placement { id: other, ..p },
    ];
    for (t, stale) in [2000, 3000].into_iter().zip(stale) {
        let body = rw_body(None, t);
        let mut d = decode(&body, &a, &limits, &head).unwrap();
        let span = &mut d.batch.series[0];
        assert!(span.known);
        span.placed = Some(stale(span.placed.expect("placed"), other_id));
        assert_eq!(head.append(&d.batch), 0);
    }
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "up")], TimeRange::ALL);
    let mut got: Vec<(String, Vec<i64>)> = head
        .select(&req)
        .await
        .unwrap()
        .into_iter()
        .map(|s| {
            let ts = s.samples.iter().map(|x| x.timestamp).collect();
            (s.labels.get("cluster").unwrap().to_string(), ts)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("a".to_string(), vec![1000, 2000, 3000]), ("b".to_string(), vec![1000])]
    );
    assert_eq!(head.active_series(), 2);
    assert_eq!(head.active_samples(), 4);
}

#[test]
fn series_are_counted_once() {
    let head = Head::new();
    for _ in 0..3 {
        head.append_series(&[
            s(&[("__name__", "a")], &[(1, 1.0)]),
            s(&[("__name__", "b")], &[(1, 1.0)]),
        ]);
    }
    assert_eq!(head.active_series(), 2);
    assert_eq!(head.active_samples(), 6);
}

/// Label names and values over `range` from every stored label set with samples in it.
fn brute_force(head: &Head, range: TimeRange) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let (mut names, mut values) = (BTreeSet::new(), BTreeMap::<String, BTreeSet<String>>::new());
    head.for_each_match(&SelectRequest::new(Vec::new(), range), |s| {
        if s.count_in(range) == 0 {
            return;
        }
        for l in s.labels.iter() {
            names.insert(l.name.to_string());
            values
                .entry(l.name.to_string())
                .or_default()
                .insert(l.value.to_string());
        }
    });
    (names, values)
}

/// A label index recounted from label sets (those without samples are not counted).
fn recount<'a>(labels: impl Iterator<Item = (&'a Labels, usize)>) -> Vec<(String, String, u32)> {
    let mut counts: BTreeMap<(String, String), u32> = BTreeMap::new();
    for (labels, samples) in labels {
        if samples > 0 {
            for l in labels {
                *counts.entry((l.name.to_string(), l.value.to_string())).or_default() += 1;
            }
        }
    }
    counts.into_iter().map(|((n, v), c)| (n, v, c)).collect()
}

/// Every index (active part and frozen blocks) holds exactly the counts and span of its series.
fn assert_indexes_exact(head: &Head) {
    let shards: Vec<_> = head.shards.iter().map(|s| s.lock()).collect();
    let all = || shards.iter().flat_map(|s| s.series.values().chain(&s.collided));
    let active = head.labels.lock();
    assert_eq!(active.entries(), recount(all().map(|s| (&*s.labels, s.samples.len()))));
    let with_samples = || all().filter(|s| !s.samples.is_empty());
    let span = with_samples()
        .map(|s| s.min_t)
        .min()
        .zip(with_samples().map(|s| s.max_t).max());
    assert_eq!(active.span(), span);
    drop((active, shards));
    for block in head.frozen() {
        assert_eq!(
            block.labels.entries(),
            recount(block.series.iter().map(|s| (&*s.labels, s.samples.len())))
        );
        let all_time = TimeRange::new(i64::MIN, i64::MAX);
        let ts = || {
            block
                .series
                .iter()
                .flat_map(|s| s.read_sorted(all_time).into_iter().map(|x| x.timestamp))
        };
        assert_eq!(block.labels.span(), ts().min().zip(ts().max()));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, u8, bool, Vec<i64>)>),
    Freeze,
    DropOldest,
}

fn op() -> impl Strategy<Value = Op> {
    let series = (
        0u8..3,
        0u8..6,
        any::<bool>(),
        proptest::collection::vec(0i64..100, 0..4),
    );
    prop_oneof![
        6 => proptest::collection::vec(series, 1..8).prop_map(Op::Append),
        1 => Just(Op::Freeze),
        1 => Just(Op::DropOldest),
    ]
}

proptest! {
    /// Compressed samples read back as a scan of what was pushed finds them, in arrival order,
    /// across chunk boundaries and whichever ends the range covers; counts agree.
    #[test]
    fn compressed_samples_in_range_are_what_a_scan_finds(
        pushes in proptest::collection::vec(proptest::collection::vec((0i64..400, any::<u64>()), 0..90), 0..6),
        (a, b) in (-5i64..410, -5i64..410),
    ) {
        let mut chunks = chunks::SampleChunks::default();
        let mut pushed: Vec<Sample> = Vec::new();
        for push in pushes {
            let samples: Vec<Sample> = push.iter().map(|&(t, v)| Sample::new(t, f64::from_bits(v))).collect();
            chunks.push(&samples);
            pushed.extend(samples);
        }
        let range = TimeRange::new(a, b);
        let scanned: Vec<(i64, u64)> =
            pushed.iter().filter(|x| range.contains(x.timestamp)).map(|x| (x.timestamp, x.value.to_bits())).collect();
        let mut read = Vec::new();
        chunks.read(range, &mut read);
        let read: Vec<(i64, u64)> = read.iter().map(|x| (x.timestamp, x.value.to_bits())).collect();
        prop_assert_eq!(chunks.count_in(range), scanned.len());
        prop_assert_eq!(read, scanned);
        prop_assert_eq!(chunks.len(), pushed.len());
    }
}

/// The sizing section of the README quotes these: a counter scraped every 15 s costs about 2
/// bytes a sample in the head at a steady interval, about 3.4 with a few milliseconds of jitter
/// (16 bytes uncompressed, before a vector's growth slack).
#[test]
fn regular_scrapes_cost_a_few_bytes_a_sample() {
    for (jitter_ms, most) in [(0, 2.5), (3, 4.0)] {
        let mut chunks = chunks::SampleChunks::default();
        let mut total = 0.0;
        let samples: Vec<Sample> = (0..2_400i64)
            .map(|i| {
                total += (i * 7 % 10) as f64;
                Sample::new(1_700_000_000_000 + i * 15_000 + i % (jitter_ms + 1), total)
            })
            .collect();
        for s in samples.chunks(7) {
            chunks.push(s);
        }
        let per_sample = chunks.heap_bytes() as f64 / samples.len() as f64;
        assert!(
            per_sample < most,
            "jitter {jitter_ms} ms: {per_sample:.2} bytes a sample"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Index answers equal the brute-force ones over all time, lie between the brute-force
    /// answers of the range and of all time otherwise, and the counts stay exact.
    #[test]
    fn label_index_answers_match_brute_force(
        ops in proptest::collection::vec(op(), 1..12),
        range in (0i64..110, 0i64..110),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let head = Head::new();
        for op in ops {
            match op {
                Op::Append(batch) => {
                    let series: Vec<Series> = batch
                        .iter()
                        .map(|(metric, pod, job, ts)| {
                            let (metric, pod) = (format!("m{metric}"), format!("p{pod}"));
                            let mut pairs = vec![("__name__", metric.as_str()), ("pod", pod.as_str())];
                            if *job {
                                pairs.push(("job", "j"));
                            }
                            let samples: Vec<(i64, f64)> = ts.iter().map(|&t| (t, t as f64)).collect();
                            s(&pairs, &samples)
                        })
                        .collect();
                    head.append_series(&series);
                }
                Op::Freeze => {
                    head.freeze();
                }
                Op::DropOldest => {
                    if let Some(oldest) = head.frozen().first() {
                        head.drop_frozen(oldest);
                    }
                }
            }
            assert_indexes_exact(&head);
        }
        let (all_names, all_values) = brute_force(&head, TimeRange::ALL);
        let names = |r| rt.block_on(head.label_names(&SelectRequest::new(Vec::new(), r))).unwrap();
        let values = |n: &str, m: Vec<Matcher>, r| rt.block_on(head.label_values(n, &SelectRequest::new(m, r))).unwrap();
        let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<String>>();
        prop_assert_eq!(set(names(TimeRange::ALL)), all_names.clone());
        for name in ["__name__", "pod", "job", "absent"] {
            let want = all_values.get(name).cloned().unwrap_or_default();
            prop_assert_eq!(set(values(name, Vec::new(), TimeRange::ALL)), want.clone());
            let m = Matcher::new(MatchOp::RegexMatch, name, "p[0-2]|m1").unwrap();
            let filtered: BTreeSet<String> = want.iter().filter(|v| m.matches(v)).cloned().collect();
            prop_assert_eq!(set(values(name, vec![m], TimeRange::ALL)), filtered);
        }
        let range = TimeRange::new(range.0.min(range.1), range.0.max(range.1));
        let (lower_names, lower_values) = brute_force(&head, range);
        let got = set(names(range));
        prop_assert!(lower_names.is_subset(&got) && got.is_subset(&all_names));
        for name in ["__name__", "pod", "job"] {
            let got = set(values(name, Vec::new(), range));
            let lower = lower_values.get(name).cloned().unwrap_or_default();
            let upper = all_values.get(name).cloned().unwrap_or_default();
            prop_assert!(lower.is_subset(&got) && got.is_subset(&upper), "{name}: {got:?}");
        }
    }
}

fn selector_matcher() -> impl Strategy<Value = Matcher> {
    let value = prop_oneof![Just(""), Just("m0"), Just("m1"), Just("c0"), Just("c1"), Just("p1")];
    let op = prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::RegexMatch),
        Just(MatchOp::RegexNoMatch)
    ];
    let name = prop_oneof![Just("__name__"), Just("cluster"), Just("pod")];
    (op, name, value, any::<bool>()).prop_map(|(op, name, value, wide)| {
        let value = if wide && matches!(op, MatchOp::RegexMatch | MatchOp::RegexNoMatch) {
            format!("{value}|c2|m2")
        } else {
            value.to_string()
        };
        Matcher::new(op, name, &value).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Selecting through the name and cluster postings finds exactly the series a walk over
    /// every series with every matcher finds, in the active part and in frozen blocks.
    #[test]
    fn postings_select_what_a_full_walk_selects(
        series in proptest::collection::vec((0u8..3, 0u8..4, 0u8..3), 1..40),
        freeze_after in 0usize..40,
        matchers in proptest::collection::vec(selector_matcher(), 0..4),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let head = Head::new();
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for (i, (metric, cluster, pod)) in series.into_iter().enumerate() {
            let (metric, cluster, pod) = (format!("m{metric}"), format!("c{cluster}"), format!("p{pod}"));
            let mut pairs = vec![("__name__", metric.as_str()), ("pod", pod.as_str())];
            if cluster != "c3" {
                // c3 stands for a series without the label.
                pairs.push(("cluster", cluster.as_str()));
            }
            let one = s(&pairs, &[(i as i64, 1.0)]);
            all.insert(one.labels.clone());
            head.append_series(std::slice::from_ref(&one));
            if i == freeze_after {
                head.freeze();
            }
        }
        let want: BTreeSet<Labels> = all.into_iter().filter(|l| matches_all(&matchers, l)).collect();
        let req = SelectRequest::new(matchers.clone(), TimeRange::ALL);
        let got: BTreeSet<Labels> = rt.block_on(head.series(&req)).unwrap().into_iter().collect();
        prop_assert_eq!(&got, &want, "{:?}", matchers);
        let selected: BTreeSet<Labels> = rt.block_on(head.select(&req)).unwrap().into_iter().map(|s| s.labels).collect();
        prop_assert_eq!(selected, want);
    }
}

/// A select big enough to run on several threads returns what was appended: every series
/// once, samples in range sorted and deduplicated (also for series appended out of order).
#[tokio::test]
async fn big_selects_copy_shards_in_parallel() {
    let head = Head::new();
    let n = PARALLEL_SELECT_SERIES + 500;
    let mut expected: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for i in 0..n {
        let (pod, cluster) = (format!("p{i}"), format!("c{}", i % 3));
        let pairs = [("__name__", "m"), ("cluster", cluster.as_str()), ("pod", pod.as_str())];
        // Every 7th series arrives out of order, with a repeated timestamp (the later wins).
        let samples: Vec<(i64, f64)> = if i % 7 == 0 {
            vec![(30, 3.0), (10, 1.0), (20, 2.0), (20, 2.5)]
        } else {
            vec![(10, 1.0), (20, 2.0), (30, 3.0)]
        };
        let one = s(&pairs, &samples);
        head.append_series(std::slice::from_ref(&one));
        let want = if i % 7 == 0 {
            vec![(10, 1.0), (20, 2.5)]
        } else {
            vec![(10, 1.0), (20, 2.0)]
        };
        expected.insert(one.labels, want.into_iter().map(|(t, v)| Sample::new(t, v)).collect());
    }
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::new(0, 25));
    let lookup = Lookup::new(&req.matchers);
    let candidates: usize = head.shards.iter().map(|s| s.lock().candidates(&lookup)).sum();
    assert!(candidates >= PARALLEL_SELECT_SERIES);
    for threads in [2, 3, 16] {
        let got: BTreeMap<Labels, Vec<Sample>> = head
            .select_active_parallel(&req, threads)
            .into_iter()
            .map(|s| (s.labels, s.samples))
            .collect();
        assert_eq!(got.len(), n, "{threads} threads: each series once");
        assert_eq!(got, expected, "{threads} threads");
    }
    let selected = head.select(&req).await.unwrap();
    assert_eq!(selected.len(), n);
    let one_cluster = SelectRequest::new(
        vec![Matcher::equal("__name__", "m"), Matcher::equal("cluster", "c1")],
        TimeRange::new(0, 25),
    );
    let in_c1 = (0..n).filter(|i| i % 3 == 1).count();
    assert_eq!(head.select(&one_cluster).await.unwrap().len(), in_c1);
}

#[tokio::test]
async fn label_listings_with_other_matchers_take_the_exact_path() {
    let head = Head::new();
    head.append_series(&[
        s(&[("__name__", "a"), ("pod", "p1")], &[(1, 1.0)]),
        s(&[("__name__", "b"), ("pod", "p2")], &[(100, 1.0)]),
    ]);
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "a")], TimeRange::ALL);
    assert_eq!(head.label_values("pod", &req).await.unwrap(), ["p1"]);
    assert_eq!(head.label_names(&req).await.unwrap(), ["__name__", "pod"]);
    // Without matchers, the index answers for a whole block when its span overlaps.
    head.freeze();
    let early = SelectRequest::new(Vec::new(), TimeRange::new(0, 10));
    assert_eq!(head.label_values("pod", &early).await.unwrap(), ["p1", "p2"]);
    let before = SelectRequest::new(Vec::new(), TimeRange::new(-10, 0));
    assert!(head.label_values("pod", &before).await.unwrap().is_empty());
    assert!(head.label_names(&before).await.unwrap().is_empty());
}

fn log(cluster: &str, t: i64, body: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(&[("cluster", cluster), ("service_name", "api")]).into(),
        timestamp: t,
        body: body.to_string(),
        attributes: "{}".into(),
        resource_attributes: "{}".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn logs_are_selected_across_blocks_in_direction_with_limit_and_hints() {
    let head = Head::new();
    head.append_signals(SignalBlock {
        logs: vec![
            log("a", 1, "GET /x 200"),
            log("b", 2, "GET /y 500"),
            log("a", 3, "error: boom"),
        ],
        ..Default::default()
    });
    head.freeze();
    head.append_signals(SignalBlock {
        // A client retry resends record 3; it is returned once.
        logs: vec![
            log("a", 3, "error: boom"),
            log("a", 4, "GET /z 500"),
            log("a", 10, "late"),
        ],
        ..Default::default()
    });
    let req = |matchers: Vec<Matcher>, hints: Vec<LineHint>, direction, limit| LogRequest {
        matchers,
        start: 1,
        end: 10,
        line_hints: hints,
        direction,
        limit,
    };
    let bodies = |r: Vec<LogRecord>| r.into_iter().map(|r| r.body).collect::<Vec<_>>();
    let a = vec![Matcher::equal("cluster", "a")];
    assert_eq!(
        bodies(
            head.select_logs(&req(a.clone(), vec![], Direction::Forward, None))
                .await
                .unwrap()
        ),
        ["GET /x 200", "error: boom", "GET /z 500"]
    );
    assert_eq!(
        bodies(
            head.select_logs(&req(a.clone(), vec![], Direction::Backward, Some(2)))
                .await
                .unwrap()
        ),
        ["GET /z 500", "error: boom"]
    );
    let hints = vec![LineHint::Contains("GET".into()), LineHint::NotContains("200".into())];
    assert_eq!(
        bodies(
            head.select_logs(&req(vec![], hints, Direction::Forward, None))
                .await
                .unwrap()
        ),
        ["GET /y 500", "GET /z 500"]
    );
    let streams = head
        .log_streams(&req(vec![], vec![], Direction::Forward, None))
        .await
        .unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!(
        head.log_label_values("cluster", &req(vec![], vec![], Direction::Forward, None))
            .await
            .unwrap(),
        ["a", "b"]
    );
}

/// The writer's view of a frozen block: every series once, its samples decoded sorted and
/// unique for any range asked (the later arrival winning a repeated timestamp), the same each time.
#[test]
fn a_frozen_block_gives_the_writer_each_series_sorted_for_any_range() {
    use tributary_storage::types::TimeRange;
    let head = Head::new();
    let series = |cluster: &str, n: usize| -> Vec<Series> {
        (0..n)
            .map(|i| {
                let samples: Vec<(i64, f64)> = (0..10).rev().map(|t| (t * 1000, t as f64)).collect();
                s(
                    &[("__name__", "m"), ("cluster", cluster), ("i", &i.to_string())],
                    &samples,
                )
            })
            .collect()
    };
    for (cluster, n) in [("b", 5), ("a", 3), ("c", 1)] {
        head.append_series(&series(cluster, n));
    }
    // A repeated timestamp: the later arrival wins.
    head.append_series(&[s(&[("__name__", "m"), ("cluster", "c"), ("i", "0")], &[(4000, 40.0)])]);
    let block = head.freeze();
    let inputs = block.series_inputs();
    assert_eq!(inputs.len(), 9);
    assert_eq!(block.series_count(), 9);
    for input in &inputs {
        let all = input.samples_in(TimeRange::ALL);
        let ts: Vec<i64> = all.iter().map(|x| x.timestamp).collect();
        assert_eq!(
            ts,
            (0..10).map(|t| t * 1000).collect::<Vec<_>>(),
            "decoded sorted, once each"
        );
        let mid = input.samples_in(TimeRange::new(3000, 5000));
        assert_eq!(
            mid.iter().map(|x| x.timestamp).collect::<Vec<_>>(),
            vec![3000, 4000, 5000]
        );
        let want = if input.labels().get("cluster") == Some("c") {
            40.0
        } else {
            4.0
        };
        assert_eq!(mid[1].value, want, "{}", input.labels());
        assert_eq!(
            input.samples_in(TimeRange::new(3000, 5000)),
            mid,
            "the same samples each time"
        );
    }
}

/// The head's volume counts every record it holds once, in its stream and bucket, across runs
/// of one stream, interleaved streams and blocks.
#[tokio::test]
async fn log_volume_counts_each_held_record_in_its_stream_and_bucket() {
    use tributary_storage::read::{VolumeRequest, volume_of_records};
    let head = Head::new();
    let mut all = Vec::new();
    for block in 0..2 {
        let logs: Vec<LogRecord> = (0..60)
            .map(|i| {
                // Runs of one stream, then interleaved streams; times cross bucket edges.
                let cluster = if i < 20 { "a" } else { ["a", "b", "c"][i % 3] };
                log(cluster, (block * 60 + i) as i64, &"x".repeat(i % 7 + 1))
            })
            .collect();
        all.extend(logs.clone());
        head.append_signals(SignalBlock {
            logs,
            ..Default::default()
        });
        head.freeze();
    }
    let req = VolumeRequest {
        logs: LogRequest {
            matchers: vec![Matcher::new(MatchOp::RegexMatch, "cluster", "a|b").unwrap()],
            start: 5,
            end: 110,
            line_hints: Vec::new(),
            direction: Direction::Forward,
            limit: None,
        },
        origin: 0,
        step: 8,
    };
    let want: Vec<&LogRecord> = all
        .iter()
        .filter(|r| (5..110).contains(&r.timestamp) && r.labels.get("cluster") != Some("c"))
        .collect();
    let got = head.log_volume(&req).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got, volume_of_records(&req, want));
}

/// The head's patterns cluster the newest `max_lines` records it holds, across blocks, and say
/// when older ones were left out; a limited select keeps the first distinct records of a
/// block holding copies.
#[tokio::test]
async fn log_patterns_cluster_the_newest_lines_across_blocks() {
    use tributary_storage::read::PatternRequest;
    let head = Head::new();
    for block in 0..2i64 {
        let logs: Vec<LogRecord> = (0..50i64)
            .map(|i| {
                let t = block * 50 + i;
                let body = if t % 2 == 0 {
                    format!("request {t} took {}ms", t * 3)
                } else {
                    format!("cache miss for key k{t} on shard {}", t % 4)
                };
                log(["a", "b"][(t % 2) as usize], t, &body)
            })
            .collect();
        head.append_signals(SignalBlock {
            logs,
            ..Default::default()
        });
        if block == 0 {
            head.freeze();
        }
    }
    let req = |max_lines| PatternRequest {
        logs: LogRequest {
            matchers: vec![Matcher::new(MatchOp::Equal, "service_name", "api").unwrap()],
            start: 10,
            end: 100,
            line_hints: Vec::new(),
            direction: Direction::Forward,
            limit: None,
        },
        step: 30,
        max_lines,
    };
    let got = head.log_patterns(&req(1_000)).await.unwrap();
    assert!(!got.truncated);
    let shapes: Vec<(&str, Vec<(i64, u64)>)> = got
        .series
        .iter()
        .map(|s| (s.pattern.as_str(), s.samples.clone()))
        .collect();
    assert_eq!(
        shapes,
        [
            (
                "cache miss for key <_> on shard <_>",
                vec![(0, 10), (30, 15), (60, 15), (90, 5)]
            ),
            ("request <_> took <_>", vec![(0, 10), (30, 15), (60, 15), (90, 5)]),
        ]
    );
    // The newest 20 lines only (times 80 to 99), and the answer says lines were left out.
    let got = head.log_patterns(&req(20)).await.unwrap();
    assert!(got.truncated);
    let buckets: Vec<(i64, u64)> = got.series.iter().flat_map(|s| s.samples.clone()).collect();
    assert_eq!(buckets, [(60, 5), (90, 5), (60, 5), (90, 5)]);
}

#[tokio::test]
async fn a_limited_select_keeps_the_first_distinct_records_of_a_block_with_copies() {
    let head = Head::new();
    // Every record three times (client retries), in one block.
    let logs: Vec<LogRecord> = (0..30i64)
        .flat_map(|t| std::iter::repeat_n(log("a", t, &format!("line {t}")), 3))
        .collect();
    head.append_signals(SignalBlock {
        logs,
        ..Default::default()
    });
    for (direction, want) in [
        (Direction::Forward, [0, 1, 2, 3, 4]),
        (Direction::Backward, [29, 28, 27, 26, 25]),
    ] {
        let req = LogRequest {
            matchers: Vec::new(),
            start: 0,
            end: 100,
            line_hints: Vec::new(),
            direction,
            limit: Some(5),
        };
        let got: Vec<i64> = head
            .select_logs(&req)
            .await
            .unwrap()
            .iter()
            .map(|r| r.timestamp)
            .collect();
        assert_eq!(got, want, "{direction:?}");
    }
}
