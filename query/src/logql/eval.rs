//! Evaluation: log queries into streams, metric queries into per-step vectors.
//!
//! Metric queries follow Loki: a range aggregation at step `t` reads the samples in the left-open
//! window `(t - offset - range, t - offset]`; vector aggregations and binary operators work step
//! by step, with Prometheus's matching rules (one-to-one on all labels, or `on`/`ignoring`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tributary_storage::read::{Direction, LogRequest, LogSource, severity_level};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{Label, Labels, MatchOp, Matcher};

use super::ast::*;
use super::pipeline::{
    ERROR_DETAILS_LABEL, ERROR_LABEL, Entry, Pipeline, eval_filter, sanitize_label_name, unwrap_value,
};
use super::{LabelOrigins, LogEntry, QueryStats, Stream};
use crate::error::{Error, Result};
use crate::statistics::quantile;

/// A log record's labels as the pipeline first sees them: the stream labels, then its structured
/// metadata (the record's own attributes' top-level scalar values, `trace_id` and `span_id`), never
/// overriding a stream label. Also the names of the stream labels (which the pipeline needs).
pub(crate) fn initial_entry(rec: &LogRecord) -> (Entry, BTreeSet<String>) {
    let mut labels: BTreeMap<String, String> = rec
        .labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    let stream: BTreeSet<String> = labels.keys().cloned().collect();
    if rec.attributes.len() > 2
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&rec.attributes)
    {
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            labels.entry(sanitize_label_name(&k)).or_insert(text);
        }
    }
    for (name, value) in [("trace_id", &rec.trace_id), ("span_id", &rec.span_id)] {
        if !value.is_empty() {
            labels.entry(name.to_string()).or_insert_with(|| value.clone());
        }
    }
    if !labels.contains_key("level")
        && let Some(level) = severity_level(rec.severity_number, &rec.severity_text)
    {
        labels
            .entry("detected_level".to_string())
            .or_insert_with(|| level.to_string());
    }
    let entry = Entry {
        timestamp: rec.timestamp,
        line: rec.body.clone(),
        labels,
    };
    (entry, stream)
}

/// An empty value means "no such label" (as in Loki's label builder), so those are dropped.
fn to_labels(map: BTreeMap<String, String>) -> Labels {
    Labels::new(map.into_iter().map(|(name, value)| Label { name, value }).collect())
}

// ---------------------------------------------------------------- log queries

/// What a log query reads: `[start, end)` (ns), at most `limit` lines from the `direction` end,
/// `chunk` records per read when the pipeline may drop lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogWindow {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) limit: usize,
    pub(crate) direction: Direction,
    pub(crate) chunk: usize,
    /// `query.logql.max_response_bytes`: the most line bytes the answer may hold.
    pub(crate) max_bytes: usize,
}

/// Reads the lines of `log` in `[start, end)`, newest or oldest first, at most `limit` of them
/// after the pipeline. The source gets the limit itself when nothing after it can drop a line;
/// otherwise records are read in chunks, each starting where the previous one ended.
/// How far a chunk grows (as a multiple of `fetch_chunk`) when the pipeline drops most lines.
const MAX_CHUNK_GROWTH: usize = 64;

