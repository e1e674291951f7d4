//! PromQL parse errors with a position, in Prometheus's words.
//!
//! The `promql-parser` crate reports what went wrong without saying where, and a plain syntax
//! error only as "invalid promql query". Prometheus answers `1:8: parse error: unexpected
//! identifier "cluster" in grouping opts, expected "("`. [`parse`] keeps the crate's verdict
//! (whether the text parses is never second-guessed) and, when it refuses, finds the place in
//! the user's original text (before the `durations` rewrite) with a small tokenizer, rewording
//! the crate's message where Prometheus's differs. A mistake it cannot place keeps the crate's
//! message without a position rather than a guessed one.

use promql_parser::parser::Expr;

use crate::error::{Error, Result};

/// Parses `text` (the `durations`-rewritten form of `original`); a refusal is placed in
/// `original`.
pub(crate) fn parse(original: &str, text: &str) -> Result<Expr> {
    promql_parser::parser::parse(text).map_err(|message| diagnose(original, &message))
}

/// The crate's `message` about `original`, placed and worded as Prometheus would.
pub(crate) fn diagnose(original: &str, message: &str) -> Error {
    let tokens = tokenize(original);
    let (message, at) = place(original, &tokens, message);
    Error::Parse {
        message,
        position: at.map(|offset| line_column(original, offset)),
    }
}

/// Prometheus's `line:column`: 1-based, the column counted in bytes from the line's start.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// The message Prometheus gives for the crate's `message`, and the byte offset it points at.
fn place(text: &str, tokens: &[Token], message: &str) -> (String, Option<usize>) {
    let end = text.len();
    if message.starts_with("unterminated quoted string") {
        let open = tokens.iter().find(|t| t.kind == Kind::Unterminated);
        return ("unterminated quoted string".to_string(), open.map(|t| t.start));
    }
    if message == "unexpected end of input inside brackets" {
        return ("unclosed left bracket".to_string(), Some(end));
    }
    // `unexpected end of input in offset, expected duration` and the like: at the end.
    if message == "unclosed left parenthesis" || message.starts_with("unexpected end of input") {
        return (message.to_string(), Some(end));
    }
    if message.starts_with("unexpected right parenthesis") {
        // Prometheus points just past the parenthesis that closes nothing.
        return (message.to_string(), unmatched(tokens, '(', ')').map(|t| t.end));
    }
    if message.starts_with("unexpected right brace") {
        let at = unmatched(tokens, '{', '}').map(|t| t.start);
        return ("unexpected character: '}'".to_string(), at);
    }
    if let Some(rest) = message.strip_prefix("unexpected identifier '") {
        // `... 'a' in label matching, expected string`: the first such word inside braces.
        let (name, why) = rest.split_once('\'').unwrap_or((rest, ""));
        let at = inside_braces(tokens).find(|t| t.kind == Kind::Ident && &text[t.start..t.end] == name);
        return (format!("unexpected identifier \"{name}\"{why}"), at.map(|t| t.start));
    }
    if let Some(c) = message.strip_prefix("unexpected character inside braces: '") {
        // A digit starts a number token here; Prometheus's lexer refuses its first character.
        let c = c.chars().next();
        let at = inside_braces(tokens).find(|t| c.is_some_and(|c| text[t.start..].starts_with(c)));
        return (message.to_string(), at.map(|t| t.start));
    }
    if let Some(name) = message.strip_prefix("unknown function with name ") {
        let name = name.trim_matches('\'');
        let call = calls(text, tokens).find(|&i| &text[tokens[i].start..tokens[i].end] == name);
        return (
            format!("unknown function with name \"{name}\""),
            call.map(|i| tokens[i].start),
        );
    }
    if let Some(bad) = message.strip_prefix("bad number or duration syntax: ") {
        let bad = bad.trim_matches('"');
        let Some(i) = tokens.iter().position(|t| text[t.start..].starts_with(bad)) else {
            return (format!("bad number or duration syntax: \"{bad}\""), None);
        };
        // Inside a range's or subquery's brackets Prometheus lexes a duration and names the
        // digits it read before the unit went wrong.
        if i > 0 && matches!(tokens[i - 1].ch, Some('[' | ':')) {
            let digits = &bad[..bad.find(|c: char| !c.is_ascii_digit()).unwrap_or(bad.len())];
            return (format!("bad duration syntax: \"{digits}\""), Some(tokens[i].start));
        }
        return (
            format!("bad number or duration syntax: \"{bad}\""),
            Some(tokens[i].start),
        );
    }
    if let Some(rest) = message.strip_prefix("expected type ") {
        return type_mismatch(text, tokens, rest).unwrap_or_else(|| (message.to_string(), None));
    }
    if message == "invalid promql query" {
        return syntax(text, tokens).unwrap_or_else(|| (message.to_string(), None));
    }
    (message.to_string(), None)
}

