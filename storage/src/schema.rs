//! The metrics table's Arrow/Parquet schema (on-disk contract).
//!
//! One row per sample. Rows in a file are sorted by (`cluster`, `metric`, `labels`, `timestamp`)
//! and every file holds one cluster and one UTC hour (see [`crate::layout`]).
//!
//! | column      | Arrow type                         | meaning                                             |
//! |-------------|------------------------------------|-----------------------------------------------------|
//! | `cluster`   | Dictionary(Int32, Utf8)            | the `cluster` label, `""` when absent               |
//! | `metric`    | Dictionary(Int32, Utf8)            | the `__name__` label, `""` when absent              |
//! | `labels`    | Dictionary(Int32, Utf8)            | every other label as a JSON object, keys sorted     |
//! | `series_id` | UInt64                             | [`crate::types::Labels::series_id`] of all labels   |
//! | `timestamp` | Timestamp(Millisecond, "UTC")      | sample time                                         |
//! | `value`     | Float64                            | sample value, exact bits (staleness NaN included)   |
//!
//! `labels` is canonical: `{"k1":"v1","k2":"v2"}` with keys in byte order, no whitespace, JSON
//! string escaping as `serde_json` writes it (only `"`, `\` and control characters escaped;
//! other UTF-8 verbatim), `{}` when there are no other labels. Canonical text makes equal
//! label sets equal strings, so the Parquet dictionary holds each label set once per row group
//! and readers parse each once.
//!
//! Why `cluster` and `metric` are split out of `labels`: they are what queries filter on, and
//! with rows sorted by them, row-group and page statistics on those columns prune precisely.

use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::types::{self, Label, Labels};

pub(crate) const CLUSTER: &str = "cluster";
pub(crate) const METRIC: &str = "metric";
pub(crate) const LABELS: &str = "labels";
pub(crate) const SERIES_ID: &str = "series_id";
pub(crate) const TIMESTAMP: &str = "timestamp";
pub(crate) const VALUE: &str = "value";

/// Column positions in [`metrics_schema`].
pub(crate) mod col {
    pub(crate) const CLUSTER: usize = 0;
    pub(crate) const METRIC: usize = 1;
    pub(crate) const LABELS: usize = 2;
    #[allow(dead_code)] // readers never project it; the list of positions is the contract
    pub(crate) const SERIES_ID: usize = 3;
    pub(crate) const TIMESTAMP: usize = 4;
    pub(crate) const VALUE: usize = 5;
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The timestamp column's type.
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

static METRICS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(CLUSTER, dict_utf8(), false),
        Field::new(METRIC, dict_utf8(), false),
        Field::new(LABELS, dict_utf8(), false),
        Field::new(SERIES_ID, DataType::UInt64, false),
        Field::new(TIMESTAMP, timestamp_type(), false),
        Field::new(VALUE, DataType::Float64, false),
    ]))
});

/// The metrics table's Arrow schema (also embedded in every file's footer).
pub(crate) fn metrics_schema() -> SchemaRef {
    METRICS_SCHEMA.clone()
}

/// Appends the canonical `labels` JSON of `labels` (everything but `__name__` and `cluster`).
pub(crate) fn write_labels_json(labels: &Labels, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for l in labels
        .iter()
        .filter(|l| l.name != types::METRIC_NAME && l.name != types::CLUSTER)
    {
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &l.name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, &l.value);
    }
    out.push(b'}');
}

/// The canonical `labels` JSON of `labels` as a string.
pub(crate) fn labels_json(labels: &Labels) -> String {
    let mut out = Vec::with_capacity(64);
    write_labels_json(labels, &mut out);
    // serde_json writes valid UTF-8 and the braces/commas are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Parses a `labels` JSON object into labels, in the object's key order (sorted in canonical
/// text). Accepts any JSON object of string values; rejects everything else.
pub(crate) fn parse_labels_json(text: &str) -> Result<Vec<Label>, serde_json::Error> {
    struct LabelsVisitor;
    impl<'de> Visitor<'de> for LabelsVisitor {
        type Value = Vec<Label>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object of string label values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Label>, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                out.push(Label { name, value });
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let labels = (&mut de).deserialize_map(LabelsVisitor)?;
    de.end()?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_json_is_canonical_and_excludes_name_and_cluster() {
        let l = Labels::from_pairs(&[("__name__", "up"), ("cluster", "c"), ("b", "x\"y\n"), ("a", "é")]);
        assert_eq!(labels_json(&l), r#"{"a":"é","b":"x\"y\n"}"#);
        assert_eq!(labels_json(&Labels::from_pairs(&[("__name__", "up")])), "{}");
        let parsed = parse_labels_json(&labels_json(&l)).unwrap();
        assert_eq!(parsed, vec![Label::new("a", "é"), Label::new("b", "x\"y\n")]);
        assert!(parse_labels_json(r#"{"a":1}"#).is_err());
        assert!(parse_labels_json(r#"{"a":"b"} x"#).is_err());
    }

    proptest! {
        #[test]
        fn labels_json_round_trips(pairs in proptest::collection::vec(("[a-z_]{1,8}", any::<String>()), 0..8)) {
            let labels = Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect());
            let text = labels_json(&labels);
            let mut back = Labels::new(parse_labels_json(&text).unwrap());
            if let Some(n) = labels.metric_name() { back.set(types::METRIC_NAME, n); }
            if let Some(c) = labels.get(types::CLUSTER) { back.set(types::CLUSTER, c); }
            prop_assert_eq!(back, labels);
        }
    }

    #[test]
    fn column_positions_match_names() {
        let s = metrics_schema();
        for (i, name) in [(col::CLUSTER, CLUSTER), (col::METRIC, METRIC), (col::LABELS, LABELS)]
            .into_iter()
            .chain([
                (col::SERIES_ID, SERIES_ID),
                (col::TIMESTAMP, TIMESTAMP),
                (col::VALUE, VALUE),
            ])
        {
            assert_eq!(s.field(i).name(), name);
            assert!(!s.field(i).is_nullable());
        }
        assert_eq!(s.fields().len(), 6);
    }
}
