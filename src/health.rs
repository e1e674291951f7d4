//! `/-/healthy` and `/-/ready`, and the startup gate: the HTTP port is bound before the WAL
//! replay (and the catalog load) so probes get an answer while the process starts.
//!
//! - `/-/healthy`: 200 while the process is up and its WAL directory (or, without a WAL, its
//!   data directory) takes a new file; 503 naming the error otherwise. For liveness probes.
//! - `/-/ready`: 200 once startup is over (the WAL replayed, the storage catalog loaded) and
//!   the last flush did not fail; 503 otherwise, saying why ("replaying WAL: 3 of 10 segments",
//!   the flush's error). For readiness probes and load balancers.
//! - Every other path answers 503 (retryable: remote-write and OTLP clients retry it) in the
//!   API's error shape until startup is over, then goes to the full app.
//! - The dedicated OTLP/HTTP port ([`otlp_router`]) is bound as early and answers 503 with
//!   `Retry-After` until startup is over, then goes to the OTLP app (the OTLP/gRPC port answers
//!   `UNAVAILABLE` meanwhile: `tributary_ingest::grpc::Otlp::starting`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::Service;
use tributary_ingest::Ingester;
use tributary_ingest::wal::ReplayProgress;

/// What the health endpoints look at; filled in as startup goes.
#[derive(Debug)]
pub(crate) struct Startup {
    /// The directory `/-/healthy` checks takes a new file.
    probe_dir: PathBuf,
    /// Fallback for `probe_dir` before it exists (the WAL directory on a first start).
    data_dir: PathBuf,
    /// The WAL replay, for roles with one.
    pub(crate) replay: Arc<ReplayProgress>,
    has_wal: bool,
    ingester: OnceLock<Arc<Ingester>>,
    app: OnceLock<Router>,
    /// The dedicated OTLP/HTTP port's app.
    otlp_app: OnceLock<Router>,
}

impl Startup {
    /// `has_wal` for roles that replay a WAL under `data_dir/wal`.
    pub(crate) fn new(data_dir: PathBuf, has_wal: bool) -> Arc<Self> {
        Arc::new(Self {
            probe_dir: if has_wal {
                data_dir.join("wal")
            } else {
                data_dir.clone()
            },
            data_dir,
            replay: Arc::new(ReplayProgress::default()),
            has_wal,
            ingester: OnceLock::new(),
            app: OnceLock::new(),
            otlp_app: OnceLock::new(),
        })
    }

    /// Startup is over: requests go to `app` (and the OTLP/HTTP port's to `otlp_app`), and
    /// `/-/ready` follows `ingester`'s flushes.
    pub(crate) fn started(&self, app: Router, otlp_app: Option<Router>, ingester: Option<Arc<Ingester>>) {
        if let Some(ing) = ingester {
            let _ = self.ingester.set(ing);
        }
        if let Some(otlp) = otlp_app {
            let _ = self.otlp_app.set(otlp);
        }
        let _ = self.app.set(app);
    }

    fn healthy(&self) -> Result<(), String> {
        let dir = if self.probe_dir.is_dir() {
            &self.probe_dir
        } else {
            &self.data_dir
        };
        let probe = dir.join(".healthy-probe");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| format!("{} does not take a new file: {e}", dir.display()))
    }

    fn ready(&self) -> Result<(), String> {
        if self.app.get().is_none() {
            return Err(self.starting());
        }
        match self.ingester.get().and_then(|i| i.flush_failure()) {
            Some(e) => Err(format!("the last flush failed: {e}")),
            None => Ok(()),
        }
    }

    /// What startup is doing now.
    fn starting(&self) -> String {
        let p = self.replay.snapshot();
        if self.has_wal && !p.finished {
            format!(
                "replaying WAL: {} of {} segments ({} of {} bytes)",
                p.done_segments, p.total_segments, p.done_bytes, p.total_bytes
            )
        } else {
            "starting: loading the storage catalog".to_string()
        }
    }
}

/// The outermost router: the health endpoints, and everything else to the app once started.
pub(crate) fn router(startup: Arc<Startup>) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .fallback(route)
        .with_state(startup)
}

/// The dedicated OTLP/HTTP port: 503 until startup is over, then the OTLP app.
pub(crate) fn otlp_router(startup: Arc<Startup>) -> Router {
    Router::new().fallback(route_otlp).with_state(startup)
}

async fn route_otlp(State(s): State<Arc<Startup>>, req: Request<Body>) -> Response {
    match s.otlp_app.get() {
        Some(app) => match app.clone().call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => {
            // OTLP/HTTP exporters retry a 503, after `Retry-After` when given.
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", s.starting())).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

async fn healthy(State(s): State<Arc<Startup>>) -> Response {
    match s.healthy() {
        Ok(()) => "Tributary is Healthy.\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn ready(State(s): State<Arc<Startup>>) -> Response {
    match s.ready() {
        Ok(()) => "Tributary is Ready.\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn route(State(s): State<Arc<Startup>>, req: Request<Body>) -> Response {
    match s.app.get() {
        Some(app) => match app.clone().call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => {
            let body = serde_json::json!({
                "status": "error",
                "errorType": "unavailable",
                "error": s.starting(),
            });
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}
