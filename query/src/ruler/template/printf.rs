//! Go's `fmt` as templates meet it: how an action prints a value (`%v`), `printf`'s verbs,
//! flags, width and precision, and the `%g`/`%e`/`%f` float formats `humanize` and `$value`
//! print with (Go's digits, exponents and special values exactly: `1.235e+06`, `+Inf`, `NaN`).

use super::Value;

/// The significant decimal digits of `a` (finite, not negative), trailing zeros dropped, and
/// where the decimal point goes (`a = 0.d1d2... × 10^point`); zero has no digits. `digits`:
/// rounded to that many (ties to even on the exact binary value, as Go rounds); `None`: the
/// shortest digits that read back as `a`.
fn decimal(a: f64, digits: Option<usize>) -> (Vec<u8>, i32) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match digits {
        Some(n) => format!("{:.*e}", n.saturating_sub(1), a),
        None => format!("{a:e}"),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut d: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    (d, exp.parse::<i32>().unwrap_or(0) + 1)
}

/// `d.ddde+XX` with `frac` digits after the point (zero-filled), Go's two-digit exponent.
fn fmt_e(d: &[u8], point: i32, frac: usize, upper: bool) -> String {
    let digit = |i: usize| d.get(i).map_or('0', |&c| char::from(c));
    let mut s = String::from(digit(0));
    if frac > 0 {
        s.push('.');
        s.extend((1..=frac).map(digit));
    }
    let exp = if d.is_empty() { 0 } else { point - 1 };
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.unsigned_abs()));
    s
}

/// Already-rounded digits as `ddd.ddd` with `frac` digits after the point.
fn fmt_f(d: &[u8], point: i32, frac: usize) -> String {
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| d.get(i))
            .map_or('0', |&c| char::from(c))
    };
    let mut s: String = if point > 0 {
        (0..point).map(digit).collect()
    } else {
        "0".into()
    };
    if frac > 0 {
        s.push('.');
        s.extend((0..frac as i32).map(|i| digit(point + i)));
    }
    s
}

/// `v` as Go's `fmt` prints it with `verb` (`e E f F g G`, `v` = `g`) and an optional
/// precision (`None`: 6 for `e`/`f`, the shortest exact digits for `g`/`v`). Infinities are
/// `+Inf`/`-Inf` and NaN is `NaN`, whatever the verb, as in Go.
pub(super) fn go_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let a = v.abs();
    let upper = verb.is_ascii_uppercase();
    let body = match verb.to_ascii_lowercase() {
        'f' => format!("{:.*}", prec.unwrap_or(6), a),
        'e' => {
            let p = prec.unwrap_or(6);
            let (d, point) = decimal(a, Some(p + 1));
            fmt_e(&d, point, p, upper)
        }
        _ => {
            // strconv's %g: exponent form when the exponent is < -4 or >= the precision (6
            // for the shortest form), never with trailing zeros.
            let (d, point) = decimal(a, prec.map(|p| p.max(1)));
            let nd = d.len() as i32;
            let mut p = prec.map_or(nd, |p| p.max(1) as i32);
            let mut eprec = if prec.is_none() { 6 } else { p };
            if prec.is_some() && eprec > nd && nd >= point {
                eprec = nd;
            }
            let exp = point - 1;
            if exp < -4 || exp >= eprec {
                fmt_e(&d, point, (p.min(nd) - 1).max(0) as usize, upper)
            } else {
                if p > point {
                    p = nd;
                }
                fmt_f(&d, point, (p - point).max(0) as usize)
            }
        }
    };
    format!("{sign}{body}")
}

/// A Unix millisecond timestamp as Go's `time.Time.String()` prints a UTC time.
fn go_time(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let Some(t) = chrono::DateTime::from_timestamp(secs, (milli * 1_000_000) as u32) else {
        return format!("{ms}ms");
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if milli != 0 {
        s.push_str(format!(".{milli:03}").trim_end_matches('0'));
    }
    s + " +0000 UTC"
}

/// How an action prints a value (Go's `%v`; a missing value is `<no value>`).
pub(super) fn print_value(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float(*f, 'g', None),
        Value::Bool(b) => b.to_string(),
        Value::Map(m) => {
            let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", pairs.join(" "))
        }
        Value::Data => "<the alert data>".into(),
        Value::Time(ms) => go_time(*ms),
        Value::Nil => "<no value>".into(),
    }
}

