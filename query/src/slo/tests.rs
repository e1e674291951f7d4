use serde_json::Value;

use super::*;

const SPEC: &str = r#"
version: "prometheus/v1"
service: "checkout"
labels:
  team: shop
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Checkout answers without a 5xx."
    sli:
      events:
        error_query: sum by (cluster) (rate(http_requests_total{job="checkout",code=~"5.."}[{{ .window }}]))
        total_query: sum by (cluster) (rate(http_requests_total{job="checkout"}[{{.window}}]))
    alerting:
      name: CheckoutAvailability
      labels:
        category: availability
      annotations:
        runbook: https://runbooks.example/checkout
      page_alert:
        labels:
          severity: critical
      ticket_alert:
        labels:
          severity: warning
"#;

/// The generated file as JSON, and every rule of it flattened with its group's name.
fn rules_of(yaml: &str) -> Vec<(String, Value)> {
    let file: Value = serde_yaml_ng::from_str(yaml).expect("the output is YAML");
    let mut out = Vec::new();
    for g in file["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            out.push((g["name"].as_str().unwrap().to_string(), r.clone()));
        }
    }
    out
}

fn find<'a>(rules: &'a [(String, Value)], name: &str, scope: &str) -> Vec<&'a Value> {
    rules
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r["record"] == name || r["alert"] == name)
        .filter(|r| r["labels"]["slo_scope"] == scope || (scope.is_empty() && r["labels"]["slo_scope"].is_null()))
        .collect()
}

fn refused(spec: &str) -> String {
    match generate(spec) {
        Err(e) => e.to_string(),
        Ok(out) => panic!("accepted:\n{out}"),
    }
}

fn spec_with(from: &str, to: &str) -> String {
    assert!(SPEC.contains(from), "{from} not in the spec");
    SPEC.replacen(from, to, 1)
}

#[test]
fn every_generated_expression_parses() {
    let out = generate(SPEC).unwrap();
    let rules = rules_of(&out);
    // 8 windows × 2 scopes, 4 + 3 × 2 metadata rules, page and ticket × 2 scopes.
    assert_eq!(rules.len(), 30, "{out}");
    for (group, r) in &rules {
        let expr = r["expr"].as_str().unwrap();
        promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{group}: {expr}: {e}"));
    }
}

#[test]
fn groups_are_named_like_sloth() {
    let out = generate(SPEC).unwrap();
    let file: Value = serde_yaml_ng::from_str(&out).unwrap();
    let names: Vec<&str> = file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sloth-slo-sli-recordings-checkout-requests-availability",
            "sloth-slo-meta-recordings-checkout-requests-availability",
            "sloth-slo-alerts-checkout-requests-availability",
        ]
    );
}

#[test]
fn sli_rules_cover_every_window_per_cluster_and_fleet() {
    let rules = rules_of(&generate(SPEC).unwrap());
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        let name = format!("slo:sli_error:ratio_rate{w}");
        let cluster = find(&rules, &name, "cluster");
        assert_eq!(cluster.len(), 1, "{name}");
        let r = cluster[0];
        assert_eq!(r["labels"]["sloth_window"], w);
        assert_eq!(r["labels"]["sloth_id"], "checkout-requests-availability");
        assert_eq!(r["labels"]["sloth_service"], "checkout");
        assert_eq!(r["labels"]["sloth_slo"], "requests-availability");
        assert_eq!(r["labels"]["team"], "shop");
        let expr = r["expr"].as_str().unwrap();
        let err = format!(
            r#"sum by (cluster) (sum by (cluster) (rate(http_requests_total{{job="checkout",code=~"5.."}}[{w}])))"#
        );
        let total =
            format!(r#"sum by (cluster) (sum by (cluster) (rate(http_requests_total{{job="checkout"}}[{w}])))"#);
        assert_eq!(expr, format!("({err} or 0 * {total})\n/\n{total}"));

        let fleet = find(&rules, &name, "fleet");
        assert_eq!(fleet.len(), 1, "{name}");
        let expr = fleet[0]["expr"].as_str().unwrap();
        assert!(expr.starts_with("(sum (sum by (cluster)"), "{expr}");
        assert!(
            !expr.contains("sum by (cluster) (sum"),
            "the fleet rule keeps no cluster: {expr}"
        );
    }
}

