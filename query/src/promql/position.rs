//! Where function calls and their arguments sit in the query text.
//!
//! The parser's AST carries no positions, but Prometheus ends each annotation with the position of
//! the expression it is about (`... (1:6)`, line and byte column of its first character). A small
//! scan of the text finds every `name(` call site and where each of its top-level arguments
//! starts; the planner, which visits calls in textual order, claims them one by one.

/// One `name(...)` in the query text (aggregations included, with a `by`/`without` clause
/// between the name and the parenthesis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallSite {
    pub(crate) name: String,
    /// Byte offset of the first character of each top-level argument, parentheses around the
    /// whole argument skipped (Prometheus unwraps them before reporting).
    pub(crate) args: Vec<usize>,
}

/// Every call site of `query`, in textual order.
pub(crate) fn call_sites(query: &str) -> Vec<CallSite> {
    let bytes = query.as_bytes();
    let mut sites: Vec<CallSite> = Vec::new();
    // Per open parenthesis: the call site it opened, if any.
    let mut stack: Vec<Option<usize>> = Vec::new();
    // A call site whose next argument starts at the next significant character.
    let mut pending: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            i = skip_comment(bytes, i);
            continue;
        }
        if let Some(site) = pending
            && c != b'('
        {
            sites[site].args.push(i);
            pending = None;
        }
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(bytes, i),
            b'(' => {
                stack.push(None);
                i += 1;
            }
            b')' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                if let Some(Some(site)) = stack.last() {
                    pending = Some(*site);
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(bytes, i);
                let name = &query[i..end];
                match call_paren(bytes, end) {
                    Some(open) => {
                        sites.push(CallSite {
                            name: name.to_string(),
                            args: Vec::new(),
                        });
                        stack.push(Some(sites.len() - 1));
                        pending = Some(sites.len() - 1);
                        i = open + 1;
                    }
                    None => i = end,
                }
            }
            _ => i += 1,
        }
    }
    sites
}

/// Prometheus's `StartPosInput`: `line:column`, both from 1, the column counted in bytes.
pub(crate) fn line_col(query: &str, offset: usize) -> String {
    let before = &query[..offset.min(query.len())];
    let line = before.matches('\n').count() + 1;
    let col = match before.rfind('\n') {
        Some(nl) => offset - nl,
        None => offset + 1,
    };
    format!("{line}:{col}")
}

/// The `(` that makes the identifier ending at `end` a call: directly after it, or after a
/// `by (...)`/`without (...)` clause.
fn call_paren(bytes: &[u8], end: usize) -> Option<usize> {
    let next = skip_blank(bytes, end);
    if bytes.get(next) == Some(&b'(') {
        return Some(next);
    }
    if !bytes.get(next).is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let word_end = ident_end(bytes, next);
    let word = &bytes[next..word_end];
    if word != b"by" && word != b"without" {
        return None;
    }
    let open = skip_blank(bytes, word_end);
    if bytes.get(open) != Some(&b'(') {
        return None;
    }
    let close = open + bytes[open..].iter().position(|&c| c == b')')?;
    let after = skip_blank(bytes, close + 1);
    (bytes.get(after) == Some(&b'(')).then_some(after)
}

fn ident_end(bytes: &[u8], start: usize) -> usize {
    start
        + bytes[start..]
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
            .unwrap_or(bytes.len() - start)
}

fn skip_blank(bytes: &[u8], mut i: usize) -> usize {
    loop {
        match bytes.get(i) {
            Some(c) if c.is_ascii_whitespace() => i += 1,
            Some(b'#') => i = skip_comment(bytes, i),
            _ => return i,
        }
    }
}

fn skip_comment(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(bytes.len(), |nl| i + nl + 1)
}

/// Past the closing quote; backslash escapes apply except in backtick strings.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(query: &str) -> Vec<(String, Vec<String>)> {
        call_sites(query)
            .into_iter()
            .map(|s| (s.name, s.args.iter().map(|&a| line_col(query, a)).collect()))
            .collect()
    }

    #[test]
    fn finds_calls_and_argument_starts() {
        assert_eq!(args_of("rate(foo[5m])"), vec![("rate".into(), vec!["1:6".into()])]);
        assert_eq!(
            args_of("sum by (job) (rate( (x[1m]) ))"),
            vec![
                ("sum".into(), vec!["1:15".into()]),
                ("rate".into(), vec!["1:22".into()])
            ]
        );
        assert_eq!(
            args_of("histogram_quantile(0.9,\n  rate(b{le=\"(,\"}[5m]))"),
            vec![
                ("histogram_quantile".into(), vec!["1:20".into(), "2:3".into()]),
                ("rate".into(), vec!["2:8".into()])
            ]
        );
    }

    #[test]
    fn strings_comments_and_selectors_are_not_calls() {
        let q = "irate(x[1m]) # rate(y)\n + rate{a=\"rate(\"} + sum(z) by (rate)";
        let names: Vec<String> = call_sites(q).into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["irate", "sum", "by"]);
        assert_eq!(line_col("ab\ncd", 4), "2:2");
    }
}
