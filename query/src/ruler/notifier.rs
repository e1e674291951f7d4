//! The Alertmanager v2 client: alerts queued by the ruler, POSTed in batches to
//! `{url}/api/v2/alerts` of every configured Alertmanager.
//!
//! # Contract
//!
//! - [`Notifier::send`] never blocks evaluation: it appends to a queue and returns.
//! - Every Alertmanager gets every alert (an HA pair deduplicates them itself), through its own
//!   queue and its own sending task, so one that is down or slow delays nobody else.
//! - A queue holds at most [`QUEUE_CAPACITY`] alerts; when one is full the oldest are dropped
//!   (`tributary_ruler_notifications_dropped_total`), as Prometheus's notifier does: the ruler
//!   resends firing alerts anyway, so the newest state matters most.
//! - A batch is at most [`MAX_BATCH`] alerts, one `POST` with a per-request timeout; a failed
//!   batch is logged (one line, with the Alertmanager and the reason), counted, and not retried
//!   (the ruler's resend interval is the retry).
//! - Metrics, by `alertmanager` (its base URL): `..._sent_total` (alerts an Alertmanager
//!   accepted with a 2xx), `..._errors_total` (alerts in failed posts), `..._dropped_total`,
//!   `..._queue_length` and `..._latency_seconds` (a histogram of posts).
//!
//! The body is Alertmanager's `postableAlerts`: a JSON array of [`Alert`]s (`startsAt`/`endsAt`
//! in RFC 3339; an alert with `endsAt` in the past is resolved).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use super::RulerConfig;

/// The most alerts one Alertmanager's queue holds (Prometheus's default queue capacity).
pub(crate) const QUEUE_CAPACITY: usize = 10_000;
/// The most alerts in one `POST` (Prometheus's batch size).
pub(crate) const MAX_BATCH: usize = 64;

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

/// The `alertmanager` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertmanagerLabel {
    alertmanager: String,
}

/// The notifier's metrics (`tributary_ruler_notifications_*`).
#[derive(Debug, Clone)]
pub(crate) struct NotifierMetrics {
    sent: Family<AlertmanagerLabel, Counter>,
    errors: Family<AlertmanagerLabel, Counter>,
    dropped: Family<AlertmanagerLabel, Counter>,
    queue_length: Family<AlertmanagerLabel, Gauge>,
    latency: Family<AlertmanagerLabel, Histogram, fn() -> Histogram>,
}

impl Default for NotifierMetrics {
    fn default() -> Self {
        Self {
            sent: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            queue_length: Family::default(),
            // 5 ms to ~10 s: a loopback post up to one that times out.
            latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 12))),
        }
    }
}

impl NotifierMetrics {
    /// Registers the metrics (as `tributary_ruler_notifications_*`) with the server's registry.
    pub(crate) fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_ruler_notifications_sent",
            "Alerts an Alertmanager accepted",
            self.sent.clone(),
        );
        r.register(
            "tributary_ruler_notifications_errors",
            "Alerts in posts to an Alertmanager that failed",
            self.errors.clone(),
        );
        r.register(
            "tributary_ruler_notifications_dropped",
            "Alerts dropped from a full queue before they were sent (the oldest first)",
            self.dropped.clone(),
        );
        r.register(
            "tributary_ruler_notifications_queue_length",
            "Alerts queued for an Alertmanager",
            self.queue_length.clone(),
        );
        r.register(
            "tributary_ruler_notifications_latency_seconds",
            "How long posting a batch of alerts to an Alertmanager took",
            self.latency.clone(),
        );
    }

    fn label(url: &str) -> AlertmanagerLabel {
        AlertmanagerLabel {
            alertmanager: url.to_string(),
        }
    }

    /// Alerts `url` accepted.
    #[cfg(test)]
    pub(crate) fn sent(&self, url: &str) -> u64 {
        self.sent.get_or_create(&Self::label(url)).get()
    }

    /// Alerts in failed posts to `url`.
    #[cfg(test)]
    pub(crate) fn errors(&self, url: &str) -> u64 {
        self.errors.get_or_create(&Self::label(url)).get()
    }

    /// Alerts dropped from `url`'s full queue.
    #[cfg(test)]
    pub(crate) fn dropped(&self, url: &str) -> u64 {
        self.dropped.get_or_create(&Self::label(url)).get()
    }
}

/// One Alertmanager: its queue, and what its sending task waits on.
#[derive(Debug)]
struct Target {
    /// The configured base URL (the metrics' label).
    url: String,
    /// `{url}/api/v2/alerts`.
    endpoint: String,
    state: Mutex<QueueState>,
    /// Alerts were queued, or the notifier stops.
    wake: Notify,
    /// The queue became empty with nothing in flight.
    settled: Notify,
}

#[derive(Debug, Default)]
struct QueueState {
    alerts: VecDeque<Alert>,
    /// A batch is being posted.
    busy: bool,
    stopping: bool,
}

