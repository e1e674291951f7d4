//! Loading and validating rule files (the format is documented in `ruler.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;

use super::template;
use crate::error::{Error, Result};
use crate::http::params::model_duration_ms;
use crate::logql::LogqlEngine;
use crate::logql::ast::Expr as LogqlExpr;
use crate::promql::Engine;

/// The query language of a group's expressions: a file comes from `ruler.rule_files` (PromQL)
/// or `ruler.logql_rule_files` (LogQL metric queries, Loki's ruler format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Language {
    #[default]
    Promql,
    Logql,
}

/// What checks a rule's `expr` on load: the engine of the file's language.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Checker<'a> {
    Promql(&'a Engine),
    Logql(&'a LogqlEngine),
}

impl Checker<'_> {
    fn language(self) -> Language {
        match self {
            Checker::Promql(_) => Language::Promql,
            Checker::Logql(_) => Language::Logql,
        }
    }

    /// The parser's refusal, or for LogQL a log (stream) query, which yields no samples.
    async fn check(self, expr: &str) -> std::result::Result<(), String> {
        match self {
            Checker::Promql(engine) => engine
                .parse_then(expr, |_| Ok(()))
                .await
                .map_err(|e| format!("could not parse expression: {e}")),
            Checker::Logql(engine) => {
                let metric = engine.parse_then(expr, |e| matches!(e, LogqlExpr::Metric(_))).await;
                match metric {
                    Err(e) => Err(format!("could not parse expression: {e}")),
                    Ok(false) => Err(
                        "a LogQL rule needs a metric query (e.g. sum(rate({app=\"x\"} |= \"error\" [5m]))), not a log query"
                            .into(),
                    ),
                    Ok(true) => Ok(()),
                }
            }
        }
    }
}

/// One group as loaded: everything its schedule needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GroupSpec {
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) language: Language,
    /// The group's own interval, when it sets one (ms).
    pub(crate) interval_ms: Option<i64>,
    /// 0: no limit.
    pub(crate) limit: usize,
    pub(crate) query_offset_ms: i64,
    pub(crate) rules: Vec<RuleSpec>,
}

/// One rule as loaded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RuleSpec {
    pub(crate) kind: RuleKind,
    pub(crate) expr: String,
    /// The rule's labels over the group's.
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RuleKind {
    Recording {
        record: String,
    },
    Alerting {
        alert: String,
        for_ms: i64,
        keep_firing_for_ms: i64,
        annotations: BTreeMap<String, String>,
    },
}

