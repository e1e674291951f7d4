use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::PutPayload;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::layout::{FileKey, Table};
use crate::read::{Direction, LogRequest, PatternRequest, VolumeRequest};
use crate::signals::LogRecord;
use crate::table::ParquetTable;
use crate::table::logs::Logs;
use crate::types::Labels;
use crate::{Storage, StorageConfig};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000_000_000;
const S: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * S;

/// Two streams over two hours, two line templates.
fn records() -> Vec<LogRecord> {
    (0..1_000i64)
        .map(|i| LogRecord {
            labels: Labels::from_pairs(&[("cluster", "eu"), ("app", ["api", "db"][(i % 2) as usize])]).into(),
            timestamp: T0 + i * 7_000_000_000,
            body: if i % 3 == 0 {
                format!("request {i} failed with code {}", 500 + i % 4)
            } else {
                format!("cache hit for key k{i} in {}us", i % 50)
            },
            attributes: "{}".into(),
            resource_attributes: "{}".into(),
            ..LogRecord::default()
        })
        .collect()
}

fn logs(start: i64, end: i64) -> LogRequest {
    LogRequest {
        matchers: Vec::new(),
        start,
        end,
        line_hints: Vec::new(),
        direction: Direction::Forward,
        limit: None,
    }
}

async fn open() -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&StorageConfig::default(), dir.path()).await.unwrap();
    (dir, storage)
}

#[tokio::test]
async fn a_file_without_summaries_is_summarised_from_its_rows() {
    let (dir, storage) = open().await;
    let all = records();
    let written = storage.write_logs(&all).await.unwrap();
    // The same rows again under another key, encoded without the footer entry (as a build
    // before summaries wrote them), in a store of their own.
    let (other_dir, other) = open().await;
    let mut change = crate::manifest::Change::default();
    for f in &written.files {
        let bytes = std::fs::read(dir.path().join(f)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let kv = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        for key in [volume::KEY, patterns::KEY] {
            assert!(
                kv.iter().any(|e| e.key == key),
                "a written file carries its {key} summary"
            );
        }
        let reader = builder.build().unwrap();
        let batches: Vec<_> = reader.map(Result::unwrap).collect();
        let batch = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
        let old = crate::writer::encode_batch(
            &batch,
            Logs::properties(&storage.writer).unwrap(),
            f,
            Vec::new(),
            |_| Ok(Vec::new()),
        )
        .unwrap();
        let key = FileKey::parse(&object_store::path::Path::from(f.as_str())).unwrap();
        let key = FileKey::new(Table::Logs, &key.cluster, key.min_ts, key.max_ts, key.rows).unwrap();
        let size = old.len() as u64;
        other
            .object_store()
            .put(&key.path(), PutPayload::from(old))
            .await
            .unwrap();
        change.add.push(crate::catalog::FileMeta::new(key, size));
    }
    other.commit(&change).await.unwrap();
    let req = VolumeRequest {
        logs: logs(T0, T0 + 3 * 3600 * S),
        origin: T0,
        step: 20 * MINUTE,
    };
    let want = storage.log_source().log_volume(&req).await.unwrap();
    assert!(!want.is_empty());
    assert_eq!(other.log_source().log_volume(&req).await.unwrap(), want);
    let req = PatternRequest {
        logs: req.logs,
        step: 20 * MINUTE,
        max_lines: usize::MAX,
    };
    let want = storage.log_source().log_patterns(&req).await.unwrap();
    assert_eq!(want.series.len(), 2, "{want:?}");
    assert_eq!(other.log_source().log_patterns(&req).await.unwrap(), want);
    drop(other_dir);
}
