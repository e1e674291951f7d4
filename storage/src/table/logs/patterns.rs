//! The pattern summary of a logs file, and pattern reads from it
//! ([`crate::read::LogSource::log_patterns`] of the Parquet table).
//!
//! # Footer entry (on-disk contract)
//! Every logs file carries, in its footer's key-value metadata under [`KEY`], the Drain
//! patterns of each of its streams per level with their line counts per time bucket, as JSON:
//!
//! ```json
//! {"format":1,"bucket_s":60,"streams":[["eu","{\"app\":\"api\"}",[["info","GET <_> 200 <_>",[[29475360,120],[29475361,98]]]]]]}
//! ```
//!
//! - `streams`: one entry per stream of the file, in file order: its `cluster` and `labels`
//!   texts exactly as in those columns, then its patterns `[level, pattern, buckets]`, by level
//!   then pattern. `level` is one of `crate::read::LEVELS`, as `crate::read::record_level`
//!   decides it; `pattern` is Drain's text (Loki's defaults, varying tokens as `<_>`) of the
//!   stream's lines of that level, clustered in file order; `buckets` are `[index, lines]`
//!   with at least one line, by index. Bucket `index` spans `[index · bucket_s, (index + 1) ·
//!   bucket_s)` seconds since the epoch. Lines Drain skips (fewer than 4 or more than 80
//!   tokens, over 3,000 bytes) are in no pattern.
//! - `bucket_s` is 60 unless the file has more than [`MAX_ENTRIES`] (pattern, minute) pairs;
//!   then the first of 300, 900 and 3600 that fits (or 3600). If the patterns still hold more
//!   than [`MAX_ENTRIES`] pairs or [`MAX_TEXT_BYTES`] of text, those with the fewest lines are
//!   left out until they fit, which bounds the footer.
//! - It is computed from the rows being encoded, by flushes and by compaction alike, so it
//!   always describes the file's own rows. A file without it is summarised on read from its rows
//!   (see `super::summary`).
//!
//! Why: Loki answers `patterns` from what its pattern ingesters clustered as lines arrived;
//! reading and clustering the lines of an hour at query time took seconds and had to stop at a
//! line cap. A read now trains each matching stream's stored patterns into one Drain per level
//! (so one template seen in many streams and files is one pattern) and reads no line.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use serde::{Deserialize, Serialize};

use super::schema::{col, parse_stream_labels};
use super::summary::{FileSummary, Rows, SummaryCache, cached, corrupt, strings};
use crate::catalog::FileMeta;
use crate::parquet_io::ParquetIo;
use crate::read::{PatternRequest, PatternSum, level_named, level_of};
use crate::signals::TimestampNs;
use crate::table::file_cache::{FileCache, Weighed};
use crate::table::series::dict_keys;
use crate::types::{Labels, matches_all};
use crate::{Error, Result};

/// The footer key of the summary.
pub(crate) const KEY: &str = "tributary.log_patterns";
/// The summary format this build writes and reads.
const FORMAT: u32 = 1;
/// Most (pattern, bucket) entries of a file.
pub(crate) const MAX_ENTRIES: usize = 20_000;
/// Most pattern text of a file, in bytes.
pub(crate) const MAX_TEXT_BYTES: usize = 2 << 20;
/// Bucket widths in seconds, finest first.
const WIDTHS: [i64; 4] = [60, 300, 900, 3600];
const NS_PER_S: i64 = 1_000_000_000;

/// A pattern's buckets: `(bucket index, lines)`, by index.
type Buckets = Vec<(i64, u64)>;
/// One pattern of a stream: `(level, pattern, buckets)`.
type StreamPattern = (String, String, Buckets);
/// One stream of a summary: `(cluster, labels text, patterns)`.
type SummaryStream = (String, String, Vec<StreamPattern>);

/// One file's summary (the footer entry's JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Summary {
    format: u32,
    bucket_s: i64,
    streams: Vec<SummaryStream>,
}

impl FileSummary for Summary {
    const KEY: &'static str = KEY;
    type Parsed = Parsed;

