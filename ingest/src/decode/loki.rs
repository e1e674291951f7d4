//! The Loki push API (`POST /loki/api/v1/push`) → [`LogRecord`]s.
//!
//! Two bodies, one set of rules:
//! - protobuf: a `logproto.PushRequest` ([`tributary_proto::loki`]), already snappy-decompressed,
//!   whose streams carry their labels as text (`{app="api", pod="a\"b"}`, parsed by
//!   [`parse_label_set`]);
//! - JSON: `{"streams":[{"stream":{"app":"api"},"values":[["<ns>","line"],["<ns>","line",{"k":"v"}]]}]}`,
//!   the third element of a value being the entry's structured metadata. The timestamp is a string
//!   of integer nanoseconds (a JSON integer is accepted too).
//!
//! A body that does not decode (bad protobuf, malformed JSON, JSON of the wrong shape) is rejected
//! whole with [`Error::InvalidInput`]: nothing in it can be trusted. Otherwise each stream and
//! entry is checked on its own, and a bad one is rejected — counted, with a reason — while the rest
//! is kept, as in the other receivers. Per stream (rejecting all its entries):
//! - labels parse, are UTF-8, have names matching `[a-zA-Z_][a-zA-Z0-9_]*`, are unique and within
//!   the name/value/count limits; an empty value means "no such label" and is dropped;
//! - at least one label remains (Loki: "at least one label pair is required per stream");
//! - the stream has a cluster: see [`crate::cluster`] (the stream's own `cluster` label is its
//!   "own" cluster).
//!
//! Per entry: the timestamp fits in `i64` nanoseconds (years 1677..=2262, well inside the 0000..=9999
//! the storage layout can name), the line is UTF-8 and within `max_line_bytes`, and the structured
//! metadata is UTF-8, has at most `max_labels` pairs and respects the name/value byte limits.
//!
//! Each accepted entry becomes one [`LogRecord`]: the stream's final labels, the line as the body,
//! the structured metadata as a JSON object in `attributes` (sorted by name, the last of a repeated
//! name winning), `severity_text` from a `level` or `detected_level` pair (structured metadata
//! first, then stream labels), and `trace_id`/`span_id` from structured metadata when they are
//! well-formed hex ids. Decoding is pure and deterministic: WAL replay runs it again on the same body.

use std::collections::BTreeMap;

use prost::Message as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tributary_proto::loki as pb;
use tributary_storage::signals::{LogRecord, TimestampNs};
use tributary_storage::types::{Label, Labels};

use crate::cluster::ClusterContext;
use crate::error::{Error, Result};

/// Limits a sender's streams and entries must respect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Longest accepted line, in bytes (Loki's `max_line_size`).
    pub max_line_bytes: usize,
    /// Most labels per stream (after the cluster is stamped), and most structured-metadata pairs
    /// per entry.
    pub max_labels: usize,
    /// Longest label or structured-metadata name, in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label or structured-metadata value, in bytes.
    pub max_label_value_bytes: usize,
}

/// The accepted records of one push, and what was refused.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedPush {
    /// In request order: stream by stream, entry by entry.
    pub records: Vec<LogRecord>,
    /// Entries refused (a refused stream counts all its entries).
    pub rejected: u64,
    /// The first few reasons, for the response body.
    pub reasons: Vec<String>,
}

impl DecodedPush {
    const MAX_REASONS: usize = 10;

    fn reject(&mut self, entries: u64, reason: String) {
        self.rejected += entries;
        if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    /// True when nothing was refused.
    pub fn is_clean(&self) -> bool {
        self.rejected == 0 && self.reasons.is_empty()
    }

    /// One line for a 400 body: the count, then the first reasons.
    pub fn message(&self) -> String {
        let mut m = format!(
            "rejected {} log entries; the rest of the request was stored",
            self.rejected
        );
        for r in &self.reasons {
            m.push_str("; ");
            m.push_str(r);
        }
        if self.reasons.len() == Self::MAX_REASONS {
            m.push_str("; ...");
        }
        m
    }
}

/// Decodes a snappy-decompressed `logproto.PushRequest`. `Err` only when the bytes are not one.
pub fn decode_protobuf(buf: &[u8], ctx: &ClusterContext, opts: &Options) -> Result<DecodedPush> {
    let req = pb::PushRequest::decode(buf)
        .map_err(|e| Error::InvalidInput(format!("body is not a valid logproto.PushRequest: {e}")))?;
    let mut out = DecodedPush::default();
    for stream in req.streams {
        if stream.entries.is_empty() {
            continue;
        }
        let labels = std::str::from_utf8(&stream.labels)
            .map_err(|_| "labels are not valid UTF-8".to_string())
            .and_then(|text| parse_label_set(text).map_err(|e| format!("labels do not parse: {e}")))
            .and_then(|pairs| stream_labels(pairs, ctx, opts));
        let labels = match labels {
            Ok(l) => l,
            Err(reason) => {
                out.reject(
                    stream.entries.len() as u64,
                    format!("stream {}: {reason}", describe_raw(&stream.labels)),
                );
                continue;
            }
        };
        for entry in stream.entries {
            match proto_entry(entry, &labels, opts) {
                Ok(r) => out.records.push(r),
                Err(reason) => out.reject(1, format!("stream {labels}: {reason}")),
            }
        }
    }
    Ok(out)
}

/// Decodes a JSON push body. `Err` only when it is not JSON of the push API's shape.
pub fn decode_json(buf: &[u8], ctx: &ClusterContext, opts: &Options) -> Result<DecodedPush> {
    let req: JsonPush = serde_json::from_slice(buf)
        .map_err(|e| Error::InvalidInput(format!("body is not a valid Loki JSON push request: {e}")))?;
    let mut out = DecodedPush::default();
    for stream in req.streams.unwrap_or_default() {
        let entries = stream.values.unwrap_or_default();
        if entries.is_empty() {
            continue;
        }
        let pairs: Vec<(String, String)> = stream.stream.unwrap_or_default().into_iter().collect();
        let described = describe_pairs(&pairs);
        let labels = match stream_labels(pairs, ctx, opts) {
            Ok(l) => l,
            Err(reason) => {
                out.reject(entries.len() as u64, format!("stream {described}: {reason}"));
                continue;
            }
        };
        for e in entries {
            let result = parse_ns(&e.timestamp).and_then(|ts| record(&labels, ts, e.line, e.metadata, opts));
            match result {
                Ok(r) => out.records.push(r),
                Err(reason) => out.reject(1, format!("stream {labels}: {reason}")),
            }
        }
    }
    Ok(out)
}

/// Validates a stream's labels and stamps its cluster: sorted, unique, non-empty values.
fn stream_labels(mut pairs: Vec<(String, String)>, ctx: &ClusterContext, opts: &Options) -> Result<Labels, String> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate label name {:?}", w[0].0));
    }
    for (name, value) in &pairs {
        check_name(name, "label", opts)?;
        check_value(name, value, "label", opts)?;
    }
    // An empty value means "no such label", as in Prometheus and Loki.
    pairs.retain(|(_, v)| !v.is_empty());
    if pairs.is_empty() {
        return Err("at least one label pair is required per stream".to_string());
    }
    let mut refs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let has_cluster = refs.iter().any(|(n, _)| *n == tributary_storage::types::CLUSTER);
    let stamp = ctx.stamp(&refs).map_err(|reason| {
        if has_cluster {
            return reason;
        }
        "stream has no cluster: add a `cluster` label to the stream (Promtail: clients[].external_labels; \
         Alloy: loki.write's external_labels), send the X-Tributary-Cluster header (or the configured \
         cluster_header), or authenticate with a token mapped to a cluster"
            .to_string()
    })?;
    stamp.apply(&mut refs, 0);
    refs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if refs.len() > opts.max_labels {
        return Err(format!(
            "stream has {} labels, more than the limit of {}",
            refs.len(),
            opts.max_labels
        ));
    }
    Ok(Labels::from_sorted(
        refs.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
    ))
}

