//! Nothing acknowledged is lost, for every protocol: OTLP metrics and logs (protobuf and JSON)
//! acknowledged over HTTP survive `kill -9`, come back from the WAL with the same names, labels
//! and values, and reach Parquet on the next flush.

use prost::Message;
use serde_json::Value;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use tributary_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tributary_proto::otlp::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::table::logs::LogSelect;

use crate::harness::{TestServer, result};

const T0_NS: u64 = 1_795_269_600_000_000_000; // 2026-11-21T14:00:00Z

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn resource(cluster: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            kv("service.name", "checkout"),
            kv("service.instance.id", "pod-1"),
            kv("k8s.cluster.name", cluster),
        ],
        ..Default::default()
    })
}

fn point(t_ns: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: t_ns,
        start_time_unix_nano: T0_NS - 60_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        attributes: vec![kv("route", "/pay")],
        ..Default::default()
    }
}

fn metrics_request(cluster: &str, round: u64) -> ExportMetricsServiceRequest {
    let t = T0_NS + round * 15_000_000_000;
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(cluster),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "queue.depth".into(),
                        unit: "{items}".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![point(t, round as f64)],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.server.requests".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![point(t, 10.0 * round as f64)],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_request(cluster: &str, round: u64) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(cluster),
            scope_logs: vec![ScopeLogs {
                log_records: (0..3)
                    .map(|i| LogRecord {
                        time_unix_nano: T0_NS + round * 1_000_000_000 + i,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("round {round} line {i}"))),
                        }),
                        attributes: vec![kv("order", &format!("{round}-{i}"))],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn acknowledged_otlp_metrics_and_logs_survive_kill_9() {
    let mut s = TestServer::start_with(&["--grpc-listen", "", "--otlp-http-listen", ""]).await;
    const ROUNDS: u64 = 10;
    for round in 0..ROUNDS {
        // Alternate encodings: both must come back from the WAL identically.
        let (ct, mbody, lbody) = if round % 2 == 0 {
            (
                "application/x-protobuf",
                metrics_request("east", round).encode_to_vec(),
                logs_request("east", round).encode_to_vec(),
            )
        } else {
            (
                "application/json",
                serde_json::to_vec(&metrics_request("east", round)).unwrap(),
                serde_json::to_vec(&logs_request("east", round)).unwrap(),
            )
        };
        let (st, body) = post(&s.url("/v1/metrics"), ct, mbody).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        let (st, body) = post(&s.url("/v1/logs"), ct, lbody).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }

    s.kill9();
    s.spawn().await;

    let last = (T0_NS + (ROUNDS - 1) * 15_000_000_000) as f64 / 1e9;
    let v = s
        .query_range(
            "queue_depth{cluster=\"east\",job=\"checkout\",instance=\"pod-1\",route=\"/pay\"}",
            T0_NS as f64 / 1e9,
            last,
            15.0,
        )
        .await;
    let series = result(&v);
    assert_eq!(series.len(), 1, "{v}");
    let values: Vec<&str> = series[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..ROUNDS).map(|r| r.to_string()).collect();
    assert_eq!(values, want, "{v}");
    let v = s.query("http_server_requests_total{cluster=\"east\"}", last).await;
    assert_eq!(result(&v)[0]["value"][1], Value::from("90"), "{v}");

    // The recovered data reaches Parquet, logs included.
    let flushed = s.flush().await;
    assert!(flushed["log_records"].as_u64().unwrap() >= ROUNDS * 3, "{flushed}");
    let storage = Storage::open(&StorageConfig::default(), &s.data_dir).await.unwrap();
    let logs = storage
        .read_logs(&LogSelect {
            matchers: vec![tributary_storage::types::Matcher::equal("cluster", "east")],
            start_ns: T0_NS as i64,
            end_ns: (T0_NS + 3600 * 1_000_000_000) as i64,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(logs.len() as u64, ROUNDS * 3);
    let mut bodies: Vec<&str> = logs.iter().map(|r| r.body.as_str()).collect();
    bodies.sort_unstable();
    let mut want: Vec<String> = (0..ROUNDS)
        .flat_map(|r| (0..3).map(move |i| format!("round {r} line {i}")))
        .collect();
    want.sort_unstable();
    assert_eq!(bodies, want);
    assert!(logs.iter().all(|r| r.labels.get("service_name") == Some("checkout")));
    assert!(logs.iter().all(|r| r.severity_text == "INFO" && r.severity_number == 9));
}
