//! Prometheus remote-write, 1.0 ([`v1`]) and 2.0 ([`v2`]): snappy block bodies → the head's
//! zero-copy [`WriteBatch`] plus native histograms, exemplars and
//! metadata. The two versions share every validation rule, in the rooms below: series labels
//! (`labels`), native histograms (`histogram`), a series' histograms and exemplars together
//! (`signals`), and metric metadata (`metadata`).
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
//! - native histograms (`histogram`): schema −4..=8, or −53 (custom buckets) with finite,
//!   strictly increasing `custom_values` and no zero or negative buckets; spans after the first
//!   have non-negative offsets and cover exactly as many buckets as were sent; no negative
//!   absolute counts; integer histograms' buckets add up to their count (at most the count when
//!   the sum is NaN), as Prometheus's TSDB requires; integer and float fields not mixed; storable
//!   timestamp. Integer bucket deltas become absolute float counts;
//! - exemplars: label names in the classic charset, UTF-8 values, unique names, at most 128
//!   characters of names and values together (Prometheus's limit), storable timestamp (0, "not
//!   set" in 2.0, is kept as is, as Prometheus does).
//!

use tributary_proto::prometheus::field;
use tributary_storage::signals::{ExemplarSeries, HistogramSeries, MetricMetadata};
use tributary_storage::types::Sample;

use super::wire::{Reader, Value, WireError};
use super::{Accepted, Batch, Outcome, Rejections};
use crate::head::SignalBlock;
use crate::head::input::{Input, WriteBatch};

pub(crate) mod histogram;
pub(crate) mod labels;
pub(crate) mod metadata;
pub(crate) mod signals;
pub mod v1;
pub mod v2;

/// What either version decoded, as the decode table's one [`Batch`].
pub(crate) fn into_batch<'a>(
    floats: WriteBatch<'a>,
    histograms: Vec<HistogramSeries>,
    exemplars: Vec<ExemplarSeries>,
    metadata: Vec<MetricMetadata>,
    accepted: Accepted,
    rejected: Rejections,
) -> Batch<'a> {
    Batch {
        input: Input {
            floats,
            signals: SignalBlock {
                histograms,
                exemplars,
                metadata: metadata.into_iter().collect(),
                ..SignalBlock::default()
            },
            ..Input::default()
        },
        outcome: Outcome {
            accepted,
            rejected,
            ..Outcome::default()
        },
    }
}

/// A `Sample` (the same message in 1.0 and 2.0).
pub(crate) fn decode_sample(buf: &[u8]) -> Result<Sample, WireError> {
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
