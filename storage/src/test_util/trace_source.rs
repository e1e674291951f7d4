//! The reference [`TraceSource`] ([`MemTraceSource`]) and the conformance suite every trace source
//! must pass ([`trace_source_conformance`]).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::read::{SpanFilter, SpanRequest, TraceSource, sort_spans};
use crate::signals::{Span, TraceId};
use crate::types::{MatchOp, Matcher};

/// The reference trace source: spans in a vector, filtered by [`SpanRequest::admits`].
#[derive(Debug, Default, Clone)]
pub struct MemTraceSource {
    spans: Vec<Span>,
}

impl MemTraceSource {
    /// A source holding `spans` (copies allowed).
    pub fn new(spans: Vec<Span>) -> Self {
        Self { spans }
    }
}

#[async_trait]
impl TraceSource for MemTraceSource {
    async fn select_spans(&self, req: &SpanRequest) -> Result<Vec<Span>> {
        let mut out: Vec<Span> = self.spans.iter().filter(|s| req.admits(s)).cloned().collect();
        sort_spans(&mut out);
        req.check_count(out.len())?;
        Ok(out)
    }
}

/// Nanoseconds in an hour.
const HOUR_NS: i64 = 3_600_000_000_000;
/// 2026-11-30T00:00:00Z, where the suite's spans start.
pub const SUITE_START_NS: i64 = 1_764_460_800_000_000_000;

