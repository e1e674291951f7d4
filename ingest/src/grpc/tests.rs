use super::*;

/// Before the ingester is handed over (the WAL still replaying) both export services answer
/// `UNAVAILABLE`, which OTLP exporters retry, rather than anything permanent.
#[tokio::test]
async fn exports_answer_unavailable_until_ready() {
    let otlp = Otlp::starting(Auth::default(), &crate::config::IngestConfig::default());
    let metrics = MetricsService::export(&otlp, Request::new(ExportMetricsServiceRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(metrics.code(), tonic::Code::Unavailable, "{metrics:?}");
    assert!(metrics.message().contains("replayed"), "{metrics:?}");
    let logs = LogsService::export(&otlp, Request::new(ExportLogsServiceRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(logs.code(), tonic::Code::Unavailable, "{logs:?}");
}
