//! What the querier makes of an answer's body (the formats are the parent module's contract).

use super::*;
use crate::read::{BucketVolume, StreamVolume, Within};
use arrow_array::{BinaryArray, BooleanArray};

/// A [`Call::Select`] answer for `range` (the request's): samples, or XOR chunks decoded and
/// cut to the range.
pub fn series(body: bytes::Bytes, range: TimeRange) -> Result<Vec<Series>> {
    let (_, batches) = stream(body)?;
    series_of(batches, range)
}

/// A [`Call::SelectWithin`] answer for `range` and `budget` (the request's).
pub fn within(body: bytes::Bytes, range: TimeRange, budget: usize) -> Result<Within> {
    let (schema, batches) = stream(body)?;
    let counted = schema
        .metadata()
        .get(COUNTED)
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| corrupt("a counted read's answer without its count"))?;
    if counted > budget {
        return Ok(Within { counted, series: None });
    }
    Ok(Within {
        counted,
        series: Some(series_of(batches, range)?),
    })
}

fn series_of(batches: Vec<RecordBatch>, range: TimeRange) -> Result<Vec<Series>> {
    let mut out = Vec::new();
    for batch in batches {
        let labels = LabelColumns::of(list(&batch, 0)?, list(&batch, 1)?)?;
        if batch.schema().fields().get(2).is_some_and(|f| f.name() == "chunks") {
            let (chunks, sorted) = (
                Items::<BinaryArray>::of(list(&batch, 2)?)?,
                col::<BooleanArray>(&batch, 3)?,
            );
            for row in 0..batch.num_rows() {
                let c = chunks.rows(row).filter(|&i| chunks.items.is_valid(i));
                let c = c.map(|i| chunks.items.value(i));
                let samples = crate::xor_chunk::decode_chunks(c, sorted.value(row), range);
                if !samples.is_empty() {
                    out.push(Series::new(labels.at(row)?, samples));
                }
            }
            continue;
        }
        let (ts, vs) = (
            Items::<Int64Array>::of(list(&batch, 2)?)?,
            Items::<Float64Array>::of(list(&batch, 3)?)?,
        );
        for row in 0..batch.num_rows() {
            let (t, v) = (ts.rows(row), vs.rows(row));
            if t.len() != v.len() {
                return Err(corrupt("timestamps and samples of a series differ in length"));
            }
            let (t, v) = (&ts.items.values()[t], &vs.items.values()[v]);
            let samples = t.iter().zip(v).map(|(&t, &v)| Sample::new(t, v)).collect();
            out.push(Series::new(labels.at(row)?, samples));
        }
    }
    // Sorted by labels here, on the decoding thread (each ingester's answer on its own), so the
    // querier's merge of its ingesters is one pass and the engine's sort finds them in order.
    out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// A [`Call::SelectLogs`] answer.
pub fn logs(body: bytes::Bytes) -> Result<Vec<LogRecord>> {
    let mut out: Vec<LogRecord> = Vec::new();
    for batch in batches(body)? {
        let labels_of = LabelColumns::of(list(&batch, 0)?, list(&batch, 1)?)?;
        let int = |i: usize| col::<Int64Array>(&batch, i);
        let text = |i: usize| col::<StringArray>(&batch, i);
        let (timestamp, observed) = (int(2)?, int(3)?);
        let severity_number = col::<Int32Array>(&batch, 4)?;
        let flags = col::<UInt32Array>(&batch, 9)?;
        let [severity_text, body, trace_id, span_id] = [text(5)?, text(6)?, text(7)?, text(8)?];
        let [attributes, resource_attributes, scope_name, scope_version, event_name] =
            [text(10)?, text(11)?, text(12)?, text(13)?, text(14)?];
        for row in 0..batch.num_rows() {
            out.push(LogRecord {
                labels: {
                    // A stream's records sit together: consecutive equal label sets share one copy.
                    let labels = labels_of.at(row)?;
                    match out.last() {
                        Some(prev) if *prev.labels == labels => prev.labels.clone(),
                        _ => Arc::new(labels),
                    }
                },
                timestamp: timestamp.value(row),
                observed_timestamp: observed.value(row),
                severity_number: severity_number.value(row),
                severity_text: severity_text.value(row).to_string(),
                body: body.value(row).to_string(),
                trace_id: trace_id.value(row).to_string(),
                span_id: span_id.value(row).to_string(),
                flags: flags.value(row),
                attributes: attributes.value(row).to_string(),
                resource_attributes: resource_attributes.value(row).into(),
                scope_name: scope_name.value(row).to_string(),
                scope_version: scope_version.value(row).to_string(),
                event_name: event_name.value(row).to_string(),
            });
        }
    }
    Ok(out)
}

/// A label-set listing ([`Call::Series`], [`Call::LogStreams`]).
pub fn label_sets(body: &[u8]) -> Result<Vec<Labels>> {
    Ok(json::<Vec<Pairs>>(body)?.into_iter().map(labels_in).collect())
}

/// A [`Call::LogVolume`] answer.
pub fn volumes(body: &[u8]) -> Result<Vec<StreamVolume>> {
    Ok(json::<Vec<(Pairs, Vec<(u32, u64, u64)>)>>(body)?
        .into_iter()
        .map(|(labels, buckets)| StreamVolume {
            labels: labels_in(labels),
            buckets: buckets
                .into_iter()
                .map(|(bucket, bytes, lines)| BucketVolume { bucket, bytes, lines })
                .collect(),
        })
        .collect())
}

/// A [`Call::SeriesSamples`] answer.
pub fn series_samples(body: &[u8]) -> Result<Vec<SeriesSize>> {
    Ok(json::<Vec<(Pairs, usize)>>(body)?
        .into_iter()
        .map(|(labels, samples)| SeriesSize {
            labels: labels_in(labels),
            samples,
        })
        .collect())
}

/// A [`Call::SelectHistograms`] answer.
pub fn histograms(body: &[u8]) -> Result<Vec<HistogramSeries>> {
    Ok(json::<Vec<WireHistogramSeries>>(body)?
        .into_iter()
        .map(WireHistogramSeries::into_series)
        .collect())
}

/// A [`Call::Exemplars`] answer.
pub fn exemplars(body: &[u8]) -> Result<Vec<ExemplarSeries>> {
    Ok(json::<Vec<WireExemplarSeries>>(body)?
        .into_iter()
        .map(WireExemplarSeries::into_series)
        .collect())
}

/// A [`Call::Metadata`] answer.
pub fn metadata(body: &[u8]) -> Result<Vec<MetricMetadata>> {
    json(body)
}

/// Any other JSON answer (names, values, a count) or a [`WireError`].
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| corrupt(&format!("JSON answer: {e}")))
}

