//! Which files retention drops: those whose newest row is older than what their table and
//! cluster keep.

use std::time::Duration;

use crate::config::RetentionConfig;
use crate::layout::{FileKey, Table};
use crate::scope::glob;

impl RetentionConfig {
    /// How long data of `table` and `cluster` is kept; `None`: forever. Rules first (in order),
    /// then the table's setting, then the default.
    pub fn keep(&self, table: Table, cluster: &str) -> Option<Duration> {
        self.rules
            .iter()
            .find(|r| r.table.as_deref().is_none_or(|t| t == table.dir()) && glob(&r.clusters, cluster))
            .map(|r| r.keep)
            .or_else(|| self.tables.get(table.dir()).copied())
            .or(self.default)
    }

    /// True when every row of the file is past retention at `now` (ms).
    pub(crate) fn expired(&self, key: &FileKey, now: i64) -> bool {
        self.keep(key.table, &key.cluster)
            .is_some_and(|keep| key.max_ts < now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Table names the configuration mentions that are not tables (a typo keeps data forever).
    pub fn unknown_tables(&self) -> Vec<String> {
        let known = |t: &str| Table::ALL.iter().any(|x| x.dir() == t);
        self.tables
            .keys()
            .map(String::as_str)
            .chain(self.rules.iter().filter_map(|r| r.table.as_deref()))
            .filter(|t| !known(t))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RetentionRule;

    #[test]
    fn rules_then_table_then_default() {
        let day = Duration::from_secs(86_400);
        let cfg = RetentionConfig {
            default: Some(30 * day),
            tables: [("logs".to_string(), 7 * day)].into(),
            rules: vec![
                RetentionRule {
                    clusters: "prod-*".into(),
                    table: Some("metrics".into()),
                    keep: 400 * day,
                },
                RetentionRule {
                    clusters: "dev-*".into(),
                    table: None,
                    keep: day,
                },
            ],
        };
        assert_eq!(cfg.keep(Table::Metrics, "prod-eu"), Some(400 * day));
        assert_eq!(cfg.keep(Table::Logs, "prod-eu"), Some(7 * day));
        assert_eq!(cfg.keep(Table::Logs, "dev-1"), Some(day));
        assert_eq!(cfg.keep(Table::Histograms, "qa"), Some(30 * day));
        assert_eq!(RetentionConfig::default().keep(Table::Metrics, "x"), None);
        let now = 100 * 86_400_000;
        let key = FileKey::new(Table::Logs, "prod-eu", now - 8 * 86_400_000, now - 8 * 86_400_000, 1).unwrap();
        assert!(cfg.expired(&key, now));
        let key = FileKey::new(Table::Metrics, "prod-eu", now - 8 * 86_400_000, now - 8 * 86_400_000, 1).unwrap();
        assert!(!cfg.expired(&key, now));
        let bad = RetentionConfig {
            tables: [("metric".to_string(), day)].into(),
            ..RetentionConfig::default()
        };
        assert_eq!(bad.unknown_tables(), ["metric"]);
    }
}
