//! The ruler's two [`RuleSink`]s, one encoder: what rules produce becomes a remote-write 1.0
//! request (snappy protobuf, [`remote_write_body`]) and goes through an ingester's one write
//! path (WAL first, then the head), so it is as durable as a push and readable by the next
//! evaluation.
//!
//! - [`IngesterSink`] (all-in-one): the process's own ingester, called directly.
//! - [`RemoteWriteSink`] (the `ruler` role): `POST ruler.remote_write_url` on the ingest tier;
//!   a 2xx means the ingester fsynced its WAL. Answers that say nothing was stored (5xx, 429)
//!   and connection errors are retried a few times within the call; any other refusal is the
//!   ingester's final word and becomes the rule's `lastError` with its status and reason.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tributary_ingest::Ingester;
use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::Body;
use tributary_proto::prometheus as pb;
use tributary_query::ruler::{RuleSample, RuleSink, RulerConfig};

use crate::Error;

/// Rule samples as a remote-write 1.0 body: `prometheus.WriteRequest`, snappy block-compressed.
pub(crate) fn remote_write_body(samples: &[RuleSample]) -> Result<Vec<u8>, String> {
    let request = pb::WriteRequest {
        timeseries: samples
            .iter()
            .map(|s| pb::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| pb::Label {
                        name: l.name.to_string(),
                        value: l.value.to_string(),
                    })
                    .collect(),
                samples: vec![pb::Sample {
                    value: s.value,
                    timestamp: s.timestamp_ms,
                }],
                exemplars: Vec::new(),
                histograms: Vec::new(),
            })
            .collect(),
        metadata: Vec::new(),
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .map_err(|e| format!("encoding rule output: {e}"))
}

/// Writes rule output into the local ingester.
#[derive(Debug)]
pub(crate) struct IngesterSink(pub(crate) Arc<Ingester>);

#[async_trait::async_trait]
impl RuleSink for IngesterSink {
    async fn write(&self, samples: Vec<RuleSample>) -> Result<(), String> {
        let n = samples.len();
        let bytes = remote_write_body(&samples)?;
        let body = Body::remote_write(bytes.into(), None, Some("snappy")).map_err(|e| e.to_string())?;
        // Every series names its own cluster (the ruler sees to it): no token, no header.
        let outcome = self
            .0
            .write(ClusterContext::default(), body)
            .await
            .map_err(|e| format!("writing {n} rule samples: {e}"))?;
        if outcome.rejected.is_empty() {
            Ok(())
        } else {
            Err(format!("rule samples refused: {}", outcome.rejected.reasons_text()))
        }
    }
}

/// Samples per remote-write request: Prometheus's own senders batch a few thousand, and the
/// ingesters' body limits (`ingest.max_body_bytes`) are sized for such batches.
const SAMPLES_PER_REQUEST: usize = 5_000;

/// The waits before the retries of one request: four attempts within about 2 s plus the
/// requests' own time, well under any sensible evaluation interval.
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

/// Writes rule output to the ingest tier by remote-write 1.0 (the `ruler` role).
#[derive(Debug)]
pub(crate) struct RemoteWriteSink {
    url: String,
    token: Option<String>,
    client: reqwest::Client,
    backoff: Vec<Duration>,
}

/// One attempt's failure: worth repeating (nothing was stored) or not.
enum Failure {
    Retry(String),
    Final(String),
}

impl RemoteWriteSink {
    /// The sink of `ruler.remote_write_url`, with the token of `ruler.remote_write_token_file`.
    pub(crate) fn new(cfg: &RulerConfig) -> Result<Self, Error> {
        let path = &cfg.remote_write_token_file;
        let token = if path.as_os_str().is_empty() {
            None
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::RemoteWrite(format!("reading ruler.remote_write_token_file {}: {e}", path.display()))
            })?;
            Some(text.trim().to_string())
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.remote_write_timeout)
            .build()
            .map_err(|e| Error::RemoteWrite(error_chain(&e)))?;
        Ok(Self {
            url: cfg.remote_write_url.clone(),
            token,
            client,
            backoff: RETRY_BACKOFF.to_vec(),
        })
    }

    /// One request, retried after the backoff's waits while the failure is retryable.
    async fn send(&self, body: Vec<u8>, n: usize) -> Result<(), String> {
        // Shared, not copied, by each attempt.
        let body = axum::body::Bytes::from(body);
        let mut waits = self.backoff.iter();
        let mut attempts = 1;
        loop {
            let why = match self.attempt(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(Failure::Final(why)) => return Err(format!("writing {n} rule samples to {}: {why}", self.url)),
                Err(Failure::Retry(why)) => why,
            };
            let Some(wait) = waits.next() else {
                return Err(format!(
                    "writing {n} rule samples to {}: {why} (gave up after {attempts} attempts)",
                    self.url
                ));
            };
            tracing::debug!(url = %self.url, error = %why, "remote-write of rule samples failed; retrying");
            tokio::time::sleep(*wait).await;
            attempts += 1;
        }
    }

    async fn attempt(&self, body: axum::body::Bytes) -> Result<(), Failure> {
        let mut request = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", concat!("tributary-ruler/", env!("CARGO_PKG_VERSION")))
            .body(body);
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let answer = request.send().await.map_err(|e| Failure::Retry(error_chain(&e)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        let why = format!("{status}: {}", truncated(text.trim(), 1000));
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Retry(why))
        } else {
            Err(Failure::Final(why))
        }
    }
}

#[async_trait::async_trait]
impl RuleSink for RemoteWriteSink {
    async fn write(&self, samples: Vec<RuleSample>) -> Result<(), String> {
        for chunk in samples.chunks(SAMPLES_PER_REQUEST) {
            self.send(remote_write_body(chunk)?, chunk.len()).await?;
        }
        Ok(())
    }
}

/// An error with its causes (reqwest's own text omits why a connection failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn truncated(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests;
