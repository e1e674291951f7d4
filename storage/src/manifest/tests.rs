use super::*;
use object_store::memory::InMemory;

fn meta(cluster: &str, ts: i64) -> FileMeta {
    FileMeta::new(FileKey::new(Table::Metrics, cluster, ts, ts, 1).unwrap(), 10)
}

fn add(files: &[FileMeta]) -> Change {
    Change {
        add: files.to_vec(),
        ..Change::default()
    }
}

#[tokio::test]
async fn commits_create_dense_versions_and_other_processes_see_them() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = ManifestStore::open(store.clone()).await.unwrap();
    assert_eq!(a.current().version, 1, "an empty store bootstraps version 1");
    let b = ManifestStore::open(store.clone()).await.unwrap();
    assert_eq!(
        b.current().version,
        1,
        "a second process reads version 1, not a second bootstrap"
    );

    let f1 = meta("x", 1_000);
    a.commit(&add(std::slice::from_ref(&f1))).await.unwrap();
    // b has not refreshed: its commit conflicts on the version, reloads, and re-applies.
    let f2 = meta("y", 2_000);
    let m = b.commit(&add(std::slice::from_ref(&f2))).await.unwrap();
    assert_eq!(m.version, 3);
    let keys: Vec<_> = m.files().map(|f| f.key).collect();
    assert_eq!(keys, vec![f1.key.clone(), f2.key.clone()], "both adds survive the race");

    let got = a.refresh().await.unwrap().expect("a sees version 3");
    assert_eq!(got.version, 3);
    assert!(a.refresh().await.unwrap().is_none(), "nothing newer");
    // Version objects are readable JSON with the documented fields.
    let raw = store
        .get(&layout::manifest_path(3))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(v["format"], 1);
    assert_eq!(v["files"][0]["key"], f1.path.to_string());
    let hint = store
        .get(&layout::manifest_hint_path())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&hint[..], b"3");
}

#[tokio::test]
async fn removes_conflict_when_a_file_is_gone_and_writer_marks_never_move_back() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let m = ManifestStore::open(store.clone()).await.unwrap();
    let f = meta("x", 1_000);
    m.commit(&add(std::slice::from_ref(&f))).await.unwrap();
    let drop_f = Change {
        remove: vec![f.path.clone()],
        ..Change::default()
    };
    let v = m.commit(&drop_f).await.unwrap();
    assert_eq!(v.files().count(), 0);
    assert_eq!(v.removed.len(), 1, "a removed file awaits deletion");
    assert!(matches!(m.commit(&drop_f).await, Err(CommitError::Conflict)));

    let mark = |seg| Change {
        writer: Some(("w1".into(), seg)),
        ..Change::default()
    };
    m.commit(&mark(7)).await.unwrap();
    let v = m.commit(&mark(3)).await.unwrap();
    assert_eq!(v.writers["w1"].wal_segment, 7);
    let forget = Change {
        forget: vec![f.path.to_string()],
        ..Change::default()
    };
    assert!(m.commit(&forget).await.unwrap().removed.is_empty());
}

#[tokio::test]
async fn readers_recover_from_a_stale_hint_and_old_versions_are_deleted() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let m = ManifestStore::open(store.clone()).await.unwrap();
    for i in 0..(KEEP_VERSIONS + 5) {
        m.commit(&add(&[meta("x", i as i64)])).await.unwrap();
    }
    let newest = m.current().version;
    assert!(
        read_version(store.as_ref(), 1).await.unwrap().is_none(),
        "version 1 was deleted"
    );
    assert!(
        read_version(store.as_ref(), newest - KEEP_VERSIONS + 1)
            .await
            .unwrap()
            .is_some()
    );
    // A hint pointing at a deleted version: readers fall back to a listing.
    store
        .put(&layout::manifest_hint_path(), PutPayload::from_static(b"2"))
        .await
        .unwrap();
    let r = ManifestStore::open(store.clone()).await.unwrap();
    assert_eq!(r.current().version, newest);
    assert_eq!(r.current().files().count(), (KEEP_VERSIONS + 5) as usize);
    // A lagging hint that still exists: readers probe forward.
    store
        .put(
            &layout::manifest_hint_path(),
            PutPayload::from((newest - 3).to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(
        ManifestStore::open(store.clone()).await.unwrap().current().version,
        newest
    );
    assert_eq!(m.delete_stale_versions().await.unwrap(), 0);
}

#[tokio::test]
async fn a_store_written_before_manifests_is_listed_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let f = meta("x", 5_000);
    store.put(&f.path, PutPayload::from_static(b"12345")).await.unwrap();
    store
        .put(&Path::from("metrics/junk.txt"), PutPayload::from_static(b"x"))
        .await
        .unwrap();
    let m = ManifestStore::open(store.clone()).await.unwrap();
    let files: Vec<_> = m.current().files().collect();
    assert_eq!(files.len(), 1);
    assert_eq!((files[0].key.clone(), files[0].size), (f.key, 5));
    // A newer format is refused with a reason rather than misread.
    let mut future = (*m.current()).clone();
    future.format = FORMAT + 1;
    future.version = 2;
    store
        .put(&layout::manifest_path(2), PutPayload::from(future.encode().unwrap()))
        .await
        .unwrap();
    let err = ManifestStore::open(store.clone()).await.unwrap_err();
    assert!(err.to_string().contains("upgrade"), "{err}");
}
