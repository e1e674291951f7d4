//! The native-histogram read contract ([`Source::select_histograms`]): its reference
//! ([`MemHistograms`]) and the conformance suite every implementation runs
//! ([`histogram_source_conformance`]): the head, the Parquet `histograms` table and the merged
//! source.

use std::future::Future;
use std::sync::Arc;

use crate::read::{SelectRequest, Source};
use crate::signals::{BucketSpan, HistogramSample, HistogramSeries, ResetHint};
use crate::types::{Labels, MatchOp, Matcher, SeriesIdSet, TimeRange, matches_all};

/// The reference semantics of [`Source::select_histograms`] over a `Vec<HistogramSeries>`:
/// series with equal labels merged, samples sorted, for a repeated timestamp the sample given
/// later wins (as if written later).
#[derive(Clone, Debug, Default)]
pub struct MemHistograms {
    series: Vec<HistogramSeries>,
}

impl MemHistograms {
    /// Holds `input`, merged as the type's doc says.
    pub fn new(input: Vec<HistogramSeries>) -> Self {
        let mut series = super::merge_by_labels(input, |s| (&s.labels, &mut s.samples));
        for s in &mut series {
            // Stable sort of the reversed list, then the first of each timestamp: the later wins.
            s.samples.reverse();
            s.samples.sort_by_key(|h| h.timestamp);
            s.samples.dedup_by_key(|h| h.timestamp);
        }
        series.retain(|s| !s.samples.is_empty());
        Self { series }
    }

