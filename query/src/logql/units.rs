//! The units LogQL reads in queries and label values: Go durations and humanized byte sizes.

/// Go's `time.ParseDuration` plus Prometheus's `d`, `w`, `y`: `1h30m`, `1.5s`, `250ms`, `-2m`.
pub(crate) fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            "y" => 365.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

/// Humanized byte sizes, case-insensitive (`2KB` = 2000, `2KiB` = 2048, `10 mb`, `512`).
pub(crate) fn parse_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let num_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(text.len());
    let n: f64 = text[..num_len].parse().ok()?;
    let unit = text[num_len..].trim().to_ascii_lowercase();
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024.0f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024.0f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024.0f64.powi(6),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logql_units_parse_like_go_and_humanize() {
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("-2m"), Some(-120_000_000_000));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("5mb"), None);
        assert_eq!(parse_bytes("2KB"), Some(2000.0));
        assert_eq!(parse_bytes("2KiB"), Some(2048.0));
        assert_eq!(parse_bytes("1.5 mb"), Some(1.5e6));
        assert_eq!(parse_bytes("512"), Some(512.0));
        assert_eq!(parse_bytes("3 parsecs"), None);
    }
}
