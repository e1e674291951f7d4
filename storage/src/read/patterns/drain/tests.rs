//! Cases after Loki's `pkg/pattern/drain/drain_test.go` and `line_tokenizer_test.go` (read
//! through the search/fetch tools): varying ids collapse to `<_>`, distinct shapes stay apart,
//! and the cluster bound holds.

use super::*;

fn patterns(d: &Drain) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = d.clusters().map(|c| (c.pattern(), c.total())).collect();
    out.sort();
    out
}

#[test]
fn drain_tokenizer_splits_like_lokis_punctuation_tokenizer() {
    let (tokens, spaces) = tokenize(r#"level=info msg="request done" path=/api/v1 took=1.5ms"#);
    assert_eq!(
        tokens,
        [
            "level", "=", "info", "msg", "=", "\"", "request", "done", "\"", "path", "=", "/api/v1", "took", "=",
            "1.5ms"
        ]
    );
    // Spaces follow "info", "request", the closing quote and "/api/v1".
    assert_eq!(spaces, [2, 6, 8, 11]);
    let (tokens, _) = tokenize("a\tb c$d");
    assert_eq!(tokens, ["a\tb", "c$d"], "tabs and symbols are not delimiters");
}

#[test]
fn drain_lines_with_varying_ids_collapse_to_one_pattern() {
    let mut d = Drain::new(DrainConfig::default());
    for i in 0..50 {
        let line = format!("user {i} logged in from 10.0.0.{} after {}ms", i % 7, i * 3);
        assert!(d.train(&line, 0));
    }
    assert_eq!(
        patterns(&d),
        [("user <_> logged in from <_> after <_>".to_string(), 50)]
    );
}

#[test]
fn drain_distinct_shapes_stay_apart() {
    let mut d = Drain::new(DrainConfig::default());
    for i in 0..10 {
        d.train(&format!("GET /api/users/{i} 200 12ms"), 0);
        d.train(&format!("connection reset by peer on socket {i} while reading"), 1);
        d.train(&format!("level=error msg=\"upstream timeout\" attempt={i}"), 2);
    }
    assert_eq!(
        patterns(&d),
        [
            ("GET <_> 200 12ms".to_string(), 10),
            ("connection reset by peer on socket <_> while reading".to_string(), 10),
            ("level=error msg=\"upstream timeout\" attempt=<_>".to_string(), 10),
        ]
    );
}

#[test]
fn drain_counts_lines_per_bucket() {
    let mut d = Drain::new(DrainConfig::default());
    for (i, bucket) in [0, 0, 10, 20, 20, 20].into_iter().enumerate() {
        d.train(&format!("job {i} finished in {i}s ok"), bucket);
    }
    let c = d.clusters().next().unwrap();
    assert_eq!(c.samples, BTreeMap::from([(0, 2), (10, 1), (20, 3)]));
}

#[test]
fn drain_skips_short_long_and_oversized_lines() {
    let mut d = Drain::new(DrainConfig {
        max_line_bytes: 100,
        ..Default::default()
    });
    assert!(!d.train("too few tokens", 0), "3 tokens");
    assert!(!d.train(&"word ".repeat(81), 0), "81 tokens");
    assert!(!d.train(&format!("long {}", "x".repeat(200)), 0), "over max_line_bytes");
    assert_eq!(d.clusters().count(), 0);
}

#[test]
fn drain_keeps_at_most_max_clusters_evicting_the_least_recent() {
    let mut d = Drain::new(DrainConfig {
        max_clusters: 5,
        ..Default::default()
    });
    // Every line has its own shape (token count), so every line is a new cluster.
    for n in 0..40 {
        let line = vec!["w"; 4 + n].join(" ");
        assert!(d.train(&line, 0));
        assert!(d.clusters().count() <= 5);
    }
    let mut lens: Vec<usize> = d.clusters().map(|c| c.tokens.len()).collect();
    lens.sort();
    assert_eq!(lens, [39, 40, 41, 42, 43], "the five most recent shapes are kept");
    // The tree was rebuilt from the kept clusters: it does not grow with the lines seen.
    assert!(d.nodes.len() < 5 * 30, "{} nodes", d.nodes.len());
    // A kept shape still matches its cluster after the rebuild.
    d.train(&vec!["w"; 43].join(" "), 1);
    assert_eq!(d.clusters().map(Cluster::total).sum::<u64>(), 6);
}

#[test]
fn drain_adjacent_placeholders_print_as_one() {
    // A shallow tree (depth 3: no token descent), so lines differing in their second token
    // meet at one leaf; the differing `a , b` / `c ; d` become `<_><_><_>`, printed as one.
    let mut d = Drain::new(DrainConfig {
        depth: 3,
        ..Default::default()
    });
    d.train("took a,b seconds to finish", 0);
    d.train("took c;d seconds to finish", 0);
    assert_eq!(patterns(&d), [("took <_> seconds to finish".to_string(), 2)]);
}
