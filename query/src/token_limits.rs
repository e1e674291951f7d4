//! A token's own query limits (`[[auth.tokens]]`: `max_concurrent_queries`, `max_samples`,
//! `max_series`, `query_timeout`), applied to the requests made with it.
//!
//! Each limit a token sets tightens the global bound of the same name and never loosens it: the
//! engine a request reads with ([`crate::promql::Engine::limited`],
//! [`crate::logql::LogqlEngine::limited`]) runs under the smaller of the two, so the checks are
//! the global ones, where they already are (samples as points are made, the deadline around
//! every read). What this module adds is the refusal: when the token's bound is the one that
//! was hit, the error names the token and its limit ([`Error::TokenLimit`]) and is counted on
//! `/metrics` (`tributary_query_token_refusals_total{token, limit}`, the token by its entry's
//! `name`, never by its secret). Series returned have no global counterpart: a query or series
//! listing answering more than `max_series` fails with a 422, never a silent cut.
//!
//! Concurrency: a request with a limited token holds one of the token's permits from the moment
//! its token is checked until its handler returns (`take_slot`); with none free it is
//! refused at once with a 429, never queued.

use std::fmt::Display;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tributary_storage::auth::Identity;

use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;

/// The token limits a request can run into, by their `[[auth.tokens]]` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenLimit {
    /// `max_concurrent_queries`.
    ConcurrentQueries,
    /// `max_samples`.
    Samples,
    /// `max_series`.
    Series,
    /// `query_timeout`.
    Time,
}

impl TokenLimit {
    /// The option's name in `[[auth.tokens]]` (and the `limit` label on `/metrics`).
    pub fn option(self) -> &'static str {
        match self {
            TokenLimit::ConcurrentQueries => "max_concurrent_queries",
            TokenLimit::Samples => "max_samples",
            TokenLimit::Series => "max_series",
            TokenLimit::Time => "query_timeout",
        }
    }
}

/// The limits of one request's token that are tighter than the global ones, and where its
/// refusals are counted.
#[derive(Clone, Debug)]
pub(crate) struct TokenLimits {
    token: String,
    /// Set only when below the global sample (LogQL: record; traces: span) bound.
    max_samples: Option<usize>,
    max_series: Option<usize>,
    /// Set only when below the global timeout.
    timeout: Option<Duration>,
    metrics: QueryMetrics,
}

impl TokenLimits {
    /// `id`'s limits over an engine whose own bounds are `samples` and `timeout`.
    pub(crate) fn new(id: &Identity, samples: usize, timeout: Duration, metrics: QueryMetrics) -> Self {
        let q = &id.query;
        Self {
            token: id.name.clone(),
            max_samples: q.max_samples.filter(|&n| n < samples),
            max_series: q.max_series,
            timeout: q.query_timeout.filter(|&t| t < timeout),
            metrics,
        }
    }

    /// The sample bound to run under: the token's when tighter.
    pub(crate) fn samples(&self, global: usize) -> usize {
        self.max_samples.unwrap_or(global)
    }

    /// The timeout to run under: the token's when tighter.
    pub(crate) fn timeout(&self, global: Duration) -> Duration {
        self.timeout.unwrap_or(global)
    }

    /// `e` as the token's refusal when the token's bound is the one it ran into: too many
    /// samples (or records) under the token's `max_samples`, or a timeout under its
    /// `query_timeout` unless the request asked for a `timeout` of its own no longer than that.
    pub(crate) fn attribute(&self, e: Error, requested_timeout: Option<Duration>) -> Error {
        match (&e, self.max_samples, self.timeout) {
            (
                Error::TooManySamples
                | Error::TooManyRecords { .. }
                | Error::TooManySpans { .. }
                | Error::Storage(tributary_storage::Error::TooManySamples { .. }),
                Some(n),
                _,
            ) => self.refuse(TokenLimit::Samples, n, e.to_string()),
            (Error::Timeout(_), _, Some(t)) if requested_timeout.is_none_or(|r| r > t) => {
                self.refuse(TokenLimit::Time, format!("{t:?}"), e.to_string())
            }
            _ => e,
        }
    }

    /// Refuses an answer of more than `max_series` series (`what` says of what).
    pub(crate) fn check_series(&self, n: usize, what: &str) -> Result<()> {
        match self.max_series {
            Some(max) if n > max => Err(self.refuse(
                TokenLimit::Series,
                max,
                format!(
                    "the {what} has {n} series, more than this token may receive: narrow the query or the time range"
                ),
            )),
            _ => Ok(()),
        }
    }

    fn refuse(&self, limit: TokenLimit, value: impl Display, what: String) -> Error {
        self.metrics.token_refused(&self.token, limit);
        Error::TokenLimit {
            token: self.token.clone(),
            limit,
            value: value.to_string(),
            what,
        }
    }
}

