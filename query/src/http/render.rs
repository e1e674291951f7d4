//! Prometheus's JSON encoding of query results, written by hand to match its number formats
//! exactly: timestamps as `<seconds>[.<3 digits>]`, values as strings (`"NaN"`, `"+Inf"`, ...).

use std::fmt::Write;

use tributary_storage::types::{Labels, Series, TimestampMs};

use crate::promql::{HistogramSeries, NativeHistogram, Value, VectorSample, format_value};

/// Prometheus sends at most this many warnings, and as many infos, then says how many it left out.
const MAX_ANNOTATIONS: usize = 10;

/// `{"status":"success","data":<data>}`.
pub(crate) fn success(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

/// `{"status":"success","data":<data>,"warnings":[...],"infos":[...]}`, each list only when not
/// empty, in the field order Prometheus writes.
pub(crate) fn success_with(data: &str, warnings: &[String], infos: &[String]) -> String {
    let mut out = format!(r#"{{"status":"success","data":{data}"#);
    annotations(&mut out, "warnings", "warning", warnings);
    annotations(&mut out, "infos", "info", infos);
    out.push('}');
    out
}

/// `{"status":"error","errorType":...,"error":...}`.
pub(crate) fn error(error_type: &str, message: &str) -> String {
    let mut out = String::from(r#"{"status":"error","errorType":"#);
    write_string(&mut out, error_type);
    out.push_str(r#","error":"#);
    write_string(&mut out, message);
    out.push('}');
    out
}

fn annotations(out: &mut String, field: &str, kind: &str, texts: &[String]) {
    if texts.is_empty() {
        return;
    }
    let _ = write!(out, r#","{field}":"#);
    let omitted = (texts.len() > MAX_ANNOTATIONS)
        .then(|| format!("{} more {kind} annotations omitted", texts.len() - MAX_ANNOTATIONS));
    let shown = texts.iter().take(MAX_ANNOTATIONS).map(String::as_str);
    write_list(out, shown.chain(omitted.as_deref()), write_string);
}

/// `[item,item,...]`, each item written by `write`: every JSON array of both APIs.
pub(crate) fn write_list<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
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
        Value::Vector(samples) => write_vector(&mut out, samples),
        Value::Matrix(series) => write_matrix(&mut out, series),
        Value::HistogramMatrix(series) => write_histogram_matrix(&mut out, series),
    }
    out.push('}');
    out
}

/// `[{"metric":{...},"value":[t,"v"]},...]` (Prometheus's and Loki's vector encoding).
pub(crate) fn write_vector(out: &mut String, samples: &[VectorSample]) {
    write_list(out, samples, |out, s| {
        out.push_str(r#"{"metric":"#);
        write_labels(out, &s.labels);
        match &s.histogram {
            Some(h) => {
                out.push_str(r#","histogram":"#);
                write_histogram_point(out, s.timestamp, h);
            }
            None => {
                out.push_str(r#","value":"#);
                write_point(out, s.timestamp, s.value);
            }
        }
        out.push('}');
    });
}

/// A matrix holding native histograms: `values` when a series has floats, `histograms` when it
/// has histograms, as Prometheus's `marshalSeriesJSON`.
fn write_histogram_matrix(out: &mut String, series: &[HistogramSeries]) {
    write_list(out, series, |out, s| {
        out.push_str(r#"{"metric":"#);
        write_labels(out, &s.labels);
        if !s.floats.is_empty() {
            out.push_str(r#","values":"#);
            write_list(out, &s.floats, |out, p| write_point(out, p.timestamp, p.value));
        }
        if !s.histograms.is_empty() {
            out.push_str(r#","histograms":"#);
            write_list(out, &s.histograms, |out, (t, h)| write_histogram_point(out, *t, h));
        }
        out.push('}');
    });
}

/// `[t,{"count":"..","sum":"..","buckets":[[rule,"lower","upper","count"],...]}]`: Prometheus's
/// `MarshalHistogram`, empty buckets left out (and `buckets` when none is left).
fn write_histogram_point(out: &mut String, timestamp: TimestampMs, h: &NativeHistogram) {
    out.push('[');
    write_timestamp(out, timestamp);
    out.push_str(r#",{"count":""#);
    out.push_str(&format_value(h.count));
    out.push_str(r#"","sum":""#);
    out.push_str(&format_value(h.sum));
    out.push('"');
    let buckets: Vec<_> = h.buckets().into_iter().filter(|b| b.count != 0.0).collect();
    if !buckets.is_empty() {
        out.push_str(r#","buckets":"#);
        write_list(out, &buckets, |out, b| {
            let _ = write!(
                out,
                r#"[{},"{}","{}","{}"]"#,
                b.boundary_rule(),
                format_value(b.lower),
                format_value(b.upper),
                format_value(b.count)
            );
        });
    }
    out.push_str("}]");
}

/// `[{"metric":{...},"values":[[t,"v"],...]},...]` (Prometheus's and Loki's matrix encoding).
pub(crate) fn write_matrix(out: &mut String, series: &[Series]) {
    write_list(out, series, |out, s| {
        out.push_str(r#"{"metric":"#);
        write_labels(out, &s.labels);
        out.push_str(r#","values":"#);
        write_list(out, &s.samples, |out, p| write_point(out, p.timestamp, p.value));
        out.push('}');
    });
}

/// A JSON array of label objects (the `/api/v1/series` answer).
pub(crate) fn label_sets(sets: &[Labels]) -> String {
    let mut out = String::new();
    write_list(&mut out, sets, write_labels);
    out
}

/// A JSON array of strings (label names or values).
pub(crate) fn strings(values: &[String]) -> String {
    let mut out = String::new();
    write_list(&mut out, values, |out, v| write_string(out, v));
    out
}

pub(crate) fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, l.name);
        out.push(':');
        write_string(out, l.value);
    }
    out.push('}');
}

pub(crate) fn write_point(out: &mut String, timestamp: TimestampMs, value: f64) {
    out.push('[');
    write_timestamp(out, timestamp);
    out.push_str(",\"");
    out.push_str(&format_value(value));
    out.push_str("\"]");
}

/// Prometheus's `MarshalTimestamp`: whole seconds, then `.` and exactly three digits of
/// milliseconds when they are not zero (`1.5s` is `1.500`).
pub(crate) fn write_timestamp(out: &mut String, timestamp: TimestampMs) {
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

pub(crate) fn write_string(out: &mut String, s: &str) {
    // Label names and values rarely hold a byte JSON escapes: copy those as they are. (A fold
    // without early exit, so the check vectorizes.)
    if !s
        .bytes()
        .fold(false, |esc, b| esc | (b < 0x20) | (b == b'"') | (b == b'\\'))
    {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
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
            histogram: None,
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

    #[test]
    fn annotations_follow_the_data_and_are_capped() {
        assert_eq!(success_with("1", &[], &[]), r#"{"status":"success","data":1}"#);
        let infos: Vec<String> = (0..12).map(|i| format!("i{i}")).collect();
        let body = success_with("1", &["w".into()], &infos);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["warnings"], serde_json::json!(["w"]));
        assert_eq!(v["infos"].as_array().unwrap().len(), 11);
        assert_eq!(v["infos"][10], "2 more info annotations omitted");
        assert!(body.starts_with(r#"{"status":"success","data":1,"warnings":"#));
        assert_eq!(
            error("bad_data", "x \"y\""),
            r#"{"status":"error","errorType":"bad_data","error":"x \"y\""}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in "(?s).{0,12}|[a-z\"\\\\\n\t\u{1}\u{7f}é/<>&]{0,12}") {
            let mut out = String::from("x");
            write_string(&mut out, &s);
            proptest::prop_assert_eq!(&out[1..], serde_json::to_string(&s).unwrap());
        }
    }
}
