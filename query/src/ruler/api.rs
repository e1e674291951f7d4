//! `/api/v1/rules`, `/api/v1/alerts` and `POST /-/reload`, in Prometheus's shapes. As each
//! system answers on its own: `/api/v1/` lists the PromQL rules (Prometheus), and the same
//! listings under `/prometheus/api/v1/`, where Grafana's Loki data source asks, list the LogQL
//! rules (Loki's ruler). A Grafana with both data sources so shows each rule once, under the
//! data source whose language its query is in.
//! Without a ruler the listings are empty (Grafana's alerting pages then show no rules instead
//! of a load error) and a reload answers that no ruler runs.
//!
//! Loki's ruler config API, read-only: `GET /loki/api/v1/rules` (YAML: namespace, our rule
//! file, to its groups in the rule-file format), `.../rules/{namespace}` and
//! `.../rules/{namespace}/{group}`, over the LogQL groups only (Loki's ruler holds no PromQL).
//! As Loki: `Content-Type: application/yaml`; nothing to list is a 404 `no rule groups found`,
//! an unknown group a 404 `group does not exist` (Grafana reads both as "empty"). Rules come
//! from files, so POST and DELETE answer 405 naming that.
//!
//! Grafana decides a data source has a ruler it may edit through these probes (its
//! `buildInfo.ts`): the Prometheus data source reads `/api/v1/status/buildinfo`, and without
//! Mimir's `features` map there treats us as Prometheus: rules listed, read-only. The Loki
//! data source skips buildinfo: `/prometheus/api/v1/rules` must answer (rules listed), then
//! `GET /api/prom/rules/test/test` (Loki's legacy ruler path, where Grafana's proxy sends Loki
//! ruler calls) probes editing; we do not serve that path, and its plain 404 reads as "ruler
//! API not supported": read-only. Answering it with Loki's `group does not exist` would make
//! Grafana offer editing we refuse.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Serialize;
use serde_json::{Value as Json, json};
use tributary_storage::auth::{Auth, ClientCertificate};
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{CLUSTER, Labels, TimestampMs};

use super::Ruler;
use super::alert::{Alert, AlertState};
use super::file::{GroupSpec, Language, RuleKind};
use super::group::{RuleState, utc};
use crate::error::Error;
use crate::http::error::{LokiError, PromError};
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
        .route("/loki/api/v1/rules", read_only(get(loki_rules)))
        .route("/loki/api/v1/rules/{namespace}", read_only(get(loki_namespace)))
        .route("/loki/api/v1/rules/{namespace}/{group}", read_only(get(loki_group)))
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

/// The language of the rules a listing path shows: Loki's under `/prometheus/`, else PromQL.
fn listed_language(path: &MatchedPath) -> Language {
    if path.as_str().starts_with("/prometheus/") {
        Language::Logql
    } else {
        Language::Promql
    }
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
    path: MatchedPath,
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
    let language = listed_language(&path);
    for g in state.ruler.as_ref().map(|r| r.groups()).unwrap_or_default() {
        if g.spec.language != language
            || (!groups_wanted.is_empty() && !groups_wanted.contains(&g.key.name.as_str()))
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
    path: MatchedPath,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> ApiResult {
    let scope = reader(&state, &headers, certificate.as_deref())?;
    let mut all = Vec::new();
    let language = listed_language(&path);
    for g in state.ruler.as_ref().map(|r| r.groups()).unwrap_or_default() {
        if g.spec.language != language {
            continue;
        }
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
        return Err(Error::BadData(
            "no ruler runs: ruler.rule_files, ruler.slo_files and ruler.logql_rule_files are empty".into(),
        )
        .into());
    };
    ruler.reload().await?;
    Ok(answer(&json!(null)))
}

fn answer(data: &Json) -> Response {
    ([(CONTENT_TYPE, "application/json")], render::success(&data.to_string())).into_response()
}

fn alert_json(a: &Alert) -> Json {
    let labels: BTreeMap<&str, &str> = a.labels.iter().map(|l| (l.name, l.value)).collect();
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

/// `route` refusing Loki's mutating ruler calls (POST a group, DELETE a namespace or group)
/// with a 405 that says why.
fn read_only(route: MethodRouter<RulesState>) -> MethodRouter<RulesState> {
    let refuse = || async {
        let e = Error::MethodNotAllowed(
            "the Loki ruler config API is read-only here: rules are loaded from ruler.logql_rule_files".into(),
        );
        let mut answer = LokiError(e).into_response();
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, axum::http::HeaderValue::from_static("GET"));
        answer
    };
    route.post(refuse).put(refuse).delete(refuse)
}

/// One group as Loki's ruler API writes it: the rule-file format (a rule's labels are its own
/// over its group's, as the ruler applies them).
#[derive(Serialize)]
struct YamlGroup<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    limit: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_offset: Option<String>,
    rules: Vec<YamlRule<'a>>,
}

#[derive(Serialize)]
struct YamlRule<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a str>,
    expr: &'a str,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A duration as the rule-file format writes it; none when zero (the field's default).
