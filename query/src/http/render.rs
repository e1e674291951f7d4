//! Prometheus's JSON encoding of query results, written by hand to match its number formats
//! exactly: timestamps as `<seconds>[.<3 digits>]`, values as strings (`"NaN"`, `"+Inf"`, ...).

use std::fmt::Write;

use tributary_storage::types::{Labels, TimestampMs};

use crate::promql::{Value, format_value};

/// `{"status":"success","data":<data>}`.
pub(crate) fn success(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

/// The `data` object of a query response: `{"resultType":...,"result":...}`.
pub(crate) fn query_data(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"resultType":""#);
    out.push_str(value.result_type());
    out.push_str(r#"","result":"#);
    match value {
        Value::Scalar { timestamp, value } => write_point(&mut out, *timestamp, *value),
        Value::String { timestamp, value } => {
            out.push('[');
            write_timestamp(&mut out, *timestamp);
            out.push(',');
            write_string(&mut out, value);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(&mut out, s.timestamp, s.value);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, sample) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, sample.timestamp, sample.value);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// A JSON array of label objects (the `/api/v1/series` answer).
pub(crate) fn label_sets(sets: &[Labels]) -> String {
    let mut out = String::from("[");
    for (i, labels) in sets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, labels);
    }
    out.push(']');
    out
}

/// A JSON array of strings (label names or values).
pub(crate) fn strings(values: &[String]) -> String {
    let mut out = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(&mut out, v);
    }
    out.push(']');
    out
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, &l.name);
        out.push(':');
        write_string(out, &l.value);
    }
    out.push('}');
}

fn write_point(out: &mut String, timestamp: TimestampMs, value: f64) {
    out.push('[');
    write_timestamp(out, timestamp);
    out.push_str(",\"");
    out.push_str(&format_value(value));
    out.push_str("\"]");
}

/// Prometheus's `MarshalTimestamp`: whole seconds, then `.` and exactly three digits of
/// milliseconds when they are not zero (`1.5s` is `1.500`).
fn write_timestamp(out: &mut String, timestamp: TimestampMs) {
    let ms = i128::from(timestamp);
    let abs = ms.abs();
    if ms < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    if abs % 1000 != 0 {
        let _ = write!(out, ".{:03}", abs % 1000);
    }
}

fn write_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires; it cannot fail for a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::VectorSample;
    use tributary_storage::types::{Sample, Series};

    #[test]
    fn timestamps_follow_marshal_timestamp() {
        let cases = [
            (1_500, "1.500"),
            (1_000, "1"),
            (1_435_781_451_781, "1435781451.781"),
            (5, "0.005"),
            (-1_500, "-1.500"),
        ];
        for (ms, want) in cases {
            let mut out = String::new();
            write_timestamp(&mut out, ms);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn renders_every_result_type() {
        let labels = Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b")]);
        let vector = Value::Vector(vec![VectorSample {
            labels: labels.clone(),
            timestamp: 1_000,
            value: f64::NAN,
        }]);
        assert_eq!(
            query_data(&vector),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"NaN"]}]}"#
        );
        let matrix = Value::Matrix(vec![Series::new(
            labels,
            vec![Sample::new(1_500, 1.0), Sample::new(3_000, 1e-7)],
        )]);
        assert_eq!(
            query_data(&matrix),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[1.500,"1"],[3,"1e-07"]]}]}"#
        );
        let scalar = Value::Scalar {
            timestamp: 2_000,
            value: f64::NEG_INFINITY,
        };
        assert_eq!(query_data(&scalar), r#"{"resultType":"scalar","result":[2,"-Inf"]}"#);
        let string = Value::String {
            timestamp: 2_000,
            value: "hi".into(),
        };
        assert_eq!(query_data(&string), r#"{"resultType":"string","result":[2,"hi"]}"#);
        assert_eq!(
            query_data(&Value::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
        assert_eq!(success("[]"), r#"{"status":"success","data":[]}"#);
    }
}
