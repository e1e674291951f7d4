//! The in-memory list of one table's live files, so reads prune without listing the object store.
//!
//! Replaced whole from each manifest version this process installs (its own commits and
//! refreshes, `crate::manifest`), so a read sees one version's files: never a compacted file
//! together with its inputs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use object_store::path::Path;
use parking_lot::RwLock;
use uuid::Uuid;

use crate::layout::{FileKey, Hour, SPAN_LOOKBACK_HOURS, Table};
use crate::types::TimeRange;

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
    /// Per table and UTC day start (of each file's first hour): the newest file id of each
    /// cluster, so a read asks whether its rollups are fresh without visiting every raw file.
    by_day: BTreeMap<(Table, i64), Arc<NewestOfDay>>,
    ids: HashSet<Uuid>,
    stats: CatalogStats,
}

impl Inner {
    fn add(&mut self, meta: FileMeta) -> bool {
        if !self.ids.insert(meta.key.id) {
            return false;
        }
        self.stats.files += 1;
        self.stats.rows += meta.key.rows;
        self.stats.bytes += meta.size;
        let day = Arc::make_mut(
            self.by_day
                .entry((meta.key.table, meta.key.hour.day_start().start_ms()))
                .or_default(),
        );
        match day.get_mut(meta.key.cluster.as_str()) {
            Some(newest) => *newest = (*newest).max(meta.key.id),
            None => {
                day.insert(Arc::from(meta.key.cluster.as_str()), meta.key.id);
            }
        }
        self.by_hour
            .entry((meta.key.table, meta.key.hour))
            .or_default()
            .push(Arc::new(meta));
        true
    }
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

    /// Makes `files` the table's file set; returns how many of them were not in it before.
    pub(crate) fn replace(&self, files: impl IntoIterator<Item = FileMeta>) -> usize {
        let mut next = Inner::default();
        let mut added = 0;
        {
            let old = self.inner.read();
            for meta in files {
                added += usize::from(!old.ids.contains(&meta.key.id));
                next.add(meta);
            }
        }
        *self.inner.write() = next;
        added
    }

