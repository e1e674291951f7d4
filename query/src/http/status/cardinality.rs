//! Counting what a series listing holds ([`LabelStats`]: the TSDB status's lists), and Mimir's
//! cardinality endpoints over it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use tributary_storage::types::{Labels, METRIC_NAME, Matcher};

use super::{ApiResult, StatusInfo, every_series, invalid, list_series, read_window};
use crate::http::access::Reader;
use crate::http::params::Params;
use crate::promql::{Engine, parse_series_selector};

/// Mimir's `limit` default and ceiling for the cardinality endpoints.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 500;

/// Names or values with their counts.
type Counted<'a> = Vec<(&'a str, usize)>;

/// `counted` largest count first, ties in name order (Mimir's order).
fn largest_first(counted: &mut Counted<'_>) {
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
}

/// Series counted per label name and per label pair over one listing.
#[derive(Debug, Default)]
pub(super) struct LabelStats<'a> {
    /// Per label name, per value: how many series carry the pair.
    by_name: BTreeMap<&'a str, BTreeMap<&'a str, usize>>,
}

impl<'a> LabelStats<'a> {
    pub(super) fn of(sets: &'a [Labels]) -> Self {
        let mut by_name: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for label in sets.iter().flat_map(Labels::iter) {
            *by_name.entry(label.name).or_default().entry(label.value).or_default() += 1;
        }
        Self { by_name }
    }

    /// Distinct `name=value` pairs.
    pub(super) fn label_pairs(&self) -> usize {
        self.by_name.values().map(BTreeMap::len).sum()
    }

    /// Series per metric name, the top `limit`.
    pub(super) fn series_by_metric(&self, limit: usize) -> Value {
        let names = self.by_name.get(METRIC_NAME).into_iter().flatten();
        top(names.map(|(v, n)| ((*v).to_string(), *n)), limit)
    }

    /// Distinct values per label name, the top `limit`.
    pub(super) fn values_by_name(&self, limit: usize) -> Value {
        top(self.by_name.iter().map(|(k, v)| ((*k).to_string(), v.len())), limit)
    }

    /// Bytes of the distinct values per label name (what Prometheus's postings hold as
    /// strings), the top `limit`.
    pub(super) fn value_bytes_by_name(&self, limit: usize) -> Value {
        let bytes = |values: &BTreeMap<&str, usize>| values.keys().map(|v| v.len()).sum();
        top(self.by_name.iter().map(|(k, v)| ((*k).to_string(), bytes(v))), limit)
    }

    /// Series per `name=value` pair, the top `limit`.
    pub(super) fn series_by_pair(&self, limit: usize) -> Value {
        let pairs = self
            .by_name
            .iter()
            .flat_map(|(k, values)| values.iter().map(move |(v, n)| (format!("{k}={v}"), *n)));
        top(pairs, limit)
    }
}

/// The `limit` largest counts as Prometheus's `[{"name", "value"}]`, largest first, ties by
/// name.
fn top(counts: impl Iterator<Item = (String, usize)>, limit: usize) -> Value {
    let mut all: Vec<(String, usize)> = counts.collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(limit);
    Value::Array(
        all.into_iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

/// The parameters both Mimir endpoints share: the `selector`'s matchers (every series without
/// one), and `limit`.
fn common(p: &Params) -> Result<(Vec<Matcher>, usize), super::super::error::PromError> {
    // Mimir's `inmemory` counts the series the ingesters hold; `active` (series written to
    // recently) needs a tracker we do not keep.
    match p.given("count_method") {
        None | Some("inmemory") => {}
        Some("active") => {
            return Err(invalid(
                "count_method",
                "count_method=active is not supported; use inmemory",
            ));
        }
        Some(other) => {
            return Err(invalid(
                "count_method",
                format!("unknown count method {other:?}: expected inmemory"),
            ));
        }
    }
    let limit = match p.given("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(invalid("limit", format!("limit must be between 1 and {MAX_LIMIT}"))),
        },
    };
    let matchers = match p.given("selector") {
        None => vec![every_series()],
        Some(text) => {
            let mut sets = parse_series_selector(text).map_err(|e| invalid("selector", e.to_string()))?;
            if sets.len() != 1 {
                return Err(invalid(
                    "selector",
                    "a selector with `or` alternatives is not supported",
                ));
            }
            let mut matchers = sets.remove(0);
            matchers.push(every_series());
            matchers
        }
    };
    Ok((matchers, limit))
}

/// Mimir's `/api/v1/cardinality/label_names`: per label name, how many values it has among the
/// selected series, the top `limit` (default 20, at most 500) by that count.
#[tracing::instrument(name = "api.cardinality_label_names", skip_all)]
pub(super) async fn label_names(
    Reader(engine, _slot): Reader<Engine>,
    Extension(info): Extension<Arc<StatusInfo>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (matchers, limit) = common(&p)?;
    let sets = list_series(&engine, &matchers, read_window(&info), arrived).await?;
    let stats = LabelStats::of(&sets);
    let mut names: Counted = stats.by_name.iter().map(|(k, v)| (*k, v.len())).collect();
    largest_first(&mut names);
    let data = json!({
        "label_values_count_total": stats.label_pairs(),
        "label_names_count": names.len(),
        "cardinality": names
            .iter()
            .take(limit)
            .map(|(name, count)| json!({"label_name": name, "label_values_count": count}))
            .collect::<Vec<_>>(),
    });
    Ok(super::super::prom_api::json(data.to_string()))
}

/// Mimir's `/api/v1/cardinality/label_values`: for each of `label_names[]`, its values among
/// the selected series with the series count of each, the top `limit` per label.
#[tracing::instrument(name = "api.cardinality_label_values", skip_all)]
pub(super) async fn label_values(
    Reader(engine, _slot): Reader<Engine>,
    Extension(info): Extension<Arc<StatusInfo>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::parse(url.as_deref(), &headers, &body);
    let wanted: BTreeSet<&str> = p.all("label_names[]").collect();
    if wanted.is_empty() {
        return Err(invalid("label_names[]", "label_names[] param is required"));
    }
    let (matchers, limit) = common(&p)?;
    let sets = list_series(&engine, &matchers, read_window(&info), arrived).await?;
    let stats = LabelStats::of(&sets);
    let mut labels: Vec<(&str, usize, Counted)> = wanted
        .iter()
        .map(|name| {
            let mut values: Counted = stats
                .by_name
                .get(name)
                .map(|v| v.iter().map(|(k, n)| (*k, *n)).collect())
                .unwrap_or_default();
            largest_first(&mut values);
            (*name, values.iter().map(|v| v.1).sum(), values)
        })
        .collect();
    labels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let data = json!({
        "series_count_total": sets.len(),
        "labels": labels
            .iter()
            .map(|(name, series, values)| json!({
                "label_name": name,
                "label_values_count": values.len(),
                "series_count": series,
                "cardinality": values
                    .iter()
                    .take(limit)
                    .map(|(value, n)| json!({"label_value": value, "series_count": n}))
                    .collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
    });
    Ok(super::super::prom_api::json(data.to_string()))
}
