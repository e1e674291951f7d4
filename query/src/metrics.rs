//! The query engine's own counters, and the query APIs' requests ([`RequestMetrics`]: one
//! middleware measures every route of a router), exposed on the server's `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
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
    /// Range queries by what the results cache held for them (`hit`, `partial`, `miss`).
    results_cache: Family<OutcomeLabel, Counter>,
}

/// The `outcome` label of `tributary_query_results_cache_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
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

    /// Counts one range query by what the results cache held for it.
    pub(crate) fn results_cache(&self, outcome: &'static str) {
        self.results_cache.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Range queries the results cache answered with `outcome`.
    #[cfg(test)]
    pub(crate) fn results_cache_lookups(&self, outcome: &'static str) -> u64 {
        self.results_cache.get_or_create(&OutcomeLabel { outcome }).get()
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
            "tributary_query_results_cache_lookups",
            "Range queries by what the results cache (query.results_cache) held for them: hit (every step), partial (the older steps), miss",
            self.results_cache.clone(),
        );
        r.register(
            "tributary_query_token_refusals",
            "Query requests refused by a limit of their token ([[auth.tokens]]), by token name and limit",
            self.token_refusals.clone(),
        );
    }
}

/// Latency buckets of `tributary_query_request_duration_seconds`, from a cached label listing
/// (about a millisecond) to a query at its deadline (`query.timeout`, two minutes by default).
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// The labels of `tributary_query_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    endpoint: String,
    outcome: &'static str,
}

/// The labels of `tributary_query_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    api: &'static str,
    endpoint: String,
}

type Histograms = Family<EndpointLabels, Histogram, fn() -> Histogram>;

/// Requests to the query APIs by API, endpoint and outcome, and their latency. The contract:
/// - `api` is the router's (`prometheus`, `loki`, `status`), `endpoint` the route's path
///   template as matched (`/api/v1/label/{name}/values`, never the raw path, so label values
///   cannot grow the series); unmatched paths (404) are not counted;
/// - `outcome` is `success` (any 1xx-3xx answer), `client_error` (4xx except 499),
///   `server_error` (5xx), or `canceled`: answered 499 (the client went away, both upstreams'
///   code) or dropped before an answer (the connection closed, or shutdown);
/// - the duration runs until the answer's head is ready (a streamed body is not waited for),
///   and is recorded for every outcome.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Histograms,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
        }
    }
}

impl RequestMetrics {
    /// Registers `tributary_query_requests_total` and `tributary_query_request_duration_seconds`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "tributary_query_requests",
            "Query API requests by API, endpoint (the route's path template) and outcome",
            self.requests.clone(),
        );
        r.register(
            "tributary_query_request_duration_seconds",
            "Query API request latency until the answer's head, by API and endpoint",
            self.durations.clone(),
        );
    }

    /// `router` with every matched route measured under `api` (see the type's docs).
    pub fn measure(&self, api: &'static str, router: axum::Router) -> axum::Router {
        router.route_layer(axum::middleware::from_fn_with_state((self.clone(), api), measured))
    }

    fn record(&self, api: &'static str, endpoint: String, outcome: &'static str, started: Instant) {
        self.durations
            .get_or_create(&EndpointLabels {
                api,
                endpoint: endpoint.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { api, endpoint, outcome })
            .inc();
    }
}

/// The outcome of an answer with `status`.
fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        499 => "canceled",
        400..=499 => "client_error",
        500.. => "server_error",
        _ => "success",
    }
}

/// Records a request dropped before its answer as `canceled`.
struct Pending {
    metrics: RequestMetrics,
    api: &'static str,
    endpoint: Option<String>,
    started: Instant,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint.take() {
            self.metrics.record(self.api, endpoint, "canceled", self.started);
        }
    }
}

async fn measured(State((metrics, api)): State<(RequestMetrics, &'static str)>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let mut pending = Pending {
        metrics,
        api,
        endpoint: Some(endpoint),
        started: Instant::now(),
    };
    let response = next.run(req).await;
    if let Some(endpoint) = pending.endpoint.take() {
        pending
            .metrics
            .record(api, endpoint, outcome(response.status()), pending.started);
    }
    response
}

#[cfg(test)]
mod tests;
