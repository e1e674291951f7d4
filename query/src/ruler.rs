//! The ruler: Prometheus rule files (PromQL) and Loki rule files (LogQL) evaluated over every
//! cluster, recording-rule results and alert series written back through the durable write
//! path, alerts sent to Alertmanager.
//!
//! # Rule files we accept
//!
//! Prometheus's format, YAML:
//!
//! ```yaml
//! groups:
//!   - name: fleet            # unique within its file
//!     interval: 30s          # optional; default `ruler.evaluation_interval`
//!     limit: 0               # optional; a rule answering more series fails its evaluation
//!     query_offset: 0s       # optional; evaluate at `scheduled time - query_offset`
//!     labels: {team: sre}    # optional; added to every rule of the group (a rule's own win)
//!     rules:
//!       - record: cluster:up:sum
//!         expr: sum by (cluster) (up)
//!         labels: {source: ruler}
//!       - alert: TargetDown
//!         expr: up == 0
//!         for: 5m
//!         keep_firing_for: 0s
//!         labels: {severity: page}
//!         annotations: {summary: "{{ $labels.instance }} is down"}
//! ```
//!
//! Loading refuses, naming the file, the line and the reason: YAML that does not parse or has a
//! field this format does not know, a duplicate group name in one file, a rule with both or
//! neither of `record`/`alert`, an `expr` that does not parse (our PromQL parser's message),
//! a bad duration, an invalid metric or label name, `for`/`keep_firing_for`/`annotations` on a
//! recording rule, and a label or annotation template that does not parse. A refused
//! (re)load changes nothing: the rules loaded before keep running.
//!
//! # LogQL rules
//!
//! `ruler.logql_rule_files` hold Loki's ruler format: the same YAML, with a LogQL *metric*
//! query as `expr` (`sum by (cluster) (rate({service_name="api"} |= "error" [5m])) > 10`). A
//! group carries its file's language (`file::Language`); a LogQL group's rules are checked on
//! load by our LogQL parser (a log query, which yields lines rather than samples, is refused
//! too) and evaluated through the [`LogqlEngine`] the Loki API uses, as an instant query at
//! the evaluation time. Everything after the expression is shared: recording results are
//! written as metric series through the [`RuleSink`] (as Loki's ruler remote-writes them),
//! alerts go through the same state machine, `ALERTS`/`ALERTS_FOR_STATE` and notifier, and the
//! `for` restore reads `ALERTS_FOR_STATE` through the PromQL [`Engine`] (it is a metric). A
//! file is of one language: one named by both `rule_files` (or `slo_files`) and
//! `logql_rule_files` is refused.
//!
//! # Scheduling
//!
//! Each group runs on its own task. Its evaluation times are the multiples of its interval
//! shifted by a hash of the group's file and name (Prometheus's alignment), so groups spread
//! over the interval and a group evaluates at the same phase after a restart. An evaluation
//! reads at `time - query_offset` through the same engines as the APIs (head and Parquet), so
//! it sees every sample or line acknowledged before that time. Rules of a group run in order, each
//! result written before the next rule runs (a rule may read an earlier rule's output). When an
//! evaluation overruns, the iterations it swallowed are skipped and counted as missed.
//!
//! # What is written where
//!
//! Everything leaves through a [`RuleSink`] (the binary writes to the ingester's one write path,
//! WAL first, as a push is: its own ingester in all-in-one, the ingest tier by remote-write in
//! the `ruler` role, where the engine reads every ingester's head as a querier's does): recording-rule results, and per alerting rule `ALERTS{alertname,
//! alertstate="pending"|"firing", ...}` (value 1) and `ALERTS_FOR_STATE{alertname, ...}` (value:
//! the alert's active-since time in seconds). A series keeps its `cluster` label; one without
//! gets `ruler.default_cluster`. A series a rule wrote last time and not this time gets a
//! staleness marker, as Prometheus writes; so do, at the reload, the series last written by a
//! group or rule that a reload removes (or changes: a rule is carried over only with the same
//! name, kind and expression, and a changed one starts its series afresh).
//!
//! # Alerts
//!
//! Prometheus's state machine (`alert`): an alert is pending from its first evaluation, firing
//! once `for` has passed, stays firing for `keep_firing_for` after its condition clears, then is
//! resolved and kept for 15 minutes so Alertmanager hears of the resolution. Firing alerts are
//! sent every `resend_delay`, resolved ones once per resolution and then every `resend_delay`
//! while kept; `endsAt` of a firing alert is `now + 4 × max(resend_delay, interval)`, of a
//! resolved one its resolution time. External labels are added to every alert (an alert's own
//! label wins), `generatorURL` is `external_url/graph?g0.expr=...`. `startsAt` is the time the
//! alert became active. `https://` Alertmanagers are verified against the system's roots and
//! `alertmanager_ca_file`, and may be shown a client certificate (see [`RulerConfig`]).
//!
//! After a restart, the first evaluation of each group restores the active-since time of its
//! alerts from the newest `ALERTS_FOR_STATE` sample within `for_outage_tolerance`, with
//! Prometheus's rules: an alert that had already fired keeps its time (it is not re-pending and
//! its `startsAt` is unchanged), one that would fire within `for_grace_period` fires that long
//! after the restart, and the others get the outage added. Rules whose `for` is shorter than
//! `for_grace_period` are not restored.

