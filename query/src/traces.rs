//! Traces read back: [`MergedTraceSource`] (the head's and the Parquet table's spans as one
//! [`TraceSource`]) and the [`TraceEngine`] the Tempo and Jaeger APIs call (`http::tempo_api`,
//! `http::jaeger_api`): a trace by id, TraceQL search (`traceql`), tag listings, services
//! and operations, each read under the request's cluster scope.
//!
//! Spans are returned as the storage contract gives them; `otlp` turns a trace into OTLP's
//! `ResourceSpans` (what Tempo answers), grouping spans by resource and scope.

pub(crate) mod otlp;
pub(crate) mod traceql;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tributary_storage::auth::Identity;
use tributary_storage::read::{SpanFilter, SpanHead, SpanPredicate, SpanRequest, TraceSource, sort_spans};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::{Span, TimestampNs, TraceId};
use tributary_storage::types::Matcher;

use crate::admission::{Language, TextLimits, admit};
use crate::error::{Error, Result};
use crate::metrics::QueryMetrics;
use crate::token_limits::TokenLimits;

/// Settings of [`TraceEngine`] (`[query.traces]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceConfig {
    /// The most spans one read of a trace request may hold: a trace by id, one window of a
    /// search (its matches only), and the spans a listing visits are not held at all. Over it
    /// the request fails with a 400 naming this option; a search first retries narrower
    /// windows. Default `1000000`.
    pub max_spans: usize,
    /// The longest a trace request (a lookup, a search, a listing) may run. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest TraceQL text accepted, in bytes. Default `262144`.
    pub max_query_bytes: usize,
    /// The deepest TraceQL accepted: each brace and parenthesis is a level (a chain of `&&` or
    /// `||` is flat). Default `128`.
    pub max_query_depth: usize,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            max_spans: 1_000_000,
            timeout: Duration::from_secs(120),
            max_query_bytes: crate::config::DEFAULT_MAX_QUERY_BYTES,
            max_query_depth: crate::config::DEFAULT_MAX_QUERY_DEPTH,
        }
    }
}

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
        req.check_count(all.len())?;
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

/// The trace query engine: one source, read under a cluster scope and the request's limits.
///
/// Every request runs within `query.traces.timeout` and each read holds at most
/// `query.traces.max_spans` spans (a token's `query_timeout` and `max_samples` tighten them).
/// A search reads its range newest hour first and stops once it has its `limit` of traces; an
/// hour with too many matches is read in halves, newest first. Listings (tags, values,
/// services, operations) visit the spans through the request's filter and hold none of them.
#[derive(Debug, Clone)]
pub struct TraceEngine {
    source: Arc<dyn TraceSource>,
    scope: Option<Matcher>,
    cfg: TraceConfig,
    token: Option<Arc<TokenLimits>>,
    metrics: QueryMetrics,
}

impl TraceEngine {
    /// An engine over `source` with `cfg`, counting refusals in `metrics`.
    pub fn new(source: Arc<dyn TraceSource>, cfg: TraceConfig, metrics: QueryMetrics) -> Self {
        Self {
            source,
            scope: None,
            cfg,
            token: None,
            metrics,
        }
    }

    /// The same engine under the query limits of the token `id` (see `token_limits`): its
    /// `max_samples` bounds the spans one read holds, its `query_timeout` the request.
    pub fn limited(&self, id: &Identity) -> Self {
        let limits = TokenLimits::new(id, self.cfg.max_spans, self.cfg.timeout, self.metrics.clone());
        let mut cfg = self.cfg.clone();
        cfg.max_spans = limits.samples(cfg.max_spans);
        cfg.timeout = limits.timeout(cfg.timeout);
        Self {
            cfg,
            token: Some(Arc::new(limits)),
            ..self.clone()
        }
    }

