//! Prometheus remote-write 1.0 (`prometheus.WriteRequest`, snappy block body) → [`Decoded`], and
//! the validation both remote-write versions share (`prom_remote_write_v2` reuses it).
//!
//! Rules, checked per series (a bad series is rejected whole with its reason — samples, native
//! histograms and exemplars alike; the other series are kept):
//! - label names match `[a-zA-Z_][a-zA-Z0-9_]*` (the classic charset; UTF-8 names, allowed by newer
//!   Prometheus behind a flag, are rejected with a clear reason) and `__name__`'s value matches
//!   `[a-zA-Z_:][a-zA-Z0-9_:]*`;
//! - labels are sorted by name with unique names, `__name__` is present, values are UTF-8;
//! - an empty value means "no such label" and is dropped, as in Prometheus;
//! - the configured length and count limits hold;
//! - every float sample's timestamp is storable (years 0000 to 9999);
//! - the series has a cluster: see [`crate::cluster`].
//!
//! Within an accepted series, each native histogram sample and each exemplar is checked on its
//! own and refused alone, with a reason:
//! - native histograms (`decode_histogram`): schema −4..=8, or −53 (custom buckets) with finite,
//!   strictly increasing `custom_values` and no zero or negative buckets; spans after the first
//!   have non-negative offsets and cover exactly as many buckets as were sent; no negative
//!   absolute counts; integer histograms' buckets add up to their count (at most the count when
//!   the sum is NaN), as Prometheus's TSDB requires; integer and float fields not mixed; storable
//!   timestamp. Integer bucket deltas become absolute float counts;
//! - exemplars: label names in the classic charset, UTF-8 values, unique names, at most 128
//!   characters of names and values together (Prometheus's limit), storable timestamp (0, "not
//!   set" in 2.0, is kept as is, as Prometheus does).
//!
//! `WriteRequest.metadata` becomes [`MetricMetadata`] under the request's cluster: the token's,
//! else the header's, else `""` (1.0 metadata names a metric family, not a series, so there is no
//! series label to take it from). Its family name must be a valid metric name; help and unit
//! must be UTF-8. Exact duplicates are merged.
//!
//! A body that is not valid protobuf is rejected whole: nothing in it can be trusted. A 2.0
//! request sent with the 1.0 content type (its series in field 5, which 1.0 does not use) has
//! its series rejected with a reason saying so, rather than being read as empty.
//!
//! Known series take a short path: each series' raw label bytes are hashed (128-bit, seeded by
//! the cluster context, which decides the stamping) into a [`RawKey`]; when the head already holds
//! a series under that key ([`KnownSeries`]), its labels were validated and stamped before, so
//! only the samples are decoded. This is what keeps steady-state ingest near the decode floor.
//! A series carrying native histograms or exemplars takes the full path (their outputs need the
//! labels), so exemplar-free traffic pays nothing for them. Sample values keep their exact bits
//! (staleness markers included).

use std::collections::BTreeSet;
use std::ops::Range;

use tributary_proto::prometheus::{field, v2};
use tributary_storage::signals::{
    BucketSpan, Exemplar, ExemplarSeries, HistogramSample, HistogramSeries, MetricMetadata, MetricType, ResetHint,
};
use tributary_storage::types::{Label, Labels, METRIC_NAME, Sample};

use super::wire::{PackedVarints, Reader, Value, WireError, packed_fixed64, zigzag32, zigzag64};
use crate::cluster::{ClusterContext, Stamp};

/// The timestamps the Parquet layout can name (`storage::layout::storable_timestamp`), as plain
/// bounds so the per-sample check is two comparisons. A test keeps them in step with storage.
pub const MIN_STORABLE_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00Z
pub const MAX_STORABLE_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// Native histogram schema −53: custom bucket bounds (`custom_values`), e.g. a converted classic
/// histogram.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// Prometheus's exponential schemas.
pub const EXPONENTIAL_SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;
/// Prometheus's bound on an exemplar's label names and values together, in characters.
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

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
///
/// `series` counts rejected series; `samples`, `histograms` and `exemplars` count the float
/// samples, native histogram samples and exemplars refused, whether with their series or alone;
/// `metadata` counts refused metadata entries.
#[derive(Debug, Default, PartialEq)]
pub struct Rejections {
    pub series: usize,
    pub samples: usize,
    pub histograms: usize,
    pub exemplars: usize,
    pub metadata: usize,
    pub reasons: Vec<String>,
    /// Reasons not kept (beyond `MAX_REASONS`).
    omitted: usize,
}

