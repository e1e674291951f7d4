use super::*;
use crate::decode::Kind;

/// Found by the `wal_record` fuzz target: a record claiming a 2.8 GB body must not allocate it.
fn no_quotas() -> Quotas {
    Quotas::new(&Default::default(), Arc::new(quota::SystemClock::new()))
}

#[test]
fn replay_refuses_a_snappy_length_the_body_cannot_hold() {
    let head = Head::new();
    let err = replay_record(
        &head,
        &IngestConfig::default(),
        &no_quotas(),
        &[1, 1, 0, 0, 0, 0, 218, 194, 204, 204, 14],
    )
    .unwrap_err();
    assert!(err.contains("too large") || err.contains("snappy"), "{err}");
}

#[test]
fn replay_bound_admits_the_densest_snappy() {
    // 1 MiB of zeros compresses to ~48 KiB: well inside the 22x bound.
    let body = snap::raw::Encoder::new().compress_vec(&vec![0u8; 1 << 20]).unwrap();
    let bound = body.len() * 22 + 64;
    assert!(decode::snappy_block(&body, bound).is_ok());
}

/// What a frozen head holds: each float series' labels, and each log record's stream and body.
fn contents(head: &Head) -> (Vec<String>, Vec<String>) {
    let block = head.freeze();
    let mut series: Vec<String> = block.decoded().into_iter().map(|s| s.labels.to_string()).collect();
    series.sort();
    let mut logs: Vec<String> = block
        .signals
        .logs
        .iter()
        .map(|r| format!("{} {}", r.labels, r.body))
        .collect();
    logs.sort();
    (series, logs)
}

