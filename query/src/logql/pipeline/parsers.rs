//! Loki's line parsers: `json` (with paths), `unpack`, `logfmt`, `regexp` and `pattern`. Each
//! adds the labels it extracts to the [`Entry`] (`_extracted` when a stream label has the name),
//! or marks the entry with Loki's error labels when the line does not parse.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value as Json;

use super::{Entry, JSON_ERR, LOGFMT_ERR, insert_extracted, sanitize_label_name};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum PathStep {
    Key(String),
    Index(usize),
}

/// `a.b[0]["c d"]` into steps.
pub(super) fn parse_json_path(path: &str) -> std::result::Result<Vec<PathStep>, String> {
    let mut steps = Vec::new();
    let mut chars = path.chars().peekable();
    let mut key = String::new();
    let err = || format!("invalid JSON path {path:?}");
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !key.is_empty() {
                    steps.push(PathStep::Key(std::mem::take(&mut key)));
                }
            }
            '[' => {
                if !key.is_empty() {
                    steps.push(PathStep::Key(std::mem::take(&mut key)));
                }
                if chars.peek() == Some(&'"') {
                    chars.next();
                    let mut k = String::new();
                    loop {
                        match chars.next() {
                            Some('\\') => k.push(chars.next().ok_or_else(err)?),
                            Some('"') => break,
                            Some(ch) => k.push(ch),
                            None => return Err(err()),
                        }
                    }
                    if chars.next() != Some(']') {
                        return Err(err());
                    }
                    steps.push(PathStep::Key(k));
                } else {
                    let mut n = String::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(ch) => n.push(ch),
                            None => return Err(err()),
                        }
                    }
                    steps.push(PathStep::Index(n.trim().parse().map_err(|_| err())?));
                }
            }
            c => key.push(c),
        }
    }
    if !key.is_empty() {
        steps.push(PathStep::Key(key));
    }
    if steps.is_empty() {
        return Err(err());
    }
    Ok(steps)
}

pub(super) fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

pub(super) fn json_stage(e: &mut Entry, params: &[(String, Vec<PathStep>)], stream: &BTreeSet<String>) {
    let parsed: Json = match serde_json::from_str(&e.line) {
        Ok(v @ Json::Object(_)) => v,
        Ok(_) => {
            e.set_error(
                JSON_ERR,
                "Value looks like object, but can't find closing '}' symbol".into(),
            );
            return;
        }
        Err(err) => {
            e.set_error(JSON_ERR, err.to_string());
            return;
        }
    };
    if params.is_empty() {
        let mut out = Vec::new();
        flatten_json("", &parsed, &mut out);
        for (k, v) in out {
            insert_extracted(e, k, v, stream);
        }
        return;
    }
    for (label, path) in params {
        let mut cur = Some(&parsed);
        for step in path {
            cur = match (cur, step) {
                (Some(Json::Object(m)), PathStep::Key(k)) => m.get(k),
                (Some(Json::Array(a)), PathStep::Index(i)) => a.get(*i),
                _ => None,
            };
        }
        let value = cur.and_then(json_text).unwrap_or_default();
        insert_extracted(e, label.clone(), value, stream);
    }
}

/// Loki's flattening: nested keys joined with `_`, arrays skipped, names sanitized.
pub(super) fn flatten_json(prefix: &str, v: &Json, out: &mut Vec<(String, String)>) {
    let Json::Object(map) = v else { return };
    for (k, v) in map {
        let name = if prefix.is_empty() {
            sanitize_label_name(k)
        } else {
            format!("{prefix}_{}", sanitize_label_name(k))
        };
        match v {
            Json::Object(_) => flatten_json(&name, v, out),
            Json::Array(_) => {}
            other => {
                if let Some(text) = json_text(other) {
                    out.push((name, text));
                }
            }
        }
    }
}

pub(super) fn unpack_stage(e: &mut Entry, stream: &BTreeSet<String>) {
    let map = match serde_json::from_str::<Json>(&e.line) {
        Ok(Json::Object(m)) => m,
        Ok(_) => {
            e.set_error(JSON_ERR, "expecting a JSON object".into());
            return;
        }
        Err(err) => {
            e.set_error(JSON_ERR, err.to_string());
            return;
        }
    };
    let mut entry_line = None;
    for (k, v) in map {
        let Json::String(s) = v else { continue };
        if k == "_entry" {
            entry_line = Some(s);
        } else {
            insert_extracted(e, sanitize_label_name(&k), s, stream);
        }
    }
    if let Some(line) = entry_line {
        e.line = line;
    }
}

