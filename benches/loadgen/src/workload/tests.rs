use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use tributary_proto::prometheus::{Label, TimeSeries, WriteRequest};

use super::*;

fn small() -> Config {
    Config {
        clusters: 2,
        series_per_cluster: 3500,
        samples_per_series: 6,
        interval_ms: 15_000,
        start_ms: 1_700_000_000_000,
        seed: 9,
        max_samples_per_request: 300,
        shards_per_cluster: 3,
    }
}

fn decode(req: &EncodedRequest) -> (Vec<u8>, WriteRequest) {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&req.body)
        .expect("valid snappy");
    let wr = WriteRequest::decode(raw.as_slice()).expect("valid protobuf");
    (raw, wr)
}

fn label<'a>(ts: &'a TimeSeries, name: &str) -> Option<&'a str> {
    ts.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
}

#[test]
fn bodies_are_prometheus_write_requests_with_one_sample_per_series() {
    let cfg = small();
    let mut total = 0u64;
    let mut by_series: HashMap<Vec<Label>, Vec<(usize, i64)>> = HashMap::new();
    let mut per_cluster: Vec<HashSet<Vec<Label>>> = vec![HashSet::new(); cfg.clusters];
    for req in requests(&cfg) {
        let (raw, wr) = decode(&req);
        assert_eq!(raw.len(), req.raw_len);
        assert_eq!(
            wr.encode_to_vec(),
            raw,
            "hand-assembled body must equal prost's encoding"
        );
        assert_eq!(wr.timeseries.len(), req.samples);
        assert!(req.samples <= cfg.max_samples_per_request && req.samples > 0);
        assert_eq!(req.stream / cfg.shards_per_cluster, req.cluster);
        total += req.samples as u64;
        for ts in wr.timeseries {
            assert_eq!(ts.samples.len(), 1);
            assert!(ts.exemplars.is_empty() && ts.histograms.is_empty());
            assert!(
                ts.labels.windows(2).all(|w| w[0].name < w[1].name),
                "unsorted or duplicate: {:?}",
                ts.labels
            );
            assert!(ts.labels.iter().all(|l| !l.value.is_empty()));
            assert_eq!(label(&ts, "cluster"), Some(cluster_name(req.cluster).as_str()));
            for required in ["__name__", "job", "instance"] {
                assert!(label(&ts, required).is_some(), "{required} missing in {:?}", ts.labels);
            }
            per_cluster[req.cluster].insert(ts.labels.clone());
            by_series
                .entry(ts.labels)
                .or_default()
                .push((req.stream, ts.samples[0].timestamp));
        }
    }
    assert_eq!(total, cfg.total_samples());
    for set in &per_cluster {
        assert_eq!(set.len(), cfg.series_per_cluster);
    }
    for (labels, seen) in by_series {
        assert_eq!(seen.len(), cfg.samples_per_series, "{labels:?}");
        assert!(
            seen.iter().all(|(stream, _)| *stream == seen[0].0),
            "series moved between streams"
        );
        assert!(
            seen.windows(2).all(|w| w[1].1 - w[0].1 == cfg.interval_ms as i64),
            "{seen:?}"
        );
        let offset = seen[0].1 - cfg.start_ms;
        assert!((0..cfg.interval_ms as i64).contains(&offset));
    }
}

#[test]
fn rounds_are_in_order_and_streams_interleaved() {
    let cfg = small();
    let reqs: Vec<(usize, usize)> = requests(&cfg).map(|r| (r.round, r.stream)).collect();
    assert!(reqs.windows(2).all(|w| w[0].0 <= w[1].0));
    let first_round: Vec<usize> = reqs.iter().take(cfg.streams()).map(|r| r.1).collect();
    assert_eq!(first_round, (0..cfg.streams()).collect::<Vec<_>>());
}

#[test]
fn generation_is_deterministic_per_seed() {
    let cfg = Config {
        samples_per_series: 3,
        ..small()
    };
    let a: Vec<EncodedRequest> = requests(&cfg).collect();
    let b: Vec<EncodedRequest> = requests(&cfg).collect();
    assert_eq!(a, b);
    let c: Vec<EncodedRequest> = requests(&Config { seed: 10, ..cfg }).collect();
    assert_ne!(a[0].body, c[0].body);
}

#[test]
fn catalog_has_the_kubernetes_families_and_realistic_labels() {
    let series = catalog::build(1, 0, 30_000, 15_000);
    assert_eq!(series.len(), 30_000);
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    let mut label_counts = 0usize;
    let mut constants = 0usize;
    for s in &series {
        let name = s
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.clone())
            .unwrap_or_default();
        *families.entry(name).or_default() += 1;
        assert!((4..=16).contains(&s.labels.len()), "{:?}", s.labels);
        label_counts += s.labels.len();
        let mut e = s.evolution.clone();
        let v0 = e.value();
        e.advance(1);
        e.advance(2);
        if e.value() == v0 {
            constants += 1;
        }
    }
    for family in [
        "up",
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "container_cpu_usage_seconds_total",
        "kube_pod_status_phase",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count",
    ] {
        assert!(
            families.get(family).copied().unwrap_or(0) > 10,
            "{family}: {families:?}"
        );
    }
    let mean = label_counts as f64 / series.len() as f64;
    assert!((8.0..=12.5).contains(&mean), "mean label count {mean}");
    let constant_share = constants as f64 / series.len() as f64;
    assert!((0.2..0.7).contains(&constant_share), "constant share {constant_share}");
}

