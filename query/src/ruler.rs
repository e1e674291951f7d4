//! The ruler: Prometheus rule files evaluated across every cluster, alerts sent to Alertmanager.

#[cfg_attr(not(test), expect(dead_code))]
pub(crate) mod notifier;
#[cfg_attr(not(test), expect(dead_code))]
pub(crate) mod template;
