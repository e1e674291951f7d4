//! Load generator for remote-write ingest benchmarks.
//!
//! * [`workload`]: deterministic, realistic multi-cluster Kubernetes remote-write traffic,
//!   as snappy-compressed `prometheus.WriteRequest` bodies batched the way Prometheus sends
//!   them. Criterion benches take their request bodies from [`workload::requests`].
//! * [`replay`]: sends bodies to any remote-write receiver over concurrent keep-alive
//!   connections, with Prometheus' retry behaviour, and counts what was acknowledged.
//! * [`process`]: CPU seconds and peak RSS of the receiver under test, from `/proc`.
//! * [`otlp`]: deterministic, realistic OpenTelemetry Collector traffic (metrics and logs from
//!   many clusters), pre-encoded, and its replay over OTLP/HTTP and OTLP/gRPC with every
//!   `partial_success` checked (`tributary-loadgen otlp`, driven by `benches/compare/otlp.sh`).
//! * [`query`]: the query-latency benchmark (`tributary-loadgen query run|report`): a fixed
//!   set of Grafana/SLO queries timed against each receiver, answers compared across them.
//!
//! * [`fairness`]: steady well-behaved clusters beside a misbehaving one
//!   (`tributary-loadgen fairness`, driven by `benches/compare/fairness.sh`).
//! * [`soak`]: the same clusters, also pushing logs and retrying until acknowledged, with a
//!   ledger of what was acknowledged (`tributary-loadgen soak`, driven by
//!   `benches/compare/soak.sh`, which kills and restarts the server meanwhile).
//!
//! The `tributary-loadgen` binary ties them together; `benches/compare/run.sh` uses it to
//! compare Tributary with Prometheus and VictoriaMetrics, `benches/compare/query.sh` to compare
//! their query latency.

mod error;
pub mod fairness;
pub mod otlp;
pub mod process;
pub mod query;
pub mod replay;
pub mod soak;
pub mod workload;

pub use error::Error;
