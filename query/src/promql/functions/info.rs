//! `info(v, [data-label-selector])`: Prometheus 3's experimental join of info-metric labels.
//!
//! Each series of `v` gets the data labels (all but `instance`, `job` and `__name__`) of the
//! info series whose identifying labels (`instance` and `job`, those present) equal its own,
//! one info series per info metric name, as of each step. The selector chooses the info
//! metrics by `__name__` (default `target_info`; only negated name matchers mean `.+_info`
//! minus those) and which data labels to add (the label names its other matchers name; all
//! when it names none). Where a series finds no info series, it stays as it is, unless a data
//! matcher refuses the empty string: then it is left out at that step. Labels the series
//! already has are never replaced; two info metrics giving one label different values fail
//! the query, and so do two info series of one signature with samples at the same time (the
//! later sample wins otherwise). A series of `v` that is itself an info series (its name
//! matches every name matcher) passes unchanged.
//!
//! The info series are looked up as of the time the first selector inside `v` reads (its `@`
//! and `offset`, and those of subqueries enclosing it until one has `@`), so `info(x @ 60)`
//! joins what was current at 60s at every step, as Prometheus does.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use promql_parser::parser::{AtModifier, Expr, Offset};
use tributary_storage::types::{METRIC_NAME, MatchOp, Matcher, TimestampMs};

use super::super::eval::Evaluator;
use super::super::plan::{Planner, convert_matcher, offset_ms, unwrap_parens};
use super::super::value::{SeriesBuilder, StepCursor, StepSeries};
use crate::error::{Error, Result};

/// The labels an info series is joined on.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// A label no series has, whose matcher [`admit_selectors`] adds to every data-label selector
/// and [`Info::plan`] removes again.
const SENTINEL: &str = "__tributary_info_selector__";

/// `text` with a matcher of [`SENTINEL`] added to the data-label selector of every `info` call.
/// `promql-parser` refuses a selector whose matchers all match the empty string
/// (`{data=~".*"}`, `{__name__!="build_info"}`), which Prometheus's parser accepts as `info`'s
/// second argument; with a matcher that matches only non-empty values beside them, it parses,
/// and the plan drops that matcher. Positions after the selector shift by the added text.
pub(crate) fn admit_selectors(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut inserts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = skip_literal(bytes, i),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                    i += 1;
                }
                if &text[start..i] == "info"
                    && let Some(open) = text[i..].find(|c: char| !c.is_ascii_whitespace()).map(|j| i + j)
                    && bytes[open] == b'('
                    && let Some(brace) = second_argument_brace(bytes, open + 1)
                {
                    inserts.push(brace + 1);
                }
            }
            _ => i += 1,
        }
    }
    if inserts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + inserts.len() * 40);
    let mut at = 0;
    for pos in inserts {
        out.push_str(&text[at..pos]);
        out.push_str(SENTINEL);
        out.push_str("=~\".+\"");
        out.push_str(if text[pos..].trim_start().starts_with('}') {
            " "
        } else {
            ", "
        });
        at = pos;
    }
    out.push_str(&text[at..]);
    std::borrow::Cow::Owned(out)
}

