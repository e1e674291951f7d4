//! The traces read contract: [`TraceSource`] and what it is asked ([`SpanRequest`]).

use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::signals::{Span, TimestampNs, TraceId};
use crate::types::Matcher;

/// Span-level label names a [`SpanRequest`]'s matchers may name: the span's `cluster` and its
/// resource's `service_name`. A matcher on any other name is an error of the caller's (the
/// engine filters attributes itself).
pub const SPAN_MATCHER_NAMES: [&str; 2] = [crate::types::CLUSTER, "service_name"];

/// What to read from traces: the spans with `start <= span.start < end` whose cluster and
/// service match every matcher, of one trace when `trace_id` is set.
#[derive(Clone, Debug)]
pub struct SpanRequest {
    /// On `cluster` and `service_name` only ([`SPAN_MATCHER_NAMES`]); all must match.
    pub matchers: Vec<Matcher>,
    /// First nanosecond, included.
    pub start: TimestampNs,
    /// End of the range, excluded.
    pub end: TimestampNs,
    /// Only this trace's spans.
    pub trace_id: Option<TraceId>,
    /// Only spans lasting at least this many nanoseconds (a hint a source may use to skip
    /// data; the answer must hold no shorter span).
    pub min_duration: i64,
    /// Only spans this predicate accepts (the engine's TraceQL filter), so a search holds its
    /// matches rather than every span of its range. It does not cross the internal read API:
    /// the client applies it to what an ingester answers.
    pub filter: Option<SpanFilter>,
    /// At most this many spans (the engine's `query.traces.max_spans`): a source that would
    /// answer more fails with [`crate::Error::TooManySamples`] naming the smaller of this and
    /// its own row limit, and stops reading as soon as it knows. `None`: the source's own limit.
    pub limit: Option<usize>,
}

/// A predicate on spans (see [`SpanRequest::filter`]).
#[derive(Clone)]
pub struct SpanFilter(pub Arc<dyn SpanPredicate>);

/// What a [`SpanFilter`] asks of a span.
pub trait SpanPredicate: Send + Sync {
    /// Does `span` match?
    fn matches(&self, span: &Span) -> bool;

    /// Can a span with these fields match? False only when none can, so a source may skip the
    /// row before building its span. The default: maybe.
    fn may_match(&self, _head: &SpanHead<'_>) -> bool {
        true
    }
}

impl<F: Fn(&Span) -> bool + Send + Sync> SpanPredicate for F {
    fn matches(&self, span: &Span) -> bool {
        self(span)
    }
}

/// The narrow fields of a span a source has at hand before it decodes the wide ones.
#[derive(Clone, Copy, Debug)]
pub struct SpanHead<'a> {
    /// [`Span::name`].
    pub name: &'a str,
    /// [`Span::service_name`].
    pub service_name: &'a str,
    /// [`Span::kind`].
    pub kind: i32,
    /// [`Span::status_code`].
    pub status_code: i32,
    /// [`Span::duration`].
    pub duration: i64,
}

impl std::fmt::Debug for SpanFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpanFilter(..)")
    }
}

impl SpanRequest {
    /// Every span in `[start, end)`.
    pub fn range(start: TimestampNs, end: TimestampNs) -> Self {
        Self {
            matchers: Vec::new(),
            start,
            end,
            trace_id: None,
            min_duration: 0,
            filter: None,
            limit: None,
        }
    }

    /// The bound of a source whose own row limit is `own`: the smaller of it and the request's.
    pub fn bound(&self, own: usize) -> usize {
        self.limit.map_or(own, |l| l.min(own))
    }

    /// Fails with [`crate::Error::TooManySamples`] when `n` spans are more than the request's
    /// [`SpanRequest::limit`] admits.
    pub fn check_count(&self, n: usize) -> Result<()> {
        match self.limit {
            Some(limit) if n > limit => Err(crate::Error::TooManySamples { limit }),
            _ => Ok(()),
        }
    }

    /// Does `span` satisfy the request (time, trace, duration, matchers and filter)?
    pub fn admits(&self, span: &Span) -> bool {
        self.admits_before_filter(span) && self.filter.as_ref().is_none_or(|f| f.0.matches(span))
    }

    /// [`SpanRequest::admits`] without the filter: what the internal read API's server checks.
    pub fn admits_before_filter(&self, span: &Span) -> bool {
        span.start >= self.start
            && span.start < self.end
            && self.trace_id.is_none_or(|t| t == span.trace_id)
            && span.duration >= self.min_duration
            && self.matchers.iter().all(|m| match m.name.as_str() {
                crate::types::CLUSTER => m.matches(&span.cluster),
                "service_name" => m.matches(&span.service_name),
                _ => false,
            })
    }
}

/// Sorts spans in the order [`TraceSource::select_spans`] promises (`Span`'s total order: trace,
/// span, start, then every field) and drops exact copies. Every trace source answers through
/// this one function, so a merge of sources deduplicates the same way.
pub fn sort_spans(spans: &mut Vec<Span>) {
    spans.sort_unstable();
    spans.dedup();
}

/// A readable set of spans: the head's, the Parquet spans table's, or a merge.
///
/// # Contract
/// Every implementation must satisfy, and the conformance suite in `test_util`
/// (`trace_source_conformance`) checks against the reference `MemTraceSource`:
/// - [`TraceSource::select_spans`] returns exactly the spans [`SpanRequest::admits`], in
///   [`sort_spans`] order, each distinct span once (a span stored twice — a retried flush, or
///   held by the head and by Parquet during a flush — is returned once; spans differing in any
///   field are all kept).
/// - It fails with [`crate::Error::TooManySamples`] rather than return more spans than the
///   request's [`SpanRequest::limit`] or the source's own row limit.
#[async_trait]
pub trait TraceSource: Send + Sync + std::fmt::Debug {
    /// The spans `req` admits, sorted and distinct (see the contract above).
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>>;
}
