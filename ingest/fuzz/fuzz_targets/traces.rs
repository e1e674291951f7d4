//! OTLP traces (`ExportTraceServiceRequest`, as OTLP/HTTP protobuf and JSON, plain and gzip) and
//! Zipkin v2 JSON bodies: the translations in `decode::otlp::traces` and `decode::zipkin`, each
//! under a token's cluster and without a token (with the header cluster, or none when the
//! input's last byte is odd). Held to `tributary_ingest_fuzz::traces`'s checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest_fuzz::otlp::{contexts, requests};
use tributary_ingest_fuzz::traces::{check_traces, check_zipkin};
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    let [token, no_token] = contexts(data);
    for (how, req) in requests::<ExportTraceServiceRequest>(data) {
        check_traces(how, &req, &token);
        check_traces(how, &req, &no_token);
    }
    check_zipkin(data, &token);
    check_zipkin(data, &no_token);
});
