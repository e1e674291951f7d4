//! The object-store behaviours Tributary relies on, as one suite every store must pass: local
//! disk (storage's unit tests), the S3-compatible server and the same server behind a
//! fault-injecting proxy (the e2e suite).
//!
//! What the manifest protocol needs from a store, and what this checks:
//! - an object read back is the bytes written, whole and by range; an overwrite replaces it;
//! - a listing returns exactly the keys under a prefix (a sibling `a/bc` is not under `a/b`),
//!   and with a delimiter, the next level's "directories";
//! - a deleted object is gone (reads say `NotFound`);
//! - **conditional create** (`PutMode::Create`): the first create of a key succeeds, every
//!   later one fails with `AlreadyExists` and leaves the first writer's bytes; of creates racing
//!   on one key exactly one wins. This is what makes a manifest version a commit point.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{Error, ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart};

/// Runs every check under `root` (a key prefix no other run uses); panics on the first failure.
pub async fn object_store_conformance(store: Arc<dyn ObjectStore>, root: &str) {
    let key = |k: &str| Path::from(format!("{root}/{k}"));
    let s = store.as_ref();

    // Whole, ranged and metadata reads return what was written; an overwrite replaces it.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let a = key("a/b/obj");
    s.put(&a, PutPayload::from(data.clone())).await.expect("put");
    assert_eq!(s.get(&a).await.expect("get").bytes().await.expect("body"), data);
    assert_eq!(s.head(&a).await.expect("head").size, data.len() as u64);
    assert_eq!(s.get_range(&a, 10..20).await.expect("get_range"), data[10..20]);
    let ranges = s
        .get_ranges(&a, &[0..3, 50_000..50_010, 99_990..100_000])
        .await
        .expect("get_ranges");
    assert_eq!(ranges, [&data[0..3], &data[50_000..50_010], &data[99_990..]]);
    s.put(&a, PutPayload::from_static(b"second")).await.expect("overwrite");
    assert_eq!(
        s.get(&a).await.expect("get").bytes().await.expect("body").as_ref(),
        b"second"
    );

    // A multipart upload (one part: the last part may be small) reads back whole.
    let m = key("a/b/multipart");
    let mut w = WriteMultipart::new(s.put_multipart(&m).await.expect("start multipart"));
    w.put(Bytes::from_static(b"in parts"));
    w.finish().await.expect("finish multipart");
    assert_eq!(
        s.get(&m).await.expect("get").bytes().await.expect("body").as_ref(),
        b"in parts"
    );

    // Listings: exactly the keys under a prefix, never a sibling sharing its leading bytes.
    s.put(&key("a/bc/other"), PutPayload::from_static(b"x"))
        .await
        .expect("put");
    s.put(&key("a/b/c/deep"), PutPayload::from_static(b"x"))
        .await
        .expect("put");
    let mut listed: Vec<String> = s
        .list(Some(&key("a/b")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    listed.sort();
    assert_eq!(
        listed,
        [key("a/b/c/deep"), key("a/b/multipart"), key("a/b/obj")].map(|p| p.to_string())
    );
    let level = s
        .list_with_delimiter(Some(&key("a/b")))
        .await
        .expect("list_with_delimiter");
    let mut objects: Vec<String> = level.objects.iter().map(|m| m.location.to_string()).collect();
    objects.sort();
    assert_eq!(objects, [key("a/b/multipart"), key("a/b/obj")].map(|p| p.to_string()));
    assert_eq!(level.common_prefixes, [key("a/b/c")]);
    let empty: Vec<_> = s.list(Some(&key("none"))).try_collect().await.expect("list");
    assert!(empty.is_empty(), "{empty:?}");

    // Deletes: the object is gone; reading a missing object is NotFound.
    s.delete(&a).await.expect("delete");
    assert!(
        matches!(s.get(&a).await, Err(Error::NotFound { .. })),
        "deleted object still readable"
    );
    assert!(matches!(s.head(&a).await, Err(Error::NotFound { .. })));

    // Conditional create: the first wins, a second fails with AlreadyExists and changes nothing.
    let c = key("manifest/00000001");
    s.put_opts(&c, PutPayload::from_static(b"first"), PutMode::Create.into())
        .await
        .expect("first create");
    let second = s
        .put_opts(&c, PutPayload::from_static(b"second"), PutMode::Create.into())
        .await;
    assert!(
        matches!(second, Err(Error::AlreadyExists { .. })),
        "second create of one key: {second:?}"
    );
    assert_eq!(
        s.get(&c).await.expect("get").bytes().await.expect("body").as_ref(),
        b"first"
    );

    // Racing creates of one key: exactly one succeeds, and the object holds its bytes.
    let race = key("manifest/00000002");
    let attempts = (0..8u8).map(|i| {
        let (store, race) = (store.clone(), race.clone());
        async move {
            let r = store
                .put_opts(&race, PutPayload::from(vec![i; 16]), PutMode::Create.into())
                .await;
            (i, r)
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<u8> = results.iter().filter(|(_, r)| r.is_ok()).map(|(i, _)| *i).collect();
    assert_eq!(winners.len(), 1, "racing creates: {results:?}");
    for (i, r) in &results {
        assert!(
            r.is_ok() || matches!(r, Err(Error::AlreadyExists { .. })),
            "create {i} failed otherwise: {r:?}"
        );
    }
    let body = s.get(&race).await.expect("get").bytes().await.expect("body");
    assert_eq!(body.as_ref(), [winners[0]; 16], "the object holds the winner's bytes");
}

/// The store [`crate::Storage::open`] would use for `cfg`: metered and, for S3, with the
/// configured retries and timeouts (so suites run against what production runs).
pub fn open_object_store(
    cfg: &crate::StorageConfig,
    data_dir: &std::path::Path,
) -> crate::Result<Arc<dyn ObjectStore>> {
    Ok(crate::store::open_store(cfg, data_dir)?.0)
}
