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
//! The decode table then adds `service_name` and `detected_level` (`super::log_labels`).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use prost::Message as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tributary_proto::loki as pb;
use tributary_storage::signals::{LogRecord, TimestampNs};
use tributary_storage::types::{Label, Labels};

use super::{Accepted, Batch, Options as DecodeOptions, Outcome, Prepared, Rejections};
use crate::cluster::ClusterContext;
use crate::error::{Error, Result};
use crate::head::SignalBlock;
use crate::head::input::{Input, KnownSeries};

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

/// The decode table's entry for [`crate::record::Kind::LokiPushProtobuf`].
pub(crate) fn decode_protobuf_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    _: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    Ok(decode_protobuf(body.bytes()?, ctx, &Options::from_decode(opts))?.into_batch())
}

/// The decode table's entry for [`crate::record::Kind::LokiPushJson`].
pub(crate) fn decode_json_batch<'a>(
    body: &'a Prepared,
    ctx: &'a ClusterContext,
    opts: &DecodeOptions<'_>,
    _: &dyn KnownSeries,
) -> Result<Batch<'a>> {
    Ok(decode_json(body.bytes()?, ctx, &Options::from_decode(opts))?.into_batch())
}

impl Options {
    fn from_decode(opts: &DecodeOptions<'_>) -> Self {
        Self {
            max_line_bytes: opts.max_log_body_bytes,
            max_labels: opts.limits.max_labels_per_series,
            max_label_name_bytes: opts.limits.max_label_name_bytes,
            max_label_value_bytes: opts.limits.max_label_value_bytes,
        }
    }
}

impl DecodedPush {
    fn into_batch<'a>(self) -> Batch<'a> {
        let accepted = Accepted {
            log_records: self.records.len() as u64,
            ..Accepted::default()
        };
        let rejected = Rejections {
            log_records: self.rejected,
            reasons: self.reasons,
            ..Rejections::default()
        };
        Batch {
            input: Input {
                signals: SignalBlock {
                    logs: self.records,
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
            .and_then(|pairs| stream_labels(pairs, ctx, opts))
            .map(Arc::new);
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
            Ok(l) => Arc::new(l),
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
fn proto_entry(e: pb::EntryAdapter, labels: &Arc<Labels>, opts: &Options) -> Result<LogRecord, String> {
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
    labels: &Arc<Labels>,
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
        // The stream's one copy (see `LogRecord`).
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
        resource_attributes: no_resource(),
        scope_name: String::new(),
        scope_version: String::new(),
        event_name: String::new(),
    })
}

/// Loki streams have no resource: an empty object, one copy for every record.
fn no_resource() -> Arc<str> {
    static EMPTY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("{}"));
    EMPTY.clone()
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
mod tests;