fn batches(body: bytes::Bytes) -> Result<Vec<RecordBatch>> {
    Ok(stream(body)?.1)
}

/// The batches of an Arrow IPC stream, decoded in place: their arrays are slices of `body` (the
/// writer pads every buffer to 8 bytes), where a reader over the bytes first copied each
/// message into fresh, zeroed memory (a megabyte or more per ingester for a large select).
fn stream(body: bytes::Bytes) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut buffer = arrow_buffer::Buffer::from(body);
    let mut decoder = arrow_ipc::reader::StreamDecoder::new();
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(arrow_err)? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(arrow_err)?;
    let schema = decoder
        .schema()
        .ok_or_else(|| corrupt("an Arrow answer without its schema"))?;
    Ok((schema, batches))
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt {
        key: "internal read answer".into(),
        reason: reason.into(),
    }
}

fn col<T: 'static>(batch: &RecordBatch, i: usize) -> Result<&T> {
    batch
        .columns()
        .get(i)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| corrupt(&format!("column {i} missing or of the wrong type")))
}

fn list(batch: &RecordBatch, i: usize) -> Result<&ListArray> {
    col::<ListArray>(batch, i)
}

fn prim<T: 'static>(a: &ArrayRef) -> Result<&T> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| corrupt("list items of the wrong type"))
}

/// A list column's items, read row by row through its offsets: no sliced array (and its
/// allocations) per row.
struct Items<'a, T> {
    items: &'a T,
    offsets: &'a [i32],
}

impl<'a, T: 'static> Items<'a, T> {
    fn of(list: &'a ListArray) -> Result<Self> {
        Ok(Self {
            items: prim::<T>(list.values())?,
            offsets: list.value_offsets(),
        })
    }

    /// The item indexes of `row` (offsets the IPC reader validated against the items).
    fn rows(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }
}

/// A batch's label columns (`names`, `values`).
pub(super) struct LabelColumns<'a> {
    names: Items<'a, StringArray>,
    values: Items<'a, StringArray>,
}

impl<'a> LabelColumns<'a> {
    pub(super) fn of(names: &'a ListArray, values: &'a ListArray) -> Result<Self> {
        Ok(Self {
            names: Items::of(names)?,
            values: Items::of(values)?,
        })
    }

    /// The label set of `row`.
    pub(super) fn at(&self, row: usize) -> Result<Labels> {
        let (n, v) = (self.names.rows(row), self.values.rows(row));
        if n.len() != v.len() {
            return Err(corrupt("label names and values differ in length"));
        }
        let (names, values) = (self.names.items, self.values.items);
        let pairs = n.clone().zip(v).map(|(i, j)| (names.value(i), values.value(j)));
        // A label set sent by our own encoder is already sorted, unique and without empty
        // values: packed straight from the columns. Anything else is normalised as any input is.
        let valid =
            n.clone().skip(1).all(|i| names.value(i - 1) < names.value(i)) && pairs.clone().all(|(_, v)| !v.is_empty());
        Ok(match valid {
            true => Labels::from_sorted_pairs(pairs),
            false => Labels::new(pairs.map(|(n, v)| Label::new(n, v)).collect()),
        })
    }
}
