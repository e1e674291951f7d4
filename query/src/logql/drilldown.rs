//! What Grafana Logs Drilldown asks of Loki beyond LogQL, answered from the [`LogSource`] like
//! every other read (so a token's scope and limits apply unchanged): log volume per stream or
//! label (`index/volume`, `index/volume_range`), the labels worth breaking down by
//! (`detected_labels`), the fields found in lines (`detected_fields`, `detected_field/{name}/values`,
//! see `fields`) and log patterns (`patterns`).
//!
//! Loki answers volumes from its index's chunk statistics and patterns from its pattern
//! ingesters. Volumes here come from [`tributary_storage::read::LogSource::log_volume`]: the
//! Parquet files' per-minute stream summaries and the head's records, so no line is read from
//! storage. Patterns come from [`tributary_storage::read::LogSource::log_patterns`]: the Parquet
//! files' pattern summaries (clustered as each file was written) and the head's records,
//! clustered on read over at most [`PATTERN_MAX_LINES`] (the newest; the answer says when
//! lines were left out).

mod fields;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tributary_storage::read::{Direction, LineHint, LogRequest, PatternRequest, VolumeRequest, scan_logs};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{Labels, MatchOp, Matcher};

use super::LogqlEngine;
use super::ast::Expr;
use super::parser::parse_selector;
use super::pipeline::{ERROR_DETAILS_LABEL, ERROR_LABEL, Pipeline};
use crate::admission::on_deep_stack_async;
use crate::error::{Error, Result};

pub(crate) use fields::DetectedField;

/// The most lines one `patterns` request clusters from records (a source without pattern
/// summaries: the head), newest first. With Drain's 300 clusters per level this bounds the
/// request's memory; a longer range is answered over its newest lines, with a warning.
pub(crate) const PATTERN_MAX_LINES: usize = 200_000;
/// Loki's sample resolution of patterns: a smaller step is raised to it.
const PATTERN_MIN_STEP_NS: i64 = 10_000_000_000;

/// What `index/volume` and `index/volume_range` aggregate by (Loki's `aggregateBy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VolumeBy {
    /// One volume per label set of the selector's (or `targetLabels`') names.
    Series,
    /// One volume per label name.
    Labels,
}

/// A volume request, Loki's `VolumeRequest`.
#[derive(Clone, Debug)]
pub(crate) struct VolumeQuery {
    pub(crate) query: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// Bucket width (ns) for `volume_range`; `None` for one bucket ending at `end`.
    pub(crate) step: Option<i64>,
    pub(crate) limit: usize,
    pub(crate) target_labels: Vec<String>,
    pub(crate) by: VolumeBy,
}

/// One volume series: its labels (a label name with the empty value when by labels) and
/// `(bucket end in ms, bytes)` per bucket it has bytes in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VolumeSeries {
    pub(crate) metric: Vec<(String, String)>,
    pub(crate) samples: Vec<(i64, u64)>,
}

/// One pattern with Loki's `level` and its line count per step (`(unix seconds, lines)`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PatternSeries {
    pub(crate) pattern: String,
    pub(crate) level: String,
    pub(crate) samples: Vec<(i64, u64)>,
}

/// The `patterns` answer; `truncated` when a source clustered only its newest
/// [`PATTERN_MAX_LINES`] lines.
#[derive(Debug, Default)]
pub(crate) struct Patterns {
    pub(crate) series: Vec<PatternSeries>,
    pub(crate) truncated: bool,
}

impl LogqlEngine {
    /// Loki's `index/volume` (`step: None`) and `index/volume_range`: bytes of line bodies per
    /// series or label in each bucket, the `limit` largest per bucket, series ordered by their
    /// first bucket's volume, largest first (Loki's `seriesvolume` and `ToPrometheusResponse`).
    pub(crate) async fn volume(&self, q: &VolumeQuery) -> Result<Vec<VolumeSeries>> {
        let answer = self.timed(self.volume_here(q)).await;
        self.attribute(answer)
    }

