//! Aggregations read in parts (`query.part_samples`) answer exactly what whole reads answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use proptest::prelude::*;
use tributary_storage::read::{SelectRequest, SeriesSize, Source};
use tributary_storage::types::Labels;

use super::*;

/// Counts the selects that name their series (`only`) and the most samples one of them returned.
#[derive(Debug)]
struct Counting {
    inner: VecSource,
    parts: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl Source for Counting {
    async fn select(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Series>> {
        let out = self.inner.select(req).await?;
        if req.only.is_some() {
            self.parts.fetch_add(1, Ordering::Relaxed);
            let samples = out.iter().map(|s| s.samples.len()).sum();
            self.most.fetch_max(samples, Ordering::Relaxed);
        }
        Ok(out)
    }

    async fn series(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Labels>> {
        self.inner.series(req).await
    }

    async fn series_samples(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<SeriesSize>> {
        self.inner.series_samples(req).await
    }
}

/// Series `m{x=<group>,y=<i>}` (and a `n` twin of some, equal but for the name) with samples
/// every 15 s for 2 min, integer values so every sum is exact.
fn fixture(spec: &[(u8, i32, bool)]) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, &(x, v, twin)) in spec.iter().enumerate() {
        let samples: Vec<Sample> = (0..9)
            .map(|k| Sample::new(k * 15_000, f64::from(v) + (k * i as i64) as f64))
            .collect();
        let labels = |name: &str| parse_labels(&format!(r#"{name}{{x="{x}",y="{i}"}}"#));
        out.push(Series::new(labels("m"), samples.clone()));
        if twin {
            out.push(Series::new(labels("n"), samples));
        }
    }
    out
}

fn engine_over(series: Vec<Series>, part_samples: usize) -> (Engine, Arc<Counting>) {
    let source = Arc::new(Counting {
        inner: VecSource::new(series),
        parts: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let cfg = QueryConfig {
        part_samples,
        ..QueryConfig::default()
    };
    (Engine::new(source.clone(), cfg), source)
}

const QUERIES: &[&str] = &[
    "sum by (x) (m)",
    "sum(m)",
    "count by (x) (m)",
    "min by (x) (m)",
    "max without (y) (m)",
    "group by (x) (m)",
    "sum by (x) (m > 3)",
    "count(-m)",
    "sum by (x) (increase(m[1m]))",
    "max by (x) (abs(m - 10))",
    "sum by (x) (rate(m[1m])) / sum by (x) (rate(m[1m]))",
    "sum by (x) (clamp_max(m, 5))",
    "count(count_over_time(m[30s]))",
    "histogram_quantile(0.5, sum by (x) (m))",
    "sum({__name__=~\"m|n\"})",
    "sum(rate({__name__=~\"m|n\"}[1m]))",
    "avg(m)",
    "topk(2, m)",
];

fn answers(e: &Engine, rt: &tokio::runtime::Runtime) -> Vec<std::result::Result<Value, String>> {
    QUERIES
        .iter()
        .map(|q| {
            rt.block_on(e.range(q, 30_000, 120_000, 15_000))
                .map_err(|err| err.to_string())
        })
        .collect()
}

/// Equal answers: the same series and timestamps, values equal up to the rounding a different
/// summation order gives (NaN equal to NaN), or the same error.
fn same(a: &std::result::Result<Value, String>, b: &std::result::Result<Value, String>) -> bool {
    let close = |x: f64, y: f64| (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
    match (a, b) {
        (Ok(Value::Matrix(x)), Ok(Value::Matrix(y))) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(s, t)| {
                    s.labels == t.labels
                        && s.samples.len() == t.samples.len()
                        && s.samples
                            .iter()
                            .zip(&t.samples)
                            .all(|(p, q)| p.timestamp == q.timestamp && close(p.value, q.value))
                })
        }
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn parts_answer_what_whole_reads_answer(
        spec in proptest::collection::vec((0u8..3, -20i32..20, proptest::bool::weighted(0.2)), 1..20),
        budget in 1usize..60,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let series = fixture(&spec);
        let (whole, whole_src) = engine_over(series.clone(), usize::MAX);
        let (parted, parted_src) = engine_over(series, budget);
        let want = answers(&whole, &rt);
        let got = answers(&parted, &rt);
        for ((q, w), g) in QUERIES.iter().zip(&want).zip(&got) {
            prop_assert!(same(w, g), "{}: whole {:?}, in parts {:?}", q, w, g);
        }
        prop_assert_eq!(whole_src.parts.load(Ordering::Relaxed), 0);
        // Every query reads all 9 samples of each `m` series: read in parts whenever they
        // exceed the budget, each part within it unless one group (an `m` and its `n` twin,
        // 18 samples) alone exceeds it.
        if 9 * spec.len() > budget {
            prop_assert!(parted_src.parts.load(Ordering::Relaxed) > 0);
            let most = parted_src.most.load(Ordering::Relaxed);
            prop_assert!(most <= budget.max(18), "a part read {} samples, over {}", most, budget);
        } else if 9 * fixture(&spec).len() <= budget {
            // Not even `{__name__=~"m|n"}` exceeds it.
            prop_assert_eq!(parted_src.parts.load(Ordering::Relaxed), 0);
        }
    }
}

/// A 30-day burn-rate-shaped query over more samples than `max_samples` answers in parts, and
/// fails with the sample limit when it must be read whole.
#[tokio::test]
async fn long_ranges_over_many_series_fit_the_sample_limit_in_parts() {
    let day = 86_400_000i64;
    // 200 series x 30 days at 1 h = 144,000 samples; the limit allows 20,000 at once.
    let series: Vec<Series> = (0..200)
        .map(|i| {
            let name = if i % 2 == 0 { "errors_total" } else { "requests_total" };
            let labels = parse_labels(&format!(r#"{name}{{cluster="c{}",pod="p{i}"}}"#, (i / 2) % 4));
            let samples = (0..720)
                .map(|h| Sample::new(h * 3_600_000, (h * (1 + i % 3)) as f64))
                .collect();
            Series::new(labels, samples)
        })
        .collect();
    let query = "sum by (cluster) (rate(errors_total[30d])) / sum by (cluster) (rate(requests_total[30d]))";
    let at = 30 * day - 1;
    // Raw reads only: parts split raw selectors, and at this instant (between hour boundaries)
    // the window would otherwise be read from 1 h buckets, one per sample of this data.
    let cfg = |part_samples| {
        let mut cfg = QueryConfig {
            max_samples: 20_000,
            part_samples,
            ..QueryConfig::default()
        };
        cfg.rollups.enabled = false;
        cfg
    };
    let whole = Engine::new(Arc::new(VecSource::new(series.clone())), cfg(usize::MAX));
    let err = whole.instant(query, at).await.unwrap_err();
    assert!(matches!(err, crate::error::Error::TooManySamples), "{err}");
    let parted = Engine::new(Arc::new(VecSource::new(series.clone())), cfg(10_000));
    let got = sorted_rows(&parted.instant(query, at).await.unwrap());
    // Both sums, 72,000 samples each: 8 parts of at most 10,000.
    assert_eq!(parted.metrics().part_aggregations.get(), 2);
    assert_eq!(parted.metrics().parts.get(), 16);
    let roomy = Engine::new(
        Arc::new(VecSource::new(series)),
        QueryConfig {
            part_samples: usize::MAX,
            ..QueryConfig::default()
        },
    );
    let want = sorted_rows(&roomy.instant(query, at).await.unwrap());
    assert_eq!(got.len(), 4);
    assert_rows_close(&got, &want);
}
