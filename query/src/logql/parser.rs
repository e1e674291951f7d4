//! A hand-written LogQL lexer and recursive-descent parser.
//!
//! Errors carry Loki's wording: `at line 1, col 5: syntax error: unexpected IDENTIFIER, expecting
//! STRING` (the HTTP layer prefixes `parse error `), or, for errors that are not about one token,
//! Loki's unpositioned messages (`queries require at least one regexp or equality matcher ...`).

use tributary_storage::types::{MatchOp, Matcher};

use super::ast::*;
use super::units::{parse_bytes, parse_go_duration};
use crate::error::{Error, Result};

/// Parses a whole LogQL query and checks what Loki checks after parsing.
pub fn parse(input: &str) -> Result<Expr> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: input,
    };
    let expr = if p.peek() == &Tok::LBrace {
        Expr::Log(p.log_expr(false)?.0)
    } else {
        Expr::Metric(p.metric_expr(0)?)
    };
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected(None));
    }
    validate(&expr)?;
    Ok(expr)
}

/// Parses a stream selector alone (`/series?match[]=`, `/labels?query=`): `{a="b", ...}`.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        src: input,
    };
    let matchers = p.selector()?;
    if p.peek() != &Tok::Eof {
        return Err(p.unexpected(Some("$end")));
    }
    Ok(matchers)
}

fn parse_error(message: impl Into<String>) -> Error {
    Error::Parse {
        message: message.into(),
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64, String),
    Dur(i64, String),
    Bytes(f64, String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Pipe,
    PipeEq,
    PipeTilde,
    PipeGt,
    Neq,
    NotTilde,
    NotGt,
    Eq,
    EqTilde,
    EqEq,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

impl Tok {
    /// Loki's (yacc's) name for a token in error messages.
    fn describe(&self) -> String {
        match self {
            Tok::Ident(_) => "IDENTIFIER".into(),
            Tok::Str(_) => "STRING".into(),
            Tok::Num(..) => "NUMBER".into(),
            Tok::Dur(..) => "DURATION".into(),
            Tok::Bytes(..) => "BYTES".into(),
            Tok::Eof => "$end".into(),
            other => other.punct().into(),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Pipe => "|",
            Tok::PipeEq => "|=",
            Tok::PipeTilde => "|~",
            Tok::PipeGt => "|>",
            Tok::Neq => "!=",
            Tok::NotTilde => "!~",
            Tok::NotGt => "!>",
            Tok::Eq => "=",
            Tok::EqTilde => "=~",
            Tok::EqEq => "==",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            _ => "",
        }
    }
}

/// Line and column (1-based, in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn positioned(src: &str, offset: usize, what: &str) -> Error {
    let (line, col) = line_col(src, offset);
    parse_error(format!("at line {line}, col {col}: {what}"))
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // Loki accepts `#` comments to the end of the line.
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let two = bytes.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b'|', Some(b'=')) => (Tok::PipeEq, 2),
            (b'|', Some(b'~')) => (Tok::PipeTilde, 2),
            (b'|', Some(b'>')) => (Tok::PipeGt, 2),
            (b'|', _) => (Tok::Pipe, 1),
            (b'!', Some(b'=')) => (Tok::Neq, 2),
            (b'!', Some(b'~')) => (Tok::NotTilde, 2),
            (b'!', Some(b'>')) => (Tok::NotGt, 2),
            (b'=', Some(b'~')) => (Tok::EqTilde, 2),
            (b'=', Some(b'=')) => (Tok::EqEq, 2),
            (b'=', _) => (Tok::Eq, 1),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'>', _) => (Tok::Gt, 1),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'<', _) => (Tok::Lt, 1),
            (b'{', _) => (Tok::LBrace, 1),
            (b'}', _) => (Tok::RBrace, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'+', _) => (Tok::Add, 1),
            (b'-', _) => (Tok::Sub, 1),
            (b'*', _) => (Tok::Mul, 1),
            (b'/', _) => (Tok::Div, 1),
            (b'%', _) => (Tok::Mod, 1),
            (b'^', _) => (Tok::Pow, 1),
            (b'"', _) => {
                let (s, len) = lex_quoted(src, i)?;
                (Tok::Str(s), len)
            }
            (b'`', _) => match src[i + 1..].find('`') {
                Some(end) => (Tok::Str(src[i + 1..i + 1 + end].to_string()), end + 2),
                None => return Err(positioned(src, i, "literal not terminated")),
            },
            (c, _) if c.is_ascii_digit() || (c == b'.' && two.is_some_and(|d| d.is_ascii_digit())) => {
                lex_number(src, i)?
            }
            (c, _) if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                (Tok::Ident(src[i..j].to_string()), j - i)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(positioned(
                    src,
                    i,
                    &format!("syntax error: unexpected character {ch:?}"),
                ));
            }
        };
        out.push((tok, start));
        i += len;
    }
    out.push((Tok::Eof, src.len()));
    Ok(out)
}

/// A Go-syntax double-quoted string starting at `start`; returns the value and the bytes read.
fn lex_quoted(src: &str, start: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 2)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' | '"' | '\'' => out.push(e),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                        let code = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == n);
                        match code.and_then(char::from_u32) {
                            Some(ch) => out.push(ch),
                            None => return Err(positioned(src, start, "invalid char escape")),
                        }
                    }
                    _ => return Err(positioned(src, start, "invalid char escape")),
                }
            }
            c => out.push(c),
        }
    }
    Err(positioned(src, start, "literal not terminated"))
}

