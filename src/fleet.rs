//! The fleet status page (`GET /`) and its JSON (`GET /api/v1/status/fleet`).
//!
//! The page is one static HTML file with its CSS and script inline (`fleet/page.html`, embedded
//! with `include_str!`: no Node toolchain at build time); its script reads the JSON, so whatever
//! the page shows a script can read too. The figures per cluster are the ingester's
//! (`tributary_ingest::fleet`: every write passes it); the storage figures are the catalog's. A
//! process without a head (the query and compactor roles) answers `clusters: null` and `head:
//! null`, and the page says so.
//!
//! Who may read the JSON: anyone while auth is off and no token is sent; otherwise a token (or
//! client certificate) with read scope `*`, since it names every cluster. The page itself holds
//! no data and is served to anyone; its script sends the token the user pastes (kept in the
//! browser's `localStorage`).

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tributary_ingest::Ingester;
use tributary_ingest::fleet::FleetSnapshot;
use tributary_ingest::ingester::HeadStatus;
use tributary_storage::Storage;
use tributary_storage::auth::{Auth, ClientCertificate};

use crate::config::Role;

/// The page: HTML, CSS and script in one file.
const PAGE: &str = include_str!("fleet/page.html");

/// The APIs the page links to, by the roles that serve them.
const QUERY_APIS: &[&str] = &[
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/metadata",
    "/api/v1/read",
    "/loki/api/v1/query_range",
    "/loki/api/v1/labels",
];
const INGEST_APIS: &[&str] = &[
    "/api/v1/write",
    "/api/v1/push",
    "/v1/metrics",
    "/v1/logs",
    "/loki/api/v1/push",
];
const RULER_APIS: &[&str] = &["/api/v1/rules", "/api/v1/alerts"];
const STATUS_APIS: &[&str] = &[
    "/api/v1/status/fleet",
    "/api/v1/status/tsdb",
    "/api/v1/status/config",
    "/api/v1/status/flags",
    "/api/v1/status/runtimeinfo",
    "/metrics",
    "/-/healthy",
    "/-/ready",
];

#[derive(Clone)]
struct FleetState {
    role: Role,
    ingester: Option<Arc<Ingester>>,
    storage: Arc<Storage>,
    auth: Auth,
}

/// The JSON's `data`.
#[derive(Serialize)]
struct FleetData {
    role: Role,
    /// Milliseconds since the epoch when this answer was made.
    now_ms: i64,
    /// Per cluster; `None` in a process without a head.
    clusters: Option<FleetSnapshot>,
    /// The head and WAL; `None` in a process without a head.
    head: Option<HeadStatus>,
    /// Files, rows and bytes per table.
    storage: Vec<TableData>,
    /// The APIs this process serves.
    apis: Vec<&'static str>,
}

#[derive(Serialize)]
struct TableData {
    table: &'static str,
    files: u64,
    rows: u64,
    bytes: u64,
}

/// The page and the JSON route.
pub(crate) fn router(role: Role, ingester: Option<Arc<Ingester>>, storage: Arc<Storage>, auth: Auth) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/v1/status/fleet", get(fleet))
        .with_state(FleetState {
            role,
            ingester,
            storage,
            auth,
        })
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn fleet(
    State(s): State<FleetState>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let refusal = match s.auth.reader(authorization, cert.as_deref()) {
        Ok(None) => None,
        Ok(Some(id)) if id.read.admits_every_cluster() => None,
        Ok(Some(id)) => Some((
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} may not read every cluster: the fleet status names them all and needs a read scope of \"*\"",
                id.name
            ),
        )),
        Err(tributary_storage::Error::Forbidden { reason }) => Some((StatusCode::FORBIDDEN, reason)),
        Err(e) => Some((StatusCode::UNAUTHORIZED, e.to_string())),
    };
    if let Some((status, error)) = refusal {
        let kind = if status == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unauthorized"
        };
        let mut r = (
            status,
            Json(json!({"status": "error", "errorType": kind, "error": error})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return r;
    }
    let mut apis: Vec<&'static str> = STATUS_APIS.to_vec();
    if s.ingester.is_some() {
        apis.extend_from_slice(INGEST_APIS);
    }
    if matches!(s.role, Role::AllInOne | Role::Query) {
        apis.extend_from_slice(QUERY_APIS);
    }
    if matches!(s.role, Role::AllInOne | Role::Ruler) {
        apis.extend_from_slice(RULER_APIS);
    }
    let data = FleetData {
        role: s.role,
        now_ms: chrono::Utc::now().timestamp_millis(),
        clusters: s.ingester.as_ref().map(|i| i.fleet_status()),
        head: s.ingester.as_ref().map(|i| i.head_status()),
        storage: s
            .storage
            .table_stats()
            .into_iter()
            .map(|(t, st)| TableData {
                table: t.dir(),
                files: st.files,
                rows: st.rows,
                bytes: st.bytes,
            })
            .collect(),
        apis,
    };
    Json(json!({"status": "success", "data": data})).into_response()
}
