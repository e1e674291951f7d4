//! Load generator for remote-write ingest benchmarks.
//!
//! * [`workload`]: deterministic, realistic multi-cluster Kubernetes remote-write traffic,
//!   as snappy-compressed `prometheus.WriteRequest` bodies batched the way Prometheus sends
//!   them. Criterion benches take their request bodies from [`workload::requests`].
//! * [`replay`]: sends bodies to any remote-write receiver over concurrent keep-alive
//!   connections, with Prometheus' retry behaviour, and counts what was acknowledged.
//! * [`process`]: CPU seconds and peak RSS of the receiver under test, from `/proc`.
//!
//! The `tributary-loadgen` binary ties them together; `benches/compare/run.sh` uses it to
//! compare Tributary with Prometheus and VictoriaMetrics.

mod error;
pub mod process;
pub mod replay;
pub mod workload;

pub use error::Error;
