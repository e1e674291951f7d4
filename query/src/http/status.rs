//! Prometheus's status APIs (`/api/v1/status/tsdb`, `config`, `flags`, `runtimeinfo`) and
//! Mimir's cardinality APIs (`/api/v1/cardinality/label_names`, `label_values`), in each
//! upstream's response shape.
//!
//! Every endpoint reads through [`Reader`], so a token scoped to some clusters sees the figures
//! of those clusters only, and the configuration only with a reading token. The figures come
//! from the read contract (`Source::series` over [`StatusInfo::window`], bounded by
//! `query.max_listing_items` and `query.timeout`), not from a path of their own around scopes.
//! The process facts (configuration text, flags, start time) are handed in by the binary as a
//! [`StatusInfo`].

mod cardinality;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::RawQuery;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use tributary_storage::auth::Auth;
use tributary_storage::read::SelectRequest;
use tributary_storage::types::{CLUSTER, Labels, METRIC_NAME, MatchOp, Matcher, SeriesIdSet, TimeRange};

use super::access::{ApiState, Reader};
use super::error::PromError;
use super::params::{Params, now_ms};
use super::render;
use crate::error::Error;
use crate::promql::Engine;

/// What the status endpoints say about the process, gathered by the binary at startup.
#[derive(Clone, Debug, Default)]
pub struct StatusInfo {
    /// The effective configuration as TOML, secrets already redacted (`/status/config`'s
    /// `yaml`).
    pub config_text: String,
    /// Command-line flags and the environment variables standing for them, by flag name.
    pub flags: BTreeMap<String, String>,
    /// When the process started, milliseconds since the epoch.
    pub start_time_ms: i64,
    /// The working directory at startup.
    pub cwd: String,
    /// The configured retention, as Prometheus words it (`15d`, or `unlimited`).
    pub storage_retention: String,
    /// The span the TSDB status reads: `None` for everything the engine's source holds (the
    /// head of an ingester: what is in memory now), or the last `Some(d)` (a query process,
    /// whose source reaches back to the oldest Parquet file).
    pub window: Option<Duration>,
}

/// The routes of this module over `engine` (the binary hands in the head alone where there is
/// one); `auth` decides which clusters each request reads.
pub fn status_router(engine: Arc<Engine>, auth: Auth, info: StatusInfo) -> Router {
    Router::new()
        .route("/api/v1/status/tsdb", get(tsdb))
        .route("/api/v1/status/config", get(config))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/status/runtimeinfo", get(runtime_info))
        .route(
            "/api/v1/cardinality/label_names",
            get(cardinality::label_names).post(cardinality::label_names),
        )
        .route(
            "/api/v1/cardinality/label_values",
            get(cardinality::label_values).post(cardinality::label_values),
        )
        .layer(Extension(Arc::new(info)))
        .with_state(ApiState::new(engine, auth))
}

type ApiResult = Result<Response, PromError>;

/// Prometheus's `limit` default for the TSDB status lists.
const DEFAULT_TSDB_LIMIT: usize = 10;

/// `/api/v1/status/tsdb`: head statistics and the top `limit` (default 10) of each list, over
/// one `cluster` when given.
#[tracing::instrument(name = "api.status_tsdb", skip_all)]
async fn tsdb(
    Reader(engine, _slot): Reader<Engine>,
    Extension(info): Extension<Arc<StatusInfo>>,
    RawQuery(url): RawQuery,
) -> ApiResult {
    let arrived = Instant::now();
    let p = Params::from_url(url.as_deref());
    // Prometheus's own check: a given limit is a positive integer.
    let limit = match p.given("limit") {
        None => DEFAULT_TSDB_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(Error::BadData("limit must be a positive number".into()).into()),
        },
    };
    let mut selector = vec![every_series()];
    if let Some(cluster) = p.given("cluster") {
        selector.push(Matcher::equal(CLUSTER, cluster));
    }
    let range = read_window(&info);
    let sets = list_series(&engine, &selector, range, arrived).await?;
    let stats = cardinality::LabelStats::of(&sets);
    let (min_time, max_time) = time_span(&engine, &selector, range).await?;
    let data = serde_json::json!({
        "headStats": {
            "numSeries": sets.len(),
            "numLabelPairs": stats.label_pairs(),
            // Our head keeps no chunks of its own; Prometheus's UI shows the field, so it is 0.
            "chunkCount": 0,
            "minTime": min_time,
            "maxTime": max_time,
        },
        "seriesCountByMetricName": stats.series_by_metric(limit),
        "labelValueCountByLabelName": stats.values_by_name(limit),
        "memoryInBytesByLabelName": stats.value_bytes_by_name(limit),
        "seriesCountByLabelValuePair": stats.series_by_pair(limit),
    });
    Ok(super::prom_api::json(render::success(&data.to_string())))
}

