//! Test support for the read contracts (feature `test-util`).
//!
//! - [`MemSource`] and [`source_conformance`] ([`mod@source`]): the reference semantics of
//!   [`crate::read::Source`] and the suite every `Source` must pass.
//! - [`MemLogSource`] and [`log_source_conformance`] ([`log_source`]): the same for
//!   [`crate::read::LogSource`].
//! - [`MemHistograms`] and [`histogram_source_conformance`] ([`histogram_source`]): the same for
//!   [`crate::read::Source::select_histograms`], the native-histogram read.
//! - [`MemTraceSource`] and [`trace_source_conformance`] ([`trace_source`]): the same for
//!   [`crate::read::TraceSource`].
//! - [`object_store_conformance`] ([`store`]): the object-store behaviours the manifest relies
//!   on, for every store (local disk here, S3 and S3 behind a faulty proxy in the e2e suite).
//! - [`workload`]: synthetic node-exporter-like series for size measurements and benchmarks.
//! - [`xorshift`]: a seeded generator of test inputs.

pub mod histogram_source;
pub mod log_source;
pub mod source;
pub mod store;
pub mod trace_source;
pub mod workload;

pub use histogram_source::{MemHistograms, histogram_source_conformance};
pub use log_source::{MemLogSource, log_source_conformance};
pub use source::{MemChunks, MemSource, source_conformance};
pub use store::{object_store_conformance, open_object_store};
pub use trace_source::{MemTraceSource, trace_source_conformance};

use std::collections::HashMap;

use crate::types::Labels;

/// A seeded xorshift64 generator: reproducible test inputs without a random-number crate.
/// `next()` gives the generator's next state (a zero seed is taken as one).
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.max(1);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Entries with equal labels merged into the first one's place, their items appended in input
/// order (so "later" stays later for the callers' keep-the-last rules): how every reference
/// source takes its input.
fn merge_by_labels<T, I>(input: Vec<T>, parts: impl Fn(&mut T) -> (&Labels, &mut Vec<I>)) -> Vec<T> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut merged: Vec<T> = Vec::new();
    for mut entry in input {
        let (labels, items) = parts(&mut entry);
        match index.get(labels) {
            Some(&i) => {
                let items = std::mem::take(items);
                parts(&mut merged[i]).1.extend(items);
            }
            None => {
                index.insert(labels.clone(), merged.len());
                merged.push(entry);
            }
        }
    }
    merged
}