    fn of(batch: &RecordBatch, key: &str) -> Result<Self> {
        let rows = Rows::of(batch, key)?;
        let (severity_keys, severities) =
            dict_keys(batch, col::SEVERITY_TEXT).map_err(|reason| corrupt(key, reason))?;
        let severity_numbers = batch
            .column(col::SEVERITY_NUMBER)
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| corrupt(key, "severity_number is not Int32".into()))?
            .values();
        let (body, attributes) = (strings(batch, col::BODY, key)?, strings(batch, col::ATTRIBUTES, key)?);
        let width = WIDTHS[0] * NS_PER_S;
        let mut streams: Vec<SummaryStream> = Vec::with_capacity(rows.streams.len());
        for (cluster, labels, range) in rows.streams {
            let parsed =
                parse_stream_labels(labels, cluster).map_err(|e| corrupt(key, format!("labels {labels:?}: {e}")))?;
            let mut sum = PatternSum::default();
            for row in range {
                let level = level_of(
                    &parsed,
                    attributes.value(row),
                    severity_numbers[row],
                    severities.value(severity_keys[row] as usize),
                );
                sum.add_line(level, body.value(row), rows.timestamps[row].div_euclid(width));
            }
            let patterns = sum
                .finish()
                .series
                .into_iter()
                .map(|s| (s.level, s.pattern, s.samples))
                .collect();
            streams.push((cluster.to_string(), labels.to_string(), patterns));
        }
        let mut summary = Summary {
            format: FORMAT,
            bucket_s: WIDTHS[0],
            streams,
        };
        for &w in &WIDTHS[1..] {
            if summary.entries() <= MAX_ENTRIES {
                break;
            }
            summary.coarsen(w);
        }
        summary.bound();
        Ok(summary)
    }

    fn readable(&self) -> bool {
        self.format == FORMAT && WIDTHS.contains(&self.bucket_s)
    }

    fn parse(self, key: &str) -> Result<Parsed> {
        let streams = self
            .streams
            .into_iter()
            .map(|(cluster, labels_json, patterns)| {
                let labels = parse_stream_labels(&labels_json, &cluster).map_err(|e| Error::Corrupt {
                    key: key.to_string(),
                    reason: format!("pattern summary labels {labels_json:?}: {e}"),
                })?;
                let patterns = patterns
                    .into_iter()
                    .map(|(level, pattern, buckets)| (level_named(&level), pattern, buckets))
                    .collect();
                Ok((labels, patterns))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Parsed {
            bucket_s: self.bucket_s,
            streams,
        })
    }

    fn cache(caches: &SummaryCache) -> &FileCache<Parsed> {
        &caches.patterns
    }
}

impl Summary {
    fn entries(&self) -> usize {
        self.streams.iter().flat_map(|s| &s.2).map(|p| p.2.len()).sum()
    }

    /// Folds the buckets into `bucket_s`-wide ones (a multiple of the current width).
    fn coarsen(&mut self, bucket_s: i64) {
        let factor = bucket_s / self.bucket_s;
        for p in self.streams.iter_mut().flat_map(|s| &mut s.2) {
            let mut folded: Buckets = Vec::with_capacity(p.2.len());
            for &(i, lines) in &p.2 {
                let i = i.div_euclid(factor);
                match folded.last_mut() {
                    Some(b) if b.0 == i => b.1 += lines,
                    _ => folded.push((i, lines)),
                }
            }
            p.2 = folded;
        }
        self.bucket_s = bucket_s;
    }

    /// Leaves out the patterns with the fewest lines until [`MAX_ENTRIES`] and
    /// [`MAX_TEXT_BYTES`] hold.
    fn bound(&mut self) {
        let text: usize = self.streams.iter().flat_map(|s| &s.2).map(|p| p.1.len()).sum();
        if self.entries() <= MAX_ENTRIES && text <= MAX_TEXT_BYTES {
            return;
        }
        // (lines, stream, pattern) of every pattern, most lines first.
        let mut all: Vec<(u64, usize, usize)> = Vec::new();
        for (si, s) in self.streams.iter().enumerate() {
            for (pi, p) in s.2.iter().enumerate() {
                all.push((p.2.iter().map(|b| b.1).sum(), si, pi));
            }
        }
        all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let (mut entries, mut bytes) = (0usize, 0usize);
        let mut keep = vec![Vec::new(); self.streams.len()];
        for (_, si, pi) in all {
            let p = &self.streams[si].2[pi];
            if entries + p.2.len() > MAX_ENTRIES || bytes + p.1.len() > MAX_TEXT_BYTES {
                continue;
            }
            entries += p.2.len();
            bytes += p.1.len();
            keep[si].push(pi);
        }
        for (s, mut kept) in self.streams.iter_mut().zip(keep) {
            kept.sort_unstable();
            let mut i = 0;
            s.2.retain(|_| {
                let k = kept.binary_search(&i).is_ok();
                i += 1;
                k
            });
        }
    }
}

