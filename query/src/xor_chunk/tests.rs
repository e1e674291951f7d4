use super::*;

/// An independent reader of the layout in the module docs, written from Prometheus's
/// `xorIterator`: what we encode must read back exactly.
fn decode(bytes: &[u8]) -> Vec<(i64, f64)> {
    struct Bits<'a> {
        bytes: &'a [u8],
        pos: usize,
    }
    impl Bits<'_> {
        fn bit(&mut self) -> bool {
            let b = self.bytes[self.pos / 8] >> (7 - self.pos % 8) & 1;
            self.pos += 1;
            b == 1
        }
        fn bits(&mut self, n: u32) -> u64 {
            (0..n).fold(0, |acc, _| acc << 1 | u64::from(self.bit()))
        }
        fn uvarint(&mut self) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = self.bits(8);
                v |= (b & 0x7f) << shift;
                if b < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
    }
    let count = u16::from_be_bytes([bytes[0], bytes[1]]);
    let mut r = Bits { bytes, pos: 16 };
    let mut out: Vec<(i64, f64)> = Vec::new();
    let (mut t, mut delta, mut v) = (0i64, 0i64, 0u64);
    let (mut leading, mut trailing) = (0u32, 0u32);
    for i in 0..count {
        match i {
            0 => {
                let z = r.uvarint();
                t = (z >> 1) as i64 ^ -((z & 1) as i64);
                v = r.bits(64);
            }
            _ => {
                if i == 1 {
                    delta = r.uvarint() as i64;
                } else {
                    let width = if !r.bit() {
                        0
                    } else if !r.bit() {
                        14
                    } else if !r.bit() {
                        17
                    } else if !r.bit() {
                        20
                    } else {
                        64
                    };
                    if width > 0 {
                        let mut dod = r.bits(width) as i64;
                        if width < 64 && dod > 1 << (width - 1) {
                            dod -= 1 << width;
                        }
                        delta += dod;
                    }
                }
                t += delta;
                if r.bit() {
                    if r.bit() {
                        leading = r.bits(5) as u32;
                        let mut significant = r.bits(6) as u32;
                        if significant == 0 {
                            significant = 64;
                        }
                        trailing = 64 - leading - significant;
                    }
                    let significant = 64 - leading - trailing;
                    v ^= r.bits(significant) << trailing;
                }
            }
        }
        out.push((t, f64::from_bits(v)));
    }
    out
}

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut chunk = XorChunk::new();
    for &(t, v) in samples {
        chunk.push(t, v);
    }
    chunk.into_bytes()
}

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

/// Worked by hand from the layout: 1.0 at 1000 ms, 1.0 at 2000, 2.0 at 3000. (The end-to-end
/// test `remote_read::streamed_chunks_are_the_bytes_prometheus_writes` checks the encoder against
/// the chunks Prometheus 2.42 itself answers for 110 varied samples, byte for byte.)
#[test]
fn known_bytes() {
    let bytes = encode(&[(1000, 1.0), (2000, 1.0), (3000, 2.0)]);
    let expected = [
        0x00, 0x03, // three samples
        0xD0, 0x0F, // varint(1000): zigzag 2000
        0x3F, 0xF0, 0, 0, 0, 0, 0, 0, // 1.0
        0xE8, 0x07, // uvarint(1000)
        // 0: same value; 0: same delta; 11 + 00001 + 001011 + eleven 1s: 2.0 ^ 1.0 = 0x7FF << 52
        0x30, 0x97, 0xFF, 0xC0,
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn every_delta_width_and_value_shape_reads_back() {
    let mut samples = vec![(-5_000, 0.0), (-4_000, 0.0)];
    // Delta-of-deltas at and around each width's bounds (8192 = 2^13, 65536 = 2^16, 2^19).
    let mut t = -4_000_i64;
    let mut delta = 1_000_i64;
    for dod in [
        0,
        1,
        -1,
        8192,
        -8191,
        8193,
        -8192,
        65536,
        -65535,
        65537,
        524288,
        -524287,
        524289,
        1 << 40,
        -(1 << 30),
    ] {
        delta += dod;
        t += delta;
        samples.push((t, 0.0));
    }
    let values = [
        1.5,
        1.5,
        -2.25,
        f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0002), // a staleness-like NaN payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-300,
        f64::from_bits(1),
        f64::from_bits(u64::MAX),
        0.0,
        -0.0,
        123_456_789.125,
        123_456_789.5,
        42.0,
        42.0,
        7.0,
    ];
    for (s, v) in samples.iter_mut().zip(values) {
        s.1 = v;
    }
    assert!(same(&decode(&encode(&samples)), &samples));
}

#[test]
fn a_full_chunk_of_regular_samples_reads_back() {
    let samples: Vec<(i64, f64)> = (0..MAX_SAMPLES_PER_CHUNK as i64)
        .map(|i| (1_700_000_000_000 + i * 15_000 + (i % 3), (i as f64).sin() * 1e3))
        .collect();
    let bytes = encode(&samples);
    assert!(same(&decode(&bytes), &samples));
    assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), 120);
    let mut chunk = XorChunk::new();
    for &(t, v) in &samples {
        chunk.push(t, v);
    }
    assert_eq!(chunk.time_range(), (samples[0].0, samples[119].0));
}
