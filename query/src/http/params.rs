//! Request parameters of both query APIs, read one way: the URL query and, for a form POST, the
//! body, in Go's `r.Form` order (form values first), so `get` answers what Go's `r.FormValue`
//! would and `all` what `r.Form[key]` holds.
//!
//! The two API families share the reading but not every format, so the formats live here side by
//! side and each accessor says whose rules it applies:
//!
//! | what       | Prometheus (`prom_*`, milliseconds)              | Loki (`loki_*`, nanoseconds)                              |
//! |------------|--------------------------------------------------|-----------------------------------------------------------|
//! | a time     | unix seconds (fraction rounded to ms), RFC 3339, `MinTime`/`MaxTime` text | unix seconds with a fraction or of at most ten digits, unix nanoseconds, RFC 3339 |
//! | a duration | float seconds or `model.ParseDuration` (`1h30m`) | float seconds or Go's `time.ParseDuration` plus `d w y`   |
//! | `limit`    | non-negative, 0 or absent for none               | positive, 100 when absent (volume: 0 is 100; fields: 1000) |
//!
//! Every error is an [`Error`] with the wording the upstream API answers (clients and the
//! conformance suite compare them), so a handler only writes `?`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use tributary_storage::read::Direction;
use tributary_storage::types::{Matcher, TimeRange, TimestampMs};

use crate::error::{Error, Result};
use crate::logql::VolumeBy;
use crate::logql::units::parse_go_duration;
use crate::promql::parse_series_selector;

/// Prometheus's `MinTime`/`MaxTime` as RFC 3339, which clients send for "unbounded".
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";
const MIN_TIME_MS: TimestampMs = -9_223_309_901_257_974;
const MAX_TIME_MS: TimestampMs = 9_223_309_901_257_974;

/// Loki's default `limit` of a log query.
const LOKI_DEFAULT_LIMIT: usize = 100;
/// Loki's default `limit` of `detected_fields`.
const LOKI_DEFAULT_FIELDS_LIMIT: usize = 1000;
/// Loki's default `since`: a range without `start` looks back an hour.
pub(crate) const LOKI_DEFAULT_SINCE_NS: i64 = 3_600 * 1_000_000_000;

