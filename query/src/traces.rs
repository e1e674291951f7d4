//! Traces read back: [`MergedTraceSource`] (the head's and the Parquet table's spans as one
//! [`TraceSource`]) and the [`TraceEngine`] the Tempo and Jaeger APIs call (`http::tempo_api`,
//! `http::jaeger_api`): a trace by id, TraceQL search (`traceql`), tag listings, services
//! and operations, each read under the request's cluster scope.
//!
//! Spans are returned as the storage contract gives them; `otlp` turns a trace into OTLP's
//! `ResourceSpans` (what Tempo answers), grouping spans by resource and scope.

pub(crate) mod otlp;
pub(crate) mod traceql;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use tributary_storage::read::{SpanFilter, SpanHead, SpanPredicate, SpanRequest, TraceSource, sort_spans};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::{Span, TimestampNs, TraceId};
use tributary_storage::types::Matcher;

use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;

/// Reads every source and merges their answers (a span in the head and in a just-flushed file
/// is returned once).
#[derive(Debug, Clone)]
pub struct MergedTraceSource {
    sources: Vec<Arc<dyn TraceSource>>,
}

impl MergedTraceSource {
    /// A source over `sources` (the head's and the Parquet table's).
    pub fn new(sources: Vec<Arc<dyn TraceSource>>) -> Self {
        Self { sources }
    }
}

#[async_trait]
impl TraceSource for MergedTraceSource {
    async fn select_spans(&self, req: &SpanRequest) -> tributary_storage::Result<Vec<Span>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.select_spans(req))).await?;
        let mut all: Vec<Span> = parts.into_iter().flatten().collect();
        sort_spans(&mut all);
        Ok(all)
    }
}

/// One trace a search found: its spans (all of them, for the summary) and how many matched.
#[derive(Debug, Clone)]
pub struct FoundTrace {
    /// The trace.
    pub trace_id: TraceId,
    /// Every span of the trace starting within an hour of the searched range, sorted.
    pub spans: Vec<Span>,
    /// Indexes into `spans` of the spans the filter matched.
    pub matched: Vec<usize>,
}

impl FoundTrace {
    /// The root span (no parent), else the earliest.
    pub fn root(&self) -> Option<&Span> {
        self.spans
            .iter()
            .find(|s| s.parent_span_id == [0; 8])
            .or_else(|| self.spans.iter().min_by_key(|s| s.start))
    }

    /// First start to last end.
    pub fn bounds(&self) -> (TimestampNs, TimestampNs) {
        let start = self.spans.iter().map(|s| s.start).min().unwrap_or(0);
        let end = self.spans.iter().map(Span::end).max().unwrap_or(start);
        (start, end)
    }
}

/// A search: a TraceQL filter (or Jaeger-style criteria turned into one), a time range and a
/// limit on traces.
#[derive(Debug, Clone)]
pub struct Search {
    /// TraceQL text (`{}` for every span).
    pub query: String,
    /// Spans starting in `[start, end)`.
    pub start: TimestampNs,
    /// End of the range, excluded.
    pub end: TimestampNs,
    /// At most this many traces, the most recent first.
    pub limit: usize,
    /// Only traces whose matched spans last at least / at most this long (ns).
    pub min_duration: Option<i64>,
    /// See `min_duration`.
    pub max_duration: Option<i64>,
}

/// The trace query engine: one source, read under a cluster scope.
#[derive(Debug, Clone)]
pub struct TraceEngine {
    source: Arc<dyn TraceSource>,
    scope: Option<Matcher>,
    metrics: QueryMetrics,
}

impl TraceEngine {
    /// An engine over `source`, counting refusals in `metrics`.
    pub fn new(source: Arc<dyn TraceSource>, metrics: QueryMetrics) -> Self {
        Self {
            source,
            scope: None,
            metrics,
        }
    }

    /// The same engine reading only the clusters `scope` admits.
    pub fn scoped(&self, scope: &ClusterScope) -> Self {
        Self {
            scope: Some(scope.to_matcher()),
            ..self.clone()
        }
    }

    /// Where refusals are counted.
    pub(crate) fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    async fn read(&self, mut req: SpanRequest) -> Result<Vec<Span>> {
        req.matchers.extend(self.scope.clone());
        self.source.select_spans(&req).await.map_err(Error::from)
    }

    /// Every span of trace `id` starting in `[start, end)`; `NotFound` when there is none.
    pub async fn trace(&self, id: TraceId, start: TimestampNs, end: TimestampNs) -> Result<Vec<Span>> {
        let spans = self
            .read(SpanRequest {
                trace_id: Some(id),
                ..SpanRequest::range(start, end)
            })
            .await?;
        if spans.is_empty() {
            return Err(Error::NotFound(format!(
                "trace not found: {}",
                tributary_storage::signals::hex_id(&id)
            )));
        }
        Ok(spans)
    }

