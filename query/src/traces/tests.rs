use std::sync::Arc;

use tributary_storage::read::TraceSource;
use tributary_storage::signals::Span;
use tributary_storage::test_util::trace_source::{SUITE_START_NS, suite_spans, trace_id};
use tributary_storage::test_util::{MemTraceSource, trace_source_conformance};

use super::*;

#[tokio::test]
async fn merged_source_passes_the_trace_source_conformance_suite() {
    trace_source_conformance(|spans: Vec<Span>| async move {
        // Split across two sources with an overlap (a span in the head and in a flushed file).
        let half = spans.len() / 2;
        let a = MemTraceSource::new(spans[..half + 5].to_vec());
        let b = MemTraceSource::new(spans[half..].to_vec());
        Arc::new(MergedTraceSource::new(vec![Arc::new(a), Arc::new(b)])) as Arc<dyn TraceSource>
    })
    .await;
}

fn engine() -> TraceEngine {
    engine_with(TraceConfig::default())
}

#[tokio::test]
async fn search_finds_traces_by_traceql_newest_first_under_the_scope() {
    let all = suite_search;
    let found = engine()
        .search(&all(r#"{ resource.service.name = "cart" && status = error }"#, 100))
        .await
        .unwrap();
    assert!(!found.is_empty());
    for t in &found {
        assert!(
            t.matched
                .iter()
                .all(|&i| t.spans[i].service_name == "cart" && t.spans[i].status_code == 2)
        );
        assert!(t.spans.iter().all(|s| s.trace_id == t.trace_id));
    }
    let starts: Vec<i64> = found.iter().map(|t| t.bounds().0).collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(engine().search(&all("{}", 3)).await.unwrap().len(), 3);

    let scoped = engine().scoped(&ClusterScope::new(vec!["dev".into()]));
    let found = scoped.search(&all("{}", 100)).await.unwrap();
    assert!(!found.is_empty());
    assert!(found.iter().all(|t| t.spans.iter().all(|s| s.cluster == "dev")));
    // A trace of another cluster is not found by id under the scope.
    let other = suite_spans().into_iter().find(|s| s.cluster != "dev").unwrap();
    assert!(matches!(
        scoped.trace(other.trace_id, i64::MIN, i64::MAX).await,
        Err(Error::NotFound(_))
    ));
    // Trace 3: 4 spans and the suite's look-alike of one.
    assert_eq!(engine().trace(trace_id(3), i64::MIN, i64::MAX).await.unwrap().len(), 5);
}

#[tokio::test]
async fn tags_and_values_list_what_the_spans_carry() {
    let (start, end) = (SUITE_START_NS, SUITE_START_NS + 4 * 3_600_000_000_000);
    let names = engine().tag_names(start, end).await.unwrap();
    assert!(names["resource"].contains("service.name"));
    assert!(names["span"].contains("http.route"));
    let services = engine().tag_values("resource.service.name", start, end).await.unwrap();
    assert_eq!(
        services.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        vec!["cart", "checkout"]
    );
    let statuses = engine().tag_values("status", start, end).await.unwrap();
    assert_eq!(statuses.len(), 3);
    assert_eq!(
        engine()
            .services(start, end)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["cart", "checkout"]
    );
    assert!(!engine().operations("cart", start, end).await.unwrap().is_empty());
}

#[test]
fn a_trace_renders_as_otlp_grouped_by_resource_and_scope() {
    let spans: Vec<Span> = suite_spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id(3))
        .collect();
    let data = otlp::traces_data(&spans);
    assert_eq!(data.resource_spans.len(), 1);
    let rs = &data.resource_spans[0];
    assert!(
        rs.resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .any(|kv| kv.key == "service.name")
    );
    let got: Vec<_> = rs.scope_spans.iter().flat_map(|s| s.spans.iter()).collect();
    assert_eq!(got.len(), spans.len());
    let root = got.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    assert_eq!(root.events.len(), 1);
    assert_eq!(root.trace_state, "k=v");
    assert_eq!(
        root.end_time_unix_nano - root.start_time_unix_nano,
        spans[0].duration as u64
    );
}

fn engine_with(cfg: TraceConfig) -> TraceEngine {
    TraceEngine::new(
        Arc::new(MemTraceSource::new(suite_spans())),
        cfg,
        QueryMetrics::default(),
    )
}

fn suite_search(query: &str, limit: usize) -> Search {
    Search {
        query: query.into(),
        start: SUITE_START_NS,
        end: SUITE_START_NS + 4 * 3_600_000_000_000,
        limit,
        min_duration: None,
        max_duration: None,
    }
}

/// A read holds at most `max_spans`: a lookup over it fails naming the option; a search reads
/// hour by hour, halving an hour with too many matches, and still finds the newest traces; a
/// listing holds no span at all.
#[tokio::test]
async fn trace_reads_hold_at_most_max_spans() {
    let tight = engine_with(TraceConfig {
        max_spans: 4,
        ..TraceConfig::default()
    });
    // Trace 3 has 5 spans.
    let e = tight.trace(trace_id(3), i64::MIN, i64::MAX).await.unwrap_err();
    assert!(matches!(e, Error::TooManySpans { limit: 4 }), "{e}");
    assert!(e.to_string().contains("query.traces.max_spans"), "{e}");
    // Each hour holds ~13 traces (over 4 spans): the search halves down to windows that fit.
    let newest = engine().search(&suite_search("{}", 3)).await.unwrap();
    let cut = engine_with(TraceConfig {
        max_spans: 12,
        ..TraceConfig::default()
    });
    let found = cut.search(&suite_search("{}", 3)).await.unwrap();
    let ids = |f: &[FoundTrace]| f.iter().map(|t| t.trace_id).collect::<Vec<_>>();
    assert_eq!(ids(&found), ids(&newest), "the same newest traces");
    // Listings visit every span and keep none.
    let one = engine_with(TraceConfig {
        max_spans: 1,
        ..TraceConfig::default()
    });
    let (start, end) = (SUITE_START_NS, SUITE_START_NS + 4 * 3_600_000_000_000);
    assert_eq!(one.services(start, end).await.unwrap().len(), 2);
    assert_eq!(one.tag_values("status", start, end).await.unwrap().len(), 3);
    assert!(one.tag_names(start, end).await.unwrap()["span"].contains("http.route"));
    assert!(!one.operations("cart", start, end).await.unwrap().is_empty());
}

/// A token's `max_samples` bounds its trace reads and its refusal names the token; another
/// token's reads are unaffected.
#[tokio::test]
async fn a_tokens_limits_bound_its_trace_reads() {
    use tributary_storage::auth::QueryLimits;
    let id = Identity {
        name: "grafana".into(),
        query: QueryLimits {
            max_samples: Some(4),
            ..QueryLimits::default()
        },
        ..Identity::default()
    };
    let e = engine()
        .limited(&id)
        .trace(trace_id(3), i64::MIN, i64::MAX)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(r#"token "grafana": max_samples = 4"#), "{e}");
    assert_eq!(
        engine()
            .limited(&Identity::default())
            .trace(trace_id(3), i64::MIN, i64::MAX)
            .await
            .unwrap()
            .len(),
        5
    );
}

/// Generated TraceQL cannot overflow the stack: nesting past `max_query_depth` is refused
/// before parsing, a long flat chain of conditions parses and matches, text past
/// `max_query_bytes` is refused naming the option.
#[tokio::test]
async fn deep_or_long_traceql_is_refused_or_answered_never_a_crash() {
    let deep = format!("{{ {}name = \"x\"{} }}", "(".repeat(150_000), ")".repeat(150_000));
    let e = engine().search(&suite_search(&deep, 20)).await.unwrap_err();
    assert!(e.to_string().contains("query.traces.max_query_bytes"), "{e}");
    let deep = format!("{{ {}name = \"x\"{} }}", "(".repeat(10_000), ")".repeat(10_000));
    let e = engine().search(&suite_search(&deep, 20)).await.unwrap_err();
    assert!(e.to_string().contains("query.traces.max_query_depth"), "{e}");
    let at_bound = format!("{{ {}name = \"GET /api/0\"{} }}", "(".repeat(100), ")".repeat(100));
    assert!(!engine().search(&suite_search(&at_bound, 20)).await.unwrap().is_empty());
    // 12,000 conditions (about 220 KB) chained: one flat list.
    let chain = vec![r#"name != "nope""#; 12_000].join(" && ");
    let long = format!("{{ {chain} && status = error }}");
    assert!(long.len() < 262_144);
    let found = engine().search(&suite_search(&long, 100)).await.unwrap();
    let errors = engine().search(&suite_search("{ status = error }", 100)).await.unwrap();
    assert_eq!(found.len(), errors.len());
    assert!(!found.is_empty());
    let ors = vec![r#"name = "nope""#; 12_000].join(" || ");
    assert!(
        engine()
            .search(&suite_search(&format!("{{ {ors} }}"), 100))
            .await
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_search_range_is_cut_into_its_newest_hours() {
    const H: i64 = 3_600_000_000_000;
    assert_eq!(
        hours_newest_last(H + 5, 3 * H + 7),
        vec![(H + 5, 2 * H), (2 * H, 3 * H), (3 * H, 3 * H + 7)]
    );
    assert_eq!(hours_newest_last(5, 5), vec![]);
    assert_eq!(hours_newest_last(2 * H, 3 * H), vec![(2 * H, 3 * H)]);
    // Fifty years: 24 hours, then the rest at once.
    let long = hours_newest_last(0, 50 * 8766 * H);
    assert_eq!(long.len(), 25);
    assert_eq!(long[0], (0, long[1].0));
    assert_eq!(long[24].1, 50 * 8766 * H);
}
