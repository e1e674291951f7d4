//! OTLP in, end to end: the real OpenTelemetry Python SDK (`tests/e2e/python/otlp_client.py`)
//! sends metrics and logs over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON, on the gRPC
//! port, the dedicated OTLP/HTTP port and the main HTTP port. PromQL reads the metrics back with
//! Prometheus's names and labels; pyarrow reads the stored Parquet logs back and every field is
//! compared with what the SDK sent. Bad inputs over HTTP and gRPC each get the status the OTLP
//! specification gives them, never a retryable one, and the valid data beside them is kept.
//!
//! The SDK's round trips are in `sdk`; hand-built requests (cluster identity, missing clusters,
//! bad inputs over HTTP and gRPC) in `requests`.

mod bodies;
mod requests;
mod sdk;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub(super) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

pub(super) fn now_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos()).expect("ns")
}

/// A result's labels.
pub(super) fn labels_of(r: &Value) -> BTreeMap<String, String> {
    r["metric"]
        .as_object()
        .unwrap_or_else(|| panic!("no metric in {r}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

pub(super) fn value_of(r: &Value) -> &str {
    r["value"][1].as_str().unwrap_or_else(|| panic!("no value in {r}"))
}
