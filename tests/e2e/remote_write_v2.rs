//! Remote-write 2.0 over real HTTP: negotiated by content type, answered with the written-count
//! headers, float samples queryable, metadata and exemplars served by the Prometheus API, native
//! histograms stored, and all of it back after `kill -9`.

use prost::Message;
use serde_json::Value;
use tributary_proto::prometheus::histogram::{Count, ZeroCount};
use tributary_proto::prometheus::v2::{Exemplar, Metadata, Request, TimeSeries};
use tributary_proto::prometheus::{BucketSpan, Histogram, MetricType, Sample};
use tributary_storage::read::SelectRequest;
use tributary_storage::types::{Matcher, TimeRange};

use crate::harness::{TestServer, result};

const T0: i64 = 1_795_269_600_000; // 2026-11-21T14:00:00Z, ms
const RW2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

fn request() -> Request {
    // Symbol 0 is always "".
    let symbols: Vec<String> = [
        "",
        "__name__",
        "rw2_requests_total",
        "cluster",
        "west",
        "job",
        "api",
        "Requests served.",
        "trace_id",
        "abc123",
        "rw2_latency_seconds",
        "Latency.",
        "seconds",
    ]
    .map(String::from)
    .to_vec();
    Request {
        symbols,
        timeseries: vec![
            TimeSeries {
                labels_refs: vec![1, 2, 3, 4, 5, 6],
                samples: vec![
                    Sample {
                        value: 5.0,
                        timestamp: T0,
                    },
                    Sample {
                        value: 9.0,
                        timestamp: T0 + 15_000,
                    },
                ],
                exemplars: vec![Exemplar {
                    labels_refs: vec![8, 9],
                    value: 0.25,
                    timestamp: T0 + 15_000,
                }],
                metadata: Some(Metadata {
                    r#type: MetricType::Counter as i32,
                    help_ref: 7,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            TimeSeries {
                labels_refs: vec![1, 10, 3, 4, 5, 6],
                histograms: vec![Histogram {
                    count: Some(Count::CountInt(6)),
                    sum: 1.5,
                    schema: 0,
                    zero_threshold: 1e-128,
                    zero_count: Some(ZeroCount::ZeroCountInt(1)),
                    positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
                    positive_deltas: vec![2, 1], // absolute 2, 3
                    timestamp: T0,
                    ..Default::default()
                }],
                metadata: Some(Metadata {
                    r#type: MetricType::Histogram as i32,
                    help_ref: 11,
                    unit_ref: 12,
                }),
                ..Default::default()
            },
        ],
    }
}

#[tokio::test]
async fn remote_write_2_is_negotiated_stored_and_served() {
    let mut s = TestServer::start().await;
    let body = snap::raw::Encoder::new()
        .compress_vec(&request().encode_to_vec())
        .unwrap();
    let r = reqwest::Client::new()
        .post(s.url("/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", RW2)
        .header("X-Prometheus-Remote-Write-Version", "2.0.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(h("x-prometheus-remote-write-samples-written").as_deref(), Some("2"));
    assert_eq!(h("x-prometheus-remote-write-histograms-written").as_deref(), Some("1"));
    assert_eq!(h("x-prometheus-remote-write-exemplars-written").as_deref(), Some("1"));

    // Everything acknowledged survives kill -9 (the WAL record is replayed by the same decoder).
    s.kill9();
    s.spawn().await;

    let at = (T0 + 15_000) as f64 / 1000.0;
    let v = s.query("rw2_requests_total{cluster=\"west\",job=\"api\"}", at).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert_eq!(result(&v)[0]["value"][1], "9", "{v}");

    let meta: Value = reqwest::get(s.url("/api/v1/metadata"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["data"]["rw2_requests_total"][0],
        serde_json::json!({"type": "counter", "help": "Requests served.", "unit": ""}),
        "{meta}"
    );
    assert_eq!(
        meta["data"]["rw2_latency_seconds"][0],
        serde_json::json!({"type": "histogram", "help": "Latency.", "unit": "seconds"}),
        "{meta}"
    );

    let ex: Value = reqwest::get(s.url(&format!(
        "/api/v1/query_exemplars?query=rw2_requests_total&start={}&end={}",
        T0 / 1000 - 60,
        T0 / 1000 + 60
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let data = ex["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{ex}");
    assert_eq!(data[0]["seriesLabels"]["cluster"], "west", "{ex}");
    assert_eq!(data[0]["exemplars"][0]["labels"]["trace_id"], "abc123", "{ex}");
    assert_eq!(data[0]["exemplars"][0]["value"], "0.25", "{ex}");

    // PromQL evaluates the native histogram, whether its samples sit in the head or (below) in
    // Parquet, and answers it in Prometheus's `histogram` shape.
    assert_native_histograms_answered(&s).await;

    // The native histogram reaches its Parquet table with absolute bucket counts.
    s.flush().await;
    assert_native_histograms_answered(&s).await;
    let storage = tributary_storage::Storage::open(&Default::default(), &s.data_dir)
        .await
        .unwrap();
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "rw2_latency_seconds")], TimeRange::ALL);
    let hs = storage.source().select_histograms(&req).await.unwrap();
    assert_eq!(hs.len(), 1, "{hs:?}");
    let h0 = &hs[0].samples[0];
    assert_eq!((h0.count, h0.sum, h0.zero_count), (6.0, 1.5, 1.0));
    assert_eq!(h0.positive_buckets, vec![2.0, 3.0]);
    assert_eq!(hs[0].labels.get("cluster"), Some("west"));
}

/// `histogram_count` of the native histogram is its count; the selector answers the histogram
/// itself as Prometheus encodes it (`histogram`: count, sum, non-empty buckets with their
/// boundary rule: 3 for the closed zero bucket, 0 for positive buckets).
async fn assert_native_histograms_answered(s: &TestServer) {
    let query = |q: &'static str| async move {
        let r = reqwest::Client::new()
            .get(s.url("/api/v1/query"))
            .query(&[("query", q), ("time", &(T0 / 1000 + 30).to_string())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{q}");
        r.json::<Value>().await.unwrap()
    };
    let count = query("histogram_count(rw2_latency_seconds)").await;
    assert_eq!(count["data"]["result"][0]["value"][1], "6", "{count}");
    let raw = query("rw2_latency_seconds").await;
    let h = &raw["data"]["result"][0]["histogram"];
    assert_eq!(h[0], T0 / 1000 + 30, "{raw}");
    assert_eq!(
        h[1],
        serde_json::json!({
            "count": "6",
            "sum": "1.5",
            "buckets": [[3, "-1e-128", "1e-128", "1"], [0, "0.5", "1", "2"], [0, "1", "2", "3"]]
        }),
        "{raw}"
    );
}
