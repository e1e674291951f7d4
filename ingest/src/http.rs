//! HTTP receivers. Handlers are thin: read the request, call one [`Ingester`] method, map the error
//! (in [`error`], the only place ingest errors become status codes).
//!
//! - `POST /api/v1/write` and `/api/v1/push` (Mimir's path): Prometheus remote-write 1.0 and 2.0,
//!   negotiated by `Content-Type` (`proto=io.prometheus.write.v2.Request` selects 2.0).
//! - `POST /v1/metrics`, `/v1/logs`, `/v1/traces`: OTLP/HTTP ([`otlp`]); also served alone by
//!   [`otlp_router`] on the OTLP port.
//! - `POST /loki/api/v1/push`: the Loki push API (snappy protobuf, or JSON optionally gzipped).
//! - `POST /api/v1/admin/flush`: flush the head to Parquet now; answers once the files are stored.

pub mod error;
pub mod otlp;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::cluster::ClusterContext;
use crate::error::Error;
use crate::ingester::{Ingester, LokiFormat};
use crate::metrics::RequestLabels;

/// The ingest routes, ready to merge into the server's router.
pub fn router(ingester: Arc<Ingester>) -> Router {
    // axum's own limit must not cut a body before ours can answer with a clear 413.
    let limit = ingester.config().max_body_bytes.saturating_add(1);
    Router::new()
        .route("/api/v1/write", post(remote_write))
        .route("/api/v1/push", post(remote_write))
        .route("/api/v1/admin/flush", post(flush))
        .route("/loki/api/v1/push", post(loki_push))
        .merge(otlp_routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(ingester)
}

/// Only the OTLP/HTTP routes, for the dedicated OTLP port (4318 by default).
pub fn otlp_router(ingester: Arc<Ingester>) -> Router {
    otlp_routes().with_state(ingester)
}

/// The OTLP handlers read their bodies with their own limit (see `otlp::read_body`).
fn otlp_routes() -> Router<Arc<Ingester>> {
    Router::new()
        .route("/v1/metrics", post(otlp::metrics))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/traces", post(otlp::traces))
        .layer(DefaultBodyLimit::disable())
}

/// Which remote-write message a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemoteWriteVersion {
    V1,
    V2,
}

const RW2_MESSAGE: &str = "io.prometheus.write.v2.Request";

#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn remote_write(State(ing): State<Arc<Ingester>>, headers: HeaderMap, body: Bytes) -> Response {
    let version = check_remote_write_headers(&headers);
    let ctx = version.and_then(|v| Ok((v, ClusterContext::from_request(&headers, ing.config())?)));
    let (protocol, response) = match ctx {
        Err(e) => ("prometheus_remote_write", error::response(&e)),
        Ok((RemoteWriteVersion::V1, ctx)) => {
            let response = match ing.write_prom_v1(ctx, body).await {
                Ok(_) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => error::response(&e),
            };
            ("prometheus_remote_write", response)
        }
        Ok((RemoteWriteVersion::V2, ctx)) => {
            let response = match ing.write_prom_v2(ctx, body).await {
                Ok(outcome) => {
                    let mut r = match &outcome.rejected {
                        None => StatusCode::NO_CONTENT.into_response(),
                        Some(reason) => error::response(&Error::InvalidInput(reason.clone())),
                    };
                    // The spec asks for the written counts on success and on partial failure.
                    let h = r.headers_mut();
                    for (name, n) in [
                        ("x-prometheus-remote-write-samples-written", outcome.samples),
                        ("x-prometheus-remote-write-histograms-written", outcome.histograms),
                        ("x-prometheus-remote-write-exemplars-written", outcome.exemplars),
                    ] {
                        h.insert(name, HeaderValue::from(n));
                    }
                    r
                }
                Err(e) => error::response(&e),
            };
            ("prometheus_remote_write_v2", response)
        }
    };
    ing.metrics()
        .requests
        .get_or_create(&RequestLabels {
            protocol,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Remote-write 1.0 is snappy-compressed `prometheus.WriteRequest`; 2.0 is negotiated by the
/// content type's `proto` parameter. Any other message gets the 415 the 2.0 spec asks for.
fn check_remote_write_headers(h: &HeaderMap) -> Result<RemoteWriteVersion, Error> {
    let mut version = RemoteWriteVersion::V1;
    if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let proto = ct.split(';').map(str::trim).find_map(|p| p.strip_prefix("proto="));
        match proto {
            None | Some("prometheus.WriteRequest") => {}
            Some(RW2_MESSAGE) => version = RemoteWriteVersion::V2,
            Some(other) => {
                return Err(Error::UnsupportedMediaType(format!(
                    "remote-write message {other} is not supported; send prometheus.WriteRequest (1.0) or {RW2_MESSAGE} (2.0)"
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
    Ok(version)
}

/// Loki's push API: 204 when every entry is stored; 400 naming the refused entries (the valid
/// ones are stored, as Loki's distributor does).
#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn loki_push(State(ing): State<Arc<Ingester>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let ctx = ClusterContext::from_request(&headers, ing.config())?;
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let format = match essence.as_str() {
            "application/x-protobuf" | "" => LokiFormat::Protobuf,
            "application/json" => LokiFormat::Json,
            _ => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content type {ct:?} is not a Loki push body; send application/x-protobuf (snappy) or application/json"
                )));
            }
        };
        let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
        let body = match (format, encoding.trim().to_ascii_lowercase().as_str()) {
            // Promtail marks nothing; the protobuf body is always snappy block-compressed.
            (LokiFormat::Protobuf, "" | "snappy") | (LokiFormat::Json, "" | "identity") => body,
            (LokiFormat::Json, "gzip") => {
                Bytes::from(crate::decode::otlp::gunzip(&body, ing.config().max_decompressed_bytes)?)
            }
            (_, other) => {
                return Err(Error::UnsupportedMediaType(format!(
                    "content encoding {other:?} is not supported for this Loki push body"
                )));
            }
        };
        ing.write_loki_push(ctx, body, format).await
    }
    .await;
    let response = match result {
        Ok(o) if o.rejected == 0 => StatusCode::NO_CONTENT.into_response(),
        Ok(o) => error::response(&Error::InvalidInput(format!(
            "rejected {} entries, the rest was stored: {}",
            o.rejected, o.message
        ))),
        Err(e) => error::response(&e),
    };
    ing.metrics()
        .requests
        .get_or_create(&RequestLabels {
            protocol: "loki_push",
            status: response.status().as_u16(),
        })
        .inc();
    response
}

#[tracing::instrument(skip_all)]
async fn flush(State(ing): State<Arc<Ingester>>) -> Response {
    match ing.flush().await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => error::response(&e),
    }
}
