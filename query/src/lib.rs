//! Tributary's query side: a PromQL engine and the Prometheus HTTP query API.
//!
//! Owns: PromQL evaluation ([`promql::Engine`], Prometheus 3 semantics), merging the readable
//! sources into one ([`source::MergedSource`]), and the `/api/v1/...` endpoints Grafana and other
//! Prometheus clients call ([`http::router`]).
//!
//! Reads only through [`tributary_storage::read::Source`]. Must not know how data was ingested
//! (no `ingest` dependency) or how it is stored (no Parquet or object-store code): the binary
//! hands in the head and the Parquet reader as `Source`s.

pub mod config;
pub mod error;
pub mod http;
pub mod promql;
pub mod source;

#[cfg(test)]
mod test_source;

pub use config::QueryConfig;
pub use error::{Error, ErrorKind, Result};
pub use promql::{Engine, Value, VectorSample};
pub use source::MergedSource;
