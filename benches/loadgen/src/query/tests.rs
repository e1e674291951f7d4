use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use proptest::prelude::*;

use super::answer::{Answer, Differences, Labels, Rules, SeriesPoints, Tolerance, compare, parse};
use super::measurement::{Settings, Stats, run_suite};
use super::report::{self, build};
use super::suite::{RATE_RANGE_MS, Request, seconds, suite};
use super::*;
use crate::workload::Config;

fn small_workload() -> Config {
    Config {
        clusters: 2,
        series_per_cluster: 2000,
        samples_per_series: 40,
        start_ms: 1_700_000_000_000,
        ..Config::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn series(pairs: &[(&str, &str)], points: &[(i64, &str)]) -> SeriesPoints {
    SeriesPoints {
        labels: labels(pairs),
        points: points.iter().map(|(t, v)| (*t, v.to_string())).collect(),
    }
}

fn strict() -> Rules {
    Rules {
        tolerance: Tolerance {
            relative: 1e-6,
            absolute: 1e-9,
        },
        compare_from_ms: None,
    }
}

fn diff(a: &Answer, b: &Answer, rules: &Rules) -> Differences {
    compare(a, b, rules, ("ref", "other"), 10)
}

#[test]
fn window_covers_the_workload_and_never_lands_on_a_sample() {
    let cfg = small_workload();
    let w = Window::for_workload(&cfg, 60_000).expect("window");
    assert_eq!(w.end_ms - w.start_ms, 40 * 15_000, "the whole span: 40 rounds of 15 s");
    assert_eq!(w.points(), 11);
    let offsets = cfg.scrape_offsets();
    assert!(
        offsets.len() > 20,
        "targets are spread over the interval: {}",
        offsets.len()
    );
    let shift = (w.start_ms - cfg.start_ms) as u64;
    assert!(shift < 15_000 && !offsets.contains(&shift));
    // Every evaluation time and every 5 m window boundary is off every sample timestamp.
    for k in 0..w.points() {
        let t = w.start_ms + k * w.step_ms;
        for edge in [t, t - RATE_RANGE_MS] {
            let phase = (edge - cfg.start_ms).rem_euclid(15_000) as u64;
            assert!(!offsets.contains(&phase), "{edge} is a sample time");
        }
    }
}

#[test]
fn window_rejects_a_step_longer_than_the_data() {
    let cfg = Config {
        samples_per_series: 2,
        ..small_workload()
    };
    assert!(Window::for_workload(&cfg, 60_000).is_err());
    assert!(Window::for_workload(&small_workload(), 0).is_err());
}

#[test]
fn suite_names_are_unique_and_requests_are_prometheus_api_calls() {
    let queries = suite();
    let mut names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), queries.len());
    let w = Window::for_workload(&small_workload(), 60_000).expect("window");
    let (path, params) = queries[0].request.http(&w);
    assert_eq!(path, "/api/v1/query_range");
    assert!(params.contains(&("step", "60.000".to_string())));
    assert!(params.contains(&("start", seconds(w.start_ms))));
    let labels = queries.iter().find(|q| q.name == "pod_values").expect("pod_values");
    assert_eq!(labels.request.http(&w).0, "/api/v1/label/pod/values");
    let series = queries.iter().find(|q| q.name == "pod_info_series").expect("series");
    let (_, params) = series.request.http(&w);
    assert!(
        params
            .iter()
            .any(|(k, v)| *k == "match[]" && v.contains("prod-eu-west-1"))
    );
}

#[test]
fn seconds_are_exact_to_the_millisecond() {
    assert_eq!(seconds(1_700_000_000_123), "1700000000.123");
    assert_eq!(seconds(60_000), "60.000");
    assert_eq!(seconds(-1), "-1.999");
}

