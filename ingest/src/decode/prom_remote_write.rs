//! Prometheus remote-write 1.0 (`prometheus.WriteRequest`, snappy block body) → [`WriteBatch`].
//!
//! Rules, checked per series (a bad series is rejected with its reason; the others are kept):
//! - label names match `[a-zA-Z_][a-zA-Z0-9_]*` (the classic charset; UTF-8 names, allowed by newer
//!   Prometheus behind a flag, are rejected with a clear reason) and `__name__`'s value matches
//!   `[a-zA-Z_:][a-zA-Z0-9_:]*`;
//! - labels are sorted by name with unique names, `__name__` is present, values are UTF-8;
//! - an empty value means "no such label" and is dropped, as in Prometheus;
//! - the configured length and count limits hold;
//! - the series has a cluster: see [`crate::cluster`].
//!
//! A body that is not valid protobuf is rejected whole: nothing in it can be trusted.
//!
//! Known series take a short path: each series' raw label bytes are hashed (128-bit, seeded by
//! the cluster context, which decides the stamping) into a [`RawKey`]; when the head already holds
//! a series under that key ([`KnownSeries`]), its labels were validated and stamped before, so
//! only the samples are decoded. This is what keeps steady-state ingest near the decode floor.
//! Sample values keep their exact bits (staleness markers included). Exemplars and metadata
//! are counted, not stored yet; native histograms reject their series' histogram part with a reason.

use std::ops::Range;

use tributary_proto::prometheus::field;
use tributary_storage::types::{METRIC_NAME, Sample};

use super::wire::{Reader, Value, WireError};
use crate::cluster::{ClusterContext, Stamp};

/// The timestamps the Parquet layout can name (`storage::layout::storable_timestamp`), as plain
/// bounds so the per-sample check is two comparisons. A test keeps them in step with storage.
pub const MIN_STORABLE_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
pub const MAX_STORABLE_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Limits a sender's data must respect.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_labels_per_series: usize,
    pub max_label_name_bytes: usize,
    pub max_label_value_bytes: usize,
}

/// A series' identity as encoded on the wire: xxh3-128 of its label fields' bytes, seeded by a
/// hash of the cluster context. Equal keys mean byte-identical labels stamped the same way.
pub type RawKey = u128;

/// Answers whether the head holds a series under a raw key (so its labels need no validation).
pub trait KnownSeries {
    fn is_known(&self, key: RawKey) -> bool;
}

/// For callers with no head (tests, benches of the full path): nothing is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingKnown;

impl KnownSeries for NothingKnown {
    fn is_known(&self, _: RawKey) -> bool {
        false
    }
}

/// One series of a batch: ranges into the batch's flat label and sample arrays.
///
/// A `known` series has an empty label range: the head finds it by `raw_key`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSpan {
    pub labels: Range<u32>,
    pub samples: Range<u32>,
    /// `None` when the labels were not contiguous on the wire (never from Prometheus).
    pub raw_key: Option<RawKey>,
    pub known: bool,
}

/// The accepted series of one request, borrowing label strings from the decompressed body
/// (and the cluster context). Labels of each series are final: sorted, validated, stamped.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<Sample>,
    pub series: Vec<SeriesSpan>,
}

impl<'a> WriteBatch<'a> {
    pub fn series_labels(&self, s: &SeriesSpan) -> &[(&'a str, &'a str)] {
        &self.labels[s.labels.start as usize..s.labels.end as usize]
    }

    pub fn series_samples(&self, s: &SeriesSpan) -> &[Sample] {
        &self.samples[s.samples.start as usize..s.samples.end as usize]
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

/// What was refused, and why (the first few reasons, for the response body).
#[derive(Debug, Default, PartialEq)]
pub struct Rejections {
    pub series: usize,
    pub samples: usize,
    pub histograms: usize,
    pub reasons: Vec<String>,
}

impl Rejections {
    const MAX_REASONS: usize = 10;

    pub fn is_empty(&self) -> bool {
        self.series == 0 && self.histograms == 0
    }

    fn add(&mut self, reason: String) {
        if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    /// One line for the 400 body: counts, then the first reasons.
    pub fn message(&self) -> String {
        let mut m = format!(
            "rejected {} series ({} samples) and {} native histogram samples; the rest of the request was stored",
            self.series, self.samples, self.histograms
        );
        for r in &self.reasons {
            m.push_str("; ");
            m.push_str(r);
        }
        if self.series + self.histograms > self.reasons.len() {
            m.push_str("; ...");
        }
        m
    }
}

/// Everything a request carried besides its accepted series.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    pub batch: WriteBatch<'a>,
    pub rejected: Rejections,
    pub exemplars_ignored: usize,
    pub metadata_ignored: usize,
}

/// Decodes a decompressed `WriteRequest`. `Err` only when the bytes are not valid protobuf.
pub fn decode<'a>(
    buf: &'a [u8],
    ctx: &'a ClusterContext,
    limits: &Limits,
    known: &dyn KnownSeries,
) -> Result<Decoded<'a>, WireError> {
    let seed = context_seed(ctx);
    let mut out = Decoded::default();
    // Prometheus sends ~2000 series of ~10 labels; reserve so the hot loop rarely reallocates.
    out.batch.series.reserve(buf.len() / 256);
    out.batch.labels.reserve(buf.len() / 24);
    out.batch.samples.reserve(buf.len() / 256);
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field()? {
        match (f, v) {
            (field::WRITE_REQUEST_TIMESERIES, Value::Bytes(ts)) => {
                decode_series(ts, ctx, limits, seed, known, &mut out)?
            }
            (field::WRITE_REQUEST_METADATA, Value::Bytes(_)) => out.metadata_ignored += 1,
            _ => {}
        }
    }
    Ok(out)
}

