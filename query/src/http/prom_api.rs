//! Handlers for the Prometheus query API. Each one reads its parameters through
//! [`Params`] (Prometheus's formats), calls one engine method (exemplars and metadata: one method
//! of the engine's source) and renders JSON; errors answer through [`PromError`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use promql_parser::parser::Expr;
use promql_parser::util::{ExprVisitor, walk_expr};
use tributary_storage::types::Matcher;

use super::access::Reader;
use super::error::PromError;
use super::params::{Params, now_ms};
use super::render;
use crate::error::Error;
use crate::promql::{Engine, MAX_POINTS_PER_SERIES, QueryResult, Tier, Value, format_value, selector_matchers};

type ApiResult = Result<Response, PromError>;

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

#[tracing::instrument(name = "api.query", skip_all)]
pub(crate) async fn query(
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.text("query");
    let time = p.prom_time_or("time", now_ms())?;
    let timeout = p.prom_timeout()?;
    let limit = p.prom_limit()?;
    tracing::debug!(query, time, "instant query");
    let result = engine.instant_query(query, time, timeout).await?;
    Ok(with_tier(result.tier, json(render_query(&engine, result, limit)?)))
}

#[tracing::instrument(name = "api.query_range", skip_all)]
pub(crate) async fn query_range(
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.text("query");
    let start = p.prom_time("start")?;
    let end = p.prom_time("end")?;
    if end < start {
        return Err(invalid("end", "end timestamp must not be before start time"));
    }
    let step = p.prom_duration("step")?;
    if step <= 0 {
        return Err(invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // In i128: the times parse to anywhere in the i64 range, so their difference may not fit.
    if (i128::from(end) - i128::from(start)) / i128::from(step) > i128::from(MAX_POINTS_PER_SERIES) {
        return Err(Error::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                .into(),
        )
        .into());
    }
    let timeout = p.prom_timeout()?;
    let limit = p.prom_limit()?;
    tracing::debug!(query, start, end, step, "range query");
    let result = engine.range_query(query, start, end, step, timeout).await?;
    Ok(with_tier(result.tier, json(render_query(&engine, result, limit)?)))
}

/// The header naming the coarsest data a query read: `raw`, or a rollup resolution (`5m`, `1h`).
pub(crate) const TIER_HEADER: &str = "x-tributary-tier";

/// `response` with the [`TIER_HEADER`] of the query it answers.
fn with_tier(tier: Tier, mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(TIER_HEADER, axum::http::HeaderValue::from_static(tier.name()));
    response
}

/// A query answer with its annotations; with a `limit`, at most that many series (Prometheus 3's
/// `limit` on query endpoints), noting the cut as Prometheus does. More series than the token's
/// `max_series` fail instead.
fn render_query(engine: &Engine, result: QueryResult, limit: usize) -> Result<String, Error> {
    let QueryResult {
        mut value,
        mut annotations,
        ..
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
        Value::HistogramMatrix(m) if limit > 0 && m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    };
    if truncated {
        annotations.warn(TRUNCATED.into());
    }
    let series = match &value {
        Value::Vector(v) => v.len(),
        Value::Matrix(m) => m.len(),
        Value::HistogramMatrix(m) => m.len(),
        Value::Scalar { .. } | Value::String { .. } => 1,
    };
    engine.check_series(series, "query result")?;
    Ok(render::success_with(
        &render::query_data(&value),
        &annotations.warnings,
        &annotations.infos,
    ))
}

/// A listing cut to `limit` entries (0: all), with Prometheus's warning when something was cut.
/// A `limit` above `max` (or none) is no cut: then a listing longer than `max`
/// (`query.max_listing_items`) fails rather than answering with everything.
fn limited<T>(mut items: Vec<T>, limit: usize, max: usize) -> Result<(Vec<T>, Vec<String>), Error> {
    if limit > 0 && limit <= max {
        if items.len() > limit {
            items.truncate(limit);
            return Ok((items, vec![TRUNCATED.to_string()]));
        }
    } else if items.len() > max {
        return Err(super::listing_too_long(items.len(), max));
    }
    Ok((items, Vec::new()))
}

#[tracing::instrument(name = "api.series", skip_all)]
pub(crate) async fn series(
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::parse(url.as_deref(), &headers, &body);
    if p.all("match[]").next().is_none() {
        return Err(Error::BadData("no match[] parameter provided".into()).into());
    }
    let matchers = p.prom_matchers().map_err(|e| invalid("match[]", e.to_string()))?;
    let (range, limit) = (p.prom_time_range()?, p.prom_limit()?);
    let max = engine.max_listing_items();
    let (sets, warnings) = limited(engine.series(&matchers, range, arrived).await?, limit, max)?;
    engine.check_series(sets.len(), "series listing")?;
    Ok(json(render::success_with(&render::label_sets(&sets), &warnings, &[])))
}

#[tracing::instrument(name = "api.labels", skip_all)]
pub(crate) async fn labels(
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (matchers, range, limit) = (p.prom_matchers()?, p.prom_time_range()?, p.prom_limit()?);
    let max = engine.max_listing_items();
    let (names, warnings) = limited(engine.label_names(&matchers, range, arrived).await?, limit, max)?;
    Ok(json(render::success_with(&render::strings(&names), &warnings, &[])))
}

#[tracing::instrument(name = "api.label_values", skip_all)]
pub(crate) async fn label_values(
    Reader(engine, _slot): Reader<Engine>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::from_url(url.as_deref());
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(Error::BadData(format!("invalid label name: {name:?}")).into());
    }
    let (matchers, range, limit) = (p.prom_matchers()?, p.prom_time_range()?, p.prom_limit()?);
    let max = engine.max_listing_items();
    let (values, warnings) = limited(engine.label_values(&name, &matchers, range, arrived).await?, limit, max)?;
    Ok(json(render::success_with(&render::strings(&values), &warnings, &[])))
}

