//! The WAL record: what one acknowledged write looks like on disk.
//!
//! The WAL itself ([`crate::wal`]) frames and checksums opaque payloads; this module owns what a
//! payload means. A record keeps the request body *as received* (still compressed: ~27 B per
//! remote-write sample instead of re-encoding ~200 B) plus everything needed to decode it again
//! exactly as it was decoded when acknowledged: the protocol and the cluster context.
//!
//! Replay decodes with the same rules, so it keeps exactly the series that were accepted; it
//! uses unbounded length limits, because data accepted under older limits must not be lost when
//! an operator lowers them.
//!
//! # Format (version 2, written since the release that stores translation settings)
//! All integers little-endian.
//! ```text
//! u8  format version = 2
//! u8  kind           1 = Prometheus remote-write 1.0 `prometheus.WriteRequest`, snappy block
//!                    2 = Prometheus remote-write 2.0 `io.prometheus.write.v2.Request`, snappy block
//!                    3 = OTLP `ExportMetricsServiceRequest` protobuf, snappy block
//!                    4 = OTLP `ExportLogsServiceRequest` protobuf, snappy block
//!                    5 = Loki push `logproto.PushRequest` protobuf, snappy block (as received)
//!                    6 = Loki push JSON, snappy block
//!                    7 = OTLP `ExportTraceServiceRequest` protobuf, snappy block
//!                    8 = Zipkin v2 JSON spans, snappy block
//! u16 token cluster length  T, then T bytes UTF-8   (0 = none)
//! u16 header cluster length H, then H bytes UTF-8   (0 = none)
//! u32 settings length S, then S bytes of settings entries, each:
//!         u8 tag, u32 length L, then L bytes
//!     tag 1 = OTLP `add_metric_suffixes`: 1 byte, 0 or 1
//!     tag 2 = OTLP `promote_resource_attributes`: a string list
//!     tag 3 = OTLP `log_stream_attributes`: a string list
//!     tag 4 = what per-cluster limits refused of this write (`crate::quota::Refused`), any kind:
//!             u32 count W, then W windows (u16 cluster length, cluster UTF-8, i64 lo, i64 hi),
//!             then u32 count N, then N u64 series ids
//!     tag 5 = what the HA tracker did to this write (`crate::ha_tracker::Replicas`), metric kinds:
//!             a string list (the replica label names removed from every series, in the order
//!             they were looked for), then a string list of 2D strings (the D dropped pairs:
//!             cluster, replica, cluster, replica, ...)
//!     tag 6 = `ingest.logs.discover_service_name` (`Translation::discover_service_name`), log
//!             kinds: a string list, present only when not empty
//!     tag 7 = `ingest.logs.discover_log_levels`, log kinds: 1 byte, 1; present only when on
//!     a string list is u32 count N, then N times (u32 length, then that many bytes UTF-8)
//! ... the request body, to the end of the payload
//! ```
//! The settings are everything beyond the (unbounded on replay) limits that changes how the body
//! translates ([`crate::decode::Translation`]). A record holds exactly the entries its kind reads,
//! in tag order, each once: kind 3 tags 1 and 2, kind 4 tag 3, the others (7 and 8 included) none (S = 0, so
//! remote-write records stay as small as before); then tag 4, on any kind, only when a
//! per-cluster limit refused part of the write (replay, which applies no limits, drops exactly
//! that: items outside those clusters' windows, and those series); then tag 5 only when a series
//! of the write carried a replica label while the HA tracker was on (replay removes those labels
//! and drops those pairs' series again, whatever the tracker's configuration is now); then, on log
//! kinds (4, 5, 6), tags 6 and 7 when those settings are on (records written before they existed
//! have neither, and replay with both off, as they were acknowledged). So every record has one encoding, and a reader
//! that meets anything else (an unknown tag, a missing or extra entry) fails replay loudly rather
//! than guess what the write meant.
//!
//! OTLP bodies are stored as protobuf whatever they arrived as (JSON is re-encoded, gzip undone),
//! snappy-compressed so the WAL holds ~1/5 of the raw size. New kinds get new numbers; a reader
//! that meets an unknown version or kind fails replay loudly rather than skipping acknowledged
//! data.
//!
//! # Version 1 (written by releases before settings were stored)
//! The same, without the settings length and entries: the body follows the header cluster.
//! Version-1 records still replay, translated with the *current* configuration's settings (all
//! that was known about them), as those releases did.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::ClusterContext;
use crate::decode::Translation;
use crate::ha_tracker::Replicas;
use crate::quota::Refused;