/// A trace id whose bytes are `n` (big-endian) in its last 8 bytes.
pub fn trace_id(n: u64) -> TraceId {
    let mut id = [0u8; 16];
    id[0] = 0x5a;
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// The suite's spans: 3 clusters, 2 services, 40 traces of 1-4 spans over 3 hours (some
/// crossing an hour), every field set on some span; plus an exact copy of one span and a
/// look-alike of another (same ids and start, another status).
pub fn suite_spans() -> Vec<Span> {
    let mut spans = Vec::new();
    for t in 0..40u64 {
        let cluster = ["prod-eu", "prod-us", "dev"][t as usize % 3];
        let service = ["checkout", "cart"][t as usize % 2];
        let start = SUITE_START_NS + (t as i64) * HOUR_NS * 3 / 40 + 1_000;
        let mut parent = [0u8; 8];
        for s in 0..(1 + t % 4) {
            let span_id = ((t << 8) | (s + 1)).to_be_bytes();
            spans.push(Span {
                trace_id: trace_id(t),
                span_id,
                start: start + (s as i64) * 1_000_000,
                cluster: cluster.to_string(),
                parent_span_id: parent,
                trace_state: if s == 0 { "k=v".into() } else { String::new() },
                name: format!("GET /api/{}", s),
                kind: (s % 6) as i32,
                duration: 1_000_000 * (1 + (t as i64 % 7)) * (4 - s as i64),
                status_code: (t % 3) as i32,
                status_message: if t % 3 == 2 { "boom".into() } else { String::new() },
                service_name: service.to_string(),
                http_method: "GET".into(),
                http_route: format!("/api/{s}"),
                http_status_code: if t % 3 == 2 { 503 } else { 200 },
                flags: 1,
                scope_name: "io.opentelemetry.test".into(),
                scope_version: "1.0".into(),
                attributes: format!(r#"{{"http.route":"/api/{s}","n":{t}}}"#),
                resource_attributes: format!(r#"{{"service.name":"{service}","k8s.cluster.name":"{cluster}"}}"#),
                events: if s == 0 {
                    format!(r#"[{{"time_unix_nano":{start},"name":"ev","attributes":{{}}}}]"#)
                } else {
                    "[]".into()
                },
                links: "[]".into(),
            });
            parent = span_id;
        }
    }
    let copy = spans[5].clone();
    spans.push(copy);
    let mut look_alike = spans[9].clone();
    look_alike.status_code = 2;
    spans.push(look_alike);
    spans
}

/// Checks a [`TraceSource`] built by `make` from [`suite_spans`] against [`MemTraceSource`] on
/// lookups by id (present, absent, outside the range), time ranges cutting traces, matchers on
/// `cluster` and `service_name` (equality, regex, negation), the duration floor, a filter and
/// the request's span limit.
pub async fn trace_source_conformance<F, Fut>(make: F)
where
    F: FnOnce(Vec<Span>) -> Fut,
    Fut: Future<Output = Arc<dyn TraceSource>>,
{
    let spans = suite_spans();
    let reference = MemTraceSource::new(spans.clone());
    let source = make(spans).await;
    let all = SpanRequest::range(SUITE_START_NS - HOUR_NS, SUITE_START_NS + 4 * HOUR_NS);
    let mut cases: Vec<(&str, SpanRequest)> = vec![("everything", all.clone())];
    for (what, t) in [
        ("a 1-span trace", 0),
        ("a 4-span trace", 3),
        ("the copied span's trace", 2),
        ("absent", 999),
    ] {
        cases.push((
            what,
            SpanRequest {
                trace_id: Some(trace_id(t)),
                ..all.clone()
            },
        ));
    }
    cases.push((
        "a trace outside the range",
        SpanRequest {
            trace_id: Some(trace_id(39)),
            ..SpanRequest::range(SUITE_START_NS, SUITE_START_NS + HOUR_NS)
        },
    ));
    cases.push((
        "the second hour, cutting traces",
        SpanRequest::range(
            SUITE_START_NS + HOUR_NS + 1_500,
            SUITE_START_NS + 2 * HOUR_NS + 2_000_000,
        ),
    ));
    cases.push((
        "an empty range",
        SpanRequest::range(SUITE_START_NS + HOUR_NS, SUITE_START_NS + HOUR_NS),
    ));
    let matcher = |name: &str, op: MatchOp, value: &str| Matcher::new(op, name, value).expect("valid matcher");
    for (what, matchers) in [
        ("cluster equality", vec![matcher("cluster", MatchOp::Equal, "prod-eu")]),
        (
            "cluster regex",
            vec![matcher("cluster", MatchOp::RegexMatch, "prod-.*")],
        ),
        ("cluster negation", vec![matcher("cluster", MatchOp::NotEqual, "dev")]),
        (
            "cluster and service",
            vec![
                matcher("cluster", MatchOp::RegexMatch, "prod-.*"),
                matcher("service_name", MatchOp::Equal, "cart"),
            ],
        ),
        ("no such cluster", vec![matcher("cluster", MatchOp::Equal, "nowhere")]),
    ] {
        cases.push((
            what,
            SpanRequest {
                matchers,
                ..all.clone()
            },
        ));
    }
    cases.push((
        "a filter: errors of cart",
        SpanRequest {
            filter: Some(SpanFilter(Arc::new(|s: &Span| {
                s.status_code == 2 && s.service_name == "cart"
            }))),
            ..all.clone()
        },
    ));
    cases.push((
        "at least 9 ms",
        SpanRequest {
            min_duration: 9_000_000,
            ..all.clone()
        },
    ));
    for (what, req) in cases {
        let want = reference.select_spans(&req).await.expect("reference answers");
        let got = source
            .select_spans(&req)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got.len(), want.len(), "{what}: span count");
        assert!(got == want, "{what}: spans differ");
    }
    // The copy is returned once; the look-alike beside its original.
    let everything = reference.select_spans(&all).await.expect("reference answers");
    assert_eq!(
        everything.len(),
        suite_spans().len() - 1,
        "the suite's copy deduplicates"
    );
    // The request's limit: an answer of exactly the limit is given (copies counting once), one
    // over it refused; with a filter, the limit bounds what matches, not what was read.
    let n = everything.len();
    let limited = |limit: usize, req: &SpanRequest| SpanRequest {
        limit: Some(limit),
        ..req.clone()
    };
    let got = source
        .select_spans(&limited(n, &all))
        .await
        .expect("an answer at the limit");
    assert_eq!(got.len(), n, "an answer of exactly the limit");
    let over = source.select_spans(&limited(n - 1, &all)).await;
    assert!(
        matches!(over, Err(crate::Error::TooManySamples { limit }) if limit == n - 1),
        "one span over the limit: {over:?}"
    );
    let errors = SpanRequest {
        filter: Some(SpanFilter(Arc::new(|s: &Span| s.status_code == 2))),
        ..all.clone()
    };
    let matching = reference.select_spans(&errors).await.expect("reference answers").len();
    assert!(matching < n - 1);
    let got = source
        .select_spans(&limited(matching, &errors))
        .await
        .expect("a filtered answer within the limit");
    assert_eq!(got.len(), matching, "the limit counts matches");
}
