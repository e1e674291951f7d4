//! Functions through the engine: rates with hand-computed extrapolation, `*_over_time`, and the
//! instant-vector functions.

use super::*;

/// A counter rising 10 per 15s scrape, a counter with a reset, and a gauge.
fn counters() -> Engine {
    engine(&[
        (
            r#"c{job="api"}"#,
            &[(0, 0.0), (15, 10.0), (30, 20.0), (45, 30.0), (60, 40.0)],
        ),
        (
            r#"reset{job="api"}"#,
            &[(0, 0.0), (15, 10.0), (30, 5.0), (45, 15.0), (60, 25.0)],
        ),
        (r#"g{job="api"}"#, &[(15, 5.0), (30, 3.0), (45, 8.0), (60, 2.0)]),
        (r#"late{job="api"}"#, &[(45, 100.0), (60, 110.0)]),
        (r#"small{job="api"}"#, &[(30, 1.0), (45, 11.0), (60, 21.0)]),
    ])
}

#[tokio::test]
async fn rate_extrapolates_to_the_window_edges() {
    let e = counters();
    // Window (0, 60] holds 15..60: +30 over 45s. The 15s gap to the start is under 1.1 * 15s,
    // and the zero point (45 * 10/30 = 15s back) is not closer, so extrapolate over 60s:
    // 30 * 60/45 = 40, rate 40/60.
    assert_rows_close(
        &rows(&instant(&e, "increase(c[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, 40.0)],
    );
    assert_rows_close(
        &rows(&instant(&e, "rate(c[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, 40.0 / 60.0)],
    );
}

#[tokio::test]
async fn rate_handles_counter_resets() {
    let e = counters();
    // 10, 5, 15, 25: 15 + 10 (the value before the reset) = 25; zero point 45 * 10/25 = 18s
    // is farther than the 15s gap, so 25 * 60/45.
    let want = 25.0 * 60.0 / 45.0;
    assert_rows_close(
        &rows(&instant(&e, "increase(reset[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, want)],
    );
    assert_rows_close(
        &rows(&instant(&e, "rate(reset[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, want / 60.0)],
    );
    // irate: the last two samples, (25 - 15) / 15s.
    assert_rows_close(
        &rows(&instant(&e, "irate(reset[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, 10.0 / 15.0)],
    );
    // irate across the reset itself: 5 / 15s.
    assert_rows_close(
        &rows(&instant(&e, "irate(reset[1m])", 30).await.unwrap()),
        &[row(r#"{job="api"}"#, 5.0 / 15.0)],
    );
}

#[tokio::test]
async fn extrapolation_is_limited_for_series_starting_or_crossing_zero_in_the_window() {
    let e = counters();
    // `late` starts at 45s: the 45s gap exceeds 1.1 * 15s, so extrapolate only 7.5s:
    // 10 * (15 + 7.5) / 15 = 15.
    assert_rows_close(
        &rows(&instant(&e, "increase(late[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, 15.0)],
    );
    // `small` starts at 30s with value 1 and slope 20/30s: half an interval (7.5s) would go
    // below zero; the zero point is 30 * 1/20 = 1.5s back. 20 * 31.5/30 = 21.
    assert_rows_close(
        &rows(&instant(&e, "increase(small[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, 21.0)],
    );
}

#[tokio::test]
async fn delta_does_not_treat_decreases_as_resets() {
    let e = counters();
    // 2 - 5 = -3 extrapolated from 45s to 60s: -4.
    assert_rows_close(
        &rows(&instant(&e, "delta(g[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, -4.0)],
    );
    assert_rows_close(
        &rows(&instant(&e, "idelta(g[1m])", 60).await.unwrap()),
        &[row(r#"{job="api"}"#, -6.0)],
    );
}

#[tokio::test]
async fn rate_over_a_range_query() {
    let e = counters();
    // Every 30s window holds two samples 15s apart, +10, 15s gap at the start, zero point at
    // least 15s back: 10 * 30/15 = 20, rate 20/30 at each step.
    let v = e.range("rate(c[30s])", 30_000, 60_000, 15_000).await.unwrap();
    let m = matrix(&v);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, r#"{job="api"}"#);
    assert_eq!(m[0].1.iter().map(|p| p.0).collect::<Vec<_>>(), vec![30, 45, 60]);
    for (_, v) in &m[0].1 {
        assert_close(*v, 2.0 / 3.0);
    }
}

#[tokio::test]
async fn over_time_functions() {
    let e = counters();
    let one = |q: String| {
        let e = &e;
        async move { rows(&instant(e, &q, 60).await.unwrap())[0].1 }
    };
    // g in (0, 60]: 5, 3, 8, 2.
    assert_eq!(one("avg_over_time(g[1m])".into()).await, 4.5);
    assert_eq!(one("min_over_time(g[1m])".into()).await, 2.0);
    assert_eq!(one("max_over_time(g[1m])".into()).await, 8.0);
    assert_eq!(one("sum_over_time(g[1m])".into()).await, 18.0);
    assert_eq!(one("count_over_time(g[1m])".into()).await, 4.0);
    assert_eq!(one("last_over_time(g[1m])".into()).await, 2.0);
    assert_eq!(one("present_over_time(g[1m])".into()).await, 1.0);
    // Deviations from 4.5: 0.5, -1.5, 3.5, -2.5; squares sum to 21; 21/4 = 5.25.
    assert_eq!(one("stdvar_over_time(g[1m])".into()).await, 5.25);
    assert_close(one("stddev_over_time(g[1m])".into()).await, 5.25f64.sqrt());
    // Sorted 2, 3, 5, 8: rank 1.5 -> (3 + 5) / 2.
    assert_eq!(one("quantile_over_time(0.5, g[1m])".into()).await, 4.0);
    // last_over_time keeps the metric name; the others drop it.
    assert_eq!(
        rows(&instant(&e, "last_over_time(g[1m])", 60).await.unwrap())[0].0,
        r#"g{job="api"}"#
    );
    assert_eq!(
        rows(&instant(&e, "max_over_time(g[1m])", 60).await.unwrap())[0].0,
        r#"{job="api"}"#
    );
}

#[tokio::test]
async fn dropping_the_name_can_collide_label_sets() {
    let e = engine(&[
        (r#"a{x="1"}"#, &[(0, 1.0), (10, 2.0)]),
        (r#"b{x="1"}"#, &[(0, 1.0), (10, 3.0)]),
    ]);
    let err = instant(&e, r#"rate({__name__=~"a|b"}[1m])"#, 10).await.unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    // last_over_time keeps names, so no collision.
    assert_eq!(
        rows(
            &instant(&e, r#"last_over_time({__name__=~"a|b"}[1m])"#, 10)
                .await
                .unwrap()
        )
        .len(),
        2
    );
}

#[tokio::test]
async fn collisions_are_errors_for_range_functions_but_merge_for_instant_functions() {
    // `old` stops at 10s, `new` starts at 400s: beyond the 5m lookback, so no step sees both.
    let e = engine(&[
        (r#"old{x="1"}"#, &[(0, 1.0), (10, 2.0)]),
        (r#"new{x="1"}"#, &[(400, 3.0), (410, 4.0)]),
    ]);
    let q = |f: &str| format!(r#"{f}({{__name__=~"old|new"}})"#);
    // Prometheus 3 rejects any repeated label set among a range function's results...
    let err = e
        .range(r#"count_over_time({__name__=~"old|new"}[2m])"#, 0, 480_000, 120_000)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    let err = e.range(&q("-"), 0, 480_000, 120_000).await.unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
    // ...but merges instant-vector function results that never meet at a step.
    let v = e.range(&q("abs"), 0, 480_000, 120_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![(
            r#"{x="1"}"#.to_string(),
            vec![(0, 1.0), (120, 2.0), (240, 2.0), (480, 4.0)]
        )]
    );
}

fn http() -> Engine {
    engine(&[
        (r#"http{job="api",instance="a",code="200"}"#, &[(10, 1.0)]),
        (r#"http{job="api",instance="b",code="200"}"#, &[(10, 2.0)]),
        (r#"http{job="api",instance="a",code="500"}"#, &[(10, 3.0)]),
        (r#"http{job="web",instance="c",code="200"}"#, &[(10, 4.0)]),
        (r#"up{job="api"}"#, &[(55, 1.0)]),
        (r#"x{a="1"}"#, &[(10, -2.6)]),
    ])
}

#[tokio::test]
async fn math_functions_drop_the_name() {
    let e = http();
    assert_eq!(
        rows(&instant(&e, "abs(x)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, 2.6)]
    );
    assert_eq!(
        rows(&instant(&e, "ceil(x)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, -2.0)]
    );
    assert_eq!(
        rows(&instant(&e, "floor(x)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, -3.0)]
    );
    assert_eq!(
        rows(&instant(&e, "round(x)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, -3.0)]
    );
    assert_eq!(
        rows(&instant(&e, "round(x, 0.5)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, -2.5)]
    );
    assert_eq!(
        rows(&instant(&e, "sgn(x)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, -1.0)]
    );
    assert!(rows(&instant(&e, "sqrt(x)", 10).await.unwrap())[0].1.is_nan());
    assert_eq!(
        rows(&instant(&e, "exp(x * 0)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, 1.0)]
    );
    assert_eq!(
        rows(&instant(&e, "ln(abs(x) * 0 + 1)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, 0.0)]
    );
    assert_eq!(
        rows(&instant(&e, "log2(abs(x) * 0 + 8)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, 3.0)]
    );
    assert_eq!(
        rows(&instant(&e, "log10(abs(x) * 0 + 100)", 10).await.unwrap()),
        vec![row(r#"{a="1"}"#, 2.0)]
    );
    let clamp = |q: &'static str| {
        let e = &e;
        async move {
            sorted_rows(&instant(e, q, 10).await.unwrap())
                .into_iter()
                .map(|r| r.1)
                .collect::<Vec<_>>()
        }
    };
    // Sorted by labels: (200,a,api)=1, (200,b,api)=2, (200,c,web)=4, (500,a,api)=3.
    assert_eq!(clamp("clamp(http, 2, 3)").await, vec![2.0, 2.0, 3.0, 3.0]);
    assert_eq!(clamp("clamp_min(http, 3)").await, vec![3.0, 3.0, 4.0, 3.0]);
    assert_eq!(clamp("clamp_max(http, 2)").await, vec![1.0, 2.0, 2.0, 2.0]);
    assert!(clamp("clamp(http, 3, 2)").await.is_empty());
}

#[tokio::test]
async fn vector_scalar_time_and_timestamp() {
    let e = http();
    assert_eq!(rows(&instant(&e, "vector(5)", 10).await.unwrap()), vec![row("{}", 5.0)]);
    assert_eq!(
        instant(&e, "scalar(sum(http))", 10).await.unwrap(),
        Value::Scalar {
            timestamp: 10_000,
            value: 10.0
        }
    );
    match instant(&e, "scalar(http)", 10).await.unwrap() {
        Value::Scalar { value, .. } => assert!(value.is_nan()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rows(&instant(&e, "time() + up", 60).await.unwrap()),
        vec![row(r#"{job="api"}"#, 61.0)]
    );
    // timestamp() of a selector is the sample's own time; of anything else, the step time.
    assert_eq!(
        rows(&instant(&e, "timestamp(up)", 60).await.unwrap()),
        vec![row(r#"{job="api"}"#, 55.0)]
    );
    assert_eq!(
        rows(&instant(&e, "timestamp((up))", 60).await.unwrap()),
        vec![row(r#"{job="api"}"#, 55.0)]
    );
    assert_eq!(
        rows(&instant(&e, "timestamp(up * 1)", 60).await.unwrap()),
        vec![row(r#"{job="api"}"#, 60.0)]
    );
}

#[tokio::test]
async fn absent_and_sort() {
    let e = http();
    assert_eq!(
        rows(&instant(&e, r#"absent(nope{job="x",i=~".*"})"#, 10).await.unwrap()),
        vec![row(r#"{job="x"}"#, 1.0)]
    );
    assert!(rows(&instant(&e, "absent(http)", 10).await.unwrap()).is_empty());
    assert_eq!(
        rows(&instant(&e, "absent(sum(nope))", 10).await.unwrap()),
        vec![row("{}", 1.0)]
    );
    let values = |v: Value| rows(&v).into_iter().map(|r| r.1).collect::<Vec<_>>();
    assert_eq!(
        values(instant(&e, "sort(http)", 10).await.unwrap()),
        vec![1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(
        values(instant(&e, "sort_desc(http)", 10).await.unwrap()),
        vec![4.0, 3.0, 2.0, 1.0]
    );
    // sort keeps the metric name.
    assert!(
        rows(&instant(&e, "sort(http)", 10).await.unwrap())[0]
            .0
            .starts_with("http{")
    );
}

#[tokio::test]
async fn label_replace_and_join() {
    let e = http();
    let v = instant(&e, r#"label_replace(up, "service", "svc-$1", "job", "(.+)")"#, 60)
        .await
        .unwrap();
    assert_eq!(rows(&v), vec![row(r#"up{job="api",service="svc-api"}"#, 1.0)]);
    let v = instant(&e, r#"label_join(up, "both", "/", "job", "job")"#, 60)
        .await
        .unwrap();
    assert_eq!(rows(&v), vec![row(r#"up{job="api",both="api/api"}"#, 1.0)]);
    let err = instant(&e, r#"label_replace(http, "instance", "same", "instance", ".*")"#, 10)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
}

#[tokio::test]
async fn histogram_quantile_over_classic_buckets() {
    let e = engine(&[
        (r#"lat_bucket{job="api",le="0.1"}"#, &[(0, 50.0)]),
        (r#"lat_bucket{job="api",le="0.5"}"#, &[(0, 80.0)]),
        (r#"lat_bucket{job="api",le="1"}"#, &[(0, 100.0)]),
        (r#"lat_bucket{job="api",le="+Inf"}"#, &[(0, 100.0)]),
        // Not monotonic: le=0.5 dips below le=0.1 and is raised to 80.
        (r#"lat_bucket{job="web",le="0.1"}"#, &[(0, 80.0)]),
        (r#"lat_bucket{job="web",le="0.5"}"#, &[(0, 70.0)]),
        (r#"lat_bucket{job="web",le="1"}"#, &[(0, 100.0)]),
        (r#"lat_bucket{job="web",le="+Inf"}"#, &[(0, 100.0)]),
    ]);
    // api: rank 90 in (0.5, 1]: 0.5 + 0.5 * 10/20. web: same after the monotonicity fix.
    let v = instant(&e, "histogram_quantile(0.9, lat_bucket)", 0).await.unwrap();
    assert_eq!(
        sorted_rows(&v),
        vec![row(r#"{job="api"}"#, 0.75), row(r#"{job="web"}"#, 0.75)]
    );
    // Summed buckets: 130, 150, 200, 200; rank 100 <= 130 lands in the first bucket, which
    // interpolates from zero: 0.1 * 100/130.
    let v = instant(&e, "histogram_quantile(0.5, sum by (le) (lat_bucket))", 0)
        .await
        .unwrap();
    assert_rows_close(&rows(&v), &[row("{}", 0.1 * 100.0 / 130.0)]);
}

/// Enough series to take the parallel path of range functions: per-series results, their order
/// and duplicate detection must match the one-thread path exactly.
#[tokio::test]
async fn range_functions_over_many_series_match_the_sequential_answer() {
    use tributary_storage::types::{Labels, Sample, Series};
    let n = 5000;
    let series: Vec<Series> = (0..n)
        .map(|i| {
            // Counter rising by `i % 7 + 1` every 10 s: rate over a fully covered 1m window is that / 10.
            let labels = Labels::from_pairs(&[
                ("__name__", "req_total"),
                ("g", &(i % 3).to_string()),
                ("i", &i.to_string()),
            ]);
            let samples = (0..=60)
                .map(|t| Sample::new(t * 10_000, (t * (i % 7 + 1)) as f64))
                .collect();
            Series::new(labels, samples)
        })
        .collect();
    let e = Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default());
    let per_series = e.instant("rate(req_total[1m])", 600_000).await.unwrap();
    let got = rows(&per_series);
    assert_eq!(got.len(), n as usize);
    for (labels, value) in &got {
        let i: i64 = labels
            .split("i=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"}")
            .parse()
            .unwrap();
        assert_close(*value, (i % 7 + 1) as f64 / 10.0);
    }
    // Results come in label order (the order the engine fetched), whatever the thread count.
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, sorted);
    let sums = e.instant("sum by (g) (rate(req_total[1m]))", 600_000).await.unwrap();
    let want: Vec<(String, f64)> = (0..3)
        .map(|g| {
            let total: i64 = (0..n).filter(|i| i % 3 == g).map(|i| i % 7 + 1).sum();
            (format!("{{g=\"{g}\"}}"), total as f64 / 10.0)
        })
        .collect();
    assert_rows_close(&sorted_rows(&sums), &want);
    // Two series left with one label set after dropping their different names: still an error.
    let twins: Vec<Series> = (0..3000)
        .flat_map(|i| {
            ["a_total", "b_total"].map(|name| {
                let labels = Labels::from_pairs(&[("__name__", name), ("i", &i.to_string())]);
                Series::new(labels, vec![Sample::new(0, 0.0), Sample::new(10_000, 1.0)])
            })
        })
        .collect();
    let e = Engine::new(Arc::new(VecSource::new(twins)), QueryConfig::default());
    let err = e
        .instant(r#"rate({__name__=~".+_total"}[1m])"#, 10_000)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
}
