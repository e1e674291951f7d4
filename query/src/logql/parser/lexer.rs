//! The LogQL lexer: tokens with their byte offsets, and Loki's positioned error wording.

use super::parse_error;
use crate::error::{Error, Result};
use crate::logql::units::{parse_bytes, parse_go_duration};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
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
    pub(super) fn describe(&self) -> String {
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

    pub(super) fn punct(&self) -> &'static str {
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

pub(super) fn positioned(src: &str, offset: usize, what: &str) -> Error {
    let (line, col) = line_col(src, offset);
    parse_error(format!("at line {line}, col {col}: {what}"))
}

pub(super) fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
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
