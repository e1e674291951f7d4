//! The functions and syntax Prometheus 3 added (several behind its
//! `promql-experimental-functions` and `promql-duration-expr` flags, accepted here by default).
//! Cases are ported from Prometheus's `promql/promqltest/testdata` files (named in each test);
//! series holding native histograms there are left out, and counts over them adjusted.

use super::*;
use crate::error::ErrorKind;

/// `count` samples of `start + i * inc` at `i * interval_ms` (the `load` notation `start+incxN`
/// is `count = N + 1`).
fn line(start: f64, inc: f64, count: usize, interval_ms: i64) -> Vec<Sample> {
    (0..count)
        .map(|i| Sample::new(i as i64 * interval_ms, start + inc * i as f64))
        .collect()
}

/// `values` at `i * interval_ms`, `None` leaving a gap.
fn at_interval(values: &[Option<f64>], interval_ms: i64) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * interval_ms, v)))
        .collect()
}

fn engine_of(series: Vec<(&str, Vec<Sample>)>) -> Engine {
    let series = series
        .into_iter()
        .map(|(labels, samples)| Series::new(parse_labels(labels), samples))
        .collect();
    Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default())
}

async fn one(e: &Engine, q: &str, t_ms: i64) -> f64 {
    let r = rows(&e.instant(q, t_ms).await.unwrap());
    assert_eq!(r.len(), 1, "{q}: {r:?}");
    r[0].1
}

/// A range query's one series, as its values.
async fn values(e: &Engine, q: &str, start_s: i64, end_s: i64, step_s: i64) -> Vec<f64> {
    let v = e.range(q, start_s * 1000, end_s * 1000, step_s * 1000).await.unwrap();
    let m = matrix(&v);
    assert_eq!(m.len(), 1, "{q}: {m:?}");
    m[0].1.iter().map(|p| p.1).collect()
}

/// A range query's one series, as `(seconds, value)` pairs (steps without a value left out).
async fn points(e: &Engine, q: &str, start_s: i64, end_s: i64, step_s: i64) -> Vec<(i64, f64)> {
    let v = e.range(q, start_s * 1000, end_s * 1000, step_s * 1000).await.unwrap();
    let m = matrix(&v);
    assert!(m.len() <= 1, "{q}: {m:?}");
    m.into_iter().next().map(|s| s.1).unwrap_or_default()
}

/// functions.test, "Tests for mad_over_time" (load 10s).
#[tokio::test]
async fn mad_over_time() {
    let nan = f64::NAN;
    let e = engine_of(vec![
        ("metric", at_interval(&[4., 6., 2., 1., 999., 1., 2.].map(Some), 10_000)),
        ("metric_odd", at_interval(&[1., 2., 3., 4., 5.].map(Some), 10_000)),
        ("metric_equal", at_interval(&[7., 7., 7., 7., 7.].map(Some), 10_000)),
        ("metric_single", at_interval(&[Some(5.)], 10_000)),
        ("metric_nan", at_interval(&[1., 2., nan, 4.].map(Some), 10_000)),
    ]);
    assert_eq!(one(&e, "mad_over_time(metric[70s])", 70_000).await, 1.0);
    assert_eq!(one(&e, "mad_over_time(metric_odd[50s])", 40_000).await, 1.0);
    assert_eq!(one(&e, "mad_over_time(metric_equal[50s])", 40_000).await, 0.0);
    assert_eq!(one(&e, "mad_over_time(metric_single[10s])", 0).await, 0.0);
    assert!(one(&e, "mad_over_time(metric_nan[40s])", 30_000).await.is_nan());
    // The name goes, as for every aggregation over time but first/last.
    let r = rows(&e.instant("mad_over_time(metric_odd[50s])", 40_000).await.unwrap());
    assert_eq!(r[0].0, "{}");
}

