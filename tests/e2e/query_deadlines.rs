//! Queries never outlive their deadline, and shutdown does not wait for them: against the real
//! server, a listing of thousands of regex `match[]` (minutes of work) answers 503 `timeout` at
//! `query.timeout`, a heavy PromQL query answers `timeout` at its `timeout` parameter, and
//! SIGTERM while such a listing runs and writes keep arriving exits within
//! `server.shutdown_timeout` with the head flushed (every written series, and every write
//! acknowledged up to the end, is there after a restart).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestServer, post_remote_write, remote_write_body, result, write_file};

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 6000;

/// Writes [`SERIES`] series of `heavy`, with labels `i` and `pad` to make regexes work.
async fn load(s: &TestServer) {
    let names: Vec<String> = (0..SERIES).map(|i| i.to_string()).collect();
    let pads: Vec<String> = (0..SERIES)
        .map(|i| format!("{i:0>8}-abcdefghijklmnopqrstuvwxyz"))
        .collect();
    let series: Vec<_> = (0..SERIES)
        .map(|i| {
            (
                vec![
                    ("__name__", "heavy"),
                    ("cluster", "c1"),
                    ("i", names[i].as_str()),
                    ("pad", pads[i].as_str()),
                ],
                (0..10).map(|k| (T0 + k * 15_000, k as f64)).collect(),
            )
        })
        .collect();
    let (status, body) = post_remote_write(&s.url("/api/v1/write"), remote_write_body(&series), &[]).await;
    assert_eq!(status, 204, "{body}");
}

/// A `/api/v1/series` request with `selectors` regex `match[]`, each matching no series after
/// trying every `pad` value: a few milliseconds each in a debug build.
async fn heavy_listing(url: String, selectors: usize) -> (u16, String, Duration) {
    let mut form: Vec<(&str, String)> = (0..selectors)
        .map(|k| ("match[]", format!(r#"heavy{{pad=~".*{k}.*z.*q.*"}}"#)))
        .collect();
    form.push(("start", (T0 / 1000 - 60).to_string()));
    form.push(("end", (T0 / 1000 + 600).to_string()));
    let began = Instant::now();
    let r = reqwest::Client::new()
        .post(url)
        .form(&form)
        .send()
        .await
        .expect("series request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default(), began.elapsed())
}

fn assert_timeout(what: &str, status: u16, body: &str) {
    assert_eq!(status, 503, "{what}: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    assert_eq!(v["status"], "error", "{what}: {body}");
    assert_eq!(v["errorType"], "timeout", "{what}: {body}");
}

#[tokio::test]
async fn heavy_queries_answer_timeout_and_shutdown_does_not_wait_for_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = write_file(dir.path(), "short.toml", "[query]\ntimeout = \"1s\"\n");
    let mut s = TestServer::start_with(&["--config", short.to_str().unwrap()]).await;
    load(&s).await;

    // A listing past query.timeout.
    // 3000 match[]: about 7 s of work in a debug build, over 6000 series.
    let (status, body, took) = heavy_listing(s.url("/api/v1/series"), 3000).await;
    assert_timeout("series with 3000 regex match[]", status, &body);
    assert!(took < Duration::from_secs(3), "the timeout answered after {took:?}");

    // A PromQL query past its own `timeout` parameter (query.timeout is longer): thousands of
    // regex alternatives, a select each.
    let alternatives: Vec<String> = (0..5000).map(|k| format!(r#"pad=~".*{k}.*z.*q.*""#)).collect();
    let query = format!("count(heavy{{{}}})", alternatives.join(" or "));
    let began = Instant::now();
    let r = reqwest::Client::new()
        .post(s.url("/api/v1/query"))
        .form(&[
            ("query", query.as_str()),
            ("time", &(T0 / 1000 + 150).to_string()),
            ("timeout", "300ms"),
        ])
        .send()
        .await
        .expect("query");
    let status = r.status().as_u16();
    assert_timeout(
        "query with 5000 regex alternatives",
        status,
        &r.text().await.unwrap_or_default(),
    );
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "the timeout answered after {:?}",
        began.elapsed()
    );

    // SIGTERM while a listing with no practical deadline runs: the process exits within
    // server.shutdown_timeout (plus the head's flush), not when the listing would end.
    let long = write_file(
        dir.path(),
        "long.toml",
        "[server]\nshutdown_timeout = \"1s\"\n[query]\ntimeout = \"10m\"\n",
    );
    s.stop();
    s.extra_args = vec!["--config".into(), long.to_str().unwrap().into()];
    s.spawn().await;
    // 20000 match[]: close to a minute of work.
    let running = tokio::spawn(heavy_listing(s.url("/api/v1/series"), 20_000));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !running.is_finished(),
        "the heavy listing ended before SIGTERM: {:?}",
        running.await
    );
    // Writes keep arriving while SIGTERM lands: each one answered 2xx must survive.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (url, acked) = (s.url("/api/v1/write"), acked.clone());
        tokio::spawn(async move {
            for k in 0.. {
                let body = remote_write_body(&[(
                    vec![("__name__", "shut_w"), ("cluster", "c1"), ("k", &k.to_string())],
                    vec![(T0 + 100_000, 1.0)],
                )]);
                let sent = reqwest::Client::new()
                    .post(&url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await;
                // Refused or cut once the server stops: the writes before it count.
                match sent.map(|r| r.status().as_u16()) {
                    Ok(204) => acked.store(k + 1, std::sync::atomic::Ordering::SeqCst),
                    _ => break,
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let began = Instant::now();
    s.stop();
    let took = began.elapsed();
    writer.await.unwrap();
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(acked > 0, "no write was acknowledged before SIGTERM");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with a heavy query running"
    );
    running.abort();

    // Nothing written was lost: every series is back after a restart.
    s.spawn().await;
    let v = s.query("count(heavy)", (T0 / 1000 + 150) as f64).await;
    assert_eq!(result(&v)[0]["value"][1], SERIES.to_string(), "{v}");
    // Every acknowledged write is back; at most the one cut by the stop may be there unanswered.
    let v = s.query("count(shut_w)", (T0 / 1000 + 150) as f64).await;
    let stored: usize = result(&v)[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (acked..=acked + 1).contains(&stored),
        "{acked} writes acknowledged around SIGTERM, {stored} stored: {v}"
    );
}
