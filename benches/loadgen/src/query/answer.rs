//! What a receiver answered, reduced to a canonical form that can be compared across
//! receivers: series sorted by labels, label values and label sets sorted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::suite::Request;

/// A series' labels, `__name__` included when the receiver returned it.
pub(crate) type Labels = BTreeMap<String, String>;

/// One series of a vector or matrix result. Values stay the strings the receiver sent, so
/// `NaN` and `±Inf` survive a JSON round trip of the result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SeriesPoints {
    pub labels: Labels,
    /// (timestamp in ms, value as sent).
    pub points: Vec<(i64, String)>,
}

/// A canonical answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Answer {
    /// `vector` or `matrix` results, sorted by labels.
    Series { series: Vec<SeriesPoints> },
    /// `/api/v1/label/<name>/values`, sorted.
    Values { values: Vec<String> },
    /// `/api/v1/series`, sorted.
    LabelSets { sets: Vec<Labels> },
}

impl Answer {
    /// Series, values or label sets in the answer.
    pub(crate) fn len(&self) -> usize {
        match self {
            Answer::Series { series } => series.len(),
            Answer::Values { values } => values.len(),
            Answer::LabelSets { sets } => sets.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Points over all series (0 for non-series answers).
    pub(crate) fn points(&self) -> usize {
        match self {
            Answer::Series { series } => series.iter().map(|s| s.points.len()).sum(),
            _ => 0,
        }
    }
}

/// Parses a Prometheus HTTP API response to `request`. Anything but `status: success` with
/// the expected, non-empty `data` is an error naming what was wrong.
pub(crate) fn parse(request: &Request, body: &[u8]) -> Result<Answer, String> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| format!("response is not JSON ({e}): {}", excerpt(body)))?;
    match doc.get("status").and_then(Value::as_str) {
        Some("success") => {}
        _ => return Err(format!("status is not success: {}", excerpt(body))),
    }
    let data = doc.get("data").ok_or("no `data` in the response")?;
    let answer = match request {
        Request::Range { .. } | Request::Instant { .. } => {
            let kind = data.get("resultType").and_then(Value::as_str).unwrap_or_default();
            let wanted = if matches!(request, Request::Range { .. }) {
                "matrix"
            } else {
                "vector"
            };
            if kind != wanted {
                return Err(format!("resultType {kind:?}, expected {wanted:?}"));
            }
            let result = data
                .get("result")
                .and_then(Value::as_array)
                .ok_or("no `data.result` array")?;
            let mut series = result
                .iter()
                .map(|item| series_points(item, wanted == "matrix"))
                .collect::<Result<Vec<_>, _>>()?;
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            if let Some(w) = series.windows(2).find(|w| w[0].labels == w[1].labels) {
                return Err(format!("series {} returned twice", render_labels(&w[0].labels)));
            }
            Answer::Series { series }
        }
        Request::LabelValues { .. } => {
            let mut values = data
                .as_array()
                .ok_or("`data` is not an array")?
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or("a label value is not a string"))
                .collect::<Result<Vec<_>, _>>()?;
            values.sort();
            Answer::Values { values }
        }
        Request::Series { .. } => {
            let mut sets = data
                .as_array()
                .ok_or("`data` is not an array")?
                .iter()
                .map(labels)
                .collect::<Result<Vec<_>, _>>()?;
            sets.sort();
            Answer::LabelSets { sets }
        }
    };
    if answer.is_empty() {
        return Err("empty result".into());
    }
    Ok(answer)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

fn labels(v: &Value) -> Result<Labels, String> {
    v.as_object()
        .ok_or("a label set is not an object")?
        .iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_owned()))
                .ok_or_else(|| format!("label {k} is not a string"))
        })
        .collect()
}

fn series_points(item: &Value, matrix: bool) -> Result<SeriesPoints, String> {
    let labels = labels(item.get("metric").ok_or("a result has no `metric`")?)?;
    let points = if matrix {
        item.get("values")
            .and_then(Value::as_array)
            .ok_or("a matrix series has no `values`")?
            .iter()
            .map(point)
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![point(item.get("value").ok_or("a vector sample has no `value`")?)?]
    };
    Ok(SeriesPoints { labels, points })
}

/// `[1700000000.123, "1.5"]` → (1700000000123, "1.5").
fn point(v: &Value) -> Result<(i64, String), String> {
    let pair = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or("a point is not [time, value]")?;
    let t = pair[0].as_f64().ok_or("a point's time is not a number")?;
    let value = pair[1].as_str().ok_or("a point's value is not a string")?;
    parse_value(value).ok_or_else(|| format!("value {value:?} is not a float"))?;
    Ok(((t * 1000.0).round() as i64, value.to_owned()))
}

/// Prometheus' float text: Go's `strconv.FormatFloat(v, 'f', -1, 64)`, `NaN`, `+Inf`, `-Inf`.
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

/// `{a="1", b="2"}`, or `name{...}` when `__name__` is set.
pub(crate) fn render_labels(labels: &Labels) -> String {
    let mut out = labels.get("__name__").cloned().unwrap_or_default();
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().filter(|(k, _)| *k != "__name__") {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(out, "{k}={v:?}");
    }
    out.push('}');
    out
}

/// When two floats count as the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

