//! The line index (`body_grams`): per row group, a bloom filter of the 8-byte runs inside the
//! words of its lines, so a line filter for a rare text (`|= "7f3a9c2e..."`, a request id)
//! reads only the row groups that can hold it instead of decompressing every `body` page.
//!
//! # Format (a row-group index, see `crate::parquet_io::index`)
//! - A **word** is a maximal run of bytes in `[A-Za-z0-9_]` or `>= 0x80` (so UTF-8 letters of
//!   any script stay inside words). A **gram** is any 8 consecutive bytes of a word; words
//!   shorter than 8 bytes add nothing.
//! - Each row group's blob is the bitset of a Parquet split-block bloom filter (SBBF, the
//!   Parquet specification's algorithm: 32-byte blocks, block chosen by the upper half of the
//!   hash, 8 salted bits from the lower half) over the xxHash64 (seed 0) of every gram of
//!   every `body` in the row group, without the Thrift header Parquet's own filters carry:
//!   the blob's length gives the block count, which need not be a power of two. Sized for
//!   [`FPP`] from the row group's distinct grams (counted in a first pass).
//!
//! # Why grams inside words, and why it is exact
//! `|=` is a substring match, so a filter of whole words could not answer it: `7f3a9c2e` is
//! found in `trace_id=7f3a9c2e01ab`. Every piece of a needle that is a run of word bytes sits
//! inside one word of any line containing the needle, so each of the piece's grams was
//! inserted for that line: a row group whose filter lacks one of them cannot hold a match
//! (bloom filters have no false negatives), and skipping it never changes an answer. Needles
//! with no word piece of 8 bytes or more (`|= "error"`) cannot use the index and scan as before.
//! Grams are limited to words so the filter grows with what varies in lines (ids, numbers),
//! not with every position of every line; random hex ids are why the gram is 8 bytes (all
//! 65,536 hex 4-grams occur in any large row group).

use std::ops::Range;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::bloom_filter::Sbbf;

use super::schema::col;
use crate::catalog::FileMeta;
use crate::parquet_io::ParquetIo;
use crate::parquet_io::index::{self, Located, RowGroupIndex};
use crate::parquet_io::plan::{ReadPlan, intersect};
use crate::read::LineHint;
use crate::{Error, Result};

/// The index's footer name.
const NAME: &str = "body_grams";
/// What a blob is (recorded in each file's footer).
const FORMAT: &str = "sbbf-bitset/xxh64-seed0/8-byte-grams-of-words[A-Za-z0-9_\\x80-\\xff]/v1";
/// Bytes per gram.
const GRAM: usize = 8;
/// Target false-positive rate per probe; a needle probes several grams, so a row group
/// without the needle is read only when all of them are false positives.
const FPP: f64 = 0.005;
/// The distinct-gram count's bitmap has at most twice this many bits (2 MiB); it stays accurate
/// to several times this many grams, and a row group beyond gets a smaller filter than it
/// should: still sound, only less selective.
const MAX_GRAMS: u64 = 1 << 23;
/// Grams probed per read at most: a few already make false positives vanishingly rare.
const MAX_PROBES: usize = 16;
/// Bytes per SBBF block.
const BLOCK: u64 = 32;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Grams seen lately, by value (direct-mapped): lines repeat their template's words
/// (`request_id`, `Mozilla`, `duration_ms`) in every line, so most grams were just inserted;
/// skipping them spares the hash and the filter's random access, which is the write cost.
struct Recent(Vec<u64>);

impl Recent {
    const SLOTS_LOG2: u32 = 12;

    fn new() -> Self {
        // 0 is never a gram (NUL is not a word byte), so it marks an empty slot.
        Self(vec![0; 1 << Self::SLOTS_LOG2])
    }

    /// True the first time `gram` is seen since its slot last held another gram.
    fn fresh(&mut self, gram: &[u8]) -> bool {
        let v = u64::from_le_bytes(gram.try_into().expect("grams are GRAM bytes"));
        let slot = &mut self.0[(v.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::SLOTS_LOG2)) as usize];
        let fresh = *slot != v;
        *slot = v;
        fresh
    }
}

