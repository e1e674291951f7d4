//! Prometheus's XOR chunk encoding of float samples (the Gorilla scheme with Prometheus's bit
//! layout): the head's compressed form of its samples, and the bytes remote-read's streamed
//! answer carries. Prometheus decodes the latter with its own TSDB iterator, so the layout must
//! be bit-exact.
//!
//! A chunk is a 2-byte big-endian sample count followed by a bit stream written most
//! significant bit first, its last byte padded with zeros:
//!
//! - sample 1: its timestamp as a signed (zigzag) varint, its value's 64 bits;
//! - sample 2: the timestamp delta as an unsigned varint, the value XORed with the previous one;
//! - later samples: the delta of deltas in one of five widths (`0`; `10` + 14 bits; `110` + 17;
//!   `1110` + 20; `1111` + 64), each width admitting `-(2^(n-1) - 1) ..= 2^(n-1)`, then the value
//!   XORed with the previous one.
//!
//! A value XOR is `0` when equal; else `1`, then either `0` and the meaningful bits in the
//! previous window (when the new delta's leading and trailing zeros both fit in it) or `1`, 5
//! bits of leading zeros (capped at 31), 6 bits of meaningful-bit count (64 written as 0) and
//! those bits.
//!
//! Samples need not be in time order: deltas wrap, and a chunk reads back in the order it was
//! written (the head sorts a series that arrived out of order when it reads it).

use crate::types::{Sample, TimestampMs};

/// The most samples Prometheus puts in one chunk; the head and remote-read cut chunks at it.
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Bits appended most significant first, through a 64-bit accumulator (whole bytes leave it
/// once 32 bits are pending, so every write of up to 32 bits fits).
#[derive(Debug, Clone)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    /// Bits of `acc` not yet in `bytes` (its lowest ones); below 32 between writes.
    pending: u32,
}

impl BitWriter {
    #[inline]
    fn bits(&mut self, v: u64, n: u32) {
        if n > 32 {
            self.bits(v >> 32, n - 32);
            self.bits(v, 32);
            return;
        }
        self.acc = (self.acc << n) | (v & ((1u64 << n) - 1));
        self.pending += n;
        if self.pending >= 32 {
            while self.pending >= 8 {
                self.pending -= 8;
                self.bytes.push((self.acc >> self.pending) as u8);
            }
        }
    }

    #[inline]
    fn bit(&mut self, one: bool) {
        self.bits(u64::from(one), 1);
    }

    /// The pending bits as bytes, the last one padded with zeros: at most 4.
    fn tail(&self) -> ([u8; 4], usize) {
        let mut out = [0u8; 4];
        let (mut rest, mut i) = (self.pending, 0);
        while rest >= 8 {
            rest -= 8;
            out[i] = (self.acc >> rest) as u8;
            i += 1;
        }
        if rest > 0 {
            out[i] = (self.acc << (8 - rest)) as u8;
            i += 1;
        }
        (out, i)
    }
}

