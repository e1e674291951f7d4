//! Merging one group of a table's files into one sorted, deduplicated file.
//!
//! Table-generic: a table only says which columns identify a row ([`ParquetTable::IDENTITY`],
//! led by its row order). Of each run of equal identities the last (from the latest file, and
//! within a file the last written) is kept: exactly the copy readers return. Two ways, same
//! answer:
//! - **In parts** ([`merge_in_parts`]): every input file is already sorted by its identity, so
//!   the inputs are read a batch at a time and merged k-way, and the output is encoded a part
//!   at a time. Memory is a batch per input plus a part, whatever the inputs' size.
//! - **Whole** ([`read_and_merge`]): rows of all inputs are concatenated in write order, sorted
//!   by the identity and then by that position. For tables whose footer summaries or row-group
//!   indexes need a file's rows at once ([`ParquetTable::MERGE_IN_PARTS`]), and for inputs that
//!   turn out not to be sorted by their identity (a merge in parts then gives up).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_ord::ord::make_comparator;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_row::{OwnedRow, RowConverter, Rows, SortField};
use arrow_schema::{SchemaRef, SortOptions};
use bytes::Bytes;
use futures::StreamExt;
use parquet::file::properties::WriterProperties;

use crate::catalog::FileMeta;
use crate::parquet_io::ParquetIo;
use crate::table::ParquetTable;
use crate::writer::PartsEncoder;
use crate::{Error, Result};

/// Rows a merge in parts reads from an input at a time.
const READ_BATCH_ROWS: usize = 16_384;
/// Rows of each part a merge in parts hands the encoder.
const PART_ROWS: usize = 32_768;

/// A file merged in parts: its encoded bytes and rows.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) bytes: Bytes,
    pub(super) rows: u64,
}

/// Merges `files` (in write order) a batch at a time into one encoded file. `None` when they
/// cannot be merged so: an identity column the row format cannot compare, or an input whose
/// rows are not sorted by the identity (the caller then merges them whole).
pub(super) async fn merge_in_parts<T: ParquetTable>(
    io: &ParquetIo,
    files: &[Arc<FileMeta>],
    props: WriterProperties,
) -> Result<Option<Encoded>> {
    let schema = T::schema();
    let mut inputs = Vec::with_capacity(files.len());
    for f in files {
        if let Some(stream) = io.stream_whole_file(f, schema.clone(), READ_BATCH_ROWS).await? {
            inputs.push((f.path.to_string(), stream));
        }
    }
    let name = files.first().map(|f| f.path.to_string()).unwrap_or_default();
    // The merged file is about its inputs' size (smaller once copies are dropped).
    let expected = files.iter().map(|f| f.size as usize).sum::<usize>() + (1 << 16);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // This thread waits for the inputs' reads on the runtime; the merge and the encoding
        // stay off it.
        let inputs = inputs.into_iter().map(|(key, mut stream)| {
            let handle = handle.clone();
            std::iter::from_fn(move || {
                let next = handle.block_on(stream.next())?;
                Some(next.map_err(|source| Error::Parquet {
                    op: "decode",
                    key: key.clone(),
                    source,
                }))
            })
        });
        let mut encoder = PartsEncoder::new(schema.clone(), props, &name, expected)?;
        let merged = merge_sorted(inputs.collect(), &schema, T::IDENTITY, PART_ROWS, |part| {
            encoder.write(&part)
        })?;
        let Some(rows) = merged else {
            return Ok(None);
        };
        Ok(Some(Encoded {
            bytes: encoder.finish()?,
            rows,
        }))
    })
    .await
    .map_err(|e| Error::Task {
        op: "merge files in parts",
        reason: e.to_string(),
    })?
}

/// One input of a merge in parts: its current batch's identity rows and position.
struct Cursor<I> {
    batches: I,
    /// Write order of the input: of equal identities, the highest wins.
    input: usize,
    rows: Rows,
    /// Where the current batch sits in the held batches.
    slot: usize,
    pos: usize,
}

/// Merges `inputs` (write order; each a stream of batches sorted by `identity`) k-way, handing
/// `out` parts of up to `part_rows` rows. Returns the rows written, or `None` as soon as an
/// input's rows are found out of order (what `out` got by then is to be discarded).
/// An input's next row and its write order: what the merge orders inputs by.
fn head<I>(c: &Cursor<I>) -> (arrow_row::Row<'_>, usize) {
    (c.rows.row(c.pos), c.input)
}