/// One of the token's concurrency permits, held for as long as the request runs: `None` for a
/// token without `max_concurrent_queries`; a 429 refusal when all are taken.
pub(crate) fn take_slot(id: &Identity, metrics: &QueryMetrics) -> Result<Option<OwnedSemaphorePermit>> {
    let (Some(slots), Some(max)) = (&id.query.slots, id.query.max_concurrent_queries) else {
        return Ok(None);
    };
    match slots.clone().try_acquire_owned() {
        Ok(permit) => Ok(Some(permit)),
        Err(_) => {
            metrics.token_refused(&id.name, TokenLimit::ConcurrentQueries);
            Err(Error::TokenLimit {
                token: id.name.clone(),
                limit: TokenLimit::ConcurrentQueries,
                value: max.to_string(),
                what: format!("too many concurrent queries: this token already runs {max}; retry when one ends"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tributary_storage::auth::QueryLimits;

    use super::*;

    fn identity(limits: QueryLimits) -> Identity {
        Identity {
            name: "ci".into(),
            query: limits,
            ..Identity::default()
        }
    }

    /// Only a bound tighter than the global one is the token's: a looser one changes nothing.
    #[test]
    fn a_token_only_tightens() {
        let id = identity(QueryLimits {
            max_samples: Some(100),
            query_timeout: Some(Duration::from_secs(600)),
            ..QueryLimits::default()
        });
        let limits = TokenLimits::new(&id, 1000, Duration::from_secs(120), QueryMetrics::default());
        assert_eq!(limits.samples(1000), 100);
        assert_eq!(limits.timeout(Duration::from_secs(120)), Duration::from_secs(120));
        // A timeout is the global one's, not the token's.
        let e = limits.attribute(Error::Timeout("query execution"), None);
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        let looser = TokenLimits::new(&id, 10, Duration::from_secs(120), QueryMetrics::default());
        assert_eq!(looser.samples(10), 10);
        assert!(matches!(
            looser.attribute(Error::TooManySamples, None),
            Error::TooManySamples
        ));
    }

    #[test]
    fn refusals_name_the_token_and_its_limit_and_are_counted() {
        let metrics = QueryMetrics::default();
        let id = identity(QueryLimits {
            max_samples: Some(100),
            max_series: Some(2),
            query_timeout: Some(Duration::from_secs(1)),
            ..QueryLimits::default()
        });
        let limits = TokenLimits::new(&id, 1000, Duration::from_secs(120), metrics.clone());
        let e = limits.attribute(Error::TooManySamples, None);
        assert_eq!(e.kind().as_str(), "execution");
        let text = e.to_string();
        assert!(
            text.starts_with("query processing would load too many samples into memory in query execution"),
            "{text}"
        );
        assert!(
            text.contains(r#"token "ci""#) && text.contains("max_samples = 100"),
            "{text}"
        );

        let e = limits.attribute(Error::Timeout("query execution"), None);
        assert_eq!(e.kind().as_str(), "timeout");
        assert!(e.to_string().contains("query_timeout = 1s"), "{e}");
        // The request's own shorter timeout is its own.
        let own = limits.attribute(Error::Timeout("query execution"), Some(Duration::from_millis(10)));
        assert!(matches!(own, Error::Timeout(_)));

        limits.check_series(2, "answer").unwrap();
        let e = limits.check_series(3, "answer").unwrap_err();
        assert_eq!(e.kind().as_str(), "execution");
        assert!(e.to_string().contains("max_series = 2"), "{e}");

        assert_eq!(metrics.token_refusals("ci", TokenLimit::Samples), 1);
        assert_eq!(metrics.token_refusals("ci", TokenLimit::Time), 1);
        assert_eq!(metrics.token_refusals("ci", TokenLimit::Series), 1);
    }

    #[test]
    fn a_token_at_its_concurrency_limit_is_refused_until_a_query_ends() {
        let metrics = QueryMetrics::default();
        let id = identity(QueryLimits {
            max_concurrent_queries: Some(1),
            slots: Some(Arc::new(tokio::sync::Semaphore::new(1))),
            ..QueryLimits::default()
        });
        let first = take_slot(&id, &metrics).unwrap();
        assert!(first.is_some());
        let e = take_slot(&id, &metrics).unwrap_err();
        assert_eq!(e.kind().as_str(), "too_many_requests");
        assert!(e.to_string().contains("max_concurrent_queries = 1"), "{e}");
        assert_eq!(metrics.token_refusals("ci", TokenLimit::ConcurrentQueries), 1);
        drop(first);
        assert!(take_slot(&id, &metrics).unwrap().is_some());
        assert!(
            take_slot(&identity(QueryLimits::default()), &metrics)
                .unwrap()
                .is_none()
        );
    }
}
