//! [`ParquetSource`]: the one [`Source`] over the Parquet tables, composed from the readers of
//! four sibling tables: series and samples from `metrics`, [`Source::select_histograms`] from
//! `histograms`, [`Source::exemplars`] from `exemplars`, [`Source::metadata`] from `metadata`,
//! [`Source::select_buckets`] from `metrics_5m`/`metrics_1h`/`metrics_1d` and `metrics`.
//! Composing here, above the tables, keeps the tables from importing one another.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;

use crate::catalog::{FileMeta, NewestByDay, newest_per_day};
use crate::read::{ClusterRows, SelectRequest, SeriesSize, Source};
use crate::rollup::{BucketRead, Covered, DAY_MS, Resolution};
use crate::signals::{ExemplarSeries, HistogramSeries, MetricMetadata};
use crate::table::exemplars::ExemplarsReader;
use crate::table::histograms::HistogramsReader;
use crate::table::metadata::MetadataReader;
use crate::table::metrics::MetricsReader;
use crate::table::rollups::RollupsReader;
use crate::types::{CLUSTER, Labels, MatchOp, Matcher, Series, TimeRange};
use crate::{Error, Result};

/// The Parquet tables as one [`Source`].
#[derive(Debug)]
pub(crate) struct ParquetSource {
    pub(crate) metrics: MetricsReader,
    pub(crate) histograms: HistogramsReader,
    pub(crate) exemplars: ExemplarsReader,
    pub(crate) metadata: MetadataReader,
    pub(crate) rollups_5m: RollupsReader,
    pub(crate) rollups_1h: RollupsReader,
    pub(crate) rollups_1d: RollupsReader,
}

#[async_trait]
impl Source for ParquetSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.metrics.select(req).await
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        self.metrics.series(req).await
    }

    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        self.metrics.count_samples(req, limit).await
    }

    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        self.metrics.series_samples(req).await
    }

    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.metrics.label_names(req).await
    }

    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.metrics.label_values(name, req).await
    }

    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        let mut all = self.histograms.select(&req.matchers, req.range).await?;
        all.retain(|s| req.admits(&s.labels));
        Ok(all)
    }

    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        self.exemplars.select(selectors, range).await
    }

    /// Reads each metadata file once (later calls read only files written since).
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        self.metadata.read(metric).await
    }

    /// Rollup rows for every (cluster, UTC day) the resolution's table holds a file of, raw
    /// samples of the metrics table for the rest: the raw read of each run of days with the
    /// same rolled-up clusters leaves those clusters out by a `cluster!~` matcher, so their raw
    /// files are not even opened.
    async fn select_buckets(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        self.buckets(req, resolution, false).await
    }

    /// From the catalog's file keys alone (no file opened): per cluster, the rows of the
    /// rollup files a bucket read uses and of the raw files of every other day.
    async fn bucket_sizes(&self, req: &SelectRequest, resolution: Resolution) -> Result<Vec<ClusterRows>> {
        let range = resolution.widen(req.range);
        if range.start > range.end {
            return Ok(Vec::new());
        }
        let (rolled, _) = self.fresh_rollups(self.rollups(resolution), req, range);
        let day_of = |f: &FileMeta| (f.key.cluster.clone(), f.key.hour.day_start().start_ms());
        let days: HashSet<(String, i64)> = rolled.iter().map(|f| day_of(f)).collect();
        let raw = self.metrics.files(&SelectRequest { range, ..req.clone() });
        let rows = rolled
            .iter()
            .chain(raw.iter().filter(|f| !days.contains(&day_of(f))))
            .map(|f| (f.key.cluster.clone(), usize::try_from(f.key.rows).unwrap_or(usize::MAX)));
        Ok(ClusterRows::sum(rows))
    }

    /// As `select_buckets`, whole rollup days summarised (`RollupsReader::select_window`).
    async fn select_window(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        self.buckets(req, resolution, true).await
    }
}

impl ParquetSource {
    fn rollups(&self, resolution: Resolution) -> &RollupsReader {
        match resolution {
            Resolution::FiveMinutes => &self.rollups_5m,
            Resolution::OneHour => &self.rollups_1h,
            Resolution::OneDay => &self.rollups_1d,
        }
    }