/// functions.test, "Tests for ts_of_max_over_time and ts_of_min_over_time", "ts_of_last" and
/// "ts_of_first" (load 10s53ms: an odd interval, to catch rounding).
#[tokio::test]
async fn timestamps_of_extremes_first_and_last() {
    let e = engine_of(vec![(
        "metric",
        at_interval(&[1., 2., 3., 0., 5., 6., 2., 1., 4.].map(Some), 10_053),
    )]);
    assert_eq!(one(&e, "ts_of_min_over_time(metric[90s])", 90_000).await, 30.159);
    assert_eq!(one(&e, "ts_of_max_over_time(metric[90s])", 90_000).await, 50.265);

    let e = engine_of(vec![(
        "metric",
        at_interval(&[Some(1.), Some(2.), Some(3.), None, None], 10_053),
    )]);
    assert_eq!(one(&e, "ts_of_last_over_time(metric[90s])", 90_000).await, 20.106);
    assert_eq!(one(&e, "ts_of_last_over_time(metric[90s])", 95_000).await, 20.106);

    let gaps = [None, None, Some(1.), Some(2.), Some(3.), None, None];
    let e = engine_of(vec![("metric", at_interval(&gaps, 10_053))]);
    assert_eq!(one(&e, "ts_of_first_over_time(metric[90s])", 90_000).await, 20.106);
    assert_eq!(one(&e, "ts_of_first_over_time(metric[90s])", 95_000).await, 20.106);
    assert!(rows(&e.instant("ts_of_first_over_time(metric[90s])", 15_000).await.unwrap()).is_empty());
    // Ties go to the last sample holding the extreme.
    let e = engine_of(vec![("tie", at_interval(&[3., 1., 3., 1.].map(Some), 10_000))]);
    assert_eq!(one(&e, "ts_of_max_over_time(tie[1m])", 30_000).await, 20.0);
    assert_eq!(one(&e, "ts_of_min_over_time(tie[1m])", 30_000).await, 30.0);
}

