//! `/api/v1/rules`, `/api/v1/alerts` (also under `/prometheus/`, where Grafana's Loki data
//! source asks) and `POST /-/reload`, in Prometheus's shapes. Without a ruler the listings are
//! empty (Grafana's alerting pages then show no rules instead of a load error) and a reload
//! answers that no ruler runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};
use tributary_storage::auth::{Auth, ClientCertificate};
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{CLUSTER, Labels, TimestampMs};

use super::Ruler;
use super::alert::{Alert, AlertState};
use super::file::RuleKind;
use super::group::{RuleState, utc};
use crate::error::Error;
use crate::http::error::PromError;
use crate::http::params::Params;
use crate::http::render;

#[derive(Debug, Clone)]
struct RulesState {
    ruler: Option<Arc<Ruler>>,
    auth: Auth,
}

/// The rules and alerts APIs over `ruler` (none: empty listings).
pub fn router(ruler: Option<Arc<Ruler>>, auth: Auth) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/prometheus/api/v1/rules", get(rules))
        .route("/prometheus/api/v1/alerts", get(alerts))
        .route("/-/reload", post(reload).put(reload))
        .with_state(RulesState { ruler, auth })
}

type ApiResult = Result<Response, PromError>;

/// The clusters the request may see alerts of (`None`: all).
fn reader(
    state: &RulesState,
    headers: &HeaderMap,
    certificate: Option<&ClientCertificate>,
) -> Result<Option<ClusterScope>, Error> {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    state
        .auth
        .read_scope(authorization, certificate)
        .map_err(Error::from_auth)
}

fn visible(scope: &Option<ClusterScope>, labels: &Labels) -> bool {
    scope
        .as_ref()
        .is_none_or(|s| s.matches(labels.get(CLUSTER).unwrap_or_default()))
}

/// A rule's pending and firing alerts the reader's scope may see, in label order (both APIs
/// list them so).
fn visible_alerts<'a>(rule: &'a RuleState, scope: &Option<ClusterScope>) -> Vec<&'a Alert> {
    let mut alerts: Vec<&Alert> = rule
        .alerts
        .active
        .values()
        .filter(|a| a.state != AlertState::Inactive && visible(scope, &a.labels))
        .collect();
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    alerts
}