    /// The rollup files of `reader` a bucket read of `req` in `range` (widened) uses, with the
    /// newest raw file of each (cluster, day) in those days.
    fn fresh_rollups(
        &self,
        reader: &RollupsReader,
        req: &SelectRequest,
        range: TimeRange,
    ) -> (Vec<Arc<FileMeta>>, NewestByDay) {
        let files = reader.files(range, &req.matchers);
        // A (cluster, day) counts as rolled up only while its newest rollup file is at least as
        // new as its newest raw file (v7 ids sort by creation), the compactor's own staleness
        // rule: late data flushed after the rollup is read raw until the compactor rolls the
        // day up again, never silently left out.
        let whole_days = TimeRange::new(
            range.start.div_euclid(DAY_MS).saturating_mul(DAY_MS),
            range
                .end
                .div_euclid(DAY_MS)
                .saturating_mul(DAY_MS)
                .saturating_add(DAY_MS - 1),
        );
        let newest_raw = self.metrics.newest_by_day(whole_days);
        let fresh: HashSet<(&str, i64)> = newest_per_day(&files)
            .into_iter()
            .filter(|((cluster, day), id)| newest_raw.get(cluster, *day).is_none_or(|raw| raw <= *id))
            .map(|(k, _)| k)
            .collect();
        let files: Vec<Arc<FileMeta>> = files
            .iter()
            .filter(|f| fresh.contains(&(f.key.cluster.as_str(), f.key.hour.day_start().start_ms())))
            .cloned()
            .collect();
        (files, newest_raw)
    }

    async fn buckets(&self, req: &SelectRequest, resolution: Resolution, window: bool) -> Result<BucketRead> {
        let range = resolution.widen(req.range);
        if range.start > range.end {
            return Ok(BucketRead::raw(resolution, Vec::new()));
        }
        let reader = self.rollups(resolution);
        let (files, newest_raw) = self.fresh_rollups(reader, req, range);
        // The files stay listed here for `days` to borrow their clusters (no copy per file).
        let listed = files.clone();
        let mut days: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
        for f in &listed {
            days.entry(f.key.min_ts.div_euclid(DAY_MS))
                .or_default()
                .insert(f.key.cluster.as_str());
        }
        let mut rolled = if window {
            let (files, summaries) = self.day_summaries(files, req, range, resolution, &newest_raw);
            reader
                .select_window(files, summaries, &req.matchers, range, |l| req.admits(l))
                .await?
        } else {
            reader
                .select(files, &req.matchers, range, req.bucket_fields, |l| req.admits(l))
                .await?
        };
        let mut covered: Vec<Covered> = days
            .iter()
            .flat_map(|(&day, clusters)| {
                let span = TimeRange::new(day * DAY_MS, day * DAY_MS + DAY_MS - 1);
                clusters.iter().map(move |c| Covered {
                    cluster: c.to_string(),
                    range: span,
                })
            })
            .collect();
        let mut raw: Vec<Series> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for (span, rolled_up) in raw_runs(range, &days) {
            let mut matchers = req.matchers.clone();
            if !rolled_up.is_empty() {
                let names: Vec<String> = rolled_up.iter().map(|c| regex::escape(c)).collect();
                let not_rolled =
                    Matcher::new(MatchOp::RegexNoMatch, CLUSTER, names.join("|")).map_err(|e| Error::InvalidData {
                        reason: format!("cluster exclusion: {e}"),
                    })?;
                matchers.push(not_rolled);
            }
            let part = SelectRequest {
                matchers,
                range: span,
                only: req.only.clone(),
                newest_only: false,
                bucket_fields: req.bucket_fields,
            };
            // A window read takes the raw files it holds whole from their summaries.
            let found = if window && part.only.is_none() {
                let (pieces, spans, raw) = self.metrics.select_summarised(&part, resolution).await?;
                rolled.extend(pieces);
                covered.extend(spans);
                raw
            } else {
                self.metrics.select(&part).await?
            };
            // Runs are in time order, so appending keeps each series' samples sorted.
            for s in found {
                match index.get(&s.labels) {
                    Some(&i) => raw[i].samples.extend(s.samples),
                    None => {
                        index.insert(s.labels.clone(), raw.len());
                        raw.push(s);
                    }
                }
            }
        }
        Ok(BucketRead {
            resolution,
            rolled,
            covered,
            raw,
        })
    }

