//! What must hold for every input the fuzz targets in `fuzz_targets/` throw at `tributary-ingest`.
//!
//! The checks live here so that a batch decoded straight off the network (`remote_write`,
//! `remote_write_v2`) and one decoded during WAL replay (`wal_record`) are held to the same
//! promises. Each check panics, which libFuzzer reports as a crash with the input that caused it.
//! The OTLP checks (`otlp_metrics`, `otlp_logs`) are in [`otlp`]; the trace checks (`traces`:
//! OTLP traces and Zipkin) in [`traces`].

pub mod otlp;
pub mod traces;

use std::collections::{HashMap, HashSet};

use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::remote_write::v1::{self as prom_remote_write, Decoded};
use tributary_ingest::decode::remote_write::v2::{self as prom_remote_write_v2, DecodedV2};
use tributary_ingest::decode::wire::{Reader, Value};
use tributary_ingest::decode::{Limits, MAX_STORABLE_MS, MIN_STORABLE_MS, Rejections};
use tributary_ingest::head::input::{KnownSeries, NothingKnown, RawKey, WriteBatch};
use tributary_proto::prometheus::{field, v2};
use tributary_storage::scope::{glob, is_glob};
use tributary_storage::signals::{ExemplarSeries, HistogramSample, HistogramSeries, MetricMetadata};
use tributary_storage::types::{CLUSTER, Labels, METRIC_NAME};

/// Small enough that fuzzed series cross every limit, large enough for `exported_cluster` (16 bytes).
pub const SMALL_LIMITS: Limits = Limits {
    max_labels_per_series: 8,
    max_label_name_bytes: 24,
    max_label_value_bytes: 32,
};

/// What WAL replay uses: data accepted under older limits must replay whatever the limits are now.
pub const UNBOUNDED_LIMITS: Limits = Limits {
    max_labels_per_series: usize::MAX,
    max_label_name_bytes: usize::MAX,
    max_label_value_bytes: usize::MAX,
};

/// A head that holds exactly these raw keys.
#[derive(Debug, Default)]
pub struct KnownKeys(pub HashSet<RawKey>);

impl KnownSeries for KnownKeys {
    fn is_known(&self, key: RawKey) -> bool {
        self.0.contains(&key)
    }
}

/// Decodes `buf` as a decompressed `prometheus.WriteRequest` twice, as a head would see it the
/// first time (nothing known) and on the next request (every accepted series known), and checks
/// both against the decoder's contract (module docs of `prom_remote_write`):
/// - series spans tile the flat label and sample arrays in order, and no accepted series is empty;
/// - a series on the full path has label names strictly increasing (sorted, unique) in the classic
///   charset and within the limits, non-empty values, a valid `__name__`, and a `cluster` — the
///   token's cluster when there is a token; so do the series of native histograms and exemplars;
/// - equal raw keys mean equal stamped labels;
/// - every accepted timestamp is storable, every accepted histogram sample valid;
/// - samples, histogram samples and exemplars are conserved: accepted + rejected = sent;
/// - the known-series fast path changes nothing but the labels it skips: the same series, keys,
///   samples (bit for bit), signals and rejections as the full path; only series carrying
///   histograms or exemplars may miss it.
pub fn decode_and_check(buf: &[u8], ctx: &ClusterContext, limits: &Limits) {
    let Ok(first) = prom_remote_write::decode(buf, ctx, limits, &NothingKnown) else {
        return;
    };
    let sent = count_v1(buf);
    check_v1(&first, &sent, ctx, limits);
    let mut by_key: HashMap<RawKey, &[(&str, &str)]> = HashMap::new();
    for span in &first.batch.series {
        assert!(!span.known, "nothing was known, yet a series took the known path");
        if let Some(key) = span.raw_key {
            let labels = first.batch.series_labels(span);
            let earlier = *by_key.entry(key).or_insert(labels);
            assert_eq!(earlier, labels, "one raw key, two label sets");
        }
    }

    let known = KnownKeys(by_key.keys().copied().collect());
    let second = prom_remote_write::decode(buf, ctx, limits, &known).expect("valid protobuf the first time");
    check_v1(&second, &sent, ctx, limits);
    assert_eq!(
        first.batch.series.len(),
        second.batch.series.len(),
        "fast path changed the series"
    );
    let mut missed = 0;
    for (a, b) in first.batch.series.iter().zip(&second.batch.series) {
        assert_eq!(a.raw_key, b.raw_key);
        assert!(!b.known || b.raw_key.is_some(), "known without a key: {b:?}");
        missed += usize::from(b.raw_key.is_some() && !b.known);
        let bits = |s: &[tributary_storage::types::Sample]| -> Vec<(i64, u64)> {
            s.iter().map(|s| (s.timestamp, s.value.to_bits())).collect()
        };
        assert_eq!(
            bits(first.batch.series_samples(a)),
            bits(second.batch.series_samples(b)),
            "fast path changed the samples"
        );
    }
    assert!(
        missed <= sent.series_with_signals,
        "{missed} held series missed the fast path, only {} carry histograms or exemplars",
        sent.series_with_signals
    );
    assert_eq!(first.rejected, second.rejected, "fast path changed what was rejected");
    assert_eq!(
        format!("{:?}", (&first.histograms, &first.exemplars, &first.metadata)),
        format!("{:?}", (&second.histograms, &second.exemplars, &second.metadata)),
        "fast path changed the signals"
    );
}