#[test]
fn counters_and_histograms_behave_like_exporters() {
    let cfg = Config {
        clusters: 1,
        series_per_cluster: 8000,
        samples_per_series: 20,
        ..small()
    };
    let mut values: HashMap<Vec<Label>, Vec<f64>> = HashMap::new();
    for req in requests(&cfg) {
        for ts in decode(&req).1.timeseries {
            values.entry(ts.labels).or_default().push(ts.samples[0].value);
        }
    }
    let mut histograms: HashMap<Vec<Label>, Vec<(f64, Vec<f64>)>> = HashMap::new();
    let mut decreases = 0;
    let mut counters = 0;
    for (labels, v) in &values {
        let name = labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.as_str())
            .unwrap_or("");
        if name.ends_with("_total") || name.ends_with("_bucket") {
            counters += 1;
            decreases += v.windows(2).filter(|w| w[1] < w[0]).count();
        }
        if name == "node_cpu_seconds_total" {
            assert!(
                v.iter().all(|x| (x * 100.0 - (x * 100.0).round()).abs() < 1e-6),
                "{v:?}"
            );
        }
        if name == "http_request_duration_seconds_bucket" {
            let le = labels
                .iter()
                .find(|l| l.name == "le")
                .map(|l| l.value.as_str())
                .unwrap_or("");
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("numeric le")
            };
            let family: Vec<Label> = labels.iter().filter(|l| l.name != "le").cloned().collect();
            histograms.entry(family).or_default().push((le, v.clone()));
        }
    }
    assert!(counters > 1000);
    // Restarts are rare: well under one per 1000 counter-rounds.
    assert!(
        decreases * 1000 < counters * cfg.samples_per_series,
        "{decreases} decreases"
    );
    assert!(histograms.len() > 10);
    // Only the family at the end of the catalog may be cut short by the series limit.
    assert!(histograms.values().filter(|b| b.len() != 12).count() <= 1);
    for (family, mut buckets) in histograms {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        for round in 0..cfg.samples_per_series {
            let column: Vec<f64> = buckets.iter().map(|b| b.1[round]).collect();
            assert!(
                column.windows(2).all(|w| w[0] <= w[1]),
                "{family:?} round {round}: {column:?}"
            );
        }
    }
}

#[test]
fn wire_size_per_sample_is_in_the_realistic_range() {
    let cfg = Config {
        clusters: 1,
        series_per_cluster: 30_000,
        samples_per_series: 4,
        ..Config::default()
    };
    let (mut raw, mut compressed, mut samples) = (0usize, 0usize, 0usize);
    for req in requests(&cfg) {
        raw += req.raw_len;
        compressed += req.body.len();
        samples += req.samples;
        assert!(req.samples <= 2000);
    }
    let (raw_per, compressed_per) = (raw as f64 / samples as f64, compressed as f64 / samples as f64);
    assert!((150.0..350.0).contains(&raw_per), "raw {raw_per} B/sample");
    assert!(
        (10.0..60.0).contains(&compressed_per),
        "compressed {compressed_per} B/sample"
    );
}

#[test]
fn start_ending_before_keeps_every_sample_in_the_past() {
    let cfg = Config {
        samples_per_series: 240,
        ..Config::default()
    };
    let now = 1_763_700_000_123;
    let start = cfg.start_ending_before(now);
    assert_eq!(start % cfg.interval_ms as i64, 0);
    let last = start + (cfg.samples_per_series as i64 - 1) * cfg.interval_ms as i64 + cfg.interval_ms as i64 - 1;
    assert!(last < now);
    assert!(now - start < (cfg.samples_per_series as i64 + 3) * cfg.interval_ms as i64);
}

#[test]
fn validate_rejects_degenerate_configs() {
    assert!(Config::default().validate().is_ok());
    assert!(
        Config {
            interval_ms: 0,
            ..Config::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            max_samples_per_request: 0,
            ..Config::default()
        }
        .validate()
        .is_err()
    );
    assert!(
        Config {
            shards_per_cluster: 0,
            ..Config::default()
        }
        .validate()
        .is_err()
    );
    assert_eq!(
        requests(&Config {
            series_per_cluster: 0,
            ..Config::default()
        })
        .count(),
        0
    );
}

proptest! {
    #[test]
    fn timeseries_encoding_matches_prost(
        labels in proptest::collection::vec(("[a-z_]{1,12}", "\\PC{0,40}"), 0..14),
        value in any::<f64>(),
        timestamp in any::<i64>(),
    ) {
        let labels: Vec<Label> = labels.into_iter().map(|(name, value)| Label { name, value }).collect();
        let mut labels_pb = Vec::new();
        for l in &labels {
            labels_pb.push(key(field::TIMESERIES_LABELS));
            l.encode_length_delimited(&mut labels_pb).expect("vec");
        }
        let sample = Sample { value, timestamp };
        let mut ours = Vec::new();
        encode_timeseries(&mut ours, &labels_pb, &sample);
        let ts = TimeSeries { labels, samples: vec![sample], exemplars: vec![], histograms: vec![] };
        let theirs = WriteRequest { timeseries: vec![ts], metadata: vec![] }.encode_to_vec();
        prop_assert_eq!(ours, theirs);
    }
}
