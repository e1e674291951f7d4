//! What must hold for every input the fuzz targets in `fuzz_targets/` throw at `tributary-ingest`.
//!
//! The checks live here so that a batch decoded straight off the network (`remote_write`) and one
//! decoded during WAL replay (`wal_record`) are held to the same promises. Each check panics, which
//! libFuzzer reports as a crash with the input that caused it.

use std::collections::{HashMap, HashSet};

use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::prom_remote_write::{
    self, Decoded, KnownSeries, Limits, MAX_STORABLE_MS, MIN_STORABLE_MS, NothingKnown, RawKey,
};
use tributary_ingest::decode::wire::{Reader, Value};
use tributary_proto::prometheus::field;
use tributary_storage::types::{CLUSTER, METRIC_NAME};

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
///   token's cluster when there is a token;
/// - equal raw keys mean equal stamped labels;
/// - every accepted timestamp is storable;
/// - samples are conserved: accepted + rejected = sample fields in the request;
/// - the known-series fast path changes nothing but the labels it skips: the same series, keys,
///   samples (bit for bit) and rejections as the full path.
pub fn decode_and_check(buf: &[u8], ctx: &ClusterContext, limits: &Limits) {
    let Ok(first) = prom_remote_write::decode(buf, ctx, limits, &NothingKnown) else {
        return;
    };
    check_batch(buf, &first, ctx, limits);
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
    check_batch(buf, &second, ctx, limits);
    assert_eq!(
        first.batch.series.len(),
        second.batch.series.len(),
        "fast path changed the series"
    );
    for (a, b) in first.batch.series.iter().zip(&second.batch.series) {
        assert_eq!(a.raw_key, b.raw_key);
        assert_eq!(
            b.known,
            b.raw_key.is_some(),
            "a series the head holds missed the fast path"
        );
        let bits = |s: &[tributary_storage::types::Sample]| -> Vec<(i64, u64)> {
            s.iter().map(|s| (s.timestamp, s.value.to_bits())).collect()
        };
        assert_eq!(
            bits(first.batch.series_samples(a)),
            bits(second.batch.series_samples(b)),
            "fast path changed the samples"
        );
    }
    assert_eq!(
        (first.rejected.series, first.rejected.samples, first.rejected.histograms),
        (
            second.rejected.series,
            second.rejected.samples,
            second.rejected.histograms
        ),
        "fast path changed what was rejected"
    );
    assert_eq!(first.exemplars_ignored, second.exemplars_ignored);
}

fn check_batch(buf: &[u8], decoded: &Decoded<'_>, ctx: &ClusterContext, limits: &Limits) {
    let batch = &decoded.batch;
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
        if let Some(token) = &ctx.token_cluster {
            assert_eq!(cluster, token, "the token's cluster must win: {labels:?}");
        }
    }
    assert_eq!(labels_end as usize, batch.labels.len(), "labels outside every series");
    assert_eq!(
        samples_end as usize,
        batch.samples.len(),
        "samples outside every series"
    );
    assert_eq!(
        batch.sample_count() + decoded.rejected.samples,
        sample_fields(buf),
        "samples neither accepted nor rejected: {:?}",
        decoded.rejected
    );
    assert!(decoded.rejected.message().starts_with("rejected "));
}

/// Counts `Sample` fields the way the decoder walks them; only called on bytes it accepted.
fn sample_fields(buf: &[u8]) -> usize {
    let mut n = 0;
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field().expect("decode accepted this request") {
        if let (field::WRITE_REQUEST_TIMESERIES, Value::Bytes(ts)) = (f, v) {
            let mut series = Reader::new(ts);
            while let Some(fv) = series.next_field().expect("decode accepted this series") {
                n += usize::from(matches!(fv, (field::TIMESERIES_SAMPLES, Value::Bytes(_))));
            }
        }
    }
    n
}

fn is_label_name(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn is_metric_name(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}