const METRICS_JSON: &str = r#"{"resourceMetrics":[{"resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"api"}},{"key":"k8s.pod.name","value":{"stringValue":"p1"}}]},
    "scopeMetrics":[{"metrics":[{"name":"latency","unit":"s",
    "gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1.5}]}}]}]}]}"#;

const LOGS_JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[
    {"key":"service.name","value":{"stringValue":"api"}}]},
    "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"hello"}}]}]}]}"#;

/// The WAL record's promise: replay reproduces what was acknowledged. OTLP metrics and logs are
/// acknowledged under one translation (suffixes, a promoted attribute, `service.name` as a
/// stream label), the configuration then changes every one of those settings, and the reopened
/// ingester's head holds exactly the series and streams that were acknowledged.
#[tokio::test]
async fn replay_translates_with_the_settings_the_write_was_acknowledged_with() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.otlp.add_metric_suffixes = true;
    cfg.otlp.promote_resource_attributes = vec!["k8s.pod.name".into()];
    cfg.otlp.log_stream_attributes = vec!["service.name".into()];
    let ctx = ClusterContext {
        token_cluster: None,
        header_cluster: Some("c1".into()),
    };

    let ing = Ingester::open(cfg.clone(), dir.path(), storage.clone()).await.unwrap();
    let metrics = Body::otlp_http(Kind::OtlpMetrics, METRICS_JSON.into(), "application/json", "").unwrap();
    let outcome = ing.write(ctx.clone(), metrics).await.unwrap();
    assert_eq!((outcome.accepted.points, outcome.rejected.points), (1, 0));
    // The gRPC path: a request already parsed.
    let logs: tributary_proto::otlp::collector::logs::v1::ExportLogsServiceRequest =
        decode::otlp::parse(LOGS_JSON.as_bytes(), decode::otlp::BodyFormat::Json).unwrap();
    let outcome = ing.write(ctx.clone(), Body::otlp_logs_request(logs)).await.unwrap();
    assert_eq!((outcome.accepted.log_records, outcome.rejected.log_records), (1, 0));
    let acknowledged = contents(&ing.head());
    assert_eq!(
        acknowledged.0,
        [
            r#"latency_seconds{cluster="c1", job="api", k8s_pod_name="p1"}"#,
            r#"target_info{cluster="c1", job="api", k8s_pod_name="p1"}"#,
        ],
        "the live translation"
    );
    assert_eq!(acknowledged.1, [r#"{cluster="c1", service_name="api"} hello"#]);
    // Crash: the WAL is left as it is, nothing flushed.
    ing.wal.close().await.unwrap();
    drop(ing);

    let mut changed = cfg.clone();
    changed.otlp.add_metric_suffixes = false;
    changed.otlp.promote_resource_attributes = vec![];
    changed.otlp.log_stream_attributes = vec!["k8s.namespace.name".into()];
    let ing = Ingester::open(changed, dir.path(), storage).await.unwrap();
    assert_eq!(
        contents(&ing.head()),
        acknowledged,
        "replay must reproduce what was acknowledged"
    );
    ing.wal.close().await.unwrap();
}

/// Records written before translation settings were stored (WAL record version 1) still
/// replay, translated with the current configuration, as the release that wrote them did.
#[tokio::test]
async fn version_1_records_replay_with_the_current_configuration() {
    let head = Head::new();
    let mut cfg = IngestConfig::default();
    cfg.otlp.add_metric_suffixes = false;
    cfg.otlp.promote_resource_attributes = vec![];
    let req: tributary_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest =
        decode::otlp::parse(METRICS_JSON.as_bytes(), decode::otlp::BodyFormat::Json).unwrap();
    // Version 1: version, kind, no token cluster, header cluster "c1", then the body.
    let mut v1 = vec![1, Kind::OtlpMetrics as u8, 0, 0, 2, 0];
    v1.extend_from_slice(b"c1");
    v1.extend_from_slice(&decode::otlp::to_wal_body(&req).unwrap());
    replay_record(&head, &cfg, &no_quotas(), &v1).unwrap();
    assert_eq!(
        contents(&head).0,
        [
            r#"latency{cluster="c1", job="api"}"#,
            r#"target_info{cluster="c1", job="api", k8s_pod_name="p1"}"#
        ]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A fresh storage and ingester in `dir`, and the cluster context writes use.
async fn open_ingester(dir: &Path) -> (Arc<Storage>, Arc<Ingester>, ClusterContext) {
    let storage = Storage::open(&Default::default(), dir).await.unwrap();
    let ing = Ingester::open(IngestConfig::default(), dir, storage.clone())
        .await
        .unwrap();
    let ctx = ClusterContext {
        token_cluster: None,
        header_cluster: Some("c1".into()),
    };
    (storage, ing, ctx)
}

/// A flush killed after its manifest commit but before the WAL trim: the restarted ingester
/// must not replay (and later publish again) what the manifest already covers. Simulated by
/// putting back the WAL directory as it was before the flush.
#[tokio::test]
async fn a_crash_between_commit_and_wal_trim_publishes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IngestConfig::default();
    let (_, ing, ctx) = open_ingester(dir.path()).await;
    let metrics = Body::otlp_http(Kind::OtlpMetrics, METRICS_JSON.into(), "application/json", "").unwrap();
    ing.write(ctx.clone(), metrics).await.unwrap();
    let before = dir.path().join("wal-before-flush");
    copy_dir(&dir.path().join("wal"), &before);
    let flushed = ing.flush().await.unwrap();
    assert_eq!(flushed.samples, 2, "{flushed:?}");
    ing.wal.close().await.unwrap();
    drop(ing);
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();
    std::fs::rename(&before, dir.path().join("wal")).unwrap();

    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let ing = Ingester::open(cfg.clone(), dir.path(), storage.clone()).await.unwrap();
    assert!(ing.head().active_is_empty(), "published segments are not replayed");
    assert!(ing.replay_stats().published_segments >= 1, "{:?}", ing.replay_stats());
    assert_eq!(storage.stats().rows, 2, "one copy of each sample is live");
    // New writes still land in segments the mark does not cover, and survive a crash.
    let metrics = Body::otlp_http(
        Kind::OtlpMetrics,
        METRICS_JSON.replace("1700000000", "1700000100").into(),
        "application/json",
        "",
    )
    .unwrap();
    ing.write(ctx, metrics).await.unwrap();
    ing.wal.close().await.unwrap();
    drop(ing);
    let ing = Ingester::open(cfg, dir.path(), storage.clone()).await.unwrap();
    assert_eq!(ing.head().active_samples(), 2, "records after the mark replay");
    ing.wal.close().await.unwrap();
}

/// A flush killed after its uploads but before its commit: nothing of it is visible, the
/// replayed WAL is flushed once, and the stray upload is not data.
#[tokio::test]
async fn uploads_without_a_commit_are_invisible_and_the_replay_is_published_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = IngestConfig::default();
    let (storage, ing, ctx) = open_ingester(dir.path()).await;
    let metrics = Body::otlp_http(Kind::OtlpMetrics, METRICS_JSON.into(), "application/json", "").unwrap();
    ing.write(ctx, metrics).await.unwrap();
    let block = ing.head().freeze();
    let mut tx = storage.transaction();
    tx.write_series(&block.series_inputs()).await.unwrap();
    drop(tx); // killed before the commit
    assert_eq!(storage.stats().rows, 0);
    ing.wal.close().await.unwrap();
    drop(ing);

    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    assert_eq!(storage.stats().rows, 0, "a stray upload is not in the manifest");
    let ing = Ingester::open(cfg, dir.path(), storage.clone()).await.unwrap();
    assert_eq!(ing.head().active_samples(), 2);
    ing.flush().await.unwrap();
    assert_eq!(storage.stats().rows, 2);
    assert_eq!(storage.stats().files, 1);
    ing.wal.close().await.unwrap();
}

/// A snappy remote-write 1.0 body: one series per `(name, id, timestamps)`.
fn remote_write(series: &[(&str, u32, &[i64])]) -> Body {
    use prost::Message as _;
    use tributary_proto::prometheus as pb;
    let timeseries = series
        .iter()
        .map(|(name, id, ts)| pb::TimeSeries {
            labels: vec![
                pb::Label {
                    name: "__name__".into(),
                    value: name.to_string(),
                },
                pb::Label {
                    name: "id".into(),
                    value: id.to_string(),
                },
            ],
            samples: ts
                .iter()
                .map(|&t| pb::Sample {
                    timestamp: t,
                    value: 1.0,
                })
                .collect(),
            exemplars: vec![],
            histograms: vec![],
        })
        .collect();
    let raw = pb::WriteRequest {
        timeseries,
        metadata: vec![],
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    Body::remote_write(body.into(), None, None).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Per-cluster limits at the ingester: a capped cluster's new series and a sample from the far
/// future are refused while the rest of the request is stored (a partial write); series already
/// active keep flowing; the rate limit refuses a whole write; and a restart replays exactly what
/// was acknowledged, although the restarted ingester has no limits at all.
#[tokio::test]
async fn limits_store_the_valid_rest_and_replay_restores_exactly_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.limits.max_series_per_cluster = 2;
    cfg.limits.overrides = vec![crate::config::LimitsOverride {
        clusters: "slow-*".into(),
        ingestion_rate: Some(1.0),
        ingestion_burst: Some(3),
        ..Default::default()
    }];
    let ctx = |c: &str| ClusterContext {
        token_cluster: None,
        header_cluster: Some(c.into()),
    };
    let now = now_ms();
    let ing = Ingester::open(cfg.clone(), dir.path(), storage.clone()).await.unwrap();
    let o = ing
        .write(
            ctx("c1"),
            remote_write(&[("m", 1, &[now]), ("m", 2, &[now, now + 3_600_000]), ("m", 3, &[now])]),
        )
        .await
        .unwrap();
    assert_eq!((o.accepted.series, o.accepted.samples), (2, 2), "{o:?}");
    assert_eq!((o.rejected.series, o.rejected.samples), (1, 2), "{o:?}");
    let msg = o.rejected.message();
    assert!(
        msg.contains("max_series_per_cluster") && msg.contains("max_future"),
        "{msg}"
    );
    // The same series again: the active ones flow, the third is still refused.
    let o = ing
        .write(ctx("c1"), remote_write(&[("m", 1, &[now + 1]), ("m", 3, &[now + 1])]))
        .await
        .unwrap();
    assert_eq!((o.accepted.samples, o.rejected.series), (1, 1), "{o:?}");
    // Rate: three samples fit the burst, the fourth write is refused whole with its delay.
    ing.write(ctx("slow-1"), remote_write(&[("r", 1, &[now, now + 1, now + 2])]))
        .await
        .unwrap();
    let e = ing
        .write(ctx("slow-1"), remote_write(&[("r", 1, &[now + 3])]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");
    assert_eq!(e.retry_after_secs(), Some(1));
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    ing.metrics().register(&mut registry);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"tributary_ingest_limited_total{cluster="c1",limit="max_series_per_cluster"} 2"#,
        r#"tributary_ingest_limited_total{cluster="c1",limit="max_future"} 1"#,
        r#"tributary_ingest_limited_total{cluster="slow-1",limit="ingestion_rate"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // The fleet page counts what was stored: refused items are not in it (c1's writes had
    // refusals; slow-1's first had none, and its usage counted for the rate is reused).
    let stored: Vec<(String, u64)> = ing
        .fleet_status()
        .clusters
        .into_iter()
        .map(|c| (c.cluster, c.samples_total))
        .collect();
    assert_eq!(stored, [("c1".to_string(), 3), ("slow-1".to_string(), 3)]);
    let acknowledged = contents(&ing.head());
    assert_eq!(
        acknowledged.0,
        [
            r#"m{cluster="c1", id="1"}"#,
            r#"m{cluster="c1", id="2"}"#,
            r#"r{cluster="slow-1", id="1"}"#
        ]
    );
    ing.wal.close().await.unwrap();
    drop(ing);

    // Replay applies no limit, yet restores exactly what was acknowledged: no id="3", no
    // future sample, and the rate-limited write was never in the WAL.
    let ing = Ingester::open(IngestConfig::default(), dir.path(), storage.clone())
        .await
        .unwrap();
    assert_eq!(ing.head().active_samples(), 2 + 1 + 3);
    assert_eq!(contents(&ing.head()), acknowledged);
    ing.wal.close().await.unwrap();
}

/// Replay of a capped cluster counts its series as active again: the cap holds across a restart.
#[tokio::test]
async fn replayed_series_count_against_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.limits.max_series_per_metric = 1;
    let ctx = ClusterContext {
        token_cluster: None,
        header_cluster: Some("c".into()),
    };
    let now = now_ms();
    let ing = Ingester::open(cfg.clone(), dir.path(), storage.clone()).await.unwrap();
    ing.write(ctx.clone(), remote_write(&[("m", 1, &[now])])).await.unwrap();
    ing.wal.close().await.unwrap();
    drop(ing);
    let ing = Ingester::open(cfg, dir.path(), storage.clone()).await.unwrap();
    let o = ing
        .write(ctx, remote_write(&[("m", 1, &[now + 1]), ("m", 2, &[now + 1])]))
        .await
        .unwrap();
    assert_eq!((o.accepted.samples, o.rejected.series), (1, 1), "{o:?}");
    ing.wal.close().await.unwrap();
}

/// A snappy remote-write 1.0 body of HA-pair series `(replica, id)`: each with the external
/// labels `cluster` and `__replica__` (none when `replica` is empty).
fn remote_write_replica(series: &[(&str, u32)], t: i64) -> Body {
    use prost::Message as _;
    use tributary_proto::prometheus as pb;
    let label = |name: &str, value: &str| pb::Label {
        name: name.into(),
        value: value.into(),
    };
    let timeseries = series
        .iter()
        .map(|&(replica, id)| {
            let mut labels = vec![label("__name__", "up")];
            if !replica.is_empty() {
                labels.push(label("__replica__", replica));
            }
            labels.extend([label("cluster", "c1"), label("id", &id.to_string())]);
            pb::TimeSeries {
                labels,
                samples: vec![pb::Sample {
                    timestamp: t,
                    value: 1.0,
                }],
                exemplars: vec![],
                histograms: vec![],
            }
        })
        .collect();
    let raw = pb::WriteRequest {
        timeseries,
        metadata: vec![],
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    Body::remote_write(body.into(), None, None).unwrap()
}

/// HA pairs at the ingester: the first replica is elected and stored without its replica label,
/// the other's series are dropped (counted as deduplicated, not refused), series sent by raw key
/// (the head knows them) are decided by their remembered replica, series without a replica label
/// pass, and a restart with the tracker off replays exactly what was acknowledged.
#[tokio::test]
async fn ha_pairs_store_one_replica_without_its_label_and_replay_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.ha_tracker.enabled = true;
    let ctx = ClusterContext::default();
    let ing = Ingester::open(cfg.clone(), dir.path(), storage.clone()).await.unwrap();
    let t = now_ms();
    for round in 0..2 {
        // The second round's series of "a" are in the head: sent by raw key.
        let o = ing
            .write(ctx.clone(), remote_write_replica(&[("a", 1), ("a", 2)], t + round))
            .await
            .unwrap();
        assert_eq!((o.accepted.samples, o.deduplicated), (2, 0), "round {round}: {o:?}");
        let o = ing
            .write(ctx.clone(), remote_write_replica(&[("b", 1), ("b", 2)], t + round))
            .await
            .unwrap();
        assert_eq!((o.accepted.samples, o.deduplicated), (0, 2), "round {round}: {o:?}");
        assert!(o.rejected.is_empty());
    }
    // Series without a replica label pass untouched, beside a dropped replica's (the WAL record
    // keeps the dropped pair).
    let o = ing
        .write(ctx.clone(), remote_write_replica(&[("", 3), ("b", 4)], t))
        .await
        .unwrap();
    assert_eq!((o.accepted.samples, o.deduplicated), (1, 1), "{o:?}");
    assert_eq!(ing.head().active_samples(), 5);
    let acknowledged = contents(&ing.head());
    assert_eq!(
        acknowledged.0,
        [
            r#"up{cluster="c1", id="1"}"#,
            r#"up{cluster="c1", id="2"}"#,
            r#"up{cluster="c1", id="3"}"#
        ]
    );
    ing.wal.close().await.unwrap();
    drop(ing);

    cfg.ha_tracker.enabled = false;
    let ing = Ingester::open(cfg, dir.path(), storage).await.unwrap();
    assert_eq!(contents(&ing.head()), acknowledged, "replay repeats the HA step");
    ing.wal.close().await.unwrap();
}

/// A write refused for its token gets a rejection-log line (rate-limited like the others)
/// under the token's name when the token is known (403), else under `unauthenticated` (401);
/// an accepted token logs nothing.
#[tokio::test]
async fn auth_refusals_reach_the_rejection_log() {
    use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
    use tributary_storage::auth::{Auth, AuthConfig, TokenEntry};
    let dir = tempfile::tempdir().unwrap();
    let (_storage, ing, _) = open_ingester(dir.path()).await;
    let token = |token: &str, name: &str, write: Option<&str>| TokenEntry {
        token: Some(token.into()),
        name: Some(name.into()),
        write: write.map(String::from),
        ..TokenEntry::default()
    };
    let auth = Auth::open(&AuthConfig {
        required: true,
        tokens: vec![
            token("w-secret", "writer", Some("prod")),
            token("r-secret", "dashboards", None),
        ],
        ..AuthConfig::default()
    })
    .unwrap();
    let bearer = |t: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static(t));
        h
    };
    let write = |h: &HeaderMap| ing.authenticate(Kind::PromRemoteWriteV1, h, None, &auth);
    // Logged now: the same pair right after is inside its window (suppressed).
    let just_logged = |who: &str, reason: &'static str| ing.rejections.admit(who, reason, Instant::now()).is_none();

    assert!(write(&bearer("Bearer w-secret")).is_ok());
    assert!(!just_logged("writer", "forbidden"));

    let e = write(&bearer("Bearer nope")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(just_logged(rejection::UNAUTHENTICATED, "unauthorized"));
    assert!(write(&HeaderMap::new()).is_err());

    let e = write(&bearer("Bearer r-secret")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Forbidden);
    assert!(just_logged("dashboards", "forbidden"));
    // Never under the token itself.
    assert!(!just_logged("r-secret", "forbidden"));
}

/// A Loki push (JSON) of `lines` lines of 1 KiB, stamped now.
fn loki_lines(lines: usize) -> Body {
    let ns = now_ms() * 1_000_000;
    let values: Vec<_> = (0..lines)
        .map(|i| serde_json::json!([(ns + i as i64).to_string(), "x".repeat(1024)]))
        .collect();
    let body = serde_json::json!({"streams": [{"stream": {"job": "shipper"}, "values": values}]});
    Body::loki_push(body.to_string().into(), "application/json", "").unwrap()
}

/// A log shipper faster than flushes: once the head holds `hard_limit_log_bytes` of records
/// (the active part and the blocks a flush writes), a write carrying logs waits for a flush to
/// make room, and is refused with a retryable 429 naming the limit (keeping nothing) when none
/// does in time; a metrics write is not held back.
#[tokio::test]
async fn logs_past_the_hard_limit_wait_for_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.head.hard_limit_log_bytes = 64 << 10;
    let ing = Ingester::open(cfg, dir.path(), storage.clone()).await.unwrap();
    let ctx = ClusterContext {
        token_cluster: None,
        header_cluster: Some("c1".into()),
    };
    let mut accepted = 0;
    let refused = loop {
        match ing.write(ctx.clone(), loki_lines(10)).await {
            Ok(o) => accepted += o.accepted.log_records,
            Err(e) => break e,
        }
        assert!(accepted < 1000, "never refused");
    };
    assert_eq!(refused.kind(), crate::error::ErrorKind::TooManyRequests, "{refused}");
    assert!(refused.to_string().contains("the limit is 65536"), "{refused}");
    let held = ing.head().total_log_bytes();
    assert!(held >= 64 << 10, "{held}");
    ing.write(ctx.clone(), remote_write(&[("up", 1, &[now_ms()])]))
        .await
        .unwrap();

    // A write arriving now waits; the flush that publishes the held records lets it in.
    let waiting = tokio::spawn({
        let (ing, ctx) = (ing.clone(), ctx.clone());
        async move { ing.write(ctx, loki_lines(10)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the write did not wait for room");
    // The refused write kept nothing: the flush writes exactly what was accepted.
    let flushed = ing.flush().await.unwrap();
    assert_eq!(flushed.log_records as u64, accepted);
    let o = waiting.await.unwrap().unwrap();
    assert_eq!(o.accepted.log_records, 10);
}

/// An OTLP/JSON traces export of one trace (a root and a child) from cluster `prod-eu`.
const TRACES_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"checkout"}},
  {"key":"k8s.cluster.name","value":{"stringValue":"prod-eu"}}]},
  "scopeSpans":[{"scope":{"name":"lib"},"spans":[
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /cart","kind":2,
   "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000",
   "status":{"code":2,"message":"boom"}},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173","parentSpanId":"eee19b7ec3c1b174",
   "name":"SELECT","kind":3,"startTimeUnixNano":"1700000000100000000","endTimeUnixNano":"1700000000200000000"},
  {"traceId":"","spanId":"eee19b7ec3c1b172","name":"no trace","startTimeUnixNano":"1700000000100000000",
   "endTimeUnixNano":"1700000000200000000"}]}]}]}"#;

