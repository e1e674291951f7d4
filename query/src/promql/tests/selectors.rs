//! Selectors: lookback, staleness, matchers, offset, `@`, and result shapes.

use super::*;
use crate::error::{Error, ErrorKind};

#[tokio::test]
async fn lookback_window_is_left_open() {
    let e = engine(&[(r#"up{job="a"}"#, &[(0, 1.0), (60, 2.0)])]);
    assert_eq!(
        rows(&instant(&e, "up", 60).await.unwrap()),
        vec![row(r#"up{job="a"}"#, 2.0)]
    );
    // (59, 359] still holds the sample at 60.
    assert_eq!(
        rows(&instant(&e, "up", 359).await.unwrap()),
        vec![row(r#"up{job="a"}"#, 2.0)]
    );
    // (60, 360] does not: exactly 5m old is too old in Prometheus 3.
    assert!(rows(&instant(&e, "up", 360).await.unwrap()).is_empty());
    assert_eq!(
        rows(&instant(&e, "up", 0).await.unwrap()),
        vec![row(r#"up{job="a"}"#, 1.0)]
    );
    assert!(rows(&instant(&e, "up", -1).await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_staleness_marker_ends_the_series_and_is_never_a_value() {
    let e = engine(&[("up", &[(0, 1.0), (30, STALE), (90, 3.0)])]);
    assert_eq!(rows(&instant(&e, "up", 20).await.unwrap()), vec![row("up", 1.0)]);
    assert!(rows(&instant(&e, "up", 30).await.unwrap()).is_empty());
    assert!(rows(&instant(&e, "up", 60).await.unwrap()).is_empty());
    assert_eq!(rows(&instant(&e, "up", 90).await.unwrap()), vec![row("up", 3.0)]);
    // Range windows skip markers: (-10, 90] holds 0 and 90 (and the marker at 30).
    assert_eq!(
        rows(&instant(&e, "count_over_time(up[100s])", 90).await.unwrap()),
        vec![row("{}", 2.0)]
    );
    // A range query sees the gap.
    let v = e.range("up", 0, 90_000, 30_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![(parse_labels("up").to_string(), vec![(0, 1.0), (90, 3.0)])]
    );
}

#[tokio::test]
async fn all_four_matcher_kinds() {
    let e = engine(&[
        (r#"m{job="api",env="prod",i="1"}"#, &[(0, 1.0)]),
        (r#"m{job="api",env="dev",i="2"}"#, &[(0, 2.0)]),
        (r#"m{job="web",env="prod",i="3"}"#, &[(0, 3.0)]),
        (r#"m{job="api",i="4"}"#, &[(0, 4.0)]),
    ]);
    let values = |q: &'static str| {
        let e = &e;
        async move {
            rows(&instant(e, q, 0).await.unwrap())
                .into_iter()
                .map(|r| r.1)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(values(r#"m{job="api"}"#).await, vec![2.0, 1.0, 4.0]);
    assert_eq!(values(r#"m{env!="prod"}"#).await, vec![2.0, 4.0]);
    assert_eq!(values(r#"m{job=~"a.*"}"#).await, vec![2.0, 1.0, 4.0]);
    assert!(values(r#"m{job=~"a"}"#).await.is_empty(), "regexes are anchored");
    assert_eq!(values(r#"m{env!~"p.*"}"#).await, vec![2.0, 4.0]);
    assert_eq!(values(r#"{__name__="m", env=""}"#).await, vec![4.0]);
}

#[tokio::test]
async fn offset_and_at_modifiers() {
    let e = engine(&[("up", &[(0, 0.0), (60, 60.0), (120, 120.0), (180, 180.0)])]);
    assert_eq!(
        rows(&instant(&e, "up offset 1m", 180).await.unwrap()),
        vec![row("up", 120.0)]
    );
    assert_eq!(
        rows(&instant(&e, "up offset -1m", 60).await.unwrap()),
        vec![row("up", 120.0)]
    );
    assert_eq!(
        rows(&instant(&e, "up @ 60", 100_000).await.unwrap()),
        vec![row("up", 60.0)]
    );
    assert_eq!(
        rows(&instant(&e, "up @ 120 offset 1m", 5).await.unwrap()),
        vec![row("up", 60.0)]
    );
    // (60, 180] at the pinned time holds 120 and 180.
    assert_eq!(
        rows(&instant(&e, "count_over_time(up[2m] @ 180)", 9999).await.unwrap()),
        vec![row("{}", 2.0)]
    );
    let start = e.range("up @ start()", 60_000, 180_000, 60_000).await.unwrap();
    assert_eq!(matrix(&start)[0].1, vec![(60, 60.0), (120, 60.0), (180, 60.0)]);
    let end = e.range("up @ end()", 60_000, 180_000, 60_000).await.unwrap();
    assert_eq!(matrix(&end)[0].1, vec![(60, 180.0), (120, 180.0), (180, 180.0)]);
}

#[tokio::test]
async fn instant_range_selector_returns_raw_samples_in_the_window() {
    let e = engine(&[("up", &[(0, 0.0), (60, 60.0), (120, 120.0), (180, 180.0)])]);
    let v = instant(&e, "up[2m]", 180).await.unwrap();
    assert_eq!(v.result_type(), "matrix");
    assert_eq!(
        matrix(&v),
        vec![(parse_labels("up").to_string(), vec![(120, 120.0), (180, 180.0)])]
    );
}

#[tokio::test]
async fn result_types_of_instant_and_range_queries() {
    let e = engine(&[("up", &[(0, 1.0), (60, 2.0)])]);
    assert_eq!(
        instant(&e, "time()", 42).await.unwrap(),
        Value::Scalar {
            timestamp: 42_000,
            value: 42.0
        }
    );
    assert_eq!(
        instant(&e, r#""hello""#, 1).await.unwrap(),
        Value::String {
            timestamp: 1000,
            value: "hello".into()
        }
    );
    let v = e.range("1 + 1", 0, 60_000, 30_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![("{}".to_string(), vec![(0, 2.0), (30, 2.0), (60, 2.0)])]
    );
    let v = e.range("up", 0, 60_000, 30_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![(parse_labels("up").to_string(), vec![(0, 1.0), (30, 1.0), (60, 2.0)])]
    );
    let err = e.range("up[1m]", 0, 60_000, 30_000).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    assert_eq!(err.kind(), ErrorKind::BadData);
    assert!(matches!(e.range("up", 10, 0, 1).await, Err(Error::BadData(_))));
    assert!(matches!(e.range("up", 0, 10, 0).await, Err(Error::BadData(_))));
}

#[tokio::test]
async fn range_results_are_sorted_by_labels() {
    let e = engine(&[(r#"up{i="b"}"#, &[(0, 1.0)]), (r#"up{i="a"}"#, &[(0, 2.0)])]);
    let v = e.range("up * 1", 0, 0, 1000).await.unwrap();
    let labels: Vec<String> = matrix(&v).into_iter().map(|s| s.0).collect();
    assert_eq!(labels, vec![r#"{i="a"}"#, r#"{i="b"}"#]);
}

#[tokio::test]
async fn errors_for_bad_queries_and_limits() {
    let e = engine(&[("up", &[(0, 1.0), (10, 1.0), (20, 1.0)])]);
    let err = instant(&e, "sum(", 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData);
    let err = instant(&e, "start_timestamp(up)", 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Execution);
    assert!(err.to_string().contains("start_timestamp()"), "{err}");
    let err = instant(&e, "integral(up[1m])", 0).await.unwrap_err();
    assert!(err.to_string().contains("integral()"), "{err}");
    let small = engine_with(
        &[("up", &[(0, 1.0), (10, 1.0), (20, 1.0)])],
        QueryConfig {
            max_samples: 2,
            ..Default::default()
        },
    );
    assert!(matches!(
        instant(&small, "count_over_time(up[1m])", 20).await,
        Err(Error::TooManySamples)
    ));
    let e = engine_with(
        &[("up", &[(0, 1.0)])],
        QueryConfig {
            timeout: std::time::Duration::ZERO,
            ..Default::default()
        },
    );
    assert_eq!(instant(&e, "up", 0).await.unwrap_err().kind(), ErrorKind::Timeout);
}

/// Counts the selects it answers.
#[derive(Debug)]
struct CountingSource {
    inner: crate::test_source::VecSource,
    selects: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl tributary_storage::read::Source for CountingSource {
    async fn select(
        &self,
        req: &tributary_storage::read::SelectRequest,
    ) -> tributary_storage::Result<Vec<tributary_storage::types::Series>> {
        self.selects.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.select(req).await
    }
    async fn series(
        &self,
        req: &tributary_storage::read::SelectRequest,
    ) -> tributary_storage::Result<Vec<tributary_storage::types::Labels>> {
        self.inner.series(req).await
    }
    // Counted by the inner source's own way, not through `select`.
    async fn count_samples(
        &self,
        req: &tributary_storage::read::SelectRequest,
        limit: usize,
    ) -> tributary_storage::Result<usize> {
        self.inner.count_samples(req, limit).await
    }
    async fn series_samples(
        &self,
        req: &tributary_storage::read::SelectRequest,
    ) -> tributary_storage::Result<Vec<tributary_storage::read::SeriesSize>> {
        self.inner.series_samples(req).await
    }
}

#[tokio::test]
async fn a_selector_held_twice_is_read_once_and_answers_in_both_places() {
    let series = [("req{c=\"a\"}", 10.0), ("req{c=\"b\"}", 30.0), ("err{c=\"a\"}", 1.0)]
        .map(|(l, v)| Series::new(parse_labels(l), vec![Sample::new(60_000, v)]))
        .to_vec();
    let source = Arc::new(CountingSource {
        inner: crate::test_source::VecSource::new(series),
        selects: Default::default(),
    });
    let e = Engine::new(source.clone(), QueryConfig::default());
    // The generated SLO ratio's shape: `T` in the numerator and the denominator.
    let v = instant(&e, "(sum(err) or 0 * sum(req)) / sum(req)", 60).await.unwrap();
    assert_eq!(rows(&v), vec![row("{}", 1.0 / 40.0)]);
    assert_eq!(
        source.selects.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "err once, req once"
    );
    // A different window of the same matchers is another read.
    let v = instant(&e, "sum(req) / sum(last_over_time(req[2m]))", 60)
        .await
        .unwrap();
    assert_eq!(rows(&v), vec![row("{}", 1.0)]);
    assert_eq!(source.selects.load(std::sync::atomic::Ordering::Relaxed), 4);
}
