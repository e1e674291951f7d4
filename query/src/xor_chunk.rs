//! Prometheus's XOR chunk encoding (the Gorilla scheme with Prometheus's bit layout), which
//! remote-read's streamed answer carries: Prometheus decodes these bytes with its own TSDB
//! iterator, so the layout must be bit-exact.
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

/// The most samples Prometheus puts in one chunk; remote-read cuts chunks at it too.
pub(crate) const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// Bits appended most significant first.
#[derive(Debug, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits still free in the last byte (0: a new byte is needed).
    free: u8,
}

impl BitWriter {
    fn bit(&mut self, one: bool) {
        if self.free == 0 {
            self.bytes.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if one {
            *self.bytes.last_mut().expect("pushed above") |= 1 << self.free;
        }
    }

    /// The low `n` bits of `v`, most significant first.
    fn bits(&mut self, v: u64, n: u8) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    /// Whole bytes; only used before any bit, where the stream is byte-aligned.
    fn byte(&mut self, b: u8) {
        self.bits(u64::from(b), 8);
    }
}

/// Builds one XOR chunk; [`XorChunk::push`] samples in increasing time order.
#[derive(Debug)]
pub(crate) struct XorChunk {
    out: BitWriter,
    count: u16,
    min_t: i64,
    t: i64,
    t_delta: u64,
    v: f64,
    leading: u8,
    trailing: u8,
}

impl XorChunk {
    pub(crate) fn new() -> Self {
        let mut out = BitWriter::default();
        out.byte(0);
        out.byte(0);
        Self {
            out,
            count: 0,
            min_t: 0,
            t: 0,
            t_delta: 0,
            v: 0.0,
            // No window yet: the first non-zero XOR always writes its own.
            leading: u8::MAX,
            trailing: 0,
        }
    }

    /// The first and last timestamps (meaningless while empty).
    pub(crate) fn time_range(&self) -> (i64, i64) {
        (self.min_t, self.t)
    }

    /// Appends a sample later than the previous one.
    pub(crate) fn push(&mut self, t: i64, v: f64) {
        let mut t_delta = 0;
        match self.count {
            0 => {
                self.min_t = t;
                self.varint(t);
                self.out.bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                self.uvarint(t_delta);
                self.value(v);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.out.bit(false);
                } else if fits(dod, 14) {
                    self.out.bits(0b10, 2);
                    self.out.bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.out.bits(0b110, 3);
                    self.out.bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.out.bits(0b1110, 4);
                    self.out.bits(dod as u64, 20);
                } else {
                    self.out.bits(0b1111, 4);
                    self.out.bits(dod as u64, 64);
                }
                self.value(v);
            }
        }
        self.t = t;
        self.v = v;
        self.t_delta = t_delta;
        self.count += 1;
    }

    /// The chunk's bytes, sample count first.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.out.bytes;
        bytes[..2].copy_from_slice(&self.count.to_be_bytes());
        bytes
    }

    fn value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v.to_bits();
        if delta == 0 {
            self.out.bit(false);
            return;
        }
        self.out.bit(true);
        // Capped so it fits the 5-bit field.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            self.out.bit(false);
            self.out.bits(delta >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.out.bit(true);
        self.out.bits(u64::from(leading), 5);
        let significant = 64 - leading - trailing;
        // 64 does not fit in 6 bits; it travels as 0 (0 itself never occurs: delta != 0).
        self.out.bits(u64::from(significant), 6);
        self.out.bits(delta >> trailing, significant);
    }

    /// Go's `binary.PutVarint`: zigzag, then 7 bits a byte, least significant first.
    fn varint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Go's `binary.PutUvarint`.
    fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.byte(v as u8);
    }
}

/// Whether `x` fits an `n`-bit delta-of-delta field as Prometheus reads it back (its decoder
/// takes `2^(n-1)` as positive, so the range is asymmetric).
fn fits(x: i64, n: u32) -> bool {
    let half = 1_i64 << (n - 1);
    -(half - 1) <= x && x <= half
}

#[cfg(test)]
mod tests;
