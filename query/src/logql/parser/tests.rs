use super::*;
use proptest::prelude::*;

fn err(q: &str) -> String {
    match parse(q) {
        Err(Error::Parse { message, .. }) => message,
        other => panic!("{q}: expected a parse error, got {other:?}"),
    }
}

fn roundtrip(q: &str) -> Expr {
    let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let printed = e.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
    assert_eq!(e, again, "{q} printed as {printed}");
    e
}

#[test]
fn logql_parses_the_issue_examples() {
    let e = roundtrip(r#"{cluster=~"prod-.*", service_name="checkout"} |= "timeout" | json | status >= 500"#);
    let Expr::Log(l) = e else { panic!() };
    assert_eq!(l.matchers.len(), 2);
    assert_eq!(l.stages.len(), 3);
    assert!(
        matches!(&l.stages[2], Stage::LabelFilter(LabelFilter::Compare { op: CmpOp::Ge, value, .. }) if *value == 500.0)
    );
    let e = roundtrip(r#"sum by (cluster) (rate({service_name="checkout"} |= "error" [5m]))"#);
    let Expr::Metric(MetricExpr::Vector(v)) = e else {
        panic!()
    };
    assert_eq!(v.grouping.unwrap().labels, vec!["cluster"]);
}

#[test]
fn logql_parses_every_stage() {
    for q in [
        r#"{a="b", c=~"x.*", d!="e", f!~"g"}"#,
        r#"{a="b"} |= "x" != "y" |~ `\d+` !~ "z" |> "<_> error <_>" !> "<_> debug""#,
        r#"{a="b"} |= "x" or "y" != "z" or "w""#,
        r#"{a="b"} | json | json first="servers[0]", ua="h[\"User-Agent\"]" | logfmt | logfmt lvl="level""#,
        r#"{a="b"} | regexp "(?P<ip>\\S+) (?P<rest>.*)" | pattern "<ip> - <_>" | unpack | decolorize"#,
        r#"{a="b"} | json | status == 500 and dur > 250ms or size <= 2KB, x != "y" | (a = "1" or b =~ "2.*")"#,
        r#"{a="b"} | logfmt | status>=400 status<500 | level!~"debug|info""#,
        r#"{a="b"} | line_format "{{.a}} {{ .b | ToUpper }}" | label_format x=y, z="{{.w}}""#,
        r#"{a="b"} | drop a, b, c="d" | keep e, f"#,
        r#"{a="b"} | json | n > -1.5 | m == 1e3"#,
    ] {
        roundtrip(q);
    }
}

#[test]
fn logql_parses_metric_queries() {
    for q in [
        r#"count_over_time({a="b"}[5m])"#,
        r#"count_over_time({a="b"}[5m] |= "x" | json)"#,
        r#"rate({a="b"} |= "x" [1h30m] offset 10m)"#,
        r#"bytes_over_time({a="b"}[1m])"#,
        r#"bytes_rate({a="b"}[1m])"#,
        r#"sum_over_time({a="b"} | json | unwrap n [1m]) by (a)"#,
        r#"avg_over_time({a="b"} | logfmt | unwrap duration(d) | __error__="" [1m])"#,
        r#"max_over_time({a="b"} | json | unwrap bytes(size) [1m]) without (x)"#,
        r#"quantile_over_time(0.99, {a="b"} | json | unwrap latency [5m]) by (svc)"#,
        r#"absent_over_time({a="b"}[5m])"#,
        r#"first_over_time({a="b"} | json | unwrap n [5m])"#,
        r#"last_over_time({a="b"} | json | unwrap n [5m])"#,
        r#"stddev_over_time({a="b"} | json | unwrap n [5m])"#,
        r#"min_over_time({a="b"} | json | unwrap n [5m])"#,
        r#"sum(count_over_time({a="b"}[5m])) by (c)"#,
        r#"topk(3, sum by (c) (rate({a="b"}[5m])))"#,
        r#"bottomk(1, count_over_time({a="b"}[5m]))"#,
        r#"avg without (x) (count_over_time({a="b"}[5m]))"#,
        r#"count(count_over_time({a="b"}[5m]))"#,
        r#"stddev(count_over_time({a="b"}[5m]))"#,
        r#"sum(rate({a="b"}[5m])) / sum(rate({a="c"}[5m])) * 100"#,
        r#"count_over_time({a="b"}[5m]) > bool 2"#,
        r#"count_over_time({a="b"}[5m]) and on (c) count_over_time({a="c"}[5m])"#,
        r#"count_over_time({a="b"}[5m]) unless count_over_time({a="c"}[5m]) or vector(0)"#,
        r#"1 + 2 * 3 ^ 2 % 5 - -1"#,
        r#"2 == bool 2"#,
    ] {
        roundtrip(q);
    }
    // Precedence: `*` binds tighter than `+`, `^` is right-associative.
    let Expr::Metric(MetricExpr::Binary(b)) = parse("1 + 2 * 3").unwrap() else {
        panic!()
    };
    assert_eq!(b.op, BinOp::Add);
    let Expr::Metric(MetricExpr::Binary(b)) = parse("2 ^ 3 ^ 2").unwrap() else {
        panic!()
    };
    assert!(matches!(b.rhs, MetricExpr::Binary(_)));
}

#[test]
fn logql_errors_are_loki_style() {
    assert_eq!(
        err(r#"{app=}"#),
        "at line 1, col 6: syntax error: unexpected }, expecting STRING"
    );
    assert_eq!(
        err(r#"{app="x"} | json |"#),
        "at line 1, col 19: syntax error: unexpected $end, expecting a parser, a formatter or a label filter"
    );
    assert!(err("{app=\"x\"}\n  | foo").starts_with("at line 2, col 5: syntax error: unexpected IDENTIFIER"));
    assert!(err(r#"{app=~".*"}"#).starts_with("queries require at least one regexp or equality matcher"));
    assert!(err("{}").starts_with("queries require"));
    assert_eq!(
        err(r#"sum_over_time({a="b"}[5m])"#),
        "invalid aggregation sum_over_time without unwrap"
    );
    assert_eq!(
        err(r#"bytes_rate({a="b"} | json | unwrap x [5m])"#),
        "invalid aggregation bytes_rate with unwrap"
    );
    assert!(err(r#"{a="b"} |~ "(""#).contains("invalid regex"));
    assert!(err(r#"{a="b"} | regexp "(x)""#).contains("at least one named capture"));
    assert!(err(r#"{a="b"} | line_format "{{ printf .a }}""#).contains("not defined"));
    assert!(err(r#"count_over_time({a="b"})"#).contains("expecting ["));
    assert!(err(r#"{a="b"} + 1"#).contains("unexpected +"));
    assert!(err("1 > 2").contains("BOOL"));
    assert!(err(r#"topk(0.5, count_over_time({a="b"}[1m]))"#).contains("positive integer"));
    assert!(err(r#"{a="b"} |= "unterminated"#).contains("literal not terminated"));
    assert!(err(r#"{a="b"} | unwrap x"#).contains("unwrap"));
    assert_eq!(
        err(r#"{a="b"} | x"#),
        "at line 1, col 11: syntax error: unexpected IDENTIFIER"
    );
    assert_eq!(
        err(r#"{a="b"} | x >"#),
        "at line 1, col 14: syntax error: unexpected $end, expecting NUMBER, DURATION or BYTES"
    );
    assert_eq!(
        err(r#"{a="b"} | x > "y""#),
        "at line 1, col 15: syntax error: unexpected STRING, expecting NUMBER, DURATION or BYTES"
    );
}

#[test]
fn logql_selector_alone() {
    let m = parse_selector(r#"{a="b", c!~"d"}"#).unwrap();
    assert_eq!(m.len(), 2);
    assert!(parse_selector(r#"{a="b"} |= "x""#).is_err());
    assert!(parse_selector("{}").unwrap().is_empty());
}

// ---- round trip of random trees

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,4}".prop_map(|s| format!("l_{s}"))
}

fn text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 \"\\\\\n\t.é-]{1,8}").unwrap()
}

fn plain() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}"
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    (name(), 0..4u8, text(), plain()).prop_map(|(n, op, t, p)| match op {
        0 => Matcher::equal(n, t),
        1 => Matcher::new(MatchOp::NotEqual, n, t).unwrap(),
        2 => Matcher::new(MatchOp::RegexMatch, n, p).unwrap(),
        _ => Matcher::new(MatchOp::RegexNoMatch, n, p).unwrap(),
    })
}

fn label_filter() -> impl Strategy<Value = LabelFilter> {
    let leaf = prop_oneof![
        matcher_strategy().prop_map(LabelFilter::Matcher),
        (name(), 0..6u8, -1000i32..1000).prop_map(|(label, op, v)| LabelFilter::Compare {
            label,
            op: [CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le][op as usize],
            value: f64::from(v),
            kind: CmpKind::Number,
            text: v.to_string(),
        }),
        (name(), 1..500i64).prop_map(|(label, ms)| LabelFilter::Compare {
            label,
            op: CmpOp::Gt,
            value: ms as f64 / 1000.0,
            kind: CmpKind::Duration,
            text: format!("{ms}ms"),
        }),
        (name(), 1..500u32).prop_map(|(label, kb)| LabelFilter::Compare {
            label,
            op: CmpOp::Le,
            value: f64::from(kb) * 1000.0,
            kind: CmpKind::Bytes,
            text: format!("{kb}KB"),
        }),
    ];
    let wrap = |f: LabelFilter| match f {
        LabelFilter::And(..) | LabelFilter::Or(..) => LabelFilter::Paren(Box::new(f)),
        f => f,
    };
    leaf.prop_recursive(3, 8, 2, move |inner| {
        (inner.clone(), inner, any::<bool>()).prop_map(move |(a, b, and)| {
            let (a, b) = (Box::new(wrap(a)), Box::new(wrap(b)));
            if and {
                LabelFilter::And(a, b)
            } else {
                LabelFilter::Or(a, b)
            }
        })
    })
}

fn stage() -> impl Strategy<Value = Stage> {
    let ops = [
        LineOp::Contains,
        LineOp::NotContains,
        LineOp::Regex,
        LineOp::NotRegex,
        LineOp::Pattern,
    ];
    prop_oneof![
        (0..5usize, proptest::collection::vec(plain(), 1..3)).prop_map(move |(op, vals)| {
            let op = ops[op];
            let values = if matches!(op, LineOp::Pattern) {
                vals.into_iter().map(|v| format!("<_> {v}")).collect()
            } else {
                vals
            };
            Stage::LineFilter(LineFilter { op, values })
        }),
        (text(), 0..3u8).prop_map(|(t, op)| Stage::LineFilter(LineFilter {
            op: if op == 0 { LineOp::Contains } else { LineOp::NotContains },
            values: vec![t],
        })),
        proptest::collection::vec((name(), text()), 0..3)
            .prop_map(|v| Stage::Json(v.into_iter().map(|(label, path)| Extraction { label, path }).collect())),
        proptest::collection::vec((name(), plain()), 0..3)
            .prop_map(|v| Stage::Logfmt(v.into_iter().map(|(label, path)| Extraction { label, path }).collect())),
        Just(Stage::Regexp(r"(?P<ip>\S+) (?P<rest>.*)".into())),
        Just(Stage::Pattern("<ip> - <_> \"<method>\"".into())),
        Just(Stage::Unpack),
        Just(Stage::Decolorize),
        label_filter().prop_map(Stage::LabelFilter),
        name().prop_map(|n| Stage::LineFormat(format!("{{{{.{n}}}}} x {{{{ .{n} | ToUpper }}}}"))),
        (name(), name(), name()).prop_map(|(a, b, c)| Stage::LabelFormat(vec![
            LabelFormat::Rename { dst: a, src: b },
            LabelFormat::Template {
                dst: c.clone(),
                template: format!("{{{{.{c}}}}}")
            },
        ])),
        proptest::collection::vec(name(), 1..3)
            .prop_map(|v| Stage::Drop(v.into_iter().map(LabelSelect::Name).collect())),
        (name(), matcher_strategy())
            .prop_map(|(n, m)| Stage::Keep(vec![LabelSelect::Name(n), LabelSelect::Matcher(m)])),
    ]
}

fn log_expr() -> impl Strategy<Value = LogExpr> {
    (
        name(),
        plain(),
        proptest::collection::vec(matcher_strategy(), 0..3),
        proptest::collection::vec(stage(), 0..5),
    )
        .prop_map(|(n, v, mut rest, mut stages)| {
            rest.insert(0, Matcher::equal(n, v));
            // `| drop a != "x"` reads as a drop matcher (in Loki too): avoid generating it.
            for i in 1..stages.len() {
                if matches!(stages[i - 1], Stage::Drop(_) | Stage::Keep(_))
                    && let Stage::LineFilter(lf) = &mut stages[i]
                    && matches!(lf.op, LineOp::NotContains | LineOp::NotRegex)
                {
                    lf.op = LineOp::Contains;
                }
            }
            LogExpr { matchers: rest, stages }
        })
}

fn grouping() -> impl Strategy<Value = Option<Grouping>> {
    proptest::option::of(
        (any::<bool>(), proptest::collection::vec(name(), 0..3))
            .prop_map(|(without, labels)| Grouping { without, labels }),
    )
}

fn range_agg() -> impl Strategy<Value = MetricExpr> {
    let durations = [
        60_000_000_000i64,
        300_000_000_000,
        5_400_000_000_000,
        250_000_000,
        86_400_000_000_000,
    ];
    (
        0..RangeFn::ALL.len(),
        log_expr(),
        any::<bool>(),
        name(),
        0..3u8,
        proptest::collection::vec(label_filter(), 0..2),
        0..5usize,
        prop_oneof![Just(0i64), Just(600_000_000_000), Just(-3_600_000_000_000)],
        grouping(),
    )
        .prop_map(
            move |(f, log, with_unwrap, label, conv, filters, d, offset, grouping)| {
                let func = RangeFn::ALL[f];
                let unwrap = (func.needs_unwrap() || (with_unwrap && !func.forbids_unwrap())).then(|| Unwrap {
                    label,
                    conversion: [Conversion::Number, Conversion::Duration, Conversion::Bytes][conv as usize],
                    filters,
                });
                MetricExpr::Range(RangeAgg {
                    func,
                    param: (func == RangeFn::QuantileOverTime).then_some(0.95),
                    log,
                    unwrap,
                    range: durations[d],
                    offset,
                    grouping,
                })
            },
        )
}

fn metric() -> impl Strategy<Value = MetricExpr> {
    range_agg().prop_recursive(3, 6, 2, |inner| {
        let paren = |e: MetricExpr| match e {
            MetricExpr::Binary(_) => MetricExpr::Paren(Box::new(e)),
            e => e,
        };
        prop_oneof![
            (0..AggOp::ALL.len(), inner.clone(), grouping(), 1..5u8).prop_map(|(op, e, grouping, k)| {
                let op = AggOp::ALL[op];
                MetricExpr::Vector(VectorAgg {
                    op,
                    param: matches!(op, AggOp::Topk | AggOp::Bottomk).then_some(f64::from(k)),
                    grouping,
                    expr: Box::new(e),
                })
            }),
            (0..15usize, inner.clone(), inner, any::<bool>(), -4i32..4, any::<bool>()).prop_map(
                move |(op, l, r, flag, n, scalar_rhs)| {
                    let all = [
                        BinOp::Add,
                        BinOp::Sub,
                        BinOp::Mul,
                        BinOp::Div,
                        BinOp::Mod,
                        BinOp::Pow,
                        BinOp::Eq,
                        BinOp::Ne,
                        BinOp::Gt,
                        BinOp::Ge,
                        BinOp::Lt,
                        BinOp::Le,
                        BinOp::And,
                        BinOp::Or,
                        BinOp::Unless,
                    ];
                    let op = all[op];
                    let rhs = if scalar_rhs && !op.is_set() {
                        MetricExpr::Number(f64::from(n) / 2.0)
                    } else {
                        paren(r)
                    };
                    let matching = (op.is_set() && flag).then(|| (true, vec!["l_a".to_string()]));
                    MetricExpr::Binary(Box::new(BinaryExpr {
                        op,
                        return_bool: op.is_comparison() && flag,
                        matching,
                        lhs: paren(l),
                        rhs,
                    }))
                }
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn logql_printed_log_queries_parse_back(e in log_expr()) {
        let printed = Expr::Log(e.clone()).to_string();
        let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
        prop_assert_eq!(parsed, Expr::Log(e), "{}", printed);
    }

    #[test]
    fn logql_printed_metric_queries_parse_back(e in metric()) {
        let printed = Expr::Metric(e.clone()).to_string();
        let parsed = parse(&printed).map_err(|err| TestCaseError::fail(format!("{printed}: {err}")))?;
        prop_assert_eq!(parsed, Expr::Metric(e), "{}", printed);
    }

    #[test]
    fn logql_parser_never_panics(s in "[{}()\\[\\]|=!~<>\"`a-z0-9 ,.+*/%^-]{0,40}") {
        let _ = parse(&s);
    }

    #[test]
    fn logql_parser_never_panics_on_mutated_queries(cut in 0usize..80, insert in "[^a]{0,3}") {
        let base = r#"sum by (c) (rate({a="b"} |= "x" | json | s >= 500 | unwrap d [5m])) / 2"#;
        let cut = cut.min(base.len());
        if base.is_char_boundary(cut) {
            let q = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
            let _ = parse(&q);
        }
    }
}