fn merge_sorted<I: Iterator<Item = Result<RecordBatch>>>(
    inputs: Vec<I>,
    schema: &SchemaRef,
    identity: &[&str],
    part_rows: usize,
    mut out: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<Option<u64>> {
    let arrow = |op| move |source| Error::Arrow { op, source };
    let columns = identity
        .iter()
        .map(|name| {
            schema.index_of(name).map_err(|_| Error::InvalidData {
                reason: format!("identity column {name} is not in the table's schema"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<SortField> = columns
        .iter()
        .map(|&c| SortField::new(schema.field(c).data_type().clone()))
        .collect();
    if !RowConverter::supports_fields(&fields) {
        return Ok(None);
    }
    let converter = RowConverter::new(fields).map_err(arrow("compare rows"))?;
    // Batches the pending part's rows point into: every input's current batch, and batches
    // finished since the last part.
    let mut held: Vec<RecordBatch> = Vec::new();
    // The next non-empty batch of `batches`, converted and held.
    let load = |batches: &mut I, held: &mut Vec<RecordBatch>| -> Result<Option<Rows>> {
        for batch in batches.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let keys: Vec<ArrayRef> = columns.iter().map(|&c| batch.column(c).clone()).collect();
            let rows = converter.convert_columns(&keys).map_err(arrow("compare rows"))?;
            held.push(batch);
            return Ok(Some(rows));
        }
        Ok(None)
    };
    let mut cursors = Vec::with_capacity(inputs.len());
    for (input, mut batches) in inputs.into_iter().enumerate() {
        if let Some(rows) = load(&mut batches, &mut held)? {
            cursors.push(Cursor {
                batches,
                input,
                rows,
                slot: held.len() - 1,
                pos: 0,
            });
        }
    }
    let mut part: Vec<(usize, usize)> = Vec::with_capacity(part_rows);
    // The identity of the last row taken (its bytes in the row format), once a row is.
    let mut last: Vec<u8> = Vec::new();
    let mut taken_any = false;
    let mut written = 0u64;
    let mut flush = |part: &mut Vec<(usize, usize)>, held: &mut Vec<RecordBatch>, cursors: &mut [Cursor<I>]| {
        let batches: Vec<&RecordBatch> = held.iter().collect();
        let rows = arrow_select::interleave::interleave_record_batch(&batches, part).map_err(arrow("build a part"))?;
        part.clear();
        // Only the inputs' current batches are still needed.
        let current = cursors.iter().map(|c| held[c.slot].clone()).collect();
        *held = current;
        for (slot, c) in cursors.iter_mut().enumerate() {
            c.slot = slot;
        }
        written += rows.num_rows() as u64;
        out(rows)
    };
    while !cursors.is_empty() {
        // The input holding the least identity (ties: the earliest write), and the next one:
        // rows of the first are taken until they pass the second's head.
        let mut best = 0;
        let mut second: Option<usize> = None;
        for i in 1..cursors.len() {
            if head(&cursors[i]) < head(&cursors[best]) {
                second = Some(best);
                best = i;
            } else if second.is_none_or(|s| head(&cursors[i]) < head(&cursors[s])) {
                second = Some(i);
            }
        }
        let bound: Option<(OwnedRow, usize)> =
            second.map(|s| (cursors[s].rows.row(cursors[s].pos).owned(), cursors[s].input));
        loop {
            let c = &cursors[best];
            let row = c.rows.row(c.pos);
            if bound
                .as_ref()
                .is_some_and(|(b, input)| (row, c.input) > (b.row(), *input))
            {
                break;
            }
            let order = if taken_any {
                row.as_ref().cmp(last.as_slice())
            } else {
                Ordering::Greater
            };
            match order {
                Ordering::Less => return Ok(None),
                // The same identity again: this later copy replaces the one taken.
                Ordering::Equal => {
                    if let Some(taken) = part.last_mut() {
                        *taken = (c.slot, c.pos);
                    }
                }
                Ordering::Greater => {
                    last.clear();
                    last.extend_from_slice(row.as_ref());
                    taken_any = true;
                    if part.len() >= part_rows {
                        flush(&mut part, &mut held, &mut cursors)?;
                    }
                    let c = &cursors[best];
                    part.push((c.slot, c.pos));
                }
            }
            let c = &mut cursors[best];
            c.pos += 1;
            if c.pos == c.rows.num_rows() {
                match load(&mut c.batches, &mut held)? {
                    Some(rows) => {
                        c.rows = rows;
                        c.slot = held.len() - 1;
                        c.pos = 0;
                    }
                    None => {
                        cursors.swap_remove(best);
                        break;
                    }
                }
            }
        }
    }
    if !part.is_empty() {
        flush(&mut part, &mut held, &mut cursors)?;
    }
    Ok(Some(written))
}

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

    /// Rows as (key, time, value), for comparing answers.
    fn rows_of(batches: &[RecordBatch]) -> Vec<(String, i64, f64)> {
        let mut out = Vec::new();
        for b in batches {
            use arrow_array::ArrayAccessor;
            use arrow_array::cast::AsArray;
            let dict = b.column(0).as_dictionary::<arrow_array::types::Int32Type>();
            let k = dict.downcast_dict::<StringArray>().unwrap();
            let t = b.column(1).as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
            let v = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            out.extend((0..b.num_rows()).map(|i| (k.value(i).to_string(), t.value(i), v.value(i))));
        }
        out
    }

    fn keyed_schema() -> SchemaRef {
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        Arc::new(Schema::new(vec![
            Field::new("k", dict, false),
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Float64, false),
        ]))
    }

    /// One input file's batches, cut every `cut` rows: `rows` as given.
    fn input(schema: &SchemaRef, rows: &[(String, i64, f64)], cut: usize) -> Vec<RecordBatch> {
        rows.chunks(cut)
            .map(|c| {
                let k: arrow_array::DictionaryArray<arrow_array::types::Int32Type> =
                    c.iter().map(|r| r.0.as_str()).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(k),
                        Arc::new(arrow_array::Int64Array::from_iter_values(c.iter().map(|r| r.1))),
                        Arc::new(Float64Array::from_iter_values(c.iter().map(|r| r.2))),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    proptest::proptest! {
        /// The merge in parts answers what the whole merge answers, for any sorted inputs:
        /// duplicates within and across files, inputs cut into batches anywhere, parts of any
        /// size.
        #[test]
        fn a_merge_in_parts_answers_what_the_whole_merge_answers(
            files in proptest::collection::vec(
                proptest::collection::vec((0u8..6, 0i64..8), 0..40), 1..6),
            cuts in proptest::collection::vec(1usize..9, 6),
            part_rows in 1usize..12,
        ) {
            let schema = keyed_schema();
            let mut value = 0.0;
            let inputs: Vec<Vec<RecordBatch>> = files
                .iter()
                .zip(&cuts)
                .map(|(rows, &cut)| {
                    let mut rows: Vec<(String, i64, f64)> = rows
                        .iter()
                        .map(|&(k, t)| {
                            value += 1.0;
                            (format!("series-{k}"), t, value)
                        })
                        .collect();
                    // Sorted by identity; a stable sort keeps equal identities in write order.
                    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
                    input(&schema, &rows, cut)
                })
                .collect();
            let whole = merge(inputs.concat(), schema.clone(), &["k", "t"]).unwrap();
            let mut parts = Vec::new();
            let written = merge_sorted(
                inputs.into_iter().map(|b| b.into_iter().map(Ok)).collect(),
                &schema,
                &["k", "t"],
                part_rows,
                |part| {
                    parts.push(part);
                    Ok(())
                },
            )
            .unwrap()
            .expect("sorted inputs merge in parts");
            proptest::prop_assert!(parts.iter().all(|p| p.num_rows() <= part_rows));
            proptest::prop_assert_eq!(written, whole.num_rows() as u64);
            proptest::prop_assert_eq!(rows_of(&parts), rows_of(&[whole]));
        }
    }

    #[test]
    fn an_input_out_of_order_gives_the_merge_in_parts_up() {
        let schema = keyed_schema();
        let row = |k: &str, t, v| (k.to_string(), t, v);
        let sorted = input(&schema, &[row("a", 1, 1.0), row("b", 1, 2.0)], 8);
        // Out of order across its two batches only.
        let unsorted = input(&schema, &[row("a", 2, 3.0), row("c", 1, 4.0), row("b", 5, 5.0)], 2);
        let merged = merge_sorted(
            vec![sorted.into_iter().map(Ok), unsorted.into_iter().map(Ok)],
            &schema,
            &["k", "t"],
            100,
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(merged, None, "an unsorted input is merged whole instead");
    }
}
