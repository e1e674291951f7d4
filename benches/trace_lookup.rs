//! Issue 21's read targets: a trace by id over 24 hours of spans (< 200 ms warm), and a TraceQL
//! search over one hour (< 1 s), through the trace engine the Tempo API calls.
//!
//! The history is written straight through the storage writer, one (hour, cluster) file at a
//! time, as hourly flushes leave it before the day is compacted: `TRACE_BENCH_SPANS` spans
//! (default 10 million) over `TRACE_BENCH_HOURS` hours (24) and `TRACE_BENCH_CLUSTERS`
//! clusters (3), in traces of a server span and four children from 30 services; one trace in
//! 50 fails (error status, HTTP 500/503), durations are heavy-tailed (a few root spans last
//! seconds). Span attributes and resource attributes are the JSON a real SDK's spans carry
//! (about 250 bytes a span). `TRACE_BENCH_DIR` keeps the data directory, so later runs with the
//! same settings skip the write; `TRACE_BENCH_WARM_RUNS` (default 5) warm repetitions.
//!
//! Timed, each **cold** (a fresh `Storage` on the directory: manifest loaded, no footer
//! cache; the OS page cache is not dropped) and **warm** (the same engine again, median):
//! - a trace by id, for 20 ids of spans written in different hours and one id that is not
//!   stored (the whole 24 h searched, as Tempo's API without `start`/`end`);
//! - `{ resource.service.name = "checkout" && span.http.response.status_code >= 500 && duration > 1s }`
//!   and `{ status = error }` over the last hour (limit 20).
//!
//! Prints spans/s written, stored bytes per span, the object-store GETs of each run and the
//! peak RSS. `cargo bench --bench trace_lookup`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary_query::metrics::QueryMetrics;
use tributary_query::traces::{Search, TraceConfig, TraceEngine};
use tributary_storage::Storage;
use tributary_storage::config::StorageConfig;
use tributary_storage::signals::{Span, TraceId};

/// The server's allocator (`src/main.rs`), so allocation costs are the ones it pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HOUR_NS: i64 = 3_600_000_000_000;
/// 2025-11-20T00:00:00Z: the first hour written.
const START_NS: i64 = 1_763_596_800_000_000_000;
const SPANS_PER_TRACE: u64 = 5;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn trace_id(rng: &mut Rng) -> TraceId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&rng.next().to_be_bytes());
    id[8..].copy_from_slice(&rng.next().to_be_bytes());
    id
}