impl Rejections {
    const MAX_REASONS: usize = 10;

    pub fn is_empty(&self) -> bool {
        self.series == 0 && self.histograms == 0 && self.exemplars == 0 && self.metadata == 0
    }

    pub(super) fn add(&mut self, reason: String) {
        if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.push(reason);
        } else {
            self.omitted += 1;
        }
    }

    /// A whole series is refused, with everything it carried.
    #[inline(never)]
    pub(super) fn reject_series(
        &mut self,
        reason: &str,
        labels: &[(&str, &str)],
        samples: usize,
        signals: &SeriesSignals,
    ) {
        self.series += 1;
        self.samples += samples;
        self.histograms += signals.histograms.len();
        self.exemplars += signals.exemplars.len();
        self.add(format!("series {}: {reason}", describe(labels)));
    }

    pub(super) fn reject_metadata(&mut self, reason: String) {
        self.metadata += 1;
        self.add(reason);
    }

    /// One line for the 400 body: counts, then the first reasons.
    pub fn message(&self) -> String {
        let mut m = format!("rejected {} series ({} samples)", self.series, self.samples);
        for (n, what) in [
            (self.histograms, "native histogram samples"),
            (self.exemplars, "exemplars"),
            (self.metadata, "metadata entries"),
        ] {
            if n > 0 {
                m.push_str(&format!(", {n} {what}"));
            }
        }
        m.push_str("; the rest of the request was stored");
        for r in &self.reasons {
            m.push_str("; ");
            m.push_str(r);
        }
        if self.omitted > 0 {
            m.push_str(&format!("; ... and {} more", self.omitted));
        }
        m
    }
}

/// Everything a request carried: accepted float series (zero-copy), native histograms,
/// exemplars and metadata (owned, final labels), and what was refused.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    pub batch: WriteBatch<'a>,
    /// One entry per series with accepted native histogram samples, sorted by time.
    pub histograms: Vec<HistogramSeries>,
    /// One entry per series with accepted exemplars.
    pub exemplars: Vec<ExemplarSeries>,
    /// Deduplicated and sorted.
    pub metadata: Vec<MetricMetadata>,
    pub rejected: Rejections,
    /// Always 0: exemplars are decoded into `exemplars` now. Kept until the ingester stops reading it.
    pub exemplars_ignored: usize,
    /// Always 0: metadata is decoded into `metadata` now. Kept until the ingester stops reading it.
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
    let cluster = ctx
        .token_cluster
        .as_deref()
        .or(ctx.header_cluster.as_deref())
        .unwrap_or("");
    let mut metadata = MetadataSet::default();
    let mut v2_series = 0;
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field()? {
        match (f, v) {
            (field::WRITE_REQUEST_TIMESERIES, Value::Bytes(ts)) => {
                decode_series(ts, ctx, limits, seed, known, &mut out)?
            }
            (field::WRITE_REQUEST_METADATA, Value::Bytes(m)) => match decode_metadata(m)? {
                Ok(m) => metadata.insert(cluster, m.family, m.kind, m.help, m.unit),
                Err(reason) => out.rejected.reject_metadata(reason),
            },
            (v2::field::REQUEST_TIMESERIES, Value::Bytes(_)) => v2_series += 1,
            _ => {}
        }
    }
    out.metadata = metadata.into_vec();
    if v2_series > 0 {
        out.rejected.series += v2_series;
        out.rejected.add(format!(
            "{v2_series} series are remote-write 2.0 (io.prometheus.write.v2.Request) but the request was sent as 1.0: \
             send Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request"
        ));
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
                scan.all_storable &= storable(sample.timestamp);
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
    if scan.histograms == 0 && scan.exemplars == 0 && scan.all_storable && raw_key.is_some_and(|k| known.is_known(k)) {
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
    // Not known (or carrying more than samples): the full path, which decodes the samples again.
    batch.samples.truncate(sample_start);
    let mut check = SeriesCheck::new(label_start);
    let mut signals = SeriesSignals::default();
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::TIMESERIES_LABELS, Value::Bytes(l)) => {
                let (name, value) = decode_label(l)?;
                check.label(name, value, limits, &mut batch.labels);
            }
            (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => {
                let sample = decode_sample(s)?;
                check.sample(&sample);
                batch.samples.push(sample);
            }
            (field::TIMESERIES_EXEMPLARS, Value::Bytes(e)) => signals.exemplars.push(decode_exemplar(e)?),
            (field::TIMESERIES_HISTOGRAMS, Value::Bytes(h)) => signals.histograms.push(decode_histogram(h)?),
            _ => {}
        }
    }

    match check.finish(ctx, limits, &mut batch.labels) {
        Ok(()) => {
            let labels = &batch.labels[label_start..];
            if !signals.is_empty() {
                let (histograms, exemplars) = signals.accept(labels, &mut out.rejected);
                push_signals(labels, histograms, exemplars, &mut out.histograms, &mut out.exemplars);
            }
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
        Err(reason) => {
            let samples = batch.samples.len() - sample_start;
            out.rejected
                .reject_series(&reason, &batch.labels[label_start..], samples, &signals);
            batch.labels.truncate(label_start);
            batch.samples.truncate(sample_start);
        }
    }
    Ok(())
}

