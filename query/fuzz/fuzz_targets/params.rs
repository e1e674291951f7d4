//! The HTTP APIs' one parameter parser, `http::params` (`test_util::read_params`): every time,
//! duration, `limit`, `direction` and `delay_for` accessor of both APIs.
//!
//! The first byte picks how the rest is used: as a whole URL query (percent-decoding, repeated
//! and missing keys), or as one value given to every parameter, which the round trips need.
//!
//! Beyond "never panics":
//! - accepted values are in range: Prometheus times within its `MinTime..=MaxTime`, durations
//!   that fit Go's `time.Duration` (nanoseconds in an `i64`, as `step`/`timeout` are in Prometheus),
//!   `timeout` the step's value floored at 0, `limit` the value itself (Prometheus: ≥ 0; Loki: > 0,
//!   100 when absent), a Loki range with start ≤ end, `delay_for` whole seconds within 0..=5;
//! - a Loki time is only accepted from an integer, a decimal number or RFC 3339 text;
//! - round trips: a Prometheus time printed as seconds with milliseconds (and as RFC 3339) reads
//!   back to the same millisecond; a duration printed as `<n>ms` (Prometheus) or `<n>ns` (Loki)
//!   reads back the same; a Loki time printed as `<s>.<9 digits>` reads back the same nanosecond;
//! - Prometheus's `model.ParseDuration` text (`1h30m`) means the same to Loki's duration parser.
#![no_main]

use chrono::{DateTime, SecondsFormat};
use libfuzzer_sys::fuzz_target;
use tributary_query::test_util::{ParamReadings, read_params};

/// Prometheus's `MinTime`/`MaxTime` in milliseconds.
const MIN_TIME_MS: i64 = -9_223_309_901_257_974;
const MAX_TIME_MS: i64 = 9_223_309_901_257_974;
/// Every key `read_params` reads.
const KEYS: [&str; 10] = [
    "time",
    "start",
    "end",
    "step",
    "timeout",
    "limit",
    "limit_per_metric",
    "since",
    "direction",
    "delay_for",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if mode & 1 == 0 {
        check_ranges(&read_params(&text), None);
    } else {
        let r = read_params(&query_with(&text));
        check_ranges(&r, Some(&text));
        check_round_trips(&r, &text);
    }
});

/// A URL query giving `value` to every key.
fn query_with(value: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for key in KEYS {
        q.append_pair(key, value);
    }
    q.finish()
}

fn one(key: &str, value: &str) -> ParamReadings {
    read_params(
        &form_urlencoded::Serializer::new(String::new())
            .append_pair(key, value)
            .finish(),
    )
}

/// What must hold of any reading; `value` is what every key was given, when it was.
fn check_ranges(r: &ParamReadings, value: Option<&str>) {
    if let Ok(t) = r.prom_time {
        assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&t), "time {t}");
    }
    if let Ok(range) = &r.prom_range {
        for t in [range.start, range.end] {
            assert!((MIN_TIME_MS..=MAX_TIME_MS).contains(&t), "range {range:?}");
        }
    }
    if let Ok(ms) = r.prom_step {
        assert!(
            ms.checked_mul(1_000_000).is_some(),
            "step of {ms} ms overflows a Go time.Duration"
        );
    }
    if let Ok(Some(t)) = r.prom_timeout {
        assert!(
            t.as_nanos() <= i64::MAX as u128,
            "timeout {t:?} overflows a Go time.Duration"
        );
    }
    if let Ok((start, end)) = r.loki_range {
        assert!(start <= end, "loki range {start}..{end}");
    }
    if let Ok(n) = r.loki_limit {
        assert!(n > 0, "loki limit 0");
    }
    if let Ok(d) = r.loki_delay_for {
        assert!(
            (0..=5_000_000_000).contains(&d) && d % 1_000_000_000 == 0,
            "delay_for {d}"
        );
    }
    let Some(v) = value else { return };
    // Every key had the same value: the readings must agree with each other and with it.
    if v.is_empty() {
        assert_eq!(r.prom_limit.as_ref().ok(), Some(&0), "empty limit is none");
        assert_eq!(r.loki_limit.as_ref().ok(), Some(&100), "empty limit is Loki's default");
        return;
    }
    if let Ok(n) = r.prom_limit {
        let given: i64 = v.parse().expect("prometheus limit accepted from a non-integer");
        assert!(
            given >= 0 && n == usize::try_from(given).unwrap_or(usize::MAX),
            "limit {v:?} read as {n}"
        );
    }
    if let Ok(n) = r.loki_limit {
        assert_eq!(
            v.parse::<i64>().ok(),
            i64::try_from(n).ok(),
            "loki limit {v:?} read as {n}"
        );
    }
    match (&r.prom_step, &r.prom_timeout) {
        (Ok(ms), Ok(Some(t))) => assert_eq!(t.as_millis(), ms.max(&0).unsigned_abs() as u128, "timeout vs step"),
        (Ok(ms), other) => panic!("step read {ms} but timeout {other:?}"),
        (Err(_), Ok(t)) => panic!("timeout read {t:?} but step refused"),
        (Err(_), Err(_)) => {}
    }
    if r.loki_time.is_ok() {
        let numeric = v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok();
        assert!(
            numeric || DateTime::parse_from_rfc3339(v).is_ok(),
            "loki time accepted from {v:?}: {:?}",
            r.loki_time
        );
    }
}

fn check_round_trips(r: &ParamReadings, v: &str) {
    if let Ok(t) = r.prom_time {
        if t.unsigned_abs() < (1 << 40) * 1000 {
            let sign = if t < 0 { "-" } else { "" };
            let text = format!("{sign}{}.{:03}", t.unsigned_abs() / 1000, t.unsigned_abs() % 1000);
            assert_eq!(one("time", &text).prom_time.ok(), Some(t), "{v:?} -> {t} -> {text:?}");
        }
        if let Some(dt) = DateTime::from_timestamp_millis(t).filter(|d| (0..=9999).contains(&chrono::Datelike::year(d)))
        {
            let text = dt.to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(one("time", &text).prom_time.ok(), Some(t), "{v:?} -> {t} -> {text:?}");
        }
    }
    if let Ok(ms) = r.prom_step {
        if ms >= 0 {
            let text = format!("{ms}ms");
            assert_eq!(one("step", &text).prom_step.ok(), Some(ms), "{v:?} -> {ms} -> {text:?}");
        }
        // `model.ParseDuration` text (not a number of seconds) means the same to Loki.
        if v.parse::<f64>().is_err() && ms.unsigned_abs() < (1 << 53) / 1_000_000 {
            assert_eq!(
                r.loki_step.as_ref().ok(),
                Some(&Some(ms * 1_000_000)),
                "{v:?}: Prometheus reads {ms} ms"
            );
        }
    }
    if let Ok(Some(ns)) = r.loki_step {
        if (0..1 << 53).contains(&ns) {
            let text = format!("{ns}ns");
            assert_eq!(
                one("step", &text).loki_step.ok(),
                Some(Some(ns)),
                "{v:?} -> {ns} -> {text:?}"
            );
        }
    }
    if let Ok(ns) = r.loki_time {
        if ns >= 0 {
            let text = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
            assert_eq!(one("time", &text).loki_time.ok(), Some(ns), "{v:?} -> {ns} -> {text:?}");
        }
    }
}
