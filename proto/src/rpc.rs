//! `google.rpc.Status` (googleapis `google/rpc/status.proto`): the body OTLP/HTTP servers send
//! with a 4xx/5xx. `details` (repeated `google.protobuf.Any`, field 3) is never sent by us, so it
//! is left out.

/// A status code (gRPC's numbering) and a developer-facing message.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}
