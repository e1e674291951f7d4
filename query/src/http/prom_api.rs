//! Handlers for the Prometheus query API. Each one parses its parameters (URL query and, for
//! POST, a form body, as Go's `r.FormValue` does), calls one engine method (exemplars and
//! metadata: one method of the engine's source) and renders JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use tributary_storage::types::{Matcher, TimeRange, TimestampMs};

use super::error::ApiError;
use super::render;
use crate::error::Error;
use crate::promql::{
    Engine, MAX_POINTS_PER_SERIES, QueryResult, Value, format_value, parse_series_selector, selector_matchers,
};

type ApiResult = Result<Response, ApiError>;

/// The version reported to clients that gate features on it. Grafana, for one, uses the label
/// values API with `match[]` (instead of `/api/v1/series`) only from Prometheus 2.24, and reads
/// `limit` from newer versions. Others do the same: VictoriaMetrics answers a fixed "2.24.0" on
/// purpose; Mimir answers its own version but adds `application` and `features`, which Grafana
/// reads to detect it; Thanos answers its own 0.x version, so Grafana treats it as an old
/// Prometheus unless told otherwise. We answer the Prometheus release whose API surface we
/// implement (`limit` on the metadata endpoints, `infos`, `format_query`), and keep our own
/// version in a field of its own.
const PROMETHEUS_COMPATIBLE_VERSION: &str = "2.53.0";

/// Warning Prometheus adds when `limit` cut a result short.
const TRUNCATED: &str = "results truncated due to limit";

/// Prometheus's `MinTime`/`MaxTime` as RFC 3339, which clients send for "unbounded".
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";
const MIN_TIME_MS: TimestampMs = -9_223_309_901_257_974;
const MAX_TIME_MS: TimestampMs = 9_223_309_901_257_974;

#[tracing::instrument(name = "api.query", skip_all)]
pub(crate) async fn query(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.get("query").unwrap_or_default();
    let time = p.optional_time("time", now_ms())?;
    let timeout = p.timeout()?;
    let limit = p.limit()?;
    tracing::debug!(query, time, "instant query");
    let result = engine.instant_query(query, time, timeout).await?;
    Ok(json(render_query(result, limit)))
}

#[tracing::instrument(name = "api.query_range", skip_all)]
pub(crate) async fn query_range(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.get("query").unwrap_or_default();
    let start = parse_time(p.get("start").unwrap_or_default()).map_err(|e| invalid("start", e))?;
    let end = parse_time(p.get("end").unwrap_or_default()).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid("end", "end timestamp must not be before start time".into()));
    }
    let step = parse_duration_ms(p.get("step").unwrap_or_default()).map_err(|e| invalid("step", e))?;
    if step <= 0 {
        return Err(invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(Error::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into(),
        )
        .into());
    }
    let timeout = p.timeout()?;
    let limit = p.limit()?;
    tracing::debug!(query, start, end, step, "range query");
    let result = engine.range_query(query, start, end, step, timeout).await?;
    Ok(json(render_query(result, limit)))
}

/// A query answer with its annotations; with a `limit`, at most that many series (Prometheus 3's
/// `limit` on query endpoints), noting the cut as Prometheus does.
fn render_query(result: QueryResult, limit: usize) -> String {
    let QueryResult {
        mut value,
        mut annotations,
    } = result;
    let truncated = match &mut value {
        Value::Vector(v) if limit > 0 && v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if limit > 0 && m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        annotations.warn(TRUNCATED.into());
    }
    render::success_with(&render::query_data(&value), &annotations.warnings, &annotations.infos)
}

/// A listing cut to `limit` entries (0: all), with Prometheus's warning when something was cut.
fn limited<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        return (items, vec![TRUNCATED.to_string()]);
    }
    (items, Vec::new())
}

#[tracing::instrument(name = "api.series", skip_all)]
pub(crate) async fn series(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    if p.all("match[]").next().is_none() {
        return Err(Error::BadData("no match[] parameter provided".into()).into());
    }
    let matchers = p.matchers().map_err(|e| invalid("match[]", e.0.to_string()))?;
    let (range, limit) = (p.time_range()?, p.limit()?);
    let (sets, warnings) = limited(engine.series(&matchers, range).await?, limit);
    Ok(json(render::success_with(&render::label_sets(&sets), &warnings, &[])))
}

