//! What is derived from one immutable file and kept in memory (the metrics table's series tables
//! and label listings, the rollup tables' day summaries), keyed by a string naming the file (and
//! whatever else the entry depends on), within an approximate byte budget; the oldest entries are
//! dropped first.
//!
//! Files never change once written, so an entry never goes stale; a deleted file's entry is
//! simply never asked for again and ages out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

/// The part of an entry's key naming the selector it was read for: its matchers, in order.
pub(crate) fn matchers_key(matchers: &[crate::types::Matcher]) -> String {
    use std::fmt::Write;
    let mut key = String::new();
    for m in matchers {
        let _ = write!(key, "{m},");
    }
    key
}

/// Values that know their approximate heap size.
pub(crate) trait Weighed {
    fn bytes(&self) -> usize;
}

#[derive(Debug)]
pub(crate) struct FileCache<T> {
    budget: usize,
    state: Mutex<State<T>>,
}

/// What a file cache holds, for the server's `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileCacheStats {
    /// Files with an entry.
    pub entries: usize,
    /// Approximate heap bytes of the entries (what the budget counts).
    pub bytes: usize,
    /// Entries dropped to fit the budget since start.
    pub evictions: u64,
}

#[derive(Debug)]
struct State<T> {
    bytes: usize,
    evictions: u64,
    files: HashMap<String, (Arc<T>, usize)>,
    /// Insertion order, for eviction.
    order: VecDeque<String>,
}

impl<T: Weighed> FileCache<T> {
    /// A budget of 0 keeps nothing.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                bytes: 0,
                evictions: 0,
                files: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The budget it keeps entries within.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<T>> {
        self.state.lock().files.get(key).map(|(v, _)| v.clone())
    }

    /// Keeps `value` unless it alone exceeds the budget; drops the oldest entries to fit.
    pub(crate) fn insert(&self, key: &str, value: Arc<T>) {
        let bytes = value.bytes() + key.len();
        if bytes > self.budget {
            return;
        }
        let mut state = self.state.lock();
        if state.files.contains_key(key) {
            return;
        }
        while state.bytes + bytes > self.budget {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = state.files.remove(&oldest) {
                state.bytes -= b;
                state.evictions += 1;
            }
        }
        state.bytes += bytes;
        state.order.push_back(key.to_string());
        state.files.insert(key.to_string(), (value, bytes));
    }

    pub(crate) fn stats(&self) -> FileCacheStats {
        let state = self.state.lock();
        FileCacheStats {
            entries: state.files.len(),
            bytes: state.bytes,
            evictions: state.evictions,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state.lock().files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sized(usize);
    impl Weighed for Sized {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn the_budget_evicts_the_oldest_entry() {
        let one = Arc::new(Sized(100));
        let bytes = 100 + "k0".len();
        let cache = FileCache::new(2 * bytes);
        cache.insert("k0", one.clone());
        cache.insert("k1", one.clone());
        assert_eq!(cache.len(), 2);
        cache.insert("k2", one.clone());
        assert_eq!(cache.len(), 2);
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evictions), (2, 2 * bytes, 1));
        assert!(cache.get("k0").is_none() && cache.get("k1").is_some() && cache.get("k2").is_some());
        // An entry larger than the whole budget is not kept.
        let small = FileCache::new(bytes - 1);
        small.insert("k0", one);
        assert_eq!(small.len(), 0);
    }
}
