//! Jaeger's query API, as Grafana's Jaeger data source calls it, under `/jaeger` (Jaeger's
//! `/api/traces/{id}` would collide with Tempo's: point the data source at
//! `http://tributary:9090/jaeger`):
//!
//! - `GET /jaeger/api/services`, `/jaeger/api/services/{service}/operations`,
//!   `/jaeger/api/operations?service=` (span kinds too);
//! - `GET /jaeger/api/traces/{id}`;
//! - `GET /jaeger/api/traces?service=&operation=&tags={json}&minDuration=&maxDuration=&limit=&start=&end=`
//!   (`start`/`end` in microseconds, default the last hour; `lookback` is Grafana's and ignored
//!   when `start` is given).
//!
//! Answers are Jaeger's envelope `{"data": ..., "total", "limit", "offset", "errors"}`; errors
//! carry `errors: [{"code", "msg"}]` with the status the Loki column gives.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tributary_storage::auth::{Auth, Identity};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::{Span, hex_id, parse_trace_id};

use super::access::{ApiState, Reader, Scoped};
use super::error::{Api, status};
use super::params::Params;
use crate::error::Error;
use crate::metrics::QueryMetrics;
use crate::traces::{Search, TraceEngine, otlp};

const MICRO_NS: i64 = 1_000;
const HOUR_NS: i64 = 3_600_000_000_000;
const DEFAULT_LIMIT: usize = 20;

/// The trace engine behind Jaeger's API (its own error shape).
#[derive(Debug, Clone)]
pub(crate) struct JaegerEngine(pub(crate) TraceEngine);

/// An error answered the Jaeger way.
#[derive(Debug)]
pub(crate) struct JaegerError(pub(crate) Error);

impl From<Error> for JaegerError {
    fn from(e: Error) -> Self {
        JaegerError(e)
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let code = status(self.0.kind(), Api::Loki);
        let body = json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": code.as_u16(), "msg": self.0.to_string() }],
        });
        (code, axum::Json(body)).into_response()
    }
}

impl Scoped for JaegerEngine {
    type Rejection = JaegerError;
    fn scoped(&self, scope: &ClusterScope) -> Self {
        JaegerEngine(self.0.scoped(scope))
    }
    fn limited(&self, id: &Identity) -> Self {
        JaegerEngine(self.0.limited(id))
    }
    fn metrics(&self) -> QueryMetrics {
        self.0.metrics().clone()
    }
}

type ApiResult = Result<Response, JaegerError>;

/// Routes for Jaeger's API over `engine`, under `/jaeger`.
pub fn jaeger_router(engine: Arc<TraceEngine>, auth: Auth) -> Router {
    Router::new()
        .route("/jaeger/api/services", get(services))
        .route("/jaeger/api/services/{service}/operations", get(operations))
        .route("/jaeger/api/operations", get(operations_of))
        .route("/jaeger/api/traces/{id}", get(trace))
        .route("/jaeger/api/traces", get(find))
        .with_state(ApiState::new(Arc::new(JaegerEngine((*engine).clone())), auth))
}