proptest! {
    #[test]
    fn seconds_round_trip_through_the_api_format(ms in 0i64..4_000_000_000_000) {
        let text = seconds(ms);
        let back: f64 = text.parse().expect("decimal");
        prop_assert_eq!((back * 1000.0).round() as i64, ms);
    }

    #[test]
    fn an_answer_agrees_with_itself_and_a_changed_value_is_found(
        values in proptest::collection::vec(-1e12f64..1e12, 1..40),
        victim in any::<proptest::sample::Index>(),
    ) {
        let points: Vec<(i64, String)> = values.iter().enumerate().map(|(i, v)| (i as i64 * 60_000, v.to_string())).collect();
        let a = Answer::Series { series: vec![SeriesPoints { labels: labels(&[("cluster", "a")]), points: points.clone() }] };
        prop_assert_eq!(diff(&a, &a, &strict()).count, 0);
        let i = victim.index(points.len());
        let mut changed = points;
        let v: f64 = changed[i].1.parse().expect("float");
        changed[i].1 = (v * 1.01 + 1.0).to_string();
        let b = Answer::Series { series: vec![SeriesPoints { labels: labels(&[("cluster", "a")]), points: changed }] };
        let d = diff(&a, &b, &strict());
        prop_assert_eq!(d.count, 1);
        let when = format!("t={}", seconds(i as i64 * 60_000));
        prop_assert!(d.examples[0].contains(&when), "{:?} lacks {}", d.examples, when);
    }

    #[test]
    fn tolerance_is_symmetric(a in -1e9f64..1e9, b in -1e9f64..1e9) {
        let t = Tolerance { relative: 1e-3, absolute: 1e-9 };
        prop_assert_eq!(t.same(a, b), t.same(b, a));
        prop_assert!(t.same(a, a));
    }
}

#[test]
fn parses_matrix_vector_values_and_series_answers() {
    let range = Request::Range { expr: "x".into() };
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"cluster":"b"},"values":[[1700000000.5,"1"],[1700000060.5,"NaN"]]},
        {"metric":{"cluster":"a"},"values":[[1700000000.5,"+Inf"]]}]}}"#;
    let a = parse(&range, body).expect("matrix");
    let Answer::Series { series } = &a else {
        panic!("not series: {a:?}")
    };
    assert_eq!(series[0].labels, labels(&[("cluster", "a")]), "sorted by labels");
    assert_eq!(series[1].points[1], (1_700_000_060_500, "NaN".to_string()));
    assert_eq!(a.points(), 3);

    let instant = Request::Instant { expr: "x".into() };
    let body =
        br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"2.5"]}]}}"#;
    assert_eq!(parse(&instant, body).expect("vector").points(), 1);
    assert!(parse(&range, body).is_err(), "a vector is not a range answer");

    let values = Request::LabelValues { label: "pod".into() };
    let a = parse(&values, br#"{"status":"success","data":["z","a"]}"#).expect("values");
    assert_eq!(
        a,
        Answer::Values {
            values: vec!["a".into(), "z".into()]
        }
    );

    let sets = Request::Series { matcher: "up".into() };
    let a = parse(
        &sets,
        br#"{"status":"success","data":[{"__name__":"up","job":"b"},{"__name__":"up","job":"a"}]}"#,
    )
    .expect("series");
    assert_eq!(a.len(), 2);
}

#[test]
fn parse_rejects_errors_empty_and_duplicate_answers() {
    let range = Request::Range { expr: "x".into() };
    let err = parse(
        &range,
        br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
    )
    .unwrap_err();
    assert!(err.contains("parse error"), "{err}");
    let err = parse(
        &range,
        br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )
    .unwrap_err();
    assert_eq!(err, "empty result");
    let dup = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"a":"1"},"values":[[1,"1"]]},{"metric":{"a":"1"},"values":[[2,"1"]]}]}}"#;
    assert!(parse(&range, dup).unwrap_err().contains("twice"));
    assert!(parse(&range, b"<html>").unwrap_err().contains("not JSON"));
    let bad_value =
        br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#;
    assert!(parse(&range, bad_value).is_err());
}

