use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use tributary_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tributary_proto::otlp::common::v1::{KeyValue, any_value};
use tributary_proto::otlp::metrics::v1::metric::Data;

use super::*;
use crate::workload::cluster_name;

fn small(signal: Signal) -> Config {
    Config {
        clusters: 2,
        pods_per_cluster: 60,
        rounds: 4,
        log_records_per_second: 3000.0,
        collectors_per_cluster: 3,
        seed: 5,
        ..Config::reference(signal)
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn all(cfg: &Config) -> Vec<RawRequest> {
    requests(cfg).expect("valid config").collect()
}

/// A stable identity for a data point: resource pod + metric + attributes.
fn point_key(pod: &str, metric: &str, attrs: &[KeyValue]) -> String {
    format!("{pod}|{metric}|{attrs:?}")
}

#[test]
fn same_config_same_bytes_and_seed_changes_them() {
    for signal in [Signal::Metrics, Signal::Logs] {
        let cfg = small(signal);
        let a = all(&cfg);
        let b = all(&cfg);
        assert!(!a.is_empty());
        assert_eq!(a, b, "{signal:?}");
        let other = all(&Config { seed: 6, ..cfg.clone() });
        assert_ne!(a[0].body, other[0].body, "{signal:?}");
    }
}

#[test]
fn config_validation_rejects_nonsense() {
    let ok = Config::reference(Signal::Metrics);
    assert!(ok.validate().is_ok());
    for bad in [
        Config {
            interval_ms: 0,
            ..ok.clone()
        },
        Config {
            collectors_per_cluster: 0,
            ..ok.clone()
        },
        Config {
            batch_size: 0,
            ..ok.clone()
        },
        Config {
            batch_max_size: 10,
            ..ok.clone()
        },
        Config {
            exemplar_fraction: 1.5,
            ..ok.clone()
        },
        Config {
            log_records_per_second: f64::NAN,
            ..ok.clone()
        },
    ] {
        assert!(requests(&bad).is_err(), "{bad:?}");
    }
    let end = ok.start_ending_before(1_700_000_123_456);
    assert_eq!(end % 15_000, 0);
    assert!(end + (ok.rounds as i64) * 15_000 < 1_700_000_123_456);
}

#[test]
fn metrics_requests_decode_into_collector_shaped_batches() {
    let cfg = small(Signal::Metrics);
    let reqs = all(&cfg);
    let mut per_round_points: BTreeMap<usize, u64> = BTreeMap::new();
    let mut seen: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    let mut stream_of_pod: HashMap<String, usize> = HashMap::new();
    let (mut kinds, mut exemplars, mut with_trace) = (BTreeMap::<&str, u64>::new(), 0u64, 0u64);
    let mut last_stream_round: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, r) in reqs.iter().enumerate() {
        let req = ExportMetricsServiceRequest::decode(r.body.as_slice()).expect("valid protobuf");
        assert_eq!(r.cluster, r.stream / cfg.collectors_per_cluster);
        let (mut points, mut samples) = (0u64, 0u64);
        for rm in &req.resource_metrics {
            let res = &rm.resource.as_ref().expect("resource").attributes;
            assert_eq!(
                attr_str(res, "k8s.cluster.name"),
                Some(cluster_name(r.cluster).as_str())
            );
            for key in [
                "service.name",
                "service.instance.id",
                "k8s.namespace.name",
                "k8s.node.name",
            ] {
                assert!(attr_str(res, key).is_some_and(|v| !v.is_empty()), "{key}");
            }
            let pod = attr_str(res, "k8s.pod.name").expect("pod").to_owned();
            // A pod always goes through the same Collector, hence the same stream.
            assert_eq!(*stream_of_pod.entry(pod.clone()).or_insert(r.stream), r.stream, "{pod}");
            for sm in &rm.scope_metrics {
                assert!(!sm.scope.as_ref().expect("scope").name.is_empty());
                for m in &sm.metrics {
                    let mut note = |attrs: &[KeyValue], start: u64, time: u64| {
                        assert!(start > 0 && start < time, "{}: start {start} time {time}", m.name);
                        seen.entry(point_key(&pod, &m.name, attrs)).or_default().push((i, time));
                    };
                    match m.data.as_ref().expect("data") {
                        Data::Sum(s) => {
                            assert_eq!(s.aggregation_temporality, 2, "cumulative");
                            *kinds
                                .entry(if s.is_monotonic { "counter" } else { "updown" })
                                .or_default() += 1;
                            for p in &s.data_points {
                                note(&p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                            }
                            points += s.data_points.len() as u64;
                            samples += s.data_points.len() as u64;
                        }
                        Data::Gauge(g) => {
                            *kinds.entry("gauge").or_default() += 1;
                            for p in &g.data_points {
                                note(&p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                            }
                            points += g.data_points.len() as u64;
                            samples += g.data_points.len() as u64;
                        }
                        Data::Histogram(h) => {
                            assert_eq!(h.aggregation_temporality, 2, "cumulative");
                            *kinds.entry("histogram").or_default() += 1;
                            for p in &h.data_points {
                                note(&p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                                assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                                assert!(p.explicit_bounds.windows(2).all(|w| w[0] < w[1]));
                                assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count, "{}", m.name);
                                if p.count > 0 {
                                    let (min, max) = (p.min.expect("min"), p.max.expect("max"));
                                    assert!(min <= max && min >= 0.0);
                                }
                                for e in &p.exemplars {
                                    exemplars += 1;
                                    assert_eq!((e.trace_id.len(), e.span_id.len()), (16, 8));
                                    assert!(e.time_unix_nano <= p.time_unix_nano);
                                    with_trace += 1;
                                }
                                samples += p.bucket_counts.len() as u64 + 2;
                            }
                            points += h.data_points.len() as u64;
                        }
                        other => panic!("unexpected metric type {other:?}"),
                    }
                }
            }
        }
        assert_eq!(points, r.items);
        assert_eq!(samples, r.samples);
        assert!(points <= cfg.batch_max_size as u64, "{points}");
        *per_round_points.entry(r.round).or_default() += points;
        // Rounds never go backwards within a stream.
        let last = last_stream_round.entry((r.stream, r.cluster)).or_insert(r.round);
        assert!(r.round >= *last);
        *last = r.round;
    }
    // Every point is exported exactly once per round, with strictly increasing timestamps, all
    // on one stream.
    let per_round: Vec<u64> = per_round_points.values().copied().collect();
    assert_eq!(per_round.len(), cfg.rounds);
    assert!(per_round.windows(2).all(|w| w[0] == w[1]), "{per_round:?}");
    for (key, times) in &seen {
        assert_eq!(times.len(), cfg.rounds, "{key}");
        assert!(times.windows(2).all(|w| w[0].1 < w[1].1 && w[0].0 < w[1].0), "{key}");
    }
    for kind in ["counter", "updown", "gauge", "histogram"] {
        assert!(kinds.get(kind).is_some_and(|&n| n > 0), "{kind}: {kinds:?}");
    }
    assert!(exemplars > 0 && with_trace == exemplars);
}

#[test]
fn metrics_requests_carry_1000_to_2000_points_like_a_batching_collector() {
    let cfg = Config {
        rounds: 2,
        ..Config::reference(Signal::Metrics)
    };
    let reqs = all(&cfg);
    let mut by_stream_round: HashMap<(usize, usize), Vec<u64>> = HashMap::new();
    for r in &reqs {
        by_stream_round.entry((r.stream, r.round)).or_default().push(r.items);
    }
    assert_eq!(by_stream_round.len(), cfg.streams() * cfg.rounds);
    for sizes in by_stream_round.values() {
        // All but the round's last request (the batch timeout) reach send_batch_size.
        let (last, full) = sizes.split_last().expect("non-empty");
        assert!(full.iter().all(|&n| (1000..=2000).contains(&n)), "{sizes:?}");
        assert!(*last <= 2000);
    }
    let points: u64 = reqs.iter().map(|r| r.items).sum();
    let samples: u64 = reqs.iter().map(|r| r.samples).sum();
    let bytes: usize = reqs.iter().map(|r| r.body.len()).sum();
    // The round's last, partial batch of each Collector pulls the mean below the batch size.
    let mean = points as f64 / reqs.len() as f64;
    assert!((800.0..=2000.0).contains(&mean), "{mean}");
    // Realistic weight: ~40-60 points per pod, histograms expanding to several samples per point,
    // and over a hundred protobuf bytes per point (attributes are repeated on every point).
    let per_pod = points as f64 / (cfg.clusters * cfg.pods_per_cluster * cfg.rounds) as f64;
    assert!((25.0..=90.0).contains(&per_pod), "{per_pod}");
    let samples_per_point = samples as f64 / points as f64;
    assert!((3.0..=12.0).contains(&samples_per_point), "{samples_per_point}");
    let bytes_per_point = bytes as f64 / points as f64;
    assert!((80.0..=600.0).contains(&bytes_per_point), "{bytes_per_point}");
}

#[test]
fn cumulative_values_never_go_backwards() {
    let cfg = Config {
        rounds: 6,
        ..small(Signal::Metrics)
    };
    let mut last: HashMap<String, (f64, Vec<u64>)> = HashMap::new();
    for r in all(&cfg) {
        let req = ExportMetricsServiceRequest::decode(r.body.as_slice()).expect("valid");
        for rm in &req.resource_metrics {
            let pod = attr_str(&rm.resource.as_ref().expect("resource").attributes, "k8s.pod.name")
                .expect("pod")
                .to_owned();
            for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                match m.data.as_ref().expect("data") {
                    Data::Sum(s) if s.is_monotonic => {
                        for p in &s.data_points {
                            let v = match p.value {
                                Some(number_value::AsInt(v)) => v as f64,
                                Some(number_value::AsDouble(v)) => v,
                                None => panic!("no value"),
                            };
                            let prev = last.insert(point_key(&pod, &m.name, &p.attributes), (v, vec![]));
                            assert!(prev.is_none_or(|(pv, _)| pv <= v), "{} went back", m.name);
                        }
                    }
                    Data::Histogram(h) => {
                        for p in &h.data_points {
                            let key = point_key(&pod, &m.name, &p.attributes);
                            let prev = last.insert(key, (p.sum.expect("sum"), p.bucket_counts.clone()));
                            if let Some((sum, buckets)) = prev {
                                assert!(sum <= p.sum.expect("sum"));
                                assert!(buckets.iter().zip(&p.bucket_counts).all(|(a, b)| a <= b));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(!last.is_empty());
}

use tributary_proto::otlp::metrics::v1::number_data_point::Value as number_value;

#[test]
fn logs_requests_decode_into_realistic_records() {
    let cfg = small(Signal::Logs);
    let reqs = all(&cfg);
    let start_ns = cfg.start_ms as u64 * 1_000_000;
    let end_ns = start_ns + cfg.rounds as u64 * cfg.interval_ms * 1_000_000;
    let (mut records, mut traced, mut body_bytes) = (0u64, 0u64, Vec::new());
    let mut severities: BTreeMap<i32, u64> = BTreeMap::new();
    let mut last_time: HashMap<String, u64> = HashMap::new();
    let mut styles: HashSet<&str> = HashSet::new();
    for (i, r) in reqs.iter().enumerate() {
        let req = ExportLogsServiceRequest::decode(r.body.as_slice()).expect("valid protobuf");
        let mut n = 0;
        for rl in &req.resource_logs {
            let res = &rl.resource.as_ref().expect("resource").attributes;
            assert_eq!(
                attr_str(res, "k8s.cluster.name"),
                Some(cluster_name(r.cluster).as_str())
            );
            let pod = attr_str(res, "k8s.pod.name").expect("pod").to_owned();
            for sl in &rl.scope_logs {
                for rec in &sl.log_records {
                    n += 1;
                    assert!((start_ns..end_ns).contains(&rec.time_unix_nano));
                    assert!(rec.observed_time_unix_nano >= rec.time_unix_nano);
                    // Per pod, time order holds across the whole run (one stream per pod).
                    let prev = last_time.insert(
                        format!("{pod}|{}", sl.scope.as_ref().map_or("", |s| &s.name)),
                        rec.time_unix_nano,
                    );
                    assert!(prev.is_none_or(|p| p <= rec.time_unix_nano), "request {i}");
                    *severities.entry(rec.severity_number).or_default() += 1;
                    if !rec.trace_id.is_empty() {
                        traced += 1;
                        assert_eq!((rec.trace_id.len(), rec.span_id.len(), rec.flags), (16, 8, 1));
                    }
                    let Some(any_value::Value::StringValue(body)) = rec.body.as_ref().and_then(|b| b.value.as_ref())
                    else {
                        panic!("body is not a string");
                    };
                    body_bytes.push(body.len());
                    if body.starts_with('{') {
                        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok(), "{body}");
                        styles.insert("json");
                    } else if body.contains("HTTP/1.1\"") {
                        styles.insert("access");
                    } else if body.contains(" [worker.") {
                        styles.insert("python");
                    } else {
                        styles.insert("java");
                    }
                    assert!(!rec.attributes.is_empty());
                }
            }
        }
        assert_eq!(n, r.items);
        assert!(n <= cfg.batch_max_size as u64);
        records += n;
    }
    let expected =
        cfg.log_records_per_second * cfg.clusters as f64 * cfg.rounds as f64 * cfg.interval_ms as f64 / 1000.0;
    assert!(
        (records as f64 - expected).abs() < expected * 0.15,
        "{records} vs {expected}"
    );
    body_bytes.sort_unstable();
    let median = body_bytes[body_bytes.len() / 2];
    assert!((150..=300).contains(&median), "median body {median} B");
    let within = body_bytes.iter().filter(|&&b| (130..=330).contains(&b)).count();
    assert!(
        within as f64 > 0.9 * body_bytes.len() as f64,
        "{within} of {}",
        body_bytes.len()
    );
    for sev in [5, 9, 13, 17] {
        assert!(severities.get(&sev).is_some_and(|&n| n > 0), "{severities:?}");
    }
    assert!(severities[&9] as f64 > 0.5 * records as f64);
    assert!(traced > 0 && traced < records, "{traced} of {records} traced");
    assert_eq!(styles.len(), 4, "{styles:?}");
}

#[test]
fn loki_bodies_carry_every_record_once_in_labelled_streams_in_time_order() {
    use tributary_proto::loki as pb;
    let cfg = small(Signal::Logs);
    let raw = all(&cfg);
    let p = prepare(requests(&cfg).expect("valid"), Compression::Gzip, Transport::Loki, 1).expect("prepared");
    assert_eq!(p.items, raw.iter().map(|r| r.items).sum::<u64>());
    let mut last_ts: HashMap<Vec<u8>, (i64, i32)> = HashMap::new();
    let mut with_trace = 0;
    for (body, r) in p.queues[0].iter().zip(&raw) {
        let protobuf = snap::raw::Decoder::new()
            .decompress_vec(&body.body)
            .expect("snappy block");
        let push = pb::PushRequest::decode(protobuf.as_slice()).expect("a logproto.PushRequest");
        let entries: usize = push.streams.iter().map(|s| s.entries.len()).sum();
        assert_eq!(entries as u64, r.items, "every record of the OTLP request, once");
        for s in &push.streams {
            let labels = String::from_utf8(s.labels.clone()).expect("UTF-8 labels");
            for name in [
                "app=",
                "cluster=\"",
                "container=",
                "job=",
                "namespace=",
                "pod=",
                "stream=\"std",
            ] {
                assert!(labels.contains(name), "{labels} lacks {name}");
            }
            for e in &s.entries {
                let ts = e.timestamp.as_ref().map(|t| (t.seconds, t.nanos)).expect("a timestamp");
                let prev = last_ts.insert(s.labels.clone(), ts);
                assert!(
                    prev.is_none_or(|p| p <= ts),
                    "{labels}: entries out of order: {prev:?} then {ts:?}"
                );
                assert!(!e.line.is_empty());
                with_trace += usize::from(e.structured_metadata.iter().any(|m| m.name == b"trace_id"));
            }
        }
    }
    assert!(
        with_trace > 0,
        "the Java pods' request-scoped records carry their trace ids"
    );
}

#[test]
fn logs_batches_reach_the_batch_size_except_the_last_per_stream() {
    let cfg = small(Signal::Logs);
    let mut by_stream: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for r in all(&cfg) {
        by_stream.entry(r.stream).or_default().push(r.items);
    }
    assert_eq!(by_stream.len(), cfg.streams());
    for sizes in by_stream.values() {
        let (last, full) = sizes.split_last().expect("non-empty");
        assert!(full.iter().all(|&n| (1000..=2000).contains(&n)), "{sizes:?}");
        assert!(*last > 0 && *last <= 2000);
    }
}

#[test]
fn prepared_bodies_are_the_gzipped_protobuf_and_grpc_frames_are_well_formed() {
    let cfg = small(Signal::Metrics);
    let raw: Vec<RawRequest> = all(&cfg);
    for (compression, transport) in [
        (Compression::Gzip, Transport::Http),
        (Compression::None, Transport::Http),
        (Compression::Gzip, Transport::Grpc),
        (Compression::None, Transport::Grpc),
    ] {
        let p = prepare(requests(&cfg).expect("valid"), compression, transport, 2).expect("prepared");
        assert_eq!(p.requests as usize, raw.len());
        assert_eq!(p.items, raw.iter().map(|r| r.items).sum::<u64>());
        assert_eq!(p.raw_bytes, raw.iter().map(|r| r.body.len() as u64).sum::<u64>());
        assert_eq!(p.queues.len(), 2);
        // Connection c carries the streams s with s % 2 == c, in generation order.
        for c in 0..2 {
            let expected: Vec<&RawRequest> = raw.iter().filter(|r| r.stream % 2 == c).collect();
            assert_eq!(p.queues[c].len(), expected.len());
            for (body, r) in p.queues[c].iter().zip(expected) {
                assert_eq!(body.items, r.items);
                let payload = match transport {
                    Transport::Http | Transport::Loki => body.body.to_vec(),
                    Transport::Grpc => {
                        assert_eq!(body.body[0], u8::from(compression == Compression::Gzip));
                        let len = u32::from_be_bytes(body.body[1..5].try_into().expect("4 bytes")) as usize;
                        assert_eq!(len + 5, body.body.len());
                        body.body[5..].to_vec()
                    }
                };
                let protobuf = match compression {
                    Compression::None => payload,
                    Compression::Gzip => {
                        let mut out = vec![];
                        flate2::read::GzDecoder::new(payload.as_slice())
                            .read_to_end(&mut out)
                            .expect("valid gzip");
                        out
                    }
                };
                assert_eq!(protobuf, r.body);
            }
        }
        if compression == Compression::Gzip {
            assert!(p.body_bytes * 4 < p.raw_bytes, "{} vs {}", p.body_bytes, p.raw_bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sending

/// An OTLP/HTTP receiver answering from a script (then a plain success forever).
#[derive(Default)]
struct Script {
    /// (status, rejected points) per request.
    answers: Vec<(StatusCode, i64)>,
    received: Vec<(String, Vec<u8>)>,
}

async fn serve_http(script: Script) -> (String, Arc<Mutex<Script>>) {
    let state = Arc::new(Mutex::new(script));
    let app =
        axum::Router::new()
            .route(
                "/v1/metrics",
                axum::routing::post(
                    |axum::extract::State(s): axum::extract::State<Arc<Mutex<Script>>>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let mut s = s.lock().expect("lock");
                        let encoding = headers
                            .get("content-encoding")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        s.received.push((encoding, body.to_vec()));
                        let (status, rejected) = if s.answers.is_empty() {
                            (StatusCode::OK, 0)
                        } else {
                            s.answers.remove(0)
                        };
                        let resp = ExportMetricsServiceResponse {
                            partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                                rejected_data_points: rejected,
                                error_message: "delta temporality is not supported".into(),
                            }),
                        };
                        let mut h = HeaderMap::new();
                        h.insert("content-type", "application/x-protobuf".parse().expect("header"));
                        if status == StatusCode::SERVICE_UNAVAILABLE {
                            h.insert("retry-after", "0".parse().expect("header"));
                        }
                        (status, h, resp.encode_to_vec())
                    },
                ),
            )
            .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

fn bodies(n: usize, items: u64, compression: Compression, transport: Transport) -> (Vec<Vec<u8>>, Vec<send::Body>) {
    let raw: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            ExportMetricsServiceRequest {
                resource_metrics: vec![tributary_proto::otlp::metrics::v1::ResourceMetrics {
                    schema_url: format!("request-{i}"),
                    ..Default::default()
                }],
            }
            .encode_to_vec()
        })
        .collect();
    let prepared = raw
        .iter()
        .map(|r| send::Body {
            body: frame(r, compression, transport),
            items,
        })
        .collect();
    (raw, prepared)
}

fn fast(opts: &mut send::Options) {
    opts.min_backoff = std::time::Duration::from_millis(1);
    opts.max_backoff = std::time::Duration::from_millis(5);
    opts.timeout = std::time::Duration::from_secs(10);
}

#[tokio::test]
async fn http_replay_retries_unavailable_and_reports_partial_success_rejections() {
    let (url, state) = serve_http(Script {
        answers: vec![
            (StatusCode::SERVICE_UNAVAILABLE, 0),
            (StatusCode::OK, 0),
            (StatusCode::OK, 7),
            (StatusCode::BAD_REQUEST, 0),
        ],
        ..Script::default()
    })
    .await;
    let (raw, prepared) = bodies(4, 100, Compression::Gzip, Transport::Http);
    let mut opts = send::Options::new(url, Transport::Http, Signal::Metrics, Compression::Gzip);
    fast(&mut opts);
    let out = send::replay(vec![prepared], &opts).await.expect("replay");
    assert_eq!(
        (out.requests, out.requests_ok, out.requests_failed, out.retries),
        (4, 3, 1, 1)
    );
    assert_eq!((out.items_acked, out.items_rejected, out.items_failed), (293, 7, 100));
    assert!(!out.clean());
    assert_eq!(out.errors_by_status.get("partial_success"), Some(&1));
    assert_eq!(out.errors_by_status.get("503"), Some(&1));
    assert!(
        out.error_examples
            .iter()
            .any(|e| e.contains("7 of 100 rejected: delta")),
        "{:?}",
        out.error_examples
    );
    let s = state.lock().expect("lock");
    // The retried body went out twice; every body arrived gzipped and intact, in order.
    assert_eq!(s.received.len(), 5);
    let got: Vec<Vec<u8>> = s
        .received
        .iter()
        .map(|(enc, body)| {
            assert_eq!(enc, "gzip");
            let mut out = vec![];
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut out)
                .expect("gzip");
            out
        })
        .collect();
    assert_eq!(got[0], raw[0]);
    assert_eq!(&got[1..], &raw[..]);
}

#[tokio::test]
async fn http_replay_of_a_clean_run_is_clean() {
    let (url, _) = serve_http(Script::default()).await;
    let (_, prepared) = bodies(6, 10, Compression::None, Transport::Http);
    let (a, b) = prepared.split_at(3);
    let mut opts = send::Options::new(url, Transport::Http, Signal::Metrics, Compression::None);
    fast(&mut opts);
    let out = send::replay(vec![a.to_vec(), b.to_vec()], &opts).await.expect("replay");
    assert!(out.clean(), "{out:?}");
    assert_eq!(out.items_acked, 60);
    assert_eq!(out.latencies_us.len(), 6);
}

/// A gRPC MetricsService recording what it decoded and rejecting per a script.
#[derive(Default, Clone)]
struct GrpcScript {
    received: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    /// Per request: Err(code) or Ok(rejected).
    answers: Arc<Mutex<Vec<Result<i64, tonic::Code>>>>,
}

#[tonic::async_trait]
impl MetricsService for GrpcScript {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.received.lock().expect("lock").push(request.into_inner());
        let answer = {
            let mut a = self.answers.lock().expect("lock");
            if a.is_empty() { Ok(0) } else { a.remove(0) }
        };
        match answer {
            Err(code) => Err(tonic::Status::new(code, "scripted")),
            Ok(rejected) => Ok(tonic::Response::new(ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: "exponential histograms are not stored yet".into(),
                }),
            })),
        }
    }
}

async fn serve_grpc(script: GrpcScript) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let svc = MetricsServiceServer::new(script).accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tokio_stream_of(listener))
            .await
    });
    format!("http://{addr}")
}

