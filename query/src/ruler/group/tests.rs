use std::sync::Arc;

use tributary_storage::types::{Sample, Series, is_stale_nan};

use super::*;
use crate::QueryConfig;
use crate::logql::mem::MemLogSource;
use crate::ruler::tests::Kept;
use crate::test_source::{VecSource, parse_labels};

fn context(series: Vec<Series>) -> (EvalContext, Arc<Kept>) {
    let sink = Arc::new(Kept::default());
    let ctx = EvalContext {
        cfg: RulerConfig::default(),
        engine: Arc::new(Engine::new(Arc::new(VecSource::new(series)), QueryConfig::default())),
        logql: Arc::new(LogqlEngine::new(
            Arc::new(MemLogSource::new(Vec::new())),
            crate::logql::LogqlConfig::default(),
        )),
        sink: sink.clone(),
        notifier: Notifier::new(
            Vec::new(),
            notifier::client(&RulerConfig::default()).expect("builds"),
            Default::default(),
        ),
        metrics: RulerMetrics::default(),
    };
    (ctx, sink)
}

fn recording(record: &str, expr: &str, limit: usize) -> Group {
    let spec = GroupSpec {
        file: "f.yml".into(),
        name: "g".into(),
        language: Language::Promql,
        interval_ms: Some(60_000),
        limit,
        query_offset_ms: 0,
        rules: vec![RuleSpec {
            kind: RuleKind::Recording { record: record.into() },
            expr: expr.into(),
            labels: BTreeMap::from([("source".to_string(), "ruler".to_string())]),
        }],
    };
    Group::new(spec, &RulerConfig::default())
}

