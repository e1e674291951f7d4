//! Turns the configured storage URL into an object store, metered (`metered`: requests
//! counted by the class S3 bills them in) and, for S3, retried with the configured backoff and
//! timeouts.

pub(crate) mod metered;

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreExt, RetryConfig};
use url::Url;

use crate::config::StorageConfig;
use crate::{Error, Result};
use metered::{MeteredStore, RequestCounters};

/// Opens the store `cfg.url` names (the local filesystem rooted at `data_dir` when unset),
/// wrapped in a [`MeteredStore`] whose counters are returned alongside.
pub(crate) fn open_store(
    cfg: &StorageConfig,
    data_dir: &FsPath,
) -> Result<(Arc<dyn ObjectStore>, Arc<RequestCounters>)> {
    let metered = MeteredStore::new(open_unmetered(cfg, data_dir)?);
    let counters = metered.counters();
    Ok((Arc::new(metered), counters))
}

/// Opens the store `cfg.url` names, or the local filesystem rooted at `data_dir` when unset.
///
/// Local roots are created if missing. `s3://bucket/prefix` confines every key under `prefix`;
/// S3 settings come from `AWS_*` environment variables (see [`crate::StorageConfig::url`]),
/// then `storage.retry`, `storage.request_timeout` and `storage.connect_timeout`, overridden
/// by `cfg.options` (object_store's configuration key names, e.g. `aws_endpoint`, `timeout`).
fn open_unmetered(cfg: &StorageConfig, data_dir: &FsPath) -> Result<Arc<dyn ObjectStore>> {
    let Some(raw) = cfg.url.as_deref() else {
        return local(data_dir);
    };
    let invalid = |reason: String| Error::InvalidUrl {
        url: raw.to_string(),
        reason,
    };
    let parsed = Url::parse(raw).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "file" => {
            if parsed.host_str().is_some_and(|h| !h.is_empty() && h != "localhost") {
                return Err(invalid("file URLs must not name a host (use file:///abs/path)".into()));
            }
            let path = parsed
                .to_file_path()
                .map_err(|()| invalid("not an absolute file path".into()))?;
            local(&path)
        }
        "s3" | "s3a" => {
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| invalid("missing bucket name".into()))?;
            let prefix = Path::from_url_path(parsed.path()).map_err(|e| invalid(e.to_string()))?;
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry_config(cfg))
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    millis(cfg.request_timeout),
                )
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    millis(cfg.connect_timeout),
                );
            for (key, value) in &cfg.options {
                let key: AmazonS3ConfigKey = key
                    .parse()
                    .map_err(|e| invalid(format!("storage option {key:?}: {e}")))?;
                builder = builder.with_config(key, value);
            }
            let s3 = builder.build().map_err(|e| invalid(e.to_string()))?;
            if prefix.as_ref().is_empty() {
                Ok(Arc::new(s3))
            } else {
                Ok(Arc::new(PrefixStore::new(s3, prefix)))
            }
        }
        other => Err(invalid(format!("unsupported scheme {other:?} (use file:// or s3://)"))),
    }
}

/// A duration as object_store's configuration reads it.
fn millis(d: std::time::Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// `storage.retry` as object_store's retry policy.
fn retry_config(cfg: &StorageConfig) -> RetryConfig {
    let r = &cfg.retry;
    // object_store draws each delay from `initial..2 × previous`: an empty range would panic.
    let initial = r.initial_backoff.max(std::time::Duration::from_millis(1));
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: initial,
            max_backoff: r.max_backoff.max(initial),
            base: 2.0,
        },
        max_retries: r.max_retries,
        retry_timeout: r.retry_timeout,
    }
}

fn local(root: &FsPath) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root).map_err(|source| Error::Io {
        op: "create storage root",
        path: root.into(),
        source,
    })?;
    let fs = LocalFileSystem::new_with_prefix(root).map_err(|source| Error::ObjectStore {
        op: "open local root",
        key: root.display().to_string(),
        source,
    })?;
    Ok(Arc::new(fs))
}

/// Sends of one conditional create that failed without landing, before giving up.
const CREATE_ATTEMPTS: usize = 3;

