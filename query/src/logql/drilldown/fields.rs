//! Field detection as Loki's query frontend does it (`pkg/querier/queryrange/detected_fields.go`):
//! each line's structured metadata, the labels the query's own parsers extracted, and the fields
//! of the line parsed as JSON (nested keys joined with `_`, arrays skipped, with their JSON path)
//! or, when it is not a JSON object, as logfmt (empty values dropped). A name that is also a
//! stream label gets `_extracted`, as Loki's parsers name it. Each field's type is the type of
//! its value in the latest line looked at (Loki's `determineType`); its cardinality is the count
//! of distinct values (Loki estimates it with a HyperLogLog sketch, exact at these sizes).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value as Json;
use tributary_storage::signals::LogRecord;

use super::is_error_label;
use crate::error::Result;
use crate::logql::eval::initial_entry;
use crate::logql::pipeline::{Pipeline, parse_logfmt, sanitize_label_name};
use crate::logql::units::parse_go_duration;

/// A line after the query's pipeline, with what field detection reads of it.
#[derive(Debug)]
pub(crate) struct Line {
    stream: BTreeSet<String>,
    metadata: Vec<(String, String)>,
    /// Labels the query's pipeline extracted or changed.
    parsed: Vec<(String, String)>,
    text: String,
}

impl Line {
    /// `rec` through `pipeline`, or `None` when the pipeline drops it.
    pub(crate) fn through(rec: &LogRecord, pipeline: &Pipeline) -> Result<Option<Self>> {
        let (mut entry, stream) = initial_entry(rec);
        let before = entry.labels.clone();
        if !pipeline.process(&mut entry, &stream)? {
            return Ok(None);
        }
        let metadata = before
            .iter()
            .filter(|(k, _)| !stream.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parsed = entry
            .labels
            .into_iter()
            .filter(|(k, v)| !is_error_label(k) && before.get(k) != Some(v))
            .collect();
        Ok(Some(Self {
            stream,
            metadata,
            parsed,
            text: entry.line,
        }))
    }
}

/// One detected field, Loki's `DetectedField`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DetectedField {
    pub(crate) label: String,
    /// `string`, `int`, `float`, `boolean`, `duration` or `bytes`.
    pub(crate) kind: &'static str,
    pub(crate) cardinality: usize,
    /// `None` for structured metadata (Loki answers `null`).
    pub(crate) parsers: Option<Vec<&'static str>>,
    pub(crate) json_path: Option<Vec<String>>,
}

struct Acc {
    values: BTreeSet<String>,
    kind: &'static str,
    parsers: Vec<&'static str>,
    json_path: Option<Vec<String>>,
}

/// The fields of `lines`, at most `limit` (the first found), sorted by name.
pub(crate) fn detect_fields(lines: &[Line], limit: usize) -> Vec<DetectedField> {
    let mut fields: BTreeMap<String, Acc> = BTreeMap::new();
    let slot = |fields: &mut BTreeMap<String, Acc>, name: &str, parsers: &[&'static str]| {
        if !fields.contains_key(name) && fields.len() < limit {
            let acc = Acc {
                values: BTreeSet::new(),
                kind: "string",
                parsers: parsers.to_vec(),
                json_path: None,
            };
            fields.insert(name.to_string(), acc);
        }
        fields.contains_key(name)
    };
    for line in lines {
        for (name, value) in &line.metadata {
            if slot(&mut fields, name, &[]) {
                let acc = fields.get_mut(name).expect("slot ensured it");
                acc.kind = determine_type(value);
                acc.values.insert(value.clone());
            }
        }
        let parsed = parse_line(line);
        for (name, values) in &parsed.fields {
            if !slot(&mut fields, name, &parsed.parsers) {
                continue;
            }
            let acc = fields.get_mut(name).expect("slot ensured it");
            for p in &parsed.parsers {
                if !acc.parsers.contains(p) {
                    acc.parsers.push(p);
                }
            }
            if parsed.parsers.contains(&"json") {
                acc.json_path = parsed.paths.get(name).cloned();
            }
            if let Some(first) = values.iter().next() {
                acc.kind = determine_type(first);
            }
            acc.values.extend(values.iter().cloned());
        }
    }
    fields
        .into_iter()
        .map(|(label, acc)| DetectedField {
            label,
            kind: acc.kind,
            cardinality: acc.values.len(),
            parsers: (!acc.parsers.is_empty()).then_some(acc.parsers),
            json_path: acc.json_path,
        })
        .collect()
}