/// Validates one series as its fields arrive: labels (pushed onto the batch as they pass), then
/// float samples' timestamps, then, in [`SeriesCheck::finish`], `__name__`, the cluster and the
/// label count. The first problem found is the series' reason.
pub(super) struct SeriesCheck<'a> {
    start: usize,
    prev_name: Option<&'a [u8]>,
    has_name: bool,
    problem: Option<String>,
}

impl<'a> SeriesCheck<'a> {
    /// For a series whose labels start at `start` in the batch.
    pub(super) fn new(start: usize) -> Self {
        Self {
            start,
            prev_name: None,
            has_name: false,
            problem: None,
        }
    }

    /// Records a problem found outside these checks, unless one is already known.
    pub(super) fn fail(&mut self, reason: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(reason());
        }
    }

    /// The next label in wire order; kept (when valid and non-empty) by pushing it onto `labels`.
    #[inline]
    pub(super) fn label(
        &mut self,
        name: &'a [u8],
        value: &'a [u8],
        limits: &Limits,
        labels: &mut Vec<(&'a str, &'a str)>,
    ) {
        if self.problem.is_some() {
            return;
        }
        if self.prev_name.is_some_and(|p| p >= name) {
            self.problem = Some(if self.prev_name == Some(name) {
                format!("duplicate label name {:?}", String::from_utf8_lossy(name))
            } else {
                format!("labels are not sorted by name at {:?}", String::from_utf8_lossy(name))
            });
        } else {
            self.problem = check_label(name, value, limits).err();
        }
        self.prev_name = Some(name);
        if self.problem.is_none() && !value.is_empty() {
            // check_label proved both are UTF-8.
            let name = std::str::from_utf8(name).unwrap_or_default();
            let value = std::str::from_utf8(value).unwrap_or_default();
            self.has_name |= name == METRIC_NAME;
            labels.push((name, value));
        }
    }

    /// A float sample of the series: its timestamp must be storable.
    #[inline]
    pub(super) fn sample(&mut self, s: &Sample) {
        if self.problem.is_none() && !storable(s.timestamp) {
            self.problem = Some(unstorable("sample timestamp", s.timestamp));
        }
    }

    /// After the last field: the series' labels become final (stamped with the cluster, sorted)
    /// or the series is refused with its first problem.
    pub(super) fn finish(
        self,
        ctx: &'a ClusterContext,
        limits: &Limits,
        labels: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<(), String> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        if !self.has_name {
            return Err("series has no __name__ label".to_string());
        }
        match ctx.stamp(&labels[self.start..])? {
            Stamp::Keep => {}
            stamp => {
                stamp.apply(labels, self.start);
                labels[self.start..].sort_unstable_by(|a, b| a.0.cmp(b.0));
            }
        }
        let n = labels.len() - self.start;
        if n > limits.max_labels_per_series {
            return Err(format!(
                "series has {n} labels, more than the limit of {}",
                limits.max_labels_per_series
            ));
        }
        Ok(())
    }
}