#[tracing::instrument(name = "api.labels", skip_all)]
pub(crate) async fn labels(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (matchers, range, limit) = (p.matchers()?, p.time_range()?, p.limit()?);
    let (names, warnings) = limited(engine.label_names(&matchers, range).await?, limit);
    Ok(json(render::success_with(&render::strings(&names), &warnings, &[])))
}

#[tracing::instrument(name = "api.label_values", skip_all)]
pub(crate) async fn label_values(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &HeaderMap::new(), &[]);
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(Error::BadData(format!("invalid label name: {name:?}")).into());
    }
    let (matchers, range, limit) = (p.matchers()?, p.time_range()?, p.limit()?);
    let (values, warnings) = limited(engine.label_values(&name, &matchers, range).await?, limit);
    Ok(json(render::success_with(&render::strings(&values), &warnings, &[])))
}

/// `/api/v1/format_query`: the query pretty-printed the way Prometheus's `Pretty` prints it.
#[tracing::instrument(name = "api.format_query", skip_all)]
pub(crate) async fn format_query(RawQuery(url): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let expr = promql_parser::parser::parse(p.get("query").unwrap_or_default())
        .map_err(|message| invalid("query", format!("parse error: {message}")))?;
    let formatted = serde_json::to_string(&expr.prettify()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json(render::success(&formatted)))
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON (what Prometheus's UI draws its tree
/// view from).
#[tracing::instrument(name = "api.parse_query", skip_all)]
pub(crate) async fn parse_query(RawQuery(url): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let expr = promql_parser::parser::parse(p.get("query").unwrap_or_default())
        .map_err(|message| invalid("query", format!("parse error: {message}")))?;
    let tree = serde_json::to_string(&expr).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(json(render::success(&tree)))
}

/// Grafana reads `version` to decide which Prometheus features to use; see
/// [`PROMETHEUS_COMPATIBLE_VERSION`].
#[tracing::instrument(name = "api.build_info", skip_all)]
pub(crate) async fn build_info() -> Response {
    let data = serde_json::json!({
        "version": PROMETHEUS_COMPATIBLE_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "tributaryVersion": env!("CARGO_PKG_VERSION"),
    });
    json(render::success(&data.to_string()))
}

/// `/api/v1/metadata`: per metric family, the distinct (type, help, unit) entries any cluster
/// reported, as Prometheus answers it: `metric` selects one family, `limit` caps the families
/// (`0` answers none, a negative value or none means all), `limit_per_metric` caps the entries
/// of each (`0` or negative: all). Families come in name order, entries in (type, help, unit)
/// order, so a cut is deterministic.
#[tracing::instrument(name = "api.metadata", skip_all)]
pub(crate) async fn metadata(State(engine): State<Arc<Engine>>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::parse(url.as_deref(), &HeaderMap::new(), &[]);
    let limit = p.signed("limit")?;
    let per_metric = p.signed("limit_per_metric")?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let entries = engine.source().metadata(metric).await.map_err(Error::Storage)?;
    let mut families: BTreeMap<&str, BTreeSet<(&str, &str, &str)>> = BTreeMap::new();
    for m in &entries {
        families
            .entry(&m.metric)
            .or_default()
            .insert((m.kind.as_str(), &m.help, &m.unit));
    }
    let families = families.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX));
    let per_metric = usize::try_from(per_metric)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(usize::MAX);
    let mut out = String::from("{");
    for (i, (name, set)) in families.enumerate() {
        if i > 0 {
            out.push(',');
        }
        render::write_string(&mut out, name);
        out.push(':');
        render::write_list(&mut out, set.into_iter().take(per_metric), |out, (kind, help, unit)| {
            out.push_str(r#"{"type":"#);
            render::write_string(out, kind);
            out.push_str(r#","help":"#);
            render::write_string(out, help);
            out.push_str(r#","unit":"#);
            render::write_string(out, unit);
            out.push('}');
        });
    }
    out.push('}');
    Ok(json(render::success(&out)))
}

/// `/api/v1/query_exemplars`: the exemplars in `[start, end]` of every series any vector
/// selector of `query` selects (Prometheus's `ExtractSelectors`: matrix selectors and
/// subqueries included). A query without selectors answers 204 with no body, as Prometheus does.
#[tracing::instrument(name = "api.query_exemplars", skip_all)]
pub(crate) async fn exemplars(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let range = p.time_range()?;
    if range.end < range.start {
        return Err(Error::BadData("end timestamp must not be before start timestamp".into()).into());
    }
    let expr =
        promql_parser::parser::parse(p.get("query").unwrap_or_default()).map_err(|message| Error::Parse { message })?;
    let selectors = all_selector_matchers(&expr)?;
    if selectors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    tracing::debug!(selectors = selectors.len(), "exemplar query");
    let found = engine
        .source()
        .exemplars(&selectors, range)
        .await
        .map_err(Error::Storage)?;
    let mut out = String::new();
    render::write_list(&mut out, &found, |out, series| {
        out.push_str(r#"{"seriesLabels":"#);
        render::write_labels(out, &series.labels);
        out.push_str(r#","exemplars":"#);
        render::write_list(out, &series.exemplars, |out, e| {
            out.push_str(r#"{"labels":"#);
            render::write_labels(out, &e.labels);
            out.push_str(r#","value":"#);
            render::write_string(out, &format_value(e.value));
            out.push_str(r#","timestamp":"#);
            render::write_timestamp(out, e.timestamp);
            out.push('}');
        });
        out.push('}');
    });
    Ok(json(render::success(&out)))
}

/// The matcher lists of every vector selector in `expr` (each `or` alternative its own list).
fn all_selector_matchers(expr: &Expr) -> Result<Vec<Vec<Matcher>>, Error> {
    struct Selectors(Vec<Vec<Matcher>>);
    impl ExprVisitor for Selectors {
        type Error = Error;
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Error> {
            let vs = match expr {
                Expr::VectorSelector(vs) => vs,
                Expr::MatrixSelector(ms) => &ms.vs,
                _ => return Ok(true),
            };
            self.0.extend(selector_matchers(vs)?);
            Ok(true)
        }
    }
    let mut found = Selectors(Vec::new());
    walk_expr(&mut found, expr)?;
    Ok(found.0)
}

fn json(body: String) -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn invalid(param: &str, reason: String) -> ApiError {
    ApiError(Error::InvalidParameter {
        param: param.into(),
        reason,
    })
}

/// Request parameters in Go's `r.Form` order: form body values first, then the URL's.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(url_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs = Vec::new();
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = url_query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Self(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every `match[]` selector, each expanded into its `or` alternatives. A bad selector is a
    /// `bad_data` error with the parser's message (the series endpoint names the parameter).
    fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        let mut sets = Vec::new();
        for text in self.all("match[]") {
            sets.extend(parse_series_selector(text).map_err(|e| Error::BadData(e.to_string()))?);
        }
        Ok(sets)
    }

    /// An integer parameter the metadata endpoint reads with Go's `strconv.Atoi` (`-1` when absent).
    fn signed(&self, key: &str) -> Result<i64, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(-1),
            Some(v) => v
                .parse()
                .map_err(|_| ApiError(Error::BadData(format!("{key} must be a number")))),
        }
    }

    /// Prometheus's `limit`: a non-negative integer, 0 (or absent) for no limit.
    fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit").filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Ok(_) => Err(invalid("limit", "limit must be non-negative".into())),
                Err(_) => Err(invalid("limit", format!("strconv.Atoi: parsing {v:?}: invalid syntax"))),
            },
        }
    }

    /// `start`/`end` for listings, unbounded when absent.
    fn time_range(&self) -> Result<TimeRange, ApiError> {
        Ok(TimeRange::new(
            self.optional_time("start", MIN_TIME_MS)?,
            self.optional_time("end", MAX_TIME_MS)?,
        ))
    }

    /// Prometheus's `parseTimeParam`: an optional time, whose errors say which one it was.
    fn optional_time(&self, key: &str, default: TimestampMs) -> Result<TimestampMs, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            Some(v) => parse_time(v).map_err(|e| invalid(key, format!("Invalid time value for '{key}': {e}"))),
            None => Ok(default),
        }
    }

    fn timeout(&self) -> Result<Option<Duration>, ApiError> {
        match self.get("timeout").filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => {
                let ms = parse_duration_ms(v).map_err(|e| invalid("timeout", e))?;
                Ok(Some(Duration::from_millis(ms.max(0) as u64)))
            }
        }
    }
}

