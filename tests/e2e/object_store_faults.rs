//! Object storage that fails: the object-store suite on the S3 server and through the
//! fault-injecting proxy (retries must hide 5xx, throttling and resets), what a conditional
//! create whose answer is lost looks like to the client, and the gateway flushing, restarting
//! and answering queries while S3 fails, with every acknowledged sample stored exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ::object_store::path::Path;
use ::object_store::{Error as StoreError, ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use serde_json::Value;
use tributary_storage::config::StorageConfig;
use tributary_storage::test_util::{object_store_conformance, open_object_store};

use crate::fault_proxy::{Fault, FaultProxy, Rule};
use crate::harness::{S3Server, TestServer, post_remote_write, remote_write_body, result, run_python, write_file};

const T0: i64 = 1_700_000_000_000;

/// Fast retries, enough for one upload to meet several faults and still succeed, and few enough
/// that exhausting them takes about a second; a 1 s request timeout so a hung upload becomes a
/// retried timeout quickly.
const FAST_RETRIES: &str = "[storage]\nrequest_timeout = \"1s\"\n\n[storage.retry]\nmax_retries = 8\n\
     initial_backoff = \"20ms\"\nmax_backoff = \"100ms\"\nretry_timeout = \"20s\"\n";

/// A store on `endpoint` (moto or the proxy) under `s3://<bucket>/<prefix>`, with fast retries.
fn s3_store(endpoint: &str, bucket: &str, prefix: &str, request_timeout: Duration) -> Arc<dyn ObjectStore> {
    let mut cfg = StorageConfig {
        url: Some(format!("s3://{bucket}/{prefix}")),
        request_timeout,
        ..StorageConfig::default()
    };
    for (k, v) in [
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
    ] {
        cfg.options.insert(k.to_string(), v.to_string());
    }
    cfg.retry.max_retries = 6;
    cfg.retry.initial_backoff = Duration::from_millis(10);
    cfg.retry.max_backoff = Duration::from_millis(100);
    let dir = std::env::temp_dir();
    open_object_store(&cfg, &dir).expect("open S3 store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_suite_on_s3() {
    let s3 = S3Server::start("suite").await;
    let store = s3_store(&s3.endpoint, "suite", "direct", Duration::from_secs(30));
    object_store_conformance(store, "run").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_suite_through_5xx_throttling_and_resets() {
    let s3 = S3Server::start("faulty").await;
    let proxy = FaultProxy::start(&s3.endpoint).await;
    // Some of every kind of request fail, in a pattern no retry budget runs out on. Resets hit
    // reads only: object_store retries a dropped connection only for requests safe to repeat
    // (a conditional create is not, see the next test).
    proxy.add(Rule::new(Fault::SlowDown).every(3).times(usize::MAX));
    proxy.add(Rule::new(Fault::InternalError).every(4).times(usize::MAX));
    proxy.add(Rule::new(Fault::Reset).method("GET").every(2).times(usize::MAX));
    proxy.add(
        Rule::new(Fault::SlowUpload(256 << 10))
            .method("PUT")
            .every(3)
            .times(usize::MAX),
    );
    let store = s3_store(&proxy.endpoint, "faulty", "proxied", Duration::from_secs(30));
    object_store_conformance(store, "run").await;
    let injected = proxy.injected();
    for kind in ["slow_down", "internal_error", "reset", "slow_upload"] {
        assert!(
            injected.get(kind).copied().unwrap_or(0) >= 2,
            "{kind} injected: {injected:?}"
        );
    }
    let (requests, forwarded) = proxy.requests();
    eprintln!("suite through the proxy: {requests} requests, {forwarded} forwarded, faults {injected:?}");
}

/// A conditional create (`PutMode::Create`, the manifest's commit) that reached S3 but whose
/// answer the client never got: what the client sees. This is why each manifest version carries
/// a unique commit id, so a writer can recognise its own write in an `AlreadyExists`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_is_lost_is_seen_as_failed_or_already_exists() {
    let s3 = S3Server::start("lost").await;
    let proxy = FaultProxy::start(&s3.endpoint).await;
    let store = s3_store(&proxy.endpoint, "lost", "p", Duration::from_secs(1));
    let create = |key: &'static str, body: &'static [u8]| {
        let store = store.clone();
        async move {
            store
                .put_opts(&Path::from(key), PutPayload::from_static(body), PutMode::Create.into())
                .await
        }
    };
    let stored = |key: &'static str| {
        let store = store.clone();
        async move { store.get(&Path::from(key)).await.unwrap().bytes().await.unwrap() }
    };

    // The answer arrives after the client's timeout: a create is not safe to repeat, so
    // object_store does not retry it and reports the timeout, although the object was written.
    proxy.fail_next(1, Fault::Hang(Duration::from_secs(3)));
    let first = create("timeout", b"mine").await;
    assert!(
        matches!(&first, Err(e) if !matches!(e, StoreError::AlreadyExists { .. })),
        "{first:?}"
    );
    assert_eq!(
        stored("timeout").await.as_ref(),
        b"mine",
        "the timed-out create took effect"
    );
    // The writer's own retry now collides with its own first attempt.
    let again = create("timeout", b"mine").await;
    assert!(matches!(again, Err(StoreError::AlreadyExists { .. })), "{again:?}");

    // A reset after the request reached S3: also reported as a failure, also written.
    proxy.fail_next(1, Fault::ResetAfterForward);
    let first = create("reset", b"mine").await;
    assert!(
        matches!(&first, Err(e) if !matches!(e, StoreError::AlreadyExists { .. })),
        "{first:?}"
    );
    assert_eq!(stored("reset").await.as_ref(), b"mine");

    // A connection closed without an answer counts as "request not sent", so object_store
    // retries it itself: the caller gets AlreadyExists for a create that was its own.
    proxy.fail_next(1, Fault::CloseAfterForward);
    let first = create("closed", b"mine").await;
    assert!(matches!(first, Err(StoreError::AlreadyExists { .. })), "{first:?}");
    assert_eq!(stored("closed").await.as_ref(), b"mine");

    assert_eq!(proxy.injected_total(), 3, "{:?}", proxy.injected());
}

/// Acknowledged samples: (cluster, series, timestamp ms).
type Acked = BTreeSet<(String, u32, i64)>;

const CLUSTERS: [&str; 2] = ["east", "west"];
const SERIES: u32 = 3;
const PER_BATCH: i64 = 40;

/// Remote-writes batch `b` (every cluster and series, `PER_BATCH` samples each, 15 s apart);
/// records what was acknowledged.
async fn write_batch(s: &TestServer, b: i64, acked: &mut Acked) {
    for cluster in CLUSTERS {
        let names: Vec<String> = (0..SERIES).map(|i| i.to_string()).collect();
        let samples: Vec<(i64, f64)> = (0..PER_BATCH)
            .map(|i| {
                let t = T0 + (b * PER_BATCH + i) * 15_000;
                (t, t as f64)
            })
            .collect();
        let series: Vec<_> = names
            .iter()
            .map(|n| {
                (
                    vec![("__name__", "faulty"), ("cluster", cluster), ("s", n.as_str())],
                    samples.clone(),
                )
            })
            .collect();
        let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
        assert_eq!(status, 204, "{body}");
        for i in 0..SERIES {
            acked.extend(samples.iter().map(|(t, _)| (cluster.to_string(), i, *t)));
        }
    }
}

/// `POST /api/v1/admin/flush`: the status and body.
async fn try_flush(s: &TestServer) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(s.url("/api/v1/admin/flush"))
        .send()
        .await
        .expect("flush request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Flushes until a flush succeeds (a failed one must be a 5xx); at most `attempts` tries.
async fn flush_until_ok(s: &TestServer, attempts: usize) -> Value {
    for _ in 0..attempts {
        let (status, body) = try_flush(s).await;
        if status == 200 {
            return serde_json::from_str(&body).expect("flush json");
        }
        assert!(
            (500..600).contains(&status),
            "a failed flush must be a 5xx: {status} {body}"
        );
    }
    panic!("no flush succeeded in {attempts} attempts");
}

/// `count(faulty)`-style checks through the query API: the number of samples of every series in
/// the window, or the error status.
async fn count_samples(s: &TestServer) -> Result<u64, (u16, Value)> {
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[
            ("query", "sum(count_over_time(faulty[1000d]))"),
            ("time", &((T0 + 10 * PER_BATCH * 15_000) as f64 / 1000.0).to_string()),
        ])
        .send()
        .await
        .expect("query");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("query json");
    if status != 200 {
        return Err((status, body));
    }
    let rows = result(&body);
    Ok(rows
        .first()
        .map_or(0, |r| r["value"][1].as_str().unwrap().parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_flushes_restarts_and_answers_while_s3_fails() {
    let s3 = S3Server::start("gateway").await;
    let proxy = FaultProxy::start(&s3.endpoint).await;
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = write_file(cfg_dir.path(), "tributary.toml", FAST_RETRIES);
    let env = proxy.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--config", config.to_str().unwrap(), "--storage", "s3://gateway/fleet"];
    let mut s = TestServer::start_with_env(&args, &env).await;
    let mut acked = Acked::new();

    // 1. Transient upload faults of every kind: the retries hide them.
    write_batch(&s, 0, &mut acked).await;
    proxy.add(Rule::new(Fault::SlowDown).method("PUT").times(2));
    proxy.add(Rule::new(Fault::InternalError).method("PUT").times(1));
    proxy.add(Rule::new(Fault::Reset).method("PUT").times(1));
    proxy.add(Rule::new(Fault::Hang(Duration::from_secs(2))).method("PUT").times(1));
    proxy.add(Rule::new(Fault::SlowUpload(64 << 10)).method("PUT").times(1));
    let flushed = flush_until_ok(&s, 3).await;
    assert!(flushed["samples"].as_u64().unwrap() > 0, "{flushed}");
    let injected = proxy.injected();
    for kind in ["slow_down", "internal_error", "reset", "hang", "slow_upload"] {
        assert!(injected.contains_key(kind), "{kind} was not injected: {injected:?}");
    }
    proxy.clear();
    // The requests were counted by class on /metrics: the startup listing, one upload per file.
    let requests = object_store_requests(&s).await;
    assert!(requests["list"] >= 1 && requests["put"] >= 2, "{requests:?}");
    let expected = acked.len() as u64;
    assert_eq!(count_samples(&s).await.expect("query"), expected);

    // 2. Queries while reads fail: hidden by retries when transient, a clear 5xx when S3 is down.
    proxy.add(Rule::new(Fault::SlowDown).method("GET").every(2).times(usize::MAX));
    assert_eq!(count_samples(&s).await.expect("query under transient faults"), expected);
    proxy.clear();
    proxy.add(
        Rule::new(Fault::SlowDown)
            .method("GET")
            .path_contains("/metrics/")
            .times(usize::MAX),
    );
    match count_samples(&s).await {
        Ok(n) => assert_eq!(n, expected, "a query that succeeds must be complete"),
        Err((status, body)) => {
            eprintln!("query with S3 reads down: {status} {body}");
            assert!((500..600).contains(&status), "{status} {body}");
            assert_eq!(body["status"], "error", "{body}");
            assert!(!body["error"].as_str().unwrap_or("").is_empty(), "{body}");
        }
    }
    proxy.clear();

    // 3. S3 refuses every upload: the flush fails with a 5xx, the data stays queryable from the
    //    head and in the WAL; once S3 is back a flush stores it.
    write_batch(&s, 1, &mut acked).await;
    proxy.add(Rule::new(Fault::SlowDown).method("PUT").times(usize::MAX));
    let (status, body) = try_flush(&s).await;
    assert!((500..600).contains(&status), "flush with S3 down: {status} {body}");
    assert_eq!(count_samples(&s).await.expect("query"), acked.len() as u64);
    proxy.clear();

    // 4. More data, then kill -9 before any flush: the WAL holds batches 1 and 2.
    write_batch(&s, 2, &mut acked).await;
    s.kill9();

    // 5. Restart while S3 throttles reads and uploads: startup lists the bucket, replays the WAL,
    //    and flushes succeed.
    proxy.add(Rule::new(Fault::SlowDown).method("GET").every(3).times(usize::MAX));
    proxy.add(Rule::new(Fault::InternalError).method("PUT").every(2).times(usize::MAX));
    s.spawn().await;
    flush_until_ok(&s, 3).await;
    assert_eq!(
        count_samples(&s).await.expect("query after restart"),
        acked.len() as u64
    );
    proxy.clear();
    s.stop();
    assert!(proxy.injected_total() >= 10, "{:?}", proxy.injected());

    // 6. The files themselves, read with pyarrow from S3: every acknowledged sample exactly once.
    assert_stored_exactly_once(&s3, "gateway", "fleet", &acked);
    eprintln!("faults injected: {:?}", proxy.injected());
}

/// `tributary_object_store_requests_total` by operation (both outcomes), from `/metrics`.
async fn object_store_requests(s: &TestServer) -> BTreeMap<String, u64> {
    let text = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    let mut by_operation = BTreeMap::new();
    for rest in text
        .lines()
        .filter_map(|l| l.strip_prefix("tributary_object_store_requests_total{operation=\""))
    {
        let (op, rest) = rest.split_once('"').expect("sample line");
        let value: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse().ok())
            .expect("counter value");
        *by_operation.entry(op.to_string()).or_default() += value;
    }
    by_operation
}

/// Reads every metrics file the manifest under `s3://<bucket>/<prefix>` lists with pyarrow: no
/// row may repeat a (series, timestamp), and the samples are exactly the acknowledged ones.
fn assert_stored_exactly_once(s3: &S3Server, bucket: &str, prefix: &str, acked: &Acked) {
    let args = [s3.endpoint.as_str(), bucket, prefix];
    let mut run = run_python("read_s3_metrics.py", &args);
    if !run.success {
        // moto, single-threaded, sometimes drops a connection while other tests load it: one
        // more read, with the first failure kept in the log.
        eprintln!("read_s3_metrics.py failed once, reading again: {}", run.stderr);
        run = run_python("read_s3_metrics.py", &args);
    }
    assert!(run.success, "read_s3_metrics.py failed: {}", run.stderr);
    let files = run.json();
    assert_eq!(
        files["duplicate_rows"], 0,
        "duplicate rows in the stored files: {}",
        files["files"]
    );
    let mut stored = Acked::new();
    for (key, stamps) in files["series"].as_object().unwrap() {
        let mut parts = key.splitn(3, '|');
        let (cluster, metric, labels) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(metric, "faulty");
        let labels: BTreeMap<String, String> = serde_json::from_str(labels).unwrap();
        let series: u32 = labels["s"].parse().unwrap();
        for t in stamps.as_array().unwrap() {
            stored.insert((cluster.to_string(), series, t.as_i64().unwrap()));
        }
    }
    let missing: Vec<_> = acked.difference(&stored).take(5).collect();
    let extra: Vec<_> = stored.difference(acked).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(files["rows"].as_u64().unwrap(), acked.len() as u64);
}

/// One cluster's upload succeeds, the other's keeps failing: the flush fails, and the next one
/// writes both again. Before the manifest the first cluster's file from the failed flush stayed
/// visible, so its rows were stored twice (120 duplicate rows); a failed flush now publishes
/// nothing, and its stray upload is not in the manifest `read_s3_metrics.py` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_failed_flush_stores_nothing_twice() {
    let s3 = S3Server::start("partial").await;
    let proxy = FaultProxy::start(&s3.endpoint).await;
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = write_file(
        cfg_dir.path(),
        "tributary.toml",
        "[storage.retry]\nmax_retries = 2\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"\n",
    );
    let env = proxy.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--config", config.to_str().unwrap(), "--storage", "s3://partial/fleet"];
    let mut s = TestServer::start_with_env(&args, &env).await;
    let mut acked = Acked::new();
    write_batch(&s, 0, &mut acked).await;
    proxy.add(
        Rule::new(Fault::InternalError)
            .method("PUT")
            .path_contains("/west/")
            .times(usize::MAX),
    );
    let (status, body) = try_flush(&s).await;
    assert!((500..600).contains(&status), "{status} {body}");
    proxy.clear();
    flush_until_ok(&s, 1).await;
    s.stop();
    assert_stored_exactly_once(&s3, "partial", "fleet", &acked);
}

/// The whole lifecycle on S3 behind faults: flushes, then a compaction round and retention
/// while uploads are throttled, fail and are reset, and reads are reset. Retries hide the
/// faults or the round reports what failed and leaves it for the next; either way every
/// acknowledged sample of the kept cluster is stored exactly once, the expired cluster is gone,
/// and a query of it answers empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_retention_under_s3_faults_lose_and_double_nothing() {
    let s3 = S3Server::start("lifecycle-faults").await;
    let proxy = FaultProxy::start(&s3.endpoint).await;
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{FAST_RETRIES}\n[storage.compaction]\nenabled = false\nsettle = \"0s\"\n\
         deletion_delay = \"0s\"\norphan_age = \"0s\"\n\n\
         [[storage.retention.rules]]\nclusters = \"west\"\nkeep = \"1d\"\n"
    );
    let config = write_file(cfg_dir.path(), "tributary.toml", &config);
    let env = proxy.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--storage",
        "s3://lifecycle-faults/fleet",
    ];
    let s = TestServer::start_with_env(&args, &env).await;
    let mut acked = Acked::new();
    for b in 0..3 {
        write_batch(&s, b, &mut acked).await;
        flush_until_ok(&s, 3).await;
    }
    proxy.add(Rule::new(Fault::SlowDown).method("PUT").times(2));
    proxy.add(Rule::new(Fault::InternalError).method("PUT").times(1));
    proxy.add(Rule::new(Fault::Reset).method("PUT").times(1));
    proxy.add(Rule::new(Fault::Reset).method("GET").times(2));
    proxy.add(Rule::new(Fault::SlowDown).method("DELETE").times(1));
    let (status, report) = s.compact().await;
    assert_eq!(status, 200, "{report}");
    assert!(
        proxy.injected_total() >= 4,
        "the faults met the round: {:?}",
        proxy.injected()
    );
    proxy.clear();
    let (status, again) = s.compact().await;
    assert_eq!(status, 200, "{again}");
    assert!(again["failures"].as_array().unwrap().is_empty(), "{again}");
    let keys = s3.list("fleet/metrics/").await;
    let per_cluster = |c: &str| keys.iter().filter(|k| k.contains(&format!("/{c}/"))).count();
    assert_eq!((per_cluster("east"), per_cluster("west")), (1, 0), "{keys:?}");

    acked.retain(|(cluster, _, _)| cluster != "west");
    assert_stored_exactly_once(&s3, "lifecycle-faults", "fleet", &acked);
    let q = s
        .query(
            "count_over_time(faulty{cluster=\"west\"}[1000d])",
            (T0 + 3 * PER_BATCH * 15_000) as f64 / 1000.0,
        )
        .await;
    assert!(
        result(&q).is_empty(),
        "past retention: an empty answer, not an error: {q}"
    );
    assert_eq!(count_samples(&s).await.unwrap(), acked.len() as u64);
}
