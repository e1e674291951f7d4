//! The real OpenTelemetry Python SDK over every OTLP transport: metrics come back through
//! PromQL, logs through the Parquet files (read with pyarrow).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::harness::{TestServer, result, run_python, values_close};

use super::{labels_of, now_secs, value_of};

const SDK_VERSION: &str = "1.45.2";

// ------------------------------------------------------------------------------------------------
// The real SDK: send, then check what it sent came back.

/// One run of `otlp_client.py`.
pub(super) struct SdkRun<'a> {
    pub(super) protocol: &'a str,
    pub(super) endpoint: String,
    /// The resource's `k8s.cluster.name` ("" = none).
    pub(super) resource_cluster: &'a str,
    pub(super) instance: &'a str,
    /// `KEY=VALUE` sent with every export (HTTP header / gRPC metadata).
    pub(super) headers: Vec<String>,
    pub(super) gzip: bool,
    pub(super) signals: &'a str,
}

impl SdkRun<'_> {
    pub(super) fn run(&self) -> crate::harness::PythonRun {
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
    pub(super) fn send(&self) -> Value {
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

    // The exponential histogram is stored as a native histogram: read it back through the
    // Parquet source with its count and sum.
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
pub(super) fn stored_logs(data_dir: &Path) -> Value {
    let dir = data_dir.to_string_lossy();
    let run = run_python("read_logs.py", &[&dir]);
    assert!(run.success, "read_logs.py failed:\n{}", run.stderr);
    run.json()
}

pub(super) fn rows_of_cluster<'a>(stored: &'a Value, cluster: &str) -> Vec<&'a Value> {
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
pub(super) fn json_column(row: &Value, column: &str) -> Value {
    let text = row[column]
        .as_str()
        .unwrap_or_else(|| panic!("column {column} is not text in {row}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("column {column} is not JSON ({e}): {text:?}"))
}

/// UTC `(YYYY-MM-DD, HH)` of a nanosecond timestamp.
fn utc_date_hour(ns: i64) -> (String, String) {
    let (year, month, day, hour, _, _) = crate::harness::utc_civil(ns.div_euclid(1_000_000_000));
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
        // The record's attributes, and the `detected_level` ingest derives from its severity
        // (the text, as Loki normalises it, else the number).
        let mut attributes = want["attributes"].clone();
        let level = match want["severity_text"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "" => match want["severity_number"].as_i64().unwrap_or(0) {
                1..=4 => "trace",
                5..=8 => "debug",
                9..=12 => "info",
                13..=16 => "warn",
                17..=20 => "error",
                _ => "fatal",
            }
            .to_string(),
            "warning" => "warn".to_string(),
            text => text.to_string(),
        };
        attributes["detected_level"] = Value::String(level);
        assert_eq!(json_column(row, "attributes"), attributes, "attributes: {ctx}");
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
