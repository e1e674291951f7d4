//! `/loki/api/v1/tail`: Loki's live tail over a websocket, as Grafana's Explore "Live" mode and
//! `logcli --tail` use it.
//!
//! Parameters are Loki's: `query` (a log query; metric queries are refused), `limit` (lines per
//! message, default 100), `start` (default an hour ago) and `delay_for` (seconds, at most 5).
//! Each message is `{"streams":[{"stream":{...},"values":[["<ns>","<line>"],...]}],
//! "dropped_entries":null}`; with `X-Loki-Response-Encoding-Flags: categorize-labels` the streams
//! take the categorised shape of query answers (see [`super`]) and the message ends with
//! `"encodingFlags":["categorize-labels"]`, as Loki's tail writes it.
//!
//! Loki's ingesters push new lines to tailers. We have no push path from ingest to query (the
//! query tier only reads through `LogSource`), so a tail polls: every second it runs the query
//! forward from where the last poll ended, minus a 2 s grace period, to `now - delay_for`, and
//! sends the lines it has not sent yet. So a line is caught if it is stored within 2 s (plus
//! `delay_for`) of its own timestamp; a later one is missed, as a line older than its stream's
//! newest is in Loki. A full batch does not skip anything: the next poll resumes at the last line
//! sent and runs at once, so a tail falls behind under a flood instead of dropping lines, and
//! `dropped_entries` is always null.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::RawQuery;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use tributary_storage::read::Direction;
use tributary_storage::types::Labels;

use super::{ApiResult, CATEGORIZE_LABELS, Encoding, write_categorized_streams, write_streams};
use crate::error::{Error, Result};
use crate::http::access::Reader;
use crate::http::error::LokiError;
use crate::http::params::{LOKI_DEFAULT_SINCE_NS, Params, now_ns};
use crate::logql::ast::Expr;
use crate::logql::{LabelOrigins, LogEntry, LogqlEngine, LogqlValue, RangeQuery, Stream};

/// How often a tail looks for new lines.
const POLL: Duration = Duration::from_secs(1);
/// Loki's `max_delay_for` (seconds).
const MAX_DELAY_FOR_SECS: i64 = 5;
/// Loki's default `tail_max_duration`: a tail is closed after an hour.
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// How far behind "now" each poll looks again for lines stored after their own timestamp.
const GRACE_NS: i64 = 2_000_000_000;