/// Builds one XOR chunk, appended in place; readable at any time ([`XorChunk::samples`]).
#[derive(Debug, Clone)]
pub struct XorChunk {
    out: BitWriter,
    count: u16,
    min_t: TimestampMs,
    max_t: TimestampMs,
    t: i64,
    t_delta: u64,
    v: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty chunk with room for `bytes` encoded bytes before it grows (a series' next chunk
    /// sized like its last one wastes a few percent, where doubling wastes up to half).
    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = Vec::with_capacity(bytes.max(2));
        // The count goes in the first two bytes when the chunk is finished.
        out.extend_from_slice(&[0, 0]);
        Self {
            out: BitWriter {
                bytes: out,
                acc: 0,
                pending: 0,
            },
            count: 0,
            min_t: TimestampMs::MAX,
            max_t: TimestampMs::MIN,
            t: 0,
            t_delta: 0,
            v: 0,
            // No window yet: the first non-zero XOR always writes its own.
            leading: u8::MAX,
            trailing: 0,
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The earliest and latest timestamps held (`(MAX, MIN)` while empty).
    pub fn time_range(&self) -> (TimestampMs, TimestampMs) {
        (self.min_t, self.max_t)
    }

    /// The sample pushed last, without decoding (the encoder keeps it for the next delta).
    pub fn last(&self) -> Option<(TimestampMs, f64)> {
        (self.count > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.out.bytes.capacity()
    }

    /// Appends a sample; at most [`u16::MAX`] per chunk (callers cut at
    /// [`MAX_SAMPLES_PER_CHUNK`]).
    pub fn push(&mut self, t: TimestampMs, v: f64) {
        debug_assert!(self.count < u16::MAX, "a chunk holds at most u16::MAX samples");
        let mut t_delta = 0;
        match self.count {
            0 => {
                self.varint(t);
                self.out.bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                self.uvarint(t_delta);
                self.value(v.to_bits());
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.out.bit(false);
                } else if fits(dod, 14) {
                    self.out.bits(0b10 << 14 | (dod as u64 & 0x3fff), 16);
                } else if fits(dod, 17) {
                    self.out.bits(0b110 << 17 | (dod as u64 & 0x1_ffff), 20);
                } else if fits(dod, 20) {
                    self.out.bits(0b1110 << 20 | (dod as u64 & 0xf_ffff), 24);
                } else {
                    self.out.bits(0b1111, 4);
                    self.out.bits(dod as u64, 64);
                }
                self.value(v.to_bits());
            }
        }
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
        self.t = t;
        self.v = v.to_bits();
        self.t_delta = t_delta;
        self.count += 1;
    }

    /// How many bytes [`XorChunk::into_bytes`] would answer now.
    pub fn byte_len(&self) -> usize {
        self.out.bytes.len() + (self.out.pending as usize).div_ceil(8)
    }

    /// The finished chunk's bytes, sample count first, sized exactly.
    pub fn into_bytes(self) -> Vec<u8> {
        let (tail, n) = self.out.tail();
        let mut bytes = self.out.bytes;
        bytes.extend_from_slice(&tail[..n]);
        bytes[..2].copy_from_slice(&self.count.to_be_bytes());
        bytes.shrink_to_fit();
        bytes
    }

    /// The bytes [`XorChunk::into_bytes`] would answer now, the chunk kept open: what a read
    /// that ships chunks copies of a chunk still being appended to.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tail, n) = self.out.tail();
        let mut bytes = Vec::with_capacity(self.out.bytes.len() + n);
        bytes.extend_from_slice(&self.out.bytes);
        bytes.extend_from_slice(&tail[..n]);
        bytes[..2].copy_from_slice(&self.count.to_be_bytes());
        bytes
    }

    /// The samples held, in the order they were pushed.
    pub fn samples(&self) -> XorSamples<'_> {
        let (tail, tail_len) = self.out.tail();
        XorSamples::over(&self.out.bytes[2..], tail, tail_len, self.count)
    }

    fn value(&mut self, bits: u64) {
        let delta = bits ^ self.v;
        if delta == 0 {
            self.out.bit(false);
            return;
        }
        // Capped so it fits the 5-bit field.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            // `10`, then the meaningful bits of the previous window.
            let width = u32::from(64 - self.leading - self.trailing);
            self.out.bits(0b10, 2);
            self.out.bits(delta >> self.trailing, width);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let significant = 64 - leading - trailing;
        // `11`, 5 bits of leading zeros, 6 of width (64 travels as 0: 0 never occurs).
        let header = 0b11 << 11 | u64::from(leading) << 6 | u64::from(significant & 63);
        self.out.bits(header, 13);
        self.out.bits(delta >> trailing, u32::from(significant));
    }

    /// Go's `binary.PutVarint`: zigzag, then 7 bits a byte, least significant first.
    fn varint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Go's `binary.PutUvarint`.
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.bits(u64::from(v as u8 | 0x80), 8);
            v >>= 7;
        }
        self.out.bits(v, 8);
    }
}

/// Whether `x` fits an `n`-bit delta-of-delta field as Prometheus reads it back (its decoder
/// takes `2^(n-1)` as positive, so the range is asymmetric).
fn fits(x: i64, n: u32) -> bool {
    let half = 1_i64 << (n - 1);
    -(half - 1) <= x && x <= half
}

