use super::*;

fn encoded(totals: &[ClusterTotals], series: HashMap<String, u64>) -> String {
    #[derive(Debug)]
    struct Fixed(Vec<ClusterTotals>, HashMap<String, u64>);
    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_clusters(encoder, &self.0, self.1.clone())
        }
    }
    let mut r = Registry::default();
    r.register_collector(Box::new(Fixed(totals.to_vec(), series)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
    out
}

fn totals(cluster: &str, samples: u64, log_lines: u64, rejected: Vec<(&'static str, u64)>) -> ClusterTotals {
    ClusterTotals {
        cluster: cluster.to_string(),
        samples,
        log_lines,
        spans: samples / 10,
        rejected,
    }
}

/// Each tracked cluster's totals and active series; a cluster only in the head (replayed from
/// the WAL) still shows its series.
#[test]
fn clusters_show_their_totals_and_active_series() {
    let text = encoded(
        &[
            totals("a", 10, 0, vec![("invalid_items", 2)]),
            totals("b", 0, 7, vec![]),
        ],
        HashMap::from([("a".to_string(), 3), ("replayed".to_string(), 5)]),
    );
    for line in [
        r#"tributary_cluster_active_series{cluster="a"} 3"#,
        r#"tributary_cluster_active_series{cluster="b"} 0"#,
        r#"tributary_cluster_active_series{cluster="replayed"} 5"#,
        r#"tributary_cluster_samples_total{cluster="a"} 10"#,
        r#"tributary_cluster_log_records_total{cluster="b"} 7"#,
        r#"tributary_cluster_spans_total{cluster="a"} 1"#,
        r#"tributary_cluster_rejected_total{cluster="a",reason="invalid_items"} 2"#,
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains(r#"tributary_cluster_samples_total{cluster="replayed"}"#));
}

/// Head clusters beyond MAX_CLUSTERS names add up under `_other`.
#[test]
fn head_clusters_beyond_the_cap_count_under_other() {
    let series: HashMap<String, u64> = (0..MAX_CLUSTERS + 3).map(|i| (format!("c{i:05}"), 1)).collect();
    let text = encoded(&[], series);
    assert_eq!(
        text.matches("tributary_cluster_active_series{").count(),
        MAX_CLUSTERS + 1
    );
    assert!(
        text.contains(r#"tributary_cluster_active_series{cluster="_other"} 3"#),
        "{text}"
    );
}
