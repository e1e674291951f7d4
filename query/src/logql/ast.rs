//! The LogQL syntax tree, and its printer (`Display` prints text that parses back to the same tree).

use std::fmt::{self, Write};

use tributary_storage::types::{MatchOp, Matcher};

/// Nanoseconds, like log timestamps.
pub(crate) type DurationNs = i64;

/// A whole query: a log query (streams of lines) or a metric query (samples).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// `{selector} | stage | stage ...`
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogExpr {
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) stages: Vec<Stage>,
}

/// One `|` stage of a log pipeline.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stage {
    LineFilter(LineFilter),
    Json(Vec<Extraction>),
    Logfmt(Vec<Extraction>),
    /// The regex text; named capture groups become labels.
    Regexp(String),
    /// The pattern text (`<name>` captures, `<_>` skips).
    Pattern(String),
    Unpack,
    Decolorize,
    LabelFilter(LabelFilter),
    /// The template text.
    LineFormat(String),
    LabelFormat(Vec<LabelFormat>),
    Drop(Vec<LabelSelect>),
    Keep(Vec<LabelSelect>),
}

/// `label="path"` of `| json` / `| logfmt` (`path` is the label name itself when written bare).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Extraction {
    pub(crate) label: String,
    pub(crate) path: String,
}

/// `|= "a" or "b"`: the line passes when it passes any alternative (for `!=` / `!~` / `!>`: when
/// it contains none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LineFilter {
    pub(crate) op: LineOp,
    pub(crate) values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineOp {
    Contains,
    NotContains,
    Regex,
    NotRegex,
    Pattern,
    NotPattern,
}

impl LineOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LineOp::Contains => "|=",
            LineOp::NotContains => "!=",
            LineOp::Regex => "|~",
            LineOp::NotRegex => "!~",
            LineOp::Pattern => "|>",
            LineOp::NotPattern => "!>",
        }
    }

    pub(crate) fn is_negative(self) -> bool {
        matches!(self, LineOp::NotContains | LineOp::NotRegex | LineOp::NotPattern)
    }
}

/// A label filter: string matchers, or numeric / duration / bytes comparisons, combined.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `(...)`, kept so the printer writes the grouping back.
    Paren(Box<LabelFilter>),
    Matcher(Matcher),
    Compare {
        label: String,
        op: CmpOp,
        value: f64,
        kind: CmpKind,
        /// The literal as written (`250ms`, `2KB`, `500`), for printing.
        text: String,
    },
}

/// How a label value is read for a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpKind {
    Number,
    /// Go durations, compared in seconds.
    Duration,
    /// Humanized byte sizes (`2KB` = 2000, `2KiB` = 2048).
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    pub(crate) fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// One assignment of `| label_format`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LabelFormat {
    /// `dst=src`: `dst` takes `src`'s value and `src` goes away.
    Rename { dst: String, src: String },
    /// `dst="{{...}}"`.
    Template { dst: String, template: String },
}

/// A `| drop` / `| keep` item: a bare name, or `name="value"` (only when the value matches).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LabelSelect {
    Name(String),
    Matcher(Matcher),
}

/// A metric query.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MetricExpr {
    Range(RangeAgg),
    Vector(VectorAgg),
    Binary(Box<BinaryExpr>),
    Number(f64),
    /// `vector(<number>)`.
    VectorLiteral(f64),
    Paren(Box<MetricExpr>),
}

