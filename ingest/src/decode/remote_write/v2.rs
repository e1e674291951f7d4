//! Prometheus remote-write 2.0 (`io.prometheus.write.v2.Request`, snappy block body) → [`DecodedV2`].
//!
//! Every string of a request travels once, in the symbol table; series, exemplars and metadata
//! refer to symbols by index. Labels are borrowed straight from the table, so accepted float
//! samples come out as the same zero-copy [`WriteBatch`] remote-write 1.0 produces (with no raw
//! key: 2.0 series are not byte-identical from one request to the next, so the head's known-series
//! short path does not apply).
//!
//! Validation is 1.0's, shared in [`super`]: label names and values, sorting,
//! `__name__`, limits, storable timestamps, cluster stamping, and each native histogram sample and
//! exemplar on its own. On top of that:
//! - `symbols[0]` must be the empty string (the spec requires it; every ref would be suspect
//!   otherwise), label refs come in (name, value) pairs and must be in range — each failure
//!   rejects the series with a reason;
//! - metadata (`type`, `help_ref`, `unit_ref`) becomes one [`MetricMetadata`] per distinct
//!   (cluster, family, type, help, unit): the cluster is the series' final `cluster` label, the
//!   family its metric name without the suffixes its type implies (`_bucket`, `_sum`, `_count` for
//!   histograms; also `_gsum`, `_gcount` for gauge histograms; `_sum`, `_count` for summaries;
//!   counters keep `_total`, as Prometheus's text format names their family) — the names
//!   Prometheus's own `/api/v1/metadata` shows for what it scraped. A series without metadata
//!   (type unspecified, no help, no unit) adds none; a metadata ref out of range or not UTF-8
//!   refuses only the metadata;
//! - **created timestamps** (Prometheus's "created-timestamp zero ingestion"): when a series has
//!   `created_timestamp` > 0, its metadata type is counter or histogram, and the created timestamp
//!   is storable and earlier than the series' first float sample in this request, a float 0 is
//!   inserted at the created timestamp; likewise an empty histogram (same schema, zero threshold
//!   and custom bounds, reset hint "yes") before its first native histogram sample. This marks
//!   where the counter started, so `rate()` and `increase()` see the first increment. Other
//!   types (a zero gauge or quantile would be a false value) and unset or unstorable created
//!   timestamps add nothing;
//! - a 1.0 `WriteRequest` sent with the 2.0 content type (its series in field 1, reserved in 2.0)
//!   has those series rejected with a reason, instead of being read as an empty request.
//!
//! `samples_written`, `histograms_written` and `exemplars_written` count what the request sent
//! and was accepted (inserted created-timestamp zeros excluded): the values of the
//! `X-Prometheus-Remote-Write-*-Written` response headers.

use tributary_proto::prometheus::{field as v1_field, v2::field};
use tributary_storage::signals::{
    Exemplar, ExemplarSeries, HistogramSample, HistogramSeries, MetricMetadata, MetricType, ResetHint,
};
use tributary_storage::types::{CLUSTER, METRIC_NAME, Sample};

use super::decode_sample;
use super::histogram::decode_histogram;
use super::labels::{SeriesCheck, describe};
use super::metadata::{MetadataSet, metric_type};
use super::signals::{SeriesSignals, check_exemplar, push_signals};
use crate::cluster::ClusterContext;
use crate::decode::limits::{Limits, storable};
use crate::decode::wire::{PackedVarints, Reader, Value, WireError};
use crate::decode::{Accepted, Batch, Options as DecodeOptions, Prepared, Rejections};
use crate::error::Error;
use crate::head::input::{KnownSeries, SeriesSpan, WriteBatch};

