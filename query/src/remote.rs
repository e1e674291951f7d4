//! The querier's side of the ingester fan-out (`--role query` with `query.ingesters`): every
//! read also goes to each ingester's head through the internal read API
//! (`tributary_storage::remote`: the contract, its wire format and its client), and the heads'
//! answers are merged with each other and, above this, with Parquet, exactly as all-in-one
//! merges its own head with Parquet (`MergedSource`: heads first, so a sample both in a head and
//! in a just-flushed file counts once).
//!
//! Ingesters come from `query.ingesters`: `http://host:port` (used as written) or
//! `dns+host:port` (every address the name resolves to, re-resolved every
//! `query.ingester_resolve_interval`: a Kubernetes headless service lists each ready pod).
//!
//! An ingester that fails or does not answer within `query.ingester_timeout`: with
//! `query.ingester_failure = "warn"` (the default) the query answers from the rest and carries a
//! warning naming it (its unflushed data is missing from the answer); with `"fail"` the query
//! fails with a 503. Spans (`TraceSource`) fan out the same way. Warnings reach the HTTP answer through a per-request collector
//! (`collect_warnings`); the query APIs' layer adds them to the response's `warnings`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tributary_storage::read::{
    LogRequest, LogSource, PatternRequest, Patterns, SelectRequest, SeriesSize, Source, SpanRequest, StreamVolume,
    TraceSource, VolumeRequest, Within,
};
use tributary_storage::remote::{self, Call, RemoteSource, Transport, WireError};
use tributary_storage::signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata, Span};
use tributary_storage::types::{Labels, Matcher, Series, TimeRange};
use tributary_storage::{Error, Result};

use crate::log_source::MergedLogSource;
use crate::source::MergedSource;
use crate::traces::MergedTraceSource;

/// What a query does when an ingester does not answer (`query.ingester_failure`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngesterFailure {
    /// Answer with the data that is there, with a warning naming the missing ingester.
    #[default]
    Warn,
    /// Fail the query (503).
    Fail,
}

tokio::task_local! {
    static WARNINGS: Arc<Mutex<Vec<String>>>;
}

/// Runs `fut` (one API request) with a warnings collector: what reads under it report (an
/// ingester missing from the answer) comes back beside its output, each warning once.
pub(crate) async fn collect_warnings<T>(fut: impl Future<Output = T>) -> (T, Vec<String>) {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let out = WARNINGS.scope(sink.clone(), fut).await;
    let warnings = std::mem::take(&mut *sink.lock());
    (out, warnings)
}

/// The collector of the request running on this task, to carry into another thread's runtime
/// (`admission::on_deep_stack_async`).
pub(crate) fn current_warnings() -> Option<Arc<Mutex<Vec<String>>>> {
    WARNINGS.try_with(Arc::clone).ok()
}

/// Runs `fut` under `sink` (from [`current_warnings`]), or as it is without one.
pub(crate) async fn with_warnings<T>(sink: Option<Arc<Mutex<Vec<String>>>>, fut: impl Future<Output = T>) -> T {
    match sink {
        Some(sink) => WARNINGS.scope(sink, fut).await,
        None => fut.await,
    }
}

fn warn(text: String) {
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.lock();
        if !w.contains(&text) {
            w.push(text);
        }
    });
}

/// How the querier reaches ingesters (`query.ingester_*`).
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// `query.ingesters`.
    pub ingesters: Vec<String>,
    /// `query.ingester_timeout`.
    pub timeout: Duration,
    /// `query.ingester_failure`.
    pub failure: IngesterFailure,
    /// `query.ingester_resolve_interval`.
    pub resolve_interval: Duration,
    /// The bearer token sent (`query.ingester_token_file`'s content).
    pub token: Option<String>,
}

/// One ingester over HTTP.
#[derive(Debug)]
pub struct HttpTransport {
    client: reqwest::Client,
    /// `http://host:port`, what warnings name.
    base: String,
    url: String,
    token: Option<String>,
}

