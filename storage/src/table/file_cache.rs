//! What is derived from one immutable file and kept in memory (the metrics table's series tables
//! and label listings, the rollup tables' day summaries), keyed by a string naming the file (and
//! whatever else the entry depends on), within an approximate byte budget; the oldest entries are
//! dropped first, or entries at random ([`FileCache::evicting_at_random`]) where reads sweep the
//! same files over and over.
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
    /// Drops entries at random rather than the oldest first.
    at_random: bool,
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
    /// xorshift64 state picking the entry dropped at random (fixed seed: reproducible).
    draw: u64,
}

impl<T> State<T> {
    /// The next xorshift64 draw.
    fn next_draw(&mut self) -> u64 {
        let mut x = self.draw;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.draw = x;
        x
    }
}

impl<T: Weighed> FileCache<T> {
    /// A budget of 0 keeps nothing. The oldest entries are dropped first.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            at_random: false,
            state: Mutex::new(State {
                bytes: 0,
                evictions: 0,
                files: HashMap::new(),
                order: VecDeque::new(),
                draw: 0x9E37_79B9_7F4A_7C15,
            }),
        }
    }

    /// As [`FileCache::new`], but the entry dropped to make room is any one, drawn at random.
    /// For entries read in sweeps: a long window reads every day file of its span in order at
    /// each evaluation, and when they need a little more than the budget, dropping the oldest
    /// first drops each entry just before the next sweep asks for it, so no sweep hits at all;
    /// at random, a sweep finds most of them.
    pub(crate) fn evicting_at_random(budget: usize) -> Self {
        Self {
            at_random: true,
            ..Self::new(budget)
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
            let victim = if self.at_random && !state.order.is_empty() {
                let i = (state.next_draw() % state.order.len() as u64) as usize;
                state.order.swap_remove_back(i)
            } else {
                state.order.pop_front()
            };
            let Some(victim) = victim else {
                break;
            };
            if let Some((_, b)) = state.files.remove(&victim) {
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

    /// Sweeps over 110 entries where 100 fit: every look-up misses when the oldest go first;
    /// at random, most hit, and the budget holds either way.
    #[test]
    fn sweeps_a_little_past_the_budget_mostly_hit_when_entries_go_at_random() {
        let keys: Vec<String> = (0..110).map(|i| format!("k{i:03}")).collect();
        let entry = Arc::new(Sized(100));
        let budget = 100 * (100 + keys[0].len());
        for (cache, least, most) in [
            (FileCache::new(budget), 0, 0),
            (FileCache::evicting_at_random(budget), 75, 110),
        ] {
            let mut hits = 0;
            for sweep in 0..6 {
                for k in &keys {
                    let hit = cache.get(k).is_some();
                    if sweep >= 2 {
                        hits += usize::from(hit);
                    }
                    if !hit {
                        cache.insert(k, entry.clone());
                    }
                }
                let stats = cache.stats();
                assert!(stats.bytes <= budget && stats.entries == 100, "{stats:?}");
            }
            let per_sweep = hits / 4;
            assert!(
                (least..=most).contains(&per_sweep),
                "random {}: {per_sweep} of 110 hit per sweep",
                cache.at_random
            );
        }
    }
}
