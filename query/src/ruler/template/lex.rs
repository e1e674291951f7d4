//! Splitting a template into text and actions, and an action into tokens (Go's `text/template`
//! lexer: delimiters with trim markers, comments, literals, fields, variables).

use super::Fault;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    /// `.a.b` (empty: `.`); also the chain after `)`.
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// A token with its byte range in the template.
#[derive(Clone, Debug)]
pub(super) struct Lex {
    pub(super) at: usize,
    pub(super) end: usize,
    pub(super) tok: Tok,
}

/// A piece of the template: text, or an action's tokens (with their offsets).
pub(super) enum Segment {
    Text(String),
    Action(usize, Vec<Lex>),
}

const SPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// The template's text and actions, in order.
pub(super) fn segments(text: &str) -> Result<Vec<Segment>, Fault> {
    let mut out = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while rest <= text.len() {
        let Some(open) = text[rest..].find("{{").map(|i| rest + i) else {
            let t = &text[rest..];
            out.push(Segment::Text(
                if trim_next { t.trim_start_matches(SPACE) } else { t }.into(),
            ));
            break;
        };
        let mut body = open + 2;
        let mut t = &text[rest..open];
        if trim_next {
            t = t.trim_start_matches(SPACE);
        }
        if text[body..].starts_with('-') && text[body + 1..].starts_with(SPACE) {
            t = t.trim_end_matches(SPACE);
            body += 2;
        }
        out.push(Segment::Text(t.into()));
        let Action {
            toks,
            end,
            trim,
            comment,
        } = lex_action(text, body, open)?;
        if !toks.is_empty() {
            out.push(Segment::Action(open, toks));
        } else if !comment {
            return Err(Fault::new(open, "missing value for command"));
        }
        trim_next = trim;
        rest = end;
    }
    Ok(out)
}

/// One lexed action.
struct Action {
    toks: Vec<Lex>,
    /// The offset after its `}}`.
    end: usize,
    /// It ended with `-}}`: the next text loses its leading spaces.
    trim: bool,
    /// It was a comment.
    comment: bool,
}

