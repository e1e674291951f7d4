//! The reference [`LogSource`] and the `LogSource` conformance suite.
//!
//! - [`MemLogSource`]: a plain `Vec<LogRecord>` source: the reference semantics of the
//!   contract in [`crate::read::LogSource`], and a convenient fake.
//! - [`log_source_conformance`]: the suite every `LogSource` must pass (the head, the Parquet
//!   logs table, the merged source). It builds several datasets — look-alike records that
//!   differ in one field only, records stored more than once, several streams and clusters,
//!   records spread over hours — hands each to `make`, and checks every contract point against
//!   `MemLogSource` for both directions, limits, line hints, half-open range edges, the
//!   listings, volumes and pattern counts, panicking with the dataset, request and difference.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;
use crate::read::{
    Direction, LineHint, LogRequest, LogSource, PatternRequest, PatternSum, Patterns, StreamVolume, VolumeRequest,
    record_level, sort_logs, volume_of_records,
};
use crate::signals::{LogRecord, TimestampNs};
use crate::types::{Labels, MatchOp, Matcher, matches_all};

/// A `Vec<LogRecord>`-backed [`LogSource`]: the reference semantics of the contract.
#[derive(Clone, Debug, Default)]
pub struct MemLogSource {
    records: Vec<LogRecord>,
}

impl MemLogSource {
    /// Holds `records` as given (copies included: answers return them once).
    pub fn new(records: Vec<LogRecord>) -> Self {
        Self { records }
    }

    /// Every stored record, as given.
    pub fn all(&self) -> &[LogRecord] {
        &self.records
    }

    fn in_range<'a>(&'a self, req: &'a LogRequest) -> impl Iterator<Item = &'a LogRecord> + 'a {
        self.records
            .iter()
            .filter(|r| req.start <= r.timestamp && r.timestamp < req.end && matches_all(&req.matchers, &r.labels))
    }
}

#[async_trait]
impl LogSource for MemLogSource {
    async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
        let mut out: Vec<LogRecord> = self
            .in_range(req)
            .filter(|r| {
                req.line_hints.iter().all(|h| match h {
                    LineHint::Contains(s) => r.body.contains(s.as_str()),
                    LineHint::NotContains(s) => !r.body.contains(s.as_str()),
                })
            })
            .cloned()
            .collect();
        sort_logs(&mut out, req.direction);
        out.dedup();
        if let Some(limit) = req.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
        let streams: BTreeSet<&Labels> = self.in_range(req).map(|r| &*r.labels).collect();
        Ok(streams.into_iter().cloned().collect())
    }
}

/// The [`LogSource`] conformance suite.
///
/// `make` receives a dataset (records in write order; some are stored more than once) and
/// returns a source holding every one of them. It may load them in several parts, and may hold
/// a record in more than one part (as the head and Parquet both do during a flush): every copy
/// of a record must still come back once. Panics on the first contract violation.
pub async fn log_source_conformance<F, Fut>(make: F)
where
    F: Fn(Vec<LogRecord>) -> Fut,
    Fut: Future<Output = Arc<dyn LogSource>>,
{
    for ds in datasets() {
        let reference = MemLogSource::new(ds.records.clone());
        let source = make(ds.records.clone()).await;
        let ranges = ranges_for(&ds.records);
        for matchers in &ds.matchers {
            for (range_name, (start, end)) in &ranges {
                for direction in [Direction::Forward, Direction::Backward] {
                    for limit in [None, Some(0), Some(1), Some(2), Some(5), Some(1000)] {
                        let req = request(matchers, *start, *end, direction, limit, Vec::new());
                        let ctx = format!("dataset {:?}, range {range_name}, {}", ds.name, show(&req));
                        check_select(&ctx, source.as_ref(), &reference, &req).await;
                    }
                }
                let req = request(matchers, *start, *end, Direction::Backward, None, Vec::new());
                let ctx = format!("dataset {:?}, range {range_name}, {}", ds.name, show(&req));
                check_listings(&ctx, source.as_ref(), &reference, &req).await;
            }
            for req in volume_requests(matchers, &ds.records) {
                let ctx = format!(
                    "dataset {:?}, volume from {} every {} ns over {}",
                    ds.name,
                    req.origin,
                    req.step,
                    show(&req.logs)
                );
                check_volume(&ctx, source.as_ref(), &reference, &req).await;
                let req = PatternRequest {
                    logs: req.logs,
                    step: req.step,
                    max_lines: usize::MAX,
                };
                let ctx = format!(
                    "dataset {:?}, patterns every {} ns over {}",
                    ds.name,
                    req.step,
                    show(&req.logs)
                );
                check_patterns(&ctx, source.as_ref(), &reference, &req).await;
            }
            let (start, end) = ranges[0].1;
            for hints in hint_sets() {
                for direction in [Direction::Forward, Direction::Backward] {
                    for limit in [None, Some(1), Some(3)] {
                        let req = request(matchers, start, end, direction, limit, hints.clone());
                        let ctx = format!("dataset {:?}, hints, {}", ds.name, show(&req));
                        check_select(&ctx, source.as_ref(), &reference, &req).await;
                    }
                }
            }
        }
    }
}

