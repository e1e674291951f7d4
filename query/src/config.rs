//! Query engine settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::admission::TextLimits;

/// Settings for [`crate::promql::Engine`]. Every field has a Prometheus-compatible default, so an
/// empty table is a valid configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// How far back an instant vector selector looks for the latest sample (Prometheus's
    /// `--query.lookback-delta`). The window is left-open: `(t - lookback_delta, t]`.
    /// Default `5m`.
    #[serde(with = "humantime_serde")]
    pub lookback_delta: Duration,
    /// The most samples one query may read from storage, and the most points any single step of
    /// evaluation may hold (Prometheus's `--query.max-samples`). Exceeding it fails the query with
    /// `query processing would load too many samples into memory in query execution`.
    /// Default `50000000`.
    pub max_samples: usize,
    /// An aggregation (`sum`, `min`, `max`, `count`, `group`) over an expression of one selector
    /// that works series by series (`sum by (cluster) (rate(errors[30d]))`) whose selector holds
    /// more samples than this in range is read and evaluated in parts of about this many samples
    /// each, so a long range over many series never sits in memory whole (the next part is read
    /// while one is evaluated: two at most). Default `10000000`.
    pub part_samples: usize,
    /// The longest a query may run, fetching included (Prometheus's `--query.timeout`). A request's
    /// own `timeout` parameter can only shorten it. Listings (series, label names and values),
    /// exemplars and metadata are bounded by it too. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The resolution of a subquery written without one (`rate(x[5m])[1h:]`). Prometheus uses its
    /// global `evaluation_interval` here, whose default is 1m; a Tributary fronting Prometheus
    /// servers with another evaluation interval should be given theirs, so recording rules and
    /// dashboards that rely on the default step answer the same. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub default_subquery_step: Duration,
    /// The longest PromQL query text accepted, in bytes; a longer one is refused with a 400
    /// naming this option before it is parsed. Prometheus has no such bound; this one leaves room
    /// for the longest dashboard queries (a regex of thousands of alternatives). Default `262144`.
    pub max_query_bytes: usize,
    /// The deepest PromQL query accepted: each parenthesis, bracket, brace, unary sign and
    /// operator chained without parentheses is a level (a dashboard query is rarely deeper than
    /// 10). A deeper one is refused with a 400 naming this option before it is parsed, because
    /// parsing and evaluating recurse once per level and a stack overflow aborts the process.
    /// Queries run on threads with a 32 MiB stack, ample for this bound; raising it into the
    /// thousands brings the overflow back. Default `128`.
    pub max_query_depth: usize,
    /// Most entries a series, label-names or label-values listing may answer with when no
    /// `limit` (or a larger one) is given: a bigger listing fails with a 422 naming this option
    /// instead of building an answer of any size (`limit=1000000000000` used to mean "all").
    /// With a `limit` up to this bound, the listing is cut to it with Prometheus's warning.
    /// Loki's listings (series, labels, label values) take no `limit`: longer ones fail.
    /// Default `1000000`.
    pub max_listing_items: usize,
    /// Ingesters whose heads a `query` process reads besides the object store, so data not yet
    /// flushed is visible (see `crate::remote`): each `http://host:port`, or `dns+host:port`
    /// for every address the name resolves to (a Kubernetes headless service), re-resolved
    /// every `ingester_resolve_interval`. Empty: only the object store (and, in all-in-one, the
    /// process's own head). Also `--ingesters URL[,URL...]`. Default `[]`.
    pub ingesters: Vec<String>,
    /// How long one read from one ingester may take before it counts as not answering.
    /// Default `5s`.
    #[serde(with = "humantime_serde")]
    pub ingester_timeout: Duration,
    /// What a query does when an ingester does not answer: `"warn"` answers from the data
    /// there is, with a warning naming the ingester (Prometheus `warnings`, also in Loki
    /// answers); `"fail"` fails the query with a 503. Default `"warn"`.
    pub ingester_failure: crate::remote::IngesterFailure,
    /// How often `dns+` ingester names are resolved again. Default `15s`.
    #[serde(with = "humantime_serde")]
    pub ingester_resolve_interval: Duration,
    /// A file holding the bearer token sent to ingesters (needed when they require tokens:
    /// a token whose read scope is `"*"`). Empty: none. Default `""`.
    pub ingester_token_file: std::path::PathBuf,
    /// Range answers kept for the next query of the same steps.
    pub results_cache: crate::promql::ResultsCacheConfig,
    /// LogQL (the Loki query API).
    pub logql: crate::logql::LogqlConfig,
    /// Trace reads (the Tempo and Jaeger query APIs).
    pub traces: crate::traces::TraceConfig,
    /// When `rate`, `increase` and the `*_over_time` aggregations read rollups instead of raw
    /// samples.
    pub rollups: RollupsConfig,
}

