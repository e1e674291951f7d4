//! Remote-write's `Histogram` message (the same in 1.0 and 2.0) → a native histogram sample
//! with absolute float counts, validated as Prometheus's TSDB requires (rules in [`super`]).

use tributary_proto::prometheus::field;
use tributary_storage::signals::{BucketSpan, HistogramSample, ResetHint};

use crate::decode::limits::{storable, unstorable};
use crate::decode::wire::{PackedVarints, Reader, Value, WireError, packed_fixed64, zigzag32, zigzag64};

/// Native histogram schema −53: custom bucket bounds (`custom_values`), e.g. a converted classic
/// histogram.
pub(crate) const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// Prometheus's exponential schemas.
pub(crate) const EXPONENTIAL_SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

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
