//! OTLP names → Prometheus names, as Prometheus's own OTLP receiver builds them (the
//! `otlptranslator` library, strategy "UnderscoreEscapingWithSuffixes"), plus the string form of
//! float label values (`le`, `quantile`). Attribute values are rendered in `decode::otlp::any_value`.
//!
//! Everything here is a pure function of its arguments; the table-driven tests below use the
//! expectations of Prometheus's own test suite, so a PromQL query written against a Prometheus
//! that ingested the same OTLP data selects the same names here.

use std::borrow::Cow;

/// A sender's string as reasons quote it: at most 100 bytes (cut at a character boundary, marked
/// with `...`), so an oversized name cannot bloat the response.
pub fn clip(s: &str) -> Cow<'_, str> {
    const MAX_SHOWN: usize = 100;
    if s.len() <= MAX_SHOWN {
        return Cow::Borrowed(s);
    }
    let mut end = MAX_SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}...", &s[..end]))
}

/// The OTLP metric shapes that decide the type suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge: no type suffix.
    Gauge,
    /// A monotonic cumulative sum: a Prometheus counter, named `..._total`.
    MonotonicCounter,
    /// A non-monotonic cumulative sum: a Prometheus gauge, with no `_total` and no `_ratio`.
    NonMonotonicCounter,
    /// An explicit-bucket histogram.
    Histogram,
    /// An exponential histogram (a native histogram).
    ExponentialHistogram,
    /// A summary.
    Summary,
}

/// OTLP (UCUM) units → Prometheus unit words. A unit not listed is kept, cleaned.
fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        // Time
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        // Bytes
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        // SI
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        // Misc
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

/// The denominator of a `x/y` unit, singular: `By/s` → `bytes_per_second`.
fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// `[a-zA-Z0-9:]`: the characters that survive in a metric name token (`_` separates tokens).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Splits a unit at its first `/` into the main and the `per_...` word, uncleaned. Annotations
/// (`{packets}`) and blank parts contribute nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main_otel = parts.next().unwrap_or("").trim();
    let main = if !main_otel.is_empty() && !main_otel.contains(['{', '}']) {
        unit_word(main_otel).unwrap_or(main_otel).to_string()
    } else {
        String::new()
    };
    let mut per = String::new();
    if let Some(per_otel) = parts.next().map(str::trim)
        && !per_otel.is_empty()
        && !per_otel.contains(['{', '}'])
    {
        per = format!("per_{}", per_unit_word(per_otel).unwrap_or(per_otel));
    }
    (main, per)
}

/// Makes a unit word name-safe: invalid characters become `_`, runs of `_` collapse to one, and
/// one leading `_` goes.
fn clean_up_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        let c = if is_token_char(c) { c } else { '_' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    match out.strip_prefix('_') {
        Some(rest) => rest.to_string(),
        None => out,
    }
}

