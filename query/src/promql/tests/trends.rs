//! `deriv`, `predict_linear`, `resets`, `changes`, `absent_over_time`, and the element-wise
//! families added with them: dates, trigonometry, `sort_by_label`, native-histogram functions.

use super::*;

fn fixtures() -> Engine {
    let line: Vec<(i64, f64)> = (0..=12).map(|i| (i * 10, (i * 10) as f64)).collect();
    let leaked: &'static [(i64, f64)] = Box::leak(line.into_boxed_slice());
    engine(&[
        (r#"g{job="a"}"#, leaked),
        (r#"c{job="a"}"#, &[(0, 5.0), (10, 3.0), (20, 3.0), (30, 8.0), (40, 1.0)]),
        (r#"gap{job="a"}"#, &[(0, 1.0), (10, 1.0), (200, 1.0)]),
        (r#"t{i="1",job="b"}"#, &[(0, 951_782_400.0)]),
        (r#"t{i="2",job="a"}"#, &[(0, 1_709_214_310.0)]),
        (r#"t{i="10",job="a"}"#, &[(0, 0.0)]),
    ])
}

async fn one(e: &Engine, q: &str, t: i64) -> f64 {
    let r = rows(&instant(e, q, t).await.unwrap());
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0].1
}

#[tokio::test]
async fn regression_functions() {
    let e = fixtures();
    assert_close(one(&e, "deriv(g[1m])", 120).await, 1.0);
    // The line g = t, 30s past the evaluation time.
    assert_close(one(&e, "predict_linear(g[1m], 30)", 120).await, 150.0);
    // With offset the window is (0, 60] but the prediction still starts at the step (120).
    assert_close(one(&e, "predict_linear(g[1m] offset 1m, 0)", 120).await, 120.0);
    // With @ in a range query the window stays at (0, 60]; the prediction follows the steps.
    let v = e
        .range("predict_linear(g[1m] @ 60, 0)", 60_000, 120_000, 30_000)
        .await
        .unwrap();
    let points = &matrix(&v)[0].1;
    for (&(t, got), want) in points.iter().zip([60.0, 90.0, 120.0]) {
        assert_close(got, want);
        assert_eq!(t as f64, want);
    }
    // Fewer than two samples: nothing.
    assert!(rows(&instant(&e, "deriv(g[5s])", 120).await.unwrap()).is_empty());
}

#[tokio::test]
async fn resets_changes_and_absent_over_time() {
    let e = fixtures();
    // c in (-1, 40]: 5, 3, 3, 8, 1.
    assert_eq!(one(&e, "resets(c[41s])", 40).await, 2.0);
    assert_eq!(one(&e, "changes(c[41s])", 40).await, 3.0);
    assert_eq!(
        rows(&instant(&e, "changes(c[41s])", 40).await.unwrap())[0].0,
        r#"{job="a"}"#
    );
    assert_eq!(
        rows(
            &instant(&e, r#"absent_over_time(nope{job="x",i=~".+"}[1m])"#, 40)
                .await
                .unwrap()
        ),
        vec![row(r#"{job="x"}"#, 1.0)]
    );
    assert!(rows(&instant(&e, "absent_over_time(g[1m])", 40).await.unwrap()).is_empty());
    // `gap` has nothing in (140, 200) windows of 1m: steps 100 and 150 are absent, 200 is not.
    let v = e
        .range("absent_over_time(gap[1m])", 50_000, 200_000, 50_000)
        .await
        .unwrap();
    assert_eq!(matrix(&v), vec![("{}".to_string(), vec![(100, 1.0), (150, 1.0)])]);
}

#[tokio::test]
async fn date_functions_with_and_without_arguments() {
    let e = fixtures();
    // 2000-02-29T00:00:00Z and 2024-02-29T13:45:10Z.
    let by_label = |q: &'static str| {
        let e = &e;
        async move { sorted_rows(&instant(e, q, 0).await.unwrap()) }
    };
    assert_eq!(
        by_label("days_in_month(t)").await,
        vec![
            row(r#"{i="1",job="b"}"#, 29.0),
            row(r#"{i="10",job="a"}"#, 31.0),
            row(r#"{i="2",job="a"}"#, 29.0)
        ]
    );
    assert_eq!(by_label("hour(t)").await[2].1, 13.0);
    assert_eq!(by_label("minute(t)").await[2].1, 45.0);
    assert_eq!(by_label("year(t)").await[0].1, 2000.0);
    assert_eq!(by_label("day_of_week(t)").await[1].1, 4.0);
    assert_eq!(by_label("day_of_year(t)").await[2].1, 60.0);
    assert_eq!(by_label("month(t)").await[1].1, 1.0);
    assert_eq!(by_label("day_of_month(t)").await[0].1, 29.0);
    // Without an argument: the evaluation time, as a vector with no labels.
    assert_eq!(
        rows(&e.instant("hour()", 7_199_999).await.unwrap()),
        vec![row("{}", 1.0)]
    );
    assert_eq!(one(&e, "minute(vector(3600 * 5 + 60 * 7))", 0).await, 7.0);
}

#[tokio::test]
async fn trigonometry_and_pi() {
    let e = fixtures();
    assert_eq!(
        instant(&e, "pi()", 0).await.unwrap(),
        Value::Scalar {
            timestamp: 0,
            value: std::f64::consts::PI
        }
    );
    assert_close(one(&e, "deg(vector(pi()))", 0).await, 180.0);
    assert_close(one(&e, "sin(vector(pi() / 2))", 0).await, 1.0);
    assert_close(one(&e, "acos(vector(-1))", 0).await, std::f64::consts::PI);
    assert!(one(&e, "asin(vector(2))", 0).await.is_nan());
    assert_eq!(one(&e, "atanh(vector(1))", 0).await, f64::INFINITY);
    // The name goes, as for every value-changing function.
    assert_eq!(rows(&instant(&e, "cos(g)", 120).await.unwrap())[0].0, r#"{job="a"}"#);
}

#[tokio::test]
async fn sort_by_label_orders_instant_results_naturally() {
    let e = fixtures();
    let order = |q: &'static str| {
        let e = &e;
        async move {
            rows(&instant(e, q, 0).await.unwrap())
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        order(r#"sort_by_label(t, "i")"#).await,
        vec![r#"t{i="1", job="b"}"#, r#"t{i="2", job="a"}"#, r#"t{i="10", job="a"}"#]
    );
    assert_eq!(
        order(r#"sort_by_label_desc(t, "job", "i")"#).await,
        vec![r#"t{i="1", job="b"}"#, r#"t{i="10", job="a"}"#, r#"t{i="2", job="a"}"#]
    );
}

#[tokio::test]
async fn native_histogram_functions_find_no_native_histograms() {
    let e = fixtures();
    for f in [
        "histogram_count",
        "histogram_sum",
        "histogram_avg",
        "histogram_stddev",
        "histogram_stdvar",
    ] {
        let q = format!("{f}(g)");
        assert!(rows(&e.instant(&q, 120_000).await.unwrap()).is_empty(), "{q}");
    }
    let err = e.instant("histogram_fraction(0, 1, g)", 0).await.unwrap_err();
    assert!(err.to_string().contains("histogram_fraction"), "{err}");
}

/// Native histograms are evaluated beside floats; what does not evaluate them fails naming
/// itself and the series, never an empty or partial answer.
#[tokio::test]
async fn native_histograms_are_evaluated_or_refused_naming_them() {
    use tributary_storage::signals::{BucketSpan, HistogramSample, HistogramSeries};

    use crate::error::ErrorKind;
    use crate::test_source::{VecSource, parse_labels};

    let floats = vec![Series::new(
        parse_labels(r#"up{job="a"}"#),
        vec![Sample::new(60_000, 1.0)],
    )];
    let histograms = vec![HistogramSeries {
        labels: parse_labels(r#"rpc_seconds{job="a"}"#),
        samples: vec![HistogramSample {
            timestamp: 60_000,
            count: 3.0,
            sum: 1.5,
            positive_spans: vec![BucketSpan { offset: 0, length: 2 }],
            positive_buckets: vec![1.0, 2.0],
            ..HistogramSample::default()
        }],
    }];
    let e = Engine::new(
        Arc::new(VecSource::new(floats).with_histograms(histograms)),
        QueryConfig::default(),
    );
    // Buckets (0.5, 1] holding 1 and (1, 2] holding 2: the median is 2^(0.25) by log interpolation.
    for (q, want) in [
        ("histogram_count(rpc_seconds)", 3.0),
        ("histogram_sum(rpc_seconds)", 1.5),
        ("histogram_avg(rpc_seconds)", 0.5),
        ("histogram_quantile(0.5, rpc_seconds)", 2f64.powf(0.25)),
        ("histogram_count(sum(rpc_seconds * 2))", 6.0),
        ("count({job=\"a\"})", 2.0),
    ] {
        let got = rows(&e.instant(q, 90_000).await.unwrap());
        assert_eq!(got.len(), 1, "{q}: {got:?}");
        assert_close(got[0].1, want);
    }
    for (q, what) in [
        ("abs(rpc_seconds)", "abs()"),
        ("max_over_time(rpc_seconds[5m])", "max_over_time()"),
        ("max(rpc_seconds)", "max"),
        ("rpc_seconds * on() group_left up", "the binary operator * group_left"),
    ] {
        let err = e.instant(q, 90_000).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Execution, "{q}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(what) && text.contains("native histogram") && text.contains("rpc_seconds"),
            "{q}: {text}"
        );
    }
    // Where Prometheus drops a histogram with an info, so does the engine.
    let compared = e.instant_query("rpc_seconds > 1", 90_000, None).await.unwrap();
    assert_eq!(rows(&compared.value), Vec::new());
    assert!(
        compared.annotations.infos[0].contains("incompatible sample types"),
        "{compared:?}"
    );
    // Outside the histogram's time, and on float series, queries answer as before.
    assert_eq!(rows(&e.instant("up", 90_000).await.unwrap()).len(), 1);
    assert!(rows(&e.instant("histogram_count(rpc_seconds)", 9_000_000).await.unwrap()).is_empty());
}
