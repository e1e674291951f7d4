//! The ingest crate's one error type, with the two facts every protocol surface needs:
//! what kind of failure it is, and whether the client may retry.

/// What went wrong receiving data. The HTTP mapping lives in `http::error`, nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data can never be accepted as sent (bad framing, bad protobuf, invalid labels...).
    #[error("{0}")]
    InvalidInput(String),
    /// Missing or unknown credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A known token without the scope the request needs (no write scope, not admin).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The body is larger than the configured limit (compressed or after decompression).
    #[error("request body too large: {what} is {actual} bytes, the limit is {limit}")]
    PayloadTooLarge {
        /// Which size: the body as sent, or decompressed.
        what: &'static str,
        /// Its size in bytes (or a lower bound).
        actual: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The request's content type or encoding is not one we speak.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Our own pressure (head full, flush behind): retry later.
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// A cluster is over its ingestion rate (`crate::quota`): nothing of the write was stored;
    /// retry after `retry_after`.
    #[error("too many requests: {message}")]
    RateLimited {
        /// Names the limit and the cluster.
        message: String,
        /// When the cluster's tokens will be there.
        retry_after: std::time::Duration,
    },
    /// The write-ahead log could not make the data durable: retry.
    #[error("write-ahead log: {0}")]
    Wal(#[from] crate::wal::WalError),
    /// Object storage failed during a flush.
    #[error("storage: {0}")]
    Storage(#[from] tributary_storage::Error),
    /// Shutting down or not yet ready.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A signal or feature Tributary does not serve (OTLP traces): not retryable, and the
    /// message says what to do instead.
    #[error("{0}")]
    NotImplemented(String),
}

/// The failure classes shared by every protocol surface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unauthorized`].
    Unauthorized,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::PayloadTooLarge`].
    PayloadTooLarge,
    /// See [`Error::UnsupportedMediaType`].
    UnsupportedMediaType,
    /// See [`Error::TooManyRequests`].
    TooManyRequests,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::NotImplemented`].
    NotImplemented,
    /// Our own failure (WAL, storage): retry.
    Internal,
}

impl ErrorKind {
    /// Its name in logs and on the fleet status page: the reason a refused request is counted
    /// and rate-limited under.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not_implemented",
            ErrorKind::Internal => "internal",
        }
    }
}

impl Error {
    /// The failure class, which decides the status on every surface (`http::error`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Error::UnsupportedMediaType(_) => ErrorKind::UnsupportedMediaType,
            Error::TooManyRequests(_) | Error::RateLimited { .. } => ErrorKind::TooManyRequests,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::NotImplemented(_) => ErrorKind::NotImplemented,
            Error::Wal(_) | Error::Storage(_) => ErrorKind::Internal,
        }
    }

    /// How long a retryable failure asks the sender to wait, in whole seconds (at least 1): a
    /// rate limit's own delay, or 5 s for our other pressure.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            _ => self.retryable().then_some(5),
        }
    }

    /// An `[auth]` refusal from the token table as this crate's error (401 or 403).
    pub(crate) fn from_auth(e: tributary_storage::Error) -> Self {
        match e {
            tributary_storage::Error::Unauthenticated { reason } => Error::Unauthorized(reason),
            tributary_storage::Error::Forbidden { reason } => Error::Forbidden(reason),
            other => Error::Storage(other),
        }
    }

    /// May the sender retry the same request and expect a different outcome?
    /// Remote-write senders retry exactly 5xx and 429, so this must agree with the status mapping.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::TooManyRequests | ErrorKind::Unavailable | ErrorKind::Internal
        )
    }
}

/// The ingest crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
