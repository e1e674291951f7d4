//! The queries both servers answer, generated per feature (each function × a few selectors,
//! each aggregation × groupings, operators with every matching modifier, ...).
//!
//! A query is excluded only where Prometheus 2.42 and Prometheus 3 (Tributary's semantics)
//! legitimately answer differently for a reason other than window boundaries, which the
//! dataset's timestamps avoid; the reason is stated with the query.

use super::dataset::Dataset;

#[derive(Clone, Debug)]
pub(super) struct Case {
    pub feature: &'static str,
    pub query: String,
    /// Why the answers may legitimately differ (the query is still run, never compared).
    pub excluded: Option<&'static str>,
    /// The order of an instant vector is part of the answer (`sort`, `topk`).
    pub ordered: bool,
    /// Range-vector valued: only instant queries can return it.
    pub instant_only: bool,
}

const REGEX_NEWLINE: &str = "Prometheus 3 regex matchers let `.` match a newline; 2.x did not";
const HOLT_WINTERS: &str = "holt_winters was removed in Prometheus 3 (double_exponential_smoothing, experimental)";
const NEW_FUNCTION: &str = "sort_by_label was added in Prometheus 2.49 (experimental in 3)";
const STDDEV_INF: &str = "Prometheus 3 makes the variance of a group whose first value is NaN or ±Inf NaN; \
    2.x started from 0 and answered 0 for one-element groups";
const KAHAN_INF: &str = "2.x's Kahan summation turned an overflow to ±Inf into NaN; Prometheus 3 keeps the Inf";
const ATAN2_NAME: &str = "2.x kept the metric name on atan2 results; Prometheus 3 drops it like all arithmetic";
const ZERO_CUTOFF: &str = "Prometheus 3 cuts a counter's extrapolation at its zero point after applying the \
    extrapolation threshold, 2.x before it: they differ where a counter with big resets starts inside the window";

#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn push(
        &mut self,
        feature: &'static str,
        query: String,
        excluded: Option<&'static str>,
        ordered: bool,
        instant_only: bool,
    ) {
        self.0.push(Case {
            feature,
            query,
            excluded,
            ordered,
            instant_only,
        });
    }

    fn add(&mut self, feature: &'static str, query: impl Into<String>) {
        self.push(feature, query.into(), None, false, false);
    }

    fn ordered(&mut self, feature: &'static str, query: impl Into<String>) {
        self.push(feature, query.into(), None, true, false);
    }

    fn matrix(&mut self, feature: &'static str, query: impl Into<String>) {
        self.push(feature, query.into(), None, false, true);
    }

    fn excluded(&mut self, feature: &'static str, query: impl Into<String>, why: &'static str) {
        self.push(feature, query.into(), Some(why), false, false);
    }
}

const COUNTERS: [&str; 3] = [
    "http_requests_total",
    r#"http_requests_total{cluster="eu-1",code="200"}"#,
    "request_duration_seconds_count",
];
const GAUGES: [&str; 5] = [
    "temperature_celsius",
    r#"temperature_celsius{sensor!="gpu"}"#,
    "odd_gauge",
    "flappy_gauge",
    "stale_gauge",
];

/// Queries whose right answer here is nothing at every evaluation: anything else that comes back
/// empty from Prometheus everywhere is a broken test query.
pub(super) fn expected_empty(query: &str) -> bool {
    const EMPTY: [&str; 9] = [
        "clamp(temperature_celsius, 5, -5)",
        "topk(0, up)",
        "topk(-1, up)",
        "absent(up)",
        "temperature_celsius == 5",
        "5 == temperature_celsius",
        "temperature_celsius == ratio_gauge",
        "histogram_quantile(0.5, rate(http_requests_total[5m]))",
        // Excluded: 2.x does not let `.` match the newline.
        r#"odd_labels{msg=~"line1.line2"}"#,
    ];
    // Present series are never absent over 10 minutes.
    EMPTY.contains(&query) || (query.starts_with("absent_over_time(") && query.ends_with("[10m])"))
}

pub(super) fn cases(data: &Dataset) -> Vec<Case> {
    let at = format!("{:.3}", data.at(30, 500));
    let mut c = Cases::default();
    selectors(&mut c, &at);
    rates(&mut c);
    over_time(&mut c);
    element_wise(&mut c);
    aggregations(&mut c);
    operators(&mut c);
    subqueries(&mut c, &at);
    misc(&mut c, &at);
    c.0
}

