//! The Loki HTTP query API (`/loki/api/v1/...`) over a [`LogqlEngine`], with the JSON shapes
//! Grafana's Loki data source parses and Loki's error format: a plain-text body (`parse error at
//! line 1, col 5: ...`) with 400 for bad queries and parameters.
//!
//! Parameters come from the URL query and, for POST, a form body (form values first, as Go's
//! `r.FormValue`). Timestamps are what Loki accepts: RFC 3339, unix seconds (with a fraction, or
//! ten digits at most) or unix nanoseconds.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tributary_storage::read::Direction;

use crate::error::{Error, ErrorKind};
use crate::http::render::{
    label_sets, strings, write_labels, write_list, write_matrix, write_point, write_string, write_vector,
};
use crate::logql::{LogqlEngine, LogqlResult, LogqlValue, QueryStats, RangeQuery, Stream};

mod tail;

/// The Loki version reported to clients that gate features on it.
const LOKI_COMPATIBLE_VERSION: &str = "3.0.0";
const DEFAULT_LIMIT: usize = 100;
const DEFAULT_SINCE_NS: i64 = 3_600 * 1_000_000_000;
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Routes of the Loki query API; merge into the server's router.
pub fn loki_router(engine: Arc<LogqlEngine>) -> Router {
    Router::new()
        .route("/loki/api/v1/query", get(query).post(query))
        .route("/loki/api/v1/query_range", get(query_range).post(query_range))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values).post(label_values))
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/loki/api/v1/index/stats", get(index_stats).post(index_stats))
        .route("/loki/api/v1/status/buildinfo", get(build_info))
        .route("/loki/api/v1/format_query", get(format_query).post(format_query))
        .route("/loki/api/v1/tail", get(tail::tail))
        .with_state(engine)
}

type ApiResult = Result<Response, LokiError>;

/// An error answered the way Loki answers it: a status and a plain-text message.
#[derive(Debug)]
struct LokiError(Error);

