//! Rollup tiers: a range function of a long, aligned window reads buckets and answers what raw
//! samples answer. `rate` and `increase` agree exactly (bit for bit) on integer counters, so do
//! `count_over_time`, `min_over_time`, `max_over_time` and the `count by`/`max by`/`topk`
//! over them; `sum_over_time` and `avg_over_time` agree within
//! [`BUCKET_TOLERANCE`](tributary_storage::test_util::source::BUCKET_TOLERANCE) relative
//! (floating-point summation order).

use tributary_storage::read::Source;
use tributary_storage::rollup::Resolution;
use tributary_storage::test_util::source::within_tolerance;
use tributary_storage::types::Labels;
use tributary_storage::{Storage, StorageConfig};

use super::*;
use crate::promql::{QueryResult, Tier};
use crate::source::MergedSource;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z: the days before it are rolled up, it is "today".
const T0: i64 = 1_767_225_600_000;

/// Three clusters × three instances of two counters and a gauge, scraped every minute with
/// jitter from three days before `T0` to `T0 + 12h`: counters with resets, missed scrapes, a
/// three-hour outage that starts with a staleness marker, gauges with fractional values.
fn fleet() -> Vec<Series> {
    let mut rng = Lcg(14);
    let mut out = Vec::new();
    for cluster in ["eu", "us", "ap"] {
        for instance in ["0", "1", "2"] {
            for (name, step) in [("requests_total", 20u64), ("errors_total", 3), ("temperature", 0)] {
                let labels = Labels::from_pairs(&[("__name__", name), ("cluster", cluster), ("instance", instance)]);
                let mut value = rng.next(1000) as f64;
                let mut samples = Vec::new();
                let mut t = T0 - 3 * DAY + rng.next(MIN as u64) as i64;
                while t < T0 + 12 * HOUR {
                    let outage = instance == "1" && (T0 - DAY - 2 * HOUR..T0 - DAY + HOUR).contains(&t);
                    if outage {
                        if samples.last().is_some_and(|s: &Sample| !is_stale(s.value)) {
                            samples.push(Sample::new(t, STALE));
                        }
                    } else if rng.next(50) != 0 {
                        value = match step {
                            0 => 20.0 + rng.next(10_000) as f64 / 7.0,
                            _ if rng.next(2_000) == 0 => rng.next(5) as f64,
                            _ => value + rng.next(step) as f64,
                        };
                        samples.push(Sample::new(t, value));
                    }
                    t += MIN + rng.next(2_000) as i64 - 1_000;
                }
                out.push(Series::new(labels, samples));
            }
        }
    }
    out
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

fn split(data: &[Series], keep: impl Fn(i64) -> bool) -> Vec<Series> {
    data.iter()
        .map(|s| {
            let samples = s.samples.iter().filter(|p| keep(p.timestamp)).copied().collect();
            Series::new(s.labels.clone(), samples)
        })
        .collect()
}

/// Data laid out as a long-running store holds it: rollups of the three completed days, raw
/// files of today (and, unless `raw_expired`, of the rolled-up days too), and a head holding
/// the last six hours, which were flushed already (so the head and the files overlap).
async fn stored(data: &[Series], raw_expired: bool) -> (tempfile::TempDir, Arc<dyn Source>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    let raw = if raw_expired {
        split(data, |t| t >= T0)
    } else {
        data.to_vec()
    };
    storage.write_metrics(&raw).await.unwrap();
    for res in Resolution::ALL {
        storage.write_rollups(res, &split(data, |t| t < T0)).await.unwrap();
    }
    let head: Arc<dyn Source> = Arc::new(VecSource::new(split(data, |t| t >= T0 + 6 * HOUR)));
    let source = Arc::new(MergedSource::new(vec![head, storage.source()]));
    (dir, source)
}

fn raw_only() -> QueryConfig {
    let mut cfg = QueryConfig::default();
    cfg.rollups.enabled = false;
    cfg
}

/// How two answers must agree.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Agree {
    Exactly,
    WithinTolerance,
}

