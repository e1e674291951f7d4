use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::read::{LogRequest, LogSource, SelectRequest, Source};
use crate::test_util::histogram_source::histogram_source_conformance;
use crate::test_util::{
    MemChunks, MemLogSource, MemSource, MemTraceSource, log_source_conformance, source_conformance,
    trace_source_conformance,
};
use crate::types::STALE_NAN_BITS;

/// Every call goes through the whole wire format: the call as JSON and back, the answer
/// encoded by [`answer`] and decoded by the client, errors as [`WireError`] and back.
#[derive(Debug)]
struct Loopback {
    source: MemSource,
    logs: MemLogSource,
    traces: MemTraceSource,
}

#[async_trait]
impl Transport for Loopback {
    async fn call(&self, call: &Call) -> Result<bytes::Bytes> {
        let call = Call::from_json(&call.to_json())?;
        match answer(&call, &self.source, &self.logs, &self.traces).await {
            Ok(a) => Ok(a.body),
            Err(e) => {
                let (_, wire) = WireError::of(&e);
                let wire: WireError = decode::json(&serde_json::to_vec(&wire).unwrap())?;
                Err(wire.into_error("loopback"))
            }
        }
    }
}

fn remote(source: MemSource, logs: MemLogSource) -> Arc<RemoteSource<Loopback>> {
    Arc::new(RemoteSource::new(Loopback {
        source,
        logs,
        traces: MemTraceSource::default(),
    }))
}

#[tokio::test]
async fn the_wire_passes_the_trace_source_conformance_suite() {
    trace_source_conformance(|spans| async move {
        Arc::new(RemoteSource::new(Loopback {
            source: MemSource::default(),
            logs: MemLogSource::new(Vec::new()),
            traces: MemTraceSource::new(spans),
        })) as Arc<dyn crate::read::TraceSource>
    })
    .await;
}

#[tokio::test]
async fn the_wire_passes_the_source_conformance_suite() {
    source_conformance(|series| async move {
        remote(MemSource::new(series), MemLogSource::new(Vec::new())) as Arc<dyn Source>
    })
    .await;
}

/// The same suite with the series shipped as XOR chunks: cut to the range by the client, and
/// (scrambled) sorted with the last write of a timestamp kept.
#[tokio::test]
async fn the_wire_passes_the_source_conformance_suite_in_chunks() {
    for chunks in [MemChunks::Sorted, MemChunks::Scrambled] {
        source_conformance(|series| async move {
            remote(
                MemSource::new(series).with_chunks(chunks),
                MemLogSource::new(Vec::new()),
            ) as Arc<dyn Source>
        })
        .await;
    }
}

