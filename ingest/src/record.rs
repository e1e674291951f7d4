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
//! # Format (version 1), all integers little-endian
//! ```text
//! u8  format version = 1
//! u8  kind           1 = Prometheus remote-write 1.0 `prometheus.WriteRequest`, snappy block
//!                    2 = Prometheus remote-write 2.0 `io.prometheus.write.v2.Request`, snappy block
//!                    3 = OTLP `ExportMetricsServiceRequest` protobuf, snappy block
//!                    4 = OTLP `ExportLogsServiceRequest` protobuf, snappy block
//!                    5 = Loki push `logproto.PushRequest` protobuf, snappy block (as received)
//!                    6 = Loki push JSON, snappy block
//! u16 token cluster length  T, then T bytes UTF-8   (0 = none)
//! u16 header cluster length H, then H bytes UTF-8   (0 = none)
//! ... the request body, to the end of the payload
//! ```
//! OTLP bodies are stored as protobuf whatever they arrived as (JSON is re-encoded, gzip undone),
//! snappy-compressed so the WAL holds ~1/5 of the raw size. New kinds get new numbers; a reader that meets an unknown version or kind fails replay loudly
//! rather than skipping acknowledged data.

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::ClusterContext;

const VERSION: u8 = 1;

/// Which decoder a record's body goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    PromRemoteWriteV1 = 1,
    PromRemoteWriteV2 = 2,
    OtlpMetrics = 3,
    OtlpLogs = 4,
    LokiPushProtobuf = 5,
    LokiPushJson = 6,
}

/// A decoded record, borrowing its body from the payload.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    pub kind: Kind,
    pub ctx: ClusterContext,
    pub body: &'a [u8],
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("WAL record too short")]
    Truncated,
    #[error("unknown WAL record version {0}")]
    Version(u8),
    #[error("unknown WAL record kind {0}")]
    Kind(u8),
    #[error("WAL record cluster name is not UTF-8")]
    Utf8,
    #[error("cluster name longer than 65535 bytes")]
    ClusterTooLong,
}

pub fn encode(kind: Kind, ctx: &ClusterContext, body: &[u8]) -> Result<Bytes, RecordError> {
    let t = ctx.token_cluster.as_deref().unwrap_or("");
    let h = ctx.header_cluster.as_deref().unwrap_or("");
    let (tl, hl) = (
        u16::try_from(t.len()).map_err(|_| RecordError::ClusterTooLong)?,
        u16::try_from(h.len()).map_err(|_| RecordError::ClusterTooLong)?,
    );
    let mut b = BytesMut::with_capacity(6 + t.len() + h.len() + body.len());
    b.put_u8(VERSION);
    b.put_u8(kind as u8);
    b.put_u16_le(tl);
    b.put_slice(t.as_bytes());
    b.put_u16_le(hl);
    b.put_slice(h.as_bytes());
    b.put_slice(body);
    Ok(b.freeze())
}

pub fn decode(p: &[u8]) -> Result<Record<'_>, RecordError> {
    let (&version, rest) = p.split_first().ok_or(RecordError::Truncated)?;
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let (&kind, rest) = rest.split_first().ok_or(RecordError::Truncated)?;
    let kind = match kind {
        1 => Kind::PromRemoteWriteV1,
        2 => Kind::PromRemoteWriteV2,
        3 => Kind::OtlpMetrics,
        4 => Kind::OtlpLogs,
        5 => Kind::LokiPushProtobuf,
        6 => Kind::LokiPushJson,
        k => return Err(RecordError::Kind(k)),
    };
    let (token, rest) = take_str(rest)?;
    let (header, body) = take_str(rest)?;
    Ok(Record {
        kind,
        ctx: ClusterContext {
            token_cluster: token,
            header_cluster: header,
        },
        body,
    })
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

    proptest! {
        #[test]
        fn round_trips(t in proptest::option::of("[a-z-]{1,20}"), h in proptest::option::of("[a-z-]{1,20}"),
                       kind in proptest::sample::select(vec![Kind::PromRemoteWriteV1, Kind::PromRemoteWriteV2, Kind::OtlpMetrics, Kind::OtlpLogs, Kind::LokiPushProtobuf, Kind::LokiPushJson]),
                       body in proptest::collection::vec(any::<u8>(), 0..100)) {
            let ctx = ClusterContext { token_cluster: t, header_cluster: h };
            let enc = encode(kind, &ctx, &body).unwrap();
            let dec = decode(&enc).unwrap();
            prop_assert_eq!(dec, Record { kind, ctx, body: &body });
        }

        #[test]
        fn arbitrary_bytes_never_panic(p in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&p);
        }
    }

    #[test]
    fn unknown_versions_and_kinds_fail_loudly() {
        assert_eq!(decode(&[2, 1, 0, 0, 0, 0]), Err(RecordError::Version(2)));
        assert_eq!(decode(&[1, 9, 0, 0, 0, 0]), Err(RecordError::Kind(9)));
        assert_eq!(decode(&[1, 1, 5, 0]), Err(RecordError::Truncated));
    }
}