fn compare(query: &str, agree: Agree, got: &Value, want: &Value) {
    let points = |v: &Value| -> Vec<(String, i64, f64)> {
        match v {
            Value::Vector(s) => s.iter().map(|s| (s.labels.to_string(), s.timestamp, s.value)).collect(),
            Value::Matrix(m) => m
                .iter()
                .flat_map(|s| s.samples.iter().map(|p| (s.labels.to_string(), p.timestamp, p.value)))
                .collect(),
            other => panic!("{query}: unexpected {other:?}"),
        }
    };
    let (got, want) = (points(got), points(want));
    assert!(
        !want.is_empty(),
        "{query}: the reference answer is empty, the test proves nothing"
    );
    assert_eq!(got.len(), want.len(), "{query}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1), "{query}");
        let ok = match agree {
            Agree::Exactly => g.2.to_bits() == w.2.to_bits(),
            Agree::WithinTolerance => within_tolerance(g.2, w.2),
        };
        assert!(ok, "{query} at {} {}: rollups {} vs raw {}", g.0, g.1, g.2, w.2);
    }
}

/// The SLO-style queries, the tier each must be read from at aligned times, how exactly the
/// answers must agree.
const QUERIES: &[(&str, Tier, Agree)] = &[
    (
        "increase(requests_total[2d])",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "rate(requests_total[1d])",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "rate(errors_total[1d] offset 1h)",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "rate(requests_total[3h])",
        Tier::Rollup(Resolution::FiveMinutes),
        Agree::Exactly,
    ),
    (
        "increase(errors_total[90m])",
        Tier::Rollup(Resolution::FiveMinutes),
        Agree::Exactly,
    ),
    (
        "sum by (cluster) (rate(errors_total[2d])) / sum by (cluster) (rate(requests_total[2d]))",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "count by (cluster) (count_over_time(requests_total[1d]))",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "max by (cluster) (max_over_time(temperature[1d]))",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "min_over_time(temperature[2d])",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "topk(3, rate(requests_total[1d]))",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "count_over_time(temperature[1d])",
        Tier::Rollup(Resolution::OneHour),
        Agree::Exactly,
    ),
    (
        "sum_over_time(temperature[1d])",
        Tier::Rollup(Resolution::OneHour),
        Agree::WithinTolerance,
    ),
    (
        "avg_over_time(temperature[2h])",
        Tier::Rollup(Resolution::FiveMinutes),
        Agree::WithinTolerance,
    ),
    // Too short for a tier, or a function no summary answers: raw.
    ("rate(requests_total[30m])", Tier::Raw, Agree::Exactly),
    ("stddev_over_time(temperature[1d])", Tier::Raw, Agree::Exactly),
];

async fn instant_result(e: &Engine, q: &str, t: i64) -> QueryResult {
    e.instant_query(q, t, None)
        .await
        .unwrap_or_else(|err| panic!("{q}: {err}"))
}

