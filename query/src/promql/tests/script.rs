//! A runner for Prometheus's PromQL test-script format (`promql/promqltest/testdata/*.test`), so
//! upstream cases can be ported as they are written: `load <interval>` blocks of series (float
//! and `{{schema:… sum:… count:… buckets:[…]}}` native-histogram notation, with `a+bxN`,
//! `axN`, `_` and `stale` expansions), `eval instant at <t> <expr>` and
//! `eval range from <t> to <t> step <d> <expr>` with expected series, the `expect fail`,
//! `expect warn`, `expect info`, `expect no_warn`, `expect no_info` and `expect ordered` lines,
//! and `clear`. Floats compare within Prometheus's relative epsilon (1e-6); histograms compare
//! field by field with empty buckets ignored.

use std::sync::Arc;

use tributary_storage::signals::{BucketSpan, HistogramSample, HistogramSeries as StoredHistograms, ResetHint};
use tributary_storage::test_util::MemSource;
use tributary_storage::types::{STALE_NAN_BITS, Sample, Series};

use crate::config::QueryConfig;
use crate::promql::native_histogram::NativeHistogram;
use crate::promql::{Engine, Value};
use crate::test_source::parse_labels;

const EPSILON: f64 = 1e-6;

/// A value of a series or of a result at one time.
#[derive(Clone, Debug)]
enum Val {
    Float(f64),
    Histogram(HistogramSample),
}

