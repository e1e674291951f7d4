//! Differential PromQL conformance: the same remote-write bodies go to a real Prometheus 2.42
//! (`--web.enable-remote-write-receiver`) and to Tributary, then hundreds of generated queries
//! are asked of both, as instant queries at several times and range queries at several steps,
//! and compared result by result: the same series (label sets), the same timestamps, values equal
//! within a relative 1e-9 (libm and Go's `math` may differ in the last bits; NaN equals NaN),
//! the same error type where both fail, and for `sort`/`topk` the same order.
//!
//! Everything is placed so that Prometheus 2.42's closed windows and Prometheus 3's left-open
//! ones (Tributary's) select the same samples: samples lie 137 ms off the second grid, queries
//! are evaluated half a second off it (so neither a range window nor a subquery window ever ends
//! on a sample or on a subquery step). Queries whose answers differ between 2.x and 3 for other
//! reasons are listed as excluded, with the reason. Finally Tributary flushes its head to Parquet
//! and must answer a sample of the queries exactly as before.

mod dataset;
mod queries;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::harness::{
    Proc, TestServer, post_remote_write, remote_write_body, require_program, start_prometheus_ready, urlencode,
    values_close, write_file,
};
use dataset::Dataset;
use queries::Case;

/// How one query is evaluated.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Eval {
    Instant(f64),
    Range { start: f64, end: f64, step: f64 },
}

impl Eval {
    fn describe(&self) -> String {
        match self {
            Eval::Instant(t) => format!("instant@{t:.3}"),
            Eval::Range { step, .. } => format!("range/{step}s"),
        }
    }
}

/// A server's answer, reduced to what must agree.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Error {
        status: u16,
        error_type: String,
    },
    Scalar(String),
    Text(String),
    /// `(labels, value)` in response order.
    Vector(Vec<(String, String)>),
    /// labels → `[(timestamp ms, value)]`.
    Matrix(BTreeMap<String, Vec<(i64, String)>>),
}

async fn ask(client: &reqwest::Client, base: &str, query: &str, eval: Eval) -> Answer {
    let request = match eval {
        Eval::Instant(t) => client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query), ("time", &format!("{t:.3}"))]),
        Eval::Range { start, end, step } => client.get(format!("{base}/api/v1/query_range")).query(&[
            ("query", query),
            ("start", &format!("{start:.3}")),
            ("end", &format!("{end:.3}")),
            ("step", &step.to_string()),
        ]),
    };
    let response = request.send().await.unwrap_or_else(|e| panic!("{base}: {e}"));
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("{base} {query}: {e}"));
    if body["status"] != "success" {
        return Answer::Error {
            status,
            error_type: body["errorType"].as_str().unwrap_or("").to_string(),
        };
    }
    let data = &body["data"];
    let result = &data["result"];
    match data["resultType"].as_str().unwrap_or("") {
        "scalar" => Answer::Scalar(result[1].as_str().unwrap_or("").to_string()),
        "string" => Answer::Text(result[1].as_str().unwrap_or("").to_string()),
        "vector" => Answer::Vector(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (labels_key(&s["metric"]), s["value"][1].as_str().unwrap().to_string()))
                .collect(),
        ),
        _ => Answer::Matrix(
            result
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let points = s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| {
                            (
                                (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                                p[1].as_str().unwrap().to_string(),
                            )
                        })
                        .collect();
                    (labels_key(&s["metric"]), points)
                })
                .collect(),
        ),
    }
}

fn labels_key(metric: &Value) -> String {
    let m: BTreeMap<String, String> = serde_json::from_value(metric.clone()).unwrap();
    format!("{m:?}")
}

/// `None` when the answers agree; otherwise what differs first.
fn compare(prom: &Answer, trib: &Answer, ordered: bool) -> Option<String> {
    match (prom, trib) {
        (
            Answer::Error {
                status: s1,
                error_type: e1,
            },
            Answer::Error {
                status: s2,
                error_type: e2,
            },
        ) => (s1 != s2 || e1 != e2).then(|| format!("errors differ: {s1} {e1} vs {s2} {e2}")),
        (Answer::Scalar(a), Answer::Scalar(b)) => (!values_close(a, b)).then(|| format!("scalar {a} vs {b}")),
        (Answer::Text(a), Answer::Text(b)) => (a != b).then(|| format!("string {a:?} vs {b:?}")),
        (Answer::Vector(a), Answer::Vector(b)) => compare_vectors(a, b, ordered),
        (Answer::Matrix(a), Answer::Matrix(b)) => {
            if a.keys().ne(b.keys()) {
                return Some(format!(
                    "series differ: only prometheus {:?}, only tributary {:?}",
                    a.keys().filter(|k| !b.contains_key(*k)).collect::<Vec<_>>(),
                    b.keys().filter(|k| !a.contains_key(*k)).collect::<Vec<_>>()
                ));
            }
            a.iter().find_map(|(k, pa)| {
                let pb = &b[k];
                let first = pa
                    .iter()
                    .zip(pb)
                    .position(|(x, y)| x.0 != y.0 || !values_close(&x.1, &y.1));
                match first {
                    Some(i) => Some(format!("{k}: point {i} of {}: {:?} vs {:?}", pa.len(), pa[i], pb[i])),
                    None if pa.len() != pb.len() => Some(format!("{k}: {} vs {}", abbreviate(pa), abbreviate(pb))),
                    None => None,
                }
            })
        }
        _ => Some(format!("kinds differ: {} vs {}", short(prom), short(trib))),
    }
}