fn request(
    matchers: &[Matcher],
    start: TimestampNs,
    end: TimestampNs,
    direction: Direction,
    limit: Option<usize>,
    line_hints: Vec<LineHint>,
) -> LogRequest {
    LogRequest {
        matchers: matchers.to_vec(),
        start,
        end,
        line_hints,
        direction,
        limit,
    }
}

fn show(req: &LogRequest) -> String {
    let m: Vec<String> = req.matchers.iter().map(|m| m.to_string()).collect();
    format!(
        "{{{}}} [{}, {}) {:?} limit {:?} hints {:?}",
        m.join(", "),
        req.start,
        req.end,
        req.direction,
        req.limit,
        req.line_hints
    )
}

/// `select_logs` must equal the reference exactly: same records, same order, copies once.
async fn check_select(ctx: &str, source: &dyn LogSource, reference: &MemLogSource, req: &LogRequest) {
    let want = reference.select_logs(req).await.expect("MemLogSource never fails");
    let got = source
        .select_logs(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: select_logs failed: {e}"));
    if got == want {
        return;
    }
    let at = got
        .iter()
        .zip(&want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{ctx}: select_logs differs from the reference at position {at} (got {} records, want {})\n\
         got:  {:?}\nwant: {:?}",
        got.len(),
        want.len(),
        got.get(at),
        want.get(at)
    );
}

/// Listings may include streams with records just outside the range (coarse metadata), never
/// leave one out, and are sorted and unique.
async fn check_listings(ctx: &str, source: &dyn LogSource, reference: &MemLogSource, req: &LogRequest) {
    let exact = reference.log_streams(req).await.expect("MemLogSource never fails");
    // Streams the request may legitimately name: matching, with records at any time.
    let candidates: BTreeSet<&Labels> = reference
        .all()
        .iter()
        .map(|r| &*r.labels)
        .filter(|l| matches_all(&req.matchers, l))
        .collect();

    let streams = source
        .log_streams(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: log_streams failed: {e}"));
    assert_sorted_unique(ctx, "log_streams", &streams);
    for s in &exact {
        assert!(streams.contains(s), "{ctx}: log_streams left out {s}");
    }
    for s in &streams {
        assert!(
            candidates.contains(s),
            "{ctx}: log_streams named {s}, which does not match"
        );
    }

    let names = source
        .log_label_names(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: log_label_names failed: {e}"));
    assert_sorted_unique(ctx, "log_label_names", &names);
    let of = |streams: &mut dyn Iterator<Item = &Labels>| -> BTreeSet<String> {
        streams.flat_map(|l| l.iter().map(|l| l.name.to_string())).collect()
    };
    let (must, may) = (of(&mut exact.iter()), of(&mut candidates.iter().copied()));
    for n in &must {
        assert!(names.contains(n), "{ctx}: log_label_names left out {n}");
    }
    for n in &names {
        assert!(
            may.contains(n),
            "{ctx}: log_label_names named {n}, which no matching stream has"
        );
    }

    for name in ["cluster", "app", "service_name", "missing"] {
        let values = source
            .log_label_values(name, req)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: log_label_values({name}) failed: {e}"));
        assert_sorted_unique(ctx, "log_label_values", &values);
        let of = |streams: &mut dyn Iterator<Item = &Labels>| -> BTreeSet<String> {
            streams.filter_map(|l| l.get(name).map(str::to_string)).collect()
        };
        let (must, may) = (of(&mut exact.iter()), of(&mut candidates.iter().copied()));
        for v in &must {
            assert!(values.contains(v), "{ctx}: log_label_values({name}) left out {v:?}");
        }
        for v in &values {
            assert!(
                may.contains(v),
                "{ctx}: log_label_values({name}) named {v:?}, which no matching stream has"
            );
        }
    }
}

/// Volume requests on minute edges (a summary's finest bucket; the contract is exact there):
/// the whole span as one bucket, per minute, per 15 minutes, and from the middle per 2 minutes.
fn volume_requests(matchers: &[Matcher], records: &[LogRecord]) -> Vec<VolumeRequest> {
    const MINUTE: TimestampNs = 60_000 * MS;
    let (lo, hi) = records
        .iter()
        .fold((T0, T0), |(lo, hi), r| (lo.min(r.timestamp), hi.max(r.timestamp)));
    let (start, end) = (lo.div_euclid(MINUTE) * MINUTE, (hi.div_euclid(MINUTE) + 1) * MINUTE);
    let mut times: Vec<TimestampNs> = records.iter().map(|r| r.timestamp).collect();
    times.sort_unstable();
    let mid = times.get(times.len() / 2).copied().unwrap_or(T0).div_euclid(MINUTE) * MINUTE;
    let logs = |start, end| request(matchers, start, end, Direction::Forward, None, Vec::new());
    vec![
        VolumeRequest::whole(logs(start, end)),
        VolumeRequest {
            logs: logs(start, end),
            origin: start,
            step: MINUTE,
        },
        VolumeRequest {
            logs: logs(start, end),
            origin: start - 5 * MINUTE,
            step: 15 * MINUTE,
        },
        VolumeRequest {
            logs: logs(mid, end),
            origin: mid,
            step: 2 * MINUTE,
        },
    ]
}

/// `log_volume` lies between the volume of the distinct records (the reference: copies once)
/// and twice the volume counting every copy given (a source may hold what it was given twice:
/// the head and a file during a flush, as the head's and the merged source's suites build
/// them), per stream and bucket; sorted by labels, buckets sorted and unique. Nothing is left
/// out. (Each source's own tests pin its volume exactly where it can be exact.)
async fn check_volume(ctx: &str, source: &dyn LogSource, reference: &MemLogSource, req: &VolumeRequest) {
    type Cells = std::collections::BTreeMap<(Labels, u32), (u64, u64)>;
    let cells = |volumes: &[StreamVolume]| -> Cells {
        let mut out = Cells::new();
        for v in volumes {
            for b in &v.buckets {
                out.insert((v.labels.clone(), b.bucket), (b.bytes, b.lines));
            }
        }
        out
    };
    let exact = cells(&reference.log_volume(req).await.expect("MemLogSource never fails"));
    let in_range: Vec<&LogRecord> = reference
        .all()
        .iter()
        .filter(|r| {
            req.logs.start <= r.timestamp && r.timestamp < req.logs.end && matches_all(&req.logs.matchers, &r.labels)
        })
        .collect();
    let upper = cells(&volume_of_records(req, in_range));
    let got = source
        .log_volume(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: log_volume failed: {e}"));
    let labels: Vec<&Labels> = got.iter().map(|v| &v.labels).collect();
    assert_sorted_unique(ctx, "log_volume streams", &labels);
    for v in &got {
        let buckets: Vec<u32> = v.buckets.iter().map(|b| b.bucket).collect();
        assert_sorted_unique(ctx, "log_volume buckets", &buckets);
    }
    let got = cells(&got);
    for key in exact.keys().chain(upper.keys()).chain(got.keys()) {
        let (g, lo, hi) = (
            got.get(key).copied().unwrap_or_default(),
            exact.get(key).copied().unwrap_or_default(),
            upper.get(key).map_or((0, 0), |(bytes, lines)| (2 * bytes, 2 * lines)),
        );
        assert!(
            lo.0 <= g.0 && g.0 <= hi.0 && lo.1 <= g.1 && g.1 <= hi.1,
            "{ctx}: log_volume of {} bucket {}: got (bytes, lines) {g:?}, want between {lo:?} and {hi:?}",
            key.0,
            key.1
        );
    }
}

/// `log_patterns` (on minute edges, in steps of whole minutes: where summaries are exact)
/// counts, per level and bucket, between the clusterable lines of the distinct records (the
/// reference) and twice those of every copy given, as `log_volume` does; series sorted by level
/// and pattern, each once, samples sorted. Which lines form which pattern is Drain's to decide
/// (each source's own tests pin patterns where they can be exact).
async fn check_patterns(ctx: &str, source: &dyn LogSource, reference: &MemLogSource, req: &PatternRequest) {
    type Cells = std::collections::BTreeMap<(String, TimestampNs), u64>;
    let cells = |p: &Patterns| -> Cells {
        let mut out = Cells::new();
        for s in &p.series {
            for &(b, n) in &s.samples {
                *out.entry((s.level.clone(), b)).or_default() += n;
            }
        }
        out
    };
    let exact = cells(&reference.log_patterns(req).await.expect("MemLogSource never fails"));
    let mut every_copy = PatternSum::default();
    for r in reference.all().iter().filter(|r| {
        req.logs.start <= r.timestamp && r.timestamp < req.logs.end && matches_all(&req.logs.matchers, &r.labels)
    }) {
        every_copy.add_line(record_level(r), &r.body, req.bucket_of(r.timestamp));
    }
    let upper = cells(&every_copy.finish());
    let got = source
        .log_patterns(req)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: log_patterns failed: {e}"));
    assert!(!got.truncated, "{ctx}: log_patterns left lines out");
    let keys: Vec<(&str, &str)> = got
        .series
        .iter()
        .map(|s| (s.level.as_str(), s.pattern.as_str()))
        .collect();
    assert_sorted_unique(ctx, "log_patterns series", &keys);
    for s in &got.series {
        let buckets: Vec<TimestampNs> = s.samples.iter().map(|(b, _)| *b).collect();
        assert_sorted_unique(ctx, "log_patterns samples", &buckets);
    }
    let got = cells(&got);
    for key in exact.keys().chain(upper.keys()).chain(got.keys()) {
        let (g, lo, hi) = (
            got.get(key).copied().unwrap_or_default(),
            exact.get(key).copied().unwrap_or_default(),
            2 * upper.get(key).copied().unwrap_or_default(),
        );
        assert!(
            lo <= g && g <= hi,
            "{ctx}: log_patterns lines of level {} in bucket {}: got {g}, want between {lo} and {hi}",
            key.0,
            key.1
        );
    }
}

fn assert_sorted_unique<T: Ord + std::fmt::Debug>(ctx: &str, what: &str, v: &[T]) {
    for w in v.windows(2) {
        assert!(
            w[0] < w[1],
            "{ctx}: {what} not sorted and unique: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

/// Half-open ranges around the dataset's times: all of it, its first and last nanoseconds as
/// edges (a record at `end` is out, one at `start` is in), one exact timestamp, and nothing.
fn ranges_for(records: &[LogRecord]) -> Vec<(&'static str, (TimestampNs, TimestampNs))> {
    let (lo, hi) = records
        .iter()
        .fold((T0, T0), |(lo, hi), r| (lo.min(r.timestamp), hi.max(r.timestamp)));
    let mut times: Vec<TimestampNs> = records.iter().map(|r| r.timestamp).collect();
    times.sort_unstable();
    let mid = times.get(times.len() / 2).copied().unwrap_or(T0);
    vec![
        ("all", (lo, hi + 1)),
        ("without the last nanosecond", (lo, hi)),
        ("without the first nanosecond", (lo + 1, hi + 1)),
        ("from the middle", (mid, hi + 1)),
        ("until the middle", (lo, mid)),
        ("one timestamp", (mid, mid + 1)),
        ("empty", (mid, mid)),
        ("backwards", (hi, lo)),
    ]
}

fn hint_sets() -> Vec<Vec<LineHint>> {
    vec![
        vec![LineHint::Contains("error".into())],
        vec![LineHint::NotContains("debug".into())],
        vec![LineHint::Contains("req".into()), LineHint::NotContains("error".into())],
        vec![LineHint::Contains(String::new())],
        vec![LineHint::NotContains(String::new())],
        vec![LineHint::Contains("é✓".into())],
        // Texts a line index can test (a word piece of 8 bytes or more).
        vec![LineHint::Contains("7f3a9c2e".into())],
        vec![LineHint::Contains("9c2e01ab77c1".into())],
        vec![LineHint::Contains("id=00c0ffee00c0ffee d".into())],
        vec![LineHint::Contains("öße_über".into())],
        vec![LineHint::Contains("0c0ffee00c0ffee1".into())],
        vec![
            LineHint::Contains("request_id".into()),
            LineHint::NotContains("7f3a9c2e01ab".into()),
        ],
    ]
}

/// 2026-01-01T00:00:00Z in nanoseconds.
const T0: TimestampNs = 1_767_225_600_000_000_000;
const MS: TimestampNs = 1_000_000;
const HOUR: TimestampNs = 3_600_000 * MS;

struct Dataset {
    name: &'static str,
    records: Vec<LogRecord>,
    matchers: Vec<Vec<Matcher>>,
}

fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(op, name, value).expect("valid matcher")
}

fn rec(labels: &[(&str, &str)], ts: TimestampNs, body: &str) -> LogRecord {
    LogRecord {
        labels: Labels::from_pairs(labels).into(),
        timestamp: ts,
        body: body.into(),
        attributes: "{}".into(),
        resource_attributes: "{}".into(),
        ..LogRecord::default()
    }
}

fn datasets() -> Vec<Dataset> {
    vec![streams(), look_alikes(), duplicates(), edges(), needles(), empty()]
}

/// Several streams in two clusters and none, over three hours.
fn streams() -> Dataset {
    let labels: [&[(&str, &str)]; 4] = [
        &[("cluster", "a"), ("app", "api"), ("service_name", "svc")],
        &[("cluster", "a"), ("app", "db")],
        &[("cluster", "b"), ("app", "api"), ("service_name", "other")],
        &[("app", "batch")],
    ];
    let bodies = ["req ok", "error: timeout", "debug tick", "req error"];
    let levels = ["{}", r#"{"detected_level":"error"}"#, r#"{"level":"info"}"#];
    let mut records = Vec::new();
    for i in 0..48i64 {
        let l = labels[(i % 4) as usize];
        let ts = T0 + (i / 4) * (HOUR / 4) + (i % 3) * MS;
        // Lines long enough for patterns (4 tokens or more), in three levels.
        let mut r = rec(l, ts, &format!("{} for job {i} of {}", bodies[(i % 4) as usize], i % 5));
        r.attributes = levels[(i % 3) as usize].into();
        records.push(r);
    }
    Dataset {
        name: "streams",
        records,
        matchers: vec![
            vec![m("cluster", MatchOp::Equal, "a")],
            vec![m("cluster", MatchOp::RegexMatch, "a|b")],
            vec![m("app", MatchOp::Equal, "api")],
            vec![m("app", MatchOp::NotEqual, "api"), m("cluster", MatchOp::NotEqual, "")],
            vec![m("service_name", MatchOp::Equal, "svc")],
            vec![m("missing", MatchOp::Equal, "")],
            vec![m("cluster", MatchOp::Equal, "")],
        ],
    }
}

/// Records equal in (timestamp, labels, body) that differ in one other field each, given in
/// no particular order and some of them twice (not next to each other): every look-alike must
/// come back, every copy once, in the one total order.
fn look_alikes() -> Dataset {
    let l: &[(&str, &str)] = &[("cluster", "a"), ("app", "api")];
    let base = rec(l, T0 + 5 * MS, "same line");
    let vary: Vec<LogRecord> = vec![
        LogRecord {
            observed_timestamp: T0 + 9 * MS,
            ..base.clone()
        },
        LogRecord {
            attributes: r#"{"k":"v"}"#.into(),
            ..base.clone()
        },
        LogRecord {
            severity_number: 17,
            severity_text: "ERROR".into(),
            ..base.clone()
        },
        base.clone(),
        LogRecord {
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            flags: 1,
            ..base.clone()
        },
        LogRecord {
            observed_timestamp: T0 + 7 * MS,
            ..base.clone()
        },
        LogRecord {
            resource_attributes: r#"{"host":"h1"}"#.into(),
            scope_name: "lib".into(),
            scope_version: "1.0".into(),
            event_name: "evt".into(),
            ..base.clone()
        },
        LogRecord {
            labels: Labels::from_pairs(&[("cluster", "a"), ("app", "db")]).into(),
            ..base.clone()
        },
    ];
    let mut records = vary.clone();
    // The same records again, in another order (a client retry, or the head and Parquet both
    // holding them), with neighbours on either side in time.
    records.push(rec(l, T0 + 4 * MS, "before"));
    records.extend(vary.iter().rev().cloned());
    records.push(rec(l, T0 + 6 * MS, "after"));
    records.push(vary[0].clone());
    Dataset {
        name: "look-alikes",
        records,
        matchers: vec![
            vec![m("cluster", MatchOp::Equal, "a")],
            vec![m("app", MatchOp::Equal, "api")],
        ],
    }
}

/// One record stored three times and its neighbours twice, across hours.
fn duplicates() -> Dataset {
    let l: &[(&str, &str)] = &[("cluster", "c"), ("app", "api")];
    let one = rec(l, T0 + HOUR - MS, "req once");
    let mut records = vec![one.clone(), rec(l, T0 + HOUR, "req next hour"), one.clone()];
    for i in 0..6 {
        records.push(rec(l, T0 + HOUR + (i + 1) * MS, "req error"));
    }
    records.extend(records.clone());
    records.push(one);
    Dataset {
        name: "duplicates",
        records,
        matchers: vec![
            vec![m("cluster", MatchOp::Equal, "c")],
            vec![m("app", MatchOp::RegexMatch, "a.*")],
        ],
    }
}

/// Label values a key or a JSON text must carry exactly, and equal timestamps across streams
/// (labels break the tie).
fn edges() -> Dataset {
    let records = vec![
        rec(&[("cluster", "é✓/x"), ("app", "api")], T0, "é✓ line"),
        rec(&[("cluster", "a.b"), ("app", "quote\"d")], T0, "req ok"),
        rec(&[("cluster", "a.b"), ("app", "api"), ("__name__", "n")], T0, "req ok"),
        rec(&[("app", "api")], T0, "error"),
        rec(&[("cluster", "a.b"), ("app", "api")], T0 + 1, "debug"),
    ];
    Dataset {
        name: "edges",
        records,
        matchers: vec![
            vec![m("app", MatchOp::RegexMatch, ".+")],
            vec![m("cluster", MatchOp::Equal, "é✓/x")],
            vec![m("cluster", MatchOp::RegexNoMatch, "a.*")],
        ],
    }
}

/// Rare texts inside longer words, across words and in no line: what a source's line index (if
/// it has one) must answer exactly. One stream per hour, so a Parquet source has several files.
fn needles() -> Dataset {
    let l: &[(&str, &str)] = &[("cluster", "n"), ("app", "api")];
    let records = vec![
        rec(l, T0, "GET /item request_id=7f3a9c2e01ab77c0 done"),
        rec(l, T0 + MS, "GET /item request_id=00c0ffee00c0ffee done"),
        rec(l, T0 + HOUR, "Größe_überschritten für 7f3a9c2e01ab77c1"),
        rec(l, T0 + HOUR + MS, "req ok"),
    ];
    Dataset {
        name: "needles",
        records,
        matchers: vec![vec![m("cluster", MatchOp::Equal, "n")]],
    }
}

fn empty() -> Dataset {
    Dataset {
        name: "empty",
        records: Vec::new(),
        matchers: vec![vec![m("cluster", MatchOp::Equal, "a")]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reference_passes_its_own_suite() {
        log_source_conformance(|records| async move { Arc::new(MemLogSource::new(records)) as Arc<dyn LogSource> })
            .await;
    }

    /// A source that orders ties by fewer fields (as the head and the merged source did before
    /// the one order) returns a look-alike's copy twice; the suite must notice.
    #[derive(Debug)]
    struct PartialOrderSource(Vec<LogRecord>);

    #[async_trait]
    impl LogSource for PartialOrderSource {
        async fn select_logs(&self, req: &LogRequest) -> Result<Vec<LogRecord>> {
            let mut out: Vec<LogRecord> = MemLogSource::new(self.0.clone())
                .in_range(req)
                .filter(|r| {
                    req.line_hints.iter().all(|h| match h {
                        LineHint::Contains(s) => r.body.contains(s.as_str()),
                        LineHint::NotContains(s) => !r.body.contains(s.as_str()),
                    })
                })
                .cloned()
                .collect();
            let key = |a: &LogRecord, b: &LogRecord| {
                a.timestamp
                    .cmp(&b.timestamp)
                    .then_with(|| a.labels.cmp(&b.labels))
                    .then_with(|| a.body.cmp(&b.body))
            };
            match req.direction {
                Direction::Forward => out.sort_by(key),
                Direction::Backward => out.sort_by(|a, b| key(b, a)),
            }
            out.dedup();
            out.truncate(req.limit.unwrap_or(usize::MAX));
            Ok(out)
        }

        async fn log_streams(&self, req: &LogRequest) -> Result<Vec<Labels>> {
            MemLogSource::new(self.0.clone()).log_streams(req).await
        }
    }

    #[tokio::test]
    #[should_panic(expected = "look-alikes")]
    async fn a_partial_tie_order_fails_on_look_alikes() {
        log_source_conformance(|records| async move { Arc::new(PartialOrderSource(records)) as Arc<dyn LogSource> })
            .await;
    }
}