    /// Registers one file; false when it was already known (tests that build files by hand).
    #[cfg(test)]
    pub(crate) fn insert(&self, meta: FileMeta) -> bool {
        self.inner.write().add(meta)
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

    /// The newest file id of each (cluster, UTC day) of `table` for the days that start in
    /// `days`: what [`newest_per_day`] gives for those days' files, without visiting them.
    pub(crate) fn newest_by_day(&self, table: Table, days: TimeRange) -> NewestByDay {
        if days.start > days.end {
            return NewestByDay::default();
        }
        let inner = self.inner.read();
        NewestByDay(
            inner
                .by_day
                .range((table, days.start)..=(table, days.end))
                .map(|(&(_, day), clusters)| (day, clusters.clone()))
                .collect(),
        )
    }

    pub(crate) fn stats(&self) -> CatalogStats {
        self.inner.read().stats
    }
}

/// [`Catalog::newest_by_day`]'s answer: per UTC day start, ascending, each cluster's newest id.
#[derive(Debug, Default)]
pub(crate) struct NewestByDay(Vec<(i64, Arc<NewestOfDay>)>);

/// One day's newest file id per cluster.
type NewestOfDay = HashMap<Arc<str>, Uuid>;

impl NewestByDay {
    pub(crate) fn get(&self, cluster: &str, day: i64) -> Option<Uuid> {
        let i = self.0.binary_search_by_key(&day, |(d, _)| *d).ok()?;
        self.0[i].1.get(cluster).copied()
    }
}

/// The newest file id (v7: the latest written) of each (cluster, UTC day start) among `files`:
/// what decides whether a day's rollups are stale (a raw file newer than them), for the
/// compactor, which rolls such a day up again, and for readers, which read it raw until then.
pub(crate) fn newest_per_day(files: &[Arc<FileMeta>]) -> BTreeMap<(&str, i64), Uuid> {
    let mut m: BTreeMap<(&str, i64), Uuid> = BTreeMap::new();
    for f in files {
        let e = m
            .entry((f.key.cluster.as_str(), f.key.hour.day_start().start_ms()))
            .or_insert(f.key.id);
        *e = (*e).max(f.key.id);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cluster: &str, min: i64, max: i64) -> FileKey {
        FileKey::new(Table::Metrics, cluster, min, max, 10).unwrap()
    }

    #[test]
    fn replace_installs_a_whole_file_set_and_files_prune_by_time_and_cluster() {
        let cat = Catalog::new();
        let a = key("a", 1_000, 2_000);
        let b = key("b", 3_600_000, 3_600_500);
        let day = key("a", 1_000, 5 * 3_600_000);
        let added = cat.replace([FileMeta::new(a.clone(), 5), FileMeta::new(b.clone(), 3)]);
        assert_eq!(added, 2);
        assert_eq!(
            cat.stats(),
            CatalogStats {
                files: 2,
                rows: 20,
                bytes: 8
            }
        );
        let c = key("a", 1_500, 1_600);
        let files = [a.clone(), b.clone(), c.clone(), day.clone()].map(|k| FileMeta::new(k, 1));
        assert_eq!(cat.replace(files), 2, "only c and day are new");
        assert!(!cat.insert(FileMeta::new(c.clone(), 1)), "re-registering is a no-op");
        assert_eq!(cat.stats().files, 4);

        let all = cat.files(Table::Metrics, TimeRange::ALL, |_| true);
        assert_eq!(
            all.iter().map(|f| f.key.id).collect::<Vec<_>>(),
            vec![a.id, b.id, day.id, c.id],
            "write order"
        );
        let hits = cat.files(Table::Metrics, TimeRange::new(1_550, 1_700), |_| true);
        assert_eq!(hits.iter().map(|f| &f.key).collect::<Vec<_>>(), vec![&a, &day, &c]);
        let hits = cat.files(Table::Metrics, TimeRange::new(4 * 3_600_000, 4 * 3_600_000 + 5), |_| {
            true
        });
        assert_eq!(
            hits.iter().map(|f| &f.key).collect::<Vec<_>>(),
            vec![&day],
            "a day file is found from a later hour"
        );
        let hits = cat.files(Table::Metrics, TimeRange::ALL, |c| c == "b");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].key, b);
        assert!(cat.files(Table::Metrics, TimeRange::new(5, 4), |_| true).is_empty());

        assert_eq!(cat.replace([FileMeta::new(day.clone(), 1)]), 0);
        assert_eq!(
            cat.files(Table::Metrics, TimeRange::ALL, |_| true).len(),
            1,
            "removed files are gone"
        );
    }

    #[test]
    fn newest_by_day_is_newest_per_day_of_the_days_files() {
        const DAY: i64 = 86_400_000;
        let cat = Catalog::new();
        // Three days, two clusters, several files per (cluster, day), written in a shuffled
        // order of hours so the newest id is not the latest hour's.
        let mut keys = Vec::new();
        for i in 0..30i64 {
            let hour = (i * 7) % 72;
            let cluster = ["a", "b"][(i % 2) as usize];
            keys.push(key(cluster, hour * 3_600_000, hour * 3_600_000 + 1_000));
        }
        cat.replace(keys.iter().map(|k| FileMeta::new(k.clone(), 1)));
        for (start, end) in [
            (0, 3 * DAY - 1),
            (DAY, 2 * DAY - 1),
            (DAY, 3 * DAY - 1),
            (2 * DAY, 2 * DAY),
        ] {
            let days = TimeRange::new(start, end);
            let want_files = cat.files(Table::Metrics, TimeRange::new(start, (end / DAY + 1) * DAY - 1), |_| {
                true
            });
            let want = newest_per_day(&want_files);
            let got = cat.newest_by_day(Table::Metrics, days);
            for ((cluster, day), id) in &want {
                assert_eq!(got.get(cluster, *day), Some(*id), "{cluster} {day}");
            }
            let answered = (0..3)
                .flat_map(|d| ["a", "b"].map(|c| got.get(c, d * DAY)))
                .flatten()
                .count();
            assert_eq!(answered, want.len(), "no day outside {days:?}");
        }
        assert!(
            cat.newest_by_day(Table::Metrics, TimeRange::new(1, 0))
                .get("a", 0)
                .is_none()
        );
        assert!(cat.newest_by_day(Table::Logs, TimeRange::ALL).get("a", 0).is_none());
    }
}