fn compare_vectors(a: &[(String, String)], b: &[(String, String)], ordered: bool) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "{} vs {} elements: {} vs {}",
            a.len(),
            b.len(),
            short_vec(a),
            short_vec(b)
        ));
    }
    if ordered {
        // Values in the same order; labels may only be permuted among equal values.
        if let Some(i) = (0..a.len()).find(|&i| !values_close(&a[i].1, &b[i].1)) {
            return Some(format!("order differs at {i}: {} vs {}", short_vec(a), short_vec(b)));
        }
        let mut i = 0;
        while i < a.len() {
            let j = (i..a.len()).find(|&j| a[j].1 != a[i].1).unwrap_or(a.len());
            let mut x: Vec<&String> = a[i..j].iter().map(|e| &e.0).collect();
            let mut y: Vec<&String> = b[i..j].iter().map(|e| &e.0).collect();
            x.sort();
            y.sort();
            if x != y {
                return Some(format!("labels differ in ordered run {i}..{j}: {x:?} vs {y:?}"));
            }
            i = j;
        }
        return None;
    }
    let (mut x, mut y) = (a.to_vec(), b.to_vec());
    x.sort();
    y.sort();
    x.iter().zip(&y).find_map(|(p, q)| {
        (p.0 != q.0 || !values_close(&p.1, &q.1)).then(|| format!("{}={} vs {}={}", p.0, p.1, q.0, q.1))
    })
}

/// Queries Prometheus answered with nothing at every evaluation: a typo in a generated query
/// would otherwise pass unnoticed.
fn always_empty(cases: &[Case], outcomes: &[Outcome]) -> Vec<String> {
    let mut answered: BTreeMap<usize, bool> = BTreeMap::new();
    for o in outcomes {
        let something = match &o.prom {
            Answer::Vector(v) => !v.is_empty(),
            Answer::Matrix(m) => !m.is_empty(),
            _ => true,
        };
        *answered.entry(o.case).or_default() |= something;
    }
    answered
        .into_iter()
        .filter(|(_, something)| !something)
        .map(|(case, _)| cases[case].query.clone())
        .collect()
}

/// The answer with an unordered vector put in label order.
fn canonical(a: &Answer, ordered: bool) -> Answer {
    match a {
        Answer::Vector(v) if !ordered => {
            let mut v = v.clone();
            v.sort();
            Answer::Vector(v)
        }
        other => other.clone(),
    }
}

fn abbreviate(points: &[(i64, String)]) -> String {
    let shown: Vec<String> = points.iter().take(6).map(|(t, v)| format!("{t}:{v}")).collect();
    format!(
        "{} points [{}{}]",
        points.len(),
        shown.join(" "),
        if points.len() > 6 { " …" } else { "" }
    )
}

fn short(a: &Answer) -> String {
    let text = format!("{a:?}");
    text.chars().take(300).collect()
}

fn short_vec(v: &[(String, String)]) -> String {
    let text = format!("{v:?}");
    text.chars().take(400).collect()
}

/// One (query, evaluation) pair and both answers.
#[derive(Debug)]
struct Outcome {
    case: usize,
    eval: Eval,
    prom: Answer,
    trib: Answer,
}

async fn ask_all(
    cases: Arc<Vec<Case>>,
    evals: &[Eval],
    prom: Option<String>,
    trib: String,
    pairs: Vec<(usize, usize)>,
) -> Vec<Outcome> {
    let client = reqwest::Client::new();
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = JoinSet::new();
    for (case, e) in pairs {
        let (client, cases, limit, prom, trib) =
            (client.clone(), cases.clone(), limit.clone(), prom.clone(), trib.clone());
        let eval = evals[e];
        tasks.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let query = &cases[case].query;
            let prom = match prom {
                Some(base) => ask(&client, &base, query, eval).await,
                None => Answer::Text(String::new()),
            };
            let trib = ask(&client, &trib, query, eval).await;
            Outcome { case, eval, prom, trib }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done.expect("query task"));
    }
    outcomes.sort_by_key(|o| (o.case, o.eval.describe()));
    outcomes
}

