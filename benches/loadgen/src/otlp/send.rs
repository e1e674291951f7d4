//! Replays pre-encoded OTLP requests the way a Collector's exporter does: one queue per
//! connection sent strictly in order, retrying what the OTLP specification calls retryable
//! (HTTP 429/502/503/504, gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, ...) with exponential backoff
//! and `Retry-After`, and nothing else. Every answer is checked: a success must carry a
//! decodable `Export*ServiceResponse`, and any `partial_success` rejection is counted, so a run
//! with any refused item is visibly not clean ([`Outcome::clean`]).
//!
//! OTLP/gRPC goes through the generated `MetricsServiceClient`/`LogsServiceClient`/`TraceServiceClient` over a tonic
//! `Channel`, but with the body swapped for the pre-encoded (and pre-gzipped) gRPC frame by
//! [`PreEncoded`]: the generated client would otherwise encode and compress every request
//! inside the timed loop, on the same two cores the receiver runs on.

use std::collections::BTreeMap;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tonic::codegen::Service;
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};
use tributary_proto::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use tributary_proto::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use tributary_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use tributary_proto::otlp::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use tributary_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use tributary_proto::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

use super::{Compression, Signal, Transport};
use crate::Error;

/// One request ready to send: the exact bytes of the HTTP body or of the gRPC message frame.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub body: Bytes,
    /// Data points or log records in it.
    pub items: u64,
}

/// How to send.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// `http://host:port` of the OTLP/HTTP or OTLP/gRPC listener (no path).
    pub endpoint: String,
    pub transport: Transport,
    pub signal: Signal,
    pub compression: Compression,
    /// Per-attempt timeout (the exporters' `timeout`, 5 s by default; longer here so that a
    /// slow receiver shows up as latency rather than as retries).
    pub timeout: Duration,
    pub max_retries: u32,
    /// The exporters' `retry_on_failure` initial and maximum interval.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Wall-clock bound of the whole replay; what is not sent by then is counted unsent.
    pub max_duration: Duration,
    /// Extra request headers (HTTP) or metadata (gRPC), e.g. `X-Tributary-Cluster`.
    pub headers: Vec<(String, String)>,
}

impl Options {
    pub(crate) fn new(
        endpoint: impl Into<String>,
        transport: Transport,
        signal: Signal,
        compression: Compression,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            transport,
            signal,
            compression,
            timeout: Duration::from_secs(30),
            max_retries: 10,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            max_duration: Duration::from_secs(3600),
            headers: vec![],
        }
    }

    fn url(&self) -> String {
        let path = match self.signal {
            _ if self.transport == Transport::Loki => "/loki/api/v1/push",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
        };
        format!("{}{path}", self.endpoint.trim_end_matches('/'))
    }
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Requests taken from the queues (each counted once, whatever its retries).
    pub requests: u64,
    pub requests_ok: u64,
    pub requests_failed: u64,
    pub retries: u64,
    /// Items in successful responses, minus those the receiver said it rejected.
    pub items_acked: u64,
    /// `partial_success.rejected_data_points` / `rejected_log_records`, summed.
    pub items_rejected: u64,
    /// Items of requests that failed for good.
    pub items_failed: u64,
    /// Items left in the queues when `max_duration` ran out.
    pub items_unsent: u64,
    /// Successful responses whose `partial_success` carried only a warning message.
    pub warnings: u64,
    /// Body bytes put on the wire, retries included.
    pub bytes_sent: u64,
    /// Every failed attempt by HTTP status or gRPC code, `transport` for connection failures,
    /// `partial_success` for responses that rejected items.
    pub errors_by_status: BTreeMap<String, u64>,
    /// The first few error or rejection messages, for diagnosis.
    pub error_examples: Vec<String>,
    /// Latency of each successful request's final attempt, in microseconds.
    pub latencies_us: Vec<u64>,
    pub wall: Duration,
}

const MAX_EXAMPLES: usize = 5;

impl Outcome {
    /// Every item acknowledged, none rejected, failed or unsent.
    pub(crate) fn clean(&self) -> bool {
        self.requests_failed == 0 && self.items_rejected == 0 && self.items_failed == 0 && self.items_unsent == 0
    }

    fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.requests_ok += other.requests_ok;
        self.requests_failed += other.requests_failed;
        self.retries += other.retries;
        self.items_acked += other.items_acked;
        self.items_rejected += other.items_rejected;
        self.items_failed += other.items_failed;
        self.items_unsent += other.items_unsent;
        self.warnings += other.warnings;
        self.bytes_sent += other.bytes_sent;
        for (k, v) in other.errors_by_status {
            *self.errors_by_status.entry(k).or_default() += v;
        }
        for e in other.error_examples {
            if self.error_examples.len() < MAX_EXAMPLES {
                self.error_examples.push(e);
            }
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// Latency quantile in milliseconds (`q` in [0, 1]); sorts the samples on first use.
    pub(crate) fn latency_ms(&mut self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let idx = ((self.latencies_us.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(self.latencies_us[idx] as f64 / 1000.0)
    }

    fn error(&mut self, key: String, example: impl FnOnce() -> String) {
        *self.errors_by_status.entry(key).or_default() += 1;
        if self.error_examples.len() < MAX_EXAMPLES {
            self.error_examples.push(example());
        }
    }
}

/// The verdict on one attempt.
#[derive(Debug)]
enum Attempt {
    /// Accepted; `rejected` items refused in `partial_success`, with its message.
    Ok {
        rejected: u64,
        message: String,
    },
    Retry {
        key: String,
        detail: String,
        after: Option<Duration>,
    },
    Fail {
        key: String,
        detail: String,
    },
}

/// A connection: an HTTP/1.1 keep-alive client or one HTTP/2 channel with the generated client.
#[derive(Debug, Clone)]
enum Client {
    /// OTLP/HTTP, or the Loki push API when `loki`.
    Http {
        client: reqwest::Client,
        url: String,
        loki: bool,
    },
    Metrics(MetricsServiceClient<PreEncoded>),
    Logs(LogsServiceClient<PreEncoded>),
    Traces(TraceServiceClient<PreEncoded>),
}

/// Sends every queue on its own connection, concurrently, until all are drained (or
/// `max_duration` passes). The clock starts once every connection is established.
pub(crate) async fn replay(queues: Vec<Vec<Body>>, opts: &Options) -> Result<Outcome, Error> {
    let mut clients = Vec::with_capacity(queues.len());
    for _ in 0..queues.len() {
        clients.push(connect(opts, queues.len()).await?);
    }
    let started = Instant::now();
    let deadline = started + opts.max_duration;
    let workers: Vec<_> = queues
        .into_iter()
        .zip(clients)
        .map(|(queue, client)| {
            let opts = opts.clone();
            tokio::spawn(async move { send_queue(client, queue, opts, deadline).await })
        })
        .collect();
    let mut total = Outcome::default();
    for worker in workers {
        // A worker only ends by draining its queue; a panic there is a bug worth surfacing.
        total.merge(worker.await.expect("replay worker panicked"));
    }
    total.wall = started.elapsed();
    Ok(total)
}

async fn connect(opts: &Options, connections: usize) -> Result<Client, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in &opts.headers {
        let bad = || Error::Header(format!("{name}: {value}"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        headers.insert(name, HeaderValue::from_str(value).map_err(|_| bad())?);
    }
    match opts.transport {
        Transport::Http | Transport::Loki => {
            headers.insert("content-type", HeaderValue::from_static("application/x-protobuf"));
            if opts.compression == Compression::Gzip && opts.transport == Transport::Http {
                headers.insert("content-encoding", HeaderValue::from_static("gzip"));
            }
            let client = reqwest::Client::builder()
                .user_agent(concat!("tributary-loadgen/", env!("CARGO_PKG_VERSION")))
                .default_headers(headers)
                .pool_max_idle_per_host(connections)
                .tcp_nodelay(true)
                .timeout(opts.timeout)
                .build()
                .map_err(Error::Client)?;
            Ok(Client::Http {
                client,
                url: opts.url(),
                loki: opts.transport == Transport::Loki,
            })
        }
        Transport::Grpc => {
            let endpoint = Endpoint::from_shared(opts.endpoint.clone())
                .map_err(|e| Error::Grpc(format!("endpoint {}: {e}", opts.endpoint)))?
                .tcp_nodelay(true)
                .timeout(opts.timeout)
                .user_agent(concat!("tributary-loadgen/", env!("CARGO_PKG_VERSION")))
                .map_err(|e| Error::Grpc(e.to_string()))?;
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| Error::Grpc(format!("connecting to {}: {e}", opts.endpoint)))?;
            let inner = PreEncoded {
                channel,
                gzip: opts.compression == Compression::Gzip,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
                    .into(),
            };
            Ok(match opts.signal {
                Signal::Metrics => Client::Metrics(MetricsServiceClient::new(inner)),
                Signal::Logs => Client::Logs(LogsServiceClient::new(inner)),
                Signal::Traces => Client::Traces(TraceServiceClient::new(inner)),
            })
        }
    }
}

async fn send_queue(mut client: Client, queue: Vec<Body>, opts: Options, deadline: Instant) -> Outcome {
    let mut out = Outcome::default();
    for req in queue {
        if Instant::now() >= deadline {
            out.items_unsent += req.items;
            continue;
        }
        out.requests += 1;
        let mut backoff = opts.min_backoff;
        let mut attempt = 0u32;
        loop {
            out.bytes_sent += req.body.len() as u64;
            let sent = Instant::now();
            let after = match client.send(&req.body, opts.signal).await {
                Attempt::Ok { rejected, message } => {
                    out.requests_ok += 1;
                    out.latencies_us.push(sent.elapsed().as_micros() as u64);
                    let rejected = rejected.min(req.items);
                    out.items_rejected += rejected;
                    out.items_acked += req.items - rejected;
                    if rejected > 0 {
                        out.error("partial_success".into(), || {
                            format!("partial_success: {rejected} of {} rejected: {message}", req.items)
                        });
                    } else if !message.is_empty() {
                        out.warnings += 1;
                        out.error("partial_success_warning".into(), || format!("warning: {message}"));
                    }
                    break;
                }
                Attempt::Fail { key, detail } => {
                    out.error(key, || detail);
                    out.requests_failed += 1;
                    out.items_failed += req.items;
                    break;
                }
                Attempt::Retry { key, detail, after } => {
                    out.error(key, || detail);
                    after
                }
            };
            if attempt >= opts.max_retries || Instant::now() >= deadline {
                out.requests_failed += 1;
                out.items_failed += req.items;
                break;
            }
            attempt += 1;
            out.retries += 1;
            tokio::time::sleep(after.map_or(backoff, |a| a.max(backoff)).min(opts.max_backoff * 6)).await;
            backoff = (backoff * 2).min(opts.max_backoff);
        }
    }
    out
}

impl Client {
    async fn send(&mut self, body: &Bytes, signal: Signal) -> Attempt {
        match self {
            Client::Http { client, url, loki } => http_attempt(client, url, body.clone(), signal, *loki).await,
            Client::Metrics(c) => {
                let mut req = tonic::Request::new(ExportMetricsServiceRequest::default());
                req.extensions_mut().insert(Frame(body.clone()));
                grpc_verdict(c.export(req).await.map(|r| {
                    let p = r.into_inner().partial_success.unwrap_or_default();
                    (p.rejected_data_points, p.error_message)
                }))
            }
            Client::Logs(c) => {
                let mut req = tonic::Request::new(ExportLogsServiceRequest::default());
                req.extensions_mut().insert(Frame(body.clone()));
                grpc_verdict(c.export(req).await.map(|r| {
                    let p = r.into_inner().partial_success.unwrap_or_default();
                    (p.rejected_log_records, p.error_message)
                }))
            }
            Client::Traces(c) => {
                let mut req = tonic::Request::new(ExportTraceServiceRequest::default());
                req.extensions_mut().insert(Frame(body.clone()));
                grpc_verdict(c.export(req).await.map(|r| {
                    let p = r.into_inner().partial_success.unwrap_or_default();
                    (p.rejected_spans, p.error_message)
                }))
            }
        }
    }
}

async fn http_attempt(client: &reqwest::Client, url: &str, body: Bytes, signal: Signal, loki: bool) -> Attempt {
    let resp = match client.post(url).body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Retry {
                key: "transport".into(),
                detail: format!("transport: {e}"),
                after: None,
            };
        }
    };
    let status = resp.status();
    let after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    // Reading the body to its end is what lets the connection be reused.
    let text = match resp.bytes().await {
        Ok(t) => t,
        Err(e) => {
            return Attempt::Retry {
                key: "transport".into(),
                detail: format!("reading the response: {e}"),
                after: None,
            };
        }
    };
    let detail = || {
        format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&text[..text.len().min(300)]).trim()
        )
    };
    // Loki answers a stored push with 204 and no body; a partly refused one with 400.
    if loki && status.is_success() {
        return Attempt::Ok {
            rejected: 0,
            message: String::new(),
        };
    }
    if status.as_u16() == 200 {
        return match partial_success(&text, json, signal) {
            Some((rejected, message)) => Attempt::Ok {
                rejected: rejected.max(0) as u64,
                message,
            },
            None => Attempt::Fail {
                key: "undecodable_response".into(),
                detail: format!("200 without a decodable Export*ServiceResponse: {}", detail()),
            },
        };
    }
    if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
        return Attempt::Retry {
            key: status.as_u16().to_string(),
            detail: detail(),
            after,
        };
    }
    Attempt::Fail {
        key: status.as_u16().to_string(),
        detail: detail(),
    }
}