/// A client asks for chunks except for `newest_only` reads; a server answers them only when
/// asked and its source holds them, and the client reads either answer.
#[tokio::test]
async fn select_answers_chunks_only_when_asked_and_held() {
    let series = vec![Series::new(
        Labels::from_pairs(&[("__name__", "up")]),
        (0..300).map(|i| Sample::new(i * 15_000, i as f64)).collect(),
    )];
    let call = |chunks: bool, newest_only: bool| {
        Call::Select(WireSelect {
            matchers: vec![("__name__".into(), "=".into(), "up".into())],
            start: 1_000_000,
            end: 2_000_000,
            only: None,
            newest_only,
            chunks,
        })
    };
    let columns = |a: &Answer| {
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(&a.body), None).unwrap();
        reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    let (logs, traces) = (MemLogSource::new(Vec::new()), MemTraceSource::default());
    let held = MemSource::new(series.clone()).with_chunks(MemChunks::Sorted);
    let plain = MemSource::new(series);
    let a = answer(&call(true, false), &held, &logs, &traces).await.unwrap();
    assert_eq!(columns(&a), ["names", "values", "chunks", "sorted"]);
    let got = decode::series(a.body.clone(), TimeRange::new(1_000_000, 2_000_000)).unwrap();
    assert_eq!(got[0].samples.first().unwrap().timestamp, 1_005_000);
    assert_eq!(got[0].samples.last().unwrap().timestamp, 1_995_000);
    assert_eq!(got[0].samples.len(), 67);
    for (source, chunks) in [(&held, false), (&plain, true)] {
        let a = answer(&call(chunks, false), source, &logs, &traces).await.unwrap();
        assert_eq!(columns(&a), ["names", "values", "timestamps", "samples"]);
    }
    // The old server's view of a new call: the unknown field is ignored.
    let old: serde_json::Value = serde_json::from_slice(&call(true, false).to_json()).unwrap();
    assert_eq!(old["chunks"], true);
    assert!(Call::from_json(br#"{"method":"select","matchers":[],"start":0,"end":1,"future":1}"#).is_ok());
    // The client: chunks for a range read, samples for `newest_only`.
    let remote = remote(held.clone(), MemLogSource::new(Vec::new()));
    let req = SelectRequest::new(
        vec![Matcher::new(MatchOp::Equal, "__name__", "up").unwrap()],
        TimeRange::new(1_000_000, 2_000_000),
    );
    assert_eq!(remote.select(&req).await.unwrap(), plain.select(&req).await.unwrap());
}

#[tokio::test]
async fn the_wire_passes_the_histogram_conformance_suite() {
    histogram_source_conformance(|data| async move {
        remote(
            MemSource::default().with_histograms(data),
            MemLogSource::new(Vec::new()),
        ) as Arc<dyn Source>
    })
    .await;
}

#[tokio::test]
async fn the_wire_passes_the_log_source_conformance_suite() {
    log_source_conformance(|records| async move {
        remote(MemSource::default(), MemLogSource::new(records)) as Arc<dyn LogSource>
    })
    .await;
}

#[tokio::test]
async fn floats_keep_their_bits_and_empty_answers_decode() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let labels = Labels::from_pairs(&[("__name__", "m"), ("cluster", "c")]);
    let series = Series::new(
        labels.clone(),
        vec![
            Sample::new(1, stale),
            Sample::new(2, f64::INFINITY),
            Sample::new(3, -0.0),
        ],
    );
    let r = remote(MemSource::new(vec![series]), MemLogSource::new(Vec::new()));
    let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::new(0, 10));
    let got = r.select(&req).await.unwrap();
    let bits: Vec<u64> = got[0].samples.iter().map(|s| s.value.to_bits()).collect();
    assert_eq!(bits, vec![STALE_NAN_BITS, f64::INFINITY.to_bits(), (-0.0f64).to_bits()]);
    assert_eq!(got[0].labels, labels);
    let none = SelectRequest::new(vec![Matcher::equal("__name__", "absent")], TimeRange::new(0, 10));
    assert!(r.select(&none).await.unwrap().is_empty());

    let histogram = HistogramSeries {
        labels: labels.clone(),
        samples: vec![HistogramSample {
            timestamp: 5,
            count: 3.0,
            sum: stale,
            schema: -53,
            custom_values: vec![1.0, f64::INFINITY],
            positive_spans: vec![BucketSpan { offset: -2, length: 2 }],
            positive_buckets: vec![1.0, 2.0],
            reset_hint: ResetHint::Gauge,
            ..Default::default()
        }],
    };
    let r = remote(
        MemSource::default().with_histograms(vec![histogram.clone()]),
        MemLogSource::new(Vec::new()),
    );
    let got = r.select_histograms(&req).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples[0].sum.to_bits(), STALE_NAN_BITS);
    let (mut a, mut b) = (got[0].samples[0].clone(), histogram.samples[0].clone());
    (a.sum, b.sum) = (0.0, 0.0);
    assert_eq!(a, b);
}

/// Several batches, as samples and as chunks: every series arrives, sorted by labels (sent in
/// `i`'s numeric order, which is not the labels' order: "10" sorts before "2").
#[tokio::test]
async fn many_series_span_several_batches_and_arrive_sorted() {
    let series: Vec<Series> = (0..BATCH_ROWS * 2 + 3)
        .map(|i| {
            Series::new(
                Labels::from_pairs(&[("__name__", "m"), ("i", &i.to_string())]),
                vec![Sample::new(i as i64, i as f64)],
            )
        })
        .collect();
    let n = series.len();
    for source in [
        MemSource::new(series.clone()),
        MemSource::new(series).with_chunks(MemChunks::Scrambled),
    ] {
        let r = remote(source, MemLogSource::new(Vec::new()));
        let req = SelectRequest::new(vec![Matcher::equal("__name__", "m")], TimeRange::new(0, i64::MAX));
        let got = r.select(&req).await.unwrap();
        assert_eq!(got.len(), n);
        assert!(
            got.iter()
                .all(|s| s.samples.len() == 1 && s.samples[0].value == s.samples[0].timestamp as f64)
        );
        assert!(got.is_sorted_by(|a, b| a.labels < b.labels));
    }
}

