//! Prometheus remote-write 1.0 (`prometheus.WriteRequest`, snappy block body) → [`Decoded`].
//! The validation rules are remote-write's ([`super`]); what is 1.0's own:
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
//! The keys of a request are looked up together, between a first pass that takes every series'
//! samples and key and a second that decodes the labels of the series the head lacks: one at a
//! time, each look-up's cache misses stalled the decoder.
//! A series carrying native histograms or exemplars takes the full path (their outputs need the
//! labels), so exemplar-free traffic pays nothing for them. Sample values keep their exact bits
//! (staleness markers included).
//! The known-series path is correct only together with the head's raw index and the ingester's
//! gate: see the known-span invariant in [`crate::head::input`].

use std::ops::Range;

use tributary_proto::prometheus::{field, v2};
use tributary_storage::signals::{Exemplar, ExemplarSeries, HistogramSeries, MetricMetadata};
use tributary_storage::types::Sample;

use super::decode_sample;
use super::histogram::decode_histogram;
use super::labels::SeriesCheck;
use super::metadata::{MetadataSet, decode_v1_metadata};
use super::signals::{SeriesSignals, check_exemplar, push_signals};
use crate::cluster::ClusterContext;
use crate::decode::limits::{Limits, storable};
use crate::decode::wire::{Reader, Value, WireError};
use crate::decode::{Accepted, Batch, Options as DecodeOptions, Prepared, Rejections};
use crate::error::Error;
use crate::head::input::{KnownSeries, Lookup, RawKey, SeriesSpan, WriteBatch};

/// Everything a request carried: accepted float series (zero-copy), native histograms,
/// exemplars and metadata (owned, final labels), and what was refused.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    /// Accepted float series, zero-copy.
    pub batch: WriteBatch<'a>,
    /// One entry per series with accepted native histogram samples, sorted by time.
    pub histograms: Vec<HistogramSeries>,
    /// One entry per series with accepted exemplars.
    pub exemplars: Vec<ExemplarSeries>,
    /// Deduplicated and sorted.
    pub metadata: Vec<MetricMetadata>,
    /// What was refused, and why.
    pub rejected: Rejections,
}

/// The decode table's entry for [`crate::record::Kind::PromRemoteWriteV1`]. Must run under the
/// ingester's gate when `known` is the head (see [`crate::head::input`]).
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    known: &dyn KnownSeries,
) -> crate::error::Result<Batch<'a>> {
    let d = decode(body.bytes()?, ctx, &opts.limits, known)
        .map_err(|e| Error::InvalidInput(format!("body is not a valid prometheus.WriteRequest: {e}")))?;
    let accepted = Accepted {
        series: d.batch.series.len(),
        samples: d.batch.sample_count(),
        histograms: d.histograms.iter().map(|h| h.samples.len()).sum(),
        exemplars: d.exemplars.iter().map(|e| e.exemplars.len()).sum(),
        ..Accepted::default()
    };
    Ok(super::into_batch(
        d.batch,
        d.histograms,
        d.exemplars,
        d.metadata,
        accepted,
        d.rejected,
    ))
}

/// Decodes a decompressed `WriteRequest`. `Err` only when the bytes are not valid protobuf.
///
/// Two passes: the first walks every series once, taking its samples and hashing its label
/// bytes; then every key that may take the short path is looked up at once
/// ([`KnownSeries::look_up`]); the second pass decodes the labels of the series the head does
/// not know.
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
    let mut scanned: Vec<Scan<'a>> = Vec::with_capacity(buf.len() / 256);
    let cluster = ctx.request_cluster().unwrap_or("");
    let mut metadata = MetadataSet::default();
    let mut v2_series = 0;
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field()? {
        match (f, v) {
            (field::WRITE_REQUEST_TIMESERIES, Value::Bytes(ts)) => {
                scanned.push(scan_series(ts, seed, &mut out.batch.samples)?)
            }
            (field::WRITE_REQUEST_METADATA, Value::Bytes(m)) => match decode_v1_metadata(m)? {
                Ok(m) => metadata.insert(cluster, m.family, m.kind, m.help, m.unit),
                Err(reason) => out.rejected.reject_metadata(reason),
            },
            (v2::field::REQUEST_TIMESERIES, Value::Bytes(_)) => v2_series += 1,
            _ => {}
        }
    }
    let keys: Vec<RawKey> = scanned.iter().filter_map(Scan::short_path_key).collect();
    let mut found = Vec::with_capacity(keys.len());
    known.look_up(&keys, &mut found);
    let mut found = found.into_iter();
    let mut kept = 0;
    for scan in scanned {
        let lookup = scan
            .short_path_key()
            .and_then(|_| found.next())
            .unwrap_or(Lookup::Unknown);
        add_series(scan, lookup, ctx, limits, &mut kept, &mut out)?;
    }
    // Samples of refused series (moved over by the ones after them).
    out.batch.samples.truncate(kept);
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

