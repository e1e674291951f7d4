//! OTLP in, end to end: the real OpenTelemetry Python SDK (`tests/e2e/python/otlp_client.py`)
//! sends metrics and logs over OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON, on the gRPC
//! port, the dedicated OTLP/HTTP port and the main HTTP port. PromQL reads the metrics back with
//! Prometheus's names and labels; pyarrow reads the stored Parquet logs back and every field is
//! compared with what the SDK sent. Bad inputs over HTTP and gRPC each get the status the OTLP
//! specification gives them, never a retryable one, and the valid data beside them is kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde_json::Value;
use tributary_proto::otlp::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use tributary_proto::otlp::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use tributary_proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
use tributary_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use tributary_proto::otlp::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use tributary_proto::otlp::resource::v1::Resource;
use tributary_proto::rpc;

use crate::harness::{TestServer, peak_rss_bytes, result, run_python, values_close};

const METRICS_SERVICE: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_SERVICE: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const TRACE_SERVICE: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const SDK_VERSION: &str = "1.45.2";
/// How much a decompression bomb may raise the server's peak memory. The bad-input tests run the
/// server with `ingest.max_decompressed_bytes` at 16 MiB (see [`bomb_config`]), 1/32 to 1/64 of
/// the bombs: holding a bomb whole would blow the budget many times over, while what the limit
/// itself allows (the decompressed prefix, grown by the allocator and the gRPC codec) fits.
/// With the default 128 MiB limit the peak grows by 1.5-3x that limit, depending on the
/// allocator's reallocation, which says nothing about holding the bomb.
const BOMB_RSS_BUDGET: u64 = 200 << 20;
const BOMB_TEST_DECOMPRESSED_LIMIT: usize = 16 << 20;

// ------------------------------------------------------------------------------------------------
// The real SDK: send, then check what it sent came back.

/// One run of `otlp_client.py`.
struct SdkRun<'a> {
    protocol: &'a str,
    endpoint: String,
    /// The resource's `k8s.cluster.name` ("" = none).
    resource_cluster: &'a str,
    instance: &'a str,
    /// `KEY=VALUE` sent with every export (HTTP header / gRPC metadata).
    headers: Vec<String>,
    gzip: bool,
    signals: &'a str,
}

impl SdkRun<'_> {
    fn run(&self) -> crate::harness::PythonRun {
        let mut args = vec![
            "--protocol",
            self.protocol,
            "--endpoint",
            &self.endpoint,
            "--instance",
            self.instance,
            "--signals",
            self.signals,
        ];
        if !self.resource_cluster.is_empty() {
            args.extend(["--cluster", self.resource_cluster]);
        }
        for h in &self.headers {
            args.extend(["--header", h.as_str()]);
        }
        if self.gzip {
            args.push("--gzip");
        }
        run_python("otlp_client.py", &args)
    }

    /// Runs the client and returns its manifest; fails unless every export was fully accepted.
    fn send(&self) -> Value {
        let run = self.run();
        assert!(
            run.success,
            "the OpenTelemetry SDK's {} export failed:\nstdout: {}\nstderr: {}",
            self.protocol, run.stdout, run.stderr
        );
        let m = run.json();
        let responses = m["responses"].as_array().expect("responses");
        assert!(!responses.is_empty(), "no response seen: {m}");
        for r in responses {
            assert!(
                r["status"] == "OK" || r["status"] == 200,
                "{} export answered {r}",
                self.protocol
            );
            let ps = &r["partial_success"];
            assert!(
                ps.is_null() || ps["rejected"] == 0,
                "{} export was only partly accepted: {r}",
                self.protocol
            );
        }
        m
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn now_ns() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos()).expect("ns")
}