/// `expected type matrix in call to function 'rate', got vector` (the part after "expected
/// type ") in Prometheus's type names, placed at the first argument of the call it names that
/// looks like the type the parser got: the parser checks calls left to right as it reduces
/// them, as Prometheus does, so the first such argument is the one refused.
fn type_mismatch(text: &str, tokens: &[Token], rest: &str) -> Option<(String, Option<usize>)> {
    let (expected, rest) = rest.split_once(" in ")?;
    let (context, got) = rest.rsplit_once(", got ")?;
    let context_words = match context.strip_prefix("call to function ") {
        Some(name) => format!("call to function \"{}\"", name.trim_matches('\'')),
        None => context.to_string(),
    };
    let message = format!(
        "expected type {} in {context_words}, got {}",
        type_name(expected),
        type_name(got)
    );
    let candidates: Vec<usize> = match context.strip_prefix("call to function ") {
        Some(name) => {
            let name = name.trim_matches('\'');
            calls(text, tokens)
                .filter(|&i| &text[tokens[i].start..tokens[i].end] == name)
                .collect()
        }
        None if context == "aggregation expression" => calls(text, tokens)
            .filter(|&i| AGGREGATIONS.contains(&&text[tokens[i].start..tokens[i].end]))
            .collect(),
        None => Vec::new(),
    };
    // Among the candidate calls' arguments, the ones that look like what the parser got.
    let at = candidates
        .iter()
        .flat_map(|&call| arguments(tokens, call + 1))
        .find(|arg| looks_like(tokens, arg, got))
        .map(|arg| tokens[arg.start].start);
    Some((message, at))
}

