//! `GET /federate`: the latest sample of every series any `match[]` selects, in Prometheus's
//! text exposition format with timestamps, so a Prometheus scraping it (`honor_labels: true`)
//! stores the same series, `cluster` and all.
//!
//! As Prometheus's own federation: a series' latest sample within the lookback delta
//! (`query.lookback_delta`, `(now - lookback, now]`), none if it is a staleness marker; series
//! grouped by metric name, each name once under `# TYPE <name> untyped` (Prometheus keeps no
//! types to federate either); labels in name order, `__name__` as the metric name. Read scopes
//! apply (the engine is the request's scoped one) and the samples read are held to
//! `query.max_samples`. Native histograms are not federated: the text format cannot carry them,
//! and Prometheus leaves them out of it too.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tributary_storage::read::SelectRequest;
use tributary_storage::types::{Labels, METRIC_NAME, TimeRange, is_stale_nan};

use super::access::Reader;
use super::error::PromError;
use super::params::{Params, now_ms};
use crate::error::Error;
use crate::promql::{Engine, format_value};

/// Prometheus's text format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[tracing::instrument(name = "api.federate", skip_all)]
pub(crate) async fn federate(
    Reader(engine, _slot): Reader<Engine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PromError> {
    let p = Params::parse(url.as_deref(), &headers, &body);
    if p.all("match[]").next().is_none() {
        return Err(Error::BadData("no match[] parameter provided".into()).into());
    }
    let sets = p.prom_matchers()?;
    let now = now_ms();
    let range = TimeRange::new(now - engine.lookback_ms() + 1, now);
    let requests: Vec<SelectRequest> = sets
        .into_iter()
        .map(|matchers| SelectRequest::new(matchers, range))
        .collect();
    let latest = engine.within_timeout(latest(&engine, &requests)).await?;
    engine.check_series(latest.len(), "federation")?;
    Ok((StatusCode::OK, [(CONTENT_TYPE, TEXT_FORMAT)], exposition(&latest)).into_response())
}

/// Each selected series once with its latest sample (a stale one drops the series), sorted by
/// labels, so series of one name are together.
async fn latest(engine: &Engine, requests: &[SelectRequest]) -> Result<Vec<(Labels, i64, f64)>, Error> {
    let source = engine.source();
    let max = engine.max_samples();
    let mut total = 0usize;
    for r in requests {
        total = total.saturating_add(source.count_samples(r, max.saturating_sub(total)).await?);
        if total > max {
            return Err(Error::TooManySamples);
        }
    }
    let mut out = Vec::new();
    for r in requests {
        for series in source.select(r).await? {
            if let Some(last) = series.samples.last()
                && !is_stale_nan(last.value)
            {
                out.push((series.labels, last.timestamp, last.value));
            }
        }
    }
    // Alternatives of `match[]` may select one series twice.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

fn exposition(latest: &[(Labels, i64, f64)]) -> String {
    let mut out = String::new();
    let mut by_name: Vec<&(Labels, i64, f64)> = latest.iter().collect();
    by_name.sort_by(|a, b| a.0.metric_name().cmp(&b.0.metric_name()).then(a.0.cmp(&b.0)));
    let mut current: Option<&str> = None;
    for (labels, t, v) in by_name {
        let name = labels.metric_name().unwrap_or("");
        if current != Some(name) {
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(" untyped\n");
            current = Some(name);
        }
        out.push_str(name);
        let mut first = true;
        for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(l.name);
            out.push_str("=\"");
            escape_into(&mut out, l.value);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        out.push_str(&text_float(*v));
        out.push(' ');
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out
}

/// A label value as the text format escapes it.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A value as Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes it (what the text format
/// uses): shortest round-trip digits, in exponent form when the decimal exponent is below -4 or
/// at least 6 (`1e+06`, `1.5e-05`), else plain; `+Inf`, `-Inf`, `NaN`.
fn text_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let formatted = format!("{v:e}");
    let (mantissa, exp) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let exponent: i32 = exp.parse().unwrap_or(0);
    if v == 0.0 || (-4..6).contains(&exponent) {
        return format_value(v);
    }
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_writes_them() {
        for (v, text) in [
            (0.0, "0"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (123_456.5, "123456.5"),
            (1e6, "1e+06"),
            (1_700_000_000.125, "1.700000000125e+09"),
            (0.0001, "0.0001"),
            (0.000_015, "1.5e-05"),
            (1e300, "1e+300"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(text_float(v), text, "{v}");
        }
    }

    #[test]
    fn exposition_groups_names_under_one_type_line() {
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs);
        let latest = vec![
            (l(&[("__name__", "b"), ("cluster", "x")]), 2000, 2.0),
            (
                l(&[("__name__", "a"), ("cluster", "y"), ("path", "q\"\n\\")]),
                1000,
                1.0,
            ),
            (l(&[("__name__", "a"), ("cluster", "x")]), 1500, 0.5),
        ];
        let text = exposition(&latest);
        assert_eq!(
            text,
            "# TYPE a untyped\na{cluster=\"x\"} 0.5 1500\na{cluster=\"y\",path=\"q\\\"\\n\\\\\"} 1 1000\n\
             # TYPE b untyped\nb{cluster=\"x\"} 2 2000\n"
        );
    }
}