/// `func(<log expr> [| unwrap ...] [range] [offset o])` with optional grouping.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RangeAgg {
    pub(crate) func: RangeFn,
    /// φ of `quantile_over_time`.
    pub(crate) param: Option<f64>,
    pub(crate) log: LogExpr,
    pub(crate) unwrap: Option<Unwrap>,
    pub(crate) range: DurationNs,
    pub(crate) offset: DurationNs,
    pub(crate) grouping: Option<Grouping>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unwrap {
    pub(crate) label: String,
    pub(crate) conversion: Conversion,
    /// Label filters written after the unwrap (`| unwrap x | __error__=""`).
    pub(crate) filters: Vec<LabelFilter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    Number,
    Duration,
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeFn {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
    SumOverTime,
    AvgOverTime,
    MaxOverTime,
    MinOverTime,
    FirstOverTime,
    LastOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    AbsentOverTime,
}

impl RangeFn {
    pub(crate) const ALL: [RangeFn; 14] = [
        RangeFn::CountOverTime,
        RangeFn::Rate,
        RangeFn::BytesOverTime,
        RangeFn::BytesRate,
        RangeFn::SumOverTime,
        RangeFn::AvgOverTime,
        RangeFn::MaxOverTime,
        RangeFn::MinOverTime,
        RangeFn::FirstOverTime,
        RangeFn::LastOverTime,
        RangeFn::StddevOverTime,
        RangeFn::StdvarOverTime,
        RangeFn::QuantileOverTime,
        RangeFn::AbsentOverTime,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RangeFn::CountOverTime => "count_over_time",
            RangeFn::Rate => "rate",
            RangeFn::BytesOverTime => "bytes_over_time",
            RangeFn::BytesRate => "bytes_rate",
            RangeFn::SumOverTime => "sum_over_time",
            RangeFn::AvgOverTime => "avg_over_time",
            RangeFn::MaxOverTime => "max_over_time",
            RangeFn::MinOverTime => "min_over_time",
            RangeFn::FirstOverTime => "first_over_time",
            RangeFn::LastOverTime => "last_over_time",
            RangeFn::StddevOverTime => "stddev_over_time",
            RangeFn::StdvarOverTime => "stdvar_over_time",
            RangeFn::QuantileOverTime => "quantile_over_time",
            RangeFn::AbsentOverTime => "absent_over_time",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Functions that aggregate unwrapped values, and so need `| unwrap`.
    pub(crate) fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeFn::CountOverTime
                | RangeFn::Rate
                | RangeFn::BytesOverTime
                | RangeFn::BytesRate
                | RangeFn::AbsentOverTime
        )
    }

    /// Functions that count line bytes, which an unwrap would make meaningless.
    pub(crate) fn forbids_unwrap(self) -> bool {
        matches!(self, RangeFn::BytesOverTime | RangeFn::BytesRate)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Grouping {
    pub(crate) without: bool,
    pub(crate) labels: Vec<String>,
}

/// `op [by|without (...)] ([k,] expr)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VectorAgg {
    pub(crate) op: AggOp,
    /// k of topk/bottomk.
    pub(crate) param: Option<f64>,
    pub(crate) grouping: Option<Grouping>,
    pub(crate) expr: Box<MetricExpr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
}

impl AggOp {
    pub(crate) const ALL: [AggOp; 9] = [
        AggOp::Sum,
        AggOp::Avg,
        AggOp::Min,
        AggOp::Max,
        AggOp::Count,
        AggOp::Stddev,
        AggOp::Stdvar,
        AggOp::Topk,
        AggOp::Bottomk,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Count => "count",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BinaryExpr {
    pub(crate) op: BinOp,
    /// `bool` after a comparison: answer 0/1 instead of filtering.
    pub(crate) return_bool: bool,
    /// `on(...)` (true) / `ignoring(...)` (false).
    pub(crate) matching: Option<(bool, Vec<String>)>,
    pub(crate) lhs: MetricExpr,
    pub(crate) rhs: MetricExpr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Binding strength, as in PromQL (higher binds tighter).
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
        )
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

// ---- printing ----

/// A Go-syntax double-quoted string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Durations the way the parser reads them back (largest exact unit).
pub(crate) fn format_duration(ns: DurationNs) -> String {
    const UNITS: [(&str, i64); 7] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    if ns == 0 {
        return "0s".into();
    }
    let (sign, abs) = if ns < 0 {
        ("-", ns.unsigned_abs())
    } else {
        ("", ns as u64)
    };
    for (unit, size) in UNITS {
        if abs % size as u64 == 0 {
            return format!("{sign}{}{unit}", abs / size as u64);
        }
    }
    format!("{sign}{abs}ns")
}

fn write_number(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if v.is_nan() {
        f.write_str("NaN")
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "Inf" } else { "-Inf" })
    } else {
        write!(f, "{v:?}")
    }
}

fn matcher_op(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::RegexMatch => "=~",
        MatchOp::RegexNoMatch => "!~",
    }
}

fn write_matcher(f: &mut fmt::Formatter<'_>, m: &Matcher) -> fmt::Result {
    write!(f, "{}{}{}", m.name, matcher_op(m.op), quote(&m.value))
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::Metric(m) => m.fmt(f),
        }
    }
}