fn yaml_duration(ms: i64) -> Option<String> {
    (ms != 0).then(|| crate::logql::ast::format_duration(ms.saturating_mul(1_000_000)))
}

fn yaml_group(g: &GroupSpec) -> YamlGroup<'_> {
    let rules = g
        .rules
        .iter()
        .map(|r| {
            let mut rule = YamlRule {
                record: None,
                alert: None,
                expr: &r.expr,
                for_: None,
                keep_firing_for: None,
                labels: &r.labels,
                annotations: None,
            };
            match &r.kind {
                RuleKind::Recording { record } => rule.record = Some(record),
                RuleKind::Alerting {
                    alert,
                    for_ms,
                    keep_firing_for_ms,
                    annotations,
                } => {
                    rule.alert = Some(alert);
                    rule.for_ = yaml_duration(*for_ms);
                    rule.keep_firing_for = yaml_duration(*keep_firing_for_ms);
                    rule.annotations = (!annotations.is_empty()).then_some(annotations);
                }
            }
            rule
        })
        .collect();
    YamlGroup {
        name: &g.name,
        interval: g.interval_ms.and_then(yaml_duration),
        limit: g.limit,
        query_offset: yaml_duration(g.query_offset_ms),
        rules,
    }
}

/// The LogQL groups of `namespace` (all when `None`), in file and group order.
fn logql_groups(state: &RulesState, namespace: Option<&str>) -> Vec<GroupSpec> {
    let groups = state.ruler.as_ref().map(|r| r.groups()).unwrap_or_default();
    groups
        .iter()
        .filter(|g| g.spec.language == Language::Logql && namespace.is_none_or(|n| n == g.key.file))
        .map(|g| g.spec.clone())
        .collect()
}

/// `{namespace: [group, ...]}` in YAML, or Loki's 404 when there is nothing to list.
fn yaml_namespaces(groups: &[GroupSpec]) -> Result<Response, LokiError> {
    if groups.is_empty() {
        return Err(Error::NotFound("no rule groups found".into()).into());
    }
    let mut namespaces: BTreeMap<&str, Vec<YamlGroup<'_>>> = BTreeMap::new();
    for g in groups {
        namespaces.entry(&g.file).or_default().push(yaml_group(g));
    }
    yaml_answer(&namespaces)
}

fn yaml_answer(value: &impl Serialize) -> Result<Response, LokiError> {
    let text = serde_yaml_ng::to_string(value).map_err(|e| Error::Internal(format!("rendering YAML: {e}")))?;
    Ok(([(CONTENT_TYPE, "application/yaml")], text).into_response())
}

async fn loki_rules(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
) -> Result<Response, LokiError> {
    reader(&state, &headers, certificate.as_deref())?;
    yaml_namespaces(&logql_groups(&state, None))
}

async fn loki_namespace(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
    Path(namespace): Path<String>,
) -> Result<Response, LokiError> {
    reader(&state, &headers, certificate.as_deref())?;
    yaml_namespaces(&logql_groups(&state, Some(&namespace)))
}

async fn loki_group(
    State(state): State<RulesState>,
    certificate: Option<axum::Extension<ClientCertificate>>,
    headers: HeaderMap,
    Path((namespace, group)): Path<(String, String)>,
) -> Result<Response, LokiError> {
    reader(&state, &headers, certificate.as_deref())?;
    let groups = logql_groups(&state, Some(&namespace));
    match groups.iter().find(|g| g.name == group) {
        Some(g) => yaml_answer(&yaml_group(g)),
        None => Err(Error::NotFound("group does not exist".into()).into()),
    }
}