async fn rules(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let scope = reader(&state, &headers, certificate.as_deref())?;
    let p = Params::parse(url.as_deref(), &headers, &Bytes::new());
    let kind = match p.given("type") {
        None => None,
        Some("alert") => Some(true),
        Some("record") => Some(false),
        Some(other) => {
            return Err(Error::InvalidParameter {
                param: "type".into(),
                reason: format!("not supported value {other:?}"),
            }
            .into());
        }
    };
    let names: Vec<&str> = p.all("rule_name[]").collect();
    let groups_wanted: Vec<&str> = p.all("rule_group[]").collect();
    let files: Vec<&str> = p.all("file[]").collect();
    let filtered = kind.is_some() || !names.is_empty() || !groups_wanted.is_empty() || !files.is_empty();
    let mut out = Vec::new();
    for g in state.ruler.as_ref().map(|r| r.groups()).unwrap_or_default() {
        if (!groups_wanted.is_empty() && !groups_wanted.contains(&g.key.name.as_str()))
            || (!files.is_empty() && !files.contains(&g.key.file.as_str()))
        {
            continue;
        }
        let st = g.state.lock();
        let mut rules = Vec::new();
        for (spec, rs) in g.spec.rules.iter().zip(&st.rules) {
            let is_alert = matches!(spec.kind, RuleKind::Alerting { .. });
            if kind.is_some_and(|k| k != is_alert) || (!names.is_empty() && !names.contains(&spec.name())) {
                continue;
            }
            let (health, last_error) = match &rs.last_result {
                None => ("unknown", String::new()),
                Some(Ok(())) => ("ok", String::new()),
                Some(Err(e)) => ("err", e.clone()),
            };
            let mut rule = serde_json::Map::new();
            let labels: BTreeMap<&str, &str> = spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match &spec.kind {
                RuleKind::Alerting {
                    alert,
                    for_ms,
                    keep_firing_for_ms,
                    annotations,
                } => {
                    let alerts = visible_alerts(rs, &scope);
                    let state = alerts
                        .iter()
                        .map(|a| a.state)
                        .max_by_key(|s| *s as u8)
                        .unwrap_or(AlertState::Inactive);
                    rule.insert("state".into(), json!(state.as_str()));
                    rule.insert("name".into(), json!(alert));
                    rule.insert("query".into(), json!(spec.expr));
                    rule.insert("duration".into(), json!(*for_ms as f64 / 1000.0));
                    rule.insert("keepFiringFor".into(), json!(*keep_firing_for_ms as f64 / 1000.0));
                    rule.insert("labels".into(), json!(labels));
                    rule.insert("annotations".into(), json!(annotations));
                    rule.insert(
                        "alerts".into(),
                        Json::Array(alerts.into_iter().map(alert_json).collect()),
                    );
                }
                RuleKind::Recording { record } => {
                    rule.insert("name".into(), json!(record));
                    rule.insert("query".into(), json!(spec.expr));
                    rule.insert("labels".into(), json!(labels));
                }
            }
            rule.insert("health".into(), json!(health));
            if !last_error.is_empty() {
                rule.insert("lastError".into(), json!(last_error));
            }
            rule.insert("evaluationTime".into(), json!(rs.evaluation_seconds));
            rule.insert("lastEvaluation".into(), json!(time(rs.last_evaluation_ms)));
            rule.insert("type".into(), json!(if is_alert { "alerting" } else { "recording" }));
            rules.push(Json::Object(rule));
        }
        if filtered && rules.is_empty() {
            continue;
        }
        out.push(json!({
            "name": g.key.name,
            "file": g.key.file,
            "rules": rules,
            "interval": g.interval_ms as f64 / 1000.0,
            "limit": g.spec.limit,
            "evaluationTime": st.evaluation_seconds,
            "lastEvaluation": time(st.last_evaluation_ms),
        }));
    }
    Ok(answer(&json!({ "groups": out })))
}

async fn alerts(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> ApiResult {
    let scope = reader(&state, &headers, certificate.as_deref())?;
    let mut all = Vec::new();
    for g in state.ruler.as_ref().map(|r| r.groups()).unwrap_or_default() {
        let st = g.state.lock();
        for rs in &st.rules {
            all.extend(visible_alerts(rs, &scope).into_iter().map(alert_json));
        }
    }
    Ok(answer(&json!({ "alerts": all })))
}

async fn reload(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> ApiResult {
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    state
        .auth
        .check_admin(authorization, certificate.as_deref())
        .map_err(Error::from_auth)?;
    let Some(ruler) = &state.ruler else {
        return Err(Error::BadData("no ruler runs: ruler.rule_files is empty".into()).into());
    };
    ruler.reload().await?;
    Ok(answer(&json!(null)))
}

fn answer(data: &Json) -> Response {
    ([(CONTENT_TYPE, "application/json")], render::success(&data.to_string())).into_response()
}

fn alert_json(a: &Alert) -> Json {
    let labels: BTreeMap<&str, &str> = a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    let mut out = json!({
        "labels": labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": time(Some(a.active_at)),
        "value": go_float(a.value),
    });
    if let Some(since) = a.keep_firing_since {
        out["keepFiringSince"] = json!(time(Some(since)));
    }
    out
}

/// Go's `time.Time` in JSON (RFC 3339 with the fraction it needs); never evaluated: Go's zero time.
fn time(ms: Option<TimestampMs>) -> String {
    match ms {
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(ms) => utc(ms).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as Prometheus renders an alert's value.
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}
