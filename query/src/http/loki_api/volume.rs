//! `/loki/api/v1/index/volume` and `/loki/api/v1/index/volume_range`: log bytes per series or
//! per label, which Logs Drilldown's landing page lists services by.
//!
//! Parameters are Loki's (`loghttp.ParseVolumeInstantQuery`/`ParseVolumeRangeQuery`): `query`
//! (a stream selector, `{}` for all), `start`/`end`/`since`, `step` (range only), `limit`
//! (default 100, 0 is 100), `targetLabels` (comma-separated) and `aggregateBy` (`series` or
//! `labels`). The answer is Loki's Prometheus-shaped one (`queryrange.ToPrometheusResponse`): a
//! vector when every series has one bucket, else a matrix; by labels, each metric is the label's
//! name with the empty value (`{"service_name":""}`).

use std::fmt::Write;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::HeaderMap;

use super::{ApiResult, json, success};
use crate::http::access::Reader;
use crate::http::params::Params;
use crate::http::render::{write_list, write_string, write_timestamp};
use crate::logql::{LogqlEngine, VolumeQuery, VolumeSeries};

#[tracing::instrument(name = "loki.volume", skip_all)]
pub(super) async fn volume(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let limit = p.loki_volume_limit()?;
    // Validated as Loki's `ParseInstantQuery` does, though a volume uses neither.
    p.loki_time_or("time", || 0)?;
    p.loki_direction()?;
    let by = p.loki_aggregate_by()?;
    let (start, end) = p.loki_range()?;
    let q = VolumeQuery {
        query: p.text("query").to_string(),
        start,
        end,
        step: None,
        limit,
        target_labels: p.loki_target_labels(),
        by,
    };
    Ok(json(render(&engine.volume(&q).await?)))
}

#[tracing::instrument(name = "loki.volume_range", skip_all)]
pub(super) async fn volume_range(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &body);
    let limit = p.loki_volume_limit()?;
    let (start, end) = p.loki_range()?;
    let step = p.loki_step(start, end)?;
    p.loki_direction()?;
    let by = p.loki_aggregate_by()?;
    let q = VolumeQuery {
        query: p.text("query").to_string(),
        start,
        end,
        step: Some(step),
        limit,
        target_labels: p.loki_target_labels(),
        by,
    };
    Ok(json(render(&engine.volume(&q).await?)))
}

/// `{"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[t,"bytes"]}]}}`,
/// or a matrix with `values`.
fn render(series: &[VolumeSeries]) -> String {
    let matrix = series.iter().any(|s| s.samples.len() > 1);
    let mut out = String::from(if matrix {
        r#"{"resultType":"matrix","result":"#
    } else {
        r#"{"resultType":"vector","result":"#
    });
    write_list(&mut out, series, |out, s| {
        out.push_str(r#"{"metric":{"#);
        for (i, (name, value)) in s.metric.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(out, name);
            out.push(':');
            write_string(out, value);
        }
        out.push_str(if matrix { r#"},"values":["# } else { r#"},"value":"# });
        for (i, (t, bytes)) in s.samples.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            write_timestamp(out, *t);
            let _ = write!(out, r#","{bytes}"]"#);
        }
        out.push_str(if matrix { "]}" } else { "}" });
    });
    out.push('}');
    success(&out)
}
