use super::*;

const RANGE_QUERY: QueryTimes = QueryTimes {
    step_ms: 5000,
    range_ms: 10_000,
};

fn rewritten(text: &str) -> String {
    rewrite(text, RANGE_QUERY).unwrap().into_owned()
}

/// Asserts `text` rewrites to `want` but for the padding, which keeps the text's length.
fn assert_rewrites(text: &str, want: &str) {
    let got = rewritten(text);
    assert_eq!(got.len(), text.len(), "{text} -> {got:?}");
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(squeeze(&got), want, "{text} -> {got:?}");
}

#[test]
fn plain_durations_and_text_without_expressions_are_untouched() {
    for q in [
        "rate(x[5m])",
        "x[1h30m:1m] offset -5m @ start()",
        "x[1800] offset 10",
        r#"x{a="[5m*2]", offset="1"} offset 1m"#,
        "sum by (offset) (x) # [1+1]",
        "x offset 100 + 2",
    ] {
        assert!(
            matches!(rewrite(q, RANGE_QUERY).unwrap(), std::borrow::Cow::Borrowed(_)),
            "{q}"
        );
    }
}

#[test]
fn expressions_in_brackets_become_padded_durations() {
    // Cases of Prometheus's duration_expression.test, with their values.
    for (q, want) in [
        ("x[26m+4m]", "x[30m ]"),
        ("x[60*30]", "x[30m ]"),
        ("x[2m*(10+5)]", "x[30m ]"),
        ("x[24m+((1.5*2m)+2m)]", "x[29m ]"),
        ("x[-5m+35m]", "x[30m ]"),
        ("x[1h/2]", "x[30m ]"),
        ("x[1h30m % 1h]", "x[30m ]"),
        ("x[30m1s-30m1s % 1m]", "x[30m ]"),
        ("x[(9m30s+30s)*3]", "x[30m ]"),
        ("x[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms]", "x[30s :10s ]"),
        ("x[1+(STep()-5)*2]", "x[1s ]"),
        ("x[max_of(min_of(step()+1,1h),1ms)]", "x[6s ]"),
        ("x[range()]", "x[10s ]"),
        ("x[step()+1ms]", "x[5s1ms ]"),
    ] {
        assert_rewrites(q, want);
    }
}

#[test]
fn offset_reads_a_sign_and_one_operand() {
    for (q, want) in [
        ("x offset (100 + 2)", "x offset 1m42s"),
        ("x offset step()*0", "x offset 5s *0"),
        ("x offset (-step()*2)", "x offset -10s"),
        ("x offset -step()*2", "x offset -5s *2"),
        ("x offset -2 ^ 2", "x offset -2 ^ 2"),
        ("x offset (-2 ^ 2)", "x offset -4s"),
        ("x offset min_of(step(), 1s)+8000", "x offset 1s +8000"),
        ("x offset -(min_of(step(), 2s)-5)+8000", "x offset 3s +8000"),
        ("x offset range()", "x offset 10s"),
        // Zero is no offset at all (the parser refuses `offset 0s`).
        ("x offset (1 - 1)", "x"),
    ] {
        assert_rewrites(q, want);
    }
}

#[test]
fn bad_expressions_fail_naming_themselves() {
    for (q, needle) in [
        ("x[step()]", "greater than 0"),
        ("x[5m / 0]", "division by zero"),
        ("x[5m % (1 - 1)]", "modulo by zero"),
        ("x[5m * foo]", "foo is none of step()"),
        ("x[5m +]", "unexpected end of input"),
        ("x[1e10 * 1e10]", "out of range"),
    ] {
        let err = rewrite(q, QueryTimes::default()).unwrap_err().to_string();
        assert!(err.contains(needle), "{q}: {err}");
    }
    // Nothing after `offset` that reads as an expression: left to the parser.
    assert_eq!(rewritten("x offset foo"), "x offset foo");
}
