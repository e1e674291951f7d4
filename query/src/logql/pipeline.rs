//! Log pipelines, compiled: line filters, parsers (`json logfmt regexp pattern unpack`), label
//! filters, formatters, `drop`/`keep`, with Loki's error labels (`__error__`,
//! `__error_details__`) when a parser or a conversion fails.
//!
//! An [`Entry`] carries the line and every label the pipeline can see: the stream labels, the
//! record's structured metadata, and whatever the parsers extracted.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use tributary_storage::read::LineHint;

use super::ast::{CmpKind, Conversion, LabelFilter, LabelFormat, LabelSelect, LineOp, Stage};
use super::template::{Scope, Template};
use super::units::{parse_bytes, parse_go_duration};
use crate::error::{Error, Result};
use parsers::{PathStep, json_stage, logfmt_stage, parse_json_path, unpack_stage};

mod parsers;

pub(crate) use parsers::{ExtractPattern, LinePattern, check_regexp, parse_logfmt};

pub(crate) const ERROR_LABEL: &str = "__error__";
pub(crate) const ERROR_DETAILS_LABEL: &str = "__error_details__";
const JSON_ERR: &str = "JSONParserErr";
const LOGFMT_ERR: &str = "LogfmtParserErr";
const LABEL_FILTER_ERR: &str = "LabelFilterErr";
pub(crate) const SAMPLE_ERR: &str = "SampleExtractionErr";

/// A record on its way through a pipeline.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) timestamp: i64,
    pub(crate) line: String,
    pub(crate) labels: BTreeMap<String, String>,
}

impl Entry {
    fn set_error(&mut self, kind: &str, details: String) {
        self.labels.insert(ERROR_LABEL.into(), kind.into());
        self.labels.insert(ERROR_DETAILS_LABEL.into(), details);
    }

    fn has_error(&self) -> bool {
        self.labels.contains_key(ERROR_LABEL)
    }
}

/// A compiled pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stages: Vec<Compiled>,
}

#[derive(Debug)]
enum Compiled {
    Line { negative: bool, any_of: Vec<LineMatch> },
    Json(Vec<(String, Vec<PathStep>)>),
    Logfmt(Vec<(String, String)>),
    Regexp(Regex),
    Pattern(ExtractPattern),
    Unpack,
    Decolorize,
    LabelFilter(LabelFilter),
    LineFormat(Template),
    LabelFormat(Vec<(String, FormatValue)>),
    Drop(Vec<LabelSelect>),
    Keep(Vec<LabelSelect>),
}

#[derive(Debug)]
enum LineMatch {
    Contains(String),
    Regex(Regex),
    Pattern(LinePattern),
}

#[derive(Debug)]
enum FormatValue {
    Rename(String),
    Template(Template),
}

impl Pipeline {
    pub(crate) fn new(stages: &[Stage]) -> Result<Self> {
        let bad = |e: String| Error::Parse {
            message: e,
            position: None,
        };
        let mut out = Vec::with_capacity(stages.len());
        for stage in stages {
            out.push(match stage {
                Stage::LineFilter(lf) => {
                    let any_of = lf
                        .values
                        .iter()
                        .map(|v| match lf.op {
                            LineOp::Contains | LineOp::NotContains => Ok(LineMatch::Contains(v.clone())),
                            LineOp::Regex | LineOp::NotRegex => Regex::new(v)
                                .map(LineMatch::Regex)
                                .map_err(|e| bad(format!("invalid regex: {e}"))),
                            LineOp::Pattern | LineOp::NotPattern => {
                                LinePattern::new(v).map(LineMatch::Pattern).map_err(bad)
                            }
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Compiled::Line {
                        negative: lf.op.is_negative(),
                        any_of,
                    }
                }
                Stage::Json(params) => Compiled::Json(
                    params
                        .iter()
                        .map(|e| Ok((e.label.clone(), parse_json_path(&e.path).map_err(bad)?)))
                        .collect::<Result<_>>()?,
                ),
                Stage::Logfmt(params) => {
                    Compiled::Logfmt(params.iter().map(|e| (e.label.clone(), e.path.clone())).collect())
                }
                Stage::Regexp(re) => Compiled::Regexp(check_regexp(re).map_err(bad)?),
                Stage::Pattern(p) => Compiled::Pattern(ExtractPattern::new(p).map_err(bad)?),
                Stage::Unpack => Compiled::Unpack,
                Stage::Decolorize => Compiled::Decolorize,
                Stage::LabelFilter(f) => Compiled::LabelFilter(f.clone()),
                Stage::LineFormat(t) => Compiled::LineFormat(Template::parse(t).map_err(bad)?),
                Stage::LabelFormat(items) => Compiled::LabelFormat(
                    items
                        .iter()
                        .map(|item| match item {
                            LabelFormat::Rename { dst, src } => Ok((dst.clone(), FormatValue::Rename(src.clone()))),
                            LabelFormat::Template { dst, template } => Ok((
                                dst.clone(),
                                FormatValue::Template(Template::parse(template).map_err(bad)?),
                            )),
                        })
                        .collect::<Result<_>>()?,
                ),
                Stage::Drop(items) => Compiled::Drop(items.clone()),
                Stage::Keep(items) => Compiled::Keep(items.clone()),
            });
        }
        Ok(Self { stages: out })
    }

    /// Whether some stage may drop a line the source returned (so `limit` cannot go to the source).
    pub(crate) fn may_drop_lines(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Compiled::Line { .. } | Compiled::LabelFilter(_)))
    }

