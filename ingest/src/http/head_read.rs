//! `POST /internal/v1/read`: the internal read API over this ingester's head, what query
//! processes fan out to (the wire format and both ends' codecs are
//! `tributary_storage::remote`'s). The head answers exactly as it does in all-in-one: the
//! matchers and time range are evaluated here, so only matching series and records travel.
//!
//! Who may call: anyone while `auth.required` is false and no token is sent; otherwise a token
//! (or client certificate) whose read scope is `*`, because a head holds every cluster and the
//! querier applies its own callers' scopes above this read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tributary_storage::auth::{Auth, ClientCertificate};
use tributary_storage::remote::{self, Call, WireError};

use crate::ingester::Ingester;

#[tracing::instrument(name = "internal.read", skip_all, fields(method))]
pub(super) async fn read(
    State(ing): State<Arc<Ingester>>,
    State(auth): State<Auth>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let allowed = match auth.reader(authorization, cert.as_deref()) {
        Ok(None) => Ok(()),
        Ok(Some(id)) if id.read.admits_every_cluster() => Ok(()),
        Ok(Some(id)) => Err(tributary_storage::Error::Forbidden {
            reason: format!(
                "token {:?} may not read every cluster: the internal read API needs a read scope of \"*\"",
                id.name
            ),
        }),
        Err(e) => Err(e),
    };
    let answer = match allowed {
        Ok(()) => match Call::from_json(&body) {
            Ok(call) => {
                tracing::Span::current().record("method", call.name());
                let head = ing.head();
                remote::answer(&call, head.as_ref(), head.as_ref(), head.as_ref()).await
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match answer {
        Ok(a) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type))],
            a.body,
        )
            .into_response(),
        Err(e) => {
            let (status, wire) = WireError::of(&e);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::to_vec(&wire).unwrap_or_default();
            (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(remote::JSON))],
                body,
            )
                .into_response()
        }
    }
}
