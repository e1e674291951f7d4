//! The volume summary of a logs file, and volume reads from it ([`crate::read::LogSource::log_volume`] of
//! the Parquet table).
//!
//! # Footer entry (on-disk contract)
//! Every logs file carries, in its footer's key-value metadata under [`KEY`], the body bytes
//! and records of each of its streams per time bucket, as JSON:
//!
//! ```json
//! {"format":1,"bucket_s":60,"streams":[["eu","{\"app\":\"api\"}",[[29475360,120,18344],[29475361,98,15002]]]]}
//! ```
//!
//! - `streams`: one entry per stream of the file, in file order: its `cluster` and `labels`
//!   texts exactly as in those columns, then its buckets `[index, records, bytes]` with at least
//!   one record, by index. Bucket `index` spans `[index · bucket_s, (index + 1) · bucket_s)`
//!   seconds since the epoch; `bytes` sums the UTF-8 lengths of the `body` values.
//! - `bucket_s` is 60 unless the file has more than [`MAX_ENTRIES`] (stream, minute) pairs;
//!   then the first of 300, 900 and 3600 that fits (or 3600), which bounds the footer.
//! - It is computed from the rows being encoded, by flushes and by compaction alike
//!   (`ParquetTable::footer_metadata`), so it always describes the file's own rows. A file
//!   without it (written before it existed) is summarised on read from its rows.
//!
//! Why: Loki answers `index/volume` from its index's chunk statistics without reading lines;
//! reading every record of 24 h instead took minutes. How summaries are stored, cached and read
//! is shared with the pattern summary (`super::summary`).

use std::sync::Arc;

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::schema::{col, parse_stream_labels};
use super::summary::{FileSummary, Rows, SummaryCache, cached, strings};
use crate::catalog::FileMeta;
use crate::parquet_io::ParquetIo;
use crate::read::{VolumeRequest, VolumeSum};
use crate::signals::TimestampNs;
use crate::table::file_cache::{FileCache, Weighed};
use crate::types::{Labels, matches_all};
use crate::{Error, Result};

/// The footer key of the summary.
pub(crate) const KEY: &str = "tributary.log_volume";
/// The summary format this build writes and reads.
const FORMAT: u32 = 1;
/// Most (stream, bucket) entries before a coarser bucket is chosen.
pub(crate) const MAX_ENTRIES: usize = 10_000;
/// Bucket widths in seconds, finest first.
const WIDTHS: [i64; 4] = [60, 300, 900, 3600];
const NS_PER_S: i64 = 1_000_000_000;

/// A stream's buckets: `(bucket index, records, bytes)`, by index.
type Buckets = Vec<(i64, u64, u64)>;

/// One stream of a summary: `(cluster, labels text, buckets)`.
type SummaryStream = (String, String, Buckets);

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
        let offsets = strings(batch, col::BODY, key)?.value_offsets();
        let width = WIDTHS[0] * NS_PER_S;
        let mut streams: Vec<SummaryStream> = Vec::with_capacity(rows.streams.len());
        for (cluster, labels, range) in rows.streams {
            let mut buckets: Buckets = Vec::new();
            for row in range {
                let bucket = rows.timestamps[row].div_euclid(width);
                let bytes = (offsets[row + 1] - offsets[row]) as u64;
                match buckets.last_mut() {
                    Some(b) if b.0 == bucket => {
                        b.1 += 1;
                        b.2 += bytes;
                    }
                    // Rows of a stream are sorted by time, so buckets come in order.
                    _ => buckets.push((bucket, 1, bytes)),
                }
            }
            streams.push((cluster.to_string(), labels.to_string(), buckets));
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
        Ok(summary)
    }

    fn readable(&self) -> bool {
        self.format == FORMAT && WIDTHS.contains(&self.bucket_s)
    }

    fn cache(caches: &SummaryCache) -> &FileCache<Parsed> {
        &caches.volume
    }

    fn parse(self, key: &str) -> Result<Parsed> {
        let streams = self
            .streams
            .into_iter()
            .map(|(cluster, labels_json, buckets)| {
                let labels = parse_stream_labels(&labels_json, &cluster).map_err(|e| Error::Corrupt {
                    key: key.to_string(),
                    reason: format!("volume summary labels {labels_json:?}: {e}"),
                })?;
                Ok((labels, buckets))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Parsed {
            bucket_s: self.bucket_s,
            streams,
        })
    }
}