/// The distinct values of field `name` in `lines`, sorted; lines are read until `limit` values
/// are found (Loki's `parseDetectedFieldValues`). Byte sizes are rewritten as Loki rewrites them
/// (`1024 KB` → `1.0MB`), so they can go into a query as they are.
pub(crate) fn field_values(lines: &[Line], name: &str, limit: usize) -> Vec<String> {
    let mut values = BTreeSet::new();
    for line in lines {
        if values.len() >= limit {
            break;
        }
        values.extend(line.metadata.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()));
        if let Some(parsed) = parse_line(line).fields.remove(name) {
            values.extend(parsed.into_iter().map(|v| normalize_bytes_value(&v).unwrap_or(v)));
        }
    }
    values.into_iter().collect()
}

struct Parsed {
    fields: BTreeMap<String, BTreeSet<String>>,
    parsers: Vec<&'static str>,
    paths: HashMap<String, Vec<String>>,
}

/// Loki's `parseEntry`: the query's parsed labels plus the line's JSON fields, else its logfmt
/// fields; `parsers` is empty when the line is neither.
fn parse_line(line: &Line) -> Parsed {
    let mut out = Parsed {
        fields: BTreeMap::new(),
        parsers: Vec::new(),
        paths: HashMap::new(),
    };
    for (k, v) in &line.parsed {
        out.fields.entry(k.clone()).or_default().insert(v.clone());
    }
    let named = |name: String| {
        if line.stream.contains(&name) {
            format!("{name}_extracted")
        } else {
            name
        }
    };
    if let Ok(Json::Object(map)) = serde_json::from_str::<Json>(&line.text) {
        out.parsers.push("json");
        let mut flat = Vec::new();
        flatten(&map, "", &mut Vec::new(), &mut flat);
        for (name, path, value) in flat {
            let name = named(name);
            out.paths.entry(name.clone()).or_insert(path);
            out.fields.entry(name).or_default().insert(value);
        }
    } else if let Ok(pairs) = parse_logfmt(&line.text) {
        out.parsers.push("logfmt");
        for (k, v) in pairs {
            let name = sanitize_label_name(&k);
            if !v.is_empty() && !name.is_empty() {
                out.fields.entry(named(name)).or_default().insert(v);
            }
        }
    }
    out.fields.retain(|k, _| !is_error_label(k));
    out
}

/// Nested keys joined with `_` (sanitized), with the original keys as the path; arrays and
/// nulls skipped, as Loki's JSON parser skips them.
fn flatten(
    map: &serde_json::Map<String, Json>,
    prefix: &str,
    path: &mut Vec<String>,
    out: &mut Vec<(String, Vec<String>, String)>,
) {
    for (k, v) in map {
        let name = if prefix.is_empty() {
            sanitize_label_name(k)
        } else {
            format!("{prefix}_{}", sanitize_label_name(k))
        };
        path.push(k.clone());
        match v {
            Json::Object(inner) => flatten(inner, &name, path, out),
            Json::Array(_) | Json::Null => {}
            Json::String(s) => out.push((name, path.clone(), s.clone())),
            other => out.push((name, path.clone(), other.to_string())),
        }
        path.pop();
    }
}

/// Loki's `determineType`: the first of Go's `ParseInt`, `ParseFloat`, `ParseBool`,
/// `time.ParseDuration` and go-humanize's `ParseBytes` that accepts the value.
pub(super) fn determine_type(value: &str) -> &'static str {
    if value.parse::<i64>().is_ok() {
        "int"
    } else if value.parse::<f64>().is_ok() {
        "float"
    } else if matches!(
        value,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    ) {
        "boolean"
    } else if parse_go_duration(value).is_some() && !value.contains(['d', 'w', 'y']) {
        // `parse_go_duration` also reads Prometheus's `d w y`, which Go's does not.
        "duration"
    } else if humanize_parse_bytes(value).is_some() {
        "bytes"
    } else {
        "string"
    }
}