#[derive(Default)]
struct Tally {
    queries: usize,
    evaluations: usize,
    passed: usize,
    excluded: usize,
}

fn report(cases: &[Case], outcomes: &[Outcome]) -> (String, Vec<String>) {
    let mut per_feature: BTreeMap<&str, Tally> = BTreeMap::new();
    for case in cases {
        per_feature.entry(case.feature).or_default().queries += 1;
    }
    let mut failures = Vec::new();
    for o in outcomes {
        let case = &cases[o.case];
        let t = per_feature.get_mut(case.feature).unwrap();
        if case.excluded.is_some() {
            t.excluded += 1;
            continue;
        }
        t.evaluations += 1;
        let ordered = case.ordered && matches!(o.eval, Eval::Instant(_));
        match compare(&o.prom, &o.trib, ordered) {
            None => t.passed += 1,
            Some(diff) => failures.push(format!(
                "[{}] {} ({}): {diff}",
                case.feature,
                case.query,
                o.eval.describe()
            )),
        }
    }
    let mut table = String::from("\nPromQL conformance against Prometheus 2.42 (evaluations passed / compared)\n");
    let _ = writeln!(
        table,
        "{:<12} {:>8} {:>12} {:>9} {:>9}",
        "feature", "queries", "passed", "rate", "excluded"
    );
    let (mut all_passed, mut all_compared) = (0, 0);
    for (feature, t) in &per_feature {
        all_passed += t.passed;
        all_compared += t.evaluations;
        let rate = 100.0 * t.passed as f64 / t.evaluations.max(1) as f64;
        let _ = writeln!(
            table,
            "{feature:<12} {:>8} {:>5}/{:<6} {rate:>8.1}% {:>9}",
            t.queries, t.passed, t.evaluations, t.excluded
        );
    }
    let _ = writeln!(
        table,
        "{:<12} {:>8} {all_passed:>5}/{all_compared:<6}",
        "total",
        cases.len()
    );
    for case in cases.iter().filter(|c| c.excluded.is_some()) {
        let _ = writeln!(table, "excluded: {}  -- {}", case.query, case.excluded.unwrap_or(""));
    }
    (table, failures)
}

/// Requests both must refuse the same way: same status, same `errorType`, and the same message
/// unless it comes from the PromQL parser (whose wording and positions are the parser's own).
const BAD_REQUESTS: [&str; 17] = [
    "/api/v1/query_range?query=up&start=10&end=0&step=1",
    "/api/v1/query_range?query=up&start=0&end=10&step=0",
    "/api/v1/query_range?query=up&start=0&end=100000&step=1",
    "/api/v1/query_range?query=up&start=abc&end=10&step=1",
    "/api/v1/query_range?query=up&start=0&end=10&step=x",
    "/api/v1/query_range?query=up%5B5m%5D&start=0&end=10&step=1",
    "/api/v1/query_range?query=%22text%22&start=0&end=10&step=1",
    "/api/v1/query?query=up&time=abc",
    "/api/v1/query?query=up&timeout=abc",
    "/api/v1/query?query=sum(",
    "/api/v1/query?query=",
    "/api/v1/series",
    "/api/v1/series?match%5B%5D=up%7B",
    "/api/v1/labels?match%5B%5D=up%7B",
    "/api/v1/labels?start=abc",
    "/api/v1/label/job/values?end=abc",
    "/api/v1/format_query?query=sum(",
];

/// Typical mistakes whose whole parse error (position and wording) must be Prometheus's.
const PARSE_MISTAKES: [&str; 15] = [
    "up{job=a}",
    r#"up{job~"a"}"#,
    "sum(up) by cluster",
    "sum by cluster (up)",
    "sum(rate(up[5m])",
    "sum(up))",
    r#"up{job="a""#,
    r#"up{job="a"}}"#,
    "up[5m",
    "foo_bar(up)",
    "rate(x[5m] offset 1m) + rate(up)",
    "rate(up[5x])",
    r#"sum("up")"#,
    r#"up{job="a}"#,
    "up *",
];

