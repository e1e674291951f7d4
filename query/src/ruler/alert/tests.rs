use super::*;
use crate::test_source::parse_labels;

fn found(value: f64) -> Found {
    Found {
        labels: parse_labels(r#"{alertname="Down",cluster="c1"}"#),
        annotations: BTreeMap::new(),
        value,
    }
}

fn restored() -> Alerts {
    Alerts {
        restored: true,
        ..Alerts::default()
    }
}

fn only(a: &Alerts) -> &Alert {
    assert_eq!(a.active.len(), 1, "{a:?}");
    a.active.values().next().expect("one alert")
}

const FOR: i64 = 2_000;

#[test]
fn pending_until_for_has_passed_then_firing() {
    let mut a = restored();
    let out = a.eval(vec![found(1.0)], 10_000, 10_000, FOR, 0);
    assert_eq!(only(&a).state, AlertState::Pending);
    assert_eq!(only(&a).active_at, 10_000);
    let names: Vec<_> = out
        .iter()
        .map(|s| {
            (
                s.labels.metric_name().unwrap_or_default().to_string(),
                s.labels.get("alertstate").map(str::to_string),
                s.value,
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ALERTS".to_string(), Some("pending".to_string()), 1.0),
            ("ALERTS_FOR_STATE".to_string(), None, 10.0)
        ]
    );
    a.eval(vec![found(1.0)], 11_000, 11_000, FOR, 0);
    assert_eq!(only(&a).state, AlertState::Pending, "1s of 2s");
    a.eval(vec![found(2.0)], 12_000, 12_000, FOR, 0);
    assert_eq!(only(&a).state, AlertState::Firing);
    assert_eq!((only(&a).fired_at, only(&a).value), (Some(12_000), 2.0));
}

#[test]
fn a_pending_alert_that_clears_is_forgotten_and_a_firing_one_resolves_and_is_kept_15_minutes() {
    let mut a = restored();
    a.eval(vec![found(1.0)], 0, 0, FOR, 0);
    assert!(a.eval(vec![], 1_000, 1_000, FOR, 0).is_empty());
    assert!(a.active.is_empty(), "pending alerts leave no trace");

    a.eval(vec![found(1.0)], 0, 0, 0, 0);
    assert_eq!(only(&a).state, AlertState::Firing, "no `for`: firing at once");
    let out = a.eval(vec![], 1_000, 1_000, 0, 0);
    assert!(out.is_empty(), "an inactive alert writes no ALERTS");
    assert_eq!(
        (only(&a).state, only(&a).resolved_at),
        (AlertState::Inactive, Some(1_000))
    );
    a.eval(vec![], 1_000 + RESOLVED_RETENTION_MS, 0, 0, 0);
    assert_eq!(a.active.len(), 1, "kept for the retention");
    a.eval(vec![], 1_001 + RESOLVED_RETENTION_MS, 0, 0, 0);
    assert!(a.active.is_empty(), "dropped after it");
}

#[test]
fn keep_firing_for_holds_a_cleared_alert_firing() {
    let mut a = restored();
    a.eval(vec![found(1.0)], 0, 0, 0, 3_000);
    a.eval(vec![], 1_000, 1_000, 0, 3_000);
    assert_eq!(only(&a).state, AlertState::Firing);
    assert_eq!(only(&a).keep_firing_since, Some(1_000));
    a.eval(vec![], 3_999, 3_999, 0, 3_000);
    assert_eq!(only(&a).state, AlertState::Firing);
    a.eval(vec![], 4_000, 4_000, 0, 3_000);
    assert_eq!(only(&a).state, AlertState::Inactive);
    assert_eq!(only(&a).resolved_at, Some(4_000));
}

#[test]
fn firing_alerts_are_resent_every_resend_delay_and_resolutions_at_once() {
    let mut a = restored();
    a.eval(vec![found(1.0)], 0, 0, FOR, 0);
    assert!(a.due(0, 60_000, 1_000).is_empty(), "pending alerts are not sent");
    a.eval(vec![found(1.0)], 2_000, 2_000, FOR, 0);
    let sent = a.due(2_000, 60_000, 1_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].valid_until,
        2_000 + 4 * 60_000,
        "4 × max(resend_delay, interval)"
    );
    assert!(a.due(3_000, 60_000, 1_000).is_empty(), "within resend_delay");
    assert_eq!(a.due(62_001, 60_000, 1_000).len(), 1, "after it");
    a.eval(vec![], 63_000, 63_000, FOR, 0);
    let sent = a.due(63_000, 60_000, 1_000);
    assert_eq!(sent.len(), 1, "the resolution goes out at once");
    assert_eq!(sent[0].resolved_at, Some(63_000));
    assert!(a.due(64_000, 60_000, 1_000).is_empty());
}

#[test]
fn nothing_is_written_before_the_restore() {
    let mut a = Alerts::default();
    assert!(a.eval(vec![found(1.0)], 0, 0, FOR, 0).is_empty());
}

/// One alert evaluated at `now` (pending, active since `now`), then restored from a state
/// saved at `down_at` saying it was active since `was_active_at`.
fn restore(now: i64, down_at: i64, was_active_at: i64, hold: i64, grace: i64) -> i64 {
    let mut a = Alerts::default();
    a.eval(vec![found(1.0)], now, now, hold, 0);
    let saved = HashMap::from([(found(1.0).labels, (down_at, was_active_at as f64 / 1000.0))]);
    a.restore(&saved, now, hold, grace);
    assert!(a.restored);
    only(&a).active_at
}

#[test]
fn restore_keeps_a_fired_alert_and_adjusts_the_others_as_prometheus_does() {
    let min = 60_000;
    // Had fired before going down (active 20m, for 10m): its time stays.
    assert_eq!(restore(100 * min, 99 * min, 79 * min, 10 * min, 2 * min), 79 * min);
    // Would have fired within the grace period: fires `grace` after the restart.
    assert_eq!(
        restore(100 * min, 99 * min, 90 * min, 10 * min, 2 * min),
        100 * min + 2 * min - 10 * min
    );
    // Otherwise the outage is added to its time.
    assert_eq!(
        restore(100 * min, 95 * min, 94 * min, 10 * min, 2 * min),
        94 * min + 5 * min
    );
    // `for` shorter than the grace period: not restored.
    assert_eq!(restore(100 * min, 99 * min, 79 * min, min, 2 * min), 100 * min);
    // No saved state: unchanged, and restored anyway.
    let mut a = Alerts::default();
    a.eval(vec![found(1.0)], 5, 5, FOR, 0);
    a.restore(&HashMap::new(), 5, FOR, 0);
    assert_eq!(only(&a).active_at, 5);
}