/// The crate's value-type names in Prometheus's words.
fn type_name(crate_name: &str) -> &str {
    match crate_name {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

/// Whether the argument spanning `arg` (token indices) reads as a value of type `got`.
fn looks_like(tokens: &[Token], arg: &std::ops::Range<usize>, got: &str) -> bool {
    let first = &tokens[arg.start];
    // A range's or subquery's brackets at the argument's own level (not inside a call in it).
    let mut depth = 0usize;
    let ranged = tokens[arg.clone()].iter().any(|t| match t.ch {
        Some('[') if depth == 0 => true,
        Some('(' | '{' | '[') => {
            depth += 1;
            false
        }
        Some(')' | '}' | ']') => {
            depth = depth.saturating_sub(1);
            false
        }
        _ => false,
    });
    let literal = arg.len() == 1 && matches!(first.kind, Kind::Str | Kind::Number);
    match got {
        "string" => literal && first.kind == Kind::Str,
        "scalar" => literal && first.kind == Kind::Number,
        "vector" => !ranged && !literal,
        "matrix" => ranged,
        _ => false,
    }
}

/// A plain syntax error the crate could not describe: the common mistakes Prometheus names.
fn syntax(text: &str, tokens: &[Token]) -> Option<(String, Option<usize>)> {
    let word = |t: &Token| &text[t.start..t.end];
    for (i, t) in tokens.iter().enumerate() {
        if t.kind == Kind::Ident && matches!(word(t), "by" | "without") {
            let after_aggregation =
                i > 0 && (AGGREGATIONS.contains(&word(&tokens[i - 1])) || word(&tokens[i - 1]) == ")");
            let next = tokens.get(i + 1);
            if after_aggregation && next.is_none_or(|n| word(n) != "(") {
                let Some(next) = next else {
                    return Some((
                        "unexpected end of input in grouping opts, expected \"(\"".into(),
                        Some(text.len()),
                    ));
                };
                return Some((
                    format!("unexpected {} in grouping opts, expected \"(\"", describe(text, next)),
                    Some(next.start),
                ));
            }
        }
    }
    // A label matcher without its quoted value (`up{a=}`, `up{a=~5}`): Prometheus names what
    // came instead of the string. Operators are one token per character here: `=`, `!=`,
    // `=~`, `!~` each end on the token before the value.
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate() {
        match t.ch {
            Some('{') => depth += 1,
            Some('}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        let next = tokens.get(i + 1);
        let operator_end = match t.ch {
            Some('=') => next.is_none_or(|n| n.ch != Some('~')),
            Some('~') => true,
            _ => false,
        };
        if depth > 0 && operator_end {
            return match next {
                Some(n) if n.kind == Kind::Str => continue,
                Some(n) => Some((
                    format!("unexpected {} in label matching, expected string", describe(text, n)),
                    Some(n.start),
                )),
                None => Some(("unexpected end of input inside braces".into(), Some(text.len()))),
            };
        }
    }
    // An expression that stops after an operator.
    let last = tokens.last()?;
    let operator = last.kind == Kind::Punct && !matches!(word(last), ")" | "}" | "]")
        || matches!(word(last), "and" | "or" | "unless");
    operator.then(|| ("unexpected end of input".to_string(), Some(text.len())))
}

/// A token as Prometheus names it in "unexpected ..." messages.
fn describe(text: &str, t: &Token) -> String {
    let word = &text[t.start..t.end];
    match t.kind {
        Kind::Ident => format!("identifier \"{word}\""),
        Kind::Number => format!("number \"{word}\""),
        Kind::Str => format!("string {word}"),
        Kind::Punct | Kind::Unterminated => format!("\"{word}\""),
    }
}

/// The tokens between a `{` and its `}`.
fn inside_braces(tokens: &[Token]) -> impl Iterator<Item = &Token> {
    let mut depth = 0usize;
    tokens.iter().filter(move |t| {
        match t.ch {
            Some('{') => depth += 1,
            Some('}') => depth = depth.saturating_sub(1),
            _ => return depth > 0,
        }
        false
    })
}

/// The first `close` that closes nothing.
fn unmatched(tokens: &[Token], open: char, close: char) -> Option<&Token> {
    let mut depth = 0i64;
    tokens.iter().find(|t| {
        if t.kind == Kind::Punct && t.ch == Some(open) {
            depth += 1;
        } else if t.kind == Kind::Punct && t.ch == Some(close) {
            depth -= 1;
        }
        depth < 0
    })
}

/// Indices of identifiers followed by `(`: function calls and aggregations.
fn calls<'a>(text: &'a str, tokens: &'a [Token]) -> impl Iterator<Item = usize> + 'a {
    (0..tokens.len().saturating_sub(1)).filter(move |&i| {
        tokens[i].kind == Kind::Ident
            && tokens[i + 1].ch == Some('(')
            && !matches!(
                &text[tokens[i].start..tokens[i].end],
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            )
    })
}

/// The top-level arguments (token index ranges) of the call whose `(` is token `open`.
fn arguments(tokens: &[Token], open: usize) -> Vec<std::ops::Range<usize>> {
    let mut args = Vec::new();
    let mut depth = 0usize;
    let mut start = open + 1;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.ch {
            Some('(' | '{' | '[') => depth += 1,
            Some(')' | '}' | ']') => {
                depth -= 1;
                if depth == 0 {
                    if i > start {
                        args.push(start..i);
                    }
                    return args;
                }
            }
            Some(',') if depth == 1 => {
                args.push(start..i);
                start = i + 1;
            }
            _ => {}
        }
    }
    args
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    /// A string whose closing quote never comes.
    Unterminated,
    Punct,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
    /// The character of a one-character punctuation token.
    ch: Option<char>,
}

/// PromQL's tokens, loosely: enough to find brackets, calls and arguments; comments and
/// whitespace dropped, operators one punctuation token per character.
fn tokenize(text: &str) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                let mut closed = false;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if c != b'`' => i += 2,
                        b if b == c => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                i = i.min(bytes.len());
                if closed { Kind::Str } else { Kind::Unterminated }
            }
            b'0'..=b'9' | b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b':')) {
                    i += 1;
                }
                Kind::Ident
            }
            _ => {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Punct
            }
        };
        let ch = (kind == Kind::Punct).then(|| text[start..].chars().next()).flatten();
        tokens.push(Token {
            kind,
            start,
            end: i,
            ch,
        });
    }
    tokens
}

#[cfg(test)]
mod tests;
