//! What the logs file summaries (`volume`, `patterns`) share: they are computed from the rows a
//! file is written with, stored as JSON in its footer's key-value metadata, parsed once into a
//! form reads match against, and kept in a byte-bounded cache per kind.
//!
//! Why in the footer: the file carries its own summaries, so flushes, compaction and retention
//! need nothing beside the file. The shared footer cache holds footers without them
//! (`parquet_io::SUMMARY_KEY_PREFIX`); a summary no longer cached costs one ranged read of the
//! file's tail. A file written before a kind of summary existed is summarised from its rows on
//! first read.

use std::sync::Arc;

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::metadata::KeyValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::schema::{self, col};
use super::{patterns, volume};
use crate::catalog::FileMeta;
use crate::parquet_io::{ParquetIo, plan};
use crate::table::file_cache::{FileCache, Weighed};
use crate::table::series::dict_keys;
use crate::{Error, Result};

/// Memory for each kind of parsed summary: a 24-hour read over 100 clusters touches 2,400
/// files.
pub(crate) const CACHE_BYTES: usize = 64 << 20;

/// One kind of file summary.
pub(super) trait FileSummary: Serialize + DeserializeOwned + Sized {
    /// Its footer key (under `parquet_io::SUMMARY_KEY_PREFIX`).
    const KEY: &'static str;
    /// What reads keep.
    type Parsed: Weighed + Send + Sync + 'static;
    /// Summarises `batch`: rows in the logs schema, sorted by stream, as every file is.
    fn of(batch: &RecordBatch, key: &str) -> Result<Self>;
    /// Whether this build reads it (its format and bucket width).
    fn readable(&self) -> bool;
    /// The form reads keep.
    fn parse(self, key: &str) -> Result<Self::Parsed>;
    /// Its cache among `caches`.
    fn cache(caches: &SummaryCache) -> &FileCache<Self::Parsed>;
}

/// Parsed summaries by file, each kind within [`CACHE_BYTES`].
#[derive(Debug)]
pub(crate) struct SummaryCache {
    pub(super) volume: FileCache<volume::Parsed>,
    pub(super) patterns: FileCache<patterns::Parsed>,
}

impl SummaryCache {
    pub(crate) fn new() -> Self {
        Self {
            volume: FileCache::new(CACHE_BYTES),
            patterns: FileCache::new(CACHE_BYTES),
        }
    }
}

/// What every summary reads of a file's rows: their timestamps and their runs of one stream.
pub(super) struct Rows<'a> {
    /// Per row, nanoseconds.
    pub(super) timestamps: &'a [i64],
    /// `(cluster, labels text, rows)` per stream, in file order (rows are sorted by stream).
    pub(super) streams: Vec<(&'a str, &'a str, Range<usize>)>,
}

impl<'a> Rows<'a> {
    pub(super) fn of(batch: &'a RecordBatch, key: &str) -> Result<Self> {
        // The metrics tables' dictionary reader: it also checks every key is in range.
        let dict = |i: usize| dict_keys(batch, i).map_err(|reason| corrupt(key, reason));
        let (cluster_keys, clusters) = dict(col::CLUSTER)?;
        let (label_keys, labels) = dict(col::LABELS)?;
        let timestamps = batch
            .column(col::TIMESTAMP)
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| corrupt(key, "timestamp is not nanoseconds".into()))?
            .values();
        let mut streams: Vec<(&str, &str, Range<usize>)> = Vec::new();
        let mut prev: Option<(i32, i32)> = None;
        for row in 0..batch.num_rows() {
            let pair = (cluster_keys[row], label_keys[row]);
            if prev != Some(pair) {
                prev = Some(pair);
                let (c, l) = (clusters.value(pair.0 as usize), labels.value(pair.1 as usize));
                // Two dictionary entries may hold one text (dictionaries are per batch part).
                if streams.last().is_none_or(|s| s.0 != c || s.1 != l) {
                    streams.push((c, l, row..row));
                }
            }
            streams.last_mut().expect("pushed above").2.end = row + 1;
        }
        Ok(Self { timestamps, streams })
    }
}

/// A string column of `batch`.
pub(super) fn strings<'a>(batch: &'a RecordBatch, i: usize, key: &str) -> Result<&'a StringArray> {
    batch.column(i).as_string_opt::<i32>().ok_or_else(|| {
        corrupt(
            key,
            format!("{} is not a string column", batch.schema().field(i).name()),
        )
    })
}

pub(super) fn corrupt(key: &str, reason: String) -> Error {
    Error::Corrupt {
        key: key.to_string(),
        reason,
    }
}

/// The footer entry of `summary`.
fn key_value<S: FileSummary>(summary: &S) -> Result<KeyValue> {
    let text = serde_json::to_string(summary).map_err(|e| Error::InvalidData {
        reason: format!("{} summary: {e}", S::KEY),
    })?;
    Ok(KeyValue::new(S::KEY.to_string(), text))
}

/// The footer metadata of a logs file holding `batch`: every summary.
pub(super) fn footer_metadata(batch: &RecordBatch, key: &str) -> Result<Vec<KeyValue>> {
    Ok(vec![
        key_value(&volume::Summary::of(batch, key)?)?,
        key_value(&patterns::Summary::of(batch, key)?)?,
    ])
}

/// The summary in a footer; `None` when the file has none (an older file) or one this build
/// does not read.
pub(super) fn from_footer<S: FileSummary>(meta: &ArrowReaderMetadata, key: &str) -> Result<Option<S>> {
    let Some(text) = meta
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == S::KEY))
        .and_then(|e| e.value.as_deref())
    else {
        return Ok(None);
    };
    let summary: S = serde_json::from_str(text).map_err(|e| Error::Corrupt {
        key: key.to_string(),
        reason: format!("{}: {e}", S::KEY),
    })?;
    Ok(summary.readable().then_some(summary))
}

/// `file`'s parsed summary of kind `S`: cached, else its footer's, else made from its rows.
pub(super) async fn cached<S: FileSummary>(
    io: &ParquetIo,
    caches: &SummaryCache,
    file: &Arc<FileMeta>,
) -> Result<Arc<S::Parsed>> {
    let cache = S::cache(caches);
    let cache_key = file.key.id.to_string();
    if let Some(s) = cache.get(&cache_key) {
        return Ok(s);
    }
    let key = file.path.as_ref();
    let meta = io.footer_with_summaries(file, schema::logs_schema()).await?;
    let summary = match from_footer::<S>(&meta, key)? {
        Some(s) => s,
        None => {
            let batches = io.read_file(file, schema::logs_schema(), true, plan::whole).await?;
            let batch =
                arrow_select::concat::concat_batches(&schema::logs_schema(), &batches).map_err(|e| Error::Corrupt {
                    key: key.to_string(),
                    reason: format!("concatenating row groups: {e}"),
                })?;
            S::of(&batch, key)?
        }
    };
    let parsed = Arc::new(summary.parse(key)?);
    cache.insert(&cache_key, parsed.clone());
    Ok(parsed)
}

#[cfg(test)]
mod tests;
