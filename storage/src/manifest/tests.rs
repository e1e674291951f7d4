use super::*;
use crate::layout::{self, Table};
use object_store::memory::InMemory;
use object_store::{ObjectStoreExt, PutPayload};

fn meta(cluster: &str, ts: i64) -> FileMeta {
    FileMeta::new(FileKey::new(Table::Metrics, cluster, ts, ts, 1).unwrap(), 10)
}

fn add(files: &[FileMeta]) -> Change {
    Change {
        add: files.to_vec(),
        ..Change::default()
    }
}

fn keys(m: &Manifest) -> Vec<FileKey> {
    m.files().map(|f| f.key).collect()
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
    // b has not refreshed: its create loses the version, it reads a's change and tries again.
    let f2 = meta("y", 2_000);
    let m = b.commit(&add(std::slice::from_ref(&f2))).await.unwrap();
    assert_eq!(m.version, 3);
    assert_eq!(
        keys(&m),
        vec![f1.key.clone(), f2.key.clone()],
        "both adds survive the race"
    );

    let got = a.refresh().await.unwrap().expect("a sees version 3");
    assert_eq!(got.version, 3);
    assert_eq!(keys(&got), keys(&m));
    assert!(a.refresh().await.unwrap().is_none(), "nothing newer");
    // A change is a small readable JSON object with the documented fields.
    let raw = store
        .get(&layout::manifest_path(3))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(v["format"], 2);
    assert_eq!(v["add"][0]["key"], f2.path.to_string());
    assert!(v.get("remove").is_none(), "empty parts are left out");
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
    // A fresh reader rebuilds the same state from the changes.
    let fresh = ManifestStore::open(store.clone()).await.unwrap();
    assert_eq!(*fresh.current(), *m.current());
}

#[tokio::test]
async fn checkpoints_bound_what_readers_read_and_old_objects_are_deleted() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let m = ManifestStore::open(store.clone()).await.unwrap();
    let lagging = ManifestStore::open(store.clone()).await.unwrap();
    let n = 3 * CHECKPOINT_EVERY + 5;
    for i in 1..n {
        m.commit(&add(&[meta("x", i as i64)])).await.unwrap();
    }
    let newest = m.current().version;
    assert_eq!(newest, n);
    let hint = store
        .get(&layout::last_checkpoint_path())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&hint[..], (3 * CHECKPOINT_EVERY).to_string().as_bytes());
    assert!(
        store.get(&layout::manifest_path(1)).await.is_err(),
        "changes two checkpoints behind are deleted"
    );
    assert!(store.get(&layout::checkpoint_path(CHECKPOINT_EVERY)).await.is_err());
    assert!(store.get(&layout::checkpoint_path(2 * CHECKPOINT_EVERY)).await.is_ok());

    // A fresh reader: hint, checkpoint, then the changes after it.
    let fresh = ManifestStore::open(store.clone()).await.unwrap();
    assert_eq!(*fresh.current(), *m.current());
    assert_eq!(fresh.current().files().count(), (n - 1) as usize);
    // A reader far behind (its next change was deleted) reloads from the checkpoint.
    assert_eq!(lagging.refresh().await.unwrap().unwrap().version, newest);
    assert_eq!(*lagging.current(), *m.current());
    // Without the hint, a listing finds the newest checkpoint.
    store.delete(&layout::last_checkpoint_path()).await.unwrap();
    assert_eq!(
        *ManifestStore::open(store.clone()).await.unwrap().current(),
        *m.current()
    );
    assert_eq!(m.delete_stale_versions().await.unwrap(), 0, "nothing was left behind");
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
    store
        .put(
            &layout::manifest_path(2),
            PutPayload::from_static(br#"{"format":3,"version":2,"commit":"x","written_at":0}"#),
        )
        .await
        .unwrap();
    let err = ManifestStore::open(store.clone()).await.unwrap_err();
    assert!(err.to_string().contains("upgrade"), "{err}");
}