pub(crate) async fn select_streams(
    source: &Arc<dyn LogSource>,
    log: &LogExpr,
    w: &LogWindow,
    stats: &mut QueryStats,
) -> Result<Vec<Stream>> {
    let LogWindow {
        start,
        end,
        limit,
        direction,
        chunk,
        max_bytes,
    } = *w;
    let pipeline = Pipeline::new(&log.stages)?;
    // Line bytes kept so far: a template may grow every line to its per-line bound, and
    // thousands of such lines must fail here rather than fill memory.
    let mut kept_bytes = 0usize;
    let may_drop = pipeline.may_drop_lines();
    let mut req = LogRequest {
        matchers: log.matchers.clone(),
        start,
        end,
        line_hints: Pipeline::line_hints(&log.stages),
        direction,
        limit: Some(if may_drop { chunk.max(limit) } else { limit }),
    };
    let mut out: Vec<((Labels, LabelOrigins), LogEntry)> = Vec::new();
    // Records at the timestamp where the last chunk ended: the next chunk starts at that
    // timestamp again (so none is lost) and skips these.
    let mut boundary: Vec<LogRecord> = Vec::new();
    'fetch: while limit > 0 && req.start < req.end {
        // The head answers without yielding: yield, so the query's deadline and its client
        // going away (`on_deep_stack_async`) can stop it between chunks.
        tokio::task::yield_now().await;
        let batch = source.select_logs(&req).await?;
        let asked = req.limit.unwrap_or(usize::MAX);
        let kept_before = out.len();
        let full = batch.len() >= asked;
        for rec in &batch {
            if boundary.first().is_some_and(|b| b.timestamp == rec.timestamp) && boundary.contains(rec) {
                continue;
            }
            stats.lines_processed += 1;
            stats.bytes_processed += rec.body.len() as u64;
            let (mut e, stream) = initial_entry(rec);
            let metadata: BTreeSet<String> = e.labels.keys().filter(|n| !stream.contains(*n)).cloned().collect();
            if !pipeline.process(&mut e, &stream)? {
                continue;
            }
            kept_bytes = kept_bytes.saturating_add(e.line.len());
            if kept_bytes > max_bytes {
                return Err(Error::QueryLimit {
                    option: "query.logql.max_response_bytes".into(),
                    limit: max_bytes,
                    found: format!(
                        "its first {} lines hold {kept_bytes} bytes after the pipeline: narrow the query, lower `limit` or shorten line_format",
                        out.len() + 1
                    ),
                });
            }
            // Every label not in the record's stream labels is structured metadata if the
            // record had it before the pipeline ran, else the pipeline made it.
            let origins = LabelOrigins {
                structured_metadata: e
                    .labels
                    .keys()
                    .filter(|n| !stream.contains(*n) && metadata.contains(*n))
                    .cloned()
                    .collect(),
                parsed: e
                    .labels
                    .keys()
                    .filter(|n| !stream.contains(*n) && !metadata.contains(*n))
                    .cloned()
                    .collect(),
            };
            out.push((
                (to_labels(e.labels), origins),
                LogEntry {
                    timestamp: e.timestamp,
                    line: e.line,
                },
            ));
            if out.len() >= limit {
                break 'fetch;
            }
        }
        if !may_drop || !full {
            break;
        }
        let Some(last) = batch.last() else { break };
        let last_ts = last.timestamp;
        if batch.first().is_some_and(|f| f.timestamp == last_ts) {
            // A whole chunk at one timestamp: read more of it at once next time.
            req.limit = Some(asked.saturating_mul(2));
        } else if out.len() - kept_before < limit - out.len() && asked < MAX_CHUNK_GROWTH * chunk {
            // The pipeline keeps few lines: fewer scans of bigger chunks (each scan reopens files).
            req.limit = Some((asked.saturating_mul(2)).min(MAX_CHUNK_GROWTH * chunk));
        }
        boundary = batch.iter().filter(|r| r.timestamp == last_ts).cloned().collect();
        match direction {
            Direction::Forward => req.start = last_ts,
            Direction::Backward => req.end = last_ts.saturating_add(1),
        }
    }
    stats.entries_returned = out.len() as u64;
    let mut streams: BTreeMap<(Labels, LabelOrigins), Vec<LogEntry>> = BTreeMap::new();
    for (key, entry) in out {
        streams.entry(key).or_default().push(entry);
    }
    Ok(streams
        .into_iter()
        .map(|((labels, origins), entries)| Stream {
            labels,
            origins,
            entries,
        })
        .collect())
}

// ---------------------------------------------------------------- metric queries

/// One sample of a step's vector.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    pub(crate) labels: Labels,
    pub(crate) value: f64,
}

/// A metric expression's value: a scalar (the same at every step) or one vector per step.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Scalar(f64),
    Vectors(Vec<Vec<Point>>),
}

pub(crate) struct MetricCtx<'a> {
    pub(crate) source: &'a Arc<dyn LogSource>,
    /// Evaluation times, ns, ascending.
    pub(crate) steps: &'a [i64],
    pub(crate) max_records: usize,
    pub(crate) stats: &'a mut QueryStats,
}

