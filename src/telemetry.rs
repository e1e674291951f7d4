//! Observability of ourselves: logs through `tracing`, and our own `/metrics` registry (with
//! the process's own figures, `process`).

#[cfg(target_os = "linux")]
mod process;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::LogFormat;

/// Installs the global log subscriber writing to stdout. `RUST_LOG` wins over the configured
/// filter. Colour codes only reach a terminal: piped into a file or a collector they would be
/// noise in every line.
pub fn init_logging(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Wraps `app` in a trace span per request carrying a request id: the client's `x-request-id`
/// when it sends one, else a new UUID; the answer carries the same header, so a client's
/// report and our log lines (every line logged while serving it) can be matched.
pub(crate) fn traced(app: Router) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::TraceLayer;
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let span = |req: &axum::http::Request<axum::body::Body>| {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
    };
    // The last layer added is the outermost: the id is set before the span is made.
    app.layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}

/// Updates gauges that mirror state owned elsewhere, just before a scrape.
pub(crate) type Refresh = Arc<dyn Fn() + Send + Sync>;

/// Serves a registry in the Prometheus text format, refreshing gauges first.
pub(crate) fn metrics_router(registry: Arc<Mutex<Registry>>, refresh: Refresh) -> Router {
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

/// Registers the process's standard `process_*` metrics (Linux only: read from `/proc/self`).
pub(crate) fn register_process_metrics(r: &mut Registry) {
    #[cfg(target_os = "linux")]
    r.register_collector(Box::new(process::ProcessMetrics));
    #[cfg(not(target_os = "linux"))]
    let _ = r;
}

/// Gauges mirroring the storage read caches (`Storage::cache_stats`), refreshed per scrape:
/// what `storage.series_cache_bytes` and `storage.metadata_cache_files` are sized against.
#[derive(Debug, Default, Clone)]
pub(crate) struct CacheGauges {
    bytes: Family<Vec<(String, String)>, Gauge>,
    entries: Family<Vec<(String, String)>, Gauge>,
    evictions: Family<Vec<(String, String)>, Gauge>,
}

impl CacheGauges {
    /// Registers the three gauge families in `r`.
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_storage_cache_bytes",
            "Approximate heap bytes held by a storage read cache",
            self.bytes.clone(),
        );
        r.register(
            "tributary_storage_cache_entries",
            "Entries held by a storage read cache (one per file, or per label set for the interner)",
            self.entries.clone(),
        );
        r.register(
            "tributary_storage_cache_evictions",
            "Entries a storage read cache has dropped to fit its budget since start",
            self.evictions.clone(),
        );
    }

    /// Sets every gauge from one snapshot of the caches.
    pub(crate) fn set(&self, s: &tributary_storage::CacheStats) {
        let cache = |name: &str| vec![("cache".to_string(), name.to_string())];
        for (name, c) in [
            ("series_tables", s.series_tables),
            ("label_listings", s.label_listings),
            ("rollup_days", s.rollup_days),
            ("rollup_rows", s.rollup_rows),
            ("window_edges", s.window_edges),
            ("window_summaries", s.window_summaries),
        ] {
            self.bytes.get_or_create(&cache(name)).set(c.bytes as i64);
            self.entries.get_or_create(&cache(name)).set(c.entries as i64);
            self.evictions.get_or_create(&cache(name)).set(c.evictions as i64);
        }
        self.entries.get_or_create(&cache("footers")).set(s.footers as i64);
        self.entries
            .get_or_create(&cache("interned_label_sets"))
            .set(s.interned_label_sets as i64);
    }
}
