//! Tempo's HTTP API, as Grafana's Tempo data source calls it:
//!
//! - `GET /api/traces/{id}` and `/api/v2/traces/{id}` (`start`/`end` in Unix seconds, optional):
//!   the trace as protobuf (`Accept: application/protobuf`: `tempopb.Trace`, and
//!   `tempopb.TraceByIDResponse` for v2, which carry OTLP `ResourceSpans` at field 1) or as
//!   OTLP/JSON (`{"batches": [...]}`, v2 `{"trace": {"resourceSpans": [...]}}`); 404 when absent.
//! - `GET /api/search` (`q` TraceQL, `tags` logfmt `key=value` pairs, `minDuration`,
//!   `maxDuration`, `limit` default 20, `start`/`end` default the last hour): the matching traces.
//! - `GET /api/search/tags`, `/api/v2/search/tags`, `/api/search/tag/{name}/values`,
//!   `/api/v2/search/tag/{name}/values` over the last hour (or `start`/`end`).
//! - `GET /api/echo`, `/api/status/buildinfo`.
//!
//! Errors are Tempo's: a status and a plain-text line (the Loki shape and status column, which
//! Tempo shares).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tributary_proto::prost;
use tributary_proto::prost::Message;
use tributary_storage::auth::Auth;
use tributary_storage::signals::{hex_id, parse_trace_id};

use super::access::{ApiState, Reader};
use super::error::LokiError;
use super::params::Params;
use crate::error::Error;
use crate::traces::{FoundTrace, Search, TraceEngine, otlp};

type ApiResult = Result<Response, LokiError>;

/// Tempo's default search window and limit.
const HOUR_NS: i64 = 3_600_000_000_000;
const DEFAULT_LIMIT: usize = 20;
const SECOND_NS: i64 = 1_000_000_000;

/// Routes for Tempo's API over `engine`; `auth` decides which clusters each request reads.
pub fn tempo_router(engine: Arc<TraceEngine>, auth: Auth) -> Router {
    Router::new()
        .route("/api/echo", get(|| async { "echo" }))
        .route("/api/status/buildinfo", get(build_info))
        .route("/api/traces/{id}", get(trace_v1))
        .route("/api/v2/traces/{id}", get(trace_v2))
        .route("/api/search", get(search))
        .route("/api/search/tags", get(tags_v1))
        .route("/api/v2/search/tags", get(tags_v2))
        .route("/api/search/tag/{name}/values", get(values_v1))
        .route("/api/v2/search/tag/{name}/values", get(values_v2))
        .with_state(ApiState::new(engine, auth))
}

