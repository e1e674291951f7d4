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

/// Samples of every shape: regular scrapes with jitter, counters, gauges, special values,
/// out-of-order and repeated timestamps, huge jumps.
fn varied(n: usize, seed: u64) -> Vec<(i64, f64)> {
    let mut next = crate::test_util::xorshift(seed);
    let mut t = 1_700_000_000_000_i64;
    let mut c = 0.0;
    (0..n)
        .map(|i| {
            let r = next();
            t += match r % 11 {
                0 => -(((r >> 8) % 100_000) as i64),
                1 => 0,
                2 => (r >> 8) as i64 % (1 << 40),
                _ => 15_000 + (r >> 8) as i64 % 7 - 3,
            };
            c += (r >> 20) as f64 % 17.0;
            let v = match (r >> 4) % 9 {
                0 => f64::NAN,
                1 => f64::from_bits(0x7ff0_0000_0000_0002),
                2 => -0.0,
                3 => (i as f64).sin() * 1e6,
                4 => f64::from_bits(next()),
                _ => c,
            };
            (t, v)
        })
        .collect()
}

#[test]
fn the_reader_reads_what_the_reference_decoder_reads() {
    for seed in 1..200 {
        let samples = varied(1 + seed as usize % 130, seed);
        let bytes = encode(&samples);
        let read: Vec<(i64, f64)> = XorSamples::new(&bytes).map(|s| (s.timestamp, s.value)).collect();
        assert!(same(&read, &samples), "seed {seed}");
        assert!(same(&decode(&bytes), &samples), "seed {seed}");
    }
}

/// An open chunk reads back after every push, and its bytes are then what finishing it would
/// give.
#[test]
fn an_open_chunk_reads_back_after_every_push() {
    let samples = varied(MAX_SAMPLES_PER_CHUNK, 7);
    let mut chunk = XorChunk::new();
    for (i, &(t, v)) in samples.iter().enumerate() {
        chunk.push(t, v);
        let read: Vec<(i64, f64)> = chunk.samples().map(|s| (s.timestamp, s.value)).collect();
        assert!(same(&read, &samples[..=i]), "after {} pushes", i + 1);
        // Its bytes, as a read that ships chunks copies them, are the finished chunk's.
        assert_eq!(chunk.to_bytes(), chunk.clone().into_bytes(), "after {} pushes", i + 1);
    }
    assert!(same(&decode(&chunk.to_bytes()), &samples));
    let (min, max) = chunk.time_range();
    assert_eq!(min, samples.iter().map(|s| s.0).min().unwrap());
    assert_eq!(max, samples.iter().map(|s| s.0).max().unwrap());
    let bytes = chunk.clone().into_bytes();
    assert_eq!(bytes.len(), bytes.capacity(), "a finished chunk is sized exactly");
    assert!(same(&decode(&bytes), &samples));
}

#[test]
fn malformed_bytes_end_the_samples_without_a_panic() {
    let bytes = encode(&varied(100, 3));
    for cut in 0..bytes.len() {
        let read = XorSamples::new(&bytes[..cut]).count();
        assert!(read <= 100, "cut at {cut}");
    }
    // A count larger than the stream: stops where the bits run out.
    let mut lying = bytes.clone();
    lying[..2].copy_from_slice(&1000u16.to_be_bytes());
    assert!(XorSamples::new(&lying).count() < 1000);
    assert_eq!(XorSamples::new(&[]).count(), 0);
}

#[test]
fn regular_scrapes_take_about_a_byte_and_a_half_per_sample() {
    // A counter scraped every 15 s, as the head mostly holds: the figure the README's sizing
    // section quotes.
    let samples: Vec<(i64, f64)> = (0..MAX_SAMPLES_PER_CHUNK as i64)
        .map(|i| (1_700_000_000_000 + i * 15_000, (i * 37 % 1000 + i * 1000) as f64))
        .collect();
    let bytes = encode(&samples);
    let per_sample = bytes.len() as f64 / samples.len() as f64;
    assert!(per_sample < 3.0, "{per_sample} bytes per sample");
}

