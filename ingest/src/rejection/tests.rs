use super::*;

#[test]
fn one_line_per_pair_per_window_then_the_suppressed_count() {
    let log = RejectionLog::new(Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(log.admit("a", "invalid_input", t0), Some(0));
    assert_eq!(log.admit("a", "invalid_input", t0 + Duration::from_secs(1)), None);
    assert_eq!(log.admit("a", "invalid_input", t0 + Duration::from_secs(9)), None);
    // Another reason or another cluster is its own pair.
    assert_eq!(
        log.admit("a", "too_many_requests", t0 + Duration::from_secs(2)),
        Some(0)
    );
    assert_eq!(log.admit("b", "invalid_input", t0 + Duration::from_secs(2)), Some(0));
    // The window has passed: a line again, naming the two suppressed in between.
    assert_eq!(log.admit("a", "invalid_input", t0 + Duration::from_secs(10)), Some(2));
    assert_eq!(log.admit("a", "invalid_input", t0 + Duration::from_secs(11)), None);
    assert_eq!(log.admit("a", "invalid_input", t0 + Duration::from_secs(21)), Some(1));
}

#[test]
fn memory_stays_bounded_by_many_clusters() {
    let log = RejectionLog::new(Duration::from_secs(10));
    let t0 = Instant::now();
    for i in 0..MAX_PAIRS * 3 {
        assert_eq!(log.admit(&format!("c{i}"), "invalid_input", t0), Some(0));
    }
    assert!(log.pairs.lock().len() <= MAX_PAIRS);
}

#[test]
fn auth_refusals_are_logged_under_the_token_name_or_unauthenticated() {
    assert_eq!(subject(Some("dashboards")), "dashboards");
    assert_eq!(subject(None), "unauthenticated");
    // Their own pairs, rate-limited like any other.
    let log = RejectionLog::new(Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(log.admit(subject(None), "unauthorized", t0), Some(0));
    assert_eq!(
        log.admit(subject(None), "unauthorized", t0 + Duration::from_secs(1)),
        None
    );
    assert_eq!(log.admit(subject(Some("dashboards")), "forbidden", t0), Some(0));
}
