//! The scan's depth is an upper bound of the syntax tree's (checked against both parsers), and
//! every nesting shape that used to overflow the stack is refused through both HTTP APIs with a
//! 400 naming the option, while a query at the bound still evaluates.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use promql_parser::parser::Expr as PromExpr;
use proptest::prelude::*;
use tower::ServiceExt;
use tributary_storage::types::{Sample, Series};

use super::*;
use crate::config::{DEFAULT_MAX_QUERY_DEPTH, QueryConfig};
use crate::logql::ast::{Expr as LogExpr, LabelFilter, MetricExpr, Stage};
use crate::logql::mem::{MemLogSource, record};
use crate::logql::{LogqlConfig, LogqlEngine};
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

const LIMITS: TextLimits = TextLimits {
    max_bytes: 1 << 20,
    max_depth: 20,
    section: "query",
};

fn promql(text: &str) -> usize {
    depth(text, Language::Promql)
}

fn logql(text: &str) -> usize {
    depth(text, Language::Logql)
}

/// `open` `n` times, `inner`, then `close` `n` times.
fn nested(open: &str, n: usize, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// `n` terms joined by `op`.
fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

#[test]
fn depth_counts_groups_signs_and_chained_operators() {
    let cases = [
        ("up", 0),
        ("(up)", 1),
        ("abs(up)", 1),
        ("up[5m]", 2),
        (r#"up{job="a", instance!="b"}"#, 1),
        ("sum by (job) (rate(x[5m]))", 4),
        ("sum by (x) (rate(a[5m])) / sum by (x) (rate(b[5m])) * 100 > 5", 7),
        // A subquery wraps what precedes it.
        ("abs(max_over_time((x)[5m:1m]))", 4),
        ("x[5m:][5m:]", 3),
        ("-up", 1),
        ("-(-(up))", 4),
        ("a + b", 1),
        ("a + b * c - d", 3),
        ("a and b or c unless d", 3),
        ("a == bool b", 1),
        ("a >= b", 1),
        ("a atan2 b", 1),
        ("a ATAN2 b", 1),
        // The chain may sit on the deepest child: both add up.
        ("((((x)))) + x + x + x", 7),
        ("x + x + x + ((((x))))", 7),
        // Sibling groups do not add up.
        ("(a + a) + (a + a)", 3),
        // An exponent's sign is part of its number; a hex literal has no exponent.
        ("1e-3 - 2.5E+4", 1),
        ("0x1e-3", 1),
        ("x offset -5m", 1),
        // Label matchers are a flat list.
        (r#"{a="1", a!="2", a=~"3", a!~"4" or b="5"}"#, 1),
        // Unbalanced text is the parser's to refuse; the scan still bounds it.
        ("(((x", 3),
        ("x)))", 0),
    ];
    for (text, want) in cases {
        assert_eq!(promql(text), want, "{text}");
    }
}

#[test]
fn literals_and_comments_do_not_count() {
    let cases = [
        (r#"label_replace(x, "a", "(((", "b", "(.*)")"#, 1),
        (r#"x{a="\"((("}"#, 1),
        (r#"x{a='(((\'('}"#, 1),
        // promql-parser escapes inside backquotes too (see below).
        (r#"x{a=`\`((`}"#, 1),
        ("x # (((((((\n + (y)", 2),
        ("x # (((((((\r + (y)", 2),
    ];
    for (text, want) in cases {
        assert_eq!(promql(text), want, "{text}");
    }
    let cases = [
        (r#"{a="((("} |= "(((" |~ `\` != "x""#, 2),
        // LogQL's backquotes are raw: the backslash ends nothing, the quote ends the literal.
        (r#"{a=`\`} | b="x" or (c="y")"#, 4),
        ("{a=\"b\"} # ((((\n | c > 1", 2),
        // A single quote is not a LogQL literal (the lexer refuses it): what follows counts.
        (r#"{a="b"} | x > 1 '((( '"#, 4),
    ];
    for (text, want) in cases {
        assert_eq!(logql(text), want, "{text}");
    }
}

/// The scan's literal rules are the lexer's: `promql-parser` 0.11 reads a backslash inside
/// backquotes as an escape, so `` `\` `` does not end there and this literal never ends. Should an
/// upgrade make backquotes raw (as Go's PromQL has them), this parses, the test fails, and
/// `Language::literal` must follow.
#[test]
fn promql_backquotes_escape_as_the_scan_assumes() {
    let err = promql_parser::parser::parse(r#"x{a=`\`}"#).unwrap_err();
    assert!(err.contains("unterminated"), "{err}");
    assert_eq!(
        promql(r#"x{a=`\`} + (((y)))"#),
        1,
        "all literal after the escaped quote"
    );
}

#[test]
fn logql_label_filters_and_pipelines_count() {
    let filters = format!(r#"{{a="b"}} | {}"#, chain(r#"c="d""#, " ", 30));
    assert_eq!(logql(&filters), 31);
    let stages = format!(r#"{{a="b"}}{}"#, r#" |= "x" | json"#.repeat(30));
    assert_eq!(logql(&stages), 1, "a pipeline is a flat list");
    assert_eq!(logql(&nested("sum(", 5, r#"count_over_time({a="b"}[1m])"#, ")")), 8);
}

/// The syntax tree's depth, a leaf counting 1.
fn prom_tree_depth(e: &PromExpr) -> usize {
    1 + match e {
        PromExpr::Aggregate(a) => prom_tree_depth(&a.expr).max(a.param.as_deref().map_or(0, prom_tree_depth)),
        PromExpr::Unary(u) => prom_tree_depth(&u.expr),
        PromExpr::Binary(b) => prom_tree_depth(&b.lhs).max(prom_tree_depth(&b.rhs)),
        PromExpr::Paren(p) => prom_tree_depth(&p.expr),
        PromExpr::Subquery(s) => prom_tree_depth(&s.expr),
        PromExpr::Call(c) => c.args.args.iter().map(|a| prom_tree_depth(a)).max().unwrap_or(0),
        _ => 0,
    }
}

fn log_filter_depth(f: &LabelFilter) -> usize {
    1 + match f {
        LabelFilter::And(a, b) | LabelFilter::Or(a, b) => log_filter_depth(a).max(log_filter_depth(b)),
        LabelFilter::Paren(inner) => log_filter_depth(inner),
        _ => 0,
    }
}

fn log_stages_depth(stages: &[Stage]) -> usize {
    stages
        .iter()
        .map(|s| match s {
            Stage::LabelFilter(f) => log_filter_depth(f),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

fn log_tree_depth(e: &MetricExpr) -> usize {
    1 + match e {
        MetricExpr::Range(r) => {
            let unwrap = r.unwrap.iter().flat_map(|u| &u.filters).map(log_filter_depth).max();
            log_stages_depth(&r.log.stages).max(unwrap.unwrap_or(0))
        }
        MetricExpr::Vector(v) => log_tree_depth(&v.expr),
        MetricExpr::Binary(b) => log_tree_depth(&b.lhs).max(log_tree_depth(&b.rhs)),
        MetricExpr::Paren(inner) => log_tree_depth(inner),
        MetricExpr::Number(_) | MetricExpr::VectorLiteral(_) => 0,
    }
}

/// Random PromQL built from every construct that nests; invalid combinations are skipped.
fn promql_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("x".to_string()),
        Just("1.5e-3".to_string()),
        Just(r#"y{a="((", b!~"x|y"}"#.to_string()),
        Just("z offset -5m".to_string()),
        Just("rate(x[5m])".to_string()),
    ];
    leaf.prop_recursive(6, 64, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            inner.clone().prop_map(|e| format!("-{e}")),
            inner.clone().prop_map(|e| format!("+ {e}")),
            inner.clone().prop_map(|e| format!("abs({e})")),
            inner.clone().prop_map(|e| format!("sum by (a) ({e})")),
            inner.clone().prop_map(|e| format!("topk(2, {e})")),
            inner.clone().prop_map(|e| format!("max_over_time(({e})[5m:1m])")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "^", "and", "or", "unless", "atan2", "> bool", "!="
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("clamp_min({a}, 0) # (((\n + {b}")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_scan_bounds_the_promql_tree(text in promql_expr()) {
        if let Ok(expr) = promql_parser::parser::parse(&text) {
            prop_assert!(promql(&text) + 1 >= prom_tree_depth(&expr), "{} < tree {}", promql(&text), prom_tree_depth(&expr));
        }
    }
}

#[test]
fn the_scan_bounds_the_logql_tree() {
    let engine = log_engine(LogqlConfig {
        max_query_depth: usize::MAX,
        ..LogqlConfig::default()
    });
    let queries = [
        r#"count_over_time({a="b"} | x > 1 y < 2 or z="w" | w != "v" [1m])"#.to_string(),
        r#"sum(rate({a="b"} | json | (x > 1 or y = "2"), z >= 3 [1m])) by (a) / 2 ^ 2 ^ 2"#.to_string(),
        r#"sum_over_time({a="b"} | unwrap x | x > 1 and (y > 2 or z > 3) [1m]) + 1"#.to_string(),
        nested("(", 40, r#"count_over_time({a="b"}[1m])"#, ")"),
        chain(r#"count_over_time({a="b"}[1m])"#, " or ", 40),
        format!("{} ^ 2", chain("2", " ^ ", 40)),
        format!(r#"rate({{a="b"}} | {} [1m])"#, chain(r#"x="1""#, " ", 40)),
        format!(r#"rate({{a="b"}} | {} [1m])"#, chain("x > 1", ", ", 40)),
    ];
    for q in queries {
        let LogExpr::Metric(m) = engine.parse(&q).unwrap_or_else(|e| panic!("{q}: {e}")) else {
            panic!("{q}: not a metric query")
        };
        assert!(
            logql(&q) + 1 >= log_tree_depth(&m),
            "{q}: {} < {}",
            logql(&q),
            log_tree_depth(&m)
        );
    }
}

#[test]
fn admit_names_the_option_and_its_value() {
    assert!(admit(&nested("(", 20, "x", ")"), Language::Promql, LIMITS).is_ok());
    let err = admit(&nested("(", 21, "x", ")"), Language::Promql, LIMITS).unwrap_err();
    assert!(matches!(err, Error::QueryLimit { limit: 20, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("query exceeds query.max_query_depth = 20: the query nests 21 levels deep"),
        "{text}"
    );
    let small = TextLimits {
        max_bytes: 10,
        section: "query.logql",
        ..LIMITS
    };
    let err = admit("count_over_time", Language::Logql, small)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "query exceeds query.logql.max_query_bytes = 10: the query is 15 bytes long"
    );
}

// ---------------------------------------------------------------- through the HTTP APIs

/// Far above any bound, and above every depth the issue measured a crash at.
const HOSTILE: usize = 5_000;

/// The PromQL shapes that overflowed the stack, each `HOSTILE` deep.
fn promql_crashes() -> Vec<(&'static str, String)> {
    vec![
        ("abs", nested("abs(", HOSTILE, "x", ")")),
        ("unary minus", nested("-(", HOSTILE, "x", ")")),
        ("parentheses", nested("(", HOSTILE, "x", ")")),
        ("a chain of +", chain("x", "+", HOSTILE)),
        ("a chain of or", chain("x", " or ", HOSTILE)),
        ("a chain of unary minus", format!("{}x", "-".repeat(HOSTILE))),
        ("a chain of ^", chain("x", "^", HOSTILE)),
    ]
}

fn prom_app(cfg: QueryConfig) -> Router {
    let series = vec![Series::new(parse_labels(r#"x{job="a"}"#), vec![Sample::new(0, -3.0)])];
    crate::http::router(
        Arc::new(Engine::new(Arc::new(VecSource::new(series)), cfg)),
        Default::default(),
    )
}

fn log_engine(cfg: LogqlConfig) -> LogqlEngine {
    let records = vec![record(&[("app", "a")], 1_000_000_000, r#"level=error n=3"#)];
    LogqlEngine::new(Arc::new(MemLogSource::new(records)), cfg)
}

fn loki_app(cfg: LogqlConfig) -> Router {
    crate::http::loki_router(Arc::new(log_engine(cfg)), Default::default())
}

/// A form POST of `params` to `path`; the status and body.
async fn post(app: Router, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let req = Request::post(path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 24).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn assert_prom_refused(status: StatusCode, body: &str, option: &str, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["errorType"], "bad_data", "{what}: {body}");
    let message = v["error"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("query exceeds {option} = ")),
        "{what}: {message}"
    );
}

#[tokio::test]
async fn every_promql_crash_shape_is_a_400_on_every_endpoint() {
    let option = format!("query.max_query_depth = {DEFAULT_MAX_QUERY_DEPTH}");
    for (what, query) in promql_crashes() {
        for path in [
            "/api/v1/query",
            "/api/v1/format_query",
            "/api/v1/parse_query",
            "/api/v1/query_exemplars",
        ] {
            let (status, body) = post(prom_app(QueryConfig::default()), path, &[("query", &query)]).await;
            assert_prom_refused(status, &body, "query.max_query_depth", what);
            assert!(body.contains(&option), "{what} on {path}: {body}");
        }
        let range = [("query", query.as_str()), ("start", "0"), ("end", "60"), ("step", "15")];
        let (status, body) = post(prom_app(QueryConfig::default()), "/api/v1/query_range", &range).await;
        assert_prom_refused(status, &body, "query.max_query_depth", what);
        let (status, body) = post(
            prom_app(QueryConfig::default()),
            "/api/v1/series",
            &[("match[]", &query)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert!(body.contains("expected a series selector"), "{what}: {body}");
    }
}

#[tokio::test]
async fn the_configured_bounds_are_the_ones_enforced() {
    let cfg = QueryConfig {
        max_query_depth: 3,
        max_query_bytes: 40,
        ..QueryConfig::default()
    };
    let (status, body) = post(prom_app(cfg.clone()), "/api/v1/query", &[("query", "abs(abs(abs(x)))")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(
        prom_app(cfg.clone()),
        "/api/v1/query",
        &[("query", "abs(abs(abs(abs(x))))")],
    )
    .await;
    assert_prom_refused(status, &body, "query.max_query_depth", "depth 4");
    assert!(body.contains("= 3: the query nests 4 levels deep"), "{body}");
    let long = format!("x{{job=\"{}\"}}", "a".repeat(40));
    let (status, body) = post(prom_app(cfg), "/api/v1/query", &[("query", &long)]).await;
    assert_prom_refused(status, &body, "query.max_query_bytes", "long");
    assert!(body.contains("= 40: the query is 49 bytes long"), "{body}");
}

/// At the default bound every shape still parses, plans and evaluates, on a test thread's
/// 2 MiB stack in a debug build: the bound leaves the stack room to spare.
#[tokio::test]
async fn queries_at_the_bound_evaluate() {
    let b = DEFAULT_MAX_QUERY_DEPTH;
    let e = Engine::new(
        Arc::new(VecSource::new(vec![Series::new(
            parse_labels(r#"x{job="a"}"#),
            vec![Sample::new(0, -3.0)],
        )])),
        QueryConfig::default(),
    );
    let value = |v: crate::Value| match v {
        crate::Value::Vector(s) => s.iter().map(|s| s.value).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let cases = [
        (nested("abs(", b, "x", ")"), 3.0),
        (
            nested("-(", b / 2, "x", ")"),
            if b.is_multiple_of(4) { -3.0 } else { 3.0 },
        ),
        (nested("(", b, "x", ")"), -3.0),
        (chain("x", "+", b + 1), -3.0 * (b + 1) as f64),
        (nested("sum(", b, "x", ")"), -3.0),
        (
            format!("{}x", "-".repeat(b)),
            if b.is_multiple_of(2) { -3.0 } else { 3.0 },
        ),
    ];
    for (query, want) in cases {
        assert_eq!(promql(&query), b, "{query}");
        let got = e
            .instant(&query, 0)
            .await
            .unwrap_or_else(|err| panic!("{query}: {err}"));
        assert_eq!(value(got), vec![want], "{query}");
        let over = format!("-{query}");
        let err = e.instant(&over, 0).await.unwrap_err();
        assert!(matches!(err, Error::QueryLimit { .. }), "{over}: {err}");
    }
}

/// The LogQL shapes that overflowed the stack, each `HOSTILE` deep.
fn logql_crashes() -> Vec<(&'static str, String)> {
    let range = r#"count_over_time({app="a"}[1m])"#;
    vec![
        ("parentheses", nested("(", HOSTILE, range, ")")),
        ("sum", nested("sum(", HOSTILE, range, ")")),
        ("a chain of or", chain(range, " or ", HOSTILE)),
        ("a chain of ^", chain("2", "^", HOSTILE)),
        (
            "label filter parentheses",
            format!(r#"{{app="a"}} | {}"#, nested("(", HOSTILE, "n > 1", ")")),
        ),
        (
            "a chain of label filters",
            format!(r#"{{app="a"}} | {}"#, chain(r#"n="1""#, " ", HOSTILE)),
        ),
    ]
}

#[tokio::test]
async fn every_logql_crash_shape_is_a_400_on_every_endpoint() {
    let option = format!("query exceeds query.logql.max_query_depth = {DEFAULT_MAX_QUERY_DEPTH}: ");
    for (what, query) in logql_crashes() {
        let range = [("query", query.as_str()), ("start", "0"), ("end", "60"), ("step", "15")];
        for (path, params) in [
            ("/loki/api/v1/query_range", &range[..]),
            ("/loki/api/v1/query", &range[..1]),
            ("/loki/api/v1/format_query", &range[..1]),
            ("/loki/api/v1/index/stats", &range[..3]),
        ] {
            let (status, body) = post(loki_app(LogqlConfig::default()), path, params).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what} on {path}: {body}");
            assert!(body.starts_with(&option), "{what} on {path}: {body}");
        }
    }
}

#[tokio::test]
async fn logql_at_the_bound_evaluates() {
    let b = DEFAULT_MAX_QUERY_DEPTH;
    let e = log_engine(LogqlConfig::default());
    let range = r#"count_over_time({app="a"}[1m])"#;
    // The range aggregation is three levels (its parentheses, its range's brackets and what they
    // wrap).
    let cases = [
        nested("(", b - 3, range, ")"),
        nested("sum(", b - 3, range, ")"),
        format!(
            r#"count_over_time({{app="a"}} | logfmt | {} [1m])"#,
            chain(r#"level="error""#, " ", b - 3)
        ),
    ];
    for query in cases {
        assert_eq!(logql(&query), b, "{query}");
        let got = e
            .query_instant(&query, 30_000_000_000)
            .await
            .unwrap_or_else(|err| panic!("{query}: {err}"));
        let crate::logql::LogqlValue::Vector(v) = got.value else {
            panic!("{query}: not a vector")
        };
        assert_eq!(v.iter().map(|s| s.value).collect::<Vec<_>>(), vec![1.0], "{query}");
        let err = e.query_instant(&format!("({query})"), 0).await.unwrap_err();
        assert!(matches!(err, Error::QueryLimit { .. }), "{err}");
    }
}

/// `promql-parser` panics converting a bare number too large for a `Duration` where it reads a
/// duration (the `promql` fuzz target's input, then variants): refused before it runs, while
/// ordinary durations, offsets, `@` times and large scalars elsewhere pass.
#[test]
fn numbers_too_large_for_a_duration_are_refused_before_parsing() {
    let limits = TextLimits {
        max_bytes: 1 << 20,
        max_depth: 128,
        section: "query",
    };
    for bad in [
        "\rselature[1666666666666666666666666666666666] offset -cte+r",
        "x[1e30]",
        "x[5m:1e300]",
        "x offset 99999999999999999999",
        "x offset -1e20",
        "x @ 1e30",
        "x[Inf]",
        "x offset NaN",
    ] {
        let err = admit(bad, Language::Promql, limits).expect_err(bad);
        assert!(matches!(err, Error::BadData(_)), "{bad:?}: {err}");
        assert!(err.to_string().contains("not a duration"), "{bad:?}: {err}");
        // The refusal is what keeps the parser from panicking on these.
    }
    for good in [
        "rate(x[5m])",
        "x[300]",
        "x[5m:1m] offset 1h",
        "x offset -30",
        "x @ 1700000000",
        "x > 1e300",
        r#"x{a="[1e40]"}"#,
        "# [1e40]\nx",
        "x[1h] @ end()",
    ] {
        admit(good, Language::Promql, limits).unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
}

#[test]
fn text_over_the_bounds_is_refused_as_such_even_with_a_bad_duration() {
    // Found by the promql fuzz target (seed 1): 150 levels deep with a NaN inside brackets.
    let limits = TextLimits {
        max_bytes: 2048,
        max_depth: 128,
        section: "query",
    };
    let text = format!("34 + fI- +{}NaN + fI- +[NaN", "[".repeat(71));
    let err = admit(&text, Language::Promql, limits).expect_err("too deep");
    assert!(
        matches!(err, Error::QueryLimit { ref option, .. } if option == "query.max_query_depth"),
        "{err}"
    );
}