#[test]
fn the_period_window_is_the_ratio_of_the_whole_windows_increases() {
    let rules = rules_of(&generate(SPEC).unwrap());
    let expr = find(&rules, "slo:sli_error:ratio_rate30d", "cluster")[0]["expr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(expr.contains("[30d]"), "{expr}");
    // Never Sloth's average of the 5-minute ratios.
    assert!(!expr.contains("ratio_rate5m") && !expr.contains("_over_time"), "{expr}");
}

#[test]
fn metadata_rules() {
    let rules = rules_of(&generate(SPEC).unwrap());
    assert_eq!(find(&rules, "slo:objective:ratio", "")[0]["expr"], "vector(0.999)");
    assert_eq!(find(&rules, "slo:error_budget:ratio", "")[0]["expr"], "vector(0.001)");
    assert_eq!(find(&rules, "slo:time_period:days", "")[0]["expr"], "vector(30)");
    assert_eq!(
        find(&rules, "sloth_slo_info", "")[0]["labels"]["sloth_objective"],
        "99.9"
    );
    let sel = |scope: &str, w: &str| {
        format!(
            r#"slo:sli_error:ratio_rate{w}{{sloth_id="checkout-requests-availability", sloth_service="checkout", sloth_slo="requests-availability", slo_scope="{scope}"}}"#
        )
    };
    for scope in ["cluster", "fleet"] {
        assert_eq!(
            find(&rules, "slo:current_burn_rate:ratio", scope)[0]["expr"],
            format!("{} / 0.001", sel(scope, "5m"))
        );
        assert_eq!(
            find(&rules, "slo:period_burn_rate:ratio", scope)[0]["expr"],
            format!("{} / 0.001", sel(scope, "30d"))
        );
        assert_eq!(
            find(&rules, "slo:period_error_budget_remaining:ratio", scope)[0]["expr"],
            format!("1 - {} / 0.001", sel(scope, "30d"))
        );
    }
}

#[test]
fn alerts_follow_the_workbook_table() {
    let rules = rules_of(&generate(SPEC).unwrap());
    let alerts = find(&rules, "CheckoutAvailability", "");
    assert!(alerts.is_empty(), "every alert has a scope");
    for scope in ["cluster", "fleet"] {
        let alerts = find(&rules, "CheckoutAvailability", scope);
        assert_eq!(alerts.len(), 2, "page and ticket in {scope}");
        let page = alerts.iter().find(|a| a["labels"]["sloth_severity"] == "page").unwrap();
        let ticket = alerts
            .iter()
            .find(|a| a["labels"]["sloth_severity"] == "ticket")
            .unwrap();
        assert_eq!(page["labels"]["severity"], "critical");
        assert_eq!(page["labels"]["category"], "availability");
        assert_eq!(ticket["labels"]["severity"], "warning");
        assert_eq!(page["annotations"]["runbook"], "https://runbooks.example/checkout");
        assert!(page["annotations"]["title"].as_str().unwrap().contains("(page)"));
        assert!(page.get("for").is_none());
        let pairs = |a: &Value| {
            let expr = a["expr"].as_str().unwrap().to_string();
            promql_parser::parser::parse(&expr).unwrap();
            expr
        };
        let page = pairs(page);
        for needle in [
            "ratio_rate5m{",
            "ratio_rate1h{",
            "(14.4 * 0.001)",
            "ratio_rate30m{",
            "ratio_rate6h{",
            "(6 * 0.001)",
        ] {
            assert!(page.contains(needle), "{needle} in {page}");
        }
        assert!(page.contains(&format!("slo_scope=\"{scope}\"")));
        let ticket = pairs(ticket);
        for needle in [
            "ratio_rate2h{",
            "ratio_rate1d{",
            "(3 * 0.001)",
            "ratio_rate6h{",
            "ratio_rate3d{",
            "(1 * 0.001)",
        ] {
            assert!(ticket.contains(needle), "{needle} in {ticket}");
        }
    }
}

#[test]
fn another_period_scales_the_factors_and_names_its_window() {
    let spec = spec_with("objective: 99.9", "objective: 99.5\n    period: 4w");
    let rules = rules_of(&generate(&spec).unwrap());
    assert_eq!(find(&rules, "slo:sli_error:ratio_rate28d", "cluster").len(), 1);
    assert_eq!(find(&rules, "slo:time_period:days", "")[0]["expr"], "vector(28)");
    let page = find(&rules, "CheckoutAvailability", "cluster")
        .into_iter()
        .find(|a| a["labels"]["sloth_severity"] == "page")
        .unwrap();
    // 2 % of 672 h in 1 h, 5 % in 6 h.
    assert!(
        page["expr"].as_str().unwrap().contains("(13.44 * 0.005)"),
        "{}",
        page["expr"]
    );
    assert!(
        page["expr"].as_str().unwrap().contains("(5.6 * 0.005)"),
        "{}",
        page["expr"]
    );
}

#[test]
fn a_raw_sli_is_recorded_per_cluster_only() {
    let spec = spec_with(
        "      events:\n        error_query: sum by (cluster) (rate(http_requests_total{job=\"checkout\",code=~\"5..\"}[{{ .window }}]))\n        total_query: sum by (cluster) (rate(http_requests_total{job=\"checkout\"}[{{.window}}]))",
        "      raw:\n        error_ratio_query: 1 - avg by (cluster) (avg_over_time(probe_success[{{.window}}]))",
    );
    let rules = rules_of(&generate(&spec).unwrap());
    let r = find(&rules, "slo:sli_error:ratio_rate1h", "cluster");
    assert_eq!(
        r[0]["expr"],
        "(1 - avg by (cluster) (avg_over_time(probe_success[1h])))"
    );
    assert!(find(&rules, "slo:sli_error:ratio_rate1h", "fleet").is_empty());
    assert!(find(&rules, "CheckoutAvailability", "fleet").is_empty());
    assert_eq!(find(&rules, "CheckoutAvailability", "cluster").len(), 2);
}

#[test]
fn disabled_alerts_are_left_out() {
    let spec = spec_with("      page_alert:\n", "      page_alert:\n        disable: true\n");
    let rules = rules_of(&generate(&spec).unwrap());
    let alerts = find(&rules, "CheckoutAvailability", "cluster");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["labels"]["sloth_severity"], "ticket");
    // Without alerting at all, no alert group and no name needed.
    let start = SPEC.find("    alerting:").unwrap();
    let out = generate(&SPEC[..start]).unwrap();
    assert!(!out.contains("sloth-slo-alerts-"), "{out}");
}