/// Decodes `buf` as a decompressed `io.prometheus.write.v2.Request` and checks it against the
/// contract in `prom_remote_write_v2`'s module docs: the same batch and signal invariants as 1.0,
/// no raw keys, conservation (written + rejected = sent, for samples, histogram samples and
/// exemplars), created-timestamp zeros at most one float and one histogram sample per series and
/// always before the series' other samples, and a deterministic result.
pub fn decode_v2_and_check(buf: &[u8], ctx: &ClusterContext, limits: &Limits) {
    let Ok(d) = prom_remote_write_v2::decode(buf, ctx, limits) else {
        return;
    };
    let sent = count_v2(buf);
    check_batch(&d.batch, ctx, limits);
    check_signals(&d.histograms, &d.exemplars, &d.metadata, ctx, limits);
    check_rejections(&d.rejected);
    for span in &d.batch.series {
        assert!(
            span.raw_key.is_none() && !span.known,
            "2.0 series have no raw key: {span:?}"
        );
    }
    assert_eq!(d.samples_written + d.rejected.samples, sent.samples, "{:?}", d.rejected);
    assert_eq!(
        d.histograms_written + d.rejected.histograms,
        sent.histograms,
        "{:?}",
        d.rejected
    );
    assert_eq!(
        d.exemplars_written + d.rejected.exemplars,
        sent.exemplars,
        "{:?}",
        d.rejected
    );
    assert_eq!(
        d.exemplars_written,
        d.exemplars.iter().map(|e| e.exemplars.len()).sum::<usize>()
    );
    let zeros = d.batch.sample_count() - d.samples_written;
    assert!(zeros <= d.batch.series.len(), "{zeros} created-timestamp zeros");
    if zeros > 0 {
        let zero_first = d
            .batch
            .series
            .iter()
            .filter(|s| {
                let samples = d.batch.series_samples(s);
                samples[0].value.to_bits() == 0 && samples[1..].iter().all(|x| x.timestamp > samples[0].timestamp)
            })
            .count();
        assert!(zero_first >= zeros, "a created-timestamp zero that is not first");
    }
    let histogram_samples: usize = d.histograms.iter().map(|h| h.samples.len()).sum();
    assert!(histogram_samples >= d.histograms_written);
    assert!(histogram_samples - d.histograms_written <= d.histograms.len());

    let again = prom_remote_write_v2::decode(buf, ctx, limits).expect("valid protobuf the first time");
    assert_eq!(summary(&d), summary(&again), "decoding is not deterministic");
}

fn summary(d: &DecodedV2<'_>) -> String {
    let samples: Vec<(i64, u64)> = d
        .batch
        .samples
        .iter()
        .map(|s| (s.timestamp, s.value.to_bits()))
        .collect();
    format!(
        "{:?}",
        (
            &d.batch.labels,
            &d.batch.series,
            samples,
            &d.histograms,
            &d.exemplars,
            &d.metadata,
            &d.rejected
        )
    )
}