pub(crate) async fn eval_metric(ctx: &mut MetricCtx<'_>, expr: &MetricExpr) -> Result<Val> {
    match expr {
        MetricExpr::Number(v) => Ok(Val::Scalar(*v)),
        MetricExpr::VectorLiteral(v) => Ok(Val::Vectors(
            ctx.steps
                .iter()
                .map(|_| {
                    vec![Point {
                        labels: Labels::default(),
                        value: *v,
                    }]
                })
                .collect(),
        )),
        MetricExpr::Paren(inner) => Box::pin(eval_metric(ctx, inner)).await,
        MetricExpr::Range(r) => Ok(Val::Vectors(eval_range(ctx, r).await?)),
        MetricExpr::Vector(v) => {
            let inner = Box::pin(eval_metric(ctx, &v.expr)).await?;
            let steps = match inner {
                Val::Vectors(s) => s,
                Val::Scalar(_) => {
                    return Err(Error::BadData(format!(
                        "{} aggregation requires a vector argument",
                        v.op.as_str()
                    )));
                }
            };
            Ok(Val::Vectors(
                steps
                    .into_iter()
                    .map(|points| aggregate(v.op, v.param, v.grouping.as_ref(), points))
                    .collect(),
            ))
        }
        MetricExpr::Binary(b) => {
            let lhs = Box::pin(eval_metric(ctx, &b.lhs)).await?;
            let rhs = Box::pin(eval_metric(ctx, &b.rhs)).await?;
            binary(b, lhs, rhs)
        }
    }
}

/// Reads and pipes the records once, then computes the function at every step.
async fn eval_range(ctx: &mut MetricCtx<'_>, r: &RangeAgg) -> Result<Vec<Vec<Point>>> {
    let (Some(&first), Some(&last)) = (ctx.steps.first(), ctx.steps.last()) else {
        return Ok(Vec::new());
    };
    let pipeline = Pipeline::new(&r.log.stages)?;
    let req = LogRequest {
        matchers: r.log.matchers.clone(),
        start: first.saturating_sub(r.offset).saturating_sub(r.range).saturating_add(1),
        end: last.saturating_sub(r.offset).saturating_add(1),
        line_hints: Pipeline::line_hints(&r.log.stages),
        direction: Direction::Forward,
        limit: Some(ctx.max_records.saturating_add(1)),
    };
    // As in `select_streams`: lets the deadline or a dropped query stop it between selectors.
    tokio::task::yield_now().await;
    let records = ctx.source.select_logs(&req).await?;
    if records.len() > ctx.max_records {
        return Err(Error::TooManyRecords { limit: ctx.max_records });
    }
    let mut series: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    for rec in &records {
        ctx.stats.lines_processed += 1;
        ctx.stats.bytes_processed += rec.body.len() as u64;
        let (mut e, stream) = initial_entry(rec);
        if !pipeline.process(&mut e, &stream)? {
            continue;
        }
        let value = match (&r.unwrap, r.func) {
            (Some(u), _) => {
                let v = unwrap_value(&mut e, &u.label, u.conversion);
                if !u.filters.iter().all(|f| eval_filter(f, &mut e)) {
                    continue;
                }
                v.unwrap_or(f64::NAN)
            }
            (None, RangeFn::BytesOverTime | RangeFn::BytesRate) => e.line.len() as f64,
            (None, _) => 1.0,
        };
        e.labels.remove(ERROR_DETAILS_LABEL);
        if let Some(err) = e.labels.get(ERROR_LABEL) {
            return Err(pipeline_error(err, &e.labels));
        }
        let mut labels = to_labels(e.labels);
        if let Some(g) = &r.grouping {
            labels = group_labels(&labels, g);
        }
        series.entry(labels).or_default().push((e.timestamp, value));
    }
    let range_secs = r.range as f64 / 1e9;
    let mut sorted: Vec<(Labels, Vec<(i64, f64)>)> = series.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, samples) in &mut sorted {
        // Grouping merges series; keep each one's samples in time order.
        samples.sort_by_key(|s| s.0);
    }
    let absent_labels = equality_labels(&r.log.matchers);
    let mut out = Vec::with_capacity(ctx.steps.len());
    for &t in ctx.steps {
        let hi = t.saturating_sub(r.offset);
        let lo = hi.saturating_sub(r.range);
        let mut points = Vec::new();
        let mut any = false;
        for (labels, samples) in &sorted {
            let from = samples.partition_point(|s| s.0 <= lo);
            let to = samples.partition_point(|s| s.0 <= hi);
            if from >= to {
                continue;
            }
            any = true;
            let window = &samples[from..to];
            if let Some(value) = range_fn(r.func, r.param, window, range_secs) {
                points.push(Point {
                    labels: labels.clone(),
                    value,
                });
            }
        }
        if r.func == RangeFn::AbsentOverTime {
            points.clear();
            if !any {
                points.push(Point {
                    labels: absent_labels.clone(),
                    value: 1.0,
                });
            }
        }
        out.push(points);
    }
    Ok(out)
}

