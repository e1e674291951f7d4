//! The Arrow IPC answers: the schemas of float series and log records, and their encoders
//! (their decoders are in `decode`).

use super::*;

/// A non-null list column of `item`s.
fn list_of(name: &str, item: DataType) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("item", item, true))), false)
}

/// A series answer: the label pairs (`names`, `values`), then `rest`; the samples `counted`
/// in its metadata when given ([`COUNTED`]).
fn labelled(rest: Vec<Field>, counted: Option<usize>) -> SchemaRef {
    let mut fields = vec![list_of("names", DataType::Utf8), list_of("values", DataType::Utf8)];
    fields.extend(rest);
    let metadata = counted
        .map(|n| (COUNTED.to_string(), n.to_string()))
        .into_iter()
        .collect();
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

pub(super) fn series_schema(counted: Option<usize>) -> SchemaRef {
    labelled(
        vec![
            list_of("timestamps", DataType::Int64),
            list_of("samples", DataType::Float64),
        ],
        counted,
    )
}

/// Float series as XOR chunks (see the module docs).
pub(super) fn chunks_schema(counted: Option<usize>) -> SchemaRef {
    labelled(
        vec![
            list_of("chunks", DataType::Binary),
            Field::new("sorted", DataType::Boolean, false),
        ],
        counted,
    )
}

const LOG_TEXT_COLUMNS: [&str; 4] = ["severity_text", "body", "trace_id", "span_id"];
const LOG_TAIL_COLUMNS: [&str; 5] = [
    "attributes",
    "resource_attributes",
    "scope_name",
    "scope_version",
    "event_name",
];

pub(super) fn logs_schema() -> SchemaRef {
    let mut fields = vec![
        list_of("names", DataType::Utf8),
        list_of("values", DataType::Utf8),
        Field::new("timestamp", DataType::Int64, false),
        Field::new("observed_timestamp", DataType::Int64, false),
        Field::new("severity_number", DataType::Int32, false),
    ];
    fields.extend(LOG_TEXT_COLUMNS.iter().map(|n| Field::new(*n, DataType::Utf8, false)));
    fields.push(Field::new("flags", DataType::UInt32, false));
    fields.extend(LOG_TAIL_COLUMNS.iter().map(|n| Field::new(*n, DataType::Utf8, false)));
    Arc::new(Schema::new(fields))
}

pub(super) fn labels_builders<'a>(labels: impl Iterator<Item = &'a Labels> + Clone) -> (ArrayRef, ArrayRef) {
    // Sized up front: grown by doubling, the builders copied their bytes several times.
    let (mut rows, mut pairs, mut name_bytes, mut value_bytes) = (0, 0, 0, 0);
    for l in labels.clone() {
        rows += 1;
        pairs += l.len();
        for label in l.iter() {
            name_bytes += label.name.len();
            value_bytes += label.value.len();
        }
    }
    let (mut names, mut values) = (
        ListBuilder::with_capacity(StringBuilder::with_capacity(pairs, name_bytes), rows),
        ListBuilder::with_capacity(StringBuilder::with_capacity(pairs, value_bytes), rows),
    );
    for l in labels {
        for label in l.iter() {
            names.values().append_value(label.name);
            values.values().append_value(label.value);
        }
        names.append(true);
        values.append(true);
    }
    (Arc::new(names.finish()), Arc::new(values.finish()))
}