/// The native histogram samples and exemplars of one series, each decoded, or refused with a
/// reason, before the series' labels are known to be valid.
#[derive(Debug, Default)]
pub(super) struct SeriesSignals {
    pub(super) histograms: Vec<Result<HistogramSample, String>>,
    pub(super) exemplars: Vec<Result<Exemplar, String>>,
}

impl SeriesSignals {
    pub(super) fn is_empty(&self) -> bool {
        self.histograms.is_empty() && self.exemplars.is_empty()
    }

    /// The series (final `labels`) was accepted: keeps the valid histogram samples and exemplars,
    /// and refuses the others with their reasons.
    #[inline(never)]
    pub(super) fn accept(
        self,
        labels: &[(&str, &str)],
        rejected: &mut Rejections,
    ) -> (Vec<HistogramSample>, Vec<Exemplar>) {
        let histograms = keep_valid(self.histograms, labels, "native histogram sample", rejected, |r| {
            &mut r.histograms
        });
        let exemplars = keep_valid(self.exemplars, labels, "exemplar", rejected, |r| &mut r.exemplars);
        (histograms, exemplars)
    }
}

/// The valid items; each invalid one is counted (in the `count` field) and given a reason.
fn keep_valid<T>(
    items: Vec<Result<T, String>>,
    labels: &[(&str, &str)],
    what: &str,
    rejected: &mut Rejections,
    count: fn(&mut Rejections) -> &mut usize,
) -> Vec<T> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Ok(v) => kept.push(v),
            Err(reason) => {
                *count(rejected) += 1;
                rejected.add(format!("series {}: {what}: {reason}", describe(labels)));
            }
        }
    }
    kept
}

/// Adds an accepted series' histogram samples (sorted by time here) and exemplars to the output,
/// each non-empty list under an owned copy of the series' final labels.
#[inline(never)]
pub(super) fn push_signals(
    labels: &[(&str, &str)],
    mut histograms: Vec<HistogramSample>,
    exemplars: Vec<Exemplar>,
    out_histograms: &mut Vec<HistogramSeries>,
    out_exemplars: &mut Vec<ExemplarSeries>,
) {
    if histograms.is_empty() && exemplars.is_empty() {
        return;
    }
    let labels = Labels::from_sorted(labels.iter().map(|(n, v)| Label::new(*n, *v)).collect());
    if !histograms.is_empty() {
        histograms.sort_by_key(|h| h.timestamp);
        out_histograms.push(HistogramSeries {
            labels: labels.clone(),
            samples: histograms,
        });
    }
    if !exemplars.is_empty() {
        out_exemplars.push(ExemplarSeries { labels, exemplars });
    }
}

/// Metric metadata borrowed from a request, deduplicated before anything is allocated: one
/// entry per distinct (cluster, family, type, help, unit), however many series repeat it.
#[derive(Debug, Default)]
pub(super) struct MetadataSet<'a>(BTreeSet<(&'a str, &'a str, MetricType, &'a str, &'a str)>);

impl<'a> MetadataSet<'a> {
    pub(super) fn insert(&mut self, cluster: &'a str, family: &'a str, kind: MetricType, help: &'a str, unit: &'a str) {
        self.0.insert((cluster, family, kind, help, unit));
    }