/// Everything a 2.0 request carried.
#[derive(Debug, Default)]
pub struct DecodedV2<'a> {
    /// Float samples, exactly like 1.0's (labels borrowed from the symbol table; `raw_key` is
    /// `None` and `known` false).
    pub batch: WriteBatch<'a>,
    /// One entry per series with accepted native histogram samples (absolute float counts),
    /// sorted by time.
    pub histograms: Vec<HistogramSeries>,
    /// One entry per series with accepted exemplars.
    pub exemplars: Vec<ExemplarSeries>,
    /// Deduplicated and sorted.
    pub metadata: Vec<MetricMetadata>,
    /// What was refused, and why.
    pub rejected: Rejections,
    /// Accepted float samples the request sent (created-timestamp zeros not counted).
    pub samples_written: usize,
    /// Accepted native histogram samples the request sent (created-timestamp zeros not counted).
    pub histograms_written: usize,
    /// Accepted exemplars.
    pub exemplars_written: usize,
}

/// The decode table's entry for [`crate::record::Kind::PromRemoteWriteV2`].
pub(crate) fn decode_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    _: &dyn KnownSeries,
) -> crate::error::Result<Batch<'a>> {
    let d = decode(body.bytes()?, ctx, &opts.limits)
        .map_err(|e| Error::InvalidInput(format!("body is not a valid io.prometheus.write.v2.Request: {e}")))?;
    let accepted = Accepted {
        series: d.batch.series.len(),
        samples: d.samples_written,
        histograms: d.histograms_written,
        exemplars: d.exemplars_written,
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

/// Decodes a decompressed `io.prometheus.write.v2.Request`. `Err` only when the bytes are not
/// valid protobuf; everything else is a per-series (or per-item) rejection with a reason.
pub fn decode<'a>(buf: &'a [u8], ctx: &'a ClusterContext, limits: &Limits) -> Result<DecodedV2<'a>, WireError> {
    // First pass: the symbol table, which protobuf allows anywhere in the message.
    let mut symbols = Vec::new();
    let mut v1_series = 0;
    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field()? {
        match (f, v) {
            (field::REQUEST_SYMBOLS, Value::Bytes(s)) => symbols.push(s),
            (v1_field::WRITE_REQUEST_TIMESERIES, Value::Bytes(_)) => v1_series += 1,
            _ => {}
        }
    }
    let mut d = Decoder {
        symbol_problem: symbols.first().filter(|s| !s.is_empty()).map(|s| {
            format!(
                "the symbol table must start with the empty string, not {:?}",
                String::from_utf8_lossy(s)
            )
        }),
        symbols,
        ctx,
        limits,
        refs: Vec::new(),
        metadata: MetadataSet::default(),
        out: DecodedV2::default(),
    };
    d.out.batch.series.reserve(buf.len() / 128);
    d.out.batch.labels.reserve(buf.len() / 16);
    d.out.batch.samples.reserve(buf.len() / 128);

    let mut req = Reader::new(buf);
    while let Some((f, v)) = req.next_field()? {
        if let (field::REQUEST_TIMESERIES, Value::Bytes(ts)) = (f, v) {
            d.series(ts)?;
        }
    }
    let mut out = d.out;
    out.metadata = d.metadata.into_vec();
    if v1_series > 0 {
        out.rejected.series += v1_series;
        out.rejected.add(format!(
            "{v1_series} series are remote-write 1.0 (prometheus.WriteRequest) but the request was sent as 2.0: \
             send Content-Type: application/x-protobuf (or ;proto=prometheus.WriteRequest)"
        ));
    }
    Ok(out)
}

struct Decoder<'a, 'l> {
    symbols: Vec<&'a [u8]>,
    /// Why no series of this request can be trusted, if so.
    symbol_problem: Option<String>,
    ctx: &'a ClusterContext,
    limits: &'l Limits,
    /// The current series' label refs (reused, so steady state allocates nothing per series).
    refs: Vec<u64>,
    metadata: MetadataSet<'a>,
    out: DecodedV2<'a>,
}

/// A series' `Metadata` as refs, merged over repeated occurrences as protobuf merges messages.
#[derive(Debug, Default)]
struct MetadataRefs {
    kind: u64,
    help: u64,
    unit: u64,
}

fn symbol<'a>(symbols: &[&'a [u8]], r: u64) -> Option<&'a [u8]> {
    usize::try_from(r).ok().and_then(|i| symbols.get(i)).copied()
}