    /// For a read of one window at a resolution finer than a day: the (cluster, day)s of `files`
    /// whose day lies wholly in the window and that have exactly one `metrics_1d` file, as
    /// fresh as their raw files (the rule `buckets` applies to every tier), are taken out of
    /// `files` and answered by that file instead (second list): its rows are the day's summary
    /// per series that `select_window` would otherwise fold from 24 hourly (or 288 five-minute)
    /// rows, because the compactor writes both tiers from the same samples in one commit. A
    /// day with no such file (rolled up before the tier existed, or written again and not yet
    /// merged) keeps its finer rows.
    fn day_summaries(
        &self,
        files: Vec<Arc<FileMeta>>,
        req: &SelectRequest,
        range: TimeRange,
        resolution: Resolution,
        newest_raw: &NewestByDay,
    ) -> (Vec<Arc<FileMeta>>, Vec<Arc<FileMeta>>) {
        if resolution.ms() >= DAY_MS || files.is_empty() {
            return (files, Vec::new());
        }
        let labels = resolution.labels_within(range);
        let whole = |day: i64| labels.start <= day + resolution.ms() && day + DAY_MS <= labels.end;
        fn day_key(f: &FileMeta) -> (&str, i64) {
            (f.key.cluster.as_str(), f.key.hour.day_start().start_ms())
        }
        let finer: HashSet<(&str, i64)> = files.iter().map(|f| day_key(f)).collect();
        let day_files = self.rollups_1d.files(range, &req.matchers);
        let mut per_day: HashMap<(&str, i64), Vec<&Arc<FileMeta>>> = HashMap::new();
        for f in &day_files {
            per_day.entry(day_key(f)).or_default().push(f);
        }
        let usable: HashMap<(&str, i64), Arc<FileMeta>> = per_day
            .into_iter()
            .filter(|((cluster, day), fs)| {
                fs.len() == 1 && whole(*day) && newest_raw.get(cluster, *day).is_none_or(|raw| raw <= fs[0].key.id)
            })
            .filter(|(k, _)| finer.contains(k))
            .map(|(k, fs)| (k, fs[0].clone()))
            .collect();
        let files = files
            .into_iter()
            .filter(|f| !usable.contains_key(&day_key(f)))
            .collect();
        let summaries = usable.into_values().collect();
        (files, summaries)
    }
}

/// `range` cut into runs of whole days (ends clipped to `range`) with the same set of
/// rolled-up clusters, in time order: the days in `days` with their clusters, the days between
/// and around them with none.
fn raw_runs<'a, 'c>(
    range: TimeRange,
    days: &'a BTreeMap<i64, BTreeSet<&'c str>>,
) -> Vec<(TimeRange, &'a BTreeSet<&'c str>)> {
    static NONE: BTreeSet<&str> = BTreeSet::new();
    let mut runs: Vec<(TimeRange, &BTreeSet<&str>)> = Vec::new();
    let mut push = |span: TimeRange, clusters: &'a BTreeSet<&'c str>| {
        let span = TimeRange::new(span.start.max(range.start), span.end.min(range.end));
        if span.start > span.end {
            return;
        }
        match runs.last_mut() {
            Some((last, set)) if *set == clusters && last.end.saturating_add(1) == span.start => last.end = span.end,
            _ => runs.push((span, clusters)),
        }
    };
    let mut next = range.start;
    for (&day, clusters) in days {
        let start = day * DAY_MS;
        if next < start {
            push(TimeRange::new(next, start - 1), &NONE);
        }
        push(TimeRange::new(start, start + DAY_MS - 1), clusters);
        next = next.max(start + DAY_MS);
    }
    if next <= range.end {
        push(TimeRange::new(next, range.end), &NONE);
    }
    runs
}
