//! [`ParquetSource`]: the one [`Source`] over the Parquet tables, composed from the readers of
//! four sibling tables: series and samples from `metrics`, [`Source::select_histograms`] from
//! `histograms`, [`Source::exemplars`] from `exemplars`, [`Source::metadata`] from `metadata`. Composing here, above the tables, keeps
//! the tables from importing one another.

use async_trait::async_trait;

use crate::Result;
use crate::read::{SelectRequest, SeriesSize, Source};
use crate::signals::{ExemplarSeries, HistogramSeries, MetricMetadata};
use crate::table::exemplars::ExemplarsReader;
use crate::table::histograms::HistogramsReader;
use crate::table::metadata::MetadataReader;
use crate::table::metrics::MetricsReader;
use crate::types::{Labels, Matcher, Series, TimeRange};

/// The Parquet tables as one [`Source`].
#[derive(Debug)]
pub(crate) struct ParquetSource {
    pub(crate) metrics: MetricsReader,
    pub(crate) histograms: HistogramsReader,
    pub(crate) exemplars: ExemplarsReader,
    pub(crate) metadata: MetadataReader,
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
}