/// A `repeated uint32` of refs, packed (as proto3 writes it) or not. Values above `u32::MAX`
/// are kept as they are and fail the range check.
fn read_refs(v: Value<'_>, out: &mut Vec<u64>) -> Result<(), WireError> {
    match v {
        Value::Bytes(b) => {
            for r in PackedVarints::new(b) {
                out.push(r?);
            }
        }
        Value::Varint(r) => out.push(r),
        _ => {}
    }
    Ok(())
}

fn ref_out_of_range(r: u64, symbols: usize) -> String {
    format!("label ref {r} is out of range of the {symbols} symbols")
}

impl<'a> Decoder<'a, '_> {
    fn series(&mut self, buf: &'a [u8]) -> Result<(), WireError> {
        let Self {
            symbols,
            symbol_problem,
            ctx,
            limits,
            refs,
            metadata,
            out,
        } = self;
        let batch = &mut out.batch;
        let label_start = batch.labels.len();
        let sample_start = batch.samples.len();
        refs.clear();
        let mut signals = SeriesSignals::default();
        let mut meta = MetadataRefs::default();
        let mut created = 0i64;

        let mut r = Reader::new(buf);
        while let Some((f, v)) = r.next_field()? {
            match (f, v) {
                (field::TIMESERIES_LABELS_REFS, v) => read_refs(v, refs)?,
                (field::TIMESERIES_SAMPLES, Value::Bytes(s)) => batch.samples.push(decode_sample(s)?),
                (field::TIMESERIES_HISTOGRAMS, Value::Bytes(h)) => signals.histograms.push(decode_histogram(h)?),
                (field::TIMESERIES_EXEMPLARS, Value::Bytes(e)) => signals.exemplars.push(decode_exemplar(e, symbols)?),
                (field::TIMESERIES_METADATA, Value::Bytes(m)) => decode_metadata(m, &mut meta)?,
                (field::TIMESERIES_CREATED_TIMESTAMP, Value::Varint(t)) => created = t as i64,
                _ => {}
            }
        }

        // Labels first (their problems name the series best), then the samples' timestamps.
        let mut check = SeriesCheck::new(label_start);
        if let Some(p) = symbol_problem {
            check.fail(|| p.clone());
        } else if refs.len() % 2 == 1 {
            check.fail(|| format!("{} label refs, not (name, value) pairs", refs.len()));
        } else {
            for pair in refs.chunks_exact(2) {
                match (symbol(symbols, pair[0]), symbol(symbols, pair[1])) {
                    (Some(name), Some(value)) => check.label(name, value, limits, &mut batch.labels),
                    _ => {
                        let bad = if symbol(symbols, pair[0]).is_none() {
                            pair[0]
                        } else {
                            pair[1]
                        };
                        check.fail(|| ref_out_of_range(bad, symbols.len()));
                        break;
                    }
                }
            }
        }
        for s in &batch.samples[sample_start..] {
            check.sample(s);
        }
        if let Err(reason) = check.finish(ctx, limits, &mut batch.labels) {
            let samples = batch.samples.len() - sample_start;
            out.rejected
                .reject_series(&reason, &batch.labels[label_start..], samples, &signals);
            batch.labels.truncate(label_start);
            batch.samples.truncate(sample_start);
            return Ok(());
        }

        let labels = &batch.labels[label_start..];
        let get = |name: &str| labels.iter().find(|l| l.0 == name).map_or("", |l| l.1);
        let (metric, cluster) = (get(METRIC_NAME), get(CLUSTER));
        let kind = metric_type(meta.kind);
        let text = |r: u64| symbol(symbols, r).and_then(|s| std::str::from_utf8(s).ok());
        match (text(meta.help), text(meta.unit)) {
            (Some(help), Some(unit)) => {
                if kind != MetricType::Unknown || !help.is_empty() || !unit.is_empty() {
                    metadata.insert(cluster, metric_family(metric, kind), kind, help, unit);
                }
            }
            _ => out.rejected.reject_metadata(format!(
                "series {}: metadata: help_ref {} or unit_ref {} is out of range of the {} symbols or not UTF-8",
                describe(labels),
                meta.help,
                meta.unit,
                symbols.len()
            )),
        }

        let created = (created > 0 && matches!(kind, MetricType::Counter | MetricType::Histogram) && storable(created))
            .then_some(created);
        let samples = batch.samples.len() - sample_start;
        out.samples_written += samples;
        if let Some(ct) = created
            && samples > 0
            && batch.samples[sample_start..].iter().all(|s| ct < s.timestamp)
        {
            batch.samples.insert(sample_start, Sample::new(ct, 0.0));
        }

        if !signals.is_empty() {
            let (mut histograms, exemplars) = signals.accept(labels, &mut out.rejected);
            out.histograms_written += histograms.len();
            out.exemplars_written += exemplars.len();
            if let Some(ct) = created
                && let Some(first) = histograms.iter().min_by_key(|h| h.timestamp)
                && ct < first.timestamp
            {
                let zero = HistogramSample {
                    timestamp: ct,
                    schema: first.schema,
                    zero_threshold: first.zero_threshold,
                    custom_values: first.custom_values.clone(),
                    // A created timestamp is a counter reset by definition.
                    reset_hint: ResetHint::Yes,
                    ..HistogramSample::default()
                };
                histograms.push(zero);
            }
            push_signals(labels, histograms, exemplars, &mut out.histograms, &mut out.exemplars);
        }

        if batch.samples.len() > sample_start {
            batch.series.push(SeriesSpan {
                labels: label_start as u32..batch.labels.len() as u32,
                samples: sample_start as u32..batch.samples.len() as u32,
                raw_key: None,
                known: false,
                placed: None,
            });
        } else {
            batch.labels.truncate(label_start);
        }
        Ok(())
    }
}