#[async_trait]
impl Transport for HttpTransport {
    async fn call(&self, call: &Call) -> Result<bytes::Bytes> {
        let unavailable = |reason: String| Error::Unavailable {
            peer: self.base.clone(),
            reason,
        };
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, remote::JSON)
            .body(call.to_json());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| unavailable(error_chain(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| unavailable(error_chain(&e)))?;
        if status.is_success() {
            return Ok(body);
        }
        match serde_json::from_slice::<WireError>(&body) {
            Ok(wire) => Err(wire.into_error(&self.base)),
            Err(_) => Err(unavailable(format!(
                "{} answered {status}: {}",
                call.name(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

type Ingester = Arc<Guarded>;

/// The configured ingesters as one [`Source`] and [`LogSource`].
#[derive(Debug)]
pub struct Fanout {
    cfg: FanoutConfig,
    client: reqwest::Client,
    current: RwLock<Vec<Ingester>>,
}

impl Fanout {
    /// The ingesters of `cfg`, resolved once now (see [`Fanout::keep_resolving`]).
    pub async fn new(cfg: FanoutConfig) -> Arc<Self> {
        // The deadline is `Guarded::guard`'s (one place, one message); the client only bounds
        // connecting.
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP client always builds");
        let fanout = Arc::new(Self {
            cfg,
            client,
            current: RwLock::new(Vec::new()),
        });
        fanout.resolve().await;
        fanout
    }

    /// Re-resolves `dns+` names every `query.ingester_resolve_interval` until `stop` fires.
    pub async fn keep_resolving(self: Arc<Self>, stop: impl Future<Output = ()>) {
        if !self.cfg.ingesters.iter().any(|i| i.starts_with("dns+")) {
            return stop.await;
        }
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.resolve_interval) => self.resolve().await,
                _ = &mut stop => return,
            }
        }
    }

    /// The base URLs read now, sorted.
    pub fn ingesters(&self) -> Vec<String> {
        self.current.read().iter().map(|g| g.base().to_string()).collect()
    }

    async fn resolve(&self) {
        let mut bases = BTreeSet::new();
        for entry in &self.cfg.ingesters {
            match entry.strip_prefix("dns+") {
                None => {
                    bases.insert(entry.trim_end_matches('/').to_string());
                }
                Some(host_port) => match tokio::net::lookup_host(host_port).await {
                    Ok(addrs) => bases.extend(addrs.map(|a| format!("http://{a}"))),
                    // Keep the last answer: a DNS hiccup must not hide every ingester.
                    Err(e) if !self.current.read().is_empty() => {
                        tracing::warn!(name = %host_port, error = %e, "resolving ingesters failed; keeping the last answer");
                        return;
                    }
                    Err(e) => tracing::warn!(name = %host_port, error = %e, "resolving ingesters failed"),
                },
            }
        }
        let mut current = self.current.write();
        if current.iter().map(|g| g.base()).eq(bases.iter().map(String::as_str)) {
            return;
        }
        tracing::info!(ingesters = ?bases, "ingesters to read");
        let kept: Vec<Ingester> = bases
            .into_iter()
            .map(|base| match current.iter().find(|g| g.base() == base) {
                Some(g) => g.clone(),
                None => Arc::new(Guarded {
                    remote: RemoteSource::new(HttpTransport {
                        client: self.client.clone(),
                        url: format!("{base}{}", remote::PATH),
                        base,
                        token: self.cfg.token.clone(),
                    }),
                    cfg: self.cfg.clone(),
                }),
            })
            .collect();
        *current = kept;
    }

    /// The ingesters to read now; none found for a non-empty `query.ingesters` is the same
    /// failure as an ingester not answering.
    fn current(&self) -> Result<Vec<Ingester>> {
        let current = self.current.read().clone();
        if current.is_empty() && !self.cfg.ingesters.is_empty() {
            let reason = format!("no ingester found for query.ingesters {:?}", self.cfg.ingesters);
            match self.cfg.failure {
                IngesterFailure::Warn => warn(format!("{reason}: data not yet flushed is missing from this answer")),
                IngesterFailure::Fail => {
                    return Err(Error::Unavailable {
                        peer: self.cfg.ingesters.join(","),
                        reason,
                    });
                }
            }
        }
        Ok(current)
    }

    fn sources(&self) -> Result<MergedSource> {
        Ok(MergedSource::new(
            self.current()?.into_iter().map(|g| g as Arc<dyn Source>).collect(),
        ))
    }

    fn trace_sources(&self) -> Result<MergedTraceSource> {
        Ok(MergedTraceSource::new(
            self.current()?.into_iter().map(|g| g as Arc<dyn TraceSource>).collect(),
        ))
    }

    fn log_sources(&self) -> Result<MergedLogSource> {
        Ok(MergedLogSource::new(
            self.current()?.into_iter().map(|g| g as Arc<dyn LogSource>).collect(),
        ))
    }
}

/// One ingester under the deadline and the failure policy: a failure is either an empty
/// answer and a warning, or the query's error.
#[derive(Debug)]
struct Guarded {
    remote: RemoteSource<HttpTransport>,
    cfg: FanoutConfig,
}

impl Guarded {
    fn base(&self) -> &str {
        &self.remote.transport().base
    }

    async fn guard<T: Default>(&self, read: impl Future<Output = Result<T>>) -> Result<T> {
        let outcome = match tokio::time::timeout(self.cfg.timeout, read).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Unavailable {
                peer: self.base().to_string(),
                reason: format!("no answer within query.ingester_timeout ({:?})", self.cfg.timeout),
            }),
        };
        match outcome {
            Err(Error::Unavailable { peer, reason }) if self.cfg.failure == IngesterFailure::Warn => {
                tracing::warn!(%peer, %reason, "answering without an ingester");
                warn(format!(
                    "ingester {peer} did not answer ({reason}): data it has not yet flushed is missing from this answer"
                ));
                Ok(T::default())
            }
            other => other,
        }
    }
}

#[async_trait]
impl Source for Guarded {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.guard(self.remote.select(req)).await
    }
    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        self.guard(self.remote.select_within(req, budget)).await
    }
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        self.guard(self.remote.series(req)).await
    }
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        self.guard(self.remote.count_samples(req, limit)).await
    }
    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        self.guard(self.remote.series_samples(req)).await
    }
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.guard(self.remote.label_names(req)).await
    }
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.guard(self.remote.label_values(name, req)).await
    }
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        self.guard(self.remote.exemplars(selectors, range)).await
    }
    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        self.guard(self.remote.select_histograms(req)).await
    }
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        self.guard(self.remote.metadata(metric)).await
    }
}