/// A number, a duration (`5m`, `1h30m`, `250ms`) or a byte size (`2KB`, `10MiB`).
fn lex_number(src: &str, start: usize) -> Result<(Tok, usize)> {
    let bytes = src.as_bytes();
    let mut j = start;
    while j < bytes.len() && (bytes[j].is_ascii_digit() || bytes[j] == b'.') {
        j += 1;
    }
    // An exponent (`1e3`, `2.5E-3`) makes a plain number.
    if j < bytes.len() && (bytes[j] == b'e' || bytes[j] == b'E') {
        let mut k = j + 1;
        if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
            k += 1;
        }
        if k < bytes.len() && bytes[k].is_ascii_digit() {
            while k < bytes.len() && bytes[k].is_ascii_digit() {
                k += 1;
            }
            if !(k < bytes.len() && bytes[k].is_ascii_alphabetic()) {
                let text = &src[start..k];
                let v: f64 = text
                    .parse()
                    .map_err(|_| positioned(src, start, "syntax error: invalid number"))?;
                return Ok((Tok::Num(v, text.to_string()), k - start));
            }
        }
    }
    // Durations may chain units and numbers (`1h30m`); sizes end in letters.
    let mut k = j;
    while k < bytes.len() && (bytes[k].is_ascii_alphanumeric() || bytes[k] == b'.') {
        k += 1;
    }
    let text = &src[start..k];
    if k == j {
        let v: f64 = text
            .parse()
            .map_err(|_| positioned(src, start, "syntax error: invalid number"))?;
        return Ok((Tok::Num(v, text.to_string()), k - start));
    }
    if let Some(ns) = parse_go_duration(text) {
        return Ok((Tok::Dur(ns, text.to_string()), k - start));
    }
    if let Some(b) = parse_bytes(text) {
        return Ok((Tok::Bytes(b, text.to_string()), k - start));
    }
    Err(positioned(
        src,
        start,
        &format!("syntax error: invalid duration or byte size {text:?}"),
    ))
}

// ---------------------------------------------------------------- parser

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    src: &'a str,
}

