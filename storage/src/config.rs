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
    /// Store a line index in logs files: per row group, a bloom filter of every 8-byte run
    /// inside the words of its lines, so a line filter for a rare text (`|= "<request id>"`)
    /// reads only the row groups that can hold it. Files written without it are read in full.
    pub log_line_index: bool,
    /// zstd level for every column (1-22) of every table but `metrics_1d` (Snappy). On
    /// node-exporter-like data level 6 is ~2.5% smaller than level 3 and level 9 no smaller
    /// than 6; 3 keeps flush CPU low.
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
    /// Memory for rollup day summaries: one bucket per series per rollup file (and selector),
    /// kept by reads of a single window (instant queries, rule evaluations) so a 30-day window
    /// decodes each day file once and then reads 30 summaries per series, not 720 hourly rows.
    /// About 120 bytes per series per day file and selector, plus one copy of each series'
    /// labels, and about 80 bytes per row of a day a window cuts (2 KB per series at 1 h); beyond it,
    /// entries are dropped at random (a window's evaluations sweep the same files in order:
    /// dropping the oldest first would miss every time). 0 keeps none. Default 512 MiB.
    pub rollup_cache_bytes: usize,
    /// Memory for the spans table's trace-id bloom filters, so a lookup by id reads the
    /// filters of a file's row groups once, then only the files that may hold the id. About
    /// 1 byte per distinct trace id per row group; the oldest are dropped beyond it. 0 keeps
    /// none. Default 64 MiB.
    pub trace_bloom_cache_bytes: usize,
    /// Memory for the raw files single-window reads (instant queries, rule evaluations) read
    /// again every minute, half each: window edges (the raw samples a read takes from a
    /// metrics file it covers only in part, a window's first and last partial hour, kept per
    /// (file, selector) for the whole file; 16 bytes per sample; a selector matching more than
    /// an eighth of the half in one file is not kept) and file summaries (a raw file a window
    /// at a rollup resolution holds whole, on days not rolled up yet, kept as each matching
    /// series' buckets per (file, selector, resolution)). The oldest are dropped beyond it.
    /// 0 keeps none. Default 256 MiB.
    pub edge_cache_bytes: usize,
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
    /// How often every role loads a newer manifest (files other processes committed).
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// The `[storage.compaction]` section.
    pub compaction: CompactionConfig,
    /// The `[storage.retention]` section.
    pub retention: RetentionConfig,
    /// Rollups (`metrics_5m`, `metrics_1h`, `metrics_1d`) the compactor writes for old data.
    pub rollups: RollupsConfig,
}

/// `[storage.compaction]`: merging small files, dropping expired ones, deleting garbage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionConfig {
    /// Run rounds on a schedule in the roles that compact (`all-in-one`, `compactor`).
    pub enabled: bool,
    /// Time between scheduled rounds.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A UTC hour or day is compacted once its end is this far in the past, so late flushes
    /// (up to `ingest.head.flush_interval` after the data) usually land before it.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Most bytes of input files merged into one output file; a group larger than this becomes
    /// several files. Files merged in parts (every table but logs) hold about the output's
    /// encoded bytes; log files are merged whole, holding their rows in Arrow form (some 50x
    /// the compressed input).
    pub max_input_bytes: u64,
    /// How long a file compaction or retention removed stays in the object store, so queries
    /// that planned with an older manifest finish.
    #[serde(with = "humantime_serde")]
    pub deletion_delay: Duration,
    /// Objects under a table prefix that no manifest lists (uploads of a flush or compaction
    /// that never committed) are deleted once this old.
    #[serde(with = "humantime_serde")]
    pub orphan_age: Duration,
    /// How long a compactor's lease lasts without renewal: a second compactor waits this long
    /// after the first one dies. Renewed at every round, so keep it above `interval`.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(3600),
            settle: Duration::from_secs(3600),
            max_input_bytes: 32 << 20,
            deletion_delay: Duration::from_secs(600),
            orphan_age: Duration::from_secs(6 * 3600),
            lease_ttl: Duration::from_secs(2 * 3600),
        }
    }
}