    /// Sorted like [`MetricMetadata`]'s `Ord` (the tuple follows its field order).
    pub(super) fn into_vec(self) -> Vec<MetricMetadata> {
        self.0
            .into_iter()
            .map(|(cluster, metric, kind, help, unit)| MetricMetadata {
                cluster: cluster.to_string(),
                metric: metric.to_string(),
                kind,
                help: help.to_string(),
                unit: unit.to_string(),
            })
            .collect()
    }
}

/// The wire's metric type numbering (the same in 1.0 and 2.0); unknown numbers are "unknown".
pub(super) fn metric_type(v: u64) -> MetricType {
    match v {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

/// A 1.0 `MetricMetadata`, borrowed from the request.
struct FamilyMetadata<'a> {
    family: &'a str,
    kind: MetricType,
    help: &'a str,
    unit: &'a str,
}

/// One `MetricMetadata`, or why it is refused.
fn decode_metadata(buf: &[u8]) -> Result<Result<FamilyMetadata<'_>, String>, WireError> {
    let (mut kind, mut name, mut help, mut unit): (u64, &[u8], &[u8], &[u8]) = (0, b"", b"", b"");
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::METADATA_TYPE, Value::Varint(t)) => kind = t,
            (field::METADATA_FAMILY_NAME, Value::Bytes(b)) => name = b,
            (field::METADATA_HELP, Value::Bytes(b)) => help = b,
            (field::METADATA_UNIT, Value::Bytes(b)) => unit = b,
            _ => {}
        }
    }
    let name = match std::str::from_utf8(name) {
        Ok(n) if valid_metric_name(n.as_bytes()) => n,
        _ => {
            return Ok(Err(format!(
                "metadata: invalid metric family name {:?} (must match [a-zA-Z_:][a-zA-Z0-9_:]*)",
                String::from_utf8_lossy(name)
            )));
        }
    };
    let (Ok(help), Ok(unit)) = (std::str::from_utf8(help), std::str::from_utf8(unit)) else {
        return Ok(Err(format!("metadata of {name}: help or unit is not valid UTF-8")));
    };
    Ok(Ok(FamilyMetadata {
        family: name,
        kind: metric_type(kind),
        help,
        unit,
    }))
}

/// True when the Parquet layout can store a sample at `t` ms.
#[inline]
pub(super) fn storable(t: i64) -> bool {
    (MIN_STORABLE_MS..=MAX_STORABLE_MS).contains(&t)
}

pub(super) fn unstorable(what: &str, t: i64) -> String {
    format!("{what} {t} ms is outside the storable range (years 0000 to 9999)")
}

/// A series for a reason: its metric name and first few labels.
pub(super) fn describe(labels: &[(&str, &str)]) -> String {
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

/// A `Sample` (the same message in 1.0 and 2.0).
pub(super) fn decode_sample(buf: &[u8]) -> Result<Sample, WireError> {
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

fn valid_label_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn valid_metric_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_' || *c == b':')
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

fn check_label(name: &[u8], value: &[u8], limits: &Limits) -> Result<(), String> {
    if !valid_label_name(name) {
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
    if name == METRIC_NAME.as_bytes() && !valid_metric_name(value) {
        return Err(format!(
            "invalid metric name {:?} (must match [a-zA-Z_:][a-zA-Z0-9_:]*)",
            String::from_utf8_lossy(value)
        ));
    }
    Ok(())
}

/// A 1.0 `Exemplar` (labels as `Label` messages).
#[inline(never)] // off the hot loop: most series carry none
fn decode_exemplar(buf: &[u8]) -> Result<Result<Exemplar, String>, WireError> {
    let mut labels = Vec::new();
    let (mut value, mut timestamp) = (0.0, 0);
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::EXEMPLAR_LABELS, Value::Bytes(l)) => labels.push(decode_label(l)?),
            (field::EXEMPLAR_VALUE, Value::Fixed64(bits)) => value = f64::from_bits(bits),
            (field::EXEMPLAR_TIMESTAMP, Value::Varint(t)) => timestamp = t as i64,
            _ => {}
        }
    }
    Ok(check_exemplar(&labels, value, timestamp))
}

