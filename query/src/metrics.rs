//! The query engine's own counters, exposed on the server's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
    /// Selectors read, by the tier they were read from (`raw`, `5m`, `1h`).
    tier_selections: Family<TierLabel, Counter>,
}

/// The `tier` label of `tributary_query_tier_selections_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

impl QueryMetrics {
    /// Counts one selector read from `tier`.
    pub(crate) fn tier_selected(&self, tier: crate::promql::Tier) {
        self.tier_selections
            .get_or_create(&TierLabel { tier: tier.name() })
            .inc();
    }

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
        r.register(
            "tributary_query_tier_selections",
            "Selectors of PromQL queries by the data they read: raw samples or rollups (5m, 1h)",
            self.tier_selections.clone(),
        );
    }
}
