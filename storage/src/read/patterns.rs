//! Log patterns: the lines of the selected streams clustered by Drain (see `drain`) per level,
//! each pattern with its line count per time bucket. What Loki's `patterns` answers from its
//! pattern ingesters, and what [`LogSource::log_patterns`] reads.

mod drain;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::read::scan::{SCAN_CHUNK, scan_logs};
use crate::read::{Direction, LogRequest, LogSource};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::Labels;
use crate::{Error, Result};
use drain::{Drain, DrainConfig};

/// Loki's `detected_level` values, the levels patterns are grouped by; any other level is
/// `unknown`, which also bounds the Drain instances of a read to this many.
pub const LEVELS: [&str; 8] = [
    "trace", "debug", "info", "warn", "error", "critical", "fatal", "unknown",
];

/// What [`LogSource::log_patterns`] clusters: the lines of the streams matching `logs.matchers`
/// with `logs.start <= timestamp < logs.end`, counted in buckets of `step` aligned to multiples
/// of it (a bucket is named by its start). `logs`' direction, limit and line hints are ignored.
#[derive(Clone, Debug)]
pub struct PatternRequest {
    /// Matchers and range.
    pub logs: LogRequest,
    /// Bucket width in nanoseconds, at least 1.
    pub step: TimestampNs,
    /// The most lines a source clusters from its records (the newest); a source answering from
    /// summaries made as lines arrived has no such bound.
    pub max_lines: usize,
}

impl PatternRequest {
    /// The start of the bucket `ts` falls in.
    pub fn bucket_of(&self, ts: TimestampNs) -> TimestampNs {
        ts - ts.rem_euclid(self.step.max(1))
    }

    /// Fails on a step under 1 ns.
    pub fn check(&self) -> Result<()> {
        if self.step < 1 {
            return Err(Error::InvalidData {
                reason: format!("pattern buckets of {} ns", self.step),
            });
        }
        Ok(())
    }
}

/// One pattern: Drain's text (varying tokens are `<_>`), its level, and its lines per bucket
/// (`(bucket start, lines)`, by bucket, each with at least one line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternSeries {
    /// One of [`LEVELS`].
    pub level: String,
    /// The pattern text.
    pub pattern: String,
    /// Lines per bucket.
    pub samples: Vec<(TimestampNs, u64)>,
}

impl PatternSeries {
    /// Lines in all.
    pub fn total(&self) -> u64 {
        self.samples.iter().map(|(_, n)| n).sum()
    }
}

/// A [`LogSource::log_patterns`] answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patterns {
    /// By level, then pattern.
    pub series: Vec<PatternSeries>,
    /// True when lines of the range were left unclustered ([`PatternRequest::max_lines`]).
    pub truncated: bool,
}

/// Clusters lines and patterns per level: how a source clusters its records, and how a merge
/// of sources (or of a source's files) combines their patterns, so that one template seen in
/// two places comes out as one pattern.
#[derive(Debug, Default)]
pub struct PatternSum {
    drains: BTreeMap<&'static str, Drain>,
    truncated: bool,
}

impl PatternSum {
    fn drain(&mut self, level: &str) -> &mut Drain {
        self.drains
            .entry(level_named(level))
            .or_insert_with(|| Drain::new(DrainConfig::default()))
    }

    /// Clusters one line of `level` at bucket `bucket`.
    pub fn add_line(&mut self, level: &str, line: &str, bucket: TimestampNs) {
        self.drain(level).train(line, bucket);
    }

    /// Clusters a pattern made elsewhere, with its lines per bucket.
    pub fn add_pattern(&mut self, level: &str, pattern: &str, samples: impl IntoIterator<Item = (TimestampNs, u64)>) {
        self.drain(level).train_pattern(pattern, samples);
    }

    /// Clusters another answer's patterns.
    pub fn absorb(&mut self, other: Patterns) {
        self.truncated |= other.truncated;
        for s in other.series {
            self.add_pattern(&s.level, &s.pattern, s.samples);
        }
    }

    /// Notes that lines were left out.
    pub fn truncate(&mut self) {
        self.truncated = true;
    }

    /// The patterns, by level then pattern text (two clusters printing alike are one).
    pub fn finish(self) -> Patterns {
        let mut merged: BTreeMap<(&str, String), BTreeMap<TimestampNs, u64>> = BTreeMap::new();
        for (level, drain) in &self.drains {
            for cluster in drain.clusters() {
                let samples = merged.entry((level, cluster.pattern())).or_default();
                for (&b, &n) in &cluster.samples {
                    *samples.entry(b).or_default() += n;
                }
            }
        }
        Patterns {
            series: merged
                .into_iter()
                .map(|((level, pattern), samples)| PatternSeries {
                    level: level.to_string(),
                    pattern,
                    samples: samples.into_iter().filter(|(_, n)| *n > 0).collect(),
                })
                .filter(|s| !s.samples.is_empty())
                .collect(),
            truncated: self.truncated,
        }
    }
}

