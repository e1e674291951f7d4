//! Log volume: body bytes and line counts per stream per time bucket, what Loki's
//! `index/volume` and `index/volume_range` answer from (see [`LogSource::log_volume`]).

use std::collections::{BTreeMap, HashMap};

use crate::Result;
use crate::read::{Direction, LogRequest, LogSource};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::Labels;

/// What [`LogSource::log_volume`] sums: the streams matching `logs.matchers`, their records with
/// `logs.start <= timestamp < logs.end`, in buckets `[origin + i·step, origin + (i+1)·step)`
/// (`i ≥ 0`; `origin <= logs.start`). `logs`' direction, limit and line hints are ignored.
#[derive(Clone, Debug)]
pub struct VolumeRequest {
    /// Matchers and range.
    pub logs: LogRequest,
    /// Where bucket 0 starts.
    pub origin: TimestampNs,
    /// Bucket width in nanoseconds, at least 1.
    pub step: TimestampNs,
}

impl VolumeRequest {
    /// One bucket over the whole range of `logs`.
    pub fn whole(logs: LogRequest) -> Self {
        let (origin, step) = (logs.start, logs.end.saturating_sub(logs.start).max(1));
        Self { logs, origin, step }
    }

    /// Fails on a request whose buckets do not cover its range (`origin > start`, `step < 1`).
    pub fn check(&self) -> Result<()> {
        if self.origin > self.logs.start || self.step < 1 {
            return Err(crate::Error::InvalidData {
                reason: format!(
                    "volume buckets from {} every {} ns do not cover a range starting at {}",
                    self.origin, self.step, self.logs.start
                ),
            });
        }
        Ok(())
    }

    /// The bucket `ts` falls in (`ts >= origin`).
    pub fn bucket_of(&self, ts: TimestampNs) -> u32 {
        u32::try_from((ts - self.origin) / self.step.max(1)).unwrap_or(u32::MAX)
    }

    /// Bucket `i`'s span, clipped to the requested range: `[start, end)`, possibly empty.
    pub fn bucket_span(&self, i: u32) -> (TimestampNs, TimestampNs) {
        let start = self.origin.saturating_add(i64::from(i).saturating_mul(self.step));
        (
            start.max(self.logs.start),
            start.saturating_add(self.step).min(self.logs.end),
        )
    }
}

/// Body bytes and records of one stream in one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketVolume {
    /// The bucket's index (see [`VolumeRequest`]).
    pub bucket: u32,
    /// Sum of the records' body lengths in bytes.
    pub bytes: u64,
    /// How many records.
    pub lines: u64,
}

/// One stream's volume: its buckets with records, sorted by index, each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamVolume {
    /// The stream's labels (`cluster` included).
    pub labels: Labels,
    /// Buckets with at least one record (or a prorated share of one).
    pub buckets: Vec<BucketVolume>,
}

/// Sums volumes per stream and bucket: how a merge of sources combines their answers, and how
/// a source adds up its parts. Sorted by labels, each stream once.
#[derive(Debug, Default)]
pub struct VolumeSum {
    streams: HashMap<Labels, BTreeMap<u32, (u64, u64)>>,
}

impl VolumeSum {
    /// Adds `bytes` and `lines` to `labels`' bucket `bucket`.
    pub fn add(&mut self, labels: &Labels, bucket: u32, bytes: u64, lines: u64) {
        let buckets = match self.streams.get_mut(labels) {
            Some(b) => b,
            None => self.streams.entry(labels.clone()).or_default(),
        };
        let e = buckets.entry(bucket).or_default();
        e.0 += bytes;
        e.1 += lines;
    }

    /// Adds another sum.
    pub fn absorb(&mut self, other: VolumeSum) {
        if self.streams.is_empty() {
            *self = other;
            return;
        }
        for (labels, buckets) in other.streams {
            self.add_buckets(labels, buckets.into_iter().map(|(b, (bytes, lines))| (b, bytes, lines)));
        }
    }

    /// Adds a whole answer.
    pub fn add_all(&mut self, volumes: Vec<StreamVolume>) {
        for s in volumes {
            self.add_buckets(s.labels, s.buckets.into_iter().map(|b| (b.bucket, b.bytes, b.lines)));
        }
    }

    fn add_buckets(&mut self, labels: Labels, buckets: impl Iterator<Item = (u32, u64, u64)>) {
        let mine = self.streams.entry(labels).or_default();
        for (bucket, bytes, lines) in buckets {
            let e = mine.entry(bucket).or_default();
            e.0 += bytes;
            e.1 += lines;
        }
    }

    /// The sums, sorted by labels.
    pub fn finish(self) -> Vec<StreamVolume> {
        let mut out: Vec<StreamVolume> = self
            .streams
            .into_iter()
            .map(|(labels, buckets)| StreamVolume {
                labels,
                buckets: buckets
                    .into_iter()
                    .map(|(bucket, (bytes, lines))| BucketVolume { bucket, bytes, lines })
                    .collect(),
            })
            .collect();
        out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// The volume of `records` (already matched and in range), each counted as given.
pub fn volume_of_records<'a>(
    req: &VolumeRequest,
    records: impl IntoIterator<Item = &'a LogRecord>,
) -> Vec<StreamVolume> {
    let mut sum = VolumeSum::default();
    for r in records {
        sum.add(&r.labels, req.bucket_of(r.timestamp), r.body.len() as u64, 1);
    }
    sum.finish()
}

/// [`LogSource::log_volume`]'s default: every matching record read through
/// [`LogSource::select_logs`] (so records equal in every field count once), then summed.
pub(super) async fn volume_by_select<S: LogSource + ?Sized>(
    source: &S,
    req: &VolumeRequest,
) -> Result<Vec<StreamVolume>> {
    req.check()?;
    if req.logs.start >= req.logs.end {
        return Ok(Vec::new());
    }
    let logs = LogRequest {
        line_hints: Vec::new(),
        direction: Direction::Forward,
        limit: None,
        ..req.logs.clone()
    };
    let records = source.select_logs(&logs).await?;
    Ok(volume_of_records(req, &records))
}
