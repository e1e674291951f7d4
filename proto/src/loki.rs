//! Loki's push API: `logproto.PushRequest` from grafana/loki `pkg/push/push.proto` (package
//! `logproto`; the shape Promtail, Grafana Alloy and Fluent Bit's `loki` output send; field numbers
//! checked against grafana/loki's main branch (v3.x), `structuredMetadata` = 3 dating from v2.9;
//! older senders simply omit it). The body of `POST /loki/api/v1/push` with `Content-Type: application/x-protobuf`
//! is the snappy *block* encoding of [`PushRequest`].
//!
//! Two deliberate departures from the `.proto`, neither visible on the wire:
//! - Its `string` fields are declared `bytes` here (the same wire type, 2). Loki decodes with
//!   gogoproto, which does not check UTF-8, so senders tailing files can and do send lines that are
//!   not UTF-8. `prost` would fail the *whole* request on such a `string` (`invalid string value:
//!   data is not UTF-8 encoded`), and a 400 makes Promtail drop the batch; as `bytes`, the decoder
//!   (`ingest::decode::loki`) checks each line and rejects only the bad entries.
//! - Fields no client sends are left out, so they are skipped as unknown fields:
//!   `PushRequest.format` = 2 (Loki-internal, "loki" or "otlp") and `EntryAdapter.parsed` = 4
//!   (query responses only).

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream, its label set as text (`{a="b", c="d"}`) and its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// `string labels = 1`, in Prometheus label-set syntax with Go-quoted values.
    #[prost(bytes = "vec", tag = "1")]
    pub labels: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// The sender's hash of the labels; informational only.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.LabelPairAdapter`: one structured-metadata pair.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct LabelPairAdapter {
    /// `string name = 1`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// `string value = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `logproto.EntryAdapter`: one log line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// Loki declares it non-nullable, so Go senders always encode it; absent means the epoch.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// `string line = 2`.
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// `repeated LabelPairAdapter structuredMetadata = 3`.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp` (`google/protobuf/timestamp.proto`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Non-negative fraction of a second, 0..=999_999_999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}
