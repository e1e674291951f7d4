//! Duration expressions (Prometheus 3.x): arithmetic where PromQL reads a duration, in a range
//! or subquery's brackets (`rate(x[5m * 2])`, `x[step() * 4:step()]`) and after `offset`
//! (`x offset (1h + 5m)`, `x offset -step()`).
//!
//! `promql-parser` reads a plain duration there and nothing else, so before it runs, the query
//! text is rewritten: each such expression is evaluated here and replaced by the duration it
//! comes to, padded with spaces to its former length when shorter, so the positions
//! annotations report still point into the text the user wrote. Text holding none is left as
//! it is (every query before Prometheus 3 reads the same).
//!
//! # What an expression may hold
//!
//! As in Prometheus: number literals (seconds) and duration literals (`1h30m`, `500ms`), `+ - *
//! / % ^` with PromQL's precedence (`^` binds tightest and to the right; a sign binds tighter
//! than `+ -` and looser than `^`, so `-2 ^ 2` is -4), parentheses, `step()` (the query's step in
//! seconds, 0 for an instant query), `range()` (its end minus its start, 0 for an instant query)
//! and `min_of(a, b)` / `max_of(a, b)`. Values are seconds, truncated to whole milliseconds at
//! the end. A range or subquery step must come to more than 0; an offset may be negative.
//!
//! After `offset` only a sign and one operand are read (a literal, a call or a parenthesised
//! expression): `x offset 100 + 2` adds 2 to `x offset 100`, `x offset -step() * 2` doubles
//! `x offset -step()`, as Prometheus reads them. `@` takes a timestamp, `start()` or `end()`,
//! never an expression, and is left to the parser.
//!
//! An expression inside brackets this module cannot read fails naming it; text after `offset`
//! that is no expression is left for the parser to report.

use crate::error::{Error, Result};

/// The longest duration, in seconds: Go's `time.Duration` (an i64 of nanoseconds).
const MAX_SECONDS: f64 = 9_223_372_036.854_775;

/// What `step()` and `range()` come to in one query.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct QueryTimes {
    /// The step in milliseconds (0 for an instant query).
    pub(crate) step_ms: i64,
    /// End minus start in milliseconds (0 for an instant query).
    pub(crate) range_ms: i64,
}

/// `text` with every duration expression replaced by its value; borrowed back unchanged when
/// it holds none.
pub(crate) fn rewrite(text: &str, times: QueryTimes) -> Result<std::borrow::Cow<'_, str>> {
    let edits = find(text, times)?;
    if edits.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(&text[at..edit.start]);
        let width = edit.end - edit.start;
        out.push_str(&edit.text);
        // Padding keeps later positions where the user's text had them.
        for _ in edit.text.len()..width {
            out.push(' ');
        }
        at = edit.end;
    }
    out.push_str(&text[at..]);
    Ok(std::borrow::Cow::Owned(out))
}

/// One replacement: `text[start..end]` becomes `text`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// Scans `text` as the PromQL lexer would (string literals with backslash escapes, `#` comments,
/// label matchers in braces skipped) for brackets and `offset` modifiers holding expressions.
fn find(text: &str, times: QueryTimes) -> Result<Vec<Edit>> {
    let bytes = text.as_bytes();
    let mut edits = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i = literal_end(bytes, i + 1, c);
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'{' => braces += 1,
            b'}' => braces = braces.saturating_sub(1),
            b'[' if braces == 0 => {
                // Brackets hold durations only: no literal, brace or bracket inside.
                let Some(close) = text[i + 1..].find(']').map(|j| i + 1 + j) else {
                    return Ok(edits);
                };
                bracket(text, i + 1, close, times, &mut edits)?;
                i = close + 1;
                continue;
            }
            c if braces == 0 && (c.is_ascii_alphabetic() || c == b'_') => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':') {
                    i += 1;
                }
                if text[start..i].eq_ignore_ascii_case("offset") {
                    offset(text, start, i, times, &mut edits)?;
                }
                continue;
            }
            // A number's letters (`1e3`, `0x1f`, `5m`) are no word.
            c if c.is_ascii_digit() || c == b'.' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_') {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(edits)
}