/// A request's parameters in Go's `r.Form` order: form body values first, then the URL's.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// The URL query's pairs, after the body's when the body is a form
    /// (`application/x-www-form-urlencoded`); any other body is not parameters.
    pub(crate) fn parse(url_query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Self {
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

    /// The URL query alone (GET-only endpoints).
    pub(crate) fn from_url(url_query: Option<&str>) -> Self {
        Self::parse(url_query, &HeaderMap::new(), &[])
    }

    /// The first value of `key` (Go's `r.FormValue`), empty included.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or `""` when absent (what Go's `r.FormValue` returns).
    pub(crate) fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default()
    }

    /// The first value of `key` unless absent or empty: both APIs treat `key=` as not given.
    pub(crate) fn given(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of `key`, in order (repeated keys such as `match[]`).
    pub(crate) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// `key` parsed by `parse` when given; a failure is `invalid parameter "<key>": <reason>`.
    fn parsed<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<Option<T>> {
        self.given(key)
            .map(|v| parse(v).map_err(|reason| invalid(key, reason)))
            .transpose()
    }

    // ------------------------------------------------------------ Prometheus

    /// A time Prometheus's handlers require (`query_range`'s `start`/`end`): absent is empty,
    /// which does not parse.
    pub(crate) fn prom_time(&self, key: &str) -> Result<TimestampMs> {
        prometheus_time(self.text(key)).map_err(|reason| invalid(key, reason))
    }

    /// Prometheus's `parseTimeParam`: an optional time, whose errors say which one it was.
    pub(crate) fn prom_time_or(&self, key: &str, default: TimestampMs) -> Result<TimestampMs> {
        let parsed = self.parsed(key, |v| {
            prometheus_time(v).map_err(|e| format!("Invalid time value for '{key}': {e}"))
        })?;
        Ok(parsed.unwrap_or(default))
    }

    /// `start`/`end` of the listing endpoints, unbounded when absent.
    pub(crate) fn prom_time_range(&self) -> Result<TimeRange> {
        Ok(TimeRange::new(
            self.prom_time_or("start", MIN_TIME_MS)?,
            self.prom_time_or("end", MAX_TIME_MS)?,
        ))
    }

    /// A duration Prometheus requires (`query_range`'s `step`), in milliseconds.
    pub(crate) fn prom_duration(&self, key: &str) -> Result<i64> {
        prometheus_duration(self.text(key)).map_err(|reason| invalid(key, reason))
    }

    /// `timeout`, when given (a negative one is zero).
    pub(crate) fn prom_timeout(&self) -> Result<Option<Duration>> {
        let ms = self.parsed("timeout", prometheus_duration)?;
        Ok(ms.map(|ms| Duration::from_millis(ms.max(0) as u64)))
    }

    /// Prometheus's `limit`: a non-negative integer, 0 (or absent) for no limit.
    pub(crate) fn prom_limit(&self) -> Result<usize> {
        let limit = self.parsed("limit", |v| match v.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(_) => Err("limit must be non-negative".into()),
            Err(_) => Err(format!("strconv.Atoi: parsing {v:?}: invalid syntax")),
        })?;
        Ok(limit.unwrap_or(0))
    }

    /// An integer the metadata endpoint reads with Go's `strconv.Atoi`, `-1` when absent; its
    /// error is a bare `bad_data` message, as Prometheus words it.
    pub(crate) fn prom_signed(&self, key: &str) -> Result<i64> {
        match self.given(key) {
            None => Ok(-1),
            Some(v) => v.parse().map_err(|_| Error::BadData(format!("{key} must be a number"))),
        }
    }

    /// Every `match[]` selector, each expanded into its `or` alternatives. A bad selector is a
    /// `bad_data` error with the parser's message (the series endpoint adds the parameter's name).
    pub(crate) fn prom_matchers(&self) -> Result<Vec<Vec<Matcher>>> {
        let mut sets = Vec::new();
        for text in self.all("match[]") {
            sets.extend(parse_series_selector(text).map_err(|e| Error::BadData(e.to_string()))?);
        }
        Ok(sets)
    }

    // ------------------------------------------------------------ Tempo and Jaeger

    /// A time in whole units of `unit_ns` (Tempo: seconds; Jaeger: microseconds) as nanoseconds,
    /// when given.
    pub(crate) fn trace_time(&self, key: &str, unit_ns: i64) -> Result<Option<i64>> {
        self.parsed(key, |v| {
            v.parse::<i64>()
                .map(|n| n.saturating_mul(unit_ns))
                .map_err(|_| format!("{v:?} is not an integer"))
        })
    }

    /// `start`/`end` in units of `unit_ns`: `end` defaults to now, `start` to `end - default_ns`;
    /// an `end` before `start` is refused. Returns the half-open `[start, end + 1 unit)`.
    pub(crate) fn trace_range(&self, unit_ns: i64, default_ns: i64) -> Result<(i64, i64)> {
        let end = self.trace_time("end", unit_ns)?.unwrap_or_else(now_ns);
        let start = self
            .trace_time("start", unit_ns)?
            .unwrap_or(end.saturating_sub(default_ns));
        if end < start {
            return Err(Error::BadData("end must not be before start".into()));
        }
        Ok((start, end.saturating_add(unit_ns)))
    }

    /// A Go-style duration (`minDuration=100ms`), in nanoseconds, when given.
    pub(crate) fn trace_duration(&self, key: &str) -> Result<Option<i64>> {
        self.parsed(key, |v| {
            crate::traces::traceql::duration_ns(v).ok_or_else(|| format!("{v:?} is not a duration like 100ms or 1s"))
        })
    }

    /// A positive integer limit, `default` when absent or 0.
    pub(crate) fn trace_limit(&self, default: usize) -> Result<usize> {
        let limit = self.parsed("limit", |v| {
            v.parse::<usize>().map_err(|_| format!("{v:?} is not a count"))
        })?;
        Ok(limit.filter(|&n| n > 0).unwrap_or(default))
    }

    // ------------------------------------------------------------ Loki

    /// A Loki time, `default` when absent or empty.
    pub(crate) fn loki_time_or(&self, key: &str, default: impl FnOnce() -> i64) -> Result<i64> {
        Ok(self.parsed(key, loki_time)?.unwrap_or_else(default))
    }

    /// A Loki duration (`step`, `since`) in nanoseconds, when given.
    pub(crate) fn loki_duration(&self, key: &str) -> Result<Option<i64>> {
        self.parsed(key, loki_duration)
    }

    /// `start`/`end`/`since` as Loki reads them: `end` defaults to now, `start` to `end - since`
    /// (`since` defaults to an hour); an `end` before `start` is refused.
    pub(crate) fn loki_range(&self) -> Result<(i64, i64)> {
        let end = self.loki_time_or("end", now_ns)?;
        let since = self.loki_duration("since")?.unwrap_or(LOKI_DEFAULT_SINCE_NS);
        let start = self.loki_time_or("start", || end.saturating_sub(since))?;
        if end < start {
            return Err(Error::BadData(
                "end timestamp must not be before or equal to start time".into(),
            ));
        }
        Ok((start, end))
    }

    /// Loki's `limit`: a positive integer, 100 when absent.
    pub(crate) fn loki_limit(&self) -> Result<usize> {
        let limit = self.parsed("limit", |v| {
            v.parse::<i64>()
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| "limit must be a positive value".to_string())
        })?;
        Ok(limit.unwrap_or(LOKI_DEFAULT_LIMIT))
    }

    /// Loki's `direction`, case-insensitive, `backward` when absent.
    pub(crate) fn loki_direction(&self) -> Result<Direction> {
        match self.given("direction").map(str::to_ascii_lowercase).as_deref() {
            None | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(other) => Err(invalid("direction", format!("invalid direction {other:?}"))),
        }
    }

    /// A Loki range query's `step` (ns) over `[start, end]`: given, or a 250th of the range
    /// (whole seconds, at least one); positive, and at most 11,000 steps (Loki's `step` and its
    /// checks in `ParseRangeQuery`, `ParsePatternsQuery`, `ParseDetectedFieldsQuery`).
    pub(crate) fn loki_step(&self, start: i64, end: i64) -> Result<i64> {
        let step = self.loki_duration("step")?.unwrap_or_else(|| {
            let secs = ((end - start) as f64 / 1e9 / 250.0).floor().max(1.0);
            secs as i64 * 1_000_000_000
        });
        if step <= 0 {
            return Err(Error::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if (i128::from(end) - i128::from(start)) / i128::from(step) > 11_000 {
            return Err(Error::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        Ok(step)
    }

    /// The volume endpoints' `limit` (Loki's `volumeLimit`): 100 when absent or 0, else positive.
    pub(crate) fn loki_volume_limit(&self) -> Result<usize> {
        let limit = self.parsed("limit", |v| {
            v.parse::<i64>()
                .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
                .and_then(|n| match n {
                    0 => Ok(LOKI_DEFAULT_LIMIT),
                    n if n > 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                    _ => Err("limit must be a positive value".into()),
                })
        })?;
        Ok(limit.unwrap_or(LOKI_DEFAULT_LIMIT))
    }

    /// The volume endpoints' `targetLabels`: comma-separated label names, none when absent.
    pub(crate) fn loki_target_labels(&self) -> Vec<String> {
        self.given("targetLabels")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The volume endpoints' `aggregateBy`: `series` (the default) or `labels`.
    pub(crate) fn loki_aggregate_by(&self) -> Result<VolumeBy> {
        match self.given("aggregateBy") {
            None | Some("series") => Ok(VolumeBy::Series),
            Some("labels") => Ok(VolumeBy::Labels),
            Some(_) => Err(invalid("aggregateBy", "invalid aggregation option".into())),
        }
    }

    /// `detected_fields`' `line_limit`: the lines looked at, positive, 100 when absent.
    pub(crate) fn loki_line_limit(&self) -> Result<usize> {
        self.positive("line_limit", LOKI_DEFAULT_LIMIT)
    }

    /// `detected_fields`' `limit` (or its older name `field_limit`): fields or values answered,
    /// positive, 1000 when absent (Loki's `detectedFieldsLimit`).
    pub(crate) fn loki_fields_limit(&self) -> Result<usize> {
        let key = if self.given("limit").is_some() {
            "limit"
        } else {
            "field_limit"
        };
        self.positive(key, LOKI_DEFAULT_FIELDS_LIMIT)
    }

    fn positive(&self, key: &str, default: usize) -> Result<usize> {
        let n = self.parsed(key, |v| {
            v.parse::<i64>()
                .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
                .and_then(|n| {
                    usize::try_from(n)
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| "limit must be a positive value".to_string())
                })
        })?;
        Ok(n.unwrap_or(default))
    }

    /// The tail's `delay_for`: whole seconds from 0 to `max`, 0 when absent; in nanoseconds.
    pub(crate) fn loki_delay_for(&self, max: i64) -> Result<i64> {
        let secs = self.parsed("delay_for", |v| {
            v.parse::<i64>()
                .ok()
                .filter(|d| (0..=max).contains(d))
                .ok_or_else(|| format!("delay_for must be an integer from 0 to {max}"))
        })?;
        Ok(secs.unwrap_or(0) * 1_000_000_000)
    }
}

fn invalid(param: &str, reason: String) -> Error {
    Error::InvalidParameter {
        param: param.into(),
        reason,
    }
}

/// Now in milliseconds, Prometheus's default evaluation time.
pub(crate) fn now_ms() -> TimestampMs {
    now_ns().div_euclid(1_000_000)
}

/// Now in nanoseconds, Loki's default `end`.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Prometheus's `parseTime`: unix seconds (fractions rounded to milliseconds) or RFC 3339,
/// within `MinTime..=MaxTime` (beyond them Prometheus's own millisecond conversion wraps, and
/// ours would overflow adding a lookback or an offset).
fn prometheus_time(text: &str) -> Result<TimestampMs, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
        && seconds.abs() <= MAX_TIME_MS as f64 / 1000.0
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
fn prometheus_duration(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        if !nanos.is_finite() || nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return Err(format!("cannot parse {text:?} to a valid duration. It overflows int64"));
        }
        return Ok(nanos as i64 / 1_000_000);
    }
    model_duration_ms(text).ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// Prometheus's `model.ParseDuration`: `[0-9]+` followed by a unit, units in decreasing order,
/// each at most once (`1h30m`, `90s`, `1y2w`), at most ~292 years. Zero is allowed.
pub(crate) fn model_duration_ms(text: &str) -> Option<i64> {
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
    // Go's `time.Duration` is nanoseconds in an int64: Prometheus refuses anything longer.
    (!text.is_empty() && total.checked_mul(1_000_000).is_some()).then_some(total)
}

/// Loki's timestamp rules: a number with a fraction is seconds; an integer of at most ten digits
/// is seconds, a longer one nanoseconds; anything else RFC 3339.
fn loki_time(text: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {text:?} to a valid timestamp");
    if text.contains('.') && !text.contains(['T', 't', '-', ':']) {
        let (whole, frac) = text.split_once('.').ok_or_else(bad)?;
        let secs: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        // A decimal number (Loki's `strconv.ParseFloat`): a digit on one side of the point at
        // least, and only digits after it, also past the nanoseconds kept.
        if (whole.is_empty() && frac.is_empty()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let digits: String = frac.chars().take(9).collect();
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

/// A Loki step or `since`: float seconds, or a duration (`5m`, `1h30m`, `250ms`), in nanoseconds.
fn loki_duration(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9e9 {
            return Err(format!("cannot parse {text:?} to a valid duration"));
        }
        return Ok((secs * 1e9).round() as i64);
    }
    parse_go_duration(text).ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

#[cfg(test)]
mod tests;
