//! The TraceQL this engine answers: one spanset filter, `{ cond && cond || ... }`, where a
//! condition compares a field with a value.
//!
//! - Fields: intrinsics `name`, `status` (`error`, `ok`, `unset`), `kind` (`server`, `client`,
//!   `producer`, `consumer`, `internal`, `unspecified`), `duration`, `statusMessage`; attributes
//!   `resource.<key>`, `span.<key>`, and `.<key>` (either; the span's first).
//! - Operators `=`, `!=`, `>`, `>=`, `<`, `<=`, `=~`, `!~` (regexes anchored, as Tempo's are).
//! - Values: strings in double quotes, integers, floats, durations (`1s`, `250ms`, `1m30s`),
//!   `true`/`false`, and the status and kind keywords.
//! - `&&` binds tighter than `||`; parentheses group. `{}` and `{ true }` match every span.
//!
//! Anything else — pipelines (`|`), structural operators (`>>`, `~`), aggregates, `select`,
//! several spansets — is refused with an error naming it, never answered with a guess.

use regex::Regex;
use tributary_storage::read::SpanHead;
use tributary_storage::signals::Span;

use crate::error::{Error, Result};

/// A parsed filter. A chain of `&&` (or `||`) is one flat list, never a nested pair per
/// operator: a tree as deep as a chain is long would make a long generated query overflow the
/// stack when matched or dropped. Nesting comes only from parentheses, bounded by
/// `query.traces.max_query_depth` before parsing.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    All,
    Cond(Cond),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

/// One comparison.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    field: Field,
    op: Op,
    value: Value,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Name,
    Status,
    Kind,
    Duration,
    StatusMessage,
    Resource(String),
    Span(String),
    Either(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    Nre,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    /// A status or kind keyword, as its OTLP number.
    Enum(i32),
}

fn unsupported(feature: &str) -> Error {
    Error::Unsupported {
        feature: format!("TraceQL {feature}"),
    }
}

fn parse_error(message: impl Into<String>) -> Error {
    Error::Parse {
        message: message.into(),
        position: None,
    }
}

/// Parses a query; `Err` names what is wrong or unsupported.
pub(crate) fn parse(query: &str) -> Result<Filter> {
    let q = query.trim();
    if q.is_empty() {
        return Ok(Filter::All);
    }
    let Some(inner) = q.strip_prefix('{') else {
        return Err(parse_error("a TraceQL query is one spanset filter in braces: { ... }"));
    };
    let close = closing_brace(inner).ok_or_else(|| parse_error("missing } closing the spanset filter"))?;
    let (inner, rest) = (&inner[..close], inner[close + 1..].trim());
    if !rest.is_empty() {
        let feature = if rest.starts_with('|') {
            "pipelines (|)".to_string()
        } else if rest.starts_with("&&") || rest.starts_with("||") {
            "queries of several spansets".to_string()
        } else if let Some(op) = [">>", "<<", "!>>", "!<<", "!~", "~", ">", "<"]
            .into_iter()
            .find(|op| rest.starts_with(op))
        {
            format!("structural operator {op}")
        } else {
            return Err(parse_error(format!("unexpected {rest:?} after the spanset filter")));
        };
        return Err(unsupported(&feature));
    }
    let tokens = tokenize(inner)?;
    if tokens.is_empty() {
        return Ok(Filter::All);
    }
    let mut p = Parser { tokens, at: 0 };
    let f = p.or()?;
    if p.at != p.tokens.len() {
        return Err(parse_error(format!("unexpected {:?}", p.tokens[p.at])));
    }
    Ok(f)
}

