//! OTLP/HTTP: `POST /v1/metrics`, `/v1/logs` and `/v1/traces`.
//!
//! Bodies are `application/x-protobuf` or `application/json`, optionally `Content-Encoding: gzip`.
//! Success is a 200 carrying the `Export*ServiceResponse` in the request's format, with
//! `partial_success` when some items were refused; failures carry a `google.rpc.Status` in the
//! request's format, per the OTLP specification.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tributary_proto::otlp::collector::logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse};
use tributary_proto::otlp::collector::metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
use tributary_proto::otlp::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use tributary_proto::rpc;

use super::{count, error};
use crate::decode::otlp::BodyFormat;
use crate::decode::{self, Kind, Outcome};
use crate::error::Error;
use crate::ingester::Ingester;
use tributary_storage::auth::{Auth, ClientCertificate};

/// One OTLP signal's endpoint: what it writes and how its success answer reports refusals.
/// Adding a signal is one impl here and one route in `super`.
pub(crate) trait Signal {
    /// Its decoder (and WAL record kind).
    const KIND: Kind;
    /// Its label on `tributary_ingest_requests_total`.
    const PROTOCOL: &'static str;
    /// The `Export*ServiceResponse`.
    type Response: Message + serde::Serialize;
    /// The success answer: `partial_success` when `refused` (how many, and why).
    fn response(refused: Option<(i64, String)>) -> Self::Response;
}

/// `POST /v1/metrics`.
pub(crate) struct Metrics;
/// `POST /v1/logs`.
pub(crate) struct Logs;
/// `POST /v1/traces`.
pub(crate) struct Traces;

impl Signal for Metrics {
    const KIND: Kind = Kind::OtlpMetrics;
    const PROTOCOL: &'static str = "otlp_http_metrics";
    type Response = ExportMetricsServiceResponse;
    fn response(refused: Option<(i64, String)>) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: refused.map(|(rejected, msg)| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: msg,
            }),
        }
    }
}

impl Signal for Logs {
    const KIND: Kind = Kind::OtlpLogs;
    const PROTOCOL: &'static str = "otlp_http_logs";
    type Response = ExportLogsServiceResponse;
    fn response(refused: Option<(i64, String)>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: refused.map(|(rejected, msg)| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: msg,
            }),
        }
    }
}

impl Signal for Traces {
    const KIND: Kind = Kind::OtlpTraces;
    const PROTOCOL: &'static str = "otlp_http_traces";
    type Response = ExportTraceServiceResponse;
    fn response(refused: Option<(i64, String)>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: refused.map(|(rejected, msg)| ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: msg,
            }),
        }
    }
}

/// The handler of every signal's endpoint.
#[tracing::instrument(skip_all, fields(protocol = S::PROTOCOL))]
pub(crate) async fn export_http<S: Signal>(
    State(ing): State<Arc<Ingester>>,
    State(auth): State<Auth>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let format = body_format(&headers);
    let result = export(&ing, &auth, S::KIND, &headers, cert.as_deref(), body).await;
    let response = respond(format, result, |o| S::response(error::otlp_partial(S::KIND, o)));
    count(&ing, S::PROTOCOL, &response);
    response
}

/// Authenticates, reads the body, writes it, and turns a refusal into its error.
async fn export(
    ing: &Ingester,
    auth: &Auth,
    kind: Kind,
    headers: &HeaderMap,
    client_cert: Option<&ClientCertificate>,
    body: Body,
) -> Result<Outcome, Error> {
    let ctx = ing.authenticate(kind, headers, client_cert, auth)?;
    let body = read_body(ing, headers, body).await?;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let body = decode::Body::otlp_http(
        kind,
        body,
        header(header::CONTENT_TYPE),
        header(header::CONTENT_ENCODING),
    )?;
    let outcome = ing.write(ctx, body).await?;
    match error::refusal(kind, &outcome) {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
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

fn respond<M: Message + serde::Serialize>(
    format: BodyFormat,
    result: Result<Outcome, Error>,
    build: impl FnOnce(&Outcome) -> M,
) -> Response {
    match result {
        Ok(outcome) => encoded(format, StatusCode::OK, &build(&outcome)),
        Err(e) => {
            let status = error::otlp_status(&e);
            if status.is_server_error() && e.retryable() {
                tracing::error!(error = %e, "OTLP export failed");
            } else {
                tracing::debug!(error = %e, "OTLP export refused");
            }
            let body = rpc::Status {
                code: error::grpc_code(&e) as i32,
                message: e.to_string(),
            };
            let mut r = encoded(format, status, &body);
            if let Some(retry) = error::otlp_retry_after(&e) {
                r.headers_mut().insert(header::RETRY_AFTER, retry);
            }
            r
        }
    }
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