mod alert;
mod api;
mod file;
mod group;
mod notifier;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tributary_storage::types::{Labels, TimestampMs};

pub use api::router;

use crate::error::{Error, Result};
use crate::http::params::now_ms;
use crate::logql::LogqlEngine;
use crate::promql::Engine;
use file::Checker;
use group::{Group, RulerMetrics};

/// The `[ruler]` section. The ruler runs when `rule_files`, `slo_files` or `logql_rule_files`
/// names at least one file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulerConfig {
    /// Prometheus rule files: paths, or globs in the file name (`/etc/rules/*.yml`). Default `[]`.
    pub rule_files: Vec<String>,
    /// SLO specs (Sloth's `prometheus/v1`, see [`crate::slo`]): each is turned into its rule file
    /// by [`crate::slo::generate`] (what `tributary slo generate` prints) and loaded as one. Paths
    /// or globs, like `rule_files`. Default `[]`.
    pub slo_files: Vec<String>,
    /// LogQL rule files (Loki's ruler format: Prometheus's, with LogQL metric queries as `expr`),
    /// evaluated through the Loki API's engine. Paths or globs, like `rule_files`. Default `[]`.
    pub logql_rule_files: Vec<String>,
    /// Alertmanager base URLs; every alert goes to each (`POST {url}/api/v2/alerts`). Default `[]`.
    pub alertmanagers: Vec<String>,
    /// A group's interval when it sets none. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// How often a firing alert is sent again. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub resend_delay: Duration,
    /// The `cluster` of a written series whose expression dropped it. Default `"fleet"`.
    pub default_cluster: String,
    /// The URL alerts link back to (`generatorURL`, `$externalURL`). Default `""`.
    pub external_url: String,
    /// Labels added to every alert sent (an alert's own label wins). Default `{}`.
    pub external_labels: BTreeMap<String, String>,
    /// How often the rule files are checked for changes (modification time and size). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
    /// How long one POST to an Alertmanager may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub notification_timeout: Duration,
    /// PEM CA certificates trusted for `https://` Alertmanagers, besides the system's roots.
    /// Default: none.
    pub alertmanager_ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) presented to Alertmanagers; needs `alertmanager_key_file`.
    /// Default: none.
    pub alertmanager_cert_file: Option<PathBuf>,
    /// PEM private key of `alertmanager_cert_file`. Default: none.
    pub alertmanager_key_file: Option<PathBuf>,
    /// An alert restored after a restart fires no sooner than this after it. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub for_grace_period: Duration,
    /// How far back a restart looks for an alert's `ALERTS_FOR_STATE`. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub for_outage_tolerance: Duration,
    /// The `ruler` role only: the ingest tier's remote-write endpoint
    /// (`http://ingester:9201/api/v1/write`, a Service in front of every ingester) that rule
    /// output is written to. Required by that role; the all-in-one role writes to its own
    /// ingester and refuses it. Default `""`.
    pub remote_write_url: String,
    /// The `ruler` role only: a file holding the bearer token sent with every remote-write
    /// (read once at startup). With `auth.required` on the ingesters it must be a token whose
    /// `write` scope is a glob matching every cluster rules write (`"*"`), so each series keeps
    /// its own `cluster`. Default `""` (no token).
    pub remote_write_token_file: PathBuf,
    /// The `ruler` role only: how long one remote-write request may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub remote_write_timeout: Duration,
}