fn now_ms() -> TimestampMs {
    chrono::Utc::now().timestamp_millis()
}

/// Prometheus's `parseTime`: Unix seconds (fractions rounded to milliseconds) or RFC 3339.
fn parse_time(text: &str) -> Result<TimestampMs, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds.abs() < 9.2e15
    {
        let whole = seconds.trunc();
        let millis = ((seconds - whole) * 1000.0).round();
        return Ok(whole as i64 * 1000 + millis as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    match text {
        MIN_TIME_TEXT => Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {text:?} to a valid timestamp")),
    }
}

/// Prometheus's `parseDuration`: float seconds or a duration like `1m30s`, in milliseconds.
fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if !nanos.is_finite() || nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(format!("cannot parse {text:?} to a valid duration. It overflows int64"));
        }
        return Ok(nanos as i64 / 1_000_000);
    }
    prometheus_duration_ms(text).ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Prometheus's `model.ParseDuration`: `[0-9]+` followed by a unit, units in decreasing order,
/// each at most once (`1h30m`, `90s`, `1y2w`). Zero is allowed.
fn prometheus_duration_ms(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    let (mut rest, mut total, mut next_unit) = (text, 0i64, 0usize);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let amount: i64 = rest.get(..digits).filter(|d| !d.is_empty())?.parse().ok()?;
        let after = &rest[digits..];
        // "ms" before "m", so `5ms` is milliseconds.
        let unit = if after.starts_with("ms") {
            6
        } else {
            UNITS.iter().position(|(u, _)| after.starts_with(u))?
        };
        if unit < next_unit {
            return None;
        }
        next_unit = unit + 1;
        total = total.checked_add(amount.checked_mul(UNITS[unit].1)?)?;
        rest = &after[UNITS[unit].0.len()..];
    }
    (!text.is_empty()).then_some(total)
}