#[tokio::test]
async fn a_malformed_call_is_a_bad_request() {
    let source = MemSource::default();
    let logs = MemLogSource::new(Vec::new());
    assert!(matches!(
        Call::from_json(b"{\"method\":\"drop_table\"}"),
        Err(Error::InvalidData { .. })
    ));
    let call = Call::Select(WireSelect {
        matchers: vec![("a".into(), "~~".into(), "b".into())],
        start: 0,
        end: 1,
        only: None,
        newest_only: false,
        chunks: false,
    });
    let e = answer(&call, &source, &logs, &MemTraceSource::default())
        .await
        .unwrap_err();
    assert_eq!(WireError::of(&e).0, 400, "{e}");
    let call = Call::SelectLogs(WireLogs {
        matchers: vec![("a".into(), "=~".into(), "(".into())],
        start: 0,
        end: 1,
        line_hints: Vec::new(),
        forward: true,
        limit: None,
    });
    let e = answer(&call, &source, &logs, &MemTraceSource::default())
        .await
        .unwrap_err();
    assert_eq!(WireError::of(&e).0, 400, "{e}");
}

#[test]
fn the_sample_limit_crosses_the_wire_as_itself() {
    let (status, wire) = WireError::of(&Error::TooManySamples { limit: 7 });
    assert_eq!(status, 422);
    assert!(matches!(wire.into_error("x"), Error::TooManySamples { limit: 7 }));
    let (status, wire) = WireError::of(&Error::Task {
        op: "t",
        reason: "r".into(),
    });
    assert_eq!(status, 500);
    assert!(matches!(wire.into_error("x:1"), Error::Unavailable { peer, .. } if peer == "x:1"));
}

#[test]
fn a_log_request_round_trips() {
    let req = LogRequest {
        matchers: vec![Matcher::equal("app", "a")],
        start: -5,
        end: 9,
        line_hints: vec![LineHint::Contains("x".into()), LineHint::NotContains("y".into())],
        direction: Direction::Forward,
        limit: Some(3),
    };
    let back = WireLogs::of(&req).request().unwrap();
    assert_eq!(back.matchers, req.matchers);
    assert_eq!(
        (back.start, back.end, back.limit, back.direction),
        (-5, 9, Some(3), Direction::Forward)
    );
    assert_eq!(back.line_hints, req.line_hints);
}

/// The hints of a sample read cross the wire: `only` and `newest_only` (an ingester answers an
/// instant query's series from its encoders, not by shipping the lookback window); an older
/// querier's call without `newest_only` decodes as a full read.
#[test]
fn a_select_request_round_trips_with_its_hints() {
    let only: SeriesIdSet = [SeriesId(3), SeriesId(9)].into_iter().collect();
    let req = SelectRequest {
        newest_only: true,
        ..SelectRequest::new(vec![Matcher::equal("job", "api")], TimeRange::new(-5, 9)).only(Arc::new(only))
    };
    let wire = WireSelect::of(&req);
    let back = wire.request().unwrap();
    assert_eq!(
        (back.matchers, back.range, back.newest_only),
        (req.matchers.clone(), req.range, true)
    );
    assert_eq!(back.only.as_deref().map(|s| s.len()), Some(2));
    let json = serde_json::to_value(&wire).unwrap();
    assert_eq!(json["newest_only"], true);
    let mut older = json;
    older.as_object_mut().unwrap().remove("newest_only");
    let older: WireSelect = serde_json::from_value(older).unwrap();
    assert!(!older.request().unwrap().newest_only);
}

fn label_lists(rows: &[&[(&str, &str)]]) -> (ListArray, ListArray) {
    let (mut names, mut values) = (
        ListBuilder::new(StringBuilder::new()),
        ListBuilder::new(StringBuilder::new()),
    );
    for row in rows {
        for (n, v) in *row {
            names.values().append_value(n);
            values.values().append_value(v);
        }
        names.append(true);
        values.append(true);
    }
    (names.finish(), values.finish())
}

#[test]
fn label_sets_decode_as_sent_or_normalised() {
    let sorted: &[(&str, &str)] = &[("__name__", "up"), ("cluster", "a"), ("job", "x")];
    let unsorted: &[(&str, &str)] = &[("job", "x"), ("__name__", "up"), ("empty", ""), ("job", "y")];
    let (names, values) = label_lists(&[sorted, unsorted, &[]]);
    assert_eq!(
        decode::LabelColumns::of(&names, &values).unwrap().at(0).unwrap(),
        Labels::from_pairs(sorted)
    );
    assert_eq!(
        decode::LabelColumns::of(&names, &values).unwrap().at(1).unwrap(),
        Labels::from_pairs(&[("__name__", "up"), ("job", "y")])
    );
    assert!(
        decode::LabelColumns::of(&names, &values)
            .unwrap()
            .at(2)
            .unwrap()
            .is_empty()
    );
}
