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
    TraceEngine::new(Arc::new(MemTraceSource::new(suite_spans())), QueryMetrics::default())
}

#[tokio::test]
async fn search_finds_traces_by_traceql_newest_first_under_the_scope() {
    let all = |query: &str, limit| Search {
        query: query.into(),
        start: SUITE_START_NS,
        end: SUITE_START_NS + 4 * 3_600_000_000_000,
        limit,
        min_duration: None,
        max_duration: None,
    };
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
