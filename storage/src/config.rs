//! Where and how Tributary stores Parquet files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[storage]` section of the configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where Parquet files go. Unset: the local filesystem rooted at the data directory
    /// (files land in `<data_dir>/metrics/...`).
    /// `file:///abs/path`: the local filesystem at that directory (created if missing).
    /// `s3://bucket` or `s3://bucket/prefix`: S3 or an S3-compatible server; credentials,
    /// region and endpoint come from the standard `AWS_*` environment variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, ...),
    /// and `AWS_ALLOW_HTTP=true` permits a plain-HTTP endpoint such as a local MinIO.
    pub url: Option<String>,
    /// Maximum rows per Parquet row group. Row groups are the unit of statistics-based pruning
    /// and each carries its own label dictionary; smaller groups prune more precisely, larger
    /// ones compress slightly better.
    pub row_group_rows: usize,
    /// Maximum rows per data page. Pages are the unit of page-index pruning (a query for one
    /// metric reads only the pages that can hold it) and of compression: series of one target
    /// share timestamps, which zstd only exploits within a page, so 20k-row pages are ~9% larger
    /// than 64Ki-row ones.
    pub page_rows: usize,
    /// zstd level for every column (1-22). On node-exporter-like data level 6 is ~2.5% smaller
    /// than level 3 and level 9 no smaller than 6; 3 keeps flush CPU low.
    pub zstd_level: i32,
    /// Files at least this many bytes are uploaded with a multipart upload instead of one `put`.
    pub multipart_threshold_bytes: usize,
    /// How many files a read opens at once (object-store requests and decoding in parallel).
    pub read_concurrency: usize,
    /// How many Parquet footers (with page indexes) readers keep in memory, so repeated queries
    /// don't fetch them again.
    pub metadata_cache_files: usize,
    /// Memory for series tables: each metrics file's series and the rows they occupy, decoded
    /// once so queries match labels in memory and read only timestamps and values. About 44
    /// bytes per series per file, plus one copy of each series' labels shared by all its files;
    /// the oldest tables are dropped beyond it. 0 keeps none (every
    /// query decodes the label columns again).
    pub series_cache_bytes: usize,
    /// A `select` that would return more samples than this fails instead of exhausting memory.
    pub max_select_samples: usize,
    /// Object-store options, passed to `object_store`'s builder by their documented key names
    /// (for S3: `aws_endpoint`, `aws_region`, `aws_allow_http`, `aws_access_key_id`,
    /// `aws_secret_access_key`, `aws_virtual_hosted_style_request`, ...). They override the
    /// `AWS_*` environment variables. Prefer the environment for secrets.
    pub options: std::collections::BTreeMap<String, String>,
    /// `[storage.retry]`: how S3 requests that fail transiently are retried.
    pub retry: RetryConfig,
    /// Longest one S3 request may take, from sending to the end of the answer; past it the
    /// request fails as a timeout (retried when safe, see [`RetryConfig`]), so a hung
    /// connection cannot stall a flush. Must cover the largest upload (a multipart part is
    /// 16 MiB) at the slowest expected bandwidth.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Longest connecting to S3 may take (a failed connection is always retried).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

/// How S3 requests are retried (object_store's retry loop). Retried: 5xx answers (including
/// `503 SlowDown` throttling), 429, 408, connections that fail or drop before an answer, and
/// timeouts of requests that are safe to repeat (reads, listings, unconditional uploads). Not
/// retried: timeouts of conditional creates (`PutMode::Create`), whose first attempt may have
/// succeeded (the caller sees the error). The first retry waits `initial_backoff`; each later
/// one a random delay between `initial_backoff` and twice the previous one, at most `max_backoff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries of one request at most (0: none).
    pub max_retries: usize,
    /// No retry starts this long after the first attempt.
    #[serde(with = "humantime_serde")]
    pub retry_timeout: Duration,
    /// Delay before the first retry (at least 1 ms).
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    /// object_store's own defaults.
    fn default() -> Self {
        Self {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            row_group_rows: 1 << 20,
            page_rows: 65_536,
            zstd_level: 3,
            multipart_threshold_bytes: 32 << 20,
            read_concurrency: 8,
            metadata_cache_files: 4096,
            series_cache_bytes: crate::table::metrics::SERIES_CACHE_BYTES,
            max_select_samples: 100_000_000,
            options: std::collections::BTreeMap::new(),
            retry: RetryConfig::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults_and_unknown_fields_are_rejected() {
        let cfg: StorageConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, StorageConfig::default());
        let cfg: StorageConfig = serde_json::from_str(r#"{"url":"s3://b/p","row_group_rows":10}"#).unwrap();
        assert_eq!(cfg.url.as_deref(), Some("s3://b/p"));
        assert_eq!(cfg.row_group_rows, 10);
        assert!(serde_json::from_str::<StorageConfig>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn retry_and_timeouts_read_human_durations() {
        let cfg: StorageConfig =
            serde_json::from_str(r#"{"request_timeout":"2s","retry":{"max_retries":3,"initial_backoff":"10ms"}}"#)
                .unwrap();
        assert_eq!(cfg.request_timeout, Duration::from_secs(2));
        assert_eq!(cfg.retry.max_retries, 3);
        assert_eq!(cfg.retry.initial_backoff, Duration::from_millis(10));
        assert_eq!(cfg.retry.max_backoff, RetryConfig::default().max_backoff);
        assert!(serde_json::from_str::<StorageConfig>(r#"{"retry":{"tries":1}}"#).is_err());
    }
}
