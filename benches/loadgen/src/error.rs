/// Everything that can go wrong in the load generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid workload: {0}")]
    InvalidConfig(String),
    #[error("reading {path}: {source}")]
    Proc {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unexpected format of {path}: {detail}")]
    ProcFormat { path: String, detail: String },
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("invalid header {0:?}: expected `Name: value`")]
    Header(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a query benchmark result: {source}")]
    ResultFormat {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("query benchmark report: {0}")]
    Report(String),
    #[error("OTLP/gRPC: {0}")]
    Grpc(String),
}
