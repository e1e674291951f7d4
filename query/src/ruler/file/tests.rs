use std::sync::Arc;

use super::*;
use crate::QueryConfig;
use crate::test_source::VecSource;

fn engine() -> Engine {
    Engine::new(Arc::new(VecSource::new(Vec::new())), QueryConfig::default())
}

async fn load(text: &str) -> Result<Vec<GroupSpec>> {
    parse("rules.yml", text, Checker::Promql(&engine())).await
}

async fn refusal(text: &str) -> String {
    load(text).await.expect_err("refused").to_string()
}

const GOOD: &str = r#"groups:
  - name: a
    interval: 30s
    limit: 10
    query_offset: 1m
    labels: {team: sre}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {team: infra}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }} down"}
  - name: b
    rules:
      - record: one
        expr: 1
"#;

#[tokio::test]
async fn a_valid_file_loads_every_field() {
    let groups = load(GOOD).await.expect("loads");
    assert_eq!(groups.len(), 2);
    let a = &groups[0];
    assert_eq!((a.file.as_str(), a.name.as_str()), ("rules.yml", "a"));
    assert_eq!(a.interval_ms, Some(30_000));
    assert_eq!(a.limit, 10);
    assert_eq!(a.query_offset_ms, 60_000);
    assert_eq!(a.rules[0].name(), "job:up:sum");
    assert_eq!(
        a.rules[0].labels.get("team").map(String::as_str),
        Some("infra"),
        "the rule's label wins"
    );
    let RuleKind::Alerting {
        for_ms,
        keep_firing_for_ms,
        annotations,
        ..
    } = &a.rules[1].kind
    else {
        panic!("alerting rule expected")
    };
    assert_eq!((*for_ms, *keep_firing_for_ms), (300_000, 60_000));
    assert_eq!(annotations["summary"], "{{ $labels.job }} down");
    assert_eq!(
        a.rules[1].labels.get("team").map(String::as_str),
        Some("sre"),
        "the group's label"
    );
    assert_eq!(groups[1].interval_ms, None);
    assert_eq!(groups[1].rules[0].expr, "1", "a number is an expression too");
}

#[tokio::test]
async fn a_syntax_error_names_file_line_and_the_parser_message() {
    let text = GOOD.replace("expr: up == 0", "expr: up == (0");
    let e = refusal(&text).await;
    assert!(e.starts_with("rules.yml:11: "), "{e}");
    assert!(
        e.contains("could not parse expression") && e.contains("parse error"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unknown_field_is_refused_with_its_line() {
    let text = GOOD.replace("keep_firing_for: 1m", "keep_firing: 1m");
    let e = refusal(&text).await;
    assert!(e.starts_with("rules.yml:14:"), "{e}");
    assert!(e.contains("unknown field `keep_firing`"), "{e}");
}

#[tokio::test]
async fn a_duplicate_group_is_refused_at_its_second_line() {
    let text = GOOD.replace("name: b", "name: a");
    let e = refusal(&text).await;
    assert!(e.starts_with("rules.yml:17:"), "{e}");
    assert!(e.contains(r#"groupname: "a" is repeated in the same file"#), "{e}");
}

#[tokio::test]
async fn bad_durations_names_and_fields_are_refused() {
    for (from, to, line, reason) in [
        ("for: 5m", "for: 5minutes", 11, "for: not a valid duration"),
        ("interval: 30s", "interval: soon", 2, "interval: not a valid duration"),
        ("interval: 30s", "interval: 0s", 2, "interval must be positive"),
        ("record: job:up:sum", "record: job-up", 8, "invalid recording rule name"),
        ("severity: page", "bad-name: page", 11, "invalid label name"),
        (
            "record: one",
            "alert: one\n        record: two",
            19,
            "only one of 'record' and 'alert'",
        ),
        (
            "        labels: {team: infra}\n",
            "        labels: {team: infra}\n        for: 1m\n",
            8,
            "recording rule",
        ),
    ] {
        let e = refusal(&GOOD.replace(from, to)).await;
        assert!(
            e.starts_with(&format!("rules.yml:{line}:")) && e.contains(reason),
            "{to}: {e}"
        );
    }
    // YAML that does not parse: the line where the parser gave up (the end of the open list).
    let e = refusal("groups: [\n").await;
    assert!(
        e.starts_with("rules.yml:2:") && e.contains("did not find expected node content"),
        "{e}"
    );
}

#[test]
fn globs_name_the_matching_files_of_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["b.yml", "a.yml", "c.yaml"] {
        std::fs::write(dir.path().join(name), "groups: []").expect("write");
    }
    let pattern = format!("{}/*.yml", dir.path().display());
    let single = dir.path().join("c.yaml").display().to_string();
    let found = expand(&[pattern.clone(), single.clone(), pattern]).expect("expands");
    let names: Vec<_> = found
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.yml", "b.yml", "c.yaml"]);
}