/// Undoes Prometheus's `U__` escaping of label names in URL paths (`U__a_2e_b` is `a.b`, `__`
/// is `_`). A malformed escape leaves the name as given.
fn unescape_label_name(name: &str) -> String {
    let Some(escaped) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return name.to_string(),
            }
        }
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            None => return name.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("-1.5"), Ok(-1_500));
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("2015-07-01T22:10:51+02:00"), Ok(1_435_781_451_000));
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        assert_eq!(
            parse_time("yesterday").unwrap_err(),
            "cannot parse \"yesterday\" to a valid timestamp"
        );
    }

    #[test]
    fn durations_parse_as_seconds_or_prometheus_units() {
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("15s"), Ok(15_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("5ms"), Ok(5));
        assert_eq!(parse_duration_ms("1d2h"), Ok(26 * 3_600_000));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        assert!(parse_duration_ms("1s1h").is_err());
        assert!(parse_duration_ms("1x").is_err());
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn form_body_values_come_before_url_values() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let p = Params::parse(Some("query=url&match[]=a"), &headers, b"query=body&match%5B%5D=b");
        assert_eq!(p.get("query"), Some("body"));
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), vec!["b", "a"]);
        // Without a form content type the body is not parameters.
        let p = Params::parse(Some("query=url"), &HeaderMap::new(), b"query=body");
        assert_eq!(p.get("query"), Some("url"));
    }

    #[test]
    fn escaped_label_names_are_decoded() {
        assert_eq!(unescape_label_name("U__a_2e_b"), "a.b");
        assert_eq!(unescape_label_name("U__a__b"), "a_b");
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(unescape_label_name("U__bad_zz_"), "U__bad_zz_");
    }
}
