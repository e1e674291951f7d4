//! An in-memory [`LogSource`] for tests: the reference behaviour of the read contract (matchers,
//! half-open range, hints applied, ordering by `(timestamp, labels)` in the direction, limit).

use async_trait::async_trait;
use tributary_storage::Result;
use tributary_storage::read::{Direction, LineHint, LogRequest, LogSource};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{Labels, matches_all};

#[derive(Debug, Default)]
pub(crate) struct MemLogSource {
    records: Vec<LogRecord>,
    /// Every request seen, so tests can check what was pushed down.
    pub(crate) requests: std::sync::Mutex<Vec<LogRequest>>,
}

impl MemLogSource {
    pub(crate) fn new(records: Vec<LogRecord>) -> Self {
        Self {
            records,
            requests: Default::default(),
        }
    }

    fn matching<'a>(&'a self, req: &'a LogRequest) -> impl Iterator<Item = &'a LogRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| r.timestamp >= req.start && r.timestamp < req.end && matches_all(&req.matchers, &r.labels))
    }
}

/// A record with stream labels from `pairs`, at `ts` nanoseconds.
pub(crate) fn record(pairs: &[(&str, &str)], ts: i64, line: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(pairs),
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
        let mut out: Vec<LogRecord> = self
            .matching(req)
            .filter(|r| {
                req.line_hints.iter().all(|h| match h {
                    LineHint::Contains(s) => r.body.contains(s.as_str()),
                    LineHint::NotContains(s) => !r.body.contains(s.as_str()),
                })
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            a.timestamp
                .cmp(&b.timestamp)
                .then_with(|| a.labels.cmp(&b.labels))
                .then_with(|| a.body.cmp(&b.body))
        });
        if req.direction == Direction::Backward {
            out.reverse();
        }
        if let Some(limit) = req.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        let mut out: Vec<Labels> = self.matching(req).map(|r| r.labels.clone()).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }
}
