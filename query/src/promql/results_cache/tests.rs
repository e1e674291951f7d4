use std::sync::Arc;

use tributary_storage::scope::ClusterScope;
use tributary_storage::types::{Sample, Series};

use super::*;
use crate::config::QueryConfig;
use crate::promql::Engine;
use crate::test_source::{VecSource, parse_labels};

const MIN: i64 = 60_000;
/// 2026-01-01T00:00:00Z: settled long ago.
const T0: i64 = 1_767_225_600_000;

/// Two clusters' counters, one sample a minute over a day.
fn series() -> Vec<Series> {
    ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let samples = (0..1440)
                .map(|m| Sample::new(T0 + m * MIN, (m * (i as i64 + 1)) as f64))
                .collect();
            Series::new(parse_labels(&format!(r#"requests_total{{cluster="{c}"}}"#)), samples)
        })
        .collect()
}

fn engines() -> (Engine, Engine) {
    let cached = QueryConfig {
        results_cache: ResultsCacheConfig {
            max_bytes: 1 << 20,
            ..ResultsCacheConfig::default()
        },
        ..QueryConfig::default()
    };
    let source = Arc::new(VecSource::new(series()));
    (
        Engine::new(source.clone(), cached),
        Engine::new(source, QueryConfig::default()),
    )
}

const Q: &str = "sum by (cluster) (rate(requests_total[10m]))";

async fn range(e: &Engine, q: &str, start: i64, end: i64) -> Value {
    e.range_query(q, start, end, 5 * MIN, None).await.unwrap().value
}

/// The cached steps stand for the same steps of later queries: a repeat is a hit, a window
/// slid forward evaluates only its new steps, and every answer equals the uncached engine's.
#[tokio::test]
async fn cached_steps_answer_like_evaluated_ones() {
    let (cached, plain) = engines();
    let (start, end) = (T0 + 60 * MIN, T0 + 600 * MIN);
    let first = range(&cached, Q, start, end).await;
    assert_eq!(first, range(&plain, Q, start, end).await);
    assert_eq!(range(&cached, Q, start, end).await, first);
    // Slid by 7 steps, and wider: the old steps from the cache, the new ones evaluated.
    let (start2, end2) = (start + 35 * MIN, end + 300 * MIN);
    let slid = range(&cached, Q, start2, end2).await;
    assert_eq!(slid, range(&plain, Q, start2, end2).await);
    let m = cached.metrics();
    assert_eq!(
        (
            m.results_cache_lookups("miss"),
            m.results_cache_lookups("hit"),
            m.results_cache_lookups("partial")
        ),
        (1, 1, 1)
    );
    // A query starting before the entry, or on another phase, evaluates everything.
    let earlier = range(&cached, Q, start - 5 * MIN, end).await;
    assert_eq!(earlier, range(&plain, Q, start - 5 * MIN, end).await);
    let shifted = range(&cached, Q, start + MIN, end).await;
    assert_eq!(shifted, range(&plain, Q, start + MIN, end).await);
    assert_eq!(m.results_cache_lookups("miss"), 3);
}

/// What depends on the range is never cached; steps newer than `freshness` are never kept;
/// a scoped engine has entries of its own.
#[tokio::test]
async fn range_dependent_queries_fresh_steps_and_other_scopes_are_apart() {
    let (cached, plain) = engines();
    let (start, end) = (T0 + 60 * MIN, T0 + 600 * MIN);
    for q in [
        "sum(rate(requests_total[10m] @ end()))",
        "sum(rate(requests_total[step() * 2]))",
    ] {
        range(&cached, q, start, end).await;
        assert_eq!(
            range(&cached, q, start + 5 * MIN, end).await,
            range(&plain, q, start + 5 * MIN, end).await,
            "{q}"
        );
    }
    assert_eq!(
        cached.metrics().results_cache_lookups("miss"),
        0,
        "not looked up at all"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let cache = cached.results.as_ref().unwrap();
    let settled = cache.settled_until(now - 60 * MIN, now, 5 * MIN).unwrap();
    assert!(
        settled <= now - 10 * MIN && settled > now - 15 * MIN,
        "{settled} vs {now}"
    );
    assert_eq!(cache.settled_until(now - MIN, now, 5 * MIN), None);

    range(&cached, Q, start, end).await;
    let only_a = cached.scoped(&ClusterScope::new(vec!["a".into()]));
    let Value::Matrix(a) = range(&only_a, Q, start, end).await else {
        panic!("a matrix")
    };
    assert_eq!(a.len(), 1, "the scope's own answer, not the unscoped entry");
    assert_eq!(only_a.metrics().results_cache_lookups("hit"), 0);
}

/// Past `max_bytes` the oldest entries go; an answer larger than the cache is not kept.
#[test]
fn the_oldest_entries_are_evicted_past_max_bytes() {
    let cache = ResultsCache::new(&ResultsCacheConfig {
        max_bytes: 1_500,
        ..ResultsCacheConfig::default()
    })
    .unwrap();
    let matrix = |points: i64| {
        Value::Matrix(vec![Series::new(
            parse_labels("x"),
            (0..points).map(|i| Sample::new(i * MIN, 1.0)).collect(),
        )])
    };
    let key = |q: &str| Key::of(q, 0, MIN, "").unwrap();
    let none = Annotations::default();
    cache.put(key("a"), 0, 50 * MIN, &matrix(51), &none, Tier::Raw);
    cache.put(key("b"), 0, 50 * MIN, &matrix(51), &none, Tier::Raw);
    assert!(cache.get(&key("a"), 0).is_none(), "evicted for b");
    assert_eq!(cache.get(&key("b"), 0).unwrap().series[0].samples.len(), 51);
    cache.put(key("c"), 0, 500 * MIN, &matrix(501), &none, Tier::Raw);
    assert!(cache.get(&key("c"), 0).is_none(), "larger than the cache");
    let warned = Annotations {
        warnings: vec!["an ingester did not answer".into()],
        infos: Vec::new(),
    };
    cache.put(key("d"), 0, 50 * MIN, &matrix(51), &warned, Tier::Raw);
    assert!(cache.get(&key("d"), 0).is_none(), "answers with warnings are not kept");
}
