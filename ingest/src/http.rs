//! HTTP receivers. Handlers are thin: wrap the request in a `decode::Body`, call
//! [`Ingester::write`], and answer through [`error`], the only place outcomes and errors become
//! status codes. A push API whose body decodes from its headers alone (Loki, Zipkin) is one
//! `PushApi` (what it authenticates, how it decodes, what it answers on success) and one route.
//!
//! - `POST /api/v1/write` and `/api/v1/push` (Mimir's path): Prometheus remote-write 1.0 and 2.0,
//!   negotiated by `Content-Type` (`proto=io.prometheus.write.v2.Request` selects 2.0).
//! - `POST /v1/metrics`, `/v1/logs`, `/v1/traces`: OTLP/HTTP ([`otlp`]); also served alone by
//!   [`otlp_router`] on the OTLP port.
//! - `POST /loki/api/v1/push`: the Loki push API (snappy protobuf, or JSON optionally gzipped).
//! - `POST /api/v2/spans`: Zipkin v2 JSON spans (optionally gzipped); 202 when every span is
//!   stored, 400 naming the refused ones (the rest stored).
//! - `POST /internal/v1/read`: the internal read API over the head, for query processes
//!   (`head_read`).
//! - `POST /api/v1/admin/flush`: flush the head to Parquet now; answers once the files are stored.
//!   With a token, the token needs `admin = true` (and a token is needed when `auth.required`).
//!
//! Every receiver authenticates through the shared [`Auth`] table (`Ingester::authenticate`:
//! `cluster::ClusterContext`, and a rejection-log line for a refused token).

pub mod error;
mod head_read;
pub mod otlp;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::decode::{Body, Kind};
use crate::error::Error;
use crate::ingester::Ingester;
use crate::metrics::RequestLabels;
use tributary_storage::auth::{Auth, ClientCertificate};

/// The receivers' state: the ingester and the token table.
#[derive(Clone, Debug)]
pub(crate) struct Receivers {
    ingester: Arc<Ingester>,
    auth: Auth,
}

impl FromRef<Receivers> for Arc<Ingester> {
    fn from_ref(r: &Receivers) -> Self {
        r.ingester.clone()
    }
}

impl FromRef<Receivers> for Auth {
    fn from_ref(r: &Receivers) -> Self {
        r.auth.clone()
    }
}

/// The ingest routes, ready to merge into the server's router; `auth` decides who may write.
pub fn router(ingester: Arc<Ingester>, auth: Auth) -> Router {
    // axum's own limit must not cut a body before ours can answer with a clear 413.
    let limit = ingester.config().max_body_bytes.saturating_add(1);
    Router::new()
        .route("/api/v1/write", post(remote_write))
        .route("/api/v1/push", post(remote_write))
        .route("/api/v1/admin/flush", post(flush))
        .route("/loki/api/v1/push", post(push::<LokiPush>))
        .route("/api/v2/spans", post(push::<Zipkin>))
        .route(tributary_storage::remote::PATH, post(head_read::read))
        .merge(otlp_routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Receivers { ingester, auth })
}

/// Only the OTLP/HTTP routes, for the dedicated OTLP port (4318 by default).
pub fn otlp_router(ingester: Arc<Ingester>, auth: Auth) -> Router {
    otlp_routes().with_state(Receivers { ingester, auth })
}

/// The OTLP handlers read their bodies with their own limit (see `otlp::read_body`).
fn otlp_routes() -> Router<Receivers> {
    Router::new()
        .route("/v1/metrics", post(otlp::export_http::<otlp::Metrics>))
        .route("/v1/logs", post(otlp::export_http::<otlp::Logs>))
        .route("/v1/traces", post(otlp::export_http::<otlp::Traces>))
        .layer(DefaultBodyLimit::disable())
}