/// What the first walk over a series finds without interpreting labels.
struct Scan<'a> {
    /// The series' bytes, walked again for its labels when the head does not know it.
    buf: &'a [u8],
    /// Its samples in the batch, as pushed by the walk.
    samples: Range<usize>,
    /// Its raw key, when its label fields were contiguous.
    raw_key: Option<RawKey>,
    /// Neither native histograms nor exemplars, and every timestamp storable.
    plain: bool,
}

impl Scan<'_> {
    /// The key to look up, when the series may take the short path.
    fn short_path_key(&self) -> Option<RawKey> {
        self.raw_key.filter(|_| self.plain)
    }
}

/// Walks a series once: pushes its samples, and hashes its label bytes.
fn scan_series<'a>(buf: &'a [u8], seed: u64, samples: &mut Vec<Sample>) -> Result<Scan<'a>, WireError> {
    let first = samples.len();
    let mut labels: Option<Range<usize>> = None;
    let (mut contiguous, mut plain) = (true, true);
    let mut r = Reader::new(buf);
    loop {
        let at = r.position();
        let Some((f, v)) = r.next_field()? else { break };
        match (f, v) {
            (field::TIMESERIES_LABELS, Value::Bytes(_)) => match &mut labels {
                None => labels = Some(at..r.position()),
                Some(range) if range.end == at => range.end = r.position(),
                Some(_) => contiguous = false,
            },
            (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => {
                let sample = decode_sample(s)?;
                plain &= storable(sample.timestamp);
                samples.push(sample);
            }
            (field::TIMESERIES_EXEMPLARS | field::TIMESERIES_HISTOGRAMS, Value::Bytes(_)) => plain = false,
            _ => {}
        }
    }
    Ok(Scan {
        buf,
        samples: first..samples.len(),
        raw_key: labels
            .filter(|_| contiguous)
            .map(|r| xxhash_rust::xxh3::xxh3_128_with_seed(&buf[r], seed)),
        plain,
    })
}

/// Adds one scanned series to the batch: as a known span, or through the full path, which
/// decodes and checks its labels (and its histograms and exemplars), checks the samples the
/// scan took, and refuses the series or stamps its labels. `kept`: samples kept so far; once a
/// series is refused, the samples of those after it move down over its own.
fn add_series<'a>(
    scan: Scan<'a>,
    lookup: Lookup,
    ctx: &'a ClusterContext,
    limits: &Limits,
    kept: &mut usize,
    out: &mut Decoded<'a>,
) -> Result<(), WireError> {
    let batch = &mut out.batch;
    let n = scan.samples.len();
    if scan.samples.start != *kept {
        batch.samples.copy_within(scan.samples.clone(), *kept);
    }
    let samples = *kept as u32..(*kept + n) as u32;
    let label_start = batch.labels.len();
    if lookup.is_known() {
        if n > 0 {
            batch.series.push(SeriesSpan {
                labels: label_start as u32..label_start as u32,
                samples,
                raw_key: scan.raw_key,
                known: true,
                placed: lookup.placement(),
            });
            *kept += n;
        }
        return Ok(());
    }
    let mut check = SeriesCheck::new(label_start);
    let mut signals = SeriesSignals::default();
    let mut r = Reader::new(scan.buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::TIMESERIES_LABELS, Value::Bytes(l)) => {
                let (name, value) = decode_label(l)?;
                check.label(name, value, limits, &mut batch.labels);
            }
            // Taken by the scan; checked here, in field order, as the first problem is reported.
            (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => check.sample(&decode_sample(s)?),
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
            if n > 0 {
                batch.series.push(SeriesSpan {
                    labels: label_start as u32..batch.labels.len() as u32,
                    samples,
                    raw_key: scan.raw_key,
                    known: false,
                    placed: None,
                });
                *kept += n;
            } else {
                batch.labels.truncate(label_start);
            }
        }
        Err(reason) => {
            out.rejected
                .reject_series(&reason, &batch.labels[label_start..], n, &signals);
            batch.labels.truncate(label_start);
        }
    }
    Ok(())
}

pub(super) fn decode_label(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
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

#[cfg(test)]
mod tests;