/// Calls `f` with every gram of `text`.
fn for_each_gram(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && !is_word(text[i]) {
            i += 1;
        }
        let start = i;
        while i < text.len() && is_word(text[i]) {
            i += 1;
        }
        let word = &text[start..i];
        if word.len() >= GRAM {
            word.windows(GRAM).for_each(&mut f);
        }
    }
}

/// The line index of a logs file holding `batch` in row groups of `row_groups`.
pub(super) fn build(batch: &RecordBatch, row_groups: &[Range<usize>]) -> Result<RowGroupIndex> {
    let body = batch
        .column(col::BODY)
        .as_string_opt::<i32>()
        .ok_or_else(|| Error::InvalidData {
            reason: "logs batch: body is not a string column".into(),
        })?;
    let offsets = body.value_offsets();
    let blobs = row_groups
        .iter()
        .map(|r| {
            let lines = || r.clone().map(|row| body.value(row).as_bytes());
            // Distinct grams are at most the bytes of the lines.
            let bytes = (offsets[r.end] - offsets[r.start]) as u64;
            let grams = distinct_grams(lines(), bytes);
            // Exactly the blocks [`FPP`] needs (any count works: the block is chosen by
            // multiplying, not masking), where Parquet's own sizing rounds up to a power of two.
            let bits = grams as f64 * -8.0 / (1.0 - FPP.powf(1.0 / 8.0)).ln();
            let blocks = ((bits / 256.0).ceil() as usize).max(1);
            let mut filter = Sbbf::new(&vec![0u8; blocks * BLOCK as usize]);
            let mut recent = Recent::new();
            for line in lines() {
                for_each_gram(line, |g| {
                    if recent.fresh(g) {
                        filter.insert(g)
                    }
                });
            }
            let mut blob = Vec::with_capacity(blocks * BLOCK as usize);
            filter.write_bitset(&mut blob).map_err(|e| Error::InvalidData {
                reason: format!("line index: {e}"),
            })?;
            Ok(blob)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RowGroupIndex {
        name: NAME,
        format: FORMAT,
        blobs,
    })
}

/// Does the filter block `block` (the one a gram's hash selects) hold `gram`? A one-block
/// `Sbbf` checks by the hash's lower half, exactly as the whole filter checks within that block.
fn check_block(block: &[u8], gram: &[u8]) -> bool {
    block.len() != BLOCK as usize || Sbbf::new(block).check(gram)
}

/// How many distinct grams `lines` hold (`bytes` long together), by linear counting: each gram
/// sets one bit of a bitmap, and the share of bits left clear gives the count within a few
/// percent while the bitmap is not close to full (its size follows `bytes`, up to 2 MiB).
fn distinct_grams<'a>(lines: impl Iterator<Item = &'a [u8]>, bytes: u64) -> u64 {
    let bits = (bytes.saturating_mul(2))
        .clamp(1 << 10, MAX_GRAMS << 1)
        .next_power_of_two();
    let shift = 64 - bits.trailing_zeros();
    let mut map = vec![0u64; (bits / 64) as usize];
    let mut recent = Recent::new();
    for line in lines {
        for_each_gram(line, |g| {
            if recent.fresh(g) {
                let h = twox_hash::XxHash64::oneshot(0, g) >> shift;
                map[(h / 64) as usize] |= 1 << (h % 64);
            }
        });
    }
    let clear = map.iter().map(|w| u64::from(w.count_zeros())).sum::<u64>();
    if clear == 0 {
        return bytes.max(1);
    }
    let estimate = -(bits as f64) * (clear as f64 / bits as f64).ln();
    (estimate.ceil() as u64).min(bytes.max(1))
}

/// The grams a read's line hints require of every matching line.
#[derive(Debug, Default)]
pub(super) struct Probes {
    /// (gram, its xxHash64).
    grams: Vec<([u8; GRAM], u64)>,
}

impl Probes {
    /// From the `Contains` hints (a `NotContains` hint says nothing a filter can test).
    pub(super) fn of(hints: &[LineHint]) -> Self {
        let mut grams: Vec<([u8; GRAM], u64)> = Vec::new();
        for h in hints {
            let LineHint::Contains(needle) = h else { continue };
            for_each_gram(needle.as_bytes(), |g| {
                let g: [u8; GRAM] = g.try_into().expect("grams are GRAM bytes");
                if grams.len() < MAX_PROBES && !grams.iter().any(|(x, _)| *x == g) {
                    grams.push((g, twox_hash::XxHash64::oneshot(0, &g)));
                }
            });
        }
        Self { grams }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.grams.is_empty()
    }