fn check_v1(d: &Decoded<'_>, sent: &Sent, ctx: &ClusterContext, limits: &Limits) {
    check_batch(&d.batch, ctx, limits);
    check_signals(&d.histograms, &d.exemplars, &d.metadata, ctx, limits);
    check_rejections(&d.rejected);
    assert_eq!(
        d.batch.sample_count() + d.rejected.samples,
        sent.samples,
        "samples neither accepted nor rejected: {:?}",
        d.rejected
    );
    let histograms: usize = d.histograms.iter().map(|h| h.samples.len()).sum();
    assert_eq!(histograms + d.rejected.histograms, sent.histograms, "{:?}", d.rejected);
    let exemplars: usize = d.exemplars.iter().map(|e| e.exemplars.len()).sum();
    assert_eq!(exemplars + d.rejected.exemplars, sent.exemplars, "{:?}", d.rejected);
    for m in &d.metadata {
        assert_eq!(m.cluster, ctx.request_cluster().unwrap_or(""), "{m:?}");
    }
}

fn check_rejections(r: &Rejections) {
    assert!(r.message().starts_with("rejected "));
    assert!(r.reasons.len() <= 10);
    assert_eq!(r.is_empty(), r.reasons.is_empty(), "{r:?}");
}

fn check_batch(batch: &WriteBatch<'_>, ctx: &ClusterContext, limits: &Limits) {
    let (mut labels_end, mut samples_end) = (0u32, 0u32);
    for span in &batch.series {
        assert_eq!(
            span.labels.start, labels_end,
            "label spans must tile: {:?}",
            batch.series
        );
        assert_eq!(
            span.samples.start, samples_end,
            "sample spans must tile: {:?}",
            batch.series
        );
        (labels_end, samples_end) = (span.labels.end, span.samples.end);

        let samples = batch.series_samples(span);
        assert!(!samples.is_empty(), "accepted a series without samples");
        for s in samples {
            assert!((MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&s.timestamp), "{s:?}");
        }

        let labels = batch.series_labels(span);
        if span.known {
            assert!(labels.is_empty() && span.raw_key.is_some(), "{span:?}");
            continue;
        }
        check_series_labels(labels, ctx, limits);
    }
    assert_eq!(labels_end as usize, batch.labels.len(), "labels outside every series");
    assert_eq!(
        samples_end as usize,
        batch.samples.len(),
        "samples outside every series"
    );
}

fn check_series_labels(labels: &[(&str, &str)], ctx: &ClusterContext, limits: &Limits) {
    assert!(
        labels.windows(2).all(|w| w[0].0 < w[1].0),
        "label names not sorted and unique: {labels:?}"
    );
    assert!(labels.len() <= limits.max_labels_per_series, "{labels:?}");
    for &(name, value) in labels {
        assert!(
            is_label_name(name) && name.len() <= limits.max_label_name_bytes,
            "{labels:?}"
        );
        assert!(!value.is_empty(), "empty value kept: {labels:?}");
        // `cluster` may hold the context's value, which is not the sender's and not limited.
        assert!(
            name == CLUSTER || value.len() <= limits.max_label_value_bytes,
            "{labels:?}"
        );
    }
    let get = |n: &str| labels.iter().find(|l| l.0 == n).map(|l| l.1);
    let metric = get(METRIC_NAME).unwrap_or_else(|| panic!("no {METRIC_NAME}: {labels:?}"));
    assert!(is_metric_name(metric), "{labels:?}");
    let cluster = get(CLUSTER).unwrap_or_else(|| panic!("no {CLUSTER}: {labels:?}"));
    // A token writing one cluster stamps it; a glob scope keeps the series' own cluster (or the
    // header's) when the glob admits it, and refuses the series otherwise.
    if let Some(token) = ctx.token_cluster.as_deref().filter(|t| !t.is_empty()) {
        if is_glob(token) {
            assert!(
                glob(token, cluster),
                "a cluster outside the token's scope {token:?}: {labels:?}"
            );
        } else {
            assert_eq!(cluster, token, "the token's cluster must win: {labels:?}");
        }
    }
}

pub(crate) fn check_owned_labels(labels: &Labels, ctx: &ClusterContext, limits: &Limits) {
    let pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name, l.value)).collect();
    check_series_labels(&pairs, ctx, limits);
}

