//! Tributary's ingest tier: receive, identify, make durable, hold, flush.
//!
//! Owns: the receivers (HTTP: remote-write 1.0/2.0, OTLP/HTTP, Loki push in [`http`]; OTLP/gRPC
//! in [`grpc`]), decoding protocol bytes into domain types at the edge ([`decode`]), cluster
//! identity and auth ([`cluster`]), limits, the write-ahead log ([`wal`]) and its record format
//! ([`record`]), the in-memory [`head`] (which implements `tributary_storage::read::Source` and
//! `LogSource` for the query engines), and flushing every table to Parquet through
//! `tributary_storage`.
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
pub mod grpc;
pub mod head;
pub mod http;
pub mod ingester;
pub mod metrics;
pub mod record;
pub mod wal;

pub use config::IngestConfig;
pub use error::{Error, Result};
pub use ingester::Ingester;