    /// The byte range of the block `hash` falls in, in a filter stored at `blob`.
    fn block(blob: &Range<u64>, hash: u64) -> Range<u64> {
        let blocks = (blob.end - blob.start) / BLOCK;
        let i = ((hash >> 32) * blocks) >> 32;
        let start = blob.start + i * BLOCK;
        start..start + BLOCK
    }

    /// `plan` without the row groups whose line index rules every probe's gram out; `None`
    /// when none is left. A file without the index keeps `plan`. Reads one block per probe and
    /// planned row group, in one request where the store coalesces ranges.
    pub(super) async fn restrict(
        &self,
        io: &ParquetIo,
        file: &FileMeta,
        meta: &ArrowReaderMetadata,
        plan: ReadPlan,
    ) -> Result<Option<ReadPlan>> {
        let Some(located) = Located::of(meta, NAME, FORMAT, file.size) else {
            return Ok(Some(plan));
        };
        let usable = |rg: usize| {
            let blob = &located.row_groups[rg];
            let len = blob.end - blob.start;
            len >= BLOCK && len % BLOCK == 0
        };
        let mut ranges = Vec::new();
        for &rg in plan.row_groups.iter().filter(|&&rg| usable(rg)) {
            ranges.extend(self.grams.iter().map(|(_, h)| Self::block(&located.row_groups[rg], *h)));
        }
        let blocks = index::read_ranges(io, file, &ranges).await?;
        let mut blocks = blocks.iter();
        let mut kept = Vec::with_capacity(plan.row_groups.len());
        for &rg in &plan.row_groups {
            if !usable(rg) {
                kept.push(rg);
                continue;
            }
            let mut all = true;
            for (g, _) in &self.grams {
                all &= blocks.next().is_none_or(|b| check_block(b, g));
            }
            if all {
                kept.push(rg);
            }
        }
        if kept.len() == plan.row_groups.len() {
            return Ok(Some(plan));
        }
        if kept.is_empty() {
            return Ok(None);
        }
        let md = meta.metadata();
        let rg_rows: Vec<usize> = md.row_groups().iter().map(|g| g.num_rows() as usize).collect();
        let mut spans = Vec::with_capacity(kept.len());
        for &rg in &kept {
            let start: usize = rg_rows[..rg].iter().sum();
            spans.push(start..start + rg_rows[rg]);
        }
        Ok(ReadPlan::of_rows(
            &intersect(&plan.file_rows(&rg_rows), &spans),
            &rg_rows,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use std::sync::Arc;

    fn grams_of(text: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for_each_gram(text.as_bytes(), |g| out.push(g.to_vec()));
        out
    }

    /// A batch whose `body` column is `lines` (the other columns are not read).
    fn index_of(lines: &[String], rows_per_group: usize) -> Vec<Vec<u8>> {
        let mut columns: Vec<arrow_array::ArrayRef> = Vec::new();
        for _ in 0..col::BODY {
            columns.push(Arc::new(StringArray::from(vec![""; lines.len()])));
        }
        columns.push(Arc::new(StringArray::from_iter_values(lines)));
        let batch =
            RecordBatch::try_from_iter(columns.into_iter().enumerate().map(|(i, c)| (format!("c{i}"), c))).unwrap();
        let groups: Vec<Range<usize>> = (0..lines.len())
            .step_by(rows_per_group)
            .map(|s| s..(s + rows_per_group).min(lines.len()))
            .collect();
        let index = build(&batch, &groups).unwrap();
        assert_eq!((index.name, index.format), (NAME, FORMAT));
        index.blobs
    }

    #[test]
    fn grams_are_the_8_byte_runs_inside_words() {
        let want: Vec<Vec<u8>> = [
            "7f3a9c2e", "f3a9c2e0", "3a9c2e01", "short_wo", "hort_wor", "ort_word", "rt_words",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        assert_eq!(grams_of("id=7f3a9c2e01 ok short_words; a-b-c 1234567 x.y"), want);
        assert_eq!(grams_of("12345678"), [b"12345678".to_vec()]);
        // UTF-8 letters are word bytes: 14 bytes, 7 grams.
        let word = "über_größe";
        assert_eq!(
            grams_of(word),
            word.as_bytes().windows(8).map(<[u8]>::to_vec).collect::<Vec<_>>()
        );
        // Needles without a word piece of 8 bytes probe nothing.
        assert!(
            Probes::of(&[
                LineHint::Contains("error".into()),
                LineHint::NotContains("7f3a9c2e01".into())
            ])
            .is_empty()
        );
        assert_eq!(
            Probes::of(&[LineHint::Contains("x 0123456789abcdef0123456789".into())])
                .grams
                .len(),
            MAX_PROBES
        );
    }

    /// Every substring of a line, of any length and cut anywhere, is held by its row group's
    /// filter (no false negatives, the block read by hash matching Parquet's own hashing); a
    /// token in no line is ruled out of every group.
    #[test]
    fn every_substring_of_a_line_passes_its_row_group_and_a_missing_token_passes_none() {
        let mut next = crate::test_util::xorshift(0x2545_F491_4F6C_DD1Du64);
        let lines: Vec<String> = (0..4000)
            .map(|i| {
                let id = next();
                match i % 4 {
                    0 => format!(
                        "level=info msg=\"request done\" request_id={id:016x} path=/api/v{}",
                        id % 7
                    ),
                    1 => format!(
                        r#"{{"trace_id":"{id:032x}","msg":"größe überschritten","n":{}}}"#,
                        id % 100_000
                    ),
                    2 => format!(
                        "10.0.{}.{} GET /item/{} 200 rt=0.{:03}",
                        id % 256,
                        id % 199,
                        id % 100_000,
                        id % 1000
                    ),
                    _ => format!("panic: runtime error at 0x{id:x}:{}", id % 10_000_000_000),
                }
            })
            .collect();
        let per_group = 500;
        let blobs = index_of(&lines, per_group);
        assert_eq!(blobs.len(), lines.len() / per_group);
        let holds = |probes: &Probes, blob: &[u8]| {
            probes.grams.iter().all(|(g, h)| {
                let r = Probes::block(&(0..blob.len() as u64), *h);
                check_block(&blob[r.start as usize..r.end as usize], g)
            })
        };
        for (i, line) in lines.iter().enumerate().step_by(7) {
            let bytes = line.as_bytes();
            let (a, b) = ((next() as usize) % bytes.len(), (next() as usize) % bytes.len());
            let (mut a, mut b) = (a.min(b), a.max(b) + 1);
            while !line.is_char_boundary(a) {
                a -= 1;
            }
            while b < bytes.len() && !line.is_char_boundary(b) {
                b += 1;
            }
            let probes = Probes::of(&[LineHint::Contains(line[a..b].to_string())]);
            assert!(holds(&probes, &blobs[i / per_group]), "{:?} of line {i}", &line[a..b]);
        }
        let absent = Probes::of(&[LineHint::Contains("request_id=00c0ffee00c0ffee".into())]);
        assert!(!absent.is_empty());
        assert!(blobs.iter().all(|b| !holds(&absent, b)));
        // The first pass counts distinct grams closely, and the filters are sized by it (about
        // 12 distinct grams a line here, ~11 bits each at 0.5%).
        let mut exact = std::collections::HashSet::new();
        for line in &lines[..per_group] {
            for_each_gram(line.as_bytes(), |g| {
                exact.insert(g.to_vec());
            });
        }
        let text_bytes = lines[..per_group].iter().map(String::len).sum::<usize>() as u64;
        let counted = distinct_grams(lines[..per_group].iter().map(|l| l.as_bytes()), text_bytes) as f64;
        let err = (counted / exact.len() as f64 - 1.0).abs();
        assert!(err < 0.05, "counted {counted} distinct grams, {} exactly", exact.len());
        let bits_per_gram = blobs[0].len() as f64 * 8.0 / exact.len() as f64;
        assert!((10.5..12.0).contains(&bits_per_gram), "{bits_per_gram} bits per gram");
        let (filter, text): (usize, usize) = (blobs.iter().map(Vec::len).sum(), lines.iter().map(String::len).sum());
        assert!(filter * 3 < text, "{filter} bytes of filters for {text} bytes of lines");
    }
}
