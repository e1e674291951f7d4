//! The Loki HTTP query API (`/loki/api/v1/...`) over a [`LogqlEngine`], with the JSON shapes
//! Grafana's Loki data source parses and Loki's error format: a plain-text body (`parse error at
//! line 1, col 5: ...`) with 400 for bad queries and parameters.
//!
//! Parameters are read through [`Params`]'s `loki_*` accessors (Loki's time, duration, limit
//! and direction rules); errors answer through [`LokiError`].
//!
//! Query answers honour Loki's `X-Loki-Response-Encoding-Flags: categorize-labels` request header
//! (Grafana sends it): log streams then carry only their stream labels, each line gains a third
//! element `{"structuredMetadata":{...},"parsed":{...}}` (empty parts left out), and `data`
//! says `"encodingFlags":["categorize-labels"]`. Without it, every label is a stream label, as
//! Loki answers older clients.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::access::{ApiState, Reader};
use super::error::LokiError;
use super::params::{Params, now_ns};
use crate::http::render::{
    label_sets, strings, write_labels, write_list, write_matrix, write_point, write_string, write_vector,
};
use crate::logql::{LogEntry, LogqlEngine, LogqlResult, LogqlValue, QueryStats, RangeQuery, Stream};

use tributary_storage::auth::Auth;
use tributary_storage::read::Direction;
use tributary_storage::types::Labels;

mod detected;
mod patterns;
mod tail;
mod volume;

/// The Loki version reported to clients that gate features on it: 3.5.0 is the release whose
/// `detected_fields` carries `jsonPath`, which Logs Drilldown's JSON view needs (it names 3.5.0
/// in `JSONLogsScene.tsx`); `detected_field/{name}/values` came with 3.3.0.
const LOKI_COMPATIBLE_VERSION: &str = "3.5.0";

/// Routes of the Loki query API; merge into the server's router. `auth` decides which
/// clusters each request reads.
pub fn loki_router(engine: Arc<LogqlEngine>, auth: Auth) -> Router {
    Router::new()
        .route("/loki/api/v1/query", get(query).post(query))
        .route("/loki/api/v1/query_range", get(query_range).post(query_range))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values).post(label_values))
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/index/stats", get(index_stats).post(index_stats))
        .route("/loki/api/v1/index/volume", get(volume::volume).post(volume::volume))
        .route(
            "/loki/api/v1/index/volume_range",
            get(volume::volume_range).post(volume::volume_range),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(detected::detected_labels).post(detected::detected_labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(detected::detected_fields).post(detected::detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detected::detected_field_values),
        )
        .route(
            "/loki/api/v1/patterns",
            get(patterns::patterns).post(patterns::patterns),
        )
        .route("/loki/api/v1/status/buildinfo", get(build_info))
        .route("/loki/api/v1/format_query", get(format_query).post(format_query))
        .route("/loki/api/v1/tail", get(tail::tail))
        .layer(axum::middleware::from_fn(super::partial_warnings))
        .with_state(ApiState::new(engine, auth))
}

type ApiResult = Result<Response, LokiError>;

