//! OTLP/gRPC: the `opentelemetry.proto.collector.{metrics,logs,trace}.v1` services.
//!
//! Handlers are thin: cluster context from the request metadata, one [`Ingester`] call, the
//! error mapped by `http::error::grpc_code` (the one place statuses are decided). Traces answer
//! `UNIMPLEMENTED` with a message saying they are not stored. Compressed requests (gzip) are
//! accepted; the decompressed message is capped at `max_decompressed_bytes`.

use std::net::SocketAddr;
use std::sync::Arc;

use tonic::codec::CompressionEncoding;
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
use tributary_proto::otlp::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

use crate::cluster::ClusterContext;
use crate::error::Error;
use crate::http::error::grpc_code;
use crate::ingester::{Ingester, OtlpOutcome};
use crate::metrics::RequestLabels;

/// The OTLP gRPC services over one ingester.
#[derive(Clone, Debug)]
pub struct Otlp {
    ingester: Arc<Ingester>,
}

impl Otlp {
    pub fn new(ingester: Arc<Ingester>) -> Self {
        Self { ingester }
    }

    /// Serves the three services on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let limit = self.ingester.config().max_decompressed_bytes;
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .layer(tower::util::MapResponseLayer::new(decode_errors_are_permanent))
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
            .add_service(TraceServiceServer::new(self).max_decoding_message_size(limit))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }

    fn context<T>(&self, req: &Request<T>) -> Result<ClusterContext, Error> {
        let headers = req.metadata().clone().into_headers();
        ClusterContext::from_request(&headers, self.ingester.config())
    }

    fn count(&self, protocol: &'static str, code: tonic::Code) {
        self.ingester
            .metrics()
            .requests
            .get_or_create(&RequestLabels {
                protocol,
                // gRPC codes sit in the same label as HTTP statuses: 0 is OK.
                status: code as u16,
            })
            .inc();
    }
}

/// tonic answers a request it cannot decode (bad protobuf, invalid UTF-8, a message over the
/// size limit) with INTERNAL or OUT_OF_RANGE before our handler runs. OTLP clients must not
/// retry bad data, and our own handlers never answer either code, so such a trailers-only answer
/// is rewritten to INVALID_ARGUMENT, keeping tonic's message.
fn decode_errors_are_permanent<B>(mut r: tonic::codegen::http::Response<B>) -> tonic::codegen::http::Response<B> {
    let code = r.headers().get("grpc-status").and_then(|v| v.to_str().ok());
    if matches!(code, Some("13") | Some("11")) {
        r.headers_mut()
            .insert("grpc-status", tonic::codegen::http::HeaderValue::from_static("3"));
    }
    r
}

/// The bound address, for logs.
pub fn describe(addr: SocketAddr) -> String {
    format!("grpc://{addr}")
}

fn status(e: Error) -> Status {
    if e.retryable() {
        tracing::error!(error = %e, "OTLP gRPC export failed");
    }
    Status::new(grpc_code(&e), e.to_string())
}

fn partial(o: &OtlpOutcome) -> Option<(i64, String)> {
    (o.rejected > 0).then(|| (i64::try_from(o.rejected).unwrap_or(i64::MAX), o.message.clone()))
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let result = match self.context(&request) {
            Ok(ctx) => self.ingester.write_otlp_metrics(ctx, request.into_inner()).await,
            Err(e) => Err(e),
        };
        let result = result.map(|o| {
            Response::new(ExportMetricsServiceResponse {
                partial_success: partial(&o).map(|(rejected, msg)| ExportMetricsPartialSuccess {
                    rejected_data_points: rejected,
                    error_message: msg,
                }),
            })
        });
        let result = result.map_err(status);
        self.count(
            "otlp_grpc_metrics",
            result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok),
        );
        result
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let result = match self.context(&request) {
            Ok(ctx) => self.ingester.write_otlp_logs(ctx, request.into_inner()).await,
            Err(e) => Err(e),
        };
        let result = result.map(|o| {
            Response::new(ExportLogsServiceResponse {
                partial_success: partial(&o).map(|(rejected, msg)| ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: msg,
                }),
            })
        });
        let result = result.map_err(status);
        self.count(
            "otlp_grpc_logs",
            result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok),
        );
        result
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        _request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        Err(Status::unimplemented(
            "Tributary does not store traces yet: send traces to a tracing backend (Tempo, Jaeger); \
             OTLP metrics and logs are accepted by this server",
        ))
    }
}
