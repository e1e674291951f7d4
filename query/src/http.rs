//! The query HTTP APIs: Prometheus's (`/api/v1/...`, [`router`]) over an [`Engine`], Loki's
//! (`/loki/api/v1/...`, [`loki_router`]) over a `LogqlEngine`, and Tempo's (`/api/traces`,
//! `/api/search`..., [`tempo_router`]) and Jaeger's (`/jaeger/api/...`, [`jaeger_router`]) over a
//! `TraceEngine`, with each upstream's exact JSON
//! shapes, error bodies and status codes so Grafana and other clients work unchanged.
//!
//! Both read their parameters through `params`, answer errors through `error`, and take their
//! engine through `access` (the request's token decides which clusters it reads). Beside the
//! JSON API, the Prometheus router serves raw samples: `remote_read` (`POST /api/v1/read`) and
//! `federate` (`/federate`). The status and cardinality APIs ([`status_router`]) have a router
//! of their own: the binary hands them the head alone where there is one.

mod access;
pub(crate) mod error;
mod federate;
mod jaeger_api;
mod loki_api;
pub(crate) mod params;
mod prom_api;
mod remote_read;
pub(crate) mod render;
mod status;
mod tempo_api;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::promql::Engine;
use access::ApiState;
pub use error::unrouted_bodies;
pub use jaeger_api::jaeger_router;
pub use loki_api::loki_router;
pub use status::{StatusInfo, status_router};
pub use tempo_api::tempo_router;
use tributary_storage::auth::Auth;

/// Routes for the query API. Handlers parse parameters, call one engine method, and render;
/// `auth` decides which clusters each request reads.
pub fn router(engine: Arc<Engine>, auth: Auth) -> Router {
    Router::new()
        .route("/api/v1/query", get(prom_api::query).post(prom_api::query))
        .route(
            "/api/v1/query_range",
            get(prom_api::query_range).post(prom_api::query_range),
        )
        .route("/api/v1/series", get(prom_api::series).post(prom_api::series))
        .route("/api/v1/labels", get(prom_api::labels).post(prom_api::labels))
        .route("/api/v1/label/{name}/values", get(prom_api::label_values))
        .route("/api/v1/status/buildinfo", get(prom_api::build_info))
        .route(
            "/api/v1/format_query",
            get(prom_api::format_query).post(prom_api::format_query),
        )
        .route(
            "/api/v1/parse_query",
            get(prom_api::parse_query).post(prom_api::parse_query),
        )
        .route("/api/v1/metadata", get(prom_api::metadata))
        .route(
            "/api/v1/query_exemplars",
            get(prom_api::exemplars).post(prom_api::exemplars),
        )
        .route("/api/v1/read", post(remote_read::read))
        .route("/federate", get(federate::federate).post(federate::federate))
        .layer(axum::middleware::from_fn(partial_warnings))
        .with_state(ApiState::new(engine, auth))
}

/// Adds what the reads under a request reported (an ingester that did not answer, see
/// [`crate::remote`]) to its JSON answer's `warnings`, after any the handler put there; both
/// APIs' routers run under it. Only answers with such warnings are parsed again.
pub(crate) async fn partial_warnings(req: Request, next: Next) -> Response {
    let (response, warnings) = crate::remote::collect_warnings(next.run(req)).await;
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if warnings.is_empty() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => serde_json::Value::Object(map),
        _ => return Response::from_parts(parts, Body::from(bytes)),
    };
    let list = value
        .as_object_mut()
        .expect("matched an object")
        .entry("warnings")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let serde_json::Value::Array(list) = list {
        list.extend(warnings.into_iter().map(serde_json::Value::String));
    }
    parts.headers.remove(CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec());
    Response::from_parts(parts, Body::from(body))
}

/// The refusal of a listing longer than `query.max_listing_items` (both APIs).
fn listing_too_long(len: usize, max: usize) -> crate::error::Error {
    crate::error::Error::Execution(format!(
        "the listing has {len} entries, more than query.max_listing_items = {max}: narrow match[] or the time range, or pass a limit"
    ))
}

#[cfg(test)]
mod tests;
