//! An in-memory [`LogSource`] for the engine's tests: storage's reference source (the one
//! definition of the read contract's semantics and record order) plus a log of the requests it
//! saw, so tests can check what the engine pushed down.

use async_trait::async_trait;
use tributary_storage::Result;
use tributary_storage::read::{LogRequest, LogSource};
use tributary_storage::signals::LogRecord;
use tributary_storage::test_util::MemLogSource as Reference;
use tributary_storage::types::Labels;

#[derive(Debug)]
pub(crate) struct MemLogSource {
    inner: Reference,
    /// Every request seen, so tests can check what was pushed down.
    pub(crate) requests: std::sync::Mutex<Vec<LogRequest>>,
}

impl MemLogSource {
    pub(crate) fn new(records: Vec<LogRecord>) -> Self {
        Self {
            inner: Reference::new(records),
            requests: Default::default(),
        }
    }
}

/// A record with stream labels from `pairs`, at `ts` nanoseconds.
pub(crate) fn record(pairs: &[(&str, &str)], ts: i64, line: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(pairs).into(),
        timestamp: ts,
        body: line.into(),
        attributes: "{}".into(),
        ..Default::default()
    }
}

#[async_trait]
impl LogSource for MemLogSource {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        if let Ok(mut seen) = self.requests.lock() {
            seen.push(req.clone());
        }
        self.inner.select_logs(req).await
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        self.inner.log_streams(req).await
    }
}