fn pipeline_error(err: &str, labels: &BTreeMap<String, String>) -> Error {
    let series = to_labels(labels.clone());
    Error::Execution(format!(
        "pipeline error: '{err}' for series: '{series}'.\nUse a label filter to intentionally skip this error. \
         (e.g | __error__!=\"{err}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    ))
}

fn range_fn(func: RangeFn, param: Option<f64>, window: &[(i64, f64)], range_secs: f64) -> Option<f64> {
    let values = window.iter().map(|s| s.1);
    let n = window.len() as f64;
    let sum = || values.clone().sum::<f64>();
    Some(match func {
        RangeFn::CountOverTime => n,
        RangeFn::Rate | RangeFn::BytesRate => sum() / range_secs,
        RangeFn::BytesOverTime | RangeFn::SumOverTime => sum(),
        RangeFn::AvgOverTime => sum() / n,
        RangeFn::MaxOverTime => values
            .clone()
            .fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
        RangeFn::MinOverTime => values
            .clone()
            .fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
        RangeFn::FirstOverTime => window.first()?.1,
        RangeFn::LastOverTime => window.last()?.1,
        RangeFn::StddevOverTime => variance(values.clone()).sqrt(),
        RangeFn::StdvarOverTime => variance(values.clone()),
        RangeFn::QuantileOverTime => quantile(param.unwrap_or(f64::NAN), &mut values.clone().collect::<Vec<_>>()),
        RangeFn::AbsentOverTime => return None,
    })
}

/// Population variance, computed as Prometheus does (running mean).
fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    if count == 0.0 { f64::NAN } else { m2 / count }
}

fn group_labels(labels: &Labels, g: &Grouping) -> Labels {
    labels.filtered(|l| g.labels.iter().any(|n| n == l.name) != g.without)
}

fn aggregate(op: AggOp, param: Option<f64>, grouping: Option<&Grouping>, points: Vec<Point>) -> Vec<Point> {
    let key = |labels: &Labels| match grouping {
        Some(g) => group_labels(labels, g),
        None => Labels::default(),
    };
    let mut groups: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for p in points {
        groups.entry(key(&p.labels)).or_default().push(p);
    }
    let mut out = Vec::new();
    for (labels, mut members) in groups {
        let values = || members.iter().map(|p| p.value);
        let value = match op {
            AggOp::Sum => values().sum(),
            AggOp::Avg => values().sum::<f64>() / members.len() as f64,
            AggOp::Min => values().fold(f64::NAN, |a, b| if a.is_nan() || b < a { b } else { a }),
            AggOp::Max => values().fold(f64::NAN, |a, b| if a.is_nan() || b > a { b } else { a }),
            AggOp::Count => members.len() as f64,
            AggOp::Stddev => variance(values()).sqrt(),
            AggOp::Stdvar => variance(values()),
            AggOp::Topk | AggOp::Bottomk => {
                let k = param.unwrap_or(0.0).max(0.0) as usize;
                // NaN sorts last either way, as in Prometheus.
                members.sort_by(|a, b| {
                    let ord = match (a.value.is_nan(), b.value.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if op == AggOp::Topk => b.value.total_cmp(&a.value),
                        _ => a.value.total_cmp(&b.value),
                    };
                    ord.then_with(|| a.labels.cmp(&b.labels))
                });
                members.truncate(k);
                out.extend(members);
                continue;
            }
        };
        out.push(Point { labels, value });
    }
    out
}

fn arith(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(u8::from(a == b)),
        BinOp::Ne => f64::from(u8::from(a != b)),
        BinOp::Gt => f64::from(u8::from(a > b)),
        BinOp::Ge => f64::from(u8::from(a >= b)),
        BinOp::Lt => f64::from(u8::from(a < b)),
        BinOp::Le => f64::from(u8::from(a <= b)),
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

fn signature(labels: &Labels, matching: Option<&(bool, Vec<String>)>) -> Labels {
    match matching {
        Some((on, names)) => labels.filtered(|l| names.iter().any(|n| n == l.name) == *on),
        None => labels.clone(),
    }
}

fn binary(b: &BinaryExpr, lhs: Val, rhs: Val) -> Result<Val> {
    let cmp = b.op.is_comparison();
    match (lhs, rhs) {
        (Val::Scalar(x), Val::Scalar(y)) => Ok(Val::Scalar(arith(b.op, x, y).unwrap_or(f64::NAN))),
        (Val::Vectors(v), Val::Scalar(s)) | (Val::Scalar(s), Val::Vectors(v)) if b.op.is_set() => {
            let _ = (v, s);
            Err(Error::BadData(format!(
                "set operator {} not allowed in binary scalar expression",
                b.op.as_str()
            )))
        }
        (Val::Vectors(v), Val::Scalar(s)) => Ok(Val::Vectors(scalar_op(b, v, s, false, cmp))),
        (Val::Scalar(s), Val::Vectors(v)) => Ok(Val::Vectors(scalar_op(b, v, s, true, cmp))),
        (Val::Vectors(l), Val::Vectors(r)) => Ok(Val::Vectors(
            l.into_iter()
                .zip(r)
                .map(|(lp, rp)| vector_op(b, lp, rp))
                .collect::<Result<_>>()?,
        )),
    }
}

fn scalar_op(b: &BinaryExpr, steps: Vec<Vec<Point>>, s: f64, swap: bool, cmp: bool) -> Vec<Vec<Point>> {
    steps
        .into_iter()
        .map(|points| {
            points
                .into_iter()
                .filter_map(|p| {
                    let (x, y) = if swap { (s, p.value) } else { (p.value, s) };
                    let v = arith(b.op, x, y)?;
                    if cmp && !b.return_bool {
                        // A filter keeps the vector's own value, whichever side it is on.
                        return (v == 1.0).then_some(p);
                    }
                    Some(Point {
                        labels: p.labels,
                        value: v,
                    })
                })
                .collect()
        })
        .collect()
}

fn vector_op(b: &BinaryExpr, lhs: Vec<Point>, rhs: Vec<Point>) -> Result<Vec<Point>> {
    let matching = b.matching.as_ref();
    let rhs_by_sig: HashMap<Labels, &Point> = {
        let mut m = HashMap::new();
        for p in &rhs {
            if m.insert(signature(&p.labels, matching), p).is_some() && !b.op.is_set() {
                return Err(Error::Execution(
                    "found duplicate series for the match group on the right hand-side of the operation; \
                     many-to-many matching not allowed: matching labels must be unique on one side"
                        .into(),
                ));
            }
        }
        m
    };
    match b.op {
        BinOp::And => Ok(lhs
            .into_iter()
            .filter(|p| rhs_by_sig.contains_key(&signature(&p.labels, matching)))
            .collect()),
        BinOp::Unless => Ok(lhs
            .into_iter()
            .filter(|p| !rhs_by_sig.contains_key(&signature(&p.labels, matching)))
            .collect()),
        BinOp::Or => {
            let lhs_sigs: BTreeSet<Labels> = lhs.iter().map(|p| signature(&p.labels, matching)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|p| !lhs_sigs.contains(&signature(&p.labels, matching))),
            );
            Ok(out)
        }
        op => {
            let mut out = Vec::new();
            let mut seen = BTreeSet::new();
            for p in lhs {
                let sig = signature(&p.labels, matching);
                let Some(r) = rhs_by_sig.get(&sig) else { continue };
                let Some(v) = arith(op, p.value, r.value) else { continue };
                if op.is_comparison() && !b.return_bool {
                    if v == 1.0 {
                        out.push(p);
                    }
                    continue;
                }
                let labels = match matching {
                    Some((true, _)) => sig,
                    Some((false, names)) => p.labels.filtered(|l| !names.iter().any(|n| n == l.name)),
                    None => p.labels,
                };
                if !seen.insert(labels.clone()) {
                    return Err(Error::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                out.push(Point { labels, value: v });
            }
            Ok(out)
        }
    }
}

/// The labels `absent_over_time` answers with: those of the selector's equality matchers.
fn equality_labels(matchers: &[Matcher]) -> Labels {
    Labels::new(
        matchers
            .iter()
            .filter(|m| m.op == MatchOp::Equal)
            .map(|m| Label::new(m.name.clone(), m.value.clone()))
            .collect(),
    )
}
