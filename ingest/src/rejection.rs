//! Log lines for refused writes: one line per refused request, at most one per (cluster,
//! reason) per window, the next one saying how many were suppressed in between. A sender stuck
//! on a bad batch retries it for hours; the log must name it without repeating it thousands of
//! times. The counts per protocol and status stay in `tributary_ingest_requests_total`.
//!
//! Refusals for authentication and authorisation (`unauthorized`, `forbidden`) are logged the
//! same way; their `cluster` is who sent them ([`subject`]), as no cluster can be trusted yet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::record::Kind;

/// How often one (cluster, reason) pair may be logged.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Distinct pairs remembered; beyond it, pairs whose window has passed are forgotten first, and
/// if none has, the map starts over (a line too many beats unbounded memory).
const MAX_PAIRS: usize = 4096;

/// The rate limiter behind the rejection log lines.
#[derive(Debug)]
pub(crate) struct RejectionLog {
    window: Duration,
    pairs: Mutex<HashMap<(String, &'static str), Pair>>,
}

#[derive(Debug)]
struct Pair {
    logged_at: Instant,
    suppressed: u64,
}

impl Default for RejectionLog {
    fn default() -> Self {
        Self::new(WINDOW)
    }
}

impl RejectionLog {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            pairs: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refusal of `cluster`'s request for `reason` at `now` gets a line: `Some(n)`
    /// with the `n` refusals of the pair suppressed since its last line, or `None` to stay quiet.
    pub(crate) fn admit(&self, cluster: &str, reason: &'static str, now: Instant) -> Option<u64> {
        let mut pairs = self.pairs.lock();
        if let Some(p) = pairs.get_mut(&(cluster.to_string(), reason)) {
            if now.saturating_duration_since(p.logged_at) < self.window {
                p.suppressed += 1;
                return None;
            }
            let suppressed = std::mem::take(&mut p.suppressed);
            p.logged_at = now;
            return Some(suppressed);
        }
        if pairs.len() >= MAX_PAIRS {
            let window = self.window;
            pairs.retain(|_, p| now.saturating_duration_since(p.logged_at) < window);
            if pairs.len() >= MAX_PAIRS {
                pairs.clear();
            }
        }
        pairs.insert(
            (cluster.to_string(), reason),
            Pair {
                logged_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }

    /// Logs one refused request (rate-limited as [`RejectionLog::admit`] says).
    pub(crate) fn log(&self, cluster: &str, protocol: &str, reason: &'static str, detail: &str) {
        if let Some(suppressed) = self.admit(cluster, reason, Instant::now()) {
            tracing::warn!(cluster, protocol, reason, suppressed, detail, "write rejected");
        }
    }
}

/// The protocol a write kind arrives by, as log lines name it.
pub(crate) fn protocol(kind: Kind) -> &'static str {
    match kind {
        Kind::PromRemoteWriteV1 => "prometheus_remote_write",
        Kind::PromRemoteWriteV2 => "prometheus_remote_write_v2",
        Kind::OtlpMetrics => "otlp_metrics",
        Kind::OtlpLogs => "otlp_logs",
        Kind::OtlpTraces => "otlp_traces",
        Kind::ZipkinJson => "zipkin",
        Kind::LokiPushProtobuf | Kind::LokiPushJson => "loki_push",
    }
}

/// Who a request refused for authentication is logged under (the `cluster` field): the token's
/// name (its entry's `name` or digest prefix, never the token) when the token is known (a 403),
/// else `unauthenticated`.
pub(crate) fn subject(token_name: Option<&str>) -> &str {
    token_name.unwrap_or(UNAUTHENTICATED)
}

/// The subject of a request no known token or certificate vouches for.
pub(crate) const UNAUTHENTICATED: &str = "unauthenticated";

/// The reason of a request that was stored except for some refused items.
pub(crate) const REFUSED_ITEMS: &str = "refused_items";

#[cfg(test)]
mod tests;
