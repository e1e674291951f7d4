//! The query crate's one error type, and the `ErrorKind` (Prometheus's `errorType`) each
//! error is; `http::error` turns kinds into each API's status codes.

/// What can go wrong answering a query. Messages follow Prometheus's wording where clients
/// (Grafana, promtool, alerting rules) might match on them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The PromQL text does not parse or does not type-check.
    #[error("{}parse error: {message}", at(position))]
    Parse {
        /// The parser's message (LogQL's carries Loki's `at line 1, col 5: ` inside it).
        message: String,
        /// Where in the query text, as Prometheus's 1-based `(line, column)`, when known; shown
        /// before the message the way Prometheus shows it (`1:8: parse error: ...`).
        position: Option<(usize, usize)>,
    },
    /// A request parameter is malformed (HTTP layer and engine entry points).
    #[error("invalid parameter {param:?}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the client sent it (`start`, `match[]`...).
        param: String,
        /// Why its value was refused, in the upstream API's words.
        reason: String,
    },
    /// The query text is longer or more deeply nested than the configuration admits; refused
    /// before it is parsed (see `admission`).
    #[error("query exceeds {option} = {limit}: {found}")]
    QueryLimit {
        /// The configuration option, by its path (`query.max_query_depth`).
        option: String,
        /// The option's configured value.
        limit: usize,
        /// What the query has instead.
        found: String,
    },
    /// The request is well-formed but asks for something PromQL forbids (e.g. a zero step).
    #[error("{0}")]
    BadData(String),
    /// Valid PromQL that this engine does not evaluate yet; never answered with a guess.
    #[error("{feature} is not supported by this engine yet")]
    Unsupported {
        /// The function, modifier or syntax, as a user would search for it.
        feature: String,
    },
    /// Evaluation failed the way Prometheus fails (duplicate label sets, many-to-many matches...).
    #[error("{0}")]
    Execution(String),
    /// The query would hold more samples than `QueryConfig::max_samples`.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// A LogQL range aggregation would read more than `query.logql.max_records` records.
    #[error("the query would read more than {limit} log records; narrow the selector or the time range")]
    TooManyRecords {
        /// The bound it ran into.
        limit: usize,
    },
    /// A trace read would hold more than `query.traces.max_spans` spans.
    #[error(
        "the request would read more than {limit} spans (query.traces.max_spans); narrow the query or the time range"
    )]
    TooManySpans {
        /// The bound it ran into.
        limit: usize,
    },
    /// A limit of the request's token (`[[auth.tokens]]`) refused the query; `what` is the
    /// refusal as it reads without the token (Prometheus's wording where there is one).
    #[error("{what} (token {token:?}: {} = {value})", limit.option())]
    TokenLimit {
        /// The token's name (never the token).
        token: String,
        /// Which of its limits.
        limit: crate::token_limits::TokenLimit,
        /// The limit's configured value.
        value: String,
        /// What went over it.
        what: String,
    },
    /// The query ran past its timeout; names the stage it was in.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The client went away first; names the stage the query was in.
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// A source failed to read.
    #[error("reading series: {0}")]
    Storage(#[from] tributary_storage::Error),
    /// A dependency is temporarily unable to answer.
    #[error("{0}")]
    Unavailable(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The path exists, but not for this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// No token where `auth.required`, or an unknown one (401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A known token without the read scope (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A rule file (or the `[ruler]` section) was refused on load; `line` is 0 when the reason
    /// concerns the whole file.
    #[error("{file}{}: {reason}", if *line > 0 { format!(":{line}") } else { String::new() })]
    RuleFile {
        /// The file, as configured (or `[ruler]`).
        file: String,
        /// The 1-based line the reason concerns, 0 for the whole file.
        line: usize,
        /// Why it was refused.
        reason: String,
    },
    /// An SLO spec (`slo::generate`) is malformed or contradicts itself; the reason names the
    /// field (`slos[0] (name).objective`) or the YAML line.
    #[error("SLO spec: {0}")]
    SloSpec(String),
    /// A bug: an invariant the planner should have guaranteed did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The query crate's result, [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Prometheus's `errorType` vocabulary, which clients switch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    Unavailable,
    NotFound,
    /// The path exists for other methods (405).
    MethodNotAllowed,
    Unauthorized,
    Forbidden,
    /// Over a concurrency limit: retry later (429).
    TooManyRequests,
}

impl ErrorKind {
    /// The `errorType` string of the Prometheus HTTP API.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::TooManyRequests => "too_many_requests",
        }
    }
}

impl Error {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse { .. }
            | Error::InvalidParameter { .. }
            | Error::QueryLimit { .. }
            | Error::BadData(_)
            | Error::RuleFile { .. }
            | Error::SloSpec(_) => ErrorKind::BadData,
            Error::Unsupported { .. }
            | Error::Execution(_)
            | Error::TooManySamples
            | Error::TooManyRecords { .. }
            | Error::TooManySpans { .. } => ErrorKind::Execution,
            Error::TokenLimit { limit, .. } => match limit {
                crate::token_limits::TokenLimit::ConcurrentQueries => ErrorKind::TooManyRequests,
                crate::token_limits::TokenLimit::Samples | crate::token_limits::TokenLimit::Series => {
                    ErrorKind::Execution
                }
                crate::token_limits::TokenLimit::Time => ErrorKind::Timeout,
            },
            // The storage layer's own sample limit is the same user-facing condition as ours.
            Error::Storage(tributary_storage::Error::TooManySamples { .. }) => ErrorKind::Execution,
            Error::Storage(_) | Error::Internal(_) => ErrorKind::Internal,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Canceled(_) => ErrorKind::Canceled,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::MethodNotAllowed(_) => ErrorKind::MethodNotAllowed,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Forbidden(_) => ErrorKind::Forbidden,
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

    pub(crate) fn unsupported(feature: impl Into<String>) -> Self {
        Error::Unsupported {
            feature: feature.into(),
        }
    }

    pub(crate) fn duplicate_labelset() -> Self {
        Error::Execution("vector cannot contain metrics with the same labelset".into())
    }
}

/// A PromQL parse error's `line:column: ` prefix, or nothing without a position.
fn at(position: &Option<(usize, usize)>) -> String {
    position.map_or_else(String::new, |(line, column)| format!("{line}:{column}: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_prometheus_error_types() {
        assert_eq!(
            Error::Parse {
                message: "x".into(),
                position: None
            }
            .kind()
            .as_str(),
            "bad_data"
        );
        assert_eq!(Error::TooManySamples.kind().as_str(), "execution");
        assert_eq!(Error::unsupported("subqueries").kind().as_str(), "execution");
        assert_eq!(Error::Timeout("expression evaluation").kind().as_str(), "timeout");
        let storage = tributary_storage::Error::TooManySamples { limit: 1 };
        assert_eq!(Error::from(storage).kind(), ErrorKind::Execution);
        let corrupt = tributary_storage::Error::Corrupt {
            key: "k".into(),
            reason: "r".into(),
        };
        assert_eq!(Error::from(corrupt).kind(), ErrorKind::Internal);
    }

    #[test]
    fn too_many_samples_uses_prometheus_wording() {
        assert_eq!(
            Error::TooManySamples.to_string(),
            "query processing would load too many samples into memory in query execution"
        );
    }
}
