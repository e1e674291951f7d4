//! The one place query errors become HTTP responses, for both API families.
//!
//! Which status an [`ErrorKind`] answers is decided once, in [`status`], with a column per API
//! (the upstreams differ: Prometheus answers 422 for an execution error and 503 for a timeout,
//! Loki 400 and 504). The bodies are each API's own: Prometheus's JSON envelope
//! `{"status":"error","errorType":"bad_data","error":"..."}`, Loki's plain text line.
//!
//! [`unrouted_bodies`] gives the routers' own 404s and 405s (no route, or a route without the
//! method) the same bodies, chosen by path: Loki's under `/loki/`, Prometheus's elsewhere.

use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorKind};

/// Both upstreams answer 499 (nginx's "client closed request") when the client went away first.
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The query API families, whose status codes and error bodies differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/api/v1/...`
    Prometheus,
    /// `/loki/api/v1/...`
    Loki,
}

/// The HTTP status `api` answers an error of `kind` with.
pub(crate) fn status(kind: ErrorKind, api: Api) -> StatusCode {
    use Api::{Loki, Prometheus};
    let code = match (kind, api) {
        (ErrorKind::BadData, _) => 400,
        (ErrorKind::Execution, Prometheus) => 422,
        (ErrorKind::Execution, Loki) => 400,
        (ErrorKind::Canceled, _) => CLIENT_CLOSED_REQUEST,
        (ErrorKind::Timeout, Prometheus) => 503,
        (ErrorKind::Timeout, Loki) => 504,
        (ErrorKind::Unavailable, _) => 503,
        (ErrorKind::NotFound, _) => 404,
        (ErrorKind::MethodNotAllowed, _) => 405,
        (ErrorKind::Unauthorized, _) => 401,
        (ErrorKind::Forbidden, _) => 403,
        (ErrorKind::TooManyRequests, _) => 429,
        (ErrorKind::Internal, _) => 500,
    };
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error answered the Prometheus way; handlers use `?`.
#[derive(Debug)]
pub(crate) struct PromError(pub(crate) Error);

impl From<Error> for PromError {
    fn from(e: Error) -> Self {
        PromError(e)
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let message = match &self.0 {
            // A PromQL parse error is always about the `query` parameter.
            Error::Parse { .. } => format!("invalid parameter \"query\": {}", self.0),
            other => other.to_string(),
        };
        log(Api::Prometheus, kind, &message);
        let body = super::render::error(kind.as_str(), &message);
        (
            status(kind, Api::Prometheus),
            [(CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// An error answered the Loki way: a status and a plain-text line; handlers use `?`.
#[derive(Debug)]
pub(crate) struct LokiError(pub(crate) Error);

impl From<Error> for LokiError {
    fn from(e: Error) -> Self {
        LokiError(e)
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let message = match &self.0 {
            // Loki: `parse error at line 1, col 5: ...`, or `parse error : ...` without a position.
            Error::Parse { message, .. } if message.starts_with("at line") => format!("parse error {message}"),
            Error::Parse { message, .. } => format!("parse error : {message}"),
            other => other.to_string(),
        };
        log(Api::Loki, kind, &message);
        (
            status(kind, Api::Loki),
            [
                (CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
                (
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            format!("{message}\n"),
        )
            .into_response()
    }
}

/// Middleware: a 404 or 405 that carries no body of its own (axum's answer when no route or no
/// method matched) is answered in the API's error shape; the binary wraps the whole app in it,
/// so the ingest and operational routes get the Prometheus shape too. An answer a handler gave
/// a body of its own (a `not_found` error naming what is missing) passes untouched.
pub async fn unrouted_bodies(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let response = next.run(req).await;
    let error = match response.status() {
        _ if response.headers().contains_key(CONTENT_TYPE) => return response,
        StatusCode::NOT_FOUND => Error::NotFound(format!("no such endpoint: {path}")),
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed(format!("method {method} is not allowed on {path}")),
        _ => return response,
    };
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let mut answer = if path.starts_with("/loki/") {
        LokiError(error).into_response()
    } else {
        PromError(error).into_response()
    };
    // A 405 names the methods the path takes.
    if let Some(allow) = allow {
        answer.headers_mut().insert(axum::http::header::ALLOW, allow);
    }
    answer
}

/// Our own faults are errors in the log; the client's are debug lines.
fn log(api: Api, kind: ErrorKind, message: &str) {
    if kind == ErrorKind::Internal {
        tracing::error!(?api, error = %message, "query failed");
    } else {
        tracing::debug!(?api, error = %message, error_type = kind.as_str(), "query rejected");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, so a change to either column is a deliberate one.
    #[test]
    fn every_kind_has_each_apis_status() {
        let table = [
            (ErrorKind::BadData, 400, 400),
            (ErrorKind::Execution, 422, 400),
            (ErrorKind::Canceled, 499, 499),
            (ErrorKind::Timeout, 503, 504),
            (ErrorKind::Unavailable, 503, 503),
            (ErrorKind::NotFound, 404, 404),
            (ErrorKind::MethodNotAllowed, 405, 405),
            (ErrorKind::Unauthorized, 401, 401),
            (ErrorKind::Forbidden, 403, 403),
            (ErrorKind::TooManyRequests, 429, 429),
            (ErrorKind::Internal, 500, 500),
        ];
        for (kind, prometheus, loki) in table {
            assert_eq!(status(kind, Api::Prometheus).as_u16(), prometheus, "{kind:?}");
            assert_eq!(status(kind, Api::Loki).as_u16(), loki, "{kind:?}");
        }
    }

    #[test]
    fn each_api_renders_its_own_body() {
        let prom = PromError(Error::Timeout("query execution")).into_response();
        assert_eq!(prom.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(prom.headers()[CONTENT_TYPE], "application/json");
        let loki = LokiError(Error::Timeout("query execution")).into_response();
        assert_eq!(loki.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(loki.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    }
}