async fn differential(raw_expired: bool) {
    let data = fleet();
    let reference = Engine::new(Arc::new(VecSource::new(data.clone())), raw_only());
    let (_dir, source) = stored(&data, raw_expired).await;
    let tiered = Engine::new(source, QueryConfig::default());
    for &(q, tier, agree) in QUERIES {
        if raw_expired && tier == Tier::Raw {
            // Raw samples of the rolled-up days are gone: only rollups can answer there.
            continue;
        }
        for t in [T0 + 12 * HOUR, T0, T0 - 5 * HOUR] {
            let got = instant_result(&tiered, q, t).await;
            assert_eq!(got.tier, tier, "{q} at {t}");
            compare(q, agree, &got.value, &instant_result(&reference, q, t).await.value);
        }
        let (start, end, step) = (T0 - 6 * HOUR, T0 + 12 * HOUR, HOUR);
        let got = tiered.range_query(q, start, end, step, None).await.unwrap();
        assert_eq!(got.tier, tier, "{q} as a range query");
        let want = reference.range_query(q, start, end, step, None).await.unwrap();
        compare(q, agree, &got.value, &want.value);
    }
    // Instants between boundaries (a rule's evaluation times): whole buckets from a tier, the
    // two partial buckets at the window's ends from raw samples, the same answers. Where the
    // raw files of the rolled-up days are gone, the window's first partial bucket has nothing to
    // be read from, so there is nothing to compare.
    if raw_expired {
        return;
    }
    for &(q, tier, agree) in QUERIES.iter().filter(|(_, tier, _)| *tier != Tier::Raw) {
        for t in [
            T0 + 12 * HOUR - 30_000,
            T0 + 7 * MIN + 1,
            T0 - 5 * HOUR - 61_000,
            T0 - DAY + 17 * MIN,
        ] {
            let got = instant_result(&tiered, q, t).await;
            assert!(got.tier >= tier, "{q} at {t}: {:?}", got.tier);
            compare(q, agree, &got.value, &instant_result(&reference, q, t).await.value);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_queries_on_rollups_equal_raw() {
    differential(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_queries_on_rollups_equal_raw_after_raw_retention() {
    differential(true).await;
}

/// A range query's aggregation over a rollup-tier selector is read a cluster at a time when its
/// rows exceed `query.part_samples` (one part per cluster here), and answers exactly what the
/// whole read answers; each part counts against `query.max_samples` on its own, so a query
/// too large to read whole is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_queries_over_rollups_are_read_a_cluster_at_a_time() {
    let data = fleet();
    let (_dir, source) = stored(&data, false).await;
    let query = "sum by (cluster) (rate(errors_total[2d])) / sum by (cluster) (rate(requests_total[2d]))";
    let (start, end, step) = (T0 - 6 * HOUR, T0 + 12 * HOUR, HOUR);
    let cfg = |part_samples, max_samples| QueryConfig {
        part_samples,
        max_samples,
        ..QueryConfig::default()
    };
    let whole = Engine::new(source.clone(), cfg(usize::MAX, usize::MAX));
    let want = whole.range_query(query, start, end, step, None).await.unwrap();
    assert_eq!(whole.metrics().parts.get(), 0);
    // 9 series of each counter, 66 hourly buckets each in the 2-day windows of 19 steps.
    let limit = 300;
    let err = Engine::new(source.clone(), cfg(usize::MAX, limit))
        .range_query(query, start, end, step, None)
        .await
        .unwrap_err();
    assert!(matches!(err, crate::error::Error::TooManySamples), "{err}");
    let parted = Engine::new(source, cfg(1, limit));
    let got = parted.range_query(query, start, end, step, None).await.unwrap();
    assert_eq!(got.tier, Tier::Rollup(Resolution::OneHour));
    assert_eq!(parted.metrics().part_aggregations.get(), 2);
    assert_eq!(parted.metrics().parts.get(), 6, "one part per cluster and sum");
    assert_eq!(matrix(&got.value), matrix(&want.value));
    assert_eq!(matrix(&got.value).len(), 3);
}

/// The two sides of a burn rate read in parts from the same rollup files are read together, so
/// each file is fetched and decoded once for both: the query costs the object-store reads of
/// one side alone, and answers what the whole read answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_of_a_burn_rate_read_each_rollup_file_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
        storage
            .write_rollups(Resolution::OneHour, &split(&fleet(), |t| t < T0))
            .await
            .unwrap();
    }
    let cfg = |part_samples| QueryConfig {
        part_samples,
        ..QueryConfig::default()
    };
    let (start, end) = (T0 - DAY, T0 - 2 * HOUR);
    // Each query on a store opened afresh: no footer or file read kept from another.
    let run = |query: &'static str, part_samples: usize| {
        let path = dir.path().to_path_buf();
        async move {
            let storage = Storage::open(&StorageConfig::default(), &path).await.unwrap();
            let engine = Engine::new(storage.source(), cfg(part_samples));
            let gets = storage.request_counts().get;
            let got = engine.range_query(query, start, end, HOUR, None).await.unwrap();
            assert_eq!(got.tier, Tier::Rollup(Resolution::OneHour), "{query}");
            (got, storage.request_counts().get - gets, engine.metrics().parts.get())
        }
    };
    let burn = "sum by (cluster) (rate(errors_total[1d])) / sum by (cluster) (rate(requests_total[1d]))";
    let one_side = "sum by (cluster) (rate(errors_total[1d]))";
    let (whole, _, whole_parts) = run(burn, usize::MAX).await;
    assert_eq!(whole_parts, 0);
    let (parted, burn_gets, parts) = run(burn, 1).await;
    assert_eq!(parts, 6, "a part per cluster and side");
    assert_eq!(matrix(&parted.value), matrix(&whole.value));
    assert_eq!(matrix(&parted.value).len(), 3);
    let (_, one_side_gets, _) = run(one_side, 1).await;
    assert!(one_side_gets > 0);
    assert_eq!(burn_gets, one_side_gets, "each file read once for both sides");

    // An instant query (one window: whole days summarised, the two sides' reads of one file at
    // the same time): also one read of each file.
    let instant = |query: &'static str| {
        let path = dir.path().to_path_buf();
        async move {
            let storage = Storage::open(&StorageConfig::default(), &path).await.unwrap();
            let engine = Engine::new(storage.source(), QueryConfig::default());
            let gets = storage.request_counts().get;
            let got = instant_result(&engine, &query.replace("1d", "2d"), T0).await;
            assert_eq!(got.tier, Tier::Rollup(Resolution::OneHour), "{query}");
            let Value::Vector(v) = got.value else {
                panic!("{query}: not a vector")
            };
            assert_eq!(v.len(), 3, "{query}: a value per cluster");
            storage.request_counts().get - gets
        }
    };
    let (burn_gets, one_side_gets) = (instant(burn).await, instant(one_side).await);
    assert!(one_side_gets > 0);
    assert_eq!(
        burn_gets, one_side_gets,
        "each file read once for both sides of an instant query"
    );
}

