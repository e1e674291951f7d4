//! Metric metadata: deduplicated per request before anything is allocated, with the wire's
//! metric type numbering (shared by 1.0 and 2.0) and 1.0's `MetricMetadata` message.

use std::collections::BTreeSet;

use tributary_proto::prometheus::field;
use tributary_storage::signals::{MetricMetadata, MetricType};

use super::labels::valid_metric_name;
use crate::decode::wire::{Reader, Value, WireError};

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
pub(super) struct FamilyMetadata<'a> {
    pub(super) family: &'a str,
    pub(super) kind: MetricType,
    pub(super) help: &'a str,
    pub(super) unit: &'a str,
}

/// One `MetricMetadata`, or why it is refused.
pub(super) fn decode_v1_metadata(buf: &[u8]) -> Result<Result<FamilyMetadata<'_>, String>, WireError> {
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
