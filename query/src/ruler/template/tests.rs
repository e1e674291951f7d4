//! Cases ported from Prometheus's `template/template_test.go` (expected outputs as Prometheus
//! expands them), and the alert-template forms rule files use.

use std::collections::BTreeMap;

use super::{TemplateData, check, expand};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Expands `text` with an alert of `value` labelled `instance="a:9090", job="node"`.
fn run(text: &str, value: f64) -> Result<String, String> {
    let l = labels(&[("instance", "a:9090"), ("job", "node")]);
    let ext = labels(&[("region", "eu")]);
    let data = TemplateData {
        labels: &l,
        value,
        external_labels: &ext,
        external_url: "http://testhost:9090/path/prefix",
    };
    expand(text, &data)
}

fn ok(text: &str) -> String {
    run(text, 0.0).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `{{ humanizeX . }}` over each value, joined by `:` (Prometheus's `range` cases).
fn each(func: &str, values: &[f64]) -> String {
    values
        .iter()
        .map(|v| run(&format!("{{{{ {func} $value }}}}:"), *v).unwrap_or_else(|e| panic!("{func} {v}: {e}")))
        .collect()
}

#[test]
fn plain_text_and_literals() {
    assert_eq!(ok("plain text"), "plain text");
    assert_eq!(ok("{{ 1 }}"), "1");
    assert_eq!(
        ok("{{ 1.0 }} {{ 1.5 }} {{ -2 }} {{ 0x10 }} {{ 'a' }}"),
        "1 1.5 -2 16 97"
    );
    assert_eq!(
        ok(r#"{{ "<b>" }} {{ `raw\n` }} {{ "tab\there" }}"#),
        "<b> raw\\n tab\there"
    );
    assert_eq!(ok("{{ true }} {{ false }}"), "true false");
    assert_eq!(ok(""), "");
}

#[test]
fn alert_data_and_variables() {
    assert_eq!(
        ok("{{ $labels.instance }} {{ .Labels.job }} {{ $externalLabels.region }} {{ .ExternalLabels.region }}"),
        "a:9090 node eu eu"
    );
    assert_eq!(
        ok("{{ $externalURL }} {{ .ExternalURL }}"),
        "http://testhost:9090/path/prefix http://testhost:9090/path/prefix"
    );
    assert_eq!(
        run("{{ $value }} {{ .Value }}", 1234567.0).unwrap(),
        "1.234567e+06 1.234567e+06"
    );
    assert_eq!(run("{{ $value }}", 0.5).unwrap(), "0.5");
    assert_eq!(run("{{ $value }}", 100000.0).unwrap(), "100000");
    assert_eq!(run("{{ $value }}", 0.00001).unwrap(), "1e-05");
    assert_eq!(run("{{ $value }}", f64::NAN).unwrap(), "NaN");
    assert_eq!(run("{{ $value }}", f64::NEG_INFINITY).unwrap(), "-Inf");
    // A missing label is the empty string (missingkey=zero on a string map).
    assert_eq!(
        ok("[{{ $labels.missing }}][{{ .Labels.missing }}][{{ index $labels \"missing\" }}]"),
        "[][][]"
    );
    assert_eq!(
        ok(r#"{{ index $labels "job" }} {{ $.Labels.job }} {{ len $labels }}"#),
        "node node 2"
    );
    assert_eq!(ok("{{ $x := $labels.job }}{{ $x }}{{ $x = \"y\" }}{{ $x }}"), "nodey");
    assert_eq!(ok("{{ $labels }}"), "map[instance:a:9090 job:node]");
}

#[test]
fn trimming_and_comments() {
    assert_eq!(ok("a  {{- 1 -}}  b"), "a1b");
    assert_eq!(ok("a \n {{- /* note */ -}} \n b"), "ab");
    assert_eq!(ok("a {{/* note */}} b"), "a  b");
    assert_eq!(ok("{{ -3 }}"), "-3");
}

#[test]
fn control_structures() {
    let t = "{{ if gt $value 10.0 }}high{{ else if gt $value 5.0 }}mid{{ else }}low{{ end }}";
    assert_eq!(run(t, 11.0).unwrap(), "high");
    assert_eq!(run(t, 6.0).unwrap(), "mid");
    assert_eq!(run(t, 1.0).unwrap(), "low");
    assert_eq!(
        ok("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
        "instance=a:9090;job=node;"
    );
    assert_eq!(ok("{{ range $labels }}{{ . }},{{ end }}"), "a:9090,node,");
    assert_eq!(ok("{{ range $v := $labels }}{{ $v }}{{ break }}{{ end }}"), "a:9090");
    assert_eq!(
        ok("{{ range $k, $v := $labels }}{{ if eq $k \"instance\" }}{{ continue }}{{ end }}{{ $v }}{{ end }}"),
        "node"
    );
}

#[test]
fn control_errors_and_else_forms() {
    let e = run("{{ range .Labels.job }}x{{ end }}", 0.0).unwrap_err();
    assert!(e.contains("range can't iterate over node"), "{e}");
    assert_eq!(
        ok("{{ with $labels.job }}job={{ . }}{{ else }}none{{ end }}"),
        "job=node"
    );
    assert_eq!(
        ok("{{ with $labels.nope }}x{{ else with $labels.job }}{{ . }}{{ end }}"),
        "node"
    );
    assert_eq!(ok("{{ if and $labels.job (not $labels.nope) }}yes{{ end }}"), "yes");
    assert_eq!(
        ok("{{ or $labels.nope \"fallback\" }} {{ and $labels.job $labels.instance }}"),
        "fallback a:9090"
    );
    assert_eq!(ok("{{ if $x := $labels.job }}{{ $x }}{{ end }}"), "node");
}

#[test]
fn comparisons() {
    assert_eq!(
        ok(r#"{{ eq $labels.job "node" }} {{ eq $labels.job "a" "node" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ ge 2 2 }}"#),
        "true true true true true"
    );
    let e = run("{{ gt $value 10 }}", 1.0).unwrap_err();
    assert!(e.contains("error calling gt: incompatible types for comparison"), "{e}");
}

#[test]
fn printf_verbs() {
    assert_eq!(run(r#"{{ printf "%.2f" $value }}"#, 1.23556).unwrap(), "1.24");
    assert_eq!(
        run(r#"{{ printf "%f|%e|%g|%v" $value $value $value $value }}"#, 1234.5).unwrap(),
        "1234.500000|1.234500e+03|1234.5|1234.5"
    );
    assert_eq!(
        ok(r#"{{ printf "%s=%q %d %5d|%-5d|%05d %x %t" "a" "b\n" 42 42 42 -42 255 true }}"#),
        "a=\"b\\n\" 42    42|42   |-0042 ff true"
    );
    assert_eq!(ok(r#"{{ printf "%d %s" "x" 1.5 }}"#), "%!d(string=x) %!s(float64=1.5)");
    assert_eq!(ok(r#"{{ printf "%d %d" 1 }}"#), "1 %!d(MISSING)");
    assert_eq!(ok(r#"{{ printf "%d" 1 "x" }}"#), "1%!(EXTRA string=x)");
    assert_eq!(
        ok(r#"{{ printf "100%%" }} {{ printf "%v" $labels.job | toUpper }}"#),
        "100% NODE"
    );
    assert_eq!(ok(r#"{{ printf "%0.2f" (parseDuration "1h2m10ms") }}"#), "3720.01");
    assert_eq!(ok(r#"{{ print "a" 1 2 "b" }}|{{ println 1 "x" }}"#), "a1 2b|1 x\n");
}

#[test]
fn humanize() {
    assert_eq!(each("humanize", &[0.0, 1.0, 1234567.0, 0.12]), "0:1:1.235M:120m:");
    assert_eq!(
        ok(r#"{{ humanize "1234567.0" }}:{{ humanize ".12" }}:{{ humanize -1 }}"#),
        "1.235M:120m:-1"
    );
    assert_eq!(each("humanize", &[i64::MAX as f64, u64::MAX as f64]), "9.223E:18.45E:");
    assert_eq!(
        each("humanize", &[1e-9, -0.0005, 999.99, 1000.0, 1e27, 1e30]),
        "1n:-500u:1000:1k:1000Y:1e+06Y:"
    );
    assert_eq!(
        each("humanize1024", &[0.0, 1.0, 1048576.0, 0.12, -1.0, 1234567.0]),
        "0:1:1Mi:0.12:-1:1.177Mi:"
    );
    assert_eq!(each("humanize1024", &[i64::MAX as f64, u64::MAX as f64]), "8Ei:16Ei:");
    let nan_inf =
        "{{ humanize $value }}:{{ humanize1024 $value }}:{{ humanizeDuration $value }}:{{ humanizeTimestamp $value }}:";
    let got: String = [f64::INFINITY, f64::NEG_INFINITY, f64::NAN]
        .iter()
        .map(|v| run(nan_inf, *v).unwrap())
        .collect();
    assert_eq!(got, "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:");
    assert_eq!(
        ok(r#"{{ humanize "+Inf" }}:{{ humanize "-Inf" }}:{{ humanize "NaN" }}"#),
        "+Inf:-Inf:NaN"
    );
}

#[test]
fn humanize_duration() {
    let whole = [
        0.0,
        1.0,
        60.0,
        3600.0,
        86400.0,
        86400.0 + 3600.0,
        -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
        899.99,
    ];
    assert_eq!(
        each("humanizeDuration", &whole),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
    );
    let fractional = [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345];
    assert_eq!(
        each("humanizeDuration", &fractional),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    );
    assert_eq!(
        each("humanizeDuration", &[-1.0, 1234567.0, -0.5]),
        "-1s:14d 6h 56m 7s:-500ms:"
    );
    assert_eq!(
        ok(r#"{{ humanizeDuration "3600" }}:{{ humanizeDuration ".1" }}"#),
        "1h 0m 0s:100ms"
    );
}

#[test]
fn humanize_percentage_and_timestamp() {
    assert_eq!(
        ok(
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}"
        ),
        "-22.22%:0%:12.35%:123.5%"
    );
    assert_eq!(
        each("humanizePercentage", &[0.1234, -1.0, 1234567.0, i64::MAX as f64]),
        "12.34%:-100%:1.235e+08%:9.223e+20%:"
    );
    assert_eq!(ok(r#"{{ "0.1234567" | humanizePercentage }}"#), "12.35%");
    assert_eq!(
        each("humanizeTimestamp", &[0.0, -1.0, 1.0, 1234567.0, 9223372036.0]),
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:"
    );
    assert_eq!(
        ok("{{ 1435065584.128 | humanizeTimestamp }}"),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        ok(r#"{{ "1435065584.128" | humanizeTimestamp }}"#),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(ok("{{ 1435065584.128 | toTime }}"), "2015-06-23 13:19:44.128 +0000 UTC");
    let e = run("{{ humanizeTimestamp $value }}", i64::MIN as f64).unwrap_err();
    assert!(e.ends_with("error calling humanizeTimestamp: -9.223372036854776e+18 cannot be represented as a nanoseconds timestamp since it overflows int64"), "{e}");
    let e = run("{{ humanizeTimestamp $value }}", u64::MAX as f64).unwrap_err();
    assert!(e.contains("1.8446744073709552e+19 cannot be represented"), "{e}");
}

#[test]
fn conversion_errors_name_the_call() {
    assert_eq!(
        run(r#"{{ humanize "one" }}"#, 0.0).unwrap_err(),
        r#"error executing template: 1:3: at <humanize "one">: error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax"#
    );
    for f in ["humanize1024", "humanizeDuration", "humanizePercentage"] {
        let e = run(&format!(r#"{{{{ "one" | {f} }}}}"#), 0.0).unwrap_err();
        assert!(
            e.contains(&format!(
                "error calling {f}: strconv.ParseFloat: parsing \"one\": invalid syntax"
            )),
            "{e}"
        );
    }
    let e = run("line one\n  {{ toUpper $value }}", 0.0).unwrap_err();
    assert_eq!(
        e,
        "error executing template: 2:5: at <toUpper $value>: wrong type for value; expected string; got float64"
    );
    let e = run("{{ (toTime 1).Format \"2006\" }}", 0.0).unwrap_err();
    assert!(e.contains("template method Format is not supported"), "{e}");
    let e = run("{{ .Foo }}", 0.0).unwrap_err();
    assert!(e.contains("can't evaluate field Foo"), "{e}");
    let e = run(r#"{{ reReplaceAll "(" "x" "y" }}"#, 0.0).unwrap_err();
    assert!(e.contains("error calling reReplaceAll: regex parse error"), "{e}");
}

#[test]
fn string_functions() {
    assert_eq!(ok(r#"{{ reReplaceAll "(a)b" "x$1" "ab" }}"#), "xa");
    assert_eq!(ok(r#"{{ reReplaceAll ":.*" "" $labels.instance }}"#), "a");
    assert_eq!(
        ok(r#"{{ "aa bb CC" | title }}|{{ "aa bb CC" | toUpper }}|{{ "aA bB CC" | toLower }}"#),
        "Aa Bb CC|AA BB CC|aa bb cc"
    );
    assert_eq!(
        ok(r#"{{ title "hello_world foo-bar o'neil" }}"#),
        "Hello_world Foo-Bar O'Neil"
    );
    assert_eq!(ok(r#"{{ match "a+" "aa" }} {{ match "a+" "b" }}"#), "true false");
    assert_eq!(
        ok(r#"{{ graphLink "up == 0" }}|{{ tableLink "up" }}"#),
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0|/graph?g0.expr=up&g0.tab=1"
    );
    assert_eq!(
        ok("{{ pathPrefix }}|{{ externalURL }}"),
        "/path/prefix|http://testhost:9090/path/prefix"
    );
    assert_eq!(
        ok(r#"{{ html "<a href='x'>&</a>" }}|{{ urlquery "a b&c" }}|{{ safeHtml "<b>" }}"#),
        "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|a+b%26c|<b>"
    );
}

#[test]
fn strip_port_and_domain() {
    let cases = [
        ("foo.example.com", "foo.example.com", "foo"),
        ("foo.example.com:12345", "foo.example.com", "foo:12345"),
        ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:12345", "192.0.2.1", "192.0.2.1:12345"),
        ("2001:0DB8::1", "2001:0DB8::1", "2001:0DB8::1"),
        ("[2001:0DB8::1]:12345", "2001:0DB8::1", "[2001:0DB8::1]:12345"),
        (
            "[2001:0DB8::1]::12345",
            "[2001:0DB8::1]::12345",
            "[2001:0DB8::1]::12345",
        ),
    ];
    for (input, port, domain) in cases {
        assert_eq!(
            ok(&format!("{{{{ {input:?} | stripPort }}}}")),
            port,
            "stripPort {input}"
        );
        assert_eq!(
            ok(&format!("{{{{ {input:?} | stripDomain }}}}")),
            domain,
            "stripDomain {input}"
        );
    }
}

#[test]
fn parse_errors_name_the_position() {
    assert_eq!(check("{{").unwrap_err(), "error parsing template: 1:0: unclosed action");
    assert_eq!(
        check("ok\n{{ if 1 }}").unwrap_err(),
        "error parsing template: 2:10: unexpected EOF: {{if}} without {{end}}"
    );
    assert_eq!(
        check("{{ end }}").unwrap_err(),
        "error parsing template: 1:0: unexpected {{end}}"
    );
    assert_eq!(
        check("{{ $nope }}").unwrap_err(),
        "error parsing template: 1:3: undefined variable \"$nope\""
    );
    assert_eq!(
        check("{{\u{a0}}}").unwrap_err(),
        "error parsing template: 1:2: unrecognized character in action: U+00A0"
    );
    assert_eq!(
        check("{{ }}").unwrap_err(),
        "error parsing template: 1:0: missing value for command"
    );
    assert!(
        check("{{ \"open }}")
            .unwrap_err()
            .contains("unterminated quoted string")
    );
    assert!(check("{{ (1 }}").unwrap_err().contains("unclosed left paren"));
    assert!(
        check("{{ break }}")
            .unwrap_err()
            .contains("{{break}} outside {{range}}")
    );
    assert!(
        check("{{ define \"x\" }}{{ end }}")
            .unwrap_err()
            .contains("{{define}} is not supported")
    );
    assert!(
        check("{{/* x */ 1 }}")
            .unwrap_err()
            .contains("comment ends before closing delimiter")
    );
    assert!(check("{{ 1 | }}").unwrap_err().contains("missing command"));
    assert!(
        check("{{ range $labels }}{{ else if 1 }}{{ end }}")
            .unwrap_err()
            .contains("unexpected token after {{else}}")
    );
    assert!(
        check("{{ with 1 }}{{ else if 1 }}{{ end }}")
            .unwrap_err()
            .contains("unexpected token after {{else}}")
    );
    assert!(
        check("{{ $a, $b := 1 }}")
            .unwrap_err()
            .contains("too many declarations")
    );
    assert!(check("{{ $x = 1 }}").unwrap_err().contains("undefined variable \"$x\""));
    // What check accepts, expand expands.
    for t in [
        "{{ if 1 }}a{{ else }}b{{ end }}",
        "{{ range $k, $v := $labels }}{{ end }}",
        "x {{- 1 -}} y",
    ] {
        check(t).unwrap();
    }
}

#[test]
fn unsupported_functions_name_themselves() {
    assert_eq!(
        check(r#"{{ query "up" | first | value }}"#).unwrap_err(),
        "error parsing template: 1:3: template function query is not supported"
    );
    for f in ["first", "label", "value", "strvalue", "sortByLabel"] {
        let e = check(&format!("{{{{ {f} }}}}")).unwrap_err();
        assert!(e.contains(&format!("template function {f} is not supported")), "{e}");
    }
    for f in ["args", "tmpl", "now", "toDuration", "call", "slice", "js"] {
        let e = check(&format!("{{{{ {f} }}}}")).unwrap_err();
        assert!(e.contains(&format!("template function {f} is not supported")), "{e}");
    }
    assert_eq!(
        check("{{ frobnicate 1 }}").unwrap_err(),
        "error parsing template: 1:3: function \"frobnicate\" not defined"
    );
    assert!(
        run("{{ query \"up\" }}", 0.0)
            .unwrap_err()
            .contains("template function query is not supported")
    );
}

#[test]
fn go_float_formats() {
    use super::printf::go_float;
    let cases: [(f64, char, Option<usize>, &str); 22] = [
        (0.0, 'g', Some(4), "0"),
        (-0.0, 'g', None, "-0"),
        (100.0, 'g', Some(4), "100"),
        (1234.0, 'g', Some(4), "1234"),
        (12345.0, 'g', Some(4), "1.234e+04"),
        (12355.0, 'g', Some(4), "1.236e+04"),
        (100000.0, 'g', Some(4), "1e+05"),
        (0.0001, 'g', Some(4), "0.0001"),
        (0.00001234, 'g', Some(4), "1.234e-05"),
        (1.5, 'g', Some(4), "1.5"),
        (-1.0, 'g', Some(4), "-1"),
        (1e21, 'g', None, "1e+21"),
        (123456.0, 'g', None, "123456"),
        (1234567.0, 'g', None, "1.234567e+06"),
        (0.1 + 0.2, 'g', None, "0.30000000000000004"),
        (5e-324, 'g', None, "5e-324"),
        (1.7976931348623157e308, 'g', None, "1.7976931348623157e+308"),
        (1.0, 'e', None, "1.000000e+00"),
        (1.0, 'E', Some(2), "1.00E+00"),
        (2.5, 'f', Some(0), "2"),
        (1e100, 'e', Some(1), "1.0e+100"),
        (f64::INFINITY, 'f', Some(2), "+Inf"),
    ];
    for (v, verb, prec, want) in cases {
        assert_eq!(go_float(v, verb, prec), want, "{v} %{verb} {prec:?}");
    }
}

#[test]
fn deep_or_runaway_templates_are_refused() {
    let deep = format!("{}1{}", "{{ if 1 }}".repeat(101), "{{ end }}".repeat(101));
    assert!(check(&deep).unwrap_err().contains("nests deeper than 100 levels"));
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(150), ")".repeat(150));
    assert!(check(&parens).unwrap_err().contains("nests deeper than 100 levels"));
    assert_eq!(
        ok(&format!("{}1{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50))),
        "1"
    );
    // Nested ranges multiply: 2^25 iterations stop at the step budget.
    let runaway = format!("{}x{}", "{{ range $labels }}".repeat(25), "{{ end }}".repeat(25));
    assert!(
        run(&runaway, 0.0)
            .unwrap_err()
            .contains("executes more than 1000000 steps")
    );
    let wide = format!(
        "{}{{{{ printf \"%900000d\" 1 }}}}{}",
        "{{ range $labels }}".repeat(3),
        "{{ end }}".repeat(3)
    );
    assert!(run(&wide, 0.0).unwrap_err().contains("writes more than 1048576 bytes"));
}

#[test]
fn annotations_as_rule_files_write_them() {
    let cases = [
        (
            "{{ $labels.job }}/{{ $labels.instance }} has been down for more than 5 minutes.",
            1.0,
            "node/a:9090 has been down for more than 5 minutes.",
        ),
        (
            "{{ printf \"%.4g\" $value }}% of the {{ $labels.job }} targets are down.",
            33.333333,
            "33.33% of the node targets are down.",
        ),
        ("{{ $value | humanizePercentage }} of errors", 0.0523, "5.23% of errors"),
        (
            "{{ $value | printf \"%.2f\" }} in {{ $externalLabels.region }}",
            2.0,
            "2.00 in eu",
        ),
        (
            "{{ with $labels.cluster }}cluster {{ . }}{{ else }}no cluster{{ end }}",
            0.0,
            "no cluster",
        ),
        (
            "Disk is {{ humanize1024 $value }}B; see {{ $externalURL }}/alerts",
            3.0 * 1024.0 * 1024.0 * 1024.0,
            "Disk is 3GiB; see http://testhost:9090/path/prefix/alerts",
        ),
        (
            "{{ if ge $value 1.0 }}{{ $value }} restarts in {{ $value | humanizeDuration }}{{ end }}",
            90.0,
            "90 restarts in 1m 30s",
        ),
    ];
    for (text, value, want) in cases {
        check(text).unwrap();
        assert_eq!(run(text, value).unwrap(), want, "{text}");
    }
}
