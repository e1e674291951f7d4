//! Merging one group of a table's files into one sorted, deduplicated record batch.
//!
//! Table-generic: a table only says which columns identify a row ([`ParquetTable::IDENTITY`],
//! led by its row order). Rows of all inputs are concatenated in write order, sorted by the
//! identity and then by that position, and of each run of equal identities the last (from the
//! latest file) is kept: exactly the copy readers return.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_ord::ord::make_comparator;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_schema::SortOptions;

use crate::catalog::FileMeta;
use crate::parquet_io::ParquetIo;
use crate::table::ParquetTable;
use crate::{Error, Result};

/// Reads `files` (in write order) whole and merges their rows.
pub(super) async fn read_and_merge<T: ParquetTable>(io: &ParquetIo, files: &[Arc<FileMeta>]) -> Result<RecordBatch> {
    let mut batches = Vec::new();
    for f in files {
        batches.extend(io.read_whole_file(f, T::schema()).await?);
    }
    let schema = T::schema();
    tokio::task::spawn_blocking(move || merge(batches, schema, T::IDENTITY))
        .await
        .map_err(|e| Error::Task {
            op: "merge files",
            reason: e.to_string(),
        })?
}

/// Sorts the rows of `batches` (in write order) by `identity` and keeps the last of each
/// identity. Each intermediate copy is dropped as soon as the next exists, so the peak is
/// about two copies of the rows.
pub(super) fn merge(
    batches: Vec<RecordBatch>,
    schema: arrow_schema::SchemaRef,
    identity: &[&str],
) -> Result<RecordBatch> {
    let arrow = |op| move |source| Error::Arrow { op, source };
    let all = arrow_select::concat::concat_batches(&schema, &batches).map_err(arrow("concatenate files"))?;
    drop(batches);
    let n = all.num_rows();
    if n == 0 {
        return Ok(all);
    }
    let position: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..n as u32));
    let columns: Vec<ArrayRef> = identity
        .iter()
        .map(|name| {
            all.column_by_name(name).cloned().ok_or_else(|| Error::InvalidData {
                reason: format!("identity column {name} is not in the table's schema"),
            })
        })
        .collect::<Result<_>>()?;
    let mut keys: Vec<SortColumn> = columns
        .iter()
        .map(|c| SortColumn {
            values: c.clone(),
            options: None,
        })
        .collect();
    keys.push(SortColumn {
        values: position,
        options: None,
    });
    let order = lexsort_to_indices(&keys, None).map_err(arrow("sort rows"))?;
    drop((keys, columns));
    let sorted = arrow_select::take::take_record_batch(&all, &order).map_err(arrow("reorder rows"))?;
    drop((all, order));

    // Row i survives unless row i+1 has the same identity (the later copy wins).
    let sorted_ids: Vec<ArrayRef> = identity
        .iter()
        .filter_map(|name| sorted.column_by_name(name).cloned())
        .collect();
    let cmps = sorted_ids
        .iter()
        .map(|c| make_comparator(c.as_ref(), c.as_ref(), SortOptions::default()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(arrow("compare rows"))?;
    let keep: BooleanArray = (0..n)
        .map(|i| Some(i + 1 == n || cmps.iter().any(|cmp| cmp(i, i + 1) != Ordering::Equal)))
        .collect();
    if keep.true_count() == n {
        return Ok(sorted);
    }
    arrow_select::filter::filter_record_batch(&sorted, &keep).map_err(arrow("drop duplicate rows"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    #[test]
    fn rows_sort_by_identity_and_the_latest_copy_wins() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("v", DataType::Float64, false),
        ]));
        let batch = |k: &[&str], v: &[f64]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(k.to_vec())),
                    Arc::new(Float64Array::from(v.to_vec())),
                ],
            )
            .unwrap()
        };
        let older = batch(&["b", "a", "c"], &[1.0, 2.0, 3.0]);
        let newer = batch(&["a", "d", "b"], &[20.0, 4.0, 10.0]);
        let out = merge(vec![older, newer], schema.clone(), &["k"]).unwrap();
        let k: Vec<_> = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        let v: Vec<_> = out
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(k, ["a", "b", "c", "d"]);
        assert_eq!(v, [20.0, 10.0, 3.0, 4.0], "the later file's value wins");
        let exact = merge(vec![out.clone(), out.clone()], schema.clone(), &["k", "v"]).unwrap();
        assert_eq!(exact.num_rows(), 4, "rows equal in every identity column are one");
        assert_eq!(merge(vec![], schema, &["k"]).unwrap().num_rows(), 0);
    }
}