/// functions.test, `first_over_time` next to `last_over_time` (both keep the metric name).
#[tokio::test]
async fn first_over_time_keeps_the_name() {
    let e = engine_of(vec![
        (r#"data{type="numbers"}"#, at_interval(&[2., 0., 3.].map(Some), 30_000)),
        (
            r#"data{type="some_nan"}"#,
            at_interval(&[2., 0., f64::NAN].map(Some), 30_000),
        ),
        (
            r#"data{type="some_nan3"}"#,
            at_interval(&[f64::NAN, 0., 1.].map(Some), 30_000),
        ),
    ]);
    let got = rows(&e.instant("first_over_time(data[2m])", 60_000).await.unwrap());
    assert_eq!(got[0], row(r#"data{type="numbers"}"#, 2.0));
    assert_eq!(got[1], row(r#"data{type="some_nan"}"#, 2.0));
    assert_eq!(got[2].0, row(r#"data{type="some_nan3"}"#, 0.0).0);
    assert!(got[2].1.is_nan());
    // Unlike `offset`, the first sample inside each step's window.
    assert_eq!(
        points(&e, r#"first_over_time(data{type="numbers"}[step()])"#, 30, 60, 30).await,
        vec![(30, 0.0), (60, 3.0)]
    );
}

/// functions.test, "Tests for double_exponential_smoothing" (load 10s; positive and negative
/// trends).
#[tokio::test]
async fn double_exponential_smoothing() {
    let e = engine_of(vec![
        (
            r#"http_requests{group="production",instance="0"}"#,
            line(0., 10., 1001, 10_000),
        ),
        (
            r#"http_requests{group="production",instance="1"}"#,
            line(0., 20., 1001, 10_000),
        ),
        (
            r#"http_requests{group="canary",instance="0"}"#,
            line(0., 30., 1001, 10_000),
        ),
        (
            r#"http_requests{group="canary",instance="1"}"#,
            line(0., 40., 1001, 10_000),
        ),
        (
            r#"falling{group="production",instance="0"}"#,
            line(8000., -10., 1001, 10_000),
        ),
        (
            r#"falling{group="production",instance="1"}"#,
            line(0., -20., 1001, 10_000),
        ),
    ]);
    let got = sorted_rows(
        &e.instant("double_exponential_smoothing(http_requests[1m], 0.01, 0.1)", 8_000_000)
            .await
            .unwrap(),
    );
    let want = [
        row(r#"{group="canary",instance="0"}"#, 24000.0),
        row(r#"{group="canary",instance="1"}"#, 32000.0),
        row(r#"{group="production",instance="0"}"#, 8000.0),
        row(r#"{group="production",instance="1"}"#, 16000.0),
    ];
    assert_rows_close(&got, &want);
    let got = sorted_rows(
        &e.instant("double_exponential_smoothing(falling[1m], 0.01, 0.1)", 8_000_000)
            .await
            .unwrap(),
    );
    let want = [
        row(r#"{group="production",instance="0"}"#, 0.0),
        row(r#"{group="production",instance="1"}"#, -16000.0),
    ];
    assert_rows_close(&got, &want);
    // Factors outside (0, 1) fail the query, as in Prometheus.
    for (q, needle) in [
        (
            "double_exponential_smoothing(falling[1m], 0, 0.1)",
            "invalid smoothing factor",
        ),
        (
            "double_exponential_smoothing(falling[1m], 0.5, 1)",
            "invalid trend factor",
        ),
    ] {
        let err = e.instant(q, 8_000_000).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Execution);
        assert!(err.to_string().contains(needle), "{err}");
    }
    // Prometheus 2's name is gone from Prometheus 3, and from the parser.
    let err = e.instant("holt_winters(falling[1m], 0.5, 0.5)", 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData);
}

/// functions.test, "Tests for step() and range() functions" and "start() and end()".
#[tokio::test]
async fn query_parameters_as_functions() {
    let e = engine_of(vec![("metric", at_interval(&[1., 2., 3., 4., 5.].map(Some), 1000))]);
    assert_eq!(values(&e, "step()", 0, 10, 5).await, vec![5.0; 3]);
    assert_eq!(values(&e, "range()", 10, 50, 10).await, vec![40.0; 5]);
    assert_eq!(values(&e, "vector(range())", 0, 20, 10).await, vec![20.0; 3]);
    assert_eq!(values(&e, "metric * step()", 0, 4, 1).await, vec![1., 2., 3., 4., 5.]);
    assert_eq!(values(&e, "metric + range()", 0, 2, 1).await, vec![3., 4., 5.]);
    assert_eq!(values(&e, "start()", 100, 130, 10).await, vec![100.0; 4]);
    assert_eq!(values(&e, "end()", 100, 140, 10).await, vec![140.0; 5]);
    assert_eq!(values(&e, "(end() + start()) / 2", 0, 30, 10).await, vec![15.0; 4]);
    assert_eq!(values(&e, "end() - range()", 10, 50, 10).await, vec![10.0; 5]);
    // Constants of the query, inside a subquery too.
    assert_eq!(
        values(&e, "max_over_time(vector(step())[1m:1s])", 0, 10, 5).await,
        vec![5.0; 3]
    );
    let scalar = |v: Value| match v {
        Value::Scalar { value, .. } => value,
        other => panic!("{other:?}"),
    };
    for (q, want) in [("step()", 0.0), ("range()", 0.0), ("start()", 100.0), ("end()", 100.0)] {
        assert_eq!(scalar(e.instant(q, 100_000).await.unwrap()), want, "{q}");
    }
    // min_of/max_of of two scalars (Go's math.Min/Max: NaN wins).
    assert_eq!(scalar(e.instant("min_of(3, 2)", 0).await.unwrap()), 2.0);
    assert_eq!(scalar(e.instant("max_of(step(), 7)", 0).await.unwrap()), 7.0);
    assert!(scalar(e.instant("max_of(NaN, 7)", 0).await.unwrap()).is_nan());
}

/// duration_expression.test: arithmetic in ranges, subquery ranges and steps, and offsets.
#[tokio::test]
async fn duration_expressions() {
    // load 5m: three series; changes over the last 30m at 50m.
    let foo = [1., 2., 3., 0., 1., 0., 0., 1., 2., 0.].map(Some);
    let e = engine_of(vec![(r#"http_requests{path="/foo"}"#, at_interval(&foo, 300_000))]);
    for q in [
        "changes(http_requests[30m])",
        "changes(http_requests[26m+4m])",
        "changes(http_requests[30m+0s])",
        "changes(http_requests[60*30])",
        "changes(http_requests[2m*(10+5)])",
        "changes(http_requests[24m+((1.5*2m)+2m)])",
        "changes(http_requests[-5m+35m])",
        "changes(http_requests[1h30m % 1h])",
        "changes(http_requests[30m1s-30m1s % 1m])",
        "changes(http_requests[(9m30s+30s)*3])",
    ] {
        assert_eq!(one(&e, q, 3_000_000).await, 3.0, "{q}");
    }

    // load 10s: metric1_total 0+1x1000.
    let e = engine_of(vec![("metric1_total", line(0., 1., 1001, 10_000))]);
    for (q, t, want) in [
        ("sum_over_time(metric1_total[29s+1s:5s+5s])", 1000, 297.0),
        (
            "sum_over_time(metric1_total[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms])",
            1000,
            297.0,
        ),
        (
            "sum_over_time(metric1_total[29s+1s:20*500ms] offset (20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms)))",
            1200,
            297.0,
        ),
        (
            "sum_over_time(metric1_total[29s+1s:20*500ms] offset -(20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms)))",
            800,
            297.0,
        ),
        ("metric1_total offset (100 + 2)", 1000, 89.0),
        ("metric1_total offset 100 + 2", 1000, 92.0),
        ("metric1_total offset 2 ^ 2", 1002, 10000.0),
        ("metric1_total offset -2 ^ 2", 998, 10000.0),
        ("metric1_total offset (2 * 2)", 1000, 99.0),
        ("metric1_total offset -2 * 2", 1000, 200.0),
        ("metric1_total offset (-2 * 2)", 1000, 100.0),
        ("metric1_total offset (-2 ^ 2)", 1000, 100.0),
    ] {
        assert_eq!(one(&e, q, t * 1000).await, want, "{q}");
    }

    // load 1s: metric1_total 0+1x100; step() and range() are the query's.
    let e = engine_of(vec![("metric1_total", line(0., 1., 101, 1000))]);
    for (q, step, want) in [
        ("count_over_time(metric1_total[step()])", 10, vec![10.0; 2]),
        ("count_over_time(metric1_total[step()+1ms])", 10, vec![11.0; 2]),
        ("count_over_time(metric1_total[1+(STep()-5)*2])", 10, vec![11.0; 2]),
        ("count_over_time(metric1_total[min_of(step()+1,1h)])", 5, vec![6.0; 3]),
        (
            "count_over_time(metric1_total[((max_of(min_of((step()+1),((1h))),1ms)))])",
            5,
            vec![6.0; 3],
        ),
        ("metric1_total offset STEP()", 5, vec![45., 50., 55.]),
        ("metric1_total offset step()*0", 5, vec![0.; 3]),
        ("metric1_total offset (-step()*2)", 5, vec![60., 65., 70.]),
        ("metric1_total offset -step()*2", 5, vec![110., 120., 130.]),
        ("metric1_total offset (STEP()/10)", 5, vec![49., 54., 59.]),
        (
            "metric1_total offset min_of(step(), 1s)+8000",
            5,
            vec![8049., 8054., 8059.],
        ),
        (
            "metric1_total offset -(min_of(step(), 1s))+8000",
            5,
            vec![8051., 8056., 8061.],
        ),
        (
            "metric1_total offset max_of(3s,min_of(step(), 1s))+8000",
            5,
            vec![8047., 8052., 8057.],
        ),
        (
            "metric1_total offset -(min_of(step(), 2s)-5)+8000",
            5,
            vec![8047., 8052., 8057.],
        ),
        ("count_over_time(metric1_total[range()])", 5, vec![10.0; 3]),
        ("metric1_total offset range()", 5, vec![40., 45., 50.]),
        ("metric1_total offset min_of(range(), 8s)", 5, vec![42., 47., 52.]),
    ] {
        assert_eq!(values(&e, q, 50, 60, step).await, want, "{q}");
    }
    // For an instant query range() is 0: no offset at all.
    assert_eq!(one(&e, "metric1_total offset range()", 50_000).await, 50.0);
    // And step() is 0, which no range may be.
    let err = e
        .instant("count_over_time(metric1_total[step()])", 50_000)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadData);
    assert!(err.to_string().contains("step()"), "{err}");
}

/// The six float series of limit.test (load 5m; its two native-histogram series left out).
fn http_requests() -> Vec<(&'static str, Vec<Sample>)> {
    let labels = [
        r#"http_requests{job="api-server",instance="0",group="production"}"#,
        r#"http_requests{job="api-server",instance="1",group="production"}"#,
        r#"http_requests{job="api-server",instance="0",group="canary"}"#,
        r#"http_requests{job="api-server",instance="1",group="canary"}"#,
        r#"http_requests{job="api-server",instance="2",group="canary"}"#,
        r#"http_requests{job="api-server",instance="3",group="canary"}"#,
    ];
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, line(0., 10. * (i + 1) as f64, 11, 300_000)))
        .collect()
}

const FIFTY_MINUTES: i64 = 3_000_000;

/// limit.test, "Tests for limitk".
#[tokio::test]
async fn limitk() {
    let mut series = http_requests();
    series.push(("foo", line(1., 1., 11, 300_000)));
    let e = engine_of(series);
    for q in [
        "count(limitk by (group) (0, http_requests))",
        "count(limitk by (group) (-1, http_requests))",
    ] {
        assert!(rows(&e.instant(q, FIFTY_MINUTES).await.unwrap()).is_empty(), "{q}");
    }
    for (q, want) in [
        ("count(limitk by (group) (1, http_requests) and http_requests)", 2.0),
        ("count(limitk by (group) (2, http_requests) and http_requests)", 4.0),
        ("count(limitk(100, http_requests) and http_requests)", 6.0),
    ] {
        assert_eq!(one(&e, q, FIFTY_MINUTES).await, want, "{q}");
    }
    // Each step's own k (Prometheus bug 15971), capped by the series there are.
    assert_eq!(
        values(&e, "count(limitk(scalar(foo), http_requests))", 0, 3000, 300).await,
        vec![1., 2., 3., 4., 5., 6., 6., 6., 6., 6., 6.]
    );
    assert_eq!(
        values(&e, "count(limitk(2, http_requests) and http_requests)", 0, 3000, 300).await,
        vec![2.0; 11]
    );
    // The first series of each group in label order, labels and name kept.
    let got = sorted_rows(
        &e.instant("limitk by (group) (1, http_requests)", FIFTY_MINUTES)
            .await
            .unwrap(),
    );
    assert_eq!(
        got,
        vec![
            row(r#"http_requests{group="canary",instance="0",job="api-server"}"#, 300.0),
            row(
                r#"http_requests{group="production",instance="0",job="api-server"}"#,
                100.0
            ),
        ]
    );
}

/// limit.test, "Tests for limit_ratio".
#[tokio::test]
async fn limit_ratio() {
    let mut series = http_requests();
    series.push((
        "bar",
        at_interval(&[0., 1., 0., -1., 0., 1., 0., -1., 0., 1., 0.].map(Some), 300_000),
    ));
    let e = engine_of(series);
    let range = |q: &'static str| {
        let e = e.clone();
        async move { e.range_query(q, 0, FIFTY_MINUTES, 300_000, None).await.unwrap() }
    };
    let series_of = |r: &crate::promql::QueryResult| matrix(&r.value);
    assert!(series_of(&range("count(limit_ratio(0.0, http_requests))").await).is_empty());
    for q in [
        "count(limit_ratio(1.0, http_requests) and http_requests)",
        "count(limit_ratio(-1.0, http_requests) and http_requests)",
        "count(limit_ratio(0.2, http_requests) or limit_ratio(-0.8, http_requests))",
        "count(limit_ratio(0.5, http_requests) or limit_ratio(-0.5, http_requests))",
        "count(limit_ratio(0.8, http_requests) or limit_ratio(-0.2, http_requests))",
        "count(limit_ratio(time() % 17/17, http_requests) or limit_ratio( - (1.0 - (time() % 17/17)), http_requests))",
    ] {
        let got = series_of(&range(q).await);
        assert_eq!(got.len(), 1, "{q}");
        assert!(
            got[0].1.iter().all(|p| p.1 == 6.0) && got[0].1.len() == 11,
            "{q}: {got:?}"
        );
    }
    for q in [
        "count(limit_ratio(0.2, http_requests) and limit_ratio(-0.8, http_requests))",
        "count(limit_ratio(0.5, http_requests) and limit_ratio(-0.5, http_requests))",
        "count(limit_ratio(0.8, http_requests) and limit_ratio(-0.2, http_requests))",
        "count(limit_ratio(time() % 17/17, http_requests) and limit_ratio( - (1.0 - (time() % 17/17)), http_requests))",
    ] {
        assert!(series_of(&range(q).await).is_empty(), "{q}");
    }
    // Capped ratios warn, at the ratio's position.
    for (q, want) in [
        (
            "count(limit_ratio(1.1, http_requests) and http_requests)",
            "PromQL warning: ratio value should be between -1 and 1, got 1.1, capping to 1 (1:19)",
        ),
        (
            "count(limit_ratio(-1.1, http_requests) and http_requests)",
            "PromQL warning: ratio value should be between -1 and 1, got -1.1, capping to -1 (1:19)",
        ),
    ] {
        let r = range(q).await;
        assert_eq!(r.annotations.warnings, vec![want.to_string()], "{q}");
        assert!(series_of(&r)[0].1.iter().all(|p| p.1 == 6.0), "{q}");
    }
    // A ratio of 0 at a step keeps nothing there (Prometheus bug 15971).
    let got = points(&e, "count(limit_ratio(scalar(bar), http_requests))", 0, 3000, 300).await;
    let steps: Vec<i64> = got.iter().map(|p| p.0).collect();
    assert_eq!(steps, vec![300, 900, 1500, 2100, 2700]);
    // NaN fails.
    let err = e.instant("limit_ratio(NaN, http_requests)", 0).await.unwrap_err();
    assert!(err.to_string().contains("Ratio value is NaN"), "{err}");
}

/// `limit_ratio`'s offsets come from xxHash64 with seed 0, Prometheus's hash: checked against
/// the vectors of Prometheus's own `TestStableHash` (the empty input, and `hello` = `world`
/// in its `name 0xff value 0xff` encoding).
#[test]
fn limit_ratio_hashes_with_prometheus_xxhash() {
    use std::hash::Hasher;
    let xxh64 = |bytes: &[u8]| {
        let mut h = twox_hash::XxHash64::with_seed(0);
        h.write(bytes);
        h.finish()
    };
    assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
    assert_eq!(xxh64(b"hello\xffworld\xff"), 0x347c_8ee7_a9e2_9708);
    let labels = parse_labels(r#"http_requests{job="api-server",instance="0"}"#);
    let offset = super::super::aggregate::sample_offset(&labels);
    assert!((0.0..=1.0).contains(&offset));
    assert_eq!(offset, super::super::aggregate::sample_offset(&labels.clone()));
}

/// A range query's series as `(labels, values)` sorted by labels, `None` where a step has none.
async fn range_series(e: &Engine, q: &str, start_s: i64, end_s: i64, step_s: i64) -> Vec<(String, Vec<Option<f64>>)> {
    let v = e.range(q, start_s * 1000, end_s * 1000, step_s * 1000).await.unwrap();
    let steps = ((end_s - start_s) / step_s + 1) as usize;
    let mut out: Vec<(String, Vec<Option<f64>>)> = matrix(&v)
        .into_iter()
        .map(|(labels, points)| {
            let mut values = vec![None; steps];
            for (t, v) in points {
                values[((t - start_s) / step_s) as usize] = Some(v);
            }
            (labels, values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A series expected of [`range_series`]: its labels as text and its values.
type Expected<'a> = (&'a str, &'a [Option<f64>]);

/// `(labels, values)` as [`range_series`] gives them.
fn want(series: &[Expected<'_>]) -> Vec<(String, Vec<Option<f64>>)> {
    let mut out: Vec<_> = series
        .iter()
        .map(|(l, v)| (parse_labels(l).to_string(), v.to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// info.test, the first block (load 5m; evaluated from 0 to 10m every 5m).
#[tokio::test]
async fn info_joins_data_labels() {
    let e = engine_of(vec![
        (
            r#"metric{instance="a",job="1",label="value"}"#,
            line(0., 1., 3, 300_000),
        ),
        (
            r#"metric_not_matching_target_info{instance="a",job="2",label="value"}"#,
            line(0., 1., 3, 300_000),
        ),
        (
            r#"metric_with_overlapping_label{instance="a",job="1",label="value",data="base"}"#,
            line(0., 1., 3, 300_000),
        ),
        (
            r#"target_info{instance="a",job="1",data="info",another_data="another info"}"#,
            line(1., 0., 3, 300_000),
        ),
        (
            r#"build_info{instance="a",job="1",build_data="build"}"#,
            line(1., 0., 3, 300_000),
        ),
    ]);
    let v = [Some(0.), Some(1.), Some(2.)];
    let ones = [Some(1.); 3];
    let metric = r#"metric{instance="a",job="1",label="value"}"#;
    let not_matching = r#"metric_not_matching_target_info{instance="a",job="2",label="value"}"#;
    let overlapping = r#"metric_with_overlapping_label{data="base",instance="a",job="1",label="value"}"#;
    let all_target = r#"metric{another_data="another info",data="info",instance="a",job="1",label="value"}"#;
    let build = r#"metric{build_data="build",instance="a",job="1",label="value"}"#;
    let build_info = r#"build_info{build_data="build",instance="a",job="1"}"#;
    let cases: Vec<(&str, Vec<Expected>)> = vec![
        (
            r#"info(metric, {data=~".+"})"#,
            vec![(r#"metric{data="info",instance="a",job="1",label="value"}"#, &v)],
        ),
        ("info(metric)", vec![(all_target, &v)]),
        ("info(metric_not_matching_target_info)", vec![(not_matching, &v)]),
        (
            r#"info(metric_not_matching_target_info, {data=~".*"})"#,
            vec![(not_matching, &v)],
        ),
        (r#"info(metric_not_matching_target_info, {data=~".+"})"#, vec![]),
        (r#"info(metric, {non_existent=~".+"})"#, vec![]),
        (r#"info(metric, {non_existent=~".*"})"#, vec![(metric, &v)]),
        (
            "info(metric_with_overlapping_label)",
            vec![(
                r#"metric_with_overlapping_label{another_data="another info",data="base",instance="a",job="1",label="value"}"#,
                &v,
            )],
        ),
        (
            r#"info(metric_with_overlapping_label, {data="info"})"#,
            vec![(overlapping, &v)],
        ),
        (
            r#"info(metric_with_overlapping_label, {instance="a"})"#,
            vec![(overlapping, &v)],
        ),
        (r#"info(metric, {__name__="target_info"})"#, vec![(all_target, &v)]),
        (r#"info(metric, {__name__="non_existent"})"#, vec![(metric, &v)]),
        (r#"info(metric, {__name__="non_existent", data=~".+"})"#, vec![]),
        (r#"info(metric, {__name__="build_info"})"#, vec![(build, &v)]),
        (
            r#"info(metric, {__name__=~".+_info"})"#,
            vec![(
                r#"metric{another_data="another info",build_data="build",data="info",instance="a",job="1",label="value"}"#,
                &v,
            )],
        ),
        (
            r#"info(build_info, {__name__=~".+_info", another_data=~".+"})"#,
            vec![(build_info, &ones)],
        ),
        (r#"info(build_info, {__name__=~".+_info"})"#, vec![(build_info, &ones)]),
        (r#"info(metric, {__name__!~".+_info", data=~".+"})"#, vec![]),
        (r#"info(metric, {__name__!~".+_info", data=~".*"})"#, vec![(metric, &v)]),
        (r#"info(metric, {__name__!="target_info"})"#, vec![(build, &v)]),
        (
            r#"info(build_info, {__name__=~"target_.+", __name__=~".+_info"})"#,
            vec![(
                r#"build_info{another_data="another info",build_data="build",data="info",instance="a",job="1"}"#,
                &ones,
            )],
        ),
        // The name dropped by `floor` stays dropped.
        (
            "info(floor(metric))",
            vec![(
                r#"{another_data="another info",data="info",instance="a",job="1",label="value"}"#,
                &v,
            )],
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(range_series(&e, q, 0, 600, 300).await, want(&expected), "{q}");
    }
}

/// info.test: changing, stale and missing info series; `@` and `offset` pin the join.
#[tokio::test]
async fn info_follows_info_series_over_time() {
    let s = |v: &[Option<f64>], interval_ms| at_interval(v, interval_ms);
    // load 5m: the data label changes at 10m, the old series marked stale.
    let e = engine_of(vec![
        (
            r#"metric{instance="a",job="1",label="value"}"#,
            line(0., 1., 3, 300_000),
        ),
        (
            r#"target_info{instance="a",job="1",data="info"}"#,
            s(&[Some(1.), Some(1.), Some(STALE)], 300_000),
        ),
        (
            r#"target_info{instance="a",job="1",data="updated info"}"#,
            s(&[None, None, Some(1.)], 300_000),
        ),
    ]);
    let old = r#"metric{data="info",instance="a",job="1",label="value"}"#;
    let new = r#"metric{data="updated info",instance="a",job="1",label="value"}"#;
    assert_eq!(
        range_series(&e, "info(metric)", 0, 600, 300).await,
        want(&[(old, &[Some(0.), Some(1.), None]), (new, &[None, None, Some(2.)])])
    );
    let e = engine_of(vec![
        (
            r#"metric{instance="a",job="1",label="value"}"#,
            line(0., 1., 3, 300_000),
        ),
        (
            r#"target_info{instance="a",job="1",data="info"}"#,
            s(&[Some(1.), Some(1.), Some(STALE)], 300_000),
        ),
    ]);
    let plain = r#"metric{instance="a",job="1",label="value"}"#;
    assert_eq!(
        range_series(&e, r#"info(metric, {data=~".+"})"#, 0, 600, 300).await,
        want(&[(old, &[Some(0.), Some(1.), None])])
    );
    for q in [r#"info(metric, {data=~".*"})"#, "info(metric)"] {
        assert_eq!(
            range_series(&e, q, 0, 600, 300).await,
            want(&[(old, &[Some(0.), Some(1.), None]), (plain, &[None, None, Some(2.)])]),
            "{q}"
        );
    }

    // load 1m with a skipped scrape: lookback applies to the info series too.
    let e = engine_of(vec![
        (
            r#"metric{instance="a",job="1",label="value"}"#,
            s(&[Some(0.), None, Some(2.), Some(3.), Some(4.)], 60_000),
        ),
        (
            r#"target_info{instance="a",job="1",data="info"}"#,
            s(&[Some(1.), None, Some(1.), Some(1.), Some(1.)], 60_000),
        ),
    ]);
    for (q, values) in [
        ("info(metric)", [0., 2., 3., 4.]),
        ("info(metric @ 60)", [0., 0., 0., 0.]),
        ("info(metric offset 1m)", [0., 0., 2., 3.]),
    ] {
        assert_eq!(
            range_series(&e, q, 60, 240, 60).await,
            want(&[(old, &values.map(Some))]),
            "{q}"
        );
    }

    // load 1m: the info series churns at 3m; @ and offset choose the version joined.
    let metric: Vec<Option<f64>> = (0..9).map(|i| Some(i as f64)).collect();
    let e = engine_of(vec![
        (r#"metric{instance="a",job="1"}"#, s(&metric, 60_000)),
        (
            r#"target_info{instance="a",job="1",version="old"}"#,
            s(&[Some(1.), Some(1.), Some(1.), Some(STALE)], 60_000),
        ),
        (
            r#"target_info{instance="a",job="1",version="new"}"#,
            s(
                &[
                    None,
                    None,
                    None,
                    Some(1.),
                    Some(1.),
                    Some(1.),
                    Some(1.),
                    Some(1.),
                    Some(1.),
                ],
                60_000,
            ),
        ),
    ]);
    let (old, new) = (
        r#"metric{instance="a",job="1",version="old"}"#,
        r#"metric{instance="a",job="1",version="new"}"#,
    );
    assert_eq!(
        range_series(&e, "info(metric offset 2m)", 240, 480, 60).await,
        want(&[
            (old, &[Some(2.), None, None, None, None]),
            (new, &[None, Some(3.), Some(4.), Some(5.), Some(6.)]),
        ])
    );
    assert_eq!(
        range_series(&e, "info(metric @ 120)", 480, 540, 60).await,
        want(&[(old, &[Some(2.), Some(2.)])])
    );
    let r = rows(
        &e.instant("info(last_over_time(metric[10m:1m] @ 420))", 2_400_000)
            .await
            .unwrap(),
    );
    assert_eq!(r, vec![row(new, 7.0)]);
    let r = rows(
        &e.instant("info(last_over_time((metric offset 1m)[10m:1m] @ 180))", 2_400_000)
            .await
            .unwrap(),
    );
    assert_eq!(r, vec![row(old, 2.0)]);
}

/// info.test: series without identifying labels, a missing identifying label, and conflicts.
#[tokio::test]
async fn info_edge_cases() {
    let e = engine_of(vec![
        ("data_metric", line(1., 1., 3, 60_000)),
        (r#"data_metric{instance="a"}"#, line(4., 1., 3, 60_000)),
        (r#"metric{instance="a"}"#, line(1., 1., 3, 60_000)),
        (r#"custom_info{instance="a",enriched="yes"}"#, line(1., 0., 3, 60_000)),
    ]);
    assert_eq!(
        range_series(&e, r#"info(data_metric, {__name__="info_metric"})"#, 0, 120, 60).await,
        want(&[
            ("data_metric", &[Some(1.), Some(2.), Some(3.)]),
            (r#"data_metric{instance="a"}"#, &[Some(4.), Some(5.), Some(6.)]),
        ])
    );
    assert_eq!(
        range_series(&e, r#"info(metric, {__name__="custom_info"})"#, 0, 120, 60).await,
        want(&[(
            r#"metric{enriched="yes",instance="a"}"#,
            &[Some(1.), Some(2.), Some(3.)]
        )])
    );
    let e = engine_of(vec![
        (r#"metric{instance="a",job="1"}"#, line(1., 1., 3, 60_000)),
        (
            r#"target_info{instance="a",job="1",x="from_target"}"#,
            line(1., 0., 3, 60_000),
        ),
        (
            r#"build_info{instance="a",job="1",x="from_build"}"#,
            line(1., 0., 3, 60_000),
        ),
    ]);
    let err = e
        .range(r#"info(metric, {__name__=~".+_info"})"#, 0, 120_000, 60_000)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("conflicting label"), "{err}");
}

/// `promql-parser` refuses a selector whose matchers all match the empty string; `info`'s data
/// label selector gets a matcher that lets it parse, removed again when planned.
#[test]
fn info_selectors_are_admitted() {
    use super::super::functions::admit_info_selectors;
    let got = admit_info_selectors(r#"info(rate(x{a="info(y, {"}[5m]), {data=~".*"}) + info(z, {})"#);
    assert_eq!(
        got,
        r#"info(rate(x{a="info(y, {"}[5m]), {__tributary_info_selector__=~".+", data=~".*"}) + info(z, {__tributary_info_selector__=~".+" })"#
    );
    for untouched in [
        "info(x)",
        r#"sum(x) # info(x, {a=""})"#,
        r#"label_join(x, "info", ",", "a")"#,
    ] {
        assert!(
            matches!(admit_info_selectors(untouched), std::borrow::Cow::Borrowed(_)),
            "{untouched}"
        );
    }
}

/// aggregators.test (a NaN parameter fails even without input) and at_modifier.test (the new
/// range functions over an `@` time without data answer nothing).
#[tokio::test]
async fn empty_inputs() {
    let e = engine_of(vec![("up", at_interval(&[1., 2., 3.].map(Some), 10_000))]);
    for (q, message) in [
        ("limitk(NaN, non_existent)", "Parameter value is NaN"),
        ("limit_ratio(NaN, non_existent)", "Ratio value is NaN"),
    ] {
        let err = e.instant(q, FIFTY_MINUTES).await.unwrap_err();
        assert!(err.to_string().contains(message), "{q}: {err}");
    }
    for f in [
        "first_over_time",
        "mad_over_time",
        "ts_of_min_over_time",
        "ts_of_max_over_time",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
    ] {
        let q = format!(r#"{f}({{__name__="up"}}[1h:1m] @ 1111111)"#);
        assert!(rows(&e.instant(&q, 1_111_111_000).await.unwrap()).is_empty(), "{q}");
    }
    let q = r#"double_exponential_smoothing({__name__="up"}[1h:1m] @ 1111111, 0.5, 0.5)"#;
    assert!(rows(&e.instant(q, 1_111_111_000).await.unwrap()).is_empty());
}