/// Words that end a label filter or a pipeline when they appear where a label name could.
const KEYWORDS: [&str; 8] = ["and", "or", "unless", "by", "without", "offset", "bool", "on"];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)].0
    }

    /// Always advances (past the end too), so `self.pos -= n` undoes exactly `n` calls.
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    /// Byte offset of the current token.
    fn offset(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }

    fn unexpected(&self, expecting: Option<&str>) -> Error {
        let (tok, offset) = &self.toks[self.pos.min(self.toks.len() - 1)];
        let mut what = format!("syntax error: unexpected {}", tok.describe());
        if let Some(e) = expecting {
            what.push_str(", expecting ");
            what.push_str(e);
        }
        positioned(self.src, *offset, &what)
    }

    fn expect(&mut self, tok: Tok) -> Result<()> {
        if self.peek() == &tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(Some(tok.punct())))
        }
    }

    fn ident(&mut self) -> Result<String> {
        match self.peek() {
            Tok::Ident(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(Some("IDENTIFIER"))),
        }
    }

    fn string(&mut self) -> Result<String> {
        match self.peek() {
            Tok::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(Some("STRING"))),
        }
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == word)
    }

    fn duration(&mut self) -> Result<DurationNs> {
        let negative = if self.peek() == &Tok::Sub {
            self.next();
            true
        } else {
            false
        };
        match self.peek() {
            Tok::Dur(ns, _) => {
                let ns = *ns;
                self.next();
                Ok(if negative { -ns } else { ns })
            }
            _ => Err(self.unexpected(Some("DURATION"))),
        }
    }

    fn number(&mut self) -> Result<f64> {
        let negative = if self.peek() == &Tok::Sub {
            self.next();
            true
        } else {
            false
        };
        let v = match self.peek() {
            Tok::Num(v, _) => *v,
            Tok::Ident(s) if s.eq_ignore_ascii_case("inf") => f64::INFINITY,
            Tok::Ident(s) if s.eq_ignore_ascii_case("nan") => f64::NAN,
            _ => return Err(self.unexpected(Some("NUMBER"))),
        };
        self.next();
        Ok(if negative { -v } else { v })
    }

    // ---- selectors and pipelines

    fn selector(&mut self) -> Result<Vec<Matcher>> {
        self.expect(Tok::LBrace)?;
        let mut matchers = Vec::new();
        while self.peek() != &Tok::RBrace {
            let offset = self.offset();
            let name = self.ident()?;
            let op = match self.next() {
                Tok::Eq => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::EqTilde => MatchOp::RegexMatch,
                Tok::NotTilde => MatchOp::RegexNoMatch,
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected(Some("=, !=, =~ or !~")));
                }
            };
            let value = self.string()?;
            matchers.push(matcher(self.src, offset, op, name, value)?);
            if self.peek() == &Tok::Comma {
                self.next();
            } else if self.peek() != &Tok::RBrace {
                return Err(self.unexpected(Some(", or }")));
            }
        }
        self.next();
        Ok(matchers)
    }

    /// `{...} stages`; in a range aggregation (`in_range`) also `[range]` and `| unwrap`.
    /// Returns the expression, the range and offset when read, and the unwrap.
    fn log_expr(&mut self, in_range: bool) -> Result<(LogExpr, Option<DurationNs>, Option<Unwrap>)> {
        let matchers = self.selector()?;
        let mut range = None;
        if in_range && self.peek() == &Tok::LBracket {
            range = Some(self.range()?);
        }
        let mut stages = Vec::new();
        let mut unwrap = None;
        loop {
            match self.peek() {
                Tok::PipeEq | Tok::Neq | Tok::PipeTilde | Tok::NotTilde | Tok::PipeGt | Tok::NotGt => {
                    if unwrap.is_some() {
                        return Err(self.unexpected(Some("|")));
                    }
                    stages.push(Stage::LineFilter(self.line_filter()?));
                }
                Tok::Pipe => {
                    self.next();
                    if unwrap.is_some() {
                        // Only label filters may follow an unwrap.
                        let filter = self.label_filter_or()?;
                        if let Some(u) = unwrap.as_mut() {
                            let u: &mut Unwrap = u;
                            u.filters.push(filter);
                        }
                        continue;
                    }
                    if in_range && self.is_ident("unwrap") {
                        self.next();
                        unwrap = Some(self.unwrap()?);
                        continue;
                    }
                    stages.push(self.stage()?);
                }
                _ => break,
            }
        }
        Ok((LogExpr { matchers, stages }, range, unwrap))
    }

    fn range(&mut self) -> Result<DurationNs> {
        self.expect(Tok::LBracket)?;
        let d = match self.peek() {
            Tok::Dur(ns, _) => *ns,
            _ => return Err(self.unexpected(Some("DURATION"))),
        };
        self.next();
        self.expect(Tok::RBracket)?;
        Ok(d)
    }

    fn line_filter(&mut self) -> Result<LineFilter> {
        let op = match self.next() {
            Tok::PipeEq => LineOp::Contains,
            Tok::Neq => LineOp::NotContains,
            Tok::PipeTilde => LineOp::Regex,
            Tok::NotTilde => LineOp::NotRegex,
            Tok::PipeGt => LineOp::Pattern,
            _ => LineOp::NotPattern,
        };
        let mut values = vec![self.line_filter_value(op)?];
        while self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
            self.next();
            values.push(self.line_filter_value(op)?);
        }
        Ok(LineFilter { op, values })
    }

    fn line_filter_value(&mut self, op: LineOp) -> Result<String> {
        let offset = self.offset();
        let v = self.string()?;
        match op {
            LineOp::Regex | LineOp::NotRegex => {
                regex::Regex::new(&v).map_err(|e| positioned(self.src, offset, &format!("invalid regex: {e}")))?;
            }
            LineOp::Pattern | LineOp::NotPattern => {
                super::pipeline::LinePattern::new(&v)
                    .map_err(|e| positioned(self.src, offset, &format!("invalid pattern: {e}")))?;
            }
            _ => {}
        }
        Ok(v)
    }

    fn stage(&mut self) -> Result<Stage> {
        let offset = self.offset();
        let word = match self.peek() {
            Tok::Ident(w) if !KEYWORDS.contains(&w.as_str()) => w.clone(),
            Tok::LParen => return Ok(Stage::LabelFilter(self.label_filter_or()?)),
            _ => return Err(self.unexpected(Some("a parser, a formatter or a label filter"))),
        };
        // A word followed by a comparison is a label filter on a label of that name, except a
        // stage keyword followed by `!=`/`!~`, which (as in Loki) is the stage and a line filter.
        let stage_word = matches!(
            word.as_str(),
            "json"
                | "logfmt"
                | "unpack"
                | "decolorize"
                | "regexp"
                | "pattern"
                | "line_format"
                | "label_format"
                | "drop"
                | "keep"
        );
        if is_filter_op(self.peek_at(1)) && !(stage_word && matches!(self.peek_at(1), Tok::Neq | Tok::NotTilde)) {
            return Ok(Stage::LabelFilter(self.label_filter_or()?));
        }
        self.next();
        let stage = match word.as_str() {
            "json" => Stage::Json(self.extractions()?),
            "logfmt" => Stage::Logfmt(self.extractions()?),
            "regexp" => {
                let re = self.string()?;
                super::pipeline::check_regexp(&re).map_err(|e| positioned(self.src, offset, &e))?;
                Stage::Regexp(re)
            }
            "pattern" => {
                let p = self.string()?;
                super::pipeline::ExtractPattern::new(&p).map_err(|e| positioned(self.src, offset, &e))?;
                Stage::Pattern(p)
            }
            "unpack" => Stage::Unpack,
            "decolorize" => Stage::Decolorize,
            "line_format" => {
                let t = self.string()?;
                super::template::Template::parse(&t).map_err(|e| positioned(self.src, offset, &e))?;
                Stage::LineFormat(t)
            }
            "label_format" => {
                let mut items = Vec::new();
                loop {
                    let dst = self.ident()?;
                    self.expect(Tok::Eq)?;
                    let item = match self.next() {
                        Tok::Ident(src) => LabelFormat::Rename { dst, src },
                        Tok::Str(template) => {
                            super::template::Template::parse(&template)
                                .map_err(|e| positioned(self.src, offset, &e))?;
                            LabelFormat::Template { dst, template }
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected(Some("IDENTIFIER or STRING")));
                        }
                    };
                    items.push(item);
                    if self.peek() != &Tok::Comma {
                        break;
                    }
                    self.next();
                }
                Stage::LabelFormat(items)
            }
            "drop" => Stage::Drop(self.selects()?),
            "keep" => Stage::Keep(self.selects()?),
            "unwrap" => return Err(positioned(self.src, offset, "syntax error: unexpected unwrap")),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected(None));
            }
        };
        Ok(stage)
    }

    /// Parameters of `| json` / `| logfmt`: `label="path"` or a bare `label`, comma separated.
    fn extractions(&mut self) -> Result<Vec<Extraction>> {
        let mut out = Vec::new();
        while let Tok::Ident(label) = self.peek() {
            if KEYWORDS.contains(&label.as_str()) {
                break;
            }
            let label = label.clone();
            self.next();
            let path = if self.peek() == &Tok::Eq {
                self.next();
                self.string()?
            } else {
                label.clone()
            };
            out.push(Extraction { label, path });
            if self.peek() != &Tok::Comma {
                break;
            }
            self.next();
        }
        Ok(out)
    }

    fn selects(&mut self) -> Result<Vec<LabelSelect>> {
        let mut out = Vec::new();
        loop {
            let offset = self.offset();
            let name = self.ident()?;
            let op = match self.peek() {
                Tok::Eq => Some(MatchOp::Equal),
                Tok::Neq => Some(MatchOp::NotEqual),
                Tok::EqTilde => Some(MatchOp::RegexMatch),
                Tok::NotTilde => Some(MatchOp::RegexNoMatch),
                _ => None,
            };
            match op {
                Some(op) => {
                    self.next();
                    let value = self.string()?;
                    out.push(LabelSelect::Matcher(matcher(self.src, offset, op, name, value)?));
                }
                None => out.push(LabelSelect::Name(name)),
            }
            if self.peek() != &Tok::Comma {
                return Ok(out);
            }
            self.next();
        }
    }

    fn unwrap(&mut self) -> Result<Unwrap> {
        let word = self.ident()?;
        let conversion = match word.as_str() {
            "duration" | "duration_seconds" if self.peek() == &Tok::LParen => Some(Conversion::Duration),
            "bytes" if self.peek() == &Tok::LParen => Some(Conversion::Bytes),
            _ => None,
        };
        let (label, conversion) = match conversion {
            Some(c) => {
                self.next();
                let label = self.ident()?;
                self.expect(Tok::RParen)?;
                (label, c)
            }
            None => (word, Conversion::Number),
        };
        Ok(Unwrap {
            label,
            conversion,
            filters: Vec::new(),
        })
    }

    // ---- label filters

    fn label_filter_or(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_and()?;
        while self.is_ident("or") {
            self.next();
            let rhs = self.label_filter_and()?;
            lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_and(&mut self) -> Result<LabelFilter> {
        let mut lhs = self.label_filter_primary()?;
        loop {
            let next_is_filter = |p: &Self, at: usize| match p.peek_at(at) {
                Tok::LParen => true,
                Tok::Ident(w) => !KEYWORDS.contains(&w.as_str()) && is_filter_op(p.peek_at(at + 1)),
                _ => false,
            };
            if self.is_ident("and") || (self.peek() == &Tok::Comma && next_is_filter(self, 1)) {
                self.next();
            } else if !(matches!(self.peek(), Tok::Ident(_)) && next_is_filter(self, 0)) {
                break;
            }
            let rhs = self.label_filter_primary()?;
            lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn label_filter_primary(&mut self) -> Result<LabelFilter> {
        if self.peek() == &Tok::LParen {
            self.next();
            let inner = self.label_filter_or()?;
            self.expect(Tok::RParen)?;
            return Ok(LabelFilter::Paren(Box::new(inner)));
        }
        let offset = self.offset();
        let label = self.ident()?;
        let op_tok = self.next();
        let negative = self.peek() == &Tok::Sub;
        if negative {
            self.next();
        }
        let value = self.next();
        let cmp = match op_tok {
            Tok::Eq | Tok::EqEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Ne,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::EqTilde | Tok::NotTilde => CmpOp::Eq,
            _ => {
                self.pos -= 2 + usize::from(negative);
                return Err(self.unexpected(Some("a comparison")));
            }
        };
        let sign = if negative { -1.0 } else { 1.0 };
        let prefix = if negative { "-" } else { "" };
        let (kind, v, text) = match (&op_tok, value) {
            (Tok::Eq | Tok::EqEq | Tok::Neq | Tok::EqTilde | Tok::NotTilde, Tok::Str(s)) if !negative => {
                let op = match op_tok {
                    Tok::Neq => MatchOp::NotEqual,
                    Tok::EqTilde => MatchOp::RegexMatch,
                    Tok::NotTilde => MatchOp::RegexNoMatch,
                    _ => MatchOp::Equal,
                };
                return Ok(LabelFilter::Matcher(matcher(self.src, offset, op, label, s)?));
            }
            (Tok::EqTilde | Tok::NotTilde, _) => {
                self.pos -= 1;
                return Err(self.unexpected(Some("STRING")));
            }
            (_, Tok::Num(v, text)) => (CmpKind::Number, v, text),
            (_, Tok::Dur(ns, text)) => (CmpKind::Duration, ns as f64 / 1e9, text),
            (_, Tok::Bytes(b, text)) => (CmpKind::Bytes, b, text),
            _ => {
                self.pos -= 1;
                return Err(self.unexpected(Some("NUMBER, DURATION or BYTES")));
            }
        };
        Ok(LabelFilter::Compare {
            label,
            op: cmp,
            value: sign * v,
            kind,
            text: format!("{prefix}{text}"),
        })
    }

    // ---- metric expressions

    fn metric_expr(&mut self, min_prec: u8) -> Result<MetricExpr> {
        let mut lhs = self.metric_primary()?;
        loop {
            let op = match self.peek() {
                Tok::Add => BinOp::Add,
                Tok::Sub => BinOp::Sub,
                Tok::Mul => BinOp::Mul,
                Tok::Div => BinOp::Div,
                Tok::Mod => BinOp::Mod,
                Tok::Pow => BinOp::Pow,
                Tok::EqEq => BinOp::Eq,
                Tok::Neq => BinOp::Ne,
                Tok::Gt => BinOp::Gt,
                Tok::Ge => BinOp::Ge,
                Tok::Lt => BinOp::Lt,
                Tok::Le => BinOp::Le,
                Tok::Ident(w) if w == "and" => BinOp::And,
                Tok::Ident(w) if w == "or" => BinOp::Or,
                Tok::Ident(w) if w == "unless" => BinOp::Unless,
                _ => break,
            };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.next();
            let return_bool = if self.is_ident("bool") {
                if !op.is_comparison() {
                    return Err(self.unexpected(None));
                }
                self.next();
                true
            } else {
                false
            };
            let matching = if self.is_ident("on") || self.is_ident("ignoring") {
                let on = self.is_ident("on");
                self.next();
                Some((on, self.label_list()?))
            } else {
                None
            };
            // `^` is right-associative, everything else left-associative.
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.metric_expr(next_min)?;
            lhs = MetricExpr::Binary(Box::new(BinaryExpr {
                op,
                return_bool,
                matching,
                lhs,
                rhs,
            }));
        }
        Ok(lhs)
    }

    fn label_list(&mut self) -> Result<Vec<String>> {
        self.expect(Tok::LParen)?;
        let mut out = Vec::new();
        while self.peek() != &Tok::RParen {
            out.push(self.ident()?);
            if self.peek() == &Tok::Comma {
                self.next();
            } else if self.peek() != &Tok::RParen {
                return Err(self.unexpected(Some(", or )")));
            }
        }
        self.next();
        Ok(out)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>> {
        let without = match self.peek() {
            Tok::Ident(w) if w == "by" => false,
            Tok::Ident(w) if w == "without" => true,
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Grouping {
            without,
            labels: self.label_list()?,
        }))
    }

    fn metric_primary(&mut self) -> Result<MetricExpr> {
        match self.peek().clone() {
            Tok::LParen => {
                self.next();
                let inner = self.metric_expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(MetricExpr::Paren(Box::new(inner)))
            }
            Tok::Num(..) | Tok::Sub | Tok::Add => {
                if self.peek() == &Tok::Add {
                    self.next();
                }
                Ok(MetricExpr::Number(self.number()?))
            }
            Tok::Ident(w) => {
                if let Some(func) = RangeFn::from_name(&w) {
                    self.next();
                    return self.range_agg(func);
                }
                if let Some(op) = AggOp::from_name(&w) {
                    self.next();
                    return self.vector_agg(op);
                }
                if w == "vector" && self.peek_at(1) == &Tok::LParen {
                    self.next();
                    self.next();
                    let v = self.number()?;
                    self.expect(Tok::RParen)?;
                    return Ok(MetricExpr::VectorLiteral(v));
                }
                if w.eq_ignore_ascii_case("inf") || w.eq_ignore_ascii_case("nan") {
                    return Ok(MetricExpr::Number(self.number()?));
                }
                Err(self.unexpected(None))
            }
            Tok::LBrace => Err(positioned(
                self.src,
                self.offset(),
                "syntax error: unexpected {, a log query cannot be combined with a metric query",
            )),
            _ => Err(self.unexpected(None)),
        }
    }

    fn range_agg(&mut self, func: RangeFn) -> Result<MetricExpr> {
        self.expect(Tok::LParen)?;
        let param = if func == RangeFn::QuantileOverTime {
            let v = self.number()?;
            self.expect(Tok::Comma)?;
            Some(v)
        } else {
            None
        };
        let (log, early_range, unwrap) = self.log_expr(true)?;
        let range = match early_range {
            Some(r) => r,
            None => self.range()?,
        };
        let offset = if self.is_ident("offset") {
            self.next();
            self.duration()?
        } else {
            0
        };
        self.expect(Tok::RParen)?;
        let grouping = self.grouping()?;
        Ok(MetricExpr::Range(RangeAgg {
            func,
            param,
            log,
            unwrap,
            range,
            offset,
            grouping,
        }))
    }

    fn vector_agg(&mut self, op: AggOp) -> Result<MetricExpr> {
        let mut grouping = self.grouping()?;
        self.expect(Tok::LParen)?;
        let param = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let v = self.number()?;
            self.expect(Tok::Comma)?;
            Some(v)
        } else {
            None
        };
        let expr = self.metric_expr(0)?;
        self.expect(Tok::RParen)?;
        if grouping.is_none() {
            grouping = self.grouping()?;
        }
        Ok(MetricExpr::Vector(VectorAgg {
            op,
            param,
            grouping,
            expr: Box::new(expr),
        }))
    }
}

fn is_filter_op(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq | Tok::Neq | Tok::EqTilde | Tok::NotTilde | Tok::EqEq | Tok::Gt | Tok::Ge | Tok::Lt | Tok::Le
    )
}

fn matcher(src: &str, offset: usize, op: MatchOp, name: String, value: String) -> Result<Matcher> {
    Matcher::new(op, name, value).map_err(|e| positioned(src, offset, &format!("invalid regex: {e}")))
}

// ---------------------------------------------------------------- checks after parsing

fn validate(expr: &Expr) -> Result<()> {
    match expr {
        Expr::Log(l) => validate_selector(&l.matchers),
        Expr::Metric(m) => validate_metric(m),
    }
}

/// Loki refuses selectors that would match every stream.
fn validate_selector(matchers: &[Matcher]) -> Result<()> {
    if matchers.iter().any(|m| !m.matches("")) {
        return Ok(());
    }
    Err(parse_error(
        "queries require at least one regexp or equality matcher that does not have an empty-compatible value. \
         For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
    ))
}

fn validate_metric(expr: &MetricExpr) -> Result<()> {
    match expr {
        MetricExpr::Number(_) | MetricExpr::VectorLiteral(_) => Ok(()),
        MetricExpr::Paren(inner) => validate_metric(inner),
        MetricExpr::Binary(b) => {
            validate_metric(&b.lhs)?;
            validate_metric(&b.rhs)?;
            let scalar = |e: &MetricExpr| is_scalar(e);
            if b.op.is_set() && (scalar(&b.lhs) || scalar(&b.rhs)) {
                return Err(parse_error(format!(
                    "unexpected literal for right leg of logical/set binary operation ({}): {}",
                    b.op.as_str(),
                    b.rhs
                )));
            }
            if b.op.is_comparison() && !b.return_bool && scalar(&b.lhs) && scalar(&b.rhs) {
                return Err(parse_error("comparisons between scalars must use BOOL modifier"));
            }
            Ok(())
        }
        MetricExpr::Vector(v) => {
            if let Some(k) = v.param
                && (k.fract() != 0.0 || k < 1.0)
            {
                return Err(parse_error(format!(
                    "invalid parameter for {}: {k}, must be a positive integer",
                    v.op.as_str()
                )));
            }
            validate_metric(&v.expr)
        }
        MetricExpr::Range(r) => {
            validate_selector(&r.log.matchers)?;
            if r.func.needs_unwrap() && r.unwrap.is_none() {
                return Err(parse_error(format!(
                    "invalid aggregation {} without unwrap",
                    r.func.as_str()
                )));
            }
            if r.unwrap.is_some() && r.func.forbids_unwrap() {
                return Err(parse_error(format!(
                    "invalid aggregation {} with unwrap",
                    r.func.as_str()
                )));
            }
            if r.range <= 0 {
                return Err(parse_error("range must be positive"));
            }
            Ok(())
        }
    }
}

/// True for expressions that evaluate to a scalar (number literals and arithmetic on them).
pub(crate) fn is_scalar(e: &MetricExpr) -> bool {
    match e {
        MetricExpr::Number(_) => true,
        MetricExpr::Paren(inner) => is_scalar(inner),
        MetricExpr::Binary(b) => is_scalar(&b.lhs) && is_scalar(&b.rhs),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(q: &str) -> String {
        match parse(q) {
            Err(Error::Parse { message }) => message,
            other => panic!("{q}: expected a parse error, got {other:?}"),
        }
    }

    fn roundtrip(q: &str) -> Expr {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(e, again, "{q} printed as {printed}");
        e
    }

    #[test]
    fn logql_parses_the_issue_examples() {
        let e = roundtrip(r#"{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500"#);
        let Expr::Log(l) = e else { panic!() };
        assert_eq!(l.matchers.len(), 2);
        assert_eq!(l.stages.len(), 3);
        assert!(
            matches!(&l.stages[2], Stage::LabelFilter(LabelFilter::Compare { op: CmpOp::Ge, value, .. }) if *value == 500.0)
        );
        let e = roundtrip(r#"sum by (cluster) (rate({service_name="checkout"} |= "error" [5m]))"#);
        let Expr::Metric(MetricExpr::Vector(v)) = e else {
            panic!()
        };
        assert_eq!(v.grouping.unwrap().labels, vec!["cluster"]);
    }

    #[test]
    fn logql_parses_every_stage() {
        for q in [
            r#"{a="b", c=~"x.*", d!="e", f!~"g"}"#,
            r#"{a="b"} |= "x" != "y" |~ `\d+` !~ "z" |> "<_> error <_>" !> "<_> debug""#,
            r#"{a="b"} |= "x" or "y" != "z" or "w""#,
            r#"{a="b"} | json | json first="servers[0]", ua="h[\"User-Agent\"]" | logfmt | logfmt lvl="level""#,
            r#"{a="b"} | regexp "(?P<ip>\\S+) (?P<rest>.*)" | pattern "<ip> - <_>" | unpack | decolorize"#,
            r#"{a="b"} | json | status == 500 and dur > 250ms or size <= 2KB, x != "y" | (a = "1" or b =~ "2.*")"#,
            r#"{a="b"} | logfmt | status>=400 status<500 | level!~"debug|info""#,
            r#"{a="b"} | line_format "{{.a}} {{ .b | ToUpper }}" | label_format x=y, z="{{.w}}""#,
            r#"{a="b"} | drop a, b, c="d" | keep e, f"#,
            r#"{a="b"} | json | n > -1.5 | m == 1e3"#,
        ] {
            roundtrip(q);
        }
    }

    #[test]
    fn logql_parses_metric_queries() {
        for q in [
            r#"count_over_time({a="b"}[5m])"#,
            r#"count_over_time({a="b"}[5m] |= "x" | json)"#,
            r#"rate({a="b"} |= "x" [1h30m] offset 10m)"#,
            r#"bytes_over_time({a="b"}[1m])"#,
            r#"bytes_rate({a="b"}[1m])"#,
            r#"sum_over_time({a="b"} | json | unwrap n [1m]) by (a)"#,
            r#"avg_over_time({a="b"} | logfmt | unwrap duration(d) | __error__="" [1m])"#,
            r#"max_over_time({a="b"} | json | unwrap bytes(size) [1m]) without (x)"#,
            r#"quantile_over_time(0.99, {a="b"} | json | unwrap latency [5m]) by (svc)"#,
            r#"absent_over_time({a="b"}[5m])"#,
            r#"first_over_time({a="b"} | json | unwrap n [5m])"#,
            r#"last_over_time({a="b"} | json | unwrap n [5m])"#,
            r#"stddev_over_time({a="b"} | json | unwrap n [5m])"#,
            r#"min_over_time({a="b"} | json | unwrap n [5m])"#,
            r#"sum(count_over_time({a="b"}[5m])) by (c)"#,
            r#"topk(3, sum by (c) (rate({a="b"}[5m])))"#,
            r#"bottomk(1, count_over_time({a="b"}[5m]))"#,
            r#"avg without (x) (count_over_time({a="b"}[5m]))"#,
            r#"count(count_over_time({a="b"}[5m]))"#,
            r#"stddev(count_over_time({a="b"}[5m]))"#,
            r#"sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m])) * 100"#,
            r#"count_over_time({a="b"}[5m]) > bool 2"#,
            r#"count_over_time({a="b"}[5m]) and on (c) count_over_time({a="c"}[5m])"#,
            r#"count_over_time({a="b"}[5m]) unless count_over_time({a="c"}[5m]) or vector(0)"#,
            r#"1 + 2 * 3 ^ 2 % 5 - -1"#,
            r#"2 == bool 2"#,
        ] {
            roundtrip(q);
        }
        // Precedence: `*` binds tighter than `+`, `^` is right-associative.
        let Expr::Metric(MetricExpr::Binary(b)) = parse("1 + 2 * 3").unwrap() else {
            panic!()
        };
        assert_eq!(b.op, BinOp::Add);
        let Expr::Metric(MetricExpr::Binary(b)) = parse("2 ^ 3 ^ 2").unwrap() else {
            panic!()
        };
        assert!(matches!(b.rhs, MetricExpr::Binary(_)));
    }

    #[test]
    fn logql_errors_are_loki_style() {
        assert_eq!(
            err(r#"{app=}"#),
            "at line 1, col 6: syntax error: unexpected }, expecting STRING"
        );
        assert_eq!(
            err(r#"{app="x"} | json |"#),
            "at line 1, col 19: syntax error: unexpected $end, expecting a parser, a formatter or a label filter"
        );
        assert!(err("{app=\"x\"}\n  | foo").starts_with("at line 2, col 5: syntax error: unexpected IDENTIFIER"));
        assert!(err(r#"{app=~".*"}"#).starts_with("queries require at least one regexp or equality matcher"));
        assert!(err("{}").starts_with("queries require"));
        assert_eq!(
            err(r#"sum_over_time({a="b"}[5m])"#),
            "invalid aggregation sum_over_time without unwrap"
        );
        assert_eq!(
            err(r#"bytes_rate({a="b"} | json | unwrap x [5m])"#),
            "invalid aggregation bytes_rate with unwrap"
        );
        assert!(err(r#"{a="b"} |~ "(""#).contains("invalid regex"));
        assert!(err(r#"{a="b"} | regexp "(x)""#).contains("at least one named capture"));
        assert!(err(r#"{a="b"} | line_format "{{ printf .a }}""#).contains("not defined"));
        assert!(err(r#"count_over_time({a="b"})"#).contains("expecting ["));
        assert!(err(r#"{a="b"} + 1"#).contains("unexpected +"));
        assert!(err("1 > 2").contains("BOOL"));
        assert!(err(r#"topk(0.5, count_over_time({a="b"}[1m]))"#).contains("positive integer"));
        assert!(err(r#"{a="b"} |= "unterminated"#).contains("literal not terminated"));
        assert!(err(r#"{a="b"} | unwrap x"#).contains("unwrap"));
        assert_eq!(
            err(r#"{a="b"} | x"#),
            "at line 1, col 11: syntax error: unexpected IDENTIFIER"
        );
        assert_eq!(
            err(r#"{a="b"} | x >"#),
            "at line 1, col 14: syntax error: unexpected $end, expecting NUMBER, DURATION or BYTES"
        );
        assert_eq!(
            err(r#"{a="b"} | x > "y""#),
            "at line 1, col 15: syntax error: unexpected STRING, expecting NUMBER, DURATION or BYTES"
        );
    }

    #[test]
    fn logql_selector_alone() {
        let m = parse_selector(r#"{a="b", c!~"d"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_selector(r#"{a="b"} |= "x""#).is_err());
        assert!(parse_selector("{}").unwrap().is_empty());
    }

    // ---- round trip of random trees

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,4}".prop_map(|s| format!("l_{s}"))
    }

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9 \"\\\\\n\t.é-]{1,8}").unwrap()
    }

    fn plain() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}"
    }

    fn matcher_strategy() -> impl Strategy<Value = Matcher> {
        (name(), 0..4u8, text(), plain()).prop_map(|(n, op, t, p)| match op {
            0 => Matcher::equal(n, t),
            1 => Matcher::new(MatchOp::NotEqual, n, t).unwrap(),
            2 => Matcher::new(MatchOp::RegexMatch, n, p).unwrap(),
            _ => Matcher::new(MatchOp::RegexNoMatch, n, p).unwrap(),
        })
    }

    fn label_filter() -> impl Strategy<Value = LabelFilter> {
        let leaf = prop_oneof![
            matcher_strategy().prop_map(LabelFilter::Matcher),
            (name(), 0..6u8, -1000i32..1000).prop_map(|(label, op, v)| LabelFilter::Compare {
                label,
                op: [CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le][op as usize],
                value: f64::from(v),
                kind: CmpKind::Number,
                text: v.to_string(),
            }),
            (name(), 1..500i64).prop_map(|(label, ms)| LabelFilter::Compare {
                label,
                op: CmpOp::Gt,
                value: ms as f64 / 1000.0,
                kind: CmpKind::Duration,
                text: format!("{ms}ms"),
            }),
            (name(), 1..500u32).prop_map(|(label, kb)| LabelFilter::Compare {
                label,
                op: CmpOp::Le,
                value: f64::from(kb) * 1000.0,
                kind: CmpKind::Bytes,
                text: format!("{kb}KB"),
            }),
        ];
        let wrap = |f: LabelFilter| match f {
            LabelFilter::And(..) | LabelFilter::Or(..) => LabelFilter::Paren(Box::new(f)),
            f => f,
        };
        leaf.prop_recursive(3, 8, 2, move |inner| {
            (inner.clone(), inner, any::<bool>()).prop_map(move |(a, b, and)| {
                let (a, b) = (Box::new(wrap(a)), Box::new(wrap(b)));
                if and {
                    LabelFilter::And(a, b)
                } else {
                    LabelFilter::Or(a, b)
                }
            })
        })
    }

    fn stage() -> impl Strategy<Value = Stage> {
        let ops = [
            LineOp::Contains,
            LineOp::NotContains,
            LineOp::Regex,
            LineOp::NotRegex,
            LineOp::Pattern,
        ];
        prop_oneof![
            (0..5usize, proptest::collection::vec(plain(), 1..3)).prop_map(move |(op, vals)| {
                let op = ops[op];
                let values = if matches!(op, LineOp::Pattern) {
                    vals.into_iter().map(|v| format!("<_> {v}")).collect()
                } else {
                    vals
                };
                Stage::LineFilter(LineFilter { op, values })
            }),
            (text(), 0..3u8).prop_map(|(t, op)| Stage::LineFilter(LineFilter {
                op: if op == 0 { LineOp::Contains } else { LineOp::NotContains },
                values: vec![t],
            })),
            proptest::collection::vec((name(), text()), 0..3)
                .prop_map(|v| Stage::Json(v.into_iter().map(|(label, path)| Extraction { label, path }).collect())),
            proptest::collection::vec((name(), plain()), 0..3)
                .prop_map(|v| Stage::Logfmt(v.into_iter().map(|(label, path)| Extraction { label, path }).collect())),
            Just(Stage::Regexp(r"(?P<ip>\S+) (?P<rest>.*)".into())),
            Just(Stage::Pattern("<ip> - <_> \"<method>\"".into())),
            Just(Stage::Unpack),
            Just(Stage::Decolorize),
            label_filter().prop_map(Stage::LabelFilter),
            name().prop_map(|n| Stage::LineFormat(format!("{{{{.{n}}}}} x {{{{ .{n} | ToUpper }}}}"))),
            (name(), name(), name()).prop_map(|(a, b, c)| Stage::LabelFormat(vec![
                LabelFormat::Rename { dst: a, src: b },
                LabelFormat::Template {
                    dst: c.clone(),
                    template: format!("{{{{.{c}}}}}")
                },
            ])),
            proptest::collection::vec(name(), 1..3)
                .prop_map(|v| Stage::Drop(v.into_iter().map(LabelSelect::Name).collect())),
            (name(), matcher_strategy())
                .prop_map(|(n, m)| Stage::Keep(vec![LabelSelect::Name(n), LabelSelect::Matcher(m)])),
        ]
    }

    fn log_expr() -> impl Strategy<Value = LogExpr> {
        (
            name(),
            plain(),
            proptest::collection::vec(matcher_strategy(), 0..3),
            proptest::collection::vec(stage(), 0..5),
        )
            .prop_map(|(n, v, mut rest, mut stages)| {
                rest.insert(0, Matcher::equal(n, v));
                // `| drop a != "x"` reads as a drop matcher (in Loki too): avoid generating it.
                for i in 1..stages.len() {
                    if matches!(stages[i - 1], Stage::Drop(_) | Stage::Keep(_))
                        && let Stage::LineFilter(lf) = &mut stages[i]
                        && matches!(lf.op, LineOp::NotContains | LineOp::NotRegex)
                    {
                        lf.op = LineOp::Contains;
                    }
                }
                LogExpr { matchers: rest, stages }
            })
    }

    fn grouping() -> impl Strategy<Value = Option<Grouping>> {
        proptest::option::of(
            (any::<bool>(), proptest::collection::vec(name(), 0..3))
                .prop_map(|(without, labels)| Grouping { without, labels }),
        )
    }

    fn range_agg() -> impl Strategy<Value = MetricExpr> {
        let durations = [
            60_000_000_000i64,
            300_000_000_000,
            5_400_000_000_000,
            250_000_000,
            86_400_000_000_000,
        ];
        (
            0..RangeFn::ALL.len(),
            log_expr(),
            any::<bool>(),
            name(),
            0..3u8,
            proptest::collection::vec(label_filter(), 0..2),
            0..5usize,
            prop_oneof![Just(0i64), Just(600_000_000_000), Just(-3_600_000_000_000)],
            grouping(),
        )
            .prop_map(
                move |(f, log, with_unwrap, label, conv, filters, d, offset, grouping)| {
                    let func = RangeFn::ALL[f];
                    let unwrap = (func.needs_unwrap() || (with_unwrap && !func.forbids_unwrap())).then(|| Unwrap {
                        label,
                        conversion: [Conversion::Number, Conversion::Duration, Conversion::Bytes][conv as usize],
                        filters,
                    });
                    MetricExpr::Range(RangeAgg {
                        func,
                        param: (func == RangeFn::QuantileOverTime).then_some(0.95),
                        log,
                        unwrap,
                        range: durations[d],
                        offset,
                        grouping,
                    })
                },
            )
    }

    fn metric() -> impl Strategy<Value = MetricExpr> {
        range_agg().prop_recursive(3, 6, 2, |inner| {
            let paren = |e: MetricExpr| match e {
                MetricExpr::Binary(_) => MetricExpr::Paren(Box::new(e)),
                e => e,
            };
            prop_oneof![
                (0..AggOp::ALL.len(), inner.clone(), grouping(), 1..5u8).prop_map(|(op, e, grouping, k)| {
                    let op = AggOp::ALL[op];
                    MetricExpr::Vector(VectorAgg {
                        op,
                        param: matches!(op, AggOp::Topk | AggOp::Bottomk).then_some(f64::from(k)),
                        grouping,
                        expr: Box::new(e),
                    })
                }),
                (0..15usize, inner.clone(), inner, any::<bool>(), -4i32..4, any::<bool>()).prop_map(
                    move |(op, l, r, flag, n, scalar_rhs)| {
                        let all = [
                            BinOp::Add,
                            BinOp::Sub,
                            BinOp::Mul,
                            BinOp::Div,
                            BinOp::Mod,
                            BinOp::Pow,
                            BinOp::Eq,
                            BinOp::Ne,
                            BinOp::Gt,
                            BinOp::Ge,
                            BinOp::Lt,
                            BinOp::Le,
                            BinOp::And,
                            BinOp::Or,
                            BinOp::Unless,
                        ];
                        let op = all[op];
                        let rhs = if scalar_rhs && !op.is_set() {
                            MetricExpr::Number(f64::from(n) / 2.0)
                        } else {
                            paren(r)
                        };
                        let matching = (op.is_set() && flag).then(|| (true, vec!["l_a".to_string()]));
                        MetricExpr::Binary(Box::new(BinaryExpr {
                            op,
                            return_bool: op.is_comparison() && flag,
                            matching,
                            lhs: paren(l),
                            rhs,
                        }))
                    }
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn logql_printed_log_queries_parse_back(e in log_expr()) {
            let printed = Expr::Log(e.clone()).to_string();
            let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
            prop_assert_eq!(parsed, Expr::Log(e), "{}", printed);
        }

        #[test]
        fn logql_printed_metric_queries_parse_back(e in metric()) {
            let printed = Expr::Metric(e.clone()).to_string();
            let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
            prop_assert_eq!(parsed, Expr::Metric(e), "{}", printed);
        }

        #[test]
        fn logql_parser_never_panics(s in "[{}()\\[\\]|=!~<>\"`a-z0-9 ,.+*/%^-]{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn logql_parser_never_panics_on_mutated_queries(cut in 0usize..80, insert in "[^a]{0,3}") {
            let base = r#"sum by (c) (rate({a="b"} |= "x" | json | s >= 500 | unwrap d [5m])) / 2"#;
            let cut = cut.min(base.len());
            if base.is_char_boundary(cut) {
                let q = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
                let _ = parse(&q);
            }
        }
    }
}
