//! The trace-id bloom filters of recently read row groups (`storage.trace_bloom_cache_bytes`).
//!
//! A lookup by id checks every candidate file's filters: without a cache each check is a read
//! (one per row group, ~137 over a day of files), which on S3 is what a lookup waits for and
//! pays. Files are immutable, so an entry never goes stale; the oldest inserted are dropped
//! once the filters held pass the byte budget. A row group without a filter is remembered as
//! such.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use parquet::bloom_filter::Sbbf;
use uuid::Uuid;

/// A row group: its file's id and its index.
type Key = (Uuid, usize);

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct BloomCache {
    max_bytes: usize,
    inner: Mutex<Blooms>,
}

#[derive(Debug, Default)]
struct Blooms {
    map: HashMap<Key, (Option<Arc<Sbbf>>, usize)>,
    /// Insertion order, for eviction.
    order: VecDeque<Key>,
    bytes: usize,
}

impl BloomCache {
    /// Keeps filters of up to `max_bytes` in all; 0 keeps none.
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Blooms::default()),
        }
    }

    /// The filter of row group `rg` of file `id`: `Some(None)` when it has none, `None` when
    /// not held.
    pub(crate) fn get(&self, id: Uuid, rg: usize) -> Option<Option<Arc<Sbbf>>> {
        self.inner.lock().map.get(&(id, rg)).map(|(b, _)| b.clone())
    }

    /// Keeps row group `rg`'s filter (`bytes` long on disk).
    pub(crate) fn insert(&self, id: Uuid, rg: usize, bloom: Option<Arc<Sbbf>>, bytes: usize) {
        // The entry's own overhead counts too, so filterless row groups are bounded as well.
        let bytes = bytes + 64;
        if bytes > self.max_bytes {
            return;
        }
        let mut b = self.inner.lock();
        if b.map.insert((id, rg), (bloom, bytes)).is_some() {
            return;
        }
        b.order.push_back((id, rg));
        b.bytes += bytes;
        while b.bytes > self.max_bytes {
            let Some(old) = b.order.pop_front() else { break };
            if let Some((_, n)) = b.map.remove(&old) {
                b.bytes -= n;
            }
        }
    }

    /// Bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}