/// Go's `url.QueryEscape`.
pub(super) fn quote_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `strconv.Quote` (`%q`): a double-quoted string with Go's escapes.
fn quote_go(s: &str, quote: char) -> String {
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `printf`'s flags.
#[derive(Default)]
struct Flags {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
}

/// Go's `fmt.Sprintf`: verbs `v s q d x X o b c e E f F g G t %`, flags `- + space 0 #`, width
/// and precision; a wrong type, a missing or an extra argument print Go's `%!d(string=x)`,
/// `%!d(MISSING)`, `%!(EXTRA int=1)`.
pub(super) fn sprintf(format: &str, args: &[Value<'_>]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut n: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
            n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
            chars.next();
        }
        n
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = Flags::default();
        while let Some(f) = chars.peek() {
            match f {
                '-' => flags.minus = true,
                '+' => flags.plus = true,
                ' ' => flags.space = true,
                '0' => flags.zero = true,
                '#' => flags.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = number(&mut chars);
        let mut prec = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(number(&mut chars).unwrap_or(0));
        }
        if width.is_some_and(|w| w > 1_000_000) {
            out.push_str("%!(BADWIDTH)");
            width = None;
        }
        if prec.is_some_and(|p| p > 1_000_000) {
            out.push_str("%!(BADPREC)");
            prec = None;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&one(verb, &flags, width, prec, arg));
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(typed).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// `type=value`, as Go's bad-verb and extra-argument notes print an argument.
fn typed(v: &Value<'_>) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        v => format!("{}={}", v.type_name(), print_value(v)),
    }
}

/// One verb applied to one argument, padded.
fn one(verb: char, flags: &Flags, width: Option<usize>, prec: Option<usize>, arg: &Value<'_>) -> String {
    let radix = |i: i64, r: u32, prefix: &str| {
        let digits = match r {
            16 if verb == 'X' => format!("{:X}", i.unsigned_abs()),
            16 => format!("{:x}", i.unsigned_abs()),
            8 => format!("{:o}", i.unsigned_abs()),
            2 => format!("{:b}", i.unsigned_abs()),
            _ => i.unsigned_abs().to_string(),
        };
        let digits = format!("{:0>w$}", digits, w = prec.unwrap_or(0));
        let prefix = if flags.sharp { prefix } else { "" };
        format!("{}{prefix}{digits}", if i < 0 { "-" } else { "" })
    };
    let (body, numeric) = match (verb, arg) {
        ('v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(x)) => {
            (go_float(*x, if verb == 'v' { 'g' } else { verb }, prec), true)
        }
        ('v' | 'd', Value::Int(i)) => (radix(*i, 10, ""), true),
        ('x', Value::Int(i)) => (radix(*i, 16, "0x"), true),
        ('X', Value::Int(i)) => (radix(*i, 16, "0X"), true),
        ('o', Value::Int(i)) => (radix(*i, 8, "0"), true),
        ('b', Value::Int(i)) => (radix(*i, 2, ""), true),
        ('c' | 'q', Value::Int(i)) => {
            let c = u32::try_from(*i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            (
                if verb == 'c' {
                    c.to_string()
                } else {
                    quote_go(&c.to_string(), '\'')
                },
                false,
            )
        }
        ('v' | 's' | 'q', Value::Str(s)) => {
            let s = prec.map_or(s.clone(), |p| s.chars().take(p).collect());
            (if verb == 'q' { quote_go(&s, '"') } else { s }, false)
        }
        ('x' | 'X', Value::Str(s)) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            (if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        ('v' | 't', Value::Bool(b)) => (b.to_string(), false),
        ('v' | 's', Value::Map(_) | Value::Time(_) | Value::Data) => (print_value(arg), false),
        ('v', Value::Nil) => ("<nil>".into(), false),
        _ => return format!("%!{verb}({})", typed(arg)),
    };
    let body = if numeric && !body.starts_with(['-', '+']) && (flags.plus || flags.space) {
        format!("{}{body}", if flags.plus { '+' } else { ' ' })
    } else {
        body
    };
    let len = body.chars().count();
    let Some(pad) = width.and_then(|w| w.checked_sub(len)).filter(|p| *p > 0) else {
        return body;
    };
    if flags.minus {
        return format!("{body}{}", " ".repeat(pad));
    }
    let special = body.ends_with("Inf") || body.ends_with("NaN");
    if flags.zero && !special {
        let signed = numeric && body.starts_with(['-', '+', ' ']);
        let (sign, digits) = body.split_at(usize::from(signed));
        return format!("{sign}{}{digits}", "0".repeat(pad));
    }
    format!("{}{body}", " ".repeat(pad))
}