/// The client alerts are posted with: `notification_timeout` per request; for `https://`
/// Alertmanagers, rustls (ring) trusting the system's roots and `alertmanager_ca_file`, and
/// presenting `alertmanager_cert_file`/`alertmanager_key_file` when set. Err names the file and
/// what is wrong with it.
pub(crate) fn client(cfg: &RulerConfig) -> Result<reqwest::Client, String> {
    let read =
        |option: &str, path: &Path| std::fs::read(path).map_err(|e| format!("ruler.{option} {}: {e}", path.display()));
    let mut builder = reqwest::Client::builder()
        .timeout(cfg.notification_timeout)
        .use_rustls_tls();
    if let Some(path) = &cfg.alertmanager_ca_file {
        let pem = read("alertmanager_ca_file", path)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("ruler.alertmanager_ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ruler.alertmanager_ca_file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&cfg.alertmanager_cert_file, &cfg.alertmanager_key_file) {
        // reqwest reads the chain and the key from one PEM buffer.
        let mut pem = read("alertmanager_cert_file", cert)?;
        pem.push(b'\n');
        pem.extend(read("alertmanager_key_file", key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            format!(
                "ruler.alertmanager_cert_file {} with ruler.alertmanager_key_file {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| format!("the Alertmanager client: {e}"))
}

/// Sends alerts to Alertmanagers in the background; stops (after sending what is queued) when
/// dropped or on [`Notifier::stop`].
#[derive(Debug)]
pub(crate) struct Notifier {
    targets: Vec<Arc<Target>>,
    metrics: NotifierMetrics,
}

impl Notifier {
    /// `alertmanagers`: base URLs (alerts are POSTed to `{url}/api/v2/alerts`, to every one of them).
    /// Starts one sending task per Alertmanager, so it must be called within a Tokio runtime.
    /// `client`: see [`client`].
    pub(crate) fn new(alertmanagers: Vec<String>, client: reqwest::Client, metrics: NotifierMetrics) -> Arc<Self> {
        let targets: Vec<Arc<Target>> = alertmanagers
            .into_iter()
            .map(|url| {
                Arc::new(Target {
                    endpoint: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                    url,
                    state: Mutex::new(QueueState::default()),
                    wake: Notify::new(),
                    settled: Notify::new(),
                })
            })
            .collect();
        for t in &targets {
            // Every series exists from the start, so a rate over it sees the first failure.
            let label = NotifierMetrics::label(&t.url);
            metrics.sent.get_or_create(&label).inc_by(0);
            metrics.errors.get_or_create(&label).inc_by(0);
            metrics.dropped.get_or_create(&label).inc_by(0);
            metrics.queue_length.get_or_create(&label).set(0);
            tokio::spawn(run(t.clone(), client.clone(), metrics.clone()));
        }
        Arc::new(Self { targets, metrics })
    }

    /// Queues alerts (never blocks evaluation); a background task sends them.
    pub(crate) fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        for t in &self.targets {
            let label = NotifierMetrics::label(&t.url);
            let mut s = t.state.lock();
            s.alerts.extend(alerts.iter().cloned());
            let over = s.alerts.len().saturating_sub(QUEUE_CAPACITY);
            if over > 0 {
                s.alerts.drain(..over);
                self.metrics.dropped.get_or_create(&label).inc_by(over as u64);
            }
            self.metrics
                .queue_length
                .get_or_create(&label)
                .set(s.alerts.len() as i64);
            drop(s);
            t.wake.notify_one();
        }
    }

    /// Waits until every queue is empty and no post is in flight.
    #[cfg(test)]
    pub(crate) async fn flush(&self) {
        for t in &self.targets {
            loop {
                let settled = t.settled.notified();
                let mut settled = std::pin::pin!(settled);
                settled.as_mut().enable();
                {
                    let s = t.state.lock();
                    if s.alerts.is_empty() && !s.busy {
                        break;
                    }
                }
                settled.await;
            }
        }
    }

    /// Stops the sending tasks once they have sent what is queued.
    pub(crate) fn stop(&self) {
        for t in &self.targets {
            t.state.lock().stopping = true;
            t.wake.notify_one();
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Alertmanager's sending loop: a batch at a time, until stopped with an empty queue.
async fn run(t: Arc<Target>, client: reqwest::Client, metrics: NotifierMetrics) {
    let label = NotifierMetrics::label(&t.url);
    loop {
        let next = {
            let mut s = t.state.lock();
            s.busy = !s.alerts.is_empty();
            let n = s.alerts.len().min(MAX_BATCH);
            let batch: Vec<Alert> = s.alerts.drain(..n).collect();
            metrics.queue_length.get_or_create(&label).set(s.alerts.len() as i64);
            (batch, s.stopping)
        };
        let (batch, stopping) = next;
        if batch.is_empty() {
            t.settled.notify_waiters();
            if stopping {
                return;
            }
            t.wake.notified().await;
            continue;
        }
        let started = Instant::now();
        let result = post(&client, &t.endpoint, &batch).await;
        metrics
            .latency
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                metrics.sent.get_or_create(&label).inc_by(batch.len() as u64);
            }
            Err(reason) => {
                metrics.errors.get_or_create(&label).inc_by(batch.len() as u64);
                tracing::warn!(alertmanager = %t.url, alerts = batch.len(), %reason, "sending alerts to Alertmanager failed");
            }
        }
    }
}

/// One `POST` of a batch; Err is why it failed.
async fn post(client: &reqwest::Client, endpoint: &str, batch: &[Alert]) -> Result<(), String> {
    let resp = client.post(endpoint).json(batch).send().await.map_err(|e| {
        // reqwest's own message hides the cause (refused, timed out...) in its sources.
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        reason
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(200).collect();
    Err(format!("bad response status {status}: {body}"))
}

#[cfg(test)]
mod tests;
