//! The store over time: flushes killed at random instants publish no row twice (pyarrow counts
//! the rows in the files), compaction leaves one file per cluster and day, and on a real S3
//! server two compactors never both work while a compactor killed mid-round loses nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::harness::{
    S3Server, TestServer, eventually, post_remote_write, remote_write_body, result, run_python, write_file,
};

/// 2023-11-14 22:13:20 UTC: a settled day, so compaction makes day files at once.
const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 40;
const SAMPLES: i64 = 30;

/// Compaction on demand only, everything settled and deleted at once, quick manifest refreshes.
const CONFIG: &str = r#"
[storage]
refresh_interval = "300ms"
[storage.compaction]
enabled = false
settle = "0s"
deletion_delay = "0s"
orphan_age = "0s"
lease_ttl = "3s"
"#;

/// A pseudo-random delay of up to `max_ms`, different on every call.
fn jitter(max_ms: u64) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    Duration::from_millis(nanos.wrapping_mul(6_364_136_223_846_793_005) % (max_ms + 1))
}

/// Writes load `round`: SERIES series in two clusters, SAMPLES samples each (timestamps of
/// this round only), and 20 log lines; returns (samples, log lines).
async fn write_load(s: &TestServer, round: i64) -> (i64, i64) {
    let mut series = Vec::new();
    let names: Vec<String> = (0..SERIES).map(|i| format!("s{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let cluster = if i % 2 == 0 { "eu" } else { "us" };
        let samples: Vec<(i64, f64)> = (0..SAMPLES)
            .map(|k| (T0 + round * 3_600_000 + k * 60_000, (round * 1000 + k) as f64))
            .collect();
        series.push((
            vec![
                ("__name__", "lifecycle_probe"),
                ("cluster", cluster),
                ("series", name.as_str()),
            ],
            samples,
        ));
    }
    let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
    assert_eq!(status, 204, "{body}");
    let values: Vec<Value> = (0..20)
        .map(|k| {
            let ns = (T0 + round * 3_600_000 + k * 1000) * 1_000_000;
            serde_json::json!([ns.to_string(), format!("round {round} line {k}")])
        })
        .collect();
    let push = serde_json::json!({"streams": [{"stream": {"cluster": "eu", "app": "probe"}, "values": values}]});
    let r = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .json(&push)
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    (SERIES as i64 * SAMPLES, 20)
}

fn stored(args: &[&str]) -> Value {
    let mut run = run_python("stored_rows.py", args);
    // pyarrow's C++ runtime has aborted the reader under heavy load ("terminate called without
    // an active exception"): the reader crashed, not the check; read once more.
    if !run.success && run.stderr.contains("terminate called") {
        eprintln!("stored_rows.py aborted inside pyarrow; reading again: {}", run.stderr);
        run = run_python("stored_rows.py", args);
    }
    assert!(run.success, "stored_rows.py failed: {}", run.stderr);
    run.json()
}

fn assert_exact(v: &Value, samples: i64, lines: i64, what: &str) {
    assert_eq!(v["metrics"]["rows"], samples, "{what}: {v}");
    assert_eq!(v["metrics"]["duplicates"], 0, "{what}: {v}");
    assert_eq!(v["logs"]["rows"], lines, "{what}: {v}");
    assert_eq!(v["logs"]["duplicates"], 0, "{what}: {v}");
}

/// The number of stored samples, through PromQL; `None` when the query fails (a gateway whose
/// manifest is one refresh behind a compactor that deleted files at once).
async fn queried_samples(s: &TestServer) -> Option<i64> {
    let t = ((T0 + 10 * 3_600_000) / 1000).to_string();
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/query"))
        .query(&[
            ("query", "sum(count_over_time(lifecycle_probe[1d]))"),
            ("time", t.as_str()),
        ])
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    Some(
        result(&v)
            .first()
            .map_or(0, |r| r["value"][1].as_str().unwrap().parse().unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushes_killed_at_random_instants_publish_no_row_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "tributary.toml", CONFIG);
    let mut s = TestServer::start_with(&["--config", cfg.to_str().unwrap()]).await;
    let (mut samples, mut lines) = (0, 0);
    for round in 0..6 {
        let (n, l) = write_load(&s, round).await;
        samples += n;
        lines += l;
        let url = s.url("/api/v1/admin/flush");
        let flush = tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
        tokio::time::sleep(jitter(60)).await;
        s.kill9();
        let _ = flush.await;
        s.spawn().await;
    }
    s.flush().await;
    let root = s.data_dir.to_str().unwrap().to_string();
    assert_exact(
        &stored(&["--root", &root, "--manifest"]),
        samples,
        lines,
        "files the manifest lists",
    );

    let (status, report) = s.compact().await;
    assert_eq!(status, 200, "{report}");
    let all = stored(&["--root", &root, "--all"]);
    assert_exact(&all, samples, lines, "every Parquet object after compaction");
    // Six rounds an hour apart from 22:13 span two days; two clusters: one file per cluster and day.
    assert_eq!(all["metrics"]["files"], 4, "{all}");
    assert_eq!(all["logs"]["files"], 2, "{all}");
    assert_eq!(queried_samples(&s).await, Some(samples));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_compactor_at_a_time_on_s3_and_a_killed_compaction_loses_nothing() {
    let s3 = S3Server::start("lifecycle").await;
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_file(dir.path(), "tributary.toml", CONFIG);
    let cfg = cfg.to_str().unwrap();
    let url = "s3://lifecycle/fleet";
    let gateway = TestServer::start_with_env(&["--storage", url, "--config", cfg], &env).await;
    let role = ["--storage", url, "--config", cfg, "--role", "compactor"];
    let mut a = TestServer::start_with_env(&role, &env).await;
    let b = TestServer::start_with_env(&role, &env).await;

    let (mut samples, mut lines) = (0, 0);
    for round in 0..4 {
        let (n, l) = write_load(&gateway, round).await;
        samples += n;
        lines += l;
        gateway.flush().await;
    }
    // Two compactors asked at once: one works, the other is told who holds the lease.
    let (ra, rb) = tokio::join!(a.compact(), b.compact());
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{ra:?} {rb:?}");
    let busy = if ra.0 == 409 { &ra.1 } else { &rb.1 };
    assert!(busy["lease_holder"].is_string(), "{busy}");

    // More flushes, then the lease holder is killed at random instants inside its rounds.
    for round in 4..7 {
        let (n, l) = write_load(&gateway, round).await;
        samples += n;
        lines += l;
        gateway.flush().await;
        tokio::time::sleep(Duration::from_secs(3)).await; // the last holder's lease expires
        let url = a.url("/api/v1/admin/compact");
        let req = tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
        tokio::time::sleep(jitter(400)).await;
        a.kill9();
        let _ = req.await;
        a.spawn().await;
        let args = ["--s3", &s3.endpoint, &s3.bucket, "fleet", "--manifest"];
        let listed = stored(&args);
        assert_eq!(listed["metrics"]["rows"], samples, "after kill {round}: {listed}");
        assert_eq!(listed["metrics"]["duplicates"], 0, "after kill {round}: {listed}");
    }
    // The survivor finishes the job once the dead holder's lease runs out.
    let (status, report) = eventually(Duration::from_secs(30), "compactor b takes the lease", || async {
        let r = b.compact().await;
        (r.0 == 200).then_some(r)
    })
    .await;
    assert_eq!(status, 200, "{report}");
    let all = stored(&["--s3", &s3.endpoint, &s3.bucket, "fleet", "--all"]);
    assert_exact(&all, samples, lines, "every object after the final round");
    assert_eq!(all["metrics"]["files"], 4, "one file per cluster and day: {all}");
    eventually(
        Duration::from_secs(30),
        "the gateway reads the compacted files",
        || async { (queried_samples(&gateway).await == Some(samples)).then_some(()) },
    )
    .await;
}

/// A compactor stopped with SIGTERM (a Kubernetes rollout) hands its lease back: the next one
/// compacts at once instead of waiting out `lease_ttl` (two hours by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_compactor_releases_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("store").display());
    let args = ["--role", "compactor", "--storage", storage.as_str()];
    let mut a = TestServer::start_with(&args).await;
    let b = TestServer::start_with(&args).await;
    let (status, report) = a.compact().await;
    assert_eq!(status, 200, "{report}");
    let (status, report) = b.compact().await;
    assert_eq!(status, 409, "a holds the lease: {report}");
    a.stop();
    let (status, report) = b.compact().await;
    assert_eq!(status, 200, "a released its lease on SIGTERM: {report}");
}