/// The samples of a chunk, in the order they were written. Ends early (without panicking) on
/// bytes that are not a well-formed chunk.
#[derive(Debug, Clone)]
pub struct XorSamples<'a> {
    body: &'a [u8],
    tail: [u8; 4],
    tail_len: usize,
    /// Next byte of `body` then `tail` to load.
    pos: usize,
    /// Loaded bits, most significant first; `n` of them valid.
    buf: u64,
    n: u32,
    read: u16,
    count: u16,
    t: i64,
    delta: i64,
    v: u64,
    leading: u32,
    trailing: u32,
}

impl<'a> XorSamples<'a> {
    /// The samples of a finished chunk (as [`XorChunk::into_bytes`] or Prometheus writes it).
    pub fn new(chunk: &'a [u8]) -> Self {
        match chunk {
            [hi, lo, body @ ..] => Self::over(body, [0; 4], 0, u16::from_be_bytes([*hi, *lo])),
            _ => Self::over(&[], [0; 4], 0, 0),
        }
    }

    /// Samples the chunk holds (its count; those already read included).
    pub fn held(&self) -> usize {
        usize::from(self.count)
    }

    fn over(body: &'a [u8], tail: [u8; 4], tail_len: usize, count: u16) -> Self {
        Self {
            body,
            tail,
            tail_len,
            pos: 0,
            buf: 0,
            n: 0,
            read: 0,
            count,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        // Whole bytes that fit after the `n` loaded bits, at once when 8 are there to read.
        if let Some(word) = self.body.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(word.try_into().expect("8 bytes"));
            let take = (64 - self.n) / 8;
            let total = self.n + take * 8;
            self.buf |= word >> self.n;
            if total < 64 {
                // Bits of the next byte shifted in with the word: not loaded yet.
                self.buf &= !(u64::MAX >> total);
            }
            self.pos += take as usize;
            self.n = total;
            return;
        }
        while self.n <= 56 {
            let byte = match self.body.get(self.pos) {
                Some(b) => *b,
                None if self.pos - self.body.len() < self.tail_len => self.tail[self.pos - self.body.len()],
                None => return,
            };
            self.pos += 1;
            self.buf |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    /// The next `k` bits, `1 <= k <= 56` (a refill leaves at least 57 loaded unless the stream
    /// ends).
    #[inline(always)]
    fn bits(&mut self, k: u32) -> Option<u64> {
        if self.n < k {
            self.refill();
            if self.n < k {
                return None;
            }
        }
        let v = self.buf >> (64 - k);
        self.buf <<= k;
        self.n -= k;
        Some(v)
    }

    /// The next `k` bits, `1 <= k <= 64`.
    #[inline(always)]
    fn long(&mut self, k: u32) -> Option<u64> {
        if k <= 56 {
            return self.bits(k);
        }
        let hi = self.bits(k - 32)?;
        Some(hi << 32 | self.bits(32)?)
    }

    /// A unary prefix of at most `max` (`<= 8`) bits: the ones before the first zero, the zero
    /// consumed too unless `max` ones came first. One look at the loaded bits instead of a
    /// branch per bit: the delta-of-delta and value prefixes are read on every sample.
    #[inline(always)]
    fn ones(&mut self, max: u32) -> Option<u32> {
        if self.n < max {
            self.refill();
        }
        // Bits past the `n` loaded ones are zero, so the count never runs past them.
        let ones = self.buf.leading_ones().min(max);
        let used = if ones == max { max } else { ones + 1 };
        if used > self.n {
            return None;
        }
        self.buf <<= used;
        self.n -= used;
        Some(ones)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bits(8)?;
            v |= (b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    #[inline(always)]
    fn value(&mut self) -> Option<()> {
        match self.ones(2)? {
            // `0`: the value repeats.
            0 => return Some(()),
            // `10`: the previous window.
            1 => {}
            // `11`: a new window, 5 bits of leading zeros and 6 of width read as one field.
            _ => {
                let header = self.bits(11)? as u32;
                self.leading = header >> 6;
                let significant = match header & 63 {
                    0 => 64,
                    n => n,
                };
                self.trailing = 64u32.checked_sub(self.leading + significant)?;
            }
        }
        let significant = 64 - self.leading - self.trailing;
        self.v ^= self.long(significant)? << self.trailing;
        Some(())
    }

    #[inline(always)]
    fn step(&mut self) -> Option<Sample> {
        match self.read {
            0 => {
                let z = self.uvarint()?;
                self.t = (z >> 1) as i64 ^ -((z & 1) as i64);
                self.v = self.long(64)?;
            }
            1 => {
                self.delta = self.uvarint()? as i64;
                self.t = self.t.wrapping_add(self.delta);
                self.value()?;
            }
            _ => {
                // `0`, `10`, `110`, `1110`, `1111`.
                const WIDTHS: [u32; 5] = [0, 14, 17, 20, 64];
                let width = WIDTHS[self.ones(4)? as usize];
                if width > 0 {
                    let mut dod = self.long(width)? as i64;
                    if width < 64 && dod > 1 << (width - 1) {
                        dod -= 1 << width;
                    }
                    self.delta = self.delta.wrapping_add(dod);
                }
                self.t = self.t.wrapping_add(self.delta);
                self.value()?;
            }
        }
        self.read += 1;
        Some(Sample::new(self.t, f64::from_bits(self.v)))
    }
}

impl XorSamples<'_> {
    /// Appends the samples not yet read to `out`: one reservation, and a loop the compiler
    /// keeps in registers (a `Vec::extend` over the iterator checks capacity per sample).
    pub fn read_into(mut self, out: &mut Vec<Sample>) {
        out.reserve(usize::from(self.count - self.read));
        while self.read < self.count {
            match self.step() {
                Some(s) => out.push(s),
                None => break,
            }
        }
    }
}

impl Iterator for XorSamples<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.read >= self.count {
            return None;
        }
        let s = self.step();
        if s.is_none() {
            // Malformed: stop for good.
            self.read = self.count;
        }
        s
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.count - self.read)))
    }
}

