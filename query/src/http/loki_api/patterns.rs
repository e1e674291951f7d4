//! `/loki/api/v1/patterns`: the log patterns of the selected streams, for Logs Drilldown's
//! Patterns tab.
//!
//! Parameters are Loki's (`loghttp.ParsePatternsQuery`): `query` (a stream selector),
//! `start`/`end`/`since` and `step` (at most 11,000 steps; under 10 s counts as 10 s). The answer
//! is Loki's (`marshal.WriteQueryPatternsResponseJSON`):
//! `{"status":"success","data":[{"pattern":"..","level":"..","samples":[[<unix s>,<lines>],..]}]}`.
//! Loki's pattern ingesters cluster lines as they arrive; here each Parquet file carries the
//! patterns of its lines, clustered as it was written, and the head's lines are clustered on
//! read over at most `PATTERN_MAX_LINES` lines, the newest: when the head holds more, the answer
//! adds a `warnings` list saying so.

use std::fmt::Write;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;

use super::{ApiResult, json};
use crate::http::access::Reader;
use crate::http::params::Params;
use crate::http::render::{write_list, write_string};
use crate::logql::{LogqlEngine, PATTERN_MAX_LINES, PatternSeries};

#[tracing::instrument(name = "loki.patterns", skip_all)]
pub(super) async fn patterns(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let step = p.loki_step(start, end)?;
    let answer = engine.patterns(p.text("query"), start, end, step).await?;
    let mut out = String::from(r#"{"status":"success","data":"#);
    write_list(&mut out, &answer.series, write_series);
    if answer.truncated {
        out.push_str(r#","warnings":"#);
        write_list(
            &mut out,
            &[format!(
                "patterns of lines not yet written to storage were computed over the newest {PATTERN_MAX_LINES} of them only: narrow the selector or the time range to see them all"
            )],
            |out, w| write_string(out, w),
        );
    }
    out.push('}');
    Ok(json(out))
}

fn write_series(out: &mut String, s: &PatternSeries) {
    out.push_str(r#"{"pattern":"#);
    write_string(out, &s.pattern);
    out.push_str(r#","level":"#);
    write_string(out, &s.level);
    out.push_str(r#","samples":["#);
    for (i, (t, n)) in s.samples.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{t},{n}]");
    }
    out.push_str("]}");
}
