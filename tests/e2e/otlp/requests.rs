//! Hand-built OTLP requests: the cluster identity rule, data without a cluster, and bad inputs
//! over HTTP and gRPC, each answered with the status the OTLP specification gives it while the
//! valid data beside it is kept.

use std::path::Path;

use prost::Message;
use serde_json::Value;
use tributary_proto::otlp::collector::logs::v1::ExportLogsServiceResponse;
use tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use tributary_proto::otlp::collector::trace::v1::ExportTraceServiceResponse;
use tributary_proto::rpc;

use crate::harness::{TestServer, peak_rss_bytes, result, run_python};

use super::bodies::{
    gauge, huge_attributes, kv, log_record, logs_request, metrics_request, resource_metrics, span, traces_request,
    with_invalid_utf8,
};
use super::sdk::{SdkRun, json_column, rows_of_cluster, stored_logs};
use super::{labels_of, now_ns, now_secs, value_of};

const METRICS_SERVICE: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const LOGS_SERVICE: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const TRACE_SERVICE: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// How much a decompression bomb may raise the server's peak memory. The bad-input tests run the
/// server with `ingest.max_decompressed_bytes` at 16 MiB (see [`bomb_config`]), 1/32 to 1/64 of
/// the bombs: holding a bomb whole would blow the budget many times over, while what the limit
/// itself allows (the decompressed prefix, grown by the allocator and the gRPC codec) fits.
/// With the default 128 MiB limit the peak grows by 1.5-3x that limit, depending on the
/// allocator's reallocation, which says nothing about holding the bomb.
const BOMB_RSS_BUDGET: u64 = 200 << 20;
const BOMB_TEST_DECOMPRESSED_LIMIT: usize = 16 << 20;
// ------------------------------------------------------------------------------------------------
// Cluster identity.

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

    fn traces_partial(&self) -> (i64, String) {
        assert_eq!(self.status, 200, "{}", self.text());
        let r = ExportTraceServiceResponse::decode(&self.body[..]).expect("ExportTraceServiceResponse");
        let ps = r.partial_success.unwrap_or_default();
        (ps.rejected_spans, ps.error_message)
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
    let traces_url = s.otlp_url("/v1/traces");
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
    for url in [metrics_url.clone(), logs_url.clone(), traces_url.clone()] {
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

    // The same for a span.
    let body = traces_request(vec![
        span(t, "kept beside the huge one", vec![]),
        span(t, "huge", huge_attributes()),
    ]);
    let (rejected, message) = post(&traces_url, PB, None, &hdr, body).await.traces_partial();
    assert_eq!(rejected, 1, "{message}");
    assert!(
        message.contains("attributes") && message.contains("spans[1]"),
        "{message}"
    );

    // The good data sent among all of this is intact after a flush.
    assert_eq!(post(&metrics_url, PB, None, &hdr, good).await.metrics_partial().0, 0);
    let flushed = s.flush().await;
    assert_eq!(flushed["log_records"], 1, "{flushed}");
    let stored = stored_logs(&s.data_dir);
    let rows = rows_of_cluster(&stored, "bad");
    assert_eq!(rows.len(), 1, "{stored}");
    assert_eq!(rows[0]["body"], "kept beside the huge one");
    // The record's attributes, and the `detected_level` ingest derives from its severity.
    assert_eq!(
        json_column(rows[0], "attributes"),
        serde_json::json!({"k": "v", "detected_level": "info"})
    );
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

    // Traces: a span with bad ids is refused in partial_success, the valid one beside it kept;
    // nothing valid is INVALID_ARGUMENT.
    let mut bad = span(t, "bad ids", vec![]);
    bad.trace_id = vec![1; 3];
    let traces = write_body(
        tmp.path(),
        "traces.bin",
        &traces_request(vec![span(t, "grpc ok", vec![]), bad.clone()]),
    );
    let a = grpc_call(&s, TRACE_SERVICE, Some(&traces), &meta);
    assert_eq!(a["code"], "OK", "{a}");
    assert_eq!(a["partial_success"]["rejected"], 1, "{a}");
    let traces = write_body(tmp.path(), "bad_traces.bin", &traces_request(vec![bad]));
    assert_grpc_refused(
        &grpc_call(&s, TRACE_SERVICE, Some(&traces), &meta),
        &["INVALID_ARGUMENT"],
        &["trace_id"],
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
