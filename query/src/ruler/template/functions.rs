//! The functions templates call: Go's builtins and Prometheus's template functions.

use super::printf::{go_float, print_value, quote_query, sprintf};
use super::{Res, Value};

/// Ok when `name` is a function this module evaluates; else why not (named).
pub(super) fn known_function(name: &str) -> Result<(), String> {
    match name {
        "and" | "or" | "not" | "len" | "index" | "eq" | "ne" | "lt" | "le" | "gt" | "ge" | "print" | "printf"
        | "println" | "html" | "urlquery" | "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" | "toTime" | "title" | "toUpper" | "toLower" | "reReplaceAll" | "match" | "stripPort"
        | "stripDomain" | "parseDuration" | "graphLink" | "tableLink" | "pathPrefix" | "externalURL" | "safeHtml" => {
            Ok(())
        }
        "query" => Err("template function query is not supported".into()),
        "first" | "label" | "value" | "strvalue" | "sortByLabel" => Err(format!(
            "template function {name} is not supported (it reads the results of query, which is not supported)"
        )),
        "args" | "tmpl" | "now" | "toDuration" | "call" | "slice" | "js" => {
            Err(format!("template function {name} is not supported"))
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}

/// Calls the function `name` (one `known_function` accepts).
pub(super) fn call<'d>(name: &str, args: Vec<Value<'d>>, url: &str) -> Res<Value<'d>> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("wrong number of args for {name}: want {n} got {}", args.len()))
        }
    };
    let calling = |e: String| format!("error calling {name}: {e}");
    if args.iter().any(|a| matches!(a, Value::Data)) && name != "not" {
        return Err(calling(
            "the alert data itself is not an argument; pass its fields".into(),
        ));
    }
    Ok(match name {
        "not" => {
            arity(1)?;
            Value::Bool(!args[0].truth())
        }
        "len" => {
            arity(1)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len() as i64,
                Value::Map(m) => m.len() as i64,
                v => return Err(calling(format!("len of type {}", v.type_name()))),
            })
        }
        "index" => {
            if args.is_empty() {
                return Err(format!("wrong number of args for {name}: want at least 1 got 0"));
            }
            let mut v = args[0].clone();
            for key in &args[1..] {
                v = match (&v, key) {
                    (Value::Map(m), Value::Str(k)) => Value::Str(m.get(k).cloned().unwrap_or_default()),
                    (v, k) => {
                        return Err(calling(format!(
                            "can't index item of type {} with {}",
                            v.type_name(),
                            k.type_name()
                        )));
                    }
                };
            }
            v
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            if args.len() < 2 || (name != "eq" && args.len() != 2) {
                return Err(format!("wrong number of args for {name}: want 2 got {}", args.len()));
            }
            let mut any = false;
            for b in &args[1..] {
                let ord = compare(&args[0], b).map_err(calling)?;
                any |= ord == Some(std::cmp::Ordering::Equal);
                if name != "eq" {
                    let ord = match ord {
                        Some(o) => o,
                        None if name == "ne" => return Ok(Value::Bool(true)),
                        None => return Ok(Value::Bool(false)),
                    };
                    return Ok(Value::Bool(match name {
                        "ne" => ord.is_ne(),
                        "lt" => ord.is_lt(),
                        "le" => ord.is_le(),
                        "gt" => ord.is_gt(),
                        _ => ord.is_ge(),
                    }));
                }
            }
            Value::Bool(any)
        }
        "print" | "println" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let strings = matches!(a, Value::Str(_)) || (i > 0 && matches!(args[i - 1], Value::Str(_)));
                if i > 0 && (name == "println" || !strings) {
                    s.push(' ');
                }
                s.push_str(&print_value(a));
            }
            if name == "println" {
                s.push('\n');
            }
            Value::Str(s)
        }
        "printf" => match args.split_first() {
            Some((Value::Str(f), rest)) => Value::Str(sprintf(f, rest)),
            _ => {
                return Err(format!(
                    "wrong type for value; expected string; got {}",
                    args.first().map_or("nothing", Value::type_name)
                ));
            }
        },
        "html" | "urlquery" => {
            let s: String = args.iter().map(print_value).collect();
            Value::Str(if name == "html" {
                escape_html(&s)
            } else {
                quote_query(&s)
            })
        }
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage" | "humanizeTimestamp" | "toTime" => {
            arity(1)?;
            let v = to_float(&args[0]).map_err(calling)?;
            match name {
                "humanize" => Value::Str(humanize(v, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"], true)),
                "humanize1024" => Value::Str(humanize(
                    v,
                    1024.0,
                    &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"],
                    false,
                )),
                "humanizeDuration" => Value::Str(humanize_duration(v)),
                "humanizePercentage" => Value::Str(format!("{}%", go_float(v * 100.0, 'g', Some(4)))),
                "humanizeTimestamp" if !v.is_finite() => Value::Str(go_float(v, 'g', Some(4))),
                "humanizeTimestamp" => Value::Str(print_value(&Value::Time(to_millis(v).map_err(calling)?))),
                _ => Value::Time(to_millis(v).map_err(calling)?),
            }
        }
        "title" | "toUpper" | "toLower" | "stripPort" | "stripDomain" | "parseDuration" | "graphLink" | "tableLink"
        | "safeHtml" => {
            arity(1)?;
            let s = string_arg(&args[0])?;
            match name {
                "title" => Value::Str(title(s)),
                "toUpper" => Value::Str(s.to_uppercase()),
                "toLower" => Value::Str(s.to_lowercase()),
                "stripPort" => Value::Str(split_host_port(s).map_or(s, |(h, _)| h).to_string()),
                "stripDomain" => Value::Str(strip_domain(s)),
                "parseDuration" => Value::Float(
                    parse_duration(s).ok_or_else(|| calling(format!("not a valid duration string: {s:?}")))?,
                ),
                "graphLink" | "tableLink" => Value::Str(format!(
                    "/graph?g0.expr={}&g0.tab={}",
                    quote_query(s),
                    u8::from(name == "tableLink")
                )),
                _ => Value::Str(s.to_string()),
            }
        }
        "match" => {
            arity(2)?;
            let re = regex::Regex::new(string_arg(&args[0])?).map_err(|e| calling(e.to_string()))?;
            Value::Bool(re.is_match(string_arg(&args[1])?))
        }
        "reReplaceAll" => {
            arity(3)?;
            let re = regex::Regex::new(string_arg(&args[0])?).map_err(|e| calling(e.to_string()))?;
            let text = string_arg(&args[2])?;
            Value::Str(re.replace_all(text, string_arg(&args[1])?).into_owned())
        }
        "externalURL" => {
            arity(0)?;
            Value::Str(url.to_string())
        }
        "pathPrefix" => {
            arity(0)?;
            let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
            let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
            Value::Str(path.split(['?', '#']).next().unwrap_or("").to_string())
        }
        // `check` refuses every other name; a template cannot get here with one.
        _ => {
            return Err(known_function(name)
                .err()
                .unwrap_or_else(|| format!("function {name:?} not defined")));
        }
    })
}

