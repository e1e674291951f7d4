//! Prometheus reading Tributary: through `remote_read` (Prometheus 2.42's client asks for the
//! sampled answer; its streaming client came with 3.0), through `/federate` scraped with
//! `honor_labels`, and the streamed XOR-chunk answer compared byte for byte with what
//! Prometheus's own remote-read server answers for the same samples.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use prost::Message;
use serde_json::Value;
use tributary_proto::prometheus::read::{
    ChunkedReadResponse, LabelMatcher, MatcherType, Query, ReadRequest, ResponseType,
};

use crate::harness::{
    Proc, TestSeries, TestServer, eventually, post_remote_write, prom_query_range, remote_write_body, require_program,
    result, start_prometheus_ready, values_close, write_file,
};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A ready Prometheus with `config` (see `harness::start_prometheus_ready`) and its base URL.
async fn start_prometheus(dir: &Path, config: &str, extra: &[&str]) -> (Proc, String) {
    let bin = require_program("prometheus", "prometheus");
    let cfg = write_file(dir, "prometheus.yml", config);
    let (proc, port) = start_prometheus_ready(|port| {
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        Proc(child)
    })
    .await;
    (proc, format!("http://127.0.0.1:{port}"))
}

/// Series labels (cluster included) → points, for comparing answers whatever their order.
fn canonical(v: &Value) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for s in result(v) {
        let m: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
        let points = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].to_string(), p[1].as_str().unwrap().to_string()))
            .collect();
        out.insert(format!("{m:?}"), points);
    }
    out
}

fn assert_same(what: &str, prom: &Value, trib: &Value) {
    let (p, t) = (canonical(prom), canonical(trib));
    assert!(!t.is_empty(), "{what}: Tributary answered nothing: {trib}");
    assert_eq!(
        p.keys().collect::<Vec<_>>(),
        t.keys().collect::<Vec<_>>(),
        "{what}: series differ"
    );
    for (k, pv) in &p {
        let tv = &t[k];
        let same = pv.len() == tv.len() && pv.iter().zip(tv).all(|(a, b)| a.0 == b.0 && values_close(&a.1, &b.1));
        assert!(
            same,
            "{what} {k}:\n  through prometheus {pv:?}\n  tributary          {tv:?}"
        );
    }
}

