//! The labels Loki 3's distributor derives for every log record, whatever protocol brought it:
//! the `service_name` stream label and the `detected_level` structured-metadata field. Applied
//! once, by the decode table (`decode::decode`) to every decoded batch, live or replayed, with
//! the [`Translation`] the write was acknowledged with (the WAL record stores it).
//!
//! # `service_name` (`ingest.logs.discover_service_name`, Loki's `discover_service_name`)
//! A record whose stream has no `service_name` label gets one: the value of the first label of
//! the configured list the stream carries, else `unknown_service`. An empty list turns this off.
//! OTLP streams already carry `service_name` from the `service.name` resource attribute; a
//! resource without one goes through the same rule.
//!
//! # `detected_level` (`ingest.logs.discover_log_levels`, Loki's `discover_log_levels`)
//! Added to the record's structured metadata (its `attributes` object, last), never to its
//! stream labels, unless the metadata already has a `detected_level`. The first source that
//! answers wins:
//! 1. a stream label named in [`LEVEL_FIELDS`] (in that list's order);
//! 2. a structured-metadata field named in [`LEVEL_FIELDS`] with a string value, then the OTLP
//!    `severity_text`;
//! 3. the OTLP `severity_number` (1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error,
//!    21–24 fatal);
//! 4. the line: a JSON object's first [`LEVEL_FIELDS`] key with a string value (searched two
//!    objects deep), or a logfmt line's [`LEVEL_FIELDS`] key (matched case-insensitively, the
//!    earliest in the list winning); when that gives no known level, or the line is neither,
//!    common words in the line (`info`, `[ERROR]`, `warn:`, `WARNING`, `debug`, ...), else
//!    `unknown`.
//!
//! Values from sources 1, 2 and 4 are normalised as Loki does: `trace`/`trc` → `trace`,
//! `debug`/`dbg` → `debug`, `info`/`inf`/`information` → `info`, `warn`/`wrn`/`warning` →
//! `warn`, `error`/`err` → `error`, `critical`, `fatal` (any case); a label or metadata value
//! outside those is kept as sent.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::Labels;

use super::Translation;

/// The stream label Loki 3 derives.
pub const SERVICE_NAME: &str = "service_name";
/// Its value when no configured label names the service.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// The structured-metadata field Loki 3 derives.
pub const DETECTED_LEVEL: &str = "detected_level";

/// Names a level is read from, in priority order (Loki's default `log_level_fields`).
pub const LEVEL_FIELDS: [&str; 14] = [
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// How deep a JSON line is searched for a level key (Loki's `log_level_from_json_max_depth`).
const JSON_MAX_DEPTH: usize = 2;

/// Derives `service_name` and `detected_level` for `records`, as `t` asks.
pub(crate) fn discover(records: &mut [LogRecord], t: &Translation) {
    if !t.discover_service_name.is_empty() {
        // Records of one stream are adjacent and share their labels: derive once per run, and
        // the run's records share the derived copy.
        let mut last: Option<(Arc<Labels>, Arc<Labels>)> = None;
        for r in records.iter_mut() {
            if r.labels.get(SERVICE_NAME).is_some() {
                continue;
            }
            match &last {
                Some((from, to)) if Arc::ptr_eq(from, &r.labels) || *from == r.labels => r.labels = to.clone(),
                _ => {
                    let mut to = Labels::clone(&r.labels);
                    to.set(SERVICE_NAME, service_name(&r.labels, &t.discover_service_name));
                    let to = Arc::new(to);
                    last = Some((std::mem::replace(&mut r.labels, to.clone()), to));
                }
            }
        }
    }
    if t.discover_log_levels {
        for r in records.iter_mut() {
            if let Some(level) = detected_level(r).map(Cow::into_owned) {
                add_metadata(&mut r.attributes, DETECTED_LEVEL, &level);
            }
        }
    }
}

/// The service a stream without a `service_name` label belongs to: the first of `from` it has.
pub fn service_name<'a>(labels: &'a Labels, from: &[String]) -> &'a str {
    from.iter()
        .find_map(|name| labels.get(name).filter(|v| !v.is_empty()))
        .unwrap_or(UNKNOWN_SERVICE)
}

/// The record's `detected_level`, or `None` when its structured metadata already has one.
pub fn detected_level(r: &LogRecord) -> Option<Cow<'_, str>> {
    let metadata = scan_object(&r.attributes, 1);
    if metadata.has_detected_level {
        return None;
    }
    if let Some(v) = LEVEL_FIELDS.iter().find_map(|f| r.labels.get(f)) {
        return Some(normalise(v));
    }
    if let Some((_, v)) = metadata.levels.into_iter().min_by_key(|(i, _)| *i) {
        return Some(Cow::Owned(normalise(&v).into_owned()));
    }
    if !r.severity_text.is_empty() {
        return Some(normalise(&r.severity_text));
    }
    if let Some(level) = severity_number_level(r.severity_number) {
        return Some(Cow::Borrowed(level));
    }
    Some(Cow::Borrowed(line_level(&r.body)))
}

/// A known spelling of a level as Loki's name for it; anything else as it is.
fn normalise(v: &str) -> Cow<'_, str> {
    known_level(v).map_or(Cow::Borrowed(v), Cow::Borrowed)
}

fn known_level(v: &str) -> Option<&'static str> {
    let is = |words: &[&str]| words.iter().any(|w| v.eq_ignore_ascii_case(w));
    Some(if is(&["trace", "trc"]) {
        "trace"
    } else if is(&["debug", "dbg"]) {
        "debug"
    } else if is(&["info", "inf", "information"]) {
        "info"
    } else if is(&["warn", "wrn", "warning"]) {
        "warn"
    } else if is(&["error", "err"]) {
        "error"
    } else if is(&["critical"]) {
        "critical"
    } else if is(&["fatal"]) {
        "fatal"
    } else {
        return None;
    })
}