/// Where the second argument of a call whose arguments start at `from` opens its brace, when
/// it is a brace selector.
fn second_argument_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_literal(bytes, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return None,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                let rest = &bytes[i + 1..];
                let j = rest.iter().position(|b| !b.is_ascii_whitespace())?;
                return (rest[j] == b'{').then_some(i + 1 + j);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Past the literal whose quote is at `i` (backslash escapes, as `promql-parser` reads them).
fn skip_literal(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// A planned `info` call.
#[derive(Debug)]
pub(crate) struct Info {
    /// The info series' selector (an index into the plan's selectors).
    selector: usize,
    /// The effective `__name__` matchers: what makes a series an info series.
    names: Vec<Matcher>,
    /// The selector's other matchers: they choose the info series and name the data labels
    /// added (all when empty).
    data: Vec<Matcher>,
}

impl Info {
    /// Plans the info series' selector; `args` are the call's arguments (the parser checked
    /// there are one or two, the second a selector).
    pub(crate) fn plan(planner: &mut Planner, args: &[&Expr]) -> Result<Self> {
        let mut given = Vec::new();
        if let Some(selector) = args.get(1) {
            let Expr::VectorSelector(vs) = unwrap_parens(selector) else {
                return Err(Error::BadData(format!(
                    "info(): the data label selector must be a label selector in braces, got {selector}"
                )));
            };
            if !vs.matchers.or_matchers.is_empty() || vs.offset.is_some() || vs.at.is_some() {
                return Err(Error::unsupported(
                    "info() data label selectors with `or`, `offset` or `@` (Prometheus reads matchers only)",
                ));
            }
            given = vs
                .matchers
                .matchers
                .iter()
                .filter(|m| m.name != SENTINEL)
                .map(convert_matcher)
                .collect::<Result<_>>()?;
            if let Some(name) = &vs.name {
                given.push(Matcher::equal(METRIC_NAME, name.clone()));
            }
        }
        let (name_given, data): (Vec<Matcher>, Vec<Matcher>) = given.into_iter().partition(|m| m.name == METRIC_NAME);
        let names = effective_names(name_given)?;
        let (at, offset) = reference(args[0]);
        let at = planner.resolve_at(at);
        let matchers = data.iter().chain(&names).cloned().collect();
        let selector = planner.extra_selector(matchers, offset, at);
        Ok(Self { selector, names, data })
    }

    /// Joins `base` (the first argument's value) with the info series.
    pub(crate) fn evaluate(&self, ev: &mut Evaluator, base: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
        // Each info series' value is the time of its sample in seconds (newest wins).
        let fetched = ev.instant_selector(self.selector, true)?;
        let is_info = |s: &StepSeries| {
            let name = s.labels.get(METRIC_NAME).unwrap_or("");
            self.names.iter().all(|m| m.matches(name))
        };
        let passes: Vec<bool> = base.iter().map(is_info).collect();
        // Prometheus selects only info series whose identifying labels hold a value some
        // series to enrich has (a regex of them per label): the same filter, applied here.
        let wanted: Vec<Vec<&str>> = IDENTIFYING
            .iter()
            .map(|l| {
                let mut values: Vec<&str> = base
                    .iter()
                    .zip(&passes)
                    .filter(|(_, passes)| !**passes)
                    .filter_map(|(s, _)| s.labels.get(l))
                    .collect();
                values.sort_unstable();
                values.dedup();
                values
            })
            .collect();
        let infos: Vec<StepSeries> = if wanted.iter().all(Vec::is_empty) {
            Vec::new()
        } else {
            fetched
                .into_iter()
                .filter(|s| {
                    IDENTIFYING.iter().zip(&wanted).all(|(l, values)| {
                        values.is_empty() || s.labels.get(l).is_some_and(|v| values.binary_search(&v).is_ok())
                    })
                })
                .collect()
        };
        let mut info_names: Vec<&str> = infos.iter().filter_map(|s| s.labels.get(METRIC_NAME)).collect();
        info_names.sort_unstable();
        info_names.dedup();
        let info_sigs: Vec<Signature> = infos
            .iter()
            .map(|s| signature(s.labels.get(METRIC_NAME).unwrap_or(""), s))
            .collect();
        // Per series to enrich, its signature under each info metric name.
        let base_sigs: Vec<Vec<Signature>> = base
            .iter()
            .map(|s| info_names.iter().map(|n| signature(n, s)).collect())
            .collect();
        let strict = self.data.iter().any(|m| !m.matches(""));

        let mut builder = SeriesBuilder::default();
        let (mut base_cursor, mut info_cursor) = (StepCursor::new(&base), StepCursor::new(&infos));
        let (mut now, mut current) = (Vec::new(), Vec::new());
        let mut latest: HashMap<&Signature, (usize, f64)> = HashMap::new();
        for step in 0..ev.steps.count as u32 {
            ev.guard.check()?;
            base_cursor.at(step, &mut now);
            if now.is_empty() {
                continue;
            }
            info_cursor.at(step, &mut current);
            // The newest info series of each signature at this step.
            latest.clear();
            for &(i, t) in &current {
                match latest.entry(&info_sigs[i]) {
                    Entry::Vacant(e) => {
                        e.insert((i, t));
                    }
                    Entry::Occupied(mut e) => {
                        let held = *e.get();
                        if held.1 < t {
                            e.insert((i, t));
                        } else if held.1 == t {
                            return Err(Error::Execution(format!(
                                "found duplicate series for info metric: existing {} @ {}, new {} @ {}",
                                infos[held.0].labels,
                                (held.1 * 1000.0).round() as TimestampMs,
                                infos[i].labels,
                                (t * 1000.0).round() as TimestampMs
                            )));
                        }
                    }
                }
            }
            for &(b, value) in &now {
                let labels = if passes[b] {
                    base[b].labels.clone()
                } else {
                    match self.enrich(&base[b], &base_sigs[b], &infos, &latest)? {
                        Some(labels) => labels,
                        None if strict => continue,
                        None => base[b].labels.clone(),
                    }
                };
                let slot = builder.slot(labels);
                builder.push(slot, step, value)?;
            }
        }
        Ok(builder.finish())
    }

    /// `series` with the data labels of the info series `latest` holds for its signatures;
    /// `None` when none matches.
    fn enrich(
        &self,
        series: &StepSeries,
        sigs: &[Signature],
        infos: &[StepSeries],
        latest: &HashMap<&Signature, (usize, f64)>,
    ) -> Result<Option<tributary_storage::types::Labels>> {
        let mut added: Vec<(&str, &str)> = Vec::new();
        let mut matched = false;
        for sig in sigs {
            let Some(&(i, _)) = latest.get(sig) else {
                continue;
            };
            matched = true;
            for l in infos[i].labels.iter().filter(|l| l.name != METRIC_NAME) {
                if !self.data.is_empty() && !self.data.iter().any(|m| m.name == l.name) {
                    continue;
                }
                match added.iter().find(|(n, _)| *n == l.name) {
                    Some((_, v)) if *v != l.value => {
                        return Err(Error::Execution(format!("conflicting label: {}", l.name)));
                    }
                    Some(_) => continue,
                    None => {}
                }
                if series.labels.get(l.name).is_none() {
                    added.push((l.name, l.value));
                }
            }
        }
        if !matched {
            return Ok(None);
        }
        let mut labels = series.labels.clone();
        for (name, value) in added {
            labels.set(name, value);
        }
        Ok(Some(labels))
    }
}

/// An info metric name with the identifying labels' values (absent ones as `None`).
type Signature = (String, [Option<String>; 2]);

fn signature(name: &str, s: &StepSeries) -> Signature {
    (
        name.to_string(),
        IDENTIFYING.map(|l| s.labels.get(l).map(str::to_string)),
    )
}

/// Prometheus's effective name matchers: the given ones when one is positive; `.+_info` and
/// the given ones when all are negated; `target_info` when none is given.
fn effective_names(given: Vec<Matcher>) -> Result<Vec<Matcher>> {
    if given
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::RegexMatch))
    {
        return Ok(given);
    }
    if given.is_empty() {
        return Ok(vec![Matcher::equal(METRIC_NAME, "target_info")]);
    }
    let any_info = Matcher::new(MatchOp::RegexMatch, METRIC_NAME, ".+_info")
        .map_err(|e| Error::Internal(format!("the .+_info matcher: {e}")))?;
    Ok(std::iter::once(any_info).chain(given).collect())
}

