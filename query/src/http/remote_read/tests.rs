//! Remote-read through the router: both answer types, matchers on `cluster`, read scopes and the
//! sample limit.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use tributary_proto::prometheus::read::{
    ChunkEncoding, ChunkedReadResponse, LabelMatcher, MatcherType, Query, ReadRequest, ReadResponse, ResponseType,
};
use tributary_proto::prost::Message;
use tributary_storage::auth::{Auth, AuthConfig, TokenEntry};
use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{Sample, Series};

use super::STREAMED_CONTENT_TYPE;
use crate::config::QueryConfig;
use crate::http::router;
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};
use tributary_storage::xor_chunk::XorChunk;

/// `up` in clusters a and b (300 samples each, so a streamed series takes three chunks) and
/// `down` in a.
fn app(auth: Auth) -> Router {
    let up = |cluster: &str, v: f64| {
        Series::new(
            parse_labels(&format!(r#"up{{cluster="{cluster}",job="j"}}"#)),
            (0..300).map(|i| Sample::new(i * 1_000, v + i as f64)).collect(),
        )
    };
    let series = vec![
        up("b", 1000.0),
        up("a", 0.0),
        Series::new(parse_labels(r#"down{cluster="a"}"#), vec![Sample::new(5_000, 7.0)]),
    ];
    router(
        Arc::new(Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default())),
        auth,
    )
}

fn eq(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: MatcherType::Eq as i32,
        name: name.into(),
        value: value.into(),
    }
}

fn re(name: &str, value: &str) -> LabelMatcher {
    LabelMatcher {
        r#type: MatcherType::Re as i32,
        name: name.into(),
        value: value.into(),
    }
}

fn query(start: i64, end: i64, matchers: Vec<LabelMatcher>) -> Query {
    Query {
        start_timestamp_ms: start,
        end_timestamp_ms: end,
        matchers,
        hints: None,
    }
}

fn request(queries: Vec<Query>, types: &[ResponseType], token: Option<&str>) -> Request<Body> {
    let body = ReadRequest {
        queries,
        accepted_response_types: types.iter().map(|t| *t as i32).collect(),
    }
    .encode_to_vec();
    let mut req = Request::post("/api/v1/read")
        .header(CONTENT_TYPE, "application/x-protobuf")
        .header(CONTENT_ENCODING, "snappy");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    req.body(Body::from(snap::raw::Encoder::new().compress_vec(&body).unwrap()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec();
    (status, headers, body)
}

/// A series of a sampled answer: its cluster and `(timestamp, value)` samples.
type ClusterSamples = (String, Vec<(i64, f64)>);

/// Each result's series.
fn sampled(body: &[u8]) -> Vec<Vec<ClusterSamples>> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    ReadResponse::decode(raw.as_slice())
        .unwrap()
        .results
        .into_iter()
        .map(|r| {
            r.timeseries
                .into_iter()
                .map(|ts| {
                    let cluster = ts.labels.iter().find(|l| l.name == "cluster").unwrap().value.clone();
                    (cluster, ts.samples.iter().map(|s| (s.timestamp, s.value)).collect())
                })
                .collect()
        })
        .collect()
}

/// The frames of a streamed answer, each checked against its CRC.
fn frames(mut body: &[u8]) -> Vec<ChunkedReadResponse> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (mut len, mut shift, mut used) = (0usize, 0, 0);
        loop {
            let b = body[used];
            used += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        let crc = u32::from_be_bytes(body[used..used + 4].try_into().unwrap());
        let message = &body[used + 4..used + 4 + len];
        assert_eq!(crc32c::crc32c(message), crc, "frame checksum");
        out.push(ChunkedReadResponse::decode(message).unwrap());
        body = &body[used + 4 + len..];
    }
    out
}

#[tokio::test]
async fn sampled_answer_per_query_with_cluster_matchers() {
    let app = app(Auth::default());
    let queries = vec![
        query(10_000, 12_000, vec![eq("__name__", "up"), eq("cluster", "b")]),
        query(0, 300_000, vec![re("__name__", "up|down"), eq("cluster", "a")]),
        query(0, 1_000, vec![eq("__name__", "nothing")]),
    ];
    // No accepted types: samples, as Prometheus's server answers.
    let (status, headers, body) = send(&app, request(queries, &[], None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "application/x-protobuf");
    assert_eq!(headers[CONTENT_ENCODING], "snappy");
    let results = sampled(&body);
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0],
        vec![(
            "b".to_string(),
            vec![(10_000, 1010.0), (11_000, 1011.0), (12_000, 1012.0)]
        )]
    );
    // Sorted by labels: `down` before `up`.
    assert_eq!(results[1].len(), 2);
    assert_eq!(results[1][0].1, vec![(5_000, 7.0)]);
    assert_eq!(results[1][1].1.len(), 300);
    assert!(results[2].is_empty());
}

#[tokio::test]
async fn streamed_answer_carries_xor_chunks_of_at_most_120_samples() {
    let app = app(Auth::default());
    let queries = vec![
        query(0, 300_000, vec![eq("__name__", "up")]),
        query(0, 300_000, vec![eq("__name__", "down")]),
    ];
    let types = [ResponseType::StreamedXorChunks, ResponseType::Samples];
    let (status, headers, body) = send(&app, request(queries, &types, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], STREAMED_CONTENT_TYPE);
    let frames = frames(&body);
    assert_eq!(frames.iter().map(|f| f.query_index).collect::<Vec<_>>(), [0, 1]);
    let up = &frames[0].chunked_series;
    assert_eq!(up.len(), 2);
    assert_eq!(
        up[0].labels[1],
        tributary_proto::prometheus::Label {
            name: "cluster".into(),
            value: "a".into()
        },
        "sorted by labels: cluster a first"
    );
    let chunks = &up[1].chunks;
    assert_eq!(
        chunks
            .iter()
            .map(|c| (c.min_time_ms, c.max_time_ms))
            .collect::<Vec<_>>(),
        [(0, 119_000), (120_000, 239_000), (240_000, 299_000)]
    );
    // Each chunk is exactly the encoding of its samples.
    for (chunk, first) in chunks.iter().zip([0i64, 120, 240]) {
        assert_eq!(chunk.r#type, ChunkEncoding::Xor as i32);
        let mut expected = XorChunk::new();
        for i in first..(first + 120).min(300) {
            expected.push(i * 1_000, 1000.0 + i as f64);
        }
        assert_eq!(chunk.data, expected.into_bytes());
    }
    assert_eq!(frames[1].chunked_series[0].chunks.len(), 1);
}

#[tokio::test]
async fn read_scopes_and_sample_limits_apply() {
    let token = |token: &str, read: &str, max_samples: Option<usize>| TokenEntry {
        token: Some(token.into()),
        read: Some(ClusterScope::new(vec![read.into()])),
        max_samples,
        ..TokenEntry::default()
    };
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![token("only-a", "a", None), token("small", "*", Some(100))],
        ..AuthConfig::default()
    })
    .unwrap();
    let app = app(auth);
    let all_up = || vec![query(0, 300_000, vec![eq("__name__", "up"), re("cluster", ".*")])];

    let (status, _, body) = send(&app, request(all_up(), &[], Some("only-a"))).await;
    assert_eq!(status, StatusCode::OK);
    let results = sampled(&body);
    assert_eq!(results[0].iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["a"]);

    let (status, _, body) = send(
        &app,
        request(all_up(), &[ResponseType::StreamedXorChunks], Some("only-a")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(frames(&body)[0].chunked_series.len(), 1);

    let (status, _, body) = send(&app, request(all_up(), &[], Some("small"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("max_samples = 100"), "{v}");

    let (status, _, _) = send(&app, request(all_up(), &[], None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_requests_are_bad_data() {
    let app = app(Auth::default());
    let raw = |body: Vec<u8>| Request::post("/api/v1/read").body(Body::from(body)).unwrap();
    for req in [
        raw(b"not snappy at all".to_vec()),
        raw(snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff]).unwrap()),
        request(vec![query(10, 5, vec![])], &[], None),
        request(vec![query(0, 5, vec![re("job", "(")])], &[], None),
    ] {
        let (status, _, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data");
    }
}
