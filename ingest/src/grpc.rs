//! OTLP/gRPC: the `opentelemetry.proto.collector.{metrics,logs,trace}.v1` services.
//!
//! Handlers are thin: cluster context from the request metadata, the request tonic decoded
//! wrapped in a `decode::Body` (the protocol struct goes straight to `decode`, not re-encoded),
//! one [`Ingester::write`], and the answer decided by `http::error` (the one place statuses are
//! decided, tonic's own decode failures included). Compressed requests (gzip) are
//! accepted; the decompressed message is capped at `max_decompressed_bytes`.
//!
//! The services can be served before the ingester exists ([`Otlp::starting`]): the port is
//! bound while the WAL replays, and every export answers `UNAVAILABLE` (which OTLP exporters
//! retry with backoff) until [`Otlp::ready`] hands over the ingester, rather than refusing
//! connections (which a Collector logs as an error and counts as a failure).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tonic::codec::CompressionEncoding;
use tonic::codegen::tokio_stream::Stream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};
use tributary_proto::otlp::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use tributary_proto::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use tributary_proto::otlp::collector::metrics::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use tributary_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tributary_proto::otlp::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use tributary_proto::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::cluster::ClusterContext;
use crate::decode::{Body, Kind, Outcome};
use crate::error::Error;
use crate::http::error;
use crate::ingester::Ingester;
use crate::metrics::RequestLabels;
use tributary_storage::auth::{Auth, ClientCertificate};

/// The OTLP gRPC services over one ingester (once it is open).
#[derive(Clone, Debug)]
pub struct Otlp {
    ingester: Arc<OnceLock<Arc<Ingester>>>,
    auth: Auth,
    /// `ingest.max_decompressed_bytes`: the largest message decoded.
    max_message_bytes: usize,
}

impl Otlp {
    /// The services before the ingester is open: every export answers `UNAVAILABLE` until
    /// [`Otlp::ready`], then writes through it. `auth` decides who may write; `cfg` is the
    /// configuration the ingester will open with.
    pub fn starting(auth: Auth, cfg: &crate::config::IngestConfig) -> Self {
        Self {
            ingester: Arc::new(OnceLock::new()),
            auth,
            max_message_bytes: cfg.max_decompressed_bytes,
        }
    }

    /// The ingester is open: exports (of every clone of these services) write through it.
    pub fn ready(&self, ingester: Arc<Ingester>) {
        let _ = self.ingester.set(ingester);
    }

    /// Serves the three services on the connections `incoming` yields (plain TCP, or the
    /// binary's TLS connections, whose connect info carries the client certificate) until
    /// `shutdown` resolves.
    pub async fn serve<I, IO, IE>(
        self,
        incoming: I,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error>
    where
        I: Stream<Item = std::result::Result<IO, IE>>,
        IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
        IE: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.max_message_bytes;
        tonic::transport::Server::builder()
            .layer(tower::util::MapResponseLayer::new(
                error::grpc_decode_errors_are_permanent,
            ))
            .trace_fn(|req| tracing::info_span!("otlp_grpc", path = %req.uri().path()))
            .add_service(
                MetricsServiceServer::new(self.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
            )
            .add_service(
                LogsServiceServer::new(self.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
            )
            .add_service(
                TraceServiceServer::new(self)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(limit),
            )
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }

    fn context<T>(ing: &Ingester, auth: &Auth, kind: Kind, req: &Request<T>) -> Result<ClusterContext, Error> {
        let headers = req.metadata().clone().into_headers();
        // Set by the TLS layer on every call of a TLS connection (its connect info).
        let client_cert = req.extensions().get::<ClientCertificate>();
        ing.authenticate(kind, &headers, client_cert, auth)
    }

    fn count(ing: &Ingester, protocol: &'static str, code: tonic::Code) {
        ing.metrics()
            .requests
            .get_or_create(&RequestLabels {
                protocol,
                // gRPC codes sit in the same label as HTTP statuses: 0 is OK.
                status: code as u16,
            })
            .inc();
    }
}

/// The bound address, for logs.
pub fn describe(addr: SocketAddr) -> String {
    format!("grpc://{addr}")
}

impl Otlp {
    /// Authenticates, writes, and turns a refusal or failure into its gRPC status.
    async fn export<T>(&self, kind: Kind, request: Request<T>, body: fn(T) -> Body) -> Result<Outcome, Status> {
        let Some(ing) = self.ingester.get() else {
            return Err(error::grpc_status(&Error::Unavailable(
                "starting: the write-ahead log is being replayed; retry".into(),
            )));
        };
        let result = async {
            let ctx = Self::context(ing, &self.auth, kind, &request)?;
            let outcome = ing.write(ctx, body(request.into_inner())).await?;
            match error::refusal(kind, &outcome) {
                Some(e) => Err(e),
                None => Ok(outcome),
            }
        }
        .await;
        let result = result.map_err(|e| error::grpc_status(&e));
        let protocol = match kind {
            Kind::OtlpLogs => "otlp_grpc_logs",
            Kind::OtlpTraces => "otlp_grpc_traces",
            _ => "otlp_grpc_metrics",
        };
        Self::count(
            ing,
            protocol,
            result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok),
        );
        result
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let outcome = Otlp::export(self, Kind::OtlpMetrics, request, Body::otlp_metrics_request).await?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: error::otlp_partial(Kind::OtlpMetrics, &outcome).map(|(rejected, msg)| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: msg,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let outcome = Otlp::export(self, Kind::OtlpLogs, request, Body::otlp_logs_request).await?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: error::otlp_partial(Kind::OtlpLogs, &outcome).map(|(rejected, msg)| {
                ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: msg,
                }
            }),
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let outcome = Otlp::export(self, Kind::OtlpTraces, request, Body::otlp_traces_request).await?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: error::otlp_partial(Kind::OtlpTraces, &outcome).map(|(rejected, msg)| {
                ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: msg,
                }
            }),
        }))
    }
}

#[cfg(test)]
mod tests;