/// Runs every command of `script`; returns one line per failed expectation (`line N: ...`).
pub(super) async fn run(script: &str) -> Vec<String> {
    let lines: Vec<&str> = script.lines().collect();
    let mut failures = Vec::new();
    let mut floats: Vec<Series> = Vec::new();
    let mut hists: Vec<StoredHistograms> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "clear" {
            floats.clear();
            hists.clear();
            continue;
        }
        if let Some(interval) = line.strip_prefix("load ") {
            let interval = duration_ms(interval.trim()).expect("load interval");
            while i < lines.len() && is_body(lines[i]) {
                load_series(lines[i].trim(), interval, &mut floats, &mut hists);
                i += 1;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("eval ") {
            let start = i;
            let mut body = Vec::new();
            while i < lines.len() && is_body(lines[i]) {
                body.push(lines[i].trim());
                i += 1;
            }
            let source = MemSource::new(floats.clone()).with_histograms(hists.clone());
            let engine = Engine::new(Arc::new(source), QueryConfig::default());
            if let Err(e) = eval(&engine, rest, &body).await {
                failures.push(format!("line {start}: {line}: {e}"));
            }
            continue;
        }
        panic!("line {i}: unknown command {line:?}");
    }
    failures
}

fn is_body(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && (line.starts_with(' ') || line.starts_with('\t')) && !t.starts_with('#')
}

fn duration_ms(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let mut total = 0i64;
    let mut num = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            'y' => 365 * 86_400_000,
            _ => return None,
        };
        total += n * unit;
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// Splits on whitespace outside `{…}` and `[…]`.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' if !quoted => depth += 1,
            '}' | ']' if !quoted => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth == 0 && !quoted {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `name{labels}` and the rest of the line.
fn split_series(line: &str) -> (&str, &str) {
    let end = match line.find('}') {
        Some(close)
            if line
                .find('{')
                .is_some_and(|open| open < close && !line[..open].contains(char::is_whitespace)) =>
        {
            close + 1
        }
        _ => line.find(char::is_whitespace).unwrap_or(line.len()),
    };
    (&line[..end], line[end..].trim())
}

fn load_series(line: &str, interval: i64, floats: &mut Vec<Series>, hists: &mut Vec<StoredHistograms>) {
    let (name, rest) = split_series(line);
    let labels = parse_labels(name);
    let mut float_samples = Vec::new();
    let mut hist_samples = Vec::new();
    for (n, v) in expand(rest).into_iter().enumerate() {
        let t = n as i64 * interval;
        match v {
            Some(Val::Float(f)) => float_samples.push(Sample::new(t, f)),
            Some(Val::Histogram(mut h)) => {
                h.timestamp = t;
                hist_samples.push(h);
            }
            None => {}
        }
    }
    if !float_samples.is_empty() {
        floats.push(Series::new(labels.clone(), float_samples));
    }
    if !hist_samples.is_empty() {
        hists.push(StoredHistograms {
            labels,
            samples: hist_samples,
        });
    }
}

/// The values a series notation stands for, one per interval (`None`: no sample).
fn expand(text: &str) -> Vec<Option<Val>> {
    let mut out = Vec::new();
    for tok in tokens(text) {
        if tok == "_" {
            out.push(None);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            out.extend((0..n.parse::<usize>().expect("_xN")).map(|_| None));
            continue;
        }
        if tok == "stale" {
            out.push(Some(Val::Float(f64::from_bits(STALE_NAN_BITS))));
            continue;
        }
        if tok.starts_with("{{") {
            let close = tok.find("}}").expect("histogram end") + 2;
            let base = parse_histogram(&tok[2..close - 2]);
            let rest = &tok[close..];
            if rest.is_empty() {
                out.push(Some(Val::Histogram(base)));
                continue;
            }
            let (inc, times, sign) = if let Some(r) = rest.strip_prefix('x') {
                (None, r, 1.0)
            } else {
                let sign = if rest.starts_with('-') { -1.0 } else { 1.0 };
                let r = &rest[1..];
                let close = r.find("}}").expect("increment end") + 2;
                (Some(parse_histogram(&r[2..close - 2])), &r[close + 1..], sign)
            };
            let times: usize = times.parse().expect("times");
            let mut cur = NativeHistogram::from_sample(&base);
            out.push(Some(Val::Histogram(base.clone())));
            for _ in 0..times {
                if let Some(inc) = &inc {
                    let _ = cur.add(&NativeHistogram::from_sample(inc), sign < 0.0);
                    cur.reset_hint = base.reset_hint;
                }
                out.push(Some(Val::Histogram(cur.to_sample(0))));
            }
            continue;
        }
        // Floats: a, a+bxN, a-bxN, axN.
        let (head, times) = match tok.rfind('x') {
            Some(p) if tok[p + 1..].chars().all(|c| c.is_ascii_digit()) && p + 1 < tok.len() => {
                (&tok[..p], Some(tok[p + 1..].parse::<usize>().expect("times")))
            }
            _ => (tok.as_str(), None),
        };
        let split = head
            .char_indices()
            .skip(1)
            .find(|&(i, c)| (c == '+' || c == '-') && !head[..i].ends_with(['e', 'E']))
            .map(|(i, _)| i);
        let (a, b) = match split {
            Some(i) => (float(&head[..i]), float(&head[i..])),
            None => (float(head), 0.0),
        };
        out.push(Some(Val::Float(a)));
        for k in 1..=times.unwrap_or(0) {
            out.push(Some(Val::Float(a + b * k as f64)));
        }
    }
    out
}

fn float(text: &str) -> f64 {
    match text {
        "Inf" | "+Inf" | "inf" | "+inf" => f64::INFINITY,
        "-Inf" | "-inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        t => t.parse().unwrap_or_else(|_| panic!("not a number: {t:?}")),
    }
}

fn list(text: &str) -> Vec<f64> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split_whitespace()
        .map(float)
        .collect()
}

fn parse_histogram(text: &str) -> HistogramSample {
    let mut h = HistogramSample::default();
    let (mut offset, mut n_offset) = (0, 0);
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    for tok in tokens(text) {
        let (key, value) = tok.split_once(':').expect("key:value");
        match key {
            "schema" => h.schema = value.parse().expect("schema"),
            "sum" => h.sum = float(value),
            "count" => h.count = float(value),
            "z_bucket" => h.zero_count = float(value),
            "z_bucket_w" => h.zero_threshold = float(value),
            "offset" => offset = value.parse().expect("offset"),
            "n_offset" => n_offset = value.parse().expect("n_offset"),
            "buckets" => buckets = list(value),
            "n_buckets" => n_buckets = list(value),
            "custom_values" => h.custom_values = list(value),
            "counter_reset_hint" => {
                h.reset_hint = match value {
                    "gauge" => ResetHint::Gauge,
                    "reset" => ResetHint::Yes,
                    "not_reset" => ResetHint::No,
                    _ => ResetHint::Unknown,
                }
            }
            other => panic!("unknown histogram field {other}"),
        }
    }
    let span = |offset: i32, n: usize| {
        if n == 0 {
            Vec::new()
        } else {
            vec![BucketSpan {
                offset,
                length: n as u32,
            }]
        }
    };
    h.positive_spans = span(offset, buckets.len());
    h.positive_buckets = buckets;
    h.negative_spans = span(n_offset, n_buckets.len());
    h.negative_buckets = n_buckets;
    h
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let norm = a.abs().min(b.abs());
    if a == 0.0 || b == 0.0 || norm < f64::MIN_POSITIVE {
        return diff < EPSILON * f64::MIN_POSITIVE;
    }
    diff / norm.min(f64::MAX) < EPSILON
}

fn same_histogram(want: &HistogramSample, got: &NativeHistogram) -> bool {
    let mut want = NativeHistogram::from_sample(want);
    let mut got = got.clone();
    want.compact();
    got.compact();
    let buckets_close = |a: &[(i32, f64)], b: &[(i32, f64)]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
    };
    want.schema == got.schema
        && close(want.count, got.count)
        && close(want.sum, got.sum)
        && close(want.zero_count, got.zero_count)
        && close(want.zero_threshold, got.zero_threshold)
        && buckets_close(&want.positive, &got.positive)
        && buckets_close(&want.negative, &got.negative)
        && (!want.uses_custom_buckets() || want.custom_values == got.custom_values)
}

fn same(want: &Val, got: &Val) -> bool {
    match (want, got) {
        (Val::Float(a), Val::Float(b)) => close(*a, *b),
        (Val::Histogram(a), Val::Histogram(b)) => same_histogram(a, &NativeHistogram::from_sample(b)),
        _ => false,
    }
}