async fn build_info() -> Response {
    axum::Json(json!({
        "version": "2.6.0",
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "tributaryVersion": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn trace_id(id: &str) -> Result<tributary_storage::signals::TraceId, Error> {
    parse_trace_id(id).ok_or_else(|| Error::InvalidParameter {
        param: "traceID".into(),
        reason: format!("{id:?} is not a trace id (1 to 32 hex digits)"),
    })
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/protobuf") || v.contains("application/x-protobuf"))
}

async fn read_trace(engine: &TraceEngine, id: &str, url: Option<&str>) -> Result<otlp_types::TracesData, Error> {
    let id = trace_id(id)?;
    let p = Params::from_url(url);
    let start = p.trace_time("start", SECOND_NS)?.unwrap_or(i64::MIN);
    let end = p
        .trace_time("end", SECOND_NS)?
        .map_or(i64::MAX, |e| e.saturating_add(SECOND_NS));
    let spans = engine.trace(id, start, end).await?;
    Ok(otlp::traces_data(&spans))
}

mod otlp_types {
    pub(super) use tributary_proto::otlp::trace::v1::TracesData;
}

#[tracing::instrument(name = "tempo.trace", skip_all)]
async fn trace_v1(
    Reader(engine, _slot): Reader<TraceEngine>,
    Path(id): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let data = read_trace(&engine, &id, url.as_deref()).await?;
    if wants_protobuf(&headers) {
        // `tempopb.Trace { repeated ResourceSpans batches = 1 }` is `TracesData` on the wire.
        return Ok(([(CONTENT_TYPE, "application/protobuf")], data.encode_to_vec()).into_response());
    }
    Ok(axum::Json(json!({ "batches": data.resource_spans })).into_response())
}

#[tracing::instrument(name = "tempo.trace_v2", skip_all)]
async fn trace_v2(
    Reader(engine, _slot): Reader<TraceEngine>,
    Path(id): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let data = read_trace(&engine, &id, url.as_deref()).await?;
    if wants_protobuf(&headers) {
        // `tempopb.TraceByIDResponse { Trace trace = 1; ... }`: the trace, length-delimited at 1.
        let trace = data.encode_to_vec();
        let mut body = Vec::with_capacity(trace.len() + 10);
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut body);
        prost::encoding::encode_varint(trace.len() as u64, &mut body);
        body.extend_from_slice(&trace);
        return Ok(([(CONTENT_TYPE, "application/protobuf")], body).into_response());
    }
    Ok(axum::Json(json!({ "trace": { "resourceSpans": data.resource_spans } })).into_response())
}

/// `tags=key=value other="a b"` (logfmt) as TraceQL conditions on either scope.
fn tags_filter(tags: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = tags.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => q.split_once('"').unwrap_or((q, "")),
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        let key = key.trim();
        let cond = match key {
            "name" | "status" => format!(
                "{key} = {}",
                if key == "name" {
                    format!("{value:?}")
                } else {
                    value.into()
                }
            ),
            "service.name" => format!("resource.service.name = {value:?}"),
            _ => format!(".{key} = {value:?}"),
        };
        out.push(cond);
        rest = next.trim();
    }
    out
}

#[tracing::instrument(name = "tempo.search", skip_all)]
async fn search(Reader(engine, _slot): Reader<TraceEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::from_url(url.as_deref());
    let (start, end) = p.trace_range(SECOND_NS, HOUR_NS)?;
    let mut query = p.text("q").trim().to_string();
    let tags = tags_filter(p.text("tags"));
    if !tags.is_empty() {
        if !query.is_empty() {
            return Err(Error::BadData("send either q (TraceQL) or tags, not both".into()).into());
        }
        query = format!("{{ {} }}", tags.join(" && "));
    }
    let found = engine
        .search(&Search {
            query,
            start,
            end,
            limit: p.trace_limit(DEFAULT_LIMIT)?,
            min_duration: p.trace_duration("minDuration")?,
            max_duration: p.trace_duration("maxDuration")?,
        })
        .await?;
    let traces: Vec<Value> = found.iter().map(summary).collect();
    Ok(axum::Json(json!({ "traces": traces, "metrics": { "inspectedTraces": found.len() } })).into_response())
}

/// A found trace as Tempo's search result entry, with its matched spans as one spanset.
fn summary(t: &FoundTrace) -> Value {
    let (start, end) = t.bounds();
    let root = t.root();
    let spans: Vec<Value> = t
        .matched
        .iter()
        .map(|&i| {
            let s = &t.spans[i];
            let status = ["unset", "ok", "error"][s.status_code.clamp(0, 2) as usize];
            json!({
                "spanID": hex_id(&s.span_id),
                "name": s.name,
                "startTimeUnixNano": s.start.to_string(),
                "durationNanos": s.duration.to_string(),
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": s.service_name}},
                    {"key": "status", "value": {"stringValue": status}},
                ],
            })
        })
        .collect();
    json!({
        "traceID": hex_id(&t.trace_id),
        "rootServiceName": root.map_or("<root span not yet received>", |r| r.service_name.as_str()),
        "rootTraceName": root.map_or("", |r| r.name.as_str()),
        "startTimeUnixNano": start.to_string(),
        "durationMs": (end - start) / 1_000_000,
        "spanSet": { "spans": spans, "matched": t.matched.len() },
        "spanSets": [{ "spans": spans, "matched": t.matched.len() }],
    })
}

const INTRINSICS: [&str; 4] = ["duration", "kind", "name", "status"];

#[tracing::instrument(name = "tempo.tags", skip_all)]
async fn tags_v1(Reader(engine, _slot): Reader<TraceEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let (start, end) = Params::from_url(url.as_deref()).trace_range(SECOND_NS, HOUR_NS)?;
    let by_scope = engine.tag_names(start, end).await?;
    let mut names: Vec<&String> = by_scope.values().flatten().collect();
    names.sort();
    names.dedup();
    Ok(axum::Json(json!({ "tagNames": names })).into_response())
}

#[tracing::instrument(name = "tempo.tags_v2", skip_all)]
async fn tags_v2(Reader(engine, _slot): Reader<TraceEngine>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::from_url(url.as_deref());
    let (start, end) = p.trace_range(SECOND_NS, HOUR_NS)?;
    let wanted = p.given("scope").unwrap_or("all").to_string();
    let by_scope = engine.tag_names(start, end).await?;
    let mut scopes: Vec<Value> = by_scope
        .iter()
        .filter(|(name, _)| wanted == "all" || wanted == **name)
        .map(|(name, tags)| json!({ "name": name, "tags": tags }))
        .collect();
    if wanted == "all" || wanted == "intrinsic" {
        scopes.push(json!({ "name": "intrinsic", "tags": INTRINSICS }));
    }
    Ok(axum::Json(json!({ "scopes": scopes })).into_response())
}

#[tracing::instrument(name = "tempo.tag_values", skip_all)]
async fn values_v1(
    Reader(engine, _slot): Reader<TraceEngine>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let (start, end) = Params::from_url(url.as_deref()).trace_range(SECOND_NS, HOUR_NS)?;
    let values = engine.tag_values(&name, start, end).await?;
    let mut texts: Vec<String> = values.into_iter().map(|(_, v)| v).collect();
    texts.dedup();
    Ok(axum::Json(json!({ "tagValues": texts })).into_response())
}

#[tracing::instrument(name = "tempo.tag_values_v2", skip_all)]
async fn values_v2(
    Reader(engine, _slot): Reader<TraceEngine>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let (start, end) = Params::from_url(url.as_deref()).trace_range(SECOND_NS, HOUR_NS)?;
    let keyword = matches!(name.as_str(), "status" | "kind");
    let values: Vec<Value> = engine
        .tag_values(&name, start, end)
        .await?
        .into_iter()
        .map(|(ty, v)| json!({ "type": if keyword { "keyword" } else { ty.as_str() }, "value": v }))
        .collect();
    Ok(axum::Json(json!({ "tagValues": values })).into_response())
}

#[cfg(test)]
mod tests {
    use super::tags_filter;

    #[test]
    fn logfmt_tags_become_traceql_conditions() {
        assert_eq!(
            tags_filter(r#"service.name=checkout http.method="GET x" name=a status=error"#),
            vec![
                r#"resource.service.name = "checkout""#,
                r#".http.method = "GET x""#,
                r#"name = "a""#,
                "status = error",
            ]
        );
    }
}