/// `/api/v1/format_query`: the query pretty-printed the way Prometheus's `Pretty` prints it.
#[tracing::instrument(name = "api.format_query", skip_all)]
pub(crate) async fn format_query(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let formatted = parse_param(&engine, &p, |expr| {
        serde_json::to_string(&expr.prettify()).map_err(|e| Error::Internal(e.to_string()))
    })
    .await?;
    Ok(json(render::success(&formatted)))
}

/// `/api/v1/parse_query`: the query's syntax tree as JSON (what Prometheus's UI draws its tree
/// view from).
#[tracing::instrument(name = "api.parse_query", skip_all)]
pub(crate) async fn parse_query(
    State(engine): State<Arc<Engine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let tree = parse_param(&engine, &p, |expr| {
        serde_json::to_string(&expr).map_err(|e| Error::Internal(e.to_string()))
    })
    .await?;
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
pub(crate) async fn metadata(Reader(engine, _slot): Reader<Engine>, RawQuery(url): RawQuery) -> ApiResult {
    let p = Params::from_url(url.as_deref());
    let limit = p.prom_signed("limit")?;
    let per_metric = p.prom_signed("limit_per_metric")?;
    let metric = p.given("metric");
    let entries = engine.within_timeout(engine.source().metadata(metric)).await?;
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
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let range = p.prom_time_range()?;
    if range.end < range.start {
        return Err(Error::BadData("end timestamp must not be before start timestamp".into()).into());
    }
    let selectors = engine
        .parse_then(p.text("query"), |expr| all_selector_matchers(&expr))
        .await?;
    if selectors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    tracing::debug!(selectors = selectors.len(), "exemplar query");
    let found = engine
        .within_timeout(engine.source().exemplars(&selectors, range))
        .await?;
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

/// The `query` parameter parsed and handed to `then` (see `Engine::parse_then`) for
/// `format_query`/`parse_query`, whose parse errors Prometheus words as an invalid parameter.
async fn parse_param<T: Send + 'static>(
    engine: &Engine,
    p: &Params,
    then: impl FnOnce(Expr) -> Result<T, Error> + Send + 'static,
) -> Result<T, PromError> {
    engine.parse_then(p.text("query"), then).await.map_err(|e| match e {
        e @ Error::Parse { .. } => invalid("query", e.to_string()),
        other => PromError(other),
    })
}

pub(super) fn json(body: String) -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn invalid(param: &str, reason: impl Into<String>) -> PromError {
    PromError(Error::InvalidParameter {
        param: param.into(),
        reason: reason.into(),
    })
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
    fn escaped_label_names_are_decoded() {
        assert_eq!(unescape_label_name("U__a_2e_b"), "a.b");
        assert_eq!(unescape_label_name("U__a__b"), "a_b");
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(unescape_label_name("U__bad_zz_"), "U__bad_zz_");
    }
}
