//! Turns the configured storage URL into an object store.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use url::Url;

use crate::{Error, Result};

/// Opens the store `url` names, or the local filesystem rooted at `data_dir` when `url` is `None`.
///
/// Local roots are created if missing. `s3://bucket/prefix` confines every key under `prefix`;
/// S3 settings come from `AWS_*` environment variables (see [`crate::StorageConfig::url`]),
/// overridden by `options` (object_store's configuration key names, e.g. `aws_endpoint`).
pub(crate) fn open_store(
    url: Option<&str>,
    data_dir: &FsPath,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>> {
    let Some(raw) = url else {
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
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (key, value) in options {
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

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn local_roots_are_created_and_hold_objects() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        let store = open_store(None, &root, &Default::default()).unwrap();
        store
            .put(&Path::from("x/y"), PutPayload::from_static(b"hi"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(root.join("x/y")).unwrap(), b"hi");

        let other = dir.path().join("c");
        let url = Url::from_file_path(&other).unwrap();
        let store = open_store(Some(url.as_str()), dir.path(), &Default::default()).unwrap();
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
            let err = open_store(Some(url), dir.path(), &Default::default())
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn s3_urls_build_without_network() {
        let dir = tempfile::tempdir().unwrap();
        // Building a client performs no request; the prefix variant must also build.
        assert!(open_store(Some("s3://bucket"), dir.path(), &Default::default()).is_ok());
        assert!(open_store(Some("s3://bucket/some/prefix"), dir.path(), &Default::default()).is_ok());
    }
}
