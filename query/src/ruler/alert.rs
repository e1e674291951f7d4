//! The alert state machine of one alerting rule (Prometheus's semantics, documented in
//! `ruler.rs`), the `ALERTS`/`ALERTS_FOR_STATE` series it writes, which alerts are due to be
//! sent, and the restore of active-since times after a restart.

use std::collections::{BTreeMap, HashMap};

use tributary_storage::types::{Labels, METRIC_NAME, TimestampMs};

use super::RuleSample;

/// How long a resolved alert is kept (and re-sent as resolved), as Prometheus does.
pub(crate) const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: a label set its expression answered.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Alert {
    /// The expression's labels (without `__name__`), the rule's labels, `alertname`, `cluster`.
    pub(crate) labels: Labels,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) state: AlertState,
    pub(crate) value: f64,
    pub(crate) active_at: TimestampMs,
    pub(crate) fired_at: Option<TimestampMs>,
    pub(crate) resolved_at: Option<TimestampMs>,
    pub(crate) last_sent_at: Option<TimestampMs>,
    /// `endsAt` of a firing alert as last sent.
    pub(crate) valid_until: TimestampMs,
    pub(crate) keep_firing_since: Option<TimestampMs>,
}

impl Alert {
    /// Prometheus's `needsSending`: never pending; a resolution not yet sent; else every `resend_delay`.
    fn needs_sending(&self, ts: TimestampMs, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        last.saturating_add(resend_delay_ms) < ts
    }
}

/// What an expression answered for one alert, labels and annotations already expanded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Found {
    pub(crate) labels: Labels,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// The alerts of one alerting rule.
#[derive(Clone, Debug, Default)]
pub(crate) struct Alerts {
    pub(crate) active: HashMap<Labels, Alert>,
    /// `ALERTS` and `ALERTS_FOR_STATE` are written only once the restore (if any) is done, so a
    /// restart's first evaluation does not overwrite the state it is about to read.
    pub(crate) restored: bool,
}

impl Alerts {
    /// One evaluation at `ts` (`write_ts` for the series written: `ts - query_offset`): updates
    /// the alerts from what the expression `found`, and answers the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples of the alerts pending or firing.
    pub(crate) fn eval(
        &mut self,
        found: Vec<Found>,
        ts: TimestampMs,
        write_ts: TimestampMs,
        hold_ms: i64,
        keep_firing_for_ms: i64,
    ) -> Vec<RuleSample> {
        let mut seen = std::collections::HashSet::new();
        for f in found {
            seen.insert(f.labels.clone());
            match self.active.get_mut(&f.labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = f.value;
                    a.annotations = f.annotations;
                }
                _ => {
                    let alert = Alert {
                        labels: f.labels.clone(),
                        annotations: f.annotations,
                        state: AlertState::Pending,
                        value: f.value,
                        active_at: ts,
                        fired_at: None,
                        resolved_at: None,
                        last_sent_at: None,
                        valid_until: 0,
                        keep_firing_since: None,
                    };
                    self.active.insert(f.labels, alert);
                }
            }
        }
        let mut out = Vec::new();
        self.active.retain(|labels, a| {
            if !seen.contains(labels) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_firing_for_ms;
                }
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    return false;
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    return true;
                }
            } else {
                a.keep_firing_since = None;
            }
            if a.state == AlertState::Pending && ts - a.active_at >= hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            true
        });
        if self.restored {
            for a in self.active.values().filter(|a| a.state != AlertState::Inactive) {
                out.push(RuleSample {
                    labels: series(&a.labels, "ALERTS", Some(a.state.as_str())),
                    timestamp_ms: write_ts,
                    value: 1.0,
                });
                out.push(RuleSample {
                    labels: series(&a.labels, "ALERTS_FOR_STATE", None),
                    timestamp_ms: write_ts,
                    value: a.active_at as f64 / 1000.0,
                });
            }
        }
        out
    }

    /// The alerts due to be sent at `ts` (marked sent), with `valid_until` set for the firing
    /// ones: `ts + 4 × max(resend_delay, interval)`.
    pub(crate) fn due(&mut self, ts: TimestampMs, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut due: Vec<Alert> = self
            .active
            .values_mut()
            .filter(|a| a.needs_sending(ts, resend_delay_ms))
            .map(|a| {
                a.last_sent_at = Some(ts);
                a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
                a.clone()
            })
            .collect();
        due.sort_by(|a, b| a.labels.cmp(&b.labels));
        due
    }

    /// Restores active-since times after a restart (Prometheus's `RestoreForState`): `saved`
    /// holds, per alert label set, the newest `ALERTS_FOR_STATE` sample within the outage
    /// tolerance as (its time, its value in seconds). `ts` is now.
    pub(crate) fn restore(
        &mut self,
        saved: &HashMap<Labels, (TimestampMs, f64)>,
        ts: TimestampMs,
        hold_ms: i64,
        grace_ms: i64,
    ) {
        self.restored = true;
        if hold_ms < grace_ms {
            // It fires within the grace period anyway: waiting out `for` again is the lesser delay.
            return;
        }
        for a in self.active.values_mut() {
            let Some(&(down_at, value)) = saved.get(&a.labels) else {
                continue;
            };
            let mut active_at = (value * 1000.0).round() as i64;
            let remaining = hold_ms - (down_at - active_at);
            if remaining <= 0 {
                // It had fired: keep its time.
            } else if remaining < grace_ms {
                active_at = ts + grace_ms - hold_ms;
            } else {
                active_at += ts - down_at;
            }
            a.active_at = active_at;
        }
    }
}

/// `ALERTS{alertstate=...}` or `ALERTS_FOR_STATE` of an alert's labels.
fn series(labels: &Labels, name: &str, state: Option<&str>) -> Labels {
    let mut l = labels.clone();
    l.set(METRIC_NAME, name);
    if let Some(state) = state {
        l.set("alertstate", state);
    }
    l
}

#[cfg(test)]
mod tests;