impl RuleSpec {
    /// The recorded metric or the alert's name.
    pub(crate) fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Recording { record } => record,
            RuleKind::Alerting { alert, .. } => alert,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    groups: Vec<GroupDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDoc {
    name: String,
    interval: Option<String>,
    limit: Option<usize>,
    query_offset: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<serde_yaml_ng::Value>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The files `patterns` name, in order, each once: a pattern whose file name has `*` or `?`
/// names the files of its directory that match (sorted); any other names itself, and must exist.
pub(crate) fn expand(patterns: &[String]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let path = PathBuf::from(pattern);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !tributary_storage::scope::is_glob(name) {
            if !out.contains(&path) {
                out.push(path);
            }
            continue;
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from);
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::RuleFile {
            file: pattern.clone(),
            line: 0,
            reason: format!("reading directory {}: {e}", dir.display()),
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| tributary_storage::scope::glob(name, n))
            })
            .map(|e| e.path())
            .collect();
        found.sort();
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Parses and validates one rule file whose expressions `checker` checks (and whose groups
/// are of its language); `file` names it in every refusal.
pub(crate) async fn parse(file: &str, text: &str, checker: Checker<'_>) -> Result<Vec<GroupSpec>> {
    let refuse = |line: usize, reason: String| Error::RuleFile {
        file: file.to_string(),
        line,
        reason,
    };
    let doc: FileDoc =
        serde_yaml_ng::from_str(text).map_err(|e| refuse(e.location().map_or(0, |l| l.line()), e.to_string()))?;
    let rule_lines = rule_lines(text);
    let mut next_rule = 0usize;
    let mut names = BTreeSet::new();
    let mut groups = Vec::new();
    for g in doc.groups {
        let group_line = group_line(text, &g.name, names.contains(&g.name));
        if g.name.is_empty() {
            return Err(refuse(group_line, "group name must not be empty".into()));
        }
        if !names.insert(g.name.clone()) {
            return Err(refuse(
                group_line,
                format!("groupname: {:?} is repeated in the same file", g.name),
            ));
        }
        let duration = |what: &str, v: &Option<String>, line: usize| -> Result<i64> {
            match v {
                None => Ok(0),
                Some(v) => {
                    model_duration_ms(v).ok_or_else(|| refuse(line, format!("{what}: not a valid duration: {v:?}")))
                }
            }
        };
        let interval_ms = match &g.interval {
            None => None,
            Some(_) => {
                let ms = duration("interval", &g.interval, group_line)?;
                if ms <= 0 {
                    return Err(refuse(
                        group_line,
                        format!("group {:?}: interval must be positive", g.name),
                    ));
                }
                Some(ms)
            }
        };
        let query_offset_ms = duration("query_offset", &g.query_offset, group_line)?;
        check_labels(&g.labels).map_err(|r| refuse(group_line, format!("group {:?}: {r}", g.name)))?;
        let mut rules = Vec::new();
        for r in g.rules {
            let line = rule_lines.get(next_rule).copied().unwrap_or(group_line);
            next_rule += 1;
            let bad = |reason: String| refuse(line, format!("group {:?}, rule {}: {reason}", g.name, rules.len() + 1));
            let expr = match &r.expr {
                Some(serde_yaml_ng::Value::String(s)) => s.clone(),
                Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
                Some(serde_yaml_ng::Value::Bool(b)) => b.to_string(),
                _ => return Err(bad("field 'expr' must be set in rule".into())),
            };
            if expr.trim().is_empty() {
                return Err(bad("field 'expr' must be set in rule".into()));
            }
            checker.check(&expr).await.map_err(&bad)?;
            check_labels(&r.labels).map_err(&bad)?;
            let mut labels = g.labels.clone();
            labels.extend(r.labels.clone());
            let kind = match (r.record, r.alert) {
                (Some(_), Some(_)) => return Err(bad("only one of 'record' and 'alert' must be set".into())),
                (None, None) => return Err(bad("one of 'record' or 'alert' must be set".into())),
                (Some(record), None) => {
                    if !is_metric_name(&record) {
                        return Err(bad(format!("invalid recording rule name: {record:?}")));
                    }
                    if r.for_.is_some() || r.keep_firing_for.is_some() {
                        return Err(bad("invalid field 'for' or 'keep_firing_for' in recording rule".into()));
                    }
                    if !r.annotations.is_empty() {
                        return Err(bad("invalid field 'annotations' in recording rule".into()));
                    }
                    RuleKind::Recording { record }
                }
                (None, Some(alert)) => {
                    if alert.is_empty() {
                        return Err(bad("alert name must not be empty".into()));
                    }
                    for (name, value) in r.labels.iter().chain(&r.annotations) {
                        template::check(value).map_err(|e| bad(format!("template of {name:?} does not parse: {e}")))?;
                    }
                    for name in r.annotations.keys() {
                        if !is_label_name(name) {
                            return Err(bad(format!("invalid annotation name: {name:?}")));
                        }
                    }
                    RuleKind::Alerting {
                        alert,
                        for_ms: duration("for", &r.for_, line)?,
                        keep_firing_for_ms: duration("keep_firing_for", &r.keep_firing_for, line)?,
                        annotations: r.annotations,
                    }
                }
            };
            rules.push(RuleSpec { kind, expr, labels });
        }
        groups.push(GroupSpec {
            file: file.to_string(),
            name: g.name,
            language: checker.language(),
            interval_ms,
            limit: g.limit.unwrap_or(0),
            query_offset_ms,
            rules,
        });
    }
    Ok(groups)
}

fn check_labels(labels: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    for name in labels.keys() {
        if !is_label_name(name) || name == "__name__" {
            return Err(format!("invalid label name: {name:?}"));
        }
    }
    Ok(())
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the classic label-name charset (what ingest accepts).
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The 1-based line of each rule, in document order: the line of its `record:` or `alert:` key
/// (every rule has exactly one once it passed the first checks).
fn rule_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            let t = t.strip_prefix("- ").map_or(t, str::trim_start);
            t.starts_with("record:") || t.starts_with("alert:")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// The line of the group named `name` (its second occurrence when `repeated`), 0 if not found.
fn group_line(text: &str, name: &str, repeated: bool) -> usize {
    let mut hits = text.lines().enumerate().filter(|(_, l)| {
        let t = l.trim_start();
        let t = t.strip_prefix("- ").map_or(t, str::trim_start);
        t.strip_prefix("name:")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\''))
            .is_some_and(|v| v == name)
    });
    let hit = if repeated { hits.nth(1) } else { hits.next() };
    hit.map_or(0, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests;
