//! SLO specs in, Prometheus rule files out: [`generate`] (what `tributary slo generate FILE`
//! prints, and what the ruler loads for an SLO file).
//!
//! # Accepted spec
//!
//! Sloth's `version: "prometheus/v1"` format, field for field, with one addition (`period`):
//!
//! ```yaml
//! version: "prometheus/v1"
//! service: "checkout"              # [A-Za-z0-9][A-Za-z0-9_.-]*
//! labels: {team: shop}             # optional, on every generated series and alert
//! slos:
//!   - name: "requests-availability" # unique in the file, same charset as service
//!     objective: 99.9              # percent, 0 < objective < 100
//!     description: "..."           # optional, documentation only
//!     period: 30d                  # optional (ours), default 30d, at least 7d
//!     labels: {tier: "1"}          # optional, over the spec's labels
//!     sli:                         # exactly one of events / raw
//!       events:
//!         error_query: sum by (cluster) (rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))
//!         total_query: sum by (cluster) (rate(http_requests_total{job="checkout"}[{{.window}}]))
//!       # raw:
//!       #   error_ratio_query: <a ratio over [{{.window}}] that keeps `cluster`>
//!     alerting:                    # optional (absent: no alerts); both alerts unless disabled
//!       name: CheckoutAvailability # required while an alert is enabled
//!       labels: {}                 # on both alerts
//!       annotations: {}            # on both alerts (Prometheus templates)
//!       page_alert: {labels: {severity: page}, annotations: {}, disable: false}
//!       ticket_alert: {labels: {severity: ticket}, annotations: {}, disable: false}
//! ```
//!
//! Unknown fields are refused (with the YAML line), as are Sloth's `sli.plugin`, its Kubernetes
//! `PrometheusServiceLevel` objects and OpenSLO documents (each named as unsupported). The queries
//! are templated on `{{.window}}` (Go template spacing accepted) and must use it; any other
//! template variable is refused. Each query must keep the `cluster` label: an aggregation that
//! drops it (`sum(...)`, `sum by (job)`, `without (cluster)`) is refused, because the per-cluster
//! rules group by it.
//!
//! # Generated rules (Sloth's names, so Sloth's dashboards and habits carry over)
//!
//! Every series carries `sloth_service`, `sloth_slo`, `sloth_id` (`<service>-<slo>`), the spec's
//! labels, and `slo_scope`: `cluster` (one series per cluster, `cluster` kept) or `fleet` (all
//! clusters as one; the ruler stamps its fleet cluster on it). Per SLO, three groups:
//!
//! - `sloth-slo-sli-recordings-<id>`: `slo:sli_error:ratio_rate<w>` (label `sloth_window`) for
//!   `w` in 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period, per cluster and fleet:
//!   `(sum by (cluster) (E) or 0 * sum by (cluster) (T)) / sum by (cluster) (T)` with `E`/`T` the
//!   error/total queries over `[w]` (the `or` makes a cluster with traffic but no error series
//!   read 0, not nothing); the fleet rule is the same with `sum`. A raw SLI records its query
//!   as given, per cluster only: a fleet ratio cannot be derived from per-cluster ratios
//!   without their totals.
//! - `sloth-slo-meta-recordings-<id>`: `slo:objective:ratio`, `slo:error_budget:ratio`,
//!   `slo:time_period:days`, `sloth_slo_info`, and per scope `slo:current_burn_rate:ratio` (the
//!   5m ratio over the budget), `slo:period_burn_rate:ratio` (the period's ratio over the
//!   budget) and `slo:period_error_budget_remaining:ratio` (1 minus that). Each reads the SLI
//!   series directly with the budget as a literal, so none depends on another meta rule having
//!   been evaluated first.
//! - `sloth-slo-alerts-<id>`: the SRE workbook's multi-window multi-burn-rate alerts, per scope,
//!   without `for`, labelled `sloth_severity` plus the spec's alert labels: page when the
//!   burn rate is over 14.4 on both 1h and 5m, or over 6 on both 6h and 30m; ticket when over 3
//!   on both 1d and 2h, or over 1 on both 3d and 6h. The factors are the budget share each long
//!   window may spend (2 %, 5 %, 10 %, 10 %) times period / window, so they are those numbers
//!   for 30 days and scale with another `period`.
//!
//! # Exact long windows
//!
//! Sloth records the period's SLI as the average of the 5-minute ratios over the period, which
//! weighs a quiet night like a busy day and misses whatever the 5-minute rule did not see. Here
//! every window, the 30-day one included, is the ratio of the window's own error and total
//! increases (`rate(x[30d])` in the user's query); the engine reads rollup tiers for long ranges,
//! so this stays cheap.

mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use promql_parser::parser::{Expr, LabelModifier};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A Sloth `prometheus/v1` spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    #[expect(dead_code, reason = "checked by the `Probe` read before this one")]
    version: String,
    service: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    slos: Vec<SloSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloSpec {
    name: String,
    objective: f64,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation in the spec; nothing to generate from it")]
    description: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    sli: SliSpec,
    /// Absent: no alerts (nothing to name them by).
    alerting: Option<AlertingSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SliSpec {
    events: Option<EventsSli>,
    raw: Option<RawSli>,
    plugin: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsSli {
    error_query: String,
    total_query: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSli {
    error_ratio_query: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertingSpec {
    name: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    page_alert: AlertSpec,
    #[serde(default)]
    ticket_alert: AlertSpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertSpec {
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Just enough of any YAML document to tell which format it is before reading it strictly.
#[derive(Debug, Deserialize)]
struct Probe {
    version: Option<String>,
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

/// The SLI of one validated SLO, its queries still templated on the window.
#[derive(Debug)]
enum Sli {
    Events { error: String, total: String },
    Raw { ratio: String },
}

/// One validated SLO, everything [`rules`] needs.
#[derive(Debug)]
struct Slo {
    service: String,
    name: String,
    /// The objective as a ratio's decimal text (`0.999`).
    objective: String,
    /// The objective as the spec wrote it, in percent.
    objective_percent: f64,
    /// 1 - objective, as decimal text (`0.001`).
    budget: String,
    period: Window,
    labels: BTreeMap<String, String>,
    sli: Sli,
    alert_name: Option<String>,
    alert_labels: BTreeMap<String, String>,
    alert_annotations: BTreeMap<String, String>,
    page: AlertSpec,
    ticket: AlertSpec,
}

/// A duration in whole seconds, written the way Sloth names windows (`5m`, `1h`, `30d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Window(u64);

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if self.0 >= secs && self.0.is_multiple_of(secs) {
                return write!(f, "{}{unit}", self.0 / secs);
            }
        }
        write!(f, "{}s", self.0)
    }
}

/// Turns a Sloth `prometheus/v1` SLO spec (YAML text) into a Prometheus rule file (YAML text)
/// that `promtool check rules` accepts: the SLI, metadata and burn-rate alert groups described
/// in this module's documentation, per cluster and fleet-wide.
///
/// Errors: [`Error::SloSpec`] naming the field (or the YAML line) and the reason, or
/// [`Error::Unsupported`] for a format or SLI kind this generator does not read.
pub fn generate(spec_yaml: &str) -> Result<String> {
    let probe: Probe = serde_yaml_ng::from_str(spec_yaml).map_err(|e| spec_error(format!("{e}")))?;
    if let Some(api) = &probe.api_version {
        let kind = probe.kind.as_deref().unwrap_or("?");
        return Err(Error::unsupported(format!(
            "SLO documents of apiVersion {api:?} kind {kind:?} (only Sloth's version: \"prometheus/v1\" specs are read)"
        )));
    }
    match probe.version.as_deref() {
        Some("prometheus/v1") => {}
        Some(other) => return Err(spec_error(format!("version: {other:?} is not \"prometheus/v1\""))),
        None => return Err(spec_error("version: missing (expected \"prometheus/v1\")".into())),
    }
    let spec: Spec = serde_yaml_ng::from_str(spec_yaml).map_err(|e| spec_error(format!("{e}")))?;
    let slos = validate(spec)?;
    rules::render(&slos)
}

fn spec_error(reason: String) -> Error {
    Error::SloSpec(reason)
}

/// Checks everything the YAML types cannot, naming the field that is wrong.
fn validate(spec: Spec) -> Result<Vec<Slo>> {
    check_name("service", &spec.service)?;
    check_labels("labels", &spec.labels)?;
    if spec.slos.is_empty() {
        return Err(spec_error("slos: the spec defines no SLO".into()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(spec.slos.len());
    for (i, slo) in spec.slos.into_iter().enumerate() {
        let at = format!("slos[{i}]");
        check_name(&format!("{at}.name"), &slo.name)?;
        if !seen.insert(slo.name.clone()) {
            return Err(spec_error(format!("{at}.name: {:?} is defined twice", slo.name)));
        }
        let at = format!("{at} ({})", slo.name);
        if !(slo.objective > 0.0 && slo.objective < 100.0) {
            return Err(spec_error(format!(
                "{at}.objective: {} is not a percentage above 0 and below 100",
                slo.objective
            )));
        }
        let period = match &slo.period {
            None => Window(30 * 86_400),
            Some(text) => {
                let w = parse_duration(text)
                    .ok_or_else(|| spec_error(format!("{at}.period: {text:?} is not a duration such as 30d or 4w")))?;
                if w.0 < 7 * 86_400 {
                    return Err(spec_error(format!(
                        "{at}.period: {text} is shorter than 7d; the alerts' windows reach 3d"
                    )));
                }
                w
            }
        };
        check_labels(&format!("{at}.labels"), &slo.labels)?;
        let sli = match (slo.sli.events, slo.sli.raw, slo.sli.plugin) {
            (_, _, Some(_)) => return Err(Error::unsupported(format!("{at}.sli.plugin (Sloth SLI plugins)"))),
            (Some(ev), None, None) => Sli::Events {
                error: check_query(&format!("{at}.sli.events.error_query"), &ev.error_query)?,
                total: check_query(&format!("{at}.sli.events.total_query"), &ev.total_query)?,
            },
            (None, Some(raw), None) => Sli::Raw {
                ratio: check_query(&format!("{at}.sli.raw.error_ratio_query"), &raw.error_ratio_query)?,
            },
            _ => {
                return Err(spec_error(format!("{at}.sli: needs exactly one of `events` and `raw`")));
            }
        };
        let alerting = slo.alerting.unwrap_or(AlertingSpec {
            page_alert: AlertSpec {
                disable: true,
                ..AlertSpec::default()
            },
            ticket_alert: AlertSpec {
                disable: true,
                ..AlertSpec::default()
            },
            ..AlertingSpec::default()
        });
        check_labels(&format!("{at}.alerting.labels"), &alerting.labels)?;
        check_labels(&format!("{at}.alerting.page_alert.labels"), &alerting.page_alert.labels)?;
        check_labels(
            &format!("{at}.alerting.ticket_alert.labels"),
            &alerting.ticket_alert.labels,
        )?;
        let alerts_on = !alerting.page_alert.disable || !alerting.ticket_alert.disable;
        match &alerting.name {
            Some(name) if !is_label_name(name) => {
                return Err(spec_error(format!(
                    "{at}.alerting.name: {name:?} is not a valid alert name ([a-zA-Z_][a-zA-Z0-9_]*)"
                )));
            }
            None if alerts_on => {
                return Err(spec_error(format!(
                    "{at}.alerting.name: missing while an alert is enabled (set it, or `disable: true` both alerts)"
                )));
            }
            _ => {}
        }
        let ratio = slo.objective / 100.0;
        let mut labels = spec.labels.clone();
        labels.extend(slo.labels);
        out.push(Slo {
            service: spec.service.clone(),
            name: slo.name,
            objective: decimal(ratio),
            objective_percent: slo.objective,
            budget: decimal(1.0 - ratio),
            period,
            labels,
            sli,
            alert_name: alerting.name,
            alert_labels: alerting.labels,
            alert_annotations: alerting.annotations,
            page: alerting.page_alert,
            ticket: alerting.ticket_alert,
        });
    }
    Ok(out)
}

/// Service and SLO names end up in label values, rule names and group names.
fn check_name(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(spec_error(format!(
            "{field}: {name:?} must start with a letter or digit and hold only letters, digits, `_`, `.`, `-`"
        )))
    }
}

/// Labels the generator sets itself may not come from the spec: they would break the rules'
/// own selectors (`sloth_*`, `slo_scope`) or the per-cluster grouping (`cluster`).
fn check_labels(field: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    for name in labels.keys() {
        if !is_label_name(name) || name.starts_with("__") {
            return Err(spec_error(format!("{field}: {name:?} is not a valid label name")));
        }
        if name == "cluster" || name == "slo_scope" || name.starts_with("sloth_") {
            return Err(spec_error(format!(
                "{field}: {name:?} is set by the generator and cannot be given"
            )));
        }
    }
    Ok(())
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a templated query (uses `{{.window}}` and nothing else, parses, keeps `cluster`) and
/// returns it with the template normalised to `{{.window}}`.
fn check_query(field: &str, query: &str) -> Result<String> {
    let normalised = normalise_template(query).map_err(|reason| spec_error(format!("{field}: {reason}")))?;
    if !normalised.contains(WINDOW) {
        return Err(spec_error(format!(
            "{field}: does not use {{{{.window}}}}, so every window would record the same ratio"
        )));
    }
    let text = with_window(&normalised, Window(300));
    let expr = crate::promql::diagnosis::parse(&text, &text).map_err(|e| spec_error(format!("{field}: {e}")))?;
    if let Some(culprit) = drops_cluster(&expr) {
        return Err(spec_error(format!(
            "{field}: `{culprit}` aggregates the `cluster` label away; keep it (`sum by (cluster, ...)` or no aggregation) so the rules can group per cluster"
        )));
    }
    Ok(normalised)
}

/// The one template variable, as the generator writes it.
const WINDOW: &str = "{{.window}}";

/// Rewrites every `{{ .window }}` to `{{.window}}`; refuses any other `{{...}}`.
fn normalise_template(query: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a `{{` template is never closed".to_string())?;
        let inner = after[..end].trim();
        if inner != ".window" {
            return Err(format!(
                "unknown template {{{{{inner}}}}} (only {{{{.window}}}} is defined)"
            ));
        }
        out.push_str(WINDOW);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The query with its window filled in.
fn with_window(query: &str, window: Window) -> String {
    query.replace(WINDOW, &window.to_string())
}

/// The first aggregation (as text) through which `cluster` cannot survive, if any. Looks at what
/// decides the result's labels: the outermost aggregations, through parentheses and both sides
/// of binary operators.
fn drops_cluster(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Paren(p) => drops_cluster(&p.expr),
        Expr::Binary(b) => drops_cluster(&b.lhs).or_else(|| drops_cluster(&b.rhs)),
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            // These select series and keep all their labels.
            if matches!(op.as_str(), "topk" | "bottomk" | "limitk" | "limit_ratio") {
                return drops_cluster(&a.expr);
            }
            let keeps = match &a.modifier {
                None => false,
                Some(LabelModifier::Include(l)) => l.labels.iter().any(|n| n == "cluster"),
                Some(LabelModifier::Exclude(l)) => !l.labels.iter().any(|n| n == "cluster"),
            };
            if keeps { None } else { Some(expr.to_string()) }
        }
        _ => None,
    }
}

/// A Prometheus duration (`30d`, `4w`, `1d12h`) in whole seconds; `None` when malformed or zero.
fn parse_duration(text: &str) -> Option<Window> {
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "y" => 365 * 86_400,
            "w" => 7 * 86_400,
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        rest = &rest[unit_len..];
    }
    (total > 0).then_some(Window(total))
}

/// A ratio as short decimal text: `0.999`, `0.001` (rounded to 12 places, which drops the float
/// noise of `1 - 0.999` and keeps any objective a human writes).
fn decimal(x: f64) -> String {
    let text = format!("{x:.12}");
    let text = text.trim_end_matches('0');
    text.strip_suffix('.').unwrap_or(text).to_string()
}
