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
                // A series' chunks are alike in size: the next one starts with room for this
                // one's bytes and an eighth more.
                let len = self.open.byte_len();
                let full = std::mem::replace(&mut self.open, XorChunk::with_capacity(len + len / 8));
                let bytes = full.into_bytes().into_boxed_slice();
                self.finished.push(Finished { bytes, min_t, max_t });
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

    /// The sample appended last (the open chunk is never empty once a sample is held).
    pub(super) fn last(&self) -> Option<Sample> {
        self.open.last().map(|(t, v)| Sample::new(t, v))
    }

    /// Each chunk whose span meets `range`, oldest first: its samples, and whether the span
    /// lies wholly inside the range (then every sample is in it, none needs checking).
    fn meeting(&self, range: TimeRange) -> impl Iterator<Item = (XorSamples<'_>, bool)> {
        let finished = self
            .finished
            .iter()
            .map(|f| (f.min_t, f.max_t, XorSamples::new(&f.bytes)));
        let (min_t, max_t) = self.open.time_range();
        finished
            .chain(std::iter::once((min_t, max_t, self.open.samples())))
            .filter(move |(min_t, max_t, _)| *min_t <= range.end && range.start <= *max_t)
            .map(move |(min_t, max_t, samples)| (samples, range.start <= min_t && max_t <= range.end))
    }

    /// Appends the samples in `range` to `out`, in arrival order, decoding only the chunks
    /// whose span meets it.
    pub(super) fn read(&self, range: TimeRange, out: &mut Vec<Sample>) {
        for (samples, inside) in self.meeting(range) {
            if inside {
                samples.read_into(out);
            } else {
                out.extend(samples.filter(|s| range.contains(s.timestamp)));
            }
        }
    }

    /// Appends the bytes of each chunk whose span meets `range` to `out`, oldest first (the
    /// open chunk as it is now): what a read that ships chunks copies instead of decoding.
    pub(super) fn chunks_meeting(&self, range: TimeRange, out: &mut Vec<Vec<u8>>) {
        let meets = |min_t: TimestampMs, max_t: TimestampMs| min_t <= range.end && range.start <= max_t;
        out.extend(
            self.finished
                .iter()
                .filter(|f| meets(f.min_t, f.max_t))
                .map(|f| f.bytes.to_vec()),
        );
        let (min_t, max_t) = self.open.time_range();
        if !self.open.is_empty() && meets(min_t, max_t) {
            out.push(self.open.to_bytes());
        }
    }

    /// Samples in `range` (with repeats, for a series that repeated a timestamp), decoding only
    /// the chunks that straddle one of its ends.
    pub(super) fn count_in(&self, range: TimeRange) -> usize {
        self.meeting(range)
            .map(|(samples, inside)| {
                if inside {
                    samples.held()
                } else {
                    samples.filter(|s| range.contains(s.timestamp)).count()
                }
            })
            .sum()
    }

    /// Heap bytes held (chunk bytes and the chunk list).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.finished.iter().map(|f| f.bytes.len()).sum::<usize>()
            + self.finished.capacity() * std::mem::size_of::<Finished>()
            + self.open.heap_bytes()
    }
}