fn input() -> Vec<Series> {
    ["c1", "c2"]
        .iter()
        .map(|c| {
            Series::new(
                parse_labels(&format!(r#"errors{{cluster="{c}"}}"#)),
                vec![Sample::new(0, 1.0), Sample::new(120_000, 2.0)],
            )
        })
        .collect()
}

#[test]
fn evaluation_times_are_multiples_of_the_interval_shifted_by_the_group() {
    assert_eq!(next_evaluation(10_000, 60_000, 5_000), 65_000);
    assert_eq!(next_evaluation(65_000, 60_000, 5_000), 65_000, "on time is now");
    assert_eq!(next_evaluation(65_001, 60_000, 5_000), 125_000);
    assert_eq!(next_evaluation(3_000, 60_000, 5_000), 5_000);
    let g = recording("x", "1", 0);
    let t = g.next_evaluation(1_000_000);
    assert!((1_000_000..1_060_000).contains(&t));
    assert_eq!((t - g.offset_ms()) % 60_000, 0);
    assert_eq!(g.next_evaluation(t + 1), t + 60_000, "the same phase every interval");
}

#[tokio::test]
async fn recording_output_keeps_the_cluster_or_gets_the_default_and_ends_with_a_stale_marker() {
    let (ctx, sink) = context(input());
    let kept = recording("cluster:errors", "errors * 2", 0);
    evaluate(&kept, &ctx, 60_000).await;
    let got: Vec<_> = sink
        .0
        .lock()
        .drain(..)
        .map(|s| (s.labels, s.timestamp_ms, s.value))
        .collect();
    assert_eq!(
        got.iter().map(|(l, ..)| l.clone()).collect::<Vec<_>>(),
        [
            parse_labels(r#"cluster:errors{cluster="c1",source="ruler"}"#),
            parse_labels(r#"cluster:errors{cluster="c2",source="ruler"}"#)
        ]
    );
    assert!(got.iter().all(|(_, t, v)| *t == 60_000 && *v == 2.0));

    let summed = recording("fleet:errors", "sum(errors)", 0);
    evaluate(&summed, &ctx, 60_000).await;
    let got = sink.0.lock().drain(..).collect::<Vec<_>>();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].labels,
        parse_labels(r#"fleet:errors{cluster="fleet",source="ruler"}"#)
    );
    assert_eq!(got[0].value, 2.0);

    // The input is gone (past the lookback): the output series ends with a staleness marker.
    evaluate(&kept, &ctx, 60_000 + 120_000 + 300_001).await;
    let got = sink.0.lock().drain(..).collect::<Vec<_>>();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|s| is_stale_nan(s.value)));
    assert_eq!(kept.state.lock().rules[0].last_result, Some(Ok(())));
}

#[tokio::test]
async fn a_rule_over_its_limit_fails_and_writes_nothing() {
    let (ctx, sink) = context(input());
    let g = recording("x", "errors", 1);
    evaluate(&g, &ctx, 60_000).await;
    assert!(sink.0.lock().is_empty());
    {
        let state = g.state.lock();
        assert_eq!(
            state.rules[0].last_result,
            Some(Err("exceeded limit of 1 with 2 series".to_string()))
        );
        assert_eq!(state.last_evaluation_ms, Some(60_000));
    }
    let g = recording("x", "errors", 2);
    evaluate(&g, &ctx, 60_000).await;
    assert_eq!(sink.0.lock().len(), 2, "at the limit is fine");
}

#[tokio::test]
async fn an_alerting_rule_writes_alerts_series_once_restored() {
    let (ctx, sink) = context(input());
    let spec = GroupSpec {
        file: "f.yml".into(),
        name: "g".into(),
        language: Language::Promql,
        interval_ms: None,
        limit: 0,
        query_offset_ms: 10_000,
        rules: vec![RuleSpec {
            kind: RuleKind::Alerting {
                alert: "High".into(),
                for_ms: 0,
                keep_firing_for_ms: 0,
                annotations: BTreeMap::new(),
            },
            expr: r#"errors{cluster="c1"} > 0"#.into(),
            labels: BTreeMap::new(),
        }],
    };
    let g = Group::new(spec, &ctx.cfg);
    assert_eq!(g.interval_ms, 60_000, "ruler.evaluation_interval");
    g.state.lock().rules[0].alerts.restored = true;
    evaluate(&g, &ctx, 70_000).await;
    let got = sink.0.lock().drain(..).collect::<Vec<_>>();
    let mut names: Vec<_> = got.iter().map(|s| s.labels.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            parse_labels(r#"ALERTS{alertname="High",alertstate="firing",cluster="c1"}"#),
            parse_labels(r#"ALERTS_FOR_STATE{alertname="High",cluster="c1"}"#),
        ]
    );
    assert!(
        got.iter().all(|s| s.timestamp_ms == 60_000),
        "written at the time minus query_offset"
    );
}

/// A sink that takes `delay` over every write, keeping the timestamps it was given.
#[derive(Debug)]
struct Slow {
    delay: std::time::Duration,
    timestamps: parking_lot::Mutex<Vec<TimestampMs>>,
}

#[async_trait::async_trait]
impl RuleSink for Slow {
    async fn write(&self, samples: Vec<RuleSample>) -> std::result::Result<(), String> {
        tokio::time::sleep(self.delay).await;
        self.timestamps.lock().extend(samples.iter().map(|s| s.timestamp_ms));
        Ok(())
    }
}

#[tokio::test]
async fn an_overrunning_group_skips_and_counts_the_iterations_it_missed() {
    // Real time (the schedule follows the wall clock, as Prometheus's does): a 100 ms interval
    // and a write taking 350 ms swallow at least two iterations each time, in about a second.
    let sink = Arc::new(Slow {
        delay: std::time::Duration::from_millis(350),
        timestamps: parking_lot::Mutex::new(Vec::new()),
    });
    let (mut ctx, _) = context(Vec::new());
    ctx.sink = sink.clone();
    let mut spec = recording("x", "vector(1)", 0).spec;
    spec.interval_ms = Some(100);
    let group = Arc::new(Group::new(spec, &RulerConfig::default()));
    let label = GroupLabel::new(&group.key.label());
    let metrics = ctx.metrics.clone();
    let task = tokio::spawn(schedule(group.clone(), ctx, false));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while metrics.iterations.get_or_create(&label).get() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three iterations did not run");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    let iterations = metrics.iterations.get_or_create(&label).get();
    let missed = metrics.missed.get_or_create(&label).get();
    let written = sink.timestamps.lock().clone();
    assert!(written.len() >= 3, "{written:?}");
    assert!(missed >= 2 * iterations, "{missed} missed over {iterations} iterations");
    for pair in written.windows(2) {
        let gap = pair[1] - pair[0];
        assert_eq!(gap % 100, 0, "evaluations stay on the group's phase: {written:?}");
        assert!(
            gap >= 300,
            "the swallowed iterations are skipped, not caught up: {written:?}"
        );
    }
    // Every scheduled time is an iteration run or one counted as missed.
    let first = written[0];
    let last = *written.last().expect("some");
    let slots = (last - first) / 100 + 1;
    assert!(
        slots <= (iterations + missed) as i64,
        "{written:?}: {iterations} run, {missed} missed"
    );
}
