use super::*;

fn message(query: &str) -> String {
    parse(query, query).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn positions_are_prometheus_line_and_column() {
    assert_eq!(line_column("sum(", 4), (1, 5));
    assert_eq!(line_column("sum(\n  rate(up)", 12), (2, 8));
    assert_eq!(
        message("sum(\n  rate(up)\n)"),
        "2:8: parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
}

#[test]
fn a_type_error_points_at_the_first_offending_argument() {
    // Prometheus checks left to right and names the first; a range with an offset is no culprit.
    assert_eq!(
        message("rate(x[5m] offset 1m) + rate(up) + rate(down)"),
        "1:30: parse error: expected type range vector in call to function \"rate\", got instant vector"
    );
    // The argument that is the mistake is the one named, not the first.
    assert_eq!(
        message("quantile_over_time(0.5, up)"),
        "1:25: parse error: expected type range vector in call to function \"quantile_over_time\", got instant vector"
    );
}

#[test]
fn comments_and_strings_hide_their_brackets() {
    assert_eq!(
        message("sum(up{a=\")\"} # )\n"),
        "2:1: parse error: unclosed left parenthesis"
    );
    assert_eq!(
        message("sum by cluster (up)"),
        "1:8: parse error: unexpected identifier \"cluster\" in grouping opts, expected \"(\""
    );
    assert_eq!(
        message("sum(up) by {a}"),
        "1:12: parse error: unexpected \"{\" in grouping opts, expected \"(\""
    );
    assert_eq!(message("up +"), "1:5: parse error: unexpected end of input");
}

#[test]
fn matchers_without_values_and_inputs_cut_short_are_placed() {
    assert_eq!(
        message("up{a=}"),
        "1:6: parse error: unexpected \"}\" in label matching, expected string"
    );
    assert_eq!(
        message("up{job=~5}"),
        "1:9: parse error: unexpected character inside braces: '5'"
    );
    assert_eq!(
        message("up offset"),
        "1:10: parse error: unexpected end of input in offset, expected duration"
    );
}
