//! Observability of ourselves: logs through `tracing`, and our own `/metrics` registry.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

/// Installs the global log subscriber. `RUST_LOG` wins over the configured filter.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Updates gauges that mirror state owned elsewhere, just before a scrape.
pub type Refresh = Arc<dyn Fn() + Send + Sync>;

/// Serves a registry in the Prometheus text format, refreshing gauges first.
pub fn metrics_router(registry: Arc<Mutex<Registry>>, refresh: Refresh) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State((r, refresh)): State<(Arc<Mutex<Registry>>, Refresh)>| async move {
                    refresh();
                    let mut out = String::new();
                    match prometheus_client::encoding::text::encode(&mut out, &r.lock()) {
                        Ok(()) => (
                            [(
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            out,
                        )
                            .into_response(),
                        Err(e) => (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            format!("encoding metrics: {e}"),
                        )
                            .into_response(),
                    }
                },
            ),
        )
        .with_state((registry, refresh))
}
