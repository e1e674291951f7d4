//! What the head accepts: the input types every decoder produces and [`super::Head::apply`]
//! consumes. The head owns them; `decode` builds them.
//!
//! # The known-span invariant (remote-write's and OTLP metrics' fast path)
//!
//! This is the one place it is written down. A [`SeriesSpan`] is *known* when its labels were
//! not decoded at all: the decoder hashed the series' label bytes as they arrived (a [`RawKey`],
//! seeded by the cluster context, which decides the stamping) and asked whether the head already
//! holds a series under that key ([`KnownSeries::look_up`], all of a write's keys at once). If it
//! does, the labels were validated and stamped when that series was first appended, so only the
//! samples are decoded and the span carries no labels: the head finds the series by its raw key.
//! Three parts make this correct, and they live in three places:
//!
//! 1. the head's *raw index* (raw key → series, in `head.rs`) is filled only with spans whose
//!    labels were fully decoded, and cleared only by [`super::Head::freeze`];
//! 2. the decoder (`decode::remote_write::v1`, and OTLP metrics' translation, whose raw keys hash
//!    a data point's identity as it arrived: `decode::otlp::metrics::identity`) marks a span known
//!    only when the raw index answered yes for its exact key, and never for a series carrying
//!    native histograms or exemplars (those outputs need the labels); built series are learnt
//!    under their keys through [`Input::series_keys`];
//! 3. the ingester decodes and appends while holding its gate *shared*, and a freeze takes the
//!    gate *exclusively* (`ingester.rs`), so no freeze can clear the raw index between the
//!    decoder's lookup and the append.
//!
//! If a known span's key is nevertheless missing at append time, [`super::Head::apply`] counts
//! its samples as *unplaced* instead of storing them under a guess, and the write fails with a
//! retryable error rather than being acknowledged.
//!
//! A known span may also carry its [`Placement`]: where the head held the series when the
//! decoder asked ([`Lookup::Placed`]). The append then finds the series by it, and
//! per-cluster usage counts it by the cluster the placement names, neither looking the raw key
//! up again (each look-up took the raw index's lock; the three were a quarter of remote-write's
//! CPU). A placement is only a hint: when the series found under its id is not the one it
//! names, the append looks the raw key up as for any known span.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use tributary_storage::types::{Sample, Series, SeriesId};

use super::SignalBlock;

/// A series' identity as encoded on the wire: xxh3-128 of its label fields' bytes, seeded by a
/// hash of the cluster context. Equal keys mean byte-identical labels stamped the same way.
pub type RawKey = u128;

/// A map keyed by [`RawKey`]. The key is a hash already, so it is its own hash: SipHash over
/// it cost about as much as the lookups themselves, three per known series per write (the
/// decoder's `is_known`, per-cluster usage, the append).
pub(crate) type RawKeyMap<V> = HashMap<RawKey, V, BuildHasherDefault<RawKeyHasher>>;

/// The hasher of [`RawKeyMap`]: the key's two halves folded.
#[derive(Debug, Default)]
pub(crate) struct RawKeyHasher(u64);

impl Hasher for RawKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, key: u128) {
        self.0 ^= key as u64 ^ (key >> 64) as u64;
    }

    /// Only [`RawKey`]s are hashed; anything else still hashes deterministically.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
}

/// Answers whether the head holds a series under a raw key (so its labels need no validation).
pub trait KnownSeries {
    /// True when a span with this key may be sent without labels (see the module docs).
    fn is_known(&self, key: RawKey) -> bool;

    /// Each of `keys` looked up, appended to `out` in the same order: [`Lookup::Placed`] when
    /// the implementation can tell where the head holds the series (the head can), else
    /// [`KnownSeries::is_known`]'s answer.
    ///
    /// A decoder asks once per write, for every key that may take the short path: the head then
    /// looks them up shard by shard, each shard's lock taken once and its look-ups back to back,
    /// so the CPU overlaps their cache misses. One at a time, between the decoding of each
    /// series, each look-up waited for its misses alone (a third of remote-write's CPU).
    fn look_up(&self, keys: &[RawKey], out: &mut Vec<Lookup>) {
        out.extend(keys.iter().map(|&k| {
            if self.is_known(k) {
                Lookup::Known
            } else {
                Lookup::Unknown
            }
        }));
    }
}

/// What [`KnownSeries::look_up`] found under one raw key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No series: the span takes the full path, its labels decoded and checked.
    Unknown,
    /// A series, its place not told: the append finds it by the raw key.
    Known,
    /// A series, and where the head holds it.
    Placed(Placement),
}

impl Lookup {
    /// True unless [`Lookup::Unknown`].
    pub fn is_known(self) -> bool {
        self != Lookup::Unknown
    }

