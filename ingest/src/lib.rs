//! Tributary's ingest tier: receive, identify, make durable, hold, flush.
//!
//! Owns: the receivers (HTTP: remote-write 1.0/2.0, OTLP/HTTP, Loki push in [`http`]; OTLP/gRPC
//! in [`grpc`]), decoding protocol bytes into one domain batch through one decode table
//! ([`decode`]), cluster identity and auth ([`cluster`]), limits (per request in [`decode`], per
//! cluster in [`quota`]), the write-ahead log ([`wal`])
//! and its record format ([`record`]), the in-memory [`head`] (which implements
//! `tributary_storage::read::Source` and `LogSource` for the query engines), and flushing every
//! table to Parquet through `tributary_storage`.
//!
//! Rooms:
//! - [`http`], [`grpc`]: the surfaces; [`http::error`] is the one place outcomes and errors become
//!   statuses.
//! - [`decode`]: the decode table (`decode.rs`), the domain batch (`decode/batch.rs`), limits,
//!   compression, the protobuf wire reader, and one file (or folder) per protocol:
//!   `remote_write/{v1,v2,labels,histogram,signals,metadata}`, `otlp/{metrics,logs,traces,any_value}`,
//!   `loki`; `log_labels` derives Loki 3's `service_name` and `detected_level` for every log
//!   record.
//! - [`ingester`]: the one write path and replay (decode + the same apply), the gate, flushes.
//! - [`record`]: the WAL record format (the contract replay depends on); [`wal`]: segments,
//!   group commit, replay of segments.
//! - [`head`]: recent data in memory; `head::input` holds the types decoders produce for it and the
//!   known-span invariant.
//! - [`ha_tracker`]: HA pairs: of a cluster's two Prometheus replicas only the elected one's
//!   series are stored, without the replica label (the election lives in the object store,
//!   `tributary_storage::election`; the decision and its cache here).
//! - [`quota`]: per-cluster limits (ingestion rate, active series, sample age) and the one step
//!   that applies them to a decoded write, live or replayed.
//! - [`fleet`]: per-cluster figures of what was received and refused, for the fleet status page
//!   and `/metrics`' `tributary_cluster_*` (read at scrape time by a collector in [`metrics`]).
//! - `rejection`: the rate-limited log line of every refused write (from the one write path, and
//!   from `Ingester::authenticate` for refused tokens).
//! - [`cluster`], [`config`], [`error`], [`metrics`].
//!
//! Adding a protocol: see the checklist in [`decode`] (a `Kind` in [`record`], one decoder file,
//! one line in the decode table, a `Body` constructor and a route, its answer in [`http::error`]).
//!
//! Must not: evaluate queries, build object-store keys or know the Parquet schema (that is
//! `storage`'s), or let protocol types escape [`decode`].
//!
//! The promise: a 2xx is sent only after the request's data is in an fsynced WAL segment, and a
//! segment is deleted only after its data is readable from the object store.

pub mod cluster;
pub mod config;
pub mod decode;
pub mod error;
pub mod fleet;
pub mod grpc;
pub mod ha_tracker;
pub mod head;
pub mod http;
pub mod ingester;
pub mod metrics;
pub mod quota;
pub mod record;
mod rejection;
pub mod wal;

pub use config::IngestConfig;
pub use error::{Error, Result};
pub use ingester::Ingester;