// ---- logfmt

pub(super) fn logfmt_stage(e: &mut Entry, params: &[(String, String)], stream: &BTreeSet<String>) {
    let pairs = match parse_logfmt(&e.line) {
        Ok(p) => p,
        Err(details) => {
            e.set_error(LOGFMT_ERR, details);
            return;
        }
    };
    if params.is_empty() {
        for (k, v) in pairs {
            let name = sanitize_label_name(&k);
            if !name.is_empty() {
                insert_extracted(e, name, v, stream);
            }
        }
    } else {
        for (label, key) in params {
            if let Some((_, v)) = pairs.iter().rev().find(|(k, _)| k == key) {
                insert_extracted(e, label.clone(), v.clone(), stream);
            }
        }
    }
}

/// `key=value key2="quoted \"value\"" flag` pairs; a bare key has the empty value.
pub(crate) fn parse_logfmt(line: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| *c <= ' ') {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else { break };
        let mut end = line.len();
        let mut has_value = false;
        while let Some(&(i, c)) = chars.peek() {
            if c <= ' ' || c == '=' {
                end = i;
                has_value = c == '=';
                break;
            }
            chars.next();
        }
        let key = &line[start..end];
        if has_value {
            chars.next();
        }
        let mut value = String::new();
        if has_value {
            if chars.peek().is_some_and(|(_, c)| *c == '"') {
                chars.next();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, 't')) => value.push('\t'),
                            Some((_, 'r')) => value.push('\r'),
                            Some((_, other)) => value.push(other),
                            None => break,
                        },
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err(format!(
                        "logfmt syntax error at pos {}: unterminated quoted value",
                        line.len()
                    ));
                }
            } else {
                while let Some(&(_, c)) = chars.peek() {
                    if c <= ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        if key.is_empty() {
            return Err(format!("logfmt syntax error at pos {}: unexpected '='", start + 1));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

// ---- regexp and patterns

/// Compiles `| regexp` text, which needs at least one named capture with a valid label name.
pub(crate) fn check_regexp(re: &str) -> std::result::Result<Regex, String> {
    let compiled = Regex::new(re).map_err(|e| format!("invalid regex: {e}"))?;
    let mut named = 0;
    for name in compiled.capture_names().flatten() {
        if sanitize_label_name(name) != name {
            return Err(format!("invalid extracted label name '{name}'"));
        }
        named += 1;
    }
    if named == 0 {
        return Err("at least one named capture must be supplied".into());
    }
    Ok(compiled)
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum PatternPart {
    Literal(String),
    /// `None` for `<_>`.
    Capture(Option<String>),
}

pub(super) fn parse_pattern(p: &str) -> std::result::Result<Vec<PatternPart>, String> {
    let mut parts = Vec::new();
    let mut rest = p;
    let mut literal = String::new();
    while !rest.is_empty() {
        if rest.starts_with('<')
            && let Some(close) = rest.find('>')
        {
            let name = &rest[1..close];
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if valid {
                if !literal.is_empty() {
                    parts.push(PatternPart::Literal(std::mem::take(&mut literal)));
                }
                if matches!(parts.last(), Some(PatternPart::Capture(_))) {
                    return Err("found consecutive capture: invalid pattern".into());
                }
                parts.push(PatternPart::Capture((name != "_").then(|| name.to_string())));
                rest = &rest[close + 1..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !literal.is_empty() {
        parts.push(PatternPart::Literal(literal));
    }
    Ok(parts)
}

/// `| pattern`: captures in order, each up to the next literal (to the end when the literal is
/// missing, as Loki does), the line starting with the leading literal if any.
#[derive(Clone, Debug)]
pub(crate) struct ExtractPattern {
    parts: Vec<PatternPart>,
}

impl ExtractPattern {
    pub(crate) fn new(p: &str) -> std::result::Result<Self, String> {
        let parts = parse_pattern(p)?;
        let mut names = BTreeSet::new();
        for part in &parts {
            if let PatternPart::Capture(Some(n)) = part
                && !names.insert(n.clone())
            {
                return Err(format!("duplicate capture name ({n}): invalid pattern"));
            }
        }
        if names.is_empty() {
            return Err("at least one capture is required: invalid pattern".into());
        }
        Ok(Self { parts })
    }

    pub(crate) fn extract<'a>(&'a self, line: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        let mut parts = self.parts.as_slice();
        let mut rest = line;
        if let Some(PatternPart::Literal(lit)) = parts.first() {
            match rest.strip_prefix(lit.as_str()) {
                Some(r) => rest = r,
                None => return out,
            }
            parts = &parts[1..];
        }
        while let Some(PatternPart::Capture(name)) = parts.first() {
            let Some(PatternPart::Literal(lit)) = parts.get(1) else {
                if let Some(n) = name {
                    out.push((n.as_str(), rest));
                }
                return out;
            };
            parts = &parts[2..];
            match rest.find(lit.as_str()) {
                Some(i) => {
                    if let Some(n) = name {
                        out.push((n.as_str(), &rest[..i]));
                    }
                    rest = &rest[i + lit.len()..];
                }
                None => {
                    if let Some(n) = name {
                        out.push((n.as_str(), rest));
                    }
                    return out;
                }
            }
        }
        out
    }
}

/// `|> "<_> error <_>"`: the whole line must match, captures matching anything.
#[derive(Debug)]
pub(crate) struct LinePattern(Regex);

impl LinePattern {
    pub(crate) fn new(p: &str) -> std::result::Result<Self, String> {
        let mut re = String::from("(?s)^");
        for part in parse_pattern(p)? {
            match part {
                PatternPart::Literal(l) => re.push_str(&regex::escape(&l)),
                PatternPart::Capture(_) => re.push_str(".*?"),
            }
        }
        re.push('$');
        Regex::new(&re).map(LinePattern).map_err(|e| e.to_string())
    }

    pub(crate) fn matches(&self, line: &str) -> bool {
        self.0.is_match(line)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::logql::pipeline::ERROR_LABEL;

    fn entry(line: &str) -> Entry {
        Entry {
            timestamp: 0,
            line: line.into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn logql_json_flattens_and_extracts_paths() {
        let stream: BTreeSet<String> = ["app".to_string()].into();
        let mut e = entry(r#"{"app":"x","req":{"status":500,"path":"/a"},"tags":[1],"ok":true,"n":null}"#);
        json_stage(&mut e, &[], &stream);
        assert_eq!(e.labels.get("app_extracted").unwrap(), "x");
        assert_eq!(e.labels.get("req_status").unwrap(), "500");
        assert_eq!(e.labels.get("req_path").unwrap(), "/a");
        assert_eq!(e.labels.get("ok").unwrap(), "true");
        assert!(!e.labels.contains_key("tags") && !e.labels.contains_key("n"));
        let mut e = entry(r#"{"servers":["a","b"],"h":{"User-Agent":"curl"}}"#);
        let params = vec![
            ("first".to_string(), parse_json_path("servers[0]").unwrap()),
            ("ua".to_string(), parse_json_path(r#"h["User-Agent"]"#).unwrap()),
        ];
        json_stage(&mut e, &params, &BTreeSet::new());
        assert_eq!(e.labels.get("first").unwrap(), "a");
        assert_eq!(e.labels.get("ua").unwrap(), "curl");
        let mut bad = entry("not json");
        json_stage(&mut bad, &[], &BTreeSet::new());
        assert_eq!(bad.labels.get(ERROR_LABEL).unwrap(), JSON_ERR);
    }

    #[test]
    fn logql_logfmt_parses_quotes_and_bare_keys() {
        let pairs = parse_logfmt(r#"level=info msg="hello \"world\"" flag dur=1.5s"#).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("level".into(), "info".into()),
                ("msg".into(), "hello \"world\"".into()),
                ("flag".into(), String::new()),
                ("dur".into(), "1.5s".into()),
            ]
        );
        assert!(parse_logfmt(r#"a="unterminated"#).is_err());
        assert!(parse_logfmt("=x").is_err());
    }

    #[test]
    fn logql_regexp_needs_named_groups() {
        assert!(check_regexp("(?P<a>x)").is_ok());
        assert!(check_regexp("(x)").is_err());
        assert!(check_regexp("(?P<a>").is_err());
    }
}