/// (rejected items, message) of an OTLP/HTTP success body; `None` if it is not a response.
fn partial_success(body: &[u8], json: bool, signal: Signal) -> Option<(i64, String)> {
    if json {
        let v: serde_json::Value = serde_json::from_slice(if body.is_empty() { b"{}" } else { body }).ok()?;
        let p = v.get("partialSuccess").or_else(|| v.get("partial_success"));
        let key = match signal {
            Signal::Metrics => "rejectedDataPoints",
            Signal::Logs => "rejectedLogRecords",
            Signal::Traces => "rejectedSpans",
        };
        // proto3 JSON writes int64 as a string; accept both.
        let rejected = p
            .and_then(|p| p.get(key))
            .and_then(|r| r.as_i64().or_else(|| r.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(0);
        let message = p
            .and_then(|p| p.get("errorMessage"))
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned();
        return Some((rejected, message));
    }
    match signal {
        Signal::Metrics => ExportMetricsServiceResponse::decode(body).ok().map(|r| {
            let p = r.partial_success.unwrap_or_default();
            (p.rejected_data_points, p.error_message)
        }),
        Signal::Logs => ExportLogsServiceResponse::decode(body).ok().map(|r| {
            let p = r.partial_success.unwrap_or_default();
            (p.rejected_log_records, p.error_message)
        }),
        Signal::Traces => ExportTraceServiceResponse::decode(body).ok().map(|r| {
            let p = r.partial_success.unwrap_or_default();
            (p.rejected_spans, p.error_message)
        }),
    }
}

fn grpc_verdict(result: Result<(i64, String), tonic::Status>) -> Attempt {
    match result {
        Ok((rejected, message)) => Attempt::Ok {
            rejected: rejected.max(0) as u64,
            message,
        },
        Err(status) => {
            let code = status.code();
            let key = format!("grpc_{code:?}");
            let detail = format!("gRPC {code:?}: {}", status.message());
            // The OTLP specification's retryable codes.
            use tonic::Code::*;
            if matches!(
                code,
                Cancelled | DeadlineExceeded | ResourceExhausted | Aborted | OutOfRange | Unavailable | DataLoss
            ) {
                Attempt::Retry {
                    key,
                    detail,
                    after: None,
                }
            } else {
                Attempt::Fail { key, detail }
            }
        }
    }
}

/// Request extension carrying the pre-encoded gRPC frame that replaces the (empty) message the
/// generated client encoded.
#[derive(Debug, Clone)]
struct Frame(Bytes);

/// A tonic `Channel` that sends each request's `Frame` instead of the body the generated
/// client built, flagged `grpc-encoding: gzip` when the frames are gzipped.
#[derive(Debug, Clone)]
pub(crate) struct PreEncoded {
    channel: Channel,
    gzip: bool,
    headers: std::sync::Arc<[(HeaderName, HeaderValue)]>,
}

impl Service<http::Request<tonic::body::Body>> for PreEncoded {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = tonic::transport::channel::ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, mut req: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(Frame(frame)) = req.extensions_mut().remove::<Frame>() {
            *req.body_mut() = tonic::body::Body::new(axum::body::Body::from(frame));
            if self.gzip {
                req.headers_mut()
                    .insert("grpc-encoding", http::HeaderValue::from_static("gzip"));
            }
        }
        for (name, value) in self.headers.iter() {
            req.headers_mut().insert(name.clone(), value.clone());
        }
        self.channel.call(req)
    }
}
