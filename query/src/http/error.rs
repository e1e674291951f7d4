//! The one place query errors become HTTP responses, in Prometheus's error envelope:
//! `{"status":"error","errorType":"bad_data","error":"..."}`.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorKind};

/// Prometheus answers 499 when the client went away first.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Wraps an [`Error`] so handlers can use `?`.
#[derive(Debug)]
pub(crate) struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let status = match kind {
            ErrorKind::BadData => StatusCode::BAD_REQUEST,
            ErrorKind::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Canceled => StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorKind::Timeout | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
        };
        let message = match &self.0 {
            // A PromQL parse error is always about the `query` parameter.
            Error::Parse { .. } => format!("invalid parameter \"query\": {}", self.0),
            other => other.to_string(),
        };
        if kind == ErrorKind::Internal {
            tracing::error!(error = %message, "query failed");
        } else {
            tracing::debug!(error = %message, error_type = kind.as_str(), "query rejected");
        }
        let body = super::render::error(kind.as_str(), &message);
        (status, [(CONTENT_TYPE, "application/json")], body).into_response()
    }
}
