//! The one mapping from ingest errors to protocol statuses: HTTP for remote-write and Loki push,
//! HTTP for OTLP (whose retry rules differ), and gRPC codes for OTLP/gRPC.
//!
//! Remote-write senders retry 5xx and 429 and drop everything else, so a status here is a
//! promise: 4xx (but 429) only for data that can never succeed, 5xx/429 only for our own state.
//! OTLP clients retry only 429, 502, 503 and 504 (HTTP) and UNAVAILABLE (gRPC; RESOURCE_EXHAUSTED
//! only with RetryInfo), so every failure of ours maps to 503 / UNAVAILABLE there.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorKind};

pub fn status(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The OTLP/HTTP status: as [`status`], but our own faults are 503 so OTLP clients retry them.
pub fn otlp_status(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::Internal => StatusCode::SERVICE_UNAVAILABLE,
        _ => status(e),
    }
}

/// The OTLP/gRPC code.
pub fn grpc_code(e: &Error) -> tonic::Code {
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::PayloadTooLarge | ErrorKind::UnsupportedMediaType => {
            tonic::Code::InvalidArgument
        }
        ErrorKind::Unauthorized => tonic::Code::Unauthenticated,
        ErrorKind::TooManyRequests | ErrorKind::Unavailable | ErrorKind::Internal => tonic::Code::Unavailable,
    }
}

/// Status plus the reason as a plain-text body (what Prometheus logs), and `Retry-After` on pressure.
pub fn response(e: &Error) -> Response {
    let status = status(e);
    if status.is_server_error() {
        tracing::error!(error = %e, "write failed");
    } else {
        tracing::debug!(error = %e, "write refused");
    }
    let mut r = (status, format!("{e}\n")).into_response();
    if matches!(e.kind(), ErrorKind::TooManyRequests | ErrorKind::Unavailable) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_agree_with_retryability() {
        let cases = [
            Error::InvalidInput("x".into()),
            Error::Unauthorized("x".into()),
            Error::PayloadTooLarge {
                what: "body",
                actual: 2,
                limit: 1,
            },
            Error::UnsupportedMediaType("x".into()),
            Error::TooManyRequests("x".into()),
            Error::Unavailable("x".into()),
        ];
        for e in &cases {
            let s = status(e);
            // Prometheus retries exactly 5xx and 429.
            let sender_retries = s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS;
            assert_eq!(sender_retries, e.retryable(), "{e:?} -> {s}");
            // OTLP/HTTP retries exactly 429, 502, 503, 504; OTLP/gRPC retries UNAVAILABLE.
            let o = otlp_status(e);
            let otlp_retries = matches!(o.as_u16(), 429 | 502 | 503 | 504);
            assert_eq!(otlp_retries, e.retryable(), "{e:?} -> {o}");
            assert_eq!(grpc_code(e) == tonic::Code::Unavailable, e.retryable(), "{e:?}");
        }
        assert_eq!(
            otlp_status(&Error::Unavailable("x".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