impl Default for RulerConfig {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            slo_files: Vec::new(),
            logql_rule_files: Vec::new(),
            alertmanagers: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            resend_delay: Duration::from_secs(60),
            default_cluster: "fleet".to_string(),
            external_url: String::new(),
            external_labels: BTreeMap::new(),
            reload_interval: Duration::from_secs(30),
            notification_timeout: Duration::from_secs(10),
            alertmanager_ca_file: None,
            alertmanager_cert_file: None,
            alertmanager_key_file: None,
            for_grace_period: Duration::from_secs(600),
            for_outage_tolerance: Duration::from_secs(3600),
            remote_write_url: String::new(),
            remote_write_token_file: PathBuf::new(),
            remote_write_timeout: Duration::from_secs(10),
        }
    }
}

impl RulerConfig {
    /// Whether a ruler runs: some rule file, SLO spec or LogQL rule file is named.
    pub fn enabled(&self) -> bool {
        !self.rule_files.is_empty() || !self.slo_files.is_empty() || !self.logql_rule_files.is_empty()
    }

    /// Every file the ruler reads, as patterns: the rule files, the SLO specs, the LogQL rule files.
    fn patterns(&self) -> Vec<String> {
        self.rule_files
            .iter()
            .chain(&self.slo_files)
            .chain(&self.logql_rule_files)
            .cloned()
            .collect()
    }

    /// Refuses settings the ruler cannot run with; each reason names the option.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, d) in [
            ("evaluation_interval", self.evaluation_interval),
            ("resend_delay", self.resend_delay),
            ("reload_interval", self.reload_interval),
            ("notification_timeout", self.notification_timeout),
            ("remote_write_timeout", self.remote_write_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("ruler.{name} must be positive"));
            }
        }
        if self.alertmanager_cert_file.is_some() != self.alertmanager_key_file.is_some() {
            return Err("ruler.alertmanager_cert_file and ruler.alertmanager_key_file go together".into());
        }
        if self.default_cluster.is_empty() {
            return Err("ruler.default_cluster must not be empty".into());
        }
        for name in self.external_labels.keys() {
            if !file::is_label_name(name) {
                return Err(format!("ruler.external_labels: invalid label name {name:?}"));
            }
        }
        let url = &self.remote_write_url;
        let http = url.strip_prefix("http://").is_some_and(|rest| !rest.is_empty());
        if !url.is_empty() && !http {
            return Err(format!(
                "ruler.remote_write_url = {url:?} is not an http://host:port/path URL (https is not supported yet)"
            ));
        }
        Ok(())
    }
}

/// One sample a rule produced: recording-rule output, `ALERTS` or `ALERTS_FOR_STATE`. Its
/// labels always hold `__name__` and `cluster`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSample {
    /// The series.
    pub labels: Labels,
    /// The evaluation time.
    pub timestamp_ms: TimestampMs,
    /// The value (a staleness marker's exact bits when the series ended).
    pub value: f64,
}