/// A result's labels.
fn labels_of(r: &Value) -> BTreeMap<String, String> {
    r["metric"]
        .as_object()
        .unwrap_or_else(|| panic!("no metric in {r}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

fn value_of(r: &Value) -> &str {
    r["value"][1].as_str().unwrap_or_else(|| panic!("no value in {r}"))
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A series expected from the SDK: metric name, its own labels, value.
type ExpectedSeries = (&'static str, Vec<(&'static str, &'static str)>, f64);

/// The series Prometheus's OTLP translation makes of what `otlp_client.py` records.
fn expected_sdk_series() -> Vec<ExpectedSeries> {
    let a = ("http_route", "/a");
    vec![
        // Monotonic sum, unit `{request}` (annotations in braces are dropped): `_total`.
        ("e2e_requests_total", vec![a, ("http_request_method", "GET")], 7.0),
        (
            "e2e_requests_total",
            vec![("http_route", "/b"), ("http_request_method", "POST")],
            11.0,
        ),
        // Non-monotonic sum: a gauge, no `_total`.
        ("e2e_queue_size", vec![("queue", "q1")], 7.0),
        // Units: `Cel` → `_celsius`, `By` → `_bytes`, `1` on a gauge → `_ratio`, `s` → `_seconds`.
        ("e2e_temperature_celsius", vec![("room", "r1")], 21.5),
        ("e2e_cpu_utilization_ratio", vec![], 0.25),
        ("e2e_memory_usage_bytes", vec![("area", "heap")], 1_048_576.0),
        // Explicit-bucket histogram: cumulative `_bucket{le}` (Go's shortest float text), `_sum`, `_count`.
        ("e2e_request_duration_seconds_bucket", vec![a, ("le", "0.1")], 1.0),
        ("e2e_request_duration_seconds_bucket", vec![a, ("le", "0.5")], 3.0),
        ("e2e_request_duration_seconds_bucket", vec![a, ("le", "1")], 4.0),
        ("e2e_request_duration_seconds_bucket", vec![a, ("le", "5")], 5.0),
        ("e2e_request_duration_seconds_bucket", vec![a, ("le", "+Inf")], 6.0),
        ("e2e_request_duration_seconds_sum", vec![a], 13.25),
        ("e2e_request_duration_seconds_count", vec![a], 6.0),
    ]
}

/// Every series one SDK run should have produced, with exactly the expected labels and values.
async fn assert_sdk_metrics(s: &TestServer, t: f64, cluster: &str, instance: &str) {
    let scope = format!("cluster=\"{cluster}\",instance=\"{instance}\"");
    let expected = expected_sdk_series();
    let mut names: Vec<&str> = expected.iter().map(|e| e.0).collect();
    names.dedup();
    for name in names {
        let v = s.query(&format!("{{__name__=\"{name}\",{scope}}}"), t).await;
        let got = result(&v);
        let want: Vec<_> = expected.iter().filter(|e| e.0 == name).collect();
        assert_eq!(got.len(), want.len(), "series of {name} in {cluster}/{instance}: {v}");
        for (_, own, value) in want {
            let labels: BTreeMap<String, String> = [
                ("__name__", name),
                ("job", "shop/checkout"),
                ("instance", instance),
                ("cluster", cluster),
                // Promoted by default (`ingest.otlp.promote_resource_attributes`).
                ("k8s_namespace_name", "payments"),
            ]
            .iter()
            .chain(own.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let found = got
                .iter()
                .find(|r| {
                    let mut l = labels_of(r);
                    // Scope labels are Prometheus's opt-in: allowed, but then they must be right.
                    for (k, want) in [("otel_scope_name", "tributary.e2e"), ("otel_scope_version", "1.2.3")] {
                        if let Some(v) = l.remove(k) {
                            assert_eq!(v, want, "{k} of {r}");
                        }
                    }
                    l == labels
                })
                .unwrap_or_else(|| panic!("no series {labels:?} among:\n{v}"));
            assert!(
                values_close(value_of(found), &value.to_string()),
                "{name}{labels:?} = {}, want {value}",
                value_of(found)
            );
        }
        for r in got {
            for k in labels_of(r).keys() {
                assert!(valid_label_name(k), "label name {k:?} of {r} is not a Prometheus name");
            }
        }
    }

    // PromQL written for Prometheus works on the translated histogram: the median is the upper
    // bound of the bucket holding the 3rd of 6 observations.
    let v = s
        .query(
            &format!("histogram_quantile(0.5, e2e_request_duration_seconds_bucket{{{scope}}})"),
            t,
        )
        .await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert!(values_close(value_of(&result(&v)[0]), "0.5"), "{v}");

    // The other resource attributes: one `target_info` per resource, value 1.
    let v = s.query(&format!("target_info{{{scope}}}"), t).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    let info = labels_of(&result(&v)[0]);
    for (k, want) in [
        ("job", "shop/checkout"),
        ("instance", instance),
        ("cluster", cluster),
        ("deployment_environment_name", "e2e"),
        ("telemetry_sdk_language", "python"),
        ("telemetry_sdk_name", "opentelemetry"),
        ("telemetry_sdk_version", SDK_VERSION),
    ] {
        assert_eq!(
            info.get(k).map(String::as_str),
            Some(want),
            "target_info label {k}: {info:?}"
        );
    }
    assert!(
        !info.contains_key("service_name"),
        "service.name is job, not a label: {info:?}"
    );
    assert_eq!(value_of(&result(&v)[0]), "1");
}

/// `GET /api/v1/query_exemplars`: `data`, panicking unless the status is success.
async fn query_exemplars(s: &TestServer, q: &str, start: f64, end: f64) -> Value {
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/query_exemplars"))
        .query(&[("query", q), ("start", &start.to_string()), ("end", &end.to_string())])
        .send()
        .await
        .expect("query_exemplars");
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "query_exemplars {q} failed: {body}");
    body["data"].clone()
}

/// The SDK recorded both histograms inside a span, so its trace-based exemplar filter attached
/// exemplars (one per bucket, the last value that fell in it): they come back with the span's
/// ids, each on the lowest bucket whose bound holds its value (Prometheus's placement).
async fn assert_sdk_exemplars(s: &TestServer, t: f64, manifest: &Value, cluster: &str) {
    let instance = manifest["instance"].as_str().expect("instance");
    let scope = format!("cluster=\"{cluster}\",instance=\"{instance}\"");
    let (trace_id, span_id) = (
        &manifest["metrics"]["exemplar_trace_id"],
        &manifest["metrics"]["exemplar_span_id"],
    );
    let data = query_exemplars(
        s,
        &format!("e2e_request_duration_seconds_bucket{{{scope}}}"),
        t - 600.0,
        t + 60.0,
    )
    .await;
    let mut got: Vec<(String, f64)> = Vec::new();
    for series in data.as_array().unwrap_or_else(|| panic!("exemplars: {data}")) {
        let le = series["seriesLabels"]["le"].as_str().unwrap_or_default().to_string();
        for e in series["exemplars"].as_array().expect("exemplars") {
            assert_eq!(&e["labels"]["trace_id"], trace_id, "{e}");
            assert_eq!(&e["labels"]["span_id"], span_id, "{e}");
            let v: f64 = e["value"].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            got.push((le.clone(), v));
        }
    }
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    let want: Vec<(String, f64)> = [("0.1", 0.05), ("0.5", 0.3), ("1", 0.7), ("5", 2.0), ("+Inf", 10.0)]
        .map(|(le, v)| (le.to_string(), v))
        .to_vec();
    assert_eq!(
        got, want,
        "exemplars of e2e_request_duration_seconds in {cluster}: {data}"
    );

    let data = query_exemplars(s, &format!("e2e_payload_size_bytes{{{scope}}}"), t - 600.0, t + 60.0).await;
    let mut values: Vec<f64> = data
        .as_array()
        .unwrap_or_else(|| panic!("exemplars: {data}"))
        .iter()
        .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
        .inspect(|e| assert_eq!(&e["labels"]["trace_id"], trace_id, "{e}"))
        .filter_map(|e| e["value"].as_str().and_then(|v| v.parse().ok()))
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(
        values,
        [100.0, 200.0, 400.0, 800.0, 1600.0],
        "exemplars of e2e_payload_size_bytes: {data}"
    );
}

#[tokio::test]
async fn sdk_metrics_over_grpc_http_protobuf_and_json_come_back_through_promql() {
    let s = TestServer::start().await;
    let runs = [
        // gRPC, gzip, cluster from the resource.
        SdkRun {
            protocol: "grpc",
            endpoint: s.grpc_endpoint(),
            resource_cluster: "east",
            instance: "checkout-grpc",
            headers: vec![],
            gzip: true,
            signals: "metrics",
        },
        // OTLP/HTTP protobuf on the dedicated port, cluster from the resource.
        SdkRun {
            protocol: "http/protobuf",
            endpoint: s.otlp_url(""),
            resource_cluster: "west",
            instance: "checkout-proto",
            headers: vec![],
            gzip: false,
            signals: "metrics",
        },
        // OTLP/HTTP JSON on the main port, gzip, cluster only from the header.
        SdkRun {
            protocol: "http/json",
            endpoint: s.url(""),
            resource_cluster: "",
            instance: "checkout-json",
            headers: vec!["X-Tributary-Cluster=north".into()],
            gzip: true,
            signals: "metrics",
        },
    ];
    let manifests: Vec<Value> = runs.iter().map(SdkRun::send).collect();
    let t = now_secs();
    for ((run, cluster), manifest) in runs.iter().zip(["east", "west", "north"]).zip(&manifests) {
        assert_sdk_metrics(&s, t, cluster, run.instance).await;
        assert_sdk_exemplars(&s, t, manifest, cluster).await;
    }
    // Across clusters, as a dashboard would.
    let v = s.query("sum by (cluster) (e2e_requests_total)", t).await;
    let mut sums: Vec<(String, String)> = result(&v)
        .iter()
        .map(|r| (labels_of(r)["cluster"].clone(), value_of(r).to_string()))
        .collect();
    sums.sort();
    assert_eq!(
        sums,
        [("east", "18"), ("north", "18"), ("west", "18")].map(|(c, v)| (c.to_string(), v.to_string())),
        "{v}"
    );

    // The same data survives the flush to Parquet unchanged.
    s.flush().await;
    for ((run, cluster), manifest) in runs.iter().zip(["east", "west", "north"]).zip(&manifests) {
        assert_sdk_metrics(&s, t, cluster, run.instance).await;
        assert_sdk_exemplars(&s, t, manifest, cluster).await;
    }

    // The exponential histogram is stored as a native histogram (PromQL over native histograms
    // comes later): read it back through the Parquet source with its count and sum.
    let storage = tributary_storage::Storage::open(&Default::default(), &s.data_dir)
        .await
        .unwrap();
    let source = storage.source();
    for cluster in ["east", "west", "north"] {
        let req = tributary_storage::read::SelectRequest::new(
            vec![
                tributary_storage::types::Matcher::equal("__name__", "e2e_payload_size_bytes"),
                tributary_storage::types::Matcher::equal("cluster", cluster),
            ],
            tributary_storage::types::TimeRange::ALL,
        );
        let got = source.select_histograms(&req).await.unwrap();
        assert_eq!(
            got.len(),
            1,
            "exponential histogram e2e.payload.size of {cluster}: {got:?}"
        );
        let last = got[0].samples.last().expect("a sample");
        assert_eq!(last.count, 5.0, "{last:?}");
        assert_eq!(last.sum, 3100.0, "{last:?}");
        let buckets: f64 = last.positive_buckets.iter().sum::<f64>() + last.zero_count;
        assert_eq!(buckets, 5.0, "{last:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// Logs, read back from the Parquet files.

/// Every stored log row, as `read_logs.py` reads it with pyarrow.
fn stored_logs(data_dir: &Path) -> Value {
    let dir = data_dir.to_string_lossy();
    let run = run_python("read_logs.py", &[&dir]);
    assert!(run.success, "read_logs.py failed:\n{}", run.stderr);
    run.json()
}

fn rows_of_cluster<'a>(stored: &'a Value, cluster: &str) -> Vec<&'a Value> {
    let mut rows: Vec<&Value> = stored["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["cluster"] == cluster)
        .collect();
    rows.sort_by_key(|r| r["timestamp"].as_i64());
    rows
}

/// A JSON-text column, parsed.
fn json_column(row: &Value, column: &str) -> Value {
    let text = row[column]
        .as_str()
        .unwrap_or_else(|| panic!("column {column} is not text in {row}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("column {column} is not JSON ({e}): {text:?}"))
}

/// UTC `(YYYY-MM-DD, HH)` of a nanosecond timestamp (Howard Hinnant's civil-from-days).
fn utc_date_hour(ns: i64) -> (String, String) {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let hour = secs.rem_euclid(86_400) / 3600;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (format!("{year:04}-{month:02}-{day:02}"), format!("{hour:02}"))
}

/// Every field of every record one SDK run sent is stored exactly.
fn assert_sdk_logs(stored: &Value, manifest: &Value, cluster: &str) {
    let sent = manifest["logs"]["records"].as_array().expect("records");
    let rows = rows_of_cluster(stored, cluster);
    assert_eq!(
        rows.len(),
        sent.len(),
        "log rows of cluster {cluster}: {rows:#?}\nall files: {}",
        stored["files"]
    );
    let protocol = &manifest["protocol"];
    for (row, want) in rows.iter().zip(sent) {
        let ctx = format!("{protocol} record {want}\nstored {row}");
        assert_eq!(row["cluster"], cluster, "{ctx}");
        assert_eq!(
            row["timestamp"].as_i64(),
            want["timestamp"].as_i64(),
            "timestamp: {ctx}"
        );
        assert_eq!(
            row["observed_timestamp"].as_i64(),
            want["observed_timestamp"].as_i64(),
            "observed_timestamp: {ctx}"
        );
        assert_eq!(
            row["severity_number"], want["severity_number"],
            "severity_number: {ctx}"
        );
        assert_eq!(row["severity_text"], want["severity_text"], "severity_text: {ctx}");
        // A string body as is; a structured body as JSON.
        match &want["body"] {
            Value::String(b) => assert_eq!(row["body"].as_str(), Some(b.as_str()), "body: {ctx}"),
            structured => assert_eq!(&json_column(row, "body"), structured, "body: {ctx}"),
        }
        assert_eq!(json_column(row, "attributes"), want["attributes"], "attributes: {ctx}");
        assert_eq!(
            json_column(row, "resource_attributes"),
            manifest["resource"],
            "resource_attributes: {ctx}"
        );
        // Hex ids exactly as the SDK's span had them; outside a span none (null on disk, per the
        // logs table's schema).
        for id in ["trace_id", "span_id"] {
            match want[id].as_str() {
                Some("") | None => assert!(row[id].is_null(), "{id} should be null: {ctx}"),
                Some(hex) => assert_eq!(row[id], hex, "{id}: {ctx}"),
            }
        }
        assert_eq!(row["flags"], want["flags"], "flags: {ctx}");
        assert_eq!(row["scope_name"], manifest["scope"]["name"], "scope_name: {ctx}");
        assert_eq!(
            row["scope_version"], manifest["scope"]["version"],
            "scope_version: {ctx}"
        );
        assert_eq!(row["event_name"], want["event_name"], "event_name: {ctx}");
        // Stream labels: `cluster` (its own column) plus the default promoted resource attributes
        // (the `labels` JSON; `service_name` also has a column of its own).
        assert_eq!(row["service_name"], "checkout", "service_name: {ctx}");
        let labels = json_column(row, "labels");
        assert!(labels.get("cluster").is_none(), "cluster is its own column: {ctx}");
        for (k, v) in [
            ("service_name", "checkout"),
            ("service_namespace", "shop"),
            ("service_instance_id", manifest["instance"].as_str().unwrap_or_default()),
            ("k8s_namespace_name", "payments"),
        ] {
            assert_eq!(labels[k], v, "label {k}: {ctx}");
        }
        // Partitioned by time and cluster: logs/<date>/<hour>/<cluster>/...
        let key = row["_key"].as_str().expect("key");
        let (date, hour) = utc_date_hour(want["timestamp"].as_i64().expect("ts"));
        let prefix = format!("logs/{date}/{hour}/{cluster}/");
        assert!(key.starts_with(&prefix), "file {key} should be under {prefix}");
    }
}

#[tokio::test]
async fn sdk_logs_over_grpc_http_protobuf_and_json_round_trip_through_parquet() {
    let s = TestServer::start().await;
    let runs = [
        (
            SdkRun {
                protocol: "grpc",
                endpoint: s.grpc_endpoint(),
                resource_cluster: "east",
                instance: "checkout-grpc",
                headers: vec![],
                gzip: true,
                signals: "logs",
            },
            "east",
        ),
        (
            SdkRun {
                protocol: "http/protobuf",
                endpoint: s.url(""),
                resource_cluster: "west",
                instance: "checkout-proto",
                headers: vec![],
                gzip: false,
                signals: "logs",
            },
            "west",
        ),
        (
            SdkRun {
                protocol: "http/json",
                endpoint: s.otlp_url(""),
                resource_cluster: "",
                instance: "checkout-json",
                headers: vec!["X-Tributary-Cluster=north".into()],
                gzip: true,
                signals: "logs",
            },
            "north",
        ),
    ];
    let manifests: Vec<Value> = runs.iter().map(|(r, _)| r.send()).collect();
    let flushed = s.flush().await;
    assert_eq!(flushed["log_records"], 15, "{flushed}");

    let stored = stored_logs(&s.data_dir);
    let want_columns = [
        "cluster",
        "service_name",
        "labels",
        "timestamp",
        "observed_timestamp",
        "severity_number",
        "severity_text",
        "body",
        "trace_id",
        "span_id",
        "flags",
        "attributes",
        "resource_attributes",
        "scope_name",
        "scope_version",
        "event_name",
    ];
    for f in stored["files"].as_array().expect("files") {
        for c in want_columns {
            assert!(f["schema"].get(c).is_some(), "column {c} missing from {f}");
        }
    }
    for (manifest, (_, cluster)) in manifests.iter().zip(&runs) {
        assert_sdk_logs(&stored, manifest, cluster);
    }
}

// ------------------------------------------------------------------------------------------------
// Cluster identity.

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_string())),
        }),
        ..Default::default()
    }
}

fn gauge(name: &str, attributes: Vec<KeyValue>, t_ns: u64, v: f64) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes,
                time_unix_nano: t_ns,
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn resource_metrics(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn metrics_request(resources: Vec<ResourceMetrics>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: resources,
    }
}

fn log_record(t_ns: u64, body: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: t_ns,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        attributes,
        ..Default::default()
    }
}

fn logs_request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An OTLP/HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    /// The `google.rpc.Status` message of an error answer, in either encoding.
    fn status_message(&self) -> String {
        if self.content_type.starts_with("application/json") {
            let v: Value = serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {}", self.text()));
            v["message"]
                .as_str()
                .unwrap_or_else(|| panic!("no message in {v}"))
                .to_string()
        } else {
            assert!(
                self.content_type.starts_with("application/x-protobuf"),
                "error body type {:?}: {}",
                self.content_type,
                self.text()
            );
            rpc::Status::decode(&self.body[..])
                .unwrap_or_else(|e| panic!("error body is not a google.rpc.Status ({e}): {}", self.text()))
                .message
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A permanent refusal: the status, a `google.rpc.Status` whose message contains every one of
    /// `reasons`, and no `Retry-After` (OTLP clients must not retry bad data).
    fn assert_refused(&self, status: u16, reasons: &[&str]) {
        assert_eq!(self.status, status, "{self:?}: {}", self.text());
        assert!(self.retry_after.is_none(), "Retry-After on a permanent error: {self:?}");
        let message = self.status_message();
        for r in reasons {
            assert!(
                message.to_lowercase().contains(&r.to_lowercase()),
                "the reason should mention {r:?}: {message}"
            );
        }
    }

    /// `partial_success` of a 200 ExportMetricsServiceResponse (protobuf): (rejected, message).
    fn metrics_partial(&self) -> (i64, String) {
        assert_eq!(self.status, 200, "{}", self.text());
        let r = ExportMetricsServiceResponse::decode(&self.body[..]).expect("ExportMetricsServiceResponse");
        let ps = r.partial_success.unwrap_or_default();
        (ps.rejected_data_points, ps.error_message)
    }

    fn logs_partial(&self) -> (i64, String) {
        assert_eq!(self.status, 200, "{}", self.text());
        let r = ExportLogsServiceResponse::decode(&self.body[..]).expect("ExportLogsServiceResponse");
        let ps = r.partial_success.unwrap_or_default();
        (ps.rejected_log_records, ps.error_message)
    }
}

async fn post(
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    Answer {
        status: r.status().as_u16(),
        content_type,
        retry_after,
        body: r.bytes().await.expect("body").to_vec(),
    }
}

const PB: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// A config capping decompressed bodies at [`BOMB_TEST_DECOMPRESSED_LIMIT`].
fn bomb_config(dir: &Path) -> String {
    let p = dir.join("bomb.toml");
    std::fs::write(
        &p,
        format!("[ingest]\nmax_decompressed_bytes = {BOMB_TEST_DECOMPRESSED_LIMIT}\n"),
    )
    .expect("config");
    p.to_string_lossy().into_owned()
}

fn token_config(dir: &Path) -> String {
    let p = dir.join("tributary.toml");
    std::fs::write(&p, "[ingest.auth.tokens]\n\"team-a-token\" = \"team-a\"\n").expect("config");
    p.to_string_lossy().into_owned()
}

#[tokio::test]
async fn otlp_cluster_is_the_token_else_the_resource_else_the_header() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let s = TestServer::start_with(&["--config", &token_config(cfg_dir.path())]).await;

    // Token beats the resource's k8s.cluster.name, which is kept as exported_cluster (SDK, gRPC
    // metadata).
    SdkRun {
        protocol: "grpc",
        endpoint: s.grpc_endpoint(),
        resource_cluster: "claimed",
        instance: "tok",
        headers: vec!["authorization=Bearer team-a-token".into()],
        gzip: false,
        signals: "metrics",
    }
    .send();
    // Same over OTLP/HTTP.
    SdkRun {
        protocol: "http/protobuf",
        endpoint: s.otlp_url(""),
        resource_cluster: "claimed",
        instance: "tok-http",
        headers: vec!["Authorization=Bearer team-a-token".into()],
        gzip: false,
        signals: "metrics",
    }
    .send();
    // An unknown token is refused, and the SDK is told so (no retry).
    for (protocol, endpoint, want) in [
        ("grpc", s.grpc_endpoint(), Value::from("UNAUTHENTICATED")),
        ("http/protobuf", s.otlp_url(""), Value::from(401)),
    ] {
        let run = SdkRun {
            protocol,
            endpoint,
            resource_cluster: "east",
            instance: "bad-token",
            headers: vec!["authorization=Bearer wrong".into()],
            gzip: false,
            signals: "metrics",
        }
        .run();
        assert!(
            !run.success,
            "{protocol} export with an unknown token succeeded: {}",
            run.stdout
        );
        let m = run.json();
        assert!(
            m["responses"]
                .as_array()
                .expect("responses")
                .iter()
                .any(|r| r["status"] == want),
            "{protocol}: want {want}: {m}"
        );
    }

    // The resource beats the header (no exported_cluster then); the header alone is used.
    let t = now_ns();
    let body = metrics_request(vec![
        resource_metrics(
            vec![kv("service.name", "svc"), kv("k8s.cluster.name", "east")],
            vec![gauge("cluster_probe", vec![kv("from", "resource")], t, 1.0)],
        ),
        resource_metrics(
            vec![kv("service.name", "svc")],
            vec![gauge("cluster_probe", vec![kv("from", "header")], t, 2.0)],
        ),
    ])
    .encode_to_vec();
    let a = post(&s.url("/v1/metrics"), PB, None, &[("X-Tributary-Cluster", "hdr")], body).await;
    assert_eq!(a.metrics_partial().0, 0, "{a:?}");

    let at = t as f64 / 1e9;
    for (instance, cluster, exported) in [
        ("tok", "team-a", Some("claimed")),
        ("tok-http", "team-a", Some("claimed")),
    ] {
        let v = s
            .query(&format!("e2e_queue_size{{instance=\"{instance}\"}}"), now_secs())
            .await;
        assert_eq!(result(&v).len(), 1, "{v}");
        let l = labels_of(&result(&v)[0]);
        assert_eq!(l["cluster"], cluster, "{v}");
        assert_eq!(l.get("exported_cluster").map(String::as_str), exported, "{v}");
    }
    assert!(
        result(&s.query("e2e_queue_size{instance=\"bad-token\"}", now_secs()).await).is_empty(),
        "data with an unknown token was stored"
    );
    let v = s.query("cluster_probe", at).await;
    let mut got: Vec<(String, String, Option<String>)> = result(&v)
        .iter()
        .map(|r| {
            let l = labels_of(r);
            (
                l["from"].clone(),
                l["cluster"].clone(),
                l.get("exported_cluster").cloned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("header".to_string(), "hdr".to_string(), None),
            ("resource".to_string(), "east".to_string(), None)
        ],
        "{v}"
    );
}

#[tokio::test]
async fn otlp_data_without_a_cluster_is_rejected_with_the_reason_and_the_rest_kept() {
    let s = TestServer::start().await;
    let t = now_ns();
    let at = t as f64 / 1e9;
    let url = s.otlp_url("/v1/metrics");

    // One resource has a cluster, the other none (and no header): partial success.
    let body = metrics_request(vec![
        resource_metrics(
            vec![kv("k8s.cluster.name", "east")],
            vec![gauge("with_cluster", vec![], t, 1.0)],
        ),
        resource_metrics(
            vec![kv("service.name", "nowhere")],
            vec![
                gauge("without_cluster", vec![kv("n", "1")], t, 2.0),
                gauge("without_cluster", vec![kv("n", "2")], t, 3.0),
            ],
        ),
    ])
    .encode_to_vec();
    let a = post(&url, PB, None, &[], body).await;
    let (rejected, message) = a.metrics_partial();
    assert_eq!(rejected, 2, "{message}");
    for want in ["k8s.cluster.name", "X-Tributary-Cluster"] {
        assert!(
            message.contains(want),
            "the reason should say how to set a cluster ({want}): {message}"
        );
    }
    assert_eq!(result(&s.query("with_cluster", at).await).len(), 1);
    assert!(result(&s.query("without_cluster", at).await).is_empty());

    // Nothing has a cluster: nothing stored, and the sender is told why (a 400, or a 200 whose
    // partial_success rejects every point), never a retryable status.
    let body = metrics_request(vec![resource_metrics(
        vec![],
        vec![gauge("no_cluster_at_all", vec![], t, 1.0)],
    )])
    .encode_to_vec();
    let a = post(&url, PB, None, &[], body).await;
    if a.status == 200 {
        let (rejected, message) = a.metrics_partial();
        assert_eq!(rejected, 1, "{message}");
        assert!(message.contains("k8s.cluster.name"), "{message}");
    } else {
        a.assert_refused(400, &["k8s.cluster.name", "X-Tributary-Cluster"]);
    }
    assert!(result(&s.query("no_cluster_at_all", at).await).is_empty());

    // Logs follow the same rule.
    let body = logs_request(vec![], vec![log_record(t, "no cluster", vec![])]).encode_to_vec();
    let a = post(&s.otlp_url("/v1/logs"), PB, None, &[], body).await;
    if a.status == 200 {
        let (rejected, message) = a.logs_partial();
        assert_eq!(rejected, 1, "{message}");
        assert!(message.contains("k8s.cluster.name"), "{message}");
    } else {
        a.assert_refused(400, &["k8s.cluster.name", "X-Tributary-Cluster"]);
    }
}

// ------------------------------------------------------------------------------------------------
// Bad inputs.

/// Replaces the (unique) ASCII `marker` in an encoded message with bytes of the same length that
/// are not UTF-8, so the protobuf framing stays valid and only the string is wrong.
fn with_invalid_utf8(mut encoded: Vec<u8>, marker: &str) -> Vec<u8> {
    let m = marker.as_bytes();
    let at = encoded
        .windows(m.len())
        .position(|w| w == m)
        .expect("marker in the encoding");
    encoded[at] = 0xff;
    encoded[at + 1] = 0xfe;
    encoded
}

/// 100,000 distinct attributes.
fn huge_attributes() -> Vec<KeyValue> {
    (0..100_000).map(|i| kv(&format!("attr_{i}"), "v")).collect()
}

fn gzip_bomb(dir: &Path, decompressed: u64) -> Vec<u8> {
    let path = dir.join("bomb.gz");
    let run = run_python("gzip_bomb.py", &[&path.to_string_lossy(), &decompressed.to_string()]);
    assert!(run.success, "gzip_bomb.py: {}", run.stderr);
    std::fs::read(&path).expect("bomb")
}

#[tokio::test]
async fn otlp_http_bad_inputs_get_the_specified_statuses_and_valid_data_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = TestServer::start_with(&["--config", &bomb_config(tmp.path())]).await;
    let hdr = [("X-Tributary-Cluster", "bad")];
    let metrics_url = s.otlp_url("/v1/metrics");
    let logs_url = s.otlp_url("/v1/logs");
    let t = now_ns();
    let at = t as f64 / 1e9;
    let good = metrics_request(vec![resource_metrics(
        vec![],
        vec![gauge("good_metric", vec![], t, 1.0)],
    )])
    .encode_to_vec();

    // Truncated protobuf: 400 with a google.rpc.Status saying so, on both HTTP listeners.
    for url in [metrics_url.clone(), s.url("/v1/metrics")] {
        let a = post(&url, PB, None, &hdr, good[..good.len() / 2].to_vec()).await;
        a.assert_refused(400, &["protobuf"]);
        assert!(a.content_type.starts_with(PB), "{a:?}");
        assert_eq!(
            rpc::Status::decode(&a.body[..]).expect("status").code,
            3,
            "INVALID_ARGUMENT"
        );
    }
    let truncated_logs = logs_request(vec![], vec![log_record(t, "x", vec![])]).encode_to_vec();
    post(
        &logs_url,
        PB,
        None,
        &hdr,
        truncated_logs[..truncated_logs.len() - 3].to_vec(),
    )
    .await
    .assert_refused(400, &["protobuf"]);

    // Bad JSON: 400, and the Status is JSON too.
    let a = post(&metrics_url, JSON, None, &hdr, br#"{"resourceMetrics": 3}"#.to_vec()).await;
    a.assert_refused(400, &["json"]);
    assert!(a.content_type.starts_with(JSON), "{a:?}");
    // A trace id that is not hex is not OTLP/JSON.
    let a = post(
        &logs_url,
        JSON,
        None,
        &hdr,
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","traceId":"not-hex","body":{"stringValue":"x"}}]}]}]}"#.to_vec(),
    )
    .await;
    a.assert_refused(400, &[]);

    // Wrong content type / encoding: 415, saying what is accepted.
    post(&metrics_url, "text/plain", None, &hdr, good.clone())
        .await
        .assert_refused(415, &["application/x-protobuf", "application/json"]);
    post(
        &logs_url,
        "application/x-www-form-urlencoded",
        None,
        &hdr,
        b"a=b".to_vec(),
    )
    .await
    .assert_refused(415, &["application/x-protobuf"]);
    post(&metrics_url, PB, Some("br"), &hdr, good.clone())
        .await
        .assert_refused(415, &["gzip"]);
    // Not gzip at all, though it says so: bad data.
    post(&metrics_url, PB, Some("gzip"), &hdr, good.clone())
        .await
        .assert_refused(400, &["gzip"]);

    // Too big as sent: 413 (default ingest.max_body_bytes is 32 MiB).
    post(&metrics_url, PB, None, &hdr, vec![0u8; 33 << 20])
        .await
        .assert_refused(413, &[]);

    // A gzip bomb (1 GiB of zeros in ~1 MiB): 413 once the decompressed limit is passed, and the
    // server never holds the whole thing.
    let bomb = gzip_bomb(tmp.path(), 1 << 30);
    let pid = s.pid().expect("pid");
    let before = peak_rss_bytes(pid);
    for url in [metrics_url.clone(), logs_url.clone()] {
        post(&url, PB, Some("gzip"), &hdr, bomb.clone())
            .await
            .assert_refused(413, &[]);
    }
    let after = peak_rss_bytes(pid);
    assert!(
        after.saturating_sub(before) < BOMB_RSS_BUDGET,
        "a gzip bomb raised peak RSS from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );

    // Invalid UTF-8 in a protobuf string field: the request is not valid OTLP, 400.
    let bad_name = metrics_request(vec![resource_metrics(
        vec![],
        vec![gauge("UTF8MARKER", vec![], t, 1.0)],
    )])
    .encode_to_vec();
    post(&metrics_url, PB, None, &hdr, with_invalid_utf8(bad_name, "UTF8MARKER"))
        .await
        .assert_refused(400, &["utf-8"]);
    let bad_body = logs_request(vec![], vec![log_record(t, "UTF8MARKER", vec![])]).encode_to_vec();
    post(&logs_url, PB, None, &hdr, with_invalid_utf8(bad_body, "UTF8MARKER"))
        .await
        .assert_refused(400, &["utf-8"]);
    assert!(result(&s.query("{__name__=~\".*UTF8.*\"}", at).await).is_empty());

    // 100,000 attributes on one data point: that point is rejected with the reason, the valid
    // point in the same request is stored.
    let body = metrics_request(vec![resource_metrics(
        vec![],
        vec![
            gauge("beside_the_huge_one", vec![kv("k", "v")], t, 42.0),
            gauge("huge_point", huge_attributes(), t, 1.0),
        ],
    )])
    .encode_to_vec();
    let (rejected, message) = post(&metrics_url, PB, None, &hdr, body).await.metrics_partial();
    assert_eq!(rejected, 1, "{message}");
    assert!(
        message.contains("huge_point"),
        "the reason should name the metric: {message}"
    );
    assert!(
        message.contains("label"),
        "the reason should say the labels are too many: {message}"
    );
    let v = s.query("beside_the_huge_one", at).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert_eq!(value_of(&result(&v)[0]), "42");
    assert!(result(&s.query("huge_point", at).await).is_empty());

    // The same for a log record.
    let body = logs_request(
        vec![],
        vec![
            log_record(t, "kept beside the huge one", vec![kv("k", "v")]),
            log_record(t + 1, "huge", huge_attributes()),
        ],
    )
    .encode_to_vec();
    let (rejected, message) = post(&logs_url, PB, None, &hdr, body).await.logs_partial();
    assert_eq!(rejected, 1, "{message}");
    assert!(message.contains("attribute"), "{message}");

    // Traces are not stored yet, and the answer says so (501 is not retried).
    let a = post(&s.otlp_url("/v1/traces"), PB, None, &hdr, Vec::new()).await;
    a.assert_refused(501, &["traces"]);

    // The good data sent among all of this is intact after a flush.
    assert_eq!(post(&metrics_url, PB, None, &hdr, good).await.metrics_partial().0, 0);
    let flushed = s.flush().await;
    assert_eq!(flushed["log_records"], 1, "{flushed}");
    let stored = stored_logs(&s.data_dir);
    let rows = rows_of_cluster(&stored, "bad");
    assert_eq!(rows.len(), 1, "{stored}");
    assert_eq!(rows[0]["body"], "kept beside the huge one");
    assert_eq!(json_column(rows[0], "attributes"), serde_json::json!({"k": "v"}));
    assert_eq!(result(&s.query("good_metric", at).await).len(), 1);
    assert_eq!(result(&s.query("beside_the_huge_one", at).await).len(), 1);
}

/// One raw gRPC call through `grpc_raw.py`: its JSON answer.
fn grpc_call(s: &TestServer, method: &str, body: Option<&Path>, extra: &[&str]) -> Value {
    let endpoint = s.grpc_endpoint();
    let mut args = vec!["--endpoint", endpoint.as_str(), "--method", method];
    let body_path;
    if let Some(p) = body {
        body_path = p.to_string_lossy().into_owned();
        args.extend(["--body-file", body_path.as_str()]);
    }
    args.extend(extra);
    let run = run_python("grpc_raw.py", &args);
    assert!(run.success, "grpc_raw.py {method}: {}\n{}", run.stdout, run.stderr);
    run.json()
}

fn write_body(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write body");
    p
}

/// A permanent gRPC refusal: the code, details naming every reason, no RetryInfo.
fn assert_grpc_refused(answer: &Value, codes: &[&str], reasons: &[&str]) {
    let code = answer["code"].as_str().unwrap_or_default();
    assert!(codes.contains(&code), "want one of {codes:?}: {answer}");
    assert!(
        answer["trailing"].get("google.rpc.retryinfo-bin").is_none(),
        "RetryInfo on a permanent error: {answer}"
    );
    let details = answer["details"].as_str().unwrap_or_default().to_lowercase();
    for r in reasons {
        assert!(
            details.contains(&r.to_lowercase()),
            "details should mention {r:?}: {answer}"
        );
    }
}

#[tokio::test]
async fn otlp_grpc_bad_inputs_get_the_specified_codes_and_valid_data_is_kept() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = TestServer::start_with(&["--config", &bomb_config(tmp.path())]).await;
    let meta = ["--metadata", "x-tributary-cluster=bad"];
    let t = now_ns();
    let at = t as f64 / 1e9;
    let good =
        metrics_request(vec![resource_metrics(vec![], vec![gauge("good_grpc", vec![], t, 1.0)])]).encode_to_vec();

    // Truncated protobuf.
    let p = write_body(tmp.path(), "truncated.bin", &good[..good.len() / 2]);
    // OTLP: bad data is INVALID_ARGUMENT (not retried); the details say what is wrong.
    let a = grpc_call(&s, METRICS_SERVICE, Some(&p), &meta);
    assert_grpc_refused(&a, &["INVALID_ARGUMENT"], &[]);
    assert!(!a["details"].as_str().unwrap_or_default().is_empty(), "{a}");
    let a = grpc_call(&s, LOGS_SERVICE, Some(&p), &meta);
    assert_grpc_refused(&a, &["INVALID_ARGUMENT"], &[]);

    // Invalid UTF-8 in a string field.
    let bad = with_invalid_utf8(
        metrics_request(vec![resource_metrics(
            vec![],
            vec![gauge("UTF8MARKER", vec![], t, 1.0)],
        )])
        .encode_to_vec(),
        "UTF8MARKER",
    );
    let p = write_body(tmp.path(), "utf8.bin", &bad);
    assert_grpc_refused(
        &grpc_call(&s, METRICS_SERVICE, Some(&p), &meta),
        &["INVALID_ARGUMENT"],
        &["utf-8"],
    );

    // 100,000 attributes on one point: OK with partial_success; the valid point is stored.
    let body = metrics_request(vec![resource_metrics(
        vec![],
        vec![
            gauge("grpc_beside_the_huge_one", vec![], t, 7.0),
            gauge("grpc_huge_point", huge_attributes(), t, 1.0),
        ],
    )])
    .encode_to_vec();
    let p = write_body(tmp.path(), "huge.bin", &body);
    let a = grpc_call(&s, METRICS_SERVICE, Some(&p), &meta);
    assert_eq!(a["code"], "OK", "{a}");
    assert_eq!(a["partial_success"]["rejected"], 1, "{a}");
    let message = a["partial_success"]["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("grpc_huge_point"), "{a}");
    let v = s.query("grpc_beside_the_huge_one", at).await;
    assert_eq!(result(&v).len(), 1, "{v}");
    assert!(result(&s.query("grpc_huge_point", at).await).is_empty());

    let body = logs_request(
        vec![],
        vec![
            log_record(t, "grpc kept", vec![]),
            log_record(t + 1, "grpc huge", huge_attributes()),
        ],
    )
    .encode_to_vec();
    let p = write_body(tmp.path(), "huge_logs.bin", &body);
    let a = grpc_call(&s, LOGS_SERVICE, Some(&p), &meta);
    assert_eq!(a["code"], "OK", "{a}");
    assert_eq!(a["partial_success"]["rejected"], 1, "{a}");

    // No cluster anywhere: refused with the reason (or every point rejected in partial_success).
    let p = write_body(tmp.path(), "good.bin", &good);
    let a = grpc_call(&s, METRICS_SERVICE, Some(&p), &[]);
    if a["code"] == "OK" {
        assert_eq!(a["partial_success"]["rejected"], 1, "{a}");
        assert!(
            a["partial_success"]["error_message"]
                .as_str()
                .unwrap_or_default()
                .contains("k8s.cluster.name"),
            "{a}"
        );
    } else {
        assert_grpc_refused(&a, &["INVALID_ARGUMENT"], &["k8s.cluster.name"]);
    }

    // Traces: UNIMPLEMENTED, saying why.
    let empty = write_body(tmp.path(), "empty.bin", &[]);
    assert_grpc_refused(
        &grpc_call(&s, TRACE_SERVICE, Some(&empty), &meta),
        &["UNIMPLEMENTED"],
        &["traces"],
    );

    // A gzip bomb: 512 MiB of zeros, gzip-compressed by the gRPC client. Refused with a code OTLP
    // clients do not retry (OUT_OF_RANGE would be retried; RESOURCE_EXHAUSTED only with RetryInfo),
    // and the server never holds it.
    let pid = s.pid().expect("pid");
    let before = peak_rss_bytes(pid);
    let zeros = (512u64 << 20).to_string();
    let a = grpc_call(
        &s,
        METRICS_SERVICE,
        None,
        &["--zeros", &zeros, "--gzip", "--metadata", "x-tributary-cluster=bad"],
    );
    assert_grpc_refused(&a, &["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"], &[]);
    let after = peak_rss_bytes(pid);
    assert!(
        after.saturating_sub(before) < BOMB_RSS_BUDGET,
        "a gRPC gzip bomb raised peak RSS from {} MiB to {} MiB",
        before >> 20,
        after >> 20
    );

    // Too big as sent (160 MiB, over every default limit): refused without a retry (tonic's own
    // OUT_OF_RANGE would make OTLP clients resend it until their deadline).
    let big = (160u64 << 20).to_string();
    let a = grpc_call(
        &s,
        METRICS_SERVICE,
        None,
        &["--zeros", &big, "--metadata", "x-tributary-cluster=bad"],
    );
    assert_grpc_refused(&a, &["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"], &[]);

    // Still serving, and the good data is there.
    let a = grpc_call(&s, METRICS_SERVICE, Some(&p), &meta);
    assert_eq!(a["code"], "OK", "{a}");
    assert!(
        a["partial_success"].is_null() || a["partial_success"]["rejected"] == 0,
        "{a}"
    );
    assert_eq!(result(&s.query("good_grpc", at).await).len(), 1);
    let flushed = s.flush().await;
    assert_eq!(flushed["log_records"], 1, "{flushed}");
}