impl fmt::Display for LogExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_matcher(f, m)?;
        }
        f.write_str("}")?;
        for stage in &self.stages {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

fn write_extractions(f: &mut fmt::Formatter<'_>, name: &str, params: &[Extraction]) -> fmt::Result {
    write!(f, "| {name}")?;
    for (i, e) in params.iter().enumerate() {
        f.write_str(if i == 0 { " " } else { ", " })?;
        write!(f, "{}={}", e.label, quote(&e.path))?;
    }
    Ok(())
}

fn write_selects(f: &mut fmt::Formatter<'_>, name: &str, items: &[LabelSelect]) -> fmt::Result {
    write!(f, "| {name} ")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        match item {
            LabelSelect::Name(n) => f.write_str(n)?,
            LabelSelect::Matcher(m) => write_matcher(f, m)?,
        }
    }
    Ok(())
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(lf) => {
                f.write_str(lf.op.as_str())?;
                for (i, v) in lf.values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or")?;
                    }
                    write!(f, " {}", quote(v))?;
                }
                Ok(())
            }
            Stage::Json(p) => write_extractions(f, "json", p),
            Stage::Logfmt(p) => write_extractions(f, "logfmt", p),
            Stage::Regexp(re) => write!(f, "| regexp {}", quote(re)),
            Stage::Pattern(p) => write!(f, "| pattern {}", quote(p)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::Decolorize => f.write_str("| decolorize"),
            Stage::LabelFilter(lf) => write!(f, "| {lf}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", quote(t)),
            Stage::LabelFormat(items) => {
                f.write_str("| label_format ")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match item {
                        LabelFormat::Rename { dst, src } => write!(f, "{dst}={src}")?,
                        LabelFormat::Template { dst, template } => write!(f, "{dst}={}", quote(template))?,
                    }
                }
                Ok(())
            }
            Stage::Drop(items) => write_selects(f, "drop", items),
            Stage::Keep(items) => write_selects(f, "keep", items),
        }
    }
}

impl fmt::Display for LabelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(a, b) => write!(f, "{a} and {b}"),
            LabelFilter::Or(a, b) => write!(f, "{a} or {b}"),
            LabelFilter::Paren(inner) => write!(f, "({inner})"),
            LabelFilter::Matcher(m) => write_matcher(f, m),
            LabelFilter::Compare { label, op, text, .. } => write!(f, "{label}{}{text}", op.as_str()),
        }
    }
}

impl fmt::Display for Grouping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.without { "without" } else { "by" };
        write!(f, "{kind} ({})", self.labels.join(", "))
    }
}

impl fmt::Display for MetricExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Number(v) => write_number(f, *v),
            MetricExpr::VectorLiteral(v) => {
                f.write_str("vector(")?;
                write_number(f, *v)?;
                f.write_str(")")
            }
            MetricExpr::Paren(inner) => write!(f, "({inner})"),
            MetricExpr::Range(r) => {
                write!(f, "{}(", r.func.as_str())?;
                if let Some(p) = r.param {
                    write_number(f, p)?;
                    f.write_str(", ")?;
                }
                write!(f, "{}", r.log)?;
                if let Some(u) = &r.unwrap {
                    match u.conversion {
                        Conversion::Number => write!(f, " | unwrap {}", u.label)?,
                        Conversion::Duration => write!(f, " | unwrap duration({})", u.label)?,
                        Conversion::Bytes => write!(f, " | unwrap bytes({})", u.label)?,
                    }
                    for filter in &u.filters {
                        write!(f, " | {filter}")?;
                    }
                }
                write!(f, " [{}]", format_duration(r.range))?;
                if r.offset != 0 {
                    write!(f, " offset {}", format_duration(r.offset))?;
                }
                f.write_str(")")?;
                if let Some(g) = &r.grouping {
                    write!(f, " {g}")?;
                }
                Ok(())
            }
            MetricExpr::Vector(v) => {
                f.write_str(v.op.as_str())?;
                if let Some(g) = &v.grouping {
                    write!(f, " {g} ")?;
                }
                f.write_str("(")?;
                if let Some(p) = v.param {
                    write_number(f, p)?;
                    f.write_str(", ")?;
                }
                write!(f, "{})", v.expr)
            }
            MetricExpr::Binary(b) => {
                write!(f, "{} {}", b.lhs, b.op.as_str())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some((on, labels)) = &b.matching {
                    let kind = if *on { "on" } else { "ignoring" };
                    write!(f, " {kind}({})", labels.join(", "))?;
                }
                write!(f, " {}", b.rhs)
            }
        }
    }
}
