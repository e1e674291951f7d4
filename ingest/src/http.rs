//! HTTP receivers. Handlers are thin: read the request, call one [`Ingester`] method, map the error
//! (in [`error`], the only place ingest errors become status codes).
//!
//! - `POST /api/v1/write` and `/api/v1/push` (Mimir's path): Prometheus remote-write 1.0.
//! - `POST /api/v1/admin/flush`: flush the head to Parquet now; answers once the files are stored.

pub mod error;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::cluster::ClusterContext;
use crate::error::Error;
use crate::ingester::Ingester;
use crate::metrics::RequestLabels;

/// The ingest routes, ready to merge into the server's router.
pub fn router(ingester: Arc<Ingester>) -> Router {
    // axum's own limit must not cut a body before ours can answer with a clear 413.
    let limit = ingester.config().max_body_bytes.saturating_add(1);
    Router::new()
        .route("/api/v1/write", post(remote_write))
        .route("/api/v1/push", post(remote_write))
        .route("/api/v1/admin/flush", post(flush))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(ingester)
}

#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn remote_write(State(ing): State<Arc<Ingester>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        check_remote_write_headers(&headers)?;
        let ctx = ClusterContext::from_request(&headers, ing.config())?;
        ing.write_prom_v1(ctx, body).await
    }
    .await;
    let response = match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error::response(&e),
    };
    ing.metrics()
        .requests
        .get_or_create(&RequestLabels {
            protocol: "prometheus_remote_write",
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Remote-write 1.0 is snappy-compressed `prometheus.WriteRequest`; 2.0 is negotiated by the
/// content type and is not spoken yet, which the spec says to answer with 415.
fn check_remote_write_headers(h: &HeaderMap) -> Result<(), Error> {
    if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let proto = ct.split(';').map(str::trim).find_map(|p| p.strip_prefix("proto="));
        match proto {
            None | Some("prometheus.WriteRequest") => {}
            Some(other) => {
                return Err(Error::UnsupportedMediaType(format!(
                    "remote-write message {other} is not supported; send prometheus.WriteRequest (remote-write 1.0)"
                )));
            }
        }
    }
    if let Some(enc) = h.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok())
        && !enc.eq_ignore_ascii_case("snappy")
    {
        return Err(Error::UnsupportedMediaType(format!(
            "content encoding {enc:?} is not supported; remote-write bodies are snappy block-compressed"
        )));
    }
    Ok(())
}

#[tracing::instrument(skip_all)]
async fn flush(State(ing): State<Arc<Ingester>>) -> Response {
    match ing.flush().await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => error::response(&e),
    }
}