/// Spans go the one write path: WAL, head, replay after a crash, flush to the spans table; a
/// span without a trace id is refused beside them.
#[tokio::test]
async fn spans_are_acknowledged_replayed_and_flushed_once() {
    use tributary_storage::read::{SpanRequest, TraceSource};
    let dir = tempfile::tempdir().unwrap();
    let (storage, ing, ctx) = open_ingester(dir.path()).await;
    let body = Body::otlp_http(Kind::OtlpTraces, TRACES_JSON.into(), "application/json", "").unwrap();
    let outcome = ing.write(ctx, body).await.unwrap();
    assert_eq!((outcome.accepted.spans, outcome.rejected.spans), (2, 1), "{outcome:?}");
    assert!(
        outcome.rejected.reasons[0].contains("trace_id has 0 bytes"),
        "{outcome:?}"
    );
    let all = SpanRequest::range(0, i64::MAX);
    let live = ing.head().select_spans(&all).await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].cluster, "prod-eu");

    // kill -9: the WAL replays the same spans.
    ing.wal.close().await.unwrap();
    drop(ing);
    let ing = Ingester::open(IngestConfig::default(), dir.path(), storage.clone())
        .await
        .unwrap();
    assert_eq!(
        ing.head().select_spans(&all).await.unwrap(),
        live,
        "replay gives the acknowledged spans"
    );

    ing.flush().await.unwrap();
    assert_eq!(storage.trace_source().select_spans(&all).await.unwrap(), live);
    // The flushed WAL does not replay: the spans are stored once.
    ing.wal.close().await.unwrap();
    drop(ing);
    let ing = Ingester::open(IngestConfig::default(), dir.path(), storage.clone())
        .await
        .unwrap();
    assert!(ing.head().select_spans(&all).await.unwrap().is_empty());
    ing.wal.close().await.unwrap();
}

