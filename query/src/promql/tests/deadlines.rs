//! Deadlines and cancellation: a listing with many `match[]`, or a query with many selector
//! alternatives, stops at `query.timeout` and when its future is dropped (the client went away),
//! even over a source that answers each request without yielding (the head does).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tributary_storage::read::{SelectRequest, Source};
use tributary_storage::types::{Labels, MatchOp, Matcher, Sample, Series, TimeRange};

use crate::config::QueryConfig;
use crate::error::Error;
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

/// How long the slow source works on each request, busy on its thread as in-memory regex
/// matching over many series is.
const WORK: Duration = Duration::from_millis(2);

/// Requests a listing or query below makes: at [`WORK`] each, 8 s of work, far past every
/// deadline the tests set.
const REQUESTS: usize = 4000;

/// A source that blocks for [`WORK`] on every request and counts them.
#[derive(Debug)]
struct SlowSource {
    inner: VecSource,
    calls: Arc<AtomicUsize>,
}

impl SlowSource {
    fn work(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + WORK;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

#[async_trait]
impl Source for SlowSource {
    async fn select(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Series>> {
        self.work();
        self.inner.select(req).await
    }

    async fn series(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<Labels>> {
        self.work();
        self.inner.series(req).await
    }

    async fn label_names(&self, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        self.work();
        self.inner.label_names(req).await
    }

    async fn label_values(&self, name: &str, req: &SelectRequest) -> tributary_storage::Result<Vec<String>> {
        self.work();
        self.inner.label_values(name, req).await
    }
}

fn slow_engine(timeout: Duration) -> (Engine, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let series = (0..10)
        .map(|i| Series::new(parse_labels(&format!("m{{i=\"{i}\"}}")), vec![Sample::new(1_000, 1.0)]))
        .collect();
    let source = SlowSource {
        inner: VecSource::new(series),
        calls: calls.clone(),
    };
    let cfg = QueryConfig {
        timeout,
        ..QueryConfig::default()
    };
    (Engine::new(Arc::new(source), cfg), calls)
}

/// [`REQUESTS`] regex `match[]` selectors.
fn many_matchers() -> Vec<Vec<Matcher>> {
    (0..REQUESTS)
        .map(|i| vec![Matcher::new(MatchOp::RegexMatch, "i", format!("{i}|x.*y")).unwrap()])
        .collect()
}

/// Asserts the source sees no further request once the batch in flight is done.
async fn assert_stopped(calls: &AtomicUsize) {
    // The batch running when the work was stopped may finish (nothing interrupts a request).
    tokio::time::sleep(100 * WORK).await;
    let seen = calls.load(Ordering::Relaxed);
    assert!(seen < REQUESTS, "all {seen} requests ran: nothing stopped the work");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::Relaxed), seen, "the work went on after the answer");
}

#[tokio::test]
async fn listings_with_many_match_selectors_answer_timeout_and_stop() {
    let sets = many_matchers();
    for listing in ["series", "labels", "label values"] {
        let (engine, calls) = slow_engine(Duration::from_millis(200));
        let began = Instant::now();
        let answer = match listing {
            "series" => engine.series(&sets, TimeRange::ALL, began).await.map(|v| v.len()),
            "labels" => engine.label_names(&sets, TimeRange::ALL, began).await.map(|v| v.len()),
            _ => engine
                .label_values("i", &sets, TimeRange::ALL, began)
                .await
                .map(|v| v.len()),
        };
        assert!(matches!(answer, Err(Error::Timeout(_))), "{listing}: {answer:?}");
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{listing}: {:?}",
            began.elapsed()
        );
        assert_stopped(&calls).await;
    }
}

#[tokio::test]
async fn a_dropped_listing_stops() {
    let (engine, calls) = slow_engine(Duration::from_secs(120));
    let task = tokio::spawn(async move { engine.series(&many_matchers(), TimeRange::ALL, Instant::now()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // What axum does when the client disconnects: the handler's future is dropped.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_stopped(&calls).await;
}

/// `m{i="0" or i="1" or ...}`: one selector of [`REQUESTS`] alternatives, a select each.
fn many_alternatives() -> String {
    let alternatives: Vec<String> = (0..REQUESTS).map(|i| format!("i=\"{i}\"")).collect();
    format!("m{{{}}}", alternatives.join(" or "))
}

#[tokio::test]
async fn a_query_fetching_past_its_timeout_answers_timeout_and_stops() {
    let (engine, calls) = slow_engine(Duration::from_secs(120));
    let began = Instant::now();
    let answer = engine
        .instant_with_timeout(&many_alternatives(), 2_000, Some(Duration::from_millis(200)))
        .await;
    assert!(matches!(answer, Err(Error::Timeout(_))), "{answer:?}");
    assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
    assert_stopped(&calls).await;
}

#[tokio::test]
async fn a_dropped_query_stops() {
    let (engine, calls) = slow_engine(Duration::from_secs(120));
    let query = many_alternatives();
    let task = tokio::spawn(async move { engine.instant(&query, 2_000).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_stopped(&calls).await;
}

#[tokio::test]
async fn a_dropped_query_stops_its_evaluation_thread() {
    // 2 series over 12 hours at 1 s, and a median of 2 h windows at every second: a sort of
    // 7200 samples at each of 43200 steps (minutes of evaluation), nothing of it in the source.
    let series = (0..2)
        .map(|i| {
            let samples = (0..43_200).map(|t| Sample::new(t * 1000, t as f64)).collect();
            Series::new(parse_labels(&format!("m{{i=\"{i}\"}}")), samples)
        })
        .collect();
    let engine = Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default());
    let metrics = engine.metrics().clone();
    let heavy = engine.clone();
    let task = tokio::spawn(async move { heavy.range("quantile_over_time(0.5, m[2h])", 0, 43_200_000, 1000).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !task.is_finished(),
        "the query ended before it was dropped: {:?}",
        task.await
    );
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let dropped = Instant::now();
    while metrics.evaluations_cancelled.get() == 0 {
        assert!(
            dropped.elapsed() < Duration::from_secs(2),
            "the evaluation thread went on after its query was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.evaluations_cancelled.get(), 1);
}

/// The timeout counts parsing and planning too: a query of thousands of selectors whose
/// preparation alone outlasts its `timeout` answers at the deadline, naming that stage, instead
/// of after planning and then timing out again in execution.
#[tokio::test]
async fn preparation_counts_against_the_timeout() {
    let engine = Engine::new(Arc::new(VecSource::new(Vec::new())), QueryConfig::default());
    let alternatives: Vec<String> = (0..5000).map(|k| format!(r#"pad=~".*{k}.*z.*""#)).collect();
    let query = format!("count(heavy{{{}}})", alternatives.join(" or "));
    let began = Instant::now();
    let err = engine
        .instant_query(&query, 0, Some(Duration::from_millis(1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout("query preparation")), "{err}");
    assert!(began.elapsed() < Duration::from_secs(2), "{:?}", began.elapsed());
}