/// One `eval` command with its body; `Err` describes the first mismatch.
async fn eval(engine: &Engine, command: &str, body: &[&str]) -> Result<(), String> {
    let mut expect_fail = false;
    let mut ordered = false;
    let mut annotations: Vec<(&str, bool)> = Vec::new();
    let mut expected: Vec<&str> = Vec::new();
    for line in body {
        match line.strip_prefix("expect ") {
            Some(e) => {
                let kind = e.split_whitespace().next().unwrap_or("");
                match kind {
                    "fail" => expect_fail = true,
                    "ordered" => ordered = true,
                    "warn" | "info" => annotations.push((if kind == "warn" { "warn" } else { "info" }, true)),
                    "no_warn" => annotations.push(("warn", false)),
                    "no_info" => annotations.push(("info", false)),
                    other => return Err(format!("unsupported expectation {other}")),
                }
            }
            None => expected.push(line),
        }
    }
    let (result, range) = if let Some(rest) = command.strip_prefix("instant at ") {
        let (t, query) = rest.split_once(' ').ok_or("eval needs a query")?;
        let t = duration_ms(t).ok_or("bad time")?;
        (engine.instant_query(query, t, None).await, None)
    } else if let Some(rest) = command.strip_prefix("range from ") {
        let parts: Vec<&str> = rest.splitn(6, ' ').collect();
        let [start, "to", end, "step", step, query] = parts[..] else {
            return Err("bad range eval".into());
        };
        let (start, end, step) = (
            duration_ms(start).ok_or("bad start")?,
            duration_ms(end).ok_or("bad end")?,
            duration_ms(step).ok_or("bad step")?,
        );
        (
            engine.range_query(query, start, end, step, None).await,
            Some((start, step)),
        )
    } else {
        return Err(format!("unsupported eval {command}"));
    };
    let result = match (result, expect_fail) {
        (Err(_), true) => return Ok(()),
        (Ok(_), true) => return Err("expected a failure".into()),
        (Err(e), false) => return Err(format!("error: {e}")),
        (Ok(r), false) => r,
    };
    for (kind, present) in annotations {
        let have = if kind == "warn" {
            !result.annotations.warnings.is_empty()
        } else {
            !result.annotations.infos.is_empty()
        };
        if have != present {
            return Err(format!(
                "expected {}{kind} annotations, got {:?}",
                if present { "" } else { "no " },
                result.annotations
            ));
        }
    }
    let mut got: Vec<(String, Vec<(i64, Val)>)> = match result.value {
        Value::Scalar { timestamp, value } => vec![(String::new(), vec![(timestamp, Val::Float(value))])],
        Value::String { .. } => return Err("string results are not compared".into()),
        Value::Vector(v) => v
            .into_iter()
            .map(|s| {
                let val = match s.histogram {
                    Some(h) => Val::Histogram(h.to_sample(0)),
                    None => Val::Float(s.value),
                };
                (s.labels.to_string(), vec![(s.timestamp, val)])
            })
            .collect(),
        Value::Matrix(m) => m
            .into_iter()
            .map(|s| {
                let points = s.samples.iter().map(|x| (x.timestamp, Val::Float(x.value))).collect();
                (s.labels.to_string(), points)
            })
            .collect(),
        Value::HistogramMatrix(m) => m
            .into_iter()
            .map(|s| {
                let mut points: Vec<(i64, Val)> = s.floats.iter().map(|x| (x.timestamp, Val::Float(x.value))).collect();
                points.extend(s.histograms.iter().map(|(t, h)| (*t, Val::Histogram(h.to_sample(0)))));
                points.sort_by_key(|p| p.0);
                (s.labels.to_string(), points)
            })
            .collect(),
    };
    let mut want: Vec<(String, Vec<(i64, Val)>)> = Vec::new();
    for line in &expected {
        // A scalar result is a bare value.
        let (name, rest) = if line.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == 'N') {
            ("", *line)
        } else {
            split_series(line)
        };
        let labels = if name.is_empty() {
            String::new()
        } else {
            parse_labels(name).to_string()
        };
        let values = expand(rest);
        let points = match range {
            None => values.into_iter().flatten().map(|v| (0, v)).take(1).collect(),
            Some((start, step)) => values
                .into_iter()
                .enumerate()
                .filter_map(|(n, v)| Some((start + n as i64 * step, v?)))
                .collect(),
        };
        want.push((labels, points));
    }
    if !ordered {
        got.sort_by(|a, b| a.0.cmp(&b.0));
        want.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let describe = |v: &[(String, Vec<(i64, Val)>)]| format!("{v:?}");
    if got.len() != want.len() {
        return Err(format!("want {}, got {}", describe(&want), describe(&got)));
    }
    for (g, w) in got.iter().zip(&want) {
        // An instant result's time is the evaluation time; expectations do not state it.
        let times_match = range.is_none() || g.1.iter().map(|p| p.0).eq(w.1.iter().map(|p| p.0));
        if g.0 != w.0 || g.1.len() != w.1.len() || !times_match || !g.1.iter().zip(&w.1).all(|(a, b)| same(&b.1, &a.1))
        {
            return Err(format!("want {}, got {}", describe(&want), describe(&got)));
        }
    }
    Ok(())
}