fn tokio_stream_of(listener: tokio::net::TcpListener) -> tonic::codegen::tokio_stream::wrappers::TcpListenerStream {
    tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener)
}

#[tokio::test]
async fn grpc_replay_sends_the_pre_encoded_frames_through_the_generated_client() {
    for compression in [Compression::Gzip, Compression::None] {
        let script = GrpcScript::default();
        script.answers.lock().expect("lock").extend([
            Err(tonic::Code::Unavailable),
            Ok(0),
            Ok(3),
            Err(tonic::Code::InvalidArgument),
        ]);
        let url = serve_grpc(script.clone()).await;
        let (raw, prepared) = bodies(5, 50, compression, Transport::Grpc);
        let mut opts = send::Options::new(url, Transport::Grpc, Signal::Metrics, compression);
        fast(&mut opts);
        opts.headers = vec![("X-Tributary-Cluster".into(), "edge-1".into())];
        let out = send::replay(vec![prepared], &opts).await.expect("replay");
        assert_eq!(
            (out.requests, out.requests_ok, out.requests_failed, out.retries),
            (5, 4, 1, 1)
        );
        assert_eq!((out.items_acked, out.items_rejected, out.items_failed), (197, 3, 50));
        assert!(!out.clean());
        assert_eq!(out.errors_by_status.get("grpc_Unavailable"), Some(&1));
        assert_eq!(out.errors_by_status.get("grpc_InvalidArgument"), Some(&1));
        let received = script.received.lock().expect("lock");
        // The server decoded exactly the pre-encoded messages (the first one twice: retried).
        let decoded: Vec<Vec<u8>> = received.iter().map(Message::encode_to_vec).collect();
        assert_eq!(decoded.len(), 6);
        assert_eq!(decoded[0], raw[0]);
        assert_eq!(&decoded[1..], &raw[..]);
    }
}