    async fn volume_here(&self, q: &VolumeQuery) -> Result<Vec<VolumeSeries>> {
        let mut matchers = volume_matchers(&q.query)?;
        // Loki's `PrepareLabelsAndMatchers`: the target labels replace the selector's names,
        // and each target not in the selector must be present.
        let names: BTreeSet<String> = if q.target_labels.is_empty() {
            matchers.iter().map(|m| m.name.clone()).collect()
        } else {
            for t in &q.target_labels {
                if !matchers.iter().any(|m| &m.name == t) {
                    matchers
                        .push(Matcher::new(MatchOp::RegexMatch, t, ".+").map_err(|e| Error::BadData(e.to_string()))?);
                }
            }
            q.target_labels.iter().cloned().collect()
        };
        // Buckets as Loki's `util.ForInterval` cuts them (aligned to the step, each ending a
        // millisecond before the next begins, the last at `end`), keyed by their end.
        let aligned = q.step.map_or(q.start, |s| q.start - q.start.rem_euclid(s));
        let bucket_end_ms = |i: usize| match q.step {
            Some(s) if aligned + (i as i64 + 1) * s < q.end => (aligned + (i as i64 + 1) * s) / 1_000_000 - 1,
            _ => q.end.div_euclid(1_000_000),
        };
        let req = VolumeRequest {
            logs: scan_request(matchers, q.start, q.end, Vec::new(), Direction::Forward),
            origin: aligned,
            step: q.step.unwrap_or_else(|| (q.end - aligned).max(1)),
        };
        let volumes = self.source.log_volume(&req).await?;
        let mut per_bucket: BTreeMap<usize, HashMap<String, u64>> = BTreeMap::new();
        let mut metrics: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for stream in &volumes {
            let stream_keys = volume_keys(&stream.labels, &names, q.by, !q.target_labels.is_empty());
            for b in &stream.buckets {
                let bucket = per_bucket.entry(b.bucket as usize).or_default();
                for (key, metric) in stream_keys.iter() {
                    *bucket.entry(key.clone()).or_default() += b.bytes;
                    if !metrics.contains_key(key) {
                        metrics.insert(key.clone(), metric.clone());
                    }
                }
            }
        }
        let mut series: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for (bucket, volumes) in per_bucket {
            let mut top: Vec<(String, u64)> = volumes.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(q.limit);
            for (key, bytes) in top {
                series.entry(key).or_default().push((bucket_end_ms(bucket), bytes));
            }
        }
        let mut out: Vec<(String, VolumeSeries)> = series
            .into_iter()
            .map(|(key, samples)| {
                let metric = metrics.remove(&key).unwrap_or_default();
                (key, VolumeSeries { metric, samples })
            })
            .collect();
        out.sort_by(|(ka, a), (kb, b)| b.samples[0].1.cmp(&a.samples[0].1).then_with(|| ka.cmp(kb)));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// Loki's `detected_labels`: each stream label of the matching streams with its number of
    /// values, leaving out those Loki's querier rejects (`shouldRejectLabel`): a label whose
    /// values all look like ids (numbers or UUIDs), unless its values are only `0`/`1`; `cluster`,
    /// `namespace`, `instance` and `pod` are always kept. Sorted by name.
    pub(crate) async fn detected_labels(&self, query: &str, start: i64, end: i64) -> Result<Vec<(String, usize)>> {
        let matchers = match query.trim() {
            "" | "{}" => Vec::new(),
            q => parse_selector(q)?,
        };
        let req = scan_request(matchers, start, end, Vec::new(), Direction::Forward);
        let streams = self.attribute(self.timed(self.source.log_streams(&req)).await)?;
        let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for labels in &streams {
            for l in labels.iter() {
                values.entry(l.name).or_default().insert(l.value);
            }
        }
        const STATIC: [&str; 4] = ["cluster", "namespace", "instance", "pod"];
        Ok(values
            .into_iter()
            .filter(|(name, vals)| STATIC.contains(name) || !fields::rejects_label(vals))
            .map(|(name, vals)| (name.to_string(), vals.len()))
            .collect())
    }

    /// Loki's `detected_fields` (`name: None`) and `detected_field/{name}/values`: the newest
    /// `line_limit` lines the log query keeps, their structured metadata and the fields of their
    /// lines parsed as JSON, else logfmt (see `fields`), at most `limit` fields or values.
    pub(crate) async fn detected_fields(
        &self,
        query: &str,
        start: i64,
        end: i64,
        line_limit: usize,
        limit: usize,
    ) -> Result<Vec<DetectedField>> {
        let lines = self.detection_lines(query, start, end, line_limit).await?;
        Ok(fields::detect_fields(&lines, limit))
    }

    /// The values of field `name` (see [`LogqlEngine::detected_fields`]), sorted.
    pub(crate) async fn detected_field_values(
        &self,
        query: &str,
        name: &str,
        start: i64,
        end: i64,
        line_limit: usize,
        limit: usize,
    ) -> Result<Vec<String>> {
        let lines = self.detection_lines(query, start, end, line_limit).await?;
        Ok(fields::field_values(&lines, name, limit))
    }

    /// The lines field detection looks at: parsed on a deep stack (the query's pipeline may
    /// nest), read newest first until `line_limit` pass the pipeline.
    async fn detection_lines(&self, query: &str, start: i64, end: i64, line_limit: usize) -> Result<Vec<fields::Line>> {
        crate::admission::admit(query, crate::admission::Language::Logql, self.cfg.text_limits())?;
        let line_limit = self.check_limit(line_limit)?;
        let (engine, query) = (self.clone(), query.to_string());
        let answer = self
            .timed(on_deep_stack_async(async move {
                let Expr::Log(log) = engine.parse(&query)? else {
                    return Err(Error::BadData(
                        "only log queries are supported here: drop the metric aggregation".into(),
                    ));
                };
                let pipeline = Pipeline::new(&log.stages)?;
                let hints = Pipeline::line_hints(&log.stages);
                let req = scan_request(log.matchers.clone(), start, end, hints, Direction::Backward);
                // Just the lines wanted, when the pipeline keeps every line.
                let first_chunk = if pipeline.may_drop_lines() {
                    line_limit.max(engine.cfg.fetch_chunk)
                } else {
                    line_limit
                };
                let mut out = Vec::new();
                engine
                    .scan(req, first_chunk, |rec| {
                        if let Some(line) = fields::Line::through(rec, &pipeline)? {
                            out.push(line);
                        }
                        Ok(out.len() < line_limit)
                    })
                    .await?;
                Ok(out)
            }))
            .await;
        self.attribute(answer)
    }

    /// Loki's `patterns`: the lines of the streams `query` selects, clustered by Drain per level
    /// (`detected_level`, else the `level` label, else `unknown`), each pattern with its line
    /// count per `step` (at least 10 s, aligned to multiples of it), ordered by count, largest
    /// first.
    pub(crate) async fn patterns(&self, query: &str, start: i64, end: i64, step: i64) -> Result<Patterns> {
        let answer = self.timed(self.patterns_here(query, start, end, step)).await;
        self.attribute(answer)
    }

    async fn patterns_here(&self, query: &str, start: i64, end: i64, step: i64) -> Result<Patterns> {
        let matchers = parse_selector(query)?;
        let step = step.max(PATTERN_MIN_STEP_NS);
        let req = PatternRequest {
            logs: scan_request(matchers, start, end, Vec::new(), Direction::Backward),
            step,
            max_lines: PATTERN_MAX_LINES,
        };
        let answer = self.source.log_patterns(&req).await?;
        let mut series: Vec<(u64, PatternSeries)> = answer
            .series
            .into_iter()
            .map(|s| {
                let total = s.total();
                let samples = filled(&s.samples, step);
                (
                    total,
                    PatternSeries {
                        pattern: s.pattern,
                        level: s.level,
                        samples,
                    },
                )
            })
            .collect();
        series.sort_by(|(ta, a), (tb, b)| tb.cmp(ta).then_with(|| a.pattern.cmp(&b.pattern)));
        Ok(Patterns {
            series: series.into_iter().map(|(_, s)| s).collect(),
            truncated: answer.truncated,
        })
    }

    /// [`scan_logs`] over the engine's source.
    async fn scan(
        &self,
        req: LogRequest,
        first_chunk: usize,
        visit: impl FnMut(&LogRecord) -> Result<bool>,
    ) -> Result<()> {
        scan_logs(self.source.as_ref(), req, first_chunk, visit).await
    }
}

fn scan_request(
    matchers: Vec<Matcher>,
    start: i64,
    end: i64,
    line_hints: Vec<LineHint>,
    direction: Direction,
) -> LogRequest {
    LogRequest {
        matchers,
        start,
        end,
        line_hints,
        direction,
        limit: None,
    }
}

/// The volume endpoints' selector: `{}` (Loki's `MatchAny`) selects every stream.
fn volume_matchers(query: &str) -> Result<Vec<Matcher>> {
    match query.trim() {
        "{}" => Ok(Vec::new()),
        q => parse_selector(q),
    }
}

/// A stream's volume keys, each with its metric.
type VolumeKeys = Vec<(String, Vec<(String, String)>)>;

/// The volume keys a stream counts towards, each with its metric: one label set (Go's
/// `labels.String()`, which also orders the series) when by series, one per label when by labels.
fn volume_keys(labels: &Labels, names: &BTreeSet<String>, by: VolumeBy, targeted: bool) -> VolumeKeys {
    match by {
        VolumeBy::Series => {
            let metric: Vec<(String, String)> = labels
                .iter()
                .filter(|l| names.contains(l.name))
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            let key = format!(
                "{{{}}}",
                metric
                    .iter()
                    .map(|(n, v)| format!("{n}={v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            vec![(key, metric)]
        }
        VolumeBy::Labels => labels
            .iter()
            .filter(|l| !targeted || names.contains(l.name))
            .map(|l| (l.name.to_string(), vec![(l.name.to_string(), String::new())]))
            .collect(),
    }
}

/// A record's level as Loki's pattern ingester groups by it.
/// Samples from the first bucket with lines to the last, the buckets between at zero (as
/// Loki's `Chunk.ForRange` rescales them), in unix seconds.
fn filled(samples: &[(i64, u64)], step: i64) -> Vec<(i64, u64)> {
    let (Some(&(first, _)), Some(&(last, _))) = (samples.first(), samples.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut given = samples.iter().peekable();
    let mut t = first;
    while t <= last {
        let n = given.next_if(|(b, _)| *b == t).map_or(0, |(_, n)| *n);
        out.push((t.div_euclid(1_000_000_000), n));
        t += step;
    }
    out
}

/// Labels a parser must not report as fields.
pub(super) fn is_error_label(name: &str) -> bool {
    name == ERROR_LABEL || name == ERROR_DETAILS_LABEL || name == "__preserve_error__"
}