    /// Runs one request within the timeout; a refusal is the token's when its limit was hit.
    async fn bounded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let answer = match tokio::time::timeout(self.cfg.timeout, work).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Timeout("trace query")),
        };
        match &self.token {
            Some(t) => answer.map_err(|e| t.attribute(e, None)),
            None => answer,
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
        req.limit = Some(self.cfg.max_spans);
        self.source.select_spans(&req).await.map_err(|e| match e {
            tributary_storage::Error::TooManySamples { limit } => Error::TooManySpans { limit },
            e => Error::from(e),
        })
    }

    /// Visits every span of `req` (under the scope) with `visit`, holding none: the visitor
    /// is the request's filter and answers false.
    async fn visit(&self, req: SpanRequest, visit: impl Fn(&Span) + Send + Sync + 'static) -> Result<()> {
        let filter = move |s: &Span| {
            visit(s);
            false
        };
        self.read(SpanRequest {
            filter: Some(SpanFilter(Arc::new(filter))),
            ..req
        })
        .await
        .map(drop)
    }

    /// Every span of trace `id` starting in `[start, end)`; `NotFound` when there is none.
    pub async fn trace(&self, id: TraceId, start: TimestampNs, end: TimestampNs) -> Result<Vec<Span>> {
        self.bounded(self.lookup(id, start, end)).await
    }

    async fn lookup(&self, id: TraceId, start: TimestampNs, end: TimestampNs) -> Result<Vec<Span>> {
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
    /// The matching spans are read a window at a time, newest first: the hours of the range
    /// (the table's partitions, so no file is read twice), an hour with more matches than
    /// `max_spans` in halves; the filter travels with each read, so a source keeps only
    /// matches (a top-level `resource.service.name` condition becomes a `service_name` matcher
    /// and a `duration` floor the request's). Reading stops once `limit` traces are found.
    /// Then each found trace is read whole, within an hour either side of the range, for its
    /// root and bounds.
    pub async fn search(&self, search: &Search) -> Result<Vec<FoundTrace>> {
        admit(&search.query, Language::Traceql, self.text_limits())?;
        self.bounded(self.search_unbounded(search)).await
    }

    fn text_limits(&self) -> TextLimits {
        TextLimits {
            max_bytes: self.cfg.max_query_bytes,
            max_depth: self.cfg.max_query_depth,
            section: "query.traces",
        }
    }

    async fn search_unbounded(&self, search: &Search) -> Result<Vec<FoundTrace>> {
        let filter = Arc::new(traceql::parse(&search.query)?);
        let predicate = Predicate {
            filter: filter.clone(),
            min: search.min_duration,
            max: search.max_duration,
        };
        let request = |start, end| SpanRequest {
            matchers: filter.service_matchers(),
            min_duration: filter.min_duration().max(search.min_duration.unwrap_or(0)),
            filter: Some(SpanFilter(Arc::new(predicate.clone()))),
            ..SpanRequest::range(start, end)
        };
        // Each found trace's earliest matching start.
        let mut found: HashMap<TraceId, TimestampNs> = HashMap::new();
        let mut windows = hours_newest_last(search.start, search.end);
        while let Some((start, end)) = windows.pop() {
            if found.len() >= search.limit {
                break;
            }
            let matched = match self.read(request(start, end)).await {
                Err(Error::TooManySpans { .. }) if end - start > MIN_WINDOW_NS => {
                    let mid = start + (end - start) / 2;
                    windows.extend([(start, mid), (mid, end)]);
                    continue;
                }
                other => other?,
            };
            // Matches come sorted by trace: each run is one trace.
            for run in matched.chunk_by(|a, b| a.trace_id == b.trace_id) {
                let first = run.iter().map(|s| s.start).min().unwrap_or(0);
                found
                    .entry(run[0].trace_id)
                    .and_modify(|t| *t = (*t).min(first))
                    .or_insert(first);
            }
        }
        let mut traces: Vec<(TimestampNs, TraceId)> = found.into_iter().map(|(id, t)| (t, id)).collect();
        traces.sort_unstable_by(|a, b| b.cmp(a));
        traces.truncate(search.limit);
        let around = (search.start.saturating_sub(HOUR_NS), search.end.saturating_add(HOUR_NS));
        let whole = futures::stream::iter(traces.into_iter().map(|(_, id)| self.lookup(id, around.0, around.1)))
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
        let out: Arc<Mutex<BTreeMap<&'static str, BTreeSet<String>>>> = Arc::default();
        let keys = out.clone();
        let visit = move |s: &Span| {
            let mut keys = keys.lock();
            for (scope, json) in [("resource", &s.resource_attributes), ("span", &s.attributes)] {
                let map = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json).unwrap_or_default();
                keys.entry(scope).or_default().extend(map.into_iter().map(|(k, _)| k));
            }
        };
        self.bounded(self.visit(SpanRequest::range(start, end), visit)).await?;
        Ok(std::mem::take(&mut *out.lock()))
    }

    /// The distinct values of tag `name` (TraceQL-scoped `resource.x`, `span.x`, `.x`, or an
    /// intrinsic: `name`, `status`, `kind`; a bare `x` as `.x`), as text, with their types: at
    /// most [`TAG_VALUES_MAX_BYTES`] of them (Tempo's default cap), so an attribute unique per
    /// span cannot fill memory.
    pub async fn tag_values(
        &self,
        name: &str,
        start: TimestampNs,
        end: TimestampNs,
    ) -> Result<BTreeSet<(String, String)>> {
        // The values as (type, text), and their bytes so far.
        type Collected = (BTreeSet<(String, String)>, usize);
        let out: Arc<Mutex<Collected>> = Arc::default();
        let (values, name) = (out.clone(), name.to_string());
        let visit = move |s: &Span| {
            let name = name.as_str();
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
                let mut values = values.lock();
                let (set, bytes) = &mut *values;
                let v = typed(&v);
                if *bytes < TAG_VALUES_MAX_BYTES && !set.contains(&v) {
                    *bytes += v.0.len() + v.1.len();
                    set.insert(v);
                }
            }
        };
        self.bounded(self.visit(SpanRequest::range(start, end), visit)).await?;
        Ok(std::mem::take(&mut out.lock().0))
    }

    /// Service names (`service.name`) with spans in `[start, end)`.
    pub async fn services(&self, start: TimestampNs, end: TimestampNs) -> Result<BTreeSet<String>> {
        let out: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let names = out.clone();
        let visit = move |s: &Span| {
            let mut names = names.lock();
            if !names.contains(&s.service_name) {
                names.insert(s.service_name.clone());
            }
        };
        self.bounded(self.visit(SpanRequest::range(start, end), visit)).await?;
        Ok(std::mem::take(&mut *out.lock()))
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
        // Names by kind: most spans repeat an operation already seen, found without allocating.
        let out: Arc<Mutex<BTreeMap<i32, BTreeSet<String>>>> = Arc::default();
        let ops = out.clone();
        let visit = move |s: &Span| {
            let mut ops = ops.lock();
            let names = ops.entry(s.kind).or_default();
            if !names.contains(s.name.as_str()) {
                names.insert(s.name.clone());
            }
        };
        let req = SpanRequest {
            matchers: vec![service],
            ..SpanRequest::range(start, end)
        };
        self.bounded(self.visit(req, visit)).await?;
        let ops = std::mem::take(&mut *out.lock());
        Ok(ops
            .into_iter()
            .flat_map(|(kind, names)| names.into_iter().map(move |n| (n, kind)))
            .collect())
    }
}

/// `[start, end)` cut at hour boundaries, the newest hour last (popped first): its newest
/// [`HOUR_WINDOWS`] hours one by one, anything older as one window (halved when too big).
fn hours_newest_last(start: TimestampNs, end: TimestampNs) -> Vec<(TimestampNs, TimestampNs)> {
    let mut out = Vec::new();
    let mut at = end;
    while at > start && out.len() < HOUR_WINDOWS {
        let hour = (at - 1).div_euclid(HOUR_NS).saturating_mul(HOUR_NS).max(start);
        out.push((hour, at));
        at = hour;
    }
    if at > start {
        out.push((start, at));
    }
    out.reverse();
    out
}

const HOUR_NS: i64 = 3_600_000_000_000;
/// Hours a search reads one by one before reading the rest of its range at once.
const HOUR_WINDOWS: usize = 24;
/// The most bytes of values one tag values listing collects.
pub const TAG_VALUES_MAX_BYTES: usize = 5 << 20;
/// A search window with more matches than `max_spans` is halved down to this width (a
/// minute); narrower, the read fails.
const MIN_WINDOW_NS: i64 = 60_000_000_000;
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