/// The Prometheus metric name of an OTLP metric.
///
/// With `add_suffixes` (Prometheus's default): the name is split into tokens of `[a-zA-Z0-9:]`
/// (so every run of other characters, `_` included, becomes one `_`), the unit word and its
/// `per_` word are appended unless already a token, then `_total` for monotonic sums and
/// `_ratio` for gauges of unit `1` (moved to the end if already present). Without suffixes,
/// runs of characters outside `[a-zA-Z0-9:_]` become one `_`. Either way a leading digit gets a
/// `_` prefix. `Err` when nothing usable is left.
pub fn metric_name(name: &str, unit: &str, kind: MetricKind, add_suffixes: bool) -> Result<String, String> {
    let mut out = if add_suffixes {
        let mut tokens: Vec<String> = name
            .split(|c: char| !is_token_char(c))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        let (main, per) = unit_suffixes(unit);
        add_unit_tokens(&mut tokens, clean_up_unit(&main), clean_up_unit(&per));
        if kind == MetricKind::MonotonicCounter {
            tokens.retain(|t| t != "total");
            tokens.push("total".to_string());
        }
        // Some receivers use unit "1" for counts, so only gauges become ratios (as in Prometheus).
        if unit == "1" && kind == MetricKind::Gauge {
            tokens.retain(|t| t != "ratio");
            tokens.push("ratio".to_string());
        }
        tokens.join("_")
    } else {
        name.split(|c: char| !(is_token_char(c) || c == '_'))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.is_empty() || (out != name && out.chars().all(|c| c == '_')) {
        return Err(format!(
            "metric name {:?} has no characters usable in a Prometheus name ([a-zA-Z0-9_:])",
            clip(name)
        ));
    }
    Ok(out)
}

fn add_unit_tokens(tokens: &mut Vec<String>, main: String, per: String) {
    let mut main = if tokens.contains(&main) { String::new() } else { main };
    let per = if per == "per_" {
        String::new()
    } else {
        let per = per.strip_suffix('_').unwrap_or(&per).to_string();
        if tokens.contains(&per) { String::new() } else { per }
    };
    if !per.is_empty()
        && let Some(trimmed) = main.strip_suffix('_')
    {
        main = trimmed.to_string();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
}

/// The unit as `/api/v1/metadata` reports it: the Prometheus word the name suffix uses
/// (`By/s` → `bytes_per_second`, `1` → empty, `{packets}` → empty).
pub fn unit_name(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_up_unit(&main), clean_up_unit(&per));
    let u = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    let u = u.strip_prefix('_').unwrap_or(&u);
    u.strip_suffix('_').unwrap_or(u).to_string()
}

/// The Prometheus label name of an attribute key: every character outside `[a-zA-Z0-9_]`
/// becomes `_` (no collapsing), a leading digit gets `key_`, a single leading `_` gets `key`.
/// `Err` for an empty key or one that becomes only underscores.
pub fn label_name(key: &str) -> Result<String, String> {
    if key.is_empty() {
        return Err("attribute with an empty key".to_string());
    }
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out != key && out.chars().all(|c| c == '_') {
        return Err(format!(
            "attribute key {:?} has no characters usable in a Prometheus label name ([a-zA-Z0-9_])",
            clip(key)
        ));
    }
    Ok(out)
}

/// A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it, which is how Prometheus
/// spells `le` and `quantile` values: shortest round-trip digits, never an exponent
/// (`0.005`, `1`, `100000`), and `+Inf`, `-Inf`, `NaN`.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MetricKind::*;

    /// Expectations from Prometheus's `otlptranslator` tests (`normalizeName`,
    /// `BuildCompliantMetricName`, `MetricNamer.Build`), strategy UnderscoreEscapingWithSuffixes.
    #[test]
    fn metric_names_match_prometheus_with_suffixes() {
        // One case per line, as in Prometheus's tests.
        #[rustfmt::skip]
        let cases: &[(&str, &str, MetricKind, &str)] = &[
            ("system.filesystem.usage", "By", Gauge, "system_filesystem_usage_bytes"),
            ("system.io", "By", MonotonicCounter, "system_io_bytes_total"),
            ("network_transmitted_bytes_total", "By", MonotonicCounter, "network_transmitted_bytes_total"),
            ("\t system.filesystem.usage       ", "  By\t", Gauge, "system_filesystem_usage_bytes"),
            ("system.network.dropped", "{packets}", Gauge, "system_network_dropped"),
            ("system.network.dropped", "nonstandard:_1", Gauge, "system_network_dropped_nonstandard:_1"),
            ("system.network.dropped", "{packets}", MonotonicCounter, "system_network_dropped_total"),
            ("system.network.dropped", "packets", Gauge, "system_network_dropped_packets"),
            ("system.network.packets.dropped", "packets", Gauge, "system_network_packets_dropped"),
            ("system.network.packets", "packets", MonotonicCounter, "system_network_packets_total"),
            ("hw.gpu.memory.utilization", "1", Gauge, "hw_gpu_memory_utilization_ratio"),
            ("hw.fan.speed_ratio", "1", Gauge, "hw_fan_speed_ratio"),
            ("objects", "1", MonotonicCounter, "objects_total"),
            ("hw.cpu.speed_limit", "Hz", Gauge, "hw_cpu_speed_limit_hertz"),
            ("broken.metric.speed", "km/h", Gauge, "broken_metric_speed_km_per_hour"),
            ("astro.light.speed_limit", "m/s", Gauge, "astro_light_speed_limit_meters_per_second"),
            ("system.network.dropped", "non/standard:_1", Gauge, "system_network_dropped_non_per_standard:_1"),
            ("broken.metric.speed", "km/°", Gauge, "broken_metric_speed_km"),
            ("broken.metric.success_ratio", "%", Gauge, "broken_metric_success_ratio_percent"),
            ("broken.metric.success_percent", "%", Gauge, "broken_metric_success_percent"),
            ("test.metric.no_unit", "", Gauge, "test_metric_no_unit"),
            ("test.metric.spaces", "   \t  ", Gauge, "test_metric_spaces"),
            (
                "active_directory.ds.replication.object.rate",
                "{objects}/s",
                Gauge,
                "active_directory_ds_replication_object_rate_per_second",
            ),
            ("apache.workers", "connections", Gauge, "apache_workers_connections"),
            ("apache.requests", "1", MonotonicCounter, "apache_requests_total"),
            ("system.cpu.load_average.15m", "1", Gauge, "system_cpu_load_average_15m_ratio"),
            ("system.disk.operation_time", "s", MonotonicCounter, "system_disk_operation_time_seconds_total"),
            ("mongodbatlas.process.journaling.data_files", "MiBy", Gauge, "mongodbatlas_process_journaling_data_files_mebibytes"),
            ("mongodbatlas.process.network.io", "By/s", Gauge, "mongodbatlas_process_network_io_bytes_per_second"),
            ("mongodbatlas.process.oplog.rate", "GiBy/h", Gauge, "mongodbatlas_process_oplog_rate_gibibytes_per_hour"),
            (
                "mongodbatlas.process.db.query_targeting.scanned_per_returned",
                "{scanned}/{returned}",
                Gauge,
                "mongodbatlas_process_db_query_targeting_scanned_per_returned",
            ),
            ("nsxt.node.memory.usage", "KBy", Gauge, "nsxt_node_memory_usage_kilobytes"),
            ("redis.latest_fork", "us", Gauge, "redis_latest_fork_microseconds"),
            ("3.14 digits", "", Gauge, "_3_14_digits"),
            ("envoy__rule_engine_zlib_buf_error", "", Gauge, "envoy_rule_engine_zlib_buf_error"),
            (":foo::bar", "", Gauge, ":foo::bar"),
            (":foo::bar", "", MonotonicCounter, ":foo::bar_total"),
            ("foo.bar", "1", Gauge, "foo_bar_ratio"),
            ("system.io", "foo/bar", MonotonicCounter, "system_io_foo_per_bar_total"),
            ("metric_with_字符_foreign_characters", "", MonotonicCounter, "metric_with_foreign_characters_total"),
            ("temperature", "%*()°:C", Gauge, "temperature_:C"),
            ("requests", "1/s", MonotonicCounter, "requests_per_second_total"),
            ("metric__with__multiple__underscores", "unit__multiple__underscores", Gauge, "metric_with_multiple_underscores_unit_multiple_underscores"),
            ("custom_metric", "unit@with#special/chars", Gauge, "custom_metric_unit_with_special_per_chars"),
            ("response_time_seconds", "s", Gauge, "response_time_seconds"),
            ("cpu_usage_ratio", "1", Gauge, "cpu_usage_ratio"),
            ("active_connections", "", NonMonotonicCounter, "active_connections"),
            ("queue.size", "1", NonMonotonicCounter, "queue_size"),
            ("request_size", "By", ExponentialHistogram, "request_size_bytes"),
            ("response_time", "ms", Summary, "response_time_milliseconds"),
            ("http.server.request.duration", "s", Histogram, "http_server_request_duration_seconds"),
            ("capacity", "TiBy", Gauge, "capacity_tibibytes"),
            ("temperature", "Cel", Gauge, "temperature_celsius"),
            ("uptime", "d", Gauge, "uptime_days"),
            ("invoices", "1/mo", Gauge, "invoices_per_month"),
            ("metric", "By/", Gauge, "metric_bytes"),
            ("metric", " By / s ", Gauge, "metric_bytes_per_second"),
            ("metric", "/", Gauge, "metric"),
        ];
        for (name, unit, kind, want) in cases {
            assert_eq!(
                metric_name(name, unit, *kind, true).as_deref(),
                Ok(*want),
                "{name:?} unit {unit:?} {kind:?}"
            );
        }
    }

    #[test]
    fn metric_names_without_suffixes() {
        let cases: &[(&str, &str)] = &[
            ("system.io", "system_io"),
            ("network (I/O)", "network_I_O"),
            ("3.14 digits", "_3_14_digits"),
            ("envoy__rule_engine_zlib_buf_error", "envoy__rule_engine_zlib_buf_error"),
            (":foo::bar", ":foo::bar"),
            (
                "metric_with_字符_foreign_characters",
                "metric_with___foreign_characters",
            ),
            ("metric@@##$$name", "metric_name"),
            ("123metric", "_123metric"),
        ];
        for (name, want) in cases {
            assert_eq!(
                metric_name(name, "By", MonotonicCounter, false).as_deref(),
                Ok(*want),
                "{name:?}"
            );
        }
    }

    #[test]
    fn unusable_metric_names_are_errors() {
        for name in ["", "@#$%", "字符", "..."] {
            assert!(metric_name(name, "", Gauge, true).is_err(), "{name:?}");
            assert!(metric_name(name, "", Gauge, false).is_err(), "{name:?}");
        }
    }

    #[test]
    fn unit_names_match_prometheus() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("1", ""),
            ("s", "seconds"),
            ("ms", "milliseconds"),
            ("By", "bytes"),
            ("KiBy", "kibibytes"),
            ("By/s", "bytes_per_second"),
            ("1/s", "per_second"),
            ("{custom}", ""),
            ("By/{custom}", "bytes"),
            ("custom_unit", "custom_unit"),
            ("unit__multiple__underscores", "unit_multiple_underscores"),
            ("unit@with#special/chars", "unit_with_special_per_chars"),
            ("%", "percent"),
            ("m/s", "meters_per_second"),
        ];
        for (unit, want) in cases {
            assert_eq!(unit_name(unit), *want, "{unit:?}");
        }
    }

    /// Prometheus's `normalize_label` test expectations (default sanitization).
    #[test]
    fn label_names_match_prometheus() {
        let cases: &[(&str, &str)] = &[
            ("label:with:colons", "label_with_colons"),
            ("LabelWithCapitalLetters", "LabelWithCapitalLetters"),
            ("label!with&special$chars)", "label_with_special_chars_"),
            ("label_with_foreign_characters_字符", "label_with_foreign_characters___"),
            ("label.with.dots", "label_with_dots"),
            ("123label", "key_123label"),
            ("_label_starting_with_underscore", "key_label_starting_with_underscore"),
            (
                "__label_starting_with_2underscores",
                "__label_starting_with_2underscores",
            ),
            ("k8s.pod.name", "k8s_pod_name"),
            ("http.response.status-code", "http_response_status_code"),
            ("regular label", "regular_label"),
        ];
        for (key, want) in cases {
            assert_eq!(label_name(key).as_deref(), Ok(*want), "{key:?}");
        }
        assert!(label_name("").is_err());
        assert!(label_name("ようこそ").is_err());
    }

    #[test]
    fn reasons_clip_long_strings() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        let c = clip(&long);
        assert!(c.len() <= 103 && c.ends_with("...") && c.starts_with("éé"));
        let err = metric_name(&"@".repeat(10_000), "", Gauge, true).unwrap_err();
        assert!(err.len() < 250, "{err}");
    }

    #[test]
    fn floats_format_like_go_f_minus_one() {
        let cases: &[(f64, &str)] = &[
            (0.005, "0.005"),
            (1.0, "1"),
            (2.5, "2.5"),
            (100000.0, "100000"),
            (1e-5, "0.00001"),
            (1e21, "1000000000000000000000"),
            (-0.25, "-0.25"),
            (0.99, "0.99"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(*v), *want);
        }
    }
}