impl Tolerance {
    /// NaN equals NaN (both receivers found no defined value); infinities equal themselves.
    pub(crate) fn same(&self, a: f64, b: f64) -> bool {
        if a.is_nan() || b.is_nan() {
            return a.is_nan() && b.is_nan();
        }
        a == b || (a - b).abs() <= self.absolute + self.relative * a.abs().max(b.abs())
    }
}

/// How to compare one answer with the reference's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rules {
    pub tolerance: Tolerance,
    /// Points before this time are not compared (a dialect defines them differently).
    pub compare_from_ms: Option<i64>,
}

/// Every way two answers differ, with the first few spelled out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Differences {
    /// Differing items: series or points, values, label sets.
    pub count: usize,
    pub examples: Vec<String>,
    /// Points (or items) actually compared.
    pub compared: usize,
}

impl Differences {
    fn add(&mut self, max_examples: usize, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < max_examples {
            self.examples.push(describe());
        }
    }
}

/// Compares `other` with `reference`; `names` are (reference, other) for the messages.
pub(crate) fn compare(
    reference: &Answer,
    other: &Answer,
    rules: &Rules,
    names: (&str, &str),
    max_examples: usize,
) -> Differences {
    let mut d = Differences::default();
    let (rn, on) = names;
    match (reference, other) {
        (Answer::Series { series: a }, Answer::Series { series: b }) => {
            compare_series(a, b, rules, names, max_examples, &mut d);
        }
        (Answer::Values { values: a }, Answer::Values { values: b }) => {
            compare_sets(a, b, names, max_examples, &mut d, |v| format!("{v:?}"));
        }
        (Answer::LabelSets { sets: a }, Answer::LabelSets { sets: b }) => {
            compare_sets(a, b, names, max_examples, &mut d, render_labels);
        }
        _ => d.add(max_examples, || {
            format!("{rn} and {on} answered different kinds of result")
        }),
    }
    d
}

fn compare_sets<T: Ord>(
    a: &[T],
    b: &[T],
    (rn, on): (&str, &str),
    max_examples: usize,
    d: &mut Differences,
    show: impl Fn(&T) -> String,
) {
    if a.len() != b.len() {
        d.add(max_examples, || format!("{rn} returned {}, {on} {}", a.len(), b.len()));
    }
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                d.add(max_examples, || format!("only {rn} returned {}", show(x)));
                i += 1;
            }
            (Some(x), None) => {
                d.add(max_examples, || format!("only {rn} returned {}", show(x)));
                i += 1;
            }
            (_, Some(y)) => {
                d.add(max_examples, || format!("only {on} returned {}", show(y)));
                j += 1;
            }
        }
        d.compared += 1;
    }
}

fn compare_series(
    a: &[SeriesPoints],
    b: &[SeriesPoints],
    rules: &Rules,
    (rn, on): (&str, &str),
    max_examples: usize,
    d: &mut Differences,
) {
    let from = rules.compare_from_ms.unwrap_or(i64::MIN);
    let kept = |s: &SeriesPoints| s.points.iter().any(|(t, _)| *t >= from);
    let a: Vec<&SeriesPoints> = a.iter().filter(|s| kept(s)).collect();
    let b: Vec<&SeriesPoints> = b.iter().filter(|s| kept(s)).collect();
    if a.len() != b.len() {
        d.add(max_examples, || {
            format!("{rn} returned {} series, {on} {}", a.len(), b.len())
        });
    }
    let by_labels: BTreeMap<&Labels, &SeriesPoints> = b.iter().map(|s| (&s.labels, *s)).collect();
    for s in &a {
        let Some(other) = by_labels.get(&s.labels) else {
            d.add(max_examples, || {
                format!("only {rn} returned {}", render_labels(&s.labels))
            });
            continue;
        };
        let theirs: BTreeMap<i64, &str> = other
            .points
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(t, v)| (*t, v.as_str()))
            .collect();
        for (t, v) in s.points.iter().filter(|(t, _)| *t >= from) {
            d.compared += 1;
            let Some(w) = theirs.get(t) else {
                d.add(max_examples, || {
                    format!("{} at {}: {rn} {v}, {on} no point", render_labels(&s.labels), at(*t))
                });
                continue;
            };
            let (x, y) = (parse_value(v), parse_value(w));
            let same = matches!((x, y), (Some(x), Some(y)) if rules.tolerance.same(x, y));
            if !same {
                d.add(max_examples, || {
                    let rel = match (x, y) {
                        (Some(x), Some(y)) if x != 0.0 => format!(" (relative difference {:.2e})", ((y - x) / x).abs()),
                        _ => String::new(),
                    };
                    format!("{} at {}: {rn} {v}, {on} {w}{rel}", render_labels(&s.labels), at(*t))
                });
            }
        }
        let ours: std::collections::BTreeSet<i64> = s.points.iter().map(|(t, _)| *t).collect();
        for (t, w) in theirs.iter().filter(|(t, _)| !ours.contains(t)) {
            d.compared += 1;
            d.add(max_examples, || {
                format!("{} at {}: {rn} no point, {on} {w}", render_labels(&s.labels), at(*t))
            });
        }
    }
    let ours: BTreeMap<&Labels, ()> = a.iter().map(|s| (&s.labels, ())).collect();
    for s in b.iter().filter(|s| !ours.contains_key(&s.labels)) {
        d.add(max_examples, || {
            format!("only {on} returned {}", render_labels(&s.labels))
        });
    }
}

/// A timestamp as the API writes it, so a reader can paste it into a query.
fn at(ms: i64) -> String {
    format!("t={}", super::suite::seconds(ms))
}