fn check_name(name: &str, what: &str, opts: &Options) -> Result<(), String> {
    let b = name.as_bytes();
    let valid = matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if !valid {
        return Err(format!(
            "invalid {what} name {:?} (must match [a-zA-Z_][a-zA-Z0-9_]*)",
            truncate(name, 64)
        ));
    }
    if name.len() > opts.max_label_name_bytes {
        return Err(format!(
            "{what} name of {} bytes exceeds the limit of {}",
            name.len(),
            opts.max_label_name_bytes
        ));
    }
    Ok(())
}

fn check_value(name: &str, value: &str, what: &str, opts: &Options) -> Result<(), String> {
    if value.len() > opts.max_label_value_bytes {
        return Err(format!(
            "value of {what} {:?} is {} bytes, over the limit of {}",
            truncate(name, 64),
            value.len(),
            opts.max_label_value_bytes
        ));
    }
    Ok(())
}

/// Checks one protobuf entry's bytes, then builds its record.
fn proto_entry(e: pb::EntryAdapter, labels: &Labels, opts: &Options) -> Result<LogRecord, String> {
    let ts = proto_timestamp(e.timestamp)?;
    let at = |reason: String| format!("entry at {ts} ns: {reason}");
    // Checked before the UTF-8 scan, which would otherwise walk an oversized line for nothing.
    if e.line.len() > opts.max_line_bytes {
        return Err(at(line_too_long(e.line.len(), opts)));
    }
    let line = String::from_utf8(e.line).map_err(|_| at("line is not valid UTF-8".to_string()))?;
    let mut metadata = Vec::with_capacity(e.structured_metadata.len());
    for p in e.structured_metadata {
        match (String::from_utf8(p.name), String::from_utf8(p.value)) {
            (Ok(n), Ok(v)) => metadata.push((n, v)),
            _ => return Err(at("structured metadata is not valid UTF-8".to_string())),
        }
    }
    record(labels, ts, line, metadata, opts)
}

/// `google.protobuf.Timestamp` → nanoseconds since the epoch; an absent one is the epoch.
fn proto_timestamp(ts: Option<pb::Timestamp>) -> Result<TimestampNs, String> {
    let ts = ts.unwrap_or_default();
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(format!(
            "timestamp nanos {} outside 0..=999999999 (seconds {})",
            ts.nanos, ts.seconds
        ));
    }
    ts.seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(ts.nanos)))
        .ok_or_else(|| {
            format!(
                "timestamp {}s is outside the range of nanosecond timestamps (years 1677 to 2262)",
                ts.seconds
            )
        })
}

/// A JSON timestamp: decimal integer nanoseconds, optionally signed, nothing else.
fn parse_ns(text: &str) -> Result<TimestampNs, String> {
    text.parse::<i64>().map_err(|_| {
        format!(
            "timestamp {:?} is not an integer number of nanoseconds since the epoch within years 1677 to 2262",
            truncate(text, 40)
        )
    })
}

fn line_too_long(len: usize, opts: &Options) -> String {
    format!("line of {len} bytes exceeds the limit of {}", opts.max_line_bytes)
}

/// Checks a decoded entry and builds its record.
fn record(
    labels: &Labels,
    ts: TimestampNs,
    line: String,
    metadata: Vec<(String, String)>,
    opts: &Options,
) -> Result<LogRecord, String> {
    let at = |reason: String| format!("entry at {ts} ns: {reason}");
    if line.len() > opts.max_line_bytes {
        return Err(at(line_too_long(line.len(), opts)));
    }
    if metadata.len() > opts.max_labels {
        return Err(at(format!(
            "{} structured metadata pairs, more than the limit of {}",
            metadata.len(),
            opts.max_labels
        )));
    }
    let mut map: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, v) in &metadata {
        check_name(n, "structured metadata", opts).map_err(at)?;
        check_value(n, v, "structured metadata", opts).map_err(at)?;
        map.insert(n, v);
    }
    let severity_text = ["level", "detected_level"]
        .iter()
        .find_map(|k| map.get(k).copied().filter(|v| !v.is_empty()))
        .or_else(|| ["level", "detected_level"].iter().find_map(|k| labels.get(k)))
        .unwrap_or("")
        .to_string();
    let trace_id = map.get("trace_id").map_or_else(String::new, |v| hex_id(v, 32));
    let span_id = map.get("span_id").map_or_else(String::new, |v| hex_id(v, 16));
    // A map of strings always serialises; the fallback only keeps this free of unwrap.
    let attributes = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string());
    Ok(LogRecord {
        labels: labels.clone(),
        timestamp: ts,
        observed_timestamp: 0,
        severity_number: 0,
        severity_text,
        body: line,
        trace_id,
        span_id,
        flags: 0,
        attributes,
        resource_attributes: "{}".to_string(),
        scope_name: String::new(),
        scope_version: String::new(),
        event_name: String::new(),
    })
}