#[tokio::test]
async fn tiers_follow_range_alignment_and_configuration() {
    let data = fleet();
    let e = Engine::new(Arc::new(VecSource::new(data.clone())), QueryConfig::default());
    let tier = |q: &'static str, t: i64| {
        let e = e.clone();
        async move { instant_result(&e, q, t).await.tier }
    };
    let h1 = Tier::Rollup(Resolution::OneHour);
    let m5 = Tier::Rollup(Resolution::FiveMinutes);
    assert_eq!(tier("rate(requests_total[1d])", T0).await, h1);
    assert_eq!(
        tier("rate(requests_total[1d])", T0 + 5 * MIN).await,
        h1,
        "aligned to 5m only: the coarsest tier still serves its whole buckets, the ends read raw"
    );
    // One window between boundaries: whole buckets from the coarsest tier, its ends raw.
    assert_eq!(tier("rate(requests_total[1d])", T0 + MIN).await, h1);
    assert_eq!(tier("rate(requests_total[2h5m])", T0 + MIN).await, m5);
    assert_eq!(
        tier("rate(requests_total[1d] offset 1m)", T0 + MIN).await,
        h1,
        "offset counts"
    );
    assert_eq!(
        tier("rate(requests_total[1d] @ 1767225600)", T0 + 7).await,
        h1,
        "@ counts"
    );
    assert_eq!(
        tier("rate(requests_total[25h5m])", T0).await,
        m5,
        "not a multiple of 1h"
    );
    assert_eq!(tier("rate(requests_total[59m])", T0).await, Tier::Raw);
    assert_eq!(tier("delta(temperature[1d])", T0).await, Tier::Raw);
    assert_eq!(
        tier("max_over_time(rate(requests_total[5m])[1d:1h])", T0).await,
        Tier::Raw
    );
    assert_eq!(
        tier("rate(requests_total[1d]) + rate(errors_total[1h])", T0).await,
        h1,
        "the coarsest"
    );
    // Steps not a multiple of the width.
    let r = e
        .range_query("rate(requests_total[1d])", T0, T0 + 2 * HOUR, 30 * MIN, None)
        .await
        .unwrap();
    assert_eq!(r.tier, m5);
    // Unaligned steps of a range query: every window's ends would be raw; all of it is.
    let r = e
        .range_query("rate(requests_total[1d])", T0 + MIN, T0 + 2 * HOUR + MIN, HOUR, None)
        .await
        .unwrap();
    assert_eq!(r.tier, Tier::Raw);
    let off = Engine::new(Arc::new(VecSource::new(data)), raw_only());
    assert_eq!(
        instant_result(&off, "rate(requests_total[1d])", T0).await.tier,
        Tier::Raw
    );
    // Every selector read is counted by tier on /metrics.
    let mut registry = prometheus_client::registry::Registry::default();
    e.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("tributary_query_tier_selections_total{tier=\"1h\"} 6"),
        "{text}"
    );
    assert!(
        text.contains("tributary_query_tier_selections_total{tier=\"raw\"} 4"),
        "{text}"
    );
}

/// Series as `(labels, [(seconds, value)])`.
type Fixtures = Vec<(String, Vec<(i64, f64)>)>;
/// Fixtures, a query, its time (seconds) and Prometheus's answer.
type Case = (Fixtures, &'static str, i64, Vec<(&'static str, f64)>);