/// A series' samples as XOR chunks, as a source that holds them compressed hands them out
/// ([`crate::read::Source::select_chunks`]) so that they travel without being decoded first.
///
/// # Contract
/// - `chunks` hold, in the order they were written, every sample of the series in the range
///   asked for, and may hold samples outside it (a chunk whose span meets the range travels
///   whole).
/// - With `sorted`, the samples of all chunks together are in strictly increasing time order.
///   Without it they may be in any order and repeat a timestamp: the sample written last wins,
///   as [`crate::types::sort_dedup_samples`] keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkedSeries {
    /// The series.
    pub labels: std::sync::Arc<crate::types::Labels>,
    /// Finished chunks ([`XorChunk::into_bytes`]), oldest first.
    pub chunks: Vec<Vec<u8>>,
    /// Whether the samples are already in strictly increasing time order.
    pub sorted: bool,
}

impl ChunkedSeries {
    /// The samples in `range`, sorted, one per timestamp: what [`crate::read::Source::select`]
    /// answers for the series.
    pub fn samples_in(&self, range: crate::types::TimeRange) -> Vec<Sample> {
        decode_chunks(self.chunks.iter().map(Vec::as_slice), self.sorted, range)
    }
}

/// The samples in `range` of a series' `chunks` (oldest first), sorted, one per timestamp (see
/// [`ChunkedSeries`] for `sorted`).
pub fn decode_chunks<'a>(
    chunks: impl Iterator<Item = &'a [u8]> + Clone,
    sorted: bool,
    range: crate::types::TimeRange,
) -> Vec<Sample> {
    // Reserved from the counts the chunks claim, capped by their bytes (a sample after the
    // first two takes at least two bits), so malformed chunks cannot reserve more than their
    // size allows.
    let held = chunks
        .clone()
        .map(|c| XorSamples::new(c).held().min(c.len().saturating_mul(4)))
        .sum();
    let mut out = Vec::with_capacity(held);
    for c in chunks {
        XorSamples::new(c).read_into(&mut out);
    }
    // Sorted samples leave the range only at their ends.
    let inside = |s: Option<&Sample>| s.is_some_and(|s| range.contains(s.timestamp));
    if !(sorted && inside(out.first()) && inside(out.last())) {
        out.retain(|s| range.contains(s.timestamp));
    }
    if !sorted {
        crate::types::sort_dedup_samples(&mut out);
    }
    out
}

#[cfg(test)]
mod tests;