/// Validates an exemplar's labels (any order on the wire) and timestamp; see the module docs.
pub(super) fn check_exemplar(pairs: &[(&[u8], &[u8])], value: f64, timestamp: i64) -> Result<Exemplar, String> {
    let mut labels = Vec::with_capacity(pairs.len());
    let mut chars = 0;
    for &(name, value) in pairs {
        if !valid_label_name(name) {
            return Err(format!(
                "invalid label name {:?} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                String::from_utf8_lossy(name)
            ));
        }
        let Ok(value) = std::str::from_utf8(value) else {
            return Err(format!(
                "value of label {:?} is not valid UTF-8",
                String::from_utf8_lossy(name)
            ));
        };
        chars += name.len() + value.chars().count();
        if !value.is_empty() {
            // Checked ASCII above.
            labels.push(Label::new(std::str::from_utf8(name).unwrap_or_default(), value));
        }
    }
    if chars > MAX_EXEMPLAR_LABEL_CHARS {
        return Err(format!(
            "labels are {chars} characters long, over the limit of {MAX_EXEMPLAR_LABEL_CHARS}"
        ));
    }
    if !storable(timestamp) {
        return Err(unstorable("timestamp", timestamp));
    }
    labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(format!("duplicate label name {:?}", w[0].name));
    }
    Ok(Exemplar {
        labels: Labels::from_sorted(labels),
        value,
        timestamp,
    })
}

/// `oneof count` / `oneof zero_count` of a `Histogram`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Count {
    Int(u64),
    Float(f64),
}

/// Decodes one `Histogram` message (remote-write 1.0 and 2.0 share it) into a sample with
/// absolute float counts, or the reason it cannot be stored (see the module docs).
/// `Err` only for bytes that are not protobuf.
#[inline(never)] // off the hot loop: most series carry none
pub(super) fn decode_histogram(buf: &[u8]) -> Result<Result<HistogramSample, String>, WireError> {
    let mut h = HistogramSample::default();
    let (mut count, mut zero_count): (Option<Count>, Option<Count>) = (None, None);
    let (mut neg_deltas, mut pos_deltas, mut neg_counts, mut pos_counts) = (vec![], vec![], vec![], vec![]);
    let mut bad_span = None;
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::HISTOGRAM_COUNT_INT, Value::Varint(n)) => count = Some(Count::Int(n)),
            (field::HISTOGRAM_COUNT_FLOAT, Value::Fixed64(b)) => count = Some(Count::Float(f64::from_bits(b))),
            (field::HISTOGRAM_SUM, Value::Fixed64(b)) => h.sum = f64::from_bits(b),
            (field::HISTOGRAM_SCHEMA, Value::Varint(n)) => h.schema = zigzag32(n),
            (field::HISTOGRAM_ZERO_THRESHOLD, Value::Fixed64(b)) => h.zero_threshold = f64::from_bits(b),
            (field::HISTOGRAM_ZERO_COUNT_INT, Value::Varint(n)) => zero_count = Some(Count::Int(n)),
            (field::HISTOGRAM_ZERO_COUNT_FLOAT, Value::Fixed64(b)) => {
                zero_count = Some(Count::Float(f64::from_bits(b)))
            }
            (field::HISTOGRAM_NEGATIVE_SPANS, Value::Bytes(s)) => h.negative_spans.push(decode_span(s, &mut bad_span)?),
            (field::HISTOGRAM_NEGATIVE_DELTAS, v) => read_sint64s(v, &mut neg_deltas)?,
            (field::HISTOGRAM_NEGATIVE_COUNTS, v) => read_doubles(v, &mut neg_counts)?,
            (field::HISTOGRAM_POSITIVE_SPANS, Value::Bytes(s)) => h.positive_spans.push(decode_span(s, &mut bad_span)?),
            (field::HISTOGRAM_POSITIVE_DELTAS, v) => read_sint64s(v, &mut pos_deltas)?,
            (field::HISTOGRAM_POSITIVE_COUNTS, v) => read_doubles(v, &mut pos_counts)?,
            (field::HISTOGRAM_RESET_HINT, Value::Varint(n)) => {
                // An enum value this reader does not know reads as "unknown", which is always safe.
                h.reset_hint = u8::try_from(n).ok().and_then(ResetHint::from_u8).unwrap_or_default()
            }
            (field::HISTOGRAM_TIMESTAMP, Value::Varint(t)) => h.timestamp = t as i64,
            (field::HISTOGRAM_CUSTOM_VALUES, v) => read_doubles(v, &mut h.custom_values)?,
            _ => {}
        }
    }
    let checked = (|| {
        if let Some(reason) = bad_span {
            return Err(reason);
        }
        let totals = fill_counts(
            &mut h,
            count,
            zero_count,
            [neg_deltas, pos_deltas],
            [neg_counts, pos_counts],
        )?;
        validate_histogram(&h)?;
        // Prometheus's TSDB refuses integer histograms whose buckets do not add up to the count (a
        // NaN sum, as in a staleness marker, only needs them not to exceed it). Float counts are
        // not checked: rounding makes their sums inexact.
        if let Some((count, total)) = totals {
            let consistent = if h.sum.is_nan() { total <= count } else { total == count };
            if !consistent {
                return Err(format!(
                    "count {count} does not match its buckets, which hold {total} observations"
                ));
            }
        }
        Ok(())
    })();
    Ok(checked.map(|()| h))
}