/// Where the ruler writes what it produces.
///
/// Contract: `write` returns once the samples are durable (or fails, saying why); the next
/// evaluation must be able to read them. Each sample names its own cluster, so one call may
/// span clusters. A failed write fails the rule's evaluation (counted and shown on
/// `/api/v1/rules` as its `lastError`, so the error must say who refused what and why). The
/// ruler itself never retries: the next evaluation writes afresh. A sink whose store can fail
/// transiently (the `ruler` role's remote-write to the ingest tier) may retry within the call,
/// bounded well under an evaluation interval, and only what cannot have been stored (a 5xx,
/// 429 or a connection error; never a refusal such as a 4xx, which would fail the same way
/// again). A call that fails part-way may have stored some of the samples; writing them again
/// is harmless (the same series, timestamp and value).
#[async_trait::async_trait]
pub trait RuleSink: Send + Sync + std::fmt::Debug {
    /// Stores `samples` durably.
    async fn write(&self, samples: Vec<RuleSample>) -> std::result::Result<(), String>;
}

/// The groups loaded and running, and how to reload them.
#[derive(Debug)]
pub struct Ruler {
    cfg: RulerConfig,
    engine: Arc<Engine>,
    logql: Arc<LogqlEngine>,
    sink: Arc<dyn RuleSink>,
    notifier: Arc<notifier::Notifier>,
    metrics: RulerMetrics,
    /// The running groups, in file and then group order, with the files' fingerprint.
    loaded: Mutex<Loaded>,
    /// Serialises reloads (the file watcher and `POST /-/reload`).
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Loaded {
    groups: Vec<Arc<Group>>,
    fingerprint: Vec<(PathBuf, Option<SystemTime>, u64)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Ruler {
    /// Loads the rule files (an error here fails startup) and registers the ruler's counters;
    /// nothing is evaluated until [`Ruler::run`]. PromQL rules evaluate through `engine`, LogQL
    /// rules through `logql` (both the APIs' own engines, so rules see what queries see).
    pub async fn new(
        cfg: RulerConfig,
        engine: Arc<Engine>,
        logql: Arc<LogqlEngine>,
        sink: Arc<dyn RuleSink>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Arc<Self>> {
        let refused = |reason| Error::RuleFile {
            file: "[ruler]".into(),
            line: 0,
            reason,
        };
        cfg.validate().map_err(refused)?;
        let client = notifier::client(&cfg).map_err(refused)?;
        let metrics = RulerMetrics::default();
        metrics.register(registry);
        let notifier_metrics = notifier::NotifierMetrics::default();
        notifier_metrics.register(registry);
        let notifier = notifier::Notifier::new(cfg.alertmanagers.clone(), client, notifier_metrics);
        let ruler = Arc::new(Self {
            cfg,
            engine,
            logql,
            sink,
            notifier,
            metrics,
            loaded: Mutex::new(Loaded::default()),
            reloading: tokio::sync::Mutex::new(()),
        });
        let (groups, fingerprint) = ruler.load().await?;
        ruler.metrics.reloaded(true);
        {
            let mut loaded = ruler.loaded.lock();
            loaded.groups = groups;
            loaded.fingerprint = fingerprint;
        }
        Ok(ruler)
    }

    /// Starts every group's schedule, then checks the files every `reload_interval` until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        {
            let mut loaded = self.loaded.lock();
            let groups = loaded.groups.clone();
            loaded.tasks = groups.iter().map(|g| self.spawn(g.clone(), true)).collect();
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.reload_interval) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            let changed = {
                let current = fingerprint(&self.cfg.patterns());
                current != self.loaded.lock().fingerprint
            };
            if changed && let Err(e) = self.reload().await {
                tracing::error!(error = %e, "reloading rule files failed; the previous rules keep running");
            }
        }
        let mut loaded = self.loaded.lock();
        for t in loaded.tasks.drain(..) {
            t.abort();
        }
    }

