//! OTLP/HTTP: `POST /v1/metrics`, `/v1/logs` (and `/v1/traces`, which says it is not stored).
//!
//! Bodies are `application/x-protobuf` or `application/json`, optionally `Content-Encoding: gzip`.
//! Success is a 200 carrying the `Export*ServiceResponse` in the request's format, with
//! `partial_success` when some items were refused; failures carry a `google.rpc.Status` in the
//! request's format, per the OTLP specification.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tributary_proto::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use tributary_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tributary_proto::rpc;

use super::error;
use crate::cluster::ClusterContext;
use crate::decode::otlp::{self, BodyFormat, OtlpRequest};
use crate::error::Error;
use crate::ingester::{Ingester, OtlpOutcome};
use crate::metrics::RequestLabels;

#[tracing::instrument(skip_all)]
pub async fn metrics(State(ing): State<Arc<Ingester>>, headers: HeaderMap, body: Body) -> Response {
    let format = body_format(&headers);
    let result = async {
        let body = read_body(&ing, &headers, body).await?;
        let (ctx, req) = read::<ExportMetricsServiceRequest>(&ing, &headers, &body)?;
        ing.write_otlp_metrics(ctx, req).await
    }
    .await;
    let response = respond(format, result, |o| ExportMetricsServiceResponse {
        partial_success: partial(o).map(|(rejected, msg)| ExportMetricsPartialSuccess {
            rejected_data_points: rejected,
            error_message: msg,
        }),
    });
    count(&ing, "otlp_http_metrics", &response);
    response
}

#[tracing::instrument(skip_all)]
pub async fn logs(State(ing): State<Arc<Ingester>>, headers: HeaderMap, body: Body) -> Response {
    let format = body_format(&headers);
    let result = async {
        let body = read_body(&ing, &headers, body).await?;
        let (ctx, req) = read::<ExportLogsServiceRequest>(&ing, &headers, &body)?;
        ing.write_otlp_logs(ctx, req).await
    }
    .await;
    let response = respond(format, result, |o| ExportLogsServiceResponse {
        partial_success: partial(o).map(|(rejected, msg)| ExportLogsPartialSuccess {
            rejected_log_records: rejected,
            error_message: msg,
        }),
    });
    count(&ing, "otlp_http_logs", &response);
    response
}

/// Traces are not stored yet. 501 is not retried by OTLP clients, and the message says why.
pub async fn traces(headers: HeaderMap) -> Response {
    status_response(
        body_format(&headers),
        StatusCode::NOT_IMPLEMENTED,
        tonic::Code::Unimplemented,
        "Tributary does not store traces yet: send traces to a tracing backend (Tempo, Jaeger); \
         OTLP metrics and logs are accepted on /v1/metrics and /v1/logs",
    )
}

/// Reads the body up to the limit ourselves, so an oversized body gets OTLP's 413 with a
/// `google.rpc.Status` rather than a bare text answer, and memory stays bounded.
async fn read_body(ing: &Ingester, headers: &HeaderMap, body: Body) -> Result<Bytes, Error> {
    let limit = ing.config().max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Error::PayloadTooLarge {
            what: "body",
            actual: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(limit + 1),
            limit,
        })
}

fn body_format(headers: &HeaderMap) -> BodyFormat {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(BodyFormat::from_content_type)
        .unwrap_or(BodyFormat::Protobuf)
}

/// Authenticates, checks the content type and encoding, decompresses and parses.
fn read<R: OtlpRequest>(ing: &Ingester, headers: &HeaderMap, body: &[u8]) -> Result<(ClusterContext, R), Error> {
    let ctx = ClusterContext::from_request(headers, ing.config())?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = BodyFormat::from_content_type(ct).ok_or_else(|| {
        Error::UnsupportedMediaType(format!(
            "content type {ct:?} is not OTLP/HTTP; send application/x-protobuf or application/json"
        ))
    })?;
    let cfg = ing.config();
    if body.len() > cfg.max_body_bytes {
        return Err(Error::PayloadTooLarge {
            what: "body",
            actual: body.len(),
            limit: cfg.max_body_bytes,
        });
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req = match encoding.trim() {
        "" | "identity" => otlp::parse(body, format)?,
        e if e.eq_ignore_ascii_case("gzip") => otlp::parse(&otlp::gunzip(body, cfg.max_decompressed_bytes)?, format)?,
        other => {
            return Err(Error::UnsupportedMediaType(format!(
                "content encoding {other:?} is not supported; OTLP/HTTP bodies may be gzip-compressed"
            )));
        }
    };
    Ok((ctx, req))
}

fn partial(o: &OtlpOutcome) -> Option<(i64, String)> {
    (o.rejected > 0).then(|| (i64::try_from(o.rejected).unwrap_or(i64::MAX), o.message.clone()))
}

fn respond<M: Message + serde::Serialize>(
    format: BodyFormat,
    result: Result<OtlpOutcome, Error>,
    build: impl FnOnce(&OtlpOutcome) -> M,
) -> Response {
    match result {
        Ok(outcome) => encoded(format, StatusCode::OK, &build(&outcome)),
        Err(e) => {
            let status = error::otlp_status(&e);
            if status.is_server_error() {
                tracing::error!(error = %e, "OTLP export failed");
            } else {
                tracing::debug!(error = %e, "OTLP export refused");
            }
            let mut r = status_response(format, status, error::grpc_code(&e), &e.to_string());
            if e.retryable() {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            r
        }
    }
}

fn status_response(format: BodyFormat, status: StatusCode, code: tonic::Code, message: &str) -> Response {
    let body = rpc::Status {
        code: code as i32,
        message: message.to_string(),
    };
    encoded(format, status, &body)
}

fn encoded<M: Message + serde::Serialize>(format: BodyFormat, status: StatusCode, m: &M) -> Response {
    let bytes = match format {
        BodyFormat::Protobuf => m.encode_to_vec(),
        // Our own response types always serialise.
        BodyFormat::Json => serde_json::to_vec(m).unwrap_or_else(|_| b"{}".to_vec()),
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()))],
        bytes,
    )
        .into_response()
}

fn count(ing: &Ingester, protocol: &'static str, response: &Response) {
    ing.metrics()
        .requests
        .get_or_create(&RequestLabels {
            protocol,
            status: response.status().as_u16(),
        })
        .inc();
}