/// Go's `eq`/`lt` ordering of two basic values; `None` when unordered (NaN).
fn compare(a: &Value<'_>, b: &Value<'_>) -> Res<Option<std::cmp::Ordering>> {
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_),
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_),
        ) => {
            return Err("incompatible types for comparison".into());
        }
        _ => return Err("invalid type for comparison".into()),
    })
}

/// A function's `string` parameter (Go's reflection refuses any other type).
fn string_arg<'v>(v: &'v Value<'_>) -> Res<&'v str> {
    match v {
        Value::Str(s) => Ok(s),
        v => Err(format!("wrong type for value; expected string; got {}", v.type_name())),
    }
}

/// Prometheus's `convertToFloat`: numbers, and strings as Go's `strconv.ParseFloat` reads them.
fn to_float(v: &Value<'_>) -> Res<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        // Rust reads the same decimal, `Inf`/`NaN` and signed forms; `_` is Go's only with a
        // base prefix, which Rust does not read at all.
        Value::Str(s) => s
            .parse::<f64>()
            .ok()
            .filter(|_| !s.contains('_'))
            .ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
        v => Err(format!("can't convert {} to float", v.type_name())),
    }
}

/// Prometheus's `floatToTime`: seconds to a millisecond timestamp, refused when its nanoseconds
/// overflow an int64.
fn to_millis(v: f64) -> Res<i64> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let nanos = v * 1e9;
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&nanos) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            go_float(v, 'g', None)
        ));
    }
    Ok(nanos as i64 / 1_000_000)
}

