//! The Alertmanager v2 client: alerts are POSTed to `{url}/api/v2/alerts` of every configured
//! Alertmanager.
//!
//! Placeholder on this branch: the real client (queueing, batching, retries, counters) arrives
//! with its own branch. Until then `send` POSTs each batch once to every Alertmanager from a
//! spawned task and logs a failure, enough for the ruler's end-to-end test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One Alertmanager v2 postable alert.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(crate) struct Alert {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub(crate) starts_at: chrono::DateTime<chrono::Utc>,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub(crate) ends_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "generatorURL")]
    pub(crate) generator_url: String,
}

/// The notifier's counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct NotifierMetrics {}

impl NotifierMetrics {
    /// Registers the counters.
    pub(crate) fn register(&self, _r: &mut prometheus_client::registry::Registry) {}
}

/// Sends alerts to Alertmanagers in the background.
#[derive(Debug)]
pub(crate) struct Notifier {
    alertmanagers: Vec<String>,
    client: reqwest::Client,
}

impl Notifier {
    /// `alertmanagers`: base URLs (alerts are POSTed to `{url}/api/v2/alerts`, to every one of them).
    pub(crate) fn new(alertmanagers: Vec<String>, timeout: Duration, _metrics: NotifierMetrics) -> Arc<Self> {
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Arc::new(Self { alertmanagers, client })
    }

    /// Queues alerts (never blocks evaluation); a background task sends them.
    pub(crate) fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        for am in &self.alertmanagers {
            let url = format!("{}/api/v2/alerts", am.trim_end_matches('/'));
            let request = self.client.post(url.clone()).json(&alerts);
            tokio::spawn(async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(%url, status = %r.status(), "alertmanager refused alerts"),
                    Err(e) => tracing::warn!(%url, error = %e, "sending alerts failed"),
                }
            });
        }
    }
}