    /// Literal line filters a source may apply: those before any stage that rewrites the line,
    /// with a single value (an `or` of several cannot be expressed as one hint).
    pub(crate) fn line_hints(stages: &[Stage]) -> Vec<LineHint> {
        let mut hints = Vec::new();
        for stage in stages {
            match stage {
                Stage::LineFilter(lf) if lf.values.len() == 1 && !lf.values[0].is_empty() => match lf.op {
                    LineOp::Contains => hints.push(LineHint::Contains(lf.values[0].clone())),
                    LineOp::NotContains => hints.push(LineHint::NotContains(lf.values[0].clone())),
                    _ => {}
                },
                Stage::LineFormat(_) | Stage::Decolorize | Stage::Unpack => break,
                _ => {}
            }
        }
        hints
    }

    /// Runs every stage; false when the line is filtered out. `stream` holds the stream label
    /// names, which extracted labels must not overwrite (they get an `_extracted` suffix). `Err`
    /// when a format stage would render past `template::MAX_FORMATTED_BYTES`.
    pub(crate) fn process(&self, e: &mut Entry, stream: &BTreeSet<String>) -> Result<bool> {
        for stage in &self.stages {
            match stage {
                Compiled::Line { negative, any_of } => {
                    let hit = any_of.iter().any(|m| match m {
                        LineMatch::Contains(s) => e.line.contains(s.as_str()),
                        LineMatch::Regex(re) => re.is_match(&e.line),
                        LineMatch::Pattern(p) => p.matches(&e.line),
                    });
                    if hit == *negative {
                        return Ok(false);
                    }
                }
                Compiled::Json(params) => json_stage(e, params, stream),
                Compiled::Logfmt(params) => logfmt_stage(e, params, stream),
                Compiled::Regexp(re) => {
                    if let Some(caps) = re.captures(&e.line) {
                        let found: Vec<(String, String)> = re
                            .capture_names()
                            .flatten()
                            .filter_map(|name| caps.name(name).map(|m| (name.to_string(), m.as_str().to_string())))
                            .collect();
                        for (k, v) in found {
                            insert_extracted(e, k, v, stream);
                        }
                    }
                }
                Compiled::Pattern(p) => {
                    let found: Vec<(String, String)> = p
                        .extract(&e.line)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    for (k, v) in found {
                        insert_extracted(e, k, v, stream);
                    }
                }
                Compiled::Unpack => unpack_stage(e, stream),
                Compiled::Decolorize => {
                    if e.line.contains('\x1b') {
                        e.line = decolorize(&e.line);
                    }
                }
                Compiled::LabelFilter(f) => {
                    if !eval_filter(f, e) {
                        return Ok(false);
                    }
                }
                Compiled::LineFormat(t) => {
                    e.line = t
                        .render(&Scope {
                            labels: &e.labels,
                            line: &e.line,
                            timestamp: e.timestamp,
                        })
                        .map_err(Error::Execution)?;
                }
                Compiled::LabelFormat(items) => {
                    // Every assignment reads the labels as they were before this stage.
                    let snapshot = e.labels.clone();
                    let mut renamed = Vec::new();
                    for (dst, v) in items {
                        let value = match v {
                            FormatValue::Rename(src) => {
                                renamed.push(src.clone());
                                snapshot.get(src).cloned().unwrap_or_default()
                            }
                            FormatValue::Template(t) => t
                                .render(&Scope {
                                    labels: &snapshot,
                                    line: &e.line,
                                    timestamp: e.timestamp,
                                })
                                .map_err(Error::Execution)?,
                        };
                        e.labels.insert(dst.clone(), value);
                    }
                    for src in renamed {
                        if !items.iter().any(|(dst, _)| *dst == src) {
                            e.labels.remove(&src);
                        }
                    }
                }
                Compiled::Drop(items) => {
                    e.labels.retain(|k, v| !items.iter().any(|s| selects(s, k, v)));
                }
                Compiled::Keep(items) => {
                    e.labels.retain(|k, v| items.iter().any(|s| selects(s, k, v)));
                }
            }
        }
        Ok(true)
    }
}