/// Two clusters of a counter and a gauge, 15 s apart over the last 20 minutes.
fn fleet_series(now: i64) -> Vec<TestSeries<'static>> {
    let start = now - 20 * 60_000;
    let mut out = Vec::new();
    for (cluster, base) in [("east", 1.0), ("west", 50.0)] {
        let counter = (0..80)
            .map(|i| (start + i * 15_000, base * i as f64 + 0.5 * (i % 3) as f64))
            .collect();
        let gauge = (0..80)
            .map(|i| (start + i * 15_000 + (i % 5) * 11, base + (i as f64 * 0.37).sin()))
            .collect();
        out.push((
            vec![("__name__", "rr_requests_total"), ("cluster", cluster), ("job", "api")],
            counter,
        ));
        out.push((
            vec![("__name__", "rr_temperature"), ("cluster", cluster), ("job", "api")],
            gauge,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_queries_through_remote_read_and_agrees() {
    let trib = TestServer::start().await;
    let now = now_ms();
    let body = remote_write_body(&fleet_series(now));
    assert_eq!(post_remote_write(&trib.url("/api/v1/write"), body, &[]).await.0, 204);

    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1h\nremote_read:\n  - url: {}\n    read_recent: true\n",
        trib.url("/api/v1/read")
    );
    let (_p, prom) = start_prometheus(tmp.path(), &config, &[]).await;

    // Evaluation times 7 ms off every sample: Prometheus 2.42's windows are closed, Tributary's
    // (Prometheus 3's) left-open, and only a sample on a window's edge tells them apart.
    let (start, end) = ((now - 25 * 60_000 + 7) as f64 / 1000.0, now as f64 / 1000.0);
    let base = trib.url("");
    let trib_base = base.trim_end_matches('/');
    for q in [
        "rr_requests_total",
        r#"rr_temperature{cluster="west"}"#,
        r#"rr_temperature{cluster=~"e.*"}"#,
        "sum by (cluster) (rate(rr_requests_total[2m]))",
        "max_over_time(rr_temperature[5m])",
    ] {
        for step in [15.0, 60.0] {
            let through = prom_query_range(&prom, q, start, end, step).await;
            let direct = prom_query_range(trib_base, q, start, end, step).await;
            assert_same(&format!("{q} step {step}"), &through, &direct);
        }
    }
}

/// With `auth.required`, Prometheus's `remote_read` and `/federate` scrape carry a token whose
/// read scope is one cluster: each sees that cluster only, whatever it selects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_read_and_federate_hold_prometheus_to_its_tokens_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_file(
        tmp.path(),
        "tributary.toml",
        "[auth]\nrequired = true\n[[auth.tokens]]\ntoken = \"writer\"\nwrite = \"*\"\n\
         [[auth.tokens]]\ntoken = \"east-reader\"\nread = [\"east\"]\n",
    );
    let trib = TestServer::start_with(&["--config", &config.to_string_lossy()]).await;
    let now = now_ms();
    let body = remote_write_body(&fleet_series(now));
    let writer = [("Authorization", "Bearer writer")];
    assert_eq!(
        post_remote_write(&trib.url("/api/v1/write"), body, &writer).await.0,
        204
    );

    let prom_config = format!(
        r#"global:
  scrape_interval: 1s
remote_read:
  - url: {read}
    read_recent: true
    authorization: {{credentials: east-reader}}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      "match[]": ['rr_temperature']
    authorization: {{credentials: east-reader}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"#,
        read = trib.url("/api/v1/read"),
        port = trib.port,
    );
    let (_p, prom) = start_prometheus(tmp.path(), &prom_config, &[]).await;
    let clusters = |q: &'static str| {
        let url = format!("{prom}/api/v1/query");
        let at = (now as f64 / 1000.0).to_string();
        async move {
            let v: Value = reqwest::Client::new()
                .get(url)
                .query(&[("query", q), ("time", &at)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let mut found: Vec<String> = result(&v)
                .iter()
                .map(|s| s["metric"]["cluster"].as_str().unwrap_or("").to_string())
                .collect();
            found.sort();
            Some(found)
        }
    };
    // Through remote_read: both metrics, every cluster asked for, only east answered.
    assert_eq!(clusters(r#"rr_requests_total{cluster=~".+"}"#).await.unwrap(), ["east"]);
    // Through /federate: the scrape took east's one series (Prometheus's own count of it).
    let scraped = eventually(Duration::from_secs(30), "a scrape of /federate", || {
        let url = format!("{prom}/api/v1/query");
        async move {
            let v: Value = reqwest::Client::new()
                .get(url)
                .query(&[("query", r#"scrape_samples_scraped{job="federate"}"#)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            result(&v).first()?["value"][1].as_str().map(str::to_string)
        }
    })
    .await;
    assert_eq!(scraped, "1");
    let scrape = reqwest::Client::new()
        .get(trib.url("/federate"))
        .query(&[("match[]", "rr_temperature")])
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 401, "no token, auth.required");
}

/// Scrapes `/federate` (gzip, as Prometheus asks for it) with `honor_labels`: Prometheus stores
/// the latest samples with their own timestamps and labels, `cluster` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_federate_and_agrees() {
    let trib = TestServer::start().await;
    let now = now_ms();
    let body = remote_write_body(&fleet_series(now));
    assert_eq!(post_remote_write(&trib.url("/api/v1/write"), body, &[]).await.0, 204);

    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      "match[]": ['{{__name__=~"rr_.*"}}']
    static_configs: [{{targets: ["127.0.0.1:{}"]}}]
"#,
        trib.port
    );
    let (_p, prom) = start_prometheus(tmp.path(), &config, &[]).await;
    let at = (now as f64 / 1000.0).to_string();
    let client = reqwest::Client::new();
    let instant = |base: String, q: &'static str| {
        let (client, at) = (client.clone(), at.clone());
        async move {
            client
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", q), ("time", &at)])
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()
        }
    };
    let query = r#"{__name__=~"rr_.*"}"#;
    let direct = instant(trib.url("").trim_end_matches('/').to_string(), query)
        .await
        .unwrap();
    assert_eq!(result(&direct).len(), 4, "{direct}");
    let federated = eventually(Duration::from_secs(30), "the federated series in Prometheus", || {
        let fut = instant(prom.clone(), query);
        async move { fut.await.filter(|v| result(v).len() == 4) }
    })
    .await;
    let key = |v: &Value| {
        let mut out: Vec<(String, String)> = result(v)
            .iter()
            .map(|s| {
                let mut m: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
                // The scrape adds its own `instance`; `job` comes from the exposition (honor_labels).
                m.remove("instance");
                (format!("{m:?}"), s["value"][1].as_str().unwrap().to_string())
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(key(&federated), key(&direct));
    // And the timestamps are the samples' own: the raw samples Prometheus stored.
    let raw = instant(prom.clone(), r#"rr_temperature{cluster="east"}[10m]"#)
        .await
        .unwrap();
    let stored: Vec<f64> = result(&raw)[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_f64().unwrap())
        .collect();
    let latest = fleet_series(now)
        .into_iter()
        .find(|(l, _)| l.contains(&("__name__", "rr_temperature")) && l.contains(&("cluster", "east")))
        .unwrap()
        .1
        .last()
        .unwrap()
        .0;
    assert_eq!(stored.last().copied(), Some(latest as f64 / 1000.0), "{raw}");
}

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
        let message = &body[used + 4..used + 4 + len];
        let crc = u32::from_be_bytes(body[used..used + 4].try_into().unwrap());
        assert_eq!(crc32c::crc32c(message), crc);
        out.push(ChunkedReadResponse::decode(message).unwrap());
        body = &body[used + 4 + len..];
    }
    out
}

async fn read_streamed(url: &str, query: Query) -> Vec<ChunkedReadResponse> {
    let req = ReadRequest {
        queries: vec![query],
        accepted_response_types: vec![ResponseType::StreamedXorChunks as i32],
    };
    let body = snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap();
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(
        r.headers()["content-type"],
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    frames(&r.bytes().await.unwrap())
}

/// The same samples written to Prometheus (its remote-write receiver) and to Tributary, read
/// back streamed from both: the same series, chunk bounds and chunk bytes, so Prometheus's
/// own XOR encoder is the reference for ours. The samples sit inside one 2 h head range and
/// number under 120, so Prometheus keeps them in one chunk, as we cut them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_are_the_bytes_prometheus_writes() {
    let trib = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (_p, prom) = start_prometheus(
        tmp.path(),
        "global:\n  scrape_interval: 1h\n",
        &["--web.enable-remote-write-receiver"],
    )
    .await;

    let window = (now_ms() / 7_200_000 - 1) * 7_200_000;
    // Regular, jittered and jumping timestamps (every delta-of-delta width); repeated, small,
    // large, negative and special values (every XOR case).
    let mut t = window;
    let mut samples = Vec::new();
    for i in 0..110i64 {
        t += match i % 11 {
            0 => 15_000,
            1 => 15_003,
            2 => 24_000,
            3 => 90_000,
            4 => 1,
            _ => 15_000,
        };
        let v = match i % 9 {
            0 | 1 => 42.0,
            2 => -(i as f64) * 1.5,
            3 => 1e6 + i as f64,
            4 => 1e-9 * i as f64,
            5 => f64::INFINITY,
            6 => 0.1 + i as f64,
            _ => (i as f64).sqrt(),
        };
        samples.push((t, v));
    }
    let series = vec![
        (vec![("__name__", "xor_probe"), ("cluster", "east")], samples.clone()),
        (
            vec![("__name__", "xor_probe"), ("cluster", "west")],
            samples[..7].to_vec(),
        ),
    ];
    for url in [format!("{prom}/api/v1/write"), trib.url("/api/v1/write")] {
        let (status, body) = post_remote_write(&url, remote_write_body(&series), &[]).await;
        assert!(status == 204 || status == 200, "{url}: {status} {body}");
    }
    let query = Query {
        start_timestamp_ms: window,
        end_timestamp_ms: window + 7_200_000,
        matchers: vec![LabelMatcher {
            r#type: MatcherType::Eq as i32,
            name: "__name__".into(),
            value: "xor_probe".into(),
        }],
        hints: None,
    };
    let theirs = read_streamed(&format!("{prom}/api/v1/read"), query.clone()).await;
    let ours = read_streamed(&trib.url("/api/v1/read"), query).await;
    let flatten = |frames: &[ChunkedReadResponse]| {
        frames
            .iter()
            .flat_map(|f| f.chunked_series.iter().map(move |s| (f.query_index, s.clone())))
            .collect::<Vec<_>>()
    };
    let (theirs, ours) = (flatten(&theirs), flatten(&ours));
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert_eq!(ours, theirs);
}