/// `byte_len` is what `into_bytes` answers, at every length (it sizes the head's next chunk).
#[test]
fn byte_len_is_the_finished_length() {
    let mut chunk = XorChunk::new();
    assert_eq!(chunk.byte_len(), chunk.clone().into_bytes().len());
    for (t, v) in varied(120, 7) {
        chunk.push(t, v);
        assert_eq!(chunk.byte_len(), chunk.clone().into_bytes().len());
    }
}

/// `read_into` appends what the iterator answers, whole, open, cut short and part-read.
#[test]
fn read_into_appends_what_the_iterator_answers() {
    for seed in 1..60 {
        let samples = varied(1 + seed as usize % 130, seed);
        let bytes = encode(&samples);
        let mut out = vec![Sample::new(-1, -1.0)];
        XorSamples::new(&bytes).read_into(&mut out);
        let read: Vec<(i64, f64)> = out[1..].iter().map(|s| (s.timestamp, s.value)).collect();
        assert!(same(&read, &samples), "seed {seed}");
        assert_eq!(out[0].timestamp, -1, "what `out` held is kept");

        let mut part = XorSamples::new(&bytes);
        let first: Vec<Sample> = part.by_ref().take(samples.len() / 2).collect();
        let mut rest = Vec::new();
        part.read_into(&mut rest);
        let joined: Vec<(i64, f64)> = first.iter().chain(&rest).map(|s| (s.timestamp, s.value)).collect();
        assert!(same(&joined, &samples), "seed {seed}, read in two");

        let cut = &bytes[..bytes.len() * 2 / 3];
        let mut out = Vec::new();
        XorSamples::new(cut).read_into(&mut out);
        let pairs = |s: &[Sample]| s.iter().map(|s| (s.timestamp, s.value)).collect::<Vec<_>>();
        let iterated: Vec<Sample> = XorSamples::new(cut).collect();
        assert!(same(&pairs(&out), &pairs(&iterated)), "seed {seed}, cut");
    }
    let mut open = XorChunk::new();
    for &(t, v) in &varied(50, 9) {
        open.push(t, v);
    }
    let mut out = Vec::new();
    open.samples().read_into(&mut out);
    let pairs = |s: &[Sample]| s.iter().map(|s| (s.timestamp, s.value)).collect::<Vec<_>>();
    assert!(same(&pairs(&out), &pairs(&open.samples().collect::<Vec<_>>())));
}

/// Chunks decode to the samples in range, sorted, the last written of a timestamp kept.
#[test]
fn decode_chunks_cuts_sorts_and_keeps_the_last_write() {
    let range = crate::types::TimeRange::new(20, 70);
    let sorted = [
        encode(&[(0, 0.0), (10, 1.0), (20, 2.0)]),
        encode(&[(30, 3.0), (80, 8.0)]),
    ];
    let got = decode_chunks(sorted.iter().map(Vec::as_slice), true, range);
    assert_eq!(got, vec![Sample::new(20, 2.0), Sample::new(30, 3.0)]);
    let scrambled = [
        encode(&[(50, 0.5), (40, 4.0), (90, 9.0)]),
        encode(&[(50, 5.0), (20, 2.0)]),
    ];
    let got = decode_chunks(scrambled.iter().map(Vec::as_slice), false, range);
    assert_eq!(
        got,
        vec![Sample::new(20, 2.0), Sample::new(40, 4.0), Sample::new(50, 5.0)]
    );
}

/// Chunks that claim more samples than their bytes can hold reserve by their bytes, and read
/// what they hold (a querier decodes what an ingester sent).
#[test]
fn decode_chunks_of_malformed_bytes_reserves_by_their_size() {
    let liar: Vec<u8> = vec![0xff, 0xff, 0x00];
    let chunks = vec![liar.as_slice(); 10_000];
    let got = decode_chunks(chunks.iter().copied(), true, crate::types::TimeRange::ALL);
    assert!(got.capacity() <= 10_000 * 12, "reserved {}", got.capacity());
}
