//! One rule group: its schedule (aligned evaluation times, missed iterations), the evaluation
//! of its rules in order, what they write and send, and the ruler's counters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tributary_storage::types::{CLUSTER, Labels, METRIC_NAME, STALE_NAN_BITS, TimestampMs};

use super::alert::{Alert, Alerts, Found};
use super::file::{GroupSpec, Language, RuleKind, RuleSpec};
use super::notifier::{self, Notifier};
use super::template::{self, TemplateData};
use super::{RuleSample, RuleSink, RulerConfig};
use crate::error::{Error, Result};
use crate::http::params::now_ms;
use crate::logql::{LogqlEngine, LogqlValue};
use crate::promql::{Engine, Value};

/// A group is known by its file and name (names are unique within a file).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub(crate) file: String,
    pub(crate) name: String,
}

impl GroupKey {
    /// The `rule_group` label: `file;name`, as Prometheus names it.
    fn label(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

/// A loaded group and the state of its last evaluation.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) key: GroupKey,
    pub(crate) spec: GroupSpec,
    pub(crate) interval_ms: i64,
    pub(crate) state: Mutex<GroupState>,
}

#[derive(Debug, Default)]
pub(crate) struct GroupState {
    pub(crate) rules: Vec<RuleState>,
    pub(crate) last_evaluation_ms: Option<TimestampMs>,
    pub(crate) evaluation_seconds: f64,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct RuleState {
    /// `None` until evaluated; then the last error, if any.
    pub(crate) last_result: Option<std::result::Result<(), String>>,
    pub(crate) last_evaluation_ms: Option<TimestampMs>,
    pub(crate) evaluation_seconds: f64,
    /// Alerting rules only.
    pub(crate) alerts: Alerts,
    /// The series the rule wrote last time, which get a staleness marker when they end.
    written: HashSet<Labels>,
}

impl Group {
    pub(crate) fn new(spec: GroupSpec, cfg: &RulerConfig) -> Self {
        let interval_ms = spec
            .interval_ms
            .unwrap_or(cfg.evaluation_interval.as_millis() as i64)
            .max(1);
        let rules = spec.rules.iter().map(|_| RuleState::default()).collect();
        Self {
            key: GroupKey {
                file: spec.file.clone(),
                name: spec.name.clone(),
            },
            spec,
            interval_ms,
            state: Mutex::new(GroupState {
                rules,
                ..GroupState::default()
            }),
        }
    }

    /// Takes over the state of `old` (the same group before a reload) for each rule of the same
    /// name, kind and expression, so alerts neither restart pending nor get lost.
    pub(crate) fn take_state_from(&self, old: &Group) {
        let old_state = old.state.lock();
        let mut state = self.state.lock();
        state.last_evaluation_ms = old_state.last_evaluation_ms;
        state.evaluation_seconds = old_state.evaluation_seconds;
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let same = old.spec.rules.iter().position(|r| {
                r.name() == rule.name()
                    && r.expr == rule.expr
                    && matches!(
                        (&r.kind, &rule.kind),
                        (RuleKind::Recording { .. }, RuleKind::Recording { .. })
                            | (RuleKind::Alerting { .. }, RuleKind::Alerting { .. })
                    )
            });
            if let Some(j) = same {
                state.rules[i] = old_state.rules[j].clone();
            }
        }
    }

    /// The first evaluation time at or after `now`: the multiples of the interval shifted by a
    /// hash of the group (Prometheus's `EvalTimestamp`), so groups spread over the interval.
    pub(crate) fn next_evaluation(&self, now: TimestampMs) -> TimestampMs {
        next_evaluation(now, self.interval_ms, self.offset_ms())
    }