    /// What [`Source::select_histograms`] must answer for `req`, sorted by labels.
    pub fn select(&self, req: &SelectRequest) -> Vec<HistogramSeries> {
        let mut out: Vec<HistogramSeries> = self
            .series
            .iter()
            .filter(|s| matches_all(&req.matchers, &s.labels) && req.admits(&s.labels))
            .filter_map(|s| {
                let samples: Vec<HistogramSample> = s
                    .samples
                    .iter()
                    .filter(|h| req.range.contains(h.timestamp))
                    .cloned()
                    .collect();
                (!samples.is_empty()).then(|| HistogramSeries {
                    labels: s.labels.clone(),
                    samples,
                })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// The [`Source::select_histograms`] conformance suite.
///
/// `make` receives a dataset and returns a source holding it. The `Vec` may repeat a label set;
/// an entry later in the `Vec` counts as written later, so for a timestamp present in both the
/// later entry's sample must win. Panics on the first contract violation, naming the dataset,
/// the request and the difference.
pub async fn histogram_source_conformance<F, Fut>(make: F)
where
    F: Fn(Vec<HistogramSeries>) -> Fut,
    Fut: Future<Output = Arc<dyn Source>>,
{
    for (name, data) in datasets() {
        let reference = MemHistograms::new(data.clone());
        let source = make(data).await;
        for matchers in selectors() {
            for (range_name, range) in ranges() {
                let req = SelectRequest::new(matchers.clone(), range);
                let ctx = format!("dataset {name:?}, matchers {matchers:?}, range {range_name}");
                check(&ctx, source.as_ref(), &reference, &req).await;
            }
        }
    }
}

async fn check(ctx: &str, source: &dyn Source, reference: &MemHistograms, req: &SelectRequest) {
    let want = reference.select(req);
    let mut got = source
        .select_histograms(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select_histograms failed: {e}"));
    got.sort_by(|a, b| a.labels.cmp(&b.labels));
    for w in got.windows(2) {
        assert!(
            w[0].labels != w[1].labels,
            "{ctx}: series {} returned twice",
            w[0].labels
        );
    }
    for s in &got {
        for w in s.samples.windows(2) {
            assert!(
                w[0].timestamp < w[1].timestamp,
                "{ctx}: {} samples not strictly increasing ({} then {})",
                s.labels,
                w[0].timestamp,
                w[1].timestamp
            );
        }
    }
    assert_eq!(got, want, "{ctx}: wrong answer");

    // `only`: every other series of the answer, exactly those.
    let half: SeriesIdSet = want.iter().step_by(2).map(|s| s.labels.series_id()).collect();
    let only = req.clone().only(Arc::new(half));
    let mut part = source
        .select_histograms(&only)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select_histograms with `only` failed: {e}"));
    part.sort_by(|a, b| a.labels.cmp(&b.labels));
    let want_part: Vec<HistogramSeries> = want.into_iter().step_by(2).collect();
    assert_eq!(part, want_part, "{ctx}: `only` not honoured");
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs)
}

/// An exponential histogram sample with both bucket sides, a zero bucket and a gap in spans.
fn exponential(t: i64, scale: f64) -> HistogramSample {
    HistogramSample {
        timestamp: t,
        count: 12.0 * scale,
        sum: 3.25 * scale,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: 1.0 * scale,
        positive_spans: vec![
            BucketSpan { offset: -2, length: 2 },
            BucketSpan { offset: 3, length: 1 },
        ],
        positive_buckets: vec![2.0 * scale, 4.0 * scale, 3.0 * scale],
        negative_spans: vec![BucketSpan { offset: 0, length: 1 }],
        negative_buckets: vec![2.0 * scale],
        reset_hint: if t == 0 { ResetHint::Yes } else { ResetHint::No },
        custom_values: Vec::new(),
    }
}

/// A custom-bucket (NHCB, schema −53) sample, as a classic histogram converts to.
fn custom(t: i64, n: f64) -> HistogramSample {
    HistogramSample {
        timestamp: t,
        count: 6.0 * n,
        sum: 0.9 * n,
        schema: -53,
        positive_spans: vec![BucketSpan { offset: 0, length: 3 }],
        positive_buckets: vec![1.0 * n, 2.0 * n, 3.0 * n],
        custom_values: vec![0.1, 0.5, 1.0],
        ..HistogramSample::default()
    }
}

fn gauge(t: i64) -> HistogramSample {
    HistogramSample {
        reset_hint: ResetHint::Gauge,
        count: 1.0,
        sum: -0.5,
        negative_spans: vec![BucketSpan { offset: 1, length: 1 }],
        negative_buckets: vec![1.0],
        positive_spans: Vec::new(),
        positive_buckets: Vec::new(),
        ..exponential(t, 1.0)
    }
}

fn series(pairs: &[(&str, &str)], samples: Vec<HistogramSample>) -> HistogramSeries {
    HistogramSeries {
        labels: labels(pairs),
        samples,
    }
}

fn datasets() -> Vec<(&'static str, Vec<HistogramSeries>)> {
    let minute = 60_000;
    let fleet = (0..3)
        .flat_map(|c| {
            let cluster = ["east", "west", "north"][c];
            [
                series(
                    &[
                        ("__name__", "rpc_duration_seconds"),
                        ("cluster", cluster),
                        ("method", "get"),
                    ],
                    (0..20).map(|i| exponential(i * 15_000, (i + 1) as f64)).collect(),
                ),
                series(
                    &[
                        ("__name__", "rpc_duration_seconds"),
                        ("cluster", cluster),
                        ("method", "put"),
                    ],
                    (0..5).map(|i| exponential(i * minute + 7, 1.0)).collect(),
                ),
                series(
                    &[
                        ("__name__", "payload_bytes"),
                        ("cluster", cluster),
                        ("le_style", "nhcb"),
                    ],
                    (0..10).map(|i| custom(i * 30_000, i as f64)).collect(),
                ),
            ]
        })
        .chain([series(
            &[("__name__", "queue_depth"), ("cluster", "east")],
            (0..4).map(|i| gauge(i * minute)).collect(),
        )])
        .collect();
    // The same series written three times with overlapping timestamps: the later write wins.
    let rewritten = vec![
        series(
            &[
                ("__name__", "rpc_duration_seconds"),
                ("cluster", "east"),
                ("method", "get"),
            ],
            (0..6).map(|i| exponential(i * minute, 1.0)).collect(),
        ),
        series(
            &[
                ("__name__", "rpc_duration_seconds"),
                ("cluster", "east"),
                ("method", "get"),
            ],
            (3..9).map(|i| exponential(i * minute, 10.0)).collect(),
        ),
        series(
            &[
                ("__name__", "rpc_duration_seconds"),
                ("cluster", "east"),
                ("method", "get"),
            ],
            vec![exponential(4 * minute, 100.0)],
        ),
        series(
            &[
                ("__name__", "rpc_duration_seconds"),
                ("cluster", "west"),
                ("method", "get"),
            ],
            (0..3).map(|i| exponential(i * minute, 2.0)).collect(),
        ),
    ];
    vec![("fleet", fleet), ("rewritten", rewritten), ("empty", Vec::new())]
}

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

fn selectors() -> Vec<Vec<Matcher>> {
    vec![
        vec![m("__name__", MatchOp::Equal, "rpc_duration_seconds")],
        vec![
            m("__name__", MatchOp::Equal, "rpc_duration_seconds"),
            m("cluster", MatchOp::Equal, "east"),
        ],
        vec![
            m("__name__", MatchOp::RegexMatch, "rpc_.*|payload_bytes"),
            m("cluster", MatchOp::NotEqual, "west"),
        ],
        vec![
            m("cluster", MatchOp::RegexMatch, "e.*"),
            m("method", MatchOp::Equal, ""),
        ],
        vec![m("__name__", MatchOp::RegexNoMatch, "rpc_.*")],
        vec![m("__name__", MatchOp::Equal, "no_such_metric")],
    ]
}

/// Closed ranges (milliseconds), including ones whose edges sit exactly on samples.
fn ranges() -> Vec<(&'static str, TimeRange)> {
    vec![
        ("all", TimeRange::ALL),
        ("first minutes, edges on samples", TimeRange::new(0, 3 * 60_000)),
        ("one instant", TimeRange::new(60_000, 60_000)),
        ("between samples", TimeRange::new(1, 7 - 1)),
        ("after all", TimeRange::new(10 * 86_400_000, 11 * 86_400_000)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::MemSource;

    #[tokio::test]
    async fn the_reference_source_conforms() {
        histogram_source_conformance(|data| async move {
            Arc::new(MemSource::default().with_histograms(data)) as Arc<dyn Source>
        })
        .await;
    }

    #[test]
    fn the_reference_keeps_the_later_write_of_a_timestamp() {
        let (_, data) = datasets().swap_remove(1);
        let reference = MemHistograms::new(data);
        let req = SelectRequest::new(vec![m("cluster", MatchOp::Equal, "east")], TimeRange::ALL);
        let got = reference.select(&req);
        assert_eq!(got.len(), 1);
        let scales: Vec<f64> = got[0].samples.iter().map(|s| s.count / 12.0).collect();
        assert_eq!(scales, [1.0, 1.0, 1.0, 10.0, 100.0, 10.0, 10.0, 10.0, 10.0]);
    }
}
