//! OTLP metrics (`ExportMetricsServiceRequest`), as they arrive over OTLP/HTTP or gRPC: the body
//! parse in `decode::otlp` and the translation in `decode::otlp_metrics`.
//!
//! Every input is used as an OTLP/HTTP body four ways: protobuf and OTLP/JSON, each as sent and
//! gunzipped under a 2 KiB limit (`otlp::gunzip`; the limit is also checked on the harness's own
//! gzip of the input, one member and two). Each request that parses is translated twice, under a
//! token's cluster (unit and type suffixes on, the default) and without a token (suffixes off;
//! with the header cluster, or with none at all when the input's last byte is odd), with small
//! label limits (`OTLP_LIMITS`: 12 labels, 32-byte names, 40-byte values). Held to `tributary_ingest_fuzz::otlp`'s checks:
//! - points seen = points in the request, accepted + rejected = seen, a reason for every refusal,
//!   no output without an accepted point and some output with one;
//! - series and native histograms sorted and unique, label names valid, sorted and unique, values
//!   non-empty and within the limits, a valid `__name__`, a `cluster` that follows the cluster rule
//!   (the token's; else a resource's `k8s.cluster.name` or the header's); samples sorted, unique
//!   and storable; histogram samples valid;
//! - exemplars only on stored series, with valid labels and hex ids; metadata only for stored
//!   families and clusters;
//! - determinism and the WAL: the request survives `to_wal_body`/`from_wal_body` (under replay's
//!   bound) unchanged and translates to the same result bit for bit; replay (limits unbounded)
//!   keeps every series and sample stored live and refuses no more.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_ingest_fuzz::otlp::{check_metrics, contexts, requests};
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;

fuzz_target!(|data: &[u8]| {
    let [token, no_token] = contexts(data);
    for (how, req) in requests::<ExportMetricsServiceRequest>(data) {
        check_metrics(how, &req, &token, true);
        check_metrics(how, &req, &no_token, false);
    }
});
