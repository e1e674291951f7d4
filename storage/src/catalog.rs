//! The in-memory list of stored files, so reads prune without listing the object store.
//!
//! Built by listing the store at open and updated by every write of this process. Files other
//! processes write become visible after [`Catalog::refresh`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::layout::{FileKey, Hour, SPAN_LOOKBACK_HOURS, Table};
use crate::types::TimeRange;
use crate::{Error, Result};

/// One stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileMeta {
    pub key: FileKey,
    pub path: Path,
    /// Object size in bytes.
    pub size: u64,
}

impl FileMeta {
    pub(crate) fn new(key: FileKey, size: u64) -> Self {
        Self {
            path: key.path(),
            key,
            size,
        }
    }
}

/// Totals over the catalog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CatalogStats {
    /// Stored files.
    pub files: u64,
    /// Rows in them.
    pub rows: u64,
    /// Their bytes in the object store.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Inner {
    by_hour: BTreeMap<(Table, Hour), Vec<Arc<FileMeta>>>,
    ids: HashSet<Uuid>,
    stats: CatalogStats,
}

/// Thread-safe file list, indexed by table and hour.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    inner: RwLock<Inner>,
}

impl Catalog {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Lists `table` in `store` and returns a catalog of every file whose key parses.
    pub(crate) async fn load(store: &dyn ObjectStore, table: Table) -> Result<Self> {
        let catalog = Self::new();
        catalog.refresh(store, table).await?;
        Ok(catalog)
    }

    /// Adds files of `table` that appeared in `store` since the last listing; returns how many.
    /// Objects whose keys don't parse (foreign files, upload leftovers) are skipped.
    pub(crate) async fn refresh(&self, store: &dyn ObjectStore, table: Table) -> Result<usize> {
        let prefix = table.prefix();
        let objects: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| Error::ObjectStore {
                op: "list",
                key: prefix.to_string(),
                source,
            })?;
        let mut added = 0;
        for o in objects {
            match FileKey::parse(&o.location) {
                Some(key) if key.table == table => added += usize::from(self.insert(FileMeta::new(key, o.size))),
                _ => tracing::debug!(key = %o.location, "ignoring object that is not a Tributary data file"),
            }
        }
        Ok(added)
    }

    /// Registers a file; false when it was already known.
    pub(crate) fn insert(&self, meta: FileMeta) -> bool {
        let mut inner = self.inner.write();
        if !inner.ids.insert(meta.key.id) {
            return false;
        }
        inner.stats.files += 1;
        inner.stats.rows += meta.key.rows;
        inner.stats.bytes += meta.size;
        inner
            .by_hour
            .entry((meta.key.table, meta.key.hour))
            .or_default()
            .push(Arc::new(meta));
        true
    }

    /// Files of `table` whose time span overlaps `range` and whose cluster passes `cluster_ok`,
    /// in write order (oldest first).
    pub(crate) fn files(
        &self,
        table: Table,
        range: TimeRange,
        cluster_ok: impl Fn(&str) -> bool,
    ) -> Vec<Arc<FileMeta>> {
        if range.start > range.end {
            return Vec::new();
        }
        let inner = self.inner.read();
        let mut out: Vec<Arc<FileMeta>> = inner
            .by_hour
            // Files are indexed by their first hour; a day file starts up to 23 hours earlier.
            .range(
                (table, Hour(Hour::of(range.start).0.saturating_sub(SPAN_LOOKBACK_HOURS)))
                    ..=(table, Hour::of(range.end)),
            )
            .flat_map(|(_, files)| files.iter())
            .filter(|f| range.overlaps(&f.key.time_range()) && cluster_ok(&f.key.cluster))
            .cloned()
            .collect();
        drop(inner);
        out.sort_unstable_by_key(|f| f.key.id);
        out
    }

    pub(crate) fn stats(&self) -> CatalogStats {
        self.inner.read().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    fn key(cluster: &str, min: i64, max: i64) -> FileKey {
        FileKey::new(Table::Metrics, cluster, min, max, 10).unwrap()
    }

    #[tokio::test]
    async fn load_lists_parseable_files_and_refresh_adds_new_ones() {
        let store = InMemory::new();
        let a = key("a", 1_000, 2_000);
        let b = key("b", 3_600_000, 3_600_500);
        for (k, body) in [(&a, "12345"), (&b, "123")] {
            store
                .put(&k.path(), PutPayload::from_static(body.as_bytes()))
                .await
                .unwrap();
        }
        store
            .put(&Path::from("metrics/junk.txt"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        let cat = Catalog::load(&store, Table::Metrics).await.unwrap();
        assert_eq!(
            cat.stats(),
            CatalogStats {
                files: 2,
                rows: 20,
                bytes: 8
            }
        );

        let c = key("a", 1_500, 1_600);
        store.put(&c.path(), PutPayload::from_static(b"1")).await.unwrap();
        assert_eq!(cat.refresh(&store, Table::Metrics).await.unwrap(), 1);
        assert_eq!(cat.refresh(&store, Table::Metrics).await.unwrap(), 0);
        assert!(!cat.insert(FileMeta::new(c.clone(), 1)), "re-registering is a no-op");
        assert_eq!(cat.stats().files, 3);

        let all = cat.files(Table::Metrics, TimeRange::ALL, |_| true);
        assert_eq!(
            all.iter().map(|f| f.key.id).collect::<Vec<_>>(),
            vec![a.id, b.id, c.id],
            "write order"
        );
        let hits = cat.files(Table::Metrics, TimeRange::new(1_550, 1_700), |_| true);
        assert_eq!(hits.iter().map(|f| &f.key).collect::<Vec<_>>(), vec![&a, &c]);
        let hits = cat.files(Table::Metrics, TimeRange::new(2_001, 3_599_999), |_| true);
        assert!(hits.is_empty());
        let hits = cat.files(Table::Metrics, TimeRange::ALL, |c| c == "b");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].key, b);
        assert!(cat.files(Table::Metrics, TimeRange::new(5, 4), |_| true).is_empty());
    }
}
