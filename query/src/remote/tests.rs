//! The fan-out against real HTTP servers on loopback answering the internal read API the way
//! an ingester does (`tributary_storage::remote::answer` over a source).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use tributary_storage::read::TraceSource;
use tributary_storage::read::{LogSource, SelectRequest, Source};
use tributary_storage::remote::{self, Call, WireError};
use tributary_storage::test_util::{
    MemLogSource, MemSource, MemTraceSource, log_source_conformance, source_conformance, trace_source_conformance,
};
use tributary_storage::types::{Labels, Matcher, Sample, Series, TimeRange};

use super::*;

/// Serves `source` and `logs` like an ingester; returns its base URL. `delay` holds every
/// answer back.
async fn serve(source: impl Source + 'static, logs: MemLogSource, delay: Duration) -> String {
    serve_all(source, logs, MemTraceSource::default(), delay).await
}

async fn serve_all(
    source: impl Source + 'static,
    logs: MemLogSource,
    traces: MemTraceSource,
    delay: Duration,
) -> String {
    serve_logged(source, logs, traces, delay, Arc::default()).await
}

/// [`serve_all`], the name of every call it answers added to `calls`.
async fn serve_logged(
    source: impl Source + 'static,
    logs: MemLogSource,
    traces: MemTraceSource,
    delay: Duration,
    calls: Arc<Mutex<Vec<&'static str>>>,
) -> String {
    let state = Arc::new((source, logs, traces));
    let app = axum::Router::new().route(
        remote::PATH,
        post(move |body: Bytes| {
            let (state, calls) = (state.clone(), calls.clone());
            async move {
                tokio::time::sleep(delay).await;
                let answer = match Call::from_json(&body) {
                    Ok(call) => {
                        calls.lock().push(call.name());
                        remote::answer(&call, &state.0, &state.1, &state.2).await
                    }
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(a) => ([(axum::http::header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
                    Err(e) => {
                        let (status, wire) = WireError::of(&e);
                        (
                            StatusCode::from_u16(status).unwrap(),
                            serde_json::to_vec(&wire).unwrap(),
                        )
                            .into_response()
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A base URL nobody listens on.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn config(ingesters: Vec<String>, failure: IngesterFailure) -> FanoutConfig {
    FanoutConfig {
        ingesters,
        timeout: Duration::from_millis(500),
        failure,
        resolve_interval: Duration::from_secs(60),
        token: None,
    }
}

fn series(name: &str, cluster: &str, points: &[(i64, f64)]) -> Series {
    Series::new(
        Labels::from_pairs(&[("__name__", name), ("cluster", cluster)]),
        points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
    )
}

fn select(name: &str) -> SelectRequest {
    SelectRequest::new(vec![Matcher::equal("__name__", name)], TimeRange::new(0, 1000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_over_http_passes_the_source_conformance_suite() {
    // One ingester holds the data, another holds nothing: the merge must change nothing.
    source_conformance(|series| async move {
        let a = serve(MemSource::new(series), MemLogSource::new(Vec::new()), Duration::ZERO).await;
        let b = serve(MemSource::default(), MemLogSource::new(Vec::new()), Duration::ZERO).await;
        Fanout::new(config(vec![a, b], IngesterFailure::Fail)).await as Arc<dyn Source>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_over_http_passes_the_log_source_conformance_suite() {
    log_source_conformance(|records| async move {
        // Split across two ingesters, with the middle third held by both (as during a
        // hand-over): every record still comes back once.
        let (third, two_thirds) = (records.len() / 3, records.len() * 2 / 3);
        let a = serve(
            MemSource::default(),
            MemLogSource::new(records[..two_thirds].to_vec()),
            Duration::ZERO,
        )
        .await;
        let b = serve(
            MemSource::default(),
            MemLogSource::new(records[third..].to_vec()),
            Duration::ZERO,
        )
        .await;
        Fanout::new(config(vec![a, b], IngesterFailure::Fail)).await as Arc<dyn LogSource>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_over_http_passes_the_trace_source_conformance_suite() {
    trace_source_conformance(|spans| async move {
        // Split across two ingesters with an overlap: every span still comes back once.
        let (third, two_thirds) = (spans.len() / 3, spans.len() * 2 / 3);
        let a = serve_all(
            MemSource::default(),
            MemLogSource::new(Vec::new()),
            MemTraceSource::new(spans[..two_thirds].to_vec()),
            Duration::ZERO,
        )
        .await;
        let b = serve_all(
            MemSource::default(),
            MemLogSource::new(Vec::new()),
            MemTraceSource::new(spans[third..].to_vec()),
            Duration::ZERO,
        )
        .await;
        Fanout::new(config(vec![a, b], IngesterFailure::Fail)).await as Arc<dyn TraceSource>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_split_across_ingesters_merge_into_one() {
    let a = serve(
        MemSource::new(vec![series("m", "c1", &[(1, 1.0), (2, 2.0)])]),
        MemLogSource::new(Vec::new()),
        Duration::ZERO,
    )
    .await;
    let b = serve(
        MemSource::new(vec![
            series("m", "c1", &[(2, 2.0), (3, 3.0)]),
            series("m", "c2", &[(1, 9.0)]),
        ]),
        MemLogSource::new(Vec::new()),
        Duration::ZERO,
    )
    .await;
    let fanout = Fanout::new(config(vec![a, b], IngesterFailure::Warn)).await;
    let (got, warnings) = collect_warnings(fanout.select(&select("m"))).await;
    let mut got = got.unwrap();
    got.sort_by(|x, y| x.labels.cmp(&y.labels));
    assert_eq!(got.len(), 2);
    let ts: Vec<i64> = got[0].samples.iter().map(|s| s.timestamp).collect();
    assert_eq!(ts, vec![1, 2, 3], "the sample both hold counts once");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_asks_each_ingester_once_for_its_histograms_and_once_for_its_floats() {
    let calls: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let mut ingesters = Vec::new();
    for cluster in ["c1", "c2"] {
        let source = MemSource::new(vec![series("m", cluster, &[(0, 1.0), (30_000, 2.0), (60_000, 3.0)])]);
        let (logs, traces) = (MemLogSource::new(Vec::new()), MemTraceSource::default());
        ingesters.push(serve_logged(source, logs, traces, Duration::ZERO, calls.clone()).await);
    }
    let fanout = Fanout::new(config(ingesters, IngesterFailure::Fail)).await;
    let value = |answer: crate::error::Result<crate::promql::QueryResult>| match answer.unwrap().value {
        crate::promql::Value::Vector(v) => v.iter().map(|s| s.value).collect::<Vec<_>>(),
        other => panic!("not a vector: {other:?}"),
    };
    let called = |want: &[&str]| {
        let mut got = std::mem::take(&mut *calls.lock());
        got.sort_unstable();
        assert_eq!(got, want);
    };
    let engine = crate::promql::Engine::new(fanout.clone(), crate::QueryConfig::default());
    // A selector an aggregation could read in parts: counted and read in the same call
    // (`select_within`), beside the histogram read.
    assert_eq!(value(engine.instant_query("sum(m)", 60_000, None).await), [6.0]);
    called(&[
        "select_histograms",
        "select_histograms",
        "select_within",
        "select_within",
    ]);
    // Any other raw selector: read at once, beside the histogram read.
    assert_eq!(value(engine.instant_query("avg(m) + 1", 60_000, None).await), [4.0]);
    called(&["select", "select", "select_histograms", "select_histograms"]);
    // Past the budget, nothing is read with the count: the series are sized and read in parts.
    let tiny = crate::QueryConfig {
        part_samples: 1,
        ..crate::QueryConfig::default()
    };
    let engine = crate::promql::Engine::new(fanout, tiny);
    assert_eq!(value(engine.instant_query("sum(m)", 60_000, None).await), [6.0]);
    called(&[
        "select",
        "select",
        "select",
        "select",
        "select_histograms",
        "select_histograms",
        "select_within",
        "select_within",
        "series_samples",
        "series_samples",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ingester_is_a_warning_or_an_error_as_configured() {
    let up = serve(
        MemSource::new(vec![series("m", "c1", &[(1, 1.0)])]),
        MemLogSource::new(Vec::new()),
        Duration::ZERO,
    )
    .await;
    let down = closed_port().await;
    let slow = serve(
        MemSource::default(),
        MemLogSource::new(Vec::new()),
        Duration::from_secs(30),
    )
    .await;

    let fanout = Fanout::new(config(
        vec![up.clone(), down.clone(), slow.clone()],
        IngesterFailure::Warn,
    ))
    .await;
    let (got, warnings) = collect_warnings(fanout.select(&select("m"))).await;
    assert_eq!(got.unwrap().len(), 1, "the answering ingester's data is there");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains(&down)), "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&slow) && w.contains("query.ingester_timeout")),
        "{warnings:?}"
    );

    let fanout = Fanout::new(config(vec![up, down.clone()], IngesterFailure::Fail)).await;
    let (got, _) = collect_warnings(fanout.label_names(&select("m"))).await;
    match got {
        Err(Error::Unavailable { peer, .. }) => assert_eq!(peer, down),
        other => panic!("expected the down ingester's error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_limit_of_an_ingester_fails_the_query_even_when_warning() {
    #[derive(Debug)]
    struct OverLimit;
    #[async_trait]
    impl Source for OverLimit {
        async fn select(&self, _: &SelectRequest) -> Result<Vec<Series>> {
            Err(Error::TooManySamples { limit: 0 })
        }
        async fn series(&self, _: &SelectRequest) -> Result<Vec<Labels>> {
            Ok(Vec::new())
        }
    }
    let up = serve(OverLimit, MemLogSource::new(Vec::new()), Duration::ZERO).await;
    let fanout = Fanout::new(config(vec![up], IngesterFailure::Warn)).await;
    let (got, warnings) = collect_warnings(fanout.select(&select("m"))).await;
    assert!(matches!(got, Err(Error::TooManySamples { limit: 0 })), "{got:?}");
    assert!(warnings.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_names_resolve_to_every_address() {
    let up = serve(
        MemSource::new(vec![series("m", "c1", &[(1, 1.0)])]),
        MemLogSource::new(Vec::new()),
        Duration::ZERO,
    )
    .await;
    let port = up.rsplit(':').next().unwrap();
    let fanout = Fanout::new(config(vec![format!("dns+localhost:{port}")], IngesterFailure::Fail)).await;
    assert!(
        fanout
            .ingesters()
            .iter()
            .any(|i| i == &format!("http://127.0.0.1:{port}")),
        "{:?}",
        fanout.ingesters()
    );
    // Whatever else localhost resolves to (::1, where nothing listens), the IPv4 answer is read.
    let fanout = Fanout::new(FanoutConfig {
        failure: IngesterFailure::Warn,
        ..config(vec![format!("dns+localhost:{port}")], IngesterFailure::Warn)
    })
    .await;
    let (got, _) = collect_warnings(fanout.select(&select("m"))).await;
    assert_eq!(got.unwrap().len(), 1);

    let fanout = Fanout::new(config(
        vec!["dns+no-such-host.invalid:9201".into()],
        IngesterFailure::Warn,
    ))
    .await;
    let (got, warnings) = collect_warnings(fanout.select(&select("m"))).await;
    assert!(got.unwrap().is_empty());
    assert!(warnings[0].contains("no ingester found"), "{warnings:?}");
}
