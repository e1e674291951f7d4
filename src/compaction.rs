//! The compactor role's wiring: its schedule, `POST /api/v1/admin/compact`, and its metrics.
//!
//! Runs in the `all-in-one` and `compactor` roles. The rounds themselves (lease, retention,
//! merges, deletion) are `tributary_storage::compactor`'s.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use axum::routing::post;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tributary_storage::auth::{Auth, ClientCertificate};
use tributary_storage::{CompactionReport, Compactor};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Counters of every round this process ran.
#[derive(Debug, Default, Clone)]
pub(crate) struct CompactionMetrics {
    rounds: Family<ResultLabels, Counter>,
    files_in: Counter,
    files_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    rows_collapsed: Counter,
    expired_files: Counter,
    rollup_days: Counter,
    deleted_files: Counter,
    failures: Counter,
}

impl CompactionMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_compaction_rounds",
            "Compaction rounds by result (ok, skipped: another compactor holds the lease, error)",
            self.rounds.clone(),
        );
        r.register(
            "tributary_compaction_files_in",
            "Files merged away",
            self.files_in.clone(),
        );
        r.register(
            "tributary_compaction_files_out",
            "Files written by merges",
            self.files_out.clone(),
        );
        r.register(
            "tributary_compaction_bytes_in",
            "Bytes of merged input files",
            self.bytes_in.clone(),
        );
        r.register(
            "tributary_compaction_bytes_out",
            "Bytes of merge outputs",
            self.bytes_out.clone(),
        );
        r.register(
            "tributary_compaction_rows_collapsed",
            "Duplicate rows merges collapsed",
            self.rows_collapsed.clone(),
        );
        r.register(
            "tributary_compaction_expired_files",
            "Files retention dropped",
            self.expired_files.clone(),
        );
        r.register(
            "tributary_compaction_rollup_days",
            "Cluster-days whose 5m/1h rollups were written",
            self.rollup_days.clone(),
        );
        r.register(
            "tributary_compaction_deleted_files",
            "Removed files deleted from the object store",
            self.deleted_files.clone(),
        );
        r.register(
            "tributary_compaction_failures",
            "Failed steps of compaction rounds (a merge, a deletion, a whole round)",
            self.failures.clone(),
        );
    }

    fn record(&self, outcome: &Result<CompactionReport, tributary_storage::Error>) {
        let result = match outcome {
            Ok(r) if !r.ran => "skipped",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        self.rounds.get_or_create(&ResultLabels { result }).inc();
        match outcome {
            Ok(r) => {
                self.files_in.inc_by(r.files_in);
                self.files_out.inc_by(r.files_out);
                self.bytes_in.inc_by(r.bytes_in);
                self.bytes_out.inc_by(r.bytes_out);
                self.rows_collapsed.inc_by(r.rows_in.saturating_sub(r.rows_out));
                self.expired_files.inc_by(r.expired_files);
                self.rollup_days.inc_by(r.rollup_days);
                self.deleted_files.inc_by(r.deleted_files);
                self.failures.inc_by(r.failures.len() as u64);
            }
            Err(_) => {
                self.failures.inc();
            }
        }
    }
}

/// A compactor with its metrics, shared by the schedule and the admin endpoint.
#[derive(Debug, Clone)]
pub(crate) struct CompactionService {
    compactor: Arc<Compactor>,
    metrics: CompactionMetrics,
    /// Who may call the admin endpoint (`admin = true`).
    auth: Auth,
}

impl CompactionService {
    pub(crate) fn new(compactor: Compactor, registry: &mut Registry, auth: Auth) -> Self {
        let metrics = CompactionMetrics::default();
        metrics.register(registry);
        Self {
            compactor: Arc::new(compactor),
            metrics,
            auth,
        }
    }

    async fn round(&self, force: bool) -> Result<CompactionReport, tributary_storage::Error> {
        let outcome = self.compactor.run_once(force).await;
        self.metrics.record(&outcome);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "compaction round failed");
        }
        outcome
    }

    /// `POST /api/v1/admin/compact`: one round now; answers with its report when done (409
    /// when another compactor holds the lease, 500 when the round could not run).
    /// `?force=true` treats the current day as settled (one file per cluster and day now).
    /// With a token (needed when `auth.required`), the token needs `admin = true`: 401/403.
    pub(crate) fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/admin/compact", post(compact_now))
            .with_state(self.clone())
    }

    /// Rounds every `storage.compaction.interval` until `stop`, then gives up the lease.
    pub(crate) async fn run_schedule(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.compactor.config().enabled {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(self.compactor.config().interval) => {}
                    _ = stop.changed() => break,
                }
                // A round cut short by the stop leaves only committed work or unlisted
                // garbage; the lease is then released below rather than left to expire (a
                // restarted compactor would otherwise wait for `lease_ttl`).
                tokio::select! {
                    _ = self.round(false) => {}
                    _ = stop.changed() => break,
                }
            }
        } else {
            let _ = stop.changed().await;
        }
        if let Err(e) = self.compactor.release().await {
            tracing::warn!(error = %e, "releasing the compactor lease failed; it expires on its own");
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct CompactParams {
    #[serde(default)]
    force: bool,
}

async fn compact_now(
    State(svc): State<CompactionService>,
    cert: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    axum::extract::Query(p): axum::extract::Query<CompactParams>,
) -> impl IntoResponse {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    match svc.auth.check_admin(authorization, cert.as_deref()) {
        Ok(()) => {}
        Err(e @ tributary_storage::Error::Forbidden { .. }) => {
            return (StatusCode::FORBIDDEN, format!("{e}\n")).into_response();
        }
        Err(e) => return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
    }
    match svc.round(p.force).await {
        Ok(r) if r.ran => (StatusCode::OK, Json(serde_json::to_value(&r).unwrap_or_default())).into_response(),
        Ok(r) => (StatusCode::CONFLICT, Json(serde_json::to_value(&r).unwrap_or_default())).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("compaction round failed: {e}\n"),
        )
            .into_response(),
    }
}

/// This process's name in the compactor lease: the host (the pod, on Kubernetes) and a
/// per-start id, so a restarted compactor never mistakes an old term for its own.
pub(crate) fn owner_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "tributary".into());
    format!("{host}-{}", uuid::Uuid::now_v7().simple())
}