    fn offset_ms(&self) -> i64 {
        let mut h = twox_hash::XxHash64::with_seed(0);
        h.write(self.key.file.as_bytes());
        h.write(b";");
        h.write(self.key.name.as_bytes());
        (h.finish() % self.interval_ms as u64) as i64
    }
}

/// Staleness markers at `at` for the series the rules of `old` wrote last that no rule of `new`
/// (the groups replacing them, their state already taken over) carries on writing: the output
/// of the groups and rules a reload removed.
pub(crate) fn ended_by_reload(old: &[Arc<Group>], new: &[Arc<Group>], at: TimestampMs) -> Vec<RuleSample> {
    // What the rules of `groups` wrote at their last evaluation.
    let written = |groups: &[Arc<Group>]| -> Vec<Labels> {
        groups
            .iter()
            .flat_map(|g| {
                g.state
                    .lock()
                    .rules
                    .iter()
                    .flat_map(|r| r.written.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let carried: HashSet<Labels> = written(new).into_iter().collect();
    let mut ended: Vec<Labels> = written(old)
        .into_iter()
        .filter(|l| !carried.contains(l))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    ended.sort();
    ended
        .into_iter()
        .map(|labels| RuleSample {
            labels,
            timestamp_ms: at,
            value: f64::from_bits(STALE_NAN_BITS),
        })
        .collect()
}

/// The first `t >= now` with `t ≡ offset (mod interval)`.
pub(crate) fn next_evaluation(now: TimestampMs, interval: i64, offset: i64) -> TimestampMs {
    let base = now - (now - offset).rem_euclid(interval);
    if base < now { base + interval } else { base }
}

/// What every group's evaluation uses.
#[derive(Debug, Clone)]
pub(crate) struct EvalContext {
    pub(crate) cfg: RulerConfig,
    pub(crate) engine: Arc<Engine>,
    /// LogQL groups' expressions evaluate here (the Loki API's engine).
    pub(crate) logql: Arc<LogqlEngine>,
    pub(crate) sink: Arc<dyn RuleSink>,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) metrics: RulerMetrics,
}

/// Runs `group` on its schedule until the task is aborted; with `restore`, the first evaluation
/// is followed by the restore of its alerts' active-since times.
pub(crate) async fn schedule(group: Arc<Group>, ctx: EvalContext, restore: bool) {
    {
        let mut state = group.state.lock();
        for r in &mut state.rules {
            r.alerts.restored |= !restore;
        }
    }
    let label = group.key.label();
    let mut next = group.next_evaluation(now_ms());
    let mut restore = restore;
    loop {
        let wait = next - now_ms();
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
        evaluate(&group, &ctx, next).await;
        if restore {
            restore_alerts(&group, &ctx, now_ms()).await;
            restore = false;
        }
        ctx.metrics.iterations.get_or_create(&GroupLabel::new(&label)).inc();
        // Iterations an overrun swallowed are skipped, not caught up on.
        let missed = (now_ms() - next) / group.interval_ms - 1;
        if missed > 0 {
            ctx.metrics
                .missed
                .get_or_create(&GroupLabel::new(&label))
                .inc_by(missed as u64);
        }
        next += (missed.max(0) + 1) * group.interval_ms;
    }
}

/// Evaluates every rule of `group` at `ts`, in order, writing and sending what they produce.
pub(crate) async fn evaluate(group: &Group, ctx: &EvalContext, ts: TimestampMs) {
    let started = Instant::now();
    let label = GroupLabel::new(&group.key.label());
    let write_ts = ts - group.spec.query_offset_ms;
    let mut to_send = Vec::new();
    for (i, rule) in group.spec.rules.iter().enumerate() {
        let rule_started = Instant::now();
        ctx.metrics.evaluations.get_or_create(&label).inc();
        let mut rule_state = group.state.lock().rules[i].clone();
        let result = evaluate_rule(group, rule, &mut rule_state, ctx, ts, write_ts).await;
        if let Err(e) = &result {
            ctx.metrics.failures.get_or_create(&label).inc();
            tracing::warn!(group = %group.key.name, file = %group.key.file, rule = rule.name(), error = %e, "rule evaluation failed");
        }
        if let RuleKind::Alerting { .. } = rule.kind {
            let due = rule_state
                .alerts
                .due(ts, ctx.cfg.resend_delay.as_millis() as i64, group.interval_ms);
            to_send.extend(due.into_iter().map(|a| to_notification(&a, rule, &ctx.cfg)));
        }
        rule_state.last_result = Some(result.map_err(|e| e.to_string()));
        rule_state.last_evaluation_ms = Some(ts);
        rule_state.evaluation_seconds = rule_started.elapsed().as_secs_f64();
        group.state.lock().rules[i] = rule_state;
    }
    ctx.notifier.send(to_send);
    let seconds = started.elapsed().as_secs_f64();
    {
        let mut state = group.state.lock();
        state.last_evaluation_ms = Some(ts);
        state.evaluation_seconds = seconds;
    }
    ctx.metrics.duration.get_or_create(&label).observe(seconds);
    ctx.metrics.last_duration.get_or_create(&label).set(seconds);
    ctx.metrics
        .last_evaluation
        .get_or_create(&label)
        .set(ts as f64 / 1000.0);
}

async fn evaluate_rule(
    group: &Group,
    rule: &RuleSpec,
    state: &mut RuleState,
    ctx: &EvalContext,
    ts: TimestampMs,
    write_ts: TimestampMs,
) -> Result<()> {
    let vector = instant_vector(group.spec.language, &rule.expr, ctx, write_ts).await?;
    let limit = group.spec.limit;
    let mut samples = match &rule.kind {
        RuleKind::Recording { record } => {
            if limit > 0 && vector.len() > limit {
                return Err(Error::Execution(format!(
                    "exceeded limit of {limit} with {} series",
                    vector.len()
                )));
            }
            let mut out = Vec::with_capacity(vector.len());
            let mut seen = HashSet::new();
            for (mut labels, value) in vector {
                labels.set(METRIC_NAME, record);
                for (k, v) in &rule.labels {
                    labels.set(k, v);
                }
                with_cluster(&mut labels, &ctx.cfg.default_cluster);
                if !seen.insert(labels.clone()) {
                    return Err(Error::Execution(
                        "vector contains metrics with the same labelset after applying rule labels".into(),
                    ));
                }
                out.push(RuleSample {
                    labels,
                    timestamp_ms: write_ts,
                    value,
                });
            }
            out
        }
        RuleKind::Alerting {
            alert,
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            if limit > 0 && vector.len() > limit {
                return Err(Error::Execution(format!(
                    "exceeded limit of {limit} with {} alerts",
                    vector.len()
                )));
            }
            let mut found = Vec::with_capacity(vector.len());
            let mut seen = HashSet::new();
            for (mut labels, value) in vector {
                labels.remove(METRIC_NAME);
                let expr_labels: BTreeMap<String, String> = labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                let data = TemplateData {
                    labels: &expr_labels,
                    value,
                    external_labels: &ctx.cfg.external_labels,
                    external_url: &ctx.cfg.external_url,
                };
                for (k, v) in &rule.labels {
                    labels.set(k, &expand(v, &data));
                }
                labels.set("alertname", alert);
                with_cluster(&mut labels, &ctx.cfg.default_cluster);
                let annotations = annotations.iter().map(|(k, v)| (k.clone(), expand(v, &data))).collect();
                if !seen.insert(labels.clone()) {
                    return Err(Error::Execution(
                        "vector contains metrics with the same labelset after applying alert labels".into(),
                    ));
                }
                found.push(Found {
                    labels,
                    annotations,
                    value,
                });
            }
            state.alerts.eval(found, ts, write_ts, *for_ms, *keep_firing_for_ms)
        }
    };
    let now_written: HashSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
    for ended in state.written.difference(&now_written) {
        samples.push(RuleSample {
            labels: ended.clone(),
            timestamp_ms: write_ts,
            value: f64::from_bits(STALE_NAN_BITS),
        });
    }
    if !samples.is_empty() {
        ctx.sink.write(samples).await.map_err(Error::Unavailable)?;
    }
    state.written = now_written;
    Ok(())
}

/// `expr` evaluated at `ts` (ms) in `language`, as (labels, value) pairs; a scalar is one
/// sample without labels.
async fn instant_vector(
    language: Language,
    expr: &str,
    ctx: &EvalContext,
    ts: TimestampMs,
) -> Result<Vec<(Labels, f64)>> {
    let vector = match language {
        Language::Promql => match ctx.engine.instant_query(expr, ts, None).await?.value {
            Value::Vector(v) => Some(v),
            Value::Scalar { value, .. } => return Ok(vec![(Labels::default(), value)]),
            _ => None,
        },
        Language::Logql => match ctx.logql.query_instant(expr, ts.saturating_mul(1_000_000)).await?.value {
            LogqlValue::Vector(v) => Some(v),
            LogqlValue::Scalar { value, .. } => return Ok(vec![(Labels::default(), value)]),
            _ => None,
        },
    };
    match vector {
        Some(v) => Ok(v.into_iter().map(|s| (s.labels, s.value)).collect()),
        None => Err(Error::Execution(format!(
            "rule result is not a vector or scalar: {expr}"
        ))),
    }
}

/// A label or annotation template expanded; a failure reads as the failure, as in Prometheus.
fn expand(text: &str, data: &TemplateData<'_>) -> String {
    template::expand(text, data).unwrap_or_else(|e| format!("<error expanding template: {e}>"))
}

fn with_cluster(labels: &mut Labels, default_cluster: &str) {
    if labels.get(CLUSTER).is_none() {
        labels.set(CLUSTER, default_cluster);
    }
}

/// An alert as Alertmanager receives it: external labels under its own, `endsAt` its
/// resolution or its validity, a link to the expression.
fn to_notification(a: &Alert, rule: &RuleSpec, cfg: &RulerConfig) -> notifier::Alert {
    let mut labels: BTreeMap<String, String> = cfg.external_labels.clone();
    labels.extend(a.labels.iter().map(|l| (l.name.to_string(), l.value.to_string())));
    let ends_at = a.resolved_at.unwrap_or(a.valid_until);
    let expr: String = form_urlencoded::byte_serialize(rule.expr.as_bytes()).collect();
    notifier::Alert {
        labels,
        annotations: a.annotations.clone(),
        starts_at: utc(a.active_at),
        ends_at: Some(utc(ends_at)),
        generator_url: format!(
            "{}/graph?g0.expr={expr}&g0.tab=1",
            cfg.external_url.trim_end_matches('/')
        ),
    }
}

pub(crate) fn utc(ms: TimestampMs) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// After a restart: reads each alerting rule's `ALERTS_FOR_STATE` of the last
/// `for_outage_tolerance` and restores its active alerts' times (see `alert`).
async fn restore_alerts(group: &Group, ctx: &EvalContext, now: TimestampMs) {
    let tolerance_s = ctx.cfg.for_outage_tolerance.as_secs().max(1);
    for (i, rule) in group.spec.rules.iter().enumerate() {
        let RuleKind::Alerting { alert, for_ms, .. } = &rule.kind else {
            continue;
        };
        let grace_ms = ctx.cfg.for_grace_period.as_millis() as i64;
        let has_active = !group.state.lock().rules[i].alerts.active.is_empty();
        let mut saved = HashMap::new();
        if *for_ms >= grace_ms && has_active {
            let query = format!(
                "ALERTS_FOR_STATE{{alertname={}}}[{tolerance_s}s]",
                serde_json::Value::String(alert.clone())
            );
            match ctx.engine.instant_query(&query, now, None).await {
                Ok(answer) => {
                    if let Value::Matrix(series) = answer.value {
                        for s in series {
                            let Some(last) = s.samples.last() else { continue };
                            let mut labels = s.labels;
                            labels.remove(METRIC_NAME);
                            saved.insert(labels, (last.timestamp, last.value));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(rule = %alert, error = %e, "reading ALERTS_FOR_STATE to restore alerts failed");
                }
            }
        }
        let mut state = group.state.lock();
        state.rules[i].alerts.restore(&saved, now, *for_ms, grace_ms);
    }
}

/// The `rule_group` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabel {
    rule_group: String,
}

impl GroupLabel {
    fn new(label: &str) -> Self {
        Self {
            rule_group: label.to_string(),
        }
    }
}

/// The ruler's counters: Prometheus's `prometheus_rule_*` with a `tributary_ruler_` prefix.
#[derive(Debug, Clone)]
pub(crate) struct RulerMetrics {
    evaluations: Family<GroupLabel, Counter>,
    failures: Family<GroupLabel, Counter>,
    iterations: Family<GroupLabel, Counter>,
    missed: Family<GroupLabel, Counter>,
    duration: Family<GroupLabel, Histogram>,
    last_duration: Family<GroupLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    last_evaluation: Family<GroupLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    reload_success: Gauge,
}

impl Default for RulerMetrics {
    fn default() -> Self {
        Self {
            evaluations: Family::default(),
            failures: Family::default(),
            iterations: Family::default(),
            missed: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0])
            }),
            last_duration: Family::default(),
            last_evaluation: Family::default(),
            reload_success: Gauge::default(),
        }
    }
}

impl RulerMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_ruler_rule_evaluations",
            "Rule evaluations, by group",
            self.evaluations.clone(),
        );
        r.register(
            "tributary_ruler_rule_evaluation_failures",
            "Rule evaluations that failed, by group",
            self.failures.clone(),
        );
        r.register(
            "tributary_ruler_rule_group_iterations",
            "Scheduled group evaluations run",
            self.iterations.clone(),
        );
        r.register(
            "tributary_ruler_rule_group_iterations_missed",
            "Scheduled group evaluations skipped because an evaluation overran",
            self.missed.clone(),
        );
        r.register(
            "tributary_ruler_rule_group_duration_seconds",
            "How long a group's evaluation took",
            self.duration.clone(),
        );
        r.register(
            "tributary_ruler_rule_group_last_duration_seconds",
            "How long the group's last evaluation took",
            self.last_duration.clone(),
        );
        r.register(
            "tributary_ruler_rule_group_last_evaluation_timestamp_seconds",
            "When the group was last evaluated",
            self.last_evaluation.clone(),
        );
        r.register(
            "tributary_ruler_config_last_reload_successful",
            "Whether the last load of the rule files succeeded",
            self.reload_success.clone(),
        );
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        self.reload_success.set(i64::from(ok));
    }
}

#[cfg(test)]
mod tests;
