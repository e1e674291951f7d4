//! A hand-written LogQL lexer and recursive-descent parser.
//!
//! Errors carry Loki's wording: `at line 1, col 5: syntax error: unexpected IDENTIFIER, expecting
//! STRING` (the HTTP layer prefixes `parse error `), or, for errors that are not about one token,
//! Loki's unpositioned messages (`queries require at least one regexp or equality matcher ...`).

use tributary_storage::types::{MatchOp, Matcher};

mod lexer;
mod metric;

use super::ast::*;
use crate::error::{Error, Result};
use lexer::{Tok, lex, positioned};
use metric::validate;

/// Parses a whole LogQL query and checks what Loki checks after parsing.
pub(crate) fn parse(input: &str) -> Result<Expr> {
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
pub(crate) fn parse_selector(input: &str) -> Result<Vec<Matcher>> {
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
        position: None,
    }
}

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

#[cfg(test)]
mod tests;
