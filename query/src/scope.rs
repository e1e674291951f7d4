//! A token's read scope, enforced under the engines: [`ScopedSource`] and [`ScopedLogSource`]
//! wrap the sources an engine reads so that every selection carries `cluster=~"<scope>"`.
//!
//! Enforcing the scope here, below evaluation, rather than by rewriting the query text or
//! filtering answers, is what makes it hold for every query shape: a series of another cluster
//! never enters the engine, so no selector, subquery, `absent`, `label_replace` or binary
//! operator can bring one back, and listings and metadata only ever see the scope's clusters.
//! Every method of the read contracts is wrapped, so a method added to a contract fails to
//! compile here until it is scoped too (the trait's default would otherwise read unscoped).

use std::sync::Arc;

use async_trait::async_trait;
use tributary_storage::Result;
use tributary_storage::read::{
    ClusterRows, LogRequest, LogSource, PatternRequest, Patterns, SelectRequest, SeriesSize, Source, StreamVolume,
    VolumeRequest, Within,
};
use tributary_storage::rollup::{BucketRead, Resolution};
use tributary_storage::scope::ClusterScope;
use tributary_storage::signals::{ExemplarSeries, HistogramSeries, LogRecord, MetricMetadata};
use tributary_storage::types::{Labels, Matcher, Series, TimeRange};

/// A [`Source`] that answers only for the clusters of a scope.
#[derive(Debug, Clone)]
pub(crate) struct ScopedSource {
    inner: Arc<dyn Source>,
    scope: ClusterScope,
    matcher: Matcher,
}

impl ScopedSource {
    /// `inner`, restricted to the clusters `scope` admits.
    pub(crate) fn new(inner: Arc<dyn Source>, scope: ClusterScope) -> Self {
        let matcher = scope.to_matcher();
        Self { inner, scope, matcher }
    }

    fn scoped(&self, req: &SelectRequest) -> SelectRequest {
        let mut req = req.clone();
        req.matchers.push(self.matcher.clone());
        req
    }
}

#[async_trait]
impl Source for ScopedSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        self.inner.select(&self.scoped(req)).await
    }

    async fn select_within(&self, req: &SelectRequest, budget: usize) -> Result<Within> {
        self.inner.select_within(&self.scoped(req), budget).await
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        self.inner.series(&self.scoped(req)).await
    }

    async fn count_samples(&self, req: &SelectRequest, limit: usize) -> Result<usize> {
        self.inner.count_samples(&self.scoped(req), limit).await
    }

    async fn series_samples(&self, req: &SelectRequest) -> Result<Vec<SeriesSize>> {
        self.inner.series_samples(&self.scoped(req)).await
    }

    async fn label_names(&self, req: &SelectRequest) -> Result<Vec<String>> {
        self.inner.label_names(&self.scoped(req)).await
    }

    async fn label_values(&self, name: &str, req: &SelectRequest) -> Result<Vec<String>> {
        self.inner.label_values(name, &self.scoped(req)).await
    }

    async fn exemplars(&self, selectors: &[Vec<Matcher>], range: TimeRange) -> Result<Vec<ExemplarSeries>> {
        let selectors: Vec<Vec<Matcher>> = selectors
            .iter()
            .map(|s| s.iter().cloned().chain([self.matcher.clone()]).collect())
            .collect();
        self.inner.exemplars(&selectors, range).await
    }

    async fn select_histograms(&self, req: &SelectRequest) -> Result<Vec<HistogramSeries>> {
        self.inner.select_histograms(&self.scoped(req)).await
    }

    /// Metadata is kept per cluster: entries of clusters outside the scope are dropped.
    async fn metadata(&self, metric: Option<&str>) -> Result<Vec<MetricMetadata>> {
        let mut all = self.inner.metadata(metric).await?;
        all.retain(|m| self.scope.matches(&m.cluster));
        Ok(all)
    }

    async fn select_buckets(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        self.inner.select_buckets(&self.scoped(req), resolution).await
    }

    async fn select_window(&self, req: &SelectRequest, resolution: Resolution) -> Result<BucketRead> {
        self.inner.select_window(&self.scoped(req), resolution).await
    }

    async fn bucket_sizes(&self, req: &SelectRequest, resolution: Resolution) -> Result<Vec<ClusterRows>> {
        self.inner.bucket_sizes(&self.scoped(req), resolution).await
    }
}

/// A [`LogSource`] that answers only for the clusters of a scope.
#[derive(Debug, Clone)]
pub(crate) struct ScopedLogSource {
    inner: Arc<dyn LogSource>,
    matcher: Matcher,
}

impl ScopedLogSource {
    /// `inner`, restricted to the clusters `scope` admits.
    pub(crate) fn new(inner: Arc<dyn LogSource>, scope: &ClusterScope) -> Self {
        Self {
            inner,
            matcher: scope.to_matcher(),
        }
    }

    fn scoped(&self, req: &LogRequest) -> LogRequest {
        let mut req = req.clone();
        req.matchers.push(self.matcher.clone());
        req
    }
}

#[async_trait]
impl LogSource for ScopedLogSource {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        self.inner.select_logs(&self.scoped(req)).await
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        self.inner.log_streams(&self.scoped(req)).await
    }

    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        let req = VolumeRequest {
            logs: self.scoped(&req.logs),
            ..req.clone()
        };
        self.inner.log_volume(&req).await
    }

    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        let req = PatternRequest {
            logs: self.scoped(&req.logs),
            ..req.clone()
        };
        self.inner.log_patterns(&req).await
    }

    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        self.inner.log_label_names(&self.scoped(req)).await
    }

    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        self.inner.log_label_values(name, &self.scoped(req)).await
    }
}

#[cfg(test)]
mod tests;