/// The brackets' content `text[from..to]`: a range, or a subquery's range and optional step.
fn bracket(text: &str, from: usize, to: usize, times: QueryTimes, edits: &mut Vec<Edit>) -> Result<()> {
    let inner = &text[from..to];
    let mut depth = 0usize;
    let colon = inner.char_indices().find_map(|(j, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => return Some(j),
            _ => {}
        }
        None
    });
    let parts = match colon {
        Some(j) => vec![(from, from + j), (from + j + 1, to)],
        None => vec![(from, to)],
    };
    for (start, end) in parts {
        let part = &text[start..end];
        if part.trim().is_empty() || is_literal(part.trim()) {
            continue;
        }
        let seconds = evaluate_all(part, times)?;
        if seconds <= 0.0 {
            return Err(Error::BadData(format!(
                "the duration expression {:?} comes to {}s: a range or step must be greater than 0",
                part.trim(),
                seconds
            )));
        }
        edits.push(Edit {
            start,
            end,
            text: format_ms(to_ms(part, seconds)?),
        });
    }
    Ok(())
}

/// `offset` at `text[start..end]`: the expression after it, when it is more than a literal.
fn offset(text: &str, start: usize, end: usize, times: QueryTimes, edits: &mut Vec<Edit>) -> Result<()> {
    let mut p = Parser::new(text, end, times);
    let Ok(seconds) = p.offset_operand() else {
        // No expression: the parser reports what it finds there.
        return Ok(());
    };
    let operand = text[end..p.at].trim();
    let unsigned = operand.trim_start_matches(['+', '-']).trim_start();
    if is_literal(unsigned) && operand.len() - unsigned.len() <= 1 {
        return Ok(());
    }
    let ms = to_ms(operand, seconds)?;
    let replacement = match ms {
        // `promql-parser` refuses a zero offset, which is no offset.
        0 => String::new(),
        ms if ms < 0 => format!("offset -{}", format_ms(-ms)),
        ms => format!("offset {}", format_ms(ms)),
    };
    edits.push(Edit {
        start,
        end: p.at,
        text: replacement,
    });
    Ok(())
}

