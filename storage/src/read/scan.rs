//! Reading every record of a range a chunk at a time, so memory stays bounded by the chunk, not
//! the range: what the Drilldown reads (fields, patterns) do on top of
//! [`LogSource::select_logs`].

use crate::Result;
use crate::read::{Direction, LogRequest, LogSource};
use crate::signals::LogRecord;

/// Records read per request of a scan: large, because each read of the Parquet table reopens
/// its files.
pub const SCAN_CHUNK: usize = 20_000;

/// Reads every record of `req` in its direction (its `limit` is ignored), in chunks of
/// `first_chunk` records growing to [`SCAN_CHUNK`], handing each to `visit` once, until `visit`
/// answers false. Each chunk starts at the timestamp where the previous ended, skipping the
/// records already seen there.
pub async fn scan_logs<S: LogSource + ?Sized, E: From<crate::Error>>(
    source: &S,
    mut req: LogRequest,
    first_chunk: usize,
    mut visit: impl FnMut(&LogRecord) -> std::result::Result<bool, E>,
) -> std::result::Result<(), E> {
    let mut chunk = first_chunk.max(1);
    let mut boundary: Vec<LogRecord> = Vec::new();
    while req.start < req.end {
        // The head answers without yielding: let a deadline and a gone client stop us.
        tokio::task::yield_now().await;
        req.limit = Some(chunk);
        let batch: Result<Vec<LogRecord>> = source.select_logs(&req).await;
        let batch = batch?;
        for rec in &batch {
            if boundary.first().is_some_and(|b| b.timestamp == rec.timestamp) && boundary.contains(rec) {
                continue;
            }
            if !visit(rec)? {
                return Ok(());
            }
        }
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            break;
        };
        if batch.len() < chunk {
            break;
        }
        let last_ts = last.timestamp;
        if first.timestamp == last_ts {
            // A whole chunk at one timestamp: read more of it at once.
            chunk = chunk.saturating_mul(2);
        } else if chunk < SCAN_CHUNK {
            // More is needed than the first guess: fewer, bigger reads.
            chunk = chunk.saturating_mul(2).min(SCAN_CHUNK);
        }
        boundary = batch.iter().filter(|r| r.timestamp == last_ts).cloned().collect();
        match req.direction {
            Direction::Forward => req.start = last_ts,
            Direction::Backward => req.end = last_ts.saturating_add(1),
        }
    }
    Ok(())
}
