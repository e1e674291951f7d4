//! Where and how Tributary stores Parquet files.

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
    /// Rollups (`metrics_5m`, `metrics_1h`) the compactor writes for old data.
    pub rollups: RollupsConfig,
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
    /// The resolutions written (`"5m"`, `"1h"`); empty writes none. Default both.
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
            multipart_threshold_bytes: 32 << 20,
            read_concurrency: 8,
            metadata_cache_files: 4096,
            series_cache_bytes: crate::table::metrics::SERIES_CACHE_BYTES,
            max_select_samples: 100_000_000,
            options: std::collections::BTreeMap::new(),
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
        let cfg: StorageConfig = serde_json::from_str(r#"{"rollups":{"after":"3d","resolutions":["1h"]}}"#).unwrap();
        assert_eq!(cfg.rollups.after, std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(cfg.rollups.resolutions, vec![crate::rollup::Resolution::OneHour]);
        assert!(serde_json::from_str::<StorageConfig>(r#"{"rollups":{"resolutions":["1d"]}}"#).is_err());
    }
}
