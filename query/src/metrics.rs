//! The query engine's own counters, exposed on the server's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::token_limits::TokenLimit;

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
    /// Requests refused by a limit of their token, by token name and limit.
    token_refusals: Family<TokenRefusal, Counter>,
}

/// The labels of `tributary_query_token_refusals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenRefusal {
    /// The token entry's `name` (or its digest prefix), never the token.
    token: String,
    /// The `[[auth.tokens]]` option (`max_samples`...).
    limit: &'static str,
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

    /// Counts one request refused by `limit` of the token named `token`.
    pub(crate) fn token_refused(&self, token: &str, limit: TokenLimit) {
        self.token_refusals
            .get_or_create(&TokenRefusal {
                token: token.to_string(),
                limit: limit.option(),
            })
            .inc();
    }

    /// How many requests `limit` of the token named `token` refused.
    #[cfg(test)]
    pub(crate) fn token_refusals(&self, token: &str, limit: TokenLimit) -> u64 {
        self.token_refusals
            .get_or_create(&TokenRefusal {
                token: token.to_string(),
                limit: limit.option(),
            })
            .get()
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
        r.register(
            "tributary_query_token_refusals",
            "Query requests refused by a limit of their token ([[auth.tokens]]), by token name and limit",
            self.token_refusals.clone(),
        );
    }
}
