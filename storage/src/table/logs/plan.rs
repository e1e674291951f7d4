//! The read plan of one logs-table file: row groups and pages kept by `timestamp` statistics
//! (and `service_name` when a matcher pins it), through [`crate::parquet_io::plan`].

use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use super::schema;
use crate::parquet_io::plan::{self, ColumnCheck, ReadPlan};
use crate::signals::TimestampNs;
use crate::types::Matcher;

/// Keeps the row groups and pages whose `timestamp` statistics overlap the closed range
/// `[start, end]` and whose `service_name` statistics can hold a pinned value. Missing
/// statistics keep the data.
pub(super) fn plan(
    meta: &ArrowReaderMetadata,
    start: TimestampNs,
    end: TimestampNs,
    matchers: &[Matcher],
) -> Option<ReadPlan> {
    let service = matchers
        .iter()
        .find(|m| m.name == schema::SERVICE_NAME_LABEL)
        .and_then(Matcher::exact_value);
    let checks: Vec<ColumnCheck<'_>> = [ColumnCheck::overlaps_ns(meta, schema::TIMESTAMP, start, end)]
        .into_iter()
        .chain(service.map(|v| ColumnCheck::may_contain(meta, schema::SERVICE_NAME, v)))
        .flatten()
        .collect();
    plan::plan(meta, &checks)
}