/// The byte index of the first `}` outside double-quoted strings.
fn closing_brace(q: &str) -> Option<usize> {
    let mut in_str = false;
    let bytes = q.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'}' if !in_str => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(Op),
    And,
    Or,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(parse_error("unterminated string")),
                        Some('"') => break,
                        Some('\\') => {
                            v.push(*chars.get(i + 1).ok_or_else(|| parse_error("unterminated string"))?);
                            i += 2;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(v));
                i += 1;
            }
            _ => {
                let (tok, len) = match two.as_str() {
                    "&&" => (Token::And, 2),
                    "||" => (Token::Or, 2),
                    "!=" => (Token::Op(Op::Ne), 2),
                    ">=" => (Token::Op(Op::Ge), 2),
                    "<=" => (Token::Op(Op::Le), 2),
                    "=~" => (Token::Op(Op::Re), 2),
                    "!~" => (Token::Op(Op::Nre), 2),
                    _ => match c {
                        '=' => (Token::Op(Op::Eq), 1),
                        '>' => (Token::Op(Op::Gt), 1),
                        '<' => (Token::Op(Op::Lt), 1),
                        _ => {
                            let start = i;
                            while i < chars.len()
                                && (chars[i].is_alphanumeric() || matches!(chars[i], '.' | '_' | '-' | '/' | ':'))
                            {
                                i += 1;
                            }
                            if start == i {
                                return Err(parse_error(format!("unexpected character {c:?}")));
                            }
                            out.push(Token::Word(chars[start..i].iter().collect()));
                            continue;
                        }
                    },
                };
                out.push(tok);
                i += len;
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Filter> {
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Filter> {
        let mut terms = vec![self.primary()?];
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            terms.push(self.primary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Filter::And(terms)
        })
    }

    fn primary(&mut self) -> Result<Filter> {
        match self.next() {
            Some(Token::Open) => {
                let f = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(f),
                    _ => Err(parse_error("missing )")),
                }
            }
            Some(Token::Word(w)) if w == "true" && !matches!(self.peek(), Some(Token::Op(_))) => Ok(Filter::All),
            Some(Token::Word(w)) => {
                let field = field(&w)?;
                let op = match self.next() {
                    Some(Token::Op(op)) => op,
                    other => return Err(parse_error(format!("expected an operator after {w}, found {other:?}"))),
                };
                let value = match self.next() {
                    Some(Token::Str(s)) => Value::Str(s),
                    Some(Token::Word(v)) => literal(&field, &v)?,
                    other => return Err(parse_error(format!("expected a value after {w}, found {other:?}"))),
                };
                let regex = match (op, &value) {
                    (Op::Re | Op::Nre, Value::Str(s)) => Some(
                        Regex::new(&format!("^(?:{s})$"))
                            .map_err(|e| parse_error(format!("invalid regex {s:?}: {e}")))?,
                    ),
                    (Op::Re | Op::Nre, _) => return Err(parse_error("=~ and !~ take a string")),
                    _ => None,
                };
                Ok(Filter::Cond(Cond {
                    field,
                    op,
                    value,
                    regex,
                }))
            }
            other => Err(parse_error(format!("expected a condition, found {other:?}"))),
        }
    }
}

fn field(w: &str) -> Result<Field> {
    Ok(match w {
        "name" => Field::Name,
        "status" => Field::Status,
        "kind" => Field::Kind,
        "duration" => Field::Duration,
        "statusMessage" => Field::StatusMessage,
        _ => {
            if let Some(k) = w.strip_prefix("resource.") {
                Field::Resource(k.to_string())
            } else if let Some(k) = w.strip_prefix("span.") {
                Field::Span(k.to_string())
            } else if let Some(k) = w.strip_prefix('.') {
                Field::Either(k.to_string())
            } else if matches!(w, "traceDuration" | "rootName" | "rootServiceName" | "nestedSetParent") {
                return Err(unsupported(&format!("intrinsic {w}")));
            } else {
                return Err(parse_error(format!(
                    "unknown field {w}: use resource.<key>, span.<key> or .<key>"
                )));
            }
        }
    })
}