/// A summary as pattern reads keep it: labels parsed, levels interned.
#[derive(Debug)]
pub(crate) struct Parsed {
    bucket_s: i64,
    streams: Vec<(Labels, Vec<ParsedPattern>)>,
}

/// One pattern as reads keep it: `(level, pattern, buckets)`.
type ParsedPattern = (&'static str, String, Buckets);

/// A file's patterns for a request: `(level, pattern, lines per requested bucket)`.
pub(super) type FilePatterns = Vec<(&'static str, String, BTreeMap<TimestampNs, u64>)>;

impl Parsed {
    /// This file's patterns of the streams `req` matches, their buckets spread over the
    /// requested ones. `span` is the file's time span (the key's): a summary bucket's lines lie
    /// inside both, so they are spread over that part of the bucket's time.
    fn patterns_for(&self, req: &PatternRequest, span: (TimestampNs, TimestampNs)) -> FilePatterns {
        let width = self.bucket_s * NS_PER_S;
        let mut out = Vec::new();
        for (labels, patterns) in &self.streams {
            if !matches_all(&req.logs.matchers, labels) {
                continue;
            }
            for (level, pattern, buckets) in patterns {
                let mut samples = BTreeMap::new();
                for &(i, lines) in buckets {
                    let lo = i.saturating_mul(width).max(span.0);
                    let hi = i.saturating_add(1).saturating_mul(width).min(span.1.saturating_add(1));
                    spread(req, lo, hi, lines, &mut samples);
                }
                if !samples.is_empty() {
                    out.push((*level, pattern.clone(), samples));
                }
            }
        }
        out
    }
}

/// Adds `lines`, evenly spread over `[lo, hi)`, to the requested buckets that part of
/// `[lo, hi)` inside the requested range overlaps. Shares are rounded on their cumulative sum,
/// so a bucket wholly inside the range adds exactly `lines`.
fn spread(req: &PatternRequest, lo: TimestampNs, hi: TimestampNs, lines: u64, out: &mut BTreeMap<TimestampNs, u64>) {
    let (a, b) = (lo.max(req.logs.start), hi.min(req.logs.end));
    if a >= b || lines == 0 {
        return;
    }
    let len = (hi - lo) as f64;
    let before = |t: TimestampNs| (lines as f64 * (t - lo) as f64 / len).round() as u64;
    let mut t = a;
    while t < b {
        let bucket = req.bucket_of(t);
        let next = bucket.saturating_add(req.step.max(1)).min(b);
        let n = before(next) - before(t);
        if n > 0 {
            *out.entry(bucket).or_default() += n;
        }
        t = next;
    }
}

impl Weighed for Parsed {
    fn bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|(labels, patterns)| {
                let label_bytes = labels.heap_bytes();
                let pattern_bytes: usize = patterns.iter().map(|p| 64 + p.1.len() + p.2.capacity() * 16).sum();
                std::mem::size_of::<(Labels, Vec<()>)>() + label_bytes + pattern_bytes
            })
            .sum()
    }
}

/// One file's patterns for `req`, from its summary.
pub(super) async fn file_patterns(
    io: ParquetIo,
    caches: Arc<SummaryCache>,
    file: Arc<FileMeta>,
    req: PatternRequest,
    span: (TimestampNs, TimestampNs),
) -> Result<FilePatterns> {
    Ok(cached::<Summary>(&io, &caches, &file).await?.patterns_for(&req, span))
}

#[cfg(test)]
mod tests;