/// A trace or span id as lower-case hex, or "" unless it is `len` hex digits and not all zero
/// (OpenTelemetry's "invalid id").
fn hex_id(v: &str, len: usize) -> String {
    let ok = v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) && v.bytes().any(|b| b != b'0');
    if ok { v.to_ascii_lowercase() } else { String::new() }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn describe_raw(raw: &[u8]) -> String {
    truncate(&String::from_utf8_lossy(raw), 200)
}

fn describe_pairs(pairs: &[(String, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .take(8)
        .map(|(n, v)| format!("{}={:?}", truncate(n, 64), truncate(v, 64)))
        .collect();
    let more = if pairs.len() > 8 { ", ..." } else { "" };
    format!("{{{}{more}}}", body.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Label sets as text.

/// Parses a label set in Prometheus/Loki syntax, `{a="b", c="d\"e"}`, into its pairs in order.
///
/// Syntax only: names are any run of characters up to `=`, whitespace or punctuation (or a quoted
/// string, as Prometheus 3 writes UTF-8 names); whether they are valid label names, unique and so
/// on is the caller's business. Values are double-quoted with Go's escapes (`\a \b \f \n \r \t \v
/// \\ \"`, `\xHH` and `\OOO` bytes, `\uHHHH`, `\UHHHHHHHH`; Go's `strconv.Quote` writes them) or
/// backquoted raw strings (carriage returns dropped, as `strconv.Unquote` does). A trailing comma
/// is allowed. Linear time, no recursion, never panics.
pub fn parse_label_set(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut p = SetParser { s, pos: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    let mut pairs = Vec::new();
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let name = p.name()?;
        p.skip_ws();
        p.expect(b'=')?;
        p.skip_ws();
        let value = p.string()?;
        pairs.push((name, value));
        p.skip_ws();
        if p.eat(b',') {
            continue;
        }
        p.expect(b'}')?;
        break;
    }
    p.skip_ws();
    if p.pos < s.len() {
        return Err(format!("unexpected text after '}}' at byte {}", p.pos));
    }
    Ok(pairs)
}

struct SetParser<'a> {
    s: &'a str,
    pos: usize,
}

impl SetParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.eat(b) {
            return Ok(());
        }
        Err(match self.peek() {
            None => format!("expected '{}' at the end of the text", b as char),
            Some(_) => {
                let got = self.s.get(self.pos..).and_then(|r| r.chars().next()).unwrap_or(' ');
                format!("expected '{}' at byte {}, found {got:?}", b as char, self.pos)
            }
        })
    }

    fn name(&mut self) -> Result<String, String> {
        if matches!(self.peek(), Some(b'"' | b'`')) {
            return self.string();
        }
        let start = self.pos;
        // Every stop byte is ASCII, so `start..pos` always falls on character boundaries.
        while self
            .peek()
            .is_some_and(|b| !b.is_ascii_whitespace() && !b"=,{}\"`!~".contains(&b))
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(format!("expected a label name at byte {start}"));
        }
        Ok(self.s[start..self.pos].to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'`') => {
                self.pos += 1;
                let rest = &self.s[self.pos..];
                let end = rest
                    .find('`')
                    .ok_or_else(|| format!("unterminated raw string starting at byte {start}"))?;
                self.pos += end + 1;
                Ok(rest[..end].replace('\r', ""))
            }
            _ => Err(format!("expected a quoted string at byte {start}")),
        }
    }

    /// A Go double-quoted string. Escapes may spell raw bytes (`\xHH`, `\OOO`), so the result is
    /// assembled as bytes and must be UTF-8 at the end.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(format!("unterminated string starting at byte {start}"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\n' => return Err(format!("newline in string starting at byte {start}")),
                b'\\' => self.escape(&mut out)?,
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| format!("string starting at byte {start} escapes to invalid UTF-8"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let at = self.pos - 1;
        let Some(c) = self.peek() else {
            return Err(format!("unterminated escape at byte {at}"));
        };
        self.pos += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        match c {
            b'x' => {
                let v = self.digits(2, 16, at)?;
                out.push(v as u8);
            }
            b'0'..=b'7' => {
                self.pos -= 1;
                let v = self.digits(3, 8, at)?;
                let b = u8::try_from(v).map_err(|_| format!("octal escape at byte {at} is over \\377"))?;
                out.push(b);
            }
            b'u' | b'U' => {
                let v = self.digits(if c == b'u' { 4 } else { 8 }, 16, at)?;
                let ch =
                    char::from_u32(v).ok_or_else(|| format!("escape at byte {at} is not a Unicode scalar value"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(format!("unknown escape at byte {at}")),
        }
        Ok(())
    }

    /// Exactly `n` digits in `radix` (at most 8, so the value fits in a `u32`).
    fn digits(&mut self, n: usize, radix: u32, at: usize) -> Result<u32, String> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|b| (b as char).to_digit(radix))
                .ok_or_else(|| format!("malformed escape at byte {at}"))?;
            v = v * radix + d;
            self.pos += 1;
        }
        Ok(v)
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON body.

/// `{"streams": [...]}`. Deserialised from a JSON object only: serde's derive would also take an
/// array of the fields in order, which is not Loki's format.
struct JsonPush {
    streams: Option<Vec<JsonStream>>,
}

/// `{"stream": {"name": "value", ...}, "values": [...]}`. A JSON object keeps the last of repeated
/// label names; the map also sorts them.
struct JsonStream {
    stream: Option<BTreeMap<String, String>>,
    values: Option<Vec<JsonEntry>>,
}

impl<'de> Deserialize<'de> for JsonPush {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(PushVisitor)
    }
}

impl<'de> Deserialize<'de> for JsonStream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(StreamVisitor)
    }
}

struct PushVisitor;