/// A cluster over its `span_bytes_rate` has its export refused whole with a retryable 429
/// and its delay; the fleet tracker counts the spans it stored.
#[tokio::test]
async fn span_bytes_rate_refuses_a_whole_export() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&Default::default(), dir.path()).await.unwrap();
    let mut cfg = IngestConfig::default();
    cfg.limits.span_bytes_rate = 100.0;
    cfg.limits.span_bytes_burst = 1;
    let ing = Ingester::open(cfg, dir.path(), storage).await.unwrap();
    let ctx = || ClusterContext {
        token_cluster: None,
        header_cluster: None,
    };
    let body = || Body::otlp_http(Kind::OtlpTraces, TRACES_JSON.into(), "application/json", "").unwrap();
    // A full bucket admits one export larger than the burst, and is then in debt.
    let o = ing.write(ctx(), body()).await.unwrap();
    assert_eq!(o.accepted.spans, 2);
    let e = ing.write(ctx(), body()).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");
    assert!(e.to_string().contains("span_bytes_rate"), "{e}");
    assert!(e.retry_after_secs().is_some_and(|s| s >= 1), "{e}");
    let status = ing.fleet_status();
    let c = status.clusters.iter().find(|c| c.cluster == "prod-eu").unwrap();
    assert_eq!((c.spans_total, c.samples_total), (2, 0));
    ing.wal.close().await.unwrap();
}