fn selectors(c: &mut Cases, at: &str) {
    for q in [
        "http_requests_total",
        "temperature_celsius",
        "odd_gauge",
        "flappy_gauge",
        "stale_gauge",
        "odd_labels",
        "request_duration_seconds_bucket",
        r#"http_requests_total{code="500"}"#,
        r#"http_requests_total{code!="500",cluster=~"eu-.*|us-2"}"#,
        r#"temperature_celsius{cluster!~"ap-.*"}"#,
        r#"{__name__=~"temperature_celsius|ratio_gauge",cluster="eu-1"}"#,
        r#"{cluster="us-2",__name__!~"http.*|request.*|temp.*|ratio.*"}"#,
        r#"odd_labels{path="/a \"quoted\" \\ back"}"#,
        r#"odd_labels{utf8=~"h.llo.*"}"#,
        r#"odd_labels{utf8="🚀 emoji"}"#,
        r#"up{job="api"} offset 5m"#,
        "temperature_celsius offset 10m",
        "flappy_gauge offset -2m",
    ] {
        c.add("selector", q);
    }
    c.excluded("selector", r#"odd_labels{msg=~"line1.line2"}"#, REGEX_NEWLINE);
    for q in [
        "temperature_celsius[2m]",
        "stale_gauge[10m]",
        "odd_gauge[1m]",
        "flappy_gauge[3m] offset 1m",
    ] {
        c.matrix("selector", q);
    }
    c.add("at", format!("temperature_celsius @ {at}"));
    c.add("at", format!("rate(http_requests_total[5m] @ {at})"));
    c.add("at", format!("sum by (cluster) (up @ {at} offset 1m)"));
    c.add("at", "up @ start()");
    c.add("at", "max_over_time(temperature_celsius[5m] @ end())");
    c.add("at", format!("temperature_celsius - temperature_celsius @ {at}"));
    c.matrix("at", format!("odd_gauge[2m] @ {at}"));
}

fn rates(c: &mut Cases) {
    for f in ["rate", "increase", "delta", "irate", "idelta"] {
        for sel in COUNTERS
            .iter()
            .chain(&["gappy_requests_total", "temperature_celsius", "odd_gauge"])
        {
            for range in ["1m", "5m"] {
                c.add("rate", format!("{f}({sel}[{range}])"));
            }
        }
    }
    for f in ["delta", "irate", "idelta"] {
        c.add("rate", format!("{f}(flappy_gauge[5m])"));
    }
    // A gauge's every decrease counts as a counter reset, so its "increase" is large next to its
    // first value: exactly the case where the zero-point cutoff order matters.
    c.excluded("rate", "rate(flappy_gauge[5m])", ZERO_CUTOFF);
    c.add(
        "rate",
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    );
    c.add("rate", "sum by (cluster) (rate(http_requests_total[2m]))");
    c.add("rate", "rate(stale_gauge[10m])");
}

fn over_time(c: &mut Cases) {
    let functions = [
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "present_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "changes",
        "resets",
        "deriv",
        "absent_over_time",
    ];
    for f in functions {
        for sel in GAUGES.iter().chain(&[r#"http_requests_total{cluster="us-2"}"#]) {
            for range in ["2m", "10m"] {
                let q = format!("{f}({sel}[{range}])");
                if f.starts_with("std") && *sel == "odd_gauge" {
                    // Squared deviations of values near 1e300 overflow.
                    c.add("over_time", format!(r#"{f}(odd_gauge{{kind!="big"}}[{range}])"#));
                    c.excluded("over_time", q, KAHAN_INF);
                } else {
                    c.add("over_time", q);
                }
            }
        }
    }
    for sel in GAUGES {
        c.add("over_time", format!("quantile_over_time(0.3, {sel}[5m])"));
        c.add("over_time", format!("predict_linear({sel}[10m], 600)"));
        c.add("over_time", format!("predict_linear({sel}[5m] offset 5m, 60)"));
    }
    c.add("over_time", "quantile_over_time(1.5, temperature_celsius[5m])");
    c.add("over_time", "quantile_over_time(-1, temperature_celsius[5m])");
    c.add(
        "over_time",
        r#"absent_over_time(nonexistent{job="x",cluster=~"e.*"}[5m])"#,
    );
    c.add("over_time", "deriv(boot_time_seconds[5m])");
    c.excluded(
        "over_time",
        "holt_winters(temperature_celsius[10m], 0.5, 0.5)",
        HOLT_WINTERS,
    );
}

fn element_wise(c: &mut Cases) {
    let math = [
        "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "round",
    ];
    for f in math {
        for sel in ["temperature_celsius", "odd_gauge", "node_memory_bytes", "ratio_gauge"] {
            c.add("math", format!("{f}({sel})"));
        }
    }
    for q in [
        "round(temperature_celsius, 0.5)",
        "round(temperature_celsius, 3)",
        "round(odd_gauge, 0.1)",
        "clamp(temperature_celsius, -5, 5)",
        "clamp(odd_gauge, -1, 1)",
        "clamp(temperature_celsius, 5, -5)",
        "clamp_min(temperature_celsius, 0)",
        "clamp_max(odd_gauge, 10)",
        "sgn(-temperature_celsius)",
    ] {
        c.add("math", q);
    }
    let trig = [
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad",
    ];
    for f in trig {
        for sel in ["temperature_celsius", "ratio_gauge", "odd_gauge"] {
            c.add("trig", format!("{f}({sel})"));
        }
    }
    c.add("trig", "pi()");
    c.add("trig", "temperature_celsius * pi()");
    c.add("trig", "sin(pi() / 6)");
    let dates = [
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "day_of_year",
        "days_in_month",
        "month",
        "year",
    ];
    for f in dates {
        c.add("date", format!("{f}()"));
        c.add("date", format!("{f}(boot_time_seconds)"));
        c.add("date", format!("{f}(timestamp(temperature_celsius))"));
        c.add("date", format!("{f}(odd_gauge)"));
        c.add("date", format!("{f}(vector(time()))"));
    }
}

fn aggregations(c: &mut Cases) {
    let groupings = [
        "",
        " by (cluster)",
        " without (instance)",
        " by (cluster, job)",
        " by (__name__)",
    ];
    for op in ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"] {
        for sel in ["http_requests_total", "temperature_celsius", "odd_gauge", "up"] {
            for g in groupings {
                let q = format!("{op}{g} ({sel})");
                // `without (instance)` makes one group per odd series, some holding only NaN.
                if matches!(op, "stddev" | "stdvar") && sel == "odd_gauge" && g.contains("without") {
                    c.excluded("aggregation", q, STDDEV_INF);
                } else {
                    c.add("aggregation", q);
                }
            }
        }
    }
    for sel in ["http_requests_total", "temperature_celsius", "odd_gauge"] {
        c.ordered("topk", format!("topk(3, {sel})"));
        c.ordered("topk", format!("bottomk(2, {sel})"));
        c.add("topk", format!("topk by (cluster) (1, {sel})"));
        c.add("topk", format!("bottomk without (instance) (1, {sel})"));
        c.add("aggregation", format!("quantile(0.9, {sel})"));
        c.add("aggregation", format!("quantile by (cluster) (0.5, {sel})"));
        c.add("aggregation", format!("quantile(0, {sel})"));
        c.add("aggregation", format!("quantile(2, {sel})"));
    }
    c.add("topk", "topk(0, up)");
    c.add("topk", "topk(1000, up)");
    c.add("aggregation", r#"count_values("value", up)"#);
    c.add("aggregation", r#"count_values by (cluster) ("value", up)"#);
    c.add(
        "aggregation",
        r#"count_values without (instance) ("v", round(temperature_celsius))"#,
    );
    c.add("aggregation", r#"count_values("value", odd_gauge)"#);
    c.add("aggregation", "sum(rate(http_requests_total[5m])) by (cluster)");
    c.add(
        "aggregation",
        "avg by (cluster) (avg_over_time(temperature_celsius[5m]))",
    );
    c.add("aggregation", "max by (kind) (odd_gauge)");
}

fn operators(c: &mut Cases) {
    for op in ["+", "-", "*", "/", "%", "^"] {
        c.add("binary", format!("temperature_celsius {op} ratio_gauge"));
        c.add("binary", format!("temperature_celsius {op} 3"));
        c.add("binary", format!("2 {op} odd_gauge"));
    }
    // `* 1` drops the name in both, so atan2's values are still compared.
    for q in [
        "temperature_celsius atan2 ratio_gauge",
        "temperature_celsius atan2 3",
        "2 atan2 odd_gauge",
    ] {
        c.add("binary", format!("({q}) * 1"));
        c.excluded("binary", q, ATAN2_NAME);
    }
    for op in ["==", "!=", ">", "<", ">=", "<="] {
        c.add("comparison", format!("temperature_celsius {op} 5"));
        c.add("comparison", format!("5 {op} temperature_celsius"));
        c.add("comparison", format!("temperature_celsius {op} bool 5"));
        c.add("comparison", format!("temperature_celsius {op} ratio_gauge"));
        c.add("comparison", format!("temperature_celsius {op} bool ratio_gauge"));
        c.add("comparison", format!("up {op} bool 1"));
        c.add("comparison", format!("odd_gauge {op} 0"));
        c.add("comparison", format!("1 {op} bool 2"));
    }
    for q in [
        "-temperature_celsius",
        "-odd_gauge",
        "1 + 2 * 3 - 4 / 2",
        "2 ^ 3 ^ 2",
        "-2 ^ 2",
        "5 % 3 + 7 % -2",
        "1 / 0",
        "0 / 0",
        "-1 / 0",
        "temperature_celsius / on(cluster, instance, sensor) ratio_gauge",
        "temperature_celsius * ignoring(sensor) group_left node_memory_bytes",
        "node_memory_bytes / ignoring(sensor) group_right temperature_celsius",
        "http_requests_total / on(cluster, job, instance) group_left sum by (cluster, job, instance) (http_requests_total)",
        "rate(http_requests_total[5m]) * on(cluster, job, instance) group_left(version) build_info",
        "up * on(cluster, job, instance) group_left(version) build_info",
        "sum by (cluster, job) (rate(http_requests_total[5m])) / on(cluster) group_left sum by (cluster) (rate(http_requests_total[5m]))",
        "temperature_celsius > on(cluster, instance) group_left node_memory_bytes / 1e9",
        // Errors both must report: many-to-many and one-to-one with duplicates.
        "http_requests_total + on(cluster) up",
        "temperature_celsius * ignoring(sensor) ratio_gauge",
        "up + on(cluster) group_left up",
    ] {
        c.add("binary", q);
    }
    for q in [
        "up and on(cluster, job, instance) http_requests_total",
        "up == 0 or up",
        "temperature_celsius > 30 or temperature_celsius < -10",
        "up unless up == 0",
        "http_requests_total and on(instance) (up == 0)",
        "http_requests_total unless on(cluster, job, instance) (up == 0)",
        "temperature_celsius or ratio_gauge",
        "flappy_gauge or stale_gauge",
        "stale_gauge and flappy_gauge",
        "(up == 0) or on() vector(-1)",
        "odd_gauge unless on(kind) odd_gauge > 0",
    ] {
        c.add("set", q);
    }
}

fn subqueries(c: &mut Cases, at: &str) {
    for q in [
        "max_over_time(rate(http_requests_total[1m])[10m:1m])",
        "avg_over_time(temperature_celsius[10m:30s])",
        "rate(http_requests_total[5m:])",
        "min_over_time(sum by (cluster) (temperature_celsius)[15m:2m])",
        "max_over_time(temperature_celsius[10m:1m] offset 5m)",
        "deriv(temperature_celsius[10m:])",
        "quantile_over_time(0.5, up[10m:30s])",
        "count_over_time(flappy_gauge[20m:1m])",
        "count_over_time(stale_gauge[20m:45s])",
        "absent_over_time(nonexistent[5m:1m])",
        "sum_over_time(vector(1)[5m:1m])",
        "max_over_time(vector(time())[3m:1m])",
        "increase(sum by (cluster) (http_requests_total)[10m:1m])",
        "resets(odd_gauge[10m:1m])",
        "changes(up[30m:2m])",
        "last_over_time(temperature_celsius[5m:1m])",
        "stddev_over_time(deriv(temperature_celsius[5m])[10m:1m])",
        "predict_linear(temperature_celsius[10m:1m], 300)",
        "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    ] {
        c.add("subquery", q);
    }
    c.add("subquery", format!("max_over_time(temperature_celsius[10m:1m] @ {at})"));
    c.add(
        "subquery",
        format!("avg_over_time((temperature_celsius @ {at})[5m:1m])"),
    );
    c.matrix("subquery", "temperature_celsius[5m:1m]");
    c.matrix("subquery", "rate(http_requests_total[2m])[6m:2m]");
    c.matrix("subquery", format!("up[3m:1m] @ {at}"));
}

fn misc(c: &mut Cases, at: &str) {
    for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0, 1.5, -0.5] {
        c.add(
            "histogram",
            format!("histogram_quantile({q}, rate(request_duration_seconds_bucket[5m]))"),
        );
    }
    for q in [
        "histogram_quantile(0.9, sum by (le, cluster) (rate(request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.5, sum by (le) (request_duration_seconds_bucket))",
        "histogram_quantile(0.75, request_duration_seconds_bucket)",
        r#"histogram_quantile(0.5, rate(request_duration_seconds_bucket{job="broken"}[5m]))"#,
        "histogram_quantile(0.5, rate(http_requests_total[5m]))",
        "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[1m])) > 1)",
    ] {
        c.add("histogram", q);
    }
    for q in [
        r#"label_replace(up, "host", "$1-x", "instance", "i-(.*)")"#,
        r#"label_replace(up, "host", "$1", "instance", "nomatch(.*)")"#,
        r#"label_replace(up, "instance", "", "instance", ".*")"#,
        r#"label_replace(temperature_celsius, "__name__", "renamed", "sensor", "cpu")"#,
        r#"label_replace(odd_labels, "first", "${1}", "utf8", "(\\S+).*")"#,
        r#"label_join(up, "id", "/", "cluster", "job", "instance")"#,
        r#"label_join(odd_labels, "all", ",", "path", "utf8")"#,
        r#"label_join(up, "job", "", "missing")"#,
        r#"label_replace(up, "cluster", "", "cluster", ".*")"#,
    ] {
        c.add("label", q);
    }
    for sel in [
        "temperature_celsius",
        "odd_gauge",
        "http_requests_total",
        "rate(http_requests_total[5m])",
    ] {
        c.ordered("sort", format!("sort({sel})"));
        c.ordered("sort", format!("sort_desc({sel})"));
    }
    c.excluded("sort", r#"sort_by_label(up, "instance", "cluster")"#, NEW_FUNCTION);
    for q in [
        "absent(nonexistent)",
        r#"absent(nonexistent{job="x",cluster=~"a.*",instance="i"})"#,
        "absent(up)",
        "absent(sum(nonexistent))",
        r#"absent(flappy_gauge{cluster="eu-1",instance="i-0"})"#,
        r#"absent(stale_gauge{instance="i-1"})"#,
    ] {
        c.add("absent", q);
    }
    for q in [
        "time()".to_string(),
        "scalar(sum(up))".to_string(),
        "scalar(up)".to_string(),
        "vector(time())".to_string(),
        "vector(1) + vector(2)".to_string(),
        "timestamp(temperature_celsius)".to_string(),
        "timestamp(stale_gauge)".to_string(),
        "timestamp(sum(up))".to_string(),
        format!("timestamp(up @ {at})"),
        "time() - timestamp(flappy_gauge)".to_string(),
        "up * scalar(count(up))".to_string(),
    ] {
        c.add("scalar", q);
    }
    c.matrix("scalar", r#""a string""#);
    for q in [
        "sum(",
        "rate(temperature_celsius)",
        "temperature_celsius{",
        r#"label_replace(up, "x", "y", "job", "(")"#,
        "topk(-1, up)",
        "max_over_time(time()[3m:1m])",
        // flappy_gauge and gappy_requests_total share their labels: once the name goes, they collide.
        r#"rate({__name__=~"flappy_gauge|gappy_requests_total"}[5m])"#,
        r#"-{__name__=~"flappy_gauge|gappy_requests_total"}"#,
        r#"abs({__name__=~"flappy_gauge|gappy_requests_total"})"#,
        r#"last_over_time({__name__=~"flappy_gauge|gappy_requests_total"}[1m])"#,
    ] {
        c.add("error", q);
    }
}
