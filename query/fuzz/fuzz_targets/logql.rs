//! LogQL text through the query crate's one way in: admission (`query.logql.max_query_bytes`,
//! `query.logql.max_query_depth`), then the hand-written parser, pipelines, `line_format` /
//! `label_format` templates and Loki's post-parse checks included (`test_util::parse_logql`, what
//! `LogqlEngine::parse` does), on a quarter of the engines' stack.
//!
//! Beyond "never panics, never overflows the stack":
//! - text over either bound is refused with `Error::QueryLimit`, and text within both never is;
//! - a tree that parses is no deeper than admission's bound of its text (`logql_depth`);
//! - the printer's text (`Display`, what `/loki/api/v1/format_query` answers) parses back to the
//!   same tree (compared by `Debug` where `NaN` makes `==` fail), and prints the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_query::Error;
use tributary_query::logql::LogqlConfig;
use tributary_query::test_util::{logql_depth, parse_logql};
use tributary_query_fuzz::on_query_stack;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    on_query_stack(|| check(&text));
});

fn check(text: &str) {
    let cfg = LogqlConfig {
        max_query_bytes: 2048,
        ..LogqlConfig::default()
    };
    let bound = logql_depth(text);
    let parsed = parse_logql(text, &cfg);
    if text.len() > cfg.max_query_bytes || bound > cfg.max_query_depth {
        assert!(
            matches!(parsed, Err(Error::QueryLimit { .. })),
            "{} bytes, depth bound {bound}, admitted: {parsed:?}",
            text.len()
        );
        return;
    }
    let tree = match parsed {
        Ok(tree) => tree,
        Err(Error::QueryLimit { .. }) => panic!("refused within the bounds (depth bound {bound})"),
        Err(_) => return,
    };
    let depth = tree.depth();
    assert!(
        depth <= bound,
        "tree depth {depth} over admission's bound {bound}: {tree:?}"
    );
    // The printed form may quote or group differently: it is admitted under looser bounds.
    let loose = LogqlConfig {
        max_query_bytes: usize::MAX,
        max_query_depth: 4 * cfg.max_query_depth + 16,
        ..LogqlConfig::default()
    };
    let printed = tree.to_string();
    let again = parse_logql(&printed, &loose)
        .unwrap_or_else(|e| panic!("printed {printed:?}, which does not parse: {e}\n{tree:?}"));
    if again != tree {
        assert_eq!(format!("{again:?}"), format!("{tree:?}"), "printed {printed:?}");
    }
    assert_eq!(again.to_string(), printed, "the printed form prints differently");
}