/// `[storage.retention]`: how long data is kept, enforced by compaction rounds dropping whole
/// files whose newest row is older. Unset everywhere: kept forever.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Every table and cluster no rule below covers (`"400d"`); unset keeps forever.
    #[serde(with = "humantime_serde")]
    pub default: Option<Duration>,
    /// Per table (`metrics`, `logs`, `histograms`, `exemplars`, `metadata`, `spans`, `metrics_5m`,
    /// `metrics_1h`, `metrics_1d`), overriding `default`.
    #[serde(with = "humantime_serde_map")]
    pub tables: std::collections::BTreeMap<String, Duration>,
    /// Per cluster pattern, checked in order before the table and global settings; the first
    /// rule whose `clusters` glob (`*` any run of characters, `?` one) matches and whose `table`
    /// (when set) is the file's table wins.
    pub rules: Vec<RetentionRule>,
}

/// One `[[storage.retention.rules]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Glob over the `cluster` label (`prod-*`); `""` matches data without a cluster.
    pub clusters: String,
    /// The table this rule is for; unset: every table.
    #[serde(default)]
    pub table: Option<String>,
    /// How long to keep matching data (`"7d"`).
    #[serde(with = "humantime_serde")]
    pub keep: Duration,
}

/// `humantime_serde` for a map of durations.
mod humantime_serde_map {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct D(#[serde(with = "humantime_serde")] Duration);

    pub(super) fn serialize<S: Serializer>(m: &BTreeMap<String, Duration>, s: S) -> Result<S::Ok, S::Error> {
        m.iter()
            .map(|(k, v)| (k, D(*v)))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, De: Deserializer<'de>>(d: De) -> Result<BTreeMap<String, Duration>, De::Error> {
        Ok(BTreeMap::<String, D>::deserialize(d)?
            .into_iter()
            .map(|(k, D(v))| (k, v))
            .collect())
    }
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

/// The `[storage.rollups]` section: which rollups the compactor writes, and from what age.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollupsConfig {
    /// A completed UTC day of metrics gets its rollups when it is compacted and its end is at
    /// least this old (from then on, bucket reads of that day use the rollups, not the raw
    /// files). Default `1d`.
    #[serde(with = "humantime_serde")]
    pub after: std::time::Duration,
    /// The resolutions written (`"5m"`, `"1h"`, `"1d"`); empty writes none. Default all three.
    pub resolutions: Vec<crate::rollup::Resolution>,
}

impl Default for RollupsConfig {
    fn default() -> Self {
        Self {
            after: std::time::Duration::from_secs(24 * 3600),
            resolutions: crate::rollup::Resolution::ALL.to_vec(),
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
            log_line_index: true,
            multipart_threshold_bytes: 32 << 20,
            read_concurrency: 8,
            metadata_cache_files: 4096,
            series_cache_bytes: crate::table::metrics::SERIES_CACHE_BYTES,
            rollup_cache_bytes: 512 << 20,
            trace_bloom_cache_bytes: 64 << 20,
            edge_cache_bytes: 256 << 20,
            max_select_samples: 100_000_000,
            options: std::collections::BTreeMap::new(),
            refresh_interval: Duration::from_secs(15),
            compaction: CompactionConfig::default(),
            retention: RetentionConfig::default(),
            retry: RetryConfig::default(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            rollups: RollupsConfig::default(),
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
        let cfg: StorageConfig = serde_json::from_str(
            r#"{"retention":{"default":"30d","tables":{"logs":"7d"},
                "rules":[{"clusters":"prod-*","table":"metrics","keep":"400d"}]},
                "compaction":{"interval":"10m"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.retention.default, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(cfg.retention.tables["logs"], Duration::from_secs(7 * 86_400));
        assert_eq!(cfg.retention.rules[0].keep, Duration::from_secs(400 * 86_400));
        assert_eq!(cfg.compaction.interval, Duration::from_secs(600));
        assert_eq!(cfg.compaction.settle, CompactionConfig::default().settle);
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

    #[test]
    fn rollups_section_parses() {
        let cfg: StorageConfig = serde_json::from_str(r#"{"rollups":{"after":"3d","resolutions":["1h"]}}"#).unwrap();
        assert_eq!(cfg.rollups.after, std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(cfg.rollups.resolutions, vec![crate::rollup::Resolution::OneHour]);
        assert!(serde_json::from_str::<StorageConfig>(r#"{"rollups":{"resolutions":["1w"]}}"#).is_err());
    }
}