impl Summary {
    fn entries(&self) -> usize {
        self.streams.iter().map(|s| s.2.len()).sum()
    }

    /// Folds the buckets into `bucket_s`-wide ones (a multiple of the current width).
    fn coarsen(&mut self, bucket_s: i64) {
        let factor = bucket_s / self.bucket_s;
        for s in &mut self.streams {
            let mut folded: Vec<(i64, u64, u64)> = Vec::with_capacity(s.2.len());
            for &(i, lines, bytes) in &s.2 {
                let i = i.div_euclid(factor);
                match folded.last_mut() {
                    Some(b) if b.0 == i => {
                        b.1 += lines;
                        b.2 += bytes;
                    }
                    _ => folded.push((i, lines, bytes)),
                }
            }
            s.2 = folded;
        }
        self.bucket_s = bucket_s;
    }
}

/// A summary as volume reads keep it: labels parsed once per file, not once per query.
#[derive(Debug)]
pub(crate) struct Parsed {
    bucket_s: i64,
    streams: Vec<(Labels, Buckets)>,
}

impl Parsed {
    /// Adds this file's share of `req` to `sum`. `span` is the file's time span (the key's):
    /// a summary bucket's records lie inside both, so a bucket only partly inside a requested
    /// bucket adds the share of its time (within the span) that lies inside.
    fn add_to(&self, req: &VolumeRequest, span: (TimestampNs, TimestampNs), sum: &mut VolumeSum) {
        let width = self.bucket_s * NS_PER_S;
        let (start, end) = (req.logs.start, req.logs.end);
        for (labels, buckets) in &self.streams {
            if !matches_all(&req.logs.matchers, labels) {
                continue;
            }
            for &(i, lines, bytes) in buckets {
                // The bucket's time that can hold records: inside the file's span.
                let lo = i.saturating_mul(width).max(span.0);
                let hi = i.saturating_add(1).saturating_mul(width).min(span.1.saturating_add(1));
                if hi <= start || lo >= end || hi <= lo {
                    continue;
                }
                let first = req.bucket_of(lo.max(start));
                let last = req.bucket_of((hi.min(end)) - 1);
                let len = (hi - lo) as f64;
                for b in first..=last {
                    let (bs, be) = req.bucket_span(b);
                    let inside = (be.min(hi) - bs.max(lo)).max(0);
                    if inside == 0 {
                        continue;
                    }
                    if inside == hi - lo {
                        sum.add(labels, b, bytes, lines);
                    } else {
                        let share = inside as f64 / len;
                        let (b_bytes, b_lines) = ((bytes as f64 * share).round(), (lines as f64 * share).round());
                        if b_bytes > 0.0 || b_lines > 0.0 {
                            sum.add(labels, b, b_bytes as u64, b_lines as u64);
                        }
                    }
                }
            }
        }
    }
}

impl Weighed for Parsed {
    fn bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|(labels, buckets)| {
                let label_bytes = labels.heap_bytes();
                std::mem::size_of::<(Labels, Buckets)>() + label_bytes + buckets.capacity() * 24
            })
            .sum()
    }
}

/// One file's volume for `req`, from its summary.
pub(super) async fn file_volume(
    io: ParquetIo,
    caches: Arc<SummaryCache>,
    file: Arc<FileMeta>,
    req: VolumeRequest,
    span: (TimestampNs, TimestampNs),
) -> Result<VolumeSum> {
    let summary = cached::<Summary>(&io, &caches, &file).await?;
    let mut sum = VolumeSum::default();
    summary.add_to(&req, span, &mut sum);
    Ok(sum)
}

#[cfg(test)]
mod tests;
