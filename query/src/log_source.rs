//! [`MergedLogSource`]: one [`LogSource`] over several (the head's and the Parquet table's).
//!
//! Each source answers with at most `limit` records from the requested end, so the first `limit`
//! records of the union, in order, are the answer. A record both in the head and in Parquet
//! (a flush in progress) is returned once.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::try_join_all;
use tributary_storage::Result;
use tributary_storage::read::{
    LogRequest, LogSource, PatternRequest, PatternSum, Patterns, StreamVolume, VolumeRequest, VolumeSum, sort_logs,
};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::Labels;

/// Reads every source and merges their answers.
#[derive(Debug, Clone)]
pub struct MergedLogSource {
    sources: Vec<Arc<dyn LogSource>>,
}

impl MergedLogSource {
    /// A source over `sources` (the head's and the Parquet table's).
    pub fn new(sources: Vec<Arc<dyn LogSource>>) -> Self {
        Self { sources }
    }
}

#[async_trait]
impl LogSource for MergedLogSource {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.select_logs(req))).await?;
        let mut all: Vec<LogRecord> = parts.into_iter().flatten().collect();
        // Storage's one total order of records: equal records from different sources end up
        // adjacent and deduplicate.
        sort_logs(&mut all, req.direction);
        all.dedup();
        if let Some(limit) = req.limit {
            all.truncate(limit);
        }
        Ok(all)
    }

    /// Sums the sources' volumes (the contract allows a record in two sources to count twice).
    async fn log_volume(&self, req: &VolumeRequest) -> Result<Vec<StreamVolume>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.log_volume(req))).await?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().unwrap_or_default());
        }
        let mut sum = VolumeSum::default();
        for part in parts {
            sum.add_all(part);
        }
        Ok(sum.finish())
    }

    /// Clusters the sources' patterns together, so a template seen by two is one pattern (a
    /// record in two sources counts twice, as the contract allows).
    async fn log_patterns(&self, req: &PatternRequest) -> Result<Patterns> {
        let parts = try_join_all(self.sources.iter().map(|s| s.log_patterns(req))).await?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().unwrap_or_default());
        }
        let mut sum = PatternSum::default();
        for part in parts {
            sum.absorb(part);
        }
        Ok(sum.finish())
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.log_streams(req))).await?;
        let mut all: Vec<Labels> = parts.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    async fn log_label_names(&self, req: &LogRequest) -> Result<Vec<String>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.log_label_names(req))).await?;
        let mut all: Vec<String> = parts.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    async fn log_label_values(&self, name: &str, req: &LogRequest) -> Result<Vec<String>> {
        let parts = try_join_all(self.sources.iter().map(|s| s.log_label_values(name, req))).await?;
        let mut all: Vec<String> = parts.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_storage::read::Direction;
    use tributary_storage::types::Matcher;

    #[derive(Debug)]
    struct Fixed(Vec<LogRecord>);

    #[async_trait]
    impl LogSource for Fixed {
        async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
            let mut v: Vec<LogRecord> = self
                .0
                .iter()
                .filter(|r| r.timestamp >= req.start && r.timestamp < req.end)
                .cloned()
                .collect();
            sort_logs(&mut v, req.direction);
            if let Some(l) = req.limit {
                v.truncate(l);
            }
            Ok(v)
        }

        async fn log_streams(&self, _req: &LogRequest) -> Result<Vec<Labels>> {
            Ok(self.0.iter().map(|r| Labels::clone(&r.labels)).collect())
        }
    }

    /// The merged source passes the `LogSource` suite over a head-like reference source and
    /// the Parquet logs table holding overlapping thirds of each dataset (a flush in progress).
    #[tokio::test]
    async fn merged_source_passes_the_log_source_conformance_suite() {
        let dirs = Arc::new(std::sync::Mutex::new(Vec::new()));
        tributary_storage::test_util::log_source_conformance(|records: Vec<LogRecord>| {
            let dirs = dirs.clone();
            async move {
                let dir = tempfile::tempdir().unwrap();
                let cfg = tributary_storage::StorageConfig {
                    row_group_rows: 4,
                    page_rows: 2,
                    ..Default::default()
                };
                let storage = tributary_storage::Storage::open(&cfg, dir.path()).await.unwrap();
                let third = records.len() / 3;
                storage.write_logs(&records[..2 * third]).await.unwrap();
                dirs.lock().unwrap().push(dir);
                let head = tributary_storage::test_util::MemLogSource::new(records[third..].to_vec());
                Arc::new(MergedLogSource::new(vec![Arc::new(head), storage.log_source()])) as Arc<dyn LogSource>
            }
        })
        .await;
    }

    /// Regression: a record held by the head and by Parquet (a flush in progress) beside a
    /// look-alike (same time, stream, line and attributes; another observed time) came back
    /// twice, because the merge ordered ties by fewer fields than the sources did, so the
    /// copies were not adjacent for `dedup`.
    #[tokio::test]
    async fn a_record_in_head_and_parquet_beside_a_look_alike_comes_back_once() {
        let x = LogRecord {
            observed_timestamp: 1,
            ..rec(5, "same")
        };
        let y = LogRecord {
            observed_timestamp: 2,
            ..rec(5, "same")
        };
        let dir = tempfile::tempdir().unwrap();
        let storage = tributary_storage::Storage::open(&Default::default(), dir.path())
            .await
            .unwrap();
        storage.write_logs(&[y.clone(), x.clone()]).await.unwrap();
        let head = tributary_storage::test_util::MemLogSource::new(vec![y.clone(), x.clone()]);
        let m = MergedLogSource::new(vec![Arc::new(head), storage.log_source()]);
        for (direction, want) in [
            (Direction::Forward, vec![x.clone(), y.clone()]),
            (Direction::Backward, vec![y.clone(), x.clone()]),
        ] {
            let req = LogRequest {
                matchers: vec![Matcher::equal("cluster", "a")],
                start: 0,
                end: 100,
                line_hints: vec![],
                direction,
                limit: None,
            };
            assert_eq!(m.select_logs(&req).await.unwrap(), want, "{direction:?}");
        }
    }

    fn rec(t: i64, line: &str) -> LogRecord {
        LogRecord {
            labels: Labels::from_pairs(&[("cluster", "a")]).into(),
            timestamp: t,
            body: line.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn merges_in_direction_dedupes_and_limits() {
        let head = Arc::new(Fixed(vec![rec(3, "c"), rec(5, "e")]));
        let parquet = Arc::new(Fixed(vec![rec(1, "a"), rec(3, "c"), rec(4, "d")]));
        let m = MergedLogSource::new(vec![head, parquet]);
        let req = |direction, limit| LogRequest {
            matchers: vec![Matcher::equal("cluster", "a")],
            start: 0,
            end: 100,
            line_hints: vec![],
            direction,
            limit,
        };
        let lines = |v: Vec<LogRecord>| v.into_iter().map(|r| r.body).collect::<Vec<_>>();
        assert_eq!(
            lines(m.select_logs(&req(Direction::Forward, None)).await.unwrap()),
            ["a", "c", "d", "e"]
        );
        assert_eq!(
            lines(m.select_logs(&req(Direction::Backward, Some(3))).await.unwrap()),
            ["e", "d", "c"]
        );
        assert_eq!(m.log_streams(&req(Direction::Forward, None)).await.unwrap().len(), 1);
    }
}