#[test]
fn compare_reports_missing_extra_and_differing_series() {
    let a = Answer::Series {
        series: vec![
            series(&[("cluster", "a")], &[(0, "1"), (60_000, "NaN")]),
            series(&[("cluster", "b")], &[(0, "2")]),
        ],
    };
    let same_within_tolerance = Answer::Series {
        series: vec![
            series(&[("cluster", "a")], &[(0, "1.0000000001"), (60_000, "NaN")]),
            series(&[("cluster", "b")], &[(0, "2")]),
        ],
    };
    assert_eq!(diff(&a, &same_within_tolerance, &strict()).count, 0);

    let b = Answer::Series {
        series: vec![
            series(&[("cluster", "a")], &[(0, "1.5")]),
            series(&[("cluster", "c")], &[(0, "2")]),
        ],
    };
    let d = diff(&a, &b, &strict());
    let all = d.examples.join("\n");
    assert!(all.contains(r#"{cluster="a"} at t=0.000: ref 1, other 1.5"#), "{all}");
    assert!(
        all.contains(r#"{cluster="a"} at t=60.000: ref NaN, other no point"#),
        "{all}"
    );
    assert!(all.contains(r#"only ref returned {cluster="b"}"#), "{all}");
    assert!(all.contains(r#"only other returned {cluster="c"}"#), "{all}");
    assert_eq!(d.count, 4);

    let loose = Rules {
        tolerance: Tolerance {
            relative: 0.5,
            absolute: 0.0,
        },
        compare_from_ms: Some(60_000),
    };
    // From 60 s on only the NaN point of `a` remains; `b` has nothing left there.
    let d = diff(&a, &b, &loose);
    assert!(
        d.examples.iter().any(|e| e == r#"only ref returned {cluster="a"}"#),
        "{d:?}"
    );
    assert!(
        !d.examples.iter().any(|e| e.contains("1.5")),
        "early points are skipped: {d:?}"
    );
}

#[test]
fn compare_sets_lists_what_only_one_side_has() {
    let a = Answer::Values {
        values: vec!["a".into(), "b".into(), "d".into()],
    };
    let b = Answer::Values {
        values: vec!["b".into(), "c".into(), "d".into()],
    };
    let d = diff(&a, &b, &strict());
    assert_eq!(d.count, 2);
    assert_eq!(
        d.examples,
        vec![r#"only ref returned "a""#, r#"only other returned "c""#]
    );
    let x = Answer::LabelSets {
        sets: vec![labels(&[("__name__", "up"), ("job", "a")])],
    };
    let y = Answer::LabelSets { sets: vec![] };
    let d = diff(&x, &y, &strict());
    assert!(
        d.examples.iter().any(|e| e == r#"only ref returned up{job="a"}"#),
        "{d:?}"
    );
    assert_eq!(diff(&x, &a, &strict()).count, 1, "different kinds never agree");
}

#[test]
fn stats_use_the_middle_pair_and_nearest_rank() {
    let s = Stats::of(&[5.0, 1.0, 3.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0]).expect("stats");
    assert_eq!((s.min, s.median, s.p90, s.max), (1.0, 5.5, 9.0, 10.0));
    assert_eq!(s.mean, 5.5);
    let s = Stats::of(&[3.0, 1.0, 2.0]).expect("stats");
    assert_eq!((s.median, s.p90), (2.0, 3.0));
    assert!(Stats::of(&[]).is_none());
}

/// Status and body for the n-th request with this query string.
type Responder = dyn Fn(usize, &str) -> (StatusCode, String) + Send + Sync;

/// A Prometheus-like API: answers from a closure of the request number, records queries.
#[derive(Clone)]
struct Fake {
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    answer: Arc<Responder>,
}

async fn serve(fake: Fake) -> String {
    let handler = |State(f): State<Fake>, RawQuery(q): RawQuery| async move {
        let n = f.hits.fetch_add(1, Ordering::SeqCst);
        let q = q.unwrap_or_default();
        f.seen.lock().expect("lock").push(q.clone());
        (f.answer)(n, &q)
    };
    let app = axum::Router::new()
        .route("/api/v1/query_range", get(handler))
        .route("/api/v1/query", get(handler))
        .route("/api/v1/series", get(handler))
        .route("/api/v1/label/{name}/values", get(handler))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

fn fake(answer: impl Fn(usize, &str) -> (StatusCode, String) + Send + Sync + 'static) -> Fake {
    Fake {
        hits: Arc::default(),
        seen: Arc::default(),
        answer: Arc::new(answer),
    }
}

const MATRIX: &str =
    r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"cluster":"a"},"values":[[1,"1"]]}]}}"#;

fn settings(base_url: String) -> Settings {
    Settings {
        base_url,
        warmup: 1,
        runs: 4,
        server_pid: Some(std::process::id()),
        timeout: Duration::from_secs(10),
    }
}

fn range_query(name: &str) -> Query {
    Query {
        name: name.into(),
        request: Request::Range { expr: "up".into() },
        rate_range_ms: None,
    }
}

#[tokio::test]
async fn a_suite_run_times_every_run_and_keeps_the_answer() {
    let f = fake(|_, _| (StatusCode::OK, MATRIX.into()));
    let url = serve(f.clone()).await;
    let w = Window::for_workload(&small_workload(), 60_000).expect("window");
    let runs = run_suite(&settings(url), &w, &[range_query("q")]).await.expect("run");
    let q = &runs[0];
    assert!(q.ok(), "{q:?}");
    assert_eq!((q.warmup_ms.len(), q.timings_ms.len()), (1, 4));
    assert_eq!(f.hits.load(Ordering::SeqCst), 5);
    assert_eq!((q.items, q.points, q.response_bytes), (1, 1, MATRIX.len()));
    assert!(q.stats.expect("stats").median > 0.0);
    assert!(q.server_cpu_ms_per_query.is_some());
    let seen = f.seen.lock().expect("lock")[0].clone();
    assert!(seen.contains("query=up") && seen.contains("step=60.000"), "{seen}");
}

#[tokio::test]
async fn errors_empty_and_changing_answers_fail_the_query() {
    let f = fake(|n, _| match n {
        0 => (StatusCode::OK, MATRIX.into()),
        _ => (
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","error":"unsupported function"}"#.into(),
        ),
    });
    let url = serve(f).await;
    let w = Window::for_workload(&small_workload(), 60_000).expect("window");
    let q = &run_suite(&settings(url), &w, &[range_query("q")]).await.expect("run")[0];
    let e = q.error.as_deref().expect("failed");
    assert!(
        e.starts_with("run 2: HTTP 400") && e.contains("unsupported function"),
        "{e}"
    );
    assert!(!q.ok());

    // The last bits of a float may change between runs; anything more fails the query.
    let f = fake(|n, _| {
        let v = match n {
            0..=1 => "1",
            2 => "1.0000000000000002",
            _ => "2",
        };
        (StatusCode::OK, MATRIX.replace(r#""1"]"#, &format!(r#""{v}"]"#)))
    });
    let url = serve(f).await;
    let q = &run_suite(&settings(url), &w, &[range_query("q")]).await.expect("run")[0];
    let e = q.error.as_deref().expect("inconsistent");
    assert!(
        e.contains("run 4 answered differently from run 1") && e.contains("run 1 1, run 4 2"),
        "{e}"
    );
    assert_eq!(q.float_noise_runs, 1);

    let f = fake(|_, _| (StatusCode::OK, r#"{"status":"success","data":[]}"#.into()));
    let url = serve(f).await;
    let labels = Query {
        name: "v".into(),
        request: Request::LabelValues { label: "pod".into() },
        rate_range_ms: None,
    };
    let q = &run_suite(&settings(url), &w, &[labels]).await.expect("run")[0];
    assert!(q.error.as_deref().expect("empty").contains("empty result"));
}

fn target_run(label: &str, target: &str, dialect: Dialect, answers: Vec<(Query, Answer, f64)>) -> TargetRun {
    let cfg = small_workload();
    TargetRun {
        label: label.into(),
        target: target.into(),
        version: format!("{target} 1.0"),
        state: "head".into(),
        dialect,
        base_url: "http://127.0.0.1:1".into(),
        workload: WorkloadShape {
            clusters: cfg.clusters,
            series_per_cluster: cfg.series_per_cluster,
            samples_per_series: cfg.samples_per_series,
            interval_ms: cfg.interval_ms,
            start_ms: cfg.start_ms,
            seed: cfg.seed,
        },
        window: Window {
            data_start_ms: 0,
            interval_ms: 15_000,
            start_ms: 1,
            end_ms: 600_001,
            step_ms: 60_000,
        },
        warmup: 1,
        runs: 3,
        queries: answers
            .into_iter()
            .map(|(query, answer, ms)| QueryRun {
                query,
                error: None,
                warmup_ms: vec![ms],
                timings_ms: vec![ms; 3],
                stats: Stats::of(&[ms; 3]),
                server_cpu_ms_per_query: Some(ms / 2.0),
                response_bytes: 100,
                float_noise_runs: 0,
                items: answer.len(),
                points: answer.points(),
                answer: Some(answer),
            })
            .collect(),
    }
}

fn report_settings() -> report::Settings {
    report::Settings {
        reference: Some("prometheus".into()),
        subjects: vec!["tributary".into()],
        tolerance: Tolerance {
            relative: 1e-6,
            absolute: 1e-9,
        },
        metricsql_tolerance: Tolerance {
            relative: 0.05,
            absolute: 1e-9,
        },
        max_examples: 5,
    }
}

#[test]
fn report_compares_with_the_reference_by_dialect_and_gives_ratios() {
    let rate = Query {
        rate_range_ms: Some(RATE_RANGE_MS),
        ..range_query("ratio")
    };
    let count = range_query("count");
    let truth = |v: &str, early: &str| Answer::Series {
        series: vec![series(&[("cluster", "a")], &[(60_001, early), (420_001, v)])],
    };
    let prom = target_run(
        "prometheus",
        "prometheus",
        Dialect::Promql,
        vec![
            (rate.clone(), truth("1", "5"), 400.0),
            (count.clone(), truth("3", "3"), 100.0),
        ],
    );
    // VictoriaMetrics: 2 % off on the rate query and wildly off on its partial first window
    // (allowed), but a count that differs (not allowed).
    let vm = target_run(
        "victoria-metrics",
        "victoria-metrics",
        Dialect::Metricsql,
        vec![
            (rate.clone(), truth("1.02", "9"), 200.0),
            (count.clone(), truth("4", "3"), 50.0),
        ],
    );
    // Tributary: the same 2 % off is a mismatch for a PromQL receiver.
    let trib = target_run(
        "tributary",
        "tributary",
        Dialect::Promql,
        vec![(rate, truth("1.02", "5"), 100.0), (count, truth("3", "3"), 100.0)],
    );
    let r = build(&[prom, vm, trib], &report_settings()).expect("report");
    assert_eq!((r.mismatches, r.dialect_differences), (2, 0), "{:?}", r.comparisons);
    assert_eq!(r.failures, 0);
    let bad: Vec<(&str, &str)> = r
        .comparisons
        .iter()
        .filter(|c| c.differences.count > 0)
        .map(|c| (c.query.as_str(), c.receiver.as_str()))
        .collect();
    assert_eq!(bad, vec![("ratio", "tributary"), ("count", "victoria-metrics")]);
    let vm_rate = r
        .comparisons
        .iter()
        .find(|c| c.query == "ratio" && c.receiver == "victoria-metrics")
        .expect("compared");
    assert_eq!(vm_rate.compare_from_ms, Some(RATE_RANGE_MS + 15_000));

    let md = r.markdown();
    assert!(
        md.contains("| query | prometheus ms | victoria-metrics ms | tributary ms | tributary / prometheus | tributary / victoria-metrics | answers |"),
        "{md}"
    );
    assert!(
        md.contains("| ratio | 400 | 200 | 100 | 0.25x | 0.50x | **MISMATCH**: tributary (1) |"),
        "{md}"
    );
    assert!(
        md.contains("| count | 100 | 50.0 | 100 | 1.00x | 2.00x | **MISMATCH**: victoria-metrics (1) |"),
        "{md}"
    );
    assert!(md.contains("prometheus 1, tributary 1.02"), "{md}");
    assert_eq!(r.warnings().len(), 2);
}

#[test]
fn report_marks_failures_and_refuses_incomparable_runs() {
    let q = range_query("count");
    let a = Answer::Series {
        series: vec![series(&[("cluster", "a")], &[(1, "1")])],
    };
    let prom = target_run(
        "prometheus",
        "prometheus",
        Dialect::Promql,
        vec![(q.clone(), a.clone(), 10.0)],
    );
    let mut trib = target_run("tributary", "tributary", Dialect::Promql, vec![(q, a, 10.0)]);
    trib.queries[0].error = Some("run 1: HTTP 422: unsupported".into());
    trib.queries[0].answer = None;
    let r = build(&[prom.clone(), trib.clone()], &report_settings()).expect("report");
    assert_eq!((r.failures, r.mismatches), (1, 0));
    let md = r.markdown();
    assert!(
        md.contains("| count | 10.0 | **FAILED** | n/a | **FAILED**: tributary |"),
        "{md}"
    );
    assert!(
        md.contains("FAILED `count` on tributary: run 1: HTTP 422: unsupported"),
        "{md}"
    );

    let mut other_window = trib.clone();
    other_window.window.start_ms += 1;
    assert!(build(&[prom.clone(), other_window], &report_settings()).is_err());
    assert!(
        build(&[prom.clone(), prom.clone()], &report_settings()).is_err(),
        "duplicate labels"
    );
    let settings = report::Settings {
        reference: Some("nobody".into()),
        ..report_settings()
    };
    assert!(build(&[prom, trib], &settings).is_err());
}

#[test]
fn metricsql_rate_differences_are_listed_apart_from_mismatches() {
    let top = Query {
        rate_range_ms: Some(RATE_RANGE_MS),
        ..range_query("topk")
    };
    let pods = |second: &str| Answer::Series {
        series: vec![
            series(&[("pod", "a")], &[(420_001, "0.9")]),
            series(&[("pod", second)], &[(420_001, "0.7")]),
        ],
    };
    let prom = target_run(
        "prometheus",
        "prometheus",
        Dialect::Promql,
        vec![(top.clone(), pods("b"), 10.0)],
    );
    let vm = target_run(
        "victoria-metrics",
        "victoria-metrics",
        Dialect::Metricsql,
        vec![(top, pods("c"), 10.0)],
    );
    let r = build(&[prom, vm], &report_settings()).expect("report");
    assert_eq!((r.mismatches, r.dialect_differences, r.failures), (0, 1, 0));
    let md = r.markdown();
    assert!(
        md.contains("agree (2); MetricsQL differs: victoria-metrics (2)"),
        "{md}"
    );
    assert!(md.contains(r#"only prometheus returned {pod="b"}"#), "{md}");
    assert!(r.warnings()[0].starts_with("DIALECT DIFFERENCE"), "{:?}", r.warnings());
}
