//! OTLP `AnyValue` → text and JSON: the one place an attribute or body value is rendered.
//!
//! Two consumers need two renderings, each matching the system whose queries we must answer
//! the same way, so they are two [`Dialect`]s of one writer rather than two writers:
//!
//! - [`Dialect::Prometheus`] (metric attributes → label values, [`label_value`]): what
//!   Prometheus's OTLP receiver stores, i.e. `pcommon.Value.AsString`: strings as is, booleans
//!   and integers in their usual text, doubles in the ECMAScript number form (`1e-7`, `1.5e+21`;
//!   non-finite as Go prints them: `NaN`, `+Inf`, `-Inf`), bytes as base64, arrays and maps as
//!   Go's `encoding/json` writes them (map keys sorted, a repeated key keeping its last value),
//!   nesting beyond [`MAX_DEPTH`] written as `null`; an absent value is `""` (no label).
//! - [`Dialect::Loki`] (log bodies, stream labels and structured metadata, [`log_text`],
//!   [`write_log_attributes`]): what Loki's OTLP endpoint stores: a string body as is, bytes as
//!   base64, anything else as JSON where doubles are the shortest round-trip JSON number (NaN and
//!   ±∞ as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`), map keys keep their first position
//!   and their last value, and nesting beyond [`MAX_DEPTH`] refuses the value.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use base64::Engine as _;
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};

use super::metrics::naming::go_float;

/// Deepest nesting of arrays and maps rendered (values come from the network: recursion must
/// stay bounded).
pub(crate) const MAX_DEPTH: usize = 32;

/// Which system's rendering to reproduce (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Prometheus's OTLP translation (`pcommon.Value.AsString`, Go's `encoding/json`).
    Prometheus,
    /// Loki's OTLP endpoint (structured metadata and log lines).
    Loki,
}

/// An attribute value as a metric label value ([`Dialect::Prometheus`]).
pub(crate) fn label_value(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(any_value::Value::StringValueStrindex(_)) => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => js_number(*d),
        Some(any_value::Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(other @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            let mut out = String::new();
            // The Prometheus dialect writes `null` where it is too deep: it never fails.
            let _ = write_json(&mut out, Some(other), 0, Dialect::Prometheus);
            out
        }
    }
}

/// A log body or stream label value as text ([`Dialect::Loki`]): a string as is, no value
/// `""`, bytes as base64, anything else as JSON. `Err` when nested deeper than [`MAX_DEPTH`].
pub(crate) fn log_text(v: &AnyValue) -> Result<String, String> {
    Ok(match &v.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(other) => {
            let mut out = String::new();
            write_json(&mut out, Some(other), 0, Dialect::Loki)?;
            out
        }
    })
}

/// Writes the attributes of `groups` (in order) as one JSON object ([`Dialect::Loki`]): a
/// repeated key keeps its first position and its last value.
pub(crate) fn write_log_attributes(out: &mut String, groups: &[&[KeyValue]]) -> Result<(), String> {
    let n = groups.iter().map(|g| g.len()).sum();
    write_object(out, groups.iter().flat_map(|g| g.iter()), n, 0, Dialect::Loki)
}

/// Writes one value as JSON; `depth` counts the arrays and maps enclosing it.
fn write_json(out: &mut String, v: Option<&any_value::Value>, depth: usize, dialect: Dialect) -> Result<(), String> {
    if dialect == Dialect::Prometheus && depth > MAX_DEPTH {
        out.push_str("null");
        return Ok(());
    }
    let container = |depth: usize| match dialect {
        Dialect::Loki if depth >= MAX_DEPTH => Err(format!("values nested deeper than {MAX_DEPTH} levels")),
        _ => Ok(()),
    };
    match v {
        None | Some(any_value::Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(any_value::Value::StringValue(s)) => write_json_string(out, s),
        Some(any_value::Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(any_value::Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(any_value::Value::DoubleValue(d)) => write_json_f64(out, *d, dialect),
        Some(any_value::Value::BytesValue(b)) => {
            out.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(b, out);
            out.push('"');
        }
        Some(any_value::Value::ArrayValue(a)) => {
            container(depth)?;
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item.value.as_ref(), depth + 1, dialect)?;
            }
            out.push(']');
        }
        Some(any_value::Value::KvlistValue(kvs)) => {
            container(depth)?;
            write_object(out, kvs.values.iter(), kvs.values.len(), depth, dialect)?;
        }
    }
    Ok(())
}

/// Writes `n` key-values as a JSON object enclosed in `depth` containers, keys ordered as the
/// dialect orders them, a repeated key keeping its last value.
fn write_object<'a>(
    out: &mut String,
    kvs: impl Iterator<Item = &'a KeyValue>,
    n: usize,
    depth: usize,
    dialect: Dialect,
) -> Result<(), String> {
    let value = |kv: &'a KeyValue| kv.value.as_ref().and_then(|v| v.value.as_ref());
    let entries: Vec<(&str, Option<&any_value::Value>)> = match dialect {
        // Go's encoding/json sorts map keys.
        Dialect::Prometheus => kvs
            .map(|kv| (kv.key.as_str(), value(kv)))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect(),
        Dialect::Loki => {
            let mut entries: Vec<(&str, Option<&any_value::Value>)> = Vec::with_capacity(n);
            // Linear lookups for the usual handful of keys; a map beyond that keeps this linear.
            let mut index: HashMap<&str, usize> = HashMap::new();
            for kv in kvs {
                let found = if n <= 16 {
                    entries.iter().position(|(k, _)| *k == kv.key)
                } else {
                    index.get(kv.key.as_str()).copied()
                };
                match found {
                    Some(i) => entries[i].1 = value(kv),
                    None => {
                        if n > 16 {
                            index.insert(kv.key.as_str(), entries.len());
                        }
                        entries.push((kv.key.as_str(), value(kv)));
                    }
                }
            }
            entries
        }
    };
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json(out, v, depth + 1, dialect)?;
    }
    out.push('}');
    Ok(())
}

