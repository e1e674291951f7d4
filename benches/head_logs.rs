//! Reading log records from the head: what Explore and Logs Drilldown cost before a flush.
//! 300,000 records over one hour in 60 streams (3 clusters × 20 services), lines of five
//! templates with varying ids, about 150 bytes each:
//! - `select_limit_1000`: a LogQL log query's read, newest 1,000 of one service;
//! - `patterns_service`: `patterns` of one service over the hour (15,000 lines);
//! - `patterns_all`: `patterns` of every stream over the hour (clustered from the newest
//!   200,000 lines, `PATTERN_MAX_LINES`, read a chunk at a time).
//!
//! `cargo bench --bench head_logs`

use std::sync::Arc;

use criterion::{Criterion, Throughput};
use tributary_ingest::head::input::Input;
use tributary_ingest::head::{Head, SignalBlock};
use tributary_storage::read::{Direction, LogRequest, LogSource, PatternRequest};
use tributary_storage::signals::LogRecord;
use tributary_storage::types::{Labels, MatchOp, Matcher};

const T0: i64 = 1_767_225_600_000_000_000;
const RECORDS: i64 = 300_000;
const HOUR: i64 = 3_600_000_000_000;

fn records() -> Vec<LogRecord> {
    (0..RECORDS)
        .map(|i| {
            let cluster = ["prod-eu-1", "prod-us-1", "staging"][(i % 3) as usize];
            let service = format!("svc-{:02}", (i / 3) % 20);
            let (level, body) = match i % 5 {
                0 => ("error", format!("level=error msg=\"upstream timeout\" upstream=pay attempt={} request_id={i:016x}", i % 4)),
                1 => ("warn", format!("level=warn msg=\"slow response\" latency_ms={} request_id={i:016x}", i % 900)),
                2 => ("info", format!("10.0.{}.{} - - \"GET /api/v1/items/{i} HTTP/1.1\" 200 {} rt={}", i % 255, i % 7, i % 5000, i % 300)),
                3 => ("info", format!("{{\"level\":\"info\",\"msg\":\"request completed\",\"status\":200,\"took_ms\":{},\"id\":\"{i:x}\"}}", i % 70)),
                _ => ("debug", format!("cache hit for key user:{i} in {}us shard={}", i % 90, i % 16)),
            };
            LogRecord {
                labels: Labels::from_pairs(&[("cluster", cluster), ("service_name", &service)]).into(),
                timestamp: T0 + i * (HOUR / RECORDS),
                body,
                attributes: format!(r#"{{"detected_level":"{level}"}}"#),
                resource_attributes: "{}".into(),
                ..LogRecord::default()
            }
        })
        .collect()
}

fn logs(matchers: Vec<Matcher>, limit: Option<usize>) -> LogRequest {
    LogRequest {
        matchers,
        start: T0,
        end: T0 + HOUR,
        line_hints: Vec::new(),
        direction: Direction::Backward,
        limit,
    }
}

fn bench(c: &mut Criterion) {
    let head = Arc::new(Head::new());
    let unplaced = head.apply(Input {
        floats: Default::default(),
        series: Vec::new(),
        series_keys: Vec::new(),
        signals: SignalBlock {
            logs: records(),
            ..Default::default()
        },
    });
    assert_eq!(unplaced, 0);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let one = || vec![Matcher::new(MatchOp::Equal, "service_name", "svc-07").expect("matcher")];
    let every = || vec![Matcher::new(MatchOp::RegexMatch, "cluster", ".+").expect("matcher")];
    let mut g = c.benchmark_group("head_logs");
    g.sample_size(10);
    let select = logs(one(), Some(1000));
    g.throughput(Throughput::Elements(1000));
    g.bench_function("select_limit_1000", |b| {
        b.iter(|| rt.block_on(head.select_logs(&select)).expect("select"))
    });
    for (name, matchers) in [("patterns_service", one()), ("patterns_all", every())] {
        let req = PatternRequest {
            logs: logs(matchers, None),
            step: 60_000_000_000,
            max_lines: 200_000,
        };
        let lines: u64 = rt
            .block_on(head.log_patterns(&req))
            .expect("patterns")
            .series
            .iter()
            .map(|s| s.total())
            .sum();
        g.throughput(Throughput::Elements(lines));
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(head.log_patterns(&req)).expect("patterns"))
        });
    }
    g.finish();
}

// `criterion_group!` would declare an undocumented `pub fn` (missing_docs); this is its and
// `criterion_main!`'s expansion.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