    /// The placement, for [`Lookup::Placed`].
    pub fn placement(self) -> Option<Placement> {
        match self {
            Lookup::Placed(p) => Some(p),
            _ => None,
        }
    }
}

/// Where the head held a known series when the decoder looked its raw key up: the series' id
/// and the address of its shared label set, which the raw index keeps alive (so no other label
/// set can take that address while the key is indexed), and its cluster name's index in the
/// head (what per-cluster usage counts it by). See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub(crate) id: SeriesId,
    pub(crate) labels: usize,
    pub(crate) cluster: u32,
}

/// For callers with no head (tests, benches of the full path): nothing is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingKnown;

impl KnownSeries for NothingKnown {
    fn is_known(&self, _: RawKey) -> bool {
        false
    }
}

/// One series of a batch: ranges into the batch's flat label and sample arrays.
///
/// A `known` series has an empty label range: the head finds it by `raw_key`.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSpan {
    /// This series' labels in [`WriteBatch::labels`] (empty when `known`).
    pub labels: Range<u32>,
    /// This series' samples in [`WriteBatch::samples`].
    pub samples: Range<u32>,
    /// `None` when the labels were not contiguous on the wire (never from Prometheus).
    pub raw_key: Option<RawKey>,
    /// Sent without labels: see the module docs.
    pub known: bool,
    /// For a known span, where the head held it when decoded (a hint; see the module docs).
    pub placed: Option<Placement>,
}

/// Accepted float series, borrowing label strings from the decompressed body (and the cluster
/// context). Labels of each series are final: sorted, validated, stamped.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    /// Every series' labels, back to back.
    pub labels: Vec<(&'a str, &'a str)>,
    /// Every series' samples, back to back.
    pub samples: Vec<Sample>,
    /// The series, as ranges into `labels` and `samples`.
    pub series: Vec<SeriesSpan>,
}

impl<'a> WriteBatch<'a> {
    /// The labels of one series of this batch.
    pub fn series_labels(&self, s: &SeriesSpan) -> &[(&'a str, &'a str)] {
        &self.labels[s.labels.start as usize..s.labels.end as usize]
    }

    /// The samples of one series of this batch.
    pub fn series_samples(&self, s: &SeriesSpan) -> &[Sample] {
        &self.samples[s.samples.start as usize..s.samples.end as usize]
    }

    /// Float samples in the batch.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Appends owned series (what translating decoders build) as unknown spans, each learnt
    /// under its entry of `keys` when there is one (OTLP's raw keys; see the module docs).
    pub(crate) fn push_series(&mut self, series: &'a [Series], keys: &[Option<RawKey>]) {
        for (i, s) in series.iter().enumerate() {
            let l0 = self.labels.len() as u32;
            let s0 = self.samples.len() as u32;
            self.labels.extend(s.labels.iter().map(|l| (l.name, l.value)));
            self.samples.extend_from_slice(&s.samples);
            self.series.push(SeriesSpan {
                labels: l0..self.labels.len() as u32,
                samples: s0..self.samples.len() as u32,
                raw_key: keys.get(i).copied().flatten(),
                known: false,
                placed: None,
            });
        }
    }
}

/// Everything one write adds to the head: float series (zero-copy from the body, or owned by a
/// translating decoder) and the other signals.
#[derive(Debug, Default)]
pub struct Input<'a> {
    /// Float series borrowed from the request body (remote-write).
    pub floats: WriteBatch<'a>,
    /// Float series a decoder built (OTLP's translation).
    pub series: Vec<Series>,
    /// Per entry of `series` (or empty: none), the raw key the head learns it under. Kept
    /// aligned by `Input::retain_series`.
    pub series_keys: Vec<Option<RawKey>>,
    /// Native histograms, exemplars, metadata and log records.
    pub signals: SignalBlock,
}

impl Input<'_> {
    /// Keeps the built series `keep` returns true for (it may change them), with their raw keys.
    pub(crate) fn retain_series(&mut self, mut keep: impl FnMut(&mut Series) -> bool) {
        if self.series_keys.is_empty() {
            self.series.retain_mut(keep);
            return;
        }
        let mut keys = std::mem::take(&mut self.series_keys).into_iter();
        let mut kept_keys = Vec::with_capacity(self.series.len());
        self.series.retain_mut(|s| {
            let key = keys.next().flatten();
            let k = keep(s);
            if k {
                kept_keys.push(key);
            }
            k
        });
        self.series_keys = kept_keys;
    }

    /// True when applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.floats.series.is_empty() && self.series.iter().all(|s| s.samples.is_empty()) && self.signals.is_empty()
    }

    /// Float samples it holds.
    pub fn sample_count(&self) -> usize {
        self.floats.sample_count() + self.series.iter().map(|s| s.samples.len()).sum::<usize>()
    }
}