pub(super) fn encode_series(series: &[Series], counted: Option<usize>) -> Result<Answer> {
    let schema = series_schema(counted);
    let mut batches = Vec::new();
    for chunk in series.chunks(BATCH_ROWS) {
        let (names, values) = labels_builders(chunk.iter().map(|s| &s.labels));
        // The samples dominate: built as plain vectors with one allocation each, no builder.
        let total: usize = chunk.iter().map(|s| s.samples.len()).sum();
        let (mut ts, mut vs) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let mut offsets = Vec::with_capacity(chunk.len() + 1);
        offsets.push(0i32);
        for s in chunk {
            ts.extend(s.samples.iter().map(|x| x.timestamp));
            vs.extend(s.samples.iter().map(|x| x.value));
            let end = i32::try_from(ts.len()).map_err(|_| Error::InvalidData {
                reason: "more than 2^31 samples in one answer batch".into(),
            })?;
            offsets.push(end);
        }
        let offsets = arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(offsets));
        let list = |item: DataType, values: ArrayRef| -> Result<ArrayRef> {
            Ok(Arc::new(
                ListArray::try_new(Arc::new(Field::new("item", item, true)), offsets.clone(), values, None)
                    .map_err(arrow_err)?,
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            names,
            values,
            list(DataType::Int64, Arc::new(Int64Array::from(ts)))?,
            list(DataType::Float64, Arc::new(Float64Array::from(vs)))?,
        ];
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
    }
    Answer::arrow(batches, schema)
}

pub(super) fn encode_chunks(series: &[ChunkedSeries], counted: Option<usize>) -> Result<Answer> {
    let schema = chunks_schema(counted);
    let mut batches = Vec::new();
    let too_long = || Error::InvalidData {
        reason: "more than 2 GiB of chunks in one answer batch".into(),
    };
    for part in series.chunks(BATCH_ROWS) {
        let (names, values) = labels_builders(part.iter().map(|s| &*s.labels));
        // The chunk bytes go into a kept buffer (`pool`), each chunk copied once.
        let bytes: usize = part.iter().flat_map(|s| &s.chunks).map(Vec::len).sum();
        let count: usize = part.iter().map(|s| s.chunks.len()).sum();
        let mut data = pool::ANSWERS.buffer(bytes);
        let (mut ends, mut rows) = (Vec::with_capacity(count + 1), Vec::with_capacity(part.len() + 1));
        ends.push(0i32);
        rows.push(0i32);
        let mut sorted = BooleanBuilder::with_capacity(part.len());
        for s in part {
            for c in &s.chunks {
                data.extend_from_slice(c);
                ends.push(i32::try_from(data.len()).map_err(|_| too_long())?);
            }
            rows.push(i32::try_from(ends.len() - 1).map_err(|_| too_long())?);
            sorted.append_value(s.sorted);
        }
        let offsets = |v: Vec<i32>| arrow_buffer::OffsetBuffer::new(arrow_buffer::ScalarBuffer::from(v));
        let data = arrow_buffer::Buffer::from(pool::ANSWERS.bytes(data));
        let items = BinaryArray::try_new(offsets(ends), data, None).map_err(arrow_err)?;
        let item = Arc::new(Field::new("item", DataType::Binary, true));
        let chunks = ListArray::try_new(item, offsets(rows), Arc::new(items), None).map_err(arrow_err)?;
        let columns: Vec<ArrayRef> = vec![names, values, Arc::new(chunks), Arc::new(sorted.finish())];
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
    }
    Answer::arrow(batches, schema)
}

pub(super) fn encode_logs(records: &[LogRecord]) -> Result<Answer> {
    let schema = logs_schema();
    let mut batches = Vec::new();
    for chunk in records.chunks(BATCH_ROWS) {
        let (names, values) = labels_builders(chunk.iter().map(|r| &*r.labels));
        let int = |f: fn(&LogRecord) -> i64| -> ArrayRef {
            let mut b = Int64Builder::with_capacity(chunk.len());
            chunk.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        };
        let text = |f: fn(&LogRecord) -> &str| -> ArrayRef {
            let mut b = StringBuilder::new();
            chunk.iter().for_each(|r| b.append_value(f(r)));
            Arc::new(b.finish())
        };
        let mut severity = Int32Builder::with_capacity(chunk.len());
        let mut flags = UInt32Builder::with_capacity(chunk.len());
        for r in chunk {
            severity.append_value(r.severity_number);
            flags.append_value(r.flags);
        }
        let columns: Vec<ArrayRef> = vec![
            names,
            values,
            int(|r| r.timestamp),
            int(|r| r.observed_timestamp),
            Arc::new(severity.finish()),
            text(|r| &r.severity_text),
            text(|r| &r.body),
            text(|r| &r.trace_id),
            text(|r| &r.span_id),
            Arc::new(flags.finish()),
            text(|r| &r.attributes),
            text(|r| &r.resource_attributes),
            text(|r| &r.scope_name),
            text(|r| &r.scope_version),
            text(|r| &r.event_name),
        ];
        batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)?);
    }
    Answer::arrow(batches, schema)
}
