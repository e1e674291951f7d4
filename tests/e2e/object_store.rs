//! The same data path on a real S3-compatible server: Tributary with `--storage s3://…` writes
//! its Parquet files there, answers from them, and finds them again after a restart. The
//! storage `Source` conformance suite runs against S3 too.

use std::sync::Arc;

use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::read::Source;
use tributary_storage::types::Series;

use crate::harness::{S3Server, TestServer, post_remote_write, remote_write_body, result};

const T0: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_stores_parquet_in_s3_and_reads_it_back_after_restart() {
    let s3 = S3Server::start("tributary-e2e").await;
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut s = TestServer::start_with_env(&["--storage", "s3://tributary-e2e/fleet"], &env).await;
    let samples: Vec<(i64, f64)> = (0..10).map(|i| (T0 + i * 15_000, i as f64)).collect();
    for cluster in ["eu", "us"] {
        let body = remote_write_body(&[(vec![("__name__", "s3_probe"), ("cluster", cluster)], samples.clone())]);
        assert_eq!(post_remote_write(&s.url("/api/v1/write"), body, &[]).await.0, 204);
    }
    let flushed = s.flush().await;
    assert_eq!(flushed["samples"], 20, "{flushed}");

    let keys = s3.list("fleet/metrics/").await;
    assert_eq!(keys.iter().filter(|k| k.ends_with(".parquet")).count(), 2, "{keys:?}");
    assert!(
        keys.iter().any(|k| k.contains("/eu/")) && keys.iter().any(|k| k.contains("/us/")),
        "{keys:?}"
    );
    let local_parquet = std::fs::read_dir(s.data_dir.join("metrics")).is_ok();
    assert!(
        !local_parquet,
        "with an s3:// URL nothing may be written to the local metrics dir"
    );

    // A restart finds the files by listing the bucket; the answer comes from S3 alone.
    s.kill9();
    s.spawn().await;
    let t = (T0 + 9 * 15_000) as f64 / 1000.0;
    let v = s.query("sum by (cluster) (s3_probe)", t).await;
    let mut got: Vec<(String, String)> = result(&v)
        .iter()
        .map(|r| {
            (
                r["metric"]["cluster"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![("eu".to_string(), "9".to_string()), ("us".to_string(), "9".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_source_conformance_on_s3() {
    let s3 = S3Server::start("conformance").await;
    // The same options an operator would put under [storage.options].
    let options: std::collections::BTreeMap<String, String> =
        s3.env().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_path_buf();
    tributary_storage::test_util::source_conformance(move |data: Vec<Series>| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (dir_path, options) = (dir_path.clone(), options.clone());
        async move {
            let cfg = StorageConfig {
                url: Some(format!("s3://conformance/run-{n}")),
                options,
                ..StorageConfig::default()
            };
            let storage = Storage::open(&cfg, &dir_path).await.expect("open s3 storage");
            storage.write_metrics(&data).await.expect("write to s3");
            storage.source() as Arc<dyn Source>
        }
    })
    .await;
    let keys = s3.list("run-0/metrics/").await;
    assert!(!keys.is_empty(), "the conformance suite wrote nothing to S3");
}