    /// Loads the rule files again and replaces the running groups; a group of the same file and
    /// name keeps its alerts (and their state) for rules of the same name and expression. On an
    /// error the running groups stay as they are.
    pub async fn reload(self: &Arc<Self>) -> Result<()> {
        let _one = self.reloading.lock().await;
        let result = self.load().await;
        self.metrics.reloaded(result.is_ok());
        let (groups, fingerprint) = result?;
        let ended = {
            let mut loaded = self.loaded.lock();
            for t in loaded.tasks.drain(..) {
                t.abort();
            }
            for g in &groups {
                if let Some(old) = loaded.groups.iter().find(|o| o.key == g.key) {
                    g.take_state_from(old);
                }
            }
            // State carries over from the groups replaced: nothing to restore from storage.
            loaded.tasks = groups.iter().map(|g| self.spawn(g.clone(), false)).collect();
            let old = std::mem::replace(&mut loaded.groups, groups);
            loaded.fingerprint = fingerprint;
            tracing::info!(groups = loaded.groups.len(), "rule files loaded");
            group::ended_by_reload(&old, &loaded.groups, now_ms())
        };
        // The series of removed groups and rules end now, as Prometheus marks them; a failure
        // leaves them to go stale by lookback, which is no reason to refuse the new rules.
        if !ended.is_empty()
            && let Err(reason) = self.sink.write(ended).await
        {
            tracing::warn!(%reason, "writing staleness markers for removed rules failed");
        }
        Ok(())
    }

    async fn load(&self) -> Result<(Vec<Arc<Group>>, Vec<(PathBuf, Option<SystemTime>, u64)>)> {
        let stamp = fingerprint(&self.cfg.patterns());
        let mut groups = Vec::new();
        // An SLO spec goes through the one loader as the rule file it generates, so the ruler
        // runs exactly what `tributary slo generate` shows.
        let files = file::expand(&self.cfg.rule_files)?;
        let specs = file::expand(&self.cfg.slo_files)?;
        let logql_files = file::expand(&self.cfg.logql_rule_files)?;
        // A group is known by its file: one file is of one kind.
        if let Some(twice) = logql_files.iter().find(|p| files.contains(p) || specs.contains(p)) {
            return Err(Error::RuleFile {
                file: twice.display().to_string(),
                line: 0,
                reason: "named by ruler.logql_rule_files and by ruler.rule_files or ruler.slo_files".into(),
            });
        }
        let files = files.into_iter().map(|p| (p, false, Checker::Promql(&self.engine)));
        let specs = specs.into_iter().map(|p| (p, true, Checker::Promql(&self.engine)));
        let logql_files = logql_files.into_iter().map(|p| (p, false, Checker::Logql(&self.logql)));
        for (path, is_slo, checker) in files.chain(specs).chain(logql_files) {
            let name = path.display().to_string();
            let refused = |reason: String| Error::RuleFile {
                file: name.clone(),
                line: 0,
                reason,
            };
            let mut text = std::fs::read_to_string(&path).map_err(|e| refused(e.to_string()))?;
            if is_slo {
                text = crate::slo::generate(&text).map_err(|e| refused(e.to_string()))?;
            }
            for spec in file::parse(&name, &text, checker).await? {
                groups.push(Arc::new(Group::new(spec, &self.cfg)));
            }
        }
        Ok((groups, stamp))
    }

    fn spawn(self: &Arc<Self>, group: Arc<Group>, restore: bool) -> tokio::task::JoinHandle<()> {
        tokio::spawn(group::schedule(group, self.context(), restore))
    }

    /// What every group's evaluation uses.
    fn context(&self) -> group::EvalContext {
        group::EvalContext {
            cfg: self.cfg.clone(),
            engine: self.engine.clone(),
            logql: self.logql.clone(),
            sink: self.sink.clone(),
            notifier: self.notifier.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// The running groups, in file and group order.
    fn groups(&self) -> Vec<Arc<Group>> {
        self.loaded.lock().groups.clone()
    }
}

/// What identifies the rule files' contents cheaply: each file's path, modification time and size.
fn fingerprint(patterns: &[String]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    file::expand(patterns)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p, modified, len)
        })
        .collect()
}

#[cfg(test)]
mod tests;
