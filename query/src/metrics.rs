//! The query engine's own counters, exposed on the server's `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

/// Counters the PromQL engine updates.
#[derive(Debug, Default, Clone)]
pub struct QueryMetrics {
    /// Aggregations evaluated a part at a time (`query.part_samples`).
    pub(crate) part_aggregations: Counter,
    /// Parts read for them.
    pub(crate) parts: Counter,
    /// Evaluations that stopped on their thread because the query was dropped (its client went
    /// away, or the server shut down) before they finished.
    pub(crate) evaluations_cancelled: Counter,
}

impl QueryMetrics {
    /// Registers the counters (as `tributary_query_*`) with the server's registry.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_query_part_aggregations",
            "Aggregations read and evaluated a part at a time (query.part_samples)",
            self.part_aggregations.clone(),
        );
        r.register(
            "tributary_query_parts",
            "Parts read for aggregations evaluated a part at a time",
            self.parts.clone(),
        );
        r.register(
            "tributary_query_evaluations_cancelled",
            "PromQL evaluations stopped because their query was dropped (client gone, shutdown)",
            self.evaluations_cancelled.clone(),
        );
    }
}
