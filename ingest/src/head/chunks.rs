//! A series' samples in memory, compressed: XOR chunks ([`tributary_storage::xor_chunk`]) of at
//! most [`MAX_SAMPLES_PER_CHUNK`] samples, the finished ones sized exactly, the last one
//! appended in place.
//!
//! Why: uncompressed, a sample costs 16 bytes plus the growth slack of its vector (up to
//! double); a regularly scraped series costs about 1–2 bytes a sample in XOR chunks. A read
//! decodes only the chunks whose time span meets the range asked for.
//!
//! Samples are kept in arrival order (XOR deltas wrap, so order does not matter to the
//! encoding); the series records whether they arrived sorted, and readers sort those that did
//! not.

use tributary_storage::types::{Sample, TimeRange, TimestampMs};
use tributary_storage::xor_chunk::{MAX_SAMPLES_PER_CHUNK, XorChunk, XorSamples};

/// A finished chunk: its bytes (sample count first) and time span.
#[derive(Debug)]
struct Finished {
    bytes: Box<[u8]>,
    min_t: TimestampMs,
    max_t: TimestampMs,
}

/// One series' samples, compressed. See the module docs.
#[derive(Debug, Default)]
pub(super) struct SampleChunks {
    finished: Vec<Finished>,
    open: XorChunk,
    count: usize,
}

impl SampleChunks {
    /// Appends samples in arrival order.
    pub(super) fn push(&mut self, samples: &[Sample]) {
        for s in samples {
            if self.open.len() == MAX_SAMPLES_PER_CHUNK {
                let (min_t, max_t) = self.open.time_range();
                let full = std::mem::take(&mut self.open);
                self.finished.push(Finished {
                    bytes: full.into_bytes().into_boxed_slice(),
                    min_t,
                    max_t,
                });
            }
            self.open.push(s.timestamp, s.value);
        }
        self.count += samples.len();
    }

    /// Samples held.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends the samples in `range` to `out`, in arrival order, decoding only the chunks
    /// whose span meets it.
    pub(super) fn read(&self, range: TimeRange, out: &mut Vec<Sample>) {
        let meets = |min_t: TimestampMs, max_t: TimestampMs| min_t <= range.end && range.start <= max_t;
        let inside = |min_t: TimestampMs, max_t: TimestampMs| range.start <= min_t && max_t <= range.end;
        let decode = |out: &mut Vec<Sample>, min_t, max_t, samples: XorSamples<'_>| {
            if inside(min_t, max_t) {
                out.extend(samples);
            } else if meets(min_t, max_t) {
                out.extend(samples.filter(|s| range.contains(s.timestamp)));
            }
        };
        let (open_min, open_max) = self.open.time_range();
        for f in &self.finished {
            decode(out, f.min_t, f.max_t, XorSamples::new(&f.bytes));
        }
        decode(out, open_min, open_max, self.open.samples());
    }

    /// Samples in `range` (with repeats, for a series that repeated a timestamp), decoding only
    /// the chunks that straddle one of its ends.
    pub(super) fn count_in(&self, range: TimeRange) -> usize {
        let count = |min_t: TimestampMs, max_t: TimestampMs, len: usize, samples: &mut dyn Iterator<Item = Sample>| {
            if max_t < range.start || range.end < min_t {
                0
            } else if range.start <= min_t && max_t <= range.end {
                len
            } else {
                samples.filter(|s| range.contains(s.timestamp)).count()
            }
        };
        let finished: usize = self
            .finished
            .iter()
            .map(|f| {
                let len = f
                    .bytes
                    .get(..2)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                count(f.min_t, f.max_t, len, &mut XorSamples::new(&f.bytes))
            })
            .sum();
        let (min_t, max_t) = self.open.time_range();
        finished + count(min_t, max_t, self.open.len(), &mut self.open.samples())
    }

    /// Heap bytes held (chunk bytes and the chunk list).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.finished.iter().map(|f| f.bytes.len()).sum::<usize>()
            + self.finished.capacity() * std::mem::size_of::<Finished>()
            + self.open.heap_bytes()
    }
}
