//! The storage crate's one error type.

use std::path::PathBuf;

/// What can go wrong storing or reading data. Every variant says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `storage.url` could not be turned into an object store.
    #[error("invalid storage URL {url:?}: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An object-store request failed.
    #[error("object store {op} {key}: {source}")]
    ObjectStore {
        /// The request (`put`, `list`, ...).
        op: &'static str,
        /// The object key (or listing prefix).
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// Encoding or decoding a Parquet file failed.
    #[error("parquet {op} {key}: {source}")]
    Parquet {
        /// What was being done (`read footer`, `decode`, ...).
        op: &'static str,
        /// The file's object key.
        key: String,
        /// The decoder's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building Arrow arrays or batches failed.
    #[error("arrow {op}: {source}")]
    Arrow {
        /// What was being built.
        op: &'static str,
        /// Arrow's error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A stored file does not hold what its table's schema promises.
    #[error("corrupt data in {key}: {reason}")]
    Corrupt {
        /// The file's object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A local file-system operation failed.
    #[error("io {op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Data the layout cannot store (a timestamp outside years 0000-9999, a bad option).
    #[error("cannot store data: {reason}")]
    InvalidData {
        /// What cannot be stored, and why.
        reason: String,
    },
    /// A spawned task (encode, scan) failed or was cancelled.
    #[error("{op}: background task failed: {reason}")]
    Task {
        /// What the task was doing.
        op: &'static str,
        /// How it failed.
        reason: String,
    },
    /// Creating a manifest version failed without a clear answer (a timeout, a reset, and the
    /// version could not be read back): the commit may or may not have landed. A writer must
    /// reload the manifest before writing the same rows again.
    #[error("manifest commit {key} may or may not have landed: {source}")]
    CommitUncertain {
        /// The version's object key.
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A manifest commit lost to a concurrent one that removed the same files.
    #[error("manifest conflict: {reason}")]
    Conflict {
        /// What conflicted.
        reason: String,
    },
    /// The `[auth]` section or the token file is invalid.
    #[error("invalid auth configuration: {reason}")]
    InvalidAuth {
        /// What is wrong, and where.
        reason: String,
    },
    /// A request carries no token where one is required, or an unknown one (HTTP 401).
    #[error("unauthenticated: {reason}")]
    Unauthenticated {
        /// Why, for the client.
        reason: String,
    },
    /// A known token lacks the scope a request needs (HTTP 403).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Which scope is missing, for the client.
        reason: String,
    },
    /// A peer (an ingester read through the internal read API, `crate::remote`) did not answer,
    /// or answered with an error.
    #[error("ingester {peer} unavailable: {reason}")]
    Unavailable {
        /// The peer's address.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// A read would return more samples (or log records) than `storage.max_select_samples`.
    #[error("query would read too many samples ({limit} is the limit)")]
    TooManySamples {
        /// The configured limit.
        limit: usize,
    },
}

/// A result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