/// Loki's label filter semantics: string matchers see a missing label as `""`; a numeric,
/// duration or bytes comparison drops a line without the label, passes a line that already has
/// an error, and marks (but keeps) a line whose value does not convert.
pub(crate) fn eval_filter(f: &LabelFilter, e: &mut Entry) -> bool {
    match f {
        LabelFilter::And(a, b) => eval_filter(a, e) && eval_filter(b, e),
        LabelFilter::Or(a, b) => eval_filter(a, e) || eval_filter(b, e),
        LabelFilter::Paren(inner) => eval_filter(inner, e),
        LabelFilter::Matcher(m) => m.matches(e.labels.get(&m.name).map_or("", String::as_str)),
        LabelFilter::Compare {
            label, op, value, kind, ..
        } => {
            // Loki 3: a line without the label is dropped, whatever error an earlier stage
            // left on it (Loki 2 let every errored line through numeric filters).
            let Some(text) = e.labels.get(label) else {
                return false;
            };
            let parsed = match kind {
                CmpKind::Number => text.trim().parse::<f64>().ok(),
                CmpKind::Duration => parse_go_duration(text.trim()).map(|ns| ns as f64 / 1e9),
                CmpKind::Bytes => parse_bytes(text.trim()),
            };
            match parsed {
                Some(v) => op.apply(v, *value),
                None => {
                    // The first error is the more useful one; keep it.
                    if !e.has_error() {
                        let details = format!("cannot convert {text:?} for label {label}");
                        e.set_error(LABEL_FILTER_ERR, details);
                    }
                    true
                }
            }
        }
    }
}

/// Reads the unwrapped label as a number; on failure marks the entry (Loki keeps the sample
/// with `__error__=SampleExtractionErr`, which fails the query unless a filter drops it).
pub(crate) fn unwrap_value(e: &mut Entry, label: &str, conversion: Conversion) -> Option<f64> {
    let text = e.labels.remove(label).unwrap_or_default();
    let v = match conversion {
        Conversion::Number => text.trim().parse::<f64>().ok(),
        Conversion::Duration => parse_go_duration(text.trim()).map(|ns| ns as f64 / 1e9),
        Conversion::Bytes => parse_bytes(text.trim()),
    };
    if v.is_none() && !e.has_error() {
        e.set_error(SAMPLE_ERR, format!("cannot convert {text:?} for label {label}"));
    }
    v
}

/// Removes ANSI SGR/CSI sequences (`ESC [ params letter`).
fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            while let Some(&p) = chars.peek() {
                chars.next();
                if p.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn selects(s: &LabelSelect, name: &str, value: &str) -> bool {
    match s {
        LabelSelect::Name(n) => n == name,
        LabelSelect::Matcher(m) => m.name == name && m.matches(value),
    }
}

/// Label names must be `[a-zA-Z_][a-zA-Z0-9_]*`; anything else becomes `_`.
pub(crate) fn sanitize_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn insert_extracted(e: &mut Entry, name: String, value: String, stream: &BTreeSet<String>) {
    let name = if stream.contains(&name) {
        format!("{name}_extracted")
    } else {
        name
    };
    e.labels.insert(name, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> Entry {
        Entry {
            timestamp: 0,
            line: line.into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn logql_patterns_extract_like_loki() {
        let p = ExtractPattern::new(r#"<ip> - - [<_>] "<method> <path> <_>" <status> <size>"#).unwrap();
        let line = r#"10.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /api/x HTTP/1.1" 200 512"#;
        assert_eq!(
            p.extract(line),
            vec![
                ("ip", "10.0.0.1"),
                ("method", "GET"),
                ("path", "/api/x"),
                ("status", "200"),
                ("size", "512")
            ]
        );
        assert!(ExtractPattern::new("<a><b>").is_err());
        assert!(ExtractPattern::new("no captures").is_err());
        assert!(ExtractPattern::new("<_> x").is_err());
        let lp = LinePattern::new("<_> error <_>").unwrap();
        assert!(lp.matches("a error b"));
        assert!(!lp.matches("error b"));
    }

    proptest::proptest! {
        #[test]
        fn logql_pipeline_never_panics_on_any_line(line in "\\PC{0,60}|[{}\\[\\]\"=<> a-z0-9\\\\:,.\x1b]{0,60}") {
            let q = r#"{a="b"} | json | logfmt | unpack | decolorize | pattern "<x> <_>=<y>" | regexp "(?P<r>.)" | x > 5 | line_format "{{.x}}{{ __line__ }}" | label_format y=x"#;
            let super::super::ast::Expr::Log(log) = super::super::parser::parse(q).unwrap() else { panic!() };
            let p = Pipeline::new(&log.stages).unwrap();
            let mut e = entry(&line);
            let _ = p.process(&mut e, &BTreeSet::new());
        }
    }

    #[test]
    fn logql_decolorize_strips_ansi() {
        assert_eq!(decolorize("\x1b[1;31mbold red\x1b[0m plain"), "bold red plain");
        assert_eq!(decolorize("no escapes"), "no escapes");
    }
}