/// `humanize` (SI prefixes, small values too) and `humanize1024` (binary prefixes, large only).
fn humanize(mut v: f64, base: f64, big: &[&str], small: bool) -> String {
    let plain = if small { v == 0.0 } else { v.abs() <= 1.0 };
    if plain || !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 || !small {
        for p in big {
            if v.abs() < base {
                break;
            }
            prefix = p;
            v /= base;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_float(v, 'g', Some(4)))
}

fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    if v == 0.0 {
        return format!("{}s", go_float(v, 'g', Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let whole = v as i64;
        let (s, m, h, d) = (whole % 60, whole / 60 % 60, whole / 3600 % 24, whole / 86400);
        return match (d, h, m) {
            (0, 0, 0) => format!("{sign}{}s", go_float(v, 'g', Some(4))),
            (0, 0, _) => format!("{sign}{m}m {s}s"),
            (0, _, _) => format!("{sign}{h}h {m}m {s}s"),
            _ => format!("{sign}{d}d {h}h {m}m {s}s"),
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_float(v, 'g', Some(4)))
}

/// Go's `strings.Title`: the first letter of every word upper-cased.
fn title(s: &str) -> String {
    let mut prev_sep = true;
    s.chars()
        .map(|c| {
            let sep = if c.is_ascii() {
                !(c.is_ascii_alphanumeric() || c == '_')
            } else {
                !c.is_alphanumeric() && c.is_whitespace()
            };
            let out = if prev_sep {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c
            };
            prev_sep = sep;
            out
        })
        .collect()
}

/// Go's `net.SplitHostPort`; `None` where it errors.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let colon = s.rfind(':')?;
    let host = if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')? + 1;
        if end + 1 != colon {
            return None;
        }
        &s[1..end]
    } else {
        let h = &s[..colon];
        if h.contains(':') {
            return None;
        }
        h
    };
    if s[..colon].matches('[').count() > usize::from(s.starts_with('[')) || s[colon..].contains(['[', ']']) {
        return None;
    }
    Some((host, &s[colon + 1..]))
}

/// Prometheus's `stripDomain`: a host name's first label, its port kept; IP addresses untouched.
fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let first = host.split('.').next().unwrap_or("");
    match (port, first.contains(':')) {
        ("", _) => first.to_string(),
        (_, true) => format!("[{first}]:{port}"),
        (_, false) => format!("{first}:{port}"),
    }
}

/// Prometheus's duration syntax (`1h2m10ms`, units `y w d h m s ms`, largest first), in seconds.
fn parse_duration(s: &str) -> Option<f64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s == "0" {
        return Some(0.0);
    }
    let (mut rest, mut total, mut last) = (s, 0u64, 0usize);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let i = UNITS.iter().position(|(u, _)| *u == &rest[..unit_len])?;
        if i < last || (i == last && total > 0) {
            return None;
        }
        last = i;
        total = total.checked_add(n.checked_mul(UNITS[i].1)?)?;
        rest = &rest[unit_len..];
    }
    Some(total as f64 / 1000.0)
}

/// Go's `html/template`'s `html` escaping (`HTMLEscapeString`).
fn escape_html(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut o, c| {
        o.push_str(match c {
            '<' => "&lt;",
            '>' => "&gt;",
            '&' => "&amp;",
            '\'' => "&#39;",
            '"' => "&#34;",
            '\0' => "\u{FFFD}",
            _ => {
                o.push(c);
                return o;
            }
        });
        o
    })
}