fn write_json_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires; serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string()));
}

/// A double inside JSON, as the dialect writes it (see the module docs).
fn write_json_f64(out: &mut String, d: f64, dialect: Dialect) {
    match dialect {
        Dialect::Prometheus if d.is_finite() => out.push_str(&js_number(d)),
        Dialect::Prometheus => write_json_string(out, &go_float(d)),
        Dialect::Loki if d.is_nan() => out.push_str("\"NaN\""),
        Dialect::Loki if d == f64::INFINITY => out.push_str("\"Infinity\""),
        Dialect::Loki if d == f64::NEG_INFINITY => out.push_str("\"-Infinity\""),
        Dialect::Loki => out.push_str(&serde_json::to_string(&d).unwrap_or_else(|_| "null".to_string())),
    }
}

/// A double attribute value as OpenTelemetry's `pcommon.Value.AsString` writes it (the
/// ECMAScript number form): plain digits for 1e-6 <= |v| < 1e21, else `1e-7` / `1e+21`.
fn js_number(v: f64) -> String {
    if !v.is_finite() {
        return go_float(v);
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        return match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        };
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use tributary_proto::otlp::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    #[test]
    fn attribute_values_render_like_pcommon() {
        let s = |v: any_value::Value| label_value(Some(&AnyValue { value: Some(v) }));
        assert_eq!(s(any_value::Value::StringValue("x".into())), "x");
        assert_eq!(s(any_value::Value::BoolValue(true)), "true");
        assert_eq!(s(any_value::Value::IntValue(-42)), "-42");
        assert_eq!(s(any_value::Value::DoubleValue(1.5)), "1.5");
        assert_eq!(s(any_value::Value::DoubleValue(1e-7)), "1e-7");
        assert_eq!(s(any_value::Value::DoubleValue(1.5e21)), "1.5e+21");
        assert_eq!(s(any_value::Value::DoubleValue(123456789.0)), "123456789");
        assert_eq!(s(any_value::Value::BytesValue(vec![1, 2, 3])), "AQID");
        let arr = any_value::Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(any_value::Value::StringValue("a\"b".into())),
                },
                AnyValue {
                    value: Some(any_value::Value::IntValue(1)),
                },
                AnyValue { value: None },
            ],
        });
        assert_eq!(s(arr), r#"["a\"b",1,null]"#);
        let kv = |k: &str, v: i64| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(v)),
            }),
            key_strindex: 0,
        };
        let map = any_value::Value::KvlistValue(KeyValueList {
            values: vec![kv("z", 1), kv("a", 2)],
        });
        assert_eq!(s(map), r#"{"a":2,"z":1}"#);
        assert_eq!(label_value(None), "");
    }

    #[test]
    fn deeply_nested_values_do_not_overflow_the_stack() {
        let mut v = AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        };
        for _ in 0..2_000 {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let out = label_value(Some(&v));
        assert!(out.starts_with("[[[") && out.contains("null"));
        // Dropping a 2 000-deep prost value recurses too; unwind it iteratively.
        let mut cur = v;
        while let Some(any_value::Value::ArrayValue(mut a)) = cur.value.take() {
            match a.values.pop() {
                Some(next) => cur = next,
                None => break,
            }
        }
    }
}