/// The one of [`LEVELS`] a level text names (`warning` is `warn`); `unknown` for any other.
pub fn level_named(level: &str) -> &'static str {
    let lower;
    let level = if level.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = level.to_ascii_lowercase();
        lower.as_str()
    } else {
        level
    };
    match level {
        "warning" => "warn",
        l => LEVELS.iter().find(|k| **k == l).copied().unwrap_or("unknown"),
    }
}

/// The level a record's patterns are grouped by: its `detected_level` (stream label, else
/// structured metadata, else derived from its severity when no `level` is present), else its
/// `level` (stream label, else structured metadata), else `unknown`. Stream labels win over
/// structured metadata of the same name, as in LogQL's label set.
pub fn record_level(rec: &LogRecord) -> &'static str {
    level_of(&rec.labels, &rec.attributes, rec.severity_number, &rec.severity_text)
}

/// [`record_level`] from the parts of a record it reads.
pub(crate) fn level_of(labels: &Labels, attributes: &str, severity_number: i32, severity_text: &str) -> &'static str {
    // Structured metadata is parsed only when it can hold a level.
    let metadata = if attributes.contains("level") {
        MetadataLevels::of(attributes)
    } else {
        MetadataLevels::default()
    };
    if let Some(l) = labels.get("detected_level").or(metadata.detected_level.as_deref()) {
        return level_named(l);
    }
    match labels.get("level").or(metadata.level.as_deref()) {
        Some(l) => level_named(l),
        None => severity_level(severity_number, severity_text).unwrap_or("unknown"),
    }
}

/// The level fields of a record's structured metadata. Read without building the object: every
/// record of a flush goes through here, and ingest adds `detected_level` to most.
#[derive(Debug, Default, Deserialize)]
struct MetadataLevels<'a> {
    #[serde(borrow, default)]
    detected_level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
}

impl<'a> MetadataLevels<'a> {
    fn of(attributes: &'a str) -> Self {
        serde_json::from_str(attributes).unwrap_or_else(|_| {
            // A level that is not a string (a number, a boolean), or a repeated key: the object
            // read in full, scalars as their text, the last of repeated keys.
            let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes) else {
                return Self::default();
            };
            let text = |name: &str| {
                map.get(name).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
                    serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    serde_json::Value::Bool(b) => Some(Cow::Owned(b.to_string())),
                    _ => None,
                })
            };
            Self {
                detected_level: text("detected_level"),
                level: text("level"),
            }
        })
    }
}

/// Loki's level from an OTLP severity: the number's range, else the text's spelling (an
/// unknown spelling is `unknown`); `None` when both are unset.
pub fn severity_level(number: i32, text: &str) -> Option<&'static str> {
    let by_number = match number {
        1..=4 => Some("trace"),
        5..=8 => Some("debug"),
        9..=12 => Some("info"),
        13..=16 => Some("warn"),
        17..=20 => Some("error"),
        21..=24 => Some("fatal"),
        _ => None,
    };
    if by_number.is_some() || text.is_empty() {
        return by_number;
    }
    Some(match text.to_ascii_lowercase().as_str() {
        "trace" | "trc" => "trace",
        "debug" | "dbg" => "debug",
        "info" | "inf" | "information" | "notice" => "info",
        "warn" | "warning" | "wrn" => "warn",
        "error" | "err" | "eror" => "error",
        "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => "fatal",
        _ => "unknown",
    })
}

/// [`LogSource::log_patterns`]'s default: the newest [`PatternRequest::max_lines`] records,
/// read through [`LogSource::select_logs`] a chunk at a time, clustered.
pub(super) async fn patterns_by_select<S: LogSource + ?Sized>(source: &S, req: &PatternRequest) -> Result<Patterns> {
    req.check()?;
    let mut sum = PatternSum::default();
    let logs = LogRequest {
        line_hints: Vec::new(),
        direction: Direction::Backward,
        limit: None,
        ..req.logs.clone()
    };
    let mut lines = 0usize;
    scan_logs(source, logs, SCAN_CHUNK, |rec| {
        if lines >= req.max_lines {
            sum.truncate();
            return Ok::<_, Error>(false);
        }
        lines += 1;
        sum.add_line(record_level(rec), &rec.body, req.bucket_of(rec.timestamp));
        Ok(true)
    })
    .await?;
    Ok(sum.finish())
}

#[cfg(test)]
mod tests;