#[test]
fn bad_specs_are_refused_with_the_field_and_reason() {
    let cases: Vec<(String, &str)> = vec![
        (
            spec_with("    objective: 99.9", "    objective: 99.9\n    objectiv: 1"),
            "unknown field `objectiv`",
        ),
        (
            spec_with("    objective: 99.9", "    objective: 99.9\n    objectiv: 1"),
            "line 9",
        ),
        (
            spec_with("version: \"prometheus/v1\"", "version: \"prometheus/v2\""),
            "version: \"prometheus/v2\"",
        ),
        (spec_with("version: \"prometheus/v1\"\n", ""), "version: missing"),
        (
            spec_with("objective: 99.9", "objective: 100"),
            "slos[0] (requests-availability).objective",
        ),
        (spec_with("objective: 99.9", "objective: 0"), "above 0 and below 100"),
        (
            spec_with("service: \"checkout\"", "service: \"check out\""),
            "service: \"check out\"",
        ),
        (
            spec_with(
                "sum by (cluster) (rate(http_requests_total{job=\"checkout\",code",
                "sum(rate(http_requests_total{job=\"checkout\",code",
            ),
            "slos[0] (requests-availability).sli.events.error_query: `sum(rate(",
        ),
        (
            spec_with(
                "sum by (cluster) (rate(http_requests_total{job=\"checkout\"}",
                "sum without (cluster) (rate(http_requests_total{job=\"checkout\"}",
            ),
            "total_query: `sum without (cluster)",
        ),
        (
            spec_with("[{{.window}}]", "[5m]"),
            "total_query: does not use {{.window}}",
        ),
        (
            spec_with("[{{.window}}]", "[{{.Window}}]"),
            "unknown template {{.Window}}",
        ),
        (spec_with("[{{.window}}]", "[{{.window}}"), "parse error"),
        (
            spec_with(
                "      events:\n",
                "      raw: {error_ratio_query: 'x[{{.window}}]'}\n      events:\n",
            ),
            "exactly one of `events` and `raw`",
        ),
        (
            spec_with("      name: CheckoutAvailability\n", ""),
            "alerting.name: missing",
        ),
        (
            spec_with("      name: CheckoutAvailability", "      name: Checkout-Availability"),
            "not a valid alert name",
        ),
        (
            spec_with("  team: shop", "  cluster: x"),
            "labels: \"cluster\" is set by the generator",
        ),
        (
            spec_with("        category: availability", "        sloth_x: y"),
            "alerting.labels: \"sloth_x\"",
        ),
        (
            spec_with("    objective: 99.9", "    objective: 99.9\n    period: 3d"),
            "shorter than 7d",
        ),
        (
            spec_with("    objective: 99.9", "    objective: 99.9\n    period: month"),
            "period: \"month\"",
        ),
        (
            spec_with("    sli:\n", "    sli:\n      plugin: {id: x}\n"),
            "sli.plugin (Sloth SLI plugins) is not supported",
        ),
        (
            format!(
                "{SPEC}  - name: \"requests-availability\"\n    objective: 99\n    sli: {{raw: {{error_ratio_query: 'x[{{{{.window}}}}]'}}}}\n"
            ),
            "slos[1].name: \"requests-availability\" is defined twice",
        ),
        (
            "version: \"prometheus/v1\"\nservice: a\nslos: []\n".into(),
            "slos: the spec defines no SLO",
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\n".into(),
            "\"openslo/v1\" kind \"SLO\"",
        ),
        (
            "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\n".into(),
            "is not supported",
        ),
        ("- just\n- a list\n".into(), "SLO spec:"),
    ];
    for (spec, want) in cases {
        let got = refused(&spec);
        assert!(got.contains(want), "want {want:?} in {got:?}");
    }
}

#[test]
fn spec_errors_are_bad_data() {
    let e = generate("version: x").unwrap_err();
    assert_eq!(e.kind().as_str(), "bad_data");
}

#[test]
fn durations_and_decimals() {
    assert_eq!(parse_duration("30d"), Some(Window(30 * 86_400)));
    assert_eq!(parse_duration("4w"), Some(Window(28 * 86_400)));
    assert_eq!(parse_duration("1d12h"), Some(Window(36 * 3_600)));
    assert_eq!(parse_duration("0d"), None);
    assert_eq!(parse_duration("d"), None);
    assert_eq!(parse_duration("5x"), None);
    assert_eq!(Window(36 * 3_600).to_string(), "36h");
    assert_eq!(Window(90).to_string(), "90s");
    assert_eq!(decimal(1.0 - 0.999), "0.001");
    assert_eq!(decimal(99.95 / 100.0), "0.9995");
    assert_eq!(decimal(30.0), "30");
}
