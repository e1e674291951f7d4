//! `/loki/api/v1/detected_labels`, `/loki/api/v1/detected_fields` and
//! `/loki/api/v1/detected_field/{name}/values`: what Logs Drilldown's Labels and Fields tabs
//! break logs down by.
//!
//! Parameters are Loki's (`loghttp.ParseDetectedLabelsQuery`, `ParseDetectedFieldsQuery`):
//! `query` (labels: a stream selector or nothing; fields: a log query, pipeline allowed),
//! `start`/`end`/`since`, and for fields `line_limit` (lines looked at, default 100), `limit`
//! (fields or values answered, default 1000) and `step` (validated only). Answers are Loki's
//! protobuf JSON: `{"detectedLabels":[{"label":..,"cardinality":N}]}`,
//! `{"fields":[{"label":..,"type":..,"cardinality":N,"parsers":[..]|null,"jsonPath":[..]}],"limit":N}`
//! and `{"values":[..],"limit":N}`, with empty lists left out as Loki's `omitempty` leaves them.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;

use super::{ApiResult, json};
use crate::http::access::Reader;
use crate::http::params::Params;
use crate::http::render::{strings, write_list, write_string};
use crate::logql::{DetectedField, LogqlEngine};

#[tracing::instrument(name = "loki.detected_labels", skip_all)]
pub(super) async fn detected_labels(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end) = p.loki_range()?;
    let labels = engine.detected_labels(p.text("query"), start, end).await?;
    if labels.is_empty() {
        return Ok(json("{}".into()));
    }
    let mut out = String::from(r#"{"detectedLabels":"#);
    write_list(&mut out, &labels, |out, (label, cardinality)| {
        out.push_str(r#"{"label":"#);
        write_string(out, label);
        out.push_str(&format!(r#","cardinality":{cardinality}}}"#));
    });
    out.push('}');
    Ok(json(out))
}

#[tracing::instrument(name = "loki.detected_fields", skip_all)]
pub(super) async fn detected_fields(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end, line_limit, limit) = fields_params(&p)?;
    let fields = engine
        .detected_fields(p.text("query"), start, end, line_limit, limit)
        .await?;
    if fields.is_empty() {
        return Ok(json("{}".into()));
    }
    let mut out = String::from(r#"{"fields":"#);
    write_list(&mut out, &fields, write_field);
    out.push_str(&format!(r#","limit":{limit}}}"#));
    Ok(json(out))
}

#[tracing::instrument(name = "loki.detected_field_values", skip_all)]
pub(super) async fn detected_field_values(
    Reader(engine, _slot): Reader<LogqlEngine>,
    Path(name): Path<String>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let (start, end, line_limit, limit) = fields_params(&p)?;
    let values = engine
        .detected_field_values(p.text("query"), &name, start, end, line_limit, limit)
        .await?;
    if values.is_empty() {
        return Ok(json("{}".into()));
    }
    Ok(json(format!(r#"{{"values":{},"limit":{limit}}}"#, strings(&values))))
}

/// `start`, `end`, `line_limit` and `limit`, checked in Loki's order (`step` too).
fn fields_params(p: &Params) -> Result<(i64, i64, usize, usize), crate::http::error::LokiError> {
    let (start, end) = p.loki_range()?;
    let line_limit = p.loki_line_limit()?;
    let limit = p.loki_fields_limit()?;
    p.loki_step(start, end)?;
    Ok((start, end, line_limit, limit))
}

fn write_field(out: &mut String, f: &DetectedField) {
    out.push_str(r#"{"label":"#);
    write_string(out, &f.label);
    out.push_str(&format!(
        r#","type":"{}","cardinality":{},"parsers":"#,
        f.kind, f.cardinality
    ));
    match &f.parsers {
        Some(parsers) => {
            let parsers: Vec<String> = parsers.iter().map(|p| p.to_string()).collect();
            out.push_str(&strings(&parsers));
        }
        None => out.push_str("null"),
    }
    if let Some(path) = &f.json_path {
        out.push_str(r#","jsonPath":"#);
        out.push_str(&strings(path));
    }
    out.push('}');
}
