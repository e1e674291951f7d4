//! Aggregations and binary operators.

use super::*;

/// Selector order (sorted by labels): (200,a,api)=1, (200,b,api)=2, (200,c,web)=4, (500,a,api)=3.
fn fixtures() -> Engine {
    engine(&[
        (r#"http{job="api",instance="a",code="200"}"#, &[(10, 1.0)]),
        (r#"http{job="api",instance="b",code="200"}"#, &[(10, 2.0)]),
        (r#"http{job="api",instance="a",code="500"}"#, &[(10, 3.0)]),
        (r#"http{job="web",instance="c",code="200"}"#, &[(10, 4.0)]),
        (r#"a{x="1"}"#, &[(10, 1.0)]),
        (r#"a{x="2"}"#, &[(10, 2.0)]),
        (r#"b{x="2"}"#, &[(10, 20.0)]),
        (r#"b{x="3"}"#, &[(10, 30.0)]),
        (r#"c{x="2"}"#, &[(10, 5.0)]),
        (r#"req{job="api",instance="a"}"#, &[(10, 10.0)]),
        (r#"req{job="api",instance="b"}"#, &[(10, 20.0)]),
        (r#"err{job="api",instance="a"}"#, &[(10, 1.0)]),
        (r#"team{job="api",team="x"}"#, &[(10, 1.0)]),
        (r#"team{job="web",team="y"}"#, &[(10, 1.0)]),
        (r#"cv{i="1"}"#, &[(10, 7.0)]),
        (r#"cv{i="2"}"#, &[(10, 7.0)]),
        (r#"cv{i="3"}"#, &[(10, 0.5)]),
    ])
}

async fn q(e: &Engine, query: &str) -> Vec<(String, f64)> {
    rows(&instant(e, query, 10).await.unwrap())
}

async fn q_err(e: &Engine, query: &str) -> String {
    instant(e, query, 10).await.unwrap_err().to_string()
}

#[tokio::test]
async fn sum_avg_count_min_max_group() {
    let e = fixtures();
    assert_eq!(q(&e, "sum(http)").await, vec![row("{}", 10.0)]);
    assert_eq!(
        q(&e, "sum by (job) (http)").await,
        vec![row(r#"{job="api"}"#, 6.0), row(r#"{job="web"}"#, 4.0)]
    );
    assert_eq!(
        q(&e, "sum without (instance, code) (http)").await,
        vec![row(r#"{job="api"}"#, 6.0), row(r#"{job="web"}"#, 4.0)]
    );
    assert_eq!(q(&e, "sum by (__name__) (http)").await, vec![row("http", 10.0)]);
    assert_eq!(
        q(&e, "avg by (job) (http)").await,
        vec![row(r#"{job="api"}"#, 2.0), row(r#"{job="web"}"#, 4.0)]
    );
    assert_eq!(
        q(&e, "count by (code) (http)").await,
        vec![row(r#"{code="200"}"#, 3.0), row(r#"{code="500"}"#, 1.0)]
    );
    assert_eq!(q(&e, "min(http)").await, vec![row("{}", 1.0)]);
    assert_eq!(q(&e, "max(http)").await, vec![row("{}", 4.0)]);
    assert_eq!(
        q(&e, "group by (job) (http)").await,
        vec![row(r#"{job="api"}"#, 1.0), row(r#"{job="web"}"#, 1.0)]
    );
    assert!(q(&e, "sum(nothing)").await.is_empty());
}

#[tokio::test]
async fn stddev_stdvar_and_quantile() {
    let e = fixtures();
    // 1, 2, 4, 3: mean 2.5, squared deviations 2.25 + 0.25 + 2.25 + 0.25 = 5, / 4 = 1.25.
    assert_rows_close(&q(&e, "stdvar(http)").await, &[row("{}", 1.25)]);
    assert_rows_close(&q(&e, "stddev(http)").await, &[row("{}", 1.25f64.sqrt())]);
    assert_eq!(q(&e, "quantile(0.5, http)").await, vec![row("{}", 2.5)]);
    // api: 1, 2, 3 at rank 1.8 -> 2 * 0.2 + 3 * 0.8.
    assert_rows_close(
        &q(&e, "quantile by (job) (0.9, http)").await,
        &[row(r#"{job="api"}"#, 2.8), row(r#"{job="web"}"#, 4.0)],
    );
}

#[tokio::test]
async fn topk_bottomk_keep_labels_and_order() {
    let e = fixtures();
    assert_eq!(
        q(&e, "topk(2, http)").await,
        vec![
            row(r#"http{job="web",instance="c",code="200"}"#, 4.0),
            row(r#"http{job="api",instance="a",code="500"}"#, 3.0)
        ]
    );
    assert_eq!(
        q(&e, "bottomk by (job) (1, http)").await,
        vec![
            row(r#"http{job="api",instance="a",code="200"}"#, 1.0),
            row(r#"http{job="web",instance="c",code="200"}"#, 4.0)
        ]
    );
    assert!(q(&e, "topk(0, http)").await.is_empty());
    assert_eq!(q(&e, "topk(100, http)").await.len(), 4);
    // Prometheus 3.6 and later (before: "Scalar value NaN overflows int64").
    assert_eq!(q_err(&e, "topk(scalar(nothing), http)").await, "Parameter value is NaN");
}

/// Prometheus's `aggregators.test` cases for huge, fractional, infinite and NaN `k`: a `k` beyond
/// the number of series keeps them all, never an empty answer.
#[tokio::test]
async fn topk_bottomk_parameters_behave_as_in_prometheus() {
    let e = fixtures();
    let all_desc = q(&e, "sort_desc(http)").await;
    for k in ["9999999999", "1e12", "4", "1e18"] {
        assert_eq!(q(&e, &format!("topk({k}, http)")).await, all_desc, "topk({k})");
    }
    let all_asc = q(&e, "sort(http)").await;
    assert_eq!(q(&e, "bottomk(9999999999, http)").await, all_asc);
    assert_eq!(q(&e, "bottomk(1e12, http)").await, all_asc);
    // Truncated toward zero, as Go's int64 conversion does.
    assert_eq!(q(&e, "topk(2.9, http)").await, all_desc[..2].to_vec());
    for k in ["0.5", "0", "-1", "-Inf", "-1e300"] {
        assert!(q(&e, &format!("topk({k}, http)")).await.is_empty(), "topk({k})");
    }
    assert_eq!(q_err(&e, "topk(NaN, non_existent)").await, "Parameter value is NaN");
    assert_eq!(q_err(&e, "bottomk(NaN, http)").await, "Parameter value is NaN");
    assert_eq!(q_err(&e, "topk(Inf, http)").await, "Scalar value +Inf overflows int64");
    assert_eq!(
        q_err(&e, "topk(1e19, http)").await,
        "Scalar value 1e+19 overflows int64"
    );
    assert_eq!(
        q_err(&e, "topk(9223372036854774784, http)").await,
        "Scalar value 9.223372036854775e+18 overflows int64"
    );
}

/// Prometheus 3.5 and later evaluate a varying parameter at each step (its bug #15971): `k` and
/// `φ` come from `scalar(param)` step by step, and annotations cover every step's value.
#[tokio::test]
async fn parameters_vary_by_step() {
    let at = |v: [f64; 4]| -> Vec<(i64, f64)> { (0..4).map(|i| (i * 60, v[i as usize])).collect() };
    let (m1, m2, m3, k, phi) = (
        at([1.0; 4]),
        at([2.0; 4]),
        at([4.0; 4]),
        at([1.0, 2.0, 3.0, 0.0]),
        at([0.0, 1.0, 0.5, 0.25]),
    );
    let e = engine(&[
        (r#"m{i="1"}"#, &m1),
        (r#"m{i="2"}"#, &m2),
        (r#"m{i="3"}"#, &m3),
        ("k", &k),
        ("phi", &phi),
    ]);
    let empty = row("{}", 0.0).0;
    assert_eq!(
        range_rows(&e, "count(topk(scalar(k), m))").await,
        vec![(empty.clone(), vec![(0, 1.0), (60, 2.0), (120, 3.0)])]
    );
    assert_eq!(
        range_rows(&e, "count(bottomk(scalar(k), m))").await,
        vec![(empty.clone(), vec![(0, 1.0), (60, 2.0), (120, 3.0)])]
    );
    assert_eq!(
        range_rows(&e, "quantile(scalar(phi), m)").await,
        vec![(empty, vec![(0, 1.0), (60, 4.0), (120, 2.0), (180, 1.5)])]
    );
    let annotations = |query: &'static str| e.range_query(query, 0, 180_000, 60_000, None);
    assert!(
        annotations("quantile(scalar(phi), m)")
            .await
            .unwrap()
            .annotations
            .warnings
            .is_empty()
    );
    let warned = annotations("quantile(scalar(k) - 1.5, m)")
        .await
        .unwrap()
        .annotations
        .warnings;
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned[0].contains("got 1.5") && warned[1].contains("got -1.5"),
        "{warned:?}"
    );
    let warned = annotations("quantile(NaN, m)").await.unwrap().annotations.warnings;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("got NaN"), "{warned:?}");
}

async fn range_rows(e: &Engine, query: &str) -> Vec<(String, Vec<(i64, f64)>)> {
    matrix(&e.range(query, 0, 180_000, 60_000).await.unwrap())
}

/// `quantile(NaN, x)` is NaN for every group, with Prometheus's warning.
#[tokio::test]
async fn quantile_of_nan_is_nan() {
    let e = fixtures();
    let v = q(&e, "quantile by (job) (NaN, http)").await;
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|(_, x)| x.is_nan()), "{v:?}");
    assert_eq!(q(&e, "quantile(Inf, http)").await, vec![row("{}", f64::INFINITY)]);
    assert_eq!(q(&e, "quantile(-Inf, http)").await, vec![row("{}", f64::NEG_INFINITY)]);
}

#[tokio::test]
async fn count_values_labels_by_value() {
    let e = fixtures();
    assert_eq!(
        sorted_rows(&instant(&e, r#"count_values("v", cv)"#, 10).await.unwrap()),
        vec![row(r#"{v="0.5"}"#, 1.0), row(r#"{v="7"}"#, 2.0)]
    );
    assert_eq!(
        sorted_rows(&instant(&e, r#"count_values without (i) ("v", cv)"#, 10).await.unwrap()),
        vec![row(r#"{v="0.5"}"#, 1.0), row(r#"{v="7"}"#, 2.0)]
    );
}

/// `count_values` names NaN, infinities and huge values as Go's `FormatFloat(v, 'f', -1, 64)`.
#[tokio::test]
async fn count_values_of_special_values() {
    let e = engine(&[
        (r#"s{i="1"}"#, &[(10, f64::NAN)]),
        (r#"s{i="2"}"#, &[(10, f64::INFINITY)]),
        (r#"s{i="3"}"#, &[(10, f64::NEG_INFINITY)]),
        (r#"s{i="4"}"#, &[(10, 1e21)]),
        (r#"s{i="5"}"#, &[(10, 1e-7)]),
    ]);
    assert_eq!(
        sorted_rows(&instant(&e, r#"count_values("v", s)"#, 10).await.unwrap()),
        vec![
            row(r#"{v="+Inf"}"#, 1.0),
            row(r#"{v="-Inf"}"#, 1.0),
            row(r#"{v="0.0000001"}"#, 1.0),
            row(r#"{v="1000000000000000000000"}"#, 1.0),
            row(r#"{v="NaN"}"#, 1.0),
        ]
    );
}

#[tokio::test]
async fn vector_scalar_arithmetic_and_comparisons() {
    let e = fixtures();
    let values = |r: Vec<(String, f64)>| r.into_iter().map(|r| r.1).collect::<Vec<_>>();
    let doubled = q(&e, "http * 2").await;
    assert_eq!(values(doubled.clone()), vec![2.0, 4.0, 8.0, 6.0]);
    assert!(
        doubled.iter().all(|r| r.0.starts_with('{')),
        "arithmetic drops __name__"
    );
    assert_eq!(
        q(&e, "http > 2").await,
        vec![
            row(r#"http{job="web",instance="c",code="200"}"#, 4.0),
            row(r#"http{job="api",instance="a",code="500"}"#, 3.0)
        ]
    );
    let bools = q(&e, "http > bool 2").await;
    assert_eq!(values(bools.clone()), vec![0.0, 0.0, 1.0, 1.0]);
    assert!(bools.iter().all(|r| r.0.starts_with('{')), "bool drops __name__");
    // The scalar on the left still filters the vector, keeping the vector's values.
    assert_eq!(values(q(&e, "2 < http").await), vec![4.0, 3.0]);
    assert_eq!(values(q(&e, "-http").await), vec![-1.0, -2.0, -4.0, -3.0]);
    assert_eq!(values(q(&e, "2 ^ a").await), vec![2.0, 4.0]);
    assert_eq!(values(q(&e, "b % 7").await), vec![6.0, 2.0]);
    assert_eq!(values(q(&e, "a atan2 0").await), vec![std::f64::consts::FRAC_PI_2; 2]);
    assert_eq!(
        instant(&e, "1 < bool 2", 10).await.unwrap(),
        Value::Scalar {
            timestamp: 10_000,
            value: 1.0
        }
    );
    assert_eq!(
        instant(&e, "-(2 * 3) + 10 / 4", 10).await.unwrap(),
        Value::Scalar {
            timestamp: 10_000,
            value: -3.5
        }
    );
}

#[tokio::test]
async fn one_to_one_matching() {
    let e = fixtures();
    assert_eq!(q(&e, "err / req").await, vec![row(r#"{job="api",instance="a"}"#, 0.1)]);
    assert_eq!(
        q(&e, r#"http{code="500"} + ignoring(code) http{code="200"}"#).await,
        vec![row(r#"{job="api",instance="a"}"#, 4.0)]
    );
    assert_eq!(
        q(&e, "err + on(instance) req").await,
        vec![row(r#"{instance="a"}"#, 11.0)]
    );
    let all = q(&e, "http >= http").await;
    assert_eq!(all.len(), 4);
    assert!(
        all.iter().all(|r| r.0.starts_with("http{")),
        "comparisons keep the left labels"
    );
    assert_eq!(
        q(&e, "a - a").await,
        vec![row(r#"{x="1"}"#, 0.0), row(r#"{x="2"}"#, 0.0)]
    );
}

#[tokio::test]
async fn group_left_and_group_right_copy_labels_from_the_one_side() {
    let e = fixtures();
    let want = vec![
        row(r#"{job="api",instance="a",code="200",team="x"}"#, 1.0),
        row(r#"{job="api",instance="b",code="200",team="x"}"#, 2.0),
        row(r#"{job="web",instance="c",code="200",team="y"}"#, 4.0),
        row(r#"{job="api",instance="a",code="500",team="x"}"#, 3.0),
    ];
    assert_eq!(q(&e, "http * on(job) group_left(team) team").await, want);
    assert_eq!(q(&e, "team * on(job) group_right(team) http").await, want);
    // Without the label list nothing is copied.
    assert_eq!(
        q(&e, "http * on(job) group_left team").await[0].0,
        r#"{code="200", instance="a", job="api"}"#
    );
}

#[tokio::test]
async fn set_operators() {
    let e = fixtures();
    assert_eq!(q(&e, "a and b").await, vec![row(r#"a{x="2"}"#, 2.0)]);
    assert_eq!(
        q(&e, "a or b").await,
        vec![
            row(r#"a{x="1"}"#, 1.0),
            row(r#"a{x="2"}"#, 2.0),
            row(r#"b{x="3"}"#, 30.0)
        ]
    );
    assert_eq!(q(&e, "a unless b").await, vec![row(r#"a{x="1"}"#, 1.0)]);
    assert_eq!(q(&e, "a and on() b").await.len(), 2);
    assert_eq!(q(&e, "a unless on(x) c").await, vec![row(r#"a{x="1"}"#, 1.0)]);
    assert_eq!(q(&e, "nothing or a").await.len(), 2);
}

#[tokio::test]
async fn matching_errors_follow_prometheus() {
    let e = fixtures();
    let err = q_err(&e, "err / on(job) req").await;
    assert!(
        err.starts_with(
            r#"found duplicate series for the match group {job="api"} on the right hand-side of the operation:"#
        ),
        "{err}"
    );
    assert!(
        err.ends_with("many-to-many matching not allowed: matching labels must be unique on one side"),
        "{err}"
    );
    assert!(
        q_err(&e, "req / on(job) group_right err")
            .await
            .contains("on the left hand-side")
    );
    assert_eq!(
        q_err(&e, "http + on(job) team").await,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    assert_eq!(
        q_err(&e, r#"{__name__=~"a|b"} * on(x) group_left c"#).await,
        "multiple matches for labels: grouping labels must ensure unique matches"
    );
    assert_eq!(
        q_err(&e, r#"{__name__=~"a|b"} * 2"#).await,
        "vector cannot contain metrics with the same labelset"
    );
    // Comparisons keep __name__, so the same selector does not collide there.
    assert_eq!(q(&e, r#"{__name__=~"a|b"} > 0"#).await.len(), 4);
}

#[tokio::test]
async fn binary_operators_over_a_range_query() {
    let e = engine(&[(r#"a{x="1"}"#, &[(0, 1.0), (60, 2.0)]), (r#"b{x="1"}"#, &[(30, 10.0)])]);
    // b only exists from 30s: the sum exists at 30 and 60 only.
    let v = e.range("a + b", 0, 60_000, 30_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![(r#"{x="1"}"#.to_string(), vec![(30, 11.0), (60, 12.0)])]
    );
    let v = e.range("a or b", 0, 60_000, 30_000).await.unwrap();
    assert_eq!(
        matrix(&v),
        vec![(r#"a{x="1"}"#.to_string(), vec![(0, 1.0), (30, 1.0), (60, 2.0)])]
    );
    let v = e.range("sum(a) + sum(b)", 0, 60_000, 30_000).await.unwrap();
    assert_eq!(matrix(&v), vec![("{}".to_string(), vec![(30, 11.0), (60, 12.0)])]);
}