/// OTLP `SeverityNumber` ranges; 0 (unspecified) and out-of-range numbers say nothing.
fn severity_number_level(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// The level a line states: a JSON or logfmt level field, else common words, else `unknown`.
pub fn line_level(line: &str) -> &'static str {
    let trimmed = line.trim();
    let field = if trimmed.starts_with('{') && trimmed.ends_with('}') {
        scan_object(trimmed, JSON_MAX_DEPTH)
            .levels
            .into_iter()
            .next()
            .map(|(_, v)| v)
    } else if line.contains('=') {
        logfmt_level(line).map(str::to_string)
    } else {
        None
    };
    field
        .as_deref()
        .and_then(known_level)
        .unwrap_or_else(|| word_level(line))
}

/// Loki's last resort: level words anywhere in the line, in this order of precedence.
fn word_level(line: &str) -> &'static str {
    let any = |words: &[&str]| words.iter().any(|w| line.contains(w));
    if any(&["info", "INFO"]) {
        "info"
    } else if any(&["err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]"]) {
        "error"
    } else if any(&["warn:", "WARN:", "[warn]", "[WARN]", "warning", "WARNING"]) {
        "warn"
    } else if any(&["critical:", "CRITICAL:", "[critical]", "[CRITICAL]"]) {
        "critical"
    } else if any(&["debug", "DEBUG"]) {
        "debug"
    } else {
        "unknown"
    }
}

/// The value of a logfmt line's level key: the one earliest in [`LEVEL_FIELDS`], keys compared
/// case-insensitively. Scanning stops at text that is not logfmt.
fn logfmt_level(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let mut pos = 0;
    let mut best: Option<(usize, &str)> = None;
    loop {
        while pos < b.len() && b[pos] <= b' ' {
            pos += 1;
        }
        if pos == b.len() {
            break;
        }
        let start = pos;
        while pos < b.len() && b[pos] > b' ' && b[pos] != b'=' && b[pos] != b'"' {
            pos += 1;
        }
        if pos == start {
            break;
        }
        let key = &line[start..pos];
        let mut value = "";
        if b.get(pos) == Some(&b'=') {
            pos += 1;
            if b.get(pos) == Some(&b'"') {
                // A quoted value: level words need no unescaping, so the raw text is enough.
                let from = pos + 1;
                pos = from;
                while pos < b.len() && b[pos] != b'"' {
                    pos += if b[pos] == b'\\' { 2 } else { 1 };
                }
                value = line.get(from..pos.min(b.len())).unwrap_or("");
                pos += 1;
            } else {
                let from = pos;
                while pos < b.len() && b[pos] > b' ' {
                    pos += 1;
                }
                value = &line[from..pos];
            }
        }
        if let Some(i) = LEVEL_FIELDS.iter().position(|f| key.eq_ignore_ascii_case(f))
            && best.is_none_or(|(j, _)| i < j)
        {
            best = Some((i, value));
            if i == 0 {
                break;
            }
        }
    }
    best.map(|(_, v)| v)
}

/// Appends `"name": value` to a JSON object's text (the decoders always write an object).
fn add_metadata(object: &mut String, name: &str, value: &str) {
    let Some(body) = object.trim_end().strip_suffix('}') else {
        return;
    };
    let empty = body.trim() == "{";
    let mut out = String::with_capacity(object.len() + name.len() + value.len() + 8);
    out.push_str(body);
    if !empty {
        out.push(',');
    }
    // Strings always serialise; the fallback only keeps this free of unwrap.
    out.push_str(&serde_json::to_string(name).unwrap_or_default());
    out.push(':');
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
    out.push('}');
    *object = out;
}

// ---------------------------------------------------------------------------------------------
// Level keys in a JSON object, read without building it.

/// What [`scan_object`] found.
#[derive(Debug, Default)]
struct Scan {
    /// A top-level `detected_level` key.
    has_detected_level: bool,
    /// String values of [`LEVEL_FIELDS`] keys, in document order, with their index in the list.
    levels: Vec<(usize, String)>,
}

/// Scans a JSON object `depth` objects deep for level keys; anything that is not a JSON object
/// finds nothing.
fn scan_object(text: &str, depth: usize) -> Scan {
    let mut scan = Scan::default();
    if text.len() > 2 {
        let mut de = serde_json::Deserializer::from_str(text);
        let _ = Seek {
            depth,
            top: true,
            scan: &mut scan,
        }
        .deserialize(&mut de);
    }
    scan
}

struct Seek<'s> {
    depth: usize,
    top: bool,
    scan: &'s mut Scan,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if self.top && key == DETECTED_LEVEL {
                self.scan.has_detected_level = true;
            }
            let field = LEVEL_FIELDS.iter().position(|f| *f == key);
            map.next_value_seed(Value {
                field,
                depth: self.depth - 1,
                scan: self.scan,
            })?;
        }
        Ok(())
    }
}

/// One value: kept when it is a level key's string, searched when it is an object and depth
/// is left, skipped otherwise.
struct Value<'s> {
    field: Option<usize>,
    depth: usize,
    scan: &'s mut Scan,
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if let Some(i) = self.field {
            self.scan.levels.push((i, v.to_string()));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        if self.depth == 0 {
            let mut map = map;
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        Seek {
            depth: self.depth,
            top: false,
            scan: self.scan,
        }
        .visit_map(map)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