/// The version [`encode`] writes.
const VERSION: u8 = 2;
/// The version before translation settings were stored; still read.
const VERSION_1: u8 = 1;

const TAG_ADD_METRIC_SUFFIXES: u8 = 1;
const TAG_PROMOTE_RESOURCE_ATTRIBUTES: u8 = 2;
const TAG_LOG_STREAM_ATTRIBUTES: u8 = 3;
const TAG_REFUSED: u8 = 4;
const TAG_REPLICAS: u8 = 5;
const TAG_DISCOVER_SERVICE_NAME: u8 = 6;
const TAG_DISCOVER_LOG_LEVELS: u8 = 7;

/// Which decoder a record's body goes to: the key of the decode table (`crate::decode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Prometheus remote-write 1.0.
    PromRemoteWriteV1 = 1,
    /// Prometheus remote-write 2.0.
    PromRemoteWriteV2 = 2,
    /// OTLP metrics (HTTP or gRPC).
    OtlpMetrics = 3,
    /// OTLP logs (HTTP or gRPC).
    OtlpLogs = 4,
    /// Loki push, protobuf.
    LokiPushProtobuf = 5,
    /// Loki push, JSON.
    LokiPushJson = 6,
    /// OTLP traces (HTTP or gRPC).
    OtlpTraces = 7,
    /// Zipkin v2 JSON spans.
    ZipkinJson = 8,
}

impl Kind {
    /// Whether bodies of this kind carry log records or spans (held back by the head's log
    /// limit, which counts both).
    pub fn carries_logs(self) -> bool {
        match self {
            Kind::OtlpLogs | Kind::LokiPushProtobuf | Kind::LokiPushJson | Kind::OtlpTraces | Kind::ZipkinJson => true,
            Kind::PromRemoteWriteV1 | Kind::PromRemoteWriteV2 | Kind::OtlpMetrics => false,
        }
    }

    /// Every kind, in number order.
    pub const ALL: [Kind; 8] = [
        Kind::PromRemoteWriteV1,
        Kind::PromRemoteWriteV2,
        Kind::OtlpMetrics,
        Kind::OtlpLogs,
        Kind::LokiPushProtobuf,
        Kind::LokiPushJson,
        Kind::OtlpTraces,
        Kind::ZipkinJson,
    ];

    fn from_u8(k: u8) -> Option<Kind> {
        Self::ALL.into_iter().find(|kind| *kind as u8 == k)
    }
}

/// A decoded record, borrowing its body from the payload.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    /// Which decoder the body goes to.
    pub kind: Kind,
    /// The cluster context the write was decoded under.
    pub ctx: ClusterContext,
    /// The translation settings the write was decoded with; `None` for a version-1 record, which
    /// replays with the current configuration's.
    pub translation: Option<Translation>,
    /// What per-cluster limits refused of the write (empty for most records).
    pub refused: Refused,
    /// What the HA tracker did to the write (empty unless a series carried a replica label).
    pub replicas: Replicas,
    /// The body (a snappy block).
    pub body: &'a [u8],
}

/// Why a payload is not a record this release can replay.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The payload ends inside the header.
    #[error("WAL record too short")]
    Truncated,
    /// A format version this release does not know.
    #[error("unknown WAL record version {0}")]
    Version(u8),
    /// A kind this release does not know.
    #[error("unknown WAL record kind {0}")]
    Kind(u8),
    /// A settings entry this release does not know.
    #[error("unknown WAL record settings tag {0}")]
    SettingsTag(u8),
    /// A settings entry that does not hold what its tag says.
    #[error("malformed WAL record settings entry (tag {0})")]
    Settings(u8),
    /// Settings entries other than exactly those the kind's writer stores, in order.
    #[error("WAL record settings are not the entries a {0:?} record holds")]
    SettingsForKind(Kind),
    /// A cluster name or setting is not UTF-8.
    #[error("WAL record cluster name or setting is not UTF-8")]
    Utf8,
    /// A cluster name too long for the format.
    #[error("cluster name longer than 65535 bytes")]
    ClusterTooLong,
}