#[async_trait]
impl LogSource for Guarded {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        self.guard(self.remote.select_logs(req)).await
    }
    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        self.guard(self.remote.log_streams(req)).await
    }
    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        self.guard(self.remote.log_volume(req)).await
    }
    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        self.guard(self.remote.log_patterns(req)).await
    }
    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        self.guard(self.remote.log_label_names(req)).await
    }
    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        self.guard(self.remote.log_label_values(name, req)).await
    }
}

#[async_trait]
impl TraceSource for Guarded {
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>> {
        self.guard(self.remote.select_spans(req)).await
    }
}

#[async_trait]
impl Source for Fanout {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.sources()?.select(req).await
    }
    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        self.sources()?.select_within(req, budget).await
    }
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        self.sources()?.series(req).await
    }
    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        self.sources()?.count_samples(req, limit).await
    }
    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        self.sources()?.series_samples(req).await
    }
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.sources()?.label_names(req).await
    }
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.sources()?.label_values(name, req).await
    }
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        self.sources()?.exemplars(selectors, range).await
    }
    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        self.sources()?.select_histograms(req).await
    }
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        self.sources()?.metadata(metric).await
    }
}

#[async_trait]
impl LogSource for Fanout {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        self.log_sources()?.select_logs(req).await
    }
    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        self.log_sources()?.log_streams(req).await
    }
    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        self.log_sources()?.log_volume(req).await
    }
    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        self.log_sources()?.log_patterns(req).await
    }
    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        self.log_sources()?.log_label_names(req).await
    }
    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        self.log_sources()?.log_label_values(name, req).await
    }
}

#[async_trait]
impl TraceSource for Fanout {
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>> {
        self.trace_sources()?.select_spans(req).await
    }
}

#[cfg(test)]
mod tests;