/// The spans of one (hour, cluster): whole traces starting in the hour.
fn hour_spans(hour: i64, cluster: usize, spans: u64, seed: u64) -> Vec<Span> {
    let mut rng = Rng(seed ^ (hour as u64).wrapping_mul(31) ^ (cluster as u64) << 48);
    let services = ["checkout", "cart", "payments", "inventory", "search", "users"];
    let mut out = Vec::with_capacity(spans as usize);
    let traces = spans / SPANS_PER_TRACE;
    for t in 0..traces {
        let id = trace_id(&mut rng);
        let service = services[(rng.next() % services.len() as u64) as usize];
        let pod = rng.next() % 5;
        let start = START_NS + hour * HOUR_NS + (t as i64 * HOUR_NS / traces as i64);
        let failed = rng.next().is_multiple_of(50);
        let slow = rng.next().is_multiple_of(200);
        let root_duration = if slow {
            1_000_000_000 + (rng.next() % 4_000_000_000) as i64
        } else {
            (rng.next() % 300_000_000) as i64 + 1_000_000
        };
        let root_span = rng.next().to_be_bytes();
        let resource = format!(
            r#"{{"service.name":"{service}","service.namespace":"shop","k8s.cluster.name":"cluster-{cluster}","k8s.namespace.name":"shop","k8s.pod.name":"{service}-7d9f8c6b5-{pod:05}","k8s.deployment.name":"{service}","telemetry.sdk.language":"java","telemetry.sdk.version":"1.45.0"}}"#
        );
        let status = if failed { 503 } else { 200 };
        let route = format!("/api/v1/{service}/{{id}}");
        out.push(Span {
            trace_id: id,
            span_id: root_span,
            start,
            cluster: format!("cluster-{cluster}"),
            name: format!("GET {route}"),
            kind: 2,
            duration: root_duration,
            status_code: if failed { 2 } else { 0 },
            status_message: if failed { "upstream returned 503".into() } else { String::new() },
            service_name: service.into(),
            http_method: "GET".into(),
            http_route: route.clone(),
            http_status_code: status,
            flags: 0x301,
            scope_name: "io.opentelemetry.spring-webmvc-6.0".into(),
            scope_version: "2.10.0".into(),
            attributes: format!(
                r#"{{"http.request.method":"GET","http.route":"{route}","url.path":"/api/v1/{service}/{}","http.response.status_code":{status},"client.address":"10.12.{}.{}"}}"#,
                rng.next() % 1_000_000,
                rng.next() % 256,
                rng.next() % 256
            ),
            resource_attributes: resource.clone(),
            events: if failed { r#"[{"time_unix_nano":0,"name":"exception","attributes":{"exception.type":"java.io.IOException"}}]"#.into() } else { "[]".into() },
            links: "[]".into(),
            ..Span::default()
        });
        for c in 1..SPANS_PER_TRACE {
            let child_start = start + (c as i64) * root_duration / (SPANS_PER_TRACE as i64 + 1);
            out.push(Span {
                trace_id: id,
                span_id: rng.next().to_be_bytes(),
                start: child_start,
                cluster: format!("cluster-{cluster}"),
                parent_span_id: root_span,
                name: if c % 2 == 0 { "SELECT orders".into() } else { "GET".into() },
                kind: 3,
                duration: root_duration / (SPANS_PER_TRACE as i64 + 2),
                service_name: service.into(),
                scope_name: "io.opentelemetry.jdbc".into(),
                scope_version: "2.10.0".into(),
                attributes: if c % 2 == 0 {
                    r#"{"db.system":"postgresql","db.query.text":"SELECT id, status FROM orders WHERE customer_id = $1","server.address":"postgres.db.svc"}"#.into()
                } else {
                    format!(r#"{{"http.request.method":"GET","peer.service":"inventory","http.response.status_code":{status}}}"#)
                },
                resource_attributes: resource.clone(),
                events: "[]".into(),
                links: "[]".into(),
                ..Span::default()
            });
        }
    }
    out
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let spans = env("TRACE_BENCH_SPANS", 10_000_000) as u64;
    let hours = env("TRACE_BENCH_HOURS", 24);
    let clusters = env("TRACE_BENCH_CLUSTERS", 3) as usize;
    let warm_runs = env("TRACE_BENCH_WARM_RUNS", 5) as usize;
    let per_file = spans / (hours as u64 * clusters as u64);
    let kept = std::env::var("TRACE_BENCH_DIR").ok();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = kept.as_ref().map_or(tmp.path().to_path_buf(), std::path::PathBuf::from);
    let cfg = StorageConfig::default();
    let marker = dir.join(format!("written-{spans}-{hours}-{clusters}"));
    if !marker.exists() {
        let storage = Storage::open(&cfg, &dir).await.expect("open");
        let t = Instant::now();
        for hour in 0..hours {
            for c in 0..clusters {
                storage
                    .write_spans(&hour_spans(hour, c, per_file, 7))
                    .await
                    .expect("write");
            }
        }
        let secs = t.elapsed().as_secs_f64();
        std::fs::write(&marker, b"").expect("marker");
        eprintln!(
            "wrote {} spans in {:.1} s: {:.0} spans/s (generation included), {} files",
            per_file * hours as u64 * clusters as u64,
            secs,
            (per_file * hours as u64 * clusters as u64) as f64 / secs,
            hours as usize * clusters
        );
    }
    let stored = dir_bytes(&dir.join("spans"));
    eprintln!(
        "stored {:.1} MiB: {:.1} B per span",
        stored as f64 / (1 << 20) as f64,
        stored as f64 / (per_file * hours as u64 * clusters as u64) as f64
    );

    // Ids to look up: the 7th trace of 20 (hour, cluster) files, and one never written.
    let mut ids: Vec<TraceId> = (0..20)
        .map(|i| {
            let (hour, c) = ((i * 7) % hours, (i as usize) % clusters);
            hour_spans(hour, c, SPANS_PER_TRACE * 8, 7)[6 * SPANS_PER_TRACE as usize].trace_id
        })
        .collect();
    ids.push([0xee; 16]);

    let open = || async {
        let storage = Arc::new(Storage::open(&cfg, &dir).await.expect("open"));
        let engine = TraceEngine::new(storage.trace_source(), TraceConfig::default(), QueryMetrics::default());
        (storage, engine)
    };

    // Trace by id: cold (each id on a fresh store), then warm.
    let mut cold = Vec::new();
    let mut cold_gets = 0;
    for id in &ids {
        let (storage, engine) = open().await;
        let t = Instant::now();
        let found = engine.trace(*id, i64::MIN, i64::MAX).await;
        cold.push(t.elapsed());
        cold_gets += storage.request_counts().get;
        match found {
            Ok(s) => assert_eq!(s.len() as u64, SPANS_PER_TRACE, "a whole trace"),
            Err(_) => assert_eq!(*id, [0xee; 16], "every written trace is found"),
        }
    }
    let (storage, engine) = open().await;
    for id in &ids {
        let _ = engine.trace(*id, i64::MIN, i64::MAX).await;
    }
    let before = storage.request_counts().get;
    let mut warm = Vec::new();
    for _ in 0..warm_runs {
        for id in &ids {
            let t = Instant::now();
            let _ = engine.trace(*id, i64::MIN, i64::MAX).await;
            warm.push(t.elapsed());
        }
    }
    let warm_gets = (storage.request_counts().get - before) as f64 / (warm_runs * ids.len()) as f64;
    eprintln!(
        "trace by id over {hours} h: cold median {:?} (max {:?}, {:.1} GETs each), warm median {:?} (max {:?}, {warm_gets:.1} GETs each)",
        median(cold.clone()),
        cold.iter().max().unwrap(),
        cold_gets as f64 / ids.len() as f64,
        median(warm.clone()),
        warm.iter().max().unwrap()
    );

    // TraceQL over the last hour.
    let last = START_NS + hours * HOUR_NS;
    for query in [
        r#"{ resource.service.name = "checkout" && span.http.response.status_code >= 500 && duration > 1s }"#,
        "{ status = error }",
    ] {
        let search = Search {
            query: query.into(),
            start: last - HOUR_NS,
            end: last,
            limit: 20,
            min_duration: None,
            max_duration: None,
        };
        let (storage, engine) = open().await;
        let t = Instant::now();
        let found = engine.search(&search).await.expect("search");
        let cold = t.elapsed();
        let cold_gets = storage.request_counts().get;
        let mut warm = Vec::new();
        for _ in 0..warm_runs {
            let t = Instant::now();
            let again = engine.search(&search).await.expect("search");
            warm.push(t.elapsed());
            assert_eq!(again.len(), found.len());
        }
        eprintln!(
            "search {query} over the last hour: {} traces; cold {cold:?} ({cold_gets} GETs), warm median {:?}",
            found.len(),
            median(warm)
        );
    }
    eprintln!("peak RSS {} MiB", peak_rss_mib());
}
