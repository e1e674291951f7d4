//! Row-group indexes: data a table keeps beside its row groups to skip them, stored inside the
//! Parquet file between the last row group and the footer (where Parquet writers put their own
//! bloom filters), and located from the footer.
//!
//! # On-disk contract
//! - A table's [`RowGroupIndex`] named `<name>` holds one blob per row group, in row group
//!   order. The writer stores the blobs back to back after the row groups and records where
//!   they are in the footer's key-value metadata under `tributary.index.<name>`, as JSON:
//!   `{"format": "<what a blob is>", "row_groups": [[offset, length], ...]}`, byte offsets in
//!   the file. `format` is the table's description of a blob, precise enough for another
//!   reader to use it (the logs table's `body_grams` documents its own).
//! - Other Parquet readers ignore the blobs: nothing in the Parquet metadata points at them.
//! - An index is only ever a way to skip: a reader that finds none (older files, the option
//!   off) or cannot parse it reads the row groups.
//! - The footer cache keeps these entries (they are small); the summaries under other
//!   `tributary.` keys it drops.
//!
//! Adding an index to a table: implement `ParquetTable::row_group_indexes`; read it back with
//! [`Located::of`] and [`read_ranges`].

use std::ops::Range;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::metadata::KeyValue;
use serde::{Deserialize, Serialize};

use super::ParquetIo;
use crate::catalog::FileMeta;
use crate::{Error, Result};

/// Footer keys of row-group index locations (kept by the footer cache).
pub(crate) const INDEX_KEY_PREFIX: &str = "tributary.index.";

/// One index of a file being written: one blob per row group, in row group order.
#[derive(Debug)]
pub(crate) struct RowGroupIndex {
    /// The footer key's suffix.
    pub name: &'static str,
    /// What a blob is (recorded in the footer for other readers).
    pub format: &'static str,
    pub blobs: Vec<Vec<u8>>,
}

/// The footer entry of an index.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: String,
    row_groups: Vec<(u64, u64)>,
}

impl RowGroupIndex {
    /// The footer entry locating this index's blobs, stored at `offsets`.
    pub(crate) fn footer_entry(&self, offsets: &[u64]) -> KeyValue {
        let entry = Entry {
            format: self.format.to_string(),
            row_groups: offsets
                .iter()
                .zip(&self.blobs)
                .map(|(&o, b)| (o, b.len() as u64))
                .collect(),
        };
        // Serialising a struct of a string and integers cannot fail.
        let json = serde_json::to_string(&entry).unwrap_or_default();
        KeyValue::new(format!("{INDEX_KEY_PREFIX}{}", self.name), json)
    }
}

/// Where one index's blobs are in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Per row group: the blob's byte range in the file.
    pub row_groups: Vec<Range<u64>>,
}

impl Located {
    /// Index `name` of the file `meta` describes, when it has one in `format` covering every row
    /// group within `file_size` bytes. Anything else (no entry, another format, a malformed
    /// entry) is `None`: the reader reads the row groups.
    pub(crate) fn of(meta: &ArrowReaderMetadata, name: &str, format: &str, file_size: u64) -> Option<Self> {
        let md = meta.metadata();
        let key = format!("{INDEX_KEY_PREFIX}{name}");
        let value = md
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .as_deref()?;
        let entry: Entry = serde_json::from_str(value).ok()?;
        if entry.format != format || entry.row_groups.len() != md.num_row_groups() {
            return None;
        }
        let row_groups: Vec<Range<u64>> = entry
            .row_groups
            .iter()
            .map(|&(o, len)| o..o.saturating_add(len))
            .collect();
        row_groups
            .iter()
            .all(|r| r.end <= file_size)
            .then_some(Self { row_groups })
    }
}

/// Reads byte ranges of `file` in one request where the store can coalesce them.
pub(crate) async fn read_ranges(io: &ParquetIo, file: &FileMeta, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    io.store
        .get_ranges(&file.path, ranges)
        .await
        .map_err(|source| Error::ObjectStore {
            op: "read row-group index",
            key: file.path.to_string(),
            source,
        })
}