fn json(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

#[tracing::instrument(name = "loki.query_range", skip_all)]
async fn query_range(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.text("query").to_string();
    let (start, end) = p.loki_range()?;
    let step = p.loki_duration("step")?.unwrap_or_else(|| default_step(start, end));
    let q = RangeQuery {
        query,
        start,
        end,
        step,
        limit: p.loki_limit()?,
        direction: p.loki_direction()?,
    };
    tracing::debug!(query = q.query, start, end, step, "loki range query");
    let encoding = Encoding::from_request(&headers, q.direction);
    let result = engine.query_range(&q).await?;
    Ok(json(render_result(&result, encoding)))
}

#[tracing::instrument(name = "loki.query", skip_all)]
async fn query(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.text("query");
    let time = p.loki_time_or("time", now_ns)?;
    // Validated as Loki does, though an instant (metric) query uses neither.
    p.loki_limit()?;
    let encoding = Encoding::from_request(&headers, p.loki_direction()?);
    let result = engine.query_instant(query, time).await?;
    Ok(json(render_result(&result, encoding)))
}

#[tracing::instrument(name = "loki.labels", skip_all)]
async fn labels(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let names = engine.labels(start, end, p.get("query")).await?;
    check_listing(&engine, names.len())?;
    Ok(json(success(&strings(&names))))
}

#[tracing::instrument(name = "loki.label_values", skip_all)]
async fn label_values(
    Reader(engine, _slot): Reader<LogqlEngine>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let values = engine.label_values(&name, start, end, p.get("query")).await?;
    check_listing(&engine, values.len())?;
    Ok(json(success(&strings(&values))))
}

#[tracing::instrument(name = "loki.series", skip_all)]
async fn series(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let selectors: Vec<String> = p.all("match[]").chain(p.all("match")).map(str::to_string).collect();
    let sets = engine.series(&selectors, start, end).await?;
    check_listing(&engine, sets.len())?;
    Ok(json(success(&label_sets(&sets))))
}

#[tracing::instrument(name = "loki.index_stats", skip_all)]
async fn index_stats(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let query = p.text("query");
    let s = engine.stats(query, start, end).await?;
    Ok(json(format!(
        r#"{{"streams":{},"chunks":{},"entries":{},"bytes":{}}}"#,
        s.streams, s.chunks, s.entries, s.bytes
    )))
}

/// The query, parsed and printed back in canonical form.
#[tracing::instrument(name = "loki.format_query", skip_all)]
async fn format_query(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let formatted = engine.parse_then(p.text("query"), |expr| expr.to_string()).await?;
    Ok(json(success(&quote(&formatted))))
}

async fn build_info() -> Response {
    json(format!(
        r#"{{"version":{},"revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"","application":"tributary","tributaryVersion":{}}}"#,
        quote(LOKI_COMPATIBLE_VERSION),
        quote(env!("CARGO_PKG_VERSION"))
    ))
}

/// Loki's listings take no `limit`: one longer than `query.max_listing_items` fails, as a
/// Prometheus listing without a `limit` does.
fn check_listing(engine: &LogqlEngine, len: usize) -> Result<(), LokiError> {
    let max = engine.max_listing_items();
    if len > max {
        return Err(super::listing_too_long(len, max).into());
    }
    Ok(())
}

// ---------------------------------------------------------------- rendering

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

fn success(data: &str) -> String {
    format!(r#"{{"status":"success","data":{data}}}"#)
}

/// The request header naming the response encoding flags a Loki client understands.
const ENCODING_FLAGS_HEADER: &str = "x-loki-response-encoding-flags";
/// The one encoding flag answered (Loki's `FlagCategorizeLabels`); others are ignored, as Loki
/// ignores flags it does not know.
const CATEGORIZE_LABELS: &str = "categorize-labels";

/// How a query answer is written.
#[derive(Clone, Copy, Debug)]
struct Encoding {
    /// `categorize-labels`: stream labels, structured metadata and parsed labels apart.
    categorize: bool,
    /// The order of lines within a stream (streams regrouped by stream labels are re-sorted).
    direction: Direction,
}

impl Encoding {
    /// The flags of `X-Loki-Response-Encoding-Flags` (comma-separated, any number of headers).
    fn from_request(headers: &HeaderMap, direction: Direction) -> Self {
        let categorize = headers
            .get_all(ENCODING_FLAGS_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|f| f.trim() == CATEGORIZE_LABELS);
        Self { categorize, direction }
    }
}

/// `{"status":"success","data":{"resultType":...,"result":...,"stats":{...}}}`, with
/// `"encodingFlags":[...]` after `resultType` when the client asked for flags.
fn render_result(r: &LogqlResult, encoding: Encoding) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":{"resultType":""#);
    out.push_str(r.value.result_type());
    out.push('"');
    if encoding.categorize {
        out.push_str(r#","encodingFlags":[""#);
        out.push_str(CATEGORIZE_LABELS);
        out.push_str(r#""]"#);
    }
    out.push_str(r#","result":"#);
    match &r.value {
        LogqlValue::Streams(streams) if encoding.categorize => {
            write_categorized_streams(&mut out, streams, encoding.direction)
        }
        LogqlValue::Streams(streams) => write_streams(&mut out, streams),
        LogqlValue::Matrix(series) => write_matrix(&mut out, series),
        LogqlValue::Vector(samples) => write_vector(&mut out, samples),
        LogqlValue::Scalar { timestamp, value } => write_point(&mut out, *timestamp, *value),
    }
    out.push_str(r#","stats":"#);
    write_stats(&mut out, &r.stats);
    out.push_str("}}");
    out
}

/// `[{"stream":{labels},"values":[["<ns>","<line>"],...]},...]`.
fn write_streams(out: &mut String, streams: &[Stream]) {
    write_list(out, streams, |out, s| {
        out.push_str(r#"{"stream":"#);
        write_labels(out, &s.labels);
        out.push_str(r#","values":"#);
        write_list(out, &s.entries, |out, e| {
            let _ = write!(out, r#"["{}","#, e.timestamp);
            write_string(out, &e.line);
            out.push(']');
        });
        out.push('}');
    });
}

/// `[{"stream":{stream labels},"values":[["<ns>","<line>",{"structuredMetadata":{...},
/// "parsed":{...}}],...]},...]`: the engine's streams regrouped by their stream labels alone,
/// lines in `direction` order, each line's other labels beside it (an empty part left out, the
/// object always there, as Loki writes it).
fn write_categorized_streams(out: &mut String, streams: &[Stream], direction: Direction) {
    let split: Vec<(Labels, Labels, Labels)> = streams.iter().map(Stream::categorized).collect();
    let mut grouped: BTreeMap<&Labels, Vec<(&LogEntry, usize)>> = BTreeMap::new();
    for (i, (s, (stream, _, _))) in streams.iter().zip(&split).enumerate() {
        grouped
            .entry(stream)
            .or_default()
            .extend(s.entries.iter().map(|e| (e, i)));
    }
    let groups: Vec<_> = grouped.into_iter().collect();
    write_list(out, &groups, |out, (stream, entries)| {
        let mut entries = entries.clone();
        // Stable: lines at one timestamp keep the engine's order.
        match direction {
            Direction::Forward => entries.sort_by_key(|(e, _)| e.timestamp),
            Direction::Backward => entries.sort_by_key(|(e, _)| std::cmp::Reverse(e.timestamp)),
        }
        out.push_str(r#"{"stream":"#);
        write_labels(out, stream);
        out.push_str(r#","values":"#);
        write_list(out, &entries, |out, (e, i)| {
            let (_, metadata, parsed) = &split[*i];
            let _ = write!(out, r#"["{}","#, e.timestamp);
            write_string(out, &e.line);
            out.push_str(",{");
            if !metadata.is_empty() {
                out.push_str(r#""structuredMetadata":"#);
                write_labels(out, metadata);
            }
            if !parsed.is_empty() {
                if !metadata.is_empty() {
                    out.push(',');
                }
                out.push_str(r#""parsed":"#);
                write_labels(out, parsed);
            }
            out.push_str("}]");
        });
        out.push('}');
    });
}

/// The `summary` part of Loki's statistics, which Grafana shows in the query inspector.
fn write_stats(out: &mut String, s: &QueryStats) {
    let secs = s.exec_time.as_secs_f64();
    let per_sec = |n: u64| if secs > 0.0 { (n as f64 / secs) as u64 } else { 0 };
    let _ = write!(
        out,
        r#"{{"summary":{{"bytesProcessedPerSecond":{},"linesProcessedPerSecond":{},"totalBytesProcessed":{},"totalLinesProcessed":{},"execTime":{},"queueTime":0,"subqueries":0,"totalEntriesReturned":{},"splits":0,"shards":0,"totalPostFilterLines":{},"totalStructuredMetadataBytesProcessed":0}}}}"#,
        per_sec(s.bytes_processed),
        per_sec(s.lines_processed),
        s.bytes_processed,
        s.lines_processed,
        secs,
        s.entries_returned,
        s.entries_returned,
    );
}

/// Loki's default step: a 250th of the range, at least a second (whole seconds).
fn default_step(start: i64, end: i64) -> i64 {
    let secs = ((end - start) as f64 / 1e9 / 250.0).floor().max(1.0);
    secs as i64 * 1_000_000_000
}

#[cfg(test)]
mod drilldown_tests;
#[cfg(test)]
mod tests;