impl<'de> Visitor<'de> for PushVisitor {
    type Value = JsonPush;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"a push request {"streams": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonPush, A::Error> {
        let mut streams = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "streams" if streams.is_some() => return Err(de::Error::duplicate_field("streams")),
                "streams" => streams = Some(map.next_value::<Option<Vec<JsonStream>>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(JsonPush {
            streams: streams.flatten(),
        })
    }
}

struct StreamVisitor;

impl<'de> Visitor<'de> for StreamVisitor {
    type Value = JsonStream;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"a stream {"stream": {<labels>}, "values": [...]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonStream, A::Error> {
        let (mut stream, mut values) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "stream" if stream.is_some() => return Err(de::Error::duplicate_field("stream")),
                "stream" => stream = Some(map.next_value::<Option<BTreeMap<String, String>>>()?),
                "values" if values.is_some() => return Err(de::Error::duplicate_field("values")),
                "values" => values = Some(map.next_value::<Option<Vec<JsonEntry>>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(JsonStream {
            stream: stream.flatten(),
            values: values.flatten(),
        })
    }
}

/// `["<ns>", "line"]` or `["<ns>", "line", {"name": "value", ...}]`.
struct JsonEntry {
    timestamp: String,
    line: String,
    metadata: Vec<(String, String)>,
}

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_seq(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = JsonEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"a log entry ["<unix ns>", "<line>"] or ["<unix ns>", "<line>", {<structured metadata>}]"#)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<JsonEntry, A::Error> {
        let JsonTimestamp(timestamp) = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let line: String = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let metadata: Option<Option<BTreeMap<String, String>>> = seq.next_element()?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok(JsonEntry {
            timestamp,
            line,
            metadata: metadata.flatten().unwrap_or_default().into_iter().collect(),
        })
    }
}

/// The timestamp's text: Loki sends a string; a JSON integer is taken as its decimal text.
struct JsonTimestamp(String);

