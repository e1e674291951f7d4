//! Engine tests against an in-memory source. Expected values are derived by hand from
//! Prometheus's documented algorithms (see the comments in each test).

mod algebra;
mod deadlines;
mod functions;
mod native_histograms;
mod operators;
mod parts;
mod prometheus3;
mod rollups;
mod script;
mod selectors;
mod subqueries;
mod trends;

use std::sync::Arc;

use tributary_storage::types::{STALE_NAN_BITS, Sample, Series};

use super::{Engine, Value};
use crate::config::QueryConfig;
use crate::error::Result;
use crate::test_source::{VecSource, parse_labels};

pub(super) const STALE: f64 = f64::from_bits(STALE_NAN_BITS);

/// A small deterministic generator (no dependency, same data every run; a failure names its
/// case).
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    /// The next value in `0..n`.
    pub(crate) fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// An engine over fixtures given as `("name{a=\"b\"}", &[(seconds, value)])`.
pub(super) fn engine(fixtures: &[(&str, &[(i64, f64)])]) -> Engine {
    engine_with(fixtures, QueryConfig::default())
}

pub(super) fn engine_with(fixtures: &[(&str, &[(i64, f64)])], cfg: QueryConfig) -> Engine {
    let series = fixtures
        .iter()
        .map(|(text, samples)| {
            Series::new(
                parse_labels(text),
                samples.iter().map(|&(t, v)| Sample::new(t * 1000, v)).collect(),
            )
        })
        .collect();
    Engine::new(Arc::new(VecSource::new(series)), cfg)
}

pub(super) async fn instant(e: &Engine, query: &str, t_seconds: i64) -> Result<Value> {
    e.instant(query, t_seconds * 1000).await
}

/// An instant vector as `(labels, value)` rows in result order.
pub(super) fn rows(v: &Value) -> Vec<(String, f64)> {
    match v {
        Value::Vector(samples) => samples.iter().map(|s| (s.labels.to_string(), s.value)).collect(),
        other => panic!("expected a vector, got {other:?}"),
    }
}

/// Like [`rows`], sorted by labels for order-independent comparisons.
pub(super) fn sorted_rows(v: &Value) -> Vec<(String, f64)> {
    let mut r = rows(v);
    r.sort_by(|a, b| a.0.cmp(&b.0));
    r
}

/// A matrix as `(labels, [(seconds, value)])`.
pub(super) fn matrix(v: &Value) -> Vec<(String, Vec<(i64, f64)>)> {
    match v {
        Value::Matrix(series) => series
            .iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples.iter().map(|x| (x.timestamp / 1000, x.value)).collect(),
                )
            })
            .collect(),
        other => panic!("expected a matrix, got {other:?}"),
    }
}

pub(super) fn row(labels: &str, value: f64) -> (String, f64) {
    (parse_labels(labels).to_string(), value)
}

pub(super) fn assert_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "got {got}, want {want}"
    );
}

pub(super) fn assert_rows_close(got: &[(String, f64)], want: &[(String, f64)]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0, "got {got:?}, want {want:?}");
        assert_close(g.1, w.1);
    }
}