pub(crate) fn check_signals(
    histograms: &[HistogramSeries],
    exemplars: &[ExemplarSeries],
    metadata: &[MetricMetadata],
    ctx: &ClusterContext,
    limits: &Limits,
) {
    for h in histograms {
        check_owned_labels(&h.labels, ctx, limits);
        assert!(!h.samples.is_empty(), "empty histogram series");
        assert!(
            h.samples.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
            "unsorted"
        );
        for s in &h.samples {
            check_histogram(s);
        }
    }
    for e in exemplars {
        check_owned_labels(&e.labels, ctx, limits);
        assert!(!e.exemplars.is_empty(), "empty exemplar series");
        for x in &e.exemplars {
            assert!((MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&x.timestamp), "{x:?}");
            let chars: usize = x.labels.iter().map(|l| l.name.len() + l.value.chars().count()).sum();
            assert!(
                chars <= 128,
                "exemplar labels over 128 runes (OpenMetrics, Prometheus): {x:?}"
            );
            assert!(x.labels.iter().all(|l| is_label_name(&l.name)), "{x:?}");
        }
    }
    assert!(
        metadata.windows(2).all(|w| w[0] < w[1]),
        "metadata not sorted and deduplicated"
    );
    for m in metadata {
        assert!(is_metric_name(&m.metric), "{m:?}");
    }
}

fn check_histogram(s: &HistogramSample) {
    assert!((MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&s.timestamp), "{s:?}");
    assert!(s.schema == -53 || (-4..=8).contains(&s.schema), "{s:?}");
    let covered =
        |spans: &[tributary_storage::signals::BucketSpan]| spans.iter().map(|x| u64::from(x.length)).sum::<u64>();
    assert_eq!(covered(&s.positive_spans), s.positive_buckets.len() as u64, "{s:?}");
    assert_eq!(covered(&s.negative_spans), s.negative_buckets.len() as u64, "{s:?}");
    // No negative counts (NaN is not negative: Prometheus lets it through).
    let not_negative = |c: &f64| c.is_nan() || *c >= 0.0;
    assert!(
        s.positive_buckets.iter().chain(&s.negative_buckets).all(not_negative),
        "{s:?}"
    );
    assert!(not_negative(&s.count) && not_negative(&s.zero_count), "{s:?}");
    if s.schema == -53 {
        assert!(s.negative_buckets.is_empty() && s.zero_count == 0.0, "{s:?}");
        assert!(s.custom_values.windows(2).all(|w| w[0] < w[1]), "{s:?}");
    } else {
        assert!(s.custom_values.is_empty(), "{s:?}");
    }
}

/// What a request sent, counted the way the decoders walk it; only called on bytes they accepted.
#[derive(Debug, Default)]
struct Sent {
    samples: usize,
    histograms: usize,
    exemplars: usize,
    series_with_signals: usize,
}

fn count_series(series: &[u8], samples: u32, histograms: u32, exemplars: u32, sent: &mut Sent) {
    let mut r = Reader::new(series);
    let mut signals = false;
    while let Some((f, v)) = r.next_field().expect("decode accepted this series") {
        if let Value::Bytes(_) = v {
            sent.samples += usize::from(f == samples);
            sent.histograms += usize::from(f == histograms);
            sent.exemplars += usize::from(f == exemplars);
            signals |= f == histograms || f == exemplars;
        }
    }
    sent.series_with_signals += usize::from(signals);
}

fn count_v1(buf: &[u8]) -> Sent {
    let mut sent = Sent::default();
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field().expect("decode accepted this request") {
        if let (field::WRITE_REQUEST_TIMESERIES, Value::Bytes(ts)) = (f, v) {
            count_series(
                ts,
                field::TIMESERIES_SAMPLES,
                field::TIMESERIES_HISTOGRAMS,
                field::TIMESERIES_EXEMPLARS,
                &mut sent,
            );
        }
    }
    sent
}

fn count_v2(buf: &[u8]) -> Sent {
    let mut sent = Sent::default();
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field().expect("decode accepted this request") {
        if let (v2::field::REQUEST_TIMESERIES, Value::Bytes(ts)) = (f, v) {
            count_series(
                ts,
                v2::field::TIMESERIES_SAMPLES,
                v2::field::TIMESERIES_HISTOGRAMS,
                v2::field::TIMESERIES_EXEMPLARS,
                &mut sent,
            );
        }
    }
    sent
}

pub(crate) fn is_label_name(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn is_metric_name(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}