/// The `@` and offset (ms) that place the first selector inside `expr` (depth first, in
/// argument order), with those of the subqueries around it added until one has `@`.
fn reference(expr: &Expr) -> (Option<&AtModifier>, i64) {
    fn walk<'a>(
        expr: &'a Expr,
        around: &mut Vec<(Option<&'a AtModifier>, Option<&'a Offset>)>,
    ) -> Option<(Option<&'a AtModifier>, i64)> {
        let found = |at: Option<&'a AtModifier>,
                     offset: Option<&'a Offset>,
                     around: &[(Option<&'a AtModifier>, Option<&'a Offset>)]| {
            let (mut at, mut total) = (at, offset_ms(offset));
            for (sq_at, sq_offset) in around.iter().rev() {
                if at.is_some() {
                    break;
                }
                total += offset_ms(*sq_offset);
                at = *sq_at;
            }
            (at, total)
        };
        match expr {
            Expr::VectorSelector(vs) => Some(found(vs.at.as_ref(), vs.offset.as_ref(), around)),
            Expr::MatrixSelector(ms) => Some(found(ms.vs.at.as_ref(), ms.vs.offset.as_ref(), around)),
            Expr::Subquery(sq) => {
                around.push((sq.at.as_ref(), sq.offset.as_ref()));
                let inner = walk(&sq.expr, around);
                around.pop();
                inner
            }
            Expr::Paren(p) => walk(&p.expr, around),
            Expr::Unary(u) => walk(&u.expr, around),
            Expr::Binary(b) => walk(&b.lhs, around).or_else(|| walk(&b.rhs, around)),
            Expr::Aggregate(a) => a
                .param
                .as_deref()
                .and_then(|p| walk(p, around))
                .or_else(|| walk(&a.expr, around)),
            Expr::Call(c) => c.args.args.iter().find_map(|a| walk(a, around)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
        }
    }
    walk(expr, &mut Vec::new()).unwrap_or((None, 0))
}