/// The `[query.rollups]` section. A `rate`, `increase`, `sum_over_time`, `count_over_time`,
/// `avg_over_time`, `min_over_time` or `max_over_time` of a range selector reads the rollups
/// of a resolution (the coarsest that qualifies) when its range is at least that resolution's
/// minimum and a multiple of it, and every window it is evaluated at ends (step time or `@`,
/// minus `offset`) on a multiple of it: then the buckets tile each window exactly. A selector
/// with one window (an instant query, or `@`) ending between boundaries reads its whole
/// buckets and, raw, the two partial buckets at its ends. Anything else reads raw samples. Answers equal the raw ones exactly for `rate`, `increase` (integer
/// counters: otherwise up to float rounding), `count_over_time`, `min_over_time` and
/// `max_over_time`; `sum_over_time` and `avg_over_time` add in another order (relative
/// difference within 1e-9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollupsConfig {
    /// Whether queries may read rollups at all. Default `true`.
    pub enabled: bool,
    /// The shortest range read from 5-minute rollups. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub min_range_5m: Duration,
    /// The shortest range read from 1-hour rollups. Default `1d`.
    #[serde(with = "humantime_serde")]
    pub min_range_1h: Duration,
}

impl Default for RollupsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_range_5m: Duration::from_secs(3600),
            min_range_1h: Duration::from_secs(24 * 3600),
        }
    }
}

/// The default of [`QueryConfig::max_query_bytes`] and `query.logql.max_query_bytes`.
pub(crate) const DEFAULT_MAX_QUERY_BYTES: usize = 256 * 1024;
/// The default of [`QueryConfig::max_query_depth`] and `query.logql.max_query_depth`.
pub(crate) const DEFAULT_MAX_QUERY_DEPTH: usize = 128;

impl QueryConfig {
    /// The bounds a PromQL query's text is admitted under.
    pub(crate) fn text_limits(&self) -> TextLimits {
        TextLimits {
            max_bytes: self.max_query_bytes,
            max_depth: self.max_query_depth,
            section: "query",
        }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            lookback_delta: Duration::from_secs(5 * 60),
            max_samples: 50_000_000,
            part_samples: 10_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            max_query_bytes: DEFAULT_MAX_QUERY_BYTES,
            max_query_depth: DEFAULT_MAX_QUERY_DEPTH,
            max_listing_items: 1_000_000,
            ingesters: Vec::new(),
            ingester_timeout: Duration::from_secs(5),
            ingester_failure: crate::remote::IngesterFailure::Warn,
            ingester_resolve_interval: Duration::from_secs(15),
            ingester_token_file: std::path::PathBuf::new(),
            results_cache: crate::promql::ResultsCacheConfig::default(),
            logql: crate::logql::LogqlConfig::default(),
            traces: crate::traces::TraceConfig::default(),
            rollups: RollupsConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_prometheus_defaults() {
        let cfg: QueryConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, QueryConfig::default());
        assert_eq!(cfg.lookback_delta, Duration::from_secs(300));
        assert_eq!(cfg.max_samples, 50_000_000);
        assert_eq!(cfg.timeout, Duration::from_secs(120));
        assert_eq!(cfg.default_subquery_step, Duration::from_secs(60));
        assert_eq!(cfg.max_query_bytes, 262_144);
        assert_eq!(cfg.max_query_depth, DEFAULT_MAX_QUERY_DEPTH);
        assert_eq!(cfg.logql.max_query_bytes, 262_144);
        assert_eq!(cfg.logql.max_query_depth, DEFAULT_MAX_QUERY_DEPTH);
    }

    #[test]
    fn durations_are_human_readable_and_unknown_fields_are_rejected() {
        let cfg: QueryConfig = serde_json::from_str(r#"{"lookback_delta":"1m 30s","timeout":"10s"}"#).unwrap();
        assert_eq!(cfg.lookback_delta, Duration::from_secs(90));
        assert_eq!(cfg.timeout, Duration::from_secs(10));
        assert!(serde_json::from_str::<QueryConfig>(r#"{"lookback":"1m"}"#).is_err());
        let cfg: QueryConfig = serde_json::from_str(r#"{"rollups":{"enabled":false,"min_range_1h":"7d"}}"#).unwrap();
        assert!(!cfg.rollups.enabled);
        assert_eq!(cfg.rollups.min_range_1h, Duration::from_secs(7 * 86_400));
        assert_eq!(cfg.rollups.min_range_5m, Duration::from_secs(3600));
    }
}