/// go-humanize's `ParseBytes`: a number (digits, `.`, `,`) then an optional SI or IEC unit.
fn humanize_parse_bytes(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(text.len());
    let number: f64 = text[..digits].replace(',', "").parse().ok()?;
    let unit = text[digits..].trim().to_ascii_lowercase();
    let (si, iec) = (1000f64, 1024f64);
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => si,
        "ki" | "kib" => iec,
        "m" | "mb" => si.powi(2),
        "mi" | "mib" => iec.powi(2),
        "g" | "gb" => si.powi(3),
        "gi" | "gib" => iec.powi(3),
        "t" | "tb" => si.powi(4),
        "ti" | "tib" => iec.powi(4),
        "p" | "pb" => si.powi(5),
        "pi" | "pib" => iec.powi(5),
        "e" | "eb" => si.powi(6),
        "ei" | "eib" => iec.powi(6),
        _ => return None,
    };
    let bytes = number * mult;
    (bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// A byte size with a unit rewritten as Loki's values endpoint does: go-humanize's `Bytes`
/// (SI units, one decimal under 10) without its space. `None` for anything else.
pub(crate) fn normalize_bytes_value(value: &str) -> Option<String> {
    const UNITS: [&str; 25] = [
        "b", "kib", "kb", "mib", "mb", "gib", "gb", "tib", "tb", "pib", "pb", "eib", "eb", "ki", "k", "mi", "m", "gi",
        "g", "ti", "t", "pi", "p", "ei", "e",
    ];
    let bytes = humanize_parse_bytes(value)?;
    let lower = value.to_ascii_lowercase();
    if !UNITS.iter().any(|u| lower.ends_with(u)) {
        return None;
    }
    if bytes < 10 {
        return Some(format!("{bytes}B"));
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let e = ((bytes as f64).ln() / 1000f64.ln()).floor();
    let val = ((bytes as f64) / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    let suffix = SIZES[e as usize];
    Some(if val < 10.0 {
        format!("{val:.1}{suffix}")
    } else {
        format!("{val:.0}{suffix}")
    })
}

/// Loki's `shouldRejectLabel`: no values, or every value an id (a number or a UUID), unless
/// there are at most two values and all are `0` or `1` (a flag).
pub(super) fn rejects_label(values: &BTreeSet<&str>) -> bool {
    if values.is_empty() {
        return true;
    }
    if values.len() <= 2 && values.iter().all(|v| *v == "0" || *v == "1") {
        return false;
    }
    values.iter().all(|v| v.parse::<f64>().is_ok() || is_uuid(v))
}

/// google/uuid's `Parse`: 36 characters with dashes, optionally `urn:uuid:` before or in braces,
/// or 32 hex digits.
fn is_uuid(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    let body = if let Some(rest) = lower.strip_prefix("urn:uuid:") {
        rest
    } else if lower.len() == 38 && lower.starts_with('{') && lower.ends_with('}') {
        &lower[1..37]
    } else {
        &lower
    };
    match body.len() {
        32 => body.bytes().all(|b| b.is_ascii_hexdigit()),
        36 => body.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detected_field_types_follow_lokis_determine_type() {
        // The branches of Loki's `determineType` (pkg/querier/queryrange/detected_fields.go).
        for (value, want) in [
            ("42", "int"),
            ("-7", "int"),
            ("1.5", "float"),
            ("1e3", "float"),
            ("true", "boolean"),
            ("F", "boolean"),
            ("250ms", "duration"),
            ("1h30m", "duration"),
            ("2KB", "bytes"),
            ("1.5 MiB", "bytes"),
            ("5d", "string"),
            ("hello", "string"),
        ] {
            assert_eq!(determine_type(value), want, "{value}");
        }
    }

    #[test]
    fn detected_field_byte_values_are_rewritten_like_humanize() {
        assert_eq!(normalize_bytes_value("1024 KB").as_deref(), Some("1.0MB"));
        assert_eq!(normalize_bytes_value("2kb").as_deref(), Some("2.0kB"));
        assert_eq!(normalize_bytes_value("15000b").as_deref(), Some("15kB"));
        assert_eq!(normalize_bytes_value("5b").as_deref(), Some("5B"));
        assert_eq!(normalize_bytes_value("123"), None, "no unit");
        assert_eq!(normalize_bytes_value("fast"), None);
    }

    #[test]
    fn detected_labels_reject_id_like_values_as_loki_does() {
        let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<&str>>();
        assert!(rejects_label(&set(&[])));
        assert!(!rejects_label(&set(&["0", "1"])), "a flag");
        assert!(rejects_label(&set(&["12", "13", "14"])), "numbers");
        assert!(rejects_label(&set(&["3", "7"])), "two numbers, not a flag");
        assert!(rejects_label(&set(&[
            "6f1c1d4e-9a0b-4c4e-8d7e-2b1f0a9c3d5e",
            "{6F1C1D4E-9A0B-4C4E-8D7E-2B1F0A9C3D5F}"
        ])));
        assert!(!rejects_label(&set(&["checkout", "12"])));
    }
}