fn envelope(data: Value, total: usize) -> Response {
    axum::Json(json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": null })).into_response()
}

#[tracing::instrument(name = "jaeger.services", skip_all)]
async fn services(Reader(engine, _slot): Reader<JaegerEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let (start, end) = Params::from_url(url.as_deref()).trace_range(MICRO_NS, HOUR_NS)?;
    let names: Vec<String> = engine.0.services(start, end).await?.into_iter().collect();
    let n = names.len();
    Ok(envelope(json!(names), n))
}

#[tracing::instrument(name = "jaeger.operations", skip_all)]
async fn operations(
    Reader(engine, _slot): Reader<JaegerEngine>,
    Path(service): Path<String>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let (start, end) = Params::from_url(url.as_deref()).trace_range(MICRO_NS, HOUR_NS)?;
    let mut names: Vec<String> = engine
        .0
        .operations(&service, start, end)
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.dedup();
    let n = names.len();
    Ok(envelope(json!(names), n))
}

#[tracing::instrument(name = "jaeger.operations_of", skip_all)]
async fn operations_of(Reader(engine, _slot): Reader<JaegerEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::from_url(url.as_deref());
    let (start, end) = p.trace_range(MICRO_NS, HOUR_NS)?;
    let ops: Vec<Value> = engine
        .0
        .operations(p.text("service"), start, end)
        .await?
        .into_iter()
        .map(|(name, kind)| json!({ "name": name, "spanKind": otlp::kind_name(kind) }))
        .collect();
    let n = ops.len();
    Ok(envelope(json!(ops), n))
}

#[tracing::instrument(name = "jaeger.trace", skip_all)]
async fn trace(Reader(engine, _slot): Reader<JaegerEngine>, Path(id): Path<String>) -> ApiResult {
    let id = parse_trace_id(&id).ok_or_else(|| Error::InvalidParameter {
        param: "traceID".into(),
        reason: format!("{id:?} is not a trace id (1 to 32 hex digits)"),
    })?;
    let spans = engine.0.trace(id, i64::MIN, i64::MAX).await?;
    Ok(envelope(json!([jaeger_trace(&spans)]), 1))
}

#[tracing::instrument(name = "jaeger.find", skip_all)]
async fn find(Reader(engine, _slot): Reader<JaegerEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::from_url(url.as_deref());
    let (start, end) = p.trace_range(MICRO_NS, HOUR_NS)?;
    let mut conds = Vec::new();
    if let Some(service) = p.given("service") {
        conds.push(format!("resource.service.name = {service:?}"));
    }
    if let Some(op) = p.given("operation") {
        conds.push(format!("name = {op:?}"));
    }
    if let Some(tags) = p.given("tags") {
        let tags: BTreeMap<String, String> = serde_json::from_str(tags).map_err(|e| Error::InvalidParameter {
            param: "tags".into(),
            reason: format!("not a JSON object of strings: {e}"),
        })?;
        for (k, v) in tags {
            conds.push(match k.as_str() {
                "error" => format!("status {} error", if v == "true" { "=" } else { "!=" }),
                _ => format!(".{k} = {v:?}"),
            });
        }
    }
    let found = engine
        .0
        .search(&Search {
            query: format!("{{ {} }}", conds.join(" && ")),
            start,
            end,
            limit: p.trace_limit(DEFAULT_LIMIT)?,
            min_duration: p.trace_duration("minDuration")?,
            max_duration: p.trace_duration("maxDuration")?,
        })
        .await?;
    let traces: Vec<Value> = found.iter().map(|t| jaeger_trace(&t.spans)).collect();
    let n = traces.len();
    Ok(envelope(json!(traces), n))
}

/// A JSON attribute object as Jaeger tags.
fn tags(json_object: &str) -> Vec<Value> {
    let m: serde_json::Map<String, Value> = serde_json::from_str(json_object).unwrap_or_default();
    m.into_iter()
        .map(|(k, v)| {
            let (ty, v) = match v {
                Value::Bool(b) => ("bool", json!(b)),
                Value::Number(n) if n.is_i64() => ("int64", json!(n)),
                Value::Number(n) => ("float64", json!(n)),
                Value::String(s) => ("string", json!(s)),
                other => ("string", json!(other.to_string())),
            };
            json!({ "key": k, "type": ty, "value": v })
        })
        .collect()
}

/// A trace in Jaeger's JSON model: spans with references, tags and logs, one process per
/// distinct resource.
fn jaeger_trace(spans: &[Span]) -> Value {
    let mut processes: BTreeMap<&str, String> = BTreeMap::new();
    let mut process_json = serde_json::Map::new();
    let out: Vec<Value> = spans
        .iter()
        .map(|s| {
            let next = format!("p{}", processes.len() + 1);
            let pid = processes.entry(&s.resource_attributes).or_insert_with(|| {
                process_json.insert(
                    next.clone(),
                    json!({ "serviceName": s.service_name, "tags": tags(&s.resource_attributes) }),
                );
                next
            });
            let mut span_tags = tags(&s.attributes);
            span_tags.push(json!({ "key": "span.kind", "type": "string", "value": otlp::kind_name(s.kind) }));
            if s.status_code == 2 {
                span_tags.push(json!({ "key": "error", "type": "bool", "value": true }));
            }
            let events: Vec<Value> = serde_json::from_str(&s.events).unwrap_or_default();
            let logs: Vec<Value> = events
                .iter()
                .map(|e| {
                    let mut fields = tags(&e["attributes"].to_string());
                    fields.push(json!({ "key": "event", "type": "string", "value": e["name"] }));
                    json!({ "timestamp": e["time_unix_nano"].as_i64().unwrap_or(0) / 1_000, "fields": fields })
                })
                .collect();
            let references: Vec<Value> = (s.parent_span_id != [0; 8])
                .then(|| {
                    json!({ "refType": "CHILD_OF", "traceID": hex_id(&s.trace_id), "spanID": hex_id(&s.parent_span_id) })
                })
                .into_iter()
                .collect();
            json!({
                "traceID": hex_id(&s.trace_id),
                "spanID": hex_id(&s.span_id),
                "operationName": s.name,
                "references": references,
                "startTime": s.start / 1_000,
                "duration": s.duration / 1_000,
                "tags": span_tags,
                "logs": logs,
                "processID": pid,
                "warnings": null,
                "flags": s.flags & 0xff,
            })
        })
        .collect();
    json!({
        "traceID": spans.first().map(|s| hex_id(&s.trace_id)).unwrap_or_default(),
        "spans": out,
        "processes": process_json,
        "warnings": null,
    })
}