/// The metric family a series' metadata describes: its name without the suffixes its type implies.
fn metric_family(metric: &str, kind: MetricType) -> &str {
    let suffixes: &[&str] = match kind {
        MetricType::Histogram => &["_bucket", "_sum", "_count"],
        MetricType::GaugeHistogram => &["_bucket", "_gsum", "_gcount", "_sum", "_count"],
        MetricType::Summary => &["_sum", "_count"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| metric.strip_suffix(s))
        .filter(|family| !family.is_empty())
        .unwrap_or(metric)
}

fn decode_metadata(buf: &[u8], meta: &mut MetadataRefs) -> Result<(), WireError> {
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::METADATA_TYPE, Value::Varint(t)) => meta.kind = t,
            (field::METADATA_HELP_REF, Value::Varint(h)) => meta.help = h,
            (field::METADATA_UNIT_REF, Value::Varint(u)) => meta.unit = u,
            _ => {}
        }
    }
    Ok(())
}

/// A 2.0 `Exemplar` (labels as ref pairs).
fn decode_exemplar(buf: &[u8], symbols: &[&[u8]]) -> Result<Result<Exemplar, String>, WireError> {
    let mut refs = Vec::new();
    let (mut value, mut timestamp) = (0.0, 0);
    let mut r = Reader::new(buf);
    while let Some((f, v)) = r.next_field()? {
        match (f, v) {
            (field::EXEMPLAR_LABELS_REFS, v) => read_refs(v, &mut refs)?,
            (field::EXEMPLAR_VALUE, Value::Fixed64(bits)) => value = f64::from_bits(bits),
            (field::EXEMPLAR_TIMESTAMP, Value::Varint(t)) => timestamp = t as i64,
            _ => {}
        }
    }
    if refs.len() % 2 == 1 {
        return Ok(Err(format!("{} label refs, not (name, value) pairs", refs.len())));
    }
    let mut pairs = Vec::with_capacity(refs.len() / 2);
    for pair in refs.chunks_exact(2) {
        match (symbol(symbols, pair[0]), symbol(symbols, pair[1])) {
            (Some(name), Some(value)) => pairs.push((name, value)),
            (None, _) => return Ok(Err(ref_out_of_range(pair[0], symbols.len()))),
            (_, None) => return Ok(Err(ref_out_of_range(pair[1], symbols.len()))),
        }
    }
    Ok(check_exemplar(&pairs, value, timestamp))
}

#[cfg(test)]
mod tests;