impl From<Error> for LokiError {
    fn from(e: Error) -> Self {
        LokiError(e)
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        let kind = self.0.kind();
        let status = match (&self.0, kind) {
            (Error::Timeout(_), _) => StatusCode::GATEWAY_TIMEOUT,
            (_, ErrorKind::BadData | ErrorKind::Execution) => StatusCode::BAD_REQUEST,
            (_, ErrorKind::Canceled) => StatusCode::from_u16(CLIENT_CLOSED_REQUEST).unwrap_or(StatusCode::BAD_REQUEST),
            (_, ErrorKind::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            (_, ErrorKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            (_, ErrorKind::NotFound) => StatusCode::NOT_FOUND,
            (_, ErrorKind::Internal) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self.0 {
            // Loki: `parse error at line 1, col 5: ...`, or `parse error : ...` without a position.
            Error::Parse { message } if message.starts_with("at line") => format!("parse error {message}"),
            Error::Parse { message } => format!("parse error : {message}"),
            other => other.to_string(),
        };
        if kind == ErrorKind::Internal {
            tracing::error!(error = %message, "loki query failed");
        } else {
            tracing::debug!(error = %message, "loki query rejected");
        }
        (
            status,
            [
                (CONTENT_TYPE, "text/plain; charset=utf-8"),
                (HeaderName::from_static("x-content-type-options"), "nosniff"),
            ],
            format!("{message}\n"),
        )
            .into_response()
    }
}

fn invalid(param: &str, reason: impl Into<String>) -> LokiError {
    LokiError(Error::InvalidParameter {
        param: param.into(),
        reason: reason.into(),
    })
}

fn json(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

#[tracing::instrument(name = "loki.query_range", skip_all)]
async fn query_range(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.get("query").unwrap_or_default().to_string();
    let (start, end) = p.range()?;
    let step = match p.get("step").filter(|s| !s.is_empty()) {
        Some(s) => parse_step(s).map_err(|e| invalid("step", e))?,
        None => default_step(start, end),
    };
    let q = RangeQuery {
        query,
        start,
        end,
        step,
        limit: p.limit()?,
        direction: p.direction()?,
    };
    tracing::debug!(query = q.query, start, end, step, "loki range query");
    let result = engine.query_range(&q).await?;
    Ok(json(render_result(&result)))
}

#[tracing::instrument(name = "loki.query", skip_all)]
async fn query(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let query = p.get("query").unwrap_or_default();
    let time = match p.get("time").filter(|s| !s.is_empty()) {
        Some(t) => parse_time(t).map_err(|e| invalid("time", e))?,
        None => now_ns(),
    };
    p.limit()?;
    p.direction()?;
    let result = engine.query_instant(query, time).await?;
    Ok(json(render_result(&result)))
}

#[tracing::instrument(name = "loki.labels", skip_all)]
async fn labels(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.range()?;
    let names = engine.labels(start, end, p.get("query")).await?;
    Ok(json(success(&strings(&names))))
}

#[tracing::instrument(name = "loki.label_values", skip_all)]
async fn label_values(
    State(engine): State<Arc<LogqlEngine>>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.range()?;
    let values = engine.label_values(&name, start, end, p.get("query")).await?;
    Ok(json(success(&strings(&values))))
}

#[tracing::instrument(name = "loki.series", skip_all)]
async fn series(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.range()?;
    let selectors: Vec<String> = p.all("match[]").chain(p.all("match")).map(str::to_string).collect();
    let sets = engine.series(&selectors, start, end).await?;
    Ok(json(success(&label_sets(&sets))))
}

#[tracing::instrument(name = "loki.index_stats", skip_all)]
async fn index_stats(
    State(engine): State<Arc<LogqlEngine>>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.range()?;
    let query = p.get("query").unwrap_or_default();
    let s = engine.stats(query, start, end).await?;
    Ok(json(format!(
        r#"{{"streams":{},"chunks":{},"entries":{},"bytes":{}}}"#,
        s.streams, s.chunks, s.entries, s.bytes
    )))
}

/// The query, parsed and printed back in canonical form.
#[tracing::instrument(name = "loki.format_query", skip_all)]
async fn format_query(RawQuery(url): RawQuery, headers: HeaderMap, body: Bytes) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let expr = crate::logql::parse(p.get("query").unwrap_or_default())?;
    Ok(json(success(&quote(&expr.to_string()))))
}

async fn build_info() -> Response {
    json(format!(
        r#"{{"version":{},"revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"","application":"tributary","tributaryVersion":{}}}"#,
        quote(LOKI_COMPATIBLE_VERSION),
        quote(env!("CARGO_PKG_VERSION"))
    ))
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

/// `{"status":"success","data":{"resultType":...,"result":...,"stats":{...}}}`.
fn render_result(r: &LogqlResult) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":{"resultType":""#);
    out.push_str(r.value.result_type());
    out.push_str(r#"","result":"#);
    match &r.value {
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

// ---------------------------------------------------------------- parameters

#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(url_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut pairs = Vec::new();
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = url_query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `start`/`end`/`since` as Loki reads them: `end` defaults to now, `start` to `end - since`
    /// (`since` defaults to an hour).
    fn range(&self) -> Result<(i64, i64), LokiError> {
        let end = match self.get("end").filter(|s| !s.is_empty()) {
            Some(t) => parse_time(t).map_err(|e| invalid("end", e))?,
            None => now_ns(),
        };
        let since = match self.get("since").filter(|s| !s.is_empty()) {
            Some(d) => parse_step(d).map_err(|e| invalid("since", e))?,
            None => DEFAULT_SINCE_NS,
        };
        let start = match self.get("start").filter(|s| !s.is_empty()) {
            Some(t) => parse_time(t).map_err(|e| invalid("start", e))?,
            None => end.saturating_sub(since),
        };
        if end < start {
            return Err(LokiError(Error::BadData(
                "end timestamp must not be before or equal to start time".into(),
            )));
        }
        Ok((start, end))
    }

    fn limit(&self) -> Result<usize, LokiError> {
        match self.get("limit").filter(|s| !s.is_empty()) {
            None => Ok(DEFAULT_LIMIT),
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| invalid("limit", "limit must be a positive value")),
        }
    }

    fn direction(&self) -> Result<Direction, LokiError> {
        match self.get("direction").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(other) => Err(invalid("direction", format!("invalid direction {other:?}"))),
        }
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Loki's timestamp rules: a number with a fraction is seconds; an integer of at most ten digits
/// is seconds, a longer one nanoseconds; anything else RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {text:?} to a valid timestamp");
    if text.contains('.') && !text.contains(['T', 't', '-', ':']) {
        let (whole, frac) = text.split_once('.').ok_or_else(bad)?;
        let secs: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let digits: String = frac.chars().take(9).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let nanos: i64 = format!("{digits:0<9}").parse().map_err(|_| bad())?;
        let nanos = if secs < 0 || whole.starts_with('-') {
            -nanos
        } else {
            nanos
        };
        return secs
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(nanos))
            .ok_or_else(bad);
    }
    if let Ok(n) = text.parse::<i64>() {
        let digits = text.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(1_000_000_000).ok_or_else(bad)
        } else {
            Ok(n)
        };
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(bad)
}

/// A step or `since`: float seconds, or a duration (`5m`, `1h30m`, `250ms`).
fn parse_step(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9e9 {
            return Err(format!("cannot parse {text:?} to a valid duration"));
        }
        return Ok((secs * 1e9).round() as i64);
    }
    crate::logql::parse_duration(text).ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Loki's default step: a 250th of the range, at least a second (whole seconds).
fn default_step(start: i64, end: i64) -> i64 {
    let secs = ((end - start) as f64 / 1e9 / 250.0).floor().max(1.0);
    secs as i64 * 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::LogqlConfig;
    use crate::logql::mem::{MemLogSource, record};
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    const S: i64 = 1_000_000_000;

    fn app() -> Router {
        let a = [("cluster", "prod-1"), ("service_name", "checkout")];
        let b = [("cluster", "dev"), ("service_name", "cart")];
        let records = vec![
            record(&a, S, r#"{"status":500,"msg":"timeout"}"#),
            record(&a, 2 * S, r#"{"status":200,"msg":"ok"}"#),
            record(&b, 3 * S, "level=error msg=boom"),
        ];
        let engine = LogqlEngine::new(Arc::new(MemLogSource::new(records)), LogqlConfig::default());
        loki_router(Arc::new(engine))
    }

    fn encode(params: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish()
    }

    fn get(path: &str, params: &[(&str, &str)]) -> Request<Body> {
        Request::get(format!("{path}?{}", encode(params)))
            .body(Body::empty())
            .unwrap()
    }

    async fn call(req: Request<Body>) -> (StatusCode, String, String) {
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn ok_json(req: Request<Body>) -> serde_json::Value {
        let (status, ct, body) = call(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(ct.starts_with("application/json"));
        serde_json::from_str(&body).unwrap()
    }

    #[tokio::test]
    async fn loki_query_range_streams_shape() {
        let v = ok_json(get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{service_name="checkout"} | json | status >= 500"#),
                ("start", "0"),
                ("end", "10"),
            ],
        ))
        .await;
        assert_eq!(v["status"], "success");
        assert_eq!(v["data"]["resultType"], "streams");
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([{
                "stream": {"cluster": "prod-1", "msg": "timeout", "service_name": "checkout", "status": "500"},
                "values": [["1000000000", r#"{"status":500,"msg":"timeout"}"#]]
            }])
        );
        assert_eq!(v["data"]["stats"]["summary"]["totalLinesProcessed"], 2);
        assert_eq!(v["data"]["stats"]["summary"]["totalEntriesReturned"], 1);
    }

    #[tokio::test]
    async fn loki_query_range_direction_limit_and_post_form() {
        let params = [
            ("query", r#"{cluster=~".+"}"#),
            ("start", "1970-01-01T00:00:00Z"),
            ("end", "10000000000"),
            ("limit", "2"),
            ("direction", "FORWARD"),
        ];
        let req = Request::post("/loki/api/v1/query_range")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(encode(&params)))
            .unwrap();
        let v = ok_json(req).await;
        let mut ts: Vec<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e[0].as_str().unwrap().to_string())
            })
            .collect();
        ts.sort();
        assert_eq!(ts, ["1000000000", "2000000000"]);
        // Backward (the default) takes the newest.
        let v = ok_json(get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{cluster=~".+"}"#),
                ("start", "0"),
                ("end", "10"),
                ("limit", "1"),
            ],
        ))
        .await;
        assert_eq!(v["data"]["result"][0]["values"][0][0], "3000000000");
    }

    #[tokio::test]
    async fn loki_metric_queries_are_matrix_and_vector() {
        let v = ok_json(get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"sum by (cluster) (count_over_time({cluster=~".+"}[2s]))"#),
                ("start", "2"),
                ("end", "4"),
                ("step", "2s"),
            ],
        ))
        .await;
        assert_eq!(v["data"]["resultType"], "matrix");
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([
                {"metric": {"cluster": "dev"}, "values": [[4, "1"]]},
                {"metric": {"cluster": "prod-1"}, "values": [[2, "2"]]}
            ])
        );
        let v = ok_json(get(
            "/loki/api/v1/query",
            &[("query", r#"rate({cluster="prod-1"}[4s])"#), ("time", "4.5")],
        ))
        .await;
        assert_eq!(v["data"]["resultType"], "vector");
        assert_eq!(
            v["data"]["result"],
            serde_json::json!([{"metric": {"cluster": "prod-1", "service_name": "checkout"}, "value": [4.5, "0.5"]}])
        );
        let v = ok_json(get("/loki/api/v1/query", &[("query", "1 + 1"), ("time", "1")])).await;
        assert_eq!(v["data"]["result"], serde_json::json!([1, "2"]));
    }

    #[tokio::test]
    async fn loki_errors_are_plain_text_400s() {
        let (status, ct, body) = call(get("/loki/api/v1/query_range", &[("query", "{app=}")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ct, "text/plain; charset=utf-8");
        assert_eq!(
            body,
            "parse error at line 1, col 6: syntax error: unexpected }, expecting STRING\n"
        );
        let (status, _, body) = call(get("/loki/api/v1/query_range", &[("query", r#"{a=~".*"}"#)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.starts_with("parse error : queries require at least one regexp"),
            "{body}"
        );
        let (status, _, body) = call(get(
            "/loki/api/v1/query_range",
            &[("query", r#"{a="b"}"#), ("start", "yesterday")],
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("cannot parse \"yesterday\" to a valid timestamp"),
            "{body}"
        );
        let (status, _, _) = call(get(
            "/loki/api/v1/query_range",
            &[("query", r#"{a="b"}"#), ("direction", "sideways")],
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = call(get(
            "/loki/api/v1/query_range",
            &[("query", r#"{a="b"}"#), ("limit", "-1")],
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, body) = call(get(
            "/loki/api/v1/query",
            &[
                (
                    "query",
                    r#"sum_over_time({cluster="prod-1"} | logfmt | unwrap msg [1h])"#,
                ),
                ("time", "10"),
            ],
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("pipeline error: 'SampleExtractionErr'"), "{body}");
        let (status, _, body) = call(get("/loki/api/v1/query", &[("query", r#"{a="b"}"#)])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("instant query type"));
    }

    #[tokio::test]
    async fn loki_labels_values_and_series() {
        let range = [("start", "0"), ("end", "10")];
        let v = ok_json(get("/loki/api/v1/labels", &range)).await;
        assert_eq!(
            v,
            serde_json::json!({"status": "success", "data": ["cluster", "service_name"]})
        );
        let v = ok_json(get("/loki/api/v1/label/cluster/values", &range)).await;
        assert_eq!(v["data"], serde_json::json!(["dev", "prod-1"]));
        let v = ok_json(get(
            "/loki/api/v1/label/cluster/values",
            &[("start", "0"), ("end", "10"), ("query", r#"{service_name="cart"}"#)],
        ))
        .await;
        assert_eq!(v["data"], serde_json::json!(["dev"]));
        let v = ok_json(get(
            "/loki/api/v1/series",
            &[("start", "0"), ("end", "10"), ("match[]", r#"{service_name="cart"}"#)],
        ))
        .await;
        assert_eq!(
            v["data"],
            serde_json::json!([{"cluster": "dev", "service_name": "cart"}])
        );
        let v = ok_json(get("/loki/api/v1/series", &range)).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        let (status, _, _) = call(get("/loki/api/v1/series", &[("match[]", "{bad")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn loki_index_stats_and_buildinfo() {
        let v = ok_json(get(
            "/loki/api/v1/index/stats",
            &[("query", r#"{service_name="checkout"}"#), ("start", "0"), ("end", "10")],
        ))
        .await;
        let bytes = r#"{"status":500,"msg":"timeout"}"#.len() + r#"{"status":200,"msg":"ok"}"#.len();
        assert_eq!(
            v,
            serde_json::json!({"streams": 1, "chunks": 1, "entries": 2, "bytes": bytes})
        );
        let v = ok_json(get("/loki/api/v1/status/buildinfo", &[])).await;
        assert_eq!(v["version"], LOKI_COMPATIBLE_VERSION);
        let v = ok_json(get(
            "/loki/api/v1/format_query",
            &[("query", r#"sum by(a)(rate({x="y"}|="z"[5m]))"#)],
        ))
        .await;
        assert_eq!(v["data"], r#"sum by (a) (rate({x="y"} |= "z" [5m]))"#);
        let (status, _, _) = call(get("/loki/api/v1/format_query", &[("query", "{")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn loki_times_and_steps_parse_like_loki() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000 * S);
        assert_eq!(parse_time("1700000000000000000").unwrap(), 1_700_000_000 * S);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5Z").unwrap(),
            1_700_000_000 * S + 500_000_000
        );
        assert!(parse_time("soon").is_err());
        assert_eq!(parse_step("15").unwrap(), 15 * S);
        assert_eq!(parse_step("0.5").unwrap(), S / 2);
        assert_eq!(parse_step("1m30s").unwrap(), 90 * S);
        assert!(parse_step("fast").is_err());
        assert_eq!(default_step(0, 3600 * S), 14 * S);
        assert_eq!(default_step(0, 10 * S), S);
    }
}