impl<'de> Deserialize<'de> for JsonTimestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = JsonTimestamp;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a timestamp: a string of integer nanoseconds since the Unix epoch")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<JsonTimestamp, E> {
        Ok(JsonTimestamp(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<JsonTimestamp, E> {
        Ok(JsonTimestamp(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<JsonTimestamp, E> {
        Ok(JsonTimestamp(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<JsonTimestamp, E> {
        Ok(JsonTimestamp(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OPTS: Options = Options {
        max_line_bytes: 64,
        max_labels: 6,
        max_label_name_bytes: 16,
        max_label_value_bytes: 32,
    };

    fn header(c: &str) -> ClusterContext {
        ClusterContext {
            token_cluster: None,
            header_cluster: Some(c.to_string()),
        }
    }

    fn ts(seconds: i64, nanos: i32) -> Option<pb::Timestamp> {
        Some(pb::Timestamp { seconds, nanos })
    }

    fn entry(t: Option<pb::Timestamp>, line: &[u8], metadata: &[(&str, &str)]) -> pb::EntryAdapter {
        pb::EntryAdapter {
            timestamp: t,
            line: line.to_vec(),
            structured_metadata: metadata
                .iter()
                .map(|(n, v)| pb::LabelPairAdapter {
                    name: n.as_bytes().to_vec(),
                    value: v.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    fn stream(labels: &str, entries: Vec<pb::EntryAdapter>) -> pb::StreamAdapter {
        pb::StreamAdapter {
            labels: labels.as_bytes().to_vec(),
            entries,
            hash: 42,
        }
    }

    fn push(streams: Vec<pb::StreamAdapter>) -> Vec<u8> {
        pb::PushRequest { streams }.encode_to_vec()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs)
    }

    #[test]
    fn protobuf_round_trip_with_escapes_metadata_and_clusters() {
        let body = push(vec![
            stream(
                r#"{app="api", msg="say \"hi\"\n\tand\\more \u00e9\xc3\xa9\303\251", cluster="prod-1"}"#,
                vec![
                    entry(ts(1_700_000_000, 5), b"first", &[]),
                    entry(
                        ts(1_700_000_001, 999_999_999),
                        "second \u{1F600}".as_bytes(),
                        &[
                            ("user", "bob"),
                            ("level", "warn"),
                            ("trace_id", "0AF7651916CD43DD8448EB211C80319C"),
                            ("span_id", "b7ad6b7169203331"),
                            ("user", "alice"),
                        ],
                    ),
                ],
            ),
            stream("{app=\"web\",}", vec![entry(ts(-1, 0), b"before the epoch", &[])]),
            stream(
                " { job = `raw\\n\r` , cluster=\"other\" } ",
                vec![entry(None, b"", &[])],
            ),
        ]);
        let d = decode_protobuf(&body, &header("hdr"), &OPTS).unwrap();
        assert!(d.is_clean(), "{}", d.message());
        assert_eq!(d.records.len(), 4);

        let api = labels(&[
            ("app", "api"),
            ("cluster", "prod-1"),
            ("msg", "say \"hi\"\n\tand\\more ééé"),
        ]);
        let r0 = &d.records[0];
        assert_eq!(r0.labels, api);
        assert_eq!(r0.timestamp, 1_700_000_000_000_000_005);
        assert_eq!(r0.body, "first");
        assert_eq!(r0.attributes, "{}");
        assert_eq!(r0.resource_attributes, "{}");
        assert_eq!((r0.severity_text.as_str(), r0.trace_id.as_str()), ("", ""));

        let r1 = &d.records[1];
        assert_eq!(r1.labels, api);
        assert_eq!(r1.timestamp, 1_700_000_001_999_999_999);
        assert_eq!(r1.body, "second \u{1F600}");
        assert_eq!(r1.severity_text, "warn");
        assert_eq!(r1.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(r1.span_id, "b7ad6b7169203331");
        // Sorted by name; the last of a repeated name wins.
        assert_eq!(
            r1.attributes,
            r#"{"level":"warn","span_id":"b7ad6b7169203331","trace_id":"0AF7651916CD43DD8448EB211C80319C","user":"alice"}"#
        );
        assert_eq!((r1.observed_timestamp, r1.severity_number, r1.flags), (0, 0, 0));

        assert_eq!(d.records[2].labels, labels(&[("app", "web"), ("cluster", "hdr")]));
        assert_eq!(d.records[2].timestamp, -1_000_000_000);
        // Raw strings keep backslashes and drop carriage returns; an absent timestamp is the epoch.
        assert_eq!(d.records[3].labels, labels(&[("cluster", "other"), ("job", "raw\\n")]));
        assert_eq!((d.records[3].timestamp, d.records[3].body.as_str()), (0, ""));
    }

    #[test]
    fn json_with_and_without_structured_metadata() {
        let body = br#"{"streams":[
            {"stream":{"app":"api","level":"info"},"values":[
                ["1700000000000000001","plain"],
                ["1700000000000000002","with metadata",{"detected_level":"error","k":"v\"q"}],
                [1700000000000000003,"numeric timestamp"],
                ["-4","null metadata",null],
                ["5","empty metadata",{}]
            ]},
            {"stream":{"app":"web","cluster":"own"},"values":[["6","x",{"trace_id":"00000000000000000000000000000000"}]]},
            {"stream":{"app":"empty"},"values":[]},
            {"stream":{"app":"none"}}
        ],"extra":"ignored"}"#;
        let d = decode_json(body, &header("hdr"), &OPTS).unwrap();
        assert!(d.is_clean(), "{}", d.message());
        let got: Vec<(i64, &str, &str, &str)> = d
            .records
            .iter()
            .map(|r| {
                (
                    r.timestamp,
                    r.body.as_str(),
                    r.severity_text.as_str(),
                    r.attributes.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1_700_000_000_000_000_001, "plain", "info", "{}"),
                (
                    1_700_000_000_000_000_002,
                    "with metadata",
                    "error",
                    r#"{"detected_level":"error","k":"v\"q"}"#
                ),
                (1_700_000_000_000_000_003, "numeric timestamp", "info", "{}"),
                (-4, "null metadata", "info", "{}"),
                (5, "empty metadata", "info", "{}"),
                (6, "x", "", r#"{"trace_id":"00000000000000000000000000000000"}"#),
            ]
        );
        assert_eq!(
            d.records[0].labels,
            labels(&[("app", "api"), ("cluster", "hdr"), ("level", "info")])
        );
        assert_eq!(d.records[5].labels, labels(&[("app", "web"), ("cluster", "own")]));
        // The all-zero trace id is OpenTelemetry's "no trace".
        assert_eq!(d.records[5].trace_id, "");
        assert_eq!(decode_json(b"{}", &header("h"), &OPTS).unwrap(), DecodedPush::default());
        assert_eq!(
            decode_json(br#"{"streams":null}"#, &header("h"), &OPTS).unwrap(),
            DecodedPush::default()
        );
    }

    #[test]
    fn severity_prefers_metadata_then_stream_and_level_over_detected_level() {
        let body = push(vec![stream(
            r#"{app="a", detected_level="debug", level="info"}"#,
            vec![
                entry(None, b"1", &[("detected_level", "warn"), ("level", "error")]),
                entry(None, b"2", &[("detected_level", "warn")]),
                entry(None, b"3", &[("level", "")]),
            ],
        )]);
        let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
        let sev: Vec<&str> = d.records.iter().map(|r| r.severity_text.as_str()).collect();
        assert_eq!(sev, ["error", "warn", "info"]);
        let body = push(vec![stream(
            r#"{app="a", detected_level="debug"}"#,
            vec![entry(None, b"4", &[])],
        )]);
        let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
        assert_eq!(d.records[0].severity_text, "debug");
    }

    #[test]
    fn trace_and_span_ids_must_be_hex_of_the_right_length() {
        assert_eq!(
            hex_id("0AF7651916CD43DD8448EB211C80319C", 32),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(hex_id("0af7651916cd43dd8448eb211c80319", 32), "");
        assert_eq!(hex_id("zzf7651916cd43dd8448eb211c80319c", 32), "");
        assert_eq!(hex_id("0000000000000000", 16), "");
        assert_eq!(hex_id("b7ad6b7169203331", 16), "b7ad6b7169203331");
        assert_eq!(hex_id("b7ad6b716920333é", 16), "");
    }

    #[test]
    fn cluster_precedence_token_then_own_then_header() {
        let body = push(vec![
            stream(r#"{app="a", cluster="theirs"}"#, vec![entry(None, b"x", &[])]),
            stream(r#"{app="b"}"#, vec![entry(None, b"y", &[])]),
            stream(r#"{app="c", cluster="mine"}"#, vec![entry(None, b"z", &[])]),
            stream(
                r#"{app="d", cluster="", exported_cluster="old"}"#,
                vec![entry(None, b"w", &[])],
            ),
        ]);
        let token = ClusterContext {
            token_cluster: Some("mine".into()),
            header_cluster: Some("hdr".into()),
        };
        let d = decode_protobuf(&body, &token, &OPTS).unwrap();
        let got: Vec<Labels> = d.records.iter().map(|r| r.labels.clone()).collect();
        assert_eq!(
            got,
            vec![
                labels(&[("app", "a"), ("cluster", "mine"), ("exported_cluster", "theirs")]),
                labels(&[("app", "b"), ("cluster", "mine")]),
                labels(&[("app", "c"), ("cluster", "mine")]),
                // An empty `cluster` is no cluster: the token's is added, the sender's other labels kept.
                labels(&[("app", "d"), ("cluster", "mine"), ("exported_cluster", "old")]),
            ]
        );

        let d = decode_protobuf(&body, &header("hdr"), &OPTS).unwrap();
        let clusters: Vec<&str> = d
            .records
            .iter()
            .map(|r| r.labels.get("cluster").unwrap_or(""))
            .collect();
        assert_eq!(clusters, ["theirs", "hdr", "mine", "hdr"]);

        // No cluster anywhere: only the streams without their own are rejected, with instructions.
        let d = decode_protobuf(&body, &ClusterContext::default(), &OPTS).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.rejected, 2);
        assert!(d.reasons[0].contains("X-Tributary-Cluster"), "{:?}", d.reasons);
        assert!(d.reasons[0].starts_with(r#"stream {app="b"}"#), "{:?}", d.reasons);
    }

    /// Each case: one bad stream beside a good one. The good one must survive, the bad one must be
    /// counted with a reason containing the needle.
    #[test]
    fn every_protobuf_rejection_has_a_reason() {
        let long_value = "v".repeat(33);
        let long_name = "n".repeat(17);
        let cases: Vec<(pb::StreamAdapter, u64, &str)> = vec![
            (
                stream(r#"{app="a""#, vec![entry(None, b"x", &[])]),
                1,
                "labels do not parse",
            ),
            (stream(r#"{app!="a"}"#, vec![entry(None, b"x", &[])]), 1, "expected '='"),
            (
                stream(r#"{app.name="a"}"#, vec![entry(None, b"x", &[])]),
                1,
                "invalid label name \"app.name\"",
            ),
            (
                stream(r#"{"0"="a"}"#, vec![entry(None, b"x", &[])]),
                1,
                "invalid label name \"0\"",
            ),
            (
                stream(
                    r#"{a="1", a="2"}"#,
                    vec![entry(None, b"x", &[]), entry(None, b"y", &[])],
                ),
                2,
                "duplicate label name \"a\"",
            ),
            (
                stream("{}", vec![entry(None, b"x", &[])]),
                1,
                "at least one label pair is required per stream",
            ),
            (
                stream(r#"{a=""}"#, vec![entry(None, b"x", &[])]),
                1,
                "at least one label pair is required",
            ),
            (
                stream(&format!(r#"{{a="{long_value}"}}"#), vec![entry(None, b"x", &[])]),
                1,
                "over the limit of 32",
            ),
            (
                stream(&format!(r#"{{{long_name}="a"}}"#), vec![entry(None, b"x", &[])]),
                1,
                "exceeds the limit of 16",
            ),
            (
                stream(
                    r#"{a="1", b="2", c="3", d="4", e="5", f="6"}"#,
                    vec![entry(None, b"x", &[])],
                ),
                1,
                "stream has 7 labels, more than the limit of 6",
            ),
            (
                pb::StreamAdapter {
                    labels: b"{a=\"\xff\"}".to_vec(),
                    entries: vec![entry(None, b"x", &[])],
                    hash: 0,
                },
                1,
                "labels are not valid UTF-8",
            ),
            (
                stream(r#"{a="\xff"}"#, vec![entry(None, b"x", &[])]),
                1,
                "escapes to invalid UTF-8",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(None, &[b'x'; 65], &[])]),
                1,
                "line of 65 bytes exceeds the limit of 64",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(None, b"bad \xc3\x28", &[])]),
                1,
                "line is not valid UTF-8",
            ),
            (
                stream(
                    r#"{a="b"}"#,
                    vec![pb::EntryAdapter {
                        timestamp: None,
                        line: b"x".to_vec(),
                        structured_metadata: vec![pb::LabelPairAdapter {
                            name: b"k".to_vec(),
                            value: b"\xff".to_vec(),
                        }],
                    }],
                ),
                1,
                "structured metadata is not valid UTF-8",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(ts(1, -1), b"x", &[])]),
                1,
                "timestamp nanos -1 outside",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(ts(1, 1_000_000_000), b"x", &[])]),
                1,
                "timestamp nanos 1000000000",
            ),
            (
                stream(
                    r#"{a="b"}"#,
                    vec![entry(ts(i64::MAX / 1_000_000_000 + 1, 0), b"x", &[])],
                ),
                1,
                "outside the range of nanosecond timestamps",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(ts(-62_135_596_800, 0), b"x", &[])]),
                1,
                "outside the range of nanosecond timestamps",
            ),
            (
                stream(
                    r#"{a="b"}"#,
                    vec![entry(
                        None,
                        b"x",
                        &[
                            ("a", "1"),
                            ("b", "2"),
                            ("c", "3"),
                            ("d", "4"),
                            ("e", "5"),
                            ("f", "6"),
                            ("g", "7"),
                        ],
                    )],
                ),
                1,
                "7 structured metadata pairs, more than the limit of 6",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(None, b"x", &[("k-8s", "1")])]),
                1,
                "invalid structured metadata name \"k-8s\"",
            ),
            (
                stream(r#"{a="b"}"#, vec![entry(None, b"x", &[("k", &long_value)])]),
                1,
                "value of structured metadata \"k\" is 33 bytes",
            ),
        ];
        for (bad, n, needle) in cases {
            let good = stream(r#"{ok="yes"}"#, vec![entry(ts(7, 0), b"kept", &[])]);
            let body = push(vec![bad, good]);
            let d = decode_protobuf(&body, &header("c"), &OPTS).unwrap();
            assert_eq!(d.rejected, n, "{needle}: {:?}", d.reasons);
            assert_eq!(d.reasons.len(), 1, "{needle}: {:?}", d.reasons);
            assert!(
                d.reasons[0].contains(needle),
                "{needle} missing from {:?}",
                d.reasons[0]
            );
            assert!(d.message().contains(needle));
            assert_eq!(d.records.len(), 1, "{needle}");
            assert_eq!(d.records[0].body, "kept");
        }
    }

    #[test]
    fn every_json_rejection_has_a_reason() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"stream":{},"values":[["1","x"]]}"#,
                "at least one label pair is required per stream",
            ),
            (
                r#"{"stream":{"a-b":"c"},"values":[["1","x"]]}"#,
                "invalid label name \"a-b\"",
            ),
            (r#"{"values":[["1","x"]]}"#, "at least one label pair"),
            (
                r#"{"stream":{"a":"b"},"values":[["abc","x"]]}"#,
                "timestamp \"abc\" is not an integer",
            ),
            (r#"{"stream":{"a":"b"},"values":[["1.5","x"]]}"#, "timestamp \"1.5\""),
            (
                r#"{"stream":{"a":"b"},"values":[["9223372036854775808","x"]]}"#,
                "not an integer number of nanoseconds",
            ),
            (
                r#"{"stream":{"a":"b"},"values":[[9223372036854775808,"x"]]}"#,
                "not an integer number of nanoseconds",
            ),
            (
                r#"{"stream":{"a":"b"},"values":[["1","xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]]}"#,
                "line of 65 bytes",
            ),
            (
                r#"{"stream":{"a":"b"},"values":[["1","x",{"":"v"}]]}"#,
                "invalid structured metadata name \"\"",
            ),
        ];
        for (bad, needle) in cases {
            let body = format!(r#"{{"streams":[{bad},{{"stream":{{"ok":"yes"}},"values":[["7","kept"]]}}]}}"#);
            let d = decode_json(body.as_bytes(), &header("c"), &OPTS).unwrap();
            assert_eq!(d.rejected, 1, "{needle}: {:?}", d.reasons);
            assert!(d.reasons[0].contains(needle), "{needle} missing from {:?}", d.reasons);
            assert_eq!(d.records.len(), 1, "{needle}");
            assert_eq!(d.records[0].body, "kept");
        }
    }

    #[test]
    fn malformed_bodies_are_rejected_whole() {
        let ctx = header("c");
        for body in [&b"\xff\xff\xff"[..], b"\x0a\x05ab", b"\x0a\x02\x0a\xff"] {
            match decode_protobuf(body, &ctx, &OPTS) {
                Err(Error::InvalidInput(m)) => assert!(m.contains("logproto.PushRequest"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        for body in [
            &b"not json"[..],
            b"[]",
            br#"{"streams":{}}"#,
            br#"{"streams":[[{"a":"b"},[]]]}"#,
            br#"{"streams":[],"streams":[]}"#,
            br#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{},"extra"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[[1.5,"x"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","\ud800"]]}]}"#,
            b"{\"streams\":[{\"stream\":{\"a\":\"\xff\"},\"values\":[]}]}",
        ] {
            match decode_json(body, &ctx, &OPTS) {
                Err(Error::InvalidInput(m)) => assert!(m.contains("Loki JSON push request"), "{m}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    /// Why the proto structs declare `string` fields as `bytes`: prost validates `string`, and one
    /// bad line would fail the whole push.
    #[test]
    fn prost_strings_would_fail_the_whole_request_on_invalid_utf8() {
        #[derive(Clone, PartialEq, prost::Message)]
        struct StringEntry {
            #[prost(string, tag = "2")]
            line: String,
        }
        let raw = entry(None, b"\xff", &[]).encode_to_vec();
        let err = StringEntry::decode(raw.as_slice()).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid string value: data is not UTF-8 encoded"),
            "{err}"
        );
    }

    #[test]
    fn nanosecond_timestamps_are_always_storable() {
        for ns in [i64::MIN, i64::MAX] {
            assert!(tributary_storage::layout::storable_timestamp(ns.div_euclid(1_000_000)));
        }
    }

    #[test]
    fn reasons_are_capped() {
        let streams = (0..15).map(|_| stream("{}", vec![entry(None, b"x", &[])])).collect();
        let d = decode_protobuf(&push(streams), &header("c"), &OPTS).unwrap();
        assert_eq!(d.rejected, 15);
        assert_eq!(d.reasons.len(), DecodedPush::MAX_REASONS);
        assert!(d.message().starts_with("rejected 15 log entries"));
        assert!(d.message().ends_with("; ..."));
    }

    #[test]
    fn label_set_syntax() {
        let ok = |s: &str| parse_label_set(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
        };
        assert_eq!(ok("{}"), p(&[]));
        assert_eq!(ok(" \t{ }\n"), p(&[]));
        assert_eq!(ok(r#"{a="b",}"#), p(&[("a", "b")]));
        assert_eq!(ok(r#"{b="1", a="2"}"#), p(&[("b", "1"), ("a", "2")]));
        assert_eq!(ok(r#"{"a.b"="1"}"#), p(&[("a.b", "1")]));
        assert_eq!(
            ok(r#"{a="\a\b\f\n\r\t\v\\\"", b="\x41\101\u00e9\U0001F600"}"#),
            p(&[("a", "\x07\x08\x0c\n\r\t\x0b\\\""), ("b", "AAé\u{1F600}")])
        );
        assert_eq!(ok("{a=`x\\\"\r\ny`}"), p(&[("a", "x\\\"\ny")]));
        assert_eq!(ok("{a=\"ü\"}"), p(&[("a", "ü")]));
        for (bad, needle) in [
            ("", "expected '{' at the end"),
            ("a=\"b\"", "expected '{' at byte 0"),
            ("{a=\"b\"", "expected '}' at the end"),
            ("{a=\"b\"} x", "unexpected text after"),
            ("{a=\"b}", "unterminated string"),
            ("{a=`b}", "unterminated raw string"),
            ("{a}", "expected '='"),
            ("{=\"b\"}", "expected a label name"),
            ("{a=b}", "expected a quoted string"),
            ("{a=~\"b\"}", "expected a quoted string"),
            ("{a=\"b\" c=\"d\"}", "expected '}'"),
            ("{a=\"\\q\"}", "unknown escape"),
            ("{a=\"\\'\"}", "unknown escape"),
            ("{a=\"\\x4\"}", "malformed escape"),
            ("{a=\"\\400\"}", "over \\377"),
            ("{a=\"\\12\"}", "malformed escape"),
            ("{a=\"\\ud800\"}", "not a Unicode scalar value"),
            ("{a=\"\\U00110000\"}", "not a Unicode scalar value"),
            ("{a=\"\\", "unterminated escape"),
            ("{a=\"x\ny\"}", "newline in string"),
            ("{a=\"\\xc3\"}", "invalid UTF-8"),
            ("{ü}", "expected '='"),
        ] {
            match parse_label_set(bad) {
                Err(e) => assert!(e.contains(needle), "{bad:?}: {needle} missing from {e}"),
                Ok(v) => panic!("{bad:?} parsed as {v:?}"),
            }
        }
    }

    /// Quotes `v` as Go would accept it, each character in a style picked by `styles`.
    fn go_quote(v: &str, styles: &[u8]) -> String {
        let mut out = String::from("\"");
        for (i, c) in v.chars().enumerate() {
            let style = styles.get(i % styles.len().max(1)).copied().unwrap_or(0) % 6;
            let mut utf8 = [0u8; 4];
            let bytes = c.encode_utf8(&mut utf8).as_bytes().to_vec();
            match (c, style) {
                ('"', _) => out.push_str("\\\""),
                ('\\', _) => out.push_str("\\\\"),
                ('\n', 0) => out.push_str("\\n"),
                (_, 0) => out.push(c),
                (_, 1) if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
                (_, 1 | 2) => out.push_str(&format!("\\U{:08X}", c as u32)),
                (_, 3) => bytes.iter().for_each(|b| out.push_str(&format!("\\x{b:02x}"))),
                (_, 4) => bytes.iter().for_each(|b| out.push_str(&format!("\\{b:03o}"))),
                _ => match c {
                    '\x07' => out.push_str("\\a"),
                    '\x08' => out.push_str("\\b"),
                    '\x0c' => out.push_str("\\f"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\x0b' => out.push_str("\\v"),
                    _ => out.push(c),
                },
            }
        }
        out.push('"');
        out
    }

    fn format_set(pairs: &[(String, String)], styles: &[u8], spaces: bool) -> String {
        let sep = if spaces { ", " } else { "," };
        let body: Vec<String> = pairs
            .iter()
            .map(|(n, v)| {
                if spaces {
                    format!("{n} = {}", go_quote(v, styles))
                } else {
                    format!("{n}={}", go_quote(v, styles))
                }
            })
            .collect();
        format!("{{{}}}", body.join(sep))
    }

    fn arb_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,12}", any::<String>()), 0..6)
    }

    /// Bytes near the label-set grammar, so the parser's deeper paths get exercised.
    fn arb_grammar_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "{", "}", "=", ",", " ", "\"", "`", "\\", "a", "_", "0", "7", "x", "u", "U", "n", "f", "é", "\n", "\r",
                "!", "~", "\\x", "\\u", "\\U00", "\\3", "d8", "ff",
            ]),
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    fn arb_push() -> impl Strategy<Value = pb::PushRequest> {
        let label_text = prop_oneof![
            arb_pairs().prop_map(|p| format_set(&p, &[0], true)),
            arb_grammar_text(),
            Just(r#"{app="x", cluster="own"}"#.to_string()),
        ];
        let metadata = prop::collection::vec(
            (
                prop_oneof!["[a-z_]{1,5}", Just("level".to_string()), Just("trace_id".to_string())],
                "[0-9a-f]{0,32}|.{0,8}",
            ),
            0..8,
        );
        let entry = (
            prop::option::of((any::<i64>(), prop_oneof![0i32..1_000_000_000, any::<i32>()])),
            prop::collection::vec(any::<u8>(), 0..80),
            metadata,
        )
            .prop_map(|(t, line, md)| pb::EntryAdapter {
                timestamp: t.map(|(seconds, nanos)| pb::Timestamp { seconds, nanos }),
                line,
                structured_metadata: md
                    .into_iter()
                    .map(|(n, v): (String, String)| pb::LabelPairAdapter {
                        name: n.into_bytes(),
                        value: v.into_bytes(),
                    })
                    .collect(),
            });
        let stream = (label_text, prop::collection::vec(entry, 0..5), any::<u64>()).prop_map(|(l, entries, hash)| {
            pb::StreamAdapter {
                labels: l.into_bytes(),
                entries,
                hash,
            }
        });
        prop::collection::vec(stream, 0..5).prop_map(|streams| pb::PushRequest { streams })
    }

    fn check_invariants(d: &DecodedPush, total_entries: u64, opts: &Options) {
        assert_eq!(
            d.records.len() as u64 + d.rejected,
            total_entries,
            "every entry kept or counted"
        );
        assert_eq!(d.reasons.is_empty(), d.rejected == 0);
        for r in &d.records {
            let l = r.labels.as_slice();
            assert!(l.windows(2).all(|w| w[0].name < w[1].name), "{:?}", r.labels);
            assert!(r.labels.get("cluster").is_some(), "{:?}", r.labels);
            assert!(l.len() <= opts.max_labels);
            assert!(r.body.len() <= opts.max_line_bytes);
            assert!(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&r.attributes).is_ok());
            assert!(r.trace_id.is_empty() || r.trace_id.len() == 32);
            assert!(r.span_id.is_empty() || r.span_id.len() == 16);
        }
    }

    proptest! {
        #[test]
        fn label_set_round_trip(
            pairs in arb_pairs(),
            styles in prop::collection::vec(any::<u8>(), 1..8),
            spaces in any::<bool>(),
        ) {
            let text = format_set(&pairs, &styles, spaces);
            prop_assert_eq!(parse_label_set(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?, pairs);
        }

        #[test]
        fn label_set_parser_never_panics(s in any::<String>(), g in arb_grammar_text()) {
            let _ = parse_label_set(&s);
            let _ = parse_label_set(&g);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let ctx = header("c");
            let _ = decode_protobuf(&bytes, &ctx, &OPTS);
            let _ = decode_json(&bytes, &ctx, &OPTS);
        }

        #[test]
        fn arbitrary_push_requests_keep_or_count_every_entry(req in arb_push(), token in any::<bool>()) {
            let ctx = ClusterContext {
                token_cluster: token.then(|| "tok".to_string()),
                header_cluster: None,
            };
            let total: u64 = req.streams.iter().map(|s| s.entries.len() as u64).sum();
            let body = req.encode_to_vec();
            let d = decode_protobuf(&body, &ctx, &OPTS).map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_invariants(&d, total, &OPTS);
            if token {
                prop_assert!(d.records.iter().all(|r| r.labels.get("cluster") == Some("tok")));
            }
            // Deterministic: WAL replay decodes the same body again.
            prop_assert_eq!(decode_protobuf(&body, &ctx, &OPTS).ok(), Some(d));
        }

        #[test]
        fn arbitrary_json_pushes_keep_or_count_every_entry(
            streams in prop::collection::vec(
                (
                    prop::collection::btree_map("[a-zA-Z_-][a-z0-9]{0,3}", ".{0,6}", 0..4),
                    prop::collection::vec(("-?[0-9]{1,20}|x", ".{0,70}", prop::option::of(prop::collection::btree_map("[a-z_]{0,4}", ".{0,4}", 0..8))), 0..4),
                ),
                0..4,
            ),
        ) {
            let total: u64 = streams.iter().map(|(_, v)| v.len() as u64).sum();
            let json = serde_json::json!({
                "streams": streams.iter().map(|(labels, values)| serde_json::json!({
                    "stream": labels,
                    "values": values.iter().map(|(t, l, md)| match md {
                        Some(md) => serde_json::json!([t, l, md]),
                        None => serde_json::json!([t, l]),
                    }).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            let body = serde_json::to_vec(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let d = decode_json(&body, &header("h"), &OPTS).map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_invariants(&d, total, &OPTS);
        }
    }
}
