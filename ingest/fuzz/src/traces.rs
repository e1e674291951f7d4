//! What must hold for every OTLP traces request and Zipkin body (`fuzz_targets/traces.rs`):
//! - accepted + refused = spans sent, a reason exactly when something was refused;
//! - every span has non-zero ids, a start, a non-negative duration, a kind in 0..=5 and a status
//!   in 0..=2, the cluster the cluster rule gives (the token's, else the span's own or the
//!   header's; never empty), JSON attributes (objects) and events and links (arrays);
//! - at most the attribute limit per span;
//! - determinism and the WAL: the OTLP request survives `to_wal_body`/`from_wal_body` and
//!   translates to the same spans; a Zipkin body translates the same twice.

use tributary_ingest::cluster::ClusterContext;
use tributary_ingest::decode::Rejections;
use tributary_ingest::decode::otlp::traces;
use tributary_ingest::decode::zipkin;
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tributary_storage::signals::Span;

use crate::otlp::{TOKEN, verbose, wal_round_trip};

/// Most attributes per span the checks translate with.
const MAX_ATTRIBUTES: usize = 16;

fn check_spans(what: &str, spans: &[Span], rejected: &Rejections, sent: Option<u64>, ctx: &ClusterContext) {
    if let Some(sent) = sent {
        assert_eq!(spans.len() as u64 + rejected.spans, sent, "{what}: accepted + refused = sent");
    }
    assert_eq!(rejected.spans > 0, !rejected.reasons.is_empty(), "{what}: a reason exactly when refused");
    for s in spans {
        assert_ne!(s.trace_id, [0; 16], "{what}: zero trace id");
        assert_ne!(s.span_id, [0; 8], "{what}: zero span id");
        assert!(s.start > 0 || sent.is_none(), "{what}: no start");
        assert!(s.duration >= 0, "{what}: negative duration");
        assert!((0..=5).contains(&s.kind) && (0..=2).contains(&s.status_code), "{what}: {s:?}");
        assert!(!s.cluster.is_empty(), "{what}: no cluster");
        if ctx.token_cluster.is_some() {
            assert_eq!(s.cluster, TOKEN, "{what}: the token's cluster wins");
        }
        for (name, json, object) in [
            ("attributes", &s.attributes, true),
            ("resource_attributes", &s.resource_attributes, true),
            ("events", &s.events, false),
            ("links", &s.links, false),
        ] {
            let v: serde_json::Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {name} is not JSON ({e}): {json}"));
            assert!(if object { v.is_object() } else { v.is_array() }, "{what}: {name} shape: {json}");
        }
    }
}

/// Checks one parsed OTLP traces request under `ctx`.
pub fn check_traces(how: &str, req: &ExportTraceServiceRequest, ctx: &ClusterContext) {
    let sent: u64 = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum();
    let (spans, rejected) = traces::translate(req, ctx, MAX_ATTRIBUTES);
    if verbose() {
        eprintln!("{how} traces, {ctx:?}: {} spans, {} refused; {:?}", spans.len(), rejected.spans, rejected.reasons);
    }
    check_spans(how, &spans, &rejected, Some(sent), ctx);
    let back = wal_round_trip(req);
    let (again, _) = traces::translate(&back, ctx, MAX_ATTRIBUTES);
    assert!(spans == again, "{how}: translating the same request twice (through the WAL) differs");
}

/// Checks `data` as a Zipkin v2 JSON body under `ctx`.
pub fn check_zipkin(data: &[u8], ctx: &ClusterContext) {
    let Ok((spans, rejected)) = zipkin::translate(data, ctx, MAX_ATTRIBUTES) else {
        return;
    };
    let sent = serde_json::from_slice::<Vec<serde_json::Value>>(data).map(|v| v.len() as u64).ok();
    assert!(sent.is_some(), "a body that is not a JSON array was translated");
    check_spans("zipkin", &spans, &rejected, sent, ctx);
    let (again, _) = zipkin::translate(data, ctx, MAX_ATTRIBUTES).expect("translated once");
    assert!(spans == again, "zipkin: translating the same body twice differs");
}