fn literal(field: &Field, v: &str) -> Result<Value> {
    let keyword = |words: &[(&str, i32)]| words.iter().find(|(w, _)| *w == v).map(|(_, n)| Value::Enum(*n));
    if *field == Field::Status {
        return keyword(&[("unset", 0), ("ok", 1), ("error", 2)])
            .ok_or_else(|| parse_error(format!("unknown status {v}")));
    }
    if *field == Field::Kind {
        return keyword(&[
            ("unspecified", 0),
            ("internal", 1),
            ("server", 2),
            ("client", 3),
            ("producer", 4),
            ("consumer", 5),
        ])
        .ok_or_else(|| parse_error(format!("unknown kind {v}")));
    }
    match v {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Ok(n) = v.parse::<f64>() {
        return Ok(Value::Num(n));
    }
    if let Some(ns) = duration_ns(v) {
        return Ok(Value::Duration(ns));
    }
    Err(parse_error(format!("invalid value {v}")))
}

/// A Go-style duration (`1s`, `250ms`, `1m30s`, `10us`) in nanoseconds.
pub(crate) fn duration_ns(v: &str) -> Option<i64> {
    let v = v.replace('µ', "u");
    humantime::parse_duration(&v)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
}

impl Filter {
    /// Can a span with these narrow fields satisfy the filter? Three-valued underneath:
    /// a condition on attributes is unknown, so only a certain "no" answers false.
    pub(crate) fn may_match(&self, head: &SpanHead<'_>) -> bool {
        self.on_head(head) != Some(false)
    }

    fn on_head(&self, head: &SpanHead<'_>) -> Option<bool> {
        match self {
            Filter::All => Some(true),
            Filter::Cond(c) => c.on_head(head),
            // Kleene's logic: one certain false (true) decides a conjunction (disjunction).
            Filter::And(terms) => {
                let mut all = Some(true);
                for t in terms {
                    match t.on_head(head) {
                        Some(false) => return Some(false),
                        None => all = None,
                        Some(true) => {}
                    }
                }
                all
            }
            Filter::Or(terms) => {
                let mut any = Some(false);
                for t in terms {
                    match t.on_head(head) {
                        Some(true) => return Some(true),
                        None => any = None,
                        Some(false) => {}
                    }
                }
                any
            }
        }
    }

    /// Does `span` satisfy the filter?
    pub(crate) fn matches(&self, span: &Span, attrs: &mut Attrs<'_>) -> bool {
        match self {
            Filter::All => true,
            Filter::Cond(c) => c.matches(span, attrs),
            Filter::And(terms) => terms.iter().all(|t| t.matches(span, attrs)),
            Filter::Or(terms) => terms.iter().any(|t| t.matches(span, attrs)),
        }
    }

    /// `service_name` matchers every match satisfies: the top-level conjuncts
    /// `resource.service.name` `=`, `!=`, `=~` or `!~` a string (a source skips other services'
    /// spans before decoding them).
    pub(crate) fn service_matchers(&self) -> Vec<tributary_storage::types::Matcher> {
        use tributary_storage::types::{MatchOp, Matcher};
        match self {
            Filter::And(terms) => terms.iter().flat_map(Filter::service_matchers).collect(),
            Filter::Cond(Cond {
                field: Field::Resource(k),
                op,
                value: Value::Str(v),
                ..
            }) if k == "service.name" => {
                let op = match op {
                    Op::Eq => MatchOp::Equal,
                    Op::Ne => MatchOp::NotEqual,
                    Op::Re => MatchOp::RegexMatch,
                    Op::Nre => MatchOp::RegexNoMatch,
                    _ => return Vec::new(),
                };
                Matcher::new(op, "service_name", v.clone()).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The smallest duration every match has (from a top-level `duration >`/`>=`), for the read.
    pub(crate) fn min_duration(&self) -> i64 {
        match self {
            Filter::Cond(Cond {
                field: Field::Duration,
                op: Op::Gt | Op::Ge,
                value: Value::Duration(d),
                ..
            }) => *d,
            Filter::And(terms) => terms.iter().map(Filter::min_duration).max().unwrap_or(0),
            Filter::Or(terms) => terms.iter().map(Filter::min_duration).min().unwrap_or(0),
            _ => 0,
        }
    }
}

/// A span's attributes, parsed from JSON when a condition first needs them.
#[derive(Debug, Default)]
pub(crate) struct Attrs<'a> {
    span: Option<serde_json::Map<String, serde_json::Value>>,
    resource: Option<serde_json::Map<String, serde_json::Value>>,
    of: Option<&'a Span>,
}

impl<'a> Attrs<'a> {
    pub(crate) fn of(span: &'a Span) -> Self {
        Self {
            of: Some(span),
            ..Self::default()
        }
    }

    fn get(&mut self, resource: bool, key: &str) -> Option<serde_json::Value> {
        let span = self.of?;
        let slot = if resource { &mut self.resource } else { &mut self.span };
        let text = if resource {
            &span.resource_attributes
        } else {
            &span.attributes
        };
        slot.get_or_insert_with(|| serde_json::from_str(text).unwrap_or_default())
            .get(key)
            .cloned()
    }
}

impl Cond {
    /// The condition on a span's narrow fields: `None` when it needs attributes.
    fn on_head(&self, h: &SpanHead<'_>) -> Option<bool> {
        Some(match &self.field {
            Field::Name => self.compare_str(h.name),
            Field::Status => self.compare_num(h.status_code as f64, &self.value),
            Field::Kind => self.compare_num(h.kind as f64, &self.value),
            Field::Duration => self.compare_num(h.duration as f64, &self.value),
            Field::Resource(k) if k == "service.name" => self.compare_str(h.service_name),
            _ => return None,
        })
    }

    fn compare_str(&self, a: &str) -> bool {
        match (&self.value, &self.regex) {
            (Value::Str(_), Some(re)) => re.is_match(a) == (self.op == Op::Re),
            (Value::Str(b), None) => self.order(a.cmp(b.as_str())),
            _ => self.op == Op::Ne,
        }
    }

    fn matches(&self, span: &Span, attrs: &mut Attrs<'_>) -> bool {
        let head = SpanHead {
            name: &span.name,
            service_name: &span.service_name,
            kind: span.kind,
            status_code: span.status_code,
            duration: span.duration,
        };
        if let Some(known) = self.on_head(&head) {
            return known;
        }
        let actual: Option<serde_json::Value> = match &self.field {
            Field::StatusMessage => return self.compare_str(&span.status_message),
            Field::Name | Field::Status | Field::Kind | Field::Duration => return false,
            Field::Resource(k) => attrs.get(true, k),
            Field::Span(k) => attrs.get(false, k),
            Field::Either(k) => attrs.get(false, k).or_else(|| attrs.get(true, k)),
        };
        let Some(actual) = actual else {
            // A missing attribute matches only `!=` (Tempo: nil != x is true).
            return self.op == Op::Ne;
        };
        match (&actual, &self.value) {
            (serde_json::Value::String(a), Value::Str(_)) => self.compare_str(a),
            (serde_json::Value::Number(n), v) => n.as_f64().is_some_and(|n| self.compare_num(n, v)),
            (serde_json::Value::Bool(a), Value::Bool(b)) => match self.op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                _ => false,
            },
            _ => self.op == Op::Ne,
        }
    }

    fn compare_num(&self, actual: f64, value: &Value) -> bool {
        let want = match value {
            Value::Num(n) => *n,
            Value::Duration(d) => *d as f64,
            Value::Enum(e) => *e as f64,
            _ => return self.op == Op::Ne,
        };
        actual.partial_cmp(&want).is_some_and(|o| self.order(o))
    }

    fn order(&self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self.op {
            Op::Eq => o == Equal,
            Op::Ne => o != Equal,
            Op::Gt => o == Greater,
            Op::Ge => o != Less,
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Re | Op::Nre => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> Span {
        Span {
            name: "GET /cart".into(),
            kind: 2,
            status_code: 2,
            duration: 1_500_000_000,
            service_name: "checkout".into(),
            attributes: r#"{"http.status_code":503,"http.method":"GET","cached":false}"#.into(),
            resource_attributes: r#"{"service.name":"checkout","k8s.namespace.name":"shop"}"#.into(),
            ..Span::default()
        }
    }

    fn check(q: &str) -> bool {
        let s = span();
        parse(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .matches(&s, &mut Attrs::of(&s))
    }

    #[test]
    fn the_common_shapes_match_as_tempo_matches_them() {
        for (q, want) in [
            ("{}", true),
            ("{ true }", true),
            (
                r#"{ resource.service.name = "checkout" && span.http.status_code >= 500 && duration > 1s }"#,
                true,
            ),
            (r#"{ resource.service.name = "cart" }"#, false),
            ("{ status = error }", true),
            ("{ status = ok }", false),
            ("{ kind = server }", true),
            (r#"{ name =~ "GET .*" }"#, true),
            (r#"{ name =~ "GET" }"#, false),
            (r#"{ name !~ "POST.*" }"#, true),
            ("{ duration < 1s }", false),
            ("{ duration >= 1500ms }", true),
            (r#"{ .http.method = "GET" }"#, true),
            (r#"{ .k8s.namespace.name = "shop" }"#, true),
            (r#"{ span.k8s.namespace.name = "shop" }"#, false),
            (r#"{ span.missing = "x" }"#, false),
            (r#"{ span.missing != "x" }"#, true),
            ("{ span.cached = false }", true),
            (r#"{ status = ok || resource.service.name = "checkout" }"#, true),
            (r#"{ (status = ok || kind = client) && duration > 1s }"#, false),
        ] {
            assert_eq!(check(q), want, "{q}");
        }
    }

    #[test]
    fn what_is_not_supported_says_so() {
        for (q, feature) in [
            (r#"{ name = "a" } >> { name = "b" }"#, ">>"),
            (r#"{ name = "a" } | count() > 2"#, "pipelines"),
            ("{ traceDuration > 1s }", "traceDuration"),
            (r#"{ name = "a" } && { name = "b" }"#, "several spansets"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(
                matches!(&e, Error::Unsupported { feature: f } if f.contains(feature)),
                "{q}: {e}"
            );
        }
        assert!(matches!(parse("name = 1"), Err(Error::Parse { .. })));
        assert!(matches!(parse("{ name = }"), Err(Error::Parse { .. })));
        // A `>>` inside a string is a value, not an operator.
        assert!(parse(r#"{ name = "a >> b" }"#).is_ok());
    }

    #[test]
    fn narrow_fields_rule_out_only_what_cannot_match() {
        let head = |name, status_code, duration| SpanHead {
            name,
            service_name: "checkout",
            kind: 2,
            status_code,
            duration,
        };
        let may = |q: &str, h: SpanHead<'_>| parse(q).unwrap().may_match(&h);
        assert!(!may("{ status = error }", head("GET", 0, 1)));
        assert!(may("{ status = error }", head("GET", 2, 1)));
        assert!(
            may(r#"{ status = error && span.x = "y" }"#, head("GET", 2, 1)),
            "unknown is maybe"
        );
        assert!(!may(r#"{ status = error && span.x = "y" }"#, head("GET", 0, 1)));
        assert!(may(r#"{ status = error || span.x = "y" }"#, head("GET", 0, 1)));
        assert!(!may(r#"{ name =~ "POST.*" || duration > 1s }"#, head("GET", 0, 5)));
        assert!(!may(r#"{ resource.service.name = "cart" }"#, head("GET", 0, 5)));
    }

    #[test]
    fn a_service_and_a_duration_floor_are_pushed_down() {
        let m = parse(r#"{ resource.service.name =~ "check.*" && (status = error || duration > 1s) }"#)
            .unwrap()
            .service_matchers();
        assert_eq!(m.len(), 1);
        assert!(m[0].matches("checkout") && !m[0].matches("cart"));
        assert!(
            parse(r#"{ resource.service.name = "a" || status = error }"#)
                .unwrap()
                .service_matchers()
                .is_empty()
        );
        assert!(
            parse(r#"{ span.service.name = "a" }"#)
                .unwrap()
                .service_matchers()
                .is_empty()
        );
        assert_eq!(
            parse("{ duration > 2s && kind = server }").unwrap().min_duration(),
            2_000_000_000
        );
        assert_eq!(parse("{ duration > 2s || kind = server }").unwrap().min_duration(), 0);
    }
}
