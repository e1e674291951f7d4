//! Traces end to end: the real OpenTelemetry Python SDK (`tests/e2e/python/trace_client.py`)
//! sends a trace per cluster over OTLP/gRPC and OTLP/HTTP protobuf; each is read back by id
//! through Tempo's API (OTLP/JSON and protobuf) and Jaeger's, found by TraceQL, survives a
//! kill -9 (WAL replay) and a flush, and a span with a bad id is refused beside valid ones.

use prost::Message;
use serde_json::{Value, json};
use tributary_proto::otlp::trace::v1::TracesData;

use crate::harness::{TestServer, run_python};

/// Sends one trace from `cluster`; returns the script's manifest.
fn send(protocol: &str, endpoint: &str, cluster: &str) -> Value {
    let run = run_python(
        "trace_client.py",
        &["--protocol", protocol, "--endpoint", endpoint, "--cluster", cluster],
    );
    assert!(run.success, "SDK export failed:\n{}\n{}", run.stdout, run.stderr);
    run.json()
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let r = server.client().get(server.url(path)).send().await.expect("GET");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Checks the Tempo and Jaeger answers for the trace `sent` describes.
/// The `traceID`s of a search answer's traces (Tempo's `traces`, Jaeger's `data`), sorted.
fn trace_ids(traces: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = traces
        .as_array()
        .expect("an array of traces")
        .iter()
        .map(|t| t["traceID"].as_str().expect("a traceID"))
        .collect();
    ids.sort();
    ids
}

async fn check_trace(server: &TestServer, sent: &Value, cluster: &str) {
    let id = sent["trace_id"].as_str().unwrap();
    let (status, body) = get(server, &format!("/api/traces/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let batches = body["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "one resource: {body}");
    let resource = batches[0]["resource"]["attributes"].to_string();
    assert!(
        resource.contains(cluster) && resource.contains("checkout"),
        "{resource}"
    );
    let spans: Vec<&Value> = batches[0]["scopeSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["spans"].as_array().unwrap())
        .collect();
    let want: Vec<&Value> = sent["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["trace_id"] == id)
        .collect();
    assert_eq!(spans.len(), want.len(), "{body}");
    for w in &want {
        let got = spans
            .iter()
            .find(|s| s["spanId"] == w["span_id"])
            .unwrap_or_else(|| panic!("span {} missing: {body}", w["span_id"]));
        assert_eq!(got["name"], w["name"]);
        assert_eq!(got["parentSpanId"], w["parent"]);
        assert_eq!(got["startTimeUnixNano"], w["start"].to_string());
        assert_eq!(got["endTimeUnixNano"], w["end"].to_string());
    }
    let root = spans.iter().find(|s| s["name"] == "GET /cart").unwrap();
    assert_eq!(root["kind"], 2);
    assert_eq!(root["status"]["code"], 2);
    assert_eq!(root["status"]["message"], "inventory down");
    assert_eq!(root["events"][0]["name"], "cache miss");
    let warmup = sent["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "warmup")
        .unwrap();
    assert_eq!(root["links"][0]["traceId"], warmup["trace_id"]);
    let attrs = root["attributes"].to_string();
    assert!(
        attrs.contains(r#""intValue":"503""#) || attrs.contains(r#""intValue":503"#),
        "{attrs}"
    );

    // Grafana asks for protobuf: `tempopb.Trace`, OTLP `TracesData` on the wire.
    let r = server
        .client()
        .get(server.url(&format!("/api/traces/{id}")))
        .header("Accept", "application/protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let data = TracesData::decode(r.bytes().await.unwrap()).expect("protobuf trace");
    let n: usize = data
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    assert_eq!(n, want.len());

    let (status, body) = get(server, &format!("/jaeger/api/traces/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let jspans = body["data"][0]["spans"].as_array().unwrap();
    assert_eq!(jspans.len(), want.len());
    let child = jspans.iter().find(|s| s["operationName"] == "SELECT carts").unwrap();
    assert_eq!(child["references"][0]["refType"], "CHILD_OF");
    let pid = child["processID"].as_str().unwrap();
    assert_eq!(body["data"][0]["processes"][pid]["serviceName"], "checkout");
}

#[tokio::test]
async fn sdk_traces_round_trip_through_tempo_and_jaeger_apis_and_survive_a_crash() {
    let mut server = TestServer::start().await;
    let grpc = server.grpc_endpoint();
    let http = server.otlp_url("");
    let sent = [
        (send("grpc", &grpc, "prod-eu"), "prod-eu"),
        (send("http/protobuf", &http, "prod-us"), "prod-us"),
        (send("grpc", &grpc, "dev"), "dev"),
    ];
    for (s, cluster) in &sent {
        check_trace(&server, s, cluster).await;
    }

    // TraceQL finds the three error roots, one per cluster; a narrower query one of them.
    let q = |q: &str| format!("/api/search?q={}", crate::harness::urlencode(q));
    let (status, body) = get(
        &server,
        &q(r#"{ resource.service.name = "checkout" && span.http.response.status_code >= 500 && status = error }"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found = trace_ids(&body["traces"]);
    let mut want: Vec<&str> = sent.iter().map(|(s, _)| s["trace_id"].as_str().unwrap()).collect();
    want.sort();
    assert_eq!(found, want, "{body}");
    assert!(body["traces"][0]["rootTraceName"] == "GET /cart", "{body}");
    let (_, body) = get(&server, &q(r#"{ resource.k8s.cluster.name = "dev" && kind = client }"#)).await;
    assert_eq!(body["traces"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["traces"][0]["traceID"], sent[2].0["trace_id"]);
    let (status, body) = get(&server, &q(r#"{ name = "a" } | count() > 1"#)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.as_str().unwrap_or("").contains("pipelines"), "{body}");
    let (status, _) = get(&server, "/api/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    let (_, body) = get(&server, "/api/v2/search/tag/resource.k8s.cluster.name/values").await;
    assert_eq!(body["tagValues"].as_array().unwrap().len(), 3, "{body}");
    let (_, body) = get(&server, "/jaeger/api/services").await;
    assert_eq!(body["data"], json!(["checkout"]));

    // Jaeger's search and operations: the three error roots of `checkout`.
    let tags = crate::harness::urlencode(r#"{"error":"true"}"#);
    let (status, body) = get(
        &server,
        &format!("/jaeger/api/traces?service=checkout&tags={tags}&limit=10"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body["data"]), want, "{body}");
    let (_, body) = get(&server, "/jaeger/api/services/checkout/operations").await;
    let ops = body["data"].as_array().unwrap();
    assert!(
        ops.iter().any(|o| o == "GET /cart") && ops.iter().any(|o| o == "SELECT carts"),
        "{body}"
    );

    // A bad span is refused beside a valid one (OTLP partial success).
    let now = crate::otlp::now_ns();
    let export = json!({"resourceSpans": [{"resource": {"attributes": [
        {"key": "k8s.cluster.name", "value": {"stringValue": "dev"}},
        {"key": "service.name", "value": {"stringValue": "cart"}}]},
      "scopeSpans": [{"spans": [
        {"traceId": "00112233445566778899aabbccddeeff", "spanId": "0011223344556677", "name": "ok",
         "startTimeUnixNano": now.to_string(), "endTimeUnixNano": (now + 1000).to_string()},
        {"traceId": "0011", "spanId": "0011223344556677", "name": "short id",
         "startTimeUnixNano": now.to_string(), "endTimeUnixNano": (now + 1000).to_string()}]}]}]});
    let r = server
        .client()
        .post(server.otlp_url("/v1/traces"))
        .json(&export)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let answer: Value = r.json().await.unwrap();
    let rejected = answer["partialSuccess"]["rejectedSpans"].to_string();
    assert_eq!(rejected.trim_matches('"'), "1", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("trace_id"),
        "{answer}"
    );

    // A Zipkin v2 JSON batch round-trips; a bad span beside it is a 400 naming it, the rest kept.
    let ts = now / 1_000;
    let zipkin = json!([
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "a2fb4a1d1a96d312", "name": "get /pay",
         "kind": "SERVER", "timestamp": ts, "duration": 2500,
         "localEndpoint": {"serviceName": "payments"}, "tags": {"http.method": "GET", "error": "declined"},
         "annotations": [{"timestamp": ts + 10, "value": "charge"}]},
        {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "b2fb4a1d1a96d312", "parentId": "a2fb4a1d1a96d312",
         "name": "charge", "kind": "CLIENT", "timestamp": ts + 5, "duration": 1000,
         "localEndpoint": {"serviceName": "payments"}, "remoteEndpoint": {"serviceName": "bank", "port": 443}},
        {"traceId": "zz", "id": "c2fb4a1d1a96d312", "timestamp": ts}]);
    let r = server
        .client()
        .post(server.url("/api/v2/spans"))
        .header("X-Tributary-Cluster", "prod-eu")
        .json(&zipkin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("spans[2]: traceId"));
    let (status, body) = get(&server, "/jaeger/api/traces/463ac35c9f6413ad48485a3953bb6124").await;
    assert_eq!(status, 200, "{body}");
    let spans = body["data"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{body}");
    let root = spans.iter().find(|s| s["operationName"] == "get /pay").unwrap();
    assert_eq!(
        (root["startTime"].as_u64(), root["duration"].as_u64()),
        (Some(ts), Some(2500))
    );
    assert!(root["tags"].to_string().contains(r#""key":"error""#), "{root}");
    assert!(root["logs"][0]["fields"].to_string().contains("charge"), "{root}");
    let pid = root["processID"].as_str().unwrap();
    assert_eq!(body["data"][0]["processes"][pid]["serviceName"], "payments");

    // kill -9: every acknowledged span is back after the WAL replays, and again after a flush.
    server.kill9();
    server.respawn_on_same_port().await;
    for (s, cluster) in &sent {
        check_trace(&server, s, cluster).await;
    }
    let (status, _) = get(&server, "/api/traces/00112233445566778899aabbccddeeff").await;
    assert_eq!(status, 200);
    let r = server
        .client()
        .post(server.url("/api/v1/admin/flush"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    server.kill9();
    server.respawn_on_same_port().await;
    for (s, cluster) in &sent {
        check_trace(&server, s, cluster).await;
    }
}

/// A token's read scope holds for both trace APIs: a trace of another cluster is not found, a
/// search and the service list see only the token's clusters.
#[tokio::test]
async fn trace_reads_are_scoped_to_the_tokens_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::harness::write_file(
        dir.path(),
        "auth.toml",
        "[auth]\nrequired = true\n[[auth.tokens]]\ntoken = \"writer\"\nwrite = \"*\"\n\
         [[auth.tokens]]\ntoken = \"dev-reader\"\nread = [\"dev\"]\n",
    );
    let server = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let now = crate::otlp::now_ns();
    for (cluster, service, trace) in [("dev", "cart", "11"), ("prod", "billing", "22")] {
        let export = json!({"resourceSpans": [{"resource": {"attributes": [
            {"key": "k8s.cluster.name", "value": {"stringValue": cluster}},
            {"key": "service.name", "value": {"stringValue": service}}]},
          "scopeSpans": [{"spans": [{"traceId": trace.repeat(16), "spanId": trace.repeat(8), "name": "op",
             "startTimeUnixNano": now.to_string(), "endTimeUnixNano": (now + 1000).to_string()}]}]}]});
        let r = server
            .client()
            .post(server.url("/v1/traces"))
            .bearer_auth("writer")
            .json(&export)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let get = |path: String| {
        let (client, url) = (server.client(), server.url(&path));
        async move {
            let r = client.get(url).bearer_auth("dev-reader").send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get(format!("/api/traces/{}", "11".repeat(16))).await.0, 200);
    assert_eq!(get(format!("/api/traces/{}", "22".repeat(16))).await.0, 404);
    assert_eq!(get(format!("/jaeger/api/traces/{}", "22".repeat(16))).await.0, 404);
    let (_, search) = get("/api/search?q=%7B%7D".into()).await;
    assert!(
        search.contains(&"11".repeat(16)) && !search.contains(&"22".repeat(16)),
        "{search}"
    );
    let (_, services) = get("/jaeger/api/services".into()).await;
    assert!(services.contains("cart") && !services.contains("billing"), "{services}");
    // Without a token: 401.
    let r = server.client().get(server.url("/api/search")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// kill -9 under load, flushes racing the writes: every span whose export was answered 200 is
/// found after the restart (WAL replay and Parquet together), each trace whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_during_span_ingest_loses_no_acknowledged_span() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const WRITERS: usize = 4;
    const SPANS: usize = 3;
    let mut server = TestServer::start().await;
    let t0 = crate::otlp::now_ns() as i64 - 60_000_000_000;
    let url = server.url("/v1/traces");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for seq in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let trace = format!("{w:02x}{seq:030x}");
                let start = t0 + seq as i64 * 1_000_000;
                let spans: Vec<Value> = (0..SPANS)
                    .map(|s| {
                        json!({"traceId": trace, "spanId": format!("{:016x}", s + 1), "name": format!("op{s}"),
                               "parentSpanId": if s == 0 { String::new() } else { format!("{s:016x}") },
                               "startTimeUnixNano": (start + s as i64).to_string(),
                               "endTimeUnixNano": (start + 1000).to_string()})
                    })
                    .collect();
                let export = json!({"resourceSpans": [{"resource": {"attributes": [
                    {"key": "k8s.cluster.name", "value": {"stringValue": "crash"}},
                    {"key": "service.name", "value": {"stringValue": format!("writer-{w}")}}]},
                    "scopeSpans": [{"spans": spans}]}]});
                match client.post(&url).json(&export).send().await {
                    Ok(r) if r.status().as_u16() == 200 => acked.lock().push(trace),
                    // The server died mid-request: not acknowledged, free to be lost.
                    _ => break,
                }
            }
        }));
    }
    let flush_url = server.url("/api/v1/admin/flush");
    let flush_stop = stop.clone();
    let flusher = tokio::spawn(async move {
        while !flush_stop.load(Ordering::Relaxed) {
            let _ = reqwest::Client::new().post(&flush_url).send().await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });
    let probe = acked.clone();
    crate::harness::eventually(std::time::Duration::from_secs(60), "acknowledged traces", || {
        let n = probe.lock().len();
        async move { (n >= 1_500).then_some(()) }
    })
    .await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    flusher.await.unwrap();

    server.respawn_on_same_port().await;
    let acked = acked.lock().clone();
    let (start, end) = (t0 / 1_000_000_000 - 1, crate::otlp::now_ns() / 1_000_000_000 + 1);
    let (status, body) = get(
        &server,
        &format!("/api/search?q=%7B%7D&limit=1000000&start={start}&end={end}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found: std::collections::HashMap<&str, u64> = body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["traceID"].as_str().unwrap(),
                t["spanSet"]["matched"].as_u64().unwrap(),
            )
        })
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|t| found.get(t.as_str()) != Some(&(SPANS as u64)))
        .take(5)
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged traces, some lost or cut: {lost:?}",
        acked.len()
    );
    eprintln!("{} acknowledged traces all whole after kill -9", acked.len());
}
