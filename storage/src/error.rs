//! The storage crate's one error type.

use std::path::PathBuf;

/// What can go wrong storing or reading data. Every variant says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("object store {op} {key}: {source}")]
    ObjectStore {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("parquet {op} {key}: {source}")]
    Parquet {
        op: &'static str,
        key: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("arrow {op}: {source}")]
    Arrow {
        op: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },
    #[error("corrupt data in {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("io {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot store data: {reason}")]
    InvalidData { reason: String },
    #[error("{op}: background task failed: {reason}")]
    Task { op: &'static str, reason: String },
    #[error("query would read too many samples ({limit} is the limit)")]
    TooManySamples { limit: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
