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
        notifier: Notifier::new(Vec::new(), std::time::Duration::from_secs(1), Default::default()),
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
