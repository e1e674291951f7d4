//! The query HTTP APIs: Prometheus's (`/api/v1/...`, [`router`]) over an [`Engine`] and Loki's
//! (`/loki/api/v1/...`, [`loki_router`]) over a `LogqlEngine`, with each upstream's exact JSON
//! shapes, error bodies and status codes so Grafana and other clients work unchanged.
//!
//! Both read their parameters through `params`, answer errors through `error`, and take their
//! engine through `access` (the request's token decides which clusters it reads).

mod access;
mod error;
mod loki_api;
pub(crate) mod params;
mod prom_api;
mod render;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::promql::Engine;
use access::ApiState;
pub use loki_api::loki_router;
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
        .with_state(ApiState::new(engine, auth))
}

/// The refusal of a listing longer than `query.max_listing_items` (both APIs).
fn listing_too_long(len: usize, max: usize) -> crate::error::Error {
    crate::error::Error::Execution(format!(
        "the listing has {len} entries, more than query.max_listing_items = {max}: narrow match[] or the time range, or pass a limit"
    ))
}

#[cfg(test)]
mod tests;