/// One record: the kind, the cluster context and the translation settings it was decoded with
/// (the entries `kind` reads, see the format), what limits refused of it, what the HA tracker did
/// to it, and the body.
pub fn encode(
    kind: Kind,
    ctx: &ClusterContext,
    translation: &Translation,
    refused: &Refused,
    replicas: &Replicas,
    body: &[u8],
) -> Result<Bytes, RecordError> {
    let t = ctx.token_cluster.as_deref().unwrap_or("");
    let h = ctx.header_cluster.as_deref().unwrap_or("");
    let (tl, hl) = (
        u16::try_from(t.len()).map_err(|_| RecordError::ClusterTooLong)?,
        u16::try_from(h.len()).map_err(|_| RecordError::ClusterTooLong)?,
    );
    let mut b = BytesMut::with_capacity(10 + t.len() + h.len() + body.len());
    b.put_u8(VERSION);
    b.put_u8(kind as u8);
    b.put_u16_le(tl);
    b.put_slice(t.as_bytes());
    b.put_u16_le(hl);
    b.put_slice(h.as_bytes());
    put_settings(&mut b, kind, translation, refused, replicas)?;
    b.put_slice(body);
    Ok(b.freeze())
}

/// The settings section: its length, then the entries `kind` reads, in tag order.
fn put_settings(
    b: &mut BytesMut,
    kind: Kind,
    translation: &Translation,
    refused: &Refused,
    replicas: &Replicas,
) -> Result<(), RecordError> {
    let at = b.len();
    b.put_u32_le(0);
    match kind {
        Kind::OtlpMetrics => {
            put_entry(b, TAG_ADD_METRIC_SUFFIXES, |b| {
                b.put_u8(translation.add_metric_suffixes as u8)
            });
            put_entry(b, TAG_PROMOTE_RESOURCE_ATTRIBUTES, |b| {
                put_strings(b, &translation.promote_resource_attributes)
            });
        }
        Kind::OtlpLogs => put_entry(b, TAG_LOG_STREAM_ATTRIBUTES, |b| {
            put_strings(b, &translation.log_stream_attributes)
        }),
        Kind::PromRemoteWriteV1
        | Kind::PromRemoteWriteV2
        | Kind::LokiPushProtobuf
        | Kind::LokiPushJson
        | Kind::OtlpTraces
        | Kind::ZipkinJson => {}
    }
    if !refused.is_empty() {
        for (c, _, _) in &refused.windows {
            u16::try_from(c.len()).map_err(|_| RecordError::ClusterTooLong)?;
        }
        put_entry(b, TAG_REFUSED, |b| {
            b.put_u32_le(refused.windows.len() as u32);
            for (c, lo, hi) in &refused.windows {
                b.put_u16_le(c.len() as u16);
                b.put_slice(c.as_bytes());
                b.put_i64_le(*lo);
                b.put_i64_le(*hi);
            }
            b.put_u32_le(refused.series.len() as u32);
            for id in &refused.series {
                b.put_u64_le(*id);
            }
        });
    }
    if !replicas.is_empty() {
        put_entry(b, TAG_REPLICAS, |b| {
            put_strings(b, &replicas.labels);
            let pairs: Vec<String> = replicas
                .dropped
                .iter()
                .flat_map(|(c, r)| [c.clone(), r.clone()])
                .collect();
            put_strings(b, &pairs);
        });
    }
    if matches!(kind, Kind::OtlpLogs | Kind::LokiPushProtobuf | Kind::LokiPushJson) {
        if !translation.discover_service_name.is_empty() {
            put_entry(b, TAG_DISCOVER_SERVICE_NAME, |b| {
                put_strings(b, &translation.discover_service_name)
            });
        }
        if translation.discover_log_levels {
            put_entry(b, TAG_DISCOVER_LOG_LEVELS, |b| b.put_u8(1));
        }
    }
    let settings = (b.len() - at - 4) as u32;
    b[at..at + 4].copy_from_slice(&settings.to_le_bytes());
    Ok(())
}