/// Prometheus's own `rate`/`increase` cases (promql/promqltest/testdata/functions.test) whose
/// windows are whole 5-minute buckets, read from 5-minute rollups: the zero-point clamp, resets
/// in the middle, offsets. The tier's minimum range is lowered so that these short windows use it.
#[tokio::test]
async fn prometheus_rate_cases_read_from_buckets() {
    let mut cfg = QueryConfig::default();
    cfg.rollups.min_range_5m = std::time::Duration::from_secs(300);
    let series = |from: i64, by: i64, times: i64| (0..=times).map(move |i| (from + by * i) as f64);
    let load = |step: i64, values: Vec<(&'static str, Vec<f64>)>| -> Fixtures {
        values
            .into_iter()
            .map(|(l, v)| {
                (
                    l.to_string(),
                    v.into_iter().enumerate().map(|(i, v)| (i as i64 * step, v)).collect(),
                )
            })
            .collect()
    };
    let cases: Vec<Case> = vec![
        (
            load(
                300,
                vec![
                    (r#"http_requests_total{path="/foo"}"#, series(0, 10, 10).collect()),
                    (
                        r#"http_requests_total{path="/bar"}"#,
                        series(0, 18, 5).chain(series(0, 18, 5)).collect(),
                    ),
                    (r#"http_requests_total{path="/dings"}"#, series(10, 10, 10).collect()),
                    (r#"http_requests_total{path="/bumms"}"#, series(1, 10, 10).collect()),
                ],
            ),
            "increase(http_requests_total[100m])",
            3000,
            vec![
                (r#"{path="/bar"}"#, 162.0),
                (r#"{path="/bumms"}"#, 101.0),
                (r#"{path="/dings"}"#, 105.0),
                (r#"{path="/foo"}"#, 100.0),
            ],
        ),
        (
            load(
                300,
                vec![(
                    r#"http_requests_total{path="/foo"}"#,
                    vec![0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0],
                )],
            ),
            "increase(http_requests_total[30m])",
            1800,
            vec![(r#"{path="/foo"}"#, 7.0)],
        ),
        (
            load(
                300,
                vec![(
                    "testcounter_reset_middle_total",
                    series(0, 27, 4).chain(series(0, 27, 5)).collect(),
                )],
            ),
            "rate(testcounter_reset_middle_total[50m])",
            3000,
            vec![("{}", 0.08)],
        ),
        (
            load(
                300,
                vec![
                    (r#"calculate_rate_offset_total{x="a"}"#, series(0, 10, 10).collect()),
                    (r#"calculate_rate_offset_total{x="b"}"#, series(0, 20, 10).collect()),
                ],
            ),
            "rate(calculate_rate_offset_total[10m] offset 5m)",
            3000,
            vec![(r#"{x="a"}"#, 0.03333333333333333), (r#"{x="b"}"#, 0.06666666666666667)],
        ),
        (
            load(
                240,
                vec![
                    (
                        r#"testcounter_zero_cutoff_total{start="0m"}"#,
                        series(0, 240, 10).collect(),
                    ),
                    (
                        r#"testcounter_zero_cutoff_total{start="1m"}"#,
                        series(60, 240, 10).collect(),
                    ),
                    (
                        r#"testcounter_zero_cutoff_total{start="2m"}"#,
                        series(120, 240, 10).collect(),
                    ),
                    (
                        r#"testcounter_zero_cutoff_total{start="5m"}"#,
                        series(300, 240, 10).collect(),
                    ),
                ],
            ),
            "rate(testcounter_zero_cutoff_total[20m])",
            600,
            vec![
                (r#"{start="0m"}"#, 0.5),
                (r#"{start="1m"}"#, 0.55),
                (r#"{start="2m"}"#, 0.6),
                (r#"{start="5m"}"#, 0.6),
            ],
        ),
    ];
    for (fixtures, q, t, want) in cases {
        let fixtures: Vec<(&str, &[(i64, f64)])> = fixtures.iter().map(|(l, s)| (l.as_str(), s.as_slice())).collect();
        let tiered = engine_with(&fixtures, cfg.clone());
        let raw = engine_with(&fixtures, raw_only());
        let got = instant_result(&tiered, q, t * 1000).await;
        assert_eq!(got.tier, Tier::Rollup(Resolution::FiveMinutes), "{q}");
        compare(
            q,
            Agree::Exactly,
            &got.value,
            &instant_result(&raw, q, t * 1000).await.value,
        );
        let rows = sorted_rows(&got.value);
        assert_eq!(rows.len(), want.len(), "{q}: {rows:?}");
        for ((labels, value), (want_labels, want_value)) in rows.iter().zip(&want) {
            assert_eq!(labels, want_labels, "{q}");
            assert!(
                (value - want_value).abs() < 1e-12,
                "{q} {labels}: {value} vs Prometheus's {want_value}"
            );
        }
    }
}