/// Sets counts and buckets from the integer (deltas) or float (absolute) fields, as the `count`
/// oneof says (Prometheus's rule: a histogram is a float histogram when `count_float` is set).
/// For an integer histogram, returns its count and the observations its buckets hold.
fn fill_counts(
    h: &mut HistogramSample,
    count: Option<Count>,
    zero_count: Option<Count>,
    [neg_deltas, pos_deltas]: [Vec<i64>; 2],
    [neg_counts, pos_counts]: [Vec<f64>; 2],
) -> Result<Option<(u128, u128)>, String> {
    const MIXED: &str = "mixes integer and float counts";
    match count.unwrap_or(Count::Int(0)) {
        Count::Float(c) => {
            if !neg_deltas.is_empty() || !pos_deltas.is_empty() || matches!(zero_count, Some(Count::Int(_))) {
                return Err(MIXED.to_string());
            }
            h.count = c;
            h.zero_count = match zero_count {
                Some(Count::Float(z)) => z,
                _ => 0.0,
            };
            h.negative_buckets = neg_counts;
            h.positive_buckets = pos_counts;
            Ok(None)
        }
        Count::Int(c) => {
            if !neg_counts.is_empty() || !pos_counts.is_empty() || matches!(zero_count, Some(Count::Float(_))) {
                return Err(MIXED.to_string());
            }
            let zero = match zero_count {
                Some(Count::Int(z)) => z,
                _ => 0,
            };
            let (negative, neg_total) = absolute(&neg_deltas, "negative")?;
            let (positive, pos_total) = absolute(&pos_deltas, "positive")?;
            // Exact up to 2^53 observations, as `HistogramSample` documents.
            h.count = c as f64;
            h.zero_count = zero as f64;
            h.negative_buckets = negative;
            h.positive_buckets = positive;
            Ok(Some((u128::from(c), u128::from(zero) + neg_total + pos_total)))
        }
    }
}

/// Integer bucket deltas → absolute float counts, and their total.
fn absolute(deltas: &[i64], side: &str) -> Result<(Vec<f64>, u128), String> {
    let mut out = Vec::with_capacity(deltas.len());
    let (mut current, mut total) = (0i64, 0u128);
    for (i, d) in deltas.iter().enumerate() {
        current = current
            .checked_add(*d)
            .ok_or_else(|| format!("{side} bucket {i}'s count overflows"))?;
        if current < 0 {
            return Err(format!("{side} bucket {i} has a negative count ({current})"));
        }
        total += current as u128;
        out.push(current as f64);
    }
    Ok((out, total))
}

