//! Who may read: every data-reading handler takes its engine through [`Reader`], which
//! authenticates the request against the token table and hands out the engine scoped to the
//! token's read scope (`Engine::scoped`, `LogqlEngine::scoped`). A handler that reads data
//! through `State` instead would read unscoped, so none does: only the endpoints that read no
//! data (build info, `format_query`, `parse_query`) take the state directly.
//!
//! The token comes from `Authorization` (Bearer, or basic auth with the token as password):
//! Grafana sends it either way (its basic auth, or a custom `Authorization` header). Over mTLS,
//! a request without a token is identified by its verified client certificate (the
//! `ClientCertificate` extension the TLS layer sets); `Auth::identify` holds the rule.
//!
//! The engine is also put under the token's own query limits (`Engine::limited`, see
//! `token_limits`), and the request takes one of the token's concurrency permits here, held
//! until its handler returns (a live tail gives it back once upgraded).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use tokio::sync::OwnedSemaphorePermit;
use tributary_storage::auth::{Auth, ClientCertificate, Identity};
use tributary_storage::scope::ClusterScope;

use super::error::{LokiError, PromError};
use crate::error::Error;
use crate::logql::LogqlEngine;
use crate::metrics::QueryMetrics;
use crate::promql::Engine;
use crate::token_limits::take_slot;

/// The state of an API's router: its engine and the token table.
#[derive(Debug)]
pub(crate) struct ApiState<E> {
    engine: Arc<E>,
    auth: Auth,
}

impl<E> ApiState<E> {
    pub(crate) fn new(engine: Arc<E>, auth: Auth) -> Self {
        Self { engine, auth }
    }
}

impl<E> Clone for ApiState<E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            auth: self.auth.clone(),
        }
    }
}

/// The unscoped engine, for the handlers that read no data.
impl<E> FromRef<ApiState<E>> for Arc<E> {
    fn from_ref(state: &ApiState<E>) -> Self {
        state.engine.clone()
    }
}

/// An engine that can be narrowed to a read scope, and how its API answers a refusal.
pub(crate) trait Scoped: Sized + Send + Sync + 'static {
    /// The API's error response.
    type Rejection: From<Error> + IntoResponse;
    /// The engine reading only the clusters `scope` admits.
    fn scoped(&self, scope: &ClusterScope) -> Self;
    /// The engine under the query limits of the token `id`.
    fn limited(&self, id: &Identity) -> Self;
    /// Where token refusals are counted.
    fn metrics(&self) -> QueryMetrics;
}

impl Scoped for Engine {
    type Rejection = PromError;
    fn scoped(&self, scope: &ClusterScope) -> Self {
        Engine::scoped(self, scope)
    }
    fn limited(&self, id: &Identity) -> Self {
        Engine::limited(self, id)
    }
    fn metrics(&self) -> QueryMetrics {
        Engine::metrics(self).clone()
    }
}

impl Scoped for crate::traces::TraceEngine {
    type Rejection = LokiError;
    fn scoped(&self, scope: &ClusterScope) -> Self {
        crate::traces::TraceEngine::scoped(self, scope)
    }
    fn limited(&self, id: &Identity) -> Self {
        crate::traces::TraceEngine::limited(self, id)
    }
    fn metrics(&self) -> QueryMetrics {
        crate::traces::TraceEngine::metrics(self).clone()
    }
}

impl Scoped for LogqlEngine {
    type Rejection = LokiError;
    fn scoped(&self, scope: &ClusterScope) -> Self {
        LogqlEngine::scoped(self, scope)
    }
    fn limited(&self, id: &Identity) -> Self {
        LogqlEngine::limited(self, id)
    }
    fn metrics(&self) -> QueryMetrics {
        LogqlEngine::metrics(self).clone()
    }
}

/// The engine this request may read with: scoped to its token's read scope and limited by its
/// query limits, or the whole engine for a request without a token while `auth.required` is
/// false; and the token's concurrency permit, held while the handler runs (bind it, e.g.
/// `Reader(engine, _slot)`). 401 without a token (when required) or with an unknown one; 403
/// for a token without a read scope; 429 for a token already running its
/// `max_concurrent_queries`.
#[derive(Debug)]
pub(crate) struct Reader<E>(pub(crate) Arc<E>, pub(crate) Option<OwnedSemaphorePermit>);

impl<E: Scoped> FromRequestParts<ApiState<E>> for Reader<E> {
    type Rejection = E::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState<E>) -> Result<Self, Self::Rejection> {
        let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        // Set by the TLS layer on a TLS connection; `Auth` decides between it and the token.
        let client_cert = parts.extensions.get::<ClientCertificate>();
        match state
            .auth
            .reader(authorization, client_cert)
            .map_err(Error::from_auth)?
        {
            None => Ok(Reader(state.engine.clone(), None)),
            Some(id) => {
                let slot = take_slot(&id, &state.engine.metrics())?;
                let engine = state.engine.scoped(&id.read).limited(&id);
                Ok(Reader(Arc::new(engine), slot))
            }
        }
    }
}