/// Creates `key` with `body` only if it does not exist (`PutMode::Create`; S3
/// `If-None-Match: *`): true when the object now holds `body` (ours), false when another
/// writer's object was there first.
///
/// A create whose answer is lost (a timeout, a reset) may still have landed, and object_store
/// does not retry it; a retried one may find its own first attempt (`AlreadyExists`). So after
/// any failure the object is read back and compared with `body` (callers make bodies unique,
/// e.g. with a commit id), and a create that did not land is sent again. `Err` only when the
/// outcome is unknown: the read-back failed too, or every attempt failed without landing.
pub(crate) async fn create_once(
    store: &dyn ObjectStore,
    key: &Path,
    body: bytes::Bytes,
) -> std::result::Result<bool, object_store::Error> {
    let mut last = None;
    for _ in 0..CREATE_ATTEMPTS {
        let opts = object_store::PutOptions::from(object_store::PutMode::Create);
        let err = match store
            .put_opts(key, object_store::PutPayload::from(body.clone()), opts)
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) => e,
        };
        let found = match store.get(key).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        match found {
            Ok(found) => return Ok(found == body),
            Err(object_store::Error::NotFound { .. }) => last = Some(err),
            Err(_) => return Err(err),
        }
    }
    Err(last.unwrap_or_else(|| object_store::Error::Generic {
        store: "create",
        source: "no create attempt was made".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn local_roots_are_created_and_hold_objects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        let store = open_unmetered(&StorageConfig::default(), &root).unwrap();
        store
            .put(&Path::from("x/y"), PutPayload::from_static(b"hi"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(root.join("x/y")).unwrap(), b"hi");

        let other = dir.path().join("c");
        let url = Url::from_file_path(&other).unwrap();
        let store = open_unmetered(&with_url(url.as_str()), dir.path()).unwrap();
        store
            .put(&Path::from("z"), PutPayload::from_static(b"1"))
            .await
            .unwrap();
        assert!(other.join("z").exists());
    }

    #[test]
    fn bad_urls_are_rejected_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        for url in ["gs://b", "s3://", "not a url", "file://host/x"] {
            let err = open_unmetered(&with_url(url), dir.path())
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn s3_urls_build_without_network() {
        let dir = tempfile::tempdir().unwrap();
        // Building a client performs no request; the prefix variant must also build.
        assert!(open_unmetered(&with_url("s3://bucket"), dir.path()).is_ok());
        assert!(open_unmetered(&with_url("s3://bucket/some/prefix"), dir.path()).is_ok());
    }

    #[test]
    fn retry_settings_become_object_stores_policy() {
        let mut cfg = with_url("s3://bucket");
        cfg.retry.max_retries = 3;
        cfg.retry.initial_backoff = std::time::Duration::ZERO;
        let r = retry_config(&cfg);
        assert_eq!(r.max_retries, 3);
        // A zero initial backoff would make object_store's jitter range empty (a panic).
        assert!(r.backoff.init_backoff > std::time::Duration::ZERO);
        assert!(r.backoff.max_backoff >= r.backoff.init_backoff);
        cfg.request_timeout = std::time::Duration::from_millis(1500);
        assert_eq!(millis(cfg.request_timeout), "1500ms");
        // The timeouts go through object_store's own parser, which must accept them.
        assert!(open_unmetered(&cfg, std::path::Path::new("/nonexistent")).is_ok());
        cfg.options.insert("timeout".into(), "not a duration".into());
        assert!(open_unmetered(&cfg, std::path::Path::new("/nonexistent")).is_err());
    }

    #[tokio::test]
    async fn opened_stores_are_metered() {
        let dir = tempfile::tempdir().unwrap();
        let (store, counters) = open_store(&StorageConfig::default(), dir.path()).unwrap();
        store
            .put(&Path::from("k"), PutPayload::from_static(b"v"))
            .await
            .unwrap();
        store.head(&Path::from("k")).await.unwrap();
        let counts = counters.snapshot();
        assert_eq!((counts.put, counts.head, counts.get), (1, 1, 0));
    }

    #[tokio::test]
    async fn local_disk_passes_the_object_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = open_store(&StorageConfig::default(), dir.path()).unwrap();
        crate::test_util::object_store_conformance(store, "suite").await;
    }

    #[tokio::test]
    async fn the_in_memory_store_passes_the_object_store_suite() {
        let store = Arc::new(MeteredStore::new(Arc::new(object_store::memory::InMemory::new())));
        crate::test_util::object_store_conformance(store, "suite").await;
    }

    fn with_url(url: &str) -> StorageConfig {
        StorageConfig {
            url: Some(url.to_string()),
            ..StorageConfig::default()
        }
    }
}