fn validate_histogram(h: &HistogramSample) -> Result<(), String> {
    if !storable(h.timestamp) {
        return Err(unstorable("timestamp", h.timestamp));
    }
    if h.schema == CUSTOM_BUCKETS_SCHEMA {
        let bounds = &h.custom_values;
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("custom bucket bounds (custom_values) must be finite and strictly increasing".to_string());
        }
        if h.zero_count != 0.0 || h.zero_threshold != 0.0 {
            return Err("custom-bucket histograms (schema -53) have no zero bucket".to_string());
        }
        if !h.negative_spans.is_empty() || !h.negative_buckets.is_empty() {
            return Err("custom-bucket histograms (schema -53) have no negative buckets".to_string());
        }
        check_spans(&h.positive_spans, h.positive_buckets.len(), "positive")?;
        // Bucket indices run from 0 to custom_values.len() (the +Inf bucket).
        let mut end = 0i64;
        for (i, s) in h.positive_spans.iter().enumerate() {
            let start = end + i64::from(s.offset);
            if start < 0 {
                return Err(format!("positive span {i} starts at negative bucket index {start}"));
            }
            end = start + i64::from(s.length);
        }
        if end > bounds.len() as i64 + 1 {
            return Err(format!(
                "buckets reach index {} but there are only {} custom bounds (+Inf is index {})",
                end - 1,
                bounds.len(),
                bounds.len()
            ));
        }
    } else if EXPONENTIAL_SCHEMAS.contains(&h.schema) {
        if !h.custom_values.is_empty() {
            return Err(format!("custom_values are only for schema -53, not {}", h.schema));
        }
        check_spans(&h.positive_spans, h.positive_buckets.len(), "positive")?;
        check_spans(&h.negative_spans, h.negative_buckets.len(), "negative")?;
    } else {
        return Err(format!(
            "unsupported schema {} (must be -4..=8, or -53 for custom buckets)",
            h.schema
        ));
    }
    if h.count < 0.0 || h.zero_count < 0.0 {
        return Err("negative count".to_string());
    }
    if h.positive_buckets.iter().chain(&h.negative_buckets).any(|c| *c < 0.0) {
        return Err("negative bucket count".to_string());
    }
    Ok(())
}

fn check_spans(spans: &[BucketSpan], buckets: usize, side: &str) -> Result<(), String> {
    let mut covered = 0u64;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && s.offset < 0 {
            return Err(format!("{side} span {i} has a negative offset ({})", s.offset));
        }
        covered += u64::from(s.length);
    }
    if covered != buckets as u64 {
        return Err(format!(
            "{side} spans cover {covered} buckets but {buckets} bucket counts were sent"
        ));
    }
    Ok(())
}

fn decode_span(buf: &[u8], bad: &mut Option<String>) -> Result<BucketSpan, WireError> {
    let mut span = BucketSpan { offset: 0, length: 0 };
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::BUCKET_SPAN_OFFSET, Value::Varint(n)) => span.offset = zigzag32(n),
            (field::BUCKET_SPAN_LENGTH, Value::Varint(n)) => match u32::try_from(n) {
                Ok(n) => span.length = n,
                Err(_) => {
                    bad.get_or_insert_with(|| format!("bucket span length {n} is out of range"));
                }
            },
            _ => {}
        }
    }
    Ok(span)
}

/// A `repeated sint64` field, packed (as proto3 writes it) or not.
fn read_sint64s(v: Value<'_>, out: &mut Vec<i64>) -> Result<(), WireError> {
    match v {
        Value::Bytes(b) => {
            for n in PackedVarints::new(b) {
                out.push(zigzag64(n?));
            }
        }
        Value::Varint(n) => out.push(zigzag64(n)),
        _ => {}
    }
    Ok(())
}

/// A `repeated double` field, packed or not.
fn read_doubles(v: Value<'_>, out: &mut Vec<f64>) -> Result<(), WireError> {
    match v {
        Value::Bytes(b) => out.extend(packed_fixed64(b)?.map(f64::from_bits)),
        Value::Fixed64(bits) => out.push(f64::from_bits(bits)),
        _ => {}
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
            assert_eq!(d.exemplars_ignored, 0);
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
            assert_eq!(d.metadata_ignored, 0);
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
}
