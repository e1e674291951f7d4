//! End-to-end tests: the real `tributary` binary, real HTTP, real Prometheus.

mod architecture;
mod auth;
mod crash_recovery;
mod fault_proxy;
mod grafana_calls;
mod ha_pairs;
mod harness;
mod hostile_queries;
mod ingest_limits;
mod kubernetes;
mod loki;
mod loki_tail;
mod object_store;
mod object_store_faults;
mod otlp;
mod prometheus_parity;
mod promql_conformance;
mod query_deadlines;
mod remote_write;
mod remote_write_v2;
mod roles;
mod signals_recovery;
mod split;
mod storage_lifecycle;
mod tls;
mod token_limits;