fn put_entry(b: &mut BytesMut, tag: u8, value: impl FnOnce(&mut BytesMut)) {
    b.put_u8(tag);
    let at = b.len();
    b.put_u32_le(0);
    value(b);
    let len = (b.len() - at - 4) as u32;
    b[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

fn put_strings(b: &mut BytesMut, list: &[String]) {
    b.put_u32_le(list.len() as u32);
    for s in list {
        b.put_u32_le(s.len() as u32);
        b.put_slice(s.as_bytes());
    }
}

/// Reads a record of either version.
pub fn decode(p: &[u8]) -> Result<Record<'_>, RecordError> {
    let (&version, rest) = p.split_first().ok_or(RecordError::Truncated)?;
    if version != VERSION && version != VERSION_1 {
        return Err(RecordError::Version(version));
    }
    let (&kind, rest) = rest.split_first().ok_or(RecordError::Truncated)?;
    let kind = Kind::from_u8(kind).ok_or(RecordError::Kind(kind))?;
    let (token, rest) = take_str(rest)?;
    let (header, rest) = take_str(rest)?;
    let (translation, refused, replicas, body) = if version == VERSION_1 {
        (None, Refused::default(), Replicas::default(), rest)
    } else {
        let (settings, body) = take(rest, 4).and_then(|(n, rest)| take(rest, u32_le(n) as usize))?;
        let (translation, refused, replicas) = read_settings(settings)?;
        // One encoding per record: the entries must be exactly what a writer of `kind` stores.
        let mut canonical = BytesMut::new();
        put_settings(&mut canonical, kind, &translation, &refused, &replicas)?;
        if canonical[4..] != *settings {
            return Err(RecordError::SettingsForKind(kind));
        }
        (Some(translation), refused, replicas, body)
    };
    Ok(Record {
        kind,
        ctx: ClusterContext {
            token_cluster: token,
            header_cluster: header,
        },
        translation,
        refused,
        replicas,
        body,
    })
}

fn read_settings(mut p: &[u8]) -> Result<(Translation, Refused, Replicas), RecordError> {
    let mut t = Translation::default();
    let mut refused = Refused::default();
    let mut replicas = Replicas::default();
    while let Some((&tag, rest)) = p.split_first() {
        let (value, rest) = take(rest, 4).and_then(|(n, rest)| take(rest, u32_le(n) as usize))?;
        p = rest;
        match tag {
            TAG_ADD_METRIC_SUFFIXES => {
                t.add_metric_suffixes = match value {
                    [0] => false,
                    [1] => true,
                    _ => return Err(RecordError::Settings(tag)),
                }
            }
            TAG_PROMOTE_RESOURCE_ATTRIBUTES => t.promote_resource_attributes = read_strings(value, tag)?,
            TAG_LOG_STREAM_ATTRIBUTES => t.log_stream_attributes = read_strings(value, tag)?,
            TAG_REFUSED => refused = read_refused(value)?,
            TAG_REPLICAS => replicas = read_replicas(value)?,
            TAG_DISCOVER_SERVICE_NAME => t.discover_service_name = read_strings(value, tag)?,
            TAG_DISCOVER_LOG_LEVELS => {
                t.discover_log_levels = match value {
                    [1] => true,
                    _ => return Err(RecordError::Settings(tag)),
                }
            }
            other => return Err(RecordError::SettingsTag(other)),
        }
    }
    Ok((t, refused, replicas))
}

fn read_replicas(p: &[u8]) -> Result<Replicas, RecordError> {
    let (labels, rest) = take_strings(p, TAG_REPLICAS)?;
    let (pairs, rest) = take_strings(rest, TAG_REPLICAS)?;
    if !rest.is_empty() || pairs.len() % 2 != 0 {
        return Err(RecordError::Settings(TAG_REPLICAS));
    }
    let mut it = pairs.into_iter();
    let mut dropped = Vec::new();
    while let (Some(c), Some(r)) = (it.next(), it.next()) {
        dropped.push((c, r));
    }
    Ok(Replicas { labels, dropped })
}

fn read_refused(p: &[u8]) -> Result<Refused, RecordError> {
    let malformed = |_| RecordError::Settings(TAG_REFUSED);
    let mut r = Refused::default();
    let (n, mut p) = take(p, 4).map_err(malformed)?;
    for _ in 0..u32_le(n) {
        let (cluster, rest) = take_str(p).map_err(malformed)?;
        let (w, rest) = take(rest, 16).map_err(malformed)?;
        let lo = i64::from_le_bytes(w[..8].try_into().expect("8 bytes"));
        let hi = i64::from_le_bytes(w[8..].try_into().expect("8 bytes"));
        r.windows.push((cluster.unwrap_or_default(), lo, hi));
        p = rest;
    }
    let (n, mut p) = take(p, 4).map_err(malformed)?;
    let n = u32_le(n) as usize;
    if p.len() != n.saturating_mul(8) {
        return Err(RecordError::Settings(TAG_REFUSED));
    }
    r.series.reserve(n);
    while let Some((id, rest)) = p.split_first_chunk::<8>() {
        r.series.push(u64::from_le_bytes(*id));
        p = rest;
    }
    Ok(r)
}

fn read_strings(p: &[u8], tag: u8) -> Result<Vec<String>, RecordError> {
    let (out, rest) = take_strings(p, tag)?;
    if !rest.is_empty() {
        return Err(RecordError::Settings(tag));
    }
    Ok(out)
}

/// A string list at the start of `p`, and what follows it.
fn take_strings(p: &[u8], tag: u8) -> Result<(Vec<String>, &[u8]), RecordError> {
    let malformed = |_| RecordError::Settings(tag);
    let (n, mut p) = take(p, 4).map_err(malformed)?;
    let n = u32_le(n) as usize;
    // Never trust the claimed count for an allocation: each string takes at least 4 bytes.
    let mut out = Vec::with_capacity(n.min(p.len() / 4));
    for _ in 0..n {
        let (s, rest) = take(p, 4)
            .and_then(|(l, rest)| take(rest, u32_le(l) as usize))
            .map_err(malformed)?;
        out.push(std::str::from_utf8(s).map_err(|_| RecordError::Utf8)?.to_string());
        p = rest;
    }
    Ok((out, p))
}

fn take(p: &[u8], n: usize) -> Result<(&[u8], &[u8]), RecordError> {
    if p.len() < n {
        return Err(RecordError::Truncated);
    }
    Ok(p.split_at(n))
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn take_str(p: &[u8]) -> Result<(Option<String>, &[u8]), RecordError> {
    if p.len() < 2 {
        return Err(RecordError::Truncated);
    }
    let n = u16::from_le_bytes([p[0], p[1]]) as usize;
    let s = p.get(2..2 + n).ok_or(RecordError::Truncated)?;
    let s = std::str::from_utf8(s).map_err(|_| RecordError::Utf8)?;
    Ok(((!s.is_empty()).then(|| s.to_string()), &p[2 + n..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec("[a-z.é]{0,12}", 0..4)
    }

    /// What a record of `kind` keeps of `t`: the entries its decoder reads.
    fn kept(kind: Kind, t: &Translation) -> Translation {
        match kind {
            Kind::OtlpMetrics => Translation {
                add_metric_suffixes: t.add_metric_suffixes,
                promote_resource_attributes: t.promote_resource_attributes.clone(),
                ..Translation::default()
            },
            Kind::OtlpLogs => Translation {
                log_stream_attributes: t.log_stream_attributes.clone(),
                discover_service_name: t.discover_service_name.clone(),
                discover_log_levels: t.discover_log_levels,
                ..Translation::default()
            },
            Kind::LokiPushProtobuf | Kind::LokiPushJson => Translation {
                discover_service_name: t.discover_service_name.clone(),
                discover_log_levels: t.discover_log_levels,
                ..Translation::default()
            },
            _ => Translation::default(),
        }
    }

    proptest! {
        #[test]
        fn round_trips(t in proptest::option::of("[a-z-]{1,20}"), h in proptest::option::of("[a-z-]{1,20}"),
                       kind in proptest::sample::select(Kind::ALL.to_vec()),
                       suffixes in any::<bool>(), promote in strings(), streams in strings(),
                       services in strings(), levels in any::<bool>(),
                       windows in proptest::collection::vec(("[a-z-]{0,8}", any::<i64>(), any::<i64>()), 0..3),
                       series in proptest::collection::vec(any::<u64>(), 0..4),
                       replica_labels in strings(),
                       dropped in proptest::collection::vec(("[a-z-]{0,8}", "[a-zé]{0,8}"), 0..3),
                       body in proptest::collection::vec(any::<u8>(), 0..100)) {
            let ctx = ClusterContext { token_cluster: t, header_cluster: h };
            let translation = Translation {
                add_metric_suffixes: suffixes,
                promote_resource_attributes: promote,
                log_stream_attributes: streams,
                discover_service_name: services,
                discover_log_levels: levels,
            };
            let refused = Refused {
                windows,
                series,
            };
            // A record keeps dropped pairs only beside the labels the tracker looked for.
            let replicas = Replicas {
                dropped: if replica_labels.is_empty() { Vec::new() } else { dropped },
                labels: replica_labels,
            };
            let enc = encode(kind, &ctx, &translation, &refused, &replicas, &body).unwrap();
            let dec = decode(&enc).unwrap();
            prop_assert_eq!(dec, Record { kind, ctx, translation: Some(kept(kind, &translation)), refused, replicas, body: &body });
        }

        /// What the `wal_record` fuzz target also holds: a version-2 record has one encoding.
        #[test]
        fn arbitrary_bytes_never_panic_and_v2_records_have_one_encoding(p in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(rec) = decode(&p)
                && let Some(t) = &rec.translation
            {
                prop_assert_eq!(&encode(rec.kind, &rec.ctx, t, &rec.refused, &rec.replicas, rec.body).unwrap()[..], &p[..]);
            }
        }
    }

    #[test]
    fn unknown_versions_kinds_and_settings_fail_loudly() {
        assert_eq!(decode(&[3, 1, 0, 0, 0, 0]), Err(RecordError::Version(3)));
        assert_eq!(decode(&[1, 9, 0, 0, 0, 0]), Err(RecordError::Kind(9)));
        assert_eq!(decode(&[1, 1, 5, 0]), Err(RecordError::Truncated));
        // Version 2, kind 3, no clusters, one entry of unknown tag 9 holding nothing.
        assert_eq!(
            decode(&[2, 3, 0, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0]),
            Err(RecordError::SettingsTag(9))
        );
        // `add_metric_suffixes` must be 0 or 1.
        assert_eq!(
            decode(&[2, 3, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 0, 0, 0, 7]),
            Err(RecordError::Settings(1))
        );
        // A remote-write record holds no settings; an OTLP metrics record both of its entries.
        assert_eq!(
            decode(&[2, 1, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1, 0, 0, 0, 1]),
            Err(RecordError::Truncated)
        );
        assert_eq!(
            decode(&[2, 1, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 0, 0, 0, 1]),
            Err(RecordError::SettingsForKind(Kind::PromRemoteWriteV1))
        );
        assert_eq!(
            decode(&[2, 3, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 0, 0, 0, 1]),
            Err(RecordError::SettingsForKind(Kind::OtlpMetrics))
        );
        // A settings length beyond the payload.
        assert_eq!(decode(&[2, 3, 0, 0, 0, 0, 6, 0, 0, 0, 1]), Err(RecordError::Truncated));
    }

    /// Records written by the release before settings were stored (version 1, byte for byte as
    /// it wrote them) still read, with no settings: replay then uses the current configuration.
    #[test]
    fn version_1_records_still_read() {
        let mut v1 = vec![1, 3, 3, 0];
        v1.extend_from_slice(b"eu1");
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(b"body");
        assert_eq!(
            decode(&v1).unwrap(),
            Record {
                kind: Kind::OtlpMetrics,
                ctx: ClusterContext {
                    token_cluster: Some("eu1".into()),
                    header_cluster: None,
                },
                translation: None,
                refused: Refused::default(),
                replicas: Replicas::default(),
                body: b"body",
            }
        );
    }

    /// Loki push records written before the log-label settings existed (no settings at all)
    /// replay with both off, as they were acknowledged; records written since carry them.
    #[test]
    fn log_label_settings_are_stored_only_when_on() {
        let v2_before = [2, 5, 0, 0, 0, 0, 0, 0, 0, 0, b'b'];
        let rec = decode(&v2_before).unwrap();
        let t = rec.translation.unwrap();
        assert!(t.discover_service_name.is_empty() && !t.discover_log_levels);

        let now = Translation::from_config(&crate::config::IngestConfig::default());
        let enc = encode(
            Kind::LokiPushJson,
            &ClusterContext::default(),
            &now,
            &Refused::default(),
            &Replicas::default(),
            b"b",
        )
        .unwrap();
        let t = decode(&enc).unwrap().translation.unwrap();
        assert_eq!(t.discover_service_name, now.discover_service_name);
        assert!(t.discover_log_levels);
        // A level flag other than 1 is refused, not guessed.
        let bad = [2, 5, 0, 0, 0, 0, 6, 0, 0, 0, 7, 1, 0, 0, 0, 0, b'b'];
        assert_eq!(decode(&bad), Err(RecordError::Settings(TAG_DISCOVER_LOG_LEVELS)));
    }

    /// Remote-write records pay four bytes for the settings section, nothing more.
    #[test]
    fn remote_write_records_carry_no_settings() {
        let t = Translation::from_config(&crate::config::IngestConfig::default());
        let enc = encode(
            Kind::PromRemoteWriteV1,
            &ClusterContext::default(),
            &t,
            &Refused::default(),
            &Replicas::default(),
            b"xyz",
        )
        .unwrap();
        assert_eq!(&enc[..], &[2, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'x', b'y', b'z']);
    }
}