/// Queries whose `format_query` text must match Prometheus's.
const FORMATTED: [&str; 6] = [
    r#"sum(rate(http_requests_total{job="api",code=~"5.."}[5m])) by (cluster) / ignoring(x) group_left sum(rate(http_requests_total[5m])) by (cluster)"#,
    "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "max_over_time(rate(x[1m])[10m:1m] offset 5m)",
    "a @ 100 + b offset -1m",
    r#"topk(3, x) > bool 2 and on(a) y"#,
    r#"x{a="b\"c"}"#,
];

/// The HTTP API beside PromQL: error shapes and `format_query`. Returns (checked, failures).
async fn api_checks(prom: &str, trib: &str) -> (usize, Vec<String>) {
    let client = reqwest::Client::new();
    let get = |base: &str, path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move {
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let mut failures = Vec::new();
    for path in BAD_REQUESTS {
        let ((s1, p), (s2, t)) = (get(prom, path).await, get(trib, path).await);
        let parser_message = p["error"].as_str().unwrap_or("").contains("parse error");
        if s1 != s2 || p["errorType"] != t["errorType"] || (!parser_message && p["error"] != t["error"]) {
            failures.push(format!("[api] {path}: {s1} {p} vs {s2} {t}"));
        }
    }
    for query in PARSE_MISTAKES {
        let path = format!("/api/v1/query?query={}", urlencode(query));
        let ((s1, p), (s2, t)) = (get(prom, &path).await, get(trib, &path).await);
        if (s1, &p["errorType"], &p["error"]) != (s2, &t["errorType"], &t["error"]) {
            failures.push(format!("[api] parse error {query}: {s1} {p} vs {s2} {t}"));
        }
    }
    for query in FORMATTED {
        let path = format!("/api/v1/format_query?query={}", urlencode(query));
        let ((_, p), (_, t)) = (get(prom, &path).await, get(trib, &path).await);
        if p["data"] != t["data"] {
            failures.push(format!("[api] format_query {query}: {} vs {}", p["data"], t["data"]));
        }
    }
    (BAD_REQUESTS.len() + PARSE_MISTAKES.len() + FORMATTED.len(), failures)
}

fn start_prometheus(dir: &std::path::Path, port: u16) -> Proc {
    let prometheus = require_program("prometheus", "prometheus");
    // The global evaluation interval is the default subquery step, as in Tributary's config.
    let cfg = write_file(
        dir,
        "prometheus.yml",
        "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n",
    );
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--query.lookback-delta=5m")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Proc(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_match_prometheus_on_a_shared_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let trib = TestServer::start().await;
    let (_prometheus, prom_port) = start_prometheus_ready(|port| start_prometheus(tmp.path(), port)).await;
    let prom = format!("http://127.0.0.1:{prom_port}");

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let data = Dataset::build(now_ms);
    type Body<'a> = Vec<(Vec<(&'a str, &'a str)>, Vec<(i64, f64)>)>;
    let owned: Body<'_> = data
        .series
        .iter()
        .map(|s| {
            (
                s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                s.samples.clone(),
            )
        })
        .collect();
    let body = remote_write_body(&owned);
    for url in [format!("{prom}/api/v1/write"), trib.url("/api/v1/write")] {
        let (status, text) = post_remote_write(&url, body.clone(), &[]).await;
        assert_eq!(status, 204, "remote write to {url} failed: {text}");
    }
    eprintln!(
        "wrote {} series, {} samples to both servers",
        data.series.len(),
        data.sample_count()
    );

    let evals = vec![
        Eval::Instant(data.at(12, 500)),
        Eval::Instant(data.at(27, 30_500)),
        Eval::Instant(data.at(44, 50_500)),
        Eval::Instant(data.at(48, 500)),
        Eval::Range {
            start: data.at(10, 500),
            end: data.at(49, 500),
            step: 20.0,
        },
        Eval::Range {
            start: data.at(10, 500),
            end: data.at(49, 500),
            step: 60.0,
        },
        Eval::Range {
            start: data.at(3, 500),
            end: data.at(47, 500),
            step: 150.0,
        },
    ];
    let cases = Arc::new(queries::cases(&data));
    let pairs: Vec<(usize, usize)> = cases
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            evals
                .iter()
                .enumerate()
                .filter(move |(_, e)| !c.instant_only || matches!(e, Eval::Instant(_)))
                .map(move |(e, _)| (i, e))
        })
        .collect();
    let outcomes = ask_all(cases.clone(), &evals, Some(prom.clone()), trib.url(""), pairs).await;
    let (table, mut failures) = report(&cases, &outcomes);
    eprintln!("{table}");
    let (api_checked, api_failures) = api_checks(&prom, &trib.url("")).await;
    eprintln!(
        "api (error shapes, format_query): {}/{api_checked}\n",
        api_checked - api_failures.len()
    );
    failures.extend(api_failures);
    let vacuous: Vec<String> = always_empty(&cases, &outcomes)
        .into_iter()
        .filter(|q| !queries::expected_empty(q))
        .collect();

    // The same answers once the data lives in Parquet instead of the head.
    trib.flush().await;
    let sample: Vec<(usize, usize)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| c.excluded.is_none())
        .flat_map(|(i, c)| {
            let range = (!c.instant_only).then_some((i, 5));
            [(i, 1)].into_iter().chain(range)
        })
        .collect();
    let after_pairs = sample.clone();
    let after = ask_all(cases.clone(), &evals, None, trib.url(""), sample).await;
    let before: BTreeMap<(usize, String), &Answer> = outcomes
        .iter()
        .map(|o| ((o.case, o.eval.describe()), &o.trib))
        .collect();
    let mut flush_failures = Vec::new();
    for o in &after {
        let ordered = cases[o.case].ordered;
        let previous = canonical(before[&(o.case, o.eval.describe())], ordered);
        // Exactly the same, not merely close.
        if previous != canonical(&o.trib, ordered) {
            let diff = compare(&previous, &o.trib, ordered).unwrap_or_else(|| "not bit-identical".into());
            flush_failures.push(format!("{} ({}): {diff}", cases[o.case].query, o.eval.describe()));
        }
    }
    eprintln!(
        "after flush: {} of {} answers identical",
        after.len() - flush_failures.len(),
        after.len()
    );

    // The same answers from a query-role server over those files that reads every aggregation
    // it can in parts of 40 samples (a few series each).
    let parts_cfg = tmp.path().join("parts.toml");
    std::fs::write(&parts_cfg, "[query]\npart_samples = 40\n").unwrap();
    let storage_url = format!("file://{}", trib.data_dir.display());
    let parted = TestServer::start_with(&[
        "--role",
        "query",
        "--storage",
        &storage_url,
        "--config",
        parts_cfg.to_str().unwrap(),
    ])
    .await;
    let in_parts = ask_all(cases.clone(), &evals, None, parted.url(""), after_pairs).await;
    let flushed: BTreeMap<(usize, String), &Answer> =
        after.iter().map(|o| ((o.case, o.eval.describe()), &o.trib)).collect();
    let mut parts_failures = Vec::new();
    for o in &in_parts {
        let whole = flushed[&(o.case, o.eval.describe())];
        // Sums of parts may round differently in the last bits: the float tolerance applies.
        if let Some(diff) = compare(whole, &o.trib, cases[o.case].ordered) {
            parts_failures.push(format!("{} ({}): {diff}", cases[o.case].query, o.eval.describe()));
        }
    }
    let parts_read = counter(&parted.url("/metrics"), "tributary_query_parts_total").await;
    eprintln!(
        "read in parts: {} of {} answers the same ({parts_read} parts read)",
        in_parts.len() - parts_failures.len(),
        in_parts.len()
    );

    assert!(
        failures.is_empty(),
        "{} evaluations differ from Prometheus:\n{}",
        failures.len(),
        failures.iter().take(80).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        flush_failures.is_empty(),
        "answers changed after the flush to Parquet:\n{}",
        flush_failures.join("\n")
    );
    assert!(
        parts_failures.is_empty(),
        "answers changed when aggregations were read in parts:\n{}",
        parts_failures.join("\n")
    );
    assert!(
        parts_read > 100.0,
        "only {parts_read} parts read: the parts path was not exercised"
    );
    // The query role read Parquet only: its series tables are cached, and /metrics says so.
    let metrics = parted.url("/metrics");
    let tables = counter(&metrics, r#"tributary_storage_cache_entries{cache="series_tables"}"#).await;
    let table_bytes = counter(&metrics, r#"tributary_storage_cache_bytes{cache="series_tables"}"#).await;
    let footers = counter(&metrics, r#"tributary_storage_cache_entries{cache="footers"}"#).await;
    assert!(
        tables >= 1.0 && table_bytes > 1000.0 * tables && footers >= tables,
        "cache gauges: {tables} tables of {table_bytes} bytes, {footers} footers"
    );
    assert!(cases.len() >= 300, "only {} queries", cases.len());
    assert!(
        vacuous.is_empty(),
        "Prometheus answered these with nothing at every evaluation (broken test queries?): {vacuous:?}"
    );
}

/// The value of an unlabelled counter on a `/metrics` page.
async fn counter(url: &str, name: &str) -> f64 {
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} on {url}:\n{page}"))
}
