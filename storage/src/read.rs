//! The read contract: how the query engine reads series, whoever holds them.
//!
//! [`Source`] is implemented by the in-memory head (in `ingest`) and by the Parquet reader
//! (here, [`crate::read::parquet`]); the binary hands both to the query engine, which merges them.
//! This is the seam that keeps `query` from depending on `ingest`.

pub mod parquet;
pub mod prune;

use async_trait::async_trait;

use crate::Result;
use crate::signals::{ExemplarSeries, MetricMetadata};
use crate::types::{Labels, Matcher, Series, TimeRange};

/// What to read: every series that satisfies all `matchers` and has at least one sample in `range`.
#[derive(Clone, Debug)]
pub struct SelectRequest {
    /// All must match. An empty list selects every series (only label/series listings do that).
    pub matchers: Vec<Matcher>,
    /// Closed interval, milliseconds.
    pub range: TimeRange,
}

impl SelectRequest {
    pub fn new(matchers: Vec<Matcher>, range: TimeRange) -> Self {
        Self { matchers, range }
    }
}

/// A readable set of series: the head, the Parquet files, or a merge of them.
///
/// # Contract
/// Every implementation must satisfy, and the conformance suite in `test_util` checks:
/// - [`Source::select`] returns each matching series once, with only the samples whose timestamp
///   lies in `req.range`, sorted by timestamp, one sample per timestamp. Series with no sample
///   in range are left out. The order of series is unspecified.
/// - Sample values keep their exact bits: a staleness marker stays a staleness marker.
/// - [`Source::series`] returns the label sets `select` would return, without samples. An
///   implementation may answer from coarser metadata (e.g. a whole file's time span), so it may
///   include a series whose samples lie just outside `range`, never leave one out.
/// - Matchers follow Prometheus: a missing label matches as `""`; regexes are anchored.
/// - The same data gives the same answers from the head and from Parquet; merging sources
///   never returns a timestamp twice for one series.
#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Series with their samples in range.
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>>;

    /// Label sets of matching series that have data in range (no samples read).
    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>>;

    /// Sorted, unique label names of matching series.
    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .series(req)
            .await?
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted, unique values of label `name` among matching series.
    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        let mut values: Vec<String> = self
            .series(req)
            .await?
            .iter()
            .filter_map(|l| l.get(name).map(str::to_string))
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// Exemplars of the series matching any of `selectors` (each a list of matchers that must all
    /// match), with timestamps in `range`. Each series once, exemplars sorted by timestamp, one
    /// per (timestamp, value, labels). Sources that hold no exemplars answer empty.
    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let _ = (selectors, range);
        Ok(Vec::new())
    }

    /// Metric metadata, optionally of one metric family only; each distinct (cluster, metric,
    /// type, help, unit) once. Sources that hold no metadata answer empty.
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let _ = metric;
        Ok(Vec::new())
    }
}
