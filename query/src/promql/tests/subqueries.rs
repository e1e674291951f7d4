//! Subqueries: inner steps aligned to multiples of the step inside left-open windows, the default
//! step, `offset`, `@`, nesting, and their use as range-function arguments.

use std::time::Duration;

use super::*;

/// `g` equals the time in seconds, sampled every 10s from 0 to 120.
fn line() -> Engine {
    let samples: Vec<(i64, f64)> = (0..=12).map(|i| (i * 10, (i * 10) as f64)).collect();
    let fixtures: Vec<(&str, &[(i64, f64)])> = vec![(r#"g{job="a"}"#, samples.as_slice())];
    engine(&fixtures)
}

async fn one(e: &Engine, q: &str, t: i64) -> f64 {
    let r = rows(&instant(e, q, t).await.unwrap());
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0].1
}

#[tokio::test]
async fn inner_steps_are_aligned_multiples_inside_the_window() {
    let e = line();
    // Window (60, 120]: steps 80, 100, 120 (60 itself is excluded: left-open).
    assert_eq!(one(&e, "count_over_time(g[1m:20s])", 120).await, 3.0);
    assert_eq!(one(&e, "min_over_time(g[1m:20s])", 120).await, 80.0);
    // The subquery as the answer: its points, stamped with the inner step times, name kept.
    assert_eq!(
        matrix(&instant(&e, "g[1m:20s]", 120).await.unwrap()),
        vec![(
            r#"g{job="a"}"#.to_string(),
            vec![(80, 80.0), (100, 100.0), (120, 120.0)]
        )]
    );
    // Off the grid: (30.5, 90.5] holds 40, 60, 80, each the latest sample then.
    let v = e.instant("g[1m:20s]", 90_500).await.unwrap();
    assert_eq!(matrix(&v)[0].1, vec![(40, 40.0), (60, 60.0), (80, 80.0)]);
}

#[tokio::test]
async fn a_range_query_shares_one_inner_evaluation() {
    let e = line();
    let v = e
        .range("count_over_time(g[1m:20s])", 60_000, 120_000, 30_000)
        .await
        .unwrap();
    assert_eq!(
        matrix(&v),
        vec![(r#"{job="a"}"#.to_string(), vec![(60, 3.0), (90, 3.0), (120, 3.0)])]
    );
    let v = e
        .range("max_over_time(g[1m:20s])", 60_000, 120_000, 30_000)
        .await
        .unwrap();
    assert_eq!(matrix(&v)[0].1, vec![(60, 60.0), (90, 80.0), (120, 120.0)]);
}

#[tokio::test]
async fn the_default_step_is_configurable() {
    // Default 1m: (0, 120] holds 60 and 120.
    assert_eq!(one(&line(), "count_over_time(g[2m:])", 120).await, 2.0);
    let samples: Vec<(i64, f64)> = (0..=12).map(|i| (i * 10, (i * 10) as f64)).collect();
    let e = engine_with(
        &[("g", samples.as_slice())],
        QueryConfig {
            default_subquery_step: Duration::from_secs(30),
            ..Default::default()
        },
    );
    assert_eq!(one(&e, "count_over_time(g[2m:])", 120).await, 4.0);
}

#[tokio::test]
async fn offset_and_at_move_the_window() {
    let e = line();
    // offset 30s: window (30, 90], steps 40, 60, 80.
    assert_eq!(one(&e, "max_over_time(g[1m:20s] offset 30s)", 120).await, 80.0);
    // @ 60 pins every step of a range query to the window (0, 60].
    let v = e
        .range("max_over_time(g[1m:20s] @ 60)", 60_000, 120_000, 30_000)
        .await
        .unwrap();
    assert_eq!(matrix(&v)[0].1, vec![(60, 60.0), (90, 60.0), (120, 60.0)]);
    // @ inside: the inner selector is pinned, so every inner step sees g at 50.
    assert_eq!(one(&e, "max_over_time((g @ 50)[1m:20s])", 120).await, 50.0);
}

#[tokio::test]
async fn functions_of_subqueries() {
    let e = line();
    // Inner steps 70..120 every 10s; (60, 120] holds all six: +50 over 50s, extrapolated by
    // 10s to the window start (under 1.1 intervals): 60 over 60s.
    assert_close(one(&e, "rate(g[1m:10s])", 120).await, 1.0);
    assert_close(one(&e, "deriv(g[1m:10s])", 120).await, 1.0);
    // Of a label-less vector; subqueries of scalars are parse errors, as in Prometheus.
    assert_eq!(one(&e, "max_over_time(vector(time())[1m:20s])", 120).await, 120.0);
    assert_eq!(
        instant(&e, "max_over_time(time()[1m:20s])", 120)
            .await
            .unwrap_err()
            .kind(),
        crate::error::ErrorKind::BadData
    );
    // Nested: max over (90, 120]'s... inner windows (70, 90] and (100, 120] give 90 and 120.
    assert_eq!(
        one(&e, "max_over_time(max_over_time(g[20s:10s])[1m:30s])", 120).await,
        120.0
    );
    // A window holding no step evaluates nothing.
    assert!(rows(&instant(&e, "count_over_time(g[10s:1m])", 90).await.unwrap()).is_empty());
}

#[tokio::test]
async fn range_queries_cannot_return_a_subquery() {
    let e = line();
    let err = e.range("g[1m:20s]", 0, 60_000, 30_000).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid expression type "range vector" for range query, must be Scalar or instant Vector"#
    );
}

/// `query.max_samples` is checked while a subquery's inner selector and range function make
/// their points, so `m[30d:1s]`-style subqueries stop at the bound instead of first holding
/// every point (Prometheus's per-step accounting).
#[tokio::test]
async fn points_are_counted_as_subqueries_make_them() {
    let samples: Vec<(i64, f64)> = (0..=360).map(|i| (i * 10, i as f64)).collect();
    let names: Vec<String> = (0..4).map(|i| format!(r#"g{{i="{i}"}}"#)).collect();
    let fixtures: Vec<(&str, &[(i64, f64)])> = names.iter().map(|n| (n.as_str(), samples.as_slice())).collect();
    let e = engine_with(
        &fixtures,
        QueryConfig {
            max_samples: 5_000,
            ..Default::default()
        },
    );
    for q in ["count_over_time(g[1h:1s])", "count_over_time(rate(g[1m])[1h:1s])"] {
        let err = instant(&e, q, 3600).await.unwrap_err();
        assert!(matches!(err, crate::error::Error::TooManySamples), "{q}: {err}");
    }
    assert_eq!(one(&e, r#"count_over_time(g{i="0"}[10m:1s])"#, 3600).await, 600.0);
}

/// A 1-second subquery over 30 days of series with an hour of data each: the steps with nothing
/// in lookback are skipped, not visited one by one (300 series × 2.6 million steps used to take
/// longer than the 5 s given here), and the answer counts exactly the steps that see a sample.
#[tokio::test]
async fn a_sparse_selector_under_a_long_fine_subquery_skips_its_empty_steps() {
    const T: i64 = 40 * 86_400;
    let samples: Vec<(i64, f64)> = (1..=240).map(|k| (T - 3600 + k * 15, 1.0)).collect();
    let names: Vec<String> = (0..300).map(|i| format!(r#"m{{i="{i}"}}"#)).collect();
    let fixtures: Vec<(&str, &[(i64, f64)])> = names.iter().map(|n| (n.as_str(), samples.as_slice())).collect();
    let e = engine(&fixtures);
    let q = "count_over_time(m[30d:1s])";
    let r = e
        .instant_query(q, T * 1000, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    let Value::Vector(v) = r.value else {
        panic!("{:?}", r.value)
    };
    assert_eq!(v.len(), 300);
    // Steps from the first sample (T - 3585 s) to T, one a second: each sees a sample.
    assert!(v.iter().all(|s| s.value == 3586.0), "{:?}", v[0]);
    // With an offset, the same steps shifted; past the data, none.
    assert_eq!(
        one(&e, r#"count_over_time(m{i="0"}[30d:1s] offset 1h)"#, T + 3600).await,
        3586.0
    );
    assert!(
        rows(
            &instant(&e, r#"count_over_time(m{i="0"}[1d:1s] offset 2d)"#, T)
                .await
                .unwrap()
        )
        .is_empty()
    );
}