#[tracing::instrument(skip_all, fields(bytes = body.len()))]
async fn remote_write(
    State(ing): State<Arc<Ingester>>,
    State(auth): State<Auth>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let body = Body::remote_write(body, header(header::CONTENT_TYPE), header(header::CONTENT_ENCODING));
    let kind = body.as_ref().map_or(Kind::PromRemoteWriteV1, Body::kind);
    let result = match body {
        Ok(body) => match ing.authenticate(kind, &headers, cert.as_deref(), &auth) {
            Ok(ctx) => ing.write(ctx, body).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(outcome) => {
            let mut r = match error::refusal(kind, &outcome) {
                None => error::remote_write_success(&outcome).into_response(),
                Some(e) => error::response(&e),
            };
            if kind == Kind::PromRemoteWriteV2 {
                // The spec asks for the written counts on success and on partial failure.
                let a = &outcome.accepted;
                let h = r.headers_mut();
                for (name, n) in [
                    ("x-prometheus-remote-write-samples-written", a.samples),
                    ("x-prometheus-remote-write-histograms-written", a.histograms),
                    ("x-prometheus-remote-write-exemplars-written", a.exemplars),
                ] {
                    h.insert(name, HeaderValue::from(n));
                }
            }
            r
        }
        Err(e) => error::response(&e),
    };
    let protocol = match kind {
        Kind::PromRemoteWriteV2 => "prometheus_remote_write_v2",
        _ => "prometheus_remote_write",
    };
    count(&ing, protocol, &response);
    response
}

/// Loki's push API: 204 when every entry is stored; 400 naming the refused entries (the valid
/// ones are stored, as Loki's distributor does). Both Loki encodings are logged as the one
/// protocol `loki_push`.
struct LokiPush;
impl PushApi for LokiPush {
    const PUSH: Push = Push {
        kind: Kind::LokiPushProtobuf,
        protocol: "loki_push",
        decode: Body::loki_push,
        stored: StatusCode::NO_CONTENT,
    };
}

/// Zipkin's span API: 202 when every span is stored; 400 naming the refused ones (the rest
/// stored).
struct Zipkin;
impl PushApi for Zipkin {
    const PUSH: Push = Push {
        kind: Kind::ZipkinJson,
        protocol: "zipkin",
        decode: Body::zipkin,
        stored: StatusCode::ACCEPTED,
    };
}

/// A push API whose body is decoded from its `Content-Type` and `Content-Encoding` alone, and
/// whose refusals name the refused items: one route served by [`push`].
trait PushApi {
    const PUSH: Push;
}

/// What a [`PushApi`] differs in.
struct Push {
    /// What the sender is authenticated for.
    kind: Kind,
    /// The protocol label of `tributary_ingest_requests_total`.
    protocol: &'static str,
    decode: fn(Bytes, &str, &str) -> Result<Body, Error>,
    /// The status when everything is stored.
    stored: StatusCode,
}

/// The handler of every [`PushApi`].
#[tracing::instrument(skip_all, fields(protocol = P::PUSH.protocol, bytes = body.len()))]
async fn push<P: PushApi>(
    State(ing): State<Arc<Ingester>>,
    State(auth): State<Auth>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api = P::PUSH;
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let result = async {
        let ctx = ing.authenticate(api.kind, &headers, cert.as_deref(), &auth)?;
        let body = (api.decode)(body, header(header::CONTENT_TYPE), header(header::CONTENT_ENCODING))?;
        let kind = body.kind();
        Ok::<_, Error>((kind, ing.write(ctx, body).await?))
    }
    .await;
    let response = match result {
        Ok((kind, outcome)) => match error::refusal(kind, &outcome) {
            None => api.stored.into_response(),
            Some(e) => error::response(&e),
        },
        Err(e) => error::response(&e),
    };
    count(&ing, api.protocol, &response);
    response
}

/// Counts a request by protocol and status in `tributary_ingest_requests_total`.
pub(crate) fn count(ing: &Ingester, protocol: &'static str, response: &Response) {
    ing.metrics()
        .requests
        .get_or_create(&RequestLabels {
            protocol,
            status: response.status().as_u16(),
        })
        .inc();
}

#[tracing::instrument(skip_all)]
async fn flush(
    State(ing): State<Arc<Ingester>>,
    State(auth): State<Auth>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(e) = auth.check_admin(authorization, cert.as_deref()) {
        return error::response(&Error::from_auth(e));
    }
    match ing.flush().await {
        Ok(summary) => Json(summary).into_response(),
        Err(e) => error::response(&e),
    }
}
