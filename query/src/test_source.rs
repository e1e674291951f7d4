//! A Vec-backed [`Source`] for this crate's tests, so they do not depend on other crates' fixtures.

use async_trait::async_trait;
use tributary_storage::Result;
use tributary_storage::read::{SelectRequest, Source};
use tributary_storage::types::{Label, Labels, Sample, Series, matches_all};

#[derive(Debug, Default)]
pub(crate) struct VecSource {
    series: Vec<Series>,
}

impl VecSource {
    pub(crate) fn new(series: Vec<Series>) -> Self {
        Self { series }
    }
}

/// Parses `name{a="b",c="d"}` (no escapes; fixtures only).
pub(crate) fn parse_labels(text: &str) -> Labels {
    let (name, rest) = match text.find('{') {
        Some(i) => (&text[..i], &text[i + 1..text.len() - 1]),
        None => (text, ""),
    };
    let mut labels = Vec::new();
    if !name.is_empty() {
        labels.push(Label::new("__name__", name));
    }
    for pair in rest.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair.split_once('=').expect("fixture label needs '='");
        labels.push(Label::new(k.trim(), v.trim().trim_matches('"')));
    }
    Labels::new(labels)
}

#[async_trait]
impl Source for VecSource {
    async fn select(&self, req: &SelectRequest) -> Result<Vec<Series>> {
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(&req.matchers, &s.labels))
            .map(|s| {
                let samples: Vec<Sample> = s
                    .samples
                    .iter()
                    .filter(|x| req.range.contains(x.timestamp))
                    .copied()
                    .collect();
                Series::new(s.labels.clone(), samples)
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }

    async fn series(&self, req: &SelectRequest) -> Result<Vec<Labels>> {
        Ok(self.select(req).await?.into_iter().map(|s| s.labels).collect())
    }
}