/// Lexes one action from `at` (after `{{` and its trim marker) through its `}}`.
fn lex_action(text: &str, mut at: usize, open: usize) -> Result<Action, Fault> {
    let b = text.as_bytes();
    let mut toks = Vec::new();
    let mut comment = false;
    loop {
        let s = &text[at..];
        if s.is_empty() {
            return Err(Fault::new(open, "unclosed action"));
        }
        if s.starts_with("}}") {
            return Ok(Action {
                toks,
                end: at + 2,
                trim: false,
                comment,
            });
        }
        let c = s.chars().next().unwrap_or(' ');
        if SPACE.contains(&c) {
            let after = s.trim_start_matches(SPACE);
            if after.starts_with("-}}") {
                let end = text.len() - after.len() + 3;
                return Ok(Action {
                    toks,
                    end,
                    trim: true,
                    comment,
                });
            }
            at = text.len() - after.len();
            continue;
        }
        if toks.is_empty() && !comment && s.starts_with("/*") {
            let Some(end) = s.find("*/") else {
                return Err(Fault::new(at, "unclosed comment"));
            };
            let after = &s[end + 2..];
            let rest = after.trim_start_matches(SPACE);
            if after.starts_with("}}") || (rest.len() < after.len() && rest.starts_with("-}}")) {
                at += end + 2;
                comment = true;
                continue;
            }
            return Err(Fault::new(at, "comment ends before closing delimiter"));
        }
        if comment {
            return Err(Fault::new(at, "comment ends before closing delimiter"));
        }
        let start = at;
        let word_end = |from: usize| {
            text[from..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(text.len(), |i| from + i)
        };
        let chain = |mut from: usize| -> (Vec<String>, usize) {
            let mut names = Vec::new();
            while b.get(from) == Some(&b'.') {
                let e = word_end(from + 1);
                if e == from + 1 {
                    break;
                }
                names.push(text[from + 1..e].to_string());
                from = e;
            }
            (names, from)
        };
        let tok = match c {
            '|' => {
                at += 1;
                Tok::Pipe
            }
            '(' => {
                at += 1;
                Tok::Open
            }
            ')' => {
                at += 1;
                Tok::Close
            }
            ',' => {
                at += 1;
                Tok::Comma
            }
            '=' => {
                at += 1;
                Tok::Assign
            }
            ':' if s.starts_with(":=") => {
                at += 2;
                Tok::Declare
            }
            '.' if !s[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                let (names, e) = chain(at);
                at = if names.is_empty() { at + 1 } else { e };
                Tok::Field(names)
            }
            '$' => {
                let e = word_end(at + 1);
                let (names, e2) = chain(e);
                at = e2;
                Tok::Var(text[start..e].to_string(), names)
            }
            '"' | '`' => {
                let (v, e) = lex_string(text, at)?;
                at = e;
                Tok::Str(v)
            }
            '\'' => {
                let (v, e) = lex_string(text, at)?;
                let mut cs = v.chars();
                let (Some(ch), None) = (cs.next(), cs.next()) else {
                    return Err(Fault::new(at, "malformed character constant"));
                };
                at = e;
                Tok::Int(i64::from(u32::from(ch)))
            }
            c if c.is_ascii_digit() || c == '.' || c == '+' || c == '-' => {
                let e = text[at + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
                    .map_or(text.len(), |i| at + 1 + i);
                // Stop a `-` or `+` that is not an exponent's sign (`1-}}`).
                let mut e2 = at + 1;
                while e2 < e {
                    let ch = b[e2];
                    if (ch == b'+' || ch == b'-') && !matches!(b[e2 - 1], b'e' | b'E' | b'p' | b'P') {
                        break;
                    }
                    e2 += 1;
                }
                at = e2;
                number(&text[start..e2])
                    .ok_or_else(|| Fault::new(start, format!("bad number syntax: {:?}", &text[start..e2])))?
            }
            c if c.is_alphabetic() || c == '_' => {
                at = word_end(at);
                Tok::Ident(text[start..at].to_string())
            }
            c => {
                return Err(Fault::new(
                    at,
                    format!("unrecognized character in action: U+{:04X}", u32::from(c)),
                ));
            }
        };
        toks.push(Lex {
            at: start,
            end: at,
            tok,
        });
    }
}

/// A number literal: an `int` unless it has a fraction or exponent (Go's ideal constants).
fn number(s: &str) -> Option<Tok> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let clean = digits.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(bn) = lower.strip_prefix("0b") {
        i64::from_str_radix(bn, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|c| c.is_ascii_digit()) {
        lower.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Tok::Int(if neg { -i } else { i }));
    }
    let f: f64 = lower.parse().ok().filter(|_| lower.contains(['.', 'e']))?;
    Some(Tok::Float(if neg { -f } else { f }))
}

/// A quoted (`"..."`, `'.'`) or raw (`` `...` ``) string starting at `at`; answers it unquoted and
/// the offset after it.
fn lex_string(text: &str, at: usize) -> Result<(String, usize), Fault> {
    let quote = text[at..].chars().next().unwrap_or('"');
    let mut out = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, at + 1 + i + 1)),
            '\n' if quote != '`' => break,
            '\\' if quote != '`' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    'f' => Some('\x0c'),
                    'v' => Some('\x0b'),
                    '\\' | '"' | '\'' => Some(e),
                    _ => None,
                };
                if let Some(s) = simple {
                    out.push(s);
                    continue;
                }
                let (len, radix) = match e {
                    'x' => (2, 16),
                    'u' => (4, 16),
                    'U' => (8, 16),
                    '0'..='7' => (2, 8),
                    _ => return Err(Fault::new(at, format!("invalid escape \\{e} in string"))),
                };
                let mut code: String = if radix == 8 { e.to_string() } else { String::new() };
                for _ in 0..len {
                    code.push(chars.next().map_or(' ', |(_, c)| c));
                }
                let ch = u32::from_str_radix(&code, radix)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| Fault::new(at, format!("invalid escape in string: {code:?}")))?;
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(Fault::new(at, "unterminated quoted string"))
}