    /// The traces whose spans match `search`, most recent first, at most `search.limit`.
    ///
    /// Two reads: the matching spans of the range (the filter travels with the request, so a
    /// source keeps only matches; a top-level `resource.service.name` condition becomes a
    /// `service_name` matcher and a `duration` floor the request's), then each found trace
    /// whole, within an hour either side of the range, for its root and bounds.
    pub async fn search(&self, search: &Search) -> Result<Vec<FoundTrace>> {
        let filter = Arc::new(traceql::parse(&search.query)?);
        let predicate = Predicate {
            filter: filter.clone(),
            min: search.min_duration,
            max: search.max_duration,
        };
        let matched = self
            .read(SpanRequest {
                matchers: filter.service_matchers(),
                min_duration: filter.min_duration().max(search.min_duration.unwrap_or(0)),
                filter: Some(SpanFilter(Arc::new(predicate.clone()))),
                ..SpanRequest::range(search.start, search.end)
            })
            .await?;
        // Matches come sorted by trace: each run is one trace; the newest first.
        let mut traces: Vec<(TimestampNs, TraceId)> = Vec::new();
        for run in matched.chunk_by(|a, b| a.trace_id == b.trace_id) {
            traces.push((run.iter().map(|s| s.start).min().unwrap_or(0), run[0].trace_id));
        }
        traces.sort_unstable_by(|a, b| b.cmp(a));
        traces.truncate(search.limit);
        let around = (search.start.saturating_sub(HOUR_NS), search.end.saturating_add(HOUR_NS));
        let whole = futures::stream::iter(traces.into_iter().map(|(_, id)| self.trace(id, around.0, around.1)))
            .buffered(LOOKUPS_AT_ONCE)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(whole
            .into_iter()
            .map(|spans| FoundTrace {
                trace_id: spans[0].trace_id,
                matched: spans
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.start >= search.start && s.start < search.end && predicate.matches(s))
                    .map(|(i, _)| i)
                    .collect(),
                spans,
            })
            .collect())
    }

    /// Attribute keys by scope (`resource`, `span`) of the spans in `[start, end)`.
    pub async fn tag_names(
        &self,
        start: TimestampNs,
        end: TimestampNs,
    ) -> Result<BTreeMap<&'static str, BTreeSet<String>>> {
        let spans = self.read(SpanRequest::range(start, end)).await?;
        let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for s in &spans {
            for (scope, json) in [("resource", &s.resource_attributes), ("span", &s.attributes)] {
                let keys = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).unwrap_or_default();
                out.entry(scope).or_default().extend(keys.into_iter().map(|(k, _)| k));
            }
        }
        Ok(out)
    }

    /// The distinct values of tag `name` (TraceQL-scoped `resource.x`, `span.x`, `.x`, or an
    /// intrinsic: `name`, `status`, `kind`; a bare `x` as `.x`), as text, with their types.
    pub async fn tag_values(
        &self,
        name: &str,
        start: TimestampNs,
        end: TimestampNs,
    ) -> Result<BTreeSet<(String, String)>> {
        let spans = self.read(SpanRequest::range(start, end)).await?;
        let mut out = BTreeSet::new();
        for s in &spans {
            let value: Option<serde_json::Value> = match name {
                "name" => Some(s.name.clone().into()),
                "status" => Some(["unset", "ok", "error"][s.status_code.clamp(0, 2) as usize].into()),
                "kind" => Some(otlp::kind_name(s.kind).into()),
                _ => {
                    let (resource, key) = match name.split_once('.') {
                        Some(("resource", k)) => (Some(true), k),
                        Some(("span", k)) => (Some(false), k),
                        Some(("", k)) => (None, k),
                        _ => (None, name),
                    };
                    let get = |json: &str| {
                        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
                            .ok()
                            .and_then(|m| m.get(key).cloned())
                    };
                    match resource {
                        Some(true) => get(&s.resource_attributes),
                        Some(false) => get(&s.attributes),
                        None => get(&s.attributes).or_else(|| get(&s.resource_attributes)),
                    }
                }
            };
            if let Some(v) = value {
                out.insert(typed(&v));
            }
        }
        Ok(out)
    }

    /// Service names (`service.name`) with spans in `[start, end)`.
    pub async fn services(&self, start: TimestampNs, end: TimestampNs) -> Result<BTreeSet<String>> {
        let spans = self.read(SpanRequest::range(start, end)).await?;
        Ok(spans.into_iter().map(|s| s.service_name).collect())
    }

    /// `(name, kind)` of the spans of `service` in `[start, end)`.
    pub async fn operations(
        &self,
        service: &str,
        start: TimestampNs,
        end: TimestampNs,
    ) -> Result<BTreeSet<(String, i32)>> {
        let service = Matcher::new(tributary_storage::types::MatchOp::Equal, "service_name", service)
            .map_err(|e| Error::BadData(e.to_string()))?;
        let spans = self
            .read(SpanRequest {
                matchers: vec![service],
                ..SpanRequest::range(start, end)
            })
            .await?;
        Ok(spans.into_iter().map(|s| (s.name, s.kind)).collect())
    }
}

const HOUR_NS: i64 = 3_600_000_000_000;
/// Found traces read whole at once.
const LOOKUPS_AT_ONCE: usize = 8;

/// A search's span predicate: its TraceQL filter and duration bounds.
#[derive(Clone)]
struct Predicate {
    filter: Arc<traceql::Filter>,
    min: Option<i64>,
    max: Option<i64>,
}

impl SpanPredicate for Predicate {
    fn matches(&self, s: &Span) -> bool {
        self.max.is_none_or(|m| s.duration <= m)
            && self.min.is_none_or(|m| s.duration >= m)
            && self.filter.matches(s, &mut traceql::Attrs::of(s))
    }

    fn may_match(&self, head: &SpanHead<'_>) -> bool {
        self.max.is_none_or(|m| head.duration <= m)
            && self.min.is_none_or(|m| head.duration >= m)
            && self.filter.may_match(head)
    }
}

/// A value as `(type, text)`, Tempo's tag value shape.
fn typed(v: &serde_json::Value) -> (String, String) {
    match v {
        serde_json::Value::String(s) => ("string".into(), s.clone()),
        serde_json::Value::Bool(b) => ("bool".into(), b.to_string()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => ("int".into(), n.to_string()),
        serde_json::Value::Number(n) => ("float".into(), n.to_string()),
        other => ("string".into(), other.to_string()),
    }
}

#[cfg(test)]
mod tests;