/// Seeds raw keys with the cluster context, since the same labels are stamped differently
/// under another token or header.
fn context_seed(ctx: &ClusterContext) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for part in [&ctx.token_cluster, &ctx.header_cluster] {
        h.update(&[part.is_some() as u8]);
        h.update(part.as_deref().unwrap_or("").as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// What one walk over a series finds without interpreting labels.
struct Scan {
    /// The contiguous byte range of all label fields, if they were contiguous.
    labels: Option<Range<usize>>,
    histograms: usize,
    exemplars: usize,
    all_storable: bool,
}

/// Walks a series once: pushes its samples, and finds its label bytes.
fn scan_series(buf: &[u8], samples: &mut Vec<Sample>) -> Result<Scan, WireError> {
    let mut scan = Scan {
        labels: None,
        histograms: 0,
        exemplars: 0,
        all_storable: true,
    };
    let mut contiguous = true;
    let mut r = Reader::new(buf);
    loop {
        let at = r.position();
        let Some((f, v)) = r.next_field()? else { break };
        match (f, v) {
            (field::TIMESERIES_LABELS, Value::Bytes(_)) => match &mut scan.labels {
                None => scan.labels = Some(at..r.position()),
                Some(range) if range.end == at => range.end = r.position(),
                Some(_) => contiguous = false,
            },
            (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => {
                let sample = decode_sample(s)?;
                scan.all_storable &= (MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&sample.timestamp);
                samples.push(sample);
            }
            (field::TIMESERIES_EXEMPLARS, Value::Bytes(_)) => scan.exemplars += 1,
            (field::TIMESERIES_HISTOGRAMS, Value::Bytes(_)) => scan.histograms += 1,
            _ => {}
        }
    }
    if !contiguous {
        scan.labels = None;
    }
    Ok(scan)
}

fn decode_series<'a>(
    buf: &'a [u8],
    ctx: &'a ClusterContext,
    limits: &Limits,
    seed: u64,
    known: &dyn KnownSeries,
    out: &mut Decoded<'a>,
) -> Result<(), WireError> {
    let batch = &mut out.batch;
    let label_start = batch.labels.len();
    let sample_start = batch.samples.len();

    let scan = scan_series(buf, &mut batch.samples)?;
    let raw_key = scan
        .labels
        .map(|r| xxhash_rust::xxh3::xxh3_128_with_seed(&buf[r], seed));
    if scan.histograms == 0 && scan.all_storable && raw_key.is_some_and(|k| known.is_known(k)) {
        out.exemplars_ignored += scan.exemplars;
        if batch.samples.len() > sample_start {
            batch.series.push(SeriesSpan {
                labels: label_start as u32..label_start as u32,
                samples: sample_start as u32..batch.samples.len() as u32,
                raw_key,
                known: true,
            });
        }
        return Ok(());
    }
    // Not known (or something to report): the full path, which decodes the samples again.
    batch.samples.truncate(sample_start);
    let mut problem: Option<String> = None;
    let mut histograms = 0usize;
    let mut prev_name: Option<&[u8]> = None;
    let mut has_name = false;

    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::TIMESERIES_LABELS, Value::Bytes(l)) => {
                let (name, value) = decode_label(l)?;
                if problem.is_none() {
                    if prev_name.is_some_and(|p| p >= name) {
                        problem = Some(if prev_name == Some(name) {
                            format!("duplicate label name {:?}", String::from_utf8_lossy(name))
                        } else {
                            format!("labels are not sorted by name at {:?}", String::from_utf8_lossy(name))
                        });
                    } else {
                        problem = check_label(name, value, limits).err();
                    }
                    prev_name = Some(name);
                    if problem.is_none() && !value.is_empty() {
                        // check_label proved both are UTF-8.
                        let name = std::str::from_utf8(name).unwrap_or_default();
                        let value = std::str::from_utf8(value).unwrap_or_default();
                        has_name |= name == METRIC_NAME;
                        batch.labels.push((name, value));
                    }
                }
            }
            (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => {
                let sample = decode_sample(s)?;
                if problem.is_none() && !(MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&sample.timestamp) {
                    problem = Some(format!(
                        "sample timestamp {} ms is outside the storable range (years 0000 to 9999)",
                        sample.timestamp
                    ));
                }
                batch.samples.push(sample);
            }
            (field::TIMESERIES_EXEMPLARS, Value::Bytes(_)) => out.exemplars_ignored += 1,
            (field::TIMESERIES_HISTOGRAMS, Value::Bytes(_)) => histograms += 1,
            _ => {}
        }
    }

    if problem.is_none() && !has_name {
        problem = Some("series has no __name__ label".to_string());
    }
    if problem.is_none() {
        match ctx.stamp(&batch.labels[label_start..]) {
            Ok(Stamp::Keep) => {}
            Ok(stamp) => {
                stamp.apply(&mut batch.labels, label_start);
                batch.labels[label_start..].sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
            Err(reason) => problem = Some(reason),
        }
        let n = batch.labels.len() - label_start;
        if problem.is_none() && n > limits.max_labels_per_series {
            problem = Some(format!(
                "series has {n} labels, more than the limit of {}",
                limits.max_labels_per_series
            ));
        }
    }

    if histograms > 0 {
        out.rejected.histograms += histograms;
        out.rejected.add(format!(
            "series {}: native histograms are not stored yet ({histograms} dropped)",
            describe(&batch.labels[label_start..])
        ));
    }
    match problem {
        None => {
            if batch.samples.len() > sample_start {
                batch.series.push(SeriesSpan {
                    labels: label_start as u32..batch.labels.len() as u32,
                    samples: sample_start as u32..batch.samples.len() as u32,
                    raw_key,
                    known: false,
                });
            } else {
                batch.labels.truncate(label_start);
            }
        }
        Some(reason) => {
            let samples = batch.samples.len() - sample_start;
            out.rejected.series += 1;
            out.rejected.samples += samples;
            out.rejected
                .add(format!("series {}: {reason}", describe(&batch.labels[label_start..])));
            batch.labels.truncate(label_start);
            batch.samples.truncate(sample_start);
        }
    }
    Ok(())
}

fn describe(labels: &[(&str, &str)]) -> String {
    let name = labels.iter().find(|(n, _)| *n == METRIC_NAME).map_or("", |(_, v)| *v);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| *n != METRIC_NAME)
        .take(6)
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

fn decode_label(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::LABEL_NAME, Value::Bytes(b)) => name = b,
            (field::LABEL_VALUE, Value::Bytes(b)) => value = b,
            _ => {}
        }
    }
    Ok((name, value))
}

