//! The logs table's Arrow schema, column names and the `labels` text (on-disk contract; the
//! table is described in [`crate::table::logs`]).

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::types::{self, Label, Labels};

pub(crate) const CLUSTER: &str = "cluster";
pub(crate) const SERVICE_NAME: &str = "service_name";
pub(crate) const LABELS: &str = "labels";
pub(crate) const STREAM_ID: &str = "stream_id";
pub(crate) const TIMESTAMP: &str = "timestamp";
pub(crate) const OBSERVED_TIMESTAMP: &str = "observed_timestamp";
pub(crate) const SEVERITY_NUMBER: &str = "severity_number";
pub(crate) const SEVERITY_TEXT: &str = "severity_text";
pub(crate) const BODY: &str = "body";
pub(crate) const TRACE_ID: &str = "trace_id";
pub(crate) const SPAN_ID: &str = "span_id";
pub(crate) const FLAGS: &str = "flags";
pub(crate) const ATTRIBUTES: &str = "attributes";
pub(crate) const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
pub(crate) const SCOPE_NAME: &str = "scope_name";
pub(crate) const SCOPE_VERSION: &str = "scope_version";
pub(crate) const EVENT_NAME: &str = "event_name";

/// The stream label promoted to the `service_name` column (Loki's OTLP name for `service.name`).
pub(crate) const SERVICE_NAME_LABEL: &str = "service_name";

/// Column positions in [`logs_schema`].
pub(crate) mod col {
    pub(crate) const CLUSTER: usize = 0;
    #[allow(dead_code)] // never projected by position; the list of positions is the contract
    pub(crate) const SERVICE_NAME: usize = 1;
    pub(crate) const LABELS: usize = 2;
    #[allow(dead_code)] // never projected by position; the list of positions is the contract
    pub(crate) const STREAM_ID: usize = 3;
    pub(crate) const TIMESTAMP: usize = 4;
    pub(crate) const OBSERVED_TIMESTAMP: usize = 5;
    pub(crate) const SEVERITY_NUMBER: usize = 6;
    pub(crate) const SEVERITY_TEXT: usize = 7;
    pub(crate) const BODY: usize = 8;
    pub(crate) const TRACE_ID: usize = 9;
    pub(crate) const SPAN_ID: usize = 10;
    pub(crate) const FLAGS: usize = 11;
    pub(crate) const ATTRIBUTES: usize = 12;
    pub(crate) const RESOURCE_ATTRIBUTES: usize = 13;
    pub(crate) const SCOPE_NAME: usize = 14;
    pub(crate) const SCOPE_VERSION: usize = 15;
    pub(crate) const EVENT_NAME: usize = 16;
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The type of `timestamp` and `observed_timestamp`: nanoseconds since the epoch, UTC.
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

static LOGS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new(CLUSTER, dict_utf8(), false),
        Field::new(SERVICE_NAME, dict_utf8(), false),
        Field::new(LABELS, dict_utf8(), false),
        Field::new(STREAM_ID, DataType::UInt64, false),
        Field::new(TIMESTAMP, timestamp_type(), false),
        Field::new(OBSERVED_TIMESTAMP, timestamp_type(), true),
        Field::new(SEVERITY_NUMBER, DataType::Int32, false),
        Field::new(SEVERITY_TEXT, dict_utf8(), false),
        Field::new(BODY, DataType::Utf8, false),
        Field::new(TRACE_ID, DataType::Utf8, true),
        Field::new(SPAN_ID, DataType::Utf8, true),
        Field::new(FLAGS, DataType::UInt32, false),
        Field::new(ATTRIBUTES, DataType::Utf8, false),
        Field::new(RESOURCE_ATTRIBUTES, DataType::Utf8, false),
        Field::new(SCOPE_NAME, dict_utf8(), false),
        Field::new(SCOPE_VERSION, dict_utf8(), false),
        Field::new(EVENT_NAME, dict_utf8(), false),
    ]))
});

