/// Everything that can go wrong in the load generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A workload configuration that cannot describe real traffic.
    #[error("invalid workload: {0}")]
    InvalidConfig(String),
    /// A `/proc` file of the measured process could not be read.
    #[error("reading {path}: {source}")]
    Proc {
        /// The `/proc` file.
        path: String,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc` file did not have the expected layout.
    #[error("unexpected format of {path}: {detail}")]
    ProcFormat {
        /// The `/proc` file.
        path: String,
        /// What did not parse.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A `--header` that is not `Name: value`, or not a valid HTTP header.
    #[error("invalid header {0:?}: expected `Name: value`")]
    Header(String),
    /// A result or summary file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why the I/O failed.
        #[source]
        source: std::io::Error,
    },
    /// A file given to `query report` is not a `query run` result.
    #[error("{path}: not a query benchmark result: {source}")]
    ResultFormat {
        /// The file.
        path: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The tokio runtime could not be started.
    #[error("starting the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Result files that cannot be reported together, or a summary that cannot be encoded.
    #[error("query benchmark report: {0}")]
    Report(String),
    /// The OTLP/gRPC endpoint could not be parsed or connected to.
    #[error("OTLP/gRPC: {0}")]
    Grpc(String),
}