fn decode_sample(buf: &[u8]) -> Result<Sample, WireError> {
    // proto3 omits zero values, so both fields default to 0.
    let mut s = Sample::new(0, 0.0);
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::SAMPLE_VALUE, Value::Fixed64(bits)) => s.value = f64::from_bits(bits),
            (field::SAMPLE_TIMESTAMP, Value::Varint(t)) => s.timestamp = t as i64,
            _ => {}
        }
    }
    Ok(s)
}

fn check_label(name: &[u8], value: &[u8], limits: &Limits) -> Result<(), String> {
    let valid_name = matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if !valid_name {
        return Err(format!(
            "invalid label name {:?} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
            String::from_utf8_lossy(name)
        ));
    }
    if name.len() > limits.max_label_name_bytes {
        return Err(format!(
            "label name of {} bytes exceeds the limit of {}",
            name.len(),
            limits.max_label_name_bytes
        ));
    }
    if value.len() > limits.max_label_value_bytes {
        return Err(format!(
            "value of label {:?} is {} bytes, over the limit of {}",
            String::from_utf8_lossy(name),
            value.len(),
            limits.max_label_value_bytes
        ));
    }
    if std::str::from_utf8(value).is_err() {
        return Err(format!(
            "value of label {:?} is not valid UTF-8",
            String::from_utf8_lossy(name)
        ));
    }
    if name == METRIC_NAME.as_bytes() {
        let valid_metric = matches!(value.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
            && value
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':');
        if !valid_metric {
            return Err(format!(
                "invalid metric name {:?} (must match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                String::from_utf8_lossy(value)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