/// The logs table's Arrow schema (also embedded in every file's footer).
pub(crate) fn logs_schema() -> SchemaRef {
    LOGS_SCHEMA.clone()
}

/// The canonical `labels` text of a stream: every stream label but `cluster` (which has its own
/// column) as a JSON object, keys in byte order, `serde_json` string escaping, no whitespace.
/// Unlike the metrics table nothing else is left out: streams have no `__name__`, and a stream
/// label of that name must still survive a round trip.
pub(crate) fn stream_labels_json(labels: &Labels) -> String {
    let mut out = Vec::with_capacity(16 + labels.len() * 24);
    out.push(b'{');
    let mut first = true;
    for l in labels.iter().filter(|l| l.name != types::CLUSTER) {
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &l.name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, &l.value);
    }
    out.push(b'}');
    // serde_json writes valid UTF-8 and the punctuation is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// The stream labels of a row: its `labels` text plus its `cluster` (`""` = none).
pub(crate) fn parse_stream_labels(labels_json: &str, cluster: &str) -> Result<Labels, serde_json::Error> {
    let mut labels: Vec<Label> = crate::schema::parse_labels_json(labels_json)?;
    labels.retain(|l| l.name != types::CLUSTER);
    labels.push(Label::new(types::CLUSTER, cluster));
    Ok(Labels::new(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn labels_text_keeps_everything_but_cluster() {
        let l = Labels::from_pairs(&[("cluster", "c"), ("__name__", "n"), ("service_name", "é\"x")]);
        let text = stream_labels_json(&l);
        assert_eq!(text, r#"{"__name__":"n","service_name":"é\"x"}"#);
        assert_eq!(parse_stream_labels(&text, "c").unwrap(), l);
        assert_eq!(stream_labels_json(&Labels::default()), "{}");
        assert_eq!(parse_stream_labels("{}", "").unwrap(), Labels::default());
    }

    #[test]
    fn column_positions_match_names() {
        let s = logs_schema();
        let names = [
            (col::CLUSTER, CLUSTER),
            (col::SERVICE_NAME, SERVICE_NAME),
            (col::LABELS, LABELS),
            (col::STREAM_ID, STREAM_ID),
            (col::TIMESTAMP, TIMESTAMP),
            (col::OBSERVED_TIMESTAMP, OBSERVED_TIMESTAMP),
            (col::SEVERITY_NUMBER, SEVERITY_NUMBER),
            (col::SEVERITY_TEXT, SEVERITY_TEXT),
            (col::BODY, BODY),
            (col::TRACE_ID, TRACE_ID),
            (col::SPAN_ID, SPAN_ID),
            (col::FLAGS, FLAGS),
            (col::ATTRIBUTES, ATTRIBUTES),
            (col::RESOURCE_ATTRIBUTES, RESOURCE_ATTRIBUTES),
            (col::SCOPE_NAME, SCOPE_NAME),
            (col::SCOPE_VERSION, SCOPE_VERSION),
            (col::EVENT_NAME, EVENT_NAME),
        ];
        for (i, name) in names {
            assert_eq!(s.field(i).name(), name);
        }
        assert_eq!(s.fields().len(), names.len());
        let nullable: Vec<&str> = s
            .fields()
            .iter()
            .filter(|f| f.is_nullable())
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(nullable, [OBSERVED_TIMESTAMP, TRACE_ID, SPAN_ID]);
    }

    proptest! {
        #[test]
        fn labels_text_round_trips(pairs in proptest::collection::vec(("[a-z_]{1,8}", any::<String>()), 0..8)) {
            let labels = Labels::new(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect());
            let cluster = labels.get(types::CLUSTER).unwrap_or("").to_string();
            prop_assert_eq!(parse_stream_labels(&stream_labels_json(&labels), &cluster).unwrap(), labels);
        }
    }
}
