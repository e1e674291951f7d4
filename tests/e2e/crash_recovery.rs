//! "Nothing acknowledged is ever lost": kill -9 under load (with flushes racing), restart on the
//! same data dir, and find every acknowledged sample.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::harness::{TestServer, eventually, post_remote_write, remote_write_body, result};

const T0: i64 = 1_700_000_000_000;
const WRITERS: usize = 8;
const PER_REQUEST: i64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_under_load_loses_no_acknowledged_sample() {
    let mut s = TestServer::start().await;
    for round in 0..2 {
        let url = s.url("/api/v1/write");
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<BTreeSet<i64>>>> = Arc::new(Mutex::new(vec![BTreeSet::new(); WRITERS]));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut seq: i64 = 0;
                let writer = format!("w{w}");
                while !stop.load(Ordering::Relaxed) && seq < 200_000 {
                    let base = T0 + (round as i64) * 10_000_000_000 + seq * 1000;
                    let samples: Vec<(i64, f64)> =
                        (0..PER_REQUEST).map(|i| (base + i * 1000, (seq + i) as f64)).collect();
                    let body = remote_write_body(&[(
                        vec![("__name__", "crash_probe"), ("writer", &writer), ("cluster", "crash")],
                        samples.clone(),
                    )]);
                    let client = reqwest::Client::new();
                    let resp = client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header("Content-Type", "application/x-protobuf")
                        .body(body)
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status().as_u16() == 204 => {
                            acked.lock()[w].extend(samples.iter().map(|s| s.0));
                        }
                        // The server died mid-request: not acknowledged, so free to be lost.
                        _ => break,
                    }
                    seq += PER_REQUEST;
                }
            }));
        }
        // Flushes race the writes, so the kill can land mid-flush and after WAL truncation.
        let flush_url = s.url("/api/v1/admin/flush");
        let fstop = stop.clone();
        let flusher = tokio::spawn(async move {
            while !fstop.load(Ordering::Relaxed) {
                let _ = reqwest::Client::new().post(&flush_url).send().await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        // Load until enough has been acknowledged, then kill without warning.
        let acked_probe = acked.clone();
        eventually(Duration::from_secs(60), "acknowledged samples under load", || {
            let n: usize = acked_probe.lock().iter().map(BTreeSet::len).sum();
            async move { (n >= 20_000).then_some(()) }
        })
        .await;
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        flusher.await.unwrap();

        s.spawn().await;
        let acked = acked.lock().clone();
        let total: usize = acked.iter().map(BTreeSet::len).sum();
        assert!(total >= 20_000);
        let end = (T0 + (round as i64 + 1) * 10_000_000_000) as f64 / 1000.0;
        let v = s.query("crash_probe[1000d]", end).await;
        let mut found = vec![BTreeSet::new(); WRITERS];
        for series in result(&v) {
            let w: usize = series["metric"]["writer"].as_str().unwrap()[1..].parse().unwrap();
            for p in series["values"].as_array().unwrap() {
                found[w].insert((p[0].as_f64().unwrap() * 1000.0).round() as i64);
            }
        }
        for w in 0..WRITERS {
            let missing: Vec<_> = acked[w].difference(&found[w]).take(5).collect();
            assert!(
                missing.is_empty(),
                "round {round} writer {w}: acknowledged samples lost, e.g. {missing:?}"
            );
        }
        eprintln!("round {round}: {total} acknowledged samples all present after kill -9");
    }
    // A clean stop flushes and exits 0.
    s.stop();
}

#[tokio::test]
async fn a_clean_stop_flushes_the_head_to_parquet() {
    let mut s = TestServer::start().await;
    let body = remote_write_body(&[(vec![("__name__", "clean_stop"), ("cluster", "c")], vec![(T0, 1.0)])]);
    assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &[]).await.0, 204);
    s.stop();
    let wal: Vec<_> = std::fs::read_dir(s.data_dir.join("wal")).unwrap().flatten().collect();
    let parquet = std::fs::read_dir(s.data_dir.join("metrics")).is_ok();
    assert!(parquet, "no metrics dir after clean stop");
    // Whatever WAL segments remain hold nothing the Parquet files lack; the answer is the same.
    s.spawn().await;
    let v = s.query("clean_stop", T0 as f64 / 1000.0).await;
    assert_eq!(result(&v).len(), 1, "{v} (wal files: {})", wal.len());
}
