use super::*;
use crate::error::ErrorKind;

const T0: i64 = 1_700_000_000_000;

fn n(samples: u64, log_lines: u64) -> Accepted {
    Accepted {
        samples,
        log_lines,
        spans: 0,
    }
}

fn cluster(s: &FleetSnapshot, name: &str) -> ClusterStatus {
    s.clusters.iter().find(|c| c.cluster == name).cloned().expect(name)
}

/// 600 samples in the current minute read as 10/s over 1 m and 1/6 /s over 1 h; a minute
/// later the 1 m window is empty while the 1 h window still holds them, and an hour later
/// both are empty; the totals and last-seen times stay.
#[test]
fn rates_roll_over_one_minute_and_one_hour() {
    let f = Fleet::default();
    f.accepted("a", "remote_write_1", n(300, 0), T0);
    f.accepted("a", "remote_write_1", n(300, 6), T0 + 20_000);
    let c = cluster(&f.snapshot(T0 + 30_000), "a");
    assert_eq!(c.samples_per_second_1m, 10.0);
    assert!((c.samples_per_second_1h - 600.0 / 3600.0).abs() < 1e-9);
    assert_eq!(c.log_lines_per_second_1m, 0.1);
    assert_eq!(c.last_sample_ms, Some(T0 + 20_000));
    assert_eq!(c.last_log_ms, Some(T0 + 20_000));

    let later = cluster(&f.snapshot(T0 + 90_000), "a");
    assert_eq!(later.samples_per_second_1m, 0.0);
    assert!((later.samples_per_second_1h - 600.0 / 3600.0).abs() < 1e-9);

    let much_later = cluster(&f.snapshot(T0 + 3_700_000), "a");
    assert_eq!(much_later.samples_per_second_1h, 0.0);
    assert_eq!(much_later.samples_total, 600);
    assert_eq!(much_later.log_lines_total, 6);
}

/// Spans count on their own: totals, rates and when last seen.
#[test]
fn spans_have_their_own_figures() {
    let f = Fleet::default();
    let spans = Accepted {
        spans: 120,
        ..Accepted::default()
    };
    f.accepted("t", "zipkin", spans, T0);
    let c = cluster(&f.snapshot(T0 + 1_000), "t");
    assert_eq!((c.spans_total, c.samples_total, c.log_lines_total), (120, 0, 0));
    assert_eq!(c.spans_per_second_1m, 2.0);
    assert_eq!((c.last_span_ms, c.last_sample_ms), (Some(T0), None));
    assert_eq!(c.protocols, vec!["zipkin"]);
    assert_eq!(f.totals()[0].spans, 120);
}

/// A slot reused a window later starts from zero rather than adding to the old count.
#[test]
fn a_reused_slot_forgets_its_old_count() {
    let f = Fleet::default();
    f.accepted("a", "otlp", n(60, 0), T0);
    f.accepted("a", "otlp", n(6, 0), T0 + 60_000);
    let c = cluster(&f.snapshot(T0 + 60_000), "a");
    assert_eq!(c.samples_per_second_1m, 0.1);
}

/// Beyond MAX_CLUSTERS new clusters are not tracked but counted; known ones still are.
#[test]
fn clusters_beyond_the_cap_are_counted_not_tracked() {
    let f = Fleet::default();
    for i in 0..MAX_CLUSTERS + 5 {
        f.accepted(&format!("c{i}"), "loki", n(0, 1), T0);
    }
    f.accepted("c0", "loki", n(0, 1), T0);
    let s = f.snapshot(T0);
    assert_eq!(s.clusters.len(), MAX_CLUSTERS);
    assert_eq!(s.untracked_writes, 5);
    assert_eq!(s.max_clusters, MAX_CLUSTERS);
    assert_eq!(cluster(&s, "c0").log_lines_total, 2);
    // `/metrics` reports the tracked clusters and the rest together under `_other`.
    f.rejected("late", "loki", "invalid_items", 4, "bad", T0);
    let totals = f.totals();
    assert_eq!(totals.len(), MAX_CLUSTERS + 1);
    let other = totals.iter().find(|t| t.cluster == OTHER_CLUSTER).unwrap();
    assert_eq!((other.samples, other.log_lines), (0, 5));
    assert_eq!(other.rejected, vec![("invalid_items", 4)]);
    let c0 = totals.iter().find(|t| t.cluster == "c0").unwrap();
    assert_eq!((c0.log_lines, c0.rejected.len()), (2, 0));
}

/// Rejections add up by reason, keep the latest text (cut to MAX_REASON_BYTES) and name the
/// protocols seen.
#[test]
fn rejections_count_by_reason_with_the_latest_text() {
    let f = Fleet::default();
    f.rejected("b", "remote_write_2", "invalid_items", 3, "first", T0);
    f.rejected("b", "remote_write_1", "invalid_items", 2, "second", T0 + 1);
    f.rejected(
        "b",
        "remote_write_1",
        ErrorKind::InvalidInput.name(),
        1,
        &"é".repeat(400),
        T0 + 2,
    );
    let c = cluster(&f.snapshot(T0 + 3), "b");
    assert_eq!(c.protocols, vec!["remote_write_1", "remote_write_2"]);
    assert_eq!(c.samples_total, 0);
    assert_eq!(c.rejected.len(), 2);
    let invalid = c.rejected.iter().find(|r| r.reason == "invalid_items").unwrap();
    assert_eq!(
        (invalid.items, invalid.last_text.as_str(), invalid.last_ms),
        (5, "second", T0 + 1)
    );
    let whole = c.rejected.iter().find(|r| r.reason == "invalid_input").unwrap();
    assert_eq!(whole.items, 1);
    assert_eq!(whole.last_text.len(), MAX_REASON_BYTES);
}