#[tokio::test]
async fn grpc_replay_of_generated_metrics_is_clean_and_counts_every_point() {
    let script = GrpcScript::default();
    let url = serve_grpc(script.clone()).await;
    let cfg = small(Signal::Metrics);
    let p = prepare(requests(&cfg).expect("valid"), Compression::Gzip, Transport::Grpc, 3).expect("prepared");
    let opts = send::Options::new(url, Transport::Grpc, Signal::Metrics, Compression::Gzip);
    let out = send::replay(p.queues, &opts).await.expect("replay");
    assert!(out.clean(), "{out:?}");
    assert_eq!(out.items_acked, p.items);
    let received = script.received.lock().expect("lock");
    let points: usize = received
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match m.data.as_ref() {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(points as u64, p.items);
}

#[test]
fn traces_requests_decode_into_whole_traces_within_the_batch_size() {
    use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    let cfg = small(Signal::Traces);
    let reqs = all(&cfg);
    assert!(!reqs.is_empty());
    let start_ns = cfg.start_ms as u64 * 1_000_000;
    let end_ns = start_ns + (cfg.rounds as u64 + 1) * cfg.interval_ms * 1_000_000;
    // Per trace: (span id, parent id) of each span.
    type Members = Vec<(Vec<u8>, Vec<u8>)>;
    let mut by_trace: HashMap<Vec<u8>, Members> = HashMap::new();
    let (mut spans, mut errors) = (0u64, 0u64);
    for r in &reqs {
        assert!(r.items as usize <= cfg.batch_size, "{} spans in one request", r.items);
        let req = ExportTraceServiceRequest::decode(&r.body[..]).expect("protobuf");
        let mut n = 0;
        for rs in &req.resource_spans {
            let attrs = rs.resource.as_ref().expect("resource").attributes.clone();
            assert!(attrs.iter().any(|kv| kv.key == "k8s.cluster.name"), "{attrs:?}");
            for s in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                n += 1;
                assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
                assert!(s.start_time_unix_nano >= start_ns && s.end_time_unix_nano > s.start_time_unix_nano);
                assert!(s.start_time_unix_nano < end_ns + 1_000_000_000);
                errors += u64::from(s.status.as_ref().is_some_and(|st| st.code == 2));
                by_trace
                    .entry(s.trace_id.clone())
                    .or_default()
                    .push((s.span_id.clone(), s.parent_span_id.clone()));
            }
        }
        assert_eq!(n, r.items);
        spans += n;
    }
    let wanted = cfg.log_records_per_second * cfg.clusters as f64 * cfg.rounds as f64;
    assert!(
        (spans as f64) > wanted * 0.7 && (spans as f64) < wanted * 1.3,
        "{spans} spans, about {wanted} wanted"
    );
    assert!(errors > 0 && errors * 20 < spans / 3, "{errors} error spans of {spans}");
    // Every trace has one root and 2-5 children of it.
    for (trace, members) in &by_trace {
        let roots: Vec<_> = members.iter().filter(|(_, p)| p.is_empty()).collect();
        assert_eq!(roots.len(), 1, "{trace:?}");
        assert!((3..=6).contains(&members.len()), "{trace:?}: {}", members.len());
        assert!(members.iter().all(|(_, p)| p.is_empty() || *p == roots[0].0));
    }
}