/// `/api/v1/status/config`: Prometheus answers its YAML in `yaml`; ours is TOML, answered in
/// the same field so clients that show it need no change.
#[tracing::instrument(name = "api.status_config", skip_all)]
async fn config(Reader(_engine, _slot): Reader<Engine>, Extension(info): Extension<Arc<StatusInfo>>) -> Response {
    let data = serde_json::json!({ "yaml": info.config_text });
    super::prom_api::json(render::success(&data.to_string()))
}

/// `/api/v1/status/flags`: the command-line flags as a string map.
#[tracing::instrument(name = "api.status_flags", skip_all)]
async fn flags(Reader(_engine, _slot): Reader<Engine>, Extension(info): Extension<Arc<StatusInfo>>) -> Response {
    let data = serde_json::to_string(&info.flags).unwrap_or_else(|_| "{}".into());
    super::prom_api::json(render::success(&data))
}

/// `/api/v1/status/runtimeinfo`, Prometheus's fields. The configuration is loaded once at
/// startup (no reload), so the reload succeeded and happened then; Go's goroutines are our
/// runtime's live tasks; `GOMAXPROCS` is the parallelism the machine offers.
#[tracing::instrument(name = "api.status_runtimeinfo", skip_all)]
async fn runtime_info(Reader(_engine, _slot): Reader<Engine>, Extension(info): Extension<Arc<StatusInfo>>) -> Response {
    let start = rfc3339(info.start_time_ms);
    let data = serde_json::json!({
        "startTime": start,
        "CWD": info.cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": start,
        "corruptionCount": 0,
        "goroutineCount": tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        "GOMAXPROCS": std::thread::available_parallelism().map_or(1, usize::from),
        "GOMEMLIMIT": i64::MAX,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": info.storage_retention,
    });
    super::prom_api::json(render::success(&data.to_string()))
}

/// A matcher every series passes (each has a metric name): the "everything" selection.
fn every_series() -> Matcher {
    Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+").expect("a valid regex")
}

/// The time range the status reads (see [`StatusInfo::window`]).
fn read_window(info: &StatusInfo) -> TimeRange {
    match info.window {
        None => TimeRange::ALL,
        Some(d) => {
            let now = now_ms();
            TimeRange::new(
                now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                now,
            )
        }
    }
}

/// The label sets `selector` selects in `range`, held to `query.max_listing_items`.
async fn list_series(
    engine: &Engine,
    selector: &[Matcher],
    range: TimeRange,
    arrived: Instant,
) -> Result<Vec<Labels>, PromError> {
    let sets = engine.series(&[selector.to_vec()], range, arrived).await?;
    let max = engine.max_listing_items();
    if sets.len() > max {
        return Err(super::listing_too_long(sets.len(), max).into());
    }
    Ok(sets)
}

/// The most samples [`time_span`] holds at once: it reads the selection a part at a time.
const PART_SAMPLES: usize = 1_000_000;

/// The oldest and newest sample `selector` reads in `range` (`(0, 0)` for none). The samples
/// are read a part of at most [`PART_SAMPLES`] at a time (the series of each part chosen by
/// `Source::series_samples`), so a large head costs time within `query.timeout`, never memory.
async fn time_span(engine: &Engine, selector: &[Matcher], range: TimeRange) -> Result<(i64, i64), PromError> {
    time_span_in_parts(engine, selector, range, PART_SAMPLES).await
}

/// [`time_span`], reading parts of at most `part_samples` samples (a series larger than that is
/// a part of its own).
async fn time_span_in_parts(
    engine: &Engine,
    selector: &[Matcher],
    range: TimeRange,
    part_samples: usize,
) -> Result<(i64, i64), PromError> {
    let req = SelectRequest::new(selector.to_vec(), range);
    let source = engine.source().clone();
    let span = engine
        .within_timeout(async move {
            let sizes = source.series_samples(&req).await?;
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            let mut part = SeriesIdSet::default();
            let mut held = 0;
            let mut sizes = sizes.into_iter().peekable();
            while let Some(size) = sizes.next() {
                held += size.samples;
                part.insert(size.labels.series_id());
                if held < part_samples && sizes.peek().is_some() {
                    continue;
                }
                let read = req.clone().only(Arc::new(std::mem::take(&mut part)));
                for series in source.select(&read).await? {
                    if let (Some(first), Some(last)) = (series.samples.first(), series.samples.last()) {
                        lo = lo.min(first.timestamp);
                        hi = hi.max(last.timestamp);
                    }
                }
                held = 0;
            }
            Ok::<_, tributary_storage::Error>(if lo > hi { (0, 0) } else { (lo, hi) })
        })
        .await?;
    Ok(span)
}

/// Milliseconds since the epoch as RFC 3339 (what Go's `time.Time` marshals to).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An invalid-parameter refusal in the Prometheus error shape.
fn invalid(param: &str, reason: impl Into<String>) -> PromError {
    PromError(Error::InvalidParameter {
        param: param.into(),
        reason: reason.into(),
    })
}

#[cfg(test)]
mod tests;
