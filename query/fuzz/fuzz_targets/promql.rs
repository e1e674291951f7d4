//! PromQL text through the query crate's one way in: admission (`query.max_query_bytes`,
//! `query.max_query_depth`), then `promql-parser` (`test_util::parse_promql`, the two steps of
//! `Engine::parse_then` and of every evaluation), on a quarter of the engines' stack.
//!
//! Beyond "never panics, never overflows the stack":
//! - text over either bound is refused with `Error::QueryLimit`, and text within both never is;
//! - a tree that parses is no deeper than admission's bound of its text (`promql_depth`), the
//!   bound the stack is sized for;
//! - the tree's printed forms, `Display` and `prettify` (what `/api/v1/format_query` answers),
//!   parse back to the same tree up to the order of a selector's matchers, which the printer
//!   sorts (compared by `Debug` where `NaN` literals make `==` fail), and print the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promql_parser::label::Matchers;
use promql_parser::parser::{Expr, LabelModifier, parse};
use tributary_query::test_util::{parse_promql, promql_depth};
use tributary_query::{Error, QueryConfig};
use tributary_query_fuzz::on_query_stack;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    on_query_stack(|| check(&text));
});

fn check(text: &str) {
    // Half libFuzzer's default input size, so the byte bound is crossed too; depth as deployed.
    let cfg = QueryConfig {
        max_query_bytes: 2048,
        ..QueryConfig::default()
    };
    let bound = promql_depth(text);
    let parsed = parse_promql(text, &cfg);
    if text.len() > cfg.max_query_bytes || bound > cfg.max_query_depth {
        assert!(
            matches!(parsed, Err(Error::QueryLimit { .. })),
            "{} bytes, depth bound {bound}, admitted: {parsed:?}",
            text.len()
        );
        return;
    }
    let expr = match parsed {
        Ok(expr) => expr,
        Err(Error::QueryLimit { .. }) => panic!("refused within the bounds (depth bound {bound})"),
        Err(_) => return,
    };
    let depth = tree_depth(&expr);
    assert!(
        depth <= bound,
        "tree depth {depth} over admission's bound {bound}: {expr:?}"
    );
    // promql-parser prints an `@` time before the epoch as `@ 0.000` (README, known finding 3).
    if format!("{expr:?}").contains("tv_sec: -") {
        return;
    }
    let mut sorted = expr.clone();
    sort_matchers(&mut sorted);
    for (how, printed) in [("Display", expr.to_string()), ("prettify", expr.prettify())] {
        let mut again = match parse(&printed) {
            Ok(again) => again,
            // promql-parser prints a zero duration written as a number (`up[0]`, `offset 0`) as
            // `0s`, which it refuses: README, known finding 1 (upstream).
            Err(e) if e == "duration must be greater than 0" => continue,
            Err(e) => panic!("{how} printed {printed:?}, which does not parse: {e}"),
        };
        let reprinted = if how == "Display" {
            again.to_string()
        } else {
            again.prettify()
        };
        assert_eq!(reprinted, printed, "{how} prints differently after a round trip");
        sort_matchers(&mut again);
        if again != sorted {
            assert_eq!(format!("{again:?}"), format!("{sorted:?}"), "{how} printed {printed:?}");
        }
    }
}

/// Every selector's matchers in one order (a selector's matchers are a set), and an empty
/// `by ()` as no grouping: promql-parser prints `sum by () (x)` as `sum(x)`, the same
/// aggregation (README, known finding 2).
fn sort_matchers(e: &mut Expr) {
    fn sort(m: &mut Matchers) {
        let key = |m: &promql_parser::label::Matcher| (m.name.clone(), m.value.clone(), format!("{:?}", m.op));
        m.matchers.sort_by_key(key);
        for group in &mut m.or_matchers {
            group.sort_by_key(key);
        }
    }
    match e {
        Expr::Aggregate(a) => {
            if matches!(&a.modifier, Some(LabelModifier::Include(l)) if l.labels.is_empty()) {
                a.modifier = None;
            }
            sort_matchers(&mut a.expr);
            if let Some(p) = a.param.as_deref_mut() {
                sort_matchers(p);
            }
        }
        Expr::Unary(u) => sort_matchers(&mut u.expr),
        Expr::Binary(b) => {
            sort_matchers(&mut b.lhs);
            sort_matchers(&mut b.rhs);
        }
        Expr::Paren(p) => sort_matchers(&mut p.expr),
        Expr::Subquery(s) => sort_matchers(&mut s.expr),
        Expr::Call(c) => c.args.args.iter_mut().for_each(|a| sort_matchers(a)),
        Expr::VectorSelector(vs) => sort(&mut vs.matchers),
        Expr::MatrixSelector(ms) => sort(&mut ms.vs.matchers),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Nodes on the longest path below the root (a leaf is 0).
fn tree_depth(e: &Expr) -> usize {
    let below = match e {
        Expr::Aggregate(a) => {
            let param = a.param.as_deref().map_or(0, tree_depth);
            tree_depth(&a.expr).max(param)
        }
        Expr::Unary(u) => tree_depth(&u.expr),
        Expr::Binary(b) => tree_depth(&b.lhs).max(tree_depth(&b.rhs)),
        Expr::Paren(p) => tree_depth(&p.expr),
        Expr::Subquery(s) => tree_depth(&s.expr),
        Expr::Call(c) => c.args.args.iter().map(|a| tree_depth(a)).max().unwrap_or(0),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => return 0,
    };
    below + 1
}