/// One number or duration literal, which the parser reads itself.
fn is_literal(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

fn evaluate_all(expr: &str, times: QueryTimes) -> Result<f64> {
    let mut p = Parser::new(expr, 0, times);
    let v = p.expr(0).map_err(|why| bad(expr, &why))?;
    p.skip_space();
    if p.at < expr.len() {
        return Err(bad(expr, &format!("unexpected {:?}", &expr[p.at..])));
    }
    Ok(v)
}

fn bad(expr: &str, why: &str) -> Error {
    Error::BadData(format!(
        "cannot evaluate the duration expression {:?}: {why}",
        expr.trim()
    ))
}

/// Seconds to whole milliseconds (truncated, as Prometheus does), within Go's durations.
fn to_ms(expr: &str, seconds: f64) -> Result<i64> {
    if !seconds.is_finite() {
        return Err(bad(expr, "the duration is NaN or infinite"));
    }
    if seconds.abs() > MAX_SECONDS {
        return Err(bad(expr, "the duration is out of range"));
    }
    Ok((seconds * 1000.0) as i64)
}

/// A positive number of milliseconds as a duration literal, largest units first (`1h5m`).
fn format_ms(ms: i64) -> String {
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// Where the literal opened by `quote` (just before `i`) ends.
fn literal_end(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    while i < bytes.len() {
        let c = bytes[i];
        i += 1;
        if c == quote {
            return i;
        }
        if c == b'\\' {
            i += 1;
        }
    }
    bytes.len()
}

/// A precedence-climbing reader of one expression, in seconds.
struct Parser<'a> {
    text: &'a str,
    at: usize,
    times: QueryTimes,
}

/// `^` binds tightest; a sign binds like `*`.
const POW: u8 = 3;
const MUL: u8 = 2;

impl<'a> Parser<'a> {
    fn new(text: &'a str, at: usize, times: QueryTimes) -> Self {
        Self { text, at, times }
    }

    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(|c: char| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{}'", c as char))
        }
    }

    /// What `offset` reads: an optional sign and one operand.
    fn offset_operand(&mut self) -> std::result::Result<f64, String> {
        match self.peek() {
            Some(b'-') => {
                self.at += 1;
                Ok(-self.operand()?)
            }
            Some(b'+') => {
                self.at += 1;
                self.operand()
            }
            _ => self.operand(),
        }
    }

    fn expr(&mut self, min: u8) -> std::result::Result<f64, String> {
        let mut lhs = match self.peek() {
            Some(b'-') => {
                self.at += 1;
                -self.expr(POW)?
            }
            Some(b'+') => {
                self.at += 1;
                self.expr(POW)?
            }
            _ => self.operand()?,
        };
        while let Some(op) = self.peek() {
            let prec = match op {
                b'+' | b'-' => 1,
                b'*' | b'/' | b'%' => MUL,
                b'^' => POW,
                _ => break,
            };
            if prec < min {
                break;
            }
            self.at += 1;
            // `^` is right-associative; the others are left-associative.
            let rhs = self.expr(if op == b'^' { prec } else { prec + 1 })?;
            lhs = match op {
                b'+' => lhs + rhs,
                b'-' => lhs - rhs,
                b'*' => lhs * rhs,
                b'/' if rhs == 0.0 => return Err("division by zero".into()),
                b'/' => lhs / rhs,
                b'%' if rhs == 0.0 => return Err("modulo by zero".into()),
                // Go's math.Mod: the sign of the dividend, as Rust's `%`.
                b'%' => lhs % rhs,
                _ => lhs.powf(rhs),
            };
        }
        Ok(lhs)
    }

    /// A literal, `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` or `( expr )`.
    fn operand(&mut self) -> std::result::Result<f64, String> {
        let start = {
            self.skip_space();
            self.at
        };
        let bytes = self.text.as_bytes();
        match bytes.get(start) {
            Some(b'(') => {
                self.at += 1;
                let v = self.expr(0)?;
                self.expect(b')')?;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || *c == b'.' => {
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'.' || bytes[end] == b'_')
                {
                    // A decimal exponent's sign belongs to the number (`1e-3`).
                    end += 1;
                    if matches!(bytes[end - 1], b'e' | b'E')
                        && matches!(bytes.get(end), Some(b'+' | b'-'))
                        && !self.text[start..end].starts_with("0x")
                    {
                        end += 1;
                    }
                }
                self.at = end;
                literal_seconds(&self.text[start..end])
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let mut end = start;
                while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                    end += 1;
                }
                let name = self.text[start..end].to_ascii_lowercase();
                self.at = end;
                if !matches!(name.as_str(), "step" | "range" | "min_of" | "max_of") {
                    return Err(format!("{name} is none of step(), range(), min_of(), max_of()"));
                }
                self.expect(b'(')?;
                let v = match name.as_str() {
                    "step" => self.times.step_ms as f64 / 1000.0,
                    "range" => self.times.range_ms as f64 / 1000.0,
                    // min_of or max_of, as checked above.
                    _ => {
                        let a = self.expr(0)?;
                        self.expect(b',')?;
                        let b = self.expr(0)?;
                        if name == "min_of" {
                            crate::statistics::go_min(a, b)
                        } else {
                            crate::statistics::go_max(a, b)
                        }
                    }
                };
                self.expect(b')')?;
                Ok(v)
            }
            Some(&c) => Err(format!("unexpected '{}'", c as char)),
            None => Err("unexpected end of input".into()),
        }
    }
}

/// A number (seconds) or a duration literal (`1h30m`, `500ms`, `2d`) in seconds.
fn literal_seconds(s: &str) -> std::result::Result<f64, String> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .map_err(|_| format!("{s:?} is not a number"));
    }
    let units: [(&str, f64); 7] = [
        ("ms", 0.001),
        ("y", 365.0 * 86_400.0),
        ("w", 7.0 * 86_400.0),
        ("d", 86_400.0),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
    ];
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("{s:?} is not a duration"));
        }
        let n: f64 = rest[..digits].parse().map_err(|_| format!("{s:?} is not a duration"))?;
        rest = &rest[digits..];
        let Some((unit, size)) = units.iter().find(|(u, _)| rest.starts_with(u)) else {
            return Err(format!("{s:?} is not a duration"));
        };
        total += n * size;
        rest = &rest[unit.len()..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
