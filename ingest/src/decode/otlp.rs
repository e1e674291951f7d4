//! OTLP: request bodies (protobuf or OTLP/JSON) to the generated `opentelemetry-proto` types and
//! back to the protobuf bytes the WAL keeps (whatever encoding they arrived in), and the
//! translations: [`metrics`] (Prometheus's), [`logs`] (Loki's) and [`traces`] (spans), which
//! render attribute values through the one `any_value` module and name a resource's cluster
//! through the one `resource_cluster`.

pub(crate) mod any_value;
pub mod logs;
pub mod metrics;
pub mod traces;

use prost::Message;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

use tributary_proto::otlp::common::v1::{AnyValue, KeyValue};

use crate::cluster::{ClusterContext, Stamp};
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

    /// The `Content-Type` a response in this format carries.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
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

impl OtlpRequest for ExportTraceServiceRequest {
    const NAME: &'static str = "ExportTraceServiceRequest";
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
    super::compression::snappy_compress(&req.encode_to_vec())
}

/// The value of the last attribute named `key` (later duplicates win, as everywhere here).
pub(crate) fn last_value<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// A resource's cluster by the cluster rule (`crate::cluster`): the token's, else its
/// `k8s.cluster.name` attribute, else the header's; with the sender's own value when a token
/// overrode it (logs keep it as `exported_cluster`). `Err` says why none, or why refused.
pub(crate) fn resource_cluster(
    attrs: &[KeyValue],
    ctx: &ClusterContext,
) -> std::result::Result<(String, Option<String>), String> {
    let own = last_value(attrs, logs::CLUSTER_ATTRIBUTE)
        .map(|v| any_value::log_text(v).unwrap_or_default())
        .filter(|c| !c.is_empty());
    match ctx.decide(own.as_deref())? {
        Some(Stamp::Keep) => Ok((own.unwrap_or_default(), None)),
        Some(Stamp::Insert(c)) => Ok((c.to_string(), None)),
        Some(Stamp::Replace { cluster, exported }) => Ok((cluster.to_string(), Some(exported.to_string()))),
        None => Err(format!(
            "no cluster: set the resource attribute {} (e.g. with the collector's resource or \
             k8sattributes processor), send the X-Tributary-Cluster header (or the configured \
             cluster_header), or authenticate with a token mapped to a cluster",
            logs::CLUSTER_ATTRIBUTE
        )),
    }
}

/// The inverse of [`to_wal_body`], for replay. `bound` caps the decompressed size.
pub fn from_wal_body<R: OtlpRequest>(body: &[u8], bound: usize) -> Result<R> {
    let raw = super::compression::snappy_block(body, bound)?;
    parse(&raw, BodyFormat::Protobuf)
}

#[cfg(test)]
mod tests {
    use super::*;

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
