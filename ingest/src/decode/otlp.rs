//! OTLP request bodies: undo the content encoding, parse protobuf or JSON, and turn the request
//! back into the protobuf bytes the WAL keeps (whatever encoding it arrived in).
//!
//! The translations themselves live in [`super::otlp_metrics`] and [`super::otlp_logs`]; this
//! module only gets a request from bytes to the generated `opentelemetry-proto` types and back.

use std::io::Read;

use prost::Message;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;

use crate::error::{Error, Result};

/// How an OTLP/HTTP body is serialised (`Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, integer enums, 64-bit integers possibly as strings)
    Json,
}

impl BodyFormat {
    /// From a `Content-Type` header value; `None` when OTLP/HTTP does not define it.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Gzip decompression that refuses to produce more than `limit` bytes, so a small bomb cannot
/// allocate gigabytes before we notice.
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| Error::InvalidInput(format!("body is not valid gzip: {e}"));
    let first = body.len().saturating_mul(4).min(limit);
    let mut out = Vec::with_capacity(first);
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit as u64 + 1);
    (&mut reader).take(first as u64).read_to_end(&mut out).map_err(bad)?;
    if out.len() == first {
        // More may follow: grow once to the limit (pages are only touched as they are written)
        // rather than doubling, which at the limit would hold the old buffer and a new one of
        // twice its size.
        // Only for sane limits: a huge configured one must not reserve that much address space.
        let rest = limit.saturating_add(1).saturating_sub(out.len());
        if rest <= 1 << 30 {
            out.reserve_exact(rest);
        }
        reader.read_to_end(&mut out).map_err(bad)?;
    }
    if out.len() > limit {
        return Err(Error::PayloadTooLarge {
            what: "decompressed body",
            actual: out.len(),
            limit,
        });
    }
    Ok(out)
}

/// A request type OTLP exports: protobuf-decodable and serde-decodable (OTLP/JSON).
pub trait OtlpRequest: Message + Default + serde::de::DeserializeOwned {
    /// For error messages.
    const NAME: &'static str;
}

impl OtlpRequest for ExportMetricsServiceRequest {
    const NAME: &'static str = "ExportMetricsServiceRequest";
}

impl OtlpRequest for ExportLogsServiceRequest {
    const NAME: &'static str = "ExportLogsServiceRequest";
}

/// Parses an (already decompressed) body.
pub fn parse<R: OtlpRequest>(body: &[u8], format: BodyFormat) -> Result<R> {
    match format {
        BodyFormat::Protobuf => {
            R::decode(body).map_err(|e| Error::InvalidInput(format!("body is not a valid protobuf {}: {e}", R::NAME)))
        }
        BodyFormat::Json => serde_json::from_slice(body)
            .map_err(|e| Error::InvalidInput(format!("body is not a valid OTLP/JSON {}: {e}", R::NAME))),
    }
}

/// The WAL form of a request: snappy-compressed protobuf.
pub fn to_wal_body<R: Message>(req: &R) -> Result<Vec<u8>> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .map_err(|e| Error::InvalidInput(format!("cannot compress request for the WAL: {e}")))
}

/// The inverse of [`to_wal_body`], for replay. `bound` caps the decompressed size.
pub fn from_wal_body<R: OtlpRequest>(body: &[u8], bound: usize) -> Result<R> {
    let raw = super::snappy_block(body, bound)?;
    parse(&raw, BodyFormat::Protobuf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_limits_output() {
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(Error::PayloadTooLarge { .. })));
        assert_eq!(gunzip(&bomb, 8 << 20).unwrap().len(), 8 << 20);
        assert!(matches!(gunzip(b"not gzip", 1 << 20), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type("application/x-protobuf"),
            Some(BodyFormat::Protobuf)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/json; charset=utf-8"),
            Some(BodyFormat::Json)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    }

    #[test]
    fn json_and_protobuf_parse_to_the_same_request_and_survive_the_wal() {
        let json = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
            "scopeMetrics":[{"metrics":[{"name":"up","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1.5}]}}]}]}]}"#;
        let from_json: ExportMetricsServiceRequest = parse(json, BodyFormat::Json).unwrap();
        let pb = from_json.encode_to_vec();
        let from_pb: ExportMetricsServiceRequest = parse(&pb, BodyFormat::Protobuf).unwrap();
        assert_eq!(from_json, from_pb);
        let wal = to_wal_body(&from_pb).unwrap();
        let back: ExportMetricsServiceRequest = from_wal_body(&wal, 1 << 20).unwrap();
        assert_eq!(back, from_pb);
        let m = &back.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!(m.name, "up");
    }

    #[test]
    fn garbage_is_invalid_input() {
        let r: Result<ExportLogsServiceRequest> = parse(b"\xff\xff\xff", BodyFormat::Protobuf);
        assert!(matches!(r, Err(Error::InvalidInput(_))));
        let r: Result<ExportLogsServiceRequest> = parse(b"{\"resourceLogs\": 3}", BodyFormat::Json);
        assert!(matches!(r, Err(Error::InvalidInput(_))));
    }
}