#[tracing::instrument(name = "loki.tail", skip_all)]
pub(super) async fn tail(
    Reader(engine, _slot): Reader<LogqlEngine>,
    RawQuery(url): RawQuery,
    headers: HeaderMap,
    upgrade: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult {
    let p = Params::parse(url.as_deref(), &headers, &[]);
    let query = p.text("query").to_string();
    if !engine.parse_then(&query, |expr| matches!(expr, Expr::Log(_))).await? {
        return Err(LokiError(Error::BadData("tail only supports log queries".into())));
    }
    let limit = p.loki_limit()?;
    let delay_ns = p.loki_delay_for(MAX_DELAY_FOR_SECS)?;
    let start = p.loki_time_or("start", || now_ns().saturating_sub(LOKI_DEFAULT_SINCE_NS))?;
    let upgrade = upgrade.map_err(|r| LokiError(Error::BadData(format!("tail needs a websocket connection: {r}"))))?;
    let tailer = Tailer::new(engine, query, start, delay_ns, limit);
    let encoding = Encoding::from_request(&headers, Direction::Forward);
    Ok(upgrade.on_upgrade(move |socket| run(socket, tailer, encoding)))
}

async fn run(mut socket: WebSocket, mut tailer: Tailer, encoding: Encoding) {
    let deadline = tokio::time::Instant::now() + MAX_DURATION;
    loop {
        let (text, full) = match tailer.next_batch(now_ns()).await {
            Ok(streams) if streams.is_empty() => (None, false),
            Ok(streams) => {
                let full = streams.iter().map(|s| s.entries.len()).sum::<usize>() >= tailer.limit;
                (Some(render(&streams, encoding)), full)
            }
            Err(e) => {
                tracing::debug!(error = %e, "tail query failed");
                close(&mut socket, close_code::ERROR, e.to_string()).await;
                return;
            }
        };
        if let Some(text) = text
            && socket.send(Message::Text(text.into())).await.is_err()
        {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            close(
                &mut socket,
                close_code::NORMAL,
                "reached tail max duration limit".into(),
            )
            .await;
            return;
        }
        let pause = if full { Duration::ZERO } else { POLL };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            msg = socket.recv() => match msg {
                // Pings are answered by the socket itself; anything else from the client is ignored.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

fn render(streams: &[Stream], encoding: Encoding) -> String {
    let mut out = String::from(r#"{"streams":"#);
    if encoding.categorize {
        write_categorized_streams(&mut out, streams, Direction::Forward);
    } else {
        write_streams(&mut out, streams);
    }
    out.push_str(r#","dropped_entries":null"#);
    if encoding.categorize {
        out.push_str(r#","encodingFlags":[""#);
        out.push_str(CATEGORIZE_LABELS);
        out.push_str(r#""]"#);
    }
    out.push('}');
    out
}

/// The polling state of one tail: where the next poll starts, and the lines already sent at or
/// after that point.
struct Tailer {
    engine: Arc<LogqlEngine>,
    query: String,
    from: i64,
    delay_ns: i64,
    limit: usize,
    sent: HashSet<Sent>,
}

/// A line as sent: its time, labels and text.
type Sent = (i64, Labels, String);

impl Tailer {
    fn new(engine: Arc<LogqlEngine>, query: String, start: i64, delay_ns: i64, limit: usize) -> Self {
        Self {
            engine,
            query,
            from: start,
            delay_ns,
            limit,
            sent: HashSet::new(),
        }
    }

    /// The lines in `[from, now - delay)` not sent yet, oldest first, at most `limit`.
    async fn next_batch(&mut self, now: i64) -> Result<Vec<Stream>> {
        let end = now.saturating_sub(self.delay_ns);
        if end <= self.from {
            return Ok(Vec::new());
        }
        // Lines already sent come back too: ask for that many more.
        let q = RangeQuery {
            query: self.query.clone(),
            start: self.from,
            end,
            step: 1,
            limit: self.limit + self.sent.len(),
            direction: Direction::Forward,
        };
        let LogqlValue::Streams(streams) = self.engine.query_range(&q).await?.value else {
            return Err(Error::BadData("tail only supports log queries".into()));
        };
        let mut lines: Vec<(Sent, LabelOrigins)> = streams
            .into_iter()
            .flat_map(|s| {
                let (labels, origins) = (s.labels, s.origins);
                s.entries
                    .into_iter()
                    .map(move |e| ((e.timestamp, labels.clone(), e.line), origins.clone()))
            })
            .filter(|(line, _)| !self.sent.contains(line))
            .collect();
        lines.sort_by_key(|((ts, _, _), _)| *ts);
        let full = lines.len() >= self.limit;
        lines.truncate(self.limit);
        self.sent.extend(lines.iter().map(|(line, _)| line.clone()));
        self.from = match lines.last() {
            // More may wait at or after the last line sent: resume there.
            Some(((last, _, _), _)) if full => *last,
            // Lines reach storage a little after their timestamp (the push is in flight while
            // we poll): look back over a grace period, and rely on `sent` to skip repeats.
            _ => self.from.max(end.saturating_sub(GRACE_NS)),
        };
        let from = self.from;
        self.sent.retain(|(ts, _, _)| *ts >= from);
        Ok(group(lines))
    }
}

/// Lines (sorted by time) grouped into streams in order of first appearance.
fn group(lines: Vec<(Sent, LabelOrigins)>) -> Vec<Stream> {
    let mut streams: Vec<Stream> = Vec::new();
    for ((timestamp, labels, line), origins) in lines {
        let entry = LogEntry { timestamp, line };
        match streams.iter_mut().find(|s| s.labels == labels && s.origins == origins) {
            Some(s) => s.entries.push(entry),
            None => streams.push(Stream {
                labels,
                origins,
                entries: vec![entry],
            }),
        }
    }
    streams
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::LogqlConfig;
    use crate::logql::mem::{MemLogSource, record};

    const S: i64 = 1_000_000_000;

    fn engine() -> Arc<LogqlEngine> {
        let a = [("cluster", "prod-1"), ("service_name", "checkout")];
        let b = [("cluster", "dev"), ("service_name", "cart")];
        let records = vec![
            record(&a, S, "a1"),
            record(&b, S, "b1"),
            record(&a, 2 * S, "a2"),
            record(&b, 3 * S, "b3 error"),
            record(&a, 4 * S, "a4 error"),
        ];
        Arc::new(LogqlEngine::new(
            Arc::new(MemLogSource::new(records)),
            LogqlConfig::default(),
        ))
    }

    fn lines(streams: &[Stream]) -> Vec<(i64, String)> {
        let mut out: Vec<(i64, String)> = streams
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| (e.timestamp, e.line.clone())))
            .collect();
        out.sort();
        out
    }

    fn want(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
        pairs.iter().map(|(t, l)| (*t, l.to_string())).collect()
    }

    #[tokio::test]
    async fn tail_sends_each_line_once_as_time_passes() {
        let mut t = Tailer::new(engine(), r#"{cluster=~".+"}"#.into(), 0, 0, 100);
        assert_eq!(
            lines(&t.next_batch(S + S / 2).await.unwrap()),
            want(&[(S, "a1"), (S, "b1")])
        );
        assert!(
            t.next_batch(S + S / 2).await.unwrap().is_empty(),
            "nothing new at the same instant"
        );
        assert_eq!(lines(&t.next_batch(3 * S).await.unwrap()), want(&[(2 * S, "a2")]));
        assert_eq!(
            lines(&t.next_batch(10 * S).await.unwrap()),
            want(&[(3 * S, "b3 error"), (4 * S, "a4 error")])
        );
        assert!(t.next_batch(20 * S).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn tail_applies_the_pipeline_and_delay() {
        let mut t = Tailer::new(engine(), r#"{cluster=~".+"} |= "error""#.into(), 0, 2 * S, 100);
        // now = 4.5 s with a 2 s delay reads up to 2.5 s: no error line yet.
        assert!(t.next_batch(4 * S + S / 2).await.unwrap().is_empty());
        let got = t.next_batch(7 * S).await.unwrap();
        assert_eq!(lines(&got), want(&[(3 * S, "b3 error"), (4 * S, "a4 error")]));
        assert_eq!(got.len(), 2, "one stream per label set");
    }

    #[tokio::test]
    async fn a_full_batch_resumes_without_skipping_or_repeating_lines_at_the_same_instant() {
        let mut t = Tailer::new(engine(), r#"{cluster=~".+"}"#.into(), 0, 0, 1);
        let mut seen = Vec::new();
        for _ in 0..10 {
            let batch = t.next_batch(10 * S).await.unwrap();
            assert!(lines(&batch).len() <= 1, "limit is per message");
            seen.extend(lines(&batch));
        }
        seen.sort();
        assert_eq!(
            seen,
            want(&[
                (S, "a1"),
                (S, "b1"),
                (2 * S, "a2"),
                (3 * S, "b3 error"),
                (4 * S, "a4 error")
            ])
        );
    }

    #[test]
    fn messages_have_lokis_tail_shape() {
        let streams = group(vec![
            (
                (S, Labels::from_pairs(&[("cluster", "dev")]), "x".into()),
                LabelOrigins::default(),
            ),
            (
                (2 * S, Labels::from_pairs(&[("cluster", "dev")]), "y \"q\"".into()),
                LabelOrigins::default(),
            ),
        ]);
        let plain = Encoding {
            categorize: false,
            direction: Direction::Forward,
        };
        let v: serde_json::Value = serde_json::from_str(&render(&streams, plain)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "streams": [{"stream": {"cluster": "dev"}, "values": [["1000000000", "x"], ["2000000000", "y \"q\""]]}],
                "dropped_entries": null
            })
        );
    }

    #[tokio::test]
    async fn categorized_messages_keep_stream_labels_and_metadata_apart() {
        let a = [("cluster", "prod-1"), ("service_name", "checkout")];
        let records = vec![tributary_storage::signals::LogRecord {
            attributes: r#"{"detected_level":"error"}"#.into(),
            ..record(&a, S, "boom")
        }];
        let engine = Arc::new(LogqlEngine::new(
            Arc::new(MemLogSource::new(records)),
            LogqlConfig::default(),
        ));
        let mut t = Tailer::new(
            engine,
            r#"{cluster="prod-1"} | label_format kind="x""#.into(),
            0,
            0,
            100,
        );
        let streams = t.next_batch(2 * S).await.unwrap();
        let categorize = Encoding {
            categorize: true,
            direction: Direction::Forward,
        };
        let v: serde_json::Value = serde_json::from_str(&render(&streams, categorize)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "streams": [{"stream": {"cluster": "prod-1", "service_name": "checkout"}, "values": [
                    ["1000000000", "boom", {"structuredMetadata": {"detected_level": "error"}, "parsed": {"kind": "x"}}]
                ]}],
                "dropped_entries": null,
                "encodingFlags": ["categorize-labels"]
            })
        );
    }
}
