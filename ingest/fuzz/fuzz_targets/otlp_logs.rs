//! OTLP logs (`ExportLogsServiceRequest`), as they arrive over OTLP/HTTP or gRPC: the body parse
//! in `decode::otlp` and the translation in `decode::otlp_logs`.
//!
//! Every input is used as an OTLP/HTTP body four ways: protobuf and OTLP/JSON, each as sent and
//! gunzipped under a 2 KiB limit (`otlp::gunzip`; the limit is also checked on the harness's own
//! gzip of the input, one member and two). Each request that parses is translated under a token's
//! cluster and without a token (with the header cluster, or with none at all when the input's last
//! byte is odd), with small limits (16 attributes, 256-byte bodies) and stream attributes that
//! include names the cluster rule owns. Held to `tributary_ingest_fuzz::otlp`'s checks:
//! - accepted + rejected = log records sent, a reason exactly when something was refused;
//! - the records are translations of request records, in request order: times (observed time
//!   when unset), severity, flags, event name, scope, string bodies, lower-case hex trace (32) and
//!   span (16) ids, and `attributes`/`resource_attributes` JSON objects with exactly the keys
//!   sent; within the attribute and body limits;
//! - stream labels sorted, unique, valid and non-empty, with a `cluster` that follows the cluster
//!   rule (the token's; else the resource's `k8s.cluster.name` or the header's), and
//!   `exported_cluster` only beside a token;
//! - determinism and the WAL: the request survives `to_wal_body`/`from_wal_body` unchanged and
//!   translates to the same records; replay (limits unbounded) keeps every record stored live.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest_fuzz::otlp::{check_logs, contexts, requests};
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;

fuzz_target!(|data: &[u8]| {
    let [token, no_token] = contexts(data);
    for (how, req) in requests::<ExportLogsServiceRequest>(data) {
        check_logs(how, &req, &token);
        check_logs(how, &req, &no_token);
    }
});
